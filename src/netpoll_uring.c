/*
 * netpoll_uring.c - the netpoller's io_uring backend: one ring, a multishot poll request
 * per fd, completions read straight from the shared completion queue.
 *
 * Chosen at run time by netpoll.c (GORO_NETPOLL=epoll|io_uring, docs/ARCHITECTURE.md 7c);
 * the same six functions as netpoll_epoll.c, behind the goro__pollset_* dispatch.
 *
 * Why no liburing: the library depends on libc and pthreads only (the project's rule: a
 * user links libgoro.a and -lpthread, nothing else to install or version). What this file
 * needs of io_uring is small: set up one ring, map it, put poll, cancel and no-op
 * entries in the submission queue, read the completion queue, and wait with a timeout.
 * So it uses the three system calls through syscall(2) and the kernel's own header,
 * <linux/io_uring.h> (linux-libc-dev), for the layout.
 *
 * Terms. SQ: the submission queue (entries we write, the kernel consumes in io_uring_enter);
 * CQ: the completion queue (the kernel writes, we consume by moving cq_head). A multishot
 * poll (IORING_POLL_ADD_MULTI) stays armed after it fires and posts a completion with
 * IORING_CQE_F_MORE each time; one without F_MORE is its last (it "terminated").
 *
 * How it maps onto what netpoll.c expects of a backend (its N-invariants):
 *  - add: one IORING_OP_POLL_ADD, multishot, for POLLIN|POLLOUT|POLLRDHUP, with netpoll's
 *    data (fd number and incarnation) as user_data. Without IORING_POLL_ADD_LEVEL the
 *    kernel's poll is edge-triggered: a completion per wake-up of the file's wait queue,
 *    like EPOLLET, which is what netpoll's ready bits are built for (N1). Arming checks
 *    the state once, so readiness from before the add is reported too, as epoll does.
 *  - terminated polls: the kernel ends a multishot poll when it cannot post a completion
 *    (a full CQ: IORING_FEAT_NODROP keeps the last one in its overflow list) or cancels it
 *    (-ECANCELED). The event carries GORO__POLL_REARM and netpoll's fire, under the fd's
 *    lock and only if the incarnation still matches (N3), adds the fd again: a poll of a
 *    closed incarnation is never re-armed onto a file that reused its number.
 *  - del: IORING_OP_ASYNC_CANCEL by user_data (the exact incarnation), with
 *    IOSQE_CQE_SKIP_SUCCESS. It must be sent even for an fd already closed with close(2)
 *    (goro__netpoll_fresh): unlike an epoll registration, a poll request holds a reference
 *    on the file, so closing the fd alone neither stops the poll nor releases the socket.
 *    Not IORING_OP_POLL_REMOVE: a remove that finds the poll while one of its wake-ups is
 *    being delivered (queued as task work for the submitting thread, which owns the
 *    request until it runs) fails with -EALREADY and leaves the poll armed, and the
 *    socket open for good after goro_close (seen as http_server.uring's "slow client was
 *    never cut", and net_close_parked's closes under traffic). A cancel flags the request
 *    whatever it is doing; the delivery, or task work of its own, ends it with -ECANCELED
 *    (dropped by fire: old incarnation) and drops the file. That task work runs on the
 *    thread that submitted the poll, so the socket is released soon after, not always
 *    before, the close(2) that follows del.
 *  - fds the kernel cannot poll: epoll refuses them with EPERM and netpoll then uses
 *    blocking calls (regular files). A poll request would instead complete at once as
 *    always ready, so add asks the same question of a probe epoll set for anything that
 *    is not a socket or a pipe (first use of an fd only), and answers EPERM alike.
 *  - wait: completions already in the CQ are read from memory with no system call, so the
 *    non-blocking polls of Ms looking for work (sched.c) cost a few loads, where epoll
 *    costs an epoll_wait each. Only a poll that must wait enters the kernel:
 *    io_uring_enter(GETEVENTS, min_complete 1) with IORING_ENTER_EXT_ARG's relative
 *    timeout for a deadline.
 *  - break: an IORING_OP_NOP submitted from the breaking thread. It completes inline in
 *    that io_uring_enter, so its completion wakes the waiter directly; one per drain, as
 *    the epoll backend's eventfd write (break_pending).
 *
 * Threads. add, del and break come from any thread; the SQ has one producer index, so
 * they hold sq_lock from writing the entry to the io_uring_enter that consumes it, and
 * every submission is consumed before the lock is dropped (the SQ is empty between
 * calls). The CQ has one consumer index: a poll holds cq_lock while it reads; a
 * non-blocking poll that finds it taken returns nothing (whoever holds it is reaping and
 * hands what it finds to the scheduler), a waiting one (at most one: sched.polling) takes
 * it. Lock order: pd->lock (netpoll.c), then sq_lock; cq_lock is never held with either.
 *
 * Invariants
 *  (U1) Every SQ entry is written and submitted under sq_lock, and the SQ tail is
 *       published with a release store before the io_uring_enter that consumes it.
 *  (U2) cq_head moves only under cq_lock, by a release store after the entries it passes
 *       were read (the kernel may reuse their slots from then on).
 *  (U3) A poll request's user_data is netpoll's data (fd in the low 32 bits, below
 *       4M); the internal tags below have all low 32 bits set, so they never collide.
 *
 * Costs, and what was rejected:
 *  - One-shot polls re-armed per event (what libuv's io_uring poller did): one submission
 *    per event; multishot has none, a re-arm only after the rare termination. So the
 *    re-arm goes out at once in its own io_uring_enter instead of riding on the next wait.
 *  - A completion is posted by task work on the thread that submitted the poll: the kernel
 *    notifies that thread (TWA_SIGNAL) when a socket wakes the poll. That is why
 *    IORING_SETUP_COOP_TASKRUN is not used (without the notification, a submitter asleep
 *    on its futex would hold the completion back indefinitely), nor DEFER_TASKRUN and
 *    SINGLE_ISSUER (submissions come from every M).
 *  - SQPOLL: a kernel thread polling the SQ would take a CPU of a two-CPU machine.
 *  - Registered ring fds and fixed files: registrations are per thread or per ring slot;
 *    the first would have to be done on every M, the second mirrors the fd table.
 *
 * Valgrind: declined (init returns -ENOSYS, as qemu-user's), see goro__uring_init.
 *
 * ThreadSanitizer: as in netpoll_epoll.c, a signal reaches its handler only when the thread
 * enters an intercepted call, and io_uring_enter through syscall(2) is not one. So in TSan
 * builds a wait is cut into 20 ms slices with an intercepted nanosleep(0) before each,
 * and a poller holding a SIGTERM runs its handler within one slice (os_linux.c does the
 * same for futex sleeps).
 *
 * See-also: netpoll.c (readiness, incarnations, who polls), netpoll_epoll.c.
 */
