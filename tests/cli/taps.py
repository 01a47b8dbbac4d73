#!/usr/bin/python3
"""The general taps of the `fusenet` tool: --tap MODEL:WEIGHTS:LAYER.

Checks, on seeded random weights (`fusenet make-weights`) and a seeded
caffe-like batch of 3 at an odd size (97x131):

* the fused map of --tap resnet50:R:L1 --tap vgg16:V:L2 equals, bit for bit,
  the short form --resnet-weights R --vgg-weights V --resnet-layer L1
  --vgg-layer L2 (fuse, and the rows of embed);
* a fuse of three or four taps from three models (ResNet50 twice from one
  file, VGG19, VGG16) equals a naive numpy resize + concat of the single-tap
  outputs of `fusenet tap` (TensorFlow's half-pixel bilinear and nearest,
  written here from tensorflow/core/kernels/image/resize_bilinear_op.cc and
  resize_nearest_neighbor_op.cc), for --size min, max and HxW, within 1e-4
  of the reference's magnitude, channel slices in tap order;
* a weights path holding ':' and the same tap twice;
* bench and similar take --tap.

Usage: taps.py --fusenet PATH --workdir DIR
Prints one line per case and last `taps: N passed, M failed`; exits 1 on a failure.
Needs numpy.
"""

import argparse
import os
import shutil
import subprocess
import sys

import numpy as np

TOLERANCE = 1e-4


def run(fusenet, *args):
    p = subprocess.run([fusenet] + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=600)
    if p.returncode != 0:
        raise RuntimeError("exit %d: fusenet %s: %s" % (p.returncode, " ".join(map(str, args)), p.stderr.strip()))
    return p.stdout


# TensorFlow's half-pixel resize (align_corners=False, half_pixel_centers=True), per axis.
def bilinear_axis(inn, out):
    scale = inn / out
    src = (np.arange(out) + 0.5) * scale - 0.5
    lo = np.floor(src)
    lerp = (src - lo).astype(np.float32)
    lower = np.clip(lo, 0, inn - 1).astype(int)
    upper = np.clip(np.ceil(src), 0, inn - 1).astype(int)
    return lower, upper, lerp


def resize_bilinear(m, oh, ow):
    n, h, w, c = m.shape
    if (h, w) == (oh, ow):
        return m
    yl, yu, yf = bilinear_axis(h, oh)
    xl, xu, xf = bilinear_axis(w, ow)
    top_left, top_right = m[:, yl][:, :, xl], m[:, yl][:, :, xu]
    bottom_left, bottom_right = m[:, yu][:, :, xl], m[:, yu][:, :, xu]
    xf = xf[None, None, :, None]
    yf = yf[None, :, None, None]
    top = top_left + (top_right - top_left) * xf
    bottom = bottom_left + (bottom_right - bottom_left) * xf
    return (top + (bottom - top) * yf).astype(np.float32)


def resize_nearest(m, oh, ow):
    n, h, w, c = m.shape
    if (h, w) == (oh, ow):
        return m
    iy = np.minimum(np.floor((np.arange(oh) + 0.5) * (h / oh)).astype(int), h - 1)
    ix = np.minimum(np.floor((np.arange(ow) + 0.5) * (w / ow)).astype(int), w - 1)
    return m[:, iy][:, :, ix]


def fused_size(maps, size):
    if size == "min":
        return min(m.shape[1] for m in maps), min(m.shape[2] for m in maps)
    if size == "max":
        return max(m.shape[1] for m in maps), max(m.shape[2] for m in maps)
    h, w = size.split("x")
    return int(h), int(w)


