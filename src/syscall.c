/*
 * syscall.c - blocking calls (Go's entersyscall/exitsyscall).
 *
 * goro_blocking_begin leaves the P with the M but marks it GORO__P_SYSCALL with a fresh
 * count (runtime.h): from then on the monitor (sysmon.c) or a stop-the-world may take it
 * with a CAS from exactly that value. goro_blocking_end CASes the same value back to
 * "not in a call"; if that fails the P was taken and may be running goroutines on
 * another M, so this M forgets it and waits for a P (goro__repossess).
 *
 * The common case of a call that returns quickly thus costs one store and one CAS on a
 * line only this M and the monitor touch, and no wake-up.
 *
 * Between begin and end the M keeps m->locks raised, so the preemption signal leaves it
 * alone: its P is the monitor's to take through p->status only (sysmon.c, Y1).
 */
#include "atomic.h"
#include "internal.h"
#include "tracer.h"

void goro_blocking_begin(void) {
    goro__m *m = goro__getm();
    if (!m || !m->curg)
        return;
    goro__g *g = m->curg;
    if (g->blocking_depth++ > 0) {
        if (g->blocking_depth == 0)
            goro__fatal("goroutine %llu: goro_blocking_begin nested too deeply",
                        (unsigned long long)goro__g_id(g));
        return;
    }
    goro__acquirem_m(m);
    if (GORO__UNLIKELY(!m->p))
        m = goro__repossess(m);
    goro__p *p = m->p;
    uint32_t st = goro__load_relaxed(&p->status);
    GORO_ASSERT(!(st & GORO__P_SYSCALL));
    m->syscall_seq = (st + 2) | GORO__P_SYSCALL;
    goro__store_relaxed(&g->wait_since, goro__load_relaxed(&goro__S.coarse_now));
    goro__store_relaxed(&g->status, GORO__G_SYSCALL);
    goro__add_relaxed(&goro__S.nblocking, 1);
    goro__trace_syscall_enter(m, g); /* p is still ours */
    /* Release: whoever takes p by CAS (acquire) sees this M's last use of it. */
    goro__store_release(&p->status, m->syscall_seq);
}

void goro_blocking_end(void) {
    goro__m *m = goro__getm();
    if (!m || !m->curg)
        return;
    goro__g *g = m->curg;
    if (g->blocking_depth == 0)
        goro__fatal("goroutine %llu: goro_blocking_end without goro_blocking_begin",
                    (unsigned long long)goro__g_id(g));
    if (--g->blocking_depth > 0)
        return;
    goro__add_relaxed(&goro__S.nblocking, -1);
    goro__store_relaxed(&g->status, GORO__G_RUNNING);
    uint32_t st = m->syscall_seq;
    /* Acq-rel: pairs with the taker's CAS (sysmon.c, proc.c's stop-the-world). */
    if (GORO__UNLIKELY(!goro__cas_acqrel(&m->p->status, &st, st & ~GORO__P_SYSCALL))) {
        m->p = NULL; /* taken: another M may be running it */
        m = goro__repossess(m);
    }
    goro__trace_syscall_exit(m, g);
    goro__releasem(m);
}
