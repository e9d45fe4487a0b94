#!/usr/bin/env bash
# scripts/test_docs.sh [OUT_DIR]   (make test-docs, after make docs; default build-docs)
#
# Checks what scripts/docs.sh rendered into OUT_DIR:
#   1. Doxygen warned about nothing (docs.sh already fails if it did), and the gate
#      works: the same Doxyfile run on a copy of goro.h with an undocumented function,
#      macro and struct field added fails and names each of them
#   2. every public name of goro.h (GORO_API functions, GORO_ macros, goro_ types,
#      enumerators) has a description in the reference (Doxygen's XML output)
#   3. every guide page (docs/guide/*.md) was rendered, and the front page links them
#   4. the screenshots are pages, not blank: 1280x1000, at least 64 colours, and no
#      colour covers more than 90% of the picture (a blank page is one colour)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build-docs}
html="$out/html"
ref="$html/goro_8h.html"

fail() {
    echo "test_docs: FAIL: $*" >&2
    exit 1
}
step() { echo "test_docs: $*"; }

[ -f "$ref" ] || fail "$ref does not exist (run make docs)"
[ -f "$out/warnings.log" ] && [ ! -s "$out/warnings.log" ] || fail "doxygen warned: $(cat "$out/warnings.log")"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/goro-docs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# ---------------------------------------------------------------- 1. the gate
step "an undocumented function, macro and field make doxygen fail"
mkdir -p "$tmp/tree/include" "$tmp/tree/docs" "$tmp/out"
cp -r docs/guide "$tmp/tree/docs/"
awk '{print} /^GORO_API void goro_dump\(int fd\);$/ {
    print "GORO_API int goro_undocumented_probe(void);"
    print "#define GORO_UNDOCUMENTED_PROBE 1"
    print "/** A struct whose field is not documented. */"
    print "typedef struct goro_probe { int undocumented_field; } goro_probe;"
}' include/goro.h >"$tmp/tree/include/goro.h"
grep -q goro_undocumented_probe "$tmp/tree/include/goro.h" || fail "could not add the probe to goro.h"
if (cd "$tmp/tree" && GORO_VERSION=0 GORO_DOCS_OUT="$tmp/out" doxygen "$OLDPWD/docs/Doxyfile") \
    >"$tmp/probe.log" 2>&1; then
    fail "doxygen passed a goro.h with undocumented names"
fi
for name in goro_undocumented_probe GORO_UNDOCUMENTED_PROBE undocumented_field; do
    grep -q "$name" "$tmp/out/warnings.log" || fail "doxygen did not report $name: $(cat "$tmp/out/warnings.log")"
done

# ---------------------------------------------------------------- 2. every public name
step "every public name of goro.h is in the reference"
{
    sed -n 's/^GORO_API [^(]*[ *]\(goro_[a-z0-9_]*\)(.*/\1/p' include/goro.h
    sed -n 's/^#define \(GORO_[A-Z0-9][A-Z0-9_]*\).*/\1/p' include/goro.h | grep -vx GORO_H
    sed -n 's/^} \(goro_[a-z0-9_]*\);$/\1/p; s/^typedef struct \(goro_[a-z0-9_]*\) goro_[a-z0-9_]*;$/\1/p' include/goro.h
    sed -n 's/^enum { *\(GORO_[A-Z]*\) = .*/\1/p; s/^    \(GORO_[A-Z]*\) = [0-9]*,\{0,1\} .*/\1/p' include/goro.h
} | grep -v "^goro__\|^GORO__" | sort -u >"$tmp/names"
[ "$(wc -l <"$tmp/names")" -gt 80 ] || fail "found only $(wc -l <"$tmp/names") public names in goro.h"
python3 scripts/doc_coverage.py "$out/xml" "$tmp/names" >"$tmp/coverage" ||
    fail "$(cat "$tmp/coverage")"
step "  $(cat "$tmp/coverage")"

# ---------------------------------------------------------------- 3. the guide
step "guide pages"
for md in docs/guide/*.md; do
    id=$(sed -n '1s/^# .*{#\([a-z_]*\)}$/\1/p' "$md")
    [ -n "$id" ] || fail "$md does not start with '# Title {#id}'"
    [ "$id" = mainpage ] && page=index.html || page="$id.html"
    [ -f "$html/$page" ] || fail "$md was not rendered ($html/$page)"
    [ "$id" = mainpage ] || grep -q "href=\"$page\"" "$html/index.html" ||
        fail "the front page does not link $page ($md)"
done
# The porting page's tables: Go's `go f(x)` beside goro_spawn.
grep -q "<table" "$html/porting.html" && grep -q "<code>go f(x)</code>" "$html/porting.html" &&
    grep -q "goro_spawn(f, x)" "$html/porting.html" || fail "porting.html has no table of Go constructs"

# ---------------------------------------------------------------- 4. the screenshots
for png in "$out/screenshot-index.png" "$out/screenshot-reference.png"; do
    [ -s "$png" ] || fail "$png is missing"
    read -r w h colours share < <(python3 scripts/png_stats.py "$png")
    step "$(basename "$png"): ${w}x$h, $colours colours, the commonest covers $share"
    [ "$w" = 1280 ] && [ "$h" = 1000 ] || fail "$png is ${w}x$h, not 1280x1000"
    [ "$colours" -ge 64 ] || fail "$png has only $colours colours: a blank page?"
    awk -v s="$share" 'BEGIN { exit !(s < 0.90) }' || fail "$png is $share one colour: a blank page?"
done
echo "test_docs: PASS"
