/*
 * api_misc: the small calls of the public API.
 *
 *  - goro_self: main is 1, spawned goroutines get 2, 3, ... in spawn order;
 *  - goro_numgoroutine and goro_stats: exact live counts, and every stats field sane;
 *  - goro_dump: shows each goroutine's id and name;
 *  - goro_exit from a goroutine ends it at once, from however deep a call;
 *  - goro_spawn / goro_spawn_attr argument checks and the stack size limits (16 KiB and
 *    1 GiB work, just outside them is GORO_EINVAL);
 *  - goro_maxprocs: the starting value ($GORO_MAXPROCS or the CPUs we may use), query,
 *    set, clamp to 1024, and changes while goroutines run: the work completes, and while
 *    there is one P no two goroutines compute at the same time;
 *  - goro_strerror names every code.
 */
#include "testutil.h"

#include <sched.h>
#include <stdatomic.h>

#define PARKERS 10

static goro_waitgroup wg = GORO_WAITGROUP_INIT;
static goro_waitgroup hold = GORO_WAITGROUP_INIT;
static _Atomic uint64_t recorded[PARKERS]; /* written by goroutines, read without a sync */
static char names[PARKERS][32];

static void wait_for_numgoroutine(int n) {
    int64_t deadline = goro_now() + 10 * 1000 * TU_MS;
    while (goro_numgoroutine() != n) {
        CHECKF(goro_now() < deadline, "numgoroutine stays %d, expected it to reach %d",
               goro_numgoroutine(), n);
        goro_yield();
    }
}

/* ---------------------------------------------------------------- ids */

static void record_id(void *arg) {
    recorded[(intptr_t)arg] = goro_self();
    goro_wg_done(&wg);
}

static void trivial(void *arg) {
    (void)arg;
    goro_wg_done(&wg);
}

static void parker(void *arg) {
    recorded[(intptr_t)arg] = goro_self();
    goro_wg_wait(&hold);
    goro_wg_done(&wg);
}

static int has_token(const char *text, uint64_t v) {
    char num[32];
    int n = snprintf(num, sizeof num, "%llu", (unsigned long long)v);
    for (const char *p = strstr(text, num); p != NULL; p = strstr(p + 1, num)) {
        int digit_before = p > text && p[-1] >= '0' && p[-1] <= '9';
        int digit_after = p[n] >= '0' && p[n] <= '9';
        if (!digit_before && !digit_after)
            return 1;
    }
    return 0;
}

