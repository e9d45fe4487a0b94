/*
 * fatal.c - how the runtime fails: goro__fatal for misuse and broken invariants, and the
 * names of the error codes it returns otherwise (goro_strerror).
 *
 * A fatal error prints "goro: fatal: <what>" and a dump of every goroutine (dump.c) to
 * stderr, then aborts. It may run in a signal handler (a stack overflow is reported from
 * the SIGSEGV handler, on the M's alternate stack), so it formats into a stack buffer and
 * writes with write(2): no stdio, no allocation, no lock. The dump it prints reads only
 * the states of other goroutines, not their stacks, since the world is not stopped.
 *
 * Invariant
 *  (F1) A fatal error raised while one is being reported (the dump itself crashing, or
 *       two threads failing at once) prints its line and aborts without a second dump,
 *       so the report cannot recurse.
 *
 * See also: dump.c (the dump, goro__out), os_linux.c (the signal handlers that call it).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic.h"
#include "internal.h"

void goro__fatal(const char *fmt, ...) {
    static uint32_t dying; /* [atomic] someone is reporting a fatal error (F1) */
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if (n > (int)sizeof buf - 2)
        n = (int)sizeof buf - 2;
    buf[n++] = '\n';
    goro__out(2, "goro: fatal: %.*s", n, buf);
    if (goro__xchg_acqrel(&dying, 1) == 0) {
        goro__out(2, "\n");
        goro__dump_locked(2, false);
    }
    abort();
}

const char *goro_strerror(int code) {
    switch (code) {
    case 0:
        return "success";
    case GORO_ECLOSED:
        return "channel closed";
    case GORO_ETIMEDOUT:
        return "deadline exceeded";
    case GORO_EAGAIN:
        return "operation would wait";
    case GORO_ECANCELED:
        return "canceled: descriptor closed";
    default:
        if (code < 0 && code > -4096)
            return strerror(-code);
        return "unknown error";
    }
}
