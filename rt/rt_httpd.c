/* A small HTTP/1.1 server for operator endpoints: one request per
 * connection, parsed by http_parser within fixed limits, answered once by
 * the owner's handler, then closed. */
#include "rt_httpd.h"
#include "px_buf.h"
#include "px_err.h"
#include "px_errpage.h"
#include "px_hdracc.h"
#include "px_headers.h"
#include "px_list.h"
#include "px_log.h"
#include "rt_conn.h"

#include <arpa/inet.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_MAX_HEAD (16 * 1024)
#define DEFAULT_MAX_BODY (64 * 1024)
#define DEFAULT_DEADLINE_MS 10000
#define DEFAULT_MAX_CONNS 64
#define BACKLOG 128
/* After refusing a request whose body is still coming (413, 411), read and
 * drop this much more of it, for at most LINGER_MS, before closing: closing
 * a socket with unread input sends a reset, which can reach the client
 * before the answer does and make it report a reset instead of the 413. */
#define LINGER_BYTES (256 * 1024)
#define LINGER_MS 1000

struct listener {
    uv_tcp_t tcp;
    struct rt_httpd *h;
    struct listener *next;
};

struct rt_httpd {
    uv_loop_t *loop;
    struct rt_httpd_limits lim;
    const struct rt_httpd_ops *ops;
    void *ud;
    struct listener *listeners;
    struct px_list conns;
    unsigned n_conns; /* admitted, counted against max_conns */
    size_t alive;     /* listeners and connections whose close has not completed */
    int freeing;
};

struct rt_httpd_conn {
    struct rt_conn conn;
    struct rt_httpd *h;
    struct px_list_node node;
    void *tok;
    int owes_release; /* admit said yes: release(tok) is due */
    int counted;      /* in h->n_conns */
    http_parser parser;
    struct px_hdracc hdr;
    struct px_buf url, body;
    char *path, *query; /* the target, split once the head is in */
    char *host, *authorization, *content_type, *accept;
    int expect_continue;
    size_t head_seen; /* head bytes fed to the parser so far */
    int head_done, msg_done, answered, is_head;
    int refuse; /* a status decided inside a parser callback */
    int fail;   /* a px_err met inside a parser callback: abort */
    int early;  /* answered by on_head: the body is parsed and dropped */
    int lingering;
    size_t linger_left;
};

static void conn_free(struct rt_httpd_conn *c)
{
    px_hdracc_cleanup(&c->hdr);
    px_buf_cleanup(&c->url);
    px_buf_cleanup(&c->body);
    free(c->path);
    free(c->query);
    free(c->host);
    free(c->authorization);
    free(c->content_type);
    free(c->accept);
    free(c);
}

static void maybe_free_server(struct rt_httpd *h)
{
    if (h->freeing && h->alive == 0)
        free(h);
}

static int is_loopback(const char *ip)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, ip, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, ip, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
    return 0;
}

/* 1 when s (n bytes) is a port: 1-5 digits. */
static int is_port(const char *s, size_t n)
{
    return n >= 1 && n <= 5 && strspn(s, "0123456789") >= n;
}

int rt_httpd_host_not_rebindable(const char *host)
{
    if (!host)
        return 1;
    char lit[INET6_ADDRSTRLEN];
    const char *hs = host, *he;
    if (host[0] == '[') {
        hs = host + 1;
        he = strchr(hs, ']');
        if (!he)
            return 0;
    } else {
        he = host + strcspn(host, ":");
    }
    const char *rest = he + (host[0] == '[');
    if (*rest && (*rest != ':' || !is_port(rest + 1, strlen(rest + 1))))
        return 0;
    size_t n = (size_t)(he - hs);
    if (n == 0 || n >= sizeof(lit))
        return 0;
    memcpy(lit, hs, n);
    lit[n] = '\0';
    struct in6_addr a6;
    struct in_addr a4;
    if (host[0] == '[')
        return inet_pton(AF_INET6, lit, &a6) == 1;
    return inet_pton(AF_INET, lit, &a4) == 1 || strcasecmp(lit, "localhost") == 0;
}

/* ---- answers ---- */

static int has_crlf(const char *s)
{
    return s && strpbrk(s, "\r\n") != NULL;
}

