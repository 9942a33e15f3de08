/* SPDX-License-Identifier: MIT */
/* services.c: load plugins, configure services, bind every listener, then serve. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include <weft/plugin.h>

#include "listen.h"
#include "log.h"
#include "services.h"

/* Append to *path (colon-separated) each directory of dirs not in it yet. */
static int
path_append(char **path, const char *dirs)
{
    const char *d, *end, *hit;
    size_t len, have;
    char *np;

    for (d = dirs ? dirs : ""; *d != '\0'; d = *end ? end + 1 : end) {
        end = strchrnul(d, ':');
        len = (size_t)(end - d);
        if (len == 0)
            continue;
        have = *path ? strlen(*path) : 0;
        for (hit = *path; hit != NULL; hit = strchr(hit, ':'), hit = hit ? hit + 1 : NULL)
            if (strncmp(hit, d, len) == 0 && (hit[len] == ':' || hit[len] == '\0'))
                break;
        if (hit != NULL)
            continue;
        np = realloc(*path, have + len + 2);
        if (np == NULL)
            return -ENOMEM;
        if (have > 0)
            np[have++] = ':';
        memcpy(np + have, d, len);
        np[have + len] = '\0';
        *path = np;
    }
    return 0;
}

/*
 * The plugin search path, in order: -p, $WEFT_PLUGIN_DIR, plugin_dir (each
 * colon-separated), then the built-in directory, always there.
 */
static int
plugin_search_path(const struct config *conf, const char *flag, char **out)
{
    *out = NULL;
    if (path_append(out, flag) < 0 || path_append(out, getenv("WEFT_PLUGIN_DIR")) < 0 ||
        path_append(out, conf->g.plugin_dir) < 0 || path_append(out, plugin_default_dir()) < 0)
        return -ENOMEM;
    return 0;
}

/* The protocol's plugin, loaded once however many services use it. */
static int
get_plugin(struct services *ss, const struct conf_service *cs, struct plugin **out)
{
    struct plugin *p, **np;
    char err[1536];
    int rc;

    for (size_t i = 0; i < ss->nplugins; i++) {
        if (strcmp(ss->plugins[i]->name, cs->protocol) == 0) {
            *out = ss->plugins[i];
            return 0;
        }
    }
    rc = plugin_open(ss->plugin_dir, cs->protocol, &p, err, sizeof(err));
    if (rc == -ENOMEM)
        return rc;
    if (rc < 0) {
        config_error(ss->conf, cs->protocol_line, cs->name, "protocol", "%s", err);
        return rc;
    }
    np = realloc(ss->plugins, (ss->nplugins + 1) * sizeof(*np));
    if (np == NULL) {
        plugin_close(p);
        return -ENOMEM;
    }
    ss->plugins = np;
    np[ss->nplugins++] = p;
    log_debug("loaded plugin %s %s from %s", p->rec->name,
              p->rec->version ? p->rec->version : "", p->path);
    *out = p;
    return 0;
}

static void
plugin_error(struct services *ss, const struct conf_service *cs, int line, const char *key,
             int rc, const char *err)
{
    const char *proto = cs->protocol;

    char mean[64];
    const char *known = strstr(err, "known: ");
    if (rc == -WEFT_ENOKEY && key != NULL && known != NULL &&
        config_did_you_mean(key, known + 7, mean, sizeof(mean)) != NULL)
        config_error(ss->conf, line, cs->name, key,
                     "unknown key for protocol %s; did you mean %s? (%s)", proto, mean, err);
    else if (rc == -WEFT_ENOKEY)
        config_error(ss->conf, line, cs->name, key, "unknown key for protocol %s%s%s", proto,
                     *err ? ": " : "", err);
    else if (rc == -WEFT_ECONFIG)
        config_error(ss->conf, line, cs->name, key, "%s", *err ? err : "bad value");
    else
        config_error(ss->conf, line, cs->name, key, "%s%s%s", weft_strerror(rc),
                     *err ? ": " : "", err);
}

/*
 * The tls_* keys of a section are weftd's, not the plugin's: they make the
 * service's TLS context. It is built here, in the master before the workers
 * fork, so every worker shares one context and its session-ticket keys
 * (a client resumes its session whichever worker it reaches).
 */
