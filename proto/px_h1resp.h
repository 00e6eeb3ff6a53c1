/* px_h1resp: an HTTP/1.1 response read from an origin, I/O-free (bytes in,
 * callbacks out), over http_parser. Interim 1xx responses are skipped, the
 * body is handed over dechunked (Content-Length, chunked, or until the
 * origin closes), trailers are dropped. The head of the final response is
 * reported field by field, then once complete; a field split across feeds
 * is put together first, bounded by the parser's own head limit
 * (HTTP_MAX_HEADER_SIZE, 80 KiB).
 *
 * Errors are typed (enum px_h1resp_err): the caller maps them to its
 * answer, never a message. */
#ifndef PX_H1RESP_H
#define PX_H1RESP_H

#include "px_buf.h"

#include <http_parser.h>
#include <stddef.h>

enum px_h1resp_err {
    PX_H1RESP_OK = 0,
    PX_H1RESP_BAD = -1,       /* not a valid HTTP/1.x response (or a status outside 200-599) */
    PX_H1RESP_TOO_LARGE = -2, /* the head is over the parser's limit, or ops said so */
    PX_H1RESP_ABORTED = -3,   /* a callback returned < 0 (no memory, the caller's cap) */
    PX_H1RESP_TRUNCATED = -4, /* the origin closed before the response was complete */
    PX_H1RESP_NOMEM = -5,
};

struct px_h1resp_ops {
    /* One field of the final response's head (name and value as sent, the
     * value without surrounding blanks). Returns 0, PX_H1RESP_TOO_LARGE or
     * another value < 0 to abort. */
    int (*field)(void *arg, const char *name, size_t nlen, const char *value, size_t vlen);
    /* The final head is complete: status (200-599), and whether a body
     * follows. Returns 0 or < 0 to abort. */
    int (*head)(void *arg, int status, int has_body);
    /* Body bytes (dechunked). Returns 0 or < 0 to abort. */
    int (*body)(void *arg, const char *data, size_t len);
};

struct px_h1resp {
    http_parser p;
    const struct px_h1resp_ops *ops;
    void *arg;
    int head_request;    /* the request was HEAD: no body, whatever the head says */
    struct px_buf name;  /* the field being read */
    struct px_buf value; /* ...its value */
    /* Or, while one piece of it came in the bytes being fed, where it is
     * (copied into name or value only when a second piece comes, or when
     * px_h1resp_feed returns). */
    const char *name_at, *value_at;
    size_t name_len, value_len;
    int in_value;
    int interim;     /* the message being read is a 1xx */
    int head_done;   /* the final head was reported */
    int complete;    /* the final response is complete */
    int started;     /* a byte of the response arrived */
    int keep_alive;  /* set when complete: the connection may carry another request */
    int until_close; /* the body runs until the origin closes */
    enum px_h1resp_err err;
};

/* Prepares r for one response (head_request: the request was HEAD). Keeps
 * r's buffers when r was used before (px_h1resp_reset on a used one is
 * fine); px_h1resp_cleanup frees them. */
void px_h1resp_init(struct px_h1resp *r, const struct px_h1resp_ops *ops, void *arg);
void px_h1resp_reset(struct px_h1resp *r, int head_request);
void px_h1resp_cleanup(struct px_h1resp *r);
/* Releases r's field buffers when they grew past a small size (an idle
 * connection keeps no large head's storage). Between responses only. */
void px_h1resp_shrink(struct px_h1resp *r);
/* The bytes of storage r holds. */
size_t px_h1resp_held(const struct px_h1resp *r);

/* Feeds len bytes of the origin's. Returns 0 and *used (the bytes that
 * belong to this response: fewer than len only when it completed and more
 * bytes follow, which a connection must not carry), or a px_h1resp_err < 0
 * (r is then finished). */
int px_h1resp_feed(struct px_h1resp *r, const char *data, size_t len, size_t *used);
/* The origin closed the connection. Returns 0 when that completed the
 * response (a body read until close), else PX_H1RESP_TRUNCATED (or the
 * error already seen). */
int px_h1resp_eof(struct px_h1resp *r);

#endif
