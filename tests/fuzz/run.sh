#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) in build-fuzz and fuzzes each
# one for a bounded time, starting from a scratch copy of its committed corpus
# (tests/fuzz/corpus/<target> is never written). Exit status is non-zero if a
# target crashes, leaks, hangs or runs out of memory in our code; the failing
# input is left in build-fuzz/fuzz-run/<target>/artifacts/ (minimise it with
# `fuzz_<target> -minimize_crash=1 -exact_artifact_path=OUT INPUT`, then commit
# it under tests/fuzz/regressions/<target>/, where test_fuzz_regressions replays it).
#
# Targets: npy (raw .npy bytes), image (raw PNG/JPEG bytes), h5 (raw HDF5 bytes,
# read by our own HDF5 parser), h5_keras (valid HDF5 files built by libhdf5
# from the input, to fuzz our reading of the Keras layout), keras3 (Keras 3
# .weights.h5 files built the same way: the Keras 3 resolver, sub-models), zip
# (raw .keras archive bytes: libzip and our size checks), json (the done
# files of sharded runs, read by the CLI's JSON reader) and calib (calibration
# files of int8 mode). Any finding fails.
#
# Usage: tests/fuzz/run.sh [seconds per target]     (default 60; nproc targets run at once)
# Environment: CC (default clang), FUSENET_FUZZ_BUILD (default build-fuzz),
#              FUSENET_FUZZ_TARGETS (default "npy image h5_keras h5 keras3 zip json calib").
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-60}
BUILD=${FUSENET_FUZZ_BUILD:-build-fuzz}
TARGETS=${FUSENET_FUZZ_TARGETS:-npy image h5_keras h5 keras3 zip json calib}
JOBS=$(nproc)
# A fixed seed keeps CI runs repeatable (set FUSENET_FUZZ_SEED=0 for a random one).
COMMON="-max_total_time=$SECS -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 -seed=${FUSENET_FUZZ_SEED:-1}"

CC=${CC:-clang} cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFUSENET_FUZZ=ON \
  -DFUSENET_SANITIZE=ON -DFUSENET_BUILD_EXAMPLES=OFF >/dev/null
for t in $TARGETS; do
  cmake --build "$BUILD" -j"$JOBS" --target "fuzz_$t" >/dev/null
done

# One target: fuzzes it and writes its report to $run.report and, if it found nothing, $run/ok.
fuzz_one() {
  local t=$1 run="$BUILD/fuzz-run/$1" bin="$BUILD/tests/fuzz_$1"
  rm -rf "$run"
  mkdir -p "$run/corpus" "$run/artifacts"
  if [ -d "tests/fuzz/corpus/$t" ]; then cp "tests/fuzz/corpus/$t"/* "$run/corpus/"; fi
  {
    echo "fuzz_$t: ${SECS}s from $(ls "$run/corpus" | wc -l) seeds"
    if ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
       "$bin" $COMMON -artifact_prefix="$run/artifacts/" "$run/corpus" >"$run/log" 2>&1; then
      touch "$run/ok"
      grep -E '^stat::(number_of_executed_units|peak_rss_mb)|^#[0-9]+[[:space:]]+DONE' "$run/log" | sed 's/^/  /' || true
    else
      echo "  FAILED; log: $run/log; input(s):"
      ls "$run/artifacts" | sed "s|^|    $run/artifacts/|"
      grep -E 'ERROR|SUMMARY|contract violated' "$run/log" | head -5 | sed 's/^/  /' || true
    fi
  } >"$run.report"
}

# As many targets at once as there are cores (each fuzzer is one process on
# one core), reports printed in target order.
set -- $TARGETS
while [ $# -gt 0 ]; do
  batch=()
  for _ in $(seq "$JOBS"); do
    [ $# -gt 0 ] || break
    batch+=("$1")
    fuzz_one "$1" &
    shift
  done
  wait
  for t in "${batch[@]}"; do cat "$BUILD/fuzz-run/$t.report"; done
done

status=0
for t in $TARGETS; do
  [ -e "$BUILD/fuzz-run/$t/ok" ] || status=1
done
exit $status
