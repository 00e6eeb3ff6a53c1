/* Allocation failure in the operator pieces (px_metrics, rt_httpd, px_log):
 * for each operation, the n-th allocation fails, for n = 1, 2, ... until a
 * run completes without reaching n. Every run must end in the correct
 * result or a clean degradation (a dropped sample, a refused or closed
 * connection, a "line lost" log line), never a crash, a leak or a wrong
 * answer. See failalloc.h for what the failing allocator covers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "failalloc.h"

#include "px_buf.h"
#include "px_err.h"
#include "px_log.h"
#include "px_metrics.h"
#include "rt_conn.h"
#include "rt_httpd.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

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

/* ---- px_metrics ---- */

static const char metrics_want[] = "# HELP t_total Requests.\n"
                                   "# TYPE t_total counter\n"
                                   "t_total{host=\"a\",class=\"2xx\"} 2\n"
                                   "t_total{host=\"_other\",class=\"_other\"} 1\n"
                                   "# HELP d_seconds D.\n"
                                   "# TYPE d_seconds histogram\n"
                                   "d_seconds_bucket{le=\"0.1\"} 1\n"
                                   "d_seconds_bucket{le=\"+Inf\"} 1\n"
                                   "d_seconds_sum 0.05\n"
                                   "d_seconds_count 1\n";

/* The whole life of a registry: whatever fails, nothing crashes or leaks
 * and a rendering that succeeds is whole text (lines, no partial line). */
static int op_metrics(void)
{
    struct px_metrics *m = px_metrics_new();
    static const char *const labels[] = {"host", "class", NULL};
    static const double b[] = {0.1};
    struct px_metric *c =
        px_metrics_family(m, "t_total", "Requests.", PX_METRIC_COUNTER, labels, NULL, 0, 1);
    struct px_metric *h =
        px_metrics_family(m, "d_seconds", "D.", PX_METRIC_HISTOGRAM, NULL, b, 1, 0);
    const char *a[] = {"a", "2xx"}, *x[] = {"x", "5xx"};
    px_metric_add(c, a, 1);
    px_metric_add(c, a, 1);
    px_metric_add(c, x, 1);
    px_metric_observe(h, NULL, 0.05);
    struct px_buf out;
    px_buf_init(&out);
    int rc = px_metrics_render(m, &out);
    fa_disarm();
    int r;
    const char *s = px_buf_cstr(&out);
    if (!m)
        r = 1;
    else if (rc == PX_ERR_NOMEM)
        r = 1;
    else if (rc != 0 || !s)
        r = -1;
    else if (strcmp(s, metrics_want) == 0)
        r = 0;
    else /* a family or a sample was dropped: still whole lines */
        r = (px_buf_len(&out) == 0 || s[px_buf_len(&out) - 1] == '\n') ? 1 : -1;
    px_buf_cleanup(&out);
    px_metrics_free(m);
    return r;
}

/* Rendering alone: the whole text or PX_ERR_NOMEM, nothing in between. */
static int op_metrics_render(void)
{
    long n = fa_target;
    fa_disarm();
    struct px_metrics *m = px_metrics_new();
    static const char *const labels[] = {"host", "class", NULL};
    static const double b[] = {0.1};
    struct px_metric *c =
        px_metrics_family(m, "t_total", "Requests.", PX_METRIC_COUNTER, labels, NULL, 0, 1);
    struct px_metric *h =
        px_metrics_family(m, "d_seconds", "D.", PX_METRIC_HISTOGRAM, NULL, b, 1, 0);
    const char *a[] = {"a", "2xx"}, *x[] = {"x", "5xx"};
    px_metric_add(c, a, 2);
    px_metric_add(c, x, 1);
    px_metric_observe(h, NULL, 0.05);
    struct px_buf out;
    px_buf_init(&out);
    px_buf_set_min_cap(&out, 16); /* grow often: more allocations to fail */
    fa_arm(n);
    int rc = px_metrics_render(m, &out);
    fa_disarm();
    const char *s = px_buf_cstr(&out);
    int r = rc == PX_ERR_NOMEM ? 1 : rc == 0 && s && strcmp(s, metrics_want) == 0 ? 0 : -1;
    px_buf_cleanup(&out);
    px_metrics_free(m);
    return r;
}

/* ---- rt_httpd ---- */

static int releases, wrong;

/* A request that reaches the handler is whole: a failure never drops a
 * field silently. */
static void on_request(void *ud, struct rt_httpd_conn *c, const struct rt_httpd_req *r)
{
    (void)ud;
    int ok = strcmp(r->path, "/api/x") == 0 && r->query && strcmp(r->query, "q=1") == 0 &&
             r->host && strcmp(r->host, "h") == 0 && r->authorization &&
             strcmp(r->authorization, "Bearer t") == 0 && r->accept &&
             strcmp(r->accept, "*/*, a/b") == 0 && r->body_len == 4 &&
             memcmp(r->body, "body", 4) == 0;
    wrong |= !ok;
    rt_httpd_respond(c, 200, "text/plain", NULL, "done", 4);
}

