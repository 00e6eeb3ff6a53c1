/* cn_config: service URLs (through cn_ingress_from_flags) and `connector run`
 * argument parsing, including --config files and origin flags. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "px_log.h"
#include "cn_config.h"
#include "px_err.h"
#include "px_token.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *token; /* a valid token, made in setup */
static char tmpdir[] = "/tmp/cn-config-files-XXXXXX";
static char ca_path[96], cert_path[96], key_path[96], good_cfg[96], bad_cfg[96];

#define PEM "-----BEGIN CERTIFICATE-----\nMIIBtestpoolcert\n-----END CERTIFICATE-----\n"

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
    struct px_token t;
    memset(&t, 0, sizeof(t));
    memcpy(t.tunnel_id, "00112233445566778899aabbccddeeff", 33);
    snprintf(t.name, sizeof(t.name), "test");
    memset(t.secret, 0x42, sizeof(t.secret));
    t.edges[0] = "edge.test:7844";
    t.n_edges = 1;
    snprintf(t.server_name, sizeof(t.server_name), "tunnel.test");
    t.ca_pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    token = px_token_encode(&t);
    unsetenv("TUNNEL_TOKEN");
    /* Keep the default state dir away from the real home. */
    setenv("STATE_DIRECTORY", "/tmp/cn-config-test-state", 1);
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(ca_path, sizeof(ca_path), "%s/ca.pem", tmpdir);
    snprintf(cert_path, sizeof(cert_path), "%s/cert.pem", tmpdir);
    snprintf(key_path, sizeof(key_path), "%s/key.pem", tmpdir);
    snprintf(good_cfg, sizeof(good_cfg), "%s/good.json", tmpdir);
    snprintf(bad_cfg, sizeof(bad_cfg), "%s/bad.json", tmpdir);
    if (write_file(ca_path, PEM) || write_file(cert_path, PEM) ||
        write_file(key_path, "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n") ||
        write_file(
            good_cfg,
            "{\"ingress\": [\n"
            "  {\"hostname\": \"App.Example.com\", \"service\": \"http://127.0.0.1:8080\"},\n"
            "  {\"hostname\": \"*.example.org\", \"path\": \"^/api/\",\n"
            "   \"service\": \"unix:/run/api.sock\"},\n"
            "  {\"service\": \"http_status:404\"}\n"
            "]}\n") ||
        write_file(bad_cfg, "{\"ingress\": [{\"hostname\": \"a.example\", \"service\": "
                            "\"http://h:1\"}]}\n"))
        return -1;
    return token ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    free(token);
    const char *files[] = {ca_path, cert_path, key_path, good_cfg, bad_cfg};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        unlink(files[i]);
    rmdir(tmpdir);
    return 0;
}

/* Builds a from-flags set for one hostname and returns it (never NULL). */
static struct cn_ingress *flags_one(const char *host, const char *url,
                                    const struct cn_origin_opts *def)
{
    const char *hosts[] = {host}, *urls[] = {url};
    struct cn_origin_opts none;
    memset(&none, 0, sizeof(none));
    struct cn_ingress_errors errs = {0};
    struct cn_ingress *ing = NULL;
    int rc = cn_ingress_from_flags(hosts, urls, 1, 1, def ? def : &none, &ing, &errs);
    if (rc != 0)
        for (size_t i = 0; i < errs.n; i++)
            print_error("%s: %s\n", url, errs.lines[i]);
    cn_ingress_errors_cleanup(&errs);
    assert_int_equal(rc, 0);
    assert_non_null(ing);
    return ing;
}

/* Checks rule 0 of a one-pair set; host/port only for http(s) services. */
static void svc_ok(const char *url, enum cn_service_kind kind, const char *host, int port, int tls)
{
    struct cn_ingress *ing = flags_one("a.example", url, NULL);
    assert_int_equal(ing->n, 2);
    const struct cn_rule *r = &ing->rules[0];
    assert_int_equal(r->kind, kind);
    assert_string_equal(r->hostname, "a.example");
    assert_string_equal(r->service, url);
    if (host) {
        assert_string_equal(r->host, host);
        assert_int_equal(r->port, port);
        assert_int_equal(r->tls, tls);
    }
    /* The appended catch-all answers 404 for anything else. */
    assert_int_equal(ing->rules[1].kind, CN_SVC_STATUS);
    assert_int_equal(ing->rules[1].status, 404);
    assert_string_equal(ing->rules[1].hostname, "");
    cn_ingress_unref(ing);
}

static void svc_bad(const char *url, const char *needle)
{
    const char *hosts[] = {"a.example"}, *urls[] = {url};
    struct cn_origin_opts none;
    memset(&none, 0, sizeof(none));
    struct cn_ingress_errors errs = {0};
    struct cn_ingress *ing = (struct cn_ingress *)1;
    int rc = cn_ingress_from_flags(hosts, urls, 1, 1, &none, &ing, &errs);
    if (rc == 0) {
        print_error("%s accepted\n", url);
        cn_ingress_unref(ing);
        ing = NULL;
    }
    size_t n = errs.n;
    int has_needle = n > 0 && strstr(errs.lines[0], needle) != NULL;
    /* The line names the flag it came from. */
    int has_flag = n > 0 && strstr(errs.lines[0], "--hostname a.example") != NULL;
    if (n > 0 && !has_needle)
        print_error("%s: reason \"%s\" lacks \"%s\"\n", url, errs.lines[0], needle);
    cn_ingress_errors_cleanup(&errs); /* before asserting: no leak on failure */
    assert_int_equal(rc, PX_ERR_INVAL);
    assert_null(ing);
    assert_int_equal(n, 1);
    assert_true(has_needle);
    assert_true(has_flag);
}

