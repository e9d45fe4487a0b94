/*
 * ring.c - 503 goroutines in a ring, each linked to the next by an unbuffered channel,
 * pass a token n hops, with 1 P and with every P. The token is the number of hops left:
 * goroutine i receives it from channel i, and forwards it less one to channel i+1 (mod
 * 503); the goroutine that receives 0 reports its index, which must be n mod 503. Main
 * then closes every channel, which ends every goroutine. Figure: ns per hop. Go twin:
 * go/ring.
 */
#include "bench.h"

#define RING 503

static uint64_t n = 5000000; /* hops per run */

typedef struct ring {
    goro_chan *links[RING]; /* links[i]: into goroutine i */
    goro_chan *finished;    /* the index of the goroutine that got 0 */
    uint64_t index[RING];   /* each goroutine's argument */
    goro_waitgroup alive;
} ring;

static ring r;

static void member(void *arg) {
    uint64_t i = *(uint64_t *)arg;
    goro_chan *in = r.links[i], *out = r.links[(i + 1) % RING];
    uint64_t token;
    while (goro_chan_recv(in, &token) == 0) {
        if (token == 0) {
            goro_chan_send(r.finished, &i);
            continue; /* main closes the ring next */
        }
        token--;
        goro_chan_send(out, &token);
    }
    goro_wg_done(&r.alive);
}

static double hops(void) {
    for (int i = 0; i < RING; i++) {
        r.index[i] = (uint64_t)i;
        if (goro_chan_make(&r.links[i], sizeof(uint64_t), 0) != 0) {
            fprintf(stderr, "ring: goro_chan_make failed\n");
            exit(1);
        }
    }
    if (goro_chan_make(&r.finished, sizeof(uint64_t), 1) != 0) {
        fprintf(stderr, "ring: goro_chan_make failed\n");
        exit(1);
    }
    goro_wg_add(&r.alive, RING);
    for (int i = 0; i < RING; i++)
        bench_spawn(member, &r.index[i]);
    int64_t start = goro_now();
    uint64_t token = n, last;
    goro_chan_send(r.links[0], &token);
    goro_chan_recv(r.finished, &last);
    int64_t ns = goro_now() - start;
    if (last != n % RING) {
        fprintf(stderr, "ring: goroutine %" PRIu64 " got the last hop, want %" PRIu64 "\n", last,
                n % RING);
        exit(1);
    }
    for (int i = 0; i < RING; i++)
        goro_chan_close(r.links[i]);
    goro_wg_wait(&r.alive);
    for (int i = 0; i < RING; i++)
        goro_chan_release(r.links[i]);
    goro_chan_release(r.finished);
    return (double)ns / (double)n;
}

static void bench_main(void *arg) {
    (void)arg;
    int all = goro_maxprocs(0);
    goro_maxprocs(1);
    double one = hops();
    goro_maxprocs(all);
    double many = hops();
    printf("# %d Ps, %d goroutines, %" PRIu64 " hops\n", all, RING, n);
    bench_result("ring_1p", one, "ns");
    bench_result("ring_allp", many, "ns");
}

int main(int argc, char **argv) {
    bench_flag flags[] = {{"n", &n, 1, UINT64_C(1) << 40, "hops per run"}};
    bench_parse(argc, argv, flags, sizeof flags / sizeof flags[0]);
    bench_run(argv[0], 0, bench_main, NULL);
    return 0;
}
