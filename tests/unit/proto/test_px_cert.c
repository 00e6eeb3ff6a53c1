/* px_cert: certificate details against openssl's view of the same
 * certificates (px_cert_fixtures.h), hostile names and hostile bytes,
 * PEM splitting, the RFC 9440 form, times, and certificate requests
 * (signature checked, key handed to px_pki_issue). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "px_cert.h"
#include "px_err.h"
#include "px_pki.h"

#include "px_cert_fixtures.h"
#include "test_rng.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N_FIXTURES (sizeof(cert_fixtures) / sizeof(cert_fixtures[0]))

static void assert_printable(const char *s)
{
    assert_non_null(s);
    for (const char *p = s; *p; p++)
        if (*p < 0x20 || *p > 0x7e)
            fail_msg("byte 0x%02x at %zu in \"%s\"", (unsigned char)*p, (size_t)(p - s), s);
}

/* The one certificate in pem, as DER (caller frees). */
static uint8_t *fixture_der(const char *pem, size_t *len)
{
    struct px_der *d;
    size_t n;
    assert_int_equal(px_cert_pem_split(pem, strlen(pem), &d, &n), 0);
    assert_int_equal(n, 1);
    uint8_t *der = d[0].der;
    *len = d[0].len;
    free(d);
    return der;
}

static void test_info_matches_openssl(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_FIXTURES; i++) {
        const struct cert_fixture *f = &cert_fixtures[i];
        size_t len;
        uint8_t *der = fixture_der(f->pem, &len);
        struct px_cert_info ci;
        print_message("%s\n", f->name);
        assert_int_equal(px_cert_info(der, len, &ci), 0);
        assert_string_equal(ci.subject, f->subject);
        assert_string_equal(ci.issuer, f->issuer);
        assert_string_equal(ci.common_name, f->cn);
        assert_string_equal(ci.serial, f->serial);
        assert_string_equal(ci.sha256_hex, f->sha256);
        assert_int_equal(ci.not_before, f->not_before);
        assert_int_equal(ci.not_after, f->not_after);
        assert_int_equal(ci.is_ca, f->is_ca);
        for (int k = 0; k < 32; k++) {
            char h[3] = {f->sha256[2 * k], f->sha256[2 * k + 1], 0};
            assert_int_equal(ci.sha256[k], strtoul(h, NULL, 16));
        }
        assert_printable(ci.subject);
        assert_printable(ci.issuer);
        assert_printable(ci.common_name);
        assert_printable(ci.serial);
        px_cert_info_cleanup(&ci);
        assert_null(ci.subject);
        free(der);
    }
}

static const struct cert_fixture *fixture(const char *name)
{
    for (size_t i = 0; i < N_FIXTURES; i++)
        if (strcmp(cert_fixtures[i].name, name) == 0)
            return &cert_fixtures[i];
    fail_msg("no fixture %s", name);
    return NULL;
}

/* The hostile names spelt out, so the test says what the escaping is even
 * without openssl's output beside it. */
