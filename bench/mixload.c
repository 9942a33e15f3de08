/* SPDX-License-Identifier: MIT */
/* mixload.c: mixed echo, HTTP and poem sessions for a set time; checks every byte, logs failures. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

/*
 * The client side of bench/soak.sh and bench/chaos.sh. Each slot runs sessions back to back:
 *
 *   echo  connect; messages of 1..-s bytes (windows of a random pattern), one in flight, every
 *         byte compared; after a lifetime drawn from [L/2, L] ms (-L) the client closes.
 *   http  connect; keep-alive GETs of -u, each response's status (200), Content-Length and
 *         body (the bytes of file -b) checked; closes after its lifetime, like echo.
 *   poem  connect; a greeting line; the whole poem up to the server's EOF must equal file -f.
 *
 * Anything else is a failure of that session: connect error, reset, early EOF, a wrong byte,
 * a bad status or header, 10 s without progress. Each failure is logged (-o FILE) as one line:
 *   T_FAIL T_OPEN KIND OWNER OPS REASON
 * (wall-clock seconds, so a script can compare them with the times it sent signals), and the
 * slot starts a new session 20 ms later. With -M MASTER_PID each session's serving worker is
 * found once its first reply arrives (a worker has accepted it): the server-side socket of the
 * session's 4-tuple is looked up with sock_diag (its inode), and the inode among the
 * descriptors of the master's children (/proc/M/task/M/children, /proc/W/fd). OWNER is that
 * pid, or 0 if the session failed before it was known. bench/chaos.sh uses it to tell
 * failures caused by its kill -9 from any other.
 *
 * At the end of -d seconds no new session starts and running ones end after their current
 * exchange (within 10 s, else they count as failures). The summary is one line of key=value;
 * exit 0 only if no session failed.
 */

#define STALL_NS (10 * 1000000000ull)
#define RESTART_NS (20 * 1000000ull)
#define OWNER_SCAN_NS (50 * 1000000ull)
#define SOURCES 16
#define MAX_FAIL_LOG 100000

enum kind { K_ECHO, K_HTTP, K_POEM, NKIND };
static const char *const kind_name[NKIND] = { "echo", "http", "poem" };

struct sess {
    int fd;
    enum kind kind;
    uint32_t events;        /* what epoll waits for */
    bool connected;
    bool closing;           /* this exchange is the session's last */
    bool want_owner;
    int owner_tries;
    pid_t owner;
    double t_open;          /* wall clock, s */
    uint64_t t_end;         /* monotonic: end the session after the exchange running then */
    uint64_t t_progress;    /* monotonic: last byte moved */
    uint64_t t_restart;     /* monotonic: when an empty slot starts its next session */
    uint64_t t_resume;      /* monotonic: a pause between exchanges ends (0: none) */
    uint64_t ops;           /* completed exchanges in this session */
    struct sockaddr_in local;
    /* the exchange under way: what to send, and what has come back */
    const unsigned char *out;
    size_t out_len, out_sent;
    size_t echo_off;        /* echo: the message is pattern[echo_off, + out_len) */
    unsigned char *in;      /* http, poem: the reply so far */
    size_t in_len, in_cap;
};

struct stats {
    uint64_t sessions, ok, ops, bytes, errors;
};

static struct sockaddr_in server[NKIND];
static int nslots[NKIND];
static struct stats st[NKIND];
static unsigned char *pattern;
static size_t echo_max = 4096;
static unsigned char *http_body, *poem_text;
static size_t http_body_len, poem_len;
static char http_req[512];
static size_t http_req_len;
static const char greeting[] = "hello from mixload\n";
static unsigned lifetime_ms = 2000;
static uint64_t pause_ns;        /* between a slot's sessions */
static uint64_t think_ns;        /* between a session's exchanges */
static int epfd, master_pid;
static bool stopping;
static FILE *fail_log;
static uint64_t nfail_logged, owners_known, sessions_next;

static double
wall_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
set_events(struct sess *s, uint32_t events)
{
    struct epoll_event ev = { .events = events, .data.ptr = s };

    if (events != s->events) {
        s->events = events;
        epoll_ctl(epfd, EPOLL_CTL_MOD, s->fd, &ev);
    }
}

