/*
 * runtime.h - the runtime's data structures: G, M, P and the scheduler (Go's runtime2.go).
 *
 * G  a goroutine: a function, its stack (taken when it first runs) and its saved context.
 * M  an OS thread. Each M has a g0: the context of the thread's own stack, where the
 *    scheduler loop runs when there is no goroutine to switch to directly.
 * P  a processor: the right to run goroutines. An M runs goroutines only while it holds a
 *    P; there are gomaxprocs Ps. Each P owns a run queue, a runnext slot, timers and caches
 *    of free goroutine descriptors and stacks.
 *
 * Protection tags on fields (STYLE.md):
 *   [owner-P]   only the M holding the P reads or writes it;
 *   [m-local]   only the M's own thread;
 *   [g-local]   only the goroutine itself, or whoever holds it off-CPU (it is in no queue);
 *   [lock: X]   while holding lock X;
 *   [atomic]    through atomic.h only, ordering stated at each use;
 *   [init-only] written before the runtime starts other threads, read-only after.
 */
#ifndef GORO_RUNTIME_H
#define GORO_RUNTIME_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runq.h"

typedef struct goro__g goro__g;
typedef struct goro__m goro__m;
typedef struct goro__p goro__p;

/* g->sp of a goroutine that parked but whose switch has not yet saved its context (sched.c,
 * P1): a switch to it waits until the real value is stored. */
#define GORO__SP_SAVING ((void *)1)
/* g->sp while the compactor works on the goroutine's stack, and once its used bytes are
 * copied aside and its pages given back (compact.c, K1): a switch to it waits while
 * COMPACTING and copies the stack back when COMPACTED. */
#define GORO__SP_COMPACTING ((void *)2)
#define GORO__SP_COMPACTED ((void *)3)
/* g->sp of a compacted goroutine whose stack a fault restored (compact.c, K6) while it
 * stays parked: its copy is still attached (a channel partner may write its value there),
 * and the switch to it frees it, after copying that value back (goro__compact_restore). */
#define GORO__SP_RESTORED ((void *)4)
/* Whether sp is a saved stack pointer rather than one of the values above. */
#define GORO__SP_REAL(sp) ((uintptr_t)(sp) > 4)
/* Whether a switch to a goroutine with this sp must go through goro__compact_restore:
 * COMPACTED or RESTORED, one compare. */
#define GORO__SP_HAS_COPY(sp) ((uintptr_t)(sp)-3 < 2)

/* Goroutine states. Transitions: FREE -> RUNNABLE (spawn) -> RUNNING <-> RUNNABLE (yield)
 * RUNNING -> WAITING (park) -> RUNNABLE (ready); RUNNING -> FREE (exit). */
enum {
    GORO__G_FREE = 0, /* descriptor on a free list, or never used */
    GORO__G_RUNNABLE,
    GORO__G_RUNNING,
    GORO__G_WAITING,
    GORO__G_SYSCALL, /* between goro_blocking_begin and _end: runs, but may have lost its P */
};

/* Why a goroutine waits (Go's waitReason); goro__wait_reason_str names each. */
enum {
    GORO__WAIT_NONE = 0,
    GORO__WAIT_SLEEP,
    GORO__WAIT_MUTEX,
    GORO__WAIT_WAITGROUP,
    GORO__WAIT_RWMUTEX_R,
    GORO__WAIT_RWMUTEX_W,
    GORO__WAIT_COND,
    GORO__WAIT_CHAN_SEND,
    GORO__WAIT_CHAN_RECV,
    GORO__WAIT_CHAN_SEND_NIL,
    GORO__WAIT_CHAN_RECV_NIL,
    GORO__WAIT_SELECT,
    GORO__WAIT_SELECT_NOCASES,
    GORO__WAIT_IO_READ,
    GORO__WAIT_IO_WRITE,
    GORO__WAIT_PREEMPTED, /* lost its P while running, waiting for one */
    GORO__WAIT_NREASONS
};

/* Kinds of waiter record in goro__gw(g)->wrec (compact.c, K2). */
enum { GORO__WK_NONE = 0, GORO__WK_CHAN, GORO__WK_SEMA };

