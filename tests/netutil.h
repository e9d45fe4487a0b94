/*
 * netutil.h - helpers shared by the network, blocking-call and monitor tests (net_*.c,
 * sys_*.c, sched_hog.c), on top of testutil.h.
 *
 *  - nu_slow(): how much slower than native this build runs, the factor goro_add_test puts
 *    on the timeouts; latency bounds are multiplied by it.
 *  - A watchdog thread (a plain pthread, not a goroutine) that turns a hang into a message,
 *    a goroutine dump (SIGQUIT) and an abort, well before CTest's timeout would kill the
 *    test without saying where it stood.
 *  - Byte streams that can be checked at any offset (nu_fill / nu_check), a checksum.
 *  - nu_read_full / nu_write_all on top of goro_read / goro_write.
 *  - nu_wait_netpoll: wait until n goroutines are parked on the netpoller, so a test acts
 *    on a goroutine that is really parked and not merely about to park.
 *  - nu_check_netpoll: the run used the netpoller backend the test was registered for.
 */
#ifndef GORO_NETUTIL_H
#define GORO_NETUTIL_H

#include "testutil.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

/* ------------------------------------------------------------------ build speed */

/* 3 for TSan and for slow runs (GORO_TEST_SCALE below 1: emulation, Valgrind), 2 for
 * ASan, else 1: the same factors goro_add_test applies to the CTest timeouts. */
static inline int nu_slow(void) {
    if (TU_TSAN || tu_scale() < 1.0)
        return 3;
    if (TU_ASAN)
        return 2;
    return 1;
}

#define NU_SEC ((int64_t)1000000000)

/* CLOCK_MONOTONIC, to check goro_now against. */
static inline int64_t nu_mono(void) {
    struct timespec ts;
    CHECK(clock_gettime(CLOCK_MONOTONIC, &ts) == 0);
    return (int64_t)ts.tv_sec * NU_SEC + ts.tv_nsec;
}

/* CPU time of the whole process, every thread included. */
static inline int64_t nu_process_cpu(void) {
    struct timespec ts;
    CHECK(clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) == 0);
    return (int64_t)ts.tv_sec * NU_SEC + ts.tv_nsec;
}

/* ------------------------------------------------------------------ watchdog */

static pthread_mutex_t nu_wd_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t nu_wd_cond;
static int nu_wd_stop;
static unsigned nu_wd_seconds;
static const char *nu_wd_what;
static pthread_t nu_wd_thread;

static void *nu_watchdog_run(void *arg) {
    (void)arg;
    struct timespec until;
    CHECK(clock_gettime(CLOCK_MONOTONIC, &until) == 0);
    until.tv_sec += nu_wd_seconds;
    pthread_mutex_lock(&nu_wd_lock);
    while (!nu_wd_stop) {
        if (pthread_cond_timedwait(&nu_wd_cond, &nu_wd_lock, &until) == ETIMEDOUT && !nu_wd_stop) {
            fprintf(stderr,
                    "watchdog: %s has not finished after %u s: a lost wakeup or a thread "
                    "that is never released; goroutine dump follows (SIGQUIT)\n",
                    nu_wd_what, nu_wd_seconds);
            fflush(stderr);
            kill(getpid(), SIGQUIT);
            struct timespec pause = {0, 500 * 1000 * 1000};
            nanosleep(&pause, NULL);
            abort();
        }
    }
    pthread_mutex_unlock(&nu_wd_lock);
    return NULL;
}

/* Aborts the process with a dump unless nu_watchdog_stop is called within seconds times
 * nu_slow(). Call from main() before goro_run. */
static inline void nu_watchdog_start(const char *what, unsigned seconds) {
    pthread_condattr_t ca;
    CHECK(pthread_condattr_init(&ca) == 0);
    CHECK(pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0);
    CHECK(pthread_cond_init(&nu_wd_cond, &ca) == 0);
    pthread_condattr_destroy(&ca);
    nu_wd_stop = 0;
    nu_wd_seconds = seconds * (unsigned)nu_slow();
    nu_wd_what = what;
    CHECK(pthread_create(&nu_wd_thread, NULL, nu_watchdog_run, NULL) == 0);
}

static inline void nu_watchdog_stop(void) {
    pthread_mutex_lock(&nu_wd_lock);
    nu_wd_stop = 1;
    pthread_cond_signal(&nu_wd_cond);
    pthread_mutex_unlock(&nu_wd_lock);
    CHECK(pthread_join(nu_wd_thread, NULL) == 0);
    pthread_cond_destroy(&nu_wd_cond);
}

/* ------------------------------------------------------------------ byte streams */

static inline uint64_t nu_mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Byte number off of the stream named seed. */
static inline unsigned char nu_byte(uint64_t seed, uint64_t off) {
    return (unsigned char)(nu_mix(seed * 0x100000001b3ull ^ (off >> 3)) >> ((off & 7) * 8));
}

/* buf[0..n) = bytes off.. of stream seed. */
static inline void nu_fill(void *buf, size_t n, uint64_t seed, uint64_t off) {
    unsigned char *p = buf;
    for (size_t i = 0; i < n; i++)
        p[i] = nu_byte(seed, off + i);
}

