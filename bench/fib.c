/*
 * fib.c - fib(27) the wasteful concurrent way: every call fib(n) with n >= 2 spawns a
 * goroutine for fib(n-1), computes fib(n-2) itself, then waits for the child's result on
 * a channel (capacity 1). That is 317810 goroutines and channels for fib(27) = 196418,
 * which is checked (exits 1 if wrong). All Ps. Figure: wall time in ms. Go twin: go/fib.
 */
#include "bench.h"

static uint64_t n = 27;

typedef struct call {
    uint64_t n;
    goro_chan *result; /* the child holds one reference and releases it after its send */
} call;

static uint64_t fib(uint64_t k);

static void child(void *arg) {
    call *c = arg; /* on the parent's stack, alive until the parent has the result */
    goro_chan *result = c->result;
    uint64_t v = fib(c->n);
    goro_chan_send(result, &v);
    goro_chan_release(result);
}

static uint64_t fib(uint64_t k) {
    if (k < 2)
        return k;
    call c = {.n = k - 1};
    if (goro_chan_make(&c.result, sizeof(uint64_t), 1) != 0) {
        fprintf(stderr, "fib: goro_chan_make failed\n");
        exit(1);
    }
    goro_chan *result = c.result;
    goro_chan_retain(result); /* the child's reference; the made one is ours */
    bench_spawn(child, &c);
    uint64_t b = fib(k - 2), a = 0;
    goro_chan_recv(result, &a);
    goro_chan_release(result);
    return a + b;
}

static void bench_main(void *arg) {
    int *status = arg;
    int64_t start = goro_now();
    uint64_t got = fib(n);
    int64_t ns = goro_now() - start;
    uint64_t a = 0, b = 1;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t t = a + b;
        a = b;
        b = t;
    }
    printf("# %d Ps, fib(%" PRIu64 ") = %" PRIu64 "\n", goro_maxprocs(0), n, got);
    if (got != a) {
        fprintf(stderr, "fib: fib(%" PRIu64 ") = %" PRIu64 ", want %" PRIu64 "\n", n, got, a);
        *status = 1;
        return;
    }
    bench_result("fib_ms", (double)ns / 1e6, "ms");
}

int main(int argc, char **argv) {
    bench_flag flags[] = {{"n", &n, 0, 40, "compute fib(n)"}};
    bench_parse(argc, argv, flags, sizeof flags / sizeof flags[0]);
    int status = 0;
    bench_run(argv[0], 0, bench_main, &status);
    return status;
}
