/*
 * run_twice: goro_run can be called again and again in one process, each run starting
 * fresh: main is goroutine 1 and spawned ids start over near 2, the goroutine count and
 * stats.spawned start over, goroutines left parked by an earlier run never come back,
 * and the configuration (maxprocs) is that of the current run. One run ends with main
 * calling goro_exit, which must end the run exactly as returning would.
 */
#include "testutil.h"

#include <stdatomic.h>

#define WORKERS 100

static _Atomic int run_no;     /* which run we are in */
static _Atomic int ghost_woke; /* set if a goroutine from an earlier run ever resumes */
#define MAX_RUNS 64
/* Per run: a mutex held and a wait group never done, each with ghosts parked on it. A run's
 * objects are never touched by a later run (their wait queues name discarded goroutines). */
static goro_mutex leftover_mu[MAX_RUNS];
static goro_waitgroup leftover_wg[MAX_RUNS];
static _Atomic long sum;

typedef struct run_spec {
    int maxprocs; /* in cfg; 0: env/CPUs */
    int use_cfg;
    int exit_main;    /* main ends with goro_exit */
    int expect_procs; /* 0: don't check */
    int ended;        /* main reached its end */
    int after_exit;   /* code after goro_exit ran */
} run_spec;

static goro_waitgroup work_wg;
static uint64_t ids[WORKERS];

static void worker(void *arg) {
    int i = (int)(intptr_t)arg;
    ids[i] = goro_self();
    goro_sleep((int64_t)(i % 5) * 50 * TU_US);
    atomic_fetch_add(&sum, i + 1);
    goro_wg_done(&work_wg);
}

static void ghost(void *arg) {
    int born_in = (int)(intptr_t)arg;
    int run = born_in / 100;
    if (born_in % 2 == 0)
        goro_mutex_lock(&leftover_mu[run]);
    else
        goro_wg_wait(&leftover_wg[run]);
    /* Only reachable if a parked goroutine of an old run was resumed. */
    atomic_store(&ghost_woke, born_in); /* never 0: ghost numbers start at 1 */
}

static void test_main(void *arg) {
    run_spec *rs = arg;
    int me = atomic_load(&run_no);
    CHECK_EQ(goro_self(), 1);
    CHECKF(goro_numgoroutine() == 1, "run %d starts with %d goroutines", me, goro_numgoroutine());
    goro_stats st;
    goro_stats_get(&st);
    CHECK_EQ(st.goroutines, 1);
    if (rs->expect_procs != 0)
        CHECK_EQ(goro_maxprocs(0), rs->expect_procs);

    /* Work whose goroutine ids are 2, 3, ... in spawn order. */
    memset(&work_wg, 0, sizeof work_wg);
    memset(ids, 0, sizeof ids);
    atomic_store(&sum, 0);
    goro_wg_add(&work_wg, WORKERS);
    for (int i = 0; i < WORKERS; i++)
        CHECK(goro_spawn(worker, (void *)(intptr_t)i) == 0);
    goro_wg_wait(&work_wg);
    CHECK_EQ(atomic_load(&sum), WORKERS * (WORKERS + 1) / 2);
    /* Ids start over with each run: main spawned all of these on one P, so they increase
     * in spawn order, and at most one batch of 16 per P can have gone elsewhere first. */
    uint64_t first_max = 1 + 16 * (uint64_t)goro_maxprocs(0);
    int ids_ok = ids[0] >= 2 && ids[0] <= first_max;
    for (int i = 1; i < WORKERS; i++)
        ids_ok &= ids[i] > ids[i - 1];
    if (!ids_ok) {
        fprintf(stderr, "run %d: ids of the spawned goroutines in spawn order:", me);
        for (int k = 0; k < WORKERS; k++)
            fprintf(stderr, " %llu", (unsigned long long)ids[k]);
        fputc('\n', stderr);
    }
    CHECKF(ids_ok,
           "run %d: the first spawn must get an id in 2..%llu and later spawns of the "
           "same goroutine larger ones",
           me, (unsigned long long)first_max);
    goro_stats_get(&st);
    CHECKF(st.spawned >= WORKERS && st.spawned < 3 * WORKERS,
           "run %d: stats.spawned %llu after %d spawns (does it start over?)", me,
           (unsigned long long)st.spawned, WORKERS);

    /* Leave goroutines parked forever; they must never wake in a later run. */
    CHECK(me < MAX_RUNS);
    goro_mutex_lock(&leftover_mu[me]);
    goro_wg_add(&leftover_wg[me], 1);
    for (int i = 0; i < 10; i++)
        CHECK(goro_spawn(ghost, (void *)(intptr_t)(me * 100 + i + 1)) == 0);
    goro_yield();
    CHECK_EQ(atomic_load(&ghost_woke), 0);

    rs->ended = 1;
    if (rs->exit_main) {
        goro_exit();
        rs->after_exit = 1; /* never reached */
    }
}

int main(void) {
    const char *env = getenv("GORO_MAXPROCS");
    int env_procs = env != NULL ? atoi(env) : 0;
    run_spec runs[] = {
        {.use_cfg = 0, .expect_procs = env_procs},
        {.use_cfg = 1, .maxprocs = 1, .expect_procs = 1},
        {.use_cfg = 1, .maxprocs = 2, .expect_procs = 2, .exit_main = 1},
        {.use_cfg = 1, .maxprocs = 3, .expect_procs = 3},
        {.use_cfg = 0, .expect_procs = env_procs, .exit_main = 1},
        {.use_cfg = 1, .maxprocs = 0, .expect_procs = env_procs},
    };
    int nruns = (int)(sizeof runs / sizeof runs[0]);
    int repeat = (int)tu_scaled(5, 1);
    for (int rep = 0; rep < repeat; rep++) {
        for (int r = 0; r < nruns; r++) {
            run_spec *rs = &runs[r];
            rs->ended = rs->after_exit = 0;
            goro_config cfg = {.maxprocs = rs->maxprocs};
            int64_t t0 = goro_now();
            int rc = goro_run(rs->use_cfg ? &cfg : NULL, test_main, rs);
            CHECKF(rc == 0, "run %d: goro_run: %s", r, goro_strerror(rc));
            CHECKF(rs->ended, "run %d: goro_run returned before main ended", r);
            CHECKF(!rs->after_exit, "run %d: goro_exit returned", r);
            CHECK_EQ(atomic_load(&ghost_woke), 0);
            if (rep == 0)
                printf("run %d (maxprocs %d%s%s): ok in %.1f ms\n", r, rs->maxprocs,
                       rs->use_cfg ? "" : ", no cfg", rs->exit_main ? ", main exits" : "",
                       (double)(goro_now() - t0) / 1e6);
            atomic_fetch_add(&run_no, 1);
        }
    }
    return tu_pass("run_twice");
}
