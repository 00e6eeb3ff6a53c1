#include "cn_upgrade.h"
#include "cn_ingress.h"
#include "cn_origin.h"
#include "cn_stream_int.h"
#include "px_b64.h"
#include "px_hdracc.h"
#include "px_headers.h"
#include "px_log.h"
#include "px_pki.h"
#include "px_ws.h"
#include "rt_loop.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hash.h>

#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define READ_CHUNK (32 * 1024)
#define HANDSHAKE_MAX (64 * 1024)
/* After the tunnel side ended, how long the origin may take to close. */
#define LINGER_MS 10000

enum phase { CONNECTING, HANDSHAKE, RELAY, PASSTHROUGH, DONE };

struct cn_upgrade {
    struct cn_stream *s;
    enum phase phase;
    curl_socket_t fd;
    int events;                    /* currently watched */
    struct px_buf out;             /* handshake request bytes not yet sent */
    char accept[PX_WS_ACCEPT_LEN]; /* expected Sec-WebSocket-Accept */
    http_parser parser;
    struct px_hdracc hdr; /* the origin's answer, field by field */
    int bad_accept;
    int saw_accept;
    int read_paused;
    int origin_eof;
    int shut_wr;
    uv_timer_t linger;
    int linger_open;
    int detached; /* test seam: no origin socket (cn_upgrade_start_detached) */
};

static void watch(struct cn_upgrade *u);

static int is_tcp(const struct cn_upgrade *u)
{
    return u->s->rule->kind == CN_SVC_TCP;
}

static int take_field(void *arg, const char *n, size_t nl, const char *v, size_t vl);

/* The relay state of s (s->up), before any origin connection. */
static struct cn_upgrade *upgrade_new(struct cn_stream *s)
{
    struct cn_upgrade *u = calloc(1, sizeof(*u));
    if (!u)
        return NULL;
    u->s = s;
    u->fd = CURL_SOCKET_BAD;
    px_buf_init(&u->out);
    px_hdracc_init(&u->hdr, 0, 0, take_field, u);
    s->up = u;
    return u;
}

int cn_upgrade_start(struct cn_stream *s)
{
    struct cn_upgrade *u = upgrade_new(s);
    if (!u)
        return -1;
    CURL *e = curl_easy_init(); /* not pooled: a connect-only handle is single-use */
    if (!e)
        return -1;
    s->xfer.easy = e;
    s->xfer.raw = 1;
    if (cn_stream_origin_setup(s, e) < 0)
        return -1;
    curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L);
    if (cn_origin_start(s->host.env.origin, &s->xfer) < 0)
        return -1;
    s->origin_started = 1;
    s->t_origin = uv_hrtime();
    PX_DEBUG("stream %d: opening %s origin %s", s->id, is_tcp(u) ? "TCP" : "WebSocket",
             s->rule->service);
    return 0;
}

/* ---- the handshake request ---- */

/* The HTTP/1.1 Upgrade request to the origin, built whole in u->out: the
 * path and headers are the client's and have no fixed bound here (the
 * stream's header caps bound them). */
static int build_request(struct cn_upgrade *u)
{
    struct cn_stream *s = u->s;
    const struct cn_rule *r = s->rule;
    uint8_t nonce[16];
    if (px_pki_random(rt_loop_rng(rt_loop_of(s->host.env.loop)), nonce, sizeof(nonce)) < 0)
        return -1;
    char *key = px_b64_encode(nonce, sizeof(nonce), 0);
    if (!key)
        return -1;
    int rc = px_ws_accept(key, strlen(key), u->accept);
    if (rc == 0)
        rc = px_buf_appendf(&u->out,
                            "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                            "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n",
                            s->path, r->o.http_host_header ? r->o.http_host_header : s->authority,
                            key);
    free(key);
    if (rc == 0 && r->o.http_host_header && !s->has_xfh)
        rc = px_buf_appendf(&u->out, "X-Forwarded-Host: %s\r\n", s->authority);
    int have_version = 0;
    size_t at = 0, ll;
    const char *line;
    while (rc == 0 && cn_stream_next_field(s, &at, &line, &ll)) {
        if (ll >= 18 && strncasecmp(line, "sec-websocket-key:", 18) == 0)
            continue;
        if (ll >= 22 && strncasecmp(line, "sec-websocket-version:", 22) == 0)
            have_version = 1;
        rc = px_buf_append(&u->out, line, ll + 2) < 0 ? -1 : 0; /* with its CRLF */
    }
    if (rc == 0 && !have_version)
        rc = px_buf_append_str(&u->out, "Sec-WebSocket-Version: 13\r\n");
    if (rc == 0)
        rc = px_buf_append_str(&u->out, "\r\n");
    return rc < 0 ? -1 : 0;
}

