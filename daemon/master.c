/* SPDX-License-Identifier: MIT */
/* master.c: the master: forks workers on its sockets, restarts them, reloads, stops, notifies. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "master.h"
#include "sdnotify.h"
#include "worker.h"

#define KILL_GRACE_MS 5000      /* after shutdown_timeout, SIGKILL a worker that hangs on */
#define RELOAD_START_MS 30000   /* new workers not ready by then: the reload fails */
#define CRASH_LOOP_MS 1000      /* a worker that dies younger than this is restarted... */
#define CRASH_DELAY_MS 500      /* ...this much later (a crash loop forks twice a second) */
#define STATUS_MS 1000          /* STATUS= at most this often */
#define CLOSE_WAIT_MS 30000     /* after a reload, old workers not closed by then: READY anyway */
#define NOTIFY_QUEUE 8          /* notifications kept while the receiver's queue is full */
#define MASTER_FALLBACK_USER "nobody" /* root's workers when the config names no user */

/* Indices of the [weftd] keys in config.c's table, for errors on their lines. */
enum { KEY_USER_LINE = 4, KEY_GROUP_LINE = 5 };

/* A config made real: what a generation of workers serves. */
struct generation {
    unsigned id;
    struct config *conf;
    struct services ss;
    int nworkers;
    bool drop;                  /* workers switch to uid/gid */
    uid_t uid;
    gid_t gid;
};

struct proc {
    pid_t pid;
    int fd;                     /* status pipe, read end; -1 at EOF */
    unsigned gen;
    bool ready;
    bool draining;              /* told to stop accepting and finish */
    bool retiring;              /* draining after a reload: reload_timeout, not shutdown_timeout */
    bool closed;                /* its listeners are closed (it said so, or its pipe ended) */
    uint64_t conns;
    uint64_t started;           /* ms */
    uint64_t kill_at;           /* ms; 0: none */
};

struct master {
    const char *file;
    const char *plugin_dir;
    pid_t pid;
    struct listen_pool pool;
    struct generation *cur;
    struct generation *next;    /* a reload waiting for its workers */
    uint64_t next_deadline;
    bool settling;              /* reloaded; READY=1 once the old workers closed listeners */
    bool reload_pending;        /* SIGHUP during a reload: another one follows it */
    unsigned aborted;           /* a failed reload's generation, its workers still exiting */
    char aborted_status[200];   /* what READY=1 says once they are gone */
    uint64_t settle_deadline;
    unsigned last_gen;
    struct proc *procs;
    size_t nprocs;
    int sigfd;
    bool started;               /* the first workers were all ready */
    bool stopping;
    bool stop_closed;           /* stopping, and no worker holds a listening socket now */
    int status;                 /* exit status */
    uint64_t stop_kill_at;
    int missing;                /* current workers to start again */
    uint64_t restart_at;
    uint64_t status_at;
    char status_line[160];
    char *notify_queue[NOTIFY_QUEUE];   /* READY=1 and the like, not yet sent */
    size_t nnotify;
};

