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

/* A record's goroutine word (the g field of a full record, the high bits of a compact one):
 * the goroutine's id, mod 2^40, in bits 8-47, and in bits 48-63 its generation (mod 2^16)
 * when the event happened: the runtime keeps this word ready-made in the descriptor
 * (goro__gword in runtime.h), so a record costs no shift. The generation is the number of times it
 * started running or returned from a blocking call, counted up by those events (a start or a return
 * records the count it found). The writer applies a goroutine's events in the order of their
 * generations and states (tracer_json.c J2), whatever their times say. Ids past 2^40 are shown mod
 * 2^40 (then two live goroutines 2^40 spawns apart would share a track). Bits 0-7 are 0. */
#define GORO__TRACE_GID_BITS 40
#define GORO__TRACE_GID_MASK ((UINT64_C(1) << GORO__TRACE_GID_BITS) - 1)
#define GORO__TRACE_GG(gid, gen)                                                                   \
    (((uint64_t)(gid)&GORO__TRACE_GID_MASK) << 8 | (uint64_t)(uint16_t)(gen) << 48)
#define GORO__TRACE_GG_GID(w) ((w) >> 8 & GORO__TRACE_GID_MASK)
#define GORO__TRACE_GG_GEN(w) ((uint16_t)((w) >> 48))

/* A compact record (tracer.h's fast path): this one word, bit 0 set, the type in bits 1-2
 * (GORO__EV_GO_START, STOP, BLOCK or UNBLOCK, less GORO__EV_GO_START), the reason (a block's
 * wait reason, a stop's why, below 32 (tracer.h), so a variable one is one lea) in 3-7, the
 * goroutine word above: the descriptor's word (gg)
 * and one OR of a small constant. Not stamped: the writer
 * interpolates its time (tracer.c R7). Stamped (the slow path), it follows a word holding its
 * timestamp: a full record's first word is a timestamp too, but its second a goroutine word,
 * and timestamps and goroutine words are even. Its P is the stream's, its M the one of the
 * stream's last proc start, and an unblock's waker the goroutine running on the P then. */
#define GORO__TRACE_COMPACT UINT64_C(1)
#define GORO__TRACE_WORD(type, reason, gg)                                                         \
    ((uint64_t)(gg) |                                                                              \
     (uint64_t)((uint32_t)(reason)*8 + (uint32_t)(((type)-GORO__EV_GO_START) << 1 | 1)))
#define GORO__TRACE_WORD_TYPE(w) (GORO__EV_GO_START + (int)((w) >> 1 & 3))
#define GORO__TRACE_WORD_REASON(w) ((uint8_t)((w) >> 3 & 31))
#define GORO__TRACE_WORD_GG(w) ((w) & ~(uint64_t)0xff)

/* One full event; a payload of len bytes follows it, padded to 8. */
typedef struct goro__trace_ev {
    uint64_t ts;    /* clock ticks, even (tracer.c, R3) */
    uint64_t g;     /* goroutine word (GORO__TRACE_GG), 0 if none */
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
        return 16; /* a stamp, and the compact record it stamps */
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
