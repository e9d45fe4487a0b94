/*
 * time_timer: goro_timer as Go 1.23's time.Timer and time.Ticker.
 *
 *  - argument errors, and GORO_EPERM for make outside a goroutine;
 *  - a one-shot fires exactly once, its value is never before the deadline; ns <= 0 fires
 *    at once;
 *  - stop before firing returns 1 and nothing is ever received;
 *  - stop after firing but before the receive returns 1 (Go 1.23: the value was not
 *    received, so the firing was still pending) and the value is never received;
 *    stop after the receive returns 0;
 *  - reset of a pending timer returns 1 and it fires once, at the new time only; reset
 *    after a received firing returns 0 and re-arms; reset after an unreceived firing
 *    returns 1 and the old value is gone;
 *  - a ticker's values increase and the k-th is at least k periods after the first
 *    deadline; a slow receiver gets at most one old tick, then fresh ones (no backlog);
 *  - select on a timer channel and a data channel;
 *  - the channel outlives the timer when retained; make-and-free at once (a callback may
 *    be running on another M) is clean;
 *  - a storm of stops and resets from several goroutines on shared timers with
 *    concurrent receivers: a receive that starts after a stop/reset returned never gets a
 *    value from before it (see storm()).
 */
#include "testutil.h"

#include <stdatomic.h>

static int64_t recv_v(goro_timer *t) {
    int64_t v = 0;
    CHECK_EQ(goro_chan_recv(goro_timer_chan(t), &v), 0);
    return v;
}

/* Nothing arrives on t's channel before deadline. */
static void check_silent_until(goro_timer *t, int64_t deadline) {
    int64_t v = 0;
    int rc = goro_chan_recv_dl(goro_timer_chan(t), &v, deadline);
    CHECKF(rc == GORO_ETIMEDOUT, "expected no value, got rc %d value %lld", rc, (long long)v);
}

/* Waits (up to 2 s) until t's firing sits unreceived in its channel. */
static void wait_buffered(goro_timer *t) {
    int64_t end = goro_now() + 2000 * TU_MS;
    while (goro_chan_len(goro_timer_chan(t)) == 0) {
        CHECKF(goro_now() < end, "timer did not fire within 2 s");
        goro_sleep(TU_MS);
    }
}

static void errors(void) {
    goro_timer *t = NULL;
    CHECK_EQ(goro_timer_make(NULL, 1, 0), GORO_EINVAL);
    CHECK_EQ(goro_timer_make(&t, 1, -1), GORO_EINVAL);
    CHECK_EQ(goro_timer_stop(NULL), GORO_EINVAL);
    CHECK_EQ(goro_timer_reset(NULL, 1), GORO_EINVAL);
    CHECK(goro_timer_chan(NULL) == NULL);
    goro_timer_free(NULL);
}

static void one_shot(void) {
    int64_t d = 10 * TU_MS;
    int64_t t0 = goro_now();
    goro_timer *t;
    CHECK_EQ(goro_timer_make(&t, d, 0), 0);
    CHECK(goro_timer_chan(t) != NULL);
    int64_t v = recv_v(t);
    int64_t t1 = goro_now();
    CHECKF(v >= t0 + d, "fired %lld ns early", (long long)(t0 + d - v));
    CHECK(v <= t1);
    check_silent_until(t, goro_now() + 30 * TU_MS); /* once only */
    CHECK_EQ(goro_timer_stop(t), 0);                /* fired and received */
    goro_timer_free(t);

    /* ns <= 0: at once. */
    for (int64_t ns = -5; ns <= 0; ns += 5) {
        t0 = goro_now();
        CHECK_EQ(goro_timer_make(&t, ns, 0), 0);
        v = recv_v(t);
        CHECK(v >= t0);
        CHECKF(goro_now() - t0 < 500 * TU_MS, "ns=%lld took %lld ns", (long long)ns,
               (long long)(goro_now() - t0));
        goro_timer_free(t);
    }
}

static void stop_cases(void) {
    goro_timer *t;
    /* Before firing: 1, and nothing ever comes. */
    int64_t t0 = goro_now();
    CHECK_EQ(goro_timer_make(&t, 20 * TU_MS, 0), 0);
    CHECK_EQ(goro_timer_stop(t), 1);
    check_silent_until(t, t0 + 60 * TU_MS);
    CHECK_EQ(goro_timer_stop(t), 0); /* already stopped */
    goro_timer_free(t);

    /* After firing, before the receive: the value is revoked. */
    CHECK_EQ(goro_timer_make(&t, TU_MS, 0), 0);
    wait_buffered(t);
    CHECK_EQ(goro_timer_stop(t), 1);
    CHECK_EQ(goro_chan_len(goro_timer_chan(t)), 0);
    check_silent_until(t, goro_now() + 20 * TU_MS);
    goro_timer_free(t);
}