static uint64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int
master_auto_workers(void)
{
    cpu_set_t set;
    long n;

    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

void
master_check_config(struct config *conf)
{
    const struct conf_global *g = &conf->g;

    if (g->user != NULL && g->user[0] != '\0' && getpwnam(g->user) == NULL)
        config_error(conf, conf->g_lines[KEY_USER_LINE], "weftd", "user", "no such user \"%s\"",
                     g->user);
    if ((g->user == NULL || g->user[0] == '\0') && geteuid() == 0 &&
        getpwnam(MASTER_FALLBACK_USER) == NULL)
        config_error(conf, 0, "weftd", "user",
                     "weftd runs as root, no user is set and there is no user %s to fall back "
                     "to: set user (user = root to keep the workers root)", MASTER_FALLBACK_USER);
    if (g->group != NULL && g->group[0] != '\0') {
        if (g->user == NULL || g->user[0] == '\0')
            config_error(conf, conf->g_lines[KEY_GROUP_LINE], "weftd", "group",
                         "group needs user");
        else if (getgrnam(g->group) == NULL)
            config_error(conf, conf->g_lines[KEY_GROUP_LINE], "weftd", "group",
                         "no such group \"%s\"", g->group);
    }
    config_sort_errors(conf);
}

static void
report_errors(const struct config *conf, const char *what)
{
    for (size_t i = 0; i < conf->nerrors; i++)
        log_error("%s", conf->errors[i].msg);
    log_error("%s: %zu error%s, %s", conf->file, conf->nerrors, conf->nerrors == 1 ? "" : "s",
              what);
}

static struct generation *
generation_new(struct master *m, struct config *conf)
{
    struct generation *g = calloc(1, sizeof(*g));
    const struct conf_global *cg = &conf->g;
    const char *user = cg->user != NULL && cg->user[0] != '\0' ? cg->user : NULL;

    if (g == NULL)
        return NULL;
    g->id = ++m->last_gen;
    g->conf = conf;
    g->nworkers = cg->workers == CONF_WORKERS_AUTO ? master_auto_workers() : cg->workers;
    if (geteuid() != 0) {
        if (user != NULL)
            log_warning("user = %s: ignored, weftd does not run as root", user);
    } else {
        /* As nginx: root's workers never stay root unless the config says so. */
        struct passwd *pw = getpwnam(user != NULL ? user : MASTER_FALLBACK_USER);
        struct group *gr = user != NULL && cg->group && cg->group[0] ? getgrnam(cg->group) : NULL;

        if (pw != NULL && user == NULL)
            log_notice("no user set: the workers run as %s (user = root keeps root)",
                       MASTER_FALLBACK_USER);
        if (pw != NULL && pw->pw_uid == 0) {
            log_warning("user = %s: the workers run as root, as the config asks", pw->pw_name);
        } else if (pw != NULL) {
            g->drop = true;
            g->uid = pw->pw_uid;
            g->gid = gr != NULL ? gr->gr_gid : pw->pw_gid;
        }
    }
    return g;
}

static void
generation_free(struct generation *g)
{
    if (g == NULL)
        return;
    services_free(&g->ss);
    config_free(g->conf);
    free(g);
}

static size_t
count_procs(const struct master *m, unsigned gen, bool ready_only)
{
    size_t n = 0;

    for (size_t i = 0; i < m->nprocs; i++)
        if (m->procs[i].gen == gen && !m->procs[i].draining &&
            (!ready_only || m->procs[i].ready))
            n++;
    return n;
}

static uint64_t
total_conns(const struct master *m)
{
    uint64_t n = 0;

    for (size_t i = 0; i < m->nprocs; i++)
        n += m->procs[i].conns;
    return n;
}

/*
 * Send the pending notifications in order. The receiver's queue may be full
 * (net.unix.max_dgram_qlen is small, and a test or a busy systemd may read
 * late): what got EAGAIN waits here and goes again from the loop.
 */
static void
notify_flush(struct master *m)
{
    size_t sent = 0;

    while (sent < m->nnotify && sdnotify("%s", m->notify_queue[sent]) != -EAGAIN)
        free(m->notify_queue[sent++]);
    memmove(m->notify_queue, m->notify_queue + sent, (m->nnotify - sent) * sizeof(char *));
    m->nnotify -= sent;
}

/* A notification that must arrive (READY=1, RELOADING=1, STOPPING=1, a reload's STATUS). */
static void
notify(struct master *m, const char *fmt, ...)
{
    char *msg;
    va_list ap;
    int rc;

    if (getenv("NOTIFY_SOCKET") == NULL)
        return;
    va_start(ap, fmt);
    rc = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (rc < 0) {
        log_error("out of memory for a notification");
        return;
    }
    if (m->nnotify == NOTIFY_QUEUE) {
        log_warning("NOTIFY_SOCKET does not take notifications: dropping \"%s\"",
                    m->notify_queue[0]);
        free(m->notify_queue[0]);
        memmove(m->notify_queue, m->notify_queue + 1, --m->nnotify * sizeof(char *));
    }
    m->notify_queue[m->nnotify++] = msg;
    notify_flush(m);
}

/*
 * A worker keeps no capability: the master binds the ports (CAP_NET_BIND_SERVICE) and
 * reads the TLS keys (CAP_DAC_READ_SEARCH under the shipped unit). First the bounding
 * set, where we may (CAP_SETPCAP: as root, before setuid takes it away), so no exec can
 * get one back; then, after setuid, the rest. Returns 0 or -errno.
 */
static int
drop_bounding_set(void)
{
    struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

    memset(data, 0, sizeof(data));
    if (syscall(SYS_capget, &hdr, data) < 0)
        return -errno;
    if (!(data[CAP_TO_INDEX(CAP_SETPCAP)].effective & CAP_TO_MASK(CAP_SETPCAP)))
        return 0;       /* not ours to change; NoNewPrivileges= keeps an exec from using it */
    for (int cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++)
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
            return -errno;
    return 0;
}

/* The ambient set cleared, then effective, permitted and inheritable emptied (lowering
 * them is always allowed). Returns 0 or -errno. */
static int
drop_capabilities(void)
{
    struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

    /* EINVAL: a kernel without ambient capabilities (before 4.3), so none to clear. */
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        return -errno;
    memset(data, 0, sizeof(data));
    if (syscall(SYS_capset, &hdr, data) < 0)
        return -errno;
    return 0;
}

/* The worker's side of a fork: shed the master's state, drop privileges, serve. */
static void
child(struct master *m, struct generation *g, int wfd)
{
    struct generation *other = g == m->cur ? m->next : m->cur;
    char prefix[32];
    int rc;

    snprintf(prefix, sizeof(prefix), "worker %ld: ", (long)getpid());
    log_set_prefix(prefix);
    close(m->sigfd);
    for (size_t i = 0; i < m->nprocs; i++)
        if (m->procs[i].fd >= 0)
            close(m->procs[i].fd);
    free(m->procs);
    m->procs = NULL;
    m->nprocs = 0;
    for (size_t i = 0; i < m->nnotify; i++)
        free(m->notify_queue[i]);
    m->nnotify = 0;
    unsetenv("NOTIFY_SOCKET");
    rc = services_take_fds(&g->ss);
    listen_pool_free(&m->pool);
    generation_free(other);
    m->cur = m->next = NULL;
    if (rc < 0) {
        log_error("cannot take the listening sockets: %s", weft_strerror(rc));
        goto out;
    }
    rc = drop_bounding_set();
    if (rc < 0) {
        log_error("cannot drop capabilities (bounding set): %s", strerror(-rc));
        goto out;
    }
    if (g->drop && (setgroups(1, &g->gid) < 0 || setgid(g->gid) < 0 || setuid(g->uid) < 0)) {
        log_error("cannot switch to user %s: %s", g->conf->g.user, strerror(errno));
        rc = -1;
        goto out;
    }
    rc = drop_capabilities();
    if (rc < 0) {
        log_error("cannot drop capabilities: %s", strerror(-rc));
        goto out;
    }
#ifdef __SANITIZE_ADDRESS__
    /* setuid made us undumpable, and LeakSanitizer cannot stop an undumpable process. */
    if (g->drop)
        prctl(PR_SET_DUMPABLE, 1);
#endif
    /* An orphan worker drains and exits (set after setuid, which clears it). */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != m->pid) {
        rc = -1;
        goto out;
    }
    rc = worker_run(&g->ss, &g->conf->g, wfd) == 0 ? 0 : -1;
    memset(&g->ss, 0, sizeof(g->ss));   /* worker_run freed it */
out:
    close(wfd);
    generation_free(g);
    exit(rc == 0 ? 0 : 1);
}

