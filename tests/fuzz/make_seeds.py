#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/{npy,image,h5,keras3,zip}.

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
          Further VGG block1_conv1 files reach the rest of the HDF5 reader:
          libver="latest" (superblock 3, object header 2, compact and dense
          links and attributes, creation-order indexes, fixed-array,
          single-chunk and implicit chunk indexes with and without filters,
          continuation blocks), shuffle+fletcher32+gzip under a v1 B-tree,
          a 512-byte user block, compact datasets, continuation messages.
          Object timestamps are off, so the files are the same on every run.
"""
import io
import os
import struct
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


def h5file(path, libver="earliest", userblock=0, attr_compact=None):
    """h5py.File(path, "w", libver=..., userblock_size=...) with object
    timestamps off (object header v2 stores them). attr_compact raises the
    root's compact attribute limit above its default of 8."""
    fcpl = h5py.h5p.create(h5py.h5p.FILE_CREATE)
    fcpl.set_obj_track_times(False)
    if userblock:
        fcpl.set_userblock(userblock)
    if attr_compact:
        fcpl.set_attr_phase_change(attr_compact, attr_compact - 2)
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    if libver == "latest":
        fapl.set_libver_bounds(h5py.h5f.LIBVER_LATEST, h5py.h5f.LIBVER_LATEST)
    fid = h5py.h5f.create(path.encode(), h5py.h5f.ACC_TRUNC, fapl=fapl, fcpl=fcpl)
    return h5py.File(fid)


def new_group(root, name, attr_compact=None, order=False):
    """root.create_group(name) without timestamps; order tracks and indexes
    the creation order of links and attributes (extra B-trees, message fields)."""
    gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
    gcpl.set_obj_track_times(False)
    if attr_compact:
        gcpl.set_attr_phase_change(attr_compact, attr_compact - 2)
    if order:
        flags = h5py.h5p.CRT_ORDER_TRACKED | h5py.h5p.CRT_ORDER_INDEXED
        gcpl.set_link_creation_order(flags)
        gcpl.set_attr_creation_order(flags)
    return h5py.Group(h5py.h5g.create(root.id, name.encode(), gcpl=gcpl))


def add_notes(obj, n, size=100):
    """n string attributes of `size` bytes each, to overflow an object header."""
    for i in range(n):
        obj.attrs[f"note_{i:02d}"] = np.bytes_((f"note {i:02d} of {n}; " * size)[:size].encode())


def keras_attrs(f, names, fixed=True):
    if fixed:
        f.attrs["layer_names"] = np.array([n.encode() for n in names])
    else:
        f.attrs.create("layer_names", names, dtype=h5py.string_dtype())
    f.attrs["backend"] = b"tensorflow"
    f.attrs["keras_version"] = b"2.2.4"


def dataset(g, name, a, compact=False, early=False, **kw):
    """g.create_dataset(name, data=a, **kw); compact: compact layout, early:
    space allocated at creation (libver latest then uses the implicit index)."""
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    if compact:
        dcpl.set_layout(h5py.h5d.COMPACT)
    if early:
        dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    g.create_dataset(name, data=a, dcpl=dcpl, track_times=False, **kw)


def layer(root, name, weights, fixed=True, dtype="<f4", chunked=False, group_kw=None):
    """weights: (name, array) or (name, array, options of dataset())."""
    g = new_group(root, name, **(group_kw or {}))
    wn = [w[0] for w in weights]
    if not wn:
        g.attrs["weight_names"] = np.array([], dtype=np.float64)
    elif fixed:
        g.attrs["weight_names"] = np.array([w.encode() for w in wn])
    else:
        g.attrs.create("weight_names", wn, dtype=h5py.string_dtype())
    for w, a, *opts in weights:
        kw = {"chunks": True, "compression": "gzip"} if chunked else {}
        kw.update(*opts)
        dataset(g, w, a.astype(dtype), **kw)
    return g


def resnet_conv1(path, **kw):
    rng = np.random.default_rng(1)
    k = (rng.standard_normal((7, 7, 3, 64)) * 0.05).astype(np.float32)
    b = np.zeros(64, np.float32)
    bn = [rng.random(64).astype(np.float32) + 0.5, rng.standard_normal(64).astype(np.float32) * 0.1,
          rng.standard_normal(64).astype(np.float32) * 0.1, rng.random(64).astype(np.float32) + 0.5]
    names = ["input_1", "conv1_pad", "conv1_conv", "conv1_bn", "conv1_relu"]
    with h5file(path) as f:
        keras_attrs(f, names, kw.get("fixed", True))
        layer(f, "input_1", [])
        layer(f, "conv1_pad", [])
        layer(f, "conv1_conv", [("conv1_conv/kernel:0", k), ("conv1_conv/bias:0", b)], **kw)
        roles = ["gamma", "beta", "moving_mean", "moving_variance"]
        layer(f, "conv1_bn", [(f"conv1_bn/{r}:0", a) for r, a in zip(roles, bn)], **kw)
        layer(f, "conv1_relu", [])


