/*
 * net_close_parked: goro_close wakes the goroutines parked on the fd, and leaves nothing
 * behind for the next file that gets the same fd number.
 *
 *  - A goroutine parked in goro_read on a socket returns GORO_ECANCELED promptly when
 *    another goroutine calls goro_close(fd); goro_close returns 0 and the fd is closed.
 *  - The same for goro_accept on a listener, goro_fd_wait, a goroutine parked in goro_write
 *    on a full socket, and a reader and a writer parked on one socket at the same time.
 *  - An fd closed while it had unread data (reported readable) and a parked writer is then
 *    reused by a new socket (the lowest free number, or dup2 onto it): the old file's
 *    state does not leak into it. goro_read with deadline 0 is GORO_EAGAIN,
 *    goro_fd_wait(READABLE) times out, a reader parked on the new socket is not woken by
 *    anything but its own data, and that data does wake it (the new file is registered
 *    with the netpoller); goro_close cancels a waiter on it as before.
 *  - goro_read on a closed fd number is -EBADF.
 *  - Races: parked reads whose deadline and goro_close come within 0.1 ms of each other end
 *    with GORO_ETIMEDOUT or GORO_ECANCELED, never hang, and leave no waiter counted on the
 *    netpoller.
 *  - Closes under traffic: goroutines reading sockets whose peer (a plain thread) sends a
 *    byte every 0.1 ms goro_close them at their read deadline; the peer sees every one
 *    of them closed (end of file or a reset) soon after. A close that left the fd's poll
 *    registered in the kernel (an io_uring poll request holds the file) would keep the
 *    socket open for ever.
 */
#include "netutil.h"

#include <pthread.h>
#include <stdbool.h>
#include <sys/socket.h>

#define PROMPT_NS (200 * TU_MS) /* "promptly", times nu_slow() */

static char addr[64];
static int lfd;

enum { OP_READ, OP_WRITE, OP_ACCEPT, OP_WAIT };
static const char *const op_names[] = {"goro_read", "goro_write", "goro_accept", "goro_fd_wait"};

typedef struct parked {
    int op;
    int fd;
    int64_t deadline;
    const char *buf; /* OP_WRITE */
    size_t n;
    long result;
    int64_t done_at;
    atomic_int done;
    char got[64]; /* OP_READ: the bytes read */
    goro_waitgroup *wg;
} parked;

static void run_parked(void *arg) {
    parked *p = arg;
    switch (p->op) {
    case OP_READ:
        p->result = goro_read(p->fd, p->got, sizeof p->got, p->deadline);
        break;
    case OP_WRITE:
        p->result = goro_write(p->fd, p->buf, p->n, p->deadline);
        break;
    case OP_ACCEPT:
        p->result = goro_accept(p->fd, p->deadline);
        break;
    default:
        p->result = goro_fd_wait(p->fd, GORO_READABLE, p->deadline);
        break;
    }
    p->done_at = goro_now();
    atomic_store(&p->done, 1);
    goro_wg_done(p->wg);
}

/* Spawns a goroutine that parks in op on fd (OP_WRITE: buf[0..n)), deadline FOREVER. */
static void start_parked(parked *p, int op, int fd, const char *buf, size_t n, goro_waitgroup *wg) {
    memset(p, 0, sizeof *p);
    p->op = op;
    p->fd = fd;
    p->deadline = GORO_FOREVER;
    p->buf = buf;
    p->n = n;
    p->wg = wg;
    goro_wg_add(wg, 1);
    CHECK_EQ(goro_spawn(run_parked, p), 0);
}

static void connect_pair(int *client, int *server) {
    int64_t deadline = goro_now() + 5 * nu_slow() * NU_SEC;
    *client = goro_tcp_dial(addr, deadline);
    CHECKF(*client >= 0, "goro_tcp_dial: %s", goro_strerror(*client));
    *server = goro_accept(lfd, deadline);
    CHECKF(*server >= 0, "goro_accept: %s", goro_strerror(*server));
}

static int is_closed(int fd) {
    return fcntl(fd, F_GETFD) < 0 && errno == EBADF;
}

