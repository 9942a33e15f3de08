/* SPDX-License-Identifier: MIT */
/* listen.c: bind and listen, keep the sockets by address, take systemd's (socket activation). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
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

int
listen_open_udp(const struct sockaddr *addr, socklen_t len)
{
    int fd, one = 1, rc;

    fd = socket(addr->sa_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    if (addr->sa_family == AF_INET6 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
        goto fail;
    if (bind(fd, addr, len) < 0)
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

const char *
listen_strerror_unix(int rc)
{
    switch (-rc) {
    case EADDRINUSE:
        return "in use (a process, or another weftd, listens on this socket)";
    case EEXIST:
        return "a file that is not a socket is there (weftd removes only stale sockets)";
    case ENOENT:
        return "no such directory";
    case EACCES:
        return "permission denied (the directory's permissions)";
    case EPERM:
        return "cannot change the socket file's owner (weftd is not root)";
    default:
        return strerror(-rc);
    }
}

/* Remove a dead socket file at path (a killed weftd's); 0 if nothing is in the way. */
static int
clear_stale(const char *path)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    struct stat st;
    int fd, rc;

    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISSOCK(st.st_mode))
        return -EEXIST;
    /* A listener answers (or its backlog is full: EAGAIN); a dead socket refuses. */
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    strcpy(sun.sun_path, path);
    rc = connect(fd, (const struct sockaddr *)&sun, sizeof(sun)) == 0 ? 0 : -errno;
    close(fd);
    if (rc == 0 || rc == -EAGAIN || rc == -EINPROGRESS)
        return -EADDRINUSE;
    if (rc != -ECONNREFUSED)
        return rc;
    log_info("unix:%s: removing a stale socket (nothing listens on it)", path);
    if (unlink(path) < 0 && errno != ENOENT)
        return -errno;
    return 0;
}

/* chmod and chown a socket file; 0 or -errno. */
static int
set_perm(const char *path, const struct listen_unix_perm *perm)
{
    if (chmod(path, perm->mode) < 0)
        return -errno;
    if ((perm->uid != (uid_t)-1 || perm->gid != (gid_t)-1) &&
        chown(path, perm->uid, perm->gid) < 0)
        return -errno;
    return 0;
}

