/*
 * stats.c - goro_stats_get: the runtime's counters as one snapshot.
 *
 * Every figure is read from counters the scheduler keeps anyway (relaxed loads of atomic
 * fields; only the per-M switch counts need sched.lock, to walk the M list). Nothing is
 * counted for the sake of statistics on a hot path: per-P counters are written by their
 * owner with relaxed stores, the global ones are the scheduler's own bookkeeping (idle
 * Ps and Ms, spinning and blocking threads). So the snapshot is not atomic: while other
 * threads run, "runnable" is an estimate and "parked" is derived (live minus runnable
 * minus running), clamped at zero.
 *
 * See also: schedtrace.c, which prints the same counters periodically (GORO_DEBUG).
 */
#include <string.h>

#include "atomic.h"
#include "internal.h"

void goro_stats_get(goro_stats *out) {
    memset(out, 0, sizeof *out);
    if (!goro__S.allp)
        return;
    int32_t procs = goro__load_relaxed(&goro__S.gomaxprocs);
    for (int i = 0; i < GORO__MAXPROCS_LIMIT && goro__S.allp[i]; i++) {
        goro__p *p = goro__S.allp[i];
        out->goroutines += goro__load_relaxed(&p->ngoroutines);
        out->spawned += goro__load_relaxed(&p->nspawned);
        out->steals += goro__load_relaxed(&p->nsteals);
        if (i < procs) {
            int64_t nl = goro__load_acquire(&p->lifo.bottom) - goro__load_acquire(&p->lifo.top);
            out->runnable += goro__runq_len(&p->runq) + (nl > 0 ? nl : 0) +
                             (goro__load_relaxed(&p->runnext) != NULL);
        }
    }
    out->runnable += goro__load_relaxed(&goro__S.runq_size);
    if (GORO__UNLIKELY(goro__replay_on))
        out->runnable += (int64_t)goro__replay_queued(); /* deterministic mode (replay.c) */
    pthread_mutex_lock(&goro__S.lock);
    for (goro__m *m = goro__S.allm; m; m = m->alllink)
        out->switches += goro__load_relaxed(&m->nswitches);
    pthread_mutex_unlock(&goro__S.lock);
    int64_t running = procs - goro__load_relaxed(&goro__S.npidle);
    out->parked = out->goroutines - out->runnable - running;
    if (out->parked < 0)
        out->parked = 0;
    out->procs = procs;
    out->idle_procs = goro__load_relaxed(&goro__S.npidle);
    out->threads = goro__load_relaxed(&goro__S.mcount);
    out->threads_idle = goro__load_relaxed(&goro__S.nmidle);
    out->threads_blocking = goro__load_relaxed(&goro__S.nblocking);
    out->threads_spinning = goro__load_relaxed(&goro__S.nmspinning);
    out->handoffs = goro__load_relaxed(&goro__S.nhandoffs);
    out->preemptions = goro__load_relaxed(&goro__S.npreempt);
    out->netpoll_waiting = goro__load_relaxed(&goro__S.npollwait);
    int why;
    out->netpoll_backend = goro__netpoll_backend(&why);
    out->netpoll_fallback = why;
    goro__stack_stats(&out->stacks, &out->stack_bytes);
    goro__compact_stats(out);
}
