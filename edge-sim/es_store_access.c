#include "es_store_access.h"
#include "es_seal.h"
#include "px_err.h"
#include "px_json.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* Created by es_store_open with the rest of the schema. */
const char es_store_access_schema[] =
    "CREATE TABLE IF NOT EXISTS client_certs(serial TEXT PRIMARY KEY, name TEXT NOT NULL,"
    " fingerprint TEXT NOT NULL, subject TEXT NOT NULL, not_before INTEGER NOT NULL,"
    " not_after INTEGER NOT NULL, created INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS client_certs_name ON client_certs(name);"
    "CREATE TABLE IF NOT EXISTS client_cas(name TEXT PRIMARY KEY, cert_pem TEXT NOT NULL,"
    " crl_pem TEXT, created INTEGER NOT NULL, updated INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS access_policies(pattern TEXT PRIMARY KEY, spec TEXT NOT NULL,"
    " created INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS signing_keys(kid TEXT PRIMARY KEY, key_pem TEXT NOT NULL,"
    " created INTEGER NOT NULL, retired INTEGER NOT NULL DEFAULT 0);";

/* A copy of column i as a malloc'd string; NULL for SQL NULL. *oom is set
 * when a non-NULL value could not be copied. */
static char *col_dup(struct es_sql_res *r, int i, int *oom)
{
    const char *t = es_sql_text(r, i);
    if (!t)
        return NULL;
    char *d = strdup(t);
    if (!d)
        *oom = 1;
    return d;
}

static int begin(struct es_store *s)
{
    return es_sql_begin(s->db, 1);
}

/* Commits when rc is 0, else rolls back; returns rc (or the commit's error). */
static int end(struct es_store *s, int rc)
{
    if (rc == 0)
        return es_sql_commit(s->db);
    es_sql_rollback(s->db);
    return rc;
}

#define MAX_ARGS 8

/* The arguments of exec_args: texts (NULL binds SQL NULL), then integers. */
static size_t make_args(struct es_sql_arg *a, const char *const *texts, int n_texts,
                        const long long *ints, int n_ints)
{
    size_t n = 0;
    for (int i = 0; i < n_texts && n < MAX_ARGS; i++)
        a[n++] = ES_SQL_T(texts[i]);
    for (int i = 0; i < n_ints && n < MAX_ARGS; i++)
        a[n++] = ES_SQL_I(ints[i]);
    return n;
}

/* Runs one statement with text parameters (NULL binds SQL NULL) and integer
 * parameters after them. Returns the number of rows changed, or < 0. */
static int exec_args(struct es_store *s, const char *sql, const char *const *texts, int n_texts,
                     const long long *ints, int n_ints)
{
    struct es_sql_arg a[MAX_ARGS];
    size_t n = make_args(a, texts, n_texts, ints, n_ints);
    int rc = es_sql_query(s->db, NULL, sql, a, n);
    return rc < 0 ? rc : (int)es_sql_changes(s->db);
}

/* Returns 1 if sql (one text parameter) yields a row, 0 if not, or < 0. */
static int exists(struct es_store *s, const char *sql, const char *arg)
{
    struct es_sql_res r;
    int rc = es_sql_query(s->db, &r, sql, ES_SQL_ARGS(ES_SQL_T(arg)));
    if (rc == 0)
        rc = es_sql_next(&r);
    es_sql_done(&r);
    return rc;
}

/* Returns the first column of the first row of sql (text parameters) as a
 * count, or < 0. */
static int exec_count(struct es_store *s, const char *sql, const char *const *texts, int n_texts)
{
    struct es_sql_arg a[MAX_ARGS];
    size_t n = make_args(a, texts, n_texts, NULL, 0);
    struct es_sql_res r;
    int rc = es_sql_query(s->db, &r, sql, a, n);
    if (rc == 0)
        rc = es_sql_next(&r) == 1 ? (int)es_sql_int(&r, 0) : PX_ERR_DB;
    es_sql_done(&r);
    return rc;
}

/* The dialect's tie-breaker for rows created in the same second: SQLite's
 * rowid (the order they were inserted), or a column of the table. */
static const char *order_sql(struct es_store *s, const char *lite, const char *pg)
{
    return es_sql_kind(s->db) == ES_SQL_PG ? pg : lite;
}

/* ---- client certificates ---- */

