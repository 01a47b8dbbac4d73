#!/usr/bin/env bash
# Builds libfusenet twice (release, and AddressSanitizer + UndefinedBehaviorSanitizer)
# and runs the whole test suite: every test in the release build, the unit tests in
# the sanitizer build. Exit status is non-zero if anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=$(nproc)
# The suite needs under 1 GB of disk at its peak (two builds, weight files made by the tests,
# each test removing its large files when it passes); what is free is printed before each part.
disk() { echo "disk: $(df -Ph . | awk 'NR == 2 {print $4}') free before $1"; }

disk "the release build and its tests"

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$JOBS"
(cd build && ctest --output-on-failure -j1)

disk "the sanitizer build and its unit tests"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DFUSENET_SANITIZE=ON -DFUSENET_BUILD_EXAMPLES=OFF >/dev/null
cmake --build build-asan -j"$JOBS"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -L unit -j1)

# Fuzzing (clang with libFuzzer): every target of tests/fuzz for FUSENET_FUZZ_SECONDS
# seconds (default 60) from a copy of its corpus, in build-fuzz.
if command -v clang >/dev/null 2>&1; then
  disk "fuzzing"
  bash tests/fuzz/run.sh "${FUSENET_FUZZ_SECONDS:-60}"
else
  echo "fuzzing skipped: clang not found"
fi