/* ---- the origin's answer ---- */

/* One field of the origin's answer (px_hdracc emit). */
static int take_field(void *arg, const char *n, size_t nl, const char *v, size_t vl)
{
    struct cn_upgrade *u = arg;
    if (nl == 20 && strncasecmp(n, "sec-websocket-accept", 20) == 0) {
        u->saw_accept = 1;
        if (vl != strlen(u->accept) || strncmp(v, u->accept, vl) != 0)
            u->bad_accept = 1;
        return 0;
    }
    if (!px_hdr_is_hop_by_hop(n, nl) && px_hdr_valid(n, nl, v, vl))
        return cn_stream_add_resp_header(u->s, n, nl, v, vl);
    return 0;
}

static int on_hfield(http_parser *p, const char *at, size_t len)
{
    struct cn_upgrade *u = p->data;
    return px_hdracc_field(&u->hdr, at, len) < 0 ? -1 : 0;
}

static int on_hvalue(http_parser *p, const char *at, size_t len)
{
    struct cn_upgrade *u = p->data;
    return px_hdracc_value(&u->hdr, at, len) < 0 ? -1 : 0;
}

static int on_headers_done(http_parser *p)
{
    struct cn_upgrade *u = p->data;
    struct cn_stream *s = u->s;
    if (px_hdracc_end(&u->hdr) < 0)
        return -1;
    /* The head is over, and with it the handshake: an open relay holds no
     * header buffers, nor the rest of a request the origin answered. */
    px_hdracc_cleanup(&u->hdr);
    px_buf_cleanup(&u->out);
    cn_stream_origin_answered(s);
    if (p->status_code == 101) {
        /* RFC 6455 4.1: without the right Accept the origin did not take
         * part in this handshake (a generic proxy or a confused server). */
        if (u->bad_accept || !u->saw_accept) {
            cn_stream_origin_error(s, CN_ORIGIN_BAD_RESPONSE);
            cn_stream_error(s, 502, "origin_bad_upgrade",
                            "the origin's WebSocket handshake answer is invalid "
                            "(Sec-WebSocket-Accept)",
                            NULL);
            u->phase = DONE;
            return -1;
        }
        /* RFC 8441: a successful extended CONNECT is a 200. */
        s->resp_status = 200;
        u->phase = RELAY;
        cn_stream_websocket_open(s);
    } else if (p->status_code >= 200 && p->status_code < 300) {
        /* A 2xx on the tunnel would mean "upgraded": it must not pass. */
        char why[160];
        snprintf(why, sizeof(why),
                 "the origin answered %u instead of switching to WebSocket (is this a "
                 "WebSocket endpoint?)",
                 p->status_code);
        cn_stream_origin_error(s, CN_ORIGIN_BAD_RESPONSE);
        cn_stream_error(s, 502, "origin_no_upgrade", why, NULL);
        u->phase = DONE;
        return -1;
    } else {
        /* The origin refused the upgrade: pass its answer on, body and all. */
        s->resp_status = (int)p->status_code;
        u->phase = PASSTHROUGH;
    }
    if (cn_stream_submit(s, 1) < 0)
        return -1;
    return 0;
}

static int on_pbody(http_parser *p, const char *at, size_t len)
{
    struct cn_upgrade *u = p->data;
    struct cn_stream *s = u->s;
    if (cn_stream_resp_put(s, at, len) < 0)
        return -1;
    cn_stream_from_origin(s, len);
    return 0;
}

