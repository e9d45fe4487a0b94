/*
 * runq_steal: white-box test of the per-P run queue (src/runq.h), with fake goroutine
 * pointers that are never dereferenced.
 *
 * Single-threaded: FIFO order, a full ring refuses put, head/tail counters that wrap
 * around 2^32, grab takes ceil(n/2) oldest first, steal takes ceil(n/2) with one returned
 * and the rest left in dst, and src keeps the others in order.
 *
 * Concurrent: an owner pthread puts and gets while thief pthreads steal from it and from
 * each other and drain what they stole; every pointer must be seen exactly once overall.
 *
 * The spawn stack (goro__lifo in runq.h) the same way: newest first for the owner, oldest
 * first for thieves and spills, a full stack refuses a push; concurrently, an owner that
 * pushes and pops while thieves steal one at a time, every pointer seen exactly once
 * (the race for the last entry between the owner's pop and a steal is the hard part).
 */
#include "testutil.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "runq.h"

#define RUNQ_SIZE GORO__RUNQ_SIZE

/* Item i is the pointer 16*(i+1): non-NULL, aligned, distinct. */
static struct goro__g *item(uint32_t i) {
    return (struct goro__g *)(uintptr_t)(16u * ((uintptr_t)i + 1));
}

static uint32_t index_of(struct goro__g *g) {
    uintptr_t v = (uintptr_t)g;
    CHECKF(v != 0 && v % 16 == 0, "run queue returned a pointer it was never given: %p", (void *)g);
    return (uint32_t)(v / 16 - 1);
}

static void init_at(goro__runq *q, uint32_t counter) {
    memset(q, 0, sizeof *q);
    q->head = counter;
    q->tail = counter;
}

/* Pops everything from q (owner side) into out[], returns how many. */
static uint32_t drain(goro__runq *q, uint32_t *out, uint32_t max) {
    uint32_t n = 0;
    struct goro__g *g;
    while ((g = goro__runq_get(q)) != NULL) {
        CHECK(n < max);
        out[n++] = index_of(g);
    }
    CHECK(goro__runq_empty(q));
    CHECK_EQ(goro__runq_len(q), 0);
    return n;
}

/* ------------------------------------------------------------------ single-threaded */

static void test_fifo_and_full(uint32_t start) {
    static goro__runq q;
    init_at(&q, start);
    CHECK(goro__runq_empty(&q));
    CHECK(goro__runq_get(&q) == NULL);

    /* Several laps of the ring so slot indexes and counters wrap. */
    uint32_t next_in = 0, next_out = 0;
    for (int lap = 0; lap < 5; lap++) {
        uint32_t fill = 1 + (uint32_t)lap * 60;
        for (uint32_t k = 0; k < fill; k++)
            CHECK(goro__runq_put(&q, item(next_in++)));
        CHECK_EQ(goro__runq_len(&q), next_in - next_out);
        CHECK(!goro__runq_empty(&q));
        for (uint32_t k = 0; k < fill; k++) {
            struct goro__g *g = goro__runq_get(&q);
            CHECKF(g != NULL, "get returned NULL with %u queued", next_in - next_out);
            CHECKF(index_of(g) == next_out, "FIFO broken: got item %u, expected %u", index_of(g),
                   next_out);
            next_out++;
        }
        CHECK(goro__runq_empty(&q));
    }

    /* A full ring refuses put and keeps what it has. */
    for (uint32_t k = 0; k < RUNQ_SIZE; k++)
        CHECKF(goro__runq_put(&q, item(k)), "put #%u failed on a ring of %u", k, RUNQ_SIZE);
    CHECK_EQ(goro__runq_len(&q), RUNQ_SIZE);
    CHECK(!goro__runq_put(&q, item(RUNQ_SIZE)));
    CHECK_EQ(goro__runq_len(&q), RUNQ_SIZE);
    for (uint32_t k = 0; k < RUNQ_SIZE; k++) {
        struct goro__g *g = goro__runq_get(&q);
        CHECK(g != NULL);
        CHECK_EQ(index_of(g), k);
    }
    CHECK(goro__runq_get(&q) == NULL);
}

