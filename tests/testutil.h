/*
 * testutil.h - the small helpers every goro test program shares.
 *
 * Each test is a standalone program: main() runs the test inside goro_run, checks the
 * results and exits 0 on success. A failing CHECK prints file:line and the expression and
 * abort()s, which fails the whole process even when the CHECK is inside a goroutine on
 * another thread.
 *
 * GORO_TEST_SCALE (default 1.0) scales the big counts down for slow runs (sanitizers,
 * valgrind, qemu): tu_scaled(1000000, 1000) is 100000 under GORO_TEST_SCALE=0.1.
 *
 * Fatal paths are tested in a child process (tu_run_child): the parent captures the
 * child's stderr through a pipe and inspects how it died.
 */
#ifndef GORO_TESTUTIL_H
#define GORO_TESTUTIL_H

/* Included first by every test, so that this reaches every system header. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "goro.h"

/* ------------------------------------------------------------------ checks */

static inline void tu_fail(const char *file, int line, const char *expr, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 4, 5)));

static inline void tu_fail(const char *file, int line, const char *expr, const char *fmt, ...) {
    fprintf(stderr, "%s:%d: CHECK failed: %s", file, line, expr);
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        fputs(": ", stderr);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
    }
    fputc('\n', stderr);
    fflush(stderr);
    abort();
}

