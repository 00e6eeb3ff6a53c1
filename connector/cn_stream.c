/* cn_stream: the bridge between a tunnel stream and its origin transfer.
 * Answers written locally are in cn_stream_page.c, the explanations of
 * origin failures in cn_stream_diag.c. */
#include "cn_assert.h"
#include "cn_creds.h"
#include "cn_ingress.h"
#include "cn_metrics.h"
#include "cn_stream_int.h"
#include "cn_upgrade.h"
#include "px_err.h"
#include "px_headers.h"
#include "px_nv.h"
#include "px_hostname.h"
#include "px_log.h"
#include "px_path.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static void on_done(struct cn_origin_xfer *x, CURLcode res);

/* The most of the edge's request id and client address an access line
 * carries. */
#define LOG_FIELD_MAX 128

struct cn_stream *cn_stream_new(const struct cn_stream_host *host, int32_t id)
{
    struct cn_stream *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->host = *host;
    s->id = id;
    s->content_length = -1;
    px_buf_init(&s->req_body);
    px_buf_init(&s->resp_body);
    px_buf_init(&s->req_fields);
    px_buf_set_min_cap(&s->req_fields, 512);
    px_nv_init(&s->resp_hdrs, CN_STREAM_MAX_RESP_FIELDS, CN_STREAM_MAX_HEADER_BYTES);
    s->xfer.on_done = on_done;
    uv_timer_init(host->env.loop, &s->timer);
    s->timer.data = s;
    s->t_start = uv_hrtime();
    cn_metrics_stream_open(host->env.metrics);
    return s;
}

int32_t cn_stream_id(const struct cn_stream *s)
{
    return s->id;
}

struct cn_stream_hnode *cn_stream_hnode(struct cn_stream *s)
{
    return &s->hnode;
}

void cn_stream_reset(struct cn_stream *s)
{
    s->host.ops->reset(s->host.arg, s->id, NGHTTP2_INTERNAL_ERROR);
}

void cn_stream_req_taken(struct cn_stream *s, size_t n)
{
    if (n)
        s->host.ops->consume(s->host.arg, s->id, n);
}

/* The session may read the body again: it had run dry, or it ended. */
static void resume(struct cn_stream *s)
{
    if (s->resp_deferred) {
        s->resp_deferred = 0;
        s->host.ops->resume(s->host.arg, s->id);
    }
    s->host.ops->kick(s->host.arg);
}

int cn_stream_resp_put(struct cn_stream *s, const void *data, size_t len)
{
    if (px_buf_append(&s->resp_body, data, len) < 0)
        return PX_ERR_NOMEM;
    s->host.ops->hold(s->host.arg, (ssize_t)len);
    resume(s);
    return 0;
}

void cn_stream_resp_end(struct cn_stream *s, int failed)
{
    if (failed)
        s->resp_failed = 1;
    s->resp_eof = 1;
    resume(s);
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
    if (IS("tunnel-control"))
        return 0; /* the session's own marker (rt_tunnel): never forwarded */
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
    /* For the access log: what the edge says of the request (it replaces
     * whatever the browser sent in these fields). */
    if (IS("x-request-id") && !s->request_id &&
        !(s->request_id = dupn(value, vlen < LOG_FIELD_MAX ? vlen : LOG_FIELD_MAX)))
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (IS("x-real-ip") && !s->client &&
        !(s->client = dupn(value, vlen < LOG_FIELD_MAX ? vlen : LOG_FIELD_MAX)))
        return NGHTTP2_ERR_CALLBACK_FAILURE;
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
    struct px_buf *f = &s->req_fields;
    uint8_t *p = px_buf_reserve(f, nlen + vlen + 4);
    if (!p)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    memcpy(p, name, nlen);
    p[nlen] = ':';
    p[nlen + 1] = ' ';
    memcpy(p + nlen + 2, value, vlen);
    p[nlen + 2 + vlen] = '\r';
    p[nlen + 3 + vlen] = '\n';
    px_buf_commit(f, nlen + vlen + 4);
    return 0;
}

