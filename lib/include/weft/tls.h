/* SPDX-License-Identifier: MIT */
/* weft/tls.h: TLS (OpenSSL 3) configuration and contexts for servers and clients. */
#ifndef WEFT_TLS_H
#define WEFT_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <weft/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * TLS in weft has two objects:
 *
 * - struct weft_tls_config: a server's settings, filled key by key with the
 *   same keys a weftd service section takes (weft_tls_config_set), checked
 *   (weft_tls_config_check: reads and matches every file), then turned into
 * - struct weft_tls_context: the loaded certificates, keys and OpenSSL
 *   contexts, shared by every connection made with it. A server gets one in
 *   weft_server_options.tls (or weft_stream_options.tls for start_server);
 *   a client gets one from weft_tls_context_new_client() for
 *   weft_connect_options.tls or weft_stream_options.tls.
 *
 * A TLS transport cannot write_eof (weft_transport_can_write_eof is false),
 * and an eof_received that returns true is ignored: the connection closes.
 * Closing sends close_notify once the queued bytes are out, then waits for
 * the peer's at most the shutdown timeout. A peer that drops the TCP
 * connection without close_notify is an EOF, not an error. TLS-specific
 * names for weft_transport_get_extra_info() are listed in weft/transport.h.
 * Contexts may be made before fork() and used in the children (session
 * ticket keys are then shared, so resumption works across workers).
 */

struct weft_tls_config;
struct weft_tls_context;

/** Defaults. */
#define WEFT_TLS_HANDSHAKE_TIMEOUT_DEFAULT_MS 60000u
#define WEFT_TLS_SHUTDOWN_TIMEOUT_DEFAULT_MS 30000u

/**
 * A new, empty server configuration (TLS 1.2 minimum, OpenSSL's default
 * ciphers, no client certificates, timeouts 60 s and 30 s). Free it with
 * weft_tls_config_free(). Returns NULL if out of memory. Since 0.1.
 */
WEFT_EXPORT struct weft_tls_config *weft_tls_config_new(void);

/** Free a configuration (contexts made from it live on). NULL is a no-op. Since 0.1. */
WEFT_EXPORT void weft_tls_config_free(struct weft_tls_config *cfg);

/**
 * Take one service key, as written in weftd's config:
 *
 *   tls_certificate        PEM file: the certificate, then its chain. Each
 *                          one starts a new certificate/key pair; with
 *                          several pairs the client's SNI name picks the
 *                          pair whose certificate matches it (the first pair
 *                          otherwise).
 *   tls_key                PEM private key of the last tls_certificate
 *                          (if absent, the key is read from the certificate's
 *                          file).
 *   tls_min_version        TLSv1.2 (default) or TLSv1.3 (also "1.2", "1.3")
 *   tls_ciphers            OpenSSL cipher list for TLS 1.2
 *   tls_ciphersuites       OpenSSL ciphersuites for TLS 1.3 (default:
 *                          TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:
 *                          TLS_CHACHA20_POLY1305_SHA256; the server's order
 *                          wins, but a client listing ChaCha20 first gets it)
 *   tls_client_ca          PEM file of the CAs that sign client certificates
 *   tls_verify_client      required (default once tls_client_ca is set),
 *                          optional, or none
 *   tls_handshake_timeout  duration: "60s", "500ms", "2m", a bare number is
 *                          seconds; default 60 s
 *   tls_shutdown_timeout   duration, default 30 s
 *
 * Files are only named here; weft_tls_config_check() reads them. Returns 0,
 * -WEFT_ENOKEY for a key it does not know (err untouched), -WEFT_ECONFIG for a
 * bad value (err says why, the caller adds file and line), -ENOMEM.
 * Since 0.1.
 */
WEFT_EXPORT int weft_tls_config_set(struct weft_tls_config *cfg, const char *key,
                                    const char *value, char *err, size_t errlen);

/**
 * Set the application protocols the server speaks, for ALPN, most preferred
 * first: a NULL-terminated array of names ("http/1.1"), copied. A client
 * offering none of them gets no ALPN answer (the handshake goes on). NULL or
 * an empty array clears the list. Returns 0, -EINVAL for a name that is empty
 * or longer than 255 bytes, -ENOMEM. Since 0.1.
 */
WEFT_EXPORT int weft_tls_config_set_alpn(struct weft_tls_config *cfg,
                                         const char *const *protocols);

/**
 * Check the whole configuration: at least one certificate, every file
 * readable and valid PEM, each key matching its certificate, cipher lists
 * that OpenSSL accepts. Returns 0, or -WEFT_ECONFIG with err naming the key
 * and file and OpenSSL's reason, or -ENOMEM. Since 0.1.
 */
