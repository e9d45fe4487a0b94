/*
 * sync.c - semaphores, goro_mutex and goro_waitgroup: they park goroutines, never threads.
 *
 * goro__sema is a counting semaphore with its own FIFO/LIFO queue of parked goroutines,
 * guarded by a spin lock in the struct itself, so every primitive is a fixed-size struct
 * whose all-zero bytes are a valid empty state (no global table keyed by address, as Go
 * has, and nothing to initialise or destroy).
 *
 * Semaphore invariants
 *  (S1) word = count << 1 | L, where L is the lock bit guarding the queue. Units can be
 *       taken without the lock (a CAS on word keeps L as it is).
 *  (S2) A release with a goroutine queued hands the unit straight to it (count untouched)
 *       and wakes it after dropping the lock; a release with the queue empty adds the
 *       unit and drops the lock in one atomic add (+1 turns count*2+1 into (count+1)*2).
 *       An acquirer queues itself only under the lock after seeing count 0, so a unit is
 *       never left in count while someone sleeps.
 *  (S3) The releaser's last access to the semaphore happens before the waiter it wakes
 *       can run, and a waiter that takes a unit from count does so with the atomic that
 *       was the releaser's last access. So once an acquire returns, no releaser touches
 *       the struct again: it may be freed or reused (a wait group on a stack, say).
 *  (S4) The waiter's queue node lives in its goroutine's descriptor (goro__gw(g)->wrec),
 *       so the goroutine's stack may be compacted while it waits (compact.c, K2). It is
 *       enqueued
 *       under the lock, which is dropped only once the goroutine is WAITING (park's unlock
 *       callback; sched.c, P1). Whoever dequeues a node calls goro__wait_dequeued (K3).
 *
 * goro_mutex is Go's sync.Mutex state machine on one int32: locked, woken and starving
 * bits and a waiter count. Normal mode lets a running goroutine barge in ahead of a woken
 * waiter (good throughput: the lock stays on a running CPU); a waiter that has waited more
 * than 1 ms switches the mutex to starvation mode, where unlock hands ownership directly
 * to the oldest waiter and newcomers queue behind it, until that waiter is the last one
 * or waited less than 1 ms.
 *
 * goro_waitgroup is Go's: counter and waiter count in one 64-bit word; when the counter
 * reaches zero with waiters, it is reset and each waiter gets a semaphore unit.
 */
#include "atomic.h"
#include "internal.h"

typedef struct sema_waiter {
    goro__g *g;
    struct sema_waiter *next;
} sema_waiter;
_Static_assert(sizeof(sema_waiter) <= sizeof(((goro__gwait *)0)->wrec), "fits in wrec");

enum { SEMA_LOCKED = 1, SEMA_UNIT = 2 }; /* SEMA_LOCKED is goro__spin_lock's bit */

/* Takes a unit if there is one, with or without the lock held (S1). */
static bool sema_try(goro__sema *s) {
    uint32_t w = goro__load_relaxed(&s->word);
    while (w >= SEMA_UNIT)
        /* Acq-rel pairs with the release add of the releaser whose unit we take. */
        if (goro__cas_acqrel(&s->word, &w, w - SEMA_UNIT))
            return true;
    return false;
}

/* The queue lock is bit 0 of the word (S1). */
static void sema_lock(goro__sema *s) {
    goro__spin_lock(&s->word);
}

static void sema_unlock(goro__sema *s) {
    goro__spin_unlock(&s->word);
}

static bool sema_park_commit(goro__g *g, void *sema) {
    (void)g;
    sema_unlock(sema);
    return true;
}

/* goro__sema_acquire outside a goroutine: the thread waits for a unit a release leaves
 * in the count, never queued, so it gets one only while no goroutine waits (S2 hands
 * units to queued waiters first). */
static __attribute__((noinline)) void sema_acquire_outside(goro__sema *s) {
    goro__outside_contact();
    for (unsigned round = 0; !sema_try(s);)
        goro__outside_pause(&round);
}

void goro__sema_acquire(goro__sema *s, bool lifo, int reason) {
    if (sema_try(s))
        return;
    goro__g *g = goro__getg();
    if (GORO__UNLIKELY(!g)) {
        sema_acquire_outside(s);
        return;
    }
    sema_waiter *w = (sema_waiter *)goro__gw(g)->wrec; /* (S4) */
    sema_lock(s);
    if (sema_try(s)) {
        sema_unlock(s);
        return;
    }
    w->g = g;
    w->next = NULL;
    sema_waiter *head = s->head;
    if (lifo || !head) {
        w->next = head;
        s->head = w;
        if (!head)
            s->tail = w;
    } else {
        ((sema_waiter *)s->tail)->next = w;
        s->tail = w;
    }
    goro__wait_queued(g, GORO__WK_SEMA, &s->word);
    goro__park(reason, sema_park_commit, s); /* (S4) */
    /* Woken with the unit handed to us (S2). */
}

