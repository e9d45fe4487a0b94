/*
 * mutex.c - a contended goro_mutex: g goroutines on all Ps each lock, increment a shared
 * counter and unlock, n/g times. Figure: wall time per lock+unlock pair. Exits 1 if the
 * counter is wrong. Go twin: go/mutex.
 */
#include "bench.h"

static uint64_t n = 1000000; /* lock+unlock pairs in all */
static uint64_t goroutines = 4;
static goro_mutex mu = GORO_MUTEX_INIT;
static uint64_t counter; /* guarded by mu */
static goro_waitgroup done;

static void worker(void *arg) {
    (void)arg;
    for (uint64_t i = 0; i < n / goroutines; i++) {
        goro_mutex_lock(&mu);
        counter++;
        goro_mutex_unlock(&mu);
    }
    goro_wg_done(&done);
}

static void bench_main(void *arg) {
    int *status = arg;
    uint64_t total = n / goroutines * goroutines;
    int64_t start = goro_now();
    goro_wg_add(&done, (int)goroutines);
    for (uint64_t i = 0; i < goroutines; i++)
        bench_spawn(worker, NULL);
    goro_wg_wait(&done);
    int64_t ns = goro_now() - start;
    printf("# %d Ps, %" PRIu64 " goroutines\n", goro_maxprocs(0), goroutines);
    if (counter != total) {
        fprintf(stderr, "mutex: counter is %" PRIu64 ", want %" PRIu64 "\n", counter, total);
        *status = 1;
        return;
    }
    bench_result("ns_per_lock", (double)ns / (double)total, "ns");
}

int main(int argc, char **argv) {
    bench_flag flags[] = {
        {"n", &n, 1, UINT64_C(1) << 40, "lock+unlock pairs in all"},
        {"goroutines", &goroutines, 1, 100000, "goroutines sharing the mutex"},
    };
    bench_parse(argc, argv, flags, sizeof flags / sizeof flags[0]);
    if (n < goroutines) { /* every goroutine locks at least once */
        bench_usage(argv[0], flags, sizeof flags / sizeof flags[0]);
        return 2;
    }
    int status = 0;
    bench_run(argv[0], 0, bench_main, &status);
    return status;
}
