/*
 * replay_deterministic.c - GORO_DEBUG=deterministic=SEED (src/replay.c): the same seed
 * gives the same output, bit for bit, and the seed matters.
 *
 * The child program's output depends on the interleaving: goroutines append to a shared
 * log under a mutex, hand items through a buffered channel to a collector, sleep, select
 * with timeouts against a goroutine that sends ticks, and talk to an echo server over
 * loopback TCP; one sleeps for an hour. Every line carries goro_now(), the virtual clock.
 * The parent runs it 100 times with one seed (each run in a fresh child, which starts
 * the runtime from nothing) and checks that every output is byte-identical to the first,
 * then runs 10 other seeds and checks that they do not all give one output. Each child
 * also checks that its hour of sleep took virtual time, not real time, and that
 * goro_maxprocs and GORO_MAXPROCS cannot take it off its one P. Before that, a child that
 * deadlocks after an hour of virtual sleep must die with the usual fatal message.
 */
#include "testutil.h"

#include <stdarg.h>
#include <time.h>

#define WORKERS 4
#define STEPS 4
#define CLIENTS 2
#define MSGS 3
#define HOUR (3600LL * 1000000000LL)

/* ------------------------------------------------------------------ the child */

static char logbuf[1 << 16];
static size_t loglen;
static goro_mutex logmu;
static int64_t t0;
static goro_waitgroup wg, cwg;
static goro_chan *items, *ticks;
static int listen_fd;

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...) {
    goro_mutex_lock(&logmu);
    int n = snprintf(logbuf + loglen, sizeof logbuf - loglen, "%8lld us g%llu ",
                     (long long)(goro_now() - t0) / 1000, (unsigned long long)goro_self());
    CHECK(n > 0 && (size_t)n < sizeof logbuf - loglen);
    loglen += (size_t)n;
    va_list ap;
    va_start(ap, fmt);
    n = vsnprintf(logbuf + loglen, sizeof logbuf - loglen, fmt, ap);
    va_end(ap);
    CHECK(n > 0 && (size_t)n + 1 < sizeof logbuf - loglen);
    loglen += (size_t)n;
    logbuf[loglen++] = '\n';
    goro_mutex_unlock(&logmu);
}

static void worker(void *arg) {
    long id = (long)arg;
    for (int i = 0; i < STEPS; i++) {
        logf_("worker %ld step %d", id, i);
        long item = id * 100 + i;
        CHECK(goro_chan_send(items, &item) == 0);
        goro_sleep((id * 7 + i * 3) % 5 * 1000000);
        int tick;
        goro_case c = {.chan = ticks, .op = GORO_RECV, .elem = &tick};
        int r = goro_select(&c, 1, goro_now() + 2000000);
        if (r == 0)
            logf_("worker %ld tick %d%s", id, c.result == 0 ? tick : -1,
                  c.result == 0 ? "" : " (closed)");
        else
            logf_("worker %ld timeout (%s)", id, goro_strerror(r));
        goro_yield();
    }
    goro_wg_done(&wg);
}

static void collector(void *arg) {
    (void)arg;
    long item;
    while (goro_chan_recv(items, &item) == 0)
        logf_("collected %ld", item);
    goro_wg_done(&cwg);
}

static void ticker(void *arg) {
    (void)arg;
    for (int i = 0; i < 6; i++) {
        goro_sleep(1500000);
        if (goro_chan_send_dl(ticks, &i, goro_now() + 500000) != 0)
            logf_("tick %d unsent", i);
    }
    goro_chan_close(ticks);
    goro_wg_done(&wg);
}

static void sleeper(void *arg) {
    (void)arg;
    goro_sleep(HOUR);
    logf_("an hour later");
    goro_wg_done(&wg);
}

static void echo_conn(void *arg) {
    int fd = (int)(long)arg;
    char buf[64];
    ssize_t n;
    while ((n = goro_read(fd, buf, sizeof buf, GORO_FOREVER)) > 0)
        CHECK(goro_write(fd, buf, (size_t)n, GORO_FOREVER) == n);
    goro_close(fd);
    goro_wg_done(&wg);
}

