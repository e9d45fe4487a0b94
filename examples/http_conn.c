/*
 * http_conn.c - HTTP/1.1 request handling for hello_server, fed bytes, producing bytes.
 *
 * See http_conn.h for what it answers and when it closes. How it is built:
 *
 * llhttp parses; its callbacks only record what they see. Two of them pause the parser:
 * on_headers_complete and on_message_complete. llhttp_execute then returns HPE_PAUSED with
 * the exact position reached, so http_conn_feed knows, for every byte, whether it belonged
 * to a request head or not. That gives
 *  (I1) an exact count of head bytes (header_bytes), checked against max_header_bytes: a
 *       head is fed at most max_header_bytes - header_bytes bytes at a time, so a head
 *       longer than the limit is caught when the slice ends and the head has not;
 *  (I2) a place to validate the complete head (after_head) before its body is parsed,
 *       with the raw head bytes scanned for obs-fold on the way: llhttp's callbacks hand
 *       a folded value over in pieces that look like any value split across two reads;
 *  (I3) responses produced in request order, one per on_message_complete, and nothing
 *       parsed after a response that closes the connection (closing).
 * A pause at the very end of the input still has work queued inside llhttp (the message
 * of a body-less request completes on the next call, even a zero-length one), so after a
 * pause the parser is always run on once more (resume), with zero bytes if need be.
 *
 * The Date header is formatted once a second per thread (http_date_now) and the quoting
 * follows Go's strconv.Quote with the printable-rune table that Go itself uses
 * (http_isprint.h, generated from the Go toolchain by scripts/gen_isprint.go), so the
 * bodies are byte for byte those of bench/go/http.
 */
#include "http_conn.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http_isprint.h"

enum { HTTP_CONN_EV_NONE, HTTP_CONN_EV_HEAD, HTTP_CONN_EV_MESSAGE };
enum { HTTP_CONN_FIELD_OTHER, HTTP_CONN_FIELD_HOST, HTTP_CONN_FIELD_EXPECT };

/* ---------------------------------------------------------------- buffers */

/* Makes room for extra more bytes. 0, or -1 if out of memory. */
static int buf_reserve(http_buf *b, size_t extra) {
    if (b->cap - b->len >= extra)
        return 0;
    size_t cap = b->cap != 0 ? b->cap : 256;
    while (cap - b->len < extra)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (p == NULL)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

/* Appends without checking the room: the caller reserved it. */
static char *put(char *p, const char *s, size_t n) {
    memcpy(p, s, n);
    return p + n;
}
#define PUT_LIT(p, lit) put((p), (lit), sizeof(lit) - 1)

static char *put_uint(char *p, size_t v) {
    char tmp[24];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return put(p, tmp + i, sizeof tmp - i);
}

/* ---------------------------------------------------------------- Date */

/* The cache, per thread: no lock, since a thread only ever overwrites its own copy and
 * no goroutine parks in here, so the goroutines of one thread take turns. Relaxed atomics
 * all the same: a thread-local is shared by every goroutine that runs on the thread, and
 * goro's race build (like Go's memory model) orders goroutines only by what they do, not
 * by where they run. The caller gets a copy, which no other goroutine writes. */
static _Thread_local _Atomic int64_t cached_sec = -1;
static _Thread_local _Atomic uint64_t cached_text[HTTP_DATE_SIZE / 8];

const char *http_date_now(char *out) {
    uint64_t w[HTTP_DATE_SIZE / 8];
    char *text = (char *)w;
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct timespec ts;
    /* The coarse clock is read from the vDSO without a system call; a few ms of
     * granularity is nothing for a header with one-second resolution. */
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    if ((int64_t)ts.tv_sec != atomic_load_explicit(&cached_sec, memory_order_relaxed)) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        /* IMF-fixdate, RFC 9110 5.6.7: "Sun, 06 Nov 1994 08:49:37 GMT". Formatted by hand:
         * strftime's day and month names follow the locale. */
        char *p = text;
        p = put(p, days[tm.tm_wday], 3);
        p = PUT_LIT(p, ", ");
        *p++ = (char)('0' + tm.tm_mday / 10);
        *p++ = (char)('0' + tm.tm_mday % 10);
        *p++ = ' ';
        p = put(p, months[tm.tm_mon], 3);
        *p++ = ' ';
        int year = tm.tm_year + 1900;
        *p++ = (char)('0' + year / 1000 % 10);
        *p++ = (char)('0' + year / 100 % 10);
        *p++ = (char)('0' + year / 10 % 10);
        *p++ = (char)('0' + year % 10);
        *p++ = ' ';
        *p++ = (char)('0' + tm.tm_hour / 10);
        *p++ = (char)('0' + tm.tm_hour % 10);
        *p++ = ':';
        *p++ = (char)('0' + tm.tm_min / 10);
        *p++ = (char)('0' + tm.tm_min % 10);
        *p++ = ':';
        *p++ = (char)('0' + tm.tm_sec / 10);
        *p++ = (char)('0' + tm.tm_sec % 10);
        p = PUT_LIT(p, " GMT");
        *p = '\0';
        for (size_t i = 0; i < HTTP_DATE_SIZE / 8; i++)
            atomic_store_explicit(&cached_text[i], w[i], memory_order_relaxed);
        atomic_store_explicit(&cached_sec, (int64_t)ts.tv_sec, memory_order_relaxed);
    } else {
        for (size_t i = 0; i < HTTP_DATE_SIZE / 8; i++)
            w[i] = atomic_load_explicit(&cached_text[i], memory_order_relaxed);
    }
    memcpy(out, text, HTTP_DATE_SIZE);
    return out;
}

