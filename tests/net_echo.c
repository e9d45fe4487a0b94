/*
 * net_echo: bytes go through the netpoller intact, in order, once.
 *
 *  - An echo server on 127.0.0.1:0 (goro_tcp_listen, goro_tcp_port, goro_accept and one
 *    goroutine per connection) and client goroutines (goro_tcp_dial) doing round trips of
 *    1 B to 1 MiB: every byte comes back in order, the checksums of what each client sent
 *    and received are equal, and after each reply nothing more is readable (goro_read with
 *    deadline 0 is GORO_EAGAIN). Messages larger than the socket buffers are written by a
 *    second goroutine while the client reads, so both ends park on full buffers.
 *  - The same over IPv6 ("[::1]:0") when the host has IPv6 on loopback; when it does not,
 *    the test says why and skips that part only.
 *  - A pipe (pipe2) between two goroutines through goro_read/goro_write, ending in EOF.
 *  - goro_fd_wait: a fresh connection is writable and not readable (deadline 0:
 *    GORO_EAGAIN), becomes readable when the peer writes (and not before), reports both
 *    events when both hold, and is not readable again once a read has drained it.
 */
#include "netutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define BIG_MESSAGE (32 * 1024) /* above this, a helper goroutine writes while we read */
#define MAX_MESSAGE (1024 * 1024)
#define ECHO_BUF (64 * 1024)

/* ---------------------------------------------------------------- the echo server */

typedef struct server {
    int lfd;
    char host[64]; /* "127.0.0.1" or "[::1]" */
    int port;
    atomic_int stopping;
    _Atomic long accepted;
    goro_waitgroup conns;    /* one per connection goroutine */
    goro_waitgroup acceptor; /* the accept loop */
} server;

typedef struct conn_arg {
    server *s;
    int fd;
} conn_arg;

static void echo_conn(void *arg) {
    conn_arg *ca = arg;
    server *s = ca->s;
    int fd = ca->fd;
    free(ca);
    char *buf = malloc(ECHO_BUF);
    CHECK(buf != NULL);
    for (;;) {
        ssize_t n = goro_read(fd, buf, ECHO_BUF, GORO_FOREVER);
        if (n == 0)
            break;
        CHECKF(n > 0, "echo server: goro_read: %s", goro_strerror((int)n));
        ssize_t w = goro_write(fd, buf, (size_t)n, GORO_FOREVER);
        CHECKF(w == n, "echo server: goro_write of %zd bytes returned %zd (%s)", n, w,
               w < 0 ? goro_strerror((int)w) : "short");
    }
    CHECK_EQ(goro_close(fd), 0);
    free(buf);
    goro_wg_done(&s->conns);
}

static void accept_loop(void *arg) {
    server *s = arg;
    for (;;) {
        int fd = goro_accept(s->lfd, GORO_FOREVER);
        CHECKF(fd >= 0, "goro_accept: %s", goro_strerror(fd));
        if (atomic_load(&s->stopping)) { /* the wake-up connection from server_stop */
            CHECK_EQ(goro_close(fd), 0);
            break;
        }
        atomic_fetch_add(&s->accepted, 1);
        conn_arg *ca = malloc(sizeof *ca);
        CHECK(ca != NULL);
        *ca = (conn_arg){s, fd};
        goro_wg_add(&s->conns, 1);
        goro_attr attr = {0, "echo-conn"};
        CHECK_EQ(goro_spawn_attr(&attr, echo_conn, ca), 0);
    }
    goro_wg_done(&s->acceptor);
}

static void server_start(server *s, const char *host) {
    memset(s, 0, sizeof *s);
    snprintf(s->host, sizeof s->host, "%s", host);
    char addr[96];
    s->lfd = goro_tcp_listen(nu_addr(addr, sizeof addr, host, 0), 0);
    CHECKF(s->lfd >= 0, "goro_tcp_listen(\"%s\"): %s", addr, goro_strerror(s->lfd));
    s->port = goro_tcp_port(s->lfd);
    CHECKF(s->port > 0 && s->port < 65536, "goro_tcp_port: %d (%s)", s->port,
           s->port < 0 ? goro_strerror(s->port) : "not a port");
    goro_wg_add(&s->acceptor, 1);
    goro_attr attr = {0, "echo-accept"};
    CHECK_EQ(goro_spawn_attr(&attr, accept_loop, s), 0);
}

