/*
 * trace_events: the execution tracer records a known program, and the file it writes
 * says what the program did (checked by tests/trace_check.py, run from here).
 *
 *  - API errors: goro_trace_start(NULL) is GORO_EINVAL; a second start is GORO_EBUSY;
 *    a start into a directory that does not exist returns -ENOENT; goro_trace_stop with
 *    nothing recording is GORO_EINVAL; region and log calls while not tracing do nothing.
 *  - The traced program (started with goro_trace_start from main, with the world
 *    running and two goroutines blocked on a channel, which the trace must find
 *    "existing" and blocked, and see woken and end): NGOR goroutines in a ring pass a token through
 * unbuffered channels for ROUNDS rounds, each hop inside a region, nested in a region for the
 * goroutine's whole life; every goroutine sleeps 1 ms once and logs once; one goroutine holds a
 * mutex until another, told by a channel that it is held, is queued on it; one
 *    goroutine makes a blocking call (GORO_BLOCKING around usleep); one computes for
 *    15 ms without a switch (the monitor may take its P); main resizes the Ps to 1 and
 *    back (two stops of the world) while all this runs; one goroutine waits on the
 *    netpoller for a pipe another writes once goro_stats shows it waiting there; a log
 *    message holds
 *    every character JSON must escape and an invalid UTF-8 byte. Main begins a task that the
 *    last worker ends (on another goroutine); the workers' outer regions and logs belong
 *    to it.
 *    The checker verifies that the file is valid JSON; the writer found no event out of
 *    order and dropped none; exactly the goroutines spawned were created (and ended);
 *    region begins equal ends equal the program's count; every goroutine's slices follow
 *    the legal order (created runnable, runnable -> running, running -> blocked /
 *    runnable / syscall / end, blocked -> runnable, syscall -> running) without gaps or
 *    overlaps; each P's slices are in time order without overlap; every flow arrow has
 *    both ends; the wait reasons the program causes appear ("chan receive", "sleep",
 *    "mutex", "IO wait (read)") and a blocking call does; the escaped message reads back
 *    exactly; the one task began and ended, and a region and a log name it. Task calls
 *    while not tracing return 0 and do nothing.
 *  - GORO_TRACE=path traces a whole second goro_run of the same program, checked the
 *    same way (the goroutines it spawns, plus main, are created), with
 *    GORO_TRACE_STAMPS=sampled: most hand-off records unstamped, their times
 *    interpolated, so the writer's merge has to hold streams back to keep each
 *    goroutine's order.
 *  - GORO_TRACE_BUFFER_MB=1 (one 2 MiB slab, which the global stream takes at the
 *    start, so the Ps have no memory to record into) and 200,000 yields: the file
 *    reports dropped events and is still valid JSON whose P tracks are in order.
 * Registered with GORO_MAXPROCS=1 and with every CPU.
 */
#include "testutil.h"

#include <fcntl.h>
#include <stdbool.h>
#include <sys/stat.h>

#define NGOR 8
#define ROUNDS 200

static const char escaped_msg[] = "quote\" backslash\\ newline\n tab\t ctrl\x01 e-acute \xc3\xa9 "
                                  "bad \xff end";

typedef struct ring {
    goro_chan *ch[NGOR];
    goro_waitgroup wg;
    goro_mutex mu;
    goro_chan *held; /* the mutex holder says "held" */
    uint64_t task;   /* the ring's task: begun by main, ended by the last worker */
} ring;

typedef struct worker_arg {
    ring *r;
    int i;
} worker_arg;

static worker_arg args[NGOR];