static void test_service_http(void **state)
{
    (void)state;
    svc_ok("http://h:1", CN_SVC_HTTP, "h", 1, 0);
    svc_ok("https://h:1/", CN_SVC_HTTP, "h", 1, 1);
    svc_ok("http://127.0.0.1:8080", CN_SVC_HTTP, "127.0.0.1", 8080, 0);
    svc_ok("http://[::1]:8080/", CN_SVC_HTTP, "[::1]", 8080, 0);
    svc_ok("HTTP://localhost", CN_SVC_HTTP, "localhost", 80, 0);
    svc_ok("https://origin.test", CN_SVC_HTTP, "origin.test", 443, 1);
}

static void test_service_trailing_slashes(void **state)
{
    (void)state;
    /* The former parser accepted any run of trailing slashes (an empty path);
     * cn_ingress strips only one. */
    svc_ok("https://h:1//", CN_SVC_HTTP, "h", 1, 1);
    svc_ok("https://h:1///", CN_SVC_HTTP, "h", 1, 1);
}

static void test_service_builtin(void **state)
{
    (void)state;
    svc_ok("hello_world", CN_SVC_HELLO, NULL, 0, 0);
    const int statuses[] = {404, 100, 599};
    for (size_t i = 0; i < 3; i++) {
        char url[32];
        snprintf(url, sizeof(url), "http_status:%d", statuses[i]);
        struct cn_ingress *ing = flags_one("a.example", url, NULL);
        assert_int_equal(ing->rules[0].kind, CN_SVC_STATUS);
        assert_int_equal(ing->rules[0].status, statuses[i]);
        cn_ingress_unref(ing);
    }
}

static void test_service_unix(void **state)
{
    (void)state;
    struct cn_ingress *ing = flags_one("a.example", "unix:/run/app.sock", NULL);
    assert_int_equal(ing->rules[0].kind, CN_SVC_UNIX);
    assert_int_equal(ing->rules[0].tls, 0);
    assert_string_equal(ing->rules[0].unix_path, "/run/app.sock");
    assert_string_equal(ing->rules[0].host, "localhost");
    cn_ingress_unref(ing);
    ing = flags_one("a.example", "unix+tls:/run/tls.sock", NULL);
    assert_int_equal(ing->rules[0].kind, CN_SVC_UNIX);
    assert_int_equal(ing->rules[0].tls, 1);
    assert_string_equal(ing->rules[0].unix_path, "/run/tls.sock");
    cn_ingress_unref(ing);
    svc_bad("unix:run/app.sock", "absolute path");
    svc_bad("unix+tls:", "absolute path");
}

static void test_service_errors(void **state)
{
    (void)state;
    svc_bad("h:1", "no scheme");
    svc_bad("localhost:8080", "no scheme");
    svc_bad("ftp://h:1", "no scheme");
    svc_bad("", "no scheme");
    svc_bad("hello_world2", "no scheme");
    svc_bad("http://", "has a path");
    svc_bad("http:///", "has a path");
    svc_bad("http://h:1/api", "has a path");
    svc_bad("http://h:1/api/", "has a path");
    svc_bad("http://h:1?x=1", "has a path");
    svc_bad("http://h:1#frag", "has a path");
    svc_bad("http://user:pw@h:1", "has a path");
    svc_bad("http://h:0", "bad port");
    svc_bad("http://h:65536", "bad port");
    svc_bad("http://h:", "bad port");
    svc_bad("http://h:80x", "bad port");
    svc_bad("http_status:99", "100 to 599");
    svc_bad("http_status:600", "100 to 599");
    svc_bad("http_status:", "100 to 599");
    svc_bad("http_status:404x", "100 to 599");
    svc_bad("http_status:abc", "100 to 599");
}

static void test_service_too_long(void **state)
{
    (void)state;
    /* A 600-character host is refused, and the reason survives in the line
     * even though the service text itself is long. */
    char url[700];
    int n = snprintf(url, sizeof(url), "http://");
    memset(url + n, 'a', 600);
    url[n + 600] = '\0';
    svc_bad(url, "bad host");
}

