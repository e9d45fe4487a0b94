/*
 * chan_select: goro_select chooses uniformly among ready cases, never takes the default
 * while a case is ready, times out, completes exactly one case per call, and handles the
 * same channel in several cases (also while blocked) and a goroutine selecting against
 * itself. A case with an op other than GORO_SEND or GORO_RECV makes the whole select
 * GORO_EINVAL, wherever it is (after a ready case, after a NULL channel, past the four
 * cases kept on the stack), and no case is performed.
 */
#include "testutil.h"

#include <stdatomic.h>

/* Four buffered channels, all ready: each case should win about a quarter of the time.
 * A chi-square test with 3 degrees of freedom: 30 is far beyond the 0.001 tail (16.3),
 * so a fair implementation essentially never fails, while one that always prefers the
 * first ready case (or the same one) fails by orders of magnitude. */
static void check_fairness(void) {
    enum { K = 4 };
    goro_chan *c[K];
    for (int i = 0; i < K; i++)
        CHECK_EQ(goro_chan_make(&c[i], sizeof(int), 1), 0);
    long rounds = tu_scaled(20000, 2000);
    long wins[K] = {0};
    for (long r = 0; r < rounds; r++) {
        int one = 1;
        for (int i = 0; i < K; i++)
            if (goro_chan_len(c[i]) == 0)
                CHECK_EQ(goro_chan_send(c[i], &one), 0);
        goro_case cases[K];
        int out[K];
        for (int i = 0; i < K; i++)
            cases[i] = (goro_case){c[i], GORO_RECV, &out[i], -1};
        int w = goro_select(cases, K, 0);
        CHECK(w >= 0 && w < K);
        CHECK_EQ(cases[w].result, 0);
        CHECK_EQ(out[w], 1);
        wins[w]++;
    }
    double expect = (double)rounds / K, chi = 0;
    for (int i = 0; i < K; i++)
        chi += ((double)wins[i] - expect) * ((double)wins[i] - expect) / expect;
    CHECKF(chi < 30.0, "select is biased: wins %ld %ld %ld %ld (chi-square %.1f)", wins[0], wins[1],
           wins[2], wins[3], chi);
    for (int i = 0; i < K; i++)
        goro_chan_release(c[i]);
}

static void check_default_and_timeout(void) {
    goro_chan *c;
    CHECK_EQ(goro_chan_make(&c, sizeof(int), 1), 0);
    int v = 0;
    goro_case k[2] = {{c, GORO_RECV, &v, -1}, {NULL, GORO_SEND, &v, -1}};
    CHECK_EQ(goro_select(k, 2, 0), GORO_EAGAIN); /* default */
    int64_t t0 = goro_now();
    CHECK_EQ(goro_select(k, 2, goro_now() + 2 * TU_MS), GORO_ETIMEDOUT);
    CHECK(goro_now() - t0 >= 2 * TU_MS);
    CHECK_EQ(goro_select(k, 2, goro_now() - 1), GORO_ETIMEDOUT); /* a passed deadline */
    int x = 9;
    CHECK_EQ(goro_chan_send(c, &x), 0);
    for (int i = 0; i < 100; i++) { /* ready: default is never taken */
        CHECK_EQ(goro_select(k, 2, 0), 0);
        CHECK_EQ(v, 9);
        CHECK_EQ(goro_chan_send(c, &x), 0);
    }
    /* The same channel in two cases: one of them runs, once. */
    goro_case dup[2] = {{c, GORO_RECV, &v, -1}, {c, GORO_RECV, &v, -1}};
    int w = goro_select(dup, 2, 0);
    CHECK(w == 0 || w == 1);
    CHECK_EQ(goro_chan_len(c), 0);
    CHECK_EQ(goro_select(dup, 2, 0), GORO_EAGAIN);
    /* Close makes a receive case ready with GORO_ECLOSED. */
    CHECK_EQ(goro_chan_close(c), 0);
    w = goro_select(dup, 2, GORO_FOREVER);
    CHECK(w == 0 || w == 1);
    CHECK_EQ(dup[w].result, GORO_ECLOSED);
    goro_chan_release(c);
}

/* ---------------------------------------------------------------- storm */

static goro_chan *data, *quit;
static _Atomic long sent, got, timeouts;

static void storm_sender(void *arg) {
    goro_waitgroup *wg = arg;
    long n = tu_scaled(5000, 200);
    for (long i = 0; i < n; i++) {
        long v = 1;
        goro_case k[1] = {{data, GORO_SEND, &v, -1}};
        int r = goro_select(k, 1, goro_now() + 20 * TU_US);
        if (r == 0) {
            CHECK_EQ(k[0].result, 0);
            atomic_fetch_add(&sent, 1);
        } else {
            CHECK_EQ(r, GORO_ETIMEDOUT); /* a timed-out send delivered nothing */
            atomic_fetch_add(&timeouts, 1);
        }
    }
    goro_wg_done(wg);
}

