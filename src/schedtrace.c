/*
 * schedtrace.c - GORO_DEBUG=schedtrace=MS[,scheddetail=1]: every MS milliseconds (at
 * least: a late line delays the next) the monitor thread (sysmon.c) writes one line about
 * the scheduler to stderr, in the spirit of Go's schedtrace:
 *
 *   SCHED 120ms: procs=2 idleprocs=1 threads=4 spinningthreads=0 idlethreads=2
 *     blockingthreads=0 globalq=0 localq=[1 0] goroutines=12 runnable=1 parked=10
 *
 * (one line; wrapped here). The time is since goro_run began. localq has one entry per
 * P: its ring, its spawn stack and its runnext slot. runnable is globalq plus the localq
 * entries; parked is goroutines minus runnable minus the Ms running one (each M's curg).
 * With scheddetail=1, the line is followed by one line per P, per M and per goroutine:
 *
 *   P0: status=running m=0 runq=1 spawnq=0 runnext=- timers=2
 *   M1: p=- curg=- spinning=0 blocked=0 idle=1
 *   G17: status=waiting reason="chan receive" since=230ms
 *
 * A P's status is idle (no M), syscall (its M is in a blocking call and the monitor may
 * take it) or running; an M's p is found through the Ps' m fields, its blocked flag is
 * its goroutine's SYSCALL state. A goroutine that is running names its M.
 *
 * Cost and accuracy. Only counters the scheduler keeps anyway are read, with relaxed
 * loads (acquire where the field's protocol asks for it), so the hot paths pay nothing
 * for this and the figures are a snapshot taken while everything moves: a sum may be off
 * by the goroutines that moved while it was read. Within one block two things hold by
 * construction: the threads figure and the M lines come from one walk of the M list under
 * sched.lock (every line takes it for that walk, which also counts the Ms running a
 * goroutine), and there is one P line per P in use. The detail lines also take each P's
 * timers_lock (its timer count) and gfree_lock (the descriptor slabs, for the goroutine
 * lines), each for the length of one walk. Two fields are written by their owner without
 * atomics: m->spinning ([m-local]) and a goroutine's id ([g-local], stable while it
 * lives). They are read anyway, as the dump does, through functions that ThreadSanitizer
 * does not instrument: a stale value is a fine answer for a snapshot, and making the
 * writers atomic would tax the scheduler for a debugging aid.
 *
 * The monitor does not sleep its deep sleep while schedtrace is on (sysmon.c), so the
 * lines keep coming while the program is idle, as Go's do.
 *
 * See also: debugenv.c (parsing GORO_DEBUG), stats.c (the same counters for programs),
 * docs/DEBUGGING.md.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atomic.h"
#include "internal.h"

/* A growing text buffer; written to stderr in one piece at the end of a block. */
typedef struct sbuf {
    char *s;
    size_t len, cap;
    bool failed; /* out of memory: the block is dropped */
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    for (;;) {
        if (b->failed)
            return;
        size_t room = b->cap - b->len;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = true;
            return;
        }
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->failed = true;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
}

