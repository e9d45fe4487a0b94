/*
 * pingpong.c - two goroutines pass a token back and forth over two unbuffered channels,
 * with 1 P and with every P. Figure: ns per round trip (two hand-offs). Go twin:
 * bench/go/pingpong.
 */
#include "pingpong_pair.h"

static uint64_t n = 1000000; /* round trips */

/* n round trips through a fresh pair: ns per round trip. */
static double round_trips(void) {
    pair p;
    pair_start(&p, "pingpong");
    double ns = pair_round_trips(&p, n, "pingpong");
    pair_stop(&p);
    return ns;
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
