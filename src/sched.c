/*
 * sched.c - the scheduler: running goroutines on Ms that hold Ps (Go's proc.go).
 *
 * Terms (runtime.h): G goroutine, M OS thread, P processor. An M runs Gs only while it
 * holds a P. Each P has a bounded lock-free run queue (runq.c) and a runnext slot; there is
 * one global queue of batches under runq_lock (runq.c).
 *
 * Switching. A goroutine that parks, yields or exits switches straight to the next
 * goroutine of its P when there is one (G -> G, one register switch), and otherwise to
 * its M's g0, the thread's own stack, which runs findrunnable: global queue, timers,
 * stealing, and finally parking the thread. What must happen to the goroutine switched
 * away from (requeue it, recycle its stack) cannot happen before its registers are saved,
 * or another M could resume it on a half-saved stack; so the switcher records it in
 * m->pending and the context switched to performs it first thing (finish_switch). Go
 * does the same through mcall on g0; doing it on the next goroutine saves Go's second
 * switch through g0.
 *  (P1) A park is the exception: its unlock callback, which drops the locks that let a
 *       waker find the goroutine, runs before the switch, on the goroutine's own stack.
 *       The goroutine is WAITING by then and its g->sp holds GORO__SP_SAVING; the switch
 *       stores the real sp (a release store, after the registers) as the last thing it
 *       does on that stack, and every switch to a goroutine waits while its sp is
 *       GORO__SP_SAVING (goro__wait_saved). A waker on another P may so have to wait
 *       out the tail of the park (a pick, a due timer's callback), a few hundred ns at
 *       most unless the thread is preempted; it yields the CPU after a short spin. A
 *       park never waits so itself, with its own goroutine unsaved: if it picks one
 *       still being parked elsewhere, it requeues it and switches to g0, which waits.
 *       So no two Ms wait for each other. Go runs gopark's unlockf on g0 after the
 *       switch; here that work would be the next goroutine's, and it costs a channel
 *       round trip on one P a tenth of its time.
 *  (S1) A goroutine that returns from its function while the next goroutine of its P has
 *       never run (and wants a stack of the same size) does not switch at all: it hands
 *       that goroutine its stack and its M (hand_stack), and g_entry's loop calls the new
 *       function on the same stack. Nothing has to be saved of a goroutine that will
 *       never resume.
 *
 * Where new work goes.
 *  - goro_spawn puts the new G in runnext and wakes an idle P (wakep): spawned work is
 *    meant to run in parallel. The goroutine it displaces from runnext goes on the P's
 *    spawn stack (runq.h), which the owner takes newest first and thieves oldest first:
 *    trees of spawns run depth first, with few goroutines alive, and a thief takes the
 *    biggest pending subtree. pick_local bounds how long anything waits behind it.
 *  - goro__ready (a waiter woken by a mutex, a timer, ...) puts it in runnext; the
 *    goroutine it displaces goes to the queue, and another thread is woken only when
 *    the queue then holds GORO__READY_WAKE_MIN (4) goroutines or more. A woken partner
 *    usually communicates with the waker: a consumer that readies its producers one after
 *    another (a select fan-in) pushes each into the queue in turn and runs them all at
 *    its next switches, sooner than a sleeping thread on the other CPU could wake (~5 us
 *    here); a woken thread would steal them, and every item would then cross CPUs. A
 *    longer backlog (a broadcast, a pool woken by close) is parallel work and wakes as
 *    a spawn does. A thread already spinning steals any backlog; runnext is stolen only
 *    on the last pass of a thief. The price: a few CPU-bound goroutines readied at once
 *    run one after another until a thread happens to spin, or the monitor hands the P
 *    of the one that hogs it to another thread (10 ms).
 *  - runnext inherits the time slice: up to GORO__RUNNEXT_MAX runnext picks in a row,
 *    then the queue head runs, so a ping-pong pair cannot starve the rest of the queue.
 *  - Every 61st pick looks at the global queue first, so it is never starved.
 *  (R1) Only the M holding a P puts a goroutine into its runnext slot; other threads
 *       only take one out, thieves with a CAS and the world stopper with the world
 *       stopped. So the owner, finding the slot empty, fills it with a release store
 *       (goro__ready): nobody else can fill it in between. A non-empty slot is
 *       exchanged, as a thief may be taking its goroutine.
 *  (R2) With one P there is no thief (a thief holds a P of its own, and gomaxprocs
 *       changes only with the world stopped), so the owner also takes from its slot
 *       with plain accesses (take_runnext).
 *
 * Spinning and parking (no lost wake-ups). An M without work first spins: it steals half
 * of a random victim's queue, or the oldest entry of its spawn stack (4 passes over all
 * Ps). At most half of the busy Ps have a
 * spinning M (sched.nmspinning), so idle cores do not burn CPU. Then it gives its P back
 * to the idle list and sleeps on its futex. The protocol that no runnable goroutine is
 * left while every M sleeps:
 *  (W1) A submitter puts the G in a queue, then (after a full fence) reads sched.npidle
 *       and sched.nmspinning; if a P is idle and nobody spins it wakes an M (wakep).
 *  (W2) A parking M first puts its P on the idle list (npidle++), then drops its spinning
 *       count, then (after a full fence) looks once more at every P's queue and spawn
 *       stack and the global queue; if it sees work it takes a P back and starts over.
 *  (W3) A spinning M that finds work drops its spinning count and, if it was the last
 *       spinner and Ps are idle, wakes another (resetspinning), so a burst of work
 *       ramps up one thread at a time.
 * With the fences, either the submitter sees the idle P and no spinner, or the parking M
 * sees the work: each of the two writes before reading what the other wrote (Dekker).
 * runnext is not part of the check: only ready() fills it without a wakep, and then the
 * P is running and will run it at its next switch. The same holds for the few
 * goroutines ready() pushes into the queue without a wakep (below GORO__READY_WAKE_MIN):
 * they wait for a running P, which runs them at its next switches (or, if its goroutine
 * hogs it, the monitor hands the P with its queue to another thread after 10 ms), and
 * a parking thread that sees them in the (W2) recheck stays up as for any other work.
 *
 * Timers (timer.c) are per P; any M with a P runs one due timer of its own P at every
 * pick (check_timers) and all due timers of every P when it runs dry (run_due_timers).
 * Of the parked Ms, one (sched.timer_m) sleeps with a timeout at the earliest timer; an
 * earlier timer added later wakes it. A parking goroutine runs its P's timers after its
 * unlock callback has dropped its locks, which a timer's callback may need.
 *
 * Netpoller (netpoll.c): while goroutines wait on fds, an M looking for work polls
 * without waiting before it steals, and an M with nothing to do blocks in the poll (one
 * at a time, sched.polling) with the earliest timer as its timeout instead of sleeping
 * on its futex; what it finds goes to its P, or to the global queue (inject).
 *
 * Losing the P (sysmon.c, syscall.c): the monitor may take the P of an M in a blocking
 * call, or of a goroutine running too long (through a signal, only while the goroutine
 * runs user code: m->locks == 0). So goroutine-side code that uses m->p runs between
 * goro__acquirem and goro__releasem, and copes with m->p == NULL: it takes a P back
 * (goro__repossess) where it may wait, and otherwise uses the global queue (ready) or
 * g0 (park).
 *
 * Deadlock: the last M to go to sleep, with every P idle, nothing queued, no timer, no
 * blocking call and nobody on the netpoller, reports "all goroutines are asleep -
 * deadlock!" (check_deadlock).
 *
 * Stop the world (goro_maxprocs, goro_dump): sched.gcwaiting makes every M give up its
 * P at its next switch (gcstopm); the stopper waits until all Ps are stopped, and takes
 * those in blocking calls itself. A goroutine that never switches delays the stop until
 * the monitor takes its P. A pick tests one word for the stop, the exit and deterministic
 * mode (sched.divert, a bit for each, set before gcwaiting or exiting and cleared after
 * gcwaiting; the stop's bit changes under sched.lock, as gcwaiting does, so two stops
 * cannot leave it clear while one is on): a bit without its field only sends that pick
 * down the general path (pick_diverted), which reads the fields themselves.
 *
 * Deterministic mode (GORO_DEBUG=deterministic=SEED, replay.c): one P on one thread;
 * pick_next, findrunnable, goro_yield and goro__rand hand over to replay.c, one branch
 * each, which draws every choice from a seeded stream and keeps virtual time.
 *
 * See-also: docs/ARCHITECTURE.md for the tour, proc.c for start-up and shutdown.
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "atomic.h"
#include "internal.h"
#include "tracer.h"

#define GORO__RUNNEXT_MAX 61
/* Spawn stack fairness (pick_local): after this many picks from the spawn stack in a row
 * the run queue's head runs, and the stack's oldest entry runs at least every
 * GORO__LIFO_FAIR_NS while the stack stays busy. */
