#!/usr/bin/env python3
"""Independent PyTorch reference for Keras ResNet50 / VGG16 feature taps.

Reads a legacy Keras HDF5 weights file (layer by layer, through each group's
`weight_names` attribute, with h5py), builds Keras-equivalent torch modules and
computes the output of any Keras layer by name, in float32 (NCHW internally,
NHWC numpy out). Semantics follow the Keras applications:

ResNet50 (v1): stride 2 on the first 1x1 conv of a stage's first block and on
its projection shortcut; every conv has a bias; BN eps 1.001e-5 (inference);
conv1_pad = ZeroPadding 3 + conv1_conv 7x7/2 valid; pool1_pad = ZeroPadding 1 +
pool1_pool MaxPool 3x3/2 valid; `_bn` outputs are pre-ReLU, `_add` pre-ReLU,
`_out` post-ReLU. Top: avg_pool (global mean) + predictions (Dense, softmax).
An old Keras ResNet50 file (layer bn_conv1: conv1, res2a_branch2a, ..., fc1000)
is read into the same graph under the current names, with BN eps 1e-3.
VGG16: conv 3x3 same with fused ReLU (block*_conv* outputs are post-ReLU),
MaxPool 2x2/2 valid. Top: flatten (NHWC order), fc1/fc2 (ReLU), predictions (softmax).
Without the top, pooling='avg'/'max' adds avg_pool/max_pool (ResNet) or
global_average_pooling2d/global_max_pooling2d (VGG).

Fuse: each tap resized (only when its size differs from the target) with
F.interpolate(mode='bilinear', align_corners=False, antialias=False) = TF
half-pixel bilinear, or mode='nearest-exact' = TF half-pixel nearest
(floor((o + 0.5) * in/out)); then concatenated on channels (ResNet first).

CLI:
  torch_ref.py tap --model resnet50|vgg16|resnet101|resnet152|vgg19 --weights F.h5 --layer L [--layer L2 ...]
                   --input IN.npy --output OUT.npy [--output OUT2.npy ...]
                   [--pooling none|avg|max] [--top auto|yes|no] [--float64]
  torch_ref.py fuse --resnet-weights F --vgg-weights F [--resnet-layer L] [--vgg-layer L]
                    --input IN.npy [--resize bilinear|nearest] [--size min|max|HxW]
                    --output OUT.npy
  torch_ref.py selfcheck [--spec-dir DIR] [--workdir DIR]
Inputs are NHWC float32 .npy files, already preprocessed.
"""

import argparse
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(2)

BN_EPS = 1.001e-5
RESNET_STAGES = ((2, 64, 3), (3, 128, 4), (4, 256, 6), (5, 512, 3))
VGG_BLOCKS = ((1, 64, 2), (2, 128, 2), (3, 256, 3), (4, 512, 3), (5, 512, 3))
# keras/applications/resnet.py stack_fn (blocks per stack) and vgg19.py (4 convs in blocks 3-5).
RESNET_BLOCKS = {"resnet50": (3, 4, 6, 3), "resnet101": (3, 4, 23, 3), "resnet152": (3, 8, 36, 3)}
VGG19_BLOCKS = ((1, 64, 2), (2, 128, 2), (3, 256, 4), (4, 512, 4), (5, 512, 4))
DEFAULT_RESNET_LAYER = "conv4_block6_out"
DEFAULT_VGG_LAYER = "block5_conv3"


# ---------------------------------------------------------------------------
# HDF5 reading (legacy Keras layout)
# ---------------------------------------------------------------------------

def _decode(v):
    if isinstance(v, bytes):
        return v.rstrip(b"\0").decode("utf8")
    return str(v).rstrip("\0")


def read_string_list(attrs, name):
    """Keras load_attributes_from_hdf5_group: `name`, else name0, name1, ..."""
    if name in attrs:
        raw = [attrs[name]]
    else:
        raw, i = [], 0
        while "%s%d" % (name, i) in attrs:
            raw.append(attrs["%s%d" % (name, i)])
            i += 1
        if not raw:
            raise KeyError("attribute %r not found" % name)
    out = []
    for v in raw:
        a = np.asarray(v)
        if a.size == 0 or a.dtype.kind in "fiu":   # empty list: zero-length float64
            continue
        out += [_decode(x) for x in a.reshape(-1)]
    return out


