/*
 * chan.c - channels and select (Go's chan.go and select.go).
 *
 * A channel is a lock, a ring buffer of cap elements, and two queues of waiters: goroutines
 * blocked sending (sendq) and receiving (recvq). A blocked operation is a waiter record
 * (Go's sudog), in the blocked goroutine's descriptor for a plain operation (C7) and on
 * its stack for a select: the goroutine, where the value comes from or
 * goes to, and where the partner writes the outcome. Records come in two kinds:
 *  - plain: a goro_chan_send or goro_chan_recv without a deadline. Nothing but a partner
 *    or close can complete it, and both hold the channel lock, so whoever dequeues it owns
 *    it: no claim word, no timer, and when its goroutine runs again the record is already
 *    out of the queue; it only reads the result.
 *  - select: one record per case of a goro_select, or the one case of a send or receive
 *    with a deadline. The records of one select share a wait state (wstate) with a `done`
 *    word: whoever moves it from 0 to 1 with a CAS (a partner goroutine, close, or the
 *    select's timer) completes that select and makes the goroutine runnable, exactly once
 *    (Go's selectDone). With one channel and no timer every claimer holds that channel's
 *    lock, and the claim is a plain store.
 *
 * The fast path (send, receive) is the whole operation when it need not wait: lock, hand
 * the value straight to the first waiting partner (or through the buffer), unlock, and
 * ready the partner into the P's runnext slot, where it runs at the next switch. Only
 * an operation that must wait builds a record (block_plain, block_timed). goro_select
 * first tries, in its random poll order, each case that looks ready (select_hint, read
 * without locks) under that case's lock alone; only if none succeeds does it lock all its
 * channels (C5) to poll again and, if still nothing is ready, enqueue and park.
 *
 * Invariants
 *  (C1) c->lock (a word of its own, taken with goro__spin_lock) guards every field below
 *       it.
 *  (C2) A buffered channel with elements has no waiting receiver that could take one,
 *       and one with free slots has no waiting sender that could fill one: operations
 *       check the queues before the buffer (senders hand straight to a waiting receiver;
 *       a receiver of a full buffer takes the head and moves the first sender's value in).
 *  (C3) Select records stay in a queue after their select completed elsewhere; whoever
 *       dequeues one whose select is already done drops it. The waiter, once running
 *       again, removes its remaining records under each channel's lock before its stack
 *       frame goes away. A plain record leaves the queue only with its completion.
 *  (C4) A record is published (enqueued) under the channel lock, and the locks are
 *       dropped only once the goroutine is WAITING (park's unlock callback), so a
 *       partner never readies a running goroutine; one that runs it waits until its
 *       switch has saved its context (sched.c, P1).
 *  (C5) A select that holds several channel locks at once took them in address order,
 *       each once (duplicates allowed in the cases), so two selects never deadlock on
 *       each other's locks. Everything else holds at most one channel lock.
 *  (C6) A partner readies the goroutine it completed only after dropping the channel
 *       lock(s): that goroutine may return at once and release the last reference to the
 *       channel, so nothing may touch the channel after the ready (Go does the same).
 *  (C7) A plain record lives in its goroutine's descriptor (goro__gw(g)->wrec), not on
 *       its stack, and its wlock names the channel's lock while it is queued: such a
 *       goroutine's stack may be compacted while it waits (compact.c), and a partner on
 *       another CPU writes into the descriptor it readies anyway (runtime.h). The compactor does so
 * holding the channel lock, and points the record's elem at the copy when it points into the stack,
 * so a partner's copy lands in (or comes from) the copy. Whoever dequeues a plain record calls
 * goro__wait_dequeued before using it (K3). Select records stay on the stack; a goroutine in a
 * select is never compacted.
 *
 * The value of a completed case moves while the partner holds the channel lock: a sender
 * copies into the receiver's destination, or a receiver from the sender's source, so
 * the element never passes through the buffer when someone is waiting. Waiters of each
 * queue are served in arrival order.
 */
#include <stdlib.h>
#include <string.h>

#include "atomic.h"
#include "internal.h"

typedef struct waiter waiter;

typedef struct waitq {
    waiter *head; /* [lock] written with relaxed stores: select_hint reads it without it */
    waiter *tail; /* [lock] */
} waitq;

