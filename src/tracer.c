/*
 * tracer.c - the execution tracer: recording events (goro_trace_start/stop, the hooks of
 * tracer.h, user annotations) into per-P buffers.
 *
 * Terms. An event is a full 32-byte record (struct goro__trace_ev: timestamp, goroutine,
 * one argument, type, P, M) followed by an optional payload (a spawn pc, a name, a log
 * message) padded to 8 bytes, or, for a goroutine's start, stop, block and unblock on a
 * P's stream, a compact record (tracer_json.h): one 8-byte word without a timestamp
 * (tracer.h's inline fast path), or 16 bytes with one (this file's slow path). Events go into
 * chunks of GORO__TRACE_CHUNK bytes; a stream is the ordered list of chunks one writer filled: one
 * stream per P id, and one global stream. tracer_json.c merges the streams by timestamp into the
 * JSON file.
 *
 * Invariants.
 *  (R1) A P's stream is written only by the M that holds the P, inside a runtime entry
 *       (m->locks > 0), so without any lock or atomic: the P changes hands only through
 *       acquirep/releasep, the preemption handler's and the blocking call's release
 *       stores, which order one owner's writes before the next owner's.
 *  (R2) An M without a P (the monitor, an M whose P was taken in a blocking call, an M
 *       blocked in the netpoller) writes the global stream, under trace_lock, and checks
 *       goro__tracing again under it: the stopper clears the flag and detaches the stream
 *       under the same lock.
 *  (R3) Stamps strictly increase within a stream (each is at least the previous + 1
 *       tick), so a stream is sorted and the merge needs no sort. Across streams the
 *       clock is the same (an invariant TSC on x86-64, the virtual counter on aarch64,
 *       else CLOCK_MONOTONIC), so an event that happens before another across threads
 *       has a timestamp no later, up to the reordering of an unserialized counter read
 *       (tens of cycles; a wake-up takes thousands).
 *  (R4) Memory is bounded: at most GORO_TRACE_BUFFER_MB (default 64) MiB of chunks,
 *       being filled or waiting for the writer (R6). A stream that needs a chunk when
 *       none is free and the limit is reached drops the event and counts it; nothing on
 *       the hot path ever waits. The file says how many were dropped. Chunks come from
 *       2 MiB slabs (one per stream at a time) that the kernel backs with a huge page
 *       where it can: a page fault per 4 KiB page cost ~15 ns per event in a KVM guest
 *       (perf), a third of an event's cost. Even so the one fault of a slab clears 2 MiB
 *       (~300 us here, every ~44,000 ping-pong round trips: 7% of a traced ping-pong's
 *       time), so the writer thread keeps GORO__TRACE_SPARES slabs faulted in for the
 *       streams to take, and goro_trace_start maps the first ones before it stops the
 *       world (the writer has only just started). With a limit under 4 spares' worth
 *       (GORO_TRACE_BUFFER_MB < 16) there are none: the streams map their own. A
 *       stopped trace keeps GORO__TRACE_KEEP of its slabs (8 MiB) for the next one,
 *       marked MADV_FREE (the kernel takes the pages back if it runs short, else the next
 *       trace writes them without a fault): the faults and clears run on the writer
 *       thread, off the program's own, but on a machine whose CPUs are all busy they take
 *       a CPU from it (a traced ping-pong batch pinned to one CPU with its writer: 1.33-1.40
 *       times the untraced, 1.15-1.22 with kept slabs; docs/TRACING.md).
 *  (R5) Start and stop stop the world (when called from a goroutine): at start every
 *       live goroutine is written as an "existing" event, so the trace knows the state
 *       of each; at stop no P writes while the streams are taken. So a runtime entry that
 *       holds its P (m->locks > 0) sees goro__tracing keep its value until it switches
 *       away: goro__park tests it once for the hooks of its block, pick and start.
 *  (R6) A full chunk goes, under spool.lock, to a queue that one writer thread appends
 *       to an unlinked temporary file (in $TMPDIR, else /tmp) in queue order, once the
 *       queue holds half the memory limit's chunks (lazily: see spool_start), and the
 *       stream takes a written chunk from the free list in exchange: a trace's length is
 *       bounded by the disk, not by memory. A stream's chunks are queued in its order
 *       (one owner at a time, R1), so the file holds each stream in order; at stop the
 *       file is mapped and each stream's chunks threaded back together.
 *
 *  (R7) Not every record is stamped: a clock read costs 12-25 ns on this project's
 *       machine (rdtsc is microcoded on AMD, and a KVM guest's; CLOCK_MONOTONIC ~30 ns),
 *       more than a channel hand-off. A P stream's cursor (p->trace_pos) has a limit
 * (p->trace_lim): the fast path writes unstamped compact records below it, and the slow path, which
 * stamps, sets it budget records ahead (within the chunk). The budget adapts at each stamp: 1 when
 * the records since the last stamp were on average more than GORO__TRACE_SPARSE_TICKS apart (a read
 * then costs them under 2%), else doubling up to GORO__TRACE_STAMP_EVERY (512: at 128 the slow path
 * cost a ping-pong round trip ~9 instructions more, 1.5%, by callgrind; in switch-bound code 512
 * records are ~5-10 us, and the ticker bounds the gap anyway). The spool writer thread doubles as a
 * ticker: every GORO__TRACE_TICK_NS (0.5 ms) it stores NULL into the limit of every P that recorded
 * (tps), so the first record after a pause is stamped (an owner's concurrent store of a new limit
 * may undo that; its own stamp was just taken, and the next tick comes). So an unstamped record
 * lies between the stamps around it, at most about a tick after the one before: the JSON writer
 * interpolates it there, and orders the streams by each goroutine's generation, not by these times
 * (tracer_json.c J2). GORO_TRACE_STAMPS=exact stamps every record (the fast path never runs),
 * =sampled every 512 whatever their spacing (for instruction counts under Valgrind, whose slowness
 * looks sparse).
 *
 * Cost. A hook while not tracing: one load and one predicted branch (tracer.h). While
 * tracing, a hand-off's hook on an owned P, beyond those: 9-11 instructions (x86-64): the
 * P (an unblock has it already; a block tests it), its cursor, a compare of it with the
 * limit in memory and the branch, the goroutine's ready-made word (runtime.h, goro__gword)
 * ORed with a constant (a block's reason: one lea), the 8-byte store, the cursor's add, the
 * jump back, and for a start the generation's 16-bit add (tracer.h). One in up to 512 takes
 * the slow path through the trampoline (~160 instructions), with a clock read and a 16-byte
 * stamped record; every ~8,000 compact records a chunk goes to the writer (a lock, maybe a
 * wake-up). Other events: the slow path, stamped. Measured (callgrind, docs/TRACING.md): a
 * 1-P ping-pong round trip (six records) 573 -> 639 instructions, 1.12x; before the
 * ready-made word, 575 -> 698.
 *
 * Rejected. Merging the streams by time and holding back an event whose goroutine is not in
 * the state it leaves: interpolated times put two starts of one goroutine, on two Ps, both
 * in a legal state, and the wrong one went first (tracer_json.c J2). Folding a park's block
 * and the next start into one record: the pick in between may run timers whose wake-ups
 * would then come before the block in the P's stream, and the streams could wait on each
 * other. Leaving a park's start implicit (a flag in the block when the pick takes the
 * goroutine this P just unblocked and nothing was recorded between): the checks (the cursor
 * against a mark the block stores, the next goroutine against one the unblock stores, the
 * flag's OR) cost as many instructions as the 8-byte record they save. One stamp per switch shared
 * by its events: still two clock reads per ping-pong round trip, ~25-50 ns on ~85 (measured: the
 * first version stamped all but starts and cost 2.6x). A per-M stream written through a
 * thread-local cursor (one load less): an M's events would then need their P in each record, and an
 * M loses its P outside the runtime. A writer thread streaming JSON while recording: the JSON of a
 * goroutine's slices needs the events of every P in time order (a goroutine moves between Ps), so
 * it would have to wait for the slowest P's chunk anyway; the spool writes the 32-byte records as
 * they are, and the JSON is written at stop. Go's binary format with a separate viewer: the
 * requirement is a file that Perfetto and chrome://tracing open directly.
 *
 * See-also: tracer.h (hooks), tracer_json.c (output), docs/TRACING.md.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "atomic.h"
#include "internal.h"
#include "tracer.h"
#include "tracer_json.h"

uint32_t goro__tracing;
/* The Ps whose cursors (p->trace_pos, trace_lim) this trace has set, by P id: the ticker
 * (R7) and the stop find them here. [atomic] Stored by the P's owner (release), when it first
 * records; cleared at the stop. */
