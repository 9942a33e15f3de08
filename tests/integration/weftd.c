/* SPDX-License-Identifier: MIT */
/* weftd.c: run the real weftd on test ports, told by its notify socket when it is ready. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "weftd.h"

#define MAX_COPIES 64
#define START_TRIES 5

/*
 * What the harness keeps of each weftd it started, apart from the caller's
 * struct: a failed assertion longjmps out of the test, and the struct may be
 * on that test's stack. itest_teardown() and the atexit handler walk these.
 */
struct copy {
    bool used;
    bool shared;
    pid_t pid;                  /* the master, and its process group; 0 once reaped */
    int pidfd;                  /* readable once the master has exited; -1 if none */
    int notify_fd;              /* our end of weftd's NOTIFY_SOCKET; -1 if none */
    char dir[64];
    char err[128];
    char cmd[512];              /* the command line, for the report */
    char **msgs;                /* every datagram, in order */
    int nmsgs, capmsgs;
};

static struct copy copies[MAX_COPIES];
static bool atexit_set;

static int
status_of(int wstatus)
{
    if (WIFEXITED(wstatus))
        return WEXITSTATUS(wstatus);
    if (WIFSIGNALED(wstatus))
        return 128 + WTERMSIG(wstatus);
    return 255;
}

/* Timeouts stretch under $WEFTD_WRAPPER (valgrind starts and serves 20-50x slower). */
static int
long_ms(void)
{
    const char *wrap = getenv("WEFTD_WRAPPER");

    return wrap != NULL && *wrap != '\0' ? 180000 : 60000;
}

uint64_t
itest_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void
itest_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int
ms_left(uint64_t end)
{
    uint64_t now = itest_now_ms();

    return now >= end ? 0 : (int)(end - now);
}

