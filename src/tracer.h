/*
 * tracer.h - every hook of the execution tracer (tracer.c), and nothing else.
 *
 * The runtime's files call these at the points where a goroutine or a P changes state,
 * one line each. A hook costs, while no trace records, one load of goro__tracing and one
 * branch the CPU predicts as not taken (GORO__UNLIKELY; in the hand-off's hooks the load
 * is the operand of a compare, GORO__TRACING_GOTO): the work is out of line, in a
 * cold function of tracer.c, so the inlined part leaves no register pressure and no
 * extra code in the hot path's cache lines. goro__park, the hooks of every hand-off, tests
 * once for all of its own (the *_on hooks below, tracer.c R5).
 *
 * Where a hook writes (tracer.c, R1-R3): into the buffer of the P the calling M holds,
 * which only the M that holds the P writes (owner-P); or, from an M without a P (the
 * monitor thread, an M that lost its P in a blocking call, an M polling the netpoller),
 * into one global buffer under a lock. Every hook below that takes a P or an M runs
 * inside a runtime entry (m->locks > 0, see internal.h): the preemption signal cannot
 * take the P from under it.
 *
 * Event order per goroutine, which the JSON writer (tracer_json.c) checks:
 *   create -> start -> {stop -> start | block -> unblock -> start |
 *                       syscall enter -> syscall exit} ... -> end.
 * A hook that records a goroutine's unblock, create or start (which reads or counts up
 * the generation in g->gword) runs before anything publishes the goroutine to another thread, so
 * its generation is the one it had when the event happened (tracer_json.c J2).
 *
 * See-also: tracer.c (buffers, clock, start and stop), tracer_json.c (the file format),
 * docs/TRACING.md (how to use it).
 */
#ifndef GORO_TRACER_H
#define GORO_TRACER_H

#include <stdbool.h>
#include <stdint.h>

#include "atomic.h"
#include "internal.h"
#include "tracer_json.h"

/* Nonzero while a trace records. [atomic] Written by goro_trace_start/stop with the world
 * stopped (relaxed is enough for the hooks: the stop and start of the world order it for
 * every P; an M without a P re-reads it under the global buffer's lock). Hidden: the
 * hooks in other files load it directly, not through the GOT (-fPIC), a second load. */
extern uint32_t goro__tracing __attribute__((visibility("hidden")));

#define GORO__TRACING() GORO__UNLIKELY(goro__load_relaxed(&goro__tracing))

/* Jumps to label while a trace records: for the tests of every channel hand-off
 * (goro__park, goro__ready) and of the one-P yield's switch, on x86-64 one compare with
 * memory and a branch, where GORO__TRACING()'s load, test and branch are three
 * instructions. */
#if defined(__x86_64__) && !GORO_TSAN
#define GORO__TRACING_GOTO(label)                                                                  \
    __asm__ goto("cmpl $0, %0\n\tjne %l1" : : "m"(goro__tracing) : "cc" : label)
#else
#define GORO__TRACING_GOTO(label)                                                                  \
    do {                                                                                           \
        if (GORO__TRACING())                                                                       \
            goto label;                                                                            \
    } while (0)
#endif

/* Event types, as stored in the buffers. */
enum {
    GORO__EV_NONE = 0,
    GORO__EV_GO_CREATE,     /* g created; arg: parent id; payload: spawn pc, name */
    GORO__EV_GO_EXISTING,   /* g alive when the trace started; reason: its GORO__G_* state,
                               arg: its wait reason; payload: name */
    GORO__EV_GO_START,      /* g starts running on p */
    GORO__EV_GO_STOP,       /* g stops running, stays runnable; reason: GORO__TRACE_STOP_* */
    GORO__EV_GO_BLOCK,      /* g parks; reason: GORO__WAIT_* */
    GORO__EV_GO_UNBLOCK,    /* g made runnable; arg: waker id (0: the runtime) */
    GORO__EV_GO_END,        /* g returned or called goro_exit */
    GORO__EV_PROC_START,    /* m acquires p */
    GORO__EV_PROC_STOP,     /* m releases p */
    GORO__EV_PROC_STEAL,    /* p taken from its M (blocking call, hog) by another thread */
    GORO__EV_SYSCALL_ENTER, /* g enters goro_blocking_begin */
    GORO__EV_SYSCALL_EXIT,  /* g leaves goro_blocking_end (p: the P it runs on now) */
    GORO__EV_NETPOLL_WAKE,  /* the netpoller found g's fd ready */
    GORO__EV_TIMER_FIRE,    /* a timer's callback runs */
    GORO__EV_REGION_BEGIN,  /* payload: name; arg: its task, 0 if none */
    GORO__EV_REGION_END,
    GORO__EV_LOG,        /* payload: category, NUL, message; arg: its task, 0 if none */
    GORO__EV_TASK_BEGIN, /* arg: the task's id; payload: name */
    GORO__EV_TASK_END,   /* arg: the task's id */
    GORO__EV_NTYPES
};

