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
 *
 * Random bytes seldom make frames nghttp2 (not instrumented, so no guide) takes. When
 * byte 1 is OPS_MAGIC the rest is a list of operations instead, each turned into a
 * well-formed frame (see ops_build): requests whose HPACK block names one of a few
 * methods, paths and conditional headers, and every other frame type with its length
 * right, so the mutations land in h2.c's and serve.c's decisions, not in the framing.
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

#define OPS_MAGIC 0xF5

/* A frame: 9-byte header, then len bytes of payload from p. */
static size_t
put_frame(uint8_t *out, size_t room, uint8_t type, uint8_t flags, uint32_t sid,
          const uint8_t *p, size_t len)
{
    if (len > 0xffff || 9 + len > room)
        return 0;
    out[0] = 0;
    out[1] = (uint8_t)(len >> 8);
    out[2] = (uint8_t)len;
    out[3] = type;
    out[4] = flags;
    out[5] = (uint8_t)(sid >> 24 & 0x7f);
    out[6] = (uint8_t)(sid >> 16);
    out[7] = (uint8_t)(sid >> 8);
    out[8] = (uint8_t)sid;
    if (len)
        memcpy(out + 9, p, len);
    return 9 + len;
}

/* An HPACK literal field without indexing, no Huffman (RFC 7541 §6.2.2); names < 127. */
static size_t
put_field(uint8_t *out, size_t room, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
    if (nl > 126 || vl > 126 || 3 + nl + vl > room)
        return 0;
    out[0] = 0;
    out[1] = (uint8_t)nl;
    memcpy(out + 2, name, nl);
    out[2 + nl] = (uint8_t)vl;
    memcpy(out + 3 + nl, value, vl);
    return 3 + nl + vl;
}

static const char *const methods[] = { "GET", "HEAD", "POST", "OPTIONS", "", "get" };
static const char *const paths[] = {
    "/a.txt", "/big.bin", "/d/", "/d", "/nope", "/../etc/passwd", "/a.txt?q=1", "*", "",
    "/%2e%2e/a.txt", "/d/a.txt", "/a.txt#f",
};
static const char *const extras[][2] = {
    { "range", "bytes=0-9" }, { "range", "bytes=50000-" }, { "range", "bytes=-5,0-1" },
    { "if-none-match", "*" }, { "if-modified-since", "Mon, 07 Dec 2037 00:00:00 GMT" },
    { "if-range", "\"x\"" }, { "if-match", "\"nope\"" }, { "content-length", "5" },
    { "te", "trailers" }, { "connection", "close" }, { "user-agent", "fuzz" },
    { "if-unmodified-since", "Thu, 01 Jan 1970 00:00:00 GMT" },
};

/*
 * Operations, each an opcode byte (mod 8) and its arguments (missing ones read as 0):
 *  0 request   sid, method, path, extras mask (2 bytes), flags (bit 0 END_STREAM, bit 1
 *              split into HEADERS + CONTINUATION, bit 2 no END_HEADERS at all, bit 3
 *              PRIORITY flag), then one more path for a duplicate :path on bit 4
 *  1 raw       type, flags, sid, len, len payload bytes
 *  2 window    sid, 4 bytes of increment
 *  3 settings  id, 4 bytes of value (flags bit: ACK when id's top bit is set)
 *  4 rst       sid, code
 *  5 ping      ack, 8 bytes
 *  6 data      sid, len (x 64), flags (END_STREAM, PADDED)
 *  7 priority  sid, dependency, weight
 * A sid byte s is stream 2 * s + 1 (odd: client streams), 0 when s is 255.
 */
