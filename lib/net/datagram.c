/* SPDX-License-Identifier: MIT */
/* datagram.c: UDP endpoints: recvmmsg batches, direct sends, a queue only when the socket is full. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include <weft/datagram.h>
#include <weft/transport.h>

#include "net/transport-int.h"

/*
 * Not a flavour of struct weft_transport (docs/design-transport.md): a
 * datagram endpoint has no byte stream, no EOF and no bufferevent, every
 * send carries an address and every receive reports one, and its protocol
 * has other callbacks (datagram_received, error_received). asyncio keeps
 * DatagramTransport apart from its stream transports for the same reasons.
 *
 * The largest UDP payload is 65,507 bytes over IPv4 (65,527 over IPv6 without
 * jumbograms), so a 64 KiB receive slot never truncates. The receive buffer
 * (batch slots, their iovecs, addresses and mmsghdrs) is one allocation made
 * with the socket; the hot path allocates nothing. A slot's pages are touched
 * only as far as datagrams reach, so 16 slots of small datagrams cost about
 * 64 KiB of RSS, not 1 MiB.
 */
#define SLOT_SIZE 65536u
#define MAX_PAYLOAD 65507u
#define BATCH_DEFAULT 16u
#define BATCH_MAX 256u

enum {
    DG_MADE = 1u << 0,          /* connection_made ran */
    DG_CLOSING = 1u << 1,       /* close() or abort(): no more sends or receives */
    DG_ABORTED = 1u << 2,       /* abort(): the queue was dropped */
    DG_LOST_PENDING = 1u << 3,  /* connection_lost is scheduled */
    DG_LOST = 1u << 4,          /* connection_lost ran */
    DG_WRITE_PAUSED = 1u << 5,  /* pause_writing was called, resume_writing not yet */
    DG_CONNECTED = 1u << 6,     /* connect()ed: peer is set */
    DG_WRITING = 1u << 7,       /* ev_write is pending */
};

/* What the queue holds before each datagram: then addrlen bytes of address, then len bytes. */
struct qhdr {
    uint32_t len;
    uint32_t addrlen;
};

/* A name still to resolve (local or remote). */
struct pending_name {
    char *host;
    uint16_t port;
};

struct weft_datagram_transport {
    struct weft_loop *loop;
    struct weft_datagram_protocol *proto;
    int fd;
    unsigned flags;
    int error;                      /* for connection_lost */
    unsigned batch;                 /* datagrams per recvmmsg */
    struct event *ev_read, *ev_write;
    struct evbuffer *queue;         /* datagrams waiting for EPOLLOUT, or NULL */
    size_t queued;                  /* their payload bytes */
    size_t high, low;
    struct sockaddr_storage peer;   /* DG_CONNECTED */
    socklen_t peerlen;
    /* the receive buffer: batch slots, then iovecs, addresses, headers */
    char *rbuf;
    struct iovec *iov;
    struct sockaddr_storage *from;
    struct mmsghdr *msgs;
    struct weft__soon lost_node;    /* connection_lost cannot fail to be scheduled */
    /* set-up before the socket exists (names to resolve) */
    int family;
    bool reuse_port, allow_broadcast;
    struct weft__addr local, remote;
    bool have_local, have_remote;
    struct pending_name lname, rname;
    struct evdns_getaddrinfo_request *dns;
    bool dns_pending;               /* evdns holds a pointer to us */
};

static void
tr_free(struct weft_datagram_transport *tr)
{
    if (tr->ev_read != NULL)
        event_free(tr->ev_read);
    if (tr->ev_write != NULL)
        event_free(tr->ev_write);
    if (tr->queue != NULL)
        evbuffer_free(tr->queue);
    if (tr->fd >= 0)
        close(tr->fd);
    free(tr->rbuf);
    free(tr->lname.host);
    free(tr->rname.host);
    free(tr);
}

static void
deliver_lost(void *arg)
{
    struct weft_datagram_transport *tr = arg;
    const struct weft_datagram_protocol_ops *ops = tr->proto->ops;

    tr->flags = (tr->flags & ~DG_LOST_PENDING) | DG_LOST | DG_CLOSING;
    if (ops != NULL && ops->connection_lost != NULL)
        ops->connection_lost(tr->proto, tr->error);
    tr->proto = NULL;
    if (!tr->dns_pending)
        tr_free(tr);        /* else on_resolved frees it once evdns lets go */
}

