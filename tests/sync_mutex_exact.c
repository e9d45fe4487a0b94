/*
 * sync_mutex_exact: goro_mutex gives mutual exclusion under contention.
 *
 * K goroutines each add N times to plain (non-atomic) counters under one mutex, some
 * taking it with goro_mutex_trylock, some yielding or sleeping while holding it so that
 * others park on it. The counters must equal the sum, and no two goroutines may ever be
 * inside at once (checked with an atomic "inside" flag). Also: trylock semantics, unlock by
 * another goroutine than the locker, and an all-zero mutex in heap memory.
 */
#include "testutil.h"

#include <stdatomic.h>

#define K 16

static goro_mutex mu = GORO_MUTEX_INIT;
static long counter;  /* protected by mu */
static long weighted; /* protected by mu: sum of the adders' numbers */
static _Atomic int inside;
static long per_goroutine;
static goro_waitgroup wg = GORO_WAITGROUP_INIT;

static void enter(void) {
    int was = atomic_exchange(&inside, 1);
    CHECKF(was == 0, "two goroutines inside the mutex at once");
}

static void leave(void) {
    int was = atomic_exchange(&inside, 0);
    CHECKF(was == 1, "inside flag cleared by someone else");
}

static void worker(void *arg) {
    int me = (int)(intptr_t)arg;
    uint64_t rng = (uint64_t)me + 1;
    for (long i = 0; i < per_goroutine; i++) {
        uint64_t r = tu_rand(&rng);
        if (me % 4 == 3) {
            /* A trylock user: spins with yields until it gets the mutex. */
            while (!goro_mutex_trylock(&mu))
                goro_yield();
        } else {
            goro_mutex_lock(&mu);
        }
        enter();
        long c = counter;
        if (r % 64 == 0)
            goro_yield(); /* hold it across a reschedule: others must park */
        else if (r % 512 == 1)
            goro_sleep((int64_t)(r >> 20) % (20 * TU_US));
        counter = c + 1;
        weighted += me;
        leave();
        goro_mutex_unlock(&mu);
    }
    goro_wg_done(&wg);
}

typedef struct handoff {
    goro_mutex *m;
    int trylock_result;
    goro_waitgroup done;
} handoff;

static void try_from_other(void *arg) {
    handoff *h = arg;
    h->trylock_result = goro_mutex_trylock(h->m);
    goro_wg_done(&h->done);
}

static void unlock_from_other(void *arg) {
    handoff *h = arg;
    goro_mutex_unlock(h->m);
    goro_wg_done(&h->done);
}

static void semantics(void) {
    /* A heap mutex of zero bytes is unlocked. */
    goro_mutex *m = calloc(1, sizeof *m);
    CHECK(m != NULL);
    CHECK(goro_mutex_trylock(m) == 1);
    CHECK(goro_mutex_trylock(m) == 0); /* held, even by ourselves */
    handoff h = {.m = m, .trylock_result = -1};
    goro_wg_add(&h.done, 1);
    CHECK(goro_spawn(try_from_other, &h) == 0);
    goro_wg_wait(&h.done);
    CHECKF(h.trylock_result == 0, "trylock of a held mutex returned %d", h.trylock_result);

    /* Unlocked by another goroutine, it can be taken again. */
    goro_wg_add(&h.done, 1);
    CHECK(goro_spawn(unlock_from_other, &h) == 0);
    goro_wg_wait(&h.done);
    CHECK(goro_mutex_trylock(m) == 1);
    goro_mutex_unlock(m);
    goro_mutex_lock(m);
    goro_mutex_unlock(m);

    /* After an unlock, another goroutine's trylock succeeds. */
    h.trylock_result = -1;
    goro_wg_add(&h.done, 1);
    CHECK(goro_spawn(try_from_other, &h) == 0);
    goro_wg_wait(&h.done);
    CHECK_EQ(h.trylock_result, 1);
    goro_mutex_unlock(m);
    free(m);
}

static void test_main(void *arg) {
    (void)arg;
    semantics();

    int64_t t0 = goro_now();
    goro_wg_add(&wg, K);
    for (int k = 0; k < K; k++)
        CHECK(goro_spawn(worker, (void *)(intptr_t)k) == 0);
    goro_wg_wait(&wg);
    int64_t t1 = goro_now();

    goro_mutex_lock(&mu);
    CHECKF(counter == K * per_goroutine, "counter %ld, want %ld: increments were lost", counter,
           K * per_goroutine);
    CHECK_EQ(weighted, per_goroutine * (K * (K - 1) / 2));
    goro_mutex_unlock(&mu);
    CHECK(goro_mutex_trylock(&mu) == 1);
    goro_mutex_unlock(&mu);
    printf("%d goroutines x %ld locked increments on %d Ps in %.0f ms\n", K, per_goroutine,
           goro_maxprocs(0), (double)(t1 - t0) / 1e6);
}

int main(void) {
    per_goroutine = tu_scaled(20000, 500);
    int rc = goro_run(NULL, test_main, NULL);
    CHECKF(rc == 0, "goro_run: %s", goro_strerror(rc));
    CHECK_EQ(counter, K * per_goroutine);
    return tu_pass("sync_mutex_exact");
}
