/* SPDX-License-Identifier: MIT */
/* transport-int.h: the transport's layout and its hooks for server.c (and a TLS flavour). */
#ifndef WEFT_TRANSPORT_INT_H
#define WEFT_TRANSPORT_INT_H

#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/internal.h"

struct bufferevent;
struct evbuffer;
struct iovec;
struct weft_transport;
struct weft__files;

/*
 * A flavour of transport, as libevent's bufferevent_ops or HAProxy's
 * xprt_ops: the socket transport (transport.c) over a file descriptor, the
 * two ends of a pipe (pipe.c), and layers stacked over another transport
 * (TLS, tls_transport.c, which is that transport's protocol). The public weft_transport_* functions check
 * what every flavour shares (closing, EOF sent, argument errors, flags),
 * then call through tr->ops; nothing in transport.c knows a flavour.
 */
struct weft__transport_ops {
    const char *name;       /* "socket", "tls", "read_pipe", "write_pipe" (pipe.c) */
    /* Queue or send; the transport is neither closing nor past write_eof. */
    int (*write)(struct weft_transport *tr, const void *data, size_t len);
    int (*write_buffer)(struct weft_transport *tr, struct evbuffer *buf);
    int (*writelines)(struct weft_transport *tr, const struct iovec *iov, int iovcnt);
    /* weft_transport_sendfile_buffer(): head (NULL or not empty) drained, then the
     * file; takes fd on success; NULL: -ENOTSUP (TLS). */
    int (*sendfile)(struct weft_transport *tr, struct evbuffer *head, int fd,
                    uint64_t offset, uint64_t len);
    /* weft_transport_write_eof(), EOF_SENT just set; NULL: cannot (TLS). */
    void (*write_eof)(struct weft_transport *tr);
    /* weft_transport_close() on a transport not yet closing. */
    void (*close)(struct weft_transport *tr);
    /* weft_transport_abort() on a transport not yet lost: drop the queue, end. */
    void (*abort)(struct weft_transport *tr);
    /*
     * weft__transport_abort_now(): abort and deliver connection_lost now
     * unless a callback of the transport is running; true if it was freed.
     */
    bool (*abort_now)(struct weft_transport *tr);
    /* READ_PAUSED was just set / cleared; 0 or -errno. */
    int (*pause_reading)(struct weft_transport *tr);
    int (*resume_reading)(struct weft_transport *tr);
    /* Bytes queued and not yet sent (the layers below included). */
    size_t (*buffer_size)(const struct weft_transport *tr);
    /* tr->high / tr->low were just set: pause the protocol now if past them. */
    void (*limits_changed)(struct weft_transport *tr);
    /*
     * get_extra_info for every name but a proxied peer's (transport.c
     * answers those): -ENOENT for a name it does not know. A layer answers
     * its own names and asks the transport below for the rest.
     */
    int (*extra_info)(struct weft_transport *tr, const char *name, void *out, size_t *len);
    /* The transport this one is stacked on, or NULL (a socket). */
    struct weft_transport *(*lower)(const struct weft_transport *tr);
    /* The evbuffer data_received hands the protocol: what was read and not taken. */
    struct evbuffer *(*input)(struct weft_transport *tr);
};

/* tr->flags */
enum {
    TR_READ_PAUSED = 1u << 0,   /* pause_reading() */
    TR_WRITE_PAUSED = 1u << 1,  /* pause_writing() was called, resume_writing() not yet */
    TR_CLOSING = 1u << 2,       /* close(), abort() or a fatal error: no more writes */
    TR_ABORTED = 1u << 3,       /* abort(): the queue was dropped */
    TR_EOF_SENT = 1u << 4,      /* write_eof() asked; writes refused */
    TR_SHUT_WR = 1u << 5,       /* shutdown(SHUT_WR) done */
    TR_EOF_RCVD = 1u << 6,      /* read() returned 0 */
    TR_LOST_PENDING = 1u << 7,  /* connection_lost is scheduled (ev_read activated) */
    TR_LOST = 1u << 8,          /* connection_lost is running or ran */
    TR_MADE = 1u << 9,          /* connection_made ran */
    TR_ACTIVE = 1u << 11,       /* bytes moved since the idle timer last looked */
};

/*
 * Kept small: 10,000 idle connections must stay under 1.5 KiB each, and the
 * bufferevent with its two evbuffers already takes about 1 KiB of that.
 * bev, fd, rd_* and files are the socket flavour's; a layer (TLS) has bev
 * NULL and fd -1, and keeps what it needs in its own struct, which begins
 * with this one; a pipe has bev NULL and its fd (struct pipe_tr, pipe.c).
 */
