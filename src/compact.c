/*
 * compact.c - idle-stack compaction: a goroutine parked for a while gives its stack pages
 * back to the kernel and keeps only the bytes it uses, until it runs again.
 *
 * A parked goroutine uses a few hundred bytes of its stack (its frames, from the saved
 * stack pointer to the top) but holds at least the page they sit in: 4 KiB. When
 * compaction is on (goro_config.compact_after or $GORO_COMPACT_AFTER; by default 100 ms
 * where fault restores work, K6, else off), the monitor thread (sysmon.c) looks, every
 * round, for goroutines parked longer than that on a plain channel operation or a
 * semaphore (mutex, wait group, rwmutex), copies the used bytes [sp, top) of each into a
 * right-sized heap block, and replaces the stack's pages with a guard region
 * (MADV_GUARD_INSTALL, which frees them; MADV_DONTNEED where fault restores do not work).
 * The stack's virtual range stays reserved, so every pointer into it is valid again once
 * the bytes are copied back, which the thread that switches to the goroutine does before
 * the switch (goro__compact_restore, from goro__wait_saved), and which any other access to
 * the stack does first, through the fault (K6). A compacted goroutine costs its
 * descriptor plus its copy: about 600 bytes instead of 4.2 KiB.
 *
 * Terms: g->sp holds, besides a real saved stack pointer, GORO__SP_SAVING (a park is
 * still switching out, sched.c P1), GORO__SP_COMPACTING (the compactor or a restore owns
 * the stack), GORO__SP_COMPACTED (the copy is in goro__gw(g)->cstk, the pages are gone)
 * and GORO__SP_RESTORED (a fault put the stack back; the copy is still attached).
 *
 * Invariants
 *  (K1) Only the compactor moves sp from a real value to COMPACTING (a CAS, so a value the
 *       goroutine stored since it was read is never overwritten), and only it moves sp out
 *       of that COMPACTING: back to the real value (it gave up), to COMPACTED once the
 *       pages are released, or to RESTORED when it could not release them (K7). From
 *       COMPACTED, a switcher or a fault claims the stack by a CAS to COMPACTING and
 *       leaves it with the real sp (switcher) or RESTORED (fault); from RESTORED only the
 *       switcher moves it, to the real sp. While sp is COMPACTING nobody runs the
 *       goroutine: every switch to it waits (goro__wait_saved). A goroutine that a
 *       switcher was already resuming when the compactor's CAS landed is seen RUNNING
 *       below and given up. A RESTORED goroutine is never claimed (not a real sp) until
 *       it has run.
 *  (K2) What other threads touch of a parked goroutine through the runtime must not be on
 *       its stack while it is compacted. Plain channel operations and semaphores keep
 *       their waiter record in the descriptor's compaction part, goro__gw(g)->wrec, which
 *       descriptors have in runs that compact (gdesc.c), and publish the lock that guards
 *       its queue in goro__gw(g)->wlock (wlock below); the compactor copies the stack
 *       holding that lock, and points a channel record's value pointer at the copy when it
 *       points into the stack, so a partner's copy lands in the copy (its offset and size
 *       are kept in the copy for K6). Waits whose records stay on the stack (select,
 *       deadlines, cond, the netpoller, sleep and its timer) leave wlock NULL and are never
 *       compacted, and neither is a goroutine waiting on a mutex or wait group of its own
 *       stack (the object is then part of what gets compacted), nor, with fault restores,
 *       one whose lock word is in any goroutine's stack (K6). User pointers into a parked
 *       goroutine's stack are K6's business; where K6 is unavailable and compaction is
 *       asked for anyway, they are the user's (goro.h), and debug builds install guard
 *       regions so that such a touch is reported (os_linux.c names both goroutines).
 *  (K3) Two orderings without a fence on the fast paths. A switcher stores RUNNING to the
 *       goroutine's status and then loads its sp; a dequeuer clears wlock and then
 *       loads sp (goro__wait_dequeued). The compactor stores COMPACTING, then runs
 *       membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED), which executes a full barrier on
 *       every thread of the process, then loads status and wlock. So either the other
 *       side sees COMPACTING and waits, or the compactor sees RUNNING or a NULL wlock and
 *       gives up: the Dekker pair with the fence paid once per batch by the compactor
 *       instead of once per wake by everyone (the asymmetric fence of RCU and hazard
 *       pointers). Without membarrier (old kernels) compaction is off.
 *  (K4) The channel or semaphore may be freed once its last waiter is dequeued. The
 *       compactor only takes wlock's lock (trylock: it never waits while it owns sp)
 *       after seeing wlock set past its barrier; a dequeuer after that point holds the
 *       lock while it waits for COMPACTING to end, so the lock word cannot go away before
 *       the trylock has failed.
 *  (K5) The pages are released before sp becomes COMPACTED (release store), and the copy
 *       is written back before the switch: a goroutine never runs on released pages, and
 *       a release never hits a restored stack.
 *  (K6) Fault restores. A touch of a compacted stack by any thread faults (the guard);
 *       the SIGSEGV handler calls goro__compact_fault, which finds the owner through
 *       stack.c's chunk map (lock-free, no walk of the descriptors), claims it (K1),
 *       writes the copy back and stores RESTORED (release), and the access runs again.
 *       A handler that sees COMPACTING spins until it is not. That ends because whoever
 *       holds COMPACTING waits for no other thread: the compactor takes locks only by
 *       trylock (it skips a waiter whose lock word lies in a stack, which could be
 *       read-only in its own batch) or inside malloc and qsort, and no thread faults
 *       there with one of those held (they never touch a goroutine stack); a restore
 *       makes system calls only. The handler is
 *       async-signal-safe: system calls and lock-free atomics; the copy is freed by the
 *       switch that next runs the goroutine, which first copies the channel value slot
 *       back from the copy (a partner completing the operation after the restore wrote
 *       there). A restore, by a fault or a switcher, never shows a half-restored stack:
 *       PROT_NONE, remove the guard, write the copy through /proc/self/mem (mem_fd, which
 *       writes pages the process cannot), then PROT_READ|PROT_WRITE; meanwhile a touch
 *       faults and waits. The kernel does not fault: a system call on a compacted stack
 *       gets EFAULT (goro_read/goro_write touch their buffers first, net.c).
 *  (K7) No write lost to the copy. The compactor makes the batch's stacks read-only
 *       before copying (one mprotect per run of adjacent stacks); once copied, PROT_NONE,
 *       then the guard, then readable and writable again (the mappings merge back; the
 *       guard markers survive mprotect, which the probe checks). A writer faulting on a
 *       read-only stack waits in the handler (K6) and restores it once COMPACTED. The
 *       PROT_NONE step closes a window of the guard install, which drops the pages before
 *       it places its markers: a read there would map a zero page, and a read-modify-write
 *       from it would lose every earlier write. Stacks are only given back to their
 *       goroutines after they are writable again. If sealing fails (no memory for the
 *       split mapping) the pages stay and the goroutine goes to RESTORED; if the guard
 *       fails, the stack stays PROT_NONE, which guards it as well, until restored.
 *
 * Cost. Nothing is added to a park or a switch: the sentinels share the compare that
 * P1's SAVING already needs, and RESTORED shares COMPACTED's. With compaction on, a wait
 * publishes its lock in wlock and a dequeue of a plain record adds a store and a load on
 * the descriptor; with it off (goro__compacting), each is a load of that flag and a
 * branch, and the descriptor is 72 bytes smaller. The compactor walks the descriptor
 * slabs incrementally (a bounded number per round), claims a batch, pays one membarrier
 * per batch and four system calls per run of adjacent stacks (K7). A wake of a compacted
 * goroutine, or a touch, pays the restore: four system calls and the copy.
 *
 * Rejected: userfaultfd (restore on any touch, transparent, and the kernel would wait
 * instead of returning EFAULT), needs privileges or UFFD_USER_MODE_ONLY (which again
 * leaves the kernel's accesses out), registration of every stack, and a fault costs a
 * thread wake-up; a restore that removes the guard and then copies in user space (a
 * concurrent touch would see zeros, or its write be overwritten); mremap of a filled
 * scratch page onto the stack (atomic, but each restored stack would split the chunk's
 * mapping for good: vm.max_map_count); moving every wait record off the stack (select,
 * timers) would add work to the hot paths for waits that are rarely idle for long;
 * locking the wait object from the switcher side would put an atomic read-modify-write
 * on every wake.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "atomic.h"
#include "internal.h"

#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#endif
#endif
#ifndef VALGRIND_MAKE_MEM_DEFINED
#define VALGRIND_MAKE_MEM_DEFINED(p, n) ((void)(p), (void)(n))
#endif

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#define MADV_GUARD_REMOVE 103
#endif

#define COMPACT_SCAN_MAX 4096             /* descriptors looked at per round */
#define COMPACT_BATCH 256                 /* goroutines claimed per membarrier */
#define COMPACT_PERIOD_NS 1000000         /* a round at most every 1 ms, but for a backlog */
#define COMPACT_BACKOFF_NS 100000000      /* a pass that found nothing: rest 100 ms, */
#define COMPACT_BACKOFF_MAX_NS 1600000000 /* doubling up to 1.6 s */
/* The threshold where faults restore (K6). A wake of a compacted goroutine costs ~20 us
 * (four system calls and a page fault; bench_wake_compacted), so a goroutine must have
 * been idle long enough for that to be noise: at 100 ms it is 0.02% of the idle time,
 * and a goroutine woken more often than ten times a second is never compacted. */
