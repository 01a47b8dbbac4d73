#!/usr/bin/env bash
# What the built libraries show a program that links them:
#   libfusenet.a   every global symbol is fusenet_* (public, declared in
#                  include/fusenet.h) or fusenet__* (internal): nothing to clash
#                  with a user's own add() or free_all();
#   libfusenet.so  exports only the public fusenet_* names (no fusenet__*), each
#                  declared in include/fusenet.h, and needs no libhdf5, curl or
#                  crypto library (libzip, for .keras archives, is expected; its own
#                  libcrypto is libzip's, not ours).
# Usage: symbols.sh LIBFUSENET.a LIBFUSENET.so FUSENET.h
# Prints one line per offending symbol or library and exits 1 if there is any.
set -euo pipefail

if [ $# -ne 3 ]; then
    echo "usage: $0 LIBFUSENET.a LIBFUSENET.so FUSENET.h" >&2
    exit 2
fi
STATIC=$1 SHARED=$2 HEADER=$3
for tool in nm readelf; do
    command -v "$tool" >/dev/null || { echo "symbols: $tool not found (binutils)" >&2; exit 1; }
done
bad=0
complain() { echo "symbols: $*"; bad=1; }

# Names a sanitizer or the linker adds on its own.
tool_made='^(__odr_asan|__asan|__ubsan|__sancov|__start_|__stop_|_init$|_fini$|_edata$|_end$|__bss_start$)'
declared() { grep -Eq "\\b$1\\s*\\(" "$HEADER"; }

# ---- the archive: defined global symbols (nm -g: the upper-case kinds) ----------
n_static=0
while read -r kind name; do
    [[ $name =~ $tool_made ]] && continue
    n_static=$((n_static + 1))
    case $name in
    fusenet__?*) ;;
    fusenet_?*) declared "$name" || complain "$STATIC: $name ($kind) is public-looking but not declared in $HEADER" ;;
    *) complain "$STATIC: global symbol $name ($kind) has neither the fusenet_ nor the fusenet__ prefix" ;;
    esac
done < <(nm -g --defined-only "$STATIC" | awk 'NF == 3 { print $2, $3 }')
[ "$n_static" -gt 0 ] || complain "$STATIC: no global symbols at all"

# ---- the shared library: its dynamic symbol table ----------------------------------
n_shared=0
while read -r kind name; do
    [[ $name =~ $tool_made ]] && continue
    n_shared=$((n_shared + 1))
    case $name in
    fusenet__*) complain "$SHARED exports the internal $name ($kind)" ;;
    fusenet_?*) declared "$name" || complain "$SHARED exports $name ($kind), which $HEADER does not declare" ;;
    *) complain "$SHARED exports $name ($kind) without the fusenet_ prefix" ;;
    esac
done < <(nm -D --defined-only "$SHARED" | awk 'NF == 3 { print $2, $3 }')
[ "$n_shared" -gt 0 ] || complain "$SHARED: exports nothing"

# ---- what the shared library needs --------------------------------------------------
while read -r lib; do
    case $lib in
    *hdf5* | *curl* | *crypto* | *libssl*) complain "$SHARED needs $lib" ;;
    esac
done < <(readelf -d "$SHARED" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')

if [ "$bad" -ne 0 ]; then exit 1; fi
echo "symbols: $n_static global symbols in $(basename "$STATIC"), $n_shared exported by $(basename "$SHARED"), all prefixed; no libhdf5, curl or crypto needed"
