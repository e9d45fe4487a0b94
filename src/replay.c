/*
 * replay.c - deterministic replay: GORO_DEBUG=deterministic=SEED runs the program on one
 * thread with a schedule drawn from a PRNG seeded with SEED, so that the same seed gives
 * the same interleaving (and, for a program whose only inputs are its goroutines, the
 * same output) bit for bit. scripts/shake.sh runs a program under many seeds and prints
 * the first one that fails and the command that replays it.
 *
 * Terms.
 *  - The pool: every runnable goroutine of the one P, in one array owned by this file.
 *    At each decision the P's runnext slot, spawn stack, run queue and the global queue
 *    are emptied into it (in that order, so its order depends only on the history of the
 *    run) and the goroutine to run is drawn uniformly from it.
 *  - A decision point: a park (goro__park's pick), an end (g_end's pick), a yield and a
 *    spawn. At a yield or a spawn the running goroutine is one of the candidates: it goes
 *    on with probability 1/(n+1) among n others.
 *  - The virtual clock: what goro__nanotime, goro__nanotime_coarse and so goro_now,
 *    deadlines, timers and sleeps read. It starts at REPLAY_CLOCK_START, moves by
 *    REPLAY_YIELD_TICK at each yield (so a goroutine that polls a flag with goro_yield
 *    while another sleeps is not a livelock) and otherwise only when nothing is
 *    runnable: it then jumps to the earliest timer and the due timers fire.
 *
 * Invariants
 *  (V1) Only M0 runs goroutines: GOMAXPROCS is 1 (goro_run forces it, goro_maxprocs
 *       refuses to change it), wakep never wakes a thread with one P, no monitor thread
 *       is started (so no preemption, no handoff of a P in a blocking call, no network
 *       poll from outside, no stack compaction), and M0 never gives its P up. So this
 *       file's state is touched by M0 alone, without locks; the clock is a relaxed
 *       atomic only because a SIGQUIT dump may read it from a handler.
 *  (V2) Every choice the scheduler makes goes through the PRNG: sched.c's pick_next and
 *       findrunnable hand over to goro__replay_pick / goro__replay_findrunnable, goro_yield
 *       and goro_spawn to goro__replay_yield, and goro__rand (select's case order) draws
 *       from the same stream. Nothing reads the real clock, addresses or thread ids to
 *       decide anything.
 *  (V3) The netpoller is asked only when the pool is empty and no timer is due (with a
 *       zero timeout while timers exist, else blocking), and every 64th yield with a zero
 *       timeout. The goroutines one poll finds enter the pool sorted by goroutine id:
 *       ids are handed out in spawn order, so deterministic, and epoll's own order of
 *       events is not. (Sorting by fd would do as well; the id is at hand.)
 *  (V4) Nothing runnable, no timer, nobody on the netpoller: the deadlock is fatal as
 *       in the normal scheduler ("all goroutines are asleep - deadlock!").
 *
 * What stays nondeterministic, and is documented (docs/DEBUGGING.md): a peer outside the
 * process, or data that the kernel delivers late (loopback delivers within the sender's
 * system call in practice, which is what makes a loopback echo between goroutines
 * reproducible); real time read by the program itself (clock_gettime, time()); a blocking
 * call (GORO_BLOCKING) blocks the one thread, and whatever it waits for cannot be another
 * goroutine of the program; a goroutine that computes without ever parking or yielding
 * holds the thread for good (no preemption).
 *
 * Costs when off: one predictable branch on goro__replay_on at each hook (goro_yield,
 * pick_next, findrunnable's entry, goro_spawn, goro__rand, the two clocks). When on,
 * a pick is O(what arrived since the last one) plus O(1), and a yield goes through g0.
 *
 * Rejected alternatives
 *  - Recording a real run and replaying its schedule (rr, Go's trace): needs a log and
 *    replays one run; a seed explores new interleavings too, which is what finds bugs.
 *  - Keeping the run queues and drawing an index into them: the runq ring, spawn stack
 *    and global queue would each need a remove-from-the-middle; one array is simpler and
 *    a swap with the last entry removes in O(1).
 *  - Making every channel operation a decision point: more interleavings, but a switch
 *    where the normal scheduler never switches would change what programs see (a send
 *    that never parks would yield); parks, yields and spawns are where Go may switch.
 *
 * See also: sched.c (the hooks), docs/ARCHITECTURE.md section 9b, scripts/shake.sh.
 */
