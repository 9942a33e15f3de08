/* SPDX-License-Identifier: MIT */
/* weft/stream.h: asyncio's streams: reader, writer, start_server, open_connection. */
#ifndef WEFT_STREAM_H
#define WEFT_STREAM_H

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <weft/common.h>
#include <weft/protocol.h>
#include <weft/server.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * A connection seen from a task: a reader and a writer, as asyncio's
 * StreamReader and StreamWriter. The reader works straight on the
 * transport's input evbuffer (no second buffer); the writer writes through
 * the transport. Both belong to one connection object: a server's handler
 * gets them for the duration of its call; weft_open_connection() hands them
 * to the caller, who frees them with weft_writer_free().
 *
 * Every call that waits suspends the running task and returns -WEFT_ENOTASK
 * outside a task, -ECANCELED if the task is cancelled meanwhile (the data
 * stays in the buffer, as with asyncio). A connection error (-ECONNRESET...)
 * is returned by every later read, before any data still buffered; a clean
 * end of the stream is an EOF (0). Loop thread only.
 */

struct weft_stream_server;
struct weft_stream_factory;

/* The default reader limit (asyncio's 64 KiB). */
#define WEFT_STREAM_LIMIT_DEFAULT (64u * 1024)
/* WEFT_HAPPY_EYEBALLS_DELAY_DEFAULT, _OFF and WEFT_INTERLEAVE_NONE: weft/server.h. */

/*
 * Settings of a stream connection, a stream server, or weft_open_connection.
 * A NULL pointer or a zero field means the default.
 */
struct weft_stream_options {
    size_t limit;                   /* reader limit; 0 = 64 KiB */
    size_t write_high, write_low;   /* writer marks; 0 = 64 KiB / high / 4 */
    /* start_server */
    size_t stack_size;              /* handler task stacks; 0 = the task default */
    uint64_t grace_ms;              /* server close: handlers get this long, then are
                                       cancelled; 0 = 5000 ms */
    const struct weft_server_options *server;   /* backlog, reuse flags; NULL = defaults */
    /* open_connection */
    uint64_t connect_timeout_ms;    /* resolution + connect; 0 = 60 s */
    uint64_t happy_eyeballs_ms;     /* delay between attempts; 0 = 250 ms;
                                       WEFT_HAPPY_EYEBALLS_OFF: one at a time */
    const struct sockaddr *local_addr;  /* bind() before connect, or NULL */
    socklen_t local_addrlen;
    const void *tls;                /* TLS (weft/tls.h): a struct weft_tls_context *;
                                       start_server: a server context (used instead of
                                       server->tls); open_connection: a client one. NULL:
                                       plain TCP */
    /* Since 0.1 (TLS), open_connection: the name sent as SNI and checked against the
     * server's certificate; NULL: host. */
    const char *server_hostname;
    /* Since 0.1, open_connection: RFC 8305's First Address Family Count, as
     * weft_connect_options.interleave (0: 1). */
    int interleave;
};

/* A client handler: runs in a task per connection; r and w are borrowed for
 * the call. When it returns the connection is closed. Returns 0 or a
 * negative code (connection errors and -ECANCELED are normal endings; any
 * other error goes to the loop's error handler). */
typedef int weft_client_cb(struct weft_reader *r, struct weft_writer *w, void *arg);

/* ---- reader ---- */

/**
 * Read up to n bytes into buf, waiting until at least one is there.
 * Returns the count, 0 at EOF (or for n == 0), or a negative code. Since 0.1.
 */
WEFT_EXPORT ssize_t weft_reader_read(struct weft_reader *r, void *buf, size_t n);

/**
 * Move up to n bytes (0: everything buffered) to the end of dst without
 * copying (the evbuffer chains are handed over), waiting until at least one
 * is there. Returns the count, 0 at EOF, or a negative code. Since 0.1.
 */
WEFT_EXPORT ssize_t weft_reader_read_buffer(struct weft_reader *r, struct evbuffer *dst,
                                            size_t n);

/**
 * Read everything until EOF into a new buffer (*out, NUL-terminated, freed
 * by the caller with free()). Returns the length, or a negative code
 * (-ENOMEM, a connection error, -ECANCELED); *out is NULL then, and what was
 * read is lost. The data is not bounded by the limit. Since 0.1.
 */
WEFT_EXPORT ssize_t weft_reader_read_all(struct weft_reader *r, char **out);

/**
 * Read exactly n bytes into buf. Returns n; or -WEFT_EINCOMPLETE if EOF
 * came first: the bytes there were are consumed into buf and counted in
 * *partial (may be NULL). Nothing is consumed until all n are there, so a
 * cancelled call loses no data. Since 0.1.
 */
