/*
 * ctxswitch.c - the floor under every hand-off: what the register switch alone costs,
 * with no scheduler around it. Two contexts on one thread switch to each other n times
 * through the runtime's goro__ctx_switch (callee-saved registers and the FPU control
 * words, arch/<cpu>/switch.S). On x86-64 it also times the same switch without the
 * control words (six pushes, the stack pointer swap, six pops), to show what MXCSR and
 * the x87 control word add. Figures: ns per switch, the best of --batches batches, so
 * that a loaded machine's preemptions drop out. No Go twin: Go has no public switch
 * (its gogo is what a yield costs there, bench/go/yield).
 *
 * White-box: it calls the internal switch of the static library, from inside a
 * goroutine, so that the runtime has read the thread's FPU state a fresh frame carries.
 */
#include "bench.h"

void *goro__ctx_switch(void **from_sp, void *to_sp, void *ret);
void *goro__ctx_init(char *lo, size_t size, void (*entry)(void *), void *arg);

static uint64_t n = 2000000; /* switches per batch (even) */
static uint64_t batches = 20;

#define STACK_BYTES (64 * 1024)

static void *main_sp, *peer_sp;

/* Both contexts run the same loop, so that every switch returns to the call site it was
 * made from, as the scheduler's do (one call site in run() for every park): otherwise
 * each return is mispredicted and costs more than the switch. noipa: one copy, called
 * from both contexts. */
#define SWITCH_LOOP(name, sw)                                                                      \
    static __attribute__((noipa)) void name(void **self, void **other, uint64_t count) {           \
        for (uint64_t i = 0; i < count; i++)                                                       \
            sw(self, *other, NULL);                                                                \
    }

SWITCH_LOOP(ctx_loop, goro__ctx_switch)

/* The peer context: hands control straight back, for ever. */
static void peer(void *arg) {
    (void)arg;
    ctx_loop(&peer_sp, &main_sp, UINT64_MAX);
}

#if defined(__x86_64__)
/* The switch without the FPU control words: same frame size, so that a context made by
 * goro__ctx_init (whose first 8 bytes hold the control words) can be resumed by it. */
void *bench_bare_switch(void **from_sp, void *to_sp, void *ret);
__asm__(".text\n"
        ".globl bench_bare_switch\n"
        ".type bench_bare_switch, @function\n"
        ".p2align 4\n"
        "bench_bare_switch:\n"
        "    pushq %rbp\n"
        "    pushq %rbx\n"
        "    pushq %r12\n"
        "    pushq %r13\n"
        "    pushq %r14\n"
        "    pushq %r15\n"
        "    subq $8, %rsp\n"
        "    movq %rdx, %rax\n"
        "    movq %rsp, (%rdi)\n"
        "    movq %rsi, %rsp\n"
        "    addq $8, %rsp\n"
        "    popq %r15\n"
        "    popq %r14\n"
        "    popq %r13\n"
        "    popq %r12\n"
        "    popq %rbx\n"
        "    popq %rbp\n"
        "    ret\n"
        ".size bench_bare_switch, .-bench_bare_switch\n");

SWITCH_LOOP(bare_loop, bench_bare_switch)

static void bare_peer(void *arg) {
    (void)arg;
    bare_loop(&peer_sp, &main_sp, UINT64_MAX);
}
#endif

/* The best ns per switch over the batches, switching with sw to a peer running entry. */
static double time_switch(void (*loop)(void **, void **, uint64_t), void (*entry)(void *)) {
    char *stack = malloc(STACK_BYTES);
    if (!stack) {
        fprintf(stderr, "ctxswitch: out of memory\n");
        exit(1);
    }
    peer_sp = goro__ctx_init(stack, STACK_BYTES, entry, NULL);
    double best = 0;
    for (uint64_t b = 0; b < batches; b++) {
        int64_t start = goro_now();
        loop(&main_sp, &peer_sp, n / 2);
        double ns = (double)(goro_now() - start) / (double)(n / 2 * 2);
        if (b == 0 || ns < best)
            best = ns;
    }
    /* The peer stays suspended in its loop and is never resumed: its stack can go. */
    free(stack);
    return best;
}

static void bench_main(void *arg) {
    (void)arg;
    bench_result("ns_per_ctx_switch", time_switch(ctx_loop, peer), "ns");
#if defined(__x86_64__)
    bench_result("ns_per_bare_switch", time_switch(bare_loop, bare_peer), "ns");
#else
    printf("# no bare switch variant on this architecture: FPCR is read into a register\n");
#endif
}

int main(int argc, char **argv) {
    bench_flag flags[] = {{"n", &n, 2, UINT64_C(1) << 40, "switches per batch"},
                          {"batches", &batches, 1, 1000, "batches; the best counts"}};
    bench_parse(argc, argv, flags, sizeof flags / sizeof flags[0]);
    bench_run(argv[0], 1, bench_main, NULL);
    return 0;
}