#define GORO__LIFO_MAX 64
#define GORO__LIFO_FAIR_NS 10000000
#define GORO__SPIN_NS 50000
/* Queued goroutines from which goro__ready wakes an idle P (see the top comment). */
#define GORO__READY_WAKE_MIN 4

goro__sched goro__sched_state;
/* The word TSan builds fence on (atomic.h). Always defined: in the race build the runtime
 * is compiled without TSan while white-box tests that inline runq.h are compiled with it. */
unsigned goro__fence_word;

/* initial-exec: a fixed offset from the thread pointer even in libgoro.so, instead of a
 * __tls_get_addr call on every access (the library is linked at start-up, not dlopen'ed
 * late, which is when this model can fail). */
__thread goro__m *goro__tls_m __attribute__((tls_model("initial-exec")));

/* The asm makes the function impure, so the compiler calls it each time instead of
 * reusing a value (or a thread-local address) computed before a switch. */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((noinline, noipa))
#else
__attribute__((noinline))
#endif
goro__m *
goro__getm(void) {
    goro__m *m = goro__tls_m;
    __asm__ volatile("" : "+r"(m));
    return m;
}

void goro__setm(goro__m *m) {
    goro__tls_m = m;
}

/* The M at the entry of an API function, before anything in it may switch: a plain
 * thread-local read. Only for a read that is not repeated after a switch in the same
 * function (the compiler may reuse the thread-local address it computed). */
static inline goro__m *getm_entry(void) {
    return goro__getm_entry();
}

goro__g *goro__getg(void) {
    goro__m *m = goro__getm();
    return m ? m->curg : NULL;
}

static void lock_sched(void) {
    pthread_mutex_lock(&goro__S.lock);
}

static void unlock_sched(void) {
    pthread_mutex_unlock(&goro__S.lock);
}

/* ------------------------------------------------------------------ Ps and Ms */

void goro__acquirep(goro__m *m, goro__p *p) {
    GORO_ASSERT(m->p == NULL);
    m->p = p;
    /* Release: the monitor, acquiring p->m, sees m initialised (its tid, its fields). */
    goro__store_release(&p->m, m);
    goro__trace_proc_start(m, p);
}

goro__p *goro__releasep(goro__m *m) {
    goro__p *p = m->p;
    GORO_ASSERT(p != NULL);
    goro__trace_proc_stop(m, p);
    m->p = NULL;
    goro__store_relaxed(&p->m, NULL);
    return p;
}

void goro__pidleput(goro__p *p) {
    p->link = goro__S.pidle;
    goro__S.pidle = p;
    /* Seq-cst: the (W2) store that a submitter's fence-then-load in wakep pairs with. */
    goro__add_sc(&goro__S.npidle, 1);
}

goro__p *goro__pidleget(void) {
    goro__p *p = goro__S.pidle;
    if (p) {
        goro__S.pidle = p->link;
        p->link = NULL;
        goro__add_sc(&goro__S.npidle, -1);
        if (GORO__UNLIKELY(goro__S.sysmon_deep)) {
            /* A P gets busy: the monitor has something to watch again. Its clock is as
             * old as its sleep: bring it up to date for the parks to come. */
            goro__S.sysmon_deep = false;
            goro__store_relaxed(&goro__S.coarse_now, goro__nanotime_coarse());
            goro__note_wakeup(&goro__S.sysmon_note);
        }
    }
    return p;
}

/* Caller holds sched.lock. */
static void mput(goro__m *m) {
    m->schedlink = goro__S.midle;
    goro__S.midle = m;
    m->idle = true;
    goro__store_relaxed(&goro__S.nmidle, goro__S.nmidle + 1);
}

/* Caller holds sched.lock. */
static void munlink(goro__m *m) {
    for (goro__m **pm = &goro__S.midle; *pm; pm = &(*pm)->schedlink) {
        if (*pm == m) {
            *pm = m->schedlink;
            m->schedlink = NULL;
            m->idle = false;
            goro__store_relaxed(&goro__S.nmidle, goro__S.nmidle - 1);
            return;
        }
    }
}

/* Caller holds sched.lock. */
static goro__m *mget(void) {
    goro__m *m = goro__S.midle;
    if (m)
        munlink(m);
    return m;
}

/* Takes the P that whoever started or woke m handed over, if any. */
static void acquire_nextp(goro__m *m) {
    lock_sched();
    goro__p *p = m->nextp;
    m->nextp = NULL;
    unlock_sched();
    if (p)
        goro__acquirep(m, p);
}

static void *mstart(void *arg) {
    goro__m *m = arg;
    goro__m_init_thread(m);
    acquire_nextp(m);
    goro__schedule();
    goro__m_fini_thread(m);
    return NULL;
}

/* Creates an M that starts with p. Caller holds sched.lock. */
static void newm(goro__p *p, bool spinning) {
    if (goro__S.mcount >= goro__S.max_threads)
        goro__fatal("thread limit reached: the program needs more than %d threads "
                    "(max_threads)",
                    goro__S.max_threads);
    /* Whole cache lines of its own: the M's counters change at every switch. */
    size_t bytes = (sizeof(goro__m) + GORO__CACHE_LINE - 1) & ~(size_t)(GORO__CACHE_LINE - 1);
    goro__m *m = aligned_alloc(GORO__CACHE_LINE, bytes);
    if (!m)
        goro__fatal("out of memory creating a thread");
    memset(m, 0, bytes);
    m->id = goro__S.mcount;
    m->nextp = p;
    m->spinning = spinning;
    m->alllink = goro__S.allm;
    goro__S.allm = m;
    goro__store_relaxed(&goro__S.mcount, goro__S.mcount + 1);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    /* Created under sched.lock so that shutdown, which walks allm under the lock, never
     * sees an M without its thread. */
    int err = pthread_create(&m->thread, &attr, mstart, m);
    pthread_attr_destroy(&attr);
    if (err)
        goro__fatal("cannot create a thread (%s) with %d running", goro_strerror(-err),
                    goro__S.mcount - 1);
}

void goro__startm(goro__p *p, bool spinning) {
    lock_sched();
    if (!p)
        p = goro__pidleget();
    if (!p || goro__load_relaxed(&goro__S.exiting)) {
        if (p)
            goro__pidleput(p);
        unlock_sched();
        if (spinning)
            goro__add_sc(&goro__S.nmspinning, -1);
        return;
    }
    goro__m *m = mget();
    if (!m) {
        newm(p, spinning);
        unlock_sched();
        return;
    }
    /* The M sleeps; it reads these after its note is signalled (release/acquire). */
    m->spinning = spinning;
    m->nextp = p;
    unlock_sched();
    goro__note_wakeup(&m->park);
}

void goro__wakep(void) {
    if (goro__load_relaxed(&goro__S.gomaxprocs) == 1)
        return; /* a running P means no P is idle */
    goro__wakep_any();
}

void goro__wakep_any(void) {
    /* (W1) StoreLoad: the caller's queue store is visible before we read npidle; pairs
     * with the seq-cst npidle/nmspinning updates and fence in findrunnable (W2). */
    goro__fence_sc();
    if (goro__load_sc(&goro__S.npidle) == 0)
        return;
    int32_t zero = 0;
    if (goro__load_relaxed(&goro__S.nmspinning) != 0 ||
        !goro__cas_sc(&goro__S.nmspinning, &zero, 1))
        return;
    goro__startm(NULL, true);
}

/* (W3) */
static void resetspinning(goro__m *m) {
    m->spinning = false;
    if (goro__add_sc(&goro__S.nmspinning, -1) == 0)
        goro__wakep();
}

static int64_t next_timer(void);

/* Called by an M about to sleep with no timer pending anywhere (until 0): if every other
 * M sleeps too and every P is idle with nothing queued, no goroutine can ever be woken
 * (only goroutines wake goroutines, and no timer will), so the program is deadlocked.
 * A thread outside the runtime can wake goroutines too (a send or an unlock from a plain
 * thread): once one has woken a goroutine or had to wait in this run (goro__S.outside, set
 * by goro__outside_contact), no deadlock is declared. Caller holds sched.lock. */