static int
spawn(struct master *m, struct generation *g)
{
    struct proc *np;
    int fds[2];
    pid_t pid;

    np = realloc(m->procs, (m->nprocs + 1) * sizeof(*np));
    if (np == NULL)
        return -ENOMEM;
    m->procs = np;
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -errno;
    pid = fork();
    if (pid < 0) {
        int rc = -errno;

        close(fds[0]);
        close(fds[1]);
        return rc;
    }
    if (pid == 0) {
        close(fds[0]);
        child(m, g, fds[1]);
    }
    close(fds[1]);
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    np[m->nprocs++] = (struct proc){ .pid = pid, .fd = fds[0], .gen = g->id,
                                     .started = now_ms() };
    log_info("worker %ld started (config %u)", (long)pid, g->id);
    return 0;
}

/* Start n workers of g; the ones that could not start are counted as missing. */
static int
spawn_n(struct master *m, struct generation *g, int n)
{
    for (int i = 0; i < n; i++) {
        int rc = spawn(m, g);

        if (rc < 0) {
            log_error("cannot start a worker: %s", weft_strerror(rc));
            return n - i;
        }
    }
    return 0;
}

/*
 * Signal the workers of generation gen (or all). SIGTERM drains a worker
 * within shutdown_timeout, and bounds so a retiring one; SIGUSR2 retires one
 * (a reload), within reload_timeout if set. Neither goes twice to a worker
 * already draining: a second SIGTERM would make it abort.
 */
static void
signal_procs(struct master *m, int sig, unsigned gen, bool all)
{
    const struct conf_global *g = &m->cur->conf->g;
    uint64_t now = now_ms();

    for (size_t i = 0; i < m->nprocs; i++) {
        struct proc *p = &m->procs[i];

        if (!all && p->gen != gen)
            continue;
        if ((sig == SIGTERM || sig == SIGUSR2) && p->draining && !(sig == SIGTERM && p->retiring))
            continue;
        kill(p->pid, sig);
        if (sig == SIGTERM) {
            uint64_t at = now + g->shutdown_ms + KILL_GRACE_MS;

            if (p->kill_at == 0 || at < p->kill_at)
                p->kill_at = at;
            p->draining = true;
            p->retiring = false;
        } else if (sig == SIGUSR2) {
            p->draining = p->retiring = true;
            p->kill_at = g->reload_ms != 0 ? now + g->reload_ms + KILL_GRACE_MS : 0;
        }
    }
}

