/* cn_metrics: the families render in Prometheus text; the event functions
 * move the series they name (and map typed causes to their labels); a
 * stream in memory, against the fake origin on 127.0.0.1, moves
 * requests_total, bytes, the response-time histogram and the origin errors
 * by cause; a link registered in mem_world moves links_up, and a request
 * through it writes one access line with every field. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cn_ingress.h"
#include "cn_metrics.h"
#include "cn_origin.h"
#include "cn_stream.h"
#include "cn_supervisor.h"
#include "fake_origin.h"
#include "mem_world.h"
#include "om_names.h"
#include "px_buf.h"
#include "px_log.h"
#include "px_metrics.h"
#include "rt_loop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- reading the registry ---- */

static double get(struct cn_metrics *m, const char *family, const char *const *values)
{
    struct px_metric *f = cn_metrics_family(m, family);
    if (!f)
        fail_msg("no family %s", family);
    return px_metric_get(f, values);
}

static double get1(struct cn_metrics *m, const char *family, const char *value)
{
    const char *v[] = {value};
    return get(m, family, v);
}

static double get2(struct cn_metrics *m, const char *family, const char *a, const char *b)
{
    const char *v[] = {a, b};
    return get(m, family, v);
}

/* The rendered text; the caller frees it. */
static char *render(struct cn_metrics *m)
{
    struct px_buf b;
    px_buf_init(&b);
    assert_int_equal(cn_metrics_render(m, &b), 0);
    char *text = strdup(px_buf_cstr(&b));
    px_buf_cleanup(&b);
    assert_non_null(text);
    return text;
}

static void assert_has(const char *text, const char *want)
{
    if (!strstr(text, want))
        fail_msg("rendering has no \"%s\":\n%s", want, text);
}

static struct cn_ingress *rules(const char *json)
{
    struct cn_ingress *ing = NULL;
    struct cn_ingress_errors errs = {0};
    int rc = cn_ingress_parse(json, strlen(json), &ing, &errs);
    for (size_t i = 0; i < errs.n; i++)
        fprintf(stderr, "ingress: %s\n", errs.lines[i]);
    cn_ingress_errors_cleanup(&errs);
    assert_int_equal(rc, 0);
    return ing;
}

/* ---- the families and the event functions ---- */

static void test_families_render(void **state)
{
    (void)state;
    struct cn_metrics *m = cn_metrics_new("9.8.7", 1700000000);
    assert_non_null(m);
    const char *edges[] = {"edge-a.test:7844", "edge-b.test:7844"};
    cn_metrics_edges(m, edges, 2);
    struct cn_ingress *ing = rules("{\"ingress\":[{\"hostname\":\"a.test\",\"path\":\"^/api\","
                                   "\"service\":\"http://127.0.0.1:1\"},"
                                   "{\"service\":\"http_status:404\"}]}");
    cn_metrics_rules(m, ing);
    char *t = render(m);
    static const char *const types[] = {
        "# TYPE connector_build_info gauge",
        "# TYPE connector_start_time_seconds gauge",
        "# TYPE connector_links_up gauge",
        "# TYPE connector_reconnects_total counter",
        "# TYPE connector_registration_failures_total counter",
        "# TYPE connector_requests_total counter",
        "# TYPE connector_ingress_rule_info gauge",
        "# TYPE connector_active_streams gauge",
        "# TYPE connector_active_websockets gauge",
        "# TYPE connector_bytes_total counter",
        "# TYPE connector_origin_response_seconds histogram",
        "# TYPE connector_origin_errors_total counter",
        "# TYPE process_resident_memory_bytes gauge",
        "# TYPE process_open_fds gauge",
    };
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        assert_has(t, types[i]);
    assert_has(t, "connector_build_info{version=\"9.8.7\"} 1\n");
    assert_has(t, "connector_links_up{edge=\"edge-a.test:7844\"} 0\n");
    assert_has(t, "connector_links_up{edge=\"edge-b.test:7844\"} 0\n");
    assert_has(t, "connector_bytes_total{direction=\"to_origin\"} 0\n");
    assert_has(t, "connector_bytes_total{direction=\"from_origin\"} 0\n");
    assert_has(t, "connector_active_streams 0\n");
    assert_has(t, "connector_ingress_rule_info{rule=\"0\",hostname=\"a.test\",path=\"^/api\"} 1\n");
    assert_has(t, "connector_ingress_rule_info{rule=\"1\",hostname=\"\",path=\"\"} 1\n");
    static const char *const causes[] = {"refused", "resolve", "tls_verify",   "tls",
                                         "timeout", "reset",   "bad_response", "other"};
    for (size_t i = 0; i < sizeof(causes) / sizeof(causes[0]); i++) {
        char want[128];
        snprintf(want, sizeof(want), "connector_origin_errors_total{cause=\"%s\"} 0\n", causes[i]);
        assert_has(t, want);
    }
    /* The process gauges are read at scrape: this process has fds open. */
    assert_true(get(m, "process_open_fds", NULL) >= 3);
    assert_true(get(m, "process_resident_memory_bytes", NULL) > 0);
    assert_true(get(m, "connector_start_time_seconds", NULL) == 1700000000);
    free(t);
    /* A reload replaces the rules' info. */
    struct cn_ingress *next = rules("{\"ingress\":[{\"hostname\":\"b.test\","
                                    "\"service\":\"http://127.0.0.1:1\"},"
                                    "{\"service\":\"http_status:404\"}]}");
    cn_metrics_rules(m, next);
    t = render(m);
    assert_null(strstr(t, "hostname=\"a.test\""));
    assert_has(t, "connector_ingress_rule_info{rule=\"0\",hostname=\"b.test\",path=\"\"} 1\n");
    free(t);
    cn_ingress_unref(ing);
    cn_ingress_unref(next);
    cn_metrics_free(m);
}

