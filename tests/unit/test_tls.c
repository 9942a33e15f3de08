/* SPDX-License-Identifier: MIT */
/* test_tls.c: TLS config errors, TLS servers and clients on both layers, over loopback. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <weft/weft.h>

#include "harness.h"
#include "tls/tls-int.h"        /* weft__transport_new_tls: TLS over any connected socket */

/*
 * Certificates are made at test time by tests/integration/tls_certs.sh into a
 * temporary directory (no key lives in the repository): a CA, servers a.test
 * (also localhost, 127.0.0.1) and b.test, a client certificate, another CA.
 *
 * By hand, not a test (the scripts use it with openssl s_client):
 *   ./unit_test_tls serve CERTDIR [key=value ...]
 * prints the port of a TLS echo server (Protocol layer, ALPN "echo", "http/1.1")
 * and serves until killed or stdin closes. With "starttls" the server speaks
 * plain SMTP first (enough for openssl s_client -starttls smtp) and upgrades
 * with weft_start_tls on STARTTLS; the echo server follows over TLS.
 */

static char certdir[256];

static const char *
cert(const char *name)
{
    static char buf[8][320];
    static int next;
    char *b = buf[next++ % 8];

    snprintf(b, sizeof(buf[0]), "%s/%s", certdir, name);
    return b;
}

