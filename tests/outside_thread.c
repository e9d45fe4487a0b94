/*
 * outside_thread: the runtime called from a plain thread, not a goroutine (goro.h).
 *
 * Channels: an operation that would have to wait outside a goroutine returns GORO_EPERM;
 * one that can complete at once does. Checked from main before any runtime exists, and
 * from a pthread while a runtime runs, where the thread's operations also complete
 * goroutines' waits:
 *  - buffered send with room and receive of a buffered value succeed, in FIFO order;
 *  - a send with no room, a receive with nothing there, and a select of several cases none
 *    of which is ready return GORO_EPERM (deadline 0: GORO_EAGAIN), and lose nothing;
 *  - a select of several cases takes a ready one (each of two ready cases is taken at
 *    least once in 200 selects: its choice is random);
 *  - a goroutine parked in a receive gets the value the thread sends, and one parked in a
 *    send hands its value to the thread's receive; close from the thread wakes a parked
 *    receiver with GORO_ECLOSED. The goroutines park only after the thread has used a
 *    channel: from then on the deadlock check stands down (while all of them wait for it).
 * Sync and sleep, where a goroutine would park, make the thread wait: goro_sleep sleeps
 * it at least as long; goro_mutex_lock of a mutex a goroutine holds returns once the
 * goroutine unlocks it (and never while it holds it), and a goroutine waiting for a mutex
 * the thread holds gets it when the thread unlocks; goro_wg_wait returns once goroutines
 * have called done (not before); goro_cond_wait returns after the goroutine's signal,
 * with the predicate set.
 * The run beside the thread is traced: the wake-ups by the thread (which has no P) are in
 * the trace, so tests/trace_check.py finds every goroutine's events in a legal order.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>

#define SELECTS 200

static void check_sleep(const char *where) {
    int64_t t0 = goro_now();
    CHECK_EQ(goro_sleep(5 * TU_MS), 0);
    CHECKF(goro_now() - t0 >= 5 * TU_MS, "%s: goro_sleep(5 ms) returned after %lld ns", where,
           (long long)(goro_now() - t0));
}

static void check_plain_thread(const char *where) {
    check_sleep(where);
    goro_chan *b, *u;
    CHECK_EQ(goro_chan_make(&b, sizeof(int), 2), 0);
    CHECK_EQ(goro_chan_make(&u, sizeof(int), 0), 0);
    int v = 1, w = 2, out = 0;
    CHECK_EQ(goro_chan_send(b, &v), 0);
    CHECK_EQ(goro_chan_send(b, &w), 0);
    CHECKF(goro_chan_send(b, &v) == GORO_EPERM, "%s: send to a full channel", where);
    CHECK_EQ(goro_chan_send_dl(b, &v, 0), GORO_EAGAIN);
    CHECK_EQ(goro_chan_len(b), 2);
    CHECK_EQ(goro_chan_recv(b, &out), 0);
    CHECK_EQ(out, 1);
    CHECK_EQ(goro_chan_recv(b, &out), 0);
    CHECK_EQ(out, 2);
    CHECKF(goro_chan_recv(b, &out) == GORO_EPERM, "%s: receive from an empty channel", where);
    CHECK_EQ(goro_chan_recv_dl(b, &out, 0), GORO_EAGAIN);
    CHECKF(goro_chan_send(u, &v) == GORO_EPERM, "%s: unbuffered send, no receiver", where);
    CHECKF(goro_chan_recv(u, &out) == GORO_EPERM, "%s: unbuffered receive, no sender", where);

    /* Select: nothing ready, then two of three cases ready. */
    goro_chan *c2;
    CHECK_EQ(goro_chan_make(&c2, sizeof(int), SELECTS), 0);
    int r1 = 0, r2 = 0;
    goro_case cases[3] = {{b, GORO_RECV, &r1, 0}, {u, GORO_SEND, &v, 0}, {c2, GORO_RECV, &r2, 0}};
    int rc = goro_select(cases, 3, GORO_FOREVER);
    CHECKF(rc == GORO_EPERM, "%s: select of three cases, none ready: %d", where, rc);
    CHECK_EQ(goro_select(cases, 3, 0), GORO_EAGAIN);
    int taken[3] = {0, 0, 0};
    for (int i = 0; i < SELECTS; i++) {
        int x = 10 + i;
        CHECK_EQ(goro_chan_send(b, &x), 0); /* room for one more each round */
        CHECK_EQ(goro_chan_send(c2, &x), 0);
        rc = goro_select(cases, 3, GORO_FOREVER);
        CHECKF(rc == 0 || rc == 2, "%s: select took case %d", where, rc);
        taken[rc]++;
        CHECK_EQ(cases[rc].result, 0);
        /* Drain what the select did not take, so both are empty again. */
        if (rc == 0) {
            CHECK_EQ(r1, x);
            CHECK_EQ(goro_chan_recv(c2, &out), 0);
        } else {
            CHECK_EQ(r2, x);
            CHECK_EQ(goro_chan_recv(b, &out), 0);
        }
        CHECK_EQ(out, x);
    }
    CHECKF(taken[0] > 0 && taken[2] > 0, "%s: select took case 0 %d times, case 2 %d times", where,
           taken[0], taken[2]);
    goro_chan_release(c2);
    goro_chan_release(b);
    goro_chan_release(u);
}