def read_keras_h5(path):
    """Returns (layer_names, {layer: [np.float32 arrays in weight_names order]})."""
    import h5py
    weights = {}
    with h5py.File(path, "r") as f:
        g = f["model_weights"] if ("layer_names" not in f.attrs and "model_weights" in f) else f
        names = read_string_list(g.attrs, "layer_names")
        for n in names:
            wn = read_string_list(g[n].attrs, "weight_names")
            if wn:
                weights[n] = [np.asarray(g[n][w], dtype=np.float32) for w in wn]
    return names, weights


# ---------------------------------------------------------------------------
# Graph of torch modules
# ---------------------------------------------------------------------------

class Relu(nn.Module):
    def forward(self, x):
        return torch.relu(x)


class GlobalPool(nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.kind = kind

    def forward(self, x):
        return x.mean(dim=(2, 3)) if self.kind == "avg" else x.amax(dim=(2, 3))


class FlattenNHWC(nn.Module):
    def forward(self, x):
        return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)


class Dense(nn.Module):
    def __init__(self, kernel, bias, act):
        super().__init__()
        self.lin = nn.Linear(kernel.shape[0], kernel.shape[1])
        with torch.no_grad():
            self.lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel.T)))
            self.lin.bias.copy_(torch.from_numpy(bias))
        self.act = act

    def forward(self, x):
        y = self.lin(x)
        if self.act == "relu":
            y = torch.relu(y)
        elif self.act == "softmax":
            y = torch.softmax(y, dim=1)
        return y


class ConvAct(nn.Module):
    def __init__(self, kernel, bias, stride, padding, relu):
        super().__init__()
        kh, kw, cin, cout = kernel.shape
        self.conv = nn.Conv2d(cin, cout, (kh, kw), stride=stride, padding=padding, bias=True)
        with torch.no_grad():
            self.conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))))
            self.conv.bias.copy_(torch.from_numpy(bias))
        self.relu = relu

    def forward(self, x):
        y = self.conv(x)
        return torch.relu(y) if self.relu else y


def make_bn(gamma, beta, mean, var, eps=BN_EPS):
    bn = nn.BatchNorm2d(gamma.shape[0], eps=eps)
    with torch.no_grad():
        bn.weight.copy_(torch.from_numpy(gamma))
        bn.bias.copy_(torch.from_numpy(beta))
        bn.running_mean.copy_(torch.from_numpy(mean))
        bn.running_var.copy_(torch.from_numpy(var))
    return bn.eval()


class Add(nn.Module):
    def forward(self, a, b):
        return a + b


class KerasGraph:
    """Named nodes in a topological order; evaluates only what a request needs."""

    def __init__(self, model):
        self.model = model
        self.order = []          # names
        self.nodes = {}          # name -> (module or None, [input names])

    def add(self, name, module, inputs):
        assert name not in self.nodes, name
        self.order.append(name)
        self.nodes[name] = (module, list(inputs))

    def layer_names(self):
        return list(self.order)

    def to(self, dtype):
        for m, _ in self.nodes.values():
            if m is not None:
                m.to(dtype)
        return self

    def run(self, x_nhwc, layers, dtype=torch.float32):
        """x_nhwc: numpy (N,H,W,3). Returns a list of numpy outputs (NHWC or (N,C))."""
        for l in layers:
            if l not in self.nodes:
                raise KeyError("%s has no layer %r" % (self.model, l))
        needed, stack = set(), list(layers)
        while stack:
            n = stack.pop()
            if n not in needed:
                needed.add(n)
                stack += self.nodes[n][1]
        uses = {}
        for n in self.order:
            if n in needed:
                for i in self.nodes[n][1]:
                    uses[i] = uses.get(i, 0) + 1
        want = set(layers)
        vals, results = {}, {}
        x = torch.from_numpy(np.ascontiguousarray(x_nhwc)).to(dtype).permute(0, 3, 1, 2).contiguous()
        with torch.no_grad():
            for n in self.order:
                if n not in needed:
                    continue
                mod, ins = self.nodes[n]
                if mod is None:
                    y = x
                else:
                    y = mod(*[vals[i] for i in ins])
                for i in ins:
                    uses[i] -= 1
                    if uses[i] == 0 and i not in want:
                        del vals[i]
                vals[n] = y
                if n in want:
                    results[n] = y
        out = []
        for l in layers:
            y = results[l]
            if y.dim() == 4:
                y = y.permute(0, 2, 3, 1)
            out.append(y.contiguous().numpy().astype(np.float32 if dtype == torch.float32 else np.float64))
        return out


