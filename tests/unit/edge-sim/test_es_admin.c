/* es_admin: the admin listener's routing and authentication, the JSON API
 * (through the same operations as the CLI), the status page's shell, and
 * the admin token file, on a server whose admin connections run in memory. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "es_access.h"
#include "es_admin.h"
#include "es_admin_token.h"
#include "es_assert.h"
#include "es_drain.h"
#include "es_metrics.h"
#include "es_registry.h"
#include "es_server.h"
#include "es_status_page.h"
#include "px_b64.h"
#include "px_err.h"
#include "px_log.h"
#include "px_token.h"
#include "px_version.h"
#include "rt_conn.h"
#include "rt_loop.h"
#include "test_rng.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hash.h>

#define TOKEN "test-admin-token-0123456789abcdefghijklmnopqrstuvwxyz"
#define REMOTE "192.0.2.1"

static struct {
    uv_loop_t loop;
    struct rt_loop rl;
    struct es_server srv;
    char dir[64];
} w;

/* One answer: status, its head and body (NUL-terminated copies). */
struct answer {
    int status;
    char *head;
    char *body;
};

static void answer_free(struct answer *a)
{
    free(a->head);
    free(a->body);
}

static void run(void)
{
    for (int i = 0; i < 5; i++)
        uv_run(&w.loop, UV_RUN_NOWAIT);
}

/* Sends raw (a whole request) from peer on a new admin connection. */
static struct answer raw_request(const char *peer, const char *raw, size_t len)
{
    struct answer a = {0};
    struct rt_conn *c = es_admin_new_memory(&w.srv, peer);
    assert_non_null(c);
    rt_conn_memory_feed(c, raw, len); /* answered, then it closes: < 0 */
    run();
    size_t n = px_buf_len(&c->mem_out);
    char *resp = strndup((const char *)px_buf_head(&c->mem_out), n);
    assert_non_null(resp);
    rt_conn_memory_consume(c, n);
    run();
    assert_int_equal(sscanf(resp, "HTTP/1.1 %d", &a.status), 1);
    char *sep = strstr(resp, "\r\n\r\n");
    assert_non_null(sep);
    a.body = strdup(sep + 4);
    sep[2] = '\0';
    a.head = resp;
    return a;
}

/* method path from peer with Host host, auth (an Authorization value, or
 * NULL) and body (NULL: none). */
static struct answer request_host(const char *peer, const char *host, const char *method,
                                  const char *path, const char *auth, const char *body)
{
    char head[1024];
    size_t blen = body ? strlen(body) : 0;
    int n =
        snprintf(head, sizeof(head),
                 "%s %s HTTP/1.1\r\nHost: %s\r\n%s%s%sContent-Length: %zu\r\n\r\n", method, path,
                 host, auth ? "Authorization: " : "", auth ? auth : "", auth ? "\r\n" : "", blen);
    assert_true(n > 0 && (size_t)n < sizeof(head));
    char *raw = malloc((size_t)n + blen + 1);
    assert_non_null(raw);
    memcpy(raw, head, (size_t)n);
    if (blen)
        memcpy(raw + n, body, blen);
    struct answer a = raw_request(peer, raw, (size_t)n + blen);
    free(raw);
    return a;
}

/* The same with the Host a client of the default admin address sends. */
static struct answer request(const char *peer, const char *method, const char *path,
                             const char *auth, const char *body)
{
    return request_host(peer, "127.0.0.1:7845", method, path, auth, body);
}

/* An authenticated API call from loopback. */
static struct answer api(const char *method, const char *path, const char *body)
{
    return request("127.0.0.1", method, path, "Bearer " TOKEN, body);
}

static json_t *json_of(const struct answer *a)
{
    json_error_t err;
    json_t *j = json_loads(a->body, 0, &err);
    if (!j)
        print_error("not JSON (%s): %s\n", err.text, a->body);
    assert_non_null(j);
    return j;
}

static int write_file(const char *path, const char *s, mode_t mode)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(s, f);
    fclose(f);
    return chmod(path, mode);
}