static void test_hostile_names(void **state)
{
    (void)state;
    const struct cert_fixture *f = fixture("hostile_names");
    size_t len;
    uint8_t *der = fixture_der(f->pem, &len);
    struct px_cert_info ci;
    assert_int_equal(px_cert_info(der, len, &ci), 0);
    const char *want =
        "CN=phone\\, \\\"the\\\" one\\\\," /* RFC 4514 specials, most specific first */
        "UID=u1+CN=multi,"                 /* a multi-valued RDN */
        "1.2.3.4=#0C07756E6B6E6F776E,"     /* unknown type: dotted OID, DER in hex */
        "emailAddress=a@b.example,DC=example,"
        "OU=univ \\C3\\A9,"                 /* UniversalString, as escaped UTF-8 */
        "OU=bmp \\C3\\BC\\E2\\82\\AC,"      /* BMPString */
        "ST=nul\\00byte\\01ctl\\1Bdel\\7F," /* NUL, control characters, DEL */
        "L=line1\\0D\\0Aline2,"             /* CR LF: no header injection */
        "OU=\\ spaced\\ ,OU=\\#hash,"       /* leading/trailing space, leading # */
        "OU=\\, \\+ \\\" \\\\ \\< \\> \\; = x,"
        "O=\\C3\\9Cn\\C3\\AFc\\C3\\B6d\\C3\\A9 \\E6\\97\\A5\\E6\\9C\\AC," /* UTF-8 */
        "C=DE";
    assert_string_equal(ci.subject, want);
    assert_string_equal(ci.issuer, "CN=root\\0D\\0AInjected: header,O=Caf\\C3\\A9 \\CE\\A9 CA");
    /* The CN alone: only bytes outside 0x20-0x7e and '\' are escaped. */
    assert_string_equal(ci.common_name, "phone, \"the\" one\\5C");
    assert_null(strchr(ci.subject, '\r'));
    assert_null(strchr(ci.subject, '\n'));
    /* 1950-01-01 is UTCTime "500101000000Z"; 2060 is GeneralizedTime. */
    assert_int_equal(ci.not_before, -631152000LL);
    assert_int_equal(ci.not_after, 2845281600LL);                         /* 2060-02-29T12:00:00Z */
    assert_string_equal(ci.serial, "ff00000000000000000000000000000001"); /* DER has 00 ff ... */
    px_cert_info_cleanup(&ci);
    free(der);
}

static void test_truncated_at_every_length(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_FIXTURES; i++) {
        size_t len;
        uint8_t *der = fixture_der(cert_fixtures[i].pem, &len);
        for (size_t n = 0; n < len; n++) {
            /* A copy of exactly n bytes, so ASan sees any read past them. */
            uint8_t *cut = malloc(n ? n : 1);
            assert_non_null(cut);
            memcpy(cut, der, n);
            struct px_cert_info ci;
            memset(&ci, 0xa5, sizeof(ci));
            assert_int_equal(px_cert_info(cut, n, &ci), PX_ERR_INVAL);
            assert_null(ci.subject); /* cleared on failure: cleanup is safe */
            px_cert_info_cleanup(&ci);
            free(cut);
        }
        /* And one byte too many. */
        uint8_t *longer = malloc(len + 1);
        assert_non_null(longer);
        memcpy(longer, der, len);
        longer[len] = 0;
        struct px_cert_info ci;
        assert_int_equal(px_cert_info(longer, len + 1, &ci), PX_ERR_INVAL);
        free(longer);
        free(der);
    }
    struct px_cert_info ci;
    assert_int_equal(px_cert_info(NULL, 10, &ci), PX_ERR_INVAL);
}

static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

static void test_random_bytes(void **state)
{
    (void)state;
    for (int i = 0; i < 2000; i++) {
        size_t n = rnd() % 600;
        uint8_t *b = malloc(n ? n : 1);
        assert_non_null(b);
        for (size_t k = 0; k < n; k++)
            b[k] = (uint8_t)rnd();
        if (i % 2 && n > 4) { /* a plausible outer header, random insides */
            b[0] = 0x30;
            b[1] = 0x82;
            b[2] = (uint8_t)((n - 4) >> 8);
            b[3] = (uint8_t)(n - 4);
        }
        struct px_cert_info ci;
        assert_int_equal(px_cert_info(b, n, &ci), PX_ERR_INVAL);
        free(b);
    }
}

/* Every single-byte change of a real certificate: a clean error, or details
 * that are still printable ASCII. */
