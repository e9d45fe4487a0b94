/*
 * tracer_json.h - the tracer's recorded format (what tracer.c writes into its buffers)
 * and the writer that turns it into Chrome/Perfetto trace-event JSON (tracer_json.c).
 */
#ifndef GORO_TRACER_JSON_H
#define GORO_TRACER_JSON_H

#include <stdbool.h>
#include <stdint.h>

#define GORO__TRACE_NONE16 0xffffu
/* Longest name or message kept (bytes, the terminator included); longer ones are cut. */
#define GORO__TRACE_NAME_MAX 128

/* A compact record (tracer.h's fast path): this one word, bit 63 set, type in bits 56-62,
 * reason in 48-55, goroutine id in 0-47. Not stamped: the writer interpolates its time
 * (tracer.c R7). Stamped (the slow path), it follows a word holding its timestamp: a full
 * record's first word is a timestamp too, but its second a goroutine id, below 2^63. Its P is the
 * stream's, its M the one of the stream's last proc start, and an unblock's waker the goroutine
 * running on the P then. */
#define GORO__TRACE_COMPACT (UINT64_C(1) << 63)
#define GORO__TRACE_GID_MASK ((UINT64_C(1) << 48) - 1)
#define GORO__TRACE_WORD(type, reason, gid)                                                        \
    (GORO__TRACE_COMPACT | (uint64_t)(type) << 56 | (uint64_t)(uint8_t)(reason) << 48 |            \
     ((uint64_t)(gid)&GORO__TRACE_GID_MASK))

/* One full event; a payload of len bytes follows it, padded to 8. */
typedef struct goro__trace_ev {
    uint64_t ts;    /* clock ticks (tracer.c, R3) */
    uint64_t g;     /* goroutine id, 0 if none */
    uint64_t arg;   /* per type (tracer.h) */
    uint8_t type;   /* GORO__EV_* */
    uint8_t reason; /* per type */
    uint16_t len;   /* payload bytes */
    int16_t p;      /* the P it happened on, -1 if none */
    uint16_t m;     /* the M, GORO__TRACE_NONE16 if none */
} goro__trace_ev;
_Static_assert(sizeof(goro__trace_ev) == 32, "trace events are 32 bytes");

/* The bytes of the record (full, compact or stamped compact) at r. */
static inline size_t goro__trace_rec_size(const char *r) {
    const goro__trace_ev *e = (const goro__trace_ev *)(const void *)r;
    if (e->ts & GORO__TRACE_COMPACT)
        return 8;
    if (e->g & GORO__TRACE_COMPACT)
        return 16;
    return sizeof *e + (((size_t)e->len + 7) & ~(size_t)7);
}

#define GORO__TRACE_CHUNK (64 * 1024)
#define GORO__TRACE_CHUNK_DATA (GORO__TRACE_CHUNK - 64)

typedef struct goro__trace_chunk {
    struct goro__trace_chunk *next;
    uint32_t used; /* bytes of data in use */
    int16_t p;
    char data[] __attribute__((aligned(8)));
} goro__trace_chunk;

/* A stream: a list of chunks written in timestamp order. */
typedef struct goro__trace_stream {
    goro__trace_chunk *head;
    int p; /* -1: the global stream */
} goro__trace_stream;

/* Ticks to nanoseconds: two readings of both clocks, at start and stop. */
typedef struct goro__trace_clock {
    bool counter; /* ticks are the CPU counter; else they are nanoseconds already */
    uint64_t ticks0, ticks1;
    int64_t ns0, ns1;
    int64_t tick_ns; /* the ticker's period (tracer.c, R7) */
} goro__trace_clock;

/* Merges the n streams by timestamp and writes the trace-event JSON to fd. dropped: events
 * lost for want of memory, reported in the file. Returns 0 or -errno. */
int goro__trace_write_json(int fd, const goro__trace_stream *streams, int n,
                           const goro__trace_clock *clock, uint64_t dropped);

#endif