class Checks:
    def __init__(self):
        self.passed = self.failed = 0

    def case(self, name, fn):
        try:
            why = fn()
        except Exception as e:  # noqa: BLE001 - a failing command fails the case
            why = str(e)
        if why:
            self.failed += 1
            print("FAIL %s: %s" % (name, why), flush=True)
        else:
            self.passed += 1
            print("PASS %s" % name, flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fusenet", required=True)
    ap.add_argument("--workdir", required=True)
    a = ap.parse_args(argv)
    fn = os.path.abspath(a.fusenet)
    d = os.path.abspath(a.workdir)
    os.makedirs(d, exist_ok=True)
    W = {m: os.path.join(d, "%s.h5" % m) for m in ("resnet50", "vgg16", "vgg19")}
    for seed, (m, path) in enumerate(sorted(W.items()), 1):
        run(fn, "make-weights", "--model", m, "--seed", seed, "--output", path)
    x = np.random.default_rng(97131).uniform(-124.0, 152.0, (3, 97, 131, 3)).astype(np.float32)
    X = os.path.join(d, "x.npy")
    np.save(X, x)
    ck = Checks()

    def out(name):
        p = os.path.join(d, name)
        if os.path.exists(p):
            os.remove(p)
        return p

    def tap_args(specs):
        return [a for s in specs for a in ("--tap", "%s:%s:%s" % s)]

    def single(model, layer, path=None):
        o = out("single_%s_%s.npy" % (model, layer))
        run(fn, "tap", "--model", model, "--weights", path or W[model], "--layer", layer, "--input", X, "--output", o)
        return np.load(o)

    # -- bit-exact with the short form --
    def same_as_short_form(rl, vl, extra=()):
        def check():
            a, b = out("short.npy"), out("taps.npy")
            run(fn, "fuse", "--resnet-weights", W["resnet50"], "--vgg-weights", W["vgg16"], "--resnet-layer", rl,
                "--vgg-layer", vl, "--input", X, "--output", a, *extra)
            run(fn, "fuse", *tap_args([("resnet50", W["resnet50"], rl), ("vgg16", W["vgg16"], vl)]), "--input", X,
                "--output", b, *extra)
            s, t = np.load(a), np.load(b)
            if s.dtype != t.dtype or s.shape != t.shape or s.tobytes() != t.tobytes():
                return "not bit-identical: %s %s vs %s %s" % (s.dtype, s.shape, t.dtype, t.shape)
            return None
        return check

    ck.case("fuse_tap_equals_short_form", same_as_short_form("conv4_block6_out", "block5_conv3"))
    ck.case("fuse_tap_equals_short_form_nearest_max_batch2",
            same_as_short_form("conv3_block4_out", "block4_pool", ("--resize", "nearest", "--size", "max",
                                                                   "--batch", "2")))

    # -- three and four taps against numpy resize + concat of single taps --
    def against_numpy(specs, resize, size):
        def check():
            o = out("multi.npy")
            run(fn, "fuse", *tap_args(specs), "--resize", resize, "--size", size, "--input", X, "--output", o)
            got = np.load(o)
            maps = [single(m, l, p) for m, p, l in specs]
            oh, ow = fused_size(maps, size)
            rs = resize_bilinear if resize == "bilinear" else resize_nearest
            parts = [rs(m, oh, ow) for m in maps]
            ref = np.concatenate(parts, axis=3)
            if got.shape != ref.shape or got.dtype != np.float32:
                return "shape %s %s, expected float32 %s" % (got.dtype, got.shape, ref.shape)
            c0 = 0
            for (m, _p, l), part in zip(specs, parts):
                c1 = c0 + part.shape[3]
                err = float(np.abs(got[..., c0:c1].astype(np.float64) - part).max())
                scale = float(np.abs(part).max())
                if not scale > 0 or err > TOLERANCE * scale:
                    return "%s/%s channels %d..%d: max err %.3g, max|ref| %.3g" % (m, l, c0, c1, err, scale)
                c0 = c1
            return None
        return check

    three = [("resnet50", W["resnet50"], "conv4_block6_out"), ("vgg19", W["vgg19"], "block5_conv4"),
             ("resnet50", W["resnet50"], "conv3_block4_out")]
    four = three + [("vgg16", W["vgg16"], "block3_pool")]
    ck.case("fuse_three_taps_bilinear_min", against_numpy(three, "bilinear", "min"))
    ck.case("fuse_three_taps_nearest_max", against_numpy(three, "nearest", "max"))
    ck.case("fuse_four_taps_bilinear_9x21", against_numpy(four, "bilinear", "9x21"))
    colon = os.path.join(d, "weights:with:colons.h5")
    shutil.copyfile(W["vgg16"], colon)
    ck.case("fuse_weights_path_with_colons_and_a_tap_twice",
            against_numpy([("vgg16", colon, "block5_conv3"), ("resnet50", W["resnet50"], "conv4_block6_out"),
                           ("vgg16", colon, "block5_conv3")], "bilinear", "min"))

    # -- embed: the same rows as the short form --
    def embed_same():
        from PIL import Image
        imgs = os.path.join(d, "images")
        os.makedirs(imgs, exist_ok=True)
        rng = np.random.default_rng(5)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (40 + i, 52, 3), dtype=np.uint8)).save(
                os.path.join(imgs, "i%d.png" % i))
        a, b = out("emb_short.npy"), out("emb_taps.npy")
        run(fn, "embed", "--resnet-weights", W["resnet50"], "--vgg-weights", W["vgg16"], "--input-size", "64x80",
            "--output", a, imgs)
        run(fn, "embed", *tap_args([("resnet50", W["resnet50"], "conv4_block6_out"),
                                    ("vgg16", W["vgg16"], "block5_conv3")]), "--input-size", "64x80",
            "--output", b, "--names", out("names.txt"), imgs)
        s, t = np.load(a), np.load(b)
        if s.shape != (3, 1536) or s.tobytes() != t.tobytes():
            return "embed rows differ: %s vs %s" % (s.shape, t.shape)
        # similar with the same taps finds each image itself first
        got = run(fn, "similar", *tap_args([("resnet50", W["resnet50"], "conv4_block6_out"),
                                            ("vgg16", W["vgg16"], "block5_conv3")]), "--input-size", "64x80",
                  "--embeddings", b, "--names", os.path.join(d, "names.txt"),
                  "--query", os.path.join(imgs, "i1.png"), "-k", "1")
        if not got.strip().endswith("i1.png"):
            return "similar --tap: %r" % got
        return None

    ck.case("embed_and_similar_tap_equal_short_form", embed_same)

    def bench_taps():
        got = run(fn, "bench", *tap_args(three), "--size", "64x64", "--iters", "1")
        return None if '"images_per_s"' in got else "no JSON line: %r" % got

    ck.case("bench_three_taps", bench_taps)

    # -- calibrate --tap: the short form's calibration byte for byte; an int8 fused net of three taps --
    def calibrate_same():
        a, b = out("cal_short.txt"), out("cal_taps.txt")
        run(fn, "calibrate", "--resnet-weights", W["resnet50"], "--vgg-weights", W["vgg16"], "--input", X,
            "--output", a)
        run(fn, "calibrate", *tap_args([("resnet50", W["resnet50"], "conv4_block6_out"),
                                        ("vgg16", W["vgg16"], "block5_conv3")]), "--input", X, "--output", b)
        if open(a, "rb").read() != open(b, "rb").read():
            return "calibrate --tap wrote another file than the short form"
        return None

    ck.case("calibrate_tap_equals_short_form", calibrate_same)

    def int8_three_taps():
        """A plumbing check, not a fidelity one (int8_fidelity is): calibrated on x.npy's three images
        and run on them, the int8 fused map must be close to the float32 one (cosine >= 0.99; 0.9994
        measured) without being it; a calibration of other taps is refused."""
        cal, q, e = out("cal_three.txt"), out("int8_three.npy"), out("exact_three.npy")
        run(fn, "calibrate", *tap_args(three), "--input", X, "--output", cal)
        run(fn, "fuse", *tap_args(three), "--input", X, "--output", q, "--mode", "int8", "--calibration", cal)
        run(fn, "fuse", *tap_args(three), "--input", X, "--output", e)
        a, b = np.load(q).astype(np.float64).ravel(), np.load(e).astype(np.float64).ravel()
        cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
        if not 0.99 <= cos < 1.0 or a.tobytes() == b.tobytes():
            return "int8 against float32: cosine %.6f" % cos
        p = subprocess.run([fn, "fuse", *tap_args(three), "--input", X, "--output", out("refused.npy"), "--mode",
                            "int8", "--calibration", os.path.join(d, "cal_taps.txt")],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600)
        if p.returncode != 1 or "calibration does not match" not in p.stderr:
            return "a calibration of two taps for a net of three: exit %d, %r" % (p.returncode, p.stderr)
        return None

    ck.case("calibrate_and_fuse_int8_three_taps", int8_three_taps)
    print("taps: %d passed, %d failed" % (ck.passed, ck.failed))
    if ck.failed:
        return 1
    shutil.rmtree(d)  # kept to look at when a check failed
    return 0


if __name__ == "__main__":
    sys.exit(main())
