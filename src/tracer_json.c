/*
 * tracer_json.c - turns the tracer's recorded streams into the Chrome/Perfetto
 * trace-event JSON format ({"traceEvents":[...]}), which ui.perfetto.dev and
 * chrome://tracing open.
 *
 * The streams (one per P, one global; tracer.c) are each sorted by time (R3 there); a
 * k-way merge over a binary heap feeds their events in time order to a state machine
 * that knows, for each goroutine, its state since when and the P it runs on, and for each
 * P the goroutine and the M it has. A state ends in a complete ("X") slice with its
 * duration; so every slice is written once it is known, and no begin/end pair can be
 * mis-nested by a viewer that sorts equal timestamps its own way.
 *
 * Tracks (pid / tid in the file):
 *   1 "Procs"      tid 2p: P p, a slice per goroutine run ("G7 worker"), blocking calls
 *                  ("G7 syscall"), instants for timers; tid 2p+1: the M holding P p.
 *   2 "Goroutines" tid = goroutine id: "runnable", "running", "blocked: <reason>" and
 *                  "syscall" slices; "create" and "end" instants; log messages; flow
 *                  arrows ("wake") from the goroutine that readied it.
 *   3 "Regions"    tid = goroutine id: goro_trace_region_begin/end slices (their own
 *                  track: a region spans blocks and runs, which would not nest).
 *   4 "Runtime"    tid 0: events with neither P nor goroutine.
 *   5 "Tasks"      one async slice ("b" / "e", cat "task", id = the task's) per
 *                  goro_trace_task_begin/end, whichever goroutines call them; the
 *                  regions and logs of a task name it in their args ("task").
 *
 * Invariants.
 *  (J1) The writer checks the order of every goroutine's events (tracer.h's grammar) and
 *       counts what breaks it in "otherData": "anomalies", with the first few described.
 *       A correct runtime writes 0; the tests check it.
 *  (J2) The merge orders by causality first, by time second. Most events of the hot
 *       paths carry no timestamp of their own (tracer.c R7): each stream's unstamped
 *       records get times interpolated between the stamped ones around them, so by time
 *       alone a start could come before the wake-up that made its goroutine runnable on
 *       another P, or before its create. Every event that names a goroutine carries the
 *       goroutine's generation (tracer_json.h): how many times it had started or returned
 *       from a blocking call. Within one generation a goroutine passes through each state
 *       at most once (running, then blocked, runnable or in a call, then runnable), so its
 *       generation and state say exactly which of its events comes next. The merge takes
 *       the earliest of the streams' next events; one that is not its goroutine's next
 *       (allowed() is false) holds its stream back (stalled) until the event before it,
 *       on another stream, has been applied. This cannot deadlock: the order in which the
 *       runtime recorded the events is one that respects both each stream's order and
 *       each goroutine's, so some stream's next event is always allowed. (An earlier
 *       version held streams back by state alone: two streams' starts of one goroutine
 *       could both look allowed, the wrong one went first, and the streams then waited
 *       on each other.) Only lost events (R4 there) can leave every stream waiting: then
 *       the earliest goes anyway, as an anomaly. Times: an event is written at its own
 *       time, raised to the time of its stream's last event and of its goroutine's last
 *       event, so a held event comes at or after the one it waited for, and times never
 *       go back on a stream, a goroutine's track or a P's tracks. "reordered_starts"
 *       counts the events that waited.
 *  (J3) A compact record (tracer_json.h) names neither its P nor its M nor a waker: the
 *       P is the stream's, the M the one of the stream's last full record (every owner
 *       change of a P starts with a full proc start), and an unblock's waker the
 *       goroutine running on the P when it is applied.
 *
 * Strings from the program (goroutine names, regions, log messages) are escaped for JSON
 * by json_out.c; bytes that are not valid UTF-8 become U+FFFD.
 */
#define _GNU_SOURCE 1
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "json_out.h"
#include "tracer.h"
#include "tracer_json.h"

enum { PID_PROCS = 1, PID_GOROUTINES = 2, PID_REGIONS = 3, PID_RUNTIME = 4, PID_TASKS = 5 };
enum { S_NONE = 0, S_RUNNABLE, S_RUNNING, S_BLOCKED, S_SYSCALL };
#define MAX_REGIONS 32
#define MAX_SAMPLES 8
#define GORO__TRACE_WAKER_P UINT64_MAX /* (J3) the waker is the P's goroutine */

/* Starts an event object: {"ph":..,"pid":..,"tid":..,"ts":.. and leaves it open. */
static void ev_open(goro__jout *o, char ph, int pid, uint64_t tid, double ts_ns) {
    char head[] = ",\n{\"ph\":\"?\",\"pid\":";
    head[sizeof head - 10] = ph;
    if (o->first)
        goro__jout_mem(o, head + 1, sizeof head - 2);
    else
        goro__jout_mem(o, head, sizeof head - 1);
    goro__jout_i64(o, pid);
    GORO__JOUT_LIT(o, ",\"tid\":");
    goro__jout_u64(o, (unsigned long long)tid);
    GORO__JOUT_LIT(o, ",\"ts\":");
    goro__jout_us(o, ts_ns);
    o->first = false;
}

static void meta_name(goro__jout *o, const char *what, int pid, uint64_t tid, const char *name,
                      size_t len) {
    ev_open(o, 'M', pid, tid, 0);
    goro__jout_fmt(o, ",\"name\":\"%s\",\"args\":{\"name\":", what);
    goro__jout_str(o, name, len);
    GORO__JOUT_LIT(o, "}}");
}

static void meta_sort(goro__jout *o, const char *what, int pid, uint64_t tid, long long idx) {
    ev_open(o, 'M', pid, tid, 0);
    goro__jout_fmt(o, ",\"name\":\"%s\",\"args\":{\"sort_index\":%lld}}", what, idx);
}