def _detect_top(model, names, top):
    if top in (True, False):
        return top
    if model in RESNET_BLOCKS:
        return "predictions" in names
    return "fc1" in names


def build_resnet50(weights, include_top=False, pooling=None, model="resnet50", eps=BN_EPS):
    W = weights

    def bn(name):
        return make_bn(*W[name], eps=eps)
    g = KerasGraph(model)
    g.add("input_1", None, [])
    g.add("conv1_pad", nn.ZeroPad2d(3), ["input_1"])
    g.add("conv1_conv", ConvAct(*W["conv1_conv"], stride=2, padding=0, relu=False), ["conv1_pad"])
    g.add("conv1_bn", bn("conv1_bn"), ["conv1_conv"])
    g.add("conv1_relu", Relu(), ["conv1_bn"])
    g.add("pool1_pad", nn.ZeroPad2d(1), ["conv1_relu"])
    g.add("pool1_pool", nn.MaxPool2d(3, 2), ["pool1_pad"])
    prev = "pool1_pool"
    for (s, _f, _), nblocks in zip(RESNET_STAGES, RESNET_BLOCKS[model]):
        for b in range(1, nblocks + 1):
            p = "conv%d_block%d" % (s, b)
            stride = 2 if (b == 1 and s > 2) else 1
            if b == 1:
                g.add(p + "_0_conv", ConvAct(*W[p + "_0_conv"], stride=stride, padding=0, relu=False), [prev])
                g.add(p + "_0_bn", bn(p + "_0_bn"), [p + "_0_conv"])
                shortcut = p + "_0_bn"
            else:
                shortcut = prev
            g.add(p + "_1_conv", ConvAct(*W[p + "_1_conv"], stride=stride, padding=0, relu=False), [prev])
            g.add(p + "_1_bn", bn(p + "_1_bn"), [p + "_1_conv"])
            g.add(p + "_1_relu", Relu(), [p + "_1_bn"])
            g.add(p + "_2_conv", ConvAct(*W[p + "_2_conv"], stride=1, padding=1, relu=False), [p + "_1_relu"])
            g.add(p + "_2_bn", bn(p + "_2_bn"), [p + "_2_conv"])
            g.add(p + "_2_relu", Relu(), [p + "_2_bn"])
            g.add(p + "_3_conv", ConvAct(*W[p + "_3_conv"], stride=1, padding=0, relu=False), [p + "_2_relu"])
            g.add(p + "_3_bn", bn(p + "_3_bn"), [p + "_3_conv"])
            g.add(p + "_add", Add(), [shortcut, p + "_3_bn"])
            g.add(p + "_out", Relu(), [p + "_add"])
            prev = p + "_out"
    if include_top:
        g.add("avg_pool", GlobalPool("avg"), [prev])
        dense = W.get("predictions") or W.get("probs")
        if dense is None:
            raise KeyError("top file without a predictions layer")
        g.add("predictions", Dense(dense[0], dense[1], "softmax"), ["avg_pool"])
    elif pooling in ("avg", "max"):
        g.add(pooling + "_pool", GlobalPool(pooling), [prev])
    return g


def build_vgg16(weights, include_top=False, pooling=None, model="vgg16"):
    W = weights
    g = KerasGraph(model)
    g.add("input_1", None, [])
    prev = "input_1"
    for blk, _c, n in VGG19_BLOCKS if model == "vgg19" else VGG_BLOCKS:
        for i in range(1, n + 1):
            name = "block%d_conv%d" % (blk, i)
            g.add(name, ConvAct(*W[name], stride=1, padding=1, relu=True), [prev])
            prev = name
        g.add("block%d_pool" % blk, nn.MaxPool2d(2, 2), [prev])
        prev = "block%d_pool" % blk
    if include_top:
        g.add("flatten", FlattenNHWC(), [prev])
        g.add("fc1", Dense(*W["fc1"], "relu"), ["flatten"])
        g.add("fc2", Dense(*W["fc2"], "relu"), ["fc1"])
        g.add("predictions", Dense(*W["predictions"], "softmax"), ["fc2"])
    elif pooling == "avg":
        g.add("global_average_pooling2d", GlobalPool("avg"), [prev])
    elif pooling == "max":
        g.add("global_max_pooling2d", GlobalPool("max"), [prev])
    return g


