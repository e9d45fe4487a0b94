/*
 * http_server.c - hello_server end to end: the real program, started as a child process on
 * port 0, talked to over real sockets (plain blocking ones and poll, not goro, so that the
 * client side is independent of the runtime under test), stopped with a real SIGTERM.
 *
 * CTest passes the server's path in $HELLO_SERVER (and, in a cross build, the emulator
 * to run it with in $HELLO_SERVER_EMULATOR, words separated by spaces).
 *
 * Cases: keep-alive and pipelining (answers in request order); a malformed request gets
 * 400 and the connection closes; clients that send their headers one byte per 100 ms are
 * cut at the read-header timeout while a fast client's requests stay fast; one connection
 * over --max-conns gets 503; SIGTERM closes idle connections at once, refuses new ones,
 * lets the request in flight finish and exits 0.
 */
#include "testutil.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>

typedef struct server {
    pid_t pid;
    int port;
    int out; /* the server's stdout, read again once it exited (check_netpoll) */
} server;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Time limits scale with the build's slowness (sanitizers, qemu). */
static int64_t scaled_ms(int64_t ms) {
    return (int64_t)((double)ms / tu_scale()) * TU_MS;
}

/* Starts hello_server on 127.0.0.1:0 with extra flags (NULL-terminated) and reads its
 * "listening on 127.0.0.1:PORT" line. */
