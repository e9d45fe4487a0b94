/*
 * sync_rwmutex: goro_rwmutex lets readers in together, writers alone, and does not starve
 * a writer behind a stream of readers.
 *
 *  - readers share: NREADERS goroutines take the read lock and wait, still holding it,
 *    until all of them are inside at once (a rendezvous; a read lock that excluded other
 *    readers would never get there, and the wait is bounded so that it fails, not hangs);
 *  - writers exclude: writers and readers hammer one lock; a writer must find nobody else
 *    inside and readers must never see a writer inside or a half-done update of two plain
 *    counters, which end equal to the number of writes;
 *  - a pending writer blocks new readers: with a reader inside and a writer waiting, a
 *    newly arriving reader must wait until the writer has been in and out;
 *  - no writer starvation: while readers keep taking the read lock with overlapping holds,
 *    a writer gets in within a bound, many times over;
 *  - misuse is fatal with Go's messages, each in a child process: read unlock of an
 *    unlocked or write-locked mutex, unlock of an unlocked or read-locked one. The goroutine
 *    dump after the message shows the wait reasons of a reader and a writer parked on
 *    other rwmutexes.
 *
 * The test reads rw->reader_count (public in goro.h) to see that a writer has announced
 * itself, which no API call tells.
 */
#include "testutil.h"

#include <stdatomic.h>

#define NREADERS 4
#define MAX_READERS (1 << 30)

static goro_waitgroup wg = GORO_WAITGROUP_INIT;

