/* px_control: control-stream message codec and the NDJSON framer. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "px_control.h"
#include "px_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Encodes m, checks it is exactly one line, decodes it back into out. */
static void round_trip(const struct px_ctl_msg *m, struct px_ctl_msg *out)
{
    char *line = px_ctl_encode(m);
    assert_non_null(line);
    size_t n = strlen(line);
    assert_true(n > 1);
    assert_int_equal(line[n - 1], '\n');
    assert_null(memchr(line, '\n', n - 1));
    assert_int_equal(px_ctl_decode(line, n - 1, out), 0);
    assert_int_equal(out->type, m->type);
    free(line);
}

static void test_register_round_trip(void **state)
{
    (void)state;
    char *hosts[] = {"app.example.com", "*.example.org", "x"};
    struct px_ctl_msg m = {
        .type = PX_CTL_REGISTER, .hostnames = hosts, .n_hostnames = 3, .agent = "connector/1.0"};
    struct px_ctl_msg out;
    round_trip(&m, &out);
    assert_int_equal(out.n_hostnames, 3);
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(out.hostnames[i], hosts[i]);
    assert_string_equal(out.agent, "connector/1.0");
    assert_null(out.results);
    assert_null(out.code);
    px_ctl_msg_cleanup(&out);

    /* No agent, no hostnames: still a valid register. */
    struct px_ctl_msg m2 = {.type = PX_CTL_REGISTER};
    round_trip(&m2, &out);
    assert_int_equal(out.n_hostnames, 0);
    assert_null(out.agent);
    px_ctl_msg_cleanup(&out);
}

/* REGISTER names its connector, slot and the edge it dialed; an older
 * connector's REGISTER without them decodes with conn_index -1. */
static void test_register_origin_fields(void **state)
{
    (void)state;
    char *hosts[] = {"app.example.com"};
    struct px_ctl_msg m = {.type = PX_CTL_REGISTER,
                           .hostnames = hosts,
                           .n_hostnames = 1,
                           .connector = "3f2a-replica",
                           .conn_index = 3,
                           .edge = "127.0.0.2:7844"};
    struct px_ctl_msg out;
    round_trip(&m, &out);
    assert_string_equal(out.connector, "3f2a-replica");
    assert_int_equal(out.conn_index, 3);
    assert_string_equal(out.edge, "127.0.0.2:7844");
    px_ctl_msg_cleanup(&out);

    const char *old = "{\"type\":\"register\",\"hostnames\":[\"a.example\"]}";
    assert_int_equal(px_ctl_decode(old, strlen(old), &out), 0);
    assert_int_equal(out.conn_index, -1);
    assert_null(out.connector);
    assert_null(out.edge);
    px_ctl_msg_cleanup(&out);

    const char *bad[] = {
        "{\"type\":\"register\",\"hostnames\":[],\"connector\":\"UPPER\"}",
        "{\"type\":\"register\",\"hostnames\":[],\"connector\":\"\"}",
        "{\"type\":\"register\",\"hostnames\":[],\"connector\":7}",
        "{\"type\":\"register\",\"hostnames\":[],\"index\":64}",
        "{\"type\":\"register\",\"hostnames\":[],\"index\":-1}",
        "{\"type\":\"register\",\"hostnames\":[],\"index\":\"1\"}",
        "{\"type\":\"register\",\"hostnames\":[],\"edge\":\"a b:1\"}",
        "{\"type\":\"register\",\"hostnames\":[],\"edge\":\"\"}",
        /* agent: shown by the edge (JSON, logs): printable ASCII, <= 64 */
        "{\"type\":\"register\",\"hostnames\":[],\"agent\":\"conn\\u00e9\"}",
        "{\"type\":\"register\",\"hostnames\":[],\"agent\":\"a\\u001b[31m\"}",
        "{\"type\":\"register\",\"hostnames\":[],\"agent\":\"\"}",
        "{\"type\":\"register\",\"hostnames\":[],\"agent\":"
        "\"0123456789012345678901234567890123456789012345678901234567890123456789\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(px_ctl_decode(bad[i], strlen(bad[i]), &out), PX_ERR_INVAL);
        px_ctl_msg_cleanup(&out);
    }
}

static void test_registered_round_trip(void **state)
{
    (void)state;
    struct px_ctl_result res[] = {
        {.hostname = "app.example.com", .accepted = 1, .reason = NULL},
        {.hostname = "taken.example.com", .accepted = 0, .reason = "held by another tunnel (x)"},
        {.hostname = "bad..name", .accepted = 0, .reason = "not a valid hostname \"quoted\"\n"},
    };
    struct px_ctl_msg m = {.type = PX_CTL_REGISTERED,
                           .results = res,
                           .n_results = 3,
                           .agent = "home-lab",
                           .conn_id = "0123456789abcdef"};
    struct px_ctl_msg out;
    round_trip(&m, &out);
    assert_int_equal(out.n_results, 3);
    assert_string_equal(out.results[0].hostname, "app.example.com");
    assert_int_equal(out.results[0].accepted, 1);
    assert_null(out.results[0].reason);
    assert_string_equal(out.results[1].hostname, "taken.example.com");
    assert_int_equal(out.results[1].accepted, 0);
    assert_string_equal(out.results[1].reason, "held by another tunnel (x)");
    assert_int_equal(out.results[2].accepted, 0);
    assert_string_equal(out.results[2].reason, "not a valid hostname \"quoted\"\n");
    assert_string_equal(out.agent, "home-lab");
    assert_string_equal(out.conn_id, "0123456789abcdef");
    px_ctl_msg_cleanup(&out);
}

static void test_unregister_round_trip(void **state)
{
    (void)state;
    char *hosts[] = {"app.example.com"};
    struct px_ctl_msg m = {.type = PX_CTL_UNREGISTER,
                           .hostnames = hosts,
                           .n_hostnames = 1,
                           .agent = "ignored for unregister"};
    struct px_ctl_msg out;
    round_trip(&m, &out);
    assert_int_equal(out.n_hostnames, 1);
    assert_string_equal(out.hostnames[0], "app.example.com");
    assert_null(out.agent);
    px_ctl_msg_cleanup(&out);
}

