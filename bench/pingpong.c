/*
 * pingpong.c - two goroutines pass a token back and forth over two unbuffered channels,
 * with 1 P and with every P. Figure: ns per round trip (two hand-offs). Go twin:
 * bench/go/pingpong.
 */
#include "bench.h"

static uint64_t n = 1000000; /* round trips */

typedef struct pair {
    goro_chan *ping, *pong;
    goro_waitgroup done;
} pair;

static void ponger(void *arg) {
    pair *p = arg;
    uint64_t v;
    while (goro_chan_recv(p->ping, &v) == 0)
        if (goro_chan_send(p->pong, &v) != 0)
            break;
    goro_wg_done(&p->done);
}

static double round_trips(void) {
    pair p = {.done = GORO_WAITGROUP_INIT};
    if (goro_chan_make(&p.ping, sizeof(uint64_t), 0) ||
        goro_chan_make(&p.pong, sizeof(uint64_t), 0)) {
        fprintf(stderr, "pingpong: goro_chan_make failed\n");
        exit(1);
    }
    goro_wg_add(&p.done, 1);
    bench_spawn(ponger, &p);
    int64_t start = goro_now();
    for (uint64_t i = 0; i < n; i++) {
        uint64_t v = i, back = 0;
        goro_chan_send(p.ping, &v);
        goro_chan_recv(p.pong, &back);
        if (back != i) {
            fprintf(stderr, "pingpong: got %" PRIu64 " back for %" PRIu64 "\n", back, i);
            exit(1);
        }
    }
    int64_t ns = goro_now() - start;
    goro_chan_close(p.ping);
    goro_wg_wait(&p.done);
    goro_chan_release(p.ping);
    goro_chan_release(p.pong);
    return (double)ns / (double)n;
}

static void bench_main(void *arg) {
    (void)arg;
    int all = goro_maxprocs(0);
    goro_maxprocs(1);
    double one = round_trips();
    goro_maxprocs(all);
    double many = round_trips();
    printf("# %d Ps\n", all);
    bench_result("pingpong_1p", one, "ns");
    bench_result("pingpong_allp", many, "ns");
}

int main(int argc, char **argv) {
    bench_flag flags[] = {{"n", &n, 1, UINT64_C(1) << 40, "round trips"}};
    bench_parse(argc, argv, flags, sizeof flags / sizeof flags[0]);
    bench_run(argv[0], 0, bench_main, NULL);
    return 0;
}
