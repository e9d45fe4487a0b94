/*
 * parked_chan.c - the memory a goroutine parked on a channel costs once its stack is
 * compacted (issue 11): n goroutines each park in goro_chan_recv on one unbuffered
 * channel. Main measures the resident set size (/proc/self/statm) before the spawns and,
 * once every goroutine has parked, waits for the compactor (goro_config.compact_after,
 * 5 ms by default) until goro_stats.compacted stops growing (bounded by --settle_ms),
 * then measures again. It then sends n values, one per goroutine, and waits for all of
 * them: each marks its own slot once and checks the value it got was sent once, so a
 * goroutine woken twice, or never, or a value lost in a compacted stack, fails the run.
 *
 * Figures: resident bytes per parked goroutine (the target is at most 1 KiB; Go's is
 * ~2.7 KiB), page-table bytes per parked goroutine (VmPTE: not in the resident set, but
 * memory; each touched stack page has an entry), ns per wake (send to a parked goroutine until all
 * have run), and the compactor's own: the share of goroutines compacted, the bytes of a compacted
 * copy, and its system calls per goroutine. --min_compacted P makes the run fail when fewer than P
 * percent were compacted (the test run uses it). Go twin: go/parked_chan (no compaction figures).
 */
#include "bench.h"

#include <stdatomic.h>

static uint64_t n = 1000000;       /* goroutines */
static uint64_t settle_ms = 5000;  /* longest wait for the compactor to finish */
static uint64_t compact_ms = 5;    /* goro_config.compact_after in ms; 0: off */
static uint64_t procs = 0;         /* 0: every CPU */
static uint64_t min_compacted = 0; /* percent: fewer compacted is a failure (tests) */

static goro_chan *gate;              /* unbuffered, uint64_t values 0..n-1 */
static goro_waitgroup exited;        /* counts the goroutines still alive */
static atomic_uint_fast64_t arrived; /* goroutines about to park */
static unsigned char *woken;         /* [i]: goroutine i ran after its wake */
static unsigned char *got;           /* [v]: value v was received */

static void sleeper(void *arg) {
    uint64_t i = (uint64_t)(uintptr_t)arg;
    uint64_t v = UINT64_MAX;
    /* relaxed: main only counts; the channel orders everything that matters */
    atomic_fetch_add_explicit(&arrived, 1, memory_order_relaxed);
    int err = goro_chan_recv(gate, &v);
    if (err != 0 || v >= n) {
        fprintf(stderr, "parked_chan: goroutine %" PRIu64 ": recv %s, value %" PRIu64 "\n", i,
                goro_strerror(err), v);
        exit(1);
    }
    /* Each slot is written by one goroutine only (its index, its unique value). */
    woken[i]++;
    got[v]++;
    goro_wg_done(&exited);
}

static void bench_main(void *arg) {
    (void)arg;
    if (goro_chan_make(&gate, sizeof(uint64_t), 0) != 0) {
        fprintf(stderr, "parked_chan: goro_chan_make failed\n");
        exit(1);
    }
    /* Untouched zero pages until the goroutines write them after their wake. */
    woken = calloc(n, 1);
    got = calloc(n, 1);
    if (woken == NULL || got == NULL) {
        fprintf(stderr, "parked_chan: out of memory\n");
        exit(1);
    }
    goro_wg_add(&exited, (int)n);
    int64_t before = bench_rss_bytes(), pt_before = bench_pagetable_bytes();
    int64_t start = goro_now();
    for (uint64_t i = 0; i < n; i++)
        bench_spawn(sleeper, (void *)(uintptr_t)i);
    while (atomic_load_explicit(&arrived, memory_order_relaxed) < n)
        goro_sleep(1000000);
    int64_t parked_ns = goro_now() - start;
    /* The last ones counted themselves but may not have parked yet: give them a moment. */
    goro_sleep(20000000);
    int64_t plain = bench_rss_bytes();
    goro_stats st = bench_wait_compacted((int64_t)n, settle_ms);
    int64_t after = bench_rss_bytes(), pt_after = bench_pagetable_bytes();
    int64_t settled_ns = goro_now() - start - parked_ns;

    int64_t wake_start = goro_now();
    for (uint64_t v = 0; v < n; v++)
        goro_chan_send(gate, &v);
    goro_wg_wait(&exited);
    int64_t wake_ns = goro_now() - wake_start;
    goro_stats end;
    goro_stats_get(&end);

    for (uint64_t i = 0; i < n; i++) {
        if (woken[i] != 1 || got[i] != 1) {
            fprintf(stderr,
                    "parked_chan: goroutine %" PRIu64 " ran %d times after its wake; value %" PRIu64
                    " received %d times\n",
                    i, woken[i], i, got[i]);
            exit(1);
        }
    }
    goro_chan_release(gate);
    free(woken);
    free(got);

    printf("# %" PRIu64 " goroutines parked in %.0f ms; rss %.1f MiB -> %.1f MiB parked -> "
           "%.1f MiB after %.0f ms more\n",
           n, (double)parked_ns / 1e6, (double)before / 1048576.0, (double)plain / 1048576.0,
           (double)after / 1048576.0, (double)settled_ns / 1e6);
    printf("# compacted %" PRId64 " (%" PRIu64 " compactions, %" PRIu64 " restores by the "
           "end), copies %.1f MiB, saved %.1f MiB, %" PRIu64 " compactor syscalls\n",
           st.compacted, end.compactions, end.restores, (double)st.compacted_bytes / 1048576.0,
           (double)st.compact_saved / 1048576.0, st.compact_syscalls);
    printf("# all %" PRIu64 " woken and counted once in %.0f ms\n", n, (double)wake_ns / 1e6);
    bench_result("bytes_per_parked", (double)(after - before) / (double)n, "bytes");
    bench_result("pagetable_bytes_per_parked", (double)(pt_after - pt_before) / (double)n, "bytes");
    bench_result("ns_per_wake", (double)wake_ns / (double)n, "ns");
    bench_result("compacted_share", 100.0 * (double)st.compacted / (double)n, "%");
    bench_result("copy_bytes_per_compacted",
                 st.compacted > 0 ? (double)st.compacted_bytes / (double)st.compacted : 0.0,
                 "bytes");
    bench_result("syscalls_per_goroutine", (double)st.compact_syscalls / (double)n, "calls");
    if ((double)st.compacted < (double)min_compacted / 100.0 * (double)n) {
        fprintf(stderr,
                "parked_chan: %" PRId64 " of %" PRIu64 " compacted, below --min_compacted %" PRIu64
                "%%\n",
                st.compacted, n, min_compacted);
        exit(1);
    }
}

int main(int argc, char **argv) {
    bench_flag flags[] = {
        {"n", &n, 1, 100000000, "goroutines to park"},
        {"settle_ms", &settle_ms, 0, 600000, "longest wait for compaction, ms"},
        {"compact_ms", &compact_ms, 0, 100000, "compact stacks parked this long, ms (0: off)"},
        {"procs", &procs, 0, 1024, "Ps (0: every CPU)"},
        {"min_compacted", &min_compacted, 0, 100, "percent compacted below which to fail"},
    };
    bench_parse(argc, argv, flags, sizeof flags / sizeof flags[0]);
    goro_config cfg = bench_compact_config(procs, compact_ms); /* --compact_ms 0: off */
    bench_run_cfg(argv[0], &cfg, bench_main, NULL);
    return 0;
}
