/*
 * net_fd_misc: the edges of the fd calls.
 *
 *  - goro_close of an fd the netpoller never saw closes it (0), of a closed or negative fd
 *    is -EBADF.
 *  - goro_read/goro_write on a regular file work (through the blocking-call path): data
 *    written comes back, EOF is 0, the file stays blocking; goro_read with deadline 0 on a
 *    file returns data (a file is always ready).
 *  - A datagram socket (read with recv) returns one datagram per goro_read, and the
 *    second is there at once after a short first read (not taken for a drained stream).
 *  - goro_tcp_dial to a port nobody listens on is -ECONNREFUSED; goro_tcp_listen on a port
 *    in use is -EADDRINUSE.
 *  - goro_tcp_listen and goro_tcp_dial with malformed addresses are GORO_EINVAL.
 *  - goro_tcp_port of a non-socket is -ENOTSOCK; goro_read on a bad fd is -EBADF.
 *  - goro_strerror names the codes these calls return, each differently.
 *  - A goro_run that returns while goroutines are parked on the netpoller (one with a
 *    deadline) releases them; the sockets work in the next goro_run: a read that has to
 *    wait there is woken by the peer's data, and no stale waiter takes it.
 */
#include "netutil.h"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static void close_cases(void) {
    /* The runtime opens its poll set's fds at the first call that may wait: have that
     * happen now, or they could take the closed fd number checked below. */
    int p[2];
    CHECK(pipe2(p, O_CLOEXEC) == 0);
    char c;
    CHECK_EQ(goro_read(p[0], &c, 1, 0), GORO_EAGAIN);
    CHECK_EQ(goro_close(p[0]), 0);
    CHECK_EQ(goro_close(p[1]), 0);

    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0);
    CHECK_EQ(goro_close(fd), 0);
    CHECKF(fcntl(fd, F_GETFD) < 0 && errno == EBADF, "fd %d still open after goro_close", fd);
    CHECK_EQ(goro_close(fd), -EBADF);
    CHECK_EQ(goro_close(-1), -EBADF);
    CHECK_EQ(goro_read(fd, &c, 1, 0), -EBADF);
    CHECK_EQ(goro_read(-1, &c, 1, GORO_FOREVER), -EBADF);
    CHECK_EQ(goro_write(-1, &c, 1, GORO_FOREVER), -EBADF);
}

static void regular_file(void) {
    FILE *f = tmpfile();
    CHECK(f != NULL);
    int fd = dup(fileno(f));
    CHECK(fd >= 0);
    fclose(f);
    size_t n = 300000;
    char *out = malloc(n), *in = malloc(n + 10);
    CHECK(out != NULL && in != NULL);
    nu_fill(out, n, 3, 0);
    ssize_t w = goro_write(fd, out, n, GORO_FOREVER);
    CHECKF(w == (ssize_t)n, "goro_write to a regular file: %zd (%s)", w,
           w < 0 ? goro_strerror((int)w) : "short");
    CHECK(lseek(fd, 0, SEEK_SET) == 0);
    size_t got = 0;
    for (;;) {
        ssize_t r = goro_read(fd, in + got, n + 10 - got, GORO_FOREVER);
        CHECKF(r >= 0, "goro_read from a regular file: %s", goro_strerror((int)r));
        if (r == 0)
            break;
        got += (size_t)r;
    }
    CHECK_EQ(got, n);
    CHECK(memcmp(in, out, n) == 0);
    CHECK(lseek(fd, 10, SEEK_SET) == 10);
    ssize_t r = goro_read(fd, in, 5, 0);
    CHECKF(r == 5 && memcmp(in, out + 10, 5) == 0,
           "goro_read with deadline 0 on a regular file: %zd (%s)", r,
           r < 0 ? goro_strerror((int)r) : "bytes");
    CHECKF(!nu_nonblocking(fd), "the regular file was made non-blocking");
    CHECK_EQ(goro_close(fd), 0);
    free(out);
    free(in);
}

/* A datagram socket is read and written with recv/send (netpoll.c N8) but is not a
 * stream: each read returns one datagram, and a read shorter than the buffer does not
 * mean the socket is empty (N6), so the second datagram is read at once, with deadline
 * 0, not waited for. */
static void datagram_socket(void) {
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) == 0);
    CHECK_EQ(goro_write(sv[0], "abc", 3, GORO_FOREVER), 3);
    CHECK_EQ(goro_write(sv[0], "defgh", 5, GORO_FOREVER), 5);
    char buf[64];
    ssize_t r = goro_read(sv[1], buf, sizeof buf, GORO_FOREVER);
    CHECKF(r == 3 && memcmp(buf, "abc", 3) == 0, "first datagram: %zd (%s)", r,
           r < 0 ? goro_strerror((int)r) : "bytes");
    r = goro_read(sv[1], buf, sizeof buf, 0);
    CHECKF(r == 5 && memcmp(buf, "defgh", 5) == 0, "second datagram, deadline 0: %zd (%s)", r,
           r < 0 ? goro_strerror((int)r) : "bytes");
    r = goro_read(sv[1], buf, sizeof buf, 0);
    CHECKF(r == GORO_EAGAIN, "no third datagram: %zd (%s)", r,
           r < 0 ? goro_strerror((int)r) : "bytes");
    CHECK_EQ(goro_close(sv[0]), 0);
    CHECK_EQ(goro_close(sv[1]), 0);
}