static void
cancel_dns(struct weft_datagram_transport *tr)
{
    if (tr->dns_pending && tr->dns != NULL) {
        struct evdns_getaddrinfo_request *req = tr->dns;

        tr->dns = NULL;
        evdns_getaddrinfo_cancel(req);
    }
}

/*
 * Stop all I/O and have connection_lost(err) delivered from the loop. The
 * first reason wins; later calls are no-ops. Cannot fail (weft__soon).
 */
static void
schedule_lost(struct weft_datagram_transport *tr, int err)
{
    if (tr->flags & (DG_LOST_PENDING | DG_LOST))
        return;
    tr->flags |= DG_CLOSING | DG_LOST_PENDING;
    tr->error = err;
    if (tr->ev_read != NULL)
        event_del(tr->ev_read);
    if (tr->ev_write != NULL)
        event_del(tr->ev_write);
    tr->flags &= ~DG_WRITING;
    cancel_dns(tr);
    weft__call_soon_nofail(tr->loop, &tr->lost_node, deliver_lost, tr);
}

static void
report(struct weft_datagram_transport *tr, const char *message, int rc,
       const struct sockaddr *from, socklen_t fromlen)
{
    char peer[80];
    struct weft_error_context ctx = {
        .message = message, .error = rc,
        .peer = from != NULL ? weft__addr_string(from, fromlen, peer, sizeof(peer)) : NULL,
    };

    weft_loop_call_error_handler(tr->loop, &ctx);
}

static void
error_received(struct weft_datagram_transport *tr, int err)
{
    const struct weft_datagram_protocol_ops *ops = tr->proto->ops;

    if (ops != NULL && ops->error_received != NULL)
        ops->error_received(tr->proto, err);
}

/* A send error: EAGAIN-like ones mean "queue it"; the others are the protocol's news. */
static bool
would_block(int err)
{
    return err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS;
}

