/*
 * race_detect: the race build (src/race.h) reports a data race between goroutines that no
 * goroutine operation orders, and nothing when an operation of Go's memory model does.
 * Built and registered only when GORO_SANITIZE=race.
 *
 * Each scenario runs in a child process (tu_run_child), once with GORO_MAXPROCS=1, where
 * every goroutine shares one thread, and once with 2. Two goroutines write and read the
 * plain global `shared` (or a heap object, or their stack locals). A racy scenario passes
 * only if the child's stderr holds ThreadSanitizer's "WARNING: ThreadSanitizer: data race";
 * a synchronised one only if it holds no ThreadSanitizer warning at all and the child ran
 * to the end. The pairs differ in one place: where an access stands relative to the
 * operation, or which operation it is.
 *
 * Racing goroutines never end the program before both accesses happened: main waits for
 * them in a way that orders each after its own access only.
 */
#include "testutil.h"

#include <fcntl.h>

static int shared;
static int shared2;

static void go(void (*fn)(void *), void *arg) {
    CHECK_EQ(goro_spawn(fn, arg), 0);
}

/* Accesses the compiler keeps where they stand (volatile: a read whose value is unused
 * is not dropped; TSan treats it as a plain access). */
static __attribute__((noinline)) void put(int *p, int v) {
    *(volatile int *)p = v;
}

static __attribute__((noinline)) int get(const int *p) {
    return *(const volatile int *)p;
}

/* ------------------------------------------------------------------ shared helpers */

typedef struct pair {
    goro_chan *c;
    goro_chan *done; /* each goroutine of a scenario sends once when finished */
    goro_chan *flag;
    goro_waitgroup wg;
    goro_mutex m1, m2;
    goro_rwmutex rw;
    goro_once once;
    goro_timer *tm;
} pair;

static pair P;

static void pair_init(size_t cap, size_t elem) {
    CHECK_EQ(goro_chan_make(&P.c, elem, cap), 0);
    CHECK_EQ(goro_chan_make(&P.done, 0, 4), 0);
}

/* Main waits for two goroutines: each one's finishing send comes after its own
 * accesses. */
static void pair_wait(void) {
    CHECK_EQ(goro_chan_recv(P.done, NULL), 0);
    CHECK_EQ(goro_chan_recv(P.done, NULL), 0);
}

static void finished(void) {
    CHECK_EQ(goro_chan_send(P.done, NULL), 0);
}

/* The common scenario: first and second on a fresh pair, main waiting for both. */
static void run_pair(size_t cap, size_t elem, void (*first)(void *), void (*second)(void *)) {
    pair_init(cap, elem);
    go(first, NULL);
    go(second, NULL);
    pair_wait();
}

static int one = 1;

/* ------------------------------------------------------------------ racy scenarios */

static void plain_writer(void *a) {
    (void)a;
    put(&shared, 1);
    finished();
}

static void plain_reader(void *a) {
    (void)a;
    (void)get(&shared);
    finished();
}

/* No operation between the two goroutines at all. */
static void race_plain(void) {
    run_pair(0, 0, plain_writer, plain_reader);
}

static void send_then_write(void *a) {
    (void)a;
    CHECK_EQ(goro_chan_send(P.c, &one), 0);
    put(&shared, 1);
    finished();
}

static void recv_then_read(void *a) {
    (void)a;
    int v;
    CHECK_EQ(goro_chan_recv(P.c, &v), 0);
    (void)get(&shared);
    finished();
}

static void read_then_recv(void *a) {
    (void)a;
    int v;
    (void)get(&shared);
    CHECK_EQ(goro_chan_recv(P.c, &v), 0);
    finished();
}

/* Unbuffered: the hand-off orders both sides up to it, not what follows it. */
static void race_unbuffered_after(void) {
    run_pair(0, sizeof(int), send_then_write, recv_then_read);
}

/* Buffered: the write after the send, the read before the receive. */
static void race_buffered_before_recv(void) {
    run_pair(1, sizeof(int), send_then_write, read_then_recv);
}

static void write_then_send(void *a);

/* Waits, without synchronising, until flag holds a value: goro_chan_len is no edge. */
static void wait_flag(void) {
    while (goro_chan_len(P.flag) == 0)
        goro_sleep(1000000);
}