static int
make_certs(void)
{
    const char *src = getenv("WEFT_SOURCE_DIR");
    char cmd[700];

    snprintf(certdir, sizeof(certdir), "/tmp/weft-tls-XXXXXX");
    if (mkdtemp(certdir) == NULL)
        return -1;
    if (src != NULL)
        snprintf(cmd, sizeof(cmd), "bash %s/tests/integration/tls_certs.sh %s", src, certdir);
    else    /* run by hand: this file is tests/unit/test_tls.c */
        snprintf(cmd, sizeof(cmd), "bash $(dirname %s)/../integration/tls_certs.sh %s",
                 __FILE__, certdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void
remove_certs(void)
{
    char cmd[300];

    snprintf(cmd, sizeof(cmd), "rm -rf %s", certdir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", certdir);
}

/* A server context from key=value pairs; NULL-terminated. Fails the test on error. */
static struct weft_tls_context *
server_ctx(const char *const *kv)
{
    static const char *const alpn[] = { "echo", "http/1.1", NULL };
    struct weft_tls_config *cfg = weft_tls_config_new();
    struct weft_tls_context *ctx;
    char err[256] = "";

    assert_non_null(cfg);
    for (; kv != NULL && kv[0] != NULL; kv += 2) {
        int rc = weft_tls_config_set(cfg, kv[0], kv[1], err, sizeof(err));

        if (rc != 0)
            fail_msg("%s = %s: %s (%s)", kv[0], kv[1], weft_strerror(rc), err);
    }
    assert_int_equal(weft_tls_config_set_alpn(cfg, alpn), 0);
    if (weft_tls_context_new(cfg, &ctx, err, sizeof(err)) != 0)
        fail_msg("context: %s", err);
    weft_tls_config_free(cfg);
    return ctx;
}

static struct weft_tls_context *
default_server_ctx(void)
{
    const char *kv[] = {
        "tls_certificate", cert("a.pem"), "tls_key", cert("a.key"),
        "tls_certificate", cert("b.pem"), "tls_key", cert("b.key"), NULL,
    };

    return server_ctx(kv);
}

static struct weft_tls_context *
client_ctx(const char *ca, const char *certificate, const char *key)
{
    static const char *const alpn[] = { "http/1.1", "echo", NULL };
    struct weft_tls_client_options o = {
        .ca_file = ca, .certificate = certificate, .key = key, .alpn = alpn,
    };
    struct weft_tls_context *ctx;
    char err[256] = "";

    if (weft_tls_context_new_client(&o, &ctx, err, sizeof(err)) != 0)
        fail_msg("client context: %s", err);
    return ctx;
}

/* ---- config ---- */

static void
config_errors_name_the_file(void **state)
{
    struct weft_tls_config *cfg = weft_tls_config_new();
    char err[256];
    (void)state;

    assert_int_equal(weft_tls_config_set(cfg, "tls_nonsense", "x", err, sizeof(err)),
                     -WEFT_ENOKEY);
    assert_int_equal(weft_tls_config_set(cfg, "tls_certificate", "/nonexistent/x.pem", err,
                                         sizeof(err)), -WEFT_ECONFIG);
    assert_non_null(strstr(err, "/nonexistent/x.pem"));
    assert_non_null(strstr(err, "No such file"));
    assert_int_equal(weft_tls_config_set(cfg, "tls_certificate", cert("bad.pem"), err,
                                         sizeof(err)), -WEFT_ECONFIG);
    assert_non_null(strstr(err, "bad.pem"));
    /* a key that belongs to another certificate */
    assert_int_equal(weft_tls_config_set(cfg, "tls_certificate", cert("a.pem"), err,
                                         sizeof(err)), 0);
    assert_int_equal(weft_tls_config_set(cfg, "tls_key", cert("b.key"), err, sizeof(err)),
                     -WEFT_ECONFIG);
    assert_non_null(strstr(err, "does not match"));
    assert_non_null(strstr(err, "b.key"));
    assert_int_equal(weft_tls_config_set(cfg, "tls_key", cert("a.key"), err, sizeof(err)), 0);
    assert_int_equal(weft_tls_config_set(cfg, "tls_min_version", "SSLv3", err, sizeof(err)),
                     -WEFT_ECONFIG);
    assert_int_equal(weft_tls_config_set(cfg, "tls_min_version", "TLSv1.3", err, sizeof(err)),
                     0);
    assert_int_equal(weft_tls_config_set(cfg, "tls_handshake_timeout", "soon", err,
                                         sizeof(err)), -WEFT_ECONFIG);
    assert_int_equal(weft_tls_config_set(cfg, "tls_handshake_timeout", "250ms", err,
                                         sizeof(err)), 0);
    assert_int_equal(weft_tls_config_set(cfg, "tls_ciphers", "NOT-A-CIPHER", err,
                                         sizeof(err)), -WEFT_ECONFIG);
    assert_int_equal(weft_tls_config_set(cfg, "tls_verify_client", "maybe", err, sizeof(err)),
                     -WEFT_ECONFIG);
    assert_int_equal(weft_tls_config_set(cfg, "tls_client_ca", cert("missing.pem"), err,
                                         sizeof(err)), -WEFT_ECONFIG);
    assert_non_null(strstr(err, "missing.pem"));
    assert_int_equal(weft_tls_config_check(cfg, err, sizeof(err)), 0);
    weft_tls_config_free(cfg);

    cfg = weft_tls_config_new();
    assert_int_equal(weft_tls_config_check(cfg, err, sizeof(err)), -WEFT_ECONFIG);
    assert_non_null(strstr(err, "tls_certificate"));
    /* a certificate file without its key, and no tls_key */
    assert_int_equal(weft_tls_config_set(cfg, "tls_certificate", cert("a.crt"), err,
                                         sizeof(err)), 0);
    assert_int_equal(weft_tls_config_check(cfg, err, sizeof(err)), -WEFT_ECONFIG);
    assert_non_null(strstr(err, "a.crt"));
    weft_tls_config_free(cfg);
}

/* ---- Protocol layer: an echo server, a checking client ---- */

struct seen {
    char version[32], cipher[64], alpn[32], sni[64], subject[128];
    int made, lost, last_error;
    int family;                 /* of the socket below (sockname) */
    bool lost_flag;
};

struct srv_echo {
    struct weft_protocol base;
    struct weft_transport *tr;
    struct seen *seen;
};

static void
info(struct weft_transport *tr, const char *name, char *buf, size_t size)
{
    size_t len = size;

    if (weft_transport_get_extra_info(tr, name, buf, &len) != 0)
        buf[0] = '\0';
}

static int
srv_made(struct weft_protocol *p, struct weft_transport *tr)
{
    struct srv_echo *e = (struct srv_echo *)p;
    void *ssl = NULL;
    size_t len = sizeof(ssl);

    e->tr = tr;
    e->seen->made++;
    assert_false(weft_transport_can_write_eof(tr));
    assert_int_equal(weft_transport_write_eof(tr), -ENOTSUP);
    assert_int_equal(weft_transport_get_extra_info(tr, "ssl_object", &ssl, &len), 0);
    assert_non_null(ssl);
    info(tr, "tls_version", e->seen->version, sizeof(e->seen->version));
    info(tr, "cipher", e->seen->cipher, sizeof(e->seen->cipher));
    info(tr, "alpn_protocol", e->seen->alpn, sizeof(e->seen->alpn));
    info(tr, "sni", e->seen->sni, sizeof(e->seen->sni));
    info(tr, "peercert_subject", e->seen->subject, sizeof(e->seen->subject));
    /* names the TLS layer does not know are the transport's below it */
    struct sockaddr_storage ss;
    len = sizeof(ss);
    if (weft_transport_get_extra_info(tr, "sockname", &ss, &len) == 0)
        e->seen->family = ss.ss_family;
    return 0;
}

static bool serve_mode;     /* "QUIT" closes the connection (for s_client) */
static bool serve_oneline;  /* serve ... oneline: echo the first line, then close */
static bool serve_starttls; /* serve ... starttls: plain SMTP, then weft_start_tls */

static int
srv_data(struct weft_protocol *p, struct evbuffer *in)
{
    struct srv_echo *e = (struct srv_echo *)p;
    struct evbuffer_ptr q;

    if (serve_mode) {
        q = evbuffer_search(in, "QUIT", 4, NULL);
        if (q.pos >= 0) {
            evbuffer_drain(in, evbuffer_get_length(in));
            weft_transport_write(e->tr, "BYE\n", 4);
            weft_transport_close(e->tr);    /* close_notify once BYE is out */
            return 0;
        }
        q = evbuffer_search(in, "\n", 1, NULL);
        if (serve_oneline && q.pos >= 0) {
            int rc = weft_transport_write_buffer(e->tr, in);

            weft_transport_close(e->tr);
            return rc;
        }
    }
    return weft_transport_write_buffer(e->tr, in);
}

static bool
srv_eof(struct weft_protocol *p)
{
    (void)p;
    return true;    /* ignored on TLS: the connection closes anyway */
}

static void
srv_lost(struct weft_protocol *p, int error)
{
    struct srv_echo *e = (struct srv_echo *)p;

    e->seen->lost++;
    e->seen->last_error = error;
    e->seen->lost_flag = true;
    free(e);
}

static const struct weft_protocol_ops srv_ops = {
    .connection_made = srv_made,
    .data_received = srv_data,
    .eof_received = srv_eof,
    .connection_lost = srv_lost,
};

static struct weft_protocol *
srv_factory(void *arg)
{
    struct srv_echo *e = calloc(1, sizeof(*e));

    if (e == NULL)
        return NULL;
    e->base.ops = &srv_ops;
    e->seen = arg;
    return &e->base;
}

static struct weft_server *
start_server(struct weft_loop *loop, struct weft_tls_context *ctx, struct seen *seen,
             uint16_t *port)
{
    struct weft_server_options o = WEFT_SERVER_OPTIONS_INIT;
    struct weft_server *s;
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);

    o.tls = ctx;
    assert_int_equal(weft_create_server(loop, srv_factory, seen, "127.0.0.1", 0, &o, &s), 0);
    assert_int_equal(weft_server_get_sockname(s, 0, (struct sockaddr *)&sin, &sl), 0);
    *port = ntohs(sin.sin_port);
    return s;
}

/* The client: sends total bytes of a pattern, checks the echo byte for byte, closes. */
struct cli {
    struct weft_protocol base;
    struct weft_transport *tr;
    size_t total, got;
    bool mismatch, done, lost_flag, connected;
    int conn_error, lost_error;
    struct seen seen;
};

static unsigned char
pattern(size_t i)
{
    return (unsigned char)((i * 7 + (i >> 13)) & 0xff);
}

static int
cli_made(struct weft_protocol *p, struct weft_transport *tr)
{
    struct cli *c = (struct cli *)p;
    size_t chunk = 256 * 1024;
    unsigned char *buf = malloc(chunk);

    c->tr = tr;
    if (buf == NULL)
        return -ENOMEM;
    info(tr, "peercert_subject", c->seen.subject, sizeof(c->seen.subject));
    info(tr, "alpn_protocol", c->seen.alpn, sizeof(c->seen.alpn));
    info(tr, "sni", c->seen.sni, sizeof(c->seen.sni));
    for (size_t off = 0; off < c->total; off += chunk) {
        size_t n = c->total - off < chunk ? c->total - off : chunk;

        for (size_t i = 0; i < n; i++)
            buf[i] = pattern(off + i);
        if (weft_transport_write(tr, buf, n) != 0)
            break;
    }
    free(buf);
    if (c->total == 0)
        weft_transport_close(tr);
    return 0;
}

static int
cli_data(struct weft_protocol *p, struct evbuffer *in)
{
    struct cli *c = (struct cli *)p;
    struct evbuffer_iovec v[16];
    int n = evbuffer_peek(in, -1, NULL, v, 16);

    for (int k = 0; k < n && k < 16; k++) {
        const unsigned char *b = v[k].iov_base;

        for (size_t i = 0; i < v[k].iov_len; i++)
            if (b[i] != pattern(c->got + i))
                c->mismatch = true;
        c->got += v[k].iov_len;
        evbuffer_drain(in, v[k].iov_len);
        v[k].iov_len = 0;
    }
    if (c->got >= c->total) {
        c->done = true;
        weft_transport_close(c->tr);
    }
    return 0;
}

static void
cli_lost(struct weft_protocol *p, int error)
{
    struct cli *c = (struct cli *)p;

    c->lost_error = error;
    c->lost_flag = true;
    c->tr = NULL;
}

static const struct weft_protocol_ops cli_ops = {
    .connection_made = cli_made,
    .data_received = cli_data,
    .connection_lost = cli_lost,
};

static struct weft_protocol *
cli_factory(void *arg)
{
    struct cli *c = arg;

    c->base.ops = &cli_ops;
    return &c->base;
}

static void
on_connect(struct weft_transport *tr, int error, void *arg)
{
    struct cli *c = arg;

    c->connected = tr != NULL;
    c->conn_error = error;
    if (tr == NULL)
        c->lost_flag = true;
}

static void
tls_connect(struct weft_loop *loop, uint16_t port, struct weft_tls_context *cctx,
            const char *name, struct cli *c)
{
    struct weft_connect_options o = WEFT_CONNECT_OPTIONS_INIT;

    o.tls = cctx;
    o.server_hostname = name;
    assert_int_equal(weft_create_connection(loop, cli_factory, c, "127.0.0.1", port, &o,
                                            on_connect, c, NULL), 0);
}

/* The client got its bytes back intact; both ends closed with close_notify, no error. */
static void
echoed_and_closed(struct weft_loop *loop, struct cli *c, struct seen *seen)
{
    assert_int_equal(harness_run_until(loop, &c->lost_flag, 20000), 0);
    assert_true(c->connected);
    assert_int_equal(c->conn_error, 0);
    assert_int_equal(c->got, c->total);
    assert_false(c->mismatch);
    assert_int_equal(c->lost_error, 0);
    assert_int_equal(harness_run_until(loop, &seen->lost_flag, 5000), 0);
    assert_int_equal(seen->made, 1);
    assert_int_equal(seen->last_error, 0);
    assert_string_equal(seen->version, "TLSv1.3");
}

static void
echo_8mib_checked(void **state)
{
    struct weft_loop *loop = harness_loop_new();
    struct weft_tls_context *sctx = default_server_ctx();
    struct weft_tls_context *cctx = client_ctx(cert("ca.pem"), NULL, NULL);
    struct seen seen = { 0 };
    struct cli c = { .total = 8u << 20 };
    struct weft_server *s;
    uint16_t port;
    (void)state;

    s = start_server(loop, sctx, &seen, &port);
    weft_tls_context_free(sctx);     /* the server keeps its own reference */
    tls_connect(loop, port, cctx, "a.test", &c);
    echoed_and_closed(loop, &c, &seen);
    assert_true(strlen(seen.cipher) > 0);
    assert_string_equal(seen.alpn, "echo");    /* the server's preference wins */
    assert_string_equal(seen.sni, "a.test");
    assert_string_equal(seen.subject, "");     /* no client certificate */
    assert_non_null(strstr(c.seen.subject, "CN=a.test"));
    assert_string_equal(c.seen.sni, "a.test");
    weft_server_free(s);
    weft_tls_context_free(cctx);
    weft_loop_free(loop);
}

static void
sni_picks_the_certificate(void **state)
{
    struct weft_loop *loop = harness_loop_new();
    struct weft_tls_context *sctx = default_server_ctx();
    struct weft_tls_context *cctx = client_ctx(cert("ca.pem"), NULL, NULL);
    struct seen seen = { 0 };
    struct cli c = { .total = 1000 };
    struct weft_server *s;
    uint16_t port;
    (void)state;

    s = start_server(loop, sctx, &seen, &port);
    tls_connect(loop, port, cctx, "b.test", &c);
    assert_int_equal(harness_run_until(loop, &c.lost_flag, 10000), 0);
    assert_int_equal(c.conn_error, 0);
    assert_non_null(strstr(c.seen.subject, "CN=b.test"));
    assert_int_equal(harness_run_until(loop, &seen.lost_flag, 5000), 0);
    assert_string_equal(seen.sni, "b.test");
    weft_server_free(s);
    weft_tls_context_free(sctx);
    weft_tls_context_free(cctx);
    weft_loop_free(loop);
}

static void
wrong_ca_fails_verification(void **state)
{
    struct weft_loop *loop = harness_loop_new();
    struct weft_tls_context *sctx = default_server_ctx();
    struct weft_tls_context *cctx = client_ctx(cert("other.pem"), NULL, NULL);
    struct weft_tls_context *cctx2 = client_ctx(cert("ca.pem"), NULL, NULL);
    struct seen seen = { 0 };
    struct cli c = { .total = 10 }, c2 = { .total = 10 };
    struct weft_server *s;
    uint16_t port;
    (void)state;

    harness_log_capture();
    harness_log_clear();
    s = start_server(loop, sctx, &seen, &port);
    tls_connect(loop, port, cctx, "a.test", &c);
    assert_int_equal(harness_run_until(loop, &c.lost_flag, 10000), 0);
    assert_false(c.connected);
    assert_int_equal(c.conn_error, -WEFT_ETLS);
    assert_true(harness_log_contains("certificate verification failed"));
    /* the right CA, but a name the certificate does not carry */
    tls_connect(loop, port, cctx2, "c.test", &c2);
    assert_int_equal(harness_run_until(loop, &c2.lost_flag, 10000), 0);
    assert_int_equal(c2.conn_error, -WEFT_ETLS);
    assert_true(harness_log_contains("hostname mismatch"));
    harness_run_for(loop, 50);
    assert_int_equal(seen.made, 0);
    weft_server_free(s);
    weft_tls_context_free(sctx);
    weft_tls_context_free(cctx);
    weft_tls_context_free(cctx2);
    weft_loop_free(loop);
}

static void
client_certificate_required(void **state)
{
    const char *kv[] = {
        "tls_certificate", cert("a.pem"), "tls_key", cert("a.key"),
        "tls_client_ca", cert("ca.pem"), "tls_verify_client", "required", NULL,
    };
    struct weft_loop *loop = harness_loop_new();
    struct weft_tls_context *sctx = server_ctx(kv);
    struct weft_tls_context *anon = client_ctx(cert("ca.pem"), NULL, NULL);
    struct weft_tls_context *with = client_ctx(cert("ca.pem"), cert("client.pem"),
                                               cert("client.key"));
    struct seen seen = { 0 };
    struct cli c = { .total = 100 }, c2 = { .total = 100 };
    struct weft_server *s;
    uint16_t port;
    (void)state;

    s = start_server(loop, sctx, &seen, &port);
    /* TLS 1.3: the client learns of the refusal when it reads, after connecting */
    tls_connect(loop, port, anon, "a.test", &c);
    assert_int_equal(harness_run_until(loop, &c.lost_flag, 10000), 0);
    assert_true(c.conn_error != 0 || c.lost_error != 0);
    assert_true(c.got < c.total);
    harness_run_for(loop, 50);
    assert_int_equal(seen.made, 0);
    tls_connect(loop, port, with, "a.test", &c2);
    assert_int_equal(harness_run_until(loop, &c2.lost_flag, 10000), 0);
    assert_int_equal(c2.conn_error, 0);
    assert_int_equal(c2.got, c2.total);
    assert_int_equal(harness_run_until(loop, &seen.lost_flag, 5000), 0);
    assert_int_equal(seen.made, 1);
    assert_non_null(strstr(seen.subject, "CN=client one"));
    weft_server_free(s);
    weft_tls_context_free(sctx);
    weft_tls_context_free(anon);
    weft_tls_context_free(with);
    weft_loop_free(loop);
}

/* ---- misbehaving raw clients ---- */

static int
raw_connect(uint16_t port)
{
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    return fd;
}

/* Run the loop until the server closes fd's connection (EOF or reset). */
static bool
wait_peer_closed(struct weft_loop *loop, int fd, uint64_t ms)
{
    for (uint64_t t = 0; t < ms; t += 10) {
        char buf[4096];
        ssize_t n;

        harness_run_for(loop, 10);
        while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
            ;
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            return true;
    }
    return false;
}

static void
bad_clients_are_closed_and_logged(void **state)
{
    const char *kv[] = {
        "tls_certificate", cert("a.pem"), "tls_key", cert("a.key"),
        "tls_handshake_timeout", "300ms", NULL,
    };
    static const char hello_start[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
    struct weft_loop *loop = harness_loop_new();
    struct weft_tls_context *sctx = server_ctx(kv);
    struct seen seen = { 0 };
    struct weft_server *s;
    uint16_t port;
    int fd;
    (void)state;

    harness_log_capture();
    s = start_server(loop, sctx, &seen, &port);

    /* plaintext HTTP on the TLS port */
    harness_log_clear();
    fd = raw_connect(port);
    assert_int_equal(send(fd, "GET / HTTP/1.0\r\n\r\n", 18, 0), 18);
    assert_true(wait_peer_closed(loop, fd, 3000));
    close(fd);
    assert_true(harness_log_contains("TLS handshake with 127.0.0.1"));

    /* a client that drops in the middle of its ClientHello */
    harness_log_clear();
    fd = raw_connect(port);
    assert_int_equal(send(fd, hello_start, sizeof(hello_start) - 1, 0),
                     (ssize_t)sizeof(hello_start) - 1);
    harness_run_for(loop, 30);
    close(fd);
    harness_run_for(loop, 100);
    assert_int_equal(weft_server_connection_count(s), 0);
    assert_true(harness_log_contains("TLS handshake with"));

    /* a client that says nothing: the handshake timeout (300 ms) ends it */
    harness_log_clear();
    fd = raw_connect(port);
    harness_run_for(loop, 100);
    assert_int_equal(weft_server_connection_count(s), 1);
    assert_true(wait_peer_closed(loop, fd, 5000));
    close(fd);
    assert_true(harness_log_contains("timed out"));
    assert_int_equal(weft_server_connection_count(s), 0);

    assert_int_equal(seen.made, 0);     /* no protocol was ever made */
    weft_server_free(s);
    weft_tls_context_free(sctx);
    weft_loop_free(loop);
}

/* ---- stream layer ---- */

static int
stream_echo(struct weft_reader *r, struct weft_writer *w, void *arg)
{
    char line[256], ver[32];
    size_t len = sizeof(ver);
    ssize_t n;

    (void)arg;
    if (weft_writer_get_extra_info(w, "tls_version", ver, &len) != 0)
        return -EINVAL;
    while ((n = weft_reader_readline(r, line, sizeof(line))) > 0) {
        int rc = weft_writer_write(w, line, (size_t)n);

        if (rc == 0)
            rc = weft_writer_drain(w);
        if (rc < 0)
            return rc;
    }
    return n < 0 ? (int)n : 0;
}

struct stream_args {
    uint16_t port;
    struct weft_tls_context *cctx;
    const char *name;
};

static intptr_t
stream_client(void *arg)
{
    struct stream_args *a = arg;
    struct weft_stream_options o = { .tls = a->cctx, .server_hostname = a->name };
    struct weft_reader *r;
    struct weft_writer *w;
    char line[256];
    ssize_t n;
    int rc;

    rc = weft_open_connection("127.0.0.1", a->port, &o, &r, &w);
    if (rc < 0)
        return rc;
    rc = weft_writer_write(w, "hello over tls\n", 15);
    if (rc == 0)
        rc = weft_writer_drain(w);
    n = rc == 0 ? weft_reader_readline(r, line, sizeof(line)) : rc;
    if (n == 15 && memcmp(line, "hello over tls\n", 15) == 0)
        rc = 1;
    else
        rc = n < 0 ? (int)n : -EPROTO;
    weft_writer_close(w);
    weft_writer_free(w);
    return rc;
}

/* A stream server on 127.0.0.1 with an OS-picked port; returns the port. */
static uint16_t
serve_streams(struct weft_loop *loop, weft_client_cb *cb, const struct weft_stream_options *o,
              struct weft_stream_server **ss)
{
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);

    assert_int_equal(weft_start_server(loop, cb, NULL, "127.0.0.1", 0, o, ss), 0);
    assert_int_equal(weft_stream_server_get_sockname(*ss, 0, (struct sockaddr *)&sin, &sl), 0);
    return ntohs(sin.sin_port);
}

/* Close it, let its handlers see it, free it. */
static void
stop_streams(struct weft_loop *loop, struct weft_stream_server *ss)
{
    weft_stream_server_close(ss);
    harness_run_for(loop, 50);
    weft_stream_server_free(ss);
}

static void
stream_layer_both_ends(void **state)
{
    struct weft_loop *loop = harness_loop_new();
    struct weft_tls_context *sctx = default_server_ctx();
    struct weft_tls_context *cctx = client_ctx(cert("ca.pem"), NULL, NULL);
    struct weft_tls_context *wrong = client_ctx(cert("other.pem"), NULL, NULL);
    struct weft_stream_options so = { .tls = sctx };
    struct weft_stream_server *ss;
    struct stream_args a = { .cctx = cctx, .name = "localhost" };
    (void)state;

    a.port = serve_streams(loop, stream_echo, &so, &ss);
    assert_int_equal(harness_run_task(loop, stream_client, &a, 10000), 1);
    a.name = NULL;      /* server_hostname defaults to the host: 127.0.0.1, an IP SAN */
    assert_int_equal(harness_run_task(loop, stream_client, &a, 10000), 1);
    a.cctx = wrong;
    assert_int_equal(harness_run_task(loop, stream_client, &a, 10000), -WEFT_ETLS);
    stop_streams(loop, ss);
    weft_tls_context_free(sctx);
    weft_tls_context_free(cctx);
    weft_tls_context_free(wrong);
    weft_loop_free(loop);
}

/*
 * TLS is a layer over a transport, not a socket flavour: the same code over a
 * Unix socketpair, both ends ours, 4 MiB echoed with flow control, close_notify
 * both ways.
 */
static void
tls_over_a_unix_socketpair(void **state)
{
    struct weft_loop *loop = harness_loop_new();
    struct weft_tls_context *sctx = default_server_ctx();
    struct weft_tls_context *cctx = client_ctx(cert("ca.pem"), NULL, NULL);
    struct weft_transport *st = NULL, *ct = NULL;
    struct seen seen = { 0 };
    struct cli c = { .total = 4u << 20 };
    int sv[2], fd = -1;
    size_t len = sizeof(fd);
    (void)state;

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(weft__transport_new_tls(loop, sv[0], sctx, NULL, srv_factory, &seen, NULL,
                                             NULL, NULL, &st), 0);
    assert_int_equal(weft__transport_new_tls(loop, sv[1], cctx, "a.test", cli_factory, &c,
                                             NULL, on_connect, &c, &ct), 0);
    /* before the handshake: the layer's own names are not there, the socket's are */
    assert_int_equal(weft_transport_get_extra_info(st, "tls_version", c.seen.version,
                                                   &(size_t){ sizeof(c.seen.version) }),
                     -ENOENT);
    assert_int_equal(weft_transport_get_extra_info(st, "socket", &fd, &len), 0);
    assert_int_equal(fd, sv[0]);
    echoed_and_closed(loop, &c, &seen);
    assert_string_equal(seen.sni, "a.test");
    assert_int_equal(seen.family, AF_UNIX);
    assert_non_null(strstr(c.seen.subject, "CN=a.test"));
    weft_tls_context_free(sctx);
    weft_tls_context_free(cctx);
    weft_loop_free(loop);
}

/*
 * One lower write per call, not one per 16 KiB record: the server's socket is
 * a SOCK_SEQPACKET socketpair, so each sendmsg arrives as one message, which
 * a relay in the loop reads whole, parses into TLS records and logs, and then
 * passes on to the client's SOCK_STREAM socketpair. The client sends a phase
 * digit; the server answers it with a write of four records (64 KiB), a
 * writelines of 3 x 20,000 bytes, a write of 100 bytes, a write_buffer of
 * 40,000 bytes; the client waits for all of each before the next.
 */
struct gather_log {
    int phase, records, full;       /* full: records of 16 KiB of plaintext */
    size_t bytes;
};

struct relay {
    int seq, str;                   /* our ends: the server's (messages), the client's */
    struct event *from_srv, *from_cli;
    unsigned char *buf;
    int phase, nlog;
    struct gather_log log[64];
    bool srv_eof;
};

#define RELAY_BUF (512u * 1024)

static void
relay_out(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w < 0 && errno == EINTR)
            continue;
        assert_true(w > 0);
        p += w;
        n -= (size_t)w;
    }
}

