/*
 * net.c - the network API: sockets and fd I/O that park goroutines, not threads.
 *
 * Every call tries its system call first and waits in the netpoller (netpoll.c) only on
 * EAGAIN, then tries again: a socket with data buffered costs one system call. Fds the
 * poll set does not take (regular files) are used with plain blocking calls inside
 * goro_blocking_begin/end, so they block a thread but never the scheduler.
 *
 * goro_accept out of fds (EMFILE, ENFILE) sleeps with a growing delay and retries,
 * instead of spinning on a listener that stays readable, and returns nothing the caller
 * would have to handle: a server keeps serving the connections it has and accepts again
 * once fds free up.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "atomic.h"
#include "internal.h"
#include "netpoll.h"

#define ACCEPT_BACKOFF_MIN 1000000   /* 1 ms */
#define ACCEPT_BACKOFF_MAX 100000000 /* 100 ms */

/* Splits "host:port", "[v6]:port" or ":port" into host (NULL when empty) and port. */
static int split_addr(const char *addr, char *host, size_t hostsz, char *port, size_t portsz) {
    if (!addr)
        return GORO_EINVAL;
    const char *colon = strrchr(addr, ':');
    if (!colon || colon[1] == 0 || strlen(colon + 1) >= portsz)
        return GORO_EINVAL;
    const char *h = addr;
    size_t hl = (size_t)(colon - addr);
    if (hl > 0 && h[0] == '[') {
        if (hl < 2 || h[hl - 1] != ']')
            return GORO_EINVAL;
        h++;
        hl -= 2;
    } else if (memchr(h, ':', hl)) {
        return GORO_EINVAL; /* an IPv6 address needs brackets */
    }
    if (hl >= hostsz)
        return GORO_EINVAL;
    memcpy(host, h, hl);
    host[hl] = 0;
    strcpy(port, colon + 1);
    for (const char *c = port; *c; c++)
        if (*c < '0' || *c > '9')
            return GORO_EINVAL;
    if (atol(port) > 65535)
        return GORO_EINVAL;
    return 0;
}

/* getaddrinfo for a TCP addr; a name that needs the resolver is looked up in a blocking
 * call. Returns 0, GORO_EINVAL, or -errno-like codes. */
static int resolve(const char *addr, bool passive, struct addrinfo **res) {
    char host[256], port[8];
    int err = split_addr(addr, host, sizeof host, port, sizeof port);
    if (err)
        return err;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_protocol = IPPROTO_TCP};
    hints.ai_flags = (passive ? AI_PASSIVE : 0) | AI_NUMERICSERV | AI_NUMERICHOST;
    const char *h = host[0] ? host : NULL;
    int r = getaddrinfo(h, port, &hints, res);
    if (r == EAI_NONAME && h) {
        hints.ai_flags &= ~AI_NUMERICHOST;
        hints.ai_flags |= AI_ADDRCONFIG;
        r = GORO_BLOCKING(getaddrinfo(h, port, &hints, res));
    }
    switch (r) {
    case 0:
        return 0;
    case EAI_MEMORY:
        return GORO_ENOMEM;
    case EAI_SYSTEM:
        return errno ? -errno : GORO_EINVAL;
    case EAI_AGAIN:
        return GORO_EAGAIN;
    case EAI_NONAME:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
        return -EHOSTUNREACH;
    default:
        return GORO_EINVAL;
    }
}

/* A non-blocking, close-on-exec socket for ai, its netpoller state fresh; -errno on
 * failure. */
static int new_socket(const struct addrinfo *ai) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return -errno;
    goro__netpoll_fresh(fd);
    return fd;
}

int goro_tcp_listen(const char *addr, int backlog) {
    struct addrinfo *res;
    int err = resolve(addr, true, &res);
    if (err)
        return err;
    err = -EADDRNOTAVAIL;
    int fd = -1;
    /* The first address that binds, in getaddrinfo's order. */
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if ((fd = new_socket(ai)) < 0) {
            err = fd;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
            listen(fd, backlog > 0 ? backlog : SOMAXCONN) == 0)
            break;
        err = -errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd < 0 ? err : fd;
}

int goro_tcp_port(int fd) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -errno;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return GORO_EINVAL;
}

