#!/usr/bin/env python3
"""Seeded random weights for Keras ResNet50 / VGG16 in the legacy Keras HDF5 layout.

The files follow the layout of the official application weight files:

* root attributes `layer_names` (every layer of model.layers, in model.layers
  order, weightless layers included), `backend`, `keras_version`;
* one group per layer (created in sorted-name order, as the Keras writer does),
  with a `weight_names` attribute listing its datasets in weight order
  (trainable first, then non-trainable); an empty list is a zero-length
  float64 array, which is what numpy makes of [];
* ResNet50: nested Keras-2 names (`conv1_conv/kernel:0` -> /conv1_conv/conv1_conv/kernel:0),
  VGG16: flat Keras-1 names (`block1_conv1_W_1:0`, `block1_conv1_b_1:0`);
* float32 datasets in Keras layouts: conv kernel (kh, kw, in, out), Dense (in, out).

String attributes are fixed-length NUL-padded ('S' numpy arrays, as h5py 2.x
wrote them) by default, or variable-length (`--strings vlen`, as h5py 3.x
writes a list of bytes). `--chunk-names` forces the Keras chunked form of
`layer_names` (`layer_names0`, `layer_names1`, split with numpy.array_split).

`--old-naming` writes a ResNet50 in the naming of the 2016 deep-learning-models
release (conv1, bn_conv1, res2a_branch2a, bn2a_branch2a, ..., fc1000, Keras-1 flat
weight names); libfusenet reads it into the current graph with BatchNorm epsilon 1e-3
(models/README.md), and so does torch_ref.py.

Values are random but scaled so that activations stay of order one through
the whole network for a caffe-preprocessed input (values in about [-124, 152]):
He-scaled kernels, BN with gamma ~ U(0.5, 1.5), small beta/mean, moving
variance ~ U(0.5, 1.5), small non-zero biases, and a smaller gamma on the last
BN of each residual branch.

Usage:
  keras_weights.py --model resnet50|vgg16|resnet101|resnet152|vgg19 [--top] --seed N --output F.h5
                   [--strings fixed|vlen] [--chunk-names] [--old-naming]
                   [--top-level-group] [--layout LAYOUT]

--layout writes the same values in another layout Keras writes (see
write_layout): Keras 3 .weights.h5 with or without name attributes, .keras
archives, and the README's fused model (each backbone a nested sub-model) in
the legacy and Keras 3 generations.
"""

import argparse
import sys

import numpy as np

# Input scale of a caffe-preprocessed image (std of uniform [-124, 152] is ~80).
INPUT_STD = 75.0
KERNEL_GAIN = 2.0
GAMMA_RESIDUAL = (0.2, 0.5)
GAMMA_SHORTCUT = (0.3, 0.8)

RESNET_STAGES = ((2, 64, 3), (3, 128, 4), (4, 256, 6), (5, 512, 3))
VGG_BLOCKS = ((1, 64, 2), (2, 128, 2), (3, 256, 3), (4, 512, 3), (5, 512, 3))
# keras/applications/resnet.py stack_fn: blocks per stack; vgg19.py: 4 convs in blocks 3-5.
RESNET_BLOCKS = {"resnet50": (3, 4, 6, 3), "resnet101": (3, 4, 23, 3), "resnet152": (3, 8, 36, 3)}
VGG19_BLOCKS = ((1, 64, 2), (2, 128, 2), (3, 256, 4), (4, 512, 4), (5, 512, 4))


# ---------------------------------------------------------------------------
# Layer lists: (name, class_name, weights) with weights a list of
# (weight_suffix, shape, kind) in Keras weight order.
# kind: 'kernel', 'bias', 'gamma', 'beta', 'mean', 'var', 'dense', 'dbias'
# ---------------------------------------------------------------------------

def _conv(kh, kw, cin, cout):
    return [("kernel", (kh, kw, cin, cout), "kernel"), ("bias", (cout,), "bias")]


def _bn(c):
    return [("gamma", (c,), "gamma"), ("beta", (c,), "beta"),
            ("moving_mean", (c,), "mean"), ("moving_variance", (c,), "var")]


