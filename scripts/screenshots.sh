#!/usr/bin/env bash
# screenshots.sh - makes the pictures of docs/DEBUGGING.md again, from real runs:
#
#   docs/img/trace-connections.png  a trace of hello_server, opened in Chromium's own trace
#                                   viewer (the DevTools Performance panel): the first
#                                   2 ms of four client connections
#   docs/img/trace-steady.png       the same trace, 1 ms in the middle of the load
#   docs/img/gdb-session.png        gdb with tools/gdb/goro.py on tests/gdb_goroutines.c, in
#                                   an xterm
#
#   scripts/screenshots.sh [BUILD_DIR]      (default build; it needs examples/hello_server,
#                                            examples/loadgen and tests/test_gdb_goroutines)
#
# Not part of the build or of the tests: the pictures are made by hand and committed. What
# it needs, beyond the build: chromium, gdb, python3, node and npm (Debian packages
# chromium gdb python3 nodejs npm), an X server and terminal (xvfb xterm x11-apps: Xvfb,
# xvfb-run, xterm, xwd) and the npm package playwright-core, which it installs into a
# directory outside the repository (GORO_SHOTS_NPM, default $TMPDIR/goro-shots-npm) unless
# it is there already. It says what to install when something is missing.
#
# Why not Perfetto or chrome://tracing, which docs/TRACING.md names: ui.perfetto.dev is a
# web site (this machine has no internet), and Debian's Chromium 156 does not open
# chrome://tracing (net::ERR_FAILED, even after enabling its internal pages at
# chrome://chrome-urls). The DevTools Performance panel, which Chromium carries in its own
# resources, reads the same trace-event JSON. It runs in a real (not headless) Chromium on
# a virtual X display, driven by playwright-core: the browser serves its DevTools pages on
# a loopback port, and every host name but 127.0.0.1 is made to fail to resolve.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
build=${1:-build}
img=docs/img

missing=()
for cmd in chromium gdb python3 node npm xvfb-run Xvfb xterm xwd; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "screenshots: missing: ${missing[*]}" >&2
    echo "screenshots: install them with: apt-get install chromium gdb python3 nodejs npm xvfb xterm x11-apps" >&2
    exit 1
fi
for f in examples/hello_server examples/loadgen tests/test_gdb_goroutines; do
    [ -x "$build/$f" ] || {
        echo "screenshots: $build/$f is missing: build first (cmake --build $build)" >&2
        exit 1
    }
done
fonts=$(fc-list 2>/dev/null | grep -c 'DejaVuSansMono' || true)
[ "$fonts" -gt 0 ] || echo "screenshots: warning: no DejaVu Sans Mono (apt-get install fonts-dejavu-core)" >&2

npmdir=${GORO_SHOTS_NPM:-${TMPDIR:-/tmp}/goro-shots-npm}
if [ ! -d "$npmdir/node_modules/playwright-core" ]; then
    echo "screenshots: installing playwright-core into $npmdir"
    mkdir -p "$npmdir"
    (cd "$npmdir" && { [ -f package.json ] || npm init -y >/dev/null; } &&
        npm install --no-audit --no-fund playwright-core >/dev/null) || {
        echo "screenshots: npm install playwright-core failed (needs the npm registry)" >&2
        exit 1
    }
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/goro-shots.XXXXXX")
server=
cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$img"

# ---------------------------------------------------------------- 1. a trace of hello_server
# Two Ps; loadgen on one P keeps four connections busy for 50 ms. SIGINT shuts the server
# down in order, and the trace is written when goro_run returns.
echo "screenshots: recording a trace of hello_server under loadgen"
GORO_TRACE="$tmp/trace.json" "$build/examples/hello_server" --procs 2 --addr 127.0.0.1:0 \
    >"$tmp/server.out" 2>&1 &
server=$!
for _ in $(seq 200); do
    grep -q '^listening on ' "$tmp/server.out" && break
    sleep 0.01
done
addr=$(sed -n 's/^listening on //p' "$tmp/server.out")
[ -n "$addr" ] || {
    cat "$tmp/server.out" >&2
    echo "screenshots: hello_server did not start" >&2
    exit 1
}
"$build/examples/loadgen" -c 4 -d 0.05 --procs 1 "$addr" /hello | grep RESULT
kill -INT "$server"
wait "$server"
server=
[ -s "$tmp/trace.json" ] || {
    echo "screenshots: no trace written" >&2
    exit 1
}