static void
end_session(struct sess *s, bool ok, const char *why, int err)
{
    uint64_t now = bench_now_ns();

    if (ok) {
        st[s->kind].ok++;
    } else {
        st[s->kind].errors++;
        if (nfail_logged < 20)
            fprintf(stderr, "mixload: %s session (owner %ld, %llu exchanges done): %s%s%s\n",
                    kind_name[s->kind], (long)s->owner, (unsigned long long)s->ops, why,
                    err ? ": " : "", err ? strerror(err) : "");
        if (fail_log != NULL && nfail_logged < MAX_FAIL_LOG)
            fprintf(fail_log, "%.6f %.6f %s %ld %llu %s%s%s\n", wall_s(), s->t_open,
                    kind_name[s->kind], (long)s->owner, (unsigned long long)s->ops, why,
                    err ? ": " : "", err ? strerror(err) : "");
        nfail_logged++;
    }
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    s->t_restart = now + (ok ? pause_ns : RESTART_NS);
}

/* Sets up the next exchange of session s (the first one right after connecting). */
static void
next_exchange(struct sess *s)
{
    s->out_sent = 0;
    s->in_len = 0;
    switch (s->kind) {
    case K_ECHO:
        s->out_len = 1 + (size_t)random() % echo_max;
        s->echo_off = (size_t)random() % (echo_max + 4096);
        s->out = pattern + s->echo_off;
        break;
    case K_HTTP:
        s->out = (const unsigned char *)http_req;
        s->out_len = http_req_len;
        break;
    case K_POEM:
        s->out = (const unsigned char *)greeting;
        s->out_len = sizeof(greeting) - 1;
        break;
    default:
        break;
    }
}

