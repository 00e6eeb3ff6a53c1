/* Allocation failure in the codecs: for each operation, the n-th allocation
 * fails, for n = 1, 2, ... until a run completes without reaching n. Every
 * run must end in a clean error (the documented error value) or in the
 * correct result; never a crash, a leak (LeakSanitizer checks at exit) or a
 * wrong "success". See failalloc.h for what the failing allocator covers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "failalloc.h"

#include "cn_assert.h"
#include "cn_ingress.h"
#include "px_b64.h"
#include "px_control.h"
#include "px_enroll.h"
#include "px_err.h"
#include "px_errpage.h"
#include "px_json.h"
#include "px_jwt.h"
#include "px_pki.h"
#include "px_token.h"
#include "test_rng.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* An operation under test: runs armed, calls fa_disarm() as soon as the call
 * under test returned (checking allocates too), then returns 0 for the
 * correct result, 1 for a clean error, -1 for anything else. A clean error
 * is any error return: the JSON codecs cannot tell "no memory" from "bad
 * input" (jansson reports both as a parse failure), so they may say
 * PX_ERR_INVAL for either. */
typedef int (*op_fn)(void);

/* json_fails: whether jansson's own allocations fail too (see failalloc.h:
 * not while it parses). */
static long sweep(const char *name, op_fn op, int json_fails)
{
    fa_json_fails = json_fails;
    fa_disarm();
    if (op() != 0)
        fail_msg("%s: fails without an allocation failure", name);
    for (long n = 1;; n++) {
        fa_arm(n);
        int r = op();
        int hit = fa_failed();
        fa_disarm();
        if (r < 0)
            fail_msg("%s: with allocation #%ld failing, the result is wrong", name, n);
        if (getenv("FA_TRACE"))
            print_message("%s #%ld: %s\n", name, n, r ? "clean error" : "absorbed");
        if (!hit) {
            if (r != 0)
                fail_msg("%s: a clean error without an allocation failure", name);
            return n - 1;
        }
    }
}

