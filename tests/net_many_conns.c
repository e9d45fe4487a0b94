/*
 * net_many_conns: 10,000 loopback connections alive at the same time.
 *
 * Each client goroutine dials, sends an 8-byte request and parks in goro_read for the
 * answer; each accepted connection gets a server goroutine that reads the request and then
 * waits for all the others. Only when every server goroutine holds its request, and every
 * client is parked on the netpoller (goro_stats netpoll_waiting), are the answers sent:
 * so all the connections and both goroutines of each are alive at once. Every client must
 * get the answer computed from its own request, then EOF.
 *
 * The process needs two fds per connection: the soft RLIMIT_NOFILE is raised to the hard
 * limit, and if that is too low for 10,000 the count is lowered (and printed). Slow builds
 * scale the count with GORO_TEST_SCALE, and TSan builds stay below its limit of 8128
 * goroutine fibers alive. At most IN_FLIGHT dials are outstanding at a time (a client
 * takes a token before dialling, its server goroutine gives it back once it has the
 * request), so the listen backlog never overflows into SYN retransmits (1 s each).
 */
#include "netutil.h"

#define TARGET 10000
#define IN_FLIGHT 256
#define FD_RESERVE 64 /* stdio, the runtime's own fds, the listener, sanitizer files */

static long nconn;
static char addr[64];
static goro_chan *tokens;  /* a token per outstanding dial */
static goro_chan *release; /* closed when every server goroutine has its request */
static goro_waitgroup arrived = GORO_WAITGROUP_INIT;
static goro_waitgroup servers_done = GORO_WAITGROUP_INIT;
static goro_waitgroup clients_done = GORO_WAITGROUP_INIT;
static _Atomic long answered;

static uint64_t answer_for(uint64_t req) {
    return nu_mix(req) ^ 0x5a5a5a5a5a5a5a5aull;
}

static void server_conn(void *arg) {
    int fd = (int)(intptr_t)arg;
    uint64_t req = 0;
    ssize_t n = nu_read_full(fd, &req, sizeof req, GORO_FOREVER);
    CHECKF(n == (ssize_t)sizeof req, "server: request read gave %zd (%s)", n,
           n < 0 ? goro_strerror((int)n) : "EOF");
    CHECK_EQ(goro_chan_recv(tokens, NULL), 0); /* one more dial may start */
    goro_wg_done(&arrived);
    CHECK_EQ(goro_chan_recv(release, NULL), GORO_ECLOSED);
    uint64_t ans = answer_for(req);
    ssize_t w = goro_write(fd, &ans, sizeof ans, GORO_FOREVER);
    CHECKF(w == (ssize_t)sizeof ans, "server: answer write gave %zd (%s)", w,
           w < 0 ? goro_strerror((int)w) : "short");
    CHECK_EQ(goro_close(fd), 0);
    goro_wg_done(&servers_done);
}

static void acceptor(void *arg) {
    int lfd = (int)(intptr_t)arg;
    goro_attr attr = {0, "many-server"};
    for (long i = 0; i < nconn; i++) {
        int fd = goro_accept(lfd, GORO_FOREVER);
        CHECKF(fd >= 0, "goro_accept after %ld connections: %s", i, goro_strerror(fd));
        CHECK_EQ(goro_spawn_attr(&attr, server_conn, (void *)(intptr_t)fd), 0);
    }
}

static void client(void *arg) {
    uint64_t id = (uint64_t)(uintptr_t)arg;
    char tok = 0;
    CHECK_EQ(goro_chan_send(tokens, &tok), 0);
    int fd = goro_tcp_dial(addr, goro_now() + 30 * nu_slow() * NU_SEC);
    CHECKF(fd >= 0, "client %llu: goro_tcp_dial(\"%s\"): %s", (unsigned long long)id, addr,
           goro_strerror(fd));
    uint64_t req = id * 0x100000001b3ull + 12345;
    ssize_t w = goro_write(fd, &req, sizeof req, GORO_FOREVER);
    CHECKF(w == (ssize_t)sizeof req, "client %llu: request write gave %zd (%s)",
           (unsigned long long)id, w, w < 0 ? goro_strerror((int)w) : "short");
    uint64_t ans = 0;
    ssize_t n = nu_read_full(fd, &ans, sizeof ans, GORO_FOREVER);
    CHECKF(n == (ssize_t)sizeof ans, "client %llu: answer read gave %zd (%s)",
           (unsigned long long)id, n, n < 0 ? goro_strerror((int)n) : "EOF");
    CHECKF(ans == answer_for(req), "client %llu got the answer to another request",
           (unsigned long long)id);
    char extra;
    n = goro_read(fd, &extra, 1, GORO_FOREVER);
    CHECKF(n == 0, "client %llu: after the answer, goro_read gave %zd, expected EOF",
           (unsigned long long)id, n);
    CHECK_EQ(goro_close(fd), 0);
    atomic_fetch_add(&answered, 1);
    goro_wg_done(&clients_done);
}

