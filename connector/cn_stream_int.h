/* cn_stream_int: the stream's state, shared by the files of one concern
 * (an origin request on a tunnel stream): cn_stream.c (the bridge),
 * cn_stream_diag.c (why an origin failed), cn_stream_page.c (answers the
 * connector writes itself) and cn_upgrade.c (a stream that stops being
 * HTTP). Nothing else of the product includes it: the host uses
 * cn_stream.h (tests may read the state they check). */
#ifndef CN_STREAM_INT_H
#define CN_STREAM_INT_H

#include "cn_h1.h"
#include "cn_stream.h"
#include "px_buf.h"
#include "px_nv.h"

#include <curl/curl.h>
#include <string.h>

/* A response head from the origin may have at most this many fields. */
#define CN_STREAM_MAX_RESP_FIELDS 512

/* What the origin's handshake records said (cn_stream_diag.c reads them
 * from curl's raw SSL_DATA_IN): a CertificateRequest, a fatal alert. */
struct cn_tls_trace {
    int rec_type;     /* content type of the record being read */
    int saw_cert_req; /* the origin sent a CertificateRequest */
    int alert;        /* the fatal alert the origin sent, or -1 */
};

struct cn_stream {
    struct cn_stream_host host;
    struct cn_stream_hnode hnode; /* the host's */
    int32_t id;
    /* request */
    char method[16];
    char *path, *authority, *scheme;
    /* The fields kept from the edge, as "name: value\r\n" lines in arrival
     * order (cn_stream_next_field reads them): one buffer, not a list of two
     * allocations per field. */
    struct px_buf req_fields;
    struct curl_slist *req_headers; /* curl's copy of them (curl path only) */
    struct curl_slist *connect_to;
    int has_accept;
    int has_xfh;              /* the edge sent X-Forwarded-Host: do not add a second one */
    char *assertion;          /* the edge's identity assertion (CN_ASSERT_HEADER), or NULL */
    int assertion_repeated;   /* the header came more than once: never valid */
    long long content_length; /* -1 unknown */
    size_t header_bytes;
    int refuse_status; /* 414 / 431: the head broke a cap; answered when complete */
    int req_eof;
    int req_has_body;
    struct px_buf req_body;
    /* response */
    struct cn_origin_xfer xfer;
    struct cn_h1_req h1q; /* ...or the request on the lean client (lean set) */
    int lean;
    int origin_started;
    int resp_submitted;
    int resp_status;
    struct px_nv
        resp_hdrs; /* the head so far, capped (CN_STREAM_MAX_RESP_FIELDS, ..._HEADER_BYTES) */
    int resp_headers_too_large;
    struct px_buf resp_body; /* written only through cn_stream_resp_put */
    int resp_eof;
    int resp_deferred;
    int resp_failed; /* origin failed after headers: reset the stream */
    int h2_closed;
    uv_timer_t timer; /* response-header deadline */
    int is_head;
    char origin_err[CURL_ERROR_SIZE];
    struct cn_ingress *ing;     /* the rule set this request started on (a reference) */
    const struct cn_rule *rule; /* its matching rule */
    struct cn_upgrade *up;      /* WebSocket / TCP relay, when not plain HTTP */
    int is_connect;             /* CONNECT (with :protocol for WebSockets) */
    char protocol[32];
    struct cn_trust_blob *trust; /* the CA blob curl verifies the origin with (a reference) */
    struct cn_probe *probe;      /* while a failed TLS connection is looked at again */
    struct cn_tls_trace trace;   /* of the transfer that presents a client certificate */
    /* metrics and the access log */
    uint64_t t_start;             /* uv_hrtime() when the request's head began */
    uint64_t t_origin;            /* ...when the request went to the origin (0: it did not) */
    int origin_timed;             /* the origin's response head was timed */
    int origin_error_counted;     /* the origin's failure was counted */
    int ws_open;                  /* counted in connector_active_websockets */
    int requested;                /* the head was complete (cn_stream_on_request) */
    unsigned long long bytes_in;  /* request body bytes from the edge */
    unsigned long long bytes_out; /* response body bytes to the edge */
    char *request_id;             /* the edge's X-Request-Id, or NULL */
    char *client;                 /* the browser's address (X-Real-IP, set by the edge), or NULL */
    char log_host[256];           /* the request's host, normalized ("" until checked) */
};

/* ---- the bridge (cn_stream.c), for the other stream files ---- */

/* Adds a response header. Returns 0, or < 0 on no memory or when the head
 * passes 512 fields or CN_STREAM_MAX_HEADER_BYTES (then
 * resp_headers_too_large is set). */
int cn_stream_add_resp_header(struct cn_stream *s, const char *name, size_t nlen, const char *value,
                              size_t vlen);
