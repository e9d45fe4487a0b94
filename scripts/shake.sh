#!/usr/bin/env bash
# shake.sh - runs a goro program under many schedules of deterministic mode
# (GORO_DEBUG=deterministic=SEED, docs/DEBUGGING.md) and stops at the first seed whose
# run fails, printing the end of its output and the command that replays that run.
#
#   scripts/shake.sh [-n RUNS] [-s FIRST] [-r] [-t SECS] [-v] PROG [ARGS...]
#
# -n  how many seeds to try (default 100)
# -s  the first seed (default 1); seeds FIRST, FIRST+1, ... are tried in turn
# -r  random seeds instead (from /dev/urandom), each printed before its run
# -t  seconds a run may take before it counts as hung, and failed (default 60)
# -v  print every seed's verdict, not only the failing one
#
# A run fails when it exits with a status other than 0, is killed by a signal or times
# out. A GORO_DEBUG already in the environment is kept; deterministic=SEED is added to it.
# PROG may be a command with words before the binary (an emulator: qemu-aarch64 -L ...).
# Exit status: 0 all runs passed, 1 a seed failed (printed), 2 usage error.
#
# Example:
#   scripts/shake.sh -n 200 build/tests/replay_planted
#   shake: seed 3 FAILED (exit status 1) after 2 passing runs; its output ends:
#     ...
#   replay: GORO_DEBUG=deterministic=3 build/tests/replay_planted
set -u

runs=100 first=1 random=0 limit=60 verbose=0
usage() {
    sed -n '2,20s/^# \{0,1\}//p' "$0" >&2
    exit 2
}
while getopts "n:s:rt:v" opt; do
    case $opt in
    n) runs=$OPTARG ;;
    s) first=$OPTARG ;;
    r) random=1 ;;
    t) limit=$OPTARG ;;
    v) verbose=1 ;;
    *) usage ;;
    esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || usage
for v in "$runs" "$first" "$limit"; do
    case $v in '' | *[!0-9]*)
        echo "shake.sh: -n, -s and -t take non-negative integers" >&2
        exit 2
        ;;
    esac
done
if [ "$first" -lt 1 ] || [ "$runs" -lt 1 ]; then
    echo "shake.sh: seeds start at 1 (0 turns deterministic mode off) and -n is at least 1" >&2
    exit 2
fi
command -v "$1" >/dev/null 2>&1 || {
    echo "shake.sh: $1: not found or not executable" >&2
    exit 2
}

base=${GORO_DEBUG:-}
out=$(mktemp) || exit 2
trap 'rm -f "$out"' EXIT

# A random seed in 1..2^63-1.
random_seed() {
    local s
    s=$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')
    s=$((s & 0x7fffffffffffffff))
    [ "$s" -eq 0 ] && s=1
    echo "$s"
}

for ((i = 0; i < runs; i++)); do
    if [ "$random" -eq 1 ]; then
        seed=$(random_seed)
        echo "shake: seed $seed"
    else
        seed=$((first + i))
    fi
    debug="deterministic=$seed"
    [ -n "$base" ] && debug="$base,$debug"
    GORO_DEBUG=$debug timeout -k 5 "$limit" "$@" >"$out" 2>&1
    rc=$?
    if [ "$rc" -eq 0 ]; then
        [ "$verbose" -eq 1 ] && echo "shake: seed $seed ok"
        continue
    fi
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        why="timed out after ${limit}s"
    elif [ "$rc" -gt 128 ]; then
        why="killed by signal $((rc - 128))"
    else
        why="exit status $rc"
    fi
    echo "shake: seed $seed FAILED ($why) after $i passing runs; its output ends:"
    tail -n 20 "$out" | sed 's/^/  /'
    printf 'replay: GORO_DEBUG=%s' "$debug"
    printf ' %q' "$@"
    printf '\n'
    exit 1
done
if [ "$random" -eq 1 ]; then
    echo "shake: $runs random seeds passed"
else
    echo "shake: $runs seeds passed ($first..$((first + runs - 1)))"
fi
exit 0
