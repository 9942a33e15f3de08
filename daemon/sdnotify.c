/* SPDX-License-Identifier: MIT */
/* sdnotify.c: sd_notify(3) in a few lines, after haproxy's src/systemd.c. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "sdnotify.h"

unsigned long long
sdnotify_monotonic_usec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000;
}

int
sdnotify(const char *fmt, ...)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    char msg[512];
    socklen_t len;
    size_t plen;
    va_list ap;
    ssize_t n;
    int fd, rc;

    if (path == NULL || path[0] == '\0')
        return 0;
    plen = strlen(path);
    /* A path, or an abstract address ('@' stands for the leading NUL). */
    if ((path[0] != '/' && path[0] != '@') || plen >= sizeof(sun.sun_path) || plen < 2)
        return -EINVAL;
    memcpy(sun.sun_path, path, plen);
    if (path[0] == '@')
        sun.sun_path[0] = '\0';
    len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + (path[0] == '/'));

    va_start(ap, fmt);
    rc = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (rc < 0 || (size_t)rc >= sizeof(msg))
        return -EMSGSIZE;

    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    do {
        n = sendto(fd, msg, (size_t)rc, MSG_NOSIGNAL, (struct sockaddr *)&sun, len);
    } while (n < 0 && errno == EINTR);
    rc = n < 0 ? -errno : 1;
    close(fd);
    return rc;
}
