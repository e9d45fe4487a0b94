/*
 * netpoll.c - the netpoller: goroutines wait for fds here instead of blocking threads
 * (Go's netpoll.go, with its pollDesc as goro__pollfd).
 *
 * Every fd used through goro_read/goro_write/... gets a goro__pollfd in a table indexed
 * by the fd number (pages of 1024, allocated on first use and kept until goro_run ends).
 * On first use the fd is made non-blocking and added once to the poll set, edge-
 * triggered for both directions, with its number and incarnation (seq) as the event's
 * data. An I/O call first tries the system call; on EAGAIN it waits here
 * (goro__pollfd_wait) and tries again.
 *
 * Backends. The poll set is epoll (netpoll_epoll.c, the default) or io_uring
 * (netpoll_uring.c), chosen from GORO_NETPOLL when the poller starts (the first fd a
 * goro_run registers) and fixed until goro__netpoll_fini; the pollset_* functions below
 * dispatch with one branch. io_uring that cannot be set up falls back to epoll, with a
 * warning if it was asked for by name. Two differences reach this file: a poll request
 * holds its file, so an fd closed with close(2) is removed too (goro__netpoll_fresh);
 * and io_uring may end an fd's poll by itself (GORO__POLL_REARM), which fire re-adds
 * only for the current incarnation (N3).
 *
 * Readiness. An event sets the fd's ready bits and wakes every goroutine waiting for
 * those directions. A waiter that finds a ready bit set consumes it and retries at once
 * instead of parking: the edge arrived between its EAGAIN and its wait. Edge-triggered
 * events come once per change, so this bit is what keeps a wake-up from being lost.
 *
 * Invariants
 *  (N1) pd->waiters, ready, seq and closing change only under pd->lock. A waiter is in
 *       the list from its wait until one waker removes it (event, its deadline timer, or
 *       goro_close); that waker alone sets its result and readies it.
 *  (N2) A waiter joins the list and parks with the lock held; the park's commit
 *       callback arms its timer, counts it in sched.npollwait and drops the lock, so no
 *       waker sees it before it is WAITING (sched.c, P1).
 *  (N3) goro_close bumps seq, removes the fd from the poll set, then closes it: an
 *       event already fetched for the old fd carries the old seq and is dropped, so a
 *       reused fd number never wakes a waiter of the old one.
 *  (N4) sched.npollwait counts parked waiters; the scheduler polls only while it is
 *       non-zero, and deadlock detection treats them as wakeable. A waiter the poller
 *       found stays counted until its goroutine is in a run queue (inject in sched.c),
 *       so the monitor, which polls without being an M, never holds one that no count
 *       or queue shows; and it is uncounted before it can run, so goro_stats'
 *       netpoll_waiting never counts a goroutine that has run since its wake-up (tests
 *       wait on it for "parked"). To the global queue both happen under sched.lock
 *       (goro__polled_to_global); to a P's queue the count drops first, while the
 *       injecting M runs with that P. Wakers other than the poller (goro_close, a
 *       deadline) uncount the waiter before they ready it.
 *  (N5) Every goro_read/write/accept/fd_wait holds a reference on the fd (pd->refs) for
 *       its whole duration, and goro_close only sets REF_CLOSING: whoever brings the
 *       count to zero with REF_CLOSING set (goro_close itself, or the last call to
 *       finish) resets the word and closes the fd (Go's fdMutex). So a call woken just
 *       before goro_close never reads from a reused fd number, and a call started
 *       after it returns GORO_ECANCELED.
 *  (N6) A read that returned less than it asked for emptied the socket's buffer as of
 *       its start; data arriving later makes an event, which bumps pd->rev. So if rev
 *       is unchanged since such a read began (pd->rdrained), the buffer is still
 *       empty and the next read may wait without trying the system call first (it
 *       would return EAGAIN): nginx's "ready = 0" after a short recv. A read that
 *       waits this way still checks the ready bit under the lock, like any other.
 *       End of file is a state, not data: its one event may come before the short
 *       read, so once the fd reported a hang-up (pd->hup) reads always try.
 *  (N7) Read deadlines are lazy, as nginx's timers and Go's netpoll deadlines: a reader
 *       alone on its fd is watched by the fd's own timer (pd->rtimer), which stays armed
 *       when the reader is woken early, and is not moved when the next read's deadline
 *       is later (a keep-alive connection's idle timeout moves on with every request):
 *       when it fires it times the reader out if its deadline has passed, and otherwise
 *       arms itself again for that deadline. So a request costs no timer-heap work; a
 *       heap operation happens once per timeout period. A deadline earlier than the
 *       armed time, or a second reader, uses a timer of the waiter's own.
 *  (N8) A socket is read and written with recv(2) and send(2) with no flags, which do
 *       what read(2) and write(2) do on it (SIGPIPE included) without the file layer's
 *       work (position lock, permission hook, fsnotify): about 3% of hello_server's
 *       CPU per request. pd->sock is set with the registration and never changes for an
 *       incarnation.
 *
 * Who polls: an M looking for work polls without waiting before it steals; an M with
 * nothing at all to do blocks in the poll with the next timer as its timeout (at most
 * one at a time, sched.polling); the monitor polls if nobody has for 10 ms (sched.c,
 * sysmon.c). goro__netpoll_break (the backend's: an eventfd, or a no-op in the ring) wakes
 * the blocked one.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic.h"
#include "internal.h"
#include "tracer.h"
#include "netpoll.h"

#define PAGE_SHIFT 10
#define PAGE_FDS (1 << PAGE_SHIFT)
#define MAX_PAGES 4096 /* 4M fds */

