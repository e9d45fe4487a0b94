/*
 * mem_compact_touch.c - other goroutines may touch a parked goroutine's stack while it is
 * compacted: the touch faults, the stack is copied back (src/compact.c, K6), and nothing
 * written is lost (K7), however the touch and the compactor's copy interleave.
 *
 *  - Phase 1: main keeps a wait group and an array on its stack and waits on a channel.
 *    Once main and the workers are all compacted, the workers are let go: each writes its
 *    slot of main's array and marks the group done (both on main's compacted stack). Main
 *    is woken with a value sent while its stack may already have been put back by a fault
 *    (the value then lands in its copy and must reach its stack slot). Checks: every slot,
 *    the group at zero, the value, and at least one restore through a fault (stats).
 *  - Phase 2: writers increment their own slot of main's stack array without pause while
 *    main parks on a channel again and again, so the compactor copies main's stack while
 *    it is being written (the read-only window) and faults restore it: each slot must end
 *    equal to the writer's own count of its increments.
 *
 * Needs guard regions (Linux 6.13) and a writable /proc/self/mem; elsewhere compaction
 * cannot restore on a touch, and the test exits 77 (skipped) after saying why.
 */
#include "testutil.h"

/* Restores through a fault so far (src/compact.c; internal, not in goro_stats, whose size
 * is fixed by the ABI). */
uint64_t goro__compact_fault_restores(void);

#include <fcntl.h>
#include <stdatomic.h>
#include <sys/mman.h>

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

#define WORKERS 64
#define WRITERS 8
#ifndef PHASE2_FAULTS
#define PHASE2_FAULTS 3 /* fault restores phase 2 waits for */
#endif

static goro_chan *start_ch, *finish_ch, *tick_ch;
static goro_waitgroup *main_wg;   /* on main's stack */
static uint64_t *main_slots;      /* on main's stack */
static volatile uint64_t *wslots; /* phase 2: on main's stack */
static goro_waitgroup workers_done = GORO_WAITGROUP_INIT;
static goro_waitgroup writers_done = GORO_WAITGROUP_INIT;
static uint64_t own_count[WRITERS]; /* each writer's own tally */
static _Atomic int stop;

static void worker(void *arg) {
    uint64_t i = (uint64_t)(uintptr_t)arg, v;
    CHECK_EQ(goro_chan_recv(start_ch, &v), GORO_ECLOSED);
    main_slots[i] += i * i + 1; /* a write into main's compacted stack */
    goro_wg_done(main_wg);      /* and a wait group there */
    goro_wg_done(&workers_done);
}

static void conductor(void *arg) {
    (void)arg;
    goro_stats st;
    int64_t deadline = goro_now() + 20000 * TU_MS;
    do {
        goro_sleep(2 * TU_MS);
        goro_stats_get(&st);
    } while (st.compacted < WORKERS + 1 && goro_now() < deadline);
    /* Only main and the workers wait on channels: all of them compacted, main included. */
    CHECKF(st.compacted == WORKERS + 1, "compacted %lld of %d", (long long)st.compacted,
           WORKERS + 1);
    goro_chan_close(start_ch);
    goro_wg_wait(&workers_done);
    uint64_t v = 0xfeedfacecafe;
    CHECK_EQ(goro_chan_send(finish_ch, &v), 0);
}

static void writer(void *arg) {
    int i = (int)(intptr_t)arg;
    while (!atomic_load(&stop)) {
        wslots[i]++;
        own_count[i]++;
        if (own_count[i] % 64 == 0)
            goro_yield();
    }
    goro_wg_done(&writers_done);
}

static void ticker(void *arg) {
    (void)arg;
    for (;;) {
        goro_sleep(5 * TU_MS);
        uint64_t v = 1;
        if (goro_chan_send(tick_ch, &v) != 0)
            return; /* closed: main is done */
    }
}

