/* cn_assert: the connector's check of the edge's identity assertions.
 *
 * Part 1 checks cn_assert_check itself with a key pair made here
 * (px_pki_keygen, px_jwt_sign, px_jwt_jwk). Part 2 runs the real request
 * path in memory: the test plays the edge (an nghttp2 client on the
 * connector's tunnel connection, sending registered and ACCESS_KEYS on the
 * control stream) and a fake origin on 127.0.0.1 that counts every
 * connection and byte it gets, so "the origin was never contacted" is
 * asserted, not assumed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cn_assert.h"
#include "cn_origin.h"
#include "fake_origin.h"
#include "mem_world.h"
#include "played_edge.h"
#include "px_control.h"
#include "px_err.h"
#include "px_json.h"
#include "px_jwt.h"
#include "px_pki.h"
#include "test_rng.h"

#include <nghttp2/nghttp2.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define ISSUER "https://edge.test"

/* ---- keys and tokens ---- */

struct keypair {
    char *key;  /* private key PEM */
    char *jwks; /* {"keys":[its public JWK]} as text */
};

static void keypair_make(struct keypair *k)
{
    assert_int_equal(px_pki_keygen(test_rng(), &k->key), 0);
    json_t *jwk = NULL;
    assert_int_equal(px_jwt_jwk(k->key, &jwk), 0);
    json_t *set = json_pack("{s:[o]}", "keys", jwk);
    assert_non_null(set);
    k->jwks = px_json_dumps(set, JSON_COMPACT);
    assert_non_null(k->jwks);
    json_decref(set);
}

static void keypair_free(struct keypair *k)
{
    free(k->key);
    free(k->jwks);
    memset(k, 0, sizeof(*k));
}

/* A JWK Set text holding the public keys of a and b. */
static char *jwks_of_two(const struct keypair *a, const struct keypair *b)
{
    json_t *ja = NULL, *jb = NULL;
    assert_int_equal(px_jwt_jwk(a->key, &ja), 0);
    assert_int_equal(px_jwt_jwk(b->key, &jb), 0);
    json_t *set = json_pack("{s:[o,o]}", "keys", ja, jb);
    assert_non_null(set);
    char *text = px_json_dumps(set, JSON_COMPACT);
    assert_non_null(text);
    json_decref(set);
    return text;
}

/* A token signed with key for aud and iss, expiring at exp (seconds from
 * now). */
static char *token_ex(const char *key, const char *iss, const char *aud, long long exp_in)
{
    long long now = (long long)time(NULL);
    json_t *claims = json_pack("{s:s,s:s,s:s,s:I,s:I}", "iss", iss, "aud", aud, "sub", "CN=laptop",
                               "iat", (json_int_t)now, "exp", (json_int_t)(now + exp_in));
    assert_non_null(claims);
    char *jwt = NULL;
    assert_int_equal(px_jwt_sign(key, claims, &jwt), 0);
    json_decref(claims);
    return jwt;
}

static char *token(const char *key, const char *aud)
{
    return token_ex(key, ISSUER, aud, 300);
}

/* Changes one character in the middle of the signature (the third part). */
static void flip_signature(char *jwt)
{
    char *sig = strrchr(jwt, '.');
    assert_non_null(sig);
    size_t n = strlen(sig + 1);
    assert_true(n > 10);
    char *c = sig + 1 + n / 2;
    *c = *c == 'A' ? 'B' : 'A';
}

static int check(const struct cn_assert_keys *k, const char *jwt, const char *aud)
{
    return cn_assert_check(k, jwt, jwt ? strlen(jwt) : 0, aud, (long long)time(NULL));
}

static struct cn_assert_keys *keys_of(const char *issuer, const char *jwks)
{
    struct cn_assert_keys *k = NULL;
    assert_int_equal(cn_assert_keys_new(issuer, jwks, &k), 0);
    assert_non_null(k);
    return k;
}

/* ---- part 1: cn_assert_check ---- */

