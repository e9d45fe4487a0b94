/*
 * context.c - building goroutine frames and switching between contexts (goro__switch,
 * inline in internal.h, wraps the assembly switch with the sanitizer hooks below).
 *
 * The register save and restore itself is in arch/<cpu>/switch.S: a switch is a call that
 * pushes the callee-saved registers, swaps stack pointers and pops the other context's.
 * No ucontext: swapcontext makes a sigprocmask system call on every switch.
 *
 * Sanitizers must be told about every stack change:
 *  - AddressSanitizer keeps per-stack bookkeeping (and fake stacks): start_switch_fiber
 *    before, finish_switch_fiber after, on the resumed side; a context that will never run
 *    again passes NULL so its fake stack is freed.
 *  - ThreadSanitizer models each goroutine as a fiber with its own shadow call stack and
 *    vector clock; switch_to_fiber before the switch. In the "thread" build switches
 *    synchronise (flag 0), so the runtime's own hand-offs through a thread-local M are
 *    ordered; in the race build they do not, and a fiber starts with an empty clock
 *    (race.h, R2).
 */
#include <string.h>

#include "internal.h"

#if GORO_ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#if GORO_TSAN
#include <sanitizer/tsan_interface.h>
#endif

void goro__ctx_start(void); /* arch/<cpu>/switch.S */

void *goro__ctx_init(char *lo, size_t size, void (*entry)(void *), void *arg) {
    /* The top GORO__STACK_HDR bytes hold the stack's free-list record (stack.c). */
    uintptr_t top = ((uintptr_t)lo + size - GORO__STACK_HDR) & ~(uintptr_t)15;
#if defined(__x86_64__)
    /* 80 bytes keep the stack 16-byte aligned at goro__ctx_start's call: the switch pops 64
     * bytes (control words, six registers, return address) and leaves top - 16. */
    uint64_t *f = (uint64_t *)(top - 80);
    memset(f, 0, 80);
    f[0] = goro__S.fpenv;              /* MXCSR's control bits and the x87 control word */
    f[4] = (uint64_t)(uintptr_t)entry; /* r12 */
    f[3] = (uint64_t)(uintptr_t)arg;   /* r13 */
    f[6] = 0;                          /* rbp: ends the frame chain */
    f[7] = (uint64_t)(uintptr_t)goro__ctx_start;
    return f;
#elif defined(__aarch64__)
    uint64_t *f = (uint64_t *)(top - 176);
    memset(f, 0, 176);
    f[0] = (uint64_t)(uintptr_t)entry;            /* x19 */
    f[1] = (uint64_t)(uintptr_t)arg;              /* x20 */
    f[10] = 0;                                    /* x29: ends the frame chain */
    f[11] = (uint64_t)(uintptr_t)goro__ctx_start; /* x30 */
    f[20] = goro__S.fpenv;                        /* FPCR */
    return f;
#else
#error "goro supports x86-64 and aarch64"
#endif
}

uint64_t goro__fpenv_read(void) {
#if defined(__x86_64__)
    uint32_t mxcsr;
    uint16_t cw;
    __asm__ volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(mxcsr), "=m"(cw));
    /* Only the control bits: the exception flags (bits 0-5) are status. */
    return (mxcsr & 0xFFC0u) | ((uint64_t)cw << 32);
#else
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    return fpcr;
#endif
}

void goro__fpenv_reset(void) {
    /* Unconditional: loading the control words overlaps with other work here, where
     * reading MXCSR to compare (stmxcsr) costs ~3 ns, 5% of a spawn. */
    uint64_t want = goro__S.fpenv;
#if defined(__x86_64__)
    uint32_t mxcsr = (uint32_t)want;
    uint16_t cw = (uint16_t)(want >> 32);
    __asm__ volatile("ldmxcsr %0\n\tfldcw %1" : : "m"(mxcsr), "m"(cw));
#else
    __asm__ volatile("msr fpcr, %0" : : "r"(want));
#endif
}

void goro__ctx_frame(void *sp, uintptr_t *fp, uintptr_t *pc) {
    const uint64_t *f = sp;
#if defined(__x86_64__)
    *fp = f[6];
    *pc = f[7];
#else
    *fp = f[10];
    *pc = f[11];
#endif
}

void goro__switch_started(void) {
#if GORO_ASAN
    __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
}

void goro__g_san_create(goro__g *g) {
#if GORO_TSAN
    if (!g->tsan_fiber)
        g->tsan_fiber = GORO_RACE ? goro__race_fiber_create() : __tsan_create_fiber(0);
#else
    (void)g;
#endif
}

void goro__g_san_destroy(goro__g *g) {
#if GORO_TSAN
    if (g->tsan_fiber) {
        __tsan_destroy_fiber(g->tsan_fiber);
        g->tsan_fiber = NULL;
    }
#else
    (void)g;
#endif
}

void goro__m_san_init(goro__m *m) {
#if GORO_TSAN
    m->g0.tsan_fiber = __tsan_get_current_fiber();
    goro__race_m_init(m);
#else
    (void)m;
#endif
}
