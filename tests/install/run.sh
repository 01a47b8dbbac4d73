#!/usr/bin/env bash
# Installs a build of libfusenet into a fresh prefix under the build tree, then
# builds tests/install/consumer.c against the installed copy only:
#   1. README's pkg-config command for the shared library (run with
#      LD_LIBRARY_PATH = the prefix's libdir)
#   2. README's pkg-config command for libfusenet.a (fusenet-static)
#   3. a separate CMake project: find_package(fusenet) -> fusenet::fusenet
#      (and fusenet::fusenet_static through COMPONENTS static)
# and checks what each program prints.
# Usage: run.sh BUILD_DIR SOURCE_DIR
# Environment: CC, CMAKE (default cc, cmake), CONSUMER_CFLAGS (extra flags, e.g. sanitizers).
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 BUILD_DIR SOURCE_DIR" >&2
    exit 2
fi
BUILD=$(cd "$1" && pwd)
SRC=$(cd "$2" && pwd)
CC=${CC:-cc}
CMAKE=${CMAKE:-cmake}
CONSUMER_CFLAGS=${CONSUMER_CFLAGS:-}
WARN="-std=c11 -Wall -Wextra -Werror -Wpedantic -Wstrict-prototypes -Wmissing-prototypes"
WORK=$BUILD/install-test
PREFIX=$WORK/prefix
fail() { echo "install_consumer: $*" >&2; exit 1; }

command -v pkg-config >/dev/null || fail "pkg-config is not installed (apt-get install pkg-config)"
rm -rf "$WORK"
mkdir -p "$WORK"

# ---- install -----------------------------------------------------------------
"$CMAKE" --install "$BUILD" --prefix "$PREFIX" >"$WORK/install.log" || { cat "$WORK/install.log" >&2; fail "cmake --install failed"; }
echo "== installed into $PREFIX"
(cd "$PREFIX" && find . \( -type f -o -type l \) | LC_ALL=C sort | sed 's|^\./|  |')

PC=$(find "$PREFIX" -name fusenet.pc -path '*/pkgconfig/*' | head -n 1)
[ -n "$PC" ] || fail "no pkgconfig/fusenet.pc installed"
LIBDIR=$(dirname "$(dirname "$PC")")
[ -f "$PREFIX/include/fusenet.h" ] || fail "include/fusenet.h not installed"
[ -x "$PREFIX/bin/fusenet" ] || fail "bin/fusenet not installed"
[ -f "$LIBDIR/libfusenet.a" ] || fail "libfusenet.a not installed"
[ -f "$LIBDIR/pkgconfig/fusenet-static.pc" ] || fail "pkgconfig/fusenet-static.pc not installed"
! find "$PREFIX" -name 'libfusenet_tools*' | grep -q . || fail "the internal tools library was installed"
for f in fusenetConfig.cmake fusenetConfigVersion.cmake fusenetTargets.cmake fusenetStaticTargets.cmake; do
    [ -f "$LIBDIR/cmake/fusenet/$f" ] || fail "cmake/fusenet/$f not installed"
done

export PKG_CONFIG_PATH="$LIBDIR/pkgconfig"
VERSION=$(pkg-config --modversion fusenet)
MAJOR=${VERSION%%.*}
[ "$(readlink "$LIBDIR/libfusenet.so")" = "libfusenet.so.$MAJOR" ] || fail "libfusenet.so does not link to libfusenet.so.$MAJOR"
[ "$(readlink "$LIBDIR/libfusenet.so.$MAJOR")" = "libfusenet.so.$VERSION" ] || fail "libfusenet.so.$MAJOR does not link to libfusenet.so.$VERSION"
[ -f "$LIBDIR/libfusenet.so.$VERSION" ] && [ ! -L "$LIBDIR/libfusenet.so.$VERSION" ] || fail "libfusenet.so.$VERSION missing"
if command -v readelf >/dev/null; then
    readelf -d "$LIBDIR/libfusenet.so.$VERSION" | grep -q "SONAME.*\[libfusenet.so.$MAJOR\]" ||
        fail "libfusenet.so.$VERSION has no soname libfusenet.so.$MAJOR"
fi
# the installed libraries as the built ones: prefixed symbols only, no libhdf5, curl or crypto needed
bash "$SRC/tests/symbols.sh" "$LIBDIR/libfusenet.a" "$LIBDIR/libfusenet.so.$VERSION" "$PREFIX/include/fusenet.h" ||
    fail "installed libraries: symbols or needed libraries (above)"
