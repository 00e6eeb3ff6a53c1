/* px_pki_issue_req: explicit validity to the second (UTCTime and, from
 * 2050, GeneralizedTime), the URI SAN that names a tunnel, and refusals. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "px_cert.h"
#include "px_err.h"
#include "px_pki.h"
#include "px_tls.h"
#include "test_rng.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct ca {
    char *key, *cert, *sub_key, *sub_pub;
};

static int setup(void **state)
{
    struct ca *c = calloc(1, sizeof(*c));
    assert_int_equal(px_pki_keygen(test_rng(), &c->key), 0);
    assert_int_equal(px_pki_make_ca(test_rng(), c->key, "Test Pull CA", 30, &c->cert), 0);
    assert_int_equal(px_pki_keygen(test_rng(), &c->sub_key), 0);
    assert_int_equal(px_pki_pubkey(c->sub_key, &c->sub_pub), 0);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct ca *c = *state;
    free(c->key);
    free(c->cert);
    free(c->sub_key);
    free(c->sub_pub);
    free(c);
    return 0;
}

/* Issues r and reads it back. */
static void issue(struct ca *c, const struct px_pki_req *r, struct px_cert_info *ci,
                  struct px_der **der, size_t *n)
{
    char *pem = NULL;
    assert_int_equal(px_pki_issue_req(test_rng(), c->cert, c->key, c->sub_pub, r, &pem), 0);
    assert_int_equal(px_cert_pem_split(pem, strlen(pem), der, n), 0);
    assert_int_equal(px_cert_info((*der)[0].der, (*der)[0].len, ci), 0);
    free(pem);
}

static int contains(const struct px_der *d, const char *s)
{
    size_t l = strlen(s);
    for (size_t i = 0; i + l <= d->len; i++)
        if (memcmp(d->der + i, s, l) == 0)
            return 1;
    return 0;
}

static void test_seconds_and_uri(void **state)
{
    struct ca *c = *state;
    long long now = (long long)time(NULL);
    struct px_pki_req r = {.cn = "0123456789abcdef0123456789abcdef",
                           .uri = "tunnel:0123456789abcdef0123456789abcdef",
                           .usage = PX_PKI_CLIENT,
                           .not_before = now - 60,
                           .not_after = now + 20};
    struct px_cert_info ci;
    struct px_der *der;
    size_t n;
    issue(c, &r, &ci, &der, &n);
    assert_int_equal(ci.not_before, now - 60);
    assert_int_equal(ci.not_after, now + 20);
    assert_string_equal(ci.common_name, "0123456789abcdef0123456789abcdef");
    assert_true(contains(&der[0], "tunnel:0123456789abcdef0123456789abcdef"));
    assert_false(ci.is_ca);
    px_cert_info_cleanup(&ci);
    px_der_free(der, n);
}

static void test_generalized_time(void **state)
{
    struct ca *c = *state;
    /* 2060-01-01T00:00:00Z: past 2049, so GeneralizedTime. */
    struct px_pki_req r = {.cn = "far",
                           .names = (const char *const[]){"ha.local"},
                           .n_names = 1,
                           .usage = PX_PKI_SERVER,
                           .not_before = 1700000000,
                           .not_after = 2840140800LL};
    struct px_cert_info ci;
    struct px_der *der;
    size_t n;
    issue(c, &r, &ci, &der, &n);
    assert_int_equal(ci.not_after, 2840140800LL);
    assert_true(contains(&der[0], "20600101000000Z"));
    assert_true(contains(&der[0], "ha.local"));
    px_cert_info_cleanup(&ci);
    px_der_free(der, n);
}

static void test_days_when_no_dates(void **state)
{
    struct ca *c = *state;
    long long now = (long long)time(NULL);
    struct px_pki_req r = {.cn = "old-style", .usage = PX_PKI_CLIENT, .days = 10};
    struct px_cert_info ci;
    struct px_der *der;
    size_t n;
    issue(c, &r, &ci, &der, &n);
    assert_true(ci.not_after >= now + 10 * 86400 - 120 && ci.not_after <= now + 10 * 86400 + 120);
    px_cert_info_cleanup(&ci);
    px_der_free(der, n);
}

static void test_refusals(void **state)
{
    struct ca *c = *state;
    char *pem = NULL;
    long long now = (long long)time(NULL);
    struct px_pki_req r = {.cn = "x", .usage = PX_PKI_CLIENT, .not_before = now, .not_after = now};
    assert_int_equal(px_pki_issue_req(test_rng(), c->cert, c->key, c->sub_pub, &r, &pem),
                     PX_ERR_INVAL);
    r.not_before = -5;
    r.not_after = now;
    assert_int_equal(px_pki_issue_req(test_rng(), c->cert, c->key, c->sub_pub, &r, &pem),
                     PX_ERR_INVAL);
    char uri[200];
    memset(uri, 'u', sizeof(uri) - 1);
    uri[sizeof(uri) - 1] = '\0';
    struct px_pki_req big = {.cn = "x", .uri = uri, .usage = PX_PKI_CLIENT, .days = 1};
    assert_int_not_equal(px_pki_issue_req(test_rng(), c->cert, c->key, c->sub_pub, &big, &pem), 0);
    assert_int_not_equal(px_pki_issue_req(test_rng(), c->cert, c->key, "not a key", &big, &pem), 0);
    assert_null(pem);
}

int main(void)
{
    px_tls_global_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_seconds_and_uri, setup, teardown),
        cmocka_unit_test_setup_teardown(test_generalized_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_days_when_no_dates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