enum { PD_UNKNOWN = 0, PD_POLLED, PD_NOT_POLLABLE };

typedef struct waiter {
    struct waiter *next; /* [lock: pd->lock] */
    goro__g *g;
    goro__pollfd *pd;
    int mode;            /* wanted: GORO_READABLE | GORO_WRITABLE */
    int result;          /* set by the waker that removed it (N1) */
    bool timed;          /* its own timer below is armed for its deadline */
    uint32_t timer_done; /* [atomic] the deadline timer finished with this waiter */
    int64_t deadline;    /* with pd->rwaiter == this: the fd's read timer watches it (N7) */
    goro__timer timer;
} waiter;

/* pd->refs: calls in progress on the fd, and REF_CLOSING once goro_close ran (N5). */
#define REF_CLOSING 0x80000000u

struct goro__pollfd {
    uint32_t lock;          /* spin lock (N1) */
    uint32_t refs;          /* [atomic] (N5) */
    uint32_t state;         /* [atomic] PD_*; written under lock */
    uint32_t seq;           /* [lock] incarnation of the fd number (N3) */
    uint32_t ready;         /* [lock] directions with an edge no waiter consumed yet */
    uint32_t rev;           /* [atomic] readable events fetched so far; written under lock (N6) */
    uint32_t rdrained;      /* [atomic] rev + 1 as of the start of a read that drained the fd */
    bool closing;           /* [lock] goro_close ran; cleared when the number is registered again */
    bool stream;            /* [lock, then read after state's acquire] a byte stream (N6) */
    bool sock;              /* [lock, then read after state's acquire] a socket (N8) */
    bool hup;               /* [atomic] end of file or hang-up seen: reads always try (N6) */
    struct waiter *rwaiter; /* [lock] the reader whose deadline rtimer watches (N7) */
    int64_t rtimer_when;    /* [lock] when rtimer is armed for; 0: not armed (N7) */
    goro__timer rtimer;     /* the fd's lazy read-deadline timer (N7) */
    waiter *waiters;        /* [lock] */
};

static goro__pollfd *pages[MAX_PAGES]; /* [atomic] entries published with release */
static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t inited; /* [atomic] the poll set exists */
static int backend;     /* [init-only: set before inited's release] GORO_NETPOLL_* */
static int fallback;    /* [init-only] why io_uring was not used, when epoll runs instead */