static void test_grab(uint32_t start) {
    static goro__runq q;
    static struct goro__g *batch[RUNQ_SIZE / 2 + 1];
    uint32_t rest[RUNQ_SIZE];
    for (uint32_t n = 0; n <= RUNQ_SIZE; n++) {
        init_at(&q, start - n / 3); /* vary where the ring starts */
        for (uint32_t k = 0; k < n; k++)
            CHECK(goro__runq_put(&q, item(k)));
        uint32_t got = goro__runq_grab(&q, batch);
        CHECKF(got == (n + 1) / 2, "grab from %u took %u, want %u", n, got, (n + 1) / 2);
        for (uint32_t k = 0; k < got; k++)
            CHECKF(index_of(batch[k]) == k,
                   "grab from %u: batch[%u] is item %u, want the "
                   "oldest first",
                   n, k, index_of(batch[k]));
        uint32_t left = drain(&q, rest, RUNQ_SIZE);
        CHECK_EQ(left, n - got);
        for (uint32_t k = 0; k < left; k++)
            CHECK_EQ(rest[k], got + k);
    }
}

static void test_steal(uint32_t start_src, uint32_t start_dst) {
    static goro__runq src, dst;
    uint32_t seen[RUNQ_SIZE + 1];
    uint32_t rest[RUNQ_SIZE];

    init_at(&src, start_src);
    init_at(&dst, start_dst);
    CHECK(goro__runq_steal(&dst, &src) == NULL);
    CHECK(goro__runq_empty(&dst));

    for (uint32_t n = 1; n <= RUNQ_SIZE; n++) {
        init_at(&src, start_src + n * 7);
        init_at(&dst, start_dst - n * 5);
        for (uint32_t k = 0; k < n; k++)
            CHECK(goro__runq_put(&src, item(k)));

        struct goro__g *g = goro__runq_steal(&dst, &src);
        CHECKF(g != NULL, "steal from a queue of %u returned NULL", n);
        uint32_t want = (n + 1) / 2;
        uint32_t in_dst = goro__runq_len(&dst);
        CHECKF(1 + in_dst == want, "steal from %u: 1 returned + %u left in dst, want %u in all", n,
               in_dst, want);
        CHECKF(goro__runq_len(&src) == n - want, "steal from %u left %u in src, want %u", n,
               goro__runq_len(&src), n - want);

        memset(seen, 0, sizeof seen);
        seen[index_of(g)]++;
        uint32_t m = drain(&dst, rest, RUNQ_SIZE);
        CHECK_EQ(m, in_dst);
        for (uint32_t k = 0; k < m; k++) {
            CHECKF(rest[k] < n, "dst holds item %u, never put", rest[k]);
            seen[rest[k]]++;
        }
        /* What stays in src comes out oldest first, and together with the stolen part
         * it is every item exactly once. */
        m = drain(&src, rest, RUNQ_SIZE);
        CHECK_EQ(m, n - want);
        for (uint32_t k = 0; k < m; k++) {
            CHECKF(rest[k] < n, "src holds item %u, never put", rest[k]);
            if (k > 0)
                CHECKF(rest[k] > rest[k - 1], "src order broken after steal: %u after %u", rest[k],
                       rest[k - 1]);
            seen[rest[k]]++;
        }
        for (uint32_t k = 0; k < n; k++)
            CHECKF(seen[k] == 1, "steal from %u: item %u seen %u times", n, k, seen[k]);

        /* The thief's queue works as a queue afterwards. */
        CHECK(goro__runq_put(&dst, item(0)));
        CHECK(goro__runq_get(&dst) == item(0));
        CHECK(goro__runq_get(&dst) == NULL);
    }
}

/* ------------------------------------------------------------------ concurrent */

#define MAX_THIEVES 3

static uint32_t nitems;
static _Atomic uint8_t *seen_count;
static _Atomic int owner_done;
static _Atomic long stolen_total; /* items that came out of a steal (returned or in dst) */
static _Atomic long steals_ok;
static int nthieves;
static goro__runq owner_q;
static goro__runq thief_q[MAX_THIEVES];

static void mark(struct goro__g *g) {
    uint32_t i = index_of(g);
    CHECKF(i < nitems, "item %u was never put", i);
    uint8_t before = atomic_fetch_add_explicit(&seen_count[i], 1, memory_order_relaxed);
    CHECKF(before == 0, "item %u came out of the queues twice", i);
}

static void *owner(void *arg) {
    (void)arg;
    uint64_t rng = 12345;
    for (uint32_t i = 0; i < nitems; i++) {
        while (!goro__runq_put(&owner_q, item(i))) {
            /* Full: take one back ourselves, like a P running its own work. */
            struct goro__g *g = goro__runq_get(&owner_q);
            if (g != NULL)
                mark(g);
        }
        uint64_t r = tu_rand(&rng);
        if (r % 8 == 0) {
            struct goro__g *g = goro__runq_get(&owner_q);
            if (g != NULL)
                mark(g);
        }
        if (r % 4096 == 1)
            sched_yield(); /* let thieves run on a busy machine */
    }
    /* Leave the remainder to the thieves: they must drain it by stealing. */
    while (!goro__runq_empty(&owner_q))
        sched_yield();
    atomic_store(&owner_done, 1);
    return NULL;
}