static void check_deadlock(int64_t until) {
    /* npollwait first, with acquire: a goroutine the poller found (the monitor polls
     * without being an M) leaves the count only once it is queued, or while the M that
     * found it holds a P (netpoll.c, N4), so the count, the queue or a busy P below shows
     * it. */
    if (until != 0 || goro__load_acquire(&goro__S.npollwait) ||
        goro__load_relaxed(&goro__S.gcwaiting) || goro__S.nmidle != goro__S.mcount - 1 ||
        goro__S.npidle != goro__S.gomaxprocs || goro__load_relaxed(&goro__S.runq_size) != 0 ||
        goro__load_relaxed(&goro__S.nblocking) || goro__load_relaxed(&goro__S.outside))
        return;
    for (int32_t i = 0; i < goro__S.gomaxprocs; i++)
        if (goro__p_queued(goro__S.allp[i]) || goro__load_relaxed(&goro__S.allp[i]->runnext))
            return;
    /* The caller's until may predate a timer added since, or be 0 because it had no P
     * to look from (a P-less M, after a handoff): ask the heaps. */
    if (next_timer())
        return;
    goro__fatal("all goroutines are asleep - deadlock!");
}

/* Parks the M until it is handed a P, or until `until` if it becomes the timer sleeper
 * (then it may return without a P). */
static void stopm(goro__m *m, int64_t until) {
    lock_sched();
    if (goro__load_relaxed(&goro__S.exiting)) {
        unlock_sched();
        return;
    }
    bool timed = until > 0 && until < goro__S.timer_wake;
    if (timed) {
        goro__store_relaxed(&goro__S.timer_wake, until);
        goro__S.timer_m = m;
    }
    check_deadlock(until);
    mput(m);
    unlock_sched();
    bool woken = goro__note_sleep(&m->park, timed ? until : GORO_FOREVER);
    lock_sched();
    if (goro__S.timer_m == m) {
        goro__S.timer_m = NULL;
        goro__store_relaxed(&goro__S.timer_wake, INT64_MAX);
    }
    if (!woken && m->idle) {
        /* Timed out and nobody took us: go and run the timers. */
        munlink(m);
        unlock_sched();
        return;
    }
    unlock_sched();
    if (!woken)
        goro__note_sleep(&m->park, GORO_FOREVER); /* taken meanwhile: the waker signals */
    goro__note_clear(&m->park);
    acquire_nextp(m);
}

void goro__timers_added(int64_t when) {
    /* Relaxed: hints. A sleeper or poller that went to sleep after these reads computed
     * its timeout from the heaps, which already hold the new timer. */
    if (GORO__UNLIKELY(goro__load_relaxed(&goro__S.polling)) &&
        when < goro__load_relaxed(&goro__S.poll_until))
        goro__netpoll_break();
    if (when >= goro__load_relaxed(&goro__S.timer_wake))
        return;
    lock_sched();
    goro__m *m = goro__S.timer_m;
    if (m && when < goro__S.timer_wake && m->idle) {
        munlink(m);
        goro__S.timer_m = NULL;
        goro__store_relaxed(&goro__S.timer_wake, INT64_MAX);
        unlock_sched();
        goro__note_wakeup(&m->park);
        return;
    }
    unlock_sched();
}

bool goro__p_has_work(goro__p *p, int64_t now) {
    int64_t t0 = goro__load_relaxed(&p->timer0);
    return goro__p_queued(p) || goro__load_relaxed(&p->runnext) ||
           goro__load_relaxed(&goro__S.runq_size) || (t0 && t0 <= now);
}

void goro__handoffp(goro__p *p) {
    goro__trace_proc_steal(p);
    goro__store_relaxed(&p->m, NULL);
    lock_sched();
    if (goro__load_relaxed(&goro__S.gcwaiting)) {
        /* A stop-the-world waits for this P: it counts as stopped (gcstopm). */
        if (--goro__S.stopwait == 0)
            goro__note_wakeup(&goro__S.stopnote);
        unlock_sched();
        return;
    }
    unlock_sched();
    /* Any timer needs an M to run it, even a later one: a sleeping M's timeout may have
     * been computed without it. */
    if (goro__p_has_work(p, INT64_MAX)) {
        goro__startm(p, false);
        return;
    }
    lock_sched();
    goro__pidleput(p);
    unlock_sched();
    /* (W2) for submitters without a P, who put work in the global queue and wake an M
     * only if they see an idle P: the seq-cst npidle++ above, then this load. */
    goro__fence_sc();
    if (goro__load_sc(&goro__S.runq_size))
        goro__wakep_any();
}

/* Gives up the P for a stop-the-world and sleeps. */
static void gcstopm(goro__m *m) {
    if (m->spinning) {
        m->spinning = false;
        goro__add_sc(&goro__S.nmspinning, -1);
    }
    goro__releasep(m); /* off the idle list: start_the_world hands it out again */
    lock_sched();
    if (--goro__S.stopwait == 0)
        goro__note_wakeup(&goro__S.stopnote);
    unlock_sched();
    stopm(m, 0);
}

/* ------------------------------------------------------------------ run queues */

/* The local queue is full: moves its older half to the global queue in one batch, or,
 * if thieves took most of it meanwhile, puts back what it took. The goroutine being
 * queued stays local, where Go's runqputslow sends it along with the batch: it is often
 * one a timer or a partner just woke, displaced from runnext, and the global queue may
 * hold a backlog of fresh goroutines that it would wait behind (bench/sleepers on 2 Ps:
 * a 1 ms sleep woke 95 ms late, behind 90,000 spawns, in a third of the runs). */
static void runq_overflow(goro__p *p) {
    goro__g *batch[GORO__RUNQ_SIZE / 2 + 1];
    uint32_t n = goro__runq_grab(&p->runq, batch);
    if (n < GORO__RUNQ_SIZE / 4) {
        /* Mostly stolen meanwhile: there is room now. */
        for (uint32_t i = 0; i < n; i++)
            if (!goro__runq_put(&p->runq, batch[i]))
                goro__globrunq_put(&batch[i], 1);
        return;
    }
    goro__globrunq_put(batch, n);
}

/* The ring is full: make room until g fits. Out of line, so that the common put saves
 * no registers. */
static __attribute__((noinline)) void runqput_full(goro__p *p, goro__g *g) {
    do
        runq_overflow(p);
    while (!goro__runq_put(&p->runq, g));
}

void goro__runqput(goro__p *p, goro__g *g, bool next) {
    if (next) {
        /* Acq-rel: publishes g's fields to a thief that CASes runnext, and takes
         * ownership of the one it displaces. */
        g = goro__xchg_acqrel(&p->runnext, g);
        if (!g)
            return;
    }
    if (GORO__UNLIKELY(!goro__runq_put(&p->runq, g)))
        runqput_full(p, g);
}

/* A spawn displaced g from runnext: it goes on the spawn stack (runq.h), or, that being
 * full, the stack's older half goes to the queue tail first. */
static __attribute__((noinline)) void lifo_put_full(goro__p *p, goro__g *g) {
    goro__g *batch[GORO__LIFO_SIZE / 2];
    while (!goro__lifo_push(&p->lifo, g)) {
        uint32_t n = goro__lifo_spill(&p->lifo, batch);
        for (uint32_t i = 0; i < n; i++)
            goro__runqput(p, batch[i], false);
    }
}

static inline void spawnput(goro__p *p, goro__g *g) {
    /* Acq-rel as in goro__runqput. */
    g = goro__xchg_acqrel(&p->runnext, g);
    if (g && GORO__UNLIKELY(!goro__lifo_push(&p->lifo, g)))
        lifo_put_full(p, g);
}

static inline goro__g *take_runnext(goro__p *p) {
    goro__g *g = goro__load_relaxed(&p->runnext);
    if (!g)
        return NULL;
    if (goro__load_relaxed(&goro__S.gomaxprocs) == 1) {
        /* No thief (R2): a plain take. What was put there was put by this M, or by
         * the P's previous owner before the P changed hands (a synchronising step). */
        goro__store_relaxed(&p->runnext, NULL);
        return g;
    }
    /* Acq-rel pairs with the xchg in runqput and thieves' CAS. */
    return goro__xchg_acqrel(&p->runnext, NULL);
}