static int on_pdone(http_parser *p)
{
    struct cn_upgrade *u = p->data;
    if (u->phase == PASSTHROUGH) {
        u->phase = DONE;
        cn_stream_resp_end(u->s, 0);
    }
    return 0;
}

static const http_parser_settings resp_settings = {
    .on_header_field = on_hfield,
    .on_header_value = on_hvalue,
    .on_headers_complete = on_headers_done,
    .on_body = on_pbody,
    .on_message_complete = on_pdone,
};

/* ---- relay ---- */

/* The origin side failed (cause, why for the log): answers 502 before the
 * tunnel got an answer, else resets the stream once its bytes are out. */
static void fail(struct cn_upgrade *u, enum cn_origin_cause cause, const char *why)
{
    struct cn_stream *s = u->s;
    cn_stream_origin_error(s, cause);
    PX_WARN("stream %d: %s origin %s: %s", s->id, is_tcp(u) ? "TCP" : "WebSocket", s->rule->service,
            why);
    u->phase = DONE;
    if (u->fd != CURL_SOCKET_BAD)
        cn_origin_watch(s->host.env.origin, u->fd, 0, NULL, NULL);
    u->events = 0;
    if (!s->resp_submitted) {
        cn_stream_error(s, 502, "origin_error", "the connection to the origin failed", why);
        return;
    }
    cn_stream_resp_end(s, 1);
}

static void origin_closed(struct cn_upgrade *u)
{
    struct cn_stream *s = u->s;
    u->origin_eof = 1;
    if (u->phase == PASSTHROUGH) {
        http_parser_execute(&u->parser, &resp_settings, NULL, 0); /* ends close-delimited bodies */
        if (!s->resp_eof)
            cn_stream_resp_end(s, 0);
    } else if (u->phase == HANDSHAKE) {
        fail(u, CN_ORIGIN_RESET, "the origin closed the connection during the WebSocket handshake");
        return;
    } else {
        cn_stream_resp_end(s, 0); /* END_STREAM to the edge: the other side sees the close */
    }
    u->phase = DONE;
    watch(u);
}

static void on_linger(uv_timer_t *t)
{
    struct cn_upgrade *u = t->data;
    if (u->phase != DONE && !u->origin_eof) {
        PX_DEBUG("stream %d: origin kept the connection open after the client left", u->s->id);
        origin_closed(u);
    }
}

/* A detached upgrade has no origin: what it would send is dropped. */
static CURLcode send_some(struct cn_upgrade *u, CURL *e, struct px_buf *b, size_t *sent)
{
    if (u->detached) {
        *sent = px_buf_len(b);
        return CURLE_OK;
    }
    return curl_easy_send(e, px_buf_head(b), px_buf_len(b), sent);
}

static void try_write(struct cn_upgrade *u)
{
    struct cn_stream *s = u->s;
    CURL *e = s->xfer.easy;
    struct px_buf *b = u->phase == HANDSHAKE ? &u->out : &s->req_body;
    while (px_buf_len(b) > 0) {
        size_t sent = 0;
        CURLcode rc = send_some(u, e, b, &sent);
        if (rc == CURLE_AGAIN)
            return;
        if (rc != CURLE_OK) {
            fail(u, cn_origin_cause_of(rc), curl_easy_strerror(rc));
            return;
        }
        px_buf_consume(b, sent);
        if (b == &s->req_body) {
            cn_stream_req_taken(s, sent);
            cn_stream_to_origin(s, sent);
        }
    }
    /* Drained: an idle relay keeps no buffer (4 KiB each, a quarter of what
     * an idle WebSocket may cost here). The next message allocates again. */
    px_buf_shrink(b, 0);
    if (b == &s->req_body && s->req_eof && !u->shut_wr && u->phase == RELAY) {
        /* The client is done sending. A TCP service sees the half-close; a
         * WebSocket origin gets a grace period to finish its close. */
        u->shut_wr = 1;
        if (is_tcp(u) && !s->rule->tls)
            shutdown(u->fd, SHUT_WR);
        uv_timer_start(&u->linger, on_linger, LINGER_MS, 0);
    }
}