static void
update_status(struct master *m, bool force)
{
    char line[160];
    uint64_t now = now_ms();
    size_t nw = 0;

    if (!force && now < m->status_at)
        return;
    if (m->nnotify > 0 || !m->started)
        return;         /* what must arrive goes first; and no counts before READY=1 */
    for (size_t i = 0; i < m->nprocs; i++)
        nw += m->procs[i].ready && !m->procs[i].draining;
    snprintf(line, sizeof(line), "%llu connection%s, %zu worker%s, config %u%s",
             (unsigned long long)total_conns(m), total_conns(m) == 1 ? "" : "s", nw,
             nw == 1 ? "" : "s", m->cur->id, m->stopping ? ", stopping" : "");
    if ((force || strcmp(line, m->status_line) != 0) && sdnotify("STATUS=%s", line) >= 0)
        snprintf(m->status_line, sizeof(m->status_line), "%s", line);
    m->status_at = now + STATUS_MS;
}

static void
begin_stop(struct master *m, const char *why, int status)
{
    uint64_t n = total_conns(m);

    if (m->stopping)
        return;
    m->stopping = true;
    m->settling = false;
    m->aborted = 0;
    m->status = status;
    /* The master is gone at most shutdown_timeout + KILL_GRACE_MS from now: one extension
     * covers it (systemd sets the stop timeout to now + this, if that is later). */
    notify(m, "STOPPING=1\nEXTEND_TIMEOUT_USEC=%llu",
           (unsigned long long)(m->cur->conf->g.shutdown_ms + KILL_GRACE_MS +
                                SDNOTIFY_EXTEND_MARGIN_MS) * 1000ull);
    /* The count is what the workers last reported (within STATUS_TICK_MS); each worker
     * that has connections says how many it drains, exactly, when it gets our SIGTERM. */
    char d[LOG_DURATION_LEN];
    /* A signal's name is what aborts them if sent again; another reason (a worker that
     * failed to start) says which signal does. */
    bool by_signal = strncmp(why, "SIG", 3) == 0;

    log_notice("stopping (%s): no new connections; the open ones (%llu at the last count) "
               "get up to %s to finish; %s%s aborts them", why, (unsigned long long)n,
               log_duration(m->cur->conf->g.shutdown_ms, d), by_signal ? why : "SIGTERM",
               by_signal ? " again" : "");
    signal_procs(m, SIGTERM, 0, true);
    /* Workers drain on their own copies; ours go now, so new clients are refused. */
    listen_pool_unlink(&m->pool);
    listen_pool_free(&m->pool);
    m->stop_kill_at = now_ms() + m->cur->conf->g.shutdown_ms + KILL_GRACE_MS;
    if (m->next != NULL) {
        generation_free(m->next);
        m->next = NULL;
    }
}

/* Tell systemd (and a test) how a reload ended: STATUS first, so it is there at READY=1. */
static void
reload_done(struct master *m, const char *fmt, ...)
{
    char why[200];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    notify(m, "STATUS=%s\nREADY=1", why);
    m->status_line[0] = '\0';         /* the periodic line follows in a second */
    m->status_at = now_ms() + STATUS_MS;
}

/* Workers of generation gen, the draining ones too. */
static size_t
count_gen(const struct master *m, unsigned gen)
{
    size_t n = 0;

    for (size_t i = 0; i < m->nprocs; i++)
        n += m->procs[i].gen == gen;
    return n;
}

/*
 * A reload that failed ends once its workers are gone: whoever sees READY=1
 * sees only the running config's workers. One not ready yet has no
 * connection and gets KILL_GRACE_MS to exit; one ready may have accepted
 * some and drains them as at a stop. Both are bounded by their SIGKILL.
 */