static ssize_t
send_one(struct weft_datagram_transport *tr, const void *data, size_t len,
         const struct sockaddr *addr, socklen_t addrlen)
{
    ssize_t n;

    do {
        if (tr->flags & DG_CONNECTED)
            n = send(tr->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        else
            n = sendto(tr->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL, addr, addrlen);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

static void
maybe_resume(struct weft_datagram_transport *tr)
{
    const struct weft_datagram_protocol_ops *ops;

    if (!(tr->flags & DG_WRITE_PAUSED) || tr->queued > tr->low)
        return;
    tr->flags &= ~DG_WRITE_PAUSED;
    ops = tr->proto->ops;
    if (ops != NULL && ops->resume_writing != NULL && !(tr->flags & DG_CLOSING))
        ops->resume_writing(tr->proto);
}

static void
maybe_pause(struct weft_datagram_transport *tr)
{
    const struct weft_datagram_protocol_ops *ops;

    if ((tr->flags & DG_WRITE_PAUSED) || tr->queued <= tr->high)
        return;
    tr->flags |= DG_WRITE_PAUSED;
    ops = tr->proto->ops;
    if (ops != NULL && ops->pause_writing != NULL)
        ops->pause_writing(tr->proto);
}

/* Send what is queued, in order, until the socket is full again. */
static void
flush_queue(struct weft_datagram_transport *tr)
{
    struct qhdr h;

    while (tr->queue != NULL && evbuffer_get_length(tr->queue) >= sizeof(h)) {
        size_t rec;
        unsigned char *p;
        ssize_t n;

        evbuffer_copyout(tr->queue, &h, sizeof(h));
        rec = sizeof(h) + h.addrlen + h.len;
        p = evbuffer_pullup(tr->queue, (ev_ssize_t)rec);
        if (p == NULL) {        /* no memory to make it contiguous: try again later */
            report(tr, "datagram queue: no memory to send", -ENOMEM, NULL, 0);
            return;
        }
        n = send_one(tr, p + sizeof(h) + h.addrlen, h.len,
                     (const struct sockaddr *)(p + sizeof(h)), h.addrlen);
        if (n < 0 && would_block((int)-n))
            return;
        evbuffer_drain(tr->queue, rec);
        tr->queued -= h.len;
        if (n < 0)
            error_received(tr, (int)n);
        if (tr->flags & DG_LOST_PENDING)
            return;
    }
}

static void
on_writable(evutil_socket_t fd, short what, void *arg)
{
    struct weft_datagram_transport *tr = arg;

    (void)fd;
    (void)what;
    if (tr->flags & DG_LOST_PENDING)
        return;
    flush_queue(tr);
    if (tr->flags & DG_LOST_PENDING)
        return;
    if (tr->queued == 0 && (tr->queue == NULL || evbuffer_get_length(tr->queue) == 0)) {
        event_del(tr->ev_write);
        tr->flags &= ~DG_WRITING;
        if (tr->flags & DG_CLOSING) {
            schedule_lost(tr, 0);
            return;
        }
    }
    maybe_resume(tr);
}

static void
on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct weft_datagram_transport *tr = arg;
    const struct weft_datagram_protocol_ops *ops = tr->proto->ops;
    int n;

    (void)what;
    if (tr->flags & DG_CLOSING)
        return;
    for (unsigned i = 0; i < tr->batch; i++) {
        tr->msgs[i].msg_hdr.msg_namelen = sizeof(tr->from[i]);
        tr->msgs[i].msg_hdr.msg_flags = 0;
    }
    do {
        n = recvmmsg(fd, tr->msgs, tr->batch, MSG_DONTWAIT, NULL);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        int err = errno;

        /* ICMP errors surface here on a connected socket (ECONNREFUSED...) */
        if (err != EAGAIN && err != EWOULDBLOCK)
            error_received(tr, -err);
        return;
    }
    /* Level triggered: a socket with more datagrams is simply reported again. */
    for (int i = 0; i < n && !(tr->flags & DG_CLOSING); i++) {
        const struct msghdr *h = &tr->msgs[i].msg_hdr;
        int rc;

        if (ops == NULL || ops->datagram_received == NULL)
            continue;
        rc = ops->datagram_received(tr->proto, h->msg_iov->iov_base, tr->msgs[i].msg_len,
                                    (const struct sockaddr *)h->msg_name, h->msg_namelen);
        if (rc < 0)
            report(tr, "protocol datagram_received failed", rc,
                   (const struct sockaddr *)h->msg_name, h->msg_namelen);
    }
}

/* The receive buffer and the events, once the socket exists. */
static int
setup_io(struct weft_datagram_transport *tr)
{
    struct event_base *base = weft_loop_get_base(tr->loop);
    size_t b = tr->batch;
    size_t size = b * SLOT_SIZE + b * (sizeof(struct iovec) + sizeof(struct sockaddr_storage) +
                                       sizeof(struct mmsghdr));
    char *p;

    tr->rbuf = malloc(size);
    if (tr->rbuf == NULL)
        return -ENOMEM;
    p = tr->rbuf + b * SLOT_SIZE;
    tr->from = (struct sockaddr_storage *)(void *)p;
    p += b * sizeof(struct sockaddr_storage);
    tr->iov = (struct iovec *)(void *)p;
    p += b * sizeof(struct iovec);
    tr->msgs = (struct mmsghdr *)(void *)p;
    memset(tr->msgs, 0, b * sizeof(struct mmsghdr));
    for (size_t i = 0; i < b; i++) {
        tr->iov[i].iov_base = tr->rbuf + i * SLOT_SIZE;
        tr->iov[i].iov_len = SLOT_SIZE;
        tr->msgs[i].msg_hdr.msg_iov = &tr->iov[i];
        tr->msgs[i].msg_hdr.msg_iovlen = 1;
        tr->msgs[i].msg_hdr.msg_name = &tr->from[i];
    }
    tr->ev_read = event_new(base, tr->fd, EV_READ | EV_PERSIST, on_readable, tr);
    tr->ev_write = event_new(base, tr->fd, EV_WRITE | EV_PERSIST, on_writable, tr);
    if (tr->ev_read == NULL || tr->ev_write == NULL || event_add(tr->ev_read, NULL) < 0)
        return -ENOMEM;
    return 0;
}

/* Make, bind and connect the socket from tr->local / tr->remote. */
static int
make_socket(struct weft_datagram_transport *tr)
{
    int family = tr->have_local ? tr->local.ss.ss_family
               : tr->have_remote ? tr->remote.ss.ss_family : tr->family;
    int one = 1, fd, rc;

    if (tr->have_local && tr->have_remote && tr->local.ss.ss_family != tr->remote.ss.ss_family)
        return -EAFNOSUPPORT;
    fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if ((tr->reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) ||
        (tr->allow_broadcast &&
         setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one)) < 0) ||
        (tr->have_local &&
         bind(fd, (const struct sockaddr *)&tr->local.ss, tr->local.len) < 0) ||
        (tr->have_remote &&
         connect(fd, (const struct sockaddr *)&tr->remote.ss, tr->remote.len) < 0)) {
        rc = -errno;
        close(fd);
        return rc;
    }
    tr->fd = fd;
    if (tr->have_remote) {
        tr->flags |= DG_CONNECTED;
        memcpy(&tr->peer, &tr->remote.ss, tr->remote.len);
        tr->peerlen = tr->remote.len;
    }
    return 0;
}

