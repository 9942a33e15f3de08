/* SPDX-License-Identifier: MIT */
/* weftd.c: start the real weftd on free ports with a test config, stop it, read its stderr. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "weftd.h"

#define WAIT_MS 20000

void
itest_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int
status_of(int wstatus)
{
    if (WIFEXITED(wstatus))
        return WEXITSTATUS(wstatus);
    if (WIFSIGNALED(wstatus))
        return 128 + WTERMSIG(wstatus);
    return 255;
}

static int
make_dir(struct weftd *w)
{
    if (w->dir[0] != '\0')
        return 0;
    snprintf(w->dir, sizeof(w->dir), "/tmp/weftd-test.XXXXXX");
    if (mkdtemp(w->dir) == NULL) {
        w->dir[0] = '\0';
        return -errno;
    }
    snprintf(w->conf, sizeof(w->conf), "%s/weftd.conf", w->dir);
    snprintf(w->out, sizeof(w->out), "%s/stdout", w->dir);
    snprintf(w->err, sizeof(w->err), "%s/stderr", w->dir);
    return 0;
}

/* Expand %PORT%, %PORTn% with fresh free ports and write the config file. */
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
            w->ports[idx] = harness_free_port();
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
 * execv argv, prefixed with the words of $WEFTD_WRAPPER if set (e.g. "valgrind
 * --leak-check=full ...", from tests/valgrind.sh): the wrapper execs weftd in
 * place, so the pid stays weftd's.
 */
static void
exec_wrapped(const char *const *argv)
{
    const char *wrap = getenv("WEFTD_WRAPPER");
    const char *full[96];
    char *words, *save = NULL;
    int n = 0;

    if (wrap == NULL || *wrap == '\0' || (words = strdup(wrap)) == NULL) {
        execv(argv[0], (char *const *)argv);
        return;
    }
    for (char *t = strtok_r(words, " ", &save); t != NULL && n < 63;
         t = strtok_r(NULL, " ", &save))
        full[n++] = t;
    for (int i = 0; argv[i] != NULL && n < 95; i++)
        full[n++] = argv[i];
    full[n] = NULL;
    execvp(full[0], (char *const *)full);
}

static pid_t
spawn(struct weftd *w, const char *const *argv)
{
    pid_t pid = fork();

    if (pid == 0) {
        int out = open(w->out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int err = open(w->err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int null = open("/dev/null", O_RDONLY);

        if (out < 0 || err < 0 || null < 0)
            _exit(126);
        dup2(null, 0);
        dup2(out, 1);
        dup2(err, 2);
        exec_wrapped(argv);
        _exit(127);
    }
    return pid;
}

static const char *
weftd_path(void)
{
    const char *p = getenv("WEFTD");

    return p != NULL && *p != '\0' ? p : "weftd";
}

int
weftd_wait(struct weftd *w, int timeout_ms)
{
    int wstatus;

    if (w->pid <= 0)
        return w->status;
    for (int waited = 0;; waited += 10) {
        pid_t r = waitpid(w->pid, &wstatus, WNOHANG);

        if (r == w->pid) {
            w->pid = 0;
            w->status = status_of(wstatus);
            return w->status;
        }
        if (r < 0 && errno != EINTR)
            return -errno;
        if (waited >= timeout_ms)
            return -ETIMEDOUT;
        itest_sleep_ms(10);
    }
}

static bool
port_accepts(uint16_t port)
{
    int fd = weftd_connect(port);

    if (fd < 0)
        return false;
    close(fd);
    return true;
}

int
weftd_start(struct weftd *w, const char *config, const char *const *args)
{
    const char *argv[32];
    int rc, n = 0;

    memset(w, 0, sizeof(*w));
    rc = make_dir(w);
    if (rc < 0)
        return rc;
    argv[n++] = weftd_path();
    argv[n++] = "-c";
    argv[n++] = w->conf;
    for (int i = 0; args != NULL && args[i] != NULL && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;

    for (int attempt = 0; attempt < 5; attempt++) {
        rc = write_config(w, config);
        if (rc < 0)
            return rc;
        w->pid = spawn(w, argv);
        if (w->pid < 0) {
            w->pid = 0;
            return -errno;
        }
        for (int waited = 0; waited < WAIT_MS; waited += 20) {
            if (weftd_wait(w, 0) >= 0)
                break;
            /* Without a port there is nothing to wait for but an exit. */
            if (w->nports > 0 && port_accepts(w->ports[0]))
                return 0;
            itest_sleep_ms(20);
        }
        if (w->pid > 0) {
            weftd_stop(w, SIGKILL);
            return -ETIMEDOUT;
        }
        /* Another process took a port between our probe and weftd's bind. */
        if (!(w->status == 1 && weftd_stderr_contains(w, "in use")))
            return -ESRCH;
    }
    return -ESRCH;
}

int
weftd_run(struct weftd *w, const char *config, const char *const *args)
{
    const char *argv[32];
    int rc, n = 0;

    memset(w, 0, sizeof(*w));
    rc = make_dir(w);
    if (rc < 0)
        return rc;
    rc = write_config(w, config);
    if (rc < 0)
        return rc;
    argv[n++] = weftd_path();
    for (int i = 0; args != NULL && args[i] != NULL && n < 31; i++)
        argv[n++] = strcmp(args[i], "%CONF%") == 0 ? w->conf : args[i];
    argv[n] = NULL;
    w->pid = spawn(w, argv);
    if (w->pid < 0) {
        w->pid = 0;
        return -errno;
    }
    rc = weftd_wait(w, WAIT_MS);
    if (rc == -ETIMEDOUT)
        weftd_stop(w, SIGKILL);
    return rc;
}

int
weftd_stop(struct weftd *w, int sig)
{
    int rc;

    if (w->pid <= 0)
        return w->status;
    kill(w->pid, sig);
    rc = weftd_wait(w, WAIT_MS);
    if (rc == -ETIMEDOUT) {
        kill(w->pid, SIGKILL);
        weftd_wait(w, WAIT_MS);
    }
    return rc;
}

char *
weftd_stderr(const struct weftd *w)
{
    FILE *f = fopen(w->err, "r");
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

bool
weftd_stderr_contains(const struct weftd *w, const char *needle)
{
    char *s = weftd_stderr(w);
    bool found = strstr(s, needle) != NULL;

    free(s);
    return found;
}

void
weftd_cleanup(struct weftd *w)
{
    if (w->pid > 0)
        weftd_stop(w, SIGKILL);
    if (w->dir[0] == '\0')
        return;
    unlink(w->conf);
    unlink(w->out);
    unlink(w->err);
    rmdir(w->dir);
    w->dir[0] = '\0';
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

    print_message("---- weftd stderr ----\n%s----\n", s != NULL ? s : "(unreadable)\n");
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

bool
weftd_wait_log(const struct weftd *w, const char *needle, int ms)
{
    uint64_t end = itest_now_ms() + (uint64_t)ms;

    do {
        if (weftd_stderr_contains(w, needle))
            return true;
        itest_sleep_ms(20);
    } while (itest_now_ms() < end);
    return false;
}

int
weftd_log_count(const struct weftd *w, const char *needle)
{
    char *s = weftd_stderr(w), *p = s;
    int n = 0;

    assert_non_null(s);
    while ((p = strstr(p, needle)) != NULL) {
        n++;
        p += strlen(needle);
    }
    free(s);
    return n;
}

uint64_t
itest_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
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

int
itest_wait_children(pid_t pid, int n, pid_t *out, int ms)
{
    uint64_t end = itest_now_ms() + (uint64_t)ms;
    int got;

    do {
        got = itest_children_of(pid, out, 64);
        if (got == n)
            return got;
        itest_sleep_ms(20);
    } while (itest_now_ms() < end);
    return got;
}
