/*
 * sysmon.c - the monitor thread (Go's sysmon): it runs without a P, watches the Ps and
 * takes a P away from an M that cannot run goroutines with it for a while.
 *
 * Two cases, both seen by sampling each P every 20 us (more slowly when nothing happens):
 *  - Blocking calls. goro_blocking_begin (syscall.c) marks the P GORO__P_SYSCALL. A P
 *    seen in the same blocking call for more than 20 us, while there is other work for
 *    it (its queue, the global queue, a due timer) or for 10 ms in any case, is taken by
 *    a CAS of p->status and handed off (goro__handoffp): another M runs it. The blocked M
 *    finds out in goro_blocking_end, when its CAS fails, and waits for a P.
 *  - Hogs. A goroutine that runs more than 10 ms without a switch while others wait
 *    for its P (a goroutine is never preempted by force: C code cannot be stopped at an
 *    arbitrary instruction and resumed on another thread safely, it may hold a libc lock)
 *    keeps its thread, but the P goes to another M. The monitor sends the M the
 *    preemption signal; the handler, on that thread, takes m->p only if it interrupted
 *    user code (m->locks == 0: no runtime code is using the P), stores it in
 *    m->preempt_p, and returns. The monitor collects it from there at its next round and
 *    hands it off; the goroutine goes on computing without a P, and at its next runtime
 *    entry that needs one (goro__repossess) takes back preempt_p if the monitor has not
 *    yet (and then waits in the global queue while its P runs the others, Go's
 *    gopreempt_m), or an idle P, or waits in the global queue. A hog that keeps making
 *    short blocking calls (m->locks raised most of the time) loses its P by the CAS of
 *    the first case, caught during one of the calls.
 *
 * Invariants
 *  (Y1) The monitor writes only its own per-P notes (sysmon_p) and, to hand a P off,
 *       takes it first by a successful CAS of p->status (blocking) or xchg of
 *       m->preempt_p (hog): exactly one party owns a P at any time.
 *  (Y2) The handler changes m->p only while m->locks == 0. Every runtime path reading
 *       m->p from a goroutine does so inside goro__acquirem (internal.h), so the P cannot
 *       go away under it.
 *  (Y3) A hog loses its P for a stop of the world or a due timer at once (after 10 ms),
 *       but for queued goroutines only while a CPU is free and fewer than GOMAXPROCS
 *       threads run goroutines: the hog keeps its thread, so the handoff adds a runner,
 *       which with every CPU busy is not a CPU more, and beyond GOMAXPROCS is more
 *       parallelism than the program asked for. (A due timer still gets one: its
 *       goroutine runs beside the hog.)
 *
 * Idle: after 50 rounds with nothing to do the delay doubles up to 10 ms; once there,
 * with every P idle and no blocking call, the monitor sleeps until a P gets busy
 * (goro__pidleget wakes it), so an idle program costs no CPU, and it goes on at 10 ms
 * after that wake (a server's Ps go idle and busy all the time).
 *
 * Each round also publishes a coarse clock (sched.coarse_now) that goro__park stamps
 * "waiting since" with, for dumps, instead of reading the clock on every park.
 *
 * The monitor also compacts the stacks of goroutines parked for a while (compact.c),
 * and does not sleep deeply while some will come due.
 *
 * The monitor also polls the network when nobody has for 10 ms (a program whose Ps
 * never run dry would not look otherwise) and puts what it finds on the global queue.
 *
 * With GORO_DEBUG=schedtrace=MS it writes the scheduler's line every MS milliseconds
 * (schedtrace.c): its sleeps end no later than the next line is due, and it skips the
 * deep sleep, so the lines go on while the program is idle.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "atomic.h"
#include "internal.h"

#define SYSMON_MIN_DELAY 20000     /* 20 us */
#define SYSMON_MAX_DELAY 10000000  /* 10 ms */
#define SYSCALL_HANDOFF_NS 20000   /* 20 us in a blocking call with work waiting */
#define SYSCALL_ANYWAY_NS 10000000 /* 10 ms in a blocking call */
#define PREEMPT_NS 10000000        /* 10 ms running without a switch */
#define POLL_STALE_NS 10000000     /* 10 ms without a netpoll */

/* What the monitor last saw of a P. [monitor thread only] */
typedef struct sysmon_p {
    uint32_t syscall_status; /* p->status seen in a blocking call */
    int64_t syscall_since;
    goro__m *m;         /* the M that held the P */
    uint64_t nswitches; /* its switch count then */
    int64_t run_since;  /* when that was first seen */
} sysmon_p;

static sysmon_p *notes; /* GORO__MAXPROCS_LIMIT entries */

/* Runs on the thread of an M the monitor signalled (Y2). */
void goro__preempt_handler(void) {
    goro__m *m = goro__getm();
    if (!m || m->locks != 0 || !m->curg || !m->p)
        return;
    goro__p *p = m->p;
    m->p = NULL;
    /* Release: the monitor that takes p sees everything this M did with it. */
    goro__store_release(&m->preempt_p, p);
}

enum { NOTHING = 0, RETOOK, PENDING /* a hog not preempted yet: come back soon */ };

