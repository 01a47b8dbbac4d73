#!/usr/bin/python3
"""Checks `fusenet embed`, `fusenet similar` and `fusenet viz` end to end on
random weights and the test images (numpy and Pillow read the outputs).

usage: check_cli.py FUSENET RESNET.h5 VGG.h5 TEST_DATA_DIR EXAMPLE.jpg WORKDIR [embed|similar|viz|weights]
"""
import os
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image

FUSENET, RESNET, VGG, DATA, EXAMPLE, WORK = sys.argv[1:7]
WHICH = sys.argv[7:] or ["embed", "similar", "viz", "weights"]
SIZE = "64x64"  # small inputs keep the runs fast; the taps are still the default ones
WEIGHTS = ["--resnet-weights", RESNET, "--vgg-weights", VGG, "--input-size", SIZE]
failures = []


def run(args, env=None, cwd=None):
    p = subprocess.run([FUSENET] + args, capture_output=True, text=True, env=env, cwd=cwd)
    return p.returncode, p.stdout, p.stderr


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what)
    if not cond:
        failures.append(what)


def one_line_error(rc, err, *needles):
    return rc == 1 and err.count("\n") == 1 and err.startswith("fusenet: ") and all(n in err for n in needles)


def make_tree():
    """imgs/: the test images, a subfolder, a corrupt JPEG, a text file, an
    upper-case extension, a hidden file and a symlink loop."""
    root = os.path.join(WORK, "imgs")
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(os.path.join(root, "sub", "deeper"))
    names = sorted(f for f in os.listdir(DATA) if f.lower().endswith((".png", ".jpg", ".jpeg")))
    for i, f in enumerate(names):
        dst = root if i % 2 == 0 else os.path.join(root, "sub")
        shutil.copy(os.path.join(DATA, f), dst)
    shutil.copy(EXAMPLE, os.path.join(root, "sub", "deeper", "EXAMPLE.JPG"))
    shutil.copy(EXAMPLE, os.path.join(root, ".hidden.jpg"))
    with open(os.path.join(root, "sub", "broken.jpg"), "wb") as f:
        f.write(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    with open(os.path.join(root, "notes.txt"), "w") as f:
        f.write("not an image\n")
    os.symlink("..", os.path.join(root, "sub", "deeper", "loop"))
    # Expected rows: byte-wise sorted names per folder, depth first, broken one skipped.
    expected = []

    def walk(d):
        for e in sorted(os.listdir(d)):
            if e.startswith("."):
                continue
            p = os.path.join(d, e)
            if os.path.islink(p) and os.path.isdir(p):
                continue  # the loop leads back to a folder already walked
            if os.path.isdir(p):
                walk(p)
            elif e.lower().endswith((".png", ".jpg", ".jpeg")) and e != "broken.jpg":
                expected.append(p)

    walk(root)
    return root, expected


def naive_embedding(path, pool):
    """The fused map from `fusenet fuse`, pooled and normalised here."""
    out = os.path.join(WORK, "fused.npy")
    rc, _, err = run(["fuse"] + WEIGHTS + ["--images", path, "--output", out])
    assert rc == 0, err
    f = np.load(out)[0].astype(np.float64)
    v = f.mean(axis=(0, 1)) if pool == "avg" else f.max(axis=(0, 1))
    return v / np.linalg.norm(v)


def test_embed():
    root, expected = make_tree()
    emb, names = os.path.join(WORK, "emb.npy"), os.path.join(WORK, "names.txt")
    for p in (emb, names):
        if os.path.exists(p):
            os.remove(p)
    rc, out, err = run(["embed"] + WEIGHTS + ["--batch", "4", "--output", emb, "--names", names, root])
    check(rc == 0, "embed: exit status 0 with a corrupt image among the inputs (%d: %s)" % (rc, err.strip()))
    check("broken.jpg" in err and "skipped" in err, "embed: the corrupt image is reported by name on stderr")
    check(err.count("\n") == 2, "embed: stderr holds the skip and the summary, no progress line (not a terminal)")
    check(out == "", "embed: nothing on stdout")
    e = np.load(emb)
    lines = open(names).read().split("\n")
    check(lines[-1] == "", "names file ends with a newline")
    lines = lines[:-1]
    check(e.dtype == np.float32 and e.shape == (len(expected), 1536),
          "embed: (N, 1536) float32 with N = %d readable images (got %s)" % (len(expected), e.shape))
    check(lines == expected, "names file: one path per row, sorted walk order, loop and hidden file skipped")
    check(np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5), "embed: every row has unit L2 norm")
    # Row of the example image against fuse + pooling in numpy, both poolings.
    i = lines.index(os.path.join(root, "sub", "deeper", "EXAMPLE.JPG"))
    check(np.abs(e[i] - naive_embedding(lines[i], "avg")).max() < 1e-5, "embed --pool avg: row = mean of the fused map, normalised")
    emb_max = os.path.join(WORK, "emb_max.npy")
    rc, _, err = run(["embed"] + WEIGHTS + ["--pool", "max", "--output", emb_max, lines[i], lines[0]])
    check(rc == 0 and np.abs(np.load(emb_max)[0] - naive_embedding(lines[i], "max")).max() < 1e-5,
          "embed --pool max: row = max of the fused map, normalised; files given directly")
    # --strict: the run fails, nothing is written, an existing output is kept.
    before = open(emb, "rb").read()
    rc, out, err = run(["embed"] + WEIGHTS + ["--strict", "--output", emb, "--names", os.path.join(WORK, "strict.txt"), root])
    check(one_line_error(rc, err, "broken.jpg"), "embed --strict: fails with one line naming the corrupt image")
    check(open(emb, "rb").read() == before and not os.path.exists(os.path.join(WORK, "strict.txt")),
          "embed --strict: nothing written, the previous output untouched")
    check(not [f for f in os.listdir(WORK) if ".tmp-" in f], "no temporary files left behind")
    rc, _, err = run(["embed"] + WEIGHTS + ["--output", emb, os.path.join(WORK, "no_such_dir")])
    check(one_line_error(rc, err, "no_such_dir"), "embed: a missing argument path is an error")
    rc, _, err = run(["embed"] + WEIGHTS + ["--pool", "median", "--output", emb, root])
    check(one_line_error(rc, err, "--pool"), "embed: a bad --pool is refused")


