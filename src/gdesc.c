/*
 * gdesc.c - goroutine descriptors: where a G lives, how it is recycled.
 *
 * Descriptors are cut from slabs that are never freed while the runtime runs (goro_dump
 * walks them to find every goroutine). The first slab is 64 KiB; the rest are 2 MiB
 * transparent huge pages, so a million spawns fault in about sixty pages instead of
 * thirty thousand (~1.7 us each here).
 *
 * Free descriptors are stacks of pointers: GORO__GFREE_MAX per P (owner only, no lock)
 * and one global array under gfree_lock, traded in halves. Allocating pops a pointer
 * without reading the descriptor (and prefetches the next one); moving a batch is a copy.
 * The rejected alternative, Go's lists linked through the descriptors, walks one cache
 * miss per descriptor, under the lock for the global list.
 *
 * Invariants
 *  (D1) The global array has room for every descriptor of every slab (ngtotal), so
 *       freeing never allocates.
 *  (D2) A free descriptor has status FREE and no stack (exit returned the stack first).
 *
 * The memory budget. goro_spawn returns GORO_ENOMEM, rather than the process dying later
 * (the kernel's OOM killer, or a stack the goroutine cannot get when it first runs, which
 * is fatal in sched.c), when one of three checks fails. They run when a P refills its
 * empty descriptor cache, so once per GORO__GFREE_MAX / 2 net spawns on that P: a spawn
 * that reuses a descriptor freed on its P pays nothing.
 *  (B1) Live goroutines against physical memory. A goroutine that has run holds at least
 *       a stack page, so at most physmem / (page + descriptor) may live (max_goroutines,
 *       proc.c): 6.1 million on 24 GiB. A parked goroutine whose stack is compacted
 *       (compact.c) holds only its descriptor and a copy of a few hundred bytes, so once
 *       the compactor has compacted a stack in this run, the cap becomes
 *       physmem / (descriptor + GORO__COMPACT_COST): 22 million on 24 GiB (the compactor's
 *       counter says, goro__compact_total), so a program whose goroutines are never
 *       compacted (compaction off, or no long waits) keeps the first
 *       cap; a program whose goroutines are compacted but then all wake at once can
 *       still need a page each, which (B2) meets as it happens.
 *  (B2) What the machine still has: before a new 2 MiB slab of descriptors (~24,000) is
 *       added, MemAvailable (/proc/meminfo) must cover each of them running with a stack
 *       page, plus a reserve of physmem / 32. This is the check that stops a runaway
 *       spawner before the OOM killer does, whatever compaction achieves, and it sees the
 *       memory other processes use. One read of /proc/meminfo per slab (~20 us per
 *       24,000 spawns).
 *  (B3) Address space, when RLIMIT_AS or RLIMIT_DATA is finite (stacks are private
 *       writable mappings, which both count): every live goroutine may need a stack, so
 *       the stacks not mapped yet, (live + batch - stacks mapped) times the stack's
 *       mapping (guard included), plus a margin for slabs, threads and malloc, must fit in
 *       the limit less what is mapped now (/proc/self/statm, read at each refill in that
 *       case only). Without it the spawn succeeds and the goroutine's first run finds no
 *       stack. It is an estimate: memory the program maps between the check and the
 *       goroutine's first run, and stacks of non-default sizes (goro_spawn_attr, mapped
 *       one by one), can still exhaust the limit, and that remains fatal.
 * Rejected: reserving the stack at spawn (a million spawned, not yet run goroutines would
 * hold a million stacks; the lazy stack is what makes spawn cheap and trees of spawns
 * small), and counting the pages each goroutine touched (not known without mincore).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "atomic.h"
#include "internal.h"

/* Descriptor slabs: the first is small, the rest are 2 MiB transparent huge pages, so a
 * million spawns fault in ~60 huge pages instead of ~30000 small ones (~1.7 us each). */
#define GORO__GSLAB_FIRST (64 * 1024)
#define GORO__GSLAB_HUGE (2 * 1024 * 1024)

typedef struct gslab {
    struct gslab *next;
    size_t bytes;  /* of the mapping */
    size_t n;      /* descriptors in g[] */
    size_t stride; /* bytes from one descriptor to the next: GORO__G_STRIDE */
    char g[];      /* n descriptors, stride bytes apart */
} gslab;

static inline goro__g *slab_g(gslab *s, size_t i) {
    return (goro__g *)(s->g + i * s->stride);
}

static int64_t live_goroutines(void) {
    int64_t n = 0;
    for (int i = 0; i < GORO__MAXPROCS_LIMIT && goro__S.allp[i]; i++)
        n += goro__load_relaxed(&goro__S.allp[i]->ngoroutines);
    return n;
}

/* ------------------------------------------------------------------ the memory budget */

/* What (B1) counts a compacted goroutine's copy at, beside its descriptor: compact.c's
 * copies are a few hundred bytes, plus the allocator's header, rounded up generously. */
#define GORO__COMPACT_COST 1024
/* (B2): the MemAvailable left after a new slab's goroutines took a page each. */
#define GORO__AVAIL_RESERVE_DIV 32
/* (B3): address space kept free for what is not a stack: a slab being mapped (twice its
 * size, for the alignment), a thread's stack, malloc's arenas. */
