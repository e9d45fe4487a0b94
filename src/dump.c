/*
 * dump.c - the goroutine dump (goro_dump, SIGQUIT, the report of a fatal error) and the
 * names of goroutine states and wait reasons.
 *
 * A dump lists every live goroutine: id, name, state, wait reason and for how long,
 * where it was spawned, and a backtrace. Backtraces walk frame pointers (the library is
 * built with -fno-omit-frame-pointer; user code built without them shows fewer frames).
 * A parked goroutine's frames are only read while it cannot resume: goro_dump called
 * from a goroutine stops the world first; fatal errors and SIGQUIT read them only for
 * the goroutine that is dumping, and print the others' states.
 *
 * goro_dump_ex adds two forms. GORO_DUMP_GROUPED puts goroutines with the same state,
 * wait reason, frames and spawn site in one group, printed once with its count and ids,
 * biggest first (Go's goroutine profile with debug=1): a hundred thousand goroutines
 * parked at the same place read as one entry. GORO_DUMP_JSON writes the same data as one
 * JSON object for tools (fields in docs/DEBUGGING.md). Grouping allocates (a hash table
 * of groups, each with its ids), so only goro_dump_ex groups; the plain form allocates
 * nothing and is what the signal handlers and fatal errors print.
 *
 * Output goes through a writer on the stack that formats into a buffer and writes with
 * write(2), no stdio and no allocation, so the signal handlers can use it; goro__out is
 * the same for one line.
 *
 * See also: fatal.c (goro__fatal), stats.c (goro_stats_get), gdesc.c (the descriptor
 * slabs a dump walks), tools/gdb/goro.py (the same walk from a debugger).
 */
#define _GNU_SOURCE 1
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atomic.h"
#include "internal.h"

static const char *const wait_reasons[GORO__WAIT_NREASONS] = {
    [GORO__WAIT_NONE] = "",
    [GORO__WAIT_SLEEP] = "sleep",
    [GORO__WAIT_MUTEX] = "mutex",
    [GORO__WAIT_WAITGROUP] = "waitgroup",
    [GORO__WAIT_RWMUTEX_R] = "rwmutex rlock",
    [GORO__WAIT_RWMUTEX_W] = "rwmutex lock",
    [GORO__WAIT_COND] = "cond wait",
    [GORO__WAIT_CHAN_SEND] = "chan send",
    [GORO__WAIT_CHAN_RECV] = "chan receive",
    [GORO__WAIT_CHAN_SEND_NIL] = "chan send (nil chan)",
    [GORO__WAIT_CHAN_RECV_NIL] = "chan receive (nil chan)",
    [GORO__WAIT_SELECT] = "select",
    [GORO__WAIT_SELECT_NOCASES] = "select (no cases)",
    [GORO__WAIT_IO_READ] = "IO wait (read)",
    [GORO__WAIT_IO_WRITE] = "IO wait (write)",
    [GORO__WAIT_PREEMPTED] = "waiting for a P",
};

const char *goro__wait_reason_str(int reason) {
    return reason >= 0 && reason < GORO__WAIT_NREASONS ? wait_reasons[reason] : "?";
}

/* ------------------------------------------------------------------ output */

/* printf to fd through a stack buffer and write(2): no stdio buffer is allocated, so it
 * is usable from the signal handlers (stack overflow, SIGQUIT). */
void goro__out(int fd, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof buf - 1)
        n = (int)sizeof buf - 1;
    for (int off = 0; n > 0 && off < n;) {
        ssize_t w = write(fd, buf + off, (size_t)(n - off));
        if (w <= 0)
            return;
        off += (int)w;
    }
}

/* A buffered writer on the stack (no allocation: the signal handlers' dumps use it too).
 * The first failed write is kept in err and later output is dropped. */
typedef struct writer {
    int fd;
    int err; /* 0 or -errno of the first failed write */
    size_t len;
    char buf[1024];
} writer;

