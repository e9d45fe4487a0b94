/*
 * sched_yield_fair: goro_yield lets the other runnable goroutines run.
 *
 * Progress: a chain of goroutines, each spinning on goro_yield until its predecessor has
 * finished, spawned in reverse order so that with one P every one of them has to let all
 * the others run; and main, spinning on goro_yield, must see them all finish.
 *
 * Fairness: K goroutines each do R iterations of "count, yield". With one P, yield must
 * cycle through the runnable goroutines: when the first one finishes, every other one has
 * done at least half as many iterations. (With several Ps the OS may stall one P's thread
 * while another runs, so there only progress is checked.)
 */
#include "testutil.h"

#include <stdatomic.h>

#define CHAIN 32
#define K 8

static _Atomic int chain_done[CHAIN];

static void chain_link(void *arg) {
    int i = (int)(intptr_t)arg;
    if (i > 0) {
        while (!atomic_load(&chain_done[i - 1]))
            goro_yield();
    }
    atomic_store(&chain_done[i], 1);
}

static long rounds;
static _Atomic long counter[K];
static _Atomic int started;
static _Atomic int go;
static _Atomic int first_finisher = -1;
static long snapshot[K];
static goro_waitgroup wg = GORO_WAITGROUP_INIT;

static void yielder(void *arg) {
    int me = (int)(intptr_t)arg;
    atomic_fetch_add(&started, 1);
    while (!atomic_load(&go))
        goro_yield();
    for (long r = 0; r < rounds; r++) {
        atomic_fetch_add_explicit(&counter[me], 1, memory_order_relaxed);
        goro_yield();
    }
    int expected = -1;
    if (atomic_compare_exchange_strong(&first_finisher, &expected, me)) {
        for (int k = 0; k < K; k++)
            snapshot[k] = atomic_load(&counter[k]);
    }
    goro_wg_done(&wg);
}

static void test_main(void *arg) {
    (void)arg;
    int procs = goro_maxprocs(0);

    /* Progress through a chain spawned backwards. */
    for (int i = CHAIN - 1; i >= 0; i--)
        CHECK(goro_spawn(chain_link, (void *)(intptr_t)i) == 0);
    int64_t spins = 0;
    while (!atomic_load(&chain_done[CHAIN - 1])) {
        goro_yield();
        spins++;
    }
    for (int i = 0; i < CHAIN; i++)
        CHECK(atomic_load(&chain_done[i]));
    printf("chain of %d finished after %lld yields of main\n", CHAIN, (long long)spins);

    /* Fairness among K yielders. */
    goro_wg_add(&wg, K);
    for (int k = 0; k < K; k++)
        CHECK(goro_spawn(yielder, (void *)(intptr_t)k) == 0);
    while (atomic_load(&started) < K)
        goro_yield();
    atomic_store(&go, 1);
    goro_wg_wait(&wg);

    int first = atomic_load(&first_finisher);
    CHECK(first >= 0 && first < K);
    long min = rounds;
    for (int k = 0; k < K; k++) {
        CHECK_EQ(atomic_load(&counter[k]), rounds);
        if (snapshot[k] < min)
            min = snapshot[k];
    }
    printf("%d Ps: when goroutine %d finished %ld rounds, the slowest had done %ld\n", procs, first,
           rounds, min);
    if (procs == 1)
        CHECKF(min >= rounds / 2,
               "with one P, goroutine %d finished %ld yields while another had done only %ld: "
               "yield does not cycle through the runnable goroutines",
               first, rounds, min);
}

int main(void) {
    rounds = tu_scaled(20000, 500);
    int rc = goro_run(NULL, test_main, NULL);
    CHECKF(rc == 0, "goro_run: %s", goro_strerror(rc));
    return tu_pass("sched_yield_fair");
}
