/*
 * proc.c - the runtime's life cycle and the goroutine-facing calls built on the scheduler:
 * goro_run, spawning, sleeping, goro_maxprocs and the stop-the-world it needs.
 *
 * Start-up: goro_run makes the Ps, turns the calling thread into M0 (its g0 is the
 * caller's own stack), spawns the main goroutine (id 1) and enters the scheduler loop.
 * Shutdown: when main returns, sched.exiting is set and every idle M woken; each M leaves
 * its scheduler loop at its next switch. M0 returns to goro_run, joins the other threads
 * and frees every descriptor, stack, P and M, so goro_run can be called again.
 *
 * Invariant (L1): at most one runtime per process (`running`); all global state is reset
 * at start, so a second goro_run starts from nothing.
 *
 * Resizing (goro_maxprocs) stops the world, moves the work of removed Ps (queues, timers,
 * caches) to the global queue and P0, and restarts Ps that have work.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "atomic.h"
#include "internal.h"
#include "tracer.h"

#define GORO__DEFAULT_STACK (64 * 1024)
#define GORO__MIN_STACK (16 * 1024)
#define GORO__MAX_STACK ((size_t)1 << 30)
#define GORO__MAIN_STACK ((size_t)8 << 20)

static uint32_t running; /* [atomic] (L1) */

/* ------------------------------------------------------------------ threads */

void goro__m_init_thread(goro__m *m) {
    goro__setm(m);
    m->locks = 1; /* g0 runs: the runtime, not user code */
    m->tid = (int)syscall(SYS_gettid);
    m->rand = (uint64_t)(uintptr_t)m ^ (uint64_t)goro__nanotime();
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        void *lo;
        size_t size;
        pthread_attr_getstack(&attr, &lo, &size);
        pthread_attr_destroy(&attr);
        m->g0.stack_lo = lo;
        m->g0.stack_size = (uint32_t)(size > UINT32_MAX ? UINT32_MAX : size);
    }
    goro__m_san_init(m);
    goro__altstack_install(m);
}

void goro__m_fini_thread(goro__m *m) {
    goro__race_m_fini(m);
    goro__altstack_remove(m);
    goro__setm(NULL);
}

/* The runtime's global locks are held for a few hundred instructions at most (moving a
 * batch of pointers), but a flood of spawns on one P and exits on another takes the
 * descriptor and run-queue locks from both sides every few dozen goroutines. A default
 * glibc mutex puts a waiter to sleep in the kernel at once, and its owner then makes a
 * system call to wake it; glibc's adaptive mutex spins briefly first, as Go's runtime
 * locks do. */
static void mutex_init_adaptive(pthread_mutex_t *mu) {
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
    pthread_mutex_init(mu, &attr);
    pthread_mutexattr_destroy(&attr);
}

/* ------------------------------------------------------------------ configuration */

static int env_int(const char *name, long min, long max, long *out) {
    const char *s = getenv(name);
    if (!s || !*s)
        return 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (*end == 'k' || *end == 'K')
        v *= 1024, end++;
    else if (*end == 'm' || *end == 'M')
        v *= 1024 * 1024, end++;
    if (*end || v < min || v > max) {
        fprintf(stderr, "goro: ignoring %s=%s (want %ld..%ld)\n", name, s, min, max);
        return 0;
    }
    *out = v;
    return 1;
}

static goro__p *p_new(int id) {
    goro__p *p = calloc(1, sizeof *p);
    if (p) {
        p->id = id;
        p->globcheck = 61;
    }
    return p;
}

static void san_destroy(goro__g *g, void *arg) {
    (void)arg;
    goro__g_san_destroy(g);
}

static void free_all(goro__m *m0) {
    /* Stacks in P caches go to the global list, where release_all finds them. */
    for (int i = 0; goro__S.allp && i < GORO__MAXPROCS_LIMIT && goro__S.allp[i]; i++)
        goro__stack_flush(goro__S.allp[i]);
    goro__for_each_g(san_destroy, NULL);
    goro__compact_release_all();
    goro__stack_release_all();
    goro__g_free_all();
    goro__globrunq_free();
    if (goro__S.allp) {
        for (int i = 0; i < GORO__MAXPROCS_LIMIT && goro__S.allp[i]; i++) {
            goro__timers_free(goro__S.allp[i]);
            goro__chan_cache_flush(goro__S.allp[i]);
            free(goro__S.allp[i]);
        }
        free(goro__S.allp);
        goro__S.allp = NULL;
    }
    goro__m *next;
    for (goro__m *m = goro__S.allm; m; m = next) {
        next = m->alllink;
        if (m != m0)
            free(m);
    }
    goro__S.allm = NULL;
}

