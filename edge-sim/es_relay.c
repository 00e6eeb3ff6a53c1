#include "es_relay.h"
#include "es_req.h"
#include "es_server.h"
#include "es_worker.h"
#include "px_err.h"
#include "px_log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    /* worker -> home */
    R_NEW = ES_WM_RELAY_FIRST, /* b = H (es_req_split), a = the home peer */
    R_BODY,                    /* data: request body */
    R_BODY_END,
    R_RESP_CONSUMED, /* a = bytes of response body the browser side took */
    R_FRONT_DONE,    /* data: struct front_outcome */
    /* home -> worker */
    R_HEAD,         /* data: the response head (put_head); a = answered by the edge */
    R_DATA,         /* data: response body */
    R_END,          /* a = 0: the response is complete; else the error that cut it */
    R_REQ_CONSUMED, /* a = bytes of request body the tunnel took */
};

struct front_outcome {
    int status;
    int refusal;
    int timed_out;
    unsigned long long bytes_out;
};

struct es_relay {
    atomic_uint refs; /* the halves still open, and the messages in flight */
    struct es_worker *wk;
    /* worker half: the worker loop's thread only */
    struct es_req *w;
    int w_link_done;  /* es_req_link_done(w) was called */
    int w_front_done; /* w's front let go */
    int w_open;       /* in set->worker_side */
    size_t up_flight; /* request-body bytes sent home, not yet taken by the tunnel */
    int up_end_sent;
    struct px_list_node w_node;
    /* home half: the home loop's thread only */
    struct es_req *h;
    int h_open;         /* in set->home_side: H is dispatched and its front not let go */
    size_t down_flight; /* response-body bytes sent to the worker, not yet taken */
    int h_end_sent;
    struct px_list_node h_node;
};

void es_relays_init(struct es_relays *set)
{
    px_list_init(&set->worker_side);
    px_list_init(&set->home_side);
}

static void relay_unref(struct es_relay *rl)
{
    if (atomic_fetch_sub_explicit(&rl->refs, 1, memory_order_acq_rel) == 1)
        free(rl);
}

/* Posts m, a message of rl's, to the other loop (to_home: from the worker's
 * loop); the message holds a reference to rl until it is handled. */
static void post(struct es_relay *rl, int to_home, struct es_wmsg *m)
{
    atomic_fetch_add_explicit(&rl->refs, 1, memory_order_relaxed);
    if (to_home)
        es_worker_post_home(rl->wk, m);
    else
        es_worker_post_worker(rl->wk, m);
}

/* Posts a message without body; returns 0 or PX_ERR_NOMEM. */
static int post_small(struct es_relay *rl, int to_home, int type, uint64_t a, uint64_t b)
{
    struct es_wmsg *m = es_wmsg_new(type, rl, a, b, NULL, 0);
    if (!m)
        return PX_ERR_NOMEM;
    post(rl, to_home, m);
    return 0;
}

/* ---- worker half ---- */

static void worker_half_check(struct es_relay *rl)
{
    if (rl->w_open && rl->w_link_done && rl->w_front_done) {
        px_list_remove(&rl->w_node);
        rl->w_open = 0;
        rl->w = NULL;
        relay_unref(rl);
    }
}

/* w's link lets go of it (w may be freed inside). */
static void worker_link_done(struct es_relay *rl, uint32_t err)
{
    if (rl->w_link_done)
        return;
    rl->w_link_done = 1;
    struct es_req *w = rl->w;
    es_req_link_done(w, err);
    worker_half_check(rl);
}

/* Sends home what w's body buffer holds, within the window. */
static void pump_up(struct es_relay *rl)
{
    while (!rl->w_link_done && !rl->up_end_sent && rl->up_flight < ES_RELAY_WINDOW) {
        size_t want = ES_RELAY_WINDOW - rl->up_flight;
        if (want > ES_RELAY_CHUNK)
            want = ES_RELAY_CHUNK;
        struct es_wmsg *m = es_wmsg_new(R_BODY, rl, 0, 0, NULL, want);
        if (!m)
            return; /* tried again at the next credit or body piece */
        int eof = 0;
        size_t n = es_req_read_body(rl->w, m->data, want, &eof);
        if (n) {
            m->len = n;
            rl->up_flight += n;
            post(rl, 1, m);
        } else {
            free(m);
        }
        if (eof) {
            if (post_small(rl, 1, R_BODY_END, 0, 0) == 0)
                rl->up_end_sent = 1;
            return;
        }
        if (!n)
            return;
    }
}

