/*
 * json_out.h - a buffered writer of JSON text to a file descriptor (json_out.c), for the
 * tracer's output (tracer_json.c).
 */
#ifndef GORO_JSON_OUT_H
#define GORO_JSON_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

typedef struct goro__jout {
    int fd;
    int err; /* first write error, -errno */
    size_t n;
    bool first; /* no event written yet (no comma) */
    char buf[1 << 16];
} goro__jout;

/* Writes what is buffered; the first error stays in o->err. */
void goro__jout_flush(goro__jout *o);
/* Appends len bytes, any length (through the buffer in pieces). */
void goro__jout_mem_slow(goro__jout *o, const char *s, size_t len);
/* Appends len bytes. Inline: a trace's file is mostly short appends (a converted ping-pong
 * trace makes ~40 per event), and with a constant len the copy is a move or two. */
static inline void goro__jout_mem(goro__jout *o, const char *s, size_t len) {
    if (__builtin_expect(o->n + len <= sizeof o->buf, 1)) {
        memcpy(o->buf + o->n, s, len);
        o->n += len;
    } else {
        goro__jout_mem_slow(o, s, len);
    }
}
/* Appends a string literal. */
#define GORO__JOUT_LIT(o, lit) goro__jout_mem((o), (lit), sizeof(lit) - 1)
/* Appends v in decimal, without printf (whose parsing of the format cost more than the
 * rest of an event's writing). */
void goro__jout_u64(goro__jout *o, unsigned long long v);
void goro__jout_i64(goro__jout *o, long long v);
/* Appends printf output (at most 511 bytes). */
void goro__jout_fmt(goro__jout *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s (len bytes, no terminator needed) as a JSON string, quotes included: control
 * characters, quotes and backslashes escaped, bytes that are not valid UTF-8 as U+FFFD. */
void goro__jout_str(goro__jout *o, const char *s, size_t len);
/* The same without the quotes: s as part of a string being written. */
void goro__jout_esc(goro__jout *o, const char *s, size_t len);
void goro__jout_cstr(goro__jout *o, const char *s);
/* Appends ns as microseconds with three decimals, without printf's floating-point code,
 * which took half of the tracer's writing time. */
void goro__jout_us(goro__jout *o, double ns);

#endif