int es_store_client_cert_add(struct es_store *s, const struct es_client_cert_rec *c)
{
    int rc = begin(s);
    if (rc < 0)
        return rc;
    int e = exists(s, "SELECT 1 FROM client_certs WHERE name=? AND revoked=0", c->name);
    if (e != 0) {
        rc = e < 0 ? e : PX_ERR_EXISTS;
        return end(s, rc);
    }
    const char *t[] = {c->serial, c->name, c->fingerprint, c->subject};
    const long long v[] = {c->not_before, c->not_after, c->created};
    rc = exec_args(s,
                   "INSERT INTO client_certs(serial,name,fingerprint,subject,not_before,"
                   "not_after,created) VALUES(?,?,?,?,?,?,?)",
                   t, 4, v, 3);
    return end(s, rc < 0 ? rc : 0);
}

void es_store_client_certs_free(struct es_client_cert_rec *c, size_t n)
{
    for (size_t i = 0; c && i < n; i++) {
        free(c[i].name);
        free(c[i].serial);
        free(c[i].fingerprint);
        free(c[i].subject);
    }
    free(c);
}

/* Runs a SELECT, growing *arr (elements of size sz) one row at a time
 * through fill(st, element) (returns 0 or -1 for out of memory). */
static int select_rows(struct es_store *s, const char *sql, void **arr, size_t *n, size_t sz,
                       int (*fill)(struct es_sql_res *, void *), void (*free_arr)(void *, size_t))
{
    *arr = NULL;
    *n = 0;
    struct es_sql_res r;
    int rc = es_sql_query(s->db, &r, sql, NULL, 0);
    size_t cap = 0;
    while (rc == 0 && (rc = es_sql_next(&r)) == 1) {
        rc = 0;
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 8;
            void *na = realloc(*arr, nc * sz);
            if (!na) {
                rc = PX_ERR_NOMEM;
                break;
            }
            *arr = na;
            cap = nc;
        }
        void *el = (char *)*arr + *n * sz;
        memset(el, 0, sz);
        (*n)++;
        if (fill(&r, el) < 0) {
            rc = PX_ERR_NOMEM;
            break;
        }
    }
    es_sql_done(&r);
    if (rc < 0) {
        free_arr(*arr, *n);
        *arr = NULL;
        *n = 0;
    }
    return rc;
}

static int fill_cert(struct es_sql_res *st, void *el)
{
    struct es_client_cert_rec *c = el;
    int oom = 0;
    c->serial = col_dup(st, 0, &oom);
    c->name = col_dup(st, 1, &oom);
    c->fingerprint = col_dup(st, 2, &oom);
    c->subject = col_dup(st, 3, &oom);
    c->not_before = es_sql_int(st, 4);
    c->not_after = es_sql_int(st, 5);
    c->created = es_sql_int(st, 6);
    c->revoked = es_sql_int(st, 7);
    return oom ? -1 : 0;
}

static void free_certs_v(void *a, size_t n)
{
    es_store_client_certs_free(a, n);
}

int es_store_client_cert_list(struct es_store *s, struct es_client_cert_rec **out, size_t *n)
{
    return select_rows(s,
                       order_sql(s,
                                 "SELECT serial,name,fingerprint,subject,not_before,not_after,"
                                 "created,revoked FROM client_certs ORDER BY created, rowid",
                                 "SELECT serial,name,fingerprint,subject,not_before,not_after,"
                                 "created,revoked FROM client_certs ORDER BY created, serial"),
                       (void **)out, n, sizeof(**out), fill_cert, free_certs_v);
}

/* name_or_serial as a serial: lower case, colons and leading zeros dropped
 * (compared with the stored serial's leading zeros dropped too). Returns a
 * malloc'd string or NULL. */
static char *canonical_serial(const char *v)
{
    char *o = malloc(strlen(v) + 1);
    if (!o)
        return NULL;
    size_t k = 0;
    for (const char *p = v; *p; p++) {
        if (*p == ':')
            continue;
        char ch = *p >= 'A' && *p <= 'F' ? (char)(*p - 'A' + 'a') : *p;
        if (k == 0 && ch == '0')
            continue;
        o[k++] = ch;
    }
    o[k] = '\0';
    return o;
}

