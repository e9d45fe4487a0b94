/*
 * race.c - the race build's ThreadSanitizer calls (race.h has the design and the
 * invariants R1-R4 cited here). Empty in every other build.
 *
 * This file is compiled without -fsanitize=thread like the rest of the runtime; the
 * __tsan_ and Annotate functions come from the TSan runtime the program links.
 */
#include "internal.h"

#if GORO_RACE

#include <sanitizer/tsan_interface.h>
#include <sys/mman.h>

/* Exported by the TSan runtime but not declared by its headers. */
void __tsan_ignore_thread_begin(void);
void __tsan_ignore_thread_end(void);
void AnnotateIgnoreSyncBegin(const char *file, int line);
void AnnotateIgnoreSyncEnd(const char *file, int line);

/* (R1) Counted per fiber: a call that ignores begins and ends on the same fiber. */
void goro__race_ignore_begin(void) {
    __tsan_ignore_thread_begin();
    AnnotateIgnoreSyncBegin(__FILE__, __LINE__);
}

void goro__race_ignore_end(void) {
    AnnotateIgnoreSyncEnd(__FILE__, __LINE__);
    __tsan_ignore_thread_end();
}

void goro__race_acquire(const void *addr) {
    __tsan_acquire((void *)addr);
}

void goro__race_release(const void *addr) {
    __tsan_release((void *)addr);
}

/* (R3) Runs with g's fiber current; nothing but these calls runs on it meanwhile, and the
 * switches do not synchronise the two fibers. */
static void *enter_g(goro__g *g) {
    void *cur = __tsan_get_current_fiber();
    __tsan_switch_to_fiber(g->tsan_fiber, __tsan_switch_to_fiber_no_sync);
    return cur;
}

static void leave_g(void *cur) {
    __tsan_switch_to_fiber(cur, __tsan_switch_to_fiber_no_sync);
}

void goro__race_park(goro__m *m) {
    goro__tsan_run_signals();
    __tsan_switch_to_fiber(m->g0.tsan_fiber, __tsan_switch_to_fiber_no_sync);
    __tsan_ignore_thread_begin();
}

void goro__race_park_end(goro__g *g) {
    __tsan_ignore_thread_end();
    if (g)
        __tsan_switch_to_fiber(g->tsan_fiber, __tsan_switch_to_fiber_no_sync);
}

void goro__race_acquire_g(goro__g *g, const void *addr) {
    void *cur = enter_g(g);
    __tsan_acquire((void *)addr);
    leave_g(cur);
}

void goro__race_notify(const void *addr, goro__g *g) {
    void *cur = g ? enter_g(g) : NULL;
    __tsan_acquire((void *)addr);
    __tsan_release((void *)addr);
    if (g)
        leave_g(cur);
}

void goro__race_sync(const void *addr, goro__g *partner) {
    __tsan_release((void *)addr);
    goro__race_notify(addr, partner);
    __tsan_acquire((void *)addr);
}

/* The spawn edge goes through a one-byte allocation of its own rather than an address in
 * the descriptor: TSan's sync objects merge, and a descriptor's would carry every earlier
 * spawner of that descriptor into each new goroutine. Freeing the token frees its sync
 * object. */
void goro__race_spawn(goro__g *g) {
    void *token = malloc(1); /* (R1): through the wrapper, ignored */
    if (token)
        __tsan_release(token);
    g->race_token = token;
}

void goro__race_gostart(goro__g *g) {
    void *token = g->race_token;
    if (!token)
        return;
    g->race_token = NULL;
    __tsan_acquire(token);
    free(token);
}

/* (R2) Created with synchronisation ignored: TSan would otherwise give the new fiber the
 * clock of whatever context happens to create it (a switch in progress, or g0). */
void *goro__race_fiber_create(void) {
    AnnotateIgnoreSyncBegin(__FILE__, __LINE__);
    void *f = __tsan_create_fiber(0);
    AnnotateIgnoreSyncEnd(__FILE__, __LINE__);
    return f;
}

/* (R4) One timer fiber per M. It ignores reads and writes while a callback runs: the
 * callback runs on some goroutine's stack, and an intercepted call there must not count
 * as an access by a fiber other than that stack's. It only synchronises. */
/* The sync object of an M's start (R5): the address of a field of the M, which lives as
 * long as its thread. */
void goro__race_m_init(goro__m *m) {
    m->race_timer_fiber = goro__race_fiber_create();
    __tsan_release(&m->race_timer_fiber);
}

void goro__race_switched(goro__m *m) {
    __tsan_acquire(&m->race_timer_fiber);
}

void goro__race_m_fini(goro__m *m) {
    if (m->race_timer_fiber) {
        __tsan_destroy_fiber(m->race_timer_fiber);
        m->race_timer_fiber = NULL;
    }
}

void *goro__race_timer_enter(void) {
    goro__m *m = goro__getm();
    if (!m || !m->race_timer_fiber)
        return NULL;
    void *cur = __tsan_get_current_fiber();
    __tsan_switch_to_fiber(m->race_timer_fiber, __tsan_switch_to_fiber_no_sync);
    __tsan_ignore_thread_begin();
    return cur;
}

void goro__race_timer_exit(void *prev) {
    if (!prev)
        return;
    __tsan_ignore_thread_end();
    __tsan_switch_to_fiber(prev, __tsan_switch_to_fiber_no_sync);
}

/* (R2) A fresh mapping in place of the stack: TSan's mmap interceptor clears the shadow
 * of the range (ignoring, it resets rather than imitating a write). The guard below lo is
 * not touched; lo and size are page-aligned. */
void goro__race_stack_reset(void *lo, size_t size) {
    void *p = mmap(lo, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (p == MAP_FAILED)
        goro__fatal("race: cannot remap a goroutine stack");
}

#endif /* GORO_RACE */
