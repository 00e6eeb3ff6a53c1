/* px_headers: which fields may cross a proxy hop. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "px_buf.h"
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
        "X-Forwarded-Proto", "x-forwarded-proto", "X-Request-Id", "X-Real-IP", "x-real-ip",
        "Tunnel-Foo", "tunnel-foo", "TUNNEL-ERROR", "Tunnel-Control", "tunnel-",
        /* defect 7: client forwarding headers are the edge's to set */
        "X-Forwarded-Host", "x-forwarded-host", "X-FORWARDED-HOST", "X-Forwarded-Port",
        "x-forwarded-port", "X-Forwarded-Server", "x-forwarded-server", "Forwarded", "FORWARDED",
        "forwarded",
        /* issue 8: certificate details and the assertion are the edge's */
        "Client-Cert", "client-cert", "CLIENT-CERT-CHAIN", "Client-Cert-Chain",
        "X-Client-Cert-Verified", "x-client-cert-subject-dn", "X-CLIENT-CERT-FINGERPRINT-SHA256",
        "x-client-cert-", "Edge-Access-Jwt-Assertion", "edge-access-jwt-assertion",
        "EDGE-ACCESS-ANYTHING"};
    for (size_t i = 0; i < sizeof(meta) / sizeof(meta[0]); i++) {
        if (!px_hdr_is_edge_metadata(S(meta[i])))
            print_error("%s not edge metadata\n", meta[i]);
        assert_int_equal(px_hdr_is_edge_metadata(S(meta[i])), 1);
    }
    const char *other[] = {"X-Forwarded-For", "X-Forwarded-Protocol",
                           "X-Request",       "Tunnel",
                           "Tunnelx-Foo",     "X-Tunnel-Foo",
                           "Content-Type",    "",
                           "Forwarded-For",   "X-Forwarded-Hosts",
                           "X-Forwarded-Hos", "Forward",
                           "Client-Certs",    "Client-Cert-Chains",
                           "Client-Cer",      "X-Client-Cert",
                           "Edge-Access",     "X-Edge-Access-Jwt-Assertion"};
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
        if (px_hdr_is_edge_metadata(S(other[i])))
            print_error("%s is edge metadata\n", other[i]);
        assert_int_equal(px_hdr_is_edge_metadata(S(other[i])), 0);
    }
    assert_int_equal(px_hdr_is_edge_metadata("Tunne", 5), 0);
    /* Length, not NUL, delimits the name. */
    assert_int_equal(px_hdr_is_edge_metadata("Forwarded-For", 9), 1);
    assert_int_equal(px_hdr_is_edge_metadata("Forwarded", 8), 0);
}

/* Runs px_hdr_forwarded_for and compares with want. */
static void xff(const char *client, size_t max, const char *want, int want_trimmed)
{
    struct px_buf b;
    px_buf_init(&b);
    int trimmed = -1;
    assert_int_equal(px_hdr_forwarded_for(client, strlen(client), "192.0.2.7", max, &b, &trimmed),
                     0);
    assert_int_equal(px_buf_len(&b), strlen(want));
    assert_memory_equal(px_buf_head(&b), want, strlen(want));
    assert_int_equal(trimmed, want_trimmed);
    px_buf_cleanup(&b);
}

