/*
 * gdb_goroutines: the program tests/gdb_goroutines.sh debugs with tools/gdb/goro.py.
 *
 * With GORO_MAXPROCS=1 it parks one goroutine in each of several states, each in a
 * function of its own that the backtrace must show, and then calls
 * goro_test_stop_here(), where gdb has a breakpoint:
 *   wait_recv      chan receive       wait_mutex  mutex (main holds it)
 *   wait_sleep     sleep (an hour)    wait_select select on two silent channels
 *   wait_group     waitgroup          keep_yielding  runnable, switched out in goro_yield
 *   never_started  runnable, spawned just before the stop, never run
 * and main itself is running. The receiver, the mutex waiter and the wait group waiter
 * are compacted by then (compact_after 1 ms), so gdb reads their frames from the copies
 * of their stacks. Run without gdb, it releases everyone and exits 0.
 */
#include "testutil.h"

#define NWAITERS 5 /* the goroutines that park */

static goro_chan *ch_recv, *ch_sel_a, *ch_sel_b;
static goro_mutex mu = GORO_MUTEX_INIT;
static goro_waitgroup wg_block = GORO_WAITGROUP_INIT;
static goro_waitgroup finished = GORO_WAITGROUP_INIT;
static int arrived, stop, woke;

/* Called by main once everyone is in place; gdb stops here. */
__attribute__((noinline)) void goro_test_stop_here(void);
__attribute__((noinline)) void goro_test_stop_here(void) {
    __asm__ volatile("" ::: "memory");
}

static void arrive(void) {
    __atomic_add_fetch(&arrived, 1, __ATOMIC_RELAXED);
}

__attribute__((noinline)) static void wait_recv(void *arg) {
    (void)arg;
    arrive();
    CHECK(goro_chan_recv(ch_recv, NULL) == GORO_ECLOSED);
    goro_wg_done(&finished);
}

__attribute__((noinline)) static void wait_mutex(void *arg) {
    (void)arg;
    arrive();
    goro_mutex_lock(&mu);
    goro_mutex_unlock(&mu);
    goro_wg_done(&finished);
}

__attribute__((noinline)) static void wait_sleep(void *arg) {
    (void)arg;
    arrive();
    /* An hour, unless the program is done first (main does not wait for it). The store
     * after the call keeps this frame on the stack (no tail call). */
    goro_sleep(3600 * (int64_t)1000000000);
    __atomic_store_n(&woke, 1, __ATOMIC_RELAXED);
}

__attribute__((noinline)) static void wait_select(void *arg) {
    (void)arg;
    goro_case cases[2] = {{.chan = ch_sel_a, .op = GORO_RECV}, {.chan = ch_sel_b, .op = GORO_RECV}};
    arrive();
    CHECK(goro_select(cases, 2, GORO_FOREVER) >= 0);
    goro_wg_done(&finished);
}

__attribute__((noinline)) static void wait_group(void *arg) {
    (void)arg;
    arrive();
    goro_wg_wait(&wg_block);
    goro_wg_done(&finished);
}

__attribute__((noinline)) static void keep_yielding(void *arg) {
    (void)arg;
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED))
        goro_yield();
    goro_wg_done(&finished);
}

__attribute__((noinline)) static void never_started(void *arg) {
    (void)arg;
    goro_wg_done(&finished);
}

static void main_fn(void *arg) {
    (void)arg;
    CHECK(goro_chan_make(&ch_recv, sizeof(int), 0) == 0);
    CHECK(goro_chan_make(&ch_sel_a, sizeof(int), 0) == 0);
    CHECK(goro_chan_make(&ch_sel_b, sizeof(int), 0) == 0);
    goro_mutex_lock(&mu);
    goro_wg_add(&wg_block, 1);
    goro_wg_add(&finished, 6);
    goro_attr named = {.stack_size = 0, .name = "receiver"};
    CHECK(goro_spawn_attr(&named, wait_recv, NULL) == 0);
    CHECK(goro_spawn(wait_mutex, NULL) == 0);
    CHECK(goro_spawn(wait_sleep, NULL) == 0);
    CHECK(goro_spawn(wait_select, NULL) == 0);
    CHECK(goro_spawn(wait_group, NULL) == 0);
    CHECK(goro_spawn(keep_yielding, NULL) == 0);
    /* With one P, each yield lets every runnable goroutine run once: the waiters park
     * (they counted themselves just before) and keep_yielding goes round. Two more
     * rounds after the count is complete leave the last arrival parked. */
    for (long i = 0; __atomic_load_n(&arrived, __ATOMIC_RELAXED) < NWAITERS; i++) {
        CHECKF(i < 1000000, "only %d goroutines arrived", arrived);
        goro_yield();
    }
    goro_yield();
    goro_yield();
    /* The receiver, the mutex waiter and the wait group waiter are compacted (their
     * stacks' bytes set aside, src/compact.c): gdb reads their frames from the copies.
     * Wait for all three, so the compactor is idle when gdb looks. */
    goro_stats st;
    int64_t deadline = goro_now() + 20 * (int64_t)1000000000;
    do {
        goro_yield();
        goro_stats_get(&st);
        CHECKF(goro_now() < deadline, "only %lld goroutines compacted", (long long)st.compacted);
    } while (st.compacted < 3);
    CHECK(goro_spawn(never_started, NULL) == 0);
    goro_test_stop_here();

    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    CHECK(goro_chan_close(ch_recv) == 0);
    CHECK(goro_chan_close(ch_sel_a) == 0);
    goro_mutex_unlock(&mu);
    goro_wg_done(&wg_block);
    goro_wg_wait(&finished);
    goro_chan_release(ch_recv);
    goro_chan_release(ch_sel_a);
    goro_chan_release(ch_sel_b);
}

int main(void) {
    goro_config cfg = {.compact_after = 1000000};
    CHECK(goro_run(&cfg, main_fn, NULL) == 0);
    return tu_pass("gdb_goroutines");
}
