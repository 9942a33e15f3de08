/* SPDX-License-Identifier: MIT */
/* listen.c: bind and listen on the config's addresses, with errors a sysadmin can act on. */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

#include "listen.h"

int
listen_open(const struct sockaddr *addr, socklen_t len, int backlog)
{
    int fd, one = 1, rc;

    fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
        goto fail;
    if (addr->sa_family == AF_INET6 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
        goto fail;
    if (bind(fd, addr, len) < 0 || listen(fd, backlog) < 0)
        goto fail;
    return fd;
fail:
    rc = -errno;
    close(fd);
    return rc;
}

const char *
listen_strerror(int rc)
{
    switch (-rc) {
    case EADDRINUSE:
        return "port in use (another process, or another weftd, listens there)";
    case EADDRNOTAVAIL:
        return "no such address on this host";
    case EACCES:
        return "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)";
    case EAFNOSUPPORT:
        return "address family not supported (IPv6 disabled?)";
    default:
        return strerror(-rc);
    }
}