static void test_error_round_trip(void **state)
{
    (void)state;
    struct px_ctl_msg m = {.type = PX_CTL_ERROR,
                           .code = "tunnel_deleted",
                           .message = "this tunnel was deleted",
                           .permanent = 1};
    struct px_ctl_msg out;
    round_trip(&m, &out);
    assert_string_equal(out.code, "tunnel_deleted");
    assert_string_equal(out.message, "this tunnel was deleted");
    assert_int_equal(out.permanent, 1);
    px_ctl_msg_cleanup(&out);

    struct px_ctl_msg m2 = {.type = PX_CTL_ERROR, .code = "overloaded", .permanent = 0};
    round_trip(&m2, &out);
    assert_string_equal(out.code, "overloaded");
    assert_null(out.message);
    assert_null(out.reason);
    assert_int_equal(out.permanent, 0);
    px_ctl_msg_cleanup(&out);

    /* A renewal's refusal says why in reason, which a connector acts on
     * (defect 9.8: it had only the message, text for people). */
    struct px_ctl_msg m4 = {.type = PX_CTL_ERROR,
                            .code = "renew_failed",
                            .message =
                                "this connector enrolled with a token that has been replaced",
                            .reason = PX_CTL_RENEW_TOKEN_REPLACED};
    round_trip(&m4, &out);
    assert_string_equal(out.code, "renew_failed");
    assert_string_equal(out.reason, "token_replaced");
    px_ctl_msg_cleanup(&out);

    /* The encoder never emits an error without a code. */
    struct px_ctl_msg m3 = {.type = PX_CTL_ERROR};
    round_trip(&m3, &out);
    assert_string_equal(out.code, "unknown");
    px_ctl_msg_cleanup(&out);
}

static void test_drain_round_trip(void **state)
{
    (void)state;
    struct px_ctl_msg m = {.type = PX_CTL_DRAIN};
    struct px_ctl_msg out;
    round_trip(&m, &out);
    assert_int_equal(out.type, PX_CTL_DRAIN);
    px_ctl_msg_cleanup(&out);
}

/* A JWK Set as the edge sends it (px_jwt_jwk output; the codec does not
 * judge the keys). */
#define JWKS                                                                                       \
    "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":"                                          \
    "\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","                                             \
    "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\",\"kid\":\"k1\",\"use\":\"sig\","        \
    "\"alg\":\"ES256\"}]}"

static void test_access_keys_round_trip(void **state)
{
    (void)state;
    struct px_ctl_msg m = {
        .type = PX_CTL_ACCESS_KEYS, .issuer = "https://edge.example", .jwks = (char *)JWKS};
    char *line = px_ctl_encode(&m);
    assert_non_null(line);
    /* The wire form: jwks is a JSON object, not a string holding JSON. */
    assert_non_null(strstr(line, "\"type\":\"access_keys\""));
    assert_non_null(strstr(line, "\"jwks\":{\"keys\":[{"));
    free(line);
    struct px_ctl_msg out;
    round_trip(&m, &out);
    assert_string_equal(out.issuer, "https://edge.example");
    assert_string_equal(out.jwks, JWKS); /* compact, key order kept */
    assert_null(out.hostnames);
    assert_null(out.code);
    px_ctl_msg_cleanup(&out);

    /* Whitespace in the text does not reach the wire; no keys is a valid set. */
    struct px_ctl_msg m2 = {
        .type = PX_CTL_ACCESS_KEYS, .issuer = "e", .jwks = " { \"keys\" : [ ] } "};
    round_trip(&m2, &out);
    assert_string_equal(out.jwks, "{\"keys\":[]}");
    px_ctl_msg_cleanup(&out);

    /* An issuer at the limit. */
    char iss[PX_CTL_MAX_ISSUER + 1];
    memset(iss, 'i', PX_CTL_MAX_ISSUER);
    iss[PX_CTL_MAX_ISSUER] = '\0';
    struct px_ctl_msg m3 = {.type = PX_CTL_ACCESS_KEYS, .issuer = iss, .jwks = "{\"keys\":[]}"};
    round_trip(&m3, &out);
    assert_string_equal(out.issuer, iss);
    px_ctl_msg_cleanup(&out);
}