#define COMPACT_DEFAULT_NS 100000000

/* The bytes [sp, top) of a compacted goroutine's stack. */
typedef struct goro__cstack {
    char *sp;
    uint32_t len;
    bool guarded; /* the stack's pages were replaced by a guard region */
    /* A channel value slot in [sp, top) that the record's elem points at in the copy
     * instead (take_copy): its offset from sp and its size; 0 bytes: none. */
    uint32_t elem_off, elem_len;
    uint64_t bytes[];
} goro__cstack;
/* tools/gdb/goro.py reads sp and the bytes of a copy at these offsets. */
_Static_assert(offsetof(goro__cstack, bytes) == 24, "goro.py knows where the bytes are");

static struct {
    int64_t after; /* [init-only] ns parked before compaction; < 0: off */
    /* Held by the monitor while it works on a batch and by a goroutine dump while it reads
     * stacks (goro__compact_pause): a dump never reads a stack being given back. */
    pthread_mutex_t lock;
    /* [monitor thread only] */
    goro__gcursor cur;
    bool pass_young;     /* this pass saw a candidate not yet due */
    int64_t young_since; /* the earliest wait_since of those (coarse clock) */
    int pass_done;       /* goroutines this pass compacted */
    bool resting;        /* the last pass found nothing: no pass until next_scan */
    int64_t next_scan, backoff;
    /* Statistics. [atomic] */
    int64_t ncompacted;
    uint64_t nbytes, nsaved, ncompactions, nrestores, nsyscalls, nfaults;
} cs;

