/*
 * net_partial_write: one goro_write of several MiB through tiny kernel buffers.
 *
 * The sockets get SO_SNDBUF and SO_RCVBUF of 4 KiB (the kernel doubles and rounds that up
 * a little), so the kernel takes a few KiB per write(2) and goro_write has to park and
 * resume many times. A slow reader goroutine takes the bytes in small random pieces,
 * pausing now and then, and checks each against the stream. goro_write must return
 * exactly n, and the reader must see every byte once, in order, then EOF. Before reading
 * anything the readers wait until every writer is parked on the netpoller, which proves
 * the writes really were partial.
 *
 * Several such pairs run at once, and one pair is a pipe shrunk to one page
 * (F_SETPIPE_SZ).
 */
#include "netutil.h"

#include <netinet/in.h>
#include <sys/socket.h>

#define PAIRS 3
#define TINY_BUF 4096

static goro_chan *start; /* closed once every writer is parked */

typedef struct pair {
    int id;
    int wfd, rfd;
    size_t total;
    ssize_t written;
    size_t read;
    uint64_t wsum, rsum;
    long reads;
    goro_waitgroup *wg;
} pair;

static void writer(void *arg) {
    pair *p = arg;
    char *buf = malloc(p->total);
    CHECK(buf != NULL);
    nu_fill(buf, p->total, (uint64_t)p->id, 0);
    p->wsum = nu_fnv(NU_FNV_INIT, buf, p->total);
    p->written = goro_write(p->wfd, buf, p->total, GORO_FOREVER);
    CHECK_EQ(goro_close(p->wfd), 0);
    free(buf);
    goro_wg_done(p->wg);
}

static void reader(void *arg) {
    pair *p = arg;
    char buf[3000];
    uint64_t rng = 31 + (uint64_t)p->id, off = 0;
    p->rsum = NU_FNV_INIT;
    CHECK_EQ(goro_chan_recv(start, NULL), GORO_ECLOSED);
    for (;;) {
        size_t want = 1 + (size_t)(tu_rand(&rng) % sizeof buf);
        ssize_t r = goro_read(p->rfd, buf, want, GORO_FOREVER);
        CHECKF(r >= 0, "pair %d: goro_read: %s", p->id, goro_strerror((int)r));
        if (r == 0)
            break;
        long bad = nu_check(buf, (size_t)r, (uint64_t)p->id, off);
        CHECKF(bad < 0, "pair %d: byte %llu of the stream differs", p->id,
               (unsigned long long)(off + (uint64_t)bad));
        p->rsum = nu_fnv(p->rsum, buf, (size_t)r);
        off += (uint64_t)r;
        p->reads++;
        if (p->reads % 64 == 0)
            goro_sleep(200 * TU_US); /* slow */
        else if (p->reads % 8 == 0)
            goro_yield();
    }
    p->read = off;
    CHECK_EQ(goro_close(p->rfd), 0);
    goro_wg_done(p->wg);
}

static void set_bufs(int fd) {
    int v = TINY_BUF;
    CHECK(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v) == 0);
    CHECK(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v) == 0);
}

static void test_main(void *arg) {
    (void)arg;
    size_t total = (size_t)tu_scaled(6 * 1024 * 1024, 1024 * 1024);
    int lfd = goro_tcp_listen("127.0.0.1:0", 0);
    CHECKF(lfd >= 0, "goro_tcp_listen: %s", goro_strerror(lfd));
    set_bufs(lfd); /* accepted sockets inherit the listener's buffer sizes */
    char addr[64];
    nu_addr(addr, sizeof addr, "127.0.0.1", goro_tcp_port(lfd));

    CHECK_EQ(goro_chan_make(&start, 1, 0), 0);
    pair pairs[PAIRS + 1];
    goro_waitgroup wg = GORO_WAITGROUP_INIT;
    for (int i = 0; i <= PAIRS; i++) {
        pair *p = &pairs[i];
        memset(p, 0, sizeof *p);
        p->id = i;
        p->total = total;
        p->wg = &wg;
        if (i < PAIRS) {
            p->wfd = goro_tcp_dial(addr, goro_now() + 5 * nu_slow() * NU_SEC);
            CHECKF(p->wfd >= 0, "goro_tcp_dial: %s", goro_strerror(p->wfd));
            set_bufs(p->wfd);
            p->rfd = goro_accept(lfd, goro_now() + 5 * nu_slow() * NU_SEC);
            CHECKF(p->rfd >= 0, "goro_accept: %s", goro_strerror(p->rfd));
            int v = 0;
            socklen_t len = sizeof v;
            CHECK(getsockopt(p->rfd, SOL_SOCKET, SO_RCVBUF, &v, &len) == 0);
            CHECKF(v <= 4 * TINY_BUF, "the accepted socket's SO_RCVBUF is %d", v);
        } else {
            int fds[2];
            CHECK(pipe2(fds, O_CLOEXEC) == 0);
            int sz = fcntl(fds[1], F_SETPIPE_SZ, 4096);
            CHECKF(sz > 0 && sz <= 4 * TINY_BUF, "F_SETPIPE_SZ(4096): %d (%s)", sz,
                   sz < 0 ? strerror(errno) : "too big");
            p->rfd = fds[0];
            p->wfd = fds[1];
        }
    }
    int64_t t0 = goro_now();
    goro_wg_add(&wg, 2 * (PAIRS + 1));
    for (int i = 0; i <= PAIRS; i++) {
        CHECK_EQ(goro_spawn(reader, &pairs[i]), 0);
        CHECK_EQ(goro_spawn(writer, &pairs[i]), 0);
    }
    /* All writers are parked on full buffers before any reader reads. */
    nu_wait_netpoll(PAIRS + 1, 10, "writers parked on full buffers");
    CHECK_EQ(goro_chan_close(start), 0);
    goro_wg_wait(&wg);
    int64_t elapsed = goro_now() - t0;

    for (int i = 0; i <= PAIRS; i++) {
        pair *p = &pairs[i];
        CHECKF(p->written == (ssize_t)total, "%s %d: goro_write(%zu) returned %zd (%s)",
               i < PAIRS ? "socket" : "pipe", i, total, p->written,
               p->written < 0 ? goro_strerror((int)p->written) : "not n");
        CHECKF(p->read == total, "%s %d: %zu bytes read before EOF, %zu written",
               i < PAIRS ? "socket" : "pipe", i, p->read, total);
        CHECK(p->rsum == p->wsum);
        printf("%s %d: %.1f MiB in one goro_write, read in %ld pieces\n",
               i < PAIRS ? "socket" : "pipe", i, (double)total / (1 << 20), p->reads);
    }
    printf("%d streams of %.1f MiB through 4 KiB buffers in %.0f ms\n", PAIRS + 1,
           (double)total / (1 << 20), (double)elapsed / 1e6);
    CHECK_EQ(goro_close(lfd), 0);
    goro_chan_release(start);
    nu_check_netpoll("net_partial_write");
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0); /* what was printed survives a failed CHECK */
    nu_watchdog_start("net_partial_write", 50);
    int rc = goro_run(NULL, test_main, NULL);
    CHECKF(rc == 0, "goro_run: %s", goro_strerror(rc));
    nu_watchdog_stop();
    return tu_pass("net_partial_write");
}