/* What the context switched to does with the goroutine switched away from, once that one's
 * registers are saved and its stack is no longer in use (see finish_switch in sched.c). */
enum {
    GORO__ACT_NONE = 0,
    GORO__ACT_READY,  /* put it on the run queue (yield) */
    GORO__ACT_EXIT,   /* it returned; recycle its stack (with its context) and descriptor */
    GORO__ACT_GOEXIT, /* it called goro_exit; recycle, but its context is not reusable */
    GORO__ACT_GLOBAL, /* it has no P: put it on the global run queue (repossess) */
};

/* P status for goro_blocking_begin/end (Go's _Psyscall): bit 0 set while the P's M is in
 * a blocking call and the monitor may take the P; the bits above count blocking calls,
 * so an M returning from an old call cannot reclaim a P that moved on (no ABA). */
#define GORO__P_SYSCALL 1u

/* A goroutine's word: what each of its trace records carries (tracer_json.h,
 * GORO__TRACE_GG), kept ready-made so that a record is this word ORed with a constant
 * (tracer.h). Bits 0-7 are 0; bits 8-47 hold the id mod 2^40 (the rest of the id is in
 * id_hi: goro__g_id); bits 48-63 the generation, mod 2^16: while tracing, the goroutine's
 * starts and blocking-call returns, which count it up (gen++, one 16-bit add, wraps by
 * itself). A spawn stores id << 8, so a new goroutine's generation starts at its id's bits
 * 40-55: any start is good, the trace learns it from the create or existing record. The
 * generation changes while the goroutine runs, so a reader on another thread (dumps) loads
 * only the id's bytes, lo and mid (goro__g_id_relaxed). Little-endian (x86-64, aarch64). */
typedef union goro__gword {
    uint64_t w;
    struct {
        uint32_t lo;  /* bits 0-31 */
        uint16_t mid; /* bits 32-47 */
        uint16_t gen; /* bits 48-63 */
    } h;
} goro__gword;
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "goro__gword's halves");

struct goro__g {
    void *sp;               /* [atomic] saved stack pointer while switched out;
                               GORO__SP_SAVING while a park is switching it out (P1) */
    goro__g *schedlink;     /* [lock: whichever list or queue holds the goroutine] */
    uint32_t status;        /* [atomic] GORO__G_*; read by goro_dump and stats */
    uint8_t wait_reason;    /* [g-local] GORO__WAIT_* while WAITING */
    uint8_t is_main;        /* [init-only] the goroutine goro_run started */
    uint8_t unguarded;      /* [g-local] stack has no guard page: check the canary */
    uint8_t chunked;        /* [g-local] stack belongs to a shared chunk (default size) */
    uint8_t blocking_depth; /* [g-local] nesting of goro_blocking_begin (syscall.c) */
    uint8_t wkind;          /* [g-local; read by the compactor once it claimed g] GORO__WK_*: what
                               goro__gw(g)->wrec holds while its wlock is set */
    uint16_t id_hi;         /* [g-local; set at spawn] bits 40-55 of the id (goro__g_id) */
    uint32_t stack_size;    /* [g-local] usable stack bytes wanted / held */
    char *stack_lo;         /* [g-local] lowest usable stack byte, NULL before the first run */
    int64_t wait_since;     /* [g-local] goro_now() when it parked */
    /* Above: what a channel hand-off reads or writes of the two goroutines (the first 48
     * bytes). Below: what only a spawn, the first run and dumps use. */
    goro__gword gword;  /* [g-local; set at spawn; read by its waker, which readies it, and
                           (its id's bytes, relaxed) by dumps] the id and the trace
                           generation (goro__gword) */
    void (*fn)(void *); /* [g-local] */
    void *arg;          /* [g-local] */
    const char *name;   /* [g-local] */
    void *spawn_pc;     /* [g-local] return address of the goro_spawn call */
#if GORO_TSAN
    void *tsan_fiber; /* [g-local] ThreadSanitizer fiber of this goroutine */
    void *race_token; /* [g-local] race build: the spawner's release, until g starts */
#endif
};
#if !GORO_TSAN && defined(__LP64__)
/* 88 bytes: the parked-memory figures (README, bench_parked) count on it. */
_Static_assert(sizeof(struct goro__g) == 88, "goroutine descriptor size");
#endif

