#include "fake_origin.h"
#include "px_ws.h"

#include <http_parser.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

struct fo_conn {
    struct fake_origin *fo;
    uv_tcp_t tcp;
    http_parser parser;
    struct px_buf head;  /* the request head being rebuilt */
    struct px_buf url;   /* its target */
    struct px_buf field; /* the field name being read */
    struct px_buf key;   /* Sec-WebSocket-Key */
    int hstate;          /* 0: request line, 1: in a name, 2: in a value */
    int in_key;          /* the value being read is the key's */
    size_t body;         /* body bytes of the current request */
    int upgraded;        /* after a 101: every byte is echoed */
    struct fo_conn *next;
};

/* One write: the request and its bytes in one allocation. */
struct fo_write {
    uv_write_t req;
    char data[];
};

static void conn_closed(uv_handle_t *h)
{
    struct fo_conn *c = h->data;
    struct fake_origin *fo = c->fo;
    for (struct fo_conn **p = &fo->conns; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
    fo->open--;
    px_buf_cleanup(&c->head);
    px_buf_cleanup(&c->url);
    px_buf_cleanup(&c->field);
    px_buf_cleanup(&c->key);
    free(c);
}

static void conn_close(struct fo_conn *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void written(uv_write_t *req, int status)
{
    (void)status; /* the peer may have gone: nothing to do either way */
    free(req);
}

/* Sends head (a C string) followed by n body bytes: pattern ("/big"), or
 * body, or nothing. */
static void send_out(struct fo_conn *c, const char *head, const void *body, size_t n, int pattern)
{
    if (uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    size_t hl = strlen(head);
    struct fo_write *w = malloc(sizeof(*w) + hl + n);
    if (!w) {
        conn_close(c);
        return;
    }
    memcpy(w->data, head, hl);
    if (pattern)
        for (size_t i = 0; i < n; i++)
            w->data[hl + i] = (char)fo_big_byte(i);
    else if (n)
        memcpy(w->data + hl, body, n);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)(hl + n));
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, written) != 0) {
        free(w);
        conn_close(c);
    }
}

static int path_is(struct fo_conn *c, const char *want)
{
    const char *url = px_buf_cstr(&c->url);
    size_t n = strcspn(url, "?");
    return n == strlen(want) && strncmp(url, want, n) == 0;
}

/* The request in c is complete: answer it as its path says. */
static void answer(struct fo_conn *c)
{
    struct fake_origin *fo = c->fo;
    char head[256];
    if (c->parser.upgrade && px_buf_len(&c->key)) {
        char accept[PX_WS_ACCEPT_LEN];
        if (px_ws_accept(px_buf_cstr(&c->key), px_buf_len(&c->key), accept) < 0) {
            conn_close(c);
            return;
        }
        snprintf(head, sizeof(head),
                 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                 accept);
        c->upgraded = 1;
        fo->answered++;
        send_out(c, head, NULL, 0, 0);
        return;
    }
    if (path_is(c, "/hang"))
        return;
    fo->answered++;
    if (path_is(c, "/big")) {
        snprintf(head, sizeof(head),
                 "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n"
                 "Content-Type: application/octet-stream\r\n\r\n",
                 fo->big_size);
        send_out(c, head, NULL, fo->big_size, 1);
    } else if (path_is(c, "/echo")) {
        char n[32];
        int len = snprintf(n, sizeof(n), "%zu", c->body);
        snprintf(head, sizeof(head),
                 "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: text/plain\r\n\r\n", len);
        send_out(c, head, n, (size_t)len, 0);
    } else if (path_is(c, "/bad")) {
        send_out(c, "HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\nxx", NULL, 0, 0);
    } else if (path_is(c, "/bad-status")) {
        send_out(c, "HTTP/1.1 999 Nope\r\nContent-Length: 0\r\n\r\n", NULL, 0, 0);
    } else {
        send_out(c,
                 "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nContent-Type: text/plain\r\n"
                 "X-Origin: fake\r\nKeep-Alive: timeout=5\r\n\r\n" FO_OK_BODY,
                 NULL, 0, 0);
    }
}

/* ---- request parsing (http_parser) ---- */

static int on_begin(http_parser *p)
{
    struct fo_conn *c = p->data;
    px_buf_consume(&c->head, px_buf_len(&c->head));
    px_buf_consume(&c->url, px_buf_len(&c->url));
    px_buf_consume(&c->key, px_buf_len(&c->key));
    c->hstate = 0;
    c->in_key = 0;
    c->body = 0;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct fo_conn *c = p->data;
    if (px_buf_len(&c->head) == 0 &&
        px_buf_appendf(&c->head, "%s ", http_method_str((enum http_method)p->method)) < 0)
        return -1;
    return px_buf_append(&c->url, at, len) < 0 || px_buf_append(&c->head, at, len) < 0 ? -1 : 0;
}