static void
relay_from_srv(evutil_socket_t fd, short what, void *arg)
{
    struct relay *r = arg;
    ssize_t n;

    (void)what;
    while ((n = recv(fd, r->buf, RELAY_BUF, MSG_DONTWAIT | MSG_TRUNC)) > 0) {
        struct gather_log *l = &r->log[r->nlog < 63 ? r->nlog++ : 63];
        size_t off = 0;

        assert_true((size_t)n <= RELAY_BUF);
        *l = (struct gather_log){ .phase = r->phase, .bytes = (size_t)n };
        while (off + 5 <= (size_t)n) {
            size_t len = (size_t)r->buf[off + 3] << 8 | r->buf[off + 4];

            l->records++;
            l->full += len >= 16384;
            off += 5 + len;
        }
        assert_int_equal(off, (size_t)n);     /* a message is whole records */
        relay_out(r->str, r->buf, (size_t)n);
    }
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        r->srv_eof = true;
        event_del(r->from_srv);
        (void)shutdown(r->str, SHUT_WR);
    }
}

static void
relay_from_cli(evutil_socket_t fd, short what, void *arg)
{
    struct relay *r = arg;
    ssize_t n;

    (void)what;
    while ((n = read(fd, r->buf, 65536)) > 0)
        assert_int_equal(send(r->seq, r->buf, (size_t)n, MSG_NOSIGNAL), n);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        event_del(r->from_cli);
        (void)shutdown(r->seq, SHUT_WR);
    }
}