/* g's id (goroutine ids are taken mod 2^56: 2^56 spawns are decades at any rate), read by
 * g itself or by whoever holds it off-CPU. */
static inline uint64_t goro__g_id(const goro__g *g) {
    return (g->gword.w >> 8 & ((UINT64_C(1) << 40) - 1)) | (uint64_t)g->id_hi << 40;
}

/* The same, read from another thread while g may run (its generation may change: only the
 * id's bytes are loaded, each atomically; a descriptor being reused may mix two ids). */
static inline uint64_t goro__g_id_relaxed(goro__g *g) {
    return (uint64_t)(__atomic_load_n(&g->gword.h.lo, __ATOMIC_RELAXED) >> 8) |
           (uint64_t)__atomic_load_n(&g->gword.h.mid, __ATOMIC_RELAXED) << 24 |
           (uint64_t)__atomic_load_n(&g->id_hi, __ATOMIC_RELAXED) << 40;
}

/* The second part of a descriptor, right after struct goro__g in its slab (goro__gw;
 * gdesc.c): what idle-stack compaction needs (compact.c). The waiter record of a plain
 * channel operation or a semaphore wait lives here, not on the stack, so that the stack
 * can be compacted while the goroutine waits (K2); and so that the partner that completes
 * the wait on another CPU writes into lines it has already (it readies the descriptor),
 * not into the waiter's stack: with the record in the waiting frame, fib(27) on 2 Ps took
 * 1.8x as long (scripts/abtest.sh, bench_fib). wlock is the lock word guarding the queue
 * the record is on, set (with compaction on) before the record is published and cleared
 * by whoever dequeues it. */
typedef struct goro__gwait {
    uint32_t *wlock;           /* [atomic] written under *wlock */
    void *wrec[7];             /* [lock: *wlock] while queued; else [g-local] */
    struct goro__cstack *cstk; /* [g-local; the compactor's while COMPACTING] (K1) */
} goro__gwait;

/* The bytes from one descriptor to the next in a slab (gdesc.c). */
#define GORO__G_STRIDE (sizeof(goro__g) + sizeof(goro__gwait))

/* g's second part. */
static inline goro__gwait *goro__gw(goro__g *g) {
    return (goro__gwait *)(g + 1);
}

/* A one-shot wake-up for a thread, on a futex. */
typedef struct goro__note {
    uint32_t key; /* [atomic] 0: not signalled, 1: signalled */
} goro__note;

struct goro__m {
    goro__g g0;    /* [m-local] the thread's own stack context */
    goro__g *curg; /* [m-local; atomic for the monitor] the goroutine running, NULL on g0 */
    goro__p *p;    /* [m-local] the P held, NULL if none; the M's preemption signal
                      handler may clear it while locks == 0 (sysmon.c) */
    /* Runtime entries in progress on this M (Go's m.locks): > 0 while the runtime, not
     * user code, runs; always >= 1 on g0 and across a switch. The preemption signal
     * handler takes the P only when it interrupts user code (locks == 0). */
    int32_t locks;        /* [m-local] read by the M's own signal handler */
    goro__p *preempt_p;   /* [atomic] the P the handler took; the monitor or the M xchg it */
    uint32_t syscall_seq; /* [m-local] p->status value stored by goro_blocking_begin */
    int tid;              /* [init-only] kernel thread id, for the preemption signal */
    goro__p *nextp;       /* [lock: sched.lock] P handed over by whoever wakes this M */
    goro__m *schedlink;   /* [lock: sched.lock] idle M list */
    goro__m *alllink;     /* [lock: sched.lock] every M */
    goro__note park;      /* the M sleeps here when idle */
    int id;               /* [init-only] */
    bool spinning;        /* [m-local] looking for work, counted in sched.nmspinning */
    bool idle;            /* [lock: sched.lock] on the idle M list */
    pthread_t thread;     /* [init-only] */
    /* The action finish_switch performs for the context switched away from. */
    int pending;        /* [m-local] GORO__ACT_* */
    goro__g *pending_g; /* [m-local] */
    void *altstack;     /* [m-local] signal stack for stack-overflow reports */
    uint64_t rand;      /* [m-local] state of the M's random number generator */
    uint64_t nswitches; /* [atomic] written by the M only (goro__bump_owned), read relaxed
                           by stats and the monitor */
#if GORO_TSAN
    void *race_timer_fiber; /* [m-local] race build: TSan context of timer callbacks */
#endif
};

