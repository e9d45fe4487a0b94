/*
 * tenmillion.c - ten million goroutines parked at once (issue 11). Main spawns n
 * goroutines; goroutine i parks in goro_chan_recv on channel i % chans (unbuffered).
 * Once all have arrived, main waits for the stack compactor to be done with them
 * (bounded by --settle_ms), measures the resident set, then closes every channel, which
 * wakes every goroutine, and waits for all to end. Each goroutine checks it was woken by
 * the close and marks its own slot; main checks every slot was marked exactly once.
 *
 * Figures: peak resident set (VmHWM) in MB, resident and page-table (VmPTE) bytes per
 * parked goroutine, ns per
 * goroutine to create them (spawn until all have arrived at their receive) and to wake
 * them (first close until all have ended). Go twin: go/tenmillion, which needs ~2.7 KB
 * per parked goroutine, 27 GB for ten million, more than the project's 24 GiB machine
 * has: scripts/bench.sh runs both under a memory cap (scripts/memcap.sh). Runs with the stock
 * vm.max_map_count (65530): stacks are mapped 16 at a time and adjacent mappings merge (stack.c).
 */
#include "bench.h"

#include <stdatomic.h>

static uint64_t n = 10000000;      /* goroutines */
static uint64_t chans = 1000;      /* channels they park on */
static uint64_t settle_ms = 60000; /* longest wait for the compactor */
static uint64_t compact_ms = 5;    /* goro_config.compact_after in ms; 0: off */

static goro_chan **ch;
static goro_waitgroup exited;        /* counts the goroutines still alive */
static atomic_uint_fast64_t arrived; /* goroutines about to park */
static atomic_uint_fast64_t ended;   /* goroutines past their wake */
static unsigned char *woken;         /* [i]: goroutine i ran after its wake */

static void sleeper(void *arg) {
    uint64_t i = (uint64_t)(uintptr_t)arg;
    /* relaxed: main only counts; the channels order everything that matters */
    atomic_fetch_add_explicit(&arrived, 1, memory_order_relaxed);
    int err = goro_chan_recv(ch[i % chans], NULL);
    if (err != GORO_ECLOSED) {
        fprintf(stderr, "tenmillion: goroutine %" PRIu64 ": recv returned %s\n", i,
                goro_strerror(err));
        exit(1);
    }
    woken[i]++;                                                 /* only goroutine i writes slot i */
    atomic_fetch_add_explicit(&ended, 1, memory_order_relaxed); /* progress only */
    goro_wg_done(&exited);
}