static int admit(void *ud, const char *peer, void **tok)
{
    (void)ud;
    (void)peer;
    *tok = NULL;
    return 0;
}

static void release(void *ud, void *tok)
{
    (void)ud;
    (void)tok;
    releases++;
}

static const struct rt_httpd_ops ops = {
    .on_request = on_request, .admit = admit, .release = release};

/* One request on a memory connection, fed in small pieces: the right
 * answer, or an error answer / no answer at all, and the connection is
 * released either way. */
static int op_httpd(void)
{
    long n = fa_target;
    fa_disarm();
    uv_loop_t loop;
    struct rt_loop rl;
    if (uv_loop_init(&loop) != 0 || rt_loop_init(&rl, &loop) != 0)
        return -1;
    releases = wrong = 0;
    fa_arm(n);
    int r = 1;
    struct rt_httpd *h = rt_httpd_new(&loop, NULL, &ops, NULL);
    struct rt_conn *c = h ? rt_httpd_new_memory(h, "192.0.2.1") : NULL;
    static const char req[] = "POST /api/x?q=1 HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer t\r\n"
                              "Content-Type: text/plain\r\nAccept: */*\r\nAccept: a/b\r\n"
                              "Content-Length: 4\r\n\r\nbody";
    char *out = NULL;
    if (c) {
        for (size_t off = 0; off < sizeof(req) - 1 && releases == 0; off += 7) {
            size_t k = sizeof(req) - 1 - off < 7 ? sizeof(req) - 1 - off : 7;
            if (rt_conn_memory_feed(c, req + off, k) < 0)
                break;
            uv_run(&loop, UV_RUN_NOWAIT);
        }
        for (int i = 0; i < 3; i++)
            uv_run(&loop, UV_RUN_NOWAIT);
        if (releases == 0) {
            out = strndup((const char *)px_buf_head(&c->mem_out), px_buf_len(&c->mem_out));
            rt_conn_memory_consume(c, px_buf_len(&c->mem_out));
            if (releases == 0)
                rt_conn_memory_eof(c);
        }
        for (int i = 0; i < 5 && releases == 0; i++)
            uv_run(&loop, UV_RUN_NOWAIT);
        if (releases != 1 || wrong)
            r = -1;
    }
    rt_httpd_free(h);
    for (int i = 0; i < 3; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    fa_disarm();
    if (r == 1 && out && strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0)
        r = strstr(out, "\r\n\r\ndone") ? 0 : -1;
    else if (r == 1 && out && out[0] && strncmp(out, "HTTP/1.1 ", 9) != 0)
        r = -1;
    free(out);
    rt_loop_cleanup(&rl);
    uv_run(&loop, UV_RUN_NOWAIT);
    if (uv_loop_close(&loop) != 0)
        r = -1;
    return r;
}

/* ---- px_log ---- */

/* A JSON message and an access line to a temporary stderr: each line is a
 * JSON object (the message, or the "was lost" line). */
static int op_log_json(void)
{
    long n = fa_target;
    fa_disarm();
    px_log_flush(); /* batched lines of a live loop (px_log_batch) */
    fflush(stderr);
    FILE *cap = tmpfile();
    int saved = dup(2);
    if (!cap || saved < 0 || dup2(fileno(cap), 2) < 0)
        return -1;
    px_log_set_format(PX_LOG_JSON);
    fa_arm(n);
    PX_WARN("message %s %d", "with \"quotes\"\n", 42);
    struct px_access_entry e = {
        .hostname = "a.example", .method = "GET", .path = "/p?q", .status = 200};
    px_log_access(&e);
    fa_disarm();
    px_log_set_format(PX_LOG_TEXT);
    px_log_flush(); /* batched lines of a live loop (px_log_batch) */
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(cap);
    char line[4096];
    int r = 0, lines = 0;
    while (fgets(line, sizeof(line), cap)) {
        lines++;
        json_error_t err;
        json_t *j = json_loads(line, 0, &err);
        if (!j || !json_is_string(json_object_get(j, "time")))
            r = -1;
        else if (strstr(line, "was lost"))
            r = r < 0 ? r : 1;
        json_decref(j);
    }
    fclose(cap);
    return lines == 2 ? r : -1;
}

static void operate_fails_cleanly(void **state)
{
    (void)state;
    SWEEP(op_metrics);
    SWEEP(op_metrics_render);
    SWEEP(op_httpd);
    fa_json_fails = 0; /* jansson parses the captured lines */
    SWEEP(op_log_json);
    fa_json_fails = 1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(operate_fails_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
