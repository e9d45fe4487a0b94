/*
 * mem_compact_misuse.c - touching the stack of a compacted goroutine from another one is
 * never a silent read of zeros: the stack is restored through the fault and the read
 * sees the value, or, where faults cannot restore, a debug build dies with a message
 * naming both goroutines.
 *
 * A child process runs a goroutine that publishes the address of one of its locals and
 * parks on a channel; once the monitor has compacted it, main reads the local through the
 * pointer. Where the kernel has guard regions and /proc/self/mem is writable (what fault
 * restores need, src/compact.c K6) the child must print "read 42" and count one restore
 * through a fault. Elsewhere, in a debug build, it must die with
 *   goro: fatal: goroutine 1 touched the stack of goroutine N, which is parked and compacted
 * Without guard regions at all, or in a release build without fault restores (the pages
 * are dropped, K2), the test exits 77, which CTest reports as skipped, after saying why.
 */
#include "testutil.h"

/* Restores through a fault so far (src/compact.c; internal, not in goro_stats, whose size
 * is fixed by the ABI). */
uint64_t goro__compact_fault_restores(void);

#include <fcntl.h>
#include <stdbool.h>
#include <sys/mman.h>

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

#ifdef GORO_DEBUG
static const bool debug_build = true; /* compacted stacks are guarded, touches fatal */
#else
static const bool debug_build = false;
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
    fprintf(stderr, "victim ok\n");
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
    uint64_t faults = goro__compact_fault_restores();
    volatile uint64_t *p = __atomic_load_n(&published, __ATOMIC_ACQUIRE);
    fprintf(stderr, "read %llu\n", (unsigned long long)*p); /* must fault */
    goro_stats_get(&st);
    fprintf(stderr, "fault restores %llu\n",
            (unsigned long long)(goro__compact_fault_restores() - faults));
    goro_chan_close(park_here); /* the victim wakes with its local intact, or CHECK fails */
    goro_sleep(5 * TU_MS);
}

static void child(void *arg) {
    (void)arg;
    goro_config cfg = {.compact_after = 1000000};
    goro_run(&cfg, child_main, NULL);
}

/* 0: no guard regions; 1: guard regions; 2: and the stack can be restored on a touch
 * (they guard, and /proc/self/mem opens for writing: the runtime probes the same). */
static int guards_work(void) {
    long page = sysconf(_SC_PAGESIZE);
    char *p = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    int ok = madvise(p, (size_t)page, MADV_GUARD_INSTALL) == 0;
    int fds[2];
    CHECK_EQ(pipe(fds), 0);
    bool guards = ok && write(fds[1], p, 1) < 0;
    close(fds[0]);
    close(fds[1]);
    munmap(p, (size_t)page);
    int fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
    if (fd >= 0)
        close(fd);
    return guards && fd >= 0 ? 2 : ok;
}

int main(void) {
    int mode = guards_work();
    if (!mode) {
        printf("SKIP mem_compact_misuse: the kernel has no MADV_GUARD_INSTALL (Linux 6.13), "
               "so compacted stacks cannot be guarded\n");
        return 77;
    }
    tu_child c;
    if (mode == 2) {
        tu_run_child(child, NULL, 30, &c);
        if (!WIFEXITED(c.status) || WEXITSTATUS(c.status) != TU_CHILD_RETURNED ||
            !tu_has_line(c.err, "read 42") || !tu_has_line(c.err, "fault restores 1") ||
            !tu_has_line(c.err, "victim ok")) {
            tu_show_child("restore", &c, 4000);
            CHECKF(0, "want read 42, one fault restore, and the victim's local intact");
        }
        free(c.err);
        return tu_pass("mem_compact_misuse");
    }
    if (!debug_build) {
        printf("SKIP mem_compact_misuse: no fault restores here, and a release build drops "
               "compacted pages instead of guarding them\n");
        return 77;
    }
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
