/* cn_stream: one proxied request, an HTTP/2 stream from the edge bridged to
 * the origin through libcurl, with bounded buffers both ways:
 *  request body:  h2 DATA -> req buffer -> curl read callback (window credit
 *                 returned only as curl takes bytes; curl paused when empty)
 *  response body: curl write callback -> resp buffer -> h2 data source
 *                 (curl paused above the high mark, resumed below the low mark) */
#ifndef CN_STREAM_H
#define CN_STREAM_H

#include "cn_origin.h"
#include "px_buf.h"

#include <nghttp2/nghttp2.h>
#include <uv.h>

#include <stdint.h>

#define CN_STREAM_RESP_HIGH (256 * 1024)
#define CN_STREAM_RESP_LOW (64 * 1024)
#define CN_LINK_BUFFER_CAP (32 * 1024 * 1024)
/* Request caps, as at the edge: a longer :path is answered 414, a larger
 * header block (names + values + 32 per field) 431. Response heads from the
 * origin are capped at the same size. */
#define CN_STREAM_MAX_PATH (16 * 1024)
#define CN_STREAM_MAX_HEADER_BYTES (64 * 1024)

struct cn_link;
struct cn_rule;
struct cn_ingress;

struct cn_stream {
    struct cn_link *link;
    int32_t id;
    struct cn_stream *next, *prev; /* link's list */
    /* request */
    char method[16];
    char *path, *authority, *scheme;
    struct curl_slist *req_headers;
    struct curl_slist *connect_to;
    int has_accept;
    int has_xfh;              /* the edge sent X-Forwarded-Host: do not add a second one */
    char *assertion;          /* the edge's identity assertion (CN_ASSERT_HEADER), or NULL */
    int assertion_repeated;   /* the header came more than once: never valid */
    long long content_length; /* -1 unknown */
    size_t header_bytes;
    int refuse_status; /* 414 / 431: the head broke a cap; answered when complete */
    int is_control;
    int req_eof;
    int req_has_body;
    struct px_buf req_body;
    /* response */
    struct cn_origin_xfer xfer;
    int origin_started;
    int resp_submitted;
    int resp_status;
    nghttp2_nv *resp_nv;
    size_t n_resp_nv, cap_resp_nv;
    size_t resp_header_bytes; /* of resp_nv, capped at CN_STREAM_MAX_HEADER_BYTES */
    int resp_headers_too_large;
    struct px_buf resp_body;
    int resp_eof;
    int resp_deferred;
    int resp_failed; /* origin failed after headers: reset the stream */
    int h2_closed;
    uv_timer_t timer; /* response-header deadline */
    int timer_open;
    int is_head;
    char origin_err[CURL_ERROR_SIZE];
    struct cn_ingress *ing;     /* the rule set this request started on (a reference) */
    const struct cn_rule *rule; /* its matching rule */
    struct cn_upgrade *up;      /* WebSocket / TCP relay, when not plain HTTP */
    int is_connect;             /* CONNECT (with :protocol for WebSockets) */
    char protocol[32];
    struct cn_trust_blob *trust; /* the CA blob curl verifies the origin with (a reference) */
    int probing; /* 1: reading certificate names, 2: watching for a client-certificate request */
    int saw_cert_request;
    char probe_why[600];
};

/* Creates a stream for stream_id. Returns NULL on no memory. */
struct cn_stream *cn_stream_new(struct cn_link *l, int32_t id);
/* Accumulates one header field. Returns 0 or an nghttp2 error code to reset. */
int cn_stream_on_header(struct cn_stream *s, const uint8_t *name, size_t nlen, const uint8_t *value,
                        size_t vlen);
/* Headers complete; end_stream when there is no body. Starts the origin request
 * or a local response. Returns 0 or < 0 to reset the stream. */
int cn_stream_on_request(struct cn_stream *s, int end_stream);
/* Request body bytes (already counted against flow control). */
int cn_stream_on_data(struct cn_stream *s, const uint8_t *data, size_t len);
void cn_stream_on_end(struct cn_stream *s);
/* The h2 stream closed; frees s once the origin transfer is gone too. */
void cn_stream_on_close(struct cn_stream *s, uint32_t error_code);
/* Link teardown: cancels the origin transfer and frees s. */
void cn_stream_destroy(struct cn_stream *s);
/* nghttp2 data source read callback for response bodies. */
ssize_t cn_stream_read_body(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t len,
                            uint32_t *flags, nghttp2_data_source *src, void *user);
/* For cn_upgrade: */
void cn_stream_error(struct cn_stream *s, int status, const char *code, const char *detail,
                     const char *log_extra);
/* Returns 0, or < 0 on no memory or when the head passes 512 fields or
 * CN_STREAM_MAX_HEADER_BYTES (then resp_headers_too_large is set). */
int cn_stream_add_resp_header(struct cn_stream *s, const char *name, size_t nlen, const char *value,
                              size_t vlen);
/* Submits the response (resp_status, headers added so far). */
int cn_stream_submit(struct cn_stream *s, int with_body);
/* resp_body grew or ended: let nghttp2 read it. */
void cn_stream_resume(struct cn_stream *s);
/* Sets curl options shared by every origin transfer of the rule (URL, TLS,
 * Unix socket, timeouts). Returns 0 or < 0. */
int cn_stream_origin_setup(struct cn_stream *s, CURL *e);

/* Resumes streams paused by the link-wide cap once the link drained. */
void cn_stream_link_drained(struct cn_link *l);

#endif
