/* SPDX-License-Identifier: MIT */
/* resolver.c: getaddrinfo / getnameinfo on the loop's evdns base, with callbacks. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <event2/dns.h>
#include <event2/util.h>

#include "core/internal.h"
#include <weft/resolver.h>

/*
 * A lookup lives until its callback has run (or it was cancelled) and evdns
 * has let go of it: evdns_getaddrinfo_cancel() and evdns_cancel_request()
 * still call back later (EVUTIL_EAI_CANCEL, DNS_ERR_CANCEL), and a reverse
 * answer already scheduled is delivered whatever cancel says, so the struct
 * waits for that call (evdns_pending). Answers evdns has at once (numeric
 * hosts, /etc/hosts) come back inside evdns_getaddrinfo(); they are kept and
 * handed over from the loop, so a callback never runs inside the call that
 * started it.
 */
struct weft_lookup {
    struct weft_loop *loop;
    weft_addrinfo_cb *acb;
    weft_nameinfo_cb *ncb;
    void *arg;
    struct evdns_getaddrinfo_request *gai;
    struct evdns_request *rev;
    struct weft_handle *timer;      /* the resolver's timeout_ms */
    struct weft_handle *defer;      /* an outcome known before the loop ran */
    struct addrinfo *res;           /* getaddrinfo: the answer kept for defer */
    int error;
    int flags;                      /* getnameinfo: NI_* */
    bool in_start;                  /* inside weft_get*info_cb() */
    bool evdns_pending;             /* evdns still holds a pointer to us */
    bool done;                      /* callback ran or lookup cancelled */
    struct sockaddr_storage sa;     /* getnameinfo: the address */
    socklen_t salen;
    char serv[NI_MAXSERV];
    char host[NI_MAXHOST];
};

void
weft_freeaddrinfo(struct addrinfo *res)
{
    if (res != NULL)
        evutil_freeaddrinfo(res);
}

static void
maybe_free(struct weft_lookup *l)
{
    if (!l->done || l->evdns_pending)
        return;
    weft_freeaddrinfo(l->res);
    free(l);
}

static void
stop_timers(struct weft_lookup *l)
{
    if (l->timer != NULL) {
        weft_handle_cancel(l->timer);
        l->timer = NULL;
    }
    if (l->defer != NULL) {
        weft_handle_cancel(l->defer);
        l->defer = NULL;
    }
}

/* Let go of the evdns query, if any: its callback comes later and frees l. */
static void
stop_query(struct weft_lookup *l)
{
    weft__loop_dns_abandoned(l->loop, +1);     /* before: cancel may call back at once */
    if (l->gai != NULL) {
        struct evdns_getaddrinfo_request *req = l->gai;

        l->gai = NULL;
        evdns_getaddrinfo_cancel(req);  /* may call back at once: l is touched no more */
    } else if (l->rev != NULL) {
        struct evdns_request *req = l->rev;

        l->rev = NULL;
        evdns_cancel_request(weft__loop_dns(l->loop), req);
    }
}

/* Call the callback once; l is freed unless evdns still holds it. */
static void
deliver(struct weft_lookup *l)
{
    struct addrinfo *res = l->res;

    l->done = true;
    l->res = NULL;
    stop_timers(l);
    if (l->acb != NULL)
        l->acb(l->error, l->error == 0 ? res : NULL, l->arg);
    else if (l->error == 0)
        l->ncb(0, l->host, l->serv, l->arg);
    else
        l->ncb(l->error, NULL, NULL, l->arg);
    if (l->error != 0)
        weft_freeaddrinfo(res);
    maybe_free(l);
}

static void
deliver_deferred(void *arg)
{
    struct weft_lookup *l = arg;

    l->defer = NULL;
    deliver(l);
}

/* The outcome is known: hand it over now, or from the loop inside the start call. */
static void
finish(struct weft_lookup *l, int error)
{
    l->error = error;
    if (l->in_start)
        return;         /* the start call defers it */
    deliver(l);
}

/* Only armed while evdns holds the query (an answer stops the timer first). */
static void
on_timeout(void *arg)
{
    struct weft_lookup *l = arg;

    l->timer = NULL;
    l->error = -ETIMEDOUT;
    deliver(l);         /* not freed: evdns_pending */
    stop_query(l);      /* the evdns callback frees l */
}