static int setup(void **state)
{
    (void)state;
    memset(&w, 0, sizeof(w));
    px_log_set_level((enum px_log_level)(PX_LOG_ERROR + 1)); /* silent */
    assert_int_equal(uv_loop_init(&w.loop), 0);
    assert_int_equal(rt_loop_init(&w.rl, &w.loop), 0);
    snprintf(w.dir, sizeof(w.dir), "/tmp/test_es_admin.XXXXXX");
    assert_non_null(mkdtemp(w.dir));
    struct es_server *srv = &w.srv;
    srv->loop = &w.loop;
    snprintf(srv->data_dir, sizeof(srv->data_dir), "%s", w.dir);
    snprintf(srv->tunnel_addr, sizeof(srv->tunnel_addr), "127.0.0.1:7844");
    char why[1024];
    assert_int_equal(
        es_certs_init(&srv->certs, rt_loop_rng(&w.rl), w.dir, "tunnel.test", why, sizeof(why)), 0);
    assert_int_equal(es_store_open(&srv->store, w.dir, why, sizeof(why)), 0);
    assert_int_equal(es_registry_reload(&srv->reg, &srv->store), 0);
    srv->metrics = es_metrics_new();
    assert_non_null(srv->metrics);
    char path[128];
    snprintf(path, sizeof(path), "%s/admin.token", w.dir);
    assert_int_equal(write_file(path, TOKEN "\n", 0600), 0);
    assert_int_equal(es_admin_start(srv), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    struct es_server *srv = &w.srv;
    es_admin_stop(srv);
    es_drain_cleanup(srv);
    run();
    es_registry_cleanup(&srv->reg);
    es_access_free(srv->access);
    es_assert_free(srv->assert);
    es_metrics_free(srv->metrics);
    es_certs_cleanup(&srv->certs);
    es_store_close(&srv->store);
    rt_loop_cleanup(&w.rl);
    uv_run(&w.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&w.loop), 0);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", w.dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static void test_api_refuses_without_the_token(void **state)
{
    (void)state;
    struct answer a = request("127.0.0.1", "GET", "/api/tunnels", NULL, NULL);
    assert_int_equal(a.status, 401);
    assert_non_null(strstr(a.head, "WWW-Authenticate: Bearer"));
    json_t *j = json_of(&a);
    assert_true(json_is_string(json_object_get(j, "error")));
    json_decref(j);
    answer_free(&a);
    const char *wrong[] = {"Bearer wrong",
                           "Bearer " TOKEN "x",
                           "Bearer test-admin-token",
                           "Basic " TOKEN,
                           TOKEN,
                           "Bearer",
                           "Bearer "};
    for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
        a = request("127.0.0.1", "GET", "/api/tunnels", wrong[i], NULL);
        if (a.status != 401)
            print_error("accepted '%s'\n", wrong[i]);
        assert_int_equal(a.status, 401);
        answer_free(&a);
    }
    /* Every API path, every method: refused before anything is looked at. */
    a = request("127.0.0.1", "POST", "/api/tunnels", "Bearer nope", "{\"name\":\"x\"}");
    assert_int_equal(a.status, 401);
    answer_free(&a);
    a = request("127.0.0.1", "DELETE", "/api/nowhere", NULL, NULL);
    assert_int_equal(a.status, 401);
    assert_non_null(strstr(a.head, "WWW-Authenticate: Bearer"));
    answer_free(&a);
    struct es_tunnel_rec *t;
    size_t n;
    assert_int_equal(es_store_tunnel_list(&w.srv.store, &t, &n), 0);
    assert_int_equal(n, 0); /* the refused POST created nothing */
    es_store_tunnels_free(t, n);
    /* With the token, in either case of the scheme. */
    a = request("127.0.0.1", "GET", "/api/tunnels", "Bearer " TOKEN, NULL);
    assert_int_equal(a.status, 200);
    answer_free(&a);
    a = request(REMOTE, "GET", "/api/tunnels", "bearer " TOKEN, NULL);
    assert_int_equal(a.status, 200);
    answer_free(&a);
}

static void test_open_endpoints(void **state)
{
    (void)state;
    const char *peers[] = {"127.0.0.1", REMOTE};
    for (size_t i = 0; i < 2; i++) {
        struct answer a = request(peers[i], "GET", "/healthz", NULL, NULL);
        assert_int_equal(a.status, 200);
        assert_string_equal(a.body, "ok\n");
        answer_free(&a);
        a = request(peers[i], "GET", "/healthcheck", NULL, NULL);
        assert_int_equal(a.status, 200);
        answer_free(&a);
        a = request(peers[i], "GET", "/", NULL, NULL);
        assert_int_equal(a.status, 200);
        assert_non_null(strstr(a.head, "Content-Type: text/html"));
        assert_non_null(strstr(a.head, "Content-Security-Policy: default-src 'none'"));
        assert_non_null(strstr(a.body, "<meta name=\"viewport\""));
        answer_free(&a);
        a = request(peers[i], "GET", "/nothing-here", NULL, NULL);
        assert_int_equal(a.status, 404);
        answer_free(&a);
        a = request(peers[i], "POST", "/healthz", NULL, "x");
        assert_int_equal(a.status, 405);
        assert_non_null(strstr(a.head, "Allow: GET, HEAD"));
        answer_free(&a);
    }
    /* The JWK Set once the assertion keys are built (a reload builds them). */
    es_server_reload(&w.srv);
    struct answer a = request(REMOTE, "GET", "/.well-known/jwks.json", NULL, NULL);
    assert_int_equal(a.status, 200);
    json_t *j = json_of(&a);
    assert_true(json_is_array(json_object_get(j, "keys")));
    json_decref(j);
    answer_free(&a);
}

