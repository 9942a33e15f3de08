/* SPDX-License-Identifier: MIT */
/* listen.h: the daemon's listening sockets: bound once by the master, kept across reloads. */
#ifndef WEFTD_LISTEN_H
#define WEFTD_LISTEN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define LISTEN_BACKLOG 511

/*
 * A non-blocking, close-on-exec TCP socket bound to addr and listening:
 * SO_REUSEADDR (a restart does not wait for TIME_WAIT), IPV6_V6ONLY on IPv6
 * (so [::]:P and *:P can both be listed). Returns the fd or -errno.
 */
int listen_open(const struct sockaddr *addr, socklen_t len, int backlog);

/* A sysadmin's reading of a bind/listen error: "port in use", ... */
const char *listen_strerror(int rc);

/* One listening socket of the master. */
struct listener {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    int fd;
    char *name;         /* systemd's FileDescriptorName, or NULL */
    bool activated;     /* passed by systemd: kept open until weftd exits */
    bool fresh;         /* bound by the reload being prepared (closed if it fails) */
    bool used;          /* scratch mark for listen_pool_sweep() */
};

/*
 * Every listening socket the master holds, matched by address: a reload
 * that keeps an address keeps its socket, so no connection attempt is
 * refused while workers change.
 */
struct listen_pool {
    struct listener *list;
    size_t count;
};

/*
 * The socket for addr: the pool's own if it has one, else a new one (marked
 * fresh). Returns the fd (the pool keeps it) or -errno from binding.
 */
int listen_pool_get(struct listen_pool *p, const struct sockaddr *addr, socklen_t len);

/* The pool's socket for addr, or NULL. */
struct listener *listen_pool_find(struct listen_pool *p, const struct sockaddr *addr);

/*
 * Take the sockets systemd passed (LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES):
 * each becomes a listener with its address (getsockname) and name, marked
 * activated. Returns how many were taken (0 if not socket-activated) or
 * -errno; the variables are unset either way.
 */
int listen_pool_adopt_systemd(struct listen_pool *p);

/* Close the fresh sockets (a reload failed), and unmark the rest. */
void listen_pool_rollback(struct listen_pool *p);

/* A reload succeeded: its sockets are not fresh any more. */
void listen_pool_commit(struct listen_pool *p);

/* Close every socket whose used mark is false, except activated ones; clear the marks. */
void listen_pool_sweep(struct listen_pool *p);

/* Mark fd used (for listen_pool_sweep). */
void listen_pool_mark(struct listen_pool *p, int fd);

/* Close every socket and free the pool (it can be used again, empty). */
void listen_pool_free(struct listen_pool *p);

#endif
