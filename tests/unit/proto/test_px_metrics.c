/* px_metrics: declaring families, updating series, the series cap and the
 * exact Prometheus text rendering (escaping, numbers, histograms). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "px_buf.h"
#include "px_err.h"
#include "px_metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const no_labels[] = {NULL};

/* The whole rendering of m as a malloc'd string. */
static char *render(const struct px_metrics *m)
{
    struct px_buf b;
    px_buf_init(&b);
    assert_int_equal(px_metrics_render(m, &b), 0);
    const char *s = px_buf_cstr(&b);
    assert_non_null(s);
    char *r = strdup(s);
    px_buf_cleanup(&b);
    assert_non_null(r);
    return r;
}

static void assert_renders(const struct px_metrics *m, const char *want)
{
    char *got = render(m);
    if (strcmp(got, want) != 0)
        fprintf(stderr, "got:\n%s\nwant:\n%s\n", got, want);
    assert_string_equal(got, want);
    free(got);
}

static void test_new_free(void **state)
{
    (void)state;
    px_metrics_free(NULL);
    struct px_metrics *m = px_metrics_new();
    assert_non_null(m);
    assert_renders(m, "");
    px_metrics_free(m);
    struct px_buf b;
    px_buf_init(&b);
    assert_int_equal(px_metrics_render(NULL, &b), 0);
    assert_int_equal(px_buf_len(&b), 0);
    px_buf_cleanup(&b);
}

static void test_invalid_families(void **state)
{
    (void)state;
    struct px_metrics *m = px_metrics_new();
    static const char *const bad_names[] = {"", "1abc", "a-b", "a b", "a.b", "é", "a\n"};
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++)
        assert_null(px_metrics_family(m, bad_names[i], "h", PX_METRIC_COUNTER, NULL, NULL, 0, 0));
    assert_null(px_metrics_family(m, NULL, "h", PX_METRIC_COUNTER, NULL, NULL, 0, 0));
    assert_null(px_metrics_family(NULL, "ok", "h", PX_METRIC_COUNTER, NULL, NULL, 0, 0));
    assert_null(px_metrics_family(m, "ok", "h", (enum px_metric_type)7, NULL, NULL, 0, 0));

    static const char *const l_dunder[] = {"__x", NULL};
    static const char *const l_le[] = {"le", NULL};
    static const char *const l_colon[] = {"a:b", NULL};
    static const char *const l_digit[] = {"1x", NULL};
    static const char *const l_empty[] = {"", NULL};
    static const char *const l_dup[] = {"a", "b", "a", NULL};
    static const char *const l_many[] = {"a", "b", "c", "d", "e", NULL};
    const char *const *bad_labels[] = {l_dunder, l_le, l_colon, l_digit, l_empty, l_dup, l_many};
    for (size_t i = 0; i < sizeof(bad_labels) / sizeof(bad_labels[0]); i++)
        assert_null(px_metrics_family(m, "ok", "h", PX_METRIC_GAUGE, bad_labels[i], NULL, 0, 0));

    double b_ok[] = {1, 2};
    double b_desc[] = {2, 1};
    double b_eq[] = {1, 1};
    double b_nan[] = {1, NAN};
    double b_inf[] = {1, INFINITY};
    double b_many[PX_METRICS_MAX_BUCKETS + 1];
    for (size_t i = 0; i <= PX_METRICS_MAX_BUCKETS; i++)
        b_many[i] = (double)i;
    assert_null(px_metrics_family(m, "h1", "h", PX_METRIC_HISTOGRAM, NULL, b_desc, 2, 0));
    assert_null(px_metrics_family(m, "h1", "h", PX_METRIC_HISTOGRAM, NULL, b_eq, 2, 0));
    assert_null(px_metrics_family(m, "h1", "h", PX_METRIC_HISTOGRAM, NULL, b_nan, 2, 0));
    assert_null(px_metrics_family(m, "h1", "h", PX_METRIC_HISTOGRAM, NULL, b_inf, 2, 0));
    assert_null(px_metrics_family(m, "h1", "h", PX_METRIC_HISTOGRAM, NULL, b_many,
                                  PX_METRICS_MAX_BUCKETS + 1, 0));
    assert_null(px_metrics_family(m, "h1", "h", PX_METRIC_HISTOGRAM, NULL, NULL, 2, 0));
    /* Buckets belong to histograms only. */
    assert_null(px_metrics_family(m, "c1", "h", PX_METRIC_COUNTER, NULL, b_ok, 2, 0));
    assert_null(px_metrics_family(m, "c1", "h", PX_METRIC_GAUGE, NULL, NULL, 1, 0));
    /* Nothing was declared by the refusals. */
    assert_renders(m, "");

    /* The limits themselves are fine; names are unique per registry. */
    static const char *const l_four[] = {"a", "b", "c", "d", NULL};
    assert_non_null(px_metrics_family(m, "ns:ok_1", NULL, PX_METRIC_GAUGE, l_four, NULL, 0, 0));
    assert_null(px_metrics_family(m, "ns:ok_1", "h", PX_METRIC_COUNTER, NULL, NULL, 0, 0));
    assert_non_null(px_metrics_family(m, "h1", "h", PX_METRIC_HISTOGRAM, NULL, b_many,
                                      PX_METRICS_MAX_BUCKETS, 0));
    assert_non_null(px_metrics_family(m, "h2", "h", PX_METRIC_HISTOGRAM, no_labels, NULL, 0, 0));
    assert_non_null(px_metrics_family(m, "_x", "h", PX_METRIC_COUNTER, NULL, NULL, 0, 0));
    px_metrics_free(m);
}