int cn_stream_add_resp_header(struct cn_stream *s, const char *name, size_t nlen, const char *value,
                              size_t vlen)
{
    int rc = px_nv_add(&s->resp_hdrs, name, nlen, value, vlen, PX_NV_LOWER);
    if (rc == PX_ERR_TOO_LARGE)
        s->resp_headers_too_large = 1;
    return rc < 0 ? -1 : 0;
}

void cn_stream_clear_resp_headers(struct cn_stream *s)
{
    px_nv_clear(&s->resp_hdrs);
}

int cn_stream_submit(struct cn_stream *s, int with_body)
{
    char status[PX_NV_STATUS_SIZE];
    nghttp2_nv *nv = NULL;
    int rv = px_nv_response(s->resp_status, s->resp_hdrs.nv, s->resp_hdrs.n, status, &nv);
    if (rv == 0)
        rv = s->host.ops->submit(s->host.arg, s, s->id, nv, s->resp_hdrs.n + 1, with_body);
    free(nv);
    cn_stream_clear_resp_headers(s);
    if (rv != 0)
        return -1;
    s->resp_submitted = 1;
    s->host.ops->kick(s->host.arg);
    return 0;
}

static void error_response(struct cn_stream *s, int status, const char *code, const char *detail)
{
    cn_stream_error(s, status, code, detail, NULL);
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
        cn_stream_clear_resp_headers(s);
        s->resp_headers_too_large = 0;
        s->resp_status = sp ? atoi(sp + 1) : 0;
        return len;
    }
    if (n == 0) {
        if (s->resp_status >= 100 && s->resp_status < 200)
            return len; /* interim response; the final one follows */
        if (s->resp_status < 200 || s->resp_status > 599)
            return 0; /* aborts the transfer: on_done answers 502 */
        uv_timer_stop(&s->timer);
        cn_stream_origin_answered(s);
        int body = !s->is_head && s->resp_status != 204 && s->resp_status != 304;
        if (!body)
            s->resp_eof = 1;
        return cn_stream_submit(s, body) < 0 ? 0 : len;
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
    if (cn_stream_add_resp_header(s, data, nlen, v, vlen) < 0)
        return 0; /* aborts the transfer: on_done answers 502 */
    return len;
}

static size_t on_resp_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct cn_stream *s = arg;
    size_t len = size * nmemb;
    if (px_buf_len(&s->resp_body) >= CN_STREAM_RESP_HIGH || s->host.ops->hold(s->host.arg, 0)) {
        s->xfer.paused |= CURLPAUSE_RECV;
        return CURL_WRITEFUNC_PAUSE;
    }
    if (cn_stream_resp_put(s, data, len) < 0)
        return 0;
    cn_stream_from_origin(s, len);
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
    cn_stream_req_taken(s, n);
    cn_stream_to_origin(s, n);
    /* Upload progress counts as origin activity for the response deadline. */
    if (!s->resp_submitted)
        uv_timer_again(&s->timer);
    return n;
}