static void recv_then_flag(void *a) {
    (void)a;
    int v;
    CHECK_EQ(goro_chan_recv(P.c, &v), 0);
    CHECK_EQ(goro_chan_send(P.flag, &one), 0);
    finished();
}

static void late_send(void *a) {
    (void)a;
    wait_flag();
    CHECK_EQ(goro_chan_send(P.c, &one), 0);
    finished();
}

static void late_recv_then_read(void *a) {
    (void)a;
    int v;
    wait_flag();
    CHECK_EQ(goro_chan_recv(P.c, &v), 0);
    (void)get(&shared);
    finished();
}

/* Unbuffered, two pairs one after the other: the first sender's write reaches its own
 * receiver, not the second pair's. */
static void race_unbuffered_other_pair(void) {
    pair_init(0, sizeof(int));
    CHECK_EQ(goro_chan_make(&P.flag, sizeof(int), 1), 0);
    go(write_then_send, NULL);
    go(recv_then_flag, NULL);
    go(late_send, NULL);
    go(late_recv_then_read, NULL);
    pair_wait();
    pair_wait();
}

static void write_then_recv(void *a) {
    (void)a;
    int v;
    put(&shared, 1);
    CHECK_EQ(goro_chan_recv(P.c, &v), 0);
    finished();
}

/* Capacity 2: the first receive orders only the third send, and main reads after the
 * second. (cap_edge below is the same with three sends.) */
static void race_cap_not_reached(void) {
    pair_init(2, sizeof(int));
    go(write_then_recv, NULL);
    CHECK_EQ(goro_chan_send(P.c, &one), 0);
    CHECK_EQ(goro_chan_send(P.c, &one), 0);
    (void)get(&shared);
    finished();
    pair_wait();
}

static void close_then_write(void *a) {
    (void)a;
    CHECK_EQ(goro_chan_close(P.c), 0);
    put(&shared, 1);
    finished();
}

static void recv_closed_then_read(void *a) {
    (void)a;
    int v;
    CHECK_EQ(goro_chan_recv(P.c, &v), GORO_ECLOSED);
    (void)get(&shared);
    finished();
}

static void race_close_after(void) {
    run_pair(0, sizeof(int), close_then_write, recv_closed_then_read);
}

static void select_send_then_write(void *a) {
    (void)a;
    goro_case k = {.chan = P.c, .op = GORO_SEND, .elem = &one};
    CHECK_EQ(goro_select(&k, 1, GORO_FOREVER), 0);
    put(&shared, 1);
    finished();
}

static void select_recv_then_read(void *a) {
    (void)a;
    int v;
    goro_case k[2] = {{.chan = P.c, .op = GORO_RECV, .elem = &v},
                      {.chan = NULL, .op = GORO_RECV, .elem = NULL}};
    CHECK_EQ(goro_select(k, 2, GORO_FOREVER), 0);
    (void)get(&shared);
    finished();
}

static void race_select_after(void) {
    run_pair(0, sizeof(int), select_send_then_write, select_recv_then_read);
}

static void lock1_write(void *a) {
    (void)a;
    goro_mutex_lock(&P.m1);
    put(&shared, 1);
    goro_mutex_unlock(&P.m1);
    finished();
}

static void lock2_read(void *a) {
    (void)a;
    goro_mutex_lock(&P.m2);
    (void)get(&shared);
    goro_mutex_unlock(&P.m2);
    finished();
}

/* Two different mutexes order nothing between each other. */
static void race_two_mutexes(void) {
    run_pair(0, 0, lock1_write, lock2_read);
}

static void rlock_write(void *a) {
    (void)a;
    goro_rwmutex_rlock(&P.rw);
    put(&shared, *(int *)a);
    goro_rwmutex_runlock(&P.rw);
    finished();
}

/* Read locks do not exclude each other. */
static void race_two_readers(void) {
    static int v1 = 1, v2 = 2;
    pair_init(0, 0);
    go(rlock_write, &v1);
    go(rlock_write, &v2);
    pair_wait();
}

static void done_then_write(void *a) {
    (void)a;
    goro_wg_done(&P.wg);
    put(&shared, 1);
    finished();
}

