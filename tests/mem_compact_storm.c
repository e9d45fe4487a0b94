/*
 * mem_compact_storm.c - park and wake around the compaction threshold lose nothing.
 *
 * With compact_after = 1 ns every parked goroutine is due at the monitor's next round, so
 * compactions race with wakes all the time. Pairs of goroutines pass sequence numbers
 * through unbuffered channels (the receiver's destination and the sender's source are on
 * their stacks), pausing now and then so that partners stay parked across a round;
 * others take turns on a mutex and meet at a wait group. Every value arrives once and in
 * order, every local survives, and the statistics show that compactions and restores
 * happened while it ran: it goes on (bounded) until the compactor has taken goroutines
 * mid-storm, however slowly the monitor comes round on a loaded machine.
 */
#include "testutil.h"

#define PAIRS 16
#define LOCKERS 8

#define STOP UINT64_MAX /* the pinger's last value */

static long rounds; /* at least this many exchanges per pair, lock holds per locker */
static int stop;    /* [atomic] main saw enough compactions */
static goro_mutex mu;
static long counter;         /* guarded by mu */
static long locked;          /* [atomic] lock holds, compared with counter at the end */
static goro_waitgroup *done; /* on the heap: nobody touches another goroutine's stack */

typedef struct pair {
    goro_chan *ping, *pong;
    uint64_t seed;
} pair;

static void maybe_pause(uint64_t *rng) {
    uint64_t r = tu_rand(rng) % 64;
    if (r == 0)
        goro_sleep((int64_t)(tu_rand(rng) % 3000) * TU_US);
    else if (r < 4)
        goro_yield();
}

static int go_on(long i) {
    return i < rounds || !__atomic_load_n(&stop, __ATOMIC_RELAXED);
}

static void pinger(void *arg) {
    pair *p = arg;
    uint64_t rng = p->seed;
    volatile uint64_t canary = p->seed ^ 0xABCDEF;
    long i;
    for (i = 0; go_on(i); i++) {
        uint64_t out = (uint64_t)i * 2, in = 0;
        CHECK_EQ(goro_chan_send(p->ping, &out), 0);
        CHECK_EQ(goro_chan_recv(p->pong, &in), 0);
        CHECKF(in == (uint64_t)i * 2 + 1, "round %ld: got %llu", i, (unsigned long long)in);
        CHECK_EQ(canary, p->seed ^ 0xABCDEF);
        maybe_pause(&rng);
    }
    uint64_t last = STOP;
    CHECK_EQ(goro_chan_send(p->ping, &last), 0);
    goro_wg_done(done);
}

static void ponger(void *arg) {
    pair *p = arg;
    uint64_t rng = p->seed * 3 + 1;
    volatile uint64_t canary = p->seed ^ 0x123456;
    for (long i = 0;; i++) {
        uint64_t in = 0;
        CHECK_EQ(goro_chan_recv(p->ping, &in), 0);
        if (in == STOP) {
            CHECK(i >= rounds);
            break;
        }
        CHECKF(in == (uint64_t)i * 2, "round %ld: got %llu", i, (unsigned long long)in);
        maybe_pause(&rng);
        uint64_t out = in + 1;
        CHECK_EQ(goro_chan_send(p->pong, &out), 0);
        CHECK_EQ(canary, p->seed ^ 0x123456);
    }
    goro_wg_done(done);
}

static void locker(void *arg) {
    uint64_t rng = (uint64_t)(uintptr_t)arg;
    volatile uint64_t canary = rng * 7;
    for (long i = 0; go_on(i); i++) {
        goro_mutex_lock(&mu);
        counter++;
        if (tu_rand(&rng) % 16 == 0)
            goro_sleep(1 * TU_MS); /* others wait long enough to be compacted */
        goro_mutex_unlock(&mu);
        __atomic_add_fetch(&locked, 1, __ATOMIC_RELAXED);
        CHECK_EQ(canary, (uint64_t)(uintptr_t)arg * 7);
    }
    goro_wg_done(done);
}

static void main_fn(void *arg) {
    (void)arg;
    rounds = tu_scaled(1000, 100);
    done = calloc(1, sizeof *done);
    CHECK(done != NULL);
    pair *pairs = calloc(PAIRS, sizeof *pairs);
    CHECK(pairs != NULL);
    goro_wg_add(done, 2 * PAIRS + LOCKERS);
    for (int i = 0; i < PAIRS; i++) {
        CHECK_EQ(goro_chan_make(&pairs[i].ping, sizeof(uint64_t), 0), 0);
        CHECK_EQ(goro_chan_make(&pairs[i].pong, sizeof(uint64_t), 0), 0);
        pairs[i].seed = (uint64_t)i + 1;
        CHECK_EQ(goro_spawn(pinger, &pairs[i]), 0);
        CHECK_EQ(goro_spawn(ponger, &pairs[i]), 0);
    }
    for (int i = 0; i < LOCKERS; i++)
        CHECK_EQ(goro_spawn(locker, (void *)(uintptr_t)(i + 100)), 0);
    /* Until the compactor has taken (and the storm woken) a good number of goroutines. */
    goro_stats st;
    int64_t deadline = goro_now() + 60000 * TU_MS;
    do {
        goro_sleep(20 * TU_MS);
        goro_stats_get(&st);
        CHECKF(goro_now() < deadline, "only %llu compactions in 60 s",
               (unsigned long long)st.compactions);
    } while (st.restores < 100);
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    goro_wg_wait(done);
    goro_mutex_lock(&mu);
    CHECK_EQ(counter, __atomic_load_n(&locked, __ATOMIC_RELAXED));
    goro_mutex_unlock(&mu);
    goro_stats_get(&st);
    printf("%llu compactions, %llu restores, %llu system calls\n",
           (unsigned long long)st.compactions, (unsigned long long)st.restores,
           (unsigned long long)st.compact_syscalls);
    CHECK(st.compactions > 0);
    CHECK_EQ(st.compacted, 0);
    CHECK_EQ(st.restores, st.compactions);
    for (int i = 0; i < PAIRS; i++) {
        goro_chan_release(pairs[i].ping);
        goro_chan_release(pairs[i].pong);
    }
    free(pairs);
    free(done);
}

int main(void) {
    goro_config cfg = {.compact_after = 1};
    CHECK_EQ(goro_run(&cfg, main_fn, NULL), 0);
    return tu_pass("mem_compact_storm");
}