int rt_httpd_respond(struct rt_httpd_conn *c, int status, const char *content_type,
                     const char *headers, const void *body, size_t len)
{
    if (!c || c->answered)
        return PX_ERR_INVAL;
    c->answered = 1;
    if (status < 100 || status > 599 || has_crlf(content_type) || (len && !body)) {
        PX_WARN("http %s: a handler gave an invalid answer (status %d)", c->conn.peer_ip, status);
        rt_conn_abort(&c->conn, PX_ERR_INVAL);
        return PX_ERR_INVAL;
    }
    /* 1xx, 204 and 304 never have a body (RFC 9110 6.4.1); HEAD gets the
     * GET answer's length without its body. */
    int no_content = status < 200 || status == 204 || status == 304;
    struct px_buf b;
    px_buf_init(&b);
    int rc = px_buf_appendf(&b, "HTTP/1.1 %d %s\r\n", status, px_status_reason(status));
    if (rc == 0 && content_type)
        rc = px_buf_appendf(&b, "Content-Type: %s\r\n", content_type);
    if (rc == 0 && !no_content)
        rc = px_buf_appendf(&b, "Content-Length: %zu\r\n", len);
    if (rc == 0)
        rc = px_buf_append_str(&b, "Connection: close\r\nCache-Control: no-store\r\n"
                                   "X-Content-Type-Options: nosniff\r\n");
    if (rc == 0 && headers)
        rc = px_buf_append_str(&b, headers);
    if (rc == 0)
        rc = px_buf_append(&b, "\r\n", 2);
    if (rc == 0 && !no_content && !c->is_head && len)
        rc = px_buf_append(&b, body, len);
    if (rc == 0)
        rc = rt_conn_write(&c->conn, px_buf_head(&b), px_buf_len(&b));
    px_buf_cleanup(&b);
    if (rc < 0) {
        rt_conn_abort(&c->conn, PX_ERR_NOMEM);
        return PX_ERR_NOMEM;
    }
    if (!c->lingering)
        rt_conn_close(&c->conn, 0);
    return 0;
}

/* Refuses the request with status (400, 411, 413, 431). */
static void refuse(struct rt_httpd_conn *c, int status)
{
    static const char *const texts[] = {"bad request\n", "length required\n",
                                        "request body too large\n",
                                        "request header fields too large\n"};
    const char *t = status == 411   ? texts[1]
                    : status == 413 ? texts[2]
                    : status == 431 ? texts[3]
                                    : texts[0];
    PX_DEBUG("http %s: refused with %d", c->conn.peer_ip, status);
    /* A body the client is still sending: read it away for a moment. */
    if ((status == 411 || status == 413) && !c->msg_done) {
        c->lingering = 1;
        c->linger_left = LINGER_BYTES;
        rt_conn_set_deadline(&c->conn, LINGER_MS);
    }
    rt_httpd_respond(c, status, "text/plain; charset=utf-8", NULL, t, strlen(t));
}

/* ---- parsing ---- */

static int keep(char **dst, const char *v, size_t n)
{
    *dst = strndup(v, n);
    return *dst ? 0 : PX_ERR_NOMEM;
}

/* A complete header field (px_hdracc emit): keeps the ones a handler reads. */
static int on_field(void *arg, const char *name, size_t nlen, const char *value, size_t vlen)
{
    struct rt_httpd_conn *c = arg;
    /* A token name and a value of visible characters, spaces and tabs
     * (RFC 9110 5.1, 5.5): http_parser as Debian builds it lets spaces
     * into names and some control bytes into values. */
    if (!px_hdr_valid(name, nlen, value, vlen))
        return PX_ERR_INVAL;
    for (size_t i = 0; i < vlen; i++)
        if (((unsigned char)value[i] < 0x20 && value[i] != '\t') || value[i] == 0x7f)
            return PX_ERR_INVAL;
    char **slot = NULL;
    if (nlen == 4 && strncasecmp(name, "host", 4) == 0)
        slot = &c->host;
    else if (nlen == 13 && strncasecmp(name, "authorization", 13) == 0)
        slot = &c->authorization;
    else if (nlen == 12 && strncasecmp(name, "content-type", 12) == 0)
        slot = &c->content_type;
    if (slot) /* one of each (RFC 9112 3.2 for Host): two are a bad request */
        return *slot ? PX_ERR_INVAL : keep(slot, value, vlen);
    if (nlen == 6 && strncasecmp(name, "accept", 6) == 0) {
        if (!c->accept)
            return keep(&c->accept, value, vlen);
        /* Repeated Accept lines are one list (RFC 9110 5.3). */
        size_t old = strlen(c->accept);
        char *j = realloc(c->accept, old + 2 + vlen + 1);
        if (!j)
            return PX_ERR_NOMEM;
        memcpy(j + old, ", ", 2);
        memcpy(j + old + 2, value, vlen);
        j[old + 2 + vlen] = '\0';
        c->accept = j;
        return 0;
    }
    if (nlen == 6 && strncasecmp(name, "expect", 6) == 0 && vlen == 12 &&
        strncasecmp(value, "100-continue", 12) == 0)
        c->expect_continue = 1;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct rt_httpd_conn *c = p->data;
    return px_buf_append(&c->url, at, len) < 0 ? -1 : 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct rt_httpd_conn *c = p->data;
    return c->head_done ? 0 : px_hdracc_field(&c->hdr, at, len) < 0 ? -1 : 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct rt_httpd_conn *c = p->data;
    return c->head_done ? 0 : px_hdracc_value(&c->hdr, at, len) < 0 ? -1 : 0;
}

