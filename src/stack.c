/*
 * stack.c - goroutine stacks.
 *
 * A stack is [guard][usable bytes], growing down from the top. A goroutine gets its stack
 * when it first runs, not when it is spawned, and gives it back when it exits: a million
 * spawned-but-not-started goroutines cost a million descriptors and no stacks, and a
 * spawn/exit loop reuses one warm stack instead of faulting in fresh pages (~1.7 us each).
 * A goroutine that returns while the next one to run has no stack yet does not give its
 * stack back at all: it hands it over directly (sched.c, S1), so neither of these calls
 * runs.
 *
 * Free stacks beyond GORO__WARM_MAX in the global list give their pages back and wait
 * in a cold list of pointers (their top records went with the pages).
 *
 * Stacks of the default size are cut from chunks of GORO__CHUNK_STACKS stacks mapped at
 * once, so a million stacks need thousands of mmap calls, not a million, and adjacent
 * chunks merge into few kernel mappings (vm.max_map_count is 65530 here). Free ones are
 * cached per P (no lock) and, beyond GORO__PCACHE_MAX, in a global list under stack_lock.
 * A free stack is linked through a record in its top GORO__STACK_HDR bytes (see link_of),
 * so the cache allocates nothing and touches only memory that was touched already. Stacks of other
 * sizes are mapped one by one and unmapped when their goroutine exits.
 *
 * Guards: on Linux >= 6.13 MADV_GUARD_INSTALL makes the guard region fault without a
 * mapping of its own, so it costs neither memory nor a VMA and can be larger (16 KiB,
 * catching frames that jump one page). Older kernels get a PROT_NONE page from mprotect,
 * which splits the mapping; those are capped (GORO__MPROTECT_GUARDS_MAX) to stay far from
 * vm.max_map_count, and stacks beyond the cap are unguarded: they carry a canary word at
 * their lowest address, checked at every switch away from the goroutine, so an overflow
 * is reported at the next switch rather than silently corrupting a neighbour.
 * An access in a guard raises SIGSEGV; os_linux.c reports it as a stack overflow.
 *
 * Race builds (race.h, R2): a used stack keeps its ThreadSanitizer fiber, as always, but
 * waits in a FIFO quarantine (under stack_lock) behind GORO__RACE_QUARANTINE others before
 * a goroutine gets it again; until then goroutines get fresh stacks. Each goroutine thus
 * has a TSan thread of its own unless that many goroutines ended in between, and the
 * stale shadow of a stack's old frames belongs to the fiber that comes with it. A stack
 * whose fiber was destroyed (goro_exit) is remapped instead, which clears its shadow, and
 * counts as fresh.
 *
 * Rejected: growing stacks by copying (C pointers into the stack cannot be found and
 * fixed up) and segmented stacks (need compiler support). Stacks are fixed-size and
 * lazily backed: only the pages a goroutine touches cost memory.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "atomic.h"
#include "internal.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define GORO_VALGRIND 1
#endif
#endif
#ifndef GORO_VALGRIND
#define GORO_VALGRIND 0
#endif

#if GORO_ASAN
#include <sanitizer/asan_interface.h>
#endif

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

#define GORO__CHUNK_STACKS 16
#define GORO__PCACHE_MAX 32
#define GORO__WARM_MAX 4096 /* free stacks kept with their pages in the global list */
#define GORO__MPROTECT_GUARDS_MAX 16384

size_t goro__page_size = 4096;

typedef struct chunk {
    struct chunk *next;
    char *base;
    size_t len;
    size_t slot, guard; /* a stack and the guard below it; the guard's bytes */
    bool mapped;        /* entered in the chunk map (cmap_set) */
    /* [atomic] The goroutine whose compacted stack each slot holds, written by the
     * compactor before it releases the pages (goro__stack_set_owner); stale once the
     * goroutine ran, which goro__stack_owner's readers check against g->stack_lo. */
    goro__g *owner[GORO__CHUNK_STACKS];
    unsigned vg_id[GORO__CHUNK_STACKS];
} chunk;