void goro__sema_release(goro__sema *s, bool handoff) {
    sema_lock(s);
    sema_waiter *w = s->head;
    if (!w) {
        /* (S2) One atomic adds the unit and drops the lock: our last access (S3). */
        goro__add_release(&s->word, SEMA_UNIT - SEMA_LOCKED);
        return;
    }
    s->head = w->next;
    if (!s->head)
        s->tail = NULL;
    goro__g *g = w->g;
    goro__wait_dequeued(g); /* (S4) */
    sema_unlock(s);         /* our last access (S3) */
    goro__ready(g);
    if (handoff && goro__getg())
        goro__yield_now(); /* g is in runnext: it runs now, on our time slice */
}

/* ------------------------------------------------------------------ mutex */

enum {
    MUTEX_LOCKED = 1,
    MUTEX_WOKEN = 2,
    MUTEX_STARVING = 4,
    MUTEX_WAITER_SHIFT = 3,
};
#define STARVATION_NS 1000000

static bool can_spin(int iter) {
    if (iter >= 4 || goro__S.ncpu <= 1)
        return false;
    /* Spinning only pays if the holder is running on another P right now. */
    int32_t procs = goro__load_relaxed(&goro__S.gomaxprocs);
    if (procs <= goro__load_relaxed(&goro__S.npidle) + goro__load_relaxed(&goro__S.nmspinning) + 1)
        return false;
    /* Unbracketed read of the P (internal.h): it may be gone (sysmon.c), and then this
     * only peeks at a P that someone else may own, which is harmless. */
    goro__m *m = goro__getm();
    goro__p *p = m ? m->p : NULL; /* no M: a thread outside the runtime */
    return p && !goro__p_queued(p) && !goro__load_relaxed(&p->runnext);
}

static void lock_slow(goro_mutex *mu) {
    int64_t wait_start = 0;
    bool starving = false, awoke = false;
    int iter = 0;
    int32_t old = goro__load_relaxed(&mu->state);
    for (;;) {
        /* Spin while locked in normal mode, announcing ourselves as the woken one so
         * unlock does not wake another waiter for nothing. */
        if ((old & (MUTEX_LOCKED | MUTEX_STARVING)) == MUTEX_LOCKED && can_spin(iter)) {
            if (!awoke && !(old & MUTEX_WOKEN) && (old >> MUTEX_WAITER_SHIFT) != 0 &&
                goro__cas_acqrel(&mu->state, &old, old | MUTEX_WOKEN))
                awoke = true;
            for (int i = 0; i < 30; i++)
                goro__cpu_relax();
            iter++;
            old = goro__load_relaxed(&mu->state);
            continue;
        }
        int32_t new = old;
        if (!(old & MUTEX_STARVING))
            new |= MUTEX_LOCKED; /* in starvation mode newcomers queue */
        if (old & (MUTEX_LOCKED | MUTEX_STARVING))
            new += 1 << MUTEX_WAITER_SHIFT;
        if (starving && (old & MUTEX_LOCKED))
            new |= MUTEX_STARVING;
        if (awoke) {
            if (!(new &MUTEX_WOKEN))
                goro__fatal("sync: inconsistent mutex state (goroutine %llu)",
                            (unsigned long long)goro_self());
            new &= ~MUTEX_WOKEN;
        }
        /* Acq-rel: on taking the lock, pairs with the release in unlock. */
        if (!goro__cas_acqrel(&mu->state, &old, new))
            continue; /* old was refreshed by the failed CAS */
        if (!(old & (MUTEX_LOCKED | MUTEX_STARVING)))
            return; /* locked it */
        bool lifo = wait_start != 0;
        if (!wait_start)
            wait_start = goro__nanotime();
        goro__sema_acquire(&mu->sema, lifo, GORO__WAIT_MUTEX);
        starving = starving || goro__nanotime() - wait_start > STARVATION_NS;
        old = goro__load_acquire(&mu->state);
        if (old & MUTEX_STARVING) {
            /* Ownership was handed to us; the lock bit is not set yet. */
            if ((old & (MUTEX_LOCKED | MUTEX_WOKEN)) || (old >> MUTEX_WAITER_SHIFT) == 0)
                goro__fatal("sync: inconsistent mutex state (goroutine %llu)",
                            (unsigned long long)goro_self());
            int32_t delta = MUTEX_LOCKED - (1 << MUTEX_WAITER_SHIFT);
            if (!starving || (old >> MUTEX_WAITER_SHIFT) == 1)
                delta -= MUTEX_STARVING; /* last waiter or short wait: back to normal */
            goro__add_acqrel(&mu->state, delta);
            return;
        }
        awoke = true;
        iter = 0;
    }
}

