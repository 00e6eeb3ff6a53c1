/* TLS client and server wired back to back in memory, with certificates made by px_pki. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "px_err.h"
#include "px_pki.h"
#include "px_tls.h"
#include "test_rng.h"

#include <wolfssl/error-ssl.h>

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SANITIZE_ADDRESS__)
/* libasan's (sanitizer/allocator_interface.h, not installed with gcc here) */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif

struct pki {
    char *ca_key, *ca, *srv_key, *srv, *cli_key, *cli;
    char *other_ca_key, *other_ca, *other_cli_key, *other_cli;
};

static char *issue(const char *ca, const char *ca_key, const char *key, const char *cn,
                   const char *name, enum px_pki_usage u)
{
    char *pub = NULL, *cert = NULL;
    assert_int_equal(px_pki_pubkey(key, &pub), 0);
    const char *names[1] = {name};
    assert_int_equal(px_pki_issue(test_rng(), ca, ca_key, pub, cn, name ? names : NULL,
                                  name ? 1 : 0, u, 30, &cert),
                     0);
    free(pub);
    return cert;
}

static int setup(void **state)
{
    struct pki *p = calloc(1, sizeof(*p));
    assert_int_equal(px_tls_global_init(), 0);
    assert_int_equal(px_pki_keygen(test_rng(), &p->ca_key), 0);
    assert_int_equal(px_pki_make_ca(test_rng(), p->ca_key, "test CA", 30, &p->ca), 0);
    assert_int_equal(px_pki_keygen(test_rng(), &p->srv_key), 0);
    p->srv = issue(p->ca, p->ca_key, p->srv_key, "server", "tunnel.test", PX_PKI_SERVER);
    assert_int_equal(px_pki_keygen(test_rng(), &p->cli_key), 0);
    p->cli = issue(p->ca, p->ca_key, p->cli_key, "client", NULL, PX_PKI_CLIENT);
    assert_int_equal(px_pki_keygen(test_rng(), &p->other_ca_key), 0);
    assert_int_equal(px_pki_make_ca(test_rng(), p->other_ca_key, "other CA", 30, &p->other_ca), 0);
    assert_int_equal(px_pki_keygen(test_rng(), &p->other_cli_key), 0);
    p->other_cli =
        issue(p->other_ca, p->other_ca_key, p->other_cli_key, "client", NULL, PX_PKI_CLIENT);
    *state = p;
    return 0;
}

static int teardown(void **state)
{
    struct pki *p = *state;
    char **f = (char **)p;
    for (size_t i = 0; i < sizeof(*p) / sizeof(char *); i++)
        free(f[i]);
    free(p);
    return 0;
}

/* Moves ciphertext both ways until neither side makes progress. Returns the
 * handshake results through rc_c / rc_s. */
static void pump(struct px_tls *c, struct px_tls *s, int *rc_c, int *rc_s)
{
    for (int i = 0; i < 20; i++) {
        *rc_c = px_tls_handshake(c);
        if (px_buf_len(&c->out)) {
            px_tls_feed(s, px_buf_head(&c->out), px_buf_len(&c->out));
            px_buf_consume(&c->out, px_buf_len(&c->out));
        }
        *rc_s = px_tls_handshake(s);
        if (px_buf_len(&s->out)) {
            px_tls_feed(c, px_buf_head(&s->out), px_buf_len(&s->out));
            px_buf_consume(&s->out, px_buf_len(&s->out));
        }
        if (*rc_c != PX_ERR_WANT_IO && *rc_s != PX_ERR_WANT_IO)
            return;
    }
}

static void run_pair(struct pki *p, const char *cli_cert, const char *cli_key,
                     const char *server_name, int *rc_c, int *rc_s, struct px_tls *c,
                     struct px_tls *s, WOLFSSL_CTX **cc, WOLFSSL_CTX **sc)
{
    assert_int_equal(px_tls_ctx_server(p->srv, p->srv_key, p->ca, 1, sc), 0);
    assert_int_equal(px_tls_ctx_client(p->ca, cli_cert, cli_key, cc), 0);
    assert_int_equal(px_tls_init(s, *sc, 1, NULL, "h2"), 0);
    assert_int_equal(px_tls_init(c, *cc, 0, server_name, "h2"), 0);
    pump(c, s, rc_c, rc_s);
}

