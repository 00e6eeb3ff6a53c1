/* px_pki_pkcs12: the bundle parses back with wolfSSL's own PKCS#12 reader
 * (the same key and certificates, the password checked), carries the bag
 * attributes NSS needs, uses the algorithms the contract names, refuses bad
 * arguments, and is read by the importers that matter: OpenSSL 3 (default
 * provider only), NSS (Chromium, Firefox) and python3-cryptography, which
 * test_importers runs (scripts/deps.sh installs them). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "px_cert.h"
#include "px_err.h"
#include "px_pki.h"
#include "test_rng.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/pkcs12.h>
#include <wolfssl/wolfcrypt/sha.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct world {
    char *ca_key, *ca_cert, *key, *cert, *other_key;
};

static int setup(void **state)
{
    struct world *w = calloc(1, sizeof(*w));
    char *pub;
    if (!w || px_pki_keygen(test_rng(), &w->ca_key) ||
        px_pki_make_ca(test_rng(), w->ca_key, "P12 CA", 30, &w->ca_cert) ||
        px_pki_keygen(test_rng(), &w->key) || px_pki_pubkey(w->key, &pub) ||
        px_pki_issue(test_rng(), w->ca_cert, w->ca_key, pub, "phone", NULL, 0, PX_PKI_CLIENT, 30,
                     &w->cert) ||
        px_pki_keygen(test_rng(), &w->other_key))
        return -1;
    free(pub);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    struct world *w = *state;
    free(w->ca_key);
    free(w->ca_cert);
    free(w->key);
    free(w->cert);
    free(w->other_key);
    free(w);
    return 0;
}

static uint8_t *one_der(const char *pem, size_t *len)
{
    struct px_der *d;
    size_t n;
    assert_int_equal(px_cert_pem_split(pem, strlen(pem), &d, &n), 0);
    uint8_t *der = d[0].der;
    *len = d[0].len;
    free(d);
    return der;
}

/* The public point of a private key given as DER (SEC 1 or PKCS#8). */
static void key_point(const uint8_t *der, size_t len, uint8_t *pt, word32 *pt_len)
{
    ecc_key k;
    word32 idx = 0;
    assert_int_equal(wc_ecc_init(&k), 0);
    assert_int_equal(wc_EccPrivateKeyDecode(der, &idx, &k, (word32)len), 0);
    assert_int_equal(wc_ecc_export_x963(&k, pt, pt_len), 0);
    wc_ecc_free(&k);
}

static void pem_key_point(const char *pem, uint8_t *pt, word32 *pt_len)
{
    DerBuffer *d = NULL;
    assert_int_equal(wc_PemToDer((const unsigned char *)pem, (long)strlen(pem), ECC_PRIVATEKEY_TYPE,
                                 &d, NULL, NULL, NULL),
                     0);
    key_point(d->buffer, d->length, pt, pt_len);
    wc_FreeDer(&d);
}

/* wc_FreeCertList is internal to wolfSSL. */
static void free_cert_list(WC_DerCertList *l)
{
    while (l) {
        WC_DerCertList *next = l->next;
        XFREE(l->buffer, NULL, DYNAMIC_TYPE_PKCS);
        XFREE(l, NULL, DYNAMIC_TYPE_PKCS);
        l = next;
    }
}

static int contains(const uint8_t *h, size_t hn, const void *n, size_t nn)
{
    return memmem(h, hn, n, nn) != NULL;
}

