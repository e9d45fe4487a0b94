/*
 * echo_client.c - the network benchmark's client (scripts/bench_http.sh): -c connections,
 * each a goroutine that sends a -s byte message (default 64) and waits for it to come
 * back, in a loop, for -d seconds. Works against any echo server (bench/echo_server.c and
 * its Go twin bench/go/echo, driven by the same client so that only the servers differ).
 *
 *   echo_client [-c connections] [-d seconds] [-s size] [--procs N] host:port
 *
 * Prints round trips per second, the last line as "RESULT roundtrips_per_s <v> rt/s";
 * exits 1 on any error (connect, read, write, echoed bytes that differ) or if no round
 * trip completed.
 */
#include <goro.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEC ((int64_t)1000000000)
#define MAX_SIZE 65536

typedef struct run {
    const char *addr;
    long conns, size;
    int64_t duration, end;
    int procs;
    goro_waitgroup done;
    atomic_ulong trips, errors;
    int status;
} run;

static void fail(run *r, const char *what, int code) {
    if (atomic_fetch_add(&r->errors, 1) < 5)
        fprintf(stderr, "echo_client: %s: %s\n", what, goro_strerror(code));
}

static void client_goroutine(void *arg) {
    run *r = arg;
    char *msg = malloc((size_t)r->size), *back = malloc((size_t)r->size);
    unsigned long trips = 0;
    int fd = goro_tcp_dial(r->addr, goro_now() + 10 * SEC);
    if (msg == NULL || back == NULL) {
        fail(r, "malloc", GORO_ENOMEM);
        goto out;
    }
    if (fd < 0) {
        fail(r, "connect", fd);
        goto out;
    }
    for (long i = 0; i < r->size; i++)
        msg[i] = (char)('a' + i % 26);
    while (goro_now() < r->end) {
        ssize_t w = goro_write(fd, msg, (size_t)r->size, r->end + 10 * SEC);
        if (w < 0) {
            fail(r, "write", (int)w);
            break;
        }
        size_t got = 0;
        while (got < (size_t)r->size) {
            ssize_t n = goro_read(fd, back + got, (size_t)r->size - got, r->end + 10 * SEC);
            if (n <= 0) {
                fail(r, "read", n == 0 ? -ECONNRESET : (int)n);
                goto out;
            }
            got += (size_t)n;
        }
        if (memcmp(msg, back, (size_t)r->size) != 0) {
            fail(r, "echoed bytes differ", GORO_EINVAL);
            break;
        }
        trips++;
    }
out:
    if (fd >= 0)
        goro_close(fd);
    free(msg);
    free(back);
    atomic_fetch_add(&r->trips, trips);
    goro_wg_done(&r->done);
}

static void main_goroutine(void *arg) {
    run *r = arg;
    int64_t start = goro_now();
    r->end = start + r->duration;
    for (long i = 0; i < r->conns; i++) {
        goro_wg_add(&r->done, 1);
        if (goro_spawn(client_goroutine, r) != 0) {
            goro_wg_done(&r->done);
            fail(r, "spawn", GORO_ENOMEM);
            break;
        }
    }
    goro_wg_wait(&r->done);
    double secs = (double)(goro_now() - start) / 1e9;
    unsigned long trips = atomic_load(&r->trips), errors = atomic_load(&r->errors);
    double rate = (double)trips / secs;
    printf("echo_client: %s, %ld connections, %ld-byte messages, %.2f s\n", r->addr, r->conns,
           r->size, secs);
    printf("round trips %lu, %.0f round trips/s, errors %lu\n", trips, rate, errors);
    printf("RESULT roundtrips_per_s %.0f rt/s\n", rate);
    r->status = errors > 0 || trips == 0;
}

int main(int argc, char **argv) {
    static run r;
    r.conns = 50;
    r.size = 64;
    r.duration = 5 * SEC;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-') {
            r.addr = a;
            continue;
        }
        const char *name = a + (a[1] == '-' ? 2 : 1);
        if (i + 1 >= argc)
            goto usage;
        const char *v = argv[++i];
        if (strcmp(name, "c") == 0)
            r.conns = atol(v);
        else if (strcmp(name, "d") == 0)
            r.duration = (int64_t)(atof(v) * 1e9);
        else if (strcmp(name, "s") == 0)
            r.size = atol(v);
        else if (strcmp(name, "procs") == 0)
            r.procs = atoi(v);
        else
            goto usage;
    }
    if (r.addr == NULL || r.conns < 1 || r.size < 1 || r.size > MAX_SIZE || r.duration <= 0)
        goto usage;
    goro_config cfg = {.maxprocs = r.procs};
    int err = goro_run(&cfg, main_goroutine, &r);
    if (err != 0) {
        fprintf(stderr, "echo_client: goro_run: %s\n", goro_strerror(err));
        return 1;
    }
    return r.status;
usage:
    fprintf(stderr, "usage: echo_client [-c connections] [-d seconds] [-s size] [--procs N] "
                    "host:port\n");
    return 2;
}