static void reset_cases(void) {
    goro_timer *t;
    /* Pending: 1; it fires once, at the new time, never at the old one. */
    int64_t t0 = goro_now();
    CHECK_EQ(goro_timer_make(&t, 10 * TU_MS, 0), 0);
    int64_t t1 = goro_now();
    CHECK_EQ(goro_timer_reset(t, 40 * TU_MS), 1);
    int64_t v = recv_v(t);
    CHECKF(v >= t1 + 40 * TU_MS, "fired %lld ns after make: the old deadline", (long long)(v - t0));
    check_silent_until(t, goro_now() + 20 * TU_MS);

    /* Fired and received: 0, and it fires again. */
    t1 = goro_now();
    CHECK_EQ(goro_timer_reset(t, 5 * TU_MS), 0);
    v = recv_v(t);
    CHECK(v >= t1 + 5 * TU_MS);

    /* Fired, not received: 1, the old value is gone, the new one comes in time. */
    CHECK_EQ(goro_timer_reset(t, TU_MS), 0);
    wait_buffered(t);
    t1 = goro_now();
    CHECK_EQ(goro_timer_reset(t, 5 * TU_MS), 1);
    v = recv_v(t);
    CHECKF(v >= t1 + 5 * TU_MS, "received the value from before reset (%lld ns early)",
           (long long)(t1 + 5 * TU_MS - v));
    check_silent_until(t, goro_now() + 10 * TU_MS);
    goro_timer_free(t);
}

static void ticker(void) {
    const int64_t period = 2 * TU_MS;
    int64_t t0 = goro_now();
    goro_timer *t;
    CHECK_EQ(goro_timer_make(&t, period, period), 0);
    /* Tick k is due at the first deadline plus k periods (missed slots are skipped, never
     * doubled up), and its value is not before its slot. */
    int64_t prev = 0;
    for (int k = 0; k < 10; k++) {
        int64_t v = recv_v(t);
        CHECKF(v > prev, "tick %d: %lld not after %lld", k, (long long)v, (long long)prev);
        CHECKF(v >= t0 + period + k * period, "tick %d %lld ns early", k,
               (long long)(t0 + period + k * period - v));
        prev = v;
    }

    /* A slow receiver: at most one tick from its sleep waits, then fresh ones. */
    recv_v(t);
    goro_sleep(5 * period);
    int64_t w = goro_now();
    int old = 0;
    for (;;) {
        int64_t v = recv_v(t);
        if (v >= w)
            break;
        old++;
    }
    CHECKF(old <= 1, "%d ticks from during the sleep were queued", old);

    /* Stop: 1 (a ticker is always pending), then silence. */
    CHECK_EQ(goro_timer_stop(t), 1);
    check_silent_until(t, goro_now() + 3 * period);
    /* Reset restarts it with the same period. */
    int64_t t1 = goro_now();
    CHECK_EQ(goro_timer_reset(t, period), 0);
    CHECK(recv_v(t) >= t1 + period);
    CHECK(recv_v(t) >= t1 + 2 * period);
    goro_timer_free(t);
}

static void send_later(void *arg) {
    goro_sleep(50 * TU_MS);
    int x = 7;
    CHECK_EQ(goro_chan_send(arg, &x), 0);
}

static void select_cases(void) {
    goro_chan *data;
    CHECK_EQ(goro_chan_make(&data, sizeof(int), 0), 0);
    goro_timer *t;
    int64_t t0 = goro_now();
    CHECK_EQ(goro_timer_make(&t, 5 * TU_MS, 0), 0);
    CHECK_EQ(goro_spawn(send_later, data), 0);
    int64_t v = 0;
    int x = 0;
    goro_case k[2] = {{data, GORO_RECV, &x, -1}, {goro_timer_chan(t), GORO_RECV, &v, -1}};
    CHECK_EQ(goro_select(k, 2, GORO_FOREVER), 1); /* the timeout comes first */
    CHECK(v >= t0 + 5 * TU_MS);
    CHECK_EQ(goro_timer_reset(t, 1000 * TU_MS), 0);
    CHECK_EQ(goro_select(k, 2, GORO_FOREVER), 0); /* the data, long before the timer */
    CHECK_EQ(x, 7);
    CHECK_EQ(goro_timer_stop(t), 1);
    goro_timer_free(t);
    goro_chan_release(data);
}

static void lifetime(void) {
    /* A retained channel outlives the timer; the timer no longer fires into it. */
    goro_timer *t;
    CHECK_EQ(goro_timer_make(&t, TU_MS, 0), 0);
    goro_chan *c = goro_timer_chan(t);
    goro_chan_retain(c);
    goro_timer_free(t);
    int64_t v;
    CHECK_EQ(goro_chan_recv_dl(c, &v, goro_now() + 10 * TU_MS), GORO_ETIMEDOUT);
    goro_chan_release(c);

    /* Free races the callback of a due timer (on another M when there are several). */
    long n = tu_scaled(2000, 200);
    for (long i = 0; i < n; i++) {
        CHECK_EQ(goro_timer_make(&t, 0, i % 3 == 0 ? 1000 : 0), 0);
        if (i % 2)
            goro_yield();
        goro_timer_free(t);
    }
}

