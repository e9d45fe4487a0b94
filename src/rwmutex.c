/*
 * rwmutex.c - goro_rwmutex, Go's sync.RWMutex: many readers or one writer, and a writer
 * that waits is not starved by readers that keep arriving.
 *
 * Terms
 *  MAX_READERS  2^30, more readers than can ever hold the lock at once.
 *  pending writer  the writer that holds rw->w and has announced itself by subtracting
 *               MAX_READERS from reader_count; it holds the lock once the readers that
 *               were inside at that moment ("departing readers") have left.
 *
 * Fields (see the struct in goro.h)
 *  w             goro_mutex; at most one writer is past it. It is the only writer queue.
 *  reader_count  [atomic] readers inside or waiting, minus MAX_READERS while a writer is
 *                pending or holds the lock. Only read-modify-writes change it.
 *  reader_wait   [atomic] departing readers the pending writer still waits for; may dip
 *                below zero briefly when departing readers leave before the writer adds
 *                their number.
 *  writer_sem    goro__sema; the pending writer parks here; the last departing reader
 *                gives it its one unit.
 *  reader_sem    goro__sema; readers that arrived while a writer was pending or held the
 *                lock park here; the writer's unlock gives one unit to each.
 *
 * Invariants
 *  (R1) reader_count < 0 exactly while some writer is pending or holds the lock; then
 *       reader_count + MAX_READERS is the number of readers inside or queued on
 *       reader_sem. A reader whose increment left it negative waits on reader_sem.
 *  (R2) When the writer subtracts MAX_READERS, the r readers it sees inside are exactly
 *       the ones whose later decrement of reader_count leaves it negative (all changes of
 *       reader_count are read-modify-writes, so they are totally ordered): each of them,
 *       and nobody else, decrements reader_wait. The writer adds r. Whichever of these
 *       r + 1 read-modify-writes of reader_wait brings it to zero decides: if the writer
 *       brings it there, nobody is inside and it goes on; if a reader does, that reader
 *       releases writer_sem once and the writer, which saw a non-zero value, acquires it.
 *  (R3) The writer's unlock adds MAX_READERS back; the value it gets is the number of
 *       readers that queued meanwhile, and each gets one unit of reader_sem. A reader that
 *       arrives after that add sees reader_count >= 0 and enters without waiting.
 *  (R4) Misuse shows in the counts: a read unlock that takes reader_count from 0 to -1
 *       (nobody inside) or from -MAX_READERS to below it (a writer inside, no reader) is
 *       fatal; so is a write unlock that leaves reader_count at or above MAX_READERS (it
 *       was not negative: no writer held the lock).
 *
 * Memory ordering: every read-modify-write here is acq-rel. A reader's unlock (release)
 * happens before the writer's lock returns: either the writer's subtraction reads it
 * (acquire), or the reader's decrement of reader_wait does, which the last departing
 * reader's decrement and its sema release carry to the writer's sema acquire or reader_wait
 * add. A writer's unlock (release add to reader_count) happens before every later reader,
 * through reader_count directly or through reader_sem.
 *
 * Rejected: a reader count under a spin lock with explicit queues (one lock word bounced
 * by every reader, where here an uncontended read lock is one atomic add); letting new
 * readers in while a writer waits (a steady stream of readers would starve writers).
 *
 * See also: sync.c (goro__sema, goro_mutex).
 */
#include "atomic.h"
#include "internal.h"

#define MAX_READERS (1 << 30)

void goro_rwmutex_rlock(goro_rwmutex *rw) {
    /* Acq-rel: acquire pairs with the release add of a writer's unlock (R3). */
    if (goro__add_acqrel(&rw->reader_count, 1) < 0)
        goro__sema_acquire(&rw->reader_sem, false, GORO__WAIT_RWMUTEX_R); /* (R1) */
    goro__race_acquire(&rw->reader_sem); /* writers' unlocks before this (race.h) */
}

static void runlock_slow(goro_rwmutex *rw, int32_t r) {
    if (r + 1 == 0 || r + 1 == -MAX_READERS)
        goro__fatal("sync: RUnlock of unlocked RWMutex (goroutine %llu)",
                    (unsigned long long)goro_self()); /* (R4) */
    /* A writer is pending and we are one of its departing readers (R2). Acq-rel: release
     * hands our critical section on, through the last departing reader, to the writer. */
    if (goro__add_acqrel(&rw->reader_wait, -1) == 0)
        goro__sema_release(&rw->writer_sem, false);
}

void goro_rwmutex_runlock(goro_rwmutex *rw) {
    goro__race_release(&rw->writer_sem); /* before the next writer's lock */
    /* Acq-rel: release pairs with the acquire in the pending writer's subtraction (R2). */
    int32_t r = goro__add_acqrel(&rw->reader_count, -1);
    if (r < 0)
        runlock_slow(rw, r);
}

void goro_rwmutex_lock(goro_rwmutex *rw) {
    goro_mutex_lock(&rw->w);
    /* Announce the writer: from here on new readers queue (R1). Acq-rel: acquire pairs
     * with the release of readers that already left. */
    int32_t r = goro__add_acqrel(&rw->reader_count, -MAX_READERS) + MAX_READERS;
    /* Acq-rel: acquire pairs with the departing readers' decrements (R2). */
    if (r != 0 && goro__add_acqrel(&rw->reader_wait, r) != 0)
        goro__sema_acquire(&rw->writer_sem, false, GORO__WAIT_RWMUTEX_W);
    goro__race_acquire(&rw->reader_sem);
    goro__race_acquire(&rw->writer_sem);
}

void goro_rwmutex_unlock(goro_rwmutex *rw) {
    goro__race_release(&rw->reader_sem); /* before later read locks */
    /* Let readers in again (R3). Acq-rel: release pairs with the acquire of the readers
     * that increment reader_count after this. */
    int32_t r = goro__add_acqrel(&rw->reader_count, MAX_READERS);
    if (r >= MAX_READERS)
        goro__fatal("sync: Unlock of unlocked RWMutex (goroutine %llu)",
                    (unsigned long long)goro_self()); /* (R4) */
    /* Wake the readers that queued behind us; each sema release is their acquire. */
    for (int32_t i = 0; i < r; i++)
        goro__sema_release(&rw->reader_sem, false);
    goro_mutex_unlock(&rw->w);
}
