/*
 * bench.h - what every goro benchmark shares: flags, results, the resident set size.
 *
 * Each benchmark bench/<name>.c has a Go twin bench/go/<name>/main.go doing the same work
 * with the same flags; both print one line per figure,
 *
 *     RESULT <metric> <value> <unit>
 *
 * which scripts/bench.sh collects and compares. Other lines are for people and are
 * ignored. Flags are parsed as Go's flag package does: -name or --name, then the value as
 * the next argument or after '='.
 */
#ifndef GORO_BENCH_H
#define GORO_BENCH_H

#include <goro.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* BENCH_COUNT_BEGIN/END bracket a timed loop for callgrind run with --collect-atstart=no:
 * instructions are counted exactly there, whatever the goroutine switches in between do
 * to callgrind's call stacks (its --toggle-collect=FUNCTION follows returns, which a
 * switch to another goroutine's stack confuses). Outside valgrind each is a handful of
 * register rotations. */
#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define BENCH_COUNT_BEGIN() CALLGRIND_TOGGLE_COLLECT
#define BENCH_COUNT_END() CALLGRIND_TOGGLE_COLLECT
#endif
#endif
#ifndef BENCH_COUNT_BEGIN
#define BENCH_COUNT_BEGIN() ((void)0)
#define BENCH_COUNT_END() ((void)0)
#endif

typedef struct bench_flag {
    const char *name; /* without dashes */
    uint64_t *value;  /* holds the default on entry */
    uint64_t min, max;
    const char *help;
} bench_flag;

static inline void bench_usage(const char *prog, const bench_flag *flags, size_t n) {
    fprintf(stderr, "usage: %s", prog);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, " [--%s N]", flags[i].name);
    fprintf(stderr, "\n");
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "  --%-12s %s (default %" PRIu64 ")\n", flags[i].name, flags[i].help,
                *flags[i].value);
}

/* Parses argv into the flags; on a bad flag prints the usage and exits 2 (0 for -h). */
static inline void bench_parse(int argc, char **argv, const bench_flag *flags, size_t n) {
    const char *prog = argc > 0 ? argv[0] : "bench";
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (arg[0] != '-')
            goto bad;
        arg += arg[1] == '-' ? 2 : 1;
        if (strcmp(arg, "h") == 0 || strcmp(arg, "help") == 0) {
            bench_usage(prog, flags, n);
            exit(0);
        }
        const char *eq = strchr(arg, '=');
        size_t len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
        const bench_flag *f = NULL;
        for (size_t k = 0; k < n; k++)
            if (strlen(flags[k].name) == len && strncmp(flags[k].name, arg, len) == 0)
                f = &flags[k];
        if (f == NULL)
            goto bad;
        const char *val = eq != NULL ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (val == NULL || val[0] < '0' || val[0] > '9')
            goto bad;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(val, &end, 10);
        if (*end != '\0' || errno != 0 || v < f->min || v > f->max)
            goto bad;
        *f->value = v;
    }
    return;
bad:
    bench_usage(prog, flags, n);
    exit(2);
}

/* The one machine-readable line per figure. */
static inline void bench_result(const char *metric, double value, const char *unit) {
    printf("RESULT %s %.2f %s\n", metric, value, unit);
    fflush(stdout);
}

/* The resident set size of this process in bytes, from /proc/self/statm; -1 on error. */
static inline int64_t bench_rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return -1;
    unsigned long long size, resident;
    int got = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    if (got != 2)
        return -1;
    return (int64_t)resident * (int64_t)sysconf(_SC_PAGESIZE);
}

/* goro_run with cfg, exiting with a message if the runtime could not start. */
static inline void bench_run_cfg(const char *prog, const goro_config *cfg, void (*main_fn)(void *),
                                 void *arg) {
    int err = goro_run(cfg, main_fn, arg);
    if (err != 0) {
        fprintf(stderr, "%s: goro_run: %s\n", prog, goro_strerror(err));
        exit(1);
    }
}

/* goro_run, exiting with a message if the runtime could not start. */
static inline void bench_run(const char *prog, int maxprocs, void (*main_fn)(void *), void *arg) {
    goro_config cfg = {.maxprocs = maxprocs};
    int err = goro_run(&cfg, main_fn, arg);
    if (err != 0) {
        fprintf(stderr, "%s: goro_run: %s\n", prog, goro_strerror(err));
        exit(1);
    }
}

/* goro_spawn, exiting with a message if the goroutine could not be created. */
static inline void bench_spawn(void (*fn)(void *), void *arg) {
    int err = goro_spawn(fn, arg);
    if (err != 0) {
        fprintf(stderr, "bench: goro_spawn: %s\n", goro_strerror(err));
        exit(1);
    }
}

/* A "Name:   N kB" field of /proc/self/status in bytes, or -1. */
static inline int64_t bench_status_bytes(const char *name) {
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    char line[256];
    size_t len = strlen(name);
    long long kb = -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, name, len) == 0 && line[len] == ':' &&
            sscanf(line + len + 1, "%lld", &kb) == 1)
            break;
    fclose(f);
    return kb < 0 ? -1 : kb * 1024;
}

/* The peak resident set size of this process in bytes (VmHWM), or -1. */
static inline int64_t bench_peak_rss_bytes(void) {
    return bench_status_bytes("VmHWM");
}

/* The memory of this process's page tables in bytes (VmPTE), or -1. Not part of the
 * resident set, but memory all the same: every touched stack page has an entry. */
static inline int64_t bench_pagetable_bytes(void) {
    return bench_status_bytes("VmPTE");
}

/* The configuration of the memory benchmarks: procs Ps (0: every CPU) and compaction
 * after compact_ms (0: off; it is opt-in, goro_config.compact_after). */
static inline goro_config bench_compact_config(uint64_t procs, uint64_t compact_ms) {
    goro_config cfg = {.maxprocs = (int)procs,
                       .compact_after = compact_ms ? (int64_t)compact_ms * 1000000 : -1};
    return cfg;
}

/* Waits for the stack compactor (goro_config.compact_after) to be done with `expect`
 * parked goroutines: until goro_stats.compacted reaches expect, or has not grown for 4 s
 * (nothing more to compact: compaction is off, or those waits are not compacted; the
 * compactor rests up to 1.6 s after a pass that found nothing, and a pass over millions
 * of descriptors takes a while: 2 s here measured 90% of two million), and at most
 * settle_ms. Returns the last stats. */
static inline goro_stats bench_wait_compacted(int64_t expect, uint64_t settle_ms) {
    goro_stats st;
    goro_stats_get(&st);
    int64_t start = goro_now(), last_growth = start, prev = st.compacted;
    while (st.compacted < expect && goro_now() - start < (int64_t)settle_ms * 1000000) {
        goro_sleep(10000000);
        goro_stats_get(&st);
        if (st.compacted != prev) {
            prev = st.compacted;
            last_growth = goro_now();
        } else if (goro_now() - last_growth >= 4000000000) {
            break;
        }
    }
    return st;
}

#endif /* GORO_BENCH_H */
