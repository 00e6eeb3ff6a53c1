#include "cn_stream.h"
#include "cn_assert.h"
#include "cn_config.h"
#include "cn_creds.h"
#include "cn_ingress.h"
#include "cn_link.h"
#include "cn_supervisor.h"
#include "cn_upgrade.h"
#include "px_err.h"
#include "px_errpage.h"
#include "px_headers.h"
#include "px_hostname.h"
#include "px_log.h"
#include "px_path.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static void on_done(struct cn_origin_xfer *x, CURLcode res);

struct cn_stream *cn_stream_new(struct cn_link *l, int32_t id)
{
    struct cn_stream *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->link = l;
    s->id = id;
    s->content_length = -1;
    px_buf_init(&s->req_body);
    px_buf_init(&s->resp_body);
    s->xfer.on_done = on_done;
    uv_timer_init(l->sup->loop, &s->timer);
    s->timer.data = s;
    s->timer_open = 1;
    s->next = l->streams;
    if (l->streams)
        l->streams->prev = s;
    l->streams = s;
    return s;
}

static char *dupn(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

int cn_stream_on_header(struct cn_stream *s, const uint8_t *name, size_t nlen, const uint8_t *value,
                        size_t vlen)
{
    if (s->refuse_status)
        return 0; /* already refused: answered once the head is complete */
    s->header_bytes += nlen + vlen + 32;
    if (s->header_bytes > CN_STREAM_MAX_HEADER_BYTES) {
        s->refuse_status = 431;
        return 0;
    }
    const char *n = (const char *)name;
#define IS(lit) (nlen == sizeof(lit) - 1 && memcmp(n, lit, nlen) == 0)
    if (IS(":path") && vlen > CN_STREAM_MAX_PATH) {
        s->refuse_status = 414;
        return 0;
    }
    if (IS(":method")) {
        if (vlen >= sizeof(s->method))
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        memcpy(s->method, value, vlen);
        s->method[vlen] = '\0';
        return 0;
    }
    if (IS(":path")) {
        /* Kept as a C string: a NUL would hide the rest from the normaliser. */
        if (s->path || memchr(value, '\0', vlen))
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        return (s->path = dupn(value, vlen)) ? 0 : NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    if (IS(":authority")) {
        free(s->authority);
        return (s->authority = dupn(value, vlen)) ? 0 : NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    if (IS(":scheme")) {
        free(s->scheme);
        return (s->scheme = dupn(value, vlen)) ? 0 : NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    if (IS(":protocol")) {
        if (vlen == 0 || vlen >= sizeof(s->protocol))
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        memcpy(s->protocol, value, vlen);
        s->protocol[vlen] = '\0';
        return 0;
    }
    if (IS("tunnel-control")) {
        s->is_control = 1;
        return 0;
    }
    if (IS("host")) {
        if (!s->authority)
            s->authority = dupn(value, vlen);
        return 0;
    }
    if (IS("content-length")) {
        char buf[32];
        if (vlen == 0 || vlen >= sizeof(buf))
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        memcpy(buf, value, vlen);
        buf[vlen] = '\0';
        char *end;
        long long v = strtoll(buf, &end, 10);
        if (*end || v < 0)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        s->content_length = v;
        return 0;
    }
    if (IS("expect") || px_hdr_is_hop_by_hop(n, nlen))
        return 0;
    if (IS("accept"))
        s->has_accept = 1;
    if (IS("x-forwarded-host"))
        s->has_xfh = 1;
    int is_assertion = IS(CN_ASSERT_HEADER);
#undef IS
    if (!px_hdr_valid(n, nlen, (const char *)value, vlen))
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    /* Kept for an access.required rule, and forwarded like any field (an
     * origin may verify it too). The edge sends one; two are refused. */
    if (is_assertion && s->assertion)
        s->assertion_repeated = 1;
    else if (is_assertion && !(s->assertion = dupn(value, vlen)))
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    char *line = malloc(nlen + vlen + 3);
    if (!line)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    memcpy(line, name, nlen);
    line[nlen] = ':';
    line[nlen + 1] = ' ';
    memcpy(line + nlen + 2, value, vlen);
    line[nlen + 2 + vlen] = '\0';
    struct curl_slist *nl = curl_slist_append(s->req_headers, line);
    free(line);
    if (!nl)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    s->req_headers = nl;
    return 0;
}

static int add_nv(struct cn_stream *s, const char *name, size_t nlen, const char *value,
                  size_t vlen)
{
    if (s->resp_header_bytes + nlen + vlen + 32 > CN_STREAM_MAX_HEADER_BYTES) {
        s->resp_headers_too_large = 1;
        return -1;
    }
    if (s->n_resp_nv == s->cap_resp_nv) {
        size_t cap = s->cap_resp_nv ? s->cap_resp_nv * 2 : 16;
        if (cap > 512) {
            s->resp_headers_too_large = 1;
            return -1;
        }
        nghttp2_nv *nv = realloc(s->resp_nv, cap * sizeof(*nv));
        if (!nv)
            return -1;
        s->resp_nv = nv;
        s->cap_resp_nv = cap;
    }
    char *n = malloc(nlen + 1), *v = malloc(vlen + 1);
    if (!n || !v) {
        free(n);
        free(v);
        return -1;
    }
    for (size_t i = 0; i < nlen; i++)
        n[i] = (char)tolower((unsigned char)name[i]);
    n[nlen] = '\0';
    memcpy(v, value, vlen);
    v[vlen] = '\0';
    nghttp2_nv *e = &s->resp_nv[s->n_resp_nv++];
    e->name = (uint8_t *)n;
    e->namelen = nlen;
    e->value = (uint8_t *)v;
    e->valuelen = vlen;
    e->flags = NGHTTP2_NV_FLAG_NONE;
    s->resp_header_bytes += nlen + vlen + 32;
    return 0;
}

static void clear_nv(struct cn_stream *s)
{
    for (size_t i = 0; i < s->n_resp_nv; i++) {
        free(s->resp_nv[i].name);
        free(s->resp_nv[i].value);
    }
    s->n_resp_nv = 0;
    s->resp_header_bytes = 0;
}

static int submit_response(struct cn_stream *s, int with_body)
{
    char status[8];
    snprintf(status, sizeof(status), "%d", s->resp_status);
    size_t n = s->n_resp_nv + 1;
    nghttp2_nv *nv = malloc(n * sizeof(*nv));
    if (!nv)
        return -1;
    nv[0] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)status, 7, strlen(status),
                         NGHTTP2_NV_FLAG_NONE};
    if (s->n_resp_nv)
        memcpy(nv + 1, s->resp_nv, s->n_resp_nv * sizeof(*nv));
    nghttp2_data_provider dp = {.source.ptr = s, .read_callback = cn_stream_read_body};
    int rv = nghttp2_submit_response(s->link->h2, s->id, nv, n, with_body ? &dp : NULL);
    free(nv);
    clear_nv(s);
    if (rv != 0)
        return -1;
    s->resp_submitted = 1;
    cn_link_kick(s->link);
    return 0;
}

static void local_response(struct cn_stream *s, int status, const char *ctype, const char *body,
                           size_t len, const char *err_code)
{
    s->resp_status = status;
    char cl[32];
    snprintf(cl, sizeof(cl), "%zu", len);
    add_nv(s, "content-type", 12, ctype, strlen(ctype));
    add_nv(s, "content-length", 14, cl, strlen(cl));
    add_nv(s, "cache-control", 13, "no-store", 8);
    if (err_code)
        add_nv(s, "tunnel-error", 12, err_code, strlen(err_code));
    int with_body = !s->is_head && len > 0;
    if (with_body) {
        if (px_buf_append(&s->resp_body, body, len) < 0) {
            nghttp2_submit_rst_stream(s->link->h2, NGHTTP2_FLAG_NONE, s->id,
                                      NGHTTP2_INTERNAL_ERROR);
            return;
        }
        s->link->buffered += len;
    }
    s->resp_eof = 1;
    if (submit_response(s, with_body) < 0)
        nghttp2_submit_rst_stream(s->link->h2, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
}

/* Answers with an error page for detail, without logging. */
static void error_page(struct cn_stream *s, int status, const char *code, const char *detail)
{
    clear_nv(s); /* an error page never carries an origin's headers */
    size_t len;
    char *page = px_errpage_render(status, detail, &len);
    if (!page) {
        nghttp2_submit_rst_stream(s->link->h2, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    local_response(s, status, "text/html; charset=utf-8", page, len, code);
    free(page);
}

/* Answers with an error page. detail goes on the page and in the log line;
 * log_extra (curl's own words, which may name files) only in the log. */
static void error_response_ex(struct cn_stream *s, int status, const char *code, const char *detail,
                              const char *log_extra)
{
    PX_WARN("stream %d: %s %s -> %d: %s%s%s%s", s->id, s->method, s->authority ? s->authority : "-",
            status, detail, log_extra ? " (" : "", log_extra ? log_extra : "",
            log_extra ? ")" : "");
    error_page(s, status, code, detail);
}

static void error_response(struct cn_stream *s, int status, const char *code, const char *detail)
{
    error_response_ex(s, status, code, detail, NULL);
}

void cn_stream_error(struct cn_stream *s, int status, const char *code, const char *detail,
                     const char *log_extra)
{
    error_response_ex(s, status, code, detail, log_extra);
}

int cn_stream_add_resp_header(struct cn_stream *s, const char *name, size_t nlen, const char *value,
                              size_t vlen)
{
    return add_nv(s, name, nlen, value, vlen);
}

int cn_stream_submit(struct cn_stream *s, int with_body)
{
    return submit_response(s, with_body);
}

void cn_stream_resume(struct cn_stream *s)
{
    if (s->resp_deferred) {
        s->resp_deferred = 0;
        nghttp2_session_resume_data(s->link->h2, s->id);
    }
    cn_link_kick(s->link);
}

static void html_escape_append(struct px_buf *b, const char *s)
{
    for (; *s; s++) {
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

static void hello_response(struct cn_stream *s)
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
    for (struct curl_slist *h = s->req_headers; h; h = h->next) {
        px_buf_append(&b, "\n", 1);
        html_escape_append(&b, h->data);
    }
    const char *tail = "</pre></body></html>\n";
    px_buf_append(&b, tail, strlen(tail));
    local_response(s, 200, "text/html; charset=utf-8", (const char *)px_buf_head(&b),
                   px_buf_len(&b), NULL);
    px_buf_cleanup(&b);
}

static size_t on_resp_header(char *data, size_t size, size_t nmemb, void *arg)
{
    struct cn_stream *s = arg;
    size_t len = size * nmemb;
    if (s->resp_submitted)
        return len; /* trailers: dropped */
    size_t n = len;
    while (n > 0 && (data[n - 1] == '\r' || data[n - 1] == '\n'))
        n--;
    if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        const char *sp = memchr(data, ' ', n);
        clear_nv(s);
        s->resp_headers_too_large = 0;
        s->resp_status = sp ? atoi(sp + 1) : 0;
        return len;
    }
    if (n == 0) {
        if (s->resp_status >= 100 && s->resp_status < 200)
            return len; /* interim response; the final one follows */
        if (s->resp_status < 200 || s->resp_status > 599)
            return 0; /* aborts the transfer: on_done answers 502 */
        if (s->timer_open)
            uv_timer_stop(&s->timer);
        int body = !s->is_head && s->resp_status != 204 && s->resp_status != 304;
        if (!body)
            s->resp_eof = 1;
        return submit_response(s, body) < 0 ? 0 : len;
    }
    const char *colon = memchr(data, ':', n);
    if (!colon || data[0] == ' ' || data[0] == '\t')
        return len;
    size_t nlen = (size_t)(colon - data);
    const char *v = colon + 1;
    while (v < data + n && (*v == ' ' || *v == '\t'))
        v++;
    size_t vlen = (size_t)(data + n - v);
    if (px_hdr_is_hop_by_hop(data, nlen) || !px_hdr_valid(data, nlen, v, vlen))
        return len;
    if (add_nv(s, data, nlen, v, vlen) < 0)
        return 0; /* aborts the transfer: on_done answers 502 */
    return len;
}

static size_t on_resp_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct cn_stream *s = arg;
    size_t len = size * nmemb;
    struct cn_link *l = s->link;
    if (px_buf_len(&s->resp_body) >= CN_STREAM_RESP_HIGH || l->buffered >= CN_LINK_BUFFER_CAP) {
        s->xfer.paused |= CURLPAUSE_RECV;
        return CURL_WRITEFUNC_PAUSE;
    }
    if (px_buf_append(&s->resp_body, data, len) < 0)
        return 0;
    l->buffered += len;
    if (s->resp_deferred) {
        s->resp_deferred = 0;
        nghttp2_session_resume_data(l->h2, s->id);
    }
    cn_link_kick(l);
    return len;
}

static size_t on_req_body(char *out, size_t size, size_t nmemb, void *arg)
{
    struct cn_stream *s = arg;
    size_t cap = size * nmemb;
    if (px_buf_len(&s->req_body) == 0) {
        if (s->req_eof)
            return 0;
        s->xfer.paused |= CURLPAUSE_SEND;
        return CURL_READFUNC_PAUSE;
    }
    size_t n = px_buf_read(&s->req_body, out, cap);
    cn_link_consume(s->link, s->id, n);
    /* Upload progress counts as origin activity for the response deadline. */
    if (!s->resp_submitted && s->timer_open)
        uv_timer_again(&s->timer);
    return n;
}

static void on_deadline(uv_timer_t *t)
{
    struct cn_stream *s = t->data;
    if (s->resp_submitted || !s->origin_started)
        return;
    cn_origin_cancel(&s->xfer);
    cn_origin_easy_put(s->xfer.easy);
    s->xfer.easy = NULL;
    s->origin_started = 0;
    char detail[160];
    snprintf(detail, sizeof(detail), "the origin did not respond within %u s",
             s->link->sup->cfg->response_timeout_ms / 1000);
    error_response(s, 504, "origin_timeout", detail);
}

/* The URL curl fetches and, when the TLS name differs from the address,
 * the CONNECT_TO entry that sends it to the real address. */
static int origin_url(const struct cn_stream *s, char **url, char *connect_to, size_t ctlen)
{
    const struct cn_rule *r = s->rule;
    const char *scheme = r->tls ? "https" : "http";
    const char *name = (r->tls && r->o.origin_server_name) ? r->o.origin_server_name : r->host;
    int v6 = strchr(name, ':') != NULL && name[0] != '['; /* bracket a bare IPv6 once */
    const char *path = s->path[0] == '/' ? s->path : "/";
    connect_to[0] = '\0';
    size_t ul = strlen(name) + strlen(path) + 32;
    *url = malloc(ul);
    if (!*url)
        return -1;
    if (r->kind == CN_SVC_UNIX) {
        snprintf(*url, ul, "%s://%s%s", scheme, name, path);
        return 0;
    }
    snprintf(*url, ul, "%s://%s%s%s:%d%s", scheme, v6 ? "[" : "", name, v6 ? "]" : "", r->port,
             path);
    if (name != r->host)
        snprintf(connect_to, ctlen, "%s:%d:%s:%d", name, r->port, r->host, r->port);
    return 0;
}

/* TLS settings of the rule. The origin is verified against the system CAs,
 * caPool and the edge's origin CA (cn_trust.h: s holds a reference to the
 * blob for as long as curl may read it); originPull presents the tunnel's
 * origin-pull certificate, copied into curl (CURL_BLOB_COPY), so a renewal
 * changes only later requests. Returns 0, or -1 on no memory or when the
 * origin-pull certificate is not there (cn_stream_on_request answers that
 * case first). */
static int apply_tls(struct cn_stream *s, CURL *e)
{
    const struct cn_rule *r = s->rule;
    const struct cn_origin_opts *o = &r->o;
    struct cn_creds *creds = cn_supervisor_creds(s->link->sup);
    if (o->no_tls_verify) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (!s->trust && creds && cn_trust_blob_for(&creds->trust, o, &s->trust) < 0)
        return -1;
    if (s->trust) {
        struct curl_blob b = {s->trust->data, s->trust->len, CURL_BLOB_NOCOPY};
        curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &b);
    } else if (o->ca_blob) {
        struct curl_blob b = {o->ca_blob, o->ca_blob_len, CURL_BLOB_NOCOPY};
        curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &b);
    }
    if (o->origin_cert) {
        curl_easy_setopt(e, CURLOPT_SSLCERT, o->origin_cert);
        curl_easy_setopt(e, CURLOPT_SSLKEY, o->origin_key);
    }
    if (o->origin_pull) {
        const char *cert = NULL, *key = NULL;
        if (!creds || cn_creds_origin_pull(creds, &cert, &key) != CN_PULL_READY)
            return -1;
        struct curl_blob cb = {(void *)cert, strlen(cert), CURL_BLOB_COPY};
        struct curl_blob kb = {(void *)key, strlen(key), CURL_BLOB_COPY};
        if (curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &cb) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &kb) != CURLE_OK)
            return -1;
        curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
        curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
    }
    if (o->http2_origin)
        curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    return 0;
}