/* The encoder writes nothing the decoder would refuse. */
static void test_access_keys_encode_refuses_invalid(void **state)
{
    (void)state;
    char iss[PX_CTL_MAX_ISSUER + 2];
    memset(iss, 'i', PX_CTL_MAX_ISSUER + 1);
    iss[PX_CTL_MAX_ISSUER + 1] = '\0';
    const struct {
        const char *issuer, *jwks;
    } bad[] = {
        {NULL, "{\"keys\":[]}"},
        {"", "{\"keys\":[]}"},
        {iss, "{\"keys\":[]}"},
        {"e", NULL},
        {"e", ""},
        {"e", "not json"},
        {"e", "[]"},
        {"e", "{}"},
        {"e", "{\"keys\":{}}"},
        {"e", "{\"keys\":\"k\"}"},
        {"e", "{\"keys\":[]} x"},
        {"e", "{\"keys\":[],\"keys\":[]}"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct px_ctl_msg m = {.type = PX_CTL_ACCESS_KEYS,
                               .issuer = (char *)bad[i].issuer,
                               .jwks = (char *)bad[i].jwks};
        char *line = px_ctl_encode(&m);
        if (line)
            print_error("case %zu encoded: %s", i, line);
        assert_null(line);
    }
}

static void test_encode_bad_type(void **state)
{
    (void)state;
    struct px_ctl_msg m = {.type = (enum px_ctl_type)0};
    assert_null(px_ctl_encode(&m));
    m.type = (enum px_ctl_type)99;
    assert_null(px_ctl_encode(&m));
}

static void expect_decode(const char *line, int want)
{
    struct px_ctl_msg m;
    memset(&m, 0x5a, sizeof(m));
    int rc = px_ctl_decode(line, strlen(line), &m);
    if (rc != want)
        print_error("line %.80s: got %d want %d\n", line, rc, want);
    assert_int_equal(rc, want);
    if (rc < 0) {
        /* Left empty: nothing owned. */
        assert_null(m.hostnames);
        assert_null(m.results);
        assert_null(m.code);
        assert_int_equal(m.n_hostnames, 0);
    }
    px_ctl_msg_cleanup(&m);
}

static void test_decode_not_json(void **state)
{
    (void)state;
    expect_decode("", PX_ERR_INVAL);
    expect_decode("hello", PX_ERR_INVAL);
    expect_decode("{\"type\":\"drain\"", PX_ERR_INVAL);
    expect_decode("[\"drain\"]", PX_ERR_INVAL);
    expect_decode("\"drain\"", PX_ERR_INVAL);
    expect_decode("{\"type\":\"drain\"} {\"type\":\"drain\"}", PX_ERR_INVAL);
}

static void test_decode_type(void **state)
{
    (void)state;
    expect_decode("{\"type\":\"drain\"}", 0);
    expect_decode("{\"type\":\"reboot\"}", PX_ERR_INVAL);
    expect_decode("{\"type\":\"DRAIN\"}", PX_ERR_INVAL);
    expect_decode("{\"type\":\"\"}", PX_ERR_INVAL);
    expect_decode("{\"type\":3}", PX_ERR_INVAL);
    expect_decode("{}", PX_ERR_INVAL);
    expect_decode("{\"type\":\"drain\",\"type\":\"drain\"}", PX_ERR_INVAL);
}

static void test_decode_hostnames(void **state)
{
    (void)state;
    expect_decode("{\"type\":\"register\",\"hostnames\":[\"a.example\"]}", 0);
    expect_decode("{\"type\":\"register\"}", PX_ERR_INVAL);
    expect_decode("{\"type\":\"unregister\"}", PX_ERR_INVAL);
    expect_decode("{\"type\":\"register\",\"hostnames\":\"a.example\"}", PX_ERR_INVAL);
    expect_decode("{\"type\":\"register\",\"hostnames\":{\"a\":1}}", PX_ERR_INVAL);
    expect_decode("{\"type\":\"register\",\"hostnames\":[\"a.example\",7]}", PX_ERR_INVAL);
    expect_decode("{\"type\":\"register\",\"hostnames\":[null]}", PX_ERR_INVAL);
    expect_decode("{\"type\":\"register\",\"hostnames\":[\"a.example\",\"\"]}", PX_ERR_INVAL);
    expect_decode("{\"type\":\"unregister\",\"hostnames\":[\"\"]}", PX_ERR_INVAL);
    expect_decode("{\"type\":\"register\",\"hostnames\":[\"a\"],\"agent\":5}", PX_ERR_INVAL);
}

static void test_decode_hostname_too_long(void **state)
{
    (void)state;
    char line[600];
    int n = snprintf(line, sizeof(line), "{\"type\":\"register\",\"hostnames\":[\"");
    memset(line + n, 'a', 254);
    snprintf(line + n + 254, sizeof(line) - (size_t)n - 254, "\"]}");
    expect_decode(line, PX_ERR_INVAL);
    /* 253 is the DNS limit and is fine. */
    memset(line + n, 'a', 253);
    snprintf(line + n + 253, sizeof(line) - (size_t)n - 253, "\"]}");
    expect_decode(line, 0);
}

static char *hostnames_line(const char *type, size_t count)
{
    size_t cap = 64 + count * 16;
    char *s = malloc(cap);
    size_t o = (size_t)snprintf(s, cap, "{\"type\":\"%s\",\"hostnames\":[", type);
    for (size_t i = 0; i < count; i++)
        o += (size_t)snprintf(s + o, cap - o, "%s\"h%zu.ex\"", i ? "," : "", i);
    snprintf(s + o, cap - o, "]}");
    return s;
}

static void test_decode_too_many_hostnames(void **state)
{
    (void)state;
    char *s = hostnames_line("register", PX_CTL_MAX_HOSTNAMES);
    expect_decode(s, 0);
    free(s);
    s = hostnames_line("register", PX_CTL_MAX_HOSTNAMES + 1);
    expect_decode(s, PX_ERR_TOO_LARGE);
    free(s);
    s = hostnames_line("unregister", 1000);
    expect_decode(s, PX_ERR_TOO_LARGE);
    free(s);
}

static void test_decode_results(void **state)
{
    (void)state;
    expect_decode("{\"type\":\"registered\",\"results\":[]}", 0);
    expect_decode("{\"type\":\"registered\"}", PX_ERR_INVAL);
    expect_decode("{\"type\":\"registered\",\"results\":{}}", PX_ERR_INVAL);
    expect_decode("{\"type\":\"registered\",\"results\":[{\"hostname\":\"a\"}]}", PX_ERR_INVAL);
    expect_decode("{\"type\":\"registered\",\"results\":[{\"hostname\":\"a\",\"accepted\":1}]}",
                  PX_ERR_INVAL);
    expect_decode("{\"type\":\"registered\",\"results\":[{\"accepted\":true}]}", PX_ERR_INVAL);
    expect_decode("{\"type\":\"registered\",\"results\":[\"a\"]}", PX_ERR_INVAL);
    expect_decode("{\"type\":\"registered\",\"results\":[{\"hostname\":\"a\",\"accepted\":true},"
                  "{\"hostname\":\"b\",\"accepted\":false,\"reason\":7}]}",
                  PX_ERR_INVAL);
    expect_decode("{\"type\":\"registered\",\"results\":[],\"conn_id\":[]}", PX_ERR_INVAL);
}

static void test_decode_error_msg(void **state)
{
    (void)state;
    expect_decode("{\"type\":\"error\",\"code\":\"x\"}", 0);
    expect_decode("{\"type\":\"error\"}", PX_ERR_INVAL);
    expect_decode("{\"type\":\"error\",\"message\":\"no code\"}", PX_ERR_INVAL);
    expect_decode("{\"type\":\"error\",\"code\":42}", PX_ERR_INVAL);
    expect_decode("{\"type\":\"error\",\"code\":\"x\",\"permanent\":1}", PX_ERR_INVAL);
    expect_decode("{\"type\":\"error\",\"code\":\"x\",\"permanent\":\"true\"}", PX_ERR_INVAL);
    expect_decode("{\"type\":\"error\",\"code\":\"x\",\"permanent\":null}", PX_ERR_INVAL);
    expect_decode("{\"type\":\"error\",\"code\":\"x\",\"reason\":\"token_replaced\"}", 0);
    expect_decode("{\"type\":\"error\",\"code\":\"x\",\"reason\":7}", PX_ERR_INVAL);

    struct px_ctl_msg m;
    const char *l = "{\"type\":\"error\",\"code\":\"x\",\"permanent\":true}";
    assert_int_equal(px_ctl_decode(l, strlen(l), &m), 0);
    assert_int_equal(m.permanent, 1);
    px_ctl_msg_cleanup(&m);
    l = "{\"type\":\"error\",\"code\":\"x\"}";
    assert_int_equal(px_ctl_decode(l, strlen(l), &m), 0);
    assert_int_equal(m.permanent, 0);
    px_ctl_msg_cleanup(&m);
}

static void test_decode_line_too_large(void **state)
{
    (void)state;
    size_t n = PX_CTL_MAX_LINE + 1;
    char *s = malloc(n);
    memset(s, ' ', n);
    memcpy(s, "{\"type\":\"drain\"}", 16);
    struct px_ctl_msg m;
    assert_int_equal(px_ctl_decode(s, n, &m), PX_ERR_TOO_LARGE);
    /* The same at exactly the limit (trailing JSON whitespace) is fine. */
    assert_int_equal(px_ctl_decode(s, n - 1, &m), 0);
    px_ctl_msg_cleanup(&m);
    free(s);
}

static void test_decode_embedded_nul(void **state)
{
    (void)state;
    const char l[] = "{\"type\":\"drain\"}\0garbage";
    struct px_ctl_msg m;
    assert_int_equal(px_ctl_decode(l, sizeof(l) - 1, &m), PX_ERR_INVAL);
}

static void test_decode_access_keys_hostile(void **state)
{
    (void)state;
    expect_decode("{\"type\":\"access_keys\",\"issuer\":\"e\",\"jwks\":{\"keys\":[]}}", 0);
    expect_decode("{\"type\":\"access_keys\",\"issuer\":\"e\",\"jwks\":" JWKS "}", 0);
    /* Members the codec does not know are ignored, as for other types. */
    expect_decode("{\"type\":\"access_keys\",\"issuer\":\"e\",\"jwks\":{\"keys\":[],\"x\":1},"
                  "\"later\":true}",
                  0);
    /* Missing or mistyped members. */
    expect_decode("{\"type\":\"access_keys\"}", PX_ERR_INVAL);
    expect_decode("{\"type\":\"access_keys\",\"jwks\":{\"keys\":[]}}", PX_ERR_INVAL);
    expect_decode("{\"type\":\"access_keys\",\"issuer\":\"e\"}", PX_ERR_INVAL);
    expect_decode("{\"type\":\"access_keys\",\"issuer\":\"\",\"jwks\":{\"keys\":[]}}",
                  PX_ERR_INVAL);
    expect_decode("{\"type\":\"access_keys\",\"issuer\":7,\"jwks\":{\"keys\":[]}}", PX_ERR_INVAL);
    expect_decode("{\"type\":\"access_keys\",\"issuer\":null,\"jwks\":{\"keys\":[]}}",
                  PX_ERR_INVAL);
    expect_decode("{\"type\":\"access_keys\",\"issuer\":[\"e\"],\"jwks\":{\"keys\":[]}}",
                  PX_ERR_INVAL);
    /* jwks as a string holding JSON is not the wire form. */
    expect_decode("{\"type\":\"access_keys\",\"issuer\":\"e\",\"jwks\":\"{\\\"keys\\\":[]}\"}",
                  PX_ERR_INVAL);
    expect_decode("{\"type\":\"access_keys\",\"issuer\":\"e\",\"jwks\":[]}", PX_ERR_INVAL);
    expect_decode("{\"type\":\"access_keys\",\"issuer\":\"e\",\"jwks\":null}", PX_ERR_INVAL);
    expect_decode("{\"type\":\"access_keys\",\"issuer\":\"e\",\"jwks\":{}}", PX_ERR_INVAL);
    expect_decode("{\"type\":\"access_keys\",\"issuer\":\"e\",\"jwks\":{\"keys\":{}}}",
                  PX_ERR_INVAL);
    expect_decode("{\"type\":\"access_keys\",\"issuer\":\"e\",\"jwks\":{\"keys\":null}}",
                  PX_ERR_INVAL);
    /* Duplicate members anywhere in the line. */
    expect_decode(
        "{\"type\":\"access_keys\",\"issuer\":\"e\",\"issuer\":\"f\",\"jwks\":{\"keys\":[]}}",
        PX_ERR_INVAL);
    expect_decode("{\"type\":\"access_keys\",\"issuer\":\"e\",\"jwks\":{\"keys\":[],\"keys\":[]}}",
                  PX_ERR_INVAL);
    /* A NUL inside the issuer would cut it short. */
    expect_decode("{\"type\":\"access_keys\",\"issuer\":\"e\\u0000f\",\"jwks\":{\"keys\":[]}}",
                  PX_ERR_INVAL);
}

static void test_decode_access_keys_limits(void **state)
{
    (void)state;
    /* The issuer: PX_CTL_MAX_ISSUER bytes are fine, one more is not. */
    char line[1024];
    int n = snprintf(line, sizeof(line), "{\"type\":\"access_keys\",\"issuer\":\"");
    memset(line + n, 'i', PX_CTL_MAX_ISSUER);
    snprintf(line + n + PX_CTL_MAX_ISSUER, sizeof(line) - (size_t)n - PX_CTL_MAX_ISSUER,
             "\",\"jwks\":{\"keys\":[]}}");
    expect_decode(line, 0);
    memset(line + n, 'i', PX_CTL_MAX_ISSUER + 1);
    snprintf(line + n + PX_CTL_MAX_ISSUER + 1, sizeof(line) - (size_t)n - PX_CTL_MAX_ISSUER - 1,
             "\",\"jwks\":{\"keys\":[]}}");
    expect_decode(line, PX_ERR_INVAL);

    /* A key set filling the line: a valid line of PX_CTL_MAX_LINE bytes
     * decodes, one of PX_CTL_MAX_LINE + 1 bytes does not. */
    const char *head = "{\"type\":\"access_keys\",\"issuer\":\"e\",\"jwks\":{\"keys\":[\"";
    const char *tail = "\"]}}";
    size_t hl = strlen(head), tl = strlen(tail);
    char *big = malloc(PX_CTL_MAX_LINE + 1);
    assert_non_null(big);
    for (size_t len = PX_CTL_MAX_LINE; len <= PX_CTL_MAX_LINE + 1; len++) {
        memcpy(big, head, hl);
        memset(big + hl, 'k', len - hl - tl);
        memcpy(big + len - tl, tail, tl);
        struct px_ctl_msg m;
        int rc = px_ctl_decode(big, len, &m);
        if (len == PX_CTL_MAX_LINE) {
            assert_int_equal(rc, 0);
            /* All of the set, nothing else of the line. */
            assert_int_equal(strlen(m.jwks), len - strlen("{\"type\":\"access_keys\",\"issuer\":"
                                                          "\"e\",\"jwks\":}"));
            px_ctl_msg_cleanup(&m);
        } else {
            assert_int_equal(rc, PX_ERR_TOO_LARGE);
        }
    }
    free(big);
}

/* ---- ORIGIN_CA, RENEW, RENEWED ---- */

#define CERT_PEM "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
#define KEY_PEM "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n"
#define CERT_JSON "\"-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n\""
#define PEM_MARK "-----BEGIN CERTIFICATE-----"
#define KEY_JSON "\"-----BEGIN PUBLIC KEY-----\\nMFkw\\n-----END PUBLIC KEY-----\\n\""

static void test_pem_messages_round_trip(void **state)
{
    (void)state;
    struct px_ctl_msg out;
    struct px_ctl_msg ca = {.type = PX_CTL_ORIGIN_CA, .pem = CERT_PEM, .kind = "ignored"};
    char *line = px_ctl_encode(&ca);
    assert_non_null(line);
    assert_non_null(strstr(line, "\"type\":\"origin_ca\""));
    assert_null(strstr(line, "\"kind\"")); /* origin_ca has no kind */
    free(line);
    round_trip(&ca, &out);
    assert_string_equal(out.pem, CERT_PEM);
    assert_null(out.kind);
    px_ctl_msg_cleanup(&out);

    const char *kinds[] = {PX_CTL_KIND_TUNNEL, PX_CTL_KIND_ORIGIN_PULL};
    for (size_t i = 0; i < 2; i++) {
        struct px_ctl_msg rn = {.type = PX_CTL_RENEW, .kind = (char *)kinds[i], .pem = KEY_PEM};
        line = px_ctl_encode(&rn);
        assert_non_null(line);
        assert_non_null(strstr(line, "\"type\":\"renew\""));
        free(line);
        round_trip(&rn, &out);
        assert_string_equal(out.kind, kinds[i]);
        assert_string_equal(out.pem, KEY_PEM);
        assert_null(out.code);
        px_ctl_msg_cleanup(&out);

        struct px_ctl_msg rd = {.type = PX_CTL_RENEWED, .kind = (char *)kinds[i], .pem = CERT_PEM};
        line = px_ctl_encode(&rd);
        assert_non_null(line);
        assert_non_null(strstr(line, "\"type\":\"renewed\""));
        free(line);
        round_trip(&rd, &out);
        assert_string_equal(out.kind, kinds[i]);
        assert_string_equal(out.pem, CERT_PEM);
        px_ctl_msg_cleanup(&out);
    }

    /* A certificate chain (two PEM blocks) and a PEM at the limit. */
    struct px_ctl_msg chain = {
        .type = PX_CTL_RENEWED, .kind = PX_CTL_KIND_TUNNEL, .pem = CERT_PEM CERT_PEM};
    round_trip(&chain, &out);
    assert_string_equal(out.pem, CERT_PEM CERT_PEM);
    px_ctl_msg_cleanup(&out);
    char *big = malloc(PX_CTL_MAX_PEM + 1);
    assert_non_null(big);
    memset(big, 'A', PX_CTL_MAX_PEM);
    memcpy(big, CERT_PEM, strlen(CERT_PEM));
    big[PX_CTL_MAX_PEM] = '\0';
    struct px_ctl_msg bigca = {.type = PX_CTL_ORIGIN_CA, .pem = big};
    round_trip(&bigca, &out);
    assert_int_equal(strlen(out.pem), PX_CTL_MAX_PEM);
    px_ctl_msg_cleanup(&out);
    free(big);
}

static void test_kind_valid(void **state)
{
    (void)state;
    assert_int_equal(px_ctl_kind_valid("tunnel"), 1);
    assert_int_equal(px_ctl_kind_valid("origin_pull"), 1);
    assert_int_equal(px_ctl_kind_valid(NULL), 0);
    assert_int_equal(px_ctl_kind_valid(""), 0);
    assert_int_equal(px_ctl_kind_valid("Tunnel"), 0);
    assert_int_equal(px_ctl_kind_valid("tunnel "), 0);
    assert_int_equal(px_ctl_kind_valid("origin-pull"), 0);
    assert_int_equal(px_ctl_kind_valid("origin_pul"), 0);
}

/* The encoder writes nothing the decoder would refuse. */
static void test_pem_messages_encode_refuses_invalid(void **state)
{
    (void)state;
    char *big = malloc(PX_CTL_MAX_PEM + 2);
    assert_non_null(big);
    memset(big, 'A', PX_CTL_MAX_PEM + 1);
    memcpy(big, CERT_PEM, strlen(CERT_PEM));
    big[PX_CTL_MAX_PEM + 1] = '\0';
    const struct {
        enum px_ctl_type type;
        const char *kind, *pem;
    } bad[] = {
        {PX_CTL_ORIGIN_CA, NULL, NULL},
        {PX_CTL_ORIGIN_CA, NULL, ""},
        {PX_CTL_ORIGIN_CA, NULL, KEY_PEM}, /* not a certificate */
        {PX_CTL_ORIGIN_CA, NULL, "MIIB"},
        {PX_CTL_ORIGIN_CA, NULL, big},
        {PX_CTL_ORIGIN_CA, NULL, "\xff\xfe" CERT_PEM}, /* not UTF-8 */
        {PX_CTL_RENEW, NULL, KEY_PEM},
        {PX_CTL_RENEW, "", KEY_PEM},
        {PX_CTL_RENEW, "server", KEY_PEM},
        {PX_CTL_RENEW, "tunnel", NULL},
        {PX_CTL_RENEW, "tunnel", ""},
        {PX_CTL_RENEW, "tunnel", CERT_PEM}, /* renew sends a key, not a certificate */
        {PX_CTL_RENEW, "tunnel", "-----BEGIN PRIVATE KEY-----\nMIGH\n"},
        {PX_CTL_RENEWED, NULL, CERT_PEM},
        {PX_CTL_RENEWED, "TUNNEL", CERT_PEM},
        {PX_CTL_RENEWED, "origin_pull", KEY_PEM},
        {PX_CTL_RENEWED, "origin_pull", big},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct px_ctl_msg m = {
            .type = bad[i].type, .kind = (char *)bad[i].kind, .pem = (char *)bad[i].pem};
        char *line = px_ctl_encode(&m);
        if (line)
            print_error("case %zu encoded: %.100s", i, line);
        assert_null(line);
    }
    free(big);
}

static void expect_pem_decode(const char *line, int want)
{
    struct px_ctl_msg m;
    memset(&m, 0x5a, sizeof(m));
    int rc = px_ctl_decode(line, strlen(line), &m);
    if (rc != want)
        print_error("line %.120s: got %d want %d\n", line, rc, want);
    assert_int_equal(rc, want);
    if (rc < 0) {
        assert_null(m.kind);
        assert_null(m.pem);
    }
    px_ctl_msg_cleanup(&m);
}

static void test_decode_pem_messages_hostile(void **state)
{
    (void)state;
    expect_pem_decode("{\"type\":\"origin_ca\",\"pem\":" CERT_JSON "}", 0);
    expect_pem_decode("{\"type\":\"renew\",\"kind\":\"tunnel\",\"pem\":" KEY_JSON "}", 0);
    expect_pem_decode("{\"type\":\"renewed\",\"kind\":\"origin_pull\",\"pem\":" CERT_JSON "}", 0);
    /* Unknown members are ignored, as for other types. */
    expect_pem_decode("{\"type\":\"renew\",\"kind\":\"tunnel\",\"pem\":" KEY_JSON ",\"x\":[1]}", 0);

    /* Missing or mistyped members. */
    expect_pem_decode("{\"type\":\"origin_ca\"}", PX_ERR_INVAL);
    expect_pem_decode("{\"type\":\"origin_ca\",\"pem\":\"\"}", PX_ERR_INVAL);
    expect_pem_decode("{\"type\":\"origin_ca\",\"pem\":null}", PX_ERR_INVAL);
    expect_pem_decode("{\"type\":\"origin_ca\",\"pem\":7}", PX_ERR_INVAL);
    expect_pem_decode("{\"type\":\"origin_ca\",\"pem\":[" CERT_JSON "]}", PX_ERR_INVAL);
    expect_pem_decode("{\"type\":\"origin_ca\",\"pem\":\"MIIB\"}", PX_ERR_INVAL);
    expect_pem_decode("{\"type\":\"origin_ca\",\"pem\":" KEY_JSON "}", PX_ERR_INVAL);
    expect_pem_decode("{\"type\":\"renew\",\"pem\":" KEY_JSON "}", PX_ERR_INVAL);
    expect_pem_decode("{\"type\":\"renew\",\"kind\":\"tunnel\"}", PX_ERR_INVAL);
    expect_pem_decode("{\"type\":\"renew\",\"kind\":\"\",\"pem\":" KEY_JSON "}", PX_ERR_INVAL);
    expect_pem_decode("{\"type\":\"renew\",\"kind\":\"client\",\"pem\":" KEY_JSON "}",
                      PX_ERR_INVAL);
    expect_pem_decode("{\"type\":\"renew\",\"kind\":1,\"pem\":" KEY_JSON "}", PX_ERR_INVAL);
    expect_pem_decode("{\"type\":\"renew\",\"kind\":[\"tunnel\"],\"pem\":" KEY_JSON "}",
                      PX_ERR_INVAL);
    expect_pem_decode("{\"type\":\"renew\",\"kind\":\"tunnel\",\"pem\":" CERT_JSON "}",
                      PX_ERR_INVAL);
    expect_pem_decode("{\"type\":\"renewed\",\"kind\":\"tunnel\",\"pem\":" KEY_JSON "}",
                      PX_ERR_INVAL);
    expect_pem_decode("{\"type\":\"renewed\",\"kind\":\"tunnel\",\"pem\":{}}", PX_ERR_INVAL);
    expect_pem_decode("{\"type\":\"renewed\",\"pem\":" CERT_JSON "}", PX_ERR_INVAL);
    /* A NUL would cut the kind or the PEM short. */
    expect_pem_decode("{\"type\":\"renew\",\"kind\":\"tunnel\\u0000x\",\"pem\":" KEY_JSON "}",
                      PX_ERR_INVAL);
    expect_pem_decode("{\"type\":\"origin_ca\",\"pem\":\"-----BEGIN CERTIFICATE-----\\u0000\"}",
                      PX_ERR_INVAL);
    /* Duplicate members. */
    expect_pem_decode(
        "{\"type\":\"renew\",\"kind\":\"tunnel\",\"kind\":\"origin_pull\",\"pem\":" KEY_JSON "}",
        PX_ERR_INVAL);
    expect_pem_decode("{\"type\":\"origin_ca\",\"pem\":" CERT_JSON ",\"pem\":" CERT_JSON "}",
                      PX_ERR_INVAL);
    /* Type names are exact. */
    expect_pem_decode("{\"type\":\"Renew\",\"kind\":\"tunnel\",\"pem\":" KEY_JSON "}",
                      PX_ERR_INVAL);
    expect_pem_decode("{\"type\":\"origin-ca\",\"pem\":" CERT_JSON "}", PX_ERR_INVAL);
}

static void test_decode_pem_limit(void **state)
{
    (void)state;
    /* PX_CTL_MAX_PEM bytes of PEM decode; one more does not. */
    const char *head = "{\"type\":\"renewed\",\"kind\":\"tunnel\",\"pem\":\"" PEM_MARK;
    const char *tail = "\"}";
    size_t hl = strlen(head), tl = strlen(tail), ml = strlen(PEM_MARK);
    char *line = malloc(hl + PX_CTL_MAX_PEM + 1 + tl + 1);
    assert_non_null(line);
    for (size_t pl = PX_CTL_MAX_PEM; pl <= PX_CTL_MAX_PEM + 1; pl++) {
        memcpy(line, head, hl);
        memset(line + hl, 'A', pl - ml);
        memcpy(line + hl + pl - ml, tail, tl + 1);
        struct px_ctl_msg m;
        int rc = px_ctl_decode(line, strlen(line), &m);
        if (pl == PX_CTL_MAX_PEM) {
            assert_int_equal(rc, 0);
            assert_int_equal(strlen(m.pem), PX_CTL_MAX_PEM);
            px_ctl_msg_cleanup(&m);
        } else {
            assert_int_equal(rc, PX_ERR_INVAL);
            assert_null(m.pem);
        }
    }
    free(line);
}

/* ---- framer ---- */

struct sink {
    int count;
    enum px_ctl_type types[16];
    char first_host[16][64];
    int fail_at; /* return -42 on this message (1-based), 0 = never */
};

static int on_msg(const struct px_ctl_msg *m, void *arg)
{
    struct sink *s = arg;
    s->count++;
    if (s->count <= 16) {
        s->types[s->count - 1] = m->type;
        snprintf(s->first_host[s->count - 1], sizeof(s->first_host[0]), "%s",
                 m->n_hostnames ? m->hostnames[0] : "");
    }
    if (s->fail_at && s->count == s->fail_at)
        return -42;
    return 0;
}

static const char stream3[] = "{\"type\":\"register\",\"hostnames\":[\"a.example\"]}\n"
                              "{\"type\":\"drain\"}\n"
                              "{\"type\":\"error\",\"code\":\"c\",\"permanent\":true}\n";

static void check_stream3(const struct sink *s)
{
    assert_int_equal(s->count, 3);
    assert_int_equal(s->types[0], PX_CTL_REGISTER);
    assert_string_equal(s->first_host[0], "a.example");
    assert_int_equal(s->types[1], PX_CTL_DRAIN);
    assert_int_equal(s->types[2], PX_CTL_ERROR);
}

static void test_framer_byte_by_byte(void **state)
{
    (void)state;
    struct px_ctl_framer f;
    struct sink s = {0};
    px_ctl_framer_init(&f);
    size_t n = sizeof(stream3) - 1;
    size_t first_nl = (size_t)(strchr(stream3, '\n') - stream3);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(px_ctl_framer_feed(&f, stream3 + i, 1, on_msg, &s), 0);
        /* A message is delivered exactly when its newline arrives. */
        if (i == first_nl - 1)
            assert_int_equal(s.count, 0);
        if (i == first_nl)
            assert_int_equal(s.count, 1);
    }
    check_stream3(&s);
    assert_int_equal(px_buf_len(&f.buf), 0);
    px_ctl_framer_cleanup(&f);
}