static void test_flags_pairs_and_errors(void **state)
{
    (void)state;
    const char *hosts[] = {"A.Example", "*.example.org", "a.example"};
    const char *urls[] = {"http://127.0.0.1:1", "hello_world", "http_status:503"};
    struct cn_origin_opts none;
    memset(&none, 0, sizeof(none));
    struct cn_ingress_errors errs = {0};
    struct cn_ingress *ing = NULL;
    assert_int_equal(cn_ingress_from_flags(hosts, urls, 3, 3, &none, &ing, &errs), 0);
    assert_int_equal(errs.n, 0);
    assert_int_equal(ing->refs, 1);
    assert_int_equal(ing->n, 4);
    for (size_t i = 0; i < ing->n; i++)
        assert_int_equal(ing->rules[i].index, i);
    /* Duplicate hostnames (after lower-casing) are registered once. */
    assert_int_equal(ing->n_hostnames, 2);
    assert_string_equal(ing->hostnames[0], "a.example");
    assert_string_equal(ing->hostnames[1], "*.example.org");
    assert_ptr_equal(cn_ingress_match(ing, "a.example", "/"), &ing->rules[0]);
    assert_ptr_equal(cn_ingress_match(ing, "x.example.org", "/"), &ing->rules[1]);
    assert_ptr_equal(cn_ingress_match(ing, "other.test", "/"), &ing->rules[3]);
    cn_ingress_unref(ing);

    /* Every bad pair is reported, each naming its flag. */
    const char *bad_hosts[] = {"ok.example", "bad host", "", "c.example"};
    const char *bad_urls[] = {"http://h:1", "http://h:1", "http://h:1", "ftp://x"};
    ing = (struct cn_ingress *)1;
    assert_int_equal(cn_ingress_from_flags(bad_hosts, bad_urls, 4, 4, &none, &ing, &errs),
                     PX_ERR_INVAL);
    assert_null(ing);
    assert_int_equal(errs.n, 3);
    assert_non_null(strstr(errs.lines[0], "bad host"));
    assert_non_null(strstr(errs.lines[1], "--hostname must not be empty"));
    assert_non_null(strstr(errs.lines[2], "--hostname c.example"));
    assert_non_null(strstr(errs.lines[2], "no scheme"));
    cn_ingress_errors_cleanup(&errs);
}

static void test_flags_origin_defaults(void **state)
{
    (void)state;
    struct cn_origin_opts def;
    memset(&def, 0, sizeof(def));
    def.no_tls_verify = 1;
    def.origin_server_name = strdup("origin.test");
    def.http_host_header = strdup("internal.test");
    def.connect_timeout_s = 7;
    def.set =
        CN_OPT_NO_TLS_VERIFY | CN_OPT_SERVER_NAME | CN_OPT_HOST_HEADER | CN_OPT_CONNECT_TIMEOUT;
    struct cn_ingress *ing = flags_one("a.example", "https://h:443", &def);
    const struct cn_origin_opts *o = &ing->rules[0].o;
    assert_int_equal(o->no_tls_verify, 1);
    assert_string_equal(o->origin_server_name, "origin.test");
    assert_string_equal(o->http_host_header, "internal.test");
    assert_int_equal(o->connect_timeout_s, 7);
    assert_int_equal(o->tls_timeout_s, 10);
    assert_int_equal(o->keepalive_conns, 100);
    assert_int_equal(o->keepalive_timeout_s, 90);
    assert_null(o->ca_pool);
    assert_null(o->ca_blob);
    /* The rule holds its own copies: the defaults can go first. */
    cn_origin_opts_cleanup(&def);
    assert_string_equal(ing->rules[0].o.origin_server_name, "origin.test");
    /* The 404 catch-all keeps plain defaults. */
    const struct cn_origin_opts *c = &ing->rules[1].o;
    assert_int_equal(c->no_tls_verify, 0);
    assert_null(c->origin_server_name);
    assert_int_equal(c->connect_timeout_s, 30);
    cn_ingress_unref(ing);

    /* A client certificate needs its key. */
    memset(&def, 0, sizeof(def));
    def.origin_cert = strdup(cert_path);
    def.set = CN_OPT_CERT;
    const char *hosts[] = {"a.example"}, *urls[] = {"https://h:1"};
    struct cn_ingress_errors errs = {0};
    ing = (struct cn_ingress *)1;
    assert_int_equal(cn_ingress_from_flags(hosts, urls, 1, 1, &def, &ing, &errs), PX_ERR_INVAL);
    assert_null(ing);
    assert_int_equal(errs.n, 1);
    assert_non_null(strstr(errs.lines[0], "originCert and originKey must be given together"));
    cn_ingress_errors_cleanup(&errs);
    cn_origin_opts_cleanup(&def);
}

/* Runs cn_config_parse_run on a NULL-terminated list of arguments. */
static int run(struct cn_config *cfg, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;
    va_start(ap, cfg);
    argv[argc++] = "run";
    for (const char *a; (a = va_arg(ap, const char *)) != NULL;)
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    return cn_config_parse_run(argc, argv, cfg);
}

static void test_missing_token(void **state)
{
    (void)state;
    struct cn_config cfg;
    unsetenv("TUNNEL_TOKEN");
    assert_int_equal(run(&cfg, "--hostname", "a.example", "--url", "hello_world", NULL), 2);
    assert_int_equal(run(&cfg, NULL), 2);
}

static void test_bad_token(void **state)
{
    (void)state;
    struct cn_config cfg;
    assert_int_equal(run(&cfg, "--token", "not-a-token", "--hostname", "a.example", "--url",
                         "hello_world", NULL),
                     2);
    assert_int_equal(run(&cfg, "--token-file", "/nonexistent/token", "--hostname", "a.example",
                         "--url", "hello_world", NULL),
                     2);
}

static void test_bad_loglevel(void **state)
{
    (void)state;
    struct cn_config cfg;
    assert_int_equal(run(&cfg, "--token", token, "--loglevel", "verbose", "--hostname", "a.example",
                         "--url", "hello_world", NULL),
                     2);
    assert_int_equal(run(&cfg, "--token", token, "--loglevel", "", "--hostname", "a.example",
                         "--url", "hello_world", NULL),
                     2);
}

