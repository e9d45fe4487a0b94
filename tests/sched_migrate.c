/*
 * sched_migrate: a goroutine that moves between OS threads keeps its registers, its stack
 * and its identity. Built with -O2 so that locals live in callee-saved registers (integer
 * and floating point) across goro_yield, goro_sleep and parking calls.
 *
 * With two Ps, checker goroutines loop: compute locals from a seed, park / yield / sleep,
 * then recompute the locals from a fresh read of the seed and compare, and compare
 * goro_self() with the id they started with. Waker goroutines wake a parked checker
 * preferably from a thread other than the one it parked on (a woken goroutine usually runs
 * on its waker's P), and CPU-bound burners keep the Ps busy, sleeping now and then so that
 * idle Ps steal work and goroutines move. Each checker must have run on >= 2 threads.
 */
#include "testutil.h"

#include <stdatomic.h>

#define CHECKERS 4
#define WAKERS 4
#define BURNERS 2
#define MAX_TIDS 16
#define FORCE_WAKE_NS (5 * TU_MS)

static volatile uint64_t seed = 0x1234567887654321ull; /* re-read after each switch */
static long iterations;

typedef struct checker {
    uint64_t id;
    goro_mutex wake;         /* used as a semaphore: locked = no wake-up pending */
    _Atomic int waiting;     /* parked (or about to park) on wake */
    _Atomic pid_t parked_on; /* thread it parked on */
    _Atomic int64_t waiting_since;
    pid_t tids[MAX_TIDS];
    int ntids;
    long cross_wakes; /* resumed on a thread other than the one it parked on */
} checker;

static checker checkers[CHECKERS];
static _Atomic int checkers_left;
static _Atomic long forced_wakes;
static _Atomic uint64_t burn_sink;
static goro_waitgroup wg = GORO_WAITGROUP_INIT;

static uint64_t mix(uint64_t x, uint64_t k) {
    x ^= k * 0x9e3779b97f4a7c15ull;
    x ^= x >> 31;
    x *= 0xbf58476d1ce4e5b9ull;
    return x ^ (x >> 29);
}

static void note_tid(checker *c) {
    pid_t t = tu_gettid();
    for (int i = 0; i < c->ntids; i++)
        if (c->tids[i] == t)
            return;
    if (c->ntids < MAX_TIDS)
        c->tids[c->ntids++] = t;
}

/* Parks until a waker unlocks c->wake. */
static void park_for_waker(checker *c) {
    pid_t before = tu_gettid();
    atomic_store(&c->parked_on, before);
    atomic_store(&c->waiting_since, goro_now());
    atomic_store(&c->waiting, 1);
    goro_mutex_lock(&c->wake);
    if (tu_gettid() != before)
        c->cross_wakes++;
}

static void check_loop(void *arg) {
    checker *c = arg;
    c->id = goro_self();
    char stackbuf[64];
    for (int i = 0; i < 64; i++)
        stackbuf[i] = (char)(c->id * 7 + (uint64_t)i);
    CHECK(goro_mutex_trylock(&c->wake) == 1);
    note_tid(c);

    for (long it = 0; it < iterations; it++) {
        uint64_t s = seed + c->id;
        /* Values the compiler keeps in registers across the call below. */
        uint64_t a = mix(s, 1), b = mix(s, 2), d = mix(s, 3), e = mix(s, 4);
        uint64_t f = mix(s, 5), g = mix(s, 6), h = mix(s, 7) + (uint64_t)it;
        double x = (double)(a >> 11) * 0.5, y = (double)(b >> 11) * 0.25;
        double z = (double)(d >> 11) + 0.125, w = (double)(e >> 12) * 3.0;
        char *sp = stackbuf;

        switch (it % 4) {
        case 0:
        case 1:
            park_for_waker(c);
            break;
        case 2:
            goro_yield();
            break;
        default:
            goro_sleep((int64_t)(mix(s, (uint64_t)it) % (20 * TU_US)));
            break;
        }
        note_tid(c);

        uint64_t s2 = seed + c->id;
        CHECKF(goro_self() == c->id, "goroutine %llu: goro_self() says %llu after a switch",
               (unsigned long long)c->id, (unsigned long long)goro_self());
        CHECKF(a == mix(s2, 1) && b == mix(s2, 2) && d == mix(s2, 3) && e == mix(s2, 4) &&
                   f == mix(s2, 5) && g == mix(s2, 6) && h == mix(s2, 7) + (uint64_t)it,
               "goroutine %llu iteration %ld: integer locals changed across a switch",
               (unsigned long long)c->id, it);
        CHECKF(x == (double)(mix(s2, 1) >> 11) * 0.5 && y == (double)(mix(s2, 2) >> 11) * 0.25 &&
                   z == (double)(mix(s2, 3) >> 11) + 0.125 && w == (double)(mix(s2, 4) >> 12) * 3.0,
               "goroutine %llu iteration %ld: floating-point locals changed across a switch",
               (unsigned long long)c->id, it);
        CHECK(sp == stackbuf);
        for (int i = 0; i < 64; i++)
            CHECKF(sp[i] == (char)(c->id * 7 + (uint64_t)i),
                   "goroutine %llu: its stack changed across a switch", (unsigned long long)c->id);
    }
    atomic_fetch_sub(&checkers_left, 1);
    goro_wg_done(&wg);
}