struct burst {
    struct weft_protocol base;
    struct weft_transport *tr;
    unsigned char *data;
    bool lost_flag;
};

static int
burst_made(struct weft_protocol *p, struct weft_transport *tr)
{
    ((struct burst *)p)->tr = tr;
    return 0;
}

static int
burst_data(struct weft_protocol *p, struct evbuffer *in)
{
    struct burst *b = (struct burst *)p;
    unsigned char *d = b->data;
    struct iovec iov[3] = { { d, 20000 }, { d + 20000, 20000 }, { d + 40000, 20000 } };
    struct evbuffer *buf;
    char c;

    while (evbuffer_remove(in, &c, 1) == 1) {
        switch (c) {
        case '1':
            assert_int_equal(weft_transport_write(b->tr, d, 65536), 0);
            break;
        case '2':
            assert_int_equal(weft_transport_writelines(b->tr, iov, 3), 0);
            break;
        case '3':
            assert_int_equal(weft_transport_write(b->tr, d, 100), 0);
            break;
        case '4':
            buf = evbuffer_new();
            assert_non_null(buf);
            assert_int_equal(evbuffer_add(buf, d, 40000), 0);
            assert_int_equal(weft_transport_write_buffer(b->tr, buf), 0);
            assert_int_equal(evbuffer_get_length(buf), 0);
            evbuffer_free(buf);
            break;
        default:
            break;
        }
    }
    return 0;
}

