/*
 * chan_semantics: Go's channel rules, at capacities 0, 1 and 8.
 *
 * Receive on an empty channel and send on a full one wait (deadline forms time out, try
 * forms return GORO_EAGAIN); buffered channels are FIFO; close lets receivers drain and
 * then yields GORO_ECLOSED with zeroed output forever, wakes every blocked goroutine and
 * refuses a second close; blocked senders and receivers are served in the order they
 * blocked; a NULL channel never becomes ready; many producers and consumers deliver every
 * value exactly once.
 */
#include "testutil.h"

#include <stdatomic.h>
#include <string.h>

#define PRODUCERS 4
#define CONSUMERS 4

static const size_t caps[] = {0, 1, 8};

static void check_empty_and_full(size_t cap) {
    goro_chan *c;
    CHECK_EQ(goro_chan_make(&c, sizeof(int), cap), 0);
    CHECK_EQ(goro_chan_cap(c), cap);
    int v = 7;
    CHECK_EQ(goro_chan_recv_dl(c, &v, 0), GORO_EAGAIN);
    int64_t t0 = goro_now();
    CHECK_EQ(goro_chan_recv_dl(c, &v, goro_now() + 2 * TU_MS), GORO_ETIMEDOUT);
    CHECK(goro_now() - t0 >= 2 * TU_MS);
    for (size_t i = 0; i < cap; i++) {
        int x = (int)i;
        CHECK_EQ(goro_chan_send_dl(c, &x, 0), 0);
    }
    CHECK_EQ(goro_chan_len(c), cap);
    CHECK_EQ(goro_chan_send_dl(c, &v, 0), GORO_EAGAIN);
    CHECK_EQ(goro_chan_send_dl(c, &v, goro_now() + TU_MS), GORO_ETIMEDOUT);
    for (size_t i = 0; i < cap; i++) {
        int x = -1;
        CHECK_EQ(goro_chan_recv_dl(c, &x, 0), 0);
        CHECK_EQ(x, (int)i); /* FIFO */
    }
    goro_chan_release(c);
}

typedef struct pp {
    goro_chan *c;
    int value;
    goro_waitgroup *wg;
} pp;

static void sender(void *arg) {
    pp *p = arg;
    CHECK_EQ(goro_chan_send(p->c, &p->value), 0);
    goro_wg_done(p->wg);
}

static void check_rendezvous(void) {
    goro_chan *c;
    CHECK_EQ(goro_chan_make(&c, sizeof(int), 0), 0);
    goro_waitgroup wg = GORO_WAITGROUP_INIT;
    pp p = {c, 42, &wg};
    goro_wg_add(&wg, 1);
    CHECK_EQ(goro_spawn(sender, &p), 0);
    int v = 0;
    CHECK_EQ(goro_chan_recv(c, &v), 0);
    CHECK_EQ(v, 42);
    goro_wg_wait(&wg);
    goro_chan_release(c);
}

static void blocked_receiver(void *arg) {
    pp *p = arg;
    int v = 99;
    CHECK_EQ(goro_chan_recv(p->c, &v), GORO_ECLOSED);
    CHECK_EQ(v, 0);
    goro_wg_done(p->wg);
}

static void blocked_sender(void *arg) {
    pp *p = arg;
    CHECK_EQ(goro_chan_send(p->c, &p->value), GORO_ECLOSED);
    goro_wg_done(p->wg);
}

