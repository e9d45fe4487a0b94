/*
 * sync_waitgroup: goro_waitgroup releases waiters exactly when the counter reaches zero.
 *
 *  - wait on a zero counter returns at once;
 *  - wait returns only after every done (each worker publishes before its done, and the
 *    waiter sees every publication);
 *  - several waiters on one group are all released;
 *  - add with deltas other than 1, negative adds, adds by goroutines while the counter is
 *    above zero (a worker spawning a sub-worker);
 *  - the group is reused for many rounds once the previous wait has returned everywhere;
 *  - groups on main's stack go out of scope right after their wait returns (as in Go, the
 *    last goro_wg_done must not touch the group once the waiter can go on).
 */
#include "testutil.h"

#include <stdatomic.h>

#define WORKERS 50
#define WAITERS 8

static goro_waitgroup wg = GORO_WAITGROUP_INIT;
static _Atomic int finished;      /* workers that have published */
static long results[WORKERS * 2]; /* written by workers before done, read after wait */

static void worker(void *arg) {
    int i = (int)(intptr_t)arg;
    if (i % 3 == 0)
        goro_yield();
    else if (i % 3 == 1)
        goro_sleep((int64_t)(i % 7) * 20 * TU_US);
    results[i] = (long)i * i;
    atomic_fetch_add(&finished, 1);
    goro_wg_done(&wg);
}

/* Adds a sub-worker to the group while the counter is still held above zero by itself. */
static void parent_worker(void *arg) {
    int i = (int)(intptr_t)arg;
    goro_wg_add(&wg, 1);
    CHECK(goro_spawn(worker, (void *)(intptr_t)(WORKERS + i)) == 0);
    results[i] = (long)i * i;
    atomic_fetch_add(&finished, 1);
    goro_wg_done(&wg);
}

typedef struct waiter_arg {
    goro_waitgroup *group;
    goro_waitgroup *released;
    _Atomic int *count;
    int expect_finished;
} waiter_arg;

static void waiter(void *arg) {
    waiter_arg *w = arg;
    goro_wg_wait(w->group);
    int f = atomic_load(&finished);
    CHECKF(f == w->expect_finished, "a waiter was released with %d of %d workers finished", f,
           w->expect_finished);
    atomic_fetch_add(w->count, 1);
    goro_wg_done(w->released);
}

static void round_trip(int round) {
    memset(results, 0, sizeof results);
    atomic_store(&finished, 0);

    /* Counter set in mixed steps before any worker can finish: +WORKERS+10, -10 for the
     * first-level workers, +WORKERS/2 for main's second-level ones. (The odd workers add
     * their own sub-worker while they still hold the counter above zero.) */
    goro_wg_add(&wg, WORKERS + 10);
    goro_wg_add(&wg, -10);
    goro_wg_add(&wg, WORKERS / 2);

    goro_waitgroup released = GORO_WAITGROUP_INIT;
    _Atomic int nreleased = 0;
    waiter_arg wa = {&wg, &released, &nreleased, WORKERS * 2};
    int nwaiters = round % 2 == 0 ? WAITERS : 1;
    goro_wg_add(&released, nwaiters);
    for (int k = 0; k < nwaiters; k++)
        CHECK(goro_spawn(waiter, &wa) == 0);

    for (int i = 0; i < WORKERS; i++) {
        if (i % 2 == 0)
            CHECK(goro_spawn(worker, (void *)(intptr_t)i) == 0);
        else
            CHECK(goro_spawn(parent_worker, (void *)(intptr_t)i) == 0);
    }
    /* Odd workers each spawn a sub-worker; main fills the even ones' partner slots. */
    for (int i = 0; i < WORKERS; i += 2)
        CHECK(goro_spawn(worker, (void *)(intptr_t)(WORKERS + i)) == 0);

    goro_wg_wait(&wg);
    CHECKF(atomic_load(&finished) == WORKERS * 2,
           "round %d: wait returned with %d of %d workers finished", round, atomic_load(&finished),
           WORKERS * 2);
    for (int i = 0; i < WORKERS * 2; i++)
        CHECKF(results[i] == (long)i * i, "round %d: result %d not visible after wait", round, i);

    /* Every waiter is released too; only then may the group be reused. */
    goro_wg_wait(&released);
    CHECK_EQ(atomic_load(&nreleased), nwaiters);
}

static void test_main(void *arg) {
    (void)arg;
    /* Zero counter: wait returns at once, however often. */
    goro_waitgroup zero = GORO_WAITGROUP_INIT;
    for (int i = 0; i < 3; i++)
        goro_wg_wait(&zero);

    /* done from main itself. */
    goro_waitgroup self = GORO_WAITGROUP_INIT;
    goro_wg_add(&self, 2);
    goro_wg_done(&self);
    goro_wg_add(&self, -1);
    goro_wg_wait(&self);

    int rounds = (int)tu_scaled(200, 20);
    int64_t t0 = goro_now();
    for (int r = 0; r < rounds; r++)
        round_trip(r);
    printf("%d rounds of %d workers and up to %d waiters on %d Ps in %.0f ms\n", rounds,
           WORKERS * 2, WAITERS, goro_maxprocs(0), (double)(goro_now() - t0) / 1e6);
}

int main(void) {
    int rc = goro_run(NULL, test_main, NULL);
    CHECKF(rc == 0, "goro_run: %s", goro_strerror(rc));
    return tu_pass("sync_waitgroup");
}
