/*
 * debug_dump: goro_dump_ex's grouped and JSON forms.
 *
 * 100 goroutines park in park_recv (a receive nobody answers) and 7 in park_mutex (a
 * mutex main holds). Once all have reached their park and the dump has stopped the world,
 * the grouped text must have a group of exactly 100 [chan receive] whose backtrace passes
 * through park_recv, and one of 7 [mutex] through park_mutex; the JSON forms must parse
 * (a small parser below) and carry the documented fields with the same counts, and the
 * ungrouped JSON one entry per goroutine with distinct ids. Bad flags and bad fds are
 * errors. Linked with -rdynamic (ENABLE_EXPORTS) so the test's functions have names.
 */
#include "testutil.h"

#include <ctype.h>
#include <sys/mman.h>

#define NRECV 100
#define NMUTEX 7

static goro_chan *never;
static goro_mutex mu = GORO_MUTEX_INIT;
static goro_waitgroup done = GORO_WAITGROUP_INIT;
static int arrived;  /* goroutines about to park */
static int id_slots; /* spawned_ids taken */
/* The ids of the goroutines spawned (goro_self at their start): ids are handed out in
 * batches per P, so they need not be 2..108 if main moved between Ps while spawning. */
static uint64_t spawned_ids[NRECV + NMUTEX];

static void note_id(void) {
    int k = __atomic_fetch_add(&id_slots, 1, __ATOMIC_RELAXED);
    CHECK(k < NRECV + NMUTEX);
    __atomic_store_n(&spawned_ids[k], goro_self(), __ATOMIC_RELAXED);
}

/* Where id is in spawned_ids, or -1. */
static int spawned_index(uint64_t id) {
    for (int i = 0; i < NRECV + NMUTEX; i++)
        if (__atomic_load_n(&spawned_ids[i], __ATOMIC_RELAXED) == id)
            return i;
    return -1;
}

__attribute__((noinline)) void park_recv(void *arg);
__attribute__((noinline)) void park_mutex(void *arg);

__attribute__((noinline)) void park_recv(void *arg) {
    (void)arg;
    note_id();
    __atomic_add_fetch(&arrived, 1, __ATOMIC_RELEASE); /* after note_id */
    CHECK(goro_chan_recv(never, NULL) == GORO_ECLOSED);
    goro_wg_done(&done);
}

__attribute__((noinline)) void park_mutex(void *arg) {
    (void)arg;
    note_id();
    __atomic_add_fetch(&arrived, 1, __ATOMIC_RELEASE); /* after note_id */
    goro_mutex_lock(&mu);
    goro_mutex_unlock(&mu);
    goro_wg_done(&done);
}

/* ------------------------------------------------------------------ a small JSON parser */

enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };
typedef struct jv {
    int type;
    double num;
    char *str;        /* J_STR */
    struct jv **item; /* J_ARR, J_OBJ values */
    char **key;       /* J_OBJ */
    size_t n;
} jv;

static const char *jp;

static void ws(void) {
    while (isspace((unsigned char)*jp))
        jp++;
}

/* realloc that fails the test when out of memory. */
static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n);
    CHECK(q != NULL);
    return q;
}

static jv *jnew(int type) {
    jv *v = calloc(1, sizeof *v);
    CHECK(v != NULL);
    v->type = type;
    return v;
}

static char *jstring(void) {
    CHECKF(*jp == '"', "JSON: string expected at: %.40s", jp);
    jp++;
    size_t cap = 16, len = 0;
    char *s = malloc(cap);
    CHECK(s != NULL);
    while (*jp != '"') {
        CHECKF(*jp != '\0' && (unsigned char)*jp >= 0x20, "JSON: bad string");
        char ch = *jp++;
        if (ch == '\\') {
            ch = *jp++;
            if (ch == 'u') {
                for (int i = 0; i < 4; i++)
                    CHECKF(isxdigit((unsigned char)jp[i]), "JSON: bad \\u escape");
                ch = (char)strtol((char[]){jp[2], jp[3], 0}, NULL, 16);
                jp += 4;
            } else {
                CHECKF(strchr("\"\\/bfnrt", ch) != NULL, "JSON: bad escape \\%c", ch);
            }
        }
        if (len + 2 > cap)
            s = xrealloc(s, cap *= 2);
        s[len++] = ch;
    }
    jp++;
    s[len] = '\0';
    return s;
}

