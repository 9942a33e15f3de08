/* SPDX-License-Identifier: MIT */
/* weft-supervise.c: run one command for a test script, in its own process group, with a
 * notify socket, and report what it says and how it ends as lines a shell can `read`.
 *
 *   weft-supervise [-n NOTIFY_PATH] [-o OUT]... [-s] [-e] -- CMD ARGS...
 *   weft-supervise -B PORT...
 *
 * Lines (line-buffered; to every -o OUT, or to stdout without -o):
 *   PID=<pid>         the command's pid (also its process group id)
 *   <FIELD>=<value>   one line per field of every datagram on the notify socket
 *                     (READY=1, STATUS=..., RELOADING=1, STOPPING=1, MAINPID=...)
 *   OUT=<line>        with -s, a line of the command's stdout; ERR=<line>: stderr, with -e
 *   EXIT=<status>     the command's exit status, or 128 + the signal that killed it
 *   LEFTOVER=<n>      after EXIT, n processes of its group were still alive (all SIGKILLed)
 *   KILLED=<signal>   this program got SIGTERM, SIGINT or SIGHUP (or its parent died):
 *                     the whole group is SIGKILLed, then EXIT= follows
 *   DONE              the last line: nothing more comes
 *
 * Why: tests learn that a daemon is ready, reloaded or stopping from the daemon itself
 * (sd_notify), and nothing a test starts may outlive it. The command gets
 * PR_SET_PDEATHSIG SIGKILL; this program asks for SIGTERM when its own parent (the test
 * shell) dies, so a SIGKILLed test (a ctest timeout) still takes its whole group down.
 *
 * Outputs are written without blocking, from a queue: a shell that is not reading (its
 * FIFO is full) never stops us draining the notify socket, whose queue holds only
 * net.unix.max_dgram_qlen (10) datagrams.
 *
 * -B PORT...: print each PORT that binds on 127.0.0.1 right now (SO_REUSEADDR, closed at
 * once), one a line: the shell's port allocator checks a block of ports with one exec.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <arpa/inet.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_OUTS 4
#define QUEUE_MAX (16u << 20)   /* a reader gone for good: stop queueing, count what is lost */
#define LINE_MAX_BYTES 4096

struct out {
    int fd;
    const char *name;
    char *buf;
    size_t len, cap;
    size_t lost;
    bool broken;
};

/* A child's stdout or stderr, split into lines. */
struct stream {
    int fd;
    const char *tag;
    char buf[LINE_MAX_BYTES];
    size_t len;
};

static struct out outs[MAX_OUTS];
static size_t nouts;
static const char *prog = "weft-supervise";

static void
die(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(125);
}

static void
usage(void)
{
    fprintf(stderr,
            "usage: %s [-n NOTIFY_PATH] [-o OUT]... [-s] [-e] -- CMD ARGS...\n"
            "       %s -B PORT...\n", prog, prog);
    exit(2);
}

/* Queue bytes for every output, then write what each takes now. */
static void
flush_out(struct out *o)
{
    while (o->len > 0 && !o->broken) {
        ssize_t n = write(o->fd, o->buf, o->len);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return;
            fprintf(stderr, "%s: writing to %s: %s; its lines are dropped from now on\n",
                    prog, o->name, strerror(errno));
            o->broken = true;
            o->len = 0;
            return;
        }
        memmove(o->buf, o->buf + n, o->len - (size_t)n);
        o->len -= (size_t)n;
    }
}

static void
emit(const char *fmt, ...)
{
    char line[LINE_MAX_BYTES + 64];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    for (size_t i = 0; i < nouts; i++) {
        struct out *o = &outs[i];

        if (o->broken)
            continue;
        if (o->len + (size_t)n > QUEUE_MAX) {
            o->lost++;
            continue;
        }
        if (o->len + (size_t)n > o->cap) {
            size_t cap = o->cap ? o->cap * 2 : 8192;
            char *b;

            while (cap < o->len + (size_t)n)
                cap *= 2;
            b = realloc(o->buf, cap);
            if (b == NULL) {
                o->lost++;
                continue;
            }
            o->buf = b;
            o->cap = cap;
        }
        memcpy(o->buf + o->len, line, (size_t)n);
        o->len += (size_t)n;
        flush_out(o);
    }
}

