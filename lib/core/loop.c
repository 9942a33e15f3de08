/* SPDX-License-Identifier: MIT */
/* loop.c: the event loop: ready queue, timer heap, threadsafe wake-ups, signals, errors. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include "core/internal.h"
#include "core/loop-int.h"
#include <weft/resolver.h>

/*
 * How it fits together (docs/design-loop.md has the long version):
 *
 * - Every scheduled call is a struct weft_handle. call_soon puts it on the
 *   ready queue; call_later/call_at put it on our own binary min-heap keyed
 *   by (when_ms, seq); one libevent timer is armed for the heap's root, and
 *   when it fires every due handle moves, in order, to the ready queue.
 * - One libevent event (ready_ev) drains the ready queue. It takes only the
 *   handles present when it starts (the batch); what they schedule waits for
 *   the next iteration, as in asyncio, so a callback that reschedules itself
 *   cannot starve I/O.
 * - Other threads append to a mutex-protected list and write an eventfd;
 *   the loop splices that list into the ready queue without allocating.
 */

enum handle_state {
    HANDLE_FREE,        /* in the cache, or not yet handed out */
    HANDLE_READY,       /* on the ready queue or in the running batch */
    HANDLE_TIMER,       /* in the timer heap */
    HANDLE_RUNNING,     /* its callback is running; cancel is a no-op */
};

struct link {
    struct link *next, *prev;
};

struct weft_handle {
    struct link link;           /* ready queue, batch, cache or threadsafe list */
    weft_callback_cb *cb;
    void *arg;
    uint64_t when_ms;           /* timers: the deadline */
    uint64_t seq;               /* timers: ties on when_ms run in scheduling order */
    size_t heap_index;          /* timers: position in loop->heap */
    struct weft_loop *loop;
    int state;
};

struct loop_signal {
    struct weft_loop *loop;
    struct event *ev;
    weft_signal_cb *cb;
    void *arg;
    int signum;
};

struct weft_loop {
    struct event_base *base;
    struct event *ready_ev;         /* drains the ready queue */
    struct event *timer_ev;         /* armed for the heap's root */
    struct event *wake_ev;          /* eventfd: threadsafe calls and stops */
    int wake_fd;

    struct link ready;              /* scheduled, runs in the next drain */
    struct link batch;              /* being run by the current drain */
    bool ready_armed;               /* ready_ev is active or pending */
    bool draining;
    bool stop_after_batch;          /* a stop from another thread, queued behind its calls */

    struct weft_handle **heap;
    size_t heap_len, heap_cap;
    uint64_t seq;
    uint64_t armed_when;            /* timer_ev's deadline, UINT64_MAX if unarmed */

    struct link cache;              /* recycled handles (call_soon costs no malloc) */
    size_t cache_len;
    struct weft__soon *nofail, **nofail_tail;   /* weft__call_soon_nofail without a handle */

    pthread_mutex_t ts_mu;          /* guards the four fields below */
    struct link ts_queue;
    bool ts_stop;
    pthread_t thread;               /* the thread that runs (or last ran) the loop */

    bool running;                   /* inside weft_loop_run() */
    bool in_dispatch;               /* inside run() or run_once() */
    bool stop_pending;              /* stop() before run(): run one iteration */

    weft_error_handler_cb *err_cb;
    void *err_arg;

    struct loop_signal *signals[NSIG];

    void *slots[WEFT__SLOT_COUNT];
    void (*slot_destroy[WEFT__SLOT_COUNT])(void *p);

    struct evdns_base *dns;
    char *dns_conf;                 /* weft_loop_set_resolver(): resolv.conf, or NULL */
    char *dns_hosts;                /* and the hosts file, or NULL */
    char *dns_server;               /* and the one nameserver, or NULL */
    uint64_t dns_timeout_ms;        /* and the lookup timeout, 0: none of ours */
    size_t dns_abandoned;           /* lookups cancelled, evdns not yet let go of */
};

/*
 * The cache keeps a few hundred handles; past that they go back to malloc so
 * a burst of 100k timers does not pin memory. Under the sanitizers the cache
 * is off, so a handle used after it ran or was cancelled is a reported
 * use-after-free instead of a silent reuse.
 */
