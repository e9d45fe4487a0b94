/**
 * @file goro.h
 * @brief goro: Go's concurrency runtime for C.
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
 *  - A thread that is not running a goroutine (before goro_run, or a plain pthread beside
 *    it) may call the runtime too. Where a goroutine would park, such a thread waits on
 *    its own: goro_mutex_lock, the rwmutex locks, goro_wg_wait and goro_cond_wait poll
 *    (sleeping 1 us, doubling to 1 ms, between looks), goro_sleep sleeps the thread;
 *    channel operations, select, timers and fd waits that would have to wait return
 *    GORO_EPERM instead. What it unlocks, sends or signals wakes goroutines as usual.
 *  - The floating-point control state (rounding mode, flush-to-zero, exception masks:
 *    x86-64 MXCSR and x87 control word, aarch64 FPCR) belongs to the goroutine: what it
 *    sets (fesetround, _mm_setcsr, ...) stays with it on every thread it runs on and does
 *    not leak to others. A new goroutine starts with the state goro_run's caller had.
 *  - Misuse that corrupts state (unlocking an unlocked mutex, a negative wait-group counter,
 *    a stack overflow) prints "goro: fatal: <what>" and a dump of all goroutines to stderr,
 *    then aborts.
 *
 * Every public name below is documented in one format, Doxygen's: a comment opening with
 * two stars before the declaration, or one opening with two stars and '<' after a struct
 * field or enumerator. `make docs` renders them with the guide (docs/guide/) and fails
 * on a public name without one.
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

/** Marks the exported functions; the library hides everything else. */
#define GORO_API __attribute__((visibility("default")))

/* ---------------------------------------------------------------- version */

/** The release's major version. The version lives only here: the build reads it too. */
#define GORO_VERSION_MAJOR 0
/** The release's minor version. */
#define GORO_VERSION_MINOR 1
/** The release's patch version. */
#define GORO_VERSION_PATCH 0
#define GORO__STRINGIFY(x) #x
#define GORO__VERSION_STR(a, b, c) GORO__STRINGIFY(a) "." GORO__STRINGIFY(b) "." GORO__STRINGIFY(c)
/** The version this program is compiled against, "MAJOR.MINOR.PATCH". */
#define GORO_VERSION_STRING                                                                        \
    GORO__VERSION_STR(GORO_VERSION_MAJOR, GORO_VERSION_MINOR, GORO_VERSION_PATCH)
/** The version as one number for `#if`: MAJOR * 10000 + MINOR * 100 + PATCH. */
#define GORO_VERSION_NUMBER                                                                        \
    (GORO_VERSION_MAJOR * 10000 + GORO_VERSION_MINOR * 100 + GORO_VERSION_PATCH)

/**
 * The version of the library the program runs with, "MAJOR.MINOR.PATCH": a shared
 * libgoro may be a later release than the GORO_VERSION_STRING the program was compiled
 * against. Static storage, never NULL; callable from anywhere.
 */
GORO_API const char *goro_version(void);

/* ---------------------------------------------------------------- errors */

/** An argument is invalid (-EINVAL). */
#define GORO_EINVAL (-EINVAL)
/** Out of memory (-ENOMEM). */
#define GORO_ENOMEM (-ENOMEM)
/** The call would wait and its deadline was 0 (-EAGAIN). */
#define GORO_EAGAIN (-EAGAIN)
/** The deadline passed (-ETIMEDOUT). */
#define GORO_ETIMEDOUT (-ETIMEDOUT)
/** The fd was closed by goro_close while the call waited on it (-ECANCELED). */
#define GORO_ECANCELED (-ECANCELED)
/** A runtime is already running in this process (-EBUSY). */
#define GORO_EBUSY (-EBUSY)
/** The call would wait, but the caller is not a goroutine (-EPERM). */
#define GORO_EPERM (-EPERM)
/** A channel is closed. Distinct from every -errno value. */
#define GORO_ECLOSED (-10001)

/** Names every code above and every -errno value. Never returns NULL. */
GORO_API const char *goro_strerror(int code);

/* ---------------------------------------------------------------- runtime */

/** A deadline that never comes: the call waits as long as it takes. */
#define GORO_FOREVER ((int64_t)-1)