/* A socket the caller made: connected if it has a peer. */
static int
adopt_socket(struct weft_datagram_transport *tr, int fd)
{
    int type = 0;
    socklen_t l = sizeof(type);
    int fl;

    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) < 0)
        return -errno;
    if (type != SOCK_DGRAM)
        return -EINVAL;
    fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    tr->peerlen = sizeof(tr->peer);
    if (getpeername(fd, (struct sockaddr *)&tr->peer, &tr->peerlen) == 0)
        tr->flags |= DG_CONNECTED;
    else
        tr->peerlen = 0;
    tr->fd = fd;
    return 0;
}

/* The socket exists: buffers, events, connection_made. rc < 0: the caller loses it. */
static int
made(struct weft_datagram_transport *tr)
{
    const struct weft_datagram_protocol_ops *ops = tr->proto->ops;
    int rc = setup_io(tr);

    if (rc < 0)
        return rc;
    tr->flags |= DG_MADE;
    if (ops != NULL && ops->connection_made != NULL) {
        rc = ops->connection_made(tr->proto, tr);
        if (rc < 0) {
            report(tr, "protocol connection_made failed", rc, NULL, 0);
            weft_datagram_abort(tr);
        }
    }
    return 0;
}

static void resolve_next(struct weft_datagram_transport *tr);

static void
on_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
    struct weft_datagram_transport *tr = arg;
    struct pending_name *pn = tr->lname.host != NULL ? &tr->lname : &tr->rname;
    struct weft__addr *a = pn == &tr->lname ? &tr->local : &tr->remote;
    bool *have = pn == &tr->lname ? &tr->have_local : &tr->have_remote;
    int want = tr->have_local ? tr->local.ss.ss_family : tr->family;
    struct evutil_addrinfo *ai;

    tr->dns_pending = false;
    tr->dns = NULL;
    if (tr->flags & (DG_LOST_PENDING | DG_LOST)) {
        if (res != NULL)
            evutil_freeaddrinfo(res);
        if (tr->flags & DG_LOST)
            tr_free(tr);        /* connection_lost ran while evdns held us */
        return;
    }
    if (result != 0) {
        if (res != NULL)
            evutil_freeaddrinfo(res);
        schedule_lost(tr, weft__eai_error(result));
        return;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next)
        if ((want == AF_UNSPEC || ai->ai_family == want) &&
            ai->ai_addrlen <= sizeof(a->ss))
            break;
    if (ai == NULL) {
        evutil_freeaddrinfo(res);
        schedule_lost(tr, -WEFT_ENONAME);
        return;
    }
    memcpy(&a->ss, ai->ai_addr, ai->ai_addrlen);
    a->len = (socklen_t)ai->ai_addrlen;
    *have = true;
    evutil_freeaddrinfo(res);
    free(pn->host);
    pn->host = NULL;
    resolve_next(tr);
}