/* ------------------------------------------------------------------ state */

typedef struct gst {
    uint64_t id; /* 0: empty slot; the id mod 2^40 (tracer_json.h) */
    uint8_t state, reason;
    uint16_t gen;       /* its generation now (tracer_json.h): its next event's must match */
    double lastt;       /* the time of its last event: its times never go back (J2) */
    bool insyscall;     /* entered a blocking call and lost its P: the exit is pending */
    bool regions_named; /* its Regions track has a name */
    int16_t p;          /* the P whose track shows it now, -1 */
    bool p_syscall;     /* that slice is a blocking call */
    const char *name;   /* in a chunk's payload, not terminated */
    uint16_t namelen;
    double since, psince;
    uint64_t flow; /* a wake arrow waiting for its next start, 0 if none */
    int nregions;
    const char *rname[MAX_REGIONS];
    uint16_t rlen[MAX_REGIONS];
    double rsince[MAX_REGIONS];
    uint64_t rtask[MAX_REGIONS]; /* the region's task, 0 if none */
} gst;

/* An open task: its name, for its end event. */
typedef struct task {
    uint64_t id;
    const char *name; /* in a chunk's payload, not terminated */
    uint16_t len;
} task;

typedef struct conv {
    goro__jout *o;
    gst *tab; /* open addressing on id, linear probing */
    size_t cap, count;
    uint64_t pg[GORO__MAXPROCS_LIMIT]; /* goroutine on each P's track, 0 if none */
    int32_t pm[GORO__MAXPROCS_LIMIT];  /* M holding each P, -1 */
    double pmsince[GORO__MAXPROCS_LIMIT];
    double pt[GORO__MAXPROCS_LIMIT]; /* the latest time on each P's tracks (J2) */
    bool pseen[GORO__MAXPROCS_LIMIT];
    uint64_t *mcur; /* goroutine running on each M (by id), 0 */
    uint64_t nflows;
    task *tasks; /* the open tasks, in begin order */
    size_t ntasks, ctasks;
    /* Counts for otherData. */
    uint64_t events, created, existing, ended, unblocks, region_begins, region_ends, logs,
        anomalies, unmatched_region_ends, reordered, task_begins, task_ends, unmatched_task_ends;
    char samples[MAX_SAMPLES][160];
} conv;

static uint64_t hash(uint64_t x) {
    x *= 0x9e3779b97f4a7c15ULL;
    return x ^ (x >> 29);
}

static gst *g_find(conv *c, uint64_t id) {
    for (size_t i = hash(id) & (c->cap - 1);; i = (i + 1) & (c->cap - 1)) {
        if (c->tab[i].id == id)
            return &c->tab[i];
        if (c->tab[i].id == 0)
            return NULL;
    }
}

static gst *g_insert(conv *c, uint64_t id) {
    if ((c->count + 1) * 2 > c->cap) {
        size_t ocap = c->cap;
        gst *old = c->tab;
        gst *nt = calloc(ocap * 2, sizeof *nt);
        if (!nt)
            return NULL;
        c->tab = nt;
        c->cap = ocap * 2;
        for (size_t i = 0; i < ocap; i++)
            if (old[i].id) {
                size_t j = hash(old[i].id) & (c->cap - 1);
                while (c->tab[j].id)
                    j = (j + 1) & (c->cap - 1);
                c->tab[j] = old[i];
            }
        free(old);
    }
    size_t i = hash(id) & (c->cap - 1);
    while (c->tab[i].id && c->tab[i].id != id)
        i = (i + 1) & (c->cap - 1);
    if (!c->tab[i].id)
        c->count++;
    memset(&c->tab[i], 0, sizeof c->tab[i]);
    c->tab[i].id = id;
    c->tab[i].p = -1;
    return &c->tab[i];
}

/* Removes g, shifting back the entries of its probe run. */
static void g_remove(conv *c, const gst *g) {
    size_t i = (size_t)(g - c->tab);
    c->tab[i].id = 0;
    c->count--;
    for (size_t j = (i + 1) & (c->cap - 1); c->tab[j].id; j = (j + 1) & (c->cap - 1)) {
        size_t home = hash(c->tab[j].id) & (c->cap - 1);
        /* Move j back to i if its home is not in (i, j]. */
        bool between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!between) {
            c->tab[i] = c->tab[j];
            c->tab[j].id = 0;
            i = j;
        }
    }
}

static void anomaly(conv *c, double t, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void anomaly(conv *c, double t, const char *fmt, ...) {
    if (c->anomalies < MAX_SAMPLES) {
        char *s = c->samples[c->anomalies];
        int k = snprintf(s, sizeof c->samples[0], "at %.3f us: ", t / 1000.0);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s + k, sizeof c->samples[0] - (size_t)k, fmt, ap);
        va_end(ap);
    }
    c->anomalies++;
}

static const char *state_str(int s) {
    switch (s) {
    case S_RUNNABLE:
        return "runnable";
    case S_RUNNING:
        return "running";
    case S_BLOCKED:
        return "blocked";
    case S_SYSCALL:
        return "syscall";
    default:
        return "unknown";
    }
}

