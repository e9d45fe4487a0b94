#!/usr/bin/env python3
"""trace_check.py - checks a trace file written by goro's execution tracer.

Run by tests/trace_events.c (python3 standard library only):

    trace_check.py FILE [--created N] [--existing N] [--ended N] [--regions N]
                        [--logs N] [--escaped-log CATEGORY] [--tasks N] [--dropped]
                        [--reasons A,B,...]

Checks, independently of the writer's own checks:
  - the file is valid JSON with traceEvents, displayTimeUnit and otherData;
  - the writer saw no event out of order (anomalies 0) and dropped none;
  - counts: goroutines created / existing / ended, region slices (region_begins ==
    region_ends == N), log events, each as given;
  - every goroutine's track: its slices, in time order, neither overlap nor leave gaps,
    and follow the legal order: a created goroutine starts "runnable" at its "create"
    instant; runnable -> running; running -> runnable | blocked: * | syscall | end;
    blocked -> runnable; syscall -> running | runnable (the call lost its P); "end" is
    the last thing on the track and comes when a running slice ends;
  - the writer's times never go back: each goroutine's slices, and each P track's, come in
    the file in the order of their start times (the merge orders events by causality and
    raises a held event's time to the one it waited for, tracer_json.c J2);
  - every P's goroutine track and thread track: slices in time order, no overlap;
  - every flow start ("s") has its finish ("f") with the same id, not earlier;
  - the program's wait reasons show up: chan receive, sleep, mutex, IO wait (read); and a
    syscall slice (--reasons A,B,...: those slices instead);
  - with --tasks N: N tasks began and ended (otherData, and N matching "b"/"e" pairs on
    the Tasks track, each ending no earlier than it began), and with N > 0 a region slice
    and a log event name one of them in args.task;
  - with --escaped-log CAT: the message of the log named CAT equals the bytes in
    escaped.bin next to FILE, decoded as UTF-8 with invalid bytes as U+FFFD.
Prints what fails and exits 1; prints a summary and exits 0 when all hold.
"""
import argparse
import collections
import json
import os
import sys

EPS = 0.0015  # microseconds: the file has 3 decimals (ns)

errors = []


def fail(msg):
    if len(errors) < 30:
        errors.append(msg)


LEGAL = {
    None: {"runnable"},  # a created goroutine starts runnable
    "runnable": {"running"},
    "running": {"runnable", "blocked", "syscall", "end"},
    "blocked": {"runnable"},
    "syscall": {"running", "runnable"},
}