/** Settings for goro_run; all-zero (or a NULL pointer) takes every default. */
typedef struct goro_config {
    int maxprocs;      /**< Ps; 0: $GORO_MAXPROCS, else the CPUs this process may use
                          (affinity mask and cgroup v2 cpu.max quota, rounded up) */
    size_t stack_size; /**< default goroutine stack; 0: $GORO_STACK_SIZE or 64 KiB */
    int max_threads;   /**< cap on OS threads; 0: 10000. Exceeding it is fatal. */
    /** Idle-stack compaction. A goroutine parked this many ns on a plain channel send or
     * receive, a mutex, rwmutex or wait group has the few hundred bytes of stack it uses
     * copied aside and its stack pages given back to the kernel, until it runs again: a
     * parked goroutine then costs ~0.6 KiB instead of 4 KiB (docs/ARCHITECTURE.md, 6b).
     * 0: $GORO_COMPACT_AFTER in milliseconds (0: off); unset, 100 ms where the kernel
     * lets a touch of a compacted stack restore it (Linux 6.13 guard regions and a
     * writable /proc/self/mem), else off. Negative: off. Where it restores, other
     * goroutines and threads may keep using a parked goroutine's stack (a wait group on
     * main's stack): the access faults and the stack is copied back first. One exception:
     * a system call of another thread reading or writing a buffer on a compacted stack
     * fails with EFAULT (goro_read and goro_write touch their buffer first and never do);
     * touch such a buffer before the call, or keep it off the stack. Where it does not
     * restore and is asked for anyway, no other goroutine or thread may touch a parked
     * goroutine's stack except the object it waits on (debug builds make such a touch
     * fatal with a message naming both goroutines; release builds would read zeros). */
    int64_t compact_after;
} goro_config;

/**
 * Starts the runtime, runs main_fn(arg) as the main goroutine (id 1) on the calling thread
 * and returns 0 when main_fn returns. As when Go's main returns, goroutines still alive
 * then are discarded and every resource of the runtime is released; goro_run waits for the
 * other threads to reach a scheduling point (a goroutine computing without ever parking
 * keeps its thread until it does). Can be called again afterwards.
 * Errors: GORO_EBUSY (a runtime is already running in this process), GORO_EINVAL (bad cfg
 * values or main_fn NULL), GORO_ENOMEM, or -errno if a thread could not be created.
 */
GORO_API int goro_run(const goro_config *cfg, void (*main_fn)(void *), void *arg);

/** Attributes of one goroutine, for goro_spawn_attr. */
typedef struct goro_attr {
    size_t stack_size; /**< 0: the runtime's default */
    const char *name;  /**< shown by goro_dump; the string must outlive the goroutine */
} goro_attr;

/**
 * go fn(arg): creates a runnable goroutine. Does not park. The stack is only taken when
 * the goroutine first runs, so a goroutine that has not run costs a descriptor only.
 * Returns 0, GORO_EINVAL (fn NULL, or stack_size below 16 KiB or above 1 GiB),
 * GORO_ENOMEM (no memory for the descriptor, or the memory budget is spent: see
 * docs/ARCHITECTURE.md, section 6; if the stack cannot be had when it first runs, which
 * the budget makes unlikely, the runtime fails fatally with a message instead).
 */
GORO_API int goro_spawn(void (*fn)(void *), void *arg);
/** goro_spawn with a stack size and a name (attr may be NULL: the defaults). Same returns. */
GORO_API int goro_spawn_attr(const goro_attr *attr, void (*fn)(void *), void *arg);

/** runtime.Gosched: lets other runnable goroutines run; the caller stays runnable. */
GORO_API void goro_yield(void);
/** runtime.Goexit: ends the calling goroutine. Called from main, ends the program's main
 * goroutine as if main_fn returned. Does not return. */
GORO_API void goro_exit(void) __attribute__((noreturn));
/** The calling goroutine's id (0 outside a goroutine). Main is 1; ids are unique and never
 * reused within a goro_run. Each P hands them out from its own batch, so they increase in
 * spawn order among goroutines spawned on one P, not across Ps (as in Go). */
GORO_API uint64_t goro_self(void);
/** runtime.GOMAXPROCS: n >= 1 sets the number of Ps (stopping the world briefly); n < 1
 * only queries. Returns the previous value. May park. n above 1024 is clamped to 1024.
 * At most that many goroutines run at once, with one exception: C code cannot be
 * stopped, so a goroutine that computes for more than 10 ms without calling into goro
 * keeps running while its P goes to another thread, and the goroutine of a timer that
 * comes due meanwhile runs beside it. */
