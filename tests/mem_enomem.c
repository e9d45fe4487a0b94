/*
 * mem_enomem.c - running out of memory is an error code from goro_spawn, not a crash.
 *
 * Each scenario runs in a child process whose address space is capped (RLIMIT_AS,
 * 256 MiB): a goroutine stack is a 64 KiB (+ guard) mapping, so the cap is reached after
 * a few thousand goroutines, long before the machine's memory.
 *  - run_as_spawned: goroutines are spawned and allowed to run (and park on a channel)
 *    as they go, until goro_spawn returns GORO_ENOMEM. Then every one of them must still
 *    be woken and counted exactly once, a spawn must succeed again once they have ended,
 *    and goro_run must return 0. Run twice: without stack compaction, and with it after
 *    1 ms (the compactor's copies are allocated under the same limit).
 *  - spawned_before_run: on one P, main spawns without letting any goroutine run, so the
 *    goroutines hold descriptors only when GORO_ENOMEM comes. The budget (gdesc.c, B3)
 *    must refuse while each of them can still get a stack when it first runs; otherwise
 *    the runtime would fail fatally ("out of memory for the stack") once main parks.
 *  - address_space_taken: main spawns 1000 goroutines (within the budget), then maps all
 *    the address space that is left before they run. Their stacks cannot be had; the
 *    runtime must then either run them all anyway or fail with its fatal message, never
 *    crash. Which one happens is printed: today sched.c's prepare_stack makes it fatal.
 * Skipped under AddressSanitizer and ThreadSanitizer, whose shadow memory needs terabytes
 * of address space, and where the limit is not enforced (qemu-user).
 */
#include "testutil.h"

#include <stdatomic.h>
#include <sys/mman.h>

#define AS_LIMIT ((rlim_t)256 << 20)
#define SPAWN_MAX 1000000 /* no GORO_ENOMEM by then: the budget does not work */

static goro_chan *gate;
static goro_waitgroup exited;
static atomic_long arrived;
static unsigned char *woken; /* [i]: goroutine i ran after its wake */

static void parker(void *arg) {
    long i = (long)arg;
    atomic_fetch_add_explicit(&arrived, 1, memory_order_relaxed);
    CHECK_EQ(goro_chan_recv(gate, NULL), GORO_ECLOSED);
    woken[i]++; /* only goroutine i writes slot i */
    goro_wg_done(&exited);
}

static void nothing(void *arg) {
    (void)arg;
    goro_wg_done(&exited);
}

static void wait_arrived(long k) {
    while (atomic_load_explicit(&arrived, memory_order_relaxed) < k)
        goro_yield();
}

/* Closes the gate and checks each of the n goroutines ran exactly once after it. */
static void wake_check(long n) {
    wait_arrived(n);
    CHECK_EQ(goro_chan_close(gate), 0);
    goro_wg_wait(&exited);
    for (long i = 0; i < n; i++)
        CHECKF(woken[i] == 1, "goroutine %ld ran %d times after the close", i, woken[i]);
}

/* Once the goroutines have ended, their memory is there again. */
static void spawn_again(void) {
    goro_wg_add(&exited, 1);
    CHECK_EQ(goro_spawn(nothing, NULL), 0);
    goro_wg_wait(&exited);
}

static void wake_all(long n) {
    wake_check(n);
    spawn_again();
}

/* Spawns parkers until GORO_ENOMEM; pace: let them run every `pace` spawns (0: never). */
static long spawn_until_enomem(long pace) {
    long n = 0;
    goro_stats before;
    for (;;) {
        CHECKF(n < SPAWN_MAX, "goro_spawn never returned GORO_ENOMEM");
        goro_wg_add(&exited, 1);
        goro_stats_get(&before);
        int err = goro_spawn(parker, (void *)n);
        if (err == GORO_ENOMEM) {
            goro_wg_add(&exited, -1);
            break;
        }
        CHECKF(err == 0, "goro_spawn: %s", goro_strerror(err));
        n++;
        if (pace && n % pace == 0)
            wait_arrived(n);
    }
    /* Refused once, refused again while nothing changed. The compactor may change
     * something meanwhile: a stack compacted since just before the refused spawn raises
     * the budget (gdesc.c B1), and then the spawn may succeed. */
    goro_stats after;
    goro_wg_add(&exited, 1);
    int again = goro_spawn(nothing, NULL);
    goro_stats_get(&after);
    if (again == GORO_ENOMEM)
        goro_wg_add(&exited, -1);
    else
        CHECKF(again == 0 && after.compactions > before.compactions,
               "refused, then goro_spawn returned %s with no stack compacted in between",
               goro_strerror(again));
    return n;
}

static void main_run_as_spawned(void *arg) {
    (void)arg;
    long n = spawn_until_enomem(64);
    fprintf(stderr, "run_as_spawned: GORO_ENOMEM after %ld goroutines\n", n);
    wake_all(n);
}

static void main_spawned_before_run(void *arg) {
    (void)arg;
    long n = spawn_until_enomem(0);
    CHECK_EQ(atomic_load(&arrived), 0); /* one P, held by main: none has run */
    fprintf(stderr, "spawned_before_run: GORO_ENOMEM after %ld goroutines\n", n);
    wake_all(n);
}