static goro__p *tps[GORO__MAXPROCS_LIMIT];

/* Every how many events of a P stream the clock is read (R7), unless the ticker asks
 * sooner; 1 with GORO_TRACE_CLOCK=exact. */
#define GORO__TRACE_STAMP_EVERY 512
/* The ticker's period (R7): an event not stamped happened at most about this long after
 * the stamped one before it. */
#define GORO__TRACE_TICK_NS 500000
/* Events further apart than this on average (ticks: 0.7-2 us at 1.5-3 GHz; ns for
 * CLOCK_MONOTONIC) are stamped every one (R7): a clock read costs them under 2%. */
#define GORO__TRACE_SPARSE_TICKS 3000

enum { TRACE_IDLE = 0, TRACE_STARTING, TRACE_ON, TRACE_STOPPING };

/* A stream's writer state. [owner-P] for the P streams, [lock: trace_lock] for the global
 * one. Padded: each P writes its own. */
typedef struct stream {
    goro__trace_chunk *tail; /* the chunk being filled, NULL if none */
    char *slab, *slab_end;   /* the rest of the stream's current slab */
    uint64_t last;           /* the last timestamp written (ticks) (R3) */
    uint64_t *stamp_pos;     /* P streams: the cursor after the last stamped record (R7) */
    int budget;              /* P streams: records per stamp now, 1..stamp_every (R7) */
    uint64_t dropped;        /* events lost for want of memory (R4) */
} __attribute__((aligned(64))) stream;

static struct {
    uint32_t state;          /* [atomic] TRACE_* */
    pthread_mutex_t lock;    /* "trace_lock": the global stream and start/stop's data */
    int fd;                  /* [lock: state] the file, open while tracing */
    bool from_env;           /* [lock: state] GORO_TRACE started it */
    int64_t max_slabs;       /* [init-only per trace] (R4) */
    int64_t nslabs;          /* [atomic] slabs claimed (entries of slabs) */
    void **slabs;            /* [init-only per trace] the slabs: entry i written once, by
                                whoever claimed i through nslabs (a stream, the writer's
                                spares_fill); read by the stop after the writer's join */
    goro__trace_clock clock; /* [init-only per trace] */
} tr = {.lock = PTHREAD_MUTEX_INITIALIZER, .fd = -1};

static stream pstreams[GORO__MAXPROCS_LIMIT]; /* [owner-P] by P id (R1) */
static stream gstream;                        /* [lock: trace_lock] (R2) */

#define GORO__TRACE_SLAB_CHUNKS 32
/* Slabs the writer thread keeps faulted in for the streams (R4). */
#define GORO__TRACE_SPARES 2
/* Slabs a stopped trace leaves faulted in for the next one (R4). */
#define GORO__TRACE_KEEP 4
#define GORO__TRACE_SLAB ((size_t)GORO__TRACE_SLAB_CHUNKS * GORO__TRACE_CHUNK)

/* The spool (R6): full chunks wait in a queue for the writer thread, which appends them
 * to an unlinked temporary file and puts them on the free list for reuse. */
static struct {
    pthread_mutex_t lock;             /* "spool.lock", after trace_lock if both */
    pthread_cond_t cond;              /* the writer waits here for work */
    goro__trace_chunk *qhead, *qtail; /* [lock: spool.lock] full chunks, oldest first */
    goro__trace_chunk *free;          /* [lock: spool.lock] written chunks */
    bool waiting;                     /* [lock: spool.lock] the writer waits on cond */
    bool quit;                        /* [lock: spool.lock] write the queue, then exit */
    int64_t nqueued;                  /* [lock: spool.lock] chunks in the queue */
    int64_t lazy;                     /* [init-only per trace] the writer starts at this many */
    void *spare[GORO__TRACE_SPARES];  /* [lock: spool.lock] slabs faulted in ahead (R4) */
    int nspare;                       /* [lock: spool.lock] */
    bool spares;                      /* [init-only per trace] the writer keeps spares */
    int fd;                           /* [init-only per trace] the temporary file */
    uint64_t lost;                    /* [writer; read after the join] events not written */
    int err;                          /* [writer; read after the join] first write error */
    pthread_t thread;                 /* [init-only per trace] */
} sp = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER, .fd = -1};

/* ------------------------------------------------------------------ the clock */

#if defined(__x86_64__)
static inline uint64_t ticks(void) {
    return __builtin_ia32_rdtsc();
}
#elif defined(__aarch64__)
static inline uint64_t ticks(void) {
    uint64_t v;
    __asm__ volatile("mrs %0, cntvct_el0" : "=r"(v));
    return v;
}
#else
static inline uint64_t ticks(void) {
    return 0;
}
#endif

static bool use_counter; /* [init-only per trace] ticks() is the clock; else nanotime */
/* [lock: trace_lock] begin() writes the snapshot before tracing is on (R5). */
static bool snapshotting;
/* [lock: state] the spool file, mapped while end() and write_out convert it */
static void *spool_map;
static size_t spool_mapsize;