/* Stops the accept loop deterministically (a flag and one more connection to wake it),
 * waits for every connection goroutine, closes the listener. */
static void server_stop(server *s) {
    atomic_store(&s->stopping, 1);
    char addr[96];
    int fd = goro_tcp_dial(nu_addr(addr, sizeof addr, s->host, s->port), GORO_FOREVER);
    CHECKF(fd >= 0, "goro_tcp_dial(\"%s\"): %s", addr, goro_strerror(fd));
    goro_wg_wait(&s->acceptor);
    CHECK_EQ(goro_close(fd), 0);
    goro_wg_wait(&s->conns);
    CHECK_EQ(goro_close(s->lfd), 0);
}

/* ---------------------------------------------------------------- clients */

static const size_t fixed_sizes[] = {1,     2,     3,     7,      100,    1000,
                                     1460,  4095,  4096,  4097,   16384,  65535,
                                     65536, 65537, 99999, 262144, 524287, 1048576};
#define NFIXED (sizeof fixed_sizes / sizeof fixed_sizes[0])

typedef struct client {
    server *s;
    int id;
    long random_rounds;
    size_t max_size; /* fixed sizes above this are left out */
    /* results */
    uint64_t sent_sum, recv_sum;
    uint64_t bytes;
    long rounds;
} client;

typedef struct big_write {
    int fd;
    const char *buf;
    size_t n;
    goro_chan *done; /* receives the goro_write result */
} big_write;

static void big_writer(void *arg) {
    big_write *bw = arg;
    ssize_t w = goro_write(bw->fd, bw->buf, bw->n, GORO_FOREVER);
    CHECK_EQ(goro_chan_send(bw->done, &w), 0);
}

static void client_run(void *arg) {
    client *c = arg;
    char addr[96];
    int fd = goro_tcp_dial(nu_addr(addr, sizeof addr, c->s->host, c->s->port),
                           goro_now() + 10 * nu_slow() * NU_SEC);
    CHECKF(fd >= 0, "client %d: goro_tcp_dial(\"%s\"): %s", c->id, addr, goro_strerror(fd));
    char *out = malloc(MAX_MESSAGE), *in = malloc(MAX_MESSAGE);
    CHECK(out != NULL && in != NULL);
    goro_chan *done;
    CHECK_EQ(goro_chan_make(&done, sizeof(ssize_t), 0), 0);
    uint64_t seed = 1000 + (uint64_t)c->id, off = 0, rng = seed;
    c->sent_sum = c->recv_sum = NU_FNV_INIT;

    long total_rounds = (long)NFIXED + c->random_rounds;
    for (long r = 0; r < total_rounds; r++) {
        size_t n;
        if (r < (long)NFIXED) {
            /* Each client takes the fixed sizes in its own rotation. */
            n = fixed_sizes[((size_t)r + (size_t)c->id) % NFIXED];
            if (n > c->max_size)
                continue;
        } else {
            n = 1 + (size_t)(tu_rand(&rng) % 3000);
        }
        nu_fill(out, n, seed, off);
        c->sent_sum = nu_fnv(c->sent_sum, out, n);
        big_write bw = {fd, out, n, done};
        if (n > BIG_MESSAGE) {
            goro_attr attr = {0, "echo-big-writer"};
            CHECK_EQ(goro_spawn_attr(&attr, big_writer, &bw), 0);
        } else {
            ssize_t w = goro_write(fd, out, n, GORO_FOREVER);
            CHECKF(w == (ssize_t)n, "client %d: goro_write(%zu): %zd (%s)", c->id, n, w,
                   w < 0 ? goro_strerror((int)w) : "short");
        }
        ssize_t got = nu_read_full(fd, in, n, GORO_FOREVER);
        CHECKF(got == (ssize_t)n, "client %d: echo of a %zu-byte message: %zd (%s)", c->id, n, got,
               got < 0 ? goro_strerror((int)got) : "EOF before the end");
        if (n > BIG_MESSAGE) {
            ssize_t w = 0;
            CHECK_EQ(goro_chan_recv(done, &w), 0);
            CHECKF(w == (ssize_t)n, "client %d: goro_write(%zu) from a helper: %zd (%s)", c->id, n,
                   w, w < 0 ? goro_strerror((int)w) : "short");
        }
        long bad = nu_check(in, n, seed, off);
        CHECKF(bad < 0,
               "client %d: byte %ld of a %zu-byte echo (stream offset %llu) is 0x%02x, "
               "sent 0x%02x",
               c->id, bad, n, (unsigned long long)off + (unsigned long long)bad,
               (unsigned char)in[bad], nu_byte(seed, off + (uint64_t)bad));
        c->recv_sum = nu_fnv(c->recv_sum, in, n);
        /* The reply was exactly the message: nothing more is waiting. */
        char extra;
        ssize_t e = goro_read(fd, &extra, 1, 0);
        CHECKF(e == GORO_EAGAIN,
               "client %d: after a complete %zu-byte echo, goro_read with deadline 0 gave %zd "
               "(%s), expected GORO_EAGAIN",
               c->id, n, e, e < 0 ? goro_strerror((int)e) : "bytes that were never sent");
        off += n;
        c->rounds++;
    }
    c->bytes = off;
    CHECK_EQ(goro_close(fd), 0);
    goro_chan_release(done);
    free(out);
    free(in);
}

