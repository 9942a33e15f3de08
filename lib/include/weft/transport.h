/* SPDX-License-Identifier: MIT */
/* weft/transport.h: a connection's byte pipe, backed by a libevent bufferevent. */
#ifndef WEFT_TRANSPORT_H
#define WEFT_TRANSPORT_H

#include <sys/socket.h>
#include <sys/uio.h>
#include <weft/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * A transport owns its socket and bufferevent (or its pipe end: weft/pipe.h).
 * The library creates it (a
 * server accepting, weft_create_connection, weft_connect_accepted_socket),
 * calls its protocol's callbacks, and frees it right after connection_lost
 * returns: the protocol must drop its pointer there. Loop thread only.
 */

/* asyncio's default write-buffer limits. */
#define WEFT_WRITE_HIGH_DEFAULT (64u * 1024)
#define WEFT_WRITE_LOW_DEFAULT (16u * 1024)

/**
 * Queue len bytes from data for sending. Copies them; never blocks. When
 * nothing is queued the bytes go straight to the socket and only the rest is
 * queued. Returns 0, or -EPIPE after close, abort or write_eof (the data is
 * dropped). A socket error is reported later, through connection_lost.
 * Past the high-water mark the protocol's pause_writing is called. Since 0.1.
 */
WEFT_EXPORT int weft_transport_write(struct weft_transport *tr, const void *data, size_t len);

/**
 * Queue everything in buf for sending, moving its chains (no copy); buf is
 * left empty and stays the caller's. Returns 0 or -EPIPE as
 * weft_transport_write(); on -EPIPE buf is left as it was. Since 0.1.
 *
 * buf must hold memory only: a buffer flagged EVBUFFER_FLAG_DRAINS_TO_FD with
 * file segments in it is not supported (libevent gives no public way to tell
 * them apart); send files with weft_transport_sendfile(). Without that flag
 * libevent maps or reads a file segment into memory, which any transport takes.
 */
WEFT_EXPORT int weft_transport_write_buffer(struct weft_transport *tr, struct evbuffer *buf);

/**
 * Queue len bytes of the file fd from offset, after everything queued so
 * far, to go out with sendfile(2): the bytes never enter user space. Takes
 * fd on success: the transport closes it once the range is sent or the
 * connection is lost. A file found shorter than its range meanwhile ends the
 * connection (connection_lost(-EIO)); the peer gets a short stream, never
 * wrong bytes. The range counts in the write buffer size (flow control as for
 * writes). len 0 closes fd and returns 0.
 * Returns 0; -EPIPE after close, abort or write_eof; -ENOTSUP for a transport
 * that must read the bytes itself (TLS: read them, with pread, and write);
 * -EINVAL for fd < 0 or a range past 2^63; -ENOMEM. On an error fd stays the
 * caller's. Since 0.1.
 */
WEFT_EXPORT int weft_transport_sendfile(struct weft_transport *tr, int fd, uint64_t offset,
                                        uint64_t len);

/**
 * weft_transport_sendfile() with a memory head: head's bytes (drained from head;
 * NULL or empty for none) are queued first, then the file's range. With nothing
 * queued before, both go out at once, the head with sendmsg(MSG_MORE) and then
 * the file with sendfile(2), so a response head shares the file's first packet
 * (no TCP_CORK needed). Returns as weft_transport_sendfile(); on an error head is
 * left as it was (but for -ENOMEM with len 0, where the connection is lost) and
 * fd stays the caller's. Since 0.1.
 */
WEFT_EXPORT int weft_transport_sendfile_buffer(struct weft_transport *tr, struct evbuffer *head,
                                               int fd, uint64_t offset, uint64_t len);

/**
 * Ignore SIGPIPE in the whole process (sigaction SIG_IGN) and let the library
 * rely on it: sendfile(2) and writes to pipes, which have no MSG_NOSIGNAL, then
 * skip blocking SIGPIPE around each call (two rt_sigprocmask(2) saved per
 * call). Without it the library works whatever SIGPIPE's disposition. The
 * caller must not give SIGPIPE a handler or its default action again
 * (children started with weft_subprocess get the default back as always).
 * Returns 0 or -errno from sigaction. Since 0.1.
 */