/* Every GORO__LIFO_MAX picks from the spawn stack: the run queue's head gets its turn,
 * and the stack's oldest entry does if the stack has been busy since the last one ran
 * for GORO__LIFO_FAIR_NS. The oldest entry is the root of the biggest pending subtree,
 * whose spawns then run depth first in turn; doing that often would turn the order back
 * into a FIFO's, with its thousands of live stacks (skynet with a turn every 64 picks:
 * 33 MB instead of 2 MB, and 1.6x the time). At most one turn per 10 ms: an entry waits
 * at most 10 ms for each older entry above it, however busy the stack stays. */
static __attribute__((noinline)) goro__g *lifo_turn(goro__p *p, bool alone) {
    goro__g *g;
    p->lifo_streak = 0;
    int64_t now = goro__nanotime_coarse();
    if (!p->lifo_since) {
        p->lifo_since = now;
    } else if (now - p->lifo_since >= GORO__LIFO_FAIR_NS) {
        p->lifo_since = now;
        if ((g = goro__lifo_steal(&p->lifo)))
            return g;
    }
    if ((g = alone ? goro__runq_get_alone(&p->runq) : goro__runq_get(&p->runq)))
        return g;
    return goro__lifo_pop(&p->lifo, alone);
}

/* The next goroutine for p from its own queues (and every 61st time the global queue).
 * Owner P only. The order: runnext, the newest spawn on the spawn stack, the queue head.
 * The first two have bounds, so nothing waits behind them for ever: runnext yields to
 * the others after GORO__RUNNEXT_MAX picks in a row, the spawn stack as lifo_turn says. */
static __attribute__((noinline)) goro__g *pick_local_slow(goro__p *p) {
    goro__g *g;
    if (GORO__UNLIKELY(--p->globcheck == 0)) {
        p->globcheck = 61;
        if (goro__load_relaxed(&goro__S.runq_size) > 0 && (g = goro__globrunq_get(p, 1)))
            return g;
    }
    if (p->runnext_streak < GORO__RUNNEXT_MAX) {
        g = take_runnext(p);
        if (g) {
            p->runnext_streak++;
            return g;
        }
    }
    p->runnext_streak = 0;
    bool alone = goro__load_relaxed(&goro__S.gomaxprocs) == 1;
    if (GORO__UNLIKELY(p->lifo_streak >= GORO__LIFO_MAX) && (g = lifo_turn(p, alone)))
        return g;
    if ((g = goro__lifo_pop(&p->lifo, alone))) {
        p->lifo_streak++;
        return g;
    }
    p->lifo_streak = 0;
    p->lifo_since = 0;
    g = alone ? goro__runq_get_alone(&p->runq) : goro__runq_get(&p->runq);
    if (g)
        return g;
    return take_runnext(p);
}

/* pick_local's common case inline: runnext, with neither the global queue nor the others
 * due a turn (the pick of every channel hand-off on one P). */
static inline goro__g *pick_local(goro__p *p) {
    if (GORO__LIKELY(p->globcheck > 1 && p->runnext_streak < GORO__RUNNEXT_MAX)) {
        goro__g *g = take_runnext(p);
        if (g) {
            p->globcheck--;
            p->runnext_streak++;
            return g;
        }
    }
    return pick_local_slow(p);
}

/* ------------------------------------------------------------------ spawning */

int goro__newproc(goro__p *p, size_t stack_size, const char *name, void (*fn)(void *), void *arg,
                  void *pc, bool is_main) {
    goro__g *g = goro__g_alloc(p);
    if (!g)
        return GORO_ENOMEM;
    if (p->goid_next == p->goid_end) {
        /* Ids come in batches of 16 per P: no shared counter on every spawn. */
        uint64_t end = goro__add_relaxed(&goro__S.goidgen, 16);
        p->goid_next = end - 15;
        p->goid_end = end + 1;
    }
    g->fn = fn;
    g->arg = arg;
    goro__race_spawn(g); /* the spawner happens before g starts (race.h) */
    g->stack_size = (uint32_t)stack_size;
    g->is_main = is_main;
    /* Relaxed stores: goro_dump may read these of a descriptor being reused. */
    uint64_t id = p->goid_next++;
    goro__store_relaxed(&g->gword.w, id << 8); /* the generation starts anywhere (runtime.h) */
    goro__store_relaxed(&g->id_hi, (uint16_t)(id >> 40));
    goro__store_relaxed(&g->name, name);
    goro__store_relaxed(&g->spawn_pc, pc);
    goro__store_relaxed(&g->wait_reason, GORO__WAIT_NONE);
    /* Release: goro_dump reads the fields above after acquiring status. */
    goro__store_release(&g->status, GORO__G_RUNNABLE);
    goro__store_relaxed(&p->ngoroutines, p->ngoroutines + 1);
    goro__store_relaxed(&p->nspawned, p->nspawned + 1);
    goro__trace_go_create(p, g); /* before anyone can start it */
    /* Whether this spawn gives other Ps something new to take: g alone in runnext, or
     * the old runnext moving into an empty queue. If the queue already holds work, the
     * put that made it non-empty woke a thread (W1), and no thread parks while it stays
     * non-empty (W2), so waking again would only cost the fence. (If a thief empties it
     * between this test and the put, g waits for this P's next switch or that thief's
     * next look: this P is running, so nothing is lost, only maybe delayed.) */
    bool fresh = !goro__load_relaxed(&p->runnext) || !goro__p_queued(p);
    /* From here another M may steal and run g. */
    spawnput(p, g);
    if (fresh && !is_main) /* main runs on the goro_run thread, about to look for it */
        goro__wakep();
    return 0;
}

/* ------------------------------------------------------------------ switching */

static void g_entry(void *unused);
static bool get_idle_p(goro__m *m);
static goro__g *steal_pass(goro__m *m, bool runnext);
static void check_timers(goro__p *p);

/* Gives g a stack the first time it runs: with the suspended context of a goroutine that
 * returned on it (resuming that runs g, see g_entry), or else a fresh first frame. */
static void prepare_stack(goro__p *p, goro__g *g) {
    if (goro__stack_get(p, g))
        goro__fatal("out of memory for the stack of goroutine %llu (%u bytes)",
                    (unsigned long long)goro__g_id(g), g->stack_size);
    if (!g->sp)
        goro__store_relaxed(&g->sp, goro__ctx_init(g->stack_lo, g->stack_size, g_entry, NULL));
    goro__g_san_create(g);
}

static void prepare(goro__p *p, goro__g *g) {
    if (GORO__UNLIKELY(g->stack_lo == NULL))
        prepare_stack(p, g);
}

/* Makes the runnable g wait in the global queue (the caller has no P) and wakes a P. */
static void ready_global(goro__g *g) {
    goro__globrunq_put(&g, 1);
    goro__wakep_any();
}

/* Performs m->pending for the context just switched away from (see the top comment).
 * Runs first thing in every context that resumes. */
static void finish_switch(goro__m *m) {
    int act = m->pending;
    if (act == GORO__ACT_NONE)
        return;
    goro__g *prev = m->pending_g;
    m->pending = GORO__ACT_NONE;
    switch (act) {
    case GORO__ACT_READY:
        goro__store_release(&prev->status, GORO__G_RUNNABLE);
        goro__runqput(m->p, prev, false);
        break;
    case GORO__ACT_GLOBAL:
        goro__store_release(&prev->status, GORO__G_RUNNABLE);
        ready_global(prev);
        break;
    case GORO__ACT_EXIT:
    case GORO__ACT_GOEXIT:
        goro__stack_put(m->p, prev, act == GORO__ACT_EXIT);
        goro__store_release(&prev->status, GORO__G_FREE);
        goro__gfput(m->p, prev);
        break;
    }
}

/* How a switch records the start of the goroutine it runs: it tests whether a trace
 * records (TRACE_TEST), or its caller tested that once at the start of its runtime entry
 * (goro__park: TRACE_OFF, TRACE_ON; tracer.h, goro__trace_go_start_on). */
enum { TRACE_TEST, TRACE_OFF, TRACE_ON };

/* Switches from cur to next on m; next is a goroutine of m's P (prepared) or m's g0.
 * Returns, when cur runs again, the M it runs on. Inlined into goro__park (the switch of
 * every channel hand-off), out of line (run) elsewhere. */
