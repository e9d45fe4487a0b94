/*
 * http_conn.h - the request handling of hello_server, without any I/O.
 *
 * One http_conn is the HTTP/1.1 state of one connection. The server feeds it the bytes it
 * reads, in whatever pieces they arrive, and writes out what it produces: the responses to
 * every complete request, in request order (pipelining), and a flag that says to close the
 * connection once they are written. Nothing here reads, writes, sleeps or knows about
 * goroutines, so a unit test or a fuzzer can drive it byte by byte (tests/http_conn.c,
 * tests/fuzz_http.c); hello_server adds the sockets, the deadlines and the shutdown.
 *
 * Every request is answered as Go's
 *
 *     http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
 *         fmt.Fprintf(w, "Hello, %q", r.URL.Path)
 *     })
 *
 * answers it: body `Hello, "<path>"`, the path percent-decoded as r.URL.Path is (query
 * excluded) and quoted by Go's %q rules; Content-Type text/plain; charset=utf-8,
 * Content-Length, Date. A HEAD response has the headers only.
 *
 * Parsing is llhttp's (strict mode), plus the checks of RFC 9112 it does not make: a
 * HTTP/1.1 request without Host, with several Host lines or a malformed one; obs-fold
 * (a header line continued on the next line); an empty field name; a request target that
 * is not origin-, absolute- or asterisk-form or holds a bad %-escape. Such a request, and
 * any request llhttp rejects (bad or conflicting Content-Length, Content-Length together
 * with Transfer-Encoding, invalid characters, bad chunked framing, ...), gets
 * `400 Bad Request` and the connection is closed. Headers longer than max_header_bytes
 * (request line included) get 431; a version other than 1.x gets 505; an Expect other
 * than 100-continue gets 417. Request bodies (Content-Length or chunked) are read and
 * discarded; `Expect: 100-continue` is answered with 100 Continue when there is a body.
 *
 * Connections are persistent as HTTP/1.1 says: kept open after a response unless the
 * request said `Connection: close`, or was HTTP/1.0 without `Connection: keep-alive`, or
 * was a CONNECT (a 2xx to CONNECT would announce a tunnel), or the server is draining.
 */
#ifndef GORO_EXAMPLES_HTTP_CONN_H
#define GORO_EXAMPLES_HTTP_CONN_H

#include <stddef.h>
#include <stdint.h>

#include <llhttp.h>

/* The default limit on the request line and headers of one request, CRLFs included. */
#define HTTP_CONN_MAX_HEADER_BYTES 16384
/* http_conn_feed stops taking bytes once this much output is waiting to be written. */
#define HTTP_CONN_OUT_HIGH_WATER 65536

/* A growable byte buffer. All-zero is empty. */
/* Bytes of a Date header value with its NUL ("Sun, 06 Nov 1994 08:49:37 GMT"), rounded
 * up to whole 8-byte words. */
#define HTTP_DATE_SIZE 32

typedef struct http_buf {
    char *data;
    size_t len, cap;
} http_buf;

typedef struct http_conn_options {
    size_t max_header_bytes; /* 0: HTTP_CONN_MAX_HEADER_BYTES */
    /* The Date header's value ("Sun, 06 Nov 1994 08:49:37 GMT"); NULL: the clock. Tests and
     * the fuzzer fix it so that outputs can be compared byte for byte. */
    const char *date;
} http_conn_options;