/* The chunk map: which chunk covers an address, readable from a signal handler without a
 * lock (the fault handler of a compacted stack, compact.c K6). Two levels indexed by the
 * address: a top table of CMAP_TOP entries, one per 4 GiB, each pointing to a leaf mapped
 * on first use with one entry per 256 KiB granule (a million default stacks touch 5 MiB
 * of entries). A chunk spans at least 16 minimum stacks and their guards (320 KiB), more
 * than a granule, so a granule meets at most two chunks: an entry has two slots. A stack
 * mapped on its own has a record of its own, which stays out of the map where it would be
 * a third (its goroutine is then never compacted). Entries are written under stack_lock
 * when a chunk is mapped or unmapped, read with acquire loads by anyone. Addresses at or
 * above 2^48 are not mapped either. */
#define CMAP_GRANULE_SHIFT 18
#define CMAP_LEAF_SHIFT 32
#define CMAP_TOP ((size_t)1 << (48 - CMAP_LEAF_SHIFT))
#define CMAP_LEAF ((size_t)1 << (CMAP_LEAF_SHIFT - CMAP_GRANULE_SHIFT))
typedef struct cmap_entry {
    chunk *c[2]; /* [atomic] written under stack_lock */
} cmap_entry;
static cmap_entry *cmap[CMAP_TOP]; /* [atomic] written under stack_lock */

static struct {
    pthread_mutex_t lock;  /* "stack_lock" */
    void *free;            /* [lock: stack_lock] free default stacks */
    int32_t nfree;         /* [lock: stack_lock] */
    chunk *chunks;         /* [lock: stack_lock] */
    int guard_mode;        /* [atomic] written under stack_lock: 0 unknown, 1 madvise, 2 mprotect */
    int32_t nmprotect;     /* [lock: stack_lock] */
    uint64_t count, bytes; /* [atomic] stacks mapped and their virtual size */
    /* Free stacks whose pages were given back (cold): pointers, with bit 0 set for a
     * guarded stack, since their top record went with the pages. */
    uintptr_t *cold;     /* [lock: stack_lock] */
    size_t ncold, ccold; /* [lock: stack_lock] */
#if GORO_RACE
    void *qhead, *qtail; /* [lock: stack_lock] race build: used stacks, oldest first */
    int32_t nq;          /* [lock: stack_lock] */
#endif
} stk = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Enters c into the chunk map (add) or takes it out. False if an entry could not be
 * made (no memory for a leaf): its stacks are then never compacted. Caller holds
 * stack_lock. */
