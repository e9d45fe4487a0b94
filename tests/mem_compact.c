/*
 * mem_compact.c - goroutines parked past the compaction threshold have their stacks
 * compacted and resume with every local intact.
 *
 * Parked at once, with compact_after = 1 ms:
 *  - receivers at the bottom of a recursion, with locals at every level, a
 *    variable-length array, and a struct on the stack passed by pointer to the callee that
 *    receives into it (the channel writes into a compacted stack's copy);
 *  - senders whose value lives on their stack (the partner reads from the copy);
 *  - goroutines waiting on a mutex and on a wait group;
 *  - goroutines in a select, which must never be compacted (their records are on the
 *    stack).
 * The test waits until the compactor has taken every goroutine it may, checks the
 * statistics, wakes everything, and checks every local and every value, each goroutine
 * counted exactly once.
 */
#include "testutil.h"

#define DEPTH 40
#define SELECTS 8

static long nrecv, nsend, nmutex, nwg;
static goro_chan *to_recv, *from_send, *sel_a, *sel_b;
static goro_mutex mu;
static goro_waitgroup gate, done;
static int64_t finished; /* goroutines that checked their locals, atomically */

typedef struct box {
    uint64_t before;
    uint64_t value;
    uint64_t after;
} box;

static uint64_t mix(uint64_t id, uint64_t level) {
    return (id * 0x9E3779B97F4A7C15ULL) ^ (level * 0xBF58476D1CE4E5B9ULL) ^ 0x5555;
}

/* Parks receiving into b, which lives in the caller's frame. */
static __attribute__((noinline)) void receive_into(box *b) {
    CHECK_EQ(goro_chan_recv(to_recv, &b->value), 0);
}

static __attribute__((noinline)) uint64_t descend(uint64_t id, int level) {
    volatile uint64_t locals[4];
    for (int i = 0; i < 4; i++)
        locals[i] = mix(id, (uint64_t)(level * 4 + i));
    uint64_t got;
    if (level == 0) {
        /* A variable-length array whose size the compiler cannot know. */
        size_t n = 3 + (size_t)(id % 5);
        volatile uint64_t vla[n];
        for (size_t i = 0; i < n; i++)
            vla[i] = mix(id, 1000 + i);
        box b = {.before = mix(id, 2000), .value = 0, .after = mix(id, 2001)};
        receive_into(&b);
        CHECK_EQ(b.before, mix(id, 2000));
        CHECK_EQ(b.after, mix(id, 2001));
        for (size_t i = 0; i < n; i++)
            CHECK_EQ(vla[i], mix(id, 1000 + i));
        got = b.value;
    } else {
        got = descend(id, level - 1);
    }
    for (int i = 0; i < 4; i++)
        CHECKF(locals[i] == mix(id, (uint64_t)(level * 4 + i)), "goroutine %llu level %d",
               (unsigned long long)id, level);
    return got;
}

static void receiver(void *arg) {
    uint64_t id = (uint64_t)(uintptr_t)arg;
    uint64_t v = descend(id, DEPTH);
    CHECK(v >= 1000000 && v < 1000000 + (uint64_t)nrecv); /* a value main sent */
    __atomic_add_fetch(&finished, 1, __ATOMIC_RELAXED);
    goro_wg_done(&done);
}

static void sender(void *arg) {
    uint64_t id = (uint64_t)(uintptr_t)arg;
    volatile uint64_t guard1 = mix(id, 7);
    uint64_t value = 5000000 + id; /* read by the receiver from the compacted copy */
    volatile uint64_t guard2 = mix(id, 8);
    CHECK_EQ(goro_chan_send(from_send, &value), 0);
    CHECK_EQ(guard1, mix(id, 7));
    CHECK_EQ(guard2, mix(id, 8));
    __atomic_add_fetch(&finished, 1, __ATOMIC_RELAXED);
    goro_wg_done(&done);
}

static void locker(void *arg) {
    uint64_t id = (uint64_t)(uintptr_t)arg;
    volatile uint64_t local = mix(id, 9);
    goro_mutex_lock(&mu);
    goro_mutex_unlock(&mu);
    CHECK_EQ(local, mix(id, 9));
    __atomic_add_fetch(&finished, 1, __ATOMIC_RELAXED);
    goro_wg_done(&done);
}

static void waiter(void *arg) {
    uint64_t id = (uint64_t)(uintptr_t)arg;
    volatile uint64_t local = mix(id, 10);
    goro_wg_wait(&gate);
    CHECK_EQ(local, mix(id, 10));
    __atomic_add_fetch(&finished, 1, __ATOMIC_RELAXED);
    goro_wg_done(&done);
}

static void selector(void *arg) {
    uint64_t id = (uint64_t)(uintptr_t)arg;
    uint64_t a = 0, b = 0;
    goro_case cases[2] = {{.chan = sel_a, .op = GORO_RECV, .elem = &a},
                          {.chan = sel_b, .op = GORO_RECV, .elem = &b}};
    int r = goro_select(cases, 2, GORO_FOREVER);
    CHECK(r == 0 || r == 1);
    CHECK_EQ(r == 0 ? a : b, 77 + id * 0);
    __atomic_add_fetch(&finished, 1, __ATOMIC_RELAXED);
    goro_wg_done(&done);
}

