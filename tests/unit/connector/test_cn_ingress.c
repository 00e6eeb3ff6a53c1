/* cn_ingress: parsing, validation (one clear line per problem), origin
 * settings inheritance, matching and reference counting. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cn_ingress.h"
#include "px_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/cn-ingress-test-XXXXXX";
static char ca_path[96], cert_path[96], key_path[96], nopem_path[96], cfg_path[96], badcfg_path[96];

#define PEM "-----BEGIN CERTIFICATE-----\nMIIBcnIngressTestPool\n-----END CERTIFICATE-----\n"
#define CATCH_ALL "{\"service\": \"http_status:404\"}"

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(ca_path, sizeof(ca_path), "%s/ca.pem", tmpdir);
    snprintf(cert_path, sizeof(cert_path), "%s/cert.pem", tmpdir);
    snprintf(key_path, sizeof(key_path), "%s/key.pem", tmpdir);
    snprintf(nopem_path, sizeof(nopem_path), "%s/nopem.txt", tmpdir);
    snprintf(cfg_path, sizeof(cfg_path), "%s/config.json", tmpdir);
    snprintf(badcfg_path, sizeof(badcfg_path), "%s/bad.json", tmpdir);
    if (write_file(ca_path, PEM) || write_file(cert_path, PEM) ||
        write_file(key_path, "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n") ||
        write_file(nopem_path, "not a certificate\n") ||
        write_file(cfg_path,
                   "{\"ingress\": [\n"
                   "  {\"hostname\": \"a.test\", \"service\": \"http://127.0.0.1:8080\"},\n"
                   "  " CATCH_ALL "\n]}\n") ||
        write_file(badcfg_path, "{\"ingress\": [\n  {\"service\": }\n]}\n"))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    const char *files[] = {ca_path, cert_path, key_path, nopem_path, cfg_path, badcfg_path};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        unlink(files[i]);
    rmdir(tmpdir);
    return 0;
}

/* ---- helpers ---- */

static void print_errs(const char *what, const struct cn_ingress_errors *errs)
{
    for (size_t i = 0; i < errs->n; i++)
        print_error("%s: error %zu: %s\n", what, i + 1, errs->lines[i]);
}

static struct cn_ingress *parse_ok(const char *json)
{
    struct cn_ingress_errors errs = {0};
    struct cn_ingress *ing = NULL;
    int rc = cn_ingress_parse(json, strlen(json), &ing, &errs);
    if (rc != 0)
        print_errs(json, &errs);
    size_t n = errs.n;
    cn_ingress_errors_cleanup(&errs);
    assert_int_equal(rc, 0);
    assert_int_equal(n, 0);
    assert_non_null(ing);
    assert_int_equal(ing->refs, 1);
    return ing;
}

/* Parses json expecting failure; the caller cleans errs up. */
static void parse_bad(const char *json, struct cn_ingress_errors *errs)
{
    struct cn_ingress *ing = (struct cn_ingress *)1;
    memset(errs, 0, sizeof(*errs));
    int rc = cn_ingress_parse(json, strlen(json), &ing, errs);
    if (rc == 0) {
        print_error("accepted: %s\n", json);
        cn_ingress_unref(ing);
        ing = NULL;
    }
    assert_int_equal(rc, PX_ERR_INVAL);
    assert_null(ing);
    assert_true(errs->n > 0);
}

/* Index of the first line holding every needle (NULL-terminated), or -1. */
static int find_line(const struct cn_ingress_errors *errs, ...)
{
    for (size_t i = 0; i < errs->n; i++) {
        va_list ap;
        va_start(ap, errs);
        int all = 1;
        for (const char *s; (s = va_arg(ap, const char *)) != NULL;)
            if (!strstr(errs->lines[i], s))
                all = 0;
        va_end(ap);
        if (all)
            return (int)i;
    }
    return -1;
}

/* Expects exactly one error line for json, holding needles a and b (b may be
 * NULL). Cleans up before asserting so a failure does not also leak. */
static void one_error(const char *json, const char *a, const char *b)
{
    struct cn_ingress_errors errs;
    parse_bad(json, &errs);
    size_t n = errs.n;
    int at = find_line(&errs, a, b, NULL);
    if (n != 1 || at < 0) {
        print_error("want one line with \"%s\"%s%s%s for %s\n", a, b ? " and \"" : "", b ? b : "",
                    b ? "\"" : "", json);
        print_errs("got", &errs);
    }
    cn_ingress_errors_cleanup(&errs);
    assert_int_equal(n, 1);
    assert_true(at >= 0);
}

/* ---- the example configuration ---- */

static void test_example_config(void **state)
{
    (void)state;
    char json[2048];
    snprintf(
        json, sizeof(json),
        "{\n"
        "  \"ingress\": [\n"
        "    {\"hostname\": \"portainer.example.test\", \"service\": \"https://localhost:9443\",\n"
        "     \"originRequest\": {\"noTLSVerify\": true}},\n"
        "    {\"hostname\": \"*.apps.example.test\", \"path\": \"^/api/\",\n"
        "     \"service\": \"unix:/run/api.sock\"},\n"
        "    {\"hostname\": \"ha.example.test\", \"service\": \"https://192.168.1.10:8123\",\n"
        "     \"originRequest\": {\"caPool\": \"%s\", \"originServerName\": \"ha.internal\"}},\n"
        "    {\"service\": \"http_status:404\"}\n"
        "  ]\n"
        "}\n",
        ca_path);
    struct cn_ingress *ing = parse_ok(json);
    assert_int_equal(ing->n, 4);
    for (size_t i = 0; i < ing->n; i++)
        assert_int_equal(ing->rules[i].index, i);

    const struct cn_rule *r = &ing->rules[0];
    assert_string_equal(r->hostname, "portainer.example.test");
    assert_null(r->path);
    assert_int_equal(r->kind, CN_SVC_HTTP);
    assert_string_equal(r->service, "https://localhost:9443");
    assert_int_equal(r->tls, 1);
    assert_string_equal(r->host, "localhost");
    assert_int_equal(r->port, 9443);
    assert_int_equal(r->o.no_tls_verify, 1);
    assert_true(r->o.set & CN_OPT_NO_TLS_VERIFY);
    assert_null(r->o.ca_pool);
    assert_null(r->o.ca_blob);

    r = &ing->rules[1];
    assert_string_equal(r->hostname, "*.apps.example.test");
    assert_string_equal(r->path, "^/api/");
    assert_int_equal(r->kind, CN_SVC_UNIX);
    assert_int_equal(r->tls, 0);
    assert_string_equal(r->unix_path, "/run/api.sock");
    assert_string_equal(r->host, "localhost");
    assert_int_equal(r->o.no_tls_verify, 0);

    r = &ing->rules[2];
    assert_string_equal(r->hostname, "ha.example.test");
    assert_int_equal(r->kind, CN_SVC_HTTP);
    assert_int_equal(r->tls, 1);
    assert_string_equal(r->host, "192.168.1.10");
    assert_int_equal(r->port, 8123);
    assert_int_equal(r->o.no_tls_verify, 0);
    assert_string_equal(r->o.origin_server_name, "ha.internal");
    assert_string_equal(r->o.ca_pool, ca_path);
    /* The CA blob is the system bundle plus the pool. */
    assert_non_null(r->o.ca_blob);
    assert_true(r->o.ca_blob_len >= strlen(PEM));
    assert_non_null(memmem(r->o.ca_blob, r->o.ca_blob_len, PEM, strlen(PEM)));

    r = &ing->rules[3];
    assert_string_equal(r->hostname, "");
    assert_null(r->path);
    assert_int_equal(r->kind, CN_SVC_STATUS);
    assert_int_equal(r->status, 404);

    assert_int_equal(ing->n_hostnames, 3);
    assert_string_equal(ing->hostnames[0], "portainer.example.test");
    assert_string_equal(ing->hostnames[1], "*.apps.example.test");
    assert_string_equal(ing->hostnames[2], "ha.example.test");

    assert_ptr_equal(cn_ingress_match(ing, "portainer.example.test", "/"), &ing->rules[0]);
    assert_ptr_equal(cn_ingress_match(ing, "web.apps.example.test", "/api/v1/items"),
                     &ing->rules[1]);
    assert_ptr_equal(cn_ingress_match(ing, "web.apps.example.test", "/index.html"), &ing->rules[3]);
    assert_ptr_equal(cn_ingress_match(ing, "ha.example.test", "/lovelace"), &ing->rules[2]);
    assert_ptr_equal(cn_ingress_match(ing, "unknown.test", "/"), &ing->rules[3]);
    cn_ingress_unref(ing);
}

static void test_services(void **state)
{
    (void)state;
    struct cn_ingress *ing =
        parse_ok("{\"ingress\": ["
                 "{\"hostname\": \"a.test\", \"service\": \"http://h\"},"
                 "{\"hostname\": \"b.test\", \"service\": \"HTTPS://h/\"},"
                 "{\"hostname\": \"c.test\", \"service\": \"http://[::1]:81\"},"
                 "{\"hostname\": \"d.test\", \"service\": \"unix+tls:/s\"},"
                 "{\"hostname\": \"e.test\", \"service\": \"hello_world\"},"
                 "{\"service\": \"http_status:503\"}]}");
    const struct cn_rule *r = ing->rules;
    assert_int_equal(r[0].kind, CN_SVC_HTTP);
    assert_int_equal(r[0].port, 80);
    assert_int_equal(r[0].tls, 0);
    assert_string_equal(r[0].host, "h");
    assert_int_equal(r[1].port, 443);
    assert_int_equal(r[1].tls, 1);
    assert_string_equal(r[1].host, "h");
    assert_string_equal(r[2].host, "[::1]");
    assert_int_equal(r[2].port, 81);
    assert_int_equal(r[3].kind, CN_SVC_UNIX);
    assert_int_equal(r[3].tls, 1);
    assert_string_equal(r[3].unix_path, "/s");
    assert_int_equal(r[4].kind, CN_SVC_HELLO);
    assert_string_equal(r[4].service, "hello_world");
    assert_int_equal(r[5].kind, CN_SVC_STATUS);
    assert_int_equal(r[5].status, 503);
    cn_ingress_unref(ing);
}