static inline __attribute__((always_inline)) goro__m *run_inline(goro__m *m, goro__g *cur,
                                                                 goro__g *next, int trace) {
    if (GORO__UNLIKELY(cur->unguarded) && *(uint64_t *)cur->stack_lo != GORO__STACK_CANARY)
        goro__fatal("goroutine %llu stack overflow (stack size %u)",
                    (unsigned long long)goro__g_id(cur), cur->stack_size);
    if (next != &m->g0) {
        if (trace == TRACE_TEST)
            goro__trace_go_start(m, next);
        else if (trace == TRACE_ON)
            goro__trace_go_start_on(m, next);
        goro__store_relaxed(&next->status, GORO__G_RUNNING);
        goro__store_relaxed(&m->curg, next); /* relaxed: the monitor reads it */
        goro__bump_owned(&m->nswitches);
    } else {
        goro__store_relaxed(&m->curg, NULL);
    }
    /* We may be on another thread when this returns: the switcher tells which M. */
    m = goro__switch(cur, next, m->pending == GORO__ACT_GOEXIT, m);
    if (m->pending != GORO__ACT_NONE)
        finish_switch(m);
    return m;
}

static goro__m *run(goro__m *m, goro__g *cur, goro__g *next) {
    return run_inline(m, cur, next, TRACE_TEST);
}

/* Runs one due timer of p, if any. Owner P only. One per scheduling round: the goroutine
 * it wakes goes to runnext and runs next, where several woken at once would push each
 * other to the tail of a possibly long queue (100k fresh goroutines, say) and fire late
 * by all of it. The rest fire at the next rounds, or all at once when the P runs dry
 * (run_due_timers). */
static void check_timers(goro__p *p) {
    if (goro__load_relaxed(&p->timer0))
        goro__timers_run(p, goro__nanotime(), 1);
}

/* Switches away from the running goroutine cur to next (picked from m's P), or to g0
 * when next is NULL. The caller has set m->pending. Returns the M cur resumes on. */
static goro__m *switch_to(goro__m *m, goro__g *cur, goro__g *next) {
    if (next)
        prepare(m->p, next);
    else
        next = &m->g0;
    return run(m, cur, next);
}

/* switch_to with the switch inlined: goro__park's. */
static inline __attribute__((always_inline)) goro__m *switch_to_inline(goro__m *m, goro__g *cur,
                                                                       goro__g *next, int trace) {
    if (next)
        prepare(m->p, next);
    else
        next = &m->g0;
    return run_inline(m, cur, next, trace);
}

/* pick_next when sched.divert is set: the world is stopping or the runtime exiting (then
 * g0 must run), or deterministic mode picks. A bit may be set a moment before its field:
 * the usual pick then. */
static __attribute__((noinline)) goro__g *pick_diverted(goro__m *m) {
    if (goro__load_relaxed(&goro__S.gcwaiting) || goro__load_relaxed(&goro__S.exiting))
        return NULL;
    if (goro__replay_on)
        return goro__replay_pick(m->p); /* deterministic mode (replay.c) */
    check_timers(m->p);
    return pick_local(m->p);
}

/* Picks the next goroutine of m's P, unless the world is stopping or the runtime
 * exiting (then g0 must run). A due timer of the P runs first. One load tests all three
 * reasons not to (sched.divert), a tenth of the checks of a hop's pick. */
static inline goro__g *pick_next(goro__m *m) {
    goro__p *p = m->p; /* read once: the atomic load below makes the compiler read it again */
    if (GORO__UNLIKELY(goro__load_relaxed(&goro__S.divert)))
        return pick_diverted(m);
    check_timers(p);
    return pick_local(p);
}

static void wake_all_for_exit(void) {
    lock_sched();
    goro__m *m;
    while ((m = mget()))
        goro__note_wakeup(&m->park);
    goro__note_wakeup(&goro__S.stopnote);
    goro__note_wakeup(&goro__S.sysmon_note);
    unlock_sched();
    goro__netpoll_break();
}

/* Takes back the P the preemption signal handler took from m, if the monitor has not
 * collected it yet (sysmon.c, Y1). */
static bool take_preempt_p(goro__m *m) {
    /* Acq-rel xchg: pairs with the handler's release store and the monitor's xchg. */
    goro__p *p = goro__xchg_acqrel(&m->preempt_p, NULL);
    if (!p)
        return false;
    m->p = p;
    goro__store_release(&p->m, m);
    goro__trace_proc_start(m, p);
    return true;
}

goro__m *goro__repossess(goro__m *m) {
    GORO_ASSERT(m->locks > 0 && m->p == NULL && m->curg != NULL);
    goro__g *cur = m->curg;
    if (take_preempt_p(m)) {
        /* The monitor wanted this P for goroutines that wait: let them run first (Go's
         * gopreempt_m). cur waits in the global queue; this M runs the P's next one. A
         * goroutine that enters the runtime more often than the monitor looks would
         * otherwise never give the P up. */
        goro__add_relaxed(&goro__S.npreempt, 1);
        goro__store_relaxed(&cur->wait_reason, GORO__WAIT_PREEMPTED);
        m->pending = GORO__ACT_GLOBAL;
        m->pending_g = cur;
        goro__trace_go_stop(m, cur, GORO__TRACE_STOP_PREEMPT);
        return switch_to(m, cur, pick_next(m));
    }
    if (get_idle_p(m))
        return m;
    /* Every P is busy: wait for one in the global queue. */
    goro__store_relaxed(&cur->wait_reason, GORO__WAIT_PREEMPTED);
    m->pending = GORO__ACT_GLOBAL;
    m->pending_g = cur;
    goro__trace_go_stop(m, cur, GORO__TRACE_STOP_PREEMPT);
    return run(m, cur, &m->g0);
}

/* (S1) The goroutine cur, which returned from its function, gives its stack and the
 * M to next, a goroutine of m's P that never ran: next becomes the running goroutine
 * and, when g_end returns into g_entry's loop, calls its function on the stack, where its
 * frames start right above g_entry's. This is what resuming cur's suspended context
 * would do for next after a switch, without the switch and without the stack going
 * through the cache: nothing of cur needs saving, since nothing will resume it. cur's
 * descriptor is free at once (D2: it gave its stack away). The stack's ThreadSanitizer
 * fiber stays with it, and so with next, as it would through the cache. Owner P only. */
static void hand_stack(goro__m *m, goro__g *cur, goro__g *next) {
    if (GORO__UNLIKELY(cur->unguarded) && *(uint64_t *)cur->stack_lo != GORO__STACK_CANARY)
        goro__fatal("goroutine %llu stack overflow (stack size %u)",
                    (unsigned long long)goro__g_id(cur), cur->stack_size);
    next->stack_lo = cur->stack_lo;
    next->unguarded = cur->unguarded;
    next->chunked = 1;
#if GORO_TSAN
    next->tsan_fiber = cur->tsan_fiber;
    cur->tsan_fiber = NULL;
#endif
    cur->stack_lo = NULL;
    goro__store_release(&cur->status, GORO__G_FREE);
    goro__gfput(m->p, cur);
    goro__store_relaxed(&next->status, GORO__G_RUNNING);
    goro__trace_go_start(m, next);
    goro__store_relaxed(&m->curg, next); /* relaxed: the monitor reads it */
    /* A new goroutine on the M, as after a switch: the monitor sees no hog. */
    goro__bump_owned(&m->nswitches);
}

/* Ends the running goroutine: act is GORO__ACT_EXIT when it returned from its function
 * (its context, suspended here, is resumed for the next goroutine that gets its stack, and
 * then this returns) and GORO__ACT_GOEXIT from goro_exit (never returns). */
static void g_end(int act) {
    goro__m *m = goro__acquirem();
    /* An ending goroutine takes its P back without the requeue repossess does. */
    if (GORO__UNLIKELY(!m->p) && !take_preempt_p(m))
        m = goro__repossess(m);
    goro__g *cur = m->curg;
    goro__p *p = m->p;
    goro__trace_go_end(m, cur);
    goro__store_relaxed(&p->ngoroutines, p->ngoroutines - 1);
    if (cur->is_main) {
        /* As when Go's main returns: the program ends, other goroutines are dropped. */
        goro__race_release(&goro__S.exiting); /* main happens before goro_run returns */
        __atomic_fetch_or(&goro__S.divert, GORO__DIVERT_EXIT, __ATOMIC_SEQ_CST);
        goro__store_sc(&goro__S.exiting, 1);
        wake_all_for_exit();
    }
    goro__g *next = pick_next(m);
    if (!GORO_RACE && act == GORO__ACT_EXIT && next && next->stack_lo == NULL && cur->chunked &&
        next->stack_size == cur->stack_size) {
        /* (S1) next has never run and wants a stack like ours: it gets this one, with no
         * switch, and runs in g_entry's loop when we return. */
        hand_stack(m, cur, next);
        goro__releasem(m);
        return;
    }
    m->pending = act;
    m->pending_g = cur;
    m = switch_to(m, cur, next);
    /* Resumed (GORO__ACT_EXIT only) to run the next goroutine given this stack: user
     * code runs from here, as after g_entry's first release. */
    goro__releasem(m);
}

