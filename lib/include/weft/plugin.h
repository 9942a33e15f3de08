/* SPDX-License-Identifier: MIT */
/* weft/plugin.h: the record a protocol plugin exports for weftd. */
#ifndef WEFT_PLUGIN_H
#define WEFT_PLUGIN_H

#include <weft/common.h>
#include <weft/protocol.h>

struct weft_datagram_protocol;

#ifdef __cplusplus
extern "C" {
#endif

/*
 * A plugin is a shared object exporting one
 *
 *     WEFT_PLUGIN_EXPORT const struct weft_plugin weft_plugin = { ... };
 *
 * weftd dlopen()s it (RTLD_NOW | RTLD_LOCAL), reads .abi before anything else
 * and refuses a mismatch, then .size, then the rest. For every config section
 * with "protocol = <name>" it makes one service:
 *
 *     service_new(&svc)                      once per section
 *     configure(svc, key, value, err, len)   once per plugin key, in file order
 *     service_check(svc, err, len)           after the last key: validate the whole
 *     protocol_new(svc)                      once per accepted connection
 *       or client(r, w, svc)                 in a task per connection (stream layer)
 *     reopen(svc, err, len)                  on SIGUSR1: reopen log files (optional)
 *     worker_start(svc, loop, err, len)      in each worker, before it accepts (optional)
 *     drain(svc)                             in each worker, when it begins to drain (optional)
 *     worker_stop(svc, loop)                 in each worker, after its loop stopped (optional)
 *     datagram_new(svc)                      once per UDP socket per worker (optional)
 *     service_free(svc)                      when the daemon stops
 *
 * Errors are returned as negative codes with a one-line reason in err; the
 * daemon adds file, line, section and key. configure returns -WEFT_ENOKEY for
 * a key it does not know, -WEFT_ECONFIG for a bad value.
 * Everything runs on the loop's thread. Log with weft_log() (weft/log.h).
 */

/* Bump on any change to the layout or meaning of struct weft_plugin. */
#define WEFT_PLUGIN_ABI 1u

#define WEFT_PLUGIN_EXPORT __attribute__((visibility("default")))

struct weft_plugin {
    uint32_t abi;           /* WEFT_PLUGIN_ABI, first member forever */
    uint32_t size;          /* sizeof(struct weft_plugin) */
    const char *name;       /* the config's "protocol = name" */
    const char *version;    /* the plugin's own version */
    const char *summary;    /* one line for logs and -h */

    /* Make a service's state; 0 and *svc, or a negative code. May be NULL
     * (svc is then NULL and configure must reject every key). */
    int (*service_new)(void **svc);

    /* Take one key; 0, -WEFT_ENOKEY, or -WEFT_ECONFIG with err set. */
    int (*configure)(void *svc, const char *key, const char *value, char *err, size_t errlen);

    /* All keys are in: check the whole, open files. 0 or negative with err. May be NULL. */
    int (*service_check)(void *svc, char *err, size_t errlen);

    /* Free what service_new made. May be NULL. */
    void (*service_free)(void *svc);

    /* Protocol layer: a protocol for a new connection, or NULL (dropped). */
    struct weft_protocol *(*protocol_new)(void *svc);

    /* Stream layer, instead of protocol_new (which is then NULL): weftd runs
     * client(r, w, svc) in a task per connection (weft/stream.h; serve it with
     * weft_stream_factory_new(client, svc, NULL) and weft_stream_factory).
     * r and w are borrowed for the call; the connection is closed when it
     * returns. Returns 0 or a negative code (connection errors and -ECANCELED
     * are normal endings). A record whose .size does not reach this field has
     * none. Since 0.1. */
    int (*client)(struct weft_reader *r, struct weft_writer *w, void *svc);

    /* TLS: the application protocols the plugin speaks, for ALPN, most
     * preferred first, NULL-terminated (http: { "http/1.1", NULL }); NULL for
     * none. weftd hands it to weft_tls_config_set_alpn() (weft/tls.h) for
     * each TLS service of the plugin. A record whose .size does not reach this
     * field has none. Since 0.1. */
    const char *const *alpn;

    /* Reopen the service's log files (weftd's SIGUSR1, after logrotate moved
     * them): open each file's path anew and write there from now on; on
     * failure keep writing to the old file and return a negative code with a
     * one-line reason in err, which weftd logs. Called in the master (whose
     * copy the workers it starts later inherit) and in every worker. May be
     * NULL (nothing to reopen). A record whose .size does not reach this
     * field has none. Since 0.1. */
    int (*reopen)(void *svc, char *err, size_t errlen);

    /* Per worker: called in each process that serves (every worker; with
     * workers = 0 the daemon itself), once its event loop exists and before
     * it accepts a connection, for each service of the plugin. Make what a
     * worker keeps for itself here (connection pools, caches, timers on
     * loop): a worker is a fork of the master, so svc is the worker's own
     * copy and may point at it. Returns 0, or a negative code with a one-line
     * reason in err: weftd logs it and the worker exits without serving (at
     * start weftd then stops; during a reload the reload is abandoned and
     * the old workers keep serving). May be NULL. A record whose .size does
     * not reach this field has none. Since 0.1. */
    int (*worker_start)(void *svc, struct weft_loop *loop, char *err, size_t errlen);

    /* The worker's loop has stopped and its connections are gone (a stop,
     * or the end of a worker a reload retired): free what worker_start
     * made, synchronously (loop is still valid, but nothing scheduled on it
     * runs any more). Called once for each service whose worker_start
     * returned 0, before service_free. May be NULL (with worker_start set or
     * not). A record whose .size does not reach this field has none.
     * Since 0.1. */
    void (*worker_stop)(void *svc, struct weft_loop *loop);

    /* UDP: the datagram protocol (weft/datagram.h) for one of the service's
     * "listen = udp:HOST:PORT" sockets, made once per socket in each worker
     * (every worker reads the same socket) and freed by its own
     * connection_lost when the worker stops serving; NULL (out of memory)
     * makes that worker fail to start. A plugin speaks UDP if it has this,
     * TCP if it has protocol_new or client: weftd refuses a udp: address for
     * a plugin without datagram_new, and a TCP address for one with only
     * datagram_new. May be NULL. A record whose .size does not reach this
     * field has none. Since 0.1. */
    struct weft_datagram_protocol *(*datagram_new)(void *svc);

    /* TLS: the ALPN protocols of this one service (configured and checked), most
     * preferred first, NULL-terminated; returning NULL means .alpn. Lets a setting
     * decide what a service offers (http: "h2" only with http2 = on). The array must
     * live as long as svc. May be NULL (.alpn for every service). A record whose .size
     * does not reach this field has none. Since 0.1. */
    const char *const *(*service_alpn)(void *svc);

    /* The worker begins to drain (weftd's SIGTERM, or a reload retiring it): it no
     * longer accepts, and its connections may finish what they are doing. A protocol
     * that can say so to its peers does (http's HTTP/2 sends GOAWAY); the drain's
     * deadline (shutdown_timeout, reload_timeout) still aborts what is left. Called in
     * each worker, once per service whose worker_start (if any) returned 0. May be NULL.
     * A record whose .size does not reach this field has none. Since 0.1. */
    void (*drain)(void *svc);
};

/**
 * The path a config value names: an absolute value as it is, a relative one taken
 * relative to the directory of the config file being read (so a config means the same
 * whatever the current directory), written to out as a NUL-terminated string. For a
 * plugin's configure() on its path keys (a directory to serve, a file to read or log
 * to). Returns the length, or -ENAMETOOLONG if out is too small (out is then ""),
 * -EINVAL for an empty value. Since 0.1.
 */
WEFT_EXPORT int weft_plugin_path(const char *value, char *out, size_t outlen);

/**
 * For the host (weftd): the directory relative config paths are taken from, until the
 * next call; dir is copied; NULL or "" means the current directory. Call it before
 * configuring the services of a file. Not thread-safe: configure services on one thread.
 * Returns 0, or -ENAMETOOLONG (the directory is then unchanged). Since 0.1.
 */
WEFT_EXPORT int weft_plugin_set_config_dir(const char *dir);

#ifdef __cplusplus
}
#endif
#endif