static inline uint64_t now_ticks(void) {
    return GORO__LIKELY(use_counter) ? ticks() : (uint64_t)goro__nanotime();
}

/* Whether the CPU's counter is a clock every CPU agrees on, at a fixed rate. */
static bool counter_usable(void) {
    const char *env = getenv("GORO_TRACE_CLOCK");
    if (env && strcmp(env, "monotonic") == 0)
        return false;
#if defined(__x86_64__)
    /* An invariant TSC (constant rate, runs in deep idle) that the kernel also trusts
     * as its clocksource (it checks that the CPUs' TSCs are in sync). */
    bool invariant = false, trusted = false;
    char line[4096];
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        while (fgets(line, sizeof line, f))
            if (strncmp(line, "flags", 5) == 0) {
                invariant = strstr(line, " constant_tsc") && strstr(line, " nonstop_tsc");
                break;
            }
        fclose(f);
    }
    f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
    if (f) {
        trusted = fgets(line, sizeof line, f) && strncmp(line, "tsc", 3) == 0;
        fclose(f);
    }
    return invariant && trusted;
#elif defined(__aarch64__)
    return true; /* the architected virtual counter: system-wide, fixed frequency */
#else
    return false;
#endif
}

/* ------------------------------------------------------------------ streams */

/* Slabs kept from the last trace for the next (R4): faulted in, lazily freed. */
static struct {
    pthread_mutex_t lock;         /* "slab_keep.lock": a leaf */
    void *slab[GORO__TRACE_KEEP]; /* [lock: slab_keep.lock] */
    int n;                        /* [lock: slab_keep.lock] */
} keep = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* A slab: 2 MiB aligned to 2 MiB, so that the kernel can back it with one huge page
 * (one fault and one 2 MiB clear instead of 512 faults), else populated page by page up
 * front; or one kept from the last trace. NULL when out of memory. */