static void test_framer_one_feed(void **state)
{
    (void)state;
    struct px_ctl_framer f;
    struct sink s = {0};
    px_ctl_framer_init(&f);
    assert_int_equal(px_ctl_framer_feed(&f, stream3, sizeof(stream3) - 1, on_msg, &s), 0);
    check_stream3(&s);
    px_ctl_framer_cleanup(&f);
}

static void test_framer_odd_splits(void **state)
{
    (void)state;
    size_t n = sizeof(stream3) - 1;
    for (size_t step = 2; step < 40; step += 3) {
        struct px_ctl_framer f;
        struct sink s = {0};
        px_ctl_framer_init(&f);
        for (size_t i = 0; i < n; i += step)
            assert_int_equal(
                px_ctl_framer_feed(&f, stream3 + i, i + step > n ? n - i : step, on_msg, &s), 0);
        check_stream3(&s);
        px_ctl_framer_cleanup(&f);
    }
}

static void test_framer_partial_line_kept(void **state)
{
    (void)state;
    struct px_ctl_framer f;
    struct sink s = {0};
    px_ctl_framer_init(&f);
    const char *a = "{\"type\":\"drain\"}\n{\"type\":";
    assert_int_equal(px_ctl_framer_feed(&f, a, strlen(a), on_msg, &s), 0);
    assert_int_equal(s.count, 1);
    const char *b = "\"drain\"}\n";
    assert_int_equal(px_ctl_framer_feed(&f, b, strlen(b), on_msg, &s), 0);
    assert_int_equal(s.count, 2);
    px_ctl_framer_cleanup(&f);
}