static int
configure_tls(struct services *ss, struct service *s)
{
    const struct weft_plugin *rec = s->plugin->rec;
    const struct conf_service *cs = s->conf;
    struct weft_tls_config *cfg = NULL;
    char err[512];
    int line = cs->line, rc = 0;
    bool ok = true;

    for (size_t i = 0; i < cs->nkeys; i++) {
        const struct conf_kv *kv = &cs->keys[i];

        if (strncmp(kv->key, "tls_", 4) != 0)
            continue;
        if (cfg == NULL && (cfg = weft_tls_config_new()) == NULL)
            return -ENOMEM;
        if (strcmp(kv->key, "tls_certificate") == 0 && line == cs->line)
            line = kv->line;
        err[0] = '\0';
        const char *value = kv->value;
        char path[PATH_MAX];
        /* The files, relative to the config file's directory like every path in it. */
        if ((strcmp(kv->key, "tls_certificate") == 0 || strcmp(kv->key, "tls_key") == 0 ||
             strcmp(kv->key, "tls_client_ca") == 0) && value[0] != '\0') {
            if (weft_plugin_path(value, path, sizeof(path)) < 0) {
                config_error(ss->conf, kv->line, cs->name, kv->key, "path too long");
                ok = false;
                continue;
            }
            value = path;
        }
        rc = weft_tls_config_set(cfg, kv->key, value, err, sizeof(err));
        if (rc == -ENOMEM)
            goto out;
        if (rc == -WEFT_ENOKEY)
            config_error(ss->conf, kv->line, cs->name, kv->key, "unknown TLS key");
        else if (rc < 0)
            config_error(ss->conf, kv->line, cs->name, kv->key, "%s",
                         *err ? err : weft_strerror(rc));
        ok = ok && rc == 0;
    }
    rc = 0;
    if (cfg == NULL || !ok)
        goto out;
    /* The plugin says what it speaks (ALPN) if its record is new enough to say it: this
     * service's protocols (service_alpn), else the plugin's. */
    const char *const *(*service_alpn)(void *) = PLUGIN_FIELD(rec, service_alpn);
    const char *const *alpn = service_alpn ? service_alpn(s->svc) : NULL;
    if (alpn == NULL && rec->size >= offsetof(struct weft_plugin, alpn) + sizeof(rec->alpn))
        alpn = rec->alpn;
    if (alpn != NULL && (rc = weft_tls_config_set_alpn(cfg, alpn)) < 0)
        goto out;
    err[0] = '\0';
    if (weft_tls_config_check(cfg, err, sizeof(err)) < 0 ||
        weft_tls_context_new(cfg, &s->tls, err, sizeof(err)) < 0)
        config_error(ss->conf, line, cs->name, "tls_certificate", "%s",
                     *err ? err : "TLS setup failed");
out:
    weft_tls_config_free(cfg);
    return rc == -ENOMEM ? rc : 0;
}

static bool
proxy_trusted(const struct sockaddr *peer, socklen_t len, void *arg)
{
    const struct service *s = arg;

    /* A local peer on a unix: socket: who may connect is the socket file's mode and owner. */
    if (peer->sa_family == AF_UNIX)
        return true;
    return cidr_match(s->trusted, s->ntrusted, peer, len);
}

/* A size: bytes, or with k or m (KiB, MiB). */
static int
parse_size(const char *text, size_t *out)
{
    unsigned long long n = 0, mult = 1;
    const char *p = text;

    if (*p < '0' || *p > '9')
        return -WEFT_ECONFIG;
    for (; *p >= '0' && *p <= '9'; p++) {
        n = n * 10 + (unsigned long long)(*p - '0');
        if (n > (1ull << 30))
            return -WEFT_ECONFIG;
    }
    if (*p == 'k' || *p == 'K')
        mult = 1024, p++;
    else if (*p == 'm' || *p == 'M')
        mult = 1024 * 1024, p++;
    if (*p != '\0' || n == 0 || n * mult > (1ull << 30))
        return -WEFT_ECONFIG;
    *out = (size_t)(n * mult);
    return 0;
}

/* A user or group by name or number: 0, or -WEFT_ECONFIG. */
static int
parse_id(const char *text, bool group, unsigned long *out)
{
    char *end;

    if (*text >= '0' && *text <= '9') {
        errno = 0;
        *out = strtoul(text, &end, 10);
        return errno == 0 && *end == '\0' && *out < (unsigned long)(uid_t)-1 ? 0 : -WEFT_ECONFIG;
    }
    if (group) {
        const struct group *gr = getgrnam(text);

        if (gr == NULL)
            return -WEFT_ECONFIG;
        *out = gr->gr_gid;
    } else {
        const struct passwd *pw = getpwnam(text);

        if (pw == NULL)
            return -WEFT_ECONFIG;
        *out = pw->pw_uid;
    }
    return 0;
}

/* unix_mode, unix_user, unix_group: the mode and owner of the service's socket files. */
static bool
unix_key(struct services *ss, struct service *s, const struct conf_kv *kv)
{
    const struct conf_service *cs = s->conf;
    unsigned long n = 0;
    const char *p;

    if (strcmp(kv->key, "unix_mode") == 0) {
        for (p = kv->value; *p >= '0' && *p <= '7'; p++)
            n = n * 8 + (unsigned long)(*p - '0');
        if (p == kv->value || *p != '\0' || p - kv->value > 4 || n > 07777)
            config_error(ss->conf, kv->line, cs->name, kv->key,
                         "bad mode \"%s\" (octal, as chmod takes it: 0660)", kv->value);
        else
            s->unix_perm.mode = (mode_t)n;
        return true;
    }
    if (strcmp(kv->key, "unix_user") == 0 || strcmp(kv->key, "unix_group") == 0) {
        bool group = kv->key[5] == 'g';

        if (parse_id(kv->value, group, &n) < 0)
            config_error(ss->conf, kv->line, cs->name, kv->key, "no such %s \"%s\"",
                         group ? "group" : "user", kv->value);
        else if (group)
            s->unix_perm.gid = (gid_t)n;
        else
            s->unix_perm.uid = (uid_t)n;
        return true;
    }
    return false;
}

/* The unix_* keys need a socket file to apply to. */
static void
check_unix(struct services *ss, struct service *s)
{
    const struct conf_service *cs = s->conf;
    bool file = false;

    for (size_t i = 0; i < cs->nlisten; i++) {
        const struct sockaddr_un *sun = (const void *)&cs->listen[i].addr;

        file |= cs->listen[i].kind == CONF_LISTEN_UNIX && sun->sun_path[0] != '\0';
    }
    for (size_t i = 0; i < cs->nkeys && !file; i++)
        if (strncmp(cs->keys[i].key, "unix_", 5) == 0)
            config_error(ss->conf, cs->keys[i].line, cs->name, cs->keys[i].key,
                         "has no effect without a listen = unix:/PATH address");
}