/* goro_close(fd) while ps[0..n) are parked on it: each returns GORO_ECANCELED promptly. */
static void close_parked(int fd, parked *ps, int n, goro_waitgroup *wg, const char *what) {
    nu_wait_netpoll(n, 10, what);
    for (int i = 0; i < n; i++)
        CHECKF(!atomic_load(&ps[i].done), "%s: %s returned %ld before the close", what,
               op_names[ps[i].op], ps[i].result);
    int64_t t0 = goro_now();
    CHECK_EQ(goro_close(fd), 0);
    /* The close itself waits for the calls in progress on fd to leave (as Go's). */
    goro_wg_wait(wg);
    CHECKF(is_closed(fd), "%s: fd %d still open after goro_close and its callers returned", what,
           fd);
    for (int i = 0; i < n; i++) {
        parked *p = &ps[i];
        double ms = (double)(p->done_at - t0) / 1e6;
        CHECKF(p->result == GORO_ECANCELED, "%s: %s returned %ld (%s), expected GORO_ECANCELED",
               what, op_names[p->op], p->result,
               p->result < 0 ? goro_strerror((int)p->result) : "not an error");
        CHECKF(p->done_at - t0 < PROMPT_NS * nu_slow(), "%s: %s returned %.1f ms after the close",
               what, op_names[p->op], ms);
        printf("%s: %s returned GORO_ECANCELED %.3f ms after goro_close\n", what, op_names[p->op],
               ms);
    }
    goro_stats st;
    goro_stats_get(&st);
    CHECKF(st.netpoll_waiting == 0, "%s: %lld goroutines still counted on the netpoller", what,
           (long long)st.netpoll_waiting);
}

/* Makes the next socket take fd number num: connects a new pair and, if the client did
 * not get num by itself, dup2s it there. */
static void new_pair_at(int num, int *client, int *server) {
    connect_pair(client, server);
    if (*client != num) {
        printf("the new socket got fd %d; moving it to %d\n", *client, num);
        CHECK(dup2(*client, num) == num);
        CHECK_EQ(goro_close(*client), 0); /* it was registered under its old number */
        *client = num;
    }
}

static void fd_reuse(void) {
    goro_waitgroup wg = GORO_WAITGROUP_INIT;
    parked p;
    int c, s;
    /* The old socket has unread data (it was reported readable) and a writer parked on a
     * full buffer that goro_close cancels. */
    size_t big = 16 * 1024 * 1024;
    char *bigbuf = calloc(1, big);
    CHECK(bigbuf != NULL);
    connect_pair(&c, &s);
    CHECK_EQ(goro_write(s, "stale", 5, GORO_FOREVER), 5);
    int w = goro_fd_wait(c, GORO_READABLE, goro_now() + 5 * nu_slow() * NU_SEC);
    CHECK_EQ(w, GORO_READABLE);
    start_parked(&p, OP_WRITE, c, bigbuf, big, &wg);
    int num = c;
    close_parked(c, &p, 1, &wg, "old socket: writer parked, data unread");
    CHECK_EQ(goro_close(s), 0);
    free(bigbuf);
    char buf[16];
    ssize_t r = goro_read(num, buf, sizeof buf, 0);
    CHECKF(r == -EBADF, "goro_read on closed fd %d: %zd (%s), expected -EBADF", num, r,
           r < 0 ? goro_strerror((int)r) : "bytes");

    /* The new socket at the same number. */
    int c2, s2;
    new_pair_at(num, &c2, &s2);
    r = goro_read(c2, buf, sizeof buf, 0);
    CHECKF(r == GORO_EAGAIN, "new socket at fd %d: goro_read with deadline 0 gave %zd (%s)", num, r,
           r < 0 ? goro_strerror((int)r) : "bytes from the old socket");
    int64_t t0 = goro_now();
    w = goro_fd_wait(c2, GORO_READABLE, t0 + 30 * TU_MS);
    CHECKF(w == GORO_ETIMEDOUT, "new socket at fd %d: fd_wait(READABLE) gave %d (%s)", num, w,
           w < 0 ? goro_strerror(w) : "readable, with nothing sent");
    CHECK(goro_now() >= t0 + 30 * TU_MS);

    /* A reader parked on it sleeps until its own data comes, then gets exactly that. */
    start_parked(&p, OP_READ, c2, NULL, 0, &wg);
    nu_wait_netpoll(1, 10, "reader on the reused fd");
    goro_sleep(30 * TU_MS);
    CHECKF(!atomic_load(&p.done),
           "the reader on the reused fd %d woke with %ld (%s) before any data was sent", num,
           p.result, p.result < 0 ? goro_strerror((int)p.result) : "bytes");
    CHECK_EQ(goro_write(s2, "fresh", 5, GORO_FOREVER), 5);
    /* Not woken here means the new file was never registered with the netpoller. */
    int64_t wait_until = goro_now() + 5 * nu_slow() * NU_SEC;
    while (!atomic_load(&p.done)) {
        CHECKF(goro_now() < wait_until,
               "the reader on the reused fd %d was not woken by data sent to it", num);
        goro_sleep(TU_MS);
    }
    goro_wg_wait(&wg);
    CHECKF(p.result == 5 && memcmp(p.got, "fresh", 5) == 0,
           "the reader on the reused fd got %ld bytes (%.*s)", p.result,
           p.result > 0 ? (int)p.result : 0, p.got);

    /* Parked again, and closed: cancelled like the first. */
    start_parked(&p, OP_WAIT, c2, NULL, 0, &wg);
    close_parked(c2, &p, 1, &wg, "fd_wait on the reused fd");
    CHECK_EQ(goro_close(s2), 0);
    printf("fd %d reused: no stale data, readiness or cancellation\n", num);
}

