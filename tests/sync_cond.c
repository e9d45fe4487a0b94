/*
 * sync_cond: goro_cond wakes exactly the waiters it should, and never loses a wake-up.
 *
 *  - exact wake-ups: N goroutines wait (each a single goro_cond_wait, no predicate loop,
 *    so every return is counted). Each signal lets exactly one more return, and nothing
 *    else returns in between; a broadcast then releases all the rest;
 *  - a signal or broadcast with nobody waiting does nothing: a wait that begins after it
 *    stays parked until the next signal;
 *  - broadcast wakes all, over several rounds with a generation counter;
 *  - signal stealing: a waiter's signal arrives in the gap between the wait unlocking the
 *    mutex and parking (the signaller takes the mutex as soon as the wait releases it and
 *    signals at once, from another P when there is one). Each wait must still return;
 *  - producer/consumer: producers and consumers share a small ring through two conds and
 *    signal (not broadcast) once per item; every item produced is consumed once (counts
 *    and sums match). A lost wake-up is a hang, which a watchdog turns into a failure.
 */
#include "testutil.h"

#include <stdatomic.h>

static goro_waitgroup wg = GORO_WAITGROUP_INIT;

/* Yields until *v reaches want or deadline_ms pass; returns the last value seen. */
static int wait_for(_Atomic int *v, int want, int64_t deadline_ms) {
    int64_t deadline = goro_now() + deadline_ms * TU_MS;
    int x;
    while ((x = atomic_load(v)) < want && goro_now() < deadline)
        goro_yield();
    return x;
}

/* Lets everything runnable run for a while, on every P. */
static void settle(void) {
    for (int i = 0; i < 50; i++)
        goro_yield();
    goro_sleep(5 * TU_MS);
    for (int i = 0; i < 50; i++)
        goro_yield();
}

/* ------------------------------------------------------------------ exact wake-ups */

#define NWAITERS 8

static goro_mutex ex_mu = GORO_MUTEX_INIT;
static goro_cond ex_cond = GORO_COND_INIT;
static int ex_waiting;       /* protected by ex_mu: waiters that have called wait */
static _Atomic int ex_woken; /* returns from goro_cond_wait */

static void exact_waiter(void *arg) {
    (void)arg;
    goro_mutex_lock(&ex_mu);
    ex_waiting++;
    goro_cond_wait(&ex_cond, &ex_mu);
    atomic_fetch_add(&ex_woken, 1);
    goro_mutex_unlock(&ex_mu);
    goro_wg_done(&wg);
}

/* Waits until n waiters have called goro_cond_wait (each took its ticket before
 * releasing the mutex, so holding the mutex afterwards means they are all waiting). */
static void await_waiting(int n) {
    int64_t deadline = goro_now() + 5000 * TU_MS;
    for (;;) {
        goro_mutex_lock(&ex_mu);
        int w = ex_waiting;
        goro_mutex_unlock(&ex_mu);
        if (w >= n)
            return;
        CHECKF(goro_now() < deadline, "only %d of %d waiters started", w, n);
        goro_yield();
    }
}

static void exact_wakeups(void) {
    /* Nobody waits yet: these must not be saved for the waits that follow. */
    goro_cond_signal(&ex_cond);
    goro_cond_broadcast(&ex_cond);

    goro_wg_add(&wg, NWAITERS);
    for (int i = 0; i < NWAITERS; i++)
        CHECK(goro_spawn(exact_waiter, NULL) == 0);
    await_waiting(NWAITERS);
    settle();
    CHECKF(atomic_load(&ex_woken) == 0, "%d waits returned without a signal",
           atomic_load(&ex_woken));

    for (int k = 1; k <= NWAITERS / 2; k++) {
        goro_cond_signal(&ex_cond);
        int w = wait_for(&ex_woken, k, 5000);
        CHECKF(w == k, "after %d signals %d waits returned", k, w);
        settle();
        w = atomic_load(&ex_woken);
        CHECKF(w == k, "after %d signals %d waits returned: a signal woke two", k, w);
    }
    goro_cond_broadcast(&ex_cond);
    goro_wg_wait(&wg);
    CHECK_EQ(atomic_load(&ex_woken), NWAITERS);

    /* Nothing is outstanding now: a signal does nothing, and a new wait needs its own. */
    goro_cond_signal(&ex_cond);
    goro_wg_add(&wg, 1);
    CHECK(goro_spawn(exact_waiter, NULL) == 0);
    await_waiting(NWAITERS + 1);
    settle();
    CHECKF(atomic_load(&ex_woken) == NWAITERS, "a signal sent before a wait woke it");
    goro_cond_signal(&ex_cond);
    goro_wg_wait(&wg);
    CHECK_EQ(atomic_load(&ex_woken), NWAITERS + 1);
}