/*
 * weftd's own keys of a service section (besides protocol, listen and
 * tls_*): proxy_protocol, proxy_trusted, proxy_timeout, idle_timeout, unix_mode, unix_user,
 * unix_group, and limit for stream plugins (a protocol plugin gets limit itself). Returns
 * true if kv was one.
 */
static bool
weftd_key(struct services *ss, struct service *s, const struct conf_kv *kv)
{
    const struct conf_service *cs = s->conf;
    char why[256];
    int rc;

    if (strcmp(kv->key, "proxy_protocol") == 0) {
        if (strcmp(kv->value, "v1") == 0)
            s->proxy.versions = WEFT_PROXY_V1;
        else if (strcmp(kv->value, "v2") == 0)
            s->proxy.versions = WEFT_PROXY_V2;
        else if (strcmp(kv->value, "any") == 0)
            s->proxy.versions = WEFT_PROXY_ANY;
        else if (strcmp(kv->value, "off") != 0)
            config_error(ss->conf, kv->line, cs->name, kv->key,
                         "bad value \"%s\" (v1, v2, any or off)", kv->value);
        return true;
    }
    if (strcmp(kv->key, "proxy_trusted") == 0) {
        rc = cidr_parse_list(kv->value, &s->trusted, &s->ntrusted, why, sizeof(why));
        if (rc == -ENOMEM)
            ss->conf->oom = true;
        else if (rc < 0)
            config_error(ss->conf, kv->line, cs->name, kv->key, "%s", why);
        return true;
    }
    if (strcmp(kv->key, "proxy_timeout") == 0) {
        if (config_parse_duration(kv->value, &s->proxy.timeout_ms, why, sizeof(why)) < 0)
            config_error(ss->conf, kv->line, cs->name, kv->key, "%s", why);
        else if (s->proxy.timeout_ms == 0)
            config_error(ss->conf, kv->line, cs->name, kv->key,
                         "must be more than 0 (how long a PROXY header may take: 5s)");
        return true;
    }
    if (unix_key(ss, s, kv))
        return true;
    if (strcmp(kv->key, "idle_timeout") == 0) {
        if (config_parse_duration(kv->value, &s->idle_ms, why, sizeof(why)) < 0)
            config_error(ss->conf, kv->line, cs->name, kv->key, "%s", why);
        return true;
    }
    if (strcmp(kv->key, "limit") == 0 && s->plugin->rec->protocol_new == NULL) {
        if (parse_size(kv->value, &s->limit) < 0)
            config_error(ss->conf, kv->line, cs->name, kv->key,
                         "bad size \"%s\" (bytes, or with k or m: 64k; from 1 to 1024m)",
                         kv->value);
        return true;
    }
    return false;
}

/* proxy_protocol goes with proxy_trusted, and proxy_timeout needs it. */
static void
check_proxy(struct services *ss, struct service *s)
{
    const struct conf_service *cs = s->conf;
    int pline = 0, tline = 0, oline = 0;

    for (size_t i = 0; i < cs->nkeys; i++) {
        if (strcmp(cs->keys[i].key, "proxy_protocol") == 0)
            pline = cs->keys[i].line;
        else if (strcmp(cs->keys[i].key, "proxy_trusted") == 0)
            tline = cs->keys[i].line;
        else if (strcmp(cs->keys[i].key, "proxy_timeout") == 0)
            oline = cs->keys[i].line;
    }
    bool tcp = false;
    for (size_t i = 0; i < cs->nlisten; i++)
        tcp |= cs->listen[i].kind != CONF_LISTEN_UNIX;
    /* Only unix: sockets: every sender is local and trusted (proxy_trusted below). */
    if (s->proxy.versions != 0 && tline == 0 && tcp)
        config_error(ss->conf, pline, cs->name, "proxy_protocol",
                     "needs proxy_trusted: the addresses allowed to send a PROXY header "
                     "(your load balancers, as in 10.0.0.0/8, ::1; \"any\" trusts everyone, "
                     "and lets anyone claim any address)");
    if (s->proxy.versions == 0 && tline != 0)
        config_error(ss->conf, tline, cs->name, "proxy_trusted",
                     "has no effect without proxy_protocol = v1, v2 or any");
    if (s->proxy.versions == 0 && oline != 0)
        config_error(ss->conf, oline, cs->name, "proxy_timeout",
                     "has no effect without proxy_protocol = v1, v2 or any");
    s->proxy.trusted = proxy_trusted;
    s->proxy.trusted_arg = s;
}