/* Ends g's current slice on its goroutine track at t. */
static void gslice_close(conv *c, gst *g, double t, bool unfinished) {
    if (g->state == S_NONE)
        return;
    goro__jout *o = c->o;
    ev_open(o, 'X', PID_GOROUTINES, g->id, g->since);
    GORO__JOUT_LIT(o, ",\"dur\":");
    goro__jout_us(o, t - g->since);
    GORO__JOUT_LIT(o, ",\"name\":");
    if (g->state == S_BLOCKED) {
        const char *why = goro__wait_reason_str(g->reason);
        GORO__JOUT_LIT(o, "\"blocked: ");
        goro__jout_esc(o, why, strlen(why));
        GORO__JOUT_LIT(o, "\"");
        GORO__JOUT_LIT(o, ",\"args\":{\"reason\":");
        goro__jout_cstr(o, goro__wait_reason_str(g->reason));
        if (unfinished)
            GORO__JOUT_LIT(o, ",\"unfinished\":true");
        GORO__JOUT_LIT(o, "}}");
    } else {
        goro__jout_cstr(o, state_str(g->state));
        if (unfinished)
            GORO__JOUT_LIT(o, ",\"args\":{\"unfinished\":true}");
        GORO__JOUT_LIT(o, "}");
    }
    g->since = t;
}

/* t, or the latest time already on P p's tracks if later: an event from another stream
 * (a P taken by the monitor) may come a little behind them (J2). */
static double p_time(conv *c, int p, double t) {
    if (t < c->pt[p])
        return c->pt[p];
    c->pt[p] = t;
    return t;
}

static void pslice_close(conv *c, gst *g, double t) {
    if (g->p < 0)
        return;
    t = p_time(c, g->p, t);
    goro__jout *o = c->o;
    ev_open(o, 'X', PID_PROCS, 2 * (uint64_t)g->p, g->psince);
    GORO__JOUT_LIT(o, ",\"dur\":");
    goro__jout_us(o, t - g->psince);
    GORO__JOUT_LIT(o, ",\"name\":");
    GORO__JOUT_LIT(o, "\"G");
    goro__jout_u64(o, (unsigned long long)g->id);
    if (g->p_syscall)
        GORO__JOUT_LIT(o, " syscall");
    if (g->namelen) {
        GORO__JOUT_LIT(o, " ");
        goro__jout_esc(o, g->name, g->namelen);
    }
    GORO__JOUT_LIT(o, "\"");
    GORO__JOUT_LIT(o, ",\"args\":{\"g\":");
    goro__jout_u64(o, (unsigned long long)g->id);
    GORO__JOUT_LIT(o, "}}");
    if (c->pg[g->p] == g->id)
        c->pg[g->p] = 0;
    g->p = -1;
}

/* Closes whatever goroutine slice is open on P p's track. */
static void p_clear(conv *c, int p, double t) {
    if (!c->pg[p])
        return;
    gst *o = g_find(c, c->pg[p]);
    if (o)
        pslice_close(c, o, t);
    c->pg[p] = 0;
}

static void pslice_open(conv *c, gst *g, int p, double t, bool syscall) {
    if (p < 0 || p >= GORO__MAXPROCS_LIMIT)
        return;
    pslice_close(c, g, t);
    p_clear(c, p, t);
    c->pseen[p] = true;
    g->p = (int16_t)p;
    g->p_syscall = syscall;
    g->psince = p_time(c, p, t);
    c->pg[p] = g->id;
}

static void mslice_close(conv *c, int p, double t) {
    if (c->pm[p] < 0)
        return;
    t = p_time(c, p, t);
    goro__jout *o = c->o;
    ev_open(o, 'X', PID_PROCS, 2 * (uint64_t)p + 1, c->pmsince[p]);
    GORO__JOUT_LIT(o, ",\"dur\":");
    goro__jout_us(o, t - c->pmsince[p]);
    GORO__JOUT_LIT(o, ",\"name\":\"M");
    goro__jout_i64(o, c->pm[p]);
    GORO__JOUT_LIT(o, "\",\"args\":{\"m\":");
    goro__jout_i64(o, c->pm[p]);
    GORO__JOUT_LIT(o, "}}");
    c->pm[p] = -1;
}

static void name_g(conv *c, gst *g) {
    char name[64 + GORO__TRACE_NAME_MAX];
    int k = snprintf(name, sizeof name, "G%llu", (unsigned long long)g->id);
    if (g->namelen) {
        name[k++] = ' ';
        memcpy(name + k, g->name, g->namelen);
        k += g->namelen;
    }
    meta_name(c->o, "thread_name", PID_GOROUTINES, g->id, name, (size_t)k);
    meta_sort(c->o, "thread_sort_index", PID_GOROUTINES, g->id, (long long)g->id);
}

static void region_close(conv *c, gst *g, double t, bool unfinished) {
    int i = --g->nregions;
    if (i >= MAX_REGIONS)
        return; /* too deep to have kept */
    goro__jout *o = c->o;
    ev_open(o, 'X', PID_REGIONS, g->id, g->rsince[i]);
    GORO__JOUT_LIT(o, ",\"dur\":");
    goro__jout_us(o, t - g->rsince[i]);
    GORO__JOUT_LIT(o, ",\"name\":");
    goro__jout_str(o, g->rname[i], g->rlen[i]);
    GORO__JOUT_LIT(o, ",\"args\":{\"g\":");
    goro__jout_u64(o, (unsigned long long)g->id);
    if (g->rtask[i]) {
        GORO__JOUT_LIT(o, ",\"task\":");
        goro__jout_u64(o, (unsigned long long)g->rtask[i]);
    }
    if (unfinished)
        GORO__JOUT_LIT(o, ",\"unfinished\":true");
    GORO__JOUT_LIT(o, "}}");
}

static void site_str(uint64_t pc, char *buf, size_t size) {
    Dl_info info;
    if (pc && dladdr((void *)(uintptr_t)pc, &info)) {
        if (info.dli_sname)
            snprintf(buf, size, "%s+0x%lx", info.dli_sname,
                     (unsigned long)(pc - (uintptr_t)info.dli_saddr));
        else
            snprintf(buf, size, "%s+0x%lx", info.dli_fname ? info.dli_fname : "?",
                     (unsigned long)(pc - (uintptr_t)info.dli_fbase));
    } else {
        snprintf(buf, size, "0x%llx", (unsigned long long)pc);
    }
}