struct goro_chan {
    uint32_t lock;    /* 1: locked (C1); only the lock lives in this word */
    uint32_t refs;    /* [atomic] references: make returns one */
    uint32_t closed;  /* [lock] written with a relaxed store: select_hint reads it racily */
    size_t elem_size; /* [init-only] */
    size_t cap;       /* [init-only] */
    size_t count;     /* [lock] elements in buf; read racily by goro_chan_len */
    size_t sendx;     /* [lock] next slot to fill */
    size_t recvx;     /* [lock] next slot to take */
    waitq sendq;      /* [lock] */
    waitq recvq;      /* [lock] */
    char buf[];       /* cap * elem_size bytes */
};

/* The state shared by the records of one select (or of one timed operation). */
typedef struct wstate {
    goro__g *g;
    uint32_t done;       /* [atomic] 0 while waiting; the CAS to 1 elects who completes it */
    int winner;          /* written by the completer before ready: case index, or -1 timeout */
    int result;          /* written by the completer: 0 or GORO_ECLOSED */
    uint32_t timer_done; /* [atomic] the timeout callback has finished with this state */
    bool contended; /* [init-only] claimers need not share a lock: several channels or a timer */
} wstate;

struct waiter {
    waiter *prev, *next; /* [lock: c->lock] queue links */
    goro__g *g;          /* the goroutine waiting */
    void *elem;          /* send: the value; recv: where it goes (may be NULL) */
    wstate *ws;          /* NULL for a plain record */
    int result;          /* plain: written by the completer before ready, 0 or GORO_ECLOSED */
    int index;           /* select: the case's index */
    bool queued;         /* [lock: c->lock] */
};

_Static_assert(sizeof(waiter) <= sizeof(((goro__gwait *)0)->wrec), "waiter fits in wrec");

void **goro__chan_wait_elem(goro__g *g, size_t *size) {
    /* The channel's lock is its first field, and wlock names it while g waits (C7). */
    *size = ((goro_chan *)goro__gw(g)->wlock)->elem_size;
    return &((waiter *)goro__gw(g)->wrec)->elem;
}

/* ------------------------------------------------------------------ make, free */

/* Small channels (up to GORO__CHAN_SMALL bytes with their buffer: an unbuffered one, or
 * a few word-sized elements) are all blocks of that size, and a P keeps up to
 * GORO__CHAN_CACHE_MAX freed ones (p->chanfree, owner P only, linked through the word at
 * buf). A goroutine-per-call program (fib) makes and drops a channel per call: glibc's
 * per-thread cache holds only 7 blocks per size, and beyond them free costs ~100
 * instructions, and a lock when the block came from another thread's arena. A P's cache
 * overflows to free(), and is freed at shutdown or when the P goes away
 * (goro__chan_cache_flush). Without a P (outside the runtime, or a goroutine whose P the
 * monitor took) blocks go to and come from malloc as before. AddressSanitizer builds
 * bypass the cache, so that it sees every use after free, and race builds, so that a new
 * channel does not inherit an old one's sync objects (race.h). */
#define GORO__CHAN_SMALL 128
#define GORO__CHAN_CACHE_MAX 256

static goro_chan *chan_alloc(size_t bytes) {
    if (bytes > GORO__CHAN_SMALL)
        return malloc(bytes);
#if !GORO_ASAN && !GORO_RACE
    goro__m *m = goro__getm();
    if (m) {
        goro__acquirem_m(m);
        goro__p *p = m->p;
        goro_chan *c = p ? p->chanfree : NULL;
        if (c) {
            memcpy(&p->chanfree, c->buf, sizeof p->chanfree);
            p->nchanfree--;
        }
        goro__releasem(m);
        if (c)
            return c;
    }
#endif
    return malloc(GORO__CHAN_SMALL);
}

static void chan_free(goro_chan *c) {
#if !GORO_ASAN && !GORO_RACE
    if (sizeof *c + c->elem_size * c->cap <= GORO__CHAN_SMALL) {
        goro__m *m = goro__getm();
        if (m) {
            goro__acquirem_m(m);
            goro__p *p = m->p;
            bool cached = p && p->nchanfree < GORO__CHAN_CACHE_MAX;
            if (cached) {
                /* refs stays 0, so a second release is still caught. */
                memcpy(c->buf, &p->chanfree, sizeof p->chanfree);
                p->chanfree = c;
                p->nchanfree++;
            }
            goro__releasem(m);
            if (cached)
                return;
        }
    }
#endif
    free(c);
}