static void test_link_events(void **state)
{
    (void)state;
    struct cn_metrics *m = cn_metrics_new("1", 0);
    assert_non_null(m);
    cn_metrics_link_up(m, "e1:1");
    cn_metrics_link_up(m, "e1:1");
    cn_metrics_link_up(m, "e2:1");
    cn_metrics_link_down(m, "e1:1");
    assert_true(get1(m, "connector_links_up", "e1:1") == 1);
    assert_true(get1(m, "connector_links_up", "e2:1") == 1);
    cn_metrics_reconnect(m, "e1:1");
    cn_metrics_reconnect(m, "e1:1");
    assert_true(get1(m, "connector_reconnects_total", "e1:1") == 2);
    /* Every cause of a link's close maps to a reason, our own close to none. */
    static const struct {
        enum cn_link_cause cause;
        const char *reason;
    } map[] = {
        {CN_LINK_OPEN, NULL},
        {CN_LINK_CAUSE_LOCAL, NULL},
        {CN_LINK_CAUSE_RESOLVE, "resolve"},
        {CN_LINK_CAUSE_CONNECT, "connect"},
        {CN_LINK_CAUSE_CERT_REFUSED, "cert_refused"},
        {CN_LINK_CAUSE_TLS, "tls"},
        {CN_LINK_CAUSE_PROTOCOL, "protocol"},
        {CN_LINK_CAUSE_DEAD_PEER, "timeout"},
        {CN_LINK_CAUSE_PEER_CLOSED, "closed"},
        {CN_LINK_CAUSE_GOAWAY_TIMEOUT, "other"},
        {CN_LINK_CAUSE_NOMEM, "other"},
        {CN_LINK_CAUSE_TIMEOUT, "timeout"},
        {CN_LINK_CAUSE_REFUSED, "refused"},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        const char *r = cn_metrics_link_reason(map[i].cause);
        if (map[i].reason)
            assert_string_equal(r, map[i].reason);
        else
            assert_null(r);
        cn_metrics_registration_failed(m, "e1:1", map[i].cause);
    }
    assert_true(get2(m, "connector_registration_failures_total", "e1:1", "timeout") == 2);
    assert_true(get2(m, "connector_registration_failures_total", "e1:1", "refused") == 1);
    assert_true(get2(m, "connector_registration_failures_total", "e1:1", "cert_refused") == 1);
    char *t = render(m);
    assert_has(t, "connector_registration_failures_total{edge=\"e1:1\",reason=\"tls\"} 1\n");
    free(t);
    cn_metrics_free(m);
    /* Without an object nothing happens (harnesses without metrics). */
    cn_metrics_link_up(NULL, "x");
    cn_metrics_registration_failed(NULL, "x", CN_LINK_CAUSE_TLS);
}

/* review 12.8: the link counters of every configured edge exist at 0
 * before anything happens (reconnects, and registration failures for every
 * reason a link's close can give), so the first one is a rise from 0 that
 * rate() and increase() see. */
