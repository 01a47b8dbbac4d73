#!/usr/bin/env bash
# run.sh - the sharded embed on a real Slurm: examples/slurm/embed.sbatch as an array of
# 3 shards over a folder of images with broken ones mixed in, one task cancelled while
# it runs, the array resubmitted, examples/slurm/merge.sbatch after it, and the merge
# compared with an unsharded `fusenet embed` over the same inputs (names equal, the
# .npy files byte for byte, both at 1 thread).
#
#   tests/slurm/run.sh FUSENET WORKDIR
#
# It starts its own single-node Slurm (tests/slurm/cluster.sh) and stops it on exit.
# Exit status: 0 passed, 77 skipped (Slurm cannot run here: the reason is printed), else failed.
set -euo pipefail
FUSENET=$(realpath "$1")
WORK=$2
HERE=$(cd "$(dirname "$0")" && pwd)
EXAMPLES=$HERE/../../examples/slurm
SKIP=77
PY=/usr/bin/python3

fail() { echo "FAILED: $*" >&2; exit 1; }
step() { echo "== $*"; }

rm -rf "$WORK"
mkdir -p "$WORK"
cd "$WORK"

source "$HERE/cluster.sh"
if ! cluster_start "$WORK/slurm"; then
  echo "SKIPPED: Slurm cannot run here: $CLUSTER_WHY"
  exit $SKIP
fi

step "inputs: 30 images in nested folders, 3 broken ones; seeded random weights"
$PY - <<'EOF'
import os
import numpy as np
from PIL import Image
rng = np.random.default_rng(12)
for i in range(30):
    d = os.path.join("images", "set%d" % (i % 3), "sub" if i % 4 == 0 else "")
    os.makedirs(d, exist_ok=True)
    h, w = int(rng.integers(40, 120)), int(rng.integers(40, 120))
    pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(os.path.join(d, "img%02d.%s" % (i, "png" if i % 2 else "jpg")))
