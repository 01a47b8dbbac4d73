#!/usr/bin/env python3
"""PyTorch's own int8 of the dual model, and the synthetic images it is judged on.

The int8 side is PyTorch FX post-training static quantization (torch.ao.quantization.quantize_fx:
prepare_fx, calibration forwards, convert_fx) on the oneDNN engine
(torch.backends.quantized.engine = 'onednn'), with get_default_qconfig_mapping('onednn'):
HistogramObserver activations (u8, reduce_range off) and per-channel symmetric s8 weights.
Debian's torch 1.13 has no fbgemm/x86 engine; onednn is its x86 int8 engine.

The float model is tests/ref/torch_ref.py's (Keras HDF5 weights read by layer name, Keras
semantics), rebuilt as one FX-traceable nn.Module: ResNet50 up to its tap (default
conv4_block6_out) and VGG16 up to its tap (default block5_conv3), each map resized (bilinear,
half-pixel, only when the sizes differ) to the smaller H and W, concatenated on channels, ResNet
first. Two rewrites keep the graph quantizable without changing the float result:
ZeroPadding2D(p) + a valid conv is the conv with padding p, and ZeroPadding2D(1) + the valid 3x3/2
max pool is MaxPool2d(3, 2, padding=1) (its input is post-ReLU, so zero and -inf padding agree);
ReLUs are nn.ReLU modules so that prepare_fx fuses conv + BatchNorm + ReLU as it does for torchvision.

The images it is calibrated on and judged on are tests/ref/int8_images.py's.

CLI (NHWC float32 .npy in and out, already preprocessed):
  int8_ref.py run --resnet-weights F --vgg-weights F --calibration CAL.npy --input IN.npy
                  --output OUT.npy [--fp32-output OUT32.npy] [--resnet-layer L] [--vgg-layer L]
                  [--threads N]
  int8_ref.py images --count N --size HxW --seed S --output-dir DIR   (PNG files img_00000.png ...)
"""

import argparse
import copy
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import torch_ref as R  # noqa: E402  (sets 2 threads; callers set their own)
from int8_images import synthetic_images, write_pngs  # noqa: E402


# ---------------------------------------------------------------------------
# The dual model as one FX-traceable module
# ---------------------------------------------------------------------------

def _branch_plan(graph, tap):
    """[(name, module, [inputs])] of the nodes `tap` needs, in order, with ZeroPad2d folded into
    its consumer (a conv: padding; the max pool after a ReLU: padding=1) and ReLU/ConvAct split
    into nn modules prepare_fx fuses (conv, BatchNorm, nn.ReLU)."""
    needed, stack = set(), [tap]
    while stack:
        n = stack.pop()
        if n not in needed:
            needed.add(n)
            stack += graph.nodes[n][1]
    plan, rename = [], {}
    for name in graph.order:
        if name not in needed:
            continue
        mod, ins = graph.nodes[name]
        ins = [rename.get(i, i) for i in ins]
        if mod is None:
            rename[name] = None          # the input
            continue
        if isinstance(mod, nn.ZeroPad2d):
            rename[name] = (ins[0], mod.padding)
            continue
        pad = None
        if ins and isinstance(ins[0], tuple):
            ins, pad = [ins[0][0]], ins[0][1]
        if isinstance(mod, R.ConvAct):
            conv = mod.conv
            if pad is not None:
                left, right, top, bottom = pad
                assert left == right == top == bottom and conv.padding == (0, 0), name
                conv.padding = (top, left)
            plan.append((name + "__conv", conv, ins))
            if mod.relu:
                plan.append((name, nn.ReLU(), [name + "__conv"]))
            else:
                rename[name] = name + "__conv"
        elif isinstance(mod, nn.MaxPool2d):
            if pad is not None:
                assert pad == (1, 1, 1, 1) and mod.kernel_size == 3, name   # pool1_pad + pool1_pool
                mod = nn.MaxPool2d(mod.kernel_size, mod.stride, padding=1)
            plan.append((name, mod, ins))
        elif isinstance(mod, R.Relu):
            plan.append((name, nn.ReLU(), ins))
        else:
            assert pad is None, name
            plan.append((name, mod, ins))
    return plan, rename.get(tap, tap)


