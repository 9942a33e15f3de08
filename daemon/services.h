/* SPDX-License-Identifier: MIT */
/* services.h: the config's services made real: plugins, plugin state, listeners, servers. */
#ifndef WEFTD_SERVICES_H
#define WEFTD_SERVICES_H

#include <stdbool.h>
#include <stddef.h>

#include <weft/weft.h>

#include "cidr.h"
#include "config.h"
#include "listen.h"
#include "plugin.h"

struct service_dgram;

struct service {
    const struct conf_service *conf;    /* borrowed from the config */
    struct plugin *plugin;              /* borrowed from services.plugins, or NULL */
    void *svc;                          /* the plugin's state */
    bool made;                          /* service_new succeeded: call service_free */
    bool worker_started;                /* worker_start succeeded: call worker_stop */
    int *fds;                           /* listening sockets; -1 where binding failed */
    size_t nfds;                        /* conf->nlisten, or systemd's sockets named so */
    struct weft_server *server;         /* its TCP sockets (NULL if it has none) */
    struct service_dgram **dgrams;      /* its UDP sockets' endpoints (NULL once lost) */
    size_t ndgrams;
    struct weft_stream_factory *stream; /* stream-layer plugins: runs .client in tasks */
    struct weft_tls_context *tls;       /* from the tls_* keys, made before workers fork */
    struct weft_proxy_options proxy;    /* proxy_protocol (versions 0: off), proxy_trusted */
    struct cidr *trusted;               /* proxy_trusted's ranges */
    size_t ntrusted;
    uint64_t idle_ms;                   /* idle_timeout; 0: none */
    size_t limit;                       /* limit (stream plugins' readers); 0: 64 KiB */
    struct listen_unix_perm unix_perm;  /* unix_mode, unix_user, unix_group: its socket files */
};

struct services {
    struct config *conf;                /* borrowed */
    char *plugin_dir;                   /* the search path: directories joined with ':' */
    struct plugin **plugins;            /* one per protocol in use */
    size_t nplugins;
    struct service *list;
    size_t count;
    bool own_fds;                       /* fds are ours (services_take_fds), not the pool's */
    struct weft_loop *loop;             /* the worker's, once services_start ran */
};

/*
 * Make everything ready without serving: load each protocol's plugin from
 * the first directory of the search path that has it (plugin_dir_flag, then
 * $WEFT_PLUGIN_DIR, then [weftd] plugin_dir, each colon-separated, then
 * plugin_default_dir()), create each service and pass
 * it its keys, run service_check, and take each listen address's socket from
 * pool (see bind_service: systemd sockets named after the service, else the
 * pool's socket for the address, else a new one). pool NULL skips sockets
 * (weftd -T). Works on whatever is valid so that every error is found at
 * once: each one goes to conf's error list with its file, line and key.
 * Returns 0, -WEFT_ECONFIG if conf has errors (from here or before), or
 * -ENOMEM. Free with services_free() in every case; the sockets stay the
 * pool's.
 */
int services_prepare(struct services *ss, struct config *conf, const char *plugin_dir_flag,
                     struct listen_pool *pool);

/*
 * In a worker: replace every socket by a private duplicate (close-on-exec),
 * which services_start hands to the servers and services_free closes; the
 * pool's can then be closed. Returns 0 or -errno (nothing changed).
 */
int services_take_fds(struct services *ss);

/* Log "NAME: listening on ADDR" for each socket. */
void services_log_listeners(const struct services *ss);

/*
 * Serve: first each plugin's worker_start for each of its services (before
 * anything is accepted), then one weft server per service on its sockets
 * (after services_take_fds), each connection's protocol made by
 * services_protocol_new(), and accepted(server, arg) called for each
 * accepted connection (weft_server_set_accept_cb; NULL: none). Returns 0 or
 * a negative code (logged, with the plugin's reason); what was started is
 * freed by services_free(), which calls worker_stop where worker_start
 * succeeded.
 */
int services_start(struct services *ss, struct weft_loop *loop,
                   weft_server_accept_cb *accepted, void *arg);

/* A new connection's protocol: the plugin's protocol_new, or a stream handler's. */
struct weft_protocol *services_protocol_new(struct service *s);

/* Stop accepting (close the listeners) everywhere. */
void services_close_listeners(struct services *ss);

/* Close every connection gracefully (flush, then close). */
void services_close_clients(struct services *ss);

/* A drain begins: each plugin's drain hook, for every service it has (weft/plugin.h). */
void services_drain(struct services *ss);

/* Abort every connection now. */
void services_abort_clients(struct services *ss);

/* Connections open across every service. */
size_t services_connection_count(const struct services *ss);

/*
 * SIGUSR1: ask each service's plugin to reopen its log files (its .reopen,
 * when the record has one). A failure is logged with the service's name and
 * leaves that service writing to its old files. Returns how many failed.
 */
size_t services_reopen(struct services *ss);

/* Free servers (aborting their connections), plugin state, sockets, plugins. */
void services_free(struct services *ss);

#endif
