#!/usr/bin/env python3
"""fusenet against PyTorch (fp32 and int8) and ONNX Runtime on the same model, in one run.

Every side computes the same thing: Keras ResNet50 v1 up to a tap (default
conv4_block6_out) and Keras VGG16 up to a tap (default block5_conv3), from the
same legacy Keras .h5 weight files; each map is resized (bilinear, half-pixel
centres, only when its size differs) to the smaller H and W, and the two are
concatenated on channels, ResNet first. Input NHWC float32, output NHWC float32.

  ours:          `fusenet bench --mode M` for each mode `fusenet info` offers (exact; fast on
                 AVX-512; int8 with `--calibration`, made by `fusenet calibrate`); its last stdout
                 line is a JSON object
  torch jit_opt: plain nn.Modules below, weights read with h5py by Keras layer name,
                 torch.jit.trace + torch.jit.freeze + torch.jit.optimize_for_inference,
                 torch.set_num_threads(T), torch.no_grad(). The NHWC -> NCHW permute of
                 the input and the NCHW -> NHWC permute of the output are inside the
                 traced model, so both sides take and return the same layout.
  torch FX int8: tests/ref/int8_ref.py (FX post-training static quantization, onednn engine,
                 histogram observers, per-channel weights), traced, frozen and saved by one child
                 (calibration), loaded and timed by another
  onnxruntime:   the torch jit_opt side's model exported with torch.onnx.export (opset 13, static
                 shapes per batch), run by npm onnxruntime-node from node (ort_bench.js: every graph
                 optimisation, intra-op threads = --threads, sequential); left out with a message
                 when node or the package (--ort-dir) is missing
Both int8 sides are calibrated on the same 16 synthetic pictures (tests/ref/int8_images.py).

Before timing, every side runs one held-out synthetic picture (batch 1, at --size,
224x224 by default) and the fp32 outputs are compared with torch jit_opt's:
max|side - torch| / max|torch|, per channel slice (ResNet, VGG) and overall. Exact
mode and ONNX Runtime must agree to 1e-4 or the run stops; fast mode is held to
the same 1e-4 on AVX2 (our Winograd F(2x2, 3x3)) and checked against 1e-2 on
AVX-512 (oneDNN's F(4x4, 3x3), ~1e-3); the int8 sides' cosines are printed.

Each measurement runs in its own child process (this script re-runs itself
with --torch-child for PyTorch; node for ONNX Runtime). The peak RSS reported for
a child is the whole process's own high-water mark, the ru_maxrss of wait4() as
GNU time (/usr/bin/time, Debian package `time`) reads it for its child: a process
spawned by this Python one directly starts its life with this process's RSS as its
high-water mark (Linux keeps the larger of the mark of the memory it replaced at
exec, vfork's parent's, and its own; measured: /bin/true 330 MB from a 300 MB
parent, 1 MB under /usr/bin/time), which would put a floor of this script's own
~65 MB under every side. Without /usr/bin/time that wait4 reading is used, and
printed as an upper bound. The number each child prints about itself (its
/proc/self/status VmHWM) is shown as well. The order of the sides rotates
between --repeat runs.

Usage:
  compare.py [--fusenet PATH] [--resnet-weights F --vgg-weights F]
             [--batch 1,8] [--size 224x224] [--threads 2] [--iters 20]
             [--modes exact,fast,int8] [--peers torch,torch-int8,ort] [--ort-dir DIR]
             [--int8-layers all|vgg|auto] [--repeat 1] [--workdir DIR]
             [--threads-scaling] [--scaling]

--threads-scaling and --scaling run only our side (no peers, no check):
  --threads-scaling  ours at 1, 2, 4, ... up to --threads; prints the speedup
  --scaling          ours at batches 1,2,4 x sizes 160x160,224x224,320x320;
                     prints ms per image and ms per megapixel
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

DEFAULT_RESNET_LAYER = "conv4_block6_out"
DEFAULT_VGG_LAYER = "block5_conv3"
EXACT_TOL = 1e-4
FAST_TOL = 1e-2  # oneDNN's Winograd F(4x4, 3x3) (AVX-512); ours, F(2x2, 3x3) on AVX2, must meet EXACT_TOL


def parse_hw(s):
    m = re.fullmatch(r"(\d+)x(\d+)", s)
    if not m:
        raise argparse.ArgumentTypeError("'%s' is not HxW" % s)
    return int(m.group(1)), int(m.group(2))


def parse_int_list(s):
    try:
        v = [int(x) for x in s.split(",") if x]
    except ValueError:
        raise argparse.ArgumentTypeError("'%s' is not a comma-separated list of integers" % s)
    if not v or min(v) < 1:
        raise argparse.ArgumentTypeError("'%s': need positive integers" % s)
    return v


def parse_hw_list(s):
    return [parse_hw(x) for x in s.split(",") if x]


# ---------------------------------------------------------------------------
# PyTorch side (imported only in the child processes)
# ---------------------------------------------------------------------------

BN_EPS = 1.001e-5
RESNET_STAGES = ((2, 64, 3), (3, 128, 4), (4, 256, 6), (5, 512, 3))
VGG_BLOCKS = ((1, 64, 2), (2, 128, 2), (3, 256, 3), (4, 512, 3), (5, 512, 3))


def resnet_tap_position(layer):
    """(stage, block) of the last block to run; (1, 0) for pool1_pool."""
    if layer == "pool1_pool":
        return 1, 0
    m = re.fullmatch(r"conv(\d)_block(\d)_out", layer)
    if m:
        s, b = int(m.group(1)), int(m.group(2))
        for stage, _, blocks in RESNET_STAGES:
            if stage == s and 1 <= b <= blocks:
                return s, b
    raise SystemExit("compare.py: ResNet tap '%s' not supported here (use pool1_pool or convS_blockB_out)" % layer)


def vgg_tap_position(layer):
    """(block, conv) to stop after; conv = 0 means the block's pool."""
    m = re.fullmatch(r"block(\d)_(conv(\d)|pool)", layer)
    if m:
        b = int(m.group(1))
        for block, _, convs in VGG_BLOCKS:
            if block == b:
                c = 0 if m.group(2) == "pool" else int(m.group(3))
                if c <= convs:
                    return b, c
    raise SystemExit("compare.py: VGG tap '%s' not supported here (use blockB_convC or blockB_pool)" % layer)