static void worker(void *arg) {
    worker_arg *a = arg;
    ring *r = a->r;
    goro_chan *in = r->ch[a->i], *out = r->ch[(a->i + 1) % NGOR];
    goro_trace_task_region_begin(r->task, "ring worker");
    goro_sleep(TU_MS);
    for (int k = 0; k < ROUNDS; k++) {
        long tok;
        CHECK_EQ(goro_chan_recv(in, &tok), 0);
        goro_trace_region_begin("hop");
        tok++;
        goro_trace_region_end();
        if (a->i == NGOR - 1 && k == ROUNDS - 1) {
            goro_trace_task_end(r->task); /* on another goroutine than its begin */
            break;                        /* the last hop: the token stops here */
        }
        CHECK_EQ(goro_chan_send(out, &tok), 0);
    }
    char msg[32];
    snprintf(msg, sizeof msg, "worker %d done", a->i);
    goro_trace_task_log(r->task, "worker", msg);
    goro_trace_region_end();
    goro_wg_done(&r->wg);
}

/* Whether a goroutine is parked on a mutex now: goro_dump_ex's JSON (which stops the
 * world, so the trace records that too) into a memory file. */
static bool mutex_waiter_parked(void) {
    char *s = tu_dump_string(GORO_DUMP_JSON);
    bool found = strstr(s, "\"wait_reason\":\"mutex\"") != NULL;
    free(s);
    return found;
}

static void holder(void *arg) {
    ring *r = arg;
    goro_mutex_lock(&r->mu);
    int one = 1;
    CHECK_EQ(goro_chan_send(r->held, &one), 0);
    /* Unlocks once the waiter is parked on the mutex, so that the trace shows it blocked
     * there (a fixed sleep was not enough under ThreadSanitizer on a loaded machine: the
     * waiter had not run yet). */
    while (!mutex_waiter_parked())
        goro_sleep(TU_MS / 4);
    goro_mutex_unlock(&r->mu);
    goro_wg_done(&r->wg);
}

static void waiter(void *arg) {
    ring *r = arg;
    int one;
    CHECK_EQ(goro_chan_recv(r->held, &one), 0);
    goro_mutex_lock(&r->mu);
    goro_mutex_unlock(&r->mu);
    goro_wg_done(&r->wg);
}

/* Computes for 15 ms without a switch: the monitor takes its P if others wait. */
static void hog(void *arg) {
    ring *r = arg;
    int64_t until = goro_now() + 15 * TU_MS;
    while (goro_now() < until)
        ;
    goro_wg_done(&r->wg);
}

/* Parks on the netpoller until the writer's byte arrives. */
static int pipefd[2];

static void pipe_reader(void *arg) {
    ring *r = arg;
    char c;
    CHECK_EQ(goro_read(pipefd[0], &c, 1, GORO_FOREVER), 1);
    goro_wg_done(&r->wg);
}

static void pipe_writer(void *arg) {
    ring *r = arg;
    /* Write only once the reader waits on the netpoller (nobody else does here). */
    for (;;) {
        goro_stats st;
        goro_stats_get(&st);
        if (st.netpoll_waiting > 0)
            break;
        goro_sleep(100 * TU_US);
    }
    CHECK_EQ(goro_write(pipefd[1], "x", 1, GORO_FOREVER), 1);
    goro_wg_done(&r->wg);
}

static void blocker(void *arg) {
    ring *r = arg;
    GORO_BLOCKING(usleep(2000));
    goro_trace_log("escape", escaped_msg);
    goro_wg_done(&r->wg);
}