/* ---------------------------------------------------------------- races */

/* goro_close and the deadline arriving at about the same time. */
#define RACE_FDS 16

typedef struct close_race {
    int p[2];
    int64_t deadline, close_at;
    long read_result;
    goro_waitgroup *wg;
} close_race;

static _Atomic long race_readers_done;

static void race_reader(void *arg) {
    close_race *r = arg;
    char c;
    r->read_result = goro_read(r->p[0], &c, 1, r->deadline);
    atomic_fetch_add(&race_readers_done, 1);
    goro_wg_done(r->wg);
}

static void race_closer(void *arg) {
    close_race *r = arg;
    goro_sleep_until(r->close_at);
    CHECK_EQ(goro_close(r->p[0]), 0);
    goro_wg_done(r->wg);
}

static void close_races(void) {
    long rounds = tu_scaled(300, 30);
    long counts[2] = {0, 0}; /* timed out, cancelled */
    uint64_t rng = 99;
    close_race rs[RACE_FDS];
    for (long round = 0; round < rounds; round++) {
        goro_waitgroup wg = GORO_WAITGROUP_INIT;
        goro_wg_add(&wg, 2 * RACE_FDS);
        int64_t now = goro_now();
        atomic_store(&race_readers_done, 0);
        for (int i = 0; i < RACE_FDS; i++) {
            close_race *r = &rs[i];
            CHECK(pipe2(r->p, O_CLOEXEC) == 0);
            r->deadline = now + 1000 * TU_US + (int64_t)(tu_rand(&rng) % (1000 * TU_US));
            r->wg = &wg;
            CHECK_EQ(goro_spawn(race_reader, r), 0);
        }
        /* Closing an fd under a goroutine that is in its read(2), not parked (not yet, or
         * no longer: woken by data), is a race in the caller, as the number could be
         * reused meanwhile: the closes start once every reader is parked or done, and no
         * data comes to wake a reader. */
        int64_t give_up = goro_now() + 10 * NU_SEC * nu_slow();
        for (;;) {
            goro_stats st;
            goro_stats_get(&st);
            if (st.netpoll_waiting + atomic_load(&race_readers_done) >= RACE_FDS)
                break;
            CHECKF(goro_now() < give_up, "the racing readers never parked");
            goro_sleep(50 * TU_US);
        }
        for (int i = 0; i < RACE_FDS; i++) {
            close_race *r = &rs[i];
            r->close_at = r->deadline + (int64_t)(tu_rand(&rng) % (200 * TU_US)) - 100 * TU_US;
            CHECK_EQ(goro_spawn(race_closer, r), 0);
        }
        goro_wg_wait(&wg);
        for (int i = 0; i < RACE_FDS; i++) {
            close_race *r = &rs[i];
            long rr = r->read_result;
            CHECKF(rr == GORO_ETIMEDOUT || rr == GORO_ECANCELED,
                   "a read racing goro_close and its deadline: %ld (%s)", rr,
                   rr < 0 ? goro_strerror((int)rr) : "bytes");
            counts[rr == GORO_ETIMEDOUT ? 0 : 1]++;
            CHECK_EQ(goro_close(r->p[1]), 0);
        }
    }
    goro_stats st;
    goro_stats_get(&st);
    CHECKF(st.netpoll_waiting == 0, "%lld goroutines still counted on the netpoller",
           (long long)st.netpoll_waiting);
    printf("%ld parked reads racing goro_close and their deadline: %ld timed out, %ld "
           "cancelled\n",
           rounds * RACE_FDS, counts[0], counts[1]);
}

