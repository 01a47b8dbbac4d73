#!/usr/bin/python3
"""The catalogue of bad inputs for the `fusenet` command-line tool.

Every case runs one `fusenet` command on a hostile input and checks:

* a failing command (the catalogue's usual case): exit status non-zero and
  not from a signal (not negative, below 128), exactly one non-empty line on
  stderr, that line containing every expected substring (the file, layer,
  argument or shape at fault), no new file in the case's output directory
  and every pre-existing output file byte-for-byte untouched;
* a command that must succeed (weights in float16/float64 are converted):
  exit status 0, nothing on stderr, the output equal to the float32 run
  within the stated tolerance, and no stray file left beside it.

Fixtures are generated here, seeded, in WORKDIR/fixtures (the two random
weight files come from `fusenet make-weights` once per workdir; broken ones
are derived with h5py). A broken copy of a whole weights file is made just
before the cases that use it and removed after them, so that the catalogue
needs little disk. Each case runs in its own WORKDIR/cases/NAME, removed
when the case passes; WORKDIR/fixtures is removed when every case passed
(but with --keep-fixtures).

Cases marked SRC-BUG check the right behaviour where the current tool does
not have it yet (see tests/BAD_INPUTS.md).

Usage:
  hostile.py --fusenet PATH --workdir DIR [--wrapper "valgrind ..."]
             [--checker-status N] [--no-as-limit] [--only REGEX] [--list] [--verbose]
             [--keep-fixtures]

--wrapper prefixes every checked command (split like a shell would); the
wrapper must not write to stderr (valgrind: --log-file=...). Under a wrapper,
cases that need resource limits are skipped. --checker-status is an exit
status by which a checker reports its findings (valgrind's --error-exitcode,
the exitcode of ASAN_OPTIONS); a case that exits with it fails.
--no-as-limit drops the address-space limit of the cases that have one
(sanitizer builds reserve terabytes of shadow memory); they still run.

Prints one line per case (PASS/FAIL/SKIP and the name) and last
`hostile: N passed, M failed`; exits 1 if any case failed.
Needs numpy, h5py and PIL (Debian: python3-numpy, python3-h5py, python3-pil).
"""

import argparse
import io
import os
import re
import resource
import shlex
import shutil
import signal
import stat
import struct
import subprocess
import sys
import time
import warnings
import zlib

import h5py
import numpy as np
from PIL import Image

TIMEOUT = 300  # seconds per command
SEED = 20240611
GIB = 1 << 30

# Input shape of the runs that compute: small, so a case takes a fraction of a second.
SMALL = (1, 40, 48, 3)


# ---------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------

def rng(k=0):
    return np.random.RandomState(SEED + k)


def caffe_like(shape, k=0):
    """A seeded float32 array of the range of caffe-preprocessed pixels."""
    return rng(k).uniform(-124.0, 152.0, shape).astype(np.float32)


def write_bytes(path, data):
    with open(path, "wb") as f:
        f.write(data)


def npy_bytes(header_dict, data=b"", version=(1, 0), header_len=None):
    """A .npy file from a literal header dict string, padded like numpy does."""
    h = header_dict.encode("latin-1")
    pre = 10 if version[0] == 1 else 12
    total = pre + len(h) + 1
    pad = (64 - total % 64) % 64
    h = h + b" " * pad + b"\n"
    n = len(h) if header_len is None else header_len
    if version[0] == 1:
        prefix = b"\x93NUMPY" + bytes(version) + struct.pack("<H", n)
    else:
        prefix = b"\x93NUMPY" + bytes(version) + struct.pack("<I", n)
    return prefix + h + data


def npy_save(path, arr, fortran=False):
    if fortran:
        arr = np.asfortranarray(arr)
    with open(path, "wb") as f:
        np.lib.format.write_array(f, arr, allow_pickle=False)


def png_chunk(kind, payload):
    return (struct.pack(">I", len(payload)) + kind + payload +
            struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))


def png_declaring(width, height, idat=b""):
    """A PNG whose IHDR declares width x height (8-bit RGB) with the given IDAT payload."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    if not idat:
        idat = zlib.compress(b"\x00" * 16)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) +
            png_chunk(b"IEND", b""))


def image_bytes(fmt, size=(50, 40), k=0, **kw):
    w, h = size
    a = rng(100 + k).randint(0, 256, (h, w, 3)).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format=fmt, **kw)
    return buf.getvalue()


def jpeg_with_sof_dims(jpg, width, height):
    """Patches the first SOFn segment of a JPEG to declare width x height."""
    b = bytearray(jpg)
    i = 2
    while i + 4 <= len(b):
        if b[i] != 0xFF:
            raise ValueError("bad JPEG structure")
        marker = b[i + 1]
        seglen = struct.unpack(">H", b[i + 2:i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            struct.pack_into(">HH", b, i + 5, height, width)
            return bytes(b)
        i += 2 + seglen
    raise ValueError("no SOF segment")


def jpeg_segment_offset(jpg, marker):
    i = 2
    while i + 4 <= len(jpg):
        m = jpg[i + 1]
        if m == marker:
            return i
        i += 2 + struct.unpack(">H", jpg[i + 2:i + 4])[0]
    raise ValueError("no segment %x" % marker)


def weight_paths(f, layer):
    """The dataset paths (relative to the layer group) of a layer, in weight order."""
    names = f[layer].attrs["weight_names"]
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


def set_names_attr(obj, key, names):
    """Writes a list of names as fixed-length strings, as the Keras files hold them."""
    width = max([len(n) for n in names] + [1])
    obj.attrs[key] = np.array([n.encode() for n in names], dtype="S%d" % width)


def layer_names(f):
    return [n.decode() if isinstance(n, bytes) else str(n) for n in f.attrs["layer_names"]]


def replace_weight(path, layer, index, fn):
    """Replaces weight `index` of `layer` in the file at path by fn(old array)."""
    with h5py.File(path, "r+") as f:
        name = weight_paths(f, layer)[index]
        g = f[layer]
        old = g[name][()]
        new = fn(old)
        del g[name]
        g.create_dataset(name, data=new)


def convert_all(src, dst, fn):
    """Writes dst with every weight of src replaced by fn(array) (same layout)."""
    with h5py.File(src, "r") as s, h5py.File(dst, "w") as d:
        for k, v in s.attrs.items():
            d.attrs[k] = v
        for layer in layer_names(s):
            g = d.create_group(layer)
            for k, v in s[layer].attrs.items():
                g.attrs[k] = v
            for name in weight_paths(s, layer):
                g.create_dataset(name, data=fn(s[layer][name][()]))


def copy(src, dst):
    shutil.copyfile(src, dst)
    return dst


def write_old_naming(path, mixed=False):
    """A tiny ResNet50 weights file in the 2016 deep-learning-models naming (Keras-1 flat names);
    mixed: with one layer of the current naming too."""
    r = rng(7)
    layers = [
        ("input_1", []),
        ("zero_padding2d_1", []),
        ("conv1", [("conv1_W:0", (7, 7, 3, 64)), ("conv1_b:0", (64,))]),
        ("bn_conv1", [("bn_conv1_gamma:0", (64,)), ("bn_conv1_beta:0", (64,)),
                      ("bn_conv1_running_mean:0", (64,)), ("bn_conv1_running_std:0", (64,))]),
        ("res2a_branch2a", [("res2a_branch2a_W:0", (1, 1, 64, 64)), ("res2a_branch2a_b:0", (64,))]),
    ]
    if mixed:
        layers.append(("conv2_block1_2_conv", [("conv2_block1_2_conv/kernel:0", (3, 3, 64, 64)),
                                               ("conv2_block1_2_conv/bias:0", (64,))]))
    with h5py.File(path, "w") as f:
        set_names_attr(f, "layer_names", [n for n, _ in layers])
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"1.2.2"
        for name, ws in layers:
            g = f.create_group(name)
            if ws:
                set_names_attr(g, "weight_names", [w for w, _ in ws])
            else:
                g.attrs["weight_names"] = np.zeros((0,), dtype=np.float64)
            for w, shape in ws:  # a variance (running_std in Keras 1) is positive
                lo, hi = (0.5, 1.5) if w.endswith("running_std:0") else (-0.1, 0.1)
                g.create_dataset(w, data=r.uniform(lo, hi, shape).astype(np.float32))


# ---- the other weights layouts (keras/src/saving/saving_lib.py), from a legacy file ----

def legacy_to_keras3(src, dst, names=True, classes=None, mutate=None):
    """The layers of legacy file `src` as a Keras 3 .weights.h5 (layers/<snake_class>[_N]/vars/0..,
    a `name` attribute per vars when names); classes: {layer: Keras class}; mutate(f) edits it after."""
    order = []
    with h5py.File(src, "r") as f:
        for name in layer_names(f):
            order.append((name, [np.asarray(f[name][w]) for w in weight_paths(f, name)]))
    with h5py.File(dst, "w") as out:
        used = {}
        lg = out.create_group("layers")
        for name, ws in order:
            cls = (classes or {}).get(name) or ("input_layer" if name.startswith("input") else
                                                 "max_pooling2d" if name.endswith("_pool") else "conv2d")
            key = cls if cls not in used else "%s_%d" % (cls, used[cls] + 1)
            used[cls] = used.get(cls, -1) + 1
            v = lg.create_group(key).create_group("vars")
            if names:
                v.attrs["name"] = name
            for i, w in enumerate(ws):
                v.create_dataset(str(i), data=w)
        if mutate:
            mutate(out)


def keras_zip(path, weights=None, entries=(), compression=None, zip64=False, comment=b""):
    """A .keras archive: metadata.json, config.json, then model.weights.h5 (bytes of file `weights`;
    zip64: with a zip64 extra field in its local header); comment: the archive's comment."""
    import zipfile
    with zipfile.ZipFile(path, "w", compression=compression or zipfile.ZIP_STORED) as zf:
        zf.writestr("metadata.json", '{"keras_version": "3.6.0"}')
        zf.writestr("config.json", "{}")
        if weights:
            with open(weights, "rb") as f, zf.open("model.weights.h5", "w", force_zip64=zip64) as w:
                shutil.copyfileobj(f, w)
        zf.comment = comment
        for name, data in entries:
            with warnings.catch_warnings():  # a second entry of one name is the point of some fixtures
                warnings.simplefilter("ignore", UserWarning)
                zf.writestr(name, data)


def zip_patch_sizes(path, dst, entry, size=None, comp=None, local=True, central=True):
    """A copy of zip `path` whose headers of `entry` declare other sizes (lying sizes)."""
    b = bytearray(open(path, "rb").read())
    name = entry.encode()
    i = 0
    while True:
        i = b.find(b"PK", i)
        if i < 0:
            break
        # (signature, wanted, offsets of the compressed size, the size, the name length, the name)
        for sig, wanted, at_comp, at_size, at_len, at_name in ((b"PK\x03\x04", local, 18, 22, 26, 30),
                                                               (b"PK\x01\x02", central, 20, 24, 28, 46)):
            if bytes(b[i:i + 4]) != sig or not wanted:
                continue
            n = struct.unpack_from("<H", b, i + at_len)[0]
            if bytes(b[i + at_name:i + at_name + n]) == name:
                if comp is not None:
                    struct.pack_into("<I", b, i + at_comp, comp)
                if size is not None:
                    struct.pack_into("<I", b, i + at_size, size)
        i += 2
    write_bytes(dst, bytes(b))


def zip_overlapping(path, dst):
    """A copy of zip `path` with a second central entry, model.weights.h5 renamed, pointing at the
    same local header as config.json (overlapping entries, as in the overlap zip bombs)."""
    b = bytearray(open(path, "rb").read())
    eocd = b.rfind(b"PK\x05\x06")
    cd_size, cd_off = struct.unpack_from("<II", b, eocd + 12)
    cd = bytes(b[cd_off:cd_off + cd_size])
    j = cd.find(b"config.json") - 46          # config.json's central entry
    n, m, k = struct.unpack_from("<HHH", cd, j + 28)
    extra = bytearray(cd[j:j + 46 + n + m + k])
    struct.pack_into("<H", extra, 28, len(b"model.weights.h5"))
    extra[46:46 + n] = b""
    extra[46:46] = b"model.weights.h5"
    new_cd = cd + bytes(extra)
    tail = bytearray(b[eocd:])
    count = struct.unpack_from("<H", tail, 10)[0] + 1
    struct.pack_into("<HHII", tail, 8, count, count, len(new_cd), cd_off)
    write_bytes(dst, bytes(b[:cd_off]) + new_cd + bytes(tail))