static void
burst_lost(struct weft_protocol *p, int err)
{
    (void)err;
    ((struct burst *)p)->lost_flag = true;
}

static const struct weft_protocol_ops burst_ops = {
    .connection_made = burst_made, .data_received = burst_data, .connection_lost = burst_lost,
};

static struct weft_protocol *
given(void *arg)
{
    return arg;
}

/* The client: each phase's answer is the pattern from 0; counts and checks it. */
struct sink {
    struct weft_protocol base;
    struct weft_transport *tr;
    size_t want, got;               /* of this phase */
    bool mismatch, done, lost_flag, connected;
};

static int
sink_made(struct weft_protocol *p, struct weft_transport *tr)
{
    ((struct sink *)p)->tr = tr;
    return 0;
}

static int
sink_data(struct weft_protocol *p, struct evbuffer *in)
{
    struct sink *k = (struct sink *)p;
    unsigned char c;

    while (evbuffer_remove(in, &c, 1) == 1)
        k->mismatch |= k->got >= k->want || c != pattern(k->got++);
    k->done = k->got == k->want;
    return 0;
}

static void
sink_lost(struct weft_protocol *p, int err)
{
    (void)err;
    ((struct sink *)p)->lost_flag = true;
}

static const struct weft_protocol_ops sink_ops = {
    .connection_made = sink_made, .data_received = sink_data, .connection_lost = sink_lost,
};

