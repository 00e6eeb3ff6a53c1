/* cn_stream_page: answers the connector writes itself: error pages (with
 * a "tunnel-error" code a script can read) and the hello_world page. An
 * error page never carries an origin's headers. */
#include "cn_stream_int.h"
#include "px_errpage.h"
#include "px_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void local_response(struct cn_stream *s, int status, const char *ctype, const char *body,
                           size_t len, const char *err_code)
{
    s->resp_status = status;
    char cl[32];
    snprintf(cl, sizeof(cl), "%zu", len);
    int rc = cn_stream_add_resp_header(s, "content-type", 12, ctype, strlen(ctype));
    if (rc == 0)
        rc = cn_stream_add_resp_header(s, "content-length", 14, cl, strlen(cl));
    if (rc == 0)
        rc = cn_stream_add_resp_header(s, "cache-control", 13, "no-store", 8);
    if (rc == 0 && err_code)
        rc = cn_stream_add_resp_header(s, "tunnel-error", 12, err_code, strlen(err_code));
    int with_body = !s->is_head && len > 0;
    if (rc == 0 && with_body)
        rc = cn_stream_resp_put(s, body, len);
    s->resp_eof = 1;
    if (rc < 0 || cn_stream_submit(s, with_body) < 0)
        cn_stream_reset(s);
}

void cn_stream_error_page(struct cn_stream *s, int status, const char *code, const char *detail)
{
    cn_stream_clear_resp_headers(s);
    size_t len;
    char *page = px_errpage_render(status, detail, &len);
    if (!page) {
        cn_stream_reset(s);
        return;
    }
    local_response(s, status, "text/html; charset=utf-8", page, len, code);
    free(page);
}

void cn_stream_error(struct cn_stream *s, int status, const char *code, const char *detail,
                     const char *log_extra)
{
    PX_WARN("stream %d: %s %s -> %d: %s%s%s%s", s->id, s->method, s->authority ? s->authority : "-",
            status, detail, log_extra ? " (" : "", log_extra ? log_extra : "",
            log_extra ? ")" : "");
    cn_stream_error_page(s, status, code, detail);
}

static void html_escape_n(struct px_buf *b, const char *s, size_t n)
{
    for (const char *end = s + n; s < end; s++) {
        switch (*s) {
        case '<':
            px_buf_append(b, "&lt;", 4);
            break;
        case '>':
            px_buf_append(b, "&gt;", 4);
            break;
        case '&':
            px_buf_append(b, "&amp;", 5);
            break;
        case '"':
            px_buf_append(b, "&quot;", 6);
            break;
        default:
            px_buf_append(b, s, 1);
        }
    }
}

static void html_escape_append(struct px_buf *b, const char *s)
{
    html_escape_n(b, s, strlen(s));
}

void cn_stream_hello(struct cn_stream *s)
{
    struct px_buf b;
    px_buf_init(&b);
    const char *head = "<!doctype html><html><head><meta charset=\"utf-8\"><title>Hello from "
                       "your tunnel</title></head><body><h1>Hello from your tunnel</h1>"
                       "<p>This page is served by the connector itself.</p><h2>Your request</h2>"
                       "<pre>";
    px_buf_append(&b, head, strlen(head));
    html_escape_append(&b, s->method);
    px_buf_append(&b, " ", 1);
    html_escape_append(&b, s->path ? s->path : "/");
    px_buf_append(&b, "\nhost: ", 7);
    html_escape_append(&b, s->authority ? s->authority : "");
    size_t at = 0, ll;
    const char *line;
    while (cn_stream_next_field(s, &at, &line, &ll)) {
        px_buf_append(&b, "\n", 1);
        html_escape_n(&b, line, ll);
    }
    const char *tail = "</pre></body></html>\n";
    px_buf_append(&b, tail, strlen(tail));
    local_response(s, 200, "text/html; charset=utf-8", (const char *)px_buf_head(&b),
                   px_buf_len(&b), NULL);
    px_buf_cleanup(&b);
}
