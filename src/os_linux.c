/*
 * os_linux.c - what the runtime needs from Linux: clocks, futexes, CPU and memory
 * counts, and the signal handlers that report stack overflows and dump on SIGQUIT.
 *
 * Notes (goro__note) are one-shot wake-ups on a futex word: the sleeper waits while the
 * word is 0, the waker stores 1 (release) and wakes. They are how an idle M sleeps.
 *
 * Stack overflow: a goroutine running into its guard region raises SIGSEGV. The handler
 * runs on the M's alternate signal stack (the goroutine's own stack is exhausted), sees
 * that the fault address lies in the running goroutine's guard and reports it by name.
 * Any other fault is passed on to the handler that was installed before (ASan's, or the
 * default, which dumps core).
 *
 * Compacted stacks: a touch of a parked goroutine's stack that the compactor replaced by a
 * guard region (or made read-only while copying it) faults too, from any thread; the
 * handler first lets compact.c copy the stack back (goro__compact_fault, K6) and returns,
 * so the access runs again. Where faults cannot restore (no guard regions or no
 * /proc/self/mem), debug builds report such a touch by naming both goroutines.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "atomic.h"
#include "internal.h"

#define GORO__ALTSTACK_SIZE (64 * 1024)

int64_t goro__nanotime(void) {
    if (GORO__UNLIKELY(goro__replay_on)) /* deterministic mode's virtual clock (replay.c) */
        return goro__load_relaxed(&goro__replay_time);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t goro__nanotime_coarse(void) {
    if (GORO__UNLIKELY(goro__replay_on))
        return goro__load_relaxed(&goro__replay_time);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Sleeps while *key == val, at most until deadline (GORO_FOREVER: no limit). */
static void futex_wait(uint32_t *key, uint32_t val, int64_t deadline) {
    struct timespec ts, *tsp = NULL;
    if (deadline != GORO_FOREVER) {
        ts.tv_sec = deadline / 1000000000;
        ts.tv_nsec = deadline % 1000000000;
        tsp = &ts;
    }
    /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline. */
    syscall(SYS_futex, key, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, val, tsp, NULL,
            FUTEX_BITSET_MATCH_ANY);
}

static void futex_wake(uint32_t *key, int n) {
    syscall(SYS_futex, key, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, n, NULL, NULL, 0);
}

void goro__note_clear(goro__note *n) {
    goro__store_relaxed(&n->key, 0);
}

void goro__note_wakeup(goro__note *n) {
    /* Release: what the waker wrote before (m->nextp, ...) is visible to the sleeper,
     * whose acquire load in note_sleep pairs with this. */
    goro__store_release(&n->key, 1);
    futex_wake(&n->key, 1);
}

#if GORO_TSAN
/* ThreadSanitizer runs a signal's handler only when the receiving thread next enters a
 * function it intercepts, and the raw futex system call is not one: a thread parked on a
 * note (the kernel picks the main thread, often parked, for a process signal) would hold
 * a SIGTERM handler back forever. Under TSan, sleep in slices and pass through an
 * intercepted call between them. */
#define TSAN_SLICE_NS 20000000
static int64_t tsan_slice(int64_t deadline) {
    struct timespec zero = {0, 0};
    nanosleep(&zero, NULL); /* intercepted: runs pending signal handlers */
    int64_t cap = goro__nanotime() + TSAN_SLICE_NS;
    return deadline == GORO_FOREVER || deadline > cap ? cap : deadline;
}

/* A signal TSan defers is pending on the fiber that was current when it arrived, and runs
 * when that fiber next enters an intercepted call: a goroutine's fiber switched away from
 * could hold a SIGTERM handler back for as long as the goroutine waits (a kept-alive
 * connection's reader). So a fiber passes through one before every switch away from it. */
void goro__tsan_run_signals(void) {
    struct timespec ts;
#if GORO_RACE
    /* The race build's current fiber need not be the stack's (R1). */
    GORO__RACE_IGNORED(clock_gettime, CLOCK_MONOTONIC_COARSE, &ts);
#else
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts); /* intercepted, vDSO: no system call */
#endif
}
#else
static inline int64_t tsan_slice(int64_t deadline) {
    return deadline;
}
#endif

bool goro__note_sleep(goro__note *n, int64_t deadline) {
    while (goro__load_acquire(&n->key) == 0) {
        if (deadline != GORO_FOREVER && goro__nanotime() >= deadline)
            return false;
        futex_wait(&n->key, 0, tsan_slice(deadline));
    }
    return true;
}

void goro__outside_pause(unsigned *round) {
    /* 1 us, doubling to 1 ms: a short wait costs little latency, a long one little CPU. */
    long ns = *round < 10 ? 1000L << *round : 1000000L;
    if (*round < 10)
        (*round)++;
    struct timespec ts = {0, ns};
    nanosleep(&ts, NULL);
}

void goro__outside_sleep_until(int64_t deadline) {
    if (deadline == GORO_FOREVER) {
        for (;;)
            pause();
    }
    struct timespec ts = {deadline / 1000000000, deadline % 1000000000};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

void goro__spin_lock(uint32_t *l) {
    for (unsigned i = 0;; i++) {
        uint32_t w = goro__load_relaxed(l);
        /* Acquire (on success) pairs with the release in spin_unlock. Other bits of *l may
         * change meanwhile (sync.c keeps a count there); the CAS keeps them. */
        if (!(w & 1) && goro__cas_acqrel(l, &w, w | 1))
            return;
        if (i < 100)
            goro__cpu_relax();
        else
            sched_yield(); /* the holder's thread may have been preempted */
    }
}

void goro__spin_unlock(uint32_t *l) {
    goro__sub_release(l, 1);
}

/* The CPU quota of this process's cgroup (v2 cpu.max), rounded up; 0 if none. */
static int cgroup_cpus(void) {
    char line[512], path[700];
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (!f)
        return 0;
    int cpus = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "0::", 3) != 0)
            continue;
        line[strcspn(line, "\n")] = 0;
        snprintf(path, sizeof path, "/sys/fs/cgroup%s/cpu.max", line + 3);
        FILE *q = fopen(path, "r");
        if (q) {
            char quota[32];
            long period = 0;
            if (fscanf(q, "%31s %ld", quota, &period) == 2 && strcmp(quota, "max") != 0 &&
                period > 0) {
                long qv = atol(quota);
                cpus = (int)((qv + period - 1) / period);
            }
            fclose(q);
        }
    }
    fclose(f);
    return cpus;
}

