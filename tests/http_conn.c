/*
 * http_conn.c - the HTTP request handling of hello_server (examples/http_conn.c), fed
 * requests directly: no sockets, no goroutines.
 *
 * Every case is checked three ways: the input fed whole, split in two at every byte
 * position, and fed one byte at a time; all must give the same output byte for byte
 * (the Date is fixed so that they can). The expected outputs are written out in full, as
 * Go's net/http would answer for `fmt.Fprintf(w, "Hello, %q", r.URL.Path)`.
 */
#include "testutil.h"

#include "http_conn.h"

#define DATE "Thu, 01 Jan 1970 00:00:00 GMT"

static const http_conn_options opts = {0, DATE};

typedef struct result {
    char *out;
    size_t len;
    int closed;
} result;

static void append(result *r, const char *p, size_t n) {
    r->out = realloc(r->out, r->len + n + 1);
    CHECK(r->out != NULL);
    if (n > 0)
        memcpy(r->out + r->len, p, n);
    r->len += n;
    r->out[r->len] = '\0';
}

/* Feeds in[0..n) in pieces: cut[0..ncut) are the offsets where a new piece starts. The
 * output is collected after every feed, as the server writes it. */
static result feed_pieces(const http_conn_options *o, const char *in, size_t n, const size_t *cut,
                          size_t ncut) {
    http_conn c;
    http_conn_init(&c, o);
    result r = {NULL, 0, 0};
    append(&r, "", 0);
    size_t start = 0;
    for (size_t k = 0; k <= ncut; k++) {
        size_t stop = k < ncut ? cut[k] : n;
        size_t off = start;
        while (off < stop) {
            size_t took = http_conn_feed(&c, in + off, stop - off);
            CHECK(took <= stop - off);
            size_t olen;
            const char *out = http_conn_output(&c, &olen);
            /* The feed stops early only to let the output be written. */
            CHECK(took == stop - off || olen >= HTTP_CONN_OUT_HIGH_WATER);
            append(&r, out, olen);
            http_conn_output_done(&c);
            off += took;
        }
        start = stop;
    }
    r.closed = http_conn_should_close(&c);
    http_conn_free(&c);
    return r;
}

static result feed_whole(const http_conn_options *o, const char *in, size_t n) {
    return feed_pieces(o, in, n, NULL, 0);
}

/* Checks that every way of splitting in gives the output of feeding it whole (for a long
 * input, every 37th way: each split costs a whole run). */
static result check_splits(const http_conn_options *o, const char *in, size_t n) {
    result whole = feed_whole(o, in, n);
    for (size_t k = 1; k<n; k += n> 2048 ? 37 : 1) {
        result r = feed_pieces(o, in, n, &k, 1);
        CHECKF(r.len == whole.len && memcmp(r.out, whole.out, r.len) == 0 &&
                   r.closed == whole.closed,
               "split at %zu of %zu: got\n%s\nwhole gives\n%s", k, n, r.out, whole.out);
        free(r.out);
    }
    size_t *cuts = malloc((n + 1) * sizeof *cuts);
    CHECK(cuts != NULL);
    for (size_t k = 1; k < n; k++)
        cuts[k - 1] = k;
    result r = feed_pieces(o, in, n, cuts, n > 0 ? n - 1 : 0);
    CHECKF(r.len == whole.len && memcmp(r.out, whole.out, r.len) == 0 && r.closed == whole.closed,
           "byte by byte: got\n%s\nwhole gives\n%s", r.out, whole.out);
    free(r.out);
    free(cuts);
    return whole;
}

/* The 200 response to a request for path (its quoted form given), as bytes. */
static void ok_response(result *want, const char *quoted, const char *conn_header, int head) {
    char body[512], hdr[1024];
    snprintf(body, sizeof body, "Hello, %s", quoted);
    snprintf(hdr, sizeof hdr,
             "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
             "Content-Length: %zu\r\nDate: " DATE "\r\n%s\r\n",
             strlen(body), conn_header);
    append(want, hdr, strlen(hdr));
    if (!head)
        append(want, body, strlen(body));
}