/* service_new, configure with each key in file order, service_check. */
static int
configure_service(struct services *ss, struct service *s)
{
    const struct weft_plugin *rec = s->plugin->rec;
    const struct conf_service *cs = s->conf;
    char err[512] = "";
    int rc;

    if (rec->service_new != NULL) {
        rc = rec->service_new(&s->svc);
        if (rc == -ENOMEM)
            return rc;
        if (rc < 0) {
            plugin_error(ss, cs, cs->line, NULL, rc, err);
            return 0;
        }
    }
    s->made = true;
    for (size_t i = 0; i < cs->nkeys; i++) {
        const struct conf_kv *kv = &cs->keys[i];

        if (strncmp(kv->key, "tls_", 4) == 0)
            continue;                   /* weftd's own: configure_tls */
        if (weftd_key(ss, s, kv))
            continue;
        err[0] = '\0';
        rc = rec->configure ? rec->configure(s->svc, kv->key, kv->value, err, sizeof(err))
                            : -WEFT_ENOKEY;
        if (rc == -ENOMEM)
            return rc;
        if (rc < 0)
            plugin_error(ss, cs, kv->line, kv->key, rc, err);
    }
    /* The whole-service check runs after a rejected key too: every error in one run (its
     * own complaint about the rejected key, if any, repeats the news but hides nothing). */
    if (rec->service_check != NULL) {
        err[0] = '\0';
        rc = rec->service_check(s->svc, err, sizeof(err));
        if (rc == -ENOMEM)
            return rc;
        if (rc < 0) {
            /* "poems: ...", "root '/x': ...": the plugin names a key first; report the
             * error at that key's line, as [section] key: rest. */
            const struct conf_kv *at = NULL;
            size_t n = strcspn(err, ": ");
            for (size_t i = 0; (err[n] == ':' || err[n] == ' ') && i < cs->nkeys; i++)
                if (strlen(cs->keys[i].key) == n && strncmp(cs->keys[i].key, err, n) == 0)
                    at = &cs->keys[i];
            if (at != NULL)
                plugin_error(ss, cs, at->line, at->key, rc,
                             err + n + (err[n] == ':') + (err[n + (err[n] == ':')] == ' '));
            else
                plugin_error(ss, cs, cs->line, NULL, rc, err);
        }
    }
    check_proxy(ss, s);
    check_unix(ss, s);
    return configure_tls(ss, s);
}

/*
 * Each listen address is of a kind the plugin speaks: udp: needs its
 * datagram_new, a TCP address its protocol_new or client.
 */
static void
check_kinds(struct services *ss, const struct service *s)
{
    const struct weft_plugin *rec = s->plugin->rec;
    const struct conf_service *cs = s->conf;

    for (size_t i = 0; i < cs->nlisten; i++) {
        const struct conf_listen *l = &cs->listen[i];

        if (l->kind == CONF_LISTEN_UDP && !PLUGIN_SPEAKS_UDP(rec))
            config_error(ss->conf, l->line, cs->name, "listen",
                         "%s: protocol %s does not speak UDP (its plugin has no datagram_new); "
                         "listen on TCP with %s", l->text, cs->protocol, l->text + 4);
        else if (l->kind != CONF_LISTEN_UDP && !PLUGIN_SPEAKS_TCP(rec))
            config_error(ss->conf, l->line, cs->name, "listen",
                         "%s: protocol %s speaks UDP only (its plugin has datagram_new and no "
                         "protocol_new or client)%s%s", l->text, cs->protocol,
                         l->kind == CONF_LISTEN_TCP ? "; write udp:" : "",
                         l->kind == CONF_LISTEN_TCP ? l->text : "");
    }
}

static const struct conf_service *
find_section(const struct config *conf, const char *name)
{
    for (size_t i = 0; i < conf->nservices; i++)
        if (strcmp(conf->services[i]->name, name) == 0)
            return conf->services[i];
    return NULL;
}

/*
 * The service a systemd socket is named for: its FileDescriptorName, when that is a
 * section of the config. NULL for an unnamed one (no LISTEN_FDNAMES, "unknown", or
 * systemd's default, the socket unit's name "NAME.socket", when no section is called
 * so): those are matched by address.
 */
static const char *
socket_service(const struct config *conf, const struct listener *l)
{
    if (l->name == NULL)
        return NULL;
    return find_section(conf, l->name) != NULL ? l->name : NULL;
}

/* Named, but not systemd's default name: it must name a section. */
static bool
socket_named(const struct listener *l)
{
    size_t n = l->name != NULL ? strlen(l->name) : 0;

    return n > 0 && !(n > 7 && strcmp(l->name + n - 7, ".socket") == 0);
}

/*
 * The service's sockets, from the pool: systemd sockets named after the
 * service if there are any (they replace its listen lines), else one per
 * listen address (the pool's own if it has it, else bound now). A listen
 * address whose socket systemd passed named for another service is an error:
 * two services would accept on one socket.
 */