# Old Keras ResNet50 files (fchollet/deep-learning-models v0.2, loaded by
# keras_applications/resnet50.py): identity_block / conv_block name a conv
# 'res' + stage + block letter + '_branch' + 2a|2b|2c|1 and its BatchNorm 'bn' + the
# same; the stem conv1 / bn_conv1, the classifier fc1000. BatchNormalization
# there has Keras' default epsilon, 1e-3.
OLD_BN_EPS = 1e-3


def old_resnet50_names():
    """{old layer name: current layer name} of ResNet50."""
    m = {"conv1": "conv1_conv", "bn_conv1": "conv1_bn", "fc1000": "predictions"}
    for s, _f, nblocks in RESNET_STAGES:
        for b in range(1, nblocks + 1):
            for branch, k in (("2a", 1), ("2b", 2), ("2c", 3), ("1", 0)):
                old = "%d%s_branch%s" % (s, "abcdefghijklmnopqrstuvwxyz"[b - 1], branch)
                m["res" + old] = "conv%d_block%d_%d_conv" % (s, b, k)
                m["bn" + old] = "conv%d_block%d_%d_bn" % (s, b, k)
    return m


_GRAPH_CACHE = {}


def load_graph(model, weights_path, top="auto", pooling=None, dtype=torch.float32):
    key = (model, os.path.abspath(weights_path), os.path.getmtime(weights_path), top, pooling, dtype)
    if key in _GRAPH_CACHE:
        return _GRAPH_CACHE[key]
    names, weights = read_keras_h5(weights_path)
    eps = BN_EPS
    if model == "resnet50" and "bn_conv1" in names:
        old = old_resnet50_names()
        names = [old.get(n, n) for n in names]
        weights = {old.get(n, n): w for n, w in weights.items()}
        eps = OLD_BN_EPS
    inc = _detect_top(model, names, top)
    if model in RESNET_BLOCKS:
        g = build_resnet50(weights, inc, pooling, model, eps)
    elif model in ("vgg16", "vgg19"):
        g = build_vgg16(weights, inc, pooling, model)
    else:
        raise ValueError("unknown model %r" % model)
    g.to(dtype)
    if len(_GRAPH_CACHE) >= 4:    # bound the memory of long runs
        _GRAPH_CACHE.pop(next(iter(_GRAPH_CACHE)))
    _GRAPH_CACHE[key] = g
    return g


def tap(model, weights_path, layers, x_nhwc, top="auto", pooling=None, dtype=torch.float32):
    """Outputs of the named Keras layers for input x (NHWC), as numpy arrays."""
    if isinstance(layers, str):
        layers = [layers]
    g = load_graph(model, weights_path, top, pooling, dtype)
    return g.run(x_nhwc, list(layers), dtype)


# ---------------------------------------------------------------------------
# Resize + concat
# ---------------------------------------------------------------------------

def parse_size(size):
    if size in ("min", "max"):
        return size
    h, w = size.lower().split("x")
    return (int(h), int(w))


def target_size(maps, size):
    size = parse_size(size) if isinstance(size, str) else size
    if size == "min":
        return min(m.shape[1] for m in maps), min(m.shape[2] for m in maps)
    if size == "max":
        return max(m.shape[1] for m in maps), max(m.shape[2] for m in maps)
    return tuple(size)


def resize_nhwc(m, h, w, mode="bilinear"):
    """TF half-pixel resize of an NHWC array (no antialias); identity at equal size."""
    if m.shape[1] == h and m.shape[2] == w:
        return m
    t = torch.from_numpy(np.ascontiguousarray(m)).permute(0, 3, 1, 2)
    if mode == "bilinear":
        r = F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False, antialias=False)
    elif mode == "nearest":
        r = F.interpolate(t, size=(h, w), mode="nearest-exact")
    else:
        raise ValueError("resize mode %r" % mode)
    return r.permute(0, 2, 3, 1).contiguous().numpy()


def fuse_maps(maps, resize="bilinear", size="min"):
    h, w = target_size(maps, size)
    return np.concatenate([resize_nhwc(m, h, w, resize) for m in maps], axis=3)


def fuse(resnet_weights, vgg_weights, x_nhwc, resnet_layer=DEFAULT_RESNET_LAYER,
         vgg_layer=DEFAULT_VGG_LAYER, resize="bilinear", size="min"):
    a = tap("resnet50", resnet_weights, [resnet_layer], x_nhwc)[0]
    b = tap("vgg16", vgg_weights, [vgg_layer], x_nhwc)[0]
    return fuse_maps([a, b], resize, size)


