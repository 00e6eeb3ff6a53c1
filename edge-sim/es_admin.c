#include "es_admin.h"
#include "es_assert.h"
#include "es_link.h"
#include "es_live.h"
#include "es_registry.h"
#include "es_server.h"
#include "px_buf.h"
#include "px_err.h"
#include "rt_conn.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A request must arrive whole within this (slow clients hold nothing). */
#define ADMIN_DEADLINE_MS 10000

struct admin_conn {
    struct rt_conn conn;
    struct es_server *srv;
    char *cap_key;
    struct px_buf in;
    int answered;
};

static void respond(struct admin_conn *a, int status, const char *ctype, const char *body)
{
    struct px_buf h;
    px_buf_init(&h);
    if (px_buf_appendf(&h,
                       "HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %zu\r\n"
                       "connection: close\r\n\r\n%s",
                       status,
                       status == 200   ? "OK"
                       : status == 404 ? "Not Found"
                                       : "Bad Request",
                       ctype, strlen(body), body) == 0)
        rt_conn_write(&a->conn, px_buf_head(&h), px_buf_len(&h));
    px_buf_cleanup(&h);
    a->answered = 1;
    rt_conn_close(&a->conn, 0);
}

/* The connector entry of id in arr, added if new. A connection whose
 * connector gave no id is a connector of its own (id null). */
static json_t *connector_entry(json_t *arr, const struct es_live_conn *c)
{
    size_t i;
    json_t *e;
    if (c->connector[0])
        json_array_foreach(arr, i, e) if (json_is_string(json_object_get(e, "id")) &&
                                          strcmp(json_string_value(json_object_get(e, "id")),
                                                 c->connector) == 0) return e;
    e = json_pack("{s:o,s:s,s:s,s:[]}", "id",
                  c->connector[0] ? json_string(c->connector) : json_null(), "agent", c->agent,
                  "address", c->address, "connections");
    json_array_append_new(arr, e);
    return e;
}

/* Adds to o, for tunnel t, every live instance's connections of it:
 * "connectors" (who, and which connection to which edge) and "edges"
 * (connections per edge address). */
static void add_live(json_t *o, const struct es_tunnel *t, const struct es_live_conn *c, size_t n)
{
    json_t *conns = json_array(), *edges = json_object();
    for (size_t i = 0; i < n; i++) {
        if (strcmp(c[i].tunnel_id, t->id) != 0)
            continue;
        json_t *e = connector_entry(conns, &c[i]);
        json_t *conn = json_pack("{s:s,s:s,s:s,s:I}", "edge", c[i].edge, "conn_id", c[i].conn_id,
                                 "dialed", c[i].dialed, "since", (json_int_t)c[i].since);
        json_object_set_new(conn, "index",
                            c[i].conn_index >= 0 ? json_integer(c[i].conn_index) : json_null());
        json_array_append_new(json_object_get(e, "connections"), conn);
        json_int_t k = json_integer_value(json_object_get(edges, c[i].edge));
        json_object_set_new(edges, c[i].edge, json_integer(k + 1));
    }
    json_object_set_new(o, "connectors", conns);
    json_object_set_new(o, "edges", edges);
}

static char *tunnels_json(struct es_server *srv)
{
    struct es_live_conn *live = NULL;
    size_t n_live = 0;
    es_live_beat(srv); /* our own rows as of now */
    if (srv->live.db && es_live_conns(&srv->live, es_live_now_ms(), &live, &n_live) < 0)
        n_live = 0;
    json_t *arr = json_array();
    for (struct es_tunnel *t = srv->reg.tunnels; t; t = t->next) {
        unsigned links = 0;
        for (struct es_link *l = t->links; l; l = l->tunnel_next)
            links++;
        json_t *hosts = json_array();
        for (struct es_route *r = srv->reg.routes; r; r = r->next)
            if (strcmp(r->tunnel_id, t->id) == 0)
                json_array_append_new(hosts, json_string(r->hostname));
        json_t *o = json_pack("{s:s,s:s,s:i,s:o}", "id", t->id, "name", t->name, "connections",
                              (int)links, "hostnames", hosts);
        add_live(o, t, live, n_live);
        json_array_append_new(arr, o);
    }
    free(live);
    json_t *root = json_pack("{s:o,s:I,s:i}", "tunnels", arr, "requests_total",
                             (json_int_t)srv->requests_total, "links", (int)es_link_count(srv));
    char *s = json_dumps(root, JSON_INDENT(2));
    json_decref(root);
    return s;
}

static int on_data(struct rt_conn *c, const uint8_t *data, size_t len)
{
    struct admin_conn *a = c->owner;
    if (a->answered)
        return 0;
    if (px_buf_append(&a->in, data, len) < 0 || px_buf_len(&a->in) > 16384)
        return -1;
    const char *h = (const char *)px_buf_head(&a->in);
    size_t n = px_buf_len(&a->in);
    if (!memmem(h, n, "\r\n\r\n", 4))
        return 0;
    if (n >= 12 && strncmp(h, "GET /healthz ", 13) == 0) {
        respond(a, 200, "text/plain", "ok\n");
    } else if (n >= 17 && strncmp(h, "GET /api/tunnels ", 17) == 0) {
        char *js = tunnels_json(a->srv);
        respond(a, 200, "application/json", js ? js : "{}");
        free(js);
    } else if (strncmp(h, "GET /.well-known/jwks.json ", 27) == 0 && a->srv->assert) {
        /* The keys that verify the edge's identity assertions. */
        respond(a, 200, "application/jwk-set+json", es_assert_jwks(a->srv->assert));
    } else {
        respond(a, 404, "text/plain", "not found\n");
    }
    return 0;
}

static void on_close(struct rt_conn *c, int err)
{
    (void)err;
    struct admin_conn *a = c->owner;
    es_conncap_release(&a->srv->conns, &a->cap_key);
    px_buf_cleanup(&a->in);
    free(a);
}

static const struct rt_conn_ops ops = {.on_data = on_data, .on_close = on_close};

void es_admin_accept(struct es_server *srv, uv_stream_t *listener)
{
    struct admin_conn *a = calloc(1, sizeof(*a));
    if (!a)
        return;
    a->srv = srv;
    px_buf_init(&a->in);
    if (rt_conn_init(&a->conn, srv->loop, &ops, a) < 0) {
        free(a);
        return;
    }
    if (rt_conn_accept(&a->conn, listener, NULL, NULL, 0) < 0)
        return;
    if (es_conncap_admit(&srv->conns, a->conn.peer_ip, "admin", uv_now(srv->loop), &a->cap_key) <
        0) {
        rt_conn_abort(&a->conn, PX_ERR_DENIED);
        return;
    }
    rt_conn_set_deadline(&a->conn, ADMIN_DEADLINE_MS);
}