static void test_ready_follows_serving_and_drain(void **state)
{
    (void)state;
    struct answer a = request("127.0.0.1", "GET", "/ready", NULL, NULL);
    assert_int_equal(a.status, 503); /* no listeners yet */
    answer_free(&a);
    w.srv.listening = 1;
    a = api("POST", "/api/tunnels", "{\"name\":\"one\"}");
    assert_int_equal(a.status, 201);
    answer_free(&a);
    a = request("127.0.0.1", "GET", "/ready", NULL, NULL);
    assert_int_equal(a.status, 200);
    json_t *j = json_of(&a);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "ready");
    assert_int_equal(json_integer_value(json_object_get(j, "tunnels")), 1);
    assert_int_equal(json_integer_value(json_object_get(j, "links")), 0);
    json_decref(j);
    answer_free(&a);
    w.srv.listening = 0; /* (there are none to close) */
    es_drain_begin(&w.srv);
    a = request("127.0.0.1", "GET", "/ready", NULL, NULL);
    assert_int_equal(a.status, 503);
    j = json_of(&a);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "draining");
    json_decref(j);
    answer_free(&a);
}

/* /metrics and /ready are open from loopback only; from elsewhere they want
 * the token like the API. */
static void test_loopback_rule(void **state)
{
    (void)state;
    w.srv.listening = 1;
    struct answer a = request("127.0.0.1", "GET", "/metrics", NULL, NULL);
    assert_int_equal(a.status, 200);
    assert_non_null(strstr(a.head, "Content-Type: text/plain; version=0.0.4"));
    assert_non_null(strstr(a.body, "edge_build_info{version=\"" PX_VERSION "\"} 1"));
    answer_free(&a);
    a = request("::1", "GET", "/metrics", NULL, NULL);
    assert_int_equal(a.status, 200);
    answer_free(&a);
    const char *paths[] = {"/metrics", "/ready"};
    for (size_t i = 0; i < 2; i++) {
        a = request(REMOTE, "GET", paths[i], NULL, NULL);
        assert_int_equal(a.status, 401);
        assert_non_null(strstr(a.head, "WWW-Authenticate: Bearer"));
        answer_free(&a);
        a = request(REMOTE, "GET", paths[i], "Bearer wrong", NULL);
        assert_int_equal(a.status, 401);
        answer_free(&a);
        a = request(REMOTE, "GET", paths[i], "Bearer " TOKEN, NULL);
        assert_int_equal(a.status, 200);
        answer_free(&a);
    }
}

static void test_tunnel_create_list_delete(void **state)
{
    (void)state;
    struct answer a = api("POST", "/api/tunnels",
                          "{\"name\":\"web\",\"hostnames\":[\"App.Example.test\",\"*.web.test\"],"
                          "\"edges\":[\"edge.example.test:7844\"]}");
    assert_int_equal(a.status, 201);
    json_t *j = json_of(&a);
    const char *id = json_string_value(json_object_get(j, "id"));
    assert_non_null(id);
    /* The token is one a connector takes: this tunnel, the edges asked for. */
    struct px_token tok;
    char why[256];
    assert_int_equal(
        px_token_decode(json_string_value(json_object_get(j, "token")), &tok, why, sizeof(why)), 0);
    assert_string_equal(tok.tunnel_id, id);
    assert_string_equal(tok.name, "web");
    assert_int_equal(tok.n_edges, 1);
    assert_string_equal(tok.edges[0], "edge.example.test:7844");
    px_token_cleanup(&tok);
    /* In effect now: the registry has it. */
    assert_non_null(es_registry_tunnel(&w.srv.reg, id));
    char *idc = strdup(id);
    json_decref(j);
    answer_free(&a);

    a = api("GET", "/api/tunnels", NULL);
    assert_int_equal(a.status, 200);
    j = json_of(&a);
    json_t *t = json_array_get(json_object_get(j, "tunnels"), 0);
    assert_string_equal(json_string_value(json_object_get(t, "name")), "web");
    json_t *allowed = json_object_get(t, "allowed_hostnames");
    assert_int_equal(json_array_size(allowed), 2);
    assert_string_equal(json_string_value(json_array_get(allowed, 0)), "app.example.test");
    assert_true(json_is_array(json_object_get(t, "connectors")));
    json_decref(j);
    answer_free(&a);

    a = api("GET", "/api/tunnels/web", NULL);
    assert_int_equal(a.status, 200);
    j = json_of(&a);
    assert_string_equal(json_string_value(json_object_get(j, "id")), idc);
    json_decref(j);
    answer_free(&a);

    a = api("POST", "/api/tunnels", "{\"name\":\"web\"}");
    assert_int_equal(a.status, 409);
    answer_free(&a);

    /* The same operation as the CLI's: the store holds what it would. */
    struct es_tunnel_rec rec;
    assert_int_equal(es_store_tunnel_get(&w.srv.store, NULL, "web", &rec), 0);
    assert_string_equal(rec.patterns[1], "*.web.test");
    es_tunnel_rec_cleanup(&rec);

    a = api("POST", "/api/tunnels/web/rotate-token", "{\"grace\":\"1h\"}");
    assert_int_equal(a.status, 200);
    j = json_of(&a);
    assert_true(json_is_string(json_object_get(j, "token")));
    assert_true(json_integer_value(json_object_get(j, "previous_until")) > 0);
    json_decref(j);
    answer_free(&a);
    a = api("POST", "/api/tunnels/nobody/rotate-token", NULL);
    assert_int_equal(a.status, 404);
    answer_free(&a);

    a = api("DELETE", "/api/tunnels/web", NULL);
    assert_int_equal(a.status, 200);
    answer_free(&a);
    struct es_tunnel *gone = es_registry_tunnel(&w.srv.reg, idc);
    assert_true(!gone || gone->deleted);
    a = api("GET", "/api/tunnels/web", NULL);
    assert_int_equal(a.status, 404);
    answer_free(&a);
    a = api("DELETE", "/api/tunnels/web", NULL);
    assert_int_equal(a.status, 404);
    answer_free(&a);
    free(idc);
}

