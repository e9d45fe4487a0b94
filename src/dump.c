/*
 * dump.c - the goroutine dump (goro_dump, SIGQUIT, the report of a fatal error) and the
 * names of goroutine states and wait reasons.
 *
 * A dump lists every live goroutine: id, name, state, wait reason and for how long,
 * where it was spawned, and a backtrace. Backtraces walk frame pointers (the library is
 * built with -fno-omit-frame-pointer; user code built without them shows fewer frames).
 * A parked goroutine's frames are only read while it cannot resume: goro_dump called
 * from a goroutine stops the world first; fatal errors and SIGQUIT read them only for
 * the goroutine that is dumping, and print the others' states.
 *
 * Output goes through goro__out: formatted into a stack buffer and written with
 * write(2), no stdio and no allocation, so the signal handlers can use it.
 *
 * See also: fatal.c (goro__fatal), stats.c (goro_stats_get), gdesc.c (the descriptor
 * slabs a dump walks), tools/gdb/goro.py (the same walk from a debugger).
 */
#define _GNU_SOURCE 1
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atomic.h"
#include "internal.h"

static const char *const wait_reasons[GORO__WAIT_NREASONS] = {
    [GORO__WAIT_NONE] = "",
    [GORO__WAIT_SLEEP] = "sleep",
    [GORO__WAIT_MUTEX] = "mutex",
    [GORO__WAIT_WAITGROUP] = "waitgroup",
    [GORO__WAIT_RWMUTEX_R] = "rwmutex rlock",
    [GORO__WAIT_RWMUTEX_W] = "rwmutex lock",
    [GORO__WAIT_COND] = "cond wait",
    [GORO__WAIT_CHAN_SEND] = "chan send",
    [GORO__WAIT_CHAN_RECV] = "chan receive",
    [GORO__WAIT_CHAN_SEND_NIL] = "chan send (nil chan)",
    [GORO__WAIT_CHAN_RECV_NIL] = "chan receive (nil chan)",
    [GORO__WAIT_SELECT] = "select",
    [GORO__WAIT_SELECT_NOCASES] = "select (no cases)",
    [GORO__WAIT_IO_READ] = "IO wait (read)",
    [GORO__WAIT_IO_WRITE] = "IO wait (write)",
    [GORO__WAIT_PREEMPTED] = "waiting for a P",
};

const char *goro__wait_reason_str(int reason) {
    return reason >= 0 && reason < GORO__WAIT_NREASONS ? wait_reasons[reason] : "?";
}

/* ------------------------------------------------------------------ dump */

/* printf to fd through a stack buffer and write(2): no stdio buffer is allocated, so it
 * is usable from the signal handlers (stack overflow, SIGQUIT). */
void goro__out(int fd, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof buf - 1)
        n = (int)sizeof buf - 1;
    for (int off = 0; n > 0 && off < n;) {
        ssize_t w = write(fd, buf + off, (size_t)(n - off));
        if (w <= 0)
            return;
        off += (int)w;
    }
}

typedef struct dumpctx {
    int fd;
    bool frames; /* parked goroutines' stacks may be read */
    goro__g *self;
    int64_t now;
} dumpctx;

static void print_pc(int fd, const char *prefix, uintptr_t pc) {
    Dl_info info;
    if (dladdr((void *)pc, &info) && info.dli_fname) {
        if (info.dli_sname)
            goro__out(fd, "%s%s+0x%lx (%s)\n", prefix, info.dli_sname,
                      (unsigned long)(pc - (uintptr_t)info.dli_saddr), info.dli_fname);
        else
            goro__out(fd, "%s%s+0x%lx\n", prefix, info.dli_fname,
                      (unsigned long)(pc - (uintptr_t)info.dli_fbase));
    } else {
        goro__out(fd, "%s0x%lx\n", prefix, (unsigned long)pc);
    }
}