typedef struct http_conn {
    llhttp_t parser; /* its data field points back to this http_conn */
    http_buf out;    /* responses not yet taken by the caller */
    http_buf target; /* the request target, then the decoded path */
    size_t max_header_bytes;
    const char *date;
    size_t header_bytes; /* bytes of the current request's head fed so far */
    uint64_t requests;   /* requests answered (errors included) */
    /* Per-request state, reset when a message completes. */
    uint8_t in_body;     /* the head is complete; the body (if any) is being read */
    uint8_t event;       /* what made llhttp pause: HTTP_CONN_EV_* (http_conn.c) */
    uint8_t after_lf;    /* the last head byte seen was LF (obs-fold detection) */
    uint8_t obs_fold;    /* a header line began with SP or HTAB */
    uint8_t empty_field; /* a header line had an empty field name */
    uint8_t field;       /* which header the current line is: HTTP_CONN_FIELD_* */
    uint8_t field_len;   /* bytes of its name seen, saturating */
    char field_name[15]; /* its first bytes, lowercased */
    uint8_t hosts;       /* Host lines seen */
    uint8_t host_bad;    /* a Host value had a byte not allowed in a host */
    uint8_t expect_seen; /* an Expect line was seen (only the first one counts, as in Go) */
    uint8_t expect_len;  /* bytes of its value seen, saturating */
    char expect[22];     /* their first bytes, lowercased */
    uint8_t keep_alive;  /* llhttp_should_keep_alive at the end of the head */
    /* Connection state. */
    uint8_t draining; /* the next response is the last one (http_conn_drain) */
    uint8_t closing;  /* close once out is written; input is ignored from now on */
    uint8_t resume;   /* llhttp paused: run it on again, with zero bytes if need be */
    /* The clock's Date header value when date is NULL, for the response being built. */
    char date_buf[HTTP_DATE_SIZE];
} http_conn;

/* Prepares c (caller-allocated); opt may be NULL. Allocates nothing yet. */
void http_conn_init(http_conn *c, const http_conn_options *opt);
/* Frees what c holds. c may be initialised again afterwards. */
void http_conn_free(http_conn *c);

/*
 * Parses n bytes and appends the responses of the requests they complete to the output.
 * Returns the bytes it took: n, unless the output reached HTTP_CONN_OUT_HIGH_WATER first,
 * in which case the caller writes the output and feeds the rest again. Once the
 * connection is to be closed (http_conn_should_close) it takes and ignores every byte.
 */
size_t http_conn_feed(http_conn *c, const char *data, size_t n);

/* The output waiting to be written (len bytes at the returned pointer, NULL if none). */
static inline const char *http_conn_output(const http_conn *c, size_t *len) {
    *len = c->out.len;
    return c->out.data;
}
/* The caller wrote the output: forget it. */
static inline void http_conn_output_done(http_conn *c) {
    c->out.len = 0;
}
/* 1: close the connection once the output is written. */
static inline int http_conn_should_close(const http_conn *c) {
    return c->closing;
}
/* 1: between requests, no byte of the next request seen (a keep-alive wait). */
static inline int http_conn_idle(const http_conn *c) {
    return !c->in_body && c->header_bytes == 0 && !c->resume;
}
/* 1: inside the request line and headers of a request (the read-header timeout runs). */
static inline int http_conn_in_head(const http_conn *c) {
    return !c->in_body && (c->header_bytes > 0 || c->resume);
}

/* The server is shutting down: the response to the request in progress (or the next
 * one) says Connection: close and is the last. */
void http_conn_drain(http_conn *c);

/*
 * A complete response with the given status (e.g. 503) and its reason phrase as the
 * body, with Connection: close, written to buf (cap bytes, 256 is enough). Returns its
 * length, or 0 if it does not fit or the status has no reason phrase here.
 */
size_t http_error_response(int status, const char *date, char *buf, size_t cap);

/*
 * Appends s[0..n) quoted as Go's strconv.Quote (the %q verb) does to out, or, with out
 * NULL, only counts: returns the quoted length, quotes included (at most 4 * n + 2).
 * Printable runes are kept as they are; `"` and `\` are escaped; \a \b \f \n \r \t \v
 * have their short forms; other bytes below 0x80 and bytes of invalid UTF-8 become
 * \xNN; other non-printable runes \uNNNN or \UNNNNNNNN.
 */
size_t http_go_quote(const char *s, size_t n, char *out);

/* Writes the Date header value for the current second, NUL-terminated, into out (of
 * HTTP_DATE_SIZE bytes) and returns out. Formatted once a second per thread. */
const char *http_date_now(char *out);

#endif
