/* SPDX-License-Identifier: MIT */
/* main.c: weftd's command line and start-up order; master.c runs the rest. */
#include <errno.h>
#include <event2/event.h>
#include <limits.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/weft.h>

#include "config.h"
#include "listen.h"
#include "log.h"
#include "master.h"
#include "paths.h"
#include "plugin.h"
#include "services.h"

/* Relative: to the prefix weftd runs from (paths_installed); absolute for the /usr prefix. */
#ifndef WEFT_DEFAULT_CONF
#define WEFT_DEFAULT_CONF "etc/weft/weftd.conf"
#endif

static char default_conf[PATH_MAX];

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: weftd [-t | -T] [-c FILE] [-p DIR]\n"
            "       weftd -r PID [-c FILE] [-p DIR]\n"
            "       weftd -V | -h\n"
            "Serve the TCP protocols of the config's services, in the foreground.\n"
            "  -c FILE  config file (default %s)\n"
            "  -t       check the config (plugins, keys, users, listen addresses) and exit:\n"
            "           prints \"configuration ok\" and exits 0, or every error and exits 1\n"
            "  -T       as -t, but without binding the listen addresses: for checking a new\n"
            "           config while weftd runs and holds them\n"
            "  -r PID   reload the weftd whose master is PID: check the config as -T does,\n"
            "           then send it SIGHUP; an invalid config exits 1 with its errors and\n"
            "           sends nothing (ExecReload does this)\n"
            "  -p DIR   look for plugins in DIR first (repeatable, or DIR:DIR...); the search\n"
            "           goes on in $WEFT_PLUGIN_DIR, plugin_dir, then %s\n"
            "  -V       print the version and exit\n"
            "  -h       print this help and exit\n"
            "Signals: SIGHUP reloads the config (new workers; old ones close their listeners and\n"
            "finish their connections, up to reload_timeout: no limit by default); SIGTERM or\n"
            "SIGINT stop accepting, let connections finish (up to shutdown_timeout, then\n"
            "abort them) and exit 0; SIGUSR1 reopens log files.\n"
            "See weftd(8), weftd.conf(5).\n",
            default_conf, plugin_default_dir());
}

/* -r: the config is valid; SIGHUP the master. */
static int
send_reload(pid_t pid)
{
    if (kill(pid, SIGHUP) < 0) {
        log_error("cannot send SIGHUP to weftd's master %ld: %s", (long)pid,
                  errno == ESRCH ? "no such process" : strerror(errno));
        return 1;
    }
    printf("configuration ok, sent SIGHUP to %ld\n", (long)pid);
    return 0;
}

int
main(int argc, char **argv)
{
    struct config *conf = NULL;
    struct services ss = { 0 };
    struct listen_pool pool = { 0 };
    const char *file = default_conf;
    static char *plugin_dir;            /* each -p, joined with colons (static: reachable) */
    bool test = false, nobind = false;
    long reload_pid = 0;
    int opt, rc, status;

    if (paths_installed(WEFT_DEFAULT_CONF, default_conf, sizeof(default_conf)) < 0)
        snprintf(default_conf, sizeof(default_conf), "%s", WEFT_DEFAULT_CONF);

    while ((opt = getopt(argc, argv, "c:tTr:p:Vh")) != -1) {
        switch (opt) {
        case 'c': file = optarg; break;
        case 't': test = true; break;
        case 'T': test = nobind = true; break;
        case 'r': {
            char *end;

            errno = 0;
            reload_pid = strtol(optarg, &end, 10);
            if (errno != 0 || end == optarg || *end != '\0' || reload_pid <= 0 ||
                reload_pid > INT_MAX) {
                fprintf(stderr, "weftd: -r: \"%s\" is not a process id\n", optarg);
                return 2;
            }
            test = nobind = true;
            break;
        }
        case 'p': {
            char *joined;

            if (asprintf(&joined, "%s%s%s", plugin_dir ? plugin_dir : "", plugin_dir ? ":" : "",
                         optarg) < 0) {
                fprintf(stderr, "weftd: out of memory\n");
                return 1;
            }
            free(plugin_dir);
            plugin_dir = joined;
            break;
        }
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
    /* A client that vanishes must cost an EPIPE, not the daemon; and with SIGPIPE
     * ignored for good the transports need not block it around each sendfile. */
    if (weft_ignore_sigpipe() < 0)
        signal(SIGPIPE, SIG_IGN);
    log_init(WEFT_LOG_INFO);

    rc = config_load(file, &conf);
    if (conf == NULL) {
        log_error("%s: out of memory", file);
        return 1;
    }
    log_set_level(conf->g.log_level);
    if (!test) {
        int n;

        log_info("weftd %s starting with %s", WEFT_VERSION_STRING, file);
        n = listen_pool_adopt_systemd(&pool);
        if (n < 0)
            log_error("cannot take systemd's sockets: %s", weft_strerror(n));
        else if (n > 0)
            log_info("socket activation: %d socket%s from systemd", n, n == 1 ? "" : "s");
    }
    /* Plugins and ports are checked even when the file had errors: all errors at once. */
    if (rc != -ENOMEM && (rc == 0 || rc == -WEFT_ECONFIG))
        rc = services_prepare(&ss, conf, plugin_dir, nobind ? NULL : &pool);
    if (rc != -ENOMEM && !conf->oom)
        master_check_config(conf);
    if (rc == -ENOMEM || conf->oom) {
        log_error("%s: out of memory", file);
        status = 1;
    } else if (conf->nerrors > 0) {
        for (size_t i = 0; i < conf->nerrors; i++)
            log_error("%s", conf->errors[i].msg);
        log_error("%s: %zu error%s%s", conf->file, conf->nerrors,
                  conf->nerrors == 1 ? "" : "s",
                  reload_pid ? ", not reloading" : test ? "" : ", not starting");
        status = 1;
    } else if (reload_pid != 0) {
        status = send_reload((pid_t)reload_pid);
    } else if (test) {
        printf("configuration ok\n");
        status = 0;
    } else {
        /* master_run takes the config, the services and the sockets. */
        return master_run(file, plugin_dir, conf, &ss, &pool);
    }
    services_free(&ss);
    listen_pool_unlink(&pool);      /* weftd -t made them only to check */
    listen_pool_free(&pool);
    config_free(conf);
    free(plugin_dir);
    return status;
}