#ifdef WEFT_SANITIZE
#define HANDLE_CACHE_MAX 0
#else
#define HANDLE_CACHE_MAX 512
#endif

#define HEAP_MIN_CAP 64
#define MAX_ARM_MS (3600u * 1000u)  /* re-arm at least hourly: no timeval overflow */

/* Doubly linked circular lists with a sentinel: unlink needs no list head. */

static void
list_init(struct link *l)
{
    l->next = l->prev = l;
}

static bool
list_empty(const struct link *l)
{
    return l->next == l;
}

static void
list_append(struct link *l, struct link *n)
{
    n->prev = l->prev;
    n->next = l;
    l->prev->next = n;
    l->prev = n;
}

static void
list_unlink(struct link *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->next = n->prev = n;
}

/* Move every node of from to the end of to; from becomes empty. */
static void
list_splice(struct link *to, struct link *from)
{
    if (list_empty(from))
        return;
    from->next->prev = to->prev;
    to->prev->next = from->next;
    from->prev->next = to;
    to->prev = from->prev;
    list_init(from);
}

static uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t
weft_loop_time(const struct weft_loop *loop)
{
    (void)loop;
    return now_ns() / 1000000u;
}

uint64_t
weft_loop_time_ns(const struct weft_loop *loop)
{
    (void)loop;
    return now_ns();
}

/* Handles */

static struct weft_handle *
handle_get(struct weft_loop *loop)
{
    struct weft_handle *h;

    if (!list_empty(&loop->cache)) {
        h = container_of(loop->cache.next, struct weft_handle, link);
        list_unlink(&h->link);
        loop->cache_len--;
        return h;
    }
    h = malloc(sizeof(*h));
    if (h == NULL)
        return NULL;
    list_init(&h->link);
    h->loop = loop;
    return h;
}

static void
handle_put(struct weft_loop *loop, struct weft_handle *h)
{
    h->state = HANDLE_FREE;
    h->cb = NULL;
    h->arg = NULL;
    if (loop->cache_len + 1 > HANDLE_CACHE_MAX) {
        free(h);
        return;
    }
    list_append(&loop->cache, &h->link);
    loop->cache_len++;
}

static void stop_here(struct weft_loop *loop);

/* The ready queue */

static void
ready_arm(struct weft_loop *loop)
{
    static const struct timeval zero = { 0, 0 };

    if (loop->ready_armed)
        return;
    loop->ready_armed = true;
    /*
     * Inside a drain, event_active() would make libevent run ready_ev again
     * in this same pass over its active queue, before polling for I/O. A zero
     * timeout makes it fire in the next iteration, after the poll.
     */
    if (!loop->draining || event_add(loop->ready_ev, &zero) < 0)
        event_active(loop->ready_ev, EV_TIMEOUT, 0);     /* the fallback still runs them */
}

static void
ready_push(struct weft_loop *loop, struct weft_handle *h)
{
    h->state = HANDLE_READY;
    list_append(&loop->ready, &h->link);
    ready_arm(loop);
}

static void
ready_drain(evutil_socket_t fd, short what, void *arg)
{
    struct weft_loop *loop = arg;
    struct weft_handle *h;

    (void)fd;
    (void)what;
    loop->ready_armed = false;
    list_splice(&loop->batch, &loop->ready);
    loop->draining = true;
    while (!list_empty(&loop->batch)) {
        h = container_of(loop->batch.next, struct weft_handle, link);
        list_unlink(&h->link);
        h->state = HANDLE_RUNNING;
        h->cb(h->arg);
        handle_put(loop, h);
    }
    /* Calls that found no memory for a handle: theirs, queued, run now. */
    while (loop->nofail != NULL) {
        struct weft__soon *n = loop->nofail;

        loop->nofail = n->next;
        if (loop->nofail == NULL)
            loop->nofail_tail = &loop->nofail;
        n->next = NULL;
        n->cb(n->arg);
    }
    loop->draining = false;
    if (loop->stop_after_batch) {
        loop->stop_after_batch = false;
        stop_here(loop);
    }
}

