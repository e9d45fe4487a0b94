/*
 * pipeline.c - fan-out, fan-in, cancellation and a timeout, with channels and select.
 *
 * The numbers 1..J go through a three-stage pipeline:
 *
 *     producer --jobs--> W workers (square) --results--> main (sum)
 *
 *  - Fan-out: one producer sends the numbers into the `jobs` channel; W worker goroutines
 *    all receive from it, so each number goes to whichever worker is free.
 *  - Fan-in: every worker sends its squares into the one `results` channel. When the last
 *    worker has exited, a closer goroutine closes `results`, which tells main that
 *    everything has arrived.
 *  - Cancellation: `done` carries no values; closing it wakes every goroutine selecting on
 *    it at once (a receive from a closed channel never blocks). The producer and the
 *    workers select on `done` beside their real work, so one close stops them all.
 *  - Timeout: main waits for results with goro_select and a deadline (goro_now() plus the
 *    timeout). If the deadline passes first, main closes `done`, then drains `results`
 *    until the closer closes it, which happens once every worker has stopped.
 *
 * Either way every goroutine has exited before main releases the channels.
 *
 *   pipeline [--jobs J] [--workers W] [--timeout-ms T]
 */
#include <goro.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pipeline {
    uint64_t jobs, workers, timeout_ms; /* the flags */
    goro_chan *jobs_ch;                 /* uint64_t: numbers to square; closed by the producer */
    goro_chan *results_ch;              /* uint64_t: squares; closed by the closer */
    goro_chan *done_ch;                 /* no values (element size 0); closed by main to cancel */
    goro_waitgroup working;             /* the workers still running; the closer waits on it */
    goro_waitgroup helpers;             /* the producer and the closer; main waits on it */
} pipeline;

/* Stage 1: sends 1..jobs, unless cancelled first; then closes `jobs` so that the workers
 * know no more are coming. */
static void producer(void *arg) {
    pipeline *p = arg;
    for (uint64_t i = 1; i <= p->jobs; i++) {
        goro_case cases[2] = {
            {.chan = p->jobs_ch, .op = GORO_SEND, .elem = &i},
            {.chan = p->done_ch, .op = GORO_RECV, .elem = NULL},
        };
        if (goro_select(cases, 2, GORO_FOREVER) == 1)
            break; /* done was closed: cancelled */
    }
    goro_chan_close(p->jobs_ch);
    goro_wg_done(&p->helpers);
}

/* Stage 2, W copies: squares numbers until `jobs` is closed and drained, or `done` is
 * closed. Both the receive and the send select on `done`, so a worker never stays stuck
 * on a channel nobody will serve again. */
static void worker(void *arg) {
    pipeline *p = arg;
    for (;;) {
        uint64_t x;
        goro_case in[2] = {
            {.chan = p->jobs_ch, .op = GORO_RECV, .elem = &x},
            {.chan = p->done_ch, .op = GORO_RECV, .elem = NULL},
        };
        int i = goro_select(in, 2, GORO_FOREVER);
        if (i != 0 || in[0].result == GORO_ECLOSED)
            break; /* cancelled, or no jobs left */

        uint64_t sq = x * x;
        goro_case out[2] = {
            {.chan = p->results_ch, .op = GORO_SEND, .elem = &sq},
            {.chan = p->done_ch, .op = GORO_RECV, .elem = NULL},
        };
        if (goro_select(out, 2, GORO_FOREVER) != 0)
            break; /* cancelled while waiting to hand over the square */
    }
    goro_wg_done(&p->working);
}

/* Fan-in's last step: once no worker can send any more, close `results`. */
static void closer(void *arg) {
    pipeline *p = arg;
    goro_wg_wait(&p->working);
    goro_chan_close(p->results_ch);
    goro_wg_done(&p->helpers);
}

static void spawn_or_die(void (*fn)(void *), void *arg) {
    int err = goro_spawn(fn, arg);
    if (err != 0) {
        fprintf(stderr, "pipeline: goro_spawn: %s\n", goro_strerror(err));
        exit(1);
    }
}

