#!/usr/bin/env bash
# scripts/docs.sh [OUT_DIR]   (make docs; OUT_DIR defaults to build-docs)
#
# Renders the API reference (include/goro.h) and the guide (docs/guide/*.md) into
# OUT_DIR/html with Doxygen (docs/Doxyfile), then photographs two pages in headless
# Chromium: OUT_DIR/screenshot-index.png (the front page) and
# OUT_DIR/screenshot-reference.png (goro.h's reference). Fails when Doxygen warns:
# a public name without documentation, a broken reference, a malformed command; the
# warnings are in OUT_DIR/warnings.log.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build-docs}
mkdir -p "$out"
out=$(cd "$out" && pwd)

# shellcheck source=scripts/version.sh
. scripts/version.sh

rm -rf "$out/html" "$out/xml" "$out/warnings.log" "$out"/screenshot-*.png
echo "docs: doxygen docs/Doxyfile -> $out/html (goro $version)"
if ! GORO_VERSION="$version" GORO_DOCS_OUT="$out" doxygen docs/Doxyfile; then
    cat "$out/warnings.log" >&2 || true
    echo "docs: FAIL: doxygen reported the warnings above (every public name in goro.h needs a" >&2
    echo "docs: /** ... */ comment before it, or /**< ... */ after a field or enumerator)" >&2
    exit 1
fi
if [ -s "$out/warnings.log" ]; then
    cat "$out/warnings.log" >&2
    echo "docs: FAIL: doxygen warned" >&2
    exit 1
fi

# shot PAGE PNG: a 1280x1000 screenshot of a local page. A throwaway profile, and nothing
# that would reach the network.
shot() {
    local profile
    profile=$(mktemp -d "${TMPDIR:-/tmp}/goro-chromium.XXXXXX")
    timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
        --disable-component-update --disable-sync --no-first-run --hide-scrollbars \
        --user-data-dir="$profile" --window-size=1280,1000 --screenshot="$2" \
        --virtual-time-budget=3000 "file://$1" >"$out/chromium.log" 2>&1 || {
        cat "$out/chromium.log" >&2
        rm -rf "$profile"
        echo "docs: FAIL: chromium could not take a screenshot of $1" >&2
        exit 1
    }
    rm -rf "$profile"
    [ -s "$2" ] || {
        echo "docs: FAIL: chromium wrote no $2" >&2
        exit 1
    }
}
shot "$out/html/index.html" "$out/screenshot-index.png"
shot "$out/html/goro_8h.html" "$out/screenshot-reference.png"
echo "docs: $out/html/index.html; screenshots $out/screenshot-index.png, $out/screenshot-reference.png"