def resnet50_layers(top=False, blocks=RESNET_BLOCKS["resnet50"]):
    """All layers of Keras ResNet50 (or ResNet101/152 by `blocks`) in model.layers order."""
    L = [("input_1", "InputLayer", []),
         ("conv1_pad", "ZeroPadding2D", []),
         ("conv1_conv", "Conv2D", _conv(7, 7, 3, 64)),
         ("conv1_bn", "BatchNormalization", _bn(64)),
         ("conv1_relu", "Activation", []),
         ("pool1_pad", "ZeroPadding2D", []),
         ("pool1_pool", "MaxPooling2D", [])]
    cin = 64
    for (s, f, _), nblocks in zip(RESNET_STAGES, blocks):
        for b in range(1, nblocks + 1):
            p = "conv%d_block%d" % (s, b)
            first = [(p + "_1_conv", "Conv2D", _conv(1, 1, cin, f)),
                     (p + "_1_bn", "BatchNormalization", _bn(f)),
                     (p + "_1_relu", "Activation", []),
                     (p + "_2_conv", "Conv2D", _conv(3, 3, f, f)),
                     (p + "_2_bn", "BatchNormalization", _bn(f)),
                     (p + "_2_relu", "Activation", [])]
            L += first
            if b == 1:
                # Keras' depth-sorted order: the shortcut conv comes after _2_relu.
                L += [(p + "_0_conv", "Conv2D", _conv(1, 1, cin, 4 * f)),
                      (p + "_3_conv", "Conv2D", _conv(1, 1, f, 4 * f)),
                      (p + "_0_bn", "BatchNormalization", _bn(4 * f)),
                      (p + "_3_bn", "BatchNormalization", _bn(4 * f))]
            else:
                L += [(p + "_3_conv", "Conv2D", _conv(1, 1, f, 4 * f)),
                      (p + "_3_bn", "BatchNormalization", _bn(4 * f))]
            L += [(p + "_add", "Add", []), (p + "_out", "Activation", [])]
            cin = 4 * f
    if top:
        L += [("avg_pool", "GlobalAveragePooling2D", []),
              ("predictions", "Dense", [("kernel", (2048, 1000), "dense"),
                                        ("bias", (1000,), "dbias")])]
    return L


def vgg16_layers(top=False, blocks=VGG_BLOCKS):
    L = [("input_1", "InputLayer", [])]
    cin = 3
    for blk, c, n in blocks:
        for i in range(1, n + 1):
            L.append(("block%d_conv%d" % (blk, i), "Conv2D",
                      [("W", (3, 3, cin, c), "kernel"), ("b", (c,), "bias")]))
            cin = c
        L.append(("block%d_pool" % blk, "MaxPooling2D", []))
    if top:
        L += [("flatten", "Flatten", []),
              ("fc1", "Dense", [("W", (25088, 4096), "dense"), ("b", (4096,), "dbias")]),
              ("fc2", "Dense", [("W", (4096, 4096), "dense"), ("b", (4096,), "dbias")]),
              ("predictions", "Dense", [("W", (4096, 1000), "dense"), ("b", (1000,), "dbias")])]
    return L


def resnet50_old_layers(top=False):
    """ResNet50 of deep-learning-models v0.2 (Keras 1 era, 2016): old names."""
    counters = {"activation": 0, "merge": 0}

    def auto(kind):
        counters[kind] += 1
        return "%s_%d" % (kind, counters[kind])

    def conv(name, kh, kw, cin, cout):
        return (name, "Convolution2D", [("W", (kh, kw, cin, cout), "kernel"), ("b", (cout,), "bias")])

    def bn(name, c):
        return (name, "BatchNormalization", [("gamma", (c,), "gamma"), ("beta", (c,), "beta"),
                                             ("running_mean", (c,), "mean"),
                                             ("running_std", (c,), "var")])

    L = [("input_1", "InputLayer", []),
         ("zeropadding2d_1", "ZeroPadding2D", []),
         conv("conv1", 7, 7, 3, 64), bn("bn_conv1", 64),
         (auto("activation"), "Activation", []),
         ("maxpooling2d_1", "MaxPooling2D", [])]
    cin = 64
    for s, f, nblocks in RESNET_STAGES:
        for b in range(nblocks):
            blk = "%d%s" % (s, "abcdef"[b])
            r, n = "res" + blk + "_branch", "bn" + blk + "_branch"
            L += [conv(r + "2a", 1, 1, cin, f), bn(n + "2a", f), (auto("activation"), "Activation", []),
                  conv(r + "2b", 3, 3, f, f), bn(n + "2b", f), (auto("activation"), "Activation", []),
                  conv(r + "2c", 1, 1, f, 4 * f)]
            if b == 0:
                L += [conv(r + "1", 1, 1, cin, 4 * f), bn(n + "2c", 4 * f), bn(n + "1", 4 * f)]
            else:
                L += [bn(n + "2c", 4 * f)]
            L += [(auto("merge"), "Merge", []), (auto("activation"), "Activation", [])]
            cin = 4 * f
    L.append(("avg_pool", "AveragePooling2D", []))
    if top:
        L += [("flatten_1", "Flatten", []),
              ("fc1000", "Dense", [("W", (2048, 1000), "dense"), ("b", (1000,), "dbias")])]
    return L


