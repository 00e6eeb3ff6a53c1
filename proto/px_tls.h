/* px_tls: wolfSSL over memory buffers. The caller moves ciphertext between
 * the socket and `in`/`out`; this module never touches a socket. */
#ifndef PX_TLS_H
#define PX_TLS_H

#include "px_buf.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <stddef.h>

/* How a TLS session failed, as a value for the layers above (a link tells
 * "the edge refused my certificate" from "I refused the edge's" with it). */
enum px_tls_fail {
    PX_TLS_FAIL_NONE = 0,       /* nothing failed (yet) */
    PX_TLS_FAIL_ALERT_RECEIVED, /* the peer sent the fatal alert `alert` */
    PX_TLS_FAIL_ALERT_SENT,     /* we sent the fatal alert `alert` (not a verify failure) */
    PX_TLS_FAIL_VERIFY,         /* we rejected the peer's certificate: verify_result;
                                   `alert` is the alert we sent for it, 0 if none */
    PX_TLS_FAIL_PROTOCOL,       /* anything else, no alert either way (px_tls.last_err) */
};

struct px_tls_failure {
    enum px_tls_fail kind;
    int alert;         /* RFC 8446 6.2 AlertDescription, 0 when none */
    int verify_result; /* > 0 an X509_V_ERR_* code (wolfSSL_get_verify_result);
                          < 0 wolfSSL's error when it gave no X509 code (e.g.
                          NO_PEER_CERT); 0 when the failure was no verification */
};

struct px_tls {
    WOLFSSL *ssl;
    struct px_buf in;  /* ciphertext from the peer not yet consumed */
    struct px_buf out; /* ciphertext to send to the peer */
    int handshake_done;
    int last_err; /* wolfSSL error code of the last failure */
    /* The description (RFC 8446 6.2) of a fatal alert the peer sent, noted
     * when a handshake or read fails; 0 when none (0 is close_notify, never
     * fatal). Survives px_tls_cleanup, so an owner can read it on close. */
    int peer_alert;
    /* The first failure of the session; kind NONE until one. Also survives
     * px_tls_cleanup. peer_alert above is failure.alert when failure.kind is
     * PX_TLS_FAIL_ALERT_RECEIVED, kept for its current users. */
    struct px_tls_failure failure;
    char alpn[32];
};

/* The most certificates a peer's chain may hold (leaf first): wolfSSL's
 * MAX_CHAIN_DEPTH, which sizes the chain every session keeps. 4 in the
 * source build (scripts/wolfssl-src.sh, for memory per connection), 9
 * (wolfSSL's default) in Debian's. A longer chain fails the handshake:
 * failure.kind PX_TLS_FAIL_VERIFY, verify_result
 * X509_V_ERR_CERT_CHAIN_TOO_LONG. */
#ifdef MAX_CHAIN_DEPTH
#define PX_TLS_MAX_CHAIN MAX_CHAIN_DEPTH
#else
#define PX_TLS_MAX_CHAIN 9
#endif

/* Initialises the TLS library once per process. */
int px_tls_global_init(void);

/* 1 when AES-GCM runs in hardware: the wolfSSL built in has AES-NI code
 * (WOLFSSL=source) and this CPU has AES-NI and PCLMULQDQ; else 0. The
 * contexts below then offer AES-128-GCM first and, as a server, follow the
 * client's order; otherwise ChaCha20-Poly1305 first, in the server's order. */
int px_tls_aes_fast(void);

/* Builds a server context from PEM cert chain and key. If client_ca_pem is
 * non-NULL, client certificates are requested and verified against it; with
 * require_client_cert they are mandatory. Returns 0 and *out, or PX_ERR_TLS. */
int px_tls_ctx_server(const char *cert_pem, const char *key_pem, const char *client_ca_pem,
                      int require_client_cert, WOLFSSL_CTX **out);
/* Builds a client context trusting ca_pem (NULL: no verification — only for
 * tests), optionally presenting cert_pem/key_pem. Returns 0 and *out, or PX_ERR_TLS. */
int px_tls_ctx_client(const char *ca_pem, const char *cert_pem, const char *key_pem,
                      WOLFSSL_CTX **out);

/* Creates a session on ctx. For a client, server_name (may be NULL) is sent as
 * SNI and checked against the peer certificate. alpn is a comma-separated
 * list ("h2,http/1.1"); mismatches fail the handshake. Returns 0 or an error. */
int px_tls_init(struct px_tls *t, WOLFSSL_CTX *ctx, int is_server, const char *server_name,
                const char *alpn);
void px_tls_cleanup(struct px_tls *t);

/* Appends ciphertext received from the peer. Returns 0 or PX_ERR_NOMEM. */
int px_tls_feed(struct px_tls *t, const void *data, size_t len);
/* Advances the handshake. Returns 0 when complete, PX_ERR_WANT_IO when it
 * needs more input (flush `out` first: it may hold the alert we send), or
 * PX_ERR_TLS_VERIFY / PX_ERR_TLS with t->failure filled. When the handshake
 * ends, either way, it frees this thread's ECC cache (px_tls_free_caches). */
int px_tls_handshake(struct px_tls *t);
/* Reads plaintext. Returns 0 with *n > 0, PX_ERR_WANT_IO when nothing is
 * buffered, PX_ERR_CLOSED on close_notify, PX_ERR_TLS on failure (with
 * t->failure filled: in TLS 1.3 a client learns here that the server
 * refused its certificate, after its side of the handshake completed). */
int px_tls_read(struct px_tls *t, void *buf, size_t cap, size_t *n);
/* Encrypts all of data into `out`. Returns 0 or PX_ERR_TLS / PX_ERR_NOMEM. */
int px_tls_write(struct px_tls *t, const void *data, size_t len);
/* Frees this thread's wolfSSL ECC fixed-point cache (FP_ECC, which Debian's
 * wolfSSL has): every point the thread multiplied keeps an entry of 256
 * precomputed points, 823 KB each on Debian's build, up to 15 of them,
 * although only a point used again (the curve's generator, a CA's key)
 * ever gets its table used. Entries come back on demand. Call it after work
 * that filled the cache and will not repeat soon: a handshake (done by
 * px_tls_handshake itself), a key import or generation. No-op without
 * FP_ECC. */
void px_tls_free_caches(void);
/* Queues close_notify into `out`. */
void px_tls_shutdown(struct px_tls *t);
/* The negotiated ALPN protocol (static storage of the session) or "". */
const char *px_tls_alpn(struct px_tls *t);
/* 1 when alert (a peer_alert value) says the peer refused our certificate:
 * bad_certificate, unsupported_certificate, certificate_revoked,
 * certificate_expired, certificate_unknown, unknown_ca, access_denied or
 * certificate_required. Else 0. */
int px_tls_alert_rejects_cert(int alert);
/* The kind's name ("alert received", "verify"...), static. */
const char *px_tls_fail_name(enum px_tls_fail kind);
/* The alert's name ("certificate_expired"), or "alert N" in buf for others. */
const char *px_tls_alert_name(int alert, char *buf, size_t len);
/* Writes a one-line description of the last failure into buf. */
void px_tls_describe_error(const struct px_tls *t, char *buf, size_t len);

#endif