/* At exit: give a slow reader up to 5 s to take the rest. */
static void
drain_outs(void)
{
    struct timespec t0, t;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct pollfd p[MAX_OUTS];
        nfds_t np = 0;
        long left;

        for (size_t i = 0; i < nouts; i++) {
            if (outs[i].lost > 0 && !outs[i].broken) {
                size_t lost = outs[i].lost;

                outs[i].lost = 0;
                fprintf(stderr, "%s: %s: %zu lines lost (nobody read them)\n", prog,
                        outs[i].name, lost);
            }
            flush_out(&outs[i]);
            if (outs[i].len > 0 && !outs[i].broken)
                p[np++] = (struct pollfd){ .fd = outs[i].fd, .events = POLLOUT };
        }
        if (np == 0)
            return;
        clock_gettime(CLOCK_MONOTONIC, &t);
        left = 5000 - ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
        if (left <= 0) {
            fprintf(stderr, "%s: output not read within 5 s; giving up on it\n", prog);
            return;
        }
        poll(p, np, (int)left);
    }
}

static void
add_out(int fd, const char *name)
{
    if (nouts == MAX_OUTS)
        die("at most %d -o outputs", MAX_OUTS);
    /* Non-blocking: see the top of this file. A regular file never blocks anyway. */
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
        die("%s: cannot make it non-blocking: %s", name, strerror(errno));
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    outs[nouts++] = (struct out){ .fd = fd, .name = name };
}

/* -B: which of these ports bind on 127.0.0.1 now. */
static int
check_ports(int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        char *end;
        long port = strtol(argv[i], &end, 10);
        struct sockaddr_in sin = { .sin_family = AF_INET };
        int fd, one = 1;

        if (*argv[i] == '\0' || *end != '\0' || port < 1 || port > 65535)
            die("-B: bad port \"%s\"", argv[i]);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            die("socket: %s", strerror(errno));
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        sin.sin_port = htons((uint16_t)port);
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0)
            printf("%ld\n", port);
        close(fd);
    }
    return fflush(stdout) == 0 ? 0 : 1;
}

static int
bind_notify(const char *path, char *name, size_t namesz)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    socklen_t len;
    int fd, bufsz = 1 << 20;

    if (path == NULL) {
        /* An abstract address: nothing to remove afterwards. */
        snprintf(name, namesz, "@weft-supervise-%ld-%ld", (long)getpid(), (long)time(NULL));
    } else {
        if (strlen(path) >= sizeof(sun.sun_path))
            die("-n %s: longer than %zu bytes (a socket path's limit)", path,
                sizeof(sun.sun_path) - 1);
        snprintf(name, namesz, "%s", path);
    }
    memcpy(sun.sun_path, name, strlen(name));
    if (name[0] == '@')
        sun.sun_path[0] = '\0';
    len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name) +
                      (name[0] != '@'));
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        die("socket(AF_UNIX): %s", strerror(errno));
    if (name[0] != '@')
        unlink(name);       /* a stale socket of an earlier run of the same test */
    if (bind(fd, (struct sockaddr *)&sun, len) < 0)
        die("bind %s: %s", name, strerror(errno));
    /* The receive buffer, not max_dgram_qlen, is what a burst of STATUS lines meets. */
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz));
    /* Only the test's own user may talk to it. */
    if (name[0] != '@')
        chmod(name, 0600);
    return fd;
}