/* The backend dispatch (netpoll.h). One predictable branch per call; the backend is
 * fixed from poller_init to goro__netpoll_fini. */
static inline bool uring(void) {
    return backend == GORO_NETPOLL_IO_URING;
}
static int pollset_add(int fd, uint64_t data) {
    return uring() ? goro__uring_add(fd, data) : goro__epoll_add(fd, data);
}
/* closed: fd was closed with close(2), which took it out of an epoll set but does not
 * stop an io_uring poll (it holds the file). */
static void pollset_del(int fd, uint64_t data, bool closed) {
    if (uring())
        goro__uring_del(data);
    else if (!closed)
        goro__epoll_del(fd);
}
static int pollset_wait(int64_t deadline, goro__pollev *out, int max) {
    return uring() ? goro__uring_wait(deadline, out, max) : goro__epoll_wait(deadline, out, max);
}

/* Which backend GORO_NETPOLL asks for: epoll, io_uring, or (unset, or a value that is
 * neither, with a warning) the default, GORO__NETPOLL_DEFAULT. *explicit: it was named. */
static int wanted_backend(bool *explicit) {
    const char *s = getenv("GORO_NETPOLL");
    *explicit = false;
    if (!s || !*s)
        return GORO__NETPOLL_DEFAULT;
    if (strcmp(s, "epoll") == 0 || strcmp(s, "io_uring") == 0) {
        *explicit = true;
        return s[0] == 'e' ? GORO_NETPOLL_EPOLL : GORO_NETPOLL_IO_URING;
    }
    fprintf(stderr, "goro: ignoring GORO_NETPOLL=%s (want epoll or io_uring)\n", s);
    return GORO__NETPOLL_DEFAULT;
}

/* Sets the poll set up with the wanted backend. io_uring may be unavailable (ENOSYS under
 * qemu-user, Valgrind or an old kernel; EPERM from seccomp or kernel.io_uring_disabled):
 * then epoll, silently unless io_uring was asked for by name. Caller holds init_lock. */
static int pollset_init(void) {
    bool explicit;
    fallback = 0;
    if (wanted_backend(&explicit) == GORO_NETPOLL_IO_URING) {
        int e = goro__uring_init();
        if (!e) {
            backend = GORO_NETPOLL_IO_URING;
            return 0;
        }
        fallback = e;
        if (explicit)
            fprintf(stderr, "goro: GORO_NETPOLL=io_uring: io_uring unavailable (%s); using epoll\n",
                    goro_strerror(e));
    }
    backend = GORO_NETPOLL_EPOLL;
    return goro__epoll_init();
}

static int poller_init(void) {
    if (goro__load_acquire(&inited))
        return 0;
    pthread_mutex_lock(&init_lock);
    int err = 0;
    if (!inited) {
        err = pollset_init();
        if (!err)
            goro__store_release(&inited, 1);
    }
    pthread_mutex_unlock(&init_lock);
    return err;
}

int goro__netpoll_backend(int *why) {
    /* Acquire: pairs with the release of inited, after backend was set. */
    if (!goro__load_acquire(&inited)) {
        *why = 0;
        return GORO_NETPOLL_NONE;
    }
    *why = backend == GORO_NETPOLL_EPOLL ? fallback : 0;
    return backend;
}

void goro__netpoll_fini(void) {
    pthread_mutex_lock(&init_lock);
    if (inited && uring())
        goro__uring_fini();
    else if (inited)
        goro__epoll_fini();
    inited = 0;
    backend = GORO_NETPOLL_NONE;
    for (int i = 0; i < MAX_PAGES; i++) {
        free(pages[i]);
        pages[i] = NULL;
    }
    pthread_mutex_unlock(&init_lock);
}

