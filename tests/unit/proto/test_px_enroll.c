/* px_enroll: the enrolment request/response codec. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "px_b64.h"
#include "px_enroll.h"
#include "px_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID "0123456789abcdef0123456789abcdef"
#define PUB "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n"
#define CERT "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
#define PUB_JSON "-----BEGIN PUBLIC KEY-----\\nMFkw\\n-----END PUBLIC KEY-----\\n"

/* Decodes a one-line string (with or without its '\n'). */
static int req_decode(const char *line, struct px_enroll_req *r)
{
    size_t n = strlen(line);
    if (n && line[n - 1] == '\n')
        n--;
    return px_enroll_req_decode(line, n, r);
}

static int resp_decode(const char *line, struct px_enroll_resp *r)
{
    size_t n = strlen(line);
    if (n && line[n - 1] == '\n')
        n--;
    return px_enroll_resp_decode(line, n, r);
}

static void assert_one_line(const char *s)
{
    size_t n = strlen(s);
    assert_true(n > 1);
    assert_int_equal(s[n - 1], '\n');
    assert_null(memchr(s, '\n', n - 1));
}

static void test_req_round_trip(void **state)
{
    (void)state;
    struct px_enroll_req in = {0}, out;
    memcpy(in.tunnel_id, ID, 33);
    for (int i = 0; i < 32; i++)
        in.secret[i] = (uint8_t)(0xf0 ^ i);
    in.public_key_pem = PUB;
    char *line = px_enroll_req_encode(&in);
    assert_non_null(line);
    assert_one_line(line);
    assert_int_equal(req_decode(line, &out), 0);
    assert_string_equal(out.tunnel_id, ID);
    assert_memory_equal(out.secret, in.secret, 32);
    assert_string_equal(out.public_key_pem, PUB);
    px_enroll_req_cleanup(&out);
    assert_null(out.public_key_pem);
    free(line);
}

static void test_resp_round_trip_ok(void **state)
{
    (void)state;
    struct px_enroll_resp in = {.ok = 1, .cert_pem = CERT}, out;
    char *line = px_enroll_resp_encode(&in);
    assert_non_null(line);
    assert_one_line(line);
    assert_int_equal(resp_decode(line, &out), 0);
    assert_int_equal(out.ok, 1);
    assert_string_equal(out.cert_pem, CERT);
    assert_null(out.code);
    px_enroll_resp_cleanup(&out);
    free(line);
}

static void test_resp_round_trip_refused(void **state)
{
    (void)state;
    struct px_enroll_resp in = {.ok = 0, .code = "bad_secret", .message = "wrong \"secret\"\n"},
                          out;
    char *line = px_enroll_resp_encode(&in);
    assert_non_null(line);
    assert_one_line(line);
    assert_int_equal(resp_decode(line, &out), 0);
    assert_int_equal(out.ok, 0);
    assert_string_equal(out.code, "bad_secret");
    assert_string_equal(out.message, "wrong \"secret\"\n");
    assert_null(out.cert_pem);
    px_enroll_resp_cleanup(&out);
    free(line);

    /* Encoder fills in a code when the caller forgot one. */
    struct px_enroll_resp bare = {.ok = 0};
    line = px_enroll_resp_encode(&bare);
    assert_int_equal(resp_decode(line, &out), 0);
    assert_string_equal(out.code, "internal");
    px_enroll_resp_cleanup(&out);
    free(line);
}

static char *req_json(const char *id, const char *secret, const char *pk)
{
    char *out = malloc(4096);
    size_t o = (size_t)snprintf(out, 4096, "{");
    int first = 1;
    const char *parts[] = {id, secret, pk};
    for (int i = 0; i < 3; i++) {
        if (!parts[i])
            continue;
        o += (size_t)snprintf(out + o, 4096 - o, "%s%s", first ? "" : ",", parts[i]);
        first = 0;
    }
    snprintf(out + o, 4096 - o, "}");
    return out;
}

static void expect_req_fail(const char *id, const char *secret, const char *pk, int want)
{
    char *js = req_json(id, secret, pk);
    struct px_enroll_req r;
    int rc = req_decode(js, &r);
    if (rc != want)
        print_error("%s: got %d want %d\n", js, rc, want);
    assert_int_equal(rc, want);
    assert_null(r.public_key_pem);
    free(js);
}