open("images/set0/broken_text.jpg", "wb").write(b"this is not a JPEG\n")
open("images/set1/empty.png", "wb").write(b"")
good = open("images/set2/img02.jpg", "rb").read()
open("images/set2/truncated.jpg", "wb").write(good[: len(good) // 3])
EOF
"$FUSENET" make-weights --model resnet50 --seed 3 --output resnet.h5
"$FUSENET" make-weights --model vgg16 --seed 4 --output vgg.h5
# 256x256 makes one shard of 10 images take seconds even on a fast idle core (about
# 48 GFLOP an image), so task 1 is still running when it is cancelled below; at 96x96 a
# quiet machine finished it first.
EMBED_OPTS=(--resnet-weights "$WORK/resnet.h5" --vgg-weights "$WORK/vgg.h5" --input-size 256x256 --batch 2)

step "reference: one unsharded embed, 1 thread"
"$FUSENET" embed "${EMBED_OPTS[@]}" --threads 1 --output ref.npy --names ref.txt images 2>ref.log ||
  fail "unsharded embed: $(tail -n1 ref.log)"
[ "$(grep -c 'skipped: ' ref.log)" = 3 ] || fail "the unsharded run did not skip the 3 broken files: $(cat ref.log)"


# Job or array task states, one "ID STATE" a line (records are kept MinJobAge=300 s).
states() { squeue -h -t all -j "$1" -o '%i %T' 2>/dev/null | sort; }
finished() { ! squeue -h -j "$1" -o %T 2>/dev/null | grep -q -E 'PENDING|RUNNING|COMPLETING|CONFIGURING|SUSPENDED'; }
wait_job() { cluster_wait "${2:-300}" finished "$1" || fail "job $1 still not finished: $(states "$1" | tr '\n' ' ')"; }
state_of() { squeue -h -t all -j "$1" -o %T 2>/dev/null; }

mkdir -p logs shards
SUBMIT=(sbatch --parsable --cpus-per-task=1 --output="$WORK/logs/embed_%A_%a.log" --export=ALL,FUSENET="$FUSENET")
# relative inputs, as in the reference run: jobs start in the directory they were submitted from
ARGS=("$EXAMPLES/embed.sbatch" 3 shards "${EMBED_OPTS[@]}" images)

step "array of 3 shards; task 1 cancelled while it runs"
jid=$("${SUBMIT[@]}" --array=0-2 "${ARGS[@]}")
log1=$WORK/logs/embed_${jid}_1.log
started() { [ "$(state_of "${jid}_1")" = RUNNING ] && grep -q 'shard 1/3' "$log1" 2>/dev/null; }
cluster_wait 120 started || fail "task ${jid}_1 did not start: $(states "$jid" | tr '\n' ' ')"
sleep 1
[ ! -e shards/done_00001.json ] || fail "shard 1 finished before it could be cancelled"
scancel "${jid}_1"
wait_job "$jid"
echo "$(states "$jid" | tr '\n' ' ')"
[ "$(state_of "${jid}_1")" = CANCELLED ] || fail "task 1 is $(state_of "${jid}_1"), not CANCELLED"
for k in 0 2; do
  [ "$(state_of "${jid}_$k")" = COMPLETED ] || fail "task $k is $(state_of "${jid}_$k"): $(tail -n2 "$WORK/logs/embed_${jid}_$k.log")"
done
[ -e shards/done_00000.json ] && [ -e shards/done_00002.json ] || fail "shards 0 and 2 have no done file"
# Nothing that could be taken for shard 1's output; at most temporaries of a killed writer.
left=$(ls -A shards | grep -v -E '^(emb|names|done)_0000[02]\.(npy|txt|json)$|^\.fusenet-[0-9]+-[0-9]+\.tmp$' || true)
[ -z "$left" ] || fail "the cancelled shard left files behind: $left"
if "$FUSENET" merge shards --output early.npy --names early.txt 2>early.log; then
  fail "merge succeeded with shard 1 missing"
fi
grep -q 'shard 1/3' early.log || fail "merge without shard 1 did not name it: $(cat early.log)"
[ ! -e early.npy ] && [ ! -e early.txt ] || fail "the failed merge left an output"
cp shards/done_00000.json done0.before

step "the same array resubmitted, then merge.sbatch after it (afterok)"
jid2=$("${SUBMIT[@]}" --array=0-2 "${ARGS[@]}")
mid=$(sbatch --parsable --dependency=afterok:"$jid2" --output="$WORK/logs/merge_%j.log" \
  --export=ALL,FUSENET="$FUSENET" "$EXAMPLES/merge.sbatch" "$WORK/shards" "$WORK/merged.npy" "$WORK/merged.txt")
wait_job "$jid2"
wait_job "$mid"
echo "$(states "$jid2" | tr '\n' ' ') $(states "$mid")"
for k in 0 1 2; do
  [ "$(state_of "${jid2}_$k")" = COMPLETED ] || fail "resubmitted task $k: $(tail -n2 "$WORK/logs/embed_${jid2}_$k.log")"
done
for k in 0 2; do
  grep -q 'done already' "$WORK/logs/embed_${jid2}_$k.log" || fail "resubmitted task $k did not skip its done shard"
done
cmp -s shards/done_00000.json done0.before || fail "the rerun of a done shard rewrote it"
[ "$(state_of "$mid")" = COMPLETED ] || fail "merge job: $(cat "$WORK/logs/merge_$mid.log")"
left=$(ls -A shards | grep -v -E '^(emb|names|done)_0000[012]\.(npy|txt|json)$' || true)
[ -z "$left" ] || fail "after the rerun the shard directory still holds: $left"

step "merged == unsharded"
cmp ref.txt merged.txt || fail "names differ from the unsharded run"
cmp ref.npy merged.npy || fail "embeddings differ from the unsharded run"
$PY - <<'EOF' || fail "done files"
import json
import numpy as np
done = [json.load(open("shards/done_%05d.json" % k)) for k in range(3)]
skipped = sorted(s["path"].rsplit("/", 1)[1] for d in done for s in d["skipped"])
assert skipped == ["broken_text.jpg", "empty.png", "truncated.jpg"], skipped
a = np.load("merged.npy")
assert a.shape == (30, 1536) and sum(d["rows"] for d in done) == 30, a.shape
assert np.allclose(np.linalg.norm(a, axis=1), 1, atol=1e-5)
print("30 rows of 1536, 3 broken files skipped and listed:", ", ".join(skipped))
EOF
rm -f resnet.h5 vgg.h5  # the rest (logs, shards) is small
echo "PASSED"
