/* px_token: encode/decode round trip, every validation failure with its error
 * code and reason, and px_split_hostport. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "px_b64.h"
#include "px_err.h"
#include "px_token.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID "0123456789abcdef0123456789abcdef"
#define CA "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

/* base64url of the 32 secret bytes 0x00..0x1f: the reason must never contain it. */
static char *secret_b64;

static void fill_token(struct px_token *t)
{
    memset(t, 0, sizeof(*t));
    memcpy(t->tunnel_id, ID, 33);
    snprintf(t->name, sizeof(t->name), "home-lab");
    for (int i = 0; i < PX_TOKEN_SECRET_LEN; i++)
        t->secret[i] = (uint8_t)i;
    t->edges[0] = strdup("edge1.example:7844");
    t->edges[1] = strdup("[::1]:7844");
    t->n_edges = 2;
    snprintf(t->server_name, sizeof(t->server_name), "tunnel.example");
    t->ca_pem = strdup(CA);
}

static int setup(void **state)
{
    (void)state;
    uint8_t sec[PX_TOKEN_SECRET_LEN];
    for (int i = 0; i < PX_TOKEN_SECRET_LEN; i++)
        sec[i] = (uint8_t)i;
    secret_b64 = px_b64_encode(sec, sizeof(sec), 1);
    return secret_b64 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    free(secret_b64);
    return 0;
}

/* Decodes s expecting failure code want; checks the reason mentions needle
 * (if any), never contains the secret, and the token is left empty. */
static void expect_fail(const char *s, int want, const char *needle)
{
    struct px_token tok;
    char why[256];
    memset(why, 0, sizeof(why));
    int rc = px_token_decode(s, &tok, why, sizeof(why));
    if (rc != want)
        print_error("input %.80s: got %d (%s), want %d\n", s, rc, why, want);
    assert_int_equal(rc, want);
    assert_true(why[0] != '\0');
    assert_null(strchr(why, '\n'));
    if (needle && !strstr(why, needle))
        print_error("reason \"%s\" lacks \"%s\"\n", why, needle);
    if (needle)
        assert_non_null(strstr(why, needle));
    assert_null(strstr(why, secret_b64));
    /* Left empty: nothing owned. */
    assert_int_equal(tok.n_edges, 0);
    assert_null(tok.ca_pem);
}

/* Wraps a JSON text into a token (base64url) and expects failure. */
static void expect_json_fail(const char *json, int want, const char *needle)
{
    char *s = px_b64_encode((const uint8_t *)json, strlen(json), 1);
    assert_non_null(s);
    expect_fail(s, want, needle);
    free(s);
}

/* A JSON token body with every field valid except where overridden by the
 * printf-style fragments: each argument replaces one "key":value pair
 * (pass NULL to drop the field entirely). */
static char *json_token(const char *v, const char *id, const char *secret, const char *edges,
                        const char *sn, const char *ca)
{
    char *out = malloc(8192);
    size_t o = 0;
    const char *parts[] = {v, id, secret, edges, sn, ca};
    o += (size_t)snprintf(out + o, 8192 - o, "{");
    int first = 1;
    for (size_t i = 0; i < 6; i++) {
        if (!parts[i])
            continue;
        o += (size_t)snprintf(out + o, 8192 - o, "%s%s", first ? "" : ",", parts[i]);
        first = 0;
    }
    snprintf(out + o, 8192 - o, "}");
    return out;
}

#define V_OK "\"v\":1"
#define ID_OK "\"tunnel_id\":\"" ID "\""
#define EDGES_OK "\"edges\":[\"edge.example:7844\"]"
#define SN_OK "\"server_name\":\"tunnel.example\""
#define CA_OK "\"ca\":\"-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n\""

static char *secret_field(void)
{
    static char buf[128];
    snprintf(buf, sizeof(buf), "\"secret\":\"%s\"", secret_b64);
    return buf;
}

static void expect_fields_fail(const char *v, const char *id, const char *secret, const char *edges,
                               const char *sn, const char *ca, int want, const char *needle)
{
    char *js = json_token(v, id, secret, edges, sn, ca);
    expect_json_fail(js, want, needle);
    free(js);
}