void goro__chan_cache_flush(goro__p *p) {
    while (p->chanfree) {
        goro_chan *c = p->chanfree;
        memcpy(&p->chanfree, c->buf, sizeof p->chanfree);
        free(c);
    }
    p->nchanfree = 0;
}

int goro_chan_make(goro_chan **out, size_t elem_size, size_t cap) {
    if (!out)
        return GORO_EINVAL;
    if (elem_size && cap > (SIZE_MAX - sizeof(goro_chan)) / elem_size)
        return GORO_EINVAL;
    /* malloc, not calloc: glibc's calloc bypasses the per-thread cache (tcache), which
     * doubles the cost of a short-lived channel. The buffer needs no zeroing: a slot is
     * read only after a send has filled it. */
    goro_chan *c = chan_alloc(sizeof *c + elem_size * cap);
    if (!c)
        return GORO_ENOMEM;
    *c = (goro_chan){.refs = 1, .elem_size = elem_size, .cap = cap};
    *out = c;
    return 0;
}

void goro_chan_retain(goro_chan *c) {
    if (c)
        goro__add_relaxed(&c->refs, 1);
}

void goro_chan_release(goro_chan *c) {
    if (!c)
        return;
    /* Acq-rel: every use by other holders happens before the free. */
    uint32_t left = goro__add_acqrel(&c->refs, (uint32_t)-1);
    if (left == UINT32_MAX)
        goro__fatal("goro_chan_release of a freed channel (goroutine %llu)",
                    (unsigned long long)goro_self());
    if (left == 0)
        chan_free(c);
}

size_t goro_chan_len(goro_chan *c) {
    return c ? goro__load_relaxed(&c->count) : 0;
}

size_t goro_chan_cap(goro_chan *c) {
    return c ? c->cap : 0;
}

/* ------------------------------------------------------------------ queues */

static void enqueue(waitq *q, waiter *w) {
    w->next = NULL;
    w->prev = q->tail;
    if (q->tail)
        q->tail->next = w;
    else
        goro__store_relaxed(&q->head, w);
    q->tail = w;
    w->queued = true;
}

/* Removes a select record that is still queued (C3). */
static void unlink_waiter(waitq *q, waiter *w) {
    if (!w->queued)
        return;
    if (w->prev)
        w->prev->next = w->next;
    else
        goro__store_relaxed(&q->head, w->next);
    if (w->next)
        w->next->prev = w->prev;
    else
        q->tail = w->prev;
    w->queued = false;
}

/* Takes the first record of a queue that can still be completed, claiming it (C3). */
static inline waiter *dequeue(waitq *q) {
    waiter *w;
    while ((w = q->head)) {
        goro__store_relaxed(&q->head, w->next);
        if (w->next)
            w->next->prev = NULL;
        else
            q->tail = NULL;
        w->queued = false;
        wstate *ws = w->ws;
        if (GORO__LIKELY(!ws)) {
            /* plain: ours, as we hold the lock; its goroutine may be compacted (C7) */
            goro__wait_dequeued(w->g);
            return w;
        }
        if (!ws->contended) {
            /* One channel, no timer: every claimer holds this channel's lock. Another case
             * of the same select on this channel may have won already. */
            if (ws->done)
                continue;
            ws->done = 1;
            return w;
        }
        uint32_t zero = 0;
        /* Acq-rel pairs with the waiter's publication of its records and with other
         * claimers: exactly one CAS wins. */
        if (goro__cas_acqrel(&ws->done, &zero, 1))
            return w;
    }
    return NULL;
}

/* The channel lock word holds nothing but the lock bit, so unlocking is a plain release
 * store, cheaper than the read-modify-write goro__spin_unlock needs for shared words. */
static inline void chan_lock(goro_chan *c) {
    uint32_t unlocked = 0;
    /* Acquire (on success) pairs with the release store in chan_unlock. */
    if (GORO__LIKELY(goro__cas_acqrel(&c->lock, &unlocked, 1)))
        return;
    goro__spin_lock(&c->lock);
}