static void done_pair(struct px_tls *c, struct px_tls *s, WOLFSSL_CTX *cc, WOLFSSL_CTX *sc)
{
    px_tls_cleanup(c);
    px_tls_cleanup(s);
    wolfSSL_CTX_free(cc);
    wolfSSL_CTX_free(sc);
}

static void test_mtls_handshake_and_data(void **state)
{
    struct pki *p = *state;
    struct px_tls c, s;
    WOLFSSL_CTX *cc, *sc;
    int rc_c, rc_s;
    run_pair(p, p->cli, p->cli_key, "tunnel.test", &rc_c, &rc_s, &c, &s, &cc, &sc);
    assert_int_equal(rc_c, 0);
    assert_int_equal(rc_s, 0);
    assert_string_equal(px_tls_alpn(&c), "h2");
    assert_string_equal(px_tls_alpn(&s), "h2");
    WOLFSSL_X509 *peer = wolfSSL_get_peer_certificate(s.ssl);
    assert_non_null(peer);
    assert_string_equal(wolfSSL_X509_get_subjectCN(peer), "client");
    wolfSSL_X509_free(peer);

    /* 1 MiB of plaintext client -> server survives intact. */
    size_t n = 1 << 20;
    unsigned char *data = malloc(n), *got = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (unsigned char)(i * 7);
    assert_int_equal(px_tls_write(&c, data, n), 0);
    px_tls_feed(&s, px_buf_head(&c.out), px_buf_len(&c.out));
    px_buf_consume(&c.out, px_buf_len(&c.out));
    size_t total = 0, k;
    while (px_tls_read(&s, got + total, n - total, &k) == 0)
        total += k;
    assert_int_equal(total, n);
    assert_memory_equal(data, got, n);
    free(data);
    free(got);

    px_tls_shutdown(&c);
    px_tls_feed(&s, px_buf_head(&c.out), px_buf_len(&c.out));
    unsigned char b[16];
    assert_int_equal(px_tls_read(&s, b, sizeof(b), &k), PX_ERR_CLOSED);
    done_pair(&c, &s, cc, sc);
}

static void test_client_without_cert_refused(void **state)
{
    struct pki *p = *state;
    struct px_tls c, s;
    WOLFSSL_CTX *cc, *sc;
    int rc_c, rc_s;
    run_pair(p, NULL, NULL, "tunnel.test", &rc_c, &rc_s, &c, &s, &cc, &sc);
    assert_true(rc_s < 0 && rc_s != PX_ERR_WANT_IO);
    done_pair(&c, &s, cc, sc);
}

static void test_client_cert_other_ca_refused(void **state)
{
    struct pki *p = *state;
    struct px_tls c, s;
    WOLFSSL_CTX *cc, *sc;
    int rc_c, rc_s;
    run_pair(p, p->other_cli, p->other_cli_key, "tunnel.test", &rc_c, &rc_s, &c, &s, &cc, &sc);
    assert_true(rc_s < 0 && rc_s != PX_ERR_WANT_IO);
    done_pair(&c, &s, cc, sc);
}

static void test_server_name_mismatch_refused(void **state)
{
    struct pki *p = *state;
    struct px_tls c, s;
    WOLFSSL_CTX *cc, *sc;
    int rc_c, rc_s;
    run_pair(p, p->cli, p->cli_key, "other.test", &rc_c, &rc_s, &c, &s, &cc, &sc);
    assert_int_equal(rc_c, PX_ERR_TLS_VERIFY);
    char why[128];
    px_tls_describe_error(&c, why, sizeof(why));
    assert_non_null(strstr(why, "name"));
    done_pair(&c, &s, cc, sc);
}