static void test_bad_requests(void **state)
{
    (void)state;
    const char *bodies[] = {"{",
                            "[]",
                            "\"name\"",
                            "{\"name\":\"web\",\"name\":\"two\"}",
                            "{\"name\":\"web\",\"hostname\":[\"a.test\"]}", /* misspelt */
                            "{\"name\":5}",
                            "{}",
                            "{\"name\":\"a b\"}",
                            "{\"name\":\"web\",\"hostnames\":\"a.test\"}",
                            "{\"name\":\"web\",\"hostnames\":[\"not a host\"]}",
                            "{\"name\":\"web\",\"hostnames\":[5]}",
                            "{\"name\":\"web\",\"edges\":[\"no-port\"]}",
                            "{\"name\":\"w\\u0000b\"}"};
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        struct answer a = api("POST", "/api/tunnels", bodies[i]);
        if (a.status != 400)
            print_error("%s -> %d %s\n", bodies[i], a.status, a.body);
        assert_int_equal(a.status, 400);
        json_t *j = json_of(&a);
        assert_true(json_is_string(json_object_get(j, "error")));
        json_decref(j);
        answer_free(&a);
    }
    struct es_tunnel_rec *t;
    size_t n;
    assert_int_equal(es_store_tunnel_list(&w.srv.store, &t, &n), 0);
    assert_int_equal(n, 0);
    es_store_tunnels_free(t, n);
    /* Wrong methods say which ones are right; unknown paths are 404. */
    struct answer a = api("PUT", "/api/tunnels", "{}");
    assert_int_equal(a.status, 405);
    assert_non_null(strstr(a.head, "Allow: GET, POST"));
    answer_free(&a);
    a = api("GET", "/api/tunnels/x/y/z/w", NULL);
    assert_int_equal(a.status, 404);
    answer_free(&a);
    a = api("GET", "/api/unknown", NULL);
    assert_int_equal(a.status, 404);
    answer_free(&a);
}

static void test_oversized_body_413(void **state)
{
    (void)state;
    char raw[512];
    int n = snprintf(raw, sizeof(raw),
                     "POST /api/tunnels HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer " TOKEN
                     "\r\nContent-Length: %d\r\n\r\n{",
                     ES_ADMIN_MAX_BODY + 1);
    struct answer a = raw_request("127.0.0.1", raw, (size_t)n);
    assert_int_equal(a.status, 413);
    answer_free(&a);
    /* A body of the cap itself is read (and refused as the JSON it is not). */
    size_t len = ES_ADMIN_MAX_BODY;
    char *body = malloc(len + 1);
    assert_non_null(body);
    memset(body, ' ', len);
    body[0] = '{';
    body[len] = '\0';
    a = api("POST", "/api/tunnels", body);
    assert_int_equal(a.status, 400);
    answer_free(&a);
    free(body);
}

