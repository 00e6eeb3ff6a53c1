/* es_metrics: each event moves the series it names and no other, the
 * rendering is well-formed Prometheus text with every family, the gauges
 * come from the server at render, the status JSON's rates follow a window
 * of 60 s and its recent errors keep the last 50, newest first, and the
 * hostnames are capped. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "es_link.h"
#include "es_metrics.h"
#include "es_registry.h"
#include "es_server.h"
#include "px_buf.h"
#include "px_list.h"
#include "px_log.h"
#include "px_metrics.h"
#include "px_version.h"

#include "om_names.h"

#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define T0 1767225600000ULL /* 2026-01-01T00:00:00Z, in ms */

static double val(struct es_metrics *m, const char *name, const char *const *v)
{
    return es_metrics_value(m, name, v);
}

static double requests(struct es_metrics *m, const char *host, const char *cls)
{
    const char *v[] = {host, cls};
    return val(m, "edge_requests_total", v);
}

static double refusals(struct es_metrics *m, const char *reason)
{
    const char *v[] = {reason};
    return val(m, "edge_refusals_total", v);
}

/* ---- a small checker of the Prometheus text format (0.0.4) ---- */

static int name_char(int c, int first)
{
    return isalpha(c) || c == '_' || c == ':' || (!first && isdigit(c));
}

/* Checks one sample line; returns its metric name's length (> 0) or 0. */
static size_t check_sample(const char *line)
{
    const char *p = line;
    if (!name_char((unsigned char)*p, 1))
        return 0;
    while (name_char((unsigned char)*p, 0))
        p++;
    size_t name_len = (size_t)(p - line);
    if (*p == '{') {
        p++;
        while (*p != '}') {
            if (!isalpha((unsigned char)*p) && *p != '_')
                return 0;
            while (isalnum((unsigned char)*p) || *p == '_')
                p++;
            if (*p++ != '=' || *p++ != '"')
                return 0;
            while (*p != '"') {
                if (*p == '\0' || *p == '\n')
                    return 0;
                if (*p == '\\') {
                    p++;
                    if (*p != '\\' && *p != '"' && *p != 'n')
                        return 0;
                }
                p++;
            }
            p++;
            if (*p == ',')
                p++;
            else if (*p != '}')
                return 0;
        }
        p++;
    }
    if (*p++ != ' ')
        return 0;
    if (strcmp(p, "+Inf") == 0 || strcmp(p, "-Inf") == 0 || strcmp(p, "NaN") == 0)
        return name_len;
    char *end;
    strtod(p, &end);
    return end != p && *end == '\0' ? name_len : 0;
}

/* Checks the whole text: every line a comment or a sample of a family
 * declared by # TYPE before it. Returns the number of samples. */
static unsigned check_text(const char *text)
{
    char *copy = strdup(text);
    assert_non_null(copy);
    char family[128] = "";
    unsigned samples = 0;
    for (char *line = copy, *next; *line; line = next) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl); /* every line ends with a newline */
        *nl = '\0';
        next = nl + 1;
        if (strncmp(line, "# HELP ", 7) == 0)
            continue;
        if (strncmp(line, "# TYPE ", 7) == 0) {
            char type[32];
            assert_int_equal(sscanf(line + 7, "%127s %31s", family, type), 2);
            assert_true(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0 ||
                        strcmp(type, "histogram") == 0);
            continue;
        }
        assert_true(line[0] != '#');
        size_t n = check_sample(line);
        if (n == 0)
            fail_msg("not a sample line: %s", line);
        /* The sample belongs to the family declared last (a histogram's
         * _bucket, _sum and _count included). */
        size_t fl = strlen(family);
        assert_true(fl > 0 && n >= fl && strncmp(line, family, fl) == 0);
        samples++;
    }
    free(copy);
    return samples;
}

/* Parses text with Debian's python3-prometheus-client too, when it is
 * installed (the parser Prometheus users meet); fails the test if it
 * refuses the text or reads two families of one name (it names a counter
 * X_total's family X: review 12.4). */
static void python_parses(const char *text)
{
    char path[] = "/tmp/test_es_metrics.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "/usr/bin/python3 -c 'import sys\n"
             "try:\n from prometheus_client.parser import text_string_to_metric_families as p\n"
             "except ImportError:\n sys.exit(77)\n"
             "fs = list(p(open(sys.argv[1]).read()))\n"
             "n = sum(len(f.samples) for f in fs)\n"
             "names = [f.name for f in fs]\n"
             "sys.exit(0 if n > 0 and len(names) == len(set(names)) else 1)' %s 2>&1",
             path);
    int rc = system(cmd);
    unlink(path);
    if (rc != -1 && WIFEXITED(rc) && (WEXITSTATUS(rc) == 77 || WEXITSTATUS(rc) == 127))
        return; /* no python3 or no parser here */
    assert_true(rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0);
}