static void test_server_untrusted_ca_refused(void **state)
{
    struct pki *p = *state;
    struct px_tls c, s;
    WOLFSSL_CTX *cc, *sc;
    int rc_c, rc_s;
    assert_int_equal(px_tls_ctx_server(p->srv, p->srv_key, NULL, 0, &sc), 0);
    assert_int_equal(px_tls_ctx_client(p->other_ca, NULL, NULL, &cc), 0);
    assert_int_equal(px_tls_init(&s, sc, 1, NULL, "h2"), 0);
    assert_int_equal(px_tls_init(&c, cc, 0, "tunnel.test", "h2"), 0);
    pump(&c, &s, &rc_c, &rc_s);
    assert_int_equal(rc_c, PX_ERR_TLS_VERIFY);
    done_pair(&c, &s, cc, sc);
}

/* A pair run to its end and freed: what is left to look at is each side's
 * handshake result and its failure value (which survives cleanup). */
struct ended {
    int rc_c, rc_s;
    struct px_tls c, s;
};

static void run_to_end(struct pki *p, const char *cert, const char *key, const char *name,
                       struct ended *e)
{
    WOLFSSL_CTX *cc, *sc;
    run_pair(p, cert, key, name, &e->rc_c, &e->rc_s, &e->c, &e->s, &cc, &sc);
    /* TLS 1.3: the client's side of the handshake can be complete when the
     * server's alert arrives; it surfaces at the first read. */
    if (e->rc_c == 0 && e->rc_s < 0) {
        unsigned char b[16];
        size_t k;
        assert_int_equal(px_tls_read(&e->c, b, sizeof(b), &k), PX_ERR_TLS);
    }
    done_pair(&e->c, &e->s, cc, sc);
}

#define ANY_REFUSAL (-1)     /* an alert that refuses a certificate */
#define ANY_RESULT (-0x7fff) /* a verify result other than 0 */

static void expect_failure(const struct px_tls_failure *f, enum px_tls_fail kind, int alert,
                           int verify_result)
{
    assert_int_equal(f->kind, kind);
    if (alert == ANY_REFUSAL)
        assert_true(px_tls_alert_rejects_cert(f->alert));
    else
        assert_int_equal(f->alert, alert);
    if (verify_result == ANY_RESULT)
        assert_int_not_equal(f->verify_result, 0);
    else
        assert_int_equal(f->verify_result, verify_result);
}

/* The client learns, from the failure value alone, that the server refused
 * its certificate; the server that it refused it, with the verification
 * result and the alert it sent. No text is read. */
static void test_failure_server_rejects_client_cert(void **state)
{
    struct pki *p = *state;
    struct ended e;
    run_to_end(p, p->other_cli, p->other_cli_key, "tunnel.test", &e);
    assert_int_equal(e.rc_s, PX_ERR_TLS_VERIFY);
    /* The server: its own verification (an X509_V_ERR_* code), the alert it sent. */
    expect_failure(&e.s.failure, PX_TLS_FAIL_VERIFY, unknown_ca, ANY_RESULT);
    assert_true(e.s.failure.verify_result > 0);
    assert_int_equal(e.s.peer_alert, 0); /* it received none */
    /* The client: the alert it received, the one the server sent. */
    expect_failure(&e.c.failure, PX_TLS_FAIL_ALERT_RECEIVED, unknown_ca, 0);
    assert_int_equal(e.c.peer_alert, unknown_ca); /* kept for its current users */
    assert_string_equal(px_tls_fail_name(e.c.failure.kind), "alert received");
}

static void test_failure_client_without_cert(void **state)
{
    struct ended e;
    run_to_end(*state, NULL, NULL, "tunnel.test", &e);
    /* No X509 code for a missing certificate: wolfSSL's own error. */
    expect_failure(&e.s.failure, PX_TLS_FAIL_VERIFY, ANY_REFUSAL, NO_PEER_CERT);
    expect_failure(&e.c.failure, PX_TLS_FAIL_ALERT_RECEIVED, e.s.failure.alert, 0);
}

/* The other direction: the client refuses the server's certificate. */
static void test_failure_client_rejects_server_cert(void **state)
{
    struct pki *p = *state;
    struct ended e;
    run_to_end(p, p->cli, p->cli_key, "other.test", &e);
    assert_int_equal(e.rc_c, PX_ERR_TLS_VERIFY);
    assert_true(e.rc_s < 0 && e.rc_s != PX_ERR_WANT_IO);
    expect_failure(&e.c.failure, PX_TLS_FAIL_VERIFY, bad_certificate, DOMAIN_NAME_MISMATCH);
    expect_failure(&e.s.failure, PX_TLS_FAIL_ALERT_RECEIVED, bad_certificate, 0);
}

