#include "px_control.h"
#include "px_err.h"
#include "px_json.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char *const type_names[] = {NULL,    "register", "registered",  "unregister",
                                         "error", "drain",    "access_keys", "origin_ca",
                                         "renew", "renewed"};
#define LAST_TYPE PX_CTL_RENEWED

#define PEM_CERT "-----BEGIN CERTIFICATE-----"
#define PEM_PUBKEY "-----BEGIN PUBLIC KEY-----"

void px_ctl_msg_cleanup(struct px_ctl_msg *m)
{
    for (size_t i = 0; i < m->n_hostnames; i++)
        free(m->hostnames[i]);
    free(m->hostnames);
    for (size_t i = 0; i < m->n_results; i++) {
        free(m->results[i].hostname);
        free(m->results[i].reason);
    }
    free(m->results);
    free(m->code);
    free(m->message);
    free(m->reason);
    free(m->agent);
    free(m->connector);
    free(m->edge);
    free(m->conn_id);
    free(m->issuer);
    free(m->jwks);
    free(m->kind);
    free(m->pem);
    memset(m, 0, sizeof(*m));
}

int px_ctl_kind_valid(const char *kind)
{
    return kind &&
           (strcmp(kind, PX_CTL_KIND_TUNNEL) == 0 || strcmp(kind, PX_CTL_KIND_ORIGIN_PULL) == 0);
}

/* ORIGIN_CA, RENEW, RENEWED: the PEM carries a certificate except in RENEW,
 * which carries the public key to certify. */
static int pem_valid(enum px_ctl_type type, const char *pem)
{
    if (!pem || !*pem || strlen(pem) > PX_CTL_MAX_PEM)
        return 0;
    return strstr(pem, type == PX_CTL_RENEW ? PEM_PUBKEY : PEM_CERT) != NULL;
}

/* Whether a PEM-carrying message is one the decoder accepts. */
static int pem_msg_valid(const struct px_ctl_msg *m)
{
    if (m->type != PX_CTL_ORIGIN_CA && !px_ctl_kind_valid(m->kind))
        return 0;
    return pem_valid(m->type, m->pem);
}

static int dup_opt(json_t *obj, const char *key, char **out)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    if (!json_is_string(v))
        return PX_ERR_INVAL;
    *out = strdup(json_string_value(v));
    return *out ? 0 : PX_ERR_NOMEM;
}

static int decode_hostnames(json_t *root, struct px_ctl_msg *m)
{
    json_t *a = json_object_get(root, "hostnames");
    if (!json_is_array(a))
        return PX_ERR_INVAL;
    size_t n = json_array_size(a);
    if (n > PX_CTL_MAX_HOSTNAMES)
        return PX_ERR_TOO_LARGE;
    m->hostnames = calloc(n ? n : 1, sizeof(char *));
    if (!m->hostnames)
        return PX_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *h = json_string_value(json_array_get(a, i));
        if (!h || !*h || strlen(h) > 253)
            return PX_ERR_INVAL;
        m->hostnames[i] = strdup(h);
        if (!m->hostnames[i])
            return PX_ERR_NOMEM;
        m->n_hostnames = i + 1;
    }
    return 0;
}

static int id_char(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '-';
}

/* REGISTER's optional agent, connector, index and edge (px_control.h). */
static int decode_origin(json_t *root, struct px_ctl_msg *m)
{
    m->conn_index = -1;
    int rc = dup_opt(root, "connector", &m->connector);
    if (rc == 0)
        rc = dup_opt(root, "edge", &m->edge);
    if (rc < 0)
        return rc;
    if (m->connector) {
        size_t n = strlen(m->connector);
        if (n == 0 || n > PX_CTL_MAX_CONNECTOR_ID)
            return PX_ERR_INVAL;
        for (size_t i = 0; i < n; i++)
            if (!id_char((unsigned char)m->connector[i]))
                return PX_ERR_INVAL;
    }
    if (m->agent) {
        size_t n = strlen(m->agent);
        if (n == 0 || n > PX_CTL_MAX_AGENT)
            return PX_ERR_INVAL;
        for (size_t i = 0; i < n; i++)
            if (m->agent[i] < 0x20 || m->agent[i] > 0x7e)
                return PX_ERR_INVAL;
    }
    if (m->edge) {
        size_t n = strlen(m->edge);
        if (n == 0 || n > PX_CTL_MAX_EDGE_ADDR)
            return PX_ERR_INVAL;
        for (size_t i = 0; i < n; i++)
            if (m->edge[i] < 0x21 || m->edge[i] > 0x7e)
                return PX_ERR_INVAL;
    }
    json_t *ix = json_object_get(root, "index");
    if (ix) {
        if (!json_is_integer(ix) || json_integer_value(ix) < 0 || json_integer_value(ix) > 63)
            return PX_ERR_INVAL;
        m->conn_index = (int)json_integer_value(ix);
    }
    return 0;
}