static server start_server(const char *const *extra) {
    const char *path = getenv("HELLO_SERVER");
    CHECKF(path != NULL && *path != '\0', "HELLO_SERVER is not set (run the test with ctest)");
    const char *argv[64];
    int argc = 0;
    static char emu[1024];
    const char *e = getenv("HELLO_SERVER_EMULATOR");
    if (e != NULL && *e != '\0') {
        snprintf(emu, sizeof emu, "%s", e);
        for (char *tok = strtok(emu, " "); tok != NULL; tok = strtok(NULL, " "))
            argv[argc++] = tok;
    }
    argv[argc++] = path;
    argv[argc++] = "--addr";
    argv[argc++] = "127.0.0.1:0";
    for (int i = 0; extra != NULL && extra[i] != NULL; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;

    int out[2];
    CHECK(pipe(out) == 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        /* A failing CHECK aborts the test: the server must not outlive it (it would hold
         * CTest's output pipe open until the timeout). */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(out[1], 1);
        close(out[0]);
        close(out[1]);
        execvp(argv[0], (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(out[1]);
    char line[256] = {0};
    size_t len = 0;
    int64_t deadline = now_ns() + scaled_ms(10000);
    while (len < sizeof line - 1 && memchr(line, '\n', len) == NULL) {
        struct pollfd p = {out[0], POLLIN, 0};
        int left = (int)((deadline - now_ns()) / TU_MS);
        CHECKF(left > 0 && poll(&p, 1, left) == 1, "hello_server did not say where it listens");
        ssize_t n = read(out[0], line + len, sizeof line - 1 - len);
        CHECKF(n > 0, "hello_server ended before listening");
        len += (size_t)n;
    }
    line[len] = '\0';
    const char *colon = strrchr(line, ':');
    CHECKF(strncmp(line, "listening on 127.0.0.1:", 23) == 0 && colon != NULL, "got: %s", line);
    server s = {pid, atoi(colon + 1), out[0]};
    CHECK(s.port > 0 && s.port < 65536);
    return s;
}

/* After the server exited: its last stdout line says which netpoller it ran on, "netpoll:
 * io_uring", "netpoll: epoll" or "netpoll: epoll (io_uring unavailable: WHY)", and that
 * must be the backend GORO_TEST_NETPOLL names (as nu_check_netpoll in netutil.h). */
static void check_netpoll(server *s) {
    char buf[512];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof buf - 1 && (n = read(s->out, buf + len, sizeof buf - 1 - len)) != 0) {
        CHECK(n > 0 || errno == EINTR);
        if (n > 0)
            len += (size_t)n;
    }
    buf[len] = '\0';
    close(s->out);
    s->out = -1;
    const char *want = getenv("GORO_TEST_NETPOLL");
    if (want == NULL || *want == '\0')
        return;
    char line[64];
    snprintf(line, sizeof line, "netpoll: %s", want);
    if (tu_has_line(buf, line)) {
        printf("hello_server: %s\n", line);
        return;
    }
    const char *strict = getenv("GORO_TEST_NETPOLL_STRICT");
    CHECKF(strcmp(want, "io_uring") == 0 &&
               tu_has_line_with(buf, "netpoll: epoll (io_uring unavailable: ", ")"),
           "GORO_TEST_NETPOLL=%s, but hello_server said: %s", want, buf);
    CHECKF(strict == NULL || strcmp(strict, "1") != 0,
           "io_uring is required in this build but hello_server fell back: %s(on a machine "
           "that disables io_uring, configure with -DGORO_TEST_REQUIRE_IO_URING=OFF)",
           buf);
    printf("hello_server: %s", buf);
}

/* Stops the server with SIGTERM and checks that it exits 0 in time. In ThreadSanitizer
 * builds the signal is sent again every 2 s: TSan runs a handler only when the thread's
 * current fiber next enters an intercepted call, and a signal that lands between the
 * runtime's last such call before a park and its switch away from the goroutine's fiber
 * (race.c, goro__race_park) waits on that fiber until the goroutine runs again, which a
 * server waiting for its shutdown may never do (seen once in CI: no "shutting down" line
 * in 30 s). Other builds run the handler at once and get one signal. */
static void stop_server(server *s) {
    CHECK(kill(s->pid, SIGTERM) == 0);
    int64_t deadline = now_ns() + scaled_ms(10000), resend = now_ns() + 2000 * TU_MS;
    int st, sent = 1;
    pid_t r;
    while ((r = waitpid(s->pid, &st, WNOHANG)) == 0) {
        CHECKF(now_ns() < deadline, "hello_server did not exit after %d SIGTERM", sent);
        if (TU_TSAN && now_ns() >= resend) {
            CHECK(kill(s->pid, SIGTERM) == 0);
            sent++;
            resend = now_ns() + 2000 * TU_MS;
        }
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL); /* polling for the exit, not hiding a race */
    }
    if (sent > 1)
        printf("hello_server exited after %d SIGTERM (a ThreadSanitizer build)\n", sent);
    CHECK(r == s->pid);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "hello_server wait status 0x%x", st);
    check_netpoll(s);
}

static int dial(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void send_str(int fd, const char *s) {
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        CHECKF(w > 0, "send: %s", strerror(errno));
        s += w;
        n -= (size_t)w;
    }
}

/* Counts the complete responses at the start of buf (every one has a Content-Length). */
static int count_responses(const char *buf, size_t len) {
    int count = 0;
    size_t off = 0;
    for (;;) {
        const char *end = NULL;
        for (size_t i = off; i + 4 <= len; i++)
            if (memcmp(buf + i, "\r\n\r\n", 4) == 0) {
                end = buf + i;
                break;
            }
        if (end == NULL)
            return count;
        const char *cl = strstr(buf + off, "Content-Length: ");
        CHECK(cl != NULL && cl < end);
        size_t body = (size_t)atol(cl + 16), head = (size_t)(end - buf) + 4;
        if (head + body > len)
            return count;
        off = head + body;
        count++;
    }
}

typedef struct reply {
    char buf[65536];
    size_t len;
    int eof; /* the server closed (EOF or reset) */
} reply;

/* Reads until want complete responses arrived (want < 0: until EOF), EOF, or timeout. */
static void read_reply(int fd, reply *r, int want, int64_t timeout) {
    r->len = 0;
    r->eof = 0;
    int64_t deadline = now_ns() + timeout;
    while (want < 0 || count_responses(r->buf, r->len) < want) {
        struct pollfd p = {fd, POLLIN, 0};
        int left = (int)((deadline - now_ns()) / TU_MS);
        if (left <= 0 || poll(&p, 1, left) != 1)
            break;
        ssize_t n = recv(fd, r->buf + r->len, sizeof r->buf - 1 - r->len, 0);
        if (n <= 0) {
            r->eof = 1;
            break;
        }
        r->len += (size_t)n;
    }
    r->buf[r->len] = '\0';
}

/* ---------------------------------------------------------------- cases */

static void test_pipelining(int port) {
    int fd = dial(port);
    CHECK(fd >= 0);
    reply *r = malloc(sizeof *r);
    CHECK(r != NULL);
    /* Keep-alive: one request after another on one connection. */
    for (int i = 0; i < 3; i++) {
        send_str(fd, "GET /keep HTTP/1.1\r\nHost: t\r\n\r\n");
        read_reply(fd, r, 1, scaled_ms(5000));
        CHECKF(count_responses(r->buf, r->len) == 1 && !r->eof, "got: %s", r->buf);
        CHECK(strncmp(r->buf, "HTTP/1.1 200 OK\r\n", 17) == 0);
        CHECK(strstr(r->buf, "\r\n\r\nHello, \"/keep\"") != NULL);
    }
    /* Pipelined: five requests in one write, answered in order. */
    send_str(fd,
             "GET /1 HTTP/1.1\r\nHost: t\r\n\r\nGET /2 HTTP/1.1\r\nHost: t\r\n\r\n"
             "POST /3 HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nbody"
             "GET /4?q=1 HTTP/1.1\r\nHost: t\r\n\r\nGET /%22five%22 HTTP/1.1\r\nHost: t\r\n\r\n");
    read_reply(fd, r, 5, scaled_ms(5000));
    CHECKF(count_responses(r->buf, r->len) == 5, "got: %s", r->buf);
    const char *want[] = {"Hello, \"/1\"", "Hello, \"/2\"", "Hello, \"/3\"", "Hello, \"/4\"",
                          "Hello, \"/\\\"five\\\"\""};
    const char *at = r->buf;
    for (int i = 0; i < 5; i++) {
        const char *p = strstr(at, want[i]);
        CHECKF(p != NULL, "response %d (%s) missing or out of order in: %s", i + 1, want[i],
               r->buf);
        at = p + strlen(want[i]);
    }
    /* HTTP/1.0 closes after its response. */
    send_str(fd, "GET /old HTTP/1.0\r\n\r\n");
    read_reply(fd, r, -1, scaled_ms(5000));
    CHECKF(r->eof && count_responses(r->buf, r->len) == 1, "got: %s", r->buf);
    CHECK(strstr(r->buf, "Hello, \"/old\"") != NULL);
    close(fd);
    free(r);
}

static void test_malformed(int port) {
    static const char *const bad[] = {
        "GET / HTTP/1.1\r\n\r\n",                               /* no Host */
        "GET / HTTP/1.1\r\nHost: t\r\nX: a\r\n folded\r\n\r\n", /* obs-fold */
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        "GET /%zz HTTP/1.1\r\nHost: t\r\n\r\n",
    };
    reply *r = malloc(sizeof *r);
    CHECK(r != NULL);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int fd = dial(port);
        CHECK(fd >= 0);
        send_str(fd, "GET /first HTTP/1.1\r\nHost: t\r\n\r\n");
        send_str(fd, bad[i]);
        read_reply(fd, r, -1, scaled_ms(5000));
        CHECKF(r->eof, "case %zu: the connection stayed open after a 400; got: %s", i, r->buf);
        CHECKF(count_responses(r->buf, r->len) == 2, "case %zu: got: %s", i, r->buf);
        const char *second = strstr(r->buf, "Hello, \"/first\"");
        CHECK(second != NULL);
        second += strlen("Hello, \"/first\"");
        CHECKF(strncmp(second, "HTTP/1.1 400 Bad Request\r\n", 26) == 0, "case %zu: got: %s", i,
               r->buf);
        CHECK(strstr(second, "Connection: close\r\n") != NULL);
        close(fd);
    }
    free(r);
}