static unsigned lk_budget(const struct es_tunnel *t, const char *host, unsigned *n_links)
{
    (void)t;
    (void)host;
    *n_links = 0;
    return 0;
}

static void *lk_pick(struct es_tunnel *t, const char *host)
{
    (void)t;
    (void)host;
    return NULL; /* never asked: the home loop routes and retries */
}

static int32_t lk_submit(void *link, struct es_req *r, const nghttp2_nv *nv, size_t n, int has_body)
{
    (void)link;
    (void)r;
    (void)nv;
    (void)n;
    (void)has_body;
    return -1;
}

static void lk_req_more(void *link, int32_t sid)
{
    (void)sid;
    pump_up(link);
}

static void lk_resp_consumed(void *link, int32_t sid, size_t n)
{
    (void)sid;
    struct es_relay *rl = link;
    if (!rl->w_front_done && n)
        post_small(rl, 1, R_RESP_CONSUMED, n, 0); /* lost only without memory */
}

static void lk_cancel(void *link, int32_t sid)
{
    /* w gave up (or could not buffer the response): its front lets go next,
     * and that tells the home loop (R_FRONT_DONE), which resets the tunnel
     * stream and answers with R_END. */
    (void)link;
    (void)sid;
}

static const struct es_link_ops relay_link_ops = {
    .budget = lk_budget,
    .pick = lk_pick,
    .submit = lk_submit,
    .req_more = lk_req_more,
    .resp_consumed = lk_resp_consumed,
    .cancel = lk_cancel,
};

int es_relay_open(struct es_worker *wk, struct es_relays *set, struct es_req *w, int has_body,
                  struct es_peer *home_peer)
{
    struct es_relay *rl = calloc(1, sizeof(*rl));
    if (!rl)
        return PX_ERR_NOMEM;
    struct es_wmsg *m = es_wmsg_new(R_NEW, rl, (uint64_t)(uintptr_t)home_peer, 0, NULL, 0);
    struct es_req *h = m ? es_req_split(w, has_body) : NULL;
    if (!h) {
        free(m);
        free(rl);
        return PX_ERR_NOMEM;
    }
    m->b = (uint64_t)(uintptr_t)h;
    atomic_init(&rl->refs, 2); /* the two halves */
    rl->wk = wk;
    rl->w = w;
    rl->w_open = 1;
    px_list_insert_head(&set->worker_side, &rl->w_node);
    w->relay = rl;
    w->lops = &relay_link_ops;
    w->link = rl;
    w->link_sid = 1;
    w->link_done = 0;
    post(rl, 1, m);
    return 0;
}

void es_relay_front_done(struct es_req *w)
{
    struct es_relay *rl = w->relay;
    if (!rl || rl->w_front_done)
        return;
    struct es_wmsg *m = es_wmsg_new(R_FRONT_DONE, rl, 0, 0, NULL, sizeof(struct front_outcome));
    if (m) {
        struct front_outcome o = {.status = w->front_status,
                                  .refusal = (int)w->refusal,
                                  .timed_out = w->timed_out,
                                  .bytes_out = w->bytes_out};
        memcpy(m->data, &o, sizeof(o));
        post(rl, 1, m);
    } else {
        /* Without memory the home copy waits for shutdown to let go: the
         * tunnel stream ends when the origin finishes. */
        PX_WARN("request %s: out of memory telling the home loop it ended", w->request_id);
    }
    rl->w_front_done = 1;
    w->relay = NULL; /* from here on w is freed without asking (es_req_front_done) */
    if (rl->w_link_done) {
        /* w is freed as this returns (es_req_front_done), not touched here */
        rl->w = NULL;
    }
    worker_half_check(rl);
}

/* The response head: [status u32][local u32][n u32] then per field
 * [nlen u32][vlen u32][name][value]. */
