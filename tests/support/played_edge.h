/* played_edge: a test playing the edge on the connector's link of a
 * mem_world (world.detached): an HTTP/2 client session that opens the
 * control stream, answers the registration, keeps every control line the
 * connector sends, and sends requests whose answers it collects. Shared by
 * the connector tests that need the edge's side of the tunnel. */
#ifndef PLAYED_EDGE_H
#define PLAYED_EDGE_H

#include "mem_world.h"
#include "px_buf.h"
#include "px_control.h"

#include <nghttp2/nghttp2.h>

struct pe_answer {
    int32_t id;
    int connect; /* a CONNECT: answered once its 200 arrived */
    int status;
    char error[64]; /* tunnel-error */
    struct px_buf body;
    int ended;          /* the response ended (END_STREAM) */
    int closed;         /* the stream closed */
    const char *upload; /* request body not yet sent */
    size_t upload_left;
};

/* A control line from the connector. */
struct pe_line {
    enum px_ctl_type type;
    char kind[16];
    char *pem;
};

struct played_edge {
    struct mw *w;
    nghttp2_session *h2;
    struct px_buf control_out; /* control lines not yet sent */
    int32_t control_id;
    int control_deferred;
    struct px_ctl_framer control_in;
    struct pe_line got[16];
    size_t n_got;
    struct pe_answer answers[8];
    size_t n_answers;
};

/* Opens w's connector link (w->detached) and plays the edge up to
 * REGISTERED, accepting hostname. Fails the test on any error. */
void pe_link_up(struct played_edge *e, struct mw *w, const char *hostname);
/* Frees the session, the answers and the lines (the world's links are
 * closed by the caller, mw_close_all). */
void pe_link_down(struct played_edge *e);
/* One round both ways (mw_h2_round). */
void pe_exchange(struct played_edge *e);
/* Exchanges until a is answered (ended, closed, or a CONNECT's 200), the
 * connector sent want_got control lines in all (0: ignored), or ms passed. */
void pe_run_until(struct played_edge *e, struct pe_answer *a, size_t want_got, int ms);
/* Sends m on the control stream and runs a moment. */
void pe_control_send(struct played_edge *e, const struct px_ctl_msg *m);
/* Sends one request (":path" path; protocol for an extended CONNECT, or
 * NULL; body or NULL; extra[n_extra] more fields) and runs until it is
 * answered or ms passed. */
struct pe_answer *pe_request(struct played_edge *e, const char *method, const char *authority,
                             const char *path, const char *protocol, const char *body,
                             const nghttp2_nv *extra, size_t n_extra, int ms);

#define PE_NV(n, v)                                                                                \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE                 \
    }

#endif