static void test_bad_hostname(void **state)
{
    (void)state;
    struct cn_config cfg;
    const char *bad[] = {"a..b", "*", "*.", "bad host", "a.example:80", "*.*.example"};
    int accepted = 0;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = run(&cfg, "--token", token, "--hostname", bad[i], "--url", "hello_world", NULL);
        if (rc != 2) {
            print_error("--hostname \"%s\": got %d, want 2\n", bad[i], rc);
            accepted++;
        }
        if (rc == 0)
            cn_config_cleanup(&cfg);
    }
    assert_int_equal(accepted, 0);
}

static void test_other_usage_errors(void **state)
{
    (void)state;
    struct cn_config cfg;
    /* No route */
    assert_int_equal(run(&cfg, "--token", token, NULL), 2);
    /* Hostname without url, two hostnames with three urls */
    assert_int_equal(run(&cfg, "--token", token, "--hostname", "a.example", NULL), 2);
    assert_int_equal(run(&cfg, "--token", token, "--hostname", "a.example", "--hostname",
                         "b.example", "--url", "hello_world", "--url", "hello_world", "--url",
                         "hello_world", NULL),
                     2);
    /* Bad url */
    assert_int_equal(
        run(&cfg, "--token", token, "--hostname", "a.example", "--url", "http://h:1/path", NULL),
        2);
    /* Bad numbers */
    assert_int_equal(run(&cfg, "--token", token, "--hostname", "a.example", "--url", "hello_world",
                         "--ha-connections", "0", NULL),
                     2);
    assert_int_equal(run(&cfg, "--token", token, "--hostname", "a.example", "--url", "hello_world",
                         "--ha-connections", "17", NULL),
                     2);
    assert_int_equal(run(&cfg, "--token", token, "--hostname", "a.example", "--url", "hello_world",
                         "--connect-timeout", "1s", NULL),
                     2);
    /* Unknown flag, missing argument, stray argument, bad --edge */
    assert_int_equal(run(&cfg, "--token", token, "--frobnicate", NULL), 2);
    assert_int_equal(run(&cfg, "--hostname", "a.example", "--url", "hello_world", "--token", NULL),
                     2);
    assert_int_equal(run(&cfg, "--token", token, "--hostname", "a.example", "--url", "hello_world",
                         "stray", NULL),
                     2);
    assert_int_equal(run(&cfg, "--token", token, "--hostname", "a.example", "--url", "hello_world",
                         "--edge", "nohostport", NULL),
                     2);
}

static void test_valid_routes(void **state)
{
    (void)state;
    struct cn_config cfg;
    int rc =
        run(&cfg, "--token", token, "--hostname", "App.Example.com", "--url",
            "http://127.0.0.1:8080/", "--hostname", "*.example.org", "--url", "http_status:404",
            "--hostname", "hello.example", "--url", "hello_world", "--loglevel", "debug",
            "--ha-connections", "4", "--connect-timeout", "5", "--origin-response-timeout", "60",
            "--edge", "127.0.0.1:9000", "--state-dir", "/tmp/x", NULL);
    assert_int_equal(rc, 0);
    assert_non_null(cfg.ingress);
    assert_string_equal(cfg.config_path, "");
    const struct cn_rule *r = cfg.ingress->rules;
    assert_int_equal(cfg.ingress->n, 4); /* three pairs plus the 404 catch-all */
    assert_string_equal(r[0].hostname, "app.example.com");
    assert_int_equal(r[0].kind, CN_SVC_HTTP);
    assert_string_equal(r[0].host, "127.0.0.1");
    assert_int_equal(r[0].port, 8080);
    assert_int_equal(r[0].tls, 0);
    assert_string_equal(r[1].hostname, "*.example.org");
    assert_int_equal(r[1].kind, CN_SVC_STATUS);
    assert_int_equal(r[1].status, 404);
    assert_string_equal(r[2].hostname, "hello.example");
    assert_int_equal(r[2].kind, CN_SVC_HELLO);
    assert_string_equal(r[3].hostname, "");
    assert_null(r[3].path);
    assert_int_equal(r[3].kind, CN_SVC_STATUS);
    assert_int_equal(r[3].status, 404);
    assert_int_equal(cfg.ingress->n_hostnames, 3);
    assert_string_equal(cfg.ingress->hostnames[0], "app.example.com");
    assert_string_equal(cfg.ingress->hostnames[1], "*.example.org");
    assert_string_equal(cfg.ingress->hostnames[2], "hello.example");
    assert_int_equal(cfg.loglevel, PX_LOG_DEBUG);
    assert_int_equal(cfg.ha_connections, 4);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(r[i].o.connect_timeout_s, 5);
    assert_int_equal(cfg.response_timeout_ms, 60000);
    assert_int_equal(cfg.n_edges, 1); /* --edge replaces the token's edge.test:7844 */
    assert_string_equal(cfg.edges[0], "127.0.0.1:9000");
    assert_string_equal(cfg.state_dir, "/tmp/x");
    assert_string_equal(cfg.token.tunnel_id, "00112233445566778899aabbccddeeff");
    assert_string_equal(cfg.token.edges[0], "edge.test:7844");
    cn_config_cleanup(&cfg);
}