WEFT_EXPORT int weft_tls_config_check(const struct weft_tls_config *cfg, char *err,
                                      size_t errlen);

/**
 * Load a checked configuration into a new server context (*out, one
 * reference, the caller's). The configuration is not kept. Returns 0, or a
 * negative code as weft_tls_config_check() with err set. Since 0.1.
 */
WEFT_EXPORT int weft_tls_context_new(const struct weft_tls_config *cfg,
                                     struct weft_tls_context **out, char *err, size_t errlen);

/* A client context's settings. A NULL pointer or zero field means the default. */
struct weft_tls_client_options {
    const char *ca_file;        /* PEM CAs to trust; NULL: the system's store */
    bool no_verify;             /* accept any certificate: tests only */
    const char *certificate;    /* client certificate (PEM, with chain), or NULL */
    const char *key;            /* its key; NULL: read from the certificate's file */
    const char *const *alpn;    /* NULL-terminated protocols to offer, preferred first */
    const char *min_version;    /* "TLSv1.2" (default) or "TLSv1.3" */
    const char *ciphers;        /* TLS 1.2 cipher list; NULL: OpenSSL's default */
    const char *ciphersuites;   /* TLS 1.3 suites; NULL: OpenSSL's default */
    uint64_t handshake_timeout_ms;  /* 0: 60 s */
    uint64_t shutdown_timeout_ms;   /* 0: 30 s */
};

/**
 * A new client context (*out, one reference, the caller's): verifies the
 * server's certificate against ca_file or the system's store and checks it
 * names the host asked for (server_hostname, default the host connected
 * to), which is also sent as SNI. Returns 0, or -WEFT_ECONFIG with err set
 * (unreadable file, bad PEM, key not matching), -ENOMEM. Since 0.1.
 */
WEFT_EXPORT int weft_tls_context_new_client(const struct weft_tls_client_options *opts,
                                            struct weft_tls_context **out, char *err,
                                            size_t errlen);

/** Take another reference to ctx; returns ctx. Since 0.1. */
WEFT_EXPORT struct weft_tls_context *weft_tls_context_ref(struct weft_tls_context *ctx);

/**
 * Drop a reference. Connections made with the context hold their own, so a
 * server may drop its context while connections are still open. NULL is a
 * no-op. Since 0.1.
 */
WEFT_EXPORT void weft_tls_context_free(struct weft_tls_context *ctx);

/** True if ctx was made by weft_tls_context_new_client(). Since 0.1. */
WEFT_EXPORT bool weft_tls_context_is_client(const struct weft_tls_context *ctx);

struct weft_transport;
struct weft_protocol;

/**
 * The outcome of weft_start_tls: tls is the new TLS transport (error 0,
 * after proto's connection_made ran), or NULL with a negative error (the
 * handshake failed or timed out, or the connection ended first: -WEFT_ETLS,
 * -ETIMEDOUT, -ECONNRESET...). Called once, from the loop.
 */
typedef void weft_start_tls_cb(struct weft_transport *tls, int error, void *arg);

/**
 * Upgrade a live connection to TLS, as asyncio's loop.start_tls does for
 * STARTTLS protocols (SMTP, IMAP, XMPP...): TLS is pushed onto tr, server
 * side if ctx is a server context, client side if it is a client one
 * (server_hostname: the name sent as SNI and checked against the
 * certificate; NULL: none). From this call on tr's bytes are TLS records
 * and tr's protocol is the TLS layer: its old protocol gets no more
 * callbacks from tr (not even connection_lost). Bytes tr has read and its
 * protocol has not taken (a ClientHello right behind the STARTTLS command)
 * are the handshake's. Reading on tr is resumed. Once the handshake is done,
 * proto (often the protocol tr had) gets connection_made with the new TLS
 * transport, then done(tls, 0, arg); from then on proto talks to the TLS
 * transport, whose connection_lost it gets. If the handshake fails, done(NULL,
 * err, arg) runs and proto was never used: the caller still owns it. The TLS
 * transport holds tr, and tr ends with it (closing it sends close_notify,
 * then closes tr). ctx is referenced, not taken. Returns 0, -EINVAL (a NULL
 * argument), -EPIPE (tr is closing) or -ENOMEM (nothing changed then).
 * Since 0.1.
 */
WEFT_EXPORT int weft_start_tls(struct weft_transport *tr, struct weft_protocol *proto,
                               struct weft_tls_context *ctx, const char *server_hostname,
                               weft_start_tls_cb *done, void *arg);

#ifdef __cplusplus
}
#endif
#endif
