/*
 * trace_onoff.c - what the execution tracer costs while it records, measured inside one
 * process: 1-P ping-pong in batches, alternately untraced and traced (goro_trace_start
 * into a temporary file before a batch, goro_trace_stop after it, so the JSON is written
 * outside the timed loop). The two batches of a pair run a few milliseconds apart, so the
 * slow swings of a shared machine's speed, which move whole-process runs by tens of
 * percent (scripts/trace_overhead.sh's rounds ranged 0.8-1.9), hit both sides alike; the
 * order within a pair alternates. Figures: the median over pairs of traced/untraced time,
 * and each side's median ns per round trip. No Go twin (scripts/bench.sh's trace row).
 */
#include "pingpong_pair.h"

static uint64_t n = 50000;  /* round trips per batch */
static uint64_t pairs = 41; /* traced/untraced pairs */

/* One batch of n round trips: ns per round trip. */
static double batch(pair *p) {
    return pair_round_trips(p, n, "trace_onoff");
}

/* A batch while a trace records into path; the file is removed after. */
static double traced_batch(pair *p, const char *path) {
    int err = goro_trace_start(path);
    if (err != 0) {
        fprintf(stderr, "trace_onoff: goro_trace_start(%s): %s\n", path, goro_strerror(err));
        exit(1);
    }
    double ns = batch(p);
    err = goro_trace_stop();
    if (err != 0) {
        fprintf(stderr, "trace_onoff: goro_trace_stop: %s\n", goro_strerror(err));
        exit(1);
    }
    unlink(path);
    return ns;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, size_t k) {
    qsort(v, k, sizeof *v, cmp_double);
    return k % 2 ? v[k / 2] : (v[k / 2 - 1] + v[k / 2]) / 2;
}

static void bench_main(void *arg) {
    (void)arg;
    const char *dir = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/goro_trace_onoff.%d.json", dir && *dir ? dir : "/tmp",
             (int)getpid());
    pair p;
    pair_start(&p, "trace_onoff");
    double *off = malloc(pairs * sizeof *off), *on = malloc(pairs * sizeof *on);
    double *ratio = malloc(pairs * sizeof *ratio);
    if (!off || !on || !ratio) {
        fprintf(stderr, "trace_onoff: out of memory\n");
        exit(1);
    }
    batch(&p); /* warm up: stacks, caches, the channel's waiters */
    for (uint64_t i = 0; i < pairs; i++) {
        if (i % 2) {
            on[i] = traced_batch(&p, path);
            off[i] = batch(&p);
        } else {
            off[i] = batch(&p);
            on[i] = traced_batch(&p, path);
        }
        ratio[i] = on[i] / off[i];
    }
    pair_stop(&p);
    bench_result("pingpong_1p_untraced", median(off, pairs), "ns");
    bench_result("pingpong_1p_traced", median(on, pairs), "ns");
    bench_result("trace_on_off", median(ratio, pairs), "x");
    free(off);
    free(on);
    free(ratio);
}

int main(int argc, char **argv) {
    bench_flag flags[] = {{"n", &n, 1, UINT64_C(1) << 40, "round trips per batch"},
                          {"pairs", &pairs, 1, 100000, "traced/untraced pairs of batches"}};
    bench_parse(argc, argv, flags, sizeof flags / sizeof flags[0]);
    bench_run(argv[0], 1, bench_main, NULL);
    return 0;
}
