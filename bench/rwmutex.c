/*
 * rwmutex.c - a read-mostly goro_rwmutex: 4 goroutines on all Ps share n operations on a
 * counter the lock guards; every tenth operation of each goroutine is a write (lock,
 * increment, unlock), the other nine are reads (rlock, read, runlock). Figure: wall time
 * per operation. Exits 1 if the counter is wrong. Go twin: go/rwmutex.
 */
#include "bench.h"

static uint64_t n = 50000000; /* operations in all */
static uint64_t goroutines = 4;
static goro_rwmutex rw = GORO_RWMUTEX_INIT;
static uint64_t counter; /* guarded by rw */
static goro_waitgroup done;

typedef struct worker_arg {
    _Alignas(64) uint64_t seen; /* sum of the values read, so the reads are not optimised out */
} worker_arg;

static void worker(void *arg) {
    worker_arg *w = arg;
    uint64_t seen = 0;
    for (uint64_t i = 0; i < n / goroutines; i++) {
        if (i % 10 == 0) {
            goro_rwmutex_lock(&rw);
            counter++;
            goro_rwmutex_unlock(&rw);
        } else {
            goro_rwmutex_rlock(&rw);
            seen += *(volatile uint64_t *)&counter;
            goro_rwmutex_runlock(&rw);
        }
    }
    w->seen = seen;
    goro_wg_done(&done);
}

static void bench_main(void *arg) {
    int *status = arg;
    uint64_t per = n / goroutines, total = per * goroutines;
    uint64_t writes = (per + 9) / 10 * goroutines; /* i % 10 == 0 for i in [0, per) */
    worker_arg *args = aligned_alloc(64, goroutines * sizeof *args);
    if (args == NULL) {
        fprintf(stderr, "rwmutex: out of memory\n");
        exit(1);
    }
    goro_wg_add(&done, (int)goroutines);
    int64_t start = goro_now();
    for (uint64_t i = 0; i < goroutines; i++)
        bench_spawn(worker, &args[i]);
    goro_wg_wait(&done);
    int64_t ns = goro_now() - start;
    free(args);
    printf("# %d Ps, %" PRIu64 " goroutines, %" PRIu64 " writes\n", goro_maxprocs(0), goroutines,
           writes);
    if (counter != writes) {
        fprintf(stderr, "rwmutex: counter is %" PRIu64 ", want %" PRIu64 "\n", counter, writes);
        *status = 1;
        return;
    }
    bench_result("rwmutex_allp", (double)ns / (double)total, "ns");
}

int main(int argc, char **argv) {
    bench_flag flags[] = {
        {"n", &n, 1, UINT64_C(1) << 40, "operations in all"},
        {"goroutines", &goroutines, 1, 100000, "goroutines sharing the lock"},
    };
    bench_parse(argc, argv, flags, sizeof flags / sizeof flags[0]);
    if (n < goroutines) {
        bench_usage(argv[0], flags, sizeof flags / sizeof flags[0]);
        return 2;
    }
    int status = 0;
    bench_run(argv[0], 0, bench_main, &status);
    return status;
}