static void test_assert_ok(void **state)
{
    (void)state;
    struct keypair kp;
    keypair_make(&kp);
    struct cn_assert_keys *k = keys_of(ISSUER, kp.jwks);
    assert_int_equal(cn_assert_keys_count(k), 1);
    assert_string_equal(cn_assert_keys_issuer(k), ISSUER);
    char *jwt = token(kp.key, "app.example.test");
    assert_int_equal(check(k, jwt, "app.example.test"), PX_JWT_OK);
    /* aud may be an array holding the audience. */
    long long now = (long long)time(NULL);
    json_t *claims = json_pack("{s:s,s:[s,s],s:I}", "iss", ISSUER, "aud", "other",
                               "app.example.test", "exp", (json_int_t)(now + 60));
    char *jwt2 = NULL;
    assert_int_equal(px_jwt_sign(kp.key, claims, &jwt2), 0);
    assert_int_equal(check(k, jwt2, "app.example.test"), PX_JWT_OK);
    json_decref(claims);
    free(jwt2);
    free(jwt);
    cn_assert_keys_free(k);
    keypair_free(&kp);
}

static void test_assert_missing(void **state)
{
    (void)state;
    struct keypair kp;
    keypair_make(&kp);
    struct cn_assert_keys *k = keys_of(ISSUER, kp.jwks);
    assert_int_equal(check(k, NULL, "app.example.test"), PX_JWT_MISSING);
    /* Missing is the answer even before any keys came. */
    assert_int_equal(check(NULL, NULL, "app.example.test"), PX_JWT_MISSING);
    /* An empty header is a token that does not parse. */
    assert_int_equal(cn_assert_check(k, "", 0, "app.example.test", (long long)time(NULL)),
                     PX_JWT_MALFORMED);
    cn_assert_keys_free(k);
    keypair_free(&kp);
}

static void test_assert_expired(void **state)
{
    (void)state;
    struct keypair kp;
    keypair_make(&kp);
    struct cn_assert_keys *k = keys_of(ISSUER, kp.jwks);
    char *old = token_ex(kp.key, ISSUER, "app.example.test", -3600);
    assert_int_equal(check(k, old, "app.example.test"), PX_JWT_EXPIRED);
    free(old);
    /* The leeway: 10 s late is still accepted, a minute late is not. */
    char *late = token_ex(kp.key, ISSUER, "app.example.test", -10);
    assert_int_equal(check(k, late, "app.example.test"), PX_JWT_OK);
    free(late);
    late = token_ex(kp.key, ISSUER, "app.example.test", -(CN_ASSERT_LEEWAY_S + 30));
    assert_int_equal(check(k, late, "app.example.test"), PX_JWT_EXPIRED);
    free(late);
    cn_assert_keys_free(k);
    keypair_free(&kp);
}

static void test_assert_wrong_audience(void **state)
{
    (void)state;
    struct keypair kp;
    keypair_make(&kp);
    struct cn_assert_keys *k = keys_of(ISSUER, kp.jwks);
    char *jwt = token(kp.key, "other.example.test");
    assert_int_equal(check(k, jwt, "app.example.test"), PX_JWT_WRONG_AUDIENCE);
    free(jwt);
    /* Exact comparison: a suffix or a different case is another audience. */
    jwt = token(kp.key, "example.test");
    assert_int_equal(check(k, jwt, "app.example.test"), PX_JWT_WRONG_AUDIENCE);
    free(jwt);
    cn_assert_keys_free(k);
    keypair_free(&kp);
}

static void test_assert_bad_signature(void **state)
{
    (void)state;
    struct keypair kp;
    keypair_make(&kp);
    struct cn_assert_keys *k = keys_of(ISSUER, kp.jwks);
    char *jwt = token(kp.key, "app.example.test");
    flip_signature(jwt);
    assert_int_equal(check(k, jwt, "app.example.test"), PX_JWT_BAD_SIGNATURE);
    free(jwt);
    /* A changed claim (here: the payload swapped for one naming another
     * audience) no longer matches the signature. */
    char *a = token(kp.key, "app.example.test");
    char *b = token(kp.key, "evil.example.test");
    char *a_dot = strchr(a, '.'), *b_dot = strchr(b, '.');
    char *a_sig = strrchr(a, '.'), *b_sig = strrchr(b, '.');
    size_t cap = strlen(a) + strlen(b);
    char *forged = malloc(cap);
    assert_non_null(forged);
    snprintf(forged, cap, "%.*s%.*s%s", (int)(a_dot - a), a, (int)(b_sig - b_dot), b_dot, a_sig);
    assert_int_equal(check(k, forged, "evil.example.test"), PX_JWT_BAD_SIGNATURE);
    free(forged);
    free(a);
    free(b);
    cn_assert_keys_free(k);
    keypair_free(&kp);
}

