/* SPDX-License-Identifier: MIT */
/* udp_load.c: UDP echo load: N datagrams in flight, answers counted over a fixed time. */
/*
 * udp_load [-h HOST] -p PORT [-n INFLIGHT] [-c SOCKETS] [-s SIZE] [-d SECONDS] [-w WARMUP]
 *          [-r MS] [-6]
 *
 * SOCKETS client sockets (default 4), each connected to HOST:PORT, keep
 * INFLIGHT datagrams (default 64) of SIZE bytes (default 64) in flight between
 * them: each datagram carries its slot and a generation; an answer for the
 * current generation is counted and the slot's next datagram goes out at
 * once. The client reads with recvmmsg and answers with sendmmsg, so that it
 * costs less than a server and the server is the bottleneck. A datagram lost
 * (UDP may drop under load) is resent after MS milliseconds (default 500) and
 * counted in lost=. Answers during the WARMUP seconds (default 0.5) are not
 * counted; those over SECONDS (default 2) are. Prints one line:
 *   answers=N rate=R/s lost=L inflight=I size=S
 * Exit 1 on a wrong answer or a socket error other than a drop.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"

#define MAX_SIZE 65507
#define BATCH 64

struct slot {
    uint32_t gen;
    uint64_t sent_ms;
};

struct tag {
    uint32_t slot, gen;
};

static int nsock, nslot, size;
static int *fds;
static struct slot *slots;
static char *out;                  /* BATCH datagrams to send, SIZE bytes each */
static char *in;                   /* BATCH receive slots, MAX_SIZE + 1 each */
static struct mmsghdr smsg[BATCH], rmsg[BATCH];
static struct iovec siov[BATCH], riov[BATCH];

/* Queue slot i's datagram into the send batch at position k. */
static void
prepare(int k, int i, uint64_t now)
{
    struct tag t = { (uint32_t)i, slots[i].gen };

    memcpy(out + (size_t)k * (size_t)size, &t, sizeof(t));
    slots[i].sent_ms = now;
}