int
listen_open_unix(const struct sockaddr *addr, socklen_t len, int backlog,
                 const struct listen_unix_perm *perm, dev_t *dev, ino_t *ino)
{
    const struct sockaddr_un *sun = (const struct sockaddr_un *)(const void *)addr;
    const char *path = sun->sun_path[0] != '\0' ? sun->sun_path : NULL;
    struct stat st;
    int fd, rc;

    *dev = 0;
    *ino = 0;
    if (path != NULL && (rc = clear_stale(path)) < 0)
        return rc;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    if (bind(fd, addr, len) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    if (path != NULL) {
        if ((rc = set_perm(path, perm)) < 0 || (rc = lstat(path, &st) < 0 ? -errno : 0) < 0)
            goto fail;
    }
    if (listen(fd, backlog) < 0) {
        rc = -errno;
        goto fail;
    }
    if (path != NULL) {
        *dev = st.st_dev;
        *ino = st.st_ino;
    }
    return fd;
fail:
    close(fd);
    if (path != NULL)
        (void)unlink(path);
    return rc;
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
    if (a->sa_family == AF_UNIX) {
        const struct sockaddr_un *x = (const void *)a, *y = (const void *)b;

        /* Both zeroed past the name (config.c, pool_add): abstract names compare whole. */
        return memcmp(x->sun_path, y->sun_path, sizeof(x->sun_path)) == 0;
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
listen_pool_find(struct listen_pool *p, int type, const struct sockaddr *addr)
{
    for (size_t i = 0; i < p->count; i++)
        if (p->list[i].type == type &&
            same_addr((const struct sockaddr *)&p->list[i].addr, addr))
            return &p->list[i];
    return NULL;
}

int
listen_pool_get(struct listen_pool *p, int type, const struct sockaddr *addr, socklen_t len)
{
    struct listener *l = listen_pool_find(p, type, addr);
    int fd;

    if (l != NULL)
        return l->fd;
    fd = type == SOCK_DGRAM ? listen_open_udp(addr, len)
                            : listen_open(addr, len, LISTEN_BACKLOG);
    if (fd < 0)
        return fd;
    l = pool_add(p, fd);
    if (l == NULL) {
        close(fd);
        return -ENOMEM;
    }
    memcpy(&l->addr, addr, len);
    l->addrlen = len;
    l->type = type;
    l->fresh = true;
    return fd;
}

int
listen_pool_get_unix(struct listen_pool *p, const struct sockaddr *addr, socklen_t len,
                     const struct listen_unix_perm *perm)
{
    const struct sockaddr_un *sun = (const struct sockaddr_un *)(const void *)addr;
    struct listener *l = listen_pool_find(p, SOCK_STREAM, addr);
    dev_t dev;
    ino_t ino;
    int fd, rc;

    if (l != NULL) {
        struct stat st;

        /* Kept by a reload: the new config's mode and owner apply (not to systemd's). */
        if (l->ino == 0 || (lstat(sun->sun_path, &st) == 0 && S_ISSOCK(st.st_mode) &&
                            st.st_dev == l->dev && st.st_ino == l->ino)) {
            if (l->ino != 0 && (rc = set_perm(sun->sun_path, perm)) < 0)
                log_warning("unix:%s: %s", sun->sun_path, listen_strerror_unix(rc));
            return l->fd;
        }
        /*
         * Our file was removed (or replaced) by hand: nobody can reach the kept socket.
         * Bind the path again; the old socket goes at the sweep (its file is not ours
         * now, so it is left alone). If that fails, keep serving what is reachable.
         */
        fd = listen_open_unix(addr, len, LISTEN_BACKLOG, perm, &dev, &ino);
        if (fd < 0) {
            log_warning("unix:%s: the socket file is gone or replaced, and binding it again "
                        "failed: %s; the old socket is kept (its clients go on, new ones "
                        "cannot reach it)", sun->sun_path, listen_strerror_unix(fd));
            return l->fd;
        }
        log_notice("unix:%s: the socket file was removed or replaced: bound again",
                   sun->sun_path);
    } else {
        fd = listen_open_unix(addr, len, LISTEN_BACKLOG, perm, &dev, &ino);
        if (fd < 0)
            return fd;
    }
    l = pool_add(p, fd);
    if (l == NULL) {
        close(fd);
        if (ino != 0)
            (void)unlink(sun->sun_path);
        return -ENOMEM;
    }
    memcpy(&l->addr, addr, len);
    l->addrlen = len;
    l->type = SOCK_STREAM;
    l->fresh = true;
    l->dev = dev;
    l->ino = ino;
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
        socklen_t tl = sizeof(l->type);
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &l->type, &tl) < 0)
            l->type = SOCK_STREAM;
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

/* Remove l's socket file if the pool made it and it is still that file. */
static void
unlink_file(struct listener *l)
{
    const struct sockaddr_un *sun = (const struct sockaddr_un *)(const void *)&l->addr;
    struct stat st;

    if (l->ino == 0 || l->addr.ss_family != AF_UNIX)
        return;
    /* Someone may have put another file there since (a second weftd): leave it. */
    if (lstat(sun->sun_path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == l->dev &&
        st.st_ino == l->ino)
        (void)unlink(sun->sun_path);
    l->ino = 0;
}

/*
 * Keeps, in order and with their used marks cleared, the listeners drop() refuses; closes the
 * others (drop may say why first), removing the socket files the pool made.
 */
static void
pool_filter(struct listen_pool *p, bool (*drop)(const struct listener *l))
{
    size_t j = 0;

    for (size_t i = 0; i < p->count; i++) {
        if (drop(&p->list[i])) {
            close(p->list[i].fd);
            unlink_file(&p->list[i]);
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
    char addr[160];

    if (l->used || l->activated)
        return false;
    log_info("closing listener %s%s", l->type == SOCK_DGRAM ? "udp:" : "",
             config_addr_string((const struct sockaddr *)&l->addr, addr, sizeof(addr)));
    return true;
}

void
listen_pool_sweep(struct listen_pool *p)
{
    pool_filter(p, is_unused);
}

void
listen_pool_close(struct listen_pool *p)
{
    for (size_t i = 0; i < p->count; i++) {
        if (p->list[i].fd >= 0)
            close(p->list[i].fd);
        p->list[i].fd = -1;
    }
}

void
listen_pool_unlink(struct listen_pool *p)
{
    for (size_t i = 0; i < p->count; i++)
        unlink_file(&p->list[i]);
}

void
listen_pool_free(struct listen_pool *p)
{
    for (size_t i = 0; i < p->count; i++) {
        if (p->list[i].fd >= 0)
            close(p->list[i].fd);
        free(p->list[i].name);
    }
    free(p->list);
    memset(p, 0, sizeof(*p));
}
