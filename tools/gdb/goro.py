# goro.py - gdb commands for goro's goroutines.
#
#   info goroutines       every live goroutine: id, state, wait reason, for how long, and
#                         where it is (the first frame outside the runtime)
#   goroutine N bt        the backtrace of goroutine N
#   goroutine all bt      the backtraces of all of them
#
# Load it with `source /path/to/tools/gdb/goro.py` (or -x on gdb's command line). An
# installed copy named after the shared library (libgoro.so.X.Y.Z-gdb.py in gdb's
# auto-load directory, see docs/DEBUGGING.md) loads itself with the library.
#
# How it finds goroutines: the way goro_dump does (src/dump.c). Every descriptor lives in
# a slab on the list goro__sched_state.gslabs (src/gdesc.c); a descriptor whose status is
# not FREE is a live goroutine. The slabs are read in one piece each and the fields picked
# out at the offsets the debug information gives, so a program with many goroutines does
# not cost one ptrace read per field.
#
# How it unwinds a goroutine that is not running: its saved stack pointer g->sp points at
# the frame goro__ctx_switch pushed (src/arch/<cpu>/switch.S): on x86-64 the saved rbp is
# at sp+48 and the return address at sp+56; on aarch64 x29 is at sp+80 and x30 at sp+88.
# From there the walk follows the frame-pointer chain ([fp] is the caller's fp, [fp+8]
# the return address, on both), which the runtime keeps (-fno-omit-frame-pointer). A
# goroutine that is running is on a thread: the M list gives the kernel thread id of the
# M that runs it (m->tid, m->curg), and its backtrace is gdb's own `bt` on that thread. A goroutine that never
# ran has no stack yet; its entry function is shown.
#
# Nothing here writes to the inferior. The layout facts above are restated from the
# runtime's sources; if switch.S changes, SAVED_FRAME below must follow.

import gdb
import os
import struct

# (offset of the saved frame pointer, offset of the return address) from g->sp.
SAVED_FRAME = {"x86_64": (48, 56), "aarch64": (80, 88)}
MAX_FRAMES = 64

STATE_NAMES = {1: "runnable", 2: "running", 3: "waiting", 4: "blocking call"}


def _arch():
    name = gdb.selected_inferior().architecture().name()
    if "aarch64" in name:
        return "aarch64"
    if "x86-64" in name or "x86_64" in name:
        return "x86_64"
    raise gdb.GdbError("goro: unsupported architecture %s" % name)


def _u64(b, off):
    return struct.unpack_from("<Q", b, off)[0]


def _i64(b, off):
    return struct.unpack_from("<q", b, off)[0]


def _u32(b, off):
    return struct.unpack_from("<I", b, off)[0]


def _u16(b, off):
    return struct.unpack_from("<H", b, off)[0]


def _read_ptr(addr):
    return _u64(bytes(gdb.selected_inferior().read_memory(addr, 8)), 0)


def _read_cstr(addr, limit=256):
    if not addr:
        return None
    try:
        return gdb.Value(addr).cast(gdb.lookup_type("char").pointer()).string(length=-1)[:limit]
    except gdb.error:
        return None


def _wait_reasons():
    try:
        sym = gdb.lookup_static_symbol("wait_reasons")
        arr = sym.value()
        lo, hi = arr.type.range()
        return [arr[i].string() if int(arr[i]) else "" for i in range(lo, hi + 1)]
    except (gdb.error, AttributeError):
        return []


def _runtime_dir():
    """The directory of the runtime's sources, to tell its frames from the program's."""
    try:
        sym = gdb.lookup_global_symbol("goro_run")
        if sym is not None and sym.symtab is not None:
            return os.path.dirname(sym.symtab.fullname())
    except gdb.error:
        pass
    return None


class Goroutine(object):
    pass