static void
sink_connected(struct weft_transport *tr, int error, void *arg)
{
    struct sink *k = arg;

    (void)error;
    k->connected = tr != NULL;
    k->lost_flag = tr == NULL;
}

/* The relay's messages of one phase: how many, and how many held full records. */
static int
phase_messages(const struct relay *r, int phase, int *with_full, const struct gather_log **one)
{
    int n = 0;

    *with_full = 0;
    for (int i = 0; i < r->nlog; i++) {
        if (r->log[i].phase != phase)
            continue;
        n++;
        *with_full += r->log[i].full > 0;
        if (r->log[i].full > 0 || *one == NULL)
            *one = &r->log[i];
    }
    return n;
}

static void
records_of_a_write_go_down_together(void **state)
{
    static const size_t sizes[] = { 65536, 60000, 100, 40000 };
    struct weft_loop *loop = harness_loop_new();
    struct event_base *base = weft_loop_get_base(loop);
    struct weft_tls_context *sctx = default_server_ctx();
    struct weft_tls_context *cctx = client_ctx(cert("ca.pem"), NULL, NULL);
    struct burst b = { .base.ops = &burst_ops };
    struct sink c = { .base.ops = &sink_ops };
    struct relay r = { .phase = 0 };
    struct weft_transport *st = NULL, *ct = NULL;
    const struct gather_log *one;
    int sp[2], cp[2], full;
    (void)state;

    b.data = malloc(65536);
    r.buf = malloc(RELAY_BUF);
    assert_non_null(b.data);
    assert_non_null(r.buf);
    for (size_t i = 0; i < 65536; i++)
        b.data[i] = pattern(i);
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sp), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, cp), 0);
    r.seq = sp[1];
    r.str = cp[0];
    r.from_srv = event_new(base, r.seq, EV_READ | EV_PERSIST, relay_from_srv, &r);
    r.from_cli = event_new(base, r.str, EV_READ | EV_PERSIST, relay_from_cli, &r);
    assert_non_null(r.from_srv);
    assert_non_null(r.from_cli);
    assert_int_equal(event_add(r.from_srv, NULL), 0);
    assert_int_equal(event_add(r.from_cli, NULL), 0);
    assert_int_equal(weft__transport_new_tls(loop, sp[0], sctx, NULL, given, &b, NULL, NULL,
                                             NULL, &st), 0);
    assert_int_equal(weft__transport_new_tls(loop, cp[1], cctx, "a.test", given, &c,
                                             NULL, sink_connected, &c, &ct), 0);
    assert_int_equal(harness_run_until(loop, &c.connected, 10000), 0);
    for (int k = 1; k <= 4; k++) {
        char digit = (char)('0' + k);

        r.phase = k;
        c.want = sizes[k - 1];
        c.got = 0;
        c.done = false;
        assert_int_equal(weft_transport_write(ct, &digit, 1), 0);
        assert_int_equal(harness_run_until(loop, &c.done, 10000), 0);
        assert_false(c.mismatch);
        one = NULL;
        int n = phase_messages(&r, k, &full, &one);
        if (k == 1) {
            /* the session tickets may come in this phase, in a message of their own */
            assert_int_equal(full, 1);
            assert_int_equal(one->full, 4);
        } else {
            assert_int_equal(n, 1);
            assert_true(one->bytes > sizes[k - 1]);
            /* 60,000 bytes are at least 4 records (how many: the buffer's chains) */
            if (k == 2)
                assert_true(one->records >= 4);
            else
                assert_int_equal(one->records, k == 3 ? 1 : 3);
        }
    }
    weft_transport_close(ct);
    assert_int_equal(harness_run_until(loop, &b.lost_flag, 10000), 0);
    assert_int_equal(harness_run_until(loop, &c.lost_flag, 10000), 0);
    assert_false(c.mismatch);
    event_free(r.from_srv);
    event_free(r.from_cli);
    close(sp[1]);
    close(cp[0]);
    free(r.buf);
    free(b.data);
    weft_tls_context_free(sctx);
    weft_tls_context_free(cctx);
    weft_loop_free(loop);
}

/* glibc's bytes in use; 0 where malloc is not glibc's (valgrind, ASan). */
static size_t
heap_in_use(void)
{
    return mallinfo2().uordblks;
}

/*
 * OpenSSL's record buffers (16 KiB and more each way, each end) stay while
 * records move and are freed once the connection has moved none for a second
 * or two (tls_transport.c, note_busy); the connection works on after that. The
 * heap is measured where glibc's allocator is the one in use. Also: a client
 * offering OpenSSL's default order (AES-256-GCM first) gets AES-128-GCM.
 */
static void
idle_connection_frees_record_buffers(void **state)
{
    struct weft_loop *loop = harness_loop_new();
    struct weft_tls_context *sctx = default_server_ctx();
    struct weft_tls_context *cctx = client_ctx(cert("ca.pem"), NULL, NULL);
    struct burst b = { .base.ops = &burst_ops };
    struct sink c = { .base.ops = &sink_ops };
    struct weft_transport *st = NULL, *ct = NULL;
    char cipher[64];
    size_t base, busy, idle, len = sizeof(cipher);
    int sv[2];
    (void)state;

    b.data = malloc(65536);
    assert_non_null(b.data);
    for (size_t i = 0; i < 65536; i++)
        b.data[i] = pattern(i);
    base = heap_in_use();
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(weft__transport_new_tls(loop, sv[0], sctx, NULL, given, &b, NULL, NULL,
                                             NULL, &st), 0);
    assert_int_equal(weft__transport_new_tls(loop, sv[1], cctx, "a.test", given, &c,
                                             NULL, sink_connected, &c, &ct), 0);
    assert_int_equal(harness_run_until(loop, &c.connected, 10000), 0);
    assert_int_equal(weft_transport_get_extra_info(ct, "cipher", cipher, &len), 0);
    assert_string_equal(cipher, "TLS_AES_128_GCM_SHA256");
    for (int k = 0; k < 2; k++) {
        c.want = 65536;
        c.got = 0;
        c.done = false;
        assert_int_equal(weft_transport_write(ct, "1", 1), 0);
        assert_int_equal(harness_run_until(loop, &c.done, 10000), 0);
        assert_false(c.mismatch);
        busy = heap_in_use();
        harness_run_for(loop, 2300);
        idle = heap_in_use();
        /* four buffers of about 17 KiB, the server's two and the client's */
        if (busy > base + 4 * 16384)
            assert_true(idle + 3 * 16384 <= busy);
    }
    weft_transport_close(ct);
    assert_int_equal(harness_run_until(loop, &b.lost_flag, 10000), 0);
    assert_int_equal(harness_run_until(loop, &c.lost_flag, 10000), 0);
    free(b.data);
    weft_tls_context_free(sctx);
    weft_tls_context_free(cctx);
    weft_loop_free(loop);
}

/*
 * weft_start_tls: two plain transports over a socketpair; the client sends
 * "STARTTLS\n" and pushes TLS at once, so its ClientHello is right behind the
 * command and the server finds it in what its transport read already.
 */