static void test_every_byte_changed(void **state)
{
    (void)state;
    const struct cert_fixture *f = fixture("hostile_names");
    size_t len;
    uint8_t *der = fixture_der(f->pem, &len);
    int parsed = 0;
    for (size_t i = 0; i < len; i++) {
        static const uint8_t deltas[] = {0x01, 0x80, 0xff};
        for (size_t d = 0; d < sizeof(deltas); d++) {
            uint8_t *m = malloc(len);
            assert_non_null(m);
            memcpy(m, der, len);
            m[i] ^= deltas[d];
            struct px_cert_info ci;
            int rc = px_cert_info(m, len, &ci);
            if (rc == 0) {
                parsed++;
                assert_printable(ci.subject);
                assert_printable(ci.issuer);
                assert_printable(ci.common_name);
                assert_printable(ci.serial);
                px_cert_info_cleanup(&ci);
            } else {
                assert_int_equal(rc, PX_ERR_INVAL);
            }
            free(m);
        }
    }
    assert_true(parsed > 0); /* the signature and key bytes change freely */
    free(der);
}

/* ---- PEM ---- */

static void test_pem_split_several_and_skips_others(void **state)
{
    (void)state;
    const char *a = fixture("openssl_leaf")->pem, *b = fixture("openssl_ca")->pem;
    size_t la, lb;
    uint8_t *da = fixture_der(a, &la), *db = fixture_der(b, &lb);
    char *text = NULL;
    size_t tn = 0;
    FILE *f = open_memstream(&text, &tn);
    assert_non_null(f);
    fprintf(f, "subject=CN=phone\nsome text before\n%s\n", a);
    fprintf(f, "%s", csr_p256); /* another kind of block: skipped */
    fprintf(f, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
    /* CRLF line ends and a trailing space on a line are fine. */
    for (const char *p = b; *p; p++)
        fputs(*p == '\n' ? " \r\n" : (char[]){*p, 0}, f);
    fclose(f);
    struct px_der *d;
    size_t n;
    assert_int_equal(px_cert_pem_split(text, tn, &d, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(d[0].len, la);
    assert_memory_equal(d[0].der, da, la);
    assert_int_equal(d[1].len, lb);
    assert_memory_equal(d[1].der, db, lb);
    px_der_free(d, n);
    /* The length bounds the text: the second certificate is cut off. */
    const char *second = strstr(text + strlen(a), "-----BEGIN CERTIFICATE-----");
    assert_non_null(second);
    assert_int_equal(px_cert_pem_split(text, (size_t)(second - text) + 40, &d, &n), PX_ERR_INVAL);
    assert_int_equal(px_cert_pem_split(text, (size_t)(second - text), &d, &n), 0);
    assert_int_equal(n, 1);
    px_der_free(d, n);
    free(text);
    free(da);
    free(db);
    px_der_free(NULL, 0);
}

static void expect_pem_invalid(const char *pem)
{
    struct px_der *d = (struct px_der *)"sentinel";
    size_t n = 99;
    assert_int_equal(px_cert_pem_split(pem, strlen(pem), &d, &n), PX_ERR_INVAL);
    assert_int_equal(n, 99);
}

static void test_pem_hostile(void **state)
{
    (void)state;
    expect_pem_invalid("");
    expect_pem_invalid("no certificate here\n");
    expect_pem_invalid(csr_p256);
    expect_pem_invalid("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n");
    expect_pem_invalid("-----BEGIN CERTIFICATE-----\nMIIB\n"); /* never ends */
    expect_pem_invalid("-----BEGIN CERTIFICATE-----\nMII*AAAA\n-----END CERTIFICATE-----\n");
    expect_pem_invalid("-----BEGIN CERTIFICATE-----\nMII_AAAA\n-----END CERTIFICATE-----\n");
    expect_pem_invalid("-----BEGIN CERTIFICATE-----\nMIIBA\n-----END CERTIFICATE-----\n");
    expect_pem_invalid("-----BEGIN CERTIFICATE-----\nMI=BAAAA\n-----END CERTIFICATE-----\n");
    expect_pem_invalid("-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\n\nMIIBAAAA\n"
                       "-----END CERTIFICATE-----\n");
    /* One good block and one bad one: the whole text is refused. */
    char *two = NULL;
    size_t tn = 0;
    FILE *f = open_memstream(&two, &tn);
    fprintf(f, "%s-----BEGIN CERTIFICATE-----\n%%%%\n-----END CERTIFICATE-----\n",
            fixture("openssl_ca")->pem);
    fclose(f);
    expect_pem_invalid(two);
    free(two);
    /* Not NUL-terminated: only len bytes are read. */
    const char *pem = fixture("openssl_ca")->pem;
    size_t n = strlen(pem);
    char *exact = malloc(n);
    memcpy(exact, pem, n);
    struct px_der *d;
    size_t cnt;
    assert_int_equal(px_cert_pem_split(exact, n, &d, &cnt), 0);
    px_der_free(d, cnt);
    for (size_t k = 0; k < n - strlen("-----\n"); k += 7)
        assert_int_equal(px_cert_pem_split(exact, k, &d, &cnt), PX_ERR_INVAL);
    free(exact);
}

static void test_der_to_pem_round_trip(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_FIXTURES; i++) {
        size_t len;
        uint8_t *der = fixture_der(cert_fixtures[i].pem, &len);
        char *pem = px_cert_der_to_pem(der, len);
        assert_non_null(pem);
        /* The same text openssl writes: 64-character lines. */
        assert_string_equal(pem, cert_fixtures[i].pem);
        free(pem);
        free(der);
    }
}

static void test_sf_binary(void **state)
{
    (void)state;
    char *s = px_cert_sf_binary((const uint8_t *)"foo", 3);
    assert_string_equal(s, ":Zm9v:");
    free(s);
    s = px_cert_sf_binary((const uint8_t *)"\xfb\xff", 2);
    assert_string_equal(s, ":+/8=:"); /* standard alphabet, padded */
    free(s);
    s = px_cert_sf_binary((const uint8_t *)"f", 1);
    assert_string_equal(s, ":Zg==:");
    free(s);
    s = px_cert_sf_binary(NULL, 0);
    assert_string_equal(s, "::");
    free(s);
    /* A whole certificate: the PEM body on one line between colons. */
    size_t len;
    uint8_t *der = fixture_der(fixture("openssl_leaf")->pem, &len);
    s = px_cert_sf_binary(der, len);
    assert_non_null(s);
    assert_int_equal(s[0], ':');
    assert_int_equal(s[strlen(s) - 1], ':');
    assert_int_equal(strlen(s), (len + 2) / 3 * 4 + 2);
    assert_printable(s);
    free(s);
    free(der);
}

static void check_time(long long t, const char *want)
{
    char out[21];
    memset(out, 'x', sizeof(out));
    px_cert_time(t, out);
    assert_string_equal(out, want);
}

static void test_time(void **state)
{
    (void)state;
    check_time(0, "1970-01-01T00:00:00Z");
    check_time(2524607999LL, "2049-12-31T23:59:59Z");
    check_time(2524608000LL, "2050-01-01T00:00:00Z");
    check_time(-631152000LL, "1950-01-01T00:00:00Z");
    check_time(951825600LL, "2000-02-29T12:00:00Z");
    check_time(-1, "1969-12-31T23:59:59Z");
    check_time(LLONG_MAX, "9999-12-31T23:59:59Z");
    check_time(LLONG_MIN, "0000-01-01T00:00:00Z");
    check_time(-62167219200LL, "0000-01-01T00:00:00Z");
    /* Agrees with gmtime_r/strftime across the years certificates use. */
    for (int i = 0; i < 5000; i++) {
        long long t = (long long)(rnd() % 7000000000ULL) - 2500000000LL;
        time_t tt = (time_t)t;
        struct tm tm;
        char want[32], got[21];
        assert_non_null(gmtime_r(&tt, &tm));
        assert_int_equal(strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%SZ", &tm), 20);
        px_cert_time(t, got);
        assert_string_equal(got, want);
    }
}

/* ---- certificate requests ---- */

static void check_csr(const char *csr, const char *want_pub, const char *want_cn)
{
    char *pub = NULL, *cn = NULL;
    assert_int_equal(px_cert_csr_read(csr, strlen(csr), &pub, &cn), 0);
    assert_string_equal(pub, want_pub); /* what `openssl req -pubkey` prints */
    assert_string_equal(cn, want_cn);
    free(pub);
    free(cn);
}

static void test_csr_good(void **state)
{
    (void)state;
    check_csr(csr_p256, csr_p256_pub, csr_p256_cn);
    check_csr(csr_p256_sha384, csr_p256_sha384_pub, csr_p256_sha384_cn);
    check_csr(csr_no_cn, csr_no_cn_pub, "");
}

static void expect_csr(const char *csr, size_t len, int want)
{
    char *pub = (char *)"sentinel", *cn = (char *)"sentinel";
    assert_int_equal(px_cert_csr_read(csr, len, &pub, &cn), want);
    assert_string_equal(pub, "sentinel"); /* untouched on failure */
    assert_string_equal(cn, "sentinel");
}

static void test_csr_refused(void **state)
{
    (void)state;
    /* Signed by someone else: the changed subject and the changed signature. */
    expect_csr(csr_tampered_subject, strlen(csr_tampered_subject), PX_ERR_INVAL);
    expect_csr(csr_tampered_sig, strlen(csr_tampered_sig), PX_ERR_INVAL);
    /* Keys px_pki cannot issue for. */
    expect_csr(csr_p384, strlen(csr_p384), PX_ERR_CRYPTO);
    expect_csr(csr_rsa, strlen(csr_rsa), PX_ERR_CRYPTO);
    expect_csr(csr_ed25519, strlen(csr_ed25519), PX_ERR_CRYPTO);
    /* Not a request. */
    const char *cert = fixture("openssl_leaf")->pem;
    expect_csr(cert, strlen(cert), PX_ERR_INVAL);
    expect_csr("", 0, PX_ERR_INVAL);
    expect_csr("-----BEGIN CERTIFICATE REQUEST-----\n!!\n-----END CERTIFICATE REQUEST-----\n", 70,
               PX_ERR_INVAL);
    /* Cut anywhere before the end marker (the text is not NUL-terminated). */
    size_t n = strlen(csr_p256);
    size_t end = (size_t)(strstr(csr_p256, "-----END") - csr_p256);
    for (size_t k = 0; k < end + 20; k++) {
        char *cut = malloc(k ? k : 1);
        memcpy(cut, csr_p256, k);
        expect_csr(cut, k, PX_ERR_INVAL);
        free(cut);
    }
    (void)n;
}

/* A request with one byte of its DER changed: a clean refusal, never a
 * crash; only a change that leaves the signed part and the signature alone
 * could pass, and there is none in a DER request. */
static void test_csr_every_byte_changed(void **state)
{
    (void)state;
    const char *begin = "-----BEGIN CERTIFICATE REQUEST-----\n";
    char *pub, *cn;
    /* Decode the fixture's DER through the certificate splitter's twin. */
    char *as_cert = strdup(csr_p256);
    char *p;
    while ((p = strstr(as_cert, "CERTIFICATE REQUEST")))
        memmove(p + 11, p + 19, strlen(p + 19) + 1); /* "CERTIFICATE" */
    size_t len;
    uint8_t *der = fixture_der(as_cert, &len);
    free(as_cert);
    for (size_t i = 0; i < len; i++) {
        uint8_t *m = malloc(len);
        memcpy(m, der, len);
        m[i] ^= 0x04;
        char *body = px_cert_sf_binary(m, len); /* ":base64:" */
        body[strlen(body) - 1] = '\0';
        char *text = NULL;
        size_t tn = 0;
        FILE *f = open_memstream(&text, &tn);
        fprintf(f, "%s%s\n-----END CERTIFICATE REQUEST-----\n", begin, body + 1);
        fclose(f);
        int rc = px_cert_csr_read(text, tn, &pub, &cn);
        if (rc == 0) {
            fail_msg("a request changed at byte %zu was accepted", i);
        }
        assert_true(rc == PX_ERR_INVAL || rc == PX_ERR_CRYPTO);
        free(text);
        free(body);
        free(m);
    }
    free(der);
}

/* The key a request carries is one px_pki_issue takes, and the certificate
 * it makes holds that key and the request's name. */
static void test_csr_to_certificate(void **state)
{
    (void)state;
    char *ca_key, *ca_cert, *pub, *cn, *cert;
    assert_int_equal(px_pki_keygen(test_rng(), &ca_key), 0);
    assert_int_equal(px_pki_make_ca(test_rng(), ca_key, "Client CA", 30, &ca_cert), 0);
    assert_int_equal(px_cert_csr_read(csr_p256, strlen(csr_p256), &pub, &cn), 0);
    assert_int_equal(
        px_pki_issue(test_rng(), ca_cert, ca_key, pub, cn, NULL, 0, PX_PKI_CLIENT, 30, &cert), 0);
    size_t len;
    uint8_t *der = fixture_der(cert, &len);
    struct px_cert_info ci;
    assert_int_equal(px_cert_info(der, len, &ci), 0);
    assert_string_equal(ci.common_name, "laptop");
    assert_string_equal(ci.subject, "CN=laptop,O=tunnel edge-sim");
    assert_string_equal(ci.issuer, "CN=Client CA,O=tunnel edge-sim");
    assert_int_equal(ci.is_ca, 0);
    assert_true(ci.not_after - ci.not_before >= 30 * 86400 - 1);
    px_cert_info_cleanup(&ci);
    /* Same key: the certificate's SubjectPublicKeyInfo is the request's. */
    const uint8_t *spki;
    size_t spki_len;
    assert_int_equal(px_cert_spki(der, len, &spki, &spki_len), 0);
    char *spki_pem = NULL;
    size_t pn = 0;
    FILE *f = open_memstream(&spki_pem, &pn);
    char *b64 = px_cert_sf_binary(spki, spki_len);
    b64[strlen(b64) - 1] = '\0';
    fprintf(f, "-----BEGIN PUBLIC KEY-----\n");
    for (size_t i = 1; i < strlen(b64); i += 64)
        fprintf(f, "%.64s\n", b64 + i);
    fprintf(f, "-----END PUBLIC KEY-----\n");
    fclose(f);
    assert_string_equal(spki_pem, csr_p256_pub);
    free(spki_pem);
    free(b64);
    /* The CA certificate px_pki makes says CA:TRUE. */
    uint8_t *ca_der = fixture_der(ca_cert, &len);
    assert_int_equal(px_cert_info(ca_der, len, &ci), 0);
    assert_int_equal(ci.is_ca, 1);
    px_cert_info_cleanup(&ci);
    assert_int_equal(px_cert_spki((const uint8_t *)"\x30\x00", 2, &spki, &spki_len), PX_ERR_INVAL);
    free(ca_der);
    free(der);
    free(cert);
    free(pub);
    free(cn);
    free(ca_cert);
    free(ca_key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_info_matches_openssl),
        cmocka_unit_test(test_hostile_names),
        cmocka_unit_test(test_truncated_at_every_length),
        cmocka_unit_test(test_random_bytes),
        cmocka_unit_test(test_every_byte_changed),
        cmocka_unit_test(test_pem_split_several_and_skips_others),
        cmocka_unit_test(test_pem_hostile),
        cmocka_unit_test(test_der_to_pem_round_trip),
        cmocka_unit_test(test_sf_binary),
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_csr_good),
        cmocka_unit_test(test_csr_refused),
        cmocka_unit_test(test_csr_every_byte_changed),
        cmocka_unit_test(test_csr_to_certificate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