#define GORO__VA_MARGIN (64 * 1024 * 1024)

static struct {
    /* [lock: gfree_lock] read at the first slab of a run (B3): the smaller finite limit
     * of RLIMIT_AS and RLIMIT_DATA, and which one (0: none). */
    uint64_t va_limit;
    int va_kind;
} budget;

enum { VA_NONE, VA_AS, VA_DATA };

/* (B1) The live goroutines allowed now: more once the compactor has compacted a stack in
 * this run (its counter, compact.c). */
static int64_t live_cap(void) {
    int64_t cap = goro__S.max_goroutines; /* physmem / (page + descriptor) */
    if (goro__compact_total() > 0)
        cap = cap / (int64_t)(GORO__G_STRIDE + GORO__COMPACT_COST) *
              (int64_t)(goro__page_size + GORO__G_STRIDE);
    return cap;
}

/* (B3) Reads the address-space limits at the start of a run. Caller holds gfree_lock. */
static void va_limits_read(void) {
    struct rlimit as, data;
    budget.va_kind = VA_NONE;
    budget.va_limit = UINT64_MAX;
    if (getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY) {
        budget.va_kind = VA_AS;
        budget.va_limit = as.rlim_cur;
    }
    if (getrlimit(RLIMIT_DATA, &data) == 0 && data.rlim_cur != RLIM_INFINITY &&
        data.rlim_cur < budget.va_limit) {
        budget.va_kind = VA_DATA;
        budget.va_limit = data.rlim_cur;
    }
}

/* (B3) Whether k more goroutines can get stacks within the address-space limit. Caller
 * holds gfree_lock. */
static bool va_allows(int64_t live, int64_t k) {
    if (budget.va_kind == VA_NONE)
        return true;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return true; /* no way to tell: the mmaps will say */
    unsigned long long size = 0, resident, shared, text, lib, data = 0;
    int got =
        fscanf(f, "%llu %llu %llu %llu %llu %llu", &size, &resident, &shared, &text, &lib, &data);
    fclose(f);
    if (got != 6)
        return true;
    uint64_t used = (budget.va_kind == VA_AS ? size : data) * goro__page_size;
    uint64_t count, bytes;
    goro__stack_stats(&count, &bytes);
    (void)bytes;
    /* A default stack's mapping, with the largest guard (stack.c). Not bytes / count:
     * main's 8 MiB stack is among them. */
    uint64_t slot = goro__S.stack_size + 16384;
    int64_t unmapped = live + k - (int64_t)count;
    uint64_t need = GORO__VA_MARGIN + (unmapped > 0 ? (uint64_t)unmapped * slot : 0);
    return used < budget.va_limit && need <= budget.va_limit - used;
}

/* (B2) MemAvailable from /proc/meminfo in bytes, or -1 if it cannot be read. */
static int64_t mem_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return -1;
    char line[128];
    long long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %lld kB", &kb) == 1)
            break;
    fclose(f);
    return kb < 0 ? -1 : (int64_t)kb * 1024;
}

/* (B2) Whether n more descriptors, each of whose goroutines may take a stack page, leave
 * the machine its reserve. */
static bool avail_allows(size_t n) {
    int64_t avail = mem_available();
    if (avail < 0)
        return true; /* no /proc: (B1) alone */
    int64_t physmem = goro__S.max_goroutines * (int64_t)(goro__page_size + GORO__G_STRIDE);
    int64_t want = (int64_t)n * (int64_t)(goro__page_size + GORO__G_STRIDE);
    return avail - want >= physmem / GORO__AVAIL_RESERVE_DIV;
}

