/* SPDX-License-Identifier: MIT */
/* weft/pipe.h: pipes as transports (asyncio's connect_read_pipe / connect_write_pipe). */
#ifndef WEFT_PIPE_H
#define WEFT_PIPE_H

#include <weft/common.h>
#include <weft/protocol.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * A pipe transport is a struct weft_transport of its own flavour: the
 * weft_transport_* functions (weft/transport.h) work on it, with these
 * differences from a socket's:
 *
 *   read pipe   data_received, eof_received (its return value is ignored:
 *               the transport closes after EOF), connection_lost(0) at EOF;
 *               pause/resume_reading; writing returns -ENOTSUP.
 *   write pipe  write, write_buffer, writelines with flow control
 *               (pause/resume_writing); write_eof closes the write end once
 *               the queue is sent, which is the pipe's close (asyncio's
 *               write_eof on a pipe), so connection_lost(0) follows;
 *               connection_lost(0) when the reader goes with nothing queued,
 *               -EPIPE with bytes still queued; reading calls return -ENOTSUP.
 *
 * get_extra_info answers "pipe" (int, the descriptor; do not close it).
 * sendfile returns -ENOTSUP. The transport sets O_NONBLOCK on its
 * descriptor, owns it and closes it when freed, right after
 * connection_lost. Loop thread only.
 */

/**
 * Wrap fd, the read end of a pipe (or a FIFO, a socket, a character
 * device), in a read transport with a protocol from factory(arg);
 * connection_made runs before this returns. Takes fd on success only.
 * Returns 0 and *out (may be NULL if unwanted); -EINVAL for a regular
 * file, a directory or fd < 0 (asyncio refuses them too: they are always
 * readable); -EBADF; -ENOMEM (the protocol made is given
 * connection_lost(rc) to free itself). Since 0.1.
 */
WEFT_EXPORT int weft_connect_read_pipe(struct weft_loop *loop, weft_protocol_factory_cb *factory,
                                       void *arg, int fd, struct weft_transport **out);

/**
 * The same for the write end of a pipe: a write transport. Same returns.
 * Since 0.1.
 */
WEFT_EXPORT int weft_connect_write_pipe(struct weft_loop *loop, weft_protocol_factory_cb *factory,
                                        void *arg, int fd, struct weft_transport **out);

#ifdef __cplusplus
}
#endif
#endif
