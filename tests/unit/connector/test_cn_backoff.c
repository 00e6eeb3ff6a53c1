/* cn_backoff: exponential ceilings with full jitter. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cn_backoff.h"

#include <stdint.h>

static void test_ceilings_double_then_cap(void **state)
{
    (void)state;
    struct cn_backoff b;
    cn_backoff_init(&b, 1000, 30000);
    const unsigned want[] = {1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_int_equal(cn_backoff_ceiling(&b), want[i]);
        /* rnd = UINT32_MAX picks the top of the window: the ceiling itself. */
        assert_int_equal(cn_backoff_next(&b, UINT32_MAX), want[i]);
    }
}

static void test_full_jitter_bounds(void **state)
{
    (void)state;
    struct cn_backoff b;
    cn_backoff_init(&b, 1000, 30000);
    for (int i = 0; i < 20; i++) {
        unsigned ceil = cn_backoff_ceiling(&b);
        struct cn_backoff copy = b;
        assert_int_equal(cn_backoff_next(&copy, 0), 0);
        copy = b;
        assert_true(cn_backoff_next(&copy, UINT32_MAX) <= ceil);
        copy = b;
        unsigned mid = cn_backoff_next(&copy, UINT32_MAX / 2);
        assert_true(mid >= ceil / 2 - 1 && mid <= ceil / 2 + 1);
        /* Sampled values stay in [0, ceiling]. */
        for (uint32_t r = 1; r != 0 && r < UINT32_MAX - 97; r += 0x01000193u) {
            copy = b;
            assert_true(cn_backoff_next(&copy, r) <= ceil);
        }
        cn_backoff_next(&b, 12345);
    }
}

static void test_first_retry_within_one_second(void **state)
{
    (void)state;
    struct cn_backoff b;
    cn_backoff_init(&b, 1000, 30000);
    assert_true(cn_backoff_next(&b, UINT32_MAX) <= 1000);
    cn_backoff_init(&b, 1000, 30000);
    assert_true(cn_backoff_next(&b, 0xdeadbeef) <= 1000);
    assert_int_equal(b.attempt, 1);
}

static void test_reset(void **state)
{
    (void)state;
    struct cn_backoff b;
    cn_backoff_init(&b, 1000, 30000);
    for (int i = 0; i < 7; i++)
        cn_backoff_next(&b, 1);
    assert_int_equal(cn_backoff_ceiling(&b), 30000);
    cn_backoff_reset(&b);
    assert_int_equal(b.attempt, 0);
    assert_int_equal(cn_backoff_ceiling(&b), 1000);
    assert_true(cn_backoff_next(&b, UINT32_MAX) <= 1000);
    assert_int_equal(cn_backoff_ceiling(&b), 2000);
}

static void test_no_overflow_after_many_attempts(void **state)
{
    (void)state;
    struct cn_backoff b;
    cn_backoff_init(&b, 1000, 30000);
    for (int i = 0; i < 100; i++) {
        unsigned d = cn_backoff_next(&b, UINT32_MAX);
        assert_true(d <= 30000);
        if (i >= 5)
            assert_int_equal(d, 30000);
    }
    assert_int_equal(cn_backoff_ceiling(&b), 30000);
    assert_true(b.attempt <= 64);

    /* Huge caps and bases do not wrap either. */
    cn_backoff_init(&b, 3000000000u, 4000000000u);
    for (int i = 0; i < 100; i++) {
        unsigned d = cn_backoff_next(&b, UINT32_MAX);
        assert_true(d <= 4000000000u);
    }
    assert_int_equal(cn_backoff_ceiling(&b), 4000000000u);
    cn_backoff_init(&b, 1, UINT32_MAX);
    for (int i = 0; i < 100; i++)
        assert_true(cn_backoff_next(&b, UINT32_MAX) <= UINT32_MAX);
    assert_int_equal(cn_backoff_ceiling(&b), UINT32_MAX);
}

static void test_cap_below_base(void **state)
{
    (void)state;
    struct cn_backoff b;
    cn_backoff_init(&b, 5000, 1000);
    assert_int_equal(cn_backoff_ceiling(&b), 5000);
    cn_backoff_next(&b, 0);
    assert_int_equal(cn_backoff_ceiling(&b), 5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ceilings_double_then_cap),
        cmocka_unit_test(test_full_jitter_bounds),
        cmocka_unit_test(test_first_retry_within_one_second),
        cmocka_unit_test(test_reset),
        cmocka_unit_test(test_no_overflow_after_many_attempts),
        cmocka_unit_test(test_cap_below_base),
    };
    return cmocka_run_group_tests_name("cn_backoff", tests, NULL, NULL);
}