/* ---- originRequest ---- */

static void test_opts_defaults_when_unset(void **state)
{
    (void)state;
    struct cn_ingress *ing = parse_ok("{\"ingress\": [{\"hostname\": \"a.test\", \"service\": "
                                      "\"https://h:1\"}, " CATCH_ALL "]}");
    for (size_t i = 0; i < ing->n; i++) {
        const struct cn_origin_opts *o = &ing->rules[i].o;
        assert_int_equal(o->set, 0);
        assert_int_equal(o->no_tls_verify, 0);
        assert_null(o->origin_server_name);
        assert_null(o->ca_pool);
        assert_null(o->origin_cert);
        assert_null(o->origin_key);
        assert_null(o->http_host_header);
        assert_int_equal(o->connect_timeout_s, 30);
        assert_int_equal(o->tls_timeout_s, 10);
        assert_int_equal(o->keepalive_conns, 100);
        assert_int_equal(o->keepalive_timeout_s, 90);
        assert_int_equal(o->disable_chunked, 0);
        assert_int_equal(o->http2_origin, 0);
        assert_null(o->ca_blob);
        assert_int_equal(o->ca_blob_len, 0);
    }
    cn_ingress_unref(ing);
}

static void test_opts_inherited_and_overridden(void **state)
{
    (void)state;
    struct cn_ingress *ing = parse_ok(
        "{\"originRequest\": {\"connectTimeout\": 5, \"noTLSVerify\": true, "
        "  \"tlsTimeout\": \"2m\", \"keepAliveConnections\": 4, \"keepAliveTimeout\": \"1h\", "
        "  \"httpHostHeader\": \"top.internal\", \"originServerName\": \"top-sni\", "
        "  \"disableChunkedEncoding\": true, \"http2Origin\": true},"
        " \"ingress\": ["
        "  {\"hostname\": \"a.test\", \"service\": \"https://h:1\", \"originRequest\": "
        "    {\"connectTimeout\": 7, \"noTLSVerify\": false, \"httpHostHeader\": \"own\", "
        "     \"keepAliveConnections\": 0, \"http2Origin\": false}},"
        "  {\"hostname\": \"b.test\", \"service\": \"https://h:2\"},"
        "  " CATCH_ALL "]}");
    /* Rule 1 overrides some fields, inherits the rest. */
    const struct cn_origin_opts *o = &ing->rules[0].o;
    assert_int_equal(o->connect_timeout_s, 7);
    assert_int_equal(o->no_tls_verify, 0);
    assert_string_equal(o->http_host_header, "own");
    assert_int_equal(o->keepalive_conns, 0);
    assert_int_equal(o->http2_origin, 0);
    assert_string_equal(o->origin_server_name, "top-sni");
    assert_int_equal(o->tls_timeout_s, 120);
    assert_int_equal(o->keepalive_timeout_s, 3600);
    assert_int_equal(o->disable_chunked, 1);
    assert_true(o->set & CN_OPT_CONNECT_TIMEOUT);
    assert_true(o->set & CN_OPT_SERVER_NAME);
    assert_false(o->set & CN_OPT_CA_POOL);
    /* Rule 2 and the catch-all take every top-level value. */
    for (size_t i = 1; i < 3; i++) {
        o = &ing->rules[i].o;
        assert_int_equal(o->connect_timeout_s, 5);
        assert_int_equal(o->no_tls_verify, 1);
        assert_string_equal(o->http_host_header, "top.internal");
        assert_string_equal(o->origin_server_name, "top-sni");
        assert_int_equal(o->tls_timeout_s, 120);
        assert_int_equal(o->keepalive_conns, 4);
        assert_int_equal(o->keepalive_timeout_s, 3600);
        assert_int_equal(o->disable_chunked, 1);
        assert_int_equal(o->http2_origin, 1);
    }
    /* Each rule owns its strings. */
    assert_ptr_not_equal(ing->rules[1].o.origin_server_name, ing->rules[2].o.origin_server_name);
    cn_ingress_unref(ing);
}

static void test_opts_top_ca_pool_inherited(void **state)
{
    (void)state;
    char json[1024];
    snprintf(json, sizeof(json),
             "{\"originRequest\": {\"caPool\": \"%s\"}, \"ingress\": ["
             "{\"hostname\": \"a.test\", \"service\": \"https://h:1\"}, " CATCH_ALL "]}",
             ca_path);
    struct cn_ingress *ing = parse_ok(json);
    for (size_t i = 0; i < ing->n; i++) {
        const struct cn_origin_opts *o = &ing->rules[i].o;
        assert_string_equal(o->ca_pool, ca_path);
        assert_non_null(o->ca_blob);
        assert_non_null(memmem(o->ca_blob, o->ca_blob_len, PEM, strlen(PEM)));
    }
    assert_ptr_not_equal(ing->rules[0].o.ca_blob, ing->rules[1].o.ca_blob);
    cn_ingress_unref(ing);
}

static void test_opts_client_cert(void **state)
{
    (void)state;
    char json[1024];
    snprintf(json, sizeof(json),
             "{\"ingress\": [{\"hostname\": \"a.test\", \"service\": \"https://h:1\", "
             "\"originRequest\": {\"originCert\": \"%s\", \"originKey\": \"%s\"}}, " CATCH_ALL "]}",
             cert_path, key_path);
    struct cn_ingress *ing = parse_ok(json);
    assert_string_equal(ing->rules[0].o.origin_cert, cert_path);
    assert_string_equal(ing->rules[0].o.origin_key, key_path);
    assert_true(ing->rules[0].o.set & CN_OPT_CERT);
    assert_true(ing->rules[0].o.set & CN_OPT_KEY);
    assert_null(ing->rules[1].o.origin_cert);
    cn_ingress_unref(ing);
}

/* connectTimeout given as the JSON value text; returns the parsed seconds or
 * -1 when refused (checking the refusal names the rule and the fix). */
static long duration(const char *value)
{
    char json[512];
    snprintf(json, sizeof(json),
             "{\"ingress\": [{\"service\": \"http://h:1\", \"originRequest\": "
             "{\"connectTimeout\": %s}}]}",
             value);
    struct cn_ingress_errors errs = {0};
    struct cn_ingress *ing = NULL;
    int rc = cn_ingress_parse(json, strlen(json), &ing, &errs);
    if (rc == 0) {
        long s = ing->rules[0].o.connect_timeout_s;
        cn_ingress_unref(ing);
        cn_ingress_errors_cleanup(&errs);
        return s;
    }
    int at = find_line(&errs, "rule #1", "originRequest.connectTimeout must be seconds", "\"30s\"",
                       NULL);
    size_t n = errs.n;
    if (at < 0 || n != 1)
        print_errs(value, &errs);
    cn_ingress_errors_cleanup(&errs);
    assert_int_equal(n, 1);
    assert_true(at >= 0);
    return -1;
}

static void test_durations(void **state)
{
    (void)state;
    assert_int_equal(duration("45"), 45);
    assert_int_equal(duration("0"), 0);
    assert_int_equal(duration("604800"), 604800);
    assert_int_equal(duration("\"30s\""), 30);
    assert_int_equal(duration("\"15\""), 15);
    assert_int_equal(duration("\"2m\""), 120);
    assert_int_equal(duration("\"1h\""), 3600);
    assert_int_equal(duration("\"168h\""), 604800);
    /* Refused */
    const char *bad[] = {"-1",    "604801", "\"169h\"",  "\"30x\"",   "\"\"",
                         "\"s\"", "\"1d\"", "\"2h30m\"", "1.5",       "true",
                         "null",  "[30]",   "\"30 s\"",  "\"10081m\""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        long got = duration(bad[i]);
        if (got != -1)
            print_error("connectTimeout %s accepted as %ld\n", bad[i], got);
        assert_int_equal(got, -1);
    }
}

static void test_duration_overflow(void **state)
{
    (void)state;
    /* 307445734561825861 * 60 wraps an unsigned long to 44: an absurd value
     * must be refused, not read as 44 seconds. */
    long got = duration("\"307445734561825861m\"");
    if (got != -1)
        print_error("\"307445734561825861m\" accepted as %ld seconds\n", got);
    assert_int_equal(got, -1);
    got = duration("\"5124095576030432h\""); /* * 3600 wraps to 1024 */
    if (got != -1)
        print_error("\"5124095576030432h\" accepted as %ld seconds\n", got);
    assert_int_equal(got, -1);
}