static bool cmap_set(chunk *c, bool add) {
    bool ok = true;
    uintptr_t first = (uintptr_t)c->base, last = first + c->len - 1;
    if (last >> 48)
        return false;
    for (uintptr_t a = first >> CMAP_GRANULE_SHIFT; a <= last >> CMAP_GRANULE_SHIFT; a++) {
        size_t t = a >> (CMAP_LEAF_SHIFT - CMAP_GRANULE_SHIFT), l = a & (CMAP_LEAF - 1);
        cmap_entry *leaf = goro__load_relaxed(&cmap[t]);
        if (!leaf) {
            if (!add)
                continue;
            void *m = mmap(NULL, CMAP_LEAF * sizeof *leaf, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
            if (m == MAP_FAILED)
                return false;
            leaf = m;
            /* Release pairs with goro__stack_owner's acquire: the zeroed leaf first. */
            goro__store_release(&cmap[t], leaf);
        }
        int k = 0;
        for (; k < 2; k++) {
            chunk *want = add ? NULL : c;
            if (goro__load_relaxed(&leaf[l].c[k]) == want) {
                /* Release pairs with goro__stack_owner's acquire: the chunk's fields. */
                goro__store_release(&leaf[l].c[k], add ? c : NULL);
                break;
            }
        }
        ok &= k < 2;
    }
    if (add && !ok)
        cmap_set(c, false); /* in none of them rather than in some */
    return ok;
}

static size_t guard_size(int mode) {
    return mode == 1 ? 16384 : goro__page_size;
}

/* A free stack's record, in the GORO__STACK_HDR bytes at its top that frames never use:
 * [0] the free-list link, [1] whether it is guarded, [2] the ThreadSanitizer fiber that
 * goes with it, [3] the suspended context of the goroutine that returned on it, or NULL;
 * and, for a stack mapped on its own, [4] its Valgrind stack id, kept while in use.
 * Resuming that context (instead of building a fresh frame) lets the old goroutine's
 * calls return normally into g_entry's loop, so the TSan fiber's shadow stack stays
 * balanced and the fiber can be reused: creating one per goroutine costs TSan system
 * calls. */
static void **link_of(char *lo, size_t size) {
    return (void **)(lo + size - GORO__STACK_HDR);
}

/* Installs the guard [at, at + len). Returns true if the region now faults. Caller holds
 * stack_lock; guard_probe has run. */
static bool guard_install(char *at, size_t len) {
    if (stk.guard_mode == 1)
        return madvise(at, len, MADV_GUARD_INSTALL) == 0;
    if (stk.nmprotect < GORO__MPROTECT_GUARDS_MAX &&
        mprotect(at + len - goro__page_size, goro__page_size, PROT_NONE) == 0) {
        stk.nmprotect++;
        return true;
    }
    return false;
}

/* Decides the guard mode once, before the first stack is laid out: MADV_GUARD_INSTALL if
 * the kernel has it and it really guards (an emulator such as qemu-user may accept the
 * advice and ignore it), else mprotect. Caller holds stack_lock. */
static void guard_probe(void) {
    if (stk.guard_mode)
        return;
    int mode = 2;
    char *p = mmap(NULL, goro__page_size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p != MAP_FAILED) {
        if (madvise(p, goro__page_size, MADV_GUARD_INSTALL) == 0 && !goro__kernel_can_read(p))
            mode = 1;
        munmap(p, goro__page_size);
    }
    goro__store_relaxed(&stk.guard_mode, mode);
}

static void mark_free(char *lo, size_t size, bool guarded, void *fiber, void *sp) {
    void **l = link_of(lo, size);
    l[1] = (void *)(uintptr_t)guarded;
    l[2] = fiber;
    l[3] = sp;
}

/* Maps a chunk of default stacks and puts all of them on the global list. Caller holds
 * stack_lock. */
static int chunk_new(void) {
    guard_probe();
    size_t size = goro__S.stack_size, guard = guard_size(stk.guard_mode);
    size_t slot = guard + size;
    chunk *c = calloc(1, sizeof *c);
    if (!c)
        return GORO_ENOMEM;
    c->len = slot * GORO__CHUNK_STACKS;
    c->slot = slot;
    c->guard = guard;
    c->base = mmap(NULL, c->len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (c->base == MAP_FAILED) {
        free(c);
        return GORO_ENOMEM;
    }
    c->mapped = cmap_set(c, true);
    for (int i = GORO__CHUNK_STACKS - 1; i >= 0; i--) {
        char *lo = c->base + (size_t)i * slot + guard;
        bool guarded = guard_install(lo - guard, guard);
#if GORO_VALGRIND
        c->vg_id[i] = VALGRIND_STACK_REGISTER(lo, lo + size);
#endif
        mark_free(lo, size, guarded, NULL, NULL);
        *link_of(lo, size) = stk.free;
        stk.free = lo;
        stk.nfree++;
    }
    c->next = stk.chunks;
    stk.chunks = c;
    goro__add_relaxed(&stk.count, GORO__CHUNK_STACKS);
    goro__add_relaxed(&stk.bytes, c->len);
    return 0;
}

/* Moves up to k cold stacks to the warm list, each with a fresh record (its pages come
 * back zeroed as they are touched). Caller holds stack_lock. */
static void cold_take(size_t k) {
    size_t size = goro__S.stack_size;
    while (k-- && stk.ncold) {
        uintptr_t e = stk.cold[--stk.ncold];
        char *lo = (char *)(e & ~(uintptr_t)1);
        mark_free(lo, size, e & 1, NULL, NULL);
        *link_of(lo, size) = stk.free;
        stk.free = lo;
        stk.nfree++;
    }
}

/* Refills p's cache with up to half its capacity from the global list. Out of line, as
 * the other slow paths below: the common get and put then need no saved registers. */
static __attribute__((noinline)) int pcache_refill(goro__p *p) {
    size_t size = goro__S.stack_size;
    int err = 0;
    pthread_mutex_lock(&stk.lock);
    if (!stk.free)
        cold_take(GORO__PCACHE_MAX / 2);
    if (!stk.free)
        err = chunk_new();
    while (stk.free && p->nstackfree < GORO__PCACHE_MAX / 2) {
        char *lo = stk.free;
        stk.free = *link_of(lo, size);
        stk.nfree--;
        *link_of(lo, size) = p->stackfree;
        p->stackfree = lo;
        p->nstackfree++;
    }
    pthread_mutex_unlock(&stk.lock);
    return p->stackfree ? 0 : (err ? err : GORO_ENOMEM);
}

static __attribute__((noinline)) int stack_map_single(goro__g *g) {
    pthread_mutex_lock(&stk.lock);
    guard_probe();
    size_t guard = guard_size(stk.guard_mode);
    size_t len = guard + g->stack_size;
    char *base = mmap(NULL, len, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (base == MAP_FAILED) {
        pthread_mutex_unlock(&stk.lock);
        return GORO_ENOMEM;
    }
    g->unguarded = !guard_install(base, guard);
    /* A chunk record of one stack, for the chunk map (K6 in compact.c): its top record's
     * [5] keeps it. Without memory for it the stack is simply never compacted. */
    chunk *c = calloc(1, sizeof *c);
    if (c) {
        c->base = base;
        c->len = c->slot = len;
        c->guard = guard;
        c->mapped = cmap_set(c, true);
    }
    pthread_mutex_unlock(&stk.lock);
    g->stack_lo = base + guard;
    link_of(g->stack_lo, g->stack_size)[5] = c;
#if GORO_VALGRIND
    link_of(g->stack_lo, g->stack_size)[4] =
        (void *)(uintptr_t)VALGRIND_STACK_REGISTER(g->stack_lo, g->stack_lo + g->stack_size);
#endif
    g->chunked = 0;
    goro__add_relaxed(&stk.count, 1);
    goro__add_relaxed(&stk.bytes, len);
    return 0;
}

#if GORO_RACE
/* The oldest used stack, once more than GORO__RACE_QUARANTINE wait (R2), else NULL. */
static char *race_reuse(size_t size) {
    char *lo = NULL;
    pthread_mutex_lock(&stk.lock);
    if (stk.nq > GORO__RACE_QUARANTINE) {
        lo = stk.qhead;
        stk.qhead = *link_of(lo, size);
        if (!stk.qhead)
            stk.qtail = NULL;
        stk.nq--;
    }
    pthread_mutex_unlock(&stk.lock);
    return lo;
}

/* Queues a used stack, whose record mark_free has written, behind the others; or, if
 * its fiber is gone, clears its shadow and makes it a fresh one (R2). */
static void race_retire(char *lo, size_t size) {
    void **l = link_of(lo, size);
    bool fresh = l[2] == NULL;
    if (fresh) {
        void *guarded = l[1];
        goro__race_stack_reset(lo, size);
        mark_free(lo, size, (uintptr_t)guarded != 0, NULL, NULL);
    }
    l[0] = NULL;
    pthread_mutex_lock(&stk.lock);
    if (fresh) {
        l[0] = stk.free;
        stk.free = lo;
        stk.nfree++;
    } else {
        if (stk.qtail)
            *link_of(stk.qtail, size) = lo;
        else
            stk.qhead = lo;
        stk.qtail = lo;
        stk.nq++;
    }
    pthread_mutex_unlock(&stk.lock);
}
#endif

int goro__stack_get(goro__p *p, goro__g *g) {
    size_t size = goro__S.stack_size;
    if (g->stack_size != size) {
        int err = stack_map_single(g);
        if (err)
            return err;
        goro__store_relaxed(&g->sp, (void *)NULL); /* [atomic]: the compactor reads it */
    } else {
        char *lo = NULL;
#if GORO_RACE
        lo = race_reuse(size);
#endif
        if (!lo) {
            if (!p->stackfree) {
                int err = pcache_refill(p);
                if (err)
                    return err;
            }
            lo = p->stackfree;
            p->stackfree = link_of(lo, size)[0];
            p->nstackfree--;
        }
        void **l = link_of(lo, size);
        g->unguarded = !(uintptr_t)l[1];
#if GORO_TSAN
        g->tsan_fiber = l[2];
#endif
        goro__store_relaxed(&g->sp, l[3]);
        g->stack_lo = lo;
        g->chunked = 1;
    }
#if GORO_ASAN
    /* A goroutine that ended without returning (goro_exit, or dropped at shutdown) left
     * its frames' redzones poisoned, here or at an address the kernel hands out again.
     * A suspended context keeps its own frames, above its stack pointer. */
    __asan_unpoison_memory_region(g->stack_lo,
                                  g->sp ? (size_t)((char *)g->sp - g->stack_lo) : g->stack_size);
#endif
    if (g->unguarded)
        *(uint64_t *)g->stack_lo = GORO__STACK_CANARY;
    return 0;
}

/* Gives the pages of the n stacks in s[] back and files them as cold. Takes stack_lock;
 * the madvise calls run without it. */
static void cold_put(char **s, size_t n) {
    size_t size = goro__S.stack_size;
    uintptr_t e[GORO__PCACHE_MAX];
    for (size_t i = 0; i < n; i++) {
        e[i] = (uintptr_t)s[i] | (link_of(s[i], size)[1] != NULL);
        madvise(s[i], size, MADV_DONTNEED);
    }
    pthread_mutex_lock(&stk.lock);
    if (stk.ncold + n > stk.ccold) {
        size_t c = stk.ccold ? stk.ccold * 2 : 1024;
        uintptr_t *a = realloc(stk.cold, c * sizeof *a);
        if (!a) {
            /* No room to file them: keep them warm, with fresh records. */
            for (size_t i = 0; i < n; i++) {
                mark_free(s[i], size, e[i] & 1, NULL, NULL);
                *link_of(s[i], size) = stk.free;
                stk.free = s[i];
                stk.nfree++;
            }
            pthread_mutex_unlock(&stk.lock);
            return;
        }
        stk.cold = a;
        stk.ccold = c;
    }
    memcpy(stk.cold + stk.ncold, e, n * sizeof *e);
    stk.ncold += n;
    pthread_mutex_unlock(&stk.lock);
}

/* Gives half of p's full cache back to the global list, so a P that only frees does not
 * hoard and one that only takes refills in batches. Beyond GORO__WARM_MAX stacks there,
 * the spilled stacks' pages go back to the kernel (cold_put): ten million goroutines that
 * were compacted and end one after another would otherwise leave a resident page each
 * in the cache. Not in ThreadSanitizer builds, whose stacks keep their fibers. */
static __attribute__((noinline)) void pcache_spill(goro__p *p) {
    size_t size = goro__S.stack_size;
    char *out[GORO__PCACHE_MAX];
    size_t nout = 0;
    pthread_mutex_lock(&stk.lock);
    bool cool = !GORO_TSAN && stk.nfree >= GORO__WARM_MAX;
    while (p->nstackfree > GORO__PCACHE_MAX / 2) {
        char *s = p->stackfree;
        p->stackfree = *link_of(s, size);
        p->nstackfree--;
        if (cool) {
            out[nout++] = s;
            continue;
        }
        *link_of(s, size) = stk.free;
        stk.free = s;
        stk.nfree++;
    }
    pthread_mutex_unlock(&stk.lock);
    if (nout)
        cold_put(out, nout);
}

/* Unmaps a stack mapped on its own (not of the default size). */
static __attribute__((noinline)) void stack_unmap_single(goro__g *g, char *lo, size_t size) {
    goro__g_san_destroy(g);
#if GORO_VALGRIND
    VALGRIND_STACK_DEREGISTER((unsigned)(uintptr_t)link_of(lo, size)[4]);
#endif
    size_t guard = guard_size(goro__load_relaxed(&stk.guard_mode));
    chunk *c = link_of(lo, size)[5];
    if (c) {
        pthread_mutex_lock(&stk.lock);
        if (c->mapped)
            cmap_set(c, false);
        pthread_mutex_unlock(&stk.lock);
        free(c);
    }
    munmap(lo - guard, guard + size);
    goro__add_relaxed(&stk.count, (uint64_t)-1);
    goro__add_relaxed(&stk.bytes, -(uint64_t)(guard + size));
}

void goro__stack_put(goro__p *p, goro__g *g, bool reusable) {
    char *lo = g->stack_lo;
    size_t size = g->stack_size;
    g->stack_lo = NULL;
    if (!lo)
        return;
    if (GORO__UNLIKELY(!g->chunked)) {
        stack_unmap_single(g, lo, size);
        return;
    }
    if (!reusable)
        goro__g_san_destroy(g); /* its shadow stack holds frames that never returned */
    void *fiber = NULL;
#if GORO_TSAN
    fiber = g->tsan_fiber;
    g->tsan_fiber = NULL;
#endif
    mark_free(lo, size, !g->unguarded, fiber, reusable ? g->sp : NULL);
#if GORO_RACE
    race_retire(lo, size);
    return;
#endif
    *link_of(lo, size) = p->stackfree;
    p->stackfree = lo;
    if (GORO__UNLIKELY(++p->nstackfree > GORO__PCACHE_MAX))
        pcache_spill(p);
}

void goro__stack_flush(goro__p *p) {
    size_t size = goro__S.stack_size;
    pthread_mutex_lock(&stk.lock);
    while (p->stackfree) {
        char *s = p->stackfree;
        p->stackfree = *link_of(s, size);
        *link_of(s, size) = stk.free;
        stk.free = s;
        stk.nfree++;
    }
    p->nstackfree = 0;
    pthread_mutex_unlock(&stk.lock);
}

static void release_single(goro__g *g, void *arg) {
    (void)arg;
    if (g->stack_lo && !g->chunked)
        goro__stack_put(NULL, g, false);
}

void goro__stack_release_all(void) {
    goro__for_each_g(release_single, NULL);
    pthread_mutex_lock(&stk.lock);
#if GORO_TSAN
    for (char *s = stk.free; s; s = *link_of(s, goro__S.stack_size)) {
        goro__g tmp = {.tsan_fiber = link_of(s, goro__S.stack_size)[2]};
        goro__g_san_destroy(&tmp);
    }
#endif
#if GORO_RACE
    for (char *s = stk.qhead; s; s = *link_of(s, goro__S.stack_size)) {
        goro__g tmp = {.tsan_fiber = link_of(s, goro__S.stack_size)[2]};
        goro__g_san_destroy(&tmp);
    }
    stk.qhead = stk.qtail = NULL;
    stk.nq = 0;
#endif
    while (stk.chunks) {
        chunk *c = stk.chunks;
        stk.chunks = c->next;
#if GORO_VALGRIND
        for (int i = 0; i < GORO__CHUNK_STACKS; i++)
            VALGRIND_STACK_DEREGISTER(c->vg_id[i]);
#endif
        if (c->mapped)
            cmap_set(c, false);
        munmap(c->base, c->len);
        free(c);
    }
    stk.free = NULL;
    stk.nfree = 0;
    free(stk.cold);
    stk.cold = NULL;
    stk.ncold = stk.ccold = 0;
    stk.nmprotect = 0;
    stk.count = stk.bytes = 0;
    pthread_mutex_unlock(&stk.lock);
}

void goro__stack_guard(const goro__g *g, uintptr_t *lo, uintptr_t *hi) {
    size_t guard = guard_size(goro__load_relaxed(&stk.guard_mode));
    *hi = (uintptr_t)g->stack_lo;
    *lo = *hi - guard;
}

bool goro__stack_guard_advice(void) {
    return goro__load_relaxed(&stk.guard_mode) == 1;
}

void goro__stack_stats(uint64_t *count, uint64_t *bytes) {
    *count = goro__load_relaxed(&stk.count);
    *bytes = goro__load_relaxed(&stk.bytes);
}

/* The chunk (or the record of a stack mapped on its own) holding address a, or NULL. */
static chunk *chunk_of(uintptr_t a) {
    if (a >> 48)
        return NULL;
    cmap_entry *leaf = goro__load_acquire(&cmap[a >> CMAP_LEAF_SHIFT]);
    if (!leaf)
        return NULL;
    cmap_entry *e = &leaf[(a >> CMAP_GRANULE_SHIFT) & (CMAP_LEAF - 1)];
    for (int k = 0; k < 2; k++) {
        chunk *c = goro__load_acquire(&e->c[k]);
        if (c && a >= (uintptr_t)c->base && a < (uintptr_t)c->base + c->len)
            return c;
    }
    return NULL;
}

bool goro__stack_set_owner(goro__g *g) {
    chunk *c = chunk_of((uintptr_t)g->stack_lo);
    if (!c || !c->mapped)
        return false;
    size_t i = (size_t)(g->stack_lo - c->base) / c->slot;
    /* Relaxed: the compactor's madvise, which makes a touch fault, comes after. */
    goro__store_relaxed(&c->owner[i], g);
    return true;
}

bool goro__stack_holds(uintptr_t addr) {
    return chunk_of(addr) != NULL;
}

goro__g *goro__stack_owner(uintptr_t addr) {
    chunk *c = chunk_of(addr);
    if (!c)
        return NULL;
    size_t i = (addr - (uintptr_t)c->base) / c->slot;
    uintptr_t lo = (uintptr_t)c->base + i * c->slot + c->guard;
    if (addr < lo)
        return NULL; /* in the guard: an overflow, not a compacted stack */
    goro__g *g = goro__load_relaxed(&c->owner[i]);
    return g && (uintptr_t)goro__load_relaxed(&g->stack_lo) == lo ? g : NULL;
}