static void w_flush(writer *w) {
    for (size_t off = 0; !w->err && off < w->len;) {
        ssize_t n = write(w->fd, w->buf + off, w->len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            w->err = n < 0 ? -errno : GORO_EAGAIN;
        else
            off += (size_t)n;
    }
    w->len = 0;
}

static void w_put(writer *w, const char *s, size_t n) {
    while (n > 0 && !w->err) {
        if (w->len == sizeof w->buf)
            w_flush(w);
        size_t k = sizeof w->buf - w->len;
        if (k > n)
            k = n;
        memcpy(w->buf + w->len, s, k);
        w->len += k;
        s += k;
        n -= k;
    }
}

static void w_printf(writer *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void w_printf(writer *w, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0)
        w_put(w, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* A JSON string: quotes, backslashes and control characters escaped; NULL is null. */
static void w_json_str(writer *w, const char *s) {
    if (!s) {
        w_put(w, "null", 4);
        return;
    }
    w_put(w, "\"", 1);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            char esc[2] = {'\\', (char)ch};
            w_put(w, esc, 2);
        } else if (ch < 0x20) {
            w_printf(w, "\\u%04x", ch);
        } else {
            w_put(w, (const char *)&ch, 1);
        }
    }
    w_put(w, "\"", 1);
}

/* ------------------------------------------------------------------ goroutine records */

#define DUMP_DEPTH 32 /* frames kept per goroutine */

/* What a dump knows of one goroutine. */
typedef struct grec {
    uint64_t id;
    const char *name;
    const char *state;  /* state_name(), or "running" for the dumping goroutine */
    const char *reason; /* wait reason while waiting, else NULL */
    long long wait_ms;
    bool self; /* the goroutine that is dumping */
    uintptr_t spawn_pc;
    int npc;
    uintptr_t pcs[DUMP_DEPTH];
} grec;

typedef struct dumpctx {
    writer *w;
    bool frames; /* parked goroutines' stacks may be read */
    goro__g *self;
    int64_t now;
} dumpctx;

static const char *state_name(uint32_t st) {
    switch (st) {
    case GORO__G_RUNNABLE:
        return "runnable";
    case GORO__G_RUNNING:
        return "running";
    case GORO__G_WAITING:
        return "waiting";
    case GORO__G_SYSCALL:
        return "blocking call";
    default:
        return "?";
    }
}

/* Walks the frame-pointer chain from (fp, pc) within [lo, hi) into pcs; returns how many. */
static int walk_frames(uintptr_t fp, uintptr_t pc, uintptr_t lo, uintptr_t hi, intptr_t delta,
                       uintptr_t *pcs) {
    int n = 0;
    while (n < DUMP_DEPTH && pc) {
        pcs[n++] = pc;
        if (fp < lo || fp + 2 * sizeof(uintptr_t) > hi || (fp & (sizeof(uintptr_t) - 1)))
            break;
        /* delta: a compacted stack's frames are read in its copy (compact.c). */
        const uintptr_t *frame = (const uintptr_t *)(fp + (uintptr_t)delta);
        uintptr_t next = frame[0];
        pc = frame[1];
        if (next <= fp)
            break;
        fp = next;
    }
    return n;
}

/* Fills r from g; false if g is a free descriptor. Not inlined: for the dumping goroutine
 * its own frame is where the backtrace starts. */
static __attribute__((noinline)) bool capture(goro__g *g, const dumpctx *c, grec *r) {
    /* Acquire pairs with the release store of status in newproc and finish_switch. */
    uint32_t st = goro__load_acquire(&g->status);
    if (st == GORO__G_FREE)
        return false;
    r->id = goro__g_id_relaxed(g);
    r->name = goro__load_relaxed(&g->name);
    r->self = g == c->self;
    r->state = r->self ? "running" : state_name(st);
    r->reason = NULL;
    r->wait_ms = 0;
    if (st == GORO__G_WAITING && !r->self) {
        int64_t since = goro__load_relaxed(&g->wait_since);
        r->wait_ms = since ? (long long)((c->now - since) / 1000000) : 0;
        r->reason = goro__wait_reason_str(goro__load_relaxed(&g->wait_reason));
    }
    r->npc = 0;
    /* The stack fields of others are only stable when the world is stopped (and the
     * compactor paused: goro_dump_ex). */
    uintptr_t csp = 0;
    intptr_t delta = 0;
    bool compacted = !r->self && c->frames && goro__compact_frames(g, &csp, &delta);
    if (r->self || compacted ||
        (c->frames && st != GORO__G_RUNNING && g->stack_lo &&
         GORO__SP_REAL(goro__load_relaxed(&g->sp)))) {
        uintptr_t lo = (uintptr_t)g->stack_lo, hi = lo + g->stack_size, fp, pc;
        if (r->self) {
            const uintptr_t *here = __builtin_frame_address(0);
            fp = here[0];
            pc = here[1];
        } else {
            void *sp = compacted ? (void *)(csp + (uintptr_t)delta) : g->sp;
            goro__ctx_frame(sp, &fp, &pc);
        }
        r->npc = walk_frames(fp, pc, lo, hi, delta, r->pcs);
    }
    r->spawn_pc = (uintptr_t)goro__load_relaxed(&g->spawn_pc);
    return true;
}

/* ------------------------------------------------------------------ text */

static void print_pc(writer *w, const char *prefix, uintptr_t pc) {
    Dl_info info;
    if (dladdr((void *)pc, &info) && info.dli_fname) {
        if (info.dli_sname)
            w_printf(w, "%s%s+0x%lx (%s)\n", prefix, info.dli_sname,
                     (unsigned long)(pc - (uintptr_t)info.dli_saddr), info.dli_fname);
        else
            w_printf(w, "%s%s+0x%lx\n", prefix, info.dli_fname,
                     (unsigned long)(pc - (uintptr_t)info.dli_fbase));
    } else {
        w_printf(w, "%s0x%lx\n", prefix, (unsigned long)pc);
    }
}

static void print_stack(writer *w, const grec *r) {
    for (int i = 0; i < r->npc; i++)
        print_pc(w, "    ", r->pcs[i]);
    if (r->spawn_pc)
        print_pc(w, "  spawned at ", r->spawn_pc);
    w_put(w, "\n", 1);
}

static void dump_g(goro__g *g, void *arg) {
    dumpctx *c = arg;
    grec r;
    if (!capture(g, c, &r))
        return;
    char namebuf[96] = "";
    if (r.name)
        snprintf(namebuf, sizeof namebuf, " \"%s\"", r.name);
    if (r.reason)
        w_printf(c->w, "goroutine %llu%s [%s, %lld ms]:\n", (unsigned long long)r.id, namebuf,
                 r.reason, r.wait_ms);
    else
        w_printf(c->w, "goroutine %llu%s [%s]:\n", (unsigned long long)r.id, namebuf,
                 r.self ? "running, dumping" : r.state);
    print_stack(c->w, &r);
}

static void dump_header(writer *w, const char *what) {
    w_printf(w, "goro: %d goroutines%s, %d procs, %d threads\n\n", goro_numgoroutine(), what,
             goro__load_relaxed(&goro__S.gomaxprocs), goro__load_relaxed(&goro__S.mcount));
}

static void dump_plain(writer *w, bool frames) {
    if (!goro__S.allp) {
        w_printf(w, "goro: no runtime is running\n");
        return;
    }
    dumpctx c = {.w = w, .frames = frames, .self = goro__getg(), .now = goro__nanotime_coarse()};
    dump_header(w, "");
    goro__for_each_g(dump_g, &c);
}

void goro__dump_locked(int fd, bool frames) {
    writer w = {.fd = fd};
    dump_plain(&w, frames);
    w_flush(&w);
}

/* ------------------------------------------------------------------ JSON */

static void json_pc(writer *w, uintptr_t pc) {
    Dl_info info;
    w_printf(w, "{\"pc\":\"0x%lx\"", (unsigned long)pc);
    if (dladdr((void *)pc, &info) && info.dli_fname) {
        w_put(w, ",\"function\":", 12);
        w_json_str(w, info.dli_sname);
        uintptr_t base = (uintptr_t)(info.dli_sname ? info.dli_saddr : info.dli_fbase);
        w_printf(w, ",\"offset\":%lu,\"object\":", (unsigned long)(pc - base));
        w_json_str(w, info.dli_fname);
    }
    w_put(w, "}", 1);
}

/* The fields a goroutine and a group share: state, wait reason, frames, spawn site. */
static void json_stack(writer *w, const grec *r) {
    w_put(w, "\"state\":", 8);
    w_json_str(w, r->state);
    w_put(w, ",\"wait_reason\":", 15);
    w_json_str(w, r->reason);
    w_put(w, ",\"frames\":[", 11);
    for (int i = 0; i < r->npc; i++) {
        if (i)
            w_put(w, ",", 1);
        json_pc(w, r->pcs[i]);
    }
    w_put(w, "],\"spawned_at\":", 15);
    if (r->spawn_pc)
        json_pc(w, r->spawn_pc);
    else
        w_put(w, "null", 4);
}

typedef struct json_walk {
    dumpctx c;
    bool first;
} json_walk;

static void json_g(goro__g *g, void *arg) {
    json_walk *j = arg;
    grec r;
    if (!capture(g, &j->c, &r))
        return;
    writer *w = j->c.w;
    w_printf(w, "%s\n{\"id\":%llu,\"name\":", j->first ? "" : ",", (unsigned long long)r.id);
    w_json_str(w, r.name);
    w_printf(w, ",\"wait_ms\":%lld,", r.wait_ms);
    json_stack(w, &r);
    w_put(w, "}", 1);
    j->first = false;
}

static void json_header(writer *w) {
    w_printf(w, "{\"count\":%d,\"procs\":%d,\"threads\":%d", goro_numgoroutine(),
             goro__load_relaxed(&goro__S.gomaxprocs), goro__load_relaxed(&goro__S.mcount));
}

static void dump_json(writer *w, bool frames) {
    json_walk j = {
        .c = {.w = w, .frames = frames, .self = goro__getg(), .now = goro__nanotime_coarse()},
        .first = true};
    json_header(w);
    w_put(w, ",\"goroutines\":[", 15);
    goro__for_each_g(json_g, &j);
    w_put(w, "]}\n", 3);
}

/* ------------------------------------------------------------------ grouped */

/* Goroutines with the same state, wait reason, frames and spawn site. */
typedef struct group {
    grec rec; /* the first member's record; its id and name are not the group's */
    uint64_t hash;
    long long count, wait_min, wait_max;
    uint64_t *ids;
    size_t nids, cids;
} group;

typedef struct grouping {
    dumpctx c;
    group *groups;
    size_t ngroups, cgroups;
    int32_t *table; /* open addressing: index into groups, -1 empty */
    size_t tsize;   /* a power of two, at least twice ngroups */
    bool nomem;
} grouping;

static uint64_t rec_hash(const grec *r) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
#define MIX(v) (h = (h ^ (uint64_t)(v)) * 1099511628211ull)
    MIX((uintptr_t)r->state);
    MIX((uintptr_t)r->reason);
    MIX(r->spawn_pc);
    MIX(r->npc);
    for (int i = 0; i < r->npc; i++)
        MIX(r->pcs[i]);
#undef MIX
    return h;
}