static void test_opts_type_errors(void **state)
{
    (void)state;
    one_error("{\"ingress\": [{\"service\": \"http://h:1\", \"originRequest\": "
              "{\"noTLSVerify\": \"yes\"}}]}",
              "rule #1", "originRequest.noTLSVerify must be true or false");
    one_error("{\"ingress\": [{\"service\": \"http://h:1\", \"originRequest\": "
              "{\"originServerName\": \"\"}}]}",
              "rule #1", "originRequest.originServerName must be a non-empty string");
    one_error("{\"ingress\": [{\"service\": \"http://h:1\", \"originRequest\": "
              "{\"httpHostHeader\": 5}}]}",
              "rule #1", "originRequest.httpHostHeader must be a non-empty string");
    one_error("{\"ingress\": [{\"service\": \"http://h:1\", \"originRequest\": "
              "{\"keepAliveConnections\": -1}}]}",
              "rule #1", "keepAliveConnections must be 0-100000");
    one_error("{\"ingress\": [{\"service\": \"http://h:1\", \"originRequest\": "
              "{\"keepAliveConnections\": 100001}}]}",
              "rule #1", "keepAliveConnections must be 0-100000");
    one_error("{\"ingress\": [{\"service\": \"http://h:1\", \"originRequest\": "
              "{\"keepAliveConnections\": \"5\"}}]}",
              "rule #1", "keepAliveConnections must be 0-100000");
    one_error("{\"ingress\": [{\"service\": \"http://h:1\", \"originRequest\": [1]}]}", "rule #1",
              "originRequest must be an object");
    one_error("{\"originRequest\": true, \"ingress\": [" CATCH_ALL "]}", "originRequest",
              "must be an object");
    one_error("{\"originRequest\": {\"tlsTimeout\": \"soon\"}, \"ingress\": [" CATCH_ALL "]}",
              "originRequest: originRequest.tlsTimeout must be seconds", NULL);
}

/* ---- originRequest.access ---- */

static void test_access_off_by_default(void **state)
{
    (void)state;
    struct cn_ingress *ing = parse_ok("{\"ingress\": [{\"hostname\": \"a.test\", \"service\": "
                                      "\"http://h:1\"}, " CATCH_ALL "]}");
    for (size_t i = 0; i < ing->n; i++) {
        assert_int_equal(ing->rules[i].o.access_required, 0);
        assert_null(ing->rules[i].o.access_audience);
    }
    cn_ingress_unref(ing);
}

static void test_access_parsed_and_inherited(void **state)
{
    (void)state;
    struct cn_ingress *ing = parse_ok(
        "{\"originRequest\": {\"access\": {\"required\": true, \"audience\": \"top-aud\"}},"
        " \"ingress\": ["
        "  {\"hostname\": \"a.test\", \"service\": \"http://h:1\"},"
        "  {\"hostname\": \"b.test\", \"service\": \"http://h:2\", \"originRequest\": "
        "    {\"access\": {\"audience\": \"b-aud\"}}},"
        "  {\"hostname\": \"c.test\", \"service\": \"ssh://h:22\", \"originRequest\": "
        "    {\"access\": {\"required\": false}}},"
        "  {\"hostname\": \"d.test\", \"service\": \"hello_world\", \"originRequest\": "
        "    {\"access\": {}}},"
        "  " CATCH_ALL "]}");
    const struct cn_origin_opts *o = &ing->rules[0].o;
    assert_int_equal(o->access_required, 1);
    assert_string_equal(o->access_audience, "top-aud");
    /* A rule naming only its audience stays protected by the top-level
     * "required": members merge one by one, like every other setting. */
    o = &ing->rules[1].o;
    assert_int_equal(o->access_required, 1);
    assert_string_equal(o->access_audience, "b-aud");
    /* Switching it off takes an explicit false. */
    o = &ing->rules[2].o;
    assert_int_equal(o->access_required, 0);
    assert_string_equal(o->access_audience, "top-aud");
    o = &ing->rules[3].o;
    assert_int_equal(o->access_required, 1);
    assert_string_equal(o->access_audience, "top-aud");
    /* Each rule owns its copy. */
    assert_ptr_not_equal(ing->rules[0].o.access_audience, ing->rules[3].o.access_audience);
    cn_ingress_unref(ing);

    /* Without an audience the request's host is the audience (NULL here). */
    ing = parse_ok("{\"ingress\": [{\"hostname\": \"a.test\", \"service\": \"http://h:1\", "
                   "\"originRequest\": {\"access\": {\"required\": true}}}, " CATCH_ALL "]}");
    assert_int_equal(ing->rules[0].o.access_required, 1);
    assert_null(ing->rules[0].o.access_audience);
    assert_int_equal(ing->rules[1].o.access_required, 0);
    cn_ingress_unref(ing);
}

#define ACCESS_RULE(access)                                                                        \
    "{\"ingress\": [{\"hostname\": \"a.test\", \"service\": \"http://h:1\", \"originRequest\": "   \
    "{\"access\": " access "}}, " CATCH_ALL "]}"

static void test_access_errors(void **state)
{
    (void)state;
    one_error(ACCESS_RULE("true"), "rule #1: originRequest.access must be an object", NULL);
    one_error(ACCESS_RULE("[]"), "rule #1: originRequest.access must be an object", NULL);
    one_error(ACCESS_RULE("null"), "rule #1: originRequest.access must be an object", NULL);
    one_error(ACCESS_RULE("{\"required\": \"yes\"}"),
              "rule #1: originRequest.access.required must be true or false", NULL);
    one_error(ACCESS_RULE("{\"required\": 1}"),
              "rule #1: originRequest.access.required must be true or false", NULL);
    one_error(ACCESS_RULE("{\"required\": true, \"audience\": \"\"}"),
              "rule #1: originRequest.access.audience must be a non-empty string", NULL);
    one_error(ACCESS_RULE("{\"required\": true, \"audience\": 5}"),
              "rule #1: originRequest.access.audience must be a non-empty string", NULL);
    one_error(ACCESS_RULE("{\"required\": true, \"audience\": [\"a\"]}"),
              "rule #1: originRequest.access.audience must be a non-empty string", NULL);
    one_error(ACCESS_RULE("{\"audience\": \"a\\nb\"}"), "rule #1: originRequest.access.audience",
              "no control characters");
    /* Unknown members are errors (typos must not switch protection off). */
    one_error(ACCESS_RULE("{\"requried\": true}"),
              "rule #1: unknown originRequest.access setting \"requried\"", "required, audience");
    one_error(ACCESS_RULE("{\"required\": true, \"teamName\": \"x\"}"),
              "rule #1: unknown originRequest.access setting \"teamName\"", NULL);
    one_error("{\"originRequest\": {\"access\": {\"aud\": \"x\"}}, \"ingress\": [" CATCH_ALL "]}",
              "originRequest: unknown originRequest.access setting \"aud\"", NULL);
    /* Duplicate members are a JSON error, as anywhere in the file. */
    struct cn_ingress_errors errs;
    parse_bad(ACCESS_RULE("{\"required\": true, \"required\": false}"), &errs);
    cn_ingress_errors_cleanup(&errs);

    /* The audience length limit. */
    size_t cap = CN_ACCESS_MAX_AUDIENCE + 256;
    char *json = malloc(cap), *aud = malloc(CN_ACCESS_MAX_AUDIENCE + 2);
    assert_non_null(json);
    assert_non_null(aud);
    memset(aud, 'a', CN_ACCESS_MAX_AUDIENCE);
    aud[CN_ACCESS_MAX_AUDIENCE] = '\0';
    snprintf(json, cap, ACCESS_RULE("{\"audience\": \"%s\"}"), aud);
    struct cn_ingress *ing = parse_ok(json);
    assert_string_equal(ing->rules[0].o.access_audience, aud);
    cn_ingress_unref(ing);
    strcat(aud, "a");
    snprintf(json, cap, ACCESS_RULE("{\"audience\": \"%s\"}"), aud);
    one_error(json, "rule #1: originRequest.access.audience must be", NULL);
    free(json);
    free(aud);
}

/* ---- matching ---- */

/* originPull: a boolean, inherited member by member like the rest, on TLS
 * origins only, never together with originCert/originKey. */
static void test_origin_pull_parsed_and_inherited(void **state)
{
    (void)state;
    struct cn_ingress *ing =
        parse_ok("{\"originRequest\": {\"originPull\": true}, \"ingress\": ["
                 "  {\"hostname\": \"a.test\", \"service\": \"https://h:1\"},"
                 "  {\"hostname\": \"b.test\", \"service\": \"https://h:2\", "
                 "   \"originRequest\": {\"originPull\": false}},"
                 "  {\"hostname\": \"c.test\", \"service\": \"unix+tls:/run/c.sock\"},"
                 "  {\"hostname\": \"d.test\", \"service\": \"http://h:3\"},"
                 "  {\"hostname\": \"e.test\", \"service\": \"tcp://h:4\"},"
                 "  " CATCH_ALL "]}");
    assert_int_equal(ing->rules[0].o.origin_pull, 1);
    assert_true(ing->rules[0].o.set & CN_OPT_ORIGIN_PULL);
    assert_int_equal(ing->rules[1].o.origin_pull, 0);
    assert_int_equal(ing->rules[2].o.origin_pull, 1);
    /* Inherited by services without TLS: ignored there, not an error. */
    assert_int_equal(ing->rules[3].o.origin_pull, 0);
    assert_int_equal(ing->rules[4].o.origin_pull, 0);
    assert_int_equal(ing->rules[5].o.origin_pull, 0);
    cn_ingress_unref(ing);

    /* Off unless asked for; a rule's own setting alone. */
    ing = parse_ok("{\"ingress\": ["
                   "  {\"hostname\": \"a.test\", \"service\": \"https://h:1\"},"
                   "  {\"hostname\": \"b.test\", \"service\": \"https://h:2\", "
                   "   \"originRequest\": {\"originPull\": true}},"
                   "  " CATCH_ALL "]}");
    assert_int_equal(ing->rules[0].o.origin_pull, 0);
    assert_false(ing->rules[0].o.set & CN_OPT_ORIGIN_PULL);
    assert_int_equal(ing->rules[1].o.origin_pull, 1);
    assert_int_equal(ing->rules[2].o.origin_pull, 0);
    cn_ingress_unref(ing);
}