/* Fault restores (K6): whether this goro_run has them, and the descriptor of
 * /proc/self/mem through which a restore writes into a stack nobody else may touch yet.
 * [init-only] Opened by goro__compact_init (each goro_run: a forked child's descriptor
 * would name its parent's memory), closed by goro__compact_release_all. */
static bool restore_on;
static int mem_fd = -1;

static long membarrier(int cmd) {
    return syscall(SYS_membarrier, cmd, 0, 0);
}

bool goro__compacting;

/* Writes len bytes at dst through /proc/self/mem, which writes pages this process cannot
 * (PROT_NONE) as a debugger does. False on an error. Async-signal-safe. The raw system
 * calls (here and for mem_fd's open and close) keep ThreadSanitizer's interceptors out:
 * they would track the descriptor across threads whose ordering they do not see (the
 * runtime is not instrumented in race builds), and run in a signal handler. */
static bool mem_write(void *dst, const void *src, size_t len) {
    while (len) {
        ssize_t w = syscall(SYS_pwrite64, mem_fd, src, len, (off_t)(uintptr_t)dst);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        dst = (char *)dst + w;
        src = (const char *)src + w;
        len -= (size_t)w;
    }
    return true;
}

/* Whether fault restores work here (K6), tried on a scratch page: a guard region really
 * guards (qemu-user accepts the advice and ignores it), survives mprotect (K7), and a
 * PROT_NONE page whose guard was removed can be written through mem_fd and then read. */
static bool restore_probe(void) {
    size_t ps = goro__page_size;
    char *p = mmap(NULL, ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return false;
    uint64_t v = 0x676f726f;
    bool ok = (p[0] = 1) && madvise(p, ps, MADV_GUARD_INSTALL) == 0 && !goro__kernel_can_read(p) &&
              mprotect(p, ps, PROT_READ) == 0 && mprotect(p, ps, PROT_READ | PROT_WRITE) == 0 &&
              !goro__kernel_can_read(p) && mprotect(p, ps, PROT_NONE) == 0 &&
              madvise(p, ps, MADV_GUARD_REMOVE) == 0 && mem_write(p + 8, &v, sizeof v) &&
              mprotect(p, ps, PROT_READ | PROT_WRITE) == 0 && goro__kernel_can_read(p) &&
              *(volatile uint64_t *)(p + 8) == v && p[0] == 0;
    munmap(p, ps);
    return ok;
}

void goro__compact_init(int64_t after_ns) {
    memset(&cs, 0, sizeof cs);
    pthread_mutex_init(&cs.lock, NULL);
    restore_on = false;
    if (after_ns >= 0) {
        mem_fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/mem", O_RDWR | O_CLOEXEC);
        restore_on = mem_fd >= 0 && restore_probe();
        if (!restore_on && mem_fd >= 0) {
            syscall(SYS_close, mem_fd);
            mem_fd = -1;
        }
    }
    /* Unset: on where faults restore (K6), but not in ThreadSanitizer builds, whose
     * fibers' shadow stacks a fault restore would not know of. */
    if (after_ns == 0)
        after_ns = restore_on && !GORO_TSAN ? COMPACT_DEFAULT_NS : -1;
    cs.after = after_ns;
    if (cs.after > 0 && membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) != 0)
        cs.after = -1; /* (K3) no asymmetric fence: no compaction */
    goro__compacting = cs.after > 0;
    restore_on = restore_on && goro__compacting;
}