/* Resolve the next name (local first, so the remote's family can follow it), or finish. */
static void
resolve_next(struct weft_datagram_transport *tr)
{
    struct pending_name *pn = tr->lname.host != NULL ? &tr->lname
                            : tr->rname.host != NULL ? &tr->rname : NULL;
    struct evutil_addrinfo hints = { .ai_socktype = SOCK_DGRAM, .ai_protocol = IPPROTO_UDP };
    struct evdns_base *dns;
    struct evdns_getaddrinfo_request *req;
    char service[8];
    int rc;

    if (pn == NULL) {
        rc = make_socket(tr);
        if (rc == 0)
            rc = made(tr);
        if (rc < 0)
            schedule_lost(tr, rc);
        return;
    }
    if (weft__host_is_invalid(pn->host)) {
        schedule_lost(tr, -WEFT_ENONAME);
        return;
    }
    dns = weft__loop_dns(tr->loop);
    if (dns == NULL) {
        schedule_lost(tr, -ENOMEM);
        return;
    }
    hints.ai_family = tr->have_local ? tr->local.ss.ss_family : tr->family;
    if (pn == &tr->lname)
        hints.ai_flags = EVUTIL_AI_PASSIVE;
    snprintf(service, sizeof(service), "%u", pn->port);
    /* Answers from /etc/hosts come back inside this call (then on_resolved ran). */
    tr->dns_pending = true;
    req = evdns_getaddrinfo(dns, pn->host, service, &hints, on_resolved, tr);
    if (tr->dns_pending)
        tr->dns = req;
}

static int
copy_sockaddr(struct weft__addr *a, const struct sockaddr *sa, socklen_t len)
{
    if (len == 0 || len > sizeof(a->ss))
        return -EINVAL;
    memcpy(&a->ss, sa, len);
    a->len = len;
    return 0;
}

/* host:port numeric into a, or kept in pn for the resolver. */
static int
take_host(const char *host, uint16_t port, struct weft__addr *a, bool *have,
          struct pending_name *pn)
{
    if (weft__addr_numeric(host, port, a)) {
        *have = true;
        return 0;
    }
    if (host[0] == '\0' || weft__host_is_invalid(host))
        return host[0] == '\0' ? -EINVAL : -WEFT_ENONAME;
    pn->host = strdup(host);
    pn->port = port;
    return pn->host == NULL ? -ENOMEM : 0;
}

static int
check_options(const char *local_host, const char *remote_host,
              const struct weft_datagram_options *o)
{
    if (o->family != AF_UNSPEC && o->family != AF_INET && o->family != AF_INET6)
        return -EAFNOSUPPORT;
    if (o->recv_batch > BATCH_MAX)
        return -EINVAL;
    if ((local_host != NULL && o->local_addr != NULL) ||
        (remote_host != NULL && o->remote_addr != NULL))
        return -EINVAL;
    if (o->fd >= 0 && (local_host != NULL || remote_host != NULL || o->local_addr != NULL ||
                       o->remote_addr != NULL))
        return -EINVAL;
    if (o->fd < 0 && local_host == NULL && remote_host == NULL && o->local_addr == NULL &&
        o->remote_addr == NULL && o->family == AF_UNSPEC)
        return -EINVAL;         /* asyncio: "unexpected address family" */
    return 0;
}

int
weft_create_datagram_endpoint(struct weft_loop *loop,
                              weft_datagram_protocol_factory_cb *factory, void *arg,
                              const char *local_host, uint16_t local_port,
                              const char *remote_host, uint16_t remote_port,
                              const struct weft_datagram_options *opts,
                              struct weft_datagram_transport **out)
{
    static const struct weft_datagram_options defaults = WEFT_DATAGRAM_OPTIONS_INIT;
    struct weft_datagram_protocol *proto;
    struct weft_datagram_transport *tr;
    int rc;