/* ---- slow clients */

#define SLOW_CLIENTS 8

typedef struct slow {
    int port;
    int fd[SLOW_CLIENTS];
    int64_t start[SLOW_CLIENTS];
    int64_t cut[SLOW_CLIENTS]; /* when the server closed it; 0: not yet */
    int64_t give_up;
} slow;

/* Sends one byte of a never-ending head on every slow connection each 100 ms, and notes
 * when the server closes each. */
static void *slow_thread(void *arg) {
    slow *s = arg;
    static const char head[] = "GET /slow HTTP/1.1\r\nHost: t\r\nX-Slow: ";
    size_t sent = 0;
    int open = SLOW_CLIENTS;
    int64_t next = now_ns();
    while (open > 0 && now_ns() < s->give_up) {
        struct pollfd p[SLOW_CLIENTS];
        for (int i = 0; i < SLOW_CLIENTS; i++)
            p[i] = (struct pollfd){s->cut[i] == 0 ? s->fd[i] : -1, POLLIN, 0};
        int left = (int)((next - now_ns()) / TU_MS);
        int n = poll(p, SLOW_CLIENTS, left > 0 ? left : 0);
        CHECK(n >= 0 || errno == EINTR);
        int64_t t = now_ns();
        for (int i = 0; i < SLOW_CLIENTS; i++) {
            if (s->cut[i] != 0 || p[i].revents == 0)
                continue;
            char b[512];
            ssize_t k = recv(s->fd[i], b, sizeof b, MSG_DONTWAIT);
            CHECKF(k <= 0, "a slow client got an answer: %.*s", (int)k, b);
            if (k == 0 || (errno != EAGAIN && errno != EINTR)) {
                s->cut[i] = t;
                open--;
            }
        }
        if (t >= next) {
            char c = sent < sizeof head - 1 ? head[sent] : 'a';
            sent++;
            for (int i = 0; i < SLOW_CLIENTS; i++)
                if (s->cut[i] == 0 && send(s->fd[i], &c, 1, MSG_NOSIGNAL) != 1) {
                    s->cut[i] = t;
                    open--;
                }
            next += 100 * TU_MS;
        }
    }
    return NULL;
}

