#!/usr/bin/env python3
"""Writes the small .npy fixtures of tests/test_npy.c with numpy itself.

Regenerate: python3 tests/data/npy/make_npy.py
Values: element i (C order) of every float array is i * 0.5 - 1.
"""
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def vals(shape, dtype="<f4"):
    n = int(np.prod(shape, dtype=np.int64))
    return (np.arange(n, dtype=np.float64) * 0.5 - 1).astype(dtype).reshape(shape)


def save(name, arr, version=None):
    with open(os.path.join(HERE, name), "wb") as f:
        np.lib.format.write_array(f, arr, version=version, allow_pickle=False)


save("f4_2x3.npy", vals((2, 3)))
save("rank0.npy", vals(()))
save("rank1.npy", vals((5,)))
save("rank4.npy", vals((2, 1, 3, 2)))
save("empty_0x3.npy", vals((0, 3)))
save("v2_3x2.npy", vals((3, 2)), version=(2, 0))
save("v3_4.npy", vals((4,)), version=(3, 0))
save("f8.npy", vals((2, 2), "<f8"))
save("be_f4.npy", vals((2, 2), ">f4"))
save("i4.npy", np.arange(4, dtype="<i4"))
save("fortran.npy", np.asfortranarray(vals((2, 3))))
