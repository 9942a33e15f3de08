/* SPDX-License-Identifier: MIT */
/* listen.c: bind and listen, keep the sockets by address, take systemd's (socket activation). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "listen.h"
#include "log.h"

#define SD_LISTEN_FDS_START 3

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

static bool
same_addr(const struct sockaddr *a, const struct sockaddr *b)
{
    if (a->sa_family != b->sa_family)
        return false;
    if (a->sa_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->sa_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

        return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    return false;
}

static struct listener *
pool_add(struct listen_pool *p, int fd)
{
    struct listener *nl = realloc(p->list, (p->count + 1) * sizeof(*nl));

    if (nl == NULL)
        return NULL;
    p->list = nl;
    memset(&nl[p->count], 0, sizeof(nl[p->count]));
    nl[p->count].fd = fd;
    return &nl[p->count++];
}

struct listener *
listen_pool_find(struct listen_pool *p, const struct sockaddr *addr)
{
    for (size_t i = 0; i < p->count; i++)
        if (same_addr((const struct sockaddr *)&p->list[i].addr, addr))
            return &p->list[i];
    return NULL;
}

int
listen_pool_get(struct listen_pool *p, const struct sockaddr *addr, socklen_t len)
{
    struct listener *l = listen_pool_find(p, addr);
    int fd;

    if (l != NULL)
        return l->fd;
    fd = listen_open(addr, len, LISTEN_BACKLOG);
    if (fd < 0)
        return fd;
    l = pool_add(p, fd);
    if (l == NULL) {
        close(fd);
        return -ENOMEM;
    }
    memcpy(&l->addr, addr, len);
    l->addrlen = len;
    l->fresh = true;
    return fd;
}

int
listen_pool_adopt_systemd(struct listen_pool *p)
{
    const char *pid_s = getenv("LISTEN_PID"), *n_s = getenv("LISTEN_FDS");
    const char *names = getenv("LISTEN_FDNAMES");
    char *copy = NULL, *save = NULL, *name;
    long n;
    int rc = 0;

    if (pid_s == NULL || n_s == NULL || strtol(pid_s, NULL, 10) != (long)getpid()) {
        rc = 0;
        goto out;
    }
    n = strtol(n_s, NULL, 10);
    if (n <= 0 || n > 1024) {
        rc = 0;
        goto out;
    }
    if (names != NULL && (copy = strdup(names)) == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    name = copy ? strtok_r(copy, ":", &save) : NULL;
    for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + n; fd++) {
        struct listener *l;
        int flags = fcntl(fd, F_GETFD);

        /* systemd's sockets come without CLOEXEC: a plugin's child must not inherit them. */
        if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0 ||
            fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
            rc = -errno;
            break;
        }
        l = pool_add(p, fd);
        if (l == NULL) {
            rc = -ENOMEM;
            break;
        }
        l->activated = true;
        l->addrlen = sizeof(l->addr);
        if (getsockname(fd, (struct sockaddr *)&l->addr, &l->addrlen) < 0)
            l->addrlen = 0;
        if (name != NULL && strcmp(name, "unknown") != 0 && (l->name = strdup(name)) == NULL) {
            rc = -ENOMEM;
            break;
        }
        name = name ? strtok_r(NULL, ":", &save) : NULL;
        rc++;
    }
out:
    free(copy);
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return rc;
}

/*
 * Keeps, in order and with their used marks cleared, the listeners drop() refuses; closes the
 * others (drop may say why first).
 */
static void
pool_filter(struct listen_pool *p, bool (*drop)(const struct listener *l))
{
    size_t j = 0;

    for (size_t i = 0; i < p->count; i++) {
        if (drop(&p->list[i])) {
            close(p->list[i].fd);
            free(p->list[i].name);
            continue;
        }
        p->list[i].used = false;
        p->list[j++] = p->list[i];
    }
    p->count = j;
}

static bool
is_fresh(const struct listener *l)
{
    return l->fresh;
}

void
listen_pool_rollback(struct listen_pool *p)
{
    pool_filter(p, is_fresh);
}

void
listen_pool_commit(struct listen_pool *p)
{
    for (size_t i = 0; i < p->count; i++)
        p->list[i].fresh = false;
}

void
listen_pool_mark(struct listen_pool *p, int fd)
{
    for (size_t i = 0; i < p->count; i++)
        if (p->list[i].fd == fd)
            p->list[i].used = true;
}

/* Neither used nor activated: logs that it is closed. */
static bool
is_unused(const struct listener *l)
{
    char addr[80];

    if (l->used || l->activated)
        return false;
    log_info("closing listener %s",
             config_addr_string((const struct sockaddr *)&l->addr, addr, sizeof(addr)));
    return true;
}

void
listen_pool_sweep(struct listen_pool *p)
{
    pool_filter(p, is_unused);
}

void
listen_pool_free(struct listen_pool *p)
{
    for (size_t i = 0; i < p->count; i++) {
        close(p->list[i].fd);
        free(p->list[i].name);
    }
    free(p->list);
    memset(p, 0, sizeof(*p));
}