static void test_defaults_and_one_url_for_all(void **state)
{
    (void)state;
    struct cn_config cfg;
    int rc = run(&cfg, "--token", token, "--hostname", "a.example", "--hostname", "b.example",
                 "--url", "https://10.0.0.1:443", NULL);
    assert_int_equal(rc, 0);
    assert_int_equal(cfg.ingress->n, 3);
    assert_string_equal(cfg.ingress->rules[0].hostname, "a.example");
    assert_string_equal(cfg.ingress->rules[1].hostname, "b.example");
    for (size_t i = 0; i < 2; i++) {
        const struct cn_rule *r = &cfg.ingress->rules[i];
        assert_int_equal(r->kind, CN_SVC_HTTP);
        assert_string_equal(r->host, "10.0.0.1");
        assert_int_equal(r->port, 443);
        assert_int_equal(r->tls, 1);
        assert_int_equal(r->o.connect_timeout_s, 30);
        assert_int_equal(r->o.tls_timeout_s, 10);
        assert_int_equal(r->o.no_tls_verify, 0);
    }
    assert_int_equal(cfg.ingress->rules[2].kind, CN_SVC_STATUS);
    assert_int_equal(cfg.loglevel, PX_LOG_INFO);
    assert_int_equal(cfg.ha_connections, 4);
    assert_int_equal(cfg.response_timeout_ms, 100000);
    assert_string_equal(cfg.state_dir, "/tmp/cn-config-test-state");
    assert_int_equal(cfg.n_edges, 1); /* the token's */
    assert_string_equal(cfg.edges[0], "edge.test:7844");
    cn_config_cleanup(&cfg);
}

/* --edge repeats (in order, replacing the token's list); each must be
 * HOST:PORT, and no more than the token format allows. */
static void test_edges_repeatable_and_validated(void **state)
{
    (void)state;
    struct cn_config cfg;
    assert_int_equal(run(&cfg, "--token", token, "--hostname", "a.example", "--url", "hello_world",
                         "--edge", "127.0.0.1:7844", "--edge", "127.0.0.2:7845", "--edge",
                         "[::1]:7846", NULL),
                     0);
    assert_int_equal(cfg.n_edges, 3);
    assert_string_equal(cfg.edges[0], "127.0.0.1:7844");
    assert_string_equal(cfg.edges[1], "127.0.0.2:7845");
    assert_string_equal(cfg.edges[2], "[::1]:7846");
    cn_config_cleanup(&cfg);
    const char *bad[] = {
        "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", ":7844", "host:port", "[::1:7844", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(run(&cfg, "--token", token, "--hostname", "a.example", "--url",
                             "hello_world", "--edge", "127.0.0.1:1", "--edge", bad[i], NULL),
                         2);
    char longer[400];
    memset(longer, 'a', sizeof(longer));
    memcpy(longer + sizeof(longer) - 6, ":7844", 6);
    assert_int_equal(run(&cfg, "--token", token, "--hostname", "a.example", "--url", "hello_world",
                         "--edge", longer, NULL),
                     2);
    /* PX_TOKEN_MAX_EDGES (8) is the most. */
    assert_int_equal(run(&cfg, "--token", token, "--hostname", "a.example", "--url", "hello_world",
                         "--edge", "e:1", "--edge", "e:2", "--edge", "e:3", "--edge", "e:4",
                         "--edge", "e:5", "--edge", "e:6", "--edge", "e:7", "--edge", "e:8",
                         "--edge", "e:9", NULL),
                     2);
    assert_int_equal(run(&cfg, "--token", token, "--hostname", "a.example", "--url", "hello_world",
                         "--ha-connections", "16", NULL),
                     0);
    assert_int_equal(cfg.ha_connections, 16);
    cn_config_cleanup(&cfg);
    assert_int_equal(run(&cfg, "--token", token, "--hostname", "a.example", "--url", "hello_world",
                         "--ha-connections", "17", NULL),
                     2);
    assert_int_equal(run(&cfg, "--token", token, "--hostname", "a.example", "--url", "hello_world",
                         "--ha-connections", "0", NULL),
                     2);
}

static void test_token_from_env_and_file(void **state)
{
    (void)state;
    struct cn_config cfg;
    setenv("TUNNEL_TOKEN", token, 1);
    assert_int_equal(run(&cfg, "--hostname", "a.example", "--url", "hello_world", NULL), 0);
    assert_string_equal(cfg.token.server_name, "tunnel.test");
    cn_config_cleanup(&cfg);
    unsetenv("TUNNEL_TOKEN");

    char dir[] = "/tmp/cn-config-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof(path), "%s/token", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "%s\n", token);
    fclose(f);
    assert_int_equal(
        run(&cfg, "--token-file", path, "--hostname", "a.example", "--url", "hello_world", NULL),
        0);
    assert_string_equal(cfg.token.tunnel_id, "00112233445566778899aabbccddeeff");
    cn_config_cleanup(&cfg);
    unlink(path);
    rmdir(dir);
}

static void test_repeated_parses(void **state)
{
    (void)state;
    /* getopt state is reset on each call: a failing parse does not disturb
     * the next one. */
    struct cn_config cfg;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(run(&cfg, "--token", token, "--bogus", NULL), 2);
        assert_int_equal(
            run(&cfg, "--token", token, "--hostname", "a.example", "--url", "hello_world", NULL),
            0);
        assert_int_equal(cfg.ingress->n, 2);
        cn_config_cleanup(&cfg);
    }
}

static void test_repeated_parses_after_grouped_short_options(void **state)
{
    (void)state;
    /* A failed parse that stopped inside a group of short options ("-xy")
     * must not leave getopt pointing into the previous argv: the next parse
     * starts afresh. */
    struct cn_config cfg;
    char grouped[] = "-xy";
    assert_int_equal(run(&cfg, grouped, NULL), 2);
    grouped[2] = 'q'; /* the old argv changes (or is freed) afterwards */
    int rc = run(&cfg, "--token", token, "--hostname", "a.example", "--url", "hello_world", NULL);
    assert_int_equal(rc, 0);
    assert_int_equal(cfg.ingress->n, 2);
    cn_config_cleanup(&cfg);
}