/* leaf, then n - 1 copies of ca: the count is what wolfSSL limits (before
 * it verifies anything). */
static char *chain_of(const char *leaf, const char *ca, int n)
{
    size_t ll = strlen(leaf), cl = strlen(ca);
    char *c = malloc(ll + (size_t)(n - 1) * cl + 1);
    assert_non_null(c);
    memcpy(c, leaf, ll);
    for (int i = 1; i < n; i++)
        memcpy(c + ll + (size_t)(i - 1) * cl, ca, cl);
    c[ll + (size_t)(n - 1) * cl] = '\0';
    return c;
}

/* The server's failure when the client presents chain (with cli_key). */
static void server_failure(struct pki *p, const char *chain, struct ended *e)
{
    WOLFSSL_CTX *cc, *sc;
    run_pair(p, chain, p->cli_key, "tunnel.test", &e->rc_c, &e->rc_s, &e->c, &e->s, &cc, &sc);
    done_pair(&e->c, &e->s, cc, sc);
}

static void expect_chain_too_long(struct pki *p, const char *ca)
{
    struct ended e;
    char *chain = chain_of(p->cli, ca, PX_TLS_MAX_CHAIN + 1);
    server_failure(p, chain, &e);
    free(chain);
    assert_int_equal(e.rc_s, PX_ERR_TLS_VERIFY);
    expect_failure(&e.s.failure, PX_TLS_FAIL_VERIFY, e.s.failure.alert,
                   X509_V_ERR_CERT_CHAIN_TOO_LONG);
    char text[160], want[96];
    px_tls_describe_error(&e.s, text, sizeof(text));
    snprintf(want, sizeof(want), "certificate chain longer than %d certificates (leaf included)",
             PX_TLS_MAX_CHAIN);
    assert_string_equal(text, want);
}

/* Bug (issue: memory per idle WebSocket): with MAX_CHAIN_DEPTH at 4 a client
 * chain of 5 failed the handshake as "TLS error -404 (Handshake message too
 * large)", from wolfSSL parsing the rest of the Certificate message it had
 * stopped reading. The failure is now a verification one that names the
 * limit, whether or not the part wolfSSL kept reaches a trusted CA (it
 * clears its own too-long note when not); a chain of exactly the limit
 * passes. wolfSSL sends no alert for it: the client is left waiting (the
 * server's owner closes the connection). */
static void test_failure_client_chain_longer_than_max_depth(void **state)
{
    struct pki *p = *state;
    struct ended e;
    char *ok = chain_of(p->cli, p->ca, PX_TLS_MAX_CHAIN);
    server_failure(p, ok, &e);
    free(ok);
    assert_int_equal(e.rc_s, 0);
    expect_failure(&e.s.failure, PX_TLS_FAIL_NONE, 0, 0);

    expect_chain_too_long(p, p->ca);       /* kept part: trusted CA copies */
    expect_chain_too_long(p, p->other_ca); /* kept part: an untrusted CA's */
}

/* A session that never failed says so. */
static void test_failure_none(void **state)
{
    struct pki *p = *state;
    struct ended e;
    run_to_end(p, p->cli, p->cli_key, "tunnel.test", &e);
    assert_int_equal(e.rc_c, 0);
    assert_int_equal(e.rc_s, 0);
    expect_failure(&e.c.failure, PX_TLS_FAIL_NONE, 0, 0);
    expect_failure(&e.s.failure, PX_TLS_FAIL_NONE, 0, 0);
}

/* The memory I/O of px_tls, for contexts made here with other settings. */
static int mem_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    (void)ssl;
    struct px_tls *t = ctx;
    if (px_buf_len(&t->in) == 0)
        return WOLFSSL_CBIO_ERR_WANT_READ;
    return (int)px_buf_read(&t->in, buf, (size_t)sz);
}

static int mem_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    (void)ssl;
    struct px_tls *t = ctx;
    if (px_buf_append(&t->out, buf, (size_t)sz) < 0)
        return WOLFSSL_CBIO_ERR_GENERAL;
    return sz;
}

