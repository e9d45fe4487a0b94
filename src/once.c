/*
 * once.c - goro_once, Go's sync.Once: run a function exactly once, and let nobody past
 * until it has returned.
 *
 * Fields (see the struct in goro.h)
 *  done   [atomic; written under m] 0 until the function has returned, then 1 forever.
 *  m      goro_mutex; held by the goroutine running the function, so that concurrent
 *         callers park on it until the function has returned.
 *
 * Invariants
 *  (O1) done becomes 1 only after fn(arg) has returned, with a release store; a caller
 *       that reads 1 with an acquire load sees everything fn wrote, and returns.
 *  (O2) fn runs under m, after a check of done under m: of all callers that get m, only
 *       the first finds done 0, so fn runs once. The others wait on m, then see done 1.
 *
 * C has no panic, so there is nothing to unwind: if fn ends its goroutine (goro_exit), m
 * stays locked and done 0, and every later caller parks on m for good. Go's Once marks
 * itself done when fn panics; there is no such exit to catch here.
 *
 * Rejected: a compare-and-swap on done by the first caller, the others returning at once
 * (they would return before fn has finished, the very bug Once exists to prevent); a
 * spin until done (the caller's thread would be held instead of the goroutine parked).
 *
 * See also: sync.c (goro_mutex).
 */
#include "atomic.h"
#include "internal.h"

__attribute__((noinline)) static void once_slow(goro_once *o, void (*fn)(void *), void *arg) {
    goro_mutex_lock(&o->m);
    /* Relaxed: done is only written under m, which we hold (O2). */
    if (!goro__load_relaxed(&o->done)) {
        fn(arg);
        goro__race_release(&o->done); /* fn before every goro_once_do returns (race.h) */
        /* Release pairs with the acquire load in goro_once_do's fast path (O1). */
        goro__store_release(&o->done, 1);
    }
    goro_mutex_unlock(&o->m);
}

void goro_once_do(goro_once *o, void (*fn)(void *), void *arg) {
    /* Acquire pairs with the release store in once_slow (O1). The only cost once done. */
    if (!GORO__LIKELY(goro__load_acquire(&o->done)))
        once_slow(o, fn, arg);
    goro__race_acquire(&o->done);
}