/* The outermost frame of every goroutine stack. A goroutine that returns suspends here;
 * the next goroutine given this stack resumes it and runs its own function in the loop,
 * so each goroutine's frames return normally (which ThreadSanitizer's shadow stack of
 * the stack's fiber needs). */
static void g_entry(void *unused) {
    (void)unused;
    goro__switch_started();
    goro__m *m = goro__getm();
    finish_switch(m);
    goro__releasem(m); /* the switcher's entry (m->locks): user code runs from here */
    for (bool fresh = true;; fresh = false) {
        goro__g *g = goro__getg();
        goro__race_gostart(g);
        /* A fresh frame (goro__ctx_init) carried the floating-point control state a new
         * goroutine starts with; a context reused after a goroutine returned on it still
         * has that goroutine's (S1 hands it over without a switch). */
        if (!fresh)
            goro__fpenv_reset();
        g->fn(g->arg);
        g_end(GORO__ACT_EXIT);
    }
}

bool goro__commit_unlock_word(goro__g *g, void *arg) {
    (void)g;
    goro__store_release((uint32_t *)arg, 0);
    return true;
}

void *goro__wait_saved(goro__g *to) {
    void *sp;
    /* Acquire pairs with the switch's release store of sp. */
    for (unsigned i = 0;
         (sp = goro__load_acquire(&to->sp)) == GORO__SP_SAVING || sp == GORO__SP_COMPACTING; i++) {
        if (i < 100)
            goro__cpu_relax();
        else
            sched_yield(); /* the parking thread (or the compactor) may have been preempted */
    }
    /* Acquire above pairs with the compactor's (or a fault restore's) release store. */
    return GORO__SP_HAS_COPY(sp) ? goro__compact_restore(to) : sp;
}

/* goro__park's body, m's locks held, in two copies: one for while a trace records
 * (trace: TRACE_ON), one for while none does (TRACE_OFF). goro__park tests once which
 * applies: no trace starts or stops before it leaves its runtime entry (tracer.c R5), and
 * the copy without hooks is the shorter path of every channel hand-off. */
static inline __attribute__((always_inline)) void
park_body(int reason, bool (*unlockf)(goro__g *, void *), void *arg, goro__m *m, int trace) {
    goro__g *cur = m->curg;
    GORO_ASSERT(cur != NULL);
    goro__store_relaxed(&cur->wait_reason, (uint8_t)reason);
    if (trace == TRACE_ON)
        goro__trace_go_block_on(m, cur, reason);
    /* Relaxed: the monitor's clock, at most one of its rounds (10 ms) behind. A clock
     * read here would cost a fifth of a channel round trip. */
    goro__store_relaxed(&cur->wait_since, goro__load_relaxed(&goro__S.coarse_now));
    /* (P1) Published: a waker that finds cur through what unlockf publishes sees it
     * WAITING (release), readies it, and whoever switches to it waits for the switch
     * below to store its real sp. */
    goro__store_relaxed(&cur->sp, GORO__SP_SAVING);
    goro__store_release(&cur->status, GORO__G_WAITING);
    goro__race_park(m);
    bool parked = true;
    if (unlockf == goro__commit_unlock_word) { /* a channel's wait: its call inline */
#if defined(__x86_64__) && !GORO_TSAN
        /* arg stays in rdx, where it arrived: the tracer's inline block hook (cold) would
         * otherwise have the compiler move it to another register on every park. */
        __asm__("" : "+d"(arg));
#endif
        goro__store_release((uint32_t *)arg, 0);
    } else if (unlockf)
        parked = unlockf(cur, arg);
    /* With the locks dropped, the pick may run a due timer, whose callback may take them
     * (a goro_timer's sends on a channel) or ready cur itself (a select's timeout). */
    goro__g *next = !parked ? cur : m->p ? pick_next(m) : NULL;
    goro__race_park_end(next == cur ? cur : NULL);
    if (GORO__UNLIKELY(next == cur)) {
        /* Not parked after all, or readied already: cur runs on. */
        if (trace == TRACE_ON)
            goro__trace_go_unpark_on(m, cur, parked);
        goro__store_relaxed(&cur->status, GORO__G_RUNNING);
        goro__releasem(m);
        return;
    }
    if (GORO__UNLIKELY(next && !GORO__SP_REAL(goro__load_relaxed(&next->sp)))) {
        /* next is in the tail of its own park on another M, which may be about to wait
         * for cur in turn (each readied the other by a timer): g0 waits for it instead,
         * once cur is saved (P1). Likewise for a compacted next: its stack is copied back
         * with nothing of ours left unsaved (compact.c). */
        goro__runqput(m->p, next, true);
        next = NULL;
    }
    m = switch_to_inline(m, cur, next, trace);
    goro__releasem(m);
}

/* The two copies, each a function of its own, so that goro__park is a test and a jump
 * (inlined there, the copies' register saves came before the test); m last, so that the
 * jump moves no argument register. */
static __attribute__((noinline)) void park_traced(int reason, bool (*unlockf)(goro__g *, void *),
                                                  void *arg, goro__m *m) {
    park_body(reason, unlockf, arg, m, TRACE_ON);
}

static __attribute__((noinline)) void park_untraced(int reason, bool (*unlockf)(goro__g *, void *),
                                                    void *arg, goro__m *m) {
    park_body(reason, unlockf, arg, m, TRACE_OFF);
}

void goro__park(int reason, bool (*unlockf)(goro__g *, void *), void *arg) {
    /* No repossess here: the caller may hold the locks unlockf drops. Without a P (the
     * monitor took it) the switch goes to g0, which looks for one. */
    goro__m *m = getm_entry();
    goro__acquirem_m(m);
    GORO__TRACING_GOTO(traced);
    park_untraced(reason, unlockf, arg, m);
    return;
traced:
    __attribute__((cold));
    park_traced(reason, unlockf, arg, m);
}

static __attribute__((noinline, noreturn)) void ready_not_waiting(goro__g *g) {
    goro__fatal("runtime: waking goroutine %llu, which is not waiting",
                (unsigned long long)goro__g_id_relaxed(g));
}

/* goro__ready's rare cases, out of line (then its common one saves no register): no P,
 * or a runnext slot already taken. Ends the caller's goro__acquirem_m. */
static __attribute__((noinline)) void ready_slow(goro__m *m, goro__p *p, goro__g *g) {
    goro__trace_go_unblock(m, g);
    goro__store_relaxed(&g->status, GORO__G_RUNNABLE);
    if (!p) {
        /* The caller may hold locks, so it cannot wait for a P here. */
        ready_global(g);
    } else {
        /* A non-empty slot is exchanged: a thief may be taking its goroutine (R1). */
        goro__g *old = goro__xchg_acqrel(&p->runnext, g);
        if (old) {
            goro__runqput(p, old, false);
            /* Only a backlog is worth a thread: see "Where new work goes" above. */
            if (goro__runq_len(&p->runq) >= GORO__READY_WAKE_MIN)
                goro__wakep();
        }
    }
    goro__releasem(m);
}

void goro__outside_contact(void) {
    if (!goro__load_relaxed(&goro__S.outside))
        goro__store_relaxed(&goro__S.outside, true);
}

/* goro__ready from a thread outside the runtime (no M, so no P): a channel operation or an
 * unlock of a plain thread woke g. It goes to the global queue; a trace records the
 * unblock in its global stream. */
static __attribute__((noinline)) void ready_outside(goro__g *g) {
    if (GORO__UNLIKELY(goro__load_acquire(&g->status) != GORO__G_WAITING))
        ready_not_waiting(g);
    goro__outside_contact();
    goro__trace_go_unblock_outside(g);
    goro__store_release(&g->status, GORO__G_RUNNABLE);
    ready_global(g);
}