def model_layers(model, top=False, old_naming=False):
    if model == "resnet50":
        return resnet50_old_layers(top) if old_naming else resnet50_layers(top)
    if old_naming:
        raise ValueError("--old-naming applies to resnet50 only")
    if model in RESNET_BLOCKS:
        return resnet50_layers(top, RESNET_BLOCKS[model])
    if model == "vgg16":
        return vgg16_layers(top)
    if model == "vgg19":
        return vgg16_layers(top, VGG19_BLOCKS)
    raise ValueError("unknown model %r" % model)


def weight_name(model, layer, suffix, old_naming=False):
    """The weight_names entry (dataset path relative to the layer group)."""
    if model in RESNET_BLOCKS and not old_naming:
        return "%s/%s:0" % (layer, suffix)          # Keras 2: nested
    if model in ("vgg16", "vgg19"):
        return "%s_%s_1:0" % (layer, suffix)        # Keras 1 (fchollet release)
    return "%s_%s:0" % (layer, suffix)              # Keras 1, deep-learning-models v0.2


def param_count(layers):
    return sum(int(np.prod(shape)) for _, _, ws in layers for _, shape, _ in ws)


# ---------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------

def make_values(layers, seed):
    """Returns {layer: [array, ...]} with float32 values, deterministic in seed."""
    rng = np.random.default_rng(seed)
    out = {}
    first_conv = True
    for name, cls, ws in layers:
        if not ws:
            continue
        # Last BN of a residual branch: smaller gamma keeps the sum bounded.
        residual_last = cls == "BatchNormalization" and (
            name.endswith("_3_bn") or name.endswith("_branch2c"))
        shortcut_bn = cls == "BatchNormalization" and (
            name.endswith("_0_bn") or name.endswith("_branch1"))
        vals = []
        for _suffix, shape, kind in ws:
            n = int(np.prod(shape))
            if kind == "kernel":
                fan_in = shape[0] * shape[1] * shape[2]
                if first_conv:   # raw preprocessed image: scale down to O(1)
                    std = 1.0 / (INPUT_STD * np.sqrt(fan_in))
                else:            # He: keeps the second moment of post-ReLU inputs
                    std = np.sqrt(KERNEL_GAIN / fan_in)
                v = rng.standard_normal(n, dtype=np.float32) * np.float32(std)
            elif kind == "dense":
                v = rng.standard_normal(n, dtype=np.float32) * np.float32(np.sqrt(2.0 / shape[0]))
            elif kind in ("bias", "dbias"):
                v = rng.uniform(-0.05, 0.05, n).astype(np.float32)
            elif kind == "gamma":
                lo, hi = GAMMA_RESIDUAL if residual_last else GAMMA_SHORTCUT if shortcut_bn else (0.5, 1.5)
                v = rng.uniform(lo, hi, n).astype(np.float32)
            elif kind == "beta":
                v = rng.uniform(-0.1, 0.1, n).astype(np.float32)
            elif kind == "mean":
                v = rng.uniform(-0.1, 0.1, n).astype(np.float32)
            elif kind == "var":
                v = rng.uniform(0.5, 1.5, n).astype(np.float32)
            else:
                raise AssertionError(kind)
            vals.append(v.reshape(shape))
        if cls in ("Conv2D", "Convolution2D"):
            first_conv = False
        out[name] = vals
    return out


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------