int es_store_client_cert_revoke(struct es_store *s, const char *name_or_serial, long long now,
                                size_t *n_revoked)
{
    char *serial = canonical_serial(name_or_serial);
    if (!serial)
        return PX_ERR_NOMEM;
    if (n_revoked)
        *n_revoked = 0;
    int rc = begin(s);
    if (rc < 0)
        goto out;
    const char *t[] = {name_or_serial, serial};
    int found = exec_count(
        s, "SELECT count(*) FROM client_certs WHERE name=?1 OR ltrim(serial,'0')=?2", t, 2);
    if (found <= 0) {
        rc = end(s, found < 0 ? found : PX_ERR_NOT_FOUND);
        goto out;
    }
    const long long v[] = {now};
    int changed =
        exec_args(s,
                  "UPDATE client_certs SET revoked=?3 WHERE (name=?1 OR ltrim(serial,'0')=?2) "
                  "AND revoked=0",
                  t, 2, v, 1);
    if (changed < 0) {
        rc = end(s, changed);
        goto out;
    }
    if (n_revoked)
        *n_revoked = (size_t)changed;
    rc = end(s, 0);
out:
    free(serial);
    return rc;
}

/* ---- client CAs ---- */

int es_store_client_ca_add(struct es_store *s, const struct es_client_ca_rec *ca)
{
    if (strcmp(ca->name, ES_ACCESS_EDGE_CA) == 0)
        return PX_ERR_EXISTS;
    int rc = begin(s);
    if (rc < 0)
        return rc;
    int e = exists(s, "SELECT 1 FROM client_cas WHERE name=?", ca->name);
    if (e != 0)
        return end(s, e < 0 ? e : PX_ERR_EXISTS);
    const char *t[] = {ca->name, ca->cert_pem, ca->crl_pem};
    const long long v[] = {ca->created, ca->created};
    rc = exec_args(
        s, "INSERT INTO client_cas(name,cert_pem,crl_pem,created,updated) VALUES(?,?,?,?,?)", t, 3,
        v, 2);
    return end(s, rc < 0 ? rc : 0);
}

int es_store_client_ca_set_crl(struct es_store *s, const char *name, const char *crl_pem,
                               long long now)
{
    const char *t[] = {crl_pem, name};
    const long long v[] = {now};
    int rc = exec_args(s, "UPDATE client_cas SET crl_pem=?1, updated=?3 WHERE name=?2", t, 2, v, 1);
    return rc < 0 ? rc : rc == 0 ? PX_ERR_NOT_FOUND : 0;
}

/* Returns the pattern of a policy naming CA name (malloc'd) in *pattern, or
 * NULL. Returns 0 or PX_ERR_DB / PX_ERR_NOMEM. */
static int policy_using_ca(struct es_store *s, const char *name, char **pattern)
{
    *pattern = NULL;
    struct es_policy_rec *p;
    size_t n;
    int rc = es_store_policy_list(s, &p, &n);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n && !*pattern; i++)
        for (size_t k = 0; k < p[i].n_cas && !*pattern; k++)
            if (strcmp(p[i].cas[k], name) == 0 && !(*pattern = strdup(p[i].pattern)))
                rc = PX_ERR_NOMEM;
    es_store_policies_free(p, n);
    return rc;
}

int es_store_client_ca_delete(struct es_store *s, const char *name, char **used_by)
{
    if (used_by)
        *used_by = NULL;
    int rc = begin(s);
    if (rc < 0)
        return rc;
    char *pattern = NULL;
    rc = policy_using_ca(s, name, &pattern);
    if (rc == 0 && pattern) {
        rc = PX_ERR_DENIED;
        if (used_by)
            *used_by = pattern;
        else
            free(pattern);
    }
    if (rc == 0) {
        const char *t[] = {name};
        int changed = exec_args(s, "DELETE FROM client_cas WHERE name=?", t, 1, NULL, 0);
        rc = changed < 0 ? changed : changed == 0 ? PX_ERR_NOT_FOUND : 0;
    }
    return end(s, rc);
}

void es_store_client_cas_free(struct es_client_ca_rec *c, size_t n)
{
    for (size_t i = 0; c && i < n; i++) {
        free(c[i].name);
        free(c[i].cert_pem);
        free(c[i].crl_pem);
    }
    free(c);
}

static int fill_ca(struct es_sql_res *st, void *el)
{
    struct es_client_ca_rec *c = el;
    int oom = 0;
    c->name = col_dup(st, 0, &oom);
    c->cert_pem = col_dup(st, 1, &oom);
    c->crl_pem = col_dup(st, 2, &oom);
    c->created = es_sql_int(st, 3);
    c->updated = es_sql_int(st, 4);
    return oom ? -1 : 0;
}