static void *slab_map(void) {
    pthread_mutex_lock(&keep.lock);
    void *kept = keep.n ? keep.slab[--keep.n] : NULL;
    pthread_mutex_unlock(&keep.lock);
    if (kept)
        return kept; /* a write undoes MADV_FREE, unless the kernel took the pages: a fault */
    size_t size = GORO__TRACE_SLAB;
    char *m = mmap(NULL, 2 * size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    char *a = (char *)(((uintptr_t)m + size - 1) & ~(uintptr_t)(size - 1));
    if (a > m)
        munmap(m, (size_t)(a - m));
    if (a + size < m + 2 * size)
        munmap(a + size, (size_t)(m + 2 * size - (a + size)));
#ifdef MADV_HUGEPAGE
    if (madvise(a, size, MADV_HUGEPAGE) == 0) {
        a[0] = 0; /* the fault, now: one huge page */
        return a;
    }
#endif
    for (size_t off = 0; off < size; off += 4096)
        a[off] = 0;
    return a;
}

/* Gives back a slab the trace no longer needs: kept for the next trace while there is room,
 * its pages left to the kernel to take if it needs memory (before it is published: once
 * kept, another thread may take it and write), else unmapped. */
static void slab_release(void *a) {
#ifdef MADV_FREE
    (void)madvise(a, GORO__TRACE_SLAB, MADV_FREE); /* fails before Linux 4.5: kept whole */
#endif
    pthread_mutex_lock(&keep.lock);
    bool kept = keep.n < GORO__TRACE_KEEP;
    if (kept)
        keep.slab[keep.n++] = a;
    pthread_mutex_unlock(&keep.lock);
    if (!kept)
        munmap(a, GORO__TRACE_SLAB);
}

/* A new chunk for s, from its slab or a new one; NULL when out of memory (R4). */
static __attribute__((noinline)) goro__trace_chunk *chunk_new(stream *s, int16_t p) {
    if (s->slab == s->slab_end) {
        void *m = NULL;
        if (sp.spares) {
            pthread_mutex_lock(&sp.lock);
            if (sp.nspare)
                m = sp.spare[--sp.nspare];
            bool wake = sp.waiting;
            pthread_mutex_unlock(&sp.lock);
            if (wake)
                pthread_cond_signal(&sp.cond); /* for another spare */
        }
        if (!m) {
            int64_t i = goro__add_relaxed(&tr.nslabs, 1) - 1;
            if (i >= tr.max_slabs)
                return NULL; /* nslabs stays past the end: every later attempt fails fast */
            if (!(m = slab_map()))
                return NULL;
            tr.slabs[i] = m;
        }
        s->slab = m;
        s->slab_end = s->slab + GORO__TRACE_SLAB;
    }
    goro__trace_chunk *c = (goro__trace_chunk *)s->slab;
    s->slab += GORO__TRACE_CHUNK;
    c->next = NULL;
    c->used = 0;
    c->p = p;
    return c;
}

/* s's chunk is full (or s has none): queues the full one for the writer (R6) and gives s
 * a written one back, or a new one; NULL when out of memory (R4). Once per 2,000 events:
 * a lock, and a wake-up if the writer sleeps. */
static __attribute__((noinline)) goro__trace_chunk *chunk_next(stream *s, int16_t p) {
    goro__trace_chunk *full = s->tail;
    pthread_mutex_lock(&sp.lock);
    if (full) {
        full->next = NULL;
        if (sp.qtail)
            sp.qtail->next = full;
        else
            sp.qhead = full;
        sp.qtail = full;
        sp.nqueued++;
    }
    goro__trace_chunk *c = sp.free;
    if (c)
        sp.free = c->next;
    bool wake = full && sp.waiting && sp.nqueued >= sp.lazy;
    pthread_mutex_unlock(&sp.lock);
    if (wake)
        pthread_cond_signal(&sp.cond);
    if (c) {
        c->next = NULL;
        c->used = 0;
        c->p = p;
    } else {
        c = chunk_new(s, p);
    }
    s->tail = c;
    return c;
}

/* Room for an event with a len-byte payload at the end of s; NULL when out of memory
 * (R4). */
static inline __attribute__((always_inline)) goro__trace_ev *stream_reserve(stream *s, int16_t p,
                                                                            size_t len) {
    size_t need = sizeof(goro__trace_ev) + ((len + 7) & ~(size_t)7);
    goro__trace_chunk *c = s->tail;
    if (GORO__UNLIKELY(!c || c->used + need > GORO__TRACE_CHUNK_DATA)) {
        if (!(c = chunk_next(s, p))) {
            s->dropped++;
            return NULL;
        }
    }
    goro__trace_ev *d = (goro__trace_ev *)(c->data + c->used);
    c->used += (uint32_t)need;
    /* Ask for the cache line four ahead now: a chunk's lines were last read by the
     * writer on another CPU (or never touched), and the runtime's next locked
     * instruction (the runnext exchange of a hand-off) otherwise waits for this store's
     * miss to complete (perf: most of a traced hand-off's extra time). A prefetch past
     * the chunk's end is harmless: the slab continues, or the hint is dropped. */
    __builtin_prefetch((char *)d + 256, 1, 3);
    return d;
}

/* [init-only per trace] events per stamp (R7): GORO__TRACE_STAMP_EVERY, or 1 (exact). */
static int stamp_every = GORO__TRACE_STAMP_EVERY;
/* [init-only per trace] false with GORO_TRACE_STAMPS=sampled: every stamp_every records,
 * however far apart (R7). */
static bool stamp_adaptive = true;

/* Room for need bytes at the end of the stream of P p, whose cursor is p->trace_pos (the
 * chunk's used field is brought up to date only when the chunk is handed to the writer);
 * NULL when out of memory (R4). */
static inline __attribute__((always_inline)) uint64_t *p_reserve(goro__p *p, size_t need) {
    int pid = p->id;
    stream *s = &pstreams[pid];
    goro__trace_chunk *c = s->tail;
    char *pos = (char *)p->trace_pos;
    if (GORO__UNLIKELY(!c || !pos || pos + need > c->data + GORO__TRACE_CHUNK_DATA)) {
        if (c && pos)
            c->used = (uint32_t)(pos - c->data);
        if (!goro__load_relaxed(&tps[pid]))
            goro__store_release(&tps[pid], p); /* for the ticker and the stop */
        if (!(c = chunk_next(s, (int16_t)pid))) {
            s->dropped++;
            p->trace_pos = NULL;
            goro__store_relaxed(&p->trace_lim, NULL);
            return NULL;
        }
        pos = c->data;
    }
    p->trace_pos = (uint64_t *)(pos + need);
    /* The next lines, for the fast path's stores: a reused chunk's lines were last read
     * by the writer thread on another CPU, and the runtime's next locked instruction
     * would otherwise wait for a store's miss. */
    __builtin_prefetch(pos + 128, 1, 3);
    __builtin_prefetch(pos + 192, 1, 3);
    __builtin_prefetch(pos + 256, 1, 3);
    __builtin_prefetch(pos + 320, 1, 3);
    return (uint64_t *)pos;
}

/* After a stamped record of P p: the fast path may write stamp_every - 1 records, as
 * long as each fits in the chunk (R7). */
static inline __attribute__((always_inline)) void p_rearm(goro__p *p) {
    stream *s = &pstreams[p->id];
    goro__trace_chunk *c = s->tail;
    uint64_t *end = (uint64_t *)(c->data + GORO__TRACE_CHUNK_DATA);
    s->stamp_pos = p->trace_pos;
    uint64_t *lim = p->trace_pos + (s->budget - 1);
    goro__store_relaxed(&p->trace_lim, lim < end ? lim : end);
}

/* Writes e's fields to d one by one: e is the caller's local, built field by field, and
 * a struct copy reading it back as 16-byte words stalls on store forwarding (~20% of an
 * event's cost, perf). */
static inline __attribute__((always_inline)) void ev_write(goro__trace_ev *d,
                                                           const goro__trace_ev *e, uint64_t t,
                                                           int16_t p, uint16_t m,
                                                           const void *payload, size_t len) {
    d->ts = t;
    d->g = e->g;
    d->arg = e->arg;
    d->type = e->type;
    d->reason = e->reason;
    d->len = (uint16_t)len;
    d->p = p;
    d->m = m;
    if (len)
        memcpy(d + 1, payload, len);
}

/* Stamps e with the clock (R3) and appends it to the stream of p, the P m holds, or, if p
 * is NULL, to the global stream. m may be NULL (the monitor). */
static void emit(goro__m *m, goro__p *p, const goro__trace_ev *e, const void *payload, size_t len) {
    uint16_t mid = m ? (uint16_t)m->id : GORO__TRACE_NONE16;
    if (p) {
        int pid = p->id;
        stream *s = &pstreams[pid];
        uint64_t t = now_ticks() & ~(uint64_t)1; /* even (tracer_json.h) */
        /* (R7) The records since the last stamp, and how far apart they were: dense
         * ones get a stamp every few, sparse ones every one. */
        uint64_t *pos = p->trace_pos, *sp0 = s->stamp_pos;
        uint64_t n = pos && sp0 && s->tail && (char *)sp0 >= s->tail->data && pos >= sp0 &&
                             (char *)pos <= s->tail->data + GORO__TRACE_CHUNK_DATA
                         ? (uint64_t)(pos - sp0)
                         : (uint64_t)s->budget;
        if ((stamp_adaptive && t - s->last > (n + 1) * GORO__TRACE_SPARSE_TICKS) || s->budget < 1)
            s->budget = 1;
        else if (s->budget < stamp_every)
            s->budget = s->budget * 2 < stamp_every ? s->budget * 2 : stamp_every;
        if (t <= s->last)
            t = s->last + 2;
        s->last = t;
        if (!len && (e->type == GORO__EV_GO_START || e->type == GORO__EV_GO_STOP ||
                     e->type == GORO__EV_GO_BLOCK || e->type == GORO__EV_GO_UNBLOCK)) {
            /* The compact form, stamped (tracer.h); an unblock's waker is the goroutine
             * the P runs, which the writer knows. */
            uint64_t *w = p_reserve(p, 16);
            if (w) {
                w[0] = t;
                w[1] =
                    e->g | (uint64_t)((e->reason & 31) << 3 | (e->type - GORO__EV_GO_START) << 1 |
                                      1); /* GORO__TRACE_WORD */
                p_rearm(p);
            }
            return;
        }
        size_t need = sizeof(goro__trace_ev) + ((len + 7) & ~(size_t)7);
        goro__trace_ev *d = (goro__trace_ev *)p_reserve(p, need);
        if (d) {
            ev_write(d, e, t, (int16_t)pid, mid, payload, len);
            p_rearm(p);
        }
        return;
    }
    pthread_mutex_lock(&tr.lock);
    if (goro__load_relaxed(&goro__tracing) || snapshotting) { /* (R2) */
        uint64_t t = now_ticks() & ~(uint64_t)1;              /* even (tracer_json.h) */
        if (t <= gstream.last)
            t = gstream.last + 2;
        gstream.last = t;
        goro__trace_ev *d = stream_reserve(&gstream, -1, len);
        if (d)
            ev_write(d, e, t, e->p, mid, payload, len);
    }
    pthread_mutex_unlock(&tr.lock);
}

/* The P m owns, for its stream (R1), or NULL. */
static goro__p *owned_p(goro__m *m) {
    if (!m || !m->p || (m->curg && m->curg->blocking_depth))
        return NULL;
    return m->p;
}

/* An event of goroutine g (its word: GORO__TRACE_GG) on m's P, or the global stream. */
static void emit_g(goro__m *m, int type, uint64_t gg, uint64_t arg, int reason) {
    goro__p *p = owned_p(m);
    goro__trace_ev e = {
        .g = gg, .arg = arg, .type = (uint8_t)type, .reason = (uint8_t)reason, .p = -1};
    emit(m, p, &e, NULL, 0);
}

/* ------------------------------------------------------------------ hooks (tracer.h) */

void goro__trace_go_create_slow(goro__tw pw, goro__tw gw, goro__tw unused) {
    (void)unused;
    goro__p *p = (goro__p *)pw;
    goro__g *g = (goro__g *)gw;
    goro__m *m = goro__getm();
    char payload[8 + GORO__TRACE_NAME_MAX];
    uint64_t pc = (uint64_t)(uintptr_t)g->spawn_pc;
    memcpy(payload, &pc, 8);
    size_t len = 8;
    if (g->name) {
        size_t n = strnlen(g->name, GORO__TRACE_NAME_MAX - 1);
        memcpy(payload + 8, g->name, n);
        len += n;
    }
    goro__trace_ev e = {
        .g = g->gword.w, .arg = m && m->curg ? goro__g_id(m->curg) : 0, .type = GORO__EV_GO_CREATE};
    emit(m, p, &e, payload, len);
}

void goro__trace_go_ev_slow(goro__tw mw, goro__tw gw, goro__tw w) {
    goro__m *m = (goro__m *)mw;
    goro__g *g = (goro__g *)gw;
    if (!(w & GORO__TRACE_COMPACT)) { /* an end */
        emit_g(m, (int)(w >> 8), g->gword.w, 0, 0);
        return;
    }
    int type = GORO__TRACE_WORD_TYPE(w);
    uint64_t arg = 0;
    if (type == GORO__EV_GO_UNBLOCK && m && m->curg)
        /* The waker, if a goroutine runs (tracer_json.c checks). Its id's bytes only
         * (runtime.h): in a park's pick (a timer's wake-up) m->curg is still the parker,
         * already published, whose start on another P may count its generation up. */
        arg = goro__g_id_relaxed(m->curg);
    emit_g(m, type, GORO__TRACE_WORD_GG(w), arg, GORO__TRACE_WORD_REASON(w));
}

void goro__trace_go_unpark_slow(goro__tw mw, goro__tw gw, goro__tw parked) {
    goro__m *m = (goro__m *)mw;
    goro__g *g = (goro__g *)gw;
    uint64_t gg = g->gword.w;
    if (!parked) /* nobody saw it waiting: it wakes itself */
        emit_g(m, GORO__EV_GO_UNBLOCK, gg, 0, 0);
    g->gword.h.gen++; /* a start counts the generation up */
    emit_g(m, GORO__EV_GO_START, gg, 0, 0);
}

void goro__trace_proc_slow(goro__tw mw, goro__tw pw, goro__tw type) {
    goro__m *m = (goro__m *)mw;
    goro__p *p = (goro__p *)pw;
    goro__trace_ev e = {.arg = m ? (uint64_t)m->id : 0, .type = (uint8_t)type, .p = (int16_t)p->id};
    if (type == GORO__EV_PROC_STEAL) {
        emit(NULL, NULL, &e, NULL, 0); /* the taker has no P of its own (R2) */
        return;
    }
    /* m holds p (start: just acquired; stop: not yet released). */
    emit(m, p, &e, NULL, 0);
}

void goro__trace_syscall_enter_slow(goro__tw mw, goro__tw gw, goro__tw unused) {
    (void)unused;
    goro__m *m = (goro__m *)mw;
    goro__g *g = (goro__g *)gw;
    goro__trace_ev e = {.g = g->gword.w, .type = GORO__EV_SYSCALL_ENTER, .p = (int16_t)m->p->id};
    emit(m, m->p, &e, NULL, 0); /* still ours: the release store that offers it follows */
}

void goro__trace_syscall_exit_slow(goro__tw mw, goro__tw gw, goro__tw unused) {
    (void)unused;
    goro__m *m = (goro__m *)mw;
    goro__g *g = (goro__g *)gw;
    uint64_t gg = g->gword.w;
    g->gword.h.gen++; /* a return counts the generation up, as a start */
    goro__trace_ev e = {.g = gg, .type = GORO__EV_SYSCALL_EXIT, .p = m->p ? (int16_t)m->p->id : -1};
    emit(m, m->p, &e, NULL, 0); /* blocking_depth is 0 again: m->p is ours if set */
}

void goro__trace_netpoll_wake_slow(goro__tw gw, goro__tw unused1, goro__tw unused2) {
    (void)unused1;
    (void)unused2;
    goro__g *g = (goro__g *)gw;
    emit_g(goro__getm(), GORO__EV_NETPOLL_WAKE, g->gword.w, 0, 0);
}

void goro__trace_timer_fire_slow(goro__tw unused0, goro__tw unused1, goro__tw unused2) {
    (void)unused0;
    (void)unused1;
    (void)unused2;
    emit_g(goro__getm(), GORO__EV_TIMER_FIRE, 0, 0, 0);
}

/* ------------------------------------------------------------------ user annotations */

/* Task ids (goro_trace_task_begin). [atomic] */
static uint64_t task_ids;

/* Records an event of the running goroutine, inside a runtime entry so the P stays (R1).
 * arg: the event's task, 0 if none. */
static void user_event(int type, const char *a, const char *b, uint64_t arg) {
    goro__m *m = goro__getm();
    if (!m || !m->curg)
        return;
    char payload[2 * GORO__TRACE_NAME_MAX];
    size_t len = 0;
    if (a) {
        len = strnlen(a, GORO__TRACE_NAME_MAX - 1);
        memcpy(payload, a, len);
    }
    if (b) {
        payload[len++] = '\0';
        size_t n = strnlen(b, GORO__TRACE_NAME_MAX - 1);
        memcpy(payload + len, b, n);
        len += n;
    }
    goro__acquirem_m(m);
    goro__p *p = owned_p(m);
    goro__trace_ev e = {
        .g = m->curg->gword.w, .arg = arg, .type = (uint8_t)type, .p = p ? (int16_t)p->id : -1};
    emit(m, p, &e, payload, len);
    goro__releasem(m);
}

void goro_trace_region_begin(const char *name) {
    if (GORO__TRACING())
        user_event(GORO__EV_REGION_BEGIN, name ? name : "", NULL, 0);
}

void goro_trace_region_end(void) {
    if (GORO__TRACING())
        user_event(GORO__EV_REGION_END, NULL, NULL, 0);
}

void goro_trace_log(const char *category, const char *msg) {
    if (GORO__TRACING())
        user_event(GORO__EV_LOG, category ? category : "", msg ? msg : "", 0);
}

uint64_t goro_trace_task_begin(const char *name) {
    goro__m *m = goro__getm();
    if (!GORO__TRACING() || !m || !m->curg)
        return 0;
    uint64_t id = goro__add_relaxed(&task_ids, 1);
    user_event(GORO__EV_TASK_BEGIN, name ? name : "", NULL, id);
    return id;
}

void goro_trace_task_end(uint64_t id) {
    if (id && GORO__TRACING())
        user_event(GORO__EV_TASK_END, NULL, NULL, id);
}

void goro_trace_task_region_begin(uint64_t task, const char *name) {
    if (GORO__TRACING())
        user_event(GORO__EV_REGION_BEGIN, name ? name : "", NULL, task);
}

void goro_trace_task_log(uint64_t task, const char *category, const char *msg) {
    if (GORO__TRACING())
        user_event(GORO__EV_LOG, category ? category : "", msg ? msg : "", task);
}

int goro_trace_enabled(void) {
    return goro__load_relaxed(&goro__tracing) != 0;
}

/* ------------------------------------------------------------------ start and stop */

/* Writes an "existing" event for every live goroutine (R5). The world is stopped. */
static void snapshot_g(goro__g *g, void *arg) {
    (void)arg;
    uint32_t st = goro__load_acquire(&g->status);
    if (st == GORO__G_FREE)
        return;
    char name[GORO__TRACE_NAME_MAX];
    size_t len = 0;
    const char *n = goro__load_relaxed(&g->name);
    if (n) {
        len = strnlen(n, GORO__TRACE_NAME_MAX - 1);
        memcpy(name, n, len);
    }
    goro__trace_ev e = {.g = goro__load_relaxed(&g->gword.w),
                        .arg = goro__load_relaxed(&g->wait_reason),
                        .type = GORO__EV_GO_EXISTING,
                        .reason = (uint8_t)st,
                        .p = -1};
    /* The running goroutines: say where, so the P's track shows them. */
    for (goro__m *o = goro__S.allm; o; o = o->alllink)
        if (o->curg == g && o->p && st == GORO__G_RUNNING)
            e.p = (int16_t)o->p->id;
    emit(NULL, NULL, &e, name, len);
}

/* ------------------------------------------------------------------ the spool (R6) */

/* The events in chunk c. */
static uint64_t chunk_events(const goro__trace_chunk *c) {
    uint64_t n = 0;
    for (uint32_t off = 0; off < c->used; n++)
        off += (uint32_t)goro__trace_rec_size(c->data + off);
    return n;
}

static void spool_write(const goro__trace_chunk *c) {
    const char *b = (const char *)c;
    size_t n = offsetof(goro__trace_chunk, data) + c->used, off = 0;
    while (off < n && !sp.err) {
        ssize_t w = write(sp.fd, b + off, n - off);
        if (w < 0 && errno != EINTR)
            sp.err = -errno;
        else if (w > 0)
            off += (size_t)w;
    }
    if (sp.err) {
        /* A partial record would break the file's framing: cut it off. */
        if (off && off < n)
            (void)ftruncate(sp.fd, lseek(sp.fd, 0, SEEK_CUR) - (off_t)off);
        sp.lost += chunk_events(c);
    }
}

/* The writer's spares (R4): maps slabs (the page faults, ~300 us a 2 MiB huge page here)
 * until GORO__TRACE_SPARES wait, as long as the limit allows. Called and returns with
 * spool.lock held; drops it while it maps. */
static void spares_fill(void) {
    while (sp.spares && sp.nspare < GORO__TRACE_SPARES && !sp.quit &&
           goro__load_relaxed(&tr.nslabs) < tr.max_slabs) {
        pthread_mutex_unlock(&sp.lock);
        int64_t i = goro__add_relaxed(&tr.nslabs, 1) - 1;
        void *m = i < tr.max_slabs ? slab_map() : NULL;
        if (m)
            tr.slabs[i] = m;
        pthread_mutex_lock(&sp.lock);
        if (!m)
            return; /* out of memory or of the limit: the streams find out themselves */
        sp.spare[sp.nspare++] = m;
    }
}

/* The writer thread: writes queued chunks in order, returns them to the free list, and
 * keeps spare slabs ready. */
static void *spool_main(void *arg) {
    (void)arg;
    /* The ticker's deadlines are on CLOCK_REALTIME, the clock of the condition's timed
     * wait: it is statically initialised, since a pthread_cond_init at each start races,
     * for the race build's ThreadSanitizer, with the writer's wait (it sees no edge from a
     * goroutine's pthread_create). A step of the wall clock moves one tick at most. */
    struct timespec next;
    clock_gettime(CLOCK_REALTIME, &next);
    pthread_mutex_lock(&sp.lock);
    for (;;) {
        while ((!sp.qhead || sp.nqueued < sp.lazy) && !sp.quit) {
            spares_fill();
            struct timespec now;
            clock_gettime(CLOCK_REALTIME, &now);
            int64_t ahead =
                (int64_t)(next.tv_sec - now.tv_sec) * 1000000000 + (next.tv_nsec - now.tv_nsec);
            if (ahead <= 0 ||
                ahead > 2 * GORO__TRACE_TICK_NS) { /* due, or the clock stepped back */
                /* The ticker (R7): every P's next event reads the clock. */
                for (int i = 0; i < GORO__MAXPROCS_LIMIT; i++) {
                    goro__p *p = goro__load_acquire(&tps[i]);
                    if (p)
                        goro__store_relaxed(&p->trace_lim, NULL);
                }
                next = now;
                next.tv_nsec += GORO__TRACE_TICK_NS;
                if (next.tv_nsec >= 1000000000L) {
                    next.tv_sec++;
                    next.tv_nsec -= 1000000000L;
                }
            }
            sp.waiting = true;
            pthread_cond_timedwait(&sp.cond, &sp.lock, &next);
            sp.waiting = false;
        }
        goro__trace_chunk *batch = sp.qhead, *last = NULL;
        sp.qhead = sp.qtail = NULL;
        sp.nqueued = 0;
        bool quit = sp.quit;
        pthread_mutex_unlock(&sp.lock);
        for (goro__trace_chunk *c = batch; c; c = c->next) {
            spool_write(c);
            last = c;
        }
        pthread_mutex_lock(&sp.lock);
        if (last) {
            last->next = sp.free;
            sp.free = batch;
        }
        if (quit && !sp.qhead)
            break;
    }
    pthread_mutex_unlock(&sp.lock);
    return NULL;
}

/* Opens the temporary file and starts the writer, with the slabs of pre (GORO__TRACE_SPARES
 * entries, NULL ones and all NULL allowed) as its first spares; those it takes it sets to
 * NULL, the caller unmaps the rest. Returns 0 or -errno. */
static int spool_start(void **pre) {
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir)
        dir = "/tmp";
    sp.fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (sp.fd < 0) {
        char path[4096];
        snprintf(path, sizeof path, "%s/goro-trace-XXXXXX", dir);
        sp.fd = mkostemp(path, O_CLOEXEC);
        if (sp.fd < 0)
            return -errno;
        unlink(path);
    }
    sp.qhead = sp.qtail = sp.free = NULL;
    sp.waiting = sp.quit = false;
    sp.nqueued = 0;
    /* (R6) Lazy: full chunks stay in memory until they fill half the limit, so a short
     * trace never writes the file while it records (writing ~0.5 GB/s of ping-pong
     * records cost more than recording them) and a long one has the other half of the
     * memory as headroom while the writer catches up. */
    sp.lazy = tr.max_slabs * GORO__TRACE_SLAB_CHUNKS / 2;
    if (sp.lazy < 1)
        sp.lazy = 1;
    /* Spares only with room for them beside one slab per stream at work: a small limit
     * (GORO_TRACE_BUFFER_MB=1 in the tests) goes to the streams that ask first. */
    sp.nspare = 0;
    sp.spares = tr.max_slabs >= 4 * GORO__TRACE_SPARES;
    for (int i = 0; sp.spares && pre && i < GORO__TRACE_SPARES; i++)
        if (pre[i]) {
            tr.slabs[goro__add_relaxed(&tr.nslabs, 1) - 1] = pre[i]; /* no stream records yet */
            sp.spare[sp.nspare++] = pre[i];
            pre[i] = NULL;
        }
    sp.lost = 0;
    sp.err = 0;
    /* No signal for the writer: the runtime's go to the threads that run goroutines. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int err = pthread_create(&sp.thread, NULL, spool_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err) {
        close(sp.fd);
        sp.fd = -1;
        return -err;
    }
    return 0;
}

/* Queues the chunks still being filled, lets the writer finish and joins it. */
static void spool_finish(void) {
    pthread_mutex_lock(&sp.lock);
    for (int i = -1; i < GORO__MAXPROCS_LIMIT; i++) {
        stream *st = i < 0 ? &gstream : &pstreams[i];
        goro__trace_chunk *c = st->tail;
        st->tail = NULL;
        if (!c)
            continue;
        goro__p *p = i >= 0 ? goro__load_relaxed(&tps[i]) : NULL;
        if (p && p->trace_pos) /* the cursor is the truth (p_reserve) */
            c->used = (uint32_t)((char *)p->trace_pos - c->data);
        if (!c->used) {
            c->next = sp.free;
            sp.free = c;
            continue;
        }
        c->next = NULL;
        if (sp.qtail)
            sp.qtail->next = c;
        else
            sp.qhead = c;
        sp.qtail = c;
    }
    sp.quit = true;
    pthread_mutex_unlock(&sp.lock);
    pthread_cond_signal(&sp.cond);
    pthread_join(sp.thread, NULL);
}

/* Maps the spool file and threads its chunks into one list per stream, in the order
 * they were written, which is each stream's order (a stream's chunks are queued by its
 * successive owners, one after another). Returns the number of streams in out. */
static int spool_read(goro__trace_stream *out, void **map, size_t *mapsize) {
    *map = NULL;
    *mapsize = 0;
    off_t size = lseek(sp.fd, 0, SEEK_END);
    if (size <= 0)
        return 0;
    /* Private and writable: the next pointers are rewritten in the copy. */
    char *m = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_PRIVATE, sp.fd, 0);
    if (m == MAP_FAILED)
        return 0;
    *map = m;
    *mapsize = (size_t)size;
    static goro__trace_chunk *heads[GORO__MAXPROCS_LIMIT + 1], *tails[GORO__MAXPROCS_LIMIT + 1];
    memset(heads, 0, sizeof heads);
    memset(tails, 0, sizeof tails);
    size_t hdr = offsetof(goro__trace_chunk, data);
    for (size_t off = 0; off + hdr <= (size_t)size;) {
        goro__trace_chunk *c = (goro__trace_chunk *)(m + off);
        if (c->used > GORO__TRACE_CHUNK_DATA || off + hdr + c->used > (size_t)size || c->p < -1 ||
            c->p >= GORO__MAXPROCS_LIMIT)
            break; /* cannot happen: the writer cuts off partial records */
        int i = c->p + 1;
        c->next = NULL;
        if (tails[i])
            tails[i]->next = c;
        else
            heads[i] = c;
        tails[i] = c;
        off += hdr + c->used;
    }
    int n = 0;
    for (int i = 0; i <= GORO__MAXPROCS_LIMIT; i++)
        if (heads[i])
            out[n++] = (goro__trace_stream){.head = heads[i], .p = i - 1};
    return n;
}