static void test_path_segments_percent_decoded(void **state)
{
    (void)state;
    struct answer a = api("POST", "/api/tunnels", "{\"name\":\"my.tun\"}");
    assert_int_equal(a.status, 201);
    answer_free(&a);
    a = api("GET", "/api/tunnels/my%2Etun", NULL);
    assert_int_equal(a.status, 200);
    answer_free(&a);
    a = api("GET", "/api/tunnels/my%2etun", NULL);
    assert_int_equal(a.status, 200);
    answer_free(&a);
    a = api("GET", "/api/tunnels/my%zztun", NULL);
    assert_int_equal(a.status, 400);
    answer_free(&a);
    a = api("GET", "/api/tunnels/my%00tun", NULL);
    assert_int_equal(a.status, 400);
    answer_free(&a);
    a = api("GET", "/api/tunnels/my%2", NULL);
    assert_int_equal(a.status, 400);
    answer_free(&a);
    a = api("DELETE", "/api/tunnels/my%2Etun", NULL);
    assert_int_equal(a.status, 200);
    answer_free(&a);
    /* An access pattern with its wildcard escaped. */
    a = api("PUT", "/api/access/%2A.Example.test", "{\"require_cert\":true}");
    assert_int_equal(a.status, 200);
    answer_free(&a);
    a = api("DELETE", "/api/access/*.example.test", NULL);
    assert_int_equal(a.status, 200);
    answer_free(&a);
}

static void test_access_policies(void **state)
{
    (void)state;
    struct answer a = api("PUT", "/api/access/App.Example.test",
                          "{\"require_cert\":true,\"allow_subjects\":[\"CN=phone\"],"
                          "\"allow_fingerprints\":[\"" /* 32 bytes with colons */
                          "AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:"
                          "AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99\"],"
                          "\"audience\":\"app\"}");
    assert_int_equal(a.status, 200);
    answer_free(&a);
    /* In effect now. */
    assert_non_null(w.srv.access);
    assert_int_equal(es_access_count(w.srv.access), 1);
    a = api("GET", "/api/access", NULL);
    assert_int_equal(a.status, 200);
    json_t *j = json_of(&a);
    json_t *p = json_array_get(json_object_get(j, "policies"), 0);
    assert_string_equal(json_string_value(json_object_get(p, "pattern")), "app.example.test");
    assert_string_equal(json_string_value(json_array_get(json_object_get(p, "cas"), 0)), "edge");
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(p, "allow_fingerprints"), 0)),
        "aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899");
    assert_string_equal(json_string_value(json_object_get(p, "audience")), "app");
    json_decref(j);
    answer_free(&a);
    const char *bad[] = {"{}", "{\"require_cert\":false}",
                         "{\"require_cert\":true,\"allow_subjects\":[\"(\"]}",
                         "{\"require_cert\":true,\"allow_fingerprints\":[\"abc\"]}",
                         "{\"require_cert\":true,\"audience\":\"\"}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        a = api("PUT", "/api/access/app.example.test", bad[i]);
        if (a.status != 400)
            print_error("%s -> %d\n", bad[i], a.status);
        assert_int_equal(a.status, 400);
        answer_free(&a);
    }
    a = api("PUT", "/api/access/app.example.test", "{\"require_cert\":true,\"cas\":[\"nope\"]}");
    assert_int_equal(a.status, 404);
    answer_free(&a);
    a = api("PUT", "/api/access/not%20a%20host", "{\"require_cert\":true}");
    assert_int_equal(a.status, 400);
    answer_free(&a);
    a = api("POST", "/api/access/rotate-key", NULL);
    assert_int_equal(a.status, 200);
    j = json_of(&a);
    assert_true(json_is_string(json_object_get(j, "kid")));
    json_decref(j);
    answer_free(&a);
    a = api("DELETE", "/api/access/app.example.test", NULL);
    assert_int_equal(a.status, 200);
    answer_free(&a);
    assert_int_equal(es_access_count(w.srv.access), 0);
    a = api("DELETE", "/api/access/app.example.test", NULL);
    assert_int_equal(a.status, 404);
    answer_free(&a);
}

