/*
 * fuzz_http.c - libFuzzer target for hello_server's request handling (examples/http_conn.c).
 *
 * Each input is the bytes a client sent on one connection. They are fed to an http_conn
 * whole, then split in two at every position (at 64 positions for inputs over 512 bytes),
 * then one byte at a time; every way must produce the very same output, the same close
 * flag and the same request count, because a server cannot choose how TCP cuts a stream.
 * The output must also stay proportional to the input (no response without a request),
 * and nothing may come out after the connection is to be closed. ASan and UBSan catch
 * the rest.
 *
 *   scripts/fuzz.sh [seconds]     builds this with clang in build-fuzz/ and runs it
 *
 * With FUZZ_HTTP_MAIN defined (the CTest program http_fuzz_corpus, every build) a main()
 * runs the seed corpus FUZZ_HTTP_CORPUS (tests/fuzz_corpus/) and any files named on the
 * command line through the same checks, so the harness is exercised without clang.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_conn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A header limit well below the default, so that inputs of libFuzzer's usual sizes reach
 * the 431 path too. */
#define FUZZ_MAX_HEADER 1024

typedef struct run_result {
    char *out;
    size_t len, cap;
    int closed;
    uint64_t requests;
} run_result;

static void check(int ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "fuzz_http: check failed: %s\n", what);
        abort();
    }
}

static void collect(run_result *r, http_conn *c) {
    size_t n;
    const char *p = http_conn_output(c, &n);
    if (n == 0)
        return;
    if (r->cap - r->len < n) {
        size_t cap = r->cap ? r->cap : 1024;
        while (cap - r->len < n)
            cap *= 2;
        r->out = realloc(r->out, cap);
        check(r->out != NULL, "out of memory");
        r->cap = cap;
    }
    memcpy(r->out + r->len, p, n);
    r->len += n;
    http_conn_output_done(c);
}

/* Feeds data in pieces that start at cuts[0..ncut) (increasing). */
static void run(const char *data, size_t size, const size_t *cuts, size_t ncut, run_result *r) {
    static const http_conn_options opts = {FUZZ_MAX_HEADER, "Thu, 01 Jan 1970 00:00:00 GMT"};
    http_conn c;
    http_conn_init(&c, &opts);
    memset(r, 0, sizeof *r);
    size_t start = 0;
    for (size_t k = 0; k <= ncut; k++) {
        size_t stop = k < ncut ? cuts[k] : size;
        while (start < stop) {
            int was_closed = http_conn_should_close(&c);
            size_t took = http_conn_feed(&c, data + start, stop - start);
            check(took <= stop - start, "feed took more than it was given");
            size_t olen;
            http_conn_output(&c, &olen);
            check(took == stop - start || olen >= HTTP_CONN_OUT_HIGH_WATER,
                  "feed stopped early without output to write");
            check(took > 0 || olen > 0, "feed made no progress");
            check(!was_closed || olen == 0, "output after the connection was closing");
            collect(r, &c);
            start += took;
        }
    }
    r->closed = http_conn_should_close(&c);
    r->requests = c.requests;
    http_conn_free(&c);
    /* Every response answers at least a request line (14 bytes) and is at most ~300 bytes
     * plus 4 bytes per byte of path, 100 Continue included. */
    check(r->len <= 32 * size + 512, "output out of proportion to the input");
}

static void same(const run_result *a, const run_result *b, const char *how) {
    if (a->len != b->len || (a->len > 0 && memcmp(a->out, b->out, a->len) != 0) ||
        a->closed != b->closed || a->requests != b->requests) {
        fprintf(stderr, "fuzz_http: %s differs from feeding whole: %zu vs %zu bytes\n", how, b->len,
                a->len);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *in = (const char *)data;
    run_result whole, r;
    run(in, size, NULL, 0, &whole);

    size_t step = size <= 512 ? 1 : size / 64;
    for (size_t k = 1; k < size; k += step) {
        run(in, size, &k, 1, &r);
        same(&whole, &r, "a split in two");
        free(r.out);
    }
    if (size > 1) {
        size_t *cuts = malloc((size - 1) * sizeof *cuts);
        check(cuts != NULL, "out of memory");
        for (size_t k = 1; k < size; k++)
            cuts[k - 1] = k;
        run(in, size, cuts, size - 1, &r);
        same(&whole, &r, "byte by byte");
        free(r.out);
        free(cuts);
    }
    free(whole.out);
    return 0;
}

#ifdef FUZZ_HTTP_MAIN
#include <dirent.h>

static int run_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    check(buf != NULL, "out of memory");
    for (;;) {
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            check(buf != NULL, "out of memory");
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        if (n == 0)
            break;
        len += n;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    return 0;
}

int main(int argc, char **argv) {
    int files = 0;
    for (int i = 1; i < argc; i++)
        if (run_file(argv[i]) == 0)
            files++;
#ifdef FUZZ_HTTP_CORPUS
    if (argc == 1) {
        DIR *d = opendir(FUZZ_HTTP_CORPUS);
        if (d == NULL) {
            perror(FUZZ_HTTP_CORPUS);
            return 1;
        }
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", FUZZ_HTTP_CORPUS, e->d_name);
            if (run_file(path) == 0)
                files++;
        }
        closedir(d);
    }
#endif
    if (files == 0) {
        fprintf(stderr, "fuzz_http: no input files\n");
        return 1;
    }
    printf("PASS http_fuzz_corpus (%d inputs)\n", files);
    return 0;
}
#endif
