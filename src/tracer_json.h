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

/* One event; a payload of len bytes follows it, padded to 8. */
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
} goro__trace_clock;

/* Merges the n streams by timestamp and writes the trace-event JSON to fd. dropped: events
 * lost for want of memory, reported in the file. Returns 0 or -errno. */
int goro__trace_write_json(int fd, const goro__trace_stream *streams, int n,
                           const goro__trace_clock *clock, uint64_t dropped);

#endif
