/*
 * time_sleep: goro_sleep and goro_sleep_until never return early.
 *
 *  - goro_sleep(d) for d from negative to 20 ms returns 0 after at least d, by goro_now
 *    and by CLOCK_MONOTONIC;
 *  - goro_now runs at the rate of CLOCK_MONOTONIC (bracketed by readings of it);
 *  - goro_sleep_until: a past deadline returns at once, a future one not before it;
 *  - a sleeping goroutine parks, it does not block its thread: another goroutine runs
 *    meanwhile even with one P;
 *  - many concurrent sleepers with random durations each wake no earlier than their
 *    deadline, and they sleep at the same time, not one after another.
 */
#include "testutil.h"

#include <stdatomic.h>
#include <time.h>

#define LATE_BOUND_NS (2000 * TU_MS) /* "returns at all": a wake this late is a bug */

static int64_t mono(void) {
    struct timespec ts;
    CHECK(clock_gettime(CLOCK_MONOTONIC, &ts) == 0);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void single_sleeps(void) {
    const int64_t ds[] = {-5, 0, 1, 999, 10 * TU_US, 100 * TU_US, 1 * TU_MS, 5 * TU_MS, 20 * TU_MS};
    for (size_t i = 0; i < sizeof ds / sizeof ds[0]; i++) {
        int64_t d = ds[i];
        int64_t m0 = mono();
        int64_t t0 = goro_now();
        int rc = goro_sleep(d);
        int64_t t1 = goro_now();
        int64_t m1 = mono();
        CHECK_EQ(rc, 0);
        CHECKF(t1 - t0 >= d, "goro_sleep(%lld) returned after %lld ns by goro_now", (long long)d,
               (long long)(t1 - t0));
        CHECKF(m1 - m0 >= d, "goro_sleep(%lld) returned after %lld ns by CLOCK_MONOTONIC",
               (long long)d, (long long)(m1 - m0));
        CHECKF(t1 - t0 < (d > 0 ? d : 0) + LATE_BOUND_NS, "goro_sleep(%lld) took %lld ns",
               (long long)d, (long long)(t1 - t0));
    }
}

static void clock_rate(void) {
    int64_t a = mono();
    int64_t g1 = goro_now();
    int64_t b = mono();
    CHECK_EQ(goro_sleep(20 * TU_MS), 0);
    int64_t c = mono();
    int64_t g2 = goro_now();
    int64_t d = mono();
    /* g1 was read within [a, b] and g2 within [c, d]. */
    int64_t slack = 50 * TU_US;
    CHECKF(g2 - g1 >= (c - b) - slack && g2 - g1 <= (d - a) + slack,
           "goro_now advanced %lld ns while CLOCK_MONOTONIC advanced between %lld and %lld",
           (long long)(g2 - g1), (long long)(c - b), (long long)(d - a));
}

static void sleep_until(void) {
    int64_t now = goro_now();
    CHECK_EQ(goro_sleep_until(now - 1 * TU_MS), 0);
    CHECK_EQ(goro_sleep_until(0), 0);
    CHECK(goro_now() - now < LATE_BOUND_NS);

    for (int i = 0; i < 5; i++) {
        int64_t deadline = goro_now() + (int64_t)i * 3 * TU_MS + 1;
        CHECK_EQ(goro_sleep_until(deadline), 0);
        int64_t t = goro_now();
        CHECKF(t >= deadline, "goro_sleep_until woke %lld ns before its deadline",
               (long long)(deadline - t));
        CHECK(t - deadline < LATE_BOUND_NS);
    }
}

static _Atomic int64_t helper_ran_at;
static _Atomic long helper_tid;

static void helper(void *arg) {
    (void)arg;
    atomic_store(&helper_tid, (long)syscall(SYS_gettid));
    atomic_store(&helper_ran_at, goro_now());
}

/* The sleeper's thread runs the goroutine spawned before the sleep while the sleeper
 * sleeps. With several Ps another thread may take the helper first (and, on a loaded
 * machine, be descheduled past the wake-up: seen under TSan), so up to 5 tries must show
 * it once; a goro_sleep that blocked its thread would never. */
static void sleep_parks(void) {
    for (int attempt = 1;; attempt++) {
        atomic_store(&helper_ran_at, 0);
        atomic_store(&helper_tid, 0);
        long tid = (long)syscall(SYS_gettid);
        CHECK(goro_spawn(helper, NULL) == 0);
        goro_sleep(30 * TU_MS);
        int64_t woke = goro_now();
        int64_t ran = atomic_load(&helper_ran_at);
        if (ran != 0 && ran < woke && atomic_load(&helper_tid) == tid)
            return;
        CHECKF(attempt < 5,
               "a goroutine spawned before a 30 ms goro_sleep did not run on the sleeper's thread "
               "while it slept, in %d tries: goro_sleep blocks its thread instead of parking",
               attempt);
        while (atomic_load(&helper_ran_at) == 0)
            goro_yield(); /* this try's helper finishes before the next one */
    }
}

/* ---------------------------------------------------------------- many sleepers */

#define MAX_SLEEP_NS (20 * TU_MS)

static _Atomic int64_t worst_late;
static _Atomic long woken;
static goro_waitgroup sleepers_wg = GORO_WAITGROUP_INIT;

static void sleeper(void *arg) {
    uint64_t rng = (uint64_t)(uintptr_t)arg * 2654435761u + 17;
    for (int rep = 0; rep < 2; rep++) {
        int64_t d = (int64_t)(tu_rand(&rng) % (uint64_t)MAX_SLEEP_NS);
        int64_t deadline = goro_now() + d;
        if ((rep + (uintptr_t)arg) % 2 == 0)
            goro_sleep(d);
        else
            goro_sleep_until(deadline);
        int64_t t = goro_now();
        CHECKF(t >= deadline, "sleeper %lu woke %lld ns before its deadline (slept for %lld)",
               (unsigned long)(uintptr_t)arg, (long long)(deadline - t), (long long)d);
        int64_t late = t - deadline;
        int64_t w = atomic_load(&worst_late);
        while (late > w && !atomic_compare_exchange_weak(&worst_late, &w, late)) {
        }
    }
    atomic_fetch_add(&woken, 1);
    goro_wg_done(&sleepers_wg);
}

static void many_sleepers(long n) {
    int64_t t0 = goro_now();
    goro_wg_add(&sleepers_wg, (int)n);
    for (long i = 0; i < n; i++)
        CHECK(goro_spawn(sleeper, (void *)(uintptr_t)i) == 0);
    goro_wg_wait(&sleepers_wg);
    int64_t elapsed = goro_now() - t0;
    CHECK_EQ(atomic_load(&woken), n);
    printf("%ld sleepers x 2 sleeps of 0-%lld ms on %d Ps: all done in %.1f ms, latest wake "
           "%.3f ms after its deadline\n",
           n, (long long)(MAX_SLEEP_NS / TU_MS), goro_maxprocs(0), (double)elapsed / 1e6,
           (double)atomic_load(&worst_late) / 1e6);
    /* One after another they would take n * 20 ms on average; together, ~40 ms. */
    CHECKF(elapsed < 1500 * TU_MS,
           "%ld concurrent sleepers took %.0f ms: they do not sleep "
           "at the same time",
           n, (double)elapsed / 1e6);
}

static void test_main(void *arg) {
    (void)arg;
    single_sleeps();
    clock_rate();
    sleep_until();
    sleep_parks();
    many_sleepers(tu_scaled(1000, 300));
}

int main(void) {
    /* goro_now is callable from anywhere, also outside the runtime. */
    int64_t a = goro_now();
    int64_t b = goro_now();
    CHECK(a >= 0 && b >= a);
    int rc = goro_run(NULL, test_main, NULL);
    CHECKF(rc == 0, "goro_run: %s", goro_strerror(rc));
    CHECK(goro_now() >= b);
    return tu_pass("time_sleep");
}