static void test_review_12_8_link_counters_at_zero_per_edge(void **state)
{
    (void)state;
    struct cn_metrics *m = cn_metrics_new("1", 0);
    assert_non_null(m);
    const char *edges[] = {"edge-a.test:7844", "[2001:db8::1]:7844"};
    cn_metrics_edges(m, edges, 2);
    char *t = render(m);
    for (size_t e = 0; e < 2; e++) {
        char want[256];
        snprintf(want, sizeof(want), "connector_reconnects_total{edge=\"%s\"} 0\n", edges[e]);
        assert_has(t, want);
        /* Every reason any cause maps to (CN_LINK_OPEN..CN_LINK_CAUSE_REFUSED). */
        for (int c = CN_LINK_OPEN; c <= CN_LINK_CAUSE_REFUSED; c++) {
            const char *r = cn_metrics_link_reason((enum cn_link_cause)c);
            if (!r)
                continue;
            snprintf(want, sizeof(want),
                     "connector_registration_failures_total{edge=\"%s\",reason=\"%s\"} 0\n",
                     edges[e], r);
            assert_has(t, want);
        }
    }
    free(t);
    cn_metrics_registration_failed(m, "edge-a.test:7844", CN_LINK_CAUSE_TLS);
    cn_metrics_reconnect(m, "edge-a.test:7844");
    assert_true(get2(m, "connector_registration_failures_total", "edge-a.test:7844", "tls") == 1);
    assert_true(get2(m, "connector_registration_failures_total", "edge-a.test:7844", "connect") ==
                0);
    assert_true(get1(m, "connector_reconnects_total", "edge-a.test:7844") == 1);
    t = render(m);
    assert_has(t, "connector_reconnects_total{edge=\"[2001:db8::1]:7844\"} 0\n");
    assert_has(t, "connector_registration_failures_total{edge=\"[2001:db8::1]:7844\",reason="
                  "\"tls\"} 0\n");
    free(t);
    cn_metrics_free(m);
}

/* review 12.4: no two families of the connector's rendering claim one
 * OpenMetrics name (X next to X_total, a histogram's parts, ...). */
static void test_review_12_4_no_family_name_clash(void **state)
{
    (void)state;
    struct cn_metrics *m = cn_metrics_new("1", 0);
    assert_non_null(m);
    const char *edges[] = {"e1:1"};
    cn_metrics_edges(m, edges, 1);
    cn_metrics_link_up(m, "e1:1");
    cn_metrics_request_done(m, NULL, 404);
    cn_metrics_origin_response(m, NULL, 0.01);
    char *t = render(m);
    char why[256] = "";
    int rc = om_names_clash(t, why, sizeof(why));
    if (rc != 0)
        fail_msg("OpenMetrics name clash (%d): %s", rc, why);
    free(t);
    cn_metrics_free(m);
}