/* state and reason point into constant tables, so pointer equality is string equality. */
static bool rec_same(const grec *a, const grec *b) {
    return a->state == b->state && a->reason == b->reason && a->spawn_pc == b->spawn_pc &&
           a->npc == b->npc && memcmp(a->pcs, b->pcs, (size_t)a->npc * sizeof a->pcs[0]) == 0;
}

static bool table_grow(grouping *gr) {
    size_t size = gr->tsize ? gr->tsize * 2 : 64;
    int32_t *t = malloc(size * sizeof *t);
    if (!t)
        return false;
    memset(t, 0xff, size * sizeof *t);
    for (size_t i = 0; i < gr->ngroups; i++) {
        size_t k = gr->groups[i].hash & (size - 1);
        while (t[k] >= 0)
            k = (k + 1) & (size - 1);
        t[k] = (int32_t)i;
    }
    free(gr->table);
    gr->table = t;
    gr->tsize = size;
    return true;
}

static void group_g(goro__g *g, void *arg) {
    grouping *gr = arg;
    grec r;
    if (gr->nomem || !capture(g, &gr->c, &r))
        return;
    /* The dumping goroutine is in a group of its own: its frames are the dump's. */
    uint64_t h = rec_hash(&r) ^ (r.self ? 0x9e3779b97f4a7c15ull : 0);
    size_t k = h & (gr->tsize - 1);
    group *grp = NULL;
    for (; gr->table[k] >= 0; k = (k + 1) & (gr->tsize - 1)) {
        group *cand = &gr->groups[gr->table[k]];
        if (cand->hash == h && cand->rec.self == r.self && rec_same(&cand->rec, &r)) {
            grp = cand;
            break;
        }
    }
    if (!grp) {
        if (gr->ngroups == gr->cgroups) {
            size_t c = gr->cgroups ? gr->cgroups * 2 : 16;
            group *a = realloc(gr->groups, c * sizeof *a);
            if (!a) {
                gr->nomem = true;
                return;
            }
            gr->groups = a;
            gr->cgroups = c;
        }
        grp = &gr->groups[gr->ngroups];
        *grp = (group){.rec = r, .hash = h, .wait_min = r.wait_ms, .wait_max = r.wait_ms};
        gr->table[k] = (int32_t)gr->ngroups++;
        if (2 * gr->ngroups > gr->tsize && !table_grow(gr)) {
            gr->nomem = true;
            return;
        }
    }
    if (grp->nids == grp->cids) {
        size_t c = grp->cids ? grp->cids * 2 : 8;
        uint64_t *a = realloc(grp->ids, c * sizeof *a);
        if (!a) {
            gr->nomem = true;
            return;
        }
        grp->ids = a;
        grp->cids = c;
    }
    grp->ids[grp->nids++] = r.id;
    grp->count++;
    if (r.wait_ms < grp->wait_min)
        grp->wait_min = r.wait_ms;
    if (r.wait_ms > grp->wait_max)
        grp->wait_max = r.wait_ms;
}

