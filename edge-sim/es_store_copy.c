#include "es_store_copy.h"
#include "es_certs.h"
#include "es_seal.h"
#include "px_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_COLS 9

/* The shared tables, parents first; types per column: t text, i integer,
 * b blob. */
static const struct table {
    const char *name;
    const char *cols[MAX_COLS];
    const char *types;
} tables[] = {
    {"kv", {"key", "value"}, "tt"},
    {"tunnels",
     {"id", "name", "secret_hash", "patterns", "created", "prev_secret_hash", "prev_until",
      "rotated_at", "rotations"},
     "ttbtibiii"},
    {"routes", {"hostname", "tunnel_id"}, "tt"},
    {"client_certs",
     {"serial", "name", "fingerprint", "subject", "not_before", "not_after", "created", "revoked"},
     "ttttiiii"},
    {"client_cas", {"name", "cert_pem", "crl_pem", "created", "updated"}, "tttii"},
    {"access_policies", {"pattern", "spec", "created"}, "tti"},
    {"signing_keys", {"kid", "key_pem", "created", "retired"}, "ttii"},
};
#define N_TABLES (sizeof(tables) / sizeof(tables[0]))

/* "SELECT a,b FROM t" or "INSERT INTO t(a,b) VALUES(?,?)" into buf. */
static int table_sql(const struct table *t, int insert, char *buf, size_t len)
{
    size_t n = strlen(t->types), k = 0;
    int w = insert ? snprintf(buf, len, "INSERT INTO %s(", t->name) : snprintf(buf, len, "SELECT ");
    for (size_t i = 0; w >= 0 && (size_t)w < len && i < n; i++) {
        k = (size_t)w;
        w += snprintf(buf + k, len - k, "%s%s", i ? "," : "", t->cols[i]);
    }
    if (w < 0 || (size_t)w >= len)
        return PX_ERR_TOO_LARGE;
    k = (size_t)w;
    w += insert ? snprintf(buf + k, len - k, ") VALUES(")
                : snprintf(buf + k, len - k, " FROM %s", t->name);
    for (size_t i = 0; insert && w >= 0 && (size_t)w < len && i < n; i++) {
        k = (size_t)w;
        w += snprintf(buf + k, len - k, "%s?", i ? "," : "");
    }
    if (insert && w >= 0 && (size_t)w < len) {
        k = (size_t)w;
        w += snprintf(buf + k, len - k, ")");
    }
    return w < 0 || (size_t)w >= len ? PX_ERR_TOO_LARGE : 0;
}

static json_t *hex_of(const unsigned char *p, size_t n)
{
    char *h = malloc(n * 2 + 1);
    if (!h)
        return NULL;
    for (size_t i = 0; i < n; i++)
        snprintf(h + 2 * i, 3, "%02x", p[i]);
    json_t *v = json_stringn(h, n * 2);
    free(h);
    return v;
}

/* 1 if column c of t holds a signing key sealed by a shared store. */
static int is_sealed_key(const struct table *t, size_t c, const char *v)
{
    return strcmp(t->name, "signing_keys") == 0 && c == 1 && v && strncmp(v, "es-seal-", 8) == 0;
}

/* The signing key kid, opened with s's seal (the file holds keys in
 * clear, as the data dir does). Sets *rc on failure. */
static json_t *opened_key(struct es_store *s, const char *kid, const char *sealed, int *rc)
{
    char aad[80], *plain = NULL;
    snprintf(aad, sizeof(aad), "signing-key:%s", kid ? kid : "");
    *rc = s->seal ? es_unseal(s->seal, aad, sealed, &plain) : PX_ERR_DENIED;
    json_t *v = *rc == 0 ? json_string(plain) : NULL;
    if (plain)
        explicit_bzero(plain, strlen(plain));
    free(plain);
    if (*rc == 0 && !v)
        *rc = PX_ERR_NOMEM;
    return v;
}

static int export_table(struct es_store *s, const struct table *t, json_t *rows)
{
    char sql[512];
    int rc = table_sql(t, 0, sql, sizeof(sql));
    struct es_sql_res r;
    if (rc == 0)
        rc = es_sql_query(s->db, &r, sql, NULL, 0);
    if (rc < 0)
        return rc;
    while ((rc = es_sql_next(&r)) == 1) {
        json_t *row = json_array();
        rc = row ? 0 : PX_ERR_NOMEM;
        for (size_t c = 0; rc == 0 && t->types[c]; c++) {
            json_t *v;
            size_t len;
            const void *b;
            if (t->types[c] == 'i')
                v = json_integer(es_sql_int(&r, (int)c));
            else if (t->types[c] == 'b')
                v = (b = es_sql_blob(&r, (int)c, &len)) ? hex_of(b, len) : json_null();
            else if (is_sealed_key(t, c, es_sql_text(&r, (int)c)))
                v = opened_key(s, es_sql_text(&r, 0), es_sql_text(&r, (int)c), &rc);
            else
                v = es_sql_text(&r, (int)c) ? json_string(es_sql_text(&r, (int)c)) : json_null();
            if (!v || json_array_append_new(row, v) < 0)
                rc = PX_ERR_NOMEM;
        }
        if (rc == 0 && json_array_append_new(rows, row) < 0)
            rc = PX_ERR_NOMEM;
        else if (rc < 0)
            json_decref(row);
        if (rc < 0)
            break;
    }
    es_sql_done(&r);
    return rc < 0 ? rc : 0;
}