/* The state of fd; NULL when its page does not exist and create is false. */
static goro__pollfd *lookup(int fd, bool create) {
    if (fd < 0 || fd >= MAX_PAGES * PAGE_FDS)
        return NULL;
    goro__pollfd **slot = &pages[fd >> PAGE_SHIFT];
    /* Acquire pairs with the release below: the page's zeroed bytes are visible. */
    goro__pollfd *page = goro__load_acquire(slot);
    if (!page && create) {
        pthread_mutex_lock(&init_lock);
        page = *slot;
        if (!page && (page = calloc(PAGE_FDS, sizeof *page)))
            goro__store_release(slot, page);
        pthread_mutex_unlock(&init_lock);
    }
    return page ? &page[fd & (PAGE_FDS - 1)] : NULL;
}

/* Whether a short read of fd means its buffer is empty (N6): TCP and Unix stream sockets
 * and pipes; not datagram sockets (one datagram per read) nor terminals (one line).
 * *sock: fd is a socket of any type (N8). */
static bool is_stream(int fd, bool *sock) {
    struct stat st;
    *sock = false;
    if (fstat(fd, &st) != 0)
        return false;
    if (S_ISFIFO(st.st_mode))
        return true;
    *sock = S_ISSOCK(st.st_mode);
    int type = 0;
    socklen_t len = sizeof type;
    return *sock && getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
}