"$PREFIX/bin/fusenet" layers --model resnet50 >"$WORK/fusenet-layers.out" || fail "installed bin/fusenet does not run"
[ "$(wc -l <"$WORK/fusenet-layers.out")" -eq 175 ] || fail "installed bin/fusenet: not 175 layers"

cat >"$WORK/expected.out" <<EXPECTED
version $VERSION (header $VERSION)
resnet50 layers 175
conv4_block6_out Activation 14x14x1024
missing file FUSENET_ERR_IO
EXPECTED

check() { # name, then the command to run
    local name=$1
    shift
    "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" || { cat "$WORK/$name.out" "$WORK/$name.err" >&2; fail "$name failed"; }
    echo "== $name"
    sed 's/^/  /' "$WORK/$name.out"
    diff -u "$WORK/expected.out" "$WORK/$name.out" >&2 || fail "$name: unexpected output"
}
needs_libfusenet_so() { readelf -d "$1" | grep -q "NEEDED.*\[libfusenet.so.$MAJOR\]"; }

# ---- 1, 2. pkg-config, the two commands README.md gives, run as written there -------
# (app.c being consumer.c); the first links libfusenet.so, the second libfusenet.a.
mapfile -t README_CC < <(grep -E '^cc app\.c \$\(pkg-config [^)]*\)' "$SRC/README.md" | sed 's/ *#.*//')
[ "${#README_CC[@]}" -eq 2 ] || fail "README.md: expected 2 'cc app.c \$(pkg-config ...)' lines, found ${#README_CC[@]}"
for k in 0 1; do
    name=$([ "$k" -eq 0 ] && echo consumer_pc || echo consumer_pc_static)
    line=${README_CC[$k]}
    echo "== README: $line"
    # the line's own words: cc -> $CC (plus warnings), app.c -> consumer.c, -o added
    cmd=${line/#cc app.c/\"\$CC\" \$WARN \$CONSUMER_CFLAGS \"\$SRC/tests/install/consumer.c\" -o \"\$WORK/$name\"}
    eval "$cmd" || fail "README command failed: $line"
    if command -v readelf >/dev/null; then
        if [ "$k" -eq 0 ]; then
            needs_libfusenet_so "$WORK/$name" || fail "$name ($line) does not need libfusenet.so.$MAJOR"
        else
            ! needs_libfusenet_so "$WORK/$name" || fail "$name ($line) needs libfusenet.so: not a static link"
        fi
    fi
done
check consumer_pc env LD_LIBRARY_PATH="$LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$WORK/consumer_pc"
check consumer_pc_static "$WORK/consumer_pc_static"

# ---- 3. CMake package ----------------------------------------------------------------
"$CMAKE" -S "$SRC/tests/install" -B "$WORK/cmake" -DCMAKE_PREFIX_PATH="$PREFIX" \
    -DCMAKE_C_COMPILER="$CC" -DCMAKE_C_FLAGS="$WARN $CONSUMER_CFLAGS" -DCMAKE_BUILD_TYPE=Release \
    >"$WORK/cmake-configure.log" 2>&1 || { cat "$WORK/cmake-configure.log" >&2; fail "consumer project: configure failed"; }
FOUND_DIR=$(sed -n 's/^fusenet_DIR:PATH=//p' "$WORK/cmake/CMakeCache.txt")
[ "$FOUND_DIR" = "$LIBDIR/cmake/fusenet" ] || fail "find_package(fusenet) found $FOUND_DIR, not the test prefix"
grep "^-- fusenet " "$WORK/cmake-configure.log" | sed "s|$PREFIX|<prefix>|"
"$CMAKE" --build "$WORK/cmake" >"$WORK/cmake-build.log" 2>&1 || { cat "$WORK/cmake-build.log" >&2; fail "consumer project: build failed"; }
if command -v readelf >/dev/null; then
    needs_libfusenet_so "$WORK/cmake/consumer" || fail "cmake consumer does not need libfusenet.so.$MAJOR"
    ! needs_libfusenet_so "$WORK/cmake/consumer_static" || fail "cmake consumer_static needs libfusenet.so"
fi
# No LD_LIBRARY_PATH: CMake gives the build-tree executable an rpath to the imported library.
check cmake_consumer "$WORK/cmake/consumer"
check cmake_consumer_static "$WORK/cmake/consumer_static"

echo "install_consumer: all consumers OK"
