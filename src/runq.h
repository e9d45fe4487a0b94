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
        if (goro__cas_release(&q->head, &h, h + 1))
            return g;
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

#endif