static void test_counter_gauge(void **state)
{
    (void)state;
    struct px_metrics *m = px_metrics_new();
    static const char *const labels[] = {"edge", NULL};
    struct px_metric *c = px_metrics_family(m, "reconnects_total", "Reconnects.", PX_METRIC_COUNTER,
                                            labels, NULL, 0, 0);
    struct px_metric *g =
        px_metrics_family(m, "links_up", "Links.", PX_METRIC_GAUGE, labels, NULL, 0, 0);
    assert_non_null(c);
    assert_non_null(g);
    const char *a[] = {"a:443"}, *b[] = {"b:443"};
    px_metric_add(c, a, 1);
    px_metric_add(c, a, 2.5);
    px_metric_add(c, a, -1);  /* counters never go down */
    px_metric_add(c, a, NAN); /* nor become NaN */
    px_metric_set(c, a, 100); /* set is for gauges */
    px_metric_observe(c, a, 1);
    assert_true(px_metric_get(c, a) == 3.5);
    assert_true(px_metric_get(c, b) == 0);
    px_metric_set(g, a, 3);
    px_metric_add(g, a, -1);
    px_metric_add(g, b, 0); /* created at 0 and rendered from then on */
    px_metric_observe(g, a, 7);
    assert_true(px_metric_get(g, a) == 2);
    assert_true(px_metric_get(g, b) == 0);
    /* A NULL family (its declaration failed) is ignored everywhere. */
    px_metric_add(NULL, a, 1);
    px_metric_set(NULL, a, 1);
    px_metric_observe(NULL, a, 1);
    px_metric_remove(NULL, a);
    assert_true(px_metric_get(NULL, a) == 0);
    assert_renders(m, "# HELP reconnects_total Reconnects.\n"
                      "# TYPE reconnects_total counter\n"
                      "reconnects_total{edge=\"a:443\"} 3.5\n"
                      "# HELP links_up Links.\n"
                      "# TYPE links_up gauge\n"
                      "links_up{edge=\"a:443\"} 2\n"
                      "links_up{edge=\"b:443\"} 0\n");
    px_metrics_free(m);
}

static void test_no_labels_and_null_values(void **state)
{
    (void)state;
    struct px_metrics *m = px_metrics_new();
    struct px_metric *g = px_metrics_family(m, "streams", "", PX_METRIC_GAUGE, NULL, NULL, 0, 0);
    static const char *const labels[] = {"a", "b", NULL};
    struct px_metric *c =
        px_metrics_family(m, "x_total", "x", PX_METRIC_COUNTER, labels, NULL, 0, 0);
    px_metric_set(g, NULL, 5);
    px_metric_add(g, no_labels, 1);
    /* NULL values and NULL strings count as "". */
    const char *v[] = {NULL, "y"};
    px_metric_add(c, v, 1);
    px_metric_add(c, NULL, 1);
    const char *both_empty[] = {"", ""};
    assert_true(px_metric_get(c, both_empty) == 1);
    assert_renders(m, "# HELP streams \n"
                      "# TYPE streams gauge\n"
                      "streams 6\n"
                      "# HELP x_total x\n"
                      "# TYPE x_total counter\n"
                      "x_total{a=\"\",b=\"y\"} 1\n"
                      "x_total{a=\"\",b=\"\"} 1\n");
    px_metrics_free(m);
}