static void
abort_reload(struct master *m, const char *why)
{
    uint64_t now = now_ms(), last = now;

    log_error("reload failed: %s; the running config goes on", why);
    signal_procs(m, SIGTERM, m->next->id, false);
    for (size_t i = 0; i < m->nprocs; i++) {
        struct proc *p = &m->procs[i];

        if (p->gen != m->next->id)
            continue;
        if (!p->ready)
            p->kill_at = now + KILL_GRACE_MS;
        if (p->kill_at > last)
            last = p->kill_at;
    }
    m->aborted = m->next->id;
    snprintf(m->aborted_status, sizeof(m->aborted_status), "reload failed: %s; config %u goes on",
             why, m->cur->id);
    generation_free(m->next);
    m->next = NULL;
    listen_pool_rollback(&m->pool);
    if (last > now)
        notify(m, "EXTEND_TIMEOUT_USEC=%llu",
               (unsigned long long)(last - now + SDNOTIFY_EXTEND_MARGIN_MS) * 1000ull);
}

/* The failed reload's workers are gone (or were SIGKILLed and reaped): it is over. */
static void
settle_abort(struct master *m)
{
    if (m->aborted == 0 || count_gen(m, m->aborted) > 0)
        return;
    m->aborted = 0;
    reload_done(m, "%s", m->aborted_status);
}

/* Old workers still holding listening sockets (they have not said they closed them). */
static size_t
count_open_listeners(const struct master *m)
{
    size_t n = 0;

    for (size_t i = 0; i < m->nprocs; i++)
        n += m->procs[i].draining && !m->procs[i].closed;
    return n;
}

/*
 * The end of a reload: every new worker serves, and no old worker holds a
 * listening socket, so a removed address refuses and a kept one is served
 * by the new config only. Or CLOSE_WAIT_MS passed (an old worker does not
 * handle its signals): say so, and be ready anyway.
 */
static void
settle_reload(struct master *m, uint64_t now)
{
    size_t open = count_open_listeners(m);

    if (open > 0 && now < m->settle_deadline)
        return;
    m->settling = false;
    if (open > 0)
        log_warning("%zu old worker%s did not close %s listening sockets in %d ms", open,
                    open == 1 ? "" : "s", open == 1 ? "its" : "their", CLOSE_WAIT_MS);
    log_notice("reloaded: %zu service%s, %d worker%s (config %u)", m->cur->ss.count,
               m->cur->ss.count == 1 ? "" : "s", m->cur->nworkers,
               m->cur->nworkers == 1 ? "" : "s", m->cur->id);
    reload_done(m, "reloaded (config %u)", m->cur->id);
}

static void
finish_reload(struct master *m)
{
    struct generation *old = m->cur;

    /* Old workers: close listeners, finish their connections (reload_timeout bounds it). */
    signal_procs(m, SIGUSR2, old->id, false);
    m->cur = m->next;
    m->next = NULL;
    m->missing = 0;
    generation_free(old);
    listen_pool_commit(&m->pool);
    for (size_t i = 0; i < m->cur->ss.count; i++)
        for (size_t j = 0; j < m->cur->ss.list[i].nfds; j++)
            listen_pool_mark(&m->pool, m->cur->ss.list[i].fds[j]);
    listen_pool_sweep(&m->pool);
    log_set_level(m->cur->conf->g.log_level);
    m->settling = true;
    m->settle_deadline = now_ms() + CLOSE_WAIT_MS;
    settle_reload(m, now_ms());
}

static void
reload(struct master *m)
{
    struct generation *g;
    struct config *conf = NULL;
    int rc, left;

    if (m->stopping)
        return;
    if (m->next != NULL || m->settling || m->aborted != 0) {
        /* The file may have changed again since this reload read it: read it once more
         * when this one is done (several SIGHUPs meanwhile make one reload). */
        if (!m->reload_pending)
            log_notice("SIGHUP during a reload: another follows it");
        m->reload_pending = true;
        return;
    }
    /* READY=1 ends it within RELOAD_START_MS (new workers) + CLOSE_WAIT_MS (old ones close
     * their listeners); reload_timeout runs after it. */
    notify(m, "RELOADING=1\nMONOTONIC_USEC=%llu\nEXTEND_TIMEOUT_USEC=%llu",
           sdnotify_monotonic_usec(),
           (unsigned long long)(RELOAD_START_MS + CLOSE_WAIT_MS + SDNOTIFY_EXTEND_MARGIN_MS) *
               1000ull);
    log_notice("reloading %s (SIGHUP)", m->file);
    rc = config_load(m->file, &conf);
    if (conf == NULL) {
        log_error("%s: out of memory; the running config goes on", m->file);
        reload_done(m, "reload failed: out of memory; config %u goes on", m->cur->id);
        return;
    }
    g = generation_new(m, conf);
    if (g == NULL) {
        config_free(conf);
        log_error("%s: out of memory; the running config goes on", m->file);
        reload_done(m, "reload failed: out of memory; config %u goes on", m->cur->id);
        return;
    }
    if (rc != -ENOMEM && (rc == 0 || rc == -WEFT_ECONFIG))
        rc = services_prepare(&g->ss, conf, m->plugin_dir, &m->pool);
    if (rc != -ENOMEM && !conf->oom)
        master_check_config(conf);
    if (rc == -ENOMEM || conf->oom || conf->nerrors > 0) {
        bool oom = rc == -ENOMEM || conf->oom;
        size_t nerrors = conf->nerrors;

        if (oom)
            log_error("%s: out of memory", m->file);
        else
            report_errors(conf, "the running config goes on");
        m->last_gen--;          /* the number goes to the next config that works */
        generation_free(g);
        listen_pool_rollback(&m->pool);
        if (oom)
            reload_done(m, "reload failed: out of memory; config %u goes on", m->cur->id);
        else
            reload_done(m, "reload failed: %s: %zu error%s; config %u goes on", m->file,
                        nerrors, nerrors == 1 ? "" : "s", m->cur->id);
        return;
    }
    m->next = g;
    m->next_deadline = now_ms() + RELOAD_START_MS;
    services_log_listeners(&g->ss);
    left = spawn_n(m, g, g->nworkers);
    if (left > 0)
        abort_reload(m, "cannot start the new workers");
}