struct starter {
    struct weft_protocol base;
    struct weft_transport *tr;
    struct weft_tls_context *ctx;
    struct weft_protocol *next;     /* the protocol over TLS */
    const char *name;
    bool done;
    int error;
};

static void
st_done(struct weft_transport *tls, int error, void *arg)
{
    struct starter *s = arg;

    s->done = true;
    s->error = error;
    if (tls == NULL && s->next->ops == &srv_ops)
        free(s->next);          /* never used: still ours */
}

static int
st_server_data(struct weft_protocol *p, struct evbuffer *in)
{
    struct starter *s = (struct starter *)p;
    struct evbuffer_ptr q = evbuffer_search(in, "STARTTLS\n", 9, NULL);

    if (q.pos < 0)
        return 0;
    evbuffer_drain(in, (size_t)q.pos + 9);
    assert_true(evbuffer_get_length(in) > 0);      /* the ClientHello came with it */
    return weft_start_tls(s->tr, s->next, s->ctx, NULL, st_done, s);
}

static int
st_made(struct weft_protocol *p, struct weft_transport *tr)
{
    struct starter *s = (struct starter *)p;

    s->tr = tr;
    if (s->name == NULL)
        return 0;               /* the server waits for the command */
    assert_int_equal(weft_transport_write(tr, "STARTTLS\n", 9), 0);
    return weft_start_tls(tr, s->next, s->ctx, s->name, st_done, s);
}

static const struct weft_protocol_ops st_server_ops = {
    .connection_made = st_made, .data_received = st_server_data,
};
static const struct weft_protocol_ops st_client_ops = { .connection_made = st_made };

static struct weft_protocol *
st_factory(void *arg)
{
    return arg;
}

/* Both ends start plain and push TLS; returns once the client's connection is lost. */
static void
start_tls_pair(struct weft_loop *loop, struct starter *srv, struct starter *cli_st)
{
    int sv[2];

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(weft_connect_accepted_socket(loop, st_factory, srv, sv[0], NULL), 0);
    assert_int_equal(weft_connect_accepted_socket(loop, st_factory, cli_st, sv[1], NULL), 0);
    assert_int_equal(harness_run_until(loop, &cli_st->done, 10000), 0);
    assert_int_equal(harness_run_until(loop, &srv->done, 10000), 0);
}

static void
start_tls_mid_stream(void **state)
{
    struct weft_loop *loop = harness_loop_new();
    struct weft_tls_context *sctx = default_server_ctx();
    struct weft_tls_context *cctx = client_ctx(cert("ca.pem"), NULL, NULL);
    struct seen seen = { 0 };
    struct cli c = { .base.ops = &cli_ops, .total = 1u << 20 };
    struct starter srv = { .base.ops = &st_server_ops, .ctx = sctx };
    struct starter cs = { .base.ops = &st_client_ops, .ctx = cctx, .name = "a.test",
                          .next = &c.base };
    (void)state;

    srv.next = srv_factory(&seen);
    assert_int_equal(weft_start_tls(NULL, srv.next, sctx, NULL, st_done, &srv), -EINVAL);
    start_tls_pair(loop, &srv, &cs);
    assert_int_equal(cs.error, 0);
    assert_int_equal(srv.error, 0);
    c.connected = true;         /* cs.error 0: the TLS transport was made */
    echoed_and_closed(loop, &c, &seen);
    assert_string_equal(seen.sni, "a.test");
    assert_int_equal(seen.family, AF_UNIX);
    assert_non_null(strstr(c.seen.subject, "CN=a.test"));
    weft_tls_context_free(sctx);
    weft_tls_context_free(cctx);
    weft_loop_free(loop);
}

/* A handshake that fails after start_tls: both ends hear it, the protocols are not used. */
static void
start_tls_refused(void **state)
{
    struct weft_loop *loop = harness_loop_new();
    struct weft_tls_context *sctx = default_server_ctx();
    struct weft_tls_context *wrong = client_ctx(cert("other.pem"), NULL, NULL);
    struct seen seen = { 0 };
    struct cli c = { .base.ops = &cli_ops, .total = 10 };
    struct starter srv = { .base.ops = &st_server_ops, .ctx = sctx };
    struct starter cs = { .base.ops = &st_client_ops, .ctx = wrong, .name = "a.test",
                          .next = &c.base };
    (void)state;

    harness_log_capture();
    srv.next = srv_factory(&seen);
    start_tls_pair(loop, &srv, &cs);
    assert_int_equal(cs.error, -WEFT_ETLS);
    assert_true(srv.error < 0);
    assert_int_equal(seen.made, 0);
    assert_null(c.tr);
    weft_tls_context_free(sctx);
    weft_tls_context_free(wrong);
    weft_loop_free(loop);
}

/* weft_writer_start_tls: a plain stream server and client agree on STARTTLS, then upgrade. */
static struct weft_tls_context *upgrade_sctx;

static int
upgrading_echo(struct weft_reader *r, struct weft_writer *w, void *arg)
{
    char line[64];
    ssize_t n;
    int rc;

    (void)arg;
    n = weft_reader_readline(r, line, sizeof(line));
    if (n != 9 || memcmp(line, "STARTTLS\n", 9) != 0)
        return -EPROTO;
    rc = weft_writer_write(w, "GO\n", 3);
    if (rc == 0)
        rc = weft_writer_start_tls(w, upgrade_sctx, NULL);
    if (rc < 0)
        return rc;
    n = weft_reader_readline(r, line, sizeof(line));
    if (n > 0)
        rc = weft_writer_write(w, line, (size_t)n);
    return n < 0 ? (int)n : rc;
}

static intptr_t
upgrading_client(void *arg)
{
    struct stream_args *a = arg;
    struct weft_reader *r;
    struct weft_writer *w;
    char line[64], version[32] = "";
    size_t vl = sizeof(version);
    ssize_t n;
    int rc;

    rc = weft_open_connection("127.0.0.1", a->port, NULL, &r, &w);
    if (rc < 0)
        return rc;
    rc = weft_writer_write(w, "STARTTLS\n", 9);
    n = rc == 0 ? weft_reader_readline(r, line, sizeof(line)) : rc;
    if (n == 3 && memcmp(line, "GO\n", 3) == 0)
        rc = weft_writer_start_tls(w, a->cctx, a->name);
    else
        rc = n < 0 ? (int)n : -EPROTO;
    if (rc == 0 && weft_writer_get_extra_info(w, "tls_version", version, &vl) == 0 &&
        strcmp(version, "TLSv1.3") == 0)
        rc = weft_writer_write(w, "secret\n", 7);
    else if (rc == 0)
        rc = -EPROTO;
    n = rc == 0 ? weft_reader_readline(r, line, sizeof(line)) : rc;
    if (n == 7 && memcmp(line, "secret\n", 7) == 0)
        rc = 1;
    else
        rc = n < 0 ? (int)n : -EPROTO;
    weft_writer_close(w);
    weft_writer_free(w);
    return rc;
}

