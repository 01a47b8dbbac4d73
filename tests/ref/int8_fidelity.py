#!/usr/bin/env python3
"""int8 fidelity on held-out images, beside PyTorch's own int8 on the same weights and images.

Weights: `fusenet make-weights --seed 1` (ResNet50, VGG16). Images (tests/ref/int8_ref.py,
deterministic synthetic 1/f-noise pictures with shapes, at --size, 96x96 by default; the held-out
set also has the repository's photos tests/data/photo_61x47.jpg and rgb_211x157.png, loaded as
Keras' load_img does at --size):
  calibration  16 images (seed 101): `fusenet calibrate --input` and PyTorch's FX calibration
  held-out      8 images (seed 202) + the 2 photos: `fusenet fuse`, PyTorch fp32 and int8
  neighbours  200 images (seed 303), PNG files: `fusenet embed` in both modes, PyTorch int8
No held-out or neighbour image is a calibration image (different seeds; checked).

Asserted (issue #10 item 3), per held-out image:
  * cosine(our int8 fused map, our fp32 map) >= cosine(PyTorch int8, PyTorch fp32), and
    cosine(our int8 fused map, PyTorch fp32 map) >= the same PyTorch figure;
  * cosine of the pooled (mean over H, W), L2-normalised embeddings, our int8 vs our fp32, >= 0.998,
    for the held-out images (from the fused maps) and for every row `embed` writes for the
    neighbour set;
  * top-10 neighbours (cosine, the query itself excluded) of each neighbour-set image: the mean
    share agreeing with fp32's is at least PyTorch int8's on the same images against the same fp32
    neighbours. That bound is the issue's own comparison (at least PyTorch's int8) applied to
    neighbours; an absolute number would depend on how alike synthetic images are under random
    weights, which says nothing about a real data set.
Sanity (or nothing above means anything): our exact fused map within 1e-4 of max|ref| of the
PyTorch fp32 one.

The int8 mode is what `fusenet info` offers; without it the test is skipped (exit 77). --mode exact
runs the whole harness with exact mode standing in for int8 (every bound holds trivially, the
sanity check and the PyTorch side still run): a check of the harness itself.

Usage: int8_fidelity.py --fusenet PATH --workdir DIR [--size 96x96] [--mode int8|exact]
                        [--int8-layers all|vgg|auto] [--threads 2] [--neighbours 200]
"""

import argparse
import os
import shutil
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "bench"))

from compare import offered_modes  # noqa: E402  (numpy only at import)

SKIP = 77
EMBED_BOUND = 0.998
EXACT_TOL = 1e-4
TOP_K = 10
PHOTOS = ("photo_61x47.jpg", "rgb_211x157.png")
SEED_CAL, SEED_HELD, SEED_NEIGHBOURS = 101, 202, 303


def run(cmd, what):
    t0 = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise SystemExit("int8_fidelity: %s failed (exit %d): %s\n%s%s"
                         % (what, r.returncode, " ".join(cmd), r.stdout[-2000:], r.stderr[-2000:]))
    print("  %-34s %6.1f s" % (what, time.perf_counter() - t0), flush=True)
    return r.stdout


def cosines(a, b):
    a = a.reshape(len(a), -1).astype(np.float64)
    b = b.reshape(len(b), -1).astype(np.float64)
    return (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-300)


def pooled(maps):
    e = maps.astype(np.float64).mean(axis=(1, 2))
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def top_k(emb, k):
    e = emb.astype(np.float64)
    e = e / np.linalg.norm(e, axis=1, keepdims=True)
    s = e @ e.T
    np.fill_diagonal(s, -np.inf)
    return np.argsort(-s, axis=1, kind="stable")[:, :k]