/* Every field of every queued datagram, one line each. */
static void
drain_notify(int fd)
{
    char buf[4097];

    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
        char *line, *save;

        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                emit("NOTIFY_ERROR=%s", strerror(errno));
            return;
        }
        buf[n] = '\0';
        for (line = strtok_r(buf, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save))
            emit("%s", line);
    }
}

/* Read what the child wrote; emit whole lines (a line too long is cut into pieces). */
static void
read_stream(struct stream *s, bool final)
{
    for (;;) {
        ssize_t n = read(s->fd, s->buf + s->len, sizeof(s->buf) - 1 - s->len);
        char *nl;

        if (n < 0 && errno == EINTR)
            continue;
        if (n > 0)
            s->len += (size_t)n;
        while ((nl = memchr(s->buf, '\n', s->len)) != NULL ||
               s->len == sizeof(s->buf) - 1 || (n <= 0 && final && s->len > 0)) {
            size_t l = nl != NULL ? (size_t)(nl - s->buf) : s->len;

            emit("%s=%.*s", s->tag, (int)l, s->buf);
            l += nl != NULL;
            memmove(s->buf, s->buf + l, s->len - l);
            s->len -= l;
        }
        if (n == 0) {           /* EOF: every writer is gone */
            close(s->fd);
            s->fd = -1;
            return;
        }
        if (n < 0)
            return;             /* EAGAIN: later */
    }
}

/* The live (not zombie) processes of group pgid, from /proc. */
static int
count_group(pid_t pgid)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;

    if (d == NULL)
        return kill(-pgid, 0) == 0 ? 1 : 0;
    while ((e = readdir(d)) != NULL) {
        char path[300], stat[512], *p;
        long pgrp;
        char state;
        FILE *f;

        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        f = fopen(path, "re");
        if (f == NULL)
            continue;
        if (fgets(stat, sizeof(stat), f) != NULL && (p = strrchr(stat, ')')) != NULL &&
            sscanf(p + 1, " %c %*d %ld", &state, &pgrp) == 2 && pgrp == pgid &&
            state != 'Z' && state != 'X')
            n++;
        fclose(f);
    }
    closedir(d);
    return n;
}