#include <errno.h>
#include <linux/io_uring.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if GORO_HAVE_VALGRIND_H
#include <valgrind/valgrind.h>
#endif

#include "atomic.h"
#include "internal.h"
#include "netpoll.h"

#define SQ_ENTRIES 16 /* one submission at a time in practice (U1) */
/* Completions waiting for a poll; a full CQ terminates polls (re-armed, see the top).
 * A build may make it tiny to exercise that path (-DGORO_URING_CQ_ENTRIES=16, not
 * fewer than SQ_ENTRIES). */
#ifdef GORO_URING_CQ_ENTRIES
#define CQ_ENTRIES GORO_URING_CQ_ENTRIES
#else
#define CQ_ENTRIES 8192
#endif
#define BREAK_DATA UINT64_MAX        /* the break's NOP (U3) */
#define CANCEL_DATA (UINT64_MAX - 1) /* a del's cancel that failed (U3) */
#define POLL_EVENTS (POLLIN | POLLOUT | POLLRDHUP)
#define TSAN_SLICE_NS 20000000

/* Features the backend relies on: one mapping for both rings (5.4), no lost completions
 * (5.5), a timeout argument to io_uring_enter (5.11), completions skipped on success
 * (5.17; multishot poll, 5.13, comes with it). */
#define NEEDED_FEATS                                                                               \
    (IORING_FEAT_SINGLE_MMAP | IORING_FEAT_NODROP | IORING_FEAT_EXT_ARG | IORING_FEAT_CQE_SKIP)