/* Takes a reference on fd for one call (netpoll.h): its number stays this file until
 * the call ends, even if goro_close runs meanwhile. *pollable false: use blocking calls. */
static goro__pollfd *fd_ref(int fd, bool *pollable, int *err) {
    if (fd < 0) {
        *err = -EBADF;
        return NULL;
    }
    return goro__pollfd_ref(fd, pollable, err);
}

static int set_nodelay(int fd) {
    int one = 1;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static int accept_ref(goro__pollfd *pd, bool pollable, int listen_fd, int64_t deadline) {
    int err;
    int64_t backoff = 0;
    for (;;) {
        int fd = pollable ? accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)
                          : GORO_BLOCKING(accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC));
        if (fd >= 0) {
            goro__netpoll_fresh(fd);
            set_nodelay(fd); /* fails harmlessly on a non-TCP socket */
            return fd;
        }
        int e = errno;
        switch (e) {
        case EINTR:
        case ECONNABORTED: /* the peer gave up while queued: take the next */
            continue;
        case EAGAIN:
            backoff = 0;
            err = goro__pollfd_wait(pd, GORO_READABLE, deadline);
            if (err < 0)
                return err;
            continue;
        case EMFILE:
        case ENFILE:
        case ENOBUFS:
        case ENOMEM: {
            /* Out of fds or memory: the listener stays readable, so waiting on it would
             * spin. Sleep, longer each time, and try again. */
            if (deadline == 0)
                return GORO_EAGAIN;
            backoff = backoff ? backoff * 2 : ACCEPT_BACKOFF_MIN;
            if (backoff > ACCEPT_BACKOFF_MAX)
                backoff = ACCEPT_BACKOFF_MAX;
            int64_t now = goro__nanotime();
            if (deadline != GORO_FOREVER && now >= deadline)
                return GORO_ETIMEDOUT;
            int64_t until = now + backoff;
            if (deadline != GORO_FOREVER && until > deadline)
                until = deadline;
            goro_sleep_until(until);
            continue;
        }
        default:
            return -e;
        }
    }
}

int goro_accept(int listen_fd, int64_t deadline) {
    bool pollable;
    int err;
    goro__pollfd *pd = fd_ref(listen_fd, &pollable, &err);
    if (!pd)
        return err;
    err = accept_ref(pd, pollable, listen_fd, deadline);
    goro__pollfd_unref(pd, listen_fd);
    return err;
}

int goro_tcp_dial(const char *addr, int64_t deadline) {
    struct addrinfo *res;
    int err = resolve(addr, false, &res);
    if (err)
        return err;
    err = -ECONNREFUSED;
    int fd = -1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if ((fd = new_socket(ai)) < 0) {
            err = fd;
            continue;
        }
        int r;
        do
            r = connect(fd, ai->ai_addr, ai->ai_addrlen);
        while (r != 0 && errno == EINTR);
        if (r == 0)
            break;
        err = -errno;
        if (err == -EINPROGRESS) {
            bool pollable;
            goro__pollfd *pd = goro__pollfd_get(fd, &pollable, &err); /* ours alone */
            if (pd) {
                err = goro__pollfd_wait(pd, GORO_WRITABLE, deadline);
                if (err > 0) {
                    int soerr = 0;
                    socklen_t len = sizeof soerr;
                    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
                        soerr = errno;
                    err = -soerr;
                    if (soerr == 0)
                        break;
                }
            }
        }
        goro_close(fd);
        fd = -1;
        if (err == GORO_ETIMEDOUT || err == GORO_EAGAIN)
            break;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return err;
    set_nodelay(fd);
    return fd;
}