static void test_assert_unknown_kid(void **state)
{
    (void)state;
    struct keypair kp, stranger;
    keypair_make(&kp);
    keypair_make(&stranger);
    struct cn_assert_keys *k = keys_of(ISSUER, kp.jwks);
    char *jwt = token(stranger.key, "app.example.test");
    assert_int_equal(check(k, jwt, "app.example.test"), PX_JWT_UNKNOWN_KEY);
    free(jwt);
    cn_assert_keys_free(k);
    /* A set holding no usable key refuses every token the same way. */
    k = keys_of(ISSUER, "{\"keys\":[]}");
    assert_int_equal(cn_assert_keys_count(k), 0);
    jwt = token(kp.key, "app.example.test");
    assert_int_equal(check(k, jwt, "app.example.test"), PX_JWT_UNKNOWN_KEY);
    free(jwt);
    cn_assert_keys_free(k);
    keypair_free(&stranger);
    keypair_free(&kp);
}

static void test_assert_wrong_issuer(void **state)
{
    (void)state;
    struct keypair kp;
    keypair_make(&kp);
    struct cn_assert_keys *k = keys_of(ISSUER, kp.jwks);
    char *jwt = token_ex(kp.key, "https://other-edge.test", "app.example.test", 300);
    assert_int_equal(check(k, jwt, "app.example.test"), PX_JWT_WRONG_ISSUER);
    free(jwt);
    cn_assert_keys_free(k);
    keypair_free(&kp);
}

static void test_assert_no_keys_yet(void **state)
{
    (void)state;
    struct keypair kp;
    keypair_make(&kp);
    char *jwt = token(kp.key, "app.example.test");
    assert_int_equal(check(NULL, jwt, "app.example.test"), CN_ASSERT_NO_KEYS);
    assert_non_null(strstr(cn_assert_verdict_str(CN_ASSERT_NO_KEYS), "no keys"));
    free(jwt);
    keypair_free(&kp);
}

static void test_assert_verdict_strings(void **state)
{
    (void)state;
    assert_string_equal(cn_assert_verdict_str(PX_JWT_EXPIRED), "expired");
    assert_string_equal(cn_assert_verdict_str(PX_JWT_WRONG_AUDIENCE), "wrong audience");
    assert_string_equal(cn_assert_verdict_str(PX_JWT_BAD_SIGNATURE), "bad signature");
    assert_string_equal(cn_assert_verdict_str(PX_JWT_MISSING), px_jwt_verdict_str(PX_JWT_MISSING));
}

/* What ACCESS_KEYS may carry that cannot be used: a clear error, nothing
 * kept, nothing leaked. */
static void test_assert_keys_hostile(void **state)
{
    (void)state;
    struct cn_assert_keys *k = (struct cn_assert_keys *)1;
    assert_int_equal(cn_assert_keys_new(NULL, "{\"keys\":[]}", &k), PX_ERR_INVAL);
    assert_null(k);
    assert_int_equal(cn_assert_keys_new("", "{\"keys\":[]}", &k), PX_ERR_INVAL);
    assert_int_equal(cn_assert_keys_new(ISSUER, NULL, &k), PX_ERR_INVAL);
    const char *bad[] = {
        "",
        "not json",
        "[]",
        "{\"keys\":{}}",
        "{\"keys\":[]",
        "{\"keys\":[],\"keys\":[]}",
        /* A P-256 point off the curve (x and y of the RFC 7515 example with one bit of y changed).
         */
        "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"k\","
        "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
        "\"y\":\"x_FEzRu9m37HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        k = (struct cn_assert_keys *)1;
        int rc = cn_assert_keys_new(ISSUER, bad[i], &k);
        if (rc != PX_ERR_INVAL)
            print_error("jwks %s: got %d\n", bad[i], rc);
        assert_int_equal(rc, PX_ERR_INVAL);
        assert_null(k);
    }
    /* Keys of other types are skipped, not an error. */
    k = keys_of(ISSUER,
                "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\",\"kid\":\"r\"}]}");
    assert_int_equal(cn_assert_keys_count(k), 0);
    cn_assert_keys_free(k);
    cn_assert_keys_free(NULL);
    assert_int_equal(cn_assert_keys_count(NULL), 0);
    assert_null(cn_assert_keys_issuer(NULL));
}

