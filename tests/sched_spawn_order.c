/*
 * sched_spawn_order: spawned goroutines run depth first, and nothing starves behind them.
 *
 * Depth first: a binary tree of spawns (each node spawns two children and returns) runs
 * with few goroutines alive at once. Breadth first (a FIFO queue) it would keep a whole
 * level alive, 2^(D-1) goroutines; depth first it is about one pending sibling per level
 * per P. The test samples goro_numgoroutine at every node.
 *
 * Fairness: while a much bigger tree keeps the spawn stack busy, (a) a goroutine spawned
 * before the tree (the oldest entry of the spawn stack) and (b) main, yielding (so waiting
 * in the run queue), must both run long before the tree is done: the tree stops growing
 * once both have, and the test checks how many nodes had run by then. Counts, not times:
 * a slower machine runs fewer nodes in the scheduler's time bound, never more.
 *
 * Resizing: trees run while another goroutine keeps changing goro_maxprocs (1, 3, 2, ...),
 * so the spawn stacks of removed Ps are drained to the global queue mid-tree; every node
 * must run exactly once (no more and no fewer nodes than the tree has). Last, a tree
 * begun on 4 Ps finishes on 1: what the other Ps held must not be stranded there.
 */
#include "testutil.h"

#include <stdatomic.h>

#define SMALL_DEPTH 14 /* 32k nodes */
#define BIG_DEPTH 22   /* 8M nodes: seconds, if nothing stopped it */

static _Atomic long nodes;
static _Atomic long live_max;
static _Atomic int stop;
static goro_waitgroup wg = GORO_WAITGROUP_INIT;

static void node(void *arg) {
    intptr_t depth = (intptr_t)arg;
    atomic_fetch_add_explicit(&nodes, 1, memory_order_relaxed);
    long live = goro_numgoroutine();
    long seen = atomic_load_explicit(&live_max, memory_order_relaxed);
    while (live > seen && !atomic_compare_exchange_weak_explicit(
                              &live_max, &seen, live, memory_order_relaxed, memory_order_relaxed)) {
    }
    if (depth > 0 && !atomic_load_explicit(&stop, memory_order_relaxed)) {
        goro_wg_add(&wg, 2);
        CHECK(goro_spawn(node, (void *)(depth - 1)) == 0);
        CHECK(goro_spawn(node, (void *)(depth - 1)) == 0);
    }
    goro_wg_done(&wg);
}

static _Atomic int resizing;
static _Atomic long resizes;

static void resizer(void *arg) {
    (void)arg;
    static const int sizes[] = {1, 3, 2, 1, 4, 2};
    for (int i = 0; atomic_load(&resizing); i++) {
        goro_maxprocs(sizes[i % 6]);
        atomic_fetch_add(&resizes, 1);
        goro_yield();
    }
    goro_wg_done(&wg);
}

static _Atomic long old_ran_at = -1;

static void old_one(void *arg) {
    (void)arg;
    atomic_store(&old_ran_at, atomic_load(&nodes));
    goro_wg_done(&wg);
}

static void test_main(void *arg) {
    (void)arg;
    int procs = goro_maxprocs(0);

    /* Depth first. */
    goro_wg_add(&wg, 1);
    CHECK(goro_spawn(node, (void *)(intptr_t)SMALL_DEPTH) == 0);
    goro_wg_wait(&wg);
    long total = atomic_load(&nodes), live = atomic_load(&live_max);
    CHECK_EQ(total, (2L << SMALL_DEPTH) - 1);
    printf("%d Ps: tree of %ld spawns, at most %ld goroutines alive\n", procs, total, live);
    /* Depth first with P thieves each taking a subtree: ~(P + 1) * depth. Breadth first:
     * ~8192. */
    CHECKF(live <= 64L * (procs + 1),
           "%ld goroutines alive at once in a depth-%d tree: spawns do not run depth first", live,
           SMALL_DEPTH);

    /* Fairness. */
    atomic_store(&nodes, 0);
    goro_wg_add(&wg, 2);
    CHECK(goro_spawn(old_one, NULL) == 0);
    CHECK(goro_spawn(node, (void *)(intptr_t)BIG_DEPTH) == 0);
    long main_ran_at = -1;
    for (int yields = 0; yields < 3; yields++) {
        goro_yield();
        main_ran_at = atomic_load(&nodes);
    }
    while (atomic_load(&old_ran_at) < 0)
        goro_yield();
    atomic_store(&stop, 1);
    goro_wg_wait(&wg);
    long big = (2L << BIG_DEPTH) - 1, old_at = atomic_load(&old_ran_at);
    printf("%d Ps: main's third yield returned after %ld spawned nodes had run, the goroutine "
           "spawned first ran after %ld, of a tree of %ld (stopped at %ld)\n",
           procs, main_ran_at, old_at, big, atomic_load(&nodes));
    CHECKF(main_ran_at < big / 8,
           "a yielding goroutine waited for %ld of %ld spawned goroutines: the run queue "
           "starves behind the spawn stack",
           main_ran_at, big);
    CHECKF(old_at < big / 8,
           "the oldest spawned goroutine waited for %ld of %ld newer ones: the spawn stack "
           "starves its oldest entry",
           old_at, big);
}

static void test_resize(void *arg) {
    (void)arg;
    int procs = goro_maxprocs(0);
    const long tree = (2L << (SMALL_DEPTH + 2)) - 1;
    atomic_store(&stop, 0);
    atomic_store(&resizing, 1);
    goro_wg_add(&wg, 1);
    CHECK(goro_spawn(resizer, NULL) == 0);
    for (int round = 0; round < 4; round++) {
        atomic_store(&nodes, 0);
        goro_wg_add(&wg, 1);
        CHECK(goro_spawn(node, (void *)(intptr_t)(SMALL_DEPTH + 2)) == 0);
        while (atomic_load(&nodes) < tree)
            goro_yield();
        /* Every node has run once; one that ran twice would show here or later. */
        CHECK_EQ(atomic_load(&nodes), tree);
    }
    CHECKF(atomic_load(&resizes) > 0, "goro_maxprocs never changed while the trees ran");
    atomic_store(&resizing, 0);
    goro_wg_wait(&wg);
    CHECK_EQ(atomic_load(&nodes), tree);

    goro_maxprocs(4);
    atomic_store(&nodes, 0);
    goro_wg_add(&wg, 1);
    CHECK(goro_spawn(node, (void *)(intptr_t)(SMALL_DEPTH + 2)) == 0);
    while (atomic_load(&nodes) < tree / 4)
        goro_yield();
    goro_maxprocs(1);
    /* A generous bound that only a stranded goroutine can reach (the tree takes ~10 ms). */
    int64_t give_up = goro_now() + 20 * TU_MS * 1000;
    while (atomic_load(&nodes) < tree && goro_now() < give_up)
        goro_yield();
    CHECKF(atomic_load(&nodes) == tree,
           "after shrinking to 1 P, %ld of %ld spawned goroutines ran: the rest are stranded "
           "on removed Ps",
           atomic_load(&nodes), tree);
    goro_wg_wait(&wg);
    goro_maxprocs(procs);
    printf("4 trees of %ld spawns during %ld goro_maxprocs changes: each node ran once\n", tree,
           atomic_load(&resizes));
}

int main(void) {
    int rc = goro_run(NULL, test_main, NULL);
    CHECKF(rc == 0, "goro_run: %s", goro_strerror(rc));
    rc = goro_run(NULL, test_resize, NULL);
    CHECKF(rc == 0, "goro_run: %s", goro_strerror(rc));
    return tu_pass("sched_spawn_order");
}