static void ids_counts_stats_dump(void) {
    CHECK_EQ(goro_self(), 1);
    CHECK_EQ(goro_numgoroutine(), 1);

    /* Every spawn gets a fresh id. */
    goro_wg_add(&wg, PARKERS);
    for (intptr_t i = 0; i < PARKERS; i++)
        CHECK(goro_spawn(record_id, (void *)i) == 0);
    goro_wg_wait(&wg);
    for (int i = 0; i < PARKERS; i++)
        CHECKF(recorded[i] >= 2, "spawn #%d got id %llu; main alone is 1", i,
               (unsigned long long)recorded[i]);
    /* Ids are unique (Ps hand them out from batches, so not in spawn order across Ps). */
    for (int i = 0; i < PARKERS; i++)
        for (int j = 0; j < i; j++)
            CHECKF(recorded[i] != recorded[j], "spawns #%d and #%d share id %llu", j, i,
                   (unsigned long long)recorded[i]);

    /* Push the ids up so that the parkers' ids are distinctive in a dump. */
    goro_wg_add(&wg, 990);
    for (int i = 0; i < 990; i++)
        CHECK(goro_spawn(trivial, NULL) == 0);
    goro_wg_wait(&wg);
    wait_for_numgoroutine(1);

    goro_wg_add(&hold, 1);
    goro_wg_add(&wg, PARKERS);
    for (intptr_t i = 0; i < PARKERS; i++) {
        snprintf(names[i], sizeof names[i], "api-misc-parker-%d", (int)i);
        goro_attr attr = {.name = names[i]};
        CHECK(goro_spawn_attr(&attr, parker, (void *)i) == 0);
    }
    /* Spawned goroutines are live whether or not they have run yet. */
    CHECK_EQ(goro_numgoroutine(), 1 + PARKERS);

    goro_stats st;
    int64_t deadline = goro_now() + 10 * 1000 * TU_MS;
    for (;;) {
        goro_stats_get(&st);
        if (st.parked >= PARKERS)
            break;
        CHECKF(goro_now() < deadline, "stats.parked stays %lld with %d goroutines parked",
               (long long)st.parked, PARKERS);
        goro_yield();
    }
    for (int i = 0; i < PARKERS; i++)
        CHECKF(recorded[i] > (uint64_t)PARKERS + 1,
               "parker #%d has id %llu, not above the %d goroutines spawned before", i,
               (unsigned long long)recorded[i], PARKERS + 1);
    CHECK_EQ(goro_numgoroutine(), 1 + PARKERS);

    int procs = goro_maxprocs(0);
    CHECK_EQ(st.goroutines, 1 + PARKERS);
    CHECK(st.runnable >= 0 && st.runnable <= st.goroutines);
    CHECK(st.parked >= PARKERS && st.parked <= st.goroutines);
    CHECK_EQ(st.procs, procs);
    CHECK(st.idle_procs >= 0 && st.idle_procs < st.procs); /* ours is busy */
    CHECK(st.threads >= 1);
    CHECK(st.threads_idle >= 0 && st.threads_idle < st.threads);
    CHECK_EQ(st.threads_blocking, 0);
    CHECK(st.threads_spinning >= 0 && st.threads_spinning <= st.threads);
    CHECKF(st.spawned >= 1000 + PARKERS, "stats.spawned %llu", (unsigned long long)st.spawned);
    CHECKF(st.switches >= 1000, "stats.switches %llu after 1000 goroutines ran",
           (unsigned long long)st.switches);
    CHECK(st.stacks >= 1);
    CHECKF(st.stack_bytes >= st.stacks * 16384, "%llu stacks in %llu bytes",
           (unsigned long long)st.stacks, (unsigned long long)st.stack_bytes);

    /* The dump shows every goroutine, by id and name. */
    FILE *f = tmpfile();
    CHECK(f != NULL);
    goro_dump(fileno(f));
    long len = lseek(fileno(f), 0, SEEK_END);
    CHECK(len > 0);
    char *text = calloc((size_t)len + 1, 1);
    CHECK(text != NULL);
    CHECK(pread(fileno(f), text, (size_t)len, 0) == (ssize_t)len);
    fclose(f);
    for (int i = 0; i < PARKERS; i++) {
        CHECKF(has_token(text, recorded[i]), "goro_dump does not show goroutine id %llu",
               (unsigned long long)recorded[i]);
        CHECKF(strstr(text, names[i]) != NULL, "goro_dump does not show the name \"%s\"", names[i]);
    }
    printf("goro_dump: %ld bytes for %d goroutines; first lines:\n", len, 1 + PARKERS);
    int lines = 0;
    for (char *p = text; *p != '\0' && lines < 6; p++) {
        putchar(*p);
        lines += *p == '\n';
    }
    free(text);

    goro_wg_done(&hold);
    goro_wg_wait(&wg);
    wait_for_numgoroutine(1);
    goro_stats_get(&st);
    CHECK_EQ(st.goroutines, 1);
}

/* ---------------------------------------------------------------- goro_exit */

static _Atomic int after_exit;
static _Atomic int before_exit;

static volatile int really_exit = 1; /* opaque to the compiler: deep_exit can return */

static void deep_exit(int depth) {
    if (depth > 0) {
        deep_exit(depth - 1);
    } else {
        atomic_fetch_add(&before_exit, 1);
        goro_wg_done(&wg);
        if (really_exit)
            goro_exit();
    }
    atomic_store(&after_exit, 1);
}

static void exiter(void *arg) {
    deep_exit((int)(intptr_t)arg);
    atomic_store(&after_exit, 1);
}

static void exits(void) {
    goro_wg_add(&wg, 20);
    for (intptr_t i = 0; i < 20; i++)
        CHECK(goro_spawn(exiter, (void *)(i * 5)) == 0);
    goro_wg_wait(&wg);
    wait_for_numgoroutine(1);
    CHECK_EQ(atomic_load(&before_exit), 20);
    CHECKF(atomic_load(&after_exit) == 0, "goro_exit returned");
}