static void apply_head(struct es_relay *rl, const uint8_t *p, size_t len, int local)
{
    struct es_req *w = rl->w;
    uint32_t hdr[2];
    if (len < sizeof(hdr))
        return;
    memcpy(hdr, p, sizeof(hdr));
    p += sizeof(hdr);
    len -= sizeof(hdr);
    char status[16];
    int sl = snprintf(status, sizeof(status), "%u", hdr[0]);
    if (sl <= 0 || (size_t)sl >= sizeof(status))
        return;
    es_req_resp_header(w, (const uint8_t *)":status", 7, (const uint8_t *)status, (size_t)sl);
    for (uint32_t i = 0; i < hdr[1]; i++) {
        uint32_t l[2];
        if (len < sizeof(l))
            break;
        memcpy(l, p, sizeof(l));
        p += sizeof(l);
        len -= sizeof(l);
        if ((size_t)l[0] + l[1] > len)
            break;
        es_req_resp_header(w, p, l[0], p + l[0], l[1]);
        p += (size_t)l[0] + l[1];
        len -= (size_t)l[0] + l[1];
    }
    if (local)
        w->local = 1;
    es_req_resp_headers_done(w);
}

static void on_worker_msg(struct es_relay *rl, struct es_wmsg *m)
{
    if (!rl->w_open || rl->w_link_done)
        return; /* w's link side ended: nothing more for it */
    switch (m->type) {
    case R_HEAD:
        apply_head(rl, m->data, m->len, (int)m->a);
        break;
    case R_DATA:
        es_req_resp_body(rl->w, m->data, m->len);
        break;
    case R_END:
        if (m->a == 0) {
            es_req_resp_end(rl->w);
            worker_link_done(rl, 0);
        } else {
            worker_link_done(rl, (uint32_t)m->a);
        }
        break;
    case R_REQ_CONSUMED:
        rl->up_flight = m->a < rl->up_flight ? rl->up_flight - (size_t)m->a : 0;
        pump_up(rl);
        break;
    }
}

void es_relays_stop_worker_side(struct es_relays *set)
{
    struct px_list_node *n, *tmp;
    px_list_for_each_safe (n, tmp, &set->worker_side) {
        struct es_relay *rl = px_container_of(n, struct es_relay, w_node);
        if (!rl->w_link_done)
            worker_link_done(rl, NGHTTP2_CANCEL);
        if (rl->w_open) {
            /* Its front has not let go yet: when it does, w is on its own
             * (its link is done), and the relay is gone. */
            rl->w->relay = NULL;
            rl->w_front_done = 1;
            worker_half_check(rl);
        }
    }
}

/* ---- home half ---- */

static void home_half_end(struct es_relay *rl)
{
    if (!rl->h_open)
        return;
    rl->h_open = 0;
    px_list_remove(&rl->h_node);
    struct es_req *h = rl->h;
    rl->h = NULL;
    es_req_front_done(h); /* h may be freed here */
    if (!rl->h_end_sent) {
        /* w still waits for its link to let go */
        rl->h_end_sent = 1;
        post_small(rl, 0, R_END, NGHTTP2_CANCEL, 0);
    }
    relay_unref(rl);
}

static void put_u32(uint8_t **p, uint32_t v)
{
    memcpy(*p, &v, sizeof(v));
    *p += sizeof(v);
}

static void send_head(struct es_relay *rl)
{
    struct es_req *h = rl->h;
    size_t n;
    const nghttp2_nv *nv = es_req_resp_fields(h, &n);
    size_t len = 2 * sizeof(uint32_t);
    for (size_t i = 0; i < n; i++)
        len += 2 * sizeof(uint32_t) + nv[i].namelen + nv[i].valuelen;
    struct es_wmsg *m = es_wmsg_new(R_HEAD, rl, (uint64_t)h->local, 0, NULL, len);
    if (!m) {
        /* The worker's copy cannot hear this answer: cut it there. */
        rl->h_end_sent = 1;
        post_small(rl, 0, R_END, NGHTTP2_INTERNAL_ERROR, 0);
        return;
    }
    uint8_t *p = m->data;
    put_u32(&p, (uint32_t)h->resp_status);
    put_u32(&p, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        put_u32(&p, (uint32_t)nv[i].namelen);
        put_u32(&p, (uint32_t)nv[i].valuelen);
        memcpy(p, nv[i].name, nv[i].namelen);
        p += nv[i].namelen;
        memcpy(p, nv[i].value, nv[i].valuelen);
        p += nv[i].valuelen;
    }
    post(rl, 0, m);
}