int
main(int argc, char **argv)
{
    const char *notify_path = NULL;
    char notify_name[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
    struct stream streams[2] = { { .fd = -1, .tag = "OUT" }, { .fd = -1, .tag = "ERR" } };
    bool capture_out = false, capture_err = false, killed = false;
    int pipes[2][2] = { { -1, -1 }, { -1, -1 } };
    int opt, nfd, sfd, status = 0, exitcode;
    pid_t parent = getppid(), self, child;
    sigset_t sigs, old;

    if (argc > 1 && strcmp(argv[1], "-B") == 0)
        return check_ports(argc - 2, argv + 2);
    while ((opt = getopt(argc, argv, "+n:o:seh")) != -1) {
        switch (opt) {
        case 'n':
            notify_path = optarg;
            break;
        case 'o': {
            int fd = open(optarg, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0644);

            /* A FIFO nobody has opened for reading yet: wait for the reader. */
            if (fd < 0 && errno == ENXIO)
                fd = open(optarg, O_WRONLY | O_APPEND | O_CLOEXEC);
            if (fd < 0)
                die("-o %s: %s", optarg, strerror(errno));
            add_out(fd, optarg);
            break;
        }
        case 's':
            capture_out = true;
            break;
        case 'e':
            capture_err = true;
            break;
        default:
            usage();
        }
    }
    if (optind >= argc)
        usage();
    if (nouts == 0)
        add_out(dup(STDOUT_FILENO), "stdout");

    /* Our parent's death arrives as SIGTERM, handled like any other stop request. If it
     * died before prctl took effect, we are already orphaned: stop now. */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
        die("prctl(PR_SET_PDEATHSIG): %s", strerror(errno));
    if (getppid() != parent)
        die("the parent died before the command started");

    sigemptyset(&sigs);
    sigaddset(&sigs, SIGCHLD);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &sigs, &old) < 0)
        die("sigprocmask: %s", strerror(errno));
    sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0)
        die("signalfd: %s", strerror(errno));
    signal(SIGPIPE, SIG_IGN);

    nfd = bind_notify(notify_path, notify_name, sizeof(notify_name));
    if ((capture_out && pipe2(pipes[0], O_CLOEXEC) < 0) ||
        (capture_err && pipe2(pipes[1], O_CLOEXEC) < 0))
        die("pipe: %s", strerror(errno));

    self = getpid();
    child = fork();
    if (child < 0)
        die("fork: %s", strerror(errno));
    if (child == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != self)
            _exit(125);         /* we were orphaned before prctl: nobody supervises */
        for (int i = 0; i < 2; i++)
            if (pipes[i][1] >= 0 && dup2(pipes[i][1], i + 1) < 0)
                _exit(125);
        signal(SIGPIPE, SIG_DFL);
        sigprocmask(SIG_SETMASK, &old, NULL);
        if (setenv("NOTIFY_SOCKET", notify_name, 1) < 0)
            _exit(125);
        execvp(argv[optind], argv + optind);
        fprintf(stderr, "%s: cannot run %s: %s\n", prog, argv[optind], strerror(errno));
        _exit(127);
    }
    /* Both sides set the group, so it exists before either goes on. */
    setpgid(child, child);
    for (int i = 0; i < 2; i++) {
        if (pipes[i][0] < 0)
            continue;
        close(pipes[i][1]);
        streams[i].fd = pipes[i][0];
        fcntl(streams[i].fd, F_SETFL, O_NONBLOCK);
    }
    emit("PID=%ld", (long)child);

    for (;;) {
        struct pollfd p[4 + MAX_OUTS];
        nfds_t np = 0;
        struct signalfd_siginfo si;
        bool exited = false;

        p[np++] = (struct pollfd){ .fd = sfd, .events = POLLIN };
        p[np++] = (struct pollfd){ .fd = nfd, .events = POLLIN };
        for (int i = 0; i < 2; i++)
            if (streams[i].fd >= 0)
                p[np++] = (struct pollfd){ .fd = streams[i].fd, .events = POLLIN };
        for (size_t i = 0; i < nouts; i++)
            if (outs[i].len > 0 && !outs[i].broken)
                p[np++] = (struct pollfd){ .fd = outs[i].fd, .events = POLLOUT };
        if (poll(p, np, -1) < 0 && errno != EINTR)
            die("poll: %s", strerror(errno));
        drain_notify(nfd);
        for (int i = 0; i < 2; i++)
            if (streams[i].fd >= 0)
                read_stream(&streams[i], false);
        for (size_t i = 0; i < nouts; i++)
            flush_out(&outs[i]);
        while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
            if (si.ssi_signo == SIGCHLD)
                continue;
            if (!killed) {
                killed = true;
                emit("KILLED=%s", strsignal((int)si.ssi_signo));
                kill(-child, SIGKILL);
            }
        }
        /* SIGCHLD: is it ours? (Nothing else is our child.) */
        for (;;) {
            pid_t w = waitpid(child, &status, WNOHANG);

            if (w == child) {
                exited = true;
                break;
            }
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                die("waitpid: %s", strerror(errno));
            break;
        }
        if (!exited)
            continue;
        /* What it said before it went comes first. */
        drain_notify(nfd);
        for (int i = 0; i < 2; i++)
            if (streams[i].fd >= 0)
                read_stream(&streams[i], true);
        exitcode = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        emit("EXIT=%d", exitcode);
        {
            int left = count_group(child);

            if (left > 0) {
                emit("LEFTOVER=%d", left);
                kill(-child, SIGKILL);
            }
        }
        emit("DONE");
        break;
    }
    if (notify_name[0] == '/')
        unlink(notify_name);
    drain_outs();
    return killed ? 128 + SIGTERM : exitcode;
}
