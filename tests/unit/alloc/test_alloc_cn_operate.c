/* Allocation failure in the connector's operator pieces (cn_metrics and
 * the cn_ops endpoints): for each operation, the n-th allocation fails, for
 * n = 1, 2, ... until a run completes without reaching n. Every run ends in
 * the correct result or a clean degradation (no metrics object, a dropped
 * sample, a 500, a connection closed without an answer), never a crash, a
 * leak, a partial /metrics served as whole or a JSON answer missing a key.
 * See failalloc.h for what the failing allocator covers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "failalloc.h"

#include "cn_ingress.h"
#include "cn_metrics.h"
#include "cn_ops.h"
#include "px_buf.h"
#include "px_err.h"
#include "px_log.h"
#include "rt_conn.h"
#include "rt_httpd.h"
#include "rt_loop.h"

#include <stdio.h>
#include <string.h>

/* Returns 0 for the correct result, 1 for a clean degradation, -1 for
 * anything else; calls fa_disarm() once the code under test is done. */
typedef int (*op_fn)(void);

static long sweep(const char *name, op_fn op)
{
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
        if (!hit) {
            if (r != 0)
                fail_msg("%s: degraded without an allocation failure", name);
            return n - 1;
        }
    }
}

#define SWEEP(op)                                                                                  \
    do {                                                                                           \
        long k = sweep(#op, op);                                                                   \
        print_message("%-28s %ld allocation(s), each made to fail once\n", #op, k);                \
    } while (0)

static struct cn_ingress *rules; /* made without failures, in main */

/* The samples the events below produce, each a whole line. */
static const char *const want[] = {
    "connector_build_info{version=\"1.2\"} 1\n",
    "connector_links_up{edge=\"e:1\"} 1\n",
    "connector_reconnects_total{edge=\"e:1\"} 1\n",
    "connector_registration_failures_total{edge=\"e:1\",reason=\"tls\"} 1\n",
    "connector_requests_total{rule=\"0\",status_class=\"2xx\"} 1\n",
    "connector_ingress_rule_info{rule=\"0\",hostname=\"a.test\",path=\"\"} 1\n",
    "connector_bytes_total{direction=\"to_origin\"} 5\n",
    "connector_origin_response_seconds_count{rule=\"0\"} 1\n",
    "connector_origin_errors_total{cause=\"refused\"} 1\n",
};

/* A registry's life: made, fed every kind of event, rendered, freed. */
static int op_metrics(void)
{
    struct cn_metrics *m = cn_metrics_new("1.2", 1);
    const char *edges[] = {"e:1"};
    cn_metrics_edges(m, edges, 1);
    cn_metrics_rules(m, rules);
    cn_metrics_link_up(m, "e:1");
    cn_metrics_reconnect(m, "e:1");
    cn_metrics_registration_failed(m, "e:1", CN_LINK_CAUSE_TLS);
    cn_metrics_stream_open(m);
    cn_metrics_request_done(m, &rules->rules[0], 200);
    cn_metrics_stream_close(m);
    cn_metrics_bytes_to_origin(m, 5);
    cn_metrics_origin_response(m, &rules->rules[0], 0.01);
    cn_metrics_origin_error(m, CN_ORIGIN_REFUSED);
    struct px_buf out;
    px_buf_init(&out);
    int rc = m ? cn_metrics_render(m, &out) : PX_ERR_NOMEM;
    fa_disarm();
    const char *s = px_buf_cstr(&out);
    int r = 0;
    if (rc == PX_ERR_NOMEM) {
        r = 1;
    } else if (rc != 0 || !s || s[px_buf_len(&out) - 1] != '\n') {
        r = -1;
    } else {
        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
            if (!strstr(s, want[i]))
                r = 1; /* a sample dropped, as px_metrics says */
    }
    px_buf_cleanup(&out);
    cn_metrics_free(m);
    return r;
}

static unsigned links_now(void *arg)
{
    (void)arg;
    return 2;
}

/* The answer to GET path from cn_ops on a memory connection. want_body:
 * what a whole 200 answer's body holds. */
static int op_ops(const char *path, const char *want_body)
{
    long n = fa_target;
    fa_disarm();
    uv_loop_t loop;
    struct rt_loop rl;
    if (uv_loop_init(&loop) != 0 || rt_loop_init(&rl, &loop) != 0)
        return -1;
    struct cn_metrics *m = cn_metrics_new("1.2", 1);
    if (!m)
        return -1;
    const struct cn_ops_source src = {.connections = links_now, .tunnel_id = "t1"};
    fa_arm(n);
    int r = 1;
    char *out = NULL;
    struct cn_ops *o = cn_ops_new(&loop, m, &src);
    struct rt_conn *c = o ? rt_httpd_new_memory(cn_ops_httpd(o), "127.0.0.1") : NULL;
    if (c) {
        char req[128];
        snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
        rt_conn_memory_feed(c, req, strlen(req));
        /* A closed connection has no mem_out left: only read a live one
         * (cn_ops answers within the feed, or never). */
        if (px_buf_len(&c->mem_out)) {
            out = strndup((const char *)px_buf_head(&c->mem_out), px_buf_len(&c->mem_out));
            rt_conn_memory_consume(c, px_buf_len(&c->mem_out));
        }
    }
    cn_ops_free(o);
    for (int i = 0; i < 5; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    fa_disarm();
    if (out && strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0)
        r = strstr(out, want_body) ? 0 : -1;
    else if (out && (strncmp(out, "HTTP/1.1 ", 9) != 0 || strncmp(out + 9, "404", 3) == 0 ||
                     strncmp(out + 9, "405", 3) == 0))
        r = -1; /* not an answer, or the path was lost on the way */
    /* Else an error answer: rt_httpd's (400 when it could not keep the
     * request's text) or ours (500). */
    free(out);
    cn_metrics_free(m);
    rt_loop_cleanup(&rl);
    uv_run(&loop, UV_RUN_NOWAIT);
    if (uv_loop_close(&loop) != 0)
        r = -1;
    return r;
}

static int op_ops_ready(void)
{
    return op_ops("/ready",
                  "\r\n\r\n{\"status\":\"ready\",\"connections\":2,\"tunnel_id\":\"t1\"}");
}

static int op_ops_metrics(void)
{
    return op_ops("/metrics", "connector_build_info{version=\"1.2\"} 1\n");
}

static void cn_operate_fails_cleanly(void **state)
{
    (void)state;
    SWEEP(op_metrics);
    SWEEP(op_ops_ready);
    SWEEP(op_ops_metrics);
}

int main(void)
{
    px_log_set_level((enum px_log_level)(PX_LOG_ERROR + 1)); /* silent */
    if (fa_init() < 0)
        return 1;
    static const char json[] =
        "{\"ingress\":[{\"hostname\":\"a.test\",\"service\":\"hello_world\"},"
        "{\"service\":\"http_status:404\"}]}";
    struct cn_ingress_errors errs = {0};
    fa_json_fails = 0;
    int rc = cn_ingress_parse(json, strlen(json), &rules, &errs);
    fa_json_fails = 1;
    cn_ingress_errors_cleanup(&errs);
    if (rc < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cn_operate_fails_cleanly),
    };
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    cn_ingress_unref(rules);
    return rc;
}