typedef struct client_slot {
    client c;
    goro_waitgroup *wg;
} client_slot;

static void client_goroutine(void *arg) {
    client_slot *cs = arg;
    client_run(&cs->c);
    goro_wg_done(cs->wg);
}

static void echo_round(const char *host, int nclients, long random_rounds, size_t big_clients) {
    server s;
    server_start(&s, host);
    client_slot *slots = calloc((size_t)nclients, sizeof *slots);
    CHECK(slots != NULL);
    goro_waitgroup wg = GORO_WAITGROUP_INIT;
    int64_t t0 = goro_now();
    goro_wg_add(&wg, nclients);
    for (int i = 0; i < nclients; i++) {
        slots[i].c = (client){.s = &s,
                              .id = i,
                              .random_rounds = random_rounds,
                              .max_size = (size_t)i < big_clients ? MAX_MESSAGE : 100000};
        slots[i].wg = &wg;
        goro_attr attr = {0, "echo-client"};
        CHECK_EQ(goro_spawn_attr(&attr, client_goroutine, &slots[i]), 0);
    }
    goro_wg_wait(&wg);
    int64_t elapsed = goro_now() - t0;
    uint64_t bytes = 0;
    long rounds = 0;
    for (int i = 0; i < nclients; i++) {
        CHECKF(slots[i].c.sent_sum == slots[i].c.recv_sum,
               "client %d: checksum sent %016llx, received %016llx", i,
               (unsigned long long)slots[i].c.sent_sum, (unsigned long long)slots[i].c.recv_sum);
        bytes += slots[i].c.bytes;
        rounds += slots[i].c.rounds;
    }
    server_stop(&s);
    CHECK_EQ(atomic_load(&s.accepted), nclients);
    printf("%s: %d clients, %ld round trips, %.1f MiB echoed in %.1f ms\n", host, nclients, rounds,
           (double)bytes / (1 << 20), (double)elapsed / 1e6);
    free(slots);
}

/* Whether the host can listen on IPv6 loopback; if not, why not into why. */
static int have_ipv6_loopback(char *why, size_t n) {
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(why, n, "socket(AF_INET6): %s", strerror(errno));
        return 0;
    }
    struct sockaddr_in6 sa;
    memset(&sa, 0, sizeof sa);
    sa.sin6_family = AF_INET6;
    sa.sin6_addr = in6addr_loopback;
    int ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    if (!ok)
        snprintf(why, n, "bind([::1]:0): %s", strerror(errno));
    close(fd);
    return ok;
}

/* ---------------------------------------------------------------- pipe */

#define PIPE_SEED 77

typedef struct pipe_side {
    int fd;
    size_t total;
    uint64_t sum;
    goro_waitgroup *wg;
} pipe_side;