WEFT_EXPORT ssize_t weft_reader_readexactly(struct weft_reader *r, void *buf, size_t n,
                                            size_t *partial);

/**
 * Read a line, newline included, into buf as a NUL-terminated string.
 * Returns its length; a last line without newline at EOF; 0 at EOF.
 * A line longer than the limit or than size - 1 is consumed (through its
 * newline, or all that is buffered if none is there yet) and -WEFT_ELIMIT
 * returned, as asyncio's readline. Since 0.1.
 */
WEFT_EXPORT ssize_t weft_reader_readline(struct weft_reader *r, char *buf, size_t size);

/**
 * Read through sep (seplen bytes, at least 1) into buf, NUL-terminated.
 * Returns the length, separator included. -WEFT_ELIMIT if the separator is
 * not within the limit or the chunk would not fit in size - 1: the data is
 * left in the buffer, as asyncio's readuntil. -WEFT_EINCOMPLETE at EOF
 * without a separator: what was buffered is consumed, and as much as fits is
 * copied into buf. -EINVAL for an empty separator. Since 0.1.
 */
WEFT_EXPORT ssize_t weft_reader_readuntil(struct weft_reader *r, void *buf, size_t size,
                                          const void *sep, size_t seplen);

/**
 * weft_reader_readuntil() with several separators (Python 3.13): the chunk
 * ends at the match that ends first. *partial (may be NULL) receives the
 * count copied on -WEFT_EINCOMPLETE. Since 0.1.
 */
WEFT_EXPORT ssize_t weft_reader_readuntil_any(struct weft_reader *r, void *buf, size_t size,
                                              const struct iovec *seps, size_t nseps,
                                              size_t *partial);

/**
 * The line iterator (asyncio's `async for line in reader`): *line points to
 * the next line, newline included, inside the reader's own buffer (no copy;
 * not NUL-terminated), valid until the next call on r, which consumes it.
 * Returns its length, 0 at EOF, -WEFT_ELIMIT for a line over the limit
 * (consumed as readline does), or a negative code. Since 0.1.
 */
WEFT_EXPORT ssize_t weft_reader_next_line(struct weft_reader *r, const char **line);

/** True when EOF was received and nothing is left to read. Since 0.1. */
WEFT_EXPORT bool weft_reader_at_eof(const struct weft_reader *r);

/** Bytes buffered and not yet read. Since 0.1. */
WEFT_EXPORT size_t weft_reader_buffered(const struct weft_reader *r);

/**
 * Bound every later wait for data to timeout_ms (0 or negative: no bound,
 * the default), like wrapping each read in asyncio.wait_for(): a read that
 * waits longer returns -ETIMEDOUT and consumes nothing. Since 0.1.
 */
WEFT_EXPORT void weft_reader_set_timeout(struct weft_reader *r, int64_t timeout_ms);

/** The reader's limit. Since 0.1. */
WEFT_EXPORT size_t weft_reader_get_limit(const struct weft_reader *r);

/** The writer of the same connection. Since 0.1. */
WEFT_EXPORT struct weft_writer *weft_reader_writer(struct weft_reader *r);

/* ---- writer ---- */

/**
 * Queue len bytes (copied; never waits). Returns 0, or -EPIPE once the
 * connection is closing, closed, or its write side shut. Since 0.1.
 */
WEFT_EXPORT int weft_writer_write(struct weft_writer *w, const void *data, size_t len);

/** Queue iovcnt buffers as one write (copied). 0, -EPIPE or -EINVAL. Since 0.1. */
WEFT_EXPORT int weft_writer_writelines(struct weft_writer *w, const struct iovec *iov,
                                       int iovcnt);

/**
 * Queue buf's contents, moving its chains (no copy); buf stays the caller's
 * and is left empty. 0 or -EPIPE (buf untouched). Since 0.1.
 */
WEFT_EXPORT int weft_writer_write_buffer(struct weft_writer *w, struct evbuffer *buf);

/**
 * Wait while the queue is above the high-water mark, until it falls to the
 * low one. Several tasks may drain at once. Returns 0; at once the
 * connection's error (-ECONNRESET...) if it was lost, -EPIPE if it is
 * closing; the error if it breaks while waiting; -ECANCELED. Since 0.1.
 */
WEFT_EXPORT int weft_writer_drain(struct weft_writer *w);

/** Shut the write side once the queue is sent. 0, -EPIPE or -ENOTSUP. Since 0.1. */
WEFT_EXPORT int weft_writer_write_eof(struct weft_writer *w);

/** True if write_eof is supported (plain TCP). Since 0.1. */
WEFT_EXPORT bool weft_writer_can_write_eof(const struct weft_writer *w);

/**
 * Close the connection once the queue is sent (the reader sees EOF).
 * Idempotent; returns 0. Since 0.1.
 */
