#!/usr/bin/env python3
"""Conformance of the fusenet CLI against the independent PyTorch reference.

Tolerance: a case passes when   max|out - ref| <= 1e-4 * max|ref|
(per tap; for a fused map, separately for the ResNet and the VGG channel
slices), the shapes are equal, the output is float32 and finite.

Usage:
  conformance.py --fusenet PATH/TO/fusenet --workdir DIR [--quick] [--selfcheck]
                 [--threads N] [--spec-dir DIR] [--keep]

It writes seeded random weight files in the legacy Keras HDF5 layout
(keras_weights.py), the same values in the other layouts Keras writes
(Keras 3 .weights.h5 with and without name attributes, .keras archives, the
README's fused model in both generations, read with FILE#NAME), and seeded caffe-like inputs (uniform in [-124, 152]),
runs `fusenet tap` / `fusenet fuse` and torch_ref.py, and prints one line per
case: status, model, layer, input shape, max abs err, max|ref|, ratio.
The last line is `conformance: N passed, M failed`; the exit status is 1 if
any case or command failed.
"""

import argparse
import os
import re
import subprocess
import sys
import time

import numpy as np

sys.dont_write_bytecode = True   # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import keras_weights  # noqa: E402
import torch_ref      # noqa: E402

TOLERANCE = 1e-4          # max abs err <= TOLERANCE * max|ref|
FAST_TOLERANCE = 1e-3     # the same for --mode fast on oneDNN's Winograd F(4x4, 3x3) (AVX-512);
                          # our own F(2x2, 3x3) (AVX2) is held to TOLERANCE
COMMAND_TIMEOUT = 600     # seconds per fusenet invocation

RESNET_TAPS = ["conv1_pad", "conv1_conv", "conv1_bn", "conv1_relu", "pool1_pad", "pool1_pool",
               "conv2_block1_1_conv", "conv2_block1_1_relu", "conv2_block1_0_bn", "conv2_block1_out",
               "conv3_block1_0_conv", "conv3_block1_add", "conv3_block2_2_bn", "conv3_block4_out",
               "conv4_block6_add", "conv4_block6_out", "conv5_block1_3_bn", "conv5_block3_out"]
RESNET_TAPS_SHORT = ["conv1_conv", "pool1_pool", "conv3_block1_add", "conv4_block6_out", "conv5_block3_out"]
VGG_TAPS = ["block1_conv1", "block1_pool", "block2_conv2", "block3_conv3", "block3_pool",
            "block4_conv1", "block5_conv3", "block5_pool"]
VGG_TAPS_SHORT = ["block1_pool", "block5_conv3"]

# name -> (batch, height, width, seed)
INPUTS = {
    "1x224": (1, 224, 224, 1001),
    "3x224": (3, 224, 224, 1002),
    "1x97x131": (1, 97, 131, 1003),
    "3x97x131": (3, 97, 131, 1004),
    "1x200x232": (1, 200, 232, 1005),
    "1x32x33": (1, 32, 33, 1006),
}

# name -> (model, top, seed, strings, chunk_names)
WEIGHTS = {
    "resnet": ("resnet50", False, 101, "fixed", False),
    "vgg": ("vgg16", False, 202, "fixed", False),
    # full run only: the h5py-3 string style, chunked layer_names, a full (top) file
    "resnet_top_vlen": ("resnet50", True, 303, "vlen", True),
    "vgg_vlen": ("vgg16", False, 404, "vlen", False),
    "resnet101": ("resnet101", False, 505, "fixed", False),
    "resnet152": ("resnet152", False, 606, "fixed", False),
    "vgg19": ("vgg19", False, 707, "fixed", False),
    # an old Keras ResNet50 file (res2a_branch2a, bn_conv1, fc1000; BatchNorm epsilon 1e-3), with its top
    "resnet_old": ("resnet50", True, 808, "fixed", False),
}
OLD_NAMING = {"resnet_old"}   # written by keras_weights.py --old-naming


