/*
 * internal.h - declarations shared between the runtime's files (goro__ prefix), the
 * assertion and fatal-error machinery, and sanitizer detection.
 */
#ifndef GORO_INTERNAL_H
#define GORO_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "goro.h"

#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
#define GORO_ASAN 1
#else
#define GORO_ASAN 0
#endif
/* GORO_RACE (race.h): a ThreadSanitizer build in which only the program is instrumented;
 * the runtime, compiled without TSan, still keeps its goroutines' fibers. */
#ifndef GORO_RACE
#define GORO_RACE 0
#endif
#if defined(__SANITIZE_THREAD__) || __has_feature(thread_sanitizer) || GORO_RACE
#define GORO_TSAN 1
#else
#define GORO_TSAN 0
#endif
#ifndef GORO_DEBUG
#define GORO_DEBUG 0
#endif

/* Adds 1 to a 64-bit counter that only the calling thread writes and other threads read
 * with goro__load_relaxed. x86-64: one unlocked `addq` to memory (an aligned 8-byte store
 * cannot tear), where the relaxed store of a load plus one takes three instructions; a
 * ThreadSanitizer build keeps the atomic form, which it can see. */
#if defined(__x86_64__) && !GORO_TSAN
#define goro__bump_owned(p) __asm__("addq $1, %0" : "+m"(*(p)))
#else
#define goro__bump_owned(p) goro__store_relaxed((p), *(p) + 1)
#endif

#include "runtime.h"
/* Happens-before for ThreadSanitizer. After every system header: in the runtime's files
 * of a race build it wraps libc calls in macros. */
#include "race.h"

#define GORO__LIKELY(x) __builtin_expect(!!(x), 1)
#define GORO__UNLIKELY(x) __builtin_expect(!!(x), 0)
/* Bytes of a cache line (x86-64 and the aarch64 cores goro runs on): what a structure
 * written by one thread and read by others is aligned and padded to. */
#define GORO__CACHE_LINE 64

