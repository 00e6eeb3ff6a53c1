/* px_hostname: normalisation of Host/:authority/SNI, pattern validation, matching. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "px_err.h"
#include "px_hostname.h"

#include <string.h>

static void norm_ok(const char *in, const char *want)
{
    char out[256];
    memset(out, 'Z', sizeof(out));
    int rc = px_host_normalize(in, strlen(in), out, sizeof(out));
    if (rc != 0)
        print_error("normalize(\"%s\") = %d\n", in, rc);
    assert_int_equal(rc, 0);
    assert_string_equal(out, want);
}

static void norm_bad(const char *in)
{
    char out[256];
    int rc = px_host_normalize(in, strlen(in), out, sizeof(out));
    if (rc != PX_ERR_INVAL)
        print_error("normalize(\"%s\") accepted\n", in);
    assert_int_equal(rc, PX_ERR_INVAL);
}

static void test_normalize_basic(void **state)
{
    (void)state;
    norm_ok("example.com", "example.com");
    norm_ok("App.Example.COM", "app.example.com");
    norm_ok("example.com:443", "example.com");
    norm_ok("EXAMPLE.com:8443", "example.com");
    norm_ok("example.com.", "example.com");
    norm_ok("Example.Com.:80", "example.com");
    norm_ok("localhost", "localhost");
    norm_ok("127.0.0.1:8080", "127.0.0.1");
    norm_ok("under_score.example", "under_score.example");
    norm_ok("xn--bcher-kva.example", "xn--bcher-kva.example");
}

static void test_normalize_ipv6(void **state)
{
    (void)state;
    norm_ok("[::1]", "[::1]");
    norm_ok("[::1]:7844", "[::1]");
    norm_ok("[2001:DB8::1]:443", "[2001:db8::1]");
    norm_bad("[::1");
    norm_bad("::1");
}

static void test_normalize_invalid(void **state)
{
    (void)state;
    norm_bad("");
    norm_bad(".");
    norm_bad(":443");
    norm_bad("exa mple.com");
    norm_bad("example.com/path");
    norm_bad("user@example.com");
    norm_bad("exa\tmple.com");
    norm_bad("example.com\r\n");
    norm_bad("exam*ple.com");
    norm_bad("\xc3\xa9xample.com");
    norm_bad("ex\"ample");
}

/* Documented: the result has no trailing dot. Only one dot is stripped, so
 * "a.." used to come out as "a." (and ".." as "."). Either refusing such
 * names or stripping every trailing dot satisfies the contract. */
static void test_normalize_no_trailing_dot_left(void **state)
{
    (void)state;
    const char *in[] = {"a..", "example.com..", "..", "example.com..:443", "x...."};
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        char out[256] = "";
        int rc = px_host_normalize(in[i], strlen(in[i]), out, sizeof(out));
        if (rc == 0 && out[strlen(out) - 1] == '.')
            print_error("normalize(\"%s\") = \"%s\"\n", in[i], out);
        assert_true(rc == PX_ERR_INVAL || (rc == 0 && out[strlen(out) - 1] != '.'));
    }
}

static void test_normalize_len_bounds(void **state)
{
    (void)state;
    char in[300], out[300];
    memset(in, 'a', sizeof(in));
    /* 253 characters is the DNS maximum. */
    assert_int_equal(px_host_normalize(in, 253, out, sizeof(out)), 0);
    assert_int_equal(strlen(out), 253);
    assert_int_equal(px_host_normalize(in, 254, out, sizeof(out)), PX_ERR_INVAL);
    /* The output buffer bounds the result (needs room for the NUL). */
    assert_int_equal(px_host_normalize("abcd", 4, out, 5), 0);
    assert_int_equal(px_host_normalize("abcde", 5, out, 5), PX_ERR_INVAL);
    /* Only len bytes are read: no NUL needed, trailing bytes ignored. */
    assert_int_equal(px_host_normalize("example.com!!!", 11, out, sizeof(out)), 0);
    assert_string_equal(out, "example.com");
    const char nul[] = "exa\0mple";
    assert_int_equal(px_host_normalize(nul, sizeof(nul) - 1, out, sizeof(out)), PX_ERR_INVAL);
}