static jv *jvalue(void) {
    ws();
    jv *v;
    if (*jp == '{' || *jp == '[') {
        int obj = *jp == '{';
        v = jnew(obj ? J_OBJ : J_ARR);
        jp++;
        ws();
        if (*jp == (obj ? '}' : ']')) {
            jp++;
            return v;
        }
        for (;;) {
            v->item = xrealloc(v->item, (v->n + 1) * sizeof *v->item);
            v->key = xrealloc(v->key, (v->n + 1) * sizeof *v->key);
            v->key[v->n] = NULL;
            if (obj) {
                ws();
                v->key[v->n] = jstring();
                ws();
                CHECKF(*jp == ':', "JSON: ':' expected at: %.40s", jp);
                jp++;
            }
            v->item[v->n++] = jvalue();
            ws();
            if (*jp == ',') {
                jp++;
                continue;
            }
            CHECKF(*jp == (obj ? '}' : ']'), "JSON: ',' or end expected at: %.40s", jp);
            jp++;
            return v;
        }
    }
    if (*jp == '"') {
        v = jnew(J_STR);
        v->str = jstring();
        return v;
    }
    if (strncmp(jp, "null", 4) == 0 || strncmp(jp, "true", 4) == 0) {
        v = jnew(*jp == 'n' ? J_NULL : J_BOOL);
        jp += 4;
        return v;
    }
    if (strncmp(jp, "false", 5) == 0) {
        jp += 5;
        return jnew(J_BOOL);
    }
    char *end;
    v = jnew(J_NUM);
    v->num = strtod(jp, &end);
    CHECKF(end != jp, "JSON: value expected at: %.40s", jp);
    jp = end;
    return v;
}

static jv *jparse(const char *text) {
    jp = text;
    jv *v = jvalue();
    ws();
    CHECKF(*jp == '\0', "JSON: trailing text: %.40s", jp);
    return v;
}

static void jfree(jv *v) {
    for (size_t i = 0; i < v->n; i++) {
        jfree(v->item[i]);
        if (v->key[i])
            free(v->key[i]);
    }
    free(v->item);
    free(v->key);
    free(v->str);
    free(v);
}

static jv *jget(const jv *o, const char *key, int type) {
    CHECK(o->type == J_OBJ);
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->key[i], key) == 0) {
            CHECKF(o->item[i]->type == type, "field %s has type %d, want %d", key, o->item[i]->type,
                   type);
            return o->item[i];
        }
    CHECKF(0, "field %s missing", key);
    return NULL;
}

/* Whether a frames array has a frame in function fn; checks each frame's fields. */
static int frames_have(const jv *frames, const char *fn) {
    int found = 0;
    for (size_t i = 0; i < frames->n; i++) {
        const jv *f = frames->item[i];
        const jv *pc = jget(f, "pc", J_STR);
        CHECK(strncmp(pc->str, "0x", 2) == 0);
        for (size_t k = 0; k < f->n; k++)
            if (strcmp(f->key[k], "function") == 0 && f->item[k]->type == J_STR &&
                strcmp(f->item[k]->str, fn) == 0)
                found = 1;
    }
    return found;
}

/* ------------------------------------------------------------------ the test */

/* The frames printed under the line starting with header, up to the blank line. */
static const char *section(const char *text, const char *header) {
    for (const char *p = text; p; p = strchr(p, '\n')) {
        if (*p == '\n')
            p++;
        if (strncmp(p, header, strlen(header)) == 0)
            return p;
    }
    return NULL;
}

static int section_has(const char *sec, const char *word) {
    const char *end = strstr(sec, "\n\n");
    const char *hit = strstr(sec, word);
    return hit && (!end || hit < end);
}

static void check_text(void) {
    char *t = tu_dump_string(GORO_DUMP_GROUPED);
    CHECKF(strncmp(t, "goro: 108 goroutines in ", 24) == 0, "%.200s", t);
    const char *r = section(t, "100 goroutines [chan receive, ");
    CHECKF(r != NULL, "no group of 100 receivers in:\n%s", t);
    CHECKF(section_has(r, "    park_recv+0x"), "%.600s", r);
    CHECK(section_has(r, " and 90 more\n"));
    const char *m = section(t, "7 goroutines [mutex, ");
    CHECKF(m != NULL, "no group of 7 mutex waiters in:\n%s", t);
    CHECKF(section_has(m, "    park_mutex+0x"), "%.600s", m);
    CHECK(!section_has(m, " more\n"));
    CHECK(section(t, "1 goroutines [running, dumping]: id 1\n") != NULL);
    CHECK(r < m); /* biggest first */
    free(t);
}