    if (out != NULL)
        *out = NULL;
    if (loop == NULL || factory == NULL)
        return -EINVAL;
    if (opts == NULL)
        opts = &defaults;
    rc = check_options(local_host, remote_host, opts);
    if (rc < 0)
        return rc;
    proto = factory(arg);
    if (proto == NULL)
        return -ENOMEM;
    tr = calloc(1, sizeof(*tr));
    if (tr == NULL) {
        rc = -ENOMEM;
        goto fail_proto;
    }
    tr->loop = loop;
    tr->proto = proto;
    tr->fd = -1;
    tr->batch = opts->recv_batch ? opts->recv_batch : BATCH_DEFAULT;
    tr->high = WEFT_WRITE_HIGH_DEFAULT;
    tr->low = WEFT_WRITE_LOW_DEFAULT;
    tr->family = opts->family;
    tr->reuse_port = opts->reuse_port;
    tr->allow_broadcast = opts->allow_broadcast;
    if (opts->fd >= 0) {
        rc = adopt_socket(tr, opts->fd);
        if (rc == 0) {
            rc = made(tr);
            if (rc < 0)
                tr->fd = -1;    /* the caller's again */
        }
        if (rc < 0)
            goto fail;
        goto done;
    }
    rc = 0;
    if (opts->local_addr != NULL) {
        rc = copy_sockaddr(&tr->local, opts->local_addr, opts->local_addrlen);
        tr->have_local = rc == 0;
    } else if (local_host != NULL) {
        rc = take_host(local_host, local_port, &tr->local, &tr->have_local, &tr->lname);
    }
    if (rc == 0 && opts->remote_addr != NULL) {
        rc = copy_sockaddr(&tr->remote, opts->remote_addr, opts->remote_addrlen);
        tr->have_remote = rc == 0;
    } else if (rc == 0 && remote_host != NULL) {
        rc = take_host(remote_host, remote_port, &tr->remote, &tr->have_remote, &tr->rname);
    }
    if (rc < 0)
        goto fail;
    if (tr->lname.host != NULL || tr->rname.host != NULL) {
        resolve_next(tr);       /* connection_made (or lost) follows from the loop */
        goto done;
    }
    if (tr->family != AF_UNSPEC &&
        ((tr->have_local && tr->local.ss.ss_family != tr->family) ||
         (tr->have_remote && tr->remote.ss.ss_family != tr->family))) {
        rc = -EAFNOSUPPORT;
        goto fail;
    }
    rc = make_socket(tr);
    if (rc == 0)
        rc = made(tr);
    if (rc < 0)
        goto fail;
done:
    if (out != NULL)
        *out = tr;
    return 0;
fail:
    tr->proto = NULL;
    tr_free(tr);
fail_proto:
    if (proto->ops != NULL && proto->ops->connection_lost != NULL)
        proto->ops->connection_lost(proto, rc);     /* lets the protocol free itself */
    return rc;
}