/* Walks the frame-pointer chain from (fp, pc) within [lo, hi). */
static void print_frames(int fd, uintptr_t fp, uintptr_t pc, uintptr_t lo, uintptr_t hi) {
    for (int depth = 0; depth < 32 && pc; depth++) {
        print_pc(fd, "    ", pc);
        if (fp < lo || fp + 2 * sizeof(uintptr_t) > hi || (fp & (sizeof(uintptr_t) - 1)))
            break;
        const uintptr_t *frame = (const uintptr_t *)fp;
        uintptr_t next = frame[0];
        pc = frame[1];
        if (next <= fp)
            break;
        fp = next;
    }
}

static const char *state_name(uint32_t st) {
    switch (st) {
    case GORO__G_RUNNABLE:
        return "runnable";
    case GORO__G_RUNNING:
        return "running";
    case GORO__G_WAITING:
        return "waiting";
    case GORO__G_SYSCALL:
        return "blocking call";
    default:
        return "?";
    }
}

static void dump_g(goro__g *g, void *arg) {
    dumpctx *c = arg;
    /* Acquire pairs with the release store of status in newproc and finish_switch. */
    uint32_t st = goro__load_acquire(&g->status);
    if (st == GORO__G_FREE)
        return;
    uint64_t id = goro__load_relaxed(&g->id);
    const char *name = goro__load_relaxed(&g->name);
    char namebuf[96] = "";
    if (name)
        snprintf(namebuf, sizeof namebuf, " \"%s\"", name);
    if (st == GORO__G_WAITING) {
        int64_t since = goro__load_relaxed(&g->wait_since);
        long long ms = since ? (long long)((c->now - since) / 1000000) : 0;
        goro__out(c->fd, "goroutine %llu%s [%s, %lld ms]:\n", (unsigned long long)id, namebuf,
                  goro__wait_reason_str(goro__load_relaxed(&g->wait_reason)), ms);
    } else {
        goro__out(c->fd, "goroutine %llu%s [%s]:\n", (unsigned long long)id, namebuf,
                  g == c->self ? "running, dumping" : state_name(st));
    }
    /* The stack fields of others are only stable when the world is stopped. */
    if (g == c->self || (c->frames && st != GORO__G_RUNNING && g->stack_lo &&
                         goro__load_relaxed(&g->sp) != GORO__SP_SAVING)) {
        uintptr_t lo = (uintptr_t)g->stack_lo, hi = lo + g->stack_size, fp, pc;
        if (g == c->self) {
            const uintptr_t *here = __builtin_frame_address(0);
            fp = here[0];
            pc = here[1];
        } else {
            goro__ctx_frame(g->sp, &fp, &pc);
        }
        print_frames(c->fd, fp, pc, lo, hi);
    }
    void *spawn_pc = goro__load_relaxed(&g->spawn_pc);
    if (spawn_pc)
        print_pc(c->fd, "  spawned at ", (uintptr_t)spawn_pc);
    goro__out(c->fd, "\n");
}

void goro__dump_locked(int fd, bool frames) {
    if (!goro__S.allp) {
        goro__out(fd, "goro: no runtime is running\n");
        return;
    }
    dumpctx c = {.fd = fd, .frames = frames, .self = goro__getg(), .now = goro__nanotime_coarse()};
    goro__out(fd, "goro: %d goroutines, %d procs, %d threads\n\n", goro_numgoroutine(),
              goro__load_relaxed(&goro__S.gomaxprocs), goro__load_relaxed(&goro__S.mcount));
    goro__for_each_g(dump_g, &c);
}

void goro_dump(int fd) {
    goro__m *m = goro__getm();
    if (!m || !m->curg) {
        goro__dump_locked(fd, false);
        return;
    }
    /* Stopped, no goroutine can resume, so their stacks hold still while we read. */
    goro__stop_the_world();
    pthread_mutex_lock(&goro__S.gfree_lock);
    goro__dump_locked(fd, true);
    pthread_mutex_unlock(&goro__S.gfree_lock);
    goro__start_the_world(goro__load_relaxed(&goro__S.gomaxprocs));
}