/* Biggest group first; equal counts by their lowest goroutine id (walk order). */
static int group_cmp(const void *a, const void *b) {
    const group *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return x->ids[0] < y->ids[0] ? -1 : x->ids[0] > y->ids[0];
}

#define TEXT_IDS 10 /* ids listed per group in the text form */

static int dump_grouped(writer *w, bool frames, bool json) {
    grouping gr = {
        .c = {.w = w, .frames = frames, .self = goro__getg(), .now = goro__nanotime_coarse()}};
    int err = 0;
    if (!table_grow(&gr))
        return GORO_ENOMEM;
    goro__for_each_g(group_g, &gr);
    if (gr.nomem) {
        err = GORO_ENOMEM;
        goto out_free;
    }
    qsort(gr.groups, gr.ngroups, sizeof *gr.groups, group_cmp);
    if (json) {
        json_header(w);
        w_put(w, ",\"groups\":[", 11);
    } else {
        char what[64];
        snprintf(what, sizeof what, " in %zu groups", gr.ngroups);
        dump_header(w, what);
    }
    for (size_t i = 0; i < gr.ngroups; i++) {
        group *g = &gr.groups[i];
        if (json) {
            w_printf(w, "%s\n{\"count\":%lld,\"wait_ms_min\":%lld,\"wait_ms_max\":%lld,",
                     i ? "," : "", g->count, g->wait_min, g->wait_max);
            json_stack(w, &g->rec);
            w_put(w, ",\"ids\":[", 8);
            for (size_t k = 0; k < g->nids; k++)
                w_printf(w, k ? ",%llu" : "%llu", (unsigned long long)g->ids[k]);
            w_put(w, "]}", 2);
            continue;
        }
        if (g->rec.reason && g->wait_min != g->wait_max)
            w_printf(w, "%lld goroutines [%s, %lld-%lld ms]:", g->count, g->rec.reason, g->wait_min,
                     g->wait_max);
        else if (g->rec.reason)
            w_printf(w, "%lld goroutines [%s, %lld ms]:", g->count, g->rec.reason, g->wait_min);
        else
            w_printf(w, "%lld goroutines [%s]:", g->count,
                     g->rec.self ? "running, dumping" : g->rec.state);
        w_printf(w, " id");
        for (size_t k = 0; k < g->nids && k < TEXT_IDS; k++)
            w_printf(w, " %llu", (unsigned long long)g->ids[k]);
        if (g->nids > TEXT_IDS)
            w_printf(w, " and %zu more", g->nids - TEXT_IDS);
        w_put(w, "\n", 1);
        print_stack(w, &g->rec);
    }
    if (json)
        w_put(w, "]}\n", 3);
out_free:
    for (size_t i = 0; i < gr.ngroups; i++)
        free(gr.groups[i].ids);
    free(gr.groups);
    free(gr.table);
    return err;
}