static int
bind_service(struct services *ss, struct service *s, struct listen_pool *pool)
{
    const struct conf_service *cs = s->conf;
    size_t named = 0;

    for (size_t i = 0; i < pool->count; i++)
        if (pool->list[i].name != NULL && strcmp(pool->list[i].name, cs->name) == 0)
            named++;
    s->nfds = named > 0 ? named : cs->nlisten;
    if (s->nfds == 0)
        return 0;
    s->fds = malloc(s->nfds * sizeof(*s->fds));
    if (s->fds == NULL)
        return -ENOMEM;
    if (named > 0) {
        const struct weft_plugin *rec = s->plugin != NULL ? s->plugin->rec : NULL;
        size_t j = 0;

        for (size_t i = 0; i < pool->count; i++) {
            const struct listener *l = &pool->list[i];

            if (l->name == NULL || strcmp(l->name, cs->name) != 0)
                continue;
            s->fds[j++] = l->fd;
            /* The kind check_kinds makes of listen lines, for what systemd passed. */
            if (rec == NULL)
                continue;           /* no plugin: its error is said already */
            if (l->type == SOCK_DGRAM && !PLUGIN_SPEAKS_UDP(rec))
                config_error(ss->conf, cs->line, cs->name, NULL,
                             "systemd passed a UDP socket (ListenDatagram=, FileDescriptorName=%s) "
                             "but protocol %s does not speak UDP (its plugin has no datagram_new)",
                             cs->name, cs->protocol);
            else if (l->type != SOCK_DGRAM && !PLUGIN_SPEAKS_TCP(rec))
                config_error(ss->conf, cs->line, cs->name, NULL,
                             "systemd passed a stream socket (FileDescriptorName=%s) but protocol "
                             "%s speaks UDP only (its plugin has datagram_new and no protocol_new "
                             "or client)", cs->name, cs->protocol);
        }
        log_info("%s: %zu socket%s from systemd (FileDescriptorName=%s) replace its listen "
                 "line", cs->name, named, named == 1 ? "" : "s", cs->name);
        return 0;
    }
    for (size_t i = 0; i < cs->nlisten; i++)
        s->fds[i] = -1;
    for (size_t i = 0; i < cs->nlisten; i++) {
        const struct conf_listen *l = &cs->listen[i];
        const struct sockaddr *sa = (const struct sockaddr *)&l->addr;
        int type = l->kind == CONF_LISTEN_UDP ? SOCK_DGRAM : SOCK_STREAM;
        const struct listener *held = listen_pool_find(pool, type, sa);
        const char *owner = held != NULL ? socket_service(ss->conf, held) : NULL;

        if (owner != NULL) {
            config_error(ss->conf, l->line, cs->name, "listen",
                         "%s: systemd passed this socket named \"%s\" (FileDescriptorName=), "
                         "for [%s]: two services cannot share one socket", l->text, owner,
                         owner);
            continue;
        }
        if (l->kind == CONF_LISTEN_UNIX)
            s->fds[i] = listen_pool_get_unix(pool, sa, l->addrlen, &s->unix_perm);
        else
            s->fds[i] = listen_pool_get(pool, type, sa, l->addrlen);
        if (s->fds[i] == -ENOMEM)
            return -ENOMEM;
        if (s->fds[i] < 0)
            config_error(ss->conf, l->line, cs->name, "listen", "%s: %s", l->text,
                         l->kind == CONF_LISTEN_UNIX ? listen_strerror_unix(s->fds[i])
                                                     : listen_strerror(s->fds[i]));
    }
    return 0;
}

static bool
fd_served(const struct services *ss, int fd)
{
    for (size_t i = 0; i < ss->count; i++)
        for (size_t j = 0; j < ss->list[i].nfds; j++)
            if (ss->list[i].fds[j] == fd)
                return true;
    return false;
}

/*
 * Every socket systemd passed serves one service: one named for no section of the
 * config, or unnamed and at no listen address, would be held and never served.
 */
static void
check_activated(struct services *ss, const struct listen_pool *pool)
{
    const struct config *conf = ss->conf;

    for (size_t i = 0; i < pool->count; i++) {
        const struct listener *l = &pool->list[i];
        char addr[160], names[200];
        size_t used = 0;

        if (!l->activated)
            continue;
        if (l->addrlen > 0)
            config_addr_string((const struct sockaddr *)&l->addr, addr, sizeof(addr));
        else
            snprintf(addr, sizeof(addr), "fd %d", l->fd);
        if (socket_service(conf, l) != NULL)
            continue;
        if (socket_named(l)) {
            names[0] = '\0';
            for (size_t k = 0; k < conf->nservices && used < sizeof(names); k++) {
                int n = snprintf(names + used, sizeof(names) - used, "%s[%s]", k ? ", " : "",
                                 conf->services[k]->name);

                used = n < 0 ? sizeof(names) : used + (size_t)n;
            }
            config_error(ss->conf, 0, NULL, NULL,
                         "systemd passed a socket named \"%s\" (%s), and no service is "
                         "called so: FileDescriptorName= (the instance of weftd@%s.socket) "
                         "must be a section name (here: %s)", l->name, addr, l->name,
                         conf->nservices > 0 ? names : "none");
        } else if (!fd_served(ss, l->fd)) {
            config_error(ss->conf, 0, NULL, NULL,
                         "systemd passed a socket on %s%s%s%s that no service listens on: "
                         "name it after its service (FileDescriptorName=) or add its address "
                         "to a listen line", addr, l->name ? " (named \"" : " (unnamed",
                         l->name ? l->name : "", l->name ? "\", systemd's default)" : ")");
        }
    }
}

int
services_prepare(struct services *ss, struct config *conf, const char *plugin_dir_flag,
                 struct listen_pool *pool)
{
    int rc;

