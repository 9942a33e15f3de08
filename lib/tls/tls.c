/* SPDX-License-Identifier: MIT */
/* tls.c: TLS configuration (weftd's service keys), server and client contexts on OpenSSL 3. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls/tls-int.h"

/*
 * Files are read as the keys arrive (weft_tls_config_set), so that a bad file
 * is reported at the line of the key that names it; the loaded certificates
 * and keys are kept in the configuration and shared with every SSL_CTX made
 * from it (OpenSSL counts references).
 */

struct pair {
    char *cert_file, *key_file;
    X509 *cert;
    STACK_OF(X509) *chain;
    EVP_PKEY *key;
};

struct weft_tls_config {
    struct pair *pairs;
    size_t npairs;
    int min_version;
    char *ciphers, *ciphersuites, *client_ca;
    int verify_client;          /* -1 unset, else SSL_VERIFY_* bits */
    uint64_t handshake_ms, shutdown_ms;
    unsigned char *alpn;
    unsigned alpn_len;
};

static int
fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int
fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -WEFT_ECONFIG;
}

/* Why a PEM read failed: the OS's reason for an unopenable file, else OpenSSL's. */
static int
file_fail(const char *key, const char *file, char *err, size_t errlen)
{
    char why[160];
    unsigned long e = ERR_peek_last_error();

    if (ERR_GET_LIB(e) == ERR_LIB_SYS) {
        int sys = ERR_GET_REASON(e);

        ERR_clear_error();
        return fail(err, errlen, "%s %s: %s", key, file, strerror(sys));
    }
    return fail(err, errlen, "%s %s: %s", key, file, weft__tls_reason(why, sizeof(why)));
}

/* BIO_new_file() failed: fopen()'s errno says why. */
static int
open_fail(const char *key, const char *file, char *err, size_t errlen)
{
    int sys = errno;

    ERR_clear_error();
    return fail(err, errlen, "%s %s: %s", key, file, strerror(sys ? sys : EIO));
}

/* Never prompt for a pass phrase: an encrypted key is a config error. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

static int
read_chain(const char *key, const char *file, X509 **cert, STACK_OF(X509) **chain, char *err,
           size_t errlen)
{
    BIO *b;
    X509 *x;

    ERR_clear_error();
    b = BIO_new_file(file, "r");
    if (b == NULL)
        return open_fail(key, file, err, errlen);
    *cert = PEM_read_bio_X509_AUX(b, NULL, no_passphrase, NULL);
    if (*cert == NULL) {
        BIO_free(b);
        return file_fail(key, file, err, errlen);
    }
    *chain = sk_X509_new_null();
    if (*chain == NULL)
        goto nomem;
    while ((x = PEM_read_bio_X509(b, NULL, no_passphrase, NULL)) != NULL) {
        if (sk_X509_push(*chain, x) == 0) {
            X509_free(x);
            goto nomem;
        }
    }
    /* The loop ends at the end of the file (no start line) or at garbage. */
    if (ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE) {
        BIO_free(b);
        X509_free(*cert);
        sk_X509_pop_free(*chain, X509_free);
        *cert = NULL;
        *chain = NULL;
        return file_fail(key, file, err, errlen);
    }
    ERR_clear_error();
    BIO_free(b);
    return 0;
nomem:
    BIO_free(b);
    X509_free(*cert);
    sk_X509_pop_free(*chain, X509_free);
    *cert = NULL;
    *chain = NULL;
    return -ENOMEM;
}

static int
read_key(const char *key, const char *file, EVP_PKEY **out, char *err, size_t errlen)
{
    BIO *b;

    ERR_clear_error();
    b = BIO_new_file(file, "r");
    if (b == NULL)
        return open_fail(key, file, err, errlen);
    *out = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL);
    BIO_free(b);
    if (*out == NULL)
        return file_fail(key, file, err, errlen);
    return 0;
}