static void test_pattern_valid(void **state)
{
    (void)state;
    assert_int_equal(px_host_pattern_valid("example.com"), 1);
    assert_int_equal(px_host_pattern_valid("app.example.com"), 1);
    assert_int_equal(px_host_pattern_valid("localhost"), 1);
    assert_int_equal(px_host_pattern_valid("*.example.com"), 1);
    assert_int_equal(px_host_pattern_valid("*.com"), 1);
    assert_int_equal(px_host_pattern_valid("a-b_c.example"), 1);

    assert_int_equal(px_host_pattern_valid(""), 0);
    assert_int_equal(px_host_pattern_valid("*"), 0);
    assert_int_equal(px_host_pattern_valid("*."), 0);
    assert_int_equal(px_host_pattern_valid("*.."), 0);
    assert_int_equal(px_host_pattern_valid("*.*.example.com"), 0);
    assert_int_equal(px_host_pattern_valid("**.example.com"), 0);
    assert_int_equal(px_host_pattern_valid("*example.com"), 0);
    assert_int_equal(px_host_pattern_valid("app.*.example.com"), 0);
    assert_int_equal(px_host_pattern_valid("app*.example.com"), 0);
    assert_int_equal(px_host_pattern_valid("a..b"), 0);
    assert_int_equal(px_host_pattern_valid(".example.com"), 0);
    assert_int_equal(px_host_pattern_valid("example.com."), 0);
    assert_int_equal(px_host_pattern_valid("example.com:443"), 0);
    assert_int_equal(px_host_pattern_valid("exa mple.com"), 0);
    assert_int_equal(px_host_pattern_valid("[::1]"), 0);
}

static void test_pattern_label_and_total_length(void **state)
{
    (void)state;
    char p[300];
    memset(p, 'a', 63);
    memcpy(p + 63, ".com", 5);
    assert_int_equal(px_host_pattern_valid(p), 1);
    memset(p, 'a', 64);
    memcpy(p + 64, ".com", 5);
    assert_int_equal(px_host_pattern_valid(p), 0);
    /* 64-char label after a wildcard, and as the last label */
    memcpy(p, "*.", 2);
    memset(p + 2, 'b', 64);
    p[66] = '\0';
    assert_int_equal(px_host_pattern_valid(p), 0);
    memcpy(p, "x.", 2);
    assert_int_equal(px_host_pattern_valid(p), 0);
    /* 253 total fine, 254 not (labels of 50) */
    size_t o = 0;
    while (o < 253) {
        size_t l = 253 - o >= 51 ? 50 : 253 - o;
        memset(p + o, 'c', l);
        o += l;
        if (o < 253)
            p[o++] = '.';
    }
    p[253] = '\0';
    assert_int_equal(px_host_pattern_valid(p), 1);
    p[253] = 'c';
    p[254] = '\0';
    assert_int_equal(px_host_pattern_valid(p), 0);
}

static void test_match_exact(void **state)
{
    (void)state;
    assert_int_equal(px_host_match("app.example.com", "app.example.com"), 1);
    assert_int_equal(px_host_match("App.Example.COM", "app.example.com"), 1);
    assert_int_equal(px_host_match("app.example.com", "APP.EXAMPLE.COM"), 1);
    assert_int_equal(px_host_match("app.example.com", "app.example.co"), 0);
    assert_int_equal(px_host_match("app.example.com", "x.app.example.com"), 0);
    assert_int_equal(px_host_match("app.example.com", "example.com"), 0);
}

static void test_match_wildcard(void **state)
{
    (void)state;
    assert_int_equal(px_host_match("*.example.com", "a.example.com"), 1);
    assert_int_equal(px_host_match("*.example.com", "A.EXAMPLE.com"), 1);
    assert_int_equal(px_host_match("*.example.com", "deep.sub.example.com"), 1);
    assert_int_equal(px_host_match("*.example.com", "x.y.z.example.com"), 1);
    /* The bare suffix is not covered by its wildcard. */
    assert_int_equal(px_host_match("*.example.com", "example.com"), 0);
    assert_int_equal(px_host_match("*.example.com", ".example.com"), 0);
    /* Label boundary: "badexample.com" does not end in ".example.com". */
    assert_int_equal(px_host_match("*.example.com", "badexample.com"), 0);
    assert_int_equal(px_host_match("*.example.com", "a.example.org"), 0);
    assert_int_equal(px_host_match("*.example.com", "a.example.com.evil"), 0);
    assert_int_equal(px_host_match("*.example.com", ""), 0);
}

