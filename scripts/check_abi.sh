#!/usr/bin/env bash
# scripts/check_abi.sh LIBGORO_SO          compare with the last release's ABI
# scripts/check_abi.sh --dump LIBGORO_SO   write that release's ABI (make abi-dump)
#
# abi/libgoro-<release>.<arch>.abi is the ABI of a release (abidw from libabigail, over
# the types goro.h declares), kept in the repo; <release> is the newest "## [X.Y.Z]"
# heading of CHANGELOG.md that is not "Unreleased". abidiff compares the library against
# it and fails on anything a program built against that release could notice: a function
# removed or changed, a public struct that changed size or layout. Functions added are
# compatible and pass (--no-added-syms). An intended break bumps GORO_SOVERSION in
# CMakeLists.txt and starts a new baseline with the next release.
#
# The dump depends on the architecture: on one that has no dump yet the check says so
# and is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

dump=no
if [ "${1:-}" = --dump ]; then
    dump=yes
    shift
fi
lib=${1:?usage: check_abi.sh [--dump] path/to/libgoro.so}
arch=$(uname -m)
release=$(sed -n 's/^## \[\([0-9][0-9.]*\)\].*/\1/p' CHANGELOG.md | head -n1)
[ -n "$release" ] || {
    echo "check_abi: no released version (## [X.Y.Z]) in CHANGELOG.md" >&2
    exit 1
}
baseline="abi/libgoro-$release.$arch.abi"

if [ $dump = yes ]; then
    mkdir -p abi
    abidw --headers-dir include --drop-private-types --no-corpus-path --out-file "$baseline" "$lib"
    echo "check_abi: wrote $baseline"
    exit 0
fi

if [ ! -f "$baseline" ]; then
    echo "check_abi: SKIP: no ABI dump of release $release for $arch ($baseline); the dumps in abi/ are for: $(ls abi)"
    exit 0
fi
echo "check_abi: abidiff $baseline $lib"
set +e
out=$(abidiff --no-added-syms --headers-dir2 include "$baseline" "$lib" 2>&1)
rc=$?
set -e
# abidiff's status is a bit set: 1 error, 2 usage, 4 ABI change, 8 incompatible change.
if [ $rc -ne 0 ]; then
    echo "$out" >&2
    echo "check_abi: FAIL: the ABI differs from release $release's (abidiff status $rc)." >&2
    echo "check_abi: a deliberate break bumps GORO_SOVERSION; see CHANGELOG.md" >&2
    exit 1
fi
echo "check_abi: compatible with release $release"
