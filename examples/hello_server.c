/*
 * hello_server.c - a concurrent HTTP/1.1 server: one goroutine per connection.
 *
 * Answers every request with `Hello, "<path>"`, as Go's
 * `fmt.Fprintf(w, "Hello, %q", r.URL.Path)` handler does (bench/go/http is that server in
 * Go). The HTTP itself (parsing, keep-alive, pipelining, errors) is http_conn.c; this file
 * is the part a goro program adds: sockets, deadlines and an orderly shutdown.
 *
 *   hello_server [--addr host:port] [--procs N] [--header-timeout D] [--idle-timeout D]
 *                [--max-conns N]
 *
 * --addr defaults to 127.0.0.1:8080; port 0 takes any free port. The bound address is
 * printed on stdout as "listening on HOST:PORT" once the socket listens, so a script can
 * start the server on port 0 and read where it is; after a shutdown it prints the netpoller
 * that served, "netpoll: io_uring" or "netpoll: epoll" (GORO_NETPOLL chooses; the runtime
 * falls back to epoll where io_uring is unavailable, and says why). --procs sets
 * goro_config.maxprocs (0: every CPU). Durations are "5s", "250ms", "1.5s" or plain
 * seconds.
 *
 * Each connection goroutine loops: read with a deadline, feed the bytes to its http_conn,
 * write everything it produced with one goro_write (all the pipelined requests found in
 * one read are answered by one write). The deadline of a read depends on where the
 * connection is:
 *  - before the first byte of a request on a new connection, or inside a request's head:
 *    the read-header timeout (--header-timeout, 5 s) from the connection's accept or the
 *    request's first byte: a client that sends its headers slowly is cut there, however
 *    steadily it trickles (Go's ReadHeaderTimeout, the defence against Slowloris);
 *  - between requests on a kept-alive connection, and within a body: the idle timeout
 *    (--idle-timeout, 60 s) from now. Writes get the idle timeout too.
 * A timeout closes the connection without an answer, as Go's server does.
 *
 * At most --max-conns connections (10000) are served at once; one more is answered
 * `503 Service Unavailable` and closed, by a short-lived goroutine of its own (at most
 * 1024 of those at a time; beyond that a connection is closed unanswered).
 *
 * When the server closes a connection after a response it closes gracefully: it shuts
 * down its sending side and reads what the client still sends (for up to 500 ms) before
 * closing, so the client sees the response and then EOF rather than a reset that could
 * destroy the response in its receive buffer.
 *
 * SIGINT or SIGTERM shuts the server down: stop accepting, finish the requests in flight,
 * exit 0. The handler only writes a byte to a pipe (the self-pipe trick: nothing else is
 * safe in a signal handler); a goroutine parked in goro_read on the other end wakes, marks
 * the server as shutting down and goro_close()s the listener, which wakes the accept loop
 * with GORO_ECANCELED. Connections waiting idle between requests are shut down for
 * reading at once (their goroutine reads EOF and closes); a connection inside a request
 * answers it with `Connection: close` and closes. The main goroutine waits for every
 * connection goroutine (a goro_waitgroup) and returns.
 *
 * The handshake between a connection going idle and the shutdown sweep is a store-load
 * pair on both sides, sequentially consistent (StoreLoad): the connection stores
 * idle = 1 then loads shutting_down; the sweep stores shutting_down = 1 then loads each
 * idle. At least one of them sees the other's store, so an idle connection is either shut
 * down by the sweep or notices the shutdown itself before it waits.
 */
#include <goro.h>

#include "http_conn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MS ((int64_t)1000000)
#define SEC ((int64_t)1000000000)
#define READ_BUF 16384
#define LINGER (500 * MS)
#define MAX_REJECTING 1024

typedef struct server server;

/* One connection, owned by its goroutine. The shutdown sweep reads fd and idle, under
 * server.conns_lock while the connection is in the list. */
typedef struct conn {
    server *srv;
    int fd;             /* [init-only] */
    atomic_int idle;    /* [atomic] 1 while waiting for the next request */
    struct conn *prev;  /* [lock: server.conns_lock] */
    struct conn *next;  /* [lock: server.conns_lock] */
    int64_t accepted;   /* [g-local] goro_now() at accept */
    http_conn http;     /* [g-local] */
    char buf[READ_BUF]; /* [g-local] */
} conn;