static WOLFSSL_CTX *raw_ctx(WOLFSSL_METHOD *m)
{
    WOLFSSL_CTX *ctx = wolfSSL_CTX_new(m);
    assert_non_null(ctx);
    wolfSSL_SetIORecv(ctx, mem_recv);
    wolfSSL_SetIOSend(ctx, mem_send);
    return ctx;
}

static void handshake_with(WOLFSSL_CTX *cc, WOLFSSL_CTX *sc, int *rc_c, int *rc_s, char *curve,
                           size_t curve_len)
{
    struct px_tls c, s;
    assert_int_equal(px_tls_init(&s, sc, 1, NULL, "h2"), 0);
    assert_int_equal(px_tls_init(&c, cc, 0, "tunnel.test", "h2"), 0);
    pump(&c, &s, rc_c, rc_s);
    const char *name = *rc_c == 0 ? wolfSSL_get_curve_name(c.ssl) : NULL;
    snprintf(curve, curve_len, "%s", name ? name : "");
    px_tls_cleanup(&c);
    px_tls_cleanup(&s);
}

/* TLS scan (issue 7): key exchange is ECDHE on X25519, P-256 or P-384 only.
 * testssl.sh found both edge listeners agreeing to secp256k1 and brainpool
 * in TLS 1.2 and to finite-field DH (ffdhe2048) in TLS 1.3, and the
 * connector offering them (and 224-bit curves) too. */
static void test_tls_scan_tls12_ecdhe_only_on_allowed_curves(void **state)
{
    struct pki *p = *state;
    WOLFSSL_CTX *cc, *sc;
    int rc_c, rc_s;
    char curve[64];
    assert_int_equal(px_tls_ctx_server(p->srv, p->srv_key, NULL, 0, &sc), 0);
    /* A TLS 1.2 client listing weak curves first, P-256 last. */
    cc = raw_ctx(wolfTLSv1_2_client_method());
    assert_int_equal(wolfSSL_CTX_load_verify_buffer(cc, (const unsigned char *)p->ca,
                                                    (long)strlen(p->ca), WOLFSSL_FILETYPE_PEM),
                     WOLFSSL_SUCCESS);
    assert_int_equal(wolfSSL_CTX_UseSupportedCurve(cc, WOLFSSL_ECC_SECP256K1), WOLFSSL_SUCCESS);
    assert_int_equal(wolfSSL_CTX_UseSupportedCurve(cc, WOLFSSL_ECC_BRAINPOOLP256R1),
                     WOLFSSL_SUCCESS);
    assert_int_equal(wolfSSL_CTX_UseSupportedCurve(cc, WOLFSSL_ECC_SECP256R1), WOLFSSL_SUCCESS);
    handshake_with(cc, sc, &rc_c, &rc_s, curve, sizeof(curve));
    assert_int_equal(rc_c, 0);
    assert_int_equal(rc_s, 0);
    assert_string_equal(curve, "SECP256R1");
    wolfSSL_CTX_free(cc);

    /* Only weak curves offered: the server still never uses one of them. */
    cc = raw_ctx(wolfTLSv1_2_client_method());
    wolfSSL_CTX_set_verify(cc, WOLFSSL_VERIFY_NONE, NULL);
    assert_int_equal(wolfSSL_CTX_UseSupportedCurve(cc, WOLFSSL_ECC_SECP256K1), WOLFSSL_SUCCESS);
    assert_int_equal(wolfSSL_CTX_UseSupportedCurve(cc, WOLFSSL_ECC_BRAINPOOLP256R1),
                     WOLFSSL_SUCCESS);
    handshake_with(cc, sc, &rc_c, &rc_s, curve, sizeof(curve));
    assert_true(rc_c < 0 || strcmp(curve, "SECP256R1") == 0);
    wolfSSL_CTX_free(cc);
    wolfSSL_CTX_free(sc);
}