/* ---------------------------------------------------------------- spawn arguments */

static _Atomic int stack_users;

static void use_stack(void *arg) {
    size_t bytes = (size_t)(uintptr_t)arg;
    volatile char buf[8192];
    size_t n = bytes < sizeof buf ? bytes : sizeof buf;
    for (size_t i = 0; i < n; i += 64)
        buf[i] = (char)i;
    atomic_fetch_add(&stack_users, 1);
    goro_wg_done(&wg);
}

static void spawn_args(void) {
    CHECK_EQ(goro_spawn(NULL, NULL), GORO_EINVAL);
    goro_attr attr = {0};
    CHECK_EQ(goro_spawn_attr(&attr, NULL, NULL), GORO_EINVAL);
    const size_t bad[] = {1, 1000, 16383, ((size_t)1 << 30) + 1, (size_t)1 << 40};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        attr.stack_size = bad[i];
        int rc = goro_spawn_attr(&attr, use_stack, NULL);
        CHECKF(rc == GORO_EINVAL, "stack_size %zu: spawn returned %d", bad[i], rc);
    }
    CHECK_EQ(goro_numgoroutine(), 1);

    /* The limits themselves are fine, and such goroutines run. */
    const size_t good[] = {16384, 16384 + 1, 65536 * 3, (size_t)1 << 30};
    goro_wg_add(&wg, 4);
    for (size_t i = 0; i < 4; i++) {
        attr.stack_size = good[i];
        attr.name = "stack-user";
        int rc = goro_spawn_attr(&attr, use_stack, (void *)(uintptr_t)(good[i] / 4));
        CHECKF(rc == 0, "stack_size %zu: %s", good[i], goro_strerror(rc));
    }
    goro_wg_wait(&wg);
    CHECK_EQ(atomic_load(&stack_users), 4);
    wait_for_numgoroutine(1);
}

/* ---------------------------------------------------------------- maxprocs */

#define MP_WORKERS 8

static _Atomic int mp_stop;
static _Atomic int running_now;
static _Atomic int running_max;
static goro_mutex mp_mu = GORO_MUTEX_INIT;
static long mp_counter; /* protected by mp_mu */
static _Atomic long mp_chunks;

static void mp_worker(void *arg) {
    uint64_t rng = (uint64_t)(uintptr_t)arg + 5;
    while (!atomic_load(&mp_stop)) {
        int n = atomic_fetch_add(&running_now, 1) + 1;
        int m = atomic_load(&running_max);
        while (n > m && !atomic_compare_exchange_weak(&running_max, &m, n)) {
        }
        int64_t t0 = goro_now();
        while (goro_now() - t0 < 20 * TU_US) {
        }
        atomic_fetch_sub(&running_now, 1);
        atomic_fetch_add(&mp_chunks, 1);

        goro_mutex_lock(&mp_mu);
        mp_counter++;
        goro_mutex_unlock(&mp_mu);
        if (tu_rand(&rng) % 8 == 0)
            goro_sleep(10 * TU_US);
        else
            goro_yield();
    }
    goro_wg_done(&wg);
}

/* Lets the workers run for a while (main parks meanwhile) and checks they progress. */
static void let_run(const char *phase) {
    long before = atomic_load(&mp_chunks);
    int64_t deadline = goro_now() + 10 * 1000 * TU_MS;
    while (atomic_load(&mp_chunks) < before + 200) {
        CHECKF(goro_now() < deadline, "%s: workers stopped making progress", phase);
        goro_sleep(1 * TU_MS);
    }
}