/* Wakes parked checkers, preferring those that parked on another thread than ours. */
static void waker(void *arg) {
    (void)arg;
    uint64_t rng = (uint64_t)(uintptr_t)arg + 99;
    while (atomic_load(&checkers_left) > 0) {
        pid_t me = tu_gettid();
        int64_t now = goro_now();
        for (int i = 0; i < CHECKERS; i++) {
            checker *c = &checkers[i];
            if (!atomic_load(&c->waiting))
                continue;
            int forced = now - atomic_load(&c->waiting_since) > FORCE_WAKE_NS;
            if (atomic_load(&c->parked_on) == me && !forced)
                continue;
            int one = 1;
            if (atomic_compare_exchange_strong(&c->waiting, &one, 0)) {
                if (forced)
                    atomic_fetch_add(&forced_wakes, 1);
                goro_mutex_unlock(&c->wake);
            }
        }
        if (tu_rand(&rng) % 4 == 0)
            goro_sleep(5 * TU_US);
        else
            goro_yield();
    }
    goro_wg_done(&wg);
}

static void burner(void *arg) {
    uint64_t rng = (uint64_t)(uintptr_t)arg + 7;
    uint64_t x = 1;
    while (atomic_load(&checkers_left) > 0) {
        int64_t t0 = goro_now();
        while (goro_now() - t0 < 50 * TU_US)
            x = mix(x, 3);
        /* Sleeping now and then lets a P run dry and steal, which moves goroutines
         * between threads; a P that is never idle keeps its queue to itself. */
        if (tu_rand(&rng) % 3 == 0)
            goro_sleep(100 * TU_US);
        else
            goro_yield();
    }
    atomic_fetch_add_explicit(&burn_sink, x, memory_order_relaxed);
    goro_wg_done(&wg);
}

static void test_main(void *arg) {
    (void)arg;
    CHECK_EQ(goro_maxprocs(0), 2);
    atomic_store(&checkers_left, CHECKERS);
    goro_wg_add(&wg, CHECKERS + WAKERS + BURNERS);
    for (int i = 0; i < CHECKERS; i++)
        CHECK(goro_spawn(check_loop, &checkers[i]) == 0);
    for (int i = 0; i < WAKERS; i++)
        CHECK(goro_spawn(waker, (void *)(uintptr_t)i) == 0);
    for (int i = 0; i < BURNERS; i++)
        CHECK(goro_spawn(burner, (void *)(uintptr_t)i) == 0);
    goro_wg_wait(&wg);

    for (int i = 0; i < CHECKERS; i++) {
        checker *c = &checkers[i];
        printf("checker %llu: %ld iterations on %d threads, resumed %ld times on another "
               "thread than it parked on\n",
               (unsigned long long)c->id, iterations, c->ntids, c->cross_wakes);
    }
    printf("forced wakes (no waker on another thread for %lld ms): %ld\n",
           (long long)(FORCE_WAKE_NS / TU_MS), atomic_load(&forced_wakes));
    for (int i = 0; i < CHECKERS; i++)
        CHECKF(checkers[i].ntids >= 2, "checker %llu ran on one thread only in %ld iterations",
               (unsigned long long)checkers[i].id, iterations);
}

int main(void) {
    iterations = tu_scaled(4000, 400);
    goro_config cfg = {.maxprocs = 2};
    int rc = goro_run(&cfg, test_main, NULL);
    CHECKF(rc == 0, "goro_run: %s", goro_strerror(rc));
    return tu_pass("sched_migrate");
}
