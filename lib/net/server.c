/* SPDX-License-Identifier: MIT */
/* server.c: listening servers: bind every address, accept in batches, track connections. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "proxy/proxy-int.h"
#include "net/transport-int.h"

#define ACCEPT_BATCH 64         /* accepts per wake-up, so one listener cannot starve I/O */
#define EMFILE_PAUSE_MS 100     /* out of descriptors: stop accepting this long */
#define EMFILE_LOG_MS 1000      /* and say so at most this often */

struct listener {
    struct weft_server *srv;
    struct event *ev;
    int fd;
};

struct weft_server {
    struct weft_loop *loop;
    weft_protocol_factory_cb *factory;
    void *arg;
    struct listener *ls;
    size_t nls;                     /* open listeners (0 after close) */
    struct weft__conns conns;       /* connections with a transport */
    size_t npending;                /* connections waiting for their PROXY header */
    struct weft_handle *emfile_timer;
    struct weft__wrapper *wrap;     /* TLS: a reference to its context, or NULL for plain TCP */
    struct weft_proxy_options proxy;    /* versions 0: no PROXY stage */
    struct weft__proxy *pending;    /* connections waiting for their PROXY header */
    uint64_t idle_ms;               /* idle timeout of each connection, 0: none */
    weft_server_accept_cb *accepted;    /* weft_server_set_accept_cb, or NULL */
    void *accepted_arg;
    uint64_t emfile_logged_ms;
    bool paused;                    /* pause_accepting() */
    bool emfile_paused;
    bool emfile_ever_logged;
    void (*on_close)(void *arg);    /* weft__server_on_close */
    void *on_close_arg;
};

static void
listeners_enable(struct weft_server *s, bool on)
{
    for (size_t i = 0; i < s->nls; i++) {
        if (on)
            event_add(s->ls[i].ev, NULL);
        else
            event_del(s->ls[i].ev);
    }
}

static void
emfile_resume(void *arg)
{
    struct weft_server *s = arg;

    s->emfile_timer = NULL;
    s->emfile_paused = false;
    if (!s->paused)
        listeners_enable(s, true);
}

/* Out of descriptors or memory: back off instead of spinning on the ready listener. */
static void
accept_backoff(struct weft_server *s, int err)
{
    uint64_t now = weft_loop_time(s->loop);

    if (!s->emfile_ever_logged || now - s->emfile_logged_ms >= EMFILE_LOG_MS) {
        weft_log(WEFT_LOG_WARNING, "accept: %s; pausing accepts for %d ms",
                 weft_strerror(-err), EMFILE_PAUSE_MS);
        s->emfile_logged_ms = now;
        s->emfile_ever_logged = true;
    }
    if (s->emfile_paused)
        return;
    s->emfile_timer = weft_call_later(s->loop, EMFILE_PAUSE_MS, emfile_resume, s);
    if (s->emfile_timer == NULL)
        return;     /* no memory for a timer either: retry on the next wake-up */
    s->emfile_paused = true;
    listeners_enable(s, false);
}

/* Make the transport of an accepted connection (after its PROXY header, if any). */
static void
accept_finish(struct weft_server *s, int fd, const struct weft_proxy_info *pi)
{
    const struct sockaddr *peer = NULL;
    socklen_t peerlen = 0;
    struct weft_protocol *proto;
    int rc;

    if (pi != NULL && !pi->local) {
        peer = (const struct sockaddr *)&pi->src;
        peerlen = pi->srclen;
    }
    if (s->wrap != NULL) {
        struct weft_transport *tr = NULL;

        /* The protocol is made once the handshake is done. */
        rc = s->wrap->ops->wrap(s->wrap, s->loop, fd, NULL, s->factory, s->arg, &s->conns,
                                NULL, NULL, &tr);
        if (rc < 0) {
            weft_log(WEFT_LOG_WARNING, "accept: cannot make a TLS transport: %s",
                     weft_strerror(rc));
            close(fd);
            return;
        }
        if (tr != NULL && peer != NULL)
            rc = weft_transport_set_proxied_peer(tr, peer, peerlen);
        if (rc == 0 && tr != NULL && s->idle_ms != 0)
            rc = weft_transport_set_idle_timeout(tr, s->idle_ms);
        if (rc == -ENOMEM) {
            weft_log(WEFT_LOG_WARNING, "accept: out of memory; connection dropped");
            weft_transport_abort(tr);
        }
        return;
    }
    proto = s->factory(s->arg);
    if (proto == NULL) {
        weft_log(WEFT_LOG_WARNING, "accept: protocol factory failed; connection dropped");
        close(fd);
        return;
    }
    rc = weft__transport_new_accepted(s->loop, proto, fd, &s->conns, peer, peerlen, s->idle_ms, NULL);
    if (rc < 0) {
        weft_log(WEFT_LOG_WARNING, "accept: cannot make a transport: %s", weft_strerror(rc));
        close(fd);
        if (proto->ops != NULL && proto->ops->connection_lost != NULL)
            proto->ops->connection_lost(proto, rc);     /* lets the protocol free itself */
    }
}