static void on_deadline(uv_timer_t *t)
{
    struct cn_stream *s = t->data;
    if (s->resp_submitted || !s->origin_started)
        return;
    cn_stream_xfer_drop(s);
    cn_stream_origin_error(s, CN_ORIGIN_TIMEOUT);
    char detail[160];
    snprintf(detail, sizeof(detail), "the origin did not respond within %u s",
             s->host.env.response_timeout_ms / 1000);
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
    struct cn_creds *creds = s->host.env.ops->creds(s->host.env.arg);
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
    if (o->origin_cert || o->origin_pull)
        cn_stream_trace_tls(s, e); /* a refusal of the certificate is an alert */
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
    if (r->o.disable_chunked && s->req_has_body && s->content_length < 0) {
        error_response(s, 411, "length_required",
                       "this service takes request bodies with a Content-Length only "
                       "(disableChunkedEncoding)");
        return 0;
    }
    if (cn_stream_h1_eligible(s)) {
        if (cn_stream_h1_start(s) < 0)
            return -1;
        uv_timer_start(&s->timer, on_deadline, s->host.env.response_timeout_ms,
                       s->host.env.response_timeout_ms);
        return 0;
    }
    CURL *e = cn_origin_easy_get(s->host.env.origin);
    if (!e)
        return -1;
    s->xfer.easy = e;
    if (cn_stream_origin_setup(s, e) < 0)
        return -1;
    /* curl's list of the kept fields, then Host and the rest, as before. */
    struct curl_slist *h = s->req_headers;
    size_t at = 0, ll;
    const char *line;
    char hdr[700];
    while (cn_stream_next_field(s, &at, &line, &ll)) {
        char *d = malloc(ll + 1);
        if (!d)
            return -1;
        memcpy(d, line, ll);
        d[ll] = '\0';
        struct curl_slist *nl = curl_slist_append(h, d);
        free(d);
        if (!nl)
            return -1;
        h = s->req_headers = nl;
    }
    snprintf(hdr, sizeof(hdr), "Host: %s",
             r->o.http_host_header ? r->o.http_host_header : s->authority);
    h = curl_slist_append(h, hdr);
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
    /* Per transfer: 16 KiB bounds memory with hundreds of concurrent streams
     * (the 64 KiB it was made 20 MB of the connector's peak). */
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 16L * 1024);
    curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 16L * 1024);
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
    if (cn_origin_start(s->host.env.origin, &s->xfer) < 0)
        return -1;
    s->origin_started = 1;
    s->t_origin = uv_hrtime();
    uv_timer_start(&s->timer, on_deadline, s->host.env.response_timeout_ms,
                   s->host.env.response_timeout_ms);
    return 0;
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
    int v = s->assertion_repeated
                ? PX_JWT_MALFORMED
                : cn_assert_check(s->host.ops->assert_keys(s->host.arg), s->assertion,
                                  s->assertion ? strlen(s->assertion) : 0, audience,
                                  (long long)time(NULL));
    if (v == PX_JWT_OK)
        return 0;
    if (v < 0) {
        /* The check could not be made (memory, wolfCrypt): not the
         * client's fault, and not a verdict on its assertion. */
        PX_ERROR("stream %d: cannot check the access assertion for rule #%zu: %s", s->id,
                 r->index + 1, px_strerror(v));
        error_response(s, 502, "internal",
                       v == PX_ERR_NOMEM ? "the connector is out of memory"
                                         : "the connector could not check the access assertion");
        return -1;
    }
    const char *why = cn_assert_verdict_str(v);
    PX_INFO("stream %d: access denied by rule #%zu for %s %s: %s", s->id, r->index + 1, s->method,
            host, why);
    struct px_buf detail;
    px_buf_init(&detail);
    int rc = px_buf_appendf(&detail, "access denied: %s", why);
    cn_stream_error_page(s, 403, "access_denied", rc == 0 ? px_buf_cstr(&detail) : "access denied");
    px_buf_cleanup(&detail);
    return -1;
}

/* originPull: answers 502 and returns -1 while the edge has not issued the
 * origin-pull certificate (or it expired unrenewed): the origin would only
 * refuse the request. */
