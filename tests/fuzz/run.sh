#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) in build-fuzz and fuzzes each
# one for a bounded time, starting from a scratch copy of its committed corpus
# (tests/fuzz/corpus/<target> is never written). Exit status is non-zero if a
# target crashes, leaks, hangs or runs out of memory in our code; the failing
# input is left in build-fuzz/fuzz-run/<target>/artifacts/ (minimise it with
# `fuzz_<target> -minimize_crash=1 -exact_artifact_path=OUT INPUT`, then commit
# it under tests/fuzz/regressions/<target>/, where test_fuzz_regressions replays it).
#
# Targets: npy, image and h5_keras (HDF5 files built from the input: always valid
# HDF5, fuzzes our reading of the Keras layout) fail on any finding. h5 feeds raw
# bytes to HDF5 itself, and libhdf5 1.10 crashes, hangs and leaks on corrupt files
# within seconds; it runs in fork mode so fuzzing goes on after a crash, and each
# finding is replayed and triaged: if the innermost frame outside the sanitizer
# runtime and libc is in libhdf5, it is reported as an upstream HDF5 issue and
# does not fail the run; anything else fails it.
#
# Usage: tests/fuzz/run.sh [seconds per target]     (default 60)
# Environment: CC (default clang), FUSENET_FUZZ_BUILD (default build-fuzz),
#              FUSENET_FUZZ_TARGETS (default "npy image h5_keras h5").
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-60}
BUILD=${FUSENET_FUZZ_BUILD:-build-fuzz}
TARGETS=${FUSENET_FUZZ_TARGETS:-npy image h5_keras h5}
JOBS=$(nproc)
# A fixed seed keeps CI runs repeatable (set FUSENET_FUZZ_SEED=0 for a random one).
COMMON="-max_total_time=$SECS -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 -seed=${FUSENET_FUZZ_SEED:-1}"

CC=${CC:-clang} cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFUSENET_FUZZ=ON \
  -DFUSENET_SANITIZE=ON -DFUSENET_BUILD_EXAMPLES=OFF >/dev/null
for t in $TARGETS; do
  cmake --build "$BUILD" -j"$JOBS" --target "fuzz_$t" >/dev/null
done

# The innermost stack frame of a report outside the sanitizer/fuzzer runtime and libc.
first_frame() {
  grep -E '^ +#[0-9]+ ' "$1" |
    grep -vE '__interceptor_|__asan|__sanitizer|__ubsan|__lsan|fuzzer::|libc\.so|__pthread_kill|/nptl/|/libc[.-]| in (abort|raise|malloc|calloc|realloc|free|posix_memalign|operator|strdup|strndup|strlen|strnlen|strcmp|strncmp|memcpy|memmove|memset|memcmp) ' |
    head -1 || true
}

status=0
for t in $TARGETS; do
  run="$BUILD/fuzz-run/$t"
  rm -rf "$run"
  mkdir -p "$run/corpus" "$run/artifacts"
  if [ -d "tests/fuzz/corpus/$t" ]; then cp "tests/fuzz/corpus/$t"/* "$run/corpus/"; fi
  echo "fuzz_$t: ${SECS}s from $(ls "$run/corpus" | wc -l) seeds"
  bin="$BUILD/tests/fuzz_$t"
  if [ "$t" != h5 ]; then
    if ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
       "$bin" $COMMON -artifact_prefix="$run/artifacts/" "$run/corpus" >"$run/log" 2>&1; then
      grep -E '^stat::(number_of_executed_units|peak_rss_mb)|^#[0-9]+[[:space:]]+DONE' "$run/log" | sed 's/^/  /'
    else
      status=1
      echo "  FAILED; log: $run/log; input(s):"
      ls "$run/artifacts" | sed "s|^|    $run/artifacts/|"
      grep -E 'ERROR|SUMMARY|contract violated' "$run/log" | head -5 | sed 's/^/  /'
    fi
    continue
  fi
  # raw HDF5 bytes: fork mode, then triage every finding
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1 \
    "$bin" $COMMON -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
      -artifact_prefix="$run/artifacts/" "$run/corpus" >"$run/log" 2>&1 || true
  grep -E '^#[0-9]+: cov' "$run/log" | tail -1 | sed 's/^/  /'
  upstream=0
  for a in "$run/artifacts"/*; do
    [ -e "$a" ] || continue
    # -malloc_limit_mb makes an oversized malloc print its stack, so it can be attributed
    ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1:fast_unwind_on_malloc=0 \
      timeout 120 "$bin" -timeout=10 -rss_limit_mb=4096 -malloc_limit_mb=2048 "$a" >"$a.replay" 2>&1 && continue
    frame=$(first_frame "$a.replay")
    if [[ "$frame" == *libhdf5* ]]; then
      upstream=$((upstream + 1))
    else
      status=1
      echo "  FAILED in our code: $a (replay log $a.replay)"
      grep -E 'ERROR|SUMMARY|contract violated' "$a.replay" | head -3 | sed 's/^/    /'
      echo "    at: ${frame:-?}"
    fi
  done
  [ "$upstream" -eq 0 ] || echo "  $upstream finding(s) inside libhdf5 (upstream HDF5 issues, not failing): $run/artifacts"
done
exit $status
