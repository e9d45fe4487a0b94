/*
 * pi.c - the work of examples/pi.c as a benchmark: `samples` Monte Carlo samples split over
 * `goroutines` goroutines, each with its own xoshiro256** generator seeded by splitmix64
 * from seed + its index; once on one P and once on all Ps (or --procs). Figures: wall time
 * of each run and their ratio. Exits 1 if the two runs count different points. Go twin:
 * go/pi, which draws the very same numbers, so the "# hits" lines of both must agree.
 */
#include "bench.h"

static uint64_t samples = 200000000, goroutines = 64, procs = 0, seed = 1;

static uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

/* xoshiro256**: one step of the generator in s. */
static uint64_t next(uint64_t s[4]) {
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* One cache line per goroutine, so that writing a count does not disturb the others. */
typedef struct task {
    _Alignas(64) uint64_t index;
    uint64_t hits;
} task;

static task *tasks;
static goro_waitgroup done;

static void count_hits(void *arg) {
    task *t = arg;
    uint64_t n = samples / goroutines + (t->index < samples % goroutines);
    uint64_t seeder = seed + t->index, s[4];
    for (int i = 0; i < 4; i++)
        s[i] = splitmix64(&seeder);
    uint64_t hits = 0;
    for (uint64_t i = 0; i < n; i++) {
        double x = (double)(next(s) >> 11) * 0x1.0p-53;
        double y = (double)(next(s) >> 11) * 0x1.0p-53;
        hits += x * x + y * y < 1.0;
    }
    t->hits = hits;
    goro_wg_done(&done);
}

/* One run on p Ps; returns the points inside the circle, *ns the wall time. */
static uint64_t run(int p, int64_t *ns) {
    goro_maxprocs(p);
    int64_t start = goro_now();
    goro_wg_add(&done, (int)goroutines);
    for (uint64_t i = 0; i < goroutines; i++) {
        tasks[i] = (task){.index = i, .hits = 0};
        bench_spawn(count_hits, &tasks[i]);
    }
    goro_wg_wait(&done);
    uint64_t hits = 0;
    for (uint64_t i = 0; i < goroutines; i++)
        hits += tasks[i].hits;
    *ns = goro_now() - start;
    return hits;
}

static void bench_main(void *arg) {
    int *status = arg;
    int all = goro_maxprocs(0);
    int64_t ns1, nsn;
    uint64_t hits1 = run(1, &ns1);
    uint64_t hitsn = run(all, &nsn);
    printf("# hits %" PRIu64 " of %" PRIu64 ", pi %.9f, %d Ps\n", hits1, samples,
           4.0 * (double)hits1 / (double)samples, all);
    if (hits1 != hitsn) {
        fprintf(stderr, "pi: runs disagree: %" PRIu64 " vs %" PRIu64 "\n", hits1, hitsn);
        *status = 1;
        return;
    }
    bench_result("pi_1p", (double)ns1 / 1e6, "ms");
    bench_result("pi_allp", (double)nsn / 1e6, "ms");
    bench_result("speedup", (double)ns1 / (double)nsn, "x");
}

int main(int argc, char **argv) {
    bench_flag flags[] = {
        {"samples", &samples, 1, UINT64_C(1) << 50, "points to draw"},
        {"goroutines", &goroutines, 1, 1000000, "goroutines to split them over"},
        {"procs", &procs, 0, 1024, "Ps for the parallel run, 0: every CPU"},
        {"seed", &seed, 0, UINT64_MAX, "random seed"},
    };
    bench_parse(argc, argv, flags, sizeof flags / sizeof flags[0]);
    tasks = aligned_alloc(64, goroutines * sizeof(task));
    if (tasks == NULL) {
        fprintf(stderr, "pi: out of memory\n");
        return 1;
    }
    int status = 0;
    bench_run(argv[0], (int)procs, bench_main, &status);
    free(tasks);
    return status;
}