static int check_origin_pull(struct cn_stream *s)
{
    struct cn_creds *creds = s->host.env.ops->creds(s->host.env.arg);
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
    s->requested = 1;
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
    memcpy(s->log_host, host, sizeof(s->log_host));
    if (normalize_path(s) < 0)
        return 0;
    s->rule = s->host.env.ops->route(s->host.env.arg, host, s->path, &s->ing);
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
        cn_stream_hello(s);
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
    s->bytes_in += len;
    if (s->up) {
        if (px_buf_append(&s->req_body, data, len) < 0)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        cn_upgrade_on_data(s);
        return 0;
    }
    if (!s->origin_started) {
        cn_stream_req_taken(s, len); /* nobody will read it: drop */
        return 0;
    }
    if (px_buf_append(&s->req_body, data, len) < 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (s->lean)
        cn_h1_kick(&s->h1q);
    else
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
    if (s->origin_started && s->lean)
        cn_h1_kick(&s->h1q);
    else if (s->origin_started)
        cn_origin_unpause(&s->xfer, CURLPAUSE_SEND);
}

/* ---- metrics and the access log ---- */

void cn_stream_origin_answered(struct cn_stream *s)
{
    if (s->origin_timed || !s->t_origin)
        return;
    s->origin_timed = 1;
    cn_metrics_origin_response(s->host.env.metrics, s->rule,
                               (double)(uv_hrtime() - s->t_origin) / 1e9);
}

void cn_stream_origin_error(struct cn_stream *s, enum cn_origin_cause cause)
{
    if (s->origin_error_counted)
        return;
    s->origin_error_counted = 1;
    cn_metrics_origin_error(s->host.env.metrics, cause);
}

void cn_stream_to_origin(struct cn_stream *s, size_t n)
{
    cn_metrics_bytes_to_origin(s->host.env.metrics, n);
}

void cn_stream_from_origin(struct cn_stream *s, size_t n)
{
    cn_metrics_bytes_from_origin(s->host.env.metrics, n);
}

void cn_stream_websocket_open(struct cn_stream *s)
{
    if (s->ws_open)
        return;
    s->ws_open = 1;
    cn_metrics_websocket_open(s->host.env.metrics);
}

/* The request is over: its counters, and its access line. */
static void account(struct cn_stream *s)
{
    struct cn_metrics *m = s->host.env.metrics;
    int status = s->resp_submitted ? s->resp_status : 0;
    if (s->ws_open)
        cn_metrics_websocket_close(m);
    s->ws_open = 0;
    cn_metrics_stream_close(m);
    /* A head that never completed (the session's control stream is one,
     * dropped once its marker shows) was no request. */
    if (!s->requested)
        return;
    cn_metrics_request_done(m, s->rule, status);
    if (!s->host.env.access_log)
        return;
    char rule[CN_METRICS_RULE_LEN];
    const struct px_access_entry e = {
        .hostname = s->log_host[0] ? s->log_host : s->authority,
        .method = s->method[0] ? s->method : NULL,
        .path = s->path,
        .status = status,
        .bytes_in = s->bytes_in,
        .bytes_out = s->bytes_out,
        .duration_s = (double)(uv_hrtime() - s->t_start) / 1e9,
        .request_id = s->request_id,
        .client = s->client,
        .rule = s->rule ? cn_metrics_rule_label(s->rule, rule) : NULL,
    };
    px_log_access(&e);
}

static void free_stream_mem(uv_handle_t *h)
{
    struct cn_stream *s = h->data;
    free(s);
}

void cn_stream_xfer_drop(struct cn_stream *s)
{
    if (s->lean) {
        cn_h1_req_cleanup(&s->h1q); /* a connection busy with it is closed */
        s->lean = 0;
        s->origin_started = 0;
        return;
    }
    cn_origin_cancel(&s->xfer);
    s->origin_started = 0;
    if (s->xfer.easy) {
        if (s->xfer.raw)
            curl_easy_cleanup(s->xfer.easy); /* its connection is single-use */
        else
            cn_origin_easy_put(s->host.env.origin, s->xfer.easy);
    }
    s->xfer.easy = NULL;
    s->xfer.raw = 0;
}

static void release(struct cn_stream *s)
{
    account(s);
    if (s->up)
        cn_upgrade_release(s);
    cn_stream_xfer_drop(s);
    cn_stream_probe_free(s);
    s->host.ops->hold(s->host.arg, -(ssize_t)px_buf_len(&s->resp_body));
    /* Upload bytes curl never took still hold connection-level credit. */
    cn_stream_req_taken(s, px_buf_len(&s->req_body));
    curl_slist_free_all(s->req_headers);
    curl_slist_free_all(s->connect_to);
    cn_trust_blob_unref(s->trust);
    s->trust = NULL;
    if (s->ing)
        cn_ingress_unref(s->ing);
    cn_stream_clear_resp_headers(s);
    px_nv_cleanup(&s->resp_hdrs);
    free(s->path);
    free(s->authority);
    free(s->scheme);
    free(s->assertion);
    free(s->request_id);
    free(s->client);
    px_buf_cleanup(&s->req_body);
    px_buf_cleanup(&s->resp_body);
    px_buf_cleanup(&s->req_fields);
    s->host.ops->gone(s->host.arg, s);
    uv_close((uv_handle_t *)&s->timer, free_stream_mem);
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
    if (s->up && res == CURLE_OK && !s->probe) {
        cn_upgrade_connected(s);
        return;
    }
    if (cn_stream_probe_done(s)) {
        /* answered */
    } else if (s->resp_headers_too_large && !s->resp_submitted) {
        cn_stream_head_too_large(s);
    } else if (res != CURLE_OK && !s->resp_submitted) {
        cn_stream_origin_failed(s, res);
        if (s->probe)
            return; /* looking again: the probe's transfer is running */
    } else if (!s->resp_submitted) {
        cn_stream_origin_error(s, CN_ORIGIN_BAD_RESPONSE);
        error_response(s, 502, "origin_bad_response", "the origin sent no response headers");
    } else {
        if (res != CURLE_OK) {
            cn_stream_origin_error(s, cn_origin_cause_of(res));
            PX_WARN("stream %d: origin failed mid-response: %s", s->id,
                    s->origin_err[0] ? s->origin_err : curl_easy_strerror(res));
        }
        cn_stream_resp_end(s, res != CURLE_OK);
    }
    cn_stream_xfer_drop(s);
}

ssize_t cn_stream_read_body(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t len,
                            uint32_t *flags, nghttp2_data_source *src, void *user)
{
    (void)h2;
    (void)id;
    (void)user;
    struct cn_stream *s = src->ptr;
    size_t n = px_buf_read(&s->resp_body, buf, len);
    s->host.ops->hold(s->host.arg, -(ssize_t)n);
    s->bytes_out += n;
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
    if (s->lean && s->h1q.read_paused && px_buf_len(&s->resp_body) <= CN_STREAM_RESP_LOW)
        cn_h1_resume(&s->h1q);
    if (s->up && px_buf_len(&s->resp_body) <= CN_STREAM_RESP_LOW)
        cn_upgrade_resume_read(s);
    if (n == 0 && !(*flags & NGHTTP2_DATA_FLAG_EOF))
        return NGHTTP2_ERR_DEFERRED;
    return (ssize_t)n;
}

void cn_stream_on_room(struct cn_stream *s)
{
    if ((s->xfer.paused & CURLPAUSE_RECV) && px_buf_len(&s->resp_body) <= CN_STREAM_RESP_LOW)
        cn_origin_unpause(&s->xfer, CURLPAUSE_RECV);
    if (s->lean && s->h1q.read_paused && px_buf_len(&s->resp_body) <= CN_STREAM_RESP_LOW)
        cn_h1_resume(&s->h1q);
}

void cn_stream_on_close(struct cn_stream *s, uint32_t error_code)
{
    PX_DEBUG("stream %d closed (error %u), origin %s, %zu bytes buffered, paused %d, deferred %d",
             s->id, error_code, s->origin_started ? "active" : "done", px_buf_len(&s->resp_body),
             s->xfer.paused, s->resp_deferred);
    s->h2_closed = 1;
    release(s);
}

void cn_stream_destroy(struct cn_stream *s)
{
    s->h2_closed = 1;
    release(s);
}