class H5Weights:
    """Legacy Keras HDF5 weights, read layer by layer through `weight_names`."""

    def __init__(self, path):
        import h5py

        self.file = h5py.File(path, "r")
        root = self.file
        if "layer_names" not in root.attrs and "model_weights" in root:
            root = root["model_weights"]
        self.root = root

    def layer(self, name):
        g = self.root[name]
        names = g.attrs["weight_names"]
        out = []
        for n in names:
            n = n.decode("utf-8") if isinstance(n, bytes) else str(n)
            out.append(np.asarray(g[n], dtype=np.float32))
        return out

    def close(self):
        self.file.close()


def build_torch_model(resnet_h5, vgg_h5, resnet_layer, vgg_layer, in_h, in_w):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    def conv(w, name, cin, cout, k, stride, pad):
        kernel, bias = w.layer(name)
        if kernel.shape != (k, k, cin, cout) or bias.shape != (cout,):
            raise SystemExit("compare.py: %s: unexpected weight shapes %s %s" % (name, kernel.shape, bias.shape))
        m = nn.Conv2d(cin, cout, k, stride=stride, padding=pad, bias=True)
        with torch.no_grad():
            m.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))))
            m.bias.copy_(torch.from_numpy(bias))
        return m

    def bn(w, name, c):
        gamma, beta, mean, var = w.layer(name)
        m = nn.BatchNorm2d(c, eps=BN_EPS)
        with torch.no_grad():
            m.weight.copy_(torch.from_numpy(gamma))
            m.bias.copy_(torch.from_numpy(beta))
            m.running_mean.copy_(torch.from_numpy(mean))
            m.running_var.copy_(torch.from_numpy(var))
        return m

    class Block(nn.Module):
        """residual_block_v1: stride on the first 1x1 conv and on the projection."""

        def __init__(self, w, prefix, cin, f, stride, projection):
            super().__init__()
            self.c1, self.b1 = conv(w, prefix + "_1_conv", cin, f, 1, stride, 0), bn(w, prefix + "_1_bn", f)
            self.c2, self.b2 = conv(w, prefix + "_2_conv", f, f, 3, 1, 1), bn(w, prefix + "_2_bn", f)
            self.c3, self.b3 = conv(w, prefix + "_3_conv", f, 4 * f, 1, 1, 0), bn(w, prefix + "_3_bn", 4 * f)
            self.projection = projection
            if projection:
                self.c0 = conv(w, prefix + "_0_conv", cin, 4 * f, 1, stride, 0)
                self.b0 = bn(w, prefix + "_0_bn", 4 * f)

        def forward(self, x):
            shortcut = self.b0(self.c0(x)) if self.projection else x
            y = F.relu(self.b1(self.c1(x)))
            y = F.relu(self.b2(self.c2(y)))
            y = self.b3(self.c3(y))
            return F.relu(y + shortcut)

    class ResNet50(nn.Module):
        def __init__(self, w, layer):
            super().__init__()
            last_stage, last_block = resnet_tap_position(layer)
            # ZeroPadding2D(3) + 7x7/2 valid conv == 7x7/2 conv with padding 3 (same
            # output size for every input size); ZeroPadding2D(1) + 3x3/2 valid max
            # pool == MaxPool2d(3, 2, padding=1) because its input is post-ReLU (>= 0).
            self.conv1 = conv(w, "conv1_conv", 3, 64, 7, 2, 3)
            self.bn1 = bn(w, "conv1_bn", 64)
            self.pool = nn.MaxPool2d(3, 2, padding=1)
            blocks = []
            cin = 64
            for stage, f, n in RESNET_STAGES:
                for b in range(1, n + 1):
                    if (stage, b) > (last_stage, last_block):
                        break
                    stride = 2 if (b == 1 and stage > 2) else 1
                    blocks.append(Block(w, "conv%d_block%d" % (stage, b), cin, f, stride, b == 1))
                    cin = 4 * f
            self.blocks = nn.Sequential(*blocks)

        def forward(self, x):
            x = self.pool(F.relu(self.bn1(self.conv1(x))))
            return self.blocks(x)

    class VGG16(nn.Module):
        def __init__(self, w, layer):
            super().__init__()
            last_block, last_conv = vgg_tap_position(layer)
            mods = []
            cin = 3
            for block, f, n in VGG_BLOCKS:
                if block > last_block:
                    break
                for c in range(1, n + 1):
                    if block == last_block and last_conv and c > last_conv:
                        break
                    mods += [conv(w, "block%d_conv%d" % (block, c), cin, f, 3, 1, 1), nn.ReLU()]
                    cin = f
                if block < last_block or last_conv == 0:
                    mods.append(nn.MaxPool2d(2, 2))
            self.features = nn.Sequential(*mods)

        def forward(self, x):
            return self.features(x)

    class Fused(nn.Module):
        def __init__(self, resnet, vgg):
            super().__init__()
            self.resnet, self.vgg = resnet, vgg

        def forward(self, x_nhwc):
            x = x_nhwc.permute(0, 3, 1, 2)
            a = self.resnet(x)
            b = self.vgg(x)
            h = min(a.shape[2], b.shape[2])
            w = min(a.shape[3], b.shape[3])
            if a.shape[2] != h or a.shape[3] != w:
                a = F.interpolate(a, size=(h, w), mode="bilinear", align_corners=False)
            if b.shape[2] != h or b.shape[3] != w:
                b = F.interpolate(b, size=(h, w), mode="bilinear", align_corners=False)
            return torch.cat([a, b], 1).permute(0, 2, 3, 1).contiguous()

    rw, vw = H5Weights(resnet_h5), H5Weights(vgg_h5)
    try:
        model = Fused(ResNet50(rw, resnet_layer), VGG16(vw, vgg_layer)).eval()
    finally:
        rw.close()
        vw.close()
    return model