static void *thief(void *arg) {
    int self = (int)(intptr_t)arg;
    goro__runq *mine = &thief_q[self];
    uint32_t victim = (uint32_t)self;
    for (;;) {
        /* dst must be empty for a steal: drain our own queue first (others may be
         * stealing from it at the same time). */
        struct goro__g *g;
        while ((g = goro__runq_get(mine)) != NULL)
            mark(g);

        /* Mostly rob the owner; now and then another thief. */
        victim++;
        goro__runq *src = &owner_q;
        if (nthieves > 1 && victim % 4 == 0) {
            int other = (int)(victim / 4 % (uint32_t)nthieves);
            if (other != self)
                src = &thief_q[other];
        }
        int done = atomic_load(&owner_done);
        g = goro__runq_steal(mine, src);
        if (g != NULL) {
            uint32_t extra = goro__runq_len(mine);
            CHECKF(1 + extra <= RUNQ_SIZE / 2, "a steal took %u items, more than half a ring",
                   1 + extra);
            atomic_fetch_add(&stolen_total, (long)(1 + extra));
            atomic_fetch_add(&steals_ok, 1);
            mark(g);
            continue;
        }
        if (done && src == &owner_q && goro__runq_empty(&owner_q))
            break;
    }
    /* Our own queue is drained by us before leaving. */
    struct goro__g *g;
    while ((g = goro__runq_get(mine)) != NULL)
        mark(g);
    return NULL;
}

static void test_concurrent(int thieves, uint32_t start) {
    nthieves = thieves;
    init_at(&owner_q, start);
    for (int t = 0; t < thieves; t++)
        init_at(&thief_q[t], start + 1000u * (uint32_t)t);
    for (uint32_t i = 0; i < nitems; i++)
        atomic_store(&seen_count[i], 0);
    atomic_store(&owner_done, 0);
    atomic_store(&stolen_total, 0);
    atomic_store(&steals_ok, 0);

    pthread_t th[MAX_THIEVES], ow;
    for (int t = 0; t < thieves; t++)
        CHECK(pthread_create(&th[t], NULL, thief, (void *)(intptr_t)t) == 0);
    CHECK(pthread_create(&ow, NULL, owner, NULL) == 0);
    CHECK(pthread_join(ow, NULL) == 0);
    for (int t = 0; t < thieves; t++)
        CHECK(pthread_join(th[t], NULL) == 0);

    for (uint32_t i = 0; i < nitems; i++)
        CHECKF(atomic_load(&seen_count[i]) == 1, "%d thieves: item %u seen %d times", thieves, i,
               (int)atomic_load(&seen_count[i]));
    CHECK(goro__runq_empty(&owner_q));
    for (int t = 0; t < thieves; t++)
        CHECK(goro__runq_empty(&thief_q[t]));
    CHECKF(atomic_load(&steals_ok) > 0, "%d thieves never stole anything", thieves);
    printf("%d thieves: %u items, %ld steals took %ld items\n", thieves, nitems,
           atomic_load(&steals_ok), atomic_load(&stolen_total));
}

/* ------------------------------------------------------------------ spawn stack */

#define LIFO_SIZE GORO__LIFO_SIZE

static void test_lifo_single(bool alone) {
    static goro__lifo s;
    static struct goro__g *batch[LIFO_SIZE / 2];
    memset(&s, 0, sizeof s);
    CHECK(goro__lifo_empty(&s));
    CHECK(goro__lifo_pop(&s, alone) == NULL);
    CHECK(goro__lifo_steal(&s) == NULL);
    /* Laps so that slots wrap: push k, pop newest first. */
    uint32_t next = 0;
    for (int lap = 0; lap < 5; lap++) {
        uint32_t fill = 1 + (uint32_t)lap * 100;
        for (uint32_t k = 0; k < fill; k++)
            CHECK(goro__lifo_push(&s, item(next + k)));
        /* Steal the oldest, then pop the rest newest first. */
        CHECK_EQ(index_of(goro__lifo_steal(&s)), next);
        for (uint32_t k = fill; k-- > 1;) {
            struct goro__g *g = goro__lifo_pop(&s, alone);
            CHECKF(g != NULL && index_of(g) == next + k, "LIFO broken: got %u, want %u",
                   g ? index_of(g) : 0u, next + k);
        }
        CHECK(goro__lifo_empty(&s));
        CHECK(goro__lifo_pop(&s, alone) == NULL);
        next += fill;
    }
    /* Full: refuses, and the spill takes the oldest half in order. */
    for (uint32_t k = 0; k < LIFO_SIZE; k++)
        CHECK(goro__lifo_push(&s, item(k)));
    CHECK(!goro__lifo_push(&s, item(LIFO_SIZE)));
    uint32_t n = goro__lifo_spill(&s, batch);
    CHECK_EQ(n, LIFO_SIZE / 2);
    for (uint32_t k = 0; k < n; k++)
        CHECK_EQ(index_of(batch[k]), k);
    CHECK(goro__lifo_push(&s, item(LIFO_SIZE)));
    for (uint32_t k = LIFO_SIZE + 1; k-- > LIFO_SIZE / 2;)
        CHECK_EQ(index_of(goro__lifo_pop(&s, alone)), k);
    CHECK(goro__lifo_pop(&s, alone) == NULL);
    CHECK_EQ(goro__lifo_spill(&s, batch), 0);
}

