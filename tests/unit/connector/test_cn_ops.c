/* cn_ops: the operator endpoints, answered over rt_httpd connections in
 * memory: /metrics (Prometheus text of the metrics object), /ready (200 with
 * the links registered, else 503; JSON), /healthcheck, 404 and 405. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cn_metrics.h"
#include "cn_ops.h"
#include "px_buf.h"
#include "px_log.h"
#include "px_metrics.h"
#include "rt_conn.h"
#include "rt_httpd.h"
#include "rt_loop.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TUNNEL_ID "0123456789abcdef0123456789abcdef"

static uv_loop_t loop;
static struct rt_loop rl;
static struct cn_metrics *metrics;
static struct cn_ops *ops;
static unsigned links; /* what the source answers */

static unsigned src_connections(void *arg)
{
    (void)arg;
    return links;
}

static int setup(void **state)
{
    (void)state;
    links = 0;
    if (uv_loop_init(&loop) != 0 || rt_loop_init(&rl, &loop) < 0)
        return -1;
    metrics = cn_metrics_new("1.0-test", 1700000000);
    const struct cn_ops_source src = {
        .connections = src_connections, .arg = NULL, .tunnel_id = TUNNEL_ID};
    ops = metrics ? cn_ops_new(&loop, metrics, &src) : NULL;
    return ops ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    cn_ops_free(ops);
    for (int i = 0; i < 50 && uv_loop_alive(&loop); i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    rt_loop_cleanup(&rl);
    for (int i = 0; i < 10 && uv_loop_alive(&loop); i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    cn_metrics_free(metrics);
    return uv_loop_close(&loop) == 0 ? 0 : -1;
}

/* The whole answer to one request (head and body), as the peer reads it. */
struct answer {
    int status;
    char head[2048];
    char *body; /* NUL-terminated; the caller frees it */
};

/* method path from peer with Host host (NULL: an HTTP/1.0 request without
 * one) and extra header lines (NULL: none). */
static struct answer ask_from(const char *peer, const char *host, const char *method,
                              const char *path, const char *extra)
{
    struct rt_conn *c = rt_httpd_new_memory(cn_ops_httpd(ops), peer);
    assert_non_null(c);
    char req[512];
    if (host)
        snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", method, path, host,
                 extra ? extra : "");
    else
        snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\n%s\r\n", method, path, extra ? extra : "");
    /* The answer is written at once and the connection closes behind it:
     * the feed reports that close, not a refusal. */
    rt_conn_memory_feed(c, req, strlen(req));
    /* cn_ops answers within the handler: the whole answer is in mem_out,
     * and the connection (closing) waits for it to be read. */
    struct px_buf out;
    px_buf_init(&out);
    size_t n = px_buf_len(&c->mem_out);
    assert_int_equal(px_buf_append(&out, px_buf_head(&c->mem_out), n), 0);
    rt_conn_memory_consume(c, n);
    struct answer a = {0};
    const char *t = px_buf_cstr(&out);
    assert_non_null(t);
    const char *end = strstr(t, "\r\n\r\n");
    assert_non_null(end);
    assert_int_equal(strncmp(t, "HTTP/1.1 ", 9), 0);
    a.status = atoi(t + 9);
    snprintf(a.head, sizeof(a.head), "%.*s", (int)(end - t), t);
    a.body = strdup(end + 4);
    assert_non_null(a.body);
    px_buf_cleanup(&out);
    for (int i = 0; i < 20; i++)
        uv_run(&loop, UV_RUN_NOWAIT); /* the connection's close */
    return a;
}

static struct answer ask(const char *method, const char *path)
{
    return ask_from("127.0.0.1", "127.0.0.1", method, path, NULL);
}

static void test_metrics_served_as_prometheus_text(void **state)
{
    (void)state;
    cn_metrics_link_up(metrics, "edge.test:7844");
    struct answer a = ask("GET", "/metrics");
    assert_int_equal(a.status, 200);
    assert_non_null(strstr(a.head, "Content-Type: " PX_METRICS_CONTENT_TYPE));
    assert_non_null(strstr(a.body, "connector_build_info{version=\"1.0-test\"} 1\n"));
    assert_non_null(strstr(a.body, "connector_links_up{edge=\"edge.test:7844\"} 1\n"));
    free(a.body);
    /* HEAD: the same head, no body. */
    a = ask("HEAD", "/metrics");
    assert_int_equal(a.status, 200);
    assert_string_equal(a.body, "");
    free(a.body);
}

static void assert_ready_json(const char *body, const char *status, unsigned connections)
{
    json_error_t err;
    json_t *j = json_loads(body, 0, &err);
    if (!j)
        fail_msg("not JSON: %s (%s)", body, err.text);
    assert_string_equal(json_string_value(json_object_get(j, "status")), status);
    assert_int_equal(json_integer_value(json_object_get(j, "connections")), connections);
    assert_string_equal(json_string_value(json_object_get(j, "tunnel_id")), TUNNEL_ID);
    json_decref(j);
}

static void test_ready_follows_registered_links(void **state)
{
    (void)state;
    struct answer a = ask("GET", "/ready");
    assert_int_equal(a.status, 503);
    assert_non_null(strstr(a.head, "Content-Type: application/json"));
    assert_ready_json(a.body, "not_ready", 0);
    free(a.body);
    links = 3;
    a = ask("GET", "/ready");
    assert_int_equal(a.status, 200);
    assert_ready_json(a.body, "ready", 3);
    free(a.body);
    links = 0;
    a = ask("GET", "/ready");
    assert_int_equal(a.status, 503);
    free(a.body);
}

static void test_healthcheck_404_405(void **state)
{
    (void)state;
    struct answer a = ask("GET", "/healthcheck");
    assert_int_equal(a.status, 200);
    assert_string_equal(a.body, "ok\n");
    free(a.body);
    a = ask("GET", "/healthcheck?x=1");
    assert_int_equal(a.status, 200);
    free(a.body);
    a = ask("GET", "/");
    assert_int_equal(a.status, 404);
    free(a.body);
    a = ask("GET", "/metrics/");
    assert_int_equal(a.status, 404);
    free(a.body);
    a = ask("POST", "/metrics");
    assert_int_equal(a.status, 405);
    assert_non_null(strstr(a.head, "Allow: GET, HEAD"));
    free(a.body);
}

/* A real listener on a free loopback port: the bound address names it. */
static void test_listen_on_free_port(void **state)
{
    (void)state;
    char bound[80];
    assert_int_equal(cn_ops_listen(ops, "127.0.0.1:0", bound, sizeof(bound)), 0);
    assert_int_equal(strncmp(bound, "127.0.0.1:", 10), 0);
    assert_true(atoi(bound + 10) > 0);
    assert_true(cn_ops_listen(ops, "not an address", bound, sizeof(bound)) < 0);
}

/* review 12.3: from loopback, /metrics and /ready answer only a Host that
 * is an IP address or localhost: a DNS-rebinding page's requests carry its
 * own name. Peers elsewhere (a scraper on another machine, when the
 * operator bound a routable address) may use any name. */
static void test_review_12_3_loopback_needs_a_literal_host(void **state)
{
    (void)state;
    links = 1;
    const char *paths[] = {"/metrics", "/ready"};
    const char *good[] = {"127.0.0.1:20241", "localhost:20241", "localhost", "[::1]:20241",
                          "10.0.0.5:9100"};
    const char *bad[] = {"evil.example", "evil.example:20241", "localhost.evil.example",
                         "localhost.", "127.0.0.1.nip.io:20241"};
    for (size_t p = 0; p < 2; p++) {
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
            struct answer a = ask_from("127.0.0.1", good[i], "GET", paths[p], NULL);
            assert_int_equal(a.status, 200);
            free(a.body);
        }
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            struct answer a = ask_from(i % 2 ? "::1" : "127.0.0.1", bad[i], "GET", paths[p], NULL);
            if (a.status != 421)
                fail_msg("%s with Host %s: %d", paths[p], bad[i], a.status);
            assert_non_null(strstr(a.body, "localhost or an IP address"));
            assert_null(strstr(a.body, "connector_build_info"));
            assert_null(strstr(a.body, TUNNEL_ID));
            free(a.body);
            a = ask_from("192.0.2.1", bad[i], "GET", paths[p], NULL);
            assert_int_equal(a.status, 200);
            free(a.body);
        }
        struct answer a = ask_from("127.0.0.1", NULL, "GET", paths[p], NULL); /* HTTP/1.0 */
        assert_int_equal(a.status, 200);
        free(a.body);
    }
    /* /healthcheck tells nothing: open whatever the Host. */
    struct answer a = ask_from("127.0.0.1", "evil.example", "GET", "/healthcheck", NULL);
    assert_int_equal(a.status, 200);
    free(a.body);
}

/* review 12.2: no endpoint takes a body, so every request is answered from
 * its head: an announced body is never waited for (nor a 100 Continue
 * sent). */
static void test_review_12_2_answered_from_the_head(void **state)
{
    (void)state;
    struct answer a = ask_from("127.0.0.1", "127.0.0.1", "POST", "/metrics",
                               "Expect: 100-continue\r\nContent-Length: 1000\r\n");
    assert_int_equal(a.status, 405);
    free(a.body);
    a = ask_from("127.0.0.1", "127.0.0.1", "GET", "/metrics", "Content-Length: 1000\r\n");
    assert_int_equal(a.status, 200);
    free(a.body);
}

int main(void)
{
    if (!getenv("TEST_LOG"))
        px_log_set_level((enum px_log_level)(PX_LOG_ERROR + 1)); /* silent */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_metrics_served_as_prometheus_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ready_follows_registered_links, setup, teardown),
        cmocka_unit_test_setup_teardown(test_healthcheck_404_405, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listen_on_free_port, setup, teardown),
        cmocka_unit_test_setup_teardown(test_review_12_3_loopback_needs_a_literal_host, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_review_12_2_answered_from_the_head, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