static void test_tls_scan_tls13_refuses_ffdhe(void **state)
{
    struct pki *p = *state;
    WOLFSSL_CTX *cc, *sc;
    int rc_c, rc_s;
    char curve[64];
    int ffdhe[] = {WOLFSSL_FFDHE_2048};
    assert_int_equal(px_tls_ctx_server(p->srv, p->srv_key, NULL, 0, &sc), 0);
    cc = raw_ctx(wolfTLSv1_3_client_method());
    wolfSSL_CTX_set_verify(cc, WOLFSSL_VERIFY_NONE, NULL);
    assert_int_equal(wolfSSL_CTX_set_groups(cc, ffdhe, 1), WOLFSSL_SUCCESS);
    handshake_with(cc, sc, &rc_c, &rc_s, curve, sizeof(curve));
    assert_true(rc_s < 0 && rc_s != PX_ERR_WANT_IO);
    wolfSSL_CTX_free(cc);
    wolfSSL_CTX_free(sc);
}

/* The connector's side of the same rule: against a server that only does
 * finite-field DH, our client has nothing to agree on. */
static void test_tls_scan_client_offers_no_ffdhe(void **state)
{
    struct pki *p = *state;
    WOLFSSL_CTX *cc, *sc;
    int rc_c, rc_s;
    char curve[64];
    int ffdhe[] = {WOLFSSL_FFDHE_2048};
    sc = raw_ctx(wolfTLSv1_3_server_method());
    assert_int_equal(wolfSSL_CTX_use_certificate_chain_buffer(sc, (const unsigned char *)p->srv,
                                                              (long)strlen(p->srv)),
                     WOLFSSL_SUCCESS);
    assert_int_equal(wolfSSL_CTX_use_PrivateKey_buffer(sc, (const unsigned char *)p->srv_key,
                                                       (long)strlen(p->srv_key),
                                                       WOLFSSL_FILETYPE_PEM),
                     WOLFSSL_SUCCESS);
    assert_int_equal(wolfSSL_CTX_set_groups(sc, ffdhe, 1), WOLFSSL_SUCCESS);
    assert_int_equal(px_tls_ctx_client(p->ca, NULL, NULL, &cc), 0);
    handshake_with(cc, sc, &rc_c, &rc_s, curve, sizeof(curve));
    assert_true(rc_c < 0 && rc_c != PX_ERR_WANT_IO);
    wolfSSL_CTX_free(cc);
    wolfSSL_CTX_free(sc);
}

/* Issue 13, cipher order: the suite a handshake of server ctx sc with a
 * client offering cli_list (NULL: our own client context) ends in. */
static void negotiated_suite(struct pki *p, const char *cli_list, char *name, size_t len)
{
    WOLFSSL_CTX *cc, *sc;
    int rc_c, rc_s;
    struct px_tls c, s;
    assert_int_equal(px_tls_ctx_server(p->srv, p->srv_key, NULL, 0, &sc), 0);
    assert_int_equal(px_tls_ctx_client(p->ca, NULL, NULL, &cc), 0);
    if (cli_list)
        assert_int_equal(wolfSSL_CTX_set_cipher_list(cc, cli_list), WOLFSSL_SUCCESS);
    assert_int_equal(px_tls_init(&s, sc, 1, NULL, "h2"), 0);
    assert_int_equal(px_tls_init(&c, cc, 0, "tunnel.test", "h2"), 0);
    pump(&c, &s, &rc_c, &rc_s);
    assert_int_equal(rc_c, 0);
    assert_int_equal(rc_s, 0);
    snprintf(name, len, "%s", wolfSSL_get_cipher_name(s.ssl));
    done_pair(&c, &s, cc, sc);
}

/* With AES in hardware our pair agrees on AES-128-GCM, else on ChaCha20. */
static void test_cipher_order_follows_aes_hardware(void **state)
{
    char name[64];
    negotiated_suite(*state, NULL, name, sizeof(name));
    assert_string_equal(name, px_tls_aes_fast() ? "TLS13-AES128-GCM-SHA256"
                                                : "TLS13-CHACHA20-POLY1305-SHA256");
}

/* A client that lists ChaCha20 first gets it either way. */
static void test_cipher_order_client_preferring_chacha_keeps_it(void **state)
{
    char name[64];
    negotiated_suite(*state, "TLS13-CHACHA20-POLY1305-SHA256:TLS13-AES128-GCM-SHA256", name,
                     sizeof(name));
    assert_string_equal(name, "TLS13-CHACHA20-POLY1305-SHA256");
}

