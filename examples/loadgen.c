/*
 * loadgen.c - an HTTP/1.1 keep-alive load generator written with goroutines.
 *
 *   loadgen [-c connections] [-d seconds] [-p pipeline-depth] [--procs N] host:port [path]
 *
 * Opens -c connections (default 10), each driven by a goroutine of its own, and keeps
 * -p requests (default 1) in flight on each for -d seconds (default 5): GET path (default
 * "/") with keep-alive. Every response is parsed (status line, Content-Length, body
 * skipped) and must be 200; a new request is written for each one answered, all those a
 * read completed in one write. At the end it prints requests/s and the latency
 * percentiles p50/p90/p99/max (a request's latency runs from the write that sent it to the
 * read that completed its response), and exits 1 if any error happened (a failed connect,
 * read or write, a status other than 200, a response it cannot parse, a connection the
 * server closed) or no request completed at all.
 *
 * The last line, "RESULT requests_per_s <value> req/s", is for scripts.
 *
 * Latencies go into a histogram per goroutine (log-linear: 32 buckets per power of two,
 * so about 3% resolution), merged at the end: recording costs no lock and no allocation.
 */
#include <goro.h>

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MS ((int64_t)1000000)
#define SEC ((int64_t)1000000000)
#define READ_BUF 65536
#define HEAD_MAX 8192
#define IO_TIMEOUT (10 * SEC)

/* ---------------------------------------------------------------- histogram */

#define HIST_SUB_BITS 5
#define HIST_SUB (1 << HIST_SUB_BITS)
#define HIST_EXP 42 /* up to 2^42 ns, 73 minutes */
#define HIST_BUCKETS (2 * HIST_SUB + (HIST_EXP - HIST_SUB_BITS - 1) * HIST_SUB)

typedef struct hist {
    uint32_t count[HIST_BUCKETS];
    uint64_t total;
    int64_t max;
} hist;

static int bit_length(uint64_t v) {
    return v == 0 ? 0 : 64 - __builtin_clzll(v);
}

/* Values below 2 * HIST_SUB have a bucket each; above, each power of two is cut in
 * HIST_SUB equal buckets. */
static size_t hist_index(int64_t v) {
    if (v < 0)
        v = 0;
    if (v < 2 * HIST_SUB)
        return (size_t)v;
    int shift = bit_length((uint64_t)v) - HIST_SUB_BITS - 1;
    size_t i = (size_t)shift * HIST_SUB + (size_t)((uint64_t)v >> shift);
    return i < HIST_BUCKETS ? i : HIST_BUCKETS - 1;
}

/* The middle of bucket i's range. */
static int64_t hist_value(size_t i) {
    if (i < 2 * HIST_SUB)
        return (int64_t)i;
    int shift = (int)(i / HIST_SUB) - 1;
    uint64_t lo = (uint64_t)(i - (size_t)shift * HIST_SUB) << shift;
    return (int64_t)(lo + (((uint64_t)1 << shift) >> 1));
}

static void hist_record(hist *h, int64_t v) {
    h->count[hist_index(v)]++;
    h->total++;
    if (v > h->max)
        h->max = v;
}

static void hist_merge(hist *into, const hist *h) {
    for (size_t i = 0; i < HIST_BUCKETS; i++)
        into->count[i] += h->count[i];
    into->total += h->total;
    if (h->max > into->max)
        into->max = h->max;
}

static int64_t hist_percentile(const hist *h, double pct) {
    if (h->total == 0)
        return 0;
    uint64_t rank = (uint64_t)(pct / 100.0 * (double)h->total + 0.5), seen = 0;
    if (rank < 1)
        rank = 1;
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        seen += h->count[i];
        if (seen >= rank) {
            int64_t v = hist_value(i);
            return v < h->max ? v : h->max;
        }
    }
    return h->max;
}

/* ---------------------------------------------------------------- one connection */

typedef struct config {
    const char *addr, *path;
    long conns, depth;
    int64_t duration;
    int procs;
} config;

typedef struct run {
    config cfg;
    char *request; /* one request */
    size_t request_len;
    char *batch; /* depth requests back to back */
    int64_t start, end;
    goro_waitgroup done;
    atomic_ulong errors;
    goro_mutex lock; /* guards total */
    hist total;
    uint64_t requests;
    int status;
} run;