/* The CAs es_certs holds, by their store name. */
static void ca_list(const struct es_certs *c, const char *names[6], const char *certs[6],
                    const char *keys[6])
{
    const char *n[6] = {"server-ca", "client-ca",      "access-ca",
                        "origin-ca", "origin-pull-ca", "browser-ca"};
    const char *ce[6] = {c->server_ca_pem, c->client_ca_pem,      c->access_ca_pem,
                         c->origin_ca_pem, c->origin_pull_ca_pem, c->browser_ca_pem};
    const char *k[6] = {c->server_ca_key, c->client_ca_key,      c->access_ca_key,
                        c->origin_ca_key, c->origin_pull_ca_key, c->browser_ca_key};
    memcpy(names, n, sizeof(n));
    memcpy(certs, ce, sizeof(ce));
    memcpy(keys, k, sizeof(k));
}

int es_store_export(struct es_store *s, const struct es_certs *c, json_t **out)
{
    *out = NULL;
    json_t *doc =
        json_pack("{s:s,s:i,s:{},s:{}}", "format", "edge-sim-store", "version", 1, "tables", "cas");
    if (!doc)
        return PX_ERR_NOMEM;
    json_t *tabs = json_object_get(doc, "tables"), *cas = json_object_get(doc, "cas");
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < N_TABLES; i++) {
        json_t *rows = json_array();
        if (!rows || json_object_set_new(tabs, tables[i].name, rows) < 0)
            rc = PX_ERR_NOMEM;
        else
            rc = export_table(s, &tables[i], rows);
    }
    const char *names[6], *certs[6], *keys[6];
    ca_list(c, names, certs, keys);
    for (size_t i = 0; rc == 0 && i < 6; i++)
        if (json_object_set_new(cas, names[i],
                                json_pack("{s:s,s:s}", "cert", certs[i], "key", keys[i])) < 0)
            rc = PX_ERR_NOMEM;
    if (rc < 0) {
        json_decref(doc);
        return rc;
    }
    *out = doc;
    return 0;
}

/* Hex into bytes: buf gets len/2 bytes. Returns 0 or PX_ERR_INVAL. */
static int unhex(const char *h, unsigned char *buf, size_t *n)
{
    size_t len = strlen(h);
    if (len % 2)
        return PX_ERR_INVAL;
    for (size_t i = 0; i < len / 2; i++) {
        unsigned v;
        if (sscanf(h + 2 * i, "%2x", &v) != 1)
            return PX_ERR_INVAL;
        buf[i] = (unsigned char)v;
    }
    *n = len / 2;
    return 0;
}

static int import_row(struct es_store *s, const struct table *t, const char *sql, json_t *row,
                      char *why, size_t whylen)
{
    size_t n = strlen(t->types);
    struct es_sql_arg a[MAX_COLS];
    unsigned char blobs[MAX_COLS][64];
    if (!json_is_array(row) || json_array_size(row) != n) {
        snprintf(why, whylen, "a row of %s has not %zu columns", t->name, n);
        return PX_ERR_INVAL;
    }
    for (size_t c = 0; c < n; c++) {
        json_t *v = json_array_get(row, c);
        a[c] = ES_SQL_N;
        if (json_is_null(v))
            continue;
        if (t->types[c] == 'i' && json_is_integer(v)) {
            a[c] = ES_SQL_I((long long)json_integer_value(v));
        } else if (t->types[c] == 't' && json_is_string(v)) {
            a[c] = ES_SQL_T(json_string_value(v));
        } else if (t->types[c] == 'b' && json_is_string(v) &&
                   json_string_length(v) <= 2 * sizeof(blobs[0])) {
            size_t len;
            if (unhex(json_string_value(v), blobs[c], &len) < 0) {
                snprintf(why, whylen, "%s.%s is not hex", t->name, t->cols[c]);
                return PX_ERR_INVAL;
            }
            a[c] = ES_SQL_B(blobs[c], len);
        } else {
            snprintf(why, whylen, "%s.%s has the wrong type", t->name, t->cols[c]);
            return PX_ERR_INVAL;
        }
    }
    /* Signing keys go in sealed, as es_store_signing_key_add writes them. */
    char *sealed = NULL, aad[80];
    int rc = 0;
    if (strcmp(t->name, "signing_keys") == 0 && a[1].type == ES_SQL_TEXT && s->seal &&
        strncmp(a[1].p, "es-seal-", 8) != 0) {
        snprintf(aad, sizeof(aad), "signing-key:%s",
                 a[0].type == ES_SQL_TEXT ? (const char *)a[0].p : "");
        rc = es_seal(s->seal, s->seal_rng, aad, a[1].p, &sealed);
        if (rc == 0)
            a[1] = ES_SQL_T(sealed);
    }
    if (rc == 0)
        rc = es_sql_query(s->db, NULL, sql, a, n);
    free(sealed);
    if (rc < 0)
        snprintf(why, whylen, "cannot insert into %s: %s", t->name,
                 rc == PX_ERR_DB || rc == PX_ERR_UNAVAILABLE || rc == PX_ERR_EXISTS
                     ? es_sql_errmsg(s->db)
                     : px_strerror(rc));
    return rc;
}