static void pipe_writer(void *arg) {
    pipe_side *p = arg;
    char *buf = malloc(70000);
    CHECK(buf != NULL);
    uint64_t rng = 5, off = 0;
    p->sum = NU_FNV_INIT;
    while (off < p->total) {
        size_t n = 1 + (size_t)(tu_rand(&rng) % 70000);
        if (n > p->total - off)
            n = p->total - off;
        nu_fill(buf, n, PIPE_SEED, off);
        p->sum = nu_fnv(p->sum, buf, n);
        ssize_t w = goro_write(p->fd, buf, n, GORO_FOREVER);
        CHECKF(w == (ssize_t)n, "pipe goro_write(%zu): %zd (%s)", n, w,
               w < 0 ? goro_strerror((int)w) : "short");
        off += n;
    }
    CHECK_EQ(goro_close(p->fd), 0); /* the reader sees EOF */
    free(buf);
    goro_wg_done(p->wg);
}

static void pipe_reader(void *arg) {
    pipe_side *p = arg;
    char buf[4000];
    uint64_t off = 0, rng = 9;
    p->sum = NU_FNV_INIT;
    for (;;) {
        size_t want = 1 + (size_t)(tu_rand(&rng) % sizeof buf);
        ssize_t r = goro_read(p->fd, buf, want, GORO_FOREVER);
        CHECKF(r >= 0, "pipe goro_read: %s", goro_strerror((int)r));
        if (r == 0)
            break;
        CHECKF((size_t)r <= want, "pipe goro_read(%zu) returned %zd", want, r);
        long bad = nu_check(buf, (size_t)r, PIPE_SEED, off);
        CHECKF(bad < 0, "pipe: byte at offset %llu differs",
               (unsigned long long)off + (unsigned long long)bad);
        p->sum = nu_fnv(p->sum, buf, (size_t)r);
        off += (uint64_t)r;
    }
    p->total = off;
    CHECK_EQ(goro_close(p->fd), 0);
    goro_wg_done(p->wg);
}

static void pipe_round(void) {
    int p[2];
    CHECK(pipe2(p, O_CLOEXEC) == 0);
    goro_waitgroup wg = GORO_WAITGROUP_INIT;
    size_t total = (size_t)tu_scaled(2 * 1024 * 1024, 256 * 1024);
    pipe_side w = {p[1], total, 0, &wg}, r = {p[0], 0, 0, &wg};
    goro_wg_add(&wg, 2);
    CHECK_EQ(goro_spawn(pipe_reader, &r), 0);
    CHECK_EQ(goro_spawn(pipe_writer, &w), 0);
    goro_wg_wait(&wg);
    CHECKF(r.total == total, "pipe: read %zu bytes before EOF, wrote %zu", r.total, total);
    CHECKF(r.sum == w.sum, "pipe: checksum written %016llx, read %016llx",
           (unsigned long long)w.sum, (unsigned long long)r.sum);
    printf("pipe: %zu bytes through goro_write/goro_read, EOF at the end\n", total);
}

/* ---------------------------------------------------------------- goro_fd_wait */

static atomic_int late_written;

typedef struct late_write {
    int fd;
    goro_waitgroup *wg;
} late_write;

static void late_writer(void *arg) {
    late_write *lw = arg;
    goro_sleep(20 * TU_MS);
    atomic_store(&late_written, 1);
    CHECK_EQ(goro_write(lw->fd, "ping", 4, GORO_FOREVER), 4);
    goro_wg_done(lw->wg);
}

