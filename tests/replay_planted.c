/*
 * replay_planted.c - a program with a planted ordering bug, for tests/replay_shake.sh.
 *
 * One item in stock, two buyers. Each buyer checks the stock, then (as if it asked a
 * pricing service) waits for a price on a channel, then takes the item: a check-then-act
 * race across a park. The item is sold twice only when both buyers check before either
 * takes it, which depends on the interleaving: with the normal scheduler on one P the
 * order is always the same, in deterministic mode some seeds sell it twice. Every access
 * to the counters is atomic, so the race detector (-DGORO_SANITIZE=race) has no data race
 * to report: the bug is in the order of the operations, which only a schedule shows.
 *
 * Prints each step on stdout; on a double sale it prints "BUG: ..." on stderr and exits
 * with status 1.
 */
#include "testutil.h"

static int stock = 1; /* atomic accesses only (relaxed: the order is the bug) */
static int sold;      /* likewise */
static goro_chan *prices;
static goro_waitgroup wg;

static void buyer(void *arg) {
    long id = (long)arg;
    int seen = __atomic_load_n(&stock, __ATOMIC_RELAXED);
    if (seen > 0) {
        printf("buyer %ld sees %d in stock\n", id, seen);
        int price;
        CHECK(goro_chan_recv(prices, &price) == 0); /* parks: others may run */
        int left = __atomic_sub_fetch(&stock, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&sold, 1, __ATOMIC_RELAXED);
        printf("buyer %ld buys at %d, stock now %d\n", id, price, left);
    } else {
        printf("buyer %ld finds it sold out\n", id);
    }
    goro_wg_done(&wg);
}

static void pricing(void *arg) {
    (void)arg;
    for (int price = 10; price < 12; price++)
        if (goro_chan_send_dl(prices, &price, goro_now() + 1000000) != 0)
            break; /* nobody asked within a millisecond: done */
}

static void main_g(void *arg) {
    (void)arg;
    CHECK(goro_chan_make(&prices, sizeof(int), 0) == 0);
    goro_wg_add(&wg, 2);
    CHECK(goro_spawn(pricing, NULL) == 0);
    CHECK(goro_spawn(buyer, (void *)1L) == 0);
    CHECK(goro_spawn(buyer, (void *)2L) == 0);
    goro_wg_wait(&wg);
    int n = __atomic_load_n(&sold, __ATOMIC_RELAXED),
        left = __atomic_load_n(&stock, __ATOMIC_RELAXED);
    printf("sold %d, stock %d\n", n, left);
    fflush(stdout);
    if (left < 0) {
        fprintf(stderr, "BUG: one item sold %d times\n", n);
        exit(1);
    }
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    CHECK(goro_run(NULL, main_g, NULL) == 0);
    return 0;
}