static void test_origin_pull_errors(void **state)
{
    (void)state;
    one_error("{\"ingress\": [{\"hostname\": \"a.test\", \"service\": \"https://h:1\", "
              "\"originRequest\": {\"originPull\": \"yes\"}}, " CATCH_ALL "]}",
              "rule #1", "originRequest.originPull must be true or false");
    one_error("{\"ingress\": [{\"hostname\": \"a.test\", \"service\": \"http://h:1\", "
              "\"originRequest\": {\"originPull\": true}}, " CATCH_ALL "]}",
              "rule #1: originRequest.originPull needs an https:// or unix+tls: service", NULL);
    one_error("{\"ingress\": [{\"hostname\": \"a.test\", \"service\": \"hello_world\", "
              "\"originRequest\": {\"originPull\": true}}, " CATCH_ALL "]}",
              "rule #1: originRequest.originPull needs an https://", NULL);
    /* false on a plain service is harmless. */
    cn_ingress_unref(parse_ok("{\"ingress\": [{\"hostname\": \"a.test\", \"service\": "
                              "\"http://h:1\", \"originRequest\": {\"originPull\": false}}, "
                              " " CATCH_ALL "]}"));
    /* Two client certificates for one connection. */
    char json[1024];
    snprintf(json, sizeof(json),
             "{\"originRequest\": {\"originCert\": \"%s\", \"originKey\": \"%s\"}, "
             "\"ingress\": [{\"hostname\": \"a.test\", \"service\": \"https://h:1\", "
             "\"originRequest\": {\"originPull\": true}}, " CATCH_ALL "]}",
             cert_path, key_path);
    one_error(json, "rule #1: originPull and originCert/originKey both", "choose one");
    /* The unknown-key message lists it. */
    one_error("{\"ingress\": [{\"hostname\": \"a.test\", \"service\": \"https://h:1\", "
              "\"originRequest\": {\"originpull\": true}}, " CATCH_ALL "]}",
              "unknown originRequest setting \"originpull\"", "originPull");
}

static void test_match_exact_host(void **state)
{
    (void)state;
    struct cn_ingress *ing =
        parse_ok("{\"ingress\": [{\"hostname\": \"App.Example.Test\", \"service\": "
                 "\"http://h:1\"}, " CATCH_ALL "]}");
    assert_string_equal(ing->rules[0].hostname, "app.example.test");
    const struct cn_rule *app = &ing->rules[0], *other = &ing->rules[1];
    assert_ptr_equal(cn_ingress_match(ing, "app.example.test", "/"), app);
    assert_ptr_equal(cn_ingress_match(ing, "APP.EXAMPLE.TEST", "/x"), app);
    assert_ptr_equal(cn_ingress_match(ing, "App.Example.Test", ""), app);
    assert_ptr_equal(cn_ingress_match(ing, "x.app.example.test", "/"), other);
    assert_ptr_equal(cn_ingress_match(ing, "app.example.test.evil", "/"), other);
    assert_ptr_equal(cn_ingress_match(ing, "xapp.example.test", "/"), other);
    assert_ptr_equal(cn_ingress_match(ing, "example.test", "/"), other);
    assert_ptr_equal(cn_ingress_match(ing, "", "/"), other);
    cn_ingress_unref(ing);
}

static void test_match_wildcard(void **state)
{
    (void)state;
    struct cn_ingress *ing = parse_ok("{\"ingress\": [{\"hostname\": \"*.Example.Test\", "
                                      "\"service\": \"http://h:1\"}, " CATCH_ALL "]}");
    assert_string_equal(ing->rules[0].hostname, "*.example.test");
    const struct cn_rule *w = &ing->rules[0], *other = &ing->rules[1];
    assert_ptr_equal(cn_ingress_match(ing, "a.example.test", "/"), w);
    assert_ptr_equal(cn_ingress_match(ing, "A.EXAMPLE.TEST", "/"), w);
    assert_ptr_equal(cn_ingress_match(ing, "a.b.c.example.test", "/"), w);
    /* Not the bare suffix, nor a name that merely ends the same way. */
    assert_ptr_equal(cn_ingress_match(ing, "example.test", "/"), other);
    assert_ptr_equal(cn_ingress_match(ing, ".example.test", "/"), other);
    assert_ptr_equal(cn_ingress_match(ing, "aexample.test", "/"), other);
    assert_ptr_equal(cn_ingress_match(ing, "a.example.test.evil", "/"), other);
    assert_ptr_equal(cn_ingress_match(ing, "a.example.testx", "/"), other);
    cn_ingress_unref(ing);
}

static void test_match_path(void **state)
{
    (void)state;
    struct cn_ingress *ing =
        parse_ok("{\"ingress\": ["
                 "{\"hostname\": \"a.test\", \"path\": \"^/api$\", \"service\": \"http://h:1\"},"
                 "{\"hostname\": \"a.test\", \"path\": \"/static\", \"service\": \"http://h:2\"},"
                 "{\"path\": \"\\\\.php$\", \"service\": \"http_status:403\"}," CATCH_ALL "]}");
    const struct cn_rule *api = &ing->rules[0], *stat = &ing->rules[1], *php = &ing->rules[2],
                         *rest = &ing->rules[3];
    assert_string_equal(php->path, "\\.php$");
    /* Anchored */
    assert_ptr_equal(cn_ingress_match(ing, "a.test", "/api"), api);
    assert_ptr_equal(cn_ingress_match(ing, "a.test", "/api/x"), rest);
    assert_ptr_equal(cn_ingress_match(ing, "a.test", "/v1/api"), rest);
    /* The query string and fragment are not part of the path. */
    assert_ptr_equal(cn_ingress_match(ing, "a.test", "/api?x"), api);
    assert_ptr_equal(cn_ingress_match(ing, "a.test", "/api?x=1&y=/z"), api);
    assert_ptr_equal(cn_ingress_match(ing, "a.test", "/api#top"), api);
    assert_ptr_equal(cn_ingress_match(ing, "a.test", "/x?q=.php"), rest);
    /* Unanchored: anywhere in the path */
    assert_ptr_equal(cn_ingress_match(ing, "a.test", "/static"), stat);
    assert_ptr_equal(cn_ingress_match(ing, "a.test", "/v2/static/app.js"), stat);
    assert_ptr_equal(cn_ingress_match(ing, "a.test", "/Static"), rest);
    /* A rule without a hostname but with a path applies to every host. */
    assert_ptr_equal(cn_ingress_match(ing, "b.test", "/index.php"), php);
    assert_ptr_equal(cn_ingress_match(ing, "a.test", "/index.php"), php);
    assert_ptr_equal(cn_ingress_match(ing, "b.test", "/static"), rest);
    /* Host rules still need the host. */
    assert_ptr_equal(cn_ingress_match(ing, "b.test", "/api"), rest);
    cn_ingress_unref(ing);
}

static void test_match_long_path(void **state)
{
    (void)state;
    struct cn_ingress *ing = parse_ok("{\"ingress\": [{\"path\": \"^/a+$\", \"service\": "
                                      "\"http://h:1\"}, " CATCH_ALL "]}");
    size_t len = 10000;
    char *p = malloc(len + 1);
    assert_non_null(p);
    p[0] = '/';
    memset(p + 1, 'a', len - 1);
    p[len] = '\0';
    const struct cn_rule *a = &ing->rules[0], *catch_all = &ing->rules[1];
    assert_ptr_equal(cn_ingress_match(ing, "a.test", p), a);
    /* The whole path is matched, not a prefix of it: a 'b' past the first
     * 4 KiB keeps "^/a+$" from matching. */
    p[len - 1] = 'b';
    assert_ptr_equal(cn_ingress_match(ing, "a.test", p), catch_all);
    free(p);
    cn_ingress_unref(ing);
}

static void test_match_first_wins(void **state)
{
    (void)state;
    struct cn_ingress *ing = parse_ok(
        "{\"ingress\": ["
        "{\"hostname\": \"x.a.test\", \"service\": \"http://h:1\"},"
        "{\"hostname\": \"*.a.test\", \"path\": \"^/admin\", \"service\": \"http_status:403\"},"
        "{\"hostname\": \"*.a.test\", \"service\": \"http://h:2\"},"
        "{\"hostname\": \"y.a.test\", \"service\": \"http://h:3\"},"
        "{\"hostname\": \"x.a.test\", \"service\": \"http://h:4\"}," CATCH_ALL "]}");
    assert_ptr_equal(cn_ingress_match(ing, "x.a.test", "/admin"), &ing->rules[0]);
    assert_ptr_equal(cn_ingress_match(ing, "y.a.test", "/admin/x"), &ing->rules[1]);
    assert_ptr_equal(cn_ingress_match(ing, "y.a.test", "/"), &ing->rules[2]);
    assert_ptr_equal(cn_ingress_match(ing, "z.a.test", "/"), &ing->rules[2]);
    assert_ptr_equal(cn_ingress_match(ing, "a.test", "/"), &ing->rules[5]);
    assert_int_equal(cn_ingress_match(ing, "y.a.test", "/")->port, 2);
    cn_ingress_unref(ing);
}

static void test_catch_all_forms(void **state)
{
    (void)state;
    /* No hostname, "*" and "" all match every request. */
    const char *forms[] = {
        "{\"ingress\": [{\"service\": \"hello_world\"}]}",
        "{\"ingress\": [{\"hostname\": \"*\", \"service\": \"hello_world\"}]}",
        "{\"ingress\": [{\"hostname\": \"\", \"service\": \"hello_world\"}]}",
    };
    for (size_t i = 0; i < 3; i++) {
        struct cn_ingress *ing = parse_ok(forms[i]);
        assert_int_equal(ing->n, 1);
        assert_int_equal(ing->n_hostnames, 0);
        assert_string_equal(ing->rules[0].hostname, "");
        assert_ptr_equal(cn_ingress_match(ing, "anything.test", "/any?thing"), &ing->rules[0]);
        assert_ptr_equal(cn_ingress_match(ing, "", ""), &ing->rules[0]);
        cn_ingress_unref(ing);
    }
}