    memset(ss, 0, sizeof(*ss));
    ss->conf = conf;
    /* Plugins' paths (weft_plugin_path) and ours are relative to the config's directory. */
    const char *slash = strrchr(conf->file, '/');
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - conf->file + 1) : 0, conf->file);
    if (weft_plugin_set_config_dir(dir) < 0)
        return -ENAMETOOLONG;
    if (plugin_search_path(conf, plugin_dir_flag, &ss->plugin_dir) < 0)
        return -ENOMEM;
    log_debug("plugin search path %s (-p, $WEFT_PLUGIN_DIR, plugin_dir, built-in)",
              ss->plugin_dir);
    ss->list = calloc(conf->nservices ? conf->nservices : 1, sizeof(*ss->list));
    if (ss->list == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < conf->nservices; i++) {
        struct service *s = &ss->list[ss->count++];

        s->conf = conf->services[i];
        /* nginx's mode for its unix: sockets: whoever may reach a local TCP port may connect */
        s->unix_perm = (struct listen_unix_perm){ .mode = 0666, .uid = (uid_t)-1,
                                                  .gid = (gid_t)-1 };
        if (s->conf->protocol == NULL)
            continue;
        rc = get_plugin(ss, s->conf, &s->plugin);
        if (rc == -ENOMEM)
            return rc;
        if (rc < 0)
            continue;
        check_kinds(ss, s);
        rc = configure_service(ss, s);
        if (rc < 0)
            return rc;
    }
    /* Bind last, and even with errors above, so a port in use shows up now too. */
    for (size_t i = 0; pool != NULL && i < ss->count; i++) {
        rc = bind_service(ss, &ss->list[i], pool);
        if (rc < 0)
            return rc;
    }
    if (pool != NULL)
        check_activated(ss, pool);
    if (conf->oom)
        return -ENOMEM;
    if (conf->nservices == 0)
        config_error(conf, 0, NULL, NULL, "no service defined (add a section with "
                     "\"protocol = NAME\" and \"listen = HOST:PORT\")");
    config_sort_errors(conf);
    return conf->nerrors > 0 ? -WEFT_ECONFIG : 0;
}

int
services_take_fds(struct services *ss)
{
    for (size_t i = 0; i < ss->count; i++) {
        struct service *s = &ss->list[i];

        for (size_t j = 0; j < s->nfds; j++) {
            int fd = s->fds[j] < 0 ? -1 : fcntl(s->fds[j], F_DUPFD_CLOEXEC, 3);

            if (s->fds[j] >= 0 && fd < 0) {
                int rc = -errno;

                for (size_t k = 0; k < j; k++)      /* undo: the rest is the pool's */
                    close(s->fds[k]);
                return rc;
            }
            s->fds[j] = fd;
        }
        ss->own_fds = true;
    }
    return 0;
}

/* SOCK_STREAM or SOCK_DGRAM: a systemd socket's kind is the socket's own. */
static int
fd_type(int fd)
{
    int type = SOCK_STREAM;
    socklen_t len = sizeof(type);

    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
        type = SOCK_STREAM;
    return type;
}

void
services_log_listeners(const struct services *ss)
{
    for (size_t i = 0; i < ss->count; i++) {
        const struct service *s = &ss->list[i];
        const struct conf_service *cs = s->conf;

        for (size_t j = 0; j < s->nfds; j++) {
            struct sockaddr_storage sa = { 0 };     /* config_addr_string: zeroed past it */
            socklen_t len = sizeof(sa);
            char addr[160];

            if (s->fds[j] < 0 || getsockname(s->fds[j], (struct sockaddr *)&sa, &len) < 0)
                continue;
            const char *udp = fd_type(s->fds[j]) == SOCK_DGRAM ? "udp:" : "";
            config_addr_string((const struct sockaddr *)&sa, addr, sizeof(addr));
            if (strcmp(cs->name, cs->protocol) == 0)
                log_info("%s: listening on %s%s", cs->name, udp, addr);
            else
                log_info("%s: listening on %s%s (protocol %s)", cs->name, udp, addr,
                         cs->protocol);
        }
    }
}

struct weft_protocol *
services_protocol_new(struct service *s)
{
    if (s->plugin->rec->protocol_new != NULL)
        return s->plugin->rec->protocol_new(s->svc);
    return weft_stream_factory(s->stream);
}

static struct weft_protocol *
plain_factory(void *arg)
{
    return services_protocol_new(arg);
}

/* The plugins' per-worker hooks: worker_start for every service, in config order. */
static int
start_workers(struct services *ss, struct weft_loop *loop)
{
    for (size_t i = 0; i < ss->count; i++) {
        struct service *s = &ss->list[i];
        int (*start)(void *, struct weft_loop *, char *, size_t);
        char err[256] = "";
        int rc;

        start = PLUGIN_FIELD(s->plugin->rec, worker_start);
        if (start == NULL)
            continue;
        rc = start(s->svc, loop, err, sizeof(err));
        if (rc < 0) {
            log_error("%s: cannot start serving in this worker: %s", s->conf->name,
                      err[0] ? err : weft_strerror(rc));
            return rc;
        }
        s->worker_started = true;
    }
    return 0;
}

/* worker_stop where worker_start succeeded, last service first. */
static void
stop_workers(struct services *ss)
{
    for (size_t i = ss->count; i-- > 0;) {
        struct service *s = &ss->list[i];
        void (*stop)(void *, struct weft_loop *);

        if (!s->worker_started)
            continue;
        s->worker_started = false;
        stop = PLUGIN_FIELD(s->plugin->rec, worker_stop);
        if (stop != NULL)
            stop(s->svc, ss->loop);
    }
}

/*
 * A UDP socket's endpoint: the plugin's datagram protocol behind a thin
 * forwarder that knows when the endpoint is lost, so the service never holds
 * a freed transport. One per socket per worker, not per datagram.
 */
struct service_dgram {
    struct weft_datagram_protocol base;
    struct weft_datagram_protocol *inner;   /* the plugin's */
    struct weft_datagram_transport *tr;
    struct service_dgram **slot;            /* where the service points at us */
};

