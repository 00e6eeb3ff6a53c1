/* es_certs: the edge's CAs in a throwaway data dir, and the certificates it
 * issues to connectors (short-lived, tunnel and origin pull) and to origins. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "es_certs.h"
#include "px_cert.h"
#include "px_err.h"
#include "px_pki.h"
#include "px_tls.h"
#include "test_rng.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ID "0123456789abcdef0123456789abcdef"

/* Not P-256: the edge certifies P-256 keys only. */
#define P384_PUB                                                                                   \
    "-----BEGIN PUBLIC KEY-----\n"                                                                 \
    "MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAE4k5dRy2YEdFkPEp0qpmrimp5P/mxaYtb\n"                           \
    "evxqn1O4VNPD3ZT3VXIm4EsfTMzZmlVhofLtdBPOxiqb98LIba8hkPFIT27GijRO\n"                           \
    "w1um8kDxw0aRgEJncQBJc2wW5f1Gti9D\n"                                                           \
    "-----END PUBLIC KEY-----\n"
#define ED25519_PUB                                                                                \
    "-----BEGIN PUBLIC KEY-----\n"                                                                 \
    "MCowBQYDK2VwAyEAmqb/XYlrq2ppnetBjXHTt/uKNm4pISwf5oGDTtpxexU=\n"                               \
    "-----END PUBLIC KEY-----\n"

struct fx {
    char dir[64];
    struct es_certs c;
    char *key, *pub; /* a connector's P-256 key */
};