static void maxprocs(void) {
    int start = goro_maxprocs(0);
    CHECK(start >= 1);
    CHECK_EQ(goro_maxprocs(-3), start); /* n < 1 only queries */
    CHECK_EQ(goro_maxprocs(0), start);
    const char *env = getenv("GORO_MAXPROCS");
    if (env != NULL && *env != '\0') {
        CHECKF(start == atoi(env), "maxprocs %d with GORO_MAXPROCS=%s", start, env);
    } else {
        cpu_set_t set;
        CHECK(sched_getaffinity(0, sizeof set, &set) == 0);
        CHECKF(start <= CPU_COUNT(&set), "maxprocs %d with %d CPUs allowed", start,
               CPU_COUNT(&set));
    }

    goro_wg_add(&wg, MP_WORKERS);
    for (uintptr_t i = 0; i < MP_WORKERS; i++)
        CHECK(goro_spawn(mp_worker, (void *)i) == 0);
    let_run("start");

    CHECK_EQ(goro_maxprocs(1), start);
    CHECK_EQ(goro_maxprocs(0), 1);
    atomic_store(&running_max, 0);
    let_run("maxprocs 1");
    CHECKF(atomic_load(&running_max) <= 1,
           "with maxprocs 1, %d goroutines computed at the same time", atomic_load(&running_max));

    CHECK_EQ(goro_maxprocs(3), 1);
    CHECK_EQ(goro_maxprocs(0), 3);
    let_run("maxprocs 3");

    CHECK_EQ(goro_maxprocs(2000), 3);
    CHECKF(goro_maxprocs(0) == 1024, "goro_maxprocs(2000) then query gives %d, want 1024",
           goro_maxprocs(0));
    CHECK_EQ(goro_maxprocs(1), 1024);
    atomic_store(&running_max, 0);
    let_run("maxprocs 1 again");
    CHECK(atomic_load(&running_max) <= 1);

    CHECK_EQ(goro_maxprocs(2), 1);
    let_run("maxprocs 2");
    CHECK_EQ(goro_maxprocs(start), 2);
    CHECK_EQ(goro_maxprocs(0), start);

    atomic_store(&mp_stop, 1);
    goro_wg_wait(&wg);
    goro_mutex_lock(&mp_mu);
    CHECK_EQ(mp_counter, atomic_load(&mp_chunks));
    goro_mutex_unlock(&mp_mu);
    wait_for_numgoroutine(1);
    printf("maxprocs %d -> 1 -> 3 -> 1024 -> 1 -> 2 -> %d with %d workers: %ld chunks\n", start,
           start, MP_WORKERS, atomic_load(&mp_chunks));
}

/* ---------------------------------------------------------------- strerror */

static void strerrors(void) {
    const int codes[] = {GORO_EINVAL,    GORO_ENOMEM, GORO_EAGAIN, GORO_ETIMEDOUT,
                         GORO_ECANCELED, GORO_EBUSY,  GORO_EPERM,  GORO_ECLOSED};
    const size_t n = sizeof codes / sizeof codes[0];
    for (size_t i = 0; i < n; i++) {
        const char *s = goro_strerror(codes[i]);
        CHECKF(s != NULL && *s != '\0', "goro_strerror(%d) is empty", codes[i]);
        for (size_t k = 0; k < i; k++)
            CHECKF(strcmp(s, goro_strerror(codes[k])) != 0,
                   "goro_strerror gives \"%s\" for both %d and %d", s, codes[i], codes[k]);
    }
    const int others[] = {0, -EPIPE, -ECONNRESET, -EIO, -99999, 5, -10000, -10002};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        const char *s = goro_strerror(others[i]);
        CHECKF(s != NULL && *s != '\0', "goro_strerror(%d) is empty", others[i]);
    }
    CHECK(strcmp(goro_strerror(-EPIPE), goro_strerror(-ECONNRESET)) != 0);
    printf("goro_strerror(GORO_ECLOSED) = \"%s\", (GORO_ETIMEDOUT) = \"%s\"\n",
           goro_strerror(GORO_ECLOSED), goro_strerror(GORO_ETIMEDOUT));
}

static void test_main(void *arg) {
    (void)arg;
    goro_yield(); /* alone: returns at once */
    ids_counts_stats_dump();
    exits();
    spawn_args();
    maxprocs();
}

int main(void) {
    strerrors(); /* callable before the runtime starts */
    int rc = goro_run(NULL, test_main, NULL);
    CHECKF(rc == 0, "goro_run: %s", goro_strerror(rc));
    return tu_pass("api_misc");
}