/* Splits the request target into path and query (origin-form, or
 * absolute-form, RFC 9112 3.2). Returns 0 or PX_ERR_INVAL / PX_ERR_NOMEM. */
static int split_target(struct rt_httpd_conn *c, char **path, char **query)
{
    const char *u = px_buf_cstr(&c->url);
    if (!u)
        return PX_ERR_NOMEM;
    size_t n = px_buf_len(&c->url);
    *path = *query = NULL;
    if (n > 0 && u[0] == '/') {
        size_t plen = strcspn(u, "?#");
        if (keep(path, u, plen) < 0)
            return PX_ERR_NOMEM;
        if (u[plen] == '?' && keep(query, u + plen + 1, strcspn(u + plen + 1, "#")) < 0)
            return PX_ERR_NOMEM;
        return 0;
    }
    struct http_parser_url pu;
    http_parser_url_init(&pu);
    if (strncasecmp(u, "http://", 7) != 0 && strncasecmp(u, "https://", 8) != 0)
        return PX_ERR_INVAL;
    if (http_parser_parse_url(u, n, 0, &pu) != 0)
        return PX_ERR_INVAL;
    if (pu.field_set & (1 << UF_PATH)) {
        if (keep(path, u + pu.field_data[UF_PATH].off, pu.field_data[UF_PATH].len) < 0)
            return PX_ERR_NOMEM;
    } else if (keep(path, "/", 1) < 0) {
        return PX_ERR_NOMEM;
    }
    if ((pu.field_set & (1 << UF_QUERY)) &&
        keep(query, u + pu.field_data[UF_QUERY].off, pu.field_data[UF_QUERY].len) < 0)
        return PX_ERR_NOMEM;
    return 0;
}

/* The request as handlers see it (body: what was read, if any). */
static struct rt_httpd_req request_of(struct rt_httpd_conn *c)
{
    struct rt_httpd_req req = {
        .method = c->is_head ? "GET" : http_method_str((enum http_method)c->parser.method),
        .path = c->path,
        .query = c->query,
        .host = c->host,
        .authorization = c->authorization,
        .content_type = c->content_type,
        .accept = c->accept,
        .body = px_buf_len(&c->body) ? px_buf_head(&c->body) : NULL,
        .body_len = px_buf_len(&c->body),
        .peer_ip = c->conn.peer_ip,
        .peer_loopback = is_loopback(c->conn.peer_ip),
    };
    return req;
}

/* Shows the head to the owner's on_head. Returns 1 when it answered. */
static int head_hook(struct rt_httpd_conn *c, size_t announced)
{
    struct rt_httpd *h = c->h;
    if (!h->ops->on_head)
        return 0;
    /* A body still to come is read away after an answer given now, so
     * that answer must not close the connection under it. */
    c->lingering = announced > 0;
    c->linger_left = LINGER_BYTES;
    struct rt_httpd_req head = request_of(c);
    head.body_len = announced;
    h->ops->on_head(h->ud, c, &head);
    if (!c->answered) {
        c->lingering = 0;
        return 0;
    }
    PX_DEBUG("http %s: %s %s: answered from the head", c->conn.peer_ip, head.method, c->path);
    c->early = 1;
    if (c->lingering)
        rt_conn_set_deadline(&c->conn, LINGER_MS);
    return 1;
}