/* The write follows Done. */
static void race_wg_after_done(void) {
    pair_init(0, 0);
    goro_wg_add(&P.wg, 1);
    go(done_then_write, NULL);
    goro_wg_wait(&P.wg);
    (void)get(&shared);
    finished();
    pair_wait();
}

static void spawned_reader(void *a) {
    (void)a;
    (void)get(&shared);
    finished();
}

/* The write follows the spawn. */
static void race_spawn_after(void) {
    pair_init(0, 0);
    go(spawned_reader, NULL);
    put(&shared, 1);
    finished();
    pair_wait();
}

static void nothing(void *a) {
    (void)a;
}

static void once_then_write(void *a) {
    (void)a;
    goro_once_do(&P.once, nothing, NULL);
    put(&shared, *(int *)a);
    finished();
}

/* Once orders its function, not what its callers do afterwards. */
static void race_once_after(void) {
    static int v1 = 1, v2 = 2;
    pair_init(0, 0);
    go(once_then_write, &v1);
    go(once_then_write, &v2);
    pair_wait();
}

static void arm_then_write(void *a) {
    (void)a;
    CHECK(goro_timer_reset(P.tm, 1000000) >= 0);
    put(&shared, 1);
    finished();
}

static void tick_then_read(void *a) {
    (void)a;
    int64_t t;
    CHECK_EQ(goro_chan_recv(goro_timer_chan(P.tm), &t), 0);
    (void)get(&shared);
    finished();
}

/* The write follows the arming whose value the reader receives. */
static void race_timer_after(void) {
    pair_init(0, 0);
    CHECK_EQ(goro_timer_make(&P.tm, INT64_C(3600000000000), 0), 0);
    go(arm_then_write, NULL);
    go(tick_then_read, NULL);
    pair_wait();
    goro_timer_free(P.tm);
}

/* ------------------------------------------------------------------ synchronised */

static void write_then_send(void *a) {
    (void)a;
    put(&shared, 1);
    CHECK_EQ(goro_chan_send(P.c, &one), 0);
    finished();
}

static void recv_then_check(void *a) {
    (void)a;
    int v;
    CHECK_EQ(goro_chan_recv(P.c, &v), 0);
    CHECK_EQ(get(&shared), 1);
    finished();
}

/* Send before the receive completes; unbuffered, buffered and with empty elements. */
static void sync_unbuffered(void) {
    run_pair(0, sizeof(int), write_then_send, recv_then_check);
}

static void sync_buffered(void) {
    run_pair(4, sizeof(int), write_then_send, recv_then_check);
}

static void sync_buffered_empty_elements(void) {
    run_pair(4, 0, write_then_send, recv_then_check);
}

static void send_then_check(void *a) {
    (void)a;
    CHECK_EQ(goro_chan_send(P.c, &one), 0);
    CHECK_EQ(get(&shared), 1);
    finished();
}

/* Unbuffered: the receive happens before the send completes. */
static void sync_unbuffered_recv_first(void) {
    run_pair(0, sizeof(int), write_then_recv, send_then_check);
}

/* Capacity 2: the first receive happens before the third send completes. */
static void sync_cap_edge(void) {
    pair_init(2, sizeof(int));
    go(write_then_recv, NULL);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(goro_chan_send(P.c, &one), 0);
    CHECK_EQ(get(&shared), 1);
    finished();
    pair_wait();
}

static void sem_user(void *a) {
    int v;
    CHECK_EQ(goro_chan_send(P.c, &one), 0); /* acquire */
    put(&shared, get(&shared) + *(int *)a);
    CHECK_EQ(goro_chan_recv(P.c, &v), 0); /* release */
    finished();
}

/* A channel of capacity 1 as a lock (the same edge, C = 1). */
static void sync_channel_lock(void) {
    static int v1 = 1, v2 = 2;
    pair_init(1, sizeof(int));
    go(sem_user, &v1);
    go(sem_user, &v2);
    pair_wait();
    CHECK_EQ(get(&shared), 3);
}

static void write_then_close(void *a) {
    (void)a;
    put(&shared, 1);
    CHECK_EQ(goro_chan_close(P.c), 0);
    finished();
}

static void recv_closed_then_check(void *a) {
    (void)a;
    int v;
    CHECK_EQ(goro_chan_recv(P.c, &v), GORO_ECLOSED);
    CHECK_EQ(get(&shared), 1);
    finished();
}