static int
check_match(const struct pair *p, char *err, size_t errlen)
{
    ERR_clear_error();
    if (X509_check_private_key(p->cert, p->key) != 1) {
        ERR_clear_error();
        return fail(err, errlen, "tls_key %s does not match tls_certificate %s",
                    p->key_file, p->cert_file);
    }
    return 0;
}

static void
pair_clear(struct pair *p)
{
    free(p->cert_file);
    free(p->key_file);
    X509_free(p->cert);
    sk_X509_pop_free(p->chain, X509_free);
    EVP_PKEY_free(p->key);
    memset(p, 0, sizeof(*p));
}

struct weft_tls_config *
weft_tls_config_new(void)
{
    struct weft_tls_config *cfg = calloc(1, sizeof(*cfg));

    if (cfg == NULL)
        return NULL;
    cfg->min_version = TLS1_2_VERSION;
    cfg->verify_client = -1;
    cfg->handshake_ms = WEFT_TLS_HANDSHAKE_TIMEOUT_DEFAULT_MS;
    cfg->shutdown_ms = WEFT_TLS_SHUTDOWN_TIMEOUT_DEFAULT_MS;
    return cfg;
}

void
weft_tls_config_free(struct weft_tls_config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < cfg->npairs; i++)
        pair_clear(&cfg->pairs[i]);
    free(cfg->pairs);
    free(cfg->ciphers);
    free(cfg->ciphersuites);
    free(cfg->client_ca);
    free(cfg->alpn);
    free(cfg);
}

/* "60s", "500ms", "2m", "1h", or a bare number of seconds. */
static int
parse_duration(const char *v, uint64_t *ms)
{
    char *end;
    unsigned long long n;
    uint64_t mult = 1000;

    if (v[0] < '0' || v[0] > '9')
        return -1;
    errno = 0;
    n = strtoull(v, &end, 10);
    if (errno != 0)
        return -1;
    if (strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "s") == 0 || *end == '\0')
        mult = 1000;
    else if (strcmp(end, "m") == 0)
        mult = 60000;
    else if (strcmp(end, "h") == 0)
        mult = 3600000;
    else
        return -1;
    if (n == 0 || n > UINT32_MAX / mult)
        return -1;
    *ms = n * mult;
    return 0;
}

static int
parse_version(const char *v, int *out)
{
    if (v == NULL || strcasecmp(v, "TLSv1.2") == 0 || strcmp(v, "1.2") == 0)
        *out = TLS1_2_VERSION;
    else if (strcasecmp(v, "TLSv1.3") == 0 || strcmp(v, "1.3") == 0)
        *out = TLS1_3_VERSION;
    else
        return -1;
    return 0;
}

static int
set_string(char **slot, const char *v)
{
    char *d = strdup(v);

    if (d == NULL)
        return -ENOMEM;
    free(*slot);
    *slot = d;
    return 0;
}

/* The pair a tls_certificate (want_cert) or tls_key fills: the last one if it lacks it. */
static struct pair *
pair_for(struct weft_tls_config *cfg, bool want_cert)
{
    struct pair *p;

    if (cfg->npairs > 0) {
        p = &cfg->pairs[cfg->npairs - 1];
        if (want_cert ? p->cert == NULL : p->key == NULL)
            return p;
    }
    p = realloc(cfg->pairs, (cfg->npairs + 1) * sizeof(*p));
    if (p == NULL)
        return NULL;
    cfg->pairs = p;
    p = &cfg->pairs[cfg->npairs++];
    memset(p, 0, sizeof(*p));
    return p;
}

/* Check a cipher list or suites on a scratch context. */
static int
check_ciphers(const char *key, const char *v, bool suites, char *err, size_t errlen)
{
    SSL_CTX *c = SSL_CTX_new(TLS_method());
    char why[160];
    int ok;

    if (c == NULL)
        return -ENOMEM;
    ERR_clear_error();
    ok = suites ? SSL_CTX_set_ciphersuites(c, v) : SSL_CTX_set_cipher_list(c, v);
    SSL_CTX_free(c);
    if (!ok)
        return fail(err, errlen, "%s \"%s\": %s", key, v, weft__tls_reason(why, sizeof(why)));
    return 0;
}