static void test_main(void *arg) {
    (void)arg;
    CHECK_EQ(goro_chan_make(&tokens, 1, IN_FLIGHT), 0);
    CHECK_EQ(goro_chan_make(&release, 1, 0), 0);
    int lfd = goro_tcp_listen("127.0.0.1:0", 1024);
    CHECKF(lfd >= 0, "goro_tcp_listen: %s", goro_strerror(lfd));
    nu_addr(addr, sizeof addr, "127.0.0.1", goro_tcp_port(lfd));

    int64_t t0 = goro_now();
    goro_attr attr = {0, "many-accept"};
    CHECK_EQ(goro_spawn_attr(&attr, acceptor, (void *)(intptr_t)lfd), 0);
    goro_wg_add(&arrived, (int)nconn);
    goro_wg_add(&servers_done, (int)nconn);
    goro_wg_add(&clients_done, (int)nconn);
    goro_attr cattr = {0, "many-client"};
    for (long i = 0; i < nconn; i++)
        CHECK_EQ(goro_spawn_attr(&cattr, client, (void *)(uintptr_t)i), 0);

    goro_wg_wait(&arrived);
    int64_t t_all = goro_now();
    /* Every client has sent its request; each is parked, or about to park, waiting for
     * the answer that no server has sent yet. */
    nu_wait_netpoll(nconn, 20, "clients waiting for their answers");
    goro_stats st;
    goro_stats_get(&st);
    int live = goro_numgoroutine();
    printf("%ld connections open at once after %.0f ms: %d goroutines, %lld on the netpoller, "
           "%lld threads\n",
           nconn, (double)(t_all - t0) / 1e6, live, (long long)st.netpoll_waiting,
           (long long)st.threads);
    CHECKF(live >= 2 * nconn + 1, "only %d goroutines alive with %ld connections open", live,
           nconn);

    CHECK_EQ(goro_chan_close(release), 0);
    goro_wg_wait(&clients_done);
    goro_wg_wait(&servers_done);
    int64_t t_end = goro_now();
    CHECK_EQ(atomic_load(&answered), nconn);
    goro_stats_get(&st);
    CHECKF(st.netpoll_waiting == 0, "%lld goroutines still counted on the netpoller",
           (long long)st.netpoll_waiting);
    printf("all %ld answered and closed %.0f ms later; total %.0f ms\n", nconn,
           (double)(t_end - t_all) / 1e6, (double)(t_end - t0) / 1e6);
    CHECK_EQ(goro_close(lfd), 0);
    goro_chan_release(tokens);
    goro_chan_release(release);
    nu_check_netpoll("net_many_conns");
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0); /* what was printed survives a failed CHECK */
    long limit = nu_raise_nofile();
    nconn = tu_scaled(TARGET, 200);
    if (TU_TSAN && nconn > 3500) {
        nconn = 3500;
        printf("TSan build: %ld connections (TSan allows 8128 goroutine fibers alive)\n", nconn);
    }
    if (2 * nconn + FD_RESERVE > limit) {
        long fit = (limit - FD_RESERVE) / 2;
        printf("RLIMIT_NOFILE hard limit %ld allows %ld connections, not %ld: testing %ld\n", limit,
               fit, nconn, fit);
        nconn = fit;
    }
    CHECKF(nconn >= 100, "RLIMIT_NOFILE hard limit %ld leaves room for only %ld connections", limit,
           nconn);
    nu_watchdog_start("net_many_conns", 100);
    int rc = goro_run(NULL, test_main, NULL);
    CHECKF(rc == 0, "goro_run: %s", goro_strerror(rc));
    nu_watchdog_stop();
    return tu_pass("net_many_conns");
}