static inline void chan_unlock(goro_chan *c) {
    /* Release pairs with the acquire CAS of the next chan_lock. */
    goro__store_release(&c->lock, 0);
}

static inline void *slot(goro_chan *c, size_t i) {
    return c->buf + i * c->elem_size;
}

/* The ring index after i, without a division. */
static inline size_t ring_next(goro_chan *c, size_t i) {
    return ++i == c->cap ? 0 : i;
}

static inline void copy_elem(goro_chan *c, void *dst, const void *src) {
    if (!dst)
        return;
    if (c->elem_size == sizeof(uint64_t))
        memcpy(dst, src, sizeof(uint64_t)); /* the common word-sized element, inlined */
    else if (c->elem_size)
        memcpy(dst, src, c->elem_size);
}

static void zero_elem(goro_chan *c, void *dst) {
    if (dst && c->elem_size)
        memset(dst, 0, c->elem_size);
}

/* Race builds (race.h): the sync object of slot i (Go's chanbuf race address). The k-th
 * send and the k-th receive of a buffered channel meet on slot k mod cap, so the k-th
 * receive also happens before the (k+cap)-th send completes. Elements of size 0 have no
 * slot addresses: all operations then meet on one. */
static inline void *race_slot(goro_chan *c, size_t i) {
    return c->elem_size ? slot(c, i) : (void *)&c->sendx;
}

/* Race builds: the running goroutine completes the operation of the parked partner
 * whose record is w. Unbuffered, each happens before the other completes, through the
 * record: TSan's sync objects merge, and one per channel would pass every earlier pair's
 * clocks on to the next. Buffered (the buffer is empty), the value passes slot recvx as
 * if through the buffer, and the ring moves on with it (the buffer stays empty), so slots
 * keep counting sends and receives. */
static inline void race_handoff(goro_chan *c, waiter *w) {
    if (!GORO_RACE)
        return;
    if (c->cap == 0) {
        goro__race_sync(w, w->g);
        return;
    }
    goro__race_notify(race_slot(c, c->recvx), NULL);
    goro__race_notify(race_slot(c, c->recvx), w->g);
    c->recvx = ring_next(c, c->recvx);
    c->sendx = c->recvx;
}

/* The running goroutine, NULL on an M's g0: a timer callback (time.c) may try a
 * non-blocking send there, but nothing may wait outside a goroutine. */
/* The running goroutine, read at the entry of an operation: every caller reads it before
 * anything that may switch, and reads no thread-local after its park (goro__getm_entry). */
static inline goro__g *current_g(void) {
    goro__m *m = goro__getm_entry();
    return m ? m->curg : NULL;
}

/* Completes a claimed record for its waiter. Returns the goroutine, which the caller
 * readies after dropping the channel lock(s) (C6). */
static inline goro__g *complete(waiter *w, int result) {
    wstate *ws = w->ws;
    if (ws) {
        ws->winner = w->index;
        ws->result = result;
    } else {
        w->result = result;
    }
    return w->g;
}

/* ------------------------------------------------------------------ one case, locked */

/* Sends elem on the locked channel c if that needs no waiting. Returns true if it
 * happened, with *result set (0 or GORO_ECLOSED) and *wake set to a partner to ready once
 * the lock is dropped, or NULL. */
static inline __attribute__((always_inline)) bool send_locked(goro_chan *c, const void *elem,
                                                              int *result, goro__g **wake) {
    waiter *w;
    if (GORO__UNLIKELY(c->closed)) {
        goro__race_acquire(&c->closed);
        *result = GORO_ECLOSED;
        *wake = NULL;
        return true;
    }
    if (c->recvq.head && (w = dequeue(&c->recvq))) {
        race_handoff(c, w);
        copy_elem(c, w->elem, elem);
        *wake = complete(w, 0);
    } else if (c->count < c->cap) {
        goro__race_notify(race_slot(c, c->sendx), NULL);
        copy_elem(c, slot(c, c->sendx), elem);
        c->sendx = ring_next(c, c->sendx);
        goro__store_relaxed(&c->count, c->count + 1);
        *wake = NULL;
    } else {
        return false;
    }
    *result = 0;
    return true;
}

