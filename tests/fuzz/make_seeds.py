#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/{npy,image,h5}.

The outputs are committed; rerun this only to change the seeds. Needs numpy,
h5py and Pillow. Small valid files of every flavour the parsers accept, plus a
few near-misses, so the fuzzers start from deep inside the formats:

  npy/    the .npy files of tests/data/npy (valid and refused ones)
  image/  the small images of tests/data, plus interlaced / 1-bit / palette
          with transparency PNGs and 4:2:0, grey progressive and restart-marker JPEGs
  h5/     tiny legacy Keras weight files: ResNet50 conv1_conv + conv1_bn
          (nested Keras-2 weight names) and VGG16 block1_conv1 (flat Keras-1
          names), in several storage variants (fixed/variable-length strings,
          model_weights wrapper, chunked layer_names, float16/float64/big-endian
          and gzip-chunked datasets). They hold only those layers, so a full
          load reports the other layers missing; a load with needed_layers
          conv1_bn / block1_conv1 succeeds.
"""
import io
import os
import shutil

import h5py
import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "data")
OUT = os.path.join(HERE, "corpus")


def out(kind, name):
    d = os.path.join(OUT, kind)
    os.makedirs(d, exist_ok=True)
    return os.path.join(d, name)


def npy_seeds():
    src = os.path.join(DATA, "npy")
    for f in sorted(os.listdir(src)):
        if f.endswith(".npy"):
            shutil.copyfile(os.path.join(src, f), out("npy", f))


def image_seeds():
    for f in sorted(os.listdir(DATA)):
        p = os.path.join(DATA, f)
        if f.endswith((".png", ".jpg")) and os.path.getsize(p) < 8192:
            shutil.copyfile(p, out("image", f))
    rng = np.random.default_rng(7)
    rgb = Image.fromarray(rng.integers(0, 256, (13, 19, 3), dtype=np.uint8), "RGB")
    rgb.save(out("image", "interlaced_19x13.png"), interlace=1)
    rgb.save(out("image", "q50_420_19x13.jpg"), quality=50, subsampling=2)
    rgb.convert("L").save(out("image", "grey_prog_19x13.jpg"), quality=60, progressive=True)
    # restart markers every MCU row
    buf = io.BytesIO()
    rgb.save(buf, "JPEG", quality=40, subsampling=1, restart_marker_rows=1)
    with open(out("image", "rst_422_19x13.jpg"), "wb") as fh:
        fh.write(buf.getvalue())
    rgb.convert("1").save(out("image", "bits1_19x13.png"))
    pal = rgb.convert("P", palette=Image.ADAPTIVE, colors=4)
    pal.info["transparency"] = 1
    pal.save(out("image", "pal2_trns_19x13.png"), bits=2, transparency=1)


def keras_attrs(f, names, fixed=True):
    if fixed:
        f.attrs["layer_names"] = np.array([n.encode() for n in names])
    else:
        f.attrs.create("layer_names", names, dtype=h5py.string_dtype())
    f.attrs["backend"] = b"tensorflow"
    f.attrs["keras_version"] = b"2.2.4"


def layer(root, name, weights, fixed=True, dtype="<f4", chunked=False):
    g = root.create_group(name)
    wn = [w for w, _ in weights]
    if not wn:
        g.attrs["weight_names"] = np.array([], dtype=np.float64)
    elif fixed:
        g.attrs["weight_names"] = np.array([w.encode() for w in wn])
    else:
        g.attrs.create("weight_names", wn, dtype=h5py.string_dtype())
    for w, a in weights:
        kw = {"chunks": True, "compression": "gzip"} if chunked else {}
        g.create_dataset(w, data=a.astype(dtype), **kw)


def resnet_conv1(path, **kw):
    rng = np.random.default_rng(1)
    k = (rng.standard_normal((7, 7, 3, 64)) * 0.05).astype(np.float32)
    b = np.zeros(64, np.float32)
    bn = [rng.random(64).astype(np.float32) + 0.5, rng.standard_normal(64).astype(np.float32) * 0.1,
          rng.standard_normal(64).astype(np.float32) * 0.1, rng.random(64).astype(np.float32) + 0.5]
    names = ["input_1", "conv1_pad", "conv1_conv", "conv1_bn", "conv1_relu"]
    with h5py.File(path, "w") as f:
        keras_attrs(f, names, kw.get("fixed", True))
        layer(f, "input_1", [])
        layer(f, "conv1_pad", [])
        layer(f, "conv1_conv", [("conv1_conv/kernel:0", k), ("conv1_conv/bias:0", b)], **kw)
        roles = ["gamma", "beta", "moving_mean", "moving_variance"]
        layer(f, "conv1_bn", [(f"conv1_bn/{r}:0", a) for r, a in zip(roles, bn)], **kw)
        layer(f, "conv1_relu", [])


def vgg_block1(path, wrapper=False, split_names=False, **kw):
    rng = np.random.default_rng(2)
    k = (rng.standard_normal((3, 3, 3, 64)) * 0.1).astype(np.float32)
    b = (rng.standard_normal(64) * 0.01).astype(np.float32)
    names = ["input_1", "block1_conv1"]
    with h5py.File(path, "w") as f:
        root = f.create_group("model_weights") if wrapper else f
        if split_names:  # Keras chunks long name lists as layer_names0, layer_names1, ...
            root.attrs["layer_names0"] = np.array([b"input_1"])
            root.attrs["layer_names1"] = np.array([b"block1_conv1"])
        else:
            keras_attrs(root, names, kw.get("fixed", True))
        layer(root, "input_1", [])
        layer(root, "block1_conv1", [("block1_conv1_W_1:0", k), ("block1_conv1_b_1:0", b)], **kw)


def h5_seeds():
    resnet_conv1(out("h5", "resnet_conv1.h5"))
    resnet_conv1(out("h5", "resnet_conv1_f16_vlen.h5"), fixed=False, dtype="<f2")
    vgg_block1(out("h5", "vgg_block1.h5"))
    vgg_block1(out("h5", "vgg_block1_wrapped_vlen.h5"), wrapper=True, fixed=False)
    vgg_block1(out("h5", "vgg_block1_split_f8be.h5"), split_names=True, dtype=">f8")
    vgg_block1(out("h5", "vgg_block1_gzip.h5"), chunked=True)


if __name__ == "__main__":
    npy_seeds()
    image_seeds()
    h5_seeds()
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(OUT) for f in fs)
    print(f"corpus: {total} bytes")
