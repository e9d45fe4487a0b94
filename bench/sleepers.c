/*
 * sleepers.c - 100,000 goroutines each sleep a random 0-10 ms (whole microseconds, drawn
 * from splitmix64 with a fixed seed, the same in both twins), then call goro_wg_done;
 * main waits for them all. All Ps. Figures: total wall time in ms, and the worst
 * lateness, the largest (time slept - time asked for) of any goroutine, in us.
 * Go twin: go/sleepers.
 */
#include "bench.h"

#include <stdatomic.h>

static uint64_t n = 100000;     /* goroutines */
static uint64_t max_us = 10000; /* the longest sleep asked for */
static uint64_t seed = 1;

static goro_waitgroup done;
static _Atomic int64_t worst_late; /* ns; only ever raised */

static uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static void sleeper(void *arg) {
    int64_t want = (int64_t)(uintptr_t)arg; /* ns */
    int64_t start = goro_now();
    goro_sleep(want);
    int64_t late = goro_now() - start - want;
    /* relaxed: main reads the maximum after goro_wg_wait, which orders it */
    int64_t seen = atomic_load_explicit(&worst_late, memory_order_relaxed);
    while (late > seen && !atomic_compare_exchange_weak_explicit(
                              &worst_late, &seen, late, memory_order_relaxed, memory_order_relaxed))
        ;
    goro_wg_done(&done);
}

static void bench_main(void *arg) {
    (void)arg;
    uint64_t state = seed;
    goro_wg_add(&done, (int)n);
    int64_t start = goro_now();
    for (uint64_t i = 0; i < n; i++) {
        int64_t ns = (int64_t)(splitmix64(&state) % (max_us + 1)) * 1000;
        bench_spawn(sleeper, (void *)(uintptr_t)ns);
    }
    int64_t spawned = goro_now() - start;
    goro_wg_wait(&done);
    int64_t ns = goro_now() - start;
    printf("# %d Ps, %" PRIu64 " sleepers of 0-%" PRIu64 " us, spawned in %.1f ms\n",
           goro_maxprocs(0), n, max_us, (double)spawned / 1e6);
    bench_result("sleepers_ms", (double)ns / 1e6, "ms");
    bench_result("sleepers_worst_late", (double)atomic_load(&worst_late) / 1e3, "us");
}

int main(int argc, char **argv) {
    bench_flag flags[] = {
        {"n", &n, 1, 10000000, "goroutines"},
        {"max-us", &max_us, 0, 10000000, "longest sleep in microseconds"},
        {"seed", &seed, 0, UINT64_MAX, "random seed"},
    };
    bench_parse(argc, argv, flags, sizeof flags / sizeof flags[0]);
    bench_run(argv[0], 0, bench_main, NULL);
    return 0;
}