static void test_help(void **state)
{
    (void)state;
    struct cn_config cfg;
    assert_int_equal(run(&cfg, "--help", NULL), 1);
    assert_null(cfg.ingress);
    assert_int_equal(run(&cfg, "--token", token, "--hostname", "a.example", "--url", "hello_world",
                         "--help", NULL),
                     1);
    assert_null(cfg.ingress);
}

static void test_config_file(void **state)
{
    (void)state;
    struct cn_config cfg;
    assert_int_equal(run(&cfg, "--token", token, "--config", good_cfg, NULL), 0);
    assert_string_equal(cfg.config_path, good_cfg);
    assert_non_null(cfg.ingress);
    const struct cn_ingress *ing = cfg.ingress;
    assert_int_equal(ing->n, 3);
    assert_string_equal(ing->rules[0].hostname, "app.example.com");
    assert_int_equal(ing->rules[0].kind, CN_SVC_HTTP);
    assert_string_equal(ing->rules[0].host, "127.0.0.1");
    assert_int_equal(ing->rules[0].port, 8080);
    assert_string_equal(ing->rules[1].hostname, "*.example.org");
    assert_string_equal(ing->rules[1].path, "^/api/");
    assert_int_equal(ing->rules[1].kind, CN_SVC_UNIX);
    assert_string_equal(ing->rules[1].unix_path, "/run/api.sock");
    assert_int_equal(ing->rules[2].kind, CN_SVC_STATUS);
    assert_int_equal(ing->rules[2].status, 404);
    assert_int_equal(ing->n_hostnames, 2);
    assert_string_equal(ing->hostnames[0], "app.example.com");
    assert_string_equal(ing->hostnames[1], "*.example.org");
    assert_ptr_equal(cn_ingress_match(ing, "x.example.org", "/api/v1"), &ing->rules[1]);
    assert_ptr_equal(cn_ingress_match(ing, "x.example.org", "/"), &ing->rules[2]);
    cn_config_cleanup(&cfg);
    assert_null(cfg.ingress);
}

static void test_config_usage_errors(void **state)
{
    (void)state;
    struct cn_config cfg;
    /* --config excludes --hostname and --url. */
    assert_int_equal(
        run(&cfg, "--token", token, "--config", good_cfg, "--hostname", "a.example", NULL), 2);
    assert_null(cfg.ingress);
    assert_int_equal(run(&cfg, "--token", token, "--hostname", "a.example", "--url", "hello_world",
                         "--config", good_cfg, NULL),
                     2);
    assert_int_equal(
        run(&cfg, "--token", token, "--config", good_cfg, "--url", "hello_world", NULL), 2);
    /* Invalid (no catch-all), missing and non-JSON files. */
    assert_int_equal(run(&cfg, "--token", token, "--config", bad_cfg, NULL), 2);
    assert_null(cfg.ingress);
    assert_int_equal(run(&cfg, "--token", token, "--config", "/nonexistent/cfg.json", NULL), 2);
    assert_int_equal(run(&cfg, "--token", token, "--config", ca_path, NULL), 2);
    /* --config needs a value. */
    assert_int_equal(run(&cfg, "--token", token, "--config", NULL), 2);
    /* An empty hostname. */
    assert_int_equal(run(&cfg, "--token", token, "--hostname", "", "--url", "hello_world", NULL),
                     2);
}