/* Sends the worker what h's response buffer holds, within the window, and
 * the response's end once everything went. */
static void pump_down(struct es_relay *rl)
{
    struct es_req *h = rl->h;
    if (!rl->h_open || rl->h_end_sent)
        return;
    while (rl->down_flight < ES_RELAY_WINDOW && es_req_resp_pending(h)) {
        size_t want = ES_RELAY_WINDOW - rl->down_flight;
        if (want > ES_RELAY_CHUNK)
            want = ES_RELAY_CHUNK;
        size_t avail = es_req_resp_pending(h);
        if (want > avail)
            want = avail;
        struct es_wmsg *m = es_wmsg_new(R_DATA, rl, 0, 0, NULL, want);
        if (!m)
            return; /* again at the next credit */
        m->len = es_req_take_body(h, m->data, want);
        rl->down_flight += m->len;
        post(rl, 0, m);
    }
    if (h->resp_error) {
        if (post_small(rl, 0, R_END, NGHTTP2_INTERNAL_ERROR, 0) == 0)
            rl->h_end_sent = 1;
    } else if (h->resp_eof && !es_req_resp_pending(h)) {
        if (post_small(rl, 0, R_END, 0, 0) == 0)
            rl->h_end_sent = 1;
    }
}

static void fr_resp_headers(struct es_req *h)
{
    struct es_relay *rl = h->front;
    send_head(rl);
    es_req_resp_head_sent(h); /* the message has its own copy */
    pump_down(rl);
}

static void fr_resp_data(struct es_req *h)
{
    pump_down(h->front);
}

static void fr_req_consumed(struct es_req *h, size_t n)
{
    struct es_relay *rl = h->front;
    if (n)
        post_small(rl, 0, R_REQ_CONSUMED, n, 0); /* lost only without memory */
}

static const struct es_front_ops relay_front_ops = {
    .resp_headers = fr_resp_headers,
    .resp_data = fr_resp_data,
    .req_consumed = fr_req_consumed,
};

static void on_home_new(struct es_relays *set, struct es_server *home, struct es_relay *rl,
                        struct es_wmsg *m)
{
    struct es_req *h = (struct es_req *)(uintptr_t)m->b;
    rl->h = h;
    rl->h_open = 1;
    px_list_insert_head(&set->home_side, &rl->h_node);
    es_req_adopt(h, home, &relay_front_ops, rl, (struct es_peer *)(uintptr_t)m->a);
    es_req_dispatch(h, h->has_body);
}

static void on_home_msg(struct es_relays *set, struct es_server *home, struct es_relay *rl,
                        struct es_wmsg *m)
{
    if (m->type == R_NEW) {
        on_home_new(set, home, rl, m);
        return;
    }
    if (!rl->h_open)
        return;
    struct es_req *h = rl->h;
    switch (m->type) {
    case R_BODY:
        if (es_req_body(h, m->data, m->len) < 0)
            es_req_local_error(h, 500, "internal", "the edge ran out of memory");
        break;
    case R_BODY_END:
        es_req_body_end(h);
        break;
    case R_RESP_CONSUMED:
        rl->down_flight = m->a < rl->down_flight ? rl->down_flight - (size_t)m->a : 0;
        pump_down(rl);
        break;
    case R_FRONT_DONE: {
        struct front_outcome o;
        memcpy(&o, m->data, sizeof(o));
        if (o.status || o.refusal)
            es_req_front_refused(h, o.status, (enum es_refusal)o.refusal);
        if (o.timed_out)
            h->timed_out = 1;
        h->bytes_out = o.bytes_out; /* what the browser took, not what went to the worker */
        home_half_end(rl);
        break;
    }
    }
}

void es_relays_stop_home_side(struct es_relays *set)
{
    struct px_list_node *n, *tmp;
    px_list_for_each_safe (n, tmp, &set->home_side)
        home_half_end(px_container_of(n, struct es_relay, h_node));
}

void es_relay_on_msg(struct es_relays *set, struct es_server *home, struct es_wmsg *m)
{
    struct es_relay *rl = m->obj;
    if (home)
        on_home_msg(set, home, rl, m);
    else
        on_worker_msg(rl, m);
    free(m);
    relay_unref(rl);
}
