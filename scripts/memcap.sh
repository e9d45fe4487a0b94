#!/usr/bin/env bash
# memcap.sh - runs a program that may run out of memory so that it cannot take the machine
# down with it (the OOM killer picks whatever it likes, and other people work here too).
#
#   scripts/memcap.sh [-d] MIB COMMAND [ARGS...]
#
# A watchdog reads the program's resident set (VmRSS) every 50 ms and kills it (SIGKILL)
# once that passes MIB MiB; the exit status is then 137 and the last line says so. With
# -d, RLIMIT_DATA is also set to MIB MiB (prlimit), so that the program's own allocations
# fail first and it reports its out-of-memory in its own words, and GOMEMLIMIT to the same
# (a Go program then collects harder before it gets there). `ulimit -v` (RLIMIT_AS) is no
# use for Go, which reserves address space far beyond what it uses; RLIMIT_DATA counts
# only writable private mappings, what Go really maps for its heap and goroutine stacks.
# Not -d for goro: its stacks are writable mappings of 64 KiB of which a parked goroutine
# uses a page or less, so an RLIMIT_DATA equal to the memory wanted refuses spawns (its
# budget, src/gdesc.c B3) long before that memory is used.
# The program's output (stdout and stderr together) is kept to its first 100 and last 10
# lines when longer than 200: Go's fatal "out of memory" prints the stack of every
# goroutine, millions of them (GOTRACEBACK=none does not stop a runtime throw). Then
# "memcap: peak rss N MiB" (the program's VmHWM as last read), so that a killed program
# still says how far it got. A program that printed a line starting "fatal error:" (a Go
# throw) is killed a second later: its dump would take minutes.
set -u
use_data=0
if [ "${1:-}" = -d ]; then
    use_data=1
    shift
fi
mib=${1:-}
case $mib in '' | *[!0-9]*)
    echo "usage: memcap.sh [-d] MIB COMMAND [ARGS...]" >&2
    exit 2
    ;;
esac
shift
[ $# -gt 0 ] || {
    echo "usage: memcap.sh [-d] MIB COMMAND [ARGS...]" >&2
    exit 2
}

out=$(mktemp)
trap 'rm -f "$out"' EXIT
if [ $use_data = 1 ]; then
    GOMEMLIMIT=${mib}MiB prlimit --data=$((mib * 1048576)) -- "$@" >"$out" 2>&1 &
else
    "$@" >"$out" 2>&1 &
fi
pid=$!
limit_kb=$((mib * 1024))
peak_kb=0
killed=0
while kill -0 "$pid" 2>/dev/null; do
    read -r rss hwm < <(awk '/^VmRSS:/ { r = $2 } /^VmHWM:/ { h = $2 } END { print r + 0, h + 0 }' \
        "/proc/$pid/status" 2>/dev/null) || break
    [ "${hwm:-0}" -gt "$peak_kb" ] && peak_kb=$hwm
    if [ "${rss:-0}" -gt $limit_kb ]; then
        kill -KILL "$pid" 2>/dev/null
        killed=1
        break
    fi
    # A Go program that threw is dumping its goroutines: minutes for millions of them.
    if head -c 1048576 "$out" | grep -q '^fatal error:'; then
        sleep 1
        kill -KILL "$pid" 2>/dev/null
        killed=2
        break
    fi
    sleep 0.05
done
wait "$pid" 2>/dev/null
rc=$?
lines=$(wc -l <"$out")
if [ "$lines" -gt 200 ]; then
    head -n 100 "$out"
    echo "memcap: ... $((lines - 110)) lines left out ..."
    tail -n 10 "$out"
else
    cat "$out"
fi
[ $killed = 1 ] && echo "memcap: killed: resident set passed ${mib} MiB"
[ $killed = 2 ] && echo "memcap: killed 1 s after its fatal error, cutting its dump short"
echo "memcap: peak rss $((peak_kb / 1024)) MiB"
exit $rc