struct weft_handle *
weft_call_soon(struct weft_loop *loop, weft_callback_cb *cb, void *arg)
{
    struct weft_handle *h;

    if (unlikely(loop == NULL || cb == NULL)) {
        errno = EINVAL;
        return NULL;
    }
    h = handle_get(loop);
    if (unlikely(h == NULL)) {
        errno = ENOMEM;
        return NULL;
    }
    h->cb = cb;
    h->arg = arg;
    ready_push(loop, h);
    return h;
}

void
weft__call_soon_nofail(struct weft_loop *loop, struct weft__soon *node, weft_callback_cb *cb,
                       void *arg)
{
    if (weft_call_soon(loop, cb, arg) != NULL)
        return;
    node->next = NULL;
    node->cb = cb;
    node->arg = arg;
    *loop->nofail_tail = node;
    loop->nofail_tail = &node->next;
    ready_arm(loop);
}

/* The timer heap: a binary min-heap on (when_ms, seq), each handle knowing its index. */

static bool
heap_less(const struct weft_handle *a, const struct weft_handle *b)
{
    return a->when_ms < b->when_ms || (a->when_ms == b->when_ms && a->seq < b->seq);
}

static void
heap_set(struct weft_loop *loop, size_t i, struct weft_handle *h)
{
    loop->heap[i] = h;
    h->heap_index = i;
}

static void
heap_sift_up(struct weft_loop *loop, size_t i)
{
    struct weft_handle *h = loop->heap[i];

    while (i > 0) {
        size_t parent = (i - 1) / 2;

        if (!heap_less(h, loop->heap[parent]))
            break;
        heap_set(loop, i, loop->heap[parent]);
        i = parent;
    }
    heap_set(loop, i, h);
}

static void
heap_sift_down(struct weft_loop *loop, size_t i)
{
    struct weft_handle *h = loop->heap[i];
    size_t n = loop->heap_len;

    for (;;) {
        size_t child = 2 * i + 1;

        if (child >= n)
            break;
        if (child + 1 < n && heap_less(loop->heap[child + 1], loop->heap[child]))
            child++;
        if (!heap_less(loop->heap[child], h))
            break;
        heap_set(loop, i, loop->heap[child]);
        i = child;
    }
    heap_set(loop, i, h);
}

static int
heap_reserve(struct weft_loop *loop)
{
    struct weft_handle **heap;
    size_t cap;

    if (loop->heap_len < loop->heap_cap)
        return 0;
    cap = loop->heap_cap ? loop->heap_cap * 2 : HEAP_MIN_CAP;
    heap = realloc(loop->heap, cap * sizeof(*heap));
    if (heap == NULL)
        return -ENOMEM;
    loop->heap = heap;
    loop->heap_cap = cap;
    return 0;
}

/* Give memory back after a burst; never fails (a failed shrink keeps the old array). */
static void
heap_maybe_shrink(struct weft_loop *loop)
{
    struct weft_handle **heap;
    size_t cap = loop->heap_cap / 2;

    if (cap < HEAP_MIN_CAP || loop->heap_len > cap / 2)
        return;
    heap = realloc(loop->heap, cap * sizeof(*heap));
    if (heap != NULL) {
        loop->heap = heap;
        loop->heap_cap = cap;
    }
}

static void
heap_remove(struct weft_loop *loop, struct weft_handle *h)
{
    size_t i = h->heap_index;
    struct weft_handle *last = loop->heap[--loop->heap_len];

    if (i != loop->heap_len) {
        heap_set(loop, i, last);
        if (i > 0 && heap_less(last, loop->heap[(i - 1) / 2]))
            heap_sift_up(loop, i);
        else
            heap_sift_down(loop, i);
    }
    heap_maybe_shrink(loop);
}

/*
 * Arm timer_ev for the heap's root unless it is already armed for that time
 * or earlier. A cancelled root leaves the timer early: it then fires, finds
 * nothing due and re-arms, which is cheaper than re-arming on every cancel.
 */