#define ID_F "\"tunnel_id\":\"" ID "\""
#define PK_F "\"public_key\":\"" PUB_JSON "\""

static char *secret_field(size_t len)
{
    static char buf[200];
    uint8_t raw[64];
    memset(raw, 7, sizeof(raw));
    char *b = px_b64_encode(raw, len, 1);
    snprintf(buf, sizeof(buf), "\"secret\":\"%s\"", b);
    free(b);
    return buf;
}

static void test_req_valid_by_hand(void **state)
{
    (void)state;
    char *js = req_json(ID_F, secret_field(32), PK_F);
    struct px_enroll_req r;
    assert_int_equal(req_decode(js, &r), 0);
    assert_int_equal(r.secret[31], 7);
    px_enroll_req_cleanup(&r);
    free(js);
}

static void test_req_bad_secret(void **state)
{
    (void)state;
    expect_req_fail(ID_F, NULL, PK_F, PX_ERR_INVAL);
    expect_req_fail(ID_F, secret_field(0), PK_F, PX_ERR_INVAL);
    expect_req_fail(ID_F, secret_field(31), PK_F, PX_ERR_INVAL);
    expect_req_fail(ID_F, secret_field(33), PK_F, PX_ERR_INVAL);
    expect_req_fail(ID_F, secret_field(64), PK_F, PX_ERR_INVAL);
    expect_req_fail(ID_F, "\"secret\":\"!!!!\"", PK_F, PX_ERR_INVAL);
    expect_req_fail(ID_F, "\"secret\":32", PK_F, PX_ERR_INVAL);
}

static void test_req_bad_key(void **state)
{
    (void)state;
    expect_req_fail(ID_F, secret_field(32), NULL, PX_ERR_INVAL);
    expect_req_fail(ID_F, secret_field(32), "\"public_key\":\"\"", PX_ERR_INVAL);
    expect_req_fail(ID_F, secret_field(32), "\"public_key\":\"MFkwEwYHKoZIzj0CAQ\"", PX_ERR_INVAL);
    expect_req_fail(ID_F, secret_field(32),
                    "\"public_key\":\"-----BEGIN CERTIFICATE-----\\nMIIB\\n\"", PX_ERR_INVAL);
    expect_req_fail(ID_F, secret_field(32), "\"public_key\":{}", PX_ERR_INVAL);
}

static void test_req_bad_id(void **state)
{
    (void)state;
    expect_req_fail(NULL, secret_field(32), PK_F, PX_ERR_INVAL);
    expect_req_fail("\"tunnel_id\":\"abc\"", secret_field(32), PK_F, PX_ERR_INVAL);
    expect_req_fail("\"tunnel_id\":\"0123456789abcdef0123456789abcdef0\"", secret_field(32), PK_F,
                    PX_ERR_INVAL);
    expect_req_fail("\"tunnel_id\":1", secret_field(32), PK_F, PX_ERR_INVAL);
    /* 32 characters, but not lowercase hex */
    expect_req_fail("\"tunnel_id\":\"0123456789ABCDEF0123456789abcdef\"", secret_field(32), PK_F,
                    PX_ERR_INVAL);
    expect_req_fail("\"tunnel_id\":\"0123456789abcdeg0123456789abcdef\"", secret_field(32), PK_F,
                    PX_ERR_INVAL);
    expect_req_fail("\"tunnel_id\":\"../../../../../../etc/passwd/////\"", secret_field(32), PK_F,
                    PX_ERR_INVAL);
}

static void test_req_not_json(void **state)
{
    (void)state;
    struct px_enroll_req r;
    assert_int_equal(req_decode("", &r), PX_ERR_INVAL);
    assert_int_equal(req_decode("GET / HTTP/1.1", &r), PX_ERR_INVAL);
    assert_int_equal(req_decode("[1]", &r), PX_ERR_INVAL);
    char *js = req_json(ID_F, secret_field(32), PK_F);
    /* Duplicate key */
    size_t n = strlen(js);
    char *dup = malloc(n + 64);
    snprintf(dup, n + 64, "%.*s,%s}", (int)(n - 1), js, ID_F);
    assert_int_equal(req_decode(dup, &r), PX_ERR_INVAL);
    free(dup);
    free(js);
}

