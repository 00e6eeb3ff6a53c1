/* px_keypair: a private key is matched against a certificate by a signature,
 * since wolfSSL's own check accepts any key. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "px_err.h"
#include "px_keypair.h"
#include "px_pki.h"
#include "test_rng.h"

#include <stdlib.h>
#include <string.h>

static void test_own_key_matches(void **state)
{
    (void)state;
    char *key = NULL, *cert = NULL;
    assert_int_equal(px_pki_keygen(test_rng(), &key), 0);
    assert_int_equal(px_pki_make_ca(test_rng(), key, "laptop", 1, &cert), 0);
    assert_int_equal(px_keypair_check(cert, key), 0);
    free(cert);
    free(key);
}

static void test_other_key_refused(void **state)
{
    (void)state;
    char *key = NULL, *other = NULL, *cert = NULL;
    assert_int_equal(px_pki_keygen(test_rng(), &key), 0);
    assert_int_equal(px_pki_keygen(test_rng(), &other), 0);
    assert_int_equal(px_pki_make_ca(test_rng(), key, "laptop", 1, &cert), 0);
    assert_int_equal(px_keypair_check(cert, other), PX_ERR_DENIED);
    free(cert);
    free(other);
    free(key);
}

/* A certificate issued by a CA: the leaf's key matches, the CA's does not. */
static void test_issued_leaf(void **state)
{
    (void)state;
    char *ca_key = NULL, *ca = NULL, *key = NULL, *pub = NULL, *leaf = NULL;
    assert_int_equal(px_pki_keygen(test_rng(), &ca_key), 0);
    assert_int_equal(px_pki_make_ca(test_rng(), ca_key, "ca", 1, &ca), 0);
    assert_int_equal(px_pki_keygen(test_rng(), &key), 0);
    assert_int_equal(px_pki_pubkey(key, &pub), 0);
    assert_int_equal(
        px_pki_issue(test_rng(), ca, ca_key, pub, "laptop", NULL, 0, PX_PKI_CLIENT, 1, &leaf), 0);
    assert_int_equal(px_keypair_check(leaf, key), 0);
    assert_int_equal(px_keypair_check(leaf, ca_key), PX_ERR_DENIED);
    /* The leaf first, then its chain: the leaf is what is checked. */
    size_t n = strlen(leaf) + strlen(ca) + 1;
    char *chain = malloc(n);
    assert_non_null(chain);
    strcpy(chain, leaf);
    strcat(chain, ca);
    assert_int_equal(px_keypair_check(chain, key), 0);
    free(chain);
    free(leaf);
    free(pub);
    free(key);
    free(ca);
    free(ca_key);
}

static void test_unreadable_inputs(void **state)
{
    (void)state;
    char *key = NULL, *cert = NULL, *pub = NULL;
    assert_int_equal(px_pki_keygen(test_rng(), &key), 0);
    assert_int_equal(px_pki_make_ca(test_rng(), key, "laptop", 1, &cert), 0);
    assert_int_equal(px_pki_pubkey(key, &pub), 0);
    assert_int_equal(px_keypair_check("", key), PX_ERR_INVAL);
    assert_int_equal(px_keypair_check("not a certificate", key), PX_ERR_INVAL);
    assert_int_equal(px_keypair_check(key, key), PX_ERR_INVAL); /* a key is no certificate */
    assert_int_equal(px_keypair_check(cert, ""), PX_ERR_INVAL);
    assert_int_equal(px_keypair_check(cert, cert), PX_ERR_INVAL); /* a certificate is no key */
    assert_int_equal(px_keypair_check(cert, pub), PX_ERR_INVAL);  /* nor is a public key */
    /* A PEM whose body is damaged. */
    char *bad = strdup(key);
    assert_non_null(bad);
    char *body = strchr(bad, '\n') + 1;
    memset(body, 'A', 20);
    assert_int_equal(px_keypair_check(cert, bad), PX_ERR_INVAL);
    free(bad);
    free(pub);
    free(cert);
    free(key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_own_key_matches),
        cmocka_unit_test(test_other_key_refused),
        cmocka_unit_test(test_issued_leaf),
        cmocka_unit_test(test_unreadable_inputs),
    };
    return cmocka_run_group_tests_name("px_keypair", tests, NULL, NULL);
}
