/* px_utf8: the one UTF-8 sequence decoder (logs, metric labels, JSON views):
 * every valid length, and each way a sequence can be invalid. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "px_utf8.h"

#include <string.h>

static size_t seq(const char *bytes, size_t n)
{
    return px_utf8_seq((const unsigned char *)bytes, n);
}

static void test_valid_lengths(void **state)
{
    (void)state;
    assert_int_equal(seq("a", 1), 1);
    assert_int_equal(seq("\x7f", 1), 1);
    assert_int_equal(seq("\xc2\x80", 2), 2);         /* U+0080 */
    assert_int_equal(seq("\xdf\xbf", 2), 2);         /* U+07FF */
    assert_int_equal(seq("\xe0\xa0\x80", 3), 3);     /* U+0800 */
    assert_int_equal(seq("\xe2\x82\xac", 3), 3);     /* the euro sign */
    assert_int_equal(seq("\xef\xbf\xbd", 3), 3);     /* U+FFFD */
    assert_int_equal(seq("\xf0\x90\x80\x80", 4), 4); /* U+10000 */
    assert_int_equal(seq("\xf4\x8f\xbf\xbf", 4), 4); /* U+10FFFF */
    assert_int_equal(seq("\xe2\x82\xac"
                         "x",
                         4),
                     3); /* only the sequence at p */
}

static void test_invalid(void **state)
{
    (void)state;
    assert_int_equal(seq("\x80", 1), 0); /* continuation byte first */
    assert_int_equal(seq("\xbf\x80", 2), 0);
    assert_int_equal(seq("\xc0\x80", 2), 0);         /* overlong NUL */
    assert_int_equal(seq("\xc1\xbf", 2), 0);         /* overlong */
    assert_int_equal(seq("\xe0\x80\x80", 3), 0);     /* overlong */
    assert_int_equal(seq("\xf0\x80\x80\x80", 4), 0); /* overlong */
    assert_int_equal(seq("\xed\xa0\x80", 3), 0);     /* surrogate U+D800 */
    assert_int_equal(seq("\xed\xbf\xbf", 3), 0);     /* surrogate U+DFFF */
    assert_int_equal(seq("\xf4\x90\x80\x80", 4), 0); /* above U+10FFFF */
    assert_int_equal(seq("\xf5\x80\x80\x80", 4), 0);
    assert_int_equal(seq("\xff", 1), 0);
    assert_int_equal(seq("\xc2"
                         "a",
                         2),
                     0); /* not a continuation */
    assert_int_equal(seq("\xe2\x82"
                         "a",
                         3),
                     0);
}

static void test_cut_short(void **state)
{
    (void)state;
    assert_int_equal(seq("\xc2\x80", 1), 0);
    assert_int_equal(seq("\xe2\x82\xac", 2), 0);
    assert_int_equal(seq("\xf0\x90\x80\x80", 3), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_lengths),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_cut_short),
    };
    return cmocka_run_group_tests_name("px_utf8", tests, NULL, NULL);
}