def torch_compile(model, example):
    import torch

    import warnings

    with torch.no_grad(), warnings.catch_warnings():
        # The resize branch depends on shapes only; it is fixed at trace time on purpose.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        # check_trace=False: the checker would re-run the model twice and inflate the compile time.
        traced = torch.jit.trace(model, example, check_trace=False)
        frozen = torch.jit.freeze(traced)
        return torch.jit.optimize_for_inference(frozen)


def proc_status_mb(field):
    """VmHWM (peak RSS) or VmRSS of this process, in MB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def torch_int8_model(a):
    """PyTorch's own int8 (tests/ref/int8_ref.py: FX static quantization, onednn engine, histogram
    observers, per-channel weights) of the same dual model, calibrated on the images in
    a.int8_calibration, NHWC in and out."""
    sys.path.insert(0, os.path.join(REPO, "tests", "ref"))
    import int8_ref

    model = int8_ref.DualNet(a.resnet_weights, a.vgg_weights, a.size, a.resnet_layer, a.vgg_layer, nhwc=True)
    return int8_ref.quantize(model, np.load(a.int8_calibration).astype(np.float32))


def torch_int8_compile(model, example):
    """trace + freeze (optimize_for_inference has no rewrites for quantized ops)."""
    import torch

    with torch.no_grad():
        return torch.jit.freeze(torch.jit.trace(model, example, check_trace=False))


def torch_child(argv):
    ap = argparse.ArgumentParser(prog="compare.py --torch-child")
    ap.add_argument("--resnet-weights", required=True)
    ap.add_argument("--vgg-weights", required=True)
    ap.add_argument("--resnet-layer", default=DEFAULT_RESNET_LAYER)
    ap.add_argument("--vgg-layer", default=DEFAULT_VGG_LAYER)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--size", type=parse_hw, default=(224, 224))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--int8-calibration", help="NHWC .npy: PyTorch FX int8 calibrated on these images")
    ap.add_argument("--int8-save", help="with --int8-calibration: trace, freeze and torch.jit.save the int8 model, stop")
    ap.add_argument("--int8-load", help="time (or check) an int8 model --int8-save wrote")
    ap.add_argument("--onnx-export", help="write the fp32 model as ONNX (batch --batch, --size) and stop")
    ap.add_argument("--check-input", help="run this NHWC .npy instead of timing")
    ap.add_argument("--check-output", help="where to write the check result")
    a = ap.parse_args(argv)

    import torch

    import_rss = proc_status_mb("VmRSS")
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    if a.int8_load:
        model = torch.jit.load(a.int8_load)
        compile_fn = lambda m, _x: m  # noqa: E731  (traced and frozen by --int8-save)
    elif a.int8_calibration:
        model = torch_int8_model(a)
        compile_fn = torch_int8_compile
    else:
        model = build_torch_model(a.resnet_weights, a.vgg_weights, a.resnet_layer, a.vgg_layer, *a.size)
        compile_fn = torch_compile
    load_s = time.perf_counter() - t0

    if a.int8_save:
        x = torch.zeros((a.batch, a.size[0], a.size[1], 3))
        t1 = time.perf_counter()
        torch.jit.save(compile_fn(model, x), a.int8_save)
        print(json.dumps({"calibrate_s": load_s, "compile_s": time.perf_counter() - t1}))
        return 0

    if a.onnx_export:
        import warnings

        x = torch.zeros((a.batch, a.size[0], a.size[1], 3))
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            torch.onnx.export(model, x, a.onnx_export, input_names=["input"], output_names=["fused"],
                              opset_version=13, do_constant_folding=True)
        print(json.dumps({"onnx": a.onnx_export, "export_s": time.perf_counter() - t0}))
        return 0

    if a.check_input:
        x = torch.from_numpy(np.load(a.check_input).astype(np.float32))
        compiled = compile_fn(model, x)
        with torch.no_grad():
            eager = model(x).numpy()
            for _ in range(2):  # the first runs of a scripted module go through the profiling executor
                compiled(x)
            out = compiled(x).numpy()
        np.save(a.check_output, out)
        eager_err = float(np.abs(out - eager).max() / max(np.abs(eager).max(), 1e-30))
        print(json.dumps({"shape": list(out.shape), "optimized_vs_eager": eager_err}))
        return 0

    h, w = a.size
    g = torch.Generator().manual_seed(12345)
    x = torch.rand((a.batch, h, w, 3), generator=g) * 256.0 - 120.0
    t0 = time.perf_counter()
    compiled = compile_fn(model, x)
    compile_s = time.perf_counter() - t0
    times = []
    with torch.no_grad():
        t0 = time.perf_counter()
        for _ in range(a.warmup):
            compiled(x)
        warmup_s = time.perf_counter() - t0
        for _ in range(a.iters):
            t = time.perf_counter()
            compiled(x)
            times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    median = times[len(times) // 2]
    print(json.dumps({
        "images_per_s": a.batch * 1e3 / median,
        "ms_per_batch_median": median,
        "ms_per_batch_min": times[0],
        "load_s": load_s,
        "compile_s": compile_s,
        "warmup_s": warmup_s,
        "peak_rss_mb": proc_status_mb("VmHWM"),
        "import_rss_mb": import_rss,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }))
    return 0


# ---------------------------------------------------------------------------
# Parent: child processes, measurements, tables
# ---------------------------------------------------------------------------

class ChildError(RuntimeError):
    pass


GNU_TIME = "/usr/bin/time"


def run_child(cmd, threads, workdir):
    """Runs cmd; returns (last stdout line parsed as JSON, peak RSS MB of that child, wall s)."""
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(threads)
    fd_out, out_path = tempfile.mkstemp(prefix="out_", dir=workdir)
    fd_err, err_path = tempfile.mkstemp(prefix="err_", dir=workdir)
    fd_rss, rss_path = tempfile.mkstemp(prefix="rss_", dir=workdir)
    os.close(fd_rss)
    timed = os.access(GNU_TIME, os.X_OK)
    if timed:  # its child's own ru_maxrss in KiB, into rss_path (see the module's docstring)
        cmd = [GNU_TIME, "-f", "%M", "-o", rss_path] + cmd
    t0 = time.perf_counter()
    try:
        p = subprocess.Popen(cmd, stdout=fd_out, stderr=fd_err, stdin=subprocess.DEVNULL, env=env)
        os.close(fd_out)
        os.close(fd_err)
        fd_out = fd_err = -1
        # wait4 gives this child's own rusage (ru_maxrss in KiB on Linux).
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        with open(out_path) as f:
            out = f.read()
        with open(err_path) as f:
            err = f.read()
        with open(rss_path) as f:
            rss_text = f.read().strip().splitlines()
    finally:
        for fd in (fd_out, fd_err):
            if fd >= 0:
                os.close(fd)
        os.unlink(out_path)
        os.unlink(err_path)
        os.unlink(rss_path)
    if p.returncode != 0:
        raise ChildError("command failed (exit %d): %s\n%s%s" % (p.returncode, " ".join(cmd), out[-2000:], err[-2000:]))
    rss_kib = ru.ru_maxrss
    if timed:
        try:
            rss_kib = int(rss_text[-1])
        except (IndexError, ValueError):
            raise ChildError("%s printed no peak RSS for: %s" % (GNU_TIME, " ".join(cmd)))
    lines = [l for l in out.strip().splitlines() if l.strip()]
    try:
        result = json.loads(lines[-1])
    except (IndexError, ValueError):
        raise ChildError("no JSON result on the last stdout line of: %s\n%s" % (" ".join(cmd), out[-2000:]))
    return result, rss_kib / 1024.0, wall


class Runner:
    def __init__(self, a):
        self.a = a

    def weights_args(self):
        a = self.a
        return ["--resnet-weights", a.resnet_weights, "--vgg-weights", a.vgg_weights,
                "--resnet-layer", a.resnet_layer, "--vgg-layer", a.vgg_layer]

    def mode_args(self, mode):
        """fusenet's options for one of our modes (int8: the calibration made from a.calibration_npy)."""
        args = ["--mode", mode]
        if mode == "int8":
            args += ["--calibration", self.a.calibration]
            if self.a.int8_layers:
                args += ["--int8-layers", self.a.int8_layers]
        return args

    def child(self, cmd, threads):
        r, rss, wall = run_child(cmd, threads, self.a.workdir)
        r["rss_mb"] = rss
        r["wall_s"] = wall
        return r

    def ours(self, batch, size, mode, threads, iters):
        return self.child([self.a.fusenet, "bench"] + self.weights_args() + [
            "--batch", str(batch), "--size", "%dx%d" % size, "--threads", str(threads),
            "--iters", str(iters)] + self.mode_args(mode), threads)

    def torch_cmd(self, batch, size, threads, int8):
        cmd = [sys.executable, os.path.abspath(__file__), "--torch-child"] + self.weights_args() + [
            "--batch", str(batch), "--size", "%dx%d" % size, "--threads", str(threads)]
        return cmd + (["--int8-load", self.torch_int8_model(batch, size)] if int8 else [])

    def torch_int8_model(self, batch, size):
        """PyTorch's FX int8 model, calibrated, traced at this batch and size, frozen and saved once per
        run by its own child: the timed child loads it, as ours loads a calibration file, so neither
        side's time or peak RSS includes calibrating."""
        path = os.path.join(self.a.workdir, "torch_int8_b%d_%dx%d.pt" % (batch, size[0], size[1]))
        if not os.path.exists(path):
            cmd = [sys.executable, os.path.abspath(__file__), "--torch-child"] + self.weights_args() + [
                "--batch", str(batch), "--size", "%dx%d" % size, "--threads", str(self.a.threads),
                "--int8-calibration", self.a.calibration_npy, "--int8-save", path]
            r, _, _ = run_child(cmd, self.a.threads, self.a.workdir)
            self.a.torch_int8_setup["batch %d" % batch] = r["calibrate_s"] + r["compile_s"]
        return path

    def torch(self, batch, size, threads, iters, int8=False):
        return self.child(self.torch_cmd(batch, size, threads, int8) + [
            "--iters", str(iters), "--warmup", str(self.a.warmup)], threads)

    def ort_cmd(self, batch, size, threads):
        return ["node", os.path.join(HERE, "ort_bench.js"), "--ort-dir", self.a.ort_dir,
                "--model", self.onnx_model(batch, size), "--batch", str(batch), "--size", "%dx%d" % size,
                "--threads", str(threads)]

    def onnx_model(self, batch, size):
        """The fp32 torch model exported with torch.onnx.export at this batch and size (static shapes,
        ONNX Runtime's fastest case), once per run."""
        path = os.path.join(self.a.workdir, "dual_b%d_%dx%d.onnx" % (batch, size[0], size[1]))
        if not os.path.exists(path):
            run_child(self.torch_cmd(batch, size, self.a.threads, False) + ["--onnx-export", path],
                      self.a.threads, self.a.workdir)
        return path

    def ort(self, batch, size, threads, iters):
        return self.child(self.ort_cmd(batch, size, threads) + [
            "--iters", str(iters), "--warmup", str(self.a.warmup)], threads)

    def side(self, side, batch):
        """One measurement of a side (see sides()) at this batch."""
        a = self.a
        kind, mode = side
        if kind == "ours":
            return self.ours(batch, a.size, mode, a.threads, a.iters)
        if kind == "ort":
            return self.ort(batch, a.size, a.threads, a.iters)
        return self.torch(batch, a.size, a.threads, a.iters, int8=(mode == "int8"))