static void test_hostnames_list(void **state)
{
    (void)state;
    struct cn_ingress *ing =
        parse_ok("{\"ingress\": ["
                 "{\"hostname\": \"a.test\", \"path\": \"^/x\", \"service\": \"http://h:1\"},"
                 "{\"hostname\": \"a.test\", \"service\": \"http://h:1\"},"
                 "{\"hostname\": \"B.test\", \"service\": \"http://h:1\"},"
                 "{\"hostname\": \"*.c.test\", \"service\": \"http://h:1\"},"
                 "{\"path\": \"^/y\", \"service\": \"http://h:1\"},"
                 "{\"hostname\": \"b.TEST\", \"service\": \"http://h:1\"},"
                 "{\"hostname\": \"c.test\", \"service\": \"http://h:1\"}," CATCH_ALL "]}");
    assert_int_equal(ing->n, 8);
    assert_int_equal(ing->n_hostnames, 4);
    assert_string_equal(ing->hostnames[0], "a.test");
    assert_string_equal(ing->hostnames[1], "b.test");
    assert_string_equal(ing->hostnames[2], "*.c.test");
    assert_string_equal(ing->hostnames[3], "c.test");
    for (size_t i = 0; i < ing->n_hostnames; i++)
        assert_true(ing->hostnames[i][0] != '\0');
    cn_ingress_unref(ing);
}

/* ---- validation: one problem per test ---- */

static void test_err_no_catch_all_last(void **state)
{
    (void)state;
    one_error("{\"ingress\": [{\"hostname\": \"a.test\", \"service\": \"http://h:1\"}]}",
              "last rule (#1) must match every request", "http_status:404");
    one_error("{\"ingress\": [{\"hostname\": \"a.test\", \"service\": \"http://h:1\"},"
              "{\"path\": \"^/x\", \"service\": \"http://h:1\"}]}",
              "last rule (#2) must match every request", "no hostname, no path");
}

static void test_err_catch_all_not_last(void **state)
{
    (void)state;
    one_error("{\"ingress\": [{\"hostname\": \"a.test\", \"service\": \"http://h:1\"},"
              "{\"service\": \"http://h:2\"},"
              "{\"hostname\": \"b.test\", \"service\": \"http://h:3\"}," CATCH_ALL "]}",
              "rule #2 matches every request", "move it to the end");
}

static void test_err_invalid_hostname_not_catch_all(void **state)
{
    (void)state;
    /* The bad-hostname rule is reported for its hostname only, not as a
     * catch-all in the wrong place. */
    one_error("{\"ingress\": [{\"hostname\": \"bad host\", \"service\": \"http://h:1\"},"
              "{\"hostname\": \"a.test\", \"service\": \"http://h:2\"}," CATCH_ALL "]}",
              "rule #1: hostname \"bad host\" is not a valid hostname", NULL);
    /* ...and a bad-hostname last rule is not a catch-all either. */
    struct cn_ingress_errors errs;
    parse_bad("{\"ingress\": [{\"hostname\": \"a..test\", \"service\": \"http://h:1\"}]}", &errs);
    int a = find_line(&errs, "rule #1", "a..test", "not a valid hostname", NULL);
    int b = find_line(&errs, "last rule (#1) must match every request", NULL);
    size_t n = errs.n;
    cn_ingress_errors_cleanup(&errs);
    assert_true(a >= 0);
    assert_true(b >= 0);
    assert_int_equal(n, 2);
}

/* Rules broken in other ways (no catch-all intended) must not draw a second,
 * misleading "matches every request" error. */
static void test_err_broken_rule_not_catch_all(void **state)
{
    (void)state;
    struct {
        const char *rule, *needle;
    } cases[] = {
        {"{\"path\": \"(\", \"service\": \"http://h:1\"}", "not a valid regular expression"},
        {"\"http://h:1\"", "a rule must be an object"},
        {"{\"hostname\": 5, \"service\": \"http://h:1\"}", "hostname must be a string"},
        {"{\"hostname\": [\"a.test\"], \"service\": \"http://h:1\"}", "hostname must be a string"},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char json[512];
        snprintf(json, sizeof(json),
                 "{\"ingress\": [%s, {\"hostname\": \"a.test\", \"service\": \"http://h:2\"}, "
                 "" CATCH_ALL "]}",
                 cases[i].rule);
        struct cn_ingress_errors errs;
        parse_bad(json, &errs);
        int at = find_line(&errs, "rule #1", cases[i].needle, NULL);
        if (at < 0 || errs.n != 1) {
            print_error("case %zu: want only \"rule #1: ...%s\"\n", i, cases[i].needle);
            print_errs(cases[i].rule, &errs);
            bad++;
        }
        cn_ingress_errors_cleanup(&errs);
    }
    assert_int_equal(bad, 0);
}

static void test_err_bad_wildcard(void **state)
{
    (void)state;
    const char *pats[] = {"a*.x.test", "*x.y", "*.", "*.*.x.test", "x.*.test", "x.test*"};
    for (size_t i = 0; i < sizeof(pats) / sizeof(pats[0]); i++) {
        char json[512];
        snprintf(json, sizeof(json),
                 "{\"ingress\": [{\"hostname\": \"a.test\", \"service\": \"http://h:1\"},"
                 "{\"hostname\": \"%s\", \"service\": \"http://h:1\"}," CATCH_ALL "]}",
                 pats[i]);
        char needle[128];
        snprintf(needle, sizeof(needle), "rule #2: hostname \"%s\" is not valid", pats[i]);
        one_error(json, needle, "a wildcard must be a leading \"*.\" followed by a domain");
    }
}

static void test_err_bad_hostname(void **state)
{
    (void)state;
    const char *names[] = {"bad host", "a..test", "a.test:80", "a.test.", "a/b", "a_b?.test"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char json[512];
        snprintf(json, sizeof(json),
                 "{\"ingress\": [{\"hostname\": \"%s\", \"service\": \"http://h:1\"}," CATCH_ALL
                 "]}",
                 names[i]);
        char needle[128];
        snprintf(needle, sizeof(needle), "rule #1: hostname \"%s\" is not a valid hostname",
                 names[i]);
        one_error(json, needle, NULL);
    }
}

static void test_err_bad_regex(void **state)
{
    (void)state;
    const char *res[] = {"(", "[a-", "a{2,1}", "*x"};
    for (size_t i = 0; i < sizeof(res) / sizeof(res[0]); i++) {
        char json[512];
        snprintf(json, sizeof(json),
                 "{\"ingress\": [{\"hostname\": \"a.test\", \"path\": \"%s\", \"service\": "
                 "\"http://h:1\"}," CATCH_ALL "]}",
                 res[i]);
        char needle[128];
        snprintf(needle, sizeof(needle), "rule #1: path \"%s\" is not a valid regular expression",
                 res[i]);
        struct cn_ingress_errors errs = {0};
        struct cn_ingress *ing = NULL;
        int rc = cn_ingress_parse(json, strlen(json), &ing, &errs);
        if (rc == 0) {
            /* glibc accepts some of these as extensions: fine, as long as the
             * rule set is usable. */
            assert_non_null(cn_ingress_match(ing, "a.test", "/"));
            cn_ingress_unref(ing);
            assert_true(i >= 2);
            continue;
        }
        int at = find_line(&errs, needle, NULL);
        size_t n = errs.n;
        if (at < 0 || n != 1)
            print_errs(json, &errs);
        cn_ingress_errors_cleanup(&errs);
        assert_int_equal(n, 1);
        assert_true(at >= 0);
    }
    one_error("{\"ingress\": [{\"hostname\": \"a.test\", \"path\": 5, \"service\": "
              "\"http://h:1\"}," CATCH_ALL "]}",
              "rule #1: path must be a string", NULL);
}

static void test_err_service_no_scheme(void **state)
{
    (void)state;
    const char *svcs[] = {"localhost:8080", "ftp://h:1", "", "hello_world2", "udp://h:22"};
    for (size_t i = 0; i < sizeof(svcs) / sizeof(svcs[0]); i++) {
        char json[512];
        snprintf(json, sizeof(json),
                 "{\"ingress\": [{\"hostname\": \"a.test\", \"service\": \"%s\"}," CATCH_ALL "]}",
                 svcs[i]);
        one_error(json, "rule #1: service", "has no scheme: use http://host:port");
    }
}

static void test_err_service_with_path(void **state)
{
    (void)state;
    const char *svcs[] = {"http://h:1/api", "http://h:1/api/", "https://h?x=1", "http://h#f",
                          "http://u:p@h:1", "http://",         "http:///"};
    for (size_t i = 0; i < sizeof(svcs) / sizeof(svcs[0]); i++) {
        char json[512];
        snprintf(json, sizeof(json),
                 "{\"ingress\": [{\"hostname\": \"a.test\", \"service\": \"%s\"}," CATCH_ALL "]}",
                 svcs[i]);
        one_error(json, "rule #1: service", "has a path: a service is scheme://host[:port] only");
    }
}

static void test_err_service_port_and_unix(void **state)
{
    (void)state;
    one_error(
        "{\"ingress\": [{\"hostname\": \"a.test\", \"service\": \"http://h:99999\"}," CATCH_ALL
        "]}",
        "rule #1: service \"http://h:99999\": bad port", NULL);
    one_error("{\"ingress\": [{\"hostname\": \"a.test\", \"service\": \"unix:app.sock\"}," CATCH_ALL
              "]}",
              "rule #1", "give the socket's absolute path");
    one_error("{\"ingress\": [{\"hostname\": \"a.test\"}," CATCH_ALL "]}",
              "rule #1: a rule needs a \"service\" string", NULL);
    one_error("{\"ingress\": [{\"hostname\": \"a.test\", \"service\": 80}," CATCH_ALL "]}",
              "rule #1: a rule needs a \"service\" string", NULL);
}