static void free_cas_v(void *a, size_t n)
{
    es_store_client_cas_free(a, n);
}

int es_store_client_ca_list(struct es_store *s, struct es_client_ca_rec **out, size_t *n)
{
    return select_rows(s,
                       "SELECT name,cert_pem,crl_pem,created,updated FROM client_cas ORDER BY name",
                       (void **)out, n, sizeof(**out), fill_ca, free_cas_v);
}

/* ---- policies ---- */

static json_t *str_array(char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_string(v[i])) < 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

/* Reads a JSON array of strings into a malloc'd vector. Returns 0, -1 on
 * no memory or a malformed value. */
static int array_strs(const json_t *a, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!a)
        return 0;
    if (!json_is_array(a))
        return -1;
    size_t len = json_array_size(a);
    if (len == 0)
        return 0;
    char **v = calloc(len, sizeof(*v));
    if (!v)
        return -1;
    *out = v;
    for (size_t i = 0; i < len; i++) {
        const char *sv = json_string_value(json_array_get(a, i));
        if (!sv || !(v[i] = strdup(sv)))
            return -1;
        (*n)++;
    }
    return 0;
}

static void free_strs(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

void es_policy_rec_cleanup(struct es_policy_rec *p)
{
    free(p->pattern);
    free_strs(p->cas, p->n_cas);
    free_strs(p->subjects, p->n_subjects);
    free_strs(p->fingerprints, p->n_fingerprints);
    free(p->audience);
    memset(p, 0, sizeof(*p));
}

void es_store_policies_free(struct es_policy_rec *p, size_t n)
{
    for (size_t i = 0; p && i < n; i++)
        es_policy_rec_cleanup(&p[i]);
    free(p);
}

int es_store_policy_set(struct es_store *s, const struct es_policy_rec *p, char **missing)
{
    if (missing)
        *missing = NULL;
    json_t *spec = json_pack("{s:o,s:o,s:o}", "cas", str_array(p->cas, p->n_cas), "subjects",
                             str_array(p->subjects, p->n_subjects), "fingerprints",
                             str_array(p->fingerprints, p->n_fingerprints));
    if (spec && p->audience && json_object_set_new(spec, "audience", json_string(p->audience)) < 0)
        json_decref(spec), spec = NULL;
    char *text = spec ? px_json_dumps(spec, JSON_COMPACT) : NULL;
    json_decref(spec);
    if (!text)
        return PX_ERR_NOMEM;
    int rc = begin(s);
    if (rc < 0)
        goto out;
    for (size_t i = 0; i < p->n_cas && rc == 0; i++) {
        if (strcmp(p->cas[i], ES_ACCESS_EDGE_CA) == 0)
            continue;
        int e = exists(s, "SELECT 1 FROM client_cas WHERE name=?", p->cas[i]);
        if (e < 0)
            rc = e;
        else if (e == 0) {
            rc = PX_ERR_NOT_FOUND;
            if (missing)
                *missing = strdup(p->cas[i]);
        }
    }
    if (rc == 0) {
        const char *t[] = {p->pattern, text};
        const long long v[] = {p->created};
        int ch = exec_args(s,
                           "INSERT INTO access_policies(pattern,spec,created) VALUES(?1,?2,?3) "
                           "ON CONFLICT(pattern) DO UPDATE SET spec=?2",
                           t, 2, v, 1);
        rc = ch < 0 ? ch : 0;
    }
    rc = end(s, rc);
out:
    free(text);
    return rc;
}

int es_store_policy_delete(struct es_store *s, const char *pattern)
{
    const char *t[] = {pattern};
    int rc = exec_args(s, "DELETE FROM access_policies WHERE pattern=?", t, 1, NULL, 0);
    return rc < 0 ? rc : rc == 0 ? PX_ERR_NOT_FOUND : 0;
}

static int fill_policy(struct es_sql_res *st, void *el)
{
    struct es_policy_rec *p = el;
    int oom = 0;
    p->pattern = col_dup(st, 0, &oom);
    p->created = es_sql_int(st, 2);
    const char *text = es_sql_text(st, 1);
    json_t *spec = text ? json_loads(text, 0, NULL) : NULL;
    if (oom || !spec)
        goto fail;
    const char *aud = json_string_value(json_object_get(spec, "audience"));
    if (array_strs(json_object_get(spec, "cas"), &p->cas, &p->n_cas) < 0 ||
        array_strs(json_object_get(spec, "subjects"), &p->subjects, &p->n_subjects) < 0 ||
        array_strs(json_object_get(spec, "fingerprints"), &p->fingerprints, &p->n_fingerprints) <
            0 ||
        (aud && !(p->audience = strdup(aud))))
        goto fail;
    json_decref(spec);
    return 0;
fail:
    json_decref(spec);
    return -1;
}

static void free_policies_v(void *a, size_t n)
{
    es_store_policies_free(a, n);
}

int es_store_policy_list(struct es_store *s, struct es_policy_rec **out, size_t *n)
{
    return select_rows(s, "SELECT pattern,spec,created FROM access_policies ORDER BY pattern",
                       (void **)out, n, sizeof(**out), fill_policy, free_policies_v);
}

/* ---- signing keys ---- */

int es_store_signing_key_add(struct es_store *s, const struct es_signing_key_rec *k,
                             int only_if_none)
{
    int rc = begin(s);
    if (rc < 0)
        return rc;
    if (only_if_none) {
        int e = exists(s, "SELECT 1 FROM signing_keys WHERE retired=0 AND kid<>?", "");
        if (e != 0)
            return end(s, e < 0 ? e : 0);
    }
    /* A shared store gets the key sealed, bound to its kid. */
    char *sealed = NULL, aad[80];
    snprintf(aad, sizeof(aad), "signing-key:%s", k->kid);
    if (s->seal && (rc = es_seal(s->seal, s->seal_rng, aad, k->key_pem, &sealed)) < 0)
        return end(s, rc);
    const long long v[] = {k->created};
    int ch = exec_args(s, "UPDATE signing_keys SET retired=?1 WHERE retired=0", NULL, 0, v, 1);
    if (ch >= 0) {
        const char *t[] = {k->kid, sealed ? sealed : k->key_pem};
        ch =
            exec_args(s, "INSERT INTO signing_keys(kid,key_pem,created) VALUES(?,?,?)", t, 2, v, 1);
    }
    free(sealed);
    return end(s, ch < 0 ? ch : 0);
}

/* Opens the sealed keys of list k[0..n) in place. */
static int unseal_keys(struct es_store *s, struct es_signing_key_rec *k, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strncmp(k[i].key_pem, "es-seal-", 8) != 0)
            continue; /* a clear key (SQLite, or from before sealing) */
        if (!s->seal)
            return PX_ERR_DENIED;
        char aad[80], *plain = NULL;
        snprintf(aad, sizeof(aad), "signing-key:%s", k[i].kid);
        int rc = es_unseal(s->seal, aad, k[i].key_pem, &plain);
        if (rc < 0)
            return rc;
        free(k[i].key_pem);
        k[i].key_pem = plain;
    }
    return 0;
}