static void
start_session(struct sess *s)
{
    struct sockaddr_in src = { .sin_family = AF_INET };
    struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = s };
    socklen_t len = sizeof(s->local);
    uint64_t now = bench_now_ns();
    int one = 1;

    st[s->kind].sessions++;
    s->connected = s->closing = s->want_owner = false;
    s->owner = 0;
    s->owner_tries = 0;
    s->ops = 0;
    s->t_resume = 0;
    s->t_open = wall_s();
    s->t_progress = now;
    s->t_end = now + ((uint64_t)lifetime_ms / 2 + (uint64_t)random() % (lifetime_ms / 2 + 1))
                     * 1000000u;
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0) {
        end_session(s, false, "socket", errno);
        return;
    }
    src.sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)(sessions_next++ % SOURCES));
    setsockopt(s->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    if (bind(s->fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
        end_session(s, false, "bind", errno);
        return;
    }
    if (connect(s->fd, (struct sockaddr *)&server[s->kind], sizeof(server[0])) < 0 &&
        errno != EINPROGRESS) {
        end_session(s, false, "connect", errno);
        return;
    }
    getsockname(s->fd, (struct sockaddr *)&s->local, &len);
    s->events = EPOLLOUT;
    epoll_ctl(epfd, EPOLL_CTL_ADD, s->fd, &ev);
    next_exchange(s);
}

static bool
grow_in(struct sess *s, size_t need)
{
    unsigned char *p;

    if (s->in_cap >= need)
        return true;
    p = realloc(s->in, need);
    if (p == NULL)
        return false;
    s->in = p;
    s->in_cap = need;
    return true;
}

/* A complete, correct exchange: count it; the session ends or goes on. */
static void
exchange_done(struct sess *s, size_t bytes)
{
    st[s->kind].ops++;
    st[s->kind].bytes += bytes;
    s->ops++;
    if (s->ops == 1 && master_pid > 0 && s->kind != K_POEM)
        s->want_owner = true;
    if (s->kind == K_POEM || s->closing || stopping || bench_now_ns() >= s->t_end) {
        end_session(s, true, NULL, 0);
        return;
    }
    if (think_ns > 0) {
        /* Nothing to send and nothing expected: any byte or EOF meanwhile is a failure. */
        s->out_len = s->out_sent = s->in_len = 0;
        s->t_resume = bench_now_ns() + think_ns;
        set_events(s, EPOLLIN);
        return;
    }
    next_exchange(s);
    set_events(s, EPOLLOUT | EPOLLIN);
}

/*
 * An HTTP response in s->in: false and *why set if it is wrong; true with *done if complete.
 * Only what a GET of a static file returns is accepted: 200, Content-Length, the file's bytes.
 */
static bool
check_http(struct sess *s, bool *done, const char **why)
{
    unsigned char *end = memmem(s->in, s->in_len, "\r\n\r\n", 4);
    size_t head, clen;
    char *p;

    *done = false;
    if (end == NULL) {
        if (s->in_len > 16384) {
            *why = "response head over 16 KiB";
            return false;
        }
        return true;
    }
    head = (size_t)(end - s->in) + 4;
    if (s->in_len < 13 || memcmp(s->in, "HTTP/1.1 200 ", 13) != 0) {
        *why = "status is not HTTP/1.1 200";
        return false;
    }
    end[2] = '\0';          /* the head as a string, for the header searches */
    p = strcasestr((char *)s->in, "\r\ncontent-length:");
    if (p == NULL) {
        *why = "no Content-Length";
        return false;
    }
    clen = strtoul(p + 17, NULL, 10);
    if (clen != http_body_len) {
        *why = "wrong Content-Length";
        return false;
    }
    if (strcasestr((char *)s->in, "\r\nconnection: close"))
        s->closing = true;
    end[2] = '\r';
    if (s->in_len > head + clen) {
        *why = "bytes after the response";
        return false;
    }
    if (s->in_len < head + clen)
        return true;
    if (memcmp(s->in + head, http_body, clen) != 0) {
        *why = "wrong body";
        return false;
    }
    *done = true;
    return true;
}

static void
on_ready(struct sess *s, uint32_t events)
{
    unsigned char buf[65536];

    if (!s->connected) {
        int err = 0;
        socklen_t len = sizeof(err);

        getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
            end_session(s, false, "connect", err);
            return;
        }
        s->connected = true;
        set_events(s, EPOLLOUT | EPOLLIN);
    }
    while (s->out_sent < s->out_len) {
        ssize_t w = send(s->fd, s->out + s->out_sent, s->out_len - s->out_sent, MSG_NOSIGNAL);

        if (w < 0) {
            if (errno == EAGAIN)
                break;
            end_session(s, false, "send", errno);
            return;
        }
        s->out_sent += (size_t)w;
        s->t_progress = bench_now_ns();
    }
    if (s->out_sent == s->out_len)
        set_events(s, EPOLLIN);
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        return;
    for (;;) {
        ssize_t r = recv(s->fd, buf, sizeof(buf), 0);
        const char *why = NULL;
        bool done = false;

        if (r < 0) {
            if (errno == EAGAIN)
                return;
            end_session(s, false, "recv", errno);
            return;
        }
        s->t_progress = bench_now_ns();
        switch (s->kind) {
        case K_ECHO:
            if (r == 0) {
                end_session(s, false, "EOF from the server", 0);
                return;
            }
            if (s->in_len + (size_t)r > s->out_sent ||
                memcmp(buf, pattern + s->echo_off + s->in_len, (size_t)r) != 0) {
                end_session(s, false, "wrong bytes echoed", 0);
                return;
            }
            s->in_len += (size_t)r;
            if (s->in_len == s->out_len) {
                exchange_done(s, s->out_len);
                return;
            }
            break;
        case K_HTTP:
            if (r == 0) {
                end_session(s, false, "EOF before a whole response", 0);
                return;
            }
            if (!grow_in(s, s->in_len + (size_t)r + 1)) {
                end_session(s, false, "out of memory", 0);
                return;
            }
            memcpy(s->in + s->in_len, buf, (size_t)r);
            s->in_len += (size_t)r;
            if (!check_http(s, &done, &why)) {
                end_session(s, false, why, 0);
                return;
            }
            if (done) {
                exchange_done(s, s->in_len);
                return;
            }
            break;
        case K_POEM:
            if (r == 0) {
                if (s->in_len != poem_len) {
                    end_session(s, false, "poem cut short", 0);
                    return;
                }
                exchange_done(s, s->in_len);
                return;
            }
            if (s->in_len + (size_t)r > poem_len ||
                memcmp(buf, poem_text + s->in_len, (size_t)r) != 0) {
                end_session(s, false, "wrong poem bytes", 0);
                return;
            }
            s->in_len += (size_t)r;
            if (master_pid > 0 && s->owner == 0 && s->owner_tries == 0)
                s->want_owner = true;
            break;
        default:
            return;
        }
    }
}