static int import_cas(struct es_store *s, const json_t *cas, const struct es_seal_key *seal,
                      WC_RNG *rng, char *why, size_t whylen)
{
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)cas, name, v)
    {
        const char *cert = json_string_value(json_object_get(v, "cert"));
        const char *key = json_string_value(json_object_get(v, "key"));
        if (!cert || !key || !strstr(key, "PRIVATE KEY")) {
            snprintf(why, whylen, "CA %s: a cert and a key are needed", name);
            return PX_ERR_INVAL;
        }
        char *sealed = NULL;
        int rc = es_seal(seal, rng, name, key, &sealed);
        if (rc == 0)
            rc = es_store_ca_set(s, name, cert, sealed, seal->id);
        free(sealed);
        if (rc < 0) {
            snprintf(why, whylen, "cannot store CA %s: %s", name,
                     rc == PX_ERR_DB || rc == PX_ERR_UNAVAILABLE ? es_sql_errmsg(s->db)
                                                                 : px_strerror(rc));
            return rc;
        }
    }
    return 0;
}

int es_store_import(struct es_store *s, const json_t *doc, const struct es_seal_key *seal,
                    WC_RNG *rng, size_t *n_tunnels, char *why, size_t whylen)
{
    *n_tunnels = 0;
    if (!es_store_shared(s)) {
        snprintf(why, whylen, "import goes into a PostgreSQL store (--store postgres://...)");
        return PX_ERR_INVAL;
    }
    const json_t *tabs = json_object_get(doc, "tables"), *cas = json_object_get(doc, "cas");
    const char *fmt = json_string_value(json_object_get(doc, "format"));
    if (!fmt || strcmp(fmt, "edge-sim-store") != 0 ||
        json_integer_value(json_object_get(doc, "version")) != 1 || !json_is_object(tabs) ||
        !json_is_object(cas)) {
        snprintf(why, whylen, "not an edge-sim store export (format edge-sim-store, version 1)");
        return PX_ERR_INVAL;
    }
    int rc = es_sql_begin(s->db, 1);
    if (rc < 0) {
        snprintf(why, whylen, "%s", es_sql_errmsg(s->db));
        return rc;
    }
    struct es_sql_res r;
    rc = es_sql_query(s->db, &r, "SELECT count(*) FROM tunnels", NULL, 0);
    if (rc == 0 && es_sql_next(&r) == 1 && es_sql_int(&r, 0) > 0) {
        snprintf(why, whylen, "%s already holds %lld tunnel(s): import goes into a new store",
                 es_sql_target(s->db), es_sql_int(&r, 0));
        rc = PX_ERR_EXISTS;
    }
    es_sql_done(&r);
    for (size_t i = 0; rc == 0 && i < N_TABLES; i++) {
        const json_t *rows = json_object_get(tabs, tables[i].name);
        char sql[600];
        if (!rows)
            continue;
        if (!json_is_array(rows)) {
            snprintf(why, whylen, "tables.%s is not a list", tables[i].name);
            rc = PX_ERR_INVAL;
            break;
        }
        rc = table_sql(&tables[i], 1, sql, sizeof(sql));
        /* The importing edge's own kv entries (its address) give way. */
        if (rc == 0 && strcmp(tables[i].name, "kv") == 0) {
            size_t used = strlen(sql);
            int w = snprintf(sql + used, sizeof(sql) - used,
                             " ON CONFLICT(key) DO UPDATE SET value=excluded.value");
            if (w < 0 || (size_t)w >= sizeof(sql) - used)
                rc = PX_ERR_TOO_LARGE;
        }
        size_t k;
        json_t *row;
        json_array_foreach(rows, k, row)
        {
            if (rc == 0)
                rc = import_row(s, &tables[i], sql, row, why, whylen);
        }
        if (rc == 0 && strcmp(tables[i].name, "tunnels") == 0)
            *n_tunnels = json_array_size(rows);
    }
    if (rc == 0)
        rc = import_cas(s, cas, seal, rng, why, whylen);
    if (rc < 0) {
        es_sql_rollback(s->db);
        return rc;
    }
    rc = es_sql_commit(s->db);
    if (rc < 0)
        snprintf(why, whylen, "%s", es_sql_errmsg(s->db));
    return rc;
}