static int32_t reader_count(goro_rwmutex *rw) {
    return __atomic_load_n(&rw->reader_count, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------------ readers share */

static goro_rwmutex share_rw = GORO_RWMUTEX_INIT;
static _Atomic int share_inside;
static _Atomic int share_max;

static void sharing_reader(void *arg) {
    (void)arg;
    goro_rwmutex_rlock(&share_rw);
    int n = atomic_fetch_add(&share_inside, 1) + 1;
    int64_t deadline = goro_now() + 5000 * TU_MS;
    while (n < NREADERS && goro_now() < deadline) {
        goro_yield();
        n = atomic_load(&share_inside);
    }
    int m = atomic_load(&share_max);
    while (n > m && !atomic_compare_exchange_weak(&share_max, &m, n))
        ;
    goro_rwmutex_runlock(&share_rw);
    goro_wg_done(&wg);
}

static void readers_share(void) {
    goro_wg_add(&wg, NREADERS);
    for (int i = 0; i < NREADERS; i++)
        CHECK(goro_spawn(sharing_reader, NULL) == 0);
    goro_wg_wait(&wg);
    CHECKF(atomic_load(&share_max) == NREADERS, "at most %d of %d readers were inside at once",
           atomic_load(&share_max), NREADERS);
    CHECK_EQ(reader_count(&share_rw), 0);
    /* Free of readers again, a writer gets in. */
    goro_rwmutex_lock(&share_rw);
    goro_rwmutex_unlock(&share_rw);
}

/* ------------------------------------------------------------------ writers exclude */

#define EX_WRITERS 4
#define EX_READERS 8
static goro_rwmutex ex_rw = GORO_RWMUTEX_INIT;
static long ex_a, ex_b; /* protected by ex_rw: always equal outside a write */
static _Atomic int ex_readers_in, ex_writers_in;
static long ex_iters;
static _Atomic long ex_reads;

static void ex_writer(void *arg) {
    uint64_t rng = (uint64_t)(intptr_t)arg + 1;
    for (long i = 0; i < ex_iters; i++) {
        goro_rwmutex_lock(&ex_rw);
        CHECKF(atomic_fetch_add(&ex_writers_in, 1) == 0, "two writers inside at once");
        CHECKF(atomic_load(&ex_readers_in) == 0, "a writer inside with readers");
        ex_a++;
        if (tu_rand(&rng) % 16 == 0)
            goro_yield(); /* others must park on us */
        ex_b++;
        atomic_fetch_sub(&ex_writers_in, 1);
        goro_rwmutex_unlock(&ex_rw);
    }
    goro_wg_done(&wg);
}

static void ex_reader(void *arg) {
    uint64_t rng = (uint64_t)(intptr_t)arg + 100;
    for (long i = 0; i < ex_iters * 2; i++) {
        goro_rwmutex_rlock(&ex_rw);
        atomic_fetch_add(&ex_readers_in, 1);
        CHECKF(atomic_load(&ex_writers_in) == 0, "a reader inside with a writer");
        long a = ex_a;
        if (tu_rand(&rng) % 16 == 0)
            goro_yield();
        CHECKF(a == ex_b, "reader saw a half-done write: a %ld, b %ld", a, ex_b);
        atomic_fetch_sub(&ex_readers_in, 1);
        goro_rwmutex_runlock(&ex_rw);
        atomic_fetch_add(&ex_reads, 1);
    }
    goro_wg_done(&wg);
}

static void writers_exclude(void) {
    goro_wg_add(&wg, EX_WRITERS + EX_READERS);
    for (int i = 0; i < EX_WRITERS + EX_READERS; i++)
        CHECK(goro_spawn(i < EX_WRITERS ? ex_writer : ex_reader, (void *)(intptr_t)i) == 0);
    goro_wg_wait(&wg);
    goro_rwmutex_rlock(&ex_rw);
    CHECKF(ex_a == EX_WRITERS * ex_iters, "writes lost: %ld of %ld", ex_a, EX_WRITERS * ex_iters);
    CHECK_EQ(ex_b, ex_a);
    goro_rwmutex_runlock(&ex_rw);
    CHECK_EQ(atomic_load(&ex_reads), EX_READERS * ex_iters * 2);
    CHECK_EQ(reader_count(&ex_rw), 0);
}

/* ------------------------------------------------------------------ pending writer */

typedef struct pending {
    goro_rwmutex *rw;
    _Atomic int seq;          /* events so far */
    _Atomic int writer_in_at; /* seq number of the writer's entry, 0 until then */
    _Atomic int reader_in_at; /* seq number of the late reader's entry */
} pending;

static void pending_writer(void *arg) {
    pending *p = arg;
    goro_rwmutex_lock(p->rw);
    atomic_store(&p->writer_in_at, atomic_fetch_add(&p->seq, 1) + 1);
    goro_yield(); /* give the late reader a chance to barge in, if it could */
    goro_rwmutex_unlock(p->rw);
    goro_wg_done(&wg);
}

static void late_reader(void *arg) {
    pending *p = arg;
    goro_rwmutex_rlock(p->rw);
    atomic_store(&p->reader_in_at, atomic_fetch_add(&p->seq, 1) + 1);
    goro_rwmutex_runlock(p->rw);
    goro_wg_done(&wg);
}

static void pending_writer_blocks_readers(void) {
    goro_rwmutex *rw = calloc(1, sizeof *rw); /* all-zero heap memory is unlocked */
    CHECK(rw != NULL);
    pending p = {.rw = rw};
    goro_rwmutex_rlock(rw);
    goro_wg_add(&wg, 2);
    CHECK(goro_spawn(pending_writer, &p) == 0);
    /* Wait until the writer has announced itself (R1 in rwmutex.c). */
    int64_t deadline = goro_now() + 5000 * TU_MS;
    while (reader_count(rw) >= 0 && goro_now() < deadline)
        goro_yield();
    CHECKF(reader_count(rw) < 0, "the writer never announced itself");
    CHECK(goro_spawn(late_reader, &p) == 0);
    /* The late reader queues behind the writer: count 2 readers (us and it). */
    while (reader_count(rw) != 2 - MAX_READERS && goro_now() < deadline)
        goro_yield();
    CHECK_EQ(reader_count(rw), 2 - MAX_READERS);
    for (int i = 0; i < 100; i++)
        goro_yield();
    goro_sleep(2 * TU_MS);
    CHECKF(atomic_load(&p.reader_in_at) == 0 && atomic_load(&p.writer_in_at) == 0,
           "a reader got in past a waiting writer");
    goro_rwmutex_runlock(rw); /* the writer goes first, then the late reader */
    goro_wg_wait(&wg);
    CHECK_EQ(atomic_load(&p.writer_in_at), 1);
    CHECK_EQ(atomic_load(&p.reader_in_at), 2);
    CHECK_EQ(reader_count(rw), 0);
    free(rw);
}

/* ------------------------------------------------------------------ no starvation */

static goro_rwmutex st_rw = GORO_RWMUTEX_INIT;
static _Atomic int st_stop;
static _Atomic long st_reads;

static void stream_reader(void *arg) {
    (void)arg;
    while (!atomic_load(&st_stop)) {
        goro_rwmutex_rlock(&st_rw);
        goro_yield(); /* hold across a reschedule: read holds overlap */
        goro_rwmutex_runlock(&st_rw);
        atomic_fetch_add(&st_reads, 1);
    }
    goro_wg_done(&wg);
}

static _Atomic int64_t st_writer_since; /* when the waiting writer called lock, or 0 */

/* Fails the test if the writer waits too long (it might never get in: no hang). */
static void starvation_watchdog(void *arg) {
    (void)arg;
    while (!atomic_load(&st_stop)) {
        int64_t since = atomic_load(&st_writer_since);
        CHECKF(since == 0 || goro_now() - since < 2000 * TU_MS,
               "a writer starved behind a stream of readers");
        goro_sleep(10 * TU_MS);
    }
    goro_wg_done(&wg);
}

static void writer_not_starved(void) {
    goro_wg_add(&wg, NREADERS + 1);
    for (int i = 0; i < NREADERS; i++)
        CHECK(goro_spawn(stream_reader, NULL) == 0);
    CHECK(goro_spawn(starvation_watchdog, NULL) == 0);
    int64_t deadline = goro_now() + 5000 * TU_MS;
    while (atomic_load(&st_reads) < 100 && goro_now() < deadline)
        goro_yield();
    CHECKF(atomic_load(&st_reads) >= 100, "the readers do not run");
    int64_t worst = 0;
    long rounds = tu_scaled(200, 20);
    for (long i = 0; i < rounds; i++) {
        long reads_before = atomic_load(&st_reads);
        int64_t t0 = goro_now();
        atomic_store(&st_writer_since, t0);
        goro_rwmutex_lock(&st_rw);
        int64_t dt = goro_now() - t0;
        atomic_store(&st_writer_since, 0);
        goro_rwmutex_unlock(&st_rw);
        worst = dt > worst ? dt : worst;
        CHECKF(dt < 1000 * TU_MS, "a writer waited %.1f ms behind a stream of readers",
               (double)dt / 1e6);
        /* Let the readers run again before the next round. */
        int64_t until = goro_now() + 1000 * TU_MS;
        while (atomic_load(&st_reads) < reads_before + NREADERS && goro_now() < until)
            goro_yield();
    }
    atomic_store(&st_stop, 1);
    goro_wg_wait(&wg);
    printf("writer behind %d streaming readers: worst wait %.3f ms in %ld rounds\n", NREADERS,
           (double)worst / 1e6, rounds);
}

/* ------------------------------------------------------------------ misuse */

typedef struct misuse {
    const char *what;
    const char *line;   /* the exact fatal line; goroutine 1 is main */
    const char *reason; /* wait reasons the dump must show, or NULL */
    const char *reason2;
    void (*commit)(void);
} misuse;

static void runlock_unlocked(void) {
    goro_rwmutex rw = GORO_RWMUTEX_INIT;
    goro_rwmutex_runlock(&rw);
}

static void runlock_twice(void) {
    goro_rwmutex rw = GORO_RWMUTEX_INIT;
    goro_rwmutex_rlock(&rw);
    goro_rwmutex_runlock(&rw);
    goro_rwmutex_runlock(&rw);
}

/* Bystanders for the dump: a reader parked behind a writer and a writer parked behind a
 * reader, on two other rwmutexes. */
static goro_rwmutex held_for_write = GORO_RWMUTEX_INIT, held_for_read = GORO_RWMUTEX_INIT;

static void parked_reader(void *arg) {
    (void)arg;
    goro_rwmutex_rlock(&held_for_write);
}

static void parked_writer(void *arg) {
    (void)arg;
    goro_rwmutex_lock(&held_for_read);
}

static void runlock_write_locked(void) {
    goro_rwmutex_lock(&held_for_write);
    goro_rwmutex_rlock(&held_for_read);
    CHECK(goro_spawn(parked_reader, NULL) == 0);
    CHECK(goro_spawn(parked_writer, NULL) == 0);
    while (reader_count(&held_for_write) != 1 - MAX_READERS ||
           reader_count(&held_for_read) != 1 - MAX_READERS)
        goro_yield();
    goro_sleep(20 * TU_MS); /* let them finish parking (they may run on another P) */
    /* With no reader queued behind the writer, a read unlock is visibly wrong (R4). */
    goro_rwmutex rw = GORO_RWMUTEX_INIT;
    goro_rwmutex_lock(&rw);
    goro_rwmutex_runlock(&rw);
}

static void unlock_unlocked(void) {
    goro_rwmutex rw = GORO_RWMUTEX_INIT;
    goro_rwmutex_unlock(&rw);
}

static void unlock_read_locked(void) {
    goro_rwmutex rw = GORO_RWMUTEX_INIT;
    goro_rwmutex_rlock(&rw);
    goro_rwmutex_unlock(&rw);
}

static void unlock_twice(void) {
    goro_rwmutex rw = GORO_RWMUTEX_INIT;
    goro_rwmutex_lock(&rw);
    goro_rwmutex_unlock(&rw);
    goro_rwmutex_unlock(&rw);
}

#define RUNLOCK_MSG "goro: fatal: sync: RUnlock of unlocked RWMutex (goroutine 1)"
#define UNLOCK_MSG "goro: fatal: sync: Unlock of unlocked RWMutex (goroutine 1)"

static const misuse cases[] = {
    {"read unlock of a never-locked rwmutex", RUNLOCK_MSG, NULL, NULL, runlock_unlocked},
    {"second read unlock", RUNLOCK_MSG, NULL, NULL, runlock_twice},
    {"read unlock of a write-locked rwmutex", RUNLOCK_MSG, "[rwmutex rlock, ", "[rwmutex lock, ",
     runlock_write_locked},
    {"unlock of a never-locked rwmutex", UNLOCK_MSG, NULL, NULL, unlock_unlocked},
    {"unlock of a read-locked rwmutex", UNLOCK_MSG, NULL, NULL, unlock_read_locked},
    {"second unlock", UNLOCK_MSG, NULL, NULL, unlock_twice},
};

static void child_main(void *arg) {
    const misuse *m = arg;
    m->commit();
    fprintf(stderr, "child: the misuse returned\n");
}

static void child(void *arg) {
    int rc = goro_run(NULL, child_main, arg);
    fprintf(stderr, "child: goro_run returned %d (%s)\n", rc, goro_strerror(rc));
}

static void misuse_is_fatal(void) {
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const misuse *m = &cases[i];
        tu_child c;
        tu_run_child(child, (void *)m, 60, &c);
        char how[128];
        if (!(WIFSIGNALED(c.status) && WTERMSIG(c.status) == SIGABRT) ||
            !tu_has_line(c.err, m->line) || (m->reason && !strstr(c.err, m->reason)) ||
            (m->reason2 && !strstr(c.err, m->reason2)))
            tu_show_child(m->what, &c, 3000);
        CHECKF(WIFSIGNALED(c.status) && WTERMSIG(c.status) == SIGABRT,
               "%s: the child should die of SIGABRT; instead it %s", m->what,
               tu_child_how(&c, how, sizeof how));
        CHECKF(tu_has_line(c.err, m->line), "%s: no line \"%s\"", m->what, m->line);
        CHECKF(!m->reason || strstr(c.err, m->reason), "%s: the dump does not show \"%s\"", m->what,
               m->reason);
        printf("%s: ok\n", m->what);
        free(c.err);
    }
}

/* ------------------------------------------------------------------ main */

static void test_main(void *arg) {
    (void)arg;
    readers_share();
    writers_exclude();
    pending_writer_blocks_readers();
    writer_not_starved();
}

int main(void) {
    misuse_is_fatal(); /* children first: tu_run_child forks before any goro_run */
    ex_iters = tu_scaled(5000, 200);
    int rc = goro_run(NULL, test_main, NULL);
    CHECKF(rc == 0, "goro_run: %s", goro_strerror(rc));
    return tu_pass("sync_rwmutex");
}