/* got (> 0) bytes arrived from the origin. Returns 0 to read on, or -1
 * when the upgrade failed or is over. */
static int take_origin_bytes(struct cn_upgrade *u, const char *buf, size_t got)
{
    struct cn_stream *s = u->s;
    if (u->phase == RELAY) {
        if (cn_stream_resp_put(s, buf, got) < 0) {
            fail(u, CN_ORIGIN_OTHER, "out of memory");
            return -1;
        }
        cn_stream_from_origin(s, got);
        return 0;
    }
    /* HANDSHAKE or PASSTHROUGH: parse; after a 101 the rest is relay data. */
    size_t n = http_parser_execute(&u->parser, &resp_settings, buf, got);
    if (u->phase == DONE)
        return -1;
    if (u->phase == RELAY && n < got) {
        if (cn_stream_resp_put(s, buf + n, got - n) < 0) {
            fail(u, CN_ORIGIN_OTHER, "out of memory");
            return -1;
        }
        cn_stream_from_origin(s, got - n);
    } else if (HTTP_PARSER_ERRNO(&u->parser) != HPE_OK && !u->parser.upgrade) {
        fail(u, CN_ORIGIN_BAD_RESPONSE, http_errno_description(HTTP_PARSER_ERRNO(&u->parser)));
        return -1;
    }
    if (u->phase == HANDSHAKE && u->parser.nread > HANDSHAKE_MAX) {
        fail(u, CN_ORIGIN_BAD_RESPONSE, "the origin's handshake answer is too large");
        return -1;
    }
    return 0;
}

static void try_read(struct cn_upgrade *u)
{
    struct cn_stream *s = u->s;
    CURL *e = s->xfer.easy;
    char buf[READ_CHUNK];
    if (u->detached)
        return; /* the test feeds origin bytes with cn_upgrade_feed */
    for (int i = 0; i < 8 && u->phase != DONE; i++) {
        if (u->phase == RELAY && px_buf_len(&s->resp_body) >= CN_STREAM_RESP_HIGH) {
            u->read_paused = 1;
            return;
        }
        size_t got = 0;
        CURLcode rc = curl_easy_recv(e, buf, sizeof(buf), &got);
        if (rc == CURLE_AGAIN)
            return;
        if (rc != CURLE_OK) {
            if (u->phase == RELAY || u->phase == PASSTHROUGH) {
                origin_closed(u); /* a reset after a WebSocket close is routine */
                return;
            }
            fail(u, cn_origin_cause_of(rc), curl_easy_strerror(rc));
            return;
        }
        if (got == 0) {
            origin_closed(u);
            return;
        }
        if (take_origin_bytes(u, buf, got) < 0)
            return;
    }
}

static void on_ready(void *arg, int status, int events)
{
    struct cn_upgrade *u = arg;
    if (status < 0) {
        if (u->phase == RELAY)
            origin_closed(u);
        else
            fail(u, CN_ORIGIN_RESET, uv_strerror(status));
        return;
    }
    if (events & UV_WRITABLE)
        try_write(u);
    if ((events & UV_READABLE) && u->phase != DONE)
        try_read(u);
    watch(u);
}

static void watch(struct cn_upgrade *u)
{
    if (u->fd == CURL_SOCKET_BAD)
        return;
    int ev = 0;
    if (u->phase != DONE && !u->origin_eof) {
        if (!u->read_paused)
            ev |= UV_READABLE;
        struct px_buf *b = u->phase == HANDSHAKE ? &u->out : &u->s->req_body;
        if (px_buf_len(b) > 0)
            ev |= UV_WRITABLE;
    }
    if (ev != u->events) {
        u->events = ev;
        cn_origin_watch(u->s->host.env.origin, u->fd, ev, on_ready, u);
    }
}