/* Empties the streams and their cursors (the slabs stay, for write_out to unmap). */
static void clear_streams(void) {
    memset(pstreams, 0, sizeof pstreams);
    memset(&gstream, 0, sizeof gstream);
    for (int i = 0; i < GORO__MAXPROCS_LIMIT; i++) {
        goro__p *p = goro__load_relaxed(&tps[i]);
        if (!p)
            continue;
        p->trace_pos = NULL;
        goro__store_relaxed(&p->trace_lim, NULL);
        goro__store_relaxed(&tps[i], NULL);
    }
}

static void reset_streams(void) {
    clear_streams();
    goro__store_relaxed(&tr.nslabs, 0);
}

/* Opens path and arms the recording. The caller made sure no P runs but its own. */
static int begin(const char *path, void **pre) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    tr.fd = fd;
    long mb = 64;
    const char *env = getenv("GORO_TRACE_BUFFER_MB");
    if (env && atol(env) > 0)
        mb = atol(env);
    tr.max_slabs = (int64_t)mb * 1024 * 1024 / (int64_t)GORO__TRACE_SLAB;
    if (tr.max_slabs < 1)
        tr.max_slabs = 1; /* then only the stream that takes it records (tests) */
    if (!(tr.slabs = calloc((size_t)tr.max_slabs, sizeof *tr.slabs))) {
        close(fd);
        tr.fd = -1;
        return GORO_ENOMEM;
    }
    reset_streams();
    int err = spool_start(pre);
    if (err) {
        for (int64_t i = 0; i < goro__load_relaxed(&tr.nslabs); i++) /* spares from pre */
            slab_release(tr.slabs[i]);
        goro__store_relaxed(&tr.nslabs, 0);
        free(tr.slabs);
        tr.slabs = NULL;
        close(fd);
        tr.fd = -1;
        return err;
    }
    use_counter = counter_usable();
    const char *st = getenv("GORO_TRACE_STAMPS");
    stamp_every = st && strcmp(st, "exact") == 0 ? 1 : GORO__TRACE_STAMP_EVERY;
    stamp_adaptive = !(st && strcmp(st, "sampled") == 0);
    tr.clock.counter = use_counter;
    tr.clock.tick_ns = GORO__TRACE_TICK_NS;
    tr.clock.ticks0 = now_ticks();
    tr.clock.ns0 = goro__nanotime();
    /* The snapshot first, then the flag: an M without a P that writes the global stream
     * meanwhile is dropped (tracing is off), so no event of a goroutine comes before its
     * "existing" one. The P streams start empty; their owners resume after the world
     * starts again. Lock order: sched.lock, gfree_lock, trace_lock. */
    pthread_mutex_lock(&tr.lock);
    snapshotting = true;
    pthread_mutex_unlock(&tr.lock);
    if (goro__S.allp) {
        pthread_mutex_lock(&goro__S.lock);
        for (goro__m *o = goro__S.allm; o; o = o->alllink)
            if (o->p) {
                goro__trace_ev e = {
                    .arg = (uint64_t)o->id, .type = GORO__EV_PROC_START, .p = (int16_t)o->p->id};
                emit(NULL, NULL, &e, NULL, 0);
            }
        pthread_mutex_lock(&goro__S.gfree_lock);
        goro__for_each_g(snapshot_g, NULL);
        pthread_mutex_unlock(&goro__S.gfree_lock);
        pthread_mutex_unlock(&goro__S.lock);
    }
    pthread_mutex_lock(&tr.lock);
    snapshotting = false;
    goro__store_relaxed(&goro__tracing, 1);
    pthread_mutex_unlock(&tr.lock);
    return 0;
}

