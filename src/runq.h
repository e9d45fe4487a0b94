/*
 * runq.h - the per-P run queue: a bounded ring of goroutines with one producer (the P's
 * owner) and any number of consumers (the owner and stealing Ps).
 *
 * The ring holds GORO__RUNQ_SIZE slots indexed by free-running 32-bit head and tail
 * counters (slot = counter % size). Only the owner advances tail; consumers advance head
 * with a CAS, after having read the slots they claim. See runq.c for the protocol.
 */
#ifndef GORO_RUNQ_H
#define GORO_RUNQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "atomic.h"

#define GORO__RUNQ_SIZE 256u
#define GORO__RUNQ_PREFETCH 2 /* see goro__runq_prefetch */

struct goro__g;

typedef struct goro__runq {
    uint32_t head; /* [atomic] next slot to consume; CAS by any consumer */
    uint32_t tail; /* [atomic] next slot to fill; stored by the owner only */
    struct goro__g *ring[GORO__RUNQ_SIZE]; /* [atomic] slots, written by the owner only */
} goro__runq;

/* Any thread. Claims up to half (rounded up) of q's goroutines, oldest first, into batch
 * (room for GORO__RUNQ_SIZE / 2 + 1). Returns how many were claimed. */
uint32_t goro__runq_grab(goro__runq *q, struct goro__g **batch);
/* Owner of dst only; dst must be empty. Steals half of src into dst and returns one of
 * them to run at once (the rest stay in dst), or NULL if src was empty. */
struct goro__g *goro__runq_steal(goro__runq *dst, goro__runq *src);

/* Owner P only. Appends g; false if the ring is full (the caller moves half elsewhere).
 * The protocol and invariants (R1)-(R3) are in runq.c. */
static inline bool goro__runq_put(goro__runq *q, struct goro__g *g) {
    /* Only the owner writes tail, so a relaxed load reads its own last store. */
    uint32_t t = goro__load_relaxed(&q->tail);
    /* Acquire pairs with the consumers' CAS of head (R3): the slots they claimed were read
     * before we overwrite them. */
    uint32_t h = goro__load_acquire(&q->head);
    if (t - h >= GORO__RUNQ_SIZE)
        return false;
    goro__store_relaxed(&q->ring[t % GORO__RUNQ_SIZE], g);
    /* Release publishes the slot before the new tail (R2); pairs with the acquire load of
     * tail in runq_get/runq_grab. */
    goro__store_release(&q->tail, t + 1);
    return true;
}

/* Owner P only, after taking slot h - 1 of a queue whose tail was t: starts loading the
 * descriptor of the goroutine GORO__RUNQ_PREFETCH places behind it, which the scheduler
 * reads and writes when its turn comes. Descriptors in a long queue are cold: a P that
 * runs what another P spawned finds each in the other core's cache, and a million queued
 * ones are in memory. In a spawn flood on two Ps the first read of the next descriptor
 * (g_end's look at its stack) was the hottest instruction (perf record -e cpu-clock).
 * A stale slot only prefetches a wrong line. */
static inline void goro__runq_prefetch(goro__runq *q, uint32_t h, uint32_t t) {
    uint32_t ahead = h + GORO__RUNQ_PREFETCH - 1;
    if ((int32_t)(t - ahead) > 0)
        __builtin_prefetch(goro__load_relaxed(&q->ring[ahead % GORO__RUNQ_SIZE]), 1);
}

/* Owner P only. Takes the oldest goroutine, or NULL if empty. */
static inline struct goro__g *goro__runq_get(goro__runq *q) {
    for (;;) {
        /* Acquire pairs with thieves' CAS of head, so we start from their latest claim. */
        uint32_t h = goro__load_acquire(&q->head);
        uint32_t t = goro__load_relaxed(&q->tail); /* owner: our own store */
        if (t == h)
            return NULL;
        struct goro__g *g = goro__load_relaxed(&q->ring[h % GORO__RUNQ_SIZE]);
        /* Release: our read of the slot happens before the owner may reuse it (R3). */
        if (goro__cas_release(&q->head, &h, h + 1)) {
            goro__runq_prefetch(q, h + 1, t);
            return g;
        }
    }
}

/* Owner P only, while it is the only P (gomaxprocs 1, which changes only with the world
 * stopped): no thief exists, so head moves with a plain store instead of a CAS. */
static inline struct goro__g *goro__runq_get_alone(goro__runq *q) {
    uint32_t h = goro__load_relaxed(&q->head), t = goro__load_relaxed(&q->tail);
    if (t == h)
        return NULL;
    struct goro__g *g = goro__load_relaxed(&q->ring[h % GORO__RUNQ_SIZE]);
    /* Release, as the CAS in runq_get: for readers of head such as runq_len. */
    goro__store_release(&q->head, h + 1);
    goro__runq_prefetch(q, h + 1, t);
    return g;
}

/* Any thread. The number of queued goroutines at one instant. */
static inline uint32_t goro__runq_len(const goro__runq *q) {
    for (;;) {
        /* A consistent pair: head did not move while tail was read. Both acquire, pairing
         * with the owner's release of tail and the consumers' CAS of head. */
        uint32_t h = goro__load_acquire(&q->head);
        uint32_t t = goro__load_acquire(&q->tail);
        if (goro__load_acquire(&q->head) == h)
            return t - h;
    }
}

/* Any thread. True if nothing is queued at this instant. */
static inline bool goro__runq_empty(const goro__runq *q) {
    return goro__runq_len(q) == 0;
}