SIDE_NAMES = {("torch", "fp32"): "torch jit_opt", ("torch", "int8"): "torch FX int8", ("ort", "fp32"): "onnxruntime"}


def side_name(side):
    return SIDE_NAMES.get(side) or "ours %s" % side[1]


def is_fp32_peer(side):
    return side[0] != "ours" and side[1] == "fp32"


def ort_status(a):
    """None when the ONNX Runtime side can run, else why not (printed; that side is left out)."""
    if shutil.which("node") is None:
        return "node not found"
    if not os.path.isdir(os.path.join(a.ort_dir, "node_modules", "onnxruntime-node")):
        return ("onnxruntime-node not installed in %s (npm install --ignore-scripts --prefix %s onnxruntime-node)"
                % (a.ort_dir, a.ort_dir))
    return None


def sides(a):
    """(kind, mode) of every side of the run: ours per mode, then the peers asked for."""
    out = [("ours", m) for m in a.modes]
    if "torch" in a.peers:
        out.append(("torch", "fp32"))
    if "torch-int8" in a.peers:
        out.append(("torch", "int8"))
    if "ort" in a.peers:
        out.append(("ort", "fp32"))
    return out


def make_weights(a):
    if bool(a.resnet_weights) != bool(a.vgg_weights):
        raise SystemExit("compare.py: give both --resnet-weights and --vgg-weights, or neither")
    if a.resnet_weights:
        return
    a.resnet_weights = os.path.join(a.workdir, "r.h5")
    a.vgg_weights = os.path.join(a.workdir, "v.h5")
    for model, path in (("resnet50", a.resnet_weights), ("vgg16", a.vgg_weights)):
        if not os.path.exists(path):
            subprocess.run([a.fusenet, "make-weights", "--model", model, "--seed", "1", "--output", path],
                           check=True, stdout=subprocess.DEVNULL)
    print("weights: seeded random (make-weights --seed 1) in the work directory")