def tap_cases(quick):
    """[(weights key, input key, [layers])]"""
    c = [("resnet", "1x224", RESNET_TAPS),
         ("resnet", "1x97x131", RESNET_TAPS),
         ("resnet", "3x97x131", RESNET_TAPS_SHORT),
         ("resnet", "3x224", ["conv4_block6_out"]),
         ("vgg", "1x224", VGG_TAPS),
         ("vgg", "1x97x131", VGG_TAPS),
         ("vgg", "3x97x131", VGG_TAPS_SHORT),
         # the deeper family members: one tap each, through their added blocks, odd size
         ("resnet101", "3x97x131", ["conv4_block23_out"]),
         ("resnet152", "1x97x131", ["conv5_block3_out"]),
         ("vgg19", "3x97x131", ["block5_conv4"]),
         # old ResNet50 naming: every kind of renamed layer, odd size, batch 3; its classifier fc1000
         ("resnet_old", "3x97x131", ["conv1_bn", "pool1_pool", "conv2_block1_0_bn", "conv3_block4_out",
                                     "conv4_block6_out", "conv5_block3_out"]),
         ("resnet_old", "3x224", ["predictions"])]
    if not quick:
        c += [("resnet", "3x224", ["conv1_bn", "pool1_pad", "conv2_block1_0_bn", "conv3_block2_2_bn",
                                   "conv4_block6_add", "conv5_block3_out"]),
              ("resnet", "3x97x131", [t for t in RESNET_TAPS if t not in RESNET_TAPS_SHORT]),
              ("resnet", "1x32x33", ["pool1_pool", "conv4_block6_out", "conv5_block3_out"]),
              ("resnet", "1x200x232", ["conv4_block6_out"]),
              ("vgg", "3x224", ["block1_conv1", "block3_pool", "block5_conv3", "block5_pool"]),
              ("vgg", "3x97x131", [t for t in VGG_TAPS if t not in VGG_TAPS_SHORT]),
              ("vgg", "1x32x33", ["block1_pool", "block5_conv3", "block5_pool"]),
              ("vgg", "1x200x232", ["block5_conv3"]),
              ("resnet_top_vlen", "1x224", ["conv1_conv", "conv4_block6_out", "conv5_block3_out",
                                            "avg_pool", "predictions"]),
              ("resnet_top_vlen", "1x97x131", ["conv4_block6_out"]),
              ("vgg_vlen", "1x97x131", ["block1_conv1", "block5_conv3"])]
    return c


# The other layouts Keras writes (keras_weights.write_layout), holding the values
# of WEIGHTS["resnet"] / WEIGHTS["vgg"] (the fused ones both): the reference
# reads those legacy files, the tool the layout. name -> (layout, model,
# file name: recognised by content, so one is misnamed on purpose).
FORMATS = {
    "k3_resnet": ("keras3", "resnet50", "resnet50.weights.h5"),
    "k3_vgg_nonames": ("keras3-nonames", "vgg16", "vgg16_keras34.weights.h5"),
    "zip_resnet": ("keras", "resnet50", "resnet50.keras"),
    "legacy_fused_frozen": ("legacy-fused-frozen", None, "fused_frozen.h5"),
    "legacy_fused_full": ("legacy-fused-full", None, "fused_model.h5"),
    "k3_fused_nonames": ("keras3-fused-nonames", None, "fused_keras34.weights.h5"),
    "zip_fused": ("keras-fused", None, "fused.keras"),
    "zip_fused_nonames": ("keras-fused-nonames", None, "fused_keras34.bin"),
}