static void test_slow_headers(void) {
    const int64_t header_timeout = 1000 * TU_MS;
    static const char *const flags[] = {"--header-timeout", "1s", NULL};
    server srv = start_server(flags);
    slow *s = calloc(1, sizeof *s);
    CHECK(s != NULL);
    for (int i = 0; i < SLOW_CLIENTS; i++) {
        s->start[i] = now_ns();
        s->fd[i] = dial(srv.port);
        CHECK(s->fd[i] >= 0);
    }
    s->give_up = now_ns() + header_timeout + scaled_ms(5000);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, slow_thread, s) == 0);

    /* Meanwhile a fast client, a new connection per request, must not notice them. The
     * median is checked, so that one scheduling hiccup of a busy test machine does not
     * fail the test; a server held up by the slow clients delays every request. */
    reply *r = malloc(sizeof *r);
    CHECK(r != NULL);
    enum { FAST = 21 };
    int64_t lat[FAST];
    for (int i = 0; i < FAST; i++) {
        int64_t t0 = now_ns();
        int fd = dial(srv.port);
        CHECK(fd >= 0);
        send_str(fd, "GET /fast HTTP/1.1\r\nHost: t\r\n\r\n");
        read_reply(fd, r, 1, scaled_ms(5000));
        lat[i] = now_ns() - t0;
        CHECKF(count_responses(r->buf, r->len) == 1 && strstr(r->buf, "Hello, \"/fast\""),
               "got: %s", r->buf);
        close(fd);
        struct timespec ts = {0, 20 * 1000000}; /* spread the requests over the slow ones */
        nanosleep(&ts, NULL);
    }
    free(r);
    for (int i = 1; i < FAST; i++) /* insertion sort */
        for (int j = i; j > 0 && lat[j - 1] > lat[j]; j--) {
            int64_t t = lat[j];
            lat[j] = lat[j - 1];
            lat[j - 1] = t;
        }
    CHECKF(lat[FAST / 2] < scaled_ms(50), "fast requests next to slow clients: median %.1f ms",
           (double)lat[FAST / 2] / 1e6);
    CHECKF(lat[FAST - 1] < header_timeout, "a fast request waited %.1f ms",
           (double)lat[FAST - 1] / 1e6);

    CHECK(pthread_join(th, NULL) == 0);
    for (int i = 0; i < SLOW_CLIENTS; i++) {
        CHECKF(s->cut[i] != 0, "slow client %d was never cut", i);
        int64_t after = s->cut[i] - s->start[i];
        /* Not before the timeout (the server's clock starts at its accept, after our
         * connect began), and not long after it. */
        CHECKF(after >= header_timeout - 5 * TU_MS && after <= header_timeout + scaled_ms(500),
               "slow client %d cut after %.1f ms (timeout 1000 ms)", i, (double)after / 1e6);
        close(s->fd[i]);
    }
    printf("slow headers: fast requests median %.2f ms, max %.2f ms; slow clients cut at "
           "%.0f..%.0f ms\n",
           (double)lat[FAST / 2] / 1e6, (double)lat[FAST - 1] / 1e6,
           (double)(s->cut[0] - s->start[0]) / 1e6,
           (double)(s->cut[SLOW_CLIENTS - 1] - s->start[SLOW_CLIENTS - 1]) / 1e6);
    free(s);
    stop_server(&srv);
}