/* The same for a receive into elem (which may be NULL). */
static inline __attribute__((always_inline)) bool recv_locked(goro_chan *c, void *elem, int *result,
                                                              goro__g **wake) {
    waiter *w;
    if (c->count > 0) {
        goro__race_notify(race_slot(c, c->recvx), NULL);
        copy_elem(c, elem, slot(c, c->recvx));
        if (GORO__UNLIKELY(c->sendq.head) && (w = dequeue(&c->sendq))) {
            /* Full buffer with a waiting sender (C2): its value takes the freed slot. */
            goro__race_notify(race_slot(c, c->recvx), w->g);
            copy_elem(c, slot(c, c->recvx), w->elem);
            c->recvx = ring_next(c, c->recvx);
            c->sendx = c->recvx;
            *wake = complete(w, 0);
        } else {
            c->recvx = ring_next(c, c->recvx);
            goro__store_relaxed(&c->count, c->count - 1);
            *wake = NULL;
        }
        *result = 0;
        return true;
    }
    if (c->sendq.head && (w = dequeue(&c->sendq))) {
        race_handoff(c, w); /* unbuffered (C2) */
        copy_elem(c, elem, w->elem);
        *wake = complete(w, 0);
        *result = 0;
        return true;
    }
    if (c->closed) {
        goro__race_acquire(&c->closed);
        zero_elem(c, elem);
        *wake = NULL;
        *result = GORO_ECLOSED;
        return true;
    }
    return false;
}

/* ------------------------------------------------------------------ select */

#define SELECT_STACK_CASES 4

typedef struct selwait {
    goro_chan **order; /* distinct channels in address order (C5) */
    size_t norder;
    goro__timer timer;
    bool timed;
} selwait;

static void lock_all(selwait *s) {
    for (size_t i = 0; i < s->norder; i++)
        chan_lock(s->order[i]);
}

static void unlock_all(selwait *s) {
    for (size_t i = s->norder; i-- > 0;)
        chan_unlock(s->order[i]);
}

static int cmp_chan(const void *a, const void *b) {
    uintptr_t x = (uintptr_t) * (goro_chan *const *)a, y = (uintptr_t) * (goro_chan *const *)b;
    return x < y ? -1 : x > y;
}

/* Sorts the channels by address: an insertion sort for the few of a typical select. */
static void sort_chans(goro_chan **order, size_t n) {
    if (n > 16) {
        qsort(order, n, sizeof *order, cmp_chan);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        goro_chan *c = order[i];
        size_t j = i;
        for (; j > 0 && (uintptr_t)order[j - 1] > (uintptr_t)c; j--)
            order[j] = order[j - 1];
        order[j] = c;
    }
}

/* Whether case k looks ready, read without its channel's lock: a hint for the first pass
 * of a select, which then tries the case under that one lock. The writers of these fields
 * hold the lock and use relaxed stores (count, closed, queue heads). */
static inline bool select_hint(const goro_case *k) {
    goro_chan *c = k->chan;
    if (goro__load_relaxed(&c->closed))
        return true;
    if (k->op == GORO_SEND)
        return goro__load_relaxed(&c->recvq.head) || goro__load_relaxed(&c->count) < c->cap;
    return goro__load_relaxed(&c->count) > 0 || goro__load_relaxed(&c->sendq.head);
}

/* The select's timer. It may run while a partner completes the select; the waiter then
 * waits for timer_done before its frame (which holds ws) goes away. */
static void timeout_fire(goro__timer *t, int64_t now) {
    (void)now;
    wstate *ws = t->arg;
    uint32_t zero = 0;
    /* Acq-rel, as in dequeue: the timer competes with partners for the one completion. */
    if (goro__cas_acqrel(&ws->done, &zero, 1)) {
        ws->winner = -1;
        goro__ready(ws->g);
    }
    /* Release pairs with the waiter's acquire: our last access to ws. */
    goro__store_release(&ws->timer_done, 1);
}

/* Park's commit: the goroutine is WAITING; now the records may be found (C4). */
static bool select_commit(goro__g *g, void *arg) {
    (void)g;
    selwait *s = arg;
    if (s->timed)
        goro__timer_add(goro__getm()->p, &s->timer);
    unlock_all(s);
    return true;
}

/* After a timed select wakes: stops its timer, or waits until the timer's callback, which
 * fired, has finished with ws. */