def vgg_block1(path, wrapper=False, split_names=False, file_kw=None, extra_layers=0, kernel_kw=None,
               bias_kw=None, group_kw=None, notes=0, note_bytes=100, **kw):
    """file_kw: options of h5file(); extra_layers: weightless layers after
    block1_conv1; kernel_kw/bias_kw: options of dataset(); group_kw: options
    of new_group() for block1_conv1; notes, note_bytes: attributes added by
    add_notes() to the root and block1_conv1 once everything else is written."""
    rng = np.random.default_rng(2)
    k = (rng.standard_normal((3, 3, 3, 64)) * 0.1).astype(np.float32)
    b = (rng.standard_normal(64) * 0.01).astype(np.float32)
    names = ["input_1", "block1_conv1"] + [f"extra_{i}" for i in range(extra_layers)]
    with h5file(path, **(file_kw or {})) as f:
        root = new_group(f, "model_weights") if wrapper else f
        if split_names:  # Keras chunks long name lists as layer_names0, layer_names1, ...
            root.attrs["layer_names0"] = np.array([b"input_1"])
            root.attrs["layer_names1"] = np.array([b"block1_conv1"])
        else:
            keras_attrs(root, names, kw.get("fixed", True))
        layer(root, "input_1", [])
        g = layer(root, "block1_conv1", [("block1_conv1_W_1:0", k, kernel_kw or {}),
                                         ("block1_conv1_b_1:0", b, bias_kw or {})], group_kw=group_kw, **kw)
        for name in names[2:]:
            layer(root, name, [])
        add_notes(root, notes, note_bytes)
        add_notes(g, notes, note_bytes)


def h5_seeds():
    resnet_conv1(out("h5", "resnet_conv1.h5"))
    resnet_conv1(out("h5", "resnet_conv1_f16_vlen.h5"), fixed=False, dtype="<f2")
    vgg_block1(out("h5", "vgg_block1.h5"))
    vgg_block1(out("h5", "vgg_block1_wrapped_vlen.h5"), wrapper=True, fixed=False)
    vgg_block1(out("h5", "vgg_block1_split_f8be.h5"), split_names=True, dtype=">f8")
    vgg_block1(out("h5", "vgg_block1_gzip.h5"), chunked=True)
    latest = {"libver": "latest"}
    filters = {"compression": "gzip", "shuffle": True, "fletcher32": True}
    # superblock 3, object header 2, link messages in the header
    vgg_block1(out("h5", "vgg_block1_latest.h5"), file_kw=latest, extra_layers=2)
    # more than 8 links and attributes: fractal heaps and v2 B-trees, in
    # block1_conv1 with creation-order indexes as well
    vgg_block1(out("h5", "vgg_block1_latest_dense.h5"), file_kw=latest, extra_layers=9, notes=9, note_bytes=16,
               group_kw={"order": True})
    # layout 4: fixed-array index (4 chunks, edge chunks partial), single chunk
    vgg_block1(out("h5", "vgg_block1_latest_chunked.h5"), file_kw=latest,
               kernel_kw={"chunks": (2, 3, 3, 40)}, bias_kw={"chunks": (64,)})
    vgg_block1(out("h5", "vgg_block1_latest_chunked_filters.h5"), file_kw=latest,
               kernel_kw={"chunks": (2, 3, 3, 40), **filters}, bias_kw={"chunks": (64,), **filters})
    # layout 4: implicit index (allocated at creation, no filters), compact
    vgg_block1(out("h5", "vgg_block1_latest_implicit_compact.h5"), file_kw=latest,
               kernel_kw={"chunks": (3, 3, 3, 24), "early": True}, bias_kw={"compact": True})
    # v1 B-tree chunk index with filter masks and stored sizes
    vgg_block1(out("h5", "vgg_block1_btree_filters.h5"),
               kernel_kw={"chunks": (2, 3, 3, 40), **filters}, bias_kw={"chunks": (48,), **filters})
    vgg_block1(out("h5", "vgg_block1_userblock.h5"), file_kw={"userblock": 512})
    with open(out("h5", "vgg_block1_userblock.h5"), "r+b") as fh:
        fh.write(b"user block: not HDF5 data\n")
    # object header continuation messages (v1) and blocks (v2, OCHK)
    vgg_block1(out("h5", "vgg_block1_continuation.h5"), notes=16)
    vgg_block1(out("h5", "vgg_block1_latest_continuation.h5"), notes=16,
               file_kw={"libver": "latest", "attr_compact": 64}, group_kw={"attr_compact": 64})
    # layout 3 compact data in the object header
    vgg_block1(out("h5", "vgg_block1_compact.h5"), bias_kw={"compact": True})