# ---------------------------------------------------------------------------
# Self-check: shapes, parameter totals, naive numpy layers, float64 agreement
# ---------------------------------------------------------------------------

def _naive_conv(x, k, b, stride, pad):
    """x NHWC float64, k (kh,kw,cin,cout): Keras cross-correlation, zero padding."""
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    n, H, W, _ = x.shape
    kh, kw, _, co = k.shape
    oh, ow = (H - kh) // stride + 1, (W - kw) // stride + 1
    y = np.zeros((n, oh, ow, co))
    for i in range(kh):
        for j in range(kw):
            patch = x[:, i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride, :]
            y += np.einsum("nhwc,cd->nhwd", patch, k[i, j].astype(np.float64))
    return y + b


def _naive_maxpool(x, k, s):
    n, H, W, c = x.shape
    oh, ow = (H - k) // s + 1, (W - k) // s + 1
    y = np.full((n, oh, ow, c), -np.inf)
    for i in range(k):
        for j in range(k):
            y = np.maximum(y, x[:, i:i + s * (oh - 1) + 1:s, j:j + s * (ow - 1) + 1:s, :])
    return y


def _naive_bn(x, g, b, m, v):
    return g * (x - m) / np.sqrt(v.astype(np.float64) + BN_EPS) + b


def _expected_resnet_shape(name, h, w):
    """Independent rule-based expectation (spec 2.5/2.6) for every ResNet layer."""
    c2 = lambda v, k: -(-v // k)   # noqa: E731  ceil division
    if name == "input_1":
        return (h, w, 3)
    if name == "conv1_pad":
        return (h + 6, w + 6, 3)
    if name.startswith("conv1_"):
        return (c2(h, 2), c2(w, 2), 64)
    if name == "pool1_pad":
        return (c2(h, 2) + 2, c2(w, 2) + 2, 64)
    if name == "pool1_pool":
        return (c2(h, 4), c2(w, 4), 64)
    s = int(name[4])
    f = {2: 64, 3: 128, 4: 256, 5: 512}[s]
    div = {2: 4, 3: 8, 4: 16, 5: 32}[s]
    suffix = name.split("_", 2)[2]
    c = f if suffix[:2] in ("1_", "2_") else 4 * f
    return (c2(h, div), c2(w, div), c)


def _expected_vgg_shape(name, h, w):
    if name == "input_1":
        return (h, w, 3)
    blk = int(name[5])
    c = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}[blk]
    hh, ww = h, w
    for _ in range(blk - 1 + (1 if name.endswith("pool") else 0)):   # each pool floors
        hh, ww = hh // 2, ww // 2
    return (hh, ww, c)


def _read_tsv(path):
    rows = []
    with open(path) as fh:
        head = fh.readline().rstrip("\n").split("\t")
        for line in fh:
            if line.strip():
                rows.append(dict(zip(head, line.rstrip("\n").split("\t"))))
    return rows


