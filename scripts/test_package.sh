#!/usr/bin/env bash
# scripts/test_package.sh [PKG_BUILD_DIR]   (make test-package; default build-pkg)
#
# Checks the Debian packages `make package` made in PKG_BUILD_DIR/packages:
#   1. metadata: names libgoro<ABI> and libgoro-dev, version <release>-1, this machine's
#      architecture, sections; libgoroN depends on libc6 (from dpkg-shlibdeps), -dev on
#      exactly that libgoroN; libgoroN's shlibs file names itself for libgoro.so.N and
#      runs ldconfig from its maintainer scripts
#   2. contents: libgoroN holds the shared library and its SONAME link and nothing else;
#      libgoro-dev the header, libgoro.a, the libgoro.so link, goro.pc and the CMake
#      package, and not the shared library itself
#   3. they would install cleanly on this system: every dependency of libgoroN is
#      installed in a version that satisfies it, and dpkg --dry-run -i of both unpacks
#      without a conflict with an installed package's files; nothing is installed
#   4. both extracted (dpkg-deb -x) into a temporary root, and tests/outside/hello.c built
#      against that root with pkg-config (PKG_CONFIG_SYSROOT_DIR) and with CMake's
#      find_package (goro::goro, goro::static), then run
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-pkg}
pkgdir="$build/packages"

fail() {
    echo "test_package: FAIL: $*" >&2
    exit 1
}
step() { echo "test_package: $*"; }

# shellcheck source=scripts/version.sh
. scripts/version.sh
arch=$(dpkg --print-architecture)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
debver="$version-1"
libpkg="libgoro$soversion"
lib_deb="$pkgdir/${libpkg}_${debver}_$arch.deb"
dev_deb="$pkgdir/libgoro-dev_${debver}_$arch.deb"
for deb in "$lib_deb" "$dev_deb"; do
    [ -f "$deb" ] || fail "$deb was not built (found: $(ls "$pkgdir" 2>/dev/null | tr '\n' ' '))"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/goro-package.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# ---------------------------------------------------------------- 1. metadata
field() { dpkg-deb -f "$1" "$2"; }
expect_field() { # DEB FIELD VALUE
    local got
    got=$(field "$1" "$2")
    [ "$got" = "$3" ] || fail "$(basename "$1"): $2 is '$got', expected '$3'"
}
step "metadata"
expect_field "$lib_deb" Package "$libpkg"
expect_field "$dev_deb" Package libgoro-dev
for deb in "$lib_deb" "$dev_deb"; do
    expect_field "$deb" Version "$debver"
    expect_field "$deb" Architecture "$arch"
    [ -n "$(field "$deb" Maintainer)" ] || fail "$(basename "$deb") has no Maintainer"
done
expect_field "$lib_deb" Section libs
expect_field "$dev_deb" Section libdevel
expect_field "$dev_deb" Depends "$libpkg (= $debver)"
field "$lib_deb" Depends | grep -Eq '(^|, )libc6 \(>= [0-9.]+\)' ||
    fail "$libpkg does not depend on libc6 (Depends: '$(field "$lib_deb" Depends)')"

dpkg-deb -e "$lib_deb" "$tmp/control"
[ -f "$tmp/control/shlibs" ] || fail "$libpkg has no shlibs file"
shlibs=$(cat "$tmp/control/shlibs")
[ "$shlibs" = "libgoro $soversion $libpkg (>= $debver)" ] ||
    fail "$libpkg's shlibs is '$shlibs', expected 'libgoro $soversion $libpkg (>= $debver)'"
grep -q ldconfig "$tmp/control/postinst" || fail "$libpkg's postinst does not run ldconfig"

# ---------------------------------------------------------------- 2. contents
step "contents"
contents() { dpkg-deb -c "$1" | awk '{print $6}' | sed 's|^\./||' | grep -v '/$' | sort; }
libdir="usr/lib/$multiarch"
printf '%s\n' "$libdir/libgoro.so.$soversion" "$libdir/libgoro.so.$version" | sort >"$tmp/want_lib"
contents "$lib_deb" >"$tmp/got_lib"
diff -u "$tmp/want_lib" "$tmp/got_lib" >&2 || fail "$libpkg holds other files than the shared library"
contents "$dev_deb" >"$tmp/got_dev"
for f in usr/include/goro.h "$libdir/libgoro.a" "$libdir/libgoro.so" "$libdir/pkgconfig/goro.pc" \
    usr/share/goro/gdb/goro.py "usr/share/gdb/auto-load/$libdir/libgoro.so.$version-gdb.py" \
    "$libdir/cmake/goro/goroConfig.cmake" "$libdir/cmake/goro/goroConfigVersion.cmake" \
    "$libdir/cmake/goro/goroTargets.cmake"; do
    grep -qx "$f" "$tmp/got_dev" || fail "libgoro-dev lacks $f"