static int on_field(http_parser *p, const char *at, size_t len)
{
    struct fo_conn *c = p->data;
    if (c->hstate != 1) {
        if (px_buf_append_str(&c->head, "\r\n") < 0)
            return -1;
        px_buf_consume(&c->field, px_buf_len(&c->field));
        c->hstate = 1;
    }
    return px_buf_append(&c->field, at, len) < 0 || px_buf_append(&c->head, at, len) < 0 ? -1 : 0;
}

static int on_value(http_parser *p, const char *at, size_t len)
{
    struct fo_conn *c = p->data;
    if (c->hstate != 2) {
        if (px_buf_append_str(&c->head, ": ") < 0)
            return -1;
        c->in_key = strcasecmp(px_buf_cstr(&c->field), "sec-websocket-key") == 0;
        if (c->in_key)
            px_buf_consume(&c->key, px_buf_len(&c->key));
        c->hstate = 2;
    }
    if (c->in_key && px_buf_append(&c->key, at, len) < 0)
        return -1;
    return px_buf_append(&c->head, at, len) < 0 ? -1 : 0;
}

static int on_headers(http_parser *p)
{
    struct fo_conn *c = p->data;
    if (px_buf_append_str(&c->head, "\r\n\r\n") < 0 ||
        px_buf_append(&c->fo->heads, px_buf_head(&c->head), px_buf_len(&c->head)) < 0)
        return -1;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    (void)at;
    struct fo_conn *c = p->data;
    c->body += len;
    c->fo->body_bytes += len;
    return 0;
}

static int on_complete(http_parser *p)
{
    answer(p->data);
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_begin,
    .on_url = on_url,
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_headers_complete = on_headers,
    .on_body = on_body,
    .on_message_complete = on_complete,
};

/* ---- connections ---- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)h;
    b->base = malloc(suggested);
    b->len = b->base ? suggested : 0;
}

static void echo(struct fo_conn *c, const char *data, size_t n)
{
    if (n == 0)
        return;
    c->fo->ws_bytes += n;
    send_out(c, "", data, n, 0);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct fo_conn *c = st->data;
    if (n > 0) {
        c->fo->bytes += (size_t)n;
        if (c->upgraded) {
            echo(c, b->base, (size_t)n);
        } else {
            size_t used = http_parser_execute(&c->parser, &settings, b->base, (size_t)n);
            if (c->upgraded)
                echo(c, b->base + used, (size_t)n - used);
            else if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK)
                conn_close(c);
        }
    } else if (n < 0) {
        conn_close(c);
    }
    free(b->base);
}

static void on_accept(uv_stream_t *server, int status)
{
    struct fake_origin *fo = server->data;
    if (status < 0)
        return;
    struct fo_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->fo = fo;
    px_buf_init(&c->head);
    px_buf_init(&c->url);
    px_buf_init(&c->field);
    px_buf_init(&c->key);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    uv_tcp_init(server->loop, &c->tcp);
    c->tcp.data = c;
    c->next = fo->conns;
    fo->conns = c;
    fo->open++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    fo->accepted++;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int fo_start(struct fake_origin *fo, uv_loop_t *loop)
{
    memset(fo, 0, sizeof(*fo));
    fo->loop = loop;
    fo->big_size = FO_BIG_SIZE;
    px_buf_init(&fo->heads);
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    int rc = uv_tcp_init(loop, &fo->server);
    if (rc < 0)
        return rc;
    fo->server.data = fo;
    rc = uv_tcp_bind(&fo->server, (const struct sockaddr *)&sa, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&fo->server, 64, on_accept);
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (rc == 0)
        rc = uv_tcp_getsockname(&fo->server, (struct sockaddr *)&ss, &len);
    if (rc < 0) {
        uv_close((uv_handle_t *)&fo->server, NULL);
        return rc;
    }
    fo->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return 0;
}

void fo_reset(struct fake_origin *fo)
{
    for (struct fo_conn *c = fo->conns; c; c = c->next)
        conn_close(c);
    for (int i = 0; i < 100 && fo->conns; i++)
        uv_run(fo->loop, UV_RUN_NOWAIT);
    fo->accepted = 0;
    fo->bytes = fo->body_bytes = fo->ws_bytes = 0;
    fo->answered = 0;
    px_buf_consume(&fo->heads, px_buf_len(&fo->heads));
}

void fo_stop(struct fake_origin *fo)
{
    fo_reset(fo);
    uv_close((uv_handle_t *)&fo->server, NULL);
    for (int i = 0; i < 4; i++)
        uv_run(fo->loop, UV_RUN_NOWAIT);
    px_buf_cleanup(&fo->heads);
}

int fo_refusing_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int port = -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}