/* The goroutine an event names; an unknown one is an anomaly, and starts being known. */
static gst *g_get(conv *c, uint64_t id, double t, const char *what) {
    gst *g = g_find(c, id);
    if (!g) {
        anomaly(c, t, "%s of unknown goroutine %llu", what, (unsigned long long)id);
        g = g_insert(c, id);
        if (g) {
            g->since = t;
            name_g(c, g);
        }
    }
    return g;
}

/* Checks g is in state want before an event; an anomaly otherwise. */
static void expect(conv *c, gst *g, int want, double t, const char *what) {
    if (g->state != want)
        anomaly(c, t, "%s of goroutine %llu while %s", what, (unsigned long long)g->id,
                state_str(g->state));
}

/* Whether e is the next event of its goroutine (J2): the goroutine is known, e's generation
 * is the goroutine's, and its state is the one e leaves. Events that name no goroutine, and
 * those that do not change its state (regions, logs), are always allowed. */
static bool allowed(conv *c, const goro__trace_ev *e) {
    int want, also = -1;
    switch (e->type) {
    case GORO__EV_GO_START:
        want = S_RUNNABLE;
        break;
    case GORO__EV_GO_UNBLOCK:
    case GORO__EV_NETPOLL_WAKE:
        want = S_BLOCKED;
        break;
    case GORO__EV_GO_STOP:
        want = S_RUNNING;
        also = S_SYSCALL; /* lost its P in a blocking call: it waits for one */
        break;
    case GORO__EV_GO_BLOCK:
    case GORO__EV_GO_END:
    case GORO__EV_SYSCALL_ENTER:
        want = S_RUNNING;
        break;
    case GORO__EV_SYSCALL_EXIT:
        want = S_SYSCALL;
        also = S_RUNNING; /* it waited for a P in the global queue and runs already */
        break;
    default:
        return true;
    }
    const gst *g = g_find(c, GORO__TRACE_GG_GID(e->g));
    if (!g || g->gen != GORO__TRACE_GG_GEN(e->g))
        return false; /* its create, or the event before it, is still to come */
    if (e->type == GORO__EV_SYSCALL_EXIT && g->state == S_RUNNING)
        return g->insyscall;
    return g->state == want || g->state == also;
}

/* Applies e at time t (at least the time of the goroutine's last event), returns the time
 * it was written at. */