/* ---- defect 11: values that reach headers and curl options ---- */

#define RULE_OPTS(opts)                                                                            \
    "{\"ingress\": [{\"hostname\": \"a.test\", \"service\": \"http://h:1\"},"                      \
    "{\"hostname\": \"b.test\", \"service\": \"https://h:1\", \"originRequest\": " opts            \
    "}," CATCH_ALL "]}"

static void test_defect11_http_host_header_refused(void **state)
{
    (void)state;
    const char *bad[] = {
        "{\"httpHostHeader\": \"internal.local\\r\\nX-Admin: 1\"}",
        "{\"httpHostHeader\": \"internal.local\\nX: y\"}",
        "{\"httpHostHeader\": \"internal local\"}",
        "{\"httpHostHeader\": \"internal.local\\t\"}",
        "{\"httpHostHeader\": \"a:b:c\"}",
        "{\"httpHostHeader\": \"internal.local:\"}",
        "{\"httpHostHeader\": \"internal.local:99999\"}",
        "{\"httpHostHeader\": \"internal.local:80x\"}",
        "{\"httpHostHeader\": \"user@internal.local\"}",
        "{\"httpHostHeader\": \"internal.local/x\"}",
        "{\"httpHostHeader\": \"[::1\"}",
        "{\"httpHostHeader\": \"[nope]:80\"}",
        "{\"httpHostHeader\": \"a..b\"}",
        "{\"httpHostHeader\": \"caf\u00e9.local\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char json[512];
        snprintf(json, sizeof(json), RULE_OPTS("%s"), bad[i]);
        one_error(json, "rule #2: originRequest.httpHostHeader", "is not a valid Host value");
    }
    /* The message shows a CR/LF escaped, not as a line break. */
    struct cn_ingress_errors errs;
    parse_bad(RULE_OPTS("{\"httpHostHeader\": \"a\\r\\nb\"}"), &errs);
    int escaped = find_line(&errs, "\"a\\x0d\\x0ab\"", NULL) >= 0;
    int raw = find_line(&errs, "\n", NULL) >= 0;
    cn_ingress_errors_cleanup(&errs);
    assert_true(escaped);
    assert_false(raw);
    /* Top-level defaults are checked where they are written. */
    one_error("{\"originRequest\": {\"httpHostHeader\": \"x\\r\\ny\"}, \"ingress\": [" CATCH_ALL
              "]}",
              "originRequest: originRequest.httpHostHeader", "is not a valid Host value");
}

static void test_defect11_http_host_header_accepted(void **state)
{
    (void)state;
    const char *good[] = {"internal.local", "internal.local:8080", "127.0.0.1",   "127.0.0.1:80",
                          "[::1]",          "[::1]:8443",          "my_host.lan", "Example.COM."};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        char json[512];
        snprintf(json, sizeof(json), RULE_OPTS("{\"httpHostHeader\": \"%s\"}"), good[i]);
        struct cn_ingress *ing = parse_ok(json);
        assert_string_equal(ing->rules[1].o.http_host_header, good[i]);
        cn_ingress_unref(ing);
    }
}

static void test_defect11_origin_server_name(void **state)
{
    (void)state;
    const char *bad[] = {"portainer.local:443",
                         "portainer.local\\r\\nX: y",
                         "portainer local",
                         "[::1]",
                         "a/b",
                         "a@b",
                         ".portainer.local"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char json[512];
        snprintf(json, sizeof(json), RULE_OPTS("{\"originServerName\": \"%s\"}"), bad[i]);
        one_error(json, "rule #2: originRequest.originServerName", "is not a valid hostname");
    }
    struct cn_ingress *ing = parse_ok(RULE_OPTS("{\"originServerName\": \"portainer.local\"}"));
    assert_string_equal(ing->rules[1].o.origin_server_name, "portainer.local");
    cn_ingress_unref(ing);
}

static void test_defect11_service_host(void **state)
{
    (void)state;
    const char *bad[] = {"http://h\\r\\nX: y:80", "http://a b:80", "http://a:b:80",
                         "https://h\\t:443",      "tcp://a,b:22",  "http://[nope]:80",
                         "http://a..b",           "unix:/s\\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char json[512];
        snprintf(json, sizeof(json),
                 "{\"ingress\": [{\"hostname\": \"a.test\", \"service\": \"%s\"}," CATCH_ALL "]}",
                 bad[i]);
        struct cn_ingress_errors errs;
        parse_bad(json, &errs);
        int named = find_line(&errs, "rule #1: service", NULL) >= 0;
        int raw = find_line(&errs, "\n", NULL) >= 0 || find_line(&errs, "\r", NULL) >= 0;
        if (!named || raw)
            print_errs(json, &errs);
        cn_ingress_errors_cleanup(&errs);
        assert_true(named);
        assert_false(raw);
    }
    struct cn_ingress *ing = parse_ok(
        "{\"ingress\": [{\"hostname\": \"a.test\", \"service\": \"http://my-app_1.lan:80\"},"
        "{\"hostname\": \"b.test\", \"service\": \"tcp://10.0.0.2:22\"}," CATCH_ALL "]}");
    assert_string_equal(ing->rules[0].host, "my-app_1.lan");
    assert_string_equal(ing->rules[1].host, "10.0.0.2");
    cn_ingress_unref(ing);
}

/* The --url shorthand: the same checks, naming the flag. */
static void test_defect11_flags(void **state)
{
    (void)state;
    const char *hosts[] = {"a.test"}, *good_url[] = {"http://127.0.0.1:8080"};
    const char *bad_url[] = {"http://127.0.0.1\r\nX: y:8080"};
    struct cn_ingress *ing = NULL;
    struct cn_ingress_errors errs = {0};
    struct cn_origin_opts def = {0};
    def.http_host_header = strdup("internal.local\r\nX-Admin: 1");
    def.origin_server_name = strdup("portainer.local:443");
    def.set = CN_OPT_HOST_HEADER | CN_OPT_SERVER_NAME;
    int rc = cn_ingress_from_flags(hosts, good_url, 1, 1, &def, &ing, &errs);
    int hh = find_line(&errs, "--http-host-header \"internal.local\\x0d\\x0aX-Admin: 1\"",
                       "is not a valid Host value", NULL) >= 0;
    int sn = find_line(&errs, "--origin-server-name \"portainer.local:443\"",
                       "is not a valid hostname", NULL) >= 0;
    size_t n = errs.n;
    if (!hh || !sn || n != 2)
        print_errs("flags", &errs);
    cn_ingress_errors_cleanup(&errs);
    cn_origin_opts_cleanup(&def);
    assert_int_equal(rc, PX_ERR_INVAL);
    assert_null(ing);
    assert_true(hh);
    assert_true(sn);
    assert_int_equal(n, 2);

    struct cn_origin_opts none = {0};
    rc = cn_ingress_from_flags(hosts, bad_url, 1, 1, &none, &ing, &errs);
    int named = find_line(&errs, "--hostname a.test: service", NULL) >= 0;
    int raw = find_line(&errs, "\n", NULL) >= 0;
    cn_ingress_errors_cleanup(&errs);
    assert_int_equal(rc, PX_ERR_INVAL);
    assert_true(named);
    assert_false(raw);
}

static void test_err_unknown_rule_key(void **state)
{
    (void)state;
    one_error("{\"ingress\": [{\"hostname\": \"a.test\", \"servce\": \"x\", \"service\": "
              "\"http://h:1\"}," CATCH_ALL "]}",
              "rule #1: unknown key \"servce\"", "known: hostname, path, service, originRequest");
    one_error("{\"ingress\": [{\"hostname\": \"a.test\", \"service\": \"http://h:1\"},"
              "{\"service\": \"http_status:404\", \"comment\": \"last\"}]}",
              "rule #2: unknown key \"comment\"", NULL);
}

static void test_err_unknown_top_key(void **state)
{
    (void)state;
    one_error("{\"ingres\": [], \"ingress\": [" CATCH_ALL "]}", "unknown top-level key \"ingres\"",
              "known: ingress, originRequest");
    one_error("{\"tunnel\": \"x\", \"ingress\": [" CATCH_ALL "]}",
              "unknown top-level key \"tunnel\"", NULL);
}

static void test_err_unknown_origin_key(void **state)
{
    (void)state;
    one_error("{\"ingress\": [{\"hostname\": \"a.test\", \"service\": \"http://h:1\"},"
              "{\"hostname\": \"b.test\", \"service\": \"http://h:1\", \"originRequest\": "
              "{\"noTlsVerify\": true}}," CATCH_ALL "]}",
              "rule #2: unknown originRequest setting \"noTlsVerify\"", "noTLSVerify");
    one_error("{\"originRequest\": {\"connectTimeoutt\": 5}, \"ingress\": [" CATCH_ALL "]}",
              "originRequest: unknown originRequest setting \"connectTimeoutt\"", "connectTimeout");
}

static void test_err_http_status_range(void **state)
{
    (void)state;
    const char *svcs[] = {"http_status:99",   "http_status:600",  "http_status:abc", "http_status:",
                          "http_status:404x", "http_status:-404", "http_status:0"};
    for (size_t i = 0; i < sizeof(svcs) / sizeof(svcs[0]); i++) {
        char json[512];
        snprintf(json, sizeof(json),
                 "{\"ingress\": [{\"hostname\": \"a.test\", \"service\": \"hello_world\"},"
                 "{\"service\": \"%s\"}]}",
                 svcs[i]);
        char needle[128];
        snprintf(needle, sizeof(needle), "rule #2: service \"%s\"", svcs[i]);
        one_error(json, needle, "the status must be a number from 100 to 599");
    }
}