static int on_headers_complete(http_parser *p)
{
    struct rt_httpd_conn *c = p->data;
    c->head_done = 1;
    if (px_hdracc_end(&c->hdr) < 0 || p->http_major != 1 || p->method == HTTP_CONNECT ||
        (p->http_minor >= 1 && !c->host)) {
        c->refuse = 400;
        return -1;
    }
    if (p->flags & F_CHUNKED) {
        c->refuse = 411;
        return -1;
    }
    int has_body = p->content_length > 0 && p->content_length != ULLONG_MAX;
    if (has_body && p->content_length > c->h->lim.max_body) {
        c->refuse = 413;
        return -1;
    }
    c->is_head = p->method == HTTP_HEAD;
    int rc = split_target(c, &c->path, &c->query);
    if (rc < 0) {
        if (rc == PX_ERR_INVAL)
            c->refuse = 400;
        else
            c->fail = rc;
        return -1;
    }
    size_t announced = has_body ? (size_t)p->content_length : 0;
    if (head_hook(c, announced))
        return 0; /* the body, if any, is parsed to its end and dropped */
    if (has_body) {
        /* Within max_body: one buffer of the announced size, no regrowth. */
        px_buf_set_min_cap(&c->body, announced);
        if (!px_buf_reserve(&c->body, announced)) {
            c->fail = PX_ERR_NOMEM;
            return -1;
        }
    }
    if (has_body && c->expect_continue && p->http_minor >= 1) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        if (rt_conn_write(&c->conn, cont, sizeof(cont) - 1) < 0)
            return -1;
        rt_conn_want_write(&c->conn);
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct rt_httpd_conn *c = p->data;
    if (c->early) { /* answered from the head: dropped, within the linger budget */
        if (len >= c->linger_left)
            return -1;
        c->linger_left -= len;
        return 0;
    }
    /* Content-Length was checked against max_body: this is a second guard. */
    if (px_buf_len(&c->body) + len > c->h->lim.max_body) {
        c->refuse = 413;
        return -1;
    }
    return px_buf_append(&c->body, at, len) < 0 ? -1 : 0;
}