static void test_histogram(void **state)
{
    (void)state;
    struct px_metrics *m = px_metrics_new();
    static const char *const labels[] = {"rule", NULL};
    static const double buckets[] = {0.005, 0.1, 1, 2.5};
    struct px_metric *h = px_metrics_family(m, "origin_response_seconds", "Time to head.",
                                            PX_METRIC_HISTOGRAM, labels, buckets, 4, 0);
    assert_non_null(h);
    const char *r0[] = {"0"};
    px_metric_observe(h, r0, 0.005); /* on a bound: counts in it (le) */
    px_metric_observe(h, r0, 0.05);
    px_metric_observe(h, r0, 0.05);
    px_metric_observe(h, r0, 3);
    px_metric_add(h, r0, 1); /* not for histograms */
    px_metric_set(h, r0, 1);
    assert_true(px_metric_get(h, r0) == 4);
    struct px_metric *plain =
        px_metrics_family(m, "d_seconds", "D.", PX_METRIC_HISTOGRAM, NULL, NULL, 0, 0);
    px_metric_observe(plain, NULL, 2);
    assert_renders(m, "# HELP origin_response_seconds Time to head.\n"
                      "# TYPE origin_response_seconds histogram\n"
                      "origin_response_seconds_bucket{rule=\"0\",le=\"0.005\"} 1\n"
                      "origin_response_seconds_bucket{rule=\"0\",le=\"0.1\"} 3\n"
                      "origin_response_seconds_bucket{rule=\"0\",le=\"1\"} 3\n"
                      "origin_response_seconds_bucket{rule=\"0\",le=\"2.5\"} 3\n"
                      "origin_response_seconds_bucket{rule=\"0\",le=\"+Inf\"} 4\n"
                      "origin_response_seconds_sum{rule=\"0\"} 3.105\n"
                      "origin_response_seconds_count{rule=\"0\"} 4\n"
                      "# HELP d_seconds D.\n"
                      "# TYPE d_seconds histogram\n"
                      "d_seconds_bucket{le=\"+Inf\"} 1\n"
                      "d_seconds_sum 2\n"
                      "d_seconds_count 1\n");
    px_metrics_free(m);
}

static void test_escaping(void **state)
{
    (void)state;
    struct px_metrics *m = px_metrics_new();
    static const char *const labels[] = {"hostname", NULL};
    struct px_metric *c = px_metrics_family(m, "req_total", "Back\\slash \"quoted\"\nsecond line",
                                            PX_METRIC_COUNTER, labels, NULL, 0, 0);
    const char *v[] = {"a\\b\"c\nd"};
    px_metric_add(c, v, 1);
    /* HELP escapes backslash and newline only; label values also quotes. */
    assert_renders(m, "# HELP req_total Back\\\\slash \"quoted\"\\nsecond line\n"
                      "# TYPE req_total counter\n"
                      "req_total{hostname=\"a\\\\b\\\"c\\nd\"} 1\n");
    px_metrics_free(m);
}

static void test_values_normalised(void **state)
{
    (void)state;
    struct px_metrics *m = px_metrics_new();
    static const char *const labels[] = {"v", NULL};
    struct px_metric *c =
        px_metrics_family(m, "n_total", "n", PX_METRIC_COUNTER, labels, NULL, 0, 0);
    /* Invalid UTF-8 becomes U+FFFD; the same bytes find the same series. */
    const char *bad[] = {"a\xff\xc0\xafz"};
    px_metric_add(c, bad, 1);
    px_metric_add(c, bad, 1);
    assert_true(px_metric_get(c, bad) == 2);
    const char *fixed[] = {"a\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdz"};
    assert_true(px_metric_get(c, fixed) == 2);
    /* Long values are cut to 128 bytes, on a character boundary. */
    char longv[300];
    memset(longv, 'x', sizeof(longv) - 1);
    longv[sizeof(longv) - 1] = '\0';
    const char *lv[] = {longv};
    px_metric_add(c, lv, 1);
    char cut[129];
    memcpy(cut, longv, 128);
    cut[128] = '\0';
    const char *cv[] = {cut};
    assert_true(px_metric_get(c, cv) == 1);
    char utf[300] = "";
    strcat(utf, "y"); /* 1 + 42 * 3 = 127 bytes, then a 3-byte character */
    for (int i = 0; i < 50; i++)
        strcat(utf, "\xe2\x82\xac");
    const char *uv[] = {utf};
    px_metric_add(c, uv, 1);
    char *out = render(m);
    const char *line = strstr(out, "n_total{v=\"y");
    assert_non_null(line);
    const char *end = strchr(line + 13, '"');
    assert_int_equal(end - (line + 11), 127);
    free(out);
    px_metrics_free(m);
}