/* ---------------------------------------------------------------- Go's %q */

static int rune_printable(uint32_t r) {
    if (r < 0x80)
        return r >= 0x20 && r < 0x7f;
    size_t lo = 0, hi = sizeof http_isprint_ranges / sizeof http_isprint_ranges[0];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r < http_isprint_ranges[mid][0])
            hi = mid;
        else if (r > http_isprint_ranges[mid][1])
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

/*
 * Decodes the UTF-8 sequence at s (n > 0 bytes) as Go's utf8.DecodeRune does: returns its
 * length and the rune in *r, or 0 if the first byte does not start a valid sequence
 * (overlong forms, surrogates, values above U+10FFFF and truncated sequences included).
 */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *r) {
    unsigned char b = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf; /* the allowed range of the second byte */
    if (b < 0x80) {
        *r = b;
        return 1;
    } else if (b >= 0xc2 && b <= 0xdf) {
        len = 2;
        *r = b & 0x1fu;
    } else if (b >= 0xe0 && b <= 0xef) {
        len = 3;
        *r = b & 0x0fu;
        if (b == 0xe0)
            lo = 0xa0; /* no overlong forms */
        else if (b == 0xed)
            hi = 0x9f; /* no surrogates */
    } else if (b >= 0xf0 && b <= 0xf4) {
        len = 4;
        *r = b & 0x07u;
        if (b == 0xf0)
            lo = 0x90; /* no overlong forms */
        else if (b == 0xf4)
            hi = 0x8f; /* nothing above U+10FFFF */
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    *r = *r << 6 | (s[1] & 0x3fu);
    for (size_t i = 2; i < len; i++) {
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
        *r = *r << 6 | (s[i] & 0x3fu);
    }
    return len;
}

static const char hex_digits[] = "0123456789abcdef";

size_t http_go_quote(const char *s, size_t n, char *out) {
    const unsigned char *u = (const unsigned char *)s;
    size_t len = 0;
    char tmp[10];
#define EMIT(src, k)                                                                               \
    do {                                                                                           \
        if (out != NULL)                                                                           \
            memcpy(out + len, (src), (k));                                                         \
        len += (k);                                                                                \
    } while (0)
    EMIT("\"", 1);
    for (size_t i = 0; i < n;) {
        uint32_t r;
        size_t w = utf8_decode(u + i, n - i, &r);
        if (w == 0) { /* a byte of invalid UTF-8 */
            tmp[0] = '\\';
            tmp[1] = 'x';
            tmp[2] = hex_digits[u[i] >> 4];
            tmp[3] = hex_digits[u[i] & 15];
            EMIT(tmp, 4);
            i++;
            continue;
        }
        if (r == '"' || r == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)r;
            EMIT(tmp, 2);
        } else if (rune_printable(r)) {
            EMIT(s + i, w);
        } else {
            const char *esc = NULL;
            switch (r) {
            case '\a':
                esc = "\\a";
                break;
            case '\b':
                esc = "\\b";
                break;
            case '\f':
                esc = "\\f";
                break;
            case '\n':
                esc = "\\n";
                break;
            case '\r':
                esc = "\\r";
                break;
            case '\t':
                esc = "\\t";
                break;
            case '\v':
                esc = "\\v";
                break;
            default:
                break;
            }
            if (esc != NULL) {
                EMIT(esc, 2);
            } else {
                int digits = r < 0x80 ? 2 : r < 0x10000 ? 4 : 8;
                tmp[0] = '\\';
                tmp[1] = r < 0x80 ? 'x' : r < 0x10000 ? 'u' : 'U';
                for (int k = 0; k < digits; k++)
                    tmp[2 + k] = hex_digits[(r >> (4 * (digits - 1 - k))) & 15];
                EMIT(tmp, (size_t)(2 + digits));
            }
        }
        i += w;
    }
    EMIT("\"", 1);
#undef EMIT
    return len;
}