#include <stdlib.h>

#include "atomic.h"
#include "internal.h"

#define REPLAY_CLOCK_START 1000000000 /* 1 s: never 0, which means "no timer" */
#define REPLAY_YIELD_TICK 1000        /* 1 us of virtual time per yield */
#define REPLAY_POLL_EVERY 64          /* yields between two polls while work is runnable */
#define REPLAY_POLL_MAX 4096          /* goroutines taken from one round of polls */

bool goro__replay_on;      /* [init-only] */
int64_t goro__replay_time; /* [atomic] the virtual clock; written by M0 only (V1) */

static struct {
    uint64_t state;   /* [owner-P] splitmix64 state */
    goro__g **pool;   /* [owner-P] runnable goroutines */
    size_t n;         /* [atomic] written by M0 only; goro_stats_get reads it */
    size_t cap;       /* [owner-P] */
    uint64_t yields;  /* [owner-P] yields so far, for REPLAY_POLL_EVERY */
    goro__g **polled; /* [owner-P] REPLAY_POLL_MAX entries, a poll's goroutines */
} R;

void goro__replay_init(int64_t seed) {
    goro__replay_fini();
    goro__replay_on = seed != 0;
    R.state = (uint64_t)seed;
    goro__store_relaxed(&goro__replay_time, (int64_t)REPLAY_CLOCK_START);
}

void goro__replay_fini(void) {
    free(R.pool);
    free(R.polled);
    R.pool = R.polled = NULL;
    R.n = R.cap = 0;
    R.yields = 0;
    goro__replay_on = false;
}

/* splitmix64 (Steele, Lea and Flood, 2014): a 64-bit counter through a mixing function;
 * every seed gives a full-period stream of good quality. */
