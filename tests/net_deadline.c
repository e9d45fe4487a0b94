/*
 * net_deadline: deadlines on goro_read, goro_write, goro_accept and goro_fd_wait.
 *
 *  - With nothing to do, each returns GORO_ETIMEDOUT no earlier than its deadline (by
 *    goro_now and by CLOCK_MONOTONIC) and not later than LATE_NS after it (times nu_slow()
 *    for sanitizer and emulated builds; the bound is generous for a noisy machine, its job
 *    is to catch a deadline that is missed, not to measure timer precision).
 *  - Deadline 0 is GORO_EAGAIN at once; a deadline already passed is GORO_ETIMEDOUT at once.
 *  - Many goroutines with staggered deadlines, each on its own pipe or Unix socket: none wakes
 *    early, none very late, and they finish in deadline order except between deadlines
 *    closer than the lateness bound.
 *  - A read that gets data before its deadline returns the data at once; its timer, still
 *    pending, does not disturb the next call on the fd (a stale timer firing would cut the
 *    next, longer, deadline short).
 *  - Reads racing their deadline (data written within 0.1 ms of it), while goro_maxprocs
 *    changes move the timers between Ps: each gets the byte or times out (not early), and
 *    a byte that came just after the timeout is still there to read.
 */
#include "netutil.h"

#include <sys/socket.h>

#define LATE_NS (200 * TU_MS)
#define WAIT_NS (50 * TU_MS)

static char addr[64];
static int lfd;
static int64_t late_bound;

static void connect_pair(int *client, int *server) {
    int64_t deadline = goro_now() + 5 * nu_slow() * NU_SEC;
    *client = goro_tcp_dial(addr, deadline);
    CHECKF(*client >= 0, "goro_tcp_dial: %s", goro_strerror(*client));
    *server = goro_accept(lfd, deadline);
    CHECKF(*server >= 0, "goro_accept: %s", goro_strerror(*server));
}

enum { OP_READ, OP_WRITE, OP_ACCEPT, OP_WAIT_R, OP_WAIT_W, NOPS };
static const char *const op_names[] = {"goro_read", "goro_write", "goro_accept",
                                       "goro_fd_wait(READABLE)", "goro_fd_wait(WRITABLE)"};

static char chunk[256 * 1024];

/* One call of op on fd with the deadline. OP_WRITE writes `chunk` (the fd is full). */
static long do_op(int op, int fd, int64_t deadline) {
    char buf[64];
    switch (op) {
    case OP_READ:
        return goro_read(fd, buf, sizeof buf, deadline);
    case OP_WRITE:
        return goro_write(fd, chunk, sizeof chunk, deadline);
    case OP_ACCEPT:
        return goro_accept(fd, deadline);
    case OP_WAIT_R:
        return goro_fd_wait(fd, GORO_READABLE, deadline);
    default:
        return goro_fd_wait(fd, GORO_WRITABLE, deadline);
    }
}

/* Fills fd's send path until a write would wait. */
static void fill(int fd) {
    for (;;) {
        ssize_t w = goro_write(fd, chunk, sizeof chunk, 0);
        if (w == GORO_EAGAIN)
            return;
        CHECKF(w == (ssize_t)sizeof chunk, "filling the socket: %zd (%s)", w,
               w < 0 ? goro_strerror((int)w) : "short");
    }
}

static void check_timeout(int op, int fd) {
    const char *name = op_names[op];
    long r = do_op(op, fd, 0);
    CHECKF(r == GORO_EAGAIN, "%s with deadline 0: %ld (%s), expected GORO_EAGAIN", name, r,
           r < 0 ? goro_strerror((int)r) : "ready");
    int64_t t0 = goro_now();
    r = do_op(op, fd, t0 - 1);
    int64_t took = goro_now() - t0;
    CHECKF(r == GORO_ETIMEDOUT, "%s with a deadline already passed: %ld (%s)", name, r,
           r < 0 ? goro_strerror((int)r) : "ready");
    CHECKF(took < late_bound, "%s with a passed deadline took %.1f ms", name, (double)took / 1e6);

    for (int rep = 0; rep < 3; rep++) {
        int64_t m0 = nu_mono();
        int64_t deadline = goro_now() + WAIT_NS;
        r = do_op(op, fd, deadline);
        int64_t t = goro_now(), m1 = nu_mono();
        CHECKF(r == GORO_ETIMEDOUT, "%s with a %lld ms deadline: %ld (%s)", name,
               (long long)(WAIT_NS / TU_MS), r, r < 0 ? goro_strerror((int)r) : "ready");
        CHECKF(t >= deadline, "%s returned GORO_ETIMEDOUT %lld ns before its deadline", name,
               (long long)(deadline - t));
        CHECKF(m1 - m0 >= WAIT_NS, "%s timed out after %lld ns by CLOCK_MONOTONIC", name,
               (long long)(m1 - m0));
        CHECKF(t - deadline < late_bound, "%s returned GORO_ETIMEDOUT %.1f ms after its deadline",
               name, (double)(t - deadline) / 1e6);
        if (rep == 0)
            printf("%-24s deadline 0: EAGAIN; passed: ETIMEDOUT; +50 ms: ETIMEDOUT %.3f ms "
                   "late\n",
                   name, (double)(t - deadline) / 1e6);
    }
}

