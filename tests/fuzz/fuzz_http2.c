/* SPDX-License-Identifier: MIT */
/* fuzz_http2.c: libFuzzer target for the http plugin's HTTP/2 input path (h2.c over nghttp2). */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <weft/weft.h>

#include "files.h"
#include "h2.h"
#include "service.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Input: byte 0 picks the chunk size (1 + b * 4 bytes); the rest are frames, sent after
 * the client preface, chunk by chunk, over a socketpair to a real HTTP/2 connection
 * (h2_conn_start) of a service whose root holds a small file, a 100 KiB file and a
 * directory (autoindex on), so requests reach serve.c's files, ranges, validators,
 * listings and error pages; its control frame limit is 10 (the least weftd.conf allows),
 * so floods fit in a few hundred bytes. What the server writes is read and dropped. Then
 * the client closes; the connection must be freed (the service's list empty) within a bounded number
 * of loop iterations. ASan/UBSan and LeakSanitizer do the rest.
 */

static struct weft_loop *loop;
static struct http_service svc;
static char root[64];

static void
put_file(const char *name, size_t size)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", root, name);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        abort();
    for (size_t i = 0; i < size; i++)
        fputc('a' + (int)(i % 26), f);
    fclose(f);
}

static void
cleanup(void)
{
    static const char *const names[] = { "a.txt", "big.bin", "d" };
    char path[128];

    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/%s", root, names[i]);
        (void)(i == 2 ? rmdir(path) : unlink(path));
    }
    rmdir(root);
}

static void
init(void)
{
    char path[128];

    snprintf(root, sizeof(root), "/tmp/weft-fuzz-h2.XXXXXX");
    if (mkdtemp(root) == NULL)
        abort();
    put_file("a.txt", 100);
    put_file("big.bin", 100 * 1024);
    snprintf(path, sizeof(path), "%s/d", root);
    mkdir(path, 0755);
    atexit(cleanup);
    loop = weft_loop_new();
    svc.root = root;
    svc.root_real = realpath(root, NULL);
    svc.rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    svc.index = "index.html";
    svc.autoindex = true;
    svc.log_fd = -1;
    svc.keepalive_timeout_ms = 10000;
    svc.header_timeout_ms = 10000;
    svc.limits = (struct http_limits)HTTP_LIMITS_DEFAULT;
    svc.h2 = (struct http2_limits)HTTP2_LIMITS_DEFAULT;
    svc.h2.max_header_list_size = 4096;     /* reachable with small inputs */
    svc.h2.max_control_frames = 10;         /* the control frame limit too */
    snprintf(svc.server, sizeof(svc.server), "weft");
    svc.mime = http_mime_new(NULL);
    svc.cache = http_cache_new(1024, 64 * 1024);
    if (loop == NULL || svc.root_real == NULL || svc.rootfd < 0 || svc.mime == NULL ||
        svc.cache == NULL)
        abort();
}

/* A protocol whose connection_made hands the transport to h2.c at once. */
static int
starter_made(struct weft_protocol *p, struct weft_transport *tr)
{
    (void)p;
    return h2_conn_start(&svc, tr, NULL) != NULL ? 0 : -ENOMEM;
}

static const struct weft_protocol_ops starter_ops = { .connection_made = starter_made };
static struct weft_protocol starter = { .ops = &starter_ops };

static struct weft_protocol *
factory(void *arg)
{
    (void)arg;
    return &starter;
}

static void
drain_peer(int fd)
{
    char buf[65536];
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char preface[] = H2_PREFACE;
    int sv[2];

    if (loop == NULL)
        init();
    if (size < 1)
        return 0;
    size_t chunk = 1 + (size_t)data[0] * 4;
    data++;
    size--;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
        abort();
    if (write(sv[1], preface, H2_PREFACE_LEN) != H2_PREFACE_LEN)
        abort();
    if (weft_connect_accepted_socket(loop, factory, NULL, sv[0], NULL) < 0) {
        close(sv[0]);
        close(sv[1]);
        return 0;
    }
    for (size_t off = 0; off < size && svc.h2_conns != NULL;) {
        size_t n = size - off < chunk ? size - off : chunk;
        ssize_t w = write(sv[1], data + off, n);
        if (w > 0)
            off += (size_t)w;
        else if (w < 0 && errno != EAGAIN)
            break;
        for (int i = 0; i < 4; i++)
            weft_loop_run_once(loop);
        drain_peer(sv[1]);
    }
    for (int i = 0; i < 50 && svc.h2_conns != NULL; i++) {
        weft_loop_run_once(loop);
        drain_peer(sv[1]);
    }
    close(sv[1]);
    for (int i = 0; i < 10000 && svc.h2_conns != NULL; i++)
        weft_loop_run_once(loop);
    if (svc.h2_conns != NULL)
        abort();            /* the connection outlived its client */
    for (int i = 0; i < 10; i++)
        weft_loop_run_once(loop);
    return 0;
}