void cn_upgrade_connected(struct cn_stream *s)
{
    struct cn_upgrade *u = s->up;
    curl_socket_t fd = CURL_SOCKET_BAD;
    if (curl_easy_getinfo(s->xfer.easy, CURLINFO_ACTIVESOCKET, &fd) != CURLE_OK ||
        fd == CURL_SOCKET_BAD) {
        fail(u, CN_ORIGIN_OTHER, "no socket after connecting");
        return;
    }
    u->fd = fd;
    uv_timer_init(s->host.env.loop, &u->linger);
    u->linger.data = u;
    u->linger_open = 1;
    if (is_tcp(u)) {
        s->resp_status = 200;
        u->phase = RELAY;
        if (cn_stream_submit(s, 1) < 0) {
            fail(u, CN_ORIGIN_OTHER, "cannot answer the tunnel");
            return;
        }
        PX_DEBUG("stream %d: TCP %s connected", s->id, s->rule->service);
    } else {
        http_parser_init(&u->parser, HTTP_RESPONSE);
        u->parser.data = u;
        u->phase = HANDSHAKE;
        if (build_request(u) < 0) {
            fail(u, CN_ORIGIN_OTHER, "cannot build the handshake");
            return;
        }
    }
    try_write(u);
    if (u->phase != DONE)
        try_read(u);
    watch(u);
}

void cn_upgrade_on_data(struct cn_stream *s)
{
    struct cn_upgrade *u = s->up;
    if (u->phase == RELAY) {
        try_write(u);
        watch(u);
    } else if (u->phase == DONE || u->phase == PASSTHROUGH) {
        /* Nobody will read it: credit the tunnel and drop it. */
        size_t n = px_buf_len(&s->req_body);
        px_buf_consume(&s->req_body, n);
        cn_stream_req_taken(s, n);
    }
    /* CONNECTING / HANDSHAKE: held until the upgrade completes (bounded by
     * the stream's flow-control window). */
}

void cn_upgrade_resume_read(struct cn_stream *s)
{
    struct cn_upgrade *u = s->up;
    if (!u->read_paused)
        return;
    u->read_paused = 0;
    if (u->phase == RELAY)
        try_read(u);
    watch(u);
}

static void free_upgrade(uv_handle_t *h)
{
    free(h->data);
}

void cn_upgrade_release(struct cn_stream *s)
{
    struct cn_upgrade *u = s->up;
    s->up = NULL;
    if (u->fd != CURL_SOCKET_BAD && u->events)
        cn_origin_watch(s->host.env.origin, u->fd, 0, NULL, NULL);
    px_buf_cleanup(&u->out);
    px_hdracc_cleanup(&u->hdr);
    if (u->linger_open) {
        uv_timer_stop(&u->linger);
        uv_close((uv_handle_t *)&u->linger, free_upgrade);
    } else {
        free(u);
    }
}

/* ---- test seam ---- */

int cn_upgrade_start_detached(struct cn_stream *s, const char *key)
{
    struct cn_upgrade *u = upgrade_new(s);
    if (!u)
        return -1;
    u->detached = 1;
    uv_timer_init(s->host.env.loop, &u->linger);
    u->linger.data = u;
    u->linger_open = 1;
    if (is_tcp(u)) {
        s->resp_status = 200;
        u->phase = RELAY;
        return cn_stream_submit(s, 1) < 0 ? -1 : 0;
    }
    http_parser_init(&u->parser, HTTP_RESPONSE);
    u->parser.data = u;
    u->phase = HANDSHAKE;
    if (build_request(u) < 0)
        return -1;
    /* The head keeps its random key (and is dropped); answers are checked
     * against the caller's key, so a test can write a valid one. */
    return px_ws_accept(key, strlen(key), u->accept) < 0 ? -1 : 0;
}

void cn_upgrade_feed(struct cn_stream *s, const uint8_t *data, size_t len)
{
    struct cn_upgrade *u = s->up;
    if (!u || !u->detached || u->phase == DONE || u->origin_eof)
        return;
    if (len == 0)
        origin_closed(u);
    else
        take_origin_bytes(u, (const char *)data, len);
}

size_t cn_upgrade_held(const struct cn_stream *s)
{
    const struct cn_upgrade *u = s->up;
    size_t n = s->req_body.cap + s->resp_body.cap;
    if (u)
        n += u->out.cap + u->hdr.name.cap + u->hdr.value.cap;
    return n;
}