static void spawn_n(void (*fn)(void *), long n, long base) {
    for (long i = 0; i < n; i++)
        CHECK_EQ(goro_spawn(fn, (void *)(uintptr_t)(base + i)), 0);
}

static void main_fn(void *arg) {
    (void)arg;
    nrecv = tu_scaled(400, 20);
    nsend = tu_scaled(200, 10);
    nmutex = tu_scaled(100, 5);
    nwg = tu_scaled(100, 5);
    long total = nrecv + nsend + nmutex + nwg + SELECTS;
    long compactable = total - SELECTS;
    CHECK_EQ(goro_chan_make(&to_recv, sizeof(uint64_t), 0), 0);
    CHECK_EQ(goro_chan_make(&from_send, sizeof(uint64_t), 0), 0);
    CHECK_EQ(goro_chan_make(&sel_a, sizeof(uint64_t), 0), 0);
    CHECK_EQ(goro_chan_make(&sel_b, sizeof(uint64_t), 0), 0);
    goro_mutex_lock(&mu);
    goro_wg_add(&gate, 1);
    goro_wg_add(&done, (int)total);
    spawn_n(receiver, nrecv, 0);
    spawn_n(sender, nsend, 0);
    spawn_n(locker, nmutex, 0);
    spawn_n(waiter, nwg, 0);
    spawn_n(selector, SELECTS, 0);

    /* Wait (bounded) for the monitor to compact every goroutine that may be. */
    goro_stats st;
    int64_t deadline = goro_now() + 20000 * TU_MS;
    do {
        goro_sleep(5 * TU_MS);
        goro_stats_get(&st);
    } while (st.compacted < compactable && goro_now() < deadline);
    CHECKF(st.compacted == compactable, "compacted %lld of %ld", (long long)st.compacted,
           compactable);
    /* Nothing more: the select waiters stay resident. */
    goro_sleep(20 * TU_MS);
    goro_stats_get(&st);
    CHECK_EQ(st.compacted, compactable);
    CHECK(st.compactions >= (uint64_t)compactable);
    /* The copies hold what the goroutines use (the receivers' recursion: about a page
     * each), the pages they held are gone. */
    CHECK(st.compacted_bytes > 0 && st.compacted_bytes < (uint64_t)compactable * 8192);
    CHECK(st.compact_saved > 0);
    CHECK(st.compact_syscalls > 0);
    /* A dump reads the compacted goroutines' frames from their copies: the channel and
     * semaphore functions they parked in show (main itself is in goro_dump_ex). */
    FILE *tmp = tmpfile();
    CHECK(tmp != NULL);
    CHECK_EQ(goro_dump_ex(fileno(tmp), GORO_DUMP_GROUPED), 0);
    long dlen = ftell(tmp) > 0 ? ftell(tmp) : lseek(fileno(tmp), 0, SEEK_END);
    CHECK(dlen > 0);
    char *dump = calloc(1, (size_t)dlen + 1);
    CHECK(dump != NULL);
    CHECK_EQ(pread(fileno(tmp), dump, (size_t)dlen, 0), dlen);
    CHECKF(strstr(dump, "goro_chan_recv") && strstr(dump, "goro_chan_send") &&
               strstr(dump, "goro_mutex_lock") && strstr(dump, "goro_wg_wait"),
           "no frames of compacted goroutines in the dump:\n%s", dump);
    free(dump);
    fclose(tmp);
    goro_stats_get(&st);
    CHECK_EQ(st.compacted, compactable); /* the dump restored nothing */
    printf("compacted %lld goroutines: %llu bytes of copies (%llu each), %llu saved, "
           "%llu system calls\n",
           (long long)st.compacted, (unsigned long long)st.compacted_bytes,
           (unsigned long long)(st.compacted_bytes / (uint64_t)compactable),
           (unsigned long long)st.compact_saved, (unsigned long long)st.compact_syscalls);

    /* Wake everything. */
    for (long i = 0; i < nrecv; i++) {
        uint64_t v = 1000000 + (uint64_t)i;
        CHECK_EQ(goro_chan_send(to_recv, &v), 0);
    }
    uint64_t seen_sum = 0;
    for (long i = 0; i < nsend; i++) {
        uint64_t v;
        CHECK_EQ(goro_chan_recv(from_send, &v), 0);
        CHECK(v >= 5000000 && v < 5000000 + (uint64_t)nsend);
        seen_sum += v - 5000000;
    }
    CHECK_EQ(seen_sum, (uint64_t)(nsend * (nsend - 1) / 2)); /* each sender once */
    goro_mutex_unlock(&mu);
    goro_wg_done(&gate);
    for (int i = 0; i < SELECTS; i++) {
        uint64_t v = 77;
        CHECK_EQ(goro_chan_send(i % 2 ? sel_a : sel_b, &v), 0);
    }
    goro_wg_wait(&done);
    CHECK_EQ(__atomic_load_n(&finished, __ATOMIC_RELAXED), total);
    goro_stats_get(&st);
    CHECK_EQ(st.compacted, 0);
    CHECK_EQ(st.restores, st.compactions);
    goro_chan_release(to_recv);
    goro_chan_release(from_send);
    goro_chan_release(sel_a);
    goro_chan_release(sel_b);
}

int main(void) {
    goro_config cfg = {.compact_after = 1000000};
    CHECK_EQ(goro_run(&cfg, main_fn, NULL), 0);
    return tu_pass("mem_compact");
}
