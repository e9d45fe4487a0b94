/*
 * trace.c - what the runtime tells about itself: fatal errors, goroutine dumps,
 * statistics and error names.
 *
 * A dump lists every live goroutine: id, name, state, wait reason and for how long,
 * where it was spawned, and a backtrace. Backtraces walk frame pointers (the library is
 * built with -fno-omit-frame-pointer; user code built without them shows fewer frames).
 * A parked goroutine's frames are only read while it cannot resume: goro_dump called
 * from a goroutine stops the world first; fatal errors and SIGQUIT read them only for
 * the goroutine that is dumping, and print the others' states.
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

const char *goro_strerror(int code) {
    switch (code) {
    case 0:
        return "success";
    case GORO_ECLOSED:
        return "channel closed";
    case GORO_ETIMEDOUT:
        return "deadline exceeded";
    case GORO_EAGAIN:
        return "operation would wait";
    case GORO_ECANCELED:
        return "canceled: descriptor closed";
    default:
        if (code < 0 && code > -4096)
            return strerror(-code);
        return "unknown error";
    }
}

/* ------------------------------------------------------------------ dump */

/* printf to fd through a stack buffer and write(2): no stdio buffer is allocated, so it
 * is usable from the signal handlers (stack overflow, SIGQUIT). */
static void out(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out(int fd, const char *fmt, ...) {
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
            out(fd, "%s%s+0x%lx (%s)\n", prefix, info.dli_sname,
                (unsigned long)(pc - (uintptr_t)info.dli_saddr), info.dli_fname);
        else
            out(fd, "%s%s+0x%lx\n", prefix, info.dli_fname,
                (unsigned long)(pc - (uintptr_t)info.dli_fbase));
    } else {
        out(fd, "%s0x%lx\n", prefix, (unsigned long)pc);
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
        out(c->fd, "goroutine %llu%s [%s, %lld ms]:\n", (unsigned long long)id, namebuf,
            goro__wait_reason_str(goro__load_relaxed(&g->wait_reason)), ms);
    } else {
        out(c->fd, "goroutine %llu%s [%s]:\n", (unsigned long long)id, namebuf,
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
    out(c->fd, "\n");
}

void goro__dump_locked(int fd, bool frames) {
    if (!goro__S.allp) {
        out(fd, "goro: no runtime is running\n");
        return;
    }
    dumpctx c = {.fd = fd, .frames = frames, .self = goro__getg(), .now = goro__nanotime_coarse()};
    out(fd, "goro: %d goroutines, %d procs, %d threads\n\n", goro_numgoroutine(),
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

void goro__fatal(const char *fmt, ...) {
    static uint32_t dying; /* [atomic] a fatal error while reporting one aborts at once */
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if (n > (int)sizeof buf - 2)
        n = (int)sizeof buf - 2;
    buf[n++] = '\n';
    out(2, "goro: fatal: %.*s", n, buf);
    if (goro__xchg_acqrel(&dying, 1) == 0) {
        out(2, "\n");
        goro__dump_locked(2, false);
    }
    abort();
}

/* ------------------------------------------------------------------ stats */

void goro_stats_get(goro_stats *out) {
    memset(out, 0, sizeof *out);
    if (!goro__S.allp)
        return;
    int32_t procs = goro__load_relaxed(&goro__S.gomaxprocs);
    for (int i = 0; i < GORO__MAXPROCS_LIMIT && goro__S.allp[i]; i++) {
        goro__p *p = goro__S.allp[i];
        out->goroutines += goro__load_relaxed(&p->ngoroutines);
        out->spawned += goro__load_relaxed(&p->nspawned);
        out->steals += goro__load_relaxed(&p->nsteals);
        if (i < procs) {
            int64_t nl = goro__load_acquire(&p->lifo.bottom) - goro__load_acquire(&p->lifo.top);
            out->runnable += goro__runq_len(&p->runq) + (nl > 0 ? nl : 0) +
                             (goro__load_relaxed(&p->runnext) != NULL);
        }
    }
    out->runnable += goro__load_relaxed(&goro__S.runq_size);
    pthread_mutex_lock(&goro__S.lock);
    for (goro__m *m = goro__S.allm; m; m = m->alllink)
        out->switches += goro__load_relaxed(&m->nswitches);
    pthread_mutex_unlock(&goro__S.lock);
    int64_t running = procs - goro__load_relaxed(&goro__S.npidle);
    out->parked = out->goroutines - out->runnable - running;
    if (out->parked < 0)
        out->parked = 0;
    out->procs = procs;
    out->idle_procs = goro__load_relaxed(&goro__S.npidle);
    out->threads = goro__load_relaxed(&goro__S.mcount);
    out->threads_idle = goro__load_relaxed(&goro__S.nmidle);
    out->threads_blocking = goro__load_relaxed(&goro__S.nblocking);
    out->threads_spinning = goro__load_relaxed(&goro__S.nmspinning);
    out->handoffs = goro__load_relaxed(&goro__S.nhandoffs);
    out->preemptions = goro__load_relaxed(&goro__S.npreempt);
    out->netpoll_waiting = goro__load_relaxed(&goro__S.npollwait);
    int why;
    out->netpoll_backend = goro__netpoll_backend(&why);
    out->netpoll_fallback = why;
    goro__stack_stats(&out->stacks, &out->stack_bytes);
}
