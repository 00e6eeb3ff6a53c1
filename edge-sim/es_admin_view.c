#include "es_admin_view.h"
#include "es_link.h"
#include "es_live.h"
#include "es_metrics.h"
#include "es_registry.h"
#include "es_server.h"
#include "es_store_access.h"
#include "es_text.h"
#include "px_cert.h"
#include "px_err.h"
#include "px_version.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* s as a JSON string: its longest valid UTF-8 prefix (what the store and
 * live.db hold was written by other programs too; jansson refuses invalid
 * UTF-8). NULL only when out of memory. Every constructor's NULL below is
 * caught by json_object_set_new / json_array_append_new, which fail on it
 * (and drop what they were given when they fail). */
static json_t *text(const char *s)
{
    return s ? json_stringn(s, es_text_prefix(s, (size_t)-1)) : json_null();
}

/* The version in an agent "connector/X" (up to a space), or JSON null. */
static json_t *agent_version(const char *agent)
{
    static const char prefix[] = "connector/";
    if (strncmp(agent, prefix, sizeof(prefix) - 1) != 0)
        return json_null();
    const char *v = agent + sizeof(prefix) - 1;
    size_t n = strcspn(v, " ");
    return json_stringn(v, es_text_prefix(v, n));
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
        json_object_set_new(e, "version", agent_version(c->agent)) < 0 ||
        json_object_set_new(e, "address", text(c->address)) < 0 ||
        json_object_set_new(e, "since", json_integer(c->since)) < 0 ||
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
        /* Connected since its oldest connection. */
        if (c[i].since < json_integer_value(json_object_get(e, "since")) &&
            json_object_set_new(e, "since", json_integer(c[i].since)) < 0)
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

/* The TUNNEL object of t. NULL when out of memory. */
static json_t *tunnel_json(struct es_server *srv, const struct es_tunnel *t,
                           const struct es_live_conn *live, size_t n_live)
{
    unsigned links = 0;
    for (struct es_link *l = t->links; l; l = l->tunnel_next)
        links++;
    json_t *o = json_object();
    if (json_object_set_new(o, "id", text(t->id)) < 0 ||
        json_object_set_new(o, "name", text(t->name)) < 0 ||
        json_object_set_new(o, "connections", json_integer(links)) < 0 ||
        json_object_set_new(o, "hostnames", json_array()) < 0 ||
        json_object_set_new(o, "allowed_hostnames", json_array()) < 0)
        goto fail;
    json_t *hosts = json_object_get(o, "hostnames"),
           *allowed = json_object_get(o, "allowed_hostnames");
    for (struct es_route *r = srv->reg.routes; r; r = r->next)
        if (strcmp(r->tunnel_id, t->id) == 0 && json_array_append_new(hosts, text(r->hostname)) < 0)
            goto fail;
    for (size_t i = 0; i < t->n_patterns; i++)
        if (json_array_append_new(allowed, text(t->patterns[i])) < 0)
            goto fail;
    if (add_live(o, t, live, n_live) < 0)
        goto fail;
    return o;
fail:
    json_decref(o);
    return NULL;
}

/* The live view's connections (none when it is not open or unreadable:
 * the registry's part still answers). */
static void live_conns(struct es_server *srv, struct es_live_conn **live, size_t *n)
{
    *live = NULL;
    *n = 0;
    if (srv->live.db && es_live_conns(&srv->live, es_live_now_ms(), live, n) < 0) {
        *live = NULL;
        *n = 0;
    }
}

/* Adds the tunnels' fields to root. Returns 0 or -1 (no memory). */
static int add_tunnels(struct es_server *srv, json_t *root)
{
    struct es_live_conn *live;
    size_t n_live;
    int rc = -1;
    live_conns(srv, &live, &n_live);
    json_t *arr = json_array();
    if (json_object_set_new(root, "tunnels", arr) < 0)
        goto out;
    for (struct es_tunnel *t = srv->reg.tunnels; t; t = t->next)
        if (!t->deleted && json_array_append_new(arr, tunnel_json(srv, t, live, n_live)) < 0)
            goto out;
    if (json_object_set_new(root, "requests_total", json_integer((json_int_t)srv->requests_total)) <
            0 ||
        json_object_set_new(root, "links", json_integer(es_link_count(srv))) < 0)
        goto out;
    rc = 0;
out:
    free(live);
    return rc;
}

json_t *es_admin_view_tunnels(struct es_server *srv)
{
    json_t *root = json_object();
    if (add_tunnels(srv, root) < 0) {
        json_decref(root);
        return NULL;
    }
    return root;
}

int es_admin_view_tunnel(struct es_server *srv, const char *name, json_t **out)
{
    *out = NULL;
    struct es_tunnel *t = srv->reg.tunnels;
    while (t && (t->deleted || strcmp(t->name, name) != 0))
        t = t->next;
    if (!t)
        return PX_ERR_NOT_FOUND;
    struct es_live_conn *live;
    size_t n_live;
    live_conns(srv, &live, &n_live);
    *out = tunnel_json(srv, t, live, n_live);
    free(live);
    return *out ? 0 : PX_ERR_NOMEM;
}

json_t *es_admin_view_status(struct es_server *srv, long long since)
{
    long long now = es_live_now_ms();
    json_t *root = json_object(), *edge = json_object();
    if (json_object_set_new(root, "edge", edge) < 0 ||
        json_object_set_new(edge, "version", json_string(PX_VERSION)) < 0 ||
        json_object_set_new(edge, "since", json_integer(since)) < 0 ||
        json_object_set_new(edge, "instance", srv->live.id[0] ? text(srv->live.id) : json_null()) <
            0 ||
        json_object_set_new(edge, "tunnel_addr", text(srv->tunnel_addr)) < 0 ||
        json_object_set_new(edge, "draining", json_boolean(srv->drain_phase != 0)) < 0 ||
        json_object_set_new(root, "now", json_integer(now)) < 0 || add_tunnels(srv, root) < 0)
        goto fail;
    /* hostnames and recent_errors (both empty without metrics). */
    json_t *m = es_metrics_status(srv->metrics, (uint64_t)now);
    if (!m || json_object_update(root, m) < 0) {
        json_decref(m);
        goto fail;
    }
    json_decref(m);
    return root;
fail:
    json_decref(root);
    return NULL;
}

static json_t *strings(char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        if (json_array_append_new(a, text(v[i])) < 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

json_t *es_admin_view_access(struct es_server *srv)
{
    struct es_policy_rec *p;
    size_t n;
    if (es_store_policy_list(&srv->store, &p, &n) < 0)
        return NULL;
    json_t *root = json_object(), *arr = json_array();
    if (json_object_set_new(root, "policies", arr) < 0 ||
        json_object_set_new(root, "issuer", srv->issuer[0] ? text(srv->issuer) : json_null()) < 0)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_object();
        if (json_array_append_new(arr, o) < 0 ||
            json_object_set_new(o, "pattern", text(p[i].pattern)) < 0 ||
            json_object_set_new(o, "require_cert", json_true()) < 0 ||
            json_object_set_new(o, "cas", strings(p[i].cas, p[i].n_cas)) < 0 ||
            json_object_set_new(o, "allow_subjects", strings(p[i].subjects, p[i].n_subjects)) < 0 ||
            json_object_set_new(o, "allow_fingerprints",
                                strings(p[i].fingerprints, p[i].n_fingerprints)) < 0 ||
            json_object_set_new(o, "audience", text(p[i].audience)) < 0 ||
            json_object_set_new(o, "created", json_integer(p[i].created)) < 0)
            goto fail;
    }
    es_store_policies_free(p, n);
    return root;
fail:
    es_store_policies_free(p, n);
    json_decref(root);
    return NULL;
}

/* The subject of the first certificate of pem, or null. */
static json_t *first_subject(const char *pem)
{
    struct px_der *d = NULL;
    size_t nd = 0;
    struct px_cert_info ci;
    json_t *s = json_null();
    if (px_cert_pem_split(pem, strlen(pem), &d, &nd) == 0 &&
        px_cert_info(d[0].der, d[0].len, &ci) == 0) {
        s = text(ci.subject);
        px_cert_info_cleanup(&ci);
    }
    px_der_free(d, nd);
    return s;
}

json_t *es_admin_view_client_cas(struct es_server *srv)
{
    struct es_client_ca_rec *c;
    size_t n;
    if (es_store_client_ca_list(&srv->store, &c, &n) < 0)
        return NULL;
    json_t *root = json_object(), *arr = json_array();
    if (json_object_set_new(root, "client_cas", arr) < 0)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_object();
        if (json_array_append_new(arr, o) < 0 ||
            json_object_set_new(o, "name", text(c[i].name)) < 0 ||
            json_object_set_new(o, "subject", first_subject(c[i].cert_pem)) < 0 ||
            json_object_set_new(o, "crl", json_boolean(c[i].crl_pem != NULL)) < 0 ||
            json_object_set_new(o, "created", json_integer(c[i].created)) < 0 ||
            json_object_set_new(o, "updated", json_integer(c[i].updated)) < 0)
            goto fail;
    }
    es_store_client_cas_free(c, n);
    return root;
fail:
    es_store_client_cas_free(c, n);
    json_decref(root);
    return NULL;
}

json_t *es_admin_view_client_certs(struct es_server *srv)
{
    struct es_client_cert_rec *c;
    size_t n;
    if (es_store_client_cert_list(&srv->store, &c, &n) < 0)
        return NULL;
    long long now = (long long)time(NULL);
    json_t *root = json_object(), *arr = json_array();
    if (json_object_set_new(root, "client_certs", arr) < 0)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_object();
        const char *st = c[i].revoked ? "revoked" : c[i].not_after < now ? "expired" : "valid";
        if (json_array_append_new(arr, o) < 0 ||
            json_object_set_new(o, "name", text(c[i].name)) < 0 ||
            json_object_set_new(o, "serial", text(c[i].serial)) < 0 ||
            json_object_set_new(o, "fingerprint", text(c[i].fingerprint)) < 0 ||
            json_object_set_new(o, "subject", text(c[i].subject)) < 0 ||
            json_object_set_new(o, "not_before", json_integer(c[i].not_before)) < 0 ||
            json_object_set_new(o, "not_after", json_integer(c[i].not_after)) < 0 ||
            json_object_set_new(o, "created", json_integer(c[i].created)) < 0 ||
            json_object_set_new(o, "revoked",
                                c[i].revoked ? json_integer(c[i].revoked) : json_null()) < 0 ||
            json_object_set_new(o, "status", json_string(st)) < 0)
            goto fail;
    }
    es_store_client_certs_free(c, n);
    return root;
fail:
    es_store_client_certs_free(c, n);
    json_decref(root);
    return NULL;
}