/* Copies words without the sanitizers' instrumentation: the stack holds AddressSanitizer
 * redzones of the parked frames, and its writer is ordered by sp's CAS (K1), not by
 * anything ThreadSanitizer sees on these bytes. volatile keeps the loop from becoming a
 * call to the intercepted memcpy. */
__attribute__((no_sanitize("address", "thread"))) static void copy_words(void *dst, const void *src,
                                                                         size_t len) {
    volatile uint64_t *d = dst;
    const volatile uint64_t *s = src;
    for (size_t i = 0; i < len / 8; i++)
        d[i] = s[i];
}

static char *stack_top(const goro__g *g) {
    return g->stack_lo + g->stack_size;
}

/* Takes the lock word of a channel or semaphore if it is free (bit 0; the other bits,
 * a semaphore's count, are kept). */
static bool trylock(uint32_t *l) {
    uint32_t v = goro__load_relaxed(l);
    /* Acquire pairs with the release that dropped the lock. */
    return !(v & 1) && goro__cas_acqrel(l, &v, v | 1);
}

/* Gives g back to the switchers with the sp it had (K1): a CAS, since the goroutine may
 * have been resumed before the claim landed and stored another one since. */
static void give_up(goro__g *g, void *sp) {
    void *want = GORO__SP_COMPACTING;
    goro__cas_acqrel(&g->sp, &want, sp);
}

/* The stack bytes compaction gave back for g, less its copy: the pages from the one
 * holding sp to the top (those below it may have been touched too; not counted). */
static uint64_t saved_by(const goro__g *g, const goro__cstack *copy) {
    uintptr_t first = (uintptr_t)copy->sp & ~(uintptr_t)(goro__page_size - 1);
    return (uint64_t)((uintptr_t)stack_top(g) - first - copy->len);
}

typedef struct claim {
    goro__g *g;
    void *sp;
    goro__cstack *copy; /* NULL until take_copy succeeded */
    bool ro;            /* the stack was made read-only (K7) */
    bool sealed;        /* and then PROT_NONE, once copied */
    bool keep_sealed;   /* its guard could not be installed: PROT_NONE guards it */
} claim;

/* Copies the used bytes of the claimed goroutine c->g aside, holding the lock of its
 * queue (K2, K4). False if it gave the goroutine up. */
static bool take_copy(claim *c) {
    goro__g *g = c->g;
    /* With fault restores the stack must be read-only by now (K7), and a fault must find
     * g from the address (K6). */
    if (restore_on && (!c->ro || !goro__stack_set_owner(g)))
        return false;
    /* Acquire: the park's stores (status, then the real sp) happen before. */
    if (goro__load_acquire(&g->status) != GORO__G_WAITING ||
        goro__load_relaxed(&g->sp) != GORO__SP_COMPACTING)
        return false;
    uint32_t *lock = goro__load_relaxed(&goro__gw(g)->wlock);
    if (!lock)
        return false; /* dequeued (K3): about to run */
    /* A lock word in another goroutine's stack (a wait group on main's stack, waited on
     * by another goroutine) may be read-only in this very batch: the trylock would
     * fault and wait for this thread (K6). */
    if (restore_on && goro__stack_holds((uintptr_t)lock))
        return false;
    char *sp = c->sp, *top = stack_top(g);
    size_t len = (size_t)(top - sp);
    goro__cstack *copy = malloc(sizeof *copy + len);
    if (!copy)
        return false;
    if (!trylock(lock)) { /* a dequeuer holds it, or a partner is busy: next time (K4) */
        free(copy);
        return false;
    }
    /* Under the lock the record stays queued: only a dequeuer clears wlock. */
    copy->sp = sp;
    copy->len = (uint32_t)len;
    copy->guarded = false;
    copy->elem_off = copy->elem_len = 0;
    copy_words(copy->bytes, sp, len);
    if (g->wkind == GORO__WK_CHAN) {
        size_t size;
        void **elem = goro__chan_wait_elem(g, &size);
        if ((char *)*elem >= sp && (char *)*elem < top) {
            copy->elem_off = (uint32_t)((char *)*elem - sp);
            copy->elem_len = (uint32_t)size;
            *elem = (char *)copy->bytes + copy->elem_off;
        }
    }
    goro__spin_unlock(lock);
    c->copy = copy;
    return true;
}

