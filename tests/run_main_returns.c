/*
 * run_main_returns: when the main goroutine returns, goro_run returns 0 promptly although
 * other goroutines are still alive (running, runnable, parked on a mutex, a wait group or
 * a long sleep, or never started), and none of them runs afterwards. The runtime's threads
 * and file descriptors are released (LeakSanitizer, in ASan builds, checks the memory).
 */
#include "testutil.h"

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#define YIELDERS 8
#define PARKED 8

static _Atomic long yield_count;
static _Atomic long after_return; /* bumped by any goroutine code that runs at all */
static _Atomic int child_ran;
static goro_mutex held = GORO_MUTEX_INIT;
static goro_waitgroup never = GORO_WAITGROUP_INIT;

static void yielder(void *arg) {
    (void)arg;
    for (;;) {
        atomic_fetch_add(&yield_count, 1);
        atomic_fetch_add(&after_return, 1);
        goro_yield();
    }
}

static void locker(void *arg) {
    (void)arg;
    goro_mutex_lock(&held);
    atomic_fetch_add(&after_return, 1);
    CHECKF(0, "locked a mutex that main holds forever");
}

static void wg_waiter(void *arg) {
    (void)arg;
    goro_wg_wait(&never);
    atomic_fetch_add(&after_return, 1);
    CHECKF(0, "a wait group that never reaches zero released its waiter");
}

static void long_sleeper(void *arg) {
    (void)arg;
    goro_sleep(60 * 1000 * TU_MS);
    atomic_fetch_add(&after_return, 1);
    CHECKF(0, "a 60 s sleep ended within the test");
}

static void never_started(void *arg) {
    (void)arg;
    atomic_store(&child_ran, 1);
    atomic_fetch_add(&after_return, 1);
}

static void respawner(void *arg) {
    (void)arg;
    for (;;) {
        atomic_fetch_add(&after_return, 1);
        CHECK(goro_spawn(never_started, NULL) == 0);
        goro_sleep(1 * TU_MS);
    }
}

static int64_t returned_at;

static void test_main(void *arg) {
    (void)arg;
    goro_mutex_lock(&held);
    goro_wg_add(&never, 1);
    for (int i = 0; i < YIELDERS; i++)
        CHECK(goro_spawn(yielder, NULL) == 0);
    for (int i = 0; i < PARKED; i++) {
        CHECK(goro_spawn(locker, NULL) == 0);
        CHECK(goro_spawn(wg_waiter, NULL) == 0);
        CHECK(goro_spawn(long_sleeper, NULL) == 0);
    }
    CHECK(goro_spawn(respawner, NULL) == 0);

    /* Wait until everything is under way: the yielders have run and the others parked. */
    int64_t deadline = goro_now() + 10 * 1000 * TU_MS;
    goro_stats st;
    for (;;) {
        goro_stats_get(&st);
        if (atomic_load(&yield_count) >= 20 * YIELDERS && st.parked >= 3 * PARKED)
            break;
        CHECKF(goro_now() < deadline, "goroutines did not get going: %ld yields, %lld parked",
               atomic_load(&yield_count), (long long)st.parked);
        goro_yield();
    }

    /* Leave some spawned goroutines that never get to run at all. */
    for (int i = 0; i < 1000; i++)
        CHECK(goro_spawn(never_started, NULL) == 0);
    printf("main returns with %d goroutines alive (%lld parked)\n", goro_numgoroutine(),
           (long long)st.parked);
    returned_at = goro_now();
}

static int count_dir(const char *path) {
    DIR *d = opendir(path);
    CHECK(d != NULL);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static void pause_ms(int ms) {
    struct timespec ts = {0, (long)ms * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        CHECK(errno == EINTR);
}

static void *nop_thread(void *arg) {
    *(pid_t *)arg = tu_gettid();
    return NULL;
}

int main(void) {
    /* TSan starts a background thread of its own at the first pthread_create: make that
     * happen before counting. */
    pthread_t th;
    pid_t nop_tid = 0;
    CHECK(pthread_create(&th, NULL, nop_thread, &nop_tid) == 0);
    CHECK(pthread_join(th, NULL) == 0);
    /* pthread_join can return before the kernel has removed the thread's task entry: wait
     * for it to go, or it would be counted in the baseline. */
    char nop_task[64];
    snprintf(nop_task, sizeof nop_task, "/proc/self/task/%d", (int)nop_tid);
    for (int i = 0; i < 1000 && access(nop_task, F_OK) == 0; i++)
        pause_ms(1);
    CHECKF(access(nop_task, F_OK) != 0, "thread %d still listed 1 s after pthread_join",
           (int)nop_tid);

    int threads0 = count_dir("/proc/self/task");
    int fds0 = count_dir("/proc/self/fd");

    int rc = goro_run(NULL, test_main, NULL);
    int64_t back = goro_now();
    CHECKF(rc == 0, "goro_run: %s", goro_strerror(rc));
    CHECKF(back - returned_at < 2000 * TU_MS,
           "goro_run returned %.0f ms after main did: it waited for other goroutines",
           (double)(back - returned_at) / 1e6);

    /* Nothing runs any more: give a wrong runtime 50 ms to show it. */
    long snapshot = atomic_load(&after_return);
    pause_ms(50);
    CHECKF(atomic_load(&after_return) == snapshot,
           "goroutines still ran after goro_run returned (%ld more steps)",
           atomic_load(&after_return) - snapshot);

    /* The runtime's threads are gone (allow them a moment to finish exiting). */
    int threads = count_dir("/proc/self/task");
    for (int i = 0; i < 100 && threads != threads0; i++) {
        pause_ms(50);
        threads = count_dir("/proc/self/task");
    }
    if (threads != threads0) {
        fprintf(stderr, "threads now:\n");
        DIR *d = opendir("/proc/self/task");
        struct dirent *e;
        while (d != NULL && (e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            char path[300], comm[64] = "";
            snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
            FILE *f = fopen(path, "r");
            if (f != NULL) {
                if (fgets(comm, sizeof comm, f) == NULL)
                    comm[0] = '\0';
                fclose(f);
            }
            fprintf(stderr, "  tid %s: %s", e->d_name, comm);
        }
        if (d != NULL)
            closedir(d);
    }
    CHECKF(threads == threads0, "%d threads before goro_run, %d five seconds after it returned",
           threads0, threads);
    int fds = count_dir("/proc/self/fd");
    CHECKF(fds == fds0, "%d open file descriptors before goro_run, %d after", fds0, fds);
    printf("goro_run returned %.3f ms after main; threads %d, fds %d as before\n",
           (double)(back - returned_at) / 1e6, threads, fds);
    return tu_pass("run_main_returns");
}