GORO_API int goro_maxprocs(int n);
/** runtime.NumGoroutine: live user goroutines, main included. */
GORO_API int goro_numgoroutine(void);
/** The monotonic clock, nanoseconds. Callable from anywhere. */
GORO_API int64_t goro_now(void);
/** time.Sleep: parks at least ns nanoseconds (ns <= 0: yields). Returns 0. */
GORO_API int goro_sleep(int64_t ns);
/** Parks until goro_now() >= deadline. Returns 0. */
GORO_API int goro_sleep_until(int64_t deadline);

/* ---------------------------------------------------------------- sync */

/* Internal: a semaphore with its own wait queue. All-zero is an empty semaphore. */
typedef struct goro__sema {
    uint32_t word; /* count << 1 | queue lock */
    uint32_t _pad;
    void *head, *tail;
} goro__sema;

/**
 * sync.Mutex. All-zero (GORO_MUTEX_INIT) is unlocked. Parks the goroutine, never the
 * thread. A waiter passed over for more than 1 ms switches the mutex to starvation mode,
 * where ownership is handed directly to the oldest waiter. May be unlocked by a goroutine
 * other than the one that locked it; unlocking an unlocked mutex is fatal.
 */
typedef struct goro_mutex {
    int32_t state;   /**< internal: locked, woken and starving bits, waiter count */
    uint32_t _pad;   /**< padding */
    goro__sema sema; /**< internal: where waiters park */
} goro_mutex;
/** The unlocked goro_mutex (all-zero). */
/* clang-format off */
#define GORO_MUTEX_INIT {0, 0, {0, 0, NULL, NULL}}
/* clang-format on */
GORO_API void goro_mutex_lock(goro_mutex *m);   /**< Locks m; may park. */
GORO_API int goro_mutex_trylock(goro_mutex *m); /**< 1: got it, 0: held. Never parks. */
/** Unlocks m, waking a waiter if there is one; never parks. Fatal if m is unlocked. */
GORO_API void goro_mutex_unlock(goro_mutex *m);

/**
 * sync.WaitGroup. All-zero (GORO_WAITGROUP_INIT) is a zero counter. A counter going
 * negative is fatal, as is goro_wg_add with a positive delta from zero while goroutines
 * are still being released by goro_wg_wait.
 */
typedef struct goro_waitgroup {
    uint64_t state;  /**< internal: counter in the high 32 bits, waiters in the low 32 */
    goro__sema sema; /**< internal: where goro_wg_wait parks */
} goro_waitgroup;
/** The zero goro_waitgroup (all-zero). */
/* clang-format off */
#define GORO_WAITGROUP_INIT {0, {0, 0, NULL, NULL}}
/* clang-format on */
/** Adds delta (may be negative) to the counter; at zero the waiters are released. Never
 * parks. */
GORO_API void goro_wg_add(goro_waitgroup *wg, int delta);
/** goro_wg_add(wg, -1). */
GORO_API void goro_wg_done(goro_waitgroup *wg);
GORO_API void goro_wg_wait(goro_waitgroup *wg); /**< Parks until the counter is zero. */

/**
 * sync.RWMutex: any number of readers or one writer. All-zero (GORO_RWMUTEX_INIT) is
 * unlocked. Once a writer waits for the lock, new readers wait too, so a stream of
 * readers cannot starve writers; for the same reason a reader must not take the read lock
 * again while holding it (a waiting writer would deadlock both). Lock and read lock may be
 * released by a goroutine other than the one that took them. goro_rwmutex_runlock or
 * goro_rwmutex_unlock of a mutex not locked that way is fatal.
 */
typedef struct goro_rwmutex {
    goro_mutex w;          /**< serialises writers */
    goro__sema writer_sem; /**< the writer waits here for departing readers */
    goro__sema reader_sem; /**< readers wait here for the writer */
    int32_t reader_count;  /**< readers in or waiting; minus 2^30 while a writer holds or waits */
    int32_t reader_wait;   /**< readers the waiting writer still waits for */
} goro_rwmutex;
/** The unlocked goro_rwmutex (all-zero). */
/* clang-format off */
#define GORO_RWMUTEX_INIT {GORO_MUTEX_INIT, {0, 0, NULL, NULL}, {0, 0, NULL, NULL}, 0, 0}
/* clang-format on */
GORO_API void goro_rwmutex_rlock(goro_rwmutex *rw);   /**< Takes a read lock; may park. */
GORO_API void goro_rwmutex_runlock(goro_rwmutex *rw); /**< Drops a read lock; never parks. */
GORO_API void goro_rwmutex_lock(goro_rwmutex *rw);    /**< Takes the write lock; may park. */
GORO_API void goro_rwmutex_unlock(goro_rwmutex *rw);  /**< Drops the write lock; never parks. */