typedef struct goro__timer goro__timer;

/* A heap entry keeps its timer's deadline beside the pointer, so sifting compares
 * without touching the timers (they live on parked goroutines' stacks: a cache miss
 * each). */
typedef struct goro__timer_slot {
    int64_t when;
    goro__timer *t;
} goro__timer_slot;

/* A P caches up to this many free descriptors; it trades half with the global stack. */
#define GORO__GFREE_MAX 64

struct goro__p {
    int id;                  /* [init-only] */
    uint32_t status;         /* [atomic] GORO__P_SYSCALL | count << 1, see above */
    goro__m *m;              /* [atomic] the M holding it (for the monitor), NULL if idle */
    goro__p *link;           /* [lock: sched.lock] idle P list */
    uint32_t globcheck;      /* [owner-P] picks until the global queue is checked first (61) */
    uint32_t runnext_streak; /* [owner-P] consecutive runnext picks */
    goro__g *runnext;        /* [atomic] goroutine to run next (stealable with CAS) */
    uint32_t lifo_streak;    /* [owner-P] consecutive picks from lifo (pick_local) */
    int64_t lifo_since;      /* [owner-P] lifo busy since (coarse clock), 0 if unknown */
    goro__runq runq;         /* owner puts; owner and thieves take (runq.c) */
    goro__lifo lifo;         /* spawned, never run; owner pushes, all take (runq.h) */
    int32_t ngfree;          /* [owner-P] entries in gfree */
    goro__g *gfree[GORO__GFREE_MAX]; /* [owner-P] free goroutine descriptors, a stack */
    void *stackfree;    /* [owner-P] free default-size stacks, linked through their tops */
    int32_t nstackfree; /* [owner-P] */
    void *chanfree;     /* [owner-P] free small channel blocks (chan.c), linked */
    int32_t nchanfree;  /* [owner-P] */
    uint64_t goid_next, goid_end; /* [owner-P] batch of goroutine ids */
    /* Timers (timer.c): a 4-ary min-heap on when. */
    uint32_t timers_lock;            /* spin lock guarding the fields below it */
    struct goro__timer_slot *timers; /* [lock: timers_lock] the heap: when and timer */
    int32_t ntimers, ctimers;        /* [lock: timers_lock] */
    int64_t timer0;                  /* [atomic] when of the earliest timer, 0 if none */
    /* Statistics; written by the owner with relaxed stores, summed by goro_stats_get. */
    int64_t ngoroutines;        /* [atomic] spawned minus exited on this P */
    uint64_t nspawned, nsteals; /* [atomic] */
    /* The execution tracer's write cursor in the P's current chunk (tracer.h, tracer.c R7):
     * the hot hooks write a record at trace_pos while it is below trace_lim. */
    uint64_t *trace_pos; /* [owner-P] NULL while the P has no chunk */
    uint64_t *trace_lim; /* [atomic] the owner, and the tracer's ticker (stores NULL) */
};

