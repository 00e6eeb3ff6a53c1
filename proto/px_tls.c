#include "px_tls.h"
#include "px_err.h"

#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include <stdio.h>
#include <string.h>

static int io_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    (void)ssl;
    struct px_tls *t = ctx;
    if (px_buf_len(&t->in) == 0)
        return WOLFSSL_CBIO_ERR_WANT_READ;
    return (int)px_buf_read(&t->in, buf, (size_t)sz);
}

static int io_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    (void)ssl;
    struct px_tls *t = ctx;
    if (px_buf_append(&t->out, buf, (size_t)sz) < 0)
        return WOLFSSL_CBIO_ERR_GENERAL;
    return sz;
}

int px_tls_global_init(void)
{
    /* Process-wide on purpose: wolfSSL_Init is the library's own process-wide
     * set-up, called once by the main thread before any loop starts. */
    static int done;
    if (done)
        return 0;
    if (wolfSSL_Init() != WOLFSSL_SUCCESS)
        return PX_ERR_TLS;
    done = 1;
    return 0;
}

/* Only AEAD suites, forward secret key exchange, in one of two orders.
 * Without AES in hardware ChaCha20-Poly1305 is the faster: Debian's wolfSSL
 * has no AES-NI code, and there ChaCha20-Poly1305 runs ~2.6x faster than
 * AES-GCM (476 vs 182 MB/s measured with wolfCrypt on the CI machine kind).
 * So it comes first, and the server picks in its own order. */
static const char cipher_list_chacha[] =
    "TLS13-CHACHA20-POLY1305-SHA256:TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384";

/* With AES in hardware (WOLFSSL=source on a CPU with AES-NI) AES-128-GCM
 * runs at 4-6 GB/s against 2 GB/s for ChaCha20-Poly1305 (wolfCrypt's
 * benchmark, issue 13): it comes first, so our own client (the connector)
 * asks for it, and the server takes the client's order, so a client that
 * prefers ChaCha20 (a phone without AES instructions lists it first) keeps
 * it. Every suite here is as strong as the others, so the client's choice
 * among them gives nothing away. */
static const char cipher_list_aes[] =
    "TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:TLS13-CHACHA20-POLY1305-SHA256:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

int px_tls_aes_fast(void)
{
#if defined(WOLFSSL_AESNI) && (defined(__x86_64__) || defined(__i386__))
    /* The library has the AES-NI code (its options.h says so); it uses it
     * when the CPU has AES-NI and PCLMULQDQ, as asked here. */
    __builtin_cpu_init();
    return __builtin_cpu_supports("aes") && __builtin_cpu_supports("pclmul");
#else
    return 0;
#endif
}

/* Key exchange on these curves only, X25519 first; a client offers exactly
 * these. Without the list wolfSSL also agrees to secp256k1 and brainpool
 * (TLS 1.2) and to finite-field DH, ffdhe2048 (TLS 1.3), as testssl.sh showed
 * (`make tlsscan`). The list also disables the others for TLS 1.2 ECDHE. */
static const char curve_list[] = "X25519:P-256:P-384";