static void sync_close(void) {
    pair_init(0, sizeof(int));
    go(recv_closed_then_check, NULL); /* often parked when the close comes */
    go(write_then_close, NULL);
    pair_wait();
}

static void write_then_select_send(void *a) {
    goro_chan *idle = a;
    put(&shared, 1);
    int v = 7;
    goro_case k[2] = {{.chan = idle, .op = GORO_RECV, .elem = &v},
                      {.chan = P.c, .op = GORO_SEND, .elem = &one}};
    CHECK_EQ(goro_select(k, 2, GORO_FOREVER), 1);
    finished();
}

static void select_recv_then_check(void *a) {
    goro_chan *idle = a;
    int v, w;
    goro_case k[2] = {{.chan = P.c, .op = GORO_RECV, .elem = &v},
                      {.chan = idle, .op = GORO_RECV, .elem = &w}};
    CHECK_EQ(goro_select(k, 2, goro_now() + INT64_C(60000000000)), 0);
    CHECK_EQ(get(&shared), 1);
    finished();
}

/* Select is its chosen case, parked or not, with a deadline or without. */
static void sync_select(void) {
    goro_chan *idle;
    CHECK_EQ(goro_chan_make(&idle, sizeof(int), 0), 0);
    pair_init(0, sizeof(int));
    go(select_recv_then_check, idle);
    go(write_then_select_send, idle);
    pair_wait();
    goro_chan_release(idle);
}

static void locked_add(void *a) {
    for (int i = 0; i < 100; i++) {
        goro_mutex_lock(&P.m1);
        put(&shared, get(&shared) + *(int *)a);
        goro_mutex_unlock(&P.m1);
        if (i % 10 == 0)
            goro_yield();
    }
    finished();
}

static void sync_mutex(void) {
    static int v1 = 1, v2 = 2;
    pair_init(0, 0);
    go(locked_add, &v1);
    go(locked_add, &v2);
    pair_wait();
    CHECK_EQ(get(&shared), 300);
}

static void rw_writer(void *a) {
    (void)a;
    goro_rwmutex_lock(&P.rw);
    put(&shared, get(&shared) + 1);
    goro_rwmutex_unlock(&P.rw);
    finished();
}

static void rw_reader(void *a) {
    (void)a;
    goro_rwmutex_rlock(&P.rw);
    int v = get(&shared);
    CHECK(v == 0 || v == 1);
    goro_rwmutex_runlock(&P.rw);
    goro_rwmutex_lock(&P.rw); /* and a write after the read lock's release */
    put(&shared2, v);
    goro_rwmutex_unlock(&P.rw);
    finished();
}

static void sync_rwmutex(void) {
    run_pair(0, 0, rw_reader, rw_writer);
}

static int parts[8];

static void part_writer(void *a) {
    put(&parts[(intptr_t)a], (int)(intptr_t)a + 1);
    goro_wg_done(&P.wg);
}

static void sync_waitgroup(void) {
    goro_wg_add(&P.wg, 8);
    for (intptr_t i = 0; i < 8; i++)
        go(part_writer, (void *)i);
    goro_wg_wait(&P.wg);
    for (int i = 0; i < 8; i++)
        CHECK_EQ(get(&parts[i]), i + 1);
}

static void once_init(void *a) {
    (void)a;
    put(&shared, 42);
}

static void once_then_check(void *a) {
    (void)a;
    goro_once_do(&P.once, once_init, NULL);
    CHECK_EQ(get(&shared), 42);
    finished();
}

static void sync_once(void) {
    run_pair(0, 0, once_then_check, once_then_check);
}

static goro_cond cond = GORO_COND_INIT;
static int ready;

static void cond_waiter(void *a) {
    (void)a;
    goro_mutex_lock(&P.m1);
    while (!ready)
        goro_cond_wait(&cond, &P.m1);
    goro_mutex_unlock(&P.m1);
    CHECK_EQ(get(&shared), 1);
    finished();
}

static void cond_signaller(void *a) {
    (void)a;
    put(&shared, 1);
    goro_mutex_lock(&P.m1);
    ready = 1;
    goro_mutex_unlock(&P.m1);
    goro_cond_signal(&cond);
    finished();
}

