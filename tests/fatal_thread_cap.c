/*
 * fatal_thread_cap: needing more OS threads than goro_config.max_threads is fatal.
 *
 * A child process runs goro_run with maxprocs 2 and max_threads 1, and spawns CPU-bound
 * goroutines: the idle second P needs a second thread, which the cap forbids. The parent
 * checks that the child died of SIGABRT with a line starting "goro: fatal: " that mentions
 * the "thread limit".
 */
#include "testutil.h"

#define BURN_NS (3000 * TU_MS)

static volatile uint64_t sink;
static goro_waitgroup burners = GORO_WAITGROUP_INIT;

static void burn(void *arg) {
    (void)arg;
    int64_t t0 = goro_now();
    uint64_t x = 1;
    while (goro_now() - t0 < BURN_NS) {
        for (int k = 0; k < 1000; k++)
            x = x * 6364136223846793005ull + 1;
    }
    sink = x;
    goro_wg_done(&burners);
}

static void child_main(void *arg) {
    (void)arg;
    goro_wg_add(&burners, 4);
    for (int i = 0; i < 4; i++)
        CHECK(goro_spawn(burn, NULL) == 0);
    /* Park main so that its thread runs the burners; the other P needs a thread. If the
     * runtime never asks for one, the burners end and so does goro_run, and the parent
     * reports that. */
    goro_wg_wait(&burners);
}

static void child(void *arg) {
    (void)arg;
    goro_config cfg = {.maxprocs = 2, .max_threads = 1};
    int rc = goro_run(&cfg, child_main, NULL);
    fprintf(stderr, "child: goro_run returned %d (%s)\n", rc, goro_strerror(rc));
}

int main(void) {
    tu_child c;
    tu_run_child(child, NULL, 60, &c);
    tu_show_child("maxprocs 2, max_threads 1, CPU-bound work", &c, 4000);
    char how[128];
    CHECKF(WIFSIGNALED(c.status) && WTERMSIG(c.status) == SIGABRT,
           "the child should die of SIGABRT; instead it %s", tu_child_how(&c, how, sizeof how));
    CHECKF(tu_has_line_with(c.err, "goro: fatal: ", "thread limit"),
           "no line starting \"goro: fatal: \" and mentioning \"thread limit\"");
    free(c.err);
    return tu_pass("fatal_thread_cap");
}
