/*
 * wake_compacted.c - what stack compaction (issue 11) adds to a wake: the latency from a
 * send to the goroutine it wakes running, for goroutines parked a moment (plain) and for
 * goroutines whose stacks were compacted (parked longer than goro_config.compact_after,
 * so the wake copies the stack back).
 *
 * Goroutine i parks in goro_chan_recv on its own unbuffered channel; main sends it
 * goro_now() and the goroutine, first thing after the receive, records goro_now() minus
 * that value. Main then yields until the goroutine has recorded, so wakes do not overlap.
 * A send is tried without waiting (deadline 0) until it succeeds, with the clock read
 * before each try: a success proves the goroutine was parked in its receive.
 *  - plain: goroutines are spawned in batches of 16 and each batch is woken as soon as
 *    it has arrived, microseconds after parking (goro_stats.restores must not move);
 *  - compacted: n goroutines park, main waits until goro_stats.compacted stops growing
 *    (bench.h), then wakes them one by one.
 * Figures: median and 99th percentile of each, in ns. One P by default (--procs), so the
 * woken goroutine runs on main's P and the figure is the wake itself. No Go twin: Go has
 * no compaction to compare with.
 */
#include "bench.h"

#include <stdatomic.h>

#define BATCH 16

static uint64_t n = 10000;        /* goroutines of each kind */
static uint64_t procs = 1;        /* Ps */
static uint64_t settle_ms = 5000; /* longest wait for the compactor */
static uint64_t compact_ms = 5;   /* goro_config.compact_after in ms; 0: off */

static goro_chan **ch;               /* [i]: goroutine i's channel, int64_t values */
static int64_t *lat;                 /* [i]: goroutine i's wake latency */
static atomic_int *done;             /* [i]: goroutine i has recorded lat[i] */
static atomic_uint_fast64_t arrived; /* goroutines about to park */
static goro_waitgroup exited;

static void sleeper(void *arg) {
    uint64_t i = (uint64_t)(uintptr_t)arg;
    int64_t t0 = 0;
    /* relaxed: main only counts; the channel orders what matters */
    atomic_fetch_add_explicit(&arrived, 1, memory_order_relaxed);
    if (goro_chan_recv(ch[i], &t0) != 0) {
        fprintf(stderr, "wake_compacted: goroutine %" PRIu64 ": recv failed\n", i);
        exit(1);
    }
    lat[i] = goro_now() - t0;
    /* release: lat[i] is visible to main once it sees done[i] (acquire below) */
    atomic_store_explicit(&done[i], 1, memory_order_release);
    goro_wg_done(&exited);
}

static void wait_arrived(uint64_t k) {
    while (atomic_load_explicit(&arrived, memory_order_relaxed) < k)
        goro_yield();
}

/* Wakes goroutine i (parked, or about to park) and waits until it has recorded. */
static void wake(uint64_t i) {
    for (;;) {
        int64_t t0 = goro_now();
        if (goro_chan_send_dl(ch[i], &t0, 0) == 0)
            break;
        goro_yield();
    }
    while (!atomic_load_explicit(&done[i], memory_order_acquire))
        goro_yield();
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Median and 99th percentile of lat[from, from + k), sorted in place. */
static void report(const char *what, uint64_t from, uint64_t k) {
    qsort(lat + from, k, sizeof *lat, cmp_i64);
    double med = (double)lat[from + k / 2];
    double p99 = (double)lat[from + (k * 99) / 100];
    double max = (double)lat[from + k - 1];
    printf("# %s: %" PRIu64 " wakes, median %.0f ns, p99 %.0f ns, max %.0f ns\n", what, k, med, p99,
           max);
    char name[64];
    snprintf(name, sizeof name, "%s_median", what);
    bench_result(name, med, "ns");
    snprintf(name, sizeof name, "%s_p99", what);
    bench_result(name, p99, "ns");
}

static void bench_main(void *arg) {
    (void)arg;
    uint64_t total = 2 * n;
    ch = calloc(total, sizeof *ch);
    lat = calloc(total, sizeof *lat);
    done = calloc(total, sizeof *done);
    if (ch == NULL || lat == NULL || done == NULL) {
        fprintf(stderr, "wake_compacted: out of memory\n");
        exit(1);
    }
    for (uint64_t i = 0; i < total; i++) {
        if (goro_chan_make(&ch[i], sizeof(int64_t), 0) != 0) {
            fprintf(stderr, "wake_compacted: goro_chan_make failed\n");
            exit(1);
        }
    }
    goro_wg_add(&exited, (int)total);

    /* Plain: goroutines 0..n-1, woken right after they park. */
    goro_stats s0, s1;
    goro_stats_get(&s0);
    for (uint64_t b = 0; b < n; b += BATCH) {
        uint64_t e = b + BATCH < n ? b + BATCH : n;
        for (uint64_t i = b; i < e; i++)
            bench_spawn(sleeper, (void *)(uintptr_t)i);
        wait_arrived(e);
        for (uint64_t i = b; i < e; i++)
            wake(i);
    }
    goro_stats_get(&s1);
    uint64_t plain_restores = s1.restores - s0.restores;

    /* Compacted: goroutines n..2n-1, woken once the compactor is done with them. */
    for (uint64_t i = n; i < total; i++)
        bench_spawn(sleeper, (void *)(uintptr_t)i);
    wait_arrived(total);
    goro_sleep(20000000); /* the last ones may not have parked yet */
    goro_stats st = bench_wait_compacted((int64_t)n, settle_ms);
    goro_stats_get(&s0);
    for (uint64_t i = n; i < total; i++)
        wake(i);
    goro_stats_get(&s1);
    uint64_t restores = s1.restores - s0.restores;
    goro_wg_wait(&exited);

    printf("# plain: %" PRIu64 " restores (should be 0); compacted: %" PRId64
           " compacted before the wakes, %" PRIu64 " restores during them\n",
           plain_restores, st.compacted, restores);
    report("plain", 0, n);
    report("compacted", n, n);
    for (uint64_t i = 0; i < total; i++)
        goro_chan_release(ch[i]);
    free(ch);
    free(lat);
    free(done);
}

int main(int argc, char **argv) {
    bench_flag flags[] = {
        {"n", &n, 1, 10000000, "goroutines of each kind"},
        {"procs", &procs, 0, 1024, "Ps (0: every CPU)"},
        {"settle_ms", &settle_ms, 0, 600000, "longest wait for compaction, ms"},
        {"compact_ms", &compact_ms, 0, 100000, "compact stacks parked this long, ms (0: off)"},
    };
    bench_parse(argc, argv, flags, sizeof flags / sizeof flags[0]);
    goro_config cfg = bench_compact_config(procs, compact_ms); /* --compact_ms 0: off */
    bench_run_cfg(argv[0], &cfg, bench_main, NULL);
    return 0;
}