static double process(conv *c, const goro__trace_ev *e, double t) {
    goro__jout *o = c->o;
    const char *payload = (const char *)(e + 1);
    uint64_t gid = GORO__TRACE_GG_GID(e->g);
    uint16_t gen = GORO__TRACE_GG_GEN(e->g);
    gst *g = gid ? g_find(c, gid) : NULL;
    if (g) {
        if (t < g->lastt)
            t = g->lastt;
        g->lastt = t;
        /* Its generation from now (J2): a start or a return from a blocking call counts it
         * up; an event applied out of order (an anomaly) resynchronises it. */
        g->gen = e->type == GORO__EV_GO_START || e->type == GORO__EV_SYSCALL_EXIT
                     ? (uint16_t)(gen + 1)
                     : gen;
    }
    g = NULL;
    c->events++;
    switch (e->type) {
    case GORO__EV_GO_CREATE: {
        if (g_find(c, gid))
            anomaly(c, t, "create of live goroutine %llu", (unsigned long long)gid);
        if (!(g = g_insert(c, gid)))
            return t;
        g->gen = gen;
        g->lastt = t;
        uint64_t pc;
        memcpy(&pc, payload, 8);
        g->name = e->len > 8 ? payload + 8 : NULL;
        g->namelen = (uint16_t)(e->len > 8 ? e->len - 8 : 0);
        g->state = S_RUNNABLE;
        g->since = t;
        name_g(c, g);
        char site[256];
        site_str(pc, site, sizeof site);
        ev_open(o, 'i', PID_GOROUTINES, g->id, t);
        goro__jout_fmt(o, ",\"s\":\"t\",\"name\":\"create\",\"args\":{\"parent\":%llu,\"site\":",
                       (unsigned long long)e->arg);
        goro__jout_cstr(o, site);
        GORO__JOUT_LIT(o, "}}");
        c->created++;
        break;
    }
    case GORO__EV_GO_EXISTING:
        if (!(g = g_insert(c, gid)))
            return t;
        g->gen = gen;
        g->lastt = t;
        g->name = e->len ? payload : NULL;
        g->namelen = e->len;
        g->since = t;
        g->state = e->reason == GORO__G_RUNNABLE  ? S_RUNNABLE
                   : e->reason == GORO__G_WAITING ? S_BLOCKED
                   : e->reason == GORO__G_SYSCALL ? S_SYSCALL
                                                  : S_RUNNING;
        g->reason = (uint8_t)e->arg;
        name_g(c, g);
        if (g->state == S_RUNNING && e->p >= 0)
            pslice_open(c, g, e->p, t, false);
        c->existing++;
        break;
    case GORO__EV_GO_START:
        if (!(g = g_get(c, gid, t, "start")))
            return t;
        expect(c, g, S_RUNNABLE, t, "start");
        gslice_close(c, g, t, false);
        g->state = S_RUNNING;
        pslice_open(c, g, e->p, t, false);
        if (e->m != GORO__TRACE_NONE16)
            c->mcur[e->m] = g->id;
        if (g->flow) {
            ev_open(o, 'f', PID_GOROUTINES, g->id, t);
            GORO__JOUT_LIT(o, ",\"bp\":\"e\",\"name\":\"wake\",\"cat\":\"wake\",\"id\":");
            goro__jout_u64(o, (unsigned long long)g->flow);
            GORO__JOUT_LIT(o, "}");
            g->flow = 0;
        }
        break;
    case GORO__EV_GO_STOP:
        if (!(g = g_get(c, gid, t, "stop")))
            return t;
        if (g->state == S_SYSCALL)
            g->insyscall = true; /* lost its P in the call and waits for one */
        else
            expect(c, g, S_RUNNING, t, "stop");
        gslice_close(c, g, t, false);
        pslice_close(c, g, t);
        g->state = S_RUNNABLE;
        break;
    case GORO__EV_GO_BLOCK:
        if (!(g = g_get(c, gid, t, "block")))
            return t;
        expect(c, g, S_RUNNING, t, "block");
        gslice_close(c, g, t, false);
        pslice_close(c, g, t);
        g->state = S_BLOCKED;
        g->reason = e->reason;
        break;
    case GORO__EV_GO_UNBLOCK:
    case GORO__EV_NETPOLL_WAKE: {
        if (!(g = g_get(c, gid, t, "unblock")))
            return t;
        expect(c, g, S_BLOCKED, t, "unblock");
        gslice_close(c, g, t, false);
        g->state = S_RUNNABLE;
        c->unblocks++;
        uint64_t waker = e->arg;
        if (waker == GORO__TRACE_WAKER_P) /* (J3) */
            waker = e->p >= 0 && e->p < GORO__MAXPROCS_LIMIT ? c->pg[e->p] : 0;
        waker &= GORO__TRACE_GID_MASK; /* an id, or the P's goroutine's key */
        gst *w = waker && waker != g->id ? g_find(c, waker) : NULL;
        if (w && w->state == S_RUNNING) {
            g->flow = ++c->nflows;
            ev_open(o, 's', PID_GOROUTINES, w->id, t);
            GORO__JOUT_LIT(o, ",\"name\":\"wake\",\"cat\":\"wake\",\"id\":");
            goro__jout_u64(o, (unsigned long long)g->flow);
            GORO__JOUT_LIT(o, "}");
        } else if (e->type == GORO__EV_NETPOLL_WAKE) {
            ev_open(o, 'i', PID_GOROUTINES, g->id, t);
            GORO__JOUT_LIT(o, ",\"s\":\"t\",\"name\":\"netpoll wake\"}");
        }
        break;
    }
    case GORO__EV_GO_END:
        if (!(g = g_get(c, gid, t, "end")))
            return t;
        expect(c, g, S_RUNNING, t, "end");
        gslice_close(c, g, t, false);
        pslice_close(c, g, t);
        while (g->nregions > 0)
            region_close(c, g, t, true);
        ev_open(o, 'i', PID_GOROUTINES, g->id, t);
        GORO__JOUT_LIT(o, ",\"s\":\"t\",\"name\":\"end\"}");
        if (e->m != GORO__TRACE_NONE16 && c->mcur[e->m] == g->id)
            c->mcur[e->m] = 0;
        g_remove(c, g);
        c->ended++;
        break;
    case GORO__EV_PROC_START: {
        if (e->p < 0)
            break;
        c->pseen[e->p] = true;
        p_clear(c, e->p, t);
        mslice_close(c, e->p, t);
        c->pm[e->p] = (int32_t)e->arg;
        c->pmsince[e->p] = p_time(c, e->p, t);
        /* An M that goes on running its goroutine on another P (a resize, a P taken
         * back after a preemption): the goroutine is on this P's track from now. */
        uint64_t cur = e->arg < GORO__TRACE_NONE16 ? c->mcur[e->arg] : 0;
        gst *r = cur ? g_find(c, cur) : NULL;
        if (r && r->state == S_RUNNING && r->p < 0)
            pslice_open(c, r, e->p, t, false);
        break;
    }
    case GORO__EV_PROC_STOP:
    case GORO__EV_PROC_STEAL:
        if (e->p < 0)
            break;
        p_clear(c, e->p, t);
        mslice_close(c, e->p, t);
        if (e->type == GORO__EV_PROC_STEAL) {
            ev_open(o, 'i', PID_PROCS, 2 * (uint64_t)e->p, t);
            GORO__JOUT_LIT(o, ",\"s\":\"t\",\"name\":\"taken\"}");
        }
        break;
    case GORO__EV_SYSCALL_ENTER:
        if (!(g = g_get(c, gid, t, "syscall enter")))
            return t;
        expect(c, g, S_RUNNING, t, "syscall enter");
        gslice_close(c, g, t, false);
        g->state = S_SYSCALL;
        pslice_open(c, g, e->p, t, true);
        break;
    case GORO__EV_SYSCALL_EXIT:
        if (!(g = g_get(c, gid, t, "syscall exit")))
            return t;
        if (g->state == S_SYSCALL) {
            gslice_close(c, g, t, false);
            pslice_close(c, g, t);
            g->state = S_RUNNING;
            pslice_open(c, g, e->p, t, false);
        } else if (g->insyscall && g->state == S_RUNNING) {
            /* It waited for a P in the global queue and runs again already. */
        } else {
            expect(c, g, S_SYSCALL, t, "syscall exit");
        }
        g->insyscall = false;
        break;
    case GORO__EV_TIMER_FIRE:
        if (e->p >= 0)
            ev_open(o, 'i', PID_PROCS, 2 * (uint64_t)e->p, t);
        else
            ev_open(o, 'i', PID_RUNTIME, 0, t);
        GORO__JOUT_LIT(o, ",\"s\":\"t\",\"name\":\"timer\"}");
        break;
    case GORO__EV_REGION_BEGIN:
        if (!(g = g_get(c, gid, t, "region begin")))
            return t;
        if (!g->regions_named) {
            char name[64];
            int k = snprintf(name, sizeof name, "G%llu regions", (unsigned long long)g->id);
            meta_name(o, "thread_name", PID_REGIONS, g->id, name, (size_t)k);
            meta_sort(o, "thread_sort_index", PID_REGIONS, g->id, (long long)g->id);
            g->regions_named = true;
        }
        if (g->nregions < MAX_REGIONS) {
            g->rname[g->nregions] = payload;
            g->rlen[g->nregions] = e->len;
            g->rsince[g->nregions] = t;
            g->rtask[g->nregions] = e->arg;
        }
        g->nregions++;
        c->region_begins++;
        break;
    case GORO__EV_REGION_END:
        if (!(g = g_get(c, gid, t, "region end")))
            return t;
        if (g->nregions == 0) {
            c->unmatched_region_ends++;
            break;
        }
        region_close(c, g, t, false);
        c->region_ends++;
        break;
    case GORO__EV_LOG: {
        size_t catlen = strnlen(payload, e->len);
        const char *msg = catlen < e->len ? payload + catlen + 1 : "";
        size_t msglen = catlen < e->len ? e->len - catlen - 1 : 0;
        if (gid)
            ev_open(o, 'i', PID_GOROUTINES, gid, t);
        else
            ev_open(o, 'i', PID_RUNTIME, 0, t);
        GORO__JOUT_LIT(o, ",\"s\":\"t\",\"cat\":\"log\",\"name\":");
        goro__jout_str(o, payload, catlen);
        GORO__JOUT_LIT(o, ",\"args\":{\"message\":");
        goro__jout_str(o, msg, msglen);
        if (e->arg)
            goro__jout_fmt(o, ",\"task\":%llu", (unsigned long long)e->arg);
        GORO__JOUT_LIT(o, "}}");
        c->logs++;
        break;
    }
    case GORO__EV_TASK_BEGIN:
        if (c->ntasks == c->ctasks) {
            size_t n = c->ctasks ? 2 * c->ctasks : 16;
            task *nt = realloc(c->tasks, n * sizeof *nt);
            if (!nt)
                break;
            c->tasks = nt;
            c->ctasks = n;
        }
        c->tasks[c->ntasks++] = (task){.id = e->arg, .name = payload, .len = e->len};
        ev_open(o, 'b', PID_TASKS, 0, t);
        goro__jout_fmt(o, ",\"cat\":\"task\",\"id\":%llu,\"name\":", (unsigned long long)e->arg);
        goro__jout_str(o, payload, e->len);
        goro__jout_fmt(o, ",\"args\":{\"g\":%llu}}", (unsigned long long)gid);
        c->task_begins++;
        break;
    case GORO__EV_TASK_END: {
        size_t i = c->ntasks;
        while (i > 0 && c->tasks[i - 1].id != e->arg)
            i--;
        if (i == 0) {
            c->unmatched_task_ends++;
            break;
        }
        task k = c->tasks[i - 1];
        c->tasks[i - 1] = c->tasks[--c->ntasks];
        ev_open(o, 'e', PID_TASKS, 0, t);
        goro__jout_fmt(o, ",\"cat\":\"task\",\"id\":%llu,\"name\":", (unsigned long long)k.id);
        goro__jout_str(o, k.name, k.len);
        goro__jout_fmt(o, ",\"args\":{\"g\":%llu}}", (unsigned long long)gid);
        c->task_ends++;
        break;
    }
    default:
        anomaly(c, t, "unknown event type %d", e->type);
        break;
    }
    return t;
}