static void test_err_cert_without_key(void **state)
{
    (void)state;
    char json[1024];
    snprintf(json, sizeof(json),
             "{\"ingress\": [{\"hostname\": \"a.test\", \"service\": \"https://h:1\", "
             "\"originRequest\": {\"originCert\": \"%s\"}}," CATCH_ALL "]}",
             cert_path);
    one_error(json, "rule #1: originCert and originKey must be given together", NULL);
    snprintf(json, sizeof(json),
             "{\"ingress\": [{\"hostname\": \"a.test\", \"service\": \"https://h:1\"},"
             "{\"hostname\": \"b.test\", \"service\": \"https://h:1\", "
             "\"originRequest\": {\"originKey\": \"%s\"}}," CATCH_ALL "]}",
             key_path);
    one_error(json, "rule #2: originCert and originKey must be given together", NULL);
    /* The pair split between the top level and a rule is complete. */
    snprintf(json, sizeof(json),
             "{\"originRequest\": {\"originKey\": \"%s\"}, \"ingress\": ["
             "{\"hostname\": \"a.test\", \"service\": \"https://h:1\", "
             "\"originRequest\": {\"originCert\": \"%s\"}}, {\"service\": \"http_status:404\", "
             "\"originRequest\": {\"originCert\": \"%s\"}}]}",
             key_path, cert_path, cert_path);
    struct cn_ingress *ing = parse_ok(json);
    assert_string_equal(ing->rules[0].o.origin_key, key_path);
    cn_ingress_unref(ing);
}

static void test_err_unreadable_files(void **state)
{
    (void)state;
    char json[1024];
    snprintf(json, sizeof(json),
             "{\"ingress\": [{\"hostname\": \"a.test\", \"service\": \"https://h:1\", "
             "\"originRequest\": {\"caPool\": \"%s/missing.pem\"}}," CATCH_ALL "]}",
             tmpdir);
    one_error(json, "rule #1: caPool file", "missing.pem cannot be read: No such file");
    snprintf(json, sizeof(json),
             "{\"ingress\": [{\"hostname\": \"a.test\", \"service\": \"https://h:1\", "
             "\"originRequest\": {\"caPool\": \"%s\"}}," CATCH_ALL "]}",
             nopem_path);
    one_error(json, "rule #1: caPool file", "holds no PEM certificate");
    snprintf(json, sizeof(json),
             "{\"ingress\": [{\"hostname\": \"a.test\", \"service\": \"https://h:1\", "
             "\"originRequest\": {\"originCert\": \"%s/nocert.pem\", \"originKey\": \"%s\"}},"
             "" CATCH_ALL "]}",
             tmpdir, key_path);
    one_error(json, "rule #1: originCert file", "nocert.pem cannot be read");
    snprintf(json, sizeof(json),
             "{\"ingress\": [{\"hostname\": \"a.test\", \"service\": \"https://h:1\", "
             "\"originRequest\": {\"originCert\": \"%s\", \"originKey\": \"%s/nokey.pem\"}},"
             "" CATCH_ALL "]}",
             cert_path, tmpdir);
    one_error(json, "rule #1: originKey file", "nokey.pem cannot be read");
}

static void test_err_invalid_json(void **state)
{
    (void)state;
    one_error("{\"ingress\": [\n  {\"service\": }\n]}", "line 2, column", NULL);
    one_error("", "line 1", NULL);
    one_error("{\"ingress\": [" CATCH_ALL "]} trailing", "line 1, column", NULL);
    one_error("{\"ingress\": [" CATCH_ALL "], \"ingress\": [" CATCH_ALL "]}", "line 1",
              "duplicate");
    one_error("[" CATCH_ALL "]", "must be a JSON object with an \"ingress\" list", NULL);
    one_error("{}", "\"ingress\" must be a list of rules", NULL);
    one_error("{\"ingress\": " CATCH_ALL "}", "\"ingress\" must be a list of rules", NULL);
    /* Embedded NUL: the length is honoured. */
    struct cn_ingress_errors errs = {0};
    struct cn_ingress *ing = NULL;
    const char text[] = "{\"ingress\": [" CATCH_ALL "]}\0garbage";
    assert_int_equal(cn_ingress_parse(text, sizeof(text) - 1, &ing, &errs), PX_ERR_INVAL);
    assert_null(ing);
    cn_ingress_errors_cleanup(&errs);
    /* A shorter length stops before the garbage. */
    assert_int_equal(cn_ingress_parse(text, strlen(text), &ing, &errs), 0);
    assert_int_equal(errs.n, 0);
    cn_ingress_unref(ing);
}

static void test_err_empty_list(void **state)
{
    (void)state;
    one_error("{\"ingress\": []}", "no ingress rules", "http_status:404");
}

static void test_err_non_object_rule(void **state)
{
    (void)state;
    struct cn_ingress_errors errs;
    parse_bad("{\"ingress\": [{\"hostname\": \"a.test\", \"service\": \"http://h:1\"}, 42,"
              "" CATCH_ALL "]}",
              &errs);
    int at = find_line(&errs, "rule #2: a rule must be an object", NULL);
    cn_ingress_errors_cleanup(&errs);
    assert_true(at >= 0);
    parse_bad("{\"ingress\": [{\"hostname\": \"a.test\", \"service\": \"http://h:1\"}, null]}",
              &errs);
    at = find_line(&errs, "rule #2: a rule must be an object", NULL);
    cn_ingress_errors_cleanup(&errs);
    assert_true(at >= 0);
}

/* Found by fuzz_ingress: glibc's regcomp copies what a repetition repeats,
 * so "^/api" followed by 60 '+' asked for 2^60 copies (the fuzzer's 2 GB
 * limit; the connector would die at start or on a SIGHUP reload), and
 * "(a*){20000}" takes 3 GB. Such paths are refused with a reason. */
static void fuzz_defect_path_regex_that_expands_exponentially_is_refused(void **state)
{
    (void)state;
    char json[512], plus[61];
    memset(plus, '+', 60);
    plus[60] = '\0';
    snprintf(json, sizeof(json),
             "{\"ingress\": [{\"hostname\": \"a.test\", \"path\": \"^/api%s\", "
             "\"service\": \"hello_world\"}, " CATCH_ALL "]}",
             plus);
    one_error(json, "rule #1: path", "repeats too much");
    one_error("{\"ingress\": [{\"path\": \"(a*){20000}\", \"service\": \"hello_world\"}, " CATCH_ALL
              "]}",
              "rule #1", "repeats too much");
    one_error(
        "{\"ingress\": [{\"path\": \"((x{50}){50}){50}\", \"service\": \"hello_world\"}, " CATCH_ALL
        "]}",
        "rule #1", "repeats too much");
    /* Ordinary repetition stays fine. */
    struct cn_ingress *ing = parse_ok(
        "{\"ingress\": [{\"path\": \"^/api/v[0-9]+/(users|groups)/[a-z0-9-]{1,64}(/.*)?$\", "
        "\"service\": \"hello_world\"}, {\"path\": \"^/[[:alnum:]]{1,255}\\\\.(png|jpe?g)$\", "
        "\"service\": \"hello_world\"}, " CATCH_ALL "]}");
    assert_int_equal(ing->rules[0].index, 0);
    cn_ingress_unref(ing);
}

/* Found by the 10-minute fuzz_ingress run: "^/?" followed by 140 stacked
 * '*' (one closure nested in the next) took glibc past the fuzzer's 12 s
 * timeout. A repetition of a repetition is refused; one of a group is not. */
static void fuzz_defect_stacked_repetitions_are_refused(void **state)
{
    (void)state;
    char json[512], stars[141];
    memset(stars, '*', 140);
    stars[140] = '\0';
    snprintf(json, sizeof(json),
             "{\"ingress\": [{\"path\": \"^/?%s....\", \"service\": \"hello_world\"}, " CATCH_ALL
             "]}",
             stars);
    one_error(json, "rule #1: path", "repeat a repetition");
    one_error("{\"ingress\": [{\"path\": \"^/a+*\", \"service\": \"hello_world\"}, " CATCH_ALL "]}",
              "rule #1", "repeats too much");
    one_error("{\"ingress\": [{\"path\": \"^/a*{2}\", \"service\": \"hello_world\"}, " CATCH_ALL
              "]}",
              "rule #1", "repeats too much");
    struct cn_ingress *ing = parse_ok(
        "{\"ingress\": [{\"path\": \"^/(a*)*$\", \"service\": \"hello_world\"}, {\"path\": "
        "\"^/x(ab+)?y*$\", \"service\": \"hello_world\"}, " CATCH_ALL "]}");
    cn_ingress_unref(ing);
}

static void test_err_too_many_rules(void **state)
{
    (void)state;
    size_t cap = 1100 * 80 + 64; /* each rule is under 80 characters */
    char *json = malloc(cap);
    assert_non_null(json);
    for (int total = 1024; total <= 1025; total++) {
        size_t off = (size_t)snprintf(json, cap, "{\"ingress\": [");
        for (int i = 0; i < total - 1; i++)
            off +=
                (size_t)snprintf(json + off, cap - off,
                                 "{\"hostname\": \"h%d.test\", \"service\": \"hello_world\"},", i);
        snprintf(json + off, cap - off, CATCH_ALL "]}");
        if (total == 1024) {
            struct cn_ingress *ing = parse_ok(json);
            assert_int_equal(ing->n, 1024);
            assert_int_equal(ing->n_hostnames, 1023);
            assert_ptr_equal(cn_ingress_match(ing, "h1022.test", "/"), &ing->rules[1022]);
            cn_ingress_unref(ing);
        } else {
            one_error(json, "too many ingress rules (at most 1024)", NULL);
        }
    }
    free(json);
}