struct weft_transport {
    const struct weft__transport_ops *ops;  /* its flavour */
    struct bufferevent *bev;        /* socket: owns the evbuffers and both events */
    struct weft_loop *loop;
    struct weft_protocol *proto;
    struct weft__conns *conns;      /* the list it is in (its server's), or NULL */
    struct weft_transport *srv_prev, *srv_next;
    size_t high, low;               /* write buffer marks */
    int fd;
    int error;                      /* for connection_lost */
    uint16_t flags;
    uint8_t rd_shift;               /* next read size is 1 << rd_shift (adaptive) */
    uint8_t rd_small;               /* small reads in a row (shrinks rd_shift) */
    uint8_t in_cb;                  /* depth of protocol callbacks running */
    uint8_t idle_quiet;             /* idle ticks in a row without TR_ACTIVE */
    uint32_t idle_ms;               /* idle timeout, 0: none */
    struct weft_handle *idle_timer; /* ticks every idle_ms / 4 while idle_ms != 0 */
    struct weft__peer *proxied;     /* the client a PROXY header named, or NULL */
    struct weft__files *files;      /* file segments queued (transport.c), or NULL */
};

/*
 * A list of transports (a server's connections, for connection_count,
 * close_clients and free): a transport joins it when made and leaves it
 * when lost, by itself.
 */
struct weft__conns {
    struct weft_transport *head;    /* through srv_prev/srv_next */
    size_t count;
};

/* The protocol's operations, or NULL before there is a protocol. */
static inline const struct weft_protocol_ops *
weft__proto_ops(const struct weft_transport *tr)
{
    return tr->proto != NULL ? tr->proto->ops : NULL;
}

/*
 * For every flavour. A protocol callback failed: tell the loop's error
 * handler (message, rc, the peer), then abort the transport.
 */
void weft__transport_failed(struct weft_transport *tr, const char *message, int rc);

/*
 * tr->proto is set: mark the transport made and run connection_made (its
 * failure: weft__transport_failed).
 */
void weft__transport_made(struct weft_transport *tr);

/*
 * For every flavour with a write queue of queued bytes: past the high mark,
 * pause the protocol's writing (once); at or below the low mark after a
 * pause, resume it. The protocol may close or abort from its callback.
 */
void weft__transport_mark_high(struct weft_transport *tr, size_t queued);
void weft__transport_mark_low(struct weft_transport *tr, size_t queued);

/*
 * For every flavour, when it is done: TR_LOST, off its server's list,
 * connection_lost(tr->error). The caller frees the transport after.
 */
void weft__transport_notify_lost(struct weft_transport *tr);

/*
 * Hand in to data_received (nobody wants it: drained). False if the
 * callback failed (the transport is aborted).
 */
bool weft__transport_data(struct weft_transport *tr, struct evbuffer *in);

/* tr's input (the evbuffer its data_received hands over), for a layer pushed onto it. */
static inline struct evbuffer *
weft__transport_input(struct weft_transport *tr)
{
    return tr->ops->input(tr);
}

/* Join / leave the list. */
void weft__conns_link(struct weft__conns *l, struct weft_transport *tr);
void weft__conns_unlink(struct weft_transport *tr);

/*
 * A wrapper of new connections (TLS today): what a server or an outgoing
 * connection calls to make the transport of a connected socket when its
 * options name one, as redis's ConnectionType. The wrapper object (struct
 * weft_tls_context) starts with a struct weft__wrapper, so net reaches it
 * through this table without knowing its layout, and calls nothing in its
 * layer. weft__wrapper_of() is that first member of the public object.
 */
typedef void weft__wrap_done_cb(struct weft_transport *tr, int error, void *arg);

struct weft__wrapper;

struct weft__wrapper_ops {
    /*
     * Make the transport over fd (taken on success only) and start it
     * (a handshake): once it is ready factory(farg) makes the protocol,
     * connection_made runs, then done(tr, 0, darg) if done is set; a failure
     * ends in done(NULL, err, darg). hostname: the name a client asks for and
     * checks (NULL: none). conns: a server's list (joined at once), or NULL.
     * Returns 0 and *out (may be NULL), or -errno.
     */
    int (*wrap)(struct weft__wrapper *w, struct weft_loop *loop, int fd, const char *hostname,
                weft_protocol_factory_cb *factory, void *farg, struct weft__conns *conns,
                weft__wrap_done_cb *done, void *darg, struct weft_transport **out);
    /* Forget the done callback of a transport still being set up, and abort it. */
    void (*cancel)(struct weft_transport *tr);
    /* Hold / release a reference to the wrapper. */
    struct weft__wrapper *(*ref)(struct weft__wrapper *w);
    void (*unref)(struct weft__wrapper *w);
    /* True for the client side (outgoing connections), false for a server's. */
    bool (*is_client)(const struct weft__wrapper *w);
};