static void stop_timer(selwait *s, wstate *ws) {
    if (!goro__timer_del(&s->timer))
        while (!goro__load_acquire(&ws->timer_done))
            goro__cpu_relax(); /* it fired: its callback is finishing on another M */
}

/* The random state of a thread outside the runtime (no M), for its selects' order. */
static _Thread_local uint64_t outside_rand;

static int select_impl(goro_case *cases, size_t n, int64_t deadline, int reason) {
    goro__m *m = goro__getm_entry(); /* nothing switched yet (current_g) */
    goro__g *g = m ? m->curg : NULL; /* NULL on g0: only the non-blocking forms work there */
    uint64_t *rand_state = m ? &m->rand : &outside_rand;
    goro_chan *order_stack[SELECT_STACK_CASES];
    waiter wc_stack[SELECT_STACK_CASES];
    int perm_stack[SELECT_STACK_CASES];
    goro_chan **order = order_stack;
    waiter *wc = wc_stack;
    int *perm = perm_stack;
    void *heap = NULL;
    if (n > SELECT_STACK_CASES) {
        heap = malloc(n * (sizeof *order + sizeof *wc + sizeof *perm));
        if (!heap)
            return GORO_ENOMEM;
        order = heap;
        wc = (waiter *)(order + n);
        perm = (int *)(wc + n);
    }
    /* A uniformly random poll order (Fisher-Yates) over the non-NULL cases, and the
     * distinct channels in address order. */
    size_t live = 0, norder = 0;
    uint64_t bits = 0; /* random bits not used yet, 32 per case */
    for (size_t i = 0; i < n; i++) {
        /* An op other than GORO_SEND or GORO_RECV (1 and 2): checked here rather than in a
         * loop of its own, 3% of a fan-in select's instructions. Nothing is locked yet. */
        if (GORO__UNLIKELY((unsigned)cases[i].op - GORO_SEND > GORO_RECV - GORO_SEND)) {
            free(heap);
            return GORO_EINVAL;
        }
        if (!cases[i].chan)
            continue;
        /* j uniform in [0, live]: the high half of a 32x32-bit product (no division). */
        size_t j = 0;
        if (live) {
            if (live % 2 == 1)
                bits = goro__rand_on(rand_state);
            j = (size_t)(((bits & 0xffffffffu) * (live + 1)) >> 32);
            bits >>= 32;
        }
        perm[live] = perm[j];
        perm[j] = (int)i;
        live++;
        order[norder++] = cases[i].chan;
    }
    int ret;
    /* First pass, in poll order: a case that looks ready is tried under its own lock
     * only, as a plain send or receive would be. Most selects that find a partner finish
     * here, without taking (and bouncing between CPUs) the other channels' locks. */
    for (size_t k = 0; k < live; k++) {
        goro_case *kc = &cases[perm[k]];
        if (!select_hint(kc))
            continue;
        int result;
        goro__g *wake;
        chan_lock(kc->chan);
        if (kc->op == GORO_SEND ? send_locked(kc->chan, kc->elem, &result, &wake)
                                : recv_locked(kc->chan, kc->elem, &result, &wake)) {
            chan_unlock(kc->chan);
            if (wake)
                goro__ready(wake); /* (C6) */
            kc->result = result;
            ret = perm[k];
            goto out;
        }
        chan_unlock(kc->chan);
    }
    /* Second pass, with every channel locked (C5): either a case is ready now, or the
     * select takes its default, times out, or waits, and that decision needs one moment
     * at which no case was ready. */
    sort_chans(order, norder);
    size_t d = 0;
    for (size_t i = 0; i < norder; i++)
        if (d == 0 || order[i] != order[d - 1])
            order[d++] = order[i];
    selwait s = {.order = order, .norder = d};

    lock_all(&s);
    for (size_t k = 0; k < live; k++) {
        int idx = perm[k], result;
        goro__g *wake;
        goro_case *kc = &cases[idx];
        if (kc->op == GORO_SEND ? send_locked(kc->chan, kc->elem, &result, &wake)
                                : recv_locked(kc->chan, kc->elem, &result, &wake)) {
            unlock_all(&s);
            if (wake)
                goro__ready(wake); /* (C6) */
            kc->result = result;
            ret = idx;
            goto out;
        }
    }
    if (deadline == 0 || (deadline != GORO_FOREVER && deadline <= goro__nanotime())) {
        unlock_all(&s);
        ret = deadline == 0 ? GORO_EAGAIN : GORO_ETIMEDOUT;
        goto out;
    }
    if (!g) {
        unlock_all(&s);
        goro__outside_contact();
        ret = GORO_EPERM;
        goto out;
    }
    wstate ws = {.g = g,
                 .done = 0,
                 .winner = -1,
                 .result = 0,
                 .timer_done = 0,
                 .contended = d > 1 || deadline != GORO_FOREVER};
    for (size_t k = 0; k < live; k++) {
        int idx = perm[k];
        goro_chan *c = cases[idx].chan;
        wc[k].g = g;
        wc[k].elem = cases[idx].elem;
        wc[k].ws = &ws;
        wc[k].index = idx;
        enqueue(cases[idx].op == GORO_SEND ? &c->sendq : &c->recvq, &wc[k]);
    }
    if (deadline != GORO_FOREVER) {
        s.timed = true;
        s.timer = (goro__timer){.when = deadline, .f = timeout_fire, .arg = &ws, .idx = -1};
    }
    goro__park(live || reason != GORO__WAIT_SELECT ? reason : GORO__WAIT_SELECT_NOCASES,
               select_commit, &s);

    /* Woken by a partner or close (winner >= 0), or by the timer (winner -1). Remove the
     * records still queued before this frame goes away (C3), one channel lock at a time
     * (no order needed, as none is held with another). The winning record was unlinked by
     * whoever claimed it, which finished with it before readying us (C6). */
    if (s.timed)
        stop_timer(&s, &ws);
    for (size_t k = 0; k < live; k++) {
        if (wc[k].index == ws.winner)
            continue;
        goro_case *kc = &cases[wc[k].index];
        chan_lock(kc->chan);
        unlink_waiter(kc->op == GORO_SEND ? &kc->chan->sendq : &kc->chan->recvq, &wc[k]);
        chan_unlock(kc->chan);
    }
    if (ws.winner < 0) {
        ret = GORO_ETIMEDOUT;
    } else {
        ret = ws.winner;
        cases[ret].result = ws.result;
    }
out:
    free(heap);
    return ret;
}

