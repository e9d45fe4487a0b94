/*
 * debugenv.c - GORO_DEBUG: the runtime's debugging settings (Go's GODEBUG), read from
 * the environment once per goro_run.
 *
 * The variable is a comma-separated list of key=value pairs, e.g.
 * GORO_DEBUG=schedtrace=100,scheddetail=1. Each known key has a row in `keys` below:
 * its name, the range of its integer value, and where the value goes in goro__debug.
 * A new setting is a field in goro__debug_vars and a row here. deterministic=SEED
 * (replay.c) turns schedtrace off: the monitor thread that writes its lines does not run
 * in that mode.
 *
 * Settings are debugging aids, so a mistake in them must not stop the program: an
 * unknown key, a missing '=' or a value out of range prints one warning line on stderr
 * ("goro: GORO_DEBUG: ...") and is ignored, as Go does with GODEBUG. The program runs
 * with the other settings.
 *
 * goro__debug is [init-only]: written by goro_run before any other runtime thread
 * exists, read-only afterwards, reset at every goro_run.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

goro__debug_vars goro__debug;

typedef struct debug_key {
    const char *name;
    int64_t min, max;
    int64_t *dst;
} debug_key;

/* The decimal integer s[0..n) if it lies in [min, max]. */
static bool parse_int(const char *s, size_t n, int64_t min, int64_t max, int64_t *out) {
    char val[32];
    if (n == 0 || n >= sizeof val)
        return false;
    memcpy(val, s, n);
    val[n] = '\0';
    char *end;
    errno = 0;
    long long v = strtoll(val, &end, 10);
    if (*end || errno || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static void warn(const char *what, const char *item, size_t n) {
    goro__out(2, "goro: GORO_DEBUG: %s \"%.*s\" (ignored)\n", what, (int)n, item);
}

void goro__debug_parse(void) {
    memset(&goro__debug, 0, sizeof goro__debug);
    goro__debug.start = goro__nanotime();
    const debug_key keys[] = {
        /* Milliseconds between two schedtrace lines (schedtrace.c); 0: off. */
        {"schedtrace", 0, 3600 * 1000, &goro__debug.schedtrace_ms},
        /* With schedtrace: a line per P, per M and per goroutine as well. */
        {"scheddetail", 0, 1, &goro__debug.scheddetail},
        /* Deterministic mode's seed (replay.c); 0: off. */
        {"deterministic", 0, INT64_MAX, &goro__debug.deterministic},
    };
    const char *s = getenv("GORO_DEBUG");
    if (!s)
        return;
    while (*s) {
        size_t n = strcspn(s, ",");
        const char *eq = memchr(s, '=', n);
        if (n == 0) {
            s++;
            continue;
        }
        if (!eq) {
            warn("no value in", s, n);
        } else {
            size_t klen = (size_t)(eq - s);
            const debug_key *k = NULL;
            for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
                if (strlen(keys[i].name) == klen && memcmp(keys[i].name, s, klen) == 0)
                    k = &keys[i];
            if (!k) {
                warn("unknown key", s, klen);
            } else if (!parse_int(eq + 1, n - klen - 1, k->min, k->max, k->dst)) {
                warn("bad value in", s, n);
            }
        }
        s += n;
        if (*s == ',')
            s++;
    }
    if (goro__debug.deterministic && goro__debug.schedtrace_ms) {
        /* Its lines come from the monitor thread, which deterministic mode does not run. */
        goro__out(2, "goro: GORO_DEBUG: schedtrace is off in deterministic mode (ignored)\n");
        goro__debug.schedtrace_ms = 0;
    }
}
