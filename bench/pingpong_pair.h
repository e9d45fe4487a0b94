/*
 * pingpong_pair.h - the two channels and the echoing goroutine of a ping-pong, shared by
 * bench/pingpong.c and bench/trace_onoff.c: pair_start, then round trips with
 * pair_round_trips, then pair_stop.
 */
#ifndef GORO_BENCH_PINGPONG_PAIR_H
#define GORO_BENCH_PINGPONG_PAIR_H

#include "bench.h"

typedef struct pair {
    goro_chan *ping, *pong;
    goro_waitgroup done;
} pair;

/* Sends back every value received on ping, until ping is closed. (Named ponger: the
 * callgrind commands in docs/TRACING.md collect from it.) */
static void ponger(void *arg) {
    pair *p = arg;
    uint64_t v;
    while (goro_chan_recv(p->ping, &v) == 0)
        if (goro_chan_send(p->pong, &v) != 0)
            break;
    goro_wg_done(&p->done);
}

/* Makes the channels and spawns the ponger; exits with a message naming prog on failure. */
static inline void pair_start(pair *p, const char *prog) {
    *p = (pair){.done = GORO_WAITGROUP_INIT};
    if (goro_chan_make(&p->ping, sizeof(uint64_t), 0) ||
        goro_chan_make(&p->pong, sizeof(uint64_t), 0)) {
        fprintf(stderr, "%s: goro_chan_make failed\n", prog);
        exit(1);
    }
    goro_wg_add(&p->done, 1);
    bench_spawn(ponger, p);
}

/* n round trips, each value checked when it comes back: ns per round trip. */
static inline double pair_round_trips(pair *p, uint64_t n, const char *prog) {
    int64_t start = goro_now();
    BENCH_COUNT_BEGIN();
    for (uint64_t i = 0; i < n; i++) {
        uint64_t v = i, back = 0;
        goro_chan_send(p->ping, &v);
        goro_chan_recv(p->pong, &back);
        if (back != i) {
            fprintf(stderr, "%s: got %" PRIu64 " back for %" PRIu64 "\n", prog, back, i);
            exit(1);
        }
    }
    BENCH_COUNT_END();
    return (double)(goro_now() - start) / (double)n;
}

/* Closes ping, waits for the ponger to end, releases the channels. */
static inline void pair_stop(pair *p) {
    goro_chan_close(p->ping);
    goro_wg_wait(&p->done);
    goro_chan_release(p->ping);
    goro_chan_release(p->pong);
}

#endif