int goro_select(goro_case *cases, size_t n, int64_t deadline) {
    if (n > 0 && !cases)
        return GORO_EINVAL;
    return select_impl(cases, n, deadline, GORO__WAIT_SELECT); /* checks each op */
}

/* ------------------------------------------------------------------ send, receive, close */

/* A send or receive without a deadline on c, which is locked and not ready: waits with a
 * plain record on q. Unlocks c. */
static inline __attribute__((always_inline)) int block_plain(goro_chan *c, waitq *q, void *elem,
                                                             int reason) {
    goro__g *g = current_g();
    if (GORO__UNLIKELY(!g)) {
        chan_unlock(c);
        goro__outside_contact();
        return GORO_EPERM;
    }
    waiter *w = (waiter *)goro__gw(g)->wrec; /* in the descriptor (C7) */
    w->g = g;
    w->elem = elem;
    w->ws = NULL;
    enqueue(q, w);
    goro__wait_queued_off_stack(g, GORO__WK_CHAN, &c->lock); /* c is a heap block */
    /* The commit drops the lock once we are WAITING (C4); chan_unlock's store. */
    goro__park(reason, goro__commit_unlock_word, &c->lock);
    return w->result; /* dequeued and completed by a partner or close */
}

/* The same with a deadline (not GORO_FOREVER): the timer competes with partners, as for
 * a select of one case. Unlocks c. */
static __attribute__((noinline)) int block_timed(goro_chan *c, waitq *q, void *elem, int reason,
                                                 int64_t deadline) {
    if (deadline == 0 || deadline <= goro__nanotime()) {
        chan_unlock(c);
        return deadline == 0 ? GORO_EAGAIN : GORO_ETIMEDOUT;
    }
    goro__g *g = current_g();
    if (!g) {
        chan_unlock(c);
        goro__outside_contact();
        return GORO_EPERM;
    }
    wstate ws = {.g = g, .done = 0, .winner = -1, .result = 0, .timer_done = 0, .contended = true};
    waiter w;
    w.g = g;
    w.elem = elem;
    w.ws = &ws;
    w.index = 0;
    enqueue(q, &w);
    selwait s = {.order = &c, .norder = 1, .timed = true};
    s.timer = (goro__timer){.when = deadline, .f = timeout_fire, .arg = &ws, .idx = -1};
    goro__park(reason, select_commit, &s);
    stop_timer(&s, &ws);
    if (ws.winner >= 0)
        return ws.result;
    chan_lock(c);
    unlink_waiter(q, &w);
    chan_unlock(c);
    return GORO_ETIMEDOUT;
}