/* review 12.4: no two families claim one OpenMetrics name. */
static void no_name_clash(const char *text)
{
    char why[256] = "";
    int rc = om_names_clash(text, why, sizeof(why));
    if (rc != 0)
        fail_msg("OpenMetrics name clash (%d): %s", rc, why);
}

static char *render(struct es_metrics *m, struct es_server *srv)
{
    struct px_buf b;
    px_buf_init(&b);
    assert_int_equal(es_metrics_render(m, srv, &b), 0);
    char *s = strndup((const char *)px_buf_head(&b), px_buf_len(&b));
    px_buf_cleanup(&b);
    assert_non_null(s);
    return s;
}

static void test_fresh_render_has_every_family(void **state)
{
    (void)state;
    struct es_metrics *m = es_metrics_new();
    assert_non_null(m);
    struct es_server srv;
    memset(&srv, 0, sizeof(srv));
    char *text = render(m, &srv);
    assert_true(check_text(text) > 0);
    no_name_clash(text);
    static const char *const families[] = {
        "edge_build_info",
        "edge_start_time_seconds",
        "edge_browser_connections_open",
        "edge_browser_connections_total",
        "edge_requests_total",
        "edge_request_duration_seconds",
        "edge_bytes_total",
        "edge_tunnels",
        "edge_tunnels_connected",
        "edge_links",
        "edge_enrolments_total",
        "edge_refusals_total",
    };
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
        char want[128];
        snprintf(want, sizeof(want), "# TYPE %s ", families[i]);
        if (!strstr(text, want))
            fail_msg("no family %s", families[i]);
    }
    assert_non_null(strstr(text, "edge_build_info{version=\"" PX_VERSION "\"} 1\n"));
    assert_non_null(strstr(text, "edge_browser_connections_open{protocol=\"h2\"} 0\n"));
    assert_non_null(strstr(text, "edge_enrolments_total{result=\"refused\"} 0\n"));
    assert_non_null(strstr(text, "edge_tunnels 0\n"));
    assert_true(val(m, "edge_start_time_seconds", NULL) > 1.7e9);
    free(text);
    es_metrics_free(m);
    es_metrics_free(NULL);
}

