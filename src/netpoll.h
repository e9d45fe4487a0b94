/*
 * netpoll.h - the netpoller's backend interface (netpoll_epoll.c, netpoll_uring.c) and the
 * per-fd state shared by netpoll.c and net.c.
 */
#ifndef GORO_NETPOLL_H
#define GORO_NETPOLL_H

#include <stdbool.h>
#include <stdint.h>

/* One readiness event: the data the fd was added with, and GORO_READABLE/WRITABLE, plus
 * GORO__POLL_HUP for end of file, hang-up or error (a state, not data: N6), and
 * GORO__POLL_REARM when the backend stopped watching the fd by itself (io_uring: a
 * terminated multishot poll), to be added again if still registered. */
#define GORO__POLL_HUP 8
#define GORO__POLL_REARM 16
typedef struct goro__pollev {
    uint64_t data;
    uint32_t mode;
} goro__pollev;

/* Backends (netpoll_epoll.c, netpoll_uring.c), chosen once per goro_run by netpoll.c,
 * which calls them through its pollset_* dispatch. init/fini: the poll set; add: watch fd
 * in both directions, edge-triggered, -EPERM for an fd the kernel cannot poll; del: stop
 * watching the registration made with data (closed: the fd was already closed with
 * close(2)); wait: events until deadline (0: none, GORO_FOREVER), at most max; break:
 * make a wait in another thread return. All return 0 or -errno. */
int goro__epoll_init(void);
void goro__epoll_fini(void);
int goro__epoll_add(int fd, uint64_t data);
void goro__epoll_del(int fd);
int goro__epoll_wait(int64_t deadline, goro__pollev *out, int max);
void goro__epoll_break(void);

int goro__uring_init(void);
void goro__uring_fini(void);
int goro__uring_add(int fd, uint64_t data);
void goro__uring_del(uint64_t data);
int goro__uring_wait(int64_t deadline, goro__pollev *out, int max);
void goro__uring_break(void);

/* Per-fd state (netpoll.c). */
typedef struct goro__pollfd goro__pollfd;
/* The state of fd, registered with the poll set and made non-blocking on first use.
 * Returns NULL and sets *err (-EBADF, -ENOMEM, ...) on failure. *pollable is false for an
 * fd the poll set does not take (a regular file): callers then block in a blocking call. */
goro__pollfd *goro__pollfd_get(int fd, bool *pollable, int *err);
/* Parks until fd is ready for one of mode (GORO_READABLE | GORO_WRITABLE), the deadline,
 * or goro_close. Returns the ready mode (> 0), GORO_ETIMEDOUT, GORO_EAGAIN (deadline 0),
 * or GORO_ECANCELED. A returned mode only means "try the call again". */
int goro__pollfd_wait(goro__pollfd *pd, int mode, int64_t deadline);

/* A call on fd: takes a reference (netpoll.c, N5) after goro__pollfd_get; NULL and *err
 * = GORO_ECANCELED if goro_close ran. Every success is paired with goro__pollfd_unref,
 * which may close the fd if goro_close ran meanwhile. */
goro__pollfd *goro__pollfd_ref(int fd, bool *pollable, int *err);
void goro__pollfd_unref(goro__pollfd *pd, int fd);
/* Whether fd is a socket: net.c then uses recv/send (netpoll.c, N8). */
bool goro__pollfd_is_socket(goro__pollfd *pd);
/* (netpoll.c, N6) The count of readable events so far, to take before a read; whether a
 * short read that began at rev drained the fd and nothing arrived since; and recording
 * such a read. */
uint32_t goro__pollfd_rev(goro__pollfd *pd);
bool goro__pollfd_drained(goro__pollfd *pd, uint32_t rev);
void goro__pollfd_set_drained(goro__pollfd *pd, uint32_t rev);
/* goro_close: wakes fd's waiters with GORO_ECANCELED, removes fd from the poll set and
 * closes it, at once or when the last call in progress on it ends. Returns 0 or -errno. */
int goro__netpoll_close(int fd);
/* A fresh fd from socket(2) or accept(2): what the table says about an earlier fd of that
 * number (closed with close(2), not goro_close) no longer holds. */
void goro__netpoll_fresh(int fd);

#endif
