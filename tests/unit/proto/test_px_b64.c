/* px_b64: RFC 4648 test vectors, both alphabets, padding and rejection. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "px_b64.h"
#include "px_err.h"

#include <stdlib.h>
#include <string.h>

static void check_encode(const char *in, const char *std, const char *url)
{
    char *s = px_b64_encode((const uint8_t *)in, strlen(in), 0);
    assert_non_null(s);
    assert_string_equal(s, std);
    free(s);
    s = px_b64_encode((const uint8_t *)in, strlen(in), 1);
    assert_non_null(s);
    assert_string_equal(s, url);
    free(s);
}

static void check_decode(const char *b64, const char *want)
{
    uint8_t *out = NULL;
    size_t n = 99;
    assert_int_equal(px_b64_decode(b64, strlen(b64), &out, &n), 0);
    assert_non_null(out);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(out, want, n);
    free(out);
}

static void expect_invalid(const char *b64)
{
    uint8_t *out = (uint8_t *)"sentinel";
    size_t n = 99;
    assert_int_equal(px_b64_decode(b64, strlen(b64), &out, &n), PX_ERR_INVAL);
    /* Outputs untouched on failure. */
    assert_string_equal((const char *)out, "sentinel");
    assert_int_equal(n, 99);
}

static void test_rfc4648_vectors(void **state)
{
    (void)state;
    check_encode("", "", "");
    check_encode("f", "Zg==", "Zg");
    check_encode("fo", "Zm8=", "Zm8");
    check_encode("foo", "Zm9v", "Zm9v");
    check_encode("foob", "Zm9vYg==", "Zm9vYg");
    check_encode("fooba", "Zm9vYmE=", "Zm9vYmE");
    check_encode("foobar", "Zm9vYmFy", "Zm9vYmFy");
}

static void test_decode_vectors_padded_and_not(void **state)
{
    (void)state;
    check_decode("", "");
    check_decode("Zg==", "f");
    check_decode("Zg", "f");
    check_decode("Zm8=", "fo");
    check_decode("Zm8", "fo");
    check_decode("Zm9v", "foo");
    check_decode("Zm9vYg==", "foob");
    check_decode("Zm9vYmE", "fooba");
    check_decode("Zm9vYmFy", "foobar");
}

static void test_alphabets(void **state)
{
    (void)state;
    const uint8_t in[] = {0xfb, 0xff, 0xbf, 0xfe};
    char *std = px_b64_encode(in, sizeof(in), 0);
    char *url = px_b64_encode(in, sizeof(in), 1);
    assert_string_equal(std, "+/+//g==");
    assert_string_equal(url, "-_-__g");
    /* Either alphabet decodes to the same bytes. */
    uint8_t *o;
    size_t n;
    assert_int_equal(px_b64_decode(std, strlen(std), &o, &n), 0);
    assert_int_equal(n, 4);
    assert_memory_equal(o, in, 4);
    free(o);
    assert_int_equal(px_b64_decode(url, strlen(url), &o, &n), 0);
    assert_int_equal(n, 4);
    assert_memory_equal(o, in, 4);
    free(o);
    free(std);
    free(url);
}

static void test_round_trip_all_lengths(void **state)
{
    (void)state;
    uint8_t buf[300];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)(i * 131 + 7);
    for (size_t len = 0; len <= sizeof(buf); len++) {
        for (int url = 0; url <= 1; url++) {
            char *s = px_b64_encode(buf, len, url);
            assert_non_null(s);
            size_t sl = strlen(s);
            if (url)
                assert_null(strchr(s, '='));
            else
                assert_int_equal(sl % 4, 0);
            uint8_t *o;
            size_t n;
            assert_int_equal(px_b64_decode(s, sl, &o, &n), 0);
            assert_int_equal(n, len);
            if (len)
                assert_memory_equal(o, buf, len);
            free(o);
            free(s);
        }
    }
}

static void test_decode_uses_slen_not_nul(void **state)
{
    (void)state;
    uint8_t *o;
    size_t n;
    assert_int_equal(px_b64_decode("Zm9vYmFy!!!", 8, &o, &n), 0);
    assert_int_equal(n, 6);
    assert_memory_equal(o, "foobar", 6);
    free(o);
}

static void test_rejects(void **state)
{
    (void)state;
    expect_invalid("Z");     /* impossible length */
    expect_invalid("Zm9vY"); /* 4k+1 */
    expect_invalid("Z===");
    expect_invalid("Zm9v Yg=="); /* whitespace */
    expect_invalid("Zm9v\nYg==");
    expect_invalid("Zm9vYg==\n");
    expect_invalid(" Zm9v");
    expect_invalid("Zm9\tv");
    expect_invalid("Zm=9v"); /* padding in the middle */
    expect_invalid("Zg==Zg==");
    expect_invalid("Zm9v*");
    expect_invalid("Zm9v.Yg");
    expect_invalid("\xc3\xa9\xc3\xa9");
    uint8_t *o = (uint8_t *)"sentinel";
    size_t n = 99;
    const char nul[] = "Zm\0v";
    assert_int_equal(px_b64_decode(nul, 4, &o, &n), PX_ERR_INVAL);
}

static void test_padding_only(void **state)
{
    (void)state;
    /* All padding strips to the empty string. */
    check_decode("==", "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4648_vectors),
        cmocka_unit_test(test_decode_vectors_padded_and_not),
        cmocka_unit_test(test_alphabets),
        cmocka_unit_test(test_round_trip_all_lengths),
        cmocka_unit_test(test_decode_uses_slen_not_nul),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_padding_only),
    };
    return cmocka_run_group_tests_name("px_b64", tests, NULL, NULL);
}