def test_similar():
    emb, names = os.path.join(WORK, "emb.npy"), os.path.join(WORK, "names.txt")
    lines = open(names).read().splitlines()
    query = lines[3]
    rc, out, err = run(["similar"] + WEIGHTS + ["--embeddings", emb, "--names", names, "--query", query, "-k", "4"])
    rows = [l.split("\t") for l in out.splitlines()]
    check(rc == 0 and len(rows) == 4 and all(len(r) == 3 for r in rows), "similar: 4 lines rank<TAB>similarity<TAB>path")
    check([r[0] for r in rows] == ["1", "2", "3", "4"], "similar: ranks 1..k")
    check(rows[0][2] == query and abs(float(rows[0][1]) - 1.0) < 1e-4, "similar: the query itself is rank 1, similarity ~1")
    sims = [float(r[1]) for r in rows]
    check(sims == sorted(sims, reverse=True), "similar: best first")
    e = np.load(emb).astype(np.float64)
    ref = e @ e[3]
    check(all(abs(float(r[1]) - ref[lines.index(r[2])]) < 1e-4 for r in rows), "similar: similarities are the cosines of the rows")
    rc, out, _ = run(["similar"] + WEIGHTS + ["--embeddings", emb, "--names", names, "--query", query, "-k", "1000"])
    check(rc == 0 and len(out.splitlines()) == len(lines), "similar: k larger than N prints N rows")
    short = os.path.join(WORK, "short.txt")
    open(short, "w").write("\n".join(lines[:2]) + "\n")
    rc, out, err = run(["similar"] + WEIGHTS + ["--embeddings", emb, "--names", short, "--query", query])
    check(one_line_error(rc, err, "rows", "2 names") and out == "", "similar: rows/names count mismatch refused in one line")
    narrow = os.path.join(WORK, "narrow.npy")
    np.save(narrow, np.ones((len(lines), 100), np.float32))
    rc, out, err = run(["similar"] + WEIGHTS + ["--embeddings", narrow, "--names", names, "--query", query])
    check(one_line_error(rc, err, "100 values", "1536") and out == "", "similar: dimension mismatch refused in one line")


