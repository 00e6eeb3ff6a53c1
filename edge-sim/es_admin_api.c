#include "es_admin_api.h"
#include "es_admin_view.h"
#include "es_cli.h"
#include "es_op.h"
#include "es_server.h"
#include "es_text.h"
#include "px_b64.h"
#include "px_err.h"
#include "px_json.h"
#include "px_log.h"
#include "rt_loop.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SEGMENTS 4
#define MAX_LIST 64

/* The request being answered: its decoded path segments after "/api/" and
 * its body. */
struct call {
    struct es_server *srv;
    const struct es_admin_api_req *req;
    struct es_admin_answer *out;
    char *seg[MAX_SEGMENTS];
    size_t n_seg;
    json_t *body; /* the parsed body object, once parsed */
};

static void answer_json(struct call *c, int status, json_t *j)
{
    c->out->status = status;
    c->out->body = j ? px_json_dumps(j, JSON_INDENT(2)) : NULL;
    if (!c->out->body)
        c->out->status = 500;
    json_decref(j);
}

/* msg may hold what the request sent, cut short: its valid UTF-8 prefix. */
static void answer_error(struct call *c, int status, const char *msg)
{
    json_t *j = json_object();
    if (json_object_set_new(j, "error", json_stringn(msg, es_text_prefix(msg, (size_t)-1))) < 0) {
        json_decref(j);
        j = NULL;
    }
    answer_json(c, status, j);
}

/* The status of an operation's error. */
static int status_of(int err)
{
    switch (err) {
    case PX_ERR_INVAL:
    case PX_ERR_TOO_LARGE:
        return 400;
    case PX_ERR_NOT_FOUND:
        return 404;
    case PX_ERR_EXISTS:
    case PX_ERR_DENIED:
        return 409;
    default:
        return 500;
    }
}

static void answer_op_error(struct call *c, int err, const char *why)
{
    /* 500s are the edge's failures: the operator finds them in the log too. */
    if (status_of(err) == 500)
        PX_ERROR("admin API %s %s: %s", c->req->method, c->req->path, why);
    answer_error(c, status_of(err), why);
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..n) into a new string. Returns 0, PX_ERR_INVAL (a
 * bad escape, or one decoding to NUL) or PX_ERR_NOMEM. */
static int pct_decode(const char *s, size_t n, char **out)
{
    char *d = malloc(n + 1);
    size_t k = 0;
    if (!d)
        return PX_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            d[k++] = s[i];
            continue;
        }
        int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
        int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            free(d);
            return PX_ERR_INVAL;
        }
        d[k++] = (char)(hi * 16 + lo);
        i += 2;
    }
    d[k] = '\0';
    *out = d;
    return 0;
}

/* Splits c->req->path after "/api/" into decoded segments. Returns 0,
 * PX_ERR_NOT_FOUND (too many), PX_ERR_INVAL or PX_ERR_NOMEM. */
static int split_path(struct call *c)
{
    const char *p = c->req->path + strlen("/api/");
    for (;;) {
        size_t n = strcspn(p, "/");
        if (c->n_seg == MAX_SEGMENTS)
            return PX_ERR_NOT_FOUND;
        int rc = pct_decode(p, n, &c->seg[c->n_seg]);
        if (rc < 0)
            return rc;
        c->n_seg++;
        if (!p[n])
            return 0;
        p += n + 1;
    }
}

/* Parses the body into c->body: one JSON object (an empty body is {}),
 * with no key outside allowed (NULL-terminated). Returns 0, or -1 after
 * answering 400. */
static int parse_body(struct call *c, const char *const *allowed)
{
    json_error_t err;
    char msg[300];
    if (c->req->body_len == 0)
        c->body = json_object();
    else
        c->body =
            json_loadb((const char *)c->req->body, c->req->body_len, JSON_REJECT_DUPLICATES, &err);
    if (!c->body) {
        if (c->req->body_len == 0) {
            answer_error(c, 500, "out of memory");
            return -1;
        }
        snprintf(msg, sizeof(msg), "the body is not JSON: %s (line %d, column %d)", err.text,
                 err.line, err.column);
        answer_error(c, 400, msg);
        return -1;
    }
    if (!json_is_object(c->body)) {
        answer_error(c, 400, "the body must be a JSON object");
        return -1;
    }
    const char *key;
    json_t *v;
    json_object_foreach(c->body, key, v)
    {
        size_t i = 0;
        while (allowed[i] && strcmp(allowed[i], key) != 0)
            i++;
        if (!allowed[i]) {
            snprintf(msg, sizeof(msg), "unknown field \"%.*s\"", (int)es_text_prefix(key, 64), key);
            answer_error(c, 400, msg);
            return -1;
        }
    }
    return 0;
}