/* Stops the recording: after this no P writes (R5), the writer has written every chunk
 * and out holds the streams, read back from the spool. */
static void end(goro__trace_stream *out, int *nout, uint64_t *dropped, uint64_t *stop_ticks) {
    pthread_mutex_lock(&tr.lock);
    goro__store_relaxed(&goro__tracing, 0);
    *stop_ticks = now_ticks();
    *dropped = gstream.dropped;
    for (int i = 0; i < GORO__MAXPROCS_LIMIT; i++)
        *dropped += pstreams[i].dropped;
    spool_finish();
    pthread_mutex_unlock(&tr.lock);
    *dropped += sp.lost;
    *nout = spool_read(out, &spool_map, &spool_mapsize);
    clear_streams();
}

static int write_out(goro__trace_stream *streams, int n, uint64_t dropped, uint64_t stop) {
    if (sp.err)
        fprintf(stderr, "goro: trace: writing the spool file: %s\n", goro_strerror(sp.err));
    tr.clock.ticks1 = stop;
    tr.clock.ns1 = goro__nanotime();
    int err = goro__trace_write_json(tr.fd, streams, n, &tr.clock, dropped);
    if (close(tr.fd) && !err)
        err = -errno;
    tr.fd = -1;
    if (spool_map)
        munmap(spool_map, spool_mapsize);
    spool_map = NULL;
    close(sp.fd);
    sp.fd = -1;
    int64_t nslabs = goro__load_relaxed(&tr.nslabs);
    for (int64_t i = 0; i < nslabs && i < tr.max_slabs; i++)
        if (tr.slabs[i])
            slab_release(tr.slabs[i]);
    free(tr.slabs);
    tr.slabs = NULL;
    goro__store_relaxed(&tr.nslabs, 0);
    return err;
}