WEFT_EXPORT int weft_ignore_sigpipe(void);

/**
 * Queue iovcnt buffers in order, as one write (copies). Returns 0, -EPIPE, or
 * -EINVAL for a negative iovcnt. Since 0.1.
 */
WEFT_EXPORT int weft_transport_writelines(struct weft_transport *tr,
                                          const struct iovec *iov, int iovcnt);

/**
 * Close the write side once the queued bytes are sent (shutdown(SHUT_WR));
 * reading goes on. Returns 0, -EPIPE if already closing or shut, or
 * -ENOTSUP where weft_transport_can_write_eof() is false. Since 0.1.
 */
WEFT_EXPORT int weft_transport_write_eof(struct weft_transport *tr);

/** True if write_eof is supported (plain TCP: yes; TLS: no). Since 0.1. */
WEFT_EXPORT bool weft_transport_can_write_eof(const struct weft_transport *tr);

/**
 * Stop reading, send what is queued, then close; connection_lost(0) follows
 * from the loop. A second call is a no-op. Since 0.1.
 */
WEFT_EXPORT void weft_transport_close(struct weft_transport *tr);

/**
 * Close now, dropping what is queued (the peer sees a reset);
 * connection_lost(0) follows from the loop. Since 0.1.
 */
WEFT_EXPORT void weft_transport_abort(struct weft_transport *tr);

/** True once close or abort was called, or the connection was lost. Since 0.1. */
WEFT_EXPORT bool weft_transport_is_closing(const struct weft_transport *tr);

/**
 * Stop reading from the socket (data_received is not called until resumed;
 * EOF is noticed then). Returns 0, or -EPIPE if closing. Idempotent.
 * Since 0.1.
 */
WEFT_EXPORT int weft_transport_pause_reading(struct weft_transport *tr);

/** Resume reading. Returns 0, or -EPIPE if closing. Idempotent. Since 0.1. */
WEFT_EXPORT int weft_transport_resume_reading(struct weft_transport *tr);

/** True unless reading is paused or the transport is closing. Since 0.1. */
WEFT_EXPORT bool weft_transport_is_reading(const struct weft_transport *tr);

/* "Use the default" for weft_transport_set_write_buffer_limits(). */
#define WEFT_LIMIT_DEFAULT SIZE_MAX

/**
 * Set the write buffer's marks: above high, pause_writing; back at or below
 * low, resume_writing. high 0 pauses whenever anything is queued.
 * WEFT_LIMIT_DEFAULT for high gives 64 KiB; for low, high / 4.
 * Returns 0, or -EINVAL if low > high. Since 0.1.
 */
WEFT_EXPORT int weft_transport_set_write_buffer_limits(struct weft_transport *tr,
                                                       size_t high, size_t low);

/** The current marks. Since 0.1. */
WEFT_EXPORT void weft_transport_get_write_buffer_limits(const struct weft_transport *tr,
                                                        size_t *high, size_t *low);

/** Bytes queued and not yet handed to the kernel. Since 0.1. */
WEFT_EXPORT size_t weft_transport_get_write_buffer_size(const struct weft_transport *tr);