def format_cases(quick):
    """[(format key, input key, what)]: what is ("tap", model, sub-model or None, layer) or ("fuse",)."""
    c = [("k3_resnet", "3x97x131", ("tap", "resnet50", None, "conv4_block6_out")),
         ("k3_vgg_nonames", "3x97x131", ("tap", "vgg16", None, "block5_conv3")),
         ("zip_resnet", "3x97x131", ("tap", "resnet50", None, "conv5_block3_out")),
         ("legacy_fused_frozen", "3x97x131", ("fuse",)),
         ("legacy_fused_full", "3x97x131", ("tap", "vgg16", "vgg16", "block4_pool")),
         ("k3_fused_nonames", "3x97x131", ("fuse",)),
         ("zip_fused", "3x97x131", ("fuse",))]
    if not quick:
        c += [("zip_fused_nonames", "3x97x131", ("fuse",)),
              ("k3_resnet", "1x97x131", ("tap", "resnet50", None, "conv1_bn"))]
    return c


def winograd_cpu():
    """Whose Winograd convolutions fast mode runs here: "onednn" (AVX-512 foundation, BW, VL, DQ:
    avx512_core), "own" (the library's F(2x2, 3x3): AVX2 and FMA), or None (fast is refused)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((l.split(":", 1)[1].split() for l in f if l.startswith("flags")), [])
    except OSError:
        return None
    if all(x in flags for x in ("avx512f", "avx512bw", "avx512vl", "avx512dq")):
        return "onednn"
    return "own" if all(x in flags for x in ("avx2", "fma")) else None


def fuse_cases(quick):
    """[(resnet weights, vgg weights, input, resnet layer, vgg layer, resize, size)]"""
    R, V = "conv4_block6_out", "block5_conv3"
    c = [("resnet", "vgg", "1x224", R, V, "bilinear", "min"),             # 14x14 both: no resize
         ("resnet", "vgg", "1x200x232", R, V, "bilinear", "min"),         # 13x15 -> 12x14
         ("resnet", "vgg", "1x200x232", R, V, "nearest", "min"),
         ("resnet", "vgg", "1x200x232", R, V, "bilinear", "max"),         # VGG 12x14 -> 13x15
         ("resnet", "vgg", "1x200x232", R, V, "bilinear", "20x17"),       # both resized, up and down
         ("resnet", "vgg", "1x224", "conv3_block4_out", V, "bilinear", "min"),   # 28 -> 14
         ("resnet", "vgg", "3x97x131", R, V, "bilinear", "min"),          # 7x9 -> 6x8, batch 3
         ("resnet", "vgg", "1x224", R, V, "bilinear", "min", "fast"),     # Winograd, looser bound
         ("resnet", "vgg", "3x97x131", R, V, "bilinear", "min", "fast"),
         ("resnet", "vgg", "1x200x232", R, V, "bilinear", "min", "fast"),   # odd maps: partial tiles
         ("resnet_old", "vgg", "3x97x131", R, V, "bilinear", "min")]      # an old ResNet50 file in fuse
    if not quick:
        c += [("resnet", "vgg", "1x224", "conv3_block4_out", V, "nearest", "min"),
              ("resnet", "vgg", "1x200x232", R, V, "nearest", "max"),
              ("resnet", "vgg", "1x200x232", R, V, "nearest", "9x30"),
              ("resnet", "vgg", "1x97x131", "conv2_block3_out", "block3_pool", "bilinear", "min"),
              ("resnet", "vgg", "3x224", R, V, "bilinear", "min"),
              ("resnet", "vgg", "3x97x131", R, V, "nearest", "min"),
              ("resnet_top_vlen", "vgg_vlen", "1x200x232", R, V, "bilinear", "min")]
    return c


class Runner:
    def __init__(self, args):
        self.fusenet = os.path.abspath(args.fusenet)
        self.work = os.path.abspath(args.workdir)
        self.threads = args.threads
        self.keep = args.keep
        self.passed = 0
        self.failed = 0
        self.tool_seconds = 0.0
        self.only = re.compile(args.only) if args.only else None
        self.weights = {}
        self.inputs = {}
        self.refcache = {}
        self.outdir = os.path.join(self.work, "out")
        os.makedirs(self.outdir, exist_ok=True)

    # -- fixtures ----------------------------------------------------------
    def weight_file(self, key):
        if key not in self.weights:
            model, top, seed, strings, chunk = WEIGHTS[key]
            path = os.path.join(self.work, "%s_seed%d%s_%s%s%s.h5" % (
                model, seed, "_top" if top else "", strings, "_chunked" if chunk else "",
                "_old_naming" if key in OLD_NAMING else ""))
            # Always rewritten: a file left by an older generator must not be reused.
            keras_weights.write_file(path, model, top=top, seed=seed, strings=strings, chunk_names=chunk,
                                     old_naming=key in OLD_NAMING)
            self.weights[key] = path
        return self.weights[key]

    def drop_weights(self, keep):
        """Removes the weight files whose key is not in keep: a later case that wants one
        writes it again. Keeps the disk this run needs to the files of one input's cases."""
        for key in list(self.weights):
            if key not in keep:
                os.remove(self.weights.pop(key))

    def format_file(self, key):
        layout, model, name = FORMATS[key]
        path = os.path.join(self.work, name)
        seeds = (WEIGHTS["resnet"][2], WEIGHTS["vgg"][2])
        seed = seeds[0] if model == "resnet50" else seeds[1]
        keras_weights.write_layout(path, layout, model or "resnet50", seed, fused_seeds=seeds)
        return path

    def input_file(self, key):
        if key not in self.inputs:
            n, h, w, seed = INPUTS[key]
            x = np.random.default_rng(seed).uniform(-124.0, 152.0, (n, h, w, 3)).astype(np.float32)
            path = os.path.join(self.work, "input_%s.npy" % key)
            np.save(path, x)
            self.inputs[key] = (path, x)
        return self.inputs[key]

    def reference(self, wkey, ikey, layers):
        """Torch outputs for (weights, input, layer), computed in one pass per group."""
        missing = [l for l in layers if (wkey, ikey, l) not in self.refcache]
        if missing:
            model = WEIGHTS[wkey][0]
            outs = torch_ref.tap(model, self.weight_file(wkey), missing, self.input_file(ikey)[1])
            for l, y in zip(missing, outs):
                self.refcache[(wkey, ikey, l)] = y
        return [self.refcache[(wkey, ikey, l)] for l in layers]

    def drop_refs(self, wkey=None, ikey=None):
        for k in list(self.refcache):
            if (wkey is None or k[0] == wkey) and (ikey is None or k[1] == ikey):
                del self.refcache[k]

    # -- running -----------------------------------------------------------
    def run_tool(self, argv):
        cmd = [self.fusenet] + argv + ["--threads", str(self.threads)]
        t0 = time.time()
        try:
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=COMMAND_TIMEOUT, text=True)
        except subprocess.TimeoutExpired:
            return False, "timeout after %ds: %s" % (COMMAND_TIMEOUT, " ".join(cmd)), 0.0
        except OSError as e:
            return False, "cannot run %s: %s" % (self.fusenet, e), 0.0
        dt = time.time() - t0
        self.tool_seconds += dt
        if p.returncode != 0:
            msg = (p.stderr.strip() or p.stdout.strip()).splitlines()
            return False, "exit %d: %s | %s" % (p.returncode, " ".join(cmd[1:]), msg[-1] if msg else ""), dt
        return True, "", dt

    def report(self, ok, model, layer, shape, err, scale, ratio, note=""):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        shp = "x".join(str(s) for s in shape) if shape is not None else "-"
        print("%-4s %-8s %-48s %-13s err %-9s max|ref| %-9s ratio %-9s%s" % (
            "PASS" if ok else "FAIL", model, layer, shp,
            "%.2e" % err if err is not None else "-",
            "%.3g" % scale if scale is not None else "-",
            "%.2e" % ratio if ratio is not None else "-",
            ("  " + note) if note else ""), flush=True)

    @staticmethod
    def compare(out, ref, tolerance=TOLERANCE):
        """Returns (ok, err, scale, ratio, note)."""
        if out.shape != ref.shape:
            return False, None, None, None, "shape %s, reference %s" % (out.shape, ref.shape)
        note = ""
        ok = True
        if out.dtype != np.float32:
            ok, note = False, "dtype %s, expected float32" % out.dtype
        if not np.all(np.isfinite(out)):
            return False, None, None, None, "non-finite values in the output"
        err = float(np.abs(out.astype(np.float64) - ref.astype(np.float64)).max()) if out.size else 0.0
        scale = float(np.abs(ref).max()) if ref.size else 0.0
        ratio = err / scale if scale > 0 else err
        return ok and ratio <= tolerance, err, scale, ratio, note

    def load_output(self, path):
        try:
            return np.load(path), ""
        except Exception as e:   # noqa: BLE001 - any unreadable file is a failure
            return None, "cannot read output %s: %s" % (path, e)

    # -- cases -------------------------------------------------------------
    def tap_group(self, wkey, ikey, layers):
        model = WEIGHTS[wkey][0]
        wpath = self.weight_file(wkey)
        ipath, x = self.input_file(ikey)
        refs = self.reference(wkey, ikey, layers)
        label_model = model + ("(%s)" % wkey if wkey not in ("resnet", "vgg", model) else "")
        for layer, ref in zip(layers, refs):
            out_path = os.path.join(self.outdir, "tap_%s_%s_%s.npy" % (wkey, ikey, layer))
            if os.path.exists(out_path):
                os.remove(out_path)
            ok, msg, _dt = self.run_tool(["tap", "--model", model, "--weights", wpath, "--layer", layer,
                                          "--input", ipath, "--output", out_path])
            if not ok:
                self.report(False, label_model, layer, x.shape, None, None, None, msg)
                continue
            out, msg = self.load_output(out_path)
            if out is None:
                self.report(False, label_model, layer, x.shape, None, None, None, msg)
                continue
            good, err, scale, ratio, note = self.compare(out, ref)
            self.report(good, label_model, layer, x.shape, err, scale, ratio, note)
            if not self.keep:
                os.remove(out_path)

    def fuse_case(self, rkey, vkey, ikey, rlayer, vlayer, resize, size, mode="exact"):
        ipath, x = self.input_file(ikey)
        ra = self.reference(rkey, ikey, [rlayer])[0]
        vb = self.reference(vkey, ikey, [vlayer])[0]
        h, w = torch_ref.target_size([ra, vb], size)
        ref_parts = [torch_ref.resize_nhwc(ra, h, w, resize), torch_ref.resize_nhwc(vb, h, w, resize)]
        label = "%s+%s %s %s%s%s" % (rlayer, vlayer, resize, size,
                                     "" if rkey == "resnet" else " (%s,%s)" % (rkey, vkey),
                                     "" if mode == "exact" else " mode %s" % mode)
        out_path = os.path.join(self.outdir, "fuse_%s_%s_%s_%s_%s_%s_%s.npy" % (
            rkey, ikey, rlayer, vlayer, resize, size, mode))
        if os.path.exists(out_path):
            os.remove(out_path)
        ok, msg, _dt = self.run_tool(["fuse", "--resnet-weights", self.weight_file(rkey),
                                      "--vgg-weights", self.weight_file(vkey),
                                      "--resnet-layer", rlayer, "--vgg-layer", vlayer,
                                      "--resize", resize, "--size", size, "--mode", mode,
                                      "--input", ipath, "--output", out_path])
        if mode == "fast" and not winograd_cpu():
            # Winograd: oneDNN's on AVX-512 (avx512_core), ours on AVX2 + FMA; elsewhere fast must be refused
            refused = not ok and "Winograd" in msg
            self.report(refused, "fuse", label, x.shape, None, None, None,
                        "refused: no AVX-512, no AVX2 (as expected)" if refused else
                        "not refused without AVX-512 or AVX2: " + msg)
            return
        if not ok:
            self.report(False, "fuse", label, x.shape, None, None, None, msg)
            return
        out, msg = self.load_output(out_path)
        if out is None:
            self.report(False, "fuse", label, x.shape, None, None, None, msg)
            return
        ref = np.concatenate(ref_parts, axis=3)
        if out.shape != ref.shape:
            self.report(False, "fuse", label, x.shape, None, None, None,
                        "shape %s, reference %s" % (out.shape, ref.shape))
            return
        # Per-tap tolerance: each channel slice against its own scale.
        c0 = ref_parts[0].shape[3]
        tol = FAST_TOLERANCE if mode == "fast" and winograd_cpu() == "onednn" else TOLERANCE
        r1 = self.compare(out[..., :c0], ref_parts[0], tol)
        r2 = self.compare(out[..., c0:], ref_parts[1], tol)
        worst = r1 if (r1[3] or 0) >= (r2[3] or 0) else r2
        note = "; ".join(n for n in (r1[4], r2[4]) if n)
        note = ("%s  (resnet %.1e, vgg %.1e; %dx%d)" % (note, r1[3] or 0, r2[3] or 0, h, w)).strip()
        self.report(r1[0] and r2[0], "fuse", label, x.shape, worst[1], worst[2], worst[3], note)
        if not self.keep:
            os.remove(out_path)


    def format_case(self, fkey, ikey, what):
        """One tool run on a file of another layout, against the reference of the legacy file."""
        path = self.format_file(fkey)
        ipath, x = self.input_file(ikey)
        out_path = os.path.join(self.outdir, "format_%s_%s.npy" % (fkey, ikey))
        if os.path.exists(out_path):
            os.remove(out_path)
        if what[0] == "tap":
            _, model, sub, layer = what
            wkey = "resnet" if model == "resnet50" else "vgg"
            refs = self.reference(wkey, ikey, [layer])
            label = "%s %s" % (FORMATS[fkey][0], layer)
            argv = ["tap", "--model", model, "--weights", path + ("#" + sub if sub else ""), "--layer", layer]
        else:
            R, V = "conv4_block6_out", "block5_conv3"
            ra, vb = self.reference("resnet", ikey, [R])[0], self.reference("vgg", ikey, [V])[0]
            h, w = torch_ref.target_size([ra, vb], "min")
            refs = [np.concatenate([torch_ref.resize_nhwc(ra, h, w, "bilinear"),
                                    torch_ref.resize_nhwc(vb, h, w, "bilinear")], axis=3)]
            label = "%s fuse %s#resnet50 + #vgg16" % (FORMATS[fkey][0], os.path.basename(path))
            argv = ["fuse", "--resnet-weights", path + "#resnet50", "--vgg-weights", path + "#vgg16"]
        ok, msg, _dt = self.run_tool(argv + ["--input", ipath, "--output", out_path])
        os.remove(path)
        if not ok:
            self.report(False, "format", label, x.shape, None, None, None, msg)
            return
        out, msg = self.load_output(out_path)
        if out is None:
            self.report(False, "format", label, x.shape, None, None, None, msg)
            return
        good, err, scale, ratio, note = self.compare(out, refs[0])
        self.report(good, "format", label, x.shape, err, scale, ratio, note)
        if not self.keep:
            os.remove(out_path)


