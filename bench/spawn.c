/*
 * spawn.c - the cost of creating, running and ending a goroutine: n goroutines that only
 * call goro_wg_done, then a wait for all of them; once with one P and once with all Ps,
 * after an unmeasured round of each to warm up the allocators (the one-P round keeps more
 * goroutines alive at once, so its first run maps fresh memory; its figure moved between
 * 80 and 270 ns with how much). Figures: wall time per goroutine. Go twin: go/spawn.
 */
#include "bench.h"

static uint64_t n = 1000000; /* goroutines per round */

static void empty(void *arg) {
    goro_wg_done(arg);
}

/* One round; returns the wall time per goroutine in ns. */
static double round_ns(void) {
    goro_waitgroup wg = GORO_WAITGROUP_INIT;
    int64_t start = goro_now();
    goro_wg_add(&wg, (int)n);
    for (uint64_t i = 0; i < n; i++)
        bench_spawn(empty, &wg);
    goro_wg_wait(&wg);
    return (double)(goro_now() - start) / (double)n;
}

static void bench_main(void *arg) {
    (void)arg;
    int all = goro_maxprocs(0);
    round_ns();
    goro_maxprocs(1);
    round_ns();
    double one = round_ns();
    goro_maxprocs(all);
    double many = round_ns();
    printf("# %d Ps\n", all);
    bench_result("spawn_1p", one, "ns");
    bench_result("spawn_allp", many, "ns");
}

int main(int argc, char **argv) {
    bench_flag flags[] = {{"n", &n, 1, 1000000000, "goroutines per round"}};
    bench_parse(argc, argv, flags, sizeof flags / sizeof flags[0]);
    bench_run(argv[0], 0, bench_main, NULL);
    return 0;
}
