# version.sh - sourced by the scripts that need goro's numbers, from the top of the source
# tree: version, the release (GORO_VERSION_MAJOR.MINOR.PATCH in include/goro.h, the one
# place it is written), and soversion, the ABI number (GORO_SOVERSION in CMakeLists.txt).
# shellcheck shell=bash
goro_version_part() { sed -n "s/^#define GORO_VERSION_$1 \([0-9]*\)$/\1/p" include/goro.h; }
version="$(goro_version_part MAJOR).$(goro_version_part MINOR).$(goro_version_part PATCH)"
soversion=$(sed -n 's/^set(GORO_SOVERSION \([0-9]*\))$/\1/p' CMakeLists.txt)
export version soversion