static void test_request_events(void **state)
{
    (void)state;
    struct cn_metrics *m = cn_metrics_new("1", 0);
    assert_non_null(m);
    struct cn_ingress *ing = rules("{\"ingress\":[{\"hostname\":\"a.test\","
                                   "\"service\":\"http://127.0.0.1:1\"},"
                                   "{\"service\":\"http_status:404\"}]}");
    const struct cn_rule *r0 = &ing->rules[0], *r1 = &ing->rules[1];
    cn_metrics_request_done(m, r0, 200);
    cn_metrics_request_done(m, r0, 204);
    cn_metrics_request_done(m, r0, 502);
    cn_metrics_request_done(m, r1, 404);
    cn_metrics_request_done(m, NULL, 400);
    cn_metrics_request_done(m, r0, 0);   /* no response: not a request answered */
    cn_metrics_request_done(m, r0, 999); /* no class */
    assert_true(get2(m, "connector_requests_total", "0", "2xx") == 2);
    assert_true(get2(m, "connector_requests_total", "0", "5xx") == 1);
    assert_true(get2(m, "connector_requests_total", "1", "4xx") == 1);
    assert_true(get2(m, "connector_requests_total", CN_METRICS_NO_RULE, "4xx") == 1);
    assert_string_equal(cn_metrics_status_class(101), "1xx");
    assert_string_equal(cn_metrics_status_class(399), "3xx");
    assert_null(cn_metrics_status_class(99));
    assert_null(cn_metrics_status_class(600));
    /* Causes are typed; each has its label. */
    static const struct {
        enum cn_origin_cause cause;
        const char *label;
    } causes[] = {{CN_ORIGIN_REFUSED, "refused"},           {CN_ORIGIN_RESOLVE, "resolve"},
                  {CN_ORIGIN_TLS_VERIFY, "tls_verify"},     {CN_ORIGIN_TLS, "tls"},
                  {CN_ORIGIN_TIMEOUT, "timeout"},           {CN_ORIGIN_RESET, "reset"},
                  {CN_ORIGIN_BAD_RESPONSE, "bad_response"}, {CN_ORIGIN_OTHER, "other"}};
    for (size_t i = 0; i < sizeof(causes) / sizeof(causes[0]); i++) {
        assert_string_equal(cn_metrics_origin_cause(causes[i].cause), causes[i].label);
        for (size_t k = 0; k <= i; k++)
            cn_metrics_origin_error(m, causes[i].cause);
        assert_true(get1(m, "connector_origin_errors_total", causes[i].label) == (double)(i + 1));
    }
    /* What curl's results stand for. */
    assert_int_equal(cn_origin_cause_of(CURLE_COULDNT_CONNECT), CN_ORIGIN_REFUSED);
    assert_int_equal(cn_origin_cause_of(CURLE_COULDNT_RESOLVE_HOST), CN_ORIGIN_RESOLVE);
    assert_int_equal(cn_origin_cause_of(CURLE_PEER_FAILED_VERIFICATION), CN_ORIGIN_TLS_VERIFY);
    assert_int_equal(cn_origin_cause_of(CURLE_SSL_CONNECT_ERROR), CN_ORIGIN_TLS);
    assert_int_equal(cn_origin_cause_of(CURLE_OPERATION_TIMEDOUT), CN_ORIGIN_TIMEOUT);
    assert_int_equal(cn_origin_cause_of(CURLE_RECV_ERROR), CN_ORIGIN_RESET);
    assert_int_equal(cn_origin_cause_of(CURLE_GOT_NOTHING), CN_ORIGIN_RESET);
    assert_int_equal(cn_origin_cause_of(CURLE_WEIRD_SERVER_REPLY), CN_ORIGIN_BAD_RESPONSE);
    assert_int_equal(cn_origin_cause_of(CURLE_OUT_OF_MEMORY), CN_ORIGIN_OTHER);
    /* Gauges and bytes. */
    cn_metrics_stream_open(m);
    cn_metrics_stream_open(m);
    cn_metrics_stream_close(m);
    cn_metrics_websocket_open(m);
    assert_true(get(m, "connector_active_streams", NULL) == 1);
    assert_true(get(m, "connector_active_websockets", NULL) == 1);
    cn_metrics_websocket_close(m);
    assert_true(get(m, "connector_active_websockets", NULL) == 0);
    cn_metrics_bytes_to_origin(m, 10);
    cn_metrics_bytes_from_origin(m, 20);
    cn_metrics_bytes_from_origin(m, 22);
    assert_true(get1(m, "connector_bytes_total", "to_origin") == 10);
    assert_true(get1(m, "connector_bytes_total", "from_origin") == 42);
    cn_metrics_origin_response(m, r0, 0.003);
    cn_metrics_origin_response(m, r0, 0.7);
    assert_true(get1(m, "connector_origin_response_seconds", "0") == 2);
    char *t = render(m);
    assert_has(t, "connector_origin_response_seconds_bucket{rule=\"0\",le=\"0.005\"} 1\n");
    assert_has(t, "connector_origin_response_seconds_bucket{rule=\"0\",le=\"1\"} 2\n");
    assert_has(t, "connector_origin_response_seconds_count{rule=\"0\"} 2\n");
    free(t);
    cn_ingress_unref(ing);
    cn_metrics_free(m);
    cn_metrics_request_done(NULL, NULL, 200);
    cn_metrics_origin_error(NULL, CN_ORIGIN_TLS);
    cn_metrics_bytes_to_origin(NULL, 1);
}

/* ---- a stream in memory against the fake origin ---- */

/* The fake host: the session reads every response byte at once. */
struct fake_host {
    uv_loop_t loop;
    struct rt_loop rl;
    struct cn_origin *origin;
    struct cn_ingress *ing;
    struct cn_metrics *m;
    unsigned timeout_ms;
    struct cn_stream *body_of;
    int status, submits, resets, eof, failed, gone;
    size_t body;
};

