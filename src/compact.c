/*
 * compact.c - idle-stack compaction: a goroutine parked for a while gives its stack pages
 * back to the kernel and keeps only the bytes it uses, until it runs again.
 *
 * A parked goroutine uses a few hundred bytes of its stack (its frames, from the saved
 * stack pointer to the top) but holds at least the page they sit in: 4 KiB. When
 * compaction is on (goro_config.compact_after or $GORO_COMPACT_AFTER; off by default, see
 * K2), the monitor thread (sysmon.c) looks, every round, for goroutines parked longer than
 * that on a plain channel operation or a semaphore (mutex, wait group, rwmutex), copies the used
 * bytes [sp, top) of each into a right-sized heap block, and releases the stack's pages with
 * madvise(MADV_DONTNEED). The stack's virtual range stays reserved, so every pointer into it is
 * valid again once the bytes are copied back, which the thread that switches to the goroutine does
 * before the switch (goro__compact_restore, from goro__wait_saved). A compacted goroutine costs its
 * descriptor plus its copy: about 600 bytes instead of 4.2 KiB.
 *
 * Terms: g->sp holds, besides a real saved stack pointer, GORO__SP_SAVING (a park is
 * still switching out, sched.c P1), GORO__SP_COMPACTING (the compactor owns the stack) and
 * GORO__SP_COMPACTED (the copy is in goro__gw(g)->cstk, the pages are gone).
 *
 * Invariants
 *  (K1) Only the compactor moves sp from a real value to COMPACTING (a CAS, so a value the
 *       goroutine stored since it was read is never overwritten), and only it moves sp out
 *       of COMPACTING: back to the real value (it gave up) or to COMPACTED, after the pages
 *       are released. While sp is COMPACTING nobody runs the goroutine: every switch to it
 *       waits (goro__wait_saved). A goroutine that a switcher was already resuming when
 *       the CAS landed is seen RUNNING below and given up.
 *  (K2) What other threads touch of a parked goroutine must not be on its stack while it
 *       is compacted. Plain channel operations and semaphores keep their waiter record in
 *       the descriptor's compaction part, goro__gw(g)->wrec, which descriptors have in
 *       runs that compact (gdesc.c), and publish the lock that guards its queue in
 *       goro__gw(g)->wlock (wlock below);
 *       the compactor copies the stack holding that lock, and points a channel record's
 *       value pointer at the copy when it points into the stack, so a partner's copy
 *       lands in the copy. Waits whose records stay on the stack (select, deadlines,
 *       cond, the netpoller, sleep and its timer) leave wlock NULL and are never
 *       compacted, and neither is a goroutine waiting on a mutex or wait group of its
 *       own stack (the object is then part of what gets compacted). Other user pointers
 *       into a parked goroutine's stack, handed to another goroutine (a wait group on
 *       main's stack that workers mark done while main waits on a channel), are the same
 *       hazard, and that idiom is common: hence compaction is off unless asked for, and
 *       the user keeps such objects off the stack. Debug builds install guard regions
 *       (MADV_GUARD_INSTALL) instead of dropping the pages, so such an access faults and
 *       the SIGSEGV handler names both goroutines (os_linux.c). Making compaction safe by
 *       default needs the restore to happen on any touch (a fault handler that copies the
 *       stack back), left for later.
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
 *
 * Cost. Nothing is added to a park or a switch: the sentinels share the compare that
 * P1's SAVING already needs. With compaction on, a wait publishes its lock in wlock
 * and a dequeue of a plain record adds a store and a load on the descriptor; with it off
 * (goro__compacting), each is a load of that flag and a branch, and the descriptor is 72
 * bytes smaller. The compactor walks the descriptor
 * slabs incrementally (a bounded number per round), claims a batch, pays one membarrier per batch
 * and one madvise per run of adjacent stacks. A wake of a compacted goroutine pays the copy back
 * and the page faults of its touched pages (one or two, ~2 us here).
 *
 * Rejected: userfaultfd (restore on any touch, transparent), needs privileges or
 * UFFD_USER_MODE_ONLY, and a fault costs a thread wake-up; moving every wait record off
 * the stack (select, timers) would add work to the hot paths for waits that are rarely
 * idle for long; locking the wait object from the switcher side would put an atomic
 * read-modify-write on every wake.
 */
#include <linux/membarrier.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "atomic.h"
#include "internal.h"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#define MADV_GUARD_REMOVE 103
#endif

#define COMPACT_SCAN_MAX 4096             /* descriptors looked at per round */
#define COMPACT_BATCH 256                 /* goroutines claimed per membarrier */
#define COMPACT_PERIOD_NS 1000000         /* a round at most every 1 ms, but for a backlog */
#define COMPACT_BACKOFF_NS 100000000      /* a pass that found nothing: rest 100 ms, */
#define COMPACT_BACKOFF_MAX_NS 1600000000 /* doubling up to 1.6 s */

/* The bytes [sp, top) of a compacted goroutine's stack. */
typedef struct goro__cstack {
    char *sp;
    uint32_t len;
    bool guarded; /* the stack's pages were replaced by a guard region (debug builds) */
    uint64_t bytes[];
} goro__cstack;

