#!/usr/bin/env bash
# abtest.sh - compares two builds of one benchmark, the way a change to the runtime should
# be judged on a noisy machine: the two binaries run alternately (the order swapping every
# round, so neither always runs second), and the verdict is the median of the rounds' own
# ratios, each taken between two adjacent runs.
#
#   scripts/abtest.sh [-r ROUNDS] [-c CPU] OLD_BINARY NEW_BINARY METRIC [-- ARGS...]
#
# METRIC is the name on a "RESULT <metric> <value> <unit>" line the benchmarks print;
# ARGS go to both binaries. -c pins both to one CPU with taskset (default: unpinned, as
# scripts/bench.sh runs them; pinned and unpinned can disagree, so check a pinned result
# unpinned before believing it). -r is the number of rounds (default 20).
# Prints each round's two values and ratio, then the medians and the median ratio
# new/old with its range: below 1 means NEW is faster (for a time). On the project's
# 2-vCPU machine a binary against itself spreads 0.95-1.10 per round and a 20-round
# median moves by a few percent from batch to batch: a change worth less than ~5% needs
# several batches to tell.
#
# Example: build the old tree in /tmp/old-build, then
#   scripts/abtest.sh /tmp/old-build/bench/bench_pingpong build/bench/bench_pingpong \
#       pingpong_1p -- --n 500000
set -u
# shellcheck source=scripts/median.sh
. "$(dirname "$0")/median.sh"

rounds=20
cpu=
while getopts "r:c:" opt; do
    case $opt in
    r) rounds=$OPTARG ;;
    c) cpu=$OPTARG ;;
    *)
        sed -n '2,22s/^# \{0,1\}//p' "$0" >&2
        exit 2
        ;;
    esac
done
shift $((OPTIND - 1))
if [ $# -lt 3 ]; then
    sed -n '2,22s/^# \{0,1\}//p' "$0" >&2
    exit 2
fi
old=$1 new=$2 metric=$3
shift 3
[ "${1:-}" = "--" ] && shift
case $rounds in '' | *[!0-9]* | 0)
    echo "abtest.sh: -r needs a positive integer" >&2
    exit 2
    ;;
esac
for b in "$old" "$new"; do
    [ -x "$b" ] || {
        echo "abtest.sh: $b is not an executable" >&2
        exit 2
    }
done
pin=()
[ -n "$cpu" ] && pin=(taskset -c "$cpu")

# one <binary> [args]: the value of METRIC in one run, or nothing.
one() {
    local bin=$1
    shift
    "${pin[@]}" "$bin" "$@" 2>/dev/null | awk -v m="$metric" '$1 == "RESULT" && $2 == m { print $3; exit }'
}

pairs=
for ((r = 1; r <= rounds; r++)); do
    if ((r % 2)); then
        a=$(one "$old" "$@")
        b=$(one "$new" "$@")
    else
        b=$(one "$new" "$@")
        a=$(one "$old" "$@")
    fi
    if [ -z "$a" ] || [ -z "$b" ]; then
        echo "abtest.sh: round $r printed no RESULT $metric (old '${a}', new '${b}')" >&2
        exit 1
    fi
    pairs+="$a $b"$'\n'
done
printf '%s' "$pairs" | awk "$median_awk"'
{
    r = $2 / $1
    printf "%10.2f %10.2f   %.3f\n", $1, $2, r
    olds = olds " " $1; news = news " " $2; ratios = ratios " " r
    if (NR == 1 || r < lo) lo = r
    if (NR == 1 || r > hi) hi = r
}
END {
    if (NR == 0) exit 1
    printf "median old %.2f, new %.2f; new/old per round: median %.3f (%.3f-%.3f), %d rounds\n",
        median(olds), median(news), median(ratios), lo, hi, NR
}'