int cn_stream_origin_setup(struct cn_stream *s, CURL *e)
{
    const struct cn_rule *r = s->rule;
    char *url, connect_to[600];
    if (origin_url(s, &url, connect_to, sizeof(connect_to)) < 0)
        return -1;
    curl_easy_setopt(e, CURLOPT_URL, url);
    free(url);
    if (connect_to[0] && !s->connect_to) {
        s->connect_to = curl_slist_append(NULL, connect_to);
        if (!s->connect_to)
            return -1;
    }
    if (s->connect_to)
        curl_easy_setopt(e, CURLOPT_CONNECT_TO, s->connect_to);
    if (r->kind == CN_SVC_UNIX)
        curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, r->unix_path);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    /* curl's connect phase includes the TLS handshake: allow both budgets. */
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(r->o.connect_timeout_s + (r->tls ? r->o.tls_timeout_s : 0)) * 1000L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, s->origin_err);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    if (r->tls && apply_tls(s, e) < 0)
        return -1;
    return 0;
}

static int start_origin(struct cn_stream *s)
{
    const struct cn_rule *r = s->rule;
    struct cn_config *cfg = s->link->sup->cfg;
    if (r->o.disable_chunked && s->req_has_body && s->content_length < 0) {
        error_response(s, 411, "length_required",
                       "this service takes request bodies with a Content-Length only "
                       "(disableChunkedEncoding)");
        return 0;
    }
    CURL *e = cn_origin_easy_get();
    if (!e)
        return -1;
    s->xfer.easy = e;
    if (cn_stream_origin_setup(s, e) < 0)
        return -1;
    char hdr[700];
    snprintf(hdr, sizeof(hdr), "Host: %s",
             r->o.http_host_header ? r->o.http_host_header : s->authority);
    struct curl_slist *h = curl_slist_append(s->req_headers, hdr);
    if (h && r->o.http_host_header && !s->has_xfh) {
        snprintf(hdr, sizeof(hdr), "X-Forwarded-Host: %s", s->authority);
        h = curl_slist_append(h, hdr);
    }
    if (h)
        h = curl_slist_append(h, "Expect:");
    if (h && !s->has_accept)
        h = curl_slist_append(h, "Accept:");
    if (!h)
        return -1;
    s->req_headers = h;
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, s->req_headers);
    curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(
        e, CURLOPT_HTTP_VERSION,
        (long)(r->tls && r->o.http2_origin ? CURL_HTTP_VERSION_2TLS : CURL_HTTP_VERSION_1_1));
    curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, (long)r->o.keepalive_timeout_s);
    /* Per transfer: 64 KiB bounds memory with hundreds of concurrent streams. */
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 64L * 1024);
    curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 64L * 1024);
    curl_easy_setopt(e, CURLOPT_HTTP_CONTENT_DECODING, 0L);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_resp_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_resp_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, on_req_body);
    curl_easy_setopt(e, CURLOPT_READDATA, s);
    if (strcmp(s->method, "HEAD") == 0) {
        s->is_head = 1;
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (s->req_has_body || strcmp(s->method, "POST") == 0 || strcmp(s->method, "PUT") == 0 ||
               strcmp(s->method, "PATCH") == 0) {
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE,
                         (curl_off_t)(s->req_has_body ? s->content_length : 0));
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, s->method);
    } else if (strcmp(s->method, "GET") != 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, s->method);
    }
    if (cn_origin_start(&s->xfer) < 0)
        return -1;
    s->origin_started = 1;
    uv_timer_start(&s->timer, on_deadline, cfg->response_timeout_ms, cfg->response_timeout_ms);
    return 0;
}