/* ------------------------------------------------------------------ broadcast */

static goro_mutex bc_mu = GORO_MUTEX_INIT;
static goro_cond bc_cond = GORO_COND_INIT;
static int bc_gen;     /* protected by bc_mu */
static int bc_arrived; /* protected by bc_mu: waiters in the current generation */
static _Atomic int bc_released;
static int bc_rounds;

static void bc_waiter(void *arg) {
    (void)arg;
    for (int r = 0; r < bc_rounds; r++) {
        goro_mutex_lock(&bc_mu);
        int gen = bc_gen;
        bc_arrived++;
        while (bc_gen == gen)
            goro_cond_wait(&bc_cond, &bc_mu);
        goro_mutex_unlock(&bc_mu);
        atomic_fetch_add(&bc_released, 1);
    }
    goro_wg_done(&wg);
}

static void broadcast_wakes_all(void) {
    bc_rounds = (int)tu_scaled(200, 20);
    goro_wg_add(&wg, NWAITERS);
    for (int i = 0; i < NWAITERS; i++)
        CHECK(goro_spawn(bc_waiter, NULL) == 0);
    for (int r = 0; r < bc_rounds; r++) {
        int64_t deadline = goro_now() + 5000 * TU_MS;
        for (;;) {
            goro_mutex_lock(&bc_mu);
            if (bc_arrived == NWAITERS) {
                bc_arrived = 0;
                bc_gen++;
                goro_cond_broadcast(&bc_cond);
                goro_mutex_unlock(&bc_mu);
                break;
            }
            goro_mutex_unlock(&bc_mu);
            CHECKF(goro_now() < deadline, "round %d: waiters not released by broadcast", r);
            goro_yield();
        }
        /* Every waiter leaves this generation before the next broadcast. */
        int want = (r + 1) * NWAITERS;
        int got = wait_for(&bc_released, want, 5000);
        CHECKF(got == want, "round %d: %d released, want %d", r, got, want);
    }
    goro_wg_wait(&wg);
}

/* ------------------------------------------------------------------ signal stealing */

static goro_mutex gap_mu = GORO_MUTEX_INIT;
static goro_cond gap_cond = GORO_COND_INIT;
static _Atomic int gap_round;    /* the round the waiter is in */
static _Atomic int gap_returned; /* rounds whose wait returned */
static int gap_rounds;

static void gap_waiter(void *arg) {
    (void)arg;
    for (int r = 1; r <= gap_rounds; r++) {
        goro_mutex_lock(&gap_mu);
        atomic_store(&gap_round, r);
        goro_cond_wait(&gap_cond, &gap_mu); /* one wait, one signal: no predicate loop */
        goro_mutex_unlock(&gap_mu);
        atomic_store(&gap_returned, r);
    }
    goro_wg_done(&wg);
}

static void gap_signaller(void *arg) {
    (void)arg;
    for (int r = 1; r <= gap_rounds; r++) {
        /* Wait for the waiter to hold the mutex in round r... */
        while (atomic_load(&gap_round) < r)
            goro_yield();
        /* ...then take it the moment its wait releases it: the waiter has its ticket
         * but may not have parked yet. */
        goro_mutex_lock(&gap_mu);
        goro_mutex_unlock(&gap_mu);
        goro_cond_signal(&gap_cond);
        int64_t deadline = goro_now() + 5000 * TU_MS;
        while (atomic_load(&gap_returned) < r) {
            CHECKF(goro_now() < deadline, "round %d: the signal was lost", r);
            goro_yield();
        }
    }
    goro_wg_done(&wg);
}