static void test_round_trip(void **state)
{
    struct world *w = *state;
    unsigned char *der = NULL;
    size_t len = 0;
    assert_int_equal(px_pki_pkcs12(test_rng(), w->key, w->cert, w->ca_cert, "correct horse",
                                   "phone", &der, &len),
                     0);
    assert_non_null(der);
    assert_true(len > 500);

    WC_PKCS12 *p = wc_PKCS12_new();
    assert_non_null(p);
    assert_int_equal(wc_d2i_PKCS12(der, (word32)len, p), 0);
    byte *pkey = NULL, *cert = NULL;
    word32 pkey_len = 0, cert_len = 0;
    WC_DerCertList *ca = NULL;
    assert_int_equal(wc_PKCS12_parse(p, "correct horse", &pkey, &pkey_len, &cert, &cert_len, &ca),
                     0);
    /* The same certificate, byte for byte. */
    size_t want_len;
    uint8_t *want = one_der(w->cert, &want_len);
    assert_int_equal(cert_len, want_len);
    assert_memory_equal(cert, want, want_len);
    /* The same key. */
    uint8_t a[160], b[160];
    word32 al = sizeof(a), bl = sizeof(b);
    key_point(pkey, pkey_len, a, &al);
    pem_key_point(w->key, b, &bl);
    assert_int_equal(al, bl);
    assert_memory_equal(a, b, al);
    /* And the CA certificate. */
    size_t ca_len;
    uint8_t *ca_der = one_der(w->ca_cert, &ca_len);
    assert_non_null(ca);
    assert_null(ca->next);
    assert_int_equal(ca->bufferSz, ca_len);
    assert_memory_equal(ca->buffer, ca_der, ca_len);
    free_cert_list(ca);
    XFREE(pkey, NULL, DYNAMIC_TYPE_PUBLIC_KEY);
    XFREE(cert, NULL, DYNAMIC_TYPE_PKCS);
    wc_PKCS12_free(p);

    /* A wrong password: the MAC does not verify. */
    p = wc_PKCS12_new();
    assert_int_equal(wc_d2i_PKCS12(der, (word32)len, p), 0);
    pkey = cert = NULL;
    ca = NULL;
    assert_int_not_equal(
        wc_PKCS12_parse(p, "correct horsf", &pkey, &pkey_len, &cert, &cert_len, &ca), 0);
    assert_null(pkey);
    wc_PKCS12_free(p);

    /* The key bag (not encrypted as a whole) carries friendlyName "phone" as
     * a BMPString and localKeyId, the SHA-1 of the certificate: NSS pairs
     * key and certificate by them. */
    static const uint8_t bmp_phone[] = {0x1e, 0x0a, 0, 'p', 0, 'h', 0, 'o', 0, 'n', 0, 'e'};
    assert_true(contains(der, len, bmp_phone, sizeof(bmp_phone)));
    uint8_t id[2 + WC_SHA_DIGEST_SIZE] = {0x04, WC_SHA_DIGEST_SIZE};
    assert_int_equal(wc_ShaHash(want, (word32)want_len, id + 2), 0);
    assert_true(contains(der, len, id, sizeof(id)));
    /* pbeWithSHAAnd3-KeyTripleDES-CBC with 2048 iterations, twice (the
     * certificates and the key); a SHA-1 MAC. */
    static const uint8_t pbe[] = {0x06, 0x0a, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d,
                                  0x01, 0x0c, 0x01, 0x03, 0x30, 0x0e, 0x04, 0x08};
    const uint8_t *hit = memmem(der, len, pbe, sizeof(pbe));
    assert_non_null(hit);
    assert_memory_equal(hit + sizeof(pbe) + 8, "\x02\x02\x08\x00", 4);
    assert_non_null(memmem(hit + 1, len - (size_t)(hit + 1 - der), pbe, sizeof(pbe)));
    static const uint8_t sha1_alg[] = {0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e,
                                       0x03, 0x02, 0x1a, 0x05, 0x00};
    assert_true(contains(der, len, sha1_alg, sizeof(sha1_alg)));
    assert_memory_equal(der + len - 4, "\x02\x02\x08\x00", 4); /* MAC iterations, last */
    /* No trace of the private scalar in the clear. */
    DerBuffer *kd = NULL;
    assert_int_equal(wc_PemToDer((const unsigned char *)w->key, (long)strlen(w->key),
                                 ECC_PRIVATEKEY_TYPE, &kd, NULL, NULL, NULL),
                     0);
    ecc_key k;
    word32 idx = 0, dl = 32;
    uint8_t scalar[32];
    assert_int_equal(wc_ecc_init(&k), 0);
    assert_int_equal(wc_EccPrivateKeyDecode(kd->buffer, &idx, &k, kd->length), 0);
    assert_int_equal(wc_ecc_export_private_only(&k, scalar, &dl), 0);
    assert_false(contains(der, len, scalar, 8));
    wc_ecc_free(&k);
    wc_FreeDer(&kd);
    free(ca_der);
    free(want);
    free(der);
}

static void test_without_ca_or_name(void **state)
{
    struct world *w = *state;
    unsigned char *der;
    size_t len;
    assert_int_equal(px_pki_pkcs12(test_rng(), w->key, w->cert, NULL, "pw", NULL, &der, &len), 0);
    WC_PKCS12 *p = wc_PKCS12_new();
    assert_int_equal(wc_d2i_PKCS12(der, (word32)len, p), 0);
    byte *pkey = NULL, *cert = NULL;
    word32 pkey_len, cert_len;
    WC_DerCertList *ca = NULL;
    assert_int_equal(wc_PKCS12_parse(p, "pw", &pkey, &pkey_len, &cert, &cert_len, &ca), 0);
    assert_null(ca);
    XFREE(pkey, NULL, DYNAMIC_TYPE_PUBLIC_KEY);
    XFREE(cert, NULL, DYNAMIC_TYPE_PKCS);
    wc_PKCS12_free(p);
    static const uint8_t friendly_name_oid[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                                0xf7, 0x0d, 0x01, 0x09, 0x14};
    assert_false(contains(der, len, friendly_name_oid, sizeof(friendly_name_oid)));
    free(der);
}