/* Watches curl's handshake trace for the server's CertificateRequest. */
static int probe_trace(CURL *e, curl_infotype type, char *data, size_t size, void *arg)
{
    (void)e;
    struct cn_stream *s = arg;
    if (type == CURLINFO_TEXT && size >= 12 && memmem(data, size, "Request CERT", 12))
        s->saw_cert_request = 1;
    return 0;
}

/* After a TLS failure: connect again without verification, only to learn
 * why: the certificate's names (kind 1), or whether the origin asks for a
 * client certificate (kind 2). */
static int start_probe(struct cn_stream *s, int kind)
{
    CURL *e = cn_origin_easy_get();
    if (!e)
        return -1;
    s->xfer.easy = e;
    s->probing = kind;
    if (kind == 2) {
        curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);
        curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, probe_trace);
        curl_easy_setopt(e, CURLOPT_DEBUGDATA, s);
    }
    if (cn_stream_origin_setup(s, e) < 0)
        return -1;
    curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(e, CURLOPT_CERTINFO, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    if (cn_origin_start(&s->xfer) < 0)
        return -1;
    s->origin_started = 1;
    return 0;
}

/* The names a certificate is for, from curl's CERTINFO of the leaf. */
static void cert_names(CURL *e, char *out, size_t len)
{
    struct curl_certinfo *ci = NULL;
    out[0] = '\0';
    if (curl_easy_getinfo(e, CURLINFO_CERTINFO, &ci) != CURLE_OK || !ci || ci->num_of_certs < 1)
        return;
    const char *subject = NULL, *san = NULL;
    for (struct curl_slist *l = ci->certinfo[0]; l; l = l->next) {
        if (strncmp(l->data, "Subject:", 8) == 0)
            subject = l->data + 8;
        else if (strncmp(l->data, "X509v3 Subject Alternative Name:", 32) == 0)
            san = l->data + 32;
    }
    if (san) {
        /* "DNS:a, DNS:b, IP Address:1.2.3.4" -> "a, b, 1.2.3.4" */
        size_t o = 0;
        for (const char *p = san; *p && o + 1 < len;) {
            if (strncmp(p, "DNS:", 4) == 0)
                p += 4;
            else if (strncmp(p, "IP Address:", 11) == 0)
                p += 11;
            else
                out[o++] = *p++;
        }
        out[o] = '\0';
    } else if (subject) {
        const char *cn = strstr(subject, "CN");
        if (cn) {
            cn += 2;
            while (*cn == ' ' || *cn == '=')
                cn++;
            snprintf(out, len, "%.*s", (int)strcspn(cn, ",/"), cn);
        }
    }
}

