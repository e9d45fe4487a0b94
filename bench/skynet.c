/*
 * skynet.c - the skynet benchmark: a tree of goroutines, each node spawning 10 children,
 * with 1,000,000 leaves (1,111,111 goroutines in all). Leaf i sends i up its parent's
 * channel; each parent sums its 10 children's numbers and sends the sum up; the root's
 * sum must be 499999500000 (exits 1 otherwise). All Ps. Figures: wall time in ms, and the
 * peak resident set size (VmHWM in /proc/self/status) in MB. Go twin: go/skynet.
 *
 * Each node's channel (capacity 10, as in the original) is made by the node and shared
 * with its children by reference counting: every child holds a reference and releases it
 * after its send, so whoever of parent and children finishes last frees the channel.
 */
#include "bench.h"

#define FANOUT 10

static uint64_t leaves = 1000000; /* a power of 10 */

typedef struct node {
    goro_chan *up; /* the parent's channel; this node holds one reference */
    uint64_t num;  /* the first leaf number below this node */
    uint64_t size; /* leaves below this node */
} node;

static void skynet(void *arg) {
    node *self = arg;
    goro_chan *up = self->up;
    uint64_t sum = self->num;
    if (self->size > 1) {
        /* The children read their node from this frame, which lives until all have sent. */
        node children[FANOUT];
        goro_chan *rc;
        if (goro_chan_make(&rc, sizeof(uint64_t), FANOUT) != 0) {
            fprintf(stderr, "skynet: goro_chan_make failed\n");
            exit(1);
        }
        uint64_t step = self->size / FANOUT;
        for (uint64_t i = 0; i < FANOUT; i++) {
            children[i] = (node){.up = rc, .num = self->num + i * step, .size = step};
            goro_chan_retain(rc);
            bench_spawn(skynet, &children[i]);
        }
        sum = 0;
        for (int i = 0; i < FANOUT; i++) {
            uint64_t v;
            goro_chan_recv(rc, &v);
            sum += v;
        }
        goro_chan_release(rc);
    }
    goro_chan_send(up, &sum);
    goro_chan_release(up);
}

/* The peak resident set size in bytes (VmHWM), or -1. */
static int64_t peak_rss_bytes(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    char line[256];
    long long kb = -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmHWM: %lld kB", &kb) == 1)
            break;
    fclose(f);
    return kb < 0 ? -1 : kb * 1024;
}

static void bench_main(void *arg) {
    int *status = arg;
    goro_chan *root;
    if (goro_chan_make(&root, sizeof(uint64_t), 1) != 0) {
        fprintf(stderr, "skynet: goro_chan_make failed\n");
        exit(1);
    }
    node top = {.up = root, .num = 0, .size = leaves};
    int64_t start = goro_now();
    goro_chan_retain(root);
    bench_spawn(skynet, &top);
    uint64_t sum = 0;
    goro_chan_recv(root, &sum);
    int64_t ns = goro_now() - start;
    goro_chan_release(root);
    uint64_t want = leaves * (leaves - 1) / 2;
    printf("# %d Ps, %" PRIu64 " leaves, sum %" PRIu64 "\n", goro_maxprocs(0), leaves, sum);
    if (sum != want) {
        fprintf(stderr, "skynet: sum %" PRIu64 ", want %" PRIu64 "\n", sum, want);
        *status = 1;
        return;
    }
    bench_result("skynet_ms", (double)ns / 1e6, "ms");
    bench_result("skynet_peak_rss", (double)peak_rss_bytes() / (1024.0 * 1024.0), "MB");
}

int main(int argc, char **argv) {
    bench_flag flags[] = {{"leaves", &leaves, 1, 100000000, "leaves, a power of 10"}};
    bench_parse(argc, argv, flags, sizeof flags / sizeof flags[0]);
    uint64_t p = 1;
    while (p < leaves)
        p *= FANOUT;
    if (p != leaves) {
        bench_usage(argv[0], flags, sizeof flags / sizeof flags[0]);
        return 2;
    }
    int status = 0;
    bench_run(argv[0], 0, bench_main, &status);
    return status;
}
