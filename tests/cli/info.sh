#!/usr/bin/env bash
# `fusenet info`: every field, in order, with values checked against sources of
# our own where the value does not depend on the CPU (version: `fusenet
# version`; oneDNN: the version CMake found; cores: nproc; threads: nproc, or
# OMP_NUM_THREADS when set), and the ISA and modes against what a fast-mode run
# does: where info offers no fast mode, `fusenet bench --mode fast` must fail
# with UNSUPPORTED naming that ISA; where it does, the run must succeed. Then the
# CPU's name against /proc/cpuinfo and the form of the measured peaks (their
# values: test_perf, against oneDNN's gemms).
# Usage: info.sh FUSENET DNNL_VERSION WORKDIR
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 FUSENET DNNL_VERSION WORKDIR" >&2; exit 2; }
FUSENET=$1 DNNL_VERSION=$2 WORK=$3
fail() { echo "cli_info: $*" >&2; exit 1; }
mkdir -p "$WORK"

out=$(env -u OMP_NUM_THREADS "$FUSENET" info) || fail "fusenet info failed"
echo "$out"
keys=$(echo "$out" | sed -n 's/^\([a-z ]*\): .*/\1/p' | head -n 6 | tr '\n' ' ')
[ "$keys" = "version onednn isa cores threads modes " ] || fail "fields are '$keys'"
field() { echo "$out" | sed -n "s|^$1: ||p"; }

[ "fusenet $(field version)" = "$("$FUSENET" version)" ] || fail "version '$(field version)' is not fusenet version's"
[ "$(field onednn | cut -d' ' -f1)" = "$DNNL_VERSION" ] || fail "onednn '$(field onednn)' is not $DNNL_VERSION"
# the version alone, or with the commit oneDNN's build recorded (never a placeholder such as "(N/A)")
[[ "$(field onednn)" =~ ^[0-9]+\.[0-9]+\.[0-9]+( \(commit [0-9a-f]{7,40}\))?$ ]] || fail "onednn '$(field onednn)'"
isa=$(field isa)
[[ $isa =~ ^[a-z0-9_]+$ ]] || fail "isa '$isa' is not one of oneDNN's ISA names"
[ "$(field cores)" = "$(nproc)" ] || fail "cores '$(field cores)', nproc says $(nproc)"
[ "$(field threads)" = "$(nproc)" ] || fail "threads '$(field threads)' without OMP_NUM_THREADS, nproc says $(nproc)"
[ "$(OMP_NUM_THREADS=3 "$FUSENET" info | sed -n 's/^threads: //p')" = 3 ] || fail "threads with OMP_NUM_THREADS=3 is not 3"
modes=$(field modes)
[[ $modes =~ ^exact( fast)?( int8)?$ ]] || fail "modes '$modes'"
if [[ $modes == *int8* ]]; then # the weight range follows the ISA: VNNI sums in 32 bits
    case $isa in
        *vnni* | *bf16* | *amx*) want=127 ;;
        *) want=63 ;;
    esac
    [[ $(field int8) == "weights in [-$want, $want] "* ]] || fail "int8 '$(field int8)' on $isa"
fi

# the CPU as Linux names it (first CPU), where it does
name=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
if [ -n "$name" ]; then
    [[ $(field cpu) == "$name"* ]] || fail "cpu '$(field cpu)', /proc/cpuinfo says '$name'"
fi
# the measured peaks: the FMA one always, the int8 one and its ratio where int8 mode is offered
num='[0-9]+\.[0-9]'
[[ $(field "fma peak") =~ ^(avx512|avx2|c)\ 1\ thread\ $num\ GFLOP/s ]] || fail "fma peak '$(field "fma peak")'"
if [[ $modes == *int8* ]]; then
    [[ $(field "int8 peak") =~ ^(avx512_vnni|avx512|avx2|sse41|c)\ 1\ thread\ $num\ GOP/s ]] ||
        fail "int8 peak '$(field "int8 peak")'"
    if [[ $(field "int8 peak") != c* ]]; then
        [[ $(field "int8 / fma peak") =~ ^[0-9]+\.[0-9]{2}\  ]] || fail "int8 / fma peak '$(field "int8 / fma peak")'"
    fi
else
    [ -z "$(field "int8 peak")" ] || fail "an int8 peak without int8 mode"
fi

"$FUSENET" make-weights --model resnet50 --seed 1 --output "$WORK/r.h5" >/dev/null
"$FUSENET" make-weights --model vgg16 --seed 2 --output "$WORK/v.h5" >/dev/null
set +e
err=$("$FUSENET" bench --resnet-weights "$WORK/r.h5" --vgg-weights "$WORK/v.h5" --size 32x32 --iters 1 --mode fast 2>&1 >/dev/null)
rc=$?
set -e
rm -f "$WORK/r.h5" "$WORK/v.h5"
if [[ $modes == *fast* ]]; then
    [ "$rc" -eq 0 ] || fail "info offers fast mode, but bench --mode fast failed: $err"
    echo "bench --mode fast runs on $isa"
else
    [ "$rc" -eq 1 ] && [[ $err == *UNSUPPORTED* ]] && [[ $err == *"$isa"* ]] && [ "$(echo "$err" | wc -l)" -eq 1 ] ||
        fail "info offers no fast mode on $isa, but bench --mode fast gave status $rc and: $err"
    echo "bench --mode fast refused on $isa: $err"
fi
echo "cli_info: OK"