void es_store_signing_keys_free(struct es_signing_key_rec *k, size_t n)
{
    for (size_t i = 0; k && i < n; i++) {
        free(k[i].kid);
        free(k[i].key_pem);
    }
    free(k);
}

static int fill_key(struct es_sql_res *st, void *el)
{
    struct es_signing_key_rec *k = el;
    int oom = 0;
    k->kid = col_dup(st, 0, &oom);
    k->key_pem = col_dup(st, 1, &oom);
    k->created = es_sql_int(st, 2);
    k->retired = es_sql_int(st, 3);
    return oom || !k->kid || !k->key_pem ? -1 : 0;
}

static void free_keys_v(void *a, size_t n)
{
    es_store_signing_keys_free(a, n);
}

int es_store_signing_key_list(struct es_store *s, struct es_signing_key_rec **out, size_t *n)
{
    /* Newest first; of two made in the same second, the one signing now. */
    int rc = select_rows(s,
                         order_sql(s,
                                   "SELECT kid,key_pem,created,retired FROM signing_keys "
                                   "ORDER BY created DESC, rowid DESC",
                                   "SELECT kid,key_pem,created,retired FROM signing_keys "
                                   "ORDER BY created DESC, (retired = 0) DESC, kid DESC"),
                         (void **)out, n, sizeof(**out), fill_key, free_keys_v);
    if (rc == 0 && (rc = unseal_keys(s, *out, *n)) < 0) {
        es_store_signing_keys_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

int es_store_signing_key_prune(struct es_store *s, long long cutoff)
{
    const long long v[] = {cutoff};
    int rc =
        exec_args(s, "DELETE FROM signing_keys WHERE retired<>0 AND retired<?1", NULL, 0, v, 1);
    return rc < 0 ? rc : 0;
}