/* ---- part 2: the request path, in memory ---- */

/* The fake origin (tests/support/fake_origin.h) on the test's loop: it
 * counts connections and request bytes, answers an HTTP request with 200
 * FO_OK_BODY, a WebSocket upgrade with 101, and leaves a raw TCP
 * connection open. */
static struct mw world;
static struct fake_origin origin;
static struct keypair keys_a, keys_b;

/* The edge, played by the test (tests/support/played_edge). */
static struct played_edge edge;

/* Exchanges for ms milliseconds of wall time, or until a is answered. */
static void run_until(struct pe_answer *a, int ms)
{
    pe_run_until(&edge, a, 0, ms);
}

static void control_send(const struct px_ctl_msg *m)
{
    pe_control_send(&edge, m);
}

static void send_keys(const char *jwks)
{
    struct px_ctl_msg m = {.type = PX_CTL_ACCESS_KEYS, .issuer = ISSUER, .jwks = (char *)jwks};
    control_send(&m);
}

#define NV PE_NV

/* Opens the connector's link, plays the edge up to "registered", and sends
 * jwks (NULL: no ACCESS_KEYS). */
static void link_up(const char *jwks)
{
    pe_link_up(&edge, &world, "locked.fuzz.test");
    if (jwks)
        send_keys(jwks);
}

/* Per-test teardown: the link, the edge's session and the origin's
 * connections go, so a failed test leaves nothing to the next one. */
static int link_down(void **state)
{
    (void)state;
    pe_link_down(&edge);
    int rc = mw_close_all(&world);
    px_buf_consume(&world.link_out, px_buf_len(&world.link_out));
    fo_reset(&origin);
    return rc;
}

/* Sends one request on a new stream and runs until it is answered (or ms
 * passed). body: a request body, or NULL. The variable arguments are more
 * header fields: name, value, ..., NULL. */
static struct pe_answer *request_ex(const char *method, const char *authority, const char *protocol,
                                    const char *body, int ms, ...)
{
    nghttp2_nv extra[12];
    size_t n = 0;
    va_list ap;
    va_start(ap, ms);
    for (const char *name; (name = va_arg(ap, const char *)) != NULL && n < 12;) {
        const char *value = va_arg(ap, const char *);
        extra[n++] = (nghttp2_nv)NV(name, value);
    }
    va_end(ap);
    return pe_request(&edge, method, authority, "/secret", protocol, body, extra, n, ms);
}

#define request(method, authority, ...) request_ex(method, authority, NULL, NULL, 3000, __VA_ARGS__)
#define ASSERTION CN_ASSERT_HEADER

/* A refusal as the brief has it: 403, access_denied, the verdict on the
 * page's first line, and not one byte to the origin. */
static void assert_denied(struct pe_answer *a, const char *verdict)
{
    run_until(NULL, 100); /* give a wrongly started origin request time to connect */
    assert_int_equal(a->status, 403);
    assert_string_equal(a->error, "access_denied");
    const char *page = px_buf_cstr(&a->body);
    char want[128];
    snprintf(want, sizeof(want), "403 Forbidden: access denied: %s\n", verdict);
    if (strncmp(page, want, strlen(want)) != 0)
        print_error("page starts: %.100s\nwanted: %s", page, want);
    assert_true(strncmp(page, want, strlen(want)) == 0);
    assert_int_equal(origin.accepted, 0);
    assert_int_equal(origin.bytes, 0);
}

static void assert_served(struct pe_answer *a)
{
    if (a->status != 200)
        print_error("status %d (%s): %.200s\n", a->status, a->error, px_buf_cstr(&a->body));
    assert_int_equal(a->status, 200);
    assert_string_equal(px_buf_cstr(&a->body), FO_OK_BODY);
    assert_int_equal(origin.accepted, 1);
}

static void test_path_missing_assertion_403_origin_untouched(void **state)
{
    (void)state;
    link_up(keys_a.jwks);
    assert_denied(request("GET", "locked.fuzz.test", NULL), "no assertion");
}

static void test_path_expired_assertion_403_origin_untouched(void **state)
{
    (void)state;
    link_up(keys_a.jwks);
    char *jwt = token_ex(keys_a.key, ISSUER, "locked.fuzz.test", -3600);
    assert_denied(request("GET", "locked.fuzz.test", ASSERTION, jwt, NULL), "expired");
    free(jwt);
}