static int decode_results(json_t *root, struct px_ctl_msg *m)
{
    json_t *a = json_object_get(root, "results");
    if (!json_is_array(a))
        return PX_ERR_INVAL;
    size_t n = json_array_size(a);
    if (n > PX_CTL_MAX_HOSTNAMES)
        return PX_ERR_TOO_LARGE;
    m->results = calloc(n ? n : 1, sizeof(*m->results));
    if (!m->results)
        return PX_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_array_get(a, i);
        const char *h = json_string_value(json_object_get(r, "hostname"));
        json_t *acc = json_object_get(r, "accepted");
        if (!h || !json_is_boolean(acc))
            return PX_ERR_INVAL;
        m->n_results = i + 1;
        m->results[i].hostname = strdup(h);
        if (!m->results[i].hostname)
            return PX_ERR_NOMEM;
        m->results[i].accepted = json_is_true(acc);
        int rc = dup_opt(r, "reason", &m->results[i].reason);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* A JWK Set as the protocol carries it: an object with a "keys" array. What
 * the keys say is px_jwks_from_json's to check. */
static int is_jwks(const json_t *v)
{
    return json_is_object(v) && json_is_array(json_object_get(v, "keys"));
}

static int decode_access_keys(json_t *root, struct px_ctl_msg *m)
{
    const char *iss = json_string_value(json_object_get(root, "issuer"));
    json_t *jwks = json_object_get(root, "jwks");
    if (!iss || !*iss || strlen(iss) > PX_CTL_MAX_ISSUER || !is_jwks(jwks))
        return PX_ERR_INVAL;
    m->issuer = strdup(iss);
    if (!m->issuer)
        return PX_ERR_NOMEM;
    m->jwks = px_json_dumps(jwks, JSON_COMPACT);
    return m->jwks ? 0 : PX_ERR_NOMEM;
}

static int decode_pem_msg(json_t *root, struct px_ctl_msg *m)
{
    int rc = 0;
    if (m->type != PX_CTL_ORIGIN_CA)
        rc = dup_opt(root, "kind", &m->kind);
    if (rc == 0)
        rc = dup_opt(root, "pem", &m->pem);
    if (rc == 0 && !pem_msg_valid(m))
        rc = PX_ERR_INVAL;
    return rc;
}

int px_ctl_decode(const char *line, size_t len, struct px_ctl_msg *m)
{
    memset(m, 0, sizeof(*m));
    if (len > PX_CTL_MAX_LINE)
        return PX_ERR_TOO_LARGE;
    json_error_t jerr;
    json_t *root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    int rc = PX_ERR_INVAL;
    if (!root || !json_is_object(root))
        goto out;
    const char *t = json_string_value(json_object_get(root, "type"));
    if (!t)
        goto out;
    for (int i = 1; i <= LAST_TYPE; i++)
        if (strcmp(t, type_names[i]) == 0)
            m->type = (enum px_ctl_type)i;
    switch (m->type) {
    case PX_CTL_REGISTER:
        rc = decode_hostnames(root, m);
        if (rc == 0)
            rc = dup_opt(root, "agent", &m->agent);
        if (rc == 0)
            rc = decode_origin(root, m);
        break;
    case PX_CTL_UNREGISTER:
        rc = decode_hostnames(root, m);
        break;
    case PX_CTL_REGISTERED:
        rc = decode_results(root, m);
        if (rc == 0)
            rc = dup_opt(root, "tunnel", &m->agent);
        if (rc == 0)
            rc = dup_opt(root, "conn_id", &m->conn_id);
        break;
    case PX_CTL_ERROR: {
        json_t *p = json_object_get(root, "permanent");
        if (p && !json_is_boolean(p)) {
            rc = PX_ERR_INVAL;
            break;
        }
        m->permanent = json_is_true(p);
        rc = dup_opt(root, "code", &m->code);
        if (rc == 0)
            rc = dup_opt(root, "message", &m->message);
        if (rc == 0)
            rc = dup_opt(root, "reason", &m->reason);
        if (rc == 0 && !m->code)
            rc = PX_ERR_INVAL;
        break;
    }
    case PX_CTL_DRAIN:
        rc = 0;
        break;
    case PX_CTL_ACCESS_KEYS:
        rc = decode_access_keys(root, m);
        break;
    case PX_CTL_ORIGIN_CA:
    case PX_CTL_RENEW:
    case PX_CTL_RENEWED:
        rc = decode_pem_msg(root, m);
        break;
    default:
        rc = PX_ERR_INVAL;
    }
out:
    json_decref(root);
    if (rc < 0)
        px_ctl_msg_cleanup(m);
    return rc;
}

static int set_str(json_t *o, const char *k, const char *v)
{
    return v ? json_object_set_new(o, k, json_string(v)) : 0;
}

char *px_ctl_encode(const struct px_ctl_msg *m)
{
    if (m->type < PX_CTL_REGISTER || m->type > LAST_TYPE)
        return NULL;
    char *out = NULL;
    json_t *root = json_object();
    if (!root || json_object_set_new(root, "type", json_string(type_names[m->type])) < 0)
        goto out;
    if (m->type == PX_CTL_REGISTER || m->type == PX_CTL_UNREGISTER) {
        json_t *a = json_array();
        if (!a || json_object_set_new(root, "hostnames", a) < 0)
            goto out;
        for (size_t i = 0; i < m->n_hostnames; i++)
            if (json_array_append_new(a, json_string(m->hostnames[i])) < 0)
                goto out;
        if (m->type == PX_CTL_REGISTER &&
            (set_str(root, "agent", m->agent) < 0 || set_str(root, "connector", m->connector) < 0 ||
             set_str(root, "edge", m->edge) < 0 ||
             (m->conn_index >= 0 && m->conn_index <= 63 &&
              json_object_set_new(root, "index", json_integer(m->conn_index)) < 0)))
            goto out;
    } else if (m->type == PX_CTL_REGISTERED) {
        json_t *a = json_array();
        if (!a || json_object_set_new(root, "results", a) < 0)
            goto out;
        for (size_t i = 0; i < m->n_results; i++) {
            json_t *r = json_pack("{s:s,s:b}", "hostname", m->results[i].hostname, "accepted",
                                  m->results[i].accepted);
            if (!r || set_str(r, "reason", m->results[i].reason) < 0 ||
                json_array_append_new(a, r) < 0) {
                json_decref(r);
                goto out;
            }
        }
        if (set_str(root, "tunnel", m->agent) < 0 || set_str(root, "conn_id", m->conn_id) < 0)
            goto out;
    } else if (m->type == PX_CTL_ERROR) {
        if (set_str(root, "code", m->code ? m->code : "unknown") < 0 ||
            set_str(root, "message", m->message) < 0 || set_str(root, "reason", m->reason) < 0 ||
            json_object_set_new(root, "permanent", json_boolean(m->permanent)) < 0)
            goto out;
    } else if (m->type == PX_CTL_ACCESS_KEYS) {
        /* Only what the decoder would accept. */
        if (!m->issuer || !*m->issuer || strlen(m->issuer) > PX_CTL_MAX_ISSUER || !m->jwks)
            goto out;
        if (set_str(root, "issuer", m->issuer) < 0)
            goto out;
        json_t *jwks = json_loads(m->jwks, JSON_REJECT_DUPLICATES, NULL);
        if (!is_jwks(jwks)) {
            json_decref(jwks);
            goto out;
        }
        if (json_object_set_new(root, "jwks", jwks) < 0) /* takes jwks either way */
            goto out;
    } else if (m->type == PX_CTL_ORIGIN_CA || m->type == PX_CTL_RENEW ||
               m->type == PX_CTL_RENEWED) {
        if (!pem_msg_valid(m))
            goto out;
        if ((m->type != PX_CTL_ORIGIN_CA && set_str(root, "kind", m->kind) < 0) ||
            set_str(root, "pem", m->pem) < 0)
            goto out;
    }
    out = px_json_line(root);
out:
    json_decref(root);
    return out;
}

void px_ctl_framer_init(struct px_ctl_framer *f)
{
    px_buf_init(&f->buf);
}

void px_ctl_framer_cleanup(struct px_ctl_framer *f)
{
    px_buf_cleanup(&f->buf);
}

int px_ctl_framer_feed(struct px_ctl_framer *f, const void *data, size_t len, px_ctl_msg_cb cb,
                       void *arg)
{
    if (px_buf_append(&f->buf, data, len) < 0)
        return PX_ERR_NOMEM;
    for (;;) {
        const char *head = (const char *)px_buf_head(&f->buf);
        size_t n = px_buf_len(&f->buf);
        const char *nl = n ? memchr(head, '\n', n) : NULL;
        if (!nl) {
            if (n > PX_CTL_MAX_LINE)
                return PX_ERR_TOO_LARGE;
            return 0;
        }
        size_t linelen = (size_t)(nl - head);
        if (linelen > 0) {
            struct px_ctl_msg m;
            int rc = px_ctl_decode(head, linelen, &m);
            if (rc < 0)
                return rc;
            rc = cb(&m, arg);
            px_ctl_msg_cleanup(&m);
            if (rc < 0)
                return rc;
        }
        px_buf_consume(&f->buf, linelen + 1);
    }
}