static void single_timeouts(void) {
    int c, s;
    connect_pair(&c, &s);
    check_timeout(OP_READ, c);
    check_timeout(OP_WAIT_R, c);
    check_timeout(OP_ACCEPT, lfd);
    /* Fixed buffer sizes turn off autotuning: once full, the socket stays full. */
    int v = 64 * 1024;
    CHECK(setsockopt(c, SOL_SOCKET, SO_SNDBUF, &v, sizeof v) == 0);
    CHECK(setsockopt(s, SOL_SOCKET, SO_RCVBUF, &v, sizeof v) == 0);
    fill(c);
    check_timeout(OP_WRITE, c);
    check_timeout(OP_WAIT_W, c);
    CHECK_EQ(goro_close(c), 0);
    CHECK_EQ(goro_close(s), 0);
}

/* ---------------------------------------------------------------- data before the deadline */

typedef struct delayed {
    int fd;
    int64_t delay;
    goro_waitgroup wg;
} delayed;

static void delayed_write(void *arg) {
    delayed *d = arg;
    goro_sleep(d->delay);
    CHECK_EQ(goro_write(d->fd, "data", 4, GORO_FOREVER), 4);
    goro_wg_done(&d->wg);
}

static void data_in_time(void) {
    int c, s;
    connect_pair(&c, &s);
    delayed d = {s, 10 * TU_MS, GORO_WAITGROUP_INIT};
    goro_wg_add(&d.wg, 1);
    /* Before the spawn: on another P the writer's 10 ms may start at once. */
    int64_t t0 = goro_now();
    CHECK_EQ(goro_spawn(delayed_write, &d), 0);
    char buf[16];
    int64_t first_deadline = t0 + 60 * TU_MS;
    ssize_t r = goro_read(c, buf, sizeof buf, first_deadline);
    int64_t t1 = goro_now();
    CHECKF(r == 4 && memcmp(buf, "data", 4) == 0,
           "read with data coming before the deadline: "
           "%zd (%s)",
           r, r < 0 ? goro_strerror((int)r) : "bytes");
    CHECKF(t1 - t0 >= 10 * TU_MS, "the read returned before the data was written");
    CHECKF(t1 < first_deadline, "the read with data at 10 ms returned after its 60 ms deadline");
    goro_wg_wait(&d.wg);
    printf("data 10 ms into a 60 ms read deadline: returned after %.1f ms\n",
           (double)(t1 - t0) / 1e6);

    /* The first read's timer (due at 60 ms) must not cut this 150 ms wait short. */
    int64_t second_deadline = goro_now() + 150 * TU_MS;
    r = goro_read(c, buf, sizeof buf, second_deadline);
    int64_t t2 = goro_now();
    CHECKF(r == GORO_ETIMEDOUT, "second read: %zd (%s)", r,
           r < 0 ? goro_strerror((int)r) : "bytes");
    CHECKF(t2 >= second_deadline,
           "the second read timed out %.1f ms before its deadline, %.1f ms after the first "
           "read's: a stale timer",
           (double)(second_deadline - t2) / 1e6, (double)(t2 - first_deadline) / 1e6);

    /* The same for goro_fd_wait. */
    delayed d2 = {s, 10 * TU_MS, GORO_WAITGROUP_INIT};
    goro_wg_add(&d2.wg, 1);
    CHECK_EQ(goro_spawn(delayed_write, &d2), 0);
    first_deadline = goro_now() + 60 * TU_MS;
    int w = goro_fd_wait(c, GORO_READABLE, first_deadline);
    CHECKF(w == GORO_READABLE, "fd_wait with data coming at 10 ms: %d (%s)", w,
           w < 0 ? goro_strerror(w) : "");
    goro_wg_wait(&d2.wg);
    CHECK_EQ(nu_read_full(c, buf, 4, GORO_FOREVER), 4);
    second_deadline = goro_now() + 150 * TU_MS;
    w = goro_fd_wait(c, GORO_READABLE, second_deadline);
    CHECK_EQ(w, GORO_ETIMEDOUT);
    CHECKF(goro_now() >= second_deadline, "goro_fd_wait cut short by a stale timer");

    /* A deadline earlier than the one a previous read left armed (the fd's read timer is
     * lazy, netpoll.c N7) is still kept: a read with 2 s to go gets data, then a read with
     * 50 ms times out at 50 ms, not at 2 s. */
    delayed d3 = {s, 10 * TU_MS, GORO_WAITGROUP_INIT};
    goro_wg_add(&d3.wg, 1);
    CHECK_EQ(goro_spawn(delayed_write, &d3), 0);
    CHECK_EQ(goro_read(c, buf, sizeof buf, goro_now() + 2000 * TU_MS), 4);
    goro_wg_wait(&d3.wg);
    int64_t t3 = goro_now(), third_deadline = t3 + 50 * TU_MS;
    r = goro_read(c, buf, sizeof buf, third_deadline);
    int64_t t4 = goro_now();
    CHECK_EQ(r, GORO_ETIMEDOUT);
    CHECKF(t4 >= third_deadline && t4 - third_deadline < 200 * TU_MS * nu_slow(),
           "a 50 ms read after a 2 s one timed out after %.1f ms", (double)(t4 - t3) / 1e6);

    CHECK_EQ(goro_close(c), 0);
    CHECK_EQ(goro_close(s), 0);
}

