/* cn_stream: one proxied request, an HTTP/2 stream from the edge bridged to
 * the origin through the lean HTTP/1.1 client (cn_h1.h: plain http:// and
 * unix: origins, when env.h1 is set) or libcurl (everything else), with
 * bounded buffers both ways:
 *  request body:  h2 DATA -> req buffer -> curl read callback / cn_h1 upload
 *                 (window credit returned only as bytes are taken; paused
 *                 when empty)
 *  response body: curl write callback / cn_h1 body -> resp buffer -> h2 data
 *                 source (origin reads stop above the high mark or while the
 *                 host is over its cap, and resume below the low mark)
 *
 * A stream knows only its host (struct cn_stream_host), handed to it at
 * creation: the functions that put its response on the wire (the carrying
 * link's) and its environment (struct cn_stream_env: the loop, the origin
 * context, the response deadline, the rule lookup and the certificates,
 * the supervisor's). In tests both are fakes. The stream never sees the
 * link, the supervisor or the HTTP/2 session.
 *
 * Errors: the cn_stream_on_* functions return 0, or an nghttp2 error code
 * the host returns from its nghttp2 callback. NGHTTP2_ERR_TEMPORAL_CALLBACK_
 * FAILURE resets this stream only (a malformed request); only
 * NGHTTP2_ERR_CALLBACK_FAILURE (out of memory) is fatal for the link, as
 * nghttp2_is_fatal() says. Every other failure of a request (origin down,
 * refused, timed out, a head too large) is answered on the stream itself
 * with an error page and never reaches the link. */
#ifndef CN_STREAM_H
#define CN_STREAM_H

#include "cn_origin.h"
#include "px_list.h"

#include <nghttp2/nghttp2.h>
#include <uv.h>

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CN_STREAM_RESP_HIGH (256 * 1024)
#define CN_STREAM_RESP_LOW (64 * 1024)
/* Request caps, as at the edge: a longer :path is answered 414, a larger
 * header block (names + values + 32 per field) 431. Response heads from the
 * origin are capped at the same size. */
#define CN_STREAM_MAX_PATH (16 * 1024)
#define CN_STREAM_MAX_HEADER_BYTES (64 * 1024)

struct cn_stream;
struct cn_rule;
struct cn_ingress;
struct cn_assert_keys;
struct cn_creds;
struct cn_metrics;

/* What every stream of the connector shares, whichever link carries it:
 * the loop, its origin context, the response deadline, the rule set and the
 * tunnel's certificates (the supervisor's, in the daemon). */
struct cn_stream_env_ops {
    /* The rule for host/path in the current rule set, or NULL; *ing gets a
     * reference to that set, which the stream drops when it ends. */
    const struct cn_rule *(*route)(void *arg, const char *host, const char *path,
                                   struct cn_ingress **ing);
    /* The tunnel's certificates (origin CA, origin-pull), or NULL. */
    struct cn_creds *(*creds)(void *arg);
};

struct cn_stream_env {
    const struct cn_stream_env_ops *ops;
    void *arg;
    uv_loop_t *loop;
    struct cn_origin *origin;
    /* The loop's lean HTTP/1.1 client (cn_h1.h) for plain http:// and unix:
     * origins; NULL: libcurl serves every origin. */
    struct cn_h1 *h1;
    unsigned response_timeout_ms; /* origin must answer (headers) within this */
    /* The connector's metrics (cn_metrics.h; NULL: none are kept), and
     * whether each request ends with an access-log line (px_log_access). */
    struct cn_metrics *metrics;
    int access_log;
};

/* What a stream asks of the connection carrying it (a cn_link in the
 * daemon). Every function gets the host's arg first; none may free the
 * stream (it frees itself on close). */
struct cn_stream_host_ops {
    /* Submits the response head nv[n] (":status" first) on stream id. With
     * with_body, the body is read through cn_stream_read_body with
     * source.ptr = s. Returns 0 or < 0. */
    int (*submit)(void *arg, struct cn_stream *s, int32_t id, const nghttp2_nv *nv, size_t n,
                  int with_body);
    /* Resets stream id with an HTTP/2 error code. */
    void (*reset)(void *arg, int32_t id, uint32_t error_code);
    /* n request-body bytes of stream id were taken (or dropped): return the
     * flow-control credit. Also called after the stream closed, for bytes
     * it still held: the connection's credit must come back. */
    void (*consume)(void *arg, int32_t id, size_t n);
    /* Stream id's data source had said "deferred" and now has bytes (or its
     * end): let the session read it again. */
    void (*resume)(void *arg, int32_t id);
    /* Output is pending: flush at the next opportunity. */
    void (*kick)(void *arg);
    /* The host holds response bytes for all its streams under one cap:
     * delta (> 0 more, < 0 fewer) changes what this stream holds; returns
     * nonzero while the host is over its cap (the stream stops reading the
     * origin until cn_stream_on_room). */
    int (*hold)(void *arg, ssize_t delta);
    /* The stream is going away; called once, as its last use of the host. */
    void (*gone)(void *arg, struct cn_stream *s);
    /* The edge's identity-assertion keys that arrived on this connection
     * (NULL: none yet), valid for the current callback only. */
    const struct cn_assert_keys *(*assert_keys)(void *arg);
};

struct cn_stream_host {
    const struct cn_stream_host_ops *ops; /* the carrying connection's */
    void *arg;
    struct cn_stream_env env; /* the connector's */
};

/* A node by which the host keeps its streams in a list; the stream itself
 * never reads or writes it. */
struct cn_stream_hnode {
    struct px_list_node node;
    struct cn_stream *stream; /* the stream holding this node, set by the host */
};
struct cn_stream_hnode *cn_stream_hnode(struct cn_stream *s);

/* Creates a stream for stream_id on host (copied). Returns NULL on no memory. */
struct cn_stream *cn_stream_new(const struct cn_stream_host *host, int32_t id);
/* The stream's HTTP/2 id. */
int32_t cn_stream_id(const struct cn_stream *s);
/* Accumulates one header field. Returns 0 or an nghttp2 error code. */
int cn_stream_on_header(struct cn_stream *s, const uint8_t *name, size_t nlen, const uint8_t *value,
                        size_t vlen);
/* Headers complete; end_stream when there is no body. Starts the origin
 * request or answers locally. Returns 0 or < 0 to reset the stream. */
int cn_stream_on_request(struct cn_stream *s, int end_stream);
/* Request body bytes (already counted against flow control). Returns 0 or
 * NGHTTP2_ERR_CALLBACK_FAILURE (no memory). */
int cn_stream_on_data(struct cn_stream *s, const uint8_t *data, size_t len);
/* The request ended (END_STREAM). */
void cn_stream_on_end(struct cn_stream *s);
/* The h2 stream closed; frees s once the origin transfer is gone too. */
void cn_stream_on_close(struct cn_stream *s, uint32_t error_code);
/* Host teardown: cancels the origin transfer and frees s. */
void cn_stream_destroy(struct cn_stream *s);
/* nghttp2 data source read callback for response bodies (source.ptr = s). */
ssize_t cn_stream_read_body(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t len,
                            uint32_t *flags, nghttp2_data_source *src, void *user);
/* The host went below its cap: read the origin again if this stream had
 * stopped for it. */
void cn_stream_on_room(struct cn_stream *s);

#endif
