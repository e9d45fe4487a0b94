/*
 * sched_overflow: a goroutine woken while its P's run queue is full is not sent behind
 * the global queue's backlog.
 *
 * White-box, one P, so that the queues hold still while main fills them:
 *  1. NWAKE waiters park, each receiving from a channel of its own.
 *  2. main spawns goroutines that only count themselves until the P's ring is full
 *     (GORO__RUNQ_SIZE) and at least BACKLOG of them wait in the global queue.
 *  3. main wakes the waiters one after another with a send each. Each wake puts the
 *     waiter in runnext and pushes the one woken before it into the ring, which runs full
 *     twice: the first overflow moves half of the spawned goroutines to the global queue,
 *     the second, a waiter or so later, the other half (NWAKE is below the third).
 *  4. Every waiter, when it runs, notes how many spawned goroutines ran before it. None
 *     may have waited behind the global backlog: fewer than BACKLOG / 2 ran before any of
 *     them. When an overflow sent the goroutine being queued to the global queue along
 *     with the older half (as Go's runqputslow does), the waiter displaced at the second
 *     overflow ran after the whole backlog: bench/sleepers on 2 Ps saw a 1 ms sleep end
 *     95 ms late that way.
 */
#include "testutil.h"

#include <stdatomic.h>

#include "atomic.h"
#include "internal.h"

#define NWAKE 200
#define BACKLOG 5000

static goro_chan *wake[NWAKE];
static long ran_before[NWAKE];
/* Atomic although one P never runs two goroutines at once: nothing else orders the
 * goroutines' accesses, and the race build (rightly) says so. */
static atomic_long backlog_ran;
static goro_waitgroup parked = GORO_WAITGROUP_INIT, all_done = GORO_WAITGROUP_INIT;

static void waiter(void *arg) {
    int i = (int)(intptr_t)arg;
    int v;
    goro_wg_done(&parked);
    CHECK_EQ(goro_chan_recv(wake[i], &v), 0);
    CHECK_EQ(v, i);
    ran_before[i] = atomic_load_explicit(&backlog_ran, memory_order_relaxed);
    goro_wg_done(&all_done);
}

static void backlog(void *arg) {
    (void)arg;
    atomic_fetch_add_explicit(&backlog_ran, 1, memory_order_relaxed);
    goro_wg_done(&all_done);
}

static void test_main(void *arg) {
    (void)arg;
    CHECK_EQ(goro_maxprocs(0), 1);
    /* 1. */
    goro_wg_add(&parked, NWAKE);
    goro_wg_add(&all_done, NWAKE);
    for (int i = 0; i < NWAKE; i++) {
        CHECK_EQ(goro_chan_make(&wake[i], sizeof(int), 0), 0);
        CHECK_EQ(goro_spawn(waiter, (void *)(intptr_t)i), 0);
    }
    goro_wg_wait(&parked);
    /* 2. The last waiter to run readied main and then parked: all wait in their receive. */
    goro__p *p = goro__getm()->p;
    long spawned = 0;
    while (goro__runq_len(&p->runq) < GORO__RUNQ_SIZE ||
           goro__load_relaxed(&goro__S.runq_size) < BACKLOG) {
        CHECKF(spawned < 100 * BACKLOG, "%ld spawns: ring at %u, global queue at %d", spawned,
               goro__runq_len(&p->runq), (int)goro__load_relaxed(&goro__S.runq_size));
        goro_wg_add(&all_done, 1);
        CHECK_EQ(goro_spawn(backlog, NULL), 0);
        spawned++;
    }
    CHECK_EQ(atomic_load(&backlog_ran), 0);
    long global = goro__load_relaxed(&goro__S.runq_size);
    /* 3. */
    for (int i = 0; i < NWAKE; i++)
        CHECK_EQ(goro_chan_send(wake[i], &i), 0);
    goro_wg_wait(&all_done);
    CHECK_EQ(atomic_load(&backlog_ran), spawned);
    /* 4. */
    long worst = 0;
    int worst_i = 0;
    for (int i = 0; i < NWAKE; i++)
        if (ran_before[i] > worst)
            worst = ran_before[i], worst_i = i;
    printf("%ld spawned, %ld in the global queue; the waiters ran after at most %ld of them "
           "(waiter %d)\n",
           spawned, global, worst, worst_i);
    CHECKF(worst < BACKLOG / 2,
           "waiter %d, woken while the ring was full, ran after %ld of the %ld spawned "
           "goroutines: it waited behind the global queue's backlog",
           worst_i, worst, spawned);
    for (int i = 0; i < NWAKE; i++)
        goro_chan_release(wake[i]);
}

int main(void) {
    goro_config cfg = {.maxprocs = 1};
    CHECK_EQ(goro_run(&cfg, test_main, NULL), 0);
    return tu_pass("sched_overflow");
}
