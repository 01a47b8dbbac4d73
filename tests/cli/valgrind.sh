#!/usr/bin/env bash
# valgrind.sh - memcheck on the fusenet tool's main paths and on failing runs
# from the bad-input catalogue (hostile.py).
#
# usage: valgrind.sh FUSENET WORKDIR
#
# Every run must end with zero memcheck errors and no definitely or
# indirectly lost block (--error-exitcode=99 with
# --errors-for-leak-kinds=definite,indirect). "Still reachable" and
# "possibly lost" blocks are not errors: oneDNN, OpenMP and HDF5 keep
# global state (thread pools, JIT caches, library-wide tables) until exit.
# valgrind.supp, beside this script, is used when present; it may cover
# only third-party initialisation, never our own frames.
#
# Inputs are tiny (1x32x32x3) and the taps early in the networks, except one
# fuse run through the default taps, because oneDNN is slow under valgrind.
# Prints one line per run and last `valgrind: N passed, M failed`.
set -u

if [ $# -ne 2 ]; then
    echo "usage: $0 FUSENET WORKDIR" >&2
    exit 2
fi
FUSENET=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
WORK=$2
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=$HERE/../data
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

if ! command -v valgrind >/dev/null 2>&1; then
    echo "valgrind: not installed" >&2
    exit 2
fi

mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
LOGS=$WORK/logs
rm -rf "$LOGS" "$WORK/out"
mkdir -p "$LOGS" "$WORK/out" "$WORK/images"

# valgrind does not implement AVX-512; keep oneDNN's JIT at AVX2 so that the
# kernels it generates are ones valgrind can run (oneDNN 2.x reads both names).
export ONEDNN_MAX_CPU_ISA=AVX2 DNNL_MAX_CPU_ISA=AVX2
export OMP_NUM_THREADS=2
unset FUSENET_MODELS

VG=(valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect
    --errors-for-leak-kinds=definite,indirect --error-exitcode=99 --num-callers=40)
if [ -f "$HERE/valgrind.supp" ]; then
    VG+=("--suppressions=$HERE/valgrind.supp")
fi

passed=0
failed=0
t_start=$(date +%s)

# run NAME EXPECTED_STATUS fusenet-args...  (EXPECTED_STATUS: 0, or "fail" for any status in 1..98)
run() {
    local name=$1 expect=$2
    shift 2
    local log=$LOGS/$name.log t0 rc why=""
    t0=$(date +%s)
    (cd "$WORK/out" && "${VG[@]}" --log-file="$log" "$FUSENET" "$@" >"$LOGS/$name.stdout" 2>"$LOGS/$name.stderr")
    rc=$?
    if [ "$rc" -eq 99 ]; then
        why="memcheck errors or leaks (see $log)"
    elif [ "$rc" -ge 128 ]; then
        why="killed by a signal (status $rc)"
    elif [ "$expect" = 0 ] && [ "$rc" -ne 0 ]; then
        why="status $rc, expected success: $(head -c 300 "$LOGS/$name.stderr")"
    elif [ "$expect" = fail ] && [ "$rc" -eq 0 ]; then
        why="status 0, expected a failure"
    elif ! grep -q "ERROR SUMMARY: 0 errors" "$log"; then
        why="no clean ERROR SUMMARY in $log"
    fi
    if [ -z "$why" ]; then
        passed=$((passed + 1))
        echo "PASS $name ($(($(date +%s) - t0)) s)"
    else
        failed=$((failed + 1))
        echo "FAIL $name ($(($(date +%s) - t0)) s): $why"
    fi
}

# ---- fixtures: a 1x32x32x3 float32 .npy (seeded, caffe-like values) and two small images ----
"$PY" - "$WORK/x32.npy" <<'EOF'
import random, struct, sys
random.seed(7)
shape = (1, 32, 32, 3)
head = "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }" % (shape,)
head += " " * ((64 - (10 + len(head) + 1) % 64) % 64) + "\n"
n = shape[0] * shape[1] * shape[2] * shape[3]
with open(sys.argv[1], "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head.encode())
    f.write(struct.pack("<%df" % n, *[random.uniform(-124.0, 152.0) for _ in range(n)]))
EOF
cp "$DATA/rgb_37x23.png" "$DATA/photo_61x47.jpg" "$WORK/images/"
X=$WORK/x32.npy
R=$WORK/resnet50.h5
V=$WORK/vgg16.h5

# ---- main paths ----
run make_weights_resnet50 0 make-weights --model resnet50 --seed 3 --output "$R"
run make_weights_vgg16 0 make-weights --model vgg16 --seed 3 --output "$V"
if [ ! -s "$R" ] || [ ! -s "$V" ]; then
    echo "valgrind: cannot go on without the weight files"
    echo "valgrind: $passed passed, $((failed + 1)) failed"
    exit 1
fi
run layers_resnet50_summary 0 layers --model resnet50 --summary
run layers_vgg16_top 0 layers --model vgg16 --top
run tap_resnet50_conv1_relu 0 tap --model resnet50 --weights "$R" --layer conv1_relu --input "$X" --output tap_r.npy
run tap_vgg16_block1_conv1 0 tap --model vgg16 --weights "$V" --layer block1_conv1 --input "$X" --output tap_v.npy
run tap_resnet50_batch_chunks 0 tap --model resnet50 --weights "$R" --layer pool1_pool --input "$X" \
    --output tap_r2.npy --batch 1 --stats
# the one run through the default taps (conv4_block6_out + block5_conv3, resize and concat)
run fuse_input_default_taps 0 fuse --resnet-weights "$R" --vgg-weights "$V" --input "$X" --output fuse.npy --stats
run fuse_images_early_taps 0 fuse --resnet-weights "$R" --vgg-weights "$V" --resnet-layer conv1_relu \
    --vgg-layer block1_conv1 --images "$WORK/images/rgb_37x23.png" "$WORK/images/photo_61x47.jpg" \
    --input-size 32x32 --load-interp bilinear --resize nearest --size max --output fuse_img.npy
# --tap: three early taps from two files, one of them shared
run fuse_tap_three_early 0 fuse --tap "resnet50:$R:conv1_relu" --tap "vgg16:$V:block1_conv1" \
    --tap "resnet50:$R:pool1_pool" --input "$X" --output fuse_tap.npy --batch 1
run fail_tap_17 fail fuse $(for i in $(seq 17); do printf -- '--tap vgg16:%s:block1_conv1 ' "$V"; done) \
    --input "$X" --output fuse_tap17.npy
run bench_early_taps 0 bench --resnet-weights "$R" --vgg-weights "$V" --resnet-layer conv1_relu \
    --vgg-layer block1_conv1 --size 32x32 --iters 1 --profile
# int8 where offered: calibrate, then an int8 fused net (int8 convs, max pool, a residual sum)
if "$FUSENET" info | grep -q "^modes:.* int8"; then
    run calibrate_early_taps 0 calibrate --resnet-weights "$R" --vgg-weights "$V" --resnet-layer conv2_block1_out \
        --vgg-layer block2_conv2 --input "$X" --output cal.txt
    run fuse_int8_early_taps 0 fuse --resnet-weights "$R" --vgg-weights "$V" --resnet-layer conv2_block1_out \
        --vgg-layer block2_conv2 --input "$X" --output fuse8.npy --mode int8 --calibration cal.txt
fi
# embed, similar and viz: when this build has them
if ! "$FUSENET" embed 2>&1 | grep -q "unknown command"; then
    run embed_early_taps 0 embed --resnet-weights "$R" --vgg-weights "$V" --resnet-layer conv1_relu \
        --vgg-layer block1_pool --input-size 32x32 --output emb.npy --names names.txt "$WORK/images"
    run similar_early_taps 0 similar --resnet-weights "$R" --vgg-weights "$V" --resnet-layer conv1_relu \
        --vgg-layer block1_pool --input-size 32x32 --embeddings emb.npy --names names.txt \
        --query "$WORK/images/rgb_37x23.png" -k 2
    run viz_block1_conv1 0 viz --model vgg16 --weights "$V" --layer block1_conv1 \
        --image "$WORK/images/photo_61x47.jpg" --input-size 32x32 --output-size 40x40 --output viz.png
    run embed_strict_bad_image fail embed --resnet-weights "$R" --vgg-weights "$V" --resnet-layer conv1_relu \
        --vgg-layer block1_pool --input-size 32x32 --strict --output emb_bad.npy "$WORK/images" "$X"
fi

# ---- failing runs (own checks) ----
run fail_unknown_layer fail tap --model resnet50 --weights "$R" --layer conv1_rel --input "$X" --output t.npy
run fail_other_network fail tap --model vgg16 --weights "$R" --layer block1_conv1 --input "$X" --output t.npy
run fail_input_too_small fail fuse --resnet-weights "$R" --vgg-weights "$V" --input "$DATA/npy/rank4.npy" \
    --output t.npy
run fail_output_missing_directory fail tap --model vgg16 --weights "$V" --layer block1_conv1 --input "$X" \
    --output no/such/dir/t.npy

# ---- failing runs from the catalogue, each under memcheck ----
CASES='^(weights_(truncated_half|truncated_8|layer_missing|extra_layer|kernel_wrong_shape|int32_refused|nan|nan_batchnorm|old_resnet_naming|old_resnet_naming_mixed|other_network_fuse_swapped|float16_one_layer_resnet|hdf5_not_keras_tap|forged_heap_length_tap)|npy_(truncated_data|header_length_past_eof|big_endian|batch0|height_31|header_not_dict)|image_(png_truncated|jpeg_truncated|png_bad_crc|gif|png_garbage_idat|second_of_three_bad)|layer_unknown_suggests|tap_(layer_missing|weights_missing|and_short_form__vgg_layer|model_empty)|option_(fuse_size_0x5|unknown_command)|output_(is_a_directory|kept_bad_weights|kept_bad_image))$'
t0=$(date +%s)
"$PY" "$HERE/hostile.py" --fusenet "$FUSENET" --workdir "$WORK/hostile" --only "$CASES" \
    --wrapper "${VG[*]} --log-file=$LOGS/hostile.%p.log" --checker-status 99 >"$LOGS/hostile.out" 2>&1
hrc=$?
summary=$(grep -E '^hostile: [0-9]+ passed, [0-9]+ failed$' "$LOGS/hostile.out" | tail -1)
if [ -z "$summary" ]; then
    failed=$((failed + 1))
    echo "FAIL hostile catalogue under memcheck: no summary (status $hrc), see $LOGS/hostile.out"
else
    hp=$(echo "$summary" | sed -E 's/^hostile: ([0-9]+) passed, ([0-9]+) failed$/\1/')
    hf=$(echo "$summary" | sed -E 's/^hostile: ([0-9]+) passed, ([0-9]+) failed$/\2/')
    grep -E '^(PASS|FAIL|SKIP) ' "$LOGS/hostile.out" | sed 's/^/  catalogue: /'
    grep -E '^     ' "$LOGS/hostile.out" | sed 's/^/  catalogue: /'
    passed=$((passed + hp))
    failed=$((failed + hf))
    echo "catalogue under memcheck: $hp passed, $hf failed ($(($(date +%s) - t0)) s)"
fi

# ---- every log once more: no error, no definite/indirect leak, whatever the exit status said ----
bad_logs=$(grep -L "ERROR SUMMARY: 0 errors" "$LOGS"/*.log 2>/dev/null)
leak_logs=$(grep -lE "(definitely|indirectly) lost: [1-9]" "$LOGS"/*.log 2>/dev/null)
for f in $bad_logs $leak_logs; do
    failed=$((failed + 1))
    echo "FAIL log $f reports errors or leaks"
done

echo "valgrind: total time $(($(date +%s) - t_start)) s"
echo "valgrind: $passed passed, $failed failed"
[ "$failed" -eq 0 ] || exit 1
rm -f "$R" "$V"  # kept with the logs when a run failed