def _string_attr(group, name, names, strings, chunks=1):
    """Writes a list of str as Keras does (save_attributes_to_hdf5_group)."""
    enc = [s.encode("utf8") for s in names]
    if not enc:
        group.attrs[name] = np.asarray([])        # zero-length float64
        return
    if chunks > 1:
        parts = np.array_split(np.asarray(enc), chunks)
        for i, part in enumerate(parts):
            _string_attr_one(group, "%s%d" % (name, i), list(part), strings)
    else:
        _string_attr_one(group, name, enc, strings)


def _string_attr_one(group, name, enc, strings):
    if strings == "fixed":
        # numpy 'S' array -> HDF5 fixed-length, NUL-padded (h5py 2.x style)
        group.attrs[name] = np.array(enc, dtype="S%d" % max(1, max(len(e) for e in enc)))
    else:
        # h5py 3.x turns a list of bytes into variable-length strings
        group.attrs[name] = [bytes(e) for e in enc]


def _scalar_attr(group, name, value, strings):
    if strings == "fixed":
        group.attrs[name] = np.array(value.encode("utf8"), dtype="S%d" % len(value))
    else:
        group.attrs[name] = value.encode("utf8")


def write_file(path, model, top=False, seed=0, strings="fixed", chunk_names=False,
               old_naming=False, top_level_group=False):
    import h5py
    layers = model_layers(model, top, old_naming)
    values = make_values(layers, seed)
    with h5py.File(path, "w") as f:
        _string_attr(f, "layer_names", [n for n, _, _ in layers], strings,
                     chunks=2 if chunk_names else 1)
        if not old_naming:
            _scalar_attr(f, "backend", "tensorflow", strings)
            _scalar_attr(f, "keras_version", "2.2.4" if model.startswith("resnet") else "2.1.2", strings)
        for name, _cls, ws in sorted(layers, key=lambda t: t[0]):
            g = f.create_group(name)
            wnames = [weight_name(model, name, sfx, old_naming) for sfx, _, _ in ws]
            _string_attr(g, "weight_names", wnames, strings)
            for wn, val in zip(wnames, values.get(name, [])):
                d = g.create_dataset(wn, val.shape, dtype=np.float32)
                d[...] = val
        if top_level_group:
            g = f.create_group("top_level_model_weights")
            _string_attr(g, "weight_names", [], strings)
    return layers



# ---------------------------------------------------------------------------
# The other layouts Keras writes, with the same values as write_file for the
# same model and seed (so the reference reads the legacy file, the tool the
# other one).
#
# * legacy nested (tf.keras 2 model.save / save_weights of a model holding
#   sub-models, keras/saving/legacy/hdf5_format.py save_weights_to_hdf5_group):
#   the outer model's layer_names; one group per outer layer; a sub-model's
#   group has weight_names = its trainable_weights then non_trainable_weights
#   ("conv1_conv/kernel:0", ...; frozen: all non-trainable, so in layer order),
#   datasets at those paths. A full save (model.save) puts that under
#   model_weights/ with a root model_config (JSON).
# * Keras 3 .weights.h5 (keras/src/saving/saving_lib.py, save_weights_only ->
#   _save_state -> H5IOStore.make): the model's own vars/ at the root, then
#   layers/<to_snake_case(class)>[_N]/vars/0.. in model.layers order
#   (_save_container_state), Layer.save_own_variables order
#   (_trainable_variables + _non_trainable_variables); Keras >= 3.6 puts the
#   layer's name as attribute `name` on each vars group. A nested model is
#   layers/functional[_N]/ with vars/ and layers/ of its own.
# * .keras (saving_lib.save_model): a zip, entries stored, metadata.json,
#   config.json, model.weights.h5.
# ---------------------------------------------------------------------------

KERAS2_ROLE = {"kernel": "kernel", "bias": "bias", "gamma": "gamma", "beta": "beta", "mean": "moving_mean",
               "var": "moving_variance", "dense": "kernel", "dbias": "bias"}