/* ------------------------------------------------------------------ the merge */

typedef struct cursor {
    goro__trace_chunk *c;
    uint32_t off;
    int idx;                 /* stream index: ties go to the lower one */
    int16_t p;               /* the stream's P, -1 for the global stream */
    uint16_t m;              /* the M of the stream's last full record (J3) */
    double floor;            /* its events' times are at least this (J2) */
    uint64_t ta, tb;         /* the run of unstamped records: stamps before and after (J2) */
    uint64_t run_n, run_i;   /* its length, and the records of it already read */
    uint64_t tail_max, end;  /* after the last stamp: at most this long, and the stop */
    const goro__trace_ev *e; /* the next event: in the chunk, or ev (compact) */
    goro__trace_ev ev;
} cursor;

/* From k's record, an unstamped one: how many unstamped records follow in a row (it
 * included), and the stamp after them (the last stamp plus tail_max, at most the stop,
 * when the stream ends first). */
static void cur_scan_run(cursor *k) {
    uint64_t n = 0;
    const goro__trace_chunk *c = k->c;
    uint32_t off = k->off;
    uint64_t tb = 0;
    while (c) {
        if (off >= c->used) {
            c = c->next;
            off = 0;
            continue;
        }
        const uint64_t *w = (const uint64_t *)(const void *)(c->data + off);
        if (!(w[0] & GORO__TRACE_COMPACT)) {
            tb = w[0];
            break;
        }
        n++;
        off += 8;
    }
    if (!c) {
        tb = k->ta + k->tail_max;
        if (tb > k->end || tb < k->ta)
            tb = k->end;
    }
    if (tb < k->ta)
        tb = k->ta;
    k->run_n = n;
    k->run_i = 0;
    k->tb = tb;
}

/* Points k->e at the record at k's position, decoding a compact one (J3) and giving an
 * unstamped one its interpolated time (J2). */