/* CHECK(expr): expr must hold, else the process aborts with file:line and expr. */
#define CHECK(expr)                                                                                \
    do {                                                                                           \
        if (!(expr))                                                                               \
            tu_fail(__FILE__, __LINE__, #expr, NULL);                                              \
    } while (0)

/* CHECKF(expr, fmt, ...): the same, with a printf-style explanation of the values. */
#define CHECKF(expr, ...)                                                                          \
    do {                                                                                           \
        if (!(expr))                                                                               \
            tu_fail(__FILE__, __LINE__, #expr, __VA_ARGS__);                                       \
    } while (0)

/* Integer equality that prints both sides. */
#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long tu_a_ = (long long)(a), tu_b_ = (long long)(b);                                  \
        if (tu_a_ != tu_b_)                                                                        \
            tu_fail(__FILE__, __LINE__, #a " == " #b, "%lld != %lld", tu_a_, tu_b_);               \
    } while (0)

/* ------------------------------------------------------------------ sanitizers */

#if defined(__SANITIZE_ADDRESS__)
#define TU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TU_ASAN 1
#endif
#endif
#ifndef TU_ASAN
#define TU_ASAN 0
#endif

#if defined(__SANITIZE_THREAD__)
#define TU_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TU_TSAN 1
#endif
#endif
#ifndef TU_TSAN
#define TU_TSAN 0
#endif

/* ------------------------------------------------------------------ scale */

/* GORO_TEST_SCALE, or 1.0 when unset or unreadable. */
static inline double tu_scale(void) {
    const char *s = getenv("GORO_TEST_SCALE");
    if (s == NULL || *s == '\0')
        return 1.0;
    char *end;
    double v = strtod(s, &end);
    if (end == s || !(v > 0.0) || v > 1000.0) {
        fprintf(stderr, "testutil: ignoring bad GORO_TEST_SCALE=%s\n", s);
        return 1.0;
    }
    return v;
}

/* n scaled by GORO_TEST_SCALE, never below min. */
static inline long tu_scaled(long n, long min) {
    long v = (long)((double)n * tu_scale());
    return v < min ? min : v;
}

/* ------------------------------------------------------------------ misc */

static inline pid_t tu_gettid(void) {
    return (pid_t)syscall(SYS_gettid);
}

/* A small deterministic generator (xorshift64*), one state per goroutine. */
static inline uint64_t tu_rand(uint64_t *state) {
    uint64_t x = *state;
    if (x == 0)
        x = 0x9e3779b97f4a7c15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545f4914f6cdd1dull;
}

#define TU_MS ((int64_t)1000000)
#define TU_US ((int64_t)1000)

/* Prints the test's verdict line; call last in main(). */
static inline int tu_pass(const char *name) {
    printf("PASS %s\n", name);
    fflush(stdout);
    return 0;
}

/* ------------------------------------------------------------------ child processes */

typedef struct tu_child {
    int status; /* from waitpid */
    char *err;  /* everything the child wrote to stderr, NUL-terminated */
    size_t len;
} tu_child;

/* The exit code of a child whose fn returned instead of dying. */
#define TU_CHILD_RETURNED 42

/*
 * Runs fn(arg) in a forked child whose stderr goes into out->err, and waits for it.
 * Call before any goro_run in this process. The child has no core dumps and is killed by
 * SIGALRM if it is still alive after timeout_s seconds.
 */
static inline void tu_run_child(void (*fn)(void *), void *arg, unsigned timeout_s, tu_child *out) {
    int p[2];
    CHECK(pipe(p) == 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        struct rlimit nocore = {0, 0};
        setrlimit(RLIMIT_CORE, &nocore);
        close(p[0]);
        if (dup2(p[1], 2) < 0)
            _exit(127);
        close(p[1]);
        alarm(timeout_s);
        fn(arg);
        fflush(stderr);
        _exit(TU_CHILD_RETURNED);
    }
    close(p[1]);
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    CHECK(buf != NULL);
    for (;;) {
        if (cap - len < 1024) {
            cap *= 2;
            buf = realloc(buf, cap);
            CHECK(buf != NULL);
        }
        ssize_t n = read(p[0], buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        CHECK(n >= 0);
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    close(p[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0)
        CHECK(errno == EINTR);
    out->status = st;
    out->err = buf;
    out->len = len;
}

/* Describes how a child ended, for failure messages. */
static inline const char *tu_child_how(const tu_child *c, char *buf, size_t n) {
    if (WIFSIGNALED(c->status))
        snprintf(buf, n, "was killed by signal %d (%s)", WTERMSIG(c->status),
                 strsignal(WTERMSIG(c->status)));
    else if (WIFEXITED(c->status))
        snprintf(buf, n, "exited with status %d", WEXITSTATUS(c->status));
    else
        snprintf(buf, n, "ended with wait status 0x%x", c->status);
    return buf;
}

/* goro_dump_ex(flags) into a memory file, returned as a string (free it). */
static inline char *tu_dump_string(int flags) {
    int fd = memfd_create("dump", 0);
    CHECK(fd >= 0);
    int err = goro_dump_ex(fd, flags);
    CHECKF(err == 0, "goro_dump_ex(%d): %s", flags, goro_strerror(err));
    off_t len = lseek(fd, 0, SEEK_END);
    CHECK(len > 0);
    char *s = malloc((size_t)len + 1);
    CHECK(s != NULL);
    CHECK(pread(fd, s, (size_t)len, 0) == len);
    s[len] = '\0';
    close(fd);
    return s;
}

/* True if some line of text equals line exactly. */
static inline int tu_has_line(const char *text, const char *line) {
    size_t n = strlen(line);
    for (const char *p = text; p != NULL && *p != '\0';) {
        const char *nl = strchr(p, '\n');
        size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
        if (len == n && memcmp(p, line, n) == 0)
            return 1;
        p = nl != NULL ? nl + 1 : NULL;
    }
    return 0;
}

/* True if some line of text starts with prefix and contains sub after it. */
static inline int tu_has_line_with(const char *text, const char *prefix, const char *sub) {
    size_t np = strlen(prefix), ns = strlen(sub);
    for (const char *p = text; p != NULL && *p != '\0';) {
        const char *nl = strchr(p, '\n');
        size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
        if (len >= np && memcmp(p, prefix, np) == 0) {
            for (size_t i = np; i + ns <= len; i++)
                if (memcmp(p + i, sub, ns) == 0)
                    return 1;
        }
        p = nl != NULL ? nl + 1 : NULL;
    }
    return 0;
}

/* Prints the child's stderr for the log (trimmed to the first limit bytes). */
static inline void tu_show_child(const char *what, const tu_child *c, size_t limit) {
    char how[128];
    fprintf(stderr, "--- %s: child %s; its stderr (%zu bytes)%s:\n", what,
            tu_child_how(c, how, sizeof how), c->len, c->len > limit ? ", first part" : "");
    fwrite(c->err, 1, c->len > limit ? limit : c->len, stderr);
    fprintf(stderr, "\n--- end of child stderr\n");
}

#endif
