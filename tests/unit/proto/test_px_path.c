/* px_path: dot-segment removal, unreserved decoding, escape normalisation and
 * the refusals that stop a path from meaning one thing to the ingress matcher
 * and another to the origin (issue 7, defect 6). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "px_err.h"
#include "px_path.h"

#include <stdlib.h>
#include <string.h>

static void norm_ok(const char *in, const char *want)
{
    char *out = NULL;
    size_t n = 0;
    enum px_path_error why = PX_PATH_BAD_CHAR;
    int rc = px_path_normalize(in, strlen(in), &out, &n, &why);
    if (rc != 0)
        print_error("normalize(\"%s\") = %d (%s)\n", in, rc, px_path_strerror(why));
    assert_int_equal(rc, 0);
    assert_int_equal(why, PX_PATH_OK);
    if (strcmp(out, want) != 0)
        print_error("normalize(\"%s\") = \"%s\", want \"%s\"\n", in, out, want);
    assert_string_equal(out, want);
    assert_int_equal(n, strlen(want));
    /* Idempotent. */
    char *again = NULL;
    assert_int_equal(px_path_normalize(out, n, &again, NULL, NULL), 0);
    assert_string_equal(again, out);
    free(again);
    free(out);
}

static void norm_bad_n(const char *in, size_t len, enum px_path_error want)
{
    char *out = (char *)1;
    enum px_path_error why = PX_PATH_OK;
    int rc = px_path_normalize(in, len, &out, NULL, &why);
    if (rc != PX_ERR_INVAL || why != want)
        print_error("normalize(\"%s\") = %d why %d, want refusal %d\n", in, rc, why, want);
    assert_int_equal(rc, PX_ERR_INVAL);
    assert_int_equal(why, want);
    assert_null(out);
    assert_non_null(px_path_strerror(why));
}

static void norm_bad(const char *in, enum px_path_error want)
{
    norm_bad_n(in, strlen(in), want);
}

static void test_plain_paths_unchanged(void **state)
{
    (void)state;
    norm_ok("/", "/");
    norm_ok("/index.html", "/index.html");
    norm_ok("/a/b/c", "/a/b/c");
    norm_ok("/a/b/", "/a/b/");
    norm_ok("/a.b/c..d/.e/..f/...", "/a.b/c..d/.e/..f/...");
    norm_ok("/caf\xc3\xa9", "/caf\xc3\xa9"); /* raw UTF-8 passes */
}

static void test_defect6_dot_segments(void **state)
{
    (void)state;
    /* defect 6: the bypass of a "^/public/" rule */
    norm_ok("/public/../secret", "/secret");
    norm_ok("/a/./b", "/a/b");
    norm_ok("/a/b/../c", "/a/c");
    norm_ok("/a/b/../../c", "/c");
    norm_ok("/public/a/../b", "/public/b");
    /* RFC 3986 5.2.4 examples (absolute path part) */
    norm_ok("/a/b/c/./../../g", "/a/g");
    norm_ok("/mid/content=5/../6", "/mid/6");
    /* ".." never climbs above the root */
    norm_ok("/..", "/");
    norm_ok("/../..", "/");
    norm_ok("/../../secret", "/secret");
    norm_ok("/a/../../../b", "/b");
    /* a trailing dot segment keeps the trailing slash */
    norm_ok("/.", "/");
    norm_ok("/a/.", "/a/");
    norm_ok("/a/..", "/");
    norm_ok("/a/b/..", "/a/");
    norm_ok("/a/b/../", "/a/");
    norm_ok("/public/..", "/");
    norm_ok("/./", "/");
}

static void test_defect6_encoded_dots(void **state)
{
    (void)state;
    norm_ok("/public/%2e%2e/secret", "/secret");
    norm_ok("/public/%2E%2E/secret", "/secret");
    norm_ok("/public/.%2e/secret", "/secret");
    norm_ok("/public/%2e./secret", "/secret");
    norm_ok("/a/%2e/b", "/a/b");
    norm_ok("/a/%2E", "/a/");
    norm_ok("/public/%2e%2e", "/");
    /* a double-encoded dot is not a dot: it stays encoded */
    norm_ok("/public/%252e%252e/secret", "/public/%252e%252e/secret");
}

static void test_defect6_slashes_merged(void **state)
{
    (void)state;
    norm_ok("//", "/");
    norm_ok("///", "/");
    norm_ok("//secret", "/secret");
    norm_ok("/a//b", "/a/b");
    norm_ok("/a//", "/a/");
    norm_ok("/a//../b", "/b");
    norm_ok("/public//../secret", "/secret");
}

static void test_unreserved_decoded(void **state)
{
    (void)state;
    norm_ok("/%41%42%43%61%7a%30%39", "/ABCaz09");
    norm_ok("/%2D%2e%5F%7E", "/-._~");
    norm_ok("/%7euser", "/~user");
    norm_ok("/%70ublic/x", "/public/x"); /* an encoded 'p' still matches ^/public/ */
}