static void cur_load(cursor *k) {
    const char *r = k->c->data + k->off;
    const goro__trace_ev *full = (const goro__trace_ev *)(const void *)r;
    uint64_t w, ts;
    if (full->ts & GORO__TRACE_COMPACT) {
        if (k->run_i >= k->run_n)
            cur_scan_run(k);
        k->run_i++;
        w = full->ts;
        ts = k->ta + (uint64_t)((unsigned __int128)(k->tb - k->ta) * k->run_i / (k->run_n + 1));
    } else if (full->g & GORO__TRACE_COMPACT) {
        w = full->g;
        ts = k->ta = full->ts;
        k->run_n = k->run_i = 0;
    } else {
        k->ta = full->ts;
        k->run_n = k->run_i = 0;
        k->e = full;
        return;
    }
    int type = GORO__TRACE_WORD_TYPE(w);
    k->ev = (goro__trace_ev){.ts = ts,
                             .g = GORO__TRACE_WORD_GG(w),
                             .arg = type == GORO__EV_GO_UNBLOCK ? GORO__TRACE_WAKER_P : 0,
                             .type = (uint8_t)type,
                             .reason = GORO__TRACE_WORD_REASON(w),
                             .p = k->p,
                             .m = k->m};
    k->e = &k->ev;
}

static bool cur_less(const cursor *a, const cursor *b) {
    uint64_t ta = a->e->ts, tb = b->e->ts;
    return ta < tb || (ta == tb && a->idx < b->idx);
}

/* Swaps two heap entries; a decoded event each points at stays its own. */
static void cur_swap(cursor *h, int a, int b) {
    cursor t = h[a];
    h[a] = h[b];
    h[b] = t;
    if (h[a].e == &h[b].ev)
        h[a].e = &h[a].ev;
    if (h[b].e == &h[a].ev)
        h[b].e = &h[b].ev;
}

static void sift_down(cursor *h, int n, int i) {
    for (;;) {
        int l = 2 * i + 1, s = i;
        if (l < n && cur_less(&h[l], &h[s]))
            s = l;
        if (l + 1 < n && cur_less(&h[l + 1], &h[s]))
            s = l + 1;
        if (s == i)
            return;
        cur_swap(h, i, s);
        i = s;
    }
}

static void sift_up(cursor *h, int i) {
    while (i > 0) {
        int u = (i - 1) / 2;
        if (!cur_less(&h[i], &h[u]))
            return;
        cur_swap(h, i, u);
        i = u;
    }
}

/* Copies a cursor, keeping its decoded event its own. */
static void cur_copy(cursor *dst, const cursor *src) {
    *dst = *src;
    if (src->e == &src->ev)
        dst->e = &dst->ev;
}

/* Moves k past its event; false when its stream is done. */
static bool cur_next(cursor *k) {
    const goro__trace_ev *e = k->e;
    if (e != &k->ev && k->p >= 0)
        k->m = e->m; /* (J3) */
    k->off += (uint32_t)goro__trace_rec_size(k->c->data + k->off);
    while (k->c && k->off >= k->c->used) {
        k->c = k->c->next;
        k->off = 0;
    }
    if (!k->c)
        return false;
    cur_load(k);
    return true;
}

