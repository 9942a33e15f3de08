/* SPDX-License-Identifier: MIT */
/* internal.h: helpers and cross-file internals of libweft (weft__ names); not installed. */
#ifndef WEFT_INTERNAL_H
#define WEFT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <weft/weft.h>

#define container_of(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct evdns_base;

/*
 * Per-loop state owned by other files (tasks, executor, TLS...), kept in
 * slots so loop.c need not know their types. The destructor runs in
 * weft_loop_free(), in reverse slot order, before the event_base is freed.
 */
enum weft__loop_slot {
    WEFT__SLOT_TASKS,       /* task.c: current task, all tasks, stack pool */
    WEFT__SLOT_EXECUTOR,    /* executor.c: the thread pool */
    WEFT__SLOT_TLS,         /* tls.c */
    WEFT__SLOT_STREAMS,     /* stream.c */
    WEFT__SLOT_FDWATCH,     /* core/fdwatch.c: readers and writers */
    WEFT__SLOT_FDWAIT,      /* coro/fdwait.c: tasks in weft_wait_readable/writable */
    WEFT__SLOT_USER1,       /* spare */
    WEFT__SLOT_COUNT
};

/* The slot's pointer, or NULL if unset. */
void *weft__loop_get_slot(const struct weft_loop *loop, enum weft__loop_slot slot);

/* Set a slot (replacing without destroying the old value). */
void weft__loop_set_slot(struct weft_loop *loop, enum weft__loop_slot slot, void *p,
                         void (*destroy)(void *p));

/*
 * A call_soon that cannot fail: node lives in the caller's object (one per
 * call in flight). It takes a handle as weft_call_soon() does; when none can
 * be allocated, node itself is queued and run in the next drain. For work
 * whose loss would hang someone (a future's done callbacks). The call cannot
 * be cancelled; keep the object alive until cb has run.
 */
struct weft__soon {
    struct weft__soon *next;
    weft_callback_cb *cb;
    void *arg;
};
void weft__call_soon_nofail(struct weft_loop *loop, struct weft__soon *node,
                            weft_callback_cb *cb, void *arg);

/*
 * Hold back libevent's warnings on this thread while on is set (calls nest):
 * for a caller that tries an operation libevent warns about when it fails
 * (event_add of an fd epoll refuses) and reports the failure itself.
 */
void weft__libevent_quiet(bool on);

/* The loop's evdns base, created on first use (nameservers from /etc/resolv.conf,
 * /etc/hosts, or weft_loop_set_resolver's); NULL with errno set on failure.
 * Freed with the loop. */
struct evdns_base *weft__loop_dns(struct weft_loop *loop);

/*
 * True for names under ".invalid", which RFC 6761 (6.4) says resolvers should
 * answer negatively at once: no query leaves the machine for them.
 * (core/resolver.c)
 */
bool weft__host_is_invalid(const char *host);

/* The loop's hosts file: weft_loop_set_resolver's, or /etc/hosts. */
const char *weft__loop_hosts_path(const struct weft_loop *loop);

/* A lookup was cancelled while evdns holds it (+1), or evdns let go (-1):
 * weft_loop_free lets such callbacks run before freeing the base. */
void weft__loop_dns_abandoned(struct weft_loop *loop, int delta);

/* weft_resolver_options.timeout_ms of the loop (0: none). */
uint64_t weft__loop_dns_timeout(const struct weft_loop *loop);

/* An address and its length, as connect() takes them. */
struct weft__addr {
    struct sockaddr_storage ss;
    socklen_t len;
};

/*
 * A listener's addresses without the network, for weft_create_server: NULL
 * (0.0.0.0 and ::), a numeric address, or the names in the loop's hosts file
 * (read here: no query, no evdns). Returns the count (> 0) and *out (free()),
 * or -WEFT_ENONAME (.invalid), -EWOULDBLOCK (not in the hosts file: only DNS
 * could answer), -ENOMEM. (core/resolver.c)
 */
int weft__resolve_local(struct weft_loop *loop, const char *host, uint16_t port,
                        struct weft__addr **out);

/* A literal IPv4 or IPv6 address ("[::1]" too): true and *a set with port;
 * false for anything that needs a resolver. (connect.c) */
bool weft__addr_numeric(const char *host, uint16_t port, struct weft__addr *a);

/* An evdns EVUTIL_EAI_* result as a negative weft code: -WEFT_ENONAME for a
 * name that does not exist, -ENOMEM, else -WEFT_ERESOLVE. (core/resolver.c) */
int weft__eai_error(int result);

#endif