/* Stage 3, the main goroutine: sums the squares until `results` closes or time runs out. */
static void pipeline_main(void *arg) {
    pipeline *p = arg;
    if (goro_chan_make(&p->jobs_ch, sizeof(uint64_t), 0) != 0 ||
        goro_chan_make(&p->results_ch, sizeof(uint64_t), 0) != 0 ||
        goro_chan_make(&p->done_ch, 0, 0) != 0) {
        fprintf(stderr, "pipeline: out of memory\n");
        exit(1);
    }
    int64_t start = goro_now();
    int64_t deadline = start + (int64_t)p->timeout_ms * 1000000;

    goro_wg_add(&p->working, (int)p->workers);
    for (uint64_t i = 0; i < p->workers; i++)
        spawn_or_die(worker, p);
    goro_wg_add(&p->helpers, 2);
    spawn_or_die(producer, p);
    spawn_or_die(closer, p);

    uint64_t sum = 0, received = 0;
    int timed_out = 0;
    for (;;) {
        uint64_t sq;
        goro_case c = {.chan = p->results_ch, .op = GORO_RECV, .elem = &sq};
        int r = goro_select(&c, 1, deadline);
        if (r == GORO_ETIMEDOUT) {
            timed_out = 1;
            break;
        }
        if (r < 0) {
            fprintf(stderr, "pipeline: goro_select: %s\n", goro_strerror(r));
            exit(1);
        }
        if (c.result == GORO_ECLOSED)
            break; /* every worker has finished: all results are in */
        sum += sq;
        received++;
    }
    int64_t ns = goro_now() - start;

    if (timed_out) {
        /* Cancel: one close reaches every goroutine selecting on done. Then drain results
         * until the closer closes it, so that no worker is left blocked on a send. */
        goro_chan_close(p->done_ch);
        while (goro_chan_recv(p->results_ch, NULL) == 0)
            ;
    }
    goro_wg_wait(&p->helpers); /* the producer and the closer have exited too */

    if (timed_out)
        printf("timed out after %" PRIu64 " ms: %" PRIu64 " of %" PRIu64
               " squares summed, partial sum %" PRIu64 "\n",
               p->timeout_ms, received, p->jobs, sum);
    else
        printf("finished in %.3f ms: sum of the squares of 1..%" PRIu64 " is %" PRIu64 "\n",
               (double)ns / 1e6, p->jobs, sum);
    printf("%" PRIu64 " workers; goroutines left: %d (main)\n", p->workers, goro_numgoroutine());

    goro_chan_release(p->jobs_ch);
    goro_chan_release(p->results_ch);
    goro_chan_release(p->done_ch);

    /* 1^2 + ... + n^2 = n(n+1)(2n+1)/6; no overflow for the n --jobs allows. */
    uint64_t n = p->jobs;
    if (!timed_out && sum != n * (n + 1) / 2 * (2 * n + 1) / 3) {
        fprintf(stderr, "pipeline: wrong sum\n");
        exit(1);
    }
}

static void usage(void) {
    fprintf(stderr, "usage: pipeline [--jobs J] [--workers W] [--timeout-ms T]\n"
                    "  --jobs J        numbers to square, 1..2000000 (default 100000)\n"
                    "  --workers W     worker goroutines, 1..10000 (default 4)\n"
                    "  --timeout-ms T  give up after T milliseconds (default 1000)\n");
    exit(2);
}

static uint64_t parse(const char *s, uint64_t min, uint64_t max) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0 || v < min || v > max)
        usage();
    return v;
}

int main(int argc, char **argv) {
    pipeline p = {.jobs = 100000, .workers = 4, .timeout_ms = 1000};
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i], *val = i + 1 < argc ? argv[++i] : NULL;
        if (val == NULL)
            usage();
        else if (strcmp(flag, "--jobs") == 0)
            p.jobs = parse(val, 1, 2000000);
        else if (strcmp(flag, "--workers") == 0)
            p.workers = parse(val, 1, 10000);
        else if (strcmp(flag, "--timeout-ms") == 0)
            p.timeout_ms = parse(val, 0, 86400000);
        else
            usage();
    }
    goro_config cfg = {0}; /* every CPU, or $GORO_MAXPROCS */
    int err = goro_run(&cfg, pipeline_main, &p);
    if (err != 0) {
        fprintf(stderr, "pipeline: goro_run: %s\n", goro_strerror(err));
        return 1;
    }
    return 0;
}