/* Prints "goro: fatal: <message>" and a dump of every goroutine to stderr, then aborts. */
void goro__fatal(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* Checked in debug and sanitizer builds: a broken runtime invariant is fatal. */
#if GORO_DEBUG
#define GORO_ASSERT(cond)                                                                          \
    do {                                                                                           \
        if (GORO__UNLIKELY(!(cond)))                                                               \
            goro__fatal("runtime invariant broken: %s (%s:%d)", #cond, __FILE__, __LINE__);        \
    } while (0)
#else
#define GORO_ASSERT(cond) ((void)0)
#endif

/* ---- sched.c: the scheduler */
extern goro__sched goro__sched_state;
#define goro__S goro__sched_state
/* The calling thread's M, or NULL outside the runtime. Never cached by the compiler across
 * a call that may switch goroutines (the goroutine may resume on another thread). */
goro__m *goro__getm(void);
void goro__setm(goro__m *m);
/* The thread's M, in initial-exec TLS (sched.c): a fixed offset from the thread pointer. */
extern __thread goro__m *goro__tls_m __attribute__((tls_model("initial-exec")));
/* The M at the entry of a function, before anything in it may switch: a plain
 * thread-local read, inline. Only for a read that is not repeated after a switch in the
 * same function (the compiler may reuse the thread-local address it computed); later
 * reads use goro__getm. */
static inline goro__m *goro__getm_entry(void) {
    return goro__tls_m;
}
/* The running goroutine, or NULL outside a goroutine. */
goro__g *goro__getg(void);
/* Runtime entry and exit around code that uses the M's P (Go's acquirem/releasem; see
 * m->locks): while inside, the monitor's preemption signal leaves the P alone. The P may
 * already be gone on entry (taken while user code ran): code that can wait takes one back
 * with goro__repossess, code that holds locks copes without one. A switch inside is fine:
 * release on the M the goroutine resumes on. */
static inline void goro__acquirem_m(goro__m *m) {
    m->locks++;
    /* The signal handler runs on this thread: a compiler barrier orders it, and forces
     * m->p to be read again after it. */
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
}
static inline goro__m *goro__acquirem(void) {
    goro__m *m = goro__getm();
    goro__acquirem_m(m);
    return m;
}
static inline void goro__releasem(goro__m *m) {
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    m->locks--;
}
/* Inside acquirem, with m->p NULL and no runtime lock held: gets m a P back (the one the
 * signal handler took, an idle one, or by waiting in the global queue; then the goroutine
 * may resume on another M, which is returned). */
goro__m *goro__repossess(goro__m *m);
/* Wakes an idle M for an idle P if nobody spins; for callers without a P (goro__wakep
 * assumes the caller holds one). */
void goro__wakep_any(void);
/* Gives p, taken from an M in a blocking call or from a goroutine running too long, to
 * another M, or to the idle list if it has no work. Caller holds no lock. */
void goro__handoffp(goro__p *p);
/* Whether p or the global queue has something to run, or p a timer due by now. */
bool goro__p_has_work(goro__p *p, int64_t now);
/* Parks the running goroutine with reason. It is WAITING when unlockf(g, arg) runs (still on
 * its own stack, before the switch): from then on a partner may ready it, and a switch to
 * it waits until its context is saved (sched.c, P1). If unlockf returns false the goroutine
 * goes on running instead. unlockf may be NULL. Must be called from a goroutine. */
void goro__park(int reason, bool (*unlockf)(goro__g *, void *), void *arg);
/* An unlockf for goro__park: stores 0 to the uint32_t lock word arg (release), the
 * channel lock's unlock. goro__park does it inline, without the call. */
bool goro__commit_unlock_word(goro__g *g, void *arg);
/* Makes a WAITING goroutine runnable on the caller's P, in its runnext slot. The caller
 * runs on an M that holds a P (a goroutine, or g0 running timers). */
void goro__ready(goro__g *g);
/* Puts the running goroutine at the back of its P's queue and runs the next one. */
void goro__yield_now(void);
/* Wakes an idle M to run an idle P if there is one and nobody is spinning. */
void goro__wakep(void);
/* A thread outside the runtime woke a goroutine or had to wait (so it may wake goroutines):
 * the deadlock check stands down for the rest of the run (sched.c). */
void goro__outside_contact(void);
/* n goroutines the netpoller found (RUNNABLE already), to the global queue: they leave
 * sched.npollwait and enter the queue under sched.lock, so check_deadlock (which holds it)
 * sees them in one place or the other, and none runs while still counted (netpoll.c, N4).
 * Never called with sched.lock held. */
void goro__polled_to_global(goro__g **gs, int n);
/* A random number generator (wyrand) on the state *s, inline: a select draws one per two
 * cases. In deterministic mode the seeded stream's (replay.c, V2). goro__rand uses the
 * M's state; a thread outside the runtime has one of its own (chan.c). */
extern bool goro__replay_on;      /* declared with replay.c's below */
uint64_t goro__replay_rand(void); /* likewise */
static inline uint64_t goro__rand_on(uint64_t *s) {
    if (GORO__UNLIKELY(goro__replay_on))
        return goro__replay_rand();
    *s += 0xa0761d6478bd642fULL;
    __uint128_t r = (__uint128_t)*s * (*s ^ 0xe7037ed1a0b428dbULL);
    return (uint64_t)(r >> 64) ^ (uint64_t)r;
}
static inline uint64_t goro__rand(goro__m *m) {
    return goro__rand_on(&m->rand);
}
/* Scheduler entry points used by proc.c. */
void goro__schedule(void);
void goro__acquirep(goro__m *m, goro__p *p);
goro__p *goro__releasep(goro__m *m);
void goro__pidleput(goro__p *p); /* Caller holds sched.lock. */
goro__p *goro__pidleget(void);   /* Caller holds sched.lock. */
void goro__startm(goro__p *p, bool spinning);
/* The global run queue (runq.c). put appends n goroutines; get takes a fair share (at most
 * max if max > 0), returns the first and puts the rest into p's run queue (owner P only).
 * Both take runq_lock; callers may hold sched.lock. free releases every batch. */
void goro__globrunq_put(goro__g *const *gs, uint32_t n);
goro__g *goro__globrunq_get(goro__p *p, int32_t max);
void goro__globrunq_free(void);
void goro__runqput(goro__p *p, goro__g *g, bool next);
/* Any thread. Whether p's run queue or spawn stack holds goroutines (runnext apart). */
static inline bool goro__p_queued(goro__p *p) {
    return !goro__runq_empty(&p->runq) || !goro__lifo_empty(&p->lifo);
}
/* Creates a runnable goroutine on p (in its runnext slot) and wakes an idle P. */
int goro__newproc(goro__p *p, size_t stack_size, const char *name, void (*fn)(void *), void *arg,
                  void *pc, bool is_main);
void goro__m_init_thread(goro__m *m);
void goro__m_fini_thread(goro__m *m);

/* ---- netpoll.c: the netpoller */
#define GORO__NETPOLL_BATCH 128
/* The backend when GORO_NETPOLL is unset (netpoll.c): epoll, which served as many
 * requests as io_uring for less CPU each (scripts/bench_http.sh, README.md,
 * docs/ARCHITECTURE.md 7c). A build may define it to GORO_NETPOLL_IO_URING. */
#ifndef GORO__NETPOLL_DEFAULT
#define GORO__NETPOLL_DEFAULT GORO_NETPOLL_EPOLL
#endif
/* Polls for ready fds until deadline (0: do not wait; GORO_FOREVER), storing at most max
 * goroutines made ready in gs (their status still WAITING, still counted in
 * sched.npollwait: the caller queues them, then uncounts them, netpoll.c N4); returns how
 * many. */
int goro__netpoll(int64_t deadline, goro__g **gs, int max);
/* Interrupts a poll blocked in goro__netpoll. Callable from any thread. */
void goro__netpoll_break(void);
/* Polls without waiting and makes what it finds runnable on p, the caller's P, or, if p
 * is NULL, on the global queue (sched.c's inject). Returns how many; *first is one for
 * the caller to run (NULL without a P). */
int goro__netpoll_inject(goro__p *p, goro__g **first);
/* Frees the poller at shutdown. */
void goro__netpoll_fini(void);
/* The backend in use (GORO_NETPOLL_*; NONE before the first fd was registered), and in
 * *fallback why io_uring was not used when epoll runs in its place (0 or a negative
 * code). Any thread. */
int goro__netpoll_backend(int *fallback);

/* ---- sysmon.c: the monitor thread */
void goro__sysmon_start(void);
void goro__sysmon_stop(void);
/* The preemption signal's handler (installed by os_linux.c). */
void goro__preempt_handler(void);
#define GORO__SIGPREEMPT SIGURG

/* ---- gdesc.c: goroutine descriptors */
/* A free descriptor from p's cache (refilled from the global stack or a new slab), or
 * NULL when out of memory or beyond max_goroutines. Owner P only. */
goro__g *goro__g_alloc(goro__p *p);
/* Returns a finished goroutine's descriptor to p's cache. Owner P only. */
void goro__gfput(goro__p *p, goro__g *g);
/* Moves p's cached free descriptors beyond the first keep to the global stack. */
void goro__gfree_flush(goro__p *p, int32_t keep);
/* A place in the descriptor slabs. goro__g_next returns the descriptor there and moves
 * on, or NULL at the end of the slabs (the next call starts over). Callable while other
 * threads run: what it reads of a descriptor is the caller's business. */
typedef struct goro__gcursor {
    void *slab;
    size_t i;
} goro__gcursor;
goro__g *goro__g_next(goro__gcursor *c);
/* Calls f on every descriptor, free ones included. The runtime is stopped, or the caller
 * holds gfree_lock. */
void goro__for_each_g(void (*f)(goro__g *, void *), void *arg);
/* Unmaps every slab. The runtime is stopped. */
void goro__g_free_all(void);

/* ---- proc.c: start, stop, resize */
void goro__stop_the_world(void);
void goro__start_the_world(int newprocs);

/* ---- context.c and arch/<cpu>/switch.S: the context switch */
/* Saves the callee-saved registers on the current stack, stores the stack pointer in
 * *from_sp, loads to_sp and restores the registers found there. Returns, when something
 * switches back, the ret that switcher passed. */
void *goro__ctx_switch(void **from_sp, void *to_sp, void *ret);
/* Prepares a fresh stack [lo, lo+size) so that switching to the returned stack pointer calls
 * entry(arg) on it as the outermost frame. */
void *goro__ctx_init(char *lo, size_t size, void (*entry)(void *), void *arg);
/* The calling thread's floating-point control state (x86-64: MXCSR's control bits and,
 * shifted by 32, the x87 control word; aarch64: FPCR), as a switched-out frame keeps it. */
uint64_t goro__fpenv_read(void);
/* Sets the calling thread's floating-point control state to sched.fpenv, what a new
 * goroutine starts with. */
void goro__fpenv_reset(void);
/* to's saved stack pointer once its switch has stored it (sched.c, P1). */
void *goro__wait_saved(goro__g *to);

/* Switches from the running context `from` to `to` on M m, telling the sanitizers; `dying`
 * says that `from` never runs again. Returns the M that later switches back to `from`.
 * Inline: it is on the path of every switch. */
#if GORO_ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#if GORO_TSAN
#include <sanitizer/tsan_interface.h>
/* Runs the signal handlers TSan deferred on the current fiber (os_linux.c). */
void goro__tsan_run_signals(void);
#endif
static inline goro__m *goro__switch(goro__g *from, goro__g *to, bool dying, goro__m *m) {
    /* Acquire pairs with the switch that saved to's context: a release store (P1). */
    void *sp = __atomic_load_n(&to->sp, __ATOMIC_ACQUIRE);
    if (GORO__UNLIKELY(!GORO__SP_REAL(sp))) /* being saved, or compacted (compact.c) */
        sp = goro__wait_saved(to);
#if GORO_ASAN
    /* A local, not a field of from: a context resumed after its goroutine exited runs
     * for a new goroutine, and from's descriptor may belong to someone else by then. */
    void *fake_stack = NULL;
    __sanitizer_start_switch_fiber(dying ? NULL : &fake_stack, to->stack_lo, to->stack_size);
#endif
#if GORO_TSAN
    goro__tsan_run_signals();
#if !GORO_RACE
    /* The asm's store of from->sp publishes from's context (P1), unseen by TSan. */
    __tsan_release(&from->sp);
#endif
    /* Flag 0 orders everything before the switch before everything after it; a race
     * build orders goroutines only by what they do (race.h). */
    __tsan_switch_to_fiber(to->tsan_fiber, GORO_RACE ? __tsan_switch_to_fiber_no_sync : 0);
#if !GORO_RACE
    __tsan_acquire(&to->sp);
#endif
    goro__race_switched(m); /* now on to's fiber */
#endif
    (void)dying;
    m = goro__ctx_switch(&from->sp, sp, m);
#if GORO_ASAN
    __sanitizer_finish_switch_fiber(fake_stack, NULL, NULL);
#endif
    return m;
}
/* Tells the sanitizers that a context began running (first instruction of a goroutine). */
void goro__switch_started(void);
void goro__g_san_create(goro__g *g);
void goro__g_san_destroy(goro__g *g);
void goro__m_san_init(goro__m *m);
/* The saved frame pointer and return address of a switched-out context, for backtraces. */
void goro__ctx_frame(void *sp, uintptr_t *fp, uintptr_t *pc);

/* ---- stack.c: goroutine stacks */
/* Bytes at the top of every stack that frames never use: a free stack's record. */
#define GORO__STACK_HDR 64
extern size_t goro__page_size;
/* Gives g a stack of g->stack_size usable bytes (from p's cache when of the default size).
 * If the stack holds the suspended context of a goroutine that returned, g->sp is set to
 * it (resuming it runs g's function, see g_entry); otherwise g->sp is NULL.
 * Returns 0 or GORO_ENOMEM. */
int goro__stack_get(goro__p *p, goro__g *g);
/* Takes g's stack back (into p's cache when of the default size). With reusable, g->sp
 * (and g's TSan fiber) stay with the stack for the next goroutine. */
void goro__stack_put(goro__p *p, goro__g *g, bool reusable);
/* Moves p's cached stacks to the global cache. */
void goro__stack_flush(goro__p *p);
/* Unmaps every stack. The runtime is stopped. */
void goro__stack_release_all(void);
/* The guard region below g's stack: [*lo, *hi). */
void goro__stack_guard(const goro__g *g, uintptr_t *lo, uintptr_t *hi);
void goro__stack_stats(uint64_t *count, uint64_t *bytes);
/* Whether guards are MADV_GUARD_INSTALL regions (no mapping of their own). */
bool goro__stack_guard_advice(void);
/* Records g, whose stack the compactor is about to release, as the owner of that stack
 * for goro__stack_owner. False if g's stack is not in a chunk the map knows (a stack
 * mapped on its own): then it must not be compacted with a fault restore (K6). */
bool goro__stack_set_owner(goro__g *g);
/* The goroutine recorded as owning the stack that holds addr, if that stack is still
 * its own; else NULL. Async-signal-safe, lock-free (the SIGSEGV handler, compact.c K6). */
goro__g *goro__stack_owner(uintptr_t addr);
/* Whether addr lies in a chunk of goroutine stacks (guards included). Lock-free. */
bool goro__stack_holds(uintptr_t addr);
#define GORO__STACK_CANARY 0x676f726f5354414bULL

/* ---- timer.c: per-P timers */
struct goro__timer {
    int64_t when;                          /* [lock: p->timers_lock] fires at or after this */
    void (*f)(goro__timer *, int64_t now); /* runs on an M holding a P, no lock held */
    void *arg;
    goro__p *p;  /* [lock: p->timers_lock] the P whose heap holds or held it (T3) */
    int32_t idx; /* [lock: p->timers_lock] heap index, -1 when not in a heap */
};
/* Adds t to p's heap. */
void goro__timer_add(goro__p *p, goro__timer *t);
/* Removes t if pending; true if it was. */
bool goro__timer_del(goro__timer *t);
/* Runs up to max (0: every one) of the timers of src due at now; their callbacks run on
 * the caller's P. Returns the number run. */
int goro__timers_run(goro__p *src, int64_t now, int max);
/* Moves all timers of src to dst. The world is stopped. */
void goro__timers_move(goro__p *dst, goro__p *src);
void goro__timers_free(goro__p *p);
/* Called after a timer is added: wakes the M sleeping until a later time, if any. */
void goro__timers_added(int64_t when);

/* ---- os_linux.c: the operating system */
int64_t goro__nanotime(void);
/* A cheaper clock with about a millisecond of resolution, for "waiting since". */
int64_t goro__nanotime_coarse(void);
void goro__note_clear(goro__note *n);
void goro__note_wakeup(goro__note *n);
/* Returns true if woken, false at the deadline. */
bool goro__note_sleep(goro__note *n, int64_t deadline);
/* Whether the kernel can read the byte at p: false in a guard region (a write(2) of it to
 * a pipe fails with EFAULT). The probes of guard regions use it (stack.c, compact.c). */
bool goro__kernel_can_read(const void *p);
int goro__ncpu(void);
int64_t goro__physmem(void);
void goro__signals_install(void);
void goro__signals_restore(void);
void goro__altstack_install(goro__m *m);
void goro__altstack_remove(goro__m *m);
/* A spin lock on bit 0 of *l, for short critical sections that never park (semaphore
 * queues, timer heaps). The other bits are the caller's. */
void goro__spin_lock(uint32_t *l);
void goro__spin_unlock(uint32_t *l);
/* A thread outside the runtime (no goroutine) that has to wait for a mutex, a wait group
 * or a condition waits on its own: it polls, sleeping between looks for 1 us, doubling to
 * 1 ms (round starts at 0). goro_sleep from it sleeps the thread (CLOCK_MONOTONIC, the
 * real clock even in deterministic mode). */
void goro__outside_pause(unsigned *round);
void goro__outside_sleep_until(int64_t deadline);

/* ---- sync.c: semaphores */
void goro__sema_acquire(goro__sema *s, bool lifo, int reason);
void goro__sema_release(goro__sema *s, bool handoff);

/* ---- chan.c: channels */
/* Frees p's cached channel blocks. The runtime is stopped, or p is being removed. */
void goro__chan_cache_flush(goro__p *p);
/* Where g's plain waiter record keeps its value pointer (C7), and in *size the value's
 * size, for the compactor, which holds the lock named by g's wlock. */
void **goro__chan_wait_elem(goro__g *g, size_t *size);

/* ---- compact.c: idle-stack compaction */
/* Reads the configuration and prepares the compactor; at goro_run. after_ns < 0: off. */
void goro__compact_init(int64_t after_ns);
/* One round of the monitor: compacts goroutines parked longer than the threshold.
 * Returns whether it compacted any; *busy is set while candidates may still come due
 * (the monitor then keeps its rounds going instead of sleeping). Monitor thread only. */
bool goro__compact_round(int64_t now, bool *busy);
/* When the compactor's next pass is due (goro__nanotime), GORO_FOREVER with compaction
 * off: the monitor's deep sleep ends then, so goroutines that parked while every P was
 * idle are still compacted. Monitor thread only. */
int64_t goro__compact_due(void);
/* Frees the copies of goroutines discarded at shutdown. The runtime is stopped. */
void goro__compact_release_all(void);
/* Whether addr lies in the stack of a compacted goroutine; its id in *id (fault
 * reports). */
bool goro__compact_owner(uintptr_t addr, uint64_t *id);
/* The SIGSEGV handler's part (K6): if addr lies in a stack that is compacted or being
 * compacted, waits for the compactor, copies the stack back and returns true, so the
 * faulting access runs again. False if the fault is none of compaction's. Async-signal-
 * safe: no allocation, no lock. */
bool goro__compact_fault(uintptr_t addr);
struct goro_stats;
void goro__compact_stats(struct goro_stats *out);
/* Stacks compacted since goro_run began (the spawn budget, gdesc.c B1). Any thread. */
uint64_t goro__compact_total(void);
/* Of goro_stats.restores, those made through a fault (K6): another goroutine or thread
 * touched the parked goroutine's stack. Not in goro_stats, whose size is part of the ABI
 * of release 0.1.0 (the caller allocates it); the tests read it here. Any thread. */
uint64_t goro__compact_fault_restores(void);
/* Holds (true) or lets go (false) the compactor, for a reader of other goroutines' stacks
 * with the world stopped (goro_dump): no stack is compacted meanwhile, and no compacted
 * one is restored while no goroutine switches. */
void goro__compact_pause(bool pause);
/* For a compacted g: its saved stack pointer in *sp, and in *delta what to add to an
 * address in [sp, top) to read that byte in the copy. False if g is not compacted. */
bool goro__compact_frames(const goro__g *g, uintptr_t *sp, intptr_t *delta);
/* Waits while the compactor works on g (sp COMPACTING). */
void goro__compact_wait(goro__g *g);
/* Copies a compacted goroutine's stack back and returns its saved stack pointer. The
 * caller is about to switch to g (it is RUNNING). */
void *goro__compact_restore(goro__g *g);
/* Whether this goro_run compacts stacks (compact.c). [init-only] With it off, the wait
 * paths below cost a load of this flag and a branch. */
extern bool goro__compacting;
/* Publishes g's in-descriptor record of kind as queued under *lock (K2), a lock word that
 * is not on g's stack (a channel's: in its heap block). Caller holds *lock and has
 * enqueued the record; g is the running goroutine. */
static inline void goro__wait_queued_off_stack(goro__g *g, int kind, uint32_t *lock) {
    if (!goro__compacting)
        return;
    g->wkind = (uint8_t)kind;
    /* Relaxed: read by the compactor once g is parked, after its acquire of g->sp. */
    __atomic_store_n(&goro__gw(g)->wlock, lock, __ATOMIC_RELAXED);
}
/* The same for a lock word anywhere. One on g's own stack (a wait group of its own) is
 * not published: it would be compacted with the stack, so such a wait is never a
 * candidate. */
static inline void goro__wait_queued(goro__g *g, int kind, uint32_t *lock) {
    if (goro__compacting &&
        !((char *)lock >= g->stack_lo && (char *)lock < g->stack_lo + g->stack_size))
        goro__wait_queued_off_stack(g, kind, lock);
}
/* (K3) Whoever takes g's in-descriptor record off its queue, holding *goro__gw(g)->wlock, calls
 * this before touching what the record points at: a compactor that claimed g either sees
 * the record gone or is waited for. The relaxed store and load are ordered against the
 * compactor's by its membarrier (the compiler fence keeps them in program order). */
static inline void goro__wait_dequeued(goro__g *g) {
    if (!goro__compacting)
        return;
    __atomic_store_n(&goro__gw(g)->wlock, (uint32_t *)NULL, __ATOMIC_RELAXED);
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    if (GORO__UNLIKELY(__atomic_load_n(&g->sp, __ATOMIC_RELAXED) == GORO__SP_COMPACTING))
        goro__compact_wait(g);
}

/* Touch the first and last byte of a buffer a system call is about to use, so that one on
 * a compacted stack is restored through the fault instead of failing the call with EFAULT
 * (compact.c, K6). For the kernel's writes the touch is a write too (an atomic or of 0,
 * which keeps the byte): it also waits out a stack the compactor is copying, which is
 * read-only meanwhile (K7). With compaction off: a load of the flag and a branch. */
static inline void goro__touch_kernel_reads(const void *p, size_t n) {
    if (goro__compacting && n) {
        (void)*(const volatile char *)p;
        (void)((const volatile char *)p)[n - 1];
    }
}
static inline void goro__touch_kernel_writes(void *p, size_t n) {
    if (goro__compacting && n) {
        __atomic_fetch_or((char *)p, 0, __ATOMIC_RELAXED);
        __atomic_fetch_or((char *)p + n - 1, 0, __ATOMIC_RELAXED);
    }
}

/* ---- replay.c: GORO_DEBUG=deterministic=SEED */
/* Deterministic mode is on (replay.c, V1). [init-only] Tested with GORO__UNLIKELY at
 * every hook: one predictable branch when off. */
extern bool goro__replay_on;
/* The virtual clock, which goro__nanotime reads while goro__replay_on. [atomic] */
extern int64_t goro__replay_time;
/* At goro_run: seed 0 turns the mode off. fini frees what the mode allocated. */
void goro__replay_init(int64_t seed);
void goro__replay_fini(void);
/* The next number of the seeded stream (goro__rand in this mode). */
uint64_t goro__replay_rand(void);
/* pick_next's choice: a goroutine drawn from every runnable one of p, due timers run
 * first; NULL if none. Owner P (M0) only. */
goro__g *goro__replay_pick(goro__p *p);
/* findrunnable's: the same, and when nothing is runnable, the netpoller, then virtual
 * time jumps to the next timer; a deadlock is fatal. NULL when the runtime exits. On g0. */
goro__g *goro__replay_findrunnable(goro__m *m);
/* Runnable goroutines waiting in the mode's pool, not in any run queue (goro_stats). */
size_t goro__replay_queued(void);
/* goro_yield's and goro_spawn's decision point: the caller goes on or another runs. */
void goro__replay_yield(void);

/* ---- debugenv.c: GORO_DEBUG */
typedef struct goro__debug_vars {
    int64_t schedtrace_ms; /* a scheduler line every this many ms (schedtrace.c); 0: off */
    int64_t scheddetail;   /* 1: schedtrace adds a line per P, M and goroutine */
    int64_t start;         /* goro__nanotime() at goro_run, for schedtrace's clock */
    int64_t deterministic; /* seed of deterministic mode (replay.c); 0: off */
} goro__debug_vars;
extern goro__debug_vars goro__debug; /* [init-only] */
/* Reads $GORO_DEBUG into goro__debug; warns on stderr about what it ignores. */
void goro__debug_parse(void);

/* ---- schedtrace.c: GORO_DEBUG=schedtrace */
/* Writes the scheduler's summary line (and with scheddetail, the P, M and goroutine
 * lines) to stderr. Runs on the monitor thread. */
void goro__schedtrace(int64_t now);

/* ---- dump.c: the goroutine dump (fatal.c: goro__fatal, above; stats.c: goro_stats_get) */
const char *goro__wait_reason_str(int reason);
/* Dumps every goroutine to fd; frames: parked goroutines' stacks may be read (the world
 * is stopped and the caller holds gfree_lock). Usable from signal handlers. */
void goro__dump_locked(int fd, bool frames);
/* printf to fd through a stack buffer and write(2), at most 511 bytes: no stdio buffer
 * and no allocation, so signal handlers may call it. */
void goro__out(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