/* ---- getaddrinfo ---- */

bool
weft__host_is_invalid(const char *host)
{
    size_t len = strlen(host);

    if (len > 0 && host[len - 1] == '.')
        len--;
    return (len == 7 && strncasecmp(host, "invalid", 7) == 0) ||
           (len > 7 && strncasecmp(host + len - 8, ".invalid", 8) == 0);
}


int
weft__eai_error(int result)
{
    switch (result) {
    case EVUTIL_EAI_NONAME:
#ifdef EVUTIL_EAI_NODATA
    case EVUTIL_EAI_NODATA:
#endif
    case EVUTIL_EAI_FAMILY:
    case EVUTIL_EAI_SERVICE:
        return -WEFT_ENONAME;
    case EVUTIL_EAI_MEMORY:
        return -ENOMEM;
    default:
        return -WEFT_ERESOLVE;
    }
}

static void
on_gai(int result, struct evutil_addrinfo *res, void *arg)
{
    struct weft_lookup *l = arg;

    l->evdns_pending = false;
    l->gai = NULL;
    if (l->done)
        weft__loop_dns_abandoned(l->loop, -1);
    if (l->done || result == EVUTIL_EAI_CANCEL) {
        weft_freeaddrinfo(res);
        if (!l->done)
            finish(l, -ECANCELED);      /* not ours: evdns is being freed */
        else
            maybe_free(l);
        return;
    }
    l->res = res;
    finish(l, result == 0 ? (res != NULL ? 0 : -WEFT_ENONAME) : weft__eai_error(result));
}

/*
 * Start the query: 0 (answered inside the call, or pending), 1 when evdns
 * has no nameserver to ask (l is then evdns's to free, its outcome
 * -WEFT_ENONAME), or -ENOMEM (nothing started).
 */
static int
start_gai(struct weft_lookup *l, struct evdns_base *dns, const char *host, const char *service,
          const struct addrinfo *hints)
{
    static const struct evutil_addrinfo any = { .ai_family = AF_UNSPEC };
    struct evdns_getaddrinfo_request *req;

    if (dns == NULL)
        return -ENOMEM;
    l->evdns_pending = true;
    req = evdns_getaddrinfo(dns, host, service, hints != NULL ? hints : &any, on_gai, l);
    if (!l->evdns_pending)
        return 0;       /* answered inside the call (numeric, /etc/hosts, an error) */
    l->gai = req;
    if (evdns_base_count_nameservers(dns) == 0) {
        /* evdns would queue it until a nameserver appears: none will */
        l->done = true;
        stop_query(l);
        return 1;       /* l belongs to evdns now */
    }
    return 0;
}

static int
lookup_new(struct weft_loop *loop, bool have_cb, void *arg, struct weft_lookup **out)
{
    struct weft_lookup *l;

    if (loop == NULL || !have_cb)
        return -EINVAL;
    l = calloc(1, sizeof(*l));
    if (l == NULL)
        return -ENOMEM;
    l->loop = loop;
    l->arg = arg;
    l->in_start = true;
    *out = l;
    return 0;
}

/* The end of a start call: defer an outcome already known, arm the timeout. */
static int
lookup_started(struct weft_lookup *l, struct weft_lookup **out)
{
    uint64_t timeout = weft__loop_dns_timeout(l->loop);

    l->in_start = false;
    if (!l->evdns_pending) {
        /* the outcome is known already */
        l->defer = weft_call_soon(l->loop, deliver_deferred, l);
        if (l->defer == NULL)
            goto nomem;
    } else if (timeout > 0) {
        l->timer = weft_call_later(l->loop, timeout, on_timeout, l);
        if (l->timer == NULL)
            goto nomem;
    }
    if (out != NULL)
        *out = l;
    return 0;
nomem:
    l->done = true;
    stop_timers(l);
    if (l->evdns_pending)
        stop_query(l);  /* the evdns callback frees l */
    else
        maybe_free(l);
    return -ENOMEM;
}

int
weft_getaddrinfo_cb(struct weft_loop *loop, const char *host, const char *service,
                    const struct addrinfo *hints, weft_addrinfo_cb *cb, void *arg,
                    struct weft_lookup **out)
{
    struct weft_lookup *l;
    int rc;

