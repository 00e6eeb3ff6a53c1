/* fake_link: a stand-in for es_link behind es_link_ops (es_req.h), for tests
 * of es_req and of the browser fronts without HTTP/2 or a connector. It
 * records what requests ask of it, and the test plays the tunnel by calling
 * es_req's "for the link" functions on the streams it holds (fl_respond,
 * fl_read_body, fl_close).
 *
 * Use: fl_server_init(&fl, &srv, loop), or fl_init(&fl) and srv.link_ops =
 * &fl_ops on a server of your own. budget and pick see only a
 * tunnel and a host, so the ops find the fake through the one fl_init set up
 * last (one fake per test process at a time). A stream is held from submit
 * until fl_close (or fl_cleanup, which closes every stream as a closing link
 * does), as the contract in es_req.h says. */
#ifndef FAKE_LINK_H
#define FAKE_LINK_H

#include "es_registry.h"
#include "es_req.h"
#include "es_server.h"
#include "px_buf.h"

#include <stddef.h>
#include <stdint.h>

#define FL_MAX_STREAMS 64
/* The host fl_server_init routes to the fake, through this tunnel. */
#define FL_HOST "a.example.test"
#define FL_TUNNEL_ID "0123456789abcdef0123456789abcdef"

struct fl_stream {
    struct es_req *r; /* NULL once closed */
    int32_t sid;
    int has_body;
    /* A copy of the head submit was given, "name: value\n" per field, in order. */
    struct px_buf head;
    uint64_t no_index;  /* bit i: field i (< 64) came with NGHTTP2_NV_FLAG_NO_INDEX */
    unsigned req_more;  /* req_more calls */
    size_t consumed;    /* resp_consumed credit */
    unsigned cancelled; /* cancel calls */
};

struct fake_link {
    /* What budget and pick answer (fl_init: one connection with room). */
    unsigned n_links;
    unsigned capacity;
    int full;   /* pick answers NULL: every connection busy */
    int refuse; /* this many submits fail (-1: all) */
    /* What was asked. */
    unsigned budgets, picks, submits;
    unsigned late; /* req_more / resp_consumed / cancel for a stream not held: a
                      breach of the contract */
    struct fl_stream s[FL_MAX_STREAMS];
    size_t n; /* streams submitted (held or closed) */
    /* fl_server_init's registry entries */
    struct es_tunnel tunnel;
    struct es_route route;
};

extern const struct es_link_ops fl_ops;

void fl_init(struct fake_link *fl);
/* fl_init, and a zeroed srv on loop whose registry routes FL_HOST to tunnel
 * FL_TUNNEL_ID (entries inside fl: no store) and whose link_ops are the fake.
 * Release with fl_cleanup and es_fair_cleanup(&srv->fair). */
void fl_server_init(struct fake_link *fl, struct es_server *srv, uv_loop_t *loop);
/* Closes every stream still held with NGHTTP2_CANCEL (the link closing) and
 * frees the copies. */
void fl_cleanup(struct fake_link *fl);
/* The stream submitted for r, or NULL. */
struct fl_stream *fl_find(struct fake_link *fl, const struct es_req *r);
/* The last stream submitted, or NULL. */
struct fl_stream *fl_last(struct fake_link *fl);
/* The value of the first field called name in the stream's head, or NULL.
 * Valid until the next call. */
const char *fl_header(const struct fl_stream *s, const char *name);
/* Whether the first field called name came marked never to be indexed
 * (NGHTTP2_NV_FLAG_NO_INDEX); 0 also when there is none. */
int fl_header_no_index(const struct fl_stream *s, const char *name);
/* How many fields of the stream's head are called name. */
unsigned fl_header_count(const struct fl_stream *s, const char *name);
/* The response from the tunnel: head status with fields hdrs (name, value
 * pairs, NULL-terminated; may be NULL), then body (may be NULL), then the
 * end of the stream if end. Returns what es_req_resp_header returned last
 * (< 0: the link would reset the stream). */
int fl_respond(struct fl_stream *s, int status, const char *const *hdrs, const char *body, int end);
/* Reads what the request body has now, chunk bytes at a time, appending it
 * to out. Returns 1 once the body has ended, else 0. */
int fl_read_body(struct fl_stream *s, struct px_buf *out, size_t chunk);
/* The stream is gone: es_req_link_done(r, err); the fake lets go of r. */
void fl_close(struct fl_stream *s, uint32_t err);

#endif
