/*
 * fatal_stack_overflow: a goroutine that overflows its stack makes the runtime print
 *     goro: fatal: goroutine N stack overflow (stack size S)
 * (N the goroutine's id, S its stack size) and a goroutine dump, then abort.
 *
 * Each case runs in a child process that recurses deeply in one goroutine; the parent
 * checks that the child died of SIGABRT and that its stderr has exactly that line.
 * Case 1: goro_spawn_attr with a 64 KiB stack. Case 2: the default stack size set through
 * goro_config.stack_size (32 KiB), with plain goro_spawn, several goroutines later.
 *
 * Under AddressSanitizer the overflow may be caught by ASan itself (its own SIGSEGV
 * handler reports stack-overflow); if the goro message is missing there, an abnormal death
 * with an ASan report is accepted.
 */
#include "testutil.h"

typedef struct scenario {
    const char *what;
    size_t cfg_stack;   /* goro_config.stack_size */
    size_t attr_stack;  /* 0: plain goro_spawn */
    size_t expect_size; /* S in the message */
    int skip_ids;       /* goroutines spawned first, so that N is not just 2 */
} scenario;

static volatile int depth_limit = 1 << 30;
static volatile int sink;

static int recurse(int depth) {
    volatile char pad[256];
    pad[0] = (char)depth;
    pad[255] = (char)(depth >> 8);
    if (depth >= depth_limit)
        return pad[0];
    return recurse(depth + 1) + pad[0] + pad[255];
}

static void overflower(void *arg) {
    (void)arg;
    fprintf(stderr, "child: overflowing goroutine id=%llu\n", (unsigned long long)goro_self());
    fflush(stderr);
    sink = recurse(0);
    fprintf(stderr, "child: recursion returned\n");
}

static void nothing(void *arg) {
    (void)arg;
}

static void child_main(void *arg) {
    const scenario *sc = arg;
    for (int i = 0; i < sc->skip_ids; i++)
        CHECK(goro_spawn(nothing, NULL) == 0);
    int rc;
    if (sc->attr_stack != 0) {
        goro_attr attr = {.stack_size = sc->attr_stack, .name = "overflower"};
        rc = goro_spawn_attr(&attr, overflower, NULL);
    } else {
        rc = goro_spawn(overflower, NULL);
    }
    CHECKF(rc == 0, "spawn: %s", goro_strerror(rc));
    goro_waitgroup forever = GORO_WAITGROUP_INIT;
    goro_wg_add(&forever, 1);
    goro_wg_wait(&forever);
}

static void child(void *arg) {
    const scenario *sc = arg;
    goro_config cfg = {.stack_size = sc->cfg_stack};
    int rc = goro_run(&cfg, child_main, arg);
    fprintf(stderr, "child: goro_run returned %d (%s)\n", rc, goro_strerror(rc));
}

static void run_case(const scenario *sc) {
    tu_child c;
    tu_run_child(child, (void *)sc, 60, &c);
    tu_show_child(sc->what, &c, 4000);

    const char *idline = strstr(c.err, "child: overflowing goroutine id=");
    if (TU_ASAN && strstr(c.err, "stack overflow (stack size") == NULL) {
        /* ASan's SIGSEGV handler got there first. */
        printf("%s: built with AddressSanitizer, which caught the overflow itself; checking "
               "only that the child died abnormally with an ASan report\n",
               sc->what);
        CHECKF(!(WIFEXITED(c.status) &&
                 (WEXITSTATUS(c.status) == 0 || WEXITSTATUS(c.status) == TU_CHILD_RETURNED)),
               "%s: the child survived its stack overflow", sc->what);
        CHECKF(strstr(c.err, "AddressSanitizer") != NULL,
               "%s: the child died without the goro message or an ASan report", sc->what);
        free(c.err);
        return;
    }

    CHECKF(idline != NULL, "%s: the overflowing goroutine never started", sc->what);
    unsigned long long id = strtoull(idline + strlen("child: overflowing goroutine id="), NULL, 10);
    CHECKF(id >= 2, "%s: the overflowing goroutine has id %llu", sc->what, id);
    char expect[128];
    snprintf(expect, sizeof expect, "goro: fatal: goroutine %llu stack overflow (stack size %zu)",
             id, sc->expect_size);
    char how[128];
    CHECKF(WIFSIGNALED(c.status) && WTERMSIG(c.status) == SIGABRT,
           "%s: the child should die of SIGABRT; instead it %s", sc->what,
           tu_child_how(&c, how, sizeof how));
    CHECKF(tu_has_line(c.err, expect), "%s: no line \"%s\" in the child's stderr", sc->what,
           expect);
    printf("%s: ok, child printed \"%s\" and aborted\n", sc->what, expect);
    free(c.err);
}

int main(void) {
    static const scenario cases[] = {
        {"64 KiB stack from goro_attr", 0, 65536, 65536, 0},
        {"32 KiB default stack from goro_config", 32768, 0, 32768, 5},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case(&cases[i]);
    return tu_pass("fatal_stack_overflow");
}