static void test_req_too_large(void **state)
{
    (void)state;
    char *s = malloc(PX_ENROLL_MAX_LINE + 1);
    memset(s, ' ', PX_ENROLL_MAX_LINE + 1);
    struct px_enroll_req r;
    assert_int_equal(px_enroll_req_decode(s, PX_ENROLL_MAX_LINE + 1, &r), PX_ERR_TOO_LARGE);
    struct px_enroll_resp p;
    assert_int_equal(px_enroll_resp_decode(s, PX_ENROLL_MAX_LINE + 1, &p), PX_ERR_TOO_LARGE);
    free(s);
}

static void expect_resp_fail(const char *line, int want)
{
    struct px_enroll_resp r;
    int rc = resp_decode(line, &r);
    if (rc != want)
        print_error("%s: got %d want %d\n", line, rc, want);
    assert_int_equal(rc, want);
    assert_null(r.cert_pem);
    assert_null(r.code);
    assert_null(r.message);
}

static void test_resp_malformed(void **state)
{
    (void)state;
    expect_resp_fail("", PX_ERR_INVAL);
    expect_resp_fail("nope", PX_ERR_INVAL);
    expect_resp_fail("{}", PX_ERR_INVAL);
    /* ok not boolean */
    expect_resp_fail("{\"ok\":1,\"cert\":\""
                     "-----BEGIN CERTIFICATE-----"
                     "\"}",
                     PX_ERR_INVAL);
    expect_resp_fail("{\"ok\":\"true\",\"cert\":\"-----BEGIN CERTIFICATE-----\"}", PX_ERR_INVAL);
    expect_resp_fail("{\"ok\":null}", PX_ERR_INVAL);
    /* ok without cert, or with something that is not a certificate */
    expect_resp_fail("{\"ok\":true}", PX_ERR_INVAL);
    expect_resp_fail("{\"ok\":true,\"cert\":\"\"}", PX_ERR_INVAL);
    expect_resp_fail("{\"ok\":true,\"cert\":\"MIIB\"}", PX_ERR_INVAL);
    expect_resp_fail("{\"ok\":true,\"cert\":7}", PX_ERR_INVAL);
    /* refusal without code */
    expect_resp_fail("{\"ok\":false}", PX_ERR_INVAL);
    expect_resp_fail("{\"ok\":false,\"message\":\"no\"}", PX_ERR_INVAL);
    expect_resp_fail("{\"ok\":false,\"code\":5}", PX_ERR_INVAL);
    /* duplicate key */
    expect_resp_fail("{\"ok\":false,\"code\":\"a\",\"code\":\"b\"}", PX_ERR_INVAL);
}

static void test_resp_refusal_message_optional(void **state)
{
    (void)state;
    struct px_enroll_resp r;
    assert_int_equal(resp_decode("{\"ok\":false,\"code\":\"internal\"}", &r), 0);
    assert_string_equal(r.code, "internal");
    assert_null(r.message);
    px_enroll_resp_cleanup(&r);
}

static void test_code_permanent(void **state)
{
    (void)state;
    /* Defect 13: the edge answers bad_token for an unknown tunnel and for a
     * wrong secret alike; still final. Older edges' codes stay final too. */
    assert_int_equal(px_enroll_code_permanent("bad_token"), 1);
    assert_int_equal(px_enroll_code_permanent("unknown_tunnel"), 1);
    assert_int_equal(px_enroll_code_permanent("bad_secret"), 1);
    /* Too many failures from this address: wait and retry. */
    assert_int_equal(px_enroll_code_permanent("rate_limited"), 0);
    assert_int_equal(px_enroll_code_permanent("bad_key"), 0);
    assert_int_equal(px_enroll_code_permanent("internal"), 0);
    assert_int_equal(px_enroll_code_permanent("bad_request"), 0);
    assert_int_equal(px_enroll_code_permanent(""), 0);
    assert_int_equal(px_enroll_code_permanent("BAD_SECRET"), 0);
    assert_int_equal(px_enroll_code_permanent("bad_secret "), 0);
    assert_int_equal(px_enroll_code_permanent(NULL), 0);
}