static void fd_wait_round(void) {
    int lfd = goro_tcp_listen("127.0.0.1:0", 0);
    CHECKF(lfd >= 0, "goro_tcp_listen: %s", goro_strerror(lfd));
    char addr[64];
    int c = goro_tcp_dial(nu_addr(addr, sizeof addr, "127.0.0.1", goro_tcp_port(lfd)),
                          goro_now() + 10 * nu_slow() * NU_SEC);
    CHECKF(c >= 0, "goro_tcp_dial: %s", goro_strerror(c));
    int s = goro_accept(lfd, goro_now() + 10 * nu_slow() * NU_SEC);
    CHECKF(s >= 0, "goro_accept: %s", goro_strerror(s));
    CHECK(nu_nonblocking(c) && nu_nonblocking(s));

    int r = goro_fd_wait(c, GORO_WRITABLE, 0);
    CHECKF(r == GORO_WRITABLE, "fresh connection, fd_wait(WRITABLE, 0): %d (%s)", r,
           r < 0 ? goro_strerror(r) : "");
    r = goro_fd_wait(c, GORO_WRITABLE, GORO_FOREVER);
    CHECKF(r == GORO_WRITABLE, "fresh connection, fd_wait(WRITABLE, FOREVER): %d", r);
    r = goro_fd_wait(c, GORO_READABLE, 0);
    CHECKF(r == GORO_EAGAIN, "nothing sent yet, fd_wait(READABLE, 0): %d (%s)", r,
           r < 0 ? goro_strerror(r) : "reported readable");
    char buf[16];
    ssize_t n = goro_read(c, buf, sizeof buf, 0);
    CHECKF(n == GORO_EAGAIN, "empty socket, goro_read with deadline 0: %zd (%s)", n,
           n < 0 ? goro_strerror((int)n) : "returned bytes");

    /* Readable once the peer writes, and not before. */
    goro_waitgroup wg = GORO_WAITGROUP_INIT;
    late_write lw = {s, &wg};
    goro_wg_add(&wg, 1);
    CHECK_EQ(goro_spawn(late_writer, &lw), 0);
    r = goro_fd_wait(c, GORO_READABLE, goro_now() + 10 * nu_slow() * NU_SEC);
    CHECKF(r == GORO_READABLE, "fd_wait(READABLE) with the peer writing in 20 ms: %d (%s)", r,
           r < 0 ? goro_strerror(r) : "");
    CHECKF(atomic_load(&late_written), "fd_wait(READABLE) returned before the peer wrote");
    goro_wg_wait(&wg);
    r = goro_fd_wait(c, GORO_READABLE | GORO_WRITABLE, 0);
    CHECKF(r == (GORO_READABLE | GORO_WRITABLE),
           "data waiting and room to write: fd_wait(READABLE|WRITABLE, 0) gave %d, expected %d", r,
           GORO_READABLE | GORO_WRITABLE);
    n = nu_read_full(c, buf, 4, GORO_FOREVER);
    CHECK_EQ(n, 4);
    CHECK(memcmp(buf, "ping", 4) == 0);
    /* Drained: a read sees EAGAIN, after which the fd is not reported readable. */
    n = goro_read(c, buf, sizeof buf, 0);
    CHECKF(n == GORO_EAGAIN, "drained socket, goro_read with deadline 0: %zd", n);
    r = goro_fd_wait(c, GORO_READABLE, 0);
    CHECKF(r == GORO_EAGAIN, "drained socket, fd_wait(READABLE, 0): %d (stale readiness?)", r);
    /* Bad event masks. */
    CHECK_EQ(goro_fd_wait(c, 0, 0), GORO_EINVAL);
    CHECK_EQ(goro_fd_wait(c, 4, 0), GORO_EINVAL);

    /* EOF is readable, and goro_read returns 0 for it. */
    CHECK_EQ(goro_close(s), 0);
    r = goro_fd_wait(c, GORO_READABLE, goro_now() + 10 * nu_slow() * NU_SEC);
    CHECKF(r > 0 && (r & GORO_READABLE), "peer closed, fd_wait(READABLE): %d", r);
    n = goro_read(c, buf, sizeof buf, GORO_FOREVER);
    CHECKF(n == 0, "peer closed, goro_read: %zd, expected 0 (EOF)", n);
    CHECK_EQ(goro_close(c), 0);
    CHECK_EQ(goro_close(lfd), 0);
    printf("goro_fd_wait: writable, not readable, readable after the peer wrote, both, EOF\n");
}

/* ---------------------------------------------------------------- main */

static void test_main(void *arg) {
    (void)arg;
    fd_wait_round();
    pipe_round();
    int nclients = (int)tu_scaled(8, 2);
    echo_round("127.0.0.1", nclients, tu_scaled(200, 20), (size_t)(nclients + 1) / 2);

    char why[160];
    if (have_ipv6_loopback(why, sizeof why))
        echo_round("[::1]", (int)tu_scaled(4, 2), tu_scaled(50, 10), 1);
    else
        printf("SKIP IPv6 part: this host has no IPv6 loopback (%s)\n", why);
    nu_check_netpoll("net_echo");
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0); /* what was printed survives a failed CHECK */
    nu_watchdog_start("net_echo", 50);
    int rc = goro_run(NULL, test_main, NULL);
    CHECKF(rc == 0, "goro_run: %s", goro_strerror(rc));
    nu_watchdog_stop();
    return tu_pass("net_echo");
}