struct server {
    /* Flags. */
    const char *addr;
    int procs;
    int64_t header_timeout, idle_timeout;
    long max_conns;
    /* Running state. */
    int listen_fd;
    int sig_fd;               /* the read end of the self-pipe */
    atomic_int shutting_down; /* [atomic] set once, by the signal goroutine */
    atomic_long live;         /* [atomic] connections being served */
    atomic_long rejecting;    /* [atomic] 503 goroutines alive */
    atomic_ullong served;     /* [atomic] requests answered, for the log */
    goro_waitgroup done;      /* every connection and 503 goroutine */
    goro_mutex conns_lock;    /* guards conns */
    conn *conns;              /* [lock: conns_lock] the connections being served */
    int status;               /* main's exit status */
};

/* ---------------------------------------------------------------- signals */

static int sig_pipe[2] = {-1, -1};

static void on_signal(int sig) {
    (void)sig;
    int saved = errno;
    /* The pipe is non-blocking, so the handler never blocks; the bytes of repeated
     * signals are never read, which is harmless: shutting down twice is shutting down. */
    ssize_t r = write(sig_pipe[1], "x", 1);
    (void)r;
    errno = saved;
}

static int install_signals(void) {
    if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
        return -1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0)
        return -1;
    return 0;
}

/* Waits for SIGINT/SIGTERM, then shuts the server down (see the top of the file). */
static void signal_goroutine(void *arg) {
    server *srv = arg;
    char b;
    ssize_t r = goro_read(srv->sig_fd, &b, 1, GORO_FOREVER);
    if (r != 1) {
        fprintf(stderr, "hello_server: reading the signal pipe: %s\n", goro_strerror((int)r));
        return;
    }
    fprintf(stderr, "hello_server: shutting down: %ld connections open\n", atomic_load(&srv->live));
    goro_mutex_lock(&srv->conns_lock);
    /* seq_cst store, partner of the load in serve() after its idle store (StoreLoad). */
    atomic_store(&srv->shutting_down, 1);
    for (conn *c = srv->conns; c != NULL; c = c->next)
        if (atomic_load(&c->idle))
            shutdown(c->fd, SHUT_RD); /* its goroutine reads EOF and closes */
    goro_mutex_unlock(&srv->conns_lock);
    /* Wakes the accept loop with GORO_ECANCELED. */
    goro_close(srv->listen_fd);
}

/* ---------------------------------------------------------------- connections */

/* Closes after a final response: FIN first, then whatever the client still sends is read
 * and dropped until it closes too or LINGER passes (see the top of the file). */
static void close_gracefully(int fd) {
    char sink[4096];
    if (shutdown(fd, SHUT_WR) == 0) {
        int64_t deadline = goro_now() + LINGER;
        while (goro_read(fd, sink, sizeof sink, deadline) > 0) {
        }
    }
    goro_close(fd);
}

static void serve(conn *c) {
    server *srv = c->srv;
    http_conn *h = &c->http;
    int64_t head_start = c->accepted; /* the first request's clock starts at accept */
    int graceful = 0;
    for (;;) {
        /* Two clock reads per request: before the read, for its deadline, and after it,
         * for the request's head clock and its writes' deadline. */
        int64_t now = goro_now(), deadline;
        int idle = http_conn_idle(h);
        if (idle) {
            /* seq_cst store, then load: the partner of signal_goroutine's sweep. */
            atomic_store(&c->idle, 1);
            if (atomic_load(&srv->shutting_down))
                break;
            deadline =
                h->requests == 0 ? head_start + srv->header_timeout : now + srv->idle_timeout;
        } else if (http_conn_in_head(h)) {
            deadline = head_start + srv->header_timeout;
        } else {
            deadline = now + srv->idle_timeout;
        }
        ssize_t n = goro_read(c->fd, c->buf, sizeof c->buf, deadline);
        atomic_store_explicit(&c->idle, 0, memory_order_relaxed);
        if (n <= 0)
            break; /* EOF, a timeout, a reset: close without an answer */
        now = goro_now();
        if (idle && h->requests > 0)
            head_start = now;
        if (atomic_load_explicit(&srv->shutting_down, memory_order_relaxed))
            http_conn_drain(h);
        uint64_t before = h->requests;
        size_t off = 0;
        int failed = 0;
        while (off < (size_t)n) {
            off += http_conn_feed(h, c->buf + off, (size_t)n - off);
            size_t len;
            const char *out = http_conn_output(h, &len);
            if (len > 0) {
                ssize_t w = goro_write(c->fd, out, len, now + srv->idle_timeout);
                http_conn_output_done(h);
                if (w < 0) {
                    failed = 1;
                    break;
                }
            }
        }
        if (failed)
            break;
        if (http_conn_should_close(h)) {
            graceful = 1;
            break;
        }
        /* A pipelined request begun after the ones just answered: its head's clock. */
        if (h->requests != before && http_conn_in_head(h))
            head_start = now;
    }
    atomic_fetch_add_explicit(&srv->served, h->requests, memory_order_relaxed);
    /* Out of the list before the fd is closed: the sweep must not shut down a reused fd. */
    goro_mutex_lock(&srv->conns_lock);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    goro_mutex_unlock(&srv->conns_lock);
    if (graceful)
        close_gracefully(c->fd);
    else
        goro_close(c->fd);
}

