/*
 * race.h - what the runtime tells ThreadSanitizer in a race build (GORO_RACE): goroutines
 * are separate TSan threads, and the happens-before edges of Go's memory model are given
 * explicitly at the points where Go's runtime calls raceacquire/racerelease (chan.go,
 * sema.go and the sync package under -race). Included by internal.h; every call is a
 * no-op in other builds.
 *
 * Two ThreadSanitizer builds (CMake GORO_SANITIZE, docs/ARCHITECTURE.md):
 *  - "thread": everything is instrumented, the runtime too, and a goroutine switch
 *    synchronises the two fibers (flag 0 of __tsan_switch_to_fiber). This finds races
 *    inside the runtime, but two goroutines that run on one thread are always ordered, so
 *    races in the program between them are hidden (with GORO_MAXPROCS=1, all of them).
 *  - "race" (GORO_RACE): the program is instrumented, the runtime's files are compiled
 *    without -fsanitize=thread, switches do not synchronise (no_sync), and the runtime
 *    adds exactly the edges of Go's memory model with __tsan_acquire/__tsan_release:
 *    a program that races on data that no goroutine operation orders is reported.
 *
 * Terms. A sync object is an address: release merges the calling fiber's vector clock
 * into it, acquire merges it into the caller's. The address is only a key: the runtime
 * never reads or writes memory through these calls.
 *
 * Invariants of the race build
 *  (R1) Nothing the runtime does reaches TSan except through this file: its files are not
 *       instrumented (plain loads, stores and atomics are invisible), and its calls into
 *       libc that TSan intercepts (malloc, memcpy, pthread mutexes, fds, epoll, ...) run
 *       with the fiber's reads, writes and synchronisation ignored (the wrappers at the
 *       end). Otherwise its internal locks and queues would order every goroutine after
 *       every other, and its reused memory (descriptors, channel blocks) would race.
 *  (R2) Each goroutine runs on a fiber of its own, created without inheriting the
 *       creator's clock. A fiber stays with its stack (stack.c), and a used stack with its
 *       fiber waits in a quarantine of GORO__RACE_QUARANTINE others before it is reused,
 *       so two goroutines share a TSan thread only if that many goroutines ended in
 *       between (a fiber costs TSan ~0.8 MiB and ~1 ms to create; one per goroutine
 *       would be unaffordable). The later one then also starts with the fiber's clock:
 *       it is ordered after its predecessors there and what they synchronised with, a
 *       blind spot for races that old. The stale shadow of a stack's old frames belongs
 *       to the same fiber and cannot race; a stack whose fiber had to go (goro_exit) is
 *       remapped, which clears its shadow.
 *  (R3) An acquire or release on behalf of a parked goroutine (Go's raceacquireg) switches
 *       TSan to that goroutine's fiber for the call: the partner that completes its
 *       channel operation holds the channel lock, and the parked goroutine cannot run
 *       until the partner readies it. A parking goroutine's M leaves its fiber for g0's
 *       before the park's unlock callback publishes it (goro__race_park), since the M
 *       runs on until the switch (sched.c, P1); it ignores reads and writes there, as
 *       they are on the goroutine's stack.
 *  (R4) Timer callbacks run with the M's timer fiber current (Go's per-P timer context),
 *       which acquires what the arming goroutine released; the goroutine whose stack
 *       the callback happens to run on is not involved.
 *  (R5) The runtime's own contexts (g0, the timer fibers) acquire nothing a goroutine
 *       released, except what a timer fiber passes from an arming to that timer's value.
 *       So a goroutine may acquire the start of the M it runs on (goro__race_switched):
 *       that orders TSan's record of the thread's thread-local initialisation before
 *       it, and nothing of another goroutine.
 *
 * The edges (where):
 *  - goro_spawn (and goro_run for main) before the new goroutine starts: a token the
 *    spawner releases, acquired in g_entry's loop (sched.c, race.c).
 *  - channels (chan.c): send before the matching receive completes; for a buffered
 *    channel the k-th send and the k-th receive meet on slot k mod cap, which also orders
 *    the k-th receive before the (k+cap)-th send completes; an unbuffered hand-off
 *    orders both ways, through the parked side's waiter record (TSan's sync objects
 *    merge, so one per channel would carry each pair's clocks on to the next pair);
 *    close before any operation that observes it. select is its chosen case.
 *  - goro_mutex unlock before the next lock; rwmutex unlock before later read locks and
 *    locks, read unlocks before the next lock; goro_wg_done/add(-n) before the
 *    goro_wg_wait it releases; the first goro_once_do's fn before every goro_once_do
 *    returns (sync.c, rwmutex.c, once.c). goro_cond adds none: its mutex orders.
 *  - goro_timer_make/reset before a receive of the value that arming sends (time.c);
 *    goro_close of an fd before a call that fails because of it (netpoll.c). Sleeping,
 *    readiness of an fd and a switch are not synchronisation.
 *  - the main goroutine's return before goro_run returns (sched.c, proc.c).
 */
#ifndef GORO_RACE_H
#define GORO_RACE_H

