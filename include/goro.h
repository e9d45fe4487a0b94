/*
 * goro.h - Go's concurrency runtime for C.
 *
 * goro runs many goroutines (cheap user-space threads with their own stacks) on a few OS
 * threads, the way Go's runtime does: GOMAXPROCS "processors" (P), each with a run queue,
 * OS threads (M) that take a P and run its goroutines (G), and idle Ps stealing work from
 * busy ones. Everything here except goro_run is called from inside a goroutine.
 *
 * Conventions
 *  - Failing calls return a negative code (GORO_E*), never errno.
 *  - Time is int64_t nanoseconds on the monotonic clock (goro_now()). A deadline is an
 *    absolute goro_now() value; GORO_FOREVER waits forever; 0 means "try once".
 *  - "May park" means the calling goroutine may be suspended; its OS thread goes on running
 *    other goroutines. When it resumes it may be on another OS thread: anything that
 *    belongs to the thread (_Thread_local variables, errno, thread ids, locks taken with
 *    pthread_mutex_lock, signal masks) must not be held across a call that may park.
 *  - Misuse that corrupts state (unlocking an unlocked mutex, a negative wait-group counter,
 *    a stack overflow) prints "goro: fatal: <what>" and a dump of all goroutines to stderr,
 *    then aborts.
 */
#ifndef GORO_H
#define GORO_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the exported functions; the library hides everything else. */
#define GORO_API __attribute__((visibility("default")))

/* ---------------------------------------------------------------- errors */

#define GORO_EINVAL (-EINVAL)
#define GORO_ENOMEM (-ENOMEM)
#define GORO_EAGAIN (-EAGAIN)
#define GORO_ETIMEDOUT (-ETIMEDOUT)
#define GORO_ECANCELED (-ECANCELED)
#define GORO_EBUSY (-EBUSY)
#define GORO_EPERM (-EPERM)
/* A channel is closed. Distinct from every -errno value. */
#define GORO_ECLOSED (-10001)

/* Names every code above and every -errno value. Never returns NULL. */
GORO_API const char *goro_strerror(int code);

/* ---------------------------------------------------------------- runtime */

#define GORO_FOREVER ((int64_t)-1)

typedef struct goro_config {
    int maxprocs;      /* Ps; 0: $GORO_MAXPROCS, else the CPUs this process may use
                          (affinity mask and cgroup v2 cpu.max quota, rounded up) */
    size_t stack_size; /* default goroutine stack; 0: $GORO_STACK_SIZE or 64 KiB */
    int max_threads;   /* cap on OS threads; 0: 10000. Exceeding it is fatal. */
} goro_config;

/*
 * Starts the runtime, runs main_fn(arg) as the main goroutine (id 1) on the calling thread
 * and returns 0 when main_fn returns. As when Go's main returns, goroutines still alive
 * then are discarded and every resource of the runtime is released; goro_run waits for the
 * other threads to reach a scheduling point (a goroutine computing without ever parking
 * keeps its thread until it does). Can be called again afterwards.
 * Errors: GORO_EBUSY (a runtime is already running in this process), GORO_EINVAL (bad cfg
 * values or main_fn NULL), GORO_ENOMEM, or -errno if a thread could not be created.
 */
GORO_API int goro_run(const goro_config *cfg, void (*main_fn)(void *), void *arg);

typedef struct goro_attr {
    size_t stack_size; /* 0: the runtime's default */
    const char *name;  /* shown by goro_dump; the string must outlive the goroutine */
} goro_attr;

/*
 * go fn(arg): creates a runnable goroutine. Does not park. The stack is only taken when
 * the goroutine first runs, so a goroutine that has not run costs a descriptor only.
 * Returns 0, GORO_EINVAL (fn NULL, or stack_size below 16 KiB or above 1 GiB),
 * GORO_ENOMEM (no memory for the descriptor; if the stack cannot be had when it first
 * runs, the runtime fails fatally with a message instead).
 */
GORO_API int goro_spawn(void (*fn)(void *), void *arg);
GORO_API int goro_spawn_attr(const goro_attr *attr, void (*fn)(void *), void *arg);

/* runtime.Gosched: lets other runnable goroutines run; the caller stays runnable. */
GORO_API void goro_yield(void);
/* runtime.Goexit: ends the calling goroutine. Called from main, ends the program's main
 * goroutine as if main_fn returned. Does not return. */
