/* px_headers: which fields may cross a proxy hop. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "px_headers.h"

#include <string.h>

#define S(x) x, strlen(x)

static void test_hop_by_hop(void **state)
{
    (void)state;
    const char *hop[] = {"Connection",
                         "connection",
                         "Keep-Alive",
                         "PROXY-CONNECTION",
                         "Transfer-Encoding",
                         "Upgrade",
                         "TE",
                         "te",
                         "Proxy-Authenticate",
                         "Proxy-Authorization",
                         "HTTP2-Settings",
                         ":path",
                         ":authority",
                         ":status",
                         ":"};
    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++) {
        if (!px_hdr_is_hop_by_hop(S(hop[i])))
            print_error("%s not hop-by-hop\n", hop[i]);
        assert_int_equal(px_hdr_is_hop_by_hop(S(hop[i])), 1);
    }
    const char *e2e[] = {
        "Content-Type", "Content-Length", "Host",          "Trailer", "Trailers",  "Tea", "T",
        "connectionx",  "Connectio",      "Authorization", "Cookie",  "X-Upgrade", ""};
    for (size_t i = 0; i < sizeof(e2e) / sizeof(e2e[0]); i++) {
        if (px_hdr_is_hop_by_hop(S(e2e[i])))
            print_error("%s is hop-by-hop\n", e2e[i]);
        assert_int_equal(px_hdr_is_hop_by_hop(S(e2e[i])), 0);
    }
    /* Length, not NUL, delimits the name. */
    assert_int_equal(px_hdr_is_hop_by_hop("TEa", 2), 1);
    assert_int_equal(px_hdr_is_hop_by_hop("te", 1), 0);
}

static void test_edge_metadata(void **state)
{
    (void)state;
    const char *meta[] = {
        "X-Forwarded-Proto", "x-forwarded-proto", "X-Request-Id", "X-Real-IP",      "x-real-ip",
        "Tunnel-Foo",        "tunnel-foo",        "TUNNEL-ERROR", "Tunnel-Control", "tunnel-"};
    for (size_t i = 0; i < sizeof(meta) / sizeof(meta[0]); i++) {
        if (!px_hdr_is_edge_metadata(S(meta[i])))
            print_error("%s not edge metadata\n", meta[i]);
        assert_int_equal(px_hdr_is_edge_metadata(S(meta[i])), 1);
    }
    const char *other[] = {"X-Forwarded-For", "X-Forwarded-Protocol", "X-Request",    "Tunnel",
                           "Tunnelx-Foo",     "X-Tunnel-Foo",         "Content-Type", ""};
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
        if (px_hdr_is_edge_metadata(S(other[i])))
            print_error("%s is edge metadata\n", other[i]);
        assert_int_equal(px_hdr_is_edge_metadata(S(other[i])), 0);
    }
    assert_int_equal(px_hdr_is_edge_metadata("Tunne", 5), 0);
}

static void test_listed_in_connection(void **state)
{
    (void)state;
    assert_int_equal(px_hdr_listed_in_connection(S("close"), S("close")), 1);
    assert_int_equal(px_hdr_listed_in_connection(S("keep-alive, X-Foo"), S("x-foo")), 1);
    assert_int_equal(px_hdr_listed_in_connection(S("keep-alive, X-Foo"), S("keep-alive")), 1);
    assert_int_equal(px_hdr_listed_in_connection(S("a,b,,  ,\tX-Bar\t"), S("x-bar")), 1);
    assert_int_equal(px_hdr_listed_in_connection(S("X-Foo-Bar"), S("x-foo")), 0);
    assert_int_equal(px_hdr_listed_in_connection(S("X-Fo"), S("x-foo")), 0);
    assert_int_equal(px_hdr_listed_in_connection(S("xx-foo"), S("x-foo")), 0);
    assert_int_equal(px_hdr_listed_in_connection(S(""), S("x-foo")), 0);
    assert_int_equal(px_hdr_listed_in_connection(S(" , ,"), S("x-foo")), 0);
    /* The value is length-delimited. */
    assert_int_equal(px_hdr_listed_in_connection("close, X-Foo", 5, S("x-foo")), 0);
}

static void test_valid(void **state)
{
    (void)state;
    assert_int_equal(px_hdr_valid(S("Content-Type"), S("text/html; charset=utf-8")), 1);
    assert_int_equal(px_hdr_valid(S("x!#$%&'*+-.^_`|~0"), S("v")), 1);
    assert_int_equal(px_hdr_valid(S("X-Empty"), S("")), 1);
    assert_int_equal(px_hdr_valid(S("X-Tab"), S("a\tb")), 1);
    assert_int_equal(px_hdr_valid(S("X-Utf8"), S("caf\xc3\xa9")), 1);

    assert_int_equal(px_hdr_valid(S("X-Bad"), S("a\rb")), 0);
    assert_int_equal(px_hdr_valid(S("X-Bad"), S("a\nb")), 0);
    assert_int_equal(px_hdr_valid(S("X-Bad"), S("a\r\nSet-Cookie: x=1")), 0);
    assert_int_equal(px_hdr_valid(S("X-Bad"), "a\0b", 3), 0);
    assert_int_equal(px_hdr_valid(S("X-Bad"), S("\n")), 0);

    assert_int_equal(px_hdr_valid(S(""), S("v")), 0);
    const char *bad_names[] = {"X Bad",  "X:Bad",  ":path",  "X-Bad\r",  "X-Bad\n",
                               "X(Bad)", "X/Bad",  "X\"Bad", "X,Bad",    "X;Bad",
                               "X=Bad",  "X@Bad",  "X[Bad]", "X{Bad}",   "X\\Bad",
                               "X?Bad",  "X\tBad", "X\x7f",  "X\xc3\xa9"};
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        if (px_hdr_valid(S(bad_names[i]), S("v")))
            print_error("name \"%s\" accepted\n", bad_names[i]);
        assert_int_equal(px_hdr_valid(S(bad_names[i]), S("v")), 0);
    }
    assert_int_equal(px_hdr_valid("X\0Bad", 5, S("v")), 0);
    assert_int_equal(px_hdr_valid("\0", 1, S("v")), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hop_by_hop),
        cmocka_unit_test(test_edge_metadata),
        cmocka_unit_test(test_listed_in_connection),
        cmocka_unit_test(test_valid),
    };
    return cmocka_run_group_tests_name("px_headers", tests, NULL, NULL);
}
