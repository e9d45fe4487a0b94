/*
 * chan_exactly_once: every value sent is received exactly once, whatever mix of waiters
 * the channel's queues hold, at capacities 0 to 4, 8 and 128.
 *
 * Producers and consumers each use one style of operation, chosen by their index:
 * the plain blocking form (a plain waiter record), a deadline form with short deadlines
 * retried on GORO_ETIMEDOUT (a timed record that races its timer), a select with a second
 * case that is never ready (a select record), the non-blocking form retried after a
 * yield (no record), and a select with the channel in two cases (two records of one
 * select in the same queue, which must complete once). So plain, timed and select records queue
 * behind one another, are completed by partners of every kind, and time out while others complete.
 * A send that timed out must have delivered nothing, a receive that timed out must have got
 * nothing. Close then wakes consumers of every style, and none may see a value after that.
 */
#include "testutil.h"

#include <stdatomic.h>
#include <string.h>

#define PRODUCERS 5
#define CONSUMERS 5

enum { STYLE_PLAIN, STYLE_TIMED, STYLE_SELECT, STYLE_TRY, STYLE_SELECT_DUP, NSTYLES };

static const size_t caps[] = {0, 1, 2, 3, 4, 8, 128};

static long per_producer;
static _Atomic long received, timeouts;
static _Atomic unsigned char *seen;
static goro_chan *never; /* a channel nobody sends on */

typedef struct worker {
    goro_chan *c;
    int id;
    goro_waitgroup *wg;
} worker;

static int send_style(goro_chan *c, long v, int style) {
    for (;;) {
        int r;
        if (style == STYLE_PLAIN) {
            r = goro_chan_send(c, &v);
        } else if (style == STYLE_TIMED) {
            r = goro_chan_send_dl(c, &v, goro_now() + 20 * TU_US);
        } else if (style == STYLE_SELECT) {
            long dummy;
            goro_case k[2] = {{never, GORO_RECV, &dummy, -1}, {c, GORO_SEND, &v, -1}};
            r = goro_select(k, 2, GORO_FOREVER);
            CHECK_EQ(r, 1);
            r = k[1].result;
        } else if (style == STYLE_SELECT_DUP) {
            goro_case k[2] = {{c, GORO_SEND, &v, -1}, {c, GORO_SEND, &v, -1}};
            r = goro_select(k, 2, GORO_FOREVER);
            CHECK(r == 0 || r == 1);
            r = k[r].result;
        } else {
            r = goro_chan_send_dl(c, &v, 0);
        }
        if (r == GORO_ETIMEDOUT) {
            atomic_fetch_add(&timeouts, 1);
            continue;
        }
        if (r == GORO_EAGAIN) {
            goro_yield();
            continue;
        }
        return r;
    }
}

/* Returns 0 with *v set, or GORO_ECLOSED with *v zeroed. */
static int recv_style(goro_chan *c, long *v, int style) {
    for (;;) {
        int r;
        *v = -1;
        if (style == STYLE_PLAIN) {
            r = goro_chan_recv(c, v);
        } else if (style == STYLE_TIMED) {
            r = goro_chan_recv_dl(c, v, goro_now() + 20 * TU_US);
        } else if (style == STYLE_SELECT) {
            long dummy = -1;
            goro_case k[2] = {{c, GORO_RECV, v, -1}, {never, GORO_RECV, &dummy, -1}};
            r = goro_select(k, 2, GORO_FOREVER);
            CHECK_EQ(r, 0);
            CHECK_EQ(dummy, -1);
            r = k[0].result;
        } else if (style == STYLE_SELECT_DUP) {
            long a = -1, b = -1;
            goro_case k[3] = {
                {c, GORO_RECV, &a, -1}, {never, GORO_RECV, v, -1}, {c, GORO_RECV, &b, -1}};
            r = goro_select(k, 3, GORO_FOREVER);
            CHECK(r == 0 || r == 2);
            CHECK_EQ(r == 0 ? b : a, -1); /* the other case got nothing */
            *v = r == 0 ? a : b;
            r = k[r].result;
        } else {
            r = goro_chan_recv_dl(c, v, 0);
        }
        if (r == GORO_ETIMEDOUT || r == GORO_EAGAIN) {
            CHECK_EQ(*v, -1); /* nothing arrived */
            if (r == GORO_ETIMEDOUT)
                atomic_fetch_add(&timeouts, 1);
            else
                goro_yield();
            continue;
        }
        return r;
    }
}

static void producer(void *arg) {
    worker *w = arg;
    for (long i = 0; i < per_producer; i++) {
        if (i % 64 == 63)
            goro_sleep(30 * TU_US); /* fall behind now and then, so partners time out */
        CHECK_EQ(send_style(w->c, w->id * per_producer + i, w->id % NSTYLES), 0);
    }
    goro_wg_done(w->wg);
}

static void consumer(void *arg) {
    worker *w = arg;
    long v;
    int r;
    for (long n = 1; (r = recv_style(w->c, &v, w->id % NSTYLES)) == 0; n++) {
        if (n % 64 == 0)
            goro_sleep(30 * TU_US);
        CHECKF(v >= 0 && v < PRODUCERS * per_producer, "value %ld out of range", v);
        CHECKF(atomic_exchange(&seen[v], 1) == 0, "value %ld received twice", v);
        atomic_fetch_add(&received, 1);
    }
    CHECK_EQ(r, GORO_ECLOSED);
    CHECK_EQ(v, 0);
    goro_wg_done(w->wg);
}

static void check_cap(size_t cap) {
    long total = PRODUCERS * per_producer;
    for (long v = 0; v < total; v++)
        atomic_store(&seen[v], 0);
    atomic_store(&received, 0);
    goro_chan *c;
    CHECK_EQ(goro_chan_make(&c, sizeof(long), cap), 0);
    goro_waitgroup prod = GORO_WAITGROUP_INIT, cons = GORO_WAITGROUP_INIT;
    worker ps[PRODUCERS], cs[CONSUMERS];
    goro_wg_add(&cons, CONSUMERS);
    for (int i = 0; i < CONSUMERS; i++) {
        cs[i] = (worker){c, i, &cons};
        CHECK_EQ(goro_spawn(consumer, &cs[i]), 0);
    }
    goro_wg_add(&prod, PRODUCERS);
    for (int i = 0; i < PRODUCERS; i++) {
        ps[i] = (worker){c, i, &prod};
        CHECK_EQ(goro_spawn(producer, &ps[i]), 0);
    }
    goro_wg_wait(&prod);
    CHECK_EQ(goro_chan_close(c), 0);
    goro_wg_wait(&cons);
    CHECK_EQ(atomic_load(&received), total);
    for (long v = 0; v < total; v++)
        CHECKF(atomic_load(&seen[v]) == 1, "value %ld never received (cap %zu)", v, cap);
    CHECK_EQ(goro_chan_len(c), 0);
    goro_chan_release(c);
}

static void test_main(void *arg) {
    (void)arg;
    CHECK_EQ(goro_chan_make(&never, sizeof(long), 0), 0);
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++)
        check_cap(caps[i]);
    printf("%ld timeouts\n", (long)atomic_load(&timeouts));
    goro_chan_release(never);
}

int main(void) {
    per_producer = tu_scaled(10000, 300);
    seen = calloc((size_t)(PRODUCERS * per_producer), 1);
    CHECK(seen != NULL);
    int rc = goro_run(NULL, test_main, NULL);
    CHECKF(rc == 0, "goro_run: %s", goro_strerror(rc));
    free((void *)seen);
    return tu_pass("chan_exactly_once");
}