/**
 * sync.Cond: goroutines waiting for a condition guarded by a goro_mutex. All-zero
 * (GORO_COND_INIT) has no waiters. goro_cond_wait(c, m) is called with m locked: it
 * unlocks m, parks until a signal or broadcast, and locks m again before returning. As
 * in Go, a wait may return when the condition no longer holds: test it in a loop. A
 * signal or broadcast sent before a wait began does not wake that wait.
 */
typedef struct goro_cond {
    uint32_t lock;   /**< bit 0: spin lock over the waiter list */
    uint32_t ticket; /**< the next ticket a wait takes */
    uint32_t notify; /**< the oldest ticket not yet woken */
    uint32_t _pad;   /**< padding */
    void *head;      /**< first parked waiter */
    void *tail;      /**< last parked waiter */
} goro_cond;
/** The goro_cond with no waiters (all-zero). */
/* clang-format off */
#define GORO_COND_INIT {0, 0, 0, 0, NULL, NULL}
/* clang-format on */
GORO_API void goro_cond_wait(goro_cond *c, goro_mutex *m); /**< See goro_cond; may park. */
/** Wakes the longest-waiting goroutine in goro_cond_wait, if any. Never parks. */
GORO_API void goro_cond_signal(goro_cond *c);
/** Wakes every goroutine in goro_cond_wait. Never parks. */
GORO_API void goro_cond_broadcast(goro_cond *c);

/**
 * sync.Once. All-zero (GORO_ONCE_INIT) is "not done". The first goro_once_do runs
 * fn(arg); concurrent and later calls return only after that fn has returned, and see
 * everything it wrote. fn must not call goro_once_do on the same once (deadlock). If fn
 * ends its goroutine with goro_exit, the once is left locked and not done: every later
 * goro_once_do on it parks forever (C has no panic to recover from).
 */
typedef struct goro_once {
    uint32_t done; /**< internal: 1 once fn has returned */
    uint32_t _pad; /**< padding */
    goro_mutex m;  /**< internal: held while fn runs */
} goro_once;
/** The goro_once that has not run (all-zero). */
/* clang-format off */
#define GORO_ONCE_INIT {0, 0, GORO_MUTEX_INIT}
/* clang-format on */
/** Runs fn(arg) if no goro_once_do on o has; see goro_once. May park. */
GORO_API void goro_once_do(goro_once *o, void (*fn)(void *), void *arg);

/* ---------------------------------------------------------------- channels and select */

/**
 * Channels carry fixed-size elements between goroutines with Go's semantics: a channel of
 * capacity 0 is a rendezvous; otherwise a FIFO buffer of cap elements. Blocked senders
 * and receivers are served in arrival order. Closing wakes every waiter: receivers drain
 * the buffer and then get GORO_ECLOSED with the output zeroed; senders get GORO_ECLOSED.
 * A NULL channel blocks forever (the _dl forms: GORO_EAGAIN for deadline 0,
 * GORO_ETIMEDOUT at the deadline). An operation that would have to wait outside a goroutine
 * returns GORO_EPERM; one that can complete at once works from any thread, before, during
 * or after goro_run, and wakes the goroutine it completes. Once a thread outside the
 * runtime has woken a goroutine or had to wait (GORO_EPERM here, or a wait of its own in
 * a sync call) during a goro_run, the runtime no longer declares "all goroutines are
 * asleep - deadlock!" in that run: the thread may wake them. Goroutines that all wait for
 * such a thread before it first does so are declared deadlocked. Channels are reference counted:
 * make returns one reference; the last goro_chan_release frees it (no goroutine may still use it).
 */
typedef struct goro_chan goro_chan;
/** Makes a channel of cap elements of elem_size bytes (cap 0: unbuffered) into *out,
 * holding one reference. 0, GORO_EINVAL (out NULL, size overflow), GORO_ENOMEM. */
GORO_API int goro_chan_make(goro_chan **out, size_t elem_size, size_t cap);
/** Takes another reference to c. */
GORO_API void goro_chan_retain(goro_chan *c);
/** Drops a reference to c; the last one frees it. NULL: no-op. */
GORO_API void goro_chan_release(goro_chan *c);
/** Sends: may park. 0, or GORO_ECLOSED. elem: elem_size bytes to copy in. */
GORO_API int goro_chan_send(goro_chan *c, const void *elem);
/** Receives: may park. 0, or GORO_ECLOSED when closed and drained (*out zeroed); out may be NULL.
 */