/**
 * asyncio's get_extra_info, by name, copying into out (*len: in, its size;
 * out, the bytes written):
 *   "peername", "sockname"  struct sockaddr_storage (or shorter); "peername"
 *                           is the proxied peer once one is set (below)
 *   "proxy_peername"        the socket's own peer (the load balancer) when a
 *                           proxied peer is set; -ENOENT otherwise
 *   "socket"                int, the file descriptor (do not close it)
 *   "peercred"              struct ucred (<sys/socket.h> with _GNU_SOURCE):
 *                           the pid, uid and gid of the peer process as
 *                           they were when it connected (SO_PEERCRED); Unix
 *                           domain sockets only, -ENOENT on others
 * and on a TLS transport (weft/tls.h), once its handshake is done:
 *   "ssl_object"            SSL *, OpenSSL's connection (borrowed; any time)
 *   "tls_version"           string, "TLSv1.3" or "TLSv1.2"
 *   "cipher"                string, OpenSSL's name ("TLS_AES_256_GCM_SHA384")
 *   "alpn_protocol"         string, the protocol ALPN chose (-ENOENT: none)
 *   "sni"                   string, the server name the client asked for
 *                           (-ENOENT: none)
 *   "peercert_subject"      string, the peer certificate's subject, RFC 2253
 *                           ("CN=client,O=weft test"; -ENOENT: no certificate)
 * Strings are copied with their NUL, which *len counts.
 * Returns 0, -ENOENT for a name this transport does not have, -ENOBUFS if
 * *len is too small (*len is set to the size needed), or -errno from the
 * socket call. Since 0.1.
 */
WEFT_EXPORT int weft_transport_get_extra_info(struct weft_transport *tr, const char *name,
                                              void *out, size_t *len);

/**
 * Format the peer address as "1.2.3.4:80" or "[::1]:80" into buf (the
 * proxied peer if one is set). A Unix domain peer is "unix:/path" or
 * "unix:@name" (abstract) when it has a name, else, as for most clients,
 * "unix:pid=N,uid=N" from its credentials; bytes of a path outside
 * printable ASCII, blanks and '\' are written \xHH, so the text is one
 * word. Returns buf, or "?" if it is unknown or does not fit. Since 0.1.
 */
WEFT_EXPORT const char *weft_transport_peer_string(struct weft_transport *tr,
                                                   char *buf, size_t len);

/** The transport's loop, borrowed. Since 0.1. */
WEFT_EXPORT struct weft_loop *weft_transport_get_loop(const struct weft_transport *tr);

/** The current protocol, borrowed. Since 0.1. */
WEFT_EXPORT struct weft_protocol *weft_transport_get_protocol(const struct weft_transport *tr);

/**
 * Hand the connection to another protocol: p receives every later callback
 * (connection_made is not called for it). The old one is not told; it is the
 * caller's to free. Since 0.1.
 */
WEFT_EXPORT void weft_transport_set_protocol(struct weft_transport *tr, struct weft_protocol *p);

/**
 * Record the connection's original client, as a PROXY protocol header
 * (weft/proxy.h) names it: from then on get_extra_info("peername") and
 * weft_transport_peer_string() report sa, and "proxy_peername" the socket's
 * real peer. Copies sa (len bytes, an AF_INET or AF_INET6 address, or any
 * family up to sizeof(struct sockaddr_storage)); the copy is freed with the
 * transport. sa NULL forgets it. A server with a PROXY stage
 * (weft_server_options.proxy) sets it before connection_made. Returns 0,
 * -EINVAL for a bad length, -ENOMEM. Since 0.1.
 */
WEFT_EXPORT int weft_transport_set_proxied_peer(struct weft_transport *tr,
                                                const struct sockaddr *sa, socklen_t len);

/**
 * Close the connection once no byte was read or written for ms
 * milliseconds (0: never, the default; at most UINT32_MAX). It is closed
 * between 1 and 1.25 times ms after its last byte: gracefully if nothing is
 * queued, else aborted (a peer that stopped reading); connection_lost(0)
 * follows. Reads and writes only set a flag; a timer per connection looks
 * at it every ms / 4. A server sets it on each connection it accepts
 * (weft_server_options.idle_timeout_ms). Setting it again restarts the
 * count. Returns 0, -EINVAL, -EPIPE once the connection is lost, -ENOMEM.
 * Since 0.1.
 */
WEFT_EXPORT int weft_transport_set_idle_timeout(struct weft_transport *tr, uint64_t ms);

/** The idle timeout in milliseconds, 0 if none. Since 0.1. */
WEFT_EXPORT uint64_t weft_transport_get_idle_timeout(const struct weft_transport *tr);

#ifdef __cplusplus
}
#endif
#endif