/* Maps a slab; NULL when out of memory. Caller holds gfree_lock. */
static gslab *gslab_new(void) {
    size_t bytes = goro__S.gslabs ? GORO__GSLAB_HUGE : GORO__GSLAB_FIRST;
    char *base;
    if (bytes == GORO__GSLAB_HUGE) {
        /* Map twice the size and keep the 2 MiB-aligned middle: a huge page needs it. */
        char *raw =
            mmap(NULL, 2 * bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (raw == MAP_FAILED)
            return NULL;
        base = (char *)(((uintptr_t)raw + bytes - 1) & ~(uintptr_t)(bytes - 1));
        if (base > raw)
            munmap(raw, (size_t)(base - raw));
        munmap(base + bytes, (size_t)(raw + 2 * bytes - (base + bytes)));
        madvise(base, bytes, MADV_HUGEPAGE); /* a hint: without THP, plain pages */
    } else {
        base = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (base == MAP_FAILED)
            return NULL;
    }
    gslab *s = (gslab *)base;
    s->bytes = bytes;
    s->stride = GORO__G_STRIDE;
    s->n = (bytes - sizeof(gslab)) / s->stride;
    return s;
}

/* Adds a slab's descriptors to the global free stack (pointers only: a descriptor's memory
 * is first touched when it is used). False when out of memory. Caller holds gfree_lock. */
static bool gfree_grow(void) {
    if (!goro__S.gslabs)
        va_limits_read(); /* the first slab of a run */
    if (goro__S.gslabs && !avail_allows(GORO__GSLAB_HUGE / GORO__G_STRIDE)) /* (B2) */
        return false;
    gslab *s = gslab_new();
    if (!s)
        return false;
    /* (D1) Room for every descriptor, so that freeing never needs to allocate. */
    if (goro__S.ngtotal + s->n > goro__S.cgfree) {
        size_t c = goro__S.cgfree ? goro__S.cgfree * 2 : 4096;
        while (c < goro__S.ngtotal + s->n)
            c *= 2;
        goro__g **a = realloc(goro__S.gfree, c * sizeof *a);
        if (!a) {
            munmap(s, s->bytes);
            return false;
        }
        goro__S.gfree = a;
        goro__S.cgfree = c;
    }
    /* Fresh mappings are zero: every descriptor starts FREE with no stack. Pushed in
     * reverse so they are handed out in address order. */
    for (size_t i = s->n; i-- > 0;)
        goro__S.gfree[goro__S.ngfree++] = slab_g(s, i);
    goro__S.ngtotal += s->n;
    s->next = goro__S.gslabs;
    /* Release: the compactor walks the slabs without the lock (goro__g_next). */
    goro__store_release(&goro__S.gslabs, s);
    return true;
}

/* Refills p's empty cache with up to half its capacity from the global stack, growing
 * it by a slab if it is empty. False when out of memory. Out of line: the common
 * allocation then saves no registers. */
static __attribute__((noinline)) bool gfree_refill(goro__p *p) {
    /* The budget's checks (see the top): up to batch descriptors are about to be taken. */
    const int64_t batch = GORO__GFREE_MAX / 2;
    int64_t live = live_goroutines();
    if (live + batch > live_cap()) /* (B1) */
        return false;
    pthread_mutex_lock(&goro__S.gfree_lock);
    if ((goro__S.ngfree == 0 && !gfree_grow()) || !va_allows(live, batch) /* (B3) */) {
        pthread_mutex_unlock(&goro__S.gfree_lock);
        return false;
    }
    size_t k = goro__S.ngfree < GORO__GFREE_MAX / 2 ? goro__S.ngfree : GORO__GFREE_MAX / 2;
    goro__S.ngfree -= k;
    memcpy(p->gfree, goro__S.gfree + goro__S.ngfree, k * sizeof *p->gfree);
    p->ngfree = (int32_t)k;
    pthread_mutex_unlock(&goro__S.gfree_lock);
    return true;
}

goro__g *goro__g_alloc(goro__p *p) {
    if (GORO__UNLIKELY(p->ngfree == 0) && !gfree_refill(p))
        return NULL;
    goro__g *g = p->gfree[--p->ngfree];
    if (p->ngfree)
        __builtin_prefetch(p->gfree[p->ngfree - 1], 1); /* the next spawn's, while we work */
    g->schedlink = NULL;
    return g;
}

void goro__gfput(goro__p *p, goro__g *g) {
    if (GORO__UNLIKELY(p->ngfree == GORO__GFREE_MAX))
        goro__gfree_flush(p, GORO__GFREE_MAX / 2);
    p->gfree[p->ngfree++] = g;
}

void goro__gfree_flush(goro__p *p, int32_t keep) {
    pthread_mutex_lock(&goro__S.gfree_lock);
    size_t k = (size_t)(p->ngfree - keep);
    if (goro__S.ngfree + k > goro__S.cgfree) {
        /* Cannot happen: every descriptor has a slot since its slab was added. */
        goro__fatal("runtime: descriptor free list overflow");
    }
    memcpy(goro__S.gfree + goro__S.ngfree, p->gfree + keep, k * sizeof *p->gfree);
    goro__S.ngfree += k;
    p->ngfree = keep;
    pthread_mutex_unlock(&goro__S.gfree_lock);
}

void goro__for_each_g(void (*f)(goro__g *, void *), void *arg) {
    for (gslab *s = goro__S.gslabs; s; s = s->next)
        for (size_t i = 0; i < s->n; i++)
            f(slab_g(s, i), arg);
}

goro__g *goro__g_next(goro__gcursor *c) {
    gslab *s = c->slab;
    if (!s) {
        /* Acquire pairs with gfree_grow's release: the slab's fields are set. Slabs are
         * never freed while the runtime runs, and next is set before a slab is linked. */
        s = goro__load_acquire(&goro__S.gslabs);
        if (!s)
            return NULL;
        c->slab = s;
        c->i = 0;
    }
    if (c->i == s->n) {
        c->slab = s = s->next;
        c->i = 0;
        if (!s)
            return NULL; /* the end of a pass */
    }
    return slab_g(s, c->i++);
}

void goro__g_free_all(void) {
    while (goro__S.gslabs) {
        gslab *s = goro__S.gslabs;
        goro__S.gslabs = s->next;
        munmap(s, s->bytes);
    }
    free(goro__S.gfree);
    goro__S.gfree = NULL;
    goro__S.ngfree = goro__S.cgfree = goro__S.ngtotal = 0;
}