GORO_API int goro_chan_recv(goro_chan *c, void *out);
/** goro_chan_send with a deadline: also GORO_EAGAIN (deadline 0, would wait),
 * GORO_ETIMEDOUT. */
GORO_API int goro_chan_send_dl(goro_chan *c, const void *elem, int64_t deadline);
/** goro_chan_recv with a deadline: also GORO_EAGAIN (deadline 0, would wait),
 * GORO_ETIMEDOUT. */
GORO_API int goro_chan_recv_dl(goro_chan *c, void *out, int64_t deadline);
/** Closes c. Never parks. 0, GORO_ECLOSED if already closed, GORO_EINVAL for NULL. */
GORO_API int goro_chan_close(goro_chan *c);
/** Elements buffered now; 0 for NULL. */
GORO_API size_t goro_chan_len(goro_chan *c);
/** Capacity; 0 for NULL. */
GORO_API size_t goro_chan_cap(goro_chan *c);

/** The operation of a goro_case. */
enum { GORO_SEND = 1 /**< send *elem */, GORO_RECV = 2 /**< receive into elem */ };
/** One case of a goro_select. */
typedef struct goro_case {
    goro_chan *chan; /**< NULL: this case is never ready (Go's nil channel) */
    int op;          /**< GORO_SEND or GORO_RECV */
    void *elem;      /**< SEND: value to send; RECV: where the value goes (may be NULL) */
    int result;      /**< out: 0, or GORO_ECLOSED (recv: closed and drained; send: closed) */
} goro_case;
/**
 * Go's select: performs exactly one of the ready cases, chosen uniformly at random among
 * them, and returns its index (its result field says how it went). If none is ready it
 * parks until one is, or until the deadline: deadline 0 is Go's `default` (returns
 * GORO_EAGAIN when nothing is ready at that instant), a passed deadline returns
 * GORO_ETIMEDOUT. The same channel may appear in several cases; a select with only NULL
 * channels and no deadline blocks forever. GORO_EINVAL for a bad op, GORO_ENOMEM.
 */
GORO_API int goro_select(goro_case *cases, size_t n, int64_t deadline);

/* ---------------------------------------------------------------- time */

/**
 * Go's time.Timer and time.Ticker: a timer that sends goro_now() at firing (an int64_t,
 * never before the deadline) into its channel. As in Go 1.23 the channel is unbuffered in
 * effect: once goro_timer_stop or goro_timer_reset returns, no value prepared before the
 * call is received. A ticker drops ticks for a slow receiver instead of queueing them: at
 * most one tick waits in the channel.
 */
typedef struct goro_timer goro_timer;
/** Starts a timer firing ns from now (ns <= 0: at once), then every period ns if period > 0
 * (a ticker), once if period is 0. Call from a goroutine. GORO_EINVAL (out NULL, period <
 * 0), GORO_ENOMEM, GORO_EPERM outside a goroutine. */
GORO_API int goro_timer_make(goro_timer **out, int64_t ns, int64_t period);
/** The timer's channel (element int64_t), owned by the timer: goro_chan_retain it to use it
 * after goro_timer_free. NULL for NULL. */
GORO_API goro_chan *goro_timer_chan(goro_timer *t);
/** Stops the timer; never parks. 1 if it stopped a pending firing (one not yet received:
 * also one already sent to the channel but not received, which is removed), 0 if the
 * timer was stopped or its value received already. GORO_EINVAL for NULL. */
GORO_API int goro_timer_stop(goro_timer *t);
/** Stops the timer as goro_timer_stop does and starts it again to fire ns from now; a
 * ticker then ticks every period after that. 1 if a firing was pending, 0 if not.
 * Call from a goroutine: GORO_EINVAL for NULL, GORO_EPERM outside a goroutine. */
GORO_API int goro_timer_reset(goro_timer *t, int64_t ns);
/** Stops the timer and frees it, releasing its reference to the channel. NULL: no-op. */
GORO_API void goro_timer_free(goro_timer *t);

/* ---------------------------------------------------------------- network and blocking calls */

