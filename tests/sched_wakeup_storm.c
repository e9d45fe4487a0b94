/*
 * sched_wakeup_storm: no wakeup is ever lost under a storm of park/unpark on two Ps.
 *
 * Part 1, ping-pong: pairs of goroutines pass a ball back and forth. Each player waits for
 * the ball by locking its own goro_mutex (used as a binary semaphore: it starts locked and
 * the other player unlocks it, which goro_mutex allows), bumps a shared value, and passes
 * the ball by unlocking the other player's mutex. Now and then a player sleeps 0-50 us or
 * yields first, so threads go idle and have to be woken.
 *
 * Part 2, broadcast: N goroutines go through R rounds; in round r each parks on gate[r],
 * which main opens with one goro_wg_done, then reports on arrive[r], which main waits on.
 *
 * A lost wakeup leaves goroutines parked forever and the test hangs (the CTest timeout
 * fails it); every count and every value handed over is checked as well.
 */
#include "testutil.h"

#include <stdatomic.h>

#define PAIRS 32
#define BCAST_N 64

/* ---------------------------------------------------------------- ping-pong */

typedef struct pair {
    goro_mutex ball[2]; /* ball[p] locked: player p does not have the ball */
    long value;         /* handed over with the ball: protected by whoever holds it */
    long rounds;
    long moves[2];
    uint64_t rng[2];
} pair;

static pair pairs[PAIRS];
static goro_waitgroup players_wg = GORO_WAITGROUP_INIT;
static _Atomic long sleeps;

static void maybe_pause(uint64_t *rng) {
    uint64_t r = tu_rand(rng);
    switch (r % 16) {
    case 0:
    case 1:
        atomic_fetch_add_explicit(&sleeps, 1, memory_order_relaxed);
        goro_sleep((int64_t)(r >> 8) % (50 * TU_US + 1)); /* 0-50 us */
        break;
    case 2:
        goro_yield();
        break;
    default:
        break;
    }
}

static void player(void *arg) {
    uintptr_t id = (uintptr_t)arg;
    pair *pr = &pairs[id / 2];
    int p = (int)(id % 2);
    for (long r = 0; r < pr->rounds; r++) {
        if (!(p == 0 && r == 0))
            goro_mutex_lock(&pr->ball[p]); /* wait for the ball */
        CHECKF(pr->value == 2 * r + p, "pair %lu player %d round %ld: value %ld, want %ld",
               (unsigned long)(id / 2), p, r, pr->value, 2 * r + p);
        pr->value++;
        pr->moves[p]++;
        maybe_pause(&pr->rng[p]);
        if (!(p == 1 && r == pr->rounds - 1))
            goro_mutex_unlock(&pr->ball[1 - p]); /* pass it */
    }
    goro_wg_done(&players_wg);
}

static void ping_pong(long rounds) {
    goro_wg_add(&players_wg, 2 * PAIRS);
    for (int i = 0; i < PAIRS; i++) {
        pair *pr = &pairs[i];
        memset(pr, 0, sizeof *pr);
        pr->rounds = rounds;
        pr->rng[0] = 2u * (uint64_t)i + 1;
        pr->rng[1] = 2u * (uint64_t)i + 2;
        /* Both start without the ball; player 0 serves. */
        CHECK(goro_mutex_trylock(&pr->ball[0]) == 1);
        CHECK(goro_mutex_trylock(&pr->ball[1]) == 1);
    }
    for (uintptr_t id = 0; id < 2 * PAIRS; id++)
        CHECK(goro_spawn(player, (void *)id) == 0);
    goro_wg_wait(&players_wg);
    for (int i = 0; i < PAIRS; i++) {
        pair *pr = &pairs[i];
        CHECK_EQ(pr->value, 2 * rounds);
        CHECK_EQ(pr->moves[0], rounds);
        CHECK_EQ(pr->moves[1], rounds);
        /* Each ball ends where it started: held, i.e. locked. */
        CHECK(goro_mutex_trylock(&pr->ball[0]) == 0);
        CHECK(goro_mutex_trylock(&pr->ball[1]) == 0);
    }
}

/* ---------------------------------------------------------------- broadcast */

static long bcast_rounds;
static goro_waitgroup *gate, *arrive;
static _Atomic long *arrived;
static goro_waitgroup bcast_wg = GORO_WAITGROUP_INIT;

static void follower(void *arg) {
    uint64_t rng = (uint64_t)(uintptr_t)arg * 7919u + 1;
    for (long r = 0; r < bcast_rounds; r++) {
        goro_wg_wait(&gate[r]);
        atomic_fetch_add_explicit(&arrived[r], 1, memory_order_relaxed);
        maybe_pause(&rng);
        goro_wg_done(&arrive[r]);
    }
    goro_wg_done(&bcast_wg);
}

static void broadcast(long rounds) {
    bcast_rounds = rounds;
    gate = calloc((size_t)rounds, sizeof *gate);
    arrive = calloc((size_t)rounds, sizeof *arrive);
    arrived = calloc((size_t)rounds, sizeof *arrived);
    CHECK(gate != NULL && arrive != NULL && arrived != NULL);
    for (long r = 0; r < rounds; r++) {
        goro_wg_add(&gate[r], 1);
        goro_wg_add(&arrive[r], BCAST_N);
    }
    goro_wg_add(&bcast_wg, BCAST_N);
    for (uintptr_t i = 0; i < BCAST_N; i++)
        CHECK(goro_spawn(follower, (void *)i) == 0);
    for (long r = 0; r < rounds; r++) {
        if (r % 3 == 0)
            goro_yield(); /* let some followers reach the gate, leave others on their way */
        goro_wg_done(&gate[r]);
        goro_wg_wait(&arrive[r]);
        CHECKF(atomic_load(&arrived[r]) == BCAST_N, "round %ld: %ld of %d arrived", r,
               atomic_load(&arrived[r]), BCAST_N);
    }
    goro_wg_wait(&bcast_wg);
    free(gate);
    free(arrive);
    free((void *)arrived);
}

static void test_main(void *arg) {
    (void)arg;
    CHECK_EQ(goro_maxprocs(0), 2);
    long rounds = tu_scaled(3000, 200);
    int64_t t0 = goro_now();
    ping_pong(rounds);
    int64_t t1 = goro_now();
    long brounds = tu_scaled(400, 40);
    broadcast(brounds);
    int64_t t2 = goro_now();

    goro_stats st;
    goro_stats_get(&st);
    printf("ping-pong: %d pairs x %ld rounds in %.0f ms; broadcast: %d goroutines x %ld rounds "
           "in %.0f ms; %ld sleeps; threads %lld, switches %llu\n",
           PAIRS, rounds, (double)(t1 - t0) / 1e6, BCAST_N, brounds, (double)(t2 - t1) / 1e6,
           atomic_load(&sleeps), (long long)st.threads, (unsigned long long)st.switches);
}

int main(void) {
    goro_config cfg = {.maxprocs = 2};
    int rc = goro_run(&cfg, test_main, NULL);
    CHECKF(rc == 0, "goro_run: %s", goro_strerror(rc));
    return tu_pass("sched_wakeup_storm");
}