WEFT_EXPORT int weft_writer_close(struct weft_writer *w);

/**
 * Wait until the connection is gone (connection_lost), for at most
 * timeout_ms (negative: 30 s). Returns 0; -ETIMEDOUT, and the connection
 * is aborted (a peer that does not read never keeps it); -ECANCELED.
 * Call after weft_writer_close(). Since 0.1.
 */
WEFT_EXPORT int weft_writer_wait_closed(struct weft_writer *w, int64_t timeout_ms);

/** True once close was called or the connection was lost. Since 0.1. */
WEFT_EXPORT bool weft_writer_is_closing(const struct weft_writer *w);

struct weft_tls_context;

/**
 * In a task: upgrade the connection to TLS and wait for the handshake
 * (asyncio's StreamWriter.start_tls), client side with a client context
 * (server_hostname: SNI and the name checked; NULL: none), server side with
 * a server context. Bytes the reader has not consumed are the handshake's
 * (a ClientHello sent right behind a STARTTLS command); read the command's
 * line only. From the return on, the reader and the writer carry plaintext
 * over TLS. Returns 0; a handshake failure (-WEFT_ETLS, -ETIMEDOUT,
 * -ECONNRESET...), after which the connection is lost; -EPIPE (closing, or
 * already upgrading); -EINVAL (ctx NULL); -ENOMEM; -WEFT_ENOTASK;
 * -ECANCELED (the handshake goes on; close the writer). Since 0.1.
 */
WEFT_EXPORT int weft_writer_start_tls(struct weft_writer *w, struct weft_tls_context *ctx,
                                      const char *server_hostname);

/**
 * The transport's get_extra_info ("peername", "sockname", "socket", and the TLS names); see
 * weft_transport_get_extra_info(). -ENOTCONN once the connection is gone.
 * Since 0.1.
 */
WEFT_EXPORT int weft_writer_get_extra_info(struct weft_writer *w, const char *name,
                                           void *out, size_t *len);

/** The transport (borrowed), or NULL once the connection is gone. Since 0.1. */
WEFT_EXPORT struct weft_transport *weft_writer_transport(struct weft_writer *w);

/** The reader of the same connection. Since 0.1. */
WEFT_EXPORT struct weft_reader *weft_writer_reader(struct weft_writer *w);

/**
 * For weft_open_connection()'s caller: close the connection if it is still
 * open (what is queued is still sent) and free the reader and writer (both
 * are invalid after; no task may be waiting on them). A handler's pair is
 * left alone: its server frees it. NULL is a no-op. Since 0.1.
 */
WEFT_EXPORT void weft_writer_free(struct weft_writer *w);

/* ---- servers ---- */

/**
 * asyncio.start_server(): listen on host:port (as weft_create_server(): a
 * name that needs a DNS query gives -EWOULDBLOCK) and run client(r, w, arg) in a new task
 * for each connection. Returns 0 and *out, or a negative code as
 * weft_create_server() (-EINVAL for a client context in opts->tls). Since 0.1.
 */
WEFT_EXPORT int weft_start_server(struct weft_loop *loop, weft_client_cb *client, void *arg,
                                  const char *host, uint16_t port,
                                  const struct weft_stream_options *opts,
                                  struct weft_stream_server **out);

/**
 * asyncio.start_unix_server(): listen on the Unix domain socket path (as
 * weft_create_unix_server(): '@' first names an abstract socket, a stale
 * socket file is replaced, the file is removed when the server closes) and
 * run client(r, w, arg) in a new task for each connection. Returns 0 and
 * *out, or a negative code as weft_create_unix_server(). Since 0.1.
 */
WEFT_EXPORT int weft_start_unix_server(struct weft_loop *loop, weft_client_cb *client,
                                       void *arg, const char *path,
                                       const struct weft_stream_options *opts,
                                       struct weft_stream_server **out);

/**
 * weft_start_server() on sockets already listening (a daemon's, systemd's).
 * Takes the descriptors on success only. Since 0.1.
 */
WEFT_EXPORT int weft_start_server_fds(struct weft_loop *loop, weft_client_cb *client,
                                      void *arg, const int *fds, size_t nfds,
                                      const struct weft_stream_options *opts,
                                      struct weft_stream_server **out);

/**
 * Suspend until the server is closed (asyncio's serve_forever). Returns 0
 * once weft_stream_server_close() was called, -ECANCELED (the server is then
 * closed, as asyncio does), -WEFT_ENOTASK, -ENOMEM. Since 0.1.
 */
WEFT_EXPORT int weft_stream_server_serve_forever(struct weft_stream_server *s);

/**
 * Stop listening. Handlers still running get grace_ms to finish, then they
 * are cancelled. Idempotent. Since 0.1.
 */
