#!/usr/bin/env bash
# scripts/setup.sh [run|test|bench|bench-http|format|pkg]...
#
# Makes sure the Debian packages a make target needs are installed. Every Makefile target
# calls this first, so it must be cheap when nothing is missing: it only asks dpkg, and
# touches apt (one `apt-get update`, one install) only when something is absent.
# As root it installs what is missing; otherwise it prints the command to run and fails.
set -euo pipefail

# node-llhttp: the HTTP parser's C sources, compiled into examples/hello_server.
run_pkgs=(build-essential cmake node-llhttp)
# make install/package/docs and their tests: pkg-config and file for the outside builds,
# abigail-tools (abidw, abidiff) for the ABI check, dpkg-dev and fakeroot for CPack's
# Debian packages (dpkg-shlibdeps), doxygen for the reference, chromium for its
# screenshot, python3 to read the screenshot's pixels.
pkg_pkgs=("${run_pkgs[@]}" pkg-config file abigail-tools dpkg-dev fakeroot doxygen chromium python3)
# gcc-aarch64-linux-gnu + libc6-dev-arm64-cross + qemu-user: the aarch64 cross build and
# its tests; clang: libFuzzer targets; gdb, gdb-multiarch: tools/gdb/goro.py's test
# (gdb_goroutines), natively and on the aarch64 build under qemu; python3:
# tests/trace_check.py reads trace files.
test_pkgs=("${run_pkgs[@]}" valgrind gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user clang
    gdb gdb-multiarch python3 "${pkg_pkgs[@]}")
bench_pkgs=("${run_pkgs[@]}" golang-go)
# scripts/bench_http.sh: wrk drives hello_server, Go's net/http and nginx.
bench_http_pkgs=("${run_pkgs[@]}" golang-go wrk nginx-light)
format_pkgs=(clang-format)

[ $# -gt 0 ] || set -- run

wanted=()
for target in "$@"; do
    case "$target" in
    run) wanted+=("${run_pkgs[@]}") ;;
    test) wanted+=("${test_pkgs[@]}") ;;
    bench) wanted+=("${bench_pkgs[@]}") ;;
    bench-http) wanted+=("${bench_http_pkgs[@]}") ;;
    format) wanted+=("${format_pkgs[@]}") ;;
    pkg) wanted+=("${pkg_pkgs[@]}") ;;
    *)
        echo "usage: $0 [run|test|bench|bench-http|format|pkg]..." >&2
        exit 2
        ;;
    esac
done

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "setup.sh: not a Debian-based system; cannot check packages." >&2
    echo "setup.sh: make sure the equivalents of these are installed: ${wanted[*]}" >&2
    exit 0
fi

missing=()
for pkg in "${wanted[@]}"; do
    # A package that was removed but not purged reports "deinstall ok config-files".
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    if [ "$status" != "install ok installed" ]; then
        case " ${missing[*]} " in *" $pkg "*) ;; *) missing+=("$pkg") ;; esac
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

echo "setup.sh: missing packages for '$*': ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh: not root, so not installing them. Run:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    echo "setup.sh: then re-run the make target." >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "+ apt-get update"
apt-get update -q
echo "+ apt-get install -y --no-install-recommends ${missing[*]}"
apt-get install -q -y --no-install-recommends "${missing[@]}" </dev/null

for pkg in "${missing[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    if [ "$status" != "install ok installed" ]; then
        echo "setup.sh: $pkg is still not installed after apt-get install" >&2
        exit 1
    fi
done
echo "setup.sh: installed ${missing[*]}"