class Fixtures:
    def __init__(self, fusenet, root):
        self.fusenet = fusenet
        self.d = root
        self.makers = {}  # large fixtures: name -> make(path)
        os.makedirs(root, exist_ok=True)

    def p(self, name):
        return os.path.join(self.d, name)

    def _random_weights(self, model, name):
        path = self.p(name)
        if os.path.exists(path):
            try:
                with h5py.File(path, "r") as f:
                    if len(layer_names(f)) > 10:
                        return path
            except OSError:
                pass
        tmp = path + ".part"
        r = subprocess.run([self.fusenet, "make-weights", "--model", model, "--seed", "11", "--output", tmp],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=TIMEOUT)
        if r.returncode != 0:
            raise RuntimeError("fusenet make-weights --model %s failed: %s" % (model, r.stderr.decode()))
        os.replace(tmp, path)
        return path

    def build(self):
        p = self.p
        self.resnet = self._random_weights("resnet50", "resnet50.h5")
        self.vgg = self._random_weights("vgg16", "vgg16.h5")
        self.format_weights()

        # --- inputs ---
        npy_save(p("x_small.npy"), caffe_like(SMALL))
        npy_save(p("x_32.npy"), caffe_like((1, 32, 32, 3), 1))
        npy_save(p("x_f64.npy"), caffe_like(SMALL).astype(np.float64))
        npy_save(p("x_f16.npy"), caffe_like(SMALL).astype(np.float16))
        npy_save(p("x_i32.npy"), caffe_like(SMALL).astype(np.int32))
        npy_save(p("x_u8.npy"), rng(3).randint(0, 256, SMALL).astype(np.uint8))
        npy_save(p("x_be.npy"), caffe_like(SMALL).astype(">f4"))
        npy_save(p("x_fortran.npy"), caffe_like(SMALL), fortran=True)
        npy_save(p("x_rank3.npy"), caffe_like(SMALL[1:]))
        npy_save(p("x_rank5.npy"), caffe_like((1,) + SMALL))
        npy_save(p("x_rank0.npy"), np.float32(3.0).reshape(()))
        npy_save(p("x_chan4.npy"), caffe_like((1, 40, 48, 4)))
        npy_save(p("x_nchw.npy"), caffe_like((1, 3, 40, 48)))
        npy_save(p("x_batch0.npy"), np.zeros((0, 224, 224, 3), np.float32))
        npy_save(p("x_h31.npy"), caffe_like((1, 31, 48, 3)))
        npy_save(p("x_w16.npy"), caffe_like((1, 48, 16, 3)))
        npy_save(p("x_1x1.npy"), caffe_like((1, 1, 1, 3)))
        npy_save(p("x_wide.npy"), caffe_like((1, 32, 16385, 3)))
        good = open(p("x_small.npy"), "rb").read()
        write_bytes(p("x_truncated.npy"), good[:len(good) - 100])
        write_bytes(p("x_trailing.npy"), good + b"\0" * 8)
        write_bytes(p("x_header_only.npy"), good[:128])
        write_bytes(p("x_cut_in_header.npy"), good[:40])
        write_bytes(p("x_empty.npy"), b"")
        write_bytes(p("x_text.npy"), b"this is not an array\n")
        data = caffe_like(SMALL).tobytes()
        dict_ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 40, 48, 3), }"
        # headers that lie about the data
        write_bytes(p("x_huge_dims.npy"),
                    npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 100000, 100000, 3), }", data))
        write_bytes(p("x_big_dims.npy"),
                    npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 20000, 20000, 3), }", data))
        write_bytes(p("x_overflow_dims.npy"),
                    npy_bytes("{'descr': '<f4', 'fortran_order': False, "
                              "'shape': (4611686018427387904, 4611686018427387904, 1, 3), }", data))
        write_bytes(p("x_negative_dim.npy"),
                    npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1, -40, 48, 3), }", data))
        write_bytes(p("x_hlen_past_eof.npy"), npy_bytes(dict_ok, b"", header_len=60000))
        write_bytes(p("x_hlen_huge_v2.npy"), npy_bytes(dict_ok, data, version=(2, 0), header_len=0x7FFFFFF0))
        write_bytes(p("x_hlen_short.npy"), npy_bytes(dict_ok, data, header_len=20))
        write_bytes(p("x_version9.npy"), b"\x93NUMPY\x09\x00" + npy_bytes(dict_ok, data)[8:])
        write_bytes(p("x_not_dict.npy"), npy_bytes("[1, 2, 3]", data))
        write_bytes(p("x_structured.npy"),
                    npy_bytes("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1, 40, 48, 3), }", data))
        write_bytes(p("x_object.npy"),
                    npy_bytes("{'descr': '|O', 'fortran_order': False, 'shape': (1, 40, 48, 3), }", data))
        write_bytes(p("x_extra_key.npy"),
                    npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 40, 48, 3), 'x': 1, }", data))
        write_bytes(p("x_no_shape.npy"), npy_bytes("{'descr': '<f4', 'fortran_order': False, }", data))
        write_bytes(p("x_nonascii.npy"),
                    npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 40, 48, 3), '\xe9': 1}",
                              data))
        os.makedirs(p("a_directory"), exist_ok=True)
        for name in ("fifo.npy", "fifo.png"):
            if not os.path.exists(p(name)):
                os.mkfifo(p(name))
        if not os.path.lexists(p("loop.npy")):
            os.symlink("loop.npy", p("loop.npy"))

        # --- images ---
        write_bytes(p("good.png"), image_bytes("PNG"))
        write_bytes(p("good.jpg"), image_bytes("JPEG", k=1, quality=90))
        write_bytes(p("img.gif"), image_bytes("GIF", k=2))
        write_bytes(p("img.bmp"), image_bytes("BMP", k=3))
        write_bytes(p("img.tiff"), image_bytes("TIFF", k=4))
        write_bytes(p("gif_named.jpg"), image_bytes("GIF", k=5))
        write_bytes(p("text.jpg"), b"hello, I am not an image\n")
        write_bytes(p("empty.png"), b"")
        png = open(p("good.png"), "rb").read()
        jpg = open(p("good.jpg"), "rb").read()
        write_bytes(p("png_truncated.png"), png[:len(png) // 2])
        write_bytes(p("png_sig_only.png"), png[:8])
        write_bytes(p("jpg_truncated.jpg"), jpg[:len(jpg) // 2])
        write_bytes(p("jpg_soi_only.jpg"), jpg[:3])
        bad_crc = bytearray(png)
        bad_crc[29] ^= 0xFF  # last byte of IHDR's CRC
        write_bytes(p("png_bad_crc.png"), bytes(bad_crc))
        write_bytes(p("png_zero.png"), png_declaring(0, 40))
        write_bytes(p("png_enormous.png"), png_declaring(100000, 100000))
        write_bytes(p("png_9000.png"), png_declaring(9000, 9000))
        write_bytes(p("png_garbage_idat.png"), png_declaring(50, 40, idat=rng(9).bytes(300)))
        write_bytes(p("jpg_enormous.jpg"), jpeg_with_sof_dims(jpg, 60000, 60000))
        write_bytes(p("jpg_zero.jpg"), jpeg_with_sof_dims(jpg, 0, 40))
        dqt = jpeg_segment_offset(jpg, 0xDB)
        bad = bytearray(jpg)
        struct.pack_into(">H", bad, dqt + 2, 0xFFFF)  # DQT length running past the end
        write_bytes(p("jpg_bad_dqt.jpg"), bytes(bad))
        sos = jpeg_segment_offset(jpg, 0xDA)
        bad = bytearray(jpg)
        bad[sos + 2:sos + 4] = b"\x00\x01"  # SOS length smaller than its fixed part
        write_bytes(p("jpg_bad_sos.jpg"), bytes(bad))

        # --- embed / similar ---
        def tree(name, files):
            d = p(name)
            shutil.rmtree(d, ignore_errors=True)
            os.makedirs(d)
            for dst, src in files:
                shutil.copyfile(p(src), os.path.join(d, dst))
            return d
        tree("emb_good", [("a.png", "good.png"), ("b.jpg", "good.jpg")])
        tree("emb_mixed", [("a.png", "good.png"), ("b.jpg", "good.jpg"), ("c.png", "png_truncated.png")])
        tree("emb_bad", [("c.png", "png_truncated.png"), ("d.jpg", "img.gif")])
        tree("emb_none", [("readme.txt", "x_text.npy"), ("e.gif", "img.gif")])
        emb = rng(5).normal(size=(2, 1536)).astype(np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        npy_save(p("emb.npy"), emb)
        npy_save(p("emb_dim100.npy"), emb[:, :100].copy())
        npy_save(p("emb_nan.npy"), np.full((2, 1536), np.nan, np.float32))
        emb_inf = emb.copy()
        emb_inf[1, 5] = np.inf
        npy_save(p("emb_inf.npy"), emb_inf)
        emb1088 = rng(6).normal(size=(2, 1088)).astype(np.float32)  # conv4_block6_out + block1_conv2
        npy_save(p("emb_1088.npy"), emb1088 / np.linalg.norm(emb1088, axis=1, keepdims=True))
        with open(p("names_huge.txt"), "wb") as f:  # sparse: 2 GiB of nothing, over the 1 GiB names limit
            f.truncate(2 * GIB)
        if not os.path.exists(p("fifo.txt")):
            os.mkfifo(p("fifo.txt"))
        tree("emb_skips", [("a.png", "good.png"), ("b.jpg", "good.jpg"), ("c.png", "png_truncated.png")])
        if not os.path.lexists(p("emb_skips/d.png")):
            os.symlink("no_such_target.png", p("emb_skips/d.png"))  # a dangling link, skipped by the walk
        write_bytes(p("names.txt"), b"a.png\nb.jpg\n")
        write_bytes(p("names3.txt"), b"a.png\nb.jpg\nc.png\n")
        # FUSENET_MODELS holding a broken file under the official name
        os.makedirs(p("models_broken"), exist_ok=True)
        write_bytes(p("models_broken/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"), b"not HDF5\n")

        # --- weight files ---
        self.derive_weights()

    def large(self, name):
        """Registers the function it decorates as the maker of fixture `name`: made on
        demand (need) into a temporary, then renamed; removed again by release."""
        def register(make):
            self.makers[name] = make
            return make
        return register

    def need(self, name):
        """The path of large fixture `name`, made now if it is not there."""
        path = self.p(name)
        if not os.path.exists(path):
            tmp = path + ".part"
            self.makers[name](tmp)
            os.replace(tmp, path)
        return path

    def needed_by(self, strings):
        """The large fixtures whose path occurs in any of the strings."""
        return {n for n in self.makers if any(self.p(n) in s for s in strings)}

    def release(self, keep=()):
        """Removes the large fixtures on disk but those in keep."""
        for n in self.makers:
            if n not in keep:
                for path in (self.p(n), self.p(n) + ".part"):
                    if os.path.exists(path):
                        os.remove(path)

    def format_weights(self):
        """Keras 3 and .keras files of the VGG16 fixture, sound and broken (cases weights_k3_*, weights_zip_*)."""
        import zipfile
        p, v, large = self.p, self.vgg, self.large

        @large("k3_vgg.weights.h5")
        def _(dst):
            legacy_to_keras3(v, dst)

        @large("k3_vgg_nonames.weights.h5")
        def _(dst):
            legacy_to_keras3(v, dst, names=False)

        def drop_var(f):
            del f["layers/conv2d_1/vars/1"]

        def add_var(f):
            f["layers/conv2d_1/vars"].create_dataset("2", data=np.zeros(3, np.float32))

        def alien_var(f):
            f["layers/conv2d_1/vars"].create_dataset("bias", data=np.zeros(3, np.float32))

        def lie(f):      # a Conv2D group claiming a MaxPooling2D's name
            f["layers/conv2d_1/vars"].attrs["name"] = "block1_pool"

        def twice(f):    # two groups naming one layer
            f["layers/conv2d_2/vars"].attrs["name"] = "block1_conv2"

        for label, fn in (("missing_var", drop_var), ("extra_var", add_var), ("alien_var", alien_var),
                          ("lying_name", lie), ("name_twice", twice)):
            large("k3_vgg_%s.weights.h5" % label)(lambda dst, fn=fn: legacy_to_keras3(v, dst, mutate=fn))

        def fused(dst, name2="vgg16", names=True):
            with h5py.File(dst, "w") as f:
                lg = f.create_group("layers")
                for key, sub in (("functional", "vgg16"), ("functional_1", name2)):
                    g = lg.create_group(key)
                    vv = g.create_group("vars")
                    if names:
                        vv.attrs["name"] = sub
                    legacy_to_keras3(v, p("part.h5"), names=names)
                    with h5py.File(p("part.h5"), "r") as src:
                        src.copy("layers", g)
            os.remove(p("part.h5"))

        large("k3_two_vgg.weights.h5")(lambda dst: fused(dst, "vgg_copy"))
        large("k3_two_same_name.weights.h5")(lambda dst: fused(dst, "vgg16"))
        large("vgg.keras")(lambda dst: keras_zip(dst, self.need("k3_vgg.weights.h5")))
        # content, not name, tells the format
        large("vgg_keras_named.h5")(lambda dst: shutil.copyfile(self.need("vgg.keras"), dst))
        large("zip_deflated.keras")(lambda dst: keras_zip(dst, self.need("k3_vgg.weights.h5"),
                                                          compression=zipfile.ZIP_DEFLATED))
        large("zip_two_weights.keras")(lambda dst: keras_zip(dst, self.need("k3_vgg.weights.h5"),
                                                             entries=[("model.weights.h5", b"x" * 64)]))

        large("zip64_comment.keras")(lambda dst: keras_zip(dst, self.need("k3_vgg.weights.h5"), zip64=True,
                                                            comment=b"written by hand"))

        @large("zip_flipped.keras")
        def _(dst):  # one bit of a weight flipped: the entry's CRC-32 no longer matches
            shutil.copyfile(self.need("vgg.keras"), dst)
            with open(dst, "r+b") as f:
                f.seek(os.path.getsize(dst) // 2)
                b = f.read(1)
                f.seek(-1, os.SEEK_CUR)
                f.write(bytes([b[0] ^ 0x10]))

        @large("zip_truncated.keras")
        def _(dst):
            with open(self.need("vgg.keras"), "rb") as f:
                data = f.read()
            write_bytes(dst, data[:len(data) // 2])

        keras_zip(p("zip_no_weights.keras"))
        keras_zip(p("zip_traversal.keras"), entries=[("../model.weights.h5", b"x" * 64),
                                                     ("/tmp/model.weights.h5", b"x" * 64)])
        keras_zip(p("zip_not_hdf5.keras"), entries=[("model.weights.h5", b"not HDF5 " * 100)])
        # a deflate bomb: 64 MiB of zeros in about 64 KiB
        with zipfile.ZipFile(p("zip_bomb.keras"), "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("model.weights.h5", bytes(64 << 20))
        keras_zip(p("zip_small.keras"), entries=[("model.weights.h5", b"\x89HDF\r\n\x1a\n" + bytes(500))])
        zip_patch_sizes(p("zip_small.keras"), p("zip_size_huge.keras"), "model.weights.h5",
                        size=0xFFFFFFF0, comp=0xFFFFFFF0)
        zip_patch_sizes(p("zip_small.keras"), p("zip_size_local_lies.keras"), "model.weights.h5",
                        size=400, comp=400, central=False)
        zip_patch_sizes(p("zip_small.keras"), p("zip_size_stored_differ.keras"), "model.weights.h5", size=600)
        zip_overlapping(p("zip_no_weights.keras"), p("zip_overlap.keras"))

    def derive_weights(self):
        """Broken weight files: the small ones now, the copies of a whole weights file on demand."""
        p, large = self.p, self.large
        v, r = self.vgg, self.resnet
        write_bytes(p("w_empty.h5"), b"")
        write_bytes(p("w_text.h5"), b"not an HDF5 file at all\n" * 10)
        shutil.copyfile(p("good.png"), p("w_png.h5"))
        with h5py.File(p("w_plain.h5"), "w") as f:  # HDF5, but not a Keras weights file
            f.create_dataset("data", data=np.arange(10, dtype=np.float32))
        with h5py.File(p("w_names_int.h5"), "w") as f:  # layer_names of the wrong type
            f.attrs["layer_names"] = np.arange(5, dtype=np.int32)
        write_old_naming(p("w_old_naming.h5"))
        write_old_naming(p("w_old_naming_mixed.h5"), mixed=True)
        write_old_naming(p("w_locked.h5"))

        def head(src, n):
            with open(src, "rb") as f:
                return f.read(n)
        size = os.path.getsize(r)
        for label, n in (("8", 8), ("100", 100), ("2k", 2048), ("1m", 1 << 20)):
            write_bytes(p("w_resnet_trunc_%s.h5" % label), head(r, n))
        for label, n in (("half", size // 2), ("minus1", size - 1)):
            large("w_resnet_trunc_%s.h5" % label)(lambda dst, n=n: write_bytes(dst, head(r, n)))
        large("w_vgg_trunc_half.h5")(lambda dst: write_bytes(dst, head(v, os.path.getsize(v) // 2)))
        bad_sb = bytearray(open(p("w_old_naming.h5"), "rb").read())
        for i in range(16, 64):  # HDF5 signature kept, superblock scrambled
            bad_sb[i] ^= 0x5A
        write_bytes(p("w_bad_superblock.h5"), bytes(bad_sb))

        def edited(name, src, edit):
            """Fixture `name`: a copy of src that edit(h5py file) changes in place."""
            def make(dst):
                with h5py.File(copy(src, dst), "r+") as f:
                    edit(f)
            large(name)(make)

        def replaced(name, src, layer, index, fn):
            large(name)(lambda dst: replace_weight(copy(src, dst), layer, index, fn))

        # missing layer: both the group and its entry in layer_names
        def no_block4_conv1(f):
            set_names_attr(f, "layer_names", [n for n in layer_names(f) if n != "block4_conv1"])
            del f["block4_conv1"]
        edited("w_vgg_no_block4_conv1.h5", v, no_block4_conv1)

        # layer_names lists it, the group is gone
        def no_group(f):
            del f["block4_conv1"]
        edited("w_vgg_no_group.h5", v, no_group)

        # weight_names lists a dataset that is not there
        def no_dataset(f):
            del f["block3_conv1"][weight_paths(f, "block3_conv1")[0]]
        edited("w_vgg_no_dataset.h5", v, no_dataset)

        # a conv layer whose weight_names is empty
        def no_weights(f):
            f["block2_conv2"].attrs["weight_names"] = np.zeros((0,), dtype=np.float64)
        edited("w_vgg_no_weights.h5", v, no_weights)

        # an extra layer with weights / without weights
        def extra(f):
            set_names_attr(f, "layer_names", layer_names(f) + ["block6_conv1"])
            g = f.create_group("block6_conv1")
            set_names_attr(g, "weight_names", ["block6_conv1_W_1:0", "block6_conv1_b_1:0"])
            g.create_dataset("block6_conv1_W_1:0", data=np.zeros((3, 3, 8, 8), np.float32))
            g.create_dataset("block6_conv1_b_1:0", data=np.zeros((8,), np.float32))
        edited("w_vgg_extra.h5", v, extra)

        def extra_weightless(f):
            set_names_attr(f, "layer_names", layer_names(f) + ["dropout_1"])
            g = f.create_group("dropout_1")
            g.attrs["weight_names"] = np.zeros((0,), dtype=np.float64)
        edited("w_vgg_extra_weightless.h5", v, extra_weightless)

        # finite weights whose products overflow float32: block1_conv2 gives +Inf, later layers NaN
        def overflow(f):
            for layer in ("block1_conv1", "block1_conv2"):
                name = weight_paths(f, layer)[0]
                f[layer][name][...] = f[layer][name][()] * np.float32(1e30)
        edited("w_vgg_overflow.h5", v, overflow)

        # shapes
        replaced("w_vgg_kernel_shape.h5", v, "block2_conv1", 0, lambda a: a[:, :, :, :64])
        replaced("w_vgg_kernel_nchw.h5", v, "block2_conv1", 0,
                 lambda a: np.ascontiguousarray(a.transpose(3, 2, 0, 1)))
        replaced("w_vgg_bias_shape.h5", v, "block3_conv3", 1, lambda a: np.concatenate([a, a[:1]]))
        replaced("w_vgg_kernel_scalar.h5", v, "block1_conv2", 0, lambda a: np.float32(1.0))
        replaced("w_resnet_bn_shape.h5", r, "conv2_block1_1_bn", 3, lambda a: a[:32])
        # dtypes
        replaced("w_vgg_int32.h5", v, "block1_conv1", 0, lambda a: (a * 100).astype(np.int32))
        replaced("w_vgg_string.h5", v, "block2_conv2", 1, lambda a: np.array([b"x"] * a.shape[0], dtype="S1"))
        large("w_vgg_f64.h5")(lambda dst: convert_all(v, dst, lambda a: a.astype(np.float64)))
        large("w_vgg_f16.h5")(lambda dst: convert_all(v, dst, lambda a: a.astype(np.float16)))
        large("w_vgg_f16_as_f32.h5")(lambda dst: convert_all(v, dst, lambda a: a.astype(np.float16)
                                                             .astype(np.float32)))
        replaced("w_vgg_f64_overflow.h5", v, "block3_conv1", 0,
                 lambda a: np.where(np.arange(a.size).reshape(a.shape) == 7, 1e300, a).astype(np.float64))
        # resnet: one layer in float16 among float32 (mixed files load too)
        replaced("w_resnet_f16_conv1.h5", r, "conv1_conv", 0, lambda a: a.astype(np.float16))

        # non-finite values
        def put(value, index):
            def f(a):
                a = a.copy()
                a.reshape(-1)[index] = value
                return a
            return f
        replaced("w_vgg_nan.h5", v, "block3_conv2", 0, put(np.nan, 1234))
        replaced("w_vgg_inf.h5", v, "block4_conv3", 1, put(np.inf, 5))
        replaced("w_vgg_neginf.h5", v, "block1_conv1", 1, put(-np.inf, 0))
        replaced("w_resnet_nan_bn.h5", r, "conv1_bn", 3, put(np.nan, 3))


# ---------------------------------------------------------------------------
# cases
# ---------------------------------------------------------------------------

class Case:
    """argv items may contain '@OUT' (the case's output directory).

    want:   substrings the stderr line must contain; an item that is a tuple
            is satisfied by any one of its members.
    pre:    {relative name: bytes or None} created in @OUT before the run
            (None: a directory); every one must be untouched afterwards.
    ok:     the command must succeed; check(outdir) returns None or a reason (a failing
            case's check runs too, after the usual ones).
    setup:  setup(outdir) runs after `pre`, before the run (symbolic links, modes, FIFOs).
    stdout_check: stdout_check(bytes written on stdout) returns None or a reason.
    stderr_check: the same for stderr (a successful run's reports).
    interrupt: (signal, trigger[, disposition]): trigger(outdir, seconds since start) is
            polled every millisecond during the run; once true, the signal is sent. The run
            starts with the signal at `disposition` (default SIG_DFL, as from a terminal,
            whatever this harness inherited: a background job of a script, for one, starts
            with SIGINT ignored). With SIG_DFL the run must exit with status 128 + signal
            (not die by it), saying on one line that it was interrupted, with nothing left
            behind (no temporary) and old files kept; with SIG_IGN (nohup, '&') the signal
            must change nothing: give ok=True.
    limits: {'as': bytes, 'fsize': bytes} resource limits for the run.
    unwant: substrings the stderr line must not contain.
    hold:   a file held open for writing by h5py during the run (an HDF5 writer's lock).
    timeout: seconds the command may take (a hang fails the case).
    env:    extra environment ({name: value}; '@OUT' and fixtures allowed). Every case runs
            in its own directory with FUSENET_MODELS unset unless given here.
    warnings_ok: lines before the last one may be per-file reports ('fusenet: skipped: ...');
            the last line is the one checked (embed reports unreadable images and goes on).
    bug:    SRC-BUG note: this case checks the right behaviour that src lacks.
    """

    def __init__(self, name, argv, want=(), pre=None, ok=False, check=None, limits=None, bug=None,
                 outputs=(), unwant=(), hold=None, timeout=TIMEOUT, env=None, warnings_ok=False, setup=None,
                 stdout_check=None, interrupt=None, stderr_check=None):
        self.name, self.argv, self.want = name, argv, list(want)
        self.stderr_check = stderr_check
        self.interrupt = interrupt
        self.setup, self.stdout_check = setup, stdout_check
        self.env, self.warnings_ok = env or {}, warnings_ok
        self.unwant, self.hold, self.timeout = list(unwant), hold, timeout
        self.pre = pre or {}
        self.ok, self.check, self.limits, self.bug = ok, check, limits or {}, bug
        self.outputs = list(outputs)  # names in @OUT a successful run may create

    def strings(self):
        """The case's strings that may name a fixture."""
        return [str(x) for x in self.argv] + [str(v) for v in self.env.values()] + [str(self.hold or "")]


def read_npy(path):
    return np.load(path, allow_pickle=False)


def close_to(path_a, path_b, rel):
    """None if the two .npy files agree: max|a-b| <= rel * max|b|, same shape, float32, finite."""
    if not os.path.exists(path_a):
        return "no output %s" % path_a
    a, b = read_npy(path_a), read_npy(path_b)
    if a.dtype != np.float32 or a.shape != b.shape:
        return "output %s %s, expected float32 %s" % (a.dtype, a.shape, b.shape)
    if not np.all(np.isfinite(a)):
        return "output has non-finite values"
    scale = float(np.max(np.abs(b)))
    diff = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
    if scale == 0 or diff > rel * scale:
        return "max|diff| %.3g > %.0e * max|ref| %.3g" % (diff, rel, scale)
    return None


def make_cases(fx, work):
    P = fx.p
    R, V = fx.resnet, fx.vgg
    X = P("x_small.npy")
    X32 = P("x_32.npy")
    O = "@OUT/out.npy"
    GOOD_NPY = npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 2), }",
                         np.array([1.5, -2.5], np.float32).tobytes())
    c = []

    def tap(name, model="vgg16", weights=None, layer="block1_conv2", inp=X, out=O, extra=(), **kw):
        if weights is None:
            weights = V if model == "vgg16" else R
        argv = ["tap", "--model", model, "--weights", weights,
                "--layer", layer, "--input", inp, "--output", out] + list(extra)
        c.append(Case(name, argv, **kw))

    def fuse(name, rw=None, vw=None, inp=("--input", X), out=O, extra=(), **kw):
        argv = ["fuse", "--resnet-weights", R if rw is None else rw, "--vgg-weights", V if vw is None else vw] + \
            list(inp) + \
            ["--output", out] + list(extra)
        c.append(Case(name, argv, **kw))

    def bench(name, rw=None, vw=None, size="32x32", extra=(), **kw):
        argv = ["bench", "--resnet-weights", rw or R, "--vgg-weights", vw or V, "--size", size,
                "--iters", "1"] + list(extra)
        c.append(Case(name, argv, **kw))

    def images(name, files, want, size="40x48", extra=(), **kw):
        fuse(name, inp=["--images"] + list(files) + ["--input-size", size], want=want, extra=extra, **kw)

    # ---- weights files: missing, not a file, not HDF5, truncated ----
    for label, path, want in (
            ("missing", P("no_such_file.h5"), [P("no_such_file.h5"), "No such file"]),
            ("directory", P("a_directory"), [P("a_directory"), "directory"]),
            ("empty", P("w_empty.h5"), [P("w_empty.h5"), "empty"]),
            ("text", P("w_text.h5"), [P("w_text.h5"), "HDF5"]),
            ("png", P("w_png.h5"), [P("w_png.h5"), "HDF5"]),
            ("npy", X, [X, "HDF5"]),
            ("hdf5_not_keras", P("w_plain.h5"), [P("w_plain.h5"), "layer_names"]),
            ("layer_names_int", P("w_names_int.h5"), [P("w_names_int.h5"), "layer_names"]),
            ("bad_superblock", P("w_bad_superblock.h5"), [P("w_bad_superblock.h5")]),
            ("dev_null", "/dev/null", ["/dev/null"]),
    ):
        tap("weights_%s_tap" % label, weights=path, want=want)
    fuse("weights_missing_fuse_resnet", rw=P("no_such_file.h5"), want=[P("no_such_file.h5")])
    fuse("weights_missing_fuse_vgg", vw=P("no_such_file.h5"), want=[P("no_such_file.h5")])
    fuse("weights_directory_fuse_vgg", vw=P("a_directory"), want=[P("a_directory"), "directory"])
    bench("weights_missing_bench", rw=P("no_such_file.h5"), want=[P("no_such_file.h5")])
    bench("weights_text_bench", vw=P("w_text.h5"), want=[P("w_text.h5"), "HDF5"])
    for label in ("8", "100", "2k", "1m", "half", "minus1"):
        f = P("w_resnet_trunc_%s.h5" % label)
        tap("weights_truncated_%s" % label, model="resnet50", weights=f, layer="conv1_relu",
            want=[f, ("truncated", "not an HDF5", "corrupt", "HDF5")])
    fuse("weights_truncated_fuse_vgg", vw=P("w_vgg_trunc_half.h5"),
         want=[P("w_vgg_trunc_half.h5"), ("truncated", "corrupt")])
    # a forged global-heap length that crashed libhdf5 1.10.8 (found by the fuzzer); our
    # own HDF5 reader names the file and calls it corrupt
    forged = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fuzz", "regressions", "h5",
                          "global_heap_vlen_overflow.h5")
    tap("weights_forged_heap_length_tap", weights=forged, layer="block1_conv1",
        want=["global_heap_vlen_overflow.h5", "corrupt"])
    fuse("weights_forged_heap_length_fuse", vw=forged, want=["global_heap_vlen_overflow.h5", "corrupt"])

    # ---- weights files: structure ----
    tap("weights_layer_missing", weights=P("w_vgg_no_block4_conv1.h5"), layer="block5_conv3",
        want=[P("w_vgg_no_block4_conv1.h5"), "block4_conv1", "missing"])
    tap("weights_layer_group_missing", weights=P("w_vgg_no_group.h5"), layer="block5_conv3",
        want=[P("w_vgg_no_group.h5"), "block4_conv1"], unwant=["did you mean: block4_conv1"])
    tap("weights_locked_by_writer", model="resnet50", weights=P("w_locked.h5"), layer="conv1_relu",
        hold=P("w_locked.h5"), want=[P("w_locked.h5"), "lock"], unwant=["corrupt"])
    fuse("weights_layer_missing_fuse", vw=P("w_vgg_no_block4_conv1.h5"),
         want=[P("w_vgg_no_block4_conv1.h5"), "block4_conv1"])
    tap("weights_dataset_missing", weights=P("w_vgg_no_dataset.h5"), layer="block3_conv1",
        want=[P("w_vgg_no_dataset.h5"), "block3_conv1", "kernel"])
    tap("weights_layer_without_weights", weights=P("w_vgg_no_weights.h5"), layer="block2_conv2",
        want=[P("w_vgg_no_weights.h5"), "block2_conv2", "0 weights"])
    tap("weights_extra_layer", weights=P("w_vgg_extra.h5"),
        want=[P("w_vgg_extra.h5"), "block6_conv1", "no such layer"])
    tap("weights_extra_weightless_layer_ok", weights=P("w_vgg_extra_weightless.h5"), ok=True,
        outputs=["out.npy"], check=lambda d: None if os.path.exists(os.path.join(d, "out.npy")) else "no output")
    tap("weights_kernel_wrong_shape", weights=P("w_vgg_kernel_shape.h5"), layer="block2_conv1",
        want=[P("w_vgg_kernel_shape.h5"), "block2_conv1", "kernel", "(3,3,64,128)", "(3,3,64,64)"])
    tap("weights_kernel_channels_first", weights=P("w_vgg_kernel_nchw.h5"), layer="block2_conv1",
        want=[P("w_vgg_kernel_nchw.h5"), "block2_conv1", "(128,64,3,3)"])
    tap("weights_bias_wrong_shape", weights=P("w_vgg_bias_shape.h5"), layer="block3_conv3",
        want=[P("w_vgg_bias_shape.h5"), "block3_conv3", "bias", "257"])
    tap("weights_kernel_scalar", weights=P("w_vgg_kernel_scalar.h5"), layer="block1_conv2",
        want=[P("w_vgg_kernel_scalar.h5"), "block1_conv2", "kernel"])
    tap("weights_bn_wrong_shape", model="resnet50", weights=P("w_resnet_bn_shape.h5"),
        layer="conv2_block1_1_relu",
        want=[P("w_resnet_bn_shape.h5"), "conv2_block1_1_bn", "moving_variance", "32"])
    tap("weights_other_network_tap_resnet", model="resnet50", weights=V, layer="conv1_relu",
        want=[V, "VGG16", "not ResNet50"])
    tap("weights_other_network_tap_vgg", model="vgg16", weights=R, layer="block1_conv1",
        want=[R, "ResNet50", "not VGG16"])
    fuse("weights_other_network_fuse_swapped", rw=V, vw=R, want=[V, "VGG16"])
    bench("weights_other_network_bench", rw=V, vw=R, want=[V, "VGG16"])
    # old ResNet50 naming (conv1, bn_conv1, res2a_branch2a, ...): read into the current graph;
    # a layer it lacks is named in both namings, mixed namings and other models are refused
    tap("weights_old_resnet_naming_ok", model="resnet50", weights=P("w_old_naming.h5"), layer="conv1_relu",
        ok=True, outputs=["out.npy"])
    tap("weights_old_resnet_naming", model="resnet50", weights=P("w_old_naming.h5"), layer="conv2_block1_out",
        want=[P("w_old_naming.h5"), "bn2a_branch2a", "conv2_block1_1_bn", "missing", "old Keras ResNet50"])
    fuse("weights_old_resnet_naming_fuse", rw=P("w_old_naming.h5"),
         want=[P("w_old_naming.h5"), "missing", "old Keras ResNet50"])
    tap("weights_old_resnet_naming_mixed", model="resnet50", weights=P("w_old_naming_mixed.h5"),
        layer="conv1_relu", want=[P("w_old_naming_mixed.h5"), "mixes", "bn_conv1", "conv2_block1_2_conv"])
    tap("weights_old_resnet_naming_resnet101", model="resnet101", weights=P("w_old_naming.h5"),
        layer="conv1_relu", want=[P("w_old_naming.h5"), "old Keras ResNet50", "not ResNet101"])
    fuse("weights_old_resnet_naming_as_vgg", vw=P("w_old_naming.h5"),
         want=[P("w_old_naming.h5"), "old Keras ResNet50", "not VGG16"])
    tap("weights_notop_file_top_layer", model="vgg16", layer="fc1",
        want=[V, "fc1", "notop"])

    # ---- the general taps: --tap MODEL:WEIGHTS:LAYER (fuse, embed, similar, bench) ----
    def taps(name, specs, cmd="fuse", extra=(), **kw):
        argv = [cmd] + [a for t in specs for a in ("--tap", t)]
        if cmd == "fuse":
            argv += ["--input", X, "--output", O]
        elif cmd == "embed":
            argv += ["--input-size", "32x32", "--output", "@OUT/emb.npy", P("emb_good")]
        elif cmd == "similar":
            argv += ["--input-size", "32x32", "--embeddings", P("emb.npy"), "--names", P("names.txt"),
                     "--query", P("good.png")]
        else:
            argv += ["--size", "32x32", "--iters", "1"]
        c.append(Case(name, argv + list(extra), **kw))

    RT, VT = "resnet50:%s:conv4_block6_out" % R, "vgg16:%s:block5_conv3" % V
    for label, spec, want in (
            ("model_unknown", "resnet5:%s:conv1_conv" % R, ["--tap", "'resnet5'", "resnet50, vgg16"]),
            ("model_case_differs", "ResNet50:%s:conv1_conv" % R, ["--tap", "'ResNet50'", "not resnet50"]),
            ("model_empty", ":%s:conv1_conv" % R, ["--tap", "MODEL is empty"]),
            ("weights_empty", "resnet50::conv1_conv", ["--tap", "WEIGHTS is empty"]),
            ("layer_empty", "resnet50:%s:" % R, ["--tap", "LAYER is empty"]),
            ("no_colon", "resnet50", ["--tap 'resnet50'", "expected MODEL:WEIGHTS:LAYER"]),
            ("one_colon", "resnet50:conv1_conv", ["--tap", "expected MODEL:WEIGHTS:LAYER"]),
            ("layer_missing", "resnet50:%s:conv4_block7_out" % R,
             ["--tap resnet50:%s:conv4_block7_out" % R, "no layer named 'conv4_block7_out'", "did you mean"]),
            ("layer_of_other_model", "vgg16:%s:conv1_conv" % V, ["--tap vgg16:", "vgg16 has no layer named"]),
            ("weights_missing", "resnet50:%s:conv1_conv" % P("no_such_file.h5"),
             ["--tap resnet50:", P("no_such_file.h5"), "No such file"]),
            ("weights_other_network", "resnet50:%s:conv1_conv" % V, ["--tap resnet50:", V, "VGG16", "not ResNet50"]),
            ("weights_old_naming_as_vgg19", "vgg19:%s:block1_conv1" % P("w_old_naming.h5"),
             ["--tap vgg19:", "old Keras ResNet50", "not VGG19"]),
    ):
        taps("tap_%s" % label, [spec, VT] if label != "model_empty" else [VT, spec], want=want)
    taps("tap_17_taps", [RT] * 8 + [VT] * 9, want=["--tap", "at most 16"])
    taps("tap_16_taps_ok", [RT] * 8 + [VT] * 8, ok=True, outputs=["out.npy"],
         check=lambda d: None if read_npy(os.path.join(d, "out.npy")).shape[3] == 8 * 1024 + 8 * 512
         else "not 16 taps of 1024 and 512 channels")
    for opt in ("--resnet-weights", "--vgg-weights", "--resnet-layer", "--vgg-layer"):
        val = {"--resnet-weights": R, "--vgg-weights": V}.get(opt, "conv1_conv")
        taps("tap_and_short_form%s" % opt.replace("-", "_"), [RT, VT], extra=[opt, val],
             want=["--tap", opt, "not both"])
    taps("tap_output_is_tap_weights", [RT, VT], extra=["--output", R], want=["--output", R, "--tap", "same file"])
    taps("tap_embed_layer_missing", ["resnet50:%s:conv4_block9_out" % R, VT], cmd="embed",
         want=["--tap resnet50:", "conv4_block9_out"])
    taps("tap_embed_output_is_tap_weights", [RT, VT], cmd="embed", extra=["--output", V],
         want=["--output", V, "--tap", "same file"])
    taps("tap_embed_and_short_form", [RT], cmd="embed", extra=["--vgg-layer", "block5_conv3"],
         want=["--tap", "--vgg-layer", "not both"])
    taps("tap_similar_bad_model", ["vgg15:%s:block5_conv3" % V], cmd="similar", want=["--tap", "'vgg15'"])
    taps("tap_bench_17_taps", [VT] * 17, cmd="bench", want=["--tap", "at most 16"])
    taps("tap_bench_weights_missing", [RT, "vgg16:%s:block5_conv3" % P("no_such_file.h5")], cmd="bench",
         want=["--tap vgg16:", P("no_such_file.h5")])
    tap("tap_not_an_option_of_tap", layer="block1_conv1", extra=["--tap", VT], want=["--tap", "not an option"])
    # WEIGHTS#NAME: a sub-model, as --weights FILE#NAME (weights_ref); two sub-models of one file
    K2 = P("k3_two_vgg.weights.h5")
    taps("tap_submodels_of_one_file_ok", ["vgg16:%s#vgg_copy:block5_conv3" % K2, "vgg16:%s#vgg16:block4_pool" % K2],
         ok=True, outputs=["out.npy"],
         check=lambda d: None if read_npy(os.path.join(d, "out.npy")).shape[3] == 1024 else "not 512 + 512 channels")
    taps("tap_submodel_missing", ["vgg16:%s#resnet50:block5_conv3" % K2],
         want=["--tap vgg16:", "no sub-model 'resnet50'", "vgg16, vgg_copy"])
    taps("tap_submodel_needed", ["vgg16:%s:block5_conv3" % K2], want=["--tap vgg16:", "holds 2 sub-models"])
    taps("tap_submodel_empty_name", ["vgg16:%s#:block5_conv3" % V], want=["--tap vgg16:", "FILE#NAME"])

    # ---- weights: dtypes and values ----
    tap("weights_int32_refused", weights=P("w_vgg_int32.h5"), layer="block1_conv1",
        want=[P("w_vgg_int32.h5"), "block1_conv1", "kernel", ("int", "integer"), "float"])
    tap("weights_string_refused", weights=P("w_vgg_string.h5"), layer="block2_conv2",
        want=[P("w_vgg_string.h5"), "block2_conv2", "bias"])
    ref_dir = os.path.join(work, "reference")
    ref_vgg = os.path.join(ref_dir, "vgg_block5_conv3_f32.npy")
    ref_vgg16 = os.path.join(ref_dir, "vgg_block5_conv3_f16_as_f32.npy")
    ref_resnet = os.path.join(ref_dir, "resnet_conv2_block1_out_f32.npy")

    def same_as(ref, rel):
        return lambda d: close_to(os.path.join(d, "out.npy"), ref, rel)

    # ---- Keras 3 and .keras (saving_lib.py layouts) and sub-models (FILE#NAME) ----
    def k3(label, **kw):
        tap("weights_k3_%s" % label, weights=P("k3_vgg_%s.weights.h5" % label), **kw)
    for label, path in (("named", P("k3_vgg.weights.h5")), ("nonames", P("k3_vgg_nonames.weights.h5")),
                        ("zip", P("vgg.keras")), ("zip_named_h5", P("vgg_keras_named.h5")),
                        ("zip_deflated", P("zip_deflated.keras")), ("zip64_comment", P("zip64_comment.keras"))):
        tap("weights_format_%s_ok" % label, weights=path, layer="block5_conv3", ok=True, outputs=["out.npy"],
            check=same_as(ref_vgg, 0))   # the same floats as the legacy file's
    k3("missing_var", want=[P("k3_vgg_missing_var.weights.h5"), "block1_conv2", "1 weight, expected 2"])
    k3("extra_var", want=[P("k3_vgg_extra_var.weights.h5"), "block1_conv2", "3 weights, expected 2"])
    k3("alien_var", want=["layers/conv2d_1/vars", "'bias'", "expected variables 0..2"])
    k3("lying_name", want=["layers/conv2d_1", "named 'block1_pool'", "MaxPooling2D"])
    k3("name_twice", want=["both name layer 'block1_conv2'"])
    tap("weights_k3_nonames_other_network", model="resnet50", weights=P("k3_vgg_nonames.weights.h5"),
        layer="conv1_conv", want=[P("k3_vgg_nonames.weights.h5"), "13 Conv2D and 0 BatchNormalization", "a VGG"])
    tap("weights_submodel_missing", weights=P("k3_two_vgg.weights.h5") + "#resnet50",
        want=["no sub-model 'resnet50'", "vgg16, vgg_copy"])
    tap("weights_submodel_needed", weights=P("k3_two_vgg.weights.h5"),
        want=["holds 2 sub-models (vgg16, vgg_copy)", "FILE#NAME"])
    tap("weights_submodel_ok", weights=P("k3_two_vgg.weights.h5") + "#vgg_copy", ok=True, outputs=["out.npy"])
    tap("weights_submodel_of_plain_file", weights=V + "#vgg16", want=[V, "no sub-model 'vgg16'", "no sub-models"])
    tap("weights_submodel_empty_name", weights=V + "#", want=["--weights", "FILE#NAME"])
    tap("weights_submodels_same_name", weights=P("k3_two_same_name.weights.h5") + "#vgg16",
        want=["two sub-models are named 'vgg16'"])
    fuse("weights_submodel_fuse_missing", vw=P("k3_two_vgg.weights.h5") + "#vgg19",
         want=["no sub-model 'vgg19'", "vgg16, vgg_copy"])
    for label, want in (
            ("no_weights", ["zip archive without a model.weights.h5 entry"]),
            ("traversal", ["zip archive without a model.weights.h5 entry"]),
            ("two_weights", ["zip_two_weights.keras", "not a readable zip archive"]),   # libzip's own check
            ("not_hdf5", ["zip_not_hdf5.keras:model.weights.h5", "not an HDF5 file"]),
            ("bomb", ["model.weights.h5", "zip bomb"]),
            ("size_huge", ["zip_size_huge.keras", "not a readable zip archive"]),
            ("size_local_lies", ["zip_size_local_lies.keras"]),
            ("size_stored_differ", ["zip_size_stored_differ.keras"]),
            ("overlap", ["zip_overlap.keras"]),
            ("truncated", ["zip_truncated.keras"]),
            ("flipped", ["zip_flipped.keras", "model.weights.h5", "CRC"]),
    ):
        tap("weights_zip_%s" % label, weights=P("zip_%s.keras" % label), want=want)

    tap("weights_float64_converted", weights=P("w_vgg_f64.h5"), layer="block5_conv3", ok=True,
        outputs=["out.npy"], check=same_as(ref_vgg, 1e-6))
    tap("weights_float16_converted", weights=P("w_vgg_f16.h5"), layer="block5_conv3", ok=True,
        outputs=["out.npy"], check=lambda d: same_as(ref_vgg, 1e-3)(d) or same_as(ref_vgg16, 1e-6)(d))
    tap("weights_float16_one_layer_resnet", model="resnet50", weights=P("w_resnet_f16_conv1.h5"),
        layer="conv2_block1_out", ok=True, outputs=["out.npy"], check=same_as(ref_resnet, 1e-3))
    tap("weights_float64_out_of_float32_range", weights=P("w_vgg_f64_overflow.h5"), layer="block3_conv1",
        want=[P("w_vgg_f64_overflow.h5"), "block3_conv1", "kernel", ("Inf", "range")])
    tap("weights_nan", weights=P("w_vgg_nan.h5"), layer="block5_conv3",
        want=[P("w_vgg_nan.h5"), "block3_conv2", "kernel", "NaN"])
    tap("weights_inf", weights=P("w_vgg_inf.h5"), layer="block5_conv3",
        want=[P("w_vgg_inf.h5"), "block4_conv3", "bias", "Inf"])
    fuse("weights_neginf_fuse", vw=P("w_vgg_neginf.h5"),
         want=[P("w_vgg_neginf.h5"), "block1_conv1", "-Inf"])
    tap("weights_nan_batchnorm", model="resnet50", weights=P("w_resnet_nan_bn.h5"), layer="conv1_relu",
        want=[P("w_resnet_nan_bn.h5"), "conv1_bn", "moving_variance", "NaN"])

    # ---- layer names ----
    tap("layer_unknown_suggests", model="resnet50", layer="conv1_rel",
        want=["conv1_rel", "did you mean", "conv1_relu"])
    tap("layer_unknown_vgg_suggests", layer="block5_conv4", want=["block5_conv4", "block5_conv3"])
    tap("layer_of_other_network", model="resnet50", layer="block5_conv3", want=["block5_conv3", "resnet50"])
    tap("layer_empty_name", layer="", want=["''"])
    tap("layer_case_differs", layer="Block1_Conv1", want=["Block1_Conv1", "block1_conv1"])
    fuse("layer_unknown_fuse_resnet", extra=["--resnet-layer", "conv4_block7_out"],
         want=["conv4_block7_out", "did you mean"])
    fuse("layer_unknown_fuse_vgg", extra=["--vgg-layer", "conv4_block6_out"], want=["conv4_block6_out", "vgg16"])
    bench("layer_unknown_bench", extra=["--vgg-layer", "block9_pool"], want=["block9_pool"])

    # ---- .npy inputs ----
    for label, f, want in (
            ("missing", P("no_such.npy"), [P("no_such.npy"), "No such file"]),
            ("directory", P("a_directory"), [P("a_directory"), "directory"]),
            ("empty", P("x_empty.npy"), [P("x_empty.npy")]),
            ("text", P("x_text.npy"), [P("x_text.npy"), ".npy"]),
            ("float64", P("x_f64.npy"), [P("x_f64.npy"), "<f8"]),
            ("float16", P("x_f16.npy"), [P("x_f16.npy"), "<f2"]),
            ("int32", P("x_i32.npy"), [P("x_i32.npy"), "<i4"]),
            ("uint8", P("x_u8.npy"), [P("x_u8.npy"), "u1"]),
            ("big_endian", P("x_be.npy"), [P("x_be.npy"), "big-endian"]),
            ("fortran_order", P("x_fortran.npy"), [P("x_fortran.npy"), "fortran"]),
            ("rank3", P("x_rank3.npy"), [P("x_rank3.npy"), "40,48,3"]),
            ("rank5", P("x_rank5.npy"), [P("x_rank5.npy"), "(N,H,W,3)"]),
            ("rank0", P("x_rank0.npy"), [P("x_rank0.npy"), "(N,H,W,3)"]),
            ("channels4", P("x_chan4.npy"), [P("x_chan4.npy"), "1,40,48,4"]),
            ("channels_first", P("x_nchw.npy"), [P("x_nchw.npy"), "1,3,40,48"]),
            ("batch0", P("x_batch0.npy"), [P("x_batch0.npy"), "N = 0"]),
            ("truncated_data", P("x_truncated.npy"), [P("x_truncated.npy"), "truncated"]),
            ("trailing_data", P("x_trailing.npy"), [P("x_trailing.npy"), "trailing"]),
            ("header_only", P("x_header_only.npy"), [P("x_header_only.npy"), "truncated"]),
            ("cut_in_header", P("x_cut_in_header.npy"), [P("x_cut_in_header.npy"), "header"]),
            ("header_length_past_eof", P("x_hlen_past_eof.npy"), [P("x_hlen_past_eof.npy"), "header"]),
            ("header_length_huge_v2", P("x_hlen_huge_v2.npy"), [P("x_hlen_huge_v2.npy"), "header"]),
            ("header_length_short", P("x_hlen_short.npy"), [P("x_hlen_short.npy")]),
            ("version9", P("x_version9.npy"), [P("x_version9.npy"), "version"]),
            ("header_not_dict", P("x_not_dict.npy"), [P("x_not_dict.npy"), "dict"]),
            ("structured_dtype", P("x_structured.npy"), [P("x_structured.npy"), "structured"]),
            ("object_dtype", P("x_object.npy"), [P("x_object.npy"), "|O"]),
            ("extra_key", P("x_extra_key.npy"), [P("x_extra_key.npy"), "'x'"]),
            ("no_shape", P("x_no_shape.npy"), [P("x_no_shape.npy"), "shape"]),
            ("nonascii_header", P("x_nonascii.npy"), [P("x_nonascii.npy"), "non-ASCII"]),
            ("negative_dim", P("x_negative_dim.npy"), [P("x_negative_dim.npy"), "negative"]),
            ("dims_overflow", P("x_overflow_dims.npy"), [P("x_overflow_dims.npy"), "overflow"]),
            ("symlink_loop", P("loop.npy"), [P("loop.npy"), "symbolic links"]),
            ("dev_zero", "/dev/zero", ["/dev/zero", "not a regular file"]),
            ("height_31", P("x_h31.npy"), ["31x48", "32x32"]),
            ("width_16", P("x_w16.npy"), ["48x16", "32x32"]),
            ("1x1", P("x_1x1.npy"), ["1x1", "32x32"]),
            ("width_16385", P("x_wide.npy"), ["32x16385", "16384"]),
    ):
        tap("npy_%s" % label, inp=f, want=want)
    # A header declaring a huge array over tiny data: refused from the header,
    # before anything is allocated (run under a 2 GiB address-space limit).
    tap("npy_declares_1x100000x100000x3", inp=P("x_huge_dims.npy"),
        want=[P("x_huge_dims.npy"), ("limit", "truncated")], limits={"as": 2 * GIB})
    tap("npy_declares_1x20000x20000x3", inp=P("x_big_dims.npy"),
        want=[P("x_big_dims.npy"), "truncated", "4800000000"], limits={"as": 2 * GIB})
    fuse("npy_declares_huge_fuse", inp=["--input", P("x_huge_dims.npy")],
         want=[P("x_huge_dims.npy")], limits={"as": 2 * GIB})
    fuse("npy_float64_fuse", inp=["--input", P("x_f64.npy")], want=[P("x_f64.npy"), "<f8"])
    fuse("npy_batch0_fuse", inp=["--input", P("x_batch0.npy")], want=[P("x_batch0.npy"), "N = 0"])
    fuse("npy_height_31_fuse", inp=["--input", P("x_h31.npy")], want=["31x48", "32x32"])

    # ---- images ----
    for label, f, want in (
            ("missing", P("no_such.png"), [P("no_such.png"), "No such file"]),
            ("directory", P("a_directory"), [P("a_directory"), "directory"]),
            ("empty", P("empty.png"), [P("empty.png"), "empty"]),
            ("text", P("text.jpg"), [P("text.jpg"), "not a JPEG or PNG"]),
            ("gif", P("img.gif"), [P("img.gif"), "GIF", "not supported"]),
            ("bmp", P("img.bmp"), [P("img.bmp"), "BMP", "not supported"]),
            ("tiff", P("img.tiff"), [P("img.tiff"), "TIFF"]),
            ("gif_named_jpg", P("gif_named.jpg"), [P("gif_named.jpg"), "GIF"]),
            ("png_truncated", P("png_truncated.png"), [P("png_truncated.png"), "PNG"]),
            ("png_signature_only", P("png_sig_only.png"), [P("png_sig_only.png"), "PNG"]),
            ("png_bad_crc", P("png_bad_crc.png"), [P("png_bad_crc.png"), ("CRC", "crc")]),
            ("png_zero_width", P("png_zero.png"), [P("png_zero.png"), "zero-sized"]),
            ("png_declares_100000x100000", P("png_enormous.png"), [P("png_enormous.png"), "100000"]),
            ("png_declares_9000x9000_tiny_data", P("png_9000.png"), [P("png_9000.png"), "PNG"]),
            ("png_garbage_idat", P("png_garbage_idat.png"), [P("png_garbage_idat.png"), "PNG"]),
            ("jpeg_truncated", P("jpg_truncated.jpg"), [P("jpg_truncated.jpg"), "JPEG"]),
            ("jpeg_soi_only", P("jpg_soi_only.jpg"), [P("jpg_soi_only.jpg"), "JPEG"]),
            ("jpeg_declares_60000x60000", P("jpg_enormous.jpg"), [P("jpg_enormous.jpg"), "60000"]),
            ("jpeg_zero_width", P("jpg_zero.jpg"), [P("jpg_zero.jpg"), ("zero", "corrupt")]),
            ("jpeg_bad_dqt_length", P("jpg_bad_dqt.jpg"), [P("jpg_bad_dqt.jpg"), "JPEG"]),
            ("jpeg_bad_sos_length", P("jpg_bad_sos.jpg"), [P("jpg_bad_sos.jpg"), "JPEG"]),
    ):
        lim = {"as": 2 * GIB} if "declares" in label else None
        images("image_%s" % label, [f], want, limits=lim)
    tap("npy_fifo", inp=P("fifo.npy"), want=[P("fifo.npy"), "not a regular file"], timeout=10)
    images("image_fifo", [P("fifo.png")], [P("fifo.png"), "not a regular file"], timeout=10)
    images("image_dev_zero", ["/dev/zero"], ["/dev/zero", "not a regular file"])
    images("image_4097_files", [P("good.png")] * 4097, ["--images", "4096"])
    images("image_second_of_three_bad", [P("good.png"), P("img.gif"), P("good.jpg")], [P("img.gif")])
    images("image_input_size_16x16", [P("good.png")], ["16x16", "32"], size="16x16")
    images("image_input_size_0x5", [P("good.png")], ["--input-size", "0x5"], size="0x5")
    images("image_load_interp_cubic", [P("good.png")], ["--load-interp", "cubic"],
           extra=["--load-interp", "cubic"])
    # 6000x6000: the activations would take over 16 GiB: refused with the memory it would need
    images("image_input_size_6000x6000", [P("good.png")], ["6000x6000", "GiB"], size="6000x6000")
    fuse("image_and_input_both", inp=["--input", X, "--images", P("good.png")], want=["--input", "--images"])
    fuse("image_option_without_files", inp=["--images"], want=["--images"])

    # ---- sizes the library refuses with the memory it would need ----
    bench("bench_size_8192x8192", size="8192x8192", want=["8192x8192", "GiB"])
    bench("bench_size_4096x4096_batch4", size="4096x4096", extra=["--batch", "4"],
          want=["4096x4096", "batch 4", "GiB"])
    bench("bench_size_16x16", size="16x16", want=["16x16", "32x32"])
    bench("bench_size_20000x20000", size="20000x20000", want=["20000x20000", "16384"])
    c.append(Case("layers_input_size_16x16", ["layers", "--model", "resnet50", "--input-size", "16x16"],
                  want=["16x16", "32"]))
    c.append(Case("layers_input_size_20000x20000", ["layers", "--model", "vgg16", "--input-size", "20000x20000"],
                  want=["20000x20000", "16384"]))
    c.append(Case("layers_top_not_224", ["layers", "--model", "vgg16", "--top", "--input-size", "100x100"],
                  want=["224x224", "100x100"]))

    # ---- option values ----
    for opt, val, want in (
            ("--threads", "0", ["--threads", "'0'"]),
            ("--threads", "two", ["--threads", "'two'"]),
            ("--threads", "-1", ["--threads", "'-1'"]),
            ("--threads", "99999999999999999999", ["--threads"]),
            ("--batch", "0", ["--batch", "'0'"]),
            ("--batch", "1e3", ["--batch", "'1e3'"]),
            ("--size", "0x5", ["--size", "'0x5'"]),
            ("--size", "5", ["--size", "'5'"]),
            ("--size", "5x", ["--size", "'5x'"]),
            ("--size", "x", ["--size"]),
            ("--size", "-5x5", ["--size", "-5x5"]),
            ("--size", "20000x5", ["20000x5"]),
            ("--resize", "cubic", ["--resize", "'cubic'"]),
            ("--resize", "", ["--resize"]),
            ("--mode", "turbo", ["--mode", "'turbo'"]),
    ):
        safe = re.sub(r"[^A-Za-z0-9]+", "_", opt.strip("-") + "_" + (val or "empty")).strip("_")
        fuse("option_fuse_%s" % safe, extra=[opt, val], want=want)
    tap("option_tap_threads_0", extra=["--threads", "0"], want=["--threads", "'0'"])
    tap("option_tap_batch_minus3", extra=["--batch", "-3"], want=["--batch", "'-3'"])
    tap("option_tap_batch_huge", extra=["--batch", "100000"], want=["--batch", "'100000'"])
    bench("option_bench_iters_0", extra=["--iters", "0"], want=["--iters", "'0'"])
    bench("option_bench_mode_turbo", extra=["--mode", "turbo"], want=["--mode", "'turbo'"])
    bench("option_bench_batch_0", extra=["--batch", "0"], want=["--batch", "'0'"])
    bench("option_bench_size_axb", size="axb", want=["--size", "'axb'"])
    for cmd, argv in (
            ("layers", ["layers", "--model", "foo"]),
            ("tap", ["tap", "--model", "foo", "--weights", R, "--layer", "conv1_relu", "--input", X, "--output", O]),
            ("make_weights", ["make-weights", "--model", "foo", "--output", "@OUT/w.h5"]),
    ):
        c.append(Case("option_%s_model_foo" % cmd, argv, want=["--model", "'foo'"]))
    c.append(Case("option_layers_model_missing", ["layers"], want=["--model"]))
    c.append(Case("option_layers_model_uppercase", ["layers", "--model", "ResNet50"], want=["'ResNet50'"]))
    c.append(Case("option_layers_input_size_bad", ["layers", "--model", "vgg16", "--input-size", "224"],
                  want=["--input-size", "'224'"]))
    c.append(Case("option_make_weights_seed_negative",
                  ["make-weights", "--model", "vgg16", "--seed", "-1", "--output", "@OUT/w.h5"],
                  want=["--seed", "'-1'"]))
    c.append(Case("option_make_weights_seed_text",
                  ["make-weights", "--model", "vgg16", "--seed", "abc", "--output", "@OUT/w.h5"],
                  want=["--seed", "'abc'"]))
    c.append(Case("option_make_weights_output_missing", ["make-weights", "--model", "vgg16"], want=["--output"]))
    c.append(Case("option_unknown_command", ["frobnicate"], want=["'frobnicate'"]))
    c.append(Case("option_no_command", [], want=["usage", "fusenet"]))
    for cmd, base in (
            ("layers", ["layers", "--model", "vgg16"]),
            ("tap", ["tap", "--model", "vgg16", "--weights", V, "--layer", "block1_conv1", "--input", X,
                     "--output", O]),
            ("fuse", ["fuse", "--resnet-weights", R, "--vgg-weights", V, "--input", X, "--output", O]),
            ("bench", ["bench", "--resnet-weights", R, "--vgg-weights", V, "--size", "32x32", "--iters", "1"]),
            ("make_weights", ["make-weights", "--model", "vgg16", "--output", "@OUT/w.h5"]),
    ):
        c.append(Case("option_%s_unknown" % cmd, base + ["--frobnicate", "1"], want=["'--frobnicate'"]))
        c.append(Case("option_%s_unknown_flag" % cmd, base[:1] + ["-x"] + base[1:], want=["'-x'"]))
        valued = {"layers": "--input-size", "make_weights": "--seed"}.get(cmd, "--threads")  # one it takes
        c.append(Case("option_%s_missing_value" % cmd, base + [valued], want=[valued, "value"]))
    # an option of another command: refused, naming the option and the command
    for cmd, argv, foreign in (
            ("layers", ["layers", "--model", "vgg16"], ["--alpha", "0.3"]),
            ("tap", ["tap", "--model", "vgg16", "--weights", V, "--layer", "block1_conv1", "--input", X,
                     "--output", O], ["--resnet-weights", R]),
            ("fuse", ["fuse", "--resnet-weights", R, "--vgg-weights", V, "--input", X, "--output", O],
             ["--model", "vgg16"]),
            ("bench", ["bench", "--resnet-weights", R, "--vgg-weights", V, "--size", "32x32", "--iters", "1"],
             ["--output", O]),
            ("embed", ["embed", "--resnet-weights", R, "--vgg-weights", V, "--output", O, P("good.png")],
             ["--query", P("good.png")]),
            ("similar", ["similar", "--resnet-weights", R, "--vgg-weights", V, "--embeddings", X,
                         "--names", P("names3.txt"), "--query", P("good.png")], ["--stats"]),
            ("viz", ["viz", "--model", "vgg16", "--weights", V, "--image", P("good.png"), "--output", "@OUT/v.png"],
             ["--seed", "3"]),
            ("make_weights", ["make-weights", "--model", "vgg16", "--output", "@OUT/w.h5"], ["--threads", "2"]),
            ("version", ["version"], ["--model", "vgg16"]),
            ("info", ["info"], ["--threads", "2"]),
    ):
        c.append(Case("option_%s_foreign" % cmd, argv + foreign, want=["'%s'" % foreign[0], cmd.replace("_", "-")]))
    for cmd, argv, want in (
            ("tap_no_weights", ["tap", "--model", "vgg16", "--layer", "block1_conv1", "--input", X, "--output", O],
             ["--weights"]),
            ("tap_no_layer", ["tap", "--model", "vgg16", "--weights", V, "--input", X, "--output", O], ["--layer"]),
            ("tap_no_input", ["tap", "--model", "vgg16", "--weights", V, "--layer", "block1_conv1", "--output", O],
             ["--input"]),
            ("tap_no_output", ["tap", "--model", "vgg16", "--weights", V, "--layer", "block1_conv1", "--input", X],
             ["--output"]),
            ("tap_no_model", ["tap", "--weights", V, "--layer", "block1_conv1", "--input", X, "--output", O],
             ["--model"]),
            ("fuse_no_resnet_weights", ["fuse", "--vgg-weights", V, "--input", X, "--output", O],
             ["--resnet-weights"]),
            ("fuse_no_vgg_weights", ["fuse", "--resnet-weights", R, "--input", X, "--output", O],
             ["--vgg-weights"]),
            ("fuse_no_output", ["fuse", "--resnet-weights", R, "--vgg-weights", V, "--input", X], ["--output"]),
            ("fuse_no_input", ["fuse", "--resnet-weights", R, "--vgg-weights", V, "--output", O],
             ["--input", "--images"]),
            ("bench_no_vgg_weights", ["bench", "--resnet-weights", R], ["--vgg-weights"]),
    ):
        c.append(Case("option_required_%s" % cmd, argv, want=want))
    # empty strings as paths: the message must still say which argument
    tap("option_empty_weights_path", weights="", inp=X,
        want=[("--weights", "empty")])
    tap("option_empty_input_path", inp="",
        want=[("--input", "empty")])
    tap("option_empty_output_path", out="",
        want=[("--output",)])
    fuse("option_empty_image_path", inp=["--images", "", "--input-size", "40x48"],
         want=[("--images", "empty")])

    # ---- outputs ----
    tap("output_in_missing_directory", out="@OUT/no/such/dir/out.npy", want=["@OUT/no/such/dir/out.npy"],
        unwant=[".tmp-"])
    tap("output_is_a_directory", out="@OUT/adir", pre={"adir": None}, want=["@OUT/adir"])
    fuse("output_in_missing_directory_fuse", out="@OUT/missing/out.npy", want=["@OUT/missing/out.npy"],
         unwant=[".tmp-"])
    c.append(Case("output_make_weights_missing_directory",
                  ["make-weights", "--model", "vgg16", "--output", "@OUT/missing/w.h5"], want=["@OUT/missing/w.h5"]))
    c.append(Case("output_make_weights_is_a_directory",
                  ["make-weights", "--model", "vgg16", "--output", "@OUT/adir"], pre={"adir": None},
                  want=["@OUT/adir"]))
    c.append(Case("output_make_weights_empty_path", ["make-weights", "--model", "vgg16", "--output", ""],
                  want=[("--output", "empty")]))
    # a good output file exists; the failing run must leave it as it was
    tap("output_kept_bad_layer", layer="nope", pre={"out.npy": GOOD_NPY}, want=["nope"])
    tap("output_kept_bad_weights", weights=P("w_vgg_nan.h5"), layer="block5_conv3", pre={"out.npy": GOOD_NPY},
        want=["block3_conv2"])
    tap("output_kept_bad_input", inp=P("x_truncated.npy"), pre={"out.npy": GOOD_NPY}, want=[P("x_truncated.npy")])
    fuse("output_kept_bad_image", inp=["--images", P("png_truncated.png"), "--input-size", "40x48"],
         pre={"out.npy": GOOD_NPY}, want=[P("png_truncated.png")])
    fuse("output_kept_bad_option", extra=["--size", "0x0"], pre={"out.npy": GOOD_NPY}, want=["--size"])
    # the write itself fails (file size limit: a full disk): no partial file, old file kept
    tap("output_kept_write_fails", layer="block1_conv2", pre={"out.npy": GOOD_NPY},
        limits={"fsize": 4096}, want=["@OUT/out.npy", "File too large"])
    tap("output_none_write_fails", layer="block1_conv2", limits={"fsize": 4096},
        want=["@OUT/out.npy", "File too large"])
    good_h5 = open(P("w_old_naming.h5"), "rb").read()
    c.append(Case("output_make_weights_none_write_fails",
                  ["make-weights", "--model", "vgg16", "--output", "@OUT/w.h5"], limits={"fsize": 1 << 20},
                  want=["@OUT/w.h5", "File too large"]))
    c.append(Case("output_make_weights_kept_write_fails",
                  ["make-weights", "--model", "vgg16", "--output", "@OUT/w.h5"], limits={"fsize": 1 << 20},
                  pre={"w.h5": good_h5}, want=["@OUT/w.h5", "File too large"]))
    c.append(Case("output_make_weights_kept_bad_model",
                  ["make-weights", "--model", "vgg17", "--output", "@OUT/w.h5"], pre={"w.h5": good_h5},
                  want=["'vgg17'"]))
    # ---- outputs never destroy what they replace (devices, links, modes) ----
    magic = {"npy": b"\x93NUMPY", "png": b"\x89PNG", "h5": b"\x89HDF",
             "txt": (P("emb_good") + "/a.png\n").encode(), "cal": b"fusenet-calibration "}
    writers = (
        ("tap", "npy", lambda out: ["tap", "--model", "vgg16", "--weights", V, "--layer", "block1_conv1",
                                    "--input", X32, "--output", out]),
        ("fuse", "npy", lambda out: ["fuse", "--resnet-weights", R, "--vgg-weights", V, "--input", X32,
                                     "--output", out]),
        ("embed", "npy", lambda out: ["embed", "--resnet-weights", R, "--vgg-weights", V, "--input-size", "32x32",
                                      "--output", out, P("emb_good")]),
        ("embed_names", "txt", lambda out: ["embed", "--resnet-weights", R, "--vgg-weights", V, "--input-size",
                                            "32x32", "--output", "@OUT/emb.npy", "--names", out, P("emb_good")]),
        ("viz", "png", lambda out: ["viz", "--model", "vgg16", "--weights", V, "--layer", "block1_conv1",
                                    "--image", P("good.png"), "--input-size", "32x32", "--output", out]),
        ("make_weights", "h5", lambda out: ["make-weights", "--model", "vgg16", "--output", out]),
        ("calibrate", "cal", lambda out: ["calibrate", "--resnet-weights", R, "--vgg-weights", V, "--input", X32,
                                          "--output", out]),
    )

    # The device cases write to devices of their own: as root, a writer that
    # wrongly replaced its output would otherwise turn this machine's /dev/null
    # or /dev/full into a regular file. Root makes the same character devices
    # (same major/minor) in the case's directory; anyone else cannot replace
    # files in /dev, so the real ones are safe to use.
    def device(name):
        if os.geteuid() != 0:
            return "/dev/" + name, None
        rdev = os.stat("/dev/" + name).st_rdev
        return "@OUT/" + name, lambda d: os.mknod(os.path.join(d, name), 0o666 | stat.S_IFCHR, rdev)

    def still_device(path, rdev):
        def check(d):
            full = path.replace("@OUT", d)
            st = os.lstat(full)
            return None if stat.S_ISCHR(st.st_mode) and st.st_rdev == rdev else "%s is no longer the device" % full
        return check

    def starts(kind):
        return lambda data: None if data.startswith(magic[kind]) else "stdout does not start with the %s data" % kind

    def file_starts(rel, kind, mode=None, link=None):
        def check(d):
            full = os.path.join(d, rel)
            if link and (not os.path.islink(os.path.join(d, link)) or
                         os.path.realpath(os.path.join(d, link)) != os.path.realpath(full)):
                return "%s is no longer a link to %s" % (link, rel)
            with open(full, "rb") as f:
                if f.read(len(magic[kind])) != magic[kind]:
                    return "%s was not written" % rel
            if mode is not None and stat.S_IMODE(os.stat(full).st_mode) != mode:
                return "%s has mode %o, expected %o" % (rel, stat.S_IMODE(os.stat(full).st_mode), mode)
            return None
        return check

    def chmod(rel, mode):
        return lambda d: os.chmod(os.path.join(d, rel), mode)

    def link(rel, target):
        return lambda d: os.symlink(target, os.path.join(d, rel))

    null_rdev, full_rdev = os.stat("/dev/null").st_rdev, os.stat("/dev/full").st_rdev
    (null, make_null), (full, make_full) = device("null"), device("full")
    # /dev/stdout is a link to /proc/self/fd/1: root gets a link of its own
    out_link, make_out_link = "/dev/stdout", None
    if os.geteuid() == 0:
        out_link, make_out_link = "@OUT/stdout", link("stdout", "/proc/self/fd/1")
    for w, kind, argv in writers:
        extra_out = ["emb.npy"] if w == "embed_names" else []
        # calibrate reports what it did on stderr; the others print nothing
        report = {} if w != "calibrate" else {"warnings_ok": True, "stderr_check": lambda err: None if err.startswith(
            "calibrated on 1 images") else "report is %r" % err}
        c.append(Case("output_dev_null_%s" % w, argv(null), ok=True, outputs=extra_out, setup=make_null,
                      check=still_device(null, null_rdev), **report))
        c.append(Case("output_dev_full_%s" % w, argv(full), want=[full, "No space left on device"],
                      setup=make_full, check=still_device(full, full_rdev)))
        c.append(Case("output_dev_stdout_%s" % w, argv(out_link), ok=True, outputs=extra_out,
                      setup=make_out_link, stdout_check=starts(kind), **report))
        old = b"old contents\n"
        c.append(Case("output_symlink_%s" % w, argv("@OUT/link.%s" % kind), ok=True, outputs=extra_out,
                      pre={"real/target.%s" % kind: old}, setup=link("link.%s" % kind, "real/target.%s" % kind),
                      check=file_starts("real/target.%s" % kind, kind, link="link.%s" % kind), **report))
        c.append(Case("output_mode_0600_kept_%s" % w, argv("@OUT/secret.%s" % kind), ok=True, outputs=extra_out,
                      pre={"secret.%s" % kind: old}, setup=chmod("secret.%s" % kind, 0o600),
                      check=file_starts("secret.%s" % kind, kind, mode=0o600), **report))
    long_name = "n" * 251 + ".npy"  # 255 bytes: NAME_MAX; the temporary name must not be longer
    tap("output_name_255_bytes", layer="block1_conv1", inp=X32, out="@OUT/" + long_name, ok=True,
        outputs=[long_name], check=file_starts(long_name, "npy"))
    tap("output_dangling_symlink", layer="block1_conv1", inp=X32, out="@OUT/link.npy", ok=True,
        setup=link("link.npy", "made.npy"), outputs=["made.npy"], check=file_starts("made.npy", "npy", link="link.npy"))

    def fifo_reader(rel):
        got = {}

        def setup(d):
            full = os.path.join(d, rel)
            os.mkfifo(full)
            import threading

            def read():
                with open(full, "rb") as f:
                    got["data"] = f.read()
            got["thread"] = threading.Thread(target=read, daemon=True)
            got["thread"].start()

        def check(d):
            got["thread"].join(10)
            if not stat.S_ISFIFO(os.lstat(os.path.join(d, rel)).st_mode):
                return "%s is no longer a FIFO" % rel
            return None if got.get("data", b"").startswith(magic["npy"]) else "nothing read from the FIFO"
        return setup, check

    fs, fc = fifo_reader("pipe.npy")
    tap("output_fifo_written_in_place", layer="block1_conv1", inp=X32, out="@OUT/pipe.npy", ok=True, setup=fs,
        check=fc, timeout=30)
    tap("output_socket_refused", layer="block1_conv1", inp=X32, out="@OUT/sock.npy",
        setup=lambda d: __import__("socket").socket(__import__("socket").AF_UNIX).bind(os.path.join(d, "sock.npy")),
        want=["@OUT/sock.npy", "not a regular file"])

    # ---- weights looked up by their official names ----
    c.append(Case("weights_not_given_no_models", ["tap", "--model", "vgg16", "--layer", "block1_conv1", "--input", X,
                                                  "--output", O],
                  want=["--weights", "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", "FUSENET_MODELS"]))
    c.append(Case("weights_not_given_models_dir_missing", ["fuse", "--input", X, "--output", O],
                  env={"FUSENET_MODELS": P("no_such_dir")},
                  want=["--resnet-weights", P("no_such_dir")]))
    c.append(Case("weights_not_given_found_broken", ["tap", "--model", "vgg16", "--layer", "block1_conv1",
                                                     "--input", X, "--output", O],
                  env={"FUSENET_MODELS": P("models_broken")},
                  want=[P("models_broken/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"), "HDF5"]))
    c.append(Case("option_positional_stray", ["tap", "--model", "vgg16", "--weights", V, "--layer", "block1_conv1",
                                              "--input", X, "--output", O, "stray"], want=["'stray'"]))

    # ---- embed ----
    def embed(name, paths, extra=(), out="@OUT/emb.npy", **kw):
        argv = ["embed", "--resnet-weights", R, "--vgg-weights", V, "--input-size", "32x32", "--output", out] + \
            list(extra) + list(paths)
        c.append(Case(name, argv, **kw))

    embed("embed_no_paths", [], want=["images or directories"])
    embed("embed_missing_path", [P("no_such_dir")], want=[P("no_such_dir"), "No such file"])
    embed("embed_no_images_in_directory", [P("emb_none")], want=[P("emb_none"), "no .jpg"])
    embed("embed_all_unreadable", [P("emb_bad")], want=["none of the 2 files"], warnings_ok=True)
    embed("embed_strict_unreadable", [P("emb_mixed")], extra=["--strict", "--names", "@OUT/names.txt"],
          want=[P("emb_mixed/c.png"), "PNG"])
    embed("embed_strict_kept", [P("emb_mixed")], extra=["--strict", "--names", "@OUT/names.txt"],
          pre={"emb.npy": GOOD_NPY, "names.txt": b"x.png\n"}, want=[P("emb_mixed/c.png")])
    embed("embed_skips_unreadable_ok", [P("emb_mixed")], extra=["--names", "@OUT/names.txt"], ok=True,
          warnings_ok=True, outputs=["emb.npy", "names.txt"],
          check=lambda d: None if (read_npy(os.path.join(d, "emb.npy")).shape == (2, 1536) and
                                   open(os.path.join(d, "names.txt")).read().count("\n") == 2)
          else "expected 2 rows and 2 names")
    embed("embed_names_same_as_output", [P("emb_good")], extra=["--names", "@OUT/emb.npy"],
          want=["--names", "--output"])
    embed("embed_names_in_missing_directory", [P("emb_good")], extra=["--names", "@OUT/missing/names.txt"],
          want=["@OUT/missing/names.txt"], unwant=[".tmp-"])
    embed("embed_output_in_missing_directory", [P("emb_good")], extra=["--names", "@OUT/names.txt"],
          out="@OUT/missing/emb.npy", want=["@OUT/missing/emb.npy"], unwant=[".tmp-"])
    embed("embed_pool_median", [P("emb_good")], extra=["--pool", "median"], want=["--pool", "'median'"])
    embed("embed_input_size_16x16", [P("emb_good")], extra=["--input-size", "16x16"], want=["--input-size", "16x16"])
    embed("embed_input_size_9000x9000", [P("emb_good")], extra=["--input-size", "9000x9000"],
          want=["--input-size", "9000x9000"])
    embed("embed_weights_other_network", [P("emb_good")], extra=["--resnet-weights", V], want=[V, "VGG16"])
    embed("embed_layer_unknown", [P("emb_good")], extra=["--vgg-layer", "block6_conv1"], want=["block6_conv1"])
    c.append(Case("embed_output_missing", ["embed", "--resnet-weights", R, "--vgg-weights", V, P("emb_good")],
                  want=["--output"]))

    # ---- similar ----
    def similar(name, emb=None, names=None, query=None, extra=(), **kw):
        argv = ["similar", "--resnet-weights", R, "--vgg-weights", V, "--input-size", "32x32",
                "--embeddings", emb or P("emb.npy"), "--names", names or P("names.txt"),
                "--query", query or P("good.png")] + list(extra)
        c.append(Case(name, argv, **kw))

    similar("similar_embeddings_missing", emb=P("no_such.npy"), want=[P("no_such.npy")])
    similar("similar_embeddings_rank4", emb=X, want=[X, "(N, C)"])
    similar("similar_embeddings_not_npy", emb=P("good.png"), want=[P("good.png"), ".npy"])
    similar("similar_embeddings_other_taps", emb=P("emb_dim100.npy"), want=[P("emb_dim100.npy"), "100", "1536"])
    similar("similar_names_count_mismatch", names=P("names3.txt"), want=[P("names3.txt"), "2 rows", "3 names"])
    similar("similar_names_missing", names=P("no_such.txt"), want=[P("no_such.txt"), "No such file"])
    similar("similar_names_directory", names=P("emb_good"), want=[P("emb_good"), ("directory", "Is a dir")])
    similar("similar_query_missing", query=P("no_such.png"), want=[P("no_such.png")])
    similar("similar_query_gif", query=P("img.gif"), want=[P("img.gif"), "GIF"])
    similar("similar_query_truncated", query=P("png_truncated.png"), want=[P("png_truncated.png")])
    similar("similar_k_0", extra=["-k", "0"], want=["-k", "'0'"])
    similar("similar_pool_bad", extra=["--pool", "sum"], want=["--pool", "'sum'"])
    similar("similar_weights_missing", extra=["--vgg-weights", P("no_such.h5")], want=[P("no_such.h5")])
    c.append(Case("similar_query_option_missing", ["similar", "--embeddings", P("emb.npy"), "--names",
                                                   P("names.txt")], want=["--query"]))

    # ---- viz ----
    def viz(name, image=None, model="vgg16", weights=None, extra=(), out="@OUT/viz.png", **kw):
        argv = ["viz", "--model", model, "--weights", weights or (V if model == "vgg16" else R),
                "--image", image or P("good.png"), "--input-size", "32x32", "--output", out] + list(extra)
        c.append(Case(name, argv, **kw))

    viz("viz_image_missing", image=P("no_such.png"), want=[P("no_such.png")])
    viz("viz_image_bmp", image=P("img.bmp"), want=[P("img.bmp"), "BMP"])
    viz("viz_image_enormous", image=P("png_enormous.png"), want=[P("png_enormous.png"), "100000"])
    viz("viz_alpha_2", extra=["--alpha", "2"], want=["--alpha", "'2'"])
    viz("viz_alpha_nan", extra=["--alpha", "nan"], want=["--alpha", "'nan'"])
    viz("viz_alpha_text", extra=["--alpha", "half"], want=["--alpha", "'half'"])
    viz("viz_output_size_0x0", extra=["--output-size", "0x0"], want=["--output-size", "'0x0'"])
    viz("viz_output_size_20000x20000", extra=["--output-size", "20000x20000"], want=["--output-size"])
    viz("viz_input_size_16x16", extra=["--input-size", "16x16"], want=["--input-size", "16x16"])
    viz("viz_layer_unknown", extra=["--layer", "block5_conv9"], want=["block5_conv9", "did you mean"])
    viz("viz_weights_other_network", model="resnet50", weights=V, want=[V, "VGG16"])
    viz("viz_weights_nan", weights=P("w_vgg_nan.h5"), want=[P("w_vgg_nan.h5"), "block3_conv2", "NaN"])
    viz("viz_output_in_missing_directory", out="@OUT/missing/viz.png", want=["@OUT/missing/viz.png"],
        unwant=[".tmp-"])
    viz("viz_output_kept_bad_image", image=P("png_truncated.png"), pre={"viz.png": open(P("good.png"), "rb").read()},
        want=[P("png_truncated.png")])
    c.append(Case("viz_image_option_missing", ["viz", "--model", "vgg16", "--weights", V, "--output", "@OUT/v.png"],
                  want=["--image"]))

    # ---- an output is never one of the inputs; arguments checked before any work ----
    png = open(P("good.png"), "rb").read()
    x_bytes = open(X, "rb").read()
    viz("output_is_image_viz", image="@OUT/pic.png", out="@OUT/pic.png", pre={"pic.png": png},
        want=["--output", "--image", "@OUT/pic.png", "same file"])
    viz("output_symlink_to_image_viz", image="@OUT/pic.png", out="@OUT/out.png", pre={"pic.png": png},
        setup=link("out.png", "pic.png"), want=["--output", "--image", "same file"])
    tap("output_is_input_tap", inp="@OUT/in.npy", out="@OUT/in.npy", pre={"in.npy": x_bytes},
        want=["--output", "--input", "same file"])
    tap("output_is_weights_tap", weights="@OUT/w.h5", out="@OUT/w.h5",
        setup=lambda d: os.link(V, os.path.join(d, "w.h5")), want=["--output", "--weights", "same file"])
    fuse("output_is_image_fuse", inp=["--images", "@OUT/a.png", "--input-size", "32x32"], out="@OUT/a.png",
         pre={"a.png": png}, want=["--output", "--images", "same file"])
    fuse("output_hard_link_to_input_fuse", inp=["--input", "@OUT/in.npy"], out="@OUT/out.npy",
         pre={"in.npy": x_bytes}, setup=lambda d: os.link(os.path.join(d, "in.npy"), os.path.join(d, "out.npy")),
         want=["--output", "--input", "same file"])
    embed("embed_output_is_an_image", ["@OUT/imgs"], out="@OUT/imgs/a.png", pre={"imgs/a.png": png},
          want=["--output", "@OUT/imgs/a.png", "same file"])
    embed("embed_names_same_as_output_dotted", [P("emb_good")], extra=["--names", "@OUT/./emb.npy"],
          want=["--names", "--output", "same file"])
    embed("embed_names_directory_kept", [P("emb_good")], extra=["--names", "@OUT/adir"],
          pre={"emb.npy": GOOD_NPY, "adir": None}, want=["@OUT/adir", "--names", "Is a directory"], timeout=10)
    embed("embed_names_trailing_slash_kept", [P("emb_good")], extra=["--names", "@OUT/names/"],
          pre={"emb.npy": GOOD_NPY}, want=["@OUT/names/", "--names"], timeout=10)

    # ---- text inputs that never end or never open ----
    similar("similar_names_dev_zero", names="/dev/zero", want=["/dev/zero", "not a regular file"], timeout=10,
            limits={"as": 2 * GIB})
    similar("similar_names_fifo", names=P("fifo.txt"), want=[P("fifo.txt"), "not a regular file"], timeout=10)
    similar("similar_names_over_limit", names=P("names_huge.txt"), want=[P("names_huge.txt"), "limit"], timeout=10,
            limits={"as": 2 * GIB})

    # ---- sizes refused before any work, naming the option, with the memory needed ----
    images("image_input_size_100000x100000", [P("good.png")], ["--input-size", "100000x100000", "8192"],
           size="100000x100000", limits={"as": 2 * GIB})
    images("image_input_size_16384x16384", [P("good.png")], ["--input-size", "16384x16384", "8192"],
           size="16384x16384", limits={"as": 2 * GIB})
    images("image_100_at_8192x8192", [P("good.png")] * 100, ["--images", "8192x8192", "GiB"], size="8192x8192",
           limits={"as": 2 * GIB})
    fuse("option_fuse_size_16384x16384", extra=["--size", "16384x16384"], want=["--size", "16384x16384", "GiB"],
         limits={"as": 2 * GIB})
    fuse("option_fuse_size_1800x1800", extra=["--size", "1800x1800"], want=["--size", "1800x1800", "GiB"],
         limits={"as": 2 * GIB})
    embed("embed_batch_4096_at_2048x2048", [P("emb_good")], extra=["--batch", "4096", "--input-size", "2048x2048"],
          want=["--batch", "4096", "2048x2048", "GiB"], limits={"as": 2 * GIB})

    # ---- NaN and Inf never pass as results ----
    OV = P("w_vgg_overflow.h5")
    tap("non_finite_output_tap", weights=OV, layer="block1_conv2", want=["image 0", X, "non-finite", "Inf"])
    # (block1_conv2: deeper layers turn Inf into NaN, and a fused ReLU then into 0, out of reach of a check here)
    fuse("non_finite_output_fuse", vw=OV, inp=["--images", P("good.png"), "--input-size", "32x32"],
         extra=["--vgg-layer", "block1_conv2"], want=[P("good.png"), "fused map", "non-finite"])
    viz("non_finite_output_viz", weights=OV, extra=["--layer", "block1_conv2"], want=[P("good.png"), "non-finite"])
    embed("non_finite_embedding", [P("emb_good")], extra=["--vgg-weights", OV, "--vgg-layer", "block1_conv2"],
          want=[P("emb_good/a.png"), "non-finite"])
    similar("non_finite_query", emb=P("emb_1088.npy"), extra=["--vgg-weights", OV, "--vgg-layer", "block1_conv2"],
            want=["--query", P("good.png"), "non-finite"])
    similar("similar_embeddings_nan", emb=P("emb_nan.npy"), want=[P("emb_nan.npy"), "row 0", "NaN"])
    similar("similar_embeddings_inf_row", emb=P("emb_inf.npy"), want=[P("emb_inf.npy"), "row 1", "b.jpg", "+Inf"])

    # ---- embed's summary counts every skipped file ----
    def summary(text):
        return lambda err: None if err.strip().endswith(text) else "summary is not %r" % text
    embed("embed_summary_counts_skips", [P("emb_skips")], ok=True, warnings_ok=True, outputs=["emb.npy"],
          stderr_check=summary("embedded 2 of 4 files (2 skipped)"))

    # ---- interrupted runs leave nothing behind; stale temporaries are swept ----
    def temp_exists(d, t):
        return any(n.startswith(".fusenet-") for n in os.listdir(d))

    def after(seconds):
        return lambda d, t: t > seconds

    c.append(Case("interrupt_make_weights_while_writing", ["make-weights", "--model", "vgg16", "--output", "@OUT/w.h5"],
                  pre={"w.h5": good_h5}, interrupt=(signal.SIGINT, temp_exists), want=["interrupted", "SIGINT"]))
    fuse("interrupt_fuse_while_writing", extra=["--size", "256x256"], pre={"out.npy": GOOD_NPY},
         interrupt=(signal.SIGTERM, temp_exists), want=["interrupted", "SIGTERM"])
    # 16 images take a few seconds (1.1 s for 4 on a 2-core AVX2 machine): the signal comes mid-run
    fuse("interrupt_fuse_mid_run", inp=["--images"] + [P("good.png")] * 16, interrupt=(signal.SIGINT, after(0.5)),
         want=["interrupted", "SIGINT"])
    # started with SIGINT ignored (nohup, a script's '&'): the signal changes nothing
    fuse("interrupt_ignored_as_nohup", inp=["--images"] + [P("good.png")] * 16,
         interrupt=(signal.SIGINT, after(0.5), signal.SIG_IGN), ok=True, outputs=["out.npy"],
         check=lambda d: None if read_npy(os.path.join(d, "out.npy")).shape[0] == 16 else "not 16 images")

    def stale_temps(d):
        dead = subprocess.Popen(["true"])
        dead.wait()
        for name in (".fusenet-%d-0.tmp" % dead.pid, ".fusenet-1-0.tmp", ".fusenet-%d-0.tmp.bak" % dead.pid):
            write_bytes(os.path.join(d, name), b"left by a killed run")

    def swept(d):
        left = sorted(n for n in os.listdir(d) if n.startswith(".fusenet-"))
        want = sorted([".fusenet-1-0.tmp"] + [n for n in left if n.endswith(".bak")])
        return None if left == want and len(want) == 2 else "temporaries left: %s" % ", ".join(left)
    tap("output_stale_temporaries_swept", layer="block1_conv1", inp=X32, ok=True, outputs=["out.npy"],
        setup=stale_temps, check=swept)

    # ---- int8: calibrations (fusenet calibrate, --mode int8 --calibration) ----
    CAL_OTHER = ("fusenet-calibration 1\nmethod mse\nimages 4\n"
                 "model 0 resnet50 0123456789abcdef 1 conv4_block6_out\n"
                 "model 1 vgg16 0123456789abcdef 1 block5_conv3\n"
                 "layer 0 conv1_relu 0 2 2 2 2 0 0\nend\n").encode()
    int8 = ["--mode", "int8", "--calibration", "@OUT/cal.txt"]
    fuse("int8_without_calibration", extra=["--mode", "int8"], want=["--mode int8 needs --calibration"])
    fuse("calibration_without_int8", extra=["--calibration", "@OUT/cal.txt"], pre={"cal.txt": CAL_OTHER},
         want=["--calibration CAL is for --mode int8"])
    fuse("calibration_missing", extra=int8, want=["@OUT/cal.txt", "No such file"])
    fuse("calibration_not_a_calibration", extra=["--mode", "int8", "--calibration", P("w_text.h5")],
         want=[P("w_text.h5"), "line 1", "not a calibration file"])
    fuse("calibration_truncated", extra=int8, pre={"cal.txt": CAL_OTHER[:-4]}, want=["@OUT/cal.txt", "truncated"])
    fuse("calibration_other_weights", extra=int8, pre={"cal.txt": CAL_OTHER},
         want=["calibration does not match", "resnet50"])
    tap("calibration_other_weights_tap", model="resnet50", layer="conv4_block6_out", inp=X32,
        extra=int8, pre={"cal.txt": CAL_OTHER}, want=["calibration does not match"])
    bench("calibration_other_weights_bench", extra=int8, pre={"cal.txt": CAL_OTHER},
          want=["calibration does not match"])
    c.append(Case("calibrate_without_images", ["calibrate", "--resnet-weights", R, "--vgg-weights", V,
                                               "--output", "@OUT/cal.txt"],
                  want=["calibration images are required"]))
    c.append(Case("calibrate_output_is_input", ["calibrate", "--resnet-weights", R, "--vgg-weights", V,
                                                "--input", X32, "--output", X32], want=["same file"]))
    c.append(Case("calibrate_input_wrong_shape", ["calibrate", "--resnet-weights", R, "--vgg-weights", V,
                                                  "--input", "@OUT/bad.npy", "--output", "@OUT/cal.txt"],
                  pre={"bad.npy": GOOD_NPY}, want=["@OUT/bad.npy", "(N,H,W,3)"]))
    c.append(Case("calibrate_unreadable_image", ["calibrate", "--resnet-weights", R, "--vgg-weights", V,
                                                 "--images", P("w_text.h5"), "--output", "@OUT/cal.txt"],
                  want=[P("w_text.h5")]))
    return c


# ---------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------

def snapshot(d):
    """{relative path: bytes, None (directory), ("link", target) or ("special", mode)} of
    everything under d (FIFOs and devices are not opened)."""
    out = {}
    for root, dirs, files in os.walk(d):
        for x in dirs:
            out[os.path.relpath(os.path.join(root, x), d)] = None
        for x in files:
            full = os.path.join(root, x)
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                out[os.path.relpath(full, d)] = ("link", os.readlink(full))
            elif not stat.S_ISREG(st.st_mode):
                out[os.path.relpath(full, d)] = ("special", stat.S_IFMT(st.st_mode))
            else:
                with open(full, "rb") as f:
                    out[os.path.relpath(full, d)] = f.read()
    return out


def make_preexec(limits):
    def pre():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write over the limit fails with EFBIG
        if "as" in limits:
            resource.setrlimit(resource.RLIMIT_AS, (limits["as"], limits["as"]))
        if "fsize" in limits:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limits["fsize"], limits["fsize"]))
    return pre if limits else None


def run_case(case, fusenet, wrapper, checker_status, casedir):
    shutil.rmtree(casedir, ignore_errors=True)
    os.makedirs(casedir)
    for rel, data in case.pre.items():
        full = os.path.join(casedir, rel)
        if data is None:
            os.makedirs(full)
        else:
            os.makedirs(os.path.dirname(full), exist_ok=True)
            write_bytes(full, data)
    if case.setup:
        case.setup(casedir)
    before = snapshot(casedir)
    argv = [a.replace("@OUT", casedir) for a in case.argv]
    want = [tuple(x.replace("@OUT", casedir) for x in (w if isinstance(w, tuple) else (w,))) for w in case.want]
    cmd = wrapper + [fusenet] + argv
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "2")
    env.pop("FUSENET_MODELS", None)
    for k, v in case.env.items():
        env[k] = v.replace("@OUT", casedir)
    timeout = case.timeout * (10 if wrapper and case.timeout < TIMEOUT else 1)
    held = h5py.File(case.hold, "r+") if case.hold else None
    problems = []
    try:
        if case.interrupt:
            r, sent = run_interrupted(cmd, env, casedir, case.interrupt, timeout)
            if not sent:
                problems.append("the run ended before the signal was sent")
        else:
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, env=env,
                               cwd=casedir, preexec_fn=make_preexec(case.limits))
    except subprocess.TimeoutExpired:
        return ["hangs: killed after %d s" % timeout], "", None
    finally:
        if held is not None:
            held.close()
    rc = r.returncode
    err = r.stderr.decode("utf-8", "replace")
    interrupted = 128 + case.interrupt[0] if case.interrupt and not case.ok else None
    if rc < 0:
        problems.append("killed by signal %d (%s)" % (-rc, signal.Signals(-rc).name))
    elif interrupted and rc != interrupted:
        problems.append("exit status %d, expected %d after the signal" % (rc, interrupted))
    elif rc >= 128 and rc != interrupted:
        problems.append("exit status %d (a signal or abort?)" % rc)
    if checker_status is not None and rc == checker_status:
        problems.append("exit status %d: the checker (valgrind, sanitizer) reported errors" % rc)
    after = snapshot(casedir)
    if case.ok:
        if rc != 0:
            problems.append("exit status %d, expected success" % rc)
        if err and not case.warnings_ok:
            problems.append("stderr not empty")
        extra = set(after) - set(before) - set(case.outputs)
        if extra:
            problems.append("stray files: %s" % ", ".join(sorted(extra)))
        if rc == 0 and case.check:
            why = case.check(casedir)
            if why:
                problems.append(why)
        if rc == 0 and case.stdout_check:
            why = case.stdout_check(r.stdout)
            if why:
                problems.append(why)
        if rc == 0 and case.stderr_check:
            why = case.stderr_check(err)
            if why:
                problems.append(why)
    else:
        if rc == 0:
            problems.append("exit status 0 on a bad input")
        lines = err.split("\n")
        if case.warnings_ok and len(lines) > 2 and err.endswith("\n"):
            reports = lines[:-2]
            if not all(x.startswith("fusenet: skipped: ") for x in reports):
                problems.append("lines before the last are not 'fusenet: skipped: ...' reports")
            err = lines[-2] + "\n"
            lines = lines[-2:]
        if not err.endswith("\n") or len(lines) != 2 or not lines[0].strip():
            problems.append("stderr is not exactly one line (%d lines)" % (len(lines) - 1 if err.endswith("\n")
                                                                           else len(lines)))
        for alts in want:
            if not any(a in err for a in alts):
                problems.append("message lacks %s" % " or ".join(repr(a) for a in alts))
        for bad in case.unwant:
            if bad in err:
                problems.append("message has %r" % bad)
        created = sorted(set(after) - set(before))
        if created:
            problems.append("created: %s" % ", ".join(created))
        for rel, data in before.items():
            if rel not in after:
                problems.append("pre-existing %s was removed" % rel)
            elif after[rel] != data:
                problems.append("pre-existing %s was modified" % rel)
        if case.check:
            why = case.check(casedir)
            if why:
                problems.append(why)
    return problems, err, rc


def run_interrupted(cmd, env, cwd, interrupt, timeout):
    """Runs cmd, sends the signal once trigger(cwd, elapsed) holds; (CompletedProcess, sent)."""
    sig, trigger = interrupt[:2]
    disposition = interrupt[2] if len(interrupt) > 2 else signal.SIG_DFL

    def pre():
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_DFL)
        signal.signal(sig, disposition)

    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd, preexec_fn=pre)
    t0, sent = time.time(), False
    while p.poll() is None and time.time() - t0 < timeout:
        if trigger(cwd, time.time() - t0):
            p.send_signal(sig)
            sent = True
            break
        time.sleep(0.001)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise
    return subprocess.CompletedProcess(cmd, p.returncode, out, err), sent


def build_references(fusenet, fx, work):
    """float32 runs the dtype-conversion cases are compared with."""
    d = os.path.join(work, "reference")
    os.makedirs(d, exist_ok=True)
    jobs = (
        ("vgg_block5_conv3_f32.npy", "vgg16", fx.vgg, "block5_conv3"),
        ("vgg_block5_conv3_f16_as_f32.npy", "vgg16", fx.p("w_vgg_f16_as_f32.h5"), "block5_conv3"),
        ("resnet_conv2_block1_out_f32.npy", "resnet50", fx.resnet, "conv2_block1_out"),
    )
    for out, model, weights, layer in jobs:
        for n in fx.needed_by([weights]):
            fx.need(n)
        r = subprocess.run([fusenet, "tap", "--model", model, "--weights", weights, "--layer", layer,
                            "--input", fx.p("x_small.npy"), "--output", os.path.join(d, out)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=TIMEOUT)
        if r.returncode != 0:
            raise RuntimeError("reference run %s failed: %s" % (out, r.stderr.decode()))
    fx.release()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fusenet", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--wrapper", default="")
    ap.add_argument("--checker-status", type=int, default=None)
    ap.add_argument("--no-as-limit", action="store_true")
    ap.add_argument("--only", default=None, help="run the cases whose name matches this regular expression")
    ap.add_argument("--list", action="store_true", help="list the case names and exit")
    ap.add_argument("--verbose", action="store_true", help="print the stderr line of passing cases too")
    ap.add_argument("--keep-fixtures", action="store_true",
                    help="keep WORKDIR/fixtures after a run where every case passed (the next run starts sooner)")
    a = ap.parse_args()
    fusenet = os.path.abspath(a.fusenet)
    work = os.path.abspath(a.workdir)
    os.makedirs(work, exist_ok=True)
    t0 = time.time()
    fx = Fixtures(fusenet, os.path.join(work, "fixtures"))
    fx.build()
    fx.release()  # those an older run left
    cases = make_cases(fx, work)
    names = [x.name for x in cases]
    dup = sorted(set(n for n in names if names.count(n) > 1))
    if dup:
        sys.exit("hostile.py: duplicate case names: %s" % ", ".join(dup))
    if a.list:
        for x in cases:
            print(x.name + ("  [SRC-BUG]" if x.bug else ""))
        return 0
    if a.only:
        cases = [x for x in cases if re.search(a.only, x.name)]
    if a.no_as_limit:
        for x in cases:
            x.limits.pop("as", None)
    if any(x.ok for x in cases):
        build_references(fusenet, fx, work)
    wrapper = shlex.split(a.wrapper)
    print("hostile: fixtures ready in %.1f s; %d cases" % (time.time() - t0, len(cases)), flush=True)
    passed = failed = 0
    if wrapper:
        skipped = [x for x in cases if x.limits or x.interrupt]
        cases = [x for x in cases if not (x.limits or x.interrupt)]
        for x in skipped:
            print("SKIP %s (resource limits and signals do not combine with the wrapper)" % x.name, flush=True)
    # The large fixtures (copies of a whole weights file) exist only while a case uses them,
    # which keeps the disk this needs to about the two weight files and two of their copies.
    needs = [fx.needed_by(x.strings()) for x in cases]
    for i, case in enumerate(cases):
        t = time.time()
        for n in needs[i]:
            fx.need(n)
        casedir = os.path.join(work, "cases", case.name)
        problems, err, rc = run_case(case, fusenet, wrapper, a.checker_status, casedir)
        fx.release(keep=needs[i + 1] if i + 1 < len(cases) else ())
        tag = "  [SRC-BUG: %s]" % case.bug if case.bug else ""
        if problems:
            failed += 1
            print("FAIL %s (%.1f s)%s" % (case.name, time.time() - t, tag), flush=True)
            print("     exit %s; stderr: %s" % (rc, err.strip().replace("\n", "\n             ")[:2000]))
            for p in problems:
                print("     - %s" % p)
        else:
            passed += 1
            shutil.rmtree(casedir, ignore_errors=True)  # a failing case's directory is kept to look at
            print("PASS %s (%.1f s)" % (case.name, time.time() - t), flush=True)
            if a.verbose and err:
                print("     %s" % err.strip())
    print("hostile: total time %.1f s" % (time.time() - t0))
    print("hostile: %d passed, %d failed" % (passed, failed))
    if not failed and not a.keep_fixtures:
        shutil.rmtree(fx.d, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