def _goroutines():
    try:
        sched = gdb.parse_and_eval("goro__sched_state")
    except gdb.error:
        raise gdb.GdbError("goro: no goro__sched_state here (is the program linked with goro, "
                           "with debug information?)")
    if int(sched["allp"]) == 0:
        return [], sched
    gtype = gdb.lookup_type("goro__g")
    slab_t = gdb.lookup_type("gslab")
    size = gtype.sizeof
    off = {f.name: f.bitpos // 8 for f in gtype.fields()}
    slab_off = {f.name: f.bitpos // 8 for f in slab_t.fields()}
    g0_off = slab_off["g"]
    # In a run that compacts stacks each descriptor is followed by its compaction part,
    # struct goro__gwait (src/runtime.h), and the slab's stride says so.
    cstk_off = {f.name: f.bitpos // 8
                for f in gdb.lookup_type("goro__gwait").fields()}["cstk"]
    reasons = _wait_reasons()
    inf = gdb.selected_inferior()
    now = int(sched["coarse_now"])
    gs = []
    slab = int(sched["gslabs"])
    while slab:
        hdr = bytes(inf.read_memory(slab, g0_off))
        nxt, n = _u64(hdr, slab_off["next"]), _u64(hdr, slab_off["n"])
        stride = _u64(hdr, slab_off["stride"])
        base = slab + g0_off
        mem = bytes(inf.read_memory(base, n * stride))
        for i in range(n):
            o = i * stride
            status = _u32(mem, o + off["status"])
            if status == 0:
                continue
            g = Goroutine()
            g.addr = base + o
            g.status = status
            g.state = STATE_NAMES.get(status, "?%d" % status)
            # The id: bits 8-47 of the goroutine word (runtime.h, goro__gword), bits 40-55
            # in id_hi.
            g.id = ((_u64(mem, o + off["gword"]) >> 8) & ((1 << 40) - 1)) | \
                (_u16(mem, o + off["id_hi"]) << 40)
            g.sp = _u64(mem, o + off["sp"])
            g.fn = _u64(mem, o + off["fn"])
            g.stack_lo = _u64(mem, o + off["stack_lo"])
            g.stack_size = _u32(mem, o + off["stack_size"])
            g.cstk = _u64(mem, o + size + cstk_off) if stride > size else 0
            g.name = _read_cstr(_u64(mem, o + off["name"]))
            reason = mem[o + off["wait_reason"]]
            g.reason = ""
            g.since_ms = None
            if status == 3:
                g.reason = reasons[reason] if reason < len(reasons) else "reason %d" % reason
                since = _i64(mem, o + off["wait_since"])
                g.since_ms = (now - since) // 1000000 if since else 0
            g.thread = None
            gs.append(g)
        slab = nxt
    gs.sort(key=lambda g: g.id)
    _find_threads(gs, sched)
    return gs, sched


def _find_threads(gs, sched):
    """Marks each running goroutine with the gdb thread whose M runs it: the M list
    (sched.allm) gives each M's kernel thread id and curg, and a gdb thread's ptid carries
    the same id as its lwp, natively and through qemu-user's gdb stub alike."""
    by_addr = {g.addr: g for g in gs}
    curg_of_tid = {}
    m = sched["allm"]
    while int(m) != 0:
        curg = int(m["curg"])
        if curg:
            curg_of_tid[int(m["tid"])] = curg
        m = m["alllink"]
    for t in gdb.selected_inferior().threads():
        lwp = t.ptid[1] or t.ptid[2]
        curg = curg_of_tid.get(lwp)
        if curg in by_addr:
            by_addr[curg].thread = t


def _frames_of(g):
    """The return addresses of a goroutine that is switched out, innermost first."""
    # A running goroutine's saved context is stale (it is from its last switch),
    # GORO__SP_SAVING (1) means a park has not stored it yet, and while the compactor
    # works on the stack (GORO__SP_COMPACTING, 2) it is in flux.
    if g.status in (2, 4) or not g.stack_lo or not g.sp or g.sp in (1, 2):
        return []
    lo, hi = g.stack_lo, g.stack_lo + g.stack_size
    sp, read = g.sp, _read_ptr
    if g.sp == 4:
        # GORO__SP_RESTORED: a fault put the stack back (src/compact.c, K6); the saved
        # stack pointer is still only in the attached copy's header.
        if not g.cstk:
            return []
        sp = _read_ptr(g.cstk)
    elif g.sp == 3:
        # GORO__SP_COMPACTED: the stack's bytes [sp, top) are in its cstk, a struct
        # goro__cstack {char *sp; uint32_t len; bool guarded; uint32_t elem_off,
        # elem_len; uint64_t bytes[];} (src/compact.c); read the frames there.
        if not g.cstk:
            return []
        sp = _read_ptr(g.cstk)
        copy = g.cstk + 24

        def read(addr):
            return _read_ptr(copy + (addr - sp)) if sp <= addr < hi else 0

    fp_off, pc_off = SAVED_FRAME[_arch()]
    fp = read(sp + fp_off)
    pc = read(sp + pc_off)
    out = []
    while pc and len(out) < MAX_FRAMES:
        out.append(pc)
        if fp < lo or fp + 16 > hi or fp & 7:
            break
        nxt = read(fp)
        pc = read(fp + 8)
        if nxt <= fp:
            break
        fp = nxt
    return out


def _describe(pc):
    """[(function, file:line or None)] for a return address, innermost inlined first."""
    look = pc - 1  # a return address is after the call; its line is the call's
    out = []
    try:
        block = gdb.block_for_pc(look)
    except RuntimeError:
        block = None
    sal = gdb.find_pc_line(look)
    where = None
    if sal.symtab is not None:
        where = "%s:%d" % (sal.symtab.filename, sal.line)
    while block is not None and not block.is_global and not block.is_static:
        if block.function is not None:
            out.append((block.function.print_name, where, block.function.symtab))
            where = None  # the call site of an inlined function is not known here
        block = block.superblock
    if not out:
        sym = gdb.execute("info symbol 0x%x" % look, to_string=True).split(" in section")[0]
        if sym.startswith("No symbol"):
            sym = "??"
        else:
            sym = sym.split(" + ")[0].strip()
        out.append((sym, where, None))
    return out


def _is_runtime(symtab, rdir):
    if symtab is None or rdir is None:
        return False
    path = symtab.fullname()
    return path.startswith(rdir + os.sep)


def _where(g, rdir):
    if g.thread is not None:
        try:
            frame = gdb.newest_frame()
            keep = gdb.selected_thread()
            g.thread.switch()
            frame = gdb.newest_frame()
            text = None
            while frame is not None:
                fn = frame.function()
                if fn is not None and not _is_runtime(fn.symtab, rdir):
                    sal = frame.find_sal()
                    text = fn.print_name
                    if sal.symtab is not None:
                        text += " (%s:%d)" % (sal.symtab.filename, sal.line)
                    break
                frame = frame.older()
            keep.switch()
            return (text or "?") + " [thread %d]" % g.thread.num
        except gdb.error:
            return "[thread %d]" % g.thread.num
    if g.status in (2, 4):
        return "on a thread gdb cannot name (no thread has its M's id)"
    frames = _frames_of(g)
    if not frames:
        if g.fn and not g.stack_lo:
            return "not started: " + _describe(g.fn + 1)[0][0]
        return "?"
    for pc in frames:
        for fn, where, symtab in _describe(pc):
            if not _is_runtime(symtab, rdir):
                return fn + (" (%s)" % where if where else "")
    return _describe(frames[0])[0][0]


def _header(g):
    name = ' "%s"' % g.name if g.name else ""
    if g.status == 3:
        return "goroutine %d%s [%s, %d ms]:" % (g.id, name, g.reason, g.since_ms)
    return "goroutine %d%s [%s]:" % (g.id, name, g.state)


def _print_bt(g):
    gdb.write(_header(g) + "\n")
    if g.thread is not None:
        keep = gdb.selected_thread()
        g.thread.switch()
        try:
            gdb.write("(running on thread %d)\n" % g.thread.num)
            gdb.execute("bt")
        finally:
            keep.switch()
        return
    if g.status in (2, 4):
        gdb.write("    running on a thread gdb cannot name (no thread has its M's id): see "
                  "info threads\n")
        return
    frames = _frames_of(g)
    if not frames:
        if g.fn and not g.stack_lo:
            gdb.write("    not started yet: will run %s\n" % _describe(g.fn + 1)[0][0])
        else:
            gdb.write("    no saved context\n")
        return
    n = 0
    for pc in frames:
        for fn, where, _ in _describe(pc):
            gdb.write("#%-3d 0x%016x in %s%s\n" % (n, pc, fn, " at " + where if where else ""))
            n += 1


class InfoGoroutines(gdb.Command):
    """List goro's goroutines: id, state, wait reason, time waiting, and the first frame
outside the runtime. A running goroutine names its thread."""

    def __init__(self):
        super(InfoGoroutines, self).__init__("info goroutines", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        gs, sched = _goroutines()
        rdir = _runtime_dir()
        gdb.write("%d goroutines, %d procs, %d threads\n" % (
            len(gs), int(sched["gomaxprocs"]), int(sched["mcount"])))
        gdb.write("  %-6s %-14s %-24s %-9s %s\n" % ("Id", "State", "Wait reason", "Waiting",
                                                  "Where"))
        for g in gs:
            waiting = "%d ms" % g.since_ms if g.since_ms is not None else ""
            mark = "*" if g.thread is not None else " "
            gdb.write("%s %-6d %-14s %-24s %-9s %s\n" % (
                mark, g.id, g.state, g.reason or "-", waiting, _where(g, rdir)))


class GoroutineCmd(gdb.Command):
    """goroutine N bt: backtrace of goroutine N.  goroutine all bt: of every goroutine."""

    def __init__(self):
        super(GoroutineCmd, self).__init__("goroutine", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        argv = gdb.string_to_argv(arg)
        if len(argv) != 2 or argv[1] not in ("bt", "backtrace"):
            raise gdb.GdbError("usage: goroutine N bt | goroutine all bt")
        gs, _ = _goroutines()
        if argv[0] == "all":
            for g in gs:
                _print_bt(g)
                gdb.write("\n")
            return
        try:
            want = int(argv[0])
        except ValueError:
            raise gdb.GdbError("goroutine: %s is not a goroutine id" % argv[0])
        for g in gs:
            if g.id == want:
                _print_bt(g)
                return
        raise gdb.GdbError("goroutine %d: no such goroutine" % want)


InfoGoroutines()
GoroutineCmd()