static int by_stack(const void *a, const void *b) {
    uintptr_t x = (uintptr_t)((const claim *)a)->g->stack_lo;
    uintptr_t y = (uintptr_t)((const claim *)b)->g->stack_lo;
    return x < y ? -1 : x > y;
}

/* Releases the stacks of the copied goroutines c[0..n), one madvise per run of stacks
 * that lie next to each other (a chunk's stacks are separated only by their guards,
 * which the advice leaves in place). */
static void release_pages(claim *c, size_t n) {
    qsort(c, n, sizeof *c, by_stack);
    /* Debug builds make the stack fault rather than read zeros (K2), where guard regions
     * exist (known once the first stacks were laid out). */
    bool guard = GORO_DEBUG && goro__stack_guard_advice();
    int advice = guard ? MADV_GUARD_INSTALL : MADV_DONTNEED;
    for (size_t i = 0; i < n;) {
        uintptr_t guard_lo, guard_hi;
        char *lo = c[i].g->stack_lo, *hi = stack_top(c[i].g);
        size_t j = i + 1;
        for (; j < n; j++) {
            goro__stack_guard(c[j].g, &guard_lo, &guard_hi);
            if ((char *)guard_lo != hi)
                break;
            hi = stack_top(c[j].g);
        }
        /* A guard region between two stacks: DONTNEED keeps guard markers and PROT_NONE
         * pages; GUARD_INSTALL over one is a no-op. */
        madvise(lo, (size_t)(hi - lo), advice);
        goro__add_relaxed(&cs.nsyscalls, 1);
        for (; i < j; i++)
            c[i].copy->guarded = guard;
    }
}

enum { RUN_READONLY, RUN_SEAL, RUN_GUARD, RUN_WRITABLE };

/* Whether claim x takes part in step what of apply_runs. */
static bool in_step(const claim *x, int what) {
    switch (what) {
    case RUN_READONLY:
        return true;
    case RUN_SEAL:
        return x->copy != NULL && x->ro;
    case RUN_GUARD:
        return x->sealed;
    default:
        return x->ro && !x->keep_sealed;
    }
}

/* One step of a batch with fault restores (K7), applied to runs of adjacent stacks of
 * c[0..n), sorted by address: make them read-only; make the copied ones PROT_NONE and
 * replace their pages with guard regions; make them readable and writable again (the
 * mappings merge back). */
static void apply_runs(claim *c, size_t n, int what) {
    for (size_t i = 0; i < n;) {
        if (!in_step(&c[i], what)) {
            i++;
            continue;
        }
        char *lo = c[i].g->stack_lo, *hi = stack_top(c[i].g);
        size_t j = i + 1;
        for (; j < n && in_step(&c[j], what); j++) {
            uintptr_t guard_lo, guard_hi;
            goro__stack_guard(c[j].g, &guard_lo, &guard_hi);
            if ((char *)guard_lo != hi)
                break;
            hi = stack_top(c[j].g);
        }
        size_t len = (size_t)(hi - lo);
        int rc = 0;
        if (what == RUN_READONLY) {
            rc = mprotect(lo, len, PROT_READ);
        } else if (what == RUN_SEAL) {
            rc = mprotect(lo, len, PROT_NONE);
        } else if (what == RUN_GUARD) {
            rc = madvise(lo, len, MADV_GUARD_INSTALL);
        } else {
            /* The stacks must become writable again before their goroutines or a waiting
             * writer go on (K7); the split mapping may need memory for a moment. */
            for (int tries = 0; mprotect(lo, len, PROT_READ | PROT_WRITE) != 0; tries++) {
                if (tries == 1000)
                    goro__fatal("compactor: cannot make stacks writable again (errno %d)", errno);
                sched_yield();
            }
        }
        goro__add_relaxed(&cs.nsyscalls, 1);
        for (; i < j; i++) {
            if (what == RUN_READONLY) {
                c[i].ro = rc == 0;
            } else if (what == RUN_SEAL) {
                c[i].sealed = rc == 0;
            } else if (what == RUN_GUARD) {
                /* Either way put_back must write the copy back (a failed install may
                 * have dropped pages); without the guard the stack stays PROT_NONE. */
                c[i].copy->guarded = true;
                c[i].keep_sealed = rc != 0;
            }
        }
    }
}