void goro__ready(goro__g *g) {
    goro__m *m = getm_entry(); /* no switch in here */
    if (GORO__UNLIKELY(!m)) {
        ready_outside(g);
        return;
    }
    goro__acquirem_m(m);
    if (GORO__UNLIKELY(goro__load_acquire(&g->status) != GORO__G_WAITING))
        ready_not_waiting(g);
    goro__p *p = m->p;
    if (GORO__UNLIKELY(!p || goro__load_relaxed(&p->runnext))) {
        ready_slow(m, p, g);
        return;
    }
    /* The unblock is recorded with p in hand: no second load of m->p, no test. */
    goro__trace_go_unblock_p(m, p, g);
    goro__store_relaxed(&g->status, GORO__G_RUNNABLE);
    /* An empty slot takes g with a release store (R1), which publishes g's fields to a
     * thief as the exchange does, without its locked instruction. */
    goro__store_release(&p->runnext, g);
    goro__releasem(m);
}

void goro__yield_now(void) {
    goro__m *m = goro__acquirem();
    if (GORO__UNLIKELY(!m->p))
        m = goro__repossess(m);
    goro__g *cur = m->curg;
    m->pending = GORO__ACT_READY;
    m->pending_g = cur;
    m = switch_to(m, cur, pick_next(m));
    goro__releasem(m);
}

/* finish_switch and goro__releasem, out of line: the caller then keeps nothing in a
 * register across its switch. */
static __attribute__((noinline)) void finish_release(goro__m *m) {
    finish_switch(m);
    goro__releasem(m);
}

/* goro_yield's common case with one P: nothing due, nothing in runnext, a goroutine that
 * ran before at the head of the queue. The yielder takes its place at the tail and the
 * head runs, as the general path would do, with plain loads and stores: with one P nobody
 * else touches the queue (see goro__runq_get_alone) and the world is not stopping while
 * it runs. The switch is run()'s, inlined: this is the path of every yield with one P,
 * and a yield costs ~120 instructions, a tenth of them run()'s call and frame. Returns
 * false, having changed nothing, when the general path is needed. */
static bool yield_alone(goro__m *m, goro__g *cur) {
    goro__p *p = m->p;
    if (goro__load_relaxed(&goro__S.gomaxprocs) != 1 || goro__load_relaxed(&p->timer0) ||
        goro__load_relaxed(&p->runnext) || p->globcheck <= 1 || !goro__lifo_empty(&p->lifo) ||
        goro__load_relaxed(&goro__S.divert))
        return false;
    uint32_t h = goro__load_relaxed(&p->runq.head), t = goro__load_relaxed(&p->runq.tail);
    if (h == t)
        return false;
    goro__g *next = goro__load_relaxed(&p->runq.ring[h % GORO__RUNQ_SIZE]);
    /* A first run needs a stack (prepare), a stack without a guard its canary checked:
     * both on run()'s path. */
    if (GORO__UNLIKELY(next->stack_lo == NULL || cur->unguarded))
        return false;
    goro__store_relaxed(&p->runq.ring[t % GORO__RUNQ_SIZE], cur);
    /* Release, as in runq_get_alone and runq_put: for readers of the counters. */
    goro__store_release(&p->runq.head, h + 1);
    goro__store_release(&p->runq.tail, t + 1);
    p->globcheck--;
    p->runnext_streak = 0;
    goro__store_relaxed(&cur->status, GORO__G_RUNNABLE);
    GORO_ASSERT(m->pending == GORO__ACT_NONE); /* nothing is pending while a goroutine runs */
    goro__store_relaxed(&next->status, GORO__G_RUNNING);
    goro__store_relaxed(&m->curg, next); /* relaxed: the monitor reads it */
    goro__bump_owned(&m->nswitches);
    goro__trace_go_switch(m, p, cur, next);
    m = goro__switch(cur, next, false, m);
    if (GORO__UNLIKELY(m->pending != GORO__ACT_NONE))
        finish_release(m);
    else
        goro__releasem(m);
    return true;
}

/* goro_yield when yield_alone does not apply. m->locks is held. */
static __attribute__((noinline)) void yield_slow(goro__m *m) {
    if (GORO__UNLIKELY(!m->p)) {
        /* Lost the P while running: waiting for one in the global queue is the yield. */
        goro__releasem(goro__repossess(m));
        return;
    }
    goro__g *cur = m->curg, *next = pick_next(m);
    if (!next && !goro__load_relaxed(&goro__S.gcwaiting) && !goro__load_relaxed(&goro__S.exiting)) {
        /* Nothing queued here: take from the global queue, or else from a busy P's
         * queue, so a yielding goroutine alone on its P does not leave others waiting
         * behind a busy one. Nothing anywhere: return without a switch. */
        if (goro__load_relaxed(&goro__S.runq_size))
            next = goro__globrunq_get(m->p, 1);
        if (!next && goro__load_relaxed(&goro__S.gomaxprocs) > 1)
            next = steal_pass(m, false);
        if (!next) {
            goro__releasem(m);
            return;
        }
    }
    goro__trace_go_stop(m, cur, GORO__TRACE_STOP_YIELD);
    goro__store_relaxed(&cur->status, GORO__G_RUNNABLE);
    if (goro__load_relaxed(&goro__S.gomaxprocs) == 1 && goro__runq_put(&m->p->runq, cur)) {
        /* With one P nobody else takes from its queue (gomaxprocs changes only with the
         * world stopped, and this P is running), so cur can be queued before its
         * registers are saved: only this M will pick it, after the switch. */
        m->pending = GORO__ACT_NONE;
    } else {
        m->pending = GORO__ACT_READY;
        m->pending_g = cur;
    }
    goro__releasem(switch_to(m, cur, next));
}

void goro_yield(void) {
    goro__m *m = getm_entry();
    if (!m || !m->curg)
        return;
    if (GORO__UNLIKELY(goro__replay_on)) {
        goro__replay_yield(); /* deterministic mode (replay.c) */
        return;
    }
    goro__acquirem_m(m);
    /* The fast path apart, so that it keeps no registers of its own across the switch. */
    if (GORO__LIKELY(m->p != NULL) && yield_alone(m, m->curg))
        return;
    yield_slow(m);
}

void goro_exit(void) {
    goro__m *m = goro__getm();
    if (!m || !m->curg)
        goro__fatal("goro_exit called outside a goroutine");
    g_end(GORO__ACT_GOEXIT);
    __builtin_unreachable();
}

/* ------------------------------------------------------------------ finding work */

/* Tries to take an idle P. */
static bool get_idle_p(goro__m *m) {
    lock_sched();
    goro__p *p = goro__pidleget();
    unlock_sched();
    if (p)
        goro__acquirep(m, p);
    return p != NULL;
}

/* One pass over the other Ps in random order, stealing half of the first non-empty run
 * queue into m's (empty) queue; with runnext, also takes a victim's runnext. */
static goro__g *steal_pass(goro__m *m, bool runnext) {
    goro__p *pp = m->p;
    int32_t n = goro__load_relaxed(&goro__S.gomaxprocs);
    uint32_t off = (uint32_t)(goro__rand(m) % (uint64_t)n);
    for (int32_t j = 0; j < n; j++) {
        goro__p *v = goro__S.allp[(off + (uint32_t)j) % (uint32_t)n];
        if (v == pp)
            continue;
        goro__g *g = goro__runq_steal(&pp->runq, &v->runq);
        if (g || (g = goro__lifo_steal(&v->lifo))) {
            goro__store_relaxed(&pp->nsteals, pp->nsteals + 1);
            return g;
        }
        if (runnext && goro__load_relaxed(&v->runnext)) {
            g = goro__load_relaxed(&v->runnext);
            /* Acq-rel pairs with the owner's xchg of runnext. */
            if (g && goro__cas_acqrel(&v->runnext, &g, NULL))
                return g;
        }
    }
    return NULL;
}

/* Four passes; only the last takes runnext, which its owner is about to run. */
static goro__g *steal_work(goro__m *m) {
    for (int pass = 0; pass < 4; pass++) {
        goro__g *g = steal_pass(m, pass == 3);
        if (g)
            return g;
    }
    return NULL;
}

/* Runs the due timers of every P; their goroutines become runnable on the caller's P.
 * Returns the number run. */
static int run_due_timers(void) {
    int ran = 0;
    int64_t now = 0;
    int32_t n = goro__load_relaxed(&goro__S.gomaxprocs);
    for (int32_t i = 0; i < n; i++) {
        goro__p *v = goro__S.allp[i];
        int64_t t = goro__load_relaxed(&v->timer0);
        if (!t)
            continue;
        if (!now)
            now = goro__nanotime();
        if (t <= now)
            ran += goro__timers_run(v, now, 0);
    }
    return ran;
}