GORO_API void goro_exit(void) __attribute__((noreturn));
/* The calling goroutine's id (0 outside a goroutine). Main is 1; ids are unique and never
 * reused within a goro_run. Each P hands them out from its own batch, so they increase in
 * spawn order among goroutines spawned on one P, not across Ps (as in Go). */
GORO_API uint64_t goro_self(void);
/* runtime.GOMAXPROCS: n >= 1 sets the number of Ps (stopping the world briefly); n < 1
 * only queries. Returns the previous value. May park. n above 1024 is clamped to 1024. */
GORO_API int goro_maxprocs(int n);
/* runtime.NumGoroutine: live user goroutines, main included. */
GORO_API int goro_numgoroutine(void);
/* The monotonic clock, nanoseconds. Callable from anywhere. */
GORO_API int64_t goro_now(void);
/* time.Sleep: parks at least ns nanoseconds (ns <= 0: yields). Returns 0. */
GORO_API int goro_sleep(int64_t ns);
/* Parks until goro_now() >= deadline. Returns 0. */
GORO_API int goro_sleep_until(int64_t deadline);

/* ---------------------------------------------------------------- sync */

/* Internal: a semaphore with its own wait queue. All-zero is an empty semaphore. */
typedef struct goro__sema {
    uint32_t word; /* count << 1 | queue lock */
    uint32_t _pad;
    void *head, *tail;
} goro__sema;

/*
 * sync.Mutex. All-zero (GORO_MUTEX_INIT) is unlocked. Parks the goroutine, never the
 * thread. A waiter passed over for more than 1 ms switches the mutex to starvation mode,
 * where ownership is handed directly to the oldest waiter. May be unlocked by a goroutine
 * other than the one that locked it; unlocking an unlocked mutex is fatal.
 */
typedef struct goro_mutex {
    int32_t state;
    uint32_t _pad;
    goro__sema sema;
} goro_mutex;
/* clang-format off */
#define GORO_MUTEX_INIT {0, 0, {0, 0, NULL, NULL}}
/* clang-format on */
GORO_API void goro_mutex_lock(goro_mutex *m);   /* may park */
GORO_API int goro_mutex_trylock(goro_mutex *m); /* 1: got it, 0: held. Never parks. */
GORO_API void goro_mutex_unlock(goro_mutex *m);

/*
 * sync.WaitGroup. All-zero (GORO_WAITGROUP_INIT) is a zero counter. A counter going
 * negative is fatal, as is goro_wg_add with a positive delta from zero while goroutines
 * are still being released by goro_wg_wait.
 */
typedef struct goro_waitgroup {
    uint64_t state; /* counter in the high 32 bits, waiters in the low 32 */
    goro__sema sema;
} goro_waitgroup;
/* clang-format off */
#define GORO_WAITGROUP_INIT {0, {0, 0, NULL, NULL}}
/* clang-format on */
GORO_API void goro_wg_add(goro_waitgroup *wg, int delta);
GORO_API void goro_wg_done(goro_waitgroup *wg);
GORO_API void goro_wg_wait(goro_waitgroup *wg); /* may park */

/* ---------------------------------------------------------------- introspection */

typedef struct goro_stats {
    int64_t goroutines; /* live user goroutines, main included */
    int64_t runnable;   /* in run queues (an estimate while others run) */
    int64_t parked;     /* waiting on something */
    int64_t procs;      /* GOMAXPROCS */
    int64_t idle_procs;
    int64_t threads;          /* OS threads the runtime made, the goro_run caller included */
    int64_t threads_idle;     /* parked on their futex */
    int64_t threads_blocking; /* in goro_blocking_begin/end */
    int64_t threads_spinning; /* looking for work */
    uint64_t spawned;         /* goroutines created since goro_run began */
    uint64_t switches;        /* goroutine context switches */
    uint64_t steals;          /* successful steals of run-queue halves */
    uint64_t handoffs;        /* Ps handed away from a blocked or hogging thread */
    uint64_t stacks;          /* goroutine stacks allocated (cached ones included) */
    uint64_t stack_bytes;     /* their virtual size, guards included */
} goro_stats;
/* Fills *out. Callable from any goroutine; the figures are a snapshot. */
GORO_API void goro_stats_get(goro_stats *out);

/* Writes every goroutine to fd: id, name, state, wait reason and since when, where it was
 * spawned, and its backtrace where one can be taken. SIGQUIT prints the same to stderr
 * and the program goes on. */
GORO_API void goro_dump(int fd);

#ifdef __cplusplus
}
#endif
#endif /* GORO_H */
