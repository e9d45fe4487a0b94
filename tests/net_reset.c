/*
 * net_reset: a peer that goes away mid-read or mid-write gives an error code, never a
 * SIGPIPE that kills the process.
 *
 * Everything runs in a child process whose SIGPIPE is at its default action (terminate)
 * and unblocked, so a runtime that let SIGPIPE through would kill the child; the parent
 * says so.
 *  - Reset mid-read: a goroutine parked in goro_read when the peer closes with SO_LINGER 0
 *    (an RST) returns -ECONNRESET (or 0); writing afterwards gives -EPIPE or -ECONNRESET.
 *  - Reset mid-write: a goroutine parked in goro_write of a large buffer (the peer reads
 *    nothing) returns -EPIPE or -ECONNRESET when the peer resets; the writes after it give
 *    -EPIPE (the case that raises SIGPIPE).
 *  - Orderly close mid-read: goro_read returns 0; writing on gives -EPIPE or -ECONNRESET
 *    once the peer's RST arrives.
 *  - Pipes: goro_write to a pipe whose read end is closed is -EPIPE, also for a writer
 *    parked on a full pipe when the reader goes away.
 */
#include "netutil.h"

#include <netinet/in.h>
#include <sys/socket.h>

#define BIG (16 * 1024 * 1024)

static char addr[64];
static int lfd;

typedef struct parked_io {
    int fd;
    int write; /* 0: goro_read, 1: goro_write of BIG bytes */
    const char *buf;
    ssize_t result;
    int64_t done_at;
    goro_waitgroup wg;
} parked_io;

static void do_parked_io(void *arg) {
    parked_io *p = arg;
    char small[512];
    if (p->write)
        p->result = goro_write(p->fd, p->buf, BIG, GORO_FOREVER);
    else
        p->result = goro_read(p->fd, small, sizeof small, GORO_FOREVER);
    p->done_at = goro_now();
    goro_wg_done(&p->wg);
}

static void connect_pair(int *client, int *server) {
    int64_t deadline = goro_now() + 5 * nu_slow() * NU_SEC;
    *client = goro_tcp_dial(addr, deadline);
    CHECKF(*client >= 0, "goro_tcp_dial: %s", goro_strerror(*client));
    *server = goro_accept(lfd, deadline);
    CHECKF(*server >= 0, "goro_accept: %s", goro_strerror(*server));
}

