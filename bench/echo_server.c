/*
 * echo_server.c - a TCP echo server, one goroutine per connection; the network
 * benchmark's server side (scripts/bench_http.sh), twin of bench/go/echo.
 *
 *   echo_server [--addr host:port] [--procs N]
 *
 * --addr defaults to 127.0.0.1:9090 (port 0: any free port); the bound address is printed
 * on stdout as "listening on HOST:PORT". --procs sets goro_config.maxprocs (0: every
 * CPU). Every byte a client sends is written back to it; the connection ends when the
 * client closes it. The server runs until it is killed.
 */
#include <goro.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF_SIZE 16384

static void echo_goroutine(void *arg) {
    int fd = (int)(intptr_t)arg;
    char buf[BUF_SIZE];
    for (;;) {
        ssize_t n = goro_read(fd, buf, sizeof buf, GORO_FOREVER);
        if (n <= 0)
            break;
        if (goro_write(fd, buf, (size_t)n, GORO_FOREVER) < 0)
            break;
    }
    goro_close(fd);
}

typedef struct opts {
    const char *addr;
    int procs;
    int status;
} opts;

static void server_main(void *arg) {
    opts *o = arg;
    int lfd = goro_tcp_listen(o->addr, 0);
    if (lfd < 0) {
        fprintf(stderr, "echo_server: listen on %s: %s\n", o->addr, goro_strerror(lfd));
        o->status = 1;
        return;
    }
    const char *colon = strrchr(o->addr, ':');
    printf("listening on %.*s:%d\n", colon != NULL ? (int)(colon - o->addr) : 0, o->addr,
           goro_tcp_port(lfd));
    fflush(stdout);
    static const goro_attr attr = {BUF_SIZE + 16384, "echo"};
    for (;;) {
        int fd = goro_accept(lfd, GORO_FOREVER);
        if (fd < 0) {
            fprintf(stderr, "echo_server: accept: %s\n", goro_strerror(fd));
            goro_sleep(10000000);
            continue;
        }
        if (goro_spawn_attr(&attr, echo_goroutine, (void *)(intptr_t)fd) != 0)
            goro_close(fd);
    }
}

int main(int argc, char **argv) {
    opts o = {"127.0.0.1:9090", 0, 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *name = a + (a[0] == '-' && a[1] == '-' ? 2 : a[0] == '-' ? 1 : 0);
        if (name == a || i + 1 >= argc) {
            fprintf(stderr, "usage: echo_server [--addr host:port] [--procs N]\n");
            return 2;
        }
        if (strcmp(name, "addr") == 0) {
            o.addr = argv[++i];
        } else if (strcmp(name, "procs") == 0) {
            o.procs = atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: echo_server [--addr host:port] [--procs N]\n");
            return 2;
        }
    }
    goro_config cfg = {.maxprocs = o.procs};
    int err = goro_run(&cfg, server_main, &o);
    if (err != 0) {
        fprintf(stderr, "echo_server: goro_run: %s\n", goro_strerror(err));
        return 1;
    }
    return o.status;
}