/* ---------------------------------------------------------------- closes under traffic */

#define TRAFFIC_FDS 16

typedef struct traffic {
    int client[TRAFFIC_FDS], server[TRAFFIC_FDS];
    int64_t deadline[TRAFFIC_FDS];          /* the server side's read deadline, then its close */
    _Atomic int64_t closed_at[TRAFFIC_FDS]; /* goro_now() after the server's goro_close */
    int64_t cut_at[TRAFFIC_FDS];            /* when the peer saw it closed; 0: not (yet) */
    int64_t give_up;
    atomic_int peer_done;
    goro_waitgroup *wg;
} traffic;

typedef struct sink_arg {
    traffic *t;
    int i;
} sink_arg;

/* Reads (and drops) what the peer sends until the read deadline, then closes. */
static void traffic_sink(void *arg) {
    sink_arg *a = arg;
    traffic *t = a->t;
    int i = a->i;
    char buf[64];
    ssize_t n;
    while ((n = goro_read(t->server[i], buf, sizeof buf, t->deadline[i])) > 0) {
    }
    CHECKF(n == GORO_ETIMEDOUT, "a sink's read ended with %zd (%s), expected GORO_ETIMEDOUT", n,
           n < 0 ? goro_strerror((int)n) : "end of file");
    CHECK_EQ(goro_close(t->server[i]), 0);
    atomic_store(&t->closed_at[i], goro_now());
    goro_wg_done(t->wg);
}

/* The peer, a plain thread: a byte to every open client each 0.1 ms, until each has seen
 * its connection closed (recv gives 0, or send or recv an error) or give_up. */
static void *traffic_peer(void *arg) {
    traffic *t = arg;
    int open = TRAFFIC_FDS;
    while (open > 0 && goro_now() < t->give_up) {
        for (int i = 0; i < TRAFFIC_FDS; i++) {
            if (t->cut_at[i])
                continue;
            char c;
            ssize_t k = recv(t->client[i], &c, 1, MSG_DONTWAIT);
            bool cut = k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR);
            if (!cut && send(t->client[i], "x", 1, MSG_NOSIGNAL) != 1)
                cut = errno != EAGAIN && errno != EINTR;
            if (cut) {
                t->cut_at[i] = goro_now();
                open--;
            }
        }
        struct timespec ts = {0, 100 * 1000};
        nanosleep(&ts, NULL);
    }
    atomic_store(&t->peer_done, 1);
    return NULL;
}

