/*
 * time.c - goro_timer: Go's time.Timer and time.Ticker, a timer that fires into a channel.
 *
 * A goro_timer owns a channel of capacity 1 (element int64_t) and one heap timer
 * (timer.c). When the heap timer fires, its callback sends goro__nanotime() with a
 * non-blocking send; if the buffer is full the value is dropped, which is how a ticker
 * drops ticks for a slow receiver instead of queueing them. goro_timer_stop and
 * goro_timer_reset delete the heap timer and drain the buffer, so that after either
 * returns no value prepared before the call is received (Go 1.23: the channel is
 * unbuffered in effect).
 *
 * Terms: an "arming" is one goro__timer_add of the heap timer. It ends either when a
 * stop/reset removes it from the heap (goro__timer_del returns true: its callback never
 * runs) or when timers_run takes it out of the heap to run it: its callback then runs
 * exactly once, on some M, possibly after a stop/reset already looked at the timer.
 *
 * Invariants (every field below `lock` is guarded by it)
 *  (M1) Every goro__timer_add and goro__timer_del of tm->t happens under tm->lock, so the
 *       heap timer's t->p and t->when are written by one party at a time (timer.c (T3)).
 *  (M2) armed is true from an arming until its callback takes tm->lock, or until a
 *       stop/reset revokes it. At most one arming is outstanding.
 *  (M3) stale is 1 when a stop/reset revoked an arming that timers_run had already taken
 *       out of the heap: its callback is on its way and must deliver nothing. While stale
 *       is 1 nobody arms the timer, so the next callback to take the lock is that stale
 *       one (and armed is false); it clears stale. reset and free wait for stale to clear.
 *  (M4) A value enters the channel only under tm->lock, by the callback of the current
 *       arming; stop and reset drain the buffer under tm->lock after revoking. Hence a
 *       value received after they return was sent by an arming made after them.
 *  (M5) The callback's last access to tm is its unlock of tm->lock; free takes the lock
 *       with armed false and stale 0 before freeing, so no callback still uses tm.
 *
 * Lock order: tm->lock, then p->timers_lock (in goro__timer_add/del) or the channel's
 * lock (send, receive). Callbacks never park; stop never waits; reset and free wait only
 * for a stale callback already running on another M (a few instructions).
 *
 * Tickers re-arm from their own callback (under tm->lock, on the callback's P) rather
 * than through timer.c's period: a period timer is put back in the heap by timers_run
 * before its callback runs, so a stop could not tell the firing it missed from the one it
 * removed, and (M3)'s count of outstanding callbacks would not hold.
 *
 * Rejected: a generation number checked by the callback. The callback gets only the heap
 * timer, which is shared by every arming, so it cannot know which arming woke it; (M3)
 * makes the question unnecessary by never having two armings' callbacks in flight.
 *
 * See also: timer.c (the heaps), chan.c (the non-blocking send and receive).
 */
#include <sched.h>
#include <stdlib.h>

#include "atomic.h"
#include "internal.h"

struct goro_timer {
    uint32_t lock;  /* goro__spin_lock word; guards the fields below */
    bool armed;     /* [lock] (M2) */
    uint32_t stale; /* [lock] (M3) 0 or 1 */
    int64_t period; /* [lock] 0: one-shot */
    goro_chan *c;   /* [init-only] capacity 1, int64_t elements */
    goro__timer t;  /* heap timer; t.when/t.p written only under lock (M1) */
};

/* now + ns, clamped so that it is never before now and never overflows. */
static int64_t deadline_after(int64_t now, int64_t ns) {
    if (ns <= 0)
        return now;
    if (ns > INT64_MAX - now)
        return INT64_MAX;
    return now + ns;
}

/* Runs on an M holding a P with no lock held (timer.c). */
static void timer_fire(goro__timer *t, int64_t now) {
    goro_timer *tm = t->arg;
    goro__spin_lock(&tm->lock);
    if (tm->stale) {
        /* (M3): this arming was revoked after timers_run took it out of the heap. */
        GORO_ASSERT(!tm->armed && tm->stale == 1);
        tm->stale = 0;
        goro__spin_unlock(&tm->lock);
        return;
    }
    GORO_ASSERT(tm->armed);
    goro__race_acquire(tm); /* the arming, for the receiver of this value (race.h) */
    /* The clock read now, not timers_run's earlier `now`: a value is never older than the
     * moment it enters the channel, and never below t->when (now >= t->when, timer.c). */
    now = goro__nanotime();
    /* Deadline 0: never parks. A full buffer means the receiver has not taken the last
     * value: this one is dropped (a ticker's missed tick). */
    (void)goro_chan_send_dl(tm->c, &now, 0);
    if (tm->period > 0) {
        /* The next tick after now, dropping the ones already missed. */
        int64_t missed = (now - t->when) / tm->period + 1;
        int64_t when = t->when;
        if (missed > (INT64_MAX - when) / tm->period)
            when = INT64_MAX;
        else
            when += missed * tm->period;
        t->when = when;
        goro__timer_add(goro__getm()->p, t);
    } else {
        tm->armed = false;
    }
    goro__spin_unlock(&tm->lock); /* (M5) the last access to tm */
}