/* ---------------------------------------------------------------- request target */

static int hex_value(unsigned char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int is_alpha(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/*
 * Replaces the request target in b by r.URL.Path as Go's url.ParseRequestURI computes it:
 * "*" stays "*"; a scheme ("http:") starts an absolute URI whose authority ("//host")
 * is skipped and whose path may be empty; otherwise the target must start with '/'. The
 * query ('?' and after) is dropped, %XX escapes are decoded. isconnect: a CONNECT's
 * authority-form target ("host:port") has the empty path. Returns 0, or -1 for a target
 * Go rejects (400).
 */
static int target_to_path(http_buf *b, int isconnect) {
    unsigned char *s = (unsigned char *)b->data;
    size_t n = b->len;
    if (n == 1 && s[0] == '*')
        return 0;
    if (isconnect && (n == 0 || s[0] != '/')) {
        b->len = 0;
        return 0;
    }
    size_t start = 0, end = n;
    int scheme = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = s[i];
        if (is_alpha(ch))
            continue;
        if ((ch >= '0' && ch <= '9') || ch == '+' || ch == '-' || ch == '.') {
            if (i == 0)
                break;
            continue;
        }
        if (ch == ':') {
            if (i == 0)
                return -1; /* "missing protocol scheme" */
            scheme = 1;
            start = i + 1;
        }
        break;
    }
    for (size_t i = start; i < n; i++)
        if (s[i] == '?') {
            end = i;
            break;
        }
    if (start == end || s[start] != '/') {
        if (!scheme)
            return -1; /* "invalid URI for request" */
        b->len = 0;    /* an opaque URI: no path */
        return 0;
    }
    if (scheme && end - start >= 2 && s[start + 1] == '/') {
        size_t i = start + 2;
        while (i < end && s[i] != '/')
            i++;
        start = i;
    }
    size_t o = 0;
    for (size_t i = start; i < end; i++) {
        if (s[i] != '%') {
            s[o++] = s[i];
            continue;
        }
        if (end - i < 3)
            return -1;
        int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
        if (hi < 0 || lo < 0)
            return -1;
        s[o++] = (unsigned char)(hi << 4 | lo);
        i += 2;
    }
    b->len = o;
    return 0;
}

/* ---------------------------------------------------------------- responses */

static const char *reason_phrase(int status) {
    switch (status) {
    case 400:
        return "Bad Request";
    case 417:
        return "Expectation Failed";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return NULL;
    }
}

size_t http_error_response(int status, const char *date, char *buf, size_t cap) {
    const char *reason = reason_phrase(status);
    if (reason == NULL || cap < 256)
        return 0;
    size_t rlen = strlen(reason);
    char *p = buf;
    p = PUT_LIT(p, "HTTP/1.1 ");
    p = put_uint(p, (size_t)status);
    *p++ = ' ';
    p = put(p, reason, rlen);
    p = PUT_LIT(p, "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ");
    p = put_uint(p, rlen + 4);
    p = PUT_LIT(p, "\r\nDate: ");
    p = put(p, date, strlen(date));
    p = PUT_LIT(p, "\r\nConnection: close\r\n\r\n");
    p = put_uint(p, (size_t)status);
    *p++ = ' ';
    p = put(p, reason, rlen);
    return (size_t)(p - buf);
}

static const char *conn_date(http_conn *c) {
    return c->date != NULL ? c->date : http_date_now(c->date_buf);
}

/* Ends the connection with an error response: nothing is parsed after it. */
static void fail(http_conn *c, int status) {
    c->closing = 1;
    c->requests++;
    if (buf_reserve(&c->out, 256) != 0)
        return; /* out of memory: close without a word */
    c->out.len += http_error_response(status, conn_date(c), c->out.data + c->out.len, 256);
}

/* Appends the answer to the request just completed. */
static void respond(http_conn *c) {
    int head = llhttp_get_method(&c->parser) == HTTP_HEAD;
    int close = c->closing || !c->keep_alive || c->draining;
    size_t qlen = http_go_quote(c->target.data, c->target.len, NULL);
    size_t body_len = 7 + qlen; /* "Hello, " */
    const char *date = conn_date(c);
    size_t date_len = strlen(date);
    if (buf_reserve(&c->out, 160 + date_len + body_len) != 0) {
        c->closing = 1;
        return;
    }
    char *p = c->out.data + c->out.len;
    p = PUT_LIT(p, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
                   "Content-Length: ");
    p = put_uint(p, body_len);
    p = PUT_LIT(p, "\r\nDate: ");
    p = put(p, date, date_len);
    if (close)
        p = PUT_LIT(p, "\r\nConnection: close");
    else if (llhttp_get_http_minor(&c->parser) == 0)
        p = PUT_LIT(p, "\r\nConnection: keep-alive"); /* HTTP/1.0 keep-alive says so */
    p = PUT_LIT(p, "\r\n\r\n");
    if (!head) {
        p = PUT_LIT(p, "Hello, ");
        p += http_go_quote(c->target.data, c->target.len, p);
    }
    c->out.len = (size_t)(p - c->out.data);
    c->requests++;
    if (close)
        c->closing = 1;
}

/* ---------------------------------------------------------------- the head */

/* RFC 3986 host characters: unreserved, pct-encoded, sub-delims, ':' and IP-literal
 * brackets. */
static int host_byte_ok(unsigned char ch) {
    if (is_alpha(ch) || (ch >= '0' && ch <= '9'))
        return 1;
    return ch != '\0' && strchr("-._~%!$&'()*+,;=:[]", ch) != NULL;
}

/* Checks the complete head (I2). Returns 0, or the status of the error response. Queues
 * 100 Continue when the client waits for it. */
static int check_head(http_conn *c) {
    llhttp_t *p = &c->parser;
    if (llhttp_get_http_major(p) != 1)
        return 505;
    if (c->obs_fold || c->empty_field)
        return 400;
    if (c->hosts > 1 || c->host_bad || (c->hosts == 0 && llhttp_get_http_minor(p) >= 1))
        return 400;
    int isconnect = llhttp_get_method(p) == HTTP_CONNECT;
    if (target_to_path(&c->target, isconnect) != 0)
        return 400;
    c->keep_alive = (uint8_t)llhttp_should_keep_alive(p);
    /* RFC 9112 6.1: a Transfer-Encoding in a HTTP/1.0 message means faulty framing: the
     * message is processed and the connection closed. */
    if (isconnect || ((p->flags & F_TRANSFER_ENCODING) && llhttp_get_http_minor(p) == 0))
        c->keep_alive = 0;
    /* Go's rules: an empty Expect is no Expect; 100-continue is answered for a HTTP/1.1
     * request with a body (here before the body is read, since it is always read); any
     * other expectation fails. */
    if (c->expect_len > 0) {
        if (c->expect_len != 12 || memcmp(c->expect, "100-continue", 12) != 0)
            return 417;
        int body = (p->flags & F_CHUNKED) || ((p->flags & F_CONTENT_LENGTH) && p->content_length);
        if (body && llhttp_get_http_minor(p) >= 1) {
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            if (buf_reserve(&c->out, sizeof cont - 1) != 0)
                return 500;
            memcpy(c->out.data + c->out.len, cont, sizeof cont - 1);
            c->out.len += sizeof cont - 1;
        }
    }
    return 0;
}

/* Scans head bytes for a line that starts with SP or HTAB (obs-fold, RFC 9112 5.2). */
static void scan_head(http_conn *c, const char *p, size_t n) {
    const char *end = p + n;
    if (n > 0 && c->after_lf && (*p == ' ' || *p == '\t'))
        c->obs_fold = 1;
    for (;;) {
        const char *lf = memchr(p, '\n', (size_t)(end - p));
        if (lf == NULL)
            break;
        if (lf + 1 == end) {
            c->after_lf = 1;
            return;
        }
        if (lf[1] == ' ' || lf[1] == '\t')
            c->obs_fold = 1;
        p = lf + 1;
    }
    if (n > 0)
        c->after_lf = 0;
}

static void reset_request(http_conn *c) {
    c->target.len = 0;
    c->header_bytes = 0;
    c->in_body = 0;
    c->after_lf = 0;
    c->obs_fold = 0;
    c->empty_field = 0;
    c->field = HTTP_CONN_FIELD_OTHER;
    c->field_len = 0;
    c->hosts = 0;
    c->host_bad = 0;
    c->expect_seen = 0;
    c->expect_len = 0;
    c->keep_alive = 0;
}

/* ---------------------------------------------------------------- llhttp callbacks */

static http_conn *conn_of(llhttp_t *p) {
    return (http_conn *)p->data;
}

static int on_url(llhttp_t *p, const char *at, size_t n) {
    http_conn *c = conn_of(p);
    /* Bounded by max_header_bytes: the target is part of the head (I1). */
    if (buf_reserve(&c->target, n) != 0)
        return -1;
    memcpy(c->target.data + c->target.len, at, n);
    c->target.len += n;
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n) {
    http_conn *c = conn_of(p);
    for (size_t i = 0; i < n; i++) {
        if (c->field_len < sizeof c->field_name) {
            unsigned char ch = (unsigned char)at[i];
            c->field_name[c->field_len] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
        }
        if (c->field_len < UINT8_MAX)
            c->field_len++;
    }
    return 0;
}

static int on_header_field_complete(llhttp_t *p) {
    http_conn *c = conn_of(p);
    if (c->field_len == 0)
        c->empty_field = 1;
    if (c->field_len == 4 && memcmp(c->field_name, "host", 4) == 0) {
        c->field = HTTP_CONN_FIELD_HOST;
        if (c->hosts < UINT8_MAX)
            c->hosts++;
    } else if (c->field_len == 6 && memcmp(c->field_name, "expect", 6) == 0 && !c->expect_seen) {
        c->field = HTTP_CONN_FIELD_EXPECT;
        c->expect_seen = 1;
    } else {
        c->field = HTTP_CONN_FIELD_OTHER;
    }
    c->field_len = 0;
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n) {
    http_conn *c = conn_of(p);
    if (c->field == HTTP_CONN_FIELD_HOST) {
        for (size_t i = 0; i < n; i++)
            if (!host_byte_ok((unsigned char)at[i]))
                c->host_bad = 1;
    } else if (c->field == HTTP_CONN_FIELD_EXPECT) {
        for (size_t i = 0; i < n; i++) {
            unsigned char ch = (unsigned char)at[i];
            if (c->expect_len < sizeof c->expect)
                c->expect[c->expect_len] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
            if (c->expect_len < UINT8_MAX)
                c->expect_len++;
        }
    }
    return 0;
}

static int on_header_value_complete(llhttp_t *p) {
    http_conn *c = conn_of(p);
    /* llhttp leaves trailing whitespace in the value; "Expect: 100-continue " is fine. */
    if (c->field == HTTP_CONN_FIELD_EXPECT)
        while (c->expect_len > 0 && c->expect_len <= sizeof c->expect &&
               (c->expect[c->expect_len - 1] == ' ' || c->expect[c->expect_len - 1] == '\t'))
            c->expect_len--;
    c->field = HTTP_CONN_FIELD_OTHER;
    return 0;
}

static int on_headers_complete(llhttp_t *p) {
    conn_of(p)->event = HTTP_CONN_EV_HEAD;
    return HPE_PAUSED;
}

static int on_message_complete(llhttp_t *p) {
    conn_of(p)->event = HTTP_CONN_EV_MESSAGE;
    return HPE_PAUSED;
}

static const llhttp_settings_t parser_settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_message_complete = on_message_complete,
};