static void test_framer_empty_lines_skipped(void **state)
{
    (void)state;
    struct px_ctl_framer f;
    struct sink s = {0};
    px_ctl_framer_init(&f);
    const char *in = "\n\n{\"type\":\"drain\"}\n\n\n{\"type\":\"drain\"}\n\n";
    assert_int_equal(px_ctl_framer_feed(&f, in, strlen(in), on_msg, &s), 0);
    assert_int_equal(s.count, 2);
    assert_int_equal(px_ctl_framer_feed(&f, "\n", 1, on_msg, &s), 0);
    assert_int_equal(s.count, 2);
    assert_int_equal(px_buf_len(&f.buf), 0);
    px_ctl_framer_cleanup(&f);
}

static void test_framer_crlf(void **state)
{
    (void)state;
    /* CR before LF is JSON whitespace: CRLF-terminated lines decode. */
    struct px_ctl_framer f;
    struct sink s = {0};
    px_ctl_framer_init(&f);
    const char *in = "{\"type\":\"drain\"}\r\n";
    assert_int_equal(px_ctl_framer_feed(&f, in, strlen(in), on_msg, &s), 0);
    assert_int_equal(s.count, 1);
    px_ctl_framer_cleanup(&f);
}

static void test_framer_line_too_large(void **state)
{
    (void)state;
    struct px_ctl_framer f;
    struct sink s = {0};
    px_ctl_framer_init(&f);
    /* Exactly the limit without newline is still pending... */
    char *big = malloc(PX_CTL_MAX_LINE + 1);
    memset(big, ' ', PX_CTL_MAX_LINE + 1);
    assert_int_equal(px_ctl_framer_feed(&f, big, PX_CTL_MAX_LINE, on_msg, &s), 0);
    /* ...one byte more and the peer is misbehaving. */
    assert_int_equal(px_ctl_framer_feed(&f, big, 1, on_msg, &s), PX_ERR_TOO_LARGE);
    assert_int_equal(s.count, 0);
    px_ctl_framer_cleanup(&f);

    /* In one feed, in small pieces, and after a good message. */
    px_ctl_framer_init(&f);
    assert_int_equal(px_ctl_framer_feed(&f, big, PX_CTL_MAX_LINE + 1, on_msg, &s),
                     PX_ERR_TOO_LARGE);
    px_ctl_framer_cleanup(&f);

    px_ctl_framer_init(&f);
    const char *good = "{\"type\":\"drain\"}\n";
    assert_int_equal(px_ctl_framer_feed(&f, good, strlen(good), on_msg, &s), 0);
    assert_int_equal(s.count, 1);
    int rc = 0;
    size_t fed = 0;
    while (rc == 0 && fed < 2 * PX_CTL_MAX_LINE) {
        rc = px_ctl_framer_feed(&f, big, 4096, on_msg, &s);
        fed += 4096;
    }
    assert_int_equal(rc, PX_ERR_TOO_LARGE);
    assert_true(fed <= PX_CTL_MAX_LINE + 4096);
    px_ctl_framer_cleanup(&f);
    free(big);
}

