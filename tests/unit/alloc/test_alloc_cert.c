/* Allocation failure in px_cert and px_pki_pkcs12: for each operation, the
 * n-th allocation fails, for n = 1, 2, ... until a run completes without
 * reaching n. Every run must end in PX_ERR_NOMEM (or NULL) with nothing
 * leaked, or in the correct result. Only our own allocations fail (see
 * failalloc.h): wolfSSL's are its own. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "failalloc.h"

#include "px_cert.h"
#include "px_err.h"
#include "px_pki.h"

#include "../proto/px_cert_fixtures.h"
#include "test_rng.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/pkcs12.h>

#include <stdio.h>
#include <string.h>

/* An operation: runs armed, calls fa_disarm() as soon as the call under
 * test returned, then returns 0 for the correct result, 1 for a clean
 * error, -1 for anything else. */
typedef int (*op_fn)(void);

static long sweep(const char *name, op_fn op)
{
    fa_disarm();
    if (op() != 0)
        fail_msg("%s: fails without an allocation failure", name);
    for (long n = 1;; n++) {
        fa_arm(n);
        int r = op();
        int hit = fa_failed();
        fa_disarm();
        if (r < 0)
            fail_msg("%s: with allocation #%ld failing, the result is wrong", name, n);
        if (!hit) {
            if (r != 0)
                fail_msg("%s: a clean error without an allocation failure", name);
            return n - 1;
        }
    }
}

#define SWEEP(op)                                                                                  \
    print_message("%-24s %ld allocation(s), each made to fail once\n", #op, sweep(#op, op))

static const struct cert_fixture *hostile;
static uint8_t *hostile_der;
static size_t hostile_len;
static char *bundle; /* two certificates and a request between them */
static char *key, *cert, *ca_key, *ca_cert;

static int op_cert_info(void)
{
    struct px_cert_info ci;
    int rc = px_cert_info(hostile_der, hostile_len, &ci);
    fa_disarm();
    if (rc < 0)
        return rc == PX_ERR_NOMEM && !ci.subject && !ci.issuer && !ci.serial ? 1 : -1;
    int r = strcmp(ci.subject, hostile->subject) == 0 && strcmp(ci.issuer, hostile->issuer) == 0 &&
                    strcmp(ci.common_name, hostile->cn) == 0 &&
                    strcmp(ci.serial, hostile->serial) == 0
                ? 0
                : -1;
    px_cert_info_cleanup(&ci);
    return r;
}

static int op_pem_split(void)
{
    struct px_der *d = NULL;
    size_t n = 0;
    int rc = px_cert_pem_split(bundle, strlen(bundle), &d, &n);
    fa_disarm();
    if (rc < 0)
        return rc == PX_ERR_NOMEM ? 1 : -1;
    int r = n == 2 && d[1].len == hostile_len && memcmp(d[1].der, hostile_der, hostile_len) == 0
                ? 0
                : -1;
    px_der_free(d, n);
    return r;
}

static int op_der_to_pem(void)
{
    char *pem = px_cert_der_to_pem(hostile_der, hostile_len);
    fa_disarm();
    int r = !pem ? 1 : strcmp(pem, hostile->pem) == 0 ? 0 : -1;
    free(pem);
    return r;
}

static int op_sf_binary(void)
{
    char *s = px_cert_sf_binary(hostile_der, hostile_len);
    fa_disarm();
    int r = !s ? 1 : strlen(s) == (hostile_len + 2) / 3 * 4 + 2 ? 0 : -1;
    free(s);
    return r;
}

static int op_csr_read(void)
{
    char *pub = NULL, *cn = NULL;
    int rc = px_cert_csr_read(csr_p256, strlen(csr_p256), &pub, &cn);
    fa_disarm();
    if (rc < 0)
        return rc == PX_ERR_NOMEM && !pub && !cn ? 1 : -1;
    int r = strcmp(pub, csr_p256_pub) == 0 && strcmp(cn, csr_p256_cn) == 0 ? 0 : -1;
    free(pub);
    free(cn);
    return r;
}

static int op_pkcs12(void)
{
    unsigned char *der = NULL;
    size_t len = 0;
    int rc = px_pki_pkcs12(test_rng(), key, cert, ca_cert, "pw", "phone", &der, &len);
    fa_disarm();
    if (rc < 0)
        return rc == PX_ERR_NOMEM && !der ? 1 : -1;
    /* It must still be a whole, correct bundle. */
    int r = -1;
    WC_PKCS12 *p = wc_PKCS12_new();
    byte *pkey = NULL, *c = NULL;
    word32 pkey_len, c_len;
    if (p && wc_d2i_PKCS12(der, (word32)len, p) == 0 &&
        wc_PKCS12_parse(p, "pw", &pkey, &pkey_len, &c, &c_len, NULL) == 0 && pkey && c)
        r = 0;
    XFREE(pkey, NULL, DYNAMIC_TYPE_PUBLIC_KEY);
    XFREE(c, NULL, DYNAMIC_TYPE_PKCS);
    wc_PKCS12_free(p);
    free(der);
    return r;
}

static int setup(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cert_fixtures) / sizeof(cert_fixtures[0]); i++)
        if (strcmp(cert_fixtures[i].name, "hostile_names") == 0)
            hostile = &cert_fixtures[i];
    struct px_der *d;
    size_t n;
    if (!hostile || px_cert_pem_split(hostile->pem, strlen(hostile->pem), &d, &n) < 0)
        return -1;
    hostile_der = d[0].der;
    hostile_len = d[0].len;
    free(d);
    size_t bl = 0;
    FILE *f = open_memstream(&bundle, &bl);
    if (!f)
        return -1;
    fprintf(f, "%s%s%s", cert_fixtures[0].pem, csr_p256, hostile->pem);
    fclose(f);
    char *pub;
    if (px_pki_keygen(test_rng(), &ca_key) ||
        px_pki_make_ca(test_rng(), ca_key, "CA", 30, &ca_cert) || px_pki_keygen(test_rng(), &key) ||
        px_pki_pubkey(key, &pub) ||
        px_pki_issue(test_rng(), ca_cert, ca_key, pub, "phone", NULL, 0, PX_PKI_CLIENT, 30, &cert))
        return -1;
    free(pub);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(hostile_der);
    free(bundle);
    free(key);
    free(cert);
    free(ca_key);
    free(ca_cert);
    return 0;
}

static void cert_fails_cleanly(void **state)
{
    (void)state;
    SWEEP(op_cert_info);
    SWEEP(op_pem_split);
    SWEEP(op_der_to_pem);
    SWEEP(op_sf_binary);
    SWEEP(op_csr_read);
}

static void pkcs12_fails_cleanly(void **state)
{
    (void)state;
    SWEEP(op_pkcs12);
}

int main(void)
{
    if (fa_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cert_fails_cleanly),
        cmocka_unit_test(pkcs12_fails_cleanly),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