int goro__ncpu(void) {
    cpu_set_t set;
    int n = 1;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        n = CPU_COUNT(&set);
    int q = cgroup_cpus();
    if (q > 0 && q < n)
        n = q;
    return n < 1 ? 1 : n;
}

int64_t goro__physmem(void) {
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    return pages > 0 && size > 0 ? (int64_t)pages * size : (int64_t)1 << 34;
}

/* ------------------------------------------------------------------ signals */

static struct sigaction old_segv, old_bus, old_quit, old_preempt;

static void preempt_handler(int sig) {
    (void)sig;
    int saved = errno;
    goro__preempt_handler();
    errno = saved;
}
static stack_t old_altstack;

static void segv_handler(int sig, siginfo_t *si, void *uc) {
    /* A touch of a compacted stack, by any thread: put it back and run the access again
     * (compact.c, K6). Its system calls must not change the interrupted code's errno. */
    int saved = errno;
    if (goro__compact_fault((uintptr_t)si->si_addr)) {
        errno = saved;
        return;
    }
    goro__m *m = goro__getm();
    goro__g *g = m ? m->curg : NULL;
    uint64_t owner;
    if (goro__compact_owner((uintptr_t)si->si_addr, &owner)) {
        if (g)
            goro__fatal("goroutine %llu touched the stack of goroutine %llu, which is parked "
                        "and compacted (a pointer into a parked goroutine's stack)",
                        (unsigned long long)goro__g_id(g), (unsigned long long)owner);
        goro__fatal("a thread touched the stack of goroutine %llu, which is parked and "
                    "compacted (a pointer into a parked goroutine's stack)",
                    (unsigned long long)owner);
    }
    if (g && g->stack_lo) {
        uintptr_t lo, hi, a = (uintptr_t)si->si_addr;
        goro__stack_guard(g, &lo, &hi);
        if (a >= lo && a < hi)
            goro__fatal("goroutine %llu stack overflow (stack size %u)",
                        (unsigned long long)goro__g_id(g), g->stack_size);
    }
    /* Not ours: hand it to whoever was there before. */
    struct sigaction *old = sig == SIGBUS ? &old_bus : &old_segv;
    if (old->sa_flags & SA_SIGINFO) {
        if (old->sa_sigaction) {
            old->sa_sigaction(sig, si, uc);
            return;
        }
    } else if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
        old->sa_handler(sig);
        return;
    }
    /* Default action: restore it; the faulting instruction runs again and kills us. */
    signal(sig, SIG_DFL);
}

static void quit_handler(int sig) {
    (void)sig;
    int saved = errno;
    goro__dump_locked(2, false);
    errno = saved;
}

void goro__signals_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_sigaction = segv_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigaction(SIGSEGV, &sa, &old_segv);
    sigaction(SIGBUS, &sa, &old_bus);
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = quit_handler;
    sa.sa_flags = SA_RESTART | SA_ONSTACK;
    sigaction(SIGQUIT, &sa, &old_quit);
    /* The monitor's preemption signal (sysmon.c). SA_RESTART: system calls of the
     * interrupted user code resume where they can (those that cannot return EINTR). */
    sa.sa_handler = preempt_handler;
    sigaction(GORO__SIGPREEMPT, &sa, &old_preempt);
    /* The runtime never lets SIGPIPE kill the process (API.md): writes return -EPIPE. */
    signal(SIGPIPE, SIG_IGN);
}

void goro__signals_restore(void) {
    sigaction(SIGSEGV, &old_segv, NULL);
    sigaction(SIGBUS, &old_bus, NULL);
    sigaction(SIGQUIT, &old_quit, NULL);
    sigaction(GORO__SIGPREEMPT, &old_preempt, NULL);
}

void goro__altstack_install(goro__m *m) {
    void *p = mmap(NULL, GORO__ALTSTACK_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return; /* overflows then crash without the report; nothing else breaks */
    stack_t ss = {.ss_sp = p, .ss_size = GORO__ALTSTACK_SIZE, .ss_flags = 0};
    if (sigaltstack(&ss, m->id == 0 ? &old_altstack : NULL) != 0) {
        munmap(p, GORO__ALTSTACK_SIZE);
        return;
    }
    m->altstack = p;
}

void goro__altstack_remove(goro__m *m) {
    if (!m->altstack)
        return;
    if (m->id == 0 && !(old_altstack.ss_flags & SS_DISABLE) && old_altstack.ss_sp) {
        sigaltstack(&old_altstack, NULL);
    } else {
        stack_t ss = {.ss_flags = SS_DISABLE};
        sigaltstack(&ss, NULL);
    }
    munmap(m->altstack, GORO__ALTSTACK_SIZE);
    m->altstack = NULL;
}

bool goro__kernel_can_read(const void *p) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return true;
    bool ok = write(fds[1], p, 1) == 1;
    close(fds[0]);
    close(fds[1]);
    return ok;
}
