#!/usr/bin/env bash
# gdb_goroutines.sh PROGRAM GDB GORO_PY [SYSROOT EMULATOR]
#
# Runs tests/gdb_goroutines.c's program under gdb in batch mode with tools/gdb/goro.py
# loaded, stops it at goro_test_stop_here (every goroutine parked in its place) and checks
# what `info goroutines` and `goroutine ... bt` print: each goroutine with its state, wait
# reason and the function it waits in, and backtraces that reach the function that parked.
#
# With SYSROOT and EMULATOR (a cross build: qemu-aarch64 and gdb-multiarch), the program
# runs under the emulator's gdb stub on a Unix socket (no network port) and gdb attaches
# to it with `target remote`.
set -u
prog=$1 gdb=$2 goro_py=$3 sysroot=${4:-} emulator=${5:-}
out=$(mktemp)
sock=
qemu_pid=
cleanup() {
    [ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null
    rm -f "$out" ${sock:+"$sock"}
}
trap cleanup EXIT

start=(-ex run)
if [ -n "$emulator" ]; then
    sock=$(mktemp -u "${TMPDIR:-/tmp}/goro-gdb.XXXXXX")
    GORO_MAXPROCS=1 "$emulator" -L "$sysroot" -g "$sock" "$prog" >/dev/null 2>&1 &
    qemu_pid=$!
    for _ in $(seq 100); do
        [ -S "$sock" ] && break
        kill -0 "$qemu_pid" 2>/dev/null || { echo "FAIL: $emulator exited before gdb attached"; exit 1; }
        sleep 0.1
    done
    [ -S "$sock" ] || { echo "FAIL: no gdb socket from $emulator after 10 s"; exit 1; }
    start=(-ex "set sysroot $sysroot" -ex "target remote $sock" -ex 'break goro_test_stop_here'
           -ex continue)
else
    start=(-ex 'break goro_test_stop_here' -ex run)
fi

GORO_MAXPROCS=1 timeout 120 "$gdb" -batch -nx -x "$goro_py" \
    -ex 'set pagination off' \
    "${start[@]}" \
    -ex 'info goroutines' \
    -ex 'goroutine all bt' \
    -ex 'goroutine 1 bt' \
    -ex 'goroutine 999 bt' \
    -ex kill \
    "$prog" >"$out" 2>&1
rc=$?
fail=0
check() { # description, extended regex that some line must match
    if ! grep -Eq -- "$2" "$out"; then
        echo "FAIL: $1 (no line matches: $2)"
        fail=1
    fi
}
# The lines of one goroutine's backtrace: from its header to the next header.
section() {
    awk -v h="$1" '/^goroutine /{p = index($0, h) == 1} p' "$out"
}
check_bt() { # header prefix, function the backtrace must contain
    if ! section "$1" | grep -Eq -- " in $2( |$)"; then
        echo "FAIL: backtrace of '$1' does not reach $2:"
        section "$1" | sed 's/^/    /'
        fail=1
    fi
}

[ $rc -eq 0 ] || { echo "FAIL: gdb exited with $rc"; fail=1; }
check "stopped at the breakpoint" '^Thread 1 (.* )?hit Breakpoint 1, goro_test_stop_here'
check "the summary line" '^8 goroutines, 1 procs, 1 threads$'
# info goroutines: one row each, state, wait reason, where.
row='^[ *] +[0-9]+ +'
check "main, running on thread 1" '^\* +1 +running +- +goro_test_stop_here \(.*\) \[thread 1\]$'
check "the receiver" "${row}waiting +chan receive +[0-9]+ ms +wait_recv \(.*gdb_goroutines.c:[0-9]+\)$"
check "the mutex waiter" "${row}waiting +mutex +[0-9]+ ms +wait_mutex \("
check "the sleeper" "${row}waiting +sleep +[0-9]+ ms +wait_sleep \("
check "the select" "${row}waiting +select +[0-9]+ ms +wait_select \("
check "the wait group waiter" "${row}waiting +waitgroup +[0-9]+ ms +wait_group \("
check "the yielder, runnable" "${row}runnable +- +keep_yielding \("
check "the goroutine not started" "${row}runnable +- +not started: never_started$"
rows=$(grep -Ec "${row}(running|runnable|waiting|blocking call) " "$out")
[ "$rows" -eq 8 ] || { echo "FAIL: $rows goroutine rows, want 8"; fail=1; }
# goroutine all bt: the headers, and backtraces that reach the parking function.
check "the named receiver's header" '^goroutine [0-9]+ "receiver" \[chan receive, [0-9]+ ms\]:$'
check_bt 'goroutine 1 "main" [running]' 'main_fn'
check_bt 'goroutine 2 "receiver" [chan receive' 'wait_recv'
check_bt 'goroutine 2 "receiver" [chan receive' 'goro_chan_recv'
for pair in "mutex:wait_mutex" "sleep:wait_sleep" "select:wait_select" "waitgroup:wait_group"; do
    reason=${pair%%:*} fn=${pair#*:}
    hdr=$(grep -Eo "^goroutine [0-9]+ \[$reason, " "$out" | head -1)
    if [ -z "$hdr" ]; then
        echo "FAIL: no backtrace header for [$reason"
        fail=1
    else
        check_bt "$hdr" "$fn"
    fi
done
id=$(grep -E "${row}runnable +- +keep_yielding" "$out" | sed -E 's/^[ *] +([0-9]+).*/\1/')
if [ -n "$id" ]; then
    check_bt "goroutine $id [runnable]" keep_yielding
else
    echo "FAIL: no row for keep_yielding"
    fail=1
fi
check "a goroutine that never ran" '^    not started yet: will run never_started$'
check "frame lines" '^#[0-9]+ +0x[0-9a-f]{16} in (goro__park|park_untraced|park_traced)( |$)'
check "an unknown id is an error" 'goroutine 999: no such goroutine'

if [ $fail -ne 0 ]; then
    echo "--- gdb output:"
    cat "$out"
    exit 1
fi
echo "PASS gdb_goroutines"