int goro__trace_write_json(int fd, const goro__trace_stream *streams, int n,
                           const goro__trace_clock *clock, uint64_t dropped) {
    goro__jout *o = malloc(sizeof *o);
    conv *c = calloc(1, sizeof *c);
    cursor *heap = calloc((size_t)n + 1, sizeof *heap);
    cursor *stalled = calloc((size_t)n + 1, sizeof *stalled);
    uint64_t *mcur = calloc(GORO__TRACE_NONE16 + 1, sizeof *mcur);
    int err = GORO_ENOMEM;
    if (!o || !c || !heap || !stalled || !mcur)
        goto out_free;
    o->fd = fd;
    o->err = 0;
    o->n = 0;
    o->first = true;
    c->o = o;
    c->cap = 1024;
    c->mcur = mcur;
    if (!(c->tab = calloc(c->cap, sizeof *c->tab)))
        goto out_free;
    for (int i = 0; i < GORO__MAXPROCS_LIMIT; i++)
        c->pm[i] = -1;
    /* Ticks to ns since the start. */
    double scale = 1.0;
    if (clock->counter && clock->ticks1 > clock->ticks0)
        scale = (double)(clock->ns1 - clock->ns0) / (double)(clock->ticks1 - clock->ticks0);
    double end_ns = (double)(clock->ticks1 - clock->ticks0) * scale;

    GORO__JOUT_LIT(o, "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[");
    meta_name(o, "process_name", PID_PROCS, 0, "Procs", 5);
    meta_sort(o, "process_sort_index", PID_PROCS, 0, 1);
    meta_name(o, "process_name", PID_GOROUTINES, 0, "Goroutines", 10);
    meta_sort(o, "process_sort_index", PID_GOROUTINES, 0, 2);
    meta_name(o, "process_name", PID_REGIONS, 0, "Regions", 7);
    meta_sort(o, "process_sort_index", PID_REGIONS, 0, 3);
    meta_name(o, "process_name", PID_RUNTIME, 0, "Runtime", 7);
    meta_sort(o, "process_sort_index", PID_RUNTIME, 0, 4);
    meta_name(o, "thread_name", PID_RUNTIME, 0, "no P", 4);
    meta_name(o, "process_name", PID_TASKS, 0, "Tasks", 5);
    meta_sort(o, "process_sort_index", PID_TASKS, 0, 5);

    /* (J2) After a stream's last stamp, unstamped records lie within two of the
     * ticker's periods (an event after that would have been stamped). */
    uint64_t tail_max = (uint64_t)((double)(2 * clock->tick_ns) / scale);

    int nh = 0, ns = 0;
    for (int i = 0; i < n; i++) {
        cursor k = {.c = streams[i].head,
                    .off = 0,
                    .idx = i,
                    .p = (int16_t)streams[i].p,
                    .m = GORO__TRACE_NONE16,
                    .ta = clock->ticks0,
                    .tail_max = tail_max,
                    .end = clock->ticks1};
        while (k.c && k.c->used == 0)
            k.c = k.c->next;
        if (k.c) {
            cur_copy(&heap[nh], &k);
            cur_load(&heap[nh]);
            nh++;
        }
    }
    for (int i = nh / 2 - 1; i >= 0; i--)
        sift_down(heap, nh, i);
    double now = 0;     /* the time of the last event applied */
    bool force = false; /* every stream waited: the heap's top goes anyway */
    while (nh > 0 || ns > 0) {
        cursor *k;
        if (nh > 0) {
            k = &heap[0];
            if (!force && !allowed(c, k->e)) {
                /* (J2) Not yet: the stream waits for the event that allows it. */
                cur_copy(&stalled[ns++], k);
                cur_copy(&heap[0], &heap[--nh]);
                sift_down(heap, nh, 0);
                continue;
            }
        } else {
            /* Every stream waits: the earliest goes anyway (an anomaly). */
            int best = 0;
            for (int i = 1; i < ns; i++)
                if (cur_less(&stalled[i], &stalled[best]))
                    best = i;
            cur_copy(&heap[nh++], &stalled[best]);
            cur_copy(&stalled[best], &stalled[--ns]);
            force = true;
            continue;
        }
        force = false;
        const goro__trace_ev *e = k->e;
        double t = (double)(e->ts - clock->ticks0) * scale;
        if (e->ts < clock->ticks0)
            t = 0;
        if (t < k->floor)
            t = k->floor;
        t = process(c, e, t); /* at least the time of its goroutine's last event */
        k->floor = t;
        if (t > now)
            now = t;
        if (!cur_next(k))
            cur_copy(&heap[0], &heap[--nh]);
        sift_down(heap, nh, 0);
        /* The streams this event lets go on resume at its time at the earliest. */
        for (int i = 0; i < ns;) {
            if (!allowed(c, stalled[i].e)) {
                i++;
                continue;
            }
            c->reordered++;
            if (stalled[i].floor < now)
                stalled[i].floor = now;
            cur_copy(&heap[nh], &stalled[i]);
            sift_up(heap, nh);
            nh++;
            cur_copy(&stalled[i], &stalled[--ns]);
        }
    }

    /* The end of the trace: what is still open ends here, marked unfinished. */
    for (size_t i = 0; i < c->cap; i++) {
        gst *g = &c->tab[i];
        if (!g->id)
            continue;
        gslice_close(c, g, end_ns, true);
        pslice_close(c, g, end_ns);
        while (g->nregions > 0)
            region_close(c, g, end_ns, true);
    }
    for (size_t i = 0; i < c->ntasks; i++) {
        ev_open(o, 'e', PID_TASKS, 0, end_ns);
        goro__jout_fmt(
            o, ",\"cat\":\"task\",\"id\":%llu,\"name\":", (unsigned long long)c->tasks[i].id);
        goro__jout_str(o, c->tasks[i].name, c->tasks[i].len);
        GORO__JOUT_LIT(o, ",\"args\":{\"unfinished\":true}}");
    }
    for (int p = 0; p < GORO__MAXPROCS_LIMIT; p++) {
        mslice_close(c, p, end_ns);
        if (!c->pseen[p])
            continue;
        char name[32];
        int k = snprintf(name, sizeof name, "P%d", p);
        meta_name(o, "thread_name", PID_PROCS, 2 * (uint64_t)p, name, (size_t)k);
        meta_sort(o, "thread_sort_index", PID_PROCS, 2 * (uint64_t)p, 2 * p);
        k = snprintf(name, sizeof name, "P%d thread", p);
        meta_name(o, "thread_name", PID_PROCS, 2 * (uint64_t)p + 1, name, (size_t)k);
        meta_sort(o, "thread_sort_index", PID_PROCS, 2 * (uint64_t)p + 1, 2 * p + 1);
    }
    goro__jout_fmt(
        o,
        "\n],\n\"otherData\":{\"producer\":\"goro\",\"clock\":\"%s\",\"duration_ns\":%.0f,"
        "\"events\":%llu,\"dropped\":%llu,\"anomalies\":%llu,\"goroutines_created\":%llu,"
        "\"goroutines_existing\":%llu,\"goroutines_ended\":%llu,\"unblocks\":%llu,"
        "\"flows\":%llu,\"region_begins\":%llu,\"region_ends\":%llu,"
        "\"unmatched_region_ends\":%llu,\"logs\":%llu,\"reordered_starts\":%llu,"
        "\"task_begins\":%llu,\"task_ends\":%llu,\"unmatched_task_ends\":%llu,"
        "\"anomaly_samples\":[",
        clock->counter ? "cpu counter" : "CLOCK_MONOTONIC", end_ns, (unsigned long long)c->events,
        (unsigned long long)dropped, (unsigned long long)c->anomalies,
        (unsigned long long)c->created, (unsigned long long)c->existing,
        (unsigned long long)c->ended, (unsigned long long)c->unblocks,
        (unsigned long long)c->nflows, (unsigned long long)c->region_begins,
        (unsigned long long)c->region_ends, (unsigned long long)c->unmatched_region_ends,
        (unsigned long long)c->logs, (unsigned long long)c->reordered,
        (unsigned long long)c->task_begins, (unsigned long long)c->task_ends,
        (unsigned long long)c->unmatched_task_ends);
    for (uint64_t i = 0; i < c->anomalies && i < MAX_SAMPLES; i++) {
        if (i)
            GORO__JOUT_LIT(o, ",");
        goro__jout_cstr(o, c->samples[i]);
    }
    GORO__JOUT_LIT(o, "]}}\n");
    goro__jout_flush(o);
    err = o->err;
out_free:
    if (c) {
        free(c->tab);
        free(c->tasks);
    }
    free(mcur);
    free(heap);
    free(stalled);
    free(c);
    free(o);
    return err;
}
