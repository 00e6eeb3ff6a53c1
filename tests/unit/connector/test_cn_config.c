/* cn_config: service URLs and `connector run` argument parsing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cn_config.h"
#include "px_err.h"
#include "px_token.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *token; /* a valid token, made in setup */

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
    return token ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    free(token);
    return 0;
}

static void svc_ok(const char *url, enum cn_service_kind kind, const char *base, int https)
{
    struct cn_route r;
    memset(&r, 0, sizeof(r));
    char why[128] = "";
    int rc = cn_parse_service(url, &r, why, sizeof(why));
    if (rc != 0)
        print_error("%s: %s\n", url, why);
    assert_int_equal(rc, 0);
    assert_int_equal(r.kind, kind);
    if (base) {
        assert_string_equal(r.base_url, base);
        assert_int_equal(r.https, https);
    }
}

static void svc_bad(const char *url, const char *needle)
{
    struct cn_route r;
    memset(&r, 0, sizeof(r));
    char why[128] = "";
    int rc = cn_parse_service(url, &r, why, sizeof(why));
    if (rc != PX_ERR_INVAL)
        print_error("%s accepted\n", url);
    assert_int_equal(rc, PX_ERR_INVAL);
    assert_true(why[0] != '\0');
    if (!strstr(why, needle))
        print_error("%s: reason \"%s\" lacks \"%s\"\n", url, why, needle);
    assert_non_null(strstr(why, needle));
}

static void test_service_http(void **state)
{
    (void)state;
    svc_ok("http://h:1", CN_SVC_HTTP, "http://h:1", 0);
    svc_ok("https://h:1/", CN_SVC_HTTP, "https://h:1", 1);
    svc_ok("https://h:1///", CN_SVC_HTTP, "https://h:1", 1);
    svc_ok("http://127.0.0.1:8080", CN_SVC_HTTP, "http://127.0.0.1:8080", 0);
    svc_ok("http://[::1]:8080/", CN_SVC_HTTP, "http://[::1]:8080", 0);
    svc_ok("HTTP://localhost", CN_SVC_HTTP, "http://localhost", 0);
}

static void test_service_builtin(void **state)
{
    (void)state;
    svc_ok("hello_world", CN_SVC_HELLO, NULL, 0);
    struct cn_route r;
    char why[128];
    memset(&r, 0, sizeof(r));
    assert_int_equal(cn_parse_service("http_status:404", &r, why, sizeof(why)), 0);
    assert_int_equal(r.kind, CN_SVC_STATUS);
    assert_int_equal(r.status, 404);
    assert_int_equal(cn_parse_service("http_status:100", &r, why, sizeof(why)), 0);
    assert_int_equal(cn_parse_service("http_status:599", &r, why, sizeof(why)), 0);
    assert_int_equal(r.status, 599);
}

static void test_service_errors(void **state)
{
    (void)state;
    svc_bad("h:1", "http://");
    svc_bad("localhost:8080", "http://");
    svc_bad("ftp://h:1", "http://");
    svc_bad("", "http://");
    svc_bad("hello_world2", "http://");
    svc_bad("http://", "no path");
    svc_bad("http:///", "no path");
    svc_bad("http://h:1/api", "no path");
    svc_bad("http://h:1/api/", "no path");
    svc_bad("http://h:1?x=1", "no path");
    svc_bad("http://h:1#frag", "no path");
    svc_bad("http://user:pw@h:1", "no path");
    svc_bad("http_status:99", "100-599");
    svc_bad("http_status:600", "100-599");
    svc_bad("http_status:", "100-599");
    svc_bad("http_status:404x", "100-599");
    svc_bad("http_status:abc", "100-599");
}

static void test_service_too_long(void **state)
{
    (void)state;
    char url[700];
    int n = snprintf(url, sizeof(url), "http://");
    memset(url + n, 'a', 600);
    url[n + 600] = '\0';
    svc_bad(url, "too long");
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
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(
            run(&cfg, "--token", token, "--hostname", bad[i], "--url", "hello_world", NULL), 2);
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
    assert_int_equal(cfg.n_routes, 3);
    assert_string_equal(cfg.routes[0].hostname, "app.example.com");
    assert_int_equal(cfg.routes[0].kind, CN_SVC_HTTP);
    assert_string_equal(cfg.routes[0].base_url, "http://127.0.0.1:8080");
    assert_string_equal(cfg.routes[1].hostname, "*.example.org");
    assert_int_equal(cfg.routes[1].kind, CN_SVC_STATUS);
    assert_int_equal(cfg.routes[1].status, 404);
    assert_string_equal(cfg.routes[2].hostname, "hello.example");
    assert_int_equal(cfg.routes[2].kind, CN_SVC_HELLO);
    assert_int_equal(cfg.loglevel, PX_LOG_DEBUG);
    assert_int_equal(cfg.ha_connections, 4);
    assert_int_equal(cfg.connect_timeout_ms, 5000);
    assert_int_equal(cfg.response_timeout_ms, 60000);
    assert_string_equal(cfg.edge_override, "127.0.0.1:9000");
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
    assert_int_equal(cfg.n_routes, 2);
    assert_string_equal(cfg.routes[1].base_url, "https://10.0.0.1:443");
    assert_int_equal(cfg.routes[1].https, 1);
    assert_int_equal(cfg.loglevel, PX_LOG_INFO);
    assert_int_equal(cfg.ha_connections, 2);
    assert_int_equal(cfg.connect_timeout_ms, 30000);
    assert_int_equal(cfg.response_timeout_ms, 100000);
    assert_string_equal(cfg.state_dir, "/tmp/cn-config-test-state");
    assert_string_equal(cfg.edge_override, "");
    cn_config_cleanup(&cfg);
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
        assert_int_equal(cfg.n_routes, 1);
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
    assert_int_equal(cfg.n_routes, 1);
    cn_config_cleanup(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_service_http),
        cmocka_unit_test(test_service_builtin),
        cmocka_unit_test(test_service_errors),
        cmocka_unit_test(test_service_too_long),
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
    };
    return cmocka_run_group_tests_name("cn_config", tests, setup, teardown);
}