done
# The gdb extension's auto-load copy is named after the library (gdb finds it so), but it
# is not the library.
if grep -v '^usr/share/gdb/auto-load/' "$tmp/got_dev" | grep -q "libgoro\.so\.[0-9]"; then
    fail "libgoro-dev holds the shared library too: $(grep -v '^usr/share/gdb/auto-load/' \
        "$tmp/got_dev" | grep "libgoro\.so\.[0-9]")"
fi

# ---------------------------------------------------------------- 3. would it install
step "dependencies of $libpkg on this system"
# Depends: "a (>= 1), b" -> one "name op version" line each (dpkg --dry-run does not check
# them: it stops after unpacking).
field "$lib_deb" Depends | tr ',' '\n' | sed 's/^ *//; s/[()]//g' >"$tmp/depends"
while read -r dep op want; do
    have=$(dpkg-query -W -f='${Version}' "$dep" 2>/dev/null) || fail "$libpkg needs $dep, not installed"
    if [ -n "$op" ]; then
        dpkg --compare-versions "$have" "$(sed 's/>=/ge/; s/<=/le/; s/>>/gt/; s/<</lt/; s/^=$/eq/' <<<"$op")" "$want" ||
            fail "$libpkg needs $dep $op $want, $have is installed"
    fi
done <"$tmp/depends"
step "dpkg --dry-run -i (no file conflicts; installs nothing)"
if ! dpkg --dry-run -i "$lib_deb" "$dev_deb" >"$tmp/dryrun.log" 2>&1; then
    fail "the packages would not install: $(cat "$tmp/dryrun.log")"
fi

# ---------------------------------------------------------------- 4. build against them
root="$tmp/root"
dpkg-deb -x "$lib_deb" "$root"
dpkg-deb -x "$dev_deb" "$root"
real="$root/$libdir/libgoro.so.$version"
file -L "$real" | grep -q "ELF .* shared object" || fail "$(file -L "$real")"
soname=$(readelf -d "$real" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libgoro.so.$soversion" ] || fail "SONAME is '$soname', not libgoro.so.$soversion"
[ -e "$root/$libdir/libgoro.so" ] || fail "the libgoro.so link does not resolve in the extracted root"
grep -qx "prefix=/usr" "$root/$libdir/pkgconfig/goro.pc" || fail "goro.pc does not say prefix=/usr"

check_hello() { # BINARY (run with the extracted library)
    LD_LIBRARY_PATH="$root/$libdir" "$1" >"$tmp/out" || fail "$1 failed: $(cat "$tmp/out")"
    grep -qx "total 5000050000" "$tmp/out" || fail "$1: wrong output: $(cat "$tmp/out")"
    grep -qx "version $version" "$tmp/out" || fail "$1: did not report version $version"
}

step "pkg-config build against the extracted packages"
# The sysroot makes pkg-config put the root in front of /usr/include and /usr/lib/...;
# ALLOW_SYSTEM_* keeps it from dropping those as the system's own directories.
pc_env=(PKG_CONFIG_LIBDIR="$root/$libdir/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$root"
    PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1 PKG_CONFIG_ALLOW_SYSTEM_LIBS=1)
pc_flags=$(env "${pc_env[@]}" pkg-config --cflags --libs goro)
case "$pc_flags" in *"-I$root/usr/include"*"-L$root/$libdir"*) ;;
*) fail "pkg-config --cflags --libs goro gave '$pc_flags'" ;;
esac
# shellcheck disable=SC2086
cc -o "$tmp/hello_pc" tests/outside/hello.c $pc_flags
readelf -d "$tmp/hello_pc" | grep -q "NEEDED.*\[libgoro\.so\.$soversion\]" ||
    fail "hello_pc does not need libgoro.so.$soversion"
check_hello "$tmp/hello_pc"

step "CMake build against the extracted packages"
cmake -S tests/outside -B "$tmp/outside" -DCMAKE_PREFIX_PATH="$root/usr" >"$tmp/cmake.log" ||
    fail "configure: $(cat "$tmp/cmake.log")"
grep -q "goro $version from $root/$libdir/cmake/goro" "$tmp/cmake.log" ||
    fail "find_package did not find the extracted goro: $(cat "$tmp/cmake.log")"
cmake --build "$tmp/outside" -j"${JOBS:-2}" >"$tmp/build.log" || fail "build: $(cat "$tmp/build.log")"
readelf -d "$tmp/outside/hello" | grep -q "NEEDED.*\[libgoro\.so\.$soversion\]" ||
    fail "hello (CMake, goro::goro) does not need libgoro.so.$soversion"
if readelf -d "$tmp/outside/hello_static" | grep -q "NEEDED.*libgoro"; then
    fail "hello_static (CMake, goro::static) needs libgoro.so"
fi
check_hello "$tmp/outside/hello"
check_hello "$tmp/outside/hello_static"

echo "test_package: PASS ($(basename "$lib_deb"), $(basename "$dev_deb"))"