/* The inode of the server-side socket of session s (its 4-tuple reversed), or 0. */
static unsigned long
server_inode(int nl, const struct sess *s)
{
    struct {
        struct nlmsghdr nlh;
        struct inet_diag_req_v2 r;
    } req = {
        .nlh = { .nlmsg_len = sizeof(req), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
                 .nlmsg_flags = NLM_F_REQUEST },
        .r = { .sdiag_family = AF_INET, .sdiag_protocol = IPPROTO_TCP, .idiag_states = ~0u },
    };
    union {
        struct nlmsghdr nlh;
        char bytes[8192];
    } resp;
    struct sockaddr_nl nladdr = { .nl_family = AF_NETLINK };
    const struct sockaddr_in *srv = &server[s->kind];
    ssize_t n;

    req.r.id.idiag_sport = srv->sin_port;
    req.r.id.idiag_src[0] = srv->sin_addr.s_addr;
    req.r.id.idiag_dport = s->local.sin_port;
    req.r.id.idiag_dst[0] = s->local.sin_addr.s_addr;
    req.r.id.idiag_cookie[0] = req.r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
    if (sendto(nl, &req, sizeof(req), 0, (struct sockaddr *)&nladdr, sizeof(nladdr)) < 0)
        return 0;
    n = recv(nl, &resp, sizeof(resp), 0);
    if (n < (ssize_t)NLMSG_LENGTH(sizeof(struct inet_diag_msg)) ||
        resp.nlh.nlmsg_type != SOCK_DIAG_BY_FAMILY)
        return 0;
    return ((struct inet_diag_msg *)NLMSG_DATA(&resp.nlh))->idiag_inode;
}

struct inode_pid {
    unsigned long ino;
    pid_t pid;
};

/* Finds the serving worker of every session that wants it: see the comment at the top. */
static void
resolve_owners(struct sess *ss, int n)
{
    static struct inode_pid *map;
    static size_t cap;
    size_t count = 0;
    char path[64], link[64];
    pid_t kids[256];
    int nkids = 0, nl;
    FILE *f;
    bool any = false;

    for (int i = 0; i < n && !any; i++)
        any = ss[i].fd >= 0 && ss[i].want_owner;
    if (!any)
        return;
    snprintf(path, sizeof(path), "/proc/%d/task/%d/children", master_pid, master_pid);
    f = fopen(path, "r");
    if (f == NULL)
        return;
    while (nkids < 256 && fscanf(f, "%d", &kids[nkids]) == 1)
        nkids++;
    fclose(f);
    for (int k = 0; k < nkids; k++) {
        struct dirent *d;
        DIR *dir;

        snprintf(path, sizeof(path), "/proc/%d/fd", kids[k]);
        dir = opendir(path);
        if (dir == NULL)
            continue;
        while ((d = readdir(dir)) != NULL) {
            char fdpath[320];
            ssize_t len;
            unsigned long ino;

            if (d->d_name[0] == '.')
                continue;
            snprintf(fdpath, sizeof(fdpath), "%s/%s", path, d->d_name);
            len = readlink(fdpath, link, sizeof(link) - 1);
            if (len <= 0)
                continue;
            link[len] = '\0';
            if (sscanf(link, "socket:[%lu]", &ino) != 1)
                continue;
            if (count == cap) {
                size_t ncap = cap ? 2 * cap : 1024;
                struct inode_pid *p = realloc(map, ncap * sizeof(*map));

                if (p == NULL)
                    break;
                map = p;
                cap = ncap;
            }
            map[count].ino = ino;
            map[count].pid = kids[k];
            count++;
        }
        closedir(dir);
    }
    nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (nl < 0)
        return;
    for (int i = 0; i < n; i++) {
        struct sess *s = &ss[i];
        unsigned long ino;

        if (s->fd < 0 || !s->want_owner)
            continue;
        ino = server_inode(nl, s);
        for (size_t j = 0; ino != 0 && j < count; j++)
            if (map[j].ino == ino) {
                s->owner = map[j].pid;
                owners_known++;
                break;
            }
        if (s->owner != 0 || ++s->owner_tries >= 5)
            s->want_owner = false;
    }
    close(nl);
}