# Where to look: 2 ms from 0.3 ms before the first run of a connection goroutine on a P,
# and 1 ms around the middle such run. Times in ms from the trace's origin, where
# the viewer's time axis starts.
read -r end first mid < <(python3 - "$tmp/trace.json" <<'EOF'
import json, sys
events = json.load(open(sys.argv[1]))["traceEvents"]
names = {(e["pid"], e["tid"]): e["args"]["name"] for e in events
         if e["ph"] == "M" and e["name"] == "thread_name"}
slices = [e for e in events if e["ph"] == "X"]
end = max(e["ts"] + e["dur"] for e in slices) / 1000
runs = sorted(e["ts"] / 1000 for e in slices
              if e["pid"] == 1 and e["name"].endswith(" conn")
              and not names[(e["pid"], e["tid"])].endswith("thread"))
print(f"{end:.4f} {runs[0] - 0.3:.4f} {runs[len(runs) // 2]:.4f}")
EOF
)

# ---------------------------------------------------------------- 2. the trace in DevTools
cat >"$tmp/devtools.js" <<'EOF'
// node devtools.js TRACE PORT END_MS OUT1 FIRST OUT2 MID: opens TRACE in the DevTools
// Performance panel, expands every track, saves the 2 ms from FIRST ms on as OUT1 and
// 1 ms around MID ms as OUT2.
const { chromium } = require('playwright-core');
const [trace, port, end, out1, first, out2, mid] = process.argv.slice(2);
const W = 1400, H = 850;
(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM, headless: false,
    args: ['--no-sandbox', '--disable-gpu', '--remote-debugging-port=' + port,
           '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
           '--no-pings', '--disable-domain-reliability'] });
  const page = await browser.newPage({ viewport: { width: W, height: H } });
  await page.goto('http://127.0.0.1:' + port + '/devtools/devtools_app.html?panel=timeline');
  await page.waitForTimeout(2000);
  // "Load trace..." reads a hidden file input inside the panel's shadow DOM.
  const input = await page.evaluateHandle(() => {
    let found = null;
    const walk = (root) => {
      for (const e of root.querySelectorAll('*')) {
        if (e.tagName === 'INPUT' && e.type === 'file') found = e;
        if (e.shadowRoot) walk(e.shadowRoot);
      }
    };
    walk(document);
    return found;
  });
  if (!input.asElement()) throw new Error('no file input in the Performance panel');
  await input.asElement().setInputFiles(trace);
  await page.waitForTimeout(4000);
  // The first Escape closes the keyboard-shortcuts card, the second the drawer it opens.
  await page.keyboard.press('Escape');
  await page.waitForTimeout(300);
  await page.keyboard.press('Escape');
  await page.getByRole('button', { name: 'Hide sidebar' }).first().click();
  await page.waitForTimeout(500);
  // The flame chart is a canvas: the groups "Goroutines" and "Procs", then each track
  // (from the bottom up, so that the rows above do not move), are expanded by clicking
  // their triangles.
  await page.mouse.click(10, 150);
  await page.waitForTimeout(300);
  await page.mouse.click(10, 129);
  await page.waitForTimeout(300);
  for (const y of [352, 331, 310, 289, 268, 247, 209, 188, 167, 146]) {
    await page.mouse.click(20, y);
    await page.waitForTimeout(150);
  }
  // Dragging across the overview strip, which spans the whole trace, shows that stretch
  // (2 ms: shorter drags are widened to a minimum); the wheel then zooms in around the
  // point under the mouse, by about 2^(1/4) a notch, down to 1 ms (the panel zooms no
  // further into this trace).
  const x = (t) => W * t / Number(end);
  for (const [out, from, centre, notches] of [[out1, Number(first), 0, 0],
                                              [out2, Number(mid) - 1, Number(mid), 4]]) {
    await page.mouse.move(x(from), 80);
    await page.mouse.down();
    await page.mouse.move(x(from + 2), 80, { steps: 10 });
    await page.mouse.up();
    await page.waitForTimeout(800);
    if (notches > 0) {
      await page.mouse.move(W * (centre - from) / 2, 400);
      for (let i = 0; i < notches; i++) {
        await page.mouse.wheel(0, -100);
        await page.waitForTimeout(400);
      }
    }
    await page.mouse.move(W / 2, H - 20);
    await page.waitForTimeout(1000);
    await page.screenshot({ path: out, clip: { x: 0, y: 0, width: W, height: 540 } });
  }
  await browser.close();
})().catch((e) => { console.error(e); process.exit(1); });
EOF
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo "screenshots: opening the trace in Chromium's DevTools (at $first ms and $mid ms of $end ms)"
CHROMIUM=$(command -v chromium) NODE_PATH="$npmdir/node_modules" \
    timeout 180 xvfb-run -a -s '-screen 0 1400x900x24' \
    node "$tmp/devtools.js" "$tmp/trace.json" "$port" "$end" \
    "$img/trace-connections.png" "$first" "$img/trace-steady.png" "$mid" \
    2> >(grep -v -e 'dbus' -e 'Fontconfig' -e 'unexpected operator' >&2)