/* Replaces s->path with its normal form before any rule sees it, so a rule
 * and the origin (and the WebSocket upgrade, which reads s->path) agree on
 * the path: "/public/../secret" is "/secret" to both. Answers 400 and
 * returns -1 when the path is refused. "OPTIONS *" is not a path. */
static int normalize_path(struct cn_stream *s)
{
    if (strcmp(s->path, "*") == 0 && strcmp(s->method, "OPTIONS") == 0)
        return 0;
    char *norm = NULL;
    enum px_path_error why = PX_PATH_OK;
    int rc = px_path_normalize(s->path, strlen(s->path), &norm, NULL, &why);
    if (rc == PX_ERR_NOMEM) {
        error_response(s, 502, "internal", "the connector is out of memory");
        return -1;
    }
    if (rc < 0) {
        error_response(s, 400, "bad_path", px_path_strerror(why));
        return -1;
    }
    free(s->path);
    s->path = norm;
    return 0;
}

/* originRequest.access.required: lets the request through only with a
 * valid identity assertion from the edge, for the rule's audience or else
 * host (normalised). Otherwise answers 403 access_denied, naming the
 * verdict, and returns -1: the origin is never contacted. */
static int check_access(struct cn_stream *s, const char *host)
{
    const struct cn_rule *r = s->rule;
    const char *audience = r->o.access_audience ? r->o.access_audience : host;
    int v = s->assertion_repeated ? PX_JWT_MALFORMED
                                  : cn_assert_check(cn_link_assert_keys(s->link), s->assertion,
                                                    s->assertion ? strlen(s->assertion) : 0,
                                                    audience, (long long)time(NULL));
    if (v == PX_JWT_OK)
        return 0;
    if (v < 0) {
        error_response(s, 502, "internal", "the connector is out of memory");
        return -1;
    }
    const char *why = cn_assert_verdict_str(v);
    PX_INFO("stream %d: access denied by rule #%zu for %s %s: %s", s->id, r->index + 1, s->method,
            host, why);
    struct px_buf detail;
    px_buf_init(&detail);
    int rc = px_buf_appendf(&detail, "access denied: %s", why);
    error_page(s, 403, "access_denied", rc == 0 ? px_buf_cstr(&detail) : "access denied");
    px_buf_cleanup(&detail);
    return -1;
}