static void test_client_cas_and_certs(void **state)
{
    (void)state;
    /* A CA of the operator's own: here the edge's access CA stands in. */
    json_t *req = json_pack("{s:s,s:s}", "name", "home", "cert", w.srv.certs.access_ca_pem);
    char *body = json_dumps(req, 0);
    struct answer a = api("POST", "/api/client-cas", body);
    assert_int_equal(a.status, 201);
    answer_free(&a);
    a = api("POST", "/api/client-cas", body);
    assert_int_equal(a.status, 409);
    answer_free(&a);
    free(body);
    json_decref(req);
    a = api("POST", "/api/client-cas", "{\"name\":\"bad\",\"cert\":\"not a pem\"}");
    assert_int_equal(a.status, 400);
    answer_free(&a);
    a = api("GET", "/api/client-cas", NULL);
    assert_int_equal(a.status, 200);
    json_t *j = json_of(&a);
    json_t *ca = json_array_get(json_object_get(j, "client_cas"), 0);
    assert_string_equal(json_string_value(json_object_get(ca, "name")), "home");
    assert_false(json_is_true(json_object_get(ca, "crl")));
    json_decref(j);
    answer_free(&a);
    a = api("PUT", "/api/client-cas/home", "{\"crl\":null}");
    assert_int_equal(a.status, 200);
    answer_free(&a);
    a = api("PUT", "/api/client-cas/nobody", "{\"crl\":null}");
    assert_int_equal(a.status, 404);
    answer_free(&a);
    /* In use by a policy: 409, named. */
    a = api("PUT", "/api/access/a.test", "{\"require_cert\":true,\"cas\":[\"home\"]}");
    assert_int_equal(a.status, 200);
    answer_free(&a);
    a = api("DELETE", "/api/client-cas/home", NULL);
    assert_int_equal(a.status, 409);
    assert_non_null(strstr(a.body, "a.test"));
    answer_free(&a);
    a = api("DELETE", "/api/access/a.test", NULL);
    answer_free(&a);
    a = api("DELETE", "/api/client-cas/home", NULL);
    assert_int_equal(a.status, 200);
    answer_free(&a);

    a = api("POST", "/api/client-certs", "{\"name\":\"phone\",\"days\":2}");
    assert_int_equal(a.status, 201);
    j = json_of(&a);
    assert_non_null(strstr(json_string_value(json_object_get(j, "cert")), "BEGIN CERTIFICATE"));
    assert_non_null(strstr(json_string_value(json_object_get(j, "key")), "PRIVATE KEY"));
    assert_int_equal(json_string_length(json_object_get(j, "p12_password")), 20);
    uint8_t *p12;
    size_t p12_len;
    const char *b64 = json_string_value(json_object_get(j, "p12"));
    assert_int_equal(px_b64_decode(b64, strlen(b64), &p12, &p12_len), 0);
    assert_true(p12_len > 100);
    free(p12);
    char serial[80];
    snprintf(serial, sizeof(serial), "%s", json_string_value(json_object_get(j, "serial")));
    json_decref(j);
    answer_free(&a);
    a = api("POST", "/api/client-certs", "{\"name\":\"phone\"}");
    assert_int_equal(a.status, 409);
    answer_free(&a);
    a = api("POST", "/api/client-certs", "{\"name\":\"x\",\"csr\":\"junk\"}");
    assert_int_equal(a.status, 400);
    answer_free(&a);
    a = api("POST", "/api/client-certs", "{\"name\":\"x\",\"days\":0}");
    assert_int_equal(a.status, 400);
    answer_free(&a);
    a = api("GET", "/api/client-certs", NULL);
    j = json_of(&a);
    json_t *c = json_array_get(json_object_get(j, "client_certs"), 0);
    assert_string_equal(json_string_value(json_object_get(c, "status")), "valid");
    json_decref(j);
    answer_free(&a);
    char path[160];
    snprintf(path, sizeof(path), "/api/client-certs/%s/revoke", serial);
    a = api("POST", path, NULL);
    assert_int_equal(a.status, 200);
    j = json_of(&a);
    assert_int_equal(json_integer_value(json_object_get(j, "revoked")), 1);
    json_decref(j);
    answer_free(&a);
    a = api("POST", "/api/client-certs/phone/revoke", NULL);
    assert_int_equal(a.status, 200); /* already revoked: found, none revoked */
    answer_free(&a);
    a = api("POST", "/api/client-certs/nobody/revoke", NULL);
    assert_int_equal(a.status, 404);
    answer_free(&a);
}

static void test_status(void **state)
{
    (void)state;
    struct answer a = api("POST", "/api/tunnels", "{\"name\":\"st\",\"hostnames\":[\"st.test\"]}");
    answer_free(&a);
    a = api("GET", "/api/status", NULL);
    assert_int_equal(a.status, 200);
    json_t *j = json_of(&a);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "edge"), "version")),
                        PX_VERSION);
    assert_true(json_integer_value(json_object_get(json_object_get(j, "edge"), "since")) > 0);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(j, "tunnels"), 0), "name")),
                        "st");
    assert_true(json_is_array(json_object_get(j, "hostnames")));
    assert_true(json_is_array(json_object_get(j, "recent_errors")));
    json_decref(j);
    answer_free(&a);
    /* The page itself holds none of it. */
    a = request("127.0.0.1", "GET", "/", NULL, NULL);
    assert_null(strstr(a.body, "st.test"));
    answer_free(&a);
}

/* The CSP names the page's inline script and style by hash: what the
 * browser computes over the served text must be what the header says, or
 * the page would not run at all. And data reaches the page as text only. */