static struct fake_host fh;
static struct fake_origin fo;

static const struct cn_rule *fh_route(void *arg, const char *host, const char *path,
                                      struct cn_ingress **ing)
{
    (void)arg;
    *ing = NULL;
    const struct cn_rule *r = cn_ingress_match(fh.ing, host, path);
    if (r) {
        cn_ingress_ref(fh.ing);
        *ing = fh.ing;
    }
    return r;
}

static struct cn_creds *fh_creds(void *arg)
{
    (void)arg;
    return NULL;
}

static int fh_submit(void *arg, struct cn_stream *s, int32_t id, const nghttp2_nv *nv, size_t n,
                     int with_body)
{
    (void)arg;
    (void)id;
    (void)n;
    fh.submits++;
    fh.status = atoi((const char *)nv[0].value);
    fh.body_of = with_body ? s : NULL;
    fh.eof = !with_body;
    return 0;
}

static void fh_reset(void *arg, int32_t id, uint32_t code)
{
    (void)arg;
    (void)id;
    (void)code;
    fh.resets++;
}

static void fh_consume(void *arg, int32_t id, size_t n)
{
    (void)arg;
    (void)id;
    (void)n;
}

static void fh_resume(void *arg, int32_t id)
{
    (void)arg;
    (void)id;
}

static void fh_kick(void *arg)
{
    (void)arg;
}

static int fh_hold(void *arg, ssize_t delta)
{
    (void)arg;
    (void)delta;
    return 0;
}

static void fh_gone(void *arg, struct cn_stream *s)
{
    (void)arg;
    fh.gone++;
    if (fh.body_of == s)
        fh.body_of = NULL;
}

static const struct cn_assert_keys *fh_keys(void *arg)
{
    (void)arg;
    return NULL;
}

static const struct cn_stream_env_ops fh_env_ops = {.route = fh_route, .creds = fh_creds};
static const struct cn_stream_host_ops fh_ops = {
    .submit = fh_submit,
    .reset = fh_reset,
    .consume = fh_consume,
    .resume = fh_resume,
    .kick = fh_kick,
    .hold = fh_hold,
    .gone = fh_gone,
    .assert_keys = fh_keys,
};

static int setup_origin(void **state)
{
    (void)state;
    memset(&fh, 0, sizeof(fh));
    fh.timeout_ms = 5000;
    if (uv_loop_init(&fh.loop) != 0 || rt_loop_init(&fh.rl, &fh.loop) < 0 ||
        cn_origin_new(&fh.loop, &fh.origin) < 0 || fo_start(&fo, &fh.loop) < 0)
        return -1;
    fh.m = cn_metrics_new("test", 0);
    if (!fh.m)
        return -1;
    char json[1024];
    snprintf(json, sizeof(json),
             "{\"ingress\":["
             "{\"hostname\":\"a.test\",\"service\":\"http://127.0.0.1:%d\"},"
             "{\"hostname\":\"refused.test\",\"service\":\"http://127.0.0.1:%d\"},"
             "{\"service\":\"http_status:404\"}]}",
             fo.port, fo_refusing_port());
    struct cn_ingress_errors errs = {0};
    int rc = cn_ingress_parse(json, strlen(json), &fh.ing, &errs);
    cn_ingress_errors_cleanup(&errs);
    return rc < 0 ? -1 : 0;
}

static int teardown_origin(void **state)
{
    (void)state;
    cn_origin_free(fh.origin);
    fo_stop(&fo);
    cn_ingress_unref(fh.ing);
    for (int i = 0; i < 100 && uv_loop_alive(&fh.loop); i++)
        uv_run(&fh.loop, UV_RUN_NOWAIT);
    rt_loop_cleanup(&fh.rl);
    for (int i = 0; i < 10 && uv_loop_alive(&fh.loop); i++)
        uv_run(&fh.loop, UV_RUN_NOWAIT);
    int rc = uv_loop_close(&fh.loop);
    /* Every stream went away: no request is left in flight. */
    double active = px_metric_get(cn_metrics_family(fh.m, "connector_active_streams"), NULL);
    cn_metrics_free(fh.m);
    return rc == 0 && active == 0 ? 0 : -1;
}