static ssize_t read_ref(goro__pollfd *pd, bool pollable, int fd, void *buf, size_t n,
                        int64_t deadline) {
    if (!pollable) {
        ssize_t r;
        goro__touch_kernel_writes(buf, n); /* a buffer on a compacted stack (compact.c, K6) */
        do
            r = GORO_BLOCKING(read(fd, buf, n));
        while (r < 0 && errno == EINTR);
        return r < 0 ? -errno : r;
    }
    for (;;) {
        uint32_t rev = goro__pollfd_rev(pd);
        if (!goro__pollfd_drained(pd, rev)) {
            goro__touch_kernel_writes(buf, n); /* a buffer on a compacted stack (compact.c, K6) */
            ssize_t r = goro__pollfd_is_socket(pd) ? recv(fd, buf, n, 0) : read(fd, buf, n);
            if (r > 0) {
                if ((size_t)r < n)
                    goro__pollfd_set_drained(pd, rev);
                return r;
            }
            if (r == 0)
                return 0;
            int e = errno;
            if (e == EINTR)
                continue;
            if (e != EAGAIN)
                return -e;
        }
        /* Empty (EAGAIN, or drained with no event since: netpoll.c, N6). */
        int err = goro__pollfd_wait(pd, GORO_READABLE, deadline);
        if (err < 0)
            return err;
        goro__pollfd_set_drained(pd, rev - 1); /* woken: the next round reads */
    }
}

ssize_t goro_read(int fd, void *buf, size_t n, int64_t deadline) {
    bool pollable;
    int err;
    goro__pollfd *pd = fd_ref(fd, &pollable, &err);
    if (!pd)
        return err;
    ssize_t r = read_ref(pd, pollable, fd, buf, n, deadline);
    goro__pollfd_unref(pd, fd);
    return r;
}

static ssize_t write_ref(goro__pollfd *pd, bool pollable, int fd, const void *buf, size_t n,
                         int64_t deadline) {
    size_t done = 0;
    while (done < n) {
        const char *p = (const char *)buf + done;
        goro__touch_kernel_reads(p, n - done); /* a buffer on a compacted stack (compact.c, K6) */
        ssize_t r = !pollable                    ? GORO_BLOCKING(write(fd, p, n - done))
                    : goro__pollfd_is_socket(pd) ? send(fd, p, n - done, 0)
                                                 : write(fd, p, n - done);
        if (r >= 0) {
            done += (size_t)r;
            continue;
        }
        int e = errno;
        if (e == EINTR)
            continue;
        if (e != EAGAIN || !pollable)
            return -e;
        int err = goro__pollfd_wait(pd, GORO_WRITABLE, deadline);
        if (err < 0)
            return err;
    }
    return (ssize_t)n;
}

ssize_t goro_write(int fd, const void *buf, size_t n, int64_t deadline) {
    bool pollable;
    int err;
    goro__pollfd *pd = fd_ref(fd, &pollable, &err);
    if (!pd)
        return err;
    ssize_t r = write_ref(pd, pollable, fd, buf, n, deadline);
    goro__pollfd_unref(pd, fd);
    return r;
}

static int fd_wait_ref(goro__pollfd *pd, bool pollable, int fd, int events, int64_t deadline) {
    for (;;) {
        /* The state now: edge-triggered events say only what changed. */
        struct pollfd pfd = {.fd = fd, .events = 0};
        if (events & GORO_READABLE)
            pfd.events |= POLLIN;
        if (events & GORO_WRITABLE)
            pfd.events |= POLLOUT;
        int r = poll(&pfd, 1, 0);
        if (r < 0 && errno != EINTR)
            return -errno;
        if (r > 0) {
            if (pfd.revents & POLLNVAL)
                return -EBADF;
            int ready = 0;
            if (pfd.revents & (POLLIN | POLLHUP | POLLERR))
                ready |= events & GORO_READABLE;
            if (pfd.revents & (POLLOUT | POLLHUP | POLLERR))
                ready |= events & GORO_WRITABLE;
            if (ready)
                return ready;
        }
        if (!pollable)
            return events; /* regular files are always ready */
        int err = goro__pollfd_wait(pd, events, deadline);
        if (err < 0)
            return err;
    }
}

int goro_fd_wait(int fd, int events, int64_t deadline) {
    if (!events || (events & ~(GORO_READABLE | GORO_WRITABLE)))
        return GORO_EINVAL;
    bool pollable;
    int err;
    goro__pollfd *pd = fd_ref(fd, &pollable, &err);
    if (!pd)
        return err;
    err = fd_wait_ref(pd, pollable, fd, events, deadline);
    goro__pollfd_unref(pd, fd);
    return err;
}

int goro_close(int fd) {
    if (fd < 0)
        return -EBADF;
    return goro__netpoll_close(fd);
}