/* Why a goroutine stopped running while runnable. */
enum { GORO__TRACE_STOP_YIELD = 0, GORO__TRACE_STOP_PREEMPT = 1 };

/* The out-of-line halves (tracer.c), each taking three words. Cold: only run while
 * tracing. */
typedef uintptr_t goro__tw;
void goro__trace_go_create_slow(goro__tw p, goro__tw g, goro__tw unused);
/* m, g, and the compact record (tracer_json.h: for a start, with the generation before it
 * counted it up), or GORO__EV_GO_END << 8 for an end (its generation is read from g); the
 * event's arg is the waker for GORO__EV_GO_UNBLOCK. */
void goro__trace_go_ev_slow(goro__tw m, goro__tw g, goro__tw w);
void goro__trace_go_unpark_slow(goro__tw m, goro__tw g, goro__tw parked);
void goro__trace_proc_slow(goro__tw m, goro__tw p, goro__tw type);
void goro__trace_syscall_enter_slow(goro__tw m, goro__tw g, goro__tw unused);
void goro__trace_syscall_exit_slow(goro__tw m, goro__tw g, goro__tw unused);
void goro__trace_netpoll_wake_slow(goro__tw g, goro__tw unused1, goro__tw unused2);
void goro__trace_timer_fire_slow(goro__tw unused0, goro__tw unused1, goro__tw unused2);
/* goro_run's start and end: GORO_TRACE=path, and stopping a trace goro_run outlives. */
void goro__trace_run_begin(void);
void goro__trace_run_end(void);

/* GORO__TRACE_CALL(fn, a, b, c) calls fn(a, b, c) through goro__trace_tramp
 * (arch/<cpu>/trace_tramp.S), which saves and restores every general-purpose register a
 * C call may clobber: to the compiler the call is an asm statement that changes memory
 * and the vector registers only, so the code around a hook keeps its values in the
 * registers it had chosen and pushes no callee-saved register for the hook's sake. A plain call in
 * the same place cost bench_pingpong 2-3 instructions of register saves per hook on the hot path
 * (cachegrind), beyond the hook's load, test and branch. The function and its arguments go on the
 * stack, from any registers, so that none has to be in a fixed register either (fixed
 * argument registers cost goro__park two moves at entry). x86-64: the red zone below rsp
 * belongs to the surrounding code, so the pushes start 128 bytes lower.
 * ThreadSanitizer builds and other CPUs use a plain call. */
#if defined(__x86_64__) && !GORO_TSAN
#define GORO__TRACE_CALL(fn, a, b, c)                                                              \
    __asm__ volatile("subq $128, %%rsp\n\tpushq %3\n\tpushq %2\n\tpushq %1\n\tpushq %0\n\t"        \
                     "callq goro__trace_tramp\n\taddq $160, %%rsp"                                 \
                     :                                                                             \
                     : "r"(fn), "re"((goro__tw)(a)), "re"((goro__tw)(b)), "re"((goro__tw)(c))      \
                     : "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6",     \
                       "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14",        \
                       "xmm15")