    if (host == NULL && service == NULL)
        return -EINVAL;
    rc = lookup_new(loop, cb != NULL, arg, &l);
    if (rc < 0)
        return rc;
    l->acb = cb;
    if (host != NULL && weft__host_is_invalid(host)) {
        l->error = -WEFT_ENONAME;
    } else {
        rc = start_gai(l, weft__loop_dns(loop), host, service, hints);
        if (rc < 0) {
            free(l);
            return rc;
        }
        if (rc == 1) {
            /* the first record is evdns's to free: report from a new one */
            rc = lookup_new(loop, cb != NULL, arg, &l);
            if (rc < 0)
                return rc;
            l->acb = cb;
            l->error = -WEFT_ENONAME;
        }
    }
    return lookup_started(l, out);
}

/* ---- listeners: without the network ---- */

#define LOCAL_MAX 64

/* Add the literal address text with port to a (deduplicated); false if it is not one. */
static bool
add_literal(const char *text, uint16_t port, struct weft__addr *a, size_t *n)
{
    struct weft__addr x;
    struct sockaddr_in *sin = (struct sockaddr_in *)&x.ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&x.ss;

    memset(&x, 0, sizeof(x));
    if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        x.len = sizeof(*sin);
    } else if (inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        x.len = sizeof(*sin6);
    } else {
        return false;
    }
    for (size_t i = 0; i < *n; i++)
        if (a[i].len == x.len && memcmp(&a[i].ss, &x.ss, x.len) == 0)
            return true;        /* a hosts file may list an address twice */
    if (*n < LOCAL_MAX)
        a[(*n)++] = x;
    return true;
}

/* The addresses the hosts file gives host (as glibc's "files" source reads it). */
static int
hosts_lookup(const char *path, const char *host, uint16_t port, struct weft__addr *a, size_t *n)
{
    size_t hlen = strlen(host);
    char *line = NULL;
    size_t cap = 0;
    FILE *fp;

    if (hlen > 0 && host[hlen - 1] == '.')
        hlen--;
    fp = fopen(path, "re");
    if (fp == NULL)
        return errno == ENOMEM ? -ENOMEM : 0;
    errno = 0;
    while (getline(&line, &cap, fp) >= 0) {
        char *save = NULL, *addr, *name;

        line[strcspn(line, "#")] = '\0';
        addr = strtok_r(line, " \t\r\n", &save);
        if (addr == NULL)
            continue;
        while ((name = strtok_r(NULL, " \t\r\n", &save)) != NULL) {
            if (strlen(name) == hlen && strncasecmp(name, host, hlen) == 0) {
                (void)add_literal(addr, port, a, n);
                break;
            }
        }
    }
    free(line);
    fclose(fp);
    return errno == ENOMEM ? -ENOMEM : 0;
}

int
weft__resolve_local(struct weft_loop *loop, const char *host, uint16_t port,
                    struct weft__addr **out)
{
    struct weft__addr *a;
    size_t n = 0;
    int rc = 0;

    *out = NULL;
    if (host != NULL && weft__host_is_invalid(host))
        return -WEFT_ENONAME;
    a = calloc(LOCAL_MAX, sizeof(*a));
    if (a == NULL)
        return -ENOMEM;
    if (host == NULL) {
        (void)add_literal("0.0.0.0", port, a, &n);
        (void)add_literal("::", port, a, &n);
    } else if (!add_literal(host, port, a, &n)) {
        rc = hosts_lookup(weft__loop_hosts_path(loop), host, port, a, &n);
        if (rc == 0 && n == 0)
            rc = -EWOULDBLOCK;      /* a name for the nameservers */
    }
    if (rc < 0) {
        free(a);
        return rc;
    }
    *out = a;
    return (int)n;
}

/* ---- getnameinfo ---- */

