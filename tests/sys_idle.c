/*
 * sys_idle.c - an idle program costs no CPU: while every goroutine sleeps, waits on the
 * netpoller or sits in a blocking call, the threads (the monitor included) sleep too.
 * A thread that polled or spun would burn the whole idle phase; the bound allows a few
 * ms of wake-ups (the monitor backs off to 10 ms while a blocking call lasts).
 */
#include "netutil.h"

#include <sys/resource.h>

#define PHASE_NS 300000000  /* 300 ms */
#define MAX_CPU_NS 60000000 /* 20% of the phase: spinning would use ~100% */

static int64_t cpu_ns(void) {
    struct rusage ru;
    CHECK(getrusage(RUSAGE_SELF, &ru) == 0);
    return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
           ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

static void check_phase(const char *what, int64_t cpu0) {
    int64_t used = cpu_ns() - cpu0;
    printf("%-34s %6.2f ms CPU in %d ms\n", what, used / 1e6, PHASE_NS / 1000000);
    CHECKF(used < MAX_CPU_NS, "%s used %.1f ms of CPU", what, used / 1e6);
}

static int pipefd[2];

static void netpoll_reader(void *arg) {
    goro_waitgroup *wg = arg;
    char c;
    CHECK_EQ(goro_read(pipefd[0], &c, 1, GORO_FOREVER), 1);
    goro_wg_done(wg);
}

static void blocking_reader(void *arg) {
    goro_waitgroup *wg = arg;
    char c;
    int64_t until = goro_now() + PHASE_NS;
    while (goro_now() < until)
        GORO_BLOCKING(usleep(100000)); /* a thread blocked in a C call, 100 ms at a time */
    CHECK_EQ(goro_read(pipefd[0], &c, 1, 0), 1);
    goro_wg_done(wg);
}

static void test_main(void *arg) {
    (void)arg;
    /* Let start-up work (thread creation, first spins) settle first. */
    goro_sleep(50000000);

    int64_t c0 = cpu_ns();
    goro_sleep(PHASE_NS);
    check_phase("all goroutines sleeping", c0);

    CHECK(pipe(pipefd) == 0);
    goro_waitgroup wg = GORO_WAITGROUP_INIT;
    goro_wg_add(&wg, 1);
    CHECK_EQ(goro_spawn(netpoll_reader, &wg), 0);
    goro_sleep(10000000);
    c0 = cpu_ns();
    goro_sleep(PHASE_NS);
    check_phase("a goroutine on the netpoller", c0);
    CHECK_EQ(goro_write(pipefd[1], "x", 1, GORO_FOREVER), 1);
    goro_wg_wait(&wg);

    goro_wg_add(&wg, 1);
    CHECK_EQ(goro_write(pipefd[1], "y", 1, GORO_FOREVER), 1);
    c0 = cpu_ns();
    CHECK_EQ(goro_spawn(blocking_reader, &wg), 0);
    goro_wg_wait(&wg);
    check_phase("a goroutine in a blocking call", c0);
    goro_close(pipefd[0]);
    goro_close(pipefd[1]);
    nu_check_netpoll("sys_idle");
}

int main(void) {
    CHECK_EQ(goro_run(NULL, test_main, NULL), 0);
    printf("PASS sys_idle\n");
    return 0;
}