typedef struct partners {
    goro_chan *to_g, *from_g, *closing;
    goro_waitgroup wg;
    atomic_int parked;   /* goroutines about to wait */
    atomic_int outsider; /* the plain thread has used channels (check_plain_thread) */
    /* Sync: */
    goro_mutex mu;
    atomic_int phase;         /* steps of the mutex exchange, see mutex_partner */
    int in_mu;                /* [mu] who is inside: 1 goroutine, 2 thread */
    goro_waitgroup wg_thread; /* the thread waits for WG_GOROUTINES dones */
    atomic_int wg_done;
    goro_cond cond;
    int pred; /* [mu] set before the signal */
    int got, closed_rc;
} partners;

#define WG_GOROUTINES 4

/* Holds mu while the thread tries to lock it (phase 1 -> 2), then waits for the thread to
 * hold it and locks it again (phase 3), blocking until the thread unlocks. */
static void mutex_partner(void *arg) {
    partners *p = arg;
    goro_mutex_lock(&p->mu);
    p->in_mu = 1;
    atomic_store(&p->phase, 1);
    while (atomic_load(&p->phase) < 2) /* the thread is about to block in lock */
        goro_yield();
    goro_sleep(10 * TU_MS); /* let it block: it must not get in while we are */
    CHECK_EQ(p->in_mu, 1);
    p->in_mu = 0;
    goro_mutex_unlock(&p->mu);
    while (atomic_load(&p->phase) < 3) /* the thread holds mu */
        goro_yield();
    goro_mutex_lock(&p->mu); /* parks until the thread unlocks */
    CHECK_EQ(p->in_mu, 0);
    p->pred = 1;
    goro_cond_signal(&p->cond);
    goro_mutex_unlock(&p->mu);
    goro_wg_done(&p->wg);
}

static void wg_partner(void *arg) {
    partners *p = arg;
    goro_sleep(5 * TU_MS);
    atomic_fetch_add(&p->wg_done, 1);
    goro_wg_done(&p->wg_thread);
    goro_wg_done(&p->wg);
}

static void receiver(void *arg) {
    partners *p = arg;
    atomic_fetch_add(&p->parked, 1);
    CHECK_EQ(goro_chan_recv(p->to_g, &p->got), 0);
    goro_wg_done(&p->wg);
}

static void sender(void *arg) {
    partners *p = arg;
    int v = 77;
    atomic_fetch_add(&p->parked, 1);
    CHECK_EQ(goro_chan_send(p->from_g, &v), 0);
    goro_wg_done(&p->wg);
}

static void close_waiter(void *arg) {
    partners *p = arg;
    int out = 5;
    atomic_fetch_add(&p->parked, 1);
    p->closed_rc = goro_chan_recv(p->closing, &out);
    CHECK_EQ(out, 0); /* zeroed on close */
    goro_wg_done(&p->wg);
}

/* The plain thread's side while goroutines wait: it retries (GORO_EPERM while a partner is
 * not parked yet) until each operation completes. */