static void closes_under_traffic(void) {
    long rounds = tu_scaled(40, 4);
    uint64_t rng = 7;
    double worst = 0;
    traffic *t = calloc(1, sizeof *t);
    sink_arg *args = calloc(TRAFFIC_FDS, sizeof *args);
    CHECK(t != NULL && args != NULL);
    for (long round = 0; round < rounds; round++) {
        goro_waitgroup wg = GORO_WAITGROUP_INIT;
        memset(t, 0, sizeof *t);
        t->wg = &wg;
        for (int i = 0; i < TRAFFIC_FDS; i++)
            connect_pair(&t->client[i], &t->server[i]);
        int64_t now = goro_now();
        goro_wg_add(&wg, TRAFFIC_FDS);
        for (int i = 0; i < TRAFFIC_FDS; i++) {
            t->deadline[i] = now + 5 * TU_MS + (int64_t)(tu_rand(&rng) % (2000 * TU_US));
            args[i] = (sink_arg){t, i};
            CHECK_EQ(goro_spawn(traffic_sink, &args[i]), 0);
        }
        t->give_up = now + 5 * TU_MS + 2 * NU_SEC * nu_slow();
        pthread_t th;
        CHECK(pthread_create(&th, NULL, traffic_peer, t) == 0);
        goro_wg_wait(&wg);
        while (!atomic_load(&t->peer_done))
            goro_sleep(TU_MS);
        CHECK(pthread_join(th, NULL) == 0); /* it has returned already */
        for (int i = 0; i < TRAFFIC_FDS; i++) {
            CHECKF(t->cut_at[i] != 0,
                   "round %ld: the peer of a socket closed with goro_close never saw it "
                   "closed (server fd %d)",
                   round, t->server[i]);
            double ms = (double)(t->cut_at[i] - t->closed_at[i]) / 1e6;
            worst = ms > worst ? ms : worst;
            CHECK_EQ(goro_close(t->client[i]), 0);
        }
    }
    free(args);
    free(t);
    printf("%ld sockets closed at their read deadline under traffic: every peer saw the close, "
           "at most %.1f ms later\n",
           rounds * TRAFFIC_FDS, worst);
}

static void test_main(void *arg) {
    (void)arg;
    lfd = goro_tcp_listen("127.0.0.1:0", 0);
    CHECKF(lfd >= 0, "goro_tcp_listen: %s", goro_strerror(lfd));
    nu_addr(addr, sizeof addr, "127.0.0.1", goro_tcp_port(lfd));
    goro_waitgroup wg = GORO_WAITGROUP_INIT;
    parked ps[2];
    int c, s;

    connect_pair(&c, &s);
    start_parked(&ps[0], OP_READ, c, NULL, 0, &wg);
    close_parked(c, ps, 1, &wg, "goro_read");
    CHECK_EQ(goro_close(s), 0);

    connect_pair(&c, &s);
    start_parked(&ps[0], OP_WAIT, c, NULL, 0, &wg);
    close_parked(c, ps, 1, &wg, "goro_fd_wait");
    CHECK_EQ(goro_close(s), 0);

    /* A writer on a full socket, and a reader and a writer on one socket at once. */
    size_t big = 16 * 1024 * 1024;
    char *buf = calloc(1, big);
    CHECK(buf != NULL);
    connect_pair(&c, &s);
    start_parked(&ps[0], OP_WRITE, c, buf, big, &wg);
    close_parked(c, ps, 1, &wg, "goro_write");
    CHECK_EQ(goro_close(s), 0);

    connect_pair(&c, &s);
    start_parked(&ps[0], OP_WRITE, c, buf, big, &wg);
    start_parked(&ps[1], OP_READ, c, NULL, 0, &wg);
    close_parked(c, ps, 2, &wg, "goro_write and goro_read");
    CHECK_EQ(goro_close(s), 0);
    free(buf);

    /* goro_accept on a second listener (the first one is still needed). */
    int l2 = goro_tcp_listen("127.0.0.1:0", 0);
    CHECKF(l2 >= 0, "goro_tcp_listen: %s", goro_strerror(l2));
    start_parked(&ps[0], OP_ACCEPT, l2, NULL, 0, &wg);
    close_parked(l2, ps, 1, &wg, "goro_accept");

    fd_reuse();
    close_races();
    closes_under_traffic();
    CHECK_EQ(goro_close(lfd), 0);
    nu_check_netpoll("net_close_parked");
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0); /* what was printed survives a failed CHECK */
    nu_watchdog_start("net_close_parked", 40);
    int rc = goro_run(NULL, test_main, NULL);
    CHECKF(rc == 0, "goro_run: %s", goro_strerror(rc));
    nu_watchdog_stop();
    return tu_pass("net_close_parked");
}