static void check_json_grouped(void) {
    char *t = tu_dump_string(GORO_DUMP_GROUPED | GORO_DUMP_JSON);
    jv *root = jparse(t);
    CHECK(jget(root, "count", J_NUM)->num == 1 + NRECV + NMUTEX);
    CHECK(jget(root, "procs", J_NUM)->num >= 1);
    CHECK(jget(root, "threads", J_NUM)->num >= 1);
    jv *groups = jget(root, "groups", J_ARR);
    double total = 0;
    int seen_recv = 0, seen_mutex = 0;
    for (size_t i = 0; i < groups->n; i++) {
        jv *g = groups->item[i];
        double count = jget(g, "count", J_NUM)->num;
        CHECK(jget(g, "ids", J_ARR)->n == (size_t)count);
        CHECK(jget(g, "wait_ms_min", J_NUM)->num <= jget(g, "wait_ms_max", J_NUM)->num);
        const char *state = jget(g, "state", J_STR)->str;
        jv *frames = jget(g, "frames", J_ARR);
        total += count;
        if (strcmp(state, "waiting") != 0)
            continue;
        const char *reason = jget(g, "wait_reason", J_STR)->str;
        CHECK(jget(g, "spawned_at", J_OBJ) != NULL);
        if (strcmp(reason, "chan receive") == 0) {
            CHECKF(count == NRECV, "%g receivers", count);
            CHECK(frames_have(frames, "park_recv"));
            seen_recv++;
        } else if (strcmp(reason, "mutex") == 0) {
            CHECKF(count == NMUTEX, "%g mutex waiters", count);
            CHECK(frames_have(frames, "park_mutex"));
            seen_mutex++;
        }
    }
    CHECK(seen_recv == 1 && seen_mutex == 1);
    CHECK(total == 1 + NRECV + NMUTEX);
    jfree(root);
    free(t);
}

static void check_json_list(void) {
    char *t = tu_dump_string(GORO_DUMP_JSON);
    jv *root = jparse(t);
    jv *list = jget(root, "goroutines", J_ARR);
    CHECK(list->n == 1 + NRECV + NMUTEX);
    CHECK(jget(root, "count", J_NUM)->num == (double)list->n);
    static char seen[NRECV + NMUTEX];
    int recv = 0, main_seen = 0;
    for (size_t i = 0; i < list->n; i++) {
        jv *g = list->item[i];
        double id = jget(g, "id", J_NUM)->num;
        int k = id == 1 ? -1 : spawned_index((uint64_t)id);
        CHECKF(id == 1 ? !main_seen : k >= 0 && !seen[k], "goroutine id %g: %s", id,
               id == 1 || k >= 0 ? "listed twice" : "not main's or a spawned one's");
        if (k >= 0)
            seen[k] = 1;
        jget(g, "wait_ms", J_NUM);
        jget(g, "frames", J_ARR);
        if (id == 1) {
            CHECK(strcmp(jget(g, "name", J_STR)->str, "main") == 0);
            CHECK(strcmp(jget(g, "state", J_STR)->str, "running") == 0);
            main_seen = 1;
        } else if (frames_have(jget(g, "frames", J_ARR), "park_recv")) {
            CHECK(strcmp(jget(g, "wait_reason", J_STR)->str, "chan receive") == 0);
            recv++;
        }
    }
    CHECK(main_seen && recv == NRECV);
    jfree(root);
    free(t);
}

static void main_fn(void *arg) {
    (void)arg;
    CHECK(goro_chan_make(&never, 1, 0) == 0);
    goro_mutex_lock(&mu);
    goro_wg_add(&done, NRECV + NMUTEX);
    for (int i = 0; i < NRECV; i++)
        CHECK(goro_spawn(park_recv, NULL) == 0);
    for (int i = 0; i < NMUTEX; i++)
        CHECK(goro_spawn(park_mutex, NULL) == 0);
    /* Each has reached its park once it counted itself; the dump's stop of the world
     * lets those on their way finish parking first. */
    for (long i = 0; __atomic_load_n(&arrived, __ATOMIC_ACQUIRE) < NRECV + NMUTEX; i++) {
        CHECKF(i < 10000000, "only %d goroutines arrived", arrived);
        goro_yield();
    }
    check_text();
    check_json_grouped();
    check_json_list();

    /* Errors. */
    CHECK(goro_dump_ex(1, 4) == GORO_EINVAL);
    CHECK(goro_dump_ex(-1, 0) == GORO_EINVAL);
    int fds[2];
    CHECK(pipe(fds) == 0);
    close(fds[0]);
    close(fds[1]);
    CHECK(goro_dump_ex(fds[0], GORO_DUMP_GROUPED) == -EBADF);

    goro_mutex_unlock(&mu);
    CHECK(goro_chan_close(never) == 0);
    goro_wg_wait(&done);
    goro_chan_release(never);
}

int main(void) {
    /* Outside the runtime: a clear message, and JSON that says there is nothing. */
    CHECK(goro_dump_ex(-1, 0) == GORO_EINVAL);
    CHECK(goro_run(NULL, main_fn, NULL) == 0);
    return tu_pass("debug_dump");
}