static void check_close(size_t cap) {
    goro_chan *c;
    CHECK_EQ(goro_chan_make(&c, sizeof(int), cap), 0);
    for (size_t i = 0; i < cap; i++) {
        int x = (int)i + 1;
        CHECK_EQ(goro_chan_send(c, &x), 0);
    }
    CHECK_EQ(goro_chan_close(c), 0);
    CHECK_EQ(goro_chan_close(c), GORO_ECLOSED);
    int x = 5;
    CHECK_EQ(goro_chan_send(c, &x), GORO_ECLOSED);
    for (size_t i = 0; i < cap; i++) {
        CHECK_EQ(goro_chan_recv(c, &x), 0); /* drains first */
        CHECK_EQ(x, (int)i + 1);
    }
    for (int k = 0; k < 3; k++) {
        x = 5;
        CHECK_EQ(goro_chan_recv(c, &x), GORO_ECLOSED);
        CHECK_EQ(x, 0);
    }
    goro_chan_release(c);

    /* Close wakes every blocked receiver, and every blocked sender. */
    goro_waitgroup wg = GORO_WAITGROUP_INIT;
    for (int side = 0; side < 2; side++) {
        CHECK_EQ(goro_chan_make(&c, sizeof(int), cap), 0);
        for (size_t i = 0; side == 1 && i < cap; i++) {
            int y = 1;
            CHECK_EQ(goro_chan_send(c, &y), 0); /* full, so senders block */
        }
        pp p = {c, 3, &wg};
        goro_wg_add(&wg, 5);
        for (int i = 0; i < 5; i++)
            CHECK_EQ(goro_spawn(side == 0 ? blocked_receiver : blocked_sender, &p), 0);
        goro_stats st;
        do {
            goro_sleep(100 * TU_US);
            goro_stats_get(&st);
        } while (st.parked < 5); /* they are blocked on the channel */
        CHECK_EQ(goro_chan_close(c), 0);
        goro_wg_wait(&wg);
        goro_chan_release(c);
    }
}

/* Waits until n goroutines are parked. */
static void wait_parked(int64_t n) {
    goro_stats st;
    for (;;) {
        goro_stats_get(&st);
        if (st.parked >= n)
            return;
        goro_sleep(50 * TU_US);
    }
}

typedef struct fifo_arg {
    goro_chan *c;
    int index;
    int got;
    goro_waitgroup *wg;
} fifo_arg;

static void fifo_sender(void *arg) {
    fifo_arg *f = arg;
    CHECK_EQ(goro_chan_send(f->c, &f->index), 0);
    goro_wg_done(f->wg);
}

static void fifo_receiver(void *arg) {
    fifo_arg *f = arg;
    CHECK_EQ(goro_chan_recv(f->c, &f->got), 0);
    goro_wg_done(f->wg);
}

/* Blocked senders, and blocked receivers, are served in the order they blocked. */
static void check_fifo_waiters(size_t cap) {
    enum { K = 6 };
    goro_chan *c;
    CHECK_EQ(goro_chan_make(&c, sizeof(int), cap), 0);
    goro_waitgroup wg = GORO_WAITGROUP_INIT;
    fifo_arg f[K];
    goro_stats st;
    goro_stats_get(&st);
    int64_t parked0 = st.parked;
    for (size_t i = 0; i < cap; i++) {
        int x = -1;
        CHECK_EQ(goro_chan_send(c, &x), 0); /* full: the senders below block */
    }
    goro_wg_add(&wg, K);
    for (int i = 0; i < K; i++) {
        f[i] = (fifo_arg){c, i, -1, &wg};
        CHECK_EQ(goro_spawn(fifo_sender, &f[i]), 0);
        wait_parked(parked0 + i + 1);
    }
    for (size_t i = 0; i < cap; i++) {
        int x = 0;
        CHECK_EQ(goro_chan_recv(c, &x), 0);
        CHECK_EQ(x, -1);
    }
    for (int i = 0; i < K; i++) {
        int x = -1;
        CHECK_EQ(goro_chan_recv(c, &x), 0);
        CHECK_EQ(x, i);
    }
    goro_wg_wait(&wg);
    goro_wg_add(&wg, K);
    for (int i = 0; i < K; i++) {
        f[i] = (fifo_arg){c, i, -1, &wg};
        CHECK_EQ(goro_spawn(fifo_receiver, &f[i]), 0);
        wait_parked(parked0 + i + 1);
    }
    for (int i = 0; i < K; i++)
        CHECK_EQ(goro_chan_send(c, &i), 0);
    goro_wg_wait(&wg);
    for (int i = 0; i < K; i++)
        CHECK_EQ(f[i].got, i);
    goro_chan_release(c);
}