static void test_path_wrong_audience_403_origin_untouched(void **state)
{
    (void)state;
    link_up(keys_a.jwks);
    /* A valid assertion for another hostname of the same edge. */
    char *jwt = token(keys_a.key, "open.fuzz.test");
    assert_denied(request("GET", "locked.fuzz.test", ASSERTION, jwt, NULL), "wrong audience");
    free(jwt);
}

static void test_path_bad_signature_403_origin_untouched(void **state)
{
    (void)state;
    link_up(keys_a.jwks);
    char *jwt = token(keys_a.key, "locked.fuzz.test");
    flip_signature(jwt);
    assert_denied(request("GET", "locked.fuzz.test", ASSERTION, jwt, NULL), "bad signature");
    free(jwt);
}

static void test_path_unknown_key_and_wrong_issuer_403(void **state)
{
    (void)state;
    link_up(keys_a.jwks);
    char *jwt = token(keys_b.key, "locked.fuzz.test");
    assert_denied(request("GET", "locked.fuzz.test", ASSERTION, jwt, NULL), "unknown signing key");
    free(jwt);
    jwt = token_ex(keys_a.key, "https://elsewhere.test", "locked.fuzz.test", 300);
    assert_denied(request("GET", "locked.fuzz.test", ASSERTION, jwt, NULL), "wrong issuer");
    free(jwt);
    jwt = strdup("not.a.token");
    assert_denied(request("GET", "locked.fuzz.test", ASSERTION, jwt, NULL), "malformed assertion");
    free(jwt);
}

static void test_path_good_assertion_200_reaches_origin(void **state)
{
    (void)state;
    link_up(keys_a.jwks);
    char *jwt = token(keys_a.key, "locked.fuzz.test");
    assert_served(request("GET", "locked.fuzz.test", ASSERTION, jwt, NULL));
    /* The assertion travels on to the origin, which may check it too. */
    assert_non_null(strstr(px_buf_cstr(&origin.heads), jwt));
    /* The host is normalised before it is the audience. */
    struct pe_answer *a = request("GET", "LOCKED.fuzz.test:443", ASSERTION, jwt, NULL);
    assert_int_equal(a->status, 200);
    free(jwt);
}

static void test_path_every_method_refused(void **state)
{
    (void)state;
    link_up(keys_a.jwks);
    const char *methods[] = {"POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "POST"};
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        /* The last one uploads a body, which must go nowhere either. */
        const char *body = i == 6 ? "a body for the origin" : NULL;
        struct pe_answer *a = request_ex(methods[i], "locked.fuzz.test", NULL, body, 3000, NULL);
        run_until(NULL, 50);
        assert_int_equal(a->status, 403);
        assert_string_equal(a->error, "access_denied");
        if (strcmp(methods[i], "HEAD") == 0)
            assert_int_equal(px_buf_len(&a->body), 0);
        assert_int_equal(origin.accepted, 0);
        /* A fresh list for the next method (the answers array is small). */
        px_buf_cleanup(&a->body);
        edge.n_answers--;
    }
}

static void test_path_hello_and_status_rules_refused_too(void **state)
{
    (void)state;
    link_up(keys_a.jwks);
    struct pe_answer *a = request("GET", "hello.fuzz.test", NULL);
    assert_int_equal(a->status, 403);
    assert_null(strstr(px_buf_cstr(&a->body), "Hello from your tunnel"));
    char *jwt = token(keys_a.key, "hello.fuzz.test");
    a = request("GET", "hello.fuzz.test", ASSERTION, jwt, NULL);
    assert_int_equal(a->status, 200);
    assert_non_null(strstr(px_buf_cstr(&a->body), "Hello from your tunnel"));
    free(jwt);
}