int goro_run(const goro_config *cfg, void (*main_fn)(void *), void *arg) {
    goro_config c = {0};
    if (cfg)
        c = *cfg;
    if (!main_fn || c.maxprocs < 0 || c.max_threads < 0 ||
        (c.stack_size && (c.stack_size < GORO__MIN_STACK || c.stack_size > GORO__MAX_STACK)))
        return GORO_EINVAL;
    uint32_t idle = 0;
    if (!goro__cas_acqrel(&running, &idle, 1))
        return GORO_EBUSY;

    memset(&goro__S, 0, sizeof goro__S);
    mutex_init_adaptive(&goro__S.lock);
    mutex_init_adaptive(&goro__S.gfree_lock);
    mutex_init_adaptive(&goro__S.runq_lock);
    goro__page_size = (size_t)sysconf(_SC_PAGESIZE);
    goro__S.ncpu = goro__ncpu();
    goro__debug_parse();
    /* Deterministic mode (replay.c, V1): one P, hence one thread running goroutines. */
    goro__replay_init(goro__debug.deterministic);
    if (goro__replay_on)
        goro__S.divert = GORO__DIVERT_REPLAY; /* before any M runs */
    long v = 0;
    int procs = c.maxprocs;
    if (!procs)
        procs = env_int("GORO_MAXPROCS", 1, GORO__MAXPROCS_LIMIT, &v) ? (int)v : goro__S.ncpu;
    if (procs > GORO__MAXPROCS_LIMIT)
        procs = GORO__MAXPROCS_LIMIT;
    if (goro__replay_on)
        procs = 1;
    size_t stack = c.stack_size;
    if (!stack)
        stack = env_int("GORO_STACK_SIZE", GORO__MIN_STACK, (long)GORO__MAX_STACK, &v)
                    ? (size_t)v
                    : GORO__DEFAULT_STACK;
    goro__S.stack_size = (stack + goro__page_size - 1) & ~(goro__page_size - 1);
    goro__S.max_threads = c.max_threads ? c.max_threads : 10000;
    int64_t compact_after = c.compact_after;
    if (!compact_after && env_int("GORO_COMPACT_AFTER", 0, 1000000, &v))
        compact_after = v ? v * 1000000 : -1; /* milliseconds; 0 turns it off */
    goro__compact_init(compact_after);
    /* Each live goroutine holds at least a descriptor and, once it ran, a stack page. */
    goro__S.max_goroutines = goro__physmem() / (int64_t)(goro__page_size + GORO__G_STRIDE);
    goro__S.timer_wake = INT64_MAX;
    goro__S.poll_until = INT64_MAX;
    goro__S.coarse_now = goro__nanotime_coarse();
    goro__S.fpenv = goro__fpenv_read();

    /* Alone on its cache lines, as the other Ms are (sched.c, newm): an M's counters
     * change at every switch, and a flag every spawn reads (goro__replay_on) once shared
     * m0's last line, which made fib on 2 Ps 1.5x slower. */
    static struct {
        _Alignas(GORO__CACHE_LINE) goro__m m;
        char pad[GORO__CACHE_LINE];
    } m0;
    memset(&m0, 0, sizeof m0);
    goro__m *m = &m0.m;
    int err = GORO_ENOMEM;
    goro__S.allp = calloc(GORO__MAXPROCS_LIMIT, sizeof *goro__S.allp);
    if (!goro__S.allp)
        goto out_free;
    for (int i = 0; i < procs; i++)
        if (!(goro__S.allp[i] = p_new(i)))
            goto out_free;
    goro__S.gomaxprocs = procs;
    goro__S.allm = m;
    goro__S.mcount = 1;
    m->thread = pthread_self(); /* other Ms get theirs from pthread_create */
    goro__m_init_thread(m);
    goro__signals_install();
    goro__acquirep(m, goro__S.allp[0]);
    for (int i = procs - 1; i > 0; i--)
        goro__pidleput(goro__S.allp[i]);
    goro__trace_run_begin(); /* GORO_TRACE */

    /* Main gets a thread-sized stack (virtual; only touched pages cost memory): it is
     * often ported code that expects what a C main has. */
    size_t main_stack =
        goro__S.stack_size > GORO__MAIN_STACK ? goro__S.stack_size : GORO__MAIN_STACK;
    err = goro__newproc(m->p, main_stack, "main", main_fn, arg, __builtin_return_address(0), true);
    if (err) {
        goro__signals_restore();
        goro__m_fini_thread(m);
        goto out_free;
    }
    if (!goro__replay_on) /* deterministic mode: no preemption, no handoff (replay.c, V1) */
        goro__sysmon_start();
    goro__schedule();
    /* Everything main did happens before goro_run returns (race.h; released in g_end). */
    goro__race_acquire(&goro__S.exiting);

    /* Main returned: every other M leaves its loop at its next switch (sched.c). */
    goro__sysmon_stop();
    pthread_mutex_lock(&goro__S.lock);
    for (goro__m *w = goro__S.midle; w; w = goro__S.midle) {
        goro__S.midle = w->schedlink;
        goro__note_wakeup(&w->park);
    }
    pthread_mutex_unlock(&goro__S.lock);
    for (goro__m *o = goro__S.allm; o; o = o->alllink)
        if (o != m)
            pthread_join(o->thread, NULL);
    goro__signals_restore();
    goro__m_fini_thread(m);
    goro__netpoll_fini();
    goro__trace_run_end();
    err = 0;
out_free:
    free_all(m);
    goro__replay_fini();
    pthread_mutex_destroy(&goro__S.lock);
    pthread_mutex_destroy(&goro__S.gfree_lock);
    pthread_mutex_destroy(&goro__S.runq_lock);
    /* Release pairs with the CAS above in the next goro_run. */
    goro__store_release(&running, 0);
    return err;
}

