/*
 * fatal_deadlock: when every goroutine is blocked on a channel or a sync primitive and no
 * timer can wake anything, the runtime prints "goro: fatal: all goroutines are asleep -
 * deadlock!" with the goroutine dump (each with its wait reason) and aborts. While a
 * sleeper or a timed wait is pending, nothing is reported.
 */
#include "testutil.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

static goro_chan *ch;
static goro_mutex mu = GORO_MUTEX_INIT;

static void stuck_on_mutex(void *arg) {
    (void)arg;
    goro_mutex_lock(&mu); /* main holds it and never unlocks */
}

/* main and a helper both block forever: main on a channel nobody sends to. */
static void deadlock_main(void *arg) {
    (void)arg;
    CHECK_EQ(goro_chan_make(&ch, sizeof(int), 0), 0);
    goro_mutex_lock(&mu);
    CHECK_EQ(goro_spawn(stuck_on_mutex, NULL), 0);
    int v;
    goro_chan_recv(ch, &v);
}

static void child_deadlock(void *arg) {
    (void)arg;
    goro_run(NULL, deadlock_main, NULL);
}

static void late_sender(void *arg) {
    (void)arg;
    goro_sleep(30 * TU_MS);
    int v = 7;
    CHECK_EQ(goro_chan_send(ch, &v), 0);
}

/* Everyone is blocked for 30 ms, but a sleeper will wake: no deadlock. Then a timed
 * receive on a channel nobody uses: its timer is pending, so no deadlock either. */
static void alive_main(void *arg) {
    (void)arg;
    CHECK_EQ(goro_chan_make(&ch, sizeof(int), 0), 0);
    CHECK_EQ(goro_spawn(late_sender, NULL), 0);
    int v = 0;
    CHECK_EQ(goro_chan_recv(ch, &v), 0);
    CHECK_EQ(v, 7);
    CHECK_EQ(goro_chan_recv_dl(ch, &v, goro_now() + 20 * TU_MS), GORO_ETIMEDOUT);
    goro_chan_release(ch);
}

static void child_alive(void *arg) {
    (void)arg;
    CHECK_EQ(goro_run(NULL, alive_main, NULL), 0);
}

int main(void) {
    char how[128];
    tu_child c;
    tu_run_child(child_deadlock, NULL, 20, &c);
    tu_show_child("deadlock", &c, 4000);
    CHECKF(WIFSIGNALED(c.status) && WTERMSIG(c.status) == SIGABRT,
           "a deadlocked child should abort; it %s", tu_child_how(&c, how, sizeof how));
    CHECK(tu_has_line(c.err, "goro: fatal: all goroutines are asleep - deadlock!"));
    CHECKF(strstr(c.err, "[chan receive") != NULL, "the dump should show main's wait reason");
    CHECKF(strstr(c.err, "[mutex") != NULL, "the dump should show the mutex waiter");
    free(c.err);

    tu_run_child(child_alive, NULL, 20, &c);
    CHECKF(WIFEXITED(c.status) && WEXITSTATUS(c.status) == TU_CHILD_RETURNED,
           "a program with a pending timer is not deadlocked; the child %s:\n%s",
           tu_child_how(&c, how, sizeof how), c.err);
    free(c.err);
    return tu_pass("fatal_deadlock");
}