static void sb_flush(sbuf *b) {
    for (size_t off = 0; !b->failed && off < b->len;) {
        ssize_t w = write(2, b->s + off, b->len - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    free(b->s);
}

/* What the walk of the M list saw of one M. */
typedef struct m_snap {
    int id;
    goro__g *curg;
    bool spinning, idle;
} m_snap;

/* An [m-local] flag read from another thread: a stale value is acceptable here (see the
 * design comment), so ThreadSanitizer is told not to look. */
__attribute__((no_sanitize("thread"), noinline)) static bool peek_bool(const bool *b) {
    return *(const volatile bool *)b;
}

/* A goroutine's id, [g-local]: read while it may run or exit (see the design comment). */
__attribute__((no_sanitize("thread"), noinline)) static unsigned long long peek_id(goro__g *g) {
    const volatile goro__gword *w = &g->gword;
    return (unsigned long long)(w->h.lo >> 8 | (uint64_t)w->h.mid << 24 |
                                (uint64_t) * (volatile uint16_t *)&g->id_hi << 40);
}

/* Prints "-" for a negative number: no P, no M, no goroutine. */
static void sb_id(sbuf *b, const char *key, long long v) {
    if (v >= 0)
        sb_printf(b, " %s=%lld", key, v);
    else
        sb_printf(b, " %s=-", key);
}

static void p_line(sbuf *b, goro__p *p) {
    goro__m *m = goro__load_acquire(&p->m); /* pairs with goro__acquirep */
    uint32_t st = goro__load_acquire(&p->status);
    int64_t nl = goro__load_acquire(&p->lifo.bottom) - goro__load_acquire(&p->lifo.top);
    goro__g *next = goro__load_relaxed(&p->runnext);
    goro__spin_lock(&p->timers_lock);
    int32_t ntimers = p->ntimers;
    goro__spin_unlock(&p->timers_lock);
    sb_printf(b, "  P%d: status=%s", p->id,
              !m                       ? "idle"
              : (st & GORO__P_SYSCALL) ? "syscall"
                                       : "running");
    sb_id(b, "m", m ? m->id : -1); /* m->id is [init-only]; Ms live until shutdown */
    sb_printf(b, " runq=%u spawnq=%lld runnext=%s timers=%d\n", goro__runq_len(&p->runq),
              (long long)(nl > 0 ? nl : 0), next ? "g" : "-", ntimers);
}

typedef struct g_walk {
    sbuf *b;
    const m_snap *ms;
    int nm;
    int64_t now;
} g_walk;

/* Reads [g-local] fields of goroutines that may be running (see the design comment). */
__attribute__((no_sanitize("thread"))) static void g_line(goro__g *g, void *arg) {
    g_walk *w = arg;
    uint32_t st = __atomic_load_n(&g->status, __ATOMIC_ACQUIRE);
    if (st == GORO__G_FREE)
        return;
    unsigned long long id = peek_id(g);
    switch (st) {
    case GORO__G_WAITING: {
        int64_t since = __atomic_load_n(&g->wait_since, __ATOMIC_RELAXED);
        sb_printf(w->b, "  G%llu: status=waiting reason=\"%s\" since=%lldms\n", id,
                  goro__wait_reason_str(__atomic_load_n(&g->wait_reason, __ATOMIC_RELAXED)),
                  since ? (long long)((w->now - since) / 1000000) : 0LL);
        return;
    }
    case GORO__G_RUNNING:
    case GORO__G_SYSCALL: {
        int mid = -1;
        for (int i = 0; i < w->nm; i++)
            if (w->ms[i].curg == g)
                mid = w->ms[i].id;
        sb_printf(w->b, "  G%llu: status=%s", id, st == GORO__G_RUNNING ? "running" : "syscall");
        sb_id(w->b, "m", mid);
        sb_printf(w->b, "\n");
        return;
    }
    default:
        sb_printf(w->b, "  G%llu: status=runnable\n", id);
    }
}

void goro__schedtrace(int64_t now) {
    sbuf b = {0};
    bool detail = goro__debug.scheddetail != 0;
    /* Acquire: pairs with goro__start_the_world's store, after it wrote the allp entries
     * below gomaxprocs (the monitor's own reading of it). */
    int32_t procs = goro__load_acquire(&goro__S.gomaxprocs);

    /* The M list and the counters written under sched.lock, in one critical section. */
    m_snap *ms = NULL;
    int nm = 0;
    pthread_mutex_lock(&goro__S.lock);
    int32_t threads = goro__S.mcount;
    int32_t idlethreads = goro__S.nmidle;
    int32_t idleprocs = goro__S.npidle;
    int64_t running = 0;
    ms = malloc((size_t)threads * sizeof *ms);
    for (goro__m *m = goro__S.allm; m && ms && nm < threads; m = m->alllink) {
        ms[nm].id = m->id;
        ms[nm].curg = goro__load_relaxed(&m->curg);
        ms[nm].spinning = peek_bool(&m->spinning);
        ms[nm].idle = m->idle;
        running += ms[nm].curg != NULL;
        nm++;
    }
    pthread_mutex_unlock(&goro__S.lock);

    int64_t goroutines = 0;
    for (int i = 0; i < GORO__MAXPROCS_LIMIT && goro__S.allp[i]; i++)
        goroutines += goro__load_relaxed(&goro__S.allp[i]->ngoroutines);
    int64_t globalq = goro__load_relaxed(&goro__S.runq_size);
    int64_t runnable = globalq;
    sb_printf(&b,
              "SCHED %lldms: procs=%d idleprocs=%d threads=%d spinningthreads=%d "
              "idlethreads=%d blockingthreads=%d globalq=%lld localq=[",
              (long long)((now - goro__debug.start) / 1000000), procs, idleprocs, threads,
              goro__load_relaxed(&goro__S.nmspinning), idlethreads,
              goro__load_relaxed(&goro__S.nblocking), (long long)globalq);
    for (int32_t i = 0; i < procs; i++) {
        goro__p *p = goro__S.allp[i];
        int64_t nl = goro__load_acquire(&p->lifo.bottom) - goro__load_acquire(&p->lifo.top);
        int64_t q = goro__runq_len(&p->runq) + (nl > 0 ? nl : 0) +
                    (goro__load_relaxed(&p->runnext) != NULL);
        runnable += q;
        sb_printf(&b, i ? " %lld" : "%lld", (long long)q);
    }
    int64_t parked = goroutines - runnable - running;
    sb_printf(&b, "] goroutines=%lld runnable=%lld parked=%lld\n", (long long)goroutines,
              (long long)runnable, (long long)(parked > 0 ? parked : 0));

    if (detail) {
        for (int32_t i = 0; i < procs; i++)
            p_line(&b, goro__S.allp[i]);
        for (int i = 0; i < nm; i++) {
            int pid = -1;
            for (int32_t j = 0; j < procs; j++) {
                goro__m *pm = goro__load_relaxed(&goro__S.allp[j]->m);
                if (pm && pm->id == ms[i].id)
                    pid = j;
            }
            goro__g *g = ms[i].curg;
            sb_printf(&b, "  M%d:", ms[i].id);
            sb_id(&b, "p", pid);
            sb_id(&b, "curg", g ? (long long)peek_id(g) : -1);
            sb_printf(&b, " spinning=%d blocked=%d idle=%d\n", ms[i].spinning,
                      g && goro__load_relaxed(&g->status) == GORO__G_SYSCALL, ms[i].idle);
        }
        g_walk w = {.b = &b, .ms = ms, .nm = nm, .now = goro__nanotime_coarse()};
        pthread_mutex_lock(&goro__S.gfree_lock);
        goro__for_each_g(g_line, &w);
        pthread_mutex_unlock(&goro__S.gfree_lock);
    }
    free(ms);
    sb_flush(&b);
}
