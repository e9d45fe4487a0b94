#!/usr/bin/env bash
# bench.sh - runs every goro benchmark side by side with its Go twin and prints a table.
#
#   scripts/bench.sh [BUILD_DIR]        (default: build; `make bench` runs this)
#
# Each benchmark is <BUILD_DIR>/bench/bench_<name> (from bench/<name>.c) and a Go twin
# built here from bench/go/<name> into <BUILD_DIR>/bench/go_<name>. For every benchmark the
# two run alternately, BENCH_ROUNDS rounds (default 5; odd rounds C first, even rounds Go
# first, so that neither always runs on a warmer machine). Every line a program prints that
# reads "RESULT <metric> <value> <unit>" is one sample; the table shows the median of each,
# their ratio, and the median (and range) of the rounds' own ratios: the two runs of a round
# are adjacent, so their ratio shrugs off the slow swings of a noisy machine that can move
# one implementation's median but not the other's.
# The raw output goes to <BUILD_DIR>/bench/results.txt. Extra flags for one benchmark can be
# given in BENCH_ARGS_<name>, e.g. BENCH_ARGS_parked="--n 100000"; both twins get them.
# BENCH_ONLY="pi yield" runs only those. A last row, "trace", is the execution tracer's
# overhead (bench/trace_onoff.c: ping-pong batches with tracing off and on in one process;
# BENCH_TRACE=0 skips it). tenmillion (ten million parked goroutines, a few minutes with its twin) is not
# in the default list: BENCH_ONLY=tenmillion runs it. Both of
# its twins run under scripts/memcap.sh, capped at BENCH_MEMCAP_MIB (default: three
# quarters of MemAvailable), Go's with RLIMIT_DATA too, so that Go running out of memory
# (~2.7 KB per goroutine: 27 GB for ten million) ends in its own "out of memory" rather than the
# OOM killer's choice. A benchmark without a twin in bench/go/ (wake_compacted) runs alone.
# Exits 1 if any run failed, after printing what it has.
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/median.sh
. "$root/scripts/median.sh"
build=${1:-build}
case $build in /*) ;; *) build=$root/$build ;; esac
rounds=${BENCH_ROUNDS:-5}
timeout_s=${BENCH_TIMEOUT:-120}
benchmarks=(${BENCH_ONLY:-yield spawn pi mutex parked pingpong buffered select ring skynet fib sleepers
    rwmutex parked_chan wake_compacted})
memcap_mib=${BENCH_MEMCAP_MIB:-$(awk '/^MemAvailable:/ { print int($2 / 1024 * 3 / 4) }' /proc/meminfo)}
outdir=$build/bench
raw=$outdir/results.txt
failed=0

case $rounds in '' | *[!0-9]* | 0)
    echo "bench.sh: BENCH_ROUNDS must be a positive integer" >&2
    exit 2
    ;;
esac

# ---------------------------------------------------------------- build

missing=()
for b in "${benchmarks[@]}"; do
    [ -x "$outdir/bench_$b" ] || missing+=("bench_$b")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ -f "$build/CMakeCache.txt" ]; then
        echo "building ${missing[*]}"
        cmake --build "$build" --target "${missing[@]}" || exit 1
    else
        echo "bench.sh: $build is not a configured build directory (run make first)" >&2
        exit 1
    fi
fi

if ! command -v go >/dev/null 2>&1; then
    echo "bench.sh: go not found (scripts/setup.sh installs it)" >&2
    exit 1
fi
mkdir -p "$outdir"
# Offline, self-contained: the twins have no dependencies, and the caches live in build/.
export GOFLAGS=-mod=mod GOCACHE=$build/go-cache GOMODCACHE=$build/go-modcache \
    GOPATH=$build/go-path GOPROXY=off GOTOOLCHAIN=local GO111MODULE=on GOWORK=off
for b in "${benchmarks[@]}"; do
    [ -d "$root/bench/go/$b" ] || continue
    (cd "$root/bench/go" && go build -o "$outdir/go_$b" "./$b") || {
        echo "bench.sh: go build ./$b failed" >&2
        exit 1
    }
done

# ---------------------------------------------------------------- run

ncpu=$(nproc)
cpu=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)
# The machine goes with the table (and the raw file): CPU model, CPUs, kernel, and the
# load average, since the machine may be shared.
machine="${cpu:-unknown CPU}, $(grep -c '^processor' /proc/cpuinfo) CPUs (nproc $ncpu), $(uname -sr)"
echo "goro benchmarks, $(date '+%Y-%m-%d %H:%M:%S %z')"
echo "machine: $machine; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "go: $(go version | cut -d' ' -f3-)   cc: $(cc --version 2>/dev/null | head -n 1)"
echo "rounds: $rounds (BENCH_ROUNDS), medians shown"
echo

{
    echo "# $(date '+%Y-%m-%d %H:%M:%S %z') $machine"
} >"$raw"
samples=$(mktemp)
trap 'rm -f "$samples"' EXIT

# run_one <impl> <benchmark> <round>: one run, its RESULT lines appended to $samples.
run_one() {
    local impl=$1 b=$2 round=$3 bin out rc var
    if [ "$impl" = goro ]; then bin=$outdir/bench_$b; else bin=$outdir/go_$b; fi
    var=BENCH_ARGS_$b
    [ "$impl" = go ] && [ ! -d "$root/bench/go/$b" ] && return
    local cap=() limit=$timeout_s
    if [ "$b" = tenmillion ]; then
        ((limit < 900)) && limit=900
        cap=("$root/scripts/memcap.sh")
        [ "$impl" = go ] && cap+=(-d)
        cap+=("$memcap_mib")
    fi
    # shellcheck disable=SC2086  # the extra flags are meant to be split
    out=$(timeout "$limit" "${cap[@]}" "$bin" ${!var:-} 2>&1)
    rc=$?
    printf '## %s %s (exit %d)\n%s\n' "$impl" "$b" "$rc" "$out" >>"$raw"
    if [ $rc -ne 0 ]; then
        [ $rc -eq 124 ] && out="timed out after ${limit}s"
        echo "  $impl $b failed (exit $rc): $(echo "$out" | tail -n 3 | tr '\n' ' ')" >&2
        echo "$b FAIL $impl" >>"$samples"
        failed=1
        return
    fi
    echo "$out" | awk -v b="$b" -v impl="$impl" -v r="$round" \
        '$1 == "RESULT" && NF >= 4 { print b, $2, impl, $3, $4, r }' >>"$samples"
}

for b in "${benchmarks[@]}"; do
    printf 'running %-8s' "$b"
    for ((r = 1; r <= rounds; r++)); do
        if ((r % 2)); then
            run_one goro "$b" $r
            run_one go "$b" $r
        else
            run_one go "$b" $r
            run_one goro "$b" $r
        fi
        printf '.'
    done
    echo
done
echo

# ---------------------------------------------------------------- report

echo "machine: $machine; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
# Lower is better for times and sizes; higher is better for a speedup ("x").
awk "$median_awk"'
$2 == "FAIL" { fail[$1 " " $3] = 1; next }
{
    key = $1 " " $2
    if (!(key in unit)) { order[++nkeys] = key; unit[key] = $5 }
    vals[key, $3] = vals[key, $3] " " $4
    round[key, $3, $6] = $4
    if ($6 > nrounds) nrounds = $6
}
END {
    fmt = "%-8s %-18s %14s %14s  %-20s %s\n"
    printf fmt, "bench", "metric", "goro", "Go", "goro vs Go", "per round (range)"
    print "  (per round: Go/goro for times and sizes, goro/Go for a speedup; above 1 is goro ahead)"
    for (i = 1; i <= nkeys; i++) {
        key = order[i]; split(key, k, " "); u = unit[key]
        g = vals[key, "goro"] == "" ? "" : median(vals[key, "goro"])
        o = vals[key, "go"] == "" ? "" : median(vals[key, "go"])
        verdict = "-"
        if (g != "" && o != "" && g > 0 && o > 0) {
            higher_better = (u == "x")
            better = higher_better ? g >= o : g <= o
            r = g > o ? g / o : o / g
            if (u == "x") word = better ? "higher" : "lower"
            else if (u == "bytes" || u == "MB" || u == "KB") word = better ? "smaller" : "larger"
            else word = better ? "faster" : "slower"
            verdict = sprintf("goro %.2fx %s", r, word)
        }
        pr = ""; np = 0; lo = ""; hi = ""
        for (r = 1; r <= nrounds; r++) {
            if (!((key, "goro", r) in round) || !((key, "go", r) in round)) continue
            a = round[key, "goro", r]; b = round[key, "go", r]
            if (a <= 0 || b <= 0) continue
            x = u == "x" ? a / b : b / a
            pr = pr " " x; np++
            if (lo == "" || x < lo) lo = x
            if (hi == "" || x > hi) hi = x
        }
        paired = np ? sprintf("%.2f (%.2f-%.2f)", median(pr), lo, hi) : "-"
        gs = g == "" ? (fail[k[1] " goro"] ? "FAIL" : "-") : sprintf("%.2f %s", g, u)
        os = o == "" ? (fail[k[1] " go"] ? "FAIL" : "-") : sprintf("%.2f %s", o, u)
        printf fmt, k[1], k[2], gs, os, verdict, paired
        seen[k[1]] = 1
    }
    for (f in fail) { split(f, k, " "); if (!(k[1] in seen)) { printf fmt, k[1], "(no result)", k[2] == "goro" ? "FAIL" : "-", k[2] == "go" ? "FAIL" : "-", "-", "-"; seen[k[1]] = 1 } }
}' "$samples"

# ---------------------------------------------------------------- tracer overhead

# The execution tracer's cost while it records (docs/TRACING.md): bench_trace_onoff runs
# 1-P ping-pong in batches alternately untraced and traced, in one process, and prints the
# median of the pairs' ratios (adjacent batches a few ms apart: the machine's slow swings
# hit both alike). BENCH_TRACE=0 skips it; BENCH_TRACE_ROUNDS sets its runs (default
# BENCH_ROUNDS), the row shows the median of their medians.
if [ "${BENCH_TRACE:-1}" != 0 ] && [ -x "$outdir/bench_trace_onoff" ]; then
    echo
    printf 'running trace (pingpong_1p, tracing off vs on)\n'
    trace_rounds=${BENCH_TRACE_ROUNDS:-$rounds}
    ratios=()
    for ((r = 1; r <= trace_rounds; r++)); do
        out=$(timeout "$timeout_s" "$outdir/bench_trace_onoff" 2>&1)
        printf '%s\n' "$out" >>"$raw"
        v=$(printf '%s\n' "$out" | awk '$1 == "RESULT" && $2 == "trace_on_off" { print $3 }')
        if [ -n "$v" ]; then ratios+=("$v"); else failed=1; fi
    done
    if [ ${#ratios[@]} -gt 0 ]; then
        printf '%-8s %-18s median %s of %d runs (%s)\n' trace "on/off pingpong_1p" \
            "$(awk "$median_awk"'BEGIN { print median(ARGV[1]) }' "${ratios[*]}")" \
            ${#ratios[@]} "${ratios[*]}"
    else
        printf '%-8s %-18s FAIL\n' trace "on/off pingpong_1p"
    fi
fi

echo
echo "raw output: $raw"
if [ $failed -ne 0 ]; then
    echo "bench.sh: some runs failed (see above and $raw)" >&2
    exit 1
fi