/* Whether another thread may run goroutines: fewer threads run them than there are CPUs
 * and than GOMAXPROCS (a preempted hog goes on running without a P, so handing its P to
 * another thread makes one more runner). */
static bool may_add_runner(void) {
    int running = 0;
    pthread_mutex_lock(&goro__S.lock);
    for (goro__m *m = goro__S.allm; m; m = m->alllink) {
        goro__g *g = goro__load_relaxed(&m->curg);
        if (g && goro__load_relaxed(&g->status) == GORO__G_RUNNING)
            running++;
    }
    pthread_mutex_unlock(&goro__S.lock);
    int32_t procs = goro__load_relaxed(&goro__S.gomaxprocs);
    return running < goro__S.ncpu && running < procs;
}

/* Whether the goroutine running on p for too long holds up something (Y3): a stop of the
 * world, a due timer (someone waits for a deadline or a tick), or queued goroutines
 * when a CPU is free to run them. Queued goroutines alone do not justify a handoff when
 * every CPU is busy: the hog keeps computing on its thread, so a new thread for its P
 * would only share the CPUs, and lose throughput to switching (64 goroutines computing
 * pi on 2 Ps would otherwise run on 3 and more threads). Nor when GOMAXPROCS threads
 * already run goroutines: the program asked for no more parallelism than that (with one
 * P, 8 goroutines computing pi for 70 ms each ran two at a time, on two CPUs). */
static bool hog_blocks_work(goro__p *p, int64_t now) {
    if (goro__load_relaxed(&goro__S.gcwaiting))
        return true;
    int64_t t0 = goro__load_relaxed(&p->timer0);
    if (t0 && t0 <= now)
        return true;
    return goro__p_has_work(p, now) && may_add_runner();
}

/* Takes P i from a blocking call or a hog if it should be. */
static int retake_one(int32_t i, int64_t now) {
    goro__p *p = goro__load_relaxed(&goro__S.allp[i]); /* published by gomaxprocs (below) */
    sysmon_p *n = &notes[i];
    goro__m *m = goro__load_acquire(&p->m); /* pairs with goro__acquirep */
    /* A P the preemption handler gave up (Y1). */
    if (m && goro__load_relaxed(&m->preempt_p) == p) {
        goro__p *taken = goro__xchg_acqrel(&m->preempt_p, NULL);
        if (taken == p) {
            goro__add_relaxed(&goro__S.npreempt, 1);
            goro__handoffp(p);
            return RETOOK;
        }
        if (taken) /* cannot happen: an M's preempt_p is its own P */
            goro__fatal("runtime: preempted P mismatch");
    }
    uint32_t st = goro__load_acquire(&p->status);
    if ((st & GORO__P_SYSCALL) && st == n->syscall_status) {
        /* The same blocking call as last round. */
        int64_t in = now - n->syscall_since;
        if (in < SYSCALL_HANDOFF_NS || (in < SYSCALL_ANYWAY_NS && !goro__p_has_work(p, now)))
            return NOTHING;
        /* Acq-rel CAS (Y1): pairs with goro_blocking_end's CAS; whoever wins owns p. */
        if (!goro__cas_acqrel(&p->status, &st, st & ~GORO__P_SYSCALL))
            return NOTHING;
        goro__add_relaxed(&goro__S.nhandoffs, 1);
        goro__handoffp(p);
        return RETOOK;
    }
    if (st & GORO__P_SYSCALL) {
        /* A new blocking call; a goroutine making many short ones is still checked for
         * hogging below. */
        n->syscall_status = st;
        n->syscall_since = now;
    }
    if (!m)
        return NOTHING;
    goro__g *g = goro__load_relaxed(&m->curg);
    uint64_t sw = goro__load_relaxed(&m->nswitches);
    if (m != n->m || sw != n->nswitches || !g) {
        n->m = m;
        n->nswitches = sw;
        n->run_since = now;
        return NOTHING;
    }
    if (now - n->run_since < PREEMPT_NS || !hog_blocks_work(p, now))
        return NOTHING;
    if (st & GORO__P_SYSCALL) {
        /* A hog making blocking calls, which raise m->locks so the signal would find
         * runtime code running: take the P by CAS during one of the calls, as from a long
         * call; its goro_blocking_end then waits for a P (Y1). The calls may be short,
         * so keep trying for a few microseconds. */
        for (int tries = 0; tries < 256; tries++) {
            if ((st & GORO__P_SYSCALL) &&
                goro__cas_acqrel(&p->status, &st, st & ~GORO__P_SYSCALL)) {
                goro__add_relaxed(&goro__S.npreempt, 1);
                goro__handoffp(p);
                return RETOOK;
            }
            goro__cpu_relax();
            st = goro__load_acquire(&p->status);
        }
        return PENDING;
    }
    /* Ask again in a millisecond if the handler found runtime code running. */
    n->run_since = now - PREEMPT_NS + 1000000;
    syscall(SYS_tgkill, getpid(), m->tid, GORO__SIGPREEMPT);
    return PENDING;
}