/* originPull: answers 502 and returns -1 while the edge has not issued the
 * origin-pull certificate (or it expired unrenewed): the origin would only
 * refuse the request. */
static int check_origin_pull(struct cn_stream *s)
{
    struct cn_creds *creds = cn_supervisor_creds(s->link->sup);
    const char *cert, *key;
    enum cn_pull_state st = creds ? cn_creds_origin_pull(creds, &cert, &key) : CN_PULL_NONE;
    if (st == CN_PULL_READY)
        return 0;
    error_response(s, 502, "origin_pull_unavailable",
                   st == CN_PULL_EXPIRED
                       ? "origin-pull certificate expired and not yet renewed by the edge"
                       : "origin-pull certificate not yet issued by the edge");
    return -1;
}

int cn_stream_on_request(struct cn_stream *s, int end_stream)
{
    s->req_eof = end_stream;
    s->req_has_body = !end_stream;
    if (s->refuse_status == 414) {
        error_response(s, 414, "uri_too_long", "the request's path is too long");
        return 0;
    }
    if (s->refuse_status) {
        error_response(s, 431, "headers_too_large", "the request's header fields are too large");
        return 0;
    }
    if (!s->method[0] || !s->path || !s->authority) {
        error_response(s, 400, "bad_request", "the request is missing :method, :path or host");
        return 0;
    }
    if (strcmp(s->method, "HEAD") == 0)
        s->is_head = 1;
    char host[256];
    if (px_host_normalize(s->authority, strlen(s->authority), host, sizeof(host)) < 0) {
        error_response(s, 400, "bad_request", "the request's host is not valid");
        return 0;
    }
    if (normalize_path(s) < 0)
        return 0;
    s->rule = cn_supervisor_route(s->link->sup, host, s->path, &s->ing);
    if (!s->rule) {
        error_response(s, 404, "no_route", "no ingress rule of this connector matches the host");
        return 0;
    }
    PX_DEBUG("stream %d: %s %s%s -> rule #%zu", s->id, s->method, host, s->path,
             s->rule->index + 1);
    /* Before anything of the rule runs: every method, WebSockets and TCP
     * services alike. */
    if (s->rule->o.access_required && check_access(s, host) < 0)
        return 0;
    if (s->rule->o.origin_pull && check_origin_pull(s) < 0)
        return 0;
    s->is_connect = strcmp(s->method, "CONNECT") == 0;
    if (s->is_connect && (s->rule->kind == CN_SVC_HTTP || s->rule->kind == CN_SVC_UNIX ||
                          s->rule->kind == CN_SVC_TCP)) {
        if (s->rule->kind != CN_SVC_TCP && strcasecmp(s->protocol, "websocket") != 0) {
            error_response(s, 501, "unsupported_protocol",
                           "only WebSocket upgrades are supported for HTTP services");
            return 0;
        }
        if (cn_upgrade_start(s) < 0)
            error_response(s, 502, "internal", "the connector could not open the origin");
        return 0;
    }
    switch (s->rule->kind) {
    case CN_SVC_TCP:
        error_response(s, 400, "tcp_service",
                       "this hostname is a TCP service: reach it with connector access tcp");
        return 0;
    case CN_SVC_HELLO:
        hello_response(s);
        return 0;
    case CN_SVC_STATUS: {
        char detail[64];
        snprintf(detail, sizeof(detail), "answered by the connector's ingress rule");
        error_response(s, s->rule->status, NULL, detail);
        return 0;
    }
    case CN_SVC_HTTP:
    case CN_SVC_UNIX:
        if (start_origin(s) < 0) {
            error_response(s, 502, "internal", "the connector could not start the request");
            return 0;
        }
        return 0;
    }
    return 0;
}