static void server(void *arg) {
    (void)arg;
    for (int i = 0; i < CLIENTS; i++) {
        int fd = goro_accept(listen_fd, GORO_FOREVER);
        CHECKF(fd >= 0, "accept: %s", goro_strerror(fd));
        logf_("accepted a connection");
        goro_wg_add(&wg, 1);
        CHECK(goro_spawn(echo_conn, (void *)(long)fd) == 0);
    }
    goro_close(listen_fd);
    goro_wg_done(&wg);
}

static void client(void *arg) {
    long id = (long)arg;
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", goro_tcp_port(listen_fd));
    int fd = goro_tcp_dial(addr, GORO_FOREVER);
    CHECKF(fd >= 0, "dial: %s", goro_strerror(fd));
    for (int m = 0; m < MSGS; m++) {
        char msg[16], back[16];
        int len = snprintf(msg, sizeof msg, "c%ld m%d", id, m);
        CHECK(goro_write(fd, msg, (size_t)len, GORO_FOREVER) == len);
        size_t got = 0;
        while (got < (size_t)len) {
            ssize_t n = goro_read(fd, back + got, (size_t)len - got, GORO_FOREVER);
            CHECKF(n > 0, "read: %s", goro_strerror((int)n));
            got += (size_t)n;
        }
        logf_("client %ld echo \"%.*s\"", id, len, back);
        goro_sleep(id * 300000);
    }
    goro_close(fd);
    goro_wg_done(&wg);
}

static void child_main(void *arg) {
    (void)arg;
    t0 = goro_now();
    CHECK(goro_maxprocs(4) == 1); /* refused: stays on one P */
    CHECK(goro_maxprocs(0) == 1);
    CHECK(goro_chan_make(&items, sizeof(long), 2) == 0);
    CHECK(goro_chan_make(&ticks, sizeof(int), 0) == 0);
    listen_fd = goro_tcp_listen("127.0.0.1:0", 16);
    CHECKF(listen_fd >= 0, "listen: %s", goro_strerror(listen_fd));
    goro_wg_add(&wg, WORKERS + 3 + CLIENTS);
    for (long i = 0; i < WORKERS; i++)
        CHECK(goro_spawn(worker, (void *)i) == 0);
    CHECK(goro_spawn(ticker, NULL) == 0);
    CHECK(goro_spawn(sleeper, NULL) == 0);
    CHECK(goro_spawn(server, NULL) == 0);
    for (long i = 0; i < CLIENTS; i++)
        CHECK(goro_spawn(client, (void *)i) == 0);
    /* The collector ends when items is closed, after the others: a wait group of its own. */
    goro_wg_add(&cwg, 1);
    CHECK(goro_spawn(collector, NULL) == 0);
    goro_wg_wait(&wg);
    CHECK(goro_chan_close(items) == 0);
    goro_wg_wait(&cwg);
    int64_t elapsed = goro_now() - t0;
    CHECKF(elapsed >= HOUR, "virtual time moved by %lld ns only", (long long)elapsed);
    logf_("done");
}

/* Runs the program and writes its log to stdout. */
static int child(void) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    CHECK(goro_run(NULL, child_main, NULL) == 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    /* An hour of sleep in virtual time: far less than a minute of real time even under
     * an emulator or a sanitizer. */
    CHECKF(secs < 60, "the run took %.1f s of real time", secs);
    size_t off = 0;
    while (off < loglen) {
        ssize_t n = write(1, logbuf + off, loglen - off);
        CHECK(n > 0);
        off += (size_t)n;
    }
    return 0;
}

/* ------------------------------------------------------------------ a deadlock */

static goro_chan *never;

static void stuck(void *arg) {
    (void)arg;
    goro_sleep(HOUR); /* virtual time jumps over it; then nothing can ever run */
    goro_chan_recv(never, NULL);
}

