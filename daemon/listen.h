/* SPDX-License-Identifier: MIT */
/* listen.h: the daemon's own listening sockets, bound before anything starts. */
#ifndef WEFTD_LISTEN_H
#define WEFTD_LISTEN_H

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

#endif