static void refused_and_in_use(void) {
    int lfd = goro_tcp_listen("127.0.0.1:0", 0);
    CHECKF(lfd >= 0, "goro_tcp_listen: %s", goro_strerror(lfd));
    int port = goro_tcp_port(lfd);
    char addr[64];
    nu_addr(addr, sizeof addr, "127.0.0.1", port);
    int again = goro_tcp_listen(addr, 0);
    CHECKF(again == -EADDRINUSE, "second goro_tcp_listen(\"%s\"): %d (%s), expected -EADDRINUSE",
           addr, again, again < 0 ? goro_strerror(again) : "an fd");
    if (again >= 0)
        goro_close(again);
    CHECK_EQ(goro_close(lfd), 0);
    /* Nobody listens there now. */
    int fd = goro_tcp_dial(addr, goro_now() + 5 * nu_slow() * NU_SEC);
    CHECKF(fd == -ECONNREFUSED, "goro_tcp_dial(\"%s\") with nobody listening: %d (%s)", addr, fd,
           fd < 0 ? goro_strerror(fd) : "connected");
    /* The empty host listens on every address; a name is resolved. */
    const char *const listen_at[] = {":0", "localhost:0"};
    const char *const dial_host[] = {"127.0.0.1", "localhost"};
    for (int i = 0; i < 2; i++) {
        lfd = goro_tcp_listen(listen_at[i], 0);
        CHECKF(lfd >= 0, "goro_tcp_listen(\"%s\"): %s", listen_at[i], goro_strerror(lfd));
        fd = goro_tcp_dial(nu_addr(addr, sizeof addr, dial_host[i], goro_tcp_port(lfd)),
                           goro_now() + 5 * nu_slow() * NU_SEC);
        CHECKF(fd >= 0, "goro_tcp_dial(\"%s\") to a listener on \"%s\": %s", addr, listen_at[i],
               goro_strerror(fd));
        int s = goro_accept(lfd, goro_now() + 5 * nu_slow() * NU_SEC);
        CHECKF(s >= 0, "goro_accept: %s", goro_strerror(s));
        CHECK_EQ(goro_close(s), 0);
        CHECK_EQ(goro_close(fd), 0);
        CHECK_EQ(goro_close(lfd), 0);
    }
}

static const char *const malformed[] = {
    "",             /* nothing */
    "127.0.0.1",    /* no port */
    "127.0.0.1:",   /* empty port */
    "127.0.0.1:-1", /* negative port */
    "127.0.0.1:65536",
    "127.0.0.1:99999", /* port out of range */
    "[::1:80",         /* unclosed bracket */
    "[::1]80",         /* no colon after the bracket */
    "[::1]:",          /* empty port */
};

static void malformed_addresses(void) {
    CHECK_EQ(goro_tcp_listen(NULL, 0), GORO_EINVAL);
    CHECK_EQ(goro_tcp_dial(NULL, 0), GORO_EINVAL);
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        int fd = goro_tcp_listen(malformed[i], 0);
        CHECKF(fd == GORO_EINVAL, "goro_tcp_listen(\"%s\"): %d (%s), expected GORO_EINVAL",
               malformed[i], fd, fd < 0 ? goro_strerror(fd) : "an fd");
        fd = goro_tcp_dial(malformed[i], goro_now() + NU_SEC);
        CHECKF(fd == GORO_EINVAL, "goro_tcp_dial(\"%s\"): %d (%s), expected GORO_EINVAL",
               malformed[i], fd, fd < 0 ? goro_strerror(fd) : "an fd");
    }
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0);
    CHECK_EQ(goro_tcp_port(fd), -ENOTSOCK);
    CHECK_EQ(goro_close(fd), 0);
    CHECK_EQ(goro_tcp_port(-1), -EBADF);
}

static void names(void) {
    const int codes[] = {GORO_EINVAL,  GORO_EAGAIN,   GORO_ETIMEDOUT, GORO_ECANCELED,
                         GORO_ECLOSED, -ECONNREFUSED, -ECONNRESET,    -EPIPE,
                         -EMFILE,      -EBADF,        -EADDRINUSE,    -ENOTSOCK};
    const size_t n = sizeof codes / sizeof codes[0];
    for (size_t i = 0; i < n; i++) {
        const char *s = goro_strerror(codes[i]);
        CHECKF(s != NULL && s[0] != '\0', "goro_strerror(%d) is empty", codes[i]);
        for (size_t j = 0; j < i; j++)
            CHECKF(strcmp(s, goro_strerror(codes[j])) != 0,
                   "goro_strerror gives \"%s\" for both %d and %d", s, codes[i], codes[j]);
    }
    CHECK(goro_strerror(-99999) != NULL);
    CHECK(goro_strerror(12345) != NULL);
}