typedef struct client {
    run *r;
    int fd;
    int64_t *sent; /* a ring of send times, depth entries */
    long head, inflight;
    /* The response being parsed. */
    char hbuf[HEAD_MAX];
    size_t hlen;
    uint64_t body_left; /* body bytes still to skip; valid while in_body */
    int in_body;
    int status; /* of the response being read */
    uint64_t done;
    hist lat;
} client;

static void report_error(run *r, const char *what, const char *detail) {
    /* Only the first few, not one line per failed request. */
    if (atomic_fetch_add(&r->errors, 1) < 5)
        fprintf(stderr, "loadgen: %s%s%s\n", what, detail != NULL ? ": " : "",
                detail != NULL ? detail : "");
}

/* Parses a response head (without its final CRLFCRLF terminator's last CRLF): sets the
 * status and the body length. Returns 0, or -1 if it is not a response loadgen handles. */
static int parse_head(client *c, const char *p, size_t n) {
    if (n < 12 || memcmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ')
        return -1;
    int status = 0;
    for (int i = 9; i < 12; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        status = status * 10 + (p[i] - '0');
    }
    c->status = status;
    int have_length = 0;
    uint64_t length = 0;
    const char *line = memchr(p, '\n', n);
    while (line != NULL && (size_t)(line + 1 - p) < n) {
        line++;
        const char *eol = memchr(line, '\n', n - (size_t)(line - p));
        size_t len = eol != NULL ? (size_t)(eol - line) : n - (size_t)(line - p);
        if (len >= 15 && strncasecmp(line, "content-length:", 15) == 0) {
            const char *v = line + 15;
            while (v < line + len && (*v == ' ' || *v == '\t'))
                v++;
            if (v == line + len || *v < '0' || *v > '9')
                return -1;
            length = 0;
            while (v < line + len && *v >= '0' && *v <= '9')
                length = length * 10 + (uint64_t)(*v++ - '0');
            have_length = 1;
        } else if (len >= 18 && strncasecmp(line, "transfer-encoding:", 18) == 0) {
            return -1; /* hello_server never chunks a response */
        }
        line = eol;
    }
    if (status >= 100 && status < 200) {
        c->body_left = 0; /* an interim response: no body, not counted */
        return 0;
    }
    if (!have_length)
        return -1;
    c->body_left = length;
    return 0;
}

/* A response is complete: record it. */
static void complete(client *c, int64_t now) {
    if (c->status >= 100 && c->status < 200)
        return;
    if (c->inflight == 0) {
        report_error(c->r, "a response to no request", NULL);
        return;
    }
    int64_t t = c->sent[c->head];
    c->head = (c->head + 1) % c->r->cfg.depth;
    c->inflight--;
    if (c->status != 200) {
        char s[16];
        snprintf(s, sizeof s, "%d", c->status);
        report_error(c->r, "status", s);
        return;
    }
    c->done++;
    hist_record(&c->lat, now - t);
}

/* A response's body is complete: counts it into *completed. -1 if its status ends the run
 * (anything but 200 and interim 1xx responses). */
static int finish_response(client *c, int64_t now, long *completed) {
    c->in_body = 0;
    long before = (long)c->done;
    complete(c, now);
    *completed += (long)c->done - before;
    return c->status != 200 && (c->status < 100 || c->status >= 200) ? -1 : 0;
}

/* Consumes n bytes of responses; returns the responses completed, or -1 on an error. */
static long consume(client *c, const char *p, size_t n, int64_t now) {
    long completed = 0;
    while (n > 0) {
        if (c->in_body) {
            size_t k = c->body_left < n ? (size_t)c->body_left : n;
            c->body_left -= k;
            p += k;
            n -= k;
            if (c->body_left == 0) {
                if (finish_response(c, now, &completed) != 0)
                    return -1;
            }
            continue;
        }
        /* In a head: find its end, in the bytes kept from earlier reads and these. */
        size_t take = n < HEAD_MAX - c->hlen ? n : HEAD_MAX - c->hlen;
        memcpy(c->hbuf + c->hlen, p, take);
        size_t scan_from = c->hlen >= 3 ? c->hlen - 3 : 0, total = c->hlen + take;
        char *end = NULL;
        for (size_t i = scan_from; i + 4 <= total; i++) {
            if (c->hbuf[i] == '\r' && memcmp(c->hbuf + i, "\r\n\r\n", 4) == 0) {
                end = c->hbuf + i;
                break;
            }
        }
        if (end == NULL) {
            if (total == HEAD_MAX) {
                report_error(c->r, "response head too long", NULL);
                return -1;
            }
            c->hlen = total;
            return completed;
        }
        size_t head_len = (size_t)(end - c->hbuf) + 4;
        size_t used = head_len - c->hlen; /* bytes of p that belonged to the head */
        if (parse_head(c, c->hbuf, head_len - 2) != 0) {
            report_error(c->r, "malformed response", NULL);
            return -1;
        }
        c->hlen = 0;
        p += used;
        n -= used;
        c->in_body = 1;
        if (c->body_left == 0 && finish_response(c, now, &completed) != 0)
            return -1;
    }
    return completed;
}

/* Writes k requests, noting their send time. */
static int send_requests(client *c, long k, int64_t now) {
    run *r = c->r;
    long depth = r->cfg.depth;
    for (long i = 0; i < k; i++) {
        c->sent[(c->head + c->inflight) % depth] = now;
        c->inflight++;
    }
    ssize_t w = goro_write(c->fd, r->batch, (size_t)k * r->request_len, now + IO_TIMEOUT);
    if (w < 0) {
        report_error(r, "write", goro_strerror((int)w));
        return -1;
    }
    return 0;
}

static void client_loop(client *c) {
    run *r = c->r;
    char *buf = malloc(READ_BUF);
    if (buf == NULL) {
        report_error(r, "out of memory", NULL);
        return;
    }
    if (send_requests(c, r->cfg.depth, goro_now()) != 0)
        goto out;
    for (;;) {
        int64_t now = goro_now();
        if (now >= r->end)
            break;
        int64_t deadline = now + IO_TIMEOUT < r->end ? now + IO_TIMEOUT : r->end;
        ssize_t n = goro_read(c->fd, buf, READ_BUF, deadline);
        now = goro_now();
        if (n == GORO_ETIMEDOUT && now >= r->end)
            break; /* the run is over; what is in flight does not count */
        if (n <= 0) {
            report_error(r, n == 0 ? "connection closed by the server" : "read",
                         n == 0 ? NULL : goro_strerror((int)n));
            break;
        }
        long k = consume(c, buf, (size_t)n, now);
        if (k < 0)
            break;
        if (k > 0 && now < r->end && send_requests(c, k, now) != 0)
            break;
    }
out:
    free(buf);
}

static void client_goroutine(void *arg) {
    client *c = arg;
    run *r = c->r;
    c->fd = goro_tcp_dial(r->cfg.addr, goro_now() + IO_TIMEOUT);
    if (c->fd < 0) {
        report_error(r, "connect", goro_strerror(c->fd));
    } else {
        client_loop(c);
        goro_close(c->fd);
    }
    goro_mutex_lock(&r->lock);
    hist_merge(&r->total, &c->lat);
    r->requests += c->done;
    goro_mutex_unlock(&r->lock);
    free(c->sent);
    free(c);
    goro_wg_done(&r->done);
}

static void main_goroutine(void *arg) {
    run *r = arg;
    r->start = goro_now();
    r->end = r->start + r->cfg.duration;
    for (long i = 0; i < r->cfg.conns; i++) {
        client *c = calloc(1, sizeof *c);
        int64_t *sent = malloc((size_t)r->cfg.depth * sizeof *sent);
        if (c == NULL || sent == NULL) {
            free(c);
            free(sent);
            report_error(r, "out of memory", NULL);
            break;
        }
        c->r = r;
        c->sent = sent;
        goro_wg_add(&r->done, 1);
        static const goro_attr attr = {0, "client"};
        int err = goro_spawn_attr(&attr, client_goroutine, c);
        if (err != 0) {
            goro_wg_done(&r->done);
            free(sent);
            free(c);
            report_error(r, "spawn", goro_strerror(err));
            break;
        }
    }
    goro_wg_wait(&r->done);
    int64_t elapsed = goro_now() - r->start;

    double secs = (double)elapsed / 1e9;
    double rps = secs > 0 ? (double)r->requests / secs : 0;
    unsigned long errors = atomic_load(&r->errors);
    printf("loadgen: %s%s, %ld connections, pipeline %ld, %.2f s, %d procs\n", r->cfg.addr,
           r->cfg.path, r->cfg.conns, r->cfg.depth, secs, goro_maxprocs(0));
    printf("requests %" PRIu64 ", %.0f requests/s, errors %lu\n", r->requests, rps, errors);
    printf("latency p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, max %.3f ms\n",
           (double)hist_percentile(&r->total, 50) / 1e6,
           (double)hist_percentile(&r->total, 90) / 1e6,
           (double)hist_percentile(&r->total, 99) / 1e6, (double)r->total.max / 1e6);
    printf("RESULT requests_per_s %.0f req/s\n", rps);
    fflush(stdout);
    if (errors > 0) {
        fprintf(stderr, "loadgen: %lu errors\n", errors);
        r->status = 1;
    } else if (r->requests == 0) {
        fprintf(stderr, "loadgen: no request completed\n");
        r->status = 1;
    }
}

static void usage(void) {
    fprintf(stderr, "usage: loadgen [-c connections] [-d seconds] [-p pipeline-depth] [--procs N]\n"
                    "               host:port [path]\n"
                    "  -c       connections, one goroutine each (default 10)\n"
                    "  -d       duration in seconds (default 5; fractions allowed)\n"
                    "  -p       requests in flight per connection (default 1)\n"
                    "  --procs  goroutine processors (default 0: every CPU)\n");
}

int main(int argc, char **argv) {
    static run r;
    r.cfg.conns = 10;
    r.cfg.depth = 1;
    r.cfg.duration = 5 * SEC;
    r.cfg.path = "/";
    const char *pos[2] = {NULL, NULL};
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || a[1] == '\0') {
            if (npos == 2) {
                usage();
                return 2;
            }
            pos[npos++] = a;
            continue;
        }
        const char *name = a + (a[1] == '-' ? 2 : 1);
        if (strcmp(name, "h") == 0 || strcmp(name, "help") == 0) {
            usage();
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "loadgen: %s needs a value\n", a);
            return 2;
        }
        const char *v = argv[++i];
        char *end;
        if (strcmp(name, "c") == 0) {
            r.cfg.conns = strtol(v, &end, 10);
            if (*end != '\0' || r.cfg.conns < 1 || r.cfg.conns > 1000000)
                goto bad;
        } else if (strcmp(name, "d") == 0) {
            double d = strtod(v, &end);
            if (*end == 's')
                end++;
            if (*end != '\0' || !(d > 0) || d > 86400)
                goto bad;
            r.cfg.duration = (int64_t)(d * 1e9);
        } else if (strcmp(name, "p") == 0) {
            r.cfg.depth = strtol(v, &end, 10);
            if (*end != '\0' || r.cfg.depth < 1 || r.cfg.depth > 1024)
                goto bad;
        } else if (strcmp(name, "procs") == 0) {
            long p = strtol(v, &end, 10);
            if (*end != '\0' || p < 0 || p > 1024)
                goto bad;
            r.cfg.procs = (int)p;
        } else {
            fprintf(stderr, "loadgen: unknown flag %s\n", a);
            usage();
            return 2;
        }
        continue;
    bad:
        fprintf(stderr, "loadgen: bad value for %s: %s\n", a, v);
        return 2;
    }
    if (npos < 1) {
        usage();
        return 2;
    }
    r.cfg.addr = pos[0];
    if (strncmp(r.cfg.addr, "http://", 7) == 0)
        r.cfg.addr += 7;
    if (npos == 2)
        r.cfg.path = pos[1];
    if (r.cfg.path[0] != '/' || strpbrk(r.cfg.path, " \r\n") != NULL) {
        fprintf(stderr, "loadgen: the path must start with '/' and hold no spaces\n");
        return 2;
    }

    size_t cap = strlen(r.cfg.path) + strlen(r.cfg.addr) + 64;
    r.request = malloc(cap);
    r.batch = malloc(cap * (size_t)r.cfg.depth);
    if (r.request == NULL || r.batch == NULL) {
        fprintf(stderr, "loadgen: out of memory\n");
        return 1;
    }
    int len =
        snprintf(r.request, cap, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", r.cfg.path, r.cfg.addr);
    r.request_len = (size_t)len;
    for (long i = 0; i < r.cfg.depth; i++)
        memcpy(r.batch + (size_t)i * r.request_len, r.request, r.request_len);

    goro_config cfg = {.maxprocs = r.cfg.procs};
    int err = goro_run(&cfg, main_goroutine, &r);
    free(r.request);
    free(r.batch);
    if (err != 0) {
        fprintf(stderr, "loadgen: goro_run: %s\n", goro_strerror(err));
        return 1;
    }
    return r.status;
}
