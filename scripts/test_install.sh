#!/usr/bin/env bash
# scripts/test_install.sh [BUILD_DIR]   (make test-install; BUILD_DIR defaults to build)
#
# Installs BUILD_DIR into a temporary prefix, as `make install PREFIX=... DESTDIR=...`
# does, and checks what a user gets there:
#   1. the files: libgoro.so.<release>, its SONAME link libgoro.so.<ABI>, libgoro.so,
#      libgoro.a, goro.h, goro.pc, the CMake package; with DESTDIR, everything under
#      DESTDIR and goro.pc naming the prefix without it
#   2. exported symbols: the shared library exports exactly the functions goro.h declares
#      GORO_API, and libgoro.a defines no global symbol outside goro_ / goro__
#   3. tests/outside/hello.c built outside the tree three ways and run: cc with
#      `pkg-config --cflags --libs goro` (linked to libgoro.so.<ABI>), cc with libgoro.a
#      and `pkg-config --static` (no libgoro at run time), and a CMake project using
#      find_package(goro CONFIG) (goro::goro and goro::static), which also builds the
#      examples pi, primes and pipeline, and runs them
#   4. the ABI against the last release's (scripts/check_abi.sh)
# Fails with a message naming the first thing that is wrong.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${1:-build}
build=$(cd "$build" && pwd)

fail() {
    echo "test_install: FAIL: $*" >&2
    exit 1
}
step() { echo "test_install: $*"; }

hdr=include/goro.h
# shellcheck source=scripts/version.sh
. scripts/version.sh
[ -n "$soversion" ] || fail "no set(GORO_SOVERSION N) in CMakeLists.txt"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/goro-install.XXXXXX")
# cmake --install rewrites BUILD_DIR/install_manifest.txt, which `make uninstall` reads:
# put back the one of the user's last real install.
manifest="$build/install_manifest.txt"
[ ! -f "$manifest" ] || cp "$manifest" "$tmp/manifest.saved"
restore_manifest() {
    if [ -f "$tmp/manifest.saved" ]; then cp "$tmp/manifest.saved" "$manifest"; else rm -f "$manifest"; fi
}
trap 'restore_manifest; rm -rf "$tmp"' EXIT

# ---------------------------------------------------------------- 1. the files
step "DESTDIR install (prefix /opt/goro-test under $tmp/stage)"
DESTDIR="$tmp/stage" cmake --install "$build" --prefix /opt/goro-test >"$tmp/destdir.log"
[ -f "$tmp/stage/opt/goro-test/include/goro.h" ] || fail "DESTDIR install: no goro.h under DESTDIR"
[ ! -e /opt/goro-test ] || fail "DESTDIR install wrote outside DESTDIR (/opt/goro-test exists)"
grep -qx 'prefix=/opt/goro-test' "$tmp/stage/opt/goro-test/lib/pkgconfig/goro.pc" ||
    fail "DESTDIR install: goro.pc does not say prefix=/opt/goro-test"

prefix="$tmp/prefix"
step "install into $prefix"
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log"
lib="$prefix/lib"
real="$lib/libgoro.so.$version"
[ -f "$real" ] && [ ! -L "$real" ] || fail "$real is not a regular file"
[ "$(readlink "$lib/libgoro.so.$soversion")" = "libgoro.so.$version" ] ||
    fail "libgoro.so.$soversion does not link to libgoro.so.$version"
[ "$(readlink "$lib/libgoro.so")" = "libgoro.so.$soversion" ] ||
    fail "libgoro.so does not link to libgoro.so.$soversion"