/* Spawns the program's goroutines and waits for them. Returns how many it spawned. */
static int program(void) {
    ring r = {.wg = GORO_WAITGROUP_INIT, .mu = GORO_MUTEX_INIT};
    r.task = goro_trace_task_begin("ring");
    CHECK(r.task != 0);
    for (int i = 0; i < NGOR; i++)
        CHECK_EQ(goro_chan_make(&r.ch[i], sizeof(long), 0), 0);
    CHECK_EQ(goro_chan_make(&r.held, sizeof(int), 0), 0);
    int spawned = 0;
    CHECK(pipe(pipefd) == 0);
    goro_wg_add(&r.wg, NGOR + 6);
    for (int i = 0; i < NGOR; i++) {
        args[i] = (worker_arg){.r = &r, .i = i};
        goro_attr attr = {.name = "ring worker"};
        CHECK_EQ(goro_spawn_attr(&attr, worker, &args[i]), 0);
        spawned++;
    }
    CHECK_EQ(goro_spawn(holder, &r), 0);
    CHECK_EQ(goro_spawn(waiter, &r), 0);
    CHECK_EQ(goro_spawn(blocker, &r), 0);
    CHECK_EQ(goro_spawn(hog, &r), 0);
    CHECK_EQ(goro_spawn(pipe_reader, &r), 0);
    CHECK_EQ(goro_spawn(pipe_writer, &r), 0);
    spawned += 6;
    long tok = 0;
    CHECK_EQ(goro_chan_send(r.ch[0], &tok), 0);
    /* A resize stops the world; running on a P that goes away moves main to P0. */
    int procs = goro_maxprocs(0);
    goro_maxprocs(1);
    goro_maxprocs(procs);
    goro_wg_wait(&r.wg);
    /* wg_done comes just before each goroutine's end: wait for the ends themselves
     * (goro_numgoroutine drops after the end is recorded) so the trace has them all. */
    while (goro_numgoroutine() > 1)
        goro_yield();
    for (int i = 0; i < NGOR; i++)
        goro_chan_release(r.ch[i]);
    goro_chan_release(r.held);
    goro_close(pipefd[0]);
    goro_close(pipefd[1]);
    return spawned;
}

static char dir[64];
static char path_api[128], path_env[128], path_drop[128];
static int spawned_api;

static void check_file(const char *path, int created, int existing, int ended) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "python3 '%s' '%s' --created %d --existing %d --ended %d --regions %d --logs %d "
             "--escaped-log escape --tasks 1",
             GORO_TRACE_CHECKER, path, created, existing, ended, NGOR * (ROUNDS + 1), NGOR + 1);
    int st = system(cmd);
    CHECKF(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
           "the checker rejected %s (status %d): %s", path, st, cmd);
}

/* Writes the expected escaped message for the checker (it compares what JSON decodes). */
static void write_expected(void) {
    char p[128];
    snprintf(p, sizeof p, "%s/escaped.bin", dir);
    FILE *f = fopen(p, "wb");
    CHECK(f != NULL);
    fwrite(escaped_msg, 1, sizeof escaped_msg - 1, f);
    fclose(f);
}

/* Waits on the gate before the trace starts, so the trace finds it blocked. */
static void gated(void *arg) {
    goro_chan *gate = arg;
    CHECK_EQ(goro_chan_recv(gate, NULL), 0);
}

static void main_api(void *arg) {
    (void)arg;
    /* Errors first. */
    CHECK_EQ(goro_trace_start(NULL), GORO_EINVAL);
    CHECK_EQ(goro_trace_stop(), GORO_EINVAL);
    char bad[160];
    snprintf(bad, sizeof bad, "%s/no/such/dir/trace.json", dir);
    CHECK_EQ(goro_trace_start(bad), -ENOENT);
    CHECK_EQ(goro_trace_enabled(), 0);
    goro_trace_region_begin("not recorded");
    goro_trace_region_end();
    goro_trace_log("not", "recorded");
    CHECK_EQ(goro_trace_task_begin("not recorded"), 0);
    goro_trace_task_end(0);
    goro_trace_task_region_begin(0, "not recorded");
    goro_trace_region_end();
    goro_trace_task_log(0, "not", "recorded");

    goro_chan *gate;
    CHECK_EQ(goro_chan_make(&gate, sizeof(int), 0), 0);
    CHECK_EQ(goro_spawn(gated, gate), 0);
    CHECK_EQ(goro_spawn(gated, gate), 0);
    /* Usually both wait by the time the trace starts; runnable ones are fine too. */
    for (int i = 0; i < 1000; i++) {
        goro_stats st;
        goro_stats_get(&st);
        if (st.parked >= 2)
            break;
        goro_yield();
    }
    CHECK_EQ(goro_trace_start(path_api), 0);
    CHECK_EQ(goro_trace_enabled(), 1);
    CHECK_EQ(goro_trace_start(path_api), GORO_EBUSY);
    int one = 1;
    CHECK_EQ(goro_chan_send(gate, &one), 0);
    CHECK_EQ(goro_chan_send(gate, &one), 0);
    spawned_api = program();
    goro_chan_release(gate);
    CHECK_EQ(goro_trace_stop(), 0);
    CHECK_EQ(goro_trace_enabled(), 0);
    CHECK_EQ(goro_trace_stop(), GORO_EINVAL);
}