class DualNet(nn.Module):
    """ResNet50 tap + VGG16 tap, resized to the smaller H, W and concatenated (ResNet first).
    nhwc=True: takes and returns NHWC (the permutes inside the model), as the benchmark's sides."""

    def __init__(self, resnet_weights, vgg_weights, in_hw, resnet_layer=R.DEFAULT_RESNET_LAYER,
                 vgg_layer=R.DEFAULT_VGG_LAYER, nhwc=False):
        super().__init__()
        self.mods = nn.ModuleDict()
        self.branches = []
        for model, path, tap in (("resnet50", resnet_weights, resnet_layer), ("vgg16", vgg_weights, vgg_layer)):
            _, weights = R.read_keras_h5(path)
            build = R.build_resnet50 if model == "resnet50" else R.build_vgg16
            plan, out = _branch_plan(build(weights, False, None, model), tap)
            steps = []
            for name, mod, ins in plan:
                key = "%s_%s" % (model[0], name)
                self.mods[key] = mod
                steps.append((key, ["%s_%s" % (model[0], i) if i is not None else None for i in ins]))
            self.branches.append((steps, "%s_%s" % (model[0], out)))
        self.nhwc = nhwc
        self.eval()
        with torch.no_grad():
            shapes = [t.shape for t in self._taps(torch.zeros(1, 3, *in_hw))]
        self.out_hw = (min(s[2] for s in shapes), min(s[3] for s in shapes))
        self.resize = [tuple(s[2:]) != self.out_hw for s in shapes]   # fixed at build: FX traces no shapes
        self.channels = [s[1] for s in shapes]

    def _taps(self, x):
        taps = []
        for steps, out in self.branches:
            vals = {None: x}
            for key, ins in steps:
                vals[key] = self.mods[key](*[vals[i] for i in ins])
            taps.append(vals[out])
        return taps

    def forward(self, x):
        if self.nhwc:
            x = x.permute(0, 3, 1, 2)
        taps = self._taps(x)
        for i, t in enumerate(taps):
            if self.resize[i]:
                taps[i] = F.interpolate(t, size=self.out_hw, mode="bilinear", align_corners=False)
        y = torch.cat(taps, 1)
        return y.permute(0, 2, 3, 1).contiguous() if self.nhwc else y


def to_nchw(x_nhwc):
    return torch.from_numpy(np.ascontiguousarray(x_nhwc, dtype=np.float32)).permute(0, 3, 1, 2).contiguous()


def run_model(model, x_nhwc, batch=8):
    """NHWC numpy in, NHWC numpy out (an nhwc=False model)."""
    outs = []
    with torch.no_grad():
        for i in range(0, len(x_nhwc), batch):
            outs.append(model(to_nchw(x_nhwc[i:i + batch])).permute(0, 2, 3, 1).contiguous().numpy())
    return np.concatenate(outs)


def quantize(model, calibration_nhwc, batch=8):
    """FX post-training static int8 of `model` (eval), calibrated on the given NHWC images."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.backends.quantized.engine = "onednn"
    qmap = get_default_qconfig_mapping("onednn")
    first = calibration_nhwc[:1]
    example = torch.from_numpy(np.ascontiguousarray(first)) if model.nhwc else to_nchw(first)
    prepared = prepare_fx(copy.deepcopy(model).eval(), qmap, example_inputs=(example,))
    with torch.no_grad():
        for i in range(0, len(calibration_nhwc), batch):
            part = calibration_nhwc[i:i + batch]
            prepared(torch.from_numpy(np.ascontiguousarray(part)) if model.nhwc else to_nchw(part))
    return convert_fx(prepared)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--resnet-weights", required=True)
    r.add_argument("--vgg-weights", required=True)
    r.add_argument("--resnet-layer", default=R.DEFAULT_RESNET_LAYER)
    r.add_argument("--vgg-layer", default=R.DEFAULT_VGG_LAYER)
    r.add_argument("--calibration", required=True, help="NHWC float32 .npy, preprocessed")
    r.add_argument("--input", required=True)
    r.add_argument("--output", required=True)
    r.add_argument("--fp32-output")
    r.add_argument("--threads", type=int, default=2)
    i = sub.add_parser("images")
    i.add_argument("--count", type=int, required=True)
    i.add_argument("--size", default="96x96")
    i.add_argument("--seed", type=int, default=1)
    i.add_argument("--output-dir", required=True)
    a = ap.parse_args(argv)
    if a.cmd == "images":
        h, w = R.parse_size(a.size)
        write_pngs(synthetic_images(a.seed, a.count, h, w), a.output_dir)
        return 0
    torch.set_num_threads(a.threads)
    cal = np.load(a.calibration).astype(np.float32)
    x = np.load(a.input).astype(np.float32)
    model = DualNet(a.resnet_weights, a.vgg_weights, x.shape[1:3], a.resnet_layer, a.vgg_layer)
    if a.fp32_output:
        np.save(a.fp32_output, run_model(model, x))
    np.save(a.output, run_model(quantize(model, cal), x))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