/* ------------------------------------------------------------------ goroutines */

/* goro_spawn and goro_spawn_attr; pc is their caller, shown as the spawn site. */
static int spawn(const goro_attr *attr, void (*fn)(void *), void *arg, void *pc) {
    goro__m *m = goro__getm();
    if (!fn)
        return GORO_EINVAL;
    if (!m || !m->curg)
        return GORO_EPERM;
    size_t size = goro__S.stack_size;
    const char *name = NULL;
    if (attr) {
        if (attr->stack_size) {
            if (attr->stack_size < GORO__MIN_STACK || attr->stack_size > GORO__MAX_STACK)
                return GORO_EINVAL;
            size = (attr->stack_size + goro__page_size - 1) & ~(goro__page_size - 1);
        }
        name = attr->name;
    }
    goro__acquirem_m(m);
    if (GORO__UNLIKELY(!m->p))
        m = goro__repossess(m);
    int err = goro__newproc(m->p, size, name, fn, arg, pc, false);
    goro__releasem(m);
    if (GORO__UNLIKELY(goro__replay_on) && err == 0)
        goro__replay_yield(); /* a decision point (replay.c) */
    return err;
}

int goro_spawn_attr(const goro_attr *attr, void (*fn)(void *), void *arg) {
    return spawn(attr, fn, arg, __builtin_return_address(0));
}

int goro_spawn(void (*fn)(void *), void *arg) {
    return spawn(NULL, fn, arg, __builtin_return_address(0));
}

uint64_t goro_self(void) {
    goro__g *g = goro__getg();
    return g ? goro__g_id(g) : 0;
}

int goro_numgoroutine(void) {
    if (!goro__load_acquire(&running) || !goro__S.allp)
        return 0;
    int64_t n = 0;
    for (int i = 0; i < GORO__MAXPROCS_LIMIT && goro__S.allp[i]; i++)
        n += goro__load_relaxed(&goro__S.allp[i]->ngoroutines);
    return (int)n;
}

int64_t goro_now(void) {
    return goro__nanotime();
}

static void sleep_fire(goro__timer *t, int64_t now) {
    (void)now;
    goro__ready(t->arg);
}

/* Adds the sleep timer once the goroutine is WAITING, so it cannot fire before. */
static bool sleep_commit(goro__g *g, void *arg) {
    (void)g;
    goro__timer_add(goro__getm()->p, arg);
    return true;
}

int goro_sleep_until(int64_t deadline) {
    goro__g *g = goro__getg();
    if (!g) {
        goro__outside_sleep_until(deadline); /* a plain thread: it sleeps itself */
        return 0;
    }
    if (deadline != GORO_FOREVER && deadline <= goro__nanotime()) {
        goro_yield();
        return 0;
    }
    if (deadline == GORO_FOREVER) {
        goro__park(GORO__WAIT_SLEEP, NULL, NULL);
        return 0;
    }
    goro__timer t = {.when = deadline, .f = sleep_fire, .arg = g, .idx = -1};
    goro__park(GORO__WAIT_SLEEP, sleep_commit, &t);
    return 0;
}

int goro_sleep(int64_t ns) {
    if (ns <= 0) {
        goro_yield();
        return 0;
    }
    return goro_sleep_until(goro__nanotime() + ns);
}

/* ------------------------------------------------------------------ stop the world */

/* Caller is a goroutine; its P stays with it, counted as stopped, and the monitor leaves
 * it alone until goro__start_the_world. */
