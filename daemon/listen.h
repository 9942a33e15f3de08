/* SPDX-License-Identifier: MIT */
/* listen.h: the daemon's listening sockets: bound once by the master, kept across reloads. */
#ifndef WEFTD_LISTEN_H
#define WEFTD_LISTEN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#define LISTEN_BACKLOG 511

/*
 * A non-blocking, close-on-exec TCP socket bound to addr and listening:
 * SO_REUSEADDR (a restart does not wait for TIME_WAIT), IPV6_V6ONLY on IPv6
 * (so [::]:P and *:P can both be listed). Returns the fd or -errno.
 */
int listen_open(const struct sockaddr *addr, socklen_t len, int backlog);

/*
 * A non-blocking, close-on-exec UDP socket bound to addr (a udp: listen
 * address): IPV6_V6ONLY on IPv6, no SO_REUSEADDR (on UDP it would let a
 * second process bind the same port and take half the datagrams). Returns
 * the fd or -errno.
 */
int listen_open_udp(const struct sockaddr *addr, socklen_t len);

/* A sysadmin's reading of a bind/listen error: "port in use", ... */
const char *listen_strerror(int rc);

/* A Unix socket file's mode and owner (listen = unix:/PATH; unix_mode, unix_user, ...). */
struct listen_unix_perm {
    mode_t mode;        /* chmod()ed between bind and listen, so none connects before */
    uid_t uid;          /* (uid_t)-1: leave it */
    gid_t gid;          /* (gid_t)-1: leave it */
};

/*
 * A non-blocking, close-on-exec Unix domain stream socket bound to addr (a
 * sockaddr_un: a path, or an abstract name) and listening. A socket file
 * already at the path is probed: one a process listens on is -EADDRINUSE
 * (another weftd); a dead one (ECONNREFUSED: what a killed weftd leaves) is
 * removed first. Any other file there is -EEXIST and left alone. A file gets
 * perm's mode and owner; its device and inode go to *dev, *ino (0 for an
 * abstract name) so that only that file is removed later. Returns the fd or
 * -errno.
 */
int listen_open_unix(const struct sockaddr *addr, socklen_t len, int backlog,
                     const struct listen_unix_perm *perm, dev_t *dev, ino_t *ino);

/* listen_strerror() for a unix: address. */
const char *listen_strerror_unix(int rc);

/* One listening socket of the master. */
struct listener {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    int type;           /* SOCK_STREAM or SOCK_DGRAM */
    int fd;
    char *name;         /* systemd's FileDescriptorName, or NULL */
    bool activated;     /* passed by systemd: kept open until weftd exits */
    bool fresh;         /* bound by the reload being prepared (closed if it fails) */
    bool used;          /* scratch mark for listen_pool_sweep() */
    dev_t dev;          /* the socket file this pool made (unix:/PATH), removed when the */
    ino_t ino;          /* socket is closed by rollback or sweep, or at listen_pool_unlink;
                           ino 0: none (TCP, abstract, systemd's) */
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
 * The socket of type (SOCK_STREAM, SOCK_DGRAM) for addr: the pool's own if
 * it has one, else a new one (marked fresh). Returns the fd (the pool keeps
 * it) or -errno from binding.
 */
int listen_pool_get(struct listen_pool *p, int type, const struct sockaddr *addr,
                    socklen_t len);

/*
 * listen_pool_get() for a unix: address (listen_open_unix). A socket the
 * pool has already (a reload keeps it) gets perm again, unless systemd made
 * it (its SocketMode= rules).
 */
int listen_pool_get_unix(struct listen_pool *p, const struct sockaddr *addr, socklen_t len,
                         const struct listen_unix_perm *perm);

/* The pool's socket of type for addr, or NULL. */
struct listener *listen_pool_find(struct listen_pool *p, int type, const struct sockaddr *addr);

/*
 * Take the sockets systemd passed (LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES):
 * each becomes a listener with its address (getsockname), its type
 * (ListenStream= or ListenDatagram=: SO_TYPE) and name, marked
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

/*
 * Close every socket and free the pool (it can be used again, empty). Socket
 * files stay: a worker frees its copy of the master's pool.
 */
void listen_pool_free(struct listen_pool *p);

/* Close every socket but remember the files, for listen_pool_unlink() later. */
void listen_pool_close(struct listen_pool *p);

/*
 * Remove the socket files the pool made (never systemd's), each only if it
 * is still the same file (device and inode). The master, when it stops.
 */
void listen_pool_unlink(struct listen_pool *p);

#endif