static struct copy *
copy_of(const struct weftd *w)
{
    if (w->id == 0 || w->id > MAX_COPIES || !copies[w->id - 1].used)
        return NULL;
    return &copies[w->id - 1];
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* ---- the notify socket ---- */

static int
notify_bind(struct weftd *w, struct copy *c, const char *name)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    int fd, big = 1 << 20;
    size_t len;

    if (name == NULL)
        snprintf(w->notify, sizeof(w->notify), "%s/notify", w->dir);
    else
        snprintf(w->notify, sizeof(w->notify), "%s", name);
    len = strlen(w->notify);
    if (len >= sizeof(sun.sun_path))
        return -ENAMETOOLONG;
    memcpy(sun.sun_path, w->notify, len);
    if (w->notify[0] == '@')
        sun.sun_path[0] = '\0';
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    if (bind(fd, (struct sockaddr *)&sun,
             (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0) {
        int rc = -errno;

        close(fd);
        return rc;
    }
    c->notify_fd = fd;
    return 0;
}

/* Take every datagram queued on the notify socket. */
static void
drain(struct copy *c)
{
    if (c == NULL || c->notify_fd < 0)
        return;
    for (;;) {
        char buf[4096];
        ssize_t n = recv(c->notify_fd, buf, sizeof(buf) - 1, 0);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return;
        buf[n] = '\0';
        if (c->nmsgs == c->capmsgs) {
            int cap = c->capmsgs ? c->capmsgs * 2 : 32;
            char **nm = realloc(c->msgs, (size_t)cap * sizeof(*nm));

            if (nm == NULL)
                abort();
            c->msgs = nm;
            c->capmsgs = cap;
        }
        if ((c->msgs[c->nmsgs] = strdup(buf)) == NULL)
            abort();
        c->nmsgs++;
    }
}

int
weftd_notify_count(struct weftd *w)
{
    struct copy *c = copy_of(w);

    drain(c);
    return c != NULL ? c->nmsgs : 0;
}

const char *
weftd_notify_text(struct weftd *w, int i)
{
    struct copy *c = copy_of(w);

    drain(c);
    if (c == NULL || i < 0 || i >= c->nmsgs)
        return NULL;
    return c->msgs[i];
}

void
weftd_notify_skip(struct weftd *w)
{
    w->seen = weftd_notify_count(w);
}

/* ---- the process ---- */

/* Reap the master if it has exited (WNOHANG); true once it is reaped. Before reaping, the
 * whole process group gets SIGKILL: the zombie master still holds the group id. */
static bool
reap(struct weftd *w)
{
    struct copy *c = copy_of(w);
    siginfo_t si = { 0 };
    int wstatus;

    if (w->pid <= 0)
        return true;
    if (waitid(P_PID, (id_t)w->pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0)
        return false;
    kill(-w->pid, SIGKILL);
    if (waitpid(w->pid, &wstatus, 0) != w->pid)
        return false;
    w->status = status_of(wstatus);
    w->pid = 0;
    if (c != NULL) {
        c->pid = 0;
        if (c->pidfd >= 0)
            close(c->pidfd);
        c->pidfd = -1;
    }
    return true;
}

/*
 * Wait until ms pass, the master exits, or (if want_notify) a datagram arrives, or (if
 * watch >= 0) that inotify fd is readable. Returns false only if ms passed with nothing.
 */
static bool
wait_event(struct weftd *w, int ms, bool want_notify, int watch)
{
    struct copy *c = copy_of(w);
    struct pollfd p[3];
    int n = 0, slice = ms;

    if (c != NULL && c->pidfd >= 0)
        p[n++] = (struct pollfd){ c->pidfd, POLLIN, 0 };
    else if (slice > 50)
        slice = 50;     /* no pidfd (old kernel): look at waitid now and then */
    if (want_notify && c != NULL && c->notify_fd >= 0)
        p[n++] = (struct pollfd){ c->notify_fd, POLLIN, 0 };
    if (watch >= 0)
        p[n++] = (struct pollfd){ watch, POLLIN, 0 };
    for (;;) {
        int r = poll(p, (nfds_t)n, slice);

        if (r < 0 && errno == EINTR)
            continue;
        return reap(w) || r > 0 || slice < ms;
    }
}

int
weftd_wait(struct weftd *w, int timeout_ms)
{
    uint64_t end = itest_now_ms() + (uint64_t)timeout_ms;

    for (;;) {
        if (reap(w))
            return w->status;
        if (ms_left(end) == 0)
            return -ETIMEDOUT;
        wait_event(w, ms_left(end), false, -1);
    }
}

static const char *
weftd_path(void)
{
    const char *p = getenv("WEFTD");

    return p != NULL && *p != '\0' ? p : "weftd";
}

/*
 * execv argv, prefixed with the words of $WEFTD_WRAPPER if set (e.g. "valgrind
 * --leak-check=full ...", from tests/valgrind.sh), and before them with prefix (a
 * command such as setpriv): each execs the next in place, so the pid stays weftd's.
 */
static void
exec_wrapped(const char *const *argv, const char *const *prefix)
{
    const char *wrap = getenv("WEFTD_WRAPPER");
    const char *full[96];
    char *words = NULL, *save = NULL;
    int n = 0;

    for (int i = 0; prefix != NULL && prefix[i] != NULL && n < 32; i++)
        full[n++] = prefix[i];
    if (n == 0 && (wrap == NULL || *wrap == '\0' || (words = strdup(wrap)) == NULL)) {
        execv(argv[0], (char *const *)argv);
        return;
    }
    if (words == NULL && wrap != NULL && *wrap != '\0' && (words = strdup(wrap)) == NULL)
        _exit(127);
    for (char *t = words ? strtok_r(words, " ", &save) : NULL; t != NULL && n < 63;
         t = strtok_r(NULL, " ", &save))
        full[n++] = t;
    for (int i = 0; argv[i] != NULL && n < 95; i++)
        full[n++] = argv[i];
    full[n] = NULL;
    execvp(full[0], (char *const *)full);
}

/* Child side: own process group, SIGKILL when the test dies, stdio to files, exec. */
static void
child(const struct weftd *w, const char *const *argv, const struct weftd_opts *o, pid_t parent)
{
    int out, err, null;

    setpgid(0, 0);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
        _exit(125);
    out = open(w->out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    err = open(w->err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    null = open("/dev/null", O_RDONLY);
    if (out < 0 || err < 0 || null < 0)
        _exit(126);
    dup2(null, 0);
    dup2(out, 1);
    dup2(err, 2);
    setenv("NOTIFY_SOCKET", w->notify, 1);
    for (int i = 0; o != NULL && o->env != NULL && o->env[i] != NULL; i++)
        putenv((char *)o->env[i]);
    exec_wrapped(argv, o != NULL ? o->prefix : NULL);
    _exit(127);
}

static void cleanup_at_exit(void);

/* A registry record and a temp dir for w (zeroed before). */
static int
prepare(struct weftd *w, const struct weftd_opts *o)
{
    struct copy *c = NULL;
    int rc;

    memset(w, 0, sizeof(*w));
    for (int i = 0; i < MAX_COPIES; i++)
        if (!copies[i].used) {
            c = &copies[i];
            w->id = (unsigned)i + 1;
            break;
        }
    if (c == NULL)
        return -EMFILE;
    *c = (struct copy){ .used = true, .pidfd = -1, .notify_fd = -1 };
    if (!atexit_set) {
        atexit(cleanup_at_exit);
        atexit_set = true;
    }
    snprintf(w->dir, sizeof(w->dir), "/tmp/weftd-test.XXXXXX");
    /* 0755: as root with no user set, weftd's workers run as nobody and read files here. */
    if (mkdtemp(w->dir) == NULL || chmod(w->dir, 0755) < 0) {
        rc = -errno;
        w->dir[0] = '\0';
        c->used = false;
        w->id = 0;
        return rc;
    }
    snprintf(c->dir, sizeof(c->dir), "%s", w->dir);
    snprintf(w->conf, sizeof(w->conf), "%s/weftd.conf", w->dir);
    snprintf(w->out, sizeof(w->out), "%s/stdout", w->dir);
    snprintf(w->err, sizeof(w->err), "%s/stderr", w->dir);
    snprintf(c->err, sizeof(c->err), "%s", w->err);
    return notify_bind(w, c, o != NULL ? o->notify : NULL);
}

static int
spawn(struct weftd *w, const char *const *argv, const struct weftd_opts *o)
{
    struct copy *c = copy_of(w);
    pid_t parent = getpid(), pid;
    size_t used = 0;

    fflush(NULL);
    pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0)
        child(w, argv, o, parent);
    setpgid(pid, pid);      /* also here: no race with a kill(-pid) right after */
    w->pid = pid;
    c->pid = pid;
    c->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    c->cmd[0] = '\0';
    for (int i = 0; argv[i] != NULL && used + 2 < sizeof(c->cmd); i++) {
        int n = snprintf(c->cmd + used, sizeof(c->cmd) - used, "%s%s", i ? " " : "", argv[i]);

        if (n < 0)
            break;
        used += (size_t)n;
    }
    return 0;
}

/* Expand %PORT%, %PORTn% with test ports and write the config file. */
static int
write_config(struct weftd *w, const char *config)
{
    FILE *f;
    const char *p;

    w->nports = 0;
    for (int i = 0; i < WEFTD_MAX_PORTS; i++)
        w->ports[i] = 0;
    f = fopen(w->conf, "w");
    if (f == NULL)
        return -errno;
    for (p = config; *p != '\0'; p++) {
        int idx = -1, skip = 0;

        if (strncmp(p, "%PORT%", 6) == 0) {
            idx = 0;
            skip = 6;
        } else if (strncmp(p, "%PORT", 5) == 0 && p[5] >= '0' && p[5] <= '7' && p[6] == '%') {
            idx = p[5] - '0';
            skip = 7;
        }
        if (idx < 0) {
            fputc(*p, f);
            continue;
        }
        if (w->ports[idx] == 0)
            w->ports[idx] = harness_port();
        if (idx + 1 > w->nports)
            w->nports = idx + 1;
        fprintf(f, "%u", (unsigned)w->ports[idx]);
        p += skip - 1;
    }
    if (fclose(f) != 0)
        return -errno;
    return 0;
}

/*
 * Waits up to ms for a notify message, after those already seen, that match(msg, arg) takes;
 * marks it (and those before it) seen and returns its index, or -ESRCH / -ETIMEDOUT.
 */
static int
wait_message(struct weftd *w, int ms, bool (*match)(const char *msg, const char *arg),
             const char *arg)
{
    struct copy *c = copy_of(w);
    uint64_t end = itest_now_ms() + (uint64_t)ms;

    if (c == NULL)
        return -ESRCH;
    for (;;) {
        drain(c);
        for (int i = w->seen; i < c->nmsgs; i++)
            if (match(c->msgs[i], arg)) {
                w->seen = i + 1;
                return i;
            }
        if (w->pid <= 0)
            return -ESRCH;
        if (ms_left(end) == 0)
            return -ETIMEDOUT;
        wait_event(w, ms_left(end), true, -1);
    }
}

static bool
message_has(const char *msg, const char *needle)
{
    return strstr(msg, needle) != NULL;
}

/* The message's STATUS= line has substring. */
static bool
status_has(const char *msg, const char *substring)
{
    const char *s = strstr(msg, "STATUS=");
    const char *nl = s != NULL ? strchr(s, '\n') : NULL;
    const char *hit = s != NULL ? strstr(s, substring) : NULL;

    return hit != NULL && (nl == NULL || hit < nl);
}

int
weftd_wait_notify(struct weftd *w, const char *needle, int ms)
{
    return wait_message(w, ms, message_has, needle);
}

int
weftd_wait_status(struct weftd *w, const char *substring, int ms)
{
    return wait_message(w, ms, status_has, substring);
}

int
weftd_start_with(struct weftd *w, const char *config, const struct weftd_opts *o)
{
    const char *argv[32];
    int rc, n = 0;

    rc = prepare(w, o);
    if (rc < 0)
        return rc;
    argv[n++] = weftd_path();
    argv[n++] = "-c";
    argv[n++] = w->conf;
    for (int i = 0; o != NULL && o->args != NULL && o->args[i] != NULL && n < 31; i++)
        argv[n++] = o->args[i];
    argv[n] = NULL;

    for (int attempt = 0; attempt < START_TRIES; attempt++) {
        char *err;
        bool in_use;

        if ((rc = write_config(w, config)) < 0 || (rc = spawn(w, argv, o)) < 0)
            return rc;
        if (o != NULL && o->no_wait)
            return 0;
        rc = weftd_wait_notify(w, "READY=1", long_ms());
        if (rc >= 0)
            return 0;
        if (rc == -ETIMEDOUT) {
            weftd_stop(w, SIGKILL);
            return -ETIMEDOUT;
        }
        /* It exited. A process outside the suite took a port between harness_port() and
         * weftd's bind: new ports, new try. Anything else is the caller's to look at. */
        weftd_wait(w, long_ms());
        err = weftd_stderr(w);
        in_use = w->status == 1 && strstr(err, "in use") != NULL;
        free(err);
        if (!in_use)
            return -ESRCH;
        drain(copy_of(w));
        w->seen = weftd_notify_count(w);
    }
    return -ESRCH;
}

int
weftd_start(struct weftd *w, const char *config, const char *const *args)
{
    struct weftd_opts o = { .args = args };

    return weftd_start_with(w, config, &o);
}

int
weftd_run(struct weftd *w, const char *config, const char *const *args)
{
    const char *argv[32];
    int rc, n = 0;

    if ((rc = prepare(w, NULL)) < 0 || (rc = write_config(w, config)) < 0)
        return rc;
    argv[n++] = weftd_path();
    for (int i = 0; args != NULL && args[i] != NULL && n < 31; i++)
        argv[n++] = strcmp(args[i], "%CONF%") == 0 ? w->conf : args[i];
    argv[n] = NULL;
    if ((rc = spawn(w, argv, NULL)) < 0)
        return rc;
    rc = weftd_wait(w, long_ms());
    if (rc == -ETIMEDOUT)
        weftd_stop(w, SIGKILL);
    return rc;
}

int
weftd_reload(struct weftd *w)
{
    const char *text;
    int rc;

    weftd_notify_skip(w);
    if (w->pid <= 0)
        return -ESRCH;
    kill(w->pid, SIGHUP);
    if ((rc = weftd_wait_notify(w, "RELOADING=1", long_ms())) < 0)
        return rc;
    if ((rc = weftd_wait_notify(w, "READY=1", long_ms())) < 0)
        return rc;
    text = weftd_notify_text(w, rc);
    if (strstr(text, "STATUS=reloaded") != NULL)
        return 0;
    if (strstr(text, "STATUS=reload failed") != NULL)
        return WEFTD_RELOAD_FAILED;
    return -EPROTO;
}

int
weftd_stop(struct weftd *w, int sig)
{
    int rc;

    if (w->pid <= 0)
        return w->status;
    kill(w->pid, sig);
    rc = weftd_wait(w, long_ms());
    if (rc == -ETIMEDOUT) {
        kill(-w->pid, SIGKILL);
        weftd_wait(w, long_ms());
    }
    return rc;
}

static char *
read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    size_t len = 0, cap = 0;

    if (f != NULL) {
        char chunk[4096];
        size_t n;

        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
            if (len + n + 1 > cap) {
                char *nb;

                cap = (len + n + 1) * 2;
                nb = realloc(buf, cap);
                if (nb == NULL)
                    abort();
                buf = nb;
            }
            memcpy(buf + len, chunk, n);
            len += n;
        }
        fclose(f);
    }
    if (buf == NULL && (buf = malloc(1)) == NULL)
        abort();
    buf[len] = '\0';
    return buf;
}

char *
weftd_stderr(const struct weftd *w)
{
    return read_file(w->err);
}

bool
weftd_stderr_contains(const struct weftd *w, const char *needle)
{
    char *s = weftd_stderr(w);
    bool found = strstr(s, needle) != NULL;

    free(s);
    return found;
}

/* Kill the group, reap the master, remove the dir, free the record. */
static void
end_copy(struct copy *c)
{
    if (c->pid > 0) {
        int wstatus;

        kill(-c->pid, SIGKILL);
        while (waitpid(c->pid, &wstatus, 0) < 0 && errno == EINTR)
            ;
        kill(-c->pid, SIGKILL);     /* workers forked just before the master died */
    }
    if (c->pidfd >= 0)
        close(c->pidfd);
    if (c->notify_fd >= 0)
        close(c->notify_fd);
    for (int i = 0; i < c->nmsgs; i++)
        free(c->msgs[i]);
    free(c->msgs);
    if (c->dir[0] != '\0')
        nftw(c->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    *c = (struct copy){ .pidfd = -1, .notify_fd = -1 };
}

void
weftd_cleanup(struct weftd *w)
{
    struct copy *c = copy_of(w);

    if (w->pid > 0 && reap(w) == false) {
        kill(-w->pid, SIGKILL);
        weftd_wait(w, long_ms());
    }
    if (c != NULL)
        end_copy(c);
    else if (w->dir[0] != '\0')
        nftw(w->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    w->id = 0;
    w->dir[0] = '\0';
}

void
weftd_share(struct weftd *w)
{
    struct copy *c = copy_of(w);

    if (c != NULL)
        c->shared = true;
}

/* A copy the test left: say so, with what weftd said and wrote, then end it. */
static void
report_and_end(struct copy *c)
{
    char *err = read_file(c->err), *line, *save = NULL;

    drain(c);
    print_message("weftd %ld left running by the test (%s), killed with its group\n",
                  (long)c->pid, c->cmd);
    for (int i = 0; i < c->nmsgs; i++) {
        for (char *p = c->msgs[i]; *p != '\0'; p++)
            if (*p == '\n')
                *p = ' ';
        print_message("weftd %ld notify| %s\n", (long)c->pid, c->msgs[i]);
    }
    for (line = strtok_r(err, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save))
        print_message("weftd %ld| %s\n", (long)c->pid, line);
    free(err);
    end_copy(c);
}

int
itest_teardown(void **state)
{
    (void)state;
    for (int i = 0; i < MAX_COPIES; i++)
        if (copies[i].used && !copies[i].shared)
            report_and_end(&copies[i]);
    return 0;
}

static void
cleanup_at_exit(void)
{
    for (int i = 0; i < MAX_COPIES; i++)
        if (copies[i].used) {
            if (copies[i].pid > 0)
                report_and_end(&copies[i]);
            else
                end_copy(&copies[i]);
        }
}

int
weftd_connect(uint16_t port)
{
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
    int fd, one = 1;

    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
        int rc = -errno;

        close(fd);
        return rc;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

void
weftd_show_stderr(const struct weftd *w)
{
    char *s = weftd_stderr(w);

    print_message("---- weftd stderr ----\n%s----\n", s);
    free(s);
}

void
weftd_start_ok(struct weftd *w, const char *conf)
{
    int rc = weftd_start(w, conf, NULL);

    if (rc != 0) {
        print_message("weftd_start: %d (status %d)\n", rc, w->status);
        weftd_show_stderr(w);
    }
    assert_int_equal(rc, 0);
}

void
weftd_reload_expect(struct weftd *w, int want)
{
    int rc = weftd_reload(w);

    if (rc != want) {
        const char *last = w->seen > 0 ? weftd_notify_text(w, w->seen - 1) : NULL;

        print_message("weftd_reload: %d, wanted %d (last notify: %s)\n", rc, want,
                      last != NULL ? last : "none");
        weftd_show_stderr(w);
    }
    assert_int_equal(rc, want);
}

int
weftd_log_count(const struct weftd *w, const char *needle)
{
    char *s = weftd_stderr(w), *p = s;
    int n = 0;

    while ((p = strstr(p, needle)) != NULL) {
        n++;
        p += strlen(needle);
    }
    free(s);
    return n;
}

bool
weftd_wait_log_count(struct weftd *w, const char *needle, int n, int ms)
{
    uint64_t end = itest_now_ms() + (uint64_t)ms;
    int in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    bool found = false;

    if (in >= 0 && inotify_add_watch(in, w->err, IN_MODIFY) < 0) {
        close(in);
        in = -1;
    }
    for (;;) {
        char buf[4096];

        /* Looked at after the watch is set: a line written in between is not missed. */
        if (weftd_log_count(w, needle) >= n) {
            found = true;
            break;
        }
        if (w->pid <= 0 || ms_left(end) == 0)
            break;
        /* Without inotify, a 20 ms look at the file. */
        wait_event(w, in >= 0 ? ms_left(end) : (ms_left(end) < 20 ? ms_left(end) : 20), false,
                   in);
        while (in >= 0 && read(in, buf, sizeof(buf)) > 0)
            ;
    }
    if (in >= 0)
        close(in);
    if (!found && w->pid <= 0)
        found = weftd_log_count(w, needle) >= n;
    return found;
}

bool
weftd_wait_log(struct weftd *w, const char *needle, int ms)
{
    return weftd_wait_log_count(w, needle, 1, ms);
}

void
itest_set_timeouts(int fd, int ms)
{
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

size_t
itest_read_full(int fd, void *buf, size_t len)
{
    size_t got = 0;

    while (got < len) {
        ssize_t n = read(fd, (char *)buf + got, len - got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    return got;
}

void
itest_write_full(int fd, const void *buf, size_t len)
{
    size_t put = 0;

    while (put < len) {
        ssize_t n = write(fd, (const char *)buf + put, len - put);

        if (n < 0 && errno == EINTR)
            continue;
        assert_true(n > 0);
        put += (size_t)n;
    }
}

int
itest_children_of(pid_t pid, pid_t *out, int max)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL && n < max) {
        char path[300], buf[512], *p;
        long ppid;
        FILE *f;

        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        f = fopen(path, "r");
        if (f == NULL)
            continue;
        if (fgets(buf, sizeof(buf), f) != NULL && (p = strrchr(buf, ')')) != NULL &&
            sscanf(p + 2, "%*c %ld", &ppid) == 1 && ppid == (long)pid)
            out[n++] = (pid_t)atol(e->d_name);
        fclose(f);
    }
    closedir(d);
    return n;
}

/* Process counts and states come from /proc, which tells no one of a change: these two
 * look every 10 ms, and are for what weftd has no message for. */
int
itest_wait_children(pid_t pid, int n, pid_t *out, int ms)
{
    uint64_t end = itest_now_ms() + (uint64_t)ms;
    int got;

    do {
        got = itest_children_of(pid, out, 64);
        if (got == n)
            return got;
        itest_sleep_ms(10);
    } while (itest_now_ms() < end);
    return got;
}

char
itest_proc_state(pid_t pid)
{
    char path[64], buf[512], *p, state = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return 0;
    if (fgets(buf, sizeof(buf), f) != NULL && (p = strrchr(buf, ')')) != NULL && p[1] == ' ')
        state = p[2];
    fclose(f);
    return state;
}

bool
itest_wait_state(pid_t pid, char state, int ms)
{
    uint64_t end = itest_now_ms() + (uint64_t)ms;

    do {
        if (itest_proc_state(pid) == state)
            return true;
        itest_sleep_ms(10);
    } while (itest_now_ms() < end);
    return false;
}