int cn_stream_on_data(struct cn_stream *s, const uint8_t *data, size_t len)
{
    if (s->up) {
        if (px_buf_append(&s->req_body, data, len) < 0)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        cn_upgrade_on_data(s);
        return 0;
    }
    if (!s->origin_started) {
        cn_link_consume(s->link, s->id, len); /* nobody will read it: drop */
        return 0;
    }
    if (px_buf_append(&s->req_body, data, len) < 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    cn_origin_unpause(&s->xfer, CURLPAUSE_SEND);
    return 0;
}

void cn_stream_on_end(struct cn_stream *s)
{
    s->req_eof = 1;
    if (s->up) {
        cn_upgrade_on_data(s);
        return;
    }
    if (s->origin_started)
        cn_origin_unpause(&s->xfer, CURLPAUSE_SEND);
}

static int has(const char *hay, const char *needle)
{
    return strcasestr(hay, needle) != NULL;
}

/* Names the cause of a failed origin transfer and the setting that fixes it.
 * The text goes on the error page: it must not carry paths or key material,
 * so curl's own message is only logged. *probe asks for a certificate probe. */
static void describe_curl(struct cn_stream *s, CURLcode res, int *status, const char **code,
                          char *why, size_t len, int *probe)
{
    const struct cn_rule *r = s->rule;
    const char *err = s->origin_err;
    const char *name = r->o.origin_server_name ? r->o.origin_server_name : r->host;
    *status = 502;
    *probe = 0;
    switch (res) {
    case CURLE_COULDNT_CONNECT:
        *code = "origin_refused";
        snprintf(why, len, "the origin refused the connection (is the service running?): %s", err);
        return;
    case CURLE_COULDNT_RESOLVE_HOST:
        *code = "origin_dns";
        snprintf(why, len, "the origin's host name could not be resolved");
        return;
    case CURLE_OPERATION_TIMEDOUT:
        *code = "origin_connect_timeout";
        snprintf(why, len, "timed out connecting to the origin (connectTimeout %u s)",
                 r->o.connect_timeout_s);
        return;
    case CURLE_PEER_FAILED_VERIFICATION:
        *code = "origin_tls_verify";
        if (has(err, "self-signed") || has(err, "self signed"))
            snprintf(why, len,
                     "origin certificate for %s is self-signed — set noTLSVerify, or caPool "
                     "with originServerName",
                     name);
        else if (has(err, "subject name") || has(err, "does not match") ||
                 has(err, "no alternative"))
            *probe = 1,
            snprintf(why, len, "origin certificate does not match %s — set originServerName", name);
        else if (has(err, "local issuer") || has(err, "unknown ca") || has(err, "issuer"))
            snprintf(why, len,
                     "origin certificate for %s is signed by a CA this connector does not trust "
                     "— set caPool (and originServerName if the names differ), or noTLSVerify",
                     name);
        else if (has(err, "expired"))
            snprintf(why, len,
                     "origin certificate for %s has expired — renew it, or set "
                     "noTLSVerify",
                     name);
        else
            snprintf(why, len,
                     "origin certificate for %s failed verification — set caPool or "
                     "noTLSVerify",
                     name);
        return;
    case CURLE_SSL_CERTPROBLEM:
        *code = "origin_client_cert";
        snprintf(why, len,
                 "the connector's client certificate for the origin cannot be used — "
                 "check %s",
                 r->o.origin_pull ? "the origin-pull certificate in the state directory"
                                  : "originCert/originKey");
        return;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
        if (r->tls && (has(err, "certificate required") || has(err, "handshake failure") ||
                       has(err, "bad certificate") || has(err, "unknown ca"))) {
            *code = "origin_client_cert";
            if (r->o.origin_pull)
                snprintf(why, len,
                         "origin rejected the tunnel's origin-pull client certificate — check "
                         "that it trusts the edge's origin-pull CA (edge-sim origin-pull-ca)");
            else if (r->o.origin_cert)
                snprintf(why, len,
                         "origin rejected the client certificate — check that "
                         "originCert is one it trusts");
            else
                snprintf(why, len,
                         "origin requires a client certificate — set originPull "
                         "(or originCert/originKey)");
            return;
        }
        if (r->tls && !r->o.origin_cert && !r->o.origin_pull) {
            /* TLS 1.3 servers reject a missing client certificate after the
             * client thinks the handshake is done: find out if that is it. */
            *probe = 2;
            *code = "origin_tls";
            snprintf(why, len, "the TLS connection to the origin failed");
            return;
        }
        if (res == CURLE_SSL_CONNECT_ERROR) {
            *code = "origin_tls";
            snprintf(why, len,
                     "the TLS handshake with the origin failed (is it HTTPS? for a "
                     "plain HTTP origin use http://)");
            return;
        }
        *code = "origin_error";
        snprintf(why, len, "the connection to the origin failed");
        return;
    case CURLE_GOT_NOTHING:
        if (r->tls && !r->o.origin_cert && !r->o.origin_pull) {
            *probe = 2;
            *code = "origin_empty";
            snprintf(why, len, "the origin closed the connection without responding");
            return;
        }
        *code = "origin_empty";
        snprintf(why, len, "the origin closed the connection without responding");
        return;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_WRITE_ERROR:
        *code = "origin_bad_response";
        snprintf(why, len, "the origin sent an invalid HTTP response%s",
                 r->tls ? "" : " (is it HTTPS? then use https://)");
        return;
    default:
        *code = "origin_error";
        snprintf(why, len, "the connection to the origin failed");
        return;
    }
}

static void free_stream_mem(uv_handle_t *h)
{
    struct cn_stream *s = h->data;
    free(s);
}

static void release(struct cn_stream *s)
{
    struct cn_link *l = s->link;
    if (s->prev)
        s->prev->next = s->next;
    else if (l->streams == s)
        l->streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->next = s->prev = NULL;
    if (s->up)
        cn_upgrade_release(s);
    cn_origin_cancel(&s->xfer);
    s->origin_started = 0;
    if (s->xfer.easy) {
        if (s->xfer.raw)
            curl_easy_cleanup(s->xfer.easy); /* its connection is single-use */
        else
            cn_origin_easy_put(s->xfer.easy);
    }
    l->buffered -= px_buf_len(&s->resp_body);
    /* Upload bytes curl never took still hold connection-level credit. */
    if (px_buf_len(&s->req_body) && l->h2)
        nghttp2_session_consume_connection(l->h2, px_buf_len(&s->req_body));
    curl_slist_free_all(s->req_headers);
    curl_slist_free_all(s->connect_to);
    cn_trust_blob_unref(s->trust);
    s->trust = NULL;
    if (s->ing)
        cn_ingress_unref(s->ing);
    clear_nv(s);
    free(s->resp_nv);
    free(s->path);
    free(s->authority);
    free(s->scheme);
    free(s->assertion);
    px_buf_cleanup(&s->req_body);
    px_buf_cleanup(&s->resp_body);
    uv_close((uv_handle_t *)&s->timer, free_stream_mem);
    if (l->draining && l->state != CN_LINK_CLOSED)
        cn_link_stream_gone(l);
}

static void on_done(struct cn_origin_xfer *x, CURLcode res)
{
    struct cn_stream *s = (struct cn_stream *)((char *)x - offsetof(struct cn_stream, xfer));
    s->origin_started = 0;
    PX_DEBUG("stream %d: origin done (%s), %zu bytes buffered", s->id, curl_easy_strerror(res),
             px_buf_len(&s->resp_body));
    uv_timer_stop(&s->timer);
    if (s->h2_closed) {
        release(s);
        return;
    }
    if (s->up && res == CURLE_OK && !s->probing) {
        cn_upgrade_connected(s);
        return;
    }
    if (s->probing) {
        char names[400];
        const struct cn_rule *r = s->rule;
        cert_names(s->xfer.easy, names, sizeof(names));
        struct px_buf why;
        px_buf_init(&why);
        int wr;
        if (s->probing == 2)
            wr = px_buf_append_str(&why, s->saw_cert_request ? "origin requires a client "
                                                               "certificate — set originPull "
                                                               "(or originCert/originKey)"
                                                             : s->probe_why);
        else if (names[0])
            wr = px_buf_appendf(&why, "origin certificate is for %s, not %s — set originServerName",
                                names, r->o.origin_server_name ? r->o.origin_server_name : r->host);
        else
            wr = px_buf_append_str(&why, s->probe_why);
        const char *why_s = wr == 0 ? px_buf_cstr(&why) : NULL;
        const char *code = s->probing == 1       ? "origin_tls_verify"
                           : s->saw_cert_request ? "origin_client_cert"
                                                 : "origin_tls";
        s->probing = 0;
        error_response(s, 502, code, why_s ? why_s : "the TLS connection to the origin failed");
        px_buf_cleanup(&why);
    } else if (s->resp_headers_too_large && !s->resp_submitted) {
        error_response(s, 502, "origin_headers_too_large",
                       "the origin's response head is too large (over 64 KiB or 512 fields)");
    } else if (res != CURLE_OK && !s->resp_submitted) {
        int status, probe;
        const char *code;
        char why[600];
        describe_curl(s, res, &status, &code, why, sizeof(why), &probe);
        if (probe) {
            /* Learn the certificate's names before answering. */
            snprintf(s->probe_why, sizeof(s->probe_why), "%s", why);
            PX_DEBUG("stream %d: %s; probing the certificate", s->id, s->origin_err);
            if (s->xfer.raw) {
                cn_origin_cancel(&s->xfer);
                curl_easy_cleanup(s->xfer.easy);
                s->xfer.raw = 0;
            } else {
                cn_origin_easy_put(s->xfer.easy);
            }
            s->xfer.easy = NULL;
            if (start_probe(s, probe) == 0)
                return;
            s->probing = 0;
        }
        error_response_ex(s, status, code, why,
                          s->origin_err[0] ? s->origin_err : curl_easy_strerror(res));
    } else if (!s->resp_submitted) {
        error_response(s, 502, "origin_bad_response", "the origin sent no response headers");
    } else {
        if (res != CURLE_OK) {
            PX_WARN("stream %d: origin failed mid-response: %s", s->id,
                    s->origin_err[0] ? s->origin_err : curl_easy_strerror(res));
            s->resp_failed = 1;
        }
        s->resp_eof = 1;
        if (s->resp_deferred) {
            s->resp_deferred = 0;
            nghttp2_session_resume_data(s->link->h2, s->id);
        }
        cn_link_kick(s->link);
    }
    cn_origin_easy_put(s->xfer.easy);
    s->xfer.easy = NULL;
}

ssize_t cn_stream_read_body(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t len,
                            uint32_t *flags, nghttp2_data_source *src, void *user)
{
    (void)h2;
    (void)id;
    (void)user;
    struct cn_stream *s = src->ptr;
    struct cn_link *l = s->link;
    size_t n = px_buf_read(&s->resp_body, buf, len);
    l->buffered -= n;
    if (px_buf_len(&s->resp_body) == 0) {
        if (s->resp_eof) {
            if (s->resp_failed)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
            *flags |= NGHTTP2_DATA_FLAG_EOF;
        } else if (n == 0) {
            s->resp_deferred = 1;
            px_buf_shrink(&s->resp_body, 0);
        }
    }
    if ((s->xfer.paused & CURLPAUSE_RECV) && px_buf_len(&s->resp_body) <= CN_STREAM_RESP_LOW)
        cn_origin_unpause(&s->xfer, CURLPAUSE_RECV);
    if (s->up && px_buf_len(&s->resp_body) <= CN_STREAM_RESP_LOW)
        cn_upgrade_resume_read(s);
    if (n == 0 && !(*flags & NGHTTP2_DATA_FLAG_EOF))
        return NGHTTP2_ERR_DEFERRED;
    return (ssize_t)n;
}

void cn_stream_link_drained(struct cn_link *l)
{
    for (struct cn_stream *s = l->streams; s; s = s->next)
        if ((s->xfer.paused & CURLPAUSE_RECV) && px_buf_len(&s->resp_body) <= CN_STREAM_RESP_LOW)
            cn_origin_unpause(&s->xfer, CURLPAUSE_RECV);
}

void cn_stream_on_close(struct cn_stream *s, uint32_t error_code)
{
    PX_DEBUG("stream %d closed (error %u), origin %s, %zu bytes buffered, paused %d, "
             "deferred %d, window %d/%d",
             s->id, error_code, s->origin_started ? "active" : "done", px_buf_len(&s->resp_body),
             s->xfer.paused, s->resp_deferred,
             nghttp2_session_get_stream_remote_window_size(s->link->h2, s->id),
             nghttp2_session_get_remote_window_size(s->link->h2));
    s->h2_closed = 1;
    release(s);
}

void cn_stream_destroy(struct cn_stream *s)
{
    s->h2_closed = 1;
    release(s);
}