#define INNER(p) (((struct service_dgram *)(p))->inner)
#define INNER_OPS(p) (INNER(p)->ops)

static int
dg_made(struct weft_datagram_protocol *p, struct weft_datagram_transport *tr)
{
    ((struct service_dgram *)p)->tr = tr;
    return INNER_OPS(p)->connection_made ? INNER_OPS(p)->connection_made(INNER(p), tr) : 0;
}

static int
dg_received(struct weft_datagram_protocol *p, const void *data, size_t len,
            const struct sockaddr *addr, socklen_t addrlen)
{
    return INNER_OPS(p)->datagram_received
               ? INNER_OPS(p)->datagram_received(INNER(p), data, len, addr, addrlen) : 0;
}

static void
dg_error(struct weft_datagram_protocol *p, int error)
{
    if (INNER_OPS(p)->error_received)
        INNER_OPS(p)->error_received(INNER(p), error);
}

static void
dg_pause(struct weft_datagram_protocol *p)
{
    if (INNER_OPS(p)->pause_writing)
        INNER_OPS(p)->pause_writing(INNER(p));
}

static void
dg_resume(struct weft_datagram_protocol *p)
{
    if (INNER_OPS(p)->resume_writing)
        INNER_OPS(p)->resume_writing(INNER(p));
}

static void
dg_lost(struct weft_datagram_protocol *p, int error)
{
    struct service_dgram *d = (struct service_dgram *)p;

    if (d->slot != NULL)
        *d->slot = NULL;
    if (INNER_OPS(p)->connection_lost)
        INNER_OPS(p)->connection_lost(INNER(p), error);
    free(d);
}

static const struct weft_datagram_protocol_ops dg_ops = {
    .connection_made = dg_made,
    .datagram_received = dg_received,
    .error_received = dg_error,
    .connection_lost = dg_lost,
    .pause_writing = dg_pause,
    .resume_writing = dg_resume,
};

static struct weft_datagram_protocol *
dg_factory(void *arg)
{
    return arg;
}

/*
 * Serve the service's UDP sockets: one endpoint each, on the socket itself
 * (every worker reads the same one; docs/design-daemon.md says why). The TCP
 * sockets are moved to the front of s->fds; *ntcp says how many.
 */
static int
start_datagrams(struct service *s, struct weft_loop *loop, size_t *ntcp)
{
    struct weft_datagram_protocol *(*make)(void *) = PLUGIN_FIELD(s->plugin->rec, datagram_new);
    size_t n = 0, nudp = 0;
    int rc;

    for (size_t j = 0; j < s->nfds; j++)
        nudp += s->fds[j] >= 0 && fd_type(s->fds[j]) == SOCK_DGRAM;
    if (nudp > 0 && make == NULL) {
        log_error("%s: protocol %s does not speak UDP (its plugin has no datagram_new)",
                  s->conf->name, s->conf->protocol);
        return -EPROTONOSUPPORT;
    }
    if (nudp > 0 && (s->dgrams = calloc(nudp, sizeof(*s->dgrams))) == NULL)
        return -ENOMEM;
    for (size_t j = 0; j < s->nfds; j++) {
        struct weft_datagram_options o = WEFT_DATAGRAM_OPTIONS_INIT;
        struct service_dgram *d;

        if (s->fds[j] < 0 || fd_type(s->fds[j]) != SOCK_DGRAM) {
            int fd = s->fds[j];

            s->fds[j] = -1;         /* moved, never held twice */
            s->fds[n++] = fd;
            continue;
        }
        d = calloc(1, sizeof(*d));
        if (d == NULL || (d->inner = make(s->svc)) == NULL) {
            free(d);
            log_error("%s: cannot serve UDP: %s", s->conf->name, strerror(ENOMEM));
            return -ENOMEM;
        }
        d->base.ops = &dg_ops;
        d->slot = &s->dgrams[s->ndgrams];
        o.fd = s->fds[j];
        rc = weft_create_datagram_endpoint(loop, dg_factory, d, NULL, 0, NULL, 0, &o, NULL);
        if (rc < 0) {               /* d got connection_lost: freed, the plugin's too */
            log_error("%s: cannot serve UDP: %s", s->conf->name, weft_strerror(rc));
            return rc;
        }
        s->fds[j] = -1;             /* the endpoint's now */
        s->dgrams[s->ndgrams++] = d;    /* connection_lost, always later, clears it */
    }
    *ntcp = n;
    return 0;
}

static void
close_datagrams(struct service *s, bool abort)
{
    for (size_t j = 0; j < s->ndgrams; j++) {
        struct service_dgram *d = s->dgrams[j];

        if (d == NULL)
            continue;
        if (abort)
            weft_datagram_abort(d->tr);
        else
            weft_datagram_close(d->tr);
    }
}

