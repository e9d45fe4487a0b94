/*
 * debug_schedtrace: GORO_DEBUG=schedtrace=10 makes the monitor write a scheduler line to
 * stderr every 10 ms, and scheddetail=1 a line per P, M and goroutine after each.
 *
 * A child process runs a known workload under the setting: NPARKED goroutines parked on
 * a channel receive, NSLEEPERS goroutines sleeping 1 ms in a loop, for RUN_MS after all
 * have started. The parent parses the child's stderr:
 *  - every SCHED line has the documented fields, its localq list has one entry per P, its
 *    counts fit together (idle <= total, runnable = globalq + sum of localq, parked <=
 *    goroutines) and it comes at least 10 ms after the line before;
 *  - there are at least a quarter of the lines the run's length asks for (the machine may
 *    be loaded; the monitor is never early);
 *  - some line sees every parked goroutine: goroutines >= NPARKED + 1 and parked >= NPARKED;
 *  - with detail: each block has exactly procs P lines and threads M lines, and some block
 *    lists NPARKED goroutines waiting with reason "chan receive";
 *  - with no sleepers (every P idle while main sleeps, when the monitor would otherwise
 *    sleep until a P gets busy) the lines keep coming;
 *  - a bad key, a key without a value and a bad value each give a warning line and do not
 *    stop the trace.
 */
#include "testutil.h"

#include <time.h>

#define NPARKED 40
#define NSLEEPERS 3
#define RUN_MS 600

static goro_chan *never;
static goro_waitgroup wg = GORO_WAITGROUP_INIT;
static int stop;
static int arrived;               /* goroutines that reached their wait */
static int nsleepers = NSLEEPERS; /* set before the child is forked */

static void parked(void *arg) {
    (void)arg;
    __atomic_add_fetch(&arrived, 1, __ATOMIC_RELAXED);
    CHECK(goro_chan_recv(never, NULL) == GORO_ECLOSED);
    goro_wg_done(&wg);
}

static void sleeper(void *arg) {
    (void)arg;
    __atomic_add_fetch(&arrived, 1, __ATOMIC_RELAXED);
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED))
        goro_sleep(TU_MS);
    goro_wg_done(&wg);
}

static void workload(void *arg) {
    (void)arg;
    CHECK(goro_chan_make(&never, 1, 0) == 0);
    for (int i = 0; i < NPARKED; i++) {
        goro_wg_add(&wg, 1);
        CHECK(goro_spawn(parked, NULL) == 0);
    }
    for (int i = 0; i < nsleepers; i++) {
        goro_wg_add(&wg, 1);
        CHECK(goro_spawn(sleeper, NULL) == 0);
    }
    /* The measured window starts once every goroutine has started (slow in the race
     * build, where each one's first run creates a TSan fiber). */
    for (long i = 0; __atomic_load_n(&arrived, __ATOMIC_RELAXED) < NPARKED + nsleepers; i++) {
        CHECKF(i < 100000000, "only %d goroutines started", arrived);
        goro_yield();
    }
    goro_sleep(RUN_MS * TU_MS);
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    CHECK(goro_chan_close(never) == 0);
    goro_wg_wait(&wg);
    goro_chan_release(never);
}

static void child(void *arg) {
    CHECK(setenv("GORO_DEBUG", arg, 1) == 0);
    CHECK(goro_run(NULL, workload, NULL) == 0);
}

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct summary {
    long ms, procs, idleprocs, threads, spinning, idlethreads, blocking, globalq;
    long goroutines, runnable, parked;
    long localq_sum, nlocalq;
} summary;

/* Parses a SCHED line; returns 0 if it does not have the documented form. */
static int parse_line(const char *line, summary *s) {
    int n = 0;
    memset(s, 0, sizeof *s);
    if (sscanf(line,
               "SCHED %ldms: procs=%ld idleprocs=%ld threads=%ld spinningthreads=%ld "
               "idlethreads=%ld blockingthreads=%ld globalq=%ld localq=[%n",
               &s->ms, &s->procs, &s->idleprocs, &s->threads, &s->spinning, &s->idlethreads,
               &s->blocking, &s->globalq, &n) != 8 ||
        n == 0)
        return 0;
    const char *p = line + n;
    while (*p != ']') {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p)
            return 0;
        s->localq_sum += v;
        s->nlocalq++;
        p = end;
        if (*p == ' ')
            p++;
    }
    int m = 0;
    if (sscanf(p, "] goroutines=%ld runnable=%ld parked=%ld%n", &s->goroutines, &s->runnable,
               &s->parked, &m) != 3 ||
        (p[m] != '\n' && p[m] != '\0'))
        return 0;
    return 1;
}