/* Compacts the claimed goroutines c[0..n) (K1-K7). Caller holds cs.lock. */
static int compact_batch(claim *c, size_t n) {
    membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED); /* (K3) */
    goro__add_relaxed(&cs.nsyscalls, 1);
    for (size_t i = 0; i < n; i++) {
        c[i].copy = NULL;
        c[i].ro = c[i].sealed = c[i].keep_sealed = false;
    }
    if (restore_on) {
        qsort(c, n, sizeof *c, by_stack);
        apply_runs(c, n, RUN_READONLY);
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (take_copy(&c[i]))
            k++;
    }
    if (restore_on) {
        if (k) {
            /* PROT_NONE before the guard: the install drops the pages, and a read in
             * between would map a zero page and return zeros (K7). */
            apply_runs(c, n, RUN_SEAL);
            apply_runs(c, n, RUN_GUARD);
        }
        apply_runs(c, n, RUN_WRITABLE);
    }
    /* Gives the others back, now that their stacks are writable (K7). */
    k = 0;
    for (size_t i = 0; i < n; i++) {
        if (c[i].copy)
            c[k++] = c[i];
        else
            give_up(c[i].g, c[i].sp);
    }
    if (!k)
        return 0;
    if (!restore_on)
        release_pages(c, k);
    int done = 0;
    for (size_t i = 0; i < k; i++) {
        goro__g *g = c[i].g;
        goro__gw(g)->cstk = c[i].copy;
        if (restore_on && !c[i].sealed) {
            /* Copied, but its pages could not be sealed: they stay, and the copy is kept
             * only for a value a partner may write there, as after a fault (K6). */
            c[i].copy->guarded = false;
            goro__store_release(&g->sp, GORO__SP_RESTORED);
            continue;
        }
        done++;
        goro__add_relaxed(&cs.ncompacted, 1);
        goro__add_relaxed(&cs.nbytes, c[i].copy->len);
        goro__add_relaxed(&cs.nsaved, saved_by(g, c[i].copy));
        goro__add_relaxed(&cs.ncompactions, 1);
        /* Release pairs with the switcher's acquire load of sp (K5): the pages are gone
         * and cstk is set. */
        goro__store_release(&g->sp, GORO__SP_COMPACTED);
    }
    return done;
}

/* Whether g may be compacted now, from what can be read without owning it. */
static bool candidate(goro__g *g, int64_t now) {
    if (goro__load_relaxed(&g->status) != GORO__G_WAITING ||
        !goro__load_relaxed(&goro__gw(g)->wlock))
        return false;
    int64_t since = goro__load_relaxed(&g->wait_since);
    if (now - since < cs.after) {
        if (!cs.pass_young || since < cs.young_since)
            cs.young_since = since;
        cs.pass_young = true;
        return false;
    }
    return true;
}

bool goro__compact_round(int64_t now, bool *busy) {
    *busy = false;
    if (cs.after < 0)
        return false;
    if (now < cs.next_scan) {
        *busy = !cs.resting;
        return false;
    }
    /* wait_since is the coarse clock the monitor publishes (sched.c, goro__park). */
    int64_t coarse = goro__load_relaxed(&goro__S.coarse_now);
    claim batch[COMPACT_BATCH];
    size_t n = 0;
    int done = 0;
    bool pass_over = false;
    pthread_mutex_lock(&cs.lock);
    for (int scanned = 0; scanned < COMPACT_SCAN_MAX; scanned++) {
        goro__g *g = goro__g_next(&cs.cur);
        if (!g) {
            pass_over = true;
            break;
        }
        if (!candidate(g, coarse))
            continue;
        void *sp = goro__load_acquire(&g->sp);
        if (!GORO__SP_REAL(sp))
            continue;
        /* (K1) Acq-rel: acquire pairs with the park's release store of sp; the claim's
         * store is ordered before the loads of status and wlock by the membarrier (K3). */
        if (!goro__cas_acqrel(&g->sp, &sp, GORO__SP_COMPACTING))
            continue;
        batch[n++] = (claim){.g = g, .sp = sp};
        if (n == COMPACT_BATCH) {
            done += compact_batch(batch, n);
            n = 0;
        }
    }
    if (n)
        done += compact_batch(batch, n);
    pthread_mutex_unlock(&cs.lock);
    cs.pass_done += done;
    if (done == 0 || pass_over)
        cs.next_scan = now + COMPACT_PERIOD_NS; /* a backlog goes on at once */
    if (pass_over) {
        /* A pass that found nothing to compact, now or soon, rests longer each time. */
        bool idle = !cs.pass_done && !cs.pass_young;
        cs.backoff = idle ? (cs.backoff ? cs.backoff * 2 : COMPACT_BACKOFF_NS) : 0;
        if (cs.backoff > COMPACT_BACKOFF_MAX_NS)
            cs.backoff = COMPACT_BACKOFF_MAX_NS;
        cs.next_scan = now + (idle ? cs.backoff : COMPACT_PERIOD_NS);
        /* Nothing compacted, but some will come due: not before the earliest of them
         * (a goroutine that parked during the pass, behind the scan, may wait up to a
         * pass longer). Scanning every millisecond meanwhile reads descriptors that busy
         * Ps are writing: fib on 2 Ps took 1.5x as long at the default 100 ms. */
        if (!cs.pass_done && cs.pass_young) {
            int64_t due = now + (cs.young_since + cs.after - coarse);
            if (due > cs.next_scan)
                cs.next_scan = due;
        }
        cs.resting = idle;
        *busy = !idle;
        cs.pass_young = false;
        cs.pass_done = 0;
    } else {
        *busy = true;
    }
    return done > 0;
}