static void test_status_page_csp_matches(void **state)
{
    (void)state;
    struct answer a = request("127.0.0.1", "GET", "/", NULL, NULL);
    const char *tags[][2] = {{"<script>", "</script>"}, {"<style>", "</style>"}};
    for (size_t i = 0; i < 2; i++) {
        const char *s = strstr(a.body, tags[i][0]);
        assert_non_null(s);
        s += strlen(tags[i][0]);
        const char *e = strstr(s, tags[i][1]);
        assert_non_null(e);
        unsigned char h[32];
        assert_int_equal(wc_Sha256Hash((const unsigned char *)s, (word32)(e - s), h), 0);
        char *b = px_b64_encode(h, sizeof(h), 0);
        char want[100];
        snprintf(want, sizeof(want), "'sha256-%s'", b);
        free(b);
        assert_non_null(strstr(a.head, want));
    }
    assert_null(strstr(a.body, "innerHTML"));
    assert_null(strstr(a.body, "insertAdjacentHTML"));
    assert_null(strstr(a.body, "document.write"));
    assert_null(strstr(a.body, "http://")); /* no external assets */
    assert_null(strstr(a.body, "https://"));
    assert_non_null(strstr(a.body, "@media (max-width:600px)"));
    answer_free(&a);
}

static void test_token_file(void **state)
{
    (void)state;
    char dir[128], path[160], tok[ES_ADMIN_TOKEN_MAX + 1], again[ES_ADMIN_TOKEN_MAX + 1], why[512];
    snprintf(dir, sizeof(dir), "%s/new", w.dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof(path), "%s/admin.token", dir);
    int created = 0;
    assert_int_equal(es_admin_token_load(dir, test_rng(), 0, tok, &created, why, sizeof(why)),
                     PX_ERR_NOT_FOUND);
    assert_int_equal(es_admin_token_load(dir, test_rng(), 1, tok, &created, why, sizeof(why)), 0);
    assert_int_equal(created, 1);
    assert_int_equal(strlen(tok), 43); /* 32 bytes, base64url */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(es_admin_token_load(dir, test_rng(), 1, again, &created, why, sizeof(why)), 0);
    assert_int_equal(created, 0);
    assert_string_equal(tok, again);
    /* Only the token file is left behind (no temporary). */
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "test $(ls -A %s | wc -l) = 1", dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(es_admin_token_load(dir, test_rng(), 1, again, NULL, why, sizeof(why)),
                     PX_ERR_DENIED);
    assert_non_null(strstr(why, "chmod 600"));
    assert_int_equal(write_file(path, "short\n", 0600), 0);
    assert_int_equal(es_admin_token_load(dir, test_rng(), 1, again, NULL, why, sizeof(why)),
                     PX_ERR_INVAL);
    assert_int_equal(write_file(path, "has spaces in it but is long enough to be one\n", 0600), 0);
    assert_int_equal(es_admin_token_load(dir, test_rng(), 1, again, NULL, why, sizeof(why)),
                     PX_ERR_INVAL);

    assert_int_equal(es_admin_token_check(TOKEN, "Bearer " TOKEN), 1);
    assert_int_equal(es_admin_token_check(TOKEN, "BEARER  " TOKEN " "), 1);
    assert_int_equal(es_admin_token_check(TOKEN, "Bearer " TOKEN "\t"), 1);
    assert_int_equal(es_admin_token_check(TOKEN, NULL), 0);
    assert_int_equal(es_admin_token_check(TOKEN, ""), 0);
    assert_int_equal(es_admin_token_check(TOKEN, "Bearer"), 0);
    assert_int_equal(es_admin_token_check("", "Bearer "), 0);
    assert_int_equal(es_admin_token_check(TOKEN, "Bearer " TOKEN "0"), 0);
    char cut[] = "Bearer " TOKEN;
    cut[strlen(cut) - 1] = '\0';
    assert_int_equal(es_admin_token_check(TOKEN, cut), 0);
}

/* review 12.2: a request without the token is answered from its head,
 * before any of its body is read: no 100 Continue, nothing buffered, and
 * the connection goes once the body has been read away. */