static void conn_goroutine(void *arg) {
    conn *c = arg;
    server *srv = c->srv;
    serve(c);
    http_conn_free(&c->http);
    free(c);
    atomic_fetch_sub(&srv->live, 1);
    goro_wg_done(&srv->done);
}

/* One connection over the cap: 503, then a graceful close. */
typedef struct reject {
    server *srv;
    int fd;
} reject;

static void reject_goroutine(void *arg) {
    reject *r = arg;
    char resp[256], date[HTTP_DATE_SIZE];
    size_t len = http_error_response(503, http_date_now(date), resp, sizeof resp);
    if (goro_write(r->fd, resp, len, goro_now() + SEC) == (ssize_t)len)
        close_gracefully(r->fd);
    else
        goro_close(r->fd);
    atomic_fetch_sub(&r->srv->rejecting, 1);
    goro_wg_done(&r->srv->done);
    free(r);
}

static void start_reject(server *srv, int fd) {
    reject *r = NULL;
    if (atomic_fetch_add(&srv->rejecting, 1) < MAX_REJECTING)
        r = malloc(sizeof *r);
    if (r == NULL) {
        atomic_fetch_sub(&srv->rejecting, 1);
        goro_close(fd);
        return;
    }
    r->srv = srv;
    r->fd = fd;
    goro_wg_add(&srv->done, 1);
    static const goro_attr attr = {0, "reject"};
    if (goro_spawn_attr(&attr, reject_goroutine, r) != 0) {
        goro_wg_done(&srv->done);
        atomic_fetch_sub(&srv->rejecting, 1);
        free(r);
        goro_close(fd);
    }
}

static void start_conn(server *srv, int fd) {
    conn *c = malloc(sizeof *c);
    if (c == NULL) {
        goro_close(fd);
        return;
    }
    c->srv = srv;
    c->fd = fd;
    atomic_init(&c->idle, 0);
    c->accepted = goro_now();
    http_conn_init(&c->http, NULL);
    atomic_fetch_add(&srv->live, 1);
    goro_wg_add(&srv->done, 1);
    goro_mutex_lock(&srv->conns_lock);
    c->prev = NULL;
    c->next = srv->conns;
    if (srv->conns != NULL)
        srv->conns->prev = c;
    srv->conns = c;
    goro_mutex_unlock(&srv->conns_lock);
    static const goro_attr attr = {0, "conn"};
    if (goro_spawn_attr(&attr, conn_goroutine, c) != 0) {
        /* Out of memory for a goroutine: undo, as if the connection had ended. */
        goro_mutex_lock(&srv->conns_lock);
        srv->conns = c->next;
        if (c->next != NULL)
            c->next->prev = NULL;
        goro_mutex_unlock(&srv->conns_lock);
        goro_close(fd);
        http_conn_free(&c->http);
        free(c);
        atomic_fetch_sub(&srv->live, 1);
        goro_wg_done(&srv->done);
    }
}

/* ---------------------------------------------------------------- main */

static void server_main(void *arg) {
    server *srv = arg;
    srv->listen_fd = goro_tcp_listen(srv->addr, 0);
    if (srv->listen_fd < 0) {
        fprintf(stderr, "hello_server: listen on %s: %s\n", srv->addr,
                goro_strerror(srv->listen_fd));
        srv->status = 1;
        return;
    }
    int port = goro_tcp_port(srv->listen_fd);
    const char *colon = strrchr(srv->addr, ':');
    int hostlen = colon != NULL ? (int)(colon - srv->addr) : 0;
    printf("listening on %.*s:%d\n", hostlen, srv->addr, port);
    fflush(stdout);

    static const goro_attr sig_attr = {0, "signals"};
    if (goro_spawn_attr(&sig_attr, signal_goroutine, srv) != 0) {
        fprintf(stderr, "hello_server: cannot start the signal goroutine\n");
        srv->status = 1;
        return;
    }

    for (;;) {
        int fd = goro_accept(srv->listen_fd, GORO_FOREVER);
        if (fd < 0) {
            if (fd == GORO_ECANCELED || atomic_load(&srv->shutting_down))
                break;
            if (fd == -ECONNABORTED || fd == -EINTR || fd == -EPROTO || fd == -EPERM)
                continue; /* that connection is gone, not the listener */
            fprintf(stderr, "hello_server: accept: %s\n", goro_strerror(fd));
            goro_sleep(10 * MS);
            continue;
        }
        if (atomic_load_explicit(&srv->live, memory_order_relaxed) >= srv->max_conns)
            start_reject(srv, fd);
        else
            start_conn(srv, fd);
    }

    goro_wg_wait(&srv->done);
    fprintf(stderr, "hello_server: stopped after %llu requests\n",
            (unsigned long long)atomic_load(&srv->served));
    /* Which netpoller served (GORO_NETPOLL), for the tests and the benchmark's log. */
    goro_stats st;
    goro_stats_get(&st);
    if (st.netpoll_backend == GORO_NETPOLL_IO_URING)
        printf("netpoll: io_uring\n");
    else if (st.netpoll_fallback != 0)
        printf("netpoll: epoll (io_uring unavailable: %s)\n", goro_strerror(st.netpoll_fallback));
    else
        printf("netpoll: %s\n", st.netpoll_backend == GORO_NETPOLL_EPOLL ? "epoll" : "none");
    fflush(stdout);
}