static void signal_stealing(void) {
    gap_rounds = (int)tu_scaled(3000, 100);
    goro_wg_add(&wg, 2);
    CHECK(goro_spawn(gap_waiter, NULL) == 0);
    CHECK(goro_spawn(gap_signaller, NULL) == 0);
    goro_wg_wait(&wg);
    CHECK_EQ(atomic_load(&gap_returned), gap_rounds);
}

/* ------------------------------------------------------------------ producer/consumer */

#define PRODUCERS 4
#define CONSUMERS 4
#define RING 4

static goro_mutex q_mu = GORO_MUTEX_INIT;
static goro_cond q_not_empty = GORO_COND_INIT, q_not_full = GORO_COND_INIT;
static long q_ring[RING]; /* protected by q_mu */
static int q_head, q_len; /* protected by q_mu */
static long q_per_producer;
static _Atomic long q_consumed, q_sum;
static _Atomic int q_done;

static void q_put(long v) {
    goro_mutex_lock(&q_mu);
    while (q_len == RING)
        goro_cond_wait(&q_not_full, &q_mu);
    q_ring[(q_head + q_len) % RING] = v;
    q_len++;
    goro_cond_signal(&q_not_empty);
    goro_mutex_unlock(&q_mu);
}

static long q_get(void) {
    goro_mutex_lock(&q_mu);
    while (q_len == 0)
        goro_cond_wait(&q_not_empty, &q_mu);
    long v = q_ring[q_head];
    q_head = (q_head + 1) % RING;
    q_len--;
    goro_mutex_unlock(&q_mu);
    goro_cond_signal(&q_not_full); /* outside the mutex, which Go allows too */
    return v;
}

static void producer(void *arg) {
    long base = (long)(intptr_t)arg * q_per_producer;
    for (long i = 1; i <= q_per_producer; i++)
        q_put(base + i);
    goro_wg_done(&wg);
}

static void consumer(void *arg) {
    (void)arg;
    for (;;) {
        long v = q_get();
        if (v < 0)
            break; /* poison: one per consumer */
        atomic_fetch_add(&q_consumed, 1);
        atomic_fetch_add(&q_sum, v);
    }
    goro_wg_done(&wg);
}

static void watchdog(void *arg) {
    (void)arg;
    int64_t deadline = goro_now() + 30000 * TU_MS;
    while (!atomic_load(&q_done)) {
        CHECKF(goro_now() < deadline,
               "producer/consumer stuck (a lost wake-up): %ld of %ld consumed",
               atomic_load(&q_consumed), PRODUCERS * q_per_producer);
        goro_sleep(10 * TU_MS);
    }
    goro_wg_done(&wg);
}

static void producer_consumer(void) {
    q_per_producer = tu_scaled(20000, 500);
    goro_wg_add(&wg, PRODUCERS + CONSUMERS + 1);
    CHECK(goro_spawn(watchdog, NULL) == 0);
    for (int i = 0; i < CONSUMERS; i++)
        CHECK(goro_spawn(consumer, NULL) == 0);
    for (int i = 0; i < PRODUCERS; i++)
        CHECK(goro_spawn(producer, (void *)(intptr_t)i) == 0);
    /* The producers finish before the poison goes in: wait for all items consumed. */
    long n = PRODUCERS * q_per_producer;
    while (atomic_load(&q_consumed) < n)
        goro_sleep(TU_MS);
    for (int i = 0; i < CONSUMERS; i++)
        q_put(-1);
    atomic_store(&q_done, 1);
    goro_wg_wait(&wg);
    CHECK_EQ(atomic_load(&q_consumed), n);
    CHECK_EQ(atomic_load(&q_sum), n * (n + 1) / 2);
    CHECK_EQ(q_len, 0);
}

/* ------------------------------------------------------------------ main */

static void test_main(void *arg) {
    (void)arg;
    exact_wakeups();
    broadcast_wakes_all();
    signal_stealing();
    int64_t t0 = goro_now();
    producer_consumer();
    printf("%d producers, %d consumers, %ld items through a %d-slot ring on %d Ps in %.0f ms\n",
           PRODUCERS, CONSUMERS, PRODUCERS * q_per_producer, RING, goro_maxprocs(0),
           (double)(goro_now() - t0) / 1e6);
}

int main(void) {
    int rc = goro_run(NULL, test_main, NULL);
    CHECKF(rc == 0, "goro_run: %s", goro_strerror(rc));
    return tu_pass("sync_cond");
}