def kind(name):
    return "blocked" if name.startswith("blocked: ") else name


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--reasons", default="chan receive,sleep,mutex,IO wait (read),syscall",
                    help="slice names that must appear, comma-separated")
    for a in ("created", "existing", "ended", "regions", "logs", "tasks"):
        ap.add_argument("--" + a, type=int)
    ap.add_argument("--escaped-log")
    ap.add_argument("--dropped", action="store_true",
                    help="the buffer limit was hit: expect dropped > 0 and check only the "
                    "JSON, the P tracks and the flows")
    args = ap.parse_args()

    with open(args.file, "rb") as f:
        raw = f.read()
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        print("trace_check: %s is not valid JSON: %s" % (args.file, e))
        return 1
    for key in ("traceEvents", "displayTimeUnit", "otherData"):
        if key not in doc:
            fail("no %r in the file" % key)
    evs = doc.get("traceEvents", [])
    od = doc.get("otherData", {})

    if args.dropped:
        if not od.get("dropped"):
            fail("expected dropped events, got %r" % od.get("dropped"))
    elif od.get("anomalies") != 0:
        fail("writer anomalies: %r %r" % (od.get("anomalies"), od.get("anomaly_samples")))
    if not args.dropped and od.get("dropped") != 0:
        fail("dropped events: %r" % od.get("dropped"))
    if args.created is not None and od.get("goroutines_created") != args.created:
        fail("goroutines_created %r, expected %d" % (od.get("goroutines_created"), args.created))
    if args.existing is not None and od.get("goroutines_existing") != args.existing:
        fail("goroutines_existing %r, expected %d" % (od.get("goroutines_existing"), args.existing))
    if args.ended is not None and od.get("goroutines_ended") != args.ended:
        fail("goroutines_ended %r, expected %d" % (od.get("goroutines_ended"), args.ended))
    if args.regions is not None:
        if od.get("region_begins") != args.regions or od.get("region_ends") != args.regions:
            fail("region begins/ends %r/%r, expected %d" %
                 (od.get("region_begins"), od.get("region_ends"), args.regions))
    if args.logs is not None and od.get("logs") != args.logs:
        fail("logs %r, expected %d" % (od.get("logs"), args.logs))

    for e in evs:
        for k in ("ph", "pid", "tid", "ts"):
            if k not in e:
                fail("event without %r: %r" % (k, e))
                break

    # Per goroutine track (pid 2).
    slices = collections.defaultdict(list)
    instants = collections.defaultdict(list)
    logs = []
    regions = 0
    flows_s, flows_f = {}, {}
    reasons = collections.Counter()
    for e in evs:
        ph, pid = e.get("ph"), e.get("pid")
        if pid == 2 and ph == "X":
            slices[e["tid"]].append((e["ts"], e["ts"] + e["dur"], e["name"], e.get("args", {})))
            if e["name"].startswith("blocked: "):
                reasons[e["name"][9:]] += 1
            elif e["name"] == "syscall":
                reasons["syscall"] += 1
        elif pid == 2 and ph == "i":
            if e.get("cat") == "log":
                logs.append(e)
            else:
                instants[e["tid"]].append((e["ts"], e["name"]))
        elif pid == 3 and ph == "X":
            regions += 1
        elif ph == "s":
            flows_s[e["id"]] = e["ts"]
        elif ph == "f":
            flows_f[e["id"]] = e["ts"]

    created = ended = 0
    for tid in [] if args.dropped else set(slices) | set(instants):
        # The writer writes each goroutine's slices in order, at times that never go back;
        # a few may last 0 ns (events the merge held back, tracer_json.c J2).
        sl = slices[tid]
        for (b0, _, n0, _), (b1, _, n1, _) in zip(sl, sl[1:]):
            if b1 < b0 - EPS:
                fail("G%d: %s at %.3f written after %s at %.3f: time went back" %
                     (tid, n1, b1, n0, b0))
        sl = sorted(sl, key=lambda s: s[0])
        ins = sorted(instants[tid])
        creates = [t for t, n in ins if n == "create"]
        ends = [t for t, n in ins if n == "end"]
        created += len(creates)
        ended += len(ends)
        if len(creates) > 1 or len(ends) > 1:
            fail("G%d: %d creates, %d ends" % (tid, len(creates), len(ends)))
        prev = None
        prev_end = None
        if creates:
            if not sl or abs(sl[0][0] - creates[0]) > EPS:
                fail("G%d: its first slice does not start at its create" % tid)
        for (b, e, name, a) in sl:
            k = kind(name)
            if prev_end is not None and abs(b - prev_end) > EPS:
                fail("G%d: %s at %.3f: %s after the previous slice ended at %.3f" %
                     (tid, name, b, "gap" if b > prev_end else "overlap", prev_end))
            if (prev is not None or creates) and k not in LEGAL.get(prev, ()):
                fail("G%d: %s after %s at %.3f" % (tid, name, prev, b))
            if e < b - EPS:
                fail("G%d: slice %s ends before it begins" % (tid, name))
            prev, prev_end = k, e
        if ends:
            if prev != "running" or abs(ends[0] - prev_end) > EPS:
                fail("G%d: end at %.3f not at the end of a running slice (%s, %.3f)" %
                     (tid, ends[0], prev, prev_end or -1))
            for t, n in ins:
                if t > ends[0] + EPS:
                    fail("G%d: %s after its end" % (tid, n))
    if args.created is not None and created != args.created:
        fail("%d create instants, expected %d" % (created, args.created))
    if args.ended is not None and ended != args.ended:
        fail("%d end instants, expected %d" % (ended, args.ended))
    if args.regions is not None and regions != args.regions:
        fail("%d region slices, expected %d" % (regions, args.regions))
    if args.logs is not None and len(logs) != args.logs:
        fail("%d log events, expected %d" % (len(logs), args.logs))

    # Per P (pid 1): both of each P's tracks in time order without overlap.
    ptracks = collections.defaultdict(list)
    for e in evs:
        if e.get("pid") == 1 and e.get("ph") == "X":
            ptracks[e["tid"]].append((e["ts"], e["ts"] + e["dur"], e["name"]))
    for tid, sl in ptracks.items():
        for (b0, _, n0), (b1, _, n1) in zip(sl, sl[1:]):
            if b1 < b0 - EPS:
                fail("P track %d: %s at %.3f written after %s at %.3f: time went back" %
                     (tid, n1, b1, n0, b0))
        sl.sort()
        for (b0, e0, n0), (b1, e1, n1) in zip(sl, sl[1:]):
            if b1 < e0 - EPS:
                fail("P track %d: %s [%.3f, %.3f] overlaps %s [%.3f, %.3f]" %
                     (tid, n0, b0, e0, n1, b1, e1))
    if not ptracks:
        fail("no P track has a slice")

    for fid, ts in [] if args.dropped else flows_s.items():
        if fid not in flows_f:
            fail("flow %s has no finish" % fid)
        elif flows_f[fid] < ts - EPS:
            fail("flow %s finishes before it starts" % fid)
    for fid in [] if args.dropped else flows_f:
        if fid not in flows_s:
            fail("flow %s has no start" % fid)

    for r in () if args.dropped else args.reasons.split(","):
        if reasons[r] == 0:
            fail("no %r slice" % r)

    if args.tasks is not None:
        if (od.get("task_begins"), od.get("task_ends"), od.get("unmatched_task_ends")) != \
                (args.tasks, args.tasks, 0):
            fail("tasks begun/ended/unmatched %r/%r/%r, expected %d" %
                 (od.get("task_begins"), od.get("task_ends"), od.get("unmatched_task_ends"),
                  args.tasks))
        tb = {e["id"]: e["ts"] for e in evs if e.get("pid") == 5 and e.get("ph") == "b"}
        te = {e["id"]: e["ts"] for e in evs if e.get("pid") == 5 and e.get("ph") == "e"}
        if len(tb) != args.tasks or set(tb) != set(te):
            fail("task slices: begins %r, ends %r" % (sorted(tb), sorted(te)))
        for tid in set(tb) & set(te):
            if te[tid] < tb[tid] - EPS:
                fail("task %s ends before it begins" % tid)
        if args.tasks:
            named = [e for e in evs if e.get("pid") in (2, 3) and e.get("ph") in ("X", "i")
                     and e.get("args", {}).get("task") in tb]
            if not any(e["pid"] == 3 for e in named) or not any(e["pid"] == 2 for e in named):
                fail("no region slice and log event both naming a task")

    if args.escaped_log:
        want_path = os.path.join(os.path.dirname(args.file), "escaped.bin")
        with open(want_path, "rb") as f:
            want = f.read().decode("utf-8", errors="replace")
        got = [e["args"]["message"] for e in logs if e["name"] == args.escaped_log]
        if got != [want]:
            fail("escaped log: got %r, want %r" % (got, want))

    if errors:
        for m in errors:
            print("trace_check: %s: %s" % (args.file, m))
        return 1
    print("trace_check: %s: ok: %d events, %d goroutine tracks, %d P tracks, %d flows, "
          "reasons %s" % (args.file, len(evs), len(set(slices)), len(ptracks), len(flows_s),
                          dict(reasons)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
