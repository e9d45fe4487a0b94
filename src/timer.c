/*
 * timer.c - per-P timers: a 4-ary min-heap on `when` per P.
 *
 * A timer is added to the heap of the P that creates it. Any M holding a P may run the
 * due timers of any P (its own at every scheduling round, others' when it looks for work
 * or is about to sleep), so timers of an idle P still fire. Callbacks run with no lock
 * held, on the caller's P, so a callback that readies a goroutine puts it on that P.
 *
 * Invariants
 *  (T1) t->idx is t's index in t->p's heap, or -1 when t is in no heap.
 *  (T2) p->timer0 is the earliest when in p's heap, 0 when empty; it is written under
 *       timers_lock and read without it as a hint (a stale read delays no timer: the writer
 *       of an earlier timer runs a scheduling round, or wakes the timed sleeper, after).
 *  (T3) t->p changes only while the world is stopped (goro_maxprocs), or when t, in no
 *       heap, is added again (perhaps to another P). The owner of t serializes its adds
 *       and dels (time.c: under the goro_timer's lock), so t->p read by the owner is stable.
 *
 * Why 4-ary: half the depth of a binary heap for the same cache lines per level; Go uses
 * the same. A timer never fires early: callbacks run only when goro__nanotime() >= when.
 */
#include <stdlib.h>

#include "atomic.h"
#include "internal.h"
#include "tracer.h"

static void heap_set(goro__p *p, int32_t i, goro__timer_slot e) {
    p->timers[i] = e;
    e.t->idx = i;
}

static void sift_up(goro__p *p, int32_t i) {
    goro__timer_slot e = p->timers[i];
    while (i > 0) {
        int32_t parent = (i - 1) / 4;
        if (p->timers[parent].when <= e.when)
            break;
        heap_set(p, i, p->timers[parent]);
        i = parent;
    }
    heap_set(p, i, e);
}

static void sift_down(goro__p *p, int32_t i) {
    goro__timer_slot e = p->timers[i];
    int32_t n = p->ntimers;
    for (;;) {
        int32_t c = 4 * i + 1, best = -1;
        int64_t w = e.when;
        for (int32_t k = c; k < c + 4 && k < n; k++) {
            if (p->timers[k].when < w) {
                w = p->timers[k].when;
                best = k;
            }
        }
        if (best < 0)
            break;
        heap_set(p, i, p->timers[best]);
        i = best;
    }
    heap_set(p, i, e);
}

/* Caller holds p->timers_lock. */
static void update_timer0(goro__p *p) {
    /* Relaxed: a hint (T2); the heap itself is read under the lock. */
    goro__store_relaxed(&p->timer0, p->ntimers ? p->timers[0].when : 0);
}

/* Caller holds p->timers_lock. Returns false when out of memory. */
static bool heap_push(goro__p *p, goro__timer *t) {
    if (p->ntimers == p->ctimers) {
        int32_t nc = p->ctimers ? p->ctimers * 2 : 64;
        goro__timer_slot *nt = realloc(p->timers, (size_t)nc * sizeof *nt);
        if (!nt)
            return false;
        p->timers = nt;
        p->ctimers = nc;
    }
    t->p = p;
    heap_set(p, p->ntimers++, (goro__timer_slot){t->when, t});
    sift_up(p, t->idx);
    update_timer0(p);
    return true;
}

/* Caller holds p->timers_lock; t is in p's heap. */
static void heap_remove(goro__p *p, goro__timer *t) {
    int32_t i = t->idx;
    goro__timer_slot last = p->timers[--p->ntimers];
    t->idx = -1;
    if (i != p->ntimers) {
        heap_set(p, i, last);
        sift_down(p, i);
        sift_up(p, last.t->idx);
    }
    update_timer0(p);
}

void goro__timer_add(goro__p *p, goro__timer *t) {
    /* Read before publishing: once unlocked, t may fire and its owner free or reuse it. */
    int64_t when = t->when;
    if (GORO__UNLIKELY(!p))
        p = goro__S.allp[0]; /* the caller lost its P (sysmon.c); P 0 always exists */
    goro__spin_lock(&p->timers_lock);
    bool ok = heap_push(p, t);
    goro__spin_unlock(&p->timers_lock);
    if (!ok)
        goro__fatal("out of memory adding a timer");
    goro__timers_added(when);
}

bool goro__timer_del(goro__timer *t) {
    goro__p *p = t->p; /* stable (T3) */
    if (!p)
        return false;
    goro__spin_lock(&p->timers_lock);
    bool pending = t->idx >= 0;
    if (pending)
        heap_remove(p, t);
    goro__spin_unlock(&p->timers_lock);
    return pending;
}

int goro__timers_run(goro__p *src, int64_t now, int max) {
    /* Relaxed hint (T2): an empty or not-yet-due heap costs no lock. */
    int64_t t0 = goro__load_relaxed(&src->timer0);
    if (t0 == 0 || t0 > now)
        return 0;
    int ran = 0;
    for (; max <= 0 || ran < max;) {
        goro__spin_lock(&src->timers_lock);
        if (src->ntimers == 0 || src->timers[0].when > now) {
            goro__spin_unlock(&src->timers_lock);
            return ran;
        }
        goro__timer *t = src->timers[0].t;
        heap_remove(src, t);
        goro__spin_unlock(&src->timers_lock);
        void *ctx = goro__race_timer_enter(); /* a context of its own in race builds (R4) */
        goro__trace_timer_fire();
        t->f(t, now);
        goro__race_timer_exit(ctx);
        ran++;
    }
    return ran;
}

void goro__timers_move(goro__p *dst, goro__p *src) {
    goro__spin_lock(&src->timers_lock);
    goro__spin_lock(&dst->timers_lock);
    for (int32_t i = 0; i < src->ntimers; i++)
        if (!heap_push(dst, src->timers[i].t))
            goro__fatal("out of memory moving timers");
    src->ntimers = 0;
    update_timer0(src);
    goro__spin_unlock(&dst->timers_lock);
    goro__spin_unlock(&src->timers_lock);
}

void goro__timers_free(goro__p *p) {
    free(p->timers);
    p->timers = NULL;
    p->ntimers = p->ctimers = 0;
    p->timer0 = 0;
}