static int on_message_complete(http_parser *p)
{
    struct rt_httpd_conn *c = p->data;
    c->msg_done = 1;
    http_parser_pause(p, 1); /* one request per connection: nothing after it */
    return 0;
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* The whole request is here: hand it to the owner. */
static void dispatch(struct rt_httpd_conn *c)
{
    struct rt_httpd *h = c->h;
    struct rt_httpd_req req = request_of(c);
    h->ops->on_request(h->ud, c, &req);
    if (!c->answered) {
        static const char t[] = "the handler gave no answer\n";
        PX_WARN("http %s: %s %s: the handler gave no answer", c->conn.peer_ip, req.method,
                req.path);
        rt_httpd_respond(c, 500, "text/plain; charset=utf-8", NULL, t, sizeof(t) - 1);
    }
}

static int on_data(struct rt_conn *rc, const uint8_t *data, size_t len)
{
    struct rt_httpd_conn *c = rc->owner;
    if (c->answered && !c->early) {
        if (!c->lingering)
            return 0;
        if (len >= c->linger_left)
            rt_conn_close(&c->conn, 0);
        else
            c->linger_left -= len;
        return 0;
    }
    const struct rt_httpd_limits *lim = &c->h->lim;
    while (len > 0 && (!c->answered || c->early) && !c->conn.closed) {
        size_t piece = len;
        if (!c->head_done) {
            /* Feed no more than the head may still take, so a head one
             * byte over max_head is caught whatever the reads look like. */
            if (c->head_seen >= lim->max_head) {
                refuse(c, 431);
                break;
            }
            if (piece > lim->max_head - c->head_seen)
                piece = lim->max_head - c->head_seen;
        }
        int was_head = !c->head_done;
        size_t n = http_parser_execute(&c->parser, &settings, (const char *)data, piece);
        if (was_head && !c->head_done)
            c->head_seen += n;
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (c->early) {
            /* Answered from the head: what follows is the body being read
             * away; once it is all in (or past the budget, or malformed)
             * the connection closes behind the answer. */
            if (c->msg_done || e != HPE_OK)
                rt_conn_close(&c->conn, 0);
            if (c->msg_done || e != HPE_OK || n == 0)
                break;
            data += n;
            len -= n;
            continue;
        }
        if (c->fail) {
            rt_conn_abort(&c->conn, c->fail);
            break;
        }
        if (c->refuse) {
            refuse(c, c->refuse);
            break;
        }
        if (c->msg_done) {
            dispatch(c);
            break;
        }
        if (e != HPE_OK) {
            PX_DEBUG("http %s: bad request: %s", c->conn.peer_ip, http_errno_description(e));
            refuse(c, e == HPE_HEADER_OVERFLOW ? 431 : 400);
            break;
        }
        if (n == 0)
            break; /* cannot happen without an error */
        data += n;
        len -= n;
    }
    px_buf_shrink(&c->url, 0);
    return 0;
}

static void on_close(struct rt_conn *rc, int err)
{
    (void)err;
    struct rt_httpd_conn *c = rc->owner;
    struct rt_httpd *h = c->h;
    px_list_remove(&c->node);
    if (c->counted)
        h->n_conns--;
    if (c->owes_release && h->ops->release)
        h->ops->release(h->ud, c->tok);
    conn_free(c);
    h->alive--;
    maybe_free_server(h);
}

static const struct rt_conn_ops conn_ops = {.on_data = on_data, .on_close = on_close};

/* A connection set up for h (not yet open), or NULL when out of memory. */
static struct rt_httpd_conn *conn_new(struct rt_httpd *h)
{
    struct rt_httpd_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->h = h;
    px_buf_init(&c->url);
    px_buf_init(&c->body);
    px_hdracc_init(&c->hdr, 0, 0, on_field, c);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    if (rt_conn_init(&c->conn, h->loop, &conn_ops, c) < 0) {
        free(c);
        return NULL;
    }
    px_list_insert_tail(&h->conns, &c->node);
    h->alive++;
    return c;
}

/* Counts c against max_conns and asks the owner; arms the deadline.
 * Returns 0, or -1 when c is refused (the caller closes it). */
static int admit(struct rt_httpd_conn *c)
{
    struct rt_httpd *h = c->h;
    if (h->n_conns >= h->lim.max_conns)
        return -1;
    if (h->ops->admit && h->ops->admit(h->ud, c->conn.peer_ip, &c->tok) < 0)
        return -1;
    c->owes_release = 1;
    c->counted = 1;
    h->n_conns++;
    rt_conn_set_deadline(&c->conn, h->lim.deadline_ms);
    return 0;
}

struct rt_httpd *rt_httpd_new(uv_loop_t *loop, const struct rt_httpd_limits *limits,
                              const struct rt_httpd_ops *ops, void *ud)
{
    if (!loop || !ops || !ops->on_request)
        return NULL;
    struct rt_httpd *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->loop = loop;
    h->ops = ops;
    h->ud = ud;
    if (limits)
        h->lim = *limits;
    if (!h->lim.max_head)
        h->lim.max_head = DEFAULT_MAX_HEAD;
    if (!h->lim.max_body)
        h->lim.max_body = DEFAULT_MAX_BODY;
    if (!h->lim.deadline_ms)
        h->lim.deadline_ms = DEFAULT_DEADLINE_MS;
    if (!h->lim.max_conns)
        h->lim.max_conns = DEFAULT_MAX_CONNS;
    px_list_init(&h->conns);
    return h;
}

void rt_httpd_accept(struct rt_httpd *h, uv_stream_t *listener)
{
    if (h->freeing)
        return;
    struct rt_httpd_conn *c = conn_new(h);
    if (!c)
        return;
    if (rt_conn_accept(&c->conn, listener, NULL, NULL, 0) < 0)
        return; /* closed through on_close */
    if (admit(c) < 0)
        rt_conn_abort(&c->conn, PX_ERR_DENIED);
}

struct rt_conn *rt_httpd_new_memory(struct rt_httpd *h, const char *peer_ip)
{
    if (h->freeing || h->n_conns >= h->lim.max_conns)
        return NULL;
    struct rt_httpd_conn *c = conn_new(h);
    if (!c)
        return NULL;
    rt_conn_open_memory(&c->conn, "", peer_ip);
    if (admit(c) < 0) {
        rt_conn_abort(&c->conn, PX_ERR_DENIED);
        return NULL;
    }
    return &c->conn;
}

/* ---- listeners ---- */

static void on_connection(uv_stream_t *server, int status)
{
    struct listener *l = server->data;
    if (status < 0) {
        PX_WARN("http listener: accept failed: %s", uv_strerror(status));
        return;
    }
    rt_httpd_accept(l->h, server);
}

static void on_listener_closed(uv_handle_t *hd)
{
    struct listener *l = hd->data;
    struct rt_httpd *h = l->h;
    free(l);
    h->alive--;
    maybe_free_server(h);
}

/* "HOST:PORT" or "[V6]:PORT" into a socket address. */
static int parse_hostport(const char *s, struct sockaddr_storage *ss)
{
    char host[64];
    const char *hs, *he, *port;
    if (s[0] == '[') {
        hs = s + 1;
        he = strchr(hs, ']');
        if (!he || he[1] != ':')
            return PX_ERR_INVAL;
        port = he + 2;
    } else {
        hs = s;
        he = strchr(s, ':');
        if (!he || strchr(he + 1, ':'))
            return PX_ERR_INVAL;
        port = he + 1;
    }
    size_t hl = (size_t)(he - hs);
    if (hl == 0 || hl >= sizeof(host))
        return PX_ERR_INVAL;
    memcpy(host, hs, hl);
    host[hl] = '\0';
    size_t pl = strlen(port);
    if (pl == 0 || pl > 5 || strspn(port, "0123456789") != pl)
        return PX_ERR_INVAL;
    long p = strtol(port, NULL, 10);
    if (p > 65535)
        return PX_ERR_INVAL;
    memset(ss, 0, sizeof(*ss));
    if (s[0] == '[')
        return uv_ip6_addr(host, (int)p, (struct sockaddr_in6 *)ss) == 0 ? 0 : PX_ERR_INVAL;
    return uv_ip4_addr(host, (int)p, (struct sockaddr_in *)ss) == 0 ? 0 : PX_ERR_INVAL;
}

static int format_bound(uv_tcp_t *t, char *bound, size_t bound_len)
{
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    char ip[64];
    if (uv_tcp_getsockname(t, (struct sockaddr *)&ss, &sl) < 0)
        return PX_ERR_IO;
    int n;
    if (ss.ss_family == AF_INET6) {
        if (uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip)) < 0)
            return PX_ERR_IO;
        n = snprintf(bound, bound_len, "[%s]:%u", ip,
                     ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
    } else {
        if (uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip)) < 0)
            return PX_ERR_IO;
        n = snprintf(bound, bound_len, "%s:%u", ip, ntohs(((struct sockaddr_in *)&ss)->sin_port));
    }
    return n < 0 || (size_t)n >= bound_len ? PX_ERR_INVAL : 0;
}