static void
read_status(struct master *m, struct proc *p)
{
    struct worker_msg msg;
    ssize_t n;

    while ((n = read(p->fd, &msg, sizeof(msg))) == (ssize_t)sizeof(msg)) {
        if (msg.type == WORKER_MSG_READY) {
            p->ready = true;
            if (m->started && m->cur != NULL && p->gen == m->cur->id)
                log_info("worker %ld ready (config %u)", (long)p->pid, p->gen);
        } else if (msg.type == WORKER_MSG_CONNS) {
            p->conns = msg.value;
        } else if (msg.type == WORKER_MSG_CLOSED) {
            p->closed = true;
        }
    }
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        close(p->fd);
        p->fd = -1;
        p->conns = 0;
        p->closed = true;       /* the process is gone, its sockets with it */
    }
}

/* "SIGTERM": the name a sysadmin types, not strsignal's "Terminated". */
static const char *
signal_name(int sig)
{
    static char buf[16];
    const char *abbrev = sigabbrev_np(sig);

    snprintf(buf, sizeof(buf), "SIG%s", abbrev ? abbrev : "?");
    return buf;
}

/* A worker that ended this way did it by itself (its code exited or crashed), not killed. */
static bool
died_by_itself(int wstatus)
{
    if (WIFEXITED(wstatus))
        return true;
    switch (WTERMSIG(wstatus)) {
    case SIGSEGV: case SIGBUS: case SIGILL: case SIGFPE: case SIGABRT: case SIGTRAP:
    case SIGSYS:
        return true;
    default:
        return false;   /* SIGKILL, SIGTERM...: someone (the OOM killer, a sysadmin) sent it */
    }
}

static void
on_exit_status(struct master *m, pid_t pid, int wstatus)
{
    struct proc p;
    size_t i;
    char how[64];
    bool expected;

    for (i = 0; i < m->nprocs && m->procs[i].pid != pid; i++)
        ;
    if (i == m->nprocs)
        return;
    /* What it wrote before it died counts (did it become ready?): poll may not have said. */
    if (m->procs[i].fd >= 0)
        read_status(m, &m->procs[i]);
    p = m->procs[i];
    if (p.fd >= 0)
        close(p.fd);
    m->procs[i] = m->procs[--m->nprocs];
    if (WIFSIGNALED(wstatus))
        snprintf(how, sizeof(how), "killed by %s", signal_name(WTERMSIG(wstatus)));
    else
        snprintf(how, sizeof(how), "exited with status %d", WEXITSTATUS(wstatus));
    expected = m->stopping || p.draining;
    if (expected) {
        if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0)
            log_info("worker %ld finished", (long)pid);
        else
            log_warning("worker %ld %s while stopping", (long)pid, how);
        return;
    }
    if (m->next != NULL && p.gen == m->next->id && !p.ready) {
        log_error("new worker %ld %s before it was ready", (long)pid, how);
        abort_reload(m, "a new worker died");
        return;
    }
    if (!m->started && !p.ready && died_by_itself(wstatus)) {
        /* Its config cannot be served (a plugin's start failed...): another would too. */
        log_error("worker %ld %s before it was ready", (long)pid, how);
        begin_stop(m, "a worker failed to start", 1);
        return;
    }
    if (m->cur == NULL || p.gen != m->cur->id)
        return;
    m->missing++;
    if (now_ms() - p.started < CRASH_LOOP_MS) {
        m->restart_at = now_ms() + CRASH_DELAY_MS;
        log_warning("worker %ld %s %llu ms after it started%s; starting another in %d ms",
                    (long)pid, how, (unsigned long long)(now_ms() - p.started),
                    p.ready ? "" : ", before it was ready", CRASH_DELAY_MS);
    } else {
        log_warning("worker %ld %s%s; starting another", (long)pid, how,
                    p.ready ? "" : " before it was ready");
        if (m->restart_at < now_ms())
            m->restart_at = now_ms();
    }
}