#include <stdbool.h>
#include <stddef.h>

#ifndef GORO_RACE
#define GORO_RACE 0
#endif

typedef struct goro__g goro__g;
typedef struct goro__m goro__m;

/* A used stack waits behind this many others before another goroutine gets it (R2). */
#define GORO__RACE_QUARANTINE 64

#if GORO_RACE

/* acquire/release by the running goroutine (or the M's current context) on addr. */
void goro__race_acquire(const void *addr);
void goro__race_release(const void *addr);
/* The same on behalf of the parked goroutine g (R3). */
void goro__race_acquire_g(goro__g *g, const void *addr);
/* Go's racenotify: acquire, then release, by g (NULL: the running goroutine): how the
 * k-th send and the k-th receive of a buffered channel meet on a slot. */
void goro__race_notify(const void *addr, goro__g *g);
/* Go's racesync: the running goroutine and the parked partner g each get the other's
 * clock through addr (an unbuffered hand-off; addr is the partner's waiter record, on
 * which only goroutines of that stack's fiber ever wait). */
void goro__race_sync(const void *addr, goro__g *partner);
/* In goro__switch, on the fiber switched to on m: a goroutine may use the thread-local
 * variables of the thread it now runs on, which TSan saw initialised when the thread
 * started. The M's start is released into a sync object of the M, acquired here (R5). */
void goro__race_switched(goro__m *m);
/* In goro__park, before the unlock callback: m leaves the goroutine's fiber for its g0's
 * (R3). park_end ends that, before the switch (g NULL) or back on g's fiber when g runs on
 * without one. */
void goro__race_park(goro__m *m);
void goro__race_park_end(goro__g *g);
/* In goro__newproc, on the spawner: g will start after this (R2). */
void goro__race_spawn(goro__g *g);
/* In g_entry's loop, on g's own fiber, before g's function runs. */
void goro__race_gostart(goro__g *g);
/* A new fiber with an empty clock (R2). */
void *goro__race_fiber_create(void);
/* Make and destroy m's timer fiber; enter returns the fiber to give back to exit (R4). */
void goro__race_m_init(goro__m *m);
void goro__race_m_fini(goro__m *m);
void *goro__race_timer_enter(void);
void goro__race_timer_exit(void *prev);
/* Clears the shadow memory of a stack whose fiber was destroyed (R2). */
void goro__race_stack_reset(void *lo, size_t size);

#else /* !GORO_RACE */

static inline void goro__race_acquire(const void *addr) {
    (void)addr;
}
static inline void goro__race_release(const void *addr) {
    (void)addr;
}
static inline void goro__race_acquire_g(goro__g *g, const void *addr) {
    (void)g;
    (void)addr;
}
static inline void goro__race_notify(const void *addr, goro__g *g) {
    (void)addr;
    (void)g;
}
static inline void goro__race_sync(const void *addr, goro__g *partner) {
    (void)addr;
    (void)partner;
}
static inline void goro__race_switched(goro__m *m) {
    (void)m;
}
static inline void goro__race_park(goro__m *m) {
    (void)m;
}
static inline void goro__race_park_end(goro__g *g) {
    (void)g;
}
static inline void goro__race_spawn(goro__g *g) {
    (void)g;
}
static inline void goro__race_gostart(goro__g *g) {
    (void)g;
}
static inline void goro__race_m_init(goro__m *m) {
    (void)m;
}
static inline void goro__race_m_fini(goro__m *m) {
    (void)m;
}
static inline void *goro__race_fiber_create(void) {
    return NULL;
}
static inline void goro__race_stack_reset(void *lo, size_t size) {
    (void)lo;
    (void)size;
}
static inline void *goro__race_timer_enter(void) {
    return NULL;
}
static inline void goro__race_timer_exit(void *prev) {
    (void)prev;
}

#endif /* GORO_RACE */

/*
 * (R1) The runtime's calls into libc that ThreadSanitizer intercepts, made invisible to
 * it: each runs with the calling fiber ignoring reads, writes and synchronisation. Only
 * in the runtime's own (uninstrumented) files of a race build; the program's calls are
 * intercepted as usual. The headers come first so that their declarations are not
 * rewritten by the macros. Calls gcc emits by itself (a large struct copy) are not
 * covered: the runtime avoids them on memory that several goroutines reuse.
 */
#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if GORO_RACE && !defined(__SANITIZE_THREAD__) && !__has_feature(thread_sanitizer)
#include <dlfcn.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

void goro__race_ignore_begin(void);
void goro__race_ignore_end(void);

/* f(...) with TSan ignoring the calling fiber; the value is f's. */
#define GORO__RACE_IGNORED(f, ...)                                                                 \
    __extension__({                                                                                \
        goro__race_ignore_begin();                                                                 \
        __typeof__(f(__VA_ARGS__)) goro__race_r = f(__VA_ARGS__);                                  \
        goro__race_ignore_end();                                                                   \
        goro__race_r;                                                                              \
    })
