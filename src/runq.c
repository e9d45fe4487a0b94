/*
 * runq.c - the per-P run queue: a bounded single-producer, multi-consumer ring.
 *
 * Terms: the owner is the M holding the P; a thief is any other M taking work from it.
 *
 * Invariants
 *  (R1) head and tail are free-running 32-bit counters; tail - head is the number of
 *       queued goroutines and never exceeds GORO__RUNQ_SIZE.
 *  (R2) Only the owner writes tail and the slots; it writes slot t before publishing
 *       tail = t + 1 with a release store, so a consumer that acquires tail sees the slot.
 *  (R3) A consumer reads the slots [h, h + n) first and then claims them with a CAS of head
 *       from h to h + n. The CAS fails if anyone consumed meanwhile, and then the values read
 *       are dropped. A slot is rewritten by the owner only after head has moved past it
 *       (the owner reads head with acquire before reusing space), so a successful CAS
 *       proves the values read were the live ones.
 *
 * The owner's put and get and the emptiness test are inline in runq.h (they are on the
 * path of every switch); grab and steal are here.
 *
 * Each goroutine put is therefore taken exactly once. This is Go's runqput/runqget/
 * runqgrab design; the rejected alternative, a locked deque per P, costs a lock on every
 * spawn and switch and serialises thieves against the owner.
 */
#include "runq.h"

#include <stddef.h>

#include "atomic.h"

uint32_t goro__runq_grab(goro__runq *q, struct goro__g **batch) {
    for (;;) {
        uint32_t h = goro__load_acquire(&q->head);
        /* Acquire pairs with the owner's release store of tail (R2). */
        uint32_t t = goro__load_acquire(&q->tail);
        uint32_t n = t - h;
        n = n - n / 2;
        if (n == 0)
            return 0;
        if (n > GORO__RUNQ_SIZE / 2 + 1)
            continue; /* head and tail read at different moments; read them again */
        for (uint32_t i = 0; i < n; i++)
            batch[i] = goro__load_relaxed(&q->ring[(h + i) % GORO__RUNQ_SIZE]);
        /* Release: the slot reads above happen before the owner may reuse them (R3). */
        if (goro__cas_release(&q->head, &h, h + n))
            return n;
    }
}

struct goro__g *goro__runq_steal(goro__runq *dst, goro__runq *src) {
    struct goro__g *batch[GORO__RUNQ_SIZE / 2 + 1];
    uint32_t n = goro__runq_grab(src, batch);
    if (n == 0)
        return NULL;
    struct goro__g *g = batch[--n];
    if (n == 0)
        return g;
    /* dst is empty and we own it, so the n < GORO__RUNQ_SIZE slots fit. */
    uint32_t t = goro__load_relaxed(&dst->tail);
    for (uint32_t i = 0; i < n; i++)
        goro__store_relaxed(&dst->ring[(t + i) % GORO__RUNQ_SIZE], batch[i]);
    /* Release publishes the slots, as in runq_put (R2). */
    goro__store_release(&dst->tail, t + n);
    return g;
}