static void
timer_arm(struct weft_loop *loop)
{
    struct timeval tv;
    uint64_t when, now, delay_us;

    if (loop->heap_len == 0) {
        if (loop->armed_when != UINT64_MAX) {
            event_del(loop->timer_ev);
            loop->armed_when = UINT64_MAX;
        }
        return;
    }
    when = loop->heap[0]->when_ms;
    if (when >= loop->armed_when)
        return;
    now = now_ns();
    if (when > (UINT64_MAX / 1000000u))
        delay_us = (uint64_t)MAX_ARM_MS * 1000u;
    else if (when * 1000000u <= now)
        delay_us = 0;
    else
        delay_us = (when * 1000000u - now + 999u) / 1000u;
    if (delay_us > (uint64_t)MAX_ARM_MS * 1000u)
        delay_us = (uint64_t)MAX_ARM_MS * 1000u;
    tv.tv_sec = (time_t)(delay_us / 1000000u);
    tv.tv_usec = (suseconds_t)(delay_us % 1000000u);
    /* libevent adds tv to its cached time, stale inside callbacks: refresh it
     * or the timer fires early and needs a second wake-up. */
    event_base_update_cache_time(loop->base);
    if (event_add(loop->timer_ev, &tv) == 0)
        loop->armed_when = when;
}

static void
timer_fire(evutil_socket_t fd, short what, void *arg)
{
    struct weft_loop *loop = arg;
    uint64_t now = weft_loop_time(loop);

    (void)fd;
    (void)what;
    loop->armed_when = UINT64_MAX;
    while (loop->heap_len > 0 && loop->heap[0]->when_ms <= now) {
        struct weft_handle *h = loop->heap[0];

        heap_remove(loop, h);
        ready_push(loop, h);
    }
    timer_arm(loop);
}

struct weft_handle *
weft_call_at(struct weft_loop *loop, uint64_t when_ms, weft_callback_cb *cb, void *arg)
{
    struct weft_handle *h;

    if (unlikely(loop == NULL || cb == NULL)) {
        errno = EINVAL;
        return NULL;
    }
    h = handle_get(loop);
    if (h == NULL || heap_reserve(loop) < 0) {
        if (h != NULL)
            handle_put(loop, h);
        errno = ENOMEM;
        return NULL;
    }
    h->cb = cb;
    h->arg = arg;
    h->when_ms = when_ms;
    h->seq = loop->seq++;
    h->state = HANDLE_TIMER;
    h->heap_index = loop->heap_len++;
    loop->heap[h->heap_index] = h;
    heap_sift_up(loop, h->heap_index);
    if (h->heap_index == 0)
        timer_arm(loop);
    return h;
}

struct weft_handle *
weft_call_later(struct weft_loop *loop, uint64_t delay_ms, weft_callback_cb *cb, void *arg)
{
    uint64_t now = weft_loop_time(loop);
    uint64_t when = delay_ms > UINT64_MAX - now ? UINT64_MAX : now + delay_ms;

    return weft_call_at(loop, when, cb, arg);
}

void
weft_handle_cancel(struct weft_handle *h)
{
    struct weft_loop *loop;

    if (h == NULL)
        return;
    loop = h->loop;
    switch (h->state) {
    case HANDLE_READY:
        list_unlink(&h->link);
        handle_put(loop, h);
        break;
    case HANDLE_TIMER:
        heap_remove(loop, h);
        handle_put(loop, h);
        if (loop->heap_len == 0)
            timer_arm(loop);        /* disarms */
        break;
    default:
        break;                      /* running or already done: nothing to do */
    }
}

/* Other threads: a locked list and an eventfd */