static void *plain_thread(void *arg) {
    partners *p = arg;
    check_plain_thread("a pthread beside the runtime");
    atomic_store(&p->outsider, 1);
    while (atomic_load(&p->parked) < 3)
        sched_yield();
    int v = 42, out = 0, rc;
    while ((rc = goro_chan_send(p->to_g, &v)) == GORO_EPERM)
        sched_yield();
    CHECK_EQ(rc, 0);
    while ((rc = goro_chan_recv(p->from_g, &out)) == GORO_EPERM)
        sched_yield();
    CHECK_EQ(rc, 0);
    CHECK_EQ(out, 77);
    CHECK_EQ(goro_chan_close(p->closing), 0);

    /* Wait group. */
    goro_wg_wait(&p->wg_thread);
    CHECK_EQ(atomic_load(&p->wg_done), WG_GOROUTINES);
    /* Mutex, both ways, and a condition. */
    while (atomic_load(&p->phase) < 1)
        sched_yield();
    atomic_store(&p->phase, 2);
    goro_mutex_lock(&p->mu); /* held by mutex_partner: waits */
    CHECK_EQ(p->in_mu, 0);
    p->in_mu = 2;
    atomic_store(&p->phase, 3);
    int64_t t0 = goro_now();
    while (goro_now() - t0 < 10 * TU_MS) /* mutex_partner blocks in lock meanwhile */
        sched_yield();
    CHECK_EQ(p->in_mu, 2);
    p->in_mu = 0;
    while (!p->pred)
        goro_cond_wait(&p->cond, &p->mu); /* unlocks: mutex_partner gets in, signals */
    goro_mutex_unlock(&p->mu);
    return NULL;
}

static char trace_path[64];

static void test_main(void *arg) {
    (void)arg;
    snprintf(trace_path, sizeof trace_path, "/tmp/goro-outside-%d.json", (int)getpid());
    CHECK_EQ(goro_trace_start(trace_path), 0);
    partners p = {.wg = GORO_WAITGROUP_INIT,
                  .mu = GORO_MUTEX_INIT,
                  .wg_thread = GORO_WAITGROUP_INIT,
                  .cond = GORO_COND_INIT};
    CHECK_EQ(goro_chan_make(&p.to_g, sizeof(int), 0), 0);
    CHECK_EQ(goro_chan_make(&p.from_g, sizeof(int), 0), 0);
    CHECK_EQ(goro_chan_make(&p.closing, sizeof(int), 0), 0);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, plain_thread, &p), 0);
    /* The deadlock check stands down once a plain thread has used a channel (goro.h):
     * before that, goroutines all waiting for it would be a deadlock. Wait without
     * parking. */
    while (!atomic_load(&p.outsider))
        goro_yield();
    goro_wg_add(&p.wg, 4 + WG_GOROUTINES);
    goro_wg_add(&p.wg_thread, WG_GOROUTINES);
    for (int i = 0; i < WG_GOROUTINES; i++)
        CHECK_EQ(goro_spawn(wg_partner, &p), 0);
    CHECK_EQ(goro_spawn(mutex_partner, &p), 0);
    CHECK_EQ(goro_spawn(receiver, &p), 0);
    CHECK_EQ(goro_spawn(sender, &p), 0);
    CHECK_EQ(goro_spawn(close_waiter, &p), 0);
    goro_wg_wait(&p.wg);
    CHECK_EQ(GORO_BLOCKING(pthread_join(t, NULL)), 0);
    CHECK_EQ(p.got, 42);
    CHECK_EQ(p.closed_rc, GORO_ECLOSED);
    goro_chan_release(p.to_g);
    goro_chan_release(p.from_g);
    goro_chan_release(p.closing);
    CHECK_EQ(goro_trace_stop(), 0);
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "python3 '%s' '%s' --ended %d --reasons 'chan receive,chan send,mutex,waitgroup'",
             GORO_TRACE_CHECKER, trace_path, 4 + WG_GOROUTINES);
    int st = GORO_BLOCKING(system(cmd));
    CHECKF(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
           "the checker rejected %s (status %d): %s", trace_path, st, cmd);
    CHECK_EQ(unlink(trace_path), 0);
}

int main(void) {
    check_plain_thread("main before goro_run");
    goro_mutex mu = GORO_MUTEX_INIT;
    goro_mutex_lock(&mu); /* uncontended, before any runtime */
    goro_mutex_unlock(&mu);
    goro_waitgroup wg = GORO_WAITGROUP_INIT;
    goro_wg_wait(&wg); /* a zero count returns at once */
    CHECK_EQ(goro_run(NULL, test_main, NULL), 0);
    check_plain_thread("main after goro_run");
    return tu_pass("outside_thread");
}