/* An operation on a NULL channel: never ready. */
static __attribute__((noinline)) int nil_wait(int op, int64_t deadline) {
    if (deadline == 0)
        return GORO_EAGAIN;
    if (!current_g()) {
        goro__outside_contact();
        return GORO_EPERM;
    }
    if (deadline == GORO_FOREVER)
        goro__park(op == GORO_SEND ? GORO__WAIT_CHAN_SEND_NIL : GORO__WAIT_CHAN_RECV_NIL, NULL,
                   NULL);
    else
        goro_sleep_until(deadline);
    return GORO_ETIMEDOUT;
}

static inline __attribute__((always_inline)) int chan_send(goro_chan *c, const void *elem,
                                                           int64_t deadline) {
    if (GORO__UNLIKELY(!c))
        return nil_wait(GORO_SEND, deadline);
    int result;
    goro__g *wake;
    chan_lock(c);
    if (GORO__LIKELY(send_locked(c, elem, &result, &wake))) {
        chan_unlock(c);
        if (wake)
            goro__ready(wake); /* (C6) */
        return result;
    }
    if (deadline == GORO_FOREVER)
        return block_plain(c, &c->sendq, (void *)elem, GORO__WAIT_CHAN_SEND);
    return block_timed(c, &c->sendq, (void *)elem, GORO__WAIT_CHAN_SEND, deadline);
}

static inline __attribute__((always_inline)) int chan_recv(goro_chan *c, void *out,
                                                           int64_t deadline) {
    if (GORO__UNLIKELY(!c))
        return nil_wait(GORO_RECV, deadline);
    int result;
    goro__g *wake;
    chan_lock(c);
    if (recv_locked(c, out, &result, &wake)) {
        chan_unlock(c);
        if (wake)
            goro__ready(wake); /* (C6) */
        return result;
    }
    if (deadline == GORO_FOREVER)
        return block_plain(c, &c->recvq, out, GORO__WAIT_CHAN_RECV);
    return block_timed(c, &c->recvq, out, GORO__WAIT_CHAN_RECV, deadline);
}

int goro_chan_send(goro_chan *c, const void *elem) {
    return chan_send(c, elem, GORO_FOREVER);
}

int goro_chan_recv(goro_chan *c, void *out) {
    return chan_recv(c, out, GORO_FOREVER);
}

int goro_chan_send_dl(goro_chan *c, const void *elem, int64_t deadline) {
    return chan_send(c, elem, deadline);
}

int goro_chan_recv_dl(goro_chan *c, void *out, int64_t deadline) {
    return chan_recv(c, out, deadline);
}

int goro_chan_close(goro_chan *c) {
    if (!c)
        return GORO_EINVAL;
    chan_lock(c);
    if (c->closed) {
        chan_unlock(c);
        return GORO_ECLOSED;
    }
    goro__race_release(&c->closed); /* close happens before what observes it */
    goro__store_relaxed(&c->closed, 1);
    /* Every waiter wakes: receivers with zero values, senders with GORO_ECLOSED. They are
     * readied after the lock is dropped (C6), linked through their descriptors'
     * schedlink, which is free while they wait. */
    goro__g *wake = NULL, *g;
    waiter *w;
    while ((w = dequeue(&c->recvq))) {
        zero_elem(c, w->elem);
        g = complete(w, GORO_ECLOSED);
        goro__race_acquire_g(g, &c->closed);
        g->schedlink = wake;
        wake = g;
    }
    while ((w = dequeue(&c->sendq))) {
        g = complete(w, GORO_ECLOSED);
        goro__race_acquire_g(g, &c->closed);
        g->schedlink = wake;
        wake = g;
    }
    chan_unlock(c);
    while ((g = wake)) {
        wake = g->schedlink;
        g->schedlink = NULL;
        goro__ready(g);
    }
    return 0;
}