def agreement(ref_nn, nn):
    return np.array([len(set(a) & set(b)) / float(len(a)) for a, b in zip(ref_nn, nn)])


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fusenet", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--size", default="96x96")
    ap.add_argument("--mode", default="int8", choices=("int8", "exact"))
    ap.add_argument("--int8-layers", help="passed to fuse/embed (default: the CLI's)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--neighbours", type=int, default=200)
    a = ap.parse_args(argv)
    if a.neighbours < 200:
        ap.error("--neighbours: the issue asks for >= 200 images")
    fusenet = os.path.abspath(a.fusenet)
    modes = offered_modes(fusenet)
    if a.mode not in modes:
        print("SKIP: `fusenet info` offers modes %s, not %s" % (" ".join(modes), a.mode))
        return SKIP

    import torch
    import int8_images as I
    import int8_ref as Q
    import torch_ref as R

    torch.set_num_threads(a.threads)
    h, w = R.parse_size(a.size)
    wd = os.path.abspath(a.workdir)
    shutil.rmtree(wd, ignore_errors=True)
    os.makedirs(wd)
    p = lambda name: os.path.join(wd, name)  # noqa: E731
    th = ["--threads", str(a.threads)]

    print("int8 fidelity: %dx%d input, mode %s%s, %d threads, torch %s (quantized engine onednn)"
          % (h, w, a.mode, " --int8-layers " + a.int8_layers if a.int8_layers else "", a.threads,
             torch.__version__), flush=True)
    rw, vw = p("r.h5"), p("v.h5")
    for model, path in (("resnet50", rw), ("vgg16", vw)):
        run([fusenet, "make-weights", "--model", model, "--seed", "1", "--output", path], "make-weights " + model)
    wargs = ["--resnet-weights", rw, "--vgg-weights", vw]

    cal_u8 = I.synthetic_images(SEED_CAL, 16, h, w)
    held_u8 = np.concatenate([I.synthetic_images(SEED_HELD, 8, h, w),
                              np.stack([I.load_photo(os.path.join(REPO, "tests", "data", f), h, w) for f in PHOTOS])])
    held_names = ["synthetic %d" % i for i in range(8)] + list(PHOTOS)
    nb_u8 = I.synthetic_images(SEED_NEIGHBOURS, a.neighbours, h, w)
    cal_set = {img.tobytes() for img in cal_u8}
    if any(img.tobytes() in cal_set for img in np.concatenate([held_u8, nb_u8])):
        raise SystemExit("int8_fidelity: a held-out image is also a calibration image")
    cal, held = I.caffe(cal_u8), I.caffe(held_u8)
    np.save(p("cal.npy"), cal)
    np.save(p("held.npy"), held)
    nb_dir = p("neighbours")
    I.write_pngs(nb_u8, nb_dir)

    # ---- ours ----
    cand = ["--mode", a.mode]
    if a.mode == "int8":
        run([fusenet, "calibrate"] + wargs + ["--input", p("cal.npy"), "--output", p("cal.txt")] + th,
            "calibrate (16 images)")
        cand += ["--calibration", p("cal.txt")]
        if a.int8_layers:
            cand += ["--int8-layers", a.int8_layers]
    run([fusenet, "fuse"] + wargs + ["--input", p("held.npy"), "--output", p("held_fp32.npy"), "--mode", "exact"] + th,
        "fuse exact (held-out)")
    run([fusenet, "fuse"] + wargs + ["--input", p("held.npy"), "--output", p("held_cand.npy")] + cand + th,
        "fuse %s (held-out)" % a.mode)
    emb_common = wargs + [nb_dir, "--input-size", "%dx%d" % (h, w), "--strict"] + th
    run([fusenet, "embed"] + emb_common + ["--output", p("nb_fp32.npy"), "--names", p("nb_fp32.txt"),
                                           "--mode", "exact"], "embed exact (%d images)" % a.neighbours)
    run([fusenet, "embed"] + emb_common + ["--output", p("nb_cand.npy"), "--names", p("nb_cand.txt")] + cand,
        "embed %s (%d images)" % (a.mode, a.neighbours))
    ours32, ours8 = np.load(p("held_fp32.npy")), np.load(p("held_cand.npy"))
    nb32, nb8 = np.load(p("nb_fp32.npy")), np.load(p("nb_cand.npy"))
    with open(p("nb_fp32.txt")) as f1, open(p("nb_cand.txt")) as f2:
        names32, names8 = f1.read().split(), f2.read().split()
    expected = sorted(os.listdir(nb_dir))
    if [os.path.basename(n) for n in names32] != expected or names8 != names32:
        raise SystemExit("int8_fidelity: embed rows are not the %d neighbour images in order" % a.neighbours)

    # ---- PyTorch ----
    t0 = time.perf_counter()
    model = Q.DualNet(rw, vw, (h, w))
    ref32 = Q.run_model(model, held)
    print("  %-34s %6.1f s" % ("torch fp32 (held-out)", time.perf_counter() - t0), flush=True)
    t0 = time.perf_counter()
    qmodel = Q.quantize(model, cal)
    print("  %-34s %6.1f s" % ("torch FX int8 calibration", time.perf_counter() - t0), flush=True)
    t0 = time.perf_counter()
    ref8 = Q.run_model(qmodel, held)
    nb_ref8 = pooled(Q.run_model(qmodel, I.caffe(nb_u8)))
    print("  %-34s %6.1f s" % ("torch int8 (held-out, neighbours)", time.perf_counter() - t0), flush=True)
    c_res = model.channels[0]

    # ---- sanity: our exact mode is the PyTorch fp32 model ----
    failures = []
    if ours32.shape != ref32.shape:
        raise SystemExit("int8_fidelity: shapes differ: ours %s, torch %s" % (ours32.shape, ref32.shape))
    err = float(np.abs(ours32 - ref32).max() / np.abs(ref32).max())
    print("\nsanity: our exact fused map vs PyTorch fp32: max|diff| / max|ref| = %.2e (bound %.0e)" % (err, EXACT_TOL))
    if not err <= EXACT_TOL:
        failures.append("our exact mode is not the PyTorch fp32 model (%.2e)" % err)

    # ---- per held-out image ----
    c_o = cosines(ours8, ours32)
    c_or = cosines(ours8, ref32)
    c_t = cosines(ref8, ref32)
    r_o, r_t = cosines(ours8[..., :c_res], ours32[..., :c_res]), cosines(ref8[..., :c_res], ref32[..., :c_res])
    v_o, v_t = cosines(ours8[..., c_res:], ours32[..., c_res:]), cosines(ref8[..., c_res:], ref32[..., c_res:])
    e_o, e_t = (pooled(ours8) * pooled(ours32)).sum(1), (pooled(ref8) * pooled(ref32)).sum(1)
    print("\nper held-out image (cosines; fused map %s, %d ResNet + %d VGG channels):"
          % ("x".join(map(str, ours32.shape[1:])), c_res, ours32.shape[3] - c_res))
    hdr = ("image", "ours/fp32", "ours/torch32", "torch8/fp32", "res ours", "res torch", "vgg ours", "vgg torch",
           "emb ours", "emb torch", "")
    fmt = "%-16s %9s %12s %11s %8s %9s %8s %9s %9s %9s  %s"
    print(fmt % hdr)
    for i, name in enumerate(held_names):
        bad = []
        if not c_o[i] >= c_t[i]:
            bad.append("map vs our fp32 below torch int8's")
        if not c_or[i] >= c_t[i]:
            bad.append("map vs torch fp32 below torch int8's")
        if not e_o[i] >= EMBED_BOUND:
            bad.append("embedding below %.3f" % EMBED_BOUND)
        print(fmt % (name, "%.5f" % c_o[i], "%.5f" % c_or[i], "%.5f" % c_t[i], "%.4f" % r_o[i], "%.4f" % r_t[i],
                     "%.4f" % v_o[i], "%.4f" % v_t[i], "%.6f" % e_o[i], "%.6f" % e_t[i],
                     "FAIL: " + "; ".join(bad) if bad else "ok"))
        failures += ["%s: %s" % (name, b) for b in bad]

    # ---- embed over the neighbour set ----
    e_rows = (pooled_rows(nb8) * pooled_rows(nb32)).sum(1)
    low = int((e_rows < EMBED_BOUND).sum())
    print("\nembed, %d images: embedding cosine %s vs exact: min %.6f, median %.6f; %d below %.3f"
          % (len(nb32), a.mode, e_rows.min(), np.median(e_rows), low, EMBED_BOUND))
    if low:
        failures.append("%d embed rows below %.3f (min %.6f)" % (low, EMBED_BOUND, e_rows.min()))
    e_ref = (nb_ref8 * pooled_rows(nb32)).sum(1)
    print("  (PyTorch int8 vs the same fp32 rows: min %.6f, median %.6f; %d below %.3f)"
          % (e_ref.min(), np.median(e_ref), int((e_ref < EMBED_BOUND).sum()), EMBED_BOUND))
    nn32 = top_k(nb32, TOP_K)
    ag_o, ag_t = agreement(nn32, top_k(nb8, TOP_K)), agreement(nn32, top_k(nb_ref8, TOP_K))
    print("top-%d neighbours agreeing with fp32's (mean share over %d queries; min; queries with all %d):"
          % (TOP_K, len(nb32), TOP_K))
    print("  ours %-5s  %.4f  min %.1f  %d/%d" % (a.mode, ag_o.mean(), ag_o.min(), int((ag_o == 1).sum()), len(ag_o)))
    print("  torch int8  %.4f  min %.1f  %d/%d" % (ag_t.mean(), ag_t.min(), int((ag_t == 1).sum()), len(ag_t)))
    if not ag_o.mean() >= ag_t.mean():
        failures.append("neighbour agreement %.4f below PyTorch int8's %.4f" % (ag_o.mean(), ag_t.mean()))

    print()
    if failures:
        for f in failures:
            print("FAIL: " + f)
        return 1
    print("int8 fidelity: all bounds hold (%d held-out images, %d embedded)" % (len(held_names), len(nb32)))
    shutil.rmtree(wd)  # kept to look at when a bound failed
    return 0


def pooled_rows(emb):
    e = emb.astype(np.float64)
    return e / np.linalg.norm(e, axis=1, keepdims=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
