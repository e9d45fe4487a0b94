/*
 * sync_mutex_starvation: a waiter is not starved by a goroutine that keeps relocking.
 *
 * A hog goroutine locks and unlocks a mutex in a tight loop, holding it briefly each time
 * (variant 1: it sleeps 10 us while holding it; variant 2: it computes ~20 us and yields
 * while holding it). In both variants the hog relocks right after unlocking, while the
 * woken waiter is still getting back onto a CPU, so without starvation mode the waiter
 * almost never wins. goro promises that a waiter passed over for more than 1 ms switches
 * the mutex to starvation mode and gets it handed over; the victim must get it within
 * BOUND_MS each time, generous for sanitizers and a busy machine.
 */
#include "testutil.h"

#include <stdatomic.h>

#define BOUND_MS 250
#define TRIES 5
#define HOG_GIVE_UP_NS (15 * 1000 * TU_MS)

static goro_mutex mu = GORO_MUTEX_INIT;
static _Atomic int stop;
static _Atomic long hog_rounds;
static int variant;
static goro_waitgroup wg = GORO_WAITGROUP_INIT;

static void spin_for(int64_t ns) {
    int64_t t0 = goro_now();
    while (goro_now() - t0 < ns) {
    }
}

static void hog(void *arg) {
    (void)arg;
    int64_t give_up = goro_now() + HOG_GIVE_UP_NS;
    while (!atomic_load(&stop)) {
        goro_mutex_lock(&mu);
        if (variant == 1) {
            goro_sleep(10 * TU_US);
        } else {
            spin_for(20 * TU_US);
            goro_yield();
        }
        goro_mutex_unlock(&mu);
        atomic_fetch_add_explicit(&hog_rounds, 1, memory_order_relaxed);
        /* Failsafe so that a runtime without starvation mode fails below with a message
         * instead of hanging until the CTest timeout. */
        if (goro_now() > give_up)
            break;
    }
    goro_wg_done(&wg);
}

static void victim(void *arg) {
    int64_t *worst = arg;
    /* Let the hog get going first. */
    while (atomic_load(&hog_rounds) < 50)
        goro_yield();
    for (int t = 0; t < TRIES; t++) {
        long before = atomic_load(&hog_rounds);
        int64_t t0 = goro_now();
        goro_mutex_lock(&mu);
        int64_t waited = goro_now() - t0;
        goro_mutex_unlock(&mu);
        if (waited > *worst)
            *worst = waited;
        printf("variant %d try %d: waited %.3f ms while the hog relocked %ld times\n", variant, t,
               (double)waited / 1e6, atomic_load(&hog_rounds) - before);
        goro_sleep(100 * TU_US);
    }
    atomic_store(&stop, 1);
    goro_wg_done(&wg);
}

static void test_main(void *arg) {
    (void)arg;
    for (variant = 1; variant <= 2; variant++) {
        atomic_store(&stop, 0);
        atomic_store(&hog_rounds, 0);
        int64_t worst = 0;
        goro_wg_add(&wg, 2);
        CHECK(goro_spawn(hog, NULL) == 0);
        CHECK(goro_spawn(victim, &worst) == 0);
        goro_wg_wait(&wg);
        CHECKF(worst < BOUND_MS * TU_MS,
               "variant %d on %d Ps: a waiter waited %.1f ms for a mutex the hog kept "
               "relocking (bound %d ms; starvation mode should hand it over after 1 ms)",
               variant, goro_maxprocs(0), (double)worst / 1e6, BOUND_MS);
        CHECK(goro_mutex_trylock(&mu) == 1);
        goro_mutex_unlock(&mu);
    }
}

int main(void) {
    int rc = goro_run(NULL, test_main, NULL);
    CHECKF(rc == 0, "goro_run: %s", goro_strerror(rc));
    return tu_pass("sync_mutex_starvation");
}