static void test_err_many_in_one_pass(void **state)
{
    (void)state;
    char json[2048];
    snprintf(json, sizeof(json),
             "{\"bogus\": 1, \"originRequest\": {\"connectTimeout\": \"soon\"}, \"ingress\": [\n"
             " {\"hostname\": \"a*.x.test\", \"service\": \"http://h:1\"},\n"
             " {\"hostname\": \"b.test\", \"path\": \"(\", \"service\": \"ftp://x\"},\n"
             " {\"hostname\": \"c.test\", \"service\": \"http_status:700\", \"extra\": 1},\n"
             " {\"hostname\": \"d.test\", \"service\": \"https://h:1\",\n"
             "  \"originRequest\": {\"originCert\": \"%s\", \"nope\": 1}}\n"
             "]}",
             cert_path);
    struct cn_ingress_errors errs;
    parse_bad(json, &errs);
    const char *want[][2] = {
        {"unknown top-level key \"bogus\"", NULL},
        {"originRequest: originRequest.connectTimeout", NULL},
        {"rule #1", "wildcard"},
        {"rule #2", "regular expression"},
        {"rule #2", "no scheme"},
        {"rule #3", "unknown key \"extra\""},
        {"rule #3", "100 to 599"},
        {"rule #4", "unknown originRequest setting \"nope\""},
        {"rule #4", "originCert and originKey"},
        {"last rule (#4)", NULL},
    };
    size_t nwant = sizeof(want) / sizeof(want[0]);
    int missing = 0;
    for (size_t i = 0; i < nwant; i++)
        if (find_line(&errs, want[i][0], want[i][1], NULL) < 0) {
            print_error("missing: %s %s\n", want[i][0], want[i][1] ? want[i][1] : "");
            missing++;
        }
    size_t n = errs.n;
    if (missing || n != nwant)
        print_errs("got", &errs);
    cn_ingress_errors_cleanup(&errs);
    assert_int_equal(missing, 0);
    assert_int_equal(n, nwant);
}

static void test_errors_accumulate(void **state)
{
    (void)state;
    /* errs is appended to, not reset: earlier lines stay. */
    struct cn_ingress_errors errs = {0};
    struct cn_ingress *ing = NULL;
    const char *bad = "{\"ingress\": []}";
    assert_int_equal(cn_ingress_parse(bad, strlen(bad), &ing, &errs), PX_ERR_INVAL);
    assert_int_equal(errs.n, 1);
    assert_int_equal(cn_ingress_parse(bad, strlen(bad), &ing, &errs), PX_ERR_INVAL);
    assert_int_equal(errs.n, 2);
    /* Pre-existing lines do not make a valid text fail. */
    const char *good = "{\"ingress\": [" CATCH_ALL "]}";
    assert_int_equal(cn_ingress_parse(good, strlen(good), &ing, &errs), 0);
    assert_int_equal(errs.n, 2);
    cn_ingress_unref(ing);
    cn_ingress_errors_cleanup(&errs);
    assert_int_equal(errs.n, 0);
    assert_null(errs.lines);
    cn_ingress_errors_cleanup(&errs); /* twice is harmless */
}

/* ---- loading files ---- */

static void test_load_file(void **state)
{
    (void)state;
    struct cn_ingress_errors errs = {0};
    struct cn_ingress *ing = NULL;
    assert_int_equal(cn_ingress_load(cfg_path, &ing, &errs), 0);
    assert_int_equal(errs.n, 0);
    assert_non_null(ing);
    assert_int_equal(ing->n, 2);
    assert_string_equal(ing->rules[0].hostname, "a.test");
    assert_int_equal(ing->rules[0].port, 8080);
    cn_ingress_unref(ing);
}

static void test_load_unreadable(void **state)
{
    (void)state;
    struct cn_ingress_errors errs = {0};
    struct cn_ingress *ing = (struct cn_ingress *)1;
    char path[128];
    snprintf(path, sizeof(path), "%s/absent.json", tmpdir);
    assert_int_equal(cn_ingress_load(path, &ing, &errs), PX_ERR_IO);
    assert_null(ing);
    assert_int_equal(errs.n, 1);
    int at = find_line(&errs, "cannot read", path, "No such file or directory", NULL);
    if (at < 0)
        print_errs(path, &errs);
    cn_ingress_errors_cleanup(&errs);
    assert_true(at >= 0);
}

static void test_load_syntax_error_names_file(void **state)
{
    (void)state;
    struct cn_ingress_errors errs = {0};
    struct cn_ingress *ing = (struct cn_ingress *)1;
    assert_int_equal(cn_ingress_load(badcfg_path, &ing, &errs), PX_ERR_INVAL);
    assert_null(ing);
    assert_int_equal(errs.n, 1);
    char prefix[128];
    snprintf(prefix, sizeof(prefix), "%s: line 2, column", badcfg_path);
    int at = find_line(&errs, prefix, NULL);
    if (at != 0)
        print_errs(badcfg_path, &errs);
    cn_ingress_errors_cleanup(&errs);
    assert_int_equal(at, 0);

    /* Validation errors from a file keep their rule numbers. */
    char path[128];
    snprintf(path, sizeof(path), "%s/norule.json", tmpdir);
    assert_int_equal(write_file(path, "{\"ingress\": [{\"hostname\": \"a.test\", \"service\": "
                                      "\"ftp://x\"}]}"),
                     0);
    assert_int_equal(cn_ingress_load(path, &ing, &errs), PX_ERR_INVAL);
    assert_int_equal(errs.n, 2);
    at = find_line(&errs, "rule #1", "no scheme", NULL);
    cn_ingress_errors_cleanup(&errs);
    unlink(path);
    assert_true(at >= 0);
}

/* ---- reference counting ---- */

static void test_refcount(void **state)
{
    (void)state;
    struct cn_ingress *ing = parse_ok("{\"ingress\": [{\"hostname\": \"a.test\", \"path\": "
                                      "\"^/x\", \"service\": \"http://h:1\"}," CATCH_ALL "]}");
    /* A request in flight takes a reference... */
    struct cn_ingress *held = ing;
    cn_ingress_ref(held);
    assert_int_equal(ing->refs, 2);
    const struct cn_rule *r = cn_ingress_match(held, "a.test", "/x");
    /* ...the config swaps in a new set and drops its own... */
    struct cn_ingress *next = parse_ok("{\"ingress\": [" CATCH_ALL "]}");
    cn_ingress_unref(ing);
    ing = next;
    /* ...and the request still reads its rule (ASan would flag a free). */
    assert_int_equal(held->refs, 1);
    assert_string_equal(r->hostname, "a.test");
    assert_string_equal(r->path, "^/x");
    assert_int_equal(r->port, 1);
    assert_ptr_equal(cn_ingress_match(held, "a.test", "/x/y"), r);
    assert_string_equal(held->hostnames[0], "a.test");
    cn_ingress_unref(held);
    cn_ingress_unref(ing);
    cn_ingress_unref(NULL); /* harmless */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_config),
        cmocka_unit_test(test_services),
        cmocka_unit_test(test_opts_defaults_when_unset),
        cmocka_unit_test(test_opts_inherited_and_overridden),
        cmocka_unit_test(test_opts_top_ca_pool_inherited),
        cmocka_unit_test(test_opts_client_cert),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_duration_overflow),
        cmocka_unit_test(test_opts_type_errors),
        cmocka_unit_test(test_access_off_by_default),
        cmocka_unit_test(test_access_parsed_and_inherited),
        cmocka_unit_test(test_access_errors),
        cmocka_unit_test(test_origin_pull_parsed_and_inherited),
        cmocka_unit_test(test_origin_pull_errors),
        cmocka_unit_test(test_match_exact_host),
        cmocka_unit_test(test_match_wildcard),
        cmocka_unit_test(test_match_path),
        cmocka_unit_test(test_match_long_path),
        cmocka_unit_test(test_match_first_wins),
        cmocka_unit_test(test_catch_all_forms),
        cmocka_unit_test(test_hostnames_list),
        cmocka_unit_test(test_err_no_catch_all_last),
        cmocka_unit_test(test_err_catch_all_not_last),
        cmocka_unit_test(test_err_invalid_hostname_not_catch_all),
        cmocka_unit_test(test_err_broken_rule_not_catch_all),
        cmocka_unit_test(test_err_bad_wildcard),
        cmocka_unit_test(test_err_bad_hostname),
        cmocka_unit_test(test_err_bad_regex),
        cmocka_unit_test(test_err_service_no_scheme),
        cmocka_unit_test(test_err_service_with_path),
        cmocka_unit_test(test_err_service_port_and_unix),
        cmocka_unit_test(test_defect11_http_host_header_refused),
        cmocka_unit_test(test_defect11_http_host_header_accepted),
        cmocka_unit_test(test_defect11_origin_server_name),
        cmocka_unit_test(test_defect11_service_host),
        cmocka_unit_test(test_defect11_flags),
        cmocka_unit_test(test_err_unknown_rule_key),
        cmocka_unit_test(test_err_unknown_top_key),
        cmocka_unit_test(test_err_unknown_origin_key),
        cmocka_unit_test(test_err_http_status_range),
        cmocka_unit_test(test_err_cert_without_key),
        cmocka_unit_test(test_err_unreadable_files),
        cmocka_unit_test(test_err_invalid_json),
        cmocka_unit_test(test_err_empty_list),
        cmocka_unit_test(test_err_non_object_rule),
        cmocka_unit_test(test_err_too_many_rules),
        cmocka_unit_test(fuzz_defect_path_regex_that_expands_exponentially_is_refused),
        cmocka_unit_test(fuzz_defect_stacked_repetitions_are_refused),
        cmocka_unit_test(test_err_many_in_one_pass),
        cmocka_unit_test(test_errors_accumulate),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_load_unreadable),
        cmocka_unit_test(test_load_syntax_error_names_file),
        cmocka_unit_test(test_refcount),
    };
    return cmocka_run_group_tests_name("cn_ingress", tests, setup, teardown);
}
