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
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "atomic.h"
#include "internal.h"

/* Descriptor slabs: the first is small, the rest are 2 MiB transparent huge pages, so a
 * million spawns fault in ~60 huge pages instead of ~30000 small ones (~1.7 us each). */
#define GORO__GSLAB_FIRST (64 * 1024)
#define GORO__GSLAB_HUGE (2 * 1024 * 1024)

typedef struct gslab {
    struct gslab *next;
    size_t bytes; /* of the mapping */
    size_t n;     /* descriptors in g[] */
    goro__g g[];
} gslab;

static int64_t live_goroutines(void) {
    int64_t n = 0;
    for (int i = 0; i < GORO__MAXPROCS_LIMIT && goro__S.allp[i]; i++)
        n += goro__load_relaxed(&goro__S.allp[i]->ngoroutines);
    return n;
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
    s->n = (bytes - sizeof(gslab)) / sizeof(goro__g);
    return s;
}

/* Adds a slab's descriptors to the global free stack (pointers only: a descriptor's memory
 * is first touched when it is used). False when out of memory. Caller holds gfree_lock. */
static bool gfree_grow(void) {
    if (live_goroutines() >= goro__S.max_goroutines) /* the memory budget */
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
        goro__S.gfree[goro__S.ngfree++] = &s->g[i];
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
    pthread_mutex_lock(&goro__S.gfree_lock);
    if (goro__S.ngfree == 0 && !gfree_grow()) {
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
            f(&s->g[i], arg);
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
    return &s->g[c->i++];
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