/* Drops the response headers added so far. */
void cn_stream_clear_resp_headers(struct cn_stream *s);
/* Submits the response (resp_status, headers added so far). Returns 0 or -1. */
int cn_stream_submit(struct cn_stream *s, int with_body);
/* Appends len response-body bytes (the one place the body grows: the host's
 * accounting follows) and lets the session read them. Returns 0 or
 * PX_ERR_NOMEM. */
int cn_stream_resp_put(struct cn_stream *s, const void *data, size_t len);
/* The response body ends here; failed: the origin broke off (the stream is
 * reset once the bytes before are out). */
void cn_stream_resp_end(struct cn_stream *s, int failed);
/* n request-body bytes left req_body toward the origin (or were dropped):
 * credits the tunnel. */
void cn_stream_req_taken(struct cn_stream *s, size_t n);
/* Resets the stream (INTERNAL_ERROR): what cannot be answered. */
void cn_stream_reset(struct cn_stream *s);
/* Sets curl options shared by every origin transfer of the rule (URL, TLS,
 * Unix socket, timeouts). Returns 0 or < 0. */
int cn_stream_origin_setup(struct cn_stream *s, CURL *e);
/* Gives the transfer's easy handle back (pooled, or freed when it was a
 * connect-only one) after cancelling it. */
void cn_stream_xfer_drop(struct cn_stream *s);

/* ---- the lean origin client (cn_h1_stream.c) ---- */

/* Whether s's rule goes through the lean client: plain http:// or unix:
 * with env.h1 set (NULL: curl for everything). */
int cn_stream_h1_eligible(const struct cn_stream *s);
/* Starts s's request on env.h1 (s->lean, s->origin_started set). Returns 0
 * or -1 (no memory). */
int cn_stream_h1_start(struct cn_stream *s);

/* ---- metrics (cn_stream.c) ---- */

/* The origin's response head arrived: times it (once per request). */
void cn_stream_origin_answered(struct cn_stream *s);
/* The origin request failed for cause (counted once per request). */
void cn_stream_origin_error(struct cn_stream *s, enum cn_origin_cause cause);
/* Body bytes that went to / came from the origin. */
void cn_stream_to_origin(struct cn_stream *s, size_t n);
void cn_stream_from_origin(struct cn_stream *s, size_t n);
/* A WebSocket of s started relaying (counted until s goes away). */
void cn_stream_websocket_open(struct cn_stream *s);

/* ---- local answers (cn_stream_page.c) ---- */

/* Answers with an error page; detail goes on the page and in the log line,
 * log_extra (curl's own words, which may name files) only in the log. */
void cn_stream_error(struct cn_stream *s, int status, const char *code, const char *detail,
                     const char *log_extra);
/* The same page, without the log line (the caller logged). */
void cn_stream_error_page(struct cn_stream *s, int status, const char *code, const char *detail);
/* The hello_world service's page, echoing the request. */
void cn_stream_hello(struct cn_stream *s);

/* ---- origin diagnostics (cn_stream_diag.c) ---- */

/* The origin transfer failed with res before a response: answers with the
 * cause and the setting that fixes it, first connecting again without
 * verification when only a second look tells (a certificate's names, a
 * client certificate asked for, the alert the origin sent). */
void cn_stream_origin_failed(struct cn_stream *s, CURLcode res);
/* The lean client's request failed with err before a response (uv_status:
 * the libuv error behind it, for the log): answers with the same codes and
 * words as cn_stream_origin_failed gives for curl's equivalent failure. */
void cn_stream_h1_failed(struct cn_stream *s, enum cn_h1_err err, int uv_status);
/* The origin's response head broke the caps: answers 502
 * origin_headers_too_large (either client). */
void cn_stream_head_too_large(struct cn_stream *s);
/* A look-again transfer finished: answers the request. Returns 1 when x
 * was one (s->probe set), else 0. */
int cn_stream_probe_done(struct cn_stream *s);
/* Frees the probe state, if any. */
void cn_stream_probe_free(struct cn_stream *s);
/* Has curl hand e's handshake records to s->trace (reset here). For the
 * transfers that present a client certificate: an origin refusing it says
 * so with an alert, after the handshake under TLS 1.3, which only the
 * failing connection itself shows. Costs curl's verbose formatting, so
 * only those transfers pay it. */
void cn_stream_trace_tls(struct cn_stream *s, CURL *e);

/* Walks s->req_fields: *at starts at 0; each call sets *line and *len to the
 * next "name: value" (without its CRLF) and returns 1, or returns 0 at
 * the end. */
static inline int cn_stream_next_field(const struct cn_stream *s, size_t *at, const char **line,
                                       size_t *len)
{
    const char *base = (const char *)px_buf_head(&s->req_fields);
    size_t total = px_buf_len(&s->req_fields);
    if (*at >= total)
        return 0;
    const char *p = base + *at;
    const char *end = memchr(p, '\r', total - *at); /* values hold no CR (px_hdr_valid) */
    size_t n = end ? (size_t)(end - p) : total - *at;
    *line = p;
    *len = n;
    *at += n + 2;
    return 1;
}

#endif