static struct {
    int64_t after; /* [init-only] ns parked before compaction; < 0: off */
    /* Held by the monitor while it works on a batch and by a goroutine dump while it reads
     * stacks (goro__compact_pause): a dump never reads a stack being given back. */
    pthread_mutex_t lock;
    /* [monitor thread only] */
    goro__gcursor cur;
    bool pass_young; /* this pass saw a candidate not yet due */
    int pass_done;   /* goroutines this pass compacted */
    bool resting;    /* the last pass found nothing: no pass until next_scan */
    int64_t next_scan, backoff;
    /* Statistics. [atomic] */
    int64_t ncompacted;
    uint64_t nbytes, nsaved, ncompactions, nrestores, nsyscalls;
} cs;

static long membarrier(int cmd) {
    return syscall(SYS_membarrier, cmd, 0, 0);
}

bool goro__compacting;

void goro__compact_init(int64_t after_ns) {
    memset(&cs, 0, sizeof cs);
    pthread_mutex_init(&cs.lock, NULL);
    cs.after = after_ns ? after_ns : -1;
    if (cs.after > 0 && membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) != 0)
        cs.after = -1; /* (K3) no asymmetric fence: no compaction */
    goro__compacting = cs.after > 0;
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
    goro__cstack *copy;
} claim;

/* Copies the used bytes of the claimed goroutine c->g aside, holding the lock of its
 * queue (K2, K4). False if it gave the goroutine up. */
static bool take_copy(claim *c) {
    goro__g *g = c->g;
    /* Acquire: the park's stores (status, then the real sp) happen before. */
    if (goro__load_acquire(&g->status) != GORO__G_WAITING ||
        goro__load_relaxed(&g->sp) != GORO__SP_COMPACTING)
        return false;
    uint32_t *lock = goro__load_relaxed(&goro__gw(g)->wlock);
    if (!lock)
        return false; /* dequeued (K3): about to run */
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
    copy_words(copy->bytes, sp, len);
    if (g->wkind == GORO__WK_CHAN) {
        void **elem = goro__chan_wait_elem(g);
        if ((char *)*elem >= sp && (char *)*elem < top)
            *elem = (char *)copy->bytes + ((char *)*elem - sp);
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

/* Compacts the claimed goroutines c[0..n) (K1-K5). Caller holds cs.lock. */
static int compact_batch(claim *c, size_t n) {
    membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED); /* (K3) */
    goro__add_relaxed(&cs.nsyscalls, 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (take_copy(&c[i]))
            c[k++] = c[i];
        else
            give_up(c[i].g, c[i].sp);
    }
    if (!k)
        return 0;
    release_pages(c, k);
    for (size_t i = 0; i < k; i++) {
        goro__g *g = c[i].g;
        goro__gw(g)->cstk = c[i].copy;
        goro__add_relaxed(&cs.ncompacted, 1);
        goro__add_relaxed(&cs.nbytes, c[i].copy->len);
        goro__add_relaxed(&cs.nsaved, saved_by(g, c[i].copy));
        goro__add_relaxed(&cs.ncompactions, 1);
        /* Release pairs with the switcher's acquire load of sp (K5): the pages are gone
         * and cstk is set. */
        goro__store_release(&g->sp, GORO__SP_COMPACTED);
    }
    return (int)k;
}

/* Whether g may be compacted now, from what can be read without owning it. */
static bool candidate(goro__g *g, int64_t now) {
    if (goro__load_relaxed(&g->status) != GORO__G_WAITING ||
        !goro__load_relaxed(&goro__gw(g)->wlock))
        return false;
    if (now - goro__load_relaxed(&g->wait_since) < cs.after) {
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
        cs.resting = idle;
        *busy = !idle;
        cs.pass_young = false;
        cs.pass_done = 0;
    } else {
        *busy = true;
    }
    return done > 0;
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

void *goro__compact_restore(goro__g *g) {
    goro__cstack *copy = goro__gw(g)->cstk;
    if (copy->guarded)
        madvise(g->stack_lo, g->stack_size, MADV_GUARD_REMOVE);
    copy_words(copy->sp, copy->bytes, copy->len);
    if (g->unguarded)
        *(uint64_t *)g->stack_lo = GORO__STACK_CANARY;
    void *sp = copy->sp;
    goro__gw(g)->cstk = NULL;
    goro__add_relaxed(&cs.ncompacted, -1);
    goro__add_relaxed(&cs.nbytes, -(uint64_t)copy->len);
    goro__add_relaxed(&cs.nsaved, -(uint64_t)saved_by(g, copy));
    goro__add_relaxed(&cs.nrestores, 1);
    free(copy);
    /* Relaxed: only this thread, which is about to run g, reads it now. */
    goro__store_relaxed(&g->sp, sp);
    return sp;
}

static void free_copy(goro__g *g, void *arg) {
    (void)arg;
    if (goro__gw(g)->cstk) {
        free(goro__gw(g)->cstk);
        goro__gw(g)->cstk = NULL;
    }
}

void goro__compact_release_all(void) {
    if (goro__compacting) /* else descriptors have no compaction part */
        goro__for_each_g(free_copy, NULL);
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
        q->id = g->id;
        q->found = true;
    }
}

bool goro__compact_owner(uintptr_t addr, uint64_t *id) {
    if (!GORO_DEBUG || cs.after < 0)
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
    if (goro__load_relaxed(&g->sp) != GORO__SP_COMPACTED)
        return false;
    const goro__cstack *copy = goro__gw((goro__g *)g)->cstk;
    if (!copy)
        return false;
    *sp = (uintptr_t)copy->sp;
    *delta = (intptr_t)((uintptr_t)copy->bytes - (uintptr_t)copy->sp);
    return true;
}

uint64_t goro__compact_total(void) {
    return goro__load_relaxed(&cs.ncompactions);
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