/* "5s", "250ms", "1.5s", "2m", or plain seconds: nanoseconds, or -1. */
static int64_t parse_duration(const char *s) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno != 0 || !(v >= 0))
        return -1;
    double unit = 1e9;
    if (strcmp(end, "ms") == 0)
        unit = 1e6;
    else if (strcmp(end, "us") == 0)
        unit = 1e3;
    else if (strcmp(end, "m") == 0)
        unit = 60e9;
    else if (*end != '\0' && strcmp(end, "s") != 0)
        return -1;
    double ns = v * unit;
    return ns > 1e18 ? -1 : (int64_t)ns;
}

static void usage(void) {
    fprintf(stderr, "usage: hello_server [--addr host:port] [--procs N] [--header-timeout D]\n"
                    "                    [--idle-timeout D] [--max-conns N]\n"
                    "  --addr            listen address (default 127.0.0.1:8080; port 0: any)\n"
                    "  --procs           goroutine processors (default 0: every CPU)\n"
                    "  --header-timeout  time to read a request's headers (default 5s)\n"
                    "  --idle-timeout    keep-alive wait between requests (default 60s)\n"
                    "  --max-conns       connections served at once (default 10000)\n");
}

int main(int argc, char **argv) {
    static server srv;
    srv.addr = "127.0.0.1:8080";
    srv.header_timeout = 5 * SEC;
    srv.idle_timeout = 60 * SEC;
    srv.max_conns = 10000;
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i], *name = flag, *val = NULL;
        if (name[0] != '-') {
            usage();
            return 2;
        }
        name += name[1] == '-' ? 2 : 1;
        if (strcmp(name, "h") == 0 || strcmp(name, "help") == 0) {
            usage();
            return 0;
        }
        const char *eq = strchr(name, '=');
        size_t len = eq != NULL ? (size_t)(eq - name) : strlen(name);
        if (eq != NULL)
            val = eq + 1;
        else if (i + 1 < argc)
            val = argv[++i];
        if (val == NULL) {
            fprintf(stderr, "hello_server: flag needs a value: %s\n", flag);
            return 2;
        }
        char *end;
        if (len == 4 && strncmp(name, "addr", len) == 0) {
            srv.addr = val;
        } else if (len == 5 && strncmp(name, "procs", len) == 0) {
            long v = strtol(val, &end, 10);
            if (*end != '\0' || v < 0 || v > 1024)
                goto bad;
            srv.procs = (int)v;
        } else if (len == 9 && strncmp(name, "max-conns", len) == 0) {
            long v = strtol(val, &end, 10);
            if (*end != '\0' || v < 1)
                goto bad;
            srv.max_conns = v;
        } else if (len == 14 && strncmp(name, "header-timeout", len) == 0) {
            if ((srv.header_timeout = parse_duration(val)) <= 0)
                goto bad;
        } else if (len == 12 && strncmp(name, "idle-timeout", len) == 0) {
            if ((srv.idle_timeout = parse_duration(val)) <= 0)
                goto bad;
        } else {
            fprintf(stderr, "hello_server: unknown flag: %s\n", flag);
            usage();
            return 2;
        }
        continue;
    bad:
        fprintf(stderr, "hello_server: bad value for --%.*s: %s\n", (int)len, name, val);
        return 2;
    }

    if (install_signals() != 0) {
        perror("hello_server: signals");
        return 1;
    }
    srv.sig_fd = sig_pipe[0];
    goro_config cfg = {.maxprocs = srv.procs};
    int err = goro_run(&cfg, server_main, &srv);
    if (err != 0) {
        fprintf(stderr, "hello_server: goro_run: %s\n", goro_strerror(err));
        return 1;
    }
    return srv.status;
}