/* A spinning M that found nothing keeps polling the other Ps' queues and the global queue
 * for GORO__SPIN_NS before it parks: parking and being woken again costs both threads
 * system calls and ~5 us of wake-up latency here, so a producer that keeps making work a
 * little slower than we eat it would otherwise wake us for every few goroutines. Polls
 * are ~1 us apart so that reading the victims' queue heads does not slow their owners.
 * Returns NULL when the time is up, or when the world stops or the runtime exits. */
static goro__g *spin_wait(goro__m *m) {
    /* Goroutines wait on the netpoller and nobody polls: their work comes from there,
     * so this M had better go and block in the poll now (findrunnable) than spin. */
    if (goro__load_relaxed(&goro__S.npollwait) && !goro__load_relaxed(&goro__S.polling))
        return NULL;
    int64_t until = goro__nanotime() + GORO__SPIN_NS;
    for (;;) {
        for (int i = 0; i < 32; i++)
            goro__cpu_relax();
        if (goro__load_relaxed(&goro__S.gcwaiting) || goro__load_relaxed(&goro__S.exiting))
            return NULL;
        goro__g *g = NULL;
        if (goro__load_relaxed(&goro__S.runq_size))
            g = goro__globrunq_get(m->p, 0);
        if (g || (g = steal_pass(m, false)))
            return g;
        if (goro__nanotime() > until)
            return NULL;
    }
}

/* The earliest timer of any P, 0 if none. */
static int64_t next_timer(void) {
    int64_t next = 0;
    int32_t n = goro__load_relaxed(&goro__S.gomaxprocs);
    for (int32_t i = 0; i < n; i++) {
        int64_t t = goro__load_relaxed(&goro__S.allp[i]->timer0);
        if (t && (!next || t < next))
            next = t;
    }
    return next;
}

void goro__polled_to_global(goro__g **gs, int n) {
    lock_sched();
    goro__add_relaxed(&goro__S.npollwait, -n);
    goro__globrunq_put(gs, (uint32_t)n);
    unlock_sched();
    goro__wakep_any();
}

/* Makes the n goroutines the netpoller found runnable. With a P (the caller's) they go
 * to its queue and the first is returned for the caller to run; without, to the global
 * queue for idle Ps, and NULL is returned. None of them runs while still counted in
 * sched.npollwait (netpoll.c, N4). */
static goro__g *inject(goro__p *p, goro__g **gs, int n) {
    for (int i = 0; i < n; i++)
        goro__store_relaxed(&gs[i]->status, GORO__G_RUNNABLE);
    if (!p) {
        goro__polled_to_global(gs, n);
        return NULL;
    }
    /* Uncounted before they are queued (a thief could run one at once): meanwhile this M
     * holds a P and runs, which check_deadlock sees. */
    goro__add_acqrel(&goro__S.npollwait, -n);
    for (int i = 1; i < n; i++)
        goro__runqput(p, gs[i], false); /* gs[0] is ours */
    /* As goro__ready: a few ready connections are served here sooner than another
     * thread could be woken to take them (~5 us); a batch is worth sharing. */
    if (goro__runq_len(&p->runq) >= GORO__READY_WAKE_MIN)
        goro__wakep();
    return gs[0];
}

int goro__netpoll_inject(goro__p *p, goro__g **first) {
    goro__g *gs[GORO__NETPOLL_BATCH];
    int n = goro__netpoll(0, gs, GORO__NETPOLL_BATCH);
    *first = n > 0 ? inject(p, gs, n) : NULL;
    return n;
}

/* No goroutine anywhere and goroutines wait on the netpoller: m, without a P, blocks in
 * the poller until an fd is ready, the earliest timer (until, 0 if none) is due, or
 * goro__netpoll_break. Returns false if another M already polls. */
static bool block_in_poller(goro__m *m, int64_t until) {
    uint32_t zero = 0;
    if (!goro__load_relaxed(&goro__S.npollwait) || goro__load_relaxed(&goro__S.polling) ||
        !goro__cas_sc(&goro__S.polling, &zero, 1))
        return false;
    /* Seq-cst store, then the timers are read again: a timer added meanwhile is either
     * seen here or its adder sees poll_until and breaks the poll (goro__timers_added). */
    goro__store_sc(&goro__S.poll_until, until ? until : INT64_MAX);
    int64_t t = next_timer();
    if (t && (!until || t < until))
        until = t;
    goro__g *gs[GORO__NETPOLL_BATCH];
    int n = until && until <= goro__nanotime()
                ? 0
                : goro__netpoll(until ? until : GORO_FOREVER, gs, GORO__NETPOLL_BATCH);
    goro__store_sc(&goro__S.poll_until, INT64_MAX);
    goro__store_sc(&goro__S.polling, 0);
    if (n > 0) {
        get_idle_p(m);
        goro__g *g = inject(m->p, gs, n);
        if (g)
            goro__runqput(m->p, g, true);
    }
    return true;
}

/* Finds a goroutine to run, parking the M while there is none. Returns NULL when the
 * runtime is shutting down. Runs on g0. */
static goro__g *findrunnable(goro__m *m) {
    if (GORO__UNLIKELY(goro__replay_on))
        return goro__replay_findrunnable(m); /* deterministic mode (replay.c) */
    goro__g *g;
top:
    if (goro__load_acquire(&goro__S.exiting))
        return NULL;
    if (!m->p && !get_idle_p(m)) {
        /* Every P is busy; their Ms run due timers at their next switch. */
        stopm(m, 0);
        goto top;
    }
    goro__p *p = m->p;
    if (goro__load_acquire(&goro__S.gcwaiting)) {
        gcstopm(m);
        goto top;
    }
    check_timers(p);
    if ((g = pick_local(p)))
        return g;
    if (goro__load_relaxed(&goro__S.runq_size) && (g = goro__globrunq_get(p, 0)))
        return g;
    if (run_due_timers() && (g = pick_local(p)))
        return g;
    /* Ready fds before stealing: the netpoller's goroutines are nobody's yet. */
    if (goro__load_relaxed(&goro__S.npollwait) && !goro__load_relaxed(&goro__S.polling) &&
        goro__netpoll_inject(p, &g))
        return g;
    int32_t procs = goro__load_relaxed(&goro__S.gomaxprocs);
    if (m->spinning ||
        2 * goro__load_relaxed(&goro__S.nmspinning) < procs - goro__load_relaxed(&goro__S.npidle)) {
        if (!m->spinning) {
            m->spinning = true;
            goro__add_sc(&goro__S.nmspinning, 1);
        }
        if ((g = steal_work(m)) || (g = spin_wait(m)))
            return g;
    }
    /* Nothing found: give the P back, then look once more (W2). */
    lock_sched();
    if (goro__load_relaxed(&goro__S.gcwaiting) || goro__load_relaxed(&goro__S.exiting)) {
        unlock_sched();
        goto top;
    }
    if (goro__load_relaxed(&goro__S.runq_size) && (g = goro__globrunq_get(p, 0))) {
        unlock_sched();
        return g;
    }
    goro__releasep(m);
    goro__pidleput(p);
    unlock_sched();
    bool was_spinning = m->spinning;
    if (m->spinning) {
        m->spinning = false;
        goro__add_sc(&goro__S.nmspinning, -1);
    }
    /* (W2) StoreLoad: npidle++ and nmspinning-- above are ordered before the loads of
     * the queues below; pairs with the fence in wakep (W1). */
    goro__fence_sc();
    bool work = goro__load_sc(&goro__S.runq_size) > 0;
    for (int32_t i = 0; i < procs && !work; i++)
        work = goro__p_queued(goro__S.allp[i]);
    int64_t until = next_timer();
    if (work || (until && until <= goro__nanotime())) {
        if (get_idle_p(m)) {
            if (was_spinning) {
                m->spinning = true;
                goro__add_sc(&goro__S.nmspinning, 1);
            }
            goto top;
        }
    }
    if (!block_in_poller(m, until))
        stopm(m, until);
    goto top;
}

/* The scheduler loop on g0: returns when the runtime shuts down. */
void goro__schedule(void) {
    goro__m *m = goro__getm();
    for (;;) {
        goro__g *g = findrunnable(m);
        if (!g)
            return;
        if (m->spinning)
            resetspinning(m);
        prepare(m->p, g);
        run(m, &m->g0, g);
    }
}