static goro__trace_stream streams_buf[GORO__MAXPROCS_LIMIT + 1]; /* [lock: state] */

int goro_trace_start(const char *path) {
    if (!path)
        return GORO_EINVAL;
    uint32_t idle = TRACE_IDLE;
    /* Acq-rel CAS: the one caller that wins owns tr's per-trace fields until it sets
     * TRACE_ON (release), and pairs with the release store that ended the last trace. */
    if (!goro__cas_acqrel(&tr.state, &idle, TRACE_STARTING))
        return GORO_EBUSY;
    goro__m *m = goro__getm();
    bool in_g = m && m->curg;
    if (!in_g && goro__S.allp) {
        /* A runtime runs, but we cannot stop its world from outside. */
        goro__store_release(&tr.state, TRACE_IDLE);
        return GORO_EPERM;
    }
    /* The first spare slabs (R4), faulted in before the world stops: otherwise the first
     * chunk of a P would cost its goroutine the fault (~300 us), as the writer thread has
     * only just started. */
    void *pre[GORO__TRACE_SPARES];
    for (int i = 0; i < GORO__TRACE_SPARES; i++)
        pre[i] = slab_map();
    if (in_g)
        goro__stop_the_world();
    int err = begin(path, pre);
    if (in_g)
        goro__start_the_world(goro__load_relaxed(&goro__S.gomaxprocs));
    for (int i = 0; i < GORO__TRACE_SPARES; i++)
        if (pre[i])
            slab_release(pre[i]);
    tr.from_env = false;
    goro__store_release(&tr.state, err ? TRACE_IDLE : TRACE_ON);
    return err;
}