/* ---------------------------------------------------------------- storm */

/*
 * Resetters stop and reset shared timers; receivers receive from them. Before calling
 * stop or reset a resetter reads goro_now() into t0, and after the call returns it raises
 * floor[i] to t0. A receiver reads floor[i] before it starts a receive; any value it then
 * gets was sent by an arming made after that stop/reset revoked the old one, so its
 * deadline, and the value, are at least t0 (the clock is monotonic). The check holds
 * whatever the scheduling, so it cannot be flaky.
 */
enum { NTIMERS = 4, NRESETTERS = 3, NRECEIVERS = 4 };
static goro_timer *shared[NTIMERS];
static _Atomic int64_t floor_[NTIMERS];
static atomic_int storm_done;
static atomic_long storm_received, storm_ops;
static goro_waitgroup storm_wg = GORO_WAITGROUP_INIT;

static void raise_floor(int i, int64_t t0) {
    int64_t f = atomic_load(&floor_[i]);
    while (f < t0 && !atomic_compare_exchange_weak(&floor_[i], &f, t0)) {
    }
}

static void resetter(void *arg) {
    uint64_t rng = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;
    long n = tu_scaled(20000, 1000);
    for (long k = 0; k < n; k++) {
        uint64_t r = tu_rand(&rng);
        int i = (int)(r % NTIMERS);
        int64_t t0 = goro_now();
        int rc;
        if ((r >> 8) % 4 == 0)
            rc = goro_timer_stop(shared[i]);
        else
            rc = goro_timer_reset(shared[i], (int64_t)((r >> 16) % (200 * TU_US)));
        CHECK(rc == 0 || rc == 1);
        raise_floor(i, t0);
        atomic_fetch_add(&storm_ops, 1);
        if (k % 16 == 0)
            goro_sleep(50 * TU_US);
        else if (k % 4 == 0)
            goro_yield();
    }
    goro_wg_done(&storm_wg);
}

static void receiver(void *arg) {
    int i = (int)(uintptr_t)arg % NTIMERS;
    while (!atomic_load(&storm_done)) {
        int64_t f = atomic_load(&floor_[i]);
        int64_t v = 0;
        int rc = goro_chan_recv_dl(goro_timer_chan(shared[i]), &v, goro_now() + 2 * TU_MS);
        if (rc == GORO_ETIMEDOUT)
            continue;
        CHECK_EQ(rc, 0);
        CHECKF(v >= f, "timer %d: received a value %lld ns older than a finished stop/reset", i,
               (long long)(f - v));
        atomic_fetch_add(&storm_received, 1);
    }
    goro_wg_done(&storm_wg);
}

static void storm(void) {
    int64_t t0 = goro_now();
    for (int i = 0; i < NTIMERS; i++) {
        /* Timer 0 is a ticker. */
        CHECK_EQ(goro_timer_make(&shared[i], 100 * TU_US, i == 0 ? 100 * TU_US : 0), 0);
        atomic_store(&floor_[i], 0);
    }
    goro_wg_add(&storm_wg, NRESETTERS + NRECEIVERS);
    for (int j = 0; j < NRECEIVERS; j++)
        CHECK_EQ(goro_spawn(receiver, (void *)(uintptr_t)j), 0);
    for (int j = 0; j < NRESETTERS; j++)
        CHECK_EQ(goro_spawn(resetter, (void *)(uintptr_t)j), 0);
    /* The resetters finish on their own; then stop the receivers. */
    while (atomic_load(&storm_ops) < (long)NRESETTERS * tu_scaled(20000, 1000))
        goro_sleep(TU_MS);
    atomic_store(&storm_done, 1);
    goro_wg_wait(&storm_wg);
    for (int i = 0; i < NTIMERS; i++)
        goro_timer_free(shared[i]);
    long got = atomic_load(&storm_received);
    printf("storm: %ld stops/resets, %ld values received, %.1f ms\n", atomic_load(&storm_ops), got,
           (double)(goro_now() - t0) / 1e6);
    CHECKF(got > 0, "no value was received at all");
}

static void test_main(void *arg) {
    (void)arg;
    errors();
    one_shot();
    stop_cases();
    reset_cases();
    ticker();
    select_cases();
    lifetime();
    storm();
}

int main(void) {
    goro_timer *t = NULL;
    CHECK_EQ(goro_timer_make(&t, 1, 0), GORO_EPERM); /* outside a goroutine */
    int rc = goro_run(NULL, test_main, NULL);
    CHECKF(rc == 0, "goro_run: %s", goro_strerror(rc));
    return tu_pass("time_timer");
}