/**
 * File descriptors are plain ints. The first goro_read/goro_write/goro_fd_wait on an fd
 * (or goro_tcp_listen/goro_accept/goro_tcp_dial, which make their sockets so) sets it
 * non-blocking and registers it once with the netpoller (io_uring or epoll, chosen by
 * $GORO_NETPOLL, edge-triggered either way: README.md); a call that would block parks
 * the goroutine until the fd is ready, never the thread. An fd the netpoller cannot
 * watch (a regular file) is read and written with a plain blocking system call inside
 * goro_blocking_begin/end. Close registered fds with goro_close: with io_uring, whose
 * poll request holds the file, a plain close(2) leaves the socket open until its number
 * comes back from goro_accept/goro_tcp_listen/goro_tcp_dial or goro_run returns.
 *
 * Every call that may wait takes a deadline: an absolute goro_now() value, GORO_FOREVER,
 * or 0 for "try once" (GORO_EAGAIN when the call would wait). At the deadline the call
 * returns GORO_ETIMEDOUT. Errors are -errno of the failing system call; a peer that went
 * away gives -EPIPE or -ECONNRESET (SIGPIPE never kills the process). All may park.
 * GORO_READABLE and GORO_WRITABLE are the events of goro_fd_wait.
 */
enum {
    GORO_READABLE = 1, /**< the fd can be read (or is at end of file, or failed) */
    GORO_WRITABLE = 2  /**< the fd can be written */
};

/** A listening TCP socket on addr "host:port" (IPv4 "127.0.0.1:8080", IPv6 "[::1]:8080",
 * a name "localhost:80"; empty host: every address; port 0: any free port), with
 * SO_REUSEADDR. backlog <= 0 means SOMAXCONN. Returns the fd, GORO_EINVAL for a malformed
 * addr, or -errno. */
GORO_API int goro_tcp_listen(const char *addr, int backlog);
/** The local port fd is bound to, or -errno. Does not park. */
GORO_API int goro_tcp_port(int fd);
/** Accepts a connection: the new fd (non-blocking, close-on-exec, TCP_NODELAY), or
 * GORO_ETIMEDOUT, GORO_EAGAIN (deadline 0), GORO_ECANCELED (listen_fd closed by
 * goro_close), -errno. Out of fds (EMFILE, ENFILE) it does not spin and does not fail: it
 * waits with a growing delay (1 ms to 100 ms) and retries, until the deadline. */
GORO_API int goro_accept(int listen_fd, int64_t deadline);
/** Connects to addr ("host:port", the name resolved in a blocking call) and returns the
 * fd, or GORO_ETIMEDOUT, GORO_EINVAL, -errno (-ECONNREFUSED ...). */
GORO_API int goro_tcp_dial(const char *addr, int64_t deadline);
/** Reads up to n bytes: > 0 bytes read, 0 at end of file, or GORO_ETIMEDOUT, GORO_EAGAIN,
 * GORO_ECANCELED, -errno. Retries EINTR. */
GORO_API ssize_t goro_read(int fd, void *buf, size_t n, int64_t deadline);
/** Writes all n bytes, retrying partial writes and EINTR: returns n, or an error
 * (GORO_ETIMEDOUT, GORO_EAGAIN, GORO_ECANCELED, -EPIPE, ...), after which an unknown
 * prefix of buf may have been written. */
GORO_API ssize_t goro_write(int fd, const void *buf, size_t n, int64_t deadline);
/** Waits until fd is ready for events (GORO_READABLE | GORO_WRITABLE): returns the ready
 * subset (> 0), or GORO_ETIMEDOUT, GORO_EAGAIN, GORO_ECANCELED, GORO_EINVAL, -errno. */
GORO_API int goro_fd_wait(int fd, int events, int64_t deadline);
/** Wakes every goroutine parked on fd (they return GORO_ECANCELED), removes fd from the
 * netpoller and closes it: at once, or, while other goroutines are still inside a call on
 * fd, when the last of them returns, so the fd number is never reused under a call (Go's
 * Close does the same). Calls made afterwards return GORO_ECANCELED. Returns 0, -errno of
 * close(2) when it closed at once, or -EBADF if fd was already goro_close'd. Does not
 * park. Fds used with these functions must be closed with goro_close, not close(2). */
GORO_API int goro_close(int fd);

/**
 * Blocking calls (Go's entersyscall/exitsyscall). Put a call that blocks the thread
 * (file I/O, getaddrinfo, a blocking C library) between goro_blocking_begin and
 * goro_blocking_end, or in GORO_BLOCKING(expr). If it stays blocked longer than ~20 us
 * while other goroutines want to run, the monitor thread hands the goroutine's P to
 * another thread; goro_blocking_end takes a P back (the goroutine may resume on another
 * thread afterwards). Between the two, call no other goro_ function. Pairs nest. Outside
 * a goroutine both do nothing.
 */