int goro_trace_stop(void) {
    uint32_t on = TRACE_ON;
    if (!goro__cas_acqrel(&tr.state, &on, TRACE_STOPPING))
        return GORO_EINVAL; /* not tracing */
    goro__m *m = goro__getm();
    bool in_g = m && m->curg;
    if (!in_g && goro__S.allp) {
        goro__store_release(&tr.state, TRACE_ON);
        return GORO_EPERM;
    }
    if (in_g)
        goro__stop_the_world();
    int n;
    uint64_t dropped, stop;
    end(streams_buf, &n, &dropped, &stop);
    if (in_g) {
        goro__start_the_world(goro__load_relaxed(&goro__S.gomaxprocs));
        /* The conversion takes a while: let the P serve others meanwhile. */
        goro_blocking_begin();
    }
    int err = write_out(streams_buf, n, dropped, stop);
    if (in_g)
        goro_blocking_end();
    goro__store_release(&tr.state, TRACE_IDLE);
    return err;
}

void goro__trace_run_begin(void) {
    const char *path = getenv("GORO_TRACE");
    if (!path || !*path)
        return;
    uint32_t idle = TRACE_IDLE;
    if (!goro__cas_acqrel(&tr.state, &idle, TRACE_STARTING))
        return; /* a trace started before goro_run goes on */
    /* goro_run's thread is the only one: nothing else runs yet. */
    int err = begin(path, NULL);
    if (err) {
        fprintf(stderr, "goro: GORO_TRACE=%s: %s\n", path, goro_strerror(err));
        goro__store_release(&tr.state, TRACE_IDLE);
        return;
    }
    tr.from_env = true;
    goro__store_release(&tr.state, TRACE_ON);
}

void goro__trace_run_end(void) {
    /* Every thread of the runtime has been joined: a trace started inside goro_run (by
     * GORO_TRACE or a goroutine) ends with it, as its goroutines do. */
    uint32_t on = TRACE_ON;
    if (!goro__cas_acqrel(&tr.state, &on, TRACE_STOPPING))
        return;
    int n;
    uint64_t dropped, stop;
    end(streams_buf, &n, &dropped, &stop);
    int err = write_out(streams_buf, n, dropped, stop);
    if (err)
        fprintf(stderr, "goro: writing the trace: %s\n", goro_strerror(err));
    goro__store_release(&tr.state, TRACE_IDLE);
}
