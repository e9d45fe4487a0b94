/*
 * net_backend.c - GORO_NETPOLL picks the netpoller's backend, and io_uring falls back to
 * epoll where it cannot be set up: silently when GORO_NETPOLL is unset, with one warning
 * line when io_uring was asked for by name.
 *
 * Each case runs goro_run in a child process with the environment set, registers a pipe
 * with the netpoller (the poller starts on first use) and reports goro_stats'
 * netpoll_backend and netpoll_fallback; the parent checks those and the child's stderr.
 * The unavailable case is made with a seccomp filter that fails io_uring_setup with EPERM
 * (what Docker's default profile and kernel.io_uring_disabled do).
 *
 * Where io_uring is not there at all (qemu-user, an old kernel), io_uring's cases must
 * show the fall-back instead; GORO_TEST_NETPOLL_STRICT=1 (native builds, CMake option
 * GORO_TEST_REQUIRE_IO_URING) makes that a failure.
 */
#include "testutil.h"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>

#include "internal.h" /* GORO__NETPOLL_DEFAULT */

typedef struct scenario {
    const char *env; /* GORO_NETPOLL, NULL: unset */
    bool deny_uring; /* io_uring_setup fails with EPERM (seccomp) */
} scenario;

static void child_main(void *arg) {
    (void)arg;
    int p[2];
    CHECK(pipe(p) == 0);
    /* Registers p[0] with the netpoller: deadline 0, nothing written. */
    CHECK_EQ(goro_fd_wait(p[0], GORO_READABLE, 0), GORO_EAGAIN);
    goro_stats st;
    goro_stats_get(&st);
    fprintf(stderr, "RESULT backend=%d fallback=%d\n", (int)st.netpoll_backend,
            (int)st.netpoll_fallback);
    goro_close(p[0]);
    goro_close(p[1]);
}

/* Fails io_uring_setup with EPERM in this process. */
static int deny_io_uring(void) {
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -errno;
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0)
        return -errno;
    return 0;
}

static void child(void *arg) {
    const scenario *sc = arg;
    if (sc->env)
        setenv("GORO_NETPOLL", sc->env, 1);
    else
        unsetenv("GORO_NETPOLL");
    if (sc->deny_uring) {
        int e = deny_io_uring();
        if (e) {
            fprintf(stderr, "NOSECCOMP %s\n", strerror(-e));
            _exit(0);
        }
    }
    CHECK_EQ(goro_run(NULL, child_main, NULL), 0);
}

typedef struct outcome {
    int backend, fallback;
    char warnings[512]; /* the child's "goro: ..." lines */
    int nwarnings;
    bool no_seccomp;
} outcome;

static outcome run(const scenario *sc, const char *what) {
    tu_child c;
    tu_run_child(child, (void *)sc, 30, &c);
    outcome o = {.backend = -1, .fallback = 1};
    if (strncmp(c.err, "NOSECCOMP ", 10) == 0) {
        printf("SKIP %s: cannot install a seccomp filter here: %s", what, c.err + 10);
        o.no_seccomp = true;
        free(c.err);
        return o;
    }
    if (!WIFEXITED(c.status) || WEXITSTATUS(c.status) != TU_CHILD_RETURNED)
        tu_show_child(what, &c, 4000);
    CHECKF(WIFEXITED(c.status) && WEXITSTATUS(c.status) == TU_CHILD_RETURNED, "%s", what);
    for (const char *l = c.err; l && *l;) {
        const char *nl = strchr(l, '\n');
        size_t len = nl ? (size_t)(nl - l) : strlen(l);
        if (len > 6 && strncmp(l, "goro: ", 6) == 0) {
            size_t used = strlen(o.warnings);
            snprintf(o.warnings + used, sizeof o.warnings - used, "%.*s\n", (int)len, l);
            o.nwarnings++;
        }
        sscanf(l, "RESULT backend=%d fallback=%d", &o.backend, &o.fallback);
        l = nl ? nl + 1 : NULL;
    }
    CHECKF(o.backend >= 0, "%s: no RESULT line in the child's stderr: %s", what, c.err);
    free(c.err);
    printf("%-44s backend %d, fallback %d (%s), %d warning(s)\n", what, o.backend, o.fallback,
           goro_strerror(o.fallback), o.nwarnings);
    return o;
}

static bool strict(void) {
    const char *s = getenv("GORO_TEST_NETPOLL_STRICT");
    return s && strcmp(s, "1") == 0;
}

/* io_uring asked for (by name or as the default) on this machine: used, or, outside
 * strict builds, a fall-back with its reason. */