static void
stream_start_tls(void **state)
{
    struct weft_loop *loop = harness_loop_new();
    struct weft_tls_context *cctx = client_ctx(cert("ca.pem"), NULL, NULL);
    struct weft_tls_context *wrong = client_ctx(cert("other.pem"), NULL, NULL);
    struct weft_stream_server *ss;
    struct stream_args a = { .cctx = cctx, .name = "a.test" };
    (void)state;

    upgrade_sctx = default_server_ctx();
    a.port = serve_streams(loop, upgrading_echo, NULL, &ss);
    assert_int_equal(harness_run_task(loop, upgrading_client, &a, 10000), 1);
    a.cctx = wrong;     /* a CA that did not sign: the upgrade fails, the stream is lost */
    assert_int_equal(harness_run_task(loop, upgrading_client, &a, 10000), -WEFT_ETLS);
    stop_streams(loop, ss);
    weft_tls_context_free(upgrade_sctx);
    weft_tls_context_free(cctx);
    weft_tls_context_free(wrong);
    weft_loop_free(loop);
}

/* ---- by hand / for the scripts ---- */

/* serve ... starttls: the SMTP greeting, EHLO and STARTTLS in plain text, then TLS. */
struct smtp {
    struct starter st;
    struct seen *seen;
};

static void
smtp_done(struct weft_transport *tls, int error, void *arg)
{
    struct smtp *m = arg;

    fprintf(stderr, "starttls: %s\n", tls != NULL ? "upgraded" : weft_strerror(error));
    if (tls == NULL)
        free(m->st.next);
    free(m);
}

static int
smtp_made(struct weft_protocol *p, struct weft_transport *tr)
{
    ((struct smtp *)p)->st.tr = tr;
    return weft_transport_write(tr, "220 weft ESMTP\r\n", 16);
}

static int
smtp_data(struct weft_protocol *p, struct evbuffer *in)
{
    struct smtp *m = (struct smtp *)p;
    char *line;

    while ((line = evbuffer_readln(in, NULL, EVBUFFER_EOL_CRLF)) != NULL) {
        bool upgrade = strncasecmp(line, "STARTTLS", 8) == 0;
        const char *answer = upgrade ? "220 2.0.0 Ready to start TLS\r\n"
                             : strncasecmp(line, "EHLO", 4) == 0 ? "250-weft\r\n250 STARTTLS\r\n"
                             : "502 5.5.1 Only EHLO and STARTTLS here\r\n";

        free(line);
        if (weft_transport_write(m->st.tr, answer, strlen(answer)) < 0)
            return -EPIPE;
        if (upgrade) {
            m->st.next = srv_factory(m->seen);
            if (m->st.next == NULL)
                return -ENOMEM;
            return weft_start_tls(m->st.tr, m->st.next, m->st.ctx, NULL, smtp_done, m);
        }
    }
    return 0;
}

static void
smtp_lost(struct weft_protocol *p, int error)
{
    (void)error;
    free(p);        /* before STARTTLS: after it, the TLS layer is the transport's protocol */
}

static const struct weft_protocol_ops smtp_ops = {
    .connection_made = smtp_made, .data_received = smtp_data, .connection_lost = smtp_lost,
};

static struct weft_tls_context *smtp_ctx;

static struct weft_protocol *
smtp_factory(void *arg)
{
    struct smtp *m = calloc(1, sizeof(*m));

    if (m == NULL)
        return NULL;
    m->st.base.ops = &smtp_ops;
    m->st.ctx = smtp_ctx;
    m->seen = arg;
    return &m->st.base;
}

static void
log_stderr(int level, const char *msg, void *arg)
{
    (void)arg;
    fprintf(stderr, "<%d>%s\n", level, msg);
}

static int
serve(int argc, char **argv)
{
    const char *kv[64];
    struct weft_loop *loop = harness_loop_new();
    struct weft_tls_context *ctx;
    struct weft_server *s;
    struct seen seen = { 0 };
    int n = 0;
    uint16_t port;

    serve_mode = true;
    snprintf(certdir, sizeof(certdir), "%s", argv[2]);
    for (int i = 3; i < argc && n < 60; i++) {
        char *eq = strchr(argv[i], '=');

        if (strcmp(argv[i], "oneline") == 0)
            serve_oneline = true;
        if (strcmp(argv[i], "starttls") == 0)
            serve_starttls = true;
        if (eq == NULL)
            continue;
        *eq = '\0';
        kv[n++] = argv[i];
        kv[n++] = eq + 1;
    }
    if (n == 0) {
        kv[n++] = "tls_certificate";
        kv[n++] = cert("a.pem");
        kv[n++] = "tls_key";
        kv[n++] = cert("a.key");
        kv[n++] = "tls_certificate";
        kv[n++] = cert("b.pem");
        kv[n++] = "tls_key";
        kv[n++] = cert("b.key");
    }
    kv[n] = NULL;
    weft_log_set_handler(log_stderr, NULL, WEFT_LOG_DEBUG);
    ctx = server_ctx(kv);
    if (serve_starttls) {
        struct weft_server_options o = WEFT_SERVER_OPTIONS_INIT;
        struct sockaddr_in sin;
        socklen_t sl = sizeof(sin);

        smtp_ctx = ctx;
        assert_int_equal(weft_create_server(loop, smtp_factory, &seen, "127.0.0.1", 0, &o, &s),
                         0);
        assert_int_equal(weft_server_get_sockname(s, 0, (struct sockaddr *)&sin, &sl), 0);
        port = ntohs(sin.sin_port);
    } else {
        s = start_server(loop, ctx, &seen, &port);
    }
    printf("%u\n", port);
    fflush(stdout);
    weft_loop_run(loop);
    weft_server_free(s);
    weft_tls_context_free(ctx);
    weft_loop_free(loop);
    return 0;
}

int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(config_errors_name_the_file),
        cmocka_unit_test(echo_8mib_checked),
        cmocka_unit_test(sni_picks_the_certificate),
        cmocka_unit_test(wrong_ca_fails_verification),
        cmocka_unit_test(client_certificate_required),
        cmocka_unit_test(bad_clients_are_closed_and_logged),
        cmocka_unit_test(stream_layer_both_ends),
        cmocka_unit_test(tls_over_a_unix_socketpair),
        cmocka_unit_test(records_of_a_write_go_down_together),
        cmocka_unit_test(idle_connection_frees_record_buffers),
        cmocka_unit_test(start_tls_mid_stream),
        cmocka_unit_test(start_tls_refused),
        cmocka_unit_test(stream_start_tls),
    };
    int rc;

    signal(SIGPIPE, SIG_IGN);
    if (argc >= 3 && strcmp(argv[1], "serve") == 0)
        return serve(argc, argv);
    if (make_certs() != 0) {
        fprintf(stderr, "cannot make test certificates with openssl\n");
        return 1;
    }
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    remove_certs();
    return rc;
}
