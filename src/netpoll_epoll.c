/*
 * netpoll_epoll.c - the netpoller's Linux backend: one epoll set, edge-triggered, each fd
 * added once for both directions; an eventfd in the set breaks a blocked epoll_wait.
 *
 * The rest of the runtime sees only netpoll.c's pollset_* dispatch (netpoll.h), which
 * calls these or netpoll_uring.c's, chosen at run time (GORO_NETPOLL).
 */
#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "atomic.h"
#include "internal.h"
#include "netpoll.h"

#define BREAK_DATA UINT64_MAX /* the eventfd's epoll data; no fd event has it */

static int epfd = -1, evfd = -1;
static uint32_t break_pending;  /* [atomic] the eventfd holds a count nobody read yet */
static bool have_pwait2 = true; /* [atomic-ish] cleared once if the kernel lacks it */

int goro__epoll_init(void) {
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        return -errno;
    evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (evfd < 0) {
        int e = -errno;
        close(epfd);
        epfd = -1;
        return e;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u64 = BREAK_DATA};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, evfd, &ev) != 0) {
        int e = -errno;
        goro__epoll_fini();
        return e;
    }
    return 0;
}

void goro__epoll_fini(void) {
    if (evfd >= 0)
        close(evfd);
    if (epfd >= 0)
        close(epfd);
    evfd = epfd = -1;
    break_pending = 0;
}

int goro__epoll_add(int fd, uint64_t data) {
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.u64 = data};
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -errno;
}

void goro__epoll_del(int fd) {
    struct epoll_event ev = {0}; /* kernels before 2.6.9 want a non-NULL event */
    epoll_ctl(epfd, EPOLL_CTL_DEL, fd, &ev);
}

void goro__epoll_break(void) {
    if (epfd < 0)
        return;
    uint32_t zero = 0;
    /* Acq-rel: one write per drain, however many break. */
    if (!goro__cas_acqrel(&break_pending, &zero, 1))
        return;
    uint64_t one = 1;
    ssize_t r = write(evfd, &one, sizeof one);
    (void)r; /* EAGAIN: the counter is full, so a wake-up is pending anyway */
}

/* epoll_pwait2 takes a nanosecond timeout (Linux 5.11); older kernels get epoll_wait's
 * milliseconds, rounded up so a poll never returns before the timer it waits for. Not
 * under ThreadSanitizer: it runs a signal's handler only when the receiving thread enters
 * a function it intercepts, and the raw system call is not one (epoll_wait is, as a
 * blocking call), so a SIGTERM taken by the poller would wait for its whole timeout,
 * seconds to a server's next idle deadline (see also note_sleep in os_linux.c). */
static int wait_events(struct epoll_event *evs, int max, int64_t deadline) {
    if (deadline == 0)
        return epoll_wait(epfd, evs, max, 0);
    if (deadline == GORO_FOREVER)
        return epoll_wait(epfd, evs, max, -1);
    int64_t left = deadline - goro__nanotime();
    if (left < 0)
        left = 0;
#ifdef SYS_epoll_pwait2
    if (!GORO_TSAN && goro__load_relaxed(&have_pwait2)) {
        struct timespec ts = {.tv_sec = left / 1000000000, .tv_nsec = left % 1000000000};
        int n = (int)syscall(SYS_epoll_pwait2, epfd, evs, max, &ts, NULL, 0);
        if (n >= 0 || errno != ENOSYS)
            return n;
        goro__store_relaxed(&have_pwait2, false);
    }
#endif
    int64_t ms = (left + 999999) / 1000000;
    return epoll_wait(epfd, evs, max, ms > INT32_MAX ? INT32_MAX : (int)ms);
}

int goro__epoll_wait(int64_t deadline, goro__pollev *out, int max) {
    struct epoll_event evs[GORO__NETPOLL_BATCH];
    if (max > GORO__NETPOLL_BATCH)
        max = GORO__NETPOLL_BATCH;
    int n = wait_events(evs, max, deadline);
    if (n < 0)
        return 0; /* EINTR: the caller looks again */
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (evs[i].data.u64 == BREAK_DATA) {
            uint64_t v;
            ssize_t r = read(evfd, &v, sizeof v);
            (void)r;
            /* Release: a breaker that sees 0 writes again, after our read. */
            goro__store_release(&break_pending, 0);
            continue;
        }
        uint32_t e = evs[i].events, mode = 0;
        if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            mode |= GORO_READABLE;
        if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
            mode |= GORO_WRITABLE;
        if (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            mode |= GORO__POLL_HUP;
        out[k++] = (goro__pollev){.data = evs[i].data.u64, .mode = mode};
    }
    return k;
}
