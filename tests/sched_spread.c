/*
 * sched_spread: work spreads over every P.
 *
 * With two Ps, main spawns CPU-bound goroutines (each computes for 50 ms without ever
 * parking) and waits. An idle P must be woken and take some of them, so they run on at
 * least two OS threads, and goroutines on different threads compute at the same time.
 */
#include "testutil.h"

#include <stdatomic.h>

#define NWORK 8
#define WORK_NS (50 * TU_MS)

static pid_t tid_of[NWORK];
static pid_t tid_end[NWORK];
static int64_t start_of[NWORK], end_of[NWORK];
static goro_waitgroup wg = GORO_WAITGROUP_INIT;
static _Atomic uint64_t sink;

static void burn(void *arg) {
    int i = (int)(intptr_t)arg;
    tid_of[i] = tu_gettid();
    int64_t t0 = goro_now();
    start_of[i] = t0;
    uint64_t x = (uint64_t)i + 1;
    /* Compute without parking until 50 ms have passed. */
    while (goro_now() - t0 < WORK_NS) {
        for (int k = 0; k < 1000; k++)
            x = x * 6364136223846793005ull + 1442695040888963407ull;
    }
    atomic_fetch_add_explicit(&sink, x, memory_order_relaxed);
    end_of[i] = goro_now();
    tid_end[i] = tu_gettid();
    goro_wg_done(&wg);
}

static void test_main(void *arg) {
    (void)arg;
    CHECK_EQ(goro_maxprocs(0), 2);
    int64_t t0 = goro_now();
    goro_wg_add(&wg, NWORK);
    for (int i = 0; i < NWORK; i++)
        CHECK(goro_spawn(burn, (void *)(intptr_t)i) == 0);
    goro_wg_wait(&wg);
    int64_t elapsed = goro_now() - t0;

    pid_t distinct[NWORK];
    int ndistinct = 0;
    for (int i = 0; i < NWORK; i++) {
        CHECKF(tid_of[i] == tid_end[i],
               "goroutine %d changed threads (%d -> %d) without ever parking", i, (int)tid_of[i],
               (int)tid_end[i]);
        int seen = 0;
        for (int k = 0; k < ndistinct; k++)
            seen |= distinct[k] == tid_of[i];
        if (!seen)
            distinct[ndistinct++] = tid_of[i];
    }
    /* Pairs of goroutines that computed at the same time on different threads. */
    int overlaps = 0;
    for (int i = 0; i < NWORK; i++)
        for (int k = i + 1; k < NWORK; k++)
            if (tid_of[i] != tid_of[k] && start_of[i] < end_of[k] && start_of[k] < end_of[i])
                overlaps++;

    goro_stats st;
    goro_stats_get(&st);
    printf("%d CPU-bound goroutines of %lld ms on 2 Ps: %d threads, %d overlapping pairs, "
           "%.0f ms in all (%lld ms serially); stats: threads %lld steals %llu\n",
           NWORK, (long long)(WORK_NS / TU_MS), ndistinct, overlaps, (double)elapsed / 1e6,
           (long long)(NWORK * WORK_NS / TU_MS), (long long)st.threads,
           (unsigned long long)st.steals);
    CHECKF(ndistinct >= 2, "all %d CPU-bound goroutines ran on one thread (tid %d) with 2 Ps",
           NWORK, (int)distinct[0]);
    CHECKF(overlaps > 0, "goroutines on different threads never computed at the same time");
    CHECK(st.threads >= 2);
}

int main(void) {
    goro_config cfg = {.maxprocs = 2};
    int rc = goro_run(&cfg, test_main, NULL);
    CHECKF(rc == 0, "goro_run: %s", goro_strerror(rc));
    return tu_pass("sched_spread");
}