#define GORO__RACE_IGNORED_VOID(f, ...)                                                            \
    __extension__({                                                                                \
        goro__race_ignore_begin();                                                                 \
        f(__VA_ARGS__);                                                                            \
        goro__race_ignore_end();                                                                   \
    })

/* Memory: allocations imitate a write by the allocating fiber and frees check for races
 * with earlier accesses; copies record accesses. */
#define malloc(...) GORO__RACE_IGNORED(malloc, __VA_ARGS__)
#define calloc(...) GORO__RACE_IGNORED(calloc, __VA_ARGS__)
#define realloc(...) GORO__RACE_IGNORED(realloc, __VA_ARGS__)
#define free(...) GORO__RACE_IGNORED_VOID(free, __VA_ARGS__)
#define memcpy(...) GORO__RACE_IGNORED(memcpy, __VA_ARGS__)
#define memmove(...) GORO__RACE_IGNORED(memmove, __VA_ARGS__)
#define memset(...) GORO__RACE_IGNORED(memset, __VA_ARGS__)
#define qsort(...) GORO__RACE_IGNORED_VOID(qsort, __VA_ARGS__)
#define mmap(...) GORO__RACE_IGNORED(mmap, __VA_ARGS__)
#define munmap(...) GORO__RACE_IGNORED(munmap, __VA_ARGS__)
#define mprotect(...) GORO__RACE_IGNORED(mprotect, __VA_ARGS__)
/* Threads and locks: acquire and release between whichever fibers call them. */
#define pthread_mutex_init(...) GORO__RACE_IGNORED(pthread_mutex_init, __VA_ARGS__)
#define pthread_mutex_destroy(...) GORO__RACE_IGNORED(pthread_mutex_destroy, __VA_ARGS__)
#define pthread_mutex_lock(...) GORO__RACE_IGNORED(pthread_mutex_lock, __VA_ARGS__)
#define pthread_mutex_unlock(...) GORO__RACE_IGNORED(pthread_mutex_unlock, __VA_ARGS__)
#define pthread_create(...) GORO__RACE_IGNORED(pthread_create, __VA_ARGS__)
#define pthread_join(...) GORO__RACE_IGNORED(pthread_join, __VA_ARGS__)
/* Files and sockets: TSan orders a write before a read of the same fd (all sockets
 * share one sync object) and checks fd accesses against close; an fd is not a sync
 * point in Go's model. */
#define read(...) GORO__RACE_IGNORED(read, __VA_ARGS__)
#define write(...) GORO__RACE_IGNORED(write, __VA_ARGS__)
#define close(...) GORO__RACE_IGNORED(close, __VA_ARGS__)
#define pipe2(...) GORO__RACE_IGNORED(pipe2, __VA_ARGS__)
#define fstat(...) GORO__RACE_IGNORED(fstat, __VA_ARGS__)
#define poll(...) GORO__RACE_IGNORED(poll, __VA_ARGS__)
#define socket(...) GORO__RACE_IGNORED(socket, __VA_ARGS__)
#define bind(...) GORO__RACE_IGNORED(bind, __VA_ARGS__)
#define listen(...) GORO__RACE_IGNORED(listen, __VA_ARGS__)
#define accept4(...) GORO__RACE_IGNORED(accept4, __VA_ARGS__)
#define connect(...) GORO__RACE_IGNORED(connect, __VA_ARGS__)
#define getsockopt(...) GORO__RACE_IGNORED(getsockopt, __VA_ARGS__)
#define setsockopt(...) GORO__RACE_IGNORED(setsockopt, __VA_ARGS__)
#define getsockname(...) GORO__RACE_IGNORED(getsockname, __VA_ARGS__)
#define getaddrinfo(...) GORO__RACE_IGNORED(getaddrinfo, __VA_ARGS__)
#define freeaddrinfo(...) GORO__RACE_IGNORED_VOID(freeaddrinfo, __VA_ARGS__)
#define epoll_create1(...) GORO__RACE_IGNORED(epoll_create1, __VA_ARGS__)
#define epoll_ctl(...) GORO__RACE_IGNORED(epoll_ctl, __VA_ARGS__)
#define epoll_wait(...) GORO__RACE_IGNORED(epoll_wait, __VA_ARGS__)
#define eventfd(...) GORO__RACE_IGNORED(eventfd, __VA_ARGS__)
#define fopen(...) GORO__RACE_IGNORED(fopen, __VA_ARGS__)
#define fclose(...) GORO__RACE_IGNORED(fclose, __VA_ARGS__)
#define fgets(...) GORO__RACE_IGNORED(fgets, __VA_ARGS__)
/* Formatting into the runtime's buffers (dumps, fatal errors). */
#define fprintf(...) GORO__RACE_IGNORED(fprintf, __VA_ARGS__)
#define snprintf(...) GORO__RACE_IGNORED(snprintf, __VA_ARGS__)
#define vsnprintf(...) GORO__RACE_IGNORED(vsnprintf, __VA_ARGS__)
#define dladdr(...) GORO__RACE_IGNORED(dladdr, __VA_ARGS__)
#endif

#endif /* GORO_RACE_H */