static void test_path_websocket_upgrade_refused_403(void **state)
{
    (void)state;
    link_up(keys_a.jwks);
    struct pe_answer *a = request_ex("CONNECT", "locked.fuzz.test", "websocket", NULL, 3000,
                                     "sec-websocket-version", "13", NULL);
    assert_denied(a, "no assertion");
    char *bad = token_ex(keys_a.key, ISSUER, "locked.fuzz.test", -3600);
    a = request_ex("CONNECT", "locked.fuzz.test", "websocket", NULL, 3000, "sec-websocket-version",
                   "13", ASSERTION, bad, NULL);
    assert_denied(a, "expired");
    free(bad);
    /* With a good assertion the upgrade reaches the origin and is answered. */
    char *jwt = token(keys_a.key, "locked.fuzz.test");
    a = request_ex("CONNECT", "locked.fuzz.test", "websocket", NULL, 1000, "sec-websocket-version",
                   "13", ASSERTION, jwt, NULL);
    assert_int_equal(a->status, 200);
    assert_int_equal(origin.accepted, 1);
    assert_non_null(strcasestr(px_buf_cstr(&origin.heads), "upgrade: websocket"));
    free(jwt);
}

static void test_path_tcp_service_refused_403(void **state)
{
    (void)state;
    link_up(keys_a.jwks);
    /* As connector access tcp opens it. */
    struct pe_answer *a = request_ex("CONNECT", "ssh.fuzz.test", "websocket", NULL, 3000, NULL);
    assert_denied(a, "no assertion");
    char *jwt = token(keys_a.key, "ssh.fuzz.test");
    a = request_ex("CONNECT", "ssh.fuzz.test", "websocket", NULL, 1000, ASSERTION, jwt, NULL);
    assert_int_equal(a->status, 200);
    assert_int_equal(origin.accepted, 1);
    free(jwt);
}

static void test_path_no_keys_yet_403_then_keys_arrive(void **state)
{
    (void)state;
    link_up(NULL);
    char *jwt = token(keys_a.key, "locked.fuzz.test");
    assert_denied(request("GET", "locked.fuzz.test", ASSERTION, jwt, NULL),
                  "no keys from the edge to check the assertion");
    /* Rules without access.required are served meanwhile. */
    assert_served(request("GET", "open.fuzz.test", NULL));
    fo_reset(&origin);
    send_keys(keys_a.jwks);
    assert_served(request("GET", "locked.fuzz.test", ASSERTION, jwt, NULL));
    free(jwt);
}

static void test_path_keys_replaced_by_latest_access_keys(void **state)
{
    (void)state;
    link_up(keys_a.jwks);
    char *ja = token(keys_a.key, "locked.fuzz.test");
    char *jb = token(keys_b.key, "locked.fuzz.test");
    /* Rotation: the edge publishes both, then only the new one. */
    char *both = jwks_of_two(&keys_a, &keys_b);
    send_keys(both);
    free(both);
    assert_served(request("GET", "locked.fuzz.test", ASSERTION, jb, NULL));
    fo_reset(&origin);
    assert_served(request("GET", "locked.fuzz.test", ASSERTION, ja, NULL));
    fo_reset(&origin);
    send_keys(keys_b.jwks);
    assert_denied(request("GET", "locked.fuzz.test", ASSERTION, ja, NULL), "unknown signing key");
    /* Keys that cannot be read leave the link with none: refused. */
    send_keys("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"k\","
              "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
              "\"y\":\"x_FEzRu9m37HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}]}");
    assert_non_null(world.cl); /* the link stays up */
    assert_denied(request("GET", "locked.fuzz.test", ASSERTION, jb, NULL),
                  "no keys from the edge to check the assertion");
    free(ja);
    free(jb);
}

static void test_path_rule_audience(void **state)
{
    (void)state;
    link_up(keys_a.jwks);
    char *for_host = token(keys_a.key, "aud.fuzz.test");
    assert_denied(request("GET", "aud.fuzz.test", ASSERTION, for_host, NULL), "wrong audience");
    char *for_aud = token(keys_a.key, "custom-aud");
    assert_served(request("GET", "aud.fuzz.test", ASSERTION, for_aud, NULL));
    free(for_host);
    free(for_aud);
}

static void test_path_repeated_assertion_header_403(void **state)
{
    (void)state;
    link_up(keys_a.jwks);
    char *jwt = token(keys_a.key, "locked.fuzz.test");
    assert_denied(request("GET", "locked.fuzz.test", ASSERTION, jwt, ASSERTION, jwt, NULL),
                  "malformed assertion");
    free(jwt);
}

static void test_path_open_rule_unchanged(void **state)
{
    (void)state;
    link_up(NULL);
    assert_served(request("GET", "open.fuzz.test", NULL));
}