struct weft__wrapper {
    const struct weft__wrapper_ops *ops;
};

static inline struct weft__wrapper *
weft__wrapper_of(const void *object)
{
    return (struct weft__wrapper *)object;
}

/* A peer address given by weft_transport_set_proxied_peer(). */
struct weft__peer {
    socklen_t len;
    struct sockaddr_storage addr;
};

/*
 * Make a transport over a connected socket and run connection_made. Takes fd
 * on success only. conns may be NULL; if not, the transport joins it before
 * connection_made. Returns 0 and *out, or -errno. *out may already be
 * closing if connection_made failed.
 */
int weft__transport_new_socket(struct weft_loop *loop, struct weft_protocol *proto, int fd,
                               struct weft__conns *conns, struct weft_transport **out);

/*
 * Abort and run connection_lost now, unless the transport is inside one of
 * its protocol's callbacks (then it is aborted and lost later, from the loop).
 * For weft_server_free(). Returns true if the transport was freed.
 */
bool weft__transport_abort_now(struct weft_transport *tr);

/*
 * weft__transport_new_socket() for an accepted connection: before
 * connection_made the transport gets peer as its proxied peer (NULL: none;
 * a copy is kept) and an idle timeout of idle_ms (0: none). Same returns.
 */
int weft__transport_new_accepted(struct weft_loop *loop, struct weft_protocol *proto, int fd,
                                 struct weft__conns *conns, const struct sockaddr *peer,
                                 socklen_t peerlen, uint64_t idle_ms,
                                 struct weft_transport **out);

/*
 * Reorder addrs for happy eyeballs (RFC 8305 section 4): IPv6 first if any,
 * first (>= 1) of the leading family, then the families in turn; first <= 0
 * leaves the order alone. tmp: room for n more. (connect.c)
 */
struct weft__addr;
void weft__addrs_interleave(struct weft__addr *addrs, size_t n, int first,
                            struct weft__addr *tmp);

/*
 * "1.2.3.4:80", "[::1]:80", "unix:/path", "unix:@name" or "unix" (an unnamed
 * Unix socket) into buf; salen is sa's length, which a Unix address needs.
 * Returns buf, or "?".
 */
const char *weft__addr_string(const struct sockaddr *sa, socklen_t salen, char *buf,
                              size_t len);

/*
 * Run fn(arg) once when s closes its listening sockets (weft_server_close,
 * or free), after they are closed: unix.c removes the socket file it made.
 * One hook per server; it is not run if this fails (-EBUSY: one is set).
 */
int weft__server_on_close(struct weft_server *s, void (*fn)(void *arg), void *arg);

struct sockaddr_un;

/*
 * A Unix domain address for path ('@' first: the abstract namespace) into
 * *sun (zeroed first) and its length. Returns 0, -EINVAL (NULL, "", "@"),
 * -ENAMETOOLONG. For unix.c and the stream layer's open_unix_connection.
 */
int weft__unix_addr(const char *path, struct sockaddr_un *sun, socklen_t *len);

/*
 * weft_create_connection() to addr (len bytes, copied) instead of a host
 * name: no resolution. tls_name is the TLS server name (NULL: none, and
 * opts->tls must then be NULL). Same returns.
 */
int weft__connect_addr(struct weft_loop *loop, weft_protocol_factory_cb *factory, void *farg,
                       const struct sockaddr *addr, socklen_t len, const char *tls_name,
                       const struct weft_connect_options *opts, weft_connect_cb *cb,
                       void *cbarg, struct weft_connect **out);

/* Set by weft_ignore_sigpipe(): SIGPIPE is ignored in this process for good, so
 * writes that have no MSG_NOSIGNAL (sendfile, pipes) need not block it. */
extern bool weft__sigpipe_ignored;

static inline bool
weft__sigpipe_is_ignored(void)
{
    return __atomic_load_n(&weft__sigpipe_ignored, __ATOMIC_RELAXED);
}

/*
 * Around a write that has no MSG_NOSIGNAL (sendfile, writev on a pipe):
 * weft__sigpipe_block blocks SIGPIPE in this thread (nothing once
 * weft_ignore_sigpipe() was called); weft__sigpipe_restore, given what the
 * write returned, takes back the SIGPIPE it raised on EPIPE (pending for this
 * thread only) unless the caller had SIGPIPE blocked already, then restores
 * the mask. errno is kept across it.
 */
struct weft__sigpipe_guard {
    sigset_t old;
    bool blocked;
};

void weft__sigpipe_block(struct weft__sigpipe_guard *g);
void weft__sigpipe_restore(struct weft__sigpipe_guard *g, ssize_t w);

#endif
