#include "es_admin.h"
#include "es_assert.h"
#include "es_link.h"
#include "es_live.h"
#include "es_registry.h"
#include "es_server.h"
#include "es_text.h"
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
                       : status == 500 ? "Internal Server Error"
                                       : "Bad Request",
                       ctype, strlen(body), body) == 0)
        rt_conn_write(&a->conn, px_buf_head(&h), px_buf_len(&h));
    px_buf_cleanup(&h);
    a->answered = 1;
    rt_conn_close(&a->conn, 0);
}

/* s as a JSON string: its longest valid UTF-8 prefix (what the store and
 * live.db hold was written by other programs too; jansson refuses invalid
 * UTF-8). NULL only when out of memory. Every constructor's NULL below is
 * caught by json_object_set_new / json_array_append_new, which fail on it
 * (and drop what they were given when they fail). */
static json_t *text(const char *s)
{
    return json_stringn(s, es_text_prefix(s, (size_t)-1));
}

/* The connector entry of id in arr, added if new. A connection whose
 * connector gave no id is a connector of its own (id null). NULL when out
 * of memory. */
static json_t *connector_entry(json_t *arr, const struct es_live_conn *c)
{
    size_t i;
    json_t *e;
    if (c->connector[0])
        json_array_foreach(arr, i, e) if (json_is_string(json_object_get(e, "id")) &&
                                          strcmp(json_string_value(json_object_get(e, "id")),
                                                 c->connector) == 0) return e;
    e = json_object();
    if (json_array_append_new(arr, e) < 0 ||
        json_object_set_new(e, "id", c->connector[0] ? text(c->connector) : json_null()) < 0 ||
        json_object_set_new(e, "agent", text(c->agent)) < 0 ||
        json_object_set_new(e, "address", text(c->address)) < 0 ||
        json_object_set_new(e, "connections", json_array()) < 0)
        return NULL;
    return e;
}

/* Adds to o, for tunnel t, every live instance's connections of it:
 * "connectors" (who, and which connection to which edge) and "edges"
 * (connections per edge address). Returns 0, or -1 when out of memory. */
static int add_live(json_t *o, const struct es_tunnel *t, const struct es_live_conn *c, size_t n)
{
    json_t *conns = json_array();
    if (json_object_set_new(o, "connectors", conns) < 0)
        return -1;
    json_t *edges = json_object();
    if (json_object_set_new(o, "edges", edges) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(c[i].tunnel_id, t->id) != 0)
            continue;
        json_t *e = connector_entry(conns, &c[i]);
        if (!e)
            return -1;
        json_t *conn = json_object();
        if (json_array_append_new(json_object_get(e, "connections"), conn) < 0 ||
            json_object_set_new(conn, "edge", text(c[i].edge)) < 0 ||
            json_object_set_new(conn, "index",
                                c[i].conn_index >= 0 ? json_integer(c[i].conn_index)
                                                     : json_null()) < 0 ||
            json_object_set_new(conn, "conn_id", text(c[i].conn_id)) < 0 ||
            json_object_set_new(conn, "dialed", text(c[i].dialed)) < 0 ||
            json_object_set_new(conn, "since", json_integer(c[i].since)) < 0)
            return -1;
        /* Keyed by the same valid prefix the entries show. */
        json_t *key = text(c[i].edge);
        const char *k = json_string_value(key);
        int rc = k ? json_object_set_new(
                         edges, k, json_integer(json_integer_value(json_object_get(edges, k)) + 1))
                   : -1;
        json_decref(key);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* The tunnels, read only: the live view as the instances' last heartbeats
 * left it (this one's rows are at most ES_LIVE_HEARTBEAT_MS old), so an
 * admin request never writes or waits on live.db's write lock. NULL when
 * out of memory. */
static char *tunnels_json(struct es_server *srv)
{
    struct es_live_conn *live = NULL;
    size_t n_live = 0;
    char *s = NULL;
    if (srv->live.db && es_live_conns(&srv->live, es_live_now_ms(), &live, &n_live) < 0)
        n_live = 0;
    json_t *arr = json_array(), *root = json_object();
    if (json_object_set_new(root, "tunnels", arr) < 0)
        goto out;
    for (struct es_tunnel *t = srv->reg.tunnels; t; t = t->next) {
        unsigned links = 0;
        for (struct es_link *l = t->links; l; l = l->tunnel_next)
            links++;
        json_t *o = json_object();
        if (json_array_append_new(arr, o) < 0 || json_object_set_new(o, "id", text(t->id)) < 0 ||
            json_object_set_new(o, "name", text(t->name)) < 0 ||
            json_object_set_new(o, "connections", json_integer(links)) < 0)
            goto out;
        json_t *hosts = json_array();
        if (json_object_set_new(o, "hostnames", hosts) < 0)
            goto out;
        for (struct es_route *r = srv->reg.routes; r; r = r->next)
            if (strcmp(r->tunnel_id, t->id) == 0 &&
                json_array_append_new(hosts, text(r->hostname)) < 0)
                goto out;
        if (add_live(o, t, live, n_live) < 0)
            goto out;
    }
    if (json_object_set_new(root, "requests_total", json_integer((json_int_t)srv->requests_total)) <
            0 ||
        json_object_set_new(root, "links", json_integer(es_link_count(srv))) < 0)
        goto out;
    s = json_dumps(root, JSON_INDENT(2));
out:
    free(live);
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
        if (js)
            respond(a, 200, "application/json", js);
        else /* never a partial list that looks whole */
            respond(a, 500, "text/plain", "out of memory\n");
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

struct rt_conn *es_admin_new_memory(struct es_server *srv, const char *peer_ip)
{
    struct admin_conn *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->srv = srv;
    px_buf_init(&a->in);
    if (rt_conn_init(&a->conn, srv->loop, &ops, a) < 0) {
        free(a);
        return NULL;
    }
    rt_conn_open_memory(&a->conn, "", peer_ip);
    return &a->conn;
}
