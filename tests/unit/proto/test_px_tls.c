/* TLS client and server wired back to back in memory, with certificates made by px_pki. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "px_err.h"
#include "px_pki.h"
#include "px_tls.h"

#include <stdlib.h>
#include <string.h>

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
    assert_int_equal(
        px_pki_issue(ca, ca_key, pub, cn, name ? names : NULL, name ? 1 : 0, u, 30, &cert), 0);
    free(pub);
    return cert;
}

static int setup(void **state)
{
    struct pki *p = calloc(1, sizeof(*p));
    assert_int_equal(px_tls_global_init(), 0);
    assert_int_equal(px_pki_keygen(&p->ca_key), 0);
    assert_int_equal(px_pki_make_ca(p->ca_key, "test CA", 30, &p->ca), 0);
    assert_int_equal(px_pki_keygen(&p->srv_key), 0);
    p->srv = issue(p->ca, p->ca_key, p->srv_key, "server", "tunnel.test", PX_PKI_SERVER);
    assert_int_equal(px_pki_keygen(&p->cli_key), 0);
    p->cli = issue(p->ca, p->ca_key, p->cli_key, "client", NULL, PX_PKI_CLIENT);
    assert_int_equal(px_pki_keygen(&p->other_ca_key), 0);
    assert_int_equal(px_pki_make_ca(p->other_ca_key, "other CA", 30, &p->other_ca), 0);
    assert_int_equal(px_pki_keygen(&p->other_cli_key), 0);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mtls_handshake_and_data),
        cmocka_unit_test(test_client_without_cert_refused),
        cmocka_unit_test(test_client_cert_other_ca_refused),
        cmocka_unit_test(test_server_name_mismatch_refused),
        cmocka_unit_test(test_server_untrusted_ca_refused),
    };
    return cmocka_run_group_tests_name("px_tls", tests, setup, teardown);
}