soname=$(readelf -d "$real" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libgoro.so.$soversion" ] || fail "SONAME is '$soname', not libgoro.so.$soversion"
for f in lib/libgoro.a include/goro.h lib/pkgconfig/goro.pc lib/cmake/goro/goroConfig.cmake \
    lib/cmake/goro/goroConfigVersion.cmake lib/cmake/goro/goroTargets.cmake; do
    [ -f "$prefix/$f" ] || fail "$f was not installed"
done
cmp -s "$prefix/include/goro.h" "$hdr" || fail "the installed goro.h differs from $hdr"
if [ -d tools/gdb ] && ls tools/gdb/*.py >/dev/null 2>&1; then
    for py in tools/gdb/*.py; do
        [ -f "$prefix/share/goro/gdb/$(basename "$py")" ] || fail "$py was not installed"
    done
fi

# ---------------------------------------------------------------- 2. symbols
step "exported symbols of libgoro.so"
# The functions goro.h declares GORO_API, one name per line.
sed -n 's/^GORO_API [^(]*[ *]\(goro_[a-z0-9_]*\)(.*/\1/p' "$hdr" | sort -u >"$tmp/declared"
[ "$(wc -l <"$tmp/declared")" -gt 50 ] || fail "found only $(wc -l <"$tmp/declared") GORO_API declarations in $hdr"
nm -D --defined-only "$real" | awk '{print $NF}' | sed 's/@.*//' | sort -u >"$tmp/exported"
if bad=$(grep -v '^goro_[a-z0-9]' "$tmp/exported"); then
    fail "libgoro.so exports symbols outside goro_ (internal goro__ included):"$'\n'"$bad"
fi
if extra=$(comm -13 "$tmp/declared" "$tmp/exported" | grep .); then
    fail "libgoro.so exports symbols goro.h does not declare:"$'\n'"$extra"
fi
if missing=$(comm -23 "$tmp/declared" "$tmp/exported" | grep .); then
    fail "goro.h declares functions libgoro.so does not export:"$'\n'"$missing"
fi
step "  $(wc -l <"$tmp/exported") symbols, exactly goro.h's GORO_API functions"

step "global symbols of libgoro.a"
nm -g --defined-only "$lib/libgoro.a" | awk 'NF == 3 {print $3}' | sort -u >"$tmp/static"
[ -s "$tmp/static" ] || fail "nm found no global symbols in libgoro.a"
if bad=$(grep -v '^goro_' "$tmp/static"); then
    fail "libgoro.a defines global symbols outside goro_/goro__ (they can clash with a program's):"$'\n'"$bad"
fi
step "  $(wc -l <"$tmp/static") symbols, all goro_ or goro__"

# ---------------------------------------------------------------- 3. outside programs
expect_hello() { # NAME OUTPUT_FILE
    grep -qx "total 5000050000" "$2" || fail "$1: wrong output: $(cat "$2")"
    grep -qx "version $version" "$2" || fail "$1: did not report version $version"
}
needs_libgoro() { # BINARY yes|no
    if readelf -d "$1" | grep -q "NEEDED.*\[libgoro\.so\.$soversion\]"; then
        [ "$2" = yes ] || fail "$1 is linked to libgoro.so but should be static"
    else
        [ "$2" = no ] || fail "$1 does not need libgoro.so.$soversion"
    fi
}

export PKG_CONFIG_PATH="$lib/pkgconfig"
unset PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR
[ "$(pkg-config --modversion goro)" = "$version" ] ||
    fail "pkg-config --modversion goro is '$(pkg-config --modversion goro)', not $version"
step "pkg-config build: cc hello.c \$(pkg-config --cflags --libs goro)"
# shellcheck disable=SC2046
cc -o "$tmp/hello_pc" tests/outside/hello.c $(pkg-config --cflags --libs goro)
needs_libgoro "$tmp/hello_pc" yes
if "$tmp/hello_pc" >"$tmp/out" 2>&1; then
    fail "hello_pc ran without LD_LIBRARY_PATH: is it linked against a libgoro outside $prefix?"
fi
LD_LIBRARY_PATH="$lib" "$tmp/hello_pc" >"$tmp/out" || fail "hello_pc failed: $(cat "$tmp/out")"
expect_hello hello_pc "$tmp/out"

step "static build: cc hello.c libgoro.a \$(pkg-config --static --libs-only-other goro)"
# shellcheck disable=SC2046
cc -o "$tmp/hello_static" tests/outside/hello.c $(pkg-config --cflags goro) \
    "$(pkg-config --variable=libdir goro)/libgoro.a" $(pkg-config --static --libs-only-other goro)
needs_libgoro "$tmp/hello_static" no
"$tmp/hello_static" >"$tmp/out" || fail "hello_static failed: $(cat "$tmp/out")"
expect_hello hello_static "$tmp/out"

step "CMake build: find_package(goro CONFIG) in tests/outside, with the examples"
cmake -S tests/outside -B "$tmp/outside" -DCMAKE_PREFIX_PATH="$prefix" \
    -DGORO_EXAMPLES_DIR="$root/examples" >"$tmp/cmake.log" || fail "configure: $(cat "$tmp/cmake.log")"
grep -q "goro $version from $lib/cmake/goro" "$tmp/cmake.log" ||
    fail "find_package did not find goro $version in $prefix: $(cat "$tmp/cmake.log")"
cmake --build "$tmp/outside" -j"${JOBS:-2}" >"$tmp/build.log" || fail "build: $(cat "$tmp/build.log")"
needs_libgoro "$tmp/outside/hello" yes
needs_libgoro "$tmp/outside/hello_static" no
for exe in hello hello_static; do
    "$tmp/outside/$exe" >"$tmp/out" || fail "$exe failed: $(cat "$tmp/out")"
    expect_hello "$exe (CMake)" "$tmp/out"
done
"$tmp/outside/pi" --samples 400000 --goroutines 8 >"$tmp/out" || fail "pi failed"
grep -q "^speedup" "$tmp/out" || fail "pi printed no speedup: $(cat "$tmp/out")"
"$tmp/outside/primes" --n 100 >"$tmp/out" || fail "primes failed"
grep -q "^prime #100 is 541$" "$tmp/out" || fail "primes: $(cat "$tmp/out")"
"$tmp/outside/pipeline" --jobs 2000 --workers 4 >"$tmp/out" || fail "pipeline failed: $(cat "$tmp/out")"
grep -q "sum of the squares of 1..2000 is 2668667000$" "$tmp/out" || fail "pipeline: $(cat "$tmp/out")"
step "  hello (shared and static), pi, primes and pipeline built and ran"

# ---------------------------------------------------------------- 4. ABI
bash scripts/check_abi.sh "$real"

echo "test_install: PASS"