/* The index of the first byte of buf[0..n) that differs from stream seed at off, or -1. */
static inline long nu_check(const void *buf, size_t n, uint64_t seed, uint64_t off) {
    const unsigned char *p = buf;
    for (size_t i = 0; i < n; i++)
        if (p[i] != nu_byte(seed, off + i))
            return (long)i;
    return -1;
}

/* FNV-1a, continued from h (start with NU_FNV_INIT). */
#define NU_FNV_INIT 0xcbf29ce484222325ull
static inline uint64_t nu_fnv(uint64_t h, const void *buf, size_t n) {
    const unsigned char *p = buf;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* ------------------------------------------------------------------ I/O */

/* Reads exactly n bytes: returns n, the bytes read before EOF (< n), or an error code. */
static inline ssize_t nu_read_full(int fd, void *buf, size_t n, int64_t deadline) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = goro_read(fd, (char *)buf + got, n - got, deadline);
        if (r < 0)
            return r;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* "127.0.0.1:<port>" or "[::1]:<port>" into buf. */
static inline const char *nu_addr(char *buf, size_t n, const char *host, int port) {
    snprintf(buf, n, "%s:%d", host, port);
    return buf;
}

/* Waits until at least n goroutines are parked on the netpoller (goro_stats
 * netpoll_waiting), polling every 100 us for at most timeout_s * nu_slow() seconds;
 * failing that, the test fails saying what it waited for. */
#define nu_wait_netpoll(n, timeout_s, what)                                                        \
    nu_wait_netpoll_at(__FILE__, __LINE__, (n), (timeout_s), (what))
static inline void nu_wait_netpoll_at(const char *file, int line, int64_t n, int timeout_s,
                                      const char *what) {
    int64_t deadline = goro_now() + (int64_t)timeout_s * nu_slow() * NU_SEC;
    goro_stats st;
    for (;;) {
        goro_stats_get(&st);
        if (st.netpoll_waiting >= n)
            return;
        if (goro_now() > deadline)
            tu_fail(file, line, "netpoll_waiting >= n",
                    "%s: goro_stats netpoll_waiting is %lld after %d s, expected >= %lld", what,
                    (long long)st.netpoll_waiting, timeout_s * nu_slow(), (long long)n);
        goro_sleep(100 * TU_US);
    }
}

/* For the tests registered for both netpoller backends (goro_add_test NETPOLL_BOTH): the
 * run used the backend GORO_TEST_NETPOLL names (epoll or io_uring; GORO_NETPOLL asked the
 * runtime for it). io_uring may fall back to epoll only where GORO_TEST_NETPOLL_STRICT is
 * not 1 (emulated builds, Valgrind, a build configured with GORO_TEST_REQUIRE_IO_URING=OFF
 * for a machine that disables io_uring): then it prints why. Call from a goroutine, after
 * the test's I/O. */
static inline void nu_check_netpoll(const char *test) {
    goro_stats st;
    goro_stats_get(&st);
    CHECKF(st.netpoll_backend != GORO_NETPOLL_NONE, "%s: nothing used the netpoller", test);
    const char *want = getenv("GORO_TEST_NETPOLL");
    if (want == NULL || *want == '\0')
        return;
    int w = strcmp(want, "io_uring") == 0 ? GORO_NETPOLL_IO_URING : GORO_NETPOLL_EPOLL;
    CHECKF(strcmp(want, "io_uring") == 0 || strcmp(want, "epoll") == 0,
           "GORO_TEST_NETPOLL=%s: want epoll or io_uring", want);
    if (st.netpoll_backend == w) {
        CHECK_EQ(st.netpoll_fallback, 0);
        printf("%s: netpoll backend %s\n", test, want);
        return;
    }
    CHECKF(w == GORO_NETPOLL_IO_URING && st.netpoll_backend == GORO_NETPOLL_EPOLL &&
               st.netpoll_fallback < 0,
           "%s: GORO_TEST_NETPOLL=%s but the netpoller ran backend %d (fallback %d)", test, want,
           (int)st.netpoll_backend, (int)st.netpoll_fallback);
    const char *strict = getenv("GORO_TEST_NETPOLL_STRICT");
    CHECKF(strict == NULL || strcmp(strict, "1") != 0,
           "%s: io_uring is required in this build but unavailable (%s), epoll ran instead; "
           "on a machine that disables io_uring, configure with -DGORO_TEST_REQUIRE_IO_URING=OFF",
           test, goro_strerror(st.netpoll_fallback));
    printf("%s: io_uring unavailable here (%s): this run used epoll\n", test,
           goro_strerror(st.netpoll_fallback));
}

/* Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit. */
static inline long nu_raise_nofile(void) {
    struct rlimit rl;
    CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        CHECKF(setrlimit(RLIMIT_NOFILE, &rl) == 0, "setrlimit(RLIMIT_NOFILE, %llu): %s",
               (unsigned long long)rl.rlim_max, strerror(errno));
    }
    return rl.rlim_cur == RLIM_INFINITY ? 1L << 30 : (long)rl.rlim_cur;
}

/* Whether fd has O_NONBLOCK set. */
static inline int nu_nonblocking(int fd) {
    int fl = fcntl(fd, F_GETFL);
    CHECKF(fl >= 0, "fcntl(%d, F_GETFL): %s", fd, strerror(errno));
    return (fl & O_NONBLOCK) != 0;
}

#endif