static void
wake(struct weft_loop *loop)
{
    uint64_t one = 1;

    /* EAGAIN means the counter is already non-zero: the loop will wake anyway. */
    while (write(loop->wake_fd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
}

static void
stop_here(struct weft_loop *loop)
{
    if (loop->running)
        event_base_loopbreak(loop->base);
    else
        loop->stop_pending = true;
}

static void
wake_cb(evutil_socket_t fd, short what, void *arg)
{
    struct weft_loop *loop = arg;
    struct link q;
    uint64_t n;
    bool stop;

    (void)fd;
    (void)what;
    /* Read first: a call queued after the read writes the eventfd again. */
    while (read(loop->wake_fd, &n, sizeof(n)) < 0 && errno == EINTR)
        ;
    list_init(&q);
    pthread_mutex_lock(&loop->ts_mu);
    list_splice(&q, &loop->ts_queue);
    stop = loop->ts_stop;
    loop->ts_stop = false;
    pthread_mutex_unlock(&loop->ts_mu);
    while (!list_empty(&q)) {
        struct weft_handle *h = container_of(q.next, struct weft_handle, link);

        list_unlink(&h->link);
        ready_push(loop, h);
    }
    /* Calls posted before the stop run first, as they would in asyncio. */
    if (stop && list_empty(&loop->ready))
        stop_here(loop);
    else if (stop)
        loop->stop_after_batch = true;
}

int
weft_call_soon_threadsafe(struct weft_loop *loop, weft_callback_cb *cb, void *arg)
{
    struct weft_handle *h;
    bool was_empty;

    if (loop == NULL || cb == NULL)
        return -EINVAL;
    /* Plain malloc: the cache belongs to the loop's thread. */
    h = malloc(sizeof(*h));
    if (h == NULL)
        return -ENOMEM;
    h->cb = cb;
    h->arg = arg;
    h->loop = loop;
    h->state = HANDLE_FREE;
    pthread_mutex_lock(&loop->ts_mu);
    was_empty = list_empty(&loop->ts_queue) && !loop->ts_stop;
    list_append(&loop->ts_queue, &h->link);
    pthread_mutex_unlock(&loop->ts_mu);
    if (was_empty)
        wake(loop);
    return 0;
}

void
weft_loop_stop(struct weft_loop *loop)
{
    bool here, was_empty = false;

    if (loop == NULL)
        return;
    pthread_mutex_lock(&loop->ts_mu);
    here = pthread_equal(loop->thread, pthread_self());
    if (!here) {
        was_empty = list_empty(&loop->ts_queue) && !loop->ts_stop;
        loop->ts_stop = true;
    }
    pthread_mutex_unlock(&loop->ts_mu);
    if (here)
        stop_here(loop);
    else if (was_empty)
        wake(loop);
}

/* Running */

static void
set_thread(struct weft_loop *loop)
{
    pthread_mutex_lock(&loop->ts_mu);
    loop->thread = pthread_self();
    pthread_mutex_unlock(&loop->ts_mu);
}

int
weft_loop_run(struct weft_loop *loop)
{
    int rc;

    if (loop->in_dispatch)
        return -EBUSY;
    set_thread(loop);
    loop->in_dispatch = true;
    loop->running = true;
    if (loop->stop_pending) {
        /* asyncio: stop() before run_forever() runs one iteration, then returns */
        loop->stop_pending = false;
        rc = event_base_loop(loop->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    } else {
        rc = event_base_loop(loop->base, EVLOOP_NO_EXIT_ON_EMPTY);
    }
    loop->running = false;
    loop->in_dispatch = false;
    return rc < 0 ? -EIO : 0;
}

int
weft_loop_run_once(struct weft_loop *loop)
{
    int rc;

    if (loop->in_dispatch)
        return -EBUSY;
    set_thread(loop);
    loop->in_dispatch = true;
    rc = event_base_loop(loop->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    loop->in_dispatch = false;
    return rc < 0 ? -EIO : 0;
}

bool
weft_loop_is_running(const struct weft_loop *loop)
{
    return loop != NULL && loop->running;
}

struct event_base *
weft_loop_get_base(struct weft_loop *loop)
{
    return loop->base;
}

/* Signals */

static void
signal_fire(evutil_socket_t fd, short what, void *arg)
{
    struct loop_signal *s = arg;

    (void)what;
    /* s may be freed by the callback (remove_signal_handler): touch it no more */
    s->cb(s->loop, (int)fd, s->arg);
}

int
weft_loop_add_signal_handler(struct weft_loop *loop, int signum, weft_signal_cb *cb, void *arg)
{
    struct loop_signal *s;

    if (signum <= 0 || signum >= NSIG || signum == SIGKILL || signum == SIGSTOP || cb == NULL)
        return -EINVAL;
    s = loop->signals[signum];
    if (s != NULL) {
        s->cb = cb;
        s->arg = arg;
        return 0;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -ENOMEM;
    s->loop = loop;
    s->cb = cb;
    s->arg = arg;
    s->signum = signum;
    s->ev = evsignal_new(loop->base, signum, signal_fire, s);
    if (s->ev == NULL) {
        free(s);
        return -ENOMEM;
    }
    if (event_add(s->ev, NULL) < 0) {
        /* sigaction refused it (glibc keeps 32 and 33 for itself) */
        event_free(s->ev);
        free(s);
        return -EINVAL;
    }
    loop->signals[signum] = s;
    return 0;
}

int
weft_loop_remove_signal_handler(struct weft_loop *loop, int signum)
{
    struct loop_signal *s;

    if (signum <= 0 || signum >= NSIG || loop->signals[signum] == NULL)
        return 0;
    s = loop->signals[signum];
    loop->signals[signum] = NULL;
    event_free(s->ev);      /* the last event for signum: libevent restores the old action */
    free(s);
    return 1;
}

/* Errors nobody handled */

void
weft_loop_default_error_handler(struct weft_loop *loop, const struct weft_error_context *ctx)
{
    const char *p, *message;

    (void)loop;
    if (ctx == NULL)
        return;
    message = ctx->message ? ctx->message : "unhandled error";
    p = ctx->peer;
    if (ctx->error != 0)
        weft_log(WEFT_LOG_ERR, "%s: %s (%s)%s%s", message, weft_err_name(ctx->error),
                 weft_strerror(ctx->error), p ? ", peer " : "", p ? p : "");
    else
        weft_log(WEFT_LOG_ERR, "%s%s%s", message, p ? ", peer " : "", p ? p : "");
}

void
weft_loop_set_error_handler(struct weft_loop *loop, weft_error_handler_cb *cb, void *arg)
{
    loop->err_cb = cb;
    loop->err_arg = cb ? arg : NULL;
}

void
weft_loop_call_error_handler(struct weft_loop *loop, const struct weft_error_context *ctx)
{
    if (loop->err_cb != NULL)
        loop->err_cb(loop, ctx, loop->err_arg);
    else
        weft_loop_default_error_handler(loop, ctx);
}

/* Slots and DNS */

void *
weft__loop_get_slot(const struct weft_loop *loop, enum weft__loop_slot slot)
{
    if ((unsigned)slot >= WEFT__SLOT_COUNT)
        return NULL;
    return loop->slots[slot];
}

void
weft__loop_set_slot(struct weft_loop *loop, enum weft__loop_slot slot, void *p,
                    void (*destroy)(void *p))
{
    if ((unsigned)slot >= WEFT__SLOT_COUNT)
        return;
    loop->slots[slot] = p;
    loop->slot_destroy[slot] = destroy;
}

static const char *resolv_conf_path = "/etc/resolv.conf";

void
weft__loop_set_resolv_conf(const char *path)
{
    resolv_conf_path = path ? path : "/etc/resolv.conf";
}

/*
 * What EVDNS_BASE_INITIALIZE_NAMESERVERS does, by hand: libevent 2.1.12's
 * evdns_base_new() fails outright when resolv.conf lists no nameserver (a
 * container without network), and then not even "localhost" resolves. Parsed
 * here, /etc/hosts is loaded first whatever happens to resolv.conf, so such a
 * base still answers numeric hosts and /etc/hosts names; other names fail per
 * request. NO_DEFAULT: no made-up 127.0.0.1 nameserver either. With a
 * nameserver of weft_loop_set_resolver(), resolv.conf gives only its options
 * (timeout, attempts, ndots): no search domains, so one name is one query.
 */
struct evdns_base *
weft__loop_dns(struct weft_loop *loop)
{
    const char *conf = loop->dns_conf != NULL ? loop->dns_conf : resolv_conf_path;
    int flags = DNS_OPTIONS_ALL | DNS_OPTION_NAMESERVERS_NO_DEFAULT;
    struct evdns_base *dns;
    int rc;

    if (loop->dns != NULL)
        return loop->dns;
    dns = evdns_base_new(loop->base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (dns == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    if (loop->dns_server != NULL)
        flags = DNS_OPTION_MISC | DNS_OPTION_HOSTSFILE | DNS_OPTION_NAMESERVERS_NO_DEFAULT;
    if (loop->dns_hosts != NULL)
        flags &= ~DNS_OPTION_HOSTSFILE;
    rc = evdns_base_resolv_conf_parse(dns, flags, conf);
    if (rc == 4 || (loop->dns_server != NULL &&
                    evdns_base_nameserver_ip_add(dns, loop->dns_server) != 0) ||
        (loop->dns_hosts != NULL && evdns_base_load_hosts(dns, loop->dns_hosts) != 0 &&
         errno == ENOMEM)) {
        evdns_base_free(dns, 0);    /* out of memory (the address was checked before) */
        errno = ENOMEM;
        return NULL;
    }
    if (evdns_base_count_nameservers(dns) == 0)
        weft_log(WEFT_LOG_WARNING, "dns: no nameserver in %s: only numeric hosts and "
                 "/etc/hosts names resolve", conf);
    loop->dns = dns;
    return dns;
}

const char *
weft__loop_hosts_path(const struct weft_loop *loop)
{
    return loop->dns_hosts != NULL ? loop->dns_hosts : "/etc/hosts";
}

void
weft__loop_dns_abandoned(struct weft_loop *loop, int delta)
{
    loop->dns_abandoned = (size_t)((ptrdiff_t)loop->dns_abandoned + delta);
}

uint64_t
weft__loop_dns_timeout(const struct weft_loop *loop)
{
    return loop->dns_timeout_ms;
}

int
weft_loop_set_resolver(struct weft_loop *loop, const struct weft_resolver_options *opts)
{
    char *conf = NULL, *server = NULL, *hosts = NULL;

    if (loop == NULL)
        return -EINVAL;
    if (loop->dns != NULL)
        return -EBUSY;
    if (opts != NULL && opts->nameserver != NULL) {
        struct sockaddr_storage ss;
        int len = (int)sizeof(ss);

        /* what evdns_base_nameserver_ip_add() will parse */
        if (evutil_parse_sockaddr_port(opts->nameserver, (struct sockaddr *)&ss, &len) < 0)
            return -EINVAL;
        server = strdup(opts->nameserver);
        if (server == NULL)
            return -ENOMEM;
    }
    if ((opts != NULL && opts->resolv_conf != NULL &&
         (conf = strdup(opts->resolv_conf)) == NULL) ||
        (opts != NULL && opts->hosts != NULL && (hosts = strdup(opts->hosts)) == NULL)) {
        free(server);
        free(conf);
        return -ENOMEM;
    }
    free(loop->dns_conf);
    free(loop->dns_hosts);
    free(loop->dns_server);
    loop->dns_conf = conf;
    loop->dns_hosts = hosts;
    loop->dns_server = server;
    loop->dns_timeout_ms = opts != NULL ? opts->timeout_ms : 0;
    return 0;
}

/* Creation and teardown */

/* weft__libevent_quiet() nesting on this thread. */
static __thread unsigned libevent_quiet;

void
weft__libevent_quiet(bool on)
{
    if (on)
        libevent_quiet++;
    else if (libevent_quiet > 0)
        libevent_quiet--;
}

/* libevent's own warnings would go to stderr: route them into weft_log. */
static void
libevent_log(int severity, const char *msg)
{
    int level;

    if (libevent_quiet > 0 && severity == EVENT_LOG_WARN)
        return;                         /* the caller reports the failure */

    switch (severity) {
    case EVENT_LOG_DEBUG: level = WEFT_LOG_DEBUG; break;
    case EVENT_LOG_MSG:   level = WEFT_LOG_INFO; break;
    case EVENT_LOG_WARN:  level = WEFT_LOG_WARNING; break;
    default:              level = WEFT_LOG_ERR; break;
    }
    weft_log(level, "libevent: %s", msg);
}

static void
libevent_log_init(void)
{
    event_set_log_callback(libevent_log);
}

struct weft_loop *
weft_loop_new(void)
{
    static pthread_once_t log_once = PTHREAD_ONCE_INIT;
    struct weft_loop *loop;
    int err;

    pthread_once(&log_once, libevent_log_init);
    loop = calloc(1, sizeof(*loop));
    if (loop == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    loop->wake_fd = -1;
    list_init(&loop->ready);
    loop->nofail_tail = &loop->nofail;
    list_init(&loop->batch);
    list_init(&loop->cache);
    list_init(&loop->ts_queue);
    loop->armed_when = UINT64_MAX;
    loop->thread = pthread_self();
    err = pthread_mutex_init(&loop->ts_mu, NULL);
    if (err != 0) {
        free(loop);
        errno = err;
        return NULL;
    }
    errno = 0;
    loop->base = event_base_new();
    if (loop->base == NULL) {
        err = errno ? errno : ENOMEM;      /* EMFILE from epoll_create, usually */
        goto fail;
    }
    loop->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->wake_fd < 0) {
        err = errno;
        goto fail;
    }
    err = ENOMEM;
    loop->ready_ev = event_new(loop->base, -1, 0, ready_drain, loop);
    loop->timer_ev = event_new(loop->base, -1, 0, timer_fire, loop);
    loop->wake_ev = event_new(loop->base, loop->wake_fd, EV_READ | EV_PERSIST, wake_cb, loop);
    if (loop->ready_ev == NULL || loop->timer_ev == NULL || loop->wake_ev == NULL)
        goto fail;
    if (event_add(loop->wake_ev, NULL) < 0)
        goto fail;
    return loop;
fail:
    if (loop->wake_ev)
        event_free(loop->wake_ev);
    if (loop->timer_ev)
        event_free(loop->timer_ev);
    if (loop->ready_ev)
        event_free(loop->ready_ev);
    if (loop->wake_fd >= 0)
        close(loop->wake_fd);
    if (loop->base)
        event_base_free(loop->base);
    pthread_mutex_destroy(&loop->ts_mu);
    free(loop);
    errno = err;
    return NULL;
}

static void
free_list(struct link *l)
{
    while (!list_empty(l)) {
        struct weft_handle *h = container_of(l->next, struct weft_handle, link);

        list_unlink(&h->link);
        free(h);
    }
}

void
weft_loop_free(struct weft_loop *loop)
{
    if (loop == NULL)
        return;
    /*
     * Slot owners go first, while every handle is still valid: a destructor
     * may cancel its timers or schedule calls; none of them will run.
     */
    for (int i = WEFT__SLOT_COUNT - 1; i >= 0; i--) {
        void (*destroy)(void *p) = loop->slot_destroy[i];
        void *p = loop->slots[i];

        loop->slots[i] = NULL;
        loop->slot_destroy[i] = NULL;
        if (destroy != NULL && p != NULL)
            destroy(p);
    }
    if (loop->dns != NULL && loop->dns_abandoned > 0) {
        /*
         * A cancelled evdns query is let go of (and its lookup freed) by a
         * deferred callback: run libevent a little for those alone, with the
         * loop's own events out of the way so no handle of ours is called.
         */
        event_del(loop->ready_ev);
        event_del(loop->timer_ev);
        event_del(loop->wake_ev);
        for (int i = 0; i < 8 && loop->dns_abandoned > 0; i++)
            event_base_loop(loop->base, EVLOOP_NONBLOCK | EVLOOP_ONCE);
    }
    if (loop->dns != NULL) {
        evdns_base_free(loop->dns, 1);
        loop->dns = NULL;
    }
    free(loop->dns_conf);
    free(loop->dns_hosts);
    free(loop->dns_server);
    for (int i = 1; i < NSIG; i++)
        weft_loop_remove_signal_handler(loop, i);
    free_list(&loop->ready);
    free_list(&loop->batch);
    free_list(&loop->ts_queue);
    free_list(&loop->cache);
    for (size_t i = 0; i < loop->heap_len; i++)
        free(loop->heap[i]);
    free(loop->heap);
    event_free(loop->wake_ev);
    event_free(loop->timer_ev);
    event_free(loop->ready_ev);
    event_base_free(loop->base);
    close(loop->wake_fd);
    pthread_mutex_destroy(&loop->ts_mu);
    free(loop);
}
