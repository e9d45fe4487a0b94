/*
 * sched_spawn_million: spawn a million goroutines (scaled by GORO_TEST_SCALE) and check
 * that each one ran exactly once.
 *
 * Phase 1: main spawns half of them itself without ever parking, so the spawning P's run
 * queue overflows many times over. Phase 2: a fan-out of spawner goroutines spawns the
 * other half from many Ps at once. Every goroutine bumps its own slot; at the end every
 * slot must be exactly 1, and once the goroutines have all ended none may run again.
 */
#include "testutil.h"

#include <stdatomic.h>

#define SPAWNERS 64

static long total;
static _Atomic uint8_t *ran; /* ran[i]: how many times goroutine i ran */
static _Atomic long ran_total;
static goro_waitgroup wg = GORO_WAITGROUP_INIT;

static void leaf(void *arg) {
    uintptr_t i = (uintptr_t)arg;
    CHECKF(i < (uintptr_t)total, "goroutine got a bad argument %lu", (unsigned long)i);
    uint8_t before = atomic_fetch_add_explicit(&ran[i], 1, memory_order_relaxed);
    CHECKF(before == 0, "goroutine %lu ran a second time", (unsigned long)i);
    atomic_fetch_add_explicit(&ran_total, 1, memory_order_relaxed);
    goro_wg_done(&wg);
}

typedef struct range {
    long lo, hi;
} range;

static range ranges[SPAWNERS];

static void spawner(void *arg) {
    range *r = arg;
    for (long i = r->lo; i < r->hi; i++) {
        int rc = goro_spawn(leaf, (void *)(uintptr_t)i);
        CHECKF(rc == 0, "goro_spawn: %s", goro_strerror(rc));
    }
    goro_wg_done(&wg);
}

static void test_main(void *arg) {
    (void)arg;
    long half = total / 2;

    /* Phase 1: main spawns [0, half) in one go. */
    goro_wg_add(&wg, (int)half);
    int64_t t0 = goro_now();
    for (long i = 0; i < half; i++) {
        int rc = goro_spawn(leaf, (void *)(uintptr_t)i);
        CHECKF(rc == 0, "goro_spawn #%ld: %s", i, goro_strerror(rc));
    }
    goro_wg_wait(&wg);
    int64_t t1 = goro_now();
    CHECK_EQ(atomic_load(&ran_total), half);

    /* Phase 2: SPAWNERS goroutines spawn [half, total) between them. */
    long rest = total - half;
    goro_wg_add(&wg, (int)(rest + SPAWNERS));
    for (int s = 0; s < SPAWNERS; s++) {
        ranges[s].lo = half + rest * s / SPAWNERS;
        ranges[s].hi = half + rest * (s + 1) / SPAWNERS;
        CHECK(goro_spawn(spawner, &ranges[s]) == 0);
    }
    goro_wg_wait(&wg);
    int64_t t2 = goro_now();
    CHECK_EQ(atomic_load(&ran_total), total);

    /* After goro_wg_done a goroutine still has to return; wait (bounded) for all of them
     * to be gone, then nothing may run again. */
    int64_t deadline = goro_now() + 20 * 1000 * TU_MS;
    while (goro_numgoroutine() != 1) {
        CHECKF(goro_now() < deadline, "numgoroutine stays %d after all goroutines finished",
               goro_numgoroutine());
        goro_yield();
    }

    goro_stats st;
    goro_stats_get(&st);
    CHECKF(st.spawned >= (uint64_t)(total + SPAWNERS), "stats.spawned %llu < %ld",
           (unsigned long long)st.spawned, total + SPAWNERS);
    CHECK_EQ(st.goroutines, 1);
    printf("spawned %ld goroutines on %d Ps: main alone %.0f ms, %d spawners %.0f ms; "
           "stacks allocated %llu\n",
           total, goro_maxprocs(0), (double)(t1 - t0) / 1e6, SPAWNERS, (double)(t2 - t1) / 1e6,
           (unsigned long long)st.stacks);
}

int main(void) {
    total = tu_scaled(1000000, 10000);
    ran = calloc((size_t)total, sizeof *ran);
    CHECK(ran != NULL);

    int rc = goro_run(NULL, test_main, NULL);
    CHECKF(rc == 0, "goro_run: %s", goro_strerror(rc));

    for (long i = 0; i < total; i++)
        CHECKF(atomic_load(&ran[i]) == 1, "goroutine %ld ran %d times", i,
               (int)atomic_load(&ran[i]));
    CHECK_EQ(atomic_load(&ran_total), total);
    free((void *)ran);
    return tu_pass("sched_spawn_million");
}