static void
proxy_done(void *arg, struct weft__proxy *p, int fd, int rc, const struct weft_proxy_info *pi)
{
    struct weft_server *s = arg;

    weft__proxy_unlink(&s->pending, p);
    s->npending--;
    if (rc < 0) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        char peer[160] = "?";

        if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0)
            weft__addr_string((struct sockaddr *)&ss, sl, peer, sizeof(peer));
        if (rc == -ETIMEDOUT) {
            weft_log(WEFT_LOG_INFO, "%s: no PROXY header within %llu ms; connection closed",
                     peer, (unsigned long long)(s->proxy.timeout_ms ? s->proxy.timeout_ms
                                                : WEFT_PROXY_TIMEOUT_DEFAULT));
        } else if (rc == -EPROTO) {
            weft_log(WEFT_LOG_INFO, "%s: no valid PROXY header; connection closed", peer);
        } else {
            /* Debug: a load balancer's TCP health check connects and closes. */
            weft_log(WEFT_LOG_DEBUG, "%s: %s; connection closed", peer,
                     rc == -ECONNRESET ? "closed before its PROXY header was complete"
                     : weft_strerror(rc));
        }
        return;
    }
    accept_finish(s, fd, pi);
}

static void
accept_one(struct weft_server *s, int fd, const struct sockaddr *peer, socklen_t peerlen)
{
    struct weft__proxy *p;
    char text[160];
    int rc;

    if (s->proxy.versions == 0) {
        accept_finish(s, fd, NULL);
        return;
    }
    if (s->proxy.trusted != NULL && !s->proxy.trusted(peer, peerlen, s->proxy.trusted_arg)) {
        weft_log(WEFT_LOG_DEBUG, "%s: not a trusted PROXY sender; connection closed",
                 weft__addr_string(peer, peerlen, text, sizeof(text)));
        close(fd);
        return;
    }
    rc = weft__proxy_start(s->loop, fd, &s->proxy, proxy_done, s, &p);
    if (rc < 0) {
        weft_log(WEFT_LOG_WARNING, "accept: %s; connection dropped", weft_strerror(rc));
        close(fd);
        return;
    }
    weft__proxy_link(&s->pending, p);
    s->npending++;
}

static void
on_accept(evutil_socket_t lfd, short what, void *arg)
{
    struct listener *l = arg;
    struct weft_server *s = l->srv;

    (void)what;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct sockaddr_storage peer;
        socklen_t peerlen = sizeof(peer);
        int fd = accept4(lfd, (struct sockaddr *)&peer, &peerlen, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            int err = errno;

            if (err == EAGAIN || err == EWOULDBLOCK)
                return;
            if (err == EINTR || err == ECONNABORTED || err == EPROTO)
                continue;
            if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
                accept_backoff(s, -err);
                return;
            }
            weft_log(WEFT_LOG_WARNING, "accept: %s", strerror(err));
            return;
        }
        size_t before = weft_server_connection_count(s);

        accept_one(s, fd, (struct sockaddr *)&peer, peerlen);
        if (s->accepted != NULL && weft_server_connection_count(s) > before)
            s->accepted(s, s->accepted_arg);
        /* A protocol may have closed or paused the server meanwhile. */
        if (s->nls == 0 || s->paused)
            return;
    }
}

