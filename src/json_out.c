/*
 * json_out.c - a buffered writer of JSON text to a file descriptor: raw bytes, decimal
 * integers, printf output (for the rare lines), escaped strings and microsecond
 * timestamps. The tracer's output (tracer_json.c)
 * is its only user; it is apart so that file is about the trace, not about bytes.
 *
 * Strings: quotes and backslashes are escaped, control characters written as \u00XX,
 * and any byte that does not start a valid UTF-8 sequence (overlong forms and surrogates
 * included) as U+FFFD, one per byte, so the file is valid JSON whatever the program
 * passed in.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "json_out.h"

void goro__jout_flush(goro__jout *o) {
    size_t off = 0;
    while (off < o->n && !o->err) {
        ssize_t w = write(o->fd, o->buf + off, o->n - off);
        if (w < 0 && errno != EINTR)
            o->err = -errno;
        else if (w > 0)
            off += (size_t)w;
    }
    o->n = 0;
}

void goro__jout_mem_slow(goro__jout *o, const char *s, size_t len) {
    if (o->n + len > sizeof o->buf)
        goro__jout_flush(o);
    if (len > sizeof o->buf) {
        o->n = 0;
        while (len) { /* larger than the buffer: through it in pieces */
            size_t k = len < sizeof o->buf ? len : sizeof o->buf;
            memcpy(o->buf, s, k);
            o->n = k;
            goro__jout_flush(o);
            s += k;
            len -= k;
        }
        return;
    }
    memcpy(o->buf + o->n, s, len);
    o->n += len;
}

void goro__jout_fmt(goro__jout *o, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k < 0)
        return;
    goro__jout_mem(o, tmp, (size_t)k < sizeof tmp ? (size_t)k : sizeof tmp - 1);
}

void goro__jout_u64(goro__jout *o, unsigned long long v) {
    char tmp[24];
    int k = (int)sizeof tmp;
    do
        tmp[--k] = (char)('0' + v % 10);
    while (v /= 10);
    goro__jout_mem(o, tmp + k, sizeof tmp - (size_t)k);
}

void goro__jout_i64(goro__jout *o, long long v) {
    if (v < 0) {
        GORO__JOUT_LIT(o, "-");
        goro__jout_u64(o, 0ULL - (unsigned long long)v);
    } else {
        goro__jout_u64(o, (unsigned long long)v);
    }
}

/* The length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t k;
    unsigned min;
    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0)
        k = 2, min = 0x80;
    else if ((c & 0xf0) == 0xe0)
        k = 3, min = 0x800;
    else if ((c & 0xf8) == 0xf0)
        k = 4, min = 0x10000;
    else
        return 0;
    if (k > n)
        return 0;
    unsigned cp = c & (0x7f >> k);
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return k;
}

void goro__jout_esc(goro__jout *o, const char *s, size_t len) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        unsigned char c = u[i];
        size_t run = i;
        while (run < len && u[run] >= 0x20 && u[run] < 0x7f && u[run] != '"' && u[run] != '\\')
            run++;
        if (run > i) { /* printable ASCII that needs no escape, in one copy */
            goro__jout_mem(o, s + i, run - i);
            i = run;
            continue;
        }
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            goro__jout_mem(o, esc, 2);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            goro__jout_fmt(o, "\\u%04x", c);
            i++;
        } else {
            size_t k = utf8_len(u + i, len - i);
            if (k == 0) {
                GORO__JOUT_LIT(o, "\\ufffd");
                i++;
            } else {
                goro__jout_mem(o, s + i, k);
                i += k;
            }
        }
    }
}

void goro__jout_str(goro__jout *o, const char *s, size_t len) {
    GORO__JOUT_LIT(o, "\"");
    goro__jout_esc(o, s, len);
    GORO__JOUT_LIT(o, "\"");
}

void goro__jout_cstr(goro__jout *o, const char *s) {
    goro__jout_str(o, s, strlen(s));
}

/* Writes ns as microseconds with three decimals (the file's unit), without printf's
 * floating-point code, which took half of the writing time. */
void goro__jout_us(goro__jout *o, double ns) {
    unsigned long long v = ns > 0 ? (unsigned long long)(ns + 0.5) : 0;
    char tmp[32];
    int k = (int)sizeof tmp;
    for (int i = 0; i < 3; i++, v /= 10)
        tmp[--k] = (char)('0' + v % 10);
    tmp[--k] = '.';
    do
        tmp[--k] = (char)('0' + v % 10);
    while (v /= 10);
    goro__jout_mem(o, tmp + k, sizeof tmp - (size_t)k);
}