static void test_framer_long_line_with_newline(void **state)
{
    (void)state;
    /* A complete line over the limit is refused by the decoder. */
    struct px_ctl_framer f;
    struct sink s = {0};
    px_ctl_framer_init(&f);
    size_t n = PX_CTL_MAX_LINE + 2;
    char *big = malloc(n);
    memset(big, ' ', n);
    memcpy(big, "{\"type\":\"drain\"}", 16);
    big[n - 1] = '\n';
    assert_int_equal(px_ctl_framer_feed(&f, big, n, on_msg, &s), PX_ERR_TOO_LARGE);
    assert_int_equal(s.count, 0);
    px_ctl_framer_cleanup(&f);
    free(big);
}

static void test_framer_decode_error(void **state)
{
    (void)state;
    struct px_ctl_framer f;
    struct sink s = {0};
    px_ctl_framer_init(&f);
    const char *in = "{\"type\":\"drain\"}\nnot json\n{\"type\":\"drain\"}\n";
    assert_int_equal(px_ctl_framer_feed(&f, in, strlen(in), on_msg, &s), PX_ERR_INVAL);
    assert_int_equal(s.count, 1);
    px_ctl_framer_cleanup(&f);
}

static void test_framer_callback_error(void **state)
{
    (void)state;
    struct px_ctl_framer f;
    struct sink s = {.fail_at = 2};
    px_ctl_framer_init(&f);
    assert_int_equal(px_ctl_framer_feed(&f, stream3, sizeof(stream3) - 1, on_msg, &s), -42);
    /* Delivery stops at the failing message. */
    assert_int_equal(s.count, 2);
    px_ctl_framer_cleanup(&f);
}