NON_TRAINABLE = ("mean", "var")
# The fused model of the README's program: each backbone up to its tap as one
# nested model, then Resizing and Concatenate.
FUSED_PARTS = (("resnet50", "resnet50", "conv4_block6_out"), ("vgg16", "vgg16", "block5_conv3"))


def snake_case(name):
    """keras/src/utils/naming.py to_snake_case."""
    import re
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub("([a-z])([A-Z])", r"\1_\2", name)
    return name.lower()


def keras3_class(cls):
    """Keras 3 class names of the layers this file lists (Keras-1 names mapped)."""
    return {"Convolution2D": "Conv2D", "Merge": "Add"}.get(cls, cls)


def sub_layers(model, upto=None):
    """model.layers of `model` cut after layer `upto` (a backbone truncated at its tap)."""
    L = model_layers(model)
    if upto is not None:
        L = L[:[n for n, _, _ in L].index(upto) + 1]
    return L


def _legacy_weights(layers, values, frozen):
    """[(weight name, value)] of a nested model: trainable then non-trainable (or all in order when frozen)."""
    out = []
    for phase in ((None,) if frozen else (False, True)):
        for name, _cls, ws in layers:
            for (_sfx, _shape, kind), val in zip(ws, values.get(name, [])):
                if phase is None or (kind in NON_TRAINABLE) == phase:
                    out.append(("%s/%s:0" % (name, KERAS2_ROLE[kind]), val))
    return out


def write_legacy_nested(path, parts, seeds, frozen=False, full_save=False, strings="vlen"):
    """The fused model in the legacy layout. parts: [(sub-model name, model, upto)], seeds: one per part."""
    import h5py
    import json
    outer = ["input_1"] + [p[0] for p in parts] + ["resizing", "concatenate"]
    with h5py.File(path, "w") as f:
        if full_save:
            cfg = {"class_name": "Functional", "config": {"name": "fused", "layers": [{"name": n} for n in outer]}}
            f.attrs["model_config"] = json.dumps(cfg).encode("utf8")
            f.attrs["keras_version"] = b"2.15.0"
            f.attrs["backend"] = b"tensorflow"
            root = f.create_group("model_weights")
        else:
            root = f
        _string_attr(root, "layer_names", outer, strings)
        _scalar_attr(root, "backend", "tensorflow", strings)
        _scalar_attr(root, "keras_version", "2.15.0", strings)
        subs = {p[0]: (p, seed) for p, seed in zip(parts, seeds)}
        for name in sorted(outer):
            g = root.create_group(name)
            if name not in subs:
                _string_attr(g, "weight_names", [], strings)
                continue
            (_n, model, upto), seed = subs[name]
            layers = sub_layers(model, upto)
            ws = _legacy_weights(layers, make_values(model_layers(model), seed), frozen)
            _string_attr(g, "weight_names", [w for w, _ in ws], strings)
            for w, val in ws:
                g.create_dataset(w, data=val)
        if full_save:
            f.create_group("optimizer_weights")


def _keras3_container(group, layers, values, names, nested=None):
    """layers/ of one Functional: [(name, class, ws)] with nested {name: (layers, values)} sub-models."""
    used = {}
    lg = group.create_group("layers")
    for name, cls, ws in layers:
        key = snake_case("Functional" if nested and name in nested else keras3_class(cls))
        if key in used:
            used[key] += 1
            key = "%s_%d" % (key, used[key])
        else:
            used[key] = 0
        g = lg.create_group(key)
        v = g.create_group("vars")
        if names:
            v.attrs["name"] = name
        if nested and name in nested:
            sl, sv = nested[name]
            _keras3_container(g, sl, sv, names)
            continue
        for i, val in enumerate(values.get(name, [])):
            v.create_dataset(str(i), data=val)