/* ---------------------------------------------------------------- many staggered deadlines */

typedef struct sleeper {
    int idx;
    int op;
    int fd;
    int64_t deadline;
    int64_t woke;
    long result;
    long order;
} sleeper;

static _Atomic long finish_seq;
static goro_waitgroup many_wg = GORO_WAITGROUP_INIT;

static void sleeper_run(void *arg) {
    sleeper *sl = arg;
    sl->result = do_op(sl->op, sl->fd, sl->deadline);
    sl->woke = goro_now();
    sl->order = atomic_fetch_add(&finish_seq, 1);
    goro_wg_done(&many_wg);
}

static void staggered(void) {
    long n = tu_scaled(400, 50);
    sleeper *sl = calloc((size_t)n, sizeof *sl);
    int(*pipes)[2] = calloc((size_t)n, sizeof *pipes);
    CHECK(sl != NULL && pipes != NULL);
    int64_t base = goro_now() + 30 * TU_MS;
    goro_wg_add(&many_wg, (int)n);
    for (long i = 0; i < n; i++) {
        /* Spawned in a scrambled order so that spawn order does not predict wake order. */
        long k = (i * 7919) % n;
        sl[k].idx = (int)k;
        sl[k].deadline = base + k * 250 * TU_US;
        /* Pipes and Unix stream sockets, read or waited on for readability. */
        if (k % 4 >= 2)
            CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pipes[k]) == 0);
        else
            CHECK(pipe2(pipes[k], O_CLOEXEC) == 0);
        sl[k].op = k % 2 == 1 ? OP_WAIT_R : OP_READ;
        sl[k].fd = pipes[k][0];
        CHECK_EQ(goro_spawn(sleeper_run, &sl[k]), 0);
    }
    goro_wg_wait(&many_wg);
    int64_t worst = 0, total_late = 0;
    long inversions = 0, close_inversions = 0;
    for (long k = 0; k < n; k++) {
        CHECKF(sl[k].result == GORO_ETIMEDOUT, "waiter %ld (%s): %ld (%s)", k, op_names[sl[k].op],
               sl[k].result, sl[k].result < 0 ? goro_strerror((int)sl[k].result) : "ready");
        int64_t late = sl[k].woke - sl[k].deadline;
        CHECKF(late >= 0, "waiter %ld (%s) timed out %lld ns before its deadline", k,
               op_names[sl[k].op], (long long)-late);
        CHECKF(late < late_bound, "waiter %ld (%s) timed out %.1f ms after its deadline", k,
               op_names[sl[k].op], (double)late / 1e6);
        if (late > worst)
            worst = late;
        total_late += late;
        for (long j = k + 1; j < n; j++) {
            if (sl[j].order < sl[k].order) { /* later deadline, finished first */
                if (sl[j].deadline - sl[k].deadline >= late_bound)
                    inversions++;
                else
                    close_inversions++;
            }
        }
    }
    printf("%ld staggered deadlines (every 0.25 ms): latest %.3f ms late, mean %.3f ms; %ld "
           "out of order (all within %lld ms of each other)\n",
           n, (double)worst / 1e6, (double)total_late / (double)n / 1e6, close_inversions,
           (long long)(late_bound / TU_MS));
    CHECKF(inversions == 0,
           "%ld pairs finished out of deadline order although their deadlines "
           "were more than %lld ms apart",
           inversions, (long long)(late_bound / TU_MS));
    for (long k = 0; k < n; k++) {
        CHECK_EQ(goro_close(pipes[k][0]), 0);
        CHECK_EQ(goro_close(pipes[k][1]), 0);
    }
    goro_stats st;
    goro_stats_get(&st);
    CHECKF(st.netpoll_waiting == 0, "%lld goroutines still counted on the netpoller",
           (long long)st.netpoll_waiting);
    free(sl);
    free(pipes);
}