static struct {
    int fd;       /* [init-only] the ring */
    int probe_fd; /* [init-only] epoll set that only answers "can this fd be polled?" */
    void *ring;   /* [init-only] the SQ and CQ rings, one mapping */
    size_t ring_sz;
    struct io_uring_sqe *sqes; /* [lock: sq_lock] */
    size_t sqes_sz;
    uint32_t *sq_head, *sq_tail, *sq_flags, *sq_array; /* shared with the kernel */
    uint32_t sq_mask, sq_entries;                      /* [init-only] */
    uint32_t *cq_head, *cq_tail;
    struct io_uring_cqe *cqes;
    uint32_t cq_mask;       /* [init-only] */
    uint32_t sq_lock;       /* spin lock (U1) */
    uint32_t cq_lock;       /* spin lock (U2) */
    uint32_t break_pending; /* [atomic] a break's NOP nobody reaped yet */
} R = {.fd = -1, .probe_fd = -1};

static int sys_setup(unsigned entries, struct io_uring_params *p) {
    return (int)syscall(__NR_io_uring_setup, entries, p);
}

static int sys_enter(unsigned to_submit, unsigned min_complete, unsigned flags, const void *arg,
                     size_t argsz) {
    return (int)syscall(__NR_io_uring_enter, R.fd, to_submit, min_complete, flags, arg, argsz);
}

int goro__uring_init(void) {
#if GORO_HAVE_VALGRIND_H
    /* Valgrind (3.19) passes the system calls through but loses the task work that posts
     * a poll's completion when the submitting thread sleeps in a system call (a probe
     * with two threads: the CQ stayed empty for the whole 2 s timeout; natively the
     * completion came in 0.1 ms), so the netpoller would hang. Not implemented there. */
    if (RUNNING_ON_VALGRIND)
        return -ENOSYS;
#endif
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
    p.cq_entries = CQ_ENTRIES;
    int fd = sys_setup(SQ_ENTRIES, &p);
    if (fd < 0)
        return -errno;     /* ENOSYS (qemu-user, valgrind, old kernel), EPERM (seccomp, sysctl) */
    int err = -EOPNOTSUPP; /* a kernel older than 5.17 */
    if ((p.features & NEEDED_FEATS) != NEEDED_FEATS)
        goto out_close;
    R.fd = fd;
    size_t sq_sz = p.sq_off.array + p.sq_entries * sizeof(uint32_t);
    size_t cq_sz = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    R.ring_sz = sq_sz > cq_sz ? sq_sz : cq_sz;
    R.ring = mmap(NULL, R.ring_sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
                  IORING_OFF_SQ_RING);
    if (R.ring == MAP_FAILED) {
        err = -errno;
        goto out_close;
    }
    R.sqes_sz = p.sq_entries * sizeof(struct io_uring_sqe);
    R.sqes = mmap(NULL, R.sqes_sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
                  IORING_OFF_SQES);
    if (R.sqes == MAP_FAILED) {
        err = -errno;
        goto out_unmap_ring;
    }
    char *base = R.ring;
    R.sq_head = (uint32_t *)(base + p.sq_off.head);
    R.sq_tail = (uint32_t *)(base + p.sq_off.tail);
    R.sq_flags = (uint32_t *)(base + p.sq_off.flags);
    R.sq_array = (uint32_t *)(base + p.sq_off.array);
    R.sq_mask = *(uint32_t *)(base + p.sq_off.ring_mask);
    R.sq_entries = p.sq_entries;
    R.cq_head = (uint32_t *)(base + p.cq_off.head);
    R.cq_tail = (uint32_t *)(base + p.cq_off.tail);
    R.cq_mask = *(uint32_t *)(base + p.cq_off.ring_mask);
    R.cqes = (struct io_uring_cqe *)(base + p.cq_off.cqes);
    /* The SQ array maps ring slots to entries: slot i always holds entry i. */
    for (uint32_t i = 0; i < p.sq_entries; i++)
        R.sq_array[i] = i;
    R.probe_fd = epoll_create1(EPOLL_CLOEXEC);
    if (R.probe_fd < 0) {
        err = -errno;
        goto out_unmap_sqes;
    }
    R.sq_lock = R.cq_lock = R.break_pending = 0;
    return 0;

out_unmap_sqes:
    munmap(R.sqes, R.sqes_sz);
out_unmap_ring:
    munmap(R.ring, R.ring_sz);
out_close:
    close(fd);
    R.fd = -1;
    return err;
}