static void yielder(void *arg) {
    goro_waitgroup *wg = arg;
    for (int i = 0; i < 100000; i++)
        goro_yield();
    goro_wg_done(wg);
}

/* 400,000 events or more, with no memory for the Ps' streams. */
static void main_drop(void *arg) {
    (void)arg;
    goro_waitgroup wg = GORO_WAITGROUP_INIT;
    goro_wg_add(&wg, 2);
    CHECK_EQ(goro_spawn(yielder, &wg), 0);
    CHECK_EQ(goro_spawn(yielder, &wg), 0);
    goro_wg_wait(&wg);
}

static void main_env(void *arg) {
    (void)arg;
    CHECK_EQ(goro_trace_enabled(), 1);
    CHECK_EQ(goro_trace_start(path_api), GORO_EBUSY);
    program();
}

int main(void) {
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/goro_trace_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path_api, sizeof path_api, "%s/api.json", dir);
    snprintf(path_env, sizeof path_env, "%s/env.json", dir);
    snprintf(path_drop, sizeof path_drop, "%s/drop.json", dir);
    write_expected();

    CHECK_EQ(goro_run(NULL, main_api, NULL), 0);
    /* Main and the two gated goroutines existed when the trace started (and the gated
     * ones end in it); the others were created under it. */
    check_file(path_api, spawned_api, 3, spawned_api + 2);

    /* Sampled stamps (one record in 64 whatever the spacing): in this sparse program
     * most hand-off times are interpolated far from their stamps, and the writer must
     * still order every goroutine's events (tracer_json.c J2). */
    CHECK(setenv("GORO_TRACE", path_env, 1) == 0);
    /* A GORO_TRACE_STAMPS of the caller's stays: stress loops run both traces exact, or
     * both sampled. */
    int own_stamps = !getenv("GORO_TRACE_STAMPS");
    if (own_stamps)
        CHECK(setenv("GORO_TRACE_STAMPS", "sampled", 1) == 0);
    CHECK_EQ(goro_run(NULL, main_env, NULL), 0);
    CHECK(unsetenv("GORO_TRACE") == 0);
    if (own_stamps)
        CHECK(unsetenv("GORO_TRACE_STAMPS") == 0);
    check_file(path_env, spawned_api + 1, 0, spawned_api + 1); /* main is created in it */

    /* Past the memory limit events are dropped, counted, and the file is still sound. */
    CHECK(setenv("GORO_TRACE", path_drop, 1) == 0);
    CHECK(setenv("GORO_TRACE_BUFFER_MB", "1", 1) == 0);
    CHECK_EQ(goro_run(NULL, main_drop, NULL), 0);
    CHECK(unsetenv("GORO_TRACE") == 0);
    CHECK(unsetenv("GORO_TRACE_BUFFER_MB") == 0);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "python3 '%s' '%s' --dropped", GORO_TRACE_CHECKER, path_drop);
    int st = system(cmd);
    CHECKF(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "the checker rejected %s", path_drop);

    /* Passed: remove the files (kept on failure, for a look). */
    char p[160];
    snprintf(p, sizeof p, "%s/escaped.bin", dir);
    unlink(p);
    unlink(path_api);
    unlink(path_env);
    unlink(path_drop);
    rmdir(dir);
    return tu_pass("trace_events");
}