int
weft_tls_config_set(struct weft_tls_config *cfg, const char *key, const char *value,
                    char *err, size_t errlen)
{
    struct pair *p;
    int rc;

    if (cfg == NULL || key == NULL || value == NULL)
        return -EINVAL;
    if (strcmp(key, "tls_certificate") == 0) {
        X509 *cert;
        STACK_OF(X509) *chain;

        rc = read_chain(key, value, &cert, &chain, err, errlen);
        if (rc < 0)
            return rc;
        p = pair_for(cfg, true);
        if (p == NULL || (p->cert_file = strdup(value)) == NULL) {
            X509_free(cert);
            sk_X509_pop_free(chain, X509_free);
            return -ENOMEM;
        }
        p->cert = cert;
        p->chain = chain;
        if (p->key != NULL && (rc = check_match(p, err, errlen)) < 0) {
            pair_clear(p);
            cfg->npairs--;
            return rc;
        }
        return 0;
    }
    if (strcmp(key, "tls_key") == 0) {
        EVP_PKEY *pk;

        rc = read_key(key, value, &pk, err, errlen);
        if (rc < 0)
            return rc;
        p = pair_for(cfg, false);
        if (p == NULL || (p->key_file = strdup(value)) == NULL) {
            EVP_PKEY_free(pk);
            return -ENOMEM;
        }
        p->key = pk;
        if (p->cert != NULL && (rc = check_match(p, err, errlen)) < 0) {
            EVP_PKEY_free(p->key);
            p->key = NULL;
            free(p->key_file);
            p->key_file = NULL;
            return rc;
        }
        return 0;
    }
    if (strcmp(key, "tls_min_version") == 0) {
        if (parse_version(value, &cfg->min_version) < 0)
            return fail(err, errlen, "tls_min_version: \"%s\" is not TLSv1.2 or TLSv1.3",
                        value);
        return 0;
    }
    if (strcmp(key, "tls_ciphers") == 0 || strcmp(key, "tls_ciphersuites") == 0) {
        bool suites = strcmp(key, "tls_ciphersuites") == 0;

        rc = check_ciphers(key, value, suites, err, errlen);
        if (rc < 0)
            return rc;
        return set_string(suites ? &cfg->ciphersuites : &cfg->ciphers, value);
    }
    if (strcmp(key, "tls_client_ca") == 0) {
        STACK_OF(X509_NAME) *names;

        ERR_clear_error();
        names = SSL_load_client_CA_file(value);
        if (names == NULL) {
            FILE *f = fopen(value, "r");

            if (f == NULL) {
                ERR_clear_error();
                return fail(err, errlen, "tls_client_ca %s: %s", value, strerror(errno));
            }
            fclose(f);
            return file_fail(key, value, err, errlen);
        }
        sk_X509_NAME_pop_free(names, X509_NAME_free);
        return set_string(&cfg->client_ca, value);
    }
    if (strcmp(key, "tls_verify_client") == 0) {
        if (strcmp(value, "required") == 0)
            cfg->verify_client = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        else if (strcmp(value, "optional") == 0)
            cfg->verify_client = SSL_VERIFY_PEER;
        else if (strcmp(value, "none") == 0 || strcmp(value, "off") == 0)
            cfg->verify_client = SSL_VERIFY_NONE;
        else
            return fail(err, errlen,
                        "tls_verify_client: \"%s\" is not required, optional or none", value);
        return 0;
    }
    if (strcmp(key, "tls_handshake_timeout") == 0 || strcmp(key, "tls_shutdown_timeout") == 0) {
        uint64_t ms;

        if (parse_duration(value, &ms) < 0)
            return fail(err, errlen, "%s: \"%s\" is not a duration (30s, 500ms, 2m)", key,
                        value);
        if (key[4] == 'h')
            cfg->handshake_ms = ms;
        else
            cfg->shutdown_ms = ms;
        return 0;
    }
    return -WEFT_ENOKEY;
}