int64_t goro__compact_due(void) {
    return cs.after < 0 ? GORO_FOREVER : cs.next_scan;
}

void goro__compact_wait(goro__g *g) {
    /* Acquire pairs with the compactor's release of sp. */
    for (unsigned i = 0; goro__load_acquire(&g->sp) == GORO__SP_COMPACTING; i++) {
        if (i < 100)
            goro__cpu_relax();
        else
            sched_yield(); /* the monitor thread may have been preempted */
    }
}

/* Copies bytes without the sanitizers' instrumentation (a channel value, any alignment). */
__attribute__((no_sanitize("address", "thread"))) static void copy_bytes(void *dst, const void *src,
                                                                         size_t len) {
    volatile char *d = dst;
    const volatile char *s = src;
    for (size_t i = 0; i < len; i++)
        d[i] = s[i];
}

/* Puts the copy of g's stack back. Caller owns g's stack (sp COMPACTING). With fault
 * restores (K6) no other thread may see the stack before its bytes are back: it is made
 * PROT_NONE (a touch faults and waits for sp to leave COMPACTING), its guard removed, the
 * bytes written through mem_fd, and only then made writable. Async-signal-safe. */
static void put_back(goro__g *g, goro__cstack *copy) {
    char *lo = g->stack_lo;
    size_t size = g->stack_size;
    uint64_t canary = GORO__STACK_CANARY;
    if (restore_on && copy->guarded && mprotect(lo, size, PROT_NONE) == 0) {
        madvise(lo, size, MADV_GUARD_REMOVE);
        /* A stack holds padding never written; Memcheck would call the system call's
         * buffer uninitialised. Its bytes come back defined (a client request: a few
         * instructions outside Valgrind). */
        VALGRIND_MAKE_MEM_DEFINED(copy->bytes, copy->len);
        if (!mem_write(copy->sp, copy->bytes, copy->len) ||
            (g->unguarded && !mem_write(lo, &canary, sizeof canary)))
            goro__fatal("compaction: cannot write a stack back through /proc/self/mem");
        for (int tries = 0; mprotect(lo, size, PROT_READ | PROT_WRITE) != 0; tries++) {
            if (tries == 1000)
                goro__fatal("compaction: cannot make a restored stack writable (errno %d)", errno);
            sched_yield();
        }
        return;
    }
    if (copy->guarded)
        madvise(lo, size, MADV_GUARD_REMOVE);
    copy_words(copy->sp, copy->bytes, copy->len);
    if (g->unguarded)
        *(uint64_t *)lo = canary;
}

/* The statistics of a copy put back. Async-signal-safe (lock-free atomics). */
static void count_restore(goro__g *g, const goro__cstack *copy) {
    goro__add_relaxed(&cs.ncompacted, -1);
    goro__add_relaxed(&cs.nbytes, -(uint64_t)copy->len);
    goro__add_relaxed(&cs.nsaved, -(uint64_t)saved_by(g, copy));
    goro__add_relaxed(&cs.nrestores, 1);
}

/* Claims g's compacted stack (COMPACTED -> COMPACTING) and puts its copy back, waiting
 * while the compactor or another restore owns it; returns the copy, still attached and
 * sp still COMPACTING, for the caller to finish. NULL if the stack was not compacted (any
 * more): *seen is then the sp found, a real one or RESTORED. Neither the compactor nor
 * another restore waits for this thread (K6), so the wait ends. Async-signal-safe. */
static goro__cstack *claim_put_back(goro__g *g, void **seen) {
    for (unsigned i = 0;; i++) {
        /* Acquire pairs with the compactor's release of COMPACTED (its copy and its
         * guards are in place), or a restore's of the real sp or RESTORED. */
        void *sp = goro__load_acquire(&g->sp);
        if (sp == GORO__SP_COMPACTED) {
            /* The switcher and fault restores race for it: whoever wins the CAS. */
            if (!goro__cas_acqrel(&g->sp, &sp, GORO__SP_COMPACTING))
                continue;
            goro__cstack *copy = goro__gw(g)->cstk;
            put_back(g, copy);
            count_restore(g, copy);
            return copy;
        }
        if (sp != GORO__SP_COMPACTING) {
            *seen = sp;
            return NULL;
        }
        if (i < 100)
            goro__cpu_relax();
        else
            sched_yield(); /* the owner's thread may have been preempted */
    }
}