static unsigned char *
read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    struct stat sb;

    if (f == NULL || fstat(fileno(f), &sb) < 0 || (buf = malloc((size_t)sb.st_size + 1)) == NULL ||
        fread(buf, 1, (size_t)sb.st_size, f) != (size_t)sb.st_size) {
        fprintf(stderr, "mixload: %s: cannot read\n", path);
        exit(2);
    }
    fclose(f);
    *len = (size_t)sb.st_size;
    return buf;
}

static bool
parse_target(const char *arg, enum kind k)
{
    int port, conns;

    if (sscanf(arg, "%d:%d", &port, &conns) != 2 || port <= 0 || port > 65535 || conns < 0)
        return false;
    server[k].sin_port = htons((uint16_t)port);
    nslots[k] = conns;
    return true;
}

static void
usage(FILE *f)
{
    fprintf(f,
        "usage: mixload [-H host] [-d secs] [-L ms] [-i ms] [-z ms] [-M pid] [-o fail_log]\n"
        "               [-e port:conns [-s max_msg]] [-t port:conns -u path -b body_file]\n"
        "               [-q port:conns -f poem_file]\n"
        "  -e  echo sessions: messages of 1..max_msg (4096) bytes, one in flight\n"
        "  -t  HTTP sessions: keep-alive GETs of path, body compared with body_file\n"
        "  -q  poem sessions: greeting, then the whole poem compared with poem_file\n"
        "  -d  seconds (10); -L session lifetime in ms, drawn from [L/2, L] (2000)\n"
        "  -i  ms between a session's exchanges (0: back to back; granularity ~10 ms)\n"
        "  -z  ms between a slot's sessions (0): a poem session lasts one round trip\n"
        "  -M  find each session's worker among the master's children (logged on failure)\n"
        "  -o  append one line per failed session: T_FAIL T_OPEN KIND OWNER OPS REASON\n");
}