static void test_json_helper_builds_valid_token(void **state)
{
    (void)state;
    char *js = json_token(V_OK, ID_OK, secret_field(), EDGES_OK, SN_OK, CA_OK);
    char *s = px_b64_encode((const uint8_t *)js, strlen(js), 1);
    struct px_token tok;
    char why[256] = "";
    assert_int_equal(px_token_decode(s, &tok, why, sizeof(why)), 0);
    assert_string_equal(tok.tunnel_id, ID);
    assert_int_equal(tok.n_edges, 1);
    px_token_cleanup(&tok);
    free(s);
    free(js);
}

static void test_round_trip(void **state)
{
    (void)state;
    struct px_token in, out;
    fill_token(&in);
    char *s = px_token_encode(&in);
    assert_non_null(s);
    /* base64url without padding: only the URL alphabet. */
    assert_int_equal(strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
                     strlen(s));
    char why[256] = "";
    assert_int_equal(px_token_decode(s, &out, why, sizeof(why)), 0);
    assert_string_equal(out.tunnel_id, in.tunnel_id);
    assert_string_equal(out.name, in.name);
    assert_memory_equal(out.secret, in.secret, PX_TOKEN_SECRET_LEN);
    assert_int_equal(out.n_edges, 2);
    assert_string_equal(out.edges[0], "edge1.example:7844");
    assert_string_equal(out.edges[1], "[::1]:7844");
    assert_string_equal(out.server_name, "tunnel.example");
    assert_string_equal(out.ca_pem, CA);
    px_token_cleanup(&out);
    px_token_cleanup(&in);
    free(s);
}

static void test_round_trip_max_edges(void **state)
{
    (void)state;
    struct px_token in, out;
    fill_token(&in);
    for (size_t i = in.n_edges; i < PX_TOKEN_MAX_EDGES; i++) {
        char e[64];
        snprintf(e, sizeof(e), "edge%zu.example:%zu", i, 7000 + i);
        in.edges[i] = strdup(e);
    }
    in.n_edges = PX_TOKEN_MAX_EDGES;
    char *s = px_token_encode(&in);
    char why[256] = "";
    assert_int_equal(px_token_decode(s, &out, why, sizeof(why)), 0);
    assert_int_equal(out.n_edges, PX_TOKEN_MAX_EDGES);
    assert_string_equal(out.edges[7], "edge7.example:7007");
    px_token_cleanup(&out);
    px_token_cleanup(&in);
    free(s);
}

static void test_trailing_newline_accepted(void **state)
{
    (void)state;
    struct px_token in, out;
    fill_token(&in);
    char *s = px_token_encode(&in);
    const char *suffixes[] = {"\n", "\r\n", " \n", "\n\n"};
    for (size_t i = 0; i < 4; i++) {
        size_t n = strlen(s) + strlen(suffixes[i]) + 1;
        char *t = malloc(n);
        snprintf(t, n, "%s%s", s, suffixes[i]);
        char why[256] = "";
        assert_int_equal(px_token_decode(t, &out, why, sizeof(why)), 0);
        assert_string_equal(out.tunnel_id, ID);
        px_token_cleanup(&out);
        free(t);
    }
    px_token_cleanup(&in);
    free(s);
}

static void test_empty(void **state)
{
    (void)state;
    expect_fail("", PX_ERR_INVAL, "empty");
}

static void test_whitespace_only(void **state)
{
    (void)state;
    expect_fail("   \r\n\n", PX_ERR_INVAL, "empty");
    /* Tabs and inner spaces are not trimmed: they are simply not base64. */
    expect_fail("\t", PX_ERR_INVAL, "base64");
    expect_fail(" \t ", PX_ERR_INVAL, "base64");
}

static void test_non_base64_chars(void **state)
{
    (void)state;
    expect_fail("eyJ2Ijox$fQ", PX_ERR_INVAL, "base64");
    expect_fail("eyJ2 Ijox", PX_ERR_INVAL, "base64");
    expect_fail("eyJ2Ijox\nfQ", PX_ERR_INVAL, "base64");
    expect_fail("eyJ2Ijox=fQ", PX_ERR_INVAL, "base64");
    expect_fail("\xc3\xa9\xc3\xa9", PX_ERR_INVAL, "base64");
}