# ---------------------------------------------------------------- 3. gdb in an xterm
# The xterm runs the documented gdb command, leaves a marker with its window id, and waits
# to be photographed (xwd) and killed.
cat >"$tmp/inner.sh" <<'EOF'
cd "$1" || exit 1
printf '\033[1;32m$\033[0m %s\n' "GORO_MAXPROCS=1 gdb -q -batch -x tools/gdb/goro.py -ex 'break goro_test_stop_here' -ex run \\"
printf '      %s\n' "-ex 'info goroutines' -ex 'goroutine 3 bt' -ex 'goroutine 8 bt' $2/tests/test_gdb_goroutines"
GORO_MAXPROCS=1 gdb -q -batch -x tools/gdb/goro.py -ex 'break goro_test_stop_here' -ex run \
    -ex 'info goroutines' -ex 'goroutine 3 bt' -ex 'goroutine 8 bt' "$2/tests/test_gdb_goroutines"
printf '\033[1;32m$\033[0m '
echo "$WINDOWID" >"$3.tmp" && mv "$3.tmp" "$3"
sleep 60
EOF
cat >"$tmp/outer.sh" <<'EOF'
xterm -geometry 134x33+0+0 -fa 'DejaVu Sans Mono' -fs 9 -bg '#1d1f21' -fg '#dcdcdc' -b 8 \
    -e bash "$1/inner.sh" "$2" "$3" "$1/marker" &
term=$!
for _ in $(seq 300); do
    [ -s "$1/marker" ] && break
    sleep 0.1
done
sleep 0.3
[ -s "$1/marker" ] && xwd -silent -id "$(cat "$1/marker")" >"$1/gdb.xwd"
kill "$term"
wait "$term" 2>/dev/null
exit 0
EOF
echo "screenshots: running gdb in an xterm"
timeout 120 xvfb-run -a -s '-screen 0 1400x900x24' bash "$tmp/outer.sh" "$tmp" "$repo" "$build"
[ -s "$tmp/gdb.xwd" ] || {
    echo "screenshots: the xterm with gdb did not finish" >&2
    exit 1
}
# xwd writes X's own image format; this turns a 32-bit TrueColor dump into a PNG.
python3 - "$tmp/gdb.xwd" "$img/gdb-session.png" <<'EOF'
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
head = struct.unpack(">25I", data[:100])
size, width, height, order, bpp, stride, ncolors = head[0], head[4], head[5], head[7], head[11], head[12], head[19]
if bpp != 32:
    sys.exit(f"screenshots: xwd dump has {bpp} bits per pixel, not 32")
pixels = data[size + 12 * ncolors:]
r, b = (2, 0) if order == 0 else (1, 3)  # LSBFirst: B G R x; MSBFirst: x R G B
g = 1 if order == 0 else 2
rows = []
for y in range(height):
    line = pixels[y * stride: y * stride + 4 * width]
    rgb = bytearray(3 * width)
    rgb[0::3], rgb[1::3], rgb[2::3] = line[r::4], line[g::4], line[b::4]
    rows.append(b"\0" + bytes(rgb))
def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
png += chunk(b"IDAT", zlib.compress(b"".join(rows), 9)) + chunk(b"IEND", b"")
open(sys.argv[2], "wb").write(png)
EOF

for f in trace-connections trace-steady gdb-session; do
    echo "screenshots: $img/$f.png ($(python3 scripts/png_stats.py "$img/$f.png" | awk '{print $1 "x" $2 ", " $3 " colours"}'), $(($(stat -c %s "$img/$f.png") / 1024)) KiB)"
done