void goro__uring_fini(void) {
    if (R.fd < 0)
        return;
    /* Closing the ring cancels every poll and drops the files they hold. */
    munmap(R.sqes, R.sqes_sz);
    munmap(R.ring, R.ring_sz);
    close(R.fd);
    close(R.probe_fd);
    R.fd = R.probe_fd = -1;
}

/* Writes one entry into the SQ and submits it (U1). Caller holds sq_lock. Returns 0 or
 * -errno of io_uring_enter (a failing operation itself reports through its completion). */
static int submit_one(const struct io_uring_sqe *e) {
    uint32_t tail = *R.sq_tail; /* only ever written under sq_lock */
    memcpy(&R.sqes[tail & R.sq_mask], e, sizeof *e);
    /* Release: the entry's bytes before the tail that hands it to the kernel. */
    goro__store_release(R.sq_tail, tail + 1);
    for (int tries = 0;; tries++) {
        int r = sys_enter(1, 0, 0, NULL, 0);
        if (r == 1)
            return 0;
        int e2 = r < 0 ? errno : EAGAIN;
        /* EINTR: a signal; EAGAIN, EBUSY: the kernel is short of memory or the CQ's
         * overflow list is backed up until a poll drains it. Retry, briefly. */
        if ((e2 != EINTR && e2 != EAGAIN && e2 != EBUSY) || tries == 1000) {
            /* Unconsumed: take it back so the next submission does not send it. */
            if (goro__load_acquire(R.sq_head) != tail + 1)
                goro__store_release(R.sq_tail, tail);
            return -e2;
        }
        sched_yield();
    }
}

/* Whether the kernel can poll fd (see the top comment): 0, -EPERM, or -errno. */
static int pollable(int fd) {
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -errno;
    if (S_ISSOCK(st.st_mode) || S_ISFIFO(st.st_mode))
        return 0;
    struct epoll_event ev = {.events = EPOLLIN};
    if (epoll_ctl(R.probe_fd, EPOLL_CTL_ADD, fd, &ev) != 0)
        return errno == EEXIST ? 0 : -errno;
    epoll_ctl(R.probe_fd, EPOLL_CTL_DEL, fd, &ev);
    return 0;
}

int goro__uring_add(int fd, uint64_t data) {
    int e = pollable(fd);
    if (e)
        return e;
    struct io_uring_sqe sqe;
    memset(&sqe, 0, sizeof sqe);
    sqe.opcode = IORING_OP_POLL_ADD;
    sqe.fd = fd;
    sqe.poll32_events = POLL_EVENTS;
    sqe.len = IORING_POLL_ADD_MULTI;
    sqe.user_data = data;
    goro__spin_lock(&R.sq_lock);
    e = submit_one(&sqe);
    goro__spin_unlock(&R.sq_lock);
    return e;
}

void goro__uring_del(uint64_t data) {
    struct io_uring_sqe sqe;
    memset(&sqe, 0, sizeof sqe);
    sqe.opcode = IORING_OP_ASYNC_CANCEL;
    sqe.fd = -1;
    sqe.flags = IOSQE_CQE_SKIP_SUCCESS;
    sqe.addr = data;
    sqe.user_data = CANCEL_DATA;
    goro__spin_lock(&R.sq_lock);
    submit_one(&sqe); /* ENOENT (terminated already) comes back as a completion, ignored */
    goro__spin_unlock(&R.sq_lock);
}

void goro__uring_break(void) {
    if (R.fd < 0)
        return;
    uint32_t zero = 0;
    /* Acq-rel: one NOP per reap, however many break; the reaper's release store of 0
     * is its partner. */
    if (!goro__cas_acqrel(&R.break_pending, &zero, 1))
        return;
    struct io_uring_sqe sqe;
    memset(&sqe, 0, sizeof sqe);
    sqe.opcode = IORING_OP_NOP;
    sqe.fd = -1;
    sqe.user_data = BREAK_DATA;
    goro__spin_lock(&R.sq_lock);
    if (submit_one(&sqe) != 0)
        goro__store_release(&R.break_pending, 0);
    goro__spin_unlock(&R.sq_lock);
}