static int
flush(int fd, int k)
{
    int done = 0;

    while (done < k) {
        int r = sendmmsg(fd, smsg + done, (unsigned)(k - done), 0);

        if (r < 0) {
            if (errno == EAGAIN || errno == ENOBUFS || errno == ECONNREFUSED)
                return 0;       /* dropped: resent after the timeout */
            perror("udp_load: sendmmsg");
            return -1;
        }
        done += r;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    int port = 0, opt, family = AF_INET, ep;
    double secs = 2, warm = 0.5;
    uint64_t resend_ms = 500, start, t_count, t_end, answers = 0, lost = 0, next_scan;
    struct sockaddr_storage dst = { 0 };
    socklen_t dstlen;
    struct epoll_event evs[64];

    nslot = 64;
    nsock = 4;
    size = 64;
    while ((opt = getopt(argc, argv, "h:p:n:c:s:d:w:r:6")) != -1) {
        switch (opt) {
        case 'h': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'n': nslot = atoi(optarg); break;
        case 'c': nsock = atoi(optarg); break;
        case 's': size = atoi(optarg); break;
        case 'd': secs = atof(optarg); break;
        case 'w': warm = atof(optarg); break;
        case 'r': resend_ms = (uint64_t)atol(optarg); break;
        case '6': family = AF_INET6; break;
        default:
            fprintf(stderr, "usage: udp_load [-h HOST] -p PORT [-n INFLIGHT] [-c SOCKETS] "
                    "[-s SIZE] [-d SECONDS] [-w WARMUP] [-r MS] [-6]\n");
            return 2;
        }
    }
    if (port <= 0 || port > 65535 || nslot <= 0 || nsock <= 0 || size < 8 || size > MAX_SIZE) {
        fprintf(stderr, "udp_load: bad arguments\n");
        return 2;
    }
    if (nsock > nslot)
        nsock = nslot;
    if (family == AF_INET6 || strchr(host, ':') != NULL) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&dst;

        family = AF_INET6;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
            return fprintf(stderr, "udp_load: bad host %s\n", host), 2;
        dstlen = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&dst;

        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
            return fprintf(stderr, "udp_load: bad host %s\n", host), 2;
        dstlen = sizeof(*s4);
    }
    fds = calloc((size_t)nsock, sizeof(*fds));
    slots = calloc((size_t)nslot, sizeof(*slots));
    out = calloc(BATCH, (size_t)size);
    in = calloc(BATCH, MAX_SIZE + 1);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (fds == NULL || slots == NULL || out == NULL || in == NULL || ep < 0)
        return perror("udp_load"), 1;
    memset(out, 'u', (size_t)BATCH * (size_t)size);
    for (int k = 0; k < BATCH; k++) {
        siov[k].iov_base = out + (size_t)k * (size_t)size;
        siov[k].iov_len = (size_t)size;
        smsg[k].msg_hdr.msg_iov = &siov[k];
        smsg[k].msg_hdr.msg_iovlen = 1;
        riov[k].iov_base = in + (size_t)k * (MAX_SIZE + 1);
        riov[k].iov_len = MAX_SIZE + 1;
        rmsg[k].msg_hdr.msg_iov = &riov[k];
        rmsg[k].msg_hdr.msg_iovlen = 1;
    }
    for (int i = 0; i < nsock; i++) {
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };

        fds[i] = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&dst, dstlen) < 0 ||
            epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) < 0)
            return perror("udp_load: socket"), 1;
    }
    start = bench_now_ms();
    t_count = start + (uint64_t)(warm * 1000);
    t_end = t_count + (uint64_t)(secs * 1000);
    next_scan = start + 50;
    /* slot i belongs to socket i % nsock */
    for (int s = 0; s < nsock; s++) {
        int k = 0;

        for (int i = s; i < nslot; i += nsock) {
            prepare(k++, i, start);
            if (k == BATCH) {
                if (flush(fds[s], k) < 0)
                    return 1;
                k = 0;
            }
        }
        if (flush(fds[s], k) < 0)
            return 1;
    }
    for (;;) {
        uint64_t now = bench_now_ms();
        int m;

        if (now >= t_end)
            break;
        m = epoll_wait(ep, evs, 64, 10);
        if (m < 0 && errno != EINTR)
            return perror("udp_load: epoll_wait"), 1;
        now = bench_now_ms();
        for (int e = 0; e < m; e++) {
            int s = (int)evs[e].data.u32, r, k = 0;

            r = recvmmsg(fds[s], rmsg, BATCH, MSG_DONTWAIT, NULL);
            if (r < 0) {
                if (errno == EAGAIN || errno == ECONNREFUSED)   /* no server (yet) */
                    continue;
                return perror("udp_load: recvmmsg"), 1;
            }
            for (int j = 0; j < r; j++) {
                struct tag t;

                if (rmsg[j].msg_len != (unsigned)size) {
                    fprintf(stderr, "udp_load: answer of %u bytes, sent %d\n",
                            rmsg[j].msg_len, size);
                    return 1;
                }
                memcpy(&t, riov[j].iov_base, sizeof(t));
                if (t.slot >= (uint32_t)nslot || (int)(t.slot % (uint32_t)nsock) != s) {
                    fprintf(stderr, "udp_load: answer for slot %u on socket %d\n", t.slot, s);
                    return 1;
                }
                if (t.gen != slots[t.slot].gen)
                    continue;           /* a late answer to a datagram already resent */
                if (now >= t_count && now < t_end)
                    answers++;
                slots[t.slot].gen++;
                prepare(k++, (int)t.slot, now);
            }
            if (flush(fds[s], k) < 0)
                return 1;
        }
        if (now >= next_scan) {
            next_scan = now + 50;
            for (int i = 0; i < nslot; i++) {
                if (slots[i].sent_ms + resend_ms <= now) {
                    lost++;
                    slots[i].gen++;
                    prepare(0, i, now);
                    if (flush(fds[i % nsock], 1) < 0)
                        return 1;
                }
            }
        }
    }
    printf("answers=%llu rate=%.0f/s lost=%llu inflight=%d size=%d\n",
           (unsigned long long)answers, (double)answers / secs, (unsigned long long)lost, nslot,
           size);
    return 0;
}