static size_t
ops_build(const uint8_t *in, size_t n, uint8_t *out, size_t room)
{
    size_t o = 0, i = 0;
#define ARG() (i < n ? in[i++] : 0)
#define SID(b) ((b) == 255 ? 0u : 2u * (b) + 1)
    while (i < n && room - o > 64) {
        uint8_t op = ARG() % 8, b[16];
        size_t k = 0;
        switch (op) {
        case 0: {
            uint8_t hb[1024];
            size_t hl = 0;
            uint32_t sid = SID(ARG());
            const char *m = methods[ARG() % 6], *path = paths[ARG() % 12];
            unsigned mask = (unsigned)ARG() << 8;
            mask |= ARG();
            uint8_t fl = ARG();
            hl += put_field(hb + hl, sizeof(hb) - hl, ":method", m);
            hl += put_field(hb + hl, sizeof(hb) - hl, ":scheme", "http");
            hl += put_field(hb + hl, sizeof(hb) - hl, ":path", path);
            hl += put_field(hb + hl, sizeof(hb) - hl, ":authority", "x");
            if (fl & 16)
                hl += put_field(hb + hl, sizeof(hb) - hl, ":path", paths[ARG() % 12]);
            for (unsigned e = 0; e < 12; e++)
                if (mask & (1u << e))
                    hl += put_field(hb + hl, sizeof(hb) - hl, extras[e][0], extras[e][1]);
            uint8_t hf = (fl & 1 ? 0x1 : 0) | (fl & 8 ? 0x20 : 0);
            uint8_t blk[1100];
            size_t bl = 0;
            if (fl & 8) {           /* PRIORITY: dependency 0, weight 16 */
                memset(blk, 0, 4);
                blk[4] = 15;
                bl = 5;
            }
            size_t first = fl & 2 ? hl / 2 : hl;
            memcpy(blk + bl, hb, first);
            bl += first;
            bool end_headers = !(fl & 2) && !(fl & 4);
            o += put_frame(out + o, room - o, 0x1, hf | (end_headers ? 0x4 : 0), sid, blk, bl);
            if (fl & 2)
                o += put_frame(out + o, room - o, 0x9, fl & 4 ? 0 : 0x4, sid, hb + first,
                               hl - first);
            break;
        }
        case 1: {
            uint8_t type = ARG(), flags = ARG();
            uint32_t sid = SID(ARG());
            size_t len = ARG();
            if (len > n - i)
                len = n - i;
            o += put_frame(out + o, room - o, type, flags, sid, in + i, len);
            i += len;
            break;
        }
        case 2: {
            uint32_t sid = SID(ARG());
            for (k = 0; k < 4; k++)
                b[k] = ARG();
            b[0] &= 0x7f;
            o += put_frame(out + o, room - o, 0x8, 0, sid, b, 4);
            break;
        }
        case 3: {
            uint8_t id = ARG();
            b[0] = 0;
            b[1] = id & 0x7f;
            for (k = 2; k < 6; k++)
                b[k] = ARG();
            o += put_frame(out + o, room - o, 0x4, id & 0x80 ? 0x1 : 0, 0, b,
                           id & 0x80 ? 0 : 6);
            break;
        }
        case 4: {
            uint32_t sid = SID(ARG());
            memset(b, 0, 4);
            b[3] = ARG() % 16;
            o += put_frame(out + o, room - o, 0x3, 0, sid, b, 4);
            break;
        }
        case 5: {
            uint8_t ack = ARG() & 1;
            for (k = 0; k < 8; k++)
                b[k] = ARG();
            o += put_frame(out + o, room - o, 0x6, ack, 0, b, 8);
            break;
        }
        case 6: {
            static const uint8_t zeros[16384];
            uint32_t sid = SID(ARG());
            size_t len = (size_t)ARG() * 64;
            uint8_t fl = ARG(), df = (fl & 1 ? 0x1 : 0);
            if (fl & 2 && len > 0) {     /* PADDED: the first payload byte is the pad length */
                uint8_t p[16384];
                memset(p, 0, len);
                p[0] = (uint8_t)(len - 1 < 255 ? len - 1 : 255);
                o += put_frame(out + o, room - o, 0x0, df | 0x8, sid, p, len);
            } else {
                o += put_frame(out + o, room - o, 0x0, df, sid, zeros, len);
            }
            break;
        }
        default: {
            uint32_t sid = SID(ARG());
            uint32_t dep = SID(ARG());
            b[0] = (uint8_t)(dep >> 24);
            b[1] = (uint8_t)(dep >> 16);
            b[2] = (uint8_t)(dep >> 8);
            b[3] = (uint8_t)dep;
            b[4] = ARG();
            o += put_frame(out + o, room - o, 0x2, 0, sid, b, 5);
            break;
        }
        }
    }
#undef ARG
#undef SID
    return o;
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
    static uint8_t built[1 << 20];
    if (size > 0 && data[0] == OPS_MAGIC) {
        static const uint8_t settings[9] = { 0, 0, 0, 0x4, 0, 0, 0, 0, 0 };
        memcpy(built, settings, sizeof(settings));
        size = sizeof(settings) + ops_build(data + 1, size - 1, built + sizeof(settings),
                                            sizeof(built) - sizeof(settings));
        data = built;
    }
    if (size / chunk > 1024)
        chunk = size / 1024 + 1;    /* at most ~1024 writes: operations make big frames */
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
