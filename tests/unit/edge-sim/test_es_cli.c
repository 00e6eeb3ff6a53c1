/* es_cli: what the subcommands share; here, durations (--cert-lifetime, --grace). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "es_cli.h"

#include <limits.h>

static void test_duration_units(void **state)
{
    (void)state;
    long long v = -1;
    assert_int_equal(es_cli_parse_duration("20s", 0, LLONG_MAX, &v), 0);
    assert_int_equal(v, 20);
    assert_int_equal(es_cli_parse_duration("20", 0, LLONG_MAX, &v), 0);
    assert_int_equal(v, 20);
    assert_int_equal(es_cli_parse_duration("5m", 0, LLONG_MAX, &v), 0);
    assert_int_equal(v, 300);
    assert_int_equal(es_cli_parse_duration("24h", 0, LLONG_MAX, &v), 0);
    assert_int_equal(v, 86400);
    assert_int_equal(es_cli_parse_duration("7d", 0, LLONG_MAX, &v), 0);
    assert_int_equal(v, 7 * 86400);
    assert_int_equal(es_cli_parse_duration("0", 0, LLONG_MAX, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(es_cli_parse_duration("0d", 0, LLONG_MAX, &v), 0);
    assert_int_equal(v, 0);
}

static void test_duration_bounds(void **state)
{
    (void)state;
    long long v = 42;
    /* --cert-lifetime: 10s..825d */
    assert_int_equal(es_cli_parse_duration("10s", 10, 825LL * 86400, &v), 0);
    assert_int_equal(es_cli_parse_duration("825d", 10, 825LL * 86400, &v), 0);
    assert_int_equal(v, 825LL * 86400);
    v = 42;
    assert_int_equal(es_cli_parse_duration("9s", 10, 825LL * 86400, &v), -1);
    assert_int_equal(es_cli_parse_duration("826d", 10, 825LL * 86400, &v), -1);
    assert_int_equal(es_cli_parse_duration("19801h", 10, 825LL * 86400, &v), -1);
    /* No overflow on the multiplication. */
    assert_int_equal(es_cli_parse_duration("9223372036854775807d", 0, LLONG_MAX, &v), -1);
    assert_int_equal(es_cli_parse_duration("99999999999999999999", 0, LLONG_MAX, &v), -1);
    assert_int_equal(v, 42); /* untouched on failure */
}

static void test_duration_malformed(void **state)
{
    (void)state;
    const char *bad[] = {"",    "s",   "d",    "-1",  "-1s",  "+5s", " 5s", "5s ", "5 s", "5S",
                         "5ms", "5sd", "1.5h", "1e3", "0x10", "5w",  "5y",  "abc", "10\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        long long v = 42;
        if (es_cli_parse_duration(bad[i], 0, LLONG_MAX, &v) != -1)
            print_error("accepted '%s'\n", bad[i]);
        assert_int_equal(es_cli_parse_duration(bad[i], 0, LLONG_MAX, &v), -1);
        assert_int_equal(v, 42);
    }
    long long v;
    assert_int_equal(es_cli_parse_duration(NULL, 0, 1, &v), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration_units),
        cmocka_unit_test(test_duration_bounds),
        cmocka_unit_test(test_duration_malformed),
    };
    return cmocka_run_group_tests_name("es_cli", tests, NULL, NULL);
}