/* NULL-terminated names to ALPN's wire format. */
static int
alpn_wire(const char *const *protos, unsigned char **out, unsigned *outlen)
{
    size_t len = 0, off = 0;
    unsigned char *w;

    *out = NULL;
    *outlen = 0;
    if (protos == NULL || protos[0] == NULL)
        return 0;
    for (size_t i = 0; protos[i] != NULL; i++) {
        size_t l = strlen(protos[i]);

        if (l == 0 || l > 255)
            return -EINVAL;
        len += 1 + l;
    }
    if (len > 65535)
        return -EINVAL;
    w = malloc(len);
    if (w == NULL)
        return -ENOMEM;
    for (size_t i = 0; protos[i] != NULL; i++) {
        size_t l = strlen(protos[i]);

        w[off++] = (unsigned char)l;
        memcpy(w + off, protos[i], l);
        off += l;
    }
    *out = w;
    *outlen = (unsigned)len;
    return 0;
}

int
weft_tls_config_set_alpn(struct weft_tls_config *cfg, const char *const *protocols)
{
    unsigned char *w;
    unsigned len;
    int rc;

    if (cfg == NULL)
        return -EINVAL;
    rc = alpn_wire(protocols, &w, &len);
    if (rc < 0)
        return rc;
    free(cfg->alpn);
    cfg->alpn = w;
    cfg->alpn_len = len;
    return 0;
}

/* ---- contexts ---- */

static void
context_destroy(struct weft_tls_context *c)
{
    for (size_t i = 0; i < c->nctx; i++)
        SSL_CTX_free(c->ctxs[i]);
    free(c->ctxs);
    free(c->alpn);
    free(c);
}

struct weft_tls_context *
weft_tls_context_ref(struct weft_tls_context *ctx)
{
    __atomic_add_fetch(&ctx->refs, 1, __ATOMIC_RELAXED);
    return ctx;
}

void
weft_tls_context_free(struct weft_tls_context *ctx)
{
    if (ctx != NULL && __atomic_sub_fetch(&ctx->refs, 1, __ATOMIC_ACQ_REL) == 0)
        context_destroy(ctx);
}

bool
weft_tls_context_is_client(const struct weft_tls_context *ctx)
{
    return ctx->client;
}

/* The context as net's connection wrapper (net/transport-int.h). */
static int
wrap_new(struct weft__wrapper *w, struct weft_loop *loop, int fd, const char *hostname,
         weft_protocol_factory_cb *factory, void *farg, struct weft__conns *conns,
         weft__wrap_done_cb *done, void *darg, struct weft_transport **out)
{
    return weft__transport_new_tls(loop, fd, (struct weft_tls_context *)w, hostname, factory,
                                   farg, conns, done, darg, out);
}

static struct weft__wrapper *
wrap_ref(struct weft__wrapper *w)
{
    return &weft_tls_context_ref((struct weft_tls_context *)w)->wrapper;
}

static void
wrap_unref(struct weft__wrapper *w)
{
    weft_tls_context_free((struct weft_tls_context *)w);
}

static bool
wrap_is_client(const struct weft__wrapper *w)
{
    return ((const struct weft_tls_context *)w)->client;
}

static const struct weft__wrapper_ops tls_wrapper = {
    .wrap = wrap_new,
    .cancel = weft__tls_cancel,
    .ref = wrap_ref,
    .unref = wrap_unref,
    .is_client = wrap_is_client,
};

/*
 * SNI: the first pair whose certificate names the host, else the default
 * (the first pair). SSL_set_SSL_CTX() swaps only the certificate and key;
 * every context has the same settings anyway.
 */