static void test_forwarded_for(void **state)
{
    (void)state;
    xff("", 100, "192.0.2.7", 0);
    xff("10.0.0.1", 100, "10.0.0.1, 192.0.2.7", 0);
    xff("10.0.0.1, 10.0.0.2", 100, "10.0.0.1, 10.0.0.2, 192.0.2.7", 0);
    xff(" ,10.0.0.1 , ", 100, "10.0.0.1, 192.0.2.7", 0);
    xff(" , ", 100, "192.0.2.7", 0);
    /* Over the cap: the newest entries that fit, cut at a comma. */
    xff("1.1.1.1, 2.2.2.2, 3.3.3.3", 18, "2.2.2.2, 3.3.3.3, 192.0.2.7", 1);
    xff("1.1.1.1, 2.2.2.2, 3.3.3.3", 16, "2.2.2.2, 3.3.3.3, 192.0.2.7", 1);
    xff("1.1.1.1, 2.2.2.2, 3.3.3.3", 15, "3.3.3.3, 192.0.2.7", 1);
    xff("1.1.1.1,2.2.2.2", 7, "2.2.2.2, 192.0.2.7", 1);
    xff("1.1.1.1, 2.2.2.2", 6, "192.0.2.7", 1);
    xff("1.1.1.1", 0, "192.0.2.7", 1);
    /* One huge entry: dropped whole, the peer stays. */
    char big[20000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    xff(big, PX_XFF_CLIENT_MAX, "192.0.2.7", 1);
    /* Many entries: what is kept fits the cap and ends with the newest. */
    struct px_buf in, out;
    px_buf_init(&in);
    px_buf_init(&out);
    for (int i = 0; i < 3000; i++)
        assert_int_equal(px_buf_append(&in, i ? ", 10.0.0.1" : "10.0.0.9", i ? 10 : 8), 0);
    assert_int_equal(px_buf_append(&in, ", 10.9.9.9", 10), 0);
    int trimmed = 0;
    assert_int_equal(px_hdr_forwarded_for((const char *)px_buf_head(&in), px_buf_len(&in),
                                          "192.0.2.7", PX_XFF_CLIENT_MAX, &out, &trimmed),
                     0);
    assert_int_equal(trimmed, 1);
    const char *o = (const char *)px_buf_head(&out);
    size_t ol = px_buf_len(&out);
    const char *tail = "10.9.9.9, 192.0.2.7";
    assert_true(ol <= PX_XFF_CLIENT_MAX + 2 + 9);
    assert_true(ol > PX_XFF_CLIENT_MAX - 20);
    assert_memory_equal(o + ol - strlen(tail), tail, strlen(tail));
    assert_memory_equal(o, "10.0.0.1, ", 10);
    px_buf_cleanup(&in);
    px_buf_cleanup(&out);
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

/* The name table (px_hdr_valid no longer asks isalnum/strchr) takes
 * exactly RFC 9110's tchar, byte by byte. */
static void test_valid_name_bytes(void **state)
{
    (void)state;
    for (int c = 0; c < 256; c++) {
        char n[1] = {(char)c};
        int tchar = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c != 0 && memchr("!#$%&'*+-.^_`|~", c, 15) != NULL);
        if (px_hdr_valid(n, 1, S("v")) != tchar)
            print_error("byte 0x%02x\n", c);
        assert_int_equal(px_hdr_valid(n, 1, S("v")), tchar);
    }
}

/* The value check reads eight bytes at a time: a CR, LF or NUL is found at
 * every position of every length, and every other byte passes. */
static void test_valid_value_bytes(void **state)
{
    (void)state;
    char v[40];
    for (size_t len = 1; len <= sizeof(v); len++) {
        memset(v, 'a', len);
        assert_int_equal(px_hdr_valid(S("X"), v, len), 1);
        for (size_t at = 0; at < len; at++) {
            const char bad[] = {'\r', '\n', '\0'};
            for (size_t k = 0; k < sizeof(bad); k++) {
                v[at] = bad[k];
                assert_int_equal(px_hdr_valid(S("X"), v, len), 0);
            }
            v[at] = 'a';
        }
    }
    char all[256];
    size_t n = 0;
    for (int c = 1; c < 256; c++)
        if (c != '\r' && c != '\n')
            all[n++] = (char)c;
    assert_int_equal(px_hdr_valid(S("X"), all, n), 1);
    /* Bytes next to the refused ones, and with the high bit set, in every lane. */
    char near[16] = {'\x0c', '\x0e', '\x09', '\x0b', '\x01', '\x8d', '\x8a', '\x80',
                     '\x0c', '\x0e', '\x09', '\x0b', '\x01', '\x8d', '\x8a', '\x80'};
    assert_int_equal(px_hdr_valid(S("X"), near, sizeof(near)), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hop_by_hop),
        cmocka_unit_test(test_edge_metadata),
        cmocka_unit_test(test_forwarded_for),
        cmocka_unit_test(test_listed_in_connection),
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_valid_name_bytes),
        cmocka_unit_test(test_valid_value_bytes),
    };
    return cmocka_run_group_tests_name("px_headers", tests, NULL, NULL);
}