void goro__stop_the_world(void) {
    goro__m *m = goro__acquirem();
    if (!m->p)
        goro__repossess(m);
    pthread_mutex_lock(&goro__S.lock);
    goro__S.stopwait = goro__S.gomaxprocs;
    /* Seq-cst: Ms check gcwaiting at every switch and before parking; a pick tests the
     * divert bit first, so it is set first. */
    __atomic_fetch_or(&goro__S.divert, GORO__DIVERT_STOP, __ATOMIC_SEQ_CST);
    goro__store_sc(&goro__S.gcwaiting, 1);
    goro__S.stopwait--; /* ours */
    while (goro__pidleget())
        goro__S.stopwait--; /* idle ones leave the idle list until the world starts */
    for (int i = 0; i < goro__S.gomaxprocs; i++) {
        /* A P whose M is in a blocking call is taken from it (Go's _Psyscall to
         * _Pgcstop); its goro_blocking_end then finds the P gone. Acq-rel CAS, as the
         * monitor's (sysmon.c). */
        goro__p *p = goro__S.allp[i];
        uint32_t st = goro__load_acquire(&p->status);
        if ((st & GORO__P_SYSCALL) && goro__cas_acqrel(&p->status, &st, st & ~GORO__P_SYSCALL)) {
            goro__store_relaxed(&p->m, NULL);
            goro__S.stopwait--;
        }
    }
    bool wait = goro__S.stopwait > 0;
    pthread_mutex_unlock(&goro__S.lock);
    while (wait) {
        goro__note_sleep(&goro__S.stopnote, GORO_FOREVER);
        goro__note_clear(&goro__S.stopnote);
        pthread_mutex_lock(&goro__S.lock);
        wait = goro__S.stopwait > 0 && !goro__load_relaxed(&goro__S.exiting);
        pthread_mutex_unlock(&goro__S.lock);
    }
}

/* Moves everything queued on p to the global queue and its caches to the global caches
 * (cached channel blocks are freed). The world is stopped; caller holds sched.lock. */
static void p_drain(goro__p *p, goro__p *heir) {
    goro__g *g;
    if ((g = goro__xchg_acqrel(&p->runnext, NULL)))
        goro__globrunq_put(&g, 1);
    while ((g = goro__runq_get(&p->runq)))
        goro__globrunq_put(&g, 1);
    while ((g = goro__lifo_steal(&p->lifo)))
        goro__globrunq_put(&g, 1);
    goro__timers_move(heir, p);
    goro__stack_flush(p);
    goro__gfree_flush(p, 0);
    goro__chan_cache_flush(p);
}

void goro__start_the_world(int n) {
    goro__m *m = goro__getm();
    goro__p *start[GORO__MAXPROCS_LIMIT];
    int nstart = 0;
    pthread_mutex_lock(&goro__S.lock);
    int old = goro__S.gomaxprocs;
    for (int i = old; i < n; i++)
        if (!goro__S.allp[i]) {
            goro__p *np = p_new(i);
            if (!np) {
                n = i; /* out of memory: grow as far as we can */
                break;
            }
            /* Relaxed: the store of gomaxprocs below publishes it (the monitor). */
            goro__store_relaxed(&goro__S.allp[i], np);
        }
    if (n < 1)
        n = 1;
    if (m->p->id >= n) {
        goro__releasep(m);
        goro__acquirep(m, goro__S.allp[0]);
    }
    for (int i = n; i < old; i++)
        p_drain(goro__S.allp[i], m->p);
    goro__store_sc(&goro__S.gomaxprocs, n);
    goro__store_sc(&goro__S.gcwaiting, 0);
    __atomic_fetch_and(&goro__S.divert, ~(uint32_t)GORO__DIVERT_STOP, __ATOMIC_SEQ_CST);
    for (int i = n - 1; i >= 0; i--) {
        goro__p *p = goro__S.allp[i];
        if (p == m->p)
            continue;
        if (goro__p_queued(p) || goro__load_relaxed(&p->runnext))
            start[nstart++] = p;
        else
            goro__pidleput(p);
    }
    pthread_mutex_unlock(&goro__S.lock);
    for (int i = 0; i < nstart; i++)
        goro__startm(start[i], false);
    goro__wakep();
    goro__releasem(m);
}

int goro_maxprocs(int n) {
    goro__m *m = goro__getm();
    if (!m || !m->curg)
        return GORO_EPERM;
    int old = goro__load_relaxed(&goro__S.gomaxprocs);
    if (n < 1 || n == old)
        return old;
    if (GORO__UNLIKELY(goro__replay_on))
        return old; /* deterministic mode stays on one P (replay.c, V1) */
    if (n > GORO__MAXPROCS_LIMIT)
        n = GORO__MAXPROCS_LIMIT;
    goro__stop_the_world();
    goro__start_the_world(n);
    return old;
}