def selfcheck(spec_dir=None, workdir=None, log=print):
    """Asserts the reference against independent facts. Returns the number of checks."""
    import tempfile
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    sys.dont_write_bytecode = True
    import keras_weights as kw
    nchecks = 0

    def check(cond, msg):
        nonlocal nchecks
        nchecks += 1
        if not cond:
            raise AssertionError("selfcheck: " + msg)

    # Parameter totals from the layer lists (spec: 23,587,712 / 25,636,712 / 14,714,688 / 138,357,544).
    for model, top, total in (("resnet50", False, 23587712), ("resnet50", True, 25636712),
                              ("vgg16", False, 14714688), ("vgg16", True, 138357544)):
        got = kw.param_count(kw.model_layers(model, top))
        check(got == total, "%s top=%s params %d != %d" % (model, top, got, total))
    check(len(kw.resnet50_layers()) == 175 and len(kw.resnet50_layers(True)) == 177, "resnet layer counts")
    check(len(kw.vgg16_layers()) == 19, "vgg layer count")
    log("selfcheck: parameter totals and layer counts OK")

    tmp = workdir or tempfile.mkdtemp(prefix="fn_selfcheck_")
    os.makedirs(tmp, exist_ok=True)
    rpath = os.path.join(tmp, "selfcheck_resnet50_top.h5")
    vpath = os.path.join(tmp, "selfcheck_vgg16.h5")
    kw.write_file(rpath, "resnet50", top=True, seed=11, strings="vlen", chunk_names=True)
    kw.write_file(vpath, "vgg16", top=False, seed=12)

    # The files read back: names in order, weight totals.
    for path, model, top, total in ((rpath, "resnet50", True, 25636712), (vpath, "vgg16", False, 14714688)):
        names, weights = read_keras_h5(path)
        check(names == [n for n, _, _ in kw.model_layers(model, top)], "%s layer_names order" % model)
        check(sum(a.size for ws in weights.values() for a in ws) == total, "%s weights read back" % model)

    # Spec TSVs: order, names, weight names and shapes; graph shapes at 224 for every layer.
    rng = np.random.default_rng(5)
    x224 = rng.uniform(-124, 152, (1, 224, 224, 3)).astype(np.float32)
    rg = load_graph("resnet50", rpath, top=False)
    rnames = rg.layer_names()
    rout = dict(zip(rnames, rg.run(x224, rnames)))
    vg = load_graph("vgg16", vpath)
    vnames = vg.layer_names()
    vout = dict(zip(vnames, vg.run(x224, vnames)))
    for name, y in rout.items():
        check(y.shape[1:] == _expected_resnet_shape(name, 224, 224), "resnet %s shape %s" % (name, y.shape))
    for name, y in vout.items():
        check(y.shape[1:] == _expected_vgg_shape(name, 224, 224), "vgg %s shape %s" % (name, y.shape))
    if spec_dir:
        for model, outs, tsv in (("resnet50", rout, "keras-layers-resnet50.tsv"),
                                 ("vgg16", vout, "keras-layers-vgg16.tsv")):
            rows = _read_tsv(os.path.join(spec_dir, tsv))
            layers = kw.model_layers(model, False)
            check([r["name"] for r in rows] == [n for n, _, _ in layers], "%s TSV order" % model)
            check(set(outs) == {r["name"] for r in rows}, "%s graph covers every TSV layer" % model)
            for r, (name, _cls, ws) in zip(rows, layers):
                shp = (int(r["out_h_224"]), int(r["out_w_224"]), int(r["out_c"]))
                check(outs[name].shape[1:] == shp, "%s %s shape %s != TSV %s" % (model, name, outs[name].shape, shp))
                check(int(r["params"]) == sum(int(np.prod(s)) for _, s, _ in ws), "%s %s params" % (model, name))
                exp = r["h5_weight_names_expected(in order)"]
                exp = [] if exp == "(none)" else [e.strip() for e in exp.split(";")]
                check(exp == [kw.weight_name(model, name, sfx) for sfx, _, _ in ws],
                      "%s %s weight names" % (model, name))
        log("selfcheck: TSV order, names, weight names, params and 224 shapes OK")
    else:
        log("selfcheck: 224 shapes OK against the spec rules (no --spec-dir: TSVs not compared)")

    # Activation scale with these weights: order one at the deep taps.
    for name in ("conv4_block6_out", "conv5_block3_out"):
        sd = float(rout[name].std())
        check(0.1 <= sd <= 10, "resnet %s std %.3g out of [0.1, 10]" % (name, sd))
        log("selfcheck: std %s = %.3f" % (name, sd))
    sd = float(vout["block5_conv3"].std())
    check(0.1 <= sd <= 10, "vgg block5_conv3 std %.3g" % sd)
    log("selfcheck: std block5_conv3 = %.3f" % sd)

    # Naive numpy layers against the reference (float64 numpy, small odd input).
    _, W = read_keras_h5(rpath)
    _, VW = read_keras_h5(vpath)
    xs = rng.uniform(-124, 152, (2, 37, 45, 3)).astype(np.float32)
    names = ["conv1_pad", "conv1_conv", "conv1_bn", "conv1_relu", "pool1_pad", "pool1_pool",
             "conv2_block3_out", "conv3_block1_1_conv", "conv3_block1_0_conv", "conv3_block1_0_bn",
             "conv3_block1_2_conv", "conv3_block1_3_bn", "conv3_block1_add",
             "conv3_block1_out"]
    o = dict(zip(names, rg.run(xs, names)))
    x64 = xs.astype(np.float64)

    def close(name, ref, got):
        err = float(np.abs(ref - got).max())
        scale = float(np.abs(ref).max())
        check(ref.shape == got.shape, "naive %s shape %s vs %s" % (name, ref.shape, got.shape))
        check(err <= 1e-5 * scale + 1e-6, "naive %s err %.3g (max %.3g)" % (name, err, scale))
        log("selfcheck: naive %-22s shape %-16s max err %.2e  max|ref| %.3g" % (name, ref.shape[1:], err, scale))

    close("conv1_pad", np.pad(x64, ((0, 0), (3, 3), (3, 3), (0, 0))), o["conv1_pad"])
    c1 = _naive_conv(x64, *W["conv1_conv"], stride=2, pad=3)
    close("conv1_conv", c1, o["conv1_conv"])
    bn1 = _naive_bn(o["conv1_conv"].astype(np.float64), *W["conv1_bn"])
    close("conv1_bn", bn1, o["conv1_bn"])
    close("conv1_relu", np.maximum(o["conv1_bn"].astype(np.float64), 0), o["conv1_relu"])
    close("pool1_pad", np.pad(o["conv1_relu"], ((0, 0), (1, 1), (1, 1), (0, 0))), o["pool1_pad"])
    close("pool1_pool", _naive_maxpool(o["pool1_pad"].astype(np.float64), 3, 2), o["pool1_pool"])
    xin = o["conv2_block3_out"].astype(np.float64)
    close("conv3_block1_1_conv", _naive_conv(xin, *W["conv3_block1_1_conv"], stride=2, pad=0),
          o["conv3_block1_1_conv"])
    close("conv3_block1_0_conv", _naive_conv(xin, *W["conv3_block1_0_conv"], stride=2, pad=0),
          o["conv3_block1_0_conv"])
    relu1 = _relu_bn(o["conv3_block1_1_conv"], W["conv3_block1_1_bn"])
    close("conv3_block1_2_conv", _naive_conv(relu1, *W["conv3_block1_2_conv"], stride=1, pad=1),
          o["conv3_block1_2_conv"])
    add = _naive_bn(o["conv3_block1_0_conv"].astype(np.float64), *W["conv3_block1_0_bn"]) + o["conv3_block1_3_bn"]
    close("conv3_block1_add", add, o["conv3_block1_add"])
    close("conv3_block1_out", np.maximum(o["conv3_block1_add"], 0), o["conv3_block1_out"])
    vo = dict(zip(["block1_conv1", "block1_conv2", "block1_pool"], vg.run(xs, ["block1_conv1", "block1_conv2", "block1_pool"])))
    close("block1_conv1", np.maximum(_naive_conv(x64, *VW["block1_conv1"], stride=1, pad=1), 0), vo["block1_conv1"])
    close("block1_pool", _naive_maxpool(vo["block1_conv2"].astype(np.float64), 2, 2), vo["block1_pool"])

    # Top (ResNet): global mean + dense softmax, naive.
    t = tap("resnet50", rpath, ["conv5_block3_out", "avg_pool", "predictions"], xs)
    gap = t[0].astype(np.float64).mean(axis=(1, 2))
    close("avg_pool", gap, t[1])
    logits = gap @ W["predictions"][0] + W["predictions"][1]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    close("predictions", e / e.sum(axis=1, keepdims=True), t[2])

    # float32 reference against float64 at the deep taps: the reference's own error.
    for model, path, layer in (("resnet50", rpath, "conv5_block3_out"), ("vgg16", vpath, "block5_conv3")):
        a = tap(model, path, [layer], x224)[0]
        b = tap(model, path, [layer], x224, dtype=torch.float64)[0]
        r = float(np.abs(a - b).max() / np.abs(b).max())
        check(r < 1e-5, "%s %s float32 vs float64 ratio %.3g" % (model, layer, r))
        log("selfcheck: float32 vs float64 %-16s ratio %.2e" % (layer, r))

    # Resize: explicit TF formulas (spec 7.3 / 7.4) in float32 numpy.
    m = rng.standard_normal((2, 13, 15, 3)).astype(np.float32)
    for (oh, ow) in ((12, 14), (20, 9), (13, 15), (5, 31)):
        close("bilinear %dx%d" % (oh, ow), _tf_bilinear(m, oh, ow), resize_nhwc(m, oh, ow, "bilinear"))
        ref = _tf_nearest(m, oh, ow)
        got = resize_nhwc(m, oh, ow, "nearest")
        check(np.array_equal(ref, got), "nearest %dx%d differs from the TF rule" % (oh, ow))
    log("selfcheck: resize bilinear/nearest match the TF formulas")
    log("selfcheck: %d checks passed" % nchecks)
    if workdir is None:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    return nchecks