static int starts_with(const char *s, const char *prefix) {
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void run(const char *setting, int detail) {
    tu_child c;
    int64_t t0 = mono_ms();
    tu_run_child(child, (void *)setting, 60, &c);
    int64_t elapsed = mono_ms() - t0;
    if (!WIFEXITED(c.status) || WEXITSTATUS(c.status) != TU_CHILD_RETURNED) {
        char how[128];
        tu_show_child(setting, &c, 4000);
        CHECKF(0, "child %s", tu_child_how(&c, how, sizeof how));
    }
    char *orig = strdup(c.err); /* the parse below cuts c.err into lines */
    CHECK(orig != NULL);
    long lines = 0, last_ms = -1, saw_all_parked = 0, blocks_full = 0;
    long want_p = 0, want_m = 0, nps = 0, nms = 0, nchan = 0;
    summary s = {0};
    for (char *line = c.err; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (starts_with(line, "SCHED ")) {
            if (lines > 0 && detail) {
                /* The block before this line is complete. */
                CHECKF(nps == want_p, "%ld P lines, procs=%ld", nps, want_p);
                CHECKF(nms == want_m, "%ld M lines, threads=%ld", nms, want_m);
                blocks_full += nchan == NPARKED;
            }
            CHECKF(parse_line(line, &s), "bad line: %s", line);
            /* Never early: a line at least the period after the one before. */
            CHECKF(last_ms < 0 || s.ms >= last_ms + 10, "a line at %ld ms after one at %ld ms",
                   s.ms, last_ms);
            last_ms = s.ms;
            CHECK(s.procs >= 1);
            CHECKF(s.nlocalq == s.procs, "%ld localq entries for %ld Ps", s.nlocalq, s.procs);
            CHECK(s.idleprocs >= 0 && s.idleprocs <= s.procs);
            CHECK(s.threads >= 1);
            CHECK(s.idlethreads >= 0 && s.idlethreads <= s.threads);
            CHECK(s.spinning >= 0 && s.spinning <= s.threads);
            CHECK(s.blocking == 0);
            CHECKF(s.runnable == s.globalq + s.localq_sum, "%s", line);
            CHECK(s.parked >= 0 && s.parked <= s.goroutines);
            CHECK(s.goroutines <= 1 + NPARKED + nsleepers);
            saw_all_parked += s.goroutines == 1 + NPARKED + nsleepers && s.parked >= NPARKED;
            want_p = s.procs;
            want_m = s.threads;
            nps = nms = nchan = 0;
            lines++;
        } else if (starts_with(line, "  P")) {
            CHECKF(detail, "detail line without scheddetail: %s", line);
            int id, n = 0;
            char st[16];
            CHECKF(sscanf(line,
                          "  P%d: status=%15s m=%*s runq=%*d spawnq=%*d runnext=%*s "
                          "timers=%*d%n",
                          &id, st, &n) == 2 &&
                       n > 0,
                   "bad P line: %s", line);
            CHECK(strcmp(st, "idle") == 0 || strcmp(st, "running") == 0 ||
                  strcmp(st, "syscall") == 0);
            nps++;
        } else if (starts_with(line, "  M")) {
            CHECKF(detail, "detail line without scheddetail: %s", line);
            int id, sp, bl, idle, n = 0;
            CHECKF(sscanf(line, "  M%d: p=%*s curg=%*s spinning=%d blocked=%d idle=%d%n", &id, &sp,
                          &bl, &idle, &n) == 4 &&
                       n > 0,
                   "bad M line: %s", line);
            CHECK(sp == 0 || sp == 1);
            CHECK(bl == 0);
            nms++;
        } else if (starts_with(line, "  G")) {
            CHECKF(detail, "detail line without scheddetail: %s", line);
            unsigned long long id;
            char st[16];
            CHECKF(sscanf(line, "  G%llu: status=%15s", &id, st) == 2, "bad G line: %s", line);
            if (strstr(line, "status=waiting reason=\"chan receive\" since="))
                nchan++;
        } else if (!starts_with(line, "goro: GORO_DEBUG: ")) {
            CHECKF(0, "unexpected stderr line: %s", line);
        }
        line = nl ? nl + 1 : NULL;
    }
    /* A line every 10 ms from the start. A loaded machine delays some (gaps of 90 ms are
     * seen while benchmarks run beside), so a quarter is required; a monitor that stops
     * while the program idles writes about six. */
    long want = RUN_MS / 10 / 4;
    if (lines < want || saw_all_parked == 0 || (detail && blocks_full == 0)) {
        free(c.err);
        c.err = orig;
        orig = NULL;
        tu_show_child(setting, &c, 20000);
    }
    CHECKF(lines >= want, "%ld lines in %lld ms (want >= %ld)", lines, (long long)elapsed, want);
    CHECKF(saw_all_parked > 0, "no line saw %d goroutines with %d parked", 1 + NPARKED + nsleepers,
           NPARKED);
    if (detail)
        CHECKF(blocks_full > 0, "no block listed %d goroutines in chan receive", NPARKED);
    printf("%s: %ld lines in %lld ms, %ld saw all parked, %ld full blocks\n", setting, lines,
           (long long)elapsed, saw_all_parked, blocks_full);
    free(orig);
    free(c.err);
}

int main(void) {
    run("schedtrace=10", 0);
    run("schedtrace=10,scheddetail=1", 1);
    /* An idle program: the monitor must not take its deep sleep. */
    nsleepers = 0;
    run("schedtrace=10", 0);
    nsleepers = NSLEEPERS;

    /* Mistakes are warnings, and the rest of the setting still applies. */
    tu_child c;
    tu_run_child(child, "bogus=1,schedtrace=10,novalue,scheddetail=7", 60, &c);
    CHECK(WIFEXITED(c.status) && WEXITSTATUS(c.status) == TU_CHILD_RETURNED);
    CHECK(tu_has_line(c.err, "goro: GORO_DEBUG: unknown key \"bogus\" (ignored)"));
    CHECK(tu_has_line(c.err, "goro: GORO_DEBUG: no value in \"novalue\" (ignored)"));
    CHECK(tu_has_line(c.err, "goro: GORO_DEBUG: bad value in \"scheddetail=7\" (ignored)"));
    CHECK(tu_has_line_with(c.err, "SCHED ", "procs="));
    CHECK(strstr(c.err, "  P0: ") == NULL); /* scheddetail=7 was ignored */
    free(c.err);

    /* Without the setting, nothing is written. */
    tu_run_child(child, "", 60, &c);
    CHECK(WIFEXITED(c.status) && WEXITSTATUS(c.status) == TU_CHILD_RETURNED);
    CHECKF(c.len == 0, "stderr: %s", c.err);
    free(c.err);
    return tu_pass("debug_schedtrace");
}
