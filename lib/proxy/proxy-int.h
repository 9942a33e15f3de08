/* SPDX-License-Identifier: MIT */
/* proxy-int.h: a server's PROXY stage: read a connection's header before any transport exists. */
#ifndef WEFT_PROXY_INT_H
#define WEFT_PROXY_INT_H

#include <weft/proxy.h>

#include "core/internal.h"

struct weft__proxy;

/*
 * The stage's outcome, called once from the loop: rc 0 and info (the parsed
 * header, borrowed for the call) with fd now the caller's again, positioned
 * just after the header; or rc < 0 (-EPROTO bad header, -ETIMEDOUT,
 * -ECONNRESET closed early, -errno) and fd closed right after this returns
 * (still open during the call, for getpeername). p is freed then too.
 */
typedef void weft__proxy_done_cb(void *arg, struct weft__proxy *p, int fd, int rc,
                                 const struct weft_proxy_info *info);

/*
 * Start reading the header of fd (a non-blocking accepted socket). Takes fd
 * on success only. Returns 0 and *out, or -ENOMEM.
 */
int weft__proxy_start(struct weft_loop *loop, int fd, const struct weft_proxy_options *opts,
                      weft__proxy_done_cb *done, void *arg, struct weft__proxy **out);

/* Give up on p: close its socket and free it (done is not called). */
void weft__proxy_free(struct weft__proxy *p);

/* The server's list of pending stages. */
struct weft__proxy *weft__proxy_next(const struct weft__proxy *p);
void weft__proxy_link(struct weft__proxy **head, struct weft__proxy *p);
void weft__proxy_unlink(struct weft__proxy **head, struct weft__proxy *p);

#endif