static void test_events_move_their_series(void **state)
{
    (void)state;
    struct es_metrics *m = es_metrics_new();
    assert_non_null(m);
    const char *h1[] = {"http/1.1"}, *h2[] = {"h2"};
    es_metrics_browser_open(m, 1);
    es_metrics_browser_open(m, 1);
    es_metrics_browser_open(m, 0);
    es_metrics_browser_close(m, 1);
    assert_true(val(m, "edge_browser_connections_open", h2) == 1);
    assert_true(val(m, "edge_browser_connections_open", h1) == 1);
    assert_true(val(m, "edge_browser_connections_total", h2) == 2);
    assert_true(val(m, "edge_browser_connections_total", h1) == 1);

    struct es_metrics_request ok = {.route = "*.example.test",
                                    .host = "a.example.test",
                                    .status = 200,
                                    .bytes_in = 10,
                                    .bytes_out = 1000,
                                    .duration_s = 0.02,
                                    .request_id = "00112233445566778899aabbccddeeff"};
    es_metrics_request(m, &ok, T0);
    es_metrics_request(m, &ok, T0);
    assert_true(requests(m, "*.example.test", "2xx") == 2);
    assert_true(requests(m, "*.example.test", "5xx") == 0);
    const char *from[] = {"from_client"}, *to[] = {"to_client"};
    assert_true(val(m, "edge_bytes_total", from) == 20);
    assert_true(val(m, "edge_bytes_total", to) == 2000);
    assert_true(val(m, "edge_request_duration_seconds", NULL) == 2); /* observations */

    /* Unrouted, and no response at all. */
    struct es_metrics_request unrouted = {.host = "x.test", .status = 404};
    es_metrics_request(m, &unrouted, T0);
    struct es_metrics_request gone = {.route = "*.example.test", .host = "a.example.test"};
    es_metrics_request(m, &gone, T0);
    assert_true(requests(m, ES_METRICS_UNROUTED, "4xx") == 1);
    assert_true(requests(m, "*.example.test", "none") == 1);

    /* A refusal counts the request and its reason. */
    struct es_metrics_request denied = {.route = "*.example.test",
                                        .host = "a.example.test",
                                        .status = 403,
                                        .refusal = es_refusal_of_verdict(ES_ACCESS_REVOKED)};
    es_metrics_request(m, &denied, T0);
    assert_true(requests(m, "*.example.test", "4xx") == 1);
    assert_true(refusals(m, "cert_revoked") == 1);
    assert_true(refusals(m, "misdirected") == 0);

    /* Outside requests. */
    es_metrics_refusal(m, ES_REFUSAL_CONNECTION_CAP, T0);
    es_metrics_refusal(m, ES_REFUSAL_NONE, T0); /* nothing */
    assert_true(refusals(m, "connection_cap") == 1);
    es_metrics_enrolment(m, ES_ENROL_OK, T0);
    es_metrics_enrolment(m, ES_ENROL_BAD_TOKEN, T0);
    es_metrics_enrolment(m, ES_ENROL_RATE_LIMITED, T0);
    const char *eok[] = {"ok"}, *eref[] = {"refused"};
    assert_true(val(m, "edge_enrolments_total", eok) == 1);
    assert_true(val(m, "edge_enrolments_total", eref) == 2);
    assert_true(refusals(m, "enrolment_rate_limited") == 1);

    /* A NULL object takes every event and does nothing. */
    es_metrics_browser_open(NULL, 1);
    es_metrics_browser_close(NULL, 0);
    es_metrics_request(NULL, &ok, T0);
    es_metrics_refusal(NULL, ES_REFUSAL_BAD_REQUEST, T0);
    es_metrics_enrolment(NULL, ES_ENROL_OK, T0);

    struct es_server srv;
    memset(&srv, 0, sizeof(srv));
    char *text = render(m, &srv);
    check_text(text);
    python_parses(text);
    no_name_clash(text);
    assert_non_null(
        strstr(text, "edge_requests_total{hostname=\"*.example.test\",status_class=\"2xx\"} 2\n"));
    assert_non_null(strstr(text, "edge_refusals_total{reason=\"connection_cap\"} 1\n"));
    assert_non_null(strstr(text, "edge_request_duration_seconds_bucket{le=\"0.025\"} 5\n"));
    assert_non_null(strstr(text, "edge_request_duration_seconds_bucket{le=\"0.01\"} 3\n"));
    free(text);
    es_metrics_free(m);
}

/* review 12.4: the gauge of open browser connections is
 * edge_browser_connections_open, so it and the counter
 * edge_browser_connections_total are two OpenMetrics families, not one name
 * twice; no family of the rendering clashes with another (the checker
 * itself catches the old pair). */
static void test_review_12_4_no_family_name_clash(void **state)
{
    (void)state;
    struct es_metrics *m = es_metrics_new();
    assert_non_null(m);
    es_metrics_browser_open(m, 1);
    es_metrics_browser_open(m, 0);
    struct es_metrics_request q = {.route = "a.test", .host = "a.test", .status = 200};
    es_metrics_request(m, &q, T0);
    es_metrics_refusal(m, ES_REFUSAL_CONNECTION_CAP, T0);
    struct es_server srv;
    memset(&srv, 0, sizeof(srv));
    char *text = render(m, &srv);
    no_name_clash(text);
    python_parses(text);
    assert_non_null(strstr(text, "# TYPE edge_browser_connections_open gauge\n"));
    assert_non_null(strstr(text, "edge_browser_connections_open{protocol=\"h2\"} 1\n"));
    assert_null(strstr(text, "# TYPE edge_browser_connections gauge"));
    assert_null(strstr(text, "\nedge_browser_connections{"));
    free(text);
    es_metrics_free(m);

    char why[256] = "";
    assert_int_equal(om_names_clash("# TYPE edge_browser_connections gauge\n"
                                    "edge_browser_connections 1\n"
                                    "# TYPE edge_browser_connections_total counter\n"
                                    "edge_browser_connections_total 1\n",
                                    why, sizeof(why)),
                     1);
    assert_non_null(strstr(why, "edge_browser_connections"));
    assert_int_equal(
        om_names_clash("# TYPE x histogram\nx_count 1\n# TYPE x_count gauge\n", why, sizeof(why)),
        1);
    assert_int_equal(
        om_names_clash("# TYPE x gauge\nx 1\nx_sum 2\n# TYPE x_sum gauge\n", why, sizeof(why)),
        1); /* an undeclared sample is a family of its own */
    assert_int_equal(om_names_clash("# TYPE x_total counter\nx_total 1\n# TYPE y gauge\ny 1\n", why,
                                    sizeof(why)),
                     0);
}