int rt_httpd_listen(struct rt_httpd *h, const char *hostport, char *bound, size_t bound_len)
{
    struct sockaddr_storage ss;
    if (!h || h->freeing || !hostport || (bound && bound_len < 64) ||
        parse_hostport(hostport, &ss) < 0)
        return PX_ERR_INVAL;
    struct listener *l = calloc(1, sizeof(*l));
    if (!l)
        return PX_ERR_NOMEM;
    l->h = h;
    int r = uv_tcp_init(h->loop, &l->tcp);
    if (r < 0) {
        free(l);
        PX_WARN("http listener %s: %s", hostport, uv_strerror(r));
        return PX_ERR_IO;
    }
    l->tcp.data = l;
    h->alive++;
    r = uv_tcp_bind(&l->tcp, (const struct sockaddr *)&ss, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&l->tcp, BACKLOG, on_connection);
    if (r < 0) {
        PX_WARN("http listener %s: %s", hostport, uv_strerror(r));
        uv_close((uv_handle_t *)&l->tcp, on_listener_closed);
        return PX_ERR_IO;
    }
    l->next = h->listeners;
    h->listeners = l;
    if (bound && format_bound(&l->tcp, bound, bound_len) < 0)
        snprintf(bound, bound_len, "%s", hostport);
    return 0;
}

void rt_httpd_free(struct rt_httpd *h)
{
    if (!h)
        return;
    h->freeing = 1;
    for (struct listener *l = h->listeners; l; l = l->next)
        uv_close((uv_handle_t *)&l->tcp, on_listener_closed);
    h->listeners = NULL;
    /* The owner hears of every admitted connection before this returns, so
     * nothing calls it once the server is gone from its point of view. */
    struct px_list_node *n, *tmp;
    px_list_for_each_safe (n, tmp, &h->conns) {
        struct rt_httpd_conn *c = px_container_of(n, struct rt_httpd_conn, node);
        if (c->owes_release && h->ops->release)
            h->ops->release(h->ud, c->tok);
        c->owes_release = 0;
        rt_conn_abort(&c->conn, PX_ERR_CLOSED);
    }
    maybe_free_server(h);
}