/* Encoders: everything may fail. Decoders: all but jansson's parser. */
#define SWEEP(op) SWEEP_(op, 1)
#define SWEEP_DECODE(op) SWEEP_(op, 0)
#define SWEEP_(op, json_fails)                                                                     \
    do {                                                                                           \
        long k = sweep(#op, op, json_fails);                                                       \
        print_message("%-28s %ld allocation(s), each made to fail once\n", #op, k);                \
    } while (0)

/* ---- px_token ---- */

static char *token_text;

static void fill_token(struct px_token *t)
{
    memset(t, 0, sizeof(*t));
    snprintf(t->tunnel_id, sizeof(t->tunnel_id), "0123456789abcdef0123456789abcdef");
    snprintf(t->name, sizeof(t->name), "home-lab");
    for (int i = 0; i < PX_TOKEN_SECRET_LEN; i++)
        t->secret[i] = (uint8_t)i;
    t->edges[0] = strdup("edge1.example:7844");
    t->edges[1] = strdup("[::1]:7844");
    t->n_edges = 2;
    snprintf(t->server_name, sizeof(t->server_name), "tunnel.example");
    t->ca_pem = strdup("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
}

static int op_token_encode(void)
{
    struct px_token t;
    long n = fa_target;
    fa_disarm(); /* building the input is not under test */
    fill_token(&t);
    fa_arm(n);
    char *s = px_token_encode(&t);
    fa_disarm();
    int r = !s ? 1 : strcmp(s, token_text) == 0 ? 0 : -1;
    free(s);
    px_token_cleanup(&t);
    return r;
}

static int op_token_decode(void)
{
    struct px_token t;
    char why[200] = "";
    int rc = px_token_decode(token_text, &t, why, sizeof(why));
    fa_disarm();
    if (rc < 0)
        return why[0] ? 1 : -1; /* jansson does not say "no memory": any error is clean */
    int r = strcmp(t.name, "home-lab") == 0 && t.n_edges == 2 && t.edges[1] &&
                    strcmp(t.edges[1], "[::1]:7844") == 0 && t.ca_pem && t.secret[31] == 31
                ? 0
                : -1;
    px_token_cleanup(&t);
    return r;
}

/* ---- px_control ---- */

static const char ctl_lines[] =
    "{\"type\":\"register\",\"hostnames\":[\"a.example\",\"*.b.example\"],\"agent\":\"c/1\"}\n"
    "{\"type\":\"registered\",\"results\":[{\"hostname\":\"a.example\",\"accepted\":true},"
    "{\"hostname\":\"*.b.example\",\"accepted\":false,\"reason\":\"taken\"}],\"tunnel\":\"t\","
    "\"conn_id\":\"0123456789abcdef\"}\n"
    "{\"type\":\"error\",\"code\":\"x\",\"message\":\"m\",\"permanent\":true}\n"
    "{\"type\":\"drain\"}\n";

static char *ctl_encoded[4];
static int ctl_seen;

static int collect(const struct px_ctl_msg *m, void *arg)
{
    (void)arg;
    char *line = px_ctl_encode(m); /* may fail too: part of the callback's work */
    if (!line)
        return PX_ERR_NOMEM;
    int same = ctl_seen < 4 && ctl_encoded[ctl_seen] && strcmp(line, ctl_encoded[ctl_seen]) == 0;
    free(line);
    ctl_seen++;
    return same ? 0 : PX_ERR_INVAL;
}

static int op_control_framer(void)
{
    struct px_ctl_framer f;
    px_ctl_framer_init(&f);
    ctl_seen = 0;
    int rc = 0;
    /* In two pieces, so a line spans feeds. */
    size_t half = sizeof(ctl_lines) / 2;
    rc = px_ctl_framer_feed(&f, ctl_lines, half, collect, NULL);
    if (rc == 0)
        rc = px_ctl_framer_feed(&f, ctl_lines + half, sizeof(ctl_lines) - 1 - half, collect, NULL);
    fa_disarm();
    px_ctl_framer_cleanup(&f);
    if (rc < 0)
        return 1;
    return ctl_seen == 4 ? 0 : -1;
}

static struct px_ctl_msg ctl_registered; /* decoded once, for the encoder */

static int op_control_decode(void)
{
    const char *line = strchr(ctl_lines, '\n') + 1; /* the "registered" line */
    const char *nl = strchr(line, '\n');
    struct px_ctl_msg m;
    int rc = px_ctl_decode(line, (size_t)(nl - line), &m);
    fa_disarm();
    if (rc < 0)
        return 1;
    int r = m.type == PX_CTL_REGISTERED && m.n_results == 2 && m.results[1].reason &&
                    strcmp(m.results[1].reason, "taken") == 0 && m.agent && m.conn_id
                ? 0
                : -1;
    px_ctl_msg_cleanup(&m);
    return r;
}

static int op_control_encode(void)
{
    char *line = px_ctl_encode(&ctl_registered);
    fa_disarm();
    int r = !line ? 1 : strcmp(line, ctl_encoded[1]) == 0 ? 0 : -1;
    free(line);
    return r;
}

/* ACCESS_KEYS and the connector's keys built from it. The key set is made
 * in setup (a real P-256 key), with a token it verifies. */
#define ACCESS_ISSUER "https://edge.example"
static char *access_jwks, *access_line, *access_token;

static int op_access_keys_decode(void)
{
    struct px_ctl_msg m;
    int rc = px_ctl_decode(access_line, strlen(access_line) - 1, &m);
    fa_disarm();
    if (rc < 0)
        return 1;
    int r = m.type == PX_CTL_ACCESS_KEYS && m.issuer && strcmp(m.issuer, ACCESS_ISSUER) == 0 &&
                    m.jwks && strcmp(m.jwks, access_jwks) == 0
                ? 0
                : -1;
    px_ctl_msg_cleanup(&m);
    return r;
}

/* The encoder parses the key set back into JSON: a decoder as far as
 * jansson's parser is concerned (see failalloc.h). */
static int op_access_keys_encode(void)
{
    struct px_ctl_msg m = {
        .type = PX_CTL_ACCESS_KEYS, .issuer = ACCESS_ISSUER, .jwks = access_jwks};
    char *line = px_ctl_encode(&m);
    fa_disarm();
    int r = !line ? 1 : strcmp(line, access_line) == 0 ? 0 : -1;
    free(line);
    return r;
}

/* A link's keys, then one check with them: every failure is a clean error,
 * never a verdict that lets a request through or refuses it for a wrong
 * reason. */
static int op_assert_keys_and_check(void)
{
    struct cn_assert_keys *k = NULL;
    int rc = cn_assert_keys_new(ACCESS_ISSUER, access_jwks, &k);
    if (rc < 0) {
        fa_disarm();
        return k ? -1 : 1;
    }
    int v = cn_assert_check(k, access_token, strlen(access_token), "app.example", time(NULL));
    fa_disarm();
    int r = v == PX_JWT_OK && cn_assert_keys_count(k) == 1 ? 0 : v == PX_ERR_NOMEM ? 1 : -1;
    if (r < 0)
        print_message("cn_assert_check: %d (%s)\n", v, cn_assert_verdict_str(v));
    cn_assert_keys_free(k);
    return r;
}

static int make_access_fixtures(void)
{
    char *key = NULL;
    json_t *jwk = NULL, *set = NULL, *claims = NULL;
    int rc = -1;
    if (px_pki_keygen(test_rng(), &key) < 0 || px_jwt_jwk(key, &jwk) < 0)
        goto out;
    set = json_pack("{s:[O]}", "keys", jwk);
    access_jwks = set ? px_json_dumps(set, JSON_COMPACT) : NULL;
    struct px_ctl_msg m = {
        .type = PX_CTL_ACCESS_KEYS, .issuer = ACCESS_ISSUER, .jwks = access_jwks};
    access_line = access_jwks ? px_ctl_encode(&m) : NULL;
    claims = json_pack("{s:s,s:s,s:I}", "iss", ACCESS_ISSUER, "aud", "app.example", "exp",
                       (json_int_t)time(NULL) + 600);
    if (access_line && claims && px_jwt_sign(key, claims, &access_token) == 0)
        rc = 0;
out:
    json_decref(claims);
    json_decref(set);
    json_decref(jwk);
    free(key);
    return rc;
}

/* ---- px_enroll ---- */

static char *enroll_req_line, *enroll_resp_line;
static const char pub_pem[] = "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n";

static void fill_req(struct px_enroll_req *r)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->tunnel_id, sizeof(r->tunnel_id), "0123456789abcdef0123456789abcdef");
    memset(r->secret, 7, sizeof(r->secret));
    r->public_key_pem = (char *)pub_pem;
}

static int op_enroll_req_encode(void)
{
    struct px_enroll_req r;
    fill_req(&r);
    char *line = px_enroll_req_encode(&r);
    fa_disarm();
    int res = !line ? 1 : strcmp(line, enroll_req_line) == 0 ? 0 : -1;
    free(line);
    return res;
}

static int op_enroll_req_decode(void)
{
    struct px_enroll_req back;
    int rc = px_enroll_req_decode(enroll_req_line, strlen(enroll_req_line) - 1, &back);
    fa_disarm();
    if (rc < 0)
        return 1;
    int res =
        back.public_key_pem && strcmp(back.public_key_pem, pub_pem) == 0 && back.secret[31] == 7
            ? 0
            : -1;
    px_enroll_req_cleanup(&back);
    return res;
}

static int op_enroll_resp_encode(void)
{
    struct px_enroll_resp r = {.ok = 0, .code = "bad_secret", .message = "wrong"};
    char *line = px_enroll_resp_encode(&r);
    fa_disarm();
    int res = !line ? 1 : strcmp(line, enroll_resp_line) == 0 ? 0 : -1;
    free(line);
    return res;
}

static int op_enroll_resp_decode(void)
{
    struct px_enroll_resp back;
    int rc = px_enroll_resp_decode(enroll_resp_line, strlen(enroll_resp_line) - 1, &back);
    fa_disarm();
    if (rc < 0)
        return 1;
    int res = !back.ok && back.code && strcmp(back.code, "bad_secret") == 0 && back.message &&
                      strcmp(back.message, "wrong") == 0
                  ? 0
                  : -1;
    px_enroll_resp_cleanup(&back);
    return res;
}

/* ---- px_b64, px_json, px_errpage ---- */

static int op_b64(void)
{
    static const uint8_t in[] = "any carnal pleasure\xff\x00\x01";
    char *s = px_b64_encode(in, sizeof(in), 1);
    if (!s) {
        fa_disarm();
        return 1;
    }
    uint8_t *out = NULL;
    size_t n = 0;
    int rc = px_b64_decode(s, strlen(s), &out, &n);
    fa_disarm();
    free(s);
    if (rc < 0)
        return 1;
    int r = n == sizeof(in) && memcmp(out, in, n) == 0 ? 0 : -1;
    free(out);
    return r;
}

static int op_json_line(void)
{
    json_t *root = json_pack("{s:s,s:[i,i],s:b}", "a", "x\ny", "b", 1, 2, "c", 1);
    if (!root) {
        fa_disarm();
        return 1;
    }
    char *line = px_json_line(root);
    fa_disarm();
    json_decref(root);
    if (!line)
        return 1;
    int r = strcmp(line, "{\"a\":\"x\\ny\",\"b\":[1,2],\"c\":true}\n") == 0 ? 0 : -1;
    free(line);
    return r;
}

static char *page_ref;
static size_t page_ref_len;

static int op_errpage(void)
{
    size_t len = 0;
    char *page = px_errpage_render(502, "the origin <refused> & went away", &len);
    fa_disarm();
    if (!page)
        return 1;
    int r = len == page_ref_len && memcmp(page, page_ref, len) == 0 ? 0 : -1;
    free(page);
    return r;
}

/* ---- cn_ingress (the config file's JSON) ---- */

static int op_ingress_valid(void)
{
    static const char cfg[] =
        "{\"originRequest\":{\"connectTimeout\":\"10s\"},\"ingress\":["
        "{\"hostname\":\"a.example\",\"path\":\"^/api\",\"service\":\"http://127.0.0.1:8080\","
        "\"originRequest\":{\"httpHostHeader\":\"internal\"}},"
        "{\"hostname\":\"*.example\",\"service\":\"hello_world\"},"
        "{\"service\":\"http_status:404\"}]}";
    struct cn_ingress *ing = NULL;
    struct cn_ingress_errors errs = {0};
    int rc = cn_ingress_parse(cfg, sizeof(cfg) - 1, &ing, &errs);
    fa_disarm();
    int r;
    if (rc < 0)
        r = ing == NULL ? 1 : -1; /* a refusal on no memory is clean */
    else
        r = ing && ing->n == 3 && ing->n_hostnames == 2 && ing->rules[0].path &&
                    strcmp(ing->rules[0].path, "^/api") == 0 && ing->rules[0].o.http_host_header &&
                    ing->rules[0].o.connect_timeout_s == 10 && ing->rules[0].service &&
                    ing->rules[1].service && ing->rules[2].service
                ? 0
                : -1;
    cn_ingress_unref(ing);
    cn_ingress_errors_cleanup(&errs);
    return r;
}

static int op_ingress_invalid(void)
{
    static const char cfg[] = "{\"ingress\":[{\"hostname\":\"a.example\",\"service\":\"ftp://x\"},"
                              "{\"service\":\"http_status:404\"}]}";
    struct cn_ingress *ing = NULL;
    struct cn_ingress_errors errs = {0};
    int rc = cn_ingress_parse(cfg, sizeof(cfg) - 1, &ing, &errs);
    fa_disarm();
    /* Never accepted, whatever failed. */
    int r = rc < 0 && !ing ? (errs.n > 0 ? 0 : 1) : -1;
    cn_ingress_unref(ing);
    cn_ingress_errors_cleanup(&errs);
    return r;
}

/* ---- px_jwt ---- */

/* Built (unarmed) by jwt_fail_cleanly. An allocation failure must end in
 * PX_ERR_NOMEM, never in a verdict or another error. */
static char *jwt_key, *jwt_token;
static struct px_jwks *jwt_keys;
static json_t *jwt_set_doc;

static int op_jwt_jwk(void)
{
    json_t *jwk = NULL;
    int rc = px_jwt_jwk(jwt_key, &jwk);
    fa_disarm();
    int r = rc == PX_ERR_NOMEM && !jwk ? 1 : -1;
    if (rc == 0)
        r = json_equal(jwk, json_array_get(json_object_get(jwt_set_doc, "keys"), 0)) ? 0 : -1;
    json_decref(jwk);
    return r;
}

static int op_jwt_sign(void)
{
    long n = fa_target;
    fa_disarm();
    json_t *c = json_pack("{s:s,s:I}", "sub", "CN=a", "exp", (json_int_t)4102444800LL);
    fa_arm(n);
    char *t = NULL;
    int rc = px_jwt_sign(jwt_key, c, &t);
    fa_disarm();
    int r = rc == PX_ERR_NOMEM && !t ? 1 : -1;
    if (rc == 0)
        r = px_jwt_verify(jwt_keys, t, strlen(t), NULL, NULL, 1750000000, 0, NULL) == PX_JWT_OK
                ? 0
                : -1;
    free(t);
    json_decref(c);
    return r;
}

static int op_jwt_verify(void)
{
    json_t *claims = NULL;
    int rc =
        px_jwt_verify(jwt_keys, jwt_token, strlen(jwt_token), NULL, NULL, 1750000000, 0, &claims);
    fa_disarm();
    int r = rc == PX_ERR_NOMEM && !claims ? 1 : -1;
    if (rc == PX_JWT_OK)
        r = strcmp(json_string_value(json_object_get(claims, "sub")), "CN=a") == 0 ? 0 : -1;
    json_decref(claims);
    return r;
}

static int op_jwks(void)
{
    struct px_jwks *k = NULL;
    int rc = px_jwks_from_json(jwt_set_doc, &k);
    fa_disarm();
    int r = rc == PX_ERR_NOMEM && !k ? 1 : rc == 0 && px_jwks_count(k) == 1 ? 0 : -1;
    px_jwks_free(k);
    return r;
}

static void jwt_fail_cleanly(void **state)
{
    (void)state;
    fa_disarm();
    json_t *jwk = NULL, *c = json_pack("{s:s,s:I}", "sub", "CN=a", "exp", (json_int_t)4102444800LL);
    assert_int_equal(px_pki_keygen(test_rng(), &jwt_key), 0);
    assert_int_equal(px_jwt_jwk(jwt_key, &jwk), 0);
    jwt_set_doc = json_pack("{s:[o]}", "keys", jwk);
    assert_int_equal(px_jwks_from_json(jwt_set_doc, &jwt_keys), 0);
    assert_int_equal(px_jwt_sign(jwt_key, c, &jwt_token), 0);
    json_decref(c);
    SWEEP(op_jwt_jwk);
    SWEEP(op_jwt_sign);
    SWEEP_DECODE(op_jwt_verify);
    SWEEP_DECODE(op_jwks);
    px_jwks_free(jwt_keys);
    json_decref(jwt_set_doc);
    free(jwt_token);
    free(jwt_key);
}

/* ---- the tests ---- */

static int setup(void **state)
{
    (void)state;
    struct px_token t;
    fill_token(&t);
    token_text = px_token_encode(&t);
    px_token_cleanup(&t);
    const char *p = ctl_lines;
    for (int i = 0; i < 4; i++) {
        const char *nl = strchr(p, '\n');
        struct px_ctl_msg m;
        if (px_ctl_decode(p, (size_t)(nl - p), &m) < 0)
            return -1;
        ctl_encoded[i] = px_ctl_encode(&m);
        px_ctl_msg_cleanup(&m);
        p = nl + 1;
    }
    const char *reg = strchr(ctl_lines, '\n') + 1;
    if (px_ctl_decode(reg, (size_t)(strchr(reg, '\n') - reg), &ctl_registered) < 0)
        return -1;
    struct px_enroll_req r;
    fill_req(&r);
    enroll_req_line = px_enroll_req_encode(&r);
    struct px_enroll_resp resp = {.ok = 0, .code = "bad_secret", .message = "wrong"};
    enroll_resp_line = px_enroll_resp_encode(&resp);
    page_ref = px_errpage_render(502, "the origin <refused> & went away", &page_ref_len);
    if (make_access_fixtures() < 0)
        return -1;
    return token_text && ctl_encoded[3] && enroll_req_line && enroll_resp_line && page_ref ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    free(token_text);
    for (int i = 0; i < 4; i++)
        free(ctl_encoded[i]);
    px_ctl_msg_cleanup(&ctl_registered);
    free(enroll_req_line);
    free(enroll_resp_line);
    free(page_ref);
    free(access_jwks);
    free(access_line);
    free(access_token);
    return 0;
}

static void decoders_fail_cleanly(void **state)
{
    (void)state;
    SWEEP_DECODE(op_token_decode);
    SWEEP_DECODE(op_control_framer);
    SWEEP_DECODE(op_control_decode);
    SWEEP_DECODE(op_access_keys_decode);
    SWEEP_DECODE(op_access_keys_encode);
    SWEEP_DECODE(op_assert_keys_and_check);
    SWEEP_DECODE(op_enroll_req_decode);
    SWEEP_DECODE(op_enroll_resp_decode);
    SWEEP(op_b64);
    SWEEP(op_errpage);
}

/* Found by this sweep: jansson's json_dumps ignores a failed write of an
 * object key and returns the text without it ({"v":1,":"0123..."}); a token,
 * control message or enrolment line went out corrupted instead of failing.
 * Fixed by px_json_dumps. */
static void defect_json_encoders_drop_a_key_when_memory_runs_out(void **state)
{
    (void)state;
    SWEEP(op_token_encode);
    SWEEP(op_control_encode);
    SWEEP(op_enroll_req_encode);
    SWEEP(op_enroll_resp_encode);
    SWEEP(op_json_line);
}

/* Found by this sweep: cn_ingress accepted a config in which a failed strdup
 * had left a rule without its path regex (so it matched every path), an
 * originRequest setting, or an error line (so an invalid file loaded). */
static void defect_ingress_rule_loses_its_path_when_memory_runs_out(void **state)
{
    (void)state;
    SWEEP_DECODE(op_ingress_valid);
    SWEEP_DECODE(op_ingress_invalid);
}

int main(void)
{
    if (fa_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(decoders_fail_cleanly),
        cmocka_unit_test(defect_json_encoders_drop_a_key_when_memory_runs_out),
        cmocka_unit_test(defect_ingress_rule_loses_its_path_when_memory_runs_out),
        cmocka_unit_test(jwt_fail_cleanly),
    };
    if (getenv("ALLOC_ONLY"))
        cmocka_set_test_filter(getenv("ALLOC_ONLY"));
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