def write_keras3(path_or_io, model=None, seed=0, names=True, parts=None, seeds=None, optimizer=True):
    """A Keras 3 .weights.h5 of `model` (seeded as write_file), or of the fused model of `parts`."""
    import h5py
    with h5py.File(path_or_io, "w") as f:
        v = f.create_group("vars")
        if names:
            v.attrs["name"] = "fused" if parts else model
        if parts:
            layers = [("input_layer", "InputLayer", [])] + [(p[0], "Functional", []) for p in parts] + \
                     [("resizing", "Resizing", []), ("concatenate", "Concatenate", [])]
            nested = {p[0]: (sub_layers(p[1], p[2]), make_values(model_layers(p[1]), s))
                      for p, s in zip(parts, seeds)}
            _keras3_container(f, layers, {}, names, nested)
        else:
            L = model_layers(model)
            _keras3_container(f, L, make_values(L, seed), names)
        if optimizer:   # the optimizer's state (_walk_saveable yields it after layers): ignored by readers of layers
            o = f.create_group("optimizer").create_group("vars")
            o.create_dataset("0", data=np.zeros((), np.int64))


def write_keras_zip(path, h5_bytes, compression=None, extra=()):
    """A .keras archive (saving_lib._save_model_to_fileobj): entries stored, in Keras' order."""
    import json
    import zipfile
    comp = zipfile.ZIP_STORED if compression is None else compression
    with zipfile.ZipFile(path, "w", compression=comp) as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.6.0", "date_saved": "2026-01-01@00:00:00"}))
        zf.writestr("config.json", json.dumps({"class_name": "Functional", "config": {}}))
        zf.writestr("model.weights.h5", h5_bytes)
        for name, data in extra:
            zf.writestr(name, data)


def keras3_bytes(**kw):
    import io
    bio = io.BytesIO()
    write_keras3(bio, **kw)
    return bio.getvalue()


def write_layout(path, layout, model="resnet50", seed=0, fused_seeds=None):
    """One file of `layout`: legacy | legacy-fused | legacy-fused-frozen | legacy-fused-full |
    keras3 | keras3-nonames | keras3-fused | keras3-fused-nonames | keras | keras-fused | keras-fused-nonames."""
    parts, seeds = list(FUSED_PARTS), list(fused_seeds or (seed, seed + 1))
    if layout == "legacy":
        write_file(path, model, seed=seed)
    elif layout.startswith("legacy-fused"):
        write_legacy_nested(path, parts, seeds, frozen=layout.endswith("frozen"), full_save=layout.endswith("full"))
    elif layout in ("keras3", "keras3-nonames"):
        write_keras3(path, model, seed, names=layout == "keras3")
    elif layout in ("keras3-fused", "keras3-fused-nonames"):
        write_keras3(path, names=layout == "keras3-fused", parts=parts, seeds=seeds)
    elif layout == "keras":
        write_keras_zip(path, keras3_bytes(model=model, seed=seed))
    elif layout in ("keras-fused", "keras-fused-nonames"):
        write_keras_zip(path, keras3_bytes(names=layout == "keras-fused", parts=parts, seeds=seeds))
    else:
        raise ValueError("unknown layout %r" % layout)


LAYOUTS = ["legacy", "legacy-fused", "legacy-fused-frozen", "legacy-fused-full", "keras3", "keras3-nonames",
           "keras3-fused", "keras3-fused-nonames", "keras", "keras-fused", "keras-fused-nonames"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, choices=["resnet50", "vgg16", "resnet101", "resnet152", "vgg19"])
    ap.add_argument("--top", action="store_true", help="include_top=True file")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--strings", choices=["fixed", "vlen"], default="fixed")
    ap.add_argument("--chunk-names", action="store_true",
                    help="split layer_names into layer_names0, layer_names1")
    ap.add_argument("--old-naming", action="store_true",
                    help="ResNet50 in the 2016 res2a_branch2a naming")
    ap.add_argument("--layout", choices=LAYOUTS, default="legacy",
                    help="another layout Keras writes, same values (fused: ResNet50 seed, VGG16 seed + 1)")
    ap.add_argument("--top-level-group", action="store_true",
                    help="add an empty top_level_model_weights group (Keras >= 2.7)")
    a = ap.parse_args(argv)
    if a.old_naming and a.model != "resnet50":
        ap.error("--old-naming applies to resnet50 only")
    if a.layout != "legacy":
        write_layout(a.output, a.layout, a.model, a.seed)
        print("%s: %s" % (a.output, a.layout))
        return 0
    layers = write_file(a.output, a.model, a.top, a.seed, a.strings, a.chunk_names,
                        a.old_naming, a.top_level_group)
    print("%s: %d layers, %d parameters" % (a.output, len(layers), param_count(layers)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
