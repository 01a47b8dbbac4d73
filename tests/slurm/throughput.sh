#!/usr/bin/env bash
# throughput.sh - images/s of 2 shards x 1 thread (two processes side by side) against
# 1 process x 2 threads, over the same images, alternated in one run (the machine is
# shared: only ratios measured together mean anything). Not a CTest test.
#
#   tests/slurm/throughput.sh FUSENET WORKDIR [IMAGES=48] [ROUNDS=2] [SIZE=224x224]
#
# Seeded random weights (fusenet make-weights) cost what the official ones cost.
# Wall-clock time of each configuration includes loading the weights and building
# the net, as a shard of a real run would (once per shard).
set -euo pipefail
FUSENET=$(realpath "$1")
WORK=$2
IMAGES=${3:-48}
ROUNDS=${4:-2}
SIZE=${5:-224x224}
mkdir -p "$WORK"
cd "$WORK"
[ -e r.h5 ] || "$FUSENET" make-weights --model resnet50 --output r.h5
[ -e v.h5 ] || "$FUSENET" make-weights --model vgg16 --output v.h5
rm -rf images && mkdir images
/usr/bin/python3 - "$IMAGES" <<'EOF'
import sys
import numpy as np
from PIL import Image
rng = np.random.default_rng(1)
for i in range(int(sys.argv[1])):
    Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).save("images/%03d.jpg" % i)
EOF
OPTS=(--resnet-weights r.h5 --vgg-weights v.h5 --input-size "$SIZE" --batch 8)
now() { date +%s.%N; }
rate() { /usr/bin/python3 -c "print('%.3f' % ($IMAGES / ($2 - $1)))"; }
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores," \
  "widest ISA: $(grep -o -m1 -E 'avx512f|avx2' /proc/cpuinfo || echo none)"
echo "$IMAGES images at $SIZE, exact mode, batch 8"
for ((r = 1; r <= ROUNDS; r++)); do
  t0=$(now)
  "$FUSENET" embed "${OPTS[@]}" --threads 2 --output one.npy images 2>/dev/null
  t1=$(now)
  rm -rf sh && mkdir sh
  "$FUSENET" embed "${OPTS[@]}" --threads 1 --shard 0/2 --output-dir sh images 2>/dev/null &
  a=$!
  "$FUSENET" embed "${OPTS[@]}" --threads 1 --shard 1/2 --output-dir sh images 2>/dev/null &
  b=$!
  wait "$a" "$b"
  t2=$(now)
  echo "round $r: 1 process x 2 threads $(rate "$t0" "$t1") images/s; 2 shards x 1 thread $(rate "$t1" "$t2") images/s"
done
"$FUSENET" merge sh --output two.npy --names two.txt 2>/dev/null
/usr/bin/python3 -c "
import numpy as np
a, b = np.load('one.npy'), np.load('two.npy')
print('2 threads vs 2 shards of 1 thread: max |difference| %.2e over %d rows' % (abs(a - b).max(), len(a)))"