static uint32_t mode_of(int32_t res) {
    uint32_t e = (uint32_t)res, mode = 0;
    if (e & (POLLIN | POLLRDHUP | POLLHUP | POLLERR))
        mode |= GORO_READABLE;
    if (e & (POLLOUT | POLLHUP | POLLERR))
        mode |= GORO_WRITABLE;
    if (e & (POLLRDHUP | POLLHUP | POLLERR))
        mode |= GORO__POLL_HUP;
    return mode;
}

/* Moves completions from the CQ into out (at most max); *broken is set if a break's NOP
 * was among them. Caller holds cq_lock (U2). */
static int reap(goro__pollev *out, int max, bool *broken) {
    uint32_t head = *R.cq_head; /* only ever written under cq_lock */
    /* Acquire: pairs with the kernel's release of the tail; the entries before it are
     * written. */
    uint32_t tail = goro__load_acquire(R.cq_tail);
    int k = 0;
    while (head != tail && k < max) {
        const struct io_uring_cqe *c = &R.cqes[head & R.cq_mask];
        uint64_t data = c->user_data;
        int32_t res = c->res;
        uint32_t flags = c->flags;
        head++;
        if (data == BREAK_DATA) {
            /* Release: a breaker that then sees 0 submits again, after this reap. */
            goro__store_release(&R.break_pending, 0);
            *broken = true;
            continue;
        }
        if (data == CANCEL_DATA)
            continue;
        uint32_t mode;
        if (res >= 0)
            mode = mode_of(res);
        else if (res == -ECANCELED)
            mode = 0;
        else
            mode = GORO_READABLE | GORO_WRITABLE; /* waiters retry and meet the error */
        /* Terminated by the kernel (full CQ, cancelled at a thread's exit): netpoll adds
         * it again if the incarnation is still the registered one. */
        if (!(flags & IORING_CQE_F_MORE) && (res >= 0 || res == -ECANCELED))
            mode |= GORO__POLL_REARM;
        if (mode)
            out[k++] = (goro__pollev){.data = data, .mode = mode};
    }
    /* Release: our reads of the passed entries before the kernel may reuse them. */
    goro__store_release(R.cq_head, head);
    return k;
}

int goro__uring_wait(int64_t deadline, goro__pollev *out, int max) {
    if (deadline == 0) {
        uint32_t unlocked = 0;
        /* Acquire on success, pairs with the release in spin_unlock: the previous
         * reaper's cq_head store is seen. Taken: its holder hands out what is there. */
        if (!goro__cas_acqrel(&R.cq_lock, &unlocked, 1))
            return 0;
    } else {
        goro__spin_lock(&R.cq_lock);
    }
    /* Completions the kernel kept in its overflow list while the CQ was full: an
     * io_uring_enter with GETEVENTS moves them into the ring. */
    if (goro__load_relaxed(R.sq_flags) & IORING_SQ_CQ_OVERFLOW)
        sys_enter(0, 0, IORING_ENTER_GETEVENTS, NULL, 0);
    bool broken = false;
    int k = reap(out, max, &broken);
    while (k == 0 && !broken && deadline != 0) {
        int64_t left = 0;
        if (deadline != GORO_FOREVER && (left = deadline - goro__nanotime()) <= 0)
            break;
        struct __kernel_timespec ts;
        struct io_uring_getevents_arg arg;
        memset(&arg, 0, sizeof arg);
        if (GORO_TSAN) {
            struct timespec zero = {0, 0};
            nanosleep(&zero, NULL); /* intercepted: runs deferred signal handlers */
            if (deadline == GORO_FOREVER || left > TSAN_SLICE_NS)
                left = TSAN_SLICE_NS;
        }
        if (deadline != GORO_FOREVER || GORO_TSAN) {
            ts.tv_sec = left / 1000000000;
            ts.tv_nsec = left % 1000000000;
            arg.ts = (uint64_t)(uintptr_t)&ts;
        }
        int r = sys_enter(0, 1, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &arg, sizeof arg);
        int e = r < 0 ? errno : 0;
        k = reap(out, max, &broken);
        /* One wait outside TSan builds: at its timeout (ETIME) or a signal (EINTR) the
         * caller looks again, as with epoll. Under TSan only a slice ended, unless a
         * signal came, whose handler the caller's next intercepted call runs. */
        if (!GORO_TSAN || e == EINTR || (e && e != ETIME))
            break;
    }
    goro__spin_unlock(&R.cq_lock);
    return k;
}