/* ---------------------------------------------------------------- across goro_run calls */

static int kept[2]; /* a connection made in the first goro_run, used in the second */
static int kept_lfd;

static void abandoned_reader(void *arg) {
    (void)arg;
    char c;
    goro_read(kept[0], &c, 1, goro_now() + 10 * NU_SEC);
    CHECKF(0, "a goroutine of a goro_run that returned was woken");
}

static void abandoned_acceptor(void *arg) {
    (void)arg;
    goro_accept(kept_lfd, GORO_FOREVER);
    CHECKF(0, "a goroutine of a goro_run that returned was woken");
}

static void first_run(void *arg) {
    (void)arg;
    kept_lfd = goro_tcp_listen("127.0.0.1:0", 0);
    CHECKF(kept_lfd >= 0, "goro_tcp_listen: %s", goro_strerror(kept_lfd));
    char addr[64];
    kept[0] = goro_tcp_dial(nu_addr(addr, sizeof addr, "127.0.0.1", goro_tcp_port(kept_lfd)),
                            goro_now() + 5 * nu_slow() * NU_SEC);
    CHECKF(kept[0] >= 0, "goro_tcp_dial: %s", goro_strerror(kept[0]));
    kept[1] = goro_accept(kept_lfd, goro_now() + 5 * nu_slow() * NU_SEC);
    CHECKF(kept[1] >= 0, "goro_accept: %s", goro_strerror(kept[1]));
    CHECK_EQ(goro_write(kept[1], "one", 3, GORO_FOREVER), 3);
    char buf[8];
    CHECK_EQ(nu_read_full(kept[0], buf, 3, GORO_FOREVER), 3);
    /* This runtime ends with goroutines parked on the netpoller, one with a deadline. */
    CHECK_EQ(goro_spawn(abandoned_reader, NULL), 0);
    CHECK_EQ(goro_spawn(abandoned_acceptor, NULL), 0);
    nu_wait_netpoll(2, 10, "goroutines left parked when goro_run returns");
}

typedef struct late {
    int fd;
    goro_waitgroup wg;
} late;

static void late_write(void *arg) {
    late *l = arg;
    goro_sleep(20 * TU_MS);
    CHECK_EQ(goro_write(l->fd, "two", 3, GORO_FOREVER), 3);
    goro_wg_done(&l->wg);
}

/* The fds outlive the first runtime; the second one registers them afresh. */
static void second_run(void *arg) {
    (void)arg;
    late l = {kept[1], GORO_WAITGROUP_INIT};
    goro_wg_add(&l.wg, 1);
    CHECK_EQ(goro_spawn(late_write, &l), 0);
    char buf[8];
    ssize_t n = nu_read_full(kept[0], buf, 3, goro_now() + 5 * nu_slow() * NU_SEC);
    CHECKF(n == 3 && memcmp(buf, "two", 3) == 0,
           "second goro_run: a read that waits on a connection made in the first: %zd (%s)", n,
           n < 0 ? goro_strerror((int)n) : "bytes");
    goro_wg_wait(&l.wg);
    goro_stats st;
    goro_stats_get(&st);
    CHECKF(st.netpoll_waiting == 0, "second goro_run: %lld goroutines on the netpoller",
           (long long)st.netpoll_waiting);
    int s = goro_accept(kept_lfd, 0);
    CHECKF(s == GORO_EAGAIN, "second goro_run: goro_accept with deadline 0: %d (%s)", s,
           s < 0 ? goro_strerror(s) : "an fd");
    CHECK_EQ(goro_close(kept[0]), 0);
    CHECK_EQ(goro_close(kept[1]), 0);
    CHECK_EQ(goro_close(kept_lfd), 0);
}

static void test_main(void *arg) {
    (void)arg;
    close_cases();
    regular_file();
    datagram_socket();
    refused_and_in_use();
    malformed_addresses();
    names();
    nu_check_netpoll("net_fd_misc");
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0); /* what was printed survives a failed CHECK */
    nu_watchdog_start("net_fd_misc", 30);
    int rc = goro_run(NULL, test_main, NULL);
    CHECKF(rc == 0, "goro_run: %s", goro_strerror(rc));
    rc = goro_run(NULL, first_run, NULL);
    CHECKF(rc == 0, "goro_run: %s", goro_strerror(rc));
    rc = goro_run(NULL, second_run, NULL);
    CHECKF(rc == 0, "goro_run: %s", goro_strerror(rc));
    nu_watchdog_stop();
    return tu_pass("net_fd_misc");
}
