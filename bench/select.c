/*
 * select.c - four producers each send n/4 items into a channel of their own; one consumer
 * receives them all with a select over the four channels, on all Ps. A producer closes its
 * channel when done; the consumer then drops that case (a NULL channel, Go's nil channel)
 * and stops when all four are closed. Figure: ns per item received. Exits 1 if an item is
 * lost or a producer's items arrive out of order. Go twin: go/select.
 */
#include "bench.h"

#define PRODUCERS 4

static uint64_t n = 4000000; /* items in all */
static uint64_t cap = 0;     /* capacity of each channel; 0: unbuffered */

typedef struct producer_arg {
    goro_chan *ch;
    uint64_t index;
} producer_arg;

static goro_waitgroup done;

/* Sends index, index + 4, index + 8, ...: the consumer tells the producers apart by the
 * remainder and checks each one's order. */
static void producer(void *arg) {
    producer_arg *p = arg;
    for (uint64_t i = 0; i < n / PRODUCERS; i++) {
        uint64_t v = i * PRODUCERS + p->index;
        goro_chan_send(p->ch, &v);
    }
    goro_chan_close(p->ch);
    goro_wg_done(&done);
}

static void bench_main(void *arg) {
    (void)arg;
    producer_arg args[PRODUCERS];
    goro_case cases[PRODUCERS];
    uint64_t v, next[PRODUCERS] = {0};
    for (uint64_t i = 0; i < PRODUCERS; i++) {
        args[i].index = i;
        if (goro_chan_make(&args[i].ch, sizeof(uint64_t), cap) != 0) {
            fprintf(stderr, "select: goro_chan_make failed\n");
            exit(1);
        }
        cases[i] = (goro_case){.chan = args[i].ch, .op = GORO_RECV, .elem = &v};
    }
    goro_wg_add(&done, PRODUCERS);
    int64_t start = goro_now();
    for (uint64_t i = 0; i < PRODUCERS; i++)
        bench_spawn(producer, &args[i]);
    uint64_t received = 0;
    for (int open = PRODUCERS; open > 0;) {
        int k = goro_select(cases, PRODUCERS, GORO_FOREVER);
        if (k < 0) {
            fprintf(stderr, "select: goro_select: %s\n", goro_strerror(k));
            exit(1);
        }
        if (cases[k].result == GORO_ECLOSED) {
            cases[k].chan = NULL; /* never ready again */
            open--;
            continue;
        }
        if (v % PRODUCERS != (uint64_t)k || v / PRODUCERS != next[k]) {
            fprintf(stderr, "select: case %d got %" PRIu64 " out of order\n", k, v);
            exit(1);
        }
        next[k]++;
        received++;
    }
    int64_t ns = goro_now() - start;
    goro_wg_wait(&done);
    for (int i = 0; i < PRODUCERS; i++)
        goro_chan_release(args[i].ch);
    if (received != n / PRODUCERS * PRODUCERS) {
        fprintf(stderr, "select: received %" PRIu64 " items\n", received);
        exit(1);
    }
    printf("# %d Ps, %d producers, capacity %" PRIu64 "\n", goro_maxprocs(0), PRODUCERS, cap);
    bench_result("select_allp", (double)ns / (double)received, "ns");
}

int main(int argc, char **argv) {
    bench_flag flags[] = {
        {"n", &n, PRODUCERS, UINT64_C(1) << 40, "items in all"},
        {"cap", &cap, 0, 1 << 20, "capacity of each channel (0: unbuffered)"},
    };
    bench_parse(argc, argv, flags, sizeof flags / sizeof flags[0]);
    bench_run(argv[0], 0, bench_main, NULL);
    return 0;
}