static void test_cap_overflow(void **state)
{
    (void)state;
    struct px_metrics *m = px_metrics_new();
    static const char *const labels[] = {"host", "class", NULL};
    struct px_metric *c =
        px_metrics_family(m, "r_total", "r", PX_METRIC_COUNTER, labels, NULL, 0, 2);
    const char *a[] = {"a", "2xx"}, *b[] = {"b", "2xx"}, *x[] = {"x", "5xx"}, *y[] = {"y", "4xx"};
    const char *other[] = {PX_METRICS_OVERFLOW, PX_METRICS_OVERFLOW};
    px_metric_add(c, a, 1);
    px_metric_add(c, b, 1);
    px_metric_add(c, x, 1); /* past the cap: folded */
    px_metric_add(c, y, 2);
    px_metric_add(c, a, 1); /* existing series still grow */
    assert_true(px_metric_get(c, a) == 2);
    assert_true(px_metric_get(c, x) == 0);
    assert_true(px_metric_get(c, other) == 3);
    assert_renders(m, "# HELP r_total r\n"
                      "# TYPE r_total counter\n"
                      "r_total{host=\"a\",class=\"2xx\"} 2\n"
                      "r_total{host=\"b\",class=\"2xx\"} 1\n"
                      "r_total{host=\"_other\",class=\"_other\"} 3\n");
    /* Removing frees room for a new label set again. */
    px_metric_remove(c, b);
    px_metric_remove(c, other);
    px_metric_add(c, x, 1);
    assert_true(px_metric_get(c, x) == 1);
    px_metrics_free(m);

    /* Hostile input cannot grow memory: a million names, 1000 series. */
    m = px_metrics_new();
    c = px_metrics_family(m, "h_total", "h", PX_METRIC_COUNTER, labels, NULL, 0, 0);
    char name[32];
    const char *v[] = {name, "2xx"};
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof(name), "host%d.example", i);
        px_metric_add(c, v, 1);
    }
    for (int i = 0; i < PX_METRICS_DEFAULT_MAX_SERIES; i++) {
        snprintf(name, sizeof(name), "host%d.example", i);
        assert_true(px_metric_get(c, v) == 1);
    }
    assert_true(px_metric_get(c, other) == 5000 - PX_METRICS_DEFAULT_MAX_SERIES);
    char *out = render(m);
    size_t lines = 0;
    for (const char *p = out; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 2 + PX_METRICS_DEFAULT_MAX_SERIES + 1);
    free(out);
    px_metrics_free(m);
}

static void test_remove_order(void **state)
{
    (void)state;
    struct px_metrics *m = px_metrics_new();
    static const char *const labels[] = {"k", NULL};
    struct px_metric *g = px_metrics_family(m, "g", "g", PX_METRIC_GAUGE, labels, NULL, 0, 0);
    const char *a[] = {"a"}, *b[] = {"b"}, *c[] = {"c"};
    px_metric_set(g, a, 1);
    px_metric_set(g, b, 2);
    px_metric_set(g, c, 3);
    px_metric_remove(g, b);
    px_metric_remove(g, b); /* gone already: nothing */
    assert_true(px_metric_get(g, b) == 0);
    px_metric_set(g, b, 4); /* back, now last */
    px_metric_remove(g, a);
    assert_renders(m, "# HELP g g\n# TYPE g gauge\ng{k=\"c\"} 3\ng{k=\"b\"} 4\n");
    px_metric_remove(g, c);
    px_metric_remove(g, b);
    assert_renders(m, "# HELP g g\n# TYPE g gauge\n");
    px_metrics_free(m);
}