static int ctx_common(WOLFSSL_CTX *ctx)
{
    int aes = px_tls_aes_fast();
    wolfSSL_SetIORecv(ctx, io_recv);
    wolfSSL_SetIOSend(ctx, io_send);
    if (wolfSSL_CTX_SetMinVersion(ctx, WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS ||
        wolfSSL_CTX_set_cipher_list(ctx, aes ? cipher_list_aes : cipher_list_chacha) !=
            WOLFSSL_SUCCESS ||
        wolfSSL_CTX_set1_curves_list(ctx, curve_list) != WOLFSSL_SUCCESS)
        return PX_ERR_TLS;
    /* wolfSSL picks in the server's order unless told otherwise. */
    if (aes && wolfSSL_CTX_UseClientSuites(ctx) != 0)
        return PX_ERR_TLS;
    if (!aes)
        wolfSSL_CTX_set_options(ctx, WOLFSSL_OP_CIPHER_SERVER_PREFERENCE);
    return 0;
}

int px_tls_ctx_server(const char *cert_pem, const char *key_pem, const char *client_ca_pem,
                      int require_client_cert, WOLFSSL_CTX **out)
{
    WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfSSLv23_server_method());
    if (!ctx)
        return PX_ERR_TLS;
    if (ctx_common(ctx) < 0)
        goto fail;
    if (cert_pem &&
        wolfSSL_CTX_use_certificate_chain_buffer(ctx, (const unsigned char *)cert_pem,
                                                 (long)strlen(cert_pem)) != WOLFSSL_SUCCESS)
        goto fail;
    if (key_pem && wolfSSL_CTX_use_PrivateKey_buffer(ctx, (const unsigned char *)key_pem,
                                                     (long)strlen(key_pem),
                                                     WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS)
        goto fail;
    if (client_ca_pem) {
        if (wolfSSL_CTX_load_verify_buffer(ctx, (const unsigned char *)client_ca_pem,
                                           (long)strlen(client_ca_pem),
                                           WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS)
            goto fail;
        wolfSSL_CTX_set_verify(ctx,
                               WOLFSSL_VERIFY_PEER |
                                   (require_client_cert ? WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
                               NULL);
    } else {
        wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_NONE, NULL);
    }
    *out = ctx;
    return 0;
fail:
    wolfSSL_CTX_free(ctx);
    return PX_ERR_TLS;
}

int px_tls_ctx_client(const char *ca_pem, const char *cert_pem, const char *key_pem,
                      WOLFSSL_CTX **out)
{
    WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
    if (!ctx)
        return PX_ERR_TLS;
    if (ctx_common(ctx) < 0)
        goto fail;
    if (ca_pem) {
        if (wolfSSL_CTX_load_verify_buffer(ctx, (const unsigned char *)ca_pem, (long)strlen(ca_pem),
                                           WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS)
            goto fail;
        wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER, NULL);
    } else {
        wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_NONE, NULL);
    }
    if (cert_pem &&
        wolfSSL_CTX_use_certificate_chain_buffer(ctx, (const unsigned char *)cert_pem,
                                                 (long)strlen(cert_pem)) != WOLFSSL_SUCCESS)
        goto fail;
    if (key_pem && wolfSSL_CTX_use_PrivateKey_buffer(ctx, (const unsigned char *)key_pem,
                                                     (long)strlen(key_pem),
                                                     WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS)
        goto fail;
    *out = ctx;
    return 0;
fail:
    wolfSSL_CTX_free(ctx);
    return PX_ERR_TLS;
}

int px_tls_init(struct px_tls *t, WOLFSSL_CTX *ctx, int is_server, const char *server_name,
                const char *alpn)
{
    memset(t, 0, sizeof(*t));
    px_buf_init(&t->in);
    px_buf_init(&t->out);
    t->ssl = wolfSSL_new(ctx);
    if (!t->ssl)
        return PX_ERR_TLS;
    wolfSSL_SetIOReadCtx(t->ssl, t);
    wolfSSL_SetIOWriteCtx(t->ssl, t);
    if (!is_server && server_name && *server_name) {
        if (wolfSSL_UseSNI(t->ssl, WOLFSSL_SNI_HOST_NAME, server_name,
                           (unsigned short)strlen(server_name)) != WOLFSSL_SUCCESS)
            goto fail;
        if (wolfSSL_get_verify_mode(t->ssl) != WOLFSSL_VERIFY_NONE &&
            wolfSSL_check_domain_name(t->ssl, server_name) != WOLFSSL_SUCCESS)
            goto fail;
    }
    if (alpn) {
        char list[128];
        snprintf(list, sizeof(list), "%s", alpn);
        if (wolfSSL_UseALPN(t->ssl, list, (unsigned)strlen(list),
                            is_server ? WOLFSSL_ALPN_CONTINUE_ON_MISMATCH
                                      : WOLFSSL_ALPN_FAILED_ON_MISMATCH) != WOLFSSL_SUCCESS)
            goto fail;
    }
    return 0;
fail:
    wolfSSL_free(t->ssl);
    t->ssl = NULL;
    return PX_ERR_TLS;
}

void px_tls_cleanup(struct px_tls *t)
{
    if (t->ssl)
        wolfSSL_free(t->ssl);
    t->ssl = NULL;
    px_buf_cleanup(&t->in);
    px_buf_cleanup(&t->out);
}

int px_tls_feed(struct px_tls *t, const void *data, size_t len)
{
    return px_buf_append(&t->in, data, len);
}

static int is_verify_error(int e)
{
    switch (e) {
    case ASN_NO_SIGNER_E:
    case ASN_SIG_CONFIRM_E:
    case ASN_AFTER_DATE_E:
    case ASN_BEFORE_DATE_E:
    case DOMAIN_NAME_MISMATCH:
    case NO_PEER_CERT:
    case VERIFY_CERT_ERROR:
    case ASN_SELF_SIGNED_E:
    case IPADDR_MISMATCH:
        return 1;
    default:
        return 0;
    }
}

/* A peer chain longer than PX_TLS_MAX_CHAIN: wolfSSL stops reading the
 * Certificate message where its chain storage ends, then fails on the unread
 * rest as if it were the next message (HANDSHAKE_SIZE_ERROR in TLS 1.3,
 * DECODE_E in 1.2), which says nothing of the cause. It notes the chain as
 * too long (X509_V_ERR_CERT_CHAIN_TOO_LONG) but clears that again when the
 * part it kept does not reach a trusted CA (its alternate chain mode), as a
 * cut chain usually does: so a full chain storage followed by a parse error
 * counts too. */
static int chain_too_long(const struct px_tls *t, int e)
{
    if (!t->ssl)
        return 0;
    if (wolfSSL_get_verify_result(t->ssl) == X509_V_ERR_CERT_CHAIN_TOO_LONG)
        return 1;
    WOLFSSL_X509_CHAIN *ch = wolfSSL_get_peer_chain(t->ssl);
    return ch && wolfSSL_get_chain_count(ch) >= PX_TLS_MAX_CHAIN &&
           (e == HANDSHAKE_SIZE_ERROR || e == DECODE_E || e == BUFFER_ERROR || e == PARSE_ERROR);
}

/* Notes failure e: the wolfSSL error, and as t->failure the first cause
 * (our verification, the alert received or sent, else the protocol). */
static void note_failure(struct px_tls *t, int e)
{
    t->last_err = e;
    WOLFSSL_ALERT_HISTORY h;
    memset(&h, 0, sizeof(h));
    int have = t->ssl && wolfSSL_get_alert_history(t->ssl, &h) == WOLFSSL_SUCCESS;
    int rx = have && h.last_rx.level == alert_fatal && h.last_rx.code > 0 ? h.last_rx.code : 0;
    int tx = have && h.last_tx.level == alert_fatal && h.last_tx.code > 0 ? h.last_tx.code : 0;
    if (rx)
        t->peer_alert = rx;
    struct px_tls_failure *f = &t->failure;
    if (f->kind != PX_TLS_FAIL_NONE)
        return; /* later errors follow from the first */
    int too_long = chain_too_long(t, e);
    if (is_verify_error(e) || too_long) {
        long v = too_long ? X509_V_ERR_CERT_CHAIN_TOO_LONG
                 : t->ssl ? wolfSSL_get_verify_result(t->ssl)
                          : 0;
        f->kind = PX_TLS_FAIL_VERIFY;
        f->alert = tx;
        f->verify_result = v > 0 && v <= 0x7fffffff ? (int)v : e;
    } else if (rx) {
        f->kind = PX_TLS_FAIL_ALERT_RECEIVED;
        f->alert = rx;
    } else if (tx) {
        f->kind = PX_TLS_FAIL_ALERT_SENT;
        f->alert = tx;
    } else {
        f->kind = PX_TLS_FAIL_PROTOCOL;
    }
}

const char *px_tls_fail_name(enum px_tls_fail kind)
{
    switch (kind) {
    case PX_TLS_FAIL_NONE:
        return "none";
    case PX_TLS_FAIL_ALERT_RECEIVED:
        return "alert received";
    case PX_TLS_FAIL_ALERT_SENT:
        return "alert sent";
    case PX_TLS_FAIL_VERIFY:
        return "certificate verification";
    case PX_TLS_FAIL_PROTOCOL:
        return "protocol";
    }
    return "?";
}

int px_tls_alert_rejects_cert(int alert)
{
    switch (alert) {
    case bad_certificate:
    case unsupported_certificate:
    case certificate_revoked:
    case certificate_expired:
    case certificate_unknown:
    case unknown_ca:
    case access_denied:
    case certificate_required:
        return 1;
    default:
        return 0;
    }
}

const char *px_tls_alert_name(int alert, char *buf, size_t len)
{
    switch (alert) {
    case handshake_failure:
        return "handshake_failure";
    case bad_certificate:
        return "bad_certificate";
    case unsupported_certificate:
        return "unsupported_certificate";
    case certificate_revoked:
        return "certificate_revoked";
    case certificate_expired:
        return "certificate_expired";
    case certificate_unknown:
        return "certificate_unknown";
    case unknown_ca:
        return "unknown_ca";
    case access_denied:
        return "access_denied";
    case decrypt_error:
        return "decrypt_error";
    case certificate_required:
        return "certificate_required";
    default:
        snprintf(buf, len, "alert %d", alert);
        return buf;
    }
}

void px_tls_free_caches(void)
{
#ifdef FP_ECC
    wc_ecc_fp_free();
#endif
}

int px_tls_handshake(struct px_tls *t)
{
    if (t->handshake_done)
        return 0;
    int r = wolfSSL_negotiate(t->ssl);
    if (r == WOLFSSL_SUCCESS) {
        t->handshake_done = 1;
        /* The handshake's points (the peer's keys, our ephemeral ones) are
         * not multiplied again: their cache entries are 823 KB each that
         * pay nothing (on Debian's wolfSSL they were 6.4 MB of an idle
         * edge's 12.9 MB). The generator's table, the one entry that would
         * pay, goes with them: it is rebuilt only after two uses. */
        px_tls_free_caches();
        return 0;
    }
    int e = wolfSSL_get_error(t->ssl, r);
    if (e == WOLFSSL_ERROR_WANT_READ || e == WOLFSSL_ERROR_WANT_WRITE)
        return PX_ERR_WANT_IO;
    note_failure(t, e);
    px_tls_free_caches();
    return is_verify_error(e) || chain_too_long(t, e) ? PX_ERR_TLS_VERIFY : PX_ERR_TLS;
}

int px_tls_read(struct px_tls *t, void *buf, size_t cap, size_t *n)
{
    int r = wolfSSL_read(t->ssl, buf, (int)(cap > 0x7fffffff ? 0x7fffffff : cap));
    if (r > 0) {
        *n = (size_t)r;
        return 0;
    }
    int e = wolfSSL_get_error(t->ssl, r);
    if (e == WOLFSSL_ERROR_WANT_READ || e == WOLFSSL_ERROR_WANT_WRITE)
        return PX_ERR_WANT_IO;
    if (e == WOLFSSL_ERROR_ZERO_RETURN)
        return PX_ERR_CLOSED;
    note_failure(t, e);
    return PX_ERR_TLS;
}

int px_tls_write(struct px_tls *t, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        int chunk = len > 0x100000 ? 0x100000 : (int)len;
        int r = wolfSSL_write(t->ssl, p, chunk);
        if (r <= 0) {
            note_failure(t, wolfSSL_get_error(t->ssl, r));
            return PX_ERR_TLS;
        }
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

void px_tls_shutdown(struct px_tls *t)
{
    if (t->ssl && t->handshake_done)
        wolfSSL_shutdown(t->ssl);
}

const char *px_tls_alpn(struct px_tls *t)
{
    char *name = NULL;
    unsigned short sz = 0;
    if (wolfSSL_ALPN_GetProtocol(t->ssl, &name, &sz) != WOLFSSL_SUCCESS || !name ||
        sz >= sizeof(t->alpn))
        return "";
    memcpy(t->alpn, name, sz);
    t->alpn[sz] = '\0';
    return t->alpn;
}

void px_tls_describe_error(const struct px_tls *t, char *buf, size_t len)
{
    if (t->failure.verify_result == X509_V_ERR_CERT_CHAIN_TOO_LONG) {
        snprintf(buf, len, "certificate chain longer than %d certificates (leaf included)",
                 PX_TLS_MAX_CHAIN);
        return;
    }
    switch (t->last_err) {
    case ASN_NO_SIGNER_E:
        snprintf(buf, len, "certificate not signed by a trusted CA");
        return;
    case DOMAIN_NAME_MISMATCH:
        snprintf(buf, len, "certificate name does not match");
        return;
    case ASN_AFTER_DATE_E:
        snprintf(buf, len, "certificate expired");
        return;
    case ASN_BEFORE_DATE_E:
        snprintf(buf, len, "certificate not yet valid");
        return;
    case NO_PEER_CERT:
        snprintf(buf, len, "peer presented no certificate");
        return;
    default: {
        char e[WOLFSSL_MAX_ERROR_SZ];
        wolfSSL_ERR_error_string_n((unsigned long)t->last_err, e, sizeof(e));
        snprintf(buf, len, "TLS error %d (%s)", t->last_err, e);
    }
    }
}