static void
reap(struct master *m)
{
    int wstatus;
    pid_t pid;

    while ((pid = waitpid(-1, &wstatus, WNOHANG)) > 0)
        on_exit_status(m, pid, wstatus);
}

/*
 * The master's copy of a generation's log files, reopened as the user its
 * workers run as: the workers they start later inherit it, and a file it
 * creates is one those workers can open too.
 */
static void
reopen_generation(struct generation *g)
{
    gid_t egid = getegid();

    if (g == NULL)
        return;
    if (g->drop && (setegid(g->gid) < 0 || seteuid(g->uid) < 0)) {
        log_error("cannot reopen log files as user %s: %s", g->conf->g.user, strerror(errno));
        if (setegid(egid) < 0)
            log_error("setegid: %s", strerror(errno));
        return;
    }
    services_reopen(&g->ss);
    if (g->drop && (seteuid(0) < 0 || setegid(egid) < 0))
        log_error("cannot switch back to root after reopening log files: %s", strerror(errno));
}

static void
reopen_logs(struct master *m)
{
    log_notice("reopening log files (SIGUSR1)");
    reopen_generation(m->cur);
    reopen_generation(m->next);
    /* Every worker, the draining ones too: they still log their last requests. */
    signal_procs(m, SIGUSR1, 0, true);
}

static void
on_signal(struct master *m, int sig)
{
    switch (sig) {
    case SIGCHLD:
        reap(m);
        break;
    case SIGHUP:
        reload(m);
        break;
    case SIGUSR1:
        reopen_logs(m);
        break;
    case SIGUSR2:
        break;          /* blocked only so that workers start with it blocked */
    case SIGTERM:
    case SIGINT:
    case SIGQUIT:
        if (m->stopping) {
            log_notice("second %s: aborting every open connection now", signal_name(sig));
            signal_procs(m, SIGQUIT, 0, true);
        } else {
            begin_stop(m, signal_name(sig), 0);
        }
        break;
    }
}

static void
timers(struct master *m)
{
    uint64_t now = now_ms();

    for (size_t i = 0; i < m->nprocs; i++) {
        struct proc *p = &m->procs[i];

        if (p->kill_at != 0 && now >= p->kill_at) {
            log_warning("worker %ld still running after %s: SIGKILL", (long)p->pid,
                        p->retiring ? "reload_timeout" : "shutdown_timeout");
            kill(p->pid, SIGKILL);
            p->kill_at = 0;
        }
    }
    notify_flush(m);
    if (m->stopping && !m->stop_closed && count_open_listeners(m) == 0) {
        uint64_t n = total_conns(m);

        /* From here on every connection attempt is refused. */
        m->stop_closed = true;
        log_notice("stopping: not accepting any more; %llu connection%s left",
                   (unsigned long long)n, n == 1 ? "" : "s");
    }
    if (m->stopping)
        return;
    if (m->missing > 0 && now >= m->restart_at)
        m->missing = spawn_n(m, m->cur, m->missing);
    if (m->missing > 0 && now >= m->restart_at)
        m->restart_at = now + CRASH_DELAY_MS;       /* fork failed: try again later */
    if (!m->started && count_procs(m, m->cur->id, true) >= (size_t)m->cur->nworkers) {
        m->started = true;
        log_notice("ready: %zu service%s, %d worker%s", m->cur->ss.count,
                   m->cur->ss.count == 1 ? "" : "s", m->cur->nworkers,
                   m->cur->nworkers == 1 ? "" : "s");
        notify(m, "READY=1\nMAINPID=%ld", (long)getpid());
        update_status(m, true);
    }
    if (m->settling)
        settle_reload(m, now);
    settle_abort(m);
    if (m->reload_pending && m->next == NULL && !m->settling && m->aborted == 0) {
        m->reload_pending = false;
        reload(m);
    }
    if (m->next != NULL) {
        if (count_procs(m, m->next->id, true) >= (size_t)m->next->nworkers)
            finish_reload(m);
        else if (now >= m->next_deadline)
            abort_reload(m, "the new workers were not ready in time");
    }
    update_status(m, false);
}