#define OK(want, quoted) ok_response((want), (quoted), "", 0)
#define OK_CLOSE(want, quoted) ok_response((want), (quoted), "Connection: close\r\n", 0)

static void error_response(result *want, int status, const char *reason) {
    char buf[512];
    char body[128];
    snprintf(body, sizeof body, "%d %s", status, reason);
    snprintf(buf, sizeof buf,
             "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: "
             "%zu\r\nDate: " DATE "\r\nConnection: close\r\n\r\n%s",
             status, reason, strlen(body), body);
    append(want, buf, strlen(buf));
}

/* Runs in through check_splits and compares with want. */
static void expect_output(const char *what, const char *in, size_t n, const result *want,
                          int closed) {
    result got = check_splits(&opts, in, n);
    CHECKF(got.len == want->len && memcmp(got.out, want->out, got.len) == 0,
           "%s: got\n%s\n--- want\n%s", what, got.out, want->out);
    CHECKF(got.closed == closed, "%s: closed %d, want %d", what, got.closed, closed);
    free(got.out);
}

static void expect_str(const char *what, const char *in, const result *want, int closed) {
    expect_output(what, in, strlen(in), want, closed);
}

/* A request for target whose answer has the quoted path `quoted`. */
static void expect_path(const char *target, const char *quoted) {
    char req[512];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", target);
    result want = {NULL, 0, 0};
    append(&want, "", 0);
    OK(&want, quoted);
    expect_str(target, req, &want, 0);
    free(want.out);
}

static void expect_error(const char *what, const char *in, size_t n, int status,
                         const char *reason) {
    result want = {NULL, 0, 0};
    append(&want, "", 0);
    error_response(&want, status, reason);
    expect_output(what, in, n, &want, 1);
    free(want.out);
}

static void expect_400(const char *what, const char *in) {
    expect_error(what, in, strlen(in), 400, "Bad Request");
}

/* ---------------------------------------------------------------- cases */

static void test_basic(void) {
    result want = {NULL, 0, 0};
    append(&want, "", 0);
    OK(&want, "\"/\"");
    expect_str("simple GET", "GET / HTTP/1.1\r\nHost: localhost:8080\r\n\r\n", &want, 0);
    /* The exact bytes, once, without the helpers. */
    CHECK(strcmp(want.out, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
                           "Content-Length: 10\r\nDate: " DATE "\r\n\r\nHello, \"/\"") == 0);
    free(want.out);

    want = (result){NULL, 0, 0};
    append(&want, "", 0);
    ok_response(&want, "\"/index.html\"", "", 1);
    expect_str("HEAD", "HEAD /index.html HTTP/1.1\r\nHost: x\r\n\r\n", &want, 0);
    free(want.out);

    want = (result){NULL, 0, 0};
    append(&want, "", 0);
    OK_CLOSE(&want, "\"/bye\"");
    expect_str("Connection: close", "GET /bye HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
               &want, 1);
    free(want.out);

    want = (result){NULL, 0, 0};
    append(&want, "", 0);
    OK_CLOSE(&want, "\"/old\"");
    expect_str("HTTP/1.0 closes, no Host needed", "GET /old HTTP/1.0\r\n\r\n", &want, 1);
    free(want.out);

    want = (result){NULL, 0, 0};
    append(&want, "", 0);
    ok_response(&want, "\"/ka\"", "Connection: keep-alive\r\n", 0);
    expect_str("HTTP/1.0 keep-alive", "GET /ka HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &want,
               0);
    free(want.out);

    want = (result){NULL, 0, 0};
    append(&want, "", 0);
    OK(&want, "\"/up\"");
    OK(&want, "\"/next\"");
    expect_str("Upgrade ignored, HTTP goes on",
               "GET /up HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
               "GET /next HTTP/1.1\r\nHost: x\r\n\r\n",
               &want, 0);
    free(want.out);

    want = (result){NULL, 0, 0};
    append(&want, "", 0);
    OK_CLOSE(&want, "\"\"");
    expect_str("CONNECT: empty path, then close",
               "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\nxyz", &want, 1);
    free(want.out);
}