GORO_API void goro_blocking_begin(void);
/** Ends the blocking call goro_blocking_begin began; may wait for a P. */
GORO_API void goro_blocking_end(void);
/** Evaluates expr between goro_blocking_begin and goro_blocking_end; yields its value. */
#define GORO_BLOCKING(expr)                                                                        \
    __extension__({                                                                                \
        goro_blocking_begin();                                                                     \
        __typeof__(expr) goro_blocking_result_ = (expr);                                           \
        goro_blocking_end();                                                                       \
        goro_blocking_result_;                                                                     \
    })

/* ---------------------------------------------------------------- introspection */

/** A snapshot of the runtime's counters, filled by goro_stats_get. */
typedef struct goro_stats {
    int64_t goroutines;        /**< live user goroutines, main included */
    int64_t runnable;          /**< in run queues (an estimate while others run) */
    int64_t parked;            /**< waiting on something */
    int64_t procs;             /**< GOMAXPROCS */
    int64_t idle_procs;        /**< Ps with nothing to run */
    int64_t threads;           /**< OS threads the runtime made, the goro_run caller included */
    int64_t threads_idle;      /**< parked on their futex */
    int64_t threads_blocking;  /**< in goro_blocking_begin/end */
    int64_t threads_spinning;  /**< looking for work */
    uint64_t spawned;          /**< goroutines created since goro_run began */
    uint64_t switches;         /**< goroutine context switches */
    uint64_t steals;           /**< successful steals of run-queue halves */
    uint64_t handoffs;         /**< Ps handed away from a thread in a blocking call */
    uint64_t stacks;           /**< goroutine stacks allocated (cached ones included) */
    uint64_t stack_bytes;      /**< their virtual size, guards included */
    uint64_t preemptions;      /**< Ps handed away from a goroutine running > 10 ms */
    int64_t netpoll_waiting;   /**< goroutines parked on the netpoller */
    int64_t compacted;         /**< goroutines whose stacks are compacted now (6b) */
    uint64_t compacted_bytes;  /**< bytes their compacted copies hold */
    uint64_t compact_saved;    /**< stack bytes given back for them, less their copies */
    uint64_t compactions;      /**< stacks compacted since goro_run began */
    uint64_t restores;         /**< compacted stacks copied back to run again */
    uint64_t compact_syscalls; /**< system calls the compactor made (membarrier, mprotect,
                                    madvise); restores make four more each */
    int64_t stack_resident;    /**< bytes of stacks of live goroutines not compacted, a page
                                    each (an estimate: a lower bound once they ran) */
    /** The netpoller's backend, GORO_NETPOLL_*: NONE until the first fd is used with
     * goro_read/goro_write/goro_accept/...; then what GORO_NETPOLL (epoll or io_uring)
     * chose, or epoll where io_uring is unavailable. */
    int32_t netpoll_backend;
    /** 0, or, when epoll runs because io_uring could not be set up, why: the negative
     * code of io_uring_setup or of a missing feature (-ENOSYS, -EPERM, -EOPNOTSUPP). */
    int32_t netpoll_fallback;
} goro_stats;
/** Values of goro_stats.netpoll_backend. */
enum {
    GORO_NETPOLL_NONE = 0,    /**< no fd was used with the netpoller yet */
    GORO_NETPOLL_EPOLL = 1,   /**< epoll */
    GORO_NETPOLL_IO_URING = 2 /**< io_uring */
};
/** Fills *out. Callable from any goroutine; the figures are a snapshot. */
GORO_API void goro_stats_get(goro_stats *out);

/** Writes every goroutine to fd: id, name, state, wait reason and since when, where it was
 * spawned, and its backtrace where one can be taken. SIGQUIT prints the same to stderr
 * and the program goes on. Called from a goroutine it stops the world while it reads
 * (every other goroutine waits); from another thread it prints states without the other
 * goroutines' backtraces. Write errors are ignored (goro_dump_ex reports them). */
GORO_API void goro_dump(int fd);

/** goro_dump_ex flag: one entry per set of goroutines with the same state, wait reason,
 * backtrace and spawn site: count, ids, the stack (Go's goroutine profile, debug=1);
 * biggest group first. */
#define GORO_DUMP_GROUPED 1
/** goro_dump_ex flag: one JSON object instead of text; with GORO_DUMP_GROUPED, of groups. */
#define GORO_DUMP_JSON 2