/* UTF-8 passwords are BMPStrings to the KDF (RFC 7292 B.1), as OpenSSL and
 * NSS read them; wolfSSL's reader widens bytes instead, so only an ASCII
 * password can be checked with it here. A non-ASCII friendly name is
 * written as UTF-16, surrogate pairs included. */
static void test_utf8_name(void **state)
{
    struct world *w = *state;
    unsigned char *der;
    size_t len;
    assert_int_equal(px_pki_pkcs12(test_rng(), w->key, w->cert, NULL, "pw",
                                   "J\xc3\xbcrgen \xf0\x9f\x98\x80", &der, &len),
                     0);
    static const uint8_t bmp[] = {0x1e, 0x12, 0, 'J', 0, 0xfc, 0,    'r',  0,    'g',
                                  0,    'e',  0, 'n', 0, ' ',  0xd8, 0x3d, 0xde, 0x00};
    assert_true(contains(der, len, bmp, sizeof(bmp)));
    free(der);
}

static void expect_refused(const char *key, const char *cert, const char *ca, const char *pw,
                           const char *name, int want)
{
    unsigned char *der = (unsigned char *)"sentinel";
    size_t len = 99;
    assert_int_equal(px_pki_pkcs12(test_rng(), key, cert, ca, pw, name, &der, &len), want);
    assert_string_equal((const char *)der, "sentinel");
    assert_int_equal(len, 99);
}

static void test_refused(void **state)
{
    struct world *w = *state;
    expect_refused(w->key, w->cert, NULL, "", NULL, PX_ERR_INVAL);
    expect_refused(w->key, w->cert, NULL, NULL, NULL, PX_ERR_INVAL);
    expect_refused(NULL, w->cert, NULL, "pw", NULL, PX_ERR_INVAL);
    expect_refused(w->key, NULL, NULL, "pw", NULL, PX_ERR_INVAL);
    /* The key is not the certificate's. */
    expect_refused(w->other_key, w->cert, NULL, "pw", NULL, PX_ERR_INVAL);
    expect_refused(w->ca_key, w->cert, NULL, "pw", NULL, PX_ERR_INVAL);
    /* Not a key, not a certificate, a broken CA bundle. */
    expect_refused("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n", w->cert,
                   NULL, "pw", NULL, PX_ERR_INVAL);
    expect_refused(w->key, "no certificate", NULL, "pw", NULL, PX_ERR_INVAL);
    expect_refused(w->key, w->key, NULL, "pw", NULL, PX_ERR_INVAL);
    expect_refused(w->key, w->cert, "-----BEGIN CERTIFICATE-----\n@@\n-----END CERTIFICATE-----\n",
                   "pw", NULL, PX_ERR_INVAL);
    expect_refused(w->key, w->cert, "", "pw", NULL, PX_ERR_INVAL);
    /* Not UTF-8. */
    expect_refused(w->key, w->cert, NULL, "p\xffw", NULL, PX_ERR_INVAL);
    expect_refused(w->key, w->cert, NULL, "p\xc0\xafw", NULL, PX_ERR_INVAL);   /* overlong '/' */
    expect_refused(w->key, w->cert, NULL, "pw", "\xed\xa0\x80", PX_ERR_INVAL); /* a surrogate */
    expect_refused(w->key, w->cert, NULL, "pw", "abc\xe2\x82", PX_ERR_INVAL);  /* cut short */
}

/* A key in PKCS#8 form ("PRIVATE KEY") is taken too. */
static void test_pkcs8_key(void **state)
{
    struct world *w = *state;
    DerBuffer *d = NULL;
    assert_int_equal(wc_PemToDer((const unsigned char *)w->key, (long)strlen(w->key),
                                 ECC_PRIVATEKEY_TYPE, &d, NULL, NULL, NULL),
                     0);
    ecc_key k;
    word32 idx = 0, n = 512;
    uint8_t p8[512];
    char pem[1024];
    assert_int_equal(wc_ecc_init(&k), 0);
    assert_int_equal(wc_EccPrivateKeyDecode(d->buffer, &idx, &k, d->length), 0);
    int len = wc_EccKeyToPKCS8(&k, p8, &n);
    assert_true(len > 0);
    int pn = wc_DerToPem(p8, (word32)len, (byte *)pem, sizeof(pem) - 1, PKCS8_PRIVATEKEY_TYPE);
    assert_true(pn > 0);
    pem[pn] = '\0';
    assert_non_null(strstr(pem, "-----BEGIN PRIVATE KEY-----"));
    wc_ecc_free(&k);
    wc_FreeDer(&d);
    unsigned char *der;
    size_t dl;
    assert_int_equal(px_pki_pkcs12(test_rng(), pem, w->cert, NULL, "pw", "x", &der, &dl), 0);
    free(der);
}