def _relu_bn(x, bn):
    return np.maximum(_naive_bn(x.astype(np.float64), *bn), 0)


def _tf_axis(inn, out):
    scale = np.float32(inn) / np.float32(out)
    o = np.arange(out, dtype=np.float32)
    x = (o + np.float32(0.5)) * scale - np.float32(0.5)
    lo = np.maximum(np.floor(x), 0).astype(int)
    hi = np.minimum(np.ceil(x), inn - 1).astype(int)
    lerp = (x - np.floor(x)).astype(np.float32)
    return lo, hi, lerp


def _tf_bilinear(m, oh, ow):
    ylo, yhi, yl = _tf_axis(m.shape[1], oh)
    xlo, xhi, xl = _tf_axis(m.shape[2], ow)
    xl = xl[None, None, :, None]
    tl, tr = m[:, ylo][:, :, xlo], m[:, ylo][:, :, xhi]
    bl, br = m[:, yhi][:, :, xlo], m[:, yhi][:, :, xhi]
    top = tl + (tr - tl) * xl
    bot = bl + (br - bl) * xl
    return top + (bot - top) * yl[None, :, None, None]


def _tf_nearest(m, oh, ow):
    def idx(inn, out):
        scale = np.float32(inn) / np.float32(out)
        o = np.arange(out, dtype=np.float32)
        return np.maximum(np.minimum(np.floor((o + np.float32(0.5)) * scale).astype(int), inn - 1), 0)
    return m[:, idx(m.shape[1], oh)][:, :, idx(m.shape[2], ow)]


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------

