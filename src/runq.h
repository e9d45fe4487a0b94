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
#include <stdint.h>

#define GORO__RUNQ_SIZE 256u

struct goro__g;

typedef struct goro__runq {
    uint32_t head; /* [atomic] next slot to consume; CAS by any consumer */
    uint32_t tail; /* [atomic] next slot to fill; stored by the owner only */
    struct goro__g *ring[GORO__RUNQ_SIZE]; /* [atomic] slots, written by the owner only */
} goro__runq;

/* Owner P only. Appends g; false if the ring is full (the caller moves half elsewhere). */
bool goro__runq_put(goro__runq *q, struct goro__g *g);
/* Owner P only. Takes the oldest goroutine, or NULL if empty. */
struct goro__g *goro__runq_get(goro__runq *q);
/* Any thread. Claims up to half (rounded up) of q's goroutines, oldest first, into batch
 * (room for GORO__RUNQ_SIZE / 2 + 1). Returns how many were claimed. */
uint32_t goro__runq_grab(goro__runq *q, struct goro__g **batch);
/* Owner of dst only; dst must be empty. Steals half of src into dst and returns one of
 * them to run at once (the rest stay in dst), or NULL if src was empty. */
struct goro__g *goro__runq_steal(goro__runq *dst, goro__runq *src);
/* Any thread. An estimate of the number of queued goroutines. */
uint32_t goro__runq_len(const goro__runq *q);
/* Any thread. True if nothing is queued at this instant. */
bool goro__runq_empty(const goro__runq *q);

#endif
