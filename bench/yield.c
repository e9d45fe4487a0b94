/*
 * yield.c - the cost of a goroutine switch: two goroutines on one P take turns, each
 * calling goro_yield n/2 times. Figure: wall time per yield. Go twin: go/yield.
 */
#include "bench.h"

static uint64_t n = 10000000; /* yields in all */
static goro_waitgroup done;

static void yielder(void *arg) {
    (void)arg;
    for (uint64_t i = 0; i < n / 2; i++)
        goro_yield();
    goro_wg_done(&done);
}

static void bench_main(void *arg) {
    (void)arg;
    int64_t start = goro_now();
    goro_wg_add(&done, 2);
    bench_spawn(yielder, NULL);
    bench_spawn(yielder, NULL);
    goro_wg_wait(&done);
    int64_t ns = goro_now() - start;
    bench_result("ns_per_yield", (double)ns / (double)(n / 2 * 2), "ns");
}

int main(int argc, char **argv) {
    bench_flag flags[] = {
        {"n", &n, 2, UINT64_C(1) << 40, "yields in all, split over two goroutines"}};
    bench_parse(argc, argv, flags, sizeof flags / sizeof flags[0]);
    bench_run(argv[0], 1, bench_main, NULL);
    return 0;
}
