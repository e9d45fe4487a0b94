#!/usr/bin/env bash
# trace_overhead.sh - what the execution tracer costs while it records: one benchmark
# binary run alternately without and with GORO_TRACE (the same build, so nothing but the
# tracing differs), through scripts/abtest.sh (alternating order, the median of the
# rounds' own ratios).
#
#   scripts/trace_overhead.sh [-r ROUNDS] [-c CPU] BINARY METRIC [-- ARGS...]
#
# Prints abtest.sh's table and verdict: new/old is traced/untraced (1.15 = 15% slower
# with tracing on). The trace goes to a temporary file, removed after each run; the JSON
# conversion at the end of a run is not inside the benchmarks' timed loops.
# Example (docs/TRACING.md, "Measured overhead"):
#   scripts/trace_overhead.sh -r 20 build/bench/bench_pingpong pingpong_1p -- --n 300000
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
opts=()
while getopts "r:c:" opt; do
    case $opt in
    r | c) opts+=("-$opt" "$OPTARG") ;;
    *)
        sed -n '2,15s/^# \{0,1\}//p' "$0" >&2
        exit 2
        ;;
    esac
done
shift $((OPTIND - 1))
if [ $# -lt 2 ]; then
    sed -n '2,15s/^# \{0,1\}//p' "$0" >&2
    exit 2
fi
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
metric=$2
shift 2
[ "${1:-}" = "--" ] && shift
[ -x "$bin" ] || {
    echo "trace_overhead.sh: $bin is not an executable" >&2
    exit 2
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The traced twin: the same binary with GORO_TRACE set, its file removed after the run.
cat >"$tmp/traced" <<EOS
#!/bin/sh
GORO_TRACE="$tmp/trace.json" "$bin" "\$@"
rc=\$?
rm -f "$tmp/trace.json"
exit \$rc
EOS
chmod +x "$tmp/traced"
"$root/scripts/abtest.sh" "${opts[@]}" "$bin" "$tmp/traced" "$metric" -- "$@"