/*
 * The spawn stack: goroutines spawned on a P that have not run yet, newest on top.
 *
 * A spawn puts the new goroutine in runnext; the one it displaces, spawned earlier, goes
 * here rather than to the queue tail. The owner takes the newest (bottom end, LIFO), so
 * a tree of spawns runs depth first, as the same calls would run without goroutines: a
 * node's children run and finish while their parent's stack is warm, and only the
 * branches along one path are alive at a time (~60 goroutines for the million-leaf
 * skynet tree instead of ~10,000 with a FIFO, each with a stack page and a descriptor
 * that have left the cache). Thieves take the oldest (top end, one at a time): the
 * biggest pending subtree, which is the best work to move to another CPU. This is the
 * work-stealing deque of Chase and Lev (SPAA 2005) over a fixed array; the scheduler
 * bounds how long the oldest entries wait (pick_local in sched.c).
 *
 *  (D1) top and bottom are free-running counters; bottom - top is the number of entries
 *       and never exceeds GORO__LIFO_SIZE. Only the owner writes bottom and the slots.
 *  (D2) The owner writes slot b before publishing bottom = b + 1 with a release store;
 *       a thief acquires bottom before reading the slot.
 *  (D3) Anyone taking from the top reads slot t and then claims it with a CAS of top
 *       from t to t + 1 (the owner claims a run of slots the same way when it spills);
 *       the owner reuses a slot only after reading (acquire) that top has moved past it.
 *  (D4) The owner's take from the bottom stores bottom = b - 1 and then reads top, and a
 *       thief reads top and then bottom, each pair with a full fence in between: of an
 *       owner and a thief going for the last entry, at least one sees the other, and the
 *       entry goes to whoever wins the CAS of top. (Fences, not seq-cst accesses: an
 *       aarch64 stlr then ldar is ordered on hardware, but qemu-user on an x86 host
 *       lets the load pass the store, and the suite runs there.)
 */
#define GORO__LIFO_SIZE 512
#define GORO__LIFO_SLOT(s, i) (&(s)->ring[(uint64_t)(i) % GORO__LIFO_SIZE])

typedef struct goro__lifo {
    int64_t top;    /* [atomic] oldest entry; CAS by takers from the top */
    int64_t bottom; /* [atomic] one past the newest entry; written by the owner only */
    struct goro__g *ring[GORO__LIFO_SIZE]; /* [atomic] written by the owner only */
} goro__lifo;

/* Any thread. True if the stack looks empty at this instant. */
static inline bool goro__lifo_empty(const goro__lifo *s) {
    return goro__load_acquire(&s->bottom) <= goro__load_acquire(&s->top);
}

/* Owner only. Pushes g on top; false if full. */
static inline bool goro__lifo_push(goro__lifo *s, struct goro__g *g) {
    int64_t b = goro__load_relaxed(&s->bottom);
    if (b - goro__load_acquire(&s->top) >= GORO__LIFO_SIZE) /* (D3) */
        return false;
    goro__store_relaxed(GORO__LIFO_SLOT(s, b), g);
    goro__store_release(&s->bottom, b + 1); /* (D2) */
    return true;
}

/* Owner only. Takes the newest entry, or NULL. With alone (one P: no thief exists, see
 * goro__runq_get_alone) it needs no sequentially consistent ordering. */
static inline struct goro__g *goro__lifo_pop(goro__lifo *s, bool alone) {
    int64_t b = goro__load_relaxed(&s->bottom) - 1;
    if (alone) {
        if (b < goro__load_relaxed(&s->top))
            return NULL;
        goro__store_release(&s->bottom, b);
        return goro__load_relaxed(GORO__LIFO_SLOT(s, b));
    }
    if (b < goro__load_relaxed(&s->top))
        return NULL; /* top only grows: empty now, and only we could fill it */
    goro__store_relaxed(&s->bottom, b);
    goro__fence_sc(); /* (D4) */
    int64_t t = goro__load_relaxed(&s->top);
    struct goro__g *g = NULL;
    if (t <= b) {
        g = goro__load_relaxed(GORO__LIFO_SLOT(s, b));
        if (t < b)
            return g;
        /* The last entry: a thief may be taking it too. */
        if (!goro__cas_sc(&s->top, &t, t + 1))
            g = NULL;
    }
    goro__store_release(&s->bottom, b + 1);
    return g;
}

/* Any thread. Takes the oldest entry, or NULL if empty or lost to a racing taker. */
static inline struct goro__g *goro__lifo_steal(goro__lifo *s) {
    int64_t t = goro__load_acquire(&s->top);
    goro__fence_sc();                           /* (D4) */
    int64_t b = goro__load_acquire(&s->bottom); /* (D2) */
    if (t >= b)
        return NULL;
    struct goro__g *g = goro__load_relaxed(GORO__LIFO_SLOT(s, t));
    return goro__cas_sc(&s->top, &t, t + 1) ? g : NULL; /* (D3) */
}

/* Owner only, the stack full. Claims its oldest half into batch (room for
 * GORO__LIFO_SIZE / 2) and returns how many were claimed (fewer if thieves took some). */
static inline uint32_t goro__lifo_spill(goro__lifo *s, struct goro__g **batch) {
    for (;;) {
        int64_t t = goro__load_acquire(&s->top), b = goro__load_relaxed(&s->bottom);
        int64_t n = (b - t) / 2;
        if (n <= 0)
            return 0;
        for (int64_t i = 0; i < n; i++)
            batch[i] = goro__load_relaxed(GORO__LIFO_SLOT(s, t + i));
        if (goro__cas_sc(&s->top, &t, t + n))
            return (uint32_t)n;
    }
}

#endif