static void session_read(void)
{
    uint8_t buf[16384];
    while (fh.body_of && !fh.eof && !fh.failed) {
        uint32_t flags = NGHTTP2_DATA_FLAG_NONE;
        nghttp2_data_source src = {.ptr = fh.body_of};
        ssize_t n = cn_stream_read_body(NULL, cn_stream_id(fh.body_of), buf, sizeof(buf), &flags,
                                        &src, NULL);
        if (n == NGHTTP2_ERR_DEFERRED)
            break;
        if (n < 0) {
            fh.failed = 1;
            break;
        }
        fh.body += (size_t)n;
        if (flags & NGHTTP2_DATA_FLAG_EOF)
            fh.eof = 1;
    }
}

static int done(void)
{
    return (fh.submits > 0 && (fh.eof || fh.failed)) || fh.resets > 0;
}

static int answered(void)
{
    return fh.submits > 0 || fh.resets > 0;
}

static int pump_until(int (*cond)(void), int ms)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        uv_run(&fh.loop, UV_RUN_NOWAIT);
        session_read();
        if (cond())
            return 1;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > ms)
            return 0;
        usleep(200);
    }
}

/* A stream with a complete head (more: name, value, ..., NULL). */
static struct cn_stream *request(int32_t id, const char *method, const char *host, const char *path,
                                 int end_stream, ...)
{
    struct cn_stream_host host_ = {.ops = &fh_ops,
                                   .arg = &fh,
                                   .env = {.ops = &fh_env_ops,
                                           .arg = &fh,
                                           .loop = &fh.loop,
                                           .origin = fh.origin,
                                           .response_timeout_ms = fh.timeout_ms,
                                           .metrics = fh.m}};
    struct cn_stream *s = cn_stream_new(&host_, id);
    assert_non_null(s);
    fh.status = fh.submits = fh.resets = fh.eof = fh.failed = 0;
    fh.body = 0;
    const char *pseudo[][2] = {
        {":method", method}, {":scheme", "https"}, {":authority", host}, {":path", path}};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(cn_stream_on_header(s, (const uint8_t *)pseudo[i][0], strlen(pseudo[i][0]),
                                             (const uint8_t *)pseudo[i][1], strlen(pseudo[i][1])),
                         0);
    va_list ap;
    va_start(ap, end_stream);
    for (const char *n; (n = va_arg(ap, const char *)) != NULL;) {
        const char *v = va_arg(ap, const char *);
        assert_int_equal(
            cn_stream_on_header(s, (const uint8_t *)n, strlen(n), (const uint8_t *)v, strlen(v)),
            0);
    }
    va_end(ap);
    assert_int_equal(cn_stream_on_request(s, end_stream), 0);
    return s;
}

static void close_stream(struct cn_stream *s)
{
    int gone = fh.gone;
    cn_stream_on_close(s, 0);
    assert_int_equal(fh.gone, gone + 1);
}

static void test_stream_moves_requests_bytes_histogram(void **state)
{
    (void)state;
    struct cn_metrics *m = fh.m;
    struct cn_stream *s = request(1, "GET", "a.test", "/ok", 1, NULL);
    assert_true(get(m, "connector_active_streams", NULL) == 1);
    assert_true(pump_until(done, 3000));
    assert_int_equal(fh.status, 200);
    assert_int_equal(fh.body, strlen(FO_OK_BODY));
    /* Counted as the bytes move and once the head arrives... */
    assert_true(get1(m, "connector_bytes_total", "from_origin") == strlen(FO_OK_BODY));
    assert_true(get1(m, "connector_origin_response_seconds", "0") == 1);
    /* ...the request when it ends. */
    assert_true(get2(m, "connector_requests_total", "0", "2xx") == 0);
    close_stream(s);
    assert_true(get2(m, "connector_requests_total", "0", "2xx") == 1);
    assert_true(get(m, "connector_active_streams", NULL) == 0);

    /* A request body goes to the origin. */
    char body[1000];
    memset(body, 'b', sizeof(body));
    s = request(3, "POST", "a.test", "/echo", 0, "content-length", "1000", NULL);
    assert_int_equal(cn_stream_on_data(s, (const uint8_t *)body, sizeof(body)), 0);
    cn_stream_on_end(s);
    assert_true(pump_until(done, 3000));
    assert_int_equal(fh.status, 200);
    close_stream(s);
    assert_true(get1(m, "connector_bytes_total", "to_origin") == 1000);
    assert_true(get1(m, "connector_bytes_total", "from_origin") == strlen(FO_OK_BODY) + 4);
    assert_true(get2(m, "connector_requests_total", "0", "2xx") == 2);
    assert_true(get1(m, "connector_origin_response_seconds", "0") == 2);
    /* Nothing was counted as an origin error. */
    assert_true(get1(m, "connector_origin_errors_total", "refused") == 0);
    assert_true(get1(m, "connector_origin_errors_total", "bad_response") == 0);
}