static void reset_close(int fd) {
    struct linger lg = {1, 0};
    CHECK(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
    CHECK_EQ(goro_close(fd), 0);
}

/* Runs a goroutine parked on fd (read or BIG write), then does peer_action to the other
 * end; returns the parked call's result, checked to come promptly. */
static ssize_t parked_then(int fd, int write, const char *buf, int peer, int reset,
                           const char *what) {
    parked_io p = {fd, write, buf, 0, 0, GORO_WAITGROUP_INIT};
    goro_wg_add(&p.wg, 1);
    CHECK_EQ(goro_spawn(do_parked_io, &p), 0);
    nu_wait_netpoll(1, 10, what);
    int64_t t0 = goro_now();
    if (reset)
        reset_close(peer);
    else
        CHECK_EQ(goro_close(peer), 0);
    goro_wg_wait(&p.wg);
    double ms = (double)(p.done_at - t0) / 1e6;
    printf("%s: %zd (%s) %.2f ms after the peer %s\n", what, p.result,
           p.result < 0    ? goro_strerror((int)p.result)
           : p.result == 0 ? "EOF"
                           : "bytes",
           ms, reset ? "reset" : "closed");
    CHECKF(p.done_at - t0 < 1000 * TU_MS * nu_slow(), "%s: returned %.0f ms after the peer left",
           what, ms);
    return p.result;
}

/* Writes until an error comes back (the peer's RST may take a moment): returns it. */
static ssize_t write_until_error(int fd, const char *what) {
    int64_t deadline = goro_now() + 5 * nu_slow() * NU_SEC;
    for (;;) {
        ssize_t w = goro_write(fd, "x", 1, GORO_FOREVER);
        if (w < 0)
            return w;
        CHECK_EQ(w, 1);
        CHECKF(goro_now() < deadline, "%s: writes keep succeeding", what);
        goro_sleep(TU_MS);
    }
}

static int is_peer_gone(ssize_t rc) {
    return rc == -EPIPE || rc == -ECONNRESET;
}

static void reset_main(void *arg) {
    (void)arg;
    lfd = goro_tcp_listen("127.0.0.1:0", 0);
    CHECKF(lfd >= 0, "goro_tcp_listen: %s", goro_strerror(lfd));
    nu_addr(addr, sizeof addr, "127.0.0.1", goro_tcp_port(lfd));
    int c, s;
    ssize_t r;

    /* Reset while a goroutine is parked in goro_read. */
    connect_pair(&c, &s);
    r = parked_then(s, 0, NULL, c, 1, "goro_read, peer resets");
    CHECKF(r == -ECONNRESET || r == 0, "goro_read when the peer reset: %zd (%s)", r,
           r < 0 ? goro_strerror((int)r) : "bytes");
    r = goro_write(s, "after", 5, GORO_FOREVER);
    CHECKF(is_peer_gone(r), "goro_write after the peer reset: %zd (%s)", r,
           r < 0 ? goro_strerror((int)r) : "bytes");
    r = goro_write(s, "again", 5, GORO_FOREVER);
    CHECKF(r == -EPIPE, "goro_write again after the peer reset: %zd (%s)", r,
           r < 0 ? goro_strerror((int)r) : "bytes");
    CHECK_EQ(goro_close(s), 0);

    /* Reset while a goroutine is parked in goro_write of a large buffer. */
    char *big = malloc(BIG);
    CHECK(big != NULL);
    memset(big, 'b', BIG);
    connect_pair(&c, &s);
    r = parked_then(s, 1, big, c, 1, "goro_write of 16 MiB, peer resets");
    CHECKF(is_peer_gone(r), "goro_write when the peer reset: %zd (%s)", r,
           r < 0 ? goro_strerror((int)r) : "bytes");
    for (int i = 0; i < 3; i++) {
        r = goro_write(s, big, 4096, GORO_FOREVER);
        CHECKF(r == -EPIPE, "goro_write %d after the reset: %zd (%s)", i, r,
               r < 0 ? goro_strerror((int)r) : "bytes");
    }
    CHECK_EQ(goro_close(s), 0);

    /* Orderly close while parked in goro_read: EOF; writing on finds the peer gone. */
    connect_pair(&c, &s);
    r = parked_then(s, 0, NULL, c, 0, "goro_read, peer closes");
    CHECKF(r == 0, "goro_read when the peer closed: %zd (%s), expected 0 (EOF)", r,
           r < 0 ? goro_strerror((int)r) : "bytes");
    r = write_until_error(s, "writing to a closed peer");
    CHECKF(is_peer_gone(r), "writing to a closed peer: %zd (%s)", r, goro_strerror((int)r));
    r = goro_write(s, "x", 1, GORO_FOREVER);
    CHECKF(r == -EPIPE, "goro_write after that: %zd (%s)", r,
           r < 0 ? goro_strerror((int)r) : "bytes");
    CHECK_EQ(goro_close(s), 0);

    /* Pipes: no reader. */
    int p[2];
    CHECK(pipe2(p, O_CLOEXEC) == 0);
    CHECK_EQ(goro_close(p[0]), 0);
    r = goro_write(p[1], "x", 1, GORO_FOREVER);
    CHECKF(r == -EPIPE, "goro_write to a pipe without reader: %zd (%s)", r,
           r < 0 ? goro_strerror((int)r) : "bytes");
    CHECK_EQ(goro_close(p[1]), 0);
    /* A writer parked on a full pipe when the reader closes. */
    CHECK(pipe2(p, O_CLOEXEC) == 0);
    r = parked_then(p[1], 1, big, p[0], 0, "goro_write to a pipe, reader closes");
    CHECKF(r == -EPIPE, "goro_write parked on a pipe whose reader closed: %zd (%s)", r,
           r < 0 ? goro_strerror((int)r) : "bytes");
    CHECK_EQ(goro_close(p[1]), 0);

    free(big);
    CHECK_EQ(goro_close(lfd), 0);
    nu_check_netpoll("net_reset");
}

static void child(void *arg) {
    (void)arg;
    /* SIGPIPE kills, as in a program that never heard of it. */
    CHECK(signal(SIGPIPE, SIG_DFL) != SIG_ERR);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    CHECK(sigprocmask(SIG_UNBLOCK, &set, NULL) == 0);
    int rc = goro_run(NULL, reset_main, NULL);
    CHECKF(rc == 0, "goro_run: %s", goro_strerror(rc));
    fflush(stdout); /* the child ends with _exit */
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0); /* what was printed survives a failed CHECK */
    tu_child c;
    char how[128];
    tu_run_child(child, NULL, (unsigned)(40 * nu_slow()), &c);
    if (c.len > 0)
        tu_show_child("net_reset", &c, 8000);
    CHECKF(!(WIFSIGNALED(c.status) && WTERMSIG(c.status) == SIGPIPE),
           "the child was killed by SIGPIPE: the runtime must turn a write to a closed peer "
           "into -EPIPE");
    CHECKF(WIFEXITED(c.status) && WEXITSTATUS(c.status) == TU_CHILD_RETURNED, "the child %s",
           tu_child_how(&c, how, sizeof how));
    free(c.err);
    return tu_pass("net_reset");
}