/* Field readers: 0 with the value (NULL / 0 when absent and optional), or
 * -1 after answering 400. Strings point into c->body. */
static int field_string(struct call *c, const char *key, int required, int nullable,
                        const char **out)
{
    json_t *v = json_object_get(c->body, key);
    char msg[200];
    *out = NULL;
    if (!v && !required)
        return 0;
    if (v && json_is_null(v) && nullable)
        return 0;
    if (!v || !json_is_string(v) || memchr(json_string_value(v), 0, json_string_length(v))) {
        snprintf(msg, sizeof(msg), "\"%s\" must be a string%s", key,
                 v ? " (without NUL)" : " and is required");
        answer_error(c, 400, msg);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

static int field_strings(struct call *c, const char *key, const char **v, size_t *n)
{
    json_t *a = json_object_get(c->body, key), *e;
    char msg[200];
    size_t i;
    *n = 0;
    if (!a || json_is_null(a))
        return 0;
    if (!json_is_array(a) || json_array_size(a) > MAX_LIST)
        goto bad;
    json_array_foreach(a, i, e)
    {
        if (!json_is_string(e) || memchr(json_string_value(e), 0, json_string_length(e)))
            goto bad;
        v[(*n)++] = json_string_value(e);
    }
    return 0;
bad:
    snprintf(msg, sizeof(msg), "\"%s\" must be an array of at most %d strings", key, MAX_LIST);
    answer_error(c, 400, msg);
    return -1;
}

static struct es_op_ctx op_ctx(struct es_server *srv)
{
    struct es_op_ctx x = {.store = &srv->store,
                          .certs = &srv->certs,
                          .rng = rt_loop_rng(rt_loop_of(srv->loop)),
                          .dir = es_server_store_spec(srv),
                          .live = &srv->live};
    return x;
}

/* A change was made through serve's own connection: apply it now. */
static void applied(struct call *c)
{
    es_server_reload(c->srv);
}

static json_t *token_json(const struct es_op_token *t)
{
    json_t *o = json_object(), *edges = json_array();
    if (json_object_set_new(o, "edges", edges) < 0 ||
        json_object_set_new(o, "id", json_string(t->id)) < 0 ||
        json_object_set_new(o, "name", json_string(t->name)) < 0 ||
        json_object_set_new(o, "token", json_string(t->token)) < 0)
        goto fail;
    for (size_t i = 0; i < t->n_edges; i++)
        if (json_array_append_new(edges, json_string(t->edges[i])) < 0)
            goto fail;
    return o;
fail:
    json_decref(o);
    return NULL;
}

/* ---- /api/tunnels ---- */

static void tunnels_create(struct call *c)
{
    static const char *const keys[] = {"name", "hostnames", "edges", NULL};
    const char *name, *hosts[MAX_LIST], *edges[MAX_LIST];
    size_t n_hosts, n_edges;
    char why[512];
    if (parse_body(c, keys) < 0 || field_string(c, "name", 1, 0, &name) < 0 ||
        field_strings(c, "hostnames", hosts, &n_hosts) < 0 ||
        field_strings(c, "edges", edges, &n_edges) < 0)
        return;
    struct es_op_ctx ctx = op_ctx(c->srv);
    struct es_op_token t;
    int rc = es_op_tunnel_create(&ctx, name, hosts, n_hosts, edges, n_edges, &t, why, sizeof(why));
    if (rc < 0) {
        answer_op_error(c, rc, why);
        return;
    }
    applied(c);
    json_t *o = token_json(&t);
    es_op_token_cleanup(&t);
    json_t *allowed = json_array();
    if (json_object_set_new(o, "allowed_hostnames", allowed) < 0) {
        json_decref(o);
        o = NULL;
    }
    for (size_t i = 0; o && i < n_hosts; i++) {
        char p[256];
        if (es_op_pattern(hosts[i], p) == 0) /* as stored: lower case */
            json_array_append_new(allowed, json_string(p));
    }
    answer_json(c, 201, o);
    PX_INFO("admin API: created tunnel %s", name);
}

static void tunnels_rotate(struct call *c, const char *name)
{
    static const char *const keys[] = {"grace", "edges", NULL};
    const char *grace_s, *edges[MAX_LIST];
    size_t n_edges;
    long long grace = 0;
    char why[512];
    if (parse_body(c, keys) < 0 || field_string(c, "grace", 0, 1, &grace_s) < 0 ||
        field_strings(c, "edges", edges, &n_edges) < 0)
        return;
    if (grace_s && es_cli_parse_duration(grace_s, 0, 3650LL * 86400, &grace) < 0) {
        answer_error(c, 400, "\"grace\" must be 0 to 3650d: N followed by s, m, h or d");
        return;
    }
    struct es_op_ctx ctx = op_ctx(c->srv);
    struct es_op_token t;
    int rc = es_op_tunnel_rotate(&ctx, name, grace, edges, n_edges, &t, why, sizeof(why));
    if (rc < 0) {
        answer_op_error(c, rc, why);
        return;
    }
    applied(c);
    json_t *o = token_json(&t);
    if (o &&
        json_object_set_new(o, "previous_until",
                            t.previous_until ? json_integer(t.previous_until) : json_null()) < 0) {
        json_decref(o);
        o = NULL;
    }
    es_op_token_cleanup(&t);
    answer_json(c, 200, o);
    PX_INFO("admin API: rotated the token of tunnel %s", name);
}

static void tunnels(struct call *c)
{
    const char *m = c->req->method;
    char why[512];
    if (c->n_seg == 1) {
        if (!strcmp(m, "GET") || !strcmp(m, "HEAD"))
            answer_json(c, 200, es_admin_view_tunnels(c->srv));
        else if (!strcmp(m, "POST"))
            tunnels_create(c);
        else
            c->out->allow = "GET, POST";
        return;
    }
    const char *name = c->seg[1];
    if (c->n_seg == 3 && !strcmp(c->seg[2], "rotate-token")) {
        if (!strcmp(m, "POST"))
            tunnels_rotate(c, name);
        else
            c->out->allow = "POST";
        return;
    }
    if (c->n_seg != 2) {
        answer_error(c, 404, "no such path");
        return;
    }
    if (!strcmp(m, "GET") || !strcmp(m, "HEAD")) {
        json_t *o;
        int rc = es_admin_view_tunnel(c->srv, name, &o);
        if (rc == PX_ERR_NOT_FOUND)
            answer_error(c, 404, "no such tunnel");
        else
            answer_json(c, 200, o);
    } else if (!strcmp(m, "DELETE")) {
        struct es_op_ctx ctx = op_ctx(c->srv);
        int rc = es_op_tunnel_delete(&ctx, name, why, sizeof(why));
        if (rc < 0) {
            answer_op_error(c, rc, why);
            return;
        }
        applied(c);
        json_t *o = json_object();
        json_object_set_new(o, "deleted", json_string(name));
        answer_json(c, 200, o);
        PX_INFO("admin API: deleted tunnel %s", name);
    } else {
        c->out->allow = "GET, DELETE";
    }
}

/* ---- /api/access ---- */

static void access_set(struct call *c, const char *pattern)
{
    static const char *const keys[] = {"require_cert",       "cas",      "allow_subjects",
                                       "allow_fingerprints", "audience", NULL};
    const char *cas[MAX_LIST], *subj[MAX_LIST], *fps[MAX_LIST], *aud;
    struct es_op_policy p = {.pattern = pattern, .cas = cas, .subjects = subj, .fingerprints = fps};
    char why[1024];
    if (parse_body(c, keys) < 0 || field_strings(c, "cas", cas, &p.n_cas) < 0 ||
        field_strings(c, "allow_subjects", subj, &p.n_subjects) < 0 ||
        field_strings(c, "allow_fingerprints", fps, &p.n_fingerprints) < 0 ||
        field_string(c, "audience", 0, 1, &aud) < 0)
        return;
    if (!json_is_true(json_object_get(c->body, "require_cert"))) {
        answer_error(c, 400,
                     "\"require_cert\": true is required (the one kind of policy there is)");
        return;
    }
    p.audience = aud;
    struct es_op_ctx ctx = op_ctx(c->srv);
    int rc = es_op_access_set(&ctx, &p, why, sizeof(why));
    if (rc < 0) {
        answer_op_error(c, rc, why);
        return;
    }
    applied(c);
    json_t *o = json_object();
    json_object_set_new(o, "pattern", json_string(pattern));
    json_object_set_new(o, "require_cert", json_true());
    answer_json(c, 200, o);
    PX_INFO("admin API: set the access policy of %s", pattern);
}

static void access_route(struct call *c)
{
    const char *m = c->req->method;
    char why[1024];
    struct es_op_ctx ctx = op_ctx(c->srv);
    if (c->n_seg == 1) {
        if (!strcmp(m, "GET") || !strcmp(m, "HEAD"))
            answer_json(c, 200, es_admin_view_access(c->srv));
        else
            c->out->allow = "GET";
        return;
    }
    if (c->n_seg != 2) {
        answer_error(c, 404, "no such path");
        return;
    }
    if (!strcmp(c->seg[1], "rotate-key") && !strcmp(m, "POST")) {
        char kid[44];
        int rc = es_op_access_rotate_key(&ctx, kid, why, sizeof(why));
        if (rc < 0) {
            answer_op_error(c, rc, why);
            return;
        }
        applied(c);
        json_t *o = json_object();
        json_object_set_new(o, "kid", json_string(kid));
        answer_json(c, 200, o);
        PX_INFO("admin API: new signing key %s", kid);
    } else if (!strcmp(m, "PUT")) {
        access_set(c, c->seg[1]);
    } else if (!strcmp(m, "DELETE")) {
        int rc = es_op_access_delete(&ctx, c->seg[1], why, sizeof(why));
        if (rc < 0) {
            answer_op_error(c, rc, why);
            return;
        }
        applied(c);
        json_t *o = json_object();
        json_object_set_new(o, "deleted", json_string(c->seg[1]));
        answer_json(c, 200, o);
        PX_INFO("admin API: deleted the access policy of %s", c->seg[1]);
    } else {
        c->out->allow = strcmp(c->seg[1], "rotate-key") ? "PUT, DELETE" : "POST, PUT, DELETE";
    }
}

/* ---- /api/client-cas ---- */

static void client_cas(struct call *c)
{
    static const char *const add_keys[] = {"name", "cert", "crl", NULL};
    static const char *const put_keys[] = {"crl", NULL};
    const char *m = c->req->method, *name, *cert, *crl;
    char why[1024];
    struct es_op_ctx ctx = op_ctx(c->srv);
    int rc;
    if (c->n_seg == 1) {
        if (!strcmp(m, "GET") || !strcmp(m, "HEAD")) {
            answer_json(c, 200, es_admin_view_client_cas(c->srv));
            return;
        }
        if (strcmp(m, "POST")) {
            c->out->allow = "GET, POST";
            return;
        }
        if (parse_body(c, add_keys) < 0 || field_string(c, "name", 1, 0, &name) < 0 ||
            field_string(c, "cert", 1, 0, &cert) < 0 || field_string(c, "crl", 0, 1, &crl) < 0)
            return;
        rc = es_op_client_ca_add(&ctx, name, cert, crl, why, sizeof(why));
    } else if (c->n_seg == 2) {
        name = c->seg[1];
        if (!strcmp(m, "PUT")) {
            if (parse_body(c, put_keys) < 0 || field_string(c, "crl", 1, 1, &crl) < 0)
                return;
            rc = es_op_client_ca_update(&ctx, name, crl, why, sizeof(why));
        } else if (!strcmp(m, "DELETE")) {
            rc = es_op_client_ca_delete(&ctx, name, why, sizeof(why));
        } else {
            c->out->allow = "PUT, DELETE";
            return;
        }
    } else {
        answer_error(c, 404, "no such path");
        return;
    }
    if (rc < 0) {
        answer_op_error(c, rc, why);
        return;
    }
    applied(c);
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(name));
    answer_json(c, !strcmp(m, "POST") ? 201 : 200, o);
    PX_INFO("admin API: %s client CA %s",
            !strcmp(m, "POST")  ? "added"
            : !strcmp(m, "PUT") ? "updated the CRL of"
                                : "deleted",
            name);
}

/* ---- /api/client-certs ---- */

static void client_cert_create(struct call *c)
{
    static const char *const keys[] = {"name", "days", "csr", "p12_password", NULL};
    const char *name, *csr, *pw;
    char why[1024];
    if (parse_body(c, keys) < 0 || field_string(c, "name", 1, 0, &name) < 0 ||
        field_string(c, "csr", 0, 1, &csr) < 0 || field_string(c, "p12_password", 0, 1, &pw) < 0)
        return;
    json_t *d = json_object_get(c->body, "days");
    if (d && (!json_is_integer(d) || json_integer_value(d) < 1 || json_integer_value(d) > 36500)) {
        answer_error(c, 400, "\"days\" must be an integer 1-36500");
        return;
    }
    if (csr && pw) {
        answer_error(c, 400, "\"p12_password\" has no use with \"csr\" (no key, no PKCS#12)");
        return;
    }
    unsigned long days = d ? (unsigned long)json_integer_value(d) : 365;
    struct es_op_ctx ctx = op_ctx(c->srv);
    struct es_op_client_cert cc;
    int rc = es_op_client_cert_create(&ctx, name, days, csr, pw, &cc, why, sizeof(why));
    if (rc < 0) {
        answer_op_error(c, rc, why);
        return;
    }
    applied(c);
    json_t *o = json_object();
    char *p12 = cc.p12 ? px_b64_encode(cc.p12, cc.p12_len, 0) : NULL;
    if (json_object_set_new(o, "name", json_string(name)) < 0 ||
        json_object_set_new(o, "serial", json_string(cc.info.serial)) < 0 ||
        json_object_set_new(o, "fingerprint", json_string(cc.info.sha256_hex)) < 0 ||
        json_object_set_new(o, "subject", json_string(cc.info.subject)) < 0 ||
        json_object_set_new(o, "not_after", json_integer(cc.info.not_after)) < 0 ||
        json_object_set_new(o, "cert", json_string(cc.cert)) < 0 ||
        (cc.key && json_object_set_new(o, "key", json_string(cc.key)) < 0) ||
        (cc.p12 && json_object_set_new(o, "p12", p12 ? json_string(p12) : NULL) < 0) ||
        (cc.password_made &&
         json_object_set_new(o, "p12_password", json_string(cc.password)) < 0)) {
        json_decref(o);
        o = NULL;
    }
    if (p12) {
        memset(p12, 0, strlen(p12));
        free(p12);
    }
    answer_json(c, 201, o);
    es_op_client_cert_cleanup(&cc);
    PX_INFO("admin API: issued client certificate %s", name);
}

static void client_certs(struct call *c)
{
    const char *m = c->req->method;
    char why[512];
    if (c->n_seg == 1) {
        if (!strcmp(m, "GET") || !strcmp(m, "HEAD"))
            answer_json(c, 200, es_admin_view_client_certs(c->srv));
        else if (!strcmp(m, "POST"))
            client_cert_create(c);
        else
            c->out->allow = "GET, POST";
        return;
    }
    if (c->n_seg != 3 || strcmp(c->seg[2], "revoke")) {
        answer_error(c, 404, "no such path");
        return;
    }
    if (strcmp(m, "POST")) {
        c->out->allow = "POST";
        return;
    }
    size_t n = 0;
    struct es_op_ctx ctx = op_ctx(c->srv);
    int rc = es_op_client_cert_revoke(&ctx, c->seg[1], &n, why, sizeof(why));
    if (rc < 0) {
        answer_op_error(c, rc, why);
        return;
    }
    applied(c);
    json_t *o = json_object();
    json_object_set_new(o, "revoked", json_integer((json_int_t)n));
    answer_json(c, 200, o);
    PX_INFO("admin API: revoked %zu client certificate(s) matching %s", n, c->seg[1]);
}

void es_admin_api(struct es_server *srv, const struct es_admin_api_req *req,
                  struct es_admin_answer *out)
{
    struct call c = {.srv = srv, .req = req, .out = out};
    memset(out, 0, sizeof(*out));
    int rc = split_path(&c);
    if (rc == PX_ERR_NOMEM) {
        answer_error(&c, 500, "out of memory");
        goto out;
    }
    if (rc < 0) {
        answer_error(&c, rc == PX_ERR_INVAL ? 400 : 404,
                     rc == PX_ERR_INVAL ? "bad percent-encoding in the path" : "no such path");
        goto out;
    }
    const char *res = c.seg[0];
    if (!strcmp(res, "tunnels"))
        tunnels(&c);
    else if (!strcmp(res, "access"))
        access_route(&c);
    else if (!strcmp(res, "client-cas"))
        client_cas(&c);
    else if (!strcmp(res, "client-certs"))
        client_certs(&c);
    else if (!strcmp(res, "status") && c.n_seg == 1) {
        if (!strcmp(req->method, "GET") || !strcmp(req->method, "HEAD"))
            answer_json(&c, 200, es_admin_view_status(srv, req->since));
        else
            out->allow = "GET";
    } else
        answer_error(&c, 404, "no such path");
    if (out->allow && !out->body) {
        char msg[100];
        snprintf(msg, sizeof(msg), "method %s not allowed here (allowed: %s)", req->method,
                 out->allow);
        answer_error(&c, 405, msg);
    }
out:
    for (size_t i = 0; i < c.n_seg; i++)
        free(c.seg[i]);
    json_decref(c.body);
}