def test_viz():
    out = os.path.join(WORK, "viz.png")
    if os.path.exists(out):
        os.remove(out)
    rc, so, err = run(["viz", "--image", EXAMPLE, "--model", "resnet50", "--weights", RESNET,
                       "--layer", "conv3_block4_out", "--output", out])
    check(rc == 0 and "conv3_block4_out: 28x28x512" in so, "viz: runs and reports the tap shape (%s)" % err.strip())
    img = Image.open(out)
    img.load()
    orig = Image.open(EXAMPLE).convert("RGB")
    check(img.format == "PNG" and img.mode == "RGB" and img.size == orig.size,
          "viz: an RGB PNG the size of the picture (%s)" % (img.size,))
    a = np.asarray(img, np.float64)
    src = np.asarray(orig, np.float64)
    check(a.std() > 10 and np.abs(a - src).mean() > 5, "viz: a heat map is drawn over the picture")
    out2 = os.path.join(WORK, "viz2.png")
    rc, _, err = run(["viz", "--image", EXAMPLE, "--model", "vgg16", "--weights", VGG, "--layer", "block4_conv3",
                      "--output", out2, "--input-size", "96x128", "--output-size", "150x200", "--alpha", "0"])
    img2 = Image.open(out2)
    check(rc == 0 and img2.size == (200, 150), "viz --output-size 150x200: 200 wide, 150 high (%s)" % err.strip())
    plain = np.asarray(Image.open(EXAMPLE).convert("RGB").resize((200, 150), Image.BILINEAR), np.float64)
    check(np.abs(np.asarray(img2, np.float64) - plain).mean() < 8, "viz --alpha 0: just the picture")
    rc, _, err = run(["viz", "--image", EXAMPLE, "--model", "vgg16", "--weights", VGG, "--layer", "block9_conv3", "--output", out2])
    check(one_line_error(rc, err, "block9_conv3"), "viz: an unknown layer is refused in one line")
    broken = os.path.join(WORK, "broken.png")
    with open(broken, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n truncated")
    rc, _, err = run(["viz", "--image", broken, "--model", "vgg16",
                      "--weights", VGG, "--output", os.path.join(WORK, "viz3.png")])
    check(one_line_error(rc, err, "broken.png") and not os.path.exists(os.path.join(WORK, "viz3.png")),
          "viz: a corrupt image fails, nothing written")


def test_weights():
    models = os.path.join(WORK, "models_env")
    shutil.rmtree(models, ignore_errors=True)
    os.makedirs(models)
    os.symlink(os.path.abspath(RESNET), os.path.join(models, "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"))
    os.symlink(os.path.abspath(VGG), os.path.join(models, "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"))
    env = dict(os.environ, FUSENET_MODELS=models)
    out = os.path.join(WORK, "found.npy")
    rc, _, err = run(["embed", "--input-size", SIZE, "--output", out, EXAMPLE], env=env)
    check(rc == 0 and np.load(out).shape == (1, 1536), "weights found in $FUSENET_MODELS (%s)" % err.strip())
    rc, so, err = run(["viz", "--image", EXAMPLE, "--model", "vgg16", "--output", os.path.join(WORK, "v.png")], env=env)
    check(rc == 0, "viz: --weights found in $FUSENET_MODELS (%s)" % err.strip())
    # ./models is the second place looked at.
    cwd = os.path.join(WORK, "cwd")
    shutil.rmtree(cwd, ignore_errors=True)
    os.makedirs(cwd)
    os.symlink(models, os.path.join(cwd, "models"))
    env2 = {k: v for k, v in os.environ.items() if k != "FUSENET_MODELS"}
    rc, _, err = run(["embed", "--input-size", SIZE, "--output", "x.npy", EXAMPLE], env=env2, cwd=cwd)
    check(rc == 0 and os.path.exists(os.path.join(cwd, "x.npy")), "weights found in ./models (%s)" % err.strip())
    empty = os.path.join(WORK, "empty")
    os.makedirs(empty, exist_ok=True)
    rc, _, err = run(["embed", "--output", "x.npy", EXAMPLE], env=dict(os.environ, FUSENET_MODELS=empty), cwd=empty)
    check(one_line_error(rc, err, "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5", empty, "./models",
                         "models/fetch_weights.sh"), "missing weights: one line saying where it looked and how to get them")
    rc, _, err = run(["tap", "--model", "vgg16", "--layer", "predictions", "--input", "x.npy", "--output", "y.npy"],
                     env=dict(os.environ, FUSENET_MODELS=empty), cwd=empty)
    check(one_line_error(rc, err, "vgg16_weights_tf_dim_ordering_tf_kernels.h5", "fetch_weights.sh top"),
          "missing full (top) weights for a top layer: the full file name is asked for")


os.makedirs(WORK, exist_ok=True)
for name in WHICH:
    if name == "similar" and "embed" not in WHICH:  # fresh embeddings: a stale file may hold other weights
        test_embed()
    globals()["test_" + name]()
if failures:
    print("%d check(s) failed" % len(failures))
    sys.exit(1)
print("all checks passed")