static int
master_loop(struct master *m)
{
    struct pollfd *pfd = NULL;

    while (!(m->stopping && m->nprocs == 0)) {
        struct pollfd *np = realloc(pfd, (m->nprocs + 1) * sizeof(*np));
        size_t n = 1;
        int timeout, rc;

        if (np == NULL) {
            poll(NULL, 0, 100);     /* out of memory: wait, the workers go on */
            continue;
        }
        pfd = np;
        pfd[0] = (struct pollfd){ .fd = m->sigfd, .events = POLLIN };
        for (size_t i = 0; i < m->nprocs; i++)
            if (m->procs[i].fd >= 0)
                pfd[n++] = (struct pollfd){ .fd = m->procs[i].fd, .events = POLLIN };
        timeout = (m->missing > 0 || m->stopping || m->next != NULL || !m->started ||
                   m->settling || m->aborted != 0 || m->nnotify > 0) ? 50 : 500;
        rc = poll(pfd, n, timeout);
        if (rc < 0 && errno != EINTR) {
            log_error("poll: %s", strerror(errno));
            break;
        }
        for (size_t k = 1; rc > 0 && k < n; k++) {
            if (pfd[k].revents == 0)
                continue;
            for (size_t i = 0; i < m->nprocs; i++)
                if (m->procs[i].fd == pfd[k].fd)
                    read_status(m, &m->procs[i]);
        }
        if (rc > 0 && (pfd[0].revents & POLLIN)) {
            struct signalfd_siginfo si;

            while (read(m->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
                on_signal(m, (int)si.ssi_signo);
        }
        reap(m);        /* SIGCHLDs coalesce: look every time */
        timers(m);
    }
    free(pfd);
    return m->status;
}

int
master_run(const char *file, const char *plugin_dir_flag, struct config *conf,
           struct services *ss, struct listen_pool *pool)
{
    struct master m = { .file = file, .plugin_dir = plugin_dir_flag, .pid = getpid(),
                        .sigfd = -1 };
    sigset_t mask, old;
    int status;

    m.pool = *pool;
    memset(pool, 0, sizeof(*pool));
    m.cur = generation_new(&m, conf);
    if (m.cur == NULL) {
        log_error("out of memory");
        services_free(ss);
        config_free(conf);
        listen_pool_unlink(&m.pool);
        listen_pool_free(&m.pool);
        return 1;
    }
    m.cur->ss = *ss;
    memset(ss, 0, sizeof(*ss));
    listen_pool_commit(&m.pool);

    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGQUIT);
    sigaddset(&mask, SIGUSR1);
    sigaddset(&mask, SIGUSR2);
    sigprocmask(SIG_BLOCK, &mask, &old);

    if (m.cur->nworkers == 0) {
        int rc = services_take_fds(&m.cur->ss);

        listen_pool_close(&m.pool);     /* its socket files go when we stop, below */
        if (rc < 0) {
            log_error("cannot take the listening sockets: %s", weft_strerror(rc));
            status = 1;
        } else {
            status = worker_run(&m.cur->ss, &m.cur->conf->g, -1);
            memset(&m.cur->ss, 0, sizeof(m.cur->ss));
        }
        goto out;
    }
    m.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (m.sigfd < 0) {
        log_error("signalfd: %s", strerror(errno));
        status = 1;
        goto out;
    }
    services_log_listeners(&m.cur->ss);
    m.missing = spawn_n(&m, m.cur, m.cur->nworkers);
    if (m.missing == m.cur->nworkers) {
        log_error("no worker could start");
        status = 1;
        goto out;
    }
    m.restart_at = now_ms() + CRASH_LOOP_MS;
    status = master_loop(&m);
out:
    if (m.sigfd >= 0)
        close(m.sigfd);
    for (size_t i = 0; i < m.nprocs; i++) {      /* only after a poll failure */
        kill(m.procs[i].pid, SIGKILL);
        waitpid(m.procs[i].pid, NULL, 0);
        if (m.procs[i].fd >= 0)
            close(m.procs[i].fd);
    }
    free(m.procs);
    notify_flush(&m);
    for (size_t i = 0; i < m.nnotify; i++)
        free(m.notify_queue[i]);
    listen_pool_unlink(&m.pool);
    listen_pool_free(&m.pool);
    generation_free(m.next);
    generation_free(m.cur);
    sigprocmask(SIG_SETMASK, &old, NULL);
    log_notice("stopped");
    return status;
}