void goro_mutex_lock(goro_mutex *mu) {
    int32_t unlocked = 0;
    /* Acquire on success pairs with the release in goro_mutex_unlock. */
    if (!GORO__LIKELY(goro__cas_acqrel(&mu->state, &unlocked, MUTEX_LOCKED)))
        lock_slow(mu);
    goro__race_acquire(mu); /* every unlock before this lock (race.h) */
}

int goro_mutex_trylock(goro_mutex *mu) {
    int32_t old = goro__load_relaxed(&mu->state);
    if (old & (MUTEX_LOCKED | MUTEX_STARVING))
        return 0;
    if (!goro__cas_acqrel(&mu->state, &old, old | MUTEX_LOCKED))
        return 0;
    goro__race_acquire(mu);
    return 1;
}

static void unlock_slow(goro_mutex *mu, int32_t new) {
    if (!((new + MUTEX_LOCKED) & MUTEX_LOCKED))
        goro__fatal("sync: unlock of unlocked mutex (goroutine %llu)",
                    (unsigned long long)goro_self());
    if (new &MUTEX_STARVING) {
        /* Hand ownership to the first waiter and let it run on our time slice. */
        goro__sema_release(&mu->sema, true);
        return;
    }
    int32_t old = new;
    for (;;) {
        /* Nobody to wake, or someone is already locked, woken or handed the lock. */
        if ((old >> MUTEX_WAITER_SHIFT) == 0 ||
            (old & (MUTEX_LOCKED | MUTEX_WOKEN | MUTEX_STARVING)))
            return;
        new = (old - (1 << MUTEX_WAITER_SHIFT)) | MUTEX_WOKEN;
        if (goro__cas_acqrel(&mu->state, &old, new)) {
            goro__sema_release(&mu->sema, false);
            return;
        }
    }
}

void goro_mutex_unlock(goro_mutex *mu) {
    goro__race_release(mu);
    /* Release: the critical section happens before the next lock's acquire. */
    int32_t new = goro__add_acqrel(&mu->state, -MUTEX_LOCKED);
    if (new != 0)
        unlock_slow(mu, new);
}

/* ------------------------------------------------------------------ wait group */

void goro_wg_add(goro_waitgroup *wg, int delta) {
    if (delta < 0)
        goro__race_release(wg); /* Done happens before the Wait it releases (race.h) */
    /* Acq-rel: Done's release pairs with the acquire of a Wait that sees zero. */
    uint64_t st = goro__add_acqrel(&wg->state, (uint64_t)(int64_t)delta << 32);
    int32_t v = (int32_t)(st >> 32);
    uint32_t w = (uint32_t)st;
    if (v < 0)
        goro__fatal("sync: negative WaitGroup counter (goroutine %llu)",
                    (unsigned long long)goro_self());
    if (w != 0 && delta > 0 && v == delta)
        goro__fatal("sync: WaitGroup misuse: Add called concurrently with Wait (goroutine %llu)",
                    (unsigned long long)goro_self());
    if (v > 0 || w == 0)
        return;
    /* Counter is zero with waiters: nobody may change the state now but us. */
    if (goro__load_relaxed(&wg->state) != st)
        goro__fatal("sync: WaitGroup misuse: Add called concurrently with Wait (goroutine %llu)",
                    (unsigned long long)goro_self());
    goro__store_relaxed(&wg->state, 0);
    for (; w > 0; w--)
        goro__sema_release(&wg->sema, false);
}

void goro_wg_done(goro_waitgroup *wg) {
    goro_wg_add(wg, -1);
}

void goro_wg_wait(goro_waitgroup *wg) {
    uint64_t st = goro__load_acquire(&wg->state);
    for (;;) {
        if ((st >> 32) == 0) {
            goro__race_acquire(wg);
            return;
        }
        if (goro__cas_acqrel(&wg->state, &st, st + 1)) {
            goro__sema_acquire(&wg->sema, false, GORO__WAIT_WAITGROUP);
            if (goro__load_relaxed(&wg->state) != 0)
                goro__fatal("sync: WaitGroup is reused before previous Wait has returned "
                            "(goroutine %llu)",
                            (unsigned long long)goro_self());
            goro__race_acquire(wg);
            return;
        }
    }
}