static void *sysmon_main(void *unused) {
    (void)unused;
    int64_t delay = SYSMON_MIN_DELAY;
    int idle = 0;
    bool compact_busy = false; /* parked goroutines will come due for compaction */
    int64_t trace_every = goro__debug.schedtrace_ms * 1000000;
    int64_t next_trace = trace_every ? goro__debug.start + trace_every : INT64_MAX;
    while (!goro__load_acquire(&goro__S.exiting)) {
        int64_t wake = goro__nanotime() + delay;
        goro__note_sleep(&goro__S.sysmon_note, wake < next_trace ? wake : next_trace);
        goro__note_clear(&goro__S.sysmon_note);
        if (goro__load_acquire(&goro__S.exiting))
            break;
        /* Acquire: pairs with goro__start_the_world's seq-cst store of gomaxprocs, after
         * it wrote the allp entries below it. Ps are never freed while running. */
        int32_t procs = goro__load_acquire(&goro__S.gomaxprocs);
        if (delay == SYSMON_MAX_DELAY && !trace_every && !compact_busy &&
            goro__load_relaxed(&goro__S.npidle) == procs &&
            !goro__load_relaxed(&goro__S.nblocking)) {
            /* Nothing ran for a while and nothing runs: sleep until a P gets busy
             * (goro__pidleget). Only after the back-off reached its longest delay: a
             * server's Ps go idle and busy thousands of times a second, and waking
             * the monitor each time would cost more than its rounds. */
            pthread_mutex_lock(&goro__S.lock);
            bool deep = goro__S.npidle == goro__S.gomaxprocs &&
                        !goro__load_relaxed(&goro__S.nblocking) &&
                        !goro__load_relaxed(&goro__S.exiting);
            goro__S.sysmon_deep = deep;
            pthread_mutex_unlock(&goro__S.lock);
            if (deep) {
                /* Until a P gets busy, or the compactor's next pass is due: goroutines
                 * may have parked, and come due, just before every P went idle (the
                 * last round's compact_busy does not know of them). */
                int64_t due = goro__compact_due();
                bool woken = goro__note_sleep(&goro__S.sysmon_note, due);
                if (woken) {
                    goro__note_clear(&goro__S.sysmon_note);
                    /* Woken by a P getting busy: go on at the slow pace (hogs are a
                     * 10 ms matter; a handoff or a preemption brings the fast rounds
                     * back). A server's Ps go idle and busy all the time; restarting at
                     * 20 us after every wake cost ~1000 wake-ups a second. */
                    continue;
                }
                /* The pass is due: no longer deep (a P getting busy meanwhile finds
                 * the flag clear and does not wake us), then a round. */
                pthread_mutex_lock(&goro__S.lock);
                bool raced = !goro__S.sysmon_deep; /* a P got busy and woke us just now */
                goro__S.sysmon_deep = false;
                pthread_mutex_unlock(&goro__S.lock);
                if (raced) {
                    goro__note_sleep(&goro__S.sysmon_note, GORO_FOREVER); /* its wake-up */
                    goro__note_clear(&goro__S.sysmon_note);
                }
                goro__store_relaxed(&goro__S.coarse_now, goro__nanotime_coarse());
            }
        }
        int64_t now = goro__nanotime();
        goro__store_relaxed(&goro__S.coarse_now, goro__nanotime_coarse());
        if (now >= next_trace) {
            goro__schedtrace(now);
            /* From this line, not from when it was due: a late round does not bring the
             * next line closer (nor a stopped process a burst of them). */
            next_trace = now + trace_every;
        }
        bool acted = false;
        if (goro__load_relaxed(&goro__S.npollwait) && !goro__load_relaxed(&goro__S.polling) &&
            now - goro__load_relaxed(&goro__S.lastpoll) > POLL_STALE_NS) {
            goro__g *none; /* no P: what it finds goes to the global queue */
            acted = goro__netpoll_inject(NULL, &none) > 0;
        }
        for (int32_t i = 0; i < procs; i++)
            acted |= retake_one(i, now) != NOTHING;
        acted |= goro__compact_round(now, &compact_busy);
        if (acted) {
            idle = 0;
            delay = SYSMON_MIN_DELAY;
        } else if (++idle > 50 && delay < SYSMON_MAX_DELAY) {
            delay *= 2;
            if (delay > SYSMON_MAX_DELAY)
                delay = SYSMON_MAX_DELAY;
        }
    }
    return NULL;
}

void goro__sysmon_start(void) {
    notes = calloc(GORO__MAXPROCS_LIMIT, sizeof *notes);
    if (!notes)
        goro__fatal("out of memory starting the monitor thread");
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 128 * 1024);
    int err = pthread_create(&goro__S.sysmon, &attr, sysmon_main, NULL);
    pthread_attr_destroy(&attr);
    if (err)
        goro__fatal("cannot create the monitor thread (%s)", goro_strerror(-err));
    goro__S.sysmon_started = true;
}

void goro__sysmon_stop(void) {
    if (!goro__S.sysmon_started)
        return;
    goro__note_wakeup(&goro__S.sysmon_note);
    pthread_join(goro__S.sysmon, NULL);
    goro__S.sysmon_started = false;
    free(notes);
    notes = NULL;
}