/* review 12.8: every refusal reason's series exists at 0 from the start,
 * so the first refusal of a kind is a rise that rate() and increase() see
 * (a series born at 1 shows no increase). */
static void test_review_12_8_refusals_at_zero_from_start(void **state)
{
    (void)state;
    struct es_metrics *m = es_metrics_new();
    assert_non_null(m);
    struct es_server srv;
    memset(&srv, 0, sizeof(srv));
    char *text = render(m, &srv);
    for (int i = ES_REFUSAL_NONE + 1; i < ES_REFUSAL_COUNT; i++) {
        char want[128];
        snprintf(want, sizeof(want), "edge_refusals_total{reason=\"%s\"} 0\n",
                 es_refusal_name((enum es_refusal)i));
        if (!strstr(text, want))
            fail_msg("no %s", want);
    }
    assert_null(strstr(text, "reason=\"none\""));
    free(text);
    es_metrics_refusal(m, ES_REFUSAL_NO_TUNNEL, T0);
    assert_true(refusals(m, "no_tunnel") == 1);
    assert_true(refusals(m, "misdirected") == 0);
    text = render(m, &srv);
    assert_non_null(strstr(text, "edge_refusals_total{reason=\"no_tunnel\"} 1\n"));
    assert_non_null(strstr(text, "edge_refusals_total{reason=\"misdirected\"} 0\n"));
    free(text);
    es_metrics_free(m);
}

static void test_refusal_names(void **state)
{
    (void)state;
    /* Every reason has its own label value, a valid one. */
    for (int i = 0; i < ES_REFUSAL_COUNT; i++) {
        const char *a = es_refusal_name((enum es_refusal)i);
        assert_non_null(a);
        assert_true(strlen(a) > 0);
        for (const char *p = a; *p; p++)
            assert_true(islower((unsigned char)*p) || *p == '_');
        for (int k = 0; k < i; k++)
            assert_string_not_equal(a, es_refusal_name((enum es_refusal)k));
    }
    assert_string_equal(es_refusal_name(ES_REFUSAL_COUNT), "none");
    assert_int_equal(es_refusal_of_verdict(ES_ACCESS_OPEN), ES_REFUSAL_NONE);
    assert_int_equal(es_refusal_of_verdict(ES_ACCESS_ALLOWED), ES_REFUSAL_NONE);
    static const struct {
        enum es_access_verdict v;
        const char *name;
    } map[] = {
        {ES_ACCESS_NO_CERT, "no_client_cert"},
        {ES_ACCESS_EXPIRED, "cert_expired"},
        {ES_ACCESS_NOT_YET_VALID, "cert_not_yet_valid"},
        {ES_ACCESS_REVOKED, "cert_revoked"},
        {ES_ACCESS_UNTRUSTED, "untrusted_ca"},
        {ES_ACCESS_SUBJECT, "subject_not_allowed"},
        {ES_ACCESS_CRL_STALE, "crl_stale"},
        {ES_ACCESS_CRL_MISSING, "crl_missing"},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        assert_string_equal(es_refusal_name(es_refusal_of_verdict(map[i].v)), map[i].name);
}

/* The hostnames entry called name in st, or NULL. */
static json_t *host_entry(json_t *st, const char *name)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(st, "hostnames"), i,
                       e) if (strcmp(json_string_value(json_object_get(e, "hostname")), name) ==
                              0) return e;
    return NULL;
}

static long long num(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    assert_true(json_is_integer(v));
    return (long long)json_integer_value(v);
}