int
main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *url = NULL, *body_file = NULL, *poem_file = NULL;
    const char *fail_path = NULL;
    double secs = 10;
    uint64_t t0, t_stop, last_scan = 0, errors = 0;
    struct sess *ss;
    struct rlimit rl;
    int n = 0, opt, rc;
    bool grace_over = false;

    while ((opt = getopt(argc, argv, "H:d:L:M:o:e:s:t:u:b:q:f:z:i:h")) != -1) {
        switch (opt) {
        case 'H': host = optarg; break;
        case 'd': secs = atof(optarg); break;
        case 'L': lifetime_ms = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'M': master_pid = atoi(optarg); break;
        case 'o': fail_path = optarg; break;
        case 'e': if (!parse_target(optarg, K_ECHO)) { usage(stderr); return 2; } break;
        case 's': echo_max = strtoul(optarg, NULL, 10); break;
        case 't': if (!parse_target(optarg, K_HTTP)) { usage(stderr); return 2; } break;
        case 'u': url = optarg; break;
        case 'b': body_file = optarg; break;
        case 'q': if (!parse_target(optarg, K_POEM)) { usage(stderr); return 2; } break;
        case 'f': poem_file = optarg; break;
        case 'i': think_ns = strtoull(optarg, NULL, 10) * 1000000u; break;
        case 'z': pause_ns = strtoull(optarg, NULL, 10) * 1000000u; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (secs <= 0 || echo_max == 0 || echo_max > (1u << 20) || lifetime_ms < 2 ||
        (nslots[K_HTTP] > 0 && (url == NULL || body_file == NULL || strlen(url) > 256)) ||
        (nslots[K_POEM] > 0 && poem_file == NULL)) {
        usage(stderr);
        return 2;
    }
    for (int k = 0; k < NKIND; k++) {
        server[k].sin_family = AF_INET;
        if (inet_pton(AF_INET, host, &server[k].sin_addr) != 1) {
            usage(stderr);
            return 2;
        }
        n += nslots[k];
    }
    if (n == 0) {
        usage(stderr);
        return 2;
    }
    if (body_file != NULL)
        http_body = read_file(body_file, &http_body_len);
    if (poem_file != NULL)
        poem_text = read_file(poem_file, &poem_len);
    if (url != NULL)
        http_req_len = (size_t)snprintf(http_req, sizeof(http_req),
                                        "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: mixload\r\n\r\n",
                                        url, host);
    if (fail_path != NULL && (fail_log = fopen(fail_path, "a")) == NULL) {
        fprintf(stderr, "mixload: %s: %s\n", fail_path, strerror(errno));
        return 2;
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    srandom((unsigned)bench_now_ns());
    pattern = malloc(2 * echo_max + 4096);
    ss = calloc((size_t)n, sizeof(*ss));
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (pattern == NULL || ss == NULL || epfd < 0) {
        perror("mixload");
        return 2;
    }
    for (size_t i = 0; i < 2 * echo_max + 4096; i++)
        pattern[i] = (unsigned char)random();

    t0 = bench_now_ns();
    t_stop = t0 + (uint64_t)(secs * 1e9);
    for (int k = 0, i = 0; k < NKIND; k++)
        for (int j = 0; j < nslots[k]; j++, i++) {
            ss[i].kind = (enum kind)k;
            ss[i].fd = -1;
            start_session(&ss[i]);
        }
    for (;;) {
        struct epoll_event evs[256];
        int m = epoll_wait(epfd, evs, 256, 10), open = 0;
        uint64_t now;

        for (int e = 0; e < m; e++) {
            struct sess *s = evs[e].data.ptr;

            if (s->fd >= 0)
                on_ready(s, evs[e].events);
        }
        now = bench_now_ns();
        if (!stopping && now >= t_stop)
            stopping = true;
        if (stopping && now >= t_stop + STALL_NS)
            grace_over = true;
        for (int i = 0; i < n; i++) {
            struct sess *s = &ss[i];

            if (s->fd < 0) {
                if (!stopping && now >= s->t_restart)
                    start_session(s);
            } else if (s->t_resume != 0 && (now >= s->t_resume || stopping)) {
                s->t_resume = 0;
                s->t_progress = now;
                if (stopping) {
                    end_session(s, true, NULL, 0);
                } else {
                    next_exchange(s);
                    set_events(s, EPOLLOUT | EPOLLIN);
                }
            } else if (grace_over) {
                end_session(s, false, "still running 10 s after the end", 0);
            } else if (s->t_resume == 0 && now - s->t_progress > STALL_NS) {
                end_session(s, false, "no progress for 10 s", 0);
            }
            open += s->fd >= 0;
        }
        if (master_pid > 0 && now - last_scan > OWNER_SCAN_NS) {
            resolve_owners(ss, n);
            last_scan = now;
        }
        if (stopping && open == 0)
            break;
    }

    printf("secs=%.1f", (double)(bench_now_ns() - t0) / 1e9);
    for (int k = 0; k < NKIND; k++) {
        if (nslots[k] == 0)
            continue;
        printf(" %s_conns=%d %s_sessions=%llu %s_ops=%llu %s_mib=%.1f %s_errors=%llu",
               kind_name[k], nslots[k], kind_name[k], (unsigned long long)st[k].sessions,
               kind_name[k], (unsigned long long)st[k].ops, kind_name[k],
               (double)st[k].bytes / 1048576.0, kind_name[k], (unsigned long long)st[k].errors);
        errors += st[k].errors;
    }
    printf(" errors=%llu", (unsigned long long)errors);
    if (master_pid > 0)
        printf(" owners_known=%llu", (unsigned long long)owners_known);
    printf("\n");
    rc = errors == 0 ? 0 : 1;
    if (fail_log != NULL)
        fclose(fail_log);
    for (int i = 0; i < n; i++)
        free(ss[i].in);
    free(ss);
    free(pattern);
    free(http_body);
    free(poem_text);
    return rc;
}
