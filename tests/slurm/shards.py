#!/usr/bin/env python3
"""Sharded embed and merge without Slurm: `fusenet embed --shard K/N --output-dir DIR`
and `fusenet merge DIR`, checked against an unsharded embed and against numpy/zlib.

  shards.py --fusenet BUILD/fusenet --workdir DIR

* identity: for N = 1, 3 and 8 (8 shards of 7 files: empty shards and shards of
  broken files only), every shard run in a shuffled order, then merged: the merged
  .npy and names file are byte-identical to one unsharded embed (1 thread each);
  every done file agrees with Python's reading of the shard files (rows, CRC-32s
  by zlib, the range floor(K*M/N) .. floor((K+1)*M/N), the skipped files);
* reruns: a done shard exits 0, says so and rewrites nothing;
* --strict: a shard with a broken file fails and leaves no shard file, others pass;
* bad options and hostile shard directories (tests/BAD_INPUTS.md): status 1, one
  line on stderr naming the culprit, no output written, an existing output untouched.
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import zlib

import numpy as np
from PIL import Image

ap = argparse.ArgumentParser()
ap.add_argument("--fusenet", required=True)
ap.add_argument("--workdir", required=True)
args = ap.parse_args()
FN = os.path.abspath(args.fusenet)
W = os.path.abspath(args.workdir)
shutil.rmtree(W, ignore_errors=True)
os.makedirs(W)
os.chdir(W)

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)
    return cond


def run(*argv):
    p = subprocess.run([FN] + [str(a) for a in argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return p.returncode, p.stderr


def ok(*argv):
    rc, err = run(*argv)
    if rc != 0:
        sys.exit("fusenet %s failed: %s" % (" ".join(map(str, argv)), err))
    return err


# --- inputs: 5 images and 2 broken files, 7 candidates in walk order ---
rng = np.random.default_rng(5)
os.makedirs("images/b", exist_ok=True)
for i, name in enumerate(["a0.png", "a1.jpg", "b/b0.png", "b/b1.jpg", "c.png"]):
    Image.fromarray(rng.integers(0, 256, (40 + 9 * i, 50, 3), dtype=np.uint8)).save("images/" + name)
open("images/b/broken.png", "wb").write(b"\x89PNG\r\n\x1a\n truncated")
open("images/bad.jpg", "wb").write(b"not an image")
ok("make-weights", "--model", "resnet50", "--seed", 7, "--output", "r.h5")
ok("make-weights", "--model", "vgg16", "--seed", 8, "--output", "v.h5")
OPTS = ["--resnet-weights", "r.h5", "--vgg-weights", "v.h5", "--input-size", "48x48", "--batch", 2, "--threads", 1]
ok("embed", *OPTS, "--output", "ref.npy", "--names", "ref.txt", "images")
ref = np.load("ref.npy")
ref_names = open("ref.txt").read().splitlines()
M = 7  # candidates: the 5 images and the 2 broken files
check(ref.shape == (5, 1536) and len(ref_names) == 5, "reference run: %s rows" % (ref.shape,))


def shard_files(d, k):
    return ["%s/%s_%05d.%s" % (d, kind, k, ext) for kind, ext in (("emb", "npy"), ("names", "txt"), ("done", "json"))]


def embed_shards(d, n, extra=()):
    os.makedirs(d, exist_ok=True)
    order = list(range(n))
    random.Random(n).shuffle(order)
    for k in order:
        ok("embed", *OPTS, *extra, "--shard", "%d/%d" % (k, n), "--output-dir", d, "images")


# --- identity with the unsharded run, done files against numpy and zlib ---
for n in (1, 3, 8):
    d = "id%d" % n
    embed_shards(d, n)
    rows = 0
    for k in range(n):
        emb, names, done = shard_files(d, k)
        dj = json.load(open(done))
        a = np.load(emb)
        raw = open(emb, "rb").read()
        first, end = k * M // n, (k + 1) * M // n
        check((dj["shard"], dj["shards"], dj["first"], dj["end"]) == (k, n, first, end),
              "%s: range %s..%s, expected %d..%d" % (done, dj["first"], dj["end"], first, end))
        check(a.shape == (dj["rows"], 1536) and dj["rows"] + len(dj["skipped"]) == end - first,
              "%s: %s rows for %d files" % (done, a.shape, end - first))
        check(dj["embeddings_crc32"] == zlib.crc32(raw[128:]), "%s: embeddings CRC" % done)
        check(dj["names_crc32"] == zlib.crc32(open(names, "rb").read()), "%s: names CRC" % done)
        check(all(s["path"].endswith(("broken.png", "bad.jpg")) and s["error"] for s in dj["skipped"]),
              "%s: skipped %s" % (done, dj["skipped"]))
        check(np.array_equal(a, ref[rows:rows + len(a)]), "%s: rows differ from the unsharded run" % emb)
        rows += len(a)
    err = ok("merge", d, "--output", d + ".npy", "--names", d + ".txt")
    check(open(d + ".npy", "rb").read() == open("ref.npy", "rb").read(), "N=%d: merged .npy differs from ref" % n)
    check(open(d + ".txt").read() == open("ref.txt").read(), "N=%d: merged names differ from ref" % n)
    check("merged %d shards: 5 rows" % n in err and "(2 skipped)" in err, "N=%d: merge said %r" % (n, err))

# --- rerun of a done shard ---
before = {p: (os.stat(p).st_mtime_ns, open(p, "rb").read()) for p in shard_files("id3", 1)}
rc, err = run("embed", *OPTS, "--shard", "1/3", "--output-dir", "id3", "images")
check(rc == 0 and "done already" in err and err.count("\n") == 1, "rerun of a done shard: %d %r" % (rc, err))
check(all((os.stat(p).st_mtime_ns, open(p, "rb").read()) == v for p, v in before.items()),
      "rerun of a done shard rewrote its files")

# --- --strict: shard 2/3 (files 4..6) holds images/b/broken.png and images/bad.jpg ---
os.makedirs("strict")
rc, err = run("embed", *OPTS, "--strict", "--shard", "2/3", "--output-dir", "strict", "images")
check(rc == 1 and "broken.png" in err and os.listdir("strict") == [], "--strict shard: %d %r %s" %
      (rc, err, os.listdir("strict")))
rc, err = run("embed", *OPTS, "--strict", "--shard", "1/3", "--output-dir", "strict", "images")
check(rc == 0 and sorted(os.listdir("strict")) == ["done_00001.json", "emb_00001.npy", "names_00001.txt"],
      "--strict shard without broken files: %d %r" % (rc, err))


def refused(name, argv, want, outputs=()):
    """status 1, one line naming want, the outputs untouched (they hold a sentinel)."""
    for o in outputs:
        open(o, "wb").write(b"sentinel")
    rc, err = run(*argv)
    lines = err.splitlines()
    good = rc == 1 and len(lines) == 1 and all(w in lines[0] for w in want)
    good = good and all(open(o, "rb").read() == b"sentinel" for o in outputs)
    good = good and not any(f.startswith(".fusenet-") for f in os.listdir("."))
    if check(good, "%s: status %d, stderr %r, wanted %s" % (name, rc, err, want)):
        print("ok %-28s %s" % (name, lines[0]))


# --- bad options ---
E = ["embed"] + OPTS
refused("shard_without_output_dir", E + ["--shard", "0/2", "images"], ["--output-dir"])
refused("output_dir_without_shard", E + ["--output-dir", "id3", "--output", "x.npy", "images"], ["--shard"])
refused("shard_with_output", E + ["--shard", "0/2", "--output-dir", "id3", "--output", "x.npy", "images"],
        ["--output"])
for bad in ("3/3", "0/0", "-1/2", "a/b", "1/2x", "1", "0/100001"):
    refused("shard_" + bad, E + ["--shard", bad, "--output-dir", "id3", "images"], ["--shard", bad])
refused("shard_output_dir_missing", E + ["--shard", "0/2", "--output-dir", "nowhere", "images"], ["nowhere"])
refused("merge_no_dir", ["merge", "--output", "o.npy", "--names", "o.txt"], ["one shard directory"])
refused("merge_same_output", ["merge", "id3", "--output", "o.npy", "--names", "o.npy"], ["same file"])


# --- hostile shard directories against merge ---
def hostile(name, change, want):
    d = "h_" + name
    shutil.copytree("id3", d)
    change(d)
    refused(name, ["merge", d, "--output", "out.npy", "--names", "out.txt"], want, ["out.npy", "out.txt"])


def edit_done(k, f):
    def change(d):
        p = "%s/done_%05d.json" % (d, k)
        dj = json.load(open(p))
        f(dj)
        json.dump(dj, open(p, "w"))
    return change


def rewrite(path, f):
    def change(d):
        p = d + "/" + path
        data = open(p, "rb").read()
        open(p, "wb").write(f(data))
    return change


embed_shards("other_n", 4)
os.makedirs("subset/b")
for f in ("a0.png", "a1.jpg", "b/b0.png"):
    shutil.copy("images/" + f, "subset/" + f)
os.makedirs("other_inputs")
ok("embed", *OPTS, "--shard", "1/3", "--output-dir", "other_inputs", "subset")
# --- int8 shards name their calibration and --int8-layers: shards of two never merge ---
CAL_IMAGES = ["--images", "images/a0.png", "images/a1.jpg", "images/c.png"]
ok("calibrate", "--resnet-weights", "r.h5", "--vgg-weights", "v.h5", "--input-size", "48x48", *CAL_IMAGES,
   "--output", "cal_a.txt")
ok("calibrate", "--resnet-weights", "r.h5", "--vgg-weights", "v.h5", "--input-size", "48x48", *CAL_IMAGES,
   "--method", "minmax", "--output", "cal_b.txt")
check(open("cal_a.txt", "rb").read() != open("cal_b.txt", "rb").read(), "two methods gave one calibration file")
INT8_A = ["--mode", "int8", "--calibration", "cal_a.txt"]
embed_shards("int8_a", 3, INT8_A)
ok("merge", "int8_a", "--output", "int8_a.npy", "--names", "int8_a.txt")
check(open("int8_a.txt").read() == open("ref.txt").read(), "int8 shards: names differ from the fp32 run")
for name, extra, key in (("merge_other_calibration", ["--mode", "int8", "--calibration", "cal_b.txt"], "calibration"),
                         ("merge_other_int8_layers", INT8_A + ["--int8-layers", "vgg"], "int8_layers")):
    d = "h_" + name
    shutil.copytree("int8_a", d)
    for f in shard_files(d, 1):
        os.remove(f)
    ok("embed", *OPTS, *extra, "--shard", "1/3", "--output-dir", d, "images")
    refused(name, ["merge", d, "--output", "out.npy", "--names", "out.txt"],
            ["done_00001.json", "another run", "run." + key], ["out.npy", "out.txt"])

os.makedirs("other_taps")
ok("embed", *OPTS, "--vgg-layer", "block4_conv3", "--shard", "1/3", "--output-dir", "other_taps", "images")


def take(src):
    def change(d):
        for p in shard_files(src, 1):
            shutil.copy(p, d)
    return change


hostile("merge_missing_done", lambda d: os.remove(d + "/done_00001.json"), ["shard 1/3", "done_00001.json"])
hostile("merge_missing_emb", lambda d: os.remove(d + "/emb_00002.npy"), ["emb_00002.npy", "No such file"])
hostile("merge_missing_names", lambda d: os.remove(d + "/names_00000.txt"), ["names_00000.txt"])
hostile("merge_shard_of_4", take("other_n"), ["done_00001.json", "1/4"])
hostile("merge_other_inputs", take("other_inputs"), ["done_00001.json", "another run", "run.candidates"])
hostile("merge_other_taps", take("other_taps"), ["done_00001.json", "another run", "run.taps"])
hostile("merge_extra_shard", lambda d: shutil.copy("other_n/done_00003.json", d), ["done_00003.json", "3 shards"])
hostile("merge_truncated_npy", rewrite("emb_00001.npy", lambda b: b[:-4]), ["emb_00001.npy", "truncated"])
hostile("merge_npy_header_only", rewrite("emb_00001.npy", lambda b: b[:128]), ["emb_00001.npy", "truncated"])
hostile("merge_flipped_float", rewrite("emb_00001.npy", lambda b: b[:200] + bytes([b[200] ^ 1]) + b[201:]),
        ["emb_00001.npy", "CRC-32"])
hostile("merge_names_line_lost", rewrite("names_00002.txt", lambda b: b[b.index(b"\n") + 1:]),
        ["names_00002.txt", "lines"])
hostile("merge_names_renamed", rewrite("names_00002.txt", lambda b: b.replace(b"images", b"imagez", 1)),
        ["names_00002.txt", "CRC-32"])
hostile("merge_forged_rows", edit_done(1, lambda dj: dj.update(rows=dj["rows"] + 1)), ["done_00001.json", "rows"])
hostile("merge_forged_range", edit_done(2, lambda dj: dj.update(first=dj["first"] - 1)),
        ["done_00002.json", "overlap or leave a gap"])
hostile("merge_forged_crc", edit_done(0, lambda dj: dj.update(embeddings_crc32=dj["embeddings_crc32"] ^ 1)),
        ["emb_00000.npy", "CRC-32"])
hostile("merge_forged_format", edit_done(0, lambda dj: dj.update(format="fusenet shard 2")),
        ["done_00000.json", "format"])
hostile("merge_forged_shard", edit_done(2, lambda dj: dj.update(shard=1)), ["done_00002.json", "1/3"])
hostile("merge_forged_dim", edit_done(1, lambda dj: dj["run"].update(dim=1535)), ["done_00001.json", "run.dim"])
hostile("merge_done_junk", rewrite("done_00001.json", lambda b: b"{\"format\": "), ["done_00001.json", "byte"])
hostile("merge_done_deep", rewrite("done_00001.json", lambda b: b"[" * 100000), ["done_00001.json", "deeply"])
hostile("merge_done_is_dir", lambda d: (os.remove(d + "/done_00001.json"), os.mkdir(d + "/done_00001.json")),
        ["done_00001.json"])
hostile("merge_emb_is_fifo", lambda d: (os.remove(d + "/emb_00001.npy"), os.mkfifo(d + "/emb_00001.npy")),
        ["emb_00001.npy", "not a regular file"])
os.makedirs("empty")
refused("merge_no_done", ["merge", "empty", "--output", "out.npy", "--names", "out.txt"],
        ["empty", "no shard has finished"], ["out.npy", "out.txt"])
refused("merge_dir_missing", ["merge", "nowhere", "--output", "out.npy", "--names", "out.txt"],
        ["nowhere"], ["out.npy", "out.txt"])
refused("merge_output_into_shards", ["merge", "id3", "--output", "id3/emb_00000.npy", "--names", "out.txt"],
        ["emb_00000.npy", "shards"])
os.makedirs("broken_only")
for f in ("b/broken.png", "bad.jpg"):
    shutil.copy("images/" + f, "broken_only/" + os.path.basename(f))
os.makedirs("none")
ok("embed", *OPTS, "--shard", "0/2", "--output-dir", "none", "broken_only")
ok("embed", *OPTS, "--shard", "1/2", "--output-dir", "none", "broken_only")
refused("merge_all_skipped", ["merge", "none", "--output", "out.npy", "--names", "out.txt"],
        ["none of the 2 files"], ["out.npy", "out.txt"])

if failures:
    sys.exit("%d failure(s)" % len(failures))
os.chdir("/")
shutil.rmtree(W)  # kept to look at when a case failed
print("shards: all cases passed")