def _load_input(path):
    x = np.load(path)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[3] != 3:
        raise SystemExit("input %s: expected (N,H,W,3), got %s" % (path, x.shape))
    return x.astype(np.float32)


def main(argv=None):
    ap = argparse.ArgumentParser(description="PyTorch reference for Keras ResNet50/VGG16 taps")
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("tap")
    t.add_argument("--model", required=True, choices=["resnet50", "vgg16", "resnet101", "resnet152", "vgg19"])
    t.add_argument("--weights", required=True)
    t.add_argument("--layer", action="append", required=True)
    t.add_argument("--input", required=True)
    t.add_argument("--output", action="append", required=True)
    t.add_argument("--pooling", choices=["none", "avg", "max"], default="none")
    t.add_argument("--top", choices=["auto", "yes", "no"], default="auto")
    t.add_argument("--float64", action="store_true", help="compute in float64 (output float64)")
    f = sub.add_parser("fuse")
    f.add_argument("--resnet-weights", required=True)
    f.add_argument("--vgg-weights", required=True)
    f.add_argument("--resnet-layer", default=DEFAULT_RESNET_LAYER)
    f.add_argument("--vgg-layer", default=DEFAULT_VGG_LAYER)
    f.add_argument("--input", required=True)
    f.add_argument("--resize", choices=["bilinear", "nearest"], default="bilinear")
    f.add_argument("--size", default="min")
    f.add_argument("--output", required=True)
    s = sub.add_parser("selfcheck")
    s.add_argument("--spec-dir", help="folder with keras-layers-resnet50.tsv / keras-layers-vgg16.tsv")
    s.add_argument("--workdir", help="keep the generated files here")
    a = ap.parse_args(argv)

    if a.cmd == "tap":
        if len(a.output) != len(a.layer):
            ap.error("give one --output per --layer")
        top = {"auto": "auto", "yes": True, "no": False}[a.top]
        pooling = None if a.pooling == "none" else a.pooling
        outs = tap(a.model, a.weights, a.layer, _load_input(a.input), top, pooling,
                   torch.float64 if a.float64 else torch.float32)
        for p, y in zip(a.output, outs):
            np.save(p, y)
    elif a.cmd == "fuse":
        try:
            size = parse_size(a.size)
        except ValueError:
            ap.error("--size must be min, max or HxW")
        y = fuse(a.resnet_weights, a.vgg_weights, _load_input(a.input), a.resnet_layer,
                 a.vgg_layer, a.resize, size)
        np.save(a.output, y)
    else:
        selfcheck(a.spec_dir, a.workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