static void test_truncated_base64(void **state)
{
    (void)state;
    struct px_token in;
    fill_token(&in);
    char *s = px_token_encode(&in);
    size_t n = strlen(s);
    size_t cuts[] = {1, 2, 3, 4, 5, 17, n / 3, n / 2, n - 8, n - 2, n - 1};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        char *t = strndup(s, cuts[i]);
        /* A length of 4k+1 cannot be base64 at all; any other prefix decodes
         * to a JSON prefix, which is reported as truncated. */
        if (cuts[i] % 4 == 1)
            expect_fail(t, PX_ERR_INVAL, "base64");
        else
            expect_fail(t, PX_ERR_TRUNCATED, "truncated");
        free(t);
    }
    px_token_cleanup(&in);
    free(s);
}

static void test_base64_of_non_json(void **state)
{
    (void)state;
    expect_json_fail("hello, world", PX_ERR_TRUNCATED, "JSON");
    expect_json_fail(" ", PX_ERR_TRUNCATED, "JSON");
    expect_json_fail("{\"v\":1", PX_ERR_TRUNCATED, "JSON");
    expect_json_fail("\x01\x02\x03\xff", PX_ERR_TRUNCATED, "JSON");
}

static void test_json_not_object(void **state)
{
    (void)state;
    expect_json_fail("[1,2,3]", PX_ERR_TRUNCATED, "JSON object");
    expect_json_fail("\"a string\"", PX_ERR_TRUNCATED, "JSON object");
    expect_json_fail("42", PX_ERR_TRUNCATED, "JSON object");
    expect_json_fail("null", PX_ERR_TRUNCATED, "JSON object");
}

static void test_version_missing_or_wrong_type(void **state)
{
    (void)state;
    const char *sec = secret_field();
    expect_fields_fail(NULL, ID_OK, sec, EDGES_OK, SN_OK, CA_OK, PX_ERR_INVAL, "version");
    expect_fields_fail("\"v\":\"1\"", ID_OK, sec, EDGES_OK, SN_OK, CA_OK, PX_ERR_INVAL, "version");
    expect_fields_fail("\"v\":1.0", ID_OK, sec, EDGES_OK, SN_OK, CA_OK, PX_ERR_INVAL, "version");
    expect_fields_fail("\"v\":true", ID_OK, sec, EDGES_OK, SN_OK, CA_OK, PX_ERR_INVAL, "version");
    expect_fields_fail("\"v\":null", ID_OK, sec, EDGES_OK, SN_OK, CA_OK, PX_ERR_INVAL, "version");
}

static void test_version_2(void **state)
{
    (void)state;
    const char *sec = secret_field();
    expect_fields_fail("\"v\":2", ID_OK, sec, EDGES_OK, SN_OK, CA_OK, PX_ERR_VERSION, "version 2");
    expect_fields_fail("\"v\":0", ID_OK, sec, EDGES_OK, SN_OK, CA_OK, PX_ERR_VERSION, "version 0");
    expect_fields_fail("\"v\":-1", ID_OK, sec, EDGES_OK, SN_OK, CA_OK, PX_ERR_VERSION,
                       "version -1");
}

static void test_tunnel_id(void **state)
{
    (void)state;
    const char *sec = secret_field();
    expect_fields_fail(V_OK, NULL, sec, EDGES_OK, SN_OK, CA_OK, PX_ERR_INVAL, "tunnel_id");
    /* 31 and 33 characters */
    expect_fields_fail(V_OK, "\"tunnel_id\":\"0123456789abcdef0123456789abcde\"", sec, EDGES_OK,
                       SN_OK, CA_OK, PX_ERR_INVAL, "tunnel_id");
    expect_fields_fail(V_OK, "\"tunnel_id\":\"0123456789abcdef0123456789abcdef0\"", sec, EDGES_OK,
                       SN_OK, CA_OK, PX_ERR_INVAL, "tunnel_id");
    expect_fields_fail(V_OK, "\"tunnel_id\":\"\"", sec, EDGES_OK, SN_OK, CA_OK, PX_ERR_INVAL,
                       "tunnel_id");
    /* uppercase hex */
    expect_fields_fail(V_OK, "\"tunnel_id\":\"0123456789ABCDEF0123456789abcdef\"", sec, EDGES_OK,
                       SN_OK, CA_OK, PX_ERR_INVAL, "tunnel_id");
    /* non-hex */
    expect_fields_fail(V_OK, "\"tunnel_id\":\"0123456789abcdeg0123456789abcdef\"", sec, EDGES_OK,
                       SN_OK, CA_OK, PX_ERR_INVAL, "tunnel_id");
    /* An embedded NUL is refused by the JSON parser itself. */
    expect_fields_fail(V_OK, "\"tunnel_id\":\"0123456789abcdef\\u00000123456789abcde\"", sec,
                       EDGES_OK, SN_OK, CA_OK, PX_ERR_TRUNCATED, "JSON");
    /* wrong type */
    expect_fields_fail(V_OK, "\"tunnel_id\":12345", sec, EDGES_OK, SN_OK, CA_OK, PX_ERR_INVAL,
                       "tunnel_id");
}