static void sync_cond(void) {
    run_pair(0, 0, cond_waiter, cond_signaller);
}

static void spawned_check_then_write(void *a) {
    (void)a;
    CHECK_EQ(get(&shared), 1);
    put(&shared2, 2);
    goro_wg_done(&P.wg);
}

/* The spawner's past happens before the goroutine; Done before Wait returns. */
static void sync_spawn(void) {
    put(&shared, 1);
    goro_wg_add(&P.wg, 1);
    go(spawned_check_then_write, NULL);
    goro_wg_wait(&P.wg);
    CHECK_EQ(get(&shared2), 2);
}

static void write_then_arm(void *a) {
    (void)a;
    put(&shared, 1);
    CHECK(goro_timer_reset(P.tm, 1000000) >= 0);
    finished();
}

static void tick_then_check(void *a) {
    (void)a;
    int64_t t;
    CHECK_EQ(goro_chan_recv(goro_timer_chan(P.tm), &t), 0);
    CHECK_EQ(get(&shared), 1);
    finished();
}

/* The arming happens before the value it sends is received. */
static void sync_timer(void) {
    pair_init(0, 0);
    CHECK_EQ(goro_timer_make(&P.tm, INT64_C(3600000000000), 0), 0);
    go(write_then_arm, NULL);
    go(tick_then_check, NULL);
    pair_wait();
    goro_timer_free(P.tm);
}

typedef struct box {
    int v;
} box;

static void box_user(void *a) {
    (void)a;
    box *b;
    CHECK_EQ(goro_chan_recv(P.c, &b), 0);
    CHECK_EQ(get(&b->v), 1);
    put(&b->v, 2);
    CHECK_EQ(goro_chan_send(P.c, &b), 0);
    finished();
}

/* A heap object handed over and back through one channel. */
static void sync_pointer_handoff(void) {
    pair_init(0, sizeof(box *));
    go(box_user, NULL);
    box *b = malloc(sizeof *b);
    CHECK(b != NULL);
    put(&b->v, 1);
    CHECK_EQ(goro_chan_send(P.c, &b), 0);
    CHECK_EQ(goro_chan_recv(P.c, &b), 0);
    CHECK_EQ(get(&b->v), 2);
    free(b);
    finished();
    pair_wait();
}

static __attribute__((noinline)) void fill(int *a, int n, int v) {
    for (int i = 0; i < n; i++)
        a[i] = v + i;
}

static void stack_user(void *a) {
    int local[64];
    fill(local, 64, (int)(intptr_t)a);
    CHECK_EQ(get(&local[63]), (int)(intptr_t)a + 63);
    if ((intptr_t)a % 7 == 0) {
        goro_wg_done(&P.wg);
        goro_exit(); /* its stack's fiber goes; the stack is cleared for the next one */
    }
    goro_wg_done(&P.wg);
}

/* Goroutines that reuse each other's stacks, unordered among themselves, do not race on
 * their locals (more of them than the quarantine, race.h R2). */
static void sync_stack_reuse(void) {
    enum { N = 400 };
    goro_wg_add(&P.wg, N);
    for (intptr_t i = 0; i < N; i++) {
        go(stack_user, (void *)i);
        if (i % 16 == 0)
            goro_yield();
    }
    goro_wg_wait(&P.wg);
}

typedef struct fdpair {
    int rd, wr;
} fdpair;

static void read_until_closed(void *a) {
    fdpair *f = a;
    char c;
    CHECK_EQ(goro_read(f->rd, &c, 1, GORO_FOREVER), GORO_ECANCELED);
    CHECK_EQ(get(&shared), 1);
    finished();
}

/* goro_close happens before the call that fails because of it. */
static void sync_fd_close(void) {
    static fdpair f;
    int p[2];
    CHECK(pipe2(p, O_CLOEXEC) == 0);
    f.rd = p[0];
    f.wr = p[1];
    pair_init(0, 0);
    go(read_until_closed, &f);
    goro_stats st;
    do { /* until it is parked in the read; the counter is no synchronisation */
        goro_sleep(1000000);
        goro_stats_get(&st);
    } while (st.netpoll_waiting == 0);
    put(&shared, 1);
    CHECK_EQ(goro_close(f.rd), 0);
    finished();
    pair_wait();
    CHECK_EQ(goro_close(f.wr), 0);
}

