/*
 * parked.c - the memory a parked goroutine costs: n goroutines each park in goro_wg_wait
 * on one closed gate; main measures the resident set size (/proc/self/statm) before the
 * spawns and once every goroutine has parked, then opens the gate and waits for them to
 * end. Figure: resident bytes per parked goroutine. Go twin: go/parked.
 */
#include "bench.h"

#include <stdatomic.h>

static uint64_t n = 1000000;         /* goroutines */
static goro_waitgroup gate;          /* counter 1 until main has measured */
static goro_waitgroup exited;        /* counts the goroutines still alive */
static atomic_uint_fast64_t arrived; /* goroutines about to park */

static void sleeper(void *arg) {
    (void)arg;
    /* relaxed: main only counts; the wait group orders everything that matters */
    atomic_fetch_add_explicit(&arrived, 1, memory_order_relaxed);
    goro_wg_wait(&gate);
    goro_wg_done(&exited);
}

static void bench_main(void *arg) {
    (void)arg;
    goro_wg_add(&gate, 1);
    goro_wg_add(&exited, (int)n);
    int64_t before = bench_rss_bytes();
    int64_t start = goro_now();
    for (uint64_t i = 0; i < n; i++)
        bench_spawn(sleeper, NULL);
    while (atomic_load_explicit(&arrived, memory_order_relaxed) < n)
        goro_sleep(1000000);
    /* The last ones counted themselves but may not have parked yet: give them a moment. */
    goro_sleep(20000000);
    int64_t after = bench_rss_bytes();
    int64_t ns = goro_now() - start;
    goro_wg_done(&gate);
    goro_wg_wait(&exited);
    printf("# %" PRIu64 " goroutines parked in %.0f ms; rss %.1f MiB -> %.1f MiB\n", n,
           (double)ns / 1e6, (double)before / 1048576.0, (double)after / 1048576.0);
    bench_result("bytes_per_parked", (double)(after - before) / (double)n, "bytes");
}

int main(int argc, char **argv) {
    bench_flag flags[] = {{"n", &n, 1, 100000000, "goroutines to park"}};
    bench_parse(argc, argv, flags, sizeof flags / sizeof flags[0]);
    bench_run(argv[0], 0, bench_main, NULL);
    return 0;
}