static void storm_receiver(void *arg) {
    goro_waitgroup *wg = arg;
    uint64_t rng = (uint64_t)(uintptr_t)arg ^ (uint64_t)goro_now();
    for (;;) {
        if (tu_rand(&rng) % 4 == 0) /* fall behind now and then, so sends time out */
            goro_sleep((int64_t)(tu_rand(&rng) % (40 * TU_US)));
        long v = 0;
        goro_case k[2] = {{data, GORO_RECV, &v, -1}, {quit, GORO_RECV, NULL, -1}};
        int r = goro_select(k, 2, goro_now() + 30 * TU_US);
        if (r == 0) {
            CHECK_EQ(k[0].result, 0);
            CHECK_EQ(v, 1);
            atomic_fetch_add(&got, 1);
        } else if (r == 1) {
            CHECK_EQ(k[1].result, GORO_ECLOSED);
            break;
        } else {
            CHECK_EQ(r, GORO_ETIMEDOUT);
            CHECK_EQ(v, 0); /* a timed-out receive got nothing */
        }
    }
    goro_wg_done(wg);
}

/* Senders and receivers with short deadlines race timeouts against hand-offs: every
 * value sent is received exactly once, none by a select that timed out. */
static void check_storm(void) {
    CHECK_EQ(goro_chan_make(&data, sizeof(long), 0), 0);
    CHECK_EQ(goro_chan_make(&quit, 0, 0), 0);
    goro_waitgroup s = GORO_WAITGROUP_INIT, r = GORO_WAITGROUP_INIT;
    goro_wg_add(&r, 4);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(goro_spawn(storm_receiver, &r), 0);
    goro_wg_add(&s, 4);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(goro_spawn(storm_sender, &s), 0);
    goro_wg_wait(&s);
    CHECK_EQ(goro_chan_close(quit), 0);
    goro_wg_wait(&r);
    CHECKF(atomic_load(&sent) == atomic_load(&got), "%ld sent, %ld received",
           (long)atomic_load(&sent), (long)atomic_load(&got));
    CHECK(atomic_load(&sent) > 0);
    printf("storm: %ld delivered, %ld send timeouts\n", (long)atomic_load(&sent),
           (long)atomic_load(&timeouts));
    goro_chan_release(data);
    goro_chan_release(quit);
}

/* One goroutine selects to send and receive on the same unbuffered channel; a partner
 * completes one of them. */
static void partner(void *arg) {
    goro_chan *c = arg;
    int v = 5;
    CHECK_EQ(goro_chan_send(c, &v), 0);
}

static void check_self_select(void) {
    goro_chan *c;
    CHECK_EQ(goro_chan_make(&c, sizeof(int), 0), 0);
    CHECK_EQ(goro_spawn(partner, c), 0);
    int in = 0, out = 1;
    goro_case k[2] = {{c, GORO_SEND, &out, -1}, {c, GORO_RECV, &in, -1}};
    CHECK_EQ(goro_select(k, 2, GORO_FOREVER), 1);
    CHECK_EQ(in, 5);
    goro_chan_release(c);
}

/* A blocked select with the same channel in two receive cases: a sender that sends
 * twice before the select's goroutine runs again completes the select once, and its
 * second value waits for another receiver. */
static void twice_sender(void *arg) {
    goro_chan *c = arg;
    int v = 1;
    CHECK_EQ(goro_chan_send(c, &v), 0);
    v = 2;
    CHECK_EQ(goro_chan_send(c, &v), 0);
}

static void check_dup_blocked(void) {
    goro_chan *c;
    CHECK_EQ(goro_chan_make(&c, sizeof(int), 0), 0);
    CHECK_EQ(goro_spawn(twice_sender, c), 0);
    int a = 0, b = 0;
    goro_case k[2] = {{c, GORO_RECV, &a, -1}, {c, GORO_RECV, &b, -1}};
    int w = goro_select(k, 2, GORO_FOREVER);
    CHECK(w == 0 || w == 1);
    CHECK_EQ(k[w].result, 0);
    CHECK_EQ(w == 0 ? a : b, 1);
    CHECK_EQ(w == 0 ? b : a, 0); /* the other case got nothing */
    int v = 0;
    CHECK_EQ(goro_chan_recv(c, &v), 0);
    CHECK_EQ(v, 2);
    goro_chan_release(c);
}

static void check_bad_op(void) {
    enum { K = 6 };
    goro_chan *c;
    CHECK_EQ(goro_chan_make(&c, sizeof(int), 1), 0);
    int one = 1, out = 0;
    CHECK_EQ(goro_chan_send(c, &one), 0); /* a ready receive in every case below */
    const int bad_ops[] = {0, 3, -1};
    for (size_t b = 0; b < sizeof bad_ops / sizeof bad_ops[0]; b++) {
        for (size_t n = 2; n <= K; n++) { /* above 4 cases the select allocates */
            goro_case cases[K];
            for (size_t i = 0; i < n; i++)
                cases[i] = (goro_case){.chan = i == 1 ? NULL : c, .op = GORO_RECV, .elem = &out};
            cases[n - 1].op = bad_ops[b];
            CHECKF(goro_select(cases, n, 0) == GORO_EINVAL, "op %d in case %zu of %zu", bad_ops[b],
                   n - 1, n);
            CHECK_EQ(goro_chan_len(c), 1); /* the ready receive did not happen */
        }
    }
    CHECK_EQ(goro_chan_recv(c, &out), 0);
    CHECK_EQ(out, 1);
    goro_chan_release(c);
}

static void test_main(void *arg) {
    (void)arg;
    check_fairness();
    check_default_and_timeout();
    check_bad_op();
    check_self_select();
    for (int i = 0; i < 100; i++)
        check_dup_blocked();
    check_storm();
}

int main(void) {
    int rc = goro_run(NULL, test_main, NULL);
    CHECKF(rc == 0, "goro_run: %s", goro_strerror(rc));
    return tu_pass("chan_select");
}