def tap_job(r, wkey, ikey, layers):
    try:
        r.tap_group(wkey, ikey, layers)
    except Exception as e:   # noqa: BLE001 - a reference failure fails the group
        for l in layers:
            r.report(False, WEIGHTS[wkey][0], l, INPUTS[ikey][:3] + (3,), None, None, None, "reference error: %s" % e)


def format_job(r, fkey, ikey, what):
    try:
        r.format_case(fkey, ikey, what)
    except Exception as e:   # noqa: BLE001 - a writer or reference failure fails the case
        r.report(False, "format", fkey, None, None, None, None, "error: %s" % e)


def fuse_job(r, case):
    try:
        r.fuse_case(*case)
    except Exception as e:   # noqa: BLE001
        r.report(False, "fuse", "%s+%s" % (case[3], case[4]), None, None, None, None, "reference error: %s" % e)


def main(argv=None):
    ap = argparse.ArgumentParser(description="fusenet CLI conformance against the PyTorch reference")
    ap.add_argument("--fusenet", required=True, help="path of the fusenet CLI binary")
    ap.add_argument("--workdir", required=True, help="scratch folder (weights, inputs, outputs)")
    ap.add_argument("--quick", action="store_true", help="the smaller case set")
    ap.add_argument("--selfcheck", action="store_true",
                    help="first check the reference itself (shapes, params, naive numpy layers)")
    ap.add_argument("--spec-dir", help="with --selfcheck: folder holding the layer TSVs")
    ap.add_argument("--threads", type=int, default=2, help="--threads passed to fusenet")
    ap.add_argument("--keep", action="store_true", help="keep the tool outputs in WORKDIR/out and the weight files")
    ap.add_argument("--only", metavar="REGEX", help="run only the cases whose label matches (debugging)")
    args = ap.parse_args(argv)

    t_start = time.time()
    print("conformance: tolerance max|err| <= %g * max|ref|; %s run; fusenet %s" % (
        TOLERANCE, "quick" if args.quick else "full", args.fusenet), flush=True)
    os.makedirs(args.workdir, exist_ok=True)
    r = Runner(args)
    if not os.access(r.fusenet, os.X_OK):
        print("conformance: %s is not an executable" % r.fusenet)
        print("conformance: 0 passed, 1 failed")
        return 1

    if args.selfcheck:
        try:
            torch_ref.selfcheck(args.spec_dir, os.path.join(r.work, "selfcheck"),
                                log=lambda s: print("  " + s, flush=True))
            r.report(True, "ref", "selfcheck", None, None, None, None)
        except AssertionError as e:
            r.report(False, "ref", "selfcheck", None, None, None, None, str(e))

    # Group by input so each torch reference pass serves all its taps, and
    # free the cached references of an input when it is no longer needed.
    taps = tap_cases(args.quick)
    fuses = fuse_cases(args.quick)
    order = list(INPUTS)

    # The cases in run order, each with the weights it reads: (run, weight keys).
    jobs = []
    for ikey in order:
        for wkey, ik, layers in taps:
            if r.only:
                layers = [l for l in layers if r.only.search("%s %s %s" % (WEIGHTS[wkey][0], l, ik))]
            if ik == ikey and layers:
                jobs.append((lambda wkey=wkey, ikey=ikey, layers=layers: tap_job(r, wkey, ikey, layers), {wkey}))
        for fkey, ik, what in format_cases(args.quick):
            if ik != ikey or (r.only and not r.only.search("format %s %s" % (fkey, " ".join(map(str, what))))):
                continue
            # the formats hold the values of these two; the reference reads them
            jobs.append((lambda fkey=fkey, ikey=ikey, what=what: format_job(r, fkey, ikey, what), {"resnet", "vgg"}))
        for case in fuses:
            if r.only and not r.only.search("fuse " + " ".join(case)):
                continue
            if case[2] == ikey:
                jobs.append((lambda case=case: fuse_job(r, case), {case[0], case[1]}))
        jobs.append((lambda ikey=ikey: r.drop_refs(ikey=ikey), set()))
    for n, (run, _) in enumerate(jobs):
        run()
        if not args.keep:  # a weight file goes after its last case (written again if a reference needs it)
            r.drop_weights(set().union(*[keys for _, keys in jobs[n + 1:]]))

    print("conformance: %.0f s in total, %.0f s in fusenet" % (time.time() - t_start, r.tool_seconds))
    print("conformance: %d passed, %d failed" % (r.passed, r.failed))
    return 0 if r.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