static void test_numbers(void **state)
{
    (void)state;
    struct px_metrics *m = px_metrics_new();
    static const char *const labels[] = {"k", NULL};
    struct px_metric *g = px_metrics_family(m, "n", "n", PX_METRIC_GAUGE, labels, NULL, 0, 0);
    static const struct {
        double v;
        const char *text;
    } cases[] = {
        {42, "42"},
        {0, "0"},
        {-0.0, "0"},
        {-3, "-3"},
        {0.1, "0.1"},
        {2.5, "2.5"},
        {1.0 / 3, "0.3333333333333333"},
        {1e-7, "1e-07"},
        {1234567890123.0, "1234567890123"},
        {9007199254740993.0, "9007199254740992"},
        {1e20, "100000000000000000000"},
        {1e22, "1e+22"},
        {1776000000.125, "1776000000.125"},
        {NAN, "NaN"},
        {INFINITY, "+Inf"},
        {-INFINITY, "-Inf"},
    };
    char key[8];
    const char *v[] = {key};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(key, sizeof(key), "%zu", i);
        px_metric_set(g, v, cases[i].v);
    }
    char *out = render(m);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char want[80];
        snprintf(want, sizeof(want), "n{k=\"%zu\"} %s\n", i, cases[i].text);
        if (!strstr(out, want))
            fprintf(stderr, "missing %s in\n%s", want, out);
        assert_non_null(strstr(out, want));
    }
    free(out);
    /* 1/3 reads back exactly: the shortest text that does. */
    px_metrics_free(m);
}

/* The rendering parses with the reference parser (python3-prometheus-client)
 * into the same samples. Skipped when it is not installed. */
static void test_parses_with_prometheus_client(void **state)
{
    (void)state;
    if (system("/usr/bin/python3 -c 'import prometheus_client' 2>/dev/null") != 0) {
        fprintf(stderr, "prometheus_client not installed: skipped\n");
        skip();
    }
    struct px_metrics *m = px_metrics_new();
    static const char *const labels[] = {"host", "class", NULL};
    struct px_metric *c =
        px_metrics_family(m, "edge_requests_total", "Requests \"by\" host\\class.",
                          PX_METRIC_COUNTER, labels, NULL, 0, 0);
    static const double buckets[] = {0.005, 0.01, 0.5};
    struct px_metric *h = px_metrics_family(m, "edge_request_duration_seconds", "Duration.",
                                            PX_METRIC_HISTOGRAM, labels, buckets, 3, 0);
    struct px_metric *g =
        px_metrics_family(m, "edge_links", "Links.", PX_METRIC_GAUGE, NULL, NULL, 0, 0);
    const char *v1[] = {"a\"b\\c\nd\xff", "2xx"};
    px_metric_add(c, v1, 7);
    px_metric_observe(h, v1, 0.007);
    px_metric_observe(h, v1, 0.7);
    px_metric_set(g, NULL, 0.25);
    char *out = render(m);
    char path[] = "/tmp/test_px_metrics_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, out, strlen(out)), (ssize_t)strlen(out));
    close(fd);
    free(out);
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "/usr/bin/python3 -c '\n"
             "import sys\n"
             "from prometheus_client.parser import text_string_to_metric_families as p\n"
             "s = {}\n"
             "for f in p(open(sys.argv[1], encoding=\"utf-8\").read()):\n"
             "    for x in f.samples: s[(x.name, tuple(sorted(x.labels.items())))] = x.value\n"
             "h = (\"host\", \"a\\\"b\\\\c\\nd\\ufffd\")\n"
             "assert s[(\"edge_requests_total\", ((\"class\", \"2xx\"), h))] == 7, s\n"
             "assert s[(\"edge_request_duration_seconds_bucket\", ((\"class\", \"2xx\"), h, "
             "(\"le\", \"0.01\")))] == 1, s\n"
             "assert s[(\"edge_request_duration_seconds_count\", ((\"class\", \"2xx\"), h))] == 2\n"
             "assert s[(\"edge_links\", ())] == 0.25\n"
             "' %s",
             path);
    int rc = system(cmd);
    unlink(path);
    assert_int_equal(rc, 0);
    px_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_free),
        cmocka_unit_test(test_invalid_families),
        cmocka_unit_test(test_counter_gauge),
        cmocka_unit_test(test_no_labels_and_null_values),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_values_normalised),
        cmocka_unit_test(test_cap_overflow),
        cmocka_unit_test(test_remove_order),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_parses_with_prometheus_client),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