/* The service and, with NI_NUMERICHOST or as a fallback, the numeric host. */
static int
local_nameinfo(struct weft_lookup *l, bool host)
{
    int rc;

    rc = getnameinfo((const struct sockaddr *)&l->sa, l->salen, host ? l->host : NULL,
                     host ? sizeof(l->host) : 0, l->serv, sizeof(l->serv),
                     (l->flags & (NI_NUMERICSERV | NI_DGRAM)) | NI_NUMERICHOST);
    if (rc == EAI_MEMORY)
        return -ENOMEM;
    return rc == 0 ? 0 : -WEFT_ERESOLVE;
}

static void
on_reverse(int result, char type, int count, int ttl, void *addresses, void *arg)
{
    struct weft_lookup *l = arg;

    (void)ttl;
    l->evdns_pending = false;
    l->rev = NULL;
    if (l->done) {
        weft__loop_dns_abandoned(l->loop, -1);
        maybe_free(l);
        return;
    }
    if (result == DNS_ERR_NONE && type == DNS_PTR && count > 0 && addresses != NULL &&
        *(char **)addresses != NULL) {
        const char *name = *(char **)addresses;
        size_t n = strlen(name);

        if ((l->flags & NI_NOFQDN) && strchr(name, '.') != NULL)
            n = (size_t)(strchr(name, '.') - name);
        if (n >= sizeof(l->host)) {
            finish(l, -WEFT_ERESOLVE);
            return;
        }
        memcpy(l->host, name, n);
        l->host[n] = '\0';
        finish(l, 0);
        return;
    }
    if (result == DNS_ERR_CANCEL || result == DNS_ERR_SHUTDOWN) {
        finish(l, -ECANCELED);
        return;
    }
    if (!(l->flags & NI_NAMEREQD)) {
        finish(l, local_nameinfo(l, true));     /* no name: the address */
        return;
    }
    if (result == DNS_ERR_NONE || result == DNS_ERR_NOTEXIST || result == DNS_ERR_NODATA)
        finish(l, -WEFT_ENONAME);
    else
        finish(l, result == DNS_ERR_TIMEOUT ? -ETIMEDOUT : -WEFT_ERESOLVE);
}

int
weft_getnameinfo_cb(struct weft_loop *loop, const struct sockaddr *sa, socklen_t salen,
                    int flags, weft_nameinfo_cb *cb, void *arg, struct weft_lookup **out)
{
    struct weft_lookup *l;
    struct evdns_base *dns;
    int rc;

    if (sa == NULL || salen > sizeof(struct sockaddr_storage))
        return -EINVAL;
    if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)
        return -EAFNOSUPPORT;
    if (salen < (sa->sa_family == AF_INET ? sizeof(struct sockaddr_in)
                                          : sizeof(struct sockaddr_in6)))
        return -EINVAL;
    rc = lookup_new(loop, cb != NULL, arg, &l);
    if (rc < 0)
        return rc;
    l->ncb = cb;
    l->flags = flags;
    memcpy(&l->sa, sa, salen);
    l->salen = salen;
    rc = local_nameinfo(l, true);       /* the service, and the numeric host */
    if (rc < 0 || (flags & NI_NUMERICHOST)) {
        l->error = rc;
        return lookup_started(l, out);
    }
    dns = weft__loop_dns(loop);
    if (dns == NULL) {
        free(l);
        return -ENOMEM;
    }
    if (evdns_base_count_nameservers(dns) == 0) {
        l->error = (flags & NI_NAMEREQD) ? -WEFT_ENONAME : 0;
        return lookup_started(l, out);
    }
    l->evdns_pending = true;
    if (sa->sa_family == AF_INET)
        l->rev = evdns_base_resolve_reverse(dns, &((const struct sockaddr_in *)sa)->sin_addr,
                                            DNS_QUERY_NO_SEARCH, on_reverse, l);
    else
        l->rev = evdns_base_resolve_reverse_ipv6(dns,
                                                 &((const struct sockaddr_in6 *)sa)->sin6_addr,
                                                 DNS_QUERY_NO_SEARCH, on_reverse, l);
    if (l->rev == NULL) {
        free(l);
        return -ENOMEM;
    }
    return lookup_started(l, out);
}

void
weft_lookup_cancel(struct weft_lookup *l)
{
    if (l == NULL || l->done)
        return;
    l->done = true;
    stop_timers(l);
    if (l->evdns_pending)
        stop_query(l);  /* the evdns callback frees l */
    else
        maybe_free(l);
}
