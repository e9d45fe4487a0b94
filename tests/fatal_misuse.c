/*
 * fatal_misuse: misuse that corrupts state is fatal with a "goro: fatal: <what>" line,
 * followed by a dump of all goroutines on stderr, and an abort.
 *
 * Each case runs in a child process, which first parks a goroutine named
 * "misuse-bystander" (the dump must show it) and then commits the misuse, from main or
 * from a spawned goroutine. The parent checks SIGABRT, a line starting "goro: fatal: "
 * that contains the expected words, and the bystander's name after that line.
 */
#include "testutil.h"

#define BYSTANDER "misuse-bystander"

typedef struct misuse {
    const char *what;
    const char *expect; /* substring of the fatal line */
    int from_goroutine; /* commit it in a spawned goroutine rather than main */
    void (*commit)(void);
} misuse;

static goro_waitgroup park_forever = GORO_WAITGROUP_INIT;
static goro_waitgroup bystander_parked = GORO_WAITGROUP_INIT;

static void bystander(void *arg) {
    (void)arg;
    goro_wg_done(&bystander_parked);
    goro_wg_wait(&park_forever);
}

static void unlock_unlocked(void) {
    goro_mutex m = GORO_MUTEX_INIT;
    goro_mutex_unlock(&m);
}

static void unlock_twice(void) {
    static goro_mutex m = GORO_MUTEX_INIT;
    goro_mutex_lock(&m);
    goro_mutex_unlock(&m);
    goro_mutex_unlock(&m);
}

static void wg_add_negative(void) {
    static goro_waitgroup wg = GORO_WAITGROUP_INIT;
    goro_wg_add(&wg, 2);
    goro_wg_add(&wg, -3);
}

static void wg_done_too_often(void) {
    static goro_waitgroup wg = GORO_WAITGROUP_INIT;
    goro_wg_add(&wg, 1);
    goro_wg_done(&wg);
    goro_wg_done(&wg);
}

static const misuse cases[] = {
    {"unlock of a never-locked mutex", "unlock of unlocked mutex", 0, unlock_unlocked},
    {"second unlock, in a goroutine", "unlock of unlocked mutex", 1, unlock_twice},
    {"wait group add below zero", "negative WaitGroup counter", 0, wg_add_negative},
    {"wait group done once too often, in a goroutine", "negative WaitGroup counter", 1,
     wg_done_too_often},
};

static void offender(void *arg) {
    const misuse *m = arg;
    m->commit();
    fprintf(stderr, "child: the misuse returned\n");
    goro_wg_done(&park_forever); /* let main finish so that the parent sees it */
}

static void child_main(void *arg) {
    const misuse *m = arg;
    goro_wg_add(&park_forever, 1);
    goro_wg_add(&bystander_parked, 1);
    goro_attr attr = {.stack_size = 0, .name = BYSTANDER};
    CHECK(goro_spawn_attr(&attr, bystander, NULL) == 0);
    goro_wg_wait(&bystander_parked);
    if (m->from_goroutine) {
        CHECK(goro_spawn(offender, (void *)m) == 0);
        goro_wg_wait(&park_forever);
    } else {
        m->commit();
        fprintf(stderr, "child: the misuse returned\n");
    }
}

static void child(void *arg) {
    int rc = goro_run(NULL, child_main, arg);
    fprintf(stderr, "child: goro_run returned %d (%s)\n", rc, goro_strerror(rc));
}

static const char *line_with(const char *text, const char *prefix, const char *sub) {
    for (const char *p = text; p != NULL && *p != '\0';) {
        const char *nl = strchr(p, '\n');
        size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
        if (strncmp(p, prefix, strlen(prefix)) == 0) {
            const char *s = strstr(p, sub);
            if (s != NULL && s < p + len)
                return p;
        }
        p = nl != NULL ? nl + 1 : NULL;
    }
    return NULL;
}

int main(void) {
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const misuse *m = &cases[i];
        tu_child c;
        tu_run_child(child, (void *)m, 60, &c);
        tu_show_child(m->what, &c, 3000);
        char how[128];
        CHECKF(WIFSIGNALED(c.status) && WTERMSIG(c.status) == SIGABRT,
               "%s: the child should die of SIGABRT; instead it %s", m->what,
               tu_child_how(&c, how, sizeof how));
        const char *fatal = line_with(c.err, "goro: fatal: ", m->expect);
        CHECKF(fatal != NULL, "%s: no line starting \"goro: fatal: \" containing \"%s\"", m->what,
               m->expect);
        CHECKF(strstr(fatal, BYSTANDER) != NULL,
               "%s: the goroutine dump after the fatal line does not show the goroutine "
               "named \"%s\"",
               m->what, BYSTANDER);
        printf("%s: ok\n", m->what);
        free(c.err);
    }
    return tu_pass("fatal_misuse");
}