static void test_status_rates(void **state)
{
    (void)state;
    struct es_metrics *m = es_metrics_new();
    assert_non_null(m);
    json_t *st = es_metrics_status(m, T0);
    assert_non_null(st);
    assert_int_equal(json_array_size(json_object_get(st, "hostnames")), 0);
    assert_int_equal(json_array_size(json_object_get(st, "recent_errors")), 0);
    json_decref(st);

    struct es_metrics_request ok = {.route = "a.test", .host = "a.test", .status = 200};
    struct es_metrics_request bad = {.route = "a.test", .host = "a.test", .status = 502};
    /* 3 requests at 0 s (1 error), 2 at 30 s, 1 at 59.9 s. */
    es_metrics_request(m, &ok, T0);
    es_metrics_request(m, &ok, T0 + 500);
    es_metrics_request(m, &bad, T0 + 999);
    es_metrics_request(m, &ok, T0 + 30000);
    es_metrics_request(m, &ok, T0 + 30001);
    es_metrics_request(m, &ok, T0 + 59900);
    st = es_metrics_status(m, T0 + 59999);
    json_t *a = host_entry(st, "a.test");
    assert_non_null(a);
    assert_int_equal(num(a, "requests_total"), 6);
    assert_int_equal(num(a, "errors_total"), 1);
    assert_int_equal(num(a, "requests_per_min"), 6);
    assert_int_equal(num(a, "errors_per_min"), 1);
    json_decref(st);
    /* A minute on, the first second has left the window. */
    st = es_metrics_status(m, T0 + 60000);
    a = host_entry(st, "a.test");
    assert_int_equal(num(a, "requests_per_min"), 3);
    assert_int_equal(num(a, "errors_per_min"), 0);
    assert_int_equal(num(a, "requests_total"), 6);
    json_decref(st);
    /* Slots are reused: a request 60 s after the first lands in its slot. */
    es_metrics_request(m, &bad, T0 + 60100);
    st = es_metrics_status(m, T0 + 60200);
    a = host_entry(st, "a.test");
    assert_int_equal(num(a, "requests_per_min"), 4);
    assert_int_equal(num(a, "errors_per_min"), 1);
    json_decref(st);
    /* Long after: nothing in the window, totals stay. */
    st = es_metrics_status(m, T0 + 3600000);
    a = host_entry(st, "a.test");
    assert_int_equal(num(a, "requests_per_min"), 0);
    assert_int_equal(num(a, "errors_per_min"), 0);
    assert_int_equal(num(a, "requests_total"), 7);
    assert_int_equal(num(a, "errors_total"), 2);
    /* Sorted by name, unrouted among them. */
    struct es_metrics_request u = {.host = "zz.test", .status = 404};
    es_metrics_request(m, &u, T0 + 3600000);
    struct es_metrics_request b = {.route = "*.b.test", .host = "x.b.test", .status = 200};
    es_metrics_request(m, &b, T0 + 3600000);
    json_decref(st);
    st = es_metrics_status(m, T0 + 3600000);
    json_t *hosts = json_object_get(st, "hostnames");
    assert_int_equal(json_array_size(hosts), 3);
    const char *want[] = {"*.b.test", ES_METRICS_UNROUTED, "a.test"};
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(
            json_string_value(json_object_get(json_array_get(hosts, i), "hostname")), want[i]);
    json_decref(st);
    es_metrics_free(m);
}

