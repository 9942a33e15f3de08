/* SPDX-License-Identifier: MIT */
/* main.c: weftd's command line, start-up order, signals and graceful shutdown. */
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/weft.h>

#include "config.h"
#include "log.h"
#include "services.h"

#ifndef WEFT_DEFAULT_CONF
#define WEFT_DEFAULT_CONF "/etc/weft/weftd.conf"
#endif

#define SHUTDOWN_TICK_MS 20

struct weftd {
    struct config *conf;
    struct services services;
    struct weft_loop *loop;
    bool stopping;
    uint64_t deadline;
};

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: weftd [-t] [-c FILE] [-p DIR]\n"
            "       weftd -V | -h\n"
            "Serve the TCP protocols of the config's services, in the foreground.\n"
            "  -c FILE  config file (default %s)\n"
            "  -t       check the config (plugins, keys, listen addresses) and exit:\n"
            "           prints \"configuration ok\" and exits 0, or every error and exits 1\n"
            "  -p DIR   load plugins from DIR (before plugin_dir and $WEFT_PLUGIN_DIR)\n"
            "  -V       print the version and exit\n"
            "  -h       print this help and exit\n"
            "SIGTERM or SIGINT stop accepting, close connections (aborting those still\n"
            "open after shutdown_timeout) and exit 0. See weftd(8), weftd.conf(5).\n",
            WEFT_DEFAULT_CONF);
}

static const char *
signal_name(int sig)
{
    switch (sig) {
    case SIGINT:  return "SIGINT";
    case SIGTERM: return "SIGTERM";
    case SIGHUP:  return "SIGHUP";
    default:      return "signal";
    }
}

static void
shutdown_tick(void *arg)
{
    struct weftd *w = arg;
    size_t n = services_connection_count(&w->services);

    if (n == 0) {
        weft_loop_stop(w->loop);
        return;
    }
    if (weft_loop_time(w->loop) >= w->deadline) {
        log_warning("shutdown_timeout reached: aborting %zu connection%s", n,
                    n == 1 ? "" : "s");
        services_abort_clients(&w->services);
        weft_loop_stop(w->loop);
        return;
    }
    if (weft_call_later(w->loop, SHUTDOWN_TICK_MS, shutdown_tick, w) == NULL) {
        services_abort_clients(&w->services);
        weft_loop_stop(w->loop);
    }
}

static void
on_signal(struct weft_loop *loop, int sig, void *arg)
{
    struct weftd *w = arg;
    size_t n = services_connection_count(&w->services);

    if (sig == SIGHUP) {
        log_warning("SIGHUP: reloading the config is not supported yet; "
                    "restart weftd to apply a new one");
        return;
    }
    if (w->stopping) {
        log_notice("%s again: aborting %zu connection%s now", signal_name(sig), n,
                   n == 1 ? "" : "s");
        services_abort_clients(&w->services);
        weft_loop_stop(loop);
        return;
    }
    w->stopping = true;
    log_notice("stopping (%s): closing %zu connection%s, waiting at most %llu ms",
               signal_name(sig), n, n == 1 ? "" : "s",
               (unsigned long long)w->conf->g.shutdown_ms);
    services_close_listeners(&w->services);
    services_close_clients(&w->services);
    w->deadline = weft_loop_time(loop) + w->conf->g.shutdown_ms;
    if (weft_call_soon(loop, shutdown_tick, w) == NULL) {
        services_abort_clients(&w->services);
        weft_loop_stop(loop);
    }
}

/* Every error of the config, in file order; then one line saying what it means. */
static void
report_errors(const struct config *conf, bool test)
{
    for (size_t i = 0; i < conf->nerrors; i++)
        log_error("%s", conf->errors[i].msg);
    log_error("%s: %zu error%s%s", conf->file, conf->nerrors, conf->nerrors == 1 ? "" : "s",
              test ? "" : ", not starting");
}

static int
serve(struct weftd *w)
{
    static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
    int rc;

    w->loop = weft_loop_new();
    if (w->loop == NULL) {
        log_error("cannot create the event loop: %s", strerror(errno));
        return 1;
    }
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        rc = weft_loop_add_signal_handler(w->loop, sigs[i], on_signal, w);
        if (rc < 0) {
            log_error("cannot handle %s: %s", signal_name(sigs[i]), weft_strerror(rc));
            return 1;
        }
    }
    rc = services_start(&w->services, w->loop);
    if (rc < 0)
        return 1;
    log_notice("ready: %zu service%s", w->services.count,
               w->services.count == 1 ? "" : "s");
    rc = weft_loop_run(w->loop);
    if (rc < 0) {
        log_error("event loop failed: %s", weft_strerror(rc));
        return 1;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    struct weftd w = { 0 };
    const char *file = WEFT_DEFAULT_CONF, *plugin_dir = NULL;
    bool test = false;
    int opt, rc, status;

    while ((opt = getopt(argc, argv, "c:tp:Vh")) != -1) {
        switch (opt) {
        case 'c': file = optarg; break;
        case 't': test = true; break;
        case 'p': plugin_dir = optarg; break;
        case 'V':
            printf("weftd %s (plugin ABI %u, libevent %s)\n", WEFT_VERSION_STRING,
                   (unsigned)WEFT_PLUGIN_ABI, event_get_version());
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "weftd: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    /* A client that vanishes must cost an EPIPE, not the daemon. */
    signal(SIGPIPE, SIG_IGN);
    log_init(WEFT_LOG_INFO);

    rc = config_load(file, &w.conf);
    if (w.conf == NULL) {
        log_error("%s: out of memory", file);
        return 1;
    }
    log_set_level(w.conf->g.log_level);
    if (!test)
        log_info("weftd %s starting with %s", WEFT_VERSION_STRING, file);
    /* Plugins and ports are checked even when the file had errors: all errors at once. */
    if (rc != -ENOMEM && (rc == 0 || rc == -WEFT_ECONFIG))
        rc = services_prepare(&w.services, w.conf, plugin_dir);
    if (rc == -ENOMEM || w.conf->oom) {
        log_error("%s: out of memory", file);
        status = 1;
    } else if (w.conf->nerrors > 0) {
        report_errors(w.conf, test);
        status = 1;
    } else if (test) {
        printf("configuration ok\n");
        status = 0;
    } else {
        status = serve(&w);
    }
    services_free(&w.services);
    if (w.loop != NULL) {
        weft_loop_free(w.loop);
        log_notice("stopped");
    }
    config_free(w.conf);
    return status;
}