static int group_setup(void **state)
{
    (void)state;
    keypair_make(&keys_a);
    keypair_make(&keys_b);
    /* mw_init makes the loop the origin listens on, and the origin's port
     * goes into the rules: start with a placeholder rule set, then swap in
     * the real one. */
    if (mw_init(&world, "{\"ingress\":[{\"service\":\"http_status:404\"}]}") < 0)
        return -1;
    if (fo_start(&origin, &world.loop) < 0)
        return -1;
    char json[2048];
    snprintf(json, sizeof(json),
             "{\"ingress\":["
             "{\"hostname\":\"locked.fuzz.test\",\"service\":\"http://127.0.0.1:%d\","
             " \"originRequest\":{\"access\":{\"required\":true}}},"
             "{\"hostname\":\"aud.fuzz.test\",\"service\":\"http://127.0.0.1:%d\","
             " \"originRequest\":{\"access\":{\"required\":true,\"audience\":\"custom-aud\"}}},"
             "{\"hostname\":\"ssh.fuzz.test\",\"service\":\"ssh://127.0.0.1:%d\","
             " \"originRequest\":{\"access\":{\"required\":true}}},"
             "{\"hostname\":\"hello.fuzz.test\",\"service\":\"hello_world\","
             " \"originRequest\":{\"access\":{\"required\":true}}},"
             "{\"hostname\":\"open.fuzz.test\",\"service\":\"http://127.0.0.1:%d\"},"
             "{\"service\":\"http_status:404\"}]}",
             origin.port, origin.port, origin.port, origin.port);
    if (mw_set_ingress(&world, json) < 0)
        return -1;
    return cn_origin_new(&world.loop, &world.sup.origin) < 0 ? -1 : 0;
}

static int group_teardown(void **state)
{
    (void)state;
    fo_reset(&origin);
    cn_origin_free(world.sup.origin);
    world.sup.origin = NULL;
    fo_stop(&origin);
    mw_cleanup(&world);
    keypair_free(&keys_a);
    keypair_free(&keys_b);
    return 0;
}

int main(void)
{
    const struct CMUnitTest unit[] = {
        cmocka_unit_test(test_assert_ok),
        cmocka_unit_test(test_assert_missing),
        cmocka_unit_test(test_assert_expired),
        cmocka_unit_test(test_assert_wrong_audience),
        cmocka_unit_test(test_assert_bad_signature),
        cmocka_unit_test(test_assert_unknown_kid),
        cmocka_unit_test(test_assert_wrong_issuer),
        cmocka_unit_test(test_assert_no_keys_yet),
        cmocka_unit_test(test_assert_verdict_strings),
        cmocka_unit_test(test_assert_keys_hostile),
    };
    const struct CMUnitTest path[] = {
        cmocka_unit_test_teardown(test_path_missing_assertion_403_origin_untouched, link_down),
        cmocka_unit_test_teardown(test_path_expired_assertion_403_origin_untouched, link_down),
        cmocka_unit_test_teardown(test_path_wrong_audience_403_origin_untouched, link_down),
        cmocka_unit_test_teardown(test_path_bad_signature_403_origin_untouched, link_down),
        cmocka_unit_test_teardown(test_path_unknown_key_and_wrong_issuer_403, link_down),
        cmocka_unit_test_teardown(test_path_good_assertion_200_reaches_origin, link_down),
        cmocka_unit_test_teardown(test_path_every_method_refused, link_down),
        cmocka_unit_test_teardown(test_path_hello_and_status_rules_refused_too, link_down),
        cmocka_unit_test_teardown(test_path_websocket_upgrade_refused_403, link_down),
        cmocka_unit_test_teardown(test_path_tcp_service_refused_403, link_down),
        cmocka_unit_test_teardown(test_path_no_keys_yet_403_then_keys_arrive, link_down),
        cmocka_unit_test_teardown(test_path_keys_replaced_by_latest_access_keys, link_down),
        cmocka_unit_test_teardown(test_path_rule_audience, link_down),
        cmocka_unit_test_teardown(test_path_repeated_assertion_header_403, link_down),
        cmocka_unit_test_teardown(test_path_open_rule_unchanged, link_down),
    };
    int failed = cmocka_run_group_tests_name("cn_assert", unit, NULL, NULL);
    failed +=
        cmocka_run_group_tests_name("cn_assert request path", path, group_setup, group_teardown);
    return failed;
}