/**
 * goro_dump with a choice of form: flags 0 is goro_dump's text, GORO_DUMP_GROUPED and
 * GORO_DUMP_JSON are described above and may be combined. The JSON object has
 * "count" (live goroutines), "procs", "threads", and either "goroutines", an array of
 * {"id", "name", "state", "wait_reason", "wait_ms", "frames", "spawned_at"}, or with
 * GROUPED "groups", an array of {"count", "ids", "state", "wait_reason", "wait_ms_min",
 * "wait_ms_max", "frames", "spawned_at"}. A frame is {"pc": "0x...", "function",
 * "offset", "object"} (function null when the symbol is unknown: link with -rdynamic);
 * "name", "wait_reason" and "spawned_at" may be null. docs/DEBUGGING.md has an example.
 * Stops the world like goro_dump when called from a goroutine (does not park it).
 * Returns 0; GORO_EINVAL for unknown flags or fd < 0; -EBADF (or another -errno) when fd
 * is not open or a write fails; GORO_ENOMEM if grouping runs out of memory.
 */
GORO_API int goro_dump_ex(int fd, int flags);

/* ---------------------------------------------------------------- tracing */

/*
 * The execution tracer records what the scheduler does - goroutines created, run on a P,
 * blocked (and why) and woken (and by whom), ended; Ps taken and released by threads;
 * blocking calls; netpoller wake-ups; timers - plus the program's own regions and log
 * messages, and writes it as Chrome/Perfetto trace-event JSON, which ui.perfetto.dev and
 * chrome://tracing open (docs/TRACING.md). Each P records into its own buffers, without
 * locks; while no trace records, each recording point costs one predicted branch.
 *
 * The environment variable GORO_TRACE=path traces a whole goro_run into path.
 * Full buffers are appended to an unlinked temporary file (in $TMPDIR, else /tmp) by a
 * thread of the tracer's own and reused; GORO_TRACE_BUFFER_MB (default 64) bounds the
 * memory of buffers being filled or written, beyond which events are dropped and the
 * file counts them ("otherData": "dropped"). */

/** Starts recording into the file at path (created or truncated; written at
 * goro_trace_stop). Call it from a goroutine (it stops the world for an instant to note
 * every goroutine's state) or while no goro_run is running (the next one is traced).
 * A trace still recording when goro_run returns is stopped and written then.
 * Returns 0, GORO_EINVAL (path NULL), GORO_EBUSY (a trace is already recording or being
 * written), GORO_EPERM (called from outside a goroutine while a runtime runs), or -errno
 * if the file (or the temporary spool file) cannot be created. */
GORO_API int goro_trace_start(const char *path);

/** Stops recording and writes the file; the calling goroutine may park meanwhile (the
 * writing is done as a blocking call). Returns 0, GORO_EINVAL (no trace is recording),
 * GORO_EPERM (called from outside a goroutine while a runtime runs), or -errno from
 * writing the file. */
GORO_API int goro_trace_stop(void);

/** 1 while a trace records, else 0. */
GORO_API int goro_trace_enabled(void);

/** A named span of the calling goroutine's time, shown on its own track ("Regions").
 * Regions nest: goro_trace_region_end ends the innermost open one of the calling
 * goroutine. The name is copied (up to 127 bytes). Nothing is recorded (and nothing
 * costs more than a branch) while no trace records. Never park. */
GORO_API void goro_trace_region_begin(const char *name);
/** Ends the calling goroutine's innermost open region (goro_trace_region_begin). */
GORO_API void goro_trace_region_end(void);

/** An instant event on the calling goroutine's track: category is its name in the viewer,
 * msg its text; both are copied (up to 127 bytes each). Never parks. */
GORO_API void goro_trace_log(const char *category, const char *msg);

/** Begins a task: a named piece of work that may span goroutines (Go's trace.NewTask),
 * shown on the "Tasks" track as one slice from this call to goro_trace_task_end, which
 * any goroutine may call. Returns the task's id (nonzero), or 0 while no trace records or
 * outside a goroutine (the other task calls ignore 0). The name is copied (up to 127
 * bytes). Never parks. */
GORO_API uint64_t goro_trace_task_begin(const char *name);
/** Ends task id (goro_trace_task_begin), from any goroutine. Never parks. */
GORO_API void goro_trace_task_end(uint64_t id);
/** goro_trace_region_begin for a region that is part of task id: its slice names the
 * task (end it with goro_trace_region_end). */
GORO_API void goro_trace_task_region_begin(uint64_t task, const char *name);
/** goro_trace_log for a message about task id: the event names the task. */
GORO_API void goro_trace_task_log(uint64_t task, const char *category, const char *msg);

#ifdef __cplusplus
}
#endif
#endif /* GORO_H */
