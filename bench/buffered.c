/*
 * buffered.c - one producer and one consumer stream n items through a buffered channel of
 * capacity 128, with 1 P and with every P. Figure: ns per item (send + receive). Exits 1 if
 * an item arrives out of order. Go twin: go/buffered.
 */
#include "bench.h"

static uint64_t n = 10000000; /* items */
static uint64_t cap = 128;    /* channel capacity */

typedef struct stream {
    goro_chan *ch;
    goro_waitgroup done;
} stream;

static void producer(void *arg) {
    stream *s = arg;
    for (uint64_t i = 0; i < n; i++)
        goro_chan_send(s->ch, &i);
    goro_chan_close(s->ch);
    goro_wg_done(&s->done);
}

static double items(void) {
    stream s = {.done = GORO_WAITGROUP_INIT};
    if (goro_chan_make(&s.ch, sizeof(uint64_t), cap) != 0) {
        fprintf(stderr, "buffered: goro_chan_make failed\n");
        exit(1);
    }
    goro_wg_add(&s.done, 1);
    int64_t start = goro_now();
    bench_spawn(producer, &s);
    uint64_t v, want = 0;
    while (goro_chan_recv(s.ch, &v) == 0) {
        if (v != want) {
            fprintf(stderr, "buffered: got %" PRIu64 ", want %" PRIu64 "\n", v, want);
            exit(1);
        }
        want++;
    }
    int64_t ns = goro_now() - start;
    if (want != n) {
        fprintf(stderr, "buffered: %" PRIu64 " items arrived, want %" PRIu64 "\n", want, n);
        exit(1);
    }
    goro_wg_wait(&s.done); /* the producer has left goro_chan_close: the channel is ours */
    goro_chan_release(s.ch);
    return (double)ns / (double)n;
}

static void bench_main(void *arg) {
    (void)arg;
    int all = goro_maxprocs(0);
    goro_maxprocs(1);
    double one = items();
    goro_maxprocs(all);
    double many = items();
    printf("# %d Ps, capacity %" PRIu64 "\n", all, cap);
    bench_result("buffered_1p", one, "ns");
    bench_result("buffered_allp", many, "ns");
}

int main(int argc, char **argv) {
    bench_flag flags[] = {
        {"n", &n, 1, UINT64_C(1) << 40, "items"},
        {"cap", &cap, 1, 1 << 20, "channel capacity"},
    };
    bench_parse(argc, argv, flags, sizeof flags / sizeof flags[0]);
    bench_run(argv[0], 0, bench_main, NULL);
    return 0;
}
