/*
 * hello.c - a program outside the goro tree, built against an installed goro the ways a
 * user would (scripts/test_install.sh, scripts/test_package.sh): with pkg-config, with
 * CMake's find_package, and statically.
 *
 * It sums 1..100000 on as many goroutines under a mutex and a wait group (the README's
 * example), then checks that the library it runs with is the release its header names.
 * Prints "total 5000050000" and "version X.Y.Z"; exits 1 on any mismatch.
 */
#include <goro.h>

#include <stdio.h>
#include <string.h>

static goro_waitgroup wg = GORO_WAITGROUP_INIT;
static goro_mutex mu = GORO_MUTEX_INIT;
static long total;

static void worker(void *arg) {
    long n = (long)arg;
    goro_mutex_lock(&mu);
    total += n;
    goro_mutex_unlock(&mu);
    goro_wg_done(&wg);
}

static void main_goroutine(void *arg) {
    int *failed = arg;
    for (long i = 1; i <= 100000; i++) {
        goro_wg_add(&wg, 1);
        if (goro_spawn(worker, (void *)i) != 0) {
            fprintf(stderr, "hello: goro_spawn failed\n");
            *failed = 1;
            goro_wg_done(&wg);
        }
    }
    goro_wg_wait(&wg);
    printf("total %ld\n", total);
    if (total != 5000050000L)
        *failed = 1;
}

int main(void) {
    if (strcmp(goro_version(), GORO_VERSION_STRING) != 0) {
        fprintf(stderr, "hello: compiled against goro %s, running with %s\n", GORO_VERSION_STRING,
                goro_version());
        return 1;
    }
    printf("version %s\n", goro_version());
    int failed = 0;
    int rc = goro_run(NULL, main_goroutine, &failed);
    if (rc != 0) {
        fprintf(stderr, "hello: goro_run: %s\n", goro_strerror(rc));
        return 1;
    }
    return failed;
}