static int
server_start(struct weft_loop *loop, weft_protocol_factory_cb *factory, void *arg,
             const int *fds, size_t nfds, const struct weft_server_options *opts,
             struct weft_server **out)
{
    struct event_base *base = weft_loop_get_base(loop);
    struct weft_server *s;

    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -ENOMEM;
    s->ls = calloc(nfds ? nfds : 1, sizeof(*s->ls));
    if (s->ls == NULL) {
        free(s);
        return -ENOMEM;
    }
    s->loop = loop;
    s->factory = factory;
    s->arg = arg;
    if (opts != NULL && opts->tls != NULL)
        s->wrap = weft__wrapper_of(opts->tls)->ops->ref(weft__wrapper_of(opts->tls));
    if (opts != NULL && opts->proxy != NULL)
        s->proxy = *opts->proxy;
    if (opts != NULL)
        s->idle_ms = opts->idle_timeout_ms;
    for (size_t i = 0; i < nfds; i++) {
        struct listener *l = &s->ls[i];

        l->srv = s;
        l->fd = fds[i];
        l->ev = event_new(base, fds[i], EV_READ | EV_PERSIST, on_accept, l);
        if (l->ev == NULL || event_add(l->ev, NULL) < 0) {
            for (size_t j = 0; j <= i; j++)     /* the fds stay the caller's */
                if (s->ls[j].ev != NULL)
                    event_free(s->ls[j].ev);
            if (s->wrap != NULL)
                s->wrap->ops->unref(s->wrap);
            free(s->ls);
            free(s);
            return -ENOMEM;
        }
        s->nls++;
    }
    *out = s;
    return 0;
}

int
weft_create_server_fds(struct weft_loop *loop, weft_protocol_factory_cb *factory, void *arg,
                       const int *fds, size_t nfds, const struct weft_server_options *opts,
                       struct weft_server **out)
{
    if (loop == NULL || factory == NULL || out == NULL || (nfds > 0 && fds == NULL))
        return -EINVAL;
    if (opts != NULL && opts->tls != NULL &&
        weft__wrapper_of(opts->tls)->ops->is_client(weft__wrapper_of(opts->tls)))
        return -EINVAL;
    for (size_t i = 0; i < nfds; i++) {
        int fl = fds[i] < 0 ? -1 : fcntl(fds[i], F_GETFL);

        if (fl < 0)
            return fds[i] < 0 ? -EBADF : -errno;
        if (!(fl & O_NONBLOCK) && fcntl(fds[i], F_SETFL, fl | O_NONBLOCK) < 0)
            return -errno;
    }
    return server_start(loop, factory, arg, fds, nfds, opts, out);
}