/* Revokes the outstanding arming, if any, and drains the buffer. Returns 1 if a firing
 * was pending: armed, on its way, or delivered but not yet received (in effect still
 * being sent on an unbuffered channel, as Go 1.23 reports it). Caller holds tm->lock. */
static int revoke_locked(goro_timer *tm) {
    int pending = 0;
    if (tm->armed) {
        tm->armed = false;
        pending = 1;
        if (!goro__timer_del(&tm->t))
            tm->stale = 1; /* taken out of the heap already: its callback is coming (M3) */
    }
    int64_t v;
    if (goro_chan_recv_dl(tm->c, &v, 0) == 0)
        pending = 1;
    return pending;
}

/* Waits until no stale callback is in flight. Called with tm->lock held; returns with it
 * held and stale == 0. The stale callback runs on another M (callbacks never switch), so
 * it needs only CPU time. */
static void wait_stale_locked(goro_timer *tm) {
    for (unsigned i = 0; tm->stale; i++) {
        goro__spin_unlock(&tm->lock);
        if (i < 100)
            goro__cpu_relax();
        else if (goro__getg())
            goro_yield();
        else
            sched_yield();
        goro__spin_lock(&tm->lock);
    }
}

int goro_timer_make(goro_timer **out, int64_t ns, int64_t period) {
    if (!out || period < 0)
        return GORO_EINVAL;
    if (!goro__getg())
        return GORO_EPERM;
    goro_timer *tm = calloc(1, sizeof *tm);
    if (!tm)
        return GORO_ENOMEM;
    int rc = goro_chan_make(&tm->c, sizeof(int64_t), 1);
    if (rc < 0)
        goto out_free;
    tm->period = period;
    tm->armed = true;
    tm->t = (goro__timer){
        .when = deadline_after(goro__nanotime(), ns), .f = timer_fire, .arg = tm, .idx = -1};
    *out = tm;
    goro__race_release(tm);
    goro__spin_lock(&tm->lock);
    goro__timer_add(goro__getm()->p, &tm->t);
    goro__spin_unlock(&tm->lock);
    return 0;

out_free:
    free(tm);
    return rc;
}

goro_chan *goro_timer_chan(goro_timer *tm) {
    return tm ? tm->c : NULL;
}

int goro_timer_stop(goro_timer *tm) {
    if (!tm)
        return GORO_EINVAL;
    goro__spin_lock(&tm->lock);
    int pending = revoke_locked(tm);
    goro__spin_unlock(&tm->lock);
    return pending;
}

int goro_timer_reset(goro_timer *tm, int64_t ns) {
    if (!tm)
        return GORO_EINVAL;
    if (!goro__getg())
        return GORO_EPERM;
    goro__spin_lock(&tm->lock);
    int pending = revoke_locked(tm);
    while (tm->stale) {
        /* Another reset may arm the timer while we wait unlocked: revoke again. */
        wait_stale_locked(tm);
        pending |= revoke_locked(tm);
    }
    /* Read the clock under the lock, after the drain: the new arming's values are later
     * than anything the caller saw before. */
    tm->t.when = deadline_after(goro__nanotime(), ns);
    tm->armed = true;
    goro__race_release(tm);
    goro__timer_add(goro__getm()->p, &tm->t);
    goro__spin_unlock(&tm->lock);
    return pending;
}

void goro_timer_free(goro_timer *tm) {
    if (!tm)
        return;
    goro__spin_lock(&tm->lock);
    revoke_locked(tm);
    while (tm->stale) {
        wait_stale_locked(tm);
        revoke_locked(tm);
    }
    goro__spin_unlock(&tm->lock);
    /* (M5): unarmed, and no callback in flight; the caller owns the last use of tm. */
    goro_chan_release(tm->c);
    free(tm);
}
