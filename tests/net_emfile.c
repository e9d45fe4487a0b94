/*
 * net_emfile: an accept loop out of file descriptors neither spins nor fails, and recovers.
 *
 * With the soft RLIMIT_NOFILE at 64, a server goroutine loops in goro_accept, serving each
 * connection (an echo) in its own goroutine. Then:
 *  1. a few clients dial with goro_tcp_dial and are served (round trips);
 *  2. more clients (plain socket + blocking connect, so that nothing but the socket itself
 *     takes an fd) connect until socket() fails with EMFILE;
 *  3. one more connection is made with the very last fd, so that a connection is waiting
 *     in the backlog while no fd is free: accept4 fails with EMFILE; the test makes sure
 *     that no fd is free (open("/dev/null") fails with EMFILE, after filling any that
 *     came free);
 *  4. for WINDOW_MS the process CPU time may not grow by more than BUSY_FRACTION of the
 *     window above what an idle window costs (measured before): an accept loop that retried
 *     at once would burn the whole window. goro_accept must not return an error either;
 *     another goro_accept with deadline 0 is GORO_EAGAIN, with a 30 ms deadline
 *     GORO_ETIMEDOUT at (not before) the deadline;
 *  5. the clients served in 1. still are (round trips);
 *  6. the clients of 2. are closed: the fds come back and the accept loop, retrying after at most
 *     100 ms, accepts every waiting connection; the one made last is served;
 *  7. new connections are accepted and served.
 */
#include "netutil.h"

#include <netinet/in.h>
#include <sys/socket.h>

#define FD_LIMIT 64
#define EARLY_CLIENTS 3
#define MAX_CLIENTS FD_LIMIT
#define WINDOW_MS 500
#define BUSY_FRACTION 0.2
#define RESERVE_FDS 4

static int port;
static _Atomic long accepted;
static _Atomic long served; /* connection goroutines that finished */
static atomic_int accept_error;
static goro_waitgroup acceptor_done = GORO_WAITGROUP_INIT;

static void echo_conn(void *arg) {
    int fd = (int)(intptr_t)arg;
    char buf[256];
    for (;;) {
        ssize_t n = goro_read(fd, buf, sizeof buf, GORO_FOREVER);
        if (n <= 0) {
            CHECKF(n == 0 || n == -ECONNRESET, "echo: goro_read: %s", goro_strerror((int)n));
            break;
        }
        ssize_t w = goro_write(fd, buf, (size_t)n, GORO_FOREVER);
        if (w < 0) {
            CHECKF(w == -EPIPE || w == -ECONNRESET, "echo: goro_write: %s", goro_strerror((int)w));
            break;
        }
        CHECK_EQ(w, n);
    }
    CHECK_EQ(goro_close(fd), 0);
    atomic_fetch_add(&served, 1);
}

static void accept_loop(void *arg) {
    int lfd = (int)(intptr_t)arg;
    goro_attr attr = {0, "emfile-echo"};
    for (;;) {
        int fd = goro_accept(lfd, GORO_FOREVER);
        if (fd == GORO_ECANCELED)
            break;
        if (fd < 0) {
            /* Out of fds, goro_accept is to wait and retry, not fail. */
            atomic_store(&accept_error, fd);
            fprintf(stderr, "goro_accept: %s\n", goro_strerror(fd));
            continue;
        }
        atomic_fetch_add(&accepted, 1);
        CHECK_EQ(goro_spawn_attr(&attr, echo_conn, (void *)(intptr_t)fd), 0);
    }
    goro_wg_done(&acceptor_done);
}

static void round_trip(int fd, const char *who) {
    static uint64_t counter;
    uint64_t v = ++counter, back = 0;
    int64_t deadline = goro_now() + 5 * nu_slow() * NU_SEC;
    ssize_t w = goro_write(fd, &v, sizeof v, deadline);
    CHECKF(w == (ssize_t)sizeof v, "%s: goro_write: %zd (%s)", who, w,
           w < 0 ? goro_strerror((int)w) : "short");
    ssize_t n = nu_read_full(fd, &back, sizeof back, deadline);
    CHECKF(n == (ssize_t)sizeof back, "%s: echo read: %zd (%s)", who, n,
           n < 0 ? goro_strerror((int)n) : "EOF");
    CHECK_EQ(back, v);
}

/* socket + blocking connect to the server: the new fd, or -errno of socket(). */
static int raw_connect(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = GORO_BLOCKING(connect(fd, (struct sockaddr *)&sa, sizeof sa));
    CHECKF(rc == 0, "connect to the server: %s", strerror(errno));
    return fd;
}