static void test_status_recent_errors(void **state)
{
    (void)state;
    struct es_metrics *m = es_metrics_new();
    assert_non_null(m);
    /* Not errors: 2xx-4xx answers that are not refusals. */
    struct es_metrics_request ok = {.route = "a.test", .host = "a.test", .status = 200};
    struct es_metrics_request nf = {.host = "a.test", .status = 404};
    es_metrics_request(m, &ok, T0);
    es_metrics_request(m, &nf, T0);
    /* Errors, each with its reason. */
    struct es_metrics_request origin = {
        .route = "a.test", .host = "a.test", .status = 500, .request_id = "id-origin"};
    struct es_metrics_request reset = {.route = "a.test",
                                       .host = "a.test",
                                       .status = 502,
                                       .reason = "tunnel_reset",
                                       .request_id = "id-reset"};
    struct es_metrics_request misdirected = {.route = "a.test",
                                             .host = "a.test",
                                             .status = 421,
                                             .refusal = ES_REFUSAL_MISDIRECTED,
                                             .reason = "misdirected_request",
                                             .request_id = "id-421"};
    struct es_metrics_request cut = {
        .route = "a.test", .host = "a.test", .status = 200, .cut = 1, .request_id = "id-cut"};
    es_metrics_request(m, &origin, T0 + 1);
    es_metrics_request(m, &reset, T0 + 2);
    es_metrics_request(m, &misdirected, T0 + 3);
    es_metrics_request(m, &cut, T0 + 4);
    es_metrics_refusal(m, ES_REFUSAL_CONNECTION_CAP, T0 + 5);
    es_metrics_enrolment(m, ES_ENROL_BAD_TOKEN, T0 + 6);
    es_metrics_enrolment(m, ES_ENROL_OK, T0 + 7);
    json_t *st = es_metrics_status(m, T0 + 10);
    assert_non_null(st);
    json_t *rec = json_object_get(st, "recent_errors");
    assert_int_equal(json_array_size(rec), 6);
    static const struct {
        long long t;
        const char *host;
        int status;
        const char *reason, *id;
    } want[] = {
        {6, "-", 0, "enrolment_bad_token", NULL},       {5, "-", 0, "connection_cap", NULL},
        {4, "a.test", 200, "response_cut", "id-cut"},   {3, "a.test", 421, "misdirected", "id-421"},
        {2, "a.test", 502, "tunnel_reset", "id-reset"}, {1, "a.test", 500, "origin", "id-origin"},
    };
    for (size_t i = 0; i < 6; i++) {
        json_t *e = json_array_get(rec, i);
        assert_int_equal(num(e, "time"), (long long)T0 + want[i].t);
        assert_string_equal(json_string_value(json_object_get(e, "hostname")), want[i].host);
        assert_int_equal(num(e, "status"), want[i].status);
        assert_string_equal(json_string_value(json_object_get(e, "reason")), want[i].reason);
        if (want[i].id)
            assert_string_equal(json_string_value(json_object_get(e, "request_id")), want[i].id);
        else
            assert_true(json_is_null(json_object_get(e, "request_id")));
    }
    json_t *a = host_entry(st, "a.test");
    assert_int_equal(num(a, "errors_total"), 4);
    assert_int_equal(num(a, "requests_total"), 5);
    json_decref(st);

    /* The last 50 only, newest first. */
    for (int i = 0; i < 120; i++) {
        char id[16];
        snprintf(id, sizeof(id), "r%d", i);
        struct es_metrics_request e = {
            .route = "a.test", .host = "a.test", .status = 503, .request_id = id};
        es_metrics_request(m, &e, T0 + 100 + (uint64_t)i);
    }
    st = es_metrics_status(m, T0 + 1000);
    rec = json_object_get(st, "recent_errors");
    assert_int_equal(json_array_size(rec), ES_METRICS_RECENT_ERRORS);
    assert_string_equal(json_string_value(json_object_get(json_array_get(rec, 0), "request_id")),
                        "r119");
    assert_string_equal(json_string_value(json_object_get(json_array_get(rec, 49), "request_id")),
                        "r70");
    /* The whole object serialises (valid UTF-8 everywhere). */
    char *dump = json_dumps(st, JSON_COMPACT);
    assert_non_null(dump);
    free(dump);
    json_decref(st);

    /* Hostile hostnames: long, and not UTF-8, come out cut and valid. */
    char host[400];
    memset(host, 'h', sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    host[200] = (char)0xff;
    struct es_metrics_request hostile = {.host = host, .status = 500};
    es_metrics_request(m, &hostile, T0 + 2000);
    st = es_metrics_status(m, T0 + 2000);
    json_t *e = json_array_get(json_object_get(st, "recent_errors"), 0);
    assert_int_equal(strlen(json_string_value(json_object_get(e, "hostname"))), 200);
    json_decref(st);

    st = es_metrics_status(NULL, T0);
    assert_non_null(st);
    assert_int_equal(json_array_size(json_object_get(st, "hostnames")), 0);
    json_decref(st);
    es_metrics_free(m);
}

static void test_hostnames_capped(void **state)
{
    (void)state;
    struct es_metrics *m = es_metrics_new();
    assert_non_null(m);
    char name[64];
    for (int i = 0; i < ES_METRICS_MAX_HOSTNAMES + 200; i++) {
        snprintf(name, sizeof(name), "h%05d.test", i);
        struct es_metrics_request q = {.route = name, .host = name, .status = 200};
        es_metrics_request(m, &q, T0);
    }
    /* The first ones keep their own series; the rest share _other. */
    assert_true(requests(m, "h00000.test", "2xx") == 1);
    snprintf(name, sizeof(name), "h%05d.test", ES_METRICS_MAX_HOSTNAMES - 1);
    assert_true(requests(m, name, "2xx") == 1);
    snprintf(name, sizeof(name), "h%05d.test", ES_METRICS_MAX_HOSTNAMES + 10);
    assert_true(requests(m, name, "2xx") == 0);
    assert_true(requests(m, PX_METRICS_OVERFLOW, "2xx") == 200);
    /* A hostname already known still counts as itself. */
    struct es_metrics_request again = {.route = "h00000.test", .status = 500};
    es_metrics_request(m, &again, T0);
    assert_true(requests(m, "h00000.test", "5xx") == 1);
    json_t *st = es_metrics_status(m, T0);
    assert_int_equal(json_array_size(json_object_get(st, "hostnames")),
                     ES_METRICS_MAX_HOSTNAMES + 1);
    json_t *other = host_entry(st, PX_METRICS_OVERFLOW);
    assert_non_null(other);
    assert_int_equal(num(other, "requests_total"), 200);
    json_decref(st);
    struct es_server srv;
    memset(&srv, 0, sizeof(srv));
    char *text = render(m, &srv);
    check_text(text);
    free(text);
    es_metrics_free(m);
}

static void test_gauges_from_server(void **state)
{
    (void)state;
    struct es_metrics *m = es_metrics_new();
    assert_non_null(m);
    struct es_server srv;
    memset(&srv, 0, sizeof(srv));
    px_list_init(&srv.links);
    /* Three tunnels: one with a registered link, one with a link still
     * unregistered, one with none; and one deleted. */
    struct es_tunnel t[4];
    memset(t, 0, sizeof(t));
    for (int i = 0; i < 3; i++)
        t[i].next = &t[i + 1];
    t[3].deleted = 1;
    srv.reg.tunnels = &t[0];
    struct es_link *l = calloc(3, sizeof(*l));
    assert_non_null(l);
    l[0].registered = 1;
    l[1].registered = 1;
    l[2].registered = 0;
    es_registry_attach(&t[0], &l[0]);
    es_registry_attach(&t[0], &l[1]);
    es_registry_attach(&t[1], &l[2]);
    for (int i = 0; i < 3; i++)
        px_list_insert_head(&srv.links, &l[i].all_node);
    char *text = render(m, &srv);
    check_text(text);
    assert_non_null(strstr(text, "\nedge_tunnels 3\n"));
    assert_non_null(strstr(text, "\nedge_tunnels_connected 1\n"));
    assert_non_null(strstr(text, "\nedge_links 2\n"));
    free(text);
    /* A link closing no longer counts. */
    l[1].conn.closing = 1;
    text = render(m, &srv);
    assert_non_null(strstr(text, "\nedge_links 1\n"));
    free(text);
    l[0].dying = 1;
    text = render(m, &srv);
    assert_non_null(strstr(text, "\nedge_tunnels_connected 0\n"));
    assert_non_null(strstr(text, "\nedge_links 0\n"));
    free(text);
    free(l);
    /* Without an object, nothing is rendered, and that is no error. */
    struct px_buf b;
    px_buf_init(&b);
    assert_int_equal(es_metrics_render(NULL, &srv, &b), 0);
    assert_int_equal(px_buf_len(&b), 0);
    px_buf_cleanup(&b);
    es_metrics_free(m);
}

#define WORKERS 3
#define ROUNDS 2000

struct worker {
    struct es_metrics *m;
    int h2;
};

/* A worker loop's browser connections: each opens, is refused at accept
 * (the counting it does besides), and closes. */
static void *browse(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < ROUNDS; i++) {
        es_metrics_browser_open(w->m, w->h2);
        es_metrics_refusal(w->m, ES_REFUSAL_CONNECTION_CAP, T0 + (uint64_t)i);
        es_metrics_browser_close(w->m, w->h2);
    }
    return NULL;
}