def keras3_seeds():
    """Programs of fuzz_keras3.c (see its header): VGG16 block1 and ResNet50 conv1 + conv1_bn in
    Keras 3's layout, with and without name attributes, and the VGG one nested as a sub-model."""
    def entry(key, name, vars_):      # key / name: dictionary indexes; vars_: shape codes
        b = [key, 0] + ([1, name] if name is not None else [0]) + [len(vars_)]
        for shape in vars_:
            b += [0, shape]
        return b
    def vgg(named):
        return [0, 2] + entry(0, 0 if named else None, []) + entry(2, 7 if named else None, [2, 0])
    def resnet(named):
        n = (lambda i: i if named else None)
        return [0, 4] + entry(0, n(0), []) + entry(1, n(1), []) + entry(2, n(2), [1, 0]) + \
            entry(3, n(3), [0, 0, 0, 0])
    for name, prog in (("vgg_block1_named", vgg(True)), ("vgg_block1_unnamed", vgg(False)),
                       ("resnet_conv1_named", resnet(True)), ("resnet_conv1_unnamed", resnet(False)),
                       ("vgg_nested_named", [0, 1, 10, 32, 1, 10, 0] + vgg(True)),
                       ("vgg_nested_unnamed", [0, 1, 10, 32, 0, 0] + vgg(False))):
        with open(out("keras3", name), "wb") as f:
            f.write(bytes(prog))


def zip_seeds():
    """.keras archives (saving_lib.py: metadata.json, config.json, model.weights.h5), stored and
    deflated, with a small Keras 3 weights file; an empty archive; one without the weights entry."""
    import zipfile
    bio = io.BytesIO()
    with h5py.File(bio, "w") as f:
        v = f.create_group("layers/conv2d/vars")
        v.attrs["name"] = "block1_conv1"
        v.create_dataset("0", data=np.ones((3, 3, 3, 4), np.float32))
        v.create_dataset("1", data=np.zeros(4, np.float32))
    h5 = bio.getvalue()
    for name, comp, entries in (("stored", zipfile.ZIP_STORED, [("model.weights.h5", h5)]),
                                ("deflated", zipfile.ZIP_DEFLATED, [("model.weights.h5", h5)]),
                                ("no_weights", zipfile.ZIP_STORED, []),
                                ("two_entries", zipfile.ZIP_STORED, [("a/../model.weights.h5", b"x"),
                                                                     ("model.weights.h5", h5[:600])])):
        with zipfile.ZipFile(out("zip", name + ".keras"), "w", compression=comp) as zf:
            zf.writestr(zipfile.ZipInfo("metadata.json", (2024, 1, 1, 0, 0, 0)), '{"keras_version": "3.6.0"}')
            zf.writestr(zipfile.ZipInfo("config.json", (2024, 1, 1, 0, 0, 0)), "{}")
            for n, data in entries:
                zi = zipfile.ZipInfo(n, (2024, 1, 1, 0, 0, 0))
                zi.compress_type = comp
                zf.writestr(zi, data)
    with open(out("zip", "empty.zip"), "wb") as f:
        f.write(b"PK\x05\x06" + bytes(18))
    # the zip64 forms: a zip64 extra field in the local header (force_zip64) and an
    # archive comment; then the same with its end record moved into a zip64 end
    # record and locator (APPNOTE.TXT 4.3.14-4.3.15), the 32-bit fields saturated
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w") as zf:
        zf.writestr(zipfile.ZipInfo("metadata.json", (2024, 1, 1, 0, 0, 0)), '{"keras_version": "3.6.0"}')
        with zf.open(zipfile.ZipInfo("model.weights.h5", (2024, 1, 1, 0, 0, 0)), "w", force_zip64=True) as w:
            w.write(h5)
        zf.comment = b"a comment"
    z = bio.getvalue()
    with open(out("zip", "zip64_local_comment.keras"), "wb") as f:
        f.write(z)
    end = z.rindex(b"PK\x05\x06")
    entries, cd_size, cd = struct.unpack_from("<HII", z, end + 10)
    rec = struct.pack("<IQHHIIQQQQ", 0x06064b50, 44, 45, 45, 0, 0, entries, entries, cd_size, cd)
    loc = struct.pack("<IIQI", 0x07064b50, 0, end, 1)
    eocd = struct.pack("<IHHHHIIH", 0x06054b50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    with open(out("zip", "zip64_end.keras"), "wb") as f:
        f.write(z[:end] + rec + loc + eocd)


if __name__ == "__main__":
    npy_seeds()
    image_seeds()
    h5_seeds()
    keras3_seeds()
    zip_seeds()
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(OUT) for f in fs)
    print(f"corpus: {total} bytes")
