/* es_fair: per-client stream accounting (defect 2c of issue 7). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "es_fair.h"
#include "px_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_share(void **state)
{
    (void)state;
    assert_int_equal(es_fair_share(0), ES_FAIR_MIN_SHARE);
    assert_int_equal(es_fair_share(100), ES_FAIR_MIN_SHARE);
    assert_int_equal(es_fair_share(1000), 250);
    assert_int_equal(es_fair_share(2000), 500);
}

static void test_acquire_to_cap_then_denied(void **state)
{
    (void)state;
    struct es_fair f;
    assert_int_equal(es_fair_init(&f), 0);
    char *k = es_fair_key("t1", "192.0.2.7");
    assert_non_null(k);
    assert_string_equal(k, "t1 192.0.2.7");
    for (int i = 0; i < 5; i++)
        assert_int_equal(es_fair_acquire(&f, k, 5), 0);
    assert_int_equal(es_fair_acquire(&f, k, 5), PX_ERR_DENIED);
    assert_int_equal(es_fair_count(&f, k), 5);
    /* Another client, and the same client on another tunnel, are separate. */
    char *k2 = es_fair_key("t1", "192.0.2.8"), *k3 = es_fair_key("t2", "192.0.2.7");
    assert_int_equal(es_fair_acquire(&f, k2, 5), 0);
    assert_int_equal(es_fair_acquire(&f, k3, 5), 0);
    es_fair_release(&f, k);
    assert_int_equal(es_fair_acquire(&f, k, 5), 0);
    for (int i = 0; i < 5; i++)
        es_fair_release(&f, k);
    es_fair_release(&f, k2);
    es_fair_release(&f, k3);
    /* Entries go away at zero: memory is bounded by open streams. */
    assert_int_equal(f.n_entries, 0);
    es_fair_release(&f, k); /* releasing an absent key is harmless */
    free(k);
    free(k2);
    free(k3);
    es_fair_cleanup(&f);
}

static void test_ipv6_keyed_by_64(void **state)
{
    (void)state;
    char *a = es_fair_key("t", "2001:db8:1:2::1"), *b = es_fair_key("t", "2001:db8:1:2:ffff::9");
    assert_non_null(a);
    assert_non_null(b);
    assert_string_equal(a, b);
    free(a);
    free(b);
}

static void test_many_clients_cleanup_frees_all(void **state)
{
    (void)state;
    struct es_fair f;
    assert_int_equal(es_fair_init(&f), 0);
    char ip[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(ip, sizeof(ip), "10.%d.%d.%d", i / 65536, (i / 256) % 256, i % 256);
        char *k = es_fair_key("t", ip);
        assert_int_equal(es_fair_acquire(&f, k, 1), 0);
        free(k);
    }
    assert_int_equal(f.n_entries, 5000);
    es_fair_cleanup(&f); /* LeakSanitizer checks the rest */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_share),
        cmocka_unit_test(test_acquire_to_cap_then_denied),
        cmocka_unit_test(test_ipv6_keyed_by_64),
        cmocka_unit_test(test_many_clients_cleanup_frees_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