void *goro__compact_restore(goro__g *g) {
    void *sp;
    goro__cstack *copy = claim_put_back(g, &sp);
    if (!copy && sp == GORO__SP_RESTORED) {
        /* A fault put the stack back while g waited; a partner that completed g's
         * channel operation since wrote (or read) its value in the copy (K6). */
        copy = goro__gw(g)->cstk;
        if (copy->elem_len)
            copy_bytes(copy->sp + copy->elem_off, (char *)copy->bytes + copy->elem_off,
                       copy->elem_len);
    }
    if (!copy)
        return sp;
    goro__gw(g)->cstk = NULL;
    sp = copy->sp;
    free(copy);
    /* Relaxed: only this thread, which is about to run g, reads it now. */
    goro__store_relaxed(&g->sp, sp);
    return sp;
}

bool goro__compact_fault(uintptr_t addr) {
    if (!restore_on)
        return false;
    goro__g *g = goro__stack_owner(addr);
    if (!g)
        return false;
    void *sp;
    if (claim_put_back(g, &sp)) {
        goro__add_relaxed(&cs.nfaults, 1);
        /* Release pairs with the switcher's acquire: the stack is back; the copy stays
         * attached until g runs (K6). */
        goro__store_release(&g->sp, GORO__SP_RESTORED);
    }
    return true; /* put back, by us or meanwhile, or given up: the access can run again */
}

static void free_copy(goro__g *g, void *arg) {
    (void)arg;
    if (goro__gw(g)->cstk) {
        free(goro__gw(g)->cstk);
        goro__gw(g)->cstk = NULL;
    }
}

void goro__compact_release_all(void) {
    if (goro__compacting) /* else there are no copies */
        goro__for_each_g(free_copy, NULL);
    if (mem_fd >= 0) {
        syscall(SYS_close, mem_fd);
        mem_fd = -1;
    }
    restore_on = false;
}

typedef struct owner_q {
    uintptr_t addr;
    uint64_t id;
    bool found;
} owner_q;

static void find_owner(goro__g *g, void *arg) {
    owner_q *q = arg;
    if (goro__load_relaxed(&g->sp) == GORO__SP_COMPACTED && g->stack_lo &&
        q->addr >= (uintptr_t)g->stack_lo && q->addr < (uintptr_t)stack_top(g)) {
        q->id = goro__g_id_relaxed(g);
        q->found = true;
    }
}

bool goro__compact_owner(uintptr_t addr, uint64_t *id) {
    if (!GORO_DEBUG || cs.after < 0 || restore_on)
        return false;
    owner_q q = {.addr = addr};
    goro__for_each_g(find_owner, &q);
    *id = q.id;
    return q.found;
}

void goro__compact_pause(bool pause) {
    if (cs.after < 0)
        return;
    if (pause)
        pthread_mutex_lock(&cs.lock);
    else
        pthread_mutex_unlock(&cs.lock);
}

bool goro__compact_frames(const goro__g *g, uintptr_t *sp, intptr_t *delta) {
    void *s = goro__load_relaxed(&g->sp);
    if (!GORO__SP_HAS_COPY(s))
        return false;
    const goro__cstack *copy = goro__gw((goro__g *)g)->cstk;
    if (!copy)
        return false;
    *sp = (uintptr_t)copy->sp;
    /* A restored stack (K6) is read in place. */
    *delta = s == GORO__SP_RESTORED ? 0 : (intptr_t)((uintptr_t)copy->bytes - (uintptr_t)copy->sp);
    return true;
}

uint64_t goro__compact_total(void) {
    return goro__load_relaxed(&cs.ncompactions);
}

uint64_t goro__compact_fault_restores(void) {
    return goro__load_relaxed(&cs.nfaults);
}

void goro__compact_stats(goro_stats *out) {
    out->compacted = goro__load_relaxed(&cs.ncompacted);
    out->compacted_bytes = goro__load_relaxed(&cs.nbytes);
    out->compact_saved = goro__load_relaxed(&cs.nsaved);
    out->compactions = goro__load_relaxed(&cs.ncompactions);
    out->restores = goro__load_relaxed(&cs.nrestores);
    out->compact_syscalls = goro__load_relaxed(&cs.nsyscalls);
    int64_t resident = out->goroutines - out->compacted;
    out->stack_resident = resident > 0 ? resident * (int64_t)goro__page_size : 0;
}