/* ------------------------------------------------------------------ entry points */

static int dump_any(writer *w, int flags, bool frames) {
    if (!goro__S.allp) {
        if (flags & GORO_DUMP_JSON)
            w_printf(w, "{\"count\":0,\"procs\":0,\"threads\":0,\"%s\":[]}\n",
                     flags & GORO_DUMP_GROUPED ? "groups" : "goroutines");
        else
            w_printf(w, "goro: no runtime is running\n");
        return 0;
    }
    if (flags & GORO_DUMP_GROUPED)
        return dump_grouped(w, frames, flags & GORO_DUMP_JSON);
    if (flags & GORO_DUMP_JSON)
        dump_json(w, frames);
    else
        dump_plain(w, frames);
    return 0;
}

int goro_dump_ex(int fd, int flags) {
    if (flags & ~(GORO_DUMP_GROUPED | GORO_DUMP_JSON) || fd < 0)
        return GORO_EINVAL;
    if (fcntl(fd, F_GETFL) < 0)
        return -errno;
    writer w = {.fd = fd};
    int err;
    goro__m *m = goro__getm();
    if (!goro__S.allp) {
        err = dump_any(&w, flags, false); /* no runtime: says so */
    } else if (!m || !m->curg) {
        /* Outside a goroutine: states only, since the others' stacks may move. */
        pthread_mutex_lock(&goro__S.gfree_lock);
        err = dump_any(&w, flags, false);
        pthread_mutex_unlock(&goro__S.gfree_lock);
    } else {
        /* Stopped, no goroutine can resume, so their stacks hold still while we read. */
        goro__stop_the_world();
        goro__compact_pause(true);
        pthread_mutex_lock(&goro__S.gfree_lock);
        err = dump_any(&w, flags, true);
        pthread_mutex_unlock(&goro__S.gfree_lock);
        goro__compact_pause(false);
        goro__start_the_world(goro__load_relaxed(&goro__S.gomaxprocs));
    }
    w_flush(&w);
    return err ? err : w.err;
}

void goro_dump(int fd) {
    goro__m *m = goro__getm();
    if (!m || !m->curg) {
        goro__dump_locked(fd, false);
        return;
    }
    (void)goro_dump_ex(fd, 0);
}