static void deadlock_main(void *arg) {
    (void)arg;
    CHECK(goro_chan_make(&never, sizeof(int), 0) == 0);
    CHECK(goro_spawn(stuck, NULL) == 0);
    goro_wg_add(&wg, 1);
    goro_wg_wait(&wg);
}

/* In a child: a deadlock is fatal as without the mode; schedtrace is refused. */
static void deadlock_child(void *arg) {
    (void)arg;
    setenv("GORO_DEBUG", "deterministic=7,schedtrace=10", 1);
    goro_run(NULL, deadlock_main, NULL);
}

static void check_deadlock(void) {
    tu_child c;
    char how[128];
    tu_run_child(deadlock_child, NULL, 60, &c);
    CHECKF(WIFSIGNALED(c.status) && WTERMSIG(c.status) == SIGABRT, "the child %s:\n%s",
           tu_child_how(&c, how, sizeof how), c.err);
    CHECKF(tu_has_line(c.err, "goro: fatal: all goroutines are asleep - deadlock!"), "stderr:\n%s",
           c.err);
    CHECKF(tu_has_line(c.err, "goro: GORO_DEBUG: schedtrace is off in deterministic mode "
                              "(ignored)"),
           "stderr:\n%s", c.err);
    free(c.err);
}

/* ------------------------------------------------------------------ the parent */

/* Runs the child with seed; returns its stdout (malloc'ed, *len bytes). */
static char *run_seed(long long seed, size_t *len) {
    int p[2];
    CHECK(pipe(p) == 0);
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        dup2(p[1], 1);
        close(p[1]);
        char env[64];
        snprintf(env, sizeof env, "deterministic=%lld", seed);
        setenv("GORO_DEBUG", env, 1);
        setenv("GORO_MAXPROCS", "4", 1); /* ignored: the mode runs one P */
        exit(child());                   /* exit, not _exit: LeakSanitizer checks the child too */
    }
    close(p[1]);
    size_t cap = 1 << 16, n = 0;
    char *out = malloc(cap);
    CHECK(out != NULL);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            out = realloc(out, cap);
            CHECK(out != NULL);
        }
        ssize_t r = read(p[0], out + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        CHECK(r >= 0);
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(p[0]);
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "seed %lld: child status 0x%x", seed, st);
    *len = n;
    return out;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "child") == 0)
        return child(); /* by hand: GORO_DEBUG=deterministic=N test_replay_deterministic child */
    check_deadlock();
    const long long seed = 20261207;
    size_t len0;
    char *first = run_seed(seed, &len0);
    /* Every goroutine logged all it had to. */
    int lines = 0;
    for (size_t i = 0; i < len0; i++)
        lines += first[i] == '\n';
    CHECKF(lines >= WORKERS * STEPS * 3 + CLIENTS * MSGS + CLIENTS + 2, "only %d lines", lines);
    for (int i = 1; i < 100; i++) {
        size_t len;
        char *out = run_seed(seed, &len);
        if (len != len0 || memcmp(out, first, len) != 0) {
            fprintf(stderr, "run 0:\n%.*s\nrun %d:\n%.*s\n", (int)len0, first, i, (int)len, out);
            CHECKF(0, "seed %lld: run %d differs from run 0", seed, i);
        }
        free(out);
    }
    /* Other seeds, other interleavings: count the outputs unlike the first. */
    int differ = 0;
    for (long long s = 1; s <= 10; s++) {
        size_t len;
        char *out = run_seed(s, &len);
        differ += len != len0 || memcmp(out, first, len) != 0;
        free(out);
    }
    CHECKF(differ >= 5, "only %d of 10 other seeds changed the output", differ);
    printf("100 runs of seed %lld identical (%zu bytes, %d lines); %d of 10 other seeds "
           "differ\n",
           seed, len0, lines, differ);
    free(first);
    return 0;
}
