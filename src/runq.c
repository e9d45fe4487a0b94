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
 * The global queue, at the end of this file, takes what overflows the rings and what a
 * stopped P leaves behind. It is a list of batches (arrays of goroutine pointers) under
 * its own lock: moving half a ring is one copy, and taking from it reads no goroutine
 * descriptor while the lock is held. (Go links goroutines through their descriptors;
 * walking 128 of them, each a cache miss, under the scheduler lock was the worst
 * contention of a million-goroutine spawn across two Ps.)
 *
 * Each goroutine put is therefore taken exactly once. This is Go's runqput/runqget/
 * runqgrab design; the rejected alternative, a locked deque per P, costs a lock on every
 * spawn and switch and serialises thieves against the owner.
 */
#include "runq.h"

#include <stddef.h>
#include <stdlib.h>

#include "internal.h"

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

/* ------------------------------------------------------------------ global queue */

#define BATCH_CAP (GORO__RUNQ_SIZE / 2 + 1)

typedef struct goro__runq_batch {
    struct goro__runq_batch *next;
    uint32_t head, tail; /* live pointers are g[head, tail) */
    struct goro__g *g[BATCH_CAP];
} goro__runq_batch;

/* Caller holds runq_lock. NULL when out of memory. */
static goro__runq_batch *batch_new(void) {
    goro__runq_batch *b = goro__S.runq_spare;
    if (b)
        goro__S.runq_spare = b->next;
    else if (!(b = malloc(sizeof *b)))
        return NULL;
    b->next = NULL;
    b->head = b->tail = 0;
    return b;
}

void goro__globrunq_put(goro__g *const *gs, uint32_t n) {
    pthread_mutex_lock(&goro__S.runq_lock);
    for (uint32_t i = 0; i < n;) {
        goro__runq_batch *b = goro__S.runq_tail;
        if (!b || b->tail == BATCH_CAP) {
            if (!(b = batch_new()))
                goro__fatal("out of memory growing the global run queue");
            if (goro__S.runq_tail)
                goro__S.runq_tail->next = b;
            else
                goro__S.runq_head = b;
            goro__S.runq_tail = b;
        }
        while (i < n && b->tail < BATCH_CAP)
            b->g[b->tail++] = gs[i++];
    }
    goro__store_relaxed(&goro__S.runq_size, goro__S.runq_size + (int32_t)n);
    pthread_mutex_unlock(&goro__S.runq_lock);
}

goro__g *goro__globrunq_get(goro__p *p, int32_t max) {
    goro__g *batch[GORO__RUNQ_SIZE / 2];
    pthread_mutex_lock(&goro__S.runq_lock);
    int32_t size = goro__S.runq_size;
    if (size == 0) {
        pthread_mutex_unlock(&goro__S.runq_lock);
        return NULL;
    }
    /* A fair share: no P takes more than its part of the queue, nor more than half a
     * ring (p's ring is empty, or max is 1). */
    int32_t n = size / goro__load_relaxed(&goro__S.gomaxprocs) + 1;
    if (n > size)
        n = size;
    if (max > 0 && n > max)
        n = max;
    if (n > (int32_t)GORO__RUNQ_SIZE / 2)
        n = GORO__RUNQ_SIZE / 2;
    for (int32_t i = 0; i < n;) {
        goro__runq_batch *b = goro__S.runq_head;
        while (i < n && b->head < b->tail)
            batch[i++] = b->g[b->head++];
        if (b->head == b->tail) {
            goro__S.runq_head = b->next;
            if (!goro__S.runq_head)
                goro__S.runq_tail = NULL;
            b->next = goro__S.runq_spare;
            goro__S.runq_spare = b;
        }
    }
    goro__store_relaxed(&goro__S.runq_size, size - n);
    pthread_mutex_unlock(&goro__S.runq_lock);
    for (int32_t i = 1; i < n; i++)
        goro__runq_put(&p->runq, batch[i]);
    return batch[0];
}

void goro__globrunq_free(void) {
    for (int pass = 0; pass < 2; pass++) {
        goro__runq_batch *b = pass ? goro__S.runq_spare : goro__S.runq_head;
        while (b) {
            goro__runq_batch *next = b->next;
            free(b);
            b = next;
        }
    }
    goro__S.runq_head = goro__S.runq_tail = goro__S.runq_spare = NULL;
    goro__S.runq_size = 0;
}