static void test_framer_empty_feed(void **state)
{
    (void)state;
    struct px_ctl_framer f;
    struct sink s = {0};
    px_ctl_framer_init(&f);
    assert_int_equal(px_ctl_framer_feed(&f, "{\"type\":", 8, on_msg, &s), 0);
    assert_int_equal(px_ctl_framer_feed(&f, "", 0, on_msg, &s), 0);
    assert_int_equal(px_ctl_framer_feed(&f, "\"drain\"}\n", 9, on_msg, &s), 0);
    assert_int_equal(s.count, 1);
    px_ctl_framer_cleanup(&f);
}

/* The framer hands ACCESS_KEYS to its callback like any other message. */
static int on_keys(const struct px_ctl_msg *m, void *arg)
{
    char **jwks = arg;
    if (m->type != PX_CTL_ACCESS_KEYS)
        return -1;
    free(*jwks);
    *jwks = strdup(m->jwks);
    return 0;
}

static void test_framer_access_keys(void **state)
{
    (void)state;
    struct px_ctl_framer f;
    char *jwks = NULL;
    px_ctl_framer_init(&f);
    const char *in = "{\"type\":\"access_keys\",\"issuer\":\"e\",\"jwks\":{\"keys\":[]}}\n"
                     "{\"type\":\"access_keys\",\"issuer\":\"e\",\"jwks\":" JWKS "}\n";
    for (size_t i = 0; i < strlen(in); i++)
        assert_int_equal(px_ctl_framer_feed(&f, in + i, 1, on_keys, &jwks), 0);
    assert_non_null(jwks);
    assert_string_equal(jwks, JWKS); /* the latest */
    free(jwks);
    px_ctl_framer_cleanup(&f);
}