static void rm_dir(const char *dir)
{
    const char *names[] = {"server-ca",      "client-ca",  "access-ca",     "origin-ca",
                           "origin-pull-ca", "browser-ca", "tunnel-server", "browser-leaf"};
    char p[128];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s.key", dir, names[i]);
        unlink(p);
        snprintf(p, sizeof(p), "%s/%s.pem", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/es-certs-XXXXXX");
    if (!f || !mkdtemp(f->dir))
        return -1;
    char why[512] = "";
    if (es_certs_init(&f->c, test_rng(), f->dir, "tunnel.test", why, sizeof(why)) != 0) {
        fprintf(stderr, "init: %s\n", why);
        return -1;
    }
    if (px_pki_keygen(test_rng(), &f->key) < 0 || px_pki_pubkey(f->key, &f->pub) < 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    es_certs_cleanup(&f->c);
    rm_dir(f->dir);
    free(f->key);
    free(f->pub);
    free(f);
    return 0;
}

/* The first certificate of pem, parsed; its DER stays in *der (free). */
static void info(const char *pem, struct px_cert_info *ci, struct px_der **der, size_t *nd)
{
    assert_int_equal(px_cert_pem_split(pem, strlen(pem), der, nd), 0);
    assert_int_equal(px_cert_info((*der)[0].der, (*der)[0].len, ci), 0);
}

static const char *subject_of(const char *pem, char *out, size_t outlen)
{
    struct px_cert_info ci;
    struct px_der *der;
    size_t nd;
    info(pem, &ci, &der, &nd);
    snprintf(out, outlen, "%s", ci.subject);
    px_cert_info_cleanup(&ci);
    px_der_free(der, nd);
    return out;
}

/* 1 if der holds a GeneralName with this tag and value (a SAN entry). */
static int has_name(const struct px_der *der, unsigned char tag, const void *val, size_t len)
{
    for (size_t i = 0; i + 2 + len <= der->len; i++)
        if (der->der[i] == tag && der->der[i + 1] == len && memcmp(der->der + i + 2, val, len) == 0)
            return 1;
    return 0;
}

static void test_new_cas_created_private(void **state)
{
    struct fx *f = *state;
    const char *names[] = {"origin-ca", "origin-pull-ca"};
    for (size_t i = 0; i < 2; i++) {
        char p[128];
        struct stat st;
        snprintf(p, sizeof(p), "%s/%s.key", f->dir, names[i]);
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        snprintf(p, sizeof(p), "%s/%s.pem", f->dir, names[i]);
        assert_int_equal(stat(p, &st), 0);
    }
    char a[256], b[256];
    assert_string_equal(subject_of(f->c.origin_ca_pem, a, sizeof(a)),
                        "CN=edge-sim origin CA,O=tunnel edge-sim");
    assert_string_equal(subject_of(f->c.origin_pull_ca_pem, b, sizeof(b)),
                        "CN=edge-sim origin-pull CA,O=tunnel edge-sim");
    /* Loaded again, not made again, on the next start. */
    char *ca = strdup(f->c.origin_ca_pem), *pull = strdup(f->c.origin_pull_ca_pem);
    es_certs_cleanup(&f->c);
    char why[512];
    assert_int_equal(es_certs_init(&f->c, test_rng(), f->dir, "tunnel.test", why, sizeof(why)), 0);
    assert_string_equal(f->c.origin_ca_pem, ca);
    assert_string_equal(f->c.origin_pull_ca_pem, pull);
    free(ca);
    free(pull);
}

static void check_short_lived(const char *pem, const char *ca_pem, long long lifetime,
                              long long before, long long after)
{
    struct px_cert_info ci;
    struct px_der *der;
    size_t nd;
    info(pem, &ci, &der, &nd);
    assert_string_equal(ci.common_name, ID);
    /* 60 s of skew before now, the lifetime after. */
    assert_int_equal(ci.not_after - ci.not_before, lifetime + 60);
    assert_true(ci.not_before >= before - 60 && ci.not_before <= after - 60);
    assert_false(ci.is_ca);
    char issuer[256];
    assert_string_equal(ci.issuer, subject_of(ca_pem, issuer, sizeof(issuer)));
    px_cert_info_cleanup(&ci);
    px_der_free(der, nd);
}

static const struct es_cert_line LINE1 = {.enrolled_at = 1, .rotation = 0};

static void test_client_cert_lifetime(void **state)
{
    struct fx *f = *state;
    long long before = (long long)time(NULL);
    char *pem = NULL;
    const struct es_cert_line line = {.enrolled_at = 1700000000, .rotation = 3};
    assert_int_equal(es_certs_issue_client(&f->c, ID, f->pub, 20, &line, &pem), 0);
    check_short_lived(pem, f->c.client_ca_pem, 20, before, (long long)time(NULL));
    /* The line (enrolment time, token generation) rides in the subject,
     * for renewals. */
    struct px_der *d = NULL;
    size_t nd = 0;
    struct px_cert_info ci;
    assert_int_equal(px_cert_pem_split(pem, strlen(pem), &d, &nd), 0);
    assert_int_equal(px_cert_info(d[0].der, d[0].len, &ci), 0);
    assert_non_null(strstr(ci.subject, "OU=enrolled 1700000000 rotation 3"));
    struct es_cert_line got;
    es_certs_line(ci.subject, &got);
    assert_int_equal(got.enrolled_at, 1700000000);
    assert_int_equal(got.rotation, 3);
    px_cert_info_cleanup(&ci);
    px_der_free(d, nd);
    free(pem);
    pem = NULL;
    assert_int_equal(
        es_certs_issue_client(&f->c, ID, f->pub, ES_CERT_LIFETIME_DEFAULT, &LINE1, &pem), 0);
    check_short_lived(pem, f->c.client_ca_pem, 7 * 86400, before, (long long)time(NULL));
    free(pem);
    pem = NULL;
    assert_int_equal(es_certs_issue_client(&f->c, ID, f->pub, ES_CERT_LIFETIME_MAX, &LINE1, &pem),
                     0);
    free(pem);
    pem = NULL;
    /* Out of range: nothing issued. */
    assert_int_equal(es_certs_issue_client(&f->c, ID, f->pub, 9, &LINE1, &pem), PX_ERR_INVAL);
    assert_int_equal(es_certs_issue_client(&f->c, ID, f->pub, 0, &LINE1, &pem), PX_ERR_INVAL);
    assert_int_equal(es_certs_issue_client(&f->c, ID, f->pub, -100, &LINE1, &pem), PX_ERR_INVAL);
    assert_int_equal(
        es_certs_issue_client(&f->c, ID, f->pub, ES_CERT_LIFETIME_MAX + 1, &LINE1, &pem),
        PX_ERR_INVAL);
    const struct es_cert_line unknown = {.enrolled_at = 1, .rotation = -1};
    assert_int_equal(es_certs_issue_client(&f->c, ID, f->pub, 3600, &unknown, &pem), PX_ERR_INVAL);
    assert_null(pem);
}

/* Defect 9.6: the line in a subject, as px_cert_info writes it. Certificates
 * from before generations (no " rotation N") and from before the OU parse
 * as such, so the edge can still judge them (es_store_legacy_rotation). */
static void test_cert_line_parse(void **state)
{
    (void)state;
    static const struct {
        const char *subject;
        long long enrolled_at, rotation;
    } cases[] = {
        {"CN=" ID ",OU=enrolled 1700000000 rotation 0,O=tunnel edge-sim", 1700000000, 0},
        {"CN=" ID ",OU=enrolled 1700000000 rotation 12", 1700000000, 12},
        {"OU=enrolled 5 rotation 7+CN=x", 5, 7},
        /* Before generations: the time only. */
        {"CN=" ID ",OU=enrolled 1700000000,O=tunnel edge-sim", 1700000000, -1},
        {"OU=enrolled 1700000000", 1700000000, -1},
        /* Not what this edge writes: no generation. */
        {"OU=enrolled 1700000000 rotation ", 1700000000, -1},
        {"OU=enrolled 1700000000 rotation x", 1700000000, -1},
        {"OU=enrolled 1700000000 rotation -1", 1700000000, -1},
        {"OU=enrolled 1700000000 rotation 3x", 1700000000, -1},
        {"OU=enrolled 1700000000 rotation 1234567890123456789012", 1700000000, -1},
        {"OU=enrolled 1700000000rotation 3", 1700000000, -1},
        /* No line at all. */
        {"CN=x,O=tunnel edge-sim", 0, -1},
        {"OU=enrolled x", 0, -1},
        {"OU=enrolled 0 rotation 1", 0, -1},
        {"OU=enrolled ", 0, -1},
        {"OU=enrolled 99999999999999999999 rotation 1", 0, -1},
        {NULL, 0, -1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct es_cert_line got = {.enrolled_at = 42, .rotation = 42};
        es_certs_line(cases[i].subject, &got);
        if (got.enrolled_at != cases[i].enrolled_at || got.rotation != cases[i].rotation)
            print_error("case %zu (%s): %lld %lld\n", i,
                        cases[i].subject ? cases[i].subject : "NULL", got.enrolled_at,
                        got.rotation);
        assert_int_equal(got.enrolled_at, cases[i].enrolled_at);
        assert_int_equal(got.rotation, cases[i].rotation);
    }
}

/* The client certificate is what the tunnel port's TLS accepts (client-ca);
 * an origin-pull certificate is not. */
static void test_client_cert_verifies_under_client_ca_only(void **state)
{
    struct fx *f = *state;
    char *tun = NULL, *pull = NULL;
    assert_int_equal(es_certs_issue_client(&f->c, ID, f->pub, 3600, &LINE1, &tun), 0);
    assert_int_equal(es_certs_issue_origin_pull(&f->c, ID, f->pub, 3600, &pull), 0);
    struct px_der *d1, *d2;
    size_t n1, n2;
    struct px_cert_info c1, c2;
    info(tun, &c1, &d1, &n1);
    info(pull, &c2, &d2, &n2);
    char client_ca[256], pull_ca[256];
    assert_string_equal(c1.issuer, subject_of(f->c.client_ca_pem, client_ca, sizeof(client_ca)));
    assert_string_equal(c2.issuer, subject_of(f->c.origin_pull_ca_pem, pull_ca, sizeof(pull_ca)));
    assert_string_not_equal(c1.issuer, c2.issuer);
    px_cert_info_cleanup(&c1);
    px_cert_info_cleanup(&c2);
    px_der_free(d1, n1);
    px_der_free(d2, n2);
    free(tun);
    free(pull);
}

static void test_origin_pull_names_the_tunnel(void **state)
{
    struct fx *f = *state;
    long long before = (long long)time(NULL);
    char *pem = NULL;
    assert_int_equal(es_certs_issue_origin_pull(&f->c, ID, f->pub, 120, &pem), 0);
    check_short_lived(pem, f->c.origin_pull_ca_pem, 120, before, (long long)time(NULL));
    struct px_cert_info ci;
    struct px_der *der;
    size_t nd;
    info(pem, &ci, &der, &nd);
    const char uri[] = "tunnel:" ID;
    assert_true(has_name(&der[0], 0x86, uri, sizeof(uri) - 1)); /* uniformResourceIdentifier */
    /* clientAuth (1.3.6.1.5.5.7.3.2), not serverAuth (.1). */
    const unsigned char client_auth[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02};
    const unsigned char server_auth[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01};
    assert_true(has_name(&der[0], 0x06, client_auth, sizeof(client_auth)));
    assert_false(has_name(&der[0], 0x06, server_auth, sizeof(server_auth)));
    px_cert_info_cleanup(&ci);
    px_der_free(der, nd);
    free(pem);
    /* A tunnel id that would not fit the URI is refused, not cut. */
    char long_id[80];
    memset(long_id, 'a', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    pem = NULL;
    assert_int_equal(es_certs_issue_origin_pull(&f->c, long_id, f->pub, 120, &pem), PX_ERR_INVAL);
    assert_null(pem);
}

static void test_origin_server_cert(void **state)
{
    struct fx *f = *state;
    const char *names[] = {"ha.local", "*.home.lan", "127.0.0.1", "::1"};
    long long before = (long long)time(NULL);
    char *pem = NULL;
    assert_int_equal(es_certs_issue_origin(&f->c, names, 4, f->pub, ES_ORIGIN_CERT_DAYS, &pem), 0);
    struct px_cert_info ci;
    struct px_der *der;
    size_t nd;
    info(pem, &ci, &der, &nd);
    assert_string_equal(ci.common_name, "ha.local");
    char issuer[256];
    assert_string_equal(ci.issuer, subject_of(f->c.origin_ca_pem, issuer, sizeof(issuer)));
    /* 5479 days, 15 years. */
    assert_true(ci.not_after - before >= 5479LL * 86400 - 5);
    assert_true(ci.not_after - before <= 5479LL * 86400 + 5);
    assert_true(has_name(&der[0], 0x82, "ha.local", 8));
    assert_true(has_name(&der[0], 0x82, "*.home.lan", 10));
    const unsigned char v4[] = {127, 0, 0, 1}, v6[16] = {[15] = 1};
    assert_true(has_name(&der[0], 0x87, v4, 4));
    assert_true(has_name(&der[0], 0x87, v6, 16));
    const unsigned char server_auth[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01};
    assert_true(has_name(&der[0], 0x06, server_auth, sizeof(server_auth)));
    px_cert_info_cleanup(&ci);
    px_der_free(der, nd);
    free(pem);

    pem = NULL;
    assert_int_equal(es_certs_issue_origin(&f->c, names, 0, f->pub, 10, &pem), PX_ERR_INVAL);
    assert_int_equal(es_certs_issue_origin(&f->c, names, 1, f->pub, 0, &pem), PX_ERR_INVAL);
    assert_int_equal(
        es_certs_issue_origin(&f->c, names, 1, f->pub, ES_ORIGIN_CERT_MAX_DAYS + 1, &pem),
        PX_ERR_INVAL);
    assert_null(pem);
}

static void test_keys_must_be_p256(void **state)
{
    struct fx *f = *state;
    assert_int_equal(es_certs_check_p256(f->pub), 0);
    const char *bad[] = {
        P384_PUB,
        ED25519_PUB,
        "",
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        "-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n",
        "-----BEGIN PUBLIC KEY-----\n",
        f->key, /* a private key is not a public key PEM */
        f->c.client_ca_pem,
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (es_certs_check_p256(bad[i]) != PX_ERR_INVAL)
            print_error("case %zu accepted\n", i);
        assert_int_equal(es_certs_check_p256(bad[i]), PX_ERR_INVAL);
        char *pem = NULL;
        assert_int_equal(es_certs_issue_client(&f->c, ID, bad[i], 3600, &LINE1, &pem),
                         PX_ERR_INVAL);
        assert_int_equal(es_certs_issue_origin_pull(&f->c, ID, bad[i], 3600, &pem), PX_ERR_INVAL);
        const char *names[] = {"a.test"};
        assert_int_equal(es_certs_issue_origin(&f->c, names, 1, bad[i], 10, &pem), PX_ERR_INVAL);
        /* px_pki itself refuses what does not decode, leaking nothing (LSan). */
        if (i >= 2 && i <= 5)
            assert_int_equal(px_pki_issue(test_rng(), f->c.client_ca_pem, f->c.client_ca_key,
                                          bad[i], "x", NULL, 0, PX_PKI_CLIENT, 1, &pem),
                             PX_ERR_INVAL);
        assert_null(pem);
    }
    assert_int_equal(es_certs_check_p256(NULL), PX_ERR_INVAL);
    /* A P-256 key with a point off the curve. */
    char *tampered = strdup(f->pub);
    char *p = strstr(tampered, "\n") + 1 + 40;
    *p = *p == 'A' ? 'B' : 'A';
    assert_int_equal(es_certs_check_p256(tampered), PX_ERR_INVAL);
    free(tampered);
}

/* Browser certificates are minted once per SNI name, newest first in the
 * cache, and freed with it (LSan). */
static void test_sni_cache(void **state)
{
    struct fx *f = *state;
    const char *a = es_certs_for_host(&f->c, "a.test");
    const char *b = es_certs_for_host(&f->c, "b.test");
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    assert_ptr_equal(es_certs_for_host(&f->c, "a.test"), a); /* cached, not minted again */
    assert_int_equal(f->c.sni_count, 2);
    struct px_der *der = NULL;
    size_t n = 0;
    struct px_cert_info ci;
    assert_int_equal(px_cert_pem_split(b, strlen(b), &der, &n), 0);
    assert_int_equal(px_cert_info(der[0].der, der[0].len, &ci), 0);
    assert_string_equal(ci.common_name, "b.test");
    px_cert_info_cleanup(&ci);
    px_der_free(der, n);
    const struct es_sni_cert *first =
        px_container_of(px_list_first(&f->c.sni_cache), struct es_sni_cert, link);
    assert_string_equal(first->host, "b.test");
    /* A name longer than the cache holds is not minted. */
    char longname[300];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_null(es_certs_for_host(&f->c, longname));
    assert_int_equal(f->c.sni_count, 2);
}

/* 0 if cert_pem verifies under CA ca_pem, else wolfSSL's error. */
static int verify_under(const char *ca_pem, const char *cert_pem)
{
    WOLFSSL_CERT_MANAGER *cm = wolfSSL_CertManagerNew();
    assert_non_null(cm);
    int r = wolfSSL_CertManagerLoadCABuffer(cm, (const unsigned char *)ca_pem, (long)strlen(ca_pem),
                                            WOLFSSL_FILETYPE_PEM);
    if (r == WOLFSSL_SUCCESS)
        r = wolfSSL_CertManagerVerifyBuffer(cm, (const unsigned char *)cert_pem,
                                            (long)strlen(cert_pem), WOLFSSL_FILETYPE_PEM);
    wolfSSL_CertManagerFree(cm);
    return r == WOLFSSL_SUCCESS ? 0 : r;
}

/* The subject CN and serial of a certificate PEM; 0 or -1. */
static int cn_serial(const char *pem, char *cn, size_t cn_len, char *serial, size_t serial_len)
{
    struct px_der *der = NULL;
    size_t n = 0;
    struct px_cert_info ci;
    if (px_cert_pem_split(pem, strlen(pem), &der, &n) < 0)
        return -1;
    int rc = px_cert_info(der[0].der, der[0].len, &ci);
    if (rc == 0) {
        snprintf(cn, cn_len, "%s", ci.common_name);
        snprintf(serial, serial_len, "%s", ci.serial);
        px_cert_info_cleanup(&ci);
    }
    px_der_free(der, n);
    return rc;
}

/* A worker loop's view mints and caches browser certificates on its own,
 * from its own RNG, with home's browser CA and leaf key: a name home has
 * cached is minted again in the view (not home's PEM), home's cache does
 * not move, and both verify under browser-ca. The view's cache is freed by
 * its cleanup (LSan) and home's strings are left to home (ASan: no double
 * free at teardown). */
static void test_view_issues_on_its_own(void **state)
{
    struct fx *f = *state;
    WC_RNG rng;
    assert_int_equal(wc_InitRng(&rng), 0);
    const char *home_a = es_certs_for_host(&f->c, "a.test");
    assert_non_null(home_a);
    assert_int_equal(f->c.sni_count, 1);

    struct es_certs v;
    assert_int_equal(es_certs_view_init(&v, &f->c, &rng), 0);
    assert_ptr_equal(v.rng, &rng);
    assert_ptr_equal(v.browser_ca_pem, f->c.browser_ca_pem); /* borrowed, not copied */
    assert_ptr_equal(v.browser_ca_key, f->c.browser_ca_key);
    assert_ptr_equal(v.browser_pub_pem, f->c.browser_pub_pem);
    assert_int_equal(v.sni_count, 0);
    const char *view_a = es_certs_for_host(&v, "a.test");
    const char *view_b = es_certs_for_host(&v, "b.test");
    assert_non_null(view_a);
    assert_non_null(view_b);
    assert_ptr_not_equal(view_a, home_a);
    assert_ptr_equal(es_certs_for_host(&v, "a.test"), view_a); /* the view's cache */
    assert_int_equal(v.sni_count, 2);
    assert_int_equal(f->c.sni_count, 1); /* home's cache untouched */
    assert_ptr_equal(es_certs_for_host(&f->c, "a.test"), home_a);

    char cn_h[256], cn_v[256], serial_h[80], serial_v[80];
    assert_int_equal(cn_serial(home_a, cn_h, sizeof(cn_h), serial_h, sizeof(serial_h)), 0);
    assert_int_equal(cn_serial(view_a, cn_v, sizeof(cn_v), serial_v, sizeof(serial_v)), 0);
    assert_string_equal(cn_h, "a.test");
    assert_string_equal(cn_v, "a.test");
    assert_string_not_equal(serial_h, serial_v); /* minted anew, from the view's rng */
    /* Both verify under browser-ca. */
    assert_int_equal(verify_under(f->c.browser_ca_pem, view_b), 0);
    assert_int_equal(verify_under(f->c.browser_ca_pem, home_a), 0);
    assert_int_not_equal(verify_under(f->c.client_ca_pem, view_b), 0);

    /* A view of a view, or of nothing, is refused. */
    struct es_certs vv, none;
    memset(&none, 0, sizeof(none));
    assert_int_equal(es_certs_view_init(&vv, &v, &rng), PX_ERR_INVAL);
    assert_int_equal(es_certs_view_init(&vv, &none, &rng), PX_ERR_INVAL);
    assert_int_equal(es_certs_view_init(&vv, &f->c, NULL), PX_ERR_INVAL);

    es_certs_view_cleanup(&v);
    assert_int_equal(v.sni_count, 0);
    /* es_certs_cleanup on a view frees only its cache, too. */
    struct es_certs v2;
    assert_int_equal(es_certs_view_init(&v2, &f->c, &rng), 0);
    assert_non_null(es_certs_for_host(&v2, "c.test"));
    es_certs_cleanup(&v2);
    assert_non_null(f->c.browser_ca_pem);
    assert_ptr_equal(es_certs_for_host(&f->c, "a.test"), home_a);
    wc_FreeRng(&rng);
}

#define THREAD_NAMES 16

struct minter {
    struct es_certs *c;
    const char *prefix;
    int minted; /* certificates whose CN is the name asked for */
};

static void *mint(void *arg)
{
    struct minter *m = arg;
    for (int i = 0; i < THREAD_NAMES; i++) {
        char host[64], cn[256], serial[80];
        snprintf(host, sizeof(host), "%s%d.test", m->prefix, i);
        const char *pem = es_certs_for_host(m->c, host);
        if (pem && cn_serial(pem, cn, sizeof(cn), serial, sizeof(serial)) == 0 &&
            strcmp(cn, host) == 0)
            m->minted++;
    }
    return NULL;
}

/* Home on this thread and a view on another mint at the same time, each
 * with its own rng and cache (the worker-loop case; a TSan build of this
 * test is what shows they share nothing that is written). */
static void test_view_mints_alongside_home(void **state)
{
    struct fx *f = *state;
    WC_RNG rng;
    assert_int_equal(wc_InitRng(&rng), 0);
    struct es_certs v;
    assert_int_equal(es_certs_view_init(&v, &f->c, &rng), 0);
    struct minter home = {&f->c, "h", 0}, worker = {&v, "w", 0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, mint, &worker), 0);
    mint(&home);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(home.minted, THREAD_NAMES);
    assert_int_equal(worker.minted, THREAD_NAMES);
    assert_int_equal(f->c.sni_count, THREAD_NAMES);
    assert_int_equal(v.sni_count, THREAD_NAMES);
    es_certs_view_cleanup(&v);
    wc_FreeRng(&rng);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    px_tls_global_init();
    const struct CMUnitTest tests[] = {
        T(test_new_cas_created_private),
        T(test_client_cert_lifetime),
        cmocka_unit_test(test_cert_line_parse),
        T(test_client_cert_verifies_under_client_ca_only),
        T(test_origin_pull_names_the_tunnel),
        T(test_origin_server_cert),
        T(test_keys_must_be_p256),
        T(test_sni_cache),
        T(test_view_issues_on_its_own),
        T(test_view_mints_alongside_home),
    };
    return cmocka_run_group_tests_name("es_certs", tests, NULL, NULL);
}