uint64_t goro__replay_rand(void) {
    uint64_t z = (R.state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, n), n > 0: the high half of a 64x64-bit product (its bias is below
 * n / 2^64, and it is the same on every run, which is what counts here). */
static size_t below(size_t n) {
    return (size_t)(((__uint128_t)goro__replay_rand() * n) >> 64);
}

static void set_clock(int64_t t) {
    goro__store_relaxed(&goro__replay_time, t);
    /* The "waiting since" stamp of parks (the monitor keeps it otherwise). */
    goro__store_relaxed(&goro__S.coarse_now, t);
}

static void pool_add(goro__g *g) {
    if (R.n == R.cap) {
        size_t nc = R.cap ? 2 * R.cap : 256;
        goro__g **np = realloc(R.pool, nc * sizeof *np);
        if (!np)
            goro__fatal("out of memory growing the deterministic scheduler's pool");
        R.pool = np;
        R.cap = nc;
    }
    R.pool[R.n] = g;
    goro__store_relaxed(&R.n, R.n + 1); /* relaxed: a count for goro_stats_get */
}

size_t goro__replay_queued(void) {
    return goro__load_relaxed(&R.n);
}

/* Moves every runnable goroutine of p (and of the global queue) into the pool, in a
 * fixed order (V2). With one P the queues need no atomics (runq.h's "alone" forms). */
static void absorb(goro__p *p) {
    goro__g *g;
    while (goro__load_relaxed(&goro__S.runq_size) && (g = goro__globrunq_get(p, 1)))
        pool_add(g);
    if (goro__load_relaxed(&p->runnext) && (g = goro__xchg_acqrel(&p->runnext, NULL)))
        pool_add(g);
    while ((g = goro__lifo_pop(&p->lifo, true)))
        pool_add(g);
    while ((g = goro__runq_get_alone(&p->runq)))
        pool_add(g);
}

/* Runs p's timers due at the virtual now; their goroutines become runnable on p. */
static void run_timers(goro__p *p) {
    int64_t t0 = goro__load_relaxed(&p->timer0);
    if (t0 && t0 <= goro__load_relaxed(&goro__replay_time))
        goro__timers_run(p, goro__load_relaxed(&goro__replay_time), 0);
}

static int by_id(const void *a, const void *b) {
    uint64_t x = goro__g_id(*(goro__g *const *)a), y = goro__g_id(*(goro__g *const *)b);
    return x < y ? -1 : x > y;
}

/* Polls the netpoller (deadline 0 or GORO_FOREVER) and puts what it finds into the
 * pool, sorted by id (V3). Returns how many. */
static int poll_net(int64_t deadline) {
    if (!R.polled && !(R.polled = malloc(REPLAY_POLL_MAX * sizeof *R.polled)))
        goro__fatal("out of memory polling in the deterministic scheduler");
    int n = 0;
    /* Everything ready at this moment: a batch of events may leave more for the next
     * call. Only the first call may wait. */
    for (int got; n < REPLAY_POLL_MAX - GORO__NETPOLL_BATCH; n += got) {
        got = goro__netpoll(n ? 0 : deadline, R.polled + n, GORO__NETPOLL_BATCH);
        if (got == 0)
            break;
    }
    if (n == 0)
        return 0;
    qsort(R.polled, (size_t)n, sizeof *R.polled, by_id);
    for (int i = 0; i < n; i++) {
        goro__store_relaxed(&R.polled[i]->status, GORO__G_RUNNABLE);
        pool_add(R.polled[i]);
    }
    /* Release: after they are queued (netpoll.c, N4); one thread, so none runs before. */
    goro__add_acqrel(&goro__S.npollwait, -n);
    return n;
}

goro__g *goro__replay_pick(goro__p *p) {
    run_timers(p);
    absorb(p);
    if (R.n == 0)
        return NULL;
    size_t i = below(R.n);
    goro__g *g = R.pool[i];
    R.pool[i] = R.pool[R.n - 1];
    goro__store_relaxed(&R.n, R.n - 1);
    return g;
}

goro__g *goro__replay_findrunnable(goro__m *m) {
    goro__p *p = m->p;
    GORO_ASSERT(p != NULL); /* (V1) M0 keeps its P */
    for (;;) {
        if (goro__load_acquire(&goro__S.exiting))
            return NULL;
        goro__g *g = goro__replay_pick(p);
        if (g)
            return g;
        /* Nothing runnable (V3, V4). */
        int64_t t0 = goro__load_relaxed(&p->timer0);
        bool pollers = goro__load_acquire(&goro__S.npollwait) > 0;
        if (pollers && poll_net(t0 ? 0 : GORO_FOREVER))
            continue;
        if (t0) {
            if (t0 > goro__load_relaxed(&goro__replay_time))
                set_clock(t0);
            continue; /* the pick runs the timers now due */
        }
        if (!pollers)
            goro__fatal("all goroutines are asleep - deadlock!");
        /* A blocking poll that returned nothing (a signal): poll again. */
    }
}

void goro__replay_yield(void) {
    goro__m *m = goro__acquirem();
    goro__p *p = m->p;
    set_clock(goro__load_relaxed(&goro__replay_time) + REPLAY_YIELD_TICK);
    run_timers(p);
    absorb(p);
    if (++R.yields % REPLAY_POLL_EVERY == 0 && goro__load_acquire(&goro__S.npollwait))
        poll_net(0);
    /* The yielder is one of n + 1 candidates: it goes on if it draws n; otherwise the
     * pick in goro__yield_now draws uniformly among the other n. */
    bool stay = below(R.n + 1) == R.n;
    goro__releasem(m);
    if (!stay)
        goro__yield_now();
}
