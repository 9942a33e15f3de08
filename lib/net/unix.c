/* SPDX-License-Identifier: MIT */
/* unix.c: Unix domain sockets: asyncio's create_unix_server and create_unix_connection. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <weft/server.h>

#include "net/transport-int.h"

/* The socket file a server made, removed when it closes if it is still that file. */
struct unix_file {
    dev_t dev;
    ino_t ino;
    char path[];
};

int
weft__unix_addr(const char *path, struct sockaddr_un *sun, socklen_t *len)
{
    size_t n;

    if (path == NULL || path[0] == '\0' || (path[0] == '@' && path[1] == '\0'))
        return -EINVAL;
    n = strlen(path);
    if (n >= sizeof(sun->sun_path))
        return -ENAMETOOLONG;   /* an abstract name has room for one byte more, kept simple */
    memset(sun, 0, sizeof(*sun));
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, path, n);
    if (path[0] == '@') {
        /* Abstract: the name is exactly these bytes after the NUL, no terminator. */
        sun->sun_path[0] = '\0';
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    } else {
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    }
    return 0;
}

static void
unix_file_remove(void *arg)
{
    struct unix_file *f = arg;
    struct stat st;

    /* Another server may have taken the name since (and removed ours): leave its file. */
    if (lstat(f->path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == f->dev &&
        st.st_ino == f->ino)
        (void)unlink(f->path);
    free(f);
}

/*
 * asyncio's create_unix_server: a socket left at the path (a server that
 * died without cleaning up) is removed; anything else there is not ours to
 * remove. Returns 0 or -errno.
 */
static int
clear_stale(const char *path)
{
    struct stat st;

    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISSOCK(st.st_mode))
        return -EADDRINUSE;
    if (unlink(path) < 0 && errno != ENOENT)
        return -errno;
    return 0;
}

/* Bind and listen on sun; a file's device and inode go to f. Returns the fd or -errno. */
static int
unix_listen(const struct sockaddr_un *sun, socklen_t len, int backlog, struct unix_file *f)
{
    bool file = sun->sun_path[0] != '\0';
    struct stat st;
    int fd, rc;

    if (file && (rc = clear_stale(sun->sun_path)) < 0)
        return rc;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (bind(fd, (const struct sockaddr *)sun, len) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    if (f != NULL) {
        if (lstat(sun->sun_path, &st) < 0)
            goto fail;
        f->dev = st.st_dev;
        f->ino = st.st_ino;
    }
    if (listen(fd, backlog > 0 ? backlog : 511) < 0)
        goto fail;
    return fd;
fail:
    rc = -errno;
    close(fd);
    if (file)
        (void)unlink(sun->sun_path);
    return rc;
}

int
weft_create_unix_server(struct weft_loop *loop, weft_protocol_factory_cb *factory, void *arg,
                        const char *path, const struct weft_server_options *opts,
                        struct weft_server **out)
{
    struct sockaddr_un sun;
    struct unix_file *f = NULL;
    struct weft_server *s;
    socklen_t len;
    int fd, rc;

    if (loop == NULL || factory == NULL || out == NULL)
        return -EINVAL;
    rc = weft__unix_addr(path, &sun, &len);
    if (rc < 0)
        return rc;
    if (opts != NULL && opts->tls != NULL) {
        struct weft__wrapper *w = weft__wrapper_of(opts->tls);

        if (w->ops->is_client(w))
            return -EINVAL;
    }
    if (sun.sun_path[0] != '\0') {
        f = malloc(sizeof(*f) + strlen(path) + 1);
        if (f == NULL)
            return -ENOMEM;
        strcpy(f->path, path);
    }
    fd = unix_listen(&sun, len, opts != NULL ? opts->backlog : 0, f);
    if (fd < 0) {
        free(f);
        return fd;
    }
    rc = weft_create_server_fds(loop, factory, arg, &fd, 1, opts, &s);  /* takes fd on success */
    if (rc < 0) {
        close(fd);
        if (f != NULL)
            unix_file_remove(f);
        return rc;
    }
    if (f != NULL)
        (void)weft__server_on_close(s, unix_file_remove, f);    /* a new server has none */
    *out = s;
    return 0;
}

int
weft_create_unix_connection(struct weft_loop *loop, weft_protocol_factory_cb *factory,
                            void *farg, const char *path, const struct weft_connect_options *opts,
                            weft_connect_cb *cb, void *cbarg, struct weft_connect **out)
{
    struct sockaddr_un sun;
    socklen_t len;
    int rc;

    if (loop == NULL || factory == NULL || cb == NULL)
        return -EINVAL;
    rc = weft__unix_addr(path, &sun, &len);
    if (rc < 0)
        return rc;
    if (opts != NULL && opts->local_addr != NULL && opts->local_addr->sa_family != AF_UNIX)
        return -EINVAL;
    return weft__connect_addr(loop, factory, farg, (const struct sockaddr *)&sun, len,
                              opts != NULL ? opts->server_hostname : NULL, opts, cb, cbarg, out);
}