static goro__lifo owner_s;

static void *lifo_owner(void *arg) {
    (void)arg;
    uint64_t rng = 777;
    for (uint32_t i = 0; i < nitems; i++) {
        while (!goro__lifo_push(&owner_s, item(i))) {
            struct goro__g *g = goro__lifo_pop(&owner_s, false);
            if (g != NULL)
                mark(g);
        }
        /* Mostly keep the stack at zero to a few entries: every pop is then a race for
         * the last entry with the thieves. */
        uint64_t r = tu_rand(&rng);
        for (uint64_t k = r % 3; k > 0; k--) {
            struct goro__g *g = goro__lifo_pop(&owner_s, false);
            if (g != NULL)
                mark(g);
        }
        if (r % 4096 == 1)
            sched_yield();
    }
    struct goro__g *g;
    while ((g = goro__lifo_pop(&owner_s, false)) != NULL)
        mark(g);
    atomic_store(&owner_done, 1);
    return NULL;
}

static void *lifo_thief(void *arg) {
    (void)arg;
    for (;;) {
        int done = atomic_load(&owner_done);
        struct goro__g *g = goro__lifo_steal(&owner_s);
        if (g != NULL) {
            atomic_fetch_add(&steals_ok, 1);
            mark(g);
        } else if (done && goro__lifo_empty(&owner_s)) {
            return NULL;
        }
    }
}

static void test_lifo_concurrent(int thieves) {
    memset(&owner_s, 0, sizeof owner_s);
    for (uint32_t i = 0; i < nitems; i++)
        atomic_store(&seen_count[i], 0);
    atomic_store(&owner_done, 0);
    atomic_store(&steals_ok, 0);
    pthread_t th[MAX_THIEVES], ow;
    for (int t = 0; t < thieves; t++)
        CHECK(pthread_create(&th[t], NULL, lifo_thief, NULL) == 0);
    CHECK(pthread_create(&ow, NULL, lifo_owner, NULL) == 0);
    CHECK(pthread_join(ow, NULL) == 0);
    for (int t = 0; t < thieves; t++)
        CHECK(pthread_join(th[t], NULL) == 0);
    for (uint32_t i = 0; i < nitems; i++)
        CHECKF(atomic_load(&seen_count[i]) == 1, "spawn stack, %d thieves: item %u seen %d times",
               thieves, i, (int)atomic_load(&seen_count[i]));
    printf("spawn stack, %d thieves: %u items, %ld stolen\n", thieves, nitems,
           atomic_load(&steals_ok));
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0); /* a failure shows which part it was in */
    /* Counters starting at 0, just below a multiple of the ring, and just below 2^32. */
    const uint32_t starts[] = {0, RUNQ_SIZE - 3, UINT32_MAX - 100, UINT32_MAX};
    for (size_t s = 0; s < sizeof starts / sizeof starts[0]; s++) {
        test_fifo_and_full(starts[s]);
        test_grab(starts[s]);
        test_steal(starts[s], starts[(s + 1) % 4]);
    }
    printf("single-threaded put/get/grab/steal: ok\n");

    nitems = (uint32_t)tu_scaled(2000000, 20000);
    seen_count = calloc(nitems, sizeof *seen_count);
    CHECK(seen_count != NULL);
    for (int thieves = 1; thieves <= MAX_THIEVES; thieves++)
        test_concurrent(thieves, thieves == 2 ? UINT32_MAX - 5000 : 0);
    test_lifo_single(false);
    test_lifo_single(true);
    for (int thieves = 1; thieves <= MAX_THIEVES; thieves++)
        test_lifo_concurrent(thieves);
    free((void *)seen_count);
    return tu_pass("runq_steal");
}