#elif defined(__aarch64__) && !GORO_TSAN
#define GORO__TRACE_CALL(fn, a, b, c)                                                              \
    __asm__ volatile("stp %0, %1, [sp, #-32]!\n\tstp %2, %3, [sp, #16]\n\t"                        \
                     "bl goro__trace_tramp\n\tadd sp, sp, #32"                                     \
                     :                                                                             \
                     : "r"(fn), "r"((goro__tw)(a)), "r"((goro__tw)(b)), "r"((goro__tw)(c))         \
                     : "x30", "memory", "cc", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7",      \
                       "v8", "v9", "v10", "v11", "v12", "v13", "v14", "v15", "v16", "v17", "v18",  \
                       "v19", "v20", "v21", "v22", "v23", "v24", "v25", "v26", "v27", "v28",       \
                       "v29", "v30", "v31")
#else
#define GORO__TRACE_CALL(fn, a, b, c) (fn)((goro__tw)(a), (goro__tw)(b), (goro__tw)(c))
#endif

/* ---- the inline fast path of the hot goroutine hooks (start, stop, block, unblock)
 *
 * Recording one of these four on an owned P (tracer.c, R1) is one 8-byte store into the
 * P's chunk: the compact word (tracer_json.h), without a timestamp (the JSON writer
 * interpolates it between the stamped records around it, tracer.c R7). No clock read, no
 * call. The out-of-line half (through the trampoline) runs when the cursor reaches
 * lim: the chunk is full, the stamp countdown ran out (every GORO__TRACE_STAMP_EVERY
 * events), the ticker asked for a stamp (it stores NULL into p->trace_lim), or the P has
 * no chunk yet. A record carries its goroutine's generation (tracer_json.h), which a
 * start counts up, so the writer can order the P streams by causality. The record is the
 * goroutine's word, which its descriptor keeps ready-made (goro__gword, runtime.h), ORed
 * with a constant: 9-11 instructions a record on x86-64 (tracer.c, "Cost"). A block tests
 * m->p: a goroutine may park without a P (the preemption signal took it in user code, and
 * goro__park cannot take one back, see there), so only a start writes without the test. */

/* Writes the compact record w into the chunk of p, the P m holds (p->trace_pos, below
 * p->trace_lim: runtime.h), or calls the out-of-line half slow(m, g, w). The P is m's own:
 * these hooks run in the runtime entries of a goroutine that is not in a blocking call
 * (goro.h: between goro_blocking_begin and _end a goroutine calls no goro_ function), or on
 * g0, so no other thread may have taken it (goro__ready's runnext store counts on the same).
 * x86-64: the limit, which the ticker may clear from another thread, is compared in memory
 * and the branch taken in the same asm (a relaxed atomic load takes a register and one
 * instruction more; a flag output, a setb and a test). */
#if defined(__x86_64__) && !GORO_TSAN
#define GORO__TRACE_PUT_P(p, m, g, w, slow)                                                        \
    do {                                                                                           \
        __label__ full_;                                                                           \
        goro__p *p_ = (p);                                                                         \
        uint64_t *pos_ = p_->trace_pos;                                                            \
        uint64_t wp_ = (w);                                                                        \
        __asm__ goto("cmpq %1, %0\n\tjae %l2" : : "r"(pos_), "m"(p_->trace_lim) : "cc" : full_);   \
        *pos_ = wp_;                                                                               \
        __asm__("addq $8, %0" : "+m"(p_->trace_pos)); /* one instruction, not two */               \
        break;                                                                                     \
    full_:                                                                                         \
        __attribute__((cold));                                                                     \
        GORO__TRACE_CALL(slow, m, g, wp_);                                                         \
    } while (0)
#else
#define GORO__TRACE_PUT_P(p, m, g, w, slow)                                                        \
    do {                                                                                           \
        goro__p *p_ = (p);                                                                         \
        uint64_t *pos_ = p_->trace_pos;                                                            \
        uint64_t wp_ = (w);                                                                        \
        if (GORO__LIKELY(pos_ < goro__load_relaxed(&p_->trace_lim))) {                             \
            *pos_ = wp_;                                                                           \
            p_->trace_pos = pos_ + 1;                                                              \
        } else {                                                                                   \
            GORO__TRACE_CALL(slow, m, g, wp_);                                                     \
        }                                                                                          \
    } while (0)
#endif

/* The same into m's P, if m holds one (else the slow half writes the global stream).
 * has_p: m holds a P for sure (a start: the goroutine is one of m's P's), no test. */
#define GORO__TRACE_PUT(m, g, w, slow, has_p)                                                      \
    do {                                                                                           \
        goro__p *pp_ = (m)->p;                                                                     \
        if (GORO__LIKELY((has_p) || pp_ != NULL))                                                  \
            GORO__TRACE_PUT_P(pp_, m, g, w, slow);                                                 \
        else                                                                                       \
            GORO__TRACE_CALL(slow, m, g, w);                                                       \
    } while (0)

/* Records a start, stop, block or unblock of g with its generation now: its word ORed
 * with a constant. A start counts the generation up, a 16-bit add in the descriptor (the
 * start it records is the generation's first event, tracer_json.h). */
#define GORO__TRACE_GO_ON(m, g, type, reason)                                                      \
    do {                                                                                           \
        uint64_t w_ = GORO__TRACE_WORD(type, reason, (g)->gword.w);                                \
        if ((type) == GORO__EV_GO_START)                                                           \
            (g)->gword.h.gen++;                                                                    \
        GORO__TRACE_PUT(m, g, w_, goro__trace_go_ev_slow, (type) == GORO__EV_GO_START);            \
    } while (0)

/* The same into p, the P m holds. */
#define GORO__TRACE_GO_ON_P(m, p, g, type, reason)                                                 \
    do {                                                                                           \
        uint64_t w_ = GORO__TRACE_WORD(type, reason, (g)->gword.w);                                \
        if ((type) == GORO__EV_GO_START)                                                           \
            (g)->gword.h.gen++;                                                                    \
        GORO__TRACE_PUT_P(p, m, g, w_, goro__trace_go_ev_slow);                                    \
    } while (0)

/* The same, if a trace records. */
#define GORO__TRACE_GO(m, g, type, reason)                                                         \
    do {                                                                                           \
        if (GORO__TRACING())                                                                       \
            GORO__TRACE_GO_ON(m, g, type, reason);                                                 \
    } while (0)

_Static_assert(GORO__EV_GO_STOP == GORO__EV_GO_START + 1 &&
                   GORO__EV_GO_BLOCK == GORO__EV_GO_START + 2 &&
                   GORO__EV_GO_UNBLOCK == GORO__EV_GO_START + 3,
               "the compact records' types (tracer_json.h)");
_Static_assert(GORO__WAIT_NREASONS <= 32, "a compact record's reason has 5 bits");

/* ---- the hooks, one line each at their call sites */

#define GORO__TRACE_HOOK(fn, a, b, c)                                                              \
    do {                                                                                           \
        if (GORO__TRACING())                                                                       \
            GORO__TRACE_CALL(fn, a, b, c);                                                         \
    } while (0)

/* newproc: g was just created on p by the running goroutine (if any). */
static inline void goro__trace_go_create(goro__p *p, goro__g *g) {
    GORO__TRACE_HOOK(goro__trace_go_create_slow, p, g, 0);
}

/* run(), hand_stack: g starts running on m's P. */
static inline void goro__trace_go_start(goro__m *m, goro__g *g) {
    GORO__TRACE_GO(m, g, GORO__EV_GO_START, 0);
}

/* The same, for a caller that found a trace recording at the start of its runtime entry
 * (goro__park): nothing can start or stop one before it leaves the entry (tracer.c R5),
 * so one test serves all of its hooks. */
static inline void goro__trace_go_start_on(goro__m *m, goro__g *g) {
    GORO__TRACE_GO_ON(m, g, GORO__EV_GO_START, 0);
}

/* A yield or a preemption (why: GORO__TRACE_STOP_*): g stops running, stays runnable. */
static inline void goro__trace_go_stop(goro__m *m, goro__g *g, int why) {
    GORO__TRACE_GO(m, g, GORO__EV_GO_STOP, why);
}

/* The one-P yield's inlined switch on p, m's P: from yields, to starts (one test for
 * both, and the P the yield loaded already). */
static inline void goro__trace_go_switch(goro__m *m, goro__p *p, goro__g *from, goro__g *to) {
    GORO__TRACING_GOTO(on);
    return;
on:
    __attribute__((cold));
    GORO__TRACE_GO_ON_P(m, p, from, GORO__EV_GO_STOP, GORO__TRACE_STOP_YIELD);
    GORO__TRACE_GO_ON_P(m, p, to, GORO__EV_GO_START, 0);
}

/* goro__park, while a trace records (as goro__trace_go_start_on), before anything
 * publishes g as waiting. */
static inline void goro__trace_go_block_on(goro__m *m, goro__g *g, int reason) {
    GORO__TRACE_GO_ON(m, g, GORO__EV_GO_BLOCK, reason);
}

/* goro__park, while a trace records, when g runs on without a switch: not parked after
 * all (unlockf said no), or readied already by the time it picked. */
static inline void goro__trace_go_unpark_on(goro__m *m, goro__g *g, bool parked) {
    GORO__TRACE_CALL(goro__trace_go_unpark_slow, m, g, parked);
}

/* goro__ready: m's running goroutine (or the runtime on g0) makes the waiting g runnable,
 * before anything publishes it as runnable (so before it can start and count its
 * generation up). p: m's P (goro__ready's common case, which loaded it already). */
static inline void goro__trace_go_unblock_p(goro__m *m, goro__p *p, goro__g *g) {
    GORO__TRACING_GOTO(on);
    return;
on:
    __attribute__((cold));
    GORO__TRACE_PUT_P(p, m, g, GORO__TRACE_WORD(GORO__EV_GO_UNBLOCK, 0, g->gword.w),
                      goro__trace_go_ev_slow);
}

/* The same, m with or without a P (goro__ready's rare cases). */
static inline void goro__trace_go_unblock(goro__m *m, goro__g *g) {
    GORO__TRACE_GO(m, g, GORO__EV_GO_UNBLOCK, 0);
}

/* goro__ready from a thread outside the runtime (no M, no P): the unblock goes to the
 * global stream (R2), with g's generation now, as goro__trace_go_unblock's. */
static inline void goro__trace_go_unblock_outside(goro__g *g) {
    GORO__TRACE_HOOK(goro__trace_go_ev_slow, 0, g,
                     GORO__TRACE_WORD(GORO__EV_GO_UNBLOCK, 0, g->gword.w));
}

/* g_end: g returned from its function or called goro_exit. */
static inline void goro__trace_go_end(goro__m *m, goro__g *g) {
    GORO__TRACE_HOOK(goro__trace_go_ev_slow, m, g, (goro__tw)GORO__EV_GO_END << 8);
}

/* acquirep (and the preempted P taken back): m now holds p. */
static inline void goro__trace_proc_start(goro__m *m, goro__p *p) {
    GORO__TRACE_HOOK(goro__trace_proc_slow, m, p, GORO__EV_PROC_START);
}

/* releasep: m gives p up. Called while m still holds it. */
static inline void goro__trace_proc_stop(goro__m *m, goro__p *p) {
    GORO__TRACE_HOOK(goro__trace_proc_slow, m, p, GORO__EV_PROC_STOP);
}

/* handoffp: p was taken from an M in a blocking call or from a hog. */
static inline void goro__trace_proc_steal(goro__p *p) {
    GORO__TRACE_HOOK(goro__trace_proc_slow, 0, p, GORO__EV_PROC_STEAL);
}

/* goro_blocking_begin, while m still owns its P (before the store that lets others take
 * it). */
static inline void goro__trace_syscall_enter(goro__m *m, goro__g *g) {
    GORO__TRACE_HOOK(goro__trace_syscall_enter_slow, m, g, 0);
}

/* goro_blocking_end, once g runs on a P again (m->p, owned). */
static inline void goro__trace_syscall_exit(goro__m *m, goro__g *g) {
    GORO__TRACE_HOOK(goro__trace_syscall_exit_slow, m, g, 0);
}

/* The netpoller found g's fd ready (any thread, with or without a P). */
static inline void goro__trace_netpoll_wake(goro__g *g) {
    GORO__TRACE_HOOK(goro__trace_netpoll_wake_slow, g, 0, 0);
}

/* A timer's callback is about to run, on an M that holds a P. */
static inline void goro__trace_timer_fire(void) {
    GORO__TRACE_HOOK(goro__trace_timer_fire_slow, 0, 0, 0);
}

#endif