static void test_origin_flags(void **state)
{
    (void)state;
    struct cn_config cfg;
    int rc = run(&cfg, "--token", token, "--hostname", "a.example", "--url", "https://h:8443",
                 "--hostname", "b.example", "--url", "https://h:8444", "--no-tls-verify",
                 "--origin-server-name", "origin.internal", "--http-host-header", "host.internal",
                 "--connect-timeout", "12", NULL);
    assert_int_equal(rc, 0);
    assert_int_equal(cfg.ingress->n, 3);
    for (size_t i = 0; i < 2; i++) {
        const struct cn_origin_opts *o = &cfg.ingress->rules[i].o;
        assert_int_equal(o->no_tls_verify, 1);
        assert_string_equal(o->origin_server_name, "origin.internal");
        assert_string_equal(o->http_host_header, "host.internal");
        assert_int_equal(o->connect_timeout_s, 12);
        assert_true(o->set & CN_OPT_NO_TLS_VERIFY);
        assert_true(o->set & CN_OPT_CONNECT_TIMEOUT);
        assert_null(o->origin_cert);
        assert_null(o->ca_blob);
    }
    assert_int_equal(cfg.ingress->rules[1].port, 8444);
    cn_config_cleanup(&cfg);

    /* A flag given twice: the last one wins (and the first is not leaked). */
    rc = run(&cfg, "--token", token, "--hostname", "a.example", "--url", "https://h:1",
             "--origin-server-name", "first", "--origin-server-name", "second", NULL);
    assert_int_equal(rc, 0);
    assert_string_equal(cfg.ingress->rules[0].o.origin_server_name, "second");
    cn_config_cleanup(&cfg);

    /* --origin-ca: the pool is read and appended to the CA blob. */
    rc = run(&cfg, "--token", token, "--hostname", "a.example", "--url", "https://h:1",
             "--origin-ca", ca_path, NULL);
    assert_int_equal(rc, 0);
    const struct cn_origin_opts *o = &cfg.ingress->rules[0].o;
    assert_string_equal(o->ca_pool, ca_path);
    assert_non_null(o->ca_blob);
    assert_non_null(memmem(o->ca_blob, o->ca_blob_len, PEM, strlen(PEM)));
    cn_config_cleanup(&cfg);
    assert_int_equal(run(&cfg, "--token", token, "--hostname", "a.example", "--url", "https://h:1",
                         "--origin-ca", "/nonexistent/ca.pem", NULL),
                     2);
    /* A caPool without a certificate in it. */
    assert_int_equal(run(&cfg, "--token", token, "--hostname", "a.example", "--url", "https://h:1",
                         "--origin-ca", key_path, NULL),
                     2);

    /* Client certificate: both halves, readable. */
    rc = run(&cfg, "--token", token, "--hostname", "a.example", "--url", "https://h:1",
             "--origin-cert", cert_path, "--origin-key", key_path, NULL);
    assert_int_equal(rc, 0);
    assert_string_equal(cfg.ingress->rules[0].o.origin_cert, cert_path);
    assert_string_equal(cfg.ingress->rules[0].o.origin_key, key_path);
    cn_config_cleanup(&cfg);
    assert_int_equal(run(&cfg, "--token", token, "--hostname", "a.example", "--url", "https://h:1",
                         "--origin-cert", cert_path, NULL),
                     2);
    assert_null(cfg.ingress);
    assert_int_equal(run(&cfg, "--token", token, "--hostname", "a.example", "--url", "https://h:1",
                         "--origin-key", key_path, NULL),
                     2);
    assert_int_equal(run(&cfg, "--token", token, "--hostname", "a.example", "--url", "https://h:1",
                         "--origin-cert", "/nonexistent/c.pem", "--origin-key", key_path, NULL),
                     2);
    /* Bad --connect-timeout values after string flags were set (no leaks). */
    assert_int_equal(run(&cfg, "--token", token, "--hostname", "a.example", "--url", "https://h:1",
                         "--origin-server-name", "x", "--connect-timeout", "0", NULL),
                     2);
    assert_int_equal(run(&cfg, "--token", token, "--hostname", "a.example", "--url", "https://h:1",
                         "--http-host-header", "x", "--connect-timeout", "3601", NULL),
                     2);
}

/* --origin-pull: originPull for every --url route; an https service needs
 * it, and it does not mix with --origin-cert or --config. */
static void test_origin_pull_flag(void **state)
{
    (void)state;
    struct cn_config cfg;
    int rc = run(&cfg, "--token", token, "--hostname", "a.example", "--url", "https://h:8443",
                 "--hostname", "b.example", "--url", "https://h:8444", "--origin-pull",
                 "--origin-server-name", "ha.local", NULL);
    assert_int_equal(rc, 0);
    assert_int_equal(cfg.ingress->n, 3);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(cfg.ingress->rules[i].o.origin_pull, 1);
        assert_true(cfg.ingress->rules[i].o.set & CN_OPT_ORIGIN_PULL);
        assert_string_equal(cfg.ingress->rules[i].o.origin_server_name, "ha.local");
    }
    assert_int_equal(cfg.ingress->rules[2].o.origin_pull, 0); /* the catch-all */
    cn_config_cleanup(&cfg);
    /* Off without the flag. */
    assert_int_equal(
        run(&cfg, "--token", token, "--hostname", "a.example", "--url", "https://h:1", NULL), 0);
    assert_int_equal(cfg.ingress->rules[0].o.origin_pull, 0);
    cn_config_cleanup(&cfg);
    /* A plain http service has no TLS handshake to present it in. */
    assert_int_equal(run(&cfg, "--token", token, "--hostname", "a.example", "--url", "http://h:1",
                         "--origin-pull", NULL),
                     2);
    assert_null(cfg.ingress);
    assert_int_equal(run(&cfg, "--token", token, "--hostname", "a.example", "--url", "https://h:1",
                         "--origin-pull", "--origin-cert", cert_path, "--origin-key", key_path,
                         NULL),
                     2);
    assert_int_equal(run(&cfg, "--token", token, "--config", good_cfg, "--origin-pull", NULL), 2);
    /* It takes no value. */
    assert_int_equal(run(&cfg, "--token", token, "--hostname", "a.example", "--url", "https://h:1",
                         "--origin-pull=yes", NULL),
                     2);
}

