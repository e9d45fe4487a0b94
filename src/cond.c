/*
 * cond.c - goro_cond, Go's sync.Cond: goroutines park until another signals that the
 * condition they wait for, guarded by a goro_mutex, may have changed.
 *
 * The hard part is the gap in goro_cond_wait between unlocking the mutex and parking: a
 * signal sent in that gap must neither be lost (the waiter would sleep on a condition that
 * already changed) nor wake anybody else in its place, and a signal sent before the wait
 * began must not count for it. Tickets close the gap, as Go's notify list does. A wait
 * takes the next ticket while it still holds the mutex, so a signaller that locked the
 * mutex after the waiter released it sees the ticket. Signal wakes tickets in order: it
 * advances `notify` past the oldest outstanding ticket and wakes that ticket's waiter if
 * it is parked; if it has not parked yet, the waiter finds its ticket below `notify` and
 * does not park at all. Broadcast advances `notify` to `ticket`, covering every ticket
 * taken so far, and wakes every parked waiter.
 *
 * Fields (see the struct in goro.h)
 *  lock         bit 0 is a goro__spin_lock over the fields below; other bits are zero.
 *  ticket       [atomic] the next ticket; taken (incremented) by waiters without the lock.
 *  notify       [atomic; written under lock] every ticket below it has been notified.
 *               Read without the lock only by the fast path of signal and broadcast.
 *  head, tail   [lock] the parked waiters, each node on its waiter's stack, in the order
 *               they parked (which need not be ticket order).
 *
 * Invariants
 *  (C1) notify <= ticket, in wrap-around order: notify only moves under the lock, and only
 *       up to a value of ticket it has read.
 *  (C2) A waiter is on the list only if its ticket is >= notify; it enqueues itself under
 *       the lock after checking that, and whoever moves notify past its ticket removes it
 *       under the same lock hold. Each ticket is therefore woken at most once, by the
 *       signal or broadcast that moved notify past it, and never lost.
 *  (C3) The waiter's node is enqueued under the lock, which is dropped only once its
 *       goroutine is WAITING (park's unlock callback; sched.c, P1): whoever finds a node
 *       on the list may goro__ready its goroutine. The node dies once that goroutine
 *       runs, so a waker reads everything it needs from it first and touches neither it
 *       nor the cond once it has dropped the lock.
 *  (C4) With ticket == notify no ticket is outstanding: signal and broadcast return at once
 *       without the lock (a signal with no waiter does nothing, as in Go).
 *
 * Tickets are 32-bit and compared by their difference, so they wrap; 2^31 waiters parked
 * on one cond at once is beyond any goroutine count.
 *
 * Rejected: a goro__sema per cond (a release with nobody parked would be saved for a
 * later waiter, a wake-up from before the wait: signal must not count for future waits);
 * a plain FIFO of waiters without tickets (a signal in the gap between unlock and park
 * finds nobody and is lost, or the waiter must enqueue before unlocking the mutex, which
 * cannot park under a spin lock).
 *
 * See also: sync.c (the semaphore queue this mirrors).
 */
#include "atomic.h"
#include "internal.h"

typedef struct cond_waiter {
    goro__g *g;
    uint32_t ticket;
    struct cond_waiter *next;
} cond_waiter;

/* Ticket a comes before ticket b, across wrap-around. */
static bool before(uint32_t a, uint32_t b) {
    return (int32_t)(a - b) < 0;
}

static bool cond_park_commit(goro__g *g, void *cond) {
    (void)g;
    goro__spin_unlock(&((goro_cond *)cond)->lock); /* (C3) */
    return true;
}

/* goro_cond_wait outside a goroutine: the thread never enqueues and polls notify, like a
 * waiter that has not enqueued yet (C2): signal finds no node for its ticket and only
 * moves notify past it. */
static __attribute__((noinline)) void wait_outside(goro_cond *c, uint32_t t) {
    goro__outside_contact();
    for (unsigned round = 0;;) {
        goro__spin_lock(&c->lock);
        bool notified = before(t, goro__load_relaxed(&c->notify));
        goro__spin_unlock(&c->lock);
        if (notified)
            return;
        goro__outside_pause(&round);
    }
}

void goro_cond_wait(goro_cond *c, goro_mutex *m) {
    /* Relaxed: the mutex orders it. Our unlock of m (release) happens before the lock of
     * any signaller that changed the condition afterwards, so its load of ticket sees
     * this increment (C4). */
    uint32_t t = goro__add_relaxed(&c->ticket, 1) - 1;
    goro_mutex_unlock(m);

    cond_waiter w = {.g = goro__getg(), .ticket = t, .next = NULL};
    if (GORO__UNLIKELY(!w.g)) {
        wait_outside(c, t);
        goro_mutex_lock(m);
        return;
    }
    goro__spin_lock(&c->lock);
    /* Relaxed: notify is only written under the lock we hold. */
    if (before(t, goro__load_relaxed(&c->notify))) {
        /* Signalled in the gap between unlock and here (C2). */
        goro__spin_unlock(&c->lock);
    } else {
        if (c->tail)
            ((cond_waiter *)c->tail)->next = &w;
        else
            c->head = &w;
        c->tail = &w;
        goro__park(GORO__WAIT_COND, cond_park_commit, c); /* (C3) */
        /* Woken by the signal or broadcast that removed w from the list. */
    }
    goro_mutex_lock(m);
}

/* True if no ticket is outstanding (C4). Relaxed: a ticket taken before the caller's
 * last lock of the waiters' mutex is seen through that mutex, see goro_cond_wait; a racing
 * ticket may or may not be seen, as either order is a valid outcome. */
static bool none_outstanding(goro_cond *c) {
    return goro__load_relaxed(&c->ticket) == goro__load_relaxed(&c->notify);
}

void goro_cond_signal(goro_cond *c) {
    if (none_outstanding(c))
        return;
    goro__spin_lock(&c->lock);
    uint32_t t = goro__load_relaxed(&c->notify);
    if (t == goro__load_relaxed(&c->ticket)) {
        goro__spin_unlock(&c->lock);
        return;
    }
    /* Relaxed store: under the lock; the fast path only compares it (C1, C4). */
    goro__store_relaxed(&c->notify, t + 1);
    /* Find ticket t's waiter; if it has not parked yet it will see notify (C2). */
    cond_waiter *prev = NULL, *w = c->head;
    while (w && w->ticket != t) {
        prev = w;
        w = w->next;
    }
    goro__g *g = NULL;
    if (w) {
        if (prev)
            prev->next = w->next;
        else
            c->head = w->next;
        if (c->tail == w)
            c->tail = prev;
        g = w->g; /* w dies once g runs (C3) */
    }
    goro__spin_unlock(&c->lock);
    if (g)
        goro__ready(g);
}

void goro_cond_broadcast(goro_cond *c) {
    if (none_outstanding(c))
        return;
    goro__spin_lock(&c->lock);
    cond_waiter *w = c->head;
    c->head = c->tail = NULL;
    /* Every ticket taken so far is notified (C1). Relaxed store: under the lock. */
    goro__store_relaxed(&c->notify, goro__load_relaxed(&c->ticket));
    goro__spin_unlock(&c->lock);
    while (w) {
        cond_waiter *next = w->next; /* w dies once its goroutine runs (C3) */
        goro__ready(w->g);
        w = next;
    }
}