/* The origin CA travels with the certificate; an older edge sends none. */
static void test_resp_origin_ca(void **state)
{
    (void)state;
    struct px_enroll_resp in = {.ok = 1, .cert_pem = CERT, .origin_ca = CERT CERT}, out;
    char *line = px_enroll_resp_encode(&in);
    assert_non_null(line);
    assert_one_line(line);
    assert_non_null(strstr(line, "\"origin_ca\":"));
    assert_int_equal(resp_decode(line, &out), 0);
    assert_string_equal(out.cert_pem, CERT);
    assert_string_equal(out.origin_ca, CERT CERT);
    px_enroll_resp_cleanup(&out);
    assert_null(out.origin_ca);
    free(line);

    /* Without it: not on the wire, NULL after decoding. */
    in.origin_ca = NULL;
    line = px_enroll_resp_encode(&in);
    assert_non_null(line);
    assert_null(strstr(line, "origin_ca"));
    assert_int_equal(resp_decode(line, &out), 0);
    assert_null(out.origin_ca);
    px_enroll_resp_cleanup(&out);
    free(line);

    /* A refusal never carries one. */
    struct px_enroll_resp no = {.ok = 0, .code = "bad_token", .origin_ca = CERT};
    line = px_enroll_resp_encode(&no);
    assert_non_null(line);
    assert_null(strstr(line, "origin_ca"));
    free(line);

    /* Not UTF-8: the encoder refuses rather than dropping it. */
    in.origin_ca = "\xff" CERT;
    assert_null(px_enroll_resp_encode(&in));
}

static void test_resp_origin_ca_hostile(void **state)
{
    (void)state;
#define OKC "{\"ok\":true,\"cert\":\"-----BEGIN CERTIFICATE-----\\nMIIB\\n\""
    expect_resp_fail(OKC ",\"origin_ca\":7}", PX_ERR_INVAL);
    expect_resp_fail(OKC ",\"origin_ca\":null}", PX_ERR_INVAL);
    expect_resp_fail(OKC ",\"origin_ca\":[]}", PX_ERR_INVAL);
    expect_resp_fail(OKC ",\"origin_ca\":\"\"}", PX_ERR_INVAL);
    expect_resp_fail(OKC ",\"origin_ca\":\"MIIB\"}", PX_ERR_INVAL);
    expect_resp_fail(OKC ",\"origin_ca\":\"-----BEGIN PUBLIC KEY-----\"}", PX_ERR_INVAL);
    expect_resp_fail(OKC ",\"origin_ca\":\"-----BEGIN "
                         "CERTIFICATE-----\",\"origin_ca\":\"-----BEGIN CERTIFICATE-----\"}",
                     PX_ERR_INVAL);
    expect_resp_fail(OKC ",\"origin_ca\":\"-----BEGIN\\u0000 CERTIFICATE-----\"}", PX_ERR_INVAL);
    struct px_enroll_resp r;
    assert_int_equal(resp_decode(OKC ",\"origin_ca\":\"-----BEGIN CERTIFICATE-----\\nx\"}", &r), 0);
    assert_string_equal(r.origin_ca, "-----BEGIN CERTIFICATE-----\nx");
    px_enroll_resp_cleanup(&r);
#undef OKC
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_req_round_trip),
        cmocka_unit_test(test_resp_round_trip_ok),
        cmocka_unit_test(test_resp_round_trip_refused),
        cmocka_unit_test(test_req_valid_by_hand),
        cmocka_unit_test(test_req_bad_secret),
        cmocka_unit_test(test_req_bad_key),
        cmocka_unit_test(test_req_bad_id),
        cmocka_unit_test(test_req_not_json),
        cmocka_unit_test(test_req_too_large),
        cmocka_unit_test(test_resp_malformed),
        cmocka_unit_test(test_resp_refusal_message_optional),
        cmocka_unit_test(test_resp_origin_ca),
        cmocka_unit_test(test_resp_origin_ca_hostile),
        cmocka_unit_test(test_code_permanent),
    };
    return cmocka_run_group_tests_name("px_enroll", tests, NULL, NULL);
}