static void wait_counter(_Atomic long *c, long want, int64_t timeout, const char *what) {
    int64_t deadline = goro_now() + timeout;
    while (atomic_load(c) < want) {
        CHECKF(goro_now() < deadline, "%s: %ld of %ld after %.0f ms", what, atomic_load(c), want,
               (double)timeout / 1e6);
        goro_sleep(TU_MS);
    }
}

static void test_main(void *arg) {
    (void)arg;
    const int64_t slow = nu_slow();
    int lfd = goro_tcp_listen("127.0.0.1:0", 128);
    CHECKF(lfd >= 0, "goro_tcp_listen: %s", goro_strerror(lfd));
    port = goro_tcp_port(lfd);
    char addr[64];
    nu_addr(addr, sizeof addr, "127.0.0.1", port);
    goro_wg_add(&acceptor_done, 1);
    goro_attr attr = {0, "emfile-accept"};
    CHECK_EQ(goro_spawn_attr(&attr, accept_loop, (void *)(intptr_t)lfd), 0);

    /* The reserve fds give step 3 its very last fd (and a few more tries, see there). */
    int reserve[RESERVE_FDS];
    for (int i = 0; i < RESERVE_FDS; i++)
        CHECK((reserve[i] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0);

    /* The idle cost of a window: everyone parked, the accept loop on the netpoller. */
    int64_t cpu0 = nu_process_cpu();
    goro_sleep(WINDOW_MS * TU_MS);
    int64_t idle_cpu = nu_process_cpu() - cpu0;

    /* 1. Served clients. */
    int early[EARLY_CLIENTS];
    for (int i = 0; i < EARLY_CLIENTS; i++) {
        early[i] = goro_tcp_dial(addr, goro_now() + 5 * slow * NU_SEC);
        CHECKF(early[i] >= 0, "goro_tcp_dial: %s", goro_strerror(early[i]));
        round_trip(early[i], "early client");
    }

    /* 2. Clients until EMFILE. */
    int clients[MAX_CLIENTS];
    int nclients = 0;
    for (;;) {
        int fd = raw_connect();
        if (fd < 0) {
            CHECKF(fd == -EMFILE, "socket(): %s, expected EMFILE", strerror(-fd));
            break;
        }
        CHECKF(nclients < MAX_CLIENTS, "%d connections and still no EMFILE with a limit of %d",
               nclients, FD_LIMIT);
        clients[nclients++] = fd;
    }
    /* 3. The last fd: a connection that cannot be accepted. No fd may be free then, but one
     * can be for a moment: accept4 takes an fd before it looks at its queue, so an accept on
     * the other thread holds one while it finds the queue empty. That can make socket() meet
     * EMFILE, or leave the accept loop a slot for the connection just made (both seen in CI
     * at all Ps with io_uring). So any fd that is free is filled, and while the last
     * connection cannot be made or is accepted all the same, a filler or another reserve fd
     * is closed and it is made again. */
    long total = EARLY_CLIENTS + nclients; /* connections made */
    int fillers[16], nfillers = 0, nreserve = RESERVE_FDS, probe, last = -1;
    long acc0;
    for (int attempt = 0;; attempt++) {
        if (attempt > 0)
            printf("try %d: %s\n", attempt,
                   last < 0 ? "socket() met EMFILE right after an fd was freed"
                            : "the last connection was accepted with an fd that came free");
        if (last >= 0)
            clients[nclients++] = last; /* accepted and served: closed in 6. */
        CHECKF(nfillers + nreserve > 0, "no connection left waiting for an fd after %d tries",
               attempt);
        CHECK_EQ(close(nfillers > 0 ? fillers[--nfillers] : reserve[--nreserve]), 0);
        last = raw_connect();
        if (last == -EMFILE)
            continue;
        CHECKF(last >= 0, "socket() right after freeing an fd: %s", strerror(-last));
        total++;
        while ((probe = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0) {
            CHECKF(nfillers < 16, "fds keep coming free: the test cannot run");
            fillers[nfillers++] = probe;
        }
        CHECKF(errno == EMFILE, "open(\"/dev/null\"): %s, expected EMFILE", strerror(errno));
        goro_sleep(20 * TU_MS); /* the accept loop wakes and meets EMFILE */
        acc0 = atomic_load(&accepted);
        if (acc0 < total)
            break;
    }
    if (nfillers)
        printf("%d fd(s) came free and were filled\n", nfillers);
    printf("fd limit %d: %ld connections made, %ld accepted, %ld waiting in the backlog\n",
           FD_LIMIT, total, acc0, total - acc0);

    /* 4. No spinning. */
    cpu0 = nu_process_cpu();
    int64_t w0 = goro_now();
    goro_sleep(WINDOW_MS * TU_MS);
    int64_t window = goro_now() - w0;
    int64_t busy_cpu = nu_process_cpu() - cpu0;
    printf("CPU time in %.0f ms: %.1f ms idle, %.1f ms with accept out of fds\n",
           (double)window / 1e6, (double)idle_cpu / 1e6, (double)busy_cpu / 1e6);
    CHECKF(busy_cpu < idle_cpu + (int64_t)(BUSY_FRACTION * (double)window),
           "the process used %.1f ms of CPU in %.0f ms while goro_accept was out of fds "
           "(%.1f ms when idle): the accept loop spins",
           (double)busy_cpu / 1e6, (double)window / 1e6, (double)idle_cpu / 1e6);
    CHECKF(atomic_load(&accept_error) == 0,
           "goro_accept returned %s when out of fds; it is to wait and retry",
           goro_strerror(atomic_load(&accept_error)));
    CHECK_EQ(atomic_load(&accepted), acc0);

    /* 4b. Out of fds, a goro_accept with a deadline waits for it, and no longer. */
    int r = goro_accept(lfd, 0);
    CHECKF(r == GORO_EAGAIN, "goro_accept with deadline 0, out of fds: %d (%s)", r,
           r < 0 ? goro_strerror(r) : "an fd");
    int64_t deadline = goro_now() + 30 * TU_MS;
    r = goro_accept(lfd, deadline);
    int64_t t = goro_now();
    CHECKF(r == GORO_ETIMEDOUT, "goro_accept with a 30 ms deadline, out of fds: %d (%s)", r,
           r < 0 ? goro_strerror(r) : "an fd");
    CHECKF(t >= deadline, "goro_accept out of fds returned %lld ns before its deadline",
           (long long)(deadline - t));
    CHECKF(t - deadline < 200 * TU_MS * slow,
           "goro_accept out of fds returned %.1f ms after its deadline",
           (double)(t - deadline) / 1e6);

    /* 5. Established connections are still served. */
    for (int i = 0; i < EARLY_CLIENTS; i++)
        round_trip(early[i], "early client while out of fds");

    /* 6. Free the fds: every waiting connection gets accepted, the last one is served. */
    int64_t t_free = goro_now();
    for (int i = 0; i < nclients; i++)
        CHECK_EQ(goro_close(clients[i]), 0);
    for (int i = 0; i < nfillers; i++)
        CHECK_EQ(close(fillers[i]), 0);
    for (int i = 0; i < nreserve; i++)
        CHECK_EQ(close(reserve[i]), 0);
    wait_counter(&accepted, total, 3 * slow * NU_SEC, "connections accepted after fds freed");
    int64_t t_acc = goro_now();
    round_trip(last, "the connection made with the last fd");
    printf("fds freed: all %ld connections accepted within %.1f ms\n", total,
           (double)(t_acc - t_free) / 1e6);
    /* The retry delay tops out at 100 ms. */
    CHECKF(t_acc - t_free < (300 + 200 * (slow - 1)) * TU_MS,
           "the waiting connections were accepted %.0f ms after fds were freed",
           (double)(t_acc - t_free) / 1e6);
    wait_counter(&served, nclients, 3 * slow * NU_SEC, "connection goroutines done");

    /* 7. New connections. */
    for (int i = 0; i < 5; i++) {
        int fd = goro_tcp_dial(addr, goro_now() + 5 * slow * NU_SEC);
        CHECKF(fd >= 0, "goro_tcp_dial after fds were freed: %s", goro_strerror(fd));
        round_trip(fd, "new client");
        CHECK_EQ(goro_close(fd), 0);
    }
    for (int i = 0; i < EARLY_CLIENTS; i++) {
        round_trip(early[i], "early client at the end");
        CHECK_EQ(goro_close(early[i]), 0);
    }
    CHECK_EQ(goro_close(last), 0);
    wait_counter(&served, total + 5, 3 * slow * NU_SEC, "connection goroutines done");
    CHECK_EQ(goro_close(lfd), 0);
    goro_wg_wait(&acceptor_done);
    CHECK_EQ(atomic_load(&accept_error), 0);
    nu_check_netpoll("net_emfile");
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0); /* what was printed survives a failed CHECK */
    struct rlimit old, rl;
    CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0);
    CHECKF(old.rlim_max >= FD_LIMIT, "the hard RLIMIT_NOFILE %llu is below %d",
           (unsigned long long)old.rlim_max, FD_LIMIT);
    nu_watchdog_start("net_emfile", 40);
    /* Set before the runtime starts, so that its threads and fds count against it. */
    rl = old;
    rl.rlim_cur = FD_LIMIT;
    CHECKF(setrlimit(RLIMIT_NOFILE, &rl) == 0, "setrlimit: %s", strerror(errno));
    int rc = goro_run(NULL, test_main, NULL);
    CHECKF(rc == 0, "goro_run: %s", goro_strerror(rc));
    CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0);
    nu_watchdog_stop();
    return tu_pass("net_emfile");
}