static void test_connection_cap(void) {
    static const char *const flags[] = {"--max-conns", "2", NULL};
    server srv = start_server(flags);
    reply *r = malloc(sizeof *r);
    CHECK(r != NULL);
    int a = dial(srv.port), b = dial(srv.port);
    CHECK(a >= 0 && b >= 0);
    /* Answered, so both are counted before the third one is accepted. */
    for (int i = 0; i < 2; i++) {
        send_str(i == 0 ? a : b, "GET /in HTTP/1.1\r\nHost: t\r\n\r\n");
        read_reply(i == 0 ? a : b, r, 1, scaled_ms(5000));
        CHECKF(strstr(r->buf, "200 OK") != NULL, "got: %s", r->buf);
    }
    int c = dial(srv.port);
    CHECK(c >= 0);
    send_str(c, "GET /over HTTP/1.1\r\nHost: t\r\n\r\n");
    read_reply(c, r, -1, scaled_ms(5000));
    CHECKF(r->eof && strncmp(r->buf, "HTTP/1.1 503 Service Unavailable\r\n", 34) == 0, "got: %s",
           r->buf);
    close(c);
    /* One leaves: a new connection is served again (once the server has seen it go). */
    close(a);
    int served = 0;
    int64_t deadline = now_ns() + scaled_ms(5000);
    while (!served && now_ns() < deadline) {
        int d = dial(srv.port);
        CHECK(d >= 0);
        send_str(d, "GET /again HTTP/1.1\r\nHost: t\r\n\r\n");
        read_reply(d, r, 1, scaled_ms(5000));
        served = strstr(r->buf, "Hello, \"/again\"") != NULL;
        CHECKF(served || strstr(r->buf, "503") != NULL, "got: %s", r->buf);
        close(d);
    }
    CHECK(served);
    close(b);
    free(r);
    stop_server(&srv);
}

static void test_sigterm(void) {
    server srv = start_server(NULL);
    reply *r = malloc(sizeof *r);
    CHECK(r != NULL);
    /* idle: a kept-alive connection between requests. */
    int idle = dial(srv.port);
    CHECK(idle >= 0);
    send_str(idle, "GET /idle HTTP/1.1\r\nHost: t\r\n\r\n");
    read_reply(idle, r, 1, scaled_ms(5000));
    CHECK(count_responses(r->buf, r->len) == 1);
    /* busy: inside a request. Its head asks for 100 Continue, so the server's answer
     * shows that it has read the head and is waiting for the body. */
    int busy = dial(srv.port);
    CHECK(busy >= 0);
    send_str(busy, "POST /inflight HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                   "Content-Length: 4\r\n\r\n");
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    size_t got = 0;
    while (got < sizeof cont - 1) {
        struct pollfd p = {busy, POLLIN, 0};
        CHECKF(poll(&p, 1, (int)(scaled_ms(5000) / TU_MS)) == 1, "no 100 Continue");
        ssize_t n = recv(busy, r->buf + got, sizeof cont - 1 - got, 0);
        CHECK(n > 0);
        got += (size_t)n;
    }
    CHECK(memcmp(r->buf, cont, sizeof cont - 1) == 0);

    CHECK(kill(srv.pid, SIGTERM) == 0);
    /* The idle connection is closed at once. */
    read_reply(idle, r, -1, scaled_ms(2000));
    CHECKF(r->eof && r->len == 0, "idle connection: eof %d, got: %s", r->eof, r->buf);
    close(idle);
    /* New connections are refused once the listener is closed. */
    int64_t deadline = now_ns() + scaled_ms(5000);
    int refused = 0;
    while (!refused && now_ns() < deadline) {
        int fd = dial(srv.port);
        if (fd == -ECONNREFUSED) {
            refused = 1;
        } else {
            CHECK(fd >= 0);
            close(fd);
        }
    }
    CHECK(refused);
    /* The server waits for the request in flight... */
    int st;
    CHECK(waitpid(srv.pid, &st, WNOHANG) == 0);
    /* ...which completes and is answered, with Connection: close. */
    send_str(busy, "body");
    read_reply(busy, r, -1, scaled_ms(5000));
    CHECKF(r->eof && count_responses(r->buf, r->len) == 1, "got: %s", r->buf);
    CHECK(strstr(r->buf, "Connection: close\r\n") != NULL);
    CHECK(strstr(r->buf, "Hello, \"/inflight\"") != NULL);
    close(busy);
    /* Then it exits 0. */
    deadline = now_ns() + scaled_ms(10000);
    pid_t w;
    while ((w = waitpid(srv.pid, &st, WNOHANG)) == 0) {
        CHECKF(now_ns() < deadline, "hello_server did not exit after its last request");
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    CHECK(w == srv.pid);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "hello_server wait status 0x%x", st);
    check_netpoll(&srv);
    free(r);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    server srv = start_server(NULL);
    test_pipelining(srv.port);
    test_malformed(srv.port);
    stop_server(&srv);
    test_slow_headers();
    test_connection_cap();
    test_sigterm();
    return tu_pass("http_server");
}
