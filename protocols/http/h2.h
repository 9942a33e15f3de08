/* SPDX-License-Identifier: MIT */
/* h2.h: HTTP/2 connections of the http plugin (nghttp2 does the framing and HPACK). */
#ifndef WEFT_HTTP_H2_H
#define WEFT_HTTP_H2_H

#include <stdbool.h>
#include <stddef.h>

struct evbuffer;
struct http_service;
struct weft_protocol;
struct weft_transport;

/* The client connection preface (RFC 9113 §3.4), 24 bytes. */
#define H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define H2_PREFACE_LEN 24

/**
 * Take the connection tr over as HTTP/2, from its first byte on: ALPN chose "h2", or a
 * plain connection began with the preface (h2c with prior knowledge). in holds the bytes
 * already read (the preface, maybe more), or is NULL; they are consumed. Sends our
 * SETTINGS. Makes itself tr's protocol (weft_transport_set_protocol): the caller frees its
 * own. Returns the new protocol, or NULL (ENOMEM: nothing changed; the caller aborts tr).
 */
struct weft_protocol *h2_conn_start(struct http_service *svc, struct weft_transport *tr,
                                    struct evbuffer *in);

/**
 * A drain (weftd's SIGTERM, or a reload retiring this worker): every HTTP/2 connection of
 * svc sends GOAWAY with the last stream it took, finishes the streams it has and closes.
 */
void h2_drain(struct http_service *svc);

#endif