static void bench_main(void *arg) {
    (void)arg;
    ch = calloc(chans, sizeof *ch);
    woken = calloc(n, 1); /* untouched zero pages until the wakes */
    if (ch == NULL || woken == NULL) {
        fprintf(stderr, "tenmillion: out of memory\n");
        exit(1);
    }
    for (uint64_t c = 0; c < chans; c++) {
        if (goro_chan_make(&ch[c], 1, 0) != 0) {
            fprintf(stderr, "tenmillion: goro_chan_make failed\n");
            exit(1);
        }
    }
    goro_wg_add(&exited, (int)n);
    int64_t before = bench_rss_bytes(), pt_before = bench_pagetable_bytes();
    int64_t start = goro_now();
    for (uint64_t i = 0; i < n; i++) {
        int err = goro_spawn(sleeper, (void *)(uintptr_t)i);
        if (err != 0) {
            goro_stats st;
            goro_stats_get(&st);
            fprintf(stderr,
                    "tenmillion: goro_spawn of goroutine %" PRIu64 " failed: %s (%" PRId64
                    " live, %" PRId64 " compacted, rss %.1f MiB)\n",
                    i, goro_strerror(err), st.goroutines, st.compacted,
                    (double)bench_rss_bytes() / 1048576.0);
            exit(1);
        }
        if ((i + 1) % 1000000 == 0) /* progress, for a run that dies: how far it got */
            printf("# spawned %" PRIu64 ", rss %.0f MiB\n", i + 1,
                   (double)bench_rss_bytes() / 1048576.0);
    }
    while (atomic_load_explicit(&arrived, memory_order_relaxed) < n)
        goro_sleep(1000000);
    int64_t create_ns = goro_now() - start;
    goro_sleep(20000000); /* the last ones may not have parked yet */
    int64_t plain = bench_rss_bytes();
    printf("# all %" PRIu64 " arrived after %.0f ms, rss %.0f MiB\n", n, (double)create_ns / 1e6,
           (double)plain / 1048576.0);
    goro_stats st = bench_wait_compacted((int64_t)n, settle_ms);
    int64_t parked = bench_rss_bytes(), pt_parked = bench_pagetable_bytes();
    printf("# %" PRId64 " compacted, rss %.0f MiB, page tables %.0f MiB; waking\n", st.compacted,
           (double)parked / 1048576.0, (double)pt_parked / 1048576.0);

    int64_t wake_start = goro_now();
    for (uint64_t c = 0; c < chans; c++)
        goro_chan_close(ch[c]);
    /* Progress once a second, for a run that dies: how far the wakes got. */
    for (int64_t last = wake_start; atomic_load_explicit(&ended, memory_order_relaxed) < n;) {
        goro_sleep(10000000);
        if (goro_now() - last >= 1000000000) {
            last = goro_now();
            printf("# %" PRIu64 " ended, rss %.0f MiB\n",
                   (uint64_t)atomic_load_explicit(&ended, memory_order_relaxed),
                   (double)bench_rss_bytes() / 1048576.0);
        }
    }
    goro_wg_wait(&exited);
    int64_t wake_ns = goro_now() - wake_start;
    for (uint64_t i = 0; i < n; i++) {
        if (woken[i] != 1) {
            fprintf(stderr, "tenmillion: goroutine %" PRIu64 " ran %d times after its wake\n", i,
                    woken[i]);
            exit(1);
        }
    }
    for (uint64_t c = 0; c < chans; c++)
        goro_chan_release(ch[c]);
    free(ch);
    free(woken);
    int64_t peak = bench_peak_rss_bytes();

    printf("# %" PRIu64 " goroutines on %" PRIu64 " channels: created and parked in %.0f ms, "
           "all woken and counted once in %.0f ms\n",
           n, chans, (double)create_ns / 1e6, (double)wake_ns / 1e6);
    printf("# rss %.1f MiB -> %.1f MiB parked -> %.1f MiB with %" PRId64
           " compacted (copies %.1f MiB); peak %.1f MiB\n",
           (double)before / 1048576.0, (double)plain / 1048576.0, (double)parked / 1048576.0,
           st.compacted, (double)st.compacted_bytes / 1048576.0, (double)peak / 1048576.0);
    bench_result("peak_rss", (double)peak / 1048576.0, "MB");
    bench_result("bytes_per_parked", (double)(parked - before) / (double)n, "bytes");
    bench_result("pagetable_bytes_per_parked", (double)(pt_parked - pt_before) / (double)n,
                 "bytes");
    bench_result("ns_per_create", (double)create_ns / (double)n, "ns");
    bench_result("ns_per_wake", (double)wake_ns / (double)n, "ns");
}

int main(int argc, char **argv) {
    bench_flag flags[] = {
        {"n", &n, 1, 100000000, "goroutines to park"},
        {"chans", &chans, 1, 1000000, "channels they park on"},
        {"settle_ms", &settle_ms, 0, 600000, "longest wait for compaction, ms"},
        {"compact_ms", &compact_ms, 0, 100000, "compact stacks parked this long, ms (0: off)"},
    };
    bench_parse(argc, argv, flags, sizeof flags / sizeof flags[0]);
    setvbuf(stdout, NULL, _IOLBF, 0);                      /* progress lines survive a kill */
    goro_config cfg = bench_compact_config(0, compact_ms); /* --compact_ms 0: off */
    bench_run_cfg(argv[0], &cfg, bench_main, NULL);
    return 0;
}