static void main_address_space_taken(void *arg) {
    (void)arg;
    const long n = 1000;
    goro_wg_add(&exited, (int)n);
    for (long i = 0; i < n; i++)
        CHECK_EQ(goro_spawn(parker, (void *)i), 0);
    static struct {
        void *at;
        size_t len;
    } taken[1024];
    int ntaken = 0;
    long mapped = 0;
    for (size_t len = (size_t)64 << 20; len >= 4096; len /= 2) {
        void *at;
        while (ntaken < 1024 &&
               (at = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1,
                          0)) != MAP_FAILED) {
            taken[ntaken].at = at;
            taken[ntaken++].len = len;
            mapped += (long)len;
        }
    }
    fprintf(stderr, "address_space_taken: %ld goroutines spawned, then %ld MiB mapped\n", n,
            mapped >> 20);
    wake_check(n);
    for (int i = 0; i < ntaken; i++)
        CHECK(munmap(taken[i].at, taken[i].len) == 0);
    spawn_again();
}

typedef struct scenario {
    const char *name;
    void (*main_fn)(void *);
    int maxprocs;
    int64_t compact_after; /* goro_config.compact_after; 0: off */
} scenario;

static void child(void *arg) {
    const scenario *s = arg;
    struct rlimit lim = {AS_LIMIT, AS_LIMIT};
    CHECK(setrlimit(RLIMIT_AS, &lim) == 0);
    woken = calloc(SPAWN_MAX, 1);
    CHECK(woken != NULL);
    CHECK_EQ(goro_chan_make(&gate, 1, 0), 0);
    goro_config cfg = {.maxprocs = s->maxprocs,
                       .compact_after = s->compact_after ? s->compact_after : -1};
    int err = goro_run(&cfg, s->main_fn, NULL);
    CHECKF(err == 0, "goro_run: %s", goro_strerror(err));
    goro_chan_release(gate);
    fprintf(stderr, "%s: done\n", s->name);
}

/* Runs s in a child; true if it ended cleanly, false if it failed with the runtime's
 * fatal message for a stack it could not get (allowed only when may_fail). */
static int run(const scenario *s, int may_fail) {
    tu_child c;
    tu_run_child(child, (void *)s, 60, &c);
    char how[128];
    int clean = WIFEXITED(c.status) && WEXITSTATUS(c.status) == TU_CHILD_RETURNED;
    if (clean) {
        char done[64];
        snprintf(done, sizeof done, "%s: done", s->name);
        CHECKF(tu_has_line(c.err, done), "%s: no completion line", s->name);
        CHECKF(strstr(c.err, "goro: fatal") == NULL, "%s: a fatal message", s->name);
        printf("%s: clean:\n%s", s->name, c.err);
    } else {
        int fatal_stack = WIFSIGNALED(c.status) && WTERMSIG(c.status) == SIGABRT &&
                          tu_has_line_with(c.err, "goro: fatal: out of memory for the stack", "");
        if (!may_fail || !fatal_stack)
            tu_show_child(s->name, &c, 4000);
        CHECKF(may_fail && fatal_stack, "%s: child %s", s->name, tu_child_how(&c, how, sizeof how));
        printf("%s: the runtime failed fatally (sched.c prepare_stack):\n", s->name);
        fwrite(c.err, 1, c.len < 400 ? c.len : 400, stdout);
        printf("\n");
    }
    free(c.err);
    return clean;
}

/* Exits 3 if the address-space limit is not enforced: qemu-user keeps RLIMIT_AS for
 * itself and does not pass it on to the host. */
static void probe_limit(void *arg) {
    (void)arg;
    struct rlimit lim = {AS_LIMIT, AS_LIMIT};
    CHECK(setrlimit(RLIMIT_AS, &lim) == 0);
    if (mmap(NULL, 2 * AS_LIMIT, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0) !=
        MAP_FAILED)
        _exit(3);
}

int main(void) {
    if (TU_ASAN || TU_TSAN) {
        printf("SKIP mem_enomem: sanitizer shadow memory does not fit under RLIMIT_AS\n");
        return 0;
    }
    tu_child probe;
    tu_run_child(probe_limit, NULL, 10, &probe);
    if (WIFEXITED(probe.status) && WEXITSTATUS(probe.status) == 3) {
        printf("SKIP mem_enomem: RLIMIT_AS is not enforced here (an emulator such as "
               "qemu-user keeps it for itself)\n");
        return 0;
    }
    CHECKF(WIFEXITED(probe.status) && WEXITSTATUS(probe.status) == TU_CHILD_RETURNED,
           "the limit probe failed: %s", probe.err);
    free(probe.err);
    static const scenario as_spawned = {"run_as_spawned", main_run_as_spawned, 0, 0};
    static const scenario compacting = {"run_as_spawned_compacting", main_run_as_spawned, 0, TU_MS};
    static const scenario before_run = {"spawned_before_run", main_spawned_before_run, 1, 0};
    static const scenario taken = {"address_space_taken", main_address_space_taken, 1, 0};
    run(&as_spawned, 0);
    run(&compacting, 0);
    run(&before_run, 0);
    run(&taken, 1);
    return tu_pass("mem_enomem");
}