static void test_stream_origin_refused_counts_cause(void **state)
{
    (void)state;
    struct cn_metrics *m = fh.m;
    struct cn_stream *s = request(1, "GET", "refused.test", "/", 1, NULL);
    assert_true(pump_until(done, 3000));
    assert_int_equal(fh.status, 502);
    close_stream(s);
    assert_true(get1(m, "connector_origin_errors_total", "refused") == 1);
    assert_true(get2(m, "connector_requests_total", "1", "5xx") == 1);
    assert_true(get1(m, "connector_origin_response_seconds", "1") == 0);
    /* Local answers are no origin error: the catch-all's 404, no route. */
    s = request(3, "GET", "other.test", "/", 1, NULL);
    assert_true(pump_until(done, 3000));
    assert_int_equal(fh.status, 404);
    close_stream(s);
    assert_true(get2(m, "connector_requests_total", "2", "4xx") == 1);
    double errors = 0;
    for (int c = 0; c < CN_ORIGIN_N_CAUSES; c++)
        errors += get1(m, "connector_origin_errors_total",
                       cn_metrics_origin_cause((enum cn_origin_cause)c));
    assert_true(errors == 1);
}

static void test_stream_bad_response_and_timeout_count_causes(void **state)
{
    (void)state;
    struct cn_metrics *m = fh.m;
    struct cn_stream *s = request(1, "GET", "a.test", "/bad", 1, NULL);
    assert_true(pump_until(done, 3000));
    assert_int_equal(fh.status, 502);
    close_stream(s);
    assert_true(get1(m, "connector_origin_errors_total", "bad_response") == 1);
    fh.timeout_ms = 200;
    s = request(3, "GET", "a.test", "/hang", 1, NULL);
    assert_true(pump_until(done, 3000));
    assert_int_equal(fh.status, 504);
    close_stream(s);
    assert_true(get1(m, "connector_origin_errors_total", "timeout") == 1);
    assert_true(get2(m, "connector_requests_total", "0", "5xx") == 2);
}

/* The edge resets a stream before any answer: no request is counted in
 * requests_total (there is no status), and the stream leaves the gauge. */
static void test_stream_reset_before_answer_not_counted(void **state)
{
    (void)state;
    struct cn_metrics *m = fh.m;
    struct cn_stream *s = request(1, "GET", "a.test", "/hang", 1, NULL);
    pump_until(answered, 100);
    assert_int_equal(fh.submits, 0);
    cn_stream_on_close(s, NGHTTP2_CANCEL);
    assert_true(get(m, "connector_active_streams", NULL) == 0);
    for (const char *c = "12345"; *c; c++) {
        char cls[4] = {*c, 'x', 'x', '\0'};
        assert_true(get2(m, "connector_requests_total", "0", cls) == 0);
    }
}

static void test_websocket_moves_gauge_and_bytes(void **state)
{
    (void)state;
    struct cn_metrics *m = fh.m;
    struct cn_stream *s = request(1, "CONNECT", "a.test", "/ws", 0, ":protocol", "websocket",
                                  "sec-websocket-version", "13", NULL);
    assert_true(pump_until(answered, 3000));
    assert_int_equal(fh.status, 200);
    assert_true(get(m, "connector_active_websockets", NULL) == 1);
    static const char hello[] = "hello, origin";
    assert_int_equal(cn_stream_on_data(s, (const uint8_t *)hello, sizeof(hello) - 1), 0);
    for (int i = 0; i < 5000 && fh.body < sizeof(hello) - 1; i++) {
        uv_run(&fh.loop, UV_RUN_NOWAIT);
        session_read();
        usleep(200);
    }
    assert_int_equal(fh.body, sizeof(hello) - 1);
    assert_true(get1(m, "connector_bytes_total", "to_origin") == sizeof(hello) - 1);
    assert_true(get1(m, "connector_bytes_total", "from_origin") == sizeof(hello) - 1);
    assert_true(get1(m, "connector_origin_response_seconds", "0") == 1);
    cn_stream_on_end(s);
    close_stream(s);
    assert_true(get(m, "connector_active_websockets", NULL) == 0);
    assert_true(get2(m, "connector_requests_total", "0", "2xx") == 1);
}