/* ---------------------------------------------------------------- races */

/* Data arriving at about the deadline: each reader gets the byte or GORO_ETIMEDOUT (not
 * early), and after a timeout the byte is still there to read, never lost. Meanwhile main
 * changes goro_maxprocs, which moves the waiters' deadline timers between Ps. */
#define RACE_PAIRS 16

typedef struct race {
    int p[2];
    int64_t deadline, write_at;
    char byte;
    int timed_out;
    goro_waitgroup *wg;
} race;

static void race_reader(void *arg) {
    race *r = arg;
    char c = 0;
    ssize_t n = goro_read(r->p[0], &c, 1, r->deadline);
    if (n == GORO_ETIMEDOUT) {
        int64_t t = goro_now();
        CHECKF(t >= r->deadline, "a racing read timed out %lld ns early",
               (long long)(r->deadline - t));
        r->timed_out = 1;
        n = goro_read(r->p[0], &c, 1, goro_now() + 5 * nu_slow() * NU_SEC);
        CHECKF(n == 1, "after a timeout, the byte written at about the deadline: %zd (%s)", n,
               n < 0 ? goro_strerror((int)n) : "EOF");
    }
    CHECKF(n == 1, "racing read: %zd (%s)", n, n < 0 ? goro_strerror((int)n) : "EOF");
    CHECKF(c == r->byte, "racing read got 0x%02x, written 0x%02x", (unsigned char)c,
           (unsigned char)r->byte);
    goro_wg_done(r->wg);
}

static void race_writer(void *arg) {
    race *r = arg;
    goro_sleep_until(r->write_at);
    CHECK_EQ(goro_write(r->p[1], &r->byte, 1, GORO_FOREVER), 1);
    goro_wg_done(r->wg);
}

static void races(void) {
    race rs[RACE_PAIRS];
    for (int i = 0; i < RACE_PAIRS; i++)
        CHECK(pipe2(rs[i].p, O_CLOEXEC) == 0);
    int procs0 = goro_maxprocs(0);
    long rounds = tu_scaled(300, 30), timeouts = 0;
    uint64_t rng = 4242;
    int64_t t0 = goro_now();
    for (long round = 0; round < rounds; round++) {
        goro_waitgroup wg = GORO_WAITGROUP_INIT;
        goro_wg_add(&wg, 2 * RACE_PAIRS);
        int64_t now = goro_now();
        for (int i = 0; i < RACE_PAIRS; i++) {
            race *r = &rs[i];
            r->deadline = now + 200 * TU_US + (int64_t)(tu_rand(&rng) % (1000 * TU_US));
            r->write_at = r->deadline - 100 * TU_US + (int64_t)(tu_rand(&rng) % (200 * TU_US));
            r->byte = (char)(round * RACE_PAIRS + i);
            r->timed_out = 0;
            r->wg = &wg;
            CHECK_EQ(goro_spawn(race_reader, r), 0);
            CHECK_EQ(goro_spawn(race_writer, r), 0);
        }
        if (round % 4 == 0)
            goro_maxprocs(1 + (int)(tu_rand(&rng) % 4));
        goro_wg_wait(&wg);
        for (int i = 0; i < RACE_PAIRS; i++)
            timeouts += rs[i].timed_out;
    }
    goro_maxprocs(procs0);
    printf("%ld rounds of %d reads racing their deadline (goro_maxprocs changing): %ld timed "
           "out, %ld got the data first, in %.0f ms\n",
           rounds, RACE_PAIRS, timeouts, rounds * RACE_PAIRS - timeouts,
           (double)(goro_now() - t0) / 1e6);
    for (int i = 0; i < RACE_PAIRS; i++) {
        CHECK_EQ(goro_close(rs[i].p[0]), 0);
        CHECK_EQ(goro_close(rs[i].p[1]), 0);
    }
}

static void test_main(void *arg) {
    (void)arg;
    lfd = goro_tcp_listen("127.0.0.1:0", 0);
    CHECKF(lfd >= 0, "goro_tcp_listen: %s", goro_strerror(lfd));
    nu_addr(addr, sizeof addr, "127.0.0.1", goro_tcp_port(lfd));
    single_timeouts();
    data_in_time();
    staggered();
    races();
    CHECK_EQ(goro_close(lfd), 0);
    nu_check_netpoll("net_deadline");
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0); /* what was printed survives a failed CHECK */
    late_bound = LATE_NS * nu_slow();
    nu_watchdog_start("net_deadline", 40);
    int rc = goro_run(NULL, test_main, NULL);
    CHECKF(rc == 0, "goro_run: %s", goro_strerror(rc));
    nu_watchdog_stop();
    return tu_pass("net_deadline");
}