/* Registers fd on first use (see the top comment). Returns 0 or -errno. */
static int ensure_registered(goro__pollfd *pd, int fd, bool *pollable) {
    /* Acquire: pairs with the release store of state below, by whoever registered. */
    uint32_t st = goro__load_acquire(&pd->state);
    if (GORO__LIKELY(st != PD_UNKNOWN)) {
        *pollable = st == PD_POLLED;
        return 0;
    }
    int e = poller_init();
    if (e)
        return e;
    goro__spin_lock(&pd->lock);
    if (pd->state == PD_UNKNOWN) {
        int flags = fcntl(fd, F_GETFL);
        if (flags < 0 || (!(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)) {
            e = -errno;
            goro__spin_unlock(&pd->lock);
            return e;
        }
        pd->closing = false;
        pd->ready = 0;
        pd->stream = is_stream(fd, &pd->sock);
        goro__store_relaxed(&pd->hup, false);
        e = pollset_add(fd, (uint64_t)(uint32_t)fd | (uint64_t)pd->seq << 32);
        if (e == -EPERM) {
            /* Regular files and directories are always "ready": callers block instead.
             * Put the flags back: the file may be shared with other processes. */
            fcntl(fd, F_SETFL, flags);
            goro__store_release(&pd->state, PD_NOT_POLLABLE);
        } else if (e == 0 || e == -EEXIST) {
            goro__store_release(&pd->state, PD_POLLED);
        } else {
            goro__spin_unlock(&pd->lock);
            return e;
        }
    }
    *pollable = pd->state == PD_POLLED;
    goro__spin_unlock(&pd->lock);
    return 0;
}

goro__pollfd *goro__pollfd_get(int fd, bool *pollable, int *err) {
    goro__pollfd *pd = lookup(fd, true);
    if (!pd) {
        *err = fd < 0 || fd >= MAX_PAGES * PAGE_FDS ? -EBADF : GORO_ENOMEM;
        return NULL;
    }
    *err = ensure_registered(pd, fd, pollable);
    return *err ? NULL : pd;
}

/* Takes w out of pd's list. Caller holds pd->lock. Returns false if it was not there. */
static bool unlink_waiter(goro__pollfd *pd, waiter *w) {
    for (waiter **pw = &pd->waiters; *pw; pw = &(*pw)->next) {
        if (*pw == w) {
            *pw = w->next;
            w->next = NULL;
            if (pd->rwaiter == w)
                pd->rwaiter = NULL;
            return true;
        }
    }
    return false;
}

/* A waiter left the netpoller other than through the poller itself: if it was the last,
 * an M blocked in the poll must look again (deadlock detection needs it asleep). */
static void waiter_gone(void) {
    if (goro__add_acqrel(&goro__S.npollwait, -1) == 0 && goro__load_relaxed(&goro__S.polling))
        goro__netpoll_break();
}

static void deadline_fire(goro__timer *t, int64_t now) {
    (void)now;
    waiter *w = t->arg;
    goro__pollfd *pd = w->pd;
    goro__spin_lock(&pd->lock);
    bool mine = unlink_waiter(pd, w);
    if (mine)
        w->result = GORO_ETIMEDOUT;
    goro__spin_unlock(&pd->lock);
    if (mine) {
        waiter_gone();
        goro__ready(w->g);
    }
    /* Release: the waiter, woken by someone else and failing to delete this timer,
     * waits for this store before its frame (which holds w) goes away. */
    goro__store_release(&w->timer_done, 1);
}

/* The fd's read timer (N7). Runs with no lock held; t->arg is the pd. */
static void rtimer_fire(goro__timer *t, int64_t now) {
    goro__pollfd *pd = t->arg;
    goro__g *g = NULL;
    goro__spin_lock(&pd->lock);
    pd->rtimer_when = 0;
    waiter *w = pd->rwaiter;
    if (w && w->deadline <= now) {
        unlink_waiter(pd, w); /* clears rwaiter */
        w->result = GORO_ETIMEDOUT;
        g = w->g;
    } else if (w) {
        /* Fired for an earlier deadline: follow the reader's. */
        t->when = w->deadline;
        pd->rtimer_when = w->deadline;
        goro__timer_add(goro__getm()->p, t);
    }
    goro__spin_unlock(&pd->lock);
    if (g) {
        waiter_gone();
        goro__ready(g);
    }
}

/* The park's commit (N2): runs once the waiter is WAITING. */
static bool wait_commit(goro__g *g, void *arg) {
    (void)g;
    waiter *w = arg;
    goro__pollfd *pd = w->pd;
    goro__add_relaxed(&goro__S.npollwait, 1);
    if (w->timed) {
        goro__timer_add(goro__getm()->p, &w->timer);
    } else if (pd->rwaiter == w && !pd->rtimer_when) {
        pd->rtimer = (goro__timer){.when = w->deadline, .f = rtimer_fire, .arg = pd, .idx = -1};
        pd->rtimer_when = w->deadline;
        goro__timer_add(goro__getm()->p, &pd->rtimer);
    }
    goro__spin_unlock(&pd->lock);
    return true;
}

int goro__pollfd_wait(goro__pollfd *pd, int mode, int64_t deadline) {
    if (deadline == 0)
        return GORO_EAGAIN;
    if (deadline != GORO_FOREVER && deadline <= goro__nanotime())
        return GORO_ETIMEDOUT;
    goro__g *g = goro__getg();
    if (!g)
        return GORO_EPERM;
    waiter w = {.g = g, .pd = pd, .mode = mode, .deadline = deadline};
    goro__spin_lock(&pd->lock);
    if (pd->closing) {
        goro__spin_unlock(&pd->lock);
        goro__race_acquire(pd);
        return GORO_ECANCELED;
    }
    uint32_t r = pd->ready & (uint32_t)mode;
    if (r) {
        pd->ready &= ~r;
        goro__spin_unlock(&pd->lock);
        return (int)r;
    }
    if (deadline != GORO_FOREVER) {
        if (mode == GORO_READABLE && !pd->rwaiter &&
            (!pd->rtimer_when || pd->rtimer_when <= deadline)) {
            pd->rwaiter = &w; /* the fd's timer watches it (N7) */
        } else {
            w.timed = true;
            w.timer = (goro__timer){.when = deadline, .f = deadline_fire, .arg = &w, .idx = -1};
        }
    }
    w.next = pd->waiters;
    pd->waiters = &w;
    goro__park(mode & GORO_READABLE ? GORO__WAIT_IO_READ : GORO__WAIT_IO_WRITE, wait_commit, &w);
    /* Woken by an event, goro_close or the timer (N1). */
    if (w.timed && !goro__timer_del(&w.timer))
        while (!goro__load_acquire(&w.timer_done))
            goro__cpu_relax();
    if (w.result == GORO_ECANCELED)
        goro__race_acquire(pd);
    return w.result;
}

/* Wakes the waiters of fd_seq's fd wanting mode; appends their goroutines to gs (at
 * most max in all; the rest go to the global queue). Returns the new count. Those in gs
 * stay counted in npollwait: the caller queues them, then uncounts them (N4). */
static int fire(goro__pollev ev, goro__g **gs, int n, int max) {
    int fd = (int)(uint32_t)ev.data;
    uint32_t seq = (uint32_t)(ev.data >> 32);
    goro__pollfd *pd = lookup(fd, false);
    if (!pd)
        return n;
    waiter *woken = NULL;
    goro__spin_lock(&pd->lock);
    if (pd->seq != seq || goro__load_relaxed(&pd->state) != PD_POLLED) {
        goro__spin_unlock(&pd->lock); /* an event of a closed incarnation (N3) */
        return n;
    }
    if ((ev.mode & GORO__POLL_REARM) && pollset_add(fd, ev.data) != 0)
        ev.mode |= GORO_READABLE | GORO_WRITABLE; /* no more events: waiters retry */
    if (ev.mode & GORO__POLL_HUP)
        goro__store_relaxed(&pd->hup, true); /* (N6) */
    if (ev.mode & GORO_READABLE)
        goro__store_release(&pd->rev, pd->rev + 1); /* (N6) */
    ev.mode &= GORO_READABLE | GORO_WRITABLE;
    uint32_t unclaimed = ev.mode;
    for (waiter **pw = &pd->waiters; *pw;) {
        waiter *w = *pw;
        if (w->mode & (int)ev.mode) {
            *pw = w->next;
            if (pd->rwaiter == w)
                pd->rwaiter = NULL; /* its timer stays armed, lazily (N7) */
            w->result = w->mode & (int)ev.mode;
            unclaimed &= ~(uint32_t)w->mode;
            w->next = woken;
            woken = w;
        } else {
            pw = &w->next;
        }
    }
    pd->ready |= unclaimed;
    goro__spin_unlock(&pd->lock);
    /* After the unlock no one else touches these waiters but their goroutines. */
    while (woken) {
        waiter *w = woken;
        woken = w->next;
        goro__g *g = w->g;
        goro__trace_netpoll_wake(g);
        if (n < max) {
            gs[n++] = g;
        } else {
            goro__store_relaxed(&g->status, GORO__G_RUNNABLE);
            goro__polled_to_global(&g, 1); /* (N4) */
        }
    }
    return n;
}

int goro__netpoll(int64_t deadline, goro__g **gs, int max) {
    if (!goro__load_acquire(&inited))
        return 0;
    goro__pollev evs[GORO__NETPOLL_BATCH / 4];
    int nev = pollset_wait(deadline, evs, GORO__NETPOLL_BATCH / 4);
    goro__store_relaxed(&goro__S.lastpoll, goro__nanotime());
    int n = 0;
    for (int i = 0; i < nev; i++)
        n = fire(evs[i], gs, n, max);
    return n;
}

void goro__netpoll_break(void) {
    if (!goro__load_acquire(&inited))
        return;
    if (uring())
        goro__uring_break();
    else
        goro__epoll_break();
}

bool goro__pollfd_is_socket(goro__pollfd *pd) {
    return pd->sock; /* written before the release of state, read after its acquire */
}

uint32_t goro__pollfd_rev(goro__pollfd *pd) {
    return goro__load_acquire(&pd->rev); /* pairs with the release in fire (N6) */
}

bool goro__pollfd_drained(goro__pollfd *pd, uint32_t rev) {
    return pd->stream && goro__load_relaxed(&pd->rdrained) == rev + 1 &&
           !goro__load_relaxed(&pd->hup);
}

void goro__pollfd_set_drained(goro__pollfd *pd, uint32_t rev) {
    goro__store_relaxed(&pd->rdrained, rev + 1);
}

/* Forgets fd's registration: wakes its waiters with GORO_ECANCELED, bumps its
 * incarnation and takes it out of the poll set (N3); del false: fd was closed already,
 * with close(2). */
static void forget(goro__pollfd *pd, int fd, bool del) {
    if (goro__load_acquire(&pd->state) == PD_UNKNOWN)
        return;
    goro__spin_lock(&pd->lock);
    uint32_t st = pd->state;
    uint64_t data = (uint64_t)(uint32_t)fd | (uint64_t)pd->seq << 32; /* as registered */
    waiter *list = pd->waiters;
    pd->waiters = NULL;
    pd->rwaiter = NULL;
    pd->closing = true;
    pd->ready = 0;
    pd->seq++;
    goro__store_relaxed(&pd->rdrained, 0);
    goro__store_relaxed(&pd->state, PD_UNKNOWN);
    goro__spin_unlock(&pd->lock);
    if (st == PD_POLLED)
        pollset_del(fd, data, !del);
    while (list) {
        waiter *w = list;
        list = w->next;
        w->result = GORO_ECANCELED;
        waiter_gone();
        goro__ready(w->g);
    }
}

/* The count reached zero with REF_CLOSING set: claim the close (one party wins the CAS,
 * N5) and do it. Returns 0 or -errno of close(2). */
static int close_now(goro__pollfd *pd, int fd) {
    uint32_t closing = REF_CLOSING;
    /* Acq-rel: after every call's unref. The word is reset before close(2), so the
     * next file to get this number starts clean. */
    if (!goro__cas_acqrel(&pd->refs, &closing, 0))
        return 0;
    /* A call that was running when goro_close forgot the fd may have registered it
     * again: forget that too, so the next file with this number starts unknown. */
    forget(pd, fd, true);
    /* Linux releases the fd even when close reports EINTR: never retry. */
    return close(fd) == 0 ? 0 : -errno;
}

goro__pollfd *goro__pollfd_ref(int fd, bool *pollable, int *err) {
    goro__pollfd *pd = lookup(fd, true);
    if (!pd) {
        *err = fd < 0 || fd >= MAX_PAGES * PAGE_FDS ? -EBADF : GORO_ENOMEM;
        return NULL;
    }
    /* Acq-rel RMW on the one word goro_close also changes (N5). The reference comes
     * first: a call refused here must not register a file about to be closed. */
    if (goro__add_acqrel(&pd->refs, 1) & REF_CLOSING) {
        goro__race_acquire(pd);
        *err = GORO_ECANCELED;
    } else if (!(*err = ensure_registered(pd, fd, pollable))) {
        return pd;
    }
    goro__pollfd_unref(pd, fd);
    return NULL;
}

void goro__pollfd_unref(goro__pollfd *pd, int fd) {
    if (goro__add_acqrel(&pd->refs, -1) == REF_CLOSING)
        close_now(pd, fd);
}

int goro__netpoll_close(int fd) {
    goro__pollfd *pd = lookup(fd, false);
    if (!pd)
        return close(fd) == 0 ? 0 : -errno;
    /* Set REF_CLOSING and take a reference of our own, in one step: no call may close
     * the fd while forget's epoll_ctl still uses the number. Acq-rel CAS (N5). */
    uint32_t v = goro__load_relaxed(&pd->refs);
    do {
        if (v & REF_CLOSING)
            return -EBADF; /* closed already, the close waiting for calls to finish */
    } while (!goro__cas_acqrel(&pd->refs, &v, (v + 1) | REF_CLOSING));
    goro__race_release(pd); /* before the calls that fail because of it (race.h) */
    forget(pd, fd, true);
    /* No call in progress: close now; else the last one to finish does. */
    if (goro__add_acqrel(&pd->refs, -1) == REF_CLOSING)
        return close_now(pd, fd);
    return 0;
}

void goro__netpoll_fresh(int fd) {
    /* The old file is closed already (with close(2)); epoll dropped it then. */
    goro__pollfd *pd = lookup(fd, false);
    if (pd)
        forget(pd, fd, false);
}