static void test_secret(void **state)
{
    (void)state;
    expect_fields_fail(V_OK, ID_OK, NULL, EDGES_OK, SN_OK, CA_OK, PX_ERR_INVAL, "secret");
    uint8_t raw[40];
    memset(raw, 0x5a, sizeof(raw));
    size_t lens[] = {0, 1, 16, 31, 33, 40};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        char *b = px_b64_encode(raw, lens[i], 1);
        char field[128];
        snprintf(field, sizeof(field), "\"secret\":\"%s\"", b);
        expect_fields_fail(V_OK, ID_OK, field, EDGES_OK, SN_OK, CA_OK, PX_ERR_INVAL, "secret");
        free(b);
    }
    expect_fields_fail(V_OK, ID_OK, "\"secret\":\"not*base64\"", EDGES_OK, SN_OK, CA_OK,
                       PX_ERR_INVAL, "secret");
    expect_fields_fail(V_OK, ID_OK, "\"secret\":42", EDGES_OK, SN_OK, CA_OK, PX_ERR_INVAL,
                       "secret");
}

static void test_edges(void **state)
{
    (void)state;
    const char *sec = secret_field();
    const char *bad[] = {
        NULL,
        "\"edges\":[]",
        "\"edges\":\"edge.example:7844\"",
        "\"edges\":[\"a:1\",\"b:1\",\"c:1\",\"d:1\",\"e:1\",\"f:1\",\"g:1\",\"h:1\",\"i:1\"]",
        "\"edges\":[\"edge.example\"]",
        "\"edges\":[\"edge.example:\"]",
        "\"edges\":[\"edge.example:0\"]",
        "\"edges\":[\"edge.example:70000\"]",
        "\"edges\":[\"edge.example:65536\"]",
        "\"edges\":[\":7844\"]",
        "\"edges\":[\"[::1]\"]",
        "\"edges\":[7844]",
        "\"edges\":[null]",
        "\"edges\":[\"edge.example:7844\",{\"host\":\"x\"}]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_fields_fail(V_OK, ID_OK, sec, bad[i], SN_OK, CA_OK, PX_ERR_INVAL, "edge");
}

static void test_edges_max_accepted(void **state)
{
    (void)state;
    char *js = json_token(
        V_OK, ID_OK, secret_field(),
        "\"edges\":[\"a:1\",\"b:1\",\"c:1\",\"d:1\",\"e:1\",\"f:1\",\"g:1\",\"h:65535\"]", SN_OK,
        CA_OK);
    char *s = px_b64_encode((const uint8_t *)js, strlen(js), 1);
    struct px_token tok;
    char why[256] = "";
    assert_int_equal(px_token_decode(s, &tok, why, sizeof(why)), 0);
    assert_int_equal(tok.n_edges, 8);
    px_token_cleanup(&tok);
    free(s);
    free(js);
}

static void test_server_name(void **state)
{
    (void)state;
    const char *sec = secret_field();
    expect_fields_fail(V_OK, ID_OK, sec, EDGES_OK, NULL, CA_OK, PX_ERR_INVAL, "server_name");
    expect_fields_fail(V_OK, ID_OK, sec, EDGES_OK, "\"server_name\":\"\"", CA_OK, PX_ERR_INVAL,
                       "server_name");
    expect_fields_fail(V_OK, ID_OK, sec, EDGES_OK, "\"server_name\":1", CA_OK, PX_ERR_INVAL,
                       "server_name");
    char big[400];
    int n = snprintf(big, sizeof(big), "\"server_name\":\"");
    memset(big + n, 'a', 256);
    snprintf(big + n + 256, sizeof(big) - (size_t)n - 256, "\"");
    expect_fields_fail(V_OK, ID_OK, sec, EDGES_OK, big, CA_OK, PX_ERR_INVAL, "server_name");
}

static void test_ca(void **state)
{
    (void)state;
    const char *sec = secret_field();
    expect_fields_fail(V_OK, ID_OK, sec, EDGES_OK, SN_OK, NULL, PX_ERR_INVAL, "ca");
    expect_fields_fail(V_OK, ID_OK, sec, EDGES_OK, SN_OK, "\"ca\":\"\"", PX_ERR_INVAL, "ca");
    expect_fields_fail(V_OK, ID_OK, sec, EDGES_OK, SN_OK, "\"ca\":\"MIIBnotpem\"", PX_ERR_INVAL,
                       "ca");
    expect_fields_fail(V_OK, ID_OK, sec, EDGES_OK, SN_OK,
                       "\"ca\":\"-----BEGIN PUBLIC KEY-----\\nMIIB\\n\"", PX_ERR_INVAL, "ca");
    expect_fields_fail(V_OK, ID_OK, sec, EDGES_OK, SN_OK, "\"ca\":[]", PX_ERR_INVAL, "ca");
}

static void test_name_too_long(void **state)
{
    (void)state;
    char js[8192];
    char name[80];
    memset(name, 'n', 65);
    name[65] = '\0';
    snprintf(js, sizeof(js),
             "{" V_OK "," ID_OK ",\"name\":\"%s\",%s," EDGES_OK "," SN_OK "," CA_OK "}", name,
             secret_field());
    expect_json_fail(js, PX_ERR_INVAL, "name");
}

static void test_duplicate_keys(void **state)
{
    (void)state;
    char js[8192];
    snprintf(js, sizeof(js), "{" V_OK "," ID_OK ",%s," EDGES_OK "," SN_OK "," CA_OK ",\"v\":1}",
             secret_field());
    expect_json_fail(js, PX_ERR_TRUNCATED, "JSON");
    /* A second tunnel_id must not silently override the first. */
    snprintf(js, sizeof(js),
             "{" V_OK "," ID_OK ",%s," EDGES_OK "," SN_OK "," CA_OK
             ",\"tunnel_id\":\"ffffffffffffffffffffffffffffffff\"}",
             secret_field());
    expect_json_fail(js, PX_ERR_TRUNCATED, "JSON");
}

static void test_too_long(void **state)
{
    (void)state;
    char *s = malloc(PX_TOKEN_MAX_LEN + 2);
    memset(s, 'A', PX_TOKEN_MAX_LEN + 1);
    s[PX_TOKEN_MAX_LEN + 1] = '\0';
    expect_fail(s, PX_ERR_TOO_LARGE, "16384");
    /* Exactly the limit is not "too large" (it fails later, as JSON). */
    s[PX_TOKEN_MAX_LEN] = '\0';
    struct px_token tok;
    char why[256];
    assert_int_not_equal(px_token_decode(s, &tok, why, sizeof(why)), PX_ERR_TOO_LARGE);
    /* Trailing newline is not counted. */
    s[PX_TOKEN_MAX_LEN] = '\n';
    assert_int_not_equal(px_token_decode(s, &tok, why, sizeof(why)), PX_ERR_TOO_LARGE);
    free(s);
}

static void test_reason_never_contains_secret(void **state)
{
    (void)state;
    /* Every failure that happens after the secret was parsed. */
    const char *sec = secret_field();
    expect_fields_fail(V_OK, ID_OK, sec, "\"edges\":[\"x\"]", SN_OK, CA_OK, PX_ERR_INVAL, NULL);
    expect_fields_fail(V_OK, ID_OK, sec, EDGES_OK, NULL, CA_OK, PX_ERR_INVAL, NULL);
    expect_fields_fail(V_OK, ID_OK, sec, EDGES_OK, SN_OK, NULL, PX_ERR_INVAL, NULL);
    expect_fields_fail("\"v\":7", ID_OK, sec, EDGES_OK, SN_OK, CA_OK, PX_ERR_VERSION, NULL);
    /* A secret of the wrong size must not be echoed either. */
    expect_fields_fail(V_OK, ID_OK, "\"secret\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g\"",
                       EDGES_OK, SN_OK, CA_OK, PX_ERR_INVAL, NULL);
    /* A truncated real token: the reason does not quote the input. */
    struct px_token in;
    fill_token(&in);
    char *s = px_token_encode(&in);
    s[strlen(s) - 3] = '\0';
    struct px_token tok;
    char why[512] = "";
    assert_true(px_token_decode(s, &tok, why, sizeof(why)) < 0);
    assert_null(strstr(why, secret_b64));
    assert_null(strstr(why, s));
    px_token_cleanup(&in);
    free(s);
}

static void test_why_may_be_null(void **state)
{
    (void)state;
    struct px_token tok;
    assert_int_equal(px_token_decode("", &tok, NULL, 0), PX_ERR_INVAL);
    assert_int_equal(px_token_decode("@@@@", &tok, NULL, 0), PX_ERR_INVAL);
    char tiny[4];
    assert_int_equal(px_token_decode("@@@@", &tok, tiny, sizeof(tiny)), PX_ERR_INVAL);
    assert_int_equal(strlen(tiny), 3);
}

static void test_split_hostport(void **state)
{
    (void)state;
    char host[256];
    int port = 0;
    assert_int_equal(px_split_hostport("[::1]:7844", host, sizeof(host), &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 7844);
    assert_int_equal(px_split_hostport("host:1", host, sizeof(host), &port), 0);
    assert_string_equal(host, "host");
    assert_int_equal(port, 1);
    assert_int_equal(px_split_hostport("127.0.0.1:65535", host, sizeof(host), &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 65535);
    assert_int_equal(px_split_hostport("[2001:db8::1]:443", host, sizeof(host), &port), 0);
    assert_string_equal(host, "2001:db8::1");
    assert_int_equal(port, 443);

    const char *bad[] = {"host",   "host:",      ":80",     "host:abc", "host:80x",
                         "host:0", "host:65536", "host:-1", "[::1]",    "[::1]7844",
                         "[]:80",  "[::1:80",    ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        port = -7;
        snprintf(host, sizeof(host), "untouched");
        if (px_split_hostport(bad[i], host, sizeof(host), &port) != PX_ERR_INVAL)
            print_error("accepted \"%s\"\n", bad[i]);
        assert_int_equal(px_split_hostport(bad[i], host, sizeof(host), &port), PX_ERR_INVAL);
        assert_int_equal(port, -7);
        assert_string_equal(host, "untouched");
    }
}

static void test_split_hostport_bounded(void **state)
{
    (void)state;
    char host[8];
    int port;
    assert_int_equal(px_split_hostport("abcdefg:80", host, sizeof(host), &port), 0);
    assert_string_equal(host, "abcdefg");
    assert_int_equal(px_split_hostport("abcdefgh:80", host, sizeof(host), &port), PX_ERR_INVAL);
    assert_int_equal(px_split_hostport("[1:2:3:4:5]:80", host, sizeof(host), &port), PX_ERR_INVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_helper_builds_valid_token),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_round_trip_max_edges),
        cmocka_unit_test(test_trailing_newline_accepted),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_whitespace_only),
        cmocka_unit_test(test_non_base64_chars),
        cmocka_unit_test(test_truncated_base64),
        cmocka_unit_test(test_base64_of_non_json),
        cmocka_unit_test(test_json_not_object),
        cmocka_unit_test(test_version_missing_or_wrong_type),
        cmocka_unit_test(test_version_2),
        cmocka_unit_test(test_tunnel_id),
        cmocka_unit_test(test_secret),
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_edges_max_accepted),
        cmocka_unit_test(test_server_name),
        cmocka_unit_test(test_ca),
        cmocka_unit_test(test_name_too_long),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_reason_never_contains_secret),
        cmocka_unit_test(test_why_may_be_null),
        cmocka_unit_test(test_split_hostport),
        cmocka_unit_test(test_split_hostport_bounded),
    };
    return cmocka_run_group_tests_name("px_token", tests, setup, teardown);
}