static void test_reserved_kept_upper_hex(void **state)
{
    (void)state;
    norm_ok("/a%20b", "/a%20b");
    norm_ok("/a%2a", "/a%2A");
    norm_ok("/%3f", "/%3F");
    norm_ok("/%3F", "/%3F");
    norm_ok("/%e2%82%ac", "/%E2%82%AC");
    norm_ok("/%25", "/%25");
    norm_ok("/%25%32%65", "/%252e"); /* %32 '2' and %65 'e' decode; %25 stays */
    norm_ok("/%23frag", "/%23frag");
    norm_ok("/%3a%40", "/%3A%40");
}

static void test_query_passed_through(void **state)
{
    (void)state;
    norm_ok("/a/../b?x=/../%2f&y=%2e%2E", "/b?x=/../%2f&y=%2e%2E");
    norm_ok("/?", "/?");
    norm_ok("/public/%2e%2e/secret?q", "/secret?q");
    norm_ok("/a?b?c", "/a?b?c");
    norm_ok("/a?%zz#x\\", "/a?%zz#x\\"); /* the query is not the path */
}

static void test_defect6_refused(void **state)
{
    (void)state;
    norm_bad("/a%2Fb", PX_PATH_ENCODED_SEPARATOR);
    norm_bad("/a%2fb", PX_PATH_ENCODED_SEPARATOR);
    norm_bad("/public/..%2Fsecret", PX_PATH_ENCODED_SEPARATOR);
    norm_bad("/a%5Cb", PX_PATH_ENCODED_SEPARATOR);
    norm_bad("/a%5cb", PX_PATH_ENCODED_SEPARATOR);
    norm_bad("/a%00b", PX_PATH_NUL);
    norm_bad_n("/a\0b", 4, PX_PATH_NUL);
    norm_bad_n("/a?b\0", 5, PX_PATH_NUL);
    norm_bad("/a%", PX_PATH_BAD_ESCAPE);
    norm_bad("/a%2", PX_PATH_BAD_ESCAPE);
    norm_bad("/a%zz", PX_PATH_BAD_ESCAPE);
    norm_bad("/a%2g", PX_PATH_BAD_ESCAPE);
    norm_bad("/a%%41", PX_PATH_BAD_ESCAPE);
    norm_bad("/a%?x", PX_PATH_BAD_ESCAPE);
    norm_bad("", PX_PATH_NOT_ABSOLUTE);
    norm_bad("a/b", PX_PATH_NOT_ABSOLUTE);
    norm_bad("*", PX_PATH_NOT_ABSOLUTE);
    norm_bad("?x", PX_PATH_NOT_ABSOLUTE);
    norm_bad("http://x/y", PX_PATH_NOT_ABSOLUTE);
    norm_bad("/a b", PX_PATH_BAD_CHAR);
    norm_bad("/a\r\nX: y", PX_PATH_BAD_CHAR);
    norm_bad("/a?b c", PX_PATH_BAD_CHAR);
    norm_bad("/a\x7f", PX_PATH_BAD_CHAR);
    norm_bad("/a\tb", PX_PATH_BAD_CHAR);
    norm_bad("/public/..#", PX_PATH_BAD_CHAR);
    norm_bad("/public\\..\\secret", PX_PATH_BAD_CHAR);
}

static void test_strerror(void **state)
{
    (void)state;
    for (int e = PX_PATH_OK; e <= PX_PATH_BAD_CHAR; e++)
        assert_true(strlen(px_path_strerror((enum px_path_error)e)) > 0);
    assert_non_null(px_path_strerror((enum px_path_error)99));
}

static void test_long_path(void **state)
{
    (void)state;
    /* No fixed buffers: 100,000 "/a/.." pairs then "/x". */
    size_t reps = 100000, len = reps * 5 + 2;
    char *in = malloc(len + 1);
    assert_non_null(in);
    for (size_t i = 0; i < reps; i++)
        memcpy(in + i * 5, "/a/..", 5);
    memcpy(in + reps * 5, "/x", 3);
    char *out = NULL;
    assert_int_equal(px_path_normalize(in, len, &out, NULL, NULL), 0);
    assert_string_equal(out, "/x");
    free(out);
    /* A deep path survives intact. */
    for (size_t i = 0; i < len; i += 2)
        memcpy(in + i, "/b", 2);
    in[len] = '\0';
    size_t n = 0;
    assert_int_equal(px_path_normalize(in, len, &out, &n, NULL), 0);
    assert_int_equal(n, len);
    assert_memory_equal(out, in, len);
    free(out);
    free(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_paths_unchanged),
        cmocka_unit_test(test_defect6_dot_segments),
        cmocka_unit_test(test_defect6_encoded_dots),
        cmocka_unit_test(test_defect6_slashes_merged),
        cmocka_unit_test(test_unreserved_decoded),
        cmocka_unit_test(test_reserved_kept_upper_hex),
        cmocka_unit_test(test_query_passed_through),
        cmocka_unit_test(test_defect6_refused),
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_long_path),
    };
    return cmocka_run_group_tests_name("px_path", tests, NULL, NULL);
}