/* ---- links and the access log, through mem_world ---- */

/* Runs fn with stderr going to a file; returns what was written there
 * (the caller frees it). */
static char *capture_stderr(int (*fn)(struct mw *), struct mw *w, int *rc)
{
    char path[] = "/tmp/test_cn_metrics.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    px_log_flush(); /* batched lines of a live loop (px_log_batch) */
    fflush(stderr);
    int saved = dup(2);
    assert_true(saved >= 0);
    assert_true(dup2(fd, 2) >= 0);
    *rc = fn(w);
    px_log_flush(); /* batched lines of a live loop (px_log_batch) */
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    off_t len = lseek(fd, 0, SEEK_END);
    char *text = calloc(1, (size_t)len + 1);
    assert_non_null(text);
    assert_int_equal(pread(fd, text, (size_t)len, 0), len);
    close(fd);
    unlink(path);
    return text;
}

static void test_link_registered_and_access_line(void **state)
{
    (void)state;
    static struct mw w;
    assert_int_equal(mw_init(&w, "{\"ingress\":[{\"hostname\":\"app.fuzz.test\","
                                 "\"service\":\"hello_world\"},"
                                 "{\"service\":\"http_status:404\"}]}"),
                     0);
    struct cn_metrics *m = cn_metrics_new("test", 0);
    assert_non_null(m);
    w.sup.metrics = m;
    w.cfg.access_log = 1;
    assert_int_equal(mw_links_open(&w), 0);
    assert_true(get1(m, "connector_links_up", "memory") == 1);
    assert_int_equal(cn_supervisor_links_up(&w.sup), 1);
    int rc;
    char *log = capture_stderr(mw_canary, &w, &rc);
    assert_int_equal(rc, 0);
    assert_true(get2(m, "connector_requests_total", "0", "2xx") == 1);
    /* One access line, with every field (the text format). */
    const char *acc = strstr(log, " ACC ");
    if (!acc)
        fail_msg("no access line in:\n%s", log);
    assert_null(strstr(acc + 1, " ACC "));
    static const char *const fields[] = {"host=app.fuzz.test",
                                         "method=GET",
                                         "path=/canary",
                                         "status=200",
                                         "in=0",
                                         "out=",
                                         "dur_ms=",
                                         "id=",
                                         "client=" MW_CLIENT_IP,
                                         "rule=0"};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if (!strstr(acc, fields[i]))
            fail_msg("the access line has no %s: %s", fields[i], acc);
    assert_null(strstr(acc, "id=- "));
    free(log);
    assert_int_equal(mw_close_all(&w), 0);
    assert_true(get1(m, "connector_links_up", "memory") == 0);
    assert_true(get(m, "connector_active_streams", NULL) == 0);
    w.sup.metrics = NULL;
    mw_cleanup(&w);
    cn_metrics_free(m);
}

int main(void)
{
    if (!getenv("TEST_LOG"))
        px_log_set_level((enum px_log_level)(PX_LOG_ERROR + 1)); /* silent */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_families_render),
        cmocka_unit_test(test_link_events),
        cmocka_unit_test(test_review_12_8_link_counters_at_zero_per_edge),
        cmocka_unit_test(test_review_12_4_no_family_name_clash),
        cmocka_unit_test(test_request_events),
        cmocka_unit_test_setup_teardown(test_stream_moves_requests_bytes_histogram, setup_origin,
                                        teardown_origin),
        cmocka_unit_test_setup_teardown(test_stream_origin_refused_counts_cause, setup_origin,
                                        teardown_origin),
        cmocka_unit_test_setup_teardown(test_stream_bad_response_and_timeout_count_causes,
                                        setup_origin, teardown_origin),
        cmocka_unit_test_setup_teardown(test_stream_reset_before_answer_not_counted, setup_origin,
                                        teardown_origin),
        cmocka_unit_test_setup_teardown(test_websocket_moves_gauge_and_bytes, setup_origin,
                                        teardown_origin),
        cmocka_unit_test(test_link_registered_and_access_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