static void test_review_12_2_refused_before_the_body(void **state)
{
    (void)state;
    static const struct {
        const char *peer, *head;
        int status;
    } cases[] = {
        {"127.0.0.1",
         "POST /api/tunnels HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\n"
         "Content-Length: 1048576\r\n\r\n",
         401},
        {"127.0.0.1",
         "PUT /api/access/x HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer wrong\r\n"
         "Content-Length: 1048576\r\n\r\n",
         401},
        {REMOTE, "GET /metrics HTTP/1.1\r\nHost: e\r\nContent-Length: 1048576\r\n\r\n", 401},
        {REMOTE, "POST /healthz HTTP/1.1\r\nHost: e\r\nContent-Length: 1048576\r\n\r\n", 405},
        {REMOTE, "POST /nowhere HTTP/1.1\r\nHost: e\r\nContent-Length: 1048576\r\n\r\n", 404},
        {"127.0.0.1",
         "GET /metrics HTTP/1.1\r\nHost: evil.example\r\nContent-Length: 1048576\r\n\r\n", 421},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rt_conn *c = es_admin_new_memory(&w.srv, cases[i].peer);
        assert_non_null(c);
        assert_int_equal(rt_conn_memory_feed(c, cases[i].head, strlen(cases[i].head)), 0);
        run();
        size_t n = px_buf_len(&c->mem_out);
        char *resp = strndup((const char *)px_buf_head(&c->mem_out), n);
        assert_non_null(resp);
        int status = 0;
        assert_int_equal(sscanf(resp, "HTTP/1.1 %d", &status), 1);
        if (status != cases[i].status)
            print_error("case %zu: %s\n", i, resp);
        assert_int_equal(status, cases[i].status);
        if (status == 401)
            assert_non_null(strstr(resp, "\r\nWWW-Authenticate: Bearer"));
        free(resp);
        rt_conn_memory_consume(c, n);
        rt_conn_memory_eof(c);
        run();
    }
    /* With the token the body is read and the API answers. */
    struct answer a = api("POST", "/api/tunnels", "{\"name\":\"withtoken\"}");
    assert_int_equal(a.status, 201);
    answer_free(&a);
}

/* review 12.3: loopback peers get /metrics and /ready without the token
 * only for a Host that is an IP address or localhost (a DNS-rebinding page
 * sends its own name); with the token, or for the open endpoints, any Host. */
static void test_review_12_3_loopback_needs_a_literal_host(void **state)
{
    (void)state;
    w.srv.listening = 1;
    const char *paths[] = {"/metrics", "/ready"};
    const char *good[] = {"127.0.0.1", "127.0.0.1:7845", "localhost:7845", "[::1]:7845",
                          "LOCALHOST"};
    const char *bad[] = {"evil.example", "evil.example:7845", "localhost.evil.example",
                         "localhost.:7845", "127.0.0.1.evil.example"};
    for (size_t p = 0; p < 2; p++) {
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
            struct answer a = request_host("127.0.0.1", good[i], "GET", paths[p], NULL, NULL);
            if (a.status != 200)
                print_error("%s Host %s: %d\n", paths[p], good[i], a.status);
            assert_int_equal(a.status, 200);
            answer_free(&a);
        }
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            struct answer a = request_host("::1", bad[i], "GET", paths[p], NULL, NULL);
            if (a.status != 421)
                print_error("%s Host %s: %d\n", paths[p], bad[i], a.status);
            assert_int_equal(a.status, 421);
            json_t *j = json_of(&a);
            assert_non_null(strstr(json_string_value(json_object_get(j, "error")), "localhost"));
            assert_null(strstr(a.body, "edge_build_info"));
            json_decref(j);
            answer_free(&a);
            /* A wrong token changes nothing; the right one lets any Host in. */
            a = request_host("127.0.0.1", bad[i], "GET", paths[p], "Bearer wrong", NULL);
            assert_int_equal(a.status, 421);
            answer_free(&a);
            a = request_host("127.0.0.1", bad[i], "GET", paths[p], "Bearer " TOKEN, NULL);
            assert_int_equal(a.status, 200);
            answer_free(&a);
        }
    }
    /* HTTP/1.0 without a Host (no browser sends that). */
    static const char old[] = "GET /metrics HTTP/1.0\r\n\r\n";
    struct answer a = raw_request("127.0.0.1", old, strlen(old));
    assert_int_equal(a.status, 200);
    answer_free(&a);
    /* The endpoints that hold no data stay open whatever the Host. */
    const char *open_paths[] = {"/healthz", "/healthcheck", "/"};
    for (size_t i = 0; i < 3; i++) {
        a = request_host("127.0.0.1", "evil.example", "GET", open_paths[i], NULL, NULL);
        assert_int_equal(a.status, 200);
        answer_free(&a);
    }
    /* The API wants the token whatever the Host, and takes any with it. */
    a = request_host("127.0.0.1", "evil.example", "GET", "/api/tunnels", NULL, NULL);
    assert_int_equal(a.status, 401);
    answer_free(&a);
    a = request_host("127.0.0.1", "evil.example", "GET", "/api/tunnels", "Bearer " TOKEN, NULL);
    assert_int_equal(a.status, 200);
    answer_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_api_refuses_without_the_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_endpoints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ready_follows_serving_and_drain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loopback_rule, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tunnel_create_list_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized_body_413, setup, teardown),
        cmocka_unit_test_setup_teardown(test_path_segments_percent_decoded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_access_policies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_cas_and_certs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_page_csp_matches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_review_12_2_refused_before_the_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_review_12_3_loopback_needs_a_literal_host, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