/* ------------------------------------------------------------------ driver */

typedef struct scenario {
    const char *name;
    int racy;
    void (*run)(void);
} scenario;

static const scenario scenarios[] = {
    {"no synchronisation", 1, race_plain},
    {"unbuffered: write after the send, read after the receive", 1, race_unbuffered_after},
    {"unbuffered: read after another pair's hand-off", 1, race_unbuffered_other_pair},
    {"buffered: write after the send, read before the receive", 1, race_buffered_before_recv},
    {"capacity 2: read after the second send", 1, race_cap_not_reached},
    {"close: write after the close", 1, race_close_after},
    {"select: write after the send case", 1, race_select_after},
    {"two different mutexes", 1, race_two_mutexes},
    {"rwmutex: two read locks", 1, race_two_readers},
    {"waitgroup: write after Done", 1, race_wg_after_done},
    {"spawn: write after the spawn", 1, race_spawn_after},
    {"once: writes after the once", 1, race_once_after},
    {"timer: write after the arming", 1, race_timer_after},
    {"unbuffered: send before the receive completes", 0, sync_unbuffered},
    {"buffered: send before the receive completes", 0, sync_buffered},
    {"buffered, empty elements", 0, sync_buffered_empty_elements},
    {"unbuffered: receive before the send completes", 0, sync_unbuffered_recv_first},
    {"capacity 2: first receive before the third send completes", 0, sync_cap_edge},
    {"capacity 1 channel as a lock", 0, sync_channel_lock},
    {"close before the receive that sees it", 0, sync_close},
    {"select", 0, sync_select},
    {"mutex", 0, sync_mutex},
    {"rwmutex", 0, sync_rwmutex},
    {"waitgroup", 0, sync_waitgroup},
    {"once", 0, sync_once},
    {"cond", 0, sync_cond},
    {"spawn and waitgroup", 0, sync_spawn},
    {"timer arming before its value", 0, sync_timer},
    {"heap object through a channel and back", 0, sync_pointer_handoff},
    {"stack reuse between unordered goroutines", 0, sync_stack_reuse},
    {"goro_close before the read it fails", 0, sync_fd_close},
};

static void scenario_main(void *arg) {
    const scenario *s = arg;
    put(&shared2, get(&shared)); /* goro_run's caller wrote shared: ordered before main */
    s->run();
    put(&shared, -1); /* read by goro_run's caller after it returns */
}

typedef struct child_arg {
    const scenario *s;
    int procs;
} child_arg;

static void child(void *arg) {
    child_arg *c = arg;
    char procs[8];
    snprintf(procs, sizeof procs, "%d", c->procs);
    setenv("GORO_MAXPROCS", procs, 1);
    put(&shared, 0);
    int rc = goro_run(NULL, scenario_main, (void *)c->s);
    CHECKF(rc == 0, "goro_run: %s", goro_strerror(rc));
    CHECK_EQ(get(&shared), -1); /* main's return happens before goro_run returns */
}

int main(void) {
    int failed = 0;
    for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++) {
        const scenario *s = &scenarios[i];
        for (int procs = 1; procs <= 2; procs++) {
            child_arg a = {s, procs};
            tu_child c;
            tu_run_child(child, &a, 60, &c);
            char how[128];
            const char *warning = strstr(c.err, "WARNING: ThreadSanitizer:");
            int reported = strstr(c.err, "WARNING: ThreadSanitizer: data race") != NULL;
            int ok;
            if (s->racy) {
                ok = reported;
                printf("%s, GORO_MAXPROCS=%d: %s\n", s->name, procs,
                       ok ? "race reported" : "FAILED: no race reported");
            } else {
                ok = warning == NULL && WIFEXITED(c.status) &&
                     WEXITSTATUS(c.status) == TU_CHILD_RETURNED;
                printf("%s, GORO_MAXPROCS=%d: %s (child %s)\n", s->name, procs,
                       ok ? "no report" : "FAILED", tu_child_how(&c, how, sizeof how));
            }
            if (!ok) {
                tu_show_child(s->name, &c, 6000);
                failed++;
            }
            free(c.err);
        }
    }
    CHECKF(failed == 0, "%d scenario runs failed", failed);
    return tu_pass("race_detect");
}
