#!/usr/bin/env python3
"""fusenet against PyTorch's best configuration of the same model, in one run.

Both sides compute the same thing: Keras ResNet50 v1 up to a tap (default
conv4_block6_out) and Keras VGG16 up to a tap (default block5_conv3), from the
same legacy Keras .h5 weight files; each map is resized (bilinear, half-pixel
centres, only when its size differs) to the smaller H and W, and the two are
concatenated on channels, ResNet first. Input NHWC float32, output NHWC float32.

  ours:    `fusenet bench` (its last stdout line is a JSON object)
  PyTorch: plain nn.Modules below, weights read with h5py by Keras layer name,
           torch.jit.trace + torch.jit.freeze + torch.jit.optimize_for_inference,
           torch.set_num_threads(T), torch.no_grad(). The NHWC -> NCHW permute of
           the input and the NCHW -> NHWC permute of the output are inside the
           traced model, so both sides take and return the same layout.

Before timing, both sides run one seeded random input (batch 1, at --size,
224x224 by default) and the outputs are compared: max|ours - torch| / max|torch|,
per channel slice (ResNet, VGG) and overall. Exact mode must agree to 1e-4
or the run stops; fast mode (Winograd, ~1e-3) is checked against 1e-2.

Each measurement runs in its own child process (this script re-runs itself
with --torch-child for PyTorch). The peak RSS reported for a child is the
ru_maxrss that os.wait4() returns for that child alone (KiB on Linux), i.e.
the process's own high-water mark; the number each child prints about itself
is shown as well.

Usage:
  compare.py [--fusenet PATH] [--resnet-weights F --vgg-weights F]
             [--batch 1,8] [--size 224x224] [--threads 2] [--iters 20]
             [--modes exact,fast] [--repeat 1] [--workdir DIR]
             [--threads-scaling] [--scaling]

--threads-scaling and --scaling run only our side (no PyTorch, no check):
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
FAST_TOL = 1e-2


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
    ap.add_argument("--check-input", help="run this NHWC .npy instead of timing")
    ap.add_argument("--check-output", help="where to write the check result")
    a = ap.parse_args(argv)

    import torch

    import_rss = proc_status_mb("VmRSS")
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    model = build_torch_model(a.resnet_weights, a.vgg_weights, a.resnet_layer, a.vgg_layer, *a.size)
    load_s = time.perf_counter() - t0

    if a.check_input:
        x = torch.from_numpy(np.load(a.check_input).astype(np.float32))
        compiled = torch_compile(model, x)
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
    compiled = torch_compile(model, x)
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


def run_child(cmd, threads, workdir):
    """Runs cmd; returns (last stdout line parsed as JSON, peak RSS MB of that child, wall s)."""
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(threads)
    fd_out, out_path = tempfile.mkstemp(prefix="out_", dir=workdir)
    fd_err, err_path = tempfile.mkstemp(prefix="err_", dir=workdir)
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
    finally:
        for fd in (fd_out, fd_err):
            if fd >= 0:
                os.close(fd)
        os.unlink(out_path)
        os.unlink(err_path)
    if p.returncode != 0:
        raise ChildError("command failed (exit %d): %s\n%s%s" % (p.returncode, " ".join(cmd), out[-2000:], err[-2000:]))
    lines = [l for l in out.strip().splitlines() if l.strip()]
    try:
        result = json.loads(lines[-1])
    except (IndexError, ValueError):
        raise ChildError("no JSON result on the last stdout line of: %s\n%s" % (" ".join(cmd), out[-2000:]))
    return result, ru.ru_maxrss / 1024.0, wall


class Runner:
    def __init__(self, a):
        self.a = a

    def weights_args(self):
        a = self.a
        return ["--resnet-weights", a.resnet_weights, "--vgg-weights", a.vgg_weights,
                "--resnet-layer", a.resnet_layer, "--vgg-layer", a.vgg_layer]

    def ours(self, batch, size, mode, threads, iters):
        cmd = [self.a.fusenet, "bench"] + self.weights_args() + [
            "--batch", str(batch), "--size", "%dx%d" % size, "--threads", str(threads),
            "--iters", str(iters), "--mode", mode]
        r, rss, wall = run_child(cmd, threads, self.a.workdir)
        r["rss_mb"] = rss
        r["wall_s"] = wall
        return r

    def torch(self, batch, size, threads, iters):
        cmd = [sys.executable, os.path.abspath(__file__), "--torch-child"] + self.weights_args() + [
            "--batch", str(batch), "--size", "%dx%d" % size, "--threads", str(threads),
            "--iters", str(iters), "--warmup", str(self.a.warmup)]
        r, rss, wall = run_child(cmd, threads, self.a.workdir)
        r["rss_mb"] = rss
        r["wall_s"] = wall
        return r


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


def offered_modes(fusenet):
    """The modes `fusenet info` lists for this CPU (fast only where oneDNN has Winograd)."""
    out = subprocess.run([fusenet, "info"], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if line.startswith("modes:"):
            return line.split(":", 1)[1].split()
    raise SystemExit("compare.py: `fusenet info` printed no modes line")


def accuracy_check(a, modes):
    """Batch 1 at --size (224x224 by default), one seeded random input: ours (per mode) against the
    torch model we time (same trace + freeze + optimize_for_inference pipeline)."""
    h, w = a.size
    x = (np.random.default_rng(7).random((1, h, w, 3), dtype=np.float32) * 276.0 - 124.0).astype(np.float32)
    xin = os.path.join(a.workdir, "check_in.npy")
    tout = os.path.join(a.workdir, "check_torch.npy")
    np.save(xin, x)
    cmd = [sys.executable, os.path.abspath(__file__), "--torch-child",
           "--resnet-weights", a.resnet_weights, "--vgg-weights", a.vgg_weights,
           "--resnet-layer", a.resnet_layer, "--vgg-layer", a.vgg_layer,
           "--size", "%dx%d" % a.size, "--threads", str(a.threads), "--check-input", xin, "--check-output", tout]
    info, _, _ = run_child(cmd, a.threads, a.workdir)
    ref = np.load(tout)
    c_res = resnet_channels(a.resnet_layer)
    ok = True
    print("accuracy check (batch 1, %dx%d, max|ours - torch| / max|torch|; torch optimized vs eager: %.2e):"
          % (h, w, info["optimized_vs_eager"]))
    for mode in modes:
        yout = os.path.join(a.workdir, "check_ours_%s.npy" % mode)
        r = subprocess.run([a.fusenet, "fuse"] + Runner(a).weights_args() + [
            "--input", xin, "--output", yout, "--mode", mode, "--threads", str(a.threads)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env=dict(os.environ, OMP_NUM_THREADS=str(a.threads)))
        if r.returncode != 0:
            why = "signal %d" % -r.returncode if r.returncode < 0 else "exit %d" % r.returncode
            print("  %-5s  fusenet fuse failed (%s) %s" % (mode, why, r.stderr.strip()[-500:]))
            ok = False
            continue
        ours = np.load(yout)
        if ours.shape != ref.shape:
            print("  %-5s  shape mismatch: ours %s, torch %s" % (mode, ours.shape, ref.shape))
            ok = False
            continue
        tol = EXACT_TOL if mode == "exact" else FAST_TOL
        e_all = rel_err(ours, ref)
        e_r = rel_err(ours[..., :c_res], ref[..., :c_res])
        e_v = rel_err(ours[..., c_res:], ref[..., c_res:])
        good = max(e_r, e_v, e_all) <= tol
        ok = ok and (good or mode != "exact")
        print("  %-5s  output %s  resnet %.2e  vgg %.2e  all %.2e  (bound %.0e) %s"
              % (mode, "x".join(map(str, ours.shape)), e_r, e_v, e_all, tol, "ok" if good else "MISMATCH"))
    return ok


def resnet_channels(layer):
    stage, block = resnet_tap_position(layer)
    if block == 0:
        return 64
    return 4 * dict((s, f) for s, f, _ in RESNET_STAGES)[stage]


def med(values):
    return statistics.median(values)


def compare(a):
    run = Runner(a)
    print("threads %d, size %dx%d, iters %d (torch warm-up %d, ours 3), repeat %d, taps %s + %s"
          % (a.threads, a.size[0], a.size[1], a.iters, a.warmup, a.repeat, a.resnet_layer, a.vgg_layer))
    rows = []
    torch_version = None
    for batch in a.batch:
        ours = {m: [] for m in a.modes}
        torch_runs = []
        for rep in range(a.repeat):
            # Alternate the order between repeats: ours first on even repeats, torch first on odd ones.
            steps = [("ours", m) for m in a.modes] + [("torch", None)]
            if rep % 2:
                steps = steps[-1:] + steps[:-1]
            for side, mode in steps:
                if side == "ours":
                    r = run.ours(batch, a.size, mode, a.threads, a.iters)
                    ours[mode].append(r)
                    print("  batch %d %-5s ours : %8.2f ms/batch median, %8.2f min, %6.1f MB, build %.2f s"
                          % (batch, mode, r["ms_per_batch_median"], r["ms_per_batch_min"], r["rss_mb"], r["build_s"]),
                          flush=True)
                else:
                    r = run.torch(batch, a.size, a.threads, a.iters)
                    torch_runs.append(r)
                    torch_version = r["torch"]
                    print("  batch %d       torch: %8.2f ms/batch median, %8.2f min, %6.1f MB, load %.2f s + compile %.2f s"
                          % (batch, r["ms_per_batch_median"], r["ms_per_batch_min"], r["rss_mb"], r["load_s"],
                             r["compile_s"]), flush=True)
        t_ms = med([r["ms_per_batch_median"] for r in torch_runs])
        t_min = min(r["ms_per_batch_min"] for r in torch_runs)
        t_rss = med([r["rss_mb"] for r in torch_runs])
        t_self = med([r["peak_rss_mb"] for r in torch_runs])
        t_load = med([r["load_s"] + r["compile_s"] for r in torch_runs])
        t_import = med([r["import_rss_mb"] for r in torch_runs])
        for mode in a.modes:
            o = ours[mode]
            o_ms = med([r["ms_per_batch_median"] for r in o])
            rows.append(dict(
                batch=batch, mode=mode,
                o_ips=batch * 1e3 / o_ms, t_ips=batch * 1e3 / t_ms,
                o_ms=o_ms, o_min=min(r["ms_per_batch_min"] for r in o), t_ms=t_ms, t_min=t_min,
                o_rss=med([r["rss_mb"] for r in o]), o_self=med([r["peak_rss_mb"] for r in o]),
                t_rss=t_rss, t_self=t_self, t_import=t_import,
                o_build=med([r["build_s"] for r in o]), t_load=t_load,
                gflops=med([r["gflops"] for r in o])))

    print()
    hdr = ("batch", "mode", "ours img/s", "torch img/s", "speed x", "ours MB", "torch MB", "RSS x",
           "ours build s", "torch load s")
    fmt = "%5s  %-5s  %10s  %11s  %7s  %7s  %8s  %5s  %12s  %12s"
    print(fmt % hdr)
    for r in rows:
        print(fmt % (r["batch"], r["mode"], "%.2f" % r["o_ips"], "%.2f" % r["t_ips"],
                     "%.2f" % (r["o_ips"] / r["t_ips"]), "%.0f" % r["o_rss"], "%.0f" % r["t_rss"],
                     "%.2f" % (r["o_rss"] / r["t_rss"]), "%.2f" % r["o_build"], "%.2f" % r["t_load"]))
    print()
    print("details (ms per batch: median / min; peak RSS MB: measured by wait4 / printed by the process itself;"
          " ours GFLOP/s; torch RSS right after `import torch`):")
    for r in rows:
        print("  batch %d %-5s ours %.1f / %.1f ms, %.0f / %.0f MB, %.1f GFLOP/s;  torch %.1f / %.1f ms, %.0f / %.0f MB,"
              " %.0f MB after import"
              % (r["batch"], r["mode"], r["o_ms"], r["o_min"], r["o_rss"], r["o_self"], r["gflops"],
                 r["t_ms"], r["t_min"], r["t_rss"], r["t_self"], r["t_import"]))
    speed = [r["o_ips"] / r["t_ips"] for r in rows]
    mem = [r["o_rss"] / r["t_rss"] for r in rows]
    print()
    print("summary: ours/torch %s speed %.2fx .. %.2fx, peak RSS %.2fx .. %.2fx (%d threads, torch %s; "
          "load average %s at the end; ratios are comparable only within this run)"
          % ("/".join(a.modes), min(speed), max(speed), min(mem), max(mem), a.threads, torch_version, loadavg()))


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
                    help="comma-separated exact,fast; default auto: the modes `fusenet info` says this CPU offers")
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
        if m not in ("exact", "fast"):
            ap.error("--modes: '%s' is not exact or fast" % m)
    if a.threads < 1 or a.iters < 1 or a.repeat < 1 or a.warmup < 0:
        ap.error("--threads, --iters and --repeat must be >= 1, --warmup >= 0")
    resnet_tap_position(a.resnet_layer)
    vgg_tap_position(a.vgg_layer)

    own_workdir = a.workdir is None
    a.workdir = os.path.abspath(a.workdir or tempfile.mkdtemp(prefix="fusenet_compare_"))
    os.makedirs(a.workdir, exist_ok=True)
    try:
        make_weights(a)
        version = subprocess.run([a.fusenet, "version"], capture_output=True, text=True).stdout.strip()
        print("%s; %s, %d CPUs; load average %s" % (version, cpu_name(), os.cpu_count() or 0, loadavg()))
        if a.threads_scaling or a.scaling:
            if a.threads_scaling:
                threads_scaling(a)
            if a.scaling:
                scaling(a)
            return 0
        if not accuracy_check(a, a.modes):
            print("compare.py: the outputs do not agree (exact mode: %.0e) or fusenet failed; not timing" % EXACT_TOL)
            return 1
        compare(a)
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


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
