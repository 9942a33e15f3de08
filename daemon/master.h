/* SPDX-License-Identifier: MIT */
/* master.h: the master process: sockets, workers, reload, graceful stop, systemd. */
#ifndef WEFTD_MASTER_H
#define WEFTD_MASTER_H

#include "config.h"
#include "listen.h"
#include "services.h"

/*
 * Run the daemon from a prepared config: conf and ss (services_prepare'd on
 * pool, without errors) are taken over, as is pool. With workers = 0 the
 * services are served in this process; otherwise the master forks the
 * workers, restarts those that die, reloads on SIGHUP (file is read again,
 * plugins from plugin_dir_flag), stops on SIGTERM/SIGINT, and speaks
 * sd_notify. Returns the exit status.
 */
int master_run(const char *file, const char *plugin_dir_flag, struct config *conf,
               struct services *ss, struct listen_pool *pool);

/*
 * Check what the config needs from the system beyond plugins and sockets
 * (the user and group exist). Errors go to conf with their lines.
 */
void master_check_config(struct config *conf);

/* The number of workers "auto" means: the CPUs this process may run on. */
int master_auto_workers(void);

#endif
