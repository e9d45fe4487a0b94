/*
 * run_errors: goro_run rejects what it must and is not reentrant.
 *
 *  - GORO_EINVAL for a NULL main_fn and for bad configuration values (negative maxprocs
 *    or max_threads, a default stack size outside 16 KiB .. 1 GiB), without running main;
 *  - a valid configuration afterwards runs normally and is applied (maxprocs, stack size
 *    accepted at the limits);
 *  - goro_run while a runtime is running returns GORO_EBUSY, whether called from the main
 *    goroutine, from another goroutine, or from a separate pthread, and the running runtime
 *    carries on unharmed.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>

static _Atomic int main_ran;

static void count_main(void *arg) {
    (void)arg;
    atomic_fetch_add(&main_ran, 1);
}

typedef struct expect_cfg {
    int procs;
} expect_cfg;

static void cfg_main(void *arg) {
    expect_cfg *e = arg;
    atomic_fetch_add(&main_ran, 1);
    if (e->procs != 0)
        CHECK_EQ(goro_maxprocs(0), e->procs);
}

static void bad_configs(void) {
    CHECK_EQ(goro_run(NULL, NULL, NULL), GORO_EINVAL);
    goro_config ok = {0};
    CHECK_EQ(goro_run(&ok, NULL, NULL), GORO_EINVAL);

    const goro_config bad[] = {
        {.maxprocs = -1},
        {.maxprocs = -1000},
        {.max_threads = -1},
        {.stack_size = 1},
        {.stack_size = 16383},
        {.stack_size = ((size_t)1 << 30) + 1},
        {.maxprocs = 2, .stack_size = 1000, .max_threads = 10},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = goro_run(&bad[i], count_main, NULL);
        CHECKF(rc == GORO_EINVAL,
               "goro_run with {maxprocs %d, stack_size %zu, max_threads %d} returned %d (%s), "
               "want GORO_EINVAL",
               bad[i].maxprocs, bad[i].stack_size, bad[i].max_threads, rc, goro_strerror(rc));
    }
    CHECKF(atomic_load(&main_ran) == 0, "main_fn ran although goro_run failed");

    /* Valid ones run, and the configuration is applied. */
    const goro_config good[] = {
        {0},
        {.maxprocs = 1},
        {.maxprocs = 3},
        {.stack_size = 16384},
        {.stack_size = (size_t)1 << 30},
        {.maxprocs = 2, .max_threads = 50},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        expect_cfg e = {good[i].maxprocs};
        int rc = goro_run(&good[i], cfg_main, &e);
        CHECKF(rc == 0, "goro_run with {maxprocs %d, stack_size %zu, max_threads %d}: %s",
               good[i].maxprocs, good[i].stack_size, good[i].max_threads, goro_strerror(rc));
    }
    CHECK_EQ(atomic_load(&main_ran), (int)(sizeof good / sizeof good[0]));
}

/* ---------------------------------------------------------------- EBUSY */

static _Atomic int nested_main_ran;
static _Atomic int thread_rc = 1;
static goro_waitgroup wg = GORO_WAITGROUP_INIT;
static int goroutine_rc = 1;

static void nested_main(void *arg) {
    (void)arg;
    atomic_store(&nested_main_ran, 1);
}

static void nested_from_goroutine(void *arg) {
    (void)arg;
    goroutine_rc = goro_run(NULL, nested_main, NULL);
    goro_wg_done(&wg);
}

static void *nested_from_thread(void *arg) {
    (void)arg;
    atomic_store(&thread_rc, goro_run(NULL, nested_main, NULL));
    return NULL;
}

static _Atomic long ticks;

static void ticker(void *arg) {
    (void)arg;
    for (int i = 0; i < 100; i++) {
        atomic_fetch_add(&ticks, 1);
        goro_sleep(50 * TU_US);
    }
    goro_wg_done(&wg);
}

static void busy_main(void *arg) {
    (void)arg;
    goro_wg_add(&wg, 1);
    CHECK(goro_spawn(ticker, NULL) == 0);

    int rc = goro_run(NULL, nested_main, NULL);
    CHECKF(rc == GORO_EBUSY, "goro_run inside main returned %d (%s)", rc, goro_strerror(rc));
    CHECK_EQ(goro_self(), 1);
    CHECK_EQ(goro_run(NULL, NULL, NULL) < 0, 1);

    goro_wg_add(&wg, 1);
    CHECK(goro_spawn(nested_from_goroutine, NULL) == 0);
    goro_wg_wait(&wg);
    CHECKF(goroutine_rc == GORO_EBUSY, "goro_run inside a goroutine returned %d (%s)", goroutine_rc,
           goro_strerror(goroutine_rc));

    /* From another OS thread: the process already has a runtime. */
    pthread_t th;
    CHECK(pthread_create(&th, NULL, nested_from_thread, NULL) == 0);
    while (atomic_load(&thread_rc) == 1)
        goro_yield();
    CHECK(pthread_join(th, NULL) == 0);
    CHECKF(atomic_load(&thread_rc) == GORO_EBUSY, "goro_run from another thread returned %d",
           atomic_load(&thread_rc));

    CHECK_EQ(atomic_load(&nested_main_ran), 0);
    CHECK_EQ(atomic_load(&ticks), 100); /* the ticker was in wg too */
}

int main(void) {
    bad_configs();
    int rc = goro_run(NULL, busy_main, NULL);
    CHECKF(rc == 0, "goro_run: %s", goro_strerror(rc));
    CHECK_EQ(atomic_load(&nested_main_ran), 0);
    /* And a runtime can start again after all that. */
    rc = goro_run(NULL, count_main, NULL);
    CHECK_EQ(rc, 0);
    return tu_pass("run_errors");
}