/* Runs cmd (a shell command), returns its exit status and its output
 * (stdout and stderr; malloc'd) in *out. */
static int run(const char *cmd, char **out)
{
    char *full = NULL;
    assert_true(asprintf(&full, "(%s) 2>&1", cmd) > 0);
    FILE *f = popen(full, "r");
    assert_non_null(f);
    size_t n = 0, cap = 4096;
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n < 1024) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    buf[n] = '\0';
    int st = pclose(f);
    free(full);
    *out = buf;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void expect_run(const char *cmd, int want_status, const char *want_text)
{
    char *out;
    int st = run(cmd, &out);
    if ((want_status == 0) != (st == 0) || (want_text && !strstr(out, want_text)))
        fail_msg("%s\nexit %d (wanted %s), output:\n%s", cmd, st, want_status ? "failure" : "0",
                 out);
    free(out);
}

static void check_importers(struct world *w, const char *password, const char *name)
{
    char dir[] = "/tmp/test_px_p12.XXXXXX", cmd[2048];
    assert_non_null(mkdtemp(dir));
    unsigned char *der;
    size_t len;
    assert_int_equal(
        px_pki_pkcs12(test_rng(), w->key, w->cert, w->ca_cert, password, name, &der, &len), 0);
    snprintf(cmd, sizeof(cmd), "%s/b.p12", dir);
    FILE *f = fopen(cmd, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(der, 1, len, f), len);
    fclose(f);
    free(der);
    snprintf(cmd, sizeof(cmd), "%s/cert.pem", dir);
    f = fopen(cmd, "w");
    assert_non_null(f);
    fputs(w->cert, f);
    fclose(f);

    /* OpenSSL 3 with no configuration: the default provider alone (no
     * -legacy). A wrong password fails the MAC. */
    snprintf(cmd, sizeof(cmd),
             "OPENSSL_CONF=/dev/null openssl pkcs12 -info -nodes -in %s/b.p12 -passin 'pass:%s'",
             dir, password);
    expect_run(cmd, 0, "MAC: sha1, Iteration 2048");
    expect_run(cmd, 0, "Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 2048");
    expect_run(cmd, 0, "-----BEGIN PRIVATE KEY-----");
    snprintf(cmd, sizeof(cmd),
             "OPENSSL_CONF=/dev/null openssl pkcs12 -info -nodes -in %s/b.p12 -passin pass:wrong",
             dir);
    expect_run(cmd, 1, "Mac verify error");

    /* NSS, as Chromium imports it: the key and the certificate pair up. */
    snprintf(cmd, sizeof(cmd),
             "certutil -N -d sql:%s --empty-password && pk12util -i %s/b.p12 -d sql:%s -W '%s'",
             dir, dir, dir, password);
    expect_run(cmd, 0, "PKCS12 IMPORT SUCCESSFUL");
    snprintf(cmd, sizeof(cmd), "certutil -K -d sql:%s", dir);
    expect_run(cmd, 0, name);
    snprintf(cmd, sizeof(cmd), "certutil -L -d sql:%s", dir);
    expect_run(cmd, 0, "u,u,u"); /* a user certificate: its key is there */
    snprintf(cmd, sizeof(cmd), "pk12util -i %s/b.p12 -d sql:%s -W wrong", dir, dir);
    expect_run(cmd, 1, "SEC_ERROR_BAD_PASSWORD");

    /* python3-cryptography: the key is the certificate's. */
    snprintf(cmd, sizeof(cmd),
             "cd %s && /usr/bin/python3 -c \"\n"
             "from cryptography import x509\n"
             "from cryptography.hazmat.primitives.serialization import pkcs12, Encoding, "
             "PublicFormat\n"
             "k, c, extra = pkcs12.load_key_and_certificates(open('b.p12', 'rb').read(), "
             "'%s'.encode())\n"
             "want = x509.load_pem_x509_certificate(open('cert.pem', 'rb').read())\n"
             "spki = lambda p: p.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)\n"
             "assert c == want and spki(k.public_key()) == spki(want.public_key())\n"
             "assert len(extra) == 1\n"
             "print('python ok')\n"
             "\"",
             dir, password);
    expect_run(cmd, 0, "python ok");

    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    expect_run(cmd, 0, NULL);
}

static void test_importers(void **state)
{
    struct world *w = *state;
    check_importers(w, "correct horse", "phone");
    /* UTF-8 password and name: all three read them as BMPStrings too. */
    check_importers(w, "p\xc3\xa4ssw\xc3\xb6rd \xf0\x9f\x98\x80", "J\xc3\xbcrgen's phone");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip), cmocka_unit_test(test_without_ca_or_name),
        cmocka_unit_test(test_utf8_name),  cmocka_unit_test(test_refused),
        cmocka_unit_test(test_pkcs8_key),  cmocka_unit_test(test_importers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