/* Bind and listen on one address; returns the fd or -errno. */
static int
listen_on(const struct weft__addr *a, const struct weft_server_options *opts)
{
    int one = 1, fd, rc;

    fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
    if (fd < 0)
        return -errno;
    if (opts->reuse_address)
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (opts->reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
        goto fail;
    /* Without V6ONLY, "::" would also take the IPv4 port and 0.0.0.0 could not bind. */
    if (a->ss.ss_family == AF_INET6 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
        goto fail;
    if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0 ||
        listen(fd, opts->backlog > 0 ? opts->backlog : 511) < 0)
        goto fail;
    return fd;
fail:
    rc = -errno;
    close(fd);
    return rc;
}

int
weft_create_server(struct weft_loop *loop, weft_protocol_factory_cb *factory, void *arg,
                   const char *host, uint16_t port, const struct weft_server_options *opts,
                   struct weft_server **out)
{
    static const struct weft_server_options defaults = WEFT_SERVER_OPTIONS_INIT;
    struct weft__addr *addrs = NULL;
    int *fds = NULL;
    size_t nfds = 0;
    int n, rc;

    if (loop == NULL || factory == NULL || out == NULL)
        return -EINVAL;
    if (opts == NULL)
        opts = &defaults;
    if (opts->tls != NULL &&
        weft__wrapper_of(opts->tls)->ops->is_client(weft__wrapper_of(opts->tls)))
        return -EINVAL;
    if (host != NULL && host[0] == '\0')
        host = NULL;
    /* Never a blocking getaddrinfo on the loop's thread: numeric, NULL, /etc/hosts. */
    n = weft__resolve_local(loop, host, port, &addrs);
    if (n == -EWOULDBLOCK)
        weft_log(WEFT_LOG_WARNING, "create_server: \"%s\" is not in the hosts file and a DNS "
                 "query would block: resolve it with weft_getaddrinfo() and listen on its "
                 "addresses", host);
    if (n < 0)
        return n;
    fds = calloc((size_t)n, sizeof(*fds));
    if (fds == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    rc = 0;
    for (int i = 0; i < n; i++) {
        int fd = listen_on(&addrs[i], opts);

        if (fd == -EAFNOSUPPORT && addrs[i].ss.ss_family == AF_INET6)
            continue;   /* a kernel without IPv6: serve the rest */
        if (fd < 0) {
            rc = fd;
            goto out;
        }
        fds[nfds++] = fd;
    }
    if (nfds == 0) {
        rc = -EADDRNOTAVAIL;
        goto out;
    }
    rc = server_start(loop, factory, arg, fds, nfds, opts, out);
out:
    if (rc < 0)
        for (size_t i = 0; i < nfds; i++)
            close(fds[i]);
    free(fds);
    free(addrs);
    return rc;
}

void
weft_server_close(struct weft_server *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->nls; i++) {
        event_free(s->ls[i].ev);
        s->ls[i].ev = NULL;
        close(s->ls[i].fd);
        s->ls[i].fd = -1;
    }
    s->nls = 0;
    if (s->emfile_timer != NULL) {
        weft_handle_cancel(s->emfile_timer);
        s->emfile_timer = NULL;
    }
    if (s->on_close != NULL) {
        void (*fn)(void *) = s->on_close;

        s->on_close = NULL;
        fn(s->on_close_arg);
    }
}

int
weft__server_on_close(struct weft_server *s, void (*fn)(void *arg), void *arg)
{
    if (s->on_close != NULL)
        return -EBUSY;
    s->on_close = fn;
    s->on_close_arg = arg;
    return 0;
}

/* Connections still waiting for their PROXY header have no protocol: just close them. */
static void
drop_pending(struct weft_server *s)
{
    while (s->pending != NULL) {
        struct weft__proxy *p = s->pending;

        weft__proxy_unlink(&s->pending, p);
        s->npending--;
        weft__proxy_free(p);
    }
}

void
weft_server_close_clients(struct weft_server *s)
{
    drop_pending(s);
    for (struct weft_transport *tr = s->conns.head, *next; tr != NULL; tr = next) {
        next = tr->srv_next;
        weft_transport_close(tr);
    }
}

void
weft_server_abort_clients(struct weft_server *s)
{
    drop_pending(s);
    for (struct weft_transport *tr = s->conns.head, *next; tr != NULL; tr = next) {
        next = tr->srv_next;
        weft_transport_abort(tr);
    }
}

void
weft_server_pause_accepting(struct weft_server *s)
{
    if (s->paused)
        return;
    s->paused = true;
    listeners_enable(s, false);
}

void
weft_server_resume_accepting(struct weft_server *s)
{
    if (!s->paused)
        return;
    s->paused = false;
    if (!s->emfile_paused)
        listeners_enable(s, true);
}

bool
weft_server_is_serving(const struct weft_server *s)
{
    return s->nls > 0 && !s->paused;
}

size_t
weft_server_connection_count(const struct weft_server *s)
{
    return s->conns.count + s->npending;
}

void
weft_server_set_accept_cb(struct weft_server *s, weft_server_accept_cb *cb, void *arg)
{
    s->accepted = cb;
    s->accepted_arg = arg;
}

size_t
weft_server_socket_count(const struct weft_server *s)
{
    return s->nls;
}

int
weft_server_get_sockname(const struct weft_server *s, size_t i, struct sockaddr *addr,
                         socklen_t *len)
{
    if (i >= s->nls)
        return -ENOENT;
    if (addr == NULL || len == NULL)
        return -EINVAL;
    return getsockname(s->ls[i].fd, addr, len) < 0 ? -errno : 0;
}

void
weft_server_free(struct weft_server *s)
{
    if (s == NULL)
        return;
    weft_server_close(s);
    drop_pending(s);
    while (s->conns.head != NULL) {
        struct weft_transport *tr = s->conns.head;

        weft__conns_unlink(tr);
        /* One inside its own callback is lost later, from the loop. */
        (void)weft__transport_abort_now(tr);
    }
    if (s->wrap != NULL)
        s->wrap->ops->unref(s->wrap);
    free(s->ls);
    free(s);
}