/* The scheduler's global state. */
typedef struct goro__sched {
    pthread_mutex_t lock; /* "sched.lock" */
    /* Global run queue (runq.c): batches of goroutine pointers. */
    pthread_mutex_t runq_lock;
    struct goro__runq_batch *runq_head, *runq_tail; /* [lock: runq_lock] */
    struct goro__runq_batch *runq_spare;            /* [lock: runq_lock] free batches */
    int32_t runq_size;                              /* [atomic] written under runq_lock */
    /* Idle Ps and Ms. */
    goro__p *pidle;     /* [lock: sched.lock] */
    int32_t npidle;     /* [atomic] written under sched.lock */
    goro__m *midle;     /* [lock: sched.lock] */
    int32_t nmidle;     /* [atomic] written under sched.lock */
    int32_t nmspinning; /* [atomic] Ms with m->spinning set */
    goro__m *allm;      /* [lock: sched.lock] */
    int32_t mcount;     /* [atomic] written under sched.lock */
    int32_t nblocking;  /* [atomic] Ms in blocking calls */
    bool outside;       /* [atomic] a thread outside the runtime woke a goroutine or had to
                           wait: it may wake goroutines, so no deadlock check (sched.c) */
    /* Netpoller (netpoll.c). */
    int32_t npollwait;  /* [atomic] goroutines parked on the netpoller, or found by it and
                           not yet made runnable; none runs while counted (netpoll.c, N4) */
    uint32_t polling;   /* [atomic] an M is blocked in the poller (at most one) */
    int64_t poll_until; /* [atomic] when that M's poll times out, INT64_MAX if never */
    int64_t lastpoll;   /* [atomic] goro__nanotime() of the last poll, for the monitor */
    /* Monitor thread (sysmon.c). */
    pthread_t sysmon;       /* [init-only] */
    bool sysmon_started;    /* [init-only] */
    bool sysmon_deep;       /* [lock: sched.lock] it sleeps until a P becomes busy */
    goro__note sysmon_note; /* wakes it (shutdown, or out of a deep sleep) */
    uint64_t npreempt;      /* [atomic] Ps taken from goroutines running too long */
    /* goro__nanotime_coarse() as of the monitor's last round (or a P's wake from its
     * deep sleep): "waiting since" for dumps without a clock read per park. */
    int64_t coarse_now; /* [atomic] */
    /* The floating-point control state new goroutines start with: goro_run's caller's
     * (context.c, goro__fpenv_read). [init-only] */
    uint64_t fpenv;
    /* Ps. allp has room for GORO__MAXPROCS_LIMIT; the first gomaxprocs are in use. */
    goro__p **allp;     /* [init-only] the array; its entries [lock: sched.lock] */
    int32_t gomaxprocs; /* [atomic] changed only with the world stopped */
    /* Free goroutine descriptors beyond the per-P caches, and their slabs. */
    pthread_mutex_t gfree_lock;
    goro__g **gfree;       /* [lock: gfree_lock] free descriptors, a stack of pointers */
    size_t ngfree, cgfree; /* [lock: gfree_lock] entries and capacity */
    size_t ngtotal;        /* [lock: gfree_lock] descriptors in all slabs */
    void *gslabs;          /* [lock: gfree_lock] list of descriptor slabs (dump walks them) */
    /* Timers: the earliest time a sleeping M waits for, INT64_MAX if none. */
    int64_t timer_wake; /* [atomic] written under sched.lock */
    goro__m *timer_m;   /* [lock: sched.lock] the M sleeping until timer_wake, if any */
    /* Stop-the-world (goro_maxprocs). */
    uint32_t gcwaiting; /* [atomic] a stop is requested: Ps stop at their next switch */
    int32_t stopwait;   /* [lock: sched.lock] Ps still to stop */
    goro__note stopnote;
    /* Shutdown: main returned. */
    uint32_t exiting; /* [atomic] */
    /* What sends every pick off its fast path (pick_next in sched.c tests this one word):
     * GORO__DIVERT_STOP while gcwaiting, GORO__DIVERT_EXIT once exiting (each set just
     * before its field and cleared just after it), and GORO__DIVERT_REPLAY in deterministic
     * mode (set at start-up). A bit without its field only sends a pick the slow way. */
    uint32_t divert; /* [atomic] */
    /* Configuration. */
    size_t stack_size;      /* [init-only] default usable stack bytes */
    int32_t max_threads;    /* [init-only] */
    int64_t max_goroutines; /* [init-only] live goroutines allowed by physical memory */
    int ncpu;               /* [init-only] */
    uint64_t goidgen;       /* [atomic] last goroutine id handed out in a batch */
    uint64_t nhandoffs;     /* [atomic] */
} goro__sched;

#define GORO__MAXPROCS_LIMIT 1024

enum { GORO__DIVERT_STOP = 1, GORO__DIVERT_EXIT = 2, GORO__DIVERT_REPLAY = 4 };

#endif