/* A client listing AES first gets the AES suite it put first with AES in
 * hardware (the client's order), ChaCha20 without (the server's). */
static void test_cipher_order_client_preferring_aes(void **state)
{
    char name[64];
    negotiated_suite(*state,
                     "TLS13-AES256-GCM-SHA384:TLS13-AES128-GCM-SHA256:"
                     "TLS13-CHACHA20-POLY1305-SHA256",
                     name, sizeof(name));
    assert_string_equal(name, px_tls_aes_fast() ? "TLS13-AES256-GCM-SHA384"
                                                : "TLS13-CHACHA20-POLY1305-SHA256");
}

/* Bytes the process has allocated now (the sanitizer's count under ASan,
 * whose allocator mallinfo2 does not see). */
static size_t heap_in_use(void)
{
#if defined(__SANITIZE_ADDRESS__)
    return __sanitizer_get_current_allocated_bytes();
#else
    return mallinfo2().uordblks;
#endif
}

/* Memory (issue 13): Debian's wolfSSL (FP_ECC) kept a cache entry of 256
 * precomputed points, 823 KB, for every point a thread multiplied, handshake
 * after handshake: 6.4 MB of an idle edge. A finished handshake, a failed
 * one, and px_tls_free_caches after a key generation leave none behind.
 * (With WOLFSSL=source, SP code does P-256 without that cache: this holds
 * trivially.) The bound is generous: one entry is 823 KB. */
static void test_memory_handshake_leaves_no_ecc_cache(void **state)
{
    (void)state;
    /* Keys no handshake of this process has seen: their points are new to
     * the cache, as a new peer's are. */
    void *fresh = NULL;
    assert_int_equal(setup(&fresh), 0);
    struct pki *p = fresh;
    struct px_tls c, s;
    WOLFSSL_CTX *cc, *sc;
    int rc_c, rc_s;
    px_tls_free_caches();
    size_t before = heap_in_use();
    run_pair(p, p->cli, p->cli_key, "tunnel.test", &rc_c, &rc_s, &c, &s, &cc, &sc);
    assert_int_equal(rc_c, 0);
    assert_int_equal(rc_s, 0);
    done_pair(&c, &s, cc, sc);
    size_t after = heap_in_use();
    assert_true(after < before + 256 * 1024);
    /* A refused client certificate ends the handshake too. */
    run_pair(p, p->other_cli, p->other_cli_key, "tunnel.test", &rc_c, &rc_s, &c, &s, &cc, &sc);
    assert_int_not_equal(rc_s, 0);
    done_pair(&c, &s, cc, sc);
    after = heap_in_use();
    assert_true(after < before + 256 * 1024);
    teardown(&fresh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mtls_handshake_and_data),
        cmocka_unit_test(test_memory_handshake_leaves_no_ecc_cache),
        cmocka_unit_test(test_client_without_cert_refused),
        cmocka_unit_test(test_client_cert_other_ca_refused),
        cmocka_unit_test(test_server_name_mismatch_refused),
        cmocka_unit_test(test_server_untrusted_ca_refused),
        cmocka_unit_test(test_failure_server_rejects_client_cert),
        cmocka_unit_test(test_failure_client_without_cert),
        cmocka_unit_test(test_failure_client_rejects_server_cert),
        cmocka_unit_test(test_failure_none),
        cmocka_unit_test(test_failure_client_chain_longer_than_max_depth),
        cmocka_unit_test(test_tls_scan_tls12_ecdhe_only_on_allowed_curves),
        cmocka_unit_test(test_tls_scan_tls13_refuses_ffdhe),
        cmocka_unit_test(test_tls_scan_client_offers_no_ffdhe),
        cmocka_unit_test(test_cipher_order_follows_aes_hardware),
        cmocka_unit_test(test_cipher_order_client_preferring_chacha_keeps_it),
        cmocka_unit_test(test_cipher_order_client_preferring_aes),
    };
    return cmocka_run_group_tests_name("px_tls", tests, setup, teardown);
}
