/*
 * sched_million_parked: one million goroutines alive at once, each on its own stack and
 * parked, on a stock kernel (vm.max_map_count 65530, no sysctl).
 *
 * Every goroutine runs (so it holds a stack with a guard), records its arrival, and parks
 * on a gate; main checks that all arrived, that the stacks did not take one kernel mapping
 * each (the map count stays far below the goroutine count), and that the memory per parked
 * goroutine stays within the bound (4.5 KiB of RSS). Then it opens the gate and
 * checks that every goroutine woke exactly once.
 *
 * Slow builds run fewer goroutines (GORO_TEST_SCALE; TSan at most 4000, see main); the
 * RSS bound is checked only in
 * plain builds, where the count is large enough to mean something and no sanitizer adds
 * its own shadow memory.
 */
#include "testutil.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static long n;
static goro_waitgroup gate = GORO_WAITGROUP_INIT;
static goro_waitgroup done = GORO_WAITGROUP_INIT;
static _Atomic long arrived;
static unsigned char *woke; /* one byte per goroutine: times it woke */

static long rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = 0;
    CHECK(f != NULL);
    CHECK(fscanf(f, "%ld %ld", &size, &resident) == 2);
    fclose(f);
    return resident * sysconf(_SC_PAGESIZE);
}

static long map_count(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    CHECK(f != NULL);
    long lines = 0;
    for (int c; (c = fgetc(f)) != EOF;)
        lines += c == '\n';
    fclose(f);
    return lines;
}

static void parker(void *arg) {
    long i = (long)(intptr_t)arg;
    atomic_fetch_add_explicit(&arrived, 1, memory_order_relaxed);
    goro_wg_wait(&gate);
    woke[i]++; /* each goroutine owns its byte; done's wait orders it before main reads */
    goro_wg_done(&done);
}

static void test_main(void *arg) {
    (void)arg;
    long before = rss_bytes();
    goro_wg_add(&gate, 1);
    goro_wg_add(&done, (int)n);
    for (long i = 0; i < n; i++)
        CHECKF(goro_spawn(parker, (void *)(intptr_t)i) == 0, "spawn %ld of %ld failed", i, n);
    /* Sleeping lets the Ps run the parkers; the count only grows, so this terminates. */
    int64_t deadline = goro_now() + 120 * 1000 * TU_MS;
    while (atomic_load_explicit(&arrived, memory_order_relaxed) < n) {
        CHECKF(goro_now() < deadline, "only %ld of %ld goroutines ran in 120 s",
               (long)atomic_load(&arrived), n);
        goro_sleep(TU_MS);
    }
    goro_stats st;
    goro_stats_get(&st);
    CHECKF(st.goroutines == n + 1, "stats.goroutines %lld, want %ld", (long long)st.goroutines,
           n + 1);
    CHECKF(st.stacks >= (uint64_t)n, "only %llu stacks for %ld started goroutines",
           (unsigned long long)st.stacks, n);
    long maps = map_count();
    /* (TSan maps memory of its own for each fiber.) */
    CHECKF(TU_TSAN || (maps < 60000 && maps < n / 4 + 1000),
           "%ld kernel mappings for %ld goroutine stacks: stacks must share mappings", maps, n);
    long after = rss_bytes();
    double per = (double)(after - before) / (double)n;
    printf("%ld goroutines parked: %ld mappings, %.0f bytes of RSS each\n", n, maps, per);
    if (!TU_ASAN && !TU_TSAN && n >= 500000)
        CHECKF(per <= 4.5 * 1024, "%.0f bytes of RSS per parked goroutine, bound 4608", per);

    goro_wg_done(&gate);
    goro_wg_wait(&done);
    for (long i = 0; i < n; i++)
        CHECKF(woke[i] == 1, "goroutine %ld woke %d times", i, woke[i]);
}

int main(void) {
    n = tu_scaled(1000000, 20000);
    if (TU_ASAN && n > 200000)
        n = 200000; /* ASan's page faults on shadow memory make each one cost ~70 us */
    if (TU_TSAN) {
        /* ThreadSanitizer models each goroutine stack's fiber as a thread and dies beyond
         * 8128 of them alive: run the same test with fewer goroutines. */
        n = 4000;
        printf("TSan build: %ld goroutines (TSan allows 8128 fibers alive)\n", n);
    }
    woke = calloc((size_t)n, 1);
    CHECK(woke != NULL);
    int rc = goro_run(NULL, test_main, NULL);
    CHECKF(rc == 0, "goro_run: %s", goro_strerror(rc));
    free(woke);
    return tu_pass("sched_million_parked");
}