def rel_err(ours, ref):
    return float(np.abs(ours - ref).max() / max(float(np.abs(ref).max()), 1e-30))


_INFO = {}


def info_field(fusenet, field, default=None):
    """A line `FIELD: value` of `fusenet info` (run once per binary: it measures the peaks)."""
    if fusenet not in _INFO:
        _INFO[fusenet] = subprocess.run([fusenet, "info"], capture_output=True, text=True, check=True).stdout
    for line in _INFO[fusenet].splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    if default is not None:
        return default
    raise SystemExit("`fusenet info` printed no %s line" % field)


def offered_modes(fusenet):
    """The modes `fusenet info` lists for this CPU (fast only where oneDNN has Winograd; int8 once it exists)."""
    return info_field(fusenet, "modes").split()


def make_calibration(a):
    """The 16 calibration images (tests/ref/int8_ref.py's synthetic pictures, seed 101, at --size, caffe
    preprocessed) for both int8 sides; ours calibrated from them with `fusenet calibrate`."""
    sys.path.insert(0, os.path.join(REPO, "tests", "ref"))
    from int8_images import caffe, synthetic_images

    a.calibration_npy = os.path.join(a.workdir, "calibration.npy")
    np.save(a.calibration_npy, caffe(synthetic_images(101, a.calibration_count, *a.size)))
    a.calibration = os.path.join(a.workdir, "calibration.txt")
    if "int8" in a.modes:
        r = subprocess.run([a.fusenet, "calibrate"] + Runner(a).weights_args() + [
            "--input", a.calibration_npy, "--output", a.calibration, "--threads", str(a.threads)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            raise ChildError("fusenet calibrate failed (exit %d): %s" % (r.returncode, r.stderr.strip()[-500:]))
    print("calibration: %d synthetic images (seed 101) at %dx%d for both int8 sides"
          % (a.calibration_count, a.size[0], a.size[1]))


def cosine(x, y):
    x, y = x.reshape(-1).astype(np.float64), y.reshape(-1).astype(np.float64)
    return float(x @ y / max(np.linalg.norm(x) * np.linalg.norm(y), 1e-300))


def accuracy_check(a, side_list):
    """Batch 1 at --size (224x224 by default), one held-out synthetic picture (tests/ref/int8_ref.py,
    seed 202): every fp32 side against the torch model we time (same trace + freeze +
    optimize_for_inference pipeline), max|diff| / max|ref| per channel slice; the int8 sides'
    cosine to it (printed, not a gate: the fidelity test is tests/ref/int8_fidelity.py)."""
    from int8_images import caffe, synthetic_image

    h, w = a.size
    x = caffe(synthetic_image(202, 0, h, w)[None])
    xin = os.path.join(a.workdir, "check_in.npy")
    np.save(xin, x)
    run = Runner(a)

    def torch_out(int8):
        out = os.path.join(a.workdir, "check_torch%s.npy" % ("_int8" if int8 else ""))
        info = run.child(run.torch_cmd(1, a.size, a.threads, int8) + ["--check-input", xin, "--check-output", out],
                         a.threads)
        return np.load(out), info

    ref, info = torch_out(False)
    c_res = resnet_channels(a.resnet_layer)
    ok = True
    print("accuracy check (batch 1, %dx%d, one synthetic picture; fp32: max|side - torch| / max|torch|, int8: "
          "cosine to torch fp32; torch optimized vs eager: %.2e):" % (h, w, info["optimized_vs_eager"]))
    for side in side_list:
        kind, mode = side
        if side == ("torch", "fp32"):
            continue
        name = side_name(side)
        if kind == "torch":
            out, _ = torch_out(True)
        elif kind == "ort":
            raw_in, raw_out = os.path.join(a.workdir, "check_in.f32"), os.path.join(a.workdir, "check_ort.f32")
            x.tofile(raw_in)
            try:
                run.child(run.ort_cmd(1, a.size, a.threads) + ["--check-input", raw_in, "--check-output", raw_out],
                          a.threads)
            except ChildError as e:
                print("  %-14s failed: %s" % (name, str(e).strip()[-500:]))
                ok = False
                continue
            out = np.fromfile(raw_out, dtype=np.float32).reshape(ref.shape)
        else:
            yout = os.path.join(a.workdir, "check_ours_%s.npy" % mode)
            r = subprocess.run([a.fusenet, "fuse"] + run.weights_args() + [
                "--input", xin, "--output", yout, "--threads", str(a.threads)] + run.mode_args(mode),
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                env=dict(os.environ, OMP_NUM_THREADS=str(a.threads)))
            if r.returncode != 0:
                why = "signal %d" % -r.returncode if r.returncode < 0 else "exit %d" % r.returncode
                print("  %-14s fusenet fuse failed (%s) %s" % (name, why, r.stderr.strip()[-500:]))
                ok = False
                continue
            out = np.load(yout)
        if out.shape != ref.shape:
            print("  %-14s shape mismatch: %s, torch %s" % (name, out.shape, ref.shape))
            ok = False
            continue
        if mode == "int8":
            print("  %-14s cosine %.5f  resnet %.5f  vgg %.5f" % (name, cosine(out, ref),
                  cosine(out[..., :c_res], ref[..., :c_res]), cosine(out[..., c_res:], ref[..., c_res:])))
            continue
        own_wino = mode == "fast" and not info_field(a.fusenet, "isa").startswith("avx512")
        tol = FAST_TOL if mode == "fast" and not own_wino else EXACT_TOL
        e_all = rel_err(out, ref)
        e_r = rel_err(out[..., :c_res], ref[..., :c_res])
        e_v = rel_err(out[..., c_res:], ref[..., c_res:])
        good = max(e_r, e_v, e_all) <= tol
        ok = ok and (good or (mode == "fast" and not own_wino))
        print("  %-14s output %s  resnet %.2e  vgg %.2e  all %.2e  (bound %.0e) %s"
              % (name, "x".join(map(str, out.shape)), e_r, e_v, e_all, tol, "ok" if good else "MISMATCH"))
    return ok


def resnet_channels(layer):
    stage, block = resnet_tap_position(layer)
    if block == 0:
        return 64
    return 4 * dict((s, f) for s, f, _ in RESNET_STAGES)[stage]


def med(values):
    return statistics.median(values)


def compare(a, side_list):
    run = Runner(a)
    print("threads %d, size %dx%d, iters %d (warm-up: peers %d, ours 3), repeat %d, taps %s + %s"
          % (a.threads, a.size[0], a.size[1], a.iters, a.warmup, a.repeat, a.resnet_layer, a.vgg_layer))
    print("sides, alternated: " + ", ".join(side_name(s) for s in side_list))
    rows, versions = [], {}
    for batch in a.batch:
        for side in side_list:
            if side[0] == "ort":
                run.onnx_model(batch, a.size)   # exported before any timing
            if side == ("torch", "int8"):
                run.torch_int8_model(batch, a.size)   # calibrated and saved before any timing
        results = {s: [] for s in side_list}
        for rep in range(a.repeat):
            # Rotate the order between repeats, so that every side leads once in len(sides) repeats.
            k = rep % len(side_list)
            for side in side_list[k:] + side_list[:k]:
                r = run.side(side, batch)
                results[side].append(r)
                versions.update({k2: r[k2] for k2 in ("torch", "ort") if k2 in r})
                setup = r.get("build_s", r.get("load_s", 0.0) + r.get("compile_s", 0.0))
                print("  batch %d %-14s: %8.2f ms/batch median, %8.2f min, %6.1f MB, build/load %.2f s"
                      % (batch, side_name(side), r["ms_per_batch_median"], r["ms_per_batch_min"], r["rss_mb"], setup),
                      flush=True)
        for side in side_list:
            rs = results[side]
            ms = med([r["ms_per_batch_median"] for r in rs])
            rows.append(dict(
                batch=batch, side=side, ips=batch * 1e3 / ms, ms=ms, min=min(r["ms_per_batch_min"] for r in rs),
                rss=med([r["rss_mb"] for r in rs]), self_rss=med([r["peak_rss_mb"] for r in rs]),
                setup=med([r.get("build_s", r.get("load_s", 0.0) + r.get("compile_s", 0.0)) for r in rs]),
                gflops=med([r.get("gflops", float("nan")) for r in rs]),
                import_rss=med([r.get("import_rss_mb", float("nan")) for r in rs])))

    def at(batch, side):
        return next((r for r in rows if r["batch"] == batch and r["side"] == side), None)

    print()
    print("x best fp32 peer = img/s / the faster of torch jit_opt and onnxruntime at that batch;"
          " x torch RSS = peak RSS / PyTorch's of the same precision (int8: torch FX int8, else torch jit_opt)")
    hdr = ("batch", "side", "img/s", "x best fp32 peer", "x torch int8", "peak RSS MB", "x torch RSS", "build/load s")
    fmt = "%5s  %-14s  %8s  %16s  %12s  %11s  %11s  %12s"
    print(fmt % hdr)
    for r in rows:
        peers = [p for p in rows if p["batch"] == r["batch"] and is_fp32_peer(p["side"])]
        best = max(peers, key=lambda p: p["ips"]) if peers else None
        t8 = at(r["batch"], ("torch", "int8"))
        same = at(r["batch"], ("torch", "int8" if r["side"][1] == "int8" else "fp32"))
        r["x_peer"] = r["ips"] / best["ips"] if best else float("nan")
        r["x_t8"] = r["ips"] / t8["ips"] if t8 else float("nan")
        r["x_rss"] = r["rss"] / same["rss"] if same else float("nan")
        print(fmt % (r["batch"], side_name(r["side"]), "%.2f" % r["ips"], "%.3f" % r["x_peer"], "%.3f" % r["x_t8"],
                     "%.0f" % r["rss"], "%.2f" % r["x_rss"], "%.2f" % r["setup"]))
    print()
    print("details (ms per batch: median / min; peak RSS MB: from wait4 through /usr/bin/time / printed by the process itself;"
          " ours GFLOP/s; torch RSS right after `import torch`):")
    for r in rows:
        extra = ""
        if r["side"][0] == "ours":
            extra = ", %.1f GFLOP/s" % r["gflops"]
        elif r["side"][0] == "torch":
            extra = ", %.0f MB after import" % r["import_rss"]
        print("  batch %d %-14s %.1f / %.1f ms, %.0f / %.0f MB%s"
              % (r["batch"], side_name(r["side"]), r["ms"], r["min"], r["rss"], r["self_rss"], extra))
    print()
    for mode in a.modes:
        mine = [r for r in rows if r["side"] == ("ours", mode)]
        print("summary: ours %s: %s x best fp32 peer, %s x torch int8, peak RSS %s x PyTorch's (batch %s)"
              % (mode, " / ".join("%.2f" % r["x_peer"] for r in mine), " / ".join("%.2f" % r["x_t8"] for r in mine),
                 " / ".join("%.2f" % r["x_rss"] for r in mine), " / ".join(str(r["batch"]) for r in mine)))
    if a.torch_int8_setup:
        print("torch FX int8: calibration + trace + freeze + save, not in its build/load s: %s"
              % ", ".join("%s %.1f s" % kv for kv in a.torch_int8_setup.items()))
    print("(%d threads, %s; load average %s at the end; ratios are comparable only within this run)"
          % (a.threads, ", ".join("%s %s" % kv for kv in sorted(versions.items())), loadavg()))


def threads_scaling(a):
    run = Runner(a)
    mode = a.modes[0]
    counts = [1]
    while counts[-1] * 2 <= a.threads:
        counts.append(counts[-1] * 2)
    if counts[-1] != a.threads:
        counts.append(a.threads)
    if len(counts) == 1:
        counts.append(2)
    print("threads scaling (ours, mode %s, size %dx%d, iters %d)" % (mode, a.size[0], a.size[1], a.iters))
    print("%5s  %7s  %12s  %10s  %7s" % ("batch", "threads", "ms/batch", "img/s", "speedup"))
    for batch in a.batch:
        base = None
        for t in counts:
            r = run.ours(batch, a.size, mode, t, a.iters)
            ms = r["ms_per_batch_median"]
            base = base or ms
            print("%5d  %7d  %12.2f  %10.2f  %6.2fx" % (batch, t, ms, r["images_per_s"], base / ms), flush=True)


def scaling(a):
    run = Runner(a)
    mode = a.modes[0]
    print("size/batch scaling (ours, mode %s, %d threads, iters %d)" % (mode, a.threads, a.iters))
    print("%9s  %5s  %10s  %10s  %8s  %8s" % ("size", "batch", "ms/batch", "ms/image", "ms/MP", "RSS MB"))
    for size in a.scaling_sizes:
        for batch in a.scaling_batches:
            r = run.ours(batch, size, mode, a.threads, a.iters)
            per_img = r["ms_per_batch_median"] / batch
            print("%9s  %5d  %10.2f  %10.2f  %8.2f  %8.0f"
                  % ("%dx%d" % size, batch, r["ms_per_batch_median"], per_img,
                     per_img / (size[0] * size[1] / 1e6), r["rss_mb"]), flush=True)


def main(argv):
    if argv and argv[0] == "--torch-child":
        return torch_child(argv[1:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fusenet", default=os.path.join(REPO, "build", "fusenet"), help="default: build/fusenet")
    ap.add_argument("--resnet-weights")
    ap.add_argument("--vgg-weights")
    ap.add_argument("--resnet-layer", default=DEFAULT_RESNET_LAYER)
    ap.add_argument("--vgg-layer", default=DEFAULT_VGG_LAYER)
    ap.add_argument("--batch", type=parse_int_list, default=[1, 8], help="comma-separated, default 1,8")
    ap.add_argument("--size", type=parse_hw, default=(224, 224))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3, help="torch warm-up runs (fusenet bench does 3)")
    ap.add_argument("--modes", default="auto",
                    help="comma-separated exact,fast,int8; default auto: the modes `fusenet info` says this CPU offers")
    ap.add_argument("--peers", default="torch,torch-int8,ort",
                    help="comma-separated torch (jit_opt fp32), torch-int8 (FX int8), ort (ONNX Runtime); default all")
    ap.add_argument("--ort-dir", default=os.path.join(REPO, "build", "ort"),
                    help="where `npm install --ignore-scripts onnxruntime-node` was run (default build/ort)")
    ap.add_argument("--int8-layers", help="our int8 mode's --int8-layers (default: fusenet's)")
    ap.add_argument("--calibration-count", type=int, default=16, help="calibration images for both int8 sides")
    ap.add_argument("--repeat", type=int, default=1, help="alternated runs per side; the median is reported")
    ap.add_argument("--workdir", help="default: a temporary directory, removed at the end")
    ap.add_argument("--threads-scaling", action="store_true", help="ours only: 1, 2, ... --threads threads")
    ap.add_argument("--scaling", action="store_true", help="ours only: batches x sizes, ms/image and ms/MP")
    ap.add_argument("--scaling-batches", type=parse_int_list, default=[1, 2, 4])
    ap.add_argument("--scaling-sizes", type=parse_hw_list, default=[(160, 160), (224, 224), (320, 320)])
    a = ap.parse_args(argv)
    a.fusenet = os.path.abspath(a.fusenet)
    if not os.access(a.fusenet, os.X_OK):
        ap.error("fusenet binary not found at %s (build it or pass --fusenet)" % a.fusenet)
    if a.modes == "auto":
        a.modes = offered_modes(a.fusenet)
    else:
        a.modes = [m for m in a.modes.split(",") if m]
    for m in a.modes:
        if m not in ("exact", "fast", "int8"):
            ap.error("--modes: '%s' is not exact, fast or int8" % m)
    a.peers = [p for p in a.peers.split(",") if p]
    for p in a.peers:
        if p not in ("torch", "torch-int8", "ort"):
            ap.error("--peers: '%s' is not torch, torch-int8 or ort" % p)
    a.ort_dir = os.path.abspath(a.ort_dir)
    a.torch_int8_setup = {}
    if "ort" in a.peers and ort_status(a):
        print("onnxruntime: left out: %s" % ort_status(a))
        a.peers.remove("ort")
    if a.threads < 1 or a.iters < 1 or a.repeat < 1 or a.warmup < 0 or a.calibration_count < 1:
        ap.error("--threads, --iters, --repeat and --calibration-count must be >= 1, --warmup >= 0")
    resnet_tap_position(a.resnet_layer)
    vgg_tap_position(a.vgg_layer)

    own_workdir = a.workdir is None
    a.workdir = os.path.abspath(a.workdir or tempfile.mkdtemp(prefix="fusenet_compare_"))
    os.makedirs(a.workdir, exist_ok=True)
    try:
        make_weights(a)
        version = subprocess.run([a.fusenet, "version"], capture_output=True, text=True).stdout.strip()
        print("%s; %s (%s), %d CPUs; load average %s"
              % (version, info_field(a.fusenet, "cpu", "unknown CPU"), info_field(a.fusenet, "isa"),
                 os.cpu_count() or 0, loadavg()))
        for field in ("fma peak", "int8 peak", "int8 / fma peak"):  # what the CPU's units allow, measured
            if info_field(a.fusenet, field, ""):
                print("%s: %s" % (field, info_field(a.fusenet, field)))
        if not os.access(GNU_TIME, os.X_OK):
            print("peak RSS: %s not found (Debian package time): each side's is wait4's reading from this "
                  "process, an upper bound at least this script's own RSS" % GNU_TIME)
        make_calibration(a)
        if a.threads_scaling or a.scaling:
            if a.threads_scaling:
                threads_scaling(a)
            if a.scaling:
                scaling(a)
            return 0
        side_list = sides(a)
        if not accuracy_check(a, side_list):
            print("compare.py: the fp32 outputs do not agree (%.0e) or a side failed; not timing" % EXACT_TOL)
            return 1
        compare(a, side_list)
        return 0
    except ChildError as e:
        print("compare.py: %s" % e, file=sys.stderr)
        return 1
    finally:
        if own_workdir:
            shutil.rmtree(a.workdir, ignore_errors=True)


def loadavg():
    try:
        return "%.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "n/a"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