static void test_covers(void **state)
{
    (void)state;
    assert_int_equal(px_host_covers("a.example", "a.example"), 1);
    assert_int_equal(px_host_covers("a.example", "A.Example"), 1);
    assert_int_equal(px_host_covers("a.example", "b.example"), 0);
    assert_int_equal(px_host_covers("a.example", "*.a.example"), 0);
    assert_int_equal(px_host_covers("*.example", "a.example"), 1);
    assert_int_equal(px_host_covers("*.example", "a.b.example"), 1);
    assert_int_equal(px_host_covers("*.example", "example"), 0);
    assert_int_equal(px_host_covers("*.example", "*.example"), 1);
    assert_int_equal(px_host_covers("*.example", "*.b.example"), 1);
    assert_int_equal(px_host_covers("*.example", "*.a.b.example"), 1);
    assert_int_equal(px_host_covers("*.b.example", "*.example"), 0);
    assert_int_equal(px_host_covers("*.b.example", "b.example"), 0);
    assert_int_equal(px_host_covers("*.example", "*.badexample"), 0);
    assert_int_equal(px_host_covers("*.example", "*.example.org"), 0);
}

/* Defect 5 (subdomain takeover): a claim that overlaps another tunnel's is
 * refused. The predicate must see the overlap from both sides. */
static void test_overlap(void **state)
{
    (void)state;
    const char *yes[][2] = {
        {"victim.apps.example.test", "*.apps.example.test"},
        {"deep.victim.apps.example.test", "*.apps.example.test"},
        {"*.apps.example.test", "x.apps.example.test"},
        {"*.apps.example.test", "*.y.apps.example.test"},
        {"*.apps.example.test", "*.apps.example.test"},
        {"*.APPS.example.test", "x.apps.EXAMPLE.test"},
        {"same.example.test", "same.example.test"},
    };
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (!px_host_overlap(yes[i][0], yes[i][1]) || !px_host_overlap(yes[i][1], yes[i][0]))
            print_error("%s / %s: no overlap found\n", yes[i][0], yes[i][1]);
        assert_int_equal(px_host_overlap(yes[i][0], yes[i][1]), 1);
        assert_int_equal(px_host_overlap(yes[i][1], yes[i][0]), 1);
    }
    const char *no[][2] = {
        {"apps.example.test", "*.apps.example.test"}, /* the bare suffix is not covered */
        {"x.example.test", "y.example.test"},         {"*.a.example.test", "*.b.example.test"},
        {"*.a.example.test", "b.example.test"},       {"*.example.test", "x.badexample.test"},
        {"*.example.test", "*.badexample.test"},      {"*.example.test", "*.example.testing"},
        {"*.example.test", "example.test.evil"},
    };
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        if (px_host_overlap(no[i][0], no[i][1]) || px_host_overlap(no[i][1], no[i][0]))
            print_error("%s / %s: overlap found\n", no[i][0], no[i][1]);
        assert_int_equal(px_host_overlap(no[i][0], no[i][1]), 0);
        assert_int_equal(px_host_overlap(no[i][1], no[i][0]), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize_basic),
        cmocka_unit_test(test_normalize_ipv6),
        cmocka_unit_test(test_normalize_invalid),
        cmocka_unit_test(test_normalize_no_trailing_dot_left),
        cmocka_unit_test(test_normalize_len_bounds),
        cmocka_unit_test(test_pattern_valid),
        cmocka_unit_test(test_pattern_label_and_total_length),
        cmocka_unit_test(test_match_exact),
        cmocka_unit_test(test_match_wildcard),
        cmocka_unit_test(test_covers),
        cmocka_unit_test(test_overlap),
    };
    return cmocka_run_group_tests_name("px_hostname", tests, NULL, NULL);
}