/* Worker loops count browser connections and refusals from their threads
 * while the home loop counts requests, renders and reads the status: no
 * count is lost (every series ends exact), every rendering is whole, and
 * nothing is torn (ASan; a TSan build of this test shows the lock covers
 * every access). */
static void test_counts_from_several_threads(void **state)
{
    (void)state;
    struct es_metrics *m = es_metrics_new();
    assert_non_null(m);
    struct es_server srv;
    memset(&srv, 0, sizeof(srv));
    struct worker w[WORKERS];
    pthread_t t[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        w[i] = (struct worker){.m = m, .h2 = i == 0};
        assert_int_equal(pthread_create(&t[i], NULL, browse, &w[i]), 0);
    }
    const char *routes[] = {"a.test", "b.test", "c.test"};
    for (int i = 0; i < ROUNDS; i++) {
        struct es_metrics_request q = {.route = routes[i % 3],
                                       .host = routes[i % 3],
                                       .status = i % 2 ? 200 : 502,
                                       .bytes_in = 1,
                                       .bytes_out = 2,
                                       .duration_s = 0.01};
        es_metrics_request(m, &q, T0 + (uint64_t)i);
        if (i % 200 == 0) {
            char *text = render(m, &srv);
            assert_true(check_text(text) > 0);
            free(text);
            json_t *st = es_metrics_status(m, T0 + (uint64_t)i);
            assert_non_null(st);
            json_decref(st);
            assert_true(val(m, "edge_refusals_total", (const char *const[]){"connection_cap"}) <=
                        WORKERS * ROUNDS);
        }
    }
    for (int i = 0; i < WORKERS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    const char *h1[] = {"http/1.1"}, *h2[] = {"h2"};
    assert_true(val(m, "edge_browser_connections_open", h1) == 0);
    assert_true(val(m, "edge_browser_connections_open", h2) == 0);
    assert_true(val(m, "edge_browser_connections_total", h2) == ROUNDS);
    assert_true(val(m, "edge_browser_connections_total", h1) == (WORKERS - 1) * ROUNDS);
    assert_true(refusals(m, "connection_cap") == WORKERS * ROUNDS);
    double all = 0;
    for (int r = 0; r < 3; r++)
        all += requests(m, routes[r], "2xx") + requests(m, routes[r], "5xx");
    assert_true(all == ROUNDS);
    const char *to[] = {"to_client"};
    assert_true(val(m, "edge_bytes_total", to) == 2 * ROUNDS);
    json_t *st = es_metrics_status(m, T0 + ROUNDS);
    assert_non_null(st);
    assert_int_equal(json_array_size(json_object_get(st, "hostnames")), 3);
    assert_int_equal(json_array_size(json_object_get(st, "recent_errors")),
                     ES_METRICS_RECENT_ERRORS);
    json_decref(st);
    es_metrics_free(m);
}

/* Requests after a series' first are kept back from the families until
 * something reads them (es_metrics_request's fast path): a rendering taken
 * with nothing read before shows every request and byte, and the series
 * come in the order their first request made them, as when each request
 * went in at once. */
static void test_kept_back_counts_show_in_render(void **state)
{
    (void)state;
    struct es_metrics *m = es_metrics_new();
    assert_non_null(m);
    struct es_metrics_request a = {.route = "a.test",
                                   .status = 200,
                                   .bytes_in = 3,
                                   .bytes_out = 100},
                              b = {.route = "b.test", .status = 204, .bytes_out = 1},
                              a5 = {.route = "a.test", .status = 502, .bytes_in = 1};
    struct es_server srv;
    memset(&srv, 0, sizeof(srv));
    for (int round = 1; round <= 2; round++) {
        es_metrics_request(m, &a, T0);
        es_metrics_request(m, &b, T0);
        es_metrics_request(m, &a, T0);
        es_metrics_request(m, &a5, T0);
        es_metrics_request(m, &a, T0);
        char *text = render(m, &srv);
        char want[128];
        snprintf(want, sizeof(want),
                 "edge_requests_total{hostname=\"a.test\",status_class=\"2xx\"} %d\n", 3 * round);
        const char *pa = strstr(text, want);
        assert_non_null(pa);
        snprintf(want, sizeof(want),
                 "edge_requests_total{hostname=\"b.test\",status_class=\"2xx\"} %d\n", round);
        const char *pb = strstr(text, want);
        assert_non_null(pb);
        snprintf(want, sizeof(want),
                 "edge_requests_total{hostname=\"a.test\",status_class=\"5xx\"} %d\n", round);
        const char *pa5 = strstr(text, want);
        assert_non_null(pa5);
        assert_true(pa < pb && pb < pa5); /* first-request order */
        snprintf(want, sizeof(want), "edge_bytes_total{direction=\"from_client\"} %d\n",
                 10 * round);
        if (!strstr(text, want))
            fprintf(stderr, "%s", text);
        assert_non_null(strstr(text, want));
        snprintf(want, sizeof(want), "edge_bytes_total{direction=\"to_client\"} %d\n", 301 * round);
        assert_non_null(strstr(text, want));
        free(text);
    }
    /* es_metrics_value reads them too, with nothing rendered since. */
    es_metrics_request(m, &a, T0);
    assert_true(requests(m, "a.test", "2xx") == 7);
    const char *to[] = {"to_client"};
    assert_true(val(m, "edge_bytes_total", to) == 702);
    es_metrics_free(m);
}

int main(void)
{
    px_log_set_level(PX_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fresh_render_has_every_family),
        cmocka_unit_test(test_events_move_their_series),
        cmocka_unit_test(test_review_12_4_no_family_name_clash),
        cmocka_unit_test(test_review_12_8_refusals_at_zero_from_start),
        cmocka_unit_test(test_refusal_names),
        cmocka_unit_test(test_status_rates),
        cmocka_unit_test(test_status_recent_errors),
        cmocka_unit_test(test_hostnames_capped),
        cmocka_unit_test(test_gauges_from_server),
        cmocka_unit_test(test_counts_from_several_threads),
        cmocka_unit_test(test_kept_back_counts_show_in_render),
    };
    return cmocka_run_group_tests_name("es_metrics", tests, NULL, NULL);
}
