/*
 * pi.c - estimate pi by throwing darts, on many goroutines.
 *
 * The Monte Carlo method: draw points uniformly from the unit square; the fraction that
 * lands inside the quarter circle x*x + y*y < 1 tends to pi/4. The samples are split over
 * G goroutines, each with its own random generator, and their counts are summed at the end.
 *
 * The whole computation runs twice: first on one P (every goroutine takes turns on one OS
 * thread), then on all Ps (the scheduler spreads the goroutines over every CPU). Each
 * goroutine's random stream depends only on the seed and its index, so both runs count
 * exactly the same points; the ratio of their times is what running in parallel bought.
 *
 *   pi [--samples N] [--goroutines G] [--procs P] [--seed S]
 */
#include <goro.h>

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* splitmix64: turns any seed into well-mixed 64-bit words. Used only to seed xoshiro. */
static uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* xoshiro256** (Blackman and Vigna): a small, fast generator; one per goroutine, so no
 * goroutine ever waits for another to draw a number. */
typedef struct rng {
    uint64_t s[4];
} rng;

static uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(rng *r) {
    uint64_t *s = r->s;
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

/* A uniform double in [0, 1): the top 53 bits of a word become the mantissa. */
static double rng_unit(rng *r) {
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

/* What one goroutine is given and what it hands back. Each task fills a cache line of its
 * own (_Alignas(64)), so a goroutine writing its count never invalidates a line another
 * CPU is using ("false sharing"). */
typedef struct job job;
typedef struct task {
    _Alignas(64) job *parent;
    uint64_t index;
    uint64_t hits; /* written by this task's goroutine only, read after the wait group */
} task;

struct job {
    uint64_t samples, seed, goroutines;
    task *tasks;
    goro_waitgroup done; /* counts the goroutines still counting */
    int status;          /* the exit status main() returns */
};

/* The goroutine: draws its share of the samples and counts those inside the circle. */
static void count_hits(void *arg) {
    task *t = arg;
    job *j = t->parent;
    /* An even share; the first (samples % goroutines) tasks take one sample more. */
    uint64_t n = j->samples / j->goroutines + (t->index < j->samples % j->goroutines);
    uint64_t seeder = j->seed + t->index;
    rng r;
    for (int i = 0; i < 4; i++)
        r.s[i] = splitmix64(&seeder);

    uint64_t hits = 0; /* a local: the shared slot is written once, at the end */
    for (uint64_t i = 0; i < n; i++) {
        double x = rng_unit(&r), y = rng_unit(&r);
        hits += x * x + y * y < 1.0;
    }
    t->hits = hits;
    goro_wg_done(&j->done); /* publishes t->hits to whoever returns from goro_wg_wait */
}

/* Runs the computation on `procs` Ps. Returns 0 and sets *hits and *ns (wall time), or a
 * negative goro code if a goroutine could not be created. */
static int run(job *j, int procs, uint64_t *hits, int64_t *ns) {
    int err = 0;
    goro_maxprocs(procs);
    int64_t start = goro_now();
    for (uint64_t i = 0; i < j->goroutines; i++) {
        j->tasks[i] = (task){.parent = j, .index = i, .hits = 0};
        goro_wg_add(&j->done, 1); /* before the spawn, so the wait cannot miss it */
        err = goro_spawn(count_hits, &j->tasks[i]);
        if (err != 0) {
            goro_wg_done(&j->done);
            break;
        }
    }
    goro_wg_wait(&j->done); /* even after an error: the spawned ones use j->tasks */
    *ns = goro_now() - start;
    *hits = 0;
    for (uint64_t i = 0; i < j->goroutines; i++)
        *hits += j->tasks[i].hits;
    return err;
}

/* The main goroutine: one run on a single P, one on all of them, then the report. */
static void pi_main(void *arg) {
    job *j = arg;
    int all = goro_maxprocs(0); /* the Ps goro_run started with: --procs, or every CPU */
    uint64_t hits1, hitsn;
    int64_t ns1, nsn;
    int err = run(j, 1, &hits1, &ns1);
    if (err == 0)
        err = run(j, all, &hitsn, &nsn);
    if (err != 0) {
        fprintf(stderr, "pi: goro_spawn: %s\n", goro_strerror(err));
        j->status = 1;
        return;
    }
    if (hits1 != hitsn) { /* same seeds, same points: a difference is a runtime bug */
        fprintf(stderr, "pi: runs disagree: %" PRIu64 " vs %" PRIu64 " hits\n", hits1, hitsn);
        j->status = 1;
        return;
    }
    double pi = 4.0 * (double)hits1 / (double)j->samples;
    printf("samples     %" PRIu64 " on %" PRIu64 " goroutines, seed %" PRIu64 "\n", j->samples,
           j->goroutines, j->seed);
    printf("pi          %.9f (error %.3g)\n", pi, fabs(pi - M_PI));
    char label[16];
    snprintf(label, sizeof label, "%d P%s", all, all == 1 ? "" : "s");
    printf("1 P         %.3f s\n", (double)ns1 / 1e9);
    printf("%-12s%.3f s\n", label, (double)nsn / 1e9);
    printf("speedup     %.2fx\n", (double)ns1 / (double)nsn);
}

static void usage(void) {
    fprintf(stderr, "usage: pi [--samples N] [--goroutines G] [--procs P] [--seed S]\n"
                    "  --samples N     points to draw (default 200000000)\n"
                    "  --goroutines G  goroutines to split them over (default 64)\n"
                    "  --procs P       Ps for the parallel run, 0: every CPU (default 0)\n"
                    "  --seed S        random seed (default 1)\n");
    exit(2);
}

/* Parses a decimal in [min, max], or exits with the usage message. */
static uint64_t parse(const char *s, uint64_t min, uint64_t max) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0 || v < min || v > max)
        usage();
    return v;
}

int main(int argc, char **argv) {
    job j = {.samples = 200000000, .seed = 1, .goroutines = 64};
    goro_config cfg = {0}; /* maxprocs 0: $GORO_MAXPROCS, else every CPU */
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i], *val = i + 1 < argc ? argv[++i] : NULL;
        if (val == NULL)
            usage();
        else if (strcmp(flag, "--samples") == 0)
            j.samples = parse(val, 1, UINT64_C(1) << 50);
        else if (strcmp(flag, "--goroutines") == 0)
            j.goroutines = parse(val, 1, 1000000);
        else if (strcmp(flag, "--procs") == 0)
            cfg.maxprocs = (int)parse(val, 0, 1024);
        else if (strcmp(flag, "--seed") == 0)
            j.seed = parse(val, 0, UINT64_MAX);
        else
            usage();
    }
    j.tasks = aligned_alloc(64, j.goroutines * sizeof(task));
    if (j.tasks == NULL) {
        fprintf(stderr, "pi: out of memory\n");
        return 1;
    }
    int err = goro_run(&cfg, pi_main, &j);
    if (err != 0) {
        fprintf(stderr, "pi: goro_run: %s\n", goro_strerror(err));
        j.status = 1;
    }
    free(j.tasks);
    return j.status;
}
