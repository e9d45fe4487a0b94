/*
 * sched_fpenv: the floating-point control state belongs to the goroutine.
 *
 * The ABI makes the rounding mode (x86-64: MXCSR's control bits and the x87 control word;
 * aarch64: FPCR) callee-saved, so a goroutine that sets it keeps it across every switch,
 * on whichever thread it resumes, and the goroutines it switches to keep theirs.
 *
 * Goroutines in each of the four rounding modes (and, on x86-64, some with SSE
 * flush-to-zero set directly in MXCSR) yield and sleep in a loop among goroutines in the
 * default mode; after every switch each checks its mode with fegetround and with
 * arithmetic whose result depends on it (1 + 2^-60 rounds up only upwards).
 *
 * A new goroutine starts with the state goro_run's caller had, also when it runs on the
 * stack (and the context) of a goroutine that changed its state and returned: goroutines
 * that set FE_UPWARD (and flush-to-zero) and return alternate with goroutines that check
 * they start in the default mode.
 */
#include "testutil.h"

#include <fenv.h>
#include <stdatomic.h>
#if defined(__x86_64__)
#include <xmmintrin.h>
#endif

#define ROUNDS 2000

static const int modes[] = {FE_TONEAREST, FE_UPWARD, FE_DOWNWARD, FE_TOWARDZERO};
static _Atomic long checks;
static goro_waitgroup wg = GORO_WAITGROUP_INIT;

/* 1 + 2^-60 is between 1 and the next double: it rounds up only in FE_UPWARD. volatile
 * keeps the compiler from folding it at compile time in the default mode. */
static int rounds_up(void) {
    volatile double one = 1.0, tiny = 0x1p-60;
    return one + tiny > 1.0;
}

static void check_mode(int mode, int ftz, int self, int round) {
    int got = fegetround();
    CHECKF(got == mode, "goroutine %d, round %d: rounding mode %#x, set %#x", self, round, got,
           mode);
    CHECKF(rounds_up() == (mode == FE_UPWARD),
           "goroutine %d, round %d: arithmetic does not round as mode %#x says", self, round, mode);
#if defined(__x86_64__)
    int got_ftz = _MM_GET_FLUSH_ZERO_MODE() == _MM_FLUSH_ZERO_ON;
    CHECKF(got_ftz == ftz, "goroutine %d, round %d: MXCSR flush-to-zero %d, set %d", self, round,
           got_ftz, ftz);
#else
    (void)ftz;
#endif
    atomic_fetch_add_explicit(&checks, 1, memory_order_relaxed);
}

static void worker(void *arg) {
    int self = (int)(intptr_t)arg;
    int mode = modes[self % 4];
    int ftz = 0;
    CHECK(fesetround(mode) == 0);
#if defined(__x86_64__)
    /* SSE only, straight into MXCSR: the x87 control word does not see it. */
    if (self % 3 == 1) {
        _MM_SET_FLUSH_ZERO_MODE(_MM_FLUSH_ZERO_ON);
        ftz = 1;
    }
#endif
    for (int r = 0; r < ROUNDS; r++) {
        check_mode(mode, ftz, self, r);
        if (r % 100 == 99)
            goro_sleep(10 * TU_US); /* through the timer and maybe another thread */
        else
            goro_yield();
    }
    check_mode(mode, ftz, self, ROUNDS);
    goro_wg_done(&wg);
}

static void dirty(void *arg) {
    (void)arg;
    CHECK(fesetround(FE_UPWARD) == 0);
#if defined(__x86_64__)
    _MM_SET_FLUSH_ZERO_MODE(_MM_FLUSH_ZERO_ON);
#endif
    goro_wg_done(&wg);
}

static void clean(void *arg) {
    check_mode(FE_TONEAREST, 0, (int)(intptr_t)arg, 0);
    goro_wg_done(&wg);
}

static void test_main(void *arg) {
    (void)arg;
    const int pairs = 2000;
    for (int i = 0; i < pairs; i++) {
        goro_wg_add(&wg, 2);
        CHECK(goro_spawn(dirty, NULL) == 0);
        CHECK(goro_spawn(clean, (void *)(intptr_t)(1000 + i)) == 0);
        if (i % 16 == 15)
            goro_wg_wait(&wg); /* now and then, so that stacks are reused */
    }
    goro_wg_wait(&wg);
    CHECK_EQ(atomic_load(&checks), (long)pairs);
    atomic_store(&checks, 0);

    const int n = 24;
    goro_wg_add(&wg, n);
    for (int i = 0; i < n; i++)
        CHECK(goro_spawn(worker, (void *)(intptr_t)i) == 0);
    goro_wg_wait(&wg);
    /* main never changed its mode. */
    check_mode(FE_TONEAREST, 0, -1, 0);
    CHECK_EQ(atomic_load(&checks), (long)n * (ROUNDS + 1) + 1);
    printf("%d Ps: %d goroutines kept their rounding modes over %ld checks\n", goro_maxprocs(0), n,
           atomic_load(&checks));
}

int main(void) {
    int rc = goro_run(NULL, test_main, NULL);
    CHECKF(rc == 0, "goro_run: %s", goro_strerror(rc));
    return tu_pass("sched_fpenv");
}