static void test_keepalive_and_pipelining(void) {
    /* Keep-alive: one connection, requests one after another, each answered at once. */
    http_conn c;
    http_conn_init(&c, &opts);
    CHECK(http_conn_idle(&c));
    for (int i = 0; i < 3; i++) {
        static const char req[] = "GET /again HTTP/1.1\r\nHost: x\r\n\r\n";
        CHECK_EQ(http_conn_feed(&c, req, 10), 10);
        CHECK(!http_conn_idle(&c) && http_conn_in_head(&c));
        size_t len;
        http_conn_output(&c, &len);
        CHECK_EQ(len, 0);
        CHECK_EQ(http_conn_feed(&c, req + 10, sizeof req - 11), sizeof req - 11);
        const char *out = http_conn_output(&c, &len);
        CHECK(len > 0 && strstr(out, "Hello, \"/again\"") != NULL);
        CHECK(http_conn_idle(&c) && !http_conn_should_close(&c));
        http_conn_output_done(&c);
    }
    CHECK_EQ(c.requests, 3);
    http_conn_free(&c);

    /* Pipelining: answers in request order, bodies of both kinds skipped. */
    result want = {NULL, 0, 0};
    append(&want, "", 0);
    OK(&want, "\"/1\"");
    OK(&want, "\"/2\"");
    OK(&want, "\"/3\"");
    OK(&want, "\"/4\"");
    ok_response(&want, "\"/5\"", "", 1);
    OK_CLOSE(&want, "\"/6\"");
    expect_str("pipelined, with bodies",
               "GET /1 HTTP/1.1\r\nHost: x\r\n\r\n"
               "POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nGET /x HTTP"
               "PUT /3 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               "5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nTrailer: t\r\n\r\n"
               "POST /4 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
               "HEAD /5 HTTP/1.1\r\nHost: x\r\n\r\n"
               "DELETE /6 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
               "GET /never HTTP/1.1\r\nHost: x\r\n\r\n",
               &want, 1);
    free(want.out);

    /* Expect: 100-continue is answered before the body. */
    want = (result){NULL, 0, 0};
    append(&want, "", 0);
    append(&want, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    OK(&want, "\"/up\"");
    expect_str(
        "100-continue",
        "POST /up HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\nabc",
        &want, 0);
    free(want.out);

    /* Many pipelined requests in one feed: the output is handed out in batches. */
    static const char one[] = "GET /p HTTP/1.1\r\nHost: x\r\n\r\n";
    size_t count = 3000, n = count * (sizeof one - 1);
    char *many = malloc(n);
    CHECK(many != NULL);
    for (size_t i = 0; i < count; i++)
        memcpy(many + i * (sizeof one - 1), one, sizeof one - 1);
    http_conn_init(&c, &opts);
    size_t off = 0, rounds = 0, total = 0;
    while (off < n) {
        off += http_conn_feed(&c, many + off, n - off);
        size_t len;
        http_conn_output(&c, &len);
        CHECK(len < HTTP_CONN_OUT_HIGH_WATER + 512);
        total += len;
        http_conn_output_done(&c);
        rounds++;
    }
    CHECK(rounds > 1);
    CHECK_EQ(c.requests, count);
    result single = feed_whole(&opts, one, sizeof one - 1);
    CHECK_EQ(total, count * single.len);
    free(single.out);
    http_conn_free(&c);
    free(many);
}

static void test_paths(void) {
    expect_path("/", "\"/\"");
    expect_path("/a/b.html?x=1&y=%zz", "\"/a/b.html\"");
    expect_path("/a%3Fb?c", "\"/a?b\"");
    expect_path("/q%22uote%5Cback", "\"/q\\\"uote\\\\back\"");
    expect_path("/sp%20ace+plus", "\"/sp ace+plus\"");
    expect_path("/%0A%0D%09%07%08%0C%0B", "\"/\\n\\r\\t\\a\\b\\f\\v\"");
    expect_path("/%00%1F%7F", "\"/\\x00\\x1f\\x7f\"");
    expect_path("/%C3%A9t%C3%A9", "\"/\xc3\xa9t\xc3\xa9\"");          /* printable: kept */
    expect_path("/%F0%9F%98%80", "\"/\xf0\x9f\x98\x80\"");            /* U+1F600 */
    expect_path("/%EF%BF%BD", "\"/\xef\xbf\xbd\"");                   /* U+FFFD itself */
    expect_path("/%C2%A0%C2%80%C2%AD", "\"/\\u00a0\\u0080\\u00ad\""); /* Zs, Cc, Cf */
    expect_path("/%E2%80%8B%EE%80%80", "\"/\\u200b\\ue000\"");        /* Cf, private use */
    expect_path("/%F4%8F%BF%BF%F3%A0%80%81", "\"/\\U0010ffff\\U000e0001\"");
    expect_path("/%FF%C3", "\"/\\xff\\xc3\"");                 /* invalid, truncated */
    expect_path("/%E0%80%80", "\"/\\xe0\\x80\\x80\"");         /* overlong */
    expect_path("/%ED%A0%80", "\"/\\xed\\xa0\\x80\"");         /* a surrogate */
    expect_path("/%F4%90%80%80", "\"/\\xf4\\x90\\x80\\x80\""); /* above U+10FFFF */
    expect_path("//double//slash", "\"//double//slash\"");
    expect_path("/frag#ment", "\"/frag#ment\"");
    expect_path("http://example.com/abs%20path?q", "\"/abs path\"");
    expect_path("http://example.com", "\"\"");
    expect_path("*", "\"*\"");

    /* Direct calls, including the count-only form. */
    char out[64];
    static const char in[] = "a\"\\\x01\xff\xe2\x80\x8b\xc3\xa9";
    size_t len = http_go_quote(in, sizeof in - 1, out);
    static const char q[] = "\"a\\\"\\\\\\x01\\xff\\u200b\xc3\xa9\"";
    CHECK_EQ(len, sizeof q - 1);
    CHECK(memcmp(out, q, len) == 0);
    CHECK_EQ(http_go_quote(in, sizeof in - 1, NULL), len);
    CHECK_EQ(http_go_quote("", 0, out), 2);
}

static void test_malformed(void) {
    expect_400("missing Host", "GET / HTTP/1.1\r\n\r\n");
    expect_400("two Host lines", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n");
    expect_400("bad Host", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n");
    expect_400("bad Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n");
    expect_400("negative Content-Length",
               "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n");
    expect_400("empty Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\n");
    expect_400("Content-Length list",
               "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc");
    expect_400("conflicting Content-Length",
               "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd");
    expect_400("Content-Length overflow",
               "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n");
    expect_400("Content-Length with Transfer-Encoding",
               "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: "
               "chunked\r\n\r\n0\r\n\r\n");
    expect_400("Transfer-Encoding not ending in chunked",
               "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n");
    expect_400("bad chunk size",
               "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
    expect_400("obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nX-Long: a\r\n b\r\n\r\n");
    expect_400("obs-fold, tab", "GET / HTTP/1.1\r\nHost: x\r\nX-Long: a\r\n\tb\r\n\r\n");
    expect_400("obs-fold of an empty value", "GET / HTTP/1.1\r\nHost: x\r\nX:\r\n \r\n\r\n");
    expect_400("space before the colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n");
    expect_400("empty field name", "GET / HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n");
    expect_400("bare LF", "GET / HTTP/1.1\nHost: x\n\n");
    expect_400("CTL in a value", "GET / HTTP/1.1\r\nHost: x\r\nX: a\x01\r\n\r\n");
    static const char nul[] = "GET / HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n";
    expect_error("NUL in a value", nul, sizeof nul - 1, 400, "Bad Request");
    expect_400("CR in a value", "GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n");
    expect_400("raw non-ASCII in the target", "GET /\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_400("space in the target", "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_400("bad %-escape", "GET /a%zz HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_400("truncated %-escape", "GET /a%4 HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_400("relative target", "GET a/b HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_400("bad version", "GET / HTTP/1.x\r\nHost: x\r\n\r\n");
    expect_400("not HTTP", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03");
    static const char h2[] = "GET / HTTP/2.0\r\nHost: x\r\n\r\n";
    expect_error("HTTP/2.0", h2, sizeof h2 - 1, 505, "HTTP Version Not Supported");
    static const char teapot[] =
        "PUT / HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\nContent-Length: 1\r\n\r\nz";
    expect_error("Expect other than 100-continue", teapot, sizeof teapot - 1, 417,
                 "Expectation Failed");

    /* After a 400 nothing else is parsed, even a valid request already received. */
    result want = {NULL, 0, 0};
    append(&want, "", 0);
    OK(&want, "\"/good\"");
    error_response(&want, 400, "Bad Request");
    expect_str("a good request, then a bad one, then a good one",
               "GET /good HTTP/1.1\r\nHost: x\r\n\r\nGET /bad HTTP/1.1\r\n\r\n"
               "GET /ignored HTTP/1.1\r\nHost: x\r\n\r\n",
               &want, 1);
    free(want.out);
}

static void test_header_limit(void) {
    /* The default limit: 16 KiB of request line and headers. */
    size_t big = HTTP_CONN_MAX_HEADER_BYTES + 100;
    char *req = malloc(big + 64);
    CHECK(req != NULL);
    int n = snprintf(req, big + 64, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(req + n, 'a', big - (size_t)n);
    memcpy(req + big, "\r\n\r\n", 4);
    expect_error("header over 16 KiB", req, big + 4, 431, "Request Header Fields Too Large");

    /* Exactly at the limit passes, one byte more does not (a small limit, to check every
     * split quickly). */
    http_conn_options small = {64, DATE};
    char at[128];
    int len = snprintf(at, sizeof at, "GET / HTTP/1.1\r\nHost: x\r\nX: ");
    while (len < 64 - 4)
        at[len++] = 'v';
    memcpy(at + len, "\r\n\r\n", 4);
    len += 4;
    CHECK_EQ(len, 64);
    result r = check_splits(&small, at, (size_t)len);
    CHECK(strstr(r.out, "200 OK") != NULL && !r.closed);
    free(r.out);
    memmove(at + 30, at + 29, (size_t)len - 29);
    r = check_splits(&small, at, (size_t)len + 1);
    CHECK(strstr(r.out, "431 Request Header Fields Too Large") != NULL && r.closed);
    free(r.out);

    /* A long body does not count against the limit. */
    char *post = malloc(100000);
    CHECK(post != NULL);
    int hl =
        snprintf(post, 100000, "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", 50000);
    memset(post + hl, 'b', 50000);
    r = feed_whole(&small, post, (size_t)hl + 50000);
    CHECK(strstr(r.out, "Hello, \"/b\"") != NULL && !r.closed);
    free(r.out);
    free(post);
    free(req);
}

static void test_drain_and_errors(void) {
    http_conn c;
    http_conn_init(&c, &opts);
    static const char req[] = "GET /last HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK_EQ(http_conn_feed(&c, req, 12), 12);
    http_conn_drain(&c);
    CHECK_EQ(http_conn_feed(&c, req + 12, sizeof req - 13), sizeof req - 13);
    size_t len;
    const char *out = http_conn_output(&c, &len);
    CHECK(strstr(out, "Connection: close\r\n") != NULL && http_conn_should_close(&c));
    http_conn_free(&c);

    char buf[256];
    size_t n = http_error_response(503, DATE, buf, sizeof buf);
    static const char want503[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; "
                                  "charset=utf-8\r\nContent-Length: 23\r\nDate: " DATE
                                  "\r\nConnection: close\r\n\r\n503 Service Unavailable";
    CHECK_EQ(n, sizeof want503 - 1);
    CHECK(memcmp(buf, want503, n) == 0);
    CHECK_EQ(http_error_response(299, DATE, buf, sizeof buf), 0);

    /* The real clock: an IMF-fixdate. */
    char buf_date[HTTP_DATE_SIZE];
    const char *d = http_date_now(buf_date);
    CHECK(d == buf_date);
    CHECK_EQ(strlen(d), 29);
    CHECK(d[3] == ',' && strcmp(d + 25, " GMT") == 0);
}

int main(void) {
    test_basic();
    test_keepalive_and_pipelining();
    test_paths();
    test_malformed();
    test_header_limit();
    test_drain_and_errors();
    return tu_pass("http_conn");
}