static void check_uring(const outcome *o, const char *what) {
    if (o->backend == GORO_NETPOLL_IO_URING) {
        CHECK_EQ(o->fallback, 0);
        return;
    }
    CHECKF(o->backend == GORO_NETPOLL_EPOLL && o->fallback < 0, "%s: backend %d fallback %d", what,
           o->backend, o->fallback);
    CHECKF(!strict(),
           "%s: io_uring is required in this build but unavailable (%s); on a machine that "
           "disables io_uring, configure with -DGORO_TEST_REQUIRE_IO_URING=OFF",
           what, goro_strerror(o->fallback));
    printf("  io_uring unavailable here (%s): fell back to epoll\n", goro_strerror(o->fallback));
}

int main(void) {
    const scenario s_epoll = {"epoll", false}, s_uring = {"io_uring", false},
                   s_unset = {NULL, false}, s_bogus = {"kqueue", false},
                   s_uring_denied = {"io_uring", true}, s_unset_denied = {NULL, true},
                   s_epoll_denied = {"epoll", true};

    outcome o = run(&s_epoll, "GORO_NETPOLL=epoll");
    CHECK_EQ(o.backend, GORO_NETPOLL_EPOLL);
    CHECK_EQ(o.fallback, 0);
    CHECKF(o.nwarnings == 0, "unexpected: %s", o.warnings);

    o = run(&s_uring, "GORO_NETPOLL=io_uring");
    check_uring(&o, "GORO_NETPOLL=io_uring");
    /* A fall-back asked for by name says so, on one line. */
    CHECK_EQ(o.nwarnings, o.backend == GORO_NETPOLL_EPOLL ? 1 : 0);
    if (o.nwarnings)
        CHECKF(strstr(o.warnings, "goro: GORO_NETPOLL=io_uring: io_uring unavailable (") ==
                   o.warnings,
               "got: %s", o.warnings);

    o = run(&s_unset, "GORO_NETPOLL unset");
    CHECKF(o.nwarnings == 0, "unset, no warning expected: %s", o.warnings);
    if (GORO__NETPOLL_DEFAULT == GORO_NETPOLL_IO_URING)
        check_uring(&o, "GORO_NETPOLL unset");
    else
        CHECK_EQ(o.backend, GORO_NETPOLL_EPOLL);

    /* A value that names no backend: a warning, and the default. */
    o = run(&s_bogus, "GORO_NETPOLL=kqueue");
    CHECKF(o.nwarnings >= 1 && strstr(o.warnings, "goro: ignoring GORO_NETPOLL=kqueue (want "
                                                  "epoll or io_uring)\n") == o.warnings,
           "got: %s", o.warnings);
    CHECK(o.backend == GORO_NETPOLL_EPOLL || o.backend == GORO_NETPOLL_IO_URING);

    /* io_uring refused by the kernel (EPERM): unset falls back in silence... */
    o = run(&s_unset_denied, "GORO_NETPOLL unset, io_uring_setup denied");
    if (!o.no_seccomp) {
        CHECK_EQ(o.backend, GORO_NETPOLL_EPOLL);
        if (GORO__NETPOLL_DEFAULT == GORO_NETPOLL_IO_URING)
            CHECKF(o.fallback == -EPERM || (!strict() && o.fallback < 0), "fallback %d",
                   o.fallback);
        else
            CHECK_EQ(o.fallback, 0); /* the default never tried io_uring */
        CHECKF(o.nwarnings == 0, "unset, no warning expected: %s", o.warnings);
    }
    /* ...asked for by name, with one line that says why... */
    o = run(&s_uring_denied, "GORO_NETPOLL=io_uring, io_uring_setup denied");
    if (!o.no_seccomp) {
        CHECK_EQ(o.backend, GORO_NETPOLL_EPOLL);
        CHECK(o.fallback < 0);
        CHECKF(o.nwarnings == 1, "one warning expected: %s", o.warnings);
        if (o.fallback == -EPERM)
            CHECKF(strcmp(o.warnings, "goro: GORO_NETPOLL=io_uring: io_uring unavailable "
                                      "(Operation not permitted); using epoll\n") == 0,
                   "got: %s", o.warnings);
    }
    /* ...and epoll by name never tries it. */
    o = run(&s_epoll_denied, "GORO_NETPOLL=epoll, io_uring_setup denied");
    if (!o.no_seccomp) {
        CHECK_EQ(o.backend, GORO_NETPOLL_EPOLL);
        CHECK_EQ(o.fallback, 0);
        CHECKF(o.nwarnings == 0, "unexpected: %s", o.warnings);
    }
    return tu_pass("net_backend");
}