static bool
same_addr(const struct sockaddr *a, socklen_t alen, const struct sockaddr_storage *b,
          socklen_t blen)
{
    if (a->sa_family != b->ss_family)
        return false;
    if (a->sa_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

        return alen >= sizeof(*x) && x->sin_port == y->sin_port &&
               x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->sa_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

        return alen >= sizeof(*x) && x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    return alen == blen && memcmp(a, b, alen) == 0;
}

/* Queue one datagram (the socket is full, or others wait before it). */
static int
enqueue(struct weft_datagram_transport *tr, const void *data, size_t len,
        const struct sockaddr *addr, socklen_t addrlen)
{
    struct qhdr h = { .len = (uint32_t)len, .addrlen = addr != NULL ? addrlen : 0 };

    if (tr->queue == NULL && (tr->queue = evbuffer_new()) == NULL)
        return -ENOMEM;
    /* after the expand the three adds cannot fail: a datagram is queued whole or not at all */
    if (evbuffer_expand(tr->queue, sizeof(h) + h.addrlen + len) < 0)
        return -ENOMEM;
    evbuffer_add(tr->queue, &h, sizeof(h));
    if (h.addrlen > 0)
        evbuffer_add(tr->queue, addr, h.addrlen);
    if (len > 0)
        evbuffer_add(tr->queue, data, len);
    tr->queued += len;
    if (!(tr->flags & DG_WRITING)) {
        if (event_add(tr->ev_write, NULL) == 0)
            tr->flags |= DG_WRITING;
    }
    maybe_pause(tr);
    return 0;
}

int
weft_datagram_sendto(struct weft_datagram_transport *tr, const void *data, size_t len,
                     const struct sockaddr *addr, socklen_t addrlen)
{
    ssize_t n;

    if (tr == NULL || (data == NULL && len > 0))
        return -EINVAL;
    if (tr->flags & DG_CLOSING)
        return -EPIPE;
    if (!(tr->flags & DG_MADE))
        return -ENOTCONN;
    if (len > MAX_PAYLOAD)
        return -EMSGSIZE;
    if (tr->flags & DG_CONNECTED) {
        if (addr != NULL && !same_addr(addr, addrlen, &tr->peer, tr->peerlen))
            return -EINVAL;
        addr = NULL;
        addrlen = 0;
    } else if (addr == NULL) {
        return -EDESTADDRREQ;
    } else if (addrlen == 0 || addrlen > sizeof(struct sockaddr_storage)) {
        return -EINVAL;
    }
    if (tr->queue != NULL && evbuffer_get_length(tr->queue) > 0)
        return enqueue(tr, data, len, addr, addrlen);       /* keep the order */
    n = send_one(tr, data, len, addr, addrlen);
    if (n >= 0)
        return 0;
    if (would_block((int)-n))
        return enqueue(tr, data, len, addr, addrlen);
    error_received(tr, (int)n);
    return 0;
}

void
weft_datagram_close(struct weft_datagram_transport *tr)
{
    if (tr->flags & DG_CLOSING)
        return;
    tr->flags |= DG_CLOSING;
    if (tr->ev_read != NULL)
        event_del(tr->ev_read);
    if (tr->queue == NULL || evbuffer_get_length(tr->queue) == 0)
        schedule_lost(tr, 0);
    /* else on_writable schedules it once the queue is sent */
}

void
weft_datagram_abort(struct weft_datagram_transport *tr)
{
    if (tr->flags & (DG_LOST_PENDING | DG_LOST))
        return;
    tr->flags |= DG_CLOSING | DG_ABORTED;
    if (tr->queue != NULL)
        evbuffer_drain(tr->queue, evbuffer_get_length(tr->queue));
    tr->queued = 0;
    schedule_lost(tr, 0);
}

bool
weft_datagram_is_closing(const struct weft_datagram_transport *tr)
{
    return (tr->flags & DG_CLOSING) != 0;
}

int
weft_datagram_set_write_buffer_limits(struct weft_datagram_transport *tr, size_t high,
                                      size_t low)
{
    if (high == WEFT_LIMIT_DEFAULT)
        high = WEFT_WRITE_HIGH_DEFAULT;
    if (low == WEFT_LIMIT_DEFAULT)
        low = high / 4;
    if (low > high)
        return -EINVAL;
    tr->high = high;
    tr->low = low;
    if (!(tr->flags & DG_CLOSING)) {
        maybe_pause(tr);
        maybe_resume(tr);
    }
    return 0;
}

void
weft_datagram_get_write_buffer_limits(const struct weft_datagram_transport *tr, size_t *high,
                                      size_t *low)
{
    if (high != NULL)
        *high = tr->high;
    if (low != NULL)
        *low = tr->low;
}

size_t
weft_datagram_get_write_buffer_size(const struct weft_datagram_transport *tr)
{
    return tr->queued;
}

static int
copy_out(const void *src, size_t n, void *out, size_t *len)
{
    if (*len < n) {
        *len = n;
        return -ENOBUFS;
    }
    memcpy(out, src, n);
    *len = n;
    return 0;
}

int
weft_datagram_get_extra_info(struct weft_datagram_transport *tr, const char *name, void *out,
                             size_t *len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);

    if (tr == NULL || name == NULL || len == NULL || (out == NULL && *len != 0))
        return -EINVAL;
    if (tr->fd < 0)
        return -ENOENT;
    if (strcmp(name, "socket") == 0)
        return copy_out(&tr->fd, sizeof(tr->fd), out, len);
    if (strcmp(name, "peername") == 0) {
        if (!(tr->flags & DG_CONNECTED))
            return -ENOENT;
        return copy_out(&tr->peer, tr->peerlen, out, len);
    }
    if (strcmp(name, "sockname") == 0) {
        if (getsockname(tr->fd, (struct sockaddr *)&ss, &sl) < 0)
            return -errno;
        return copy_out(&ss, sl, out, len);
    }
    return -ENOENT;
}

struct weft_loop *
weft_datagram_get_loop(const struct weft_datagram_transport *tr)
{
    return tr->loop;
}

struct weft_datagram_protocol *
weft_datagram_get_protocol(const struct weft_datagram_transport *tr)
{
    return tr->proto;
}
