#!/usr/bin/env bash
# scripts/run.sh [BUILD_DIR]   (default: build; `make run` runs this)
#
# What `make run` shows: examples/pi (Monte Carlo pi on 1 P and on all Ps), then the web
# server: examples/hello_server on a free loopback port, loaded for 3 s by examples/loadgen
# with 50 keep-alive connections, then stopped with SIGTERM; it must exit 0. Ends with
# the figures of both side by side. Exits non-zero if anything failed.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
case $build in /*) ;; *) build=$root/$build ;; esac
for exe in pi hello_server loadgen; do
    [ -x "$build/examples/$exe" ] || {
        echo "run.sh: $build/examples/$exe was not built" >&2
        exit 1
    }
done

tmp=$(mktemp -d)
pid=
cleanup() {
    # Only the server this script started, by its PID.
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

echo "== examples/pi"
"$build/examples/pi" | tee "$tmp/pi"

echo
echo "== examples/hello_server under examples/loadgen -c 50 -d 3"
"$build/examples/hello_server" --addr 127.0.0.1:0 >"$tmp/server.out" 2>"$tmp/server.err" &
pid=$!
port=
for _ in $(seq 100); do
    port=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$tmp/server.out")
    [ -n "$port" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$port" ]; then
    echo "run.sh: hello_server did not start:" >&2
    cat "$tmp/server.err" >&2
    exit 1
fi
echo "hello_server pid $pid listening on 127.0.0.1:$port"
load_rc=0
"$build/examples/loadgen" -c 50 -d 3 "127.0.0.1:$port" / | tee "$tmp/load" || load_rc=$?

kill -TERM "$pid"
server_rc=0
wait "$pid" || server_rc=$?
pid=
sed 's/^/  /' "$tmp/server.err"
if [ "$server_rc" -ne 0 ]; then
    echo "run.sh: hello_server exited with status $server_rc after SIGTERM" >&2
    exit 1
fi
echo "hello_server exited 0 after SIGTERM"
if [ "$load_rc" -ne 0 ]; then
    echo "run.sh: loadgen failed (exit $load_rc)" >&2
    exit 1
fi

echo
echo "== summary"
sed -n 's/^pi  *\([^ ]*\).*/pi                 \1/p; s/^speedup  */pi speedup         /p' "$tmp/pi"
awk '$1 == "RESULT" && $2 == "requests_per_s" { printf "hello_server       %s requests/s (loadgen -c 50, keep-alive, loopback)\n", $3 }' "$tmp/load"