static void check_nil(void) {
    int v = 1;
    CHECK_EQ(goro_chan_send_dl(NULL, &v, 0), GORO_EAGAIN);
    CHECK_EQ(goro_chan_recv_dl(NULL, &v, 0), GORO_EAGAIN);
    int64_t t0 = goro_now();
    CHECK_EQ(goro_chan_recv_dl(NULL, &v, goro_now() + TU_MS), GORO_ETIMEDOUT);
    CHECK(goro_now() - t0 >= TU_MS);
    CHECK_EQ(goro_chan_len(NULL), 0);
    CHECK_EQ(goro_chan_cap(NULL), 0);
    CHECK_EQ(goro_chan_close(NULL), GORO_EINVAL);
}

/* ---------------------------------------------------------------- many to many */

static long per_producer;
static _Atomic long received_sum;
static unsigned char *seen;

typedef struct mm {
    goro_chan *c;
    int id;
    goro_waitgroup *wg;
} mm;

static void producer(void *arg) {
    mm *m = arg;
    for (long i = 0; i < per_producer; i++) {
        long v = m->id * per_producer + i;
        CHECK_EQ(goro_chan_send(m->c, &v), 0);
    }
    goro_wg_done(m->wg);
}

static void consumer(void *arg) {
    mm *m = arg;
    long v;
    while (goro_chan_recv(m->c, &v) == 0) {
        CHECKF(seen[v] == 0, "value %ld received twice", v);
        seen[v] = 1;
        atomic_fetch_add(&received_sum, v);
    }
    goro_wg_done(m->wg);
}

static void check_many(size_t cap) {
    long total = PRODUCERS * per_producer;
    memset(seen, 0, (size_t)total);
    atomic_store(&received_sum, 0);
    goro_chan *c;
    CHECK_EQ(goro_chan_make(&c, sizeof(long), cap), 0);
    goro_waitgroup prod = GORO_WAITGROUP_INIT, cons = GORO_WAITGROUP_INIT;
    mm ps[PRODUCERS], cs[CONSUMERS];
    goro_wg_add(&cons, CONSUMERS);
    for (int i = 0; i < CONSUMERS; i++) {
        cs[i] = (mm){c, i, &cons};
        CHECK_EQ(goro_spawn(consumer, &cs[i]), 0);
    }
    goro_wg_add(&prod, PRODUCERS);
    for (int i = 0; i < PRODUCERS; i++) {
        ps[i] = (mm){c, i, &prod};
        CHECK_EQ(goro_spawn(producer, &ps[i]), 0);
    }
    goro_wg_wait(&prod);
    CHECK_EQ(goro_chan_close(c), 0);
    goro_wg_wait(&cons);
    CHECK_EQ(atomic_load(&received_sum), total * (total - 1) / 2);
    for (long v = 0; v < total; v++)
        CHECKF(seen[v] == 1, "value %ld never received (cap %zu)", v, cap);
    goro_chan_release(c);
}

static void test_main(void *arg) {
    (void)arg;
    check_nil();
    check_rendezvous();
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        check_empty_and_full(caps[i]);
        check_close(caps[i]);
        check_fifo_waiters(caps[i]);
        check_many(caps[i]);
    }
}

int main(void) {
    per_producer = tu_scaled(20000, 500);
    seen = calloc((size_t)(PRODUCERS * per_producer), 1);
    CHECK(seen != NULL);
    int rc = goro_run(NULL, test_main, NULL);
    CHECKF(rc == 0, "goro_run: %s", goro_strerror(rc));
    free(seen);
    return tu_pass("chan_semantics");
}
