/*
 * mem_compact_misuse.c - in a debug build, touching the stack of a compacted goroutine is
 * fatal with a message naming both goroutines, never a silent read of zeros.
 *
 * A child process runs a goroutine that publishes the address of one of its locals and
 * parks on a channel; once the monitor has compacted it, main reads the local through the
 * pointer. The child must die with
 *   goro: fatal: goroutine 1 touched the stack of goroutine N, which is parked and compacted
 * Registered for debug (sanitizer) builds only: release builds drop the pages instead of
 * guarding them (src/compact.c, K2). Needs MADV_GUARD_INSTALL (Linux 6.13): on an older
 * kernel the test exits 77, which CTest reports as skipped, after saying why.
 */
#include "testutil.h"

#include <sys/mman.h>

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

static goro_chan *park_here;
static volatile uint64_t *published;

static void victim(void *arg) {
    (void)arg;
    volatile uint64_t local = 42;
    /* Release: main reads the local through the pointer (the race build checks). */
    __atomic_store_n(&published, &local, __ATOMIC_RELEASE);
    uint64_t v;
    goro_chan_recv(park_here, &v); /* never returns: main dies first */
    CHECK(local == 42);
}

static void child_main(void *arg) {
    (void)arg;
    CHECK_EQ(goro_chan_make(&park_here, sizeof(uint64_t), 0), 0);
    CHECK_EQ(goro_spawn(victim, NULL), 0);
    goro_stats st;
    int64_t deadline = goro_now() + 10000 * TU_MS;
    do {
        goro_sleep(2 * TU_MS);
        goro_stats_get(&st);
    } while (st.compacted < 1 && goro_now() < deadline);
    CHECK_EQ(st.compacted, 1);
    volatile uint64_t *p = __atomic_load_n(&published, __ATOMIC_ACQUIRE);
    fprintf(stderr, "read %llu\n", (unsigned long long)*p); /* must fault */
}

static void child(void *arg) {
    (void)arg;
    goro_config cfg = {.compact_after = 1000000};
    goro_run(&cfg, child_main, NULL);
}

static int guards_work(void) {
    long page = sysconf(_SC_PAGESIZE);
    char *p = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    int ok = madvise(p, (size_t)page, MADV_GUARD_INSTALL) == 0;
    munmap(p, (size_t)page);
    return ok;
}

int main(void) {
    if (!guards_work()) {
        printf("SKIP mem_compact_misuse: the kernel has no MADV_GUARD_INSTALL (Linux 6.13), "
               "so a debug build cannot guard compacted stacks\n");
        return 77;
    }
    tu_child c;
    tu_run_child(child, NULL, 30, &c);
    /* main is goroutine 1; the victim, its first spawn, is 2. */
    const char *want = "goro: fatal: goroutine 1 touched the stack of goroutine 2, which is "
                       "parked and compacted (a pointer into a parked goroutine's stack)";
    if (!WIFSIGNALED(c.status) || WTERMSIG(c.status) != SIGABRT || !tu_has_line(c.err, want)) {
        tu_show_child("misuse", &c, 4000);
        CHECKF(0, "want the line: %s", want);
    }
    CHECK(strstr(c.err, "read 0") == NULL);
    free(c.err);
    return tu_pass("mem_compact_misuse");
}
