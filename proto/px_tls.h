/* px_tls: wolfSSL over memory buffers. The caller moves ciphertext between
 * the socket and `in`/`out`; this module never touches a socket. */
#ifndef PX_TLS_H
#define PX_TLS_H

#include "px_buf.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <stddef.h>

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
    char alpn[32];
};

/* Initialises the TLS library once per process. */
int px_tls_global_init(void);

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
 * needs more input (flush `out` first), PX_ERR_TLS_VERIFY or PX_ERR_TLS. */
int px_tls_handshake(struct px_tls *t);
/* Reads plaintext. Returns 0 with *n > 0, PX_ERR_WANT_IO when nothing is
 * buffered, PX_ERR_CLOSED on close_notify, PX_ERR_TLS on failure. */
int px_tls_read(struct px_tls *t, void *buf, size_t cap, size_t *n);
/* Encrypts all of data into `out`. Returns 0 or PX_ERR_TLS / PX_ERR_NOMEM. */
int px_tls_write(struct px_tls *t, const void *data, size_t len);
/* Queues close_notify into `out`. */
void px_tls_shutdown(struct px_tls *t);
/* The negotiated ALPN protocol (static storage of the session) or "". */
const char *px_tls_alpn(struct px_tls *t);
/* 1 when alert (a peer_alert value) says the peer refused our certificate:
 * bad_certificate, unsupported_certificate, certificate_revoked,
 * certificate_expired, certificate_unknown, unknown_ca, access_denied or
 * certificate_required. Else 0. */
int px_tls_alert_rejects_cert(int alert);
/* The alert's name ("certificate_expired"), or "alert N" in buf for others. */
const char *px_tls_alert_name(int alert, char *buf, size_t len);
/* Writes a one-line description of the last failure into buf. */
void px_tls_describe_error(const struct px_tls *t, char *buf, size_t len);

#endif