static void test_framer_pem_messages(void **state)
{
    (void)state;
    const char s[] = "{\"type\":\"origin_ca\",\"pem\":" CERT_JSON "}\n"
                     "{\"type\":\"renew\",\"kind\":\"origin_pull\",\"pem\":" KEY_JSON "}\n"
                     "{\"type\":\"renewed\",\"kind\":\"tunnel\",\"pem\":" CERT_JSON "}\n"
                     "{\"type\":\"renewed\",\"kind\":\"nope\",\"pem\":" CERT_JSON "}\n"
                     "{\"type\":\"drain\"}\n";
    struct px_ctl_framer f;
    struct sink sk = {0};
    px_ctl_framer_init(&f);
    /* The bad fourth line stops the stream after three messages. */
    assert_int_equal(px_ctl_framer_feed(&f, s, sizeof(s) - 1, on_msg, &sk), PX_ERR_INVAL);
    assert_int_equal(sk.count, 3);
    assert_int_equal(sk.types[0], PX_CTL_ORIGIN_CA);
    assert_int_equal(sk.types[1], PX_CTL_RENEW);
    assert_int_equal(sk.types[2], PX_CTL_RENEWED);
    px_ctl_framer_cleanup(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_register_round_trip),
        cmocka_unit_test(test_register_origin_fields),
        cmocka_unit_test(test_registered_round_trip),
        cmocka_unit_test(test_unregister_round_trip),
        cmocka_unit_test(test_error_round_trip),
        cmocka_unit_test(test_drain_round_trip),
        cmocka_unit_test(test_access_keys_round_trip),
        cmocka_unit_test(test_access_keys_encode_refuses_invalid),
        cmocka_unit_test(test_encode_bad_type),
        cmocka_unit_test(test_decode_not_json),
        cmocka_unit_test(test_decode_type),
        cmocka_unit_test(test_decode_hostnames),
        cmocka_unit_test(test_decode_hostname_too_long),
        cmocka_unit_test(test_decode_too_many_hostnames),
        cmocka_unit_test(test_decode_results),
        cmocka_unit_test(test_decode_error_msg),
        cmocka_unit_test(test_decode_line_too_large),
        cmocka_unit_test(test_decode_embedded_nul),
        cmocka_unit_test(test_decode_access_keys_hostile),
        cmocka_unit_test(test_decode_access_keys_limits),
        cmocka_unit_test(test_pem_messages_round_trip),
        cmocka_unit_test(test_kind_valid),
        cmocka_unit_test(test_pem_messages_encode_refuses_invalid),
        cmocka_unit_test(test_decode_pem_messages_hostile),
        cmocka_unit_test(test_decode_pem_limit),
        cmocka_unit_test(test_framer_pem_messages),
        cmocka_unit_test(test_framer_access_keys),
        cmocka_unit_test(test_framer_byte_by_byte),
        cmocka_unit_test(test_framer_one_feed),
        cmocka_unit_test(test_framer_odd_splits),
        cmocka_unit_test(test_framer_partial_line_kept),
        cmocka_unit_test(test_framer_empty_lines_skipped),
        cmocka_unit_test(test_framer_crlf),
        cmocka_unit_test(test_framer_line_too_large),
        cmocka_unit_test(test_framer_long_line_with_newline),
        cmocka_unit_test(test_framer_decode_error),
        cmocka_unit_test(test_framer_callback_error),
        cmocka_unit_test(test_framer_empty_feed),
    };
    return cmocka_run_group_tests_name("px_control", tests, NULL, NULL);
}