int
services_start(struct services *ss, struct weft_loop *loop, weft_server_accept_cb *accepted,
               void *arg)
{
    int rc;

    ss->loop = loop;
    rc = start_workers(ss, loop);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < ss->count; i++) {
        struct service *s = &ss->list[i];
        size_t ntcp;

        rc = start_datagrams(s, loop, &ntcp);
        if (rc < 0)
            return rc;
        if (ntcp == 0)
            continue;           /* UDP only: no server */
        if (!PLUGIN_SPEAKS_TCP(s->plugin->rec)) {   /* a systemd stream socket named so */
            log_error("%s: protocol %s speaks UDP only: a stream socket cannot be served",
                      s->conf->name, s->conf->protocol);
            return -EPROTONOSUPPORT;
        }
        if (s->plugin->rec->protocol_new == NULL) {
            struct weft_stream_options sto = { .limit = s->limit };

            s->stream = weft_stream_factory_new(s->plugin->rec->client, s->svc, &sto);
            if (s->stream == NULL) {
                log_error("%s: cannot serve: %s", s->conf->name, strerror(errno));
                return -errno;
            }
        }
        struct weft_server_options so = WEFT_SERVER_OPTIONS_INIT;

        so.tls = s->tls;
        so.proxy = s->proxy.versions != 0 ? &s->proxy : NULL;
        so.idle_timeout_ms = s->idle_ms;
        rc = weft_create_server_fds(loop, plain_factory, s, s->fds, ntcp, &so, &s->server);
        if (rc < 0) {
            log_error("%s: cannot serve: %s", s->conf->name, weft_strerror(rc));
            return rc;
        }
        weft_server_set_accept_cb(s->server, accepted, arg);
        /* The server owns the sockets now (weft_create_server_fds takes them on success). */
        for (size_t j = 0; j < ntcp; j++)
            s->fds[j] = -1;
    }
    return 0;
}

void
services_close_listeners(struct services *ss)
{
    for (size_t i = 0; i < ss->count; i++) {
        if (ss->list[i].server != NULL)
            weft_server_close(ss->list[i].server);
        close_datagrams(&ss->list[i], false);   /* a UDP socket is its own listener */
    }
}

static bool
datagrams_left(const struct services *ss)
{
    for (size_t i = 0; i < ss->count; i++)
        for (size_t j = 0; j < ss->list[i].ndgrams; j++)
            if (ss->list[i].dgrams[j] != NULL)
                return true;
    return false;
}

void
services_drain(struct services *ss)
{
    for (size_t i = 0; i < ss->count; i++) {
        struct service *s = &ss->list[i];
        void (*drain)(void *) = PLUGIN_FIELD(s->plugin->rec, drain);

        if (drain != NULL && s->svc != NULL &&
            (s->worker_started || PLUGIN_FIELD(s->plugin->rec, worker_start) == NULL))
            drain(s->svc);
    }
}

void
services_close_clients(struct services *ss)
{
    for (size_t i = 0; i < ss->count; i++)
        if (ss->list[i].server != NULL)
            weft_server_close_clients(ss->list[i].server);
}

void
services_abort_clients(struct services *ss)
{
    for (size_t i = 0; i < ss->count; i++)
        if (ss->list[i].server != NULL)
            weft_server_abort_clients(ss->list[i].server);
}

size_t
services_connection_count(const struct services *ss)
{
    size_t n = 0;

    for (size_t i = 0; i < ss->count; i++)
        if (ss->list[i].server != NULL)
            n += weft_server_connection_count(ss->list[i].server);
    return n;
}

size_t
services_reopen(struct services *ss)
{
    size_t failed = 0;

    for (size_t i = 0; i < ss->count; i++) {
        struct service *s = &ss->list[i];
        int (*reopen)(void *, char *, size_t);
        char err[256] = "";
        int rc;

        if (!s->made || s->plugin == NULL)
            continue;
        reopen = PLUGIN_FIELD(s->plugin->rec, reopen);
        if (reopen == NULL)
            continue;
        rc = reopen(s->svc, err, sizeof(err));
        if (rc < 0) {
            log_error("%s: cannot reopen log files: %s", s->conf->name,
                      err[0] ? err : weft_strerror(rc));
            failed++;
        }
    }
    return failed;
}

void
services_free(struct services *ss)
{
    for (size_t i = 0; i < ss->count; i++) {
        weft_server_free(ss->list[i].server);
        close_datagrams(&ss->list[i], true);
    }
    /* the endpoints' connection_lost (the plugin frees its protocol) runs from the loop */
    for (int spins = 0; ss->loop != NULL && spins < 100 && datagrams_left(ss); spins++)
        weft_loop_run_once(ss->loop);
    /*
     * Freeing a server aborts its connections, which cancels their stream
     * handlers; they unwind in the next iterations and must be gone before
     * the plugin state they use is freed.
     */
    for (int spins = 0; ss->loop != NULL && spins < 100 && weft_stream_handler_count(ss->loop);
         spins++)
        weft_loop_run_once(ss->loop);
    stop_workers(ss);
    for (size_t i = 0; i < ss->count; i++) {
        struct service *s = &ss->list[i];

        weft_stream_factory_free(s->stream);
        weft_tls_context_free(s->tls);
        free(s->trusted);
        for (size_t j = 0; ss->own_fds && j < s->nfds; j++)
            if (s->fds[j] >= 0)
                close(s->fds[j]);
        free(s->fds);
        for (size_t j = 0; j < s->ndgrams; j++)
            if (s->dgrams[j] != NULL)
                s->dgrams[j]->slot = NULL;      /* not lost yet: must not write here later */
        free(s->dgrams);
        if (s->made && s->plugin->rec->service_free != NULL)
            s->plugin->rec->service_free(s->svc);
    }
    free(ss->list);
    for (size_t i = 0; i < ss->nplugins; i++)
        plugin_close(ss->plugins[i]);
    free(ss->plugins);
    free(ss->plugin_dir);
    memset(ss, 0, sizeof(*ss));
}