static int
on_servername(SSL *ssl, int *alert, void *arg)
{
    struct weft_tls_context *c = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

    (void)alert;
    if (name == NULL || c->nctx < 2)
        return SSL_TLSEXT_ERR_OK;
    for (size_t i = 0; i < c->nctx; i++) {
        X509 *x = SSL_CTX_get0_certificate(c->ctxs[i]);

        if (x != NULL && X509_check_host(x, name, 0, 0, NULL) == 1) {
            if (i != 0)
                SSL_set_SSL_CTX(ssl, c->ctxs[i]);
            return SSL_TLSEXT_ERR_OK;
        }
    }
    return SSL_TLSEXT_ERR_OK;
}

/* ALPN: the server's preference wins; no common protocol means no ALPN answer. */
static int
on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
        unsigned int inlen, void *arg)
{
    struct weft_tls_context *c = arg;
    unsigned char *sel;

    (void)ssl;
    if (c->alpn == NULL ||
        SSL_select_next_proto(&sel, outlen, c->alpn, c->alpn_len, in, inlen) !=
            OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* Settings every context shares, server or client. */
static int
ctx_common(SSL_CTX *c, int min_version, const char *ciphers, const char *suites, char *err,
           size_t errlen)
{
    char why[160];

    /*
     * A peer that drops TCP without close_notify is an EOF, as in libevent's
     * "dirty shutdown" (OpenSSL 3 otherwise calls it an error). No
     * renegotiation: it is the one way SSL_write could want to read.
     */
    SSL_CTX_set_options(c, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_NO_COMPRESSION);
    /*
     * Partial and moving writes let the transport hand SSL_write the front
     * of its queue; read-ahead reads whole socket buffers instead of a
     * header and then a record. No SSL_MODE_RELEASE_BUFFERS: the transport
     * frees the buffers of a connection idle for a second (tls_transport.c,
     * note_busy), not after every record.
     */
    SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(c, 1);
    if (!SSL_CTX_set_min_proto_version(c, min_version))
        return fail(err, errlen, "tls_min_version: %s", weft__tls_reason(why, sizeof(why)));
    if (ciphers != NULL && !SSL_CTX_set_cipher_list(c, ciphers))
        return fail(err, errlen, "tls_ciphers: %s", weft__tls_reason(why, sizeof(why)));
    if (suites != NULL && !SSL_CTX_set_ciphersuites(c, suites))
        return fail(err, errlen, "tls_ciphersuites: %s", weft__tls_reason(why, sizeof(why)));
    return 0;
}

/*
 * A server's TLS 1.3 suites when tls_ciphersuites is not set: OpenSSL's three,
 * AES-128-GCM first (Mozilla's server-side order) instead of OpenSSL's
 * AES-256-GCM first. The server's preference picks the suite, and AES-128 is
 * 10 AES rounds to AES-256's 14: about a fifth less CPU per byte encrypted
 * (docs/bench-http.md "TLS: AES-128-GCM first"). A client that lists ChaCha20
 * first (no AES instructions) gets it (SSL_OP_PRIORITIZE_CHACHA).
 */
#define SERVER_SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

static int
server_ctx(struct weft_tls_context *tc, const struct weft_tls_config *cfg, struct pair *p,
           SSL_CTX **out, char *err, size_t errlen)
{
    static const unsigned char sid_ctx[] = "weft";
    SSL_CTX *c = SSL_CTX_new(TLS_server_method());
    char why[160];
    int rc;

    if (c == NULL)
        return -ENOMEM;
    rc = ctx_common(c, cfg->min_version, cfg->ciphers,
                    cfg->ciphersuites != NULL ? cfg->ciphersuites : SERVER_SUITES, err, errlen);
    if (rc < 0)
        goto out;
    SSL_CTX_set_options(c, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA);
    /* Needed for resumption as soon as client certificates are verified. */
    SSL_CTX_set_session_id_context(c, sid_ctx, sizeof(sid_ctx) - 1);
    ERR_clear_error();
    if (SSL_CTX_use_cert_and_key(c, p->cert, p->key, p->chain, 1) != 1) {
        rc = fail(err, errlen, "tls_certificate %s: %s", p->cert_file,
                  weft__tls_reason(why, sizeof(why)));
        goto out;
    }
    if (cfg->client_ca != NULL) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->client_ca);

        if (names == NULL || SSL_CTX_load_verify_locations(c, cfg->client_ca, NULL) != 1) {
            sk_X509_NAME_pop_free(names, X509_NAME_free);
            rc = file_fail("tls_client_ca", cfg->client_ca, err, errlen);
            goto out;
        }
        SSL_CTX_set_client_CA_list(c, names);   /* takes names */
        SSL_CTX_set_verify(c, cfg->verify_client >= 0 ? cfg->verify_client
                                  : SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    SSL_CTX_set_tlsext_servername_callback(c, on_servername);
    SSL_CTX_set_tlsext_servername_arg(c, tc);
    SSL_CTX_set_alpn_select_cb(c, on_alpn, tc);
    *out = c;
    return 0;
out:
    SSL_CTX_free(c);
    return rc;
}

/* A pair given only a certificate reads its key from the same file. */
static int
complete_pair(struct pair *p, char *err, size_t errlen)
{
    if (p->cert == NULL)
        return fail(err, errlen, "tls_key %s has no tls_certificate", p->key_file);
    if (p->key != NULL)
        return 0;
    if (read_key("tls_key", p->cert_file, &p->key, err, errlen) < 0)
        return fail(err, errlen, "tls_certificate %s: no tls_key, and no key in that file",
                    p->cert_file);
    return check_match(p, err, errlen);
}

/* A context with one reference and no SSL_CTX yet; NULL without memory. */
static struct weft_tls_context *
context_alloc(bool client, uint64_t handshake_ms, uint64_t shutdown_ms)
{
    struct weft_tls_context *tc;

    if (weft__tls_bio_init() < 0)
        return NULL;
    tc = calloc(1, sizeof(*tc));
    if (tc == NULL)
        return NULL;
    tc->wrapper.ops = &tls_wrapper;
    tc->refs = 1;
    tc->client = client;
    tc->handshake_ms = (uint32_t)handshake_ms;
    tc->shutdown_ms = (uint32_t)shutdown_ms;
    return tc;
}

int
weft_tls_context_new(const struct weft_tls_config *cfg, struct weft_tls_context **out,
                     char *err, size_t errlen)
{
    struct weft_tls_context *tc;
    int rc;

    if (cfg == NULL || out == NULL)
        return -EINVAL;
    *out = NULL;
    if (cfg->npairs == 0)
        return fail(err, errlen, "tls_certificate is required");
    if (cfg->verify_client > 0 && cfg->client_ca == NULL)
        return fail(err, errlen, "tls_verify_client needs tls_client_ca");
    for (size_t i = 0; i < cfg->npairs; i++) {
        /* The configuration is const to callers; filling a missing key is a cache. */
        rc = complete_pair((struct pair *)&cfg->pairs[i], err, errlen);
        if (rc < 0)
            return rc;
    }
    tc = context_alloc(false, cfg->handshake_ms, cfg->shutdown_ms);
    if (tc == NULL)
        return -ENOMEM;
    tc->ctxs = calloc(cfg->npairs, sizeof(*tc->ctxs));
    if (tc->ctxs == NULL)
        goto nomem;
    if (cfg->alpn != NULL) {
        tc->alpn = malloc(cfg->alpn_len);
        if (tc->alpn == NULL)
            goto nomem;
        memcpy(tc->alpn, cfg->alpn, cfg->alpn_len);
        tc->alpn_len = cfg->alpn_len;
    }
    for (size_t i = 0; i < cfg->npairs; i++) {
        rc = server_ctx(tc, cfg, &cfg->pairs[i], &tc->ctxs[i], err, errlen);
        if (rc < 0) {
            context_destroy(tc);
            return rc;
        }
        tc->nctx++;
    }
    *out = tc;
    return 0;
nomem:
    context_destroy(tc);
    return -ENOMEM;
}

int
weft_tls_config_check(const struct weft_tls_config *cfg, char *err, size_t errlen)
{
    struct weft_tls_context *tc;
    int rc = weft_tls_context_new(cfg, &tc, err, errlen);

    if (rc == 0)
        weft_tls_context_free(tc);
    return rc;
}

int
weft_tls_context_new_client(const struct weft_tls_client_options *opts,
                            struct weft_tls_context **out, char *err, size_t errlen)
{
    static const struct weft_tls_client_options defaults = { 0 };
    struct weft_tls_context *tc;
    SSL_CTX *c;
    char why[160];
    int minv, rc;

    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    if (opts == NULL)
        opts = &defaults;
    if (parse_version(opts->min_version, &minv) < 0)
        return fail(err, errlen, "min_version: \"%s\" is not TLSv1.2 or TLSv1.3",
                    opts->min_version);
    tc = context_alloc(true,
                       opts->handshake_timeout_ms > 0 && opts->handshake_timeout_ms < UINT32_MAX
                           ? opts->handshake_timeout_ms : WEFT_TLS_HANDSHAKE_TIMEOUT_DEFAULT_MS,
                       opts->shutdown_timeout_ms > 0 && opts->shutdown_timeout_ms < UINT32_MAX
                           ? opts->shutdown_timeout_ms : WEFT_TLS_SHUTDOWN_TIMEOUT_DEFAULT_MS);
    if (tc == NULL)
        return -ENOMEM;
    tc->ctxs = calloc(1, sizeof(*tc->ctxs));
    c = tc->ctxs != NULL ? SSL_CTX_new(TLS_client_method()) : NULL;
    if (c == NULL) {
        context_destroy(tc);
        return -ENOMEM;
    }
    tc->ctxs[0] = c;
    tc->nctx = 1;
    rc = ctx_common(c, minv, opts->ciphers, opts->ciphersuites, err, errlen);
    if (rc < 0)
        goto out;
    ERR_clear_error();
    if (!opts->no_verify) {
        SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
        if (opts->ca_file != NULL ? SSL_CTX_load_verify_locations(c, opts->ca_file, NULL) != 1
                                  : SSL_CTX_set_default_verify_paths(c) != 1) {
            rc = opts->ca_file != NULL ? file_fail("ca_file", opts->ca_file, err, errlen)
                                       : fail(err, errlen, "the system's CA store: %s",
                                              weft__tls_reason(why, sizeof(why)));
            goto out;
        }
    }
    if (opts->certificate != NULL) {
        const char *kf = opts->key != NULL ? opts->key : opts->certificate;

        if (SSL_CTX_use_certificate_chain_file(c, opts->certificate) != 1) {
            rc = file_fail("certificate", opts->certificate, err, errlen);
            goto out;
        }
        SSL_CTX_set_default_passwd_cb(c, no_passphrase);
        if (SSL_CTX_use_PrivateKey_file(c, kf, SSL_FILETYPE_PEM) != 1) {
            rc = file_fail("key", kf, err, errlen);
            goto out;
        }
        if (SSL_CTX_check_private_key(c) != 1) {
            ERR_clear_error();
            rc = fail(err, errlen, "key %s does not match certificate %s", kf,
                      opts->certificate);
            goto out;
        }
    }
    if (opts->alpn != NULL && opts->alpn[0] != NULL) {
        unsigned char *w;
        unsigned len;

        rc = alpn_wire(opts->alpn, &w, &len);
        if (rc < 0)
            goto out;
        rc = SSL_CTX_set_alpn_protos(c, w, len);    /* 0 on success */
        free(w);
        if (rc != 0) {
            rc = -ENOMEM;
            goto out;
        }
    }
    *out = tc;
    return 0;
out:
    context_destroy(tc);
    return rc;
}