WEFT_EXPORT void weft_stream_server_close(struct weft_stream_server *s);

/** Close every connection gracefully (its handler reads EOF). Since 0.1. */
WEFT_EXPORT void weft_stream_server_close_clients(struct weft_stream_server *s);

/** Abort every connection (its handler reads an error). Since 0.1. */
WEFT_EXPORT void weft_stream_server_abort_clients(struct weft_stream_server *s);

/**
 * Suspend until the server is closed and every handler has returned.
 * Returns 0, -ECANCELED, -WEFT_ENOTASK, -ENOMEM. Since 0.1.
 */
WEFT_EXPORT int weft_stream_server_wait_closed(struct weft_stream_server *s);

/** True while listening. Since 0.1. */
WEFT_EXPORT bool weft_stream_server_is_serving(const struct weft_stream_server *s);

/** Handlers running (connections not yet finished). Since 0.1. */
WEFT_EXPORT size_t weft_stream_server_client_count(const struct weft_stream_server *s);

/** Listening sockets (0 after close). Since 0.1. */
WEFT_EXPORT size_t weft_stream_server_socket_count(const struct weft_stream_server *s);

/** Address of listening socket i, as weft_server_get_sockname(). Since 0.1. */
WEFT_EXPORT int weft_stream_server_get_sockname(const struct weft_stream_server *s, size_t i,
                                                struct sockaddr *addr, socklen_t *len);

/**
 * Close the server, abort its connections, cancel the handlers still
 * running (they finish in later loop iterations; the server's memory goes
 * with the last), and drop the caller's hold. NULL is a no-op. Since 0.1.
 */
WEFT_EXPORT void weft_stream_server_free(struct weft_stream_server *s);

/**
 * A Protocol-layer factory for code that runs its own servers (weftd):
 * weft_stream_factory_new() keeps client, arg and a copy of opts; pass
 * weft_stream_factory as the factory and the returned object as its argument
 * to weft_create_server() / weft_create_server_fds(). Each connection then
 * runs client(r, w, arg) in a task; when the connection is closed or aborted
 * from outside (weft_server_close_clients, abort_clients, a peer reset)
 * before the handler returns, the handler is cancelled after grace_ms.
 * NULL with errno ENOMEM or EINVAL. Since 0.1.
 */
WEFT_EXPORT struct weft_stream_factory *weft_stream_factory_new(weft_client_cb *client, void *arg,
                                                               const struct weft_stream_options *opts);

/** The factory function to pass with a weft_stream_factory. Since 0.1. */
WEFT_EXPORT struct weft_protocol *weft_stream_factory(void *factory);

/**
 * Free a factory made by weft_stream_factory_new(). Connections still open
 * keep what they need. NULL is a no-op. Since 0.1.
 */
WEFT_EXPORT void weft_stream_factory_free(struct weft_stream_factory *f);

/**
 * Handlers of the loop still running (from every server and factory).
 * Since 0.1.
 */
WEFT_EXPORT size_t weft_stream_handler_count(struct weft_loop *loop);

/* ---- clients ---- */

/**
 * asyncio.open_connection(), from a task: weft_create_connection() (evdns;
 * numeric addresses and /etc/hosts need no query; the addresses interleaved
 * by family and tried with happy_eyeballs_ms between attempts, RFC 8305),
 * within connect_timeout_ms, then wait for it. Returns 0 with *r and *w (free with
 * weft_writer_free()); or -WEFT_ENONAME, -WEFT_ERESOLVE, -ECONNREFUSED,
 * -ENETUNREACH, -ETIMEDOUT, -ECANCELED, -WEFT_ENOTASK, -ENOMEM, -EINVAL.
 * Since 0.1.
 */
WEFT_EXPORT int weft_open_connection(const char *host, uint16_t port,
                                     const struct weft_stream_options *opts,
                                     struct weft_reader **r, struct weft_writer **w);

/**
 * asyncio.open_unix_connection(), from a task: connect to the Unix domain
 * socket path ('@' first: abstract) within connect_timeout_ms. With opts->tls
 * the connection is TLS and opts->server_hostname is required (-EINVAL
 * without); opts->local_addr, if set, must be AF_UNIX. Returns 0 with *r and
 * *w (free with weft_writer_free()); or -ECONNREFUSED (nobody listens),
 * -ENOENT, -EACCES, -EAGAIN (the server's backlog is full), -ENAMETOOLONG,
 * -ETIMEDOUT, -ECANCELED, -WEFT_ENOTASK, -ENOMEM, -EINVAL. Since 0.1.
 */
WEFT_EXPORT int weft_open_unix_connection(const char *path,
                                          const struct weft_stream_options *opts,
                                          struct weft_reader **r, struct weft_writer **w);

#ifdef __cplusplus
}
#endif
#endif