static void phase2(void) {
    volatile uint64_t slots[WRITERS];
    for (int i = 0; i < WRITERS; i++)
        slots[i] = 0;
    wslots = slots;
    goro_stats st;
    goro_stats_get(&st);
    uint64_t faults0 = goro__compact_fault_restores();
    goro_wg_add(&writers_done, WRITERS);
    for (int i = 0; i < WRITERS; i++)
        CHECK_EQ(goro_spawn(writer, (void *)(intptr_t)i), 0);
    CHECK_EQ(goro_spawn(ticker, NULL), 0);
    int64_t deadline = goro_now() + 30000 * TU_MS;
    int ticks = 0;
    do {
        uint64_t v = 0;
        CHECK_EQ(goro_chan_recv(tick_ch, &v), 0); /* main parks; writers write its stack */
        CHECK_EQ(v, 1);
        ticks++;
        goro_stats_get(&st);
    } while (goro__compact_fault_restores() - faults0 < PHASE2_FAULTS && goro_now() < deadline);
    CHECKF(goro__compact_fault_restores() - faults0 >= PHASE2_FAULTS,
           "only %llu fault restores in %d parks",
           (unsigned long long)(goro__compact_fault_restores() - faults0), ticks);
    atomic_store(&stop, 1);
    goro_wg_wait(&writers_done);
    goro_chan_close(tick_ch);
    uint64_t total = 0;
    for (int i = 0; i < WRITERS; i++) {
        CHECKF(slots[i] == own_count[i], "writer %d: %llu in main's stack, %llu written", i,
               (unsigned long long)slots[i], (unsigned long long)own_count[i]);
        total += own_count[i];
    }
    printf("phase 2: %d parks, %llu fault restores, %llu writes into main's stack\n", ticks,
           (unsigned long long)(goro__compact_fault_restores() - faults0),
           (unsigned long long)total);
}

static void main_fn(void *arg) {
    (void)arg;
    goro_waitgroup wg = GORO_WAITGROUP_INIT;
    uint64_t slots[WORKERS];
    memset(slots, 0, sizeof slots);
    CHECK_EQ(goro_chan_make(&start_ch, sizeof(uint64_t), 0), 0);
    CHECK_EQ(goro_chan_make(&finish_ch, sizeof(uint64_t), 0), 0);
    CHECK_EQ(goro_chan_make(&tick_ch, sizeof(uint64_t), 0), 0);
    main_wg = &wg;
    main_slots = slots;
    goro_wg_add(&wg, WORKERS);
    goro_wg_add(&workers_done, WORKERS);
    for (int i = 0; i < WORKERS; i++)
        CHECK_EQ(goro_spawn(worker, (void *)(uintptr_t)i), 0);
    CHECK_EQ(goro_spawn(conductor, NULL), 0);
    goro_stats st;
    goro_stats_get(&st);
    uint64_t faults0 = goro__compact_fault_restores();
    uint64_t v = 0;
    CHECK_EQ(goro_chan_recv(finish_ch, &v), 0); /* parked and compacted here */
    CHECK_EQ(v, 0xfeedfacecafeULL);
    goro_wg_wait(&wg); /* every done landed: returns at once */
    for (uint64_t i = 0; i < WORKERS; i++)
        CHECKF(slots[i] == i * i + 1, "slot %llu holds %llu", (unsigned long long)i,
               (unsigned long long)slots[i]);
    goro_stats_get(&st);
    CHECKF(goro__compact_fault_restores() > faults0, "no restore through a fault (%llu)",
           (unsigned long long)goro__compact_fault_restores());
    printf("phase 1: %llu fault restores, %llu restores, %llu compactions\n",
           (unsigned long long)(goro__compact_fault_restores() - faults0),
           (unsigned long long)st.restores, (unsigned long long)st.compactions);
    phase2();
    goro_chan_release(start_ch);
    goro_chan_release(finish_ch);
    goro_chan_release(tick_ch);
}

/* Whether the kernel has what fault restores need: guard regions that guard, and a
 * writable /proc/self/mem (the runtime probes the same, src/compact.c). */
static const char *missing(void) {
    long page = sysconf(_SC_PAGESIZE);
    char *p = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    const char *why = NULL;
    int fds[2];
    CHECK_EQ(pipe(fds), 0);
    if (madvise(p, (size_t)page, MADV_GUARD_INSTALL) != 0 || write(fds[1], p, 1) == 1)
        why = "no working MADV_GUARD_INSTALL (Linux 6.13; qemu-user ignores it)";
    close(fds[0]);
    close(fds[1]);
    munmap(p, (size_t)page);
    int fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
    if (fd < 0 && !why)
        why = "/proc/self/mem cannot be opened for writing";
    if (fd >= 0)
        close(fd);
    return why;
}

int main(void) {
    const char *why = missing();
    if (why) {
        printf("SKIP mem_compact_touch: %s, so compacted stacks cannot be restored on a "
               "touch\n",
               why);
        return 77;
    }
    goro_config cfg = {.compact_after = 1000000};
    CHECK_EQ(goro_run(&cfg, main_fn, NULL), 0);
    return tu_pass("mem_compact_touch");
}
