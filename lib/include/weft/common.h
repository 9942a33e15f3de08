/* SPDX-License-Identifier: MIT */
/* weft/common.h: export macro and forward declarations shared by every header. */
#ifndef WEFT_COMMON_H
#define WEFT_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define WEFT_EXPORT __attribute__((visibility("default")))
#define WEFT_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define WEFT_EXPORT
#define WEFT_PRINTF(f, a)
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* weft's own objects: opaque, created by _new or by the loop, freed by _free or unref. */
struct weft_loop;
struct weft_handle;
struct weft_transport;
struct weft_protocol;
struct weft_server;
struct weft_connect;
struct weft_future;
struct weft_task;
struct weft_reader;
struct weft_writer;

/* libevent's, for the few functions that hand them out or take them. */
struct evbuffer;
struct event_base;

/* A plain callback: runs on the loop's thread with the argument it was scheduled with. */
typedef void weft_callback_cb(void *arg);

#ifdef __cplusplus
}
#endif
#endif
