/*
 * sync_once: goro_once_do runs its function exactly once, and nobody returns before it
 * has finished.
 *
 * Each round, N goroutines meet at a start line, then all call goro_once_do on a fresh
 * all-zero once (heap memory). The function counts its calls, parks for a while (yields
 * and a short sleep, so that the other callers arrive and must wait for it), then writes
 * a plain (non-atomic) value. Every caller checks on return that the function ran once
 * and that it sees the value (ThreadSanitizer checks that the write happens before the
 * read). Later calls, with a different function, run nothing. A GORO_ONCE_INIT once
 * called from main works the same.
 */
#include "testutil.h"

#include <stdatomic.h>

#define N 32

typedef struct once_round {
    goro_once *once;
    _Atomic int calls;    /* calls of the once's function */
    _Atomic int at_start; /* goroutines at the start line */
    long value;           /* written by the function, read by every caller */
    _Atomic int checked;  /* callers that returned and checked */
} once_round;

static goro_waitgroup wg = GORO_WAITGROUP_INIT;

static void slow_init(void *arg) {
    once_round *r = arg;
    atomic_fetch_add(&r->calls, 1);
    for (int i = 0; i < 10; i++)
        goro_yield();
    goro_sleep(100 * TU_US);
    r->value = 42;
}

static void must_not_run(void *arg) {
    once_round *r = arg;
    atomic_fetch_add(&r->calls, 100);
}

static void caller(void *arg) {
    once_round *r = arg;
    atomic_fetch_add(&r->at_start, 1);
    while (atomic_load(&r->at_start) < N)
        goro_yield();
    goro_once_do(r->once, slow_init, r);
    CHECKF(r->value == 42, "goro_once_do returned before the function finished");
    CHECK_EQ(atomic_load(&r->calls), 1);
    goro_once_do(r->once, must_not_run, r);
    CHECK_EQ(atomic_load(&r->calls), 1);
    atomic_fetch_add(&r->checked, 1);
    goro_wg_done(&wg);
}

static void set_flag(void *arg) {
    (*(int *)arg)++;
}

static void test_main(void *arg) {
    (void)arg;
    static goro_once static_once = GORO_ONCE_INIT;
    int flag = 0;
    goro_once_do(&static_once, set_flag, &flag);
    goro_once_do(&static_once, set_flag, &flag);
    CHECK_EQ(flag, 1);

    long rounds = tu_scaled(50, 5);
    for (long k = 0; k < rounds; k++) {
        once_round r = {.once = calloc(1, sizeof(goro_once))};
        CHECK(r.once != NULL);
        goro_wg_add(&wg, N);
        for (int i = 0; i < N; i++)
            CHECK(goro_spawn(caller, &r) == 0);
        goro_wg_wait(&wg);
        CHECK_EQ(atomic_load(&r.checked), N);
        CHECK_EQ(atomic_load(&r.calls), 1);
        CHECK_EQ(r.value, 42);
        free(r.once);
    }
    printf("%ld rounds of %d concurrent callers: one call each round\n", rounds, N);
}

int main(void) {
    int rc = goro_run(NULL, test_main, NULL);
    CHECKF(rc == 0, "goro_run: %s", goro_strerror(rc));
    return tu_pass("sync_once");
}