/* ---------------------------------------------------------------- the connection */

void http_conn_init(http_conn *c, const http_conn_options *opt) {
    memset(c, 0, sizeof *c);
    llhttp_init(&c->parser, HTTP_REQUEST, &parser_settings);
    c->parser.data = c;
    c->max_header_bytes = HTTP_CONN_MAX_HEADER_BYTES;
    if (opt != NULL) {
        if (opt->max_header_bytes != 0)
            c->max_header_bytes = opt->max_header_bytes;
        c->date = opt->date;
    }
    reset_request(c);
}

void http_conn_free(http_conn *c) {
    free(c->out.data);
    free(c->target.data);
    memset(c, 0, sizeof *c);
}

void http_conn_drain(http_conn *c) {
    c->draining = 1;
}

size_t http_conn_feed(http_conn *c, const char *data, size_t n) {
    const char *p = data, *end = data + n;
    while (!c->closing) {
        size_t avail = (size_t)(end - p);
        if (avail == 0 && !c->resume)
            break;
        /* Stop for the caller to write, but never with a pause pending at the end of the
         * input: the response it would produce would wait for the next read. */
        if (c->out.len >= HTTP_CONN_OUT_HIGH_WATER && avail > 0)
            return (size_t)(p - data);
        int in_head = !c->in_body;
        size_t len = avail;
        if (in_head && len > c->max_header_bytes - c->header_bytes)
            len = c->max_header_bytes - c->header_bytes; /* (I1) */
        c->resume = 0;
        c->event = HTTP_CONN_EV_NONE;
        llhttp_errno_t err = llhttp_execute(&c->parser, p, len);
        size_t used = len;
        if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE || err == HPE_PAUSED_H2_UPGRADE)
            used = (size_t)(llhttp_get_error_pos(&c->parser) - p);
        if (in_head) {
            scan_head(c, p, used);
            c->header_bytes += used;
        }
        p += used;
        switch (err) {
        case HPE_OK:
            if (in_head && c->header_bytes >= c->max_header_bytes)
                fail(c, 431);
            continue;
        case HPE_PAUSED:
            llhttp_resume(&c->parser);
            c->resume = 1;
            break;
        case HPE_PAUSED_UPGRADE:
            /* An Upgrade request was answered as any other (no 101), so what follows is
             * HTTP again (RFC 9110 7.8). CONNECT closes in respond(). */
            llhttp_resume_after_upgrade(&c->parser);
            c->resume = 1;
            continue;
        case HPE_PAUSED_H2_UPGRADE: /* the HTTP/2 preface "PRI * HTTP/2.0" */
            fail(c, 505);
            continue;
        default:
            fail(c, 400);
            continue;
        }
        if (c->event == HTTP_CONN_EV_HEAD) {
            int status = check_head(c);
            if (status != 0) {
                fail(c, status);
                continue;
            }
            c->in_body = 1;
        } else if (c->event == HTTP_CONN_EV_MESSAGE) {
            respond(c);
            reset_request(c);
        }
    }
    return n;
}