/* Issue 12: the operator listener and the log flags. */
static void test_metrics_and_log_flags(void **state)
{
    (void)state;
    struct cn_config cfg;
#define RUN(...)                                                                                   \
    run(&cfg, "--token", token, "--hostname", "a.example", "--url", "hello_world", __VA_ARGS__,    \
        NULL)
    assert_int_equal(RUN("--loglevel", "info"), 0);
    assert_string_equal(cfg.metrics_addr, CN_DEFAULT_METRICS_ADDR);
    assert_int_equal(cfg.log_format, PX_LOG_TEXT);
    assert_int_equal(cfg.access_log, 0);
    cn_config_cleanup(&cfg);
    assert_int_equal(RUN("--metrics", "off", "--log-format", "json", "--access-log"), 0);
    assert_string_equal(cfg.metrics_addr, "");
    assert_int_equal(cfg.log_format, PX_LOG_JSON);
    assert_int_equal(cfg.access_log, 1);
    cn_config_cleanup(&cfg);
    assert_int_equal(RUN("--access-log", "--no-access-log", "--metrics=0.0.0.0:9100"), 0);
    assert_int_equal(cfg.access_log, 0);
    assert_string_equal(cfg.metrics_addr, "0.0.0.0:9100");
    cn_config_cleanup(&cfg);
    assert_int_equal(RUN("--metrics", "[::1]:0"), 0);
    assert_string_equal(cfg.metrics_addr, "[::1]:0");
    cn_config_cleanup(&cfg);
    static const char *const bad[] = {"9100",    "localhost", ":9100", "a:b:9100", "[::1]9100",
                                      "h:65536", "h:-1",      "[]:1",  "h:",       "h:0x10"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (RUN("--metrics", bad[i]) != 2)
            fail_msg("--metrics %s was accepted", bad[i]);
    assert_int_equal(RUN("--log-format", "xml"), 2);
#undef RUN
}

/* Runs `run --metrics addr` (with a token and a route); returns the exit
 * code and puts what it printed on stderr in err. */
static int run_metrics(struct cn_config *cfg, const char *addr, char *err, size_t err_len)
{
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    px_log_flush(); /* batched lines of a live loop (px_log_batch) */
    fflush(stderr);
    int saved = dup(2);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(tmp), 2) >= 0);
    int rc = run(cfg, "--token", token, "--hostname", "a.example", "--url", "hello_world",
                 "--metrics", addr, NULL);
    px_log_flush(); /* batched lines of a live loop (px_log_batch) */
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(tmp);
    size_t n = fread(err, 1, err_len - 1, tmp);
    err[n] = '\0';
    fclose(tmp);
    return rc;
}

/* review 12.5: --metrics takes what the listener can bind: IP literals,
 * and localhost as 127.0.0.1; other names are refused at parse with a
 * message saying an IP address is needed (not at start, by the listener),
 * and ":PORT" is refused with a message saying the address is missing. */
static void test_review_12_5_metrics_address_is_an_ip(void **state)
{
    (void)state;
    struct cn_config cfg;
    char err[1024];
    static const struct {
        const char *arg, *want;
    } ok[] = {{"localhost:39100", "127.0.0.1:39100"},
              {"LocalHost:0", "127.0.0.1:0"},
              {"127.0.0.1:20241", "127.0.0.1:20241"},
              {"0.0.0.0:9100", "0.0.0.0:9100"},
              {"10.1.2.3:1", "10.1.2.3:1"},
              {"[::1]:9100", "[::1]:9100"},
              {"[::]:0", "[::]:0"},
              {"[2001:db8::5]:65535", "[2001:db8::5]:65535"}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        if (run_metrics(&cfg, ok[i].arg, err, sizeof(err)) != 0)
            fail_msg("--metrics %s refused: %s", ok[i].arg, err);
        assert_string_equal(cfg.metrics_addr, ok[i].want);
        cn_config_cleanup(&cfg);
    }
    static const struct {
        const char *arg, *says;
    } bad[] = {{"metrics.example:9100", "needs an IP address"},
               {"my-host:9100", "needs an IP address"},
               {"localhost.:9100", "needs an IP address"},
               {"127.1:9100", "needs an IP address"},
               {"256.0.0.1:9100", "needs an IP address"},
               {"[localhost]:9100", "needs an IP address"},
               {"[127.0.0.1]:9100", "needs an IP address"},
               {":9100", "has no address"},
               {":0", "has no address"},
               {"::1:9100", "in brackets"},
               {"[::1]9100", "ADDRESS:PORT"},
               {"localhost", "ADDRESS:PORT"},
               {"127.0.0.1:65536", "ADDRESS:PORT"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (run_metrics(&cfg, bad[i].arg, err, sizeof(err)) != 2)
            fail_msg("--metrics %s was accepted", bad[i].arg);
        if (!strstr(err, bad[i].says) || !strstr(err, bad[i].arg))
            fail_msg("--metrics %s: the message does not say '%s': %s", bad[i].arg, bad[i].says,
                     err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edges_repeatable_and_validated),
        cmocka_unit_test(test_service_http),
        cmocka_unit_test(test_service_trailing_slashes),
        cmocka_unit_test(test_service_builtin),
        cmocka_unit_test(test_service_errors),
        cmocka_unit_test(test_service_unix),
        cmocka_unit_test(test_service_too_long),
        cmocka_unit_test(test_flags_pairs_and_errors),
        cmocka_unit_test(test_flags_origin_defaults),
        cmocka_unit_test(test_missing_token),
        cmocka_unit_test(test_bad_token),
        cmocka_unit_test(test_bad_loglevel),
        cmocka_unit_test(test_bad_hostname),
        cmocka_unit_test(test_other_usage_errors),
        cmocka_unit_test(test_valid_routes),
        cmocka_unit_test(test_defaults_and_one_url_for_all),
        cmocka_unit_test(test_token_from_env_and_file),
        cmocka_unit_test(test_repeated_parses),
        cmocka_unit_test(test_repeated_parses_after_grouped_short_options),
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_config_file),
        cmocka_unit_test(test_config_usage_errors),
        cmocka_unit_test(test_origin_flags),
        cmocka_unit_test(test_origin_pull_flag),
        cmocka_unit_test(test_metrics_and_log_flags),
        cmocka_unit_test(test_review_12_5_metrics_address_is_an_ip),
    };
    return cmocka_run_group_tests_name("cn_config", tests, setup, teardown);
}
