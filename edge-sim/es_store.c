#include "es_store.h"
#include "es_seal.h"
#include "es_store_pg.h"
#include "px_err.h"
#include "px_hostname.h"
#include "rt_file.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const schema =
    "CREATE TABLE IF NOT EXISTS kv(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS tunnels(id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " secret_hash BLOB NOT NULL, patterns TEXT NOT NULL, created INTEGER NOT NULL,"
    " prev_secret_hash BLOB, prev_until INTEGER NOT NULL DEFAULT 0,"
    " rotated_at INTEGER NOT NULL DEFAULT 0, rotations INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS routes(hostname TEXT PRIMARY KEY,"
    " tunnel_id TEXT NOT NULL REFERENCES tunnels(id) ON DELETE CASCADE);"
    /* A tunnel's delete cascades to its routes: found by index, not scan. */
    "CREATE INDEX IF NOT EXISTS routes_tunnel ON routes(tunnel_id);";

extern const char es_store_access_schema[]; /* es_store_access.c */

/* 1 if table has column, 0 if not, < 0 on error. */
static int has_column(struct es_sql *db, const char *table, const char *column)
{
    struct es_sql_res r;
    int rc = es_sql_query(db, &r, "SELECT 1 FROM pragma_table_info(?) WHERE name=?",
                          ES_SQL_ARGS(ES_SQL_T(table), ES_SQL_T(column)));
    if (rc == 0)
        rc = es_sql_next(&r);
    es_sql_done(&r);
    return rc;
}

/* Databases made before token rotation lack its columns, and those made
 * before its generations lack `rotations`. The check and the ALTERs are one
 * IMMEDIATE transaction: a CLI and a serve opening the same old database at
 * once must not both add them. A column's `then` runs only when the column
 * was added: a tunnel rotated before `rotations` existed counts one
 * rotation, so certificates from its previous token (es_store_legacy_rotation)
 * are one generation behind. (PostgreSQL stores have versioned migrations
 * instead: es_store_pg.c.) */
static int migrate_sqlite(struct es_sql *db)
{
    static const struct {
        const char *column, *alter, *then;
    } add[] = {
        {"prev_secret_hash", "ALTER TABLE tunnels ADD COLUMN prev_secret_hash BLOB", NULL},
        {"prev_until", "ALTER TABLE tunnels ADD COLUMN prev_until INTEGER NOT NULL DEFAULT 0",
         NULL},
        {"rotated_at", "ALTER TABLE tunnels ADD COLUMN rotated_at INTEGER NOT NULL DEFAULT 0",
         NULL},
        {"rotations", "ALTER TABLE tunnels ADD COLUMN rotations INTEGER NOT NULL DEFAULT 0",
         "UPDATE tunnels SET rotations=1 WHERE rotated_at>0 OR prev_secret_hash IS NOT NULL"},
    };
    int missing = 0;
    for (size_t i = 0; i < sizeof(add) / sizeof(add[0]); i++) {
        int h = has_column(db, "tunnels", add[i].column);
        if (h < 0)
            return h;
        missing |= !h;
    }
    if (!missing)
        return 0;
    int rc = es_sql_begin(db, 1);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < sizeof(add) / sizeof(add[0]) && rc == 0; i++) {
        int h = has_column(db, "tunnels", add[i].column);
        if (h < 0)
            rc = h;
        else if (!h && (rc = es_sql_exec(db, add[i].alter)) == 0 && add[i].then)
            rc = es_sql_exec(db, add[i].then);
    }
    if (rc < 0) {
        es_sql_rollback(db);
        return rc;
    }
    return es_sql_commit(db);
}

int es_store_dir_lock(const char *dir)
{
    char path[600], why[700];
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return -1;
    /* A data dir others may use gets nothing written into it: the set-up
     * that follows refuses it and says how to fix it. */
    if (rt_file_check_private_dir(dir, "data directory", why, sizeof(why)) < 0)
        return -1;
    int n = snprintf(path, sizeof(path), "%s/init.lock", dir);
    if (n < 0 || (size_t)n >= sizeof(path))
        return -1;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -1;
    while (flock(fd, LOCK_EX) < 0) {
        if (errno != EINTR) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

void es_store_dir_unlock(int fd)
{
    if (fd >= 0)
        close(fd); /* releases the lock */
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int open_pg(struct es_store *s, const char *spec, char *why, size_t whylen)
{
    int rc = es_sql_open_pg(&s->db, spec, why, whylen);
    if (rc == 0)
        rc = es_store_pg_check(s->db, why, whylen);
    if (rc == 0 && (rc = es_sql_listen(s->db, ES_STORE_CHANNEL)) < 0)
        snprintf(why, whylen, "cannot listen for changes on %s: %s", es_sql_target(s->db),
                 es_sql_errmsg(s->db));
    if (rc < 0) {
        es_store_close(s);
        return rc;
    }
    es_store_reconcile(s);
    return 0;
}

static int open_sqlite(struct es_store *s, const char *dir, char *why, size_t whylen)
{
    char path[600];
    /* dir may be a raw --data-dir: a path cut short would be another file. */
    int len = snprintf(path, sizeof(path), "%s/edge.db", dir);
    if (len < 0 || (size_t)len >= sizeof(path)) {
        snprintf(why, whylen, "data directory path too long for edge.db (%zu bytes; at most %zu)",
                 strlen(dir), sizeof(path) - sizeof("/edge.db"));
        return PX_ERR_INVAL;
    }
    int rc = es_sql_open_sqlite(&s->db, path, why, whylen);
    if (rc < 0)
        return rc;
    if ((rc = es_sql_exec(s->db, "PRAGMA synchronous=FULL")) < 0 ||
        (rc = es_sql_exec(s->db, schema)) < 0 || (rc = migrate_sqlite(s->db)) < 0 ||
        (rc = es_sql_exec(s->db, es_store_access_schema)) < 0) {
        snprintf(why, whylen, "cannot initialise %s: %s", path, es_sql_errmsg(s->db));
        es_store_close(s);
        return rc;
    }
    es_store_changed(s);
    return 0;
}

int es_store_open(struct es_store *s, const char *spec, char *why, size_t whylen)
{
    memset(s, 0, sizeof(*s));
    return es_sql_spec_is_pg(spec) ? open_pg(s, spec, why, whylen)
                                   : open_sqlite(s, spec, why, whylen);
}

int es_store_migrate(const char *spec, int *from, int *to, char *why, size_t whylen)
{
    *from = *to = 0;
    if (!es_sql_spec_is_pg(spec)) {
        struct es_store s;
        int rc = es_store_open(&s, spec, why, whylen);
        es_store_close(&s);
        return rc;
    }
    struct es_sql *db = NULL;
    int rc = es_sql_open_pg(&db, spec, why, whylen);
    if (rc == 0)
        rc = es_store_pg_migrate(db, from, to, why, whylen);
    es_sql_close(db);
    return rc;
}

void es_store_close(struct es_store *s)
{
    es_sql_close(s->db);
    s->db = NULL;
    if (s->seal) {
        es_seal_key_wipe(s->seal);
        free(s->seal);
    }
    s->seal = NULL;
    s->seal_rng = NULL;
}

int es_store_set_seal(struct es_store *s, const struct es_seal_key *key, struct WC_RNG *rng)
{
    if (!s->seal && !(s->seal = malloc(sizeof(*s->seal))))
        return PX_ERR_NOMEM;
    memcpy(s->seal, key, sizeof(*s->seal));
    s->seal_rng = rng;
    return 0;
}

int es_store_shared(const struct es_store *s)
{
    return s->db && es_sql_kind(s->db) == ES_SQL_PG;
}

int es_store_changed(struct es_store *s)
{
    if (es_sql_kind(s->db) == ES_SQL_PG) {
        /* Down: one non-blocking reconnection step; coming back counts as
         * a change (es_sql_notices), since what happened meanwhile is
         * unknown. */
        es_sql_reconnect(s->db, mono_ms(), 1000);
        return es_sql_notices(s->db) > 0;
    }
    long long v = es_sql_data_version(s->db);
    int changed = v != s->data_version;
    s->data_version = v;
    return changed;
}

int es_store_reconcile(struct es_store *s)
{
    if (es_sql_kind(s->db) != ES_SQL_PG || !es_sql_up(s->db))
        return 0;
    struct es_sql_res r;
    int changed = 0;
    if (es_sql_query(s->db, &r,
                     "SELECT last_value + (CASE WHEN is_called THEN 1 ELSE 0 END)"
                     " FROM change_seq",
                     NULL, 0) == 0 &&
        es_sql_next(&r) == 1) {
        long long v = es_sql_int(&r, 0);
        changed = v != s->change_seq;
        s->change_seq = v;
    }
    es_sql_done(&r);
    return changed;
}

int es_store_kv_get(struct es_store *s, const char *key, char *out, size_t outlen)
{
    struct es_sql_res r;
    int rc =
        es_sql_query(s->db, &r, "SELECT value FROM kv WHERE key=?", ES_SQL_ARGS(ES_SQL_T(key)));
    if (rc == 0 && (rc = es_sql_next(&r)) == 1) {
        snprintf(out, outlen, "%s", es_sql_text(&r, 0));
        rc = 0;
    } else if (rc == 0) {
        rc = PX_ERR_NOT_FOUND;
    }
    es_sql_done(&r);
    return rc;
}

int es_store_kv_set(struct es_store *s, const char *key, const char *value)
{
    return es_sql_query(s->db, NULL,
                        "INSERT INTO kv(key,value) VALUES(?,?)"
                        " ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                        ES_SQL_ARGS(ES_SQL_T(key), ES_SQL_T(value)));
}

int es_store_kv_set_if_absent(struct es_store *s, const char *key, const char *value)
{
    return es_sql_query(s->db, NULL,
                        "INSERT INTO kv(key,value) VALUES(?,?) ON CONFLICT(key) DO NOTHING",
                        ES_SQL_ARGS(ES_SQL_T(key), ES_SQL_T(value)));
}

void es_tunnel_rec_cleanup(struct es_tunnel_rec *t)
{
    for (size_t i = 0; i < t->n_patterns; i++)
        free(t->patterns[i]);
    t->n_patterns = 0;
}

int es_store_tunnel_add(struct es_store *s, const struct es_tunnel_rec *t)
{
    json_t *a = json_array();
    for (size_t i = 0; i < t->n_patterns; i++)
        json_array_append_new(a, json_string(t->patterns[i]));
    char *pj = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    if (!pj)
        return PX_ERR_NOMEM;
    int rc = es_sql_query(s->db, NULL,
                          "INSERT INTO tunnels(id,name,secret_hash,patterns,created) "
                          "VALUES(?,?,?,?,?)",
                          ES_SQL_ARGS(ES_SQL_T(t->id), ES_SQL_T(t->name),
                                      ES_SQL_B(t->secret_hash, sizeof(t->secret_hash)),
                                      ES_SQL_T(pj), ES_SQL_I((long long)time(NULL))));
    free(pj);
    return rc;
}

static void load_row(struct es_sql_res *r, struct es_tunnel_rec *t)
{
    memset(t, 0, sizeof(*t));
    const char *id = es_sql_text(r, 0), *name = es_sql_text(r, 1), *pats = es_sql_text(r, 3);
    snprintf(t->id, sizeof(t->id), "%s", id ? id : "");
    snprintf(t->name, sizeof(t->name), "%s", name ? name : "");
    size_t hl;
    const void *h = es_sql_blob(r, 2, &hl);
    if (h && hl == sizeof(t->secret_hash))
        memcpy(t->secret_hash, h, sizeof(t->secret_hash));
    json_error_t e;
    json_t *a = pats ? json_loads(pats, 0, &e) : NULL;
    for (size_t i = 0; a && i < json_array_size(a) && i < ES_MAX_PATTERNS; i++) {
        const char *p = json_string_value(json_array_get(a, i));
        if (p && (t->patterns[t->n_patterns] = strdup(p)))
            t->n_patterns++;
    }
    json_decref(a);
    t->created = es_sql_int(r, 4);
}

#define SELECT_TUNNEL "SELECT id,name,secret_hash,patterns,created FROM tunnels"

int es_store_tunnel_get(struct es_store *s, const char *id, const char *name,
                        struct es_tunnel_rec *out)
{
    struct es_sql_res r;
    int rc = es_sql_query(s->db, &r, SELECT_TUNNEL " WHERE id=? OR name=?",
                          ES_SQL_ARGS(ES_SQL_T(id ? id : ""), ES_SQL_T(name ? name : "\x01")));
    if (rc == 0 && (rc = es_sql_next(&r)) == 1) {
        load_row(&r, out);
        rc = 0;
    } else if (rc == 0) {
        rc = PX_ERR_NOT_FOUND;
    }
    es_sql_done(&r);
    return rc;
}

int es_store_tunnel_secret_hash(struct es_store *s, const char *id, uint8_t hash[32])
{
    struct es_sql_res r;
    int rc = es_sql_query(s->db, &r, "SELECT secret_hash FROM tunnels WHERE id=?",
                          ES_SQL_ARGS(ES_SQL_T(id)));
    if (rc == 0 && (rc = es_sql_next(&r)) == 1) {
        size_t n;
        const void *h = es_sql_blob(&r, 0, &n);
        rc = h && n == 32 ? 0 : PX_ERR_NOT_FOUND;
        if (rc == 0)
            memcpy(hash, h, 32);
    } else if (rc == 0) {
        rc = PX_ERR_NOT_FOUND;
    }
    es_sql_done(&r);
    return rc;
}

int es_store_tunnel_secrets(struct es_store *s, const char *id, struct es_tunnel_secrets *out)
{
    struct es_sql_res r;
    int rc = es_sql_query(
        s->db, &r,
        "SELECT secret_hash, prev_secret_hash, prev_until, rotated_at, rotations FROM tunnels"
        " WHERE id=?",
        ES_SQL_ARGS(ES_SQL_T(id)));
    if (rc == 0 && (rc = es_sql_next(&r)) == 1) {
        size_t n;
        const void *h = es_sql_blob(&r, 0, &n);
        rc = PX_ERR_NOT_FOUND;
        if (h && n == 32) {
            memset(out, 0, sizeof(*out));
            memcpy(out->current, h, 32);
            out->rotated_at = es_sql_int(&r, 3);
            out->rotations = es_sql_int(&r, 4);
            /* A previous hash of any other size (none: NULL) stays all zeros. */
            const void *p = es_sql_blob(&r, 1, &n);
            if (p && n == 32) {
                memcpy(out->previous, p, 32);
                out->previous_until = es_sql_int(&r, 2);
            }
            rc = 0;
        }
    } else if (rc == 0) {
        rc = PX_ERR_NOT_FOUND;
    }
    es_sql_done(&r);
    return rc;
}

int es_store_secret_match(const struct es_tunnel_secrets *s, const uint8_t hash[32], long long now)
{
    unsigned cur = 0, prev = 0;
    for (size_t i = 0; i < 32; i++) {
        cur |= (unsigned)(hash[i] ^ s->current[i]);
        prev |= (unsigned)(hash[i] ^ s->previous[i]);
    }
    if (cur == 0)
        return 1;
    return prev == 0 && s->previous_until > 0 && now < s->previous_until ? 2 : 0;
}

long long es_store_enrol_rotation(const struct es_tunnel_secrets *s, int match)
{
    return match == 2 ? s->rotations - 1 : s->rotations;
}

long long es_store_legacy_rotation(const struct es_tunnel_secrets *s, long long enrolled_at)
{
    return s->rotated_at > 0 && enrolled_at <= s->rotated_at ? s->rotations - 1 : s->rotations;
}

int es_store_line_renewable(const struct es_tunnel_secrets *s, long long rotation, long long now)
{
    if (rotation == s->rotations)
        return 1;
    /* The token it enrolled with was replaced by the latest rotation: it
     * renews as long as that token still enrols, not a second longer. */
    return rotation == s->rotations - 1 && s->previous_until > 0 && now < s->previous_until;
}

int es_store_tunnel_rotate(struct es_store *s, const char *name_or_id, const uint8_t new_hash[32],
                           long long prev_until, char id_out[33], char name_out[65])
{
    /* The right-hand sides read the row as it was: the old hash moves to
     * prev_secret_hash in the same statement that replaces it. A name wins
     * over an id (a name may look like another tunnel's id): one row only. */
    struct es_sql_res r;
    int rc =
        es_sql_query(s->db, &r,
                     "UPDATE tunnels SET prev_secret_hash=secret_hash, prev_until=?1,"
                     " rotated_at=?5, rotations=rotations+1,"
                     " secret_hash=?2 WHERE id=COALESCE((SELECT id FROM tunnels WHERE name=?3),"
                     " (SELECT id FROM tunnels WHERE id=?4)) RETURNING id, name",
                     ES_SQL_ARGS(ES_SQL_I(prev_until), ES_SQL_B(new_hash, 32), ES_SQL_T(name_or_id),
                                 ES_SQL_T(name_or_id), ES_SQL_I((long long)time(NULL))));
    if (rc == 0 && (rc = es_sql_next(&r)) == 1) {
        if (id_out)
            snprintf(id_out, 33, "%s", es_sql_text(&r, 0));
        if (name_out)
            snprintf(name_out, 65, "%s", es_sql_text(&r, 1));
        rc = es_sql_next(&r) == 0 ? 0 : PX_ERR_DB;
    } else if (rc == 0) {
        rc = PX_ERR_NOT_FOUND;
    }
    es_sql_done(&r);
    return rc;
}

int es_store_tunnel_delete(struct es_store *s, const char *name)
{
    /* A name wins over an id, as in es_store_tunnel_rotate: a name may look
     * like another tunnel's id, and only one tunnel goes. */
    int rc = es_sql_query(s->db, NULL,
                          "DELETE FROM tunnels WHERE id=COALESCE((SELECT id FROM tunnels"
                          " WHERE name=?), (SELECT id FROM tunnels WHERE id=?))",
                          ES_SQL_ARGS(ES_SQL_T(name), ES_SQL_T(name)));
    if (rc == 0 && es_sql_changes(s->db) == 0)
        rc = PX_ERR_NOT_FOUND;
    return rc;
}

int es_store_tunnel_list(struct es_store *s, struct es_tunnel_rec **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    struct es_sql_res r;
    int rc = es_sql_query(s->db, &r, SELECT_TUNNEL " ORDER BY name", NULL, 0);
    size_t cap = 0;
    while (rc == 0 && (rc = es_sql_next(&r)) == 1) {
        rc = 0;
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            struct es_tunnel_rec *nt = realloc(*out, cap * sizeof(**out));
            if (!nt) {
                rc = PX_ERR_NOMEM;
                break;
            }
            *out = nt;
        }
        load_row(&r, &(*out)[(*n)++]);
    }
    es_sql_done(&r);
    if (rc < 0) {
        es_store_tunnels_free(*out, *n);
        *out = NULL;
        *n = 0;
        return rc;
    }
    return 0;
}

void es_store_tunnels_free(struct es_tunnel_rec *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        es_tunnel_rec_cleanup(&t[i]);
    free(t);
}

/* The advisory lock key pair of a domain (FNV-1a, 64 bits, split). */
static void domain_key(const char *d, size_t n, unsigned *hi, unsigned *lo)
{
    unsigned long long h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)d[i];
        h *= 1099511628211ULL;
    }
    *hi = (unsigned)(h >> 32);
    *lo = (unsigned)h;
}

/* PostgreSQL: the locks a claim of hostname takes, so that claims that
 * could overlap run one at a time and the others in parallel. Two claims
 * overlap only when one's base (the name, or a wildcard's suffix) is the
 * other's or under it. A claim takes its base exclusively and every
 * suffix above it shared ("a.b.example" takes "example" and "b.example"
 * shared, "a.b.example" exclusive), top down: the one covering the other
 * holds exclusively what the other wants at least shared. Transaction
 * scoped, in the two-key space (apart from es_sql's single-key write
 * lock). Returns 0 or as es_sql_exec. */
static int claim_locks(struct es_store *s, const char *hostname)
{
    const char *base = hostname[0] == '*' && hostname[1] == '.' ? hostname + 2 : hostname;
    size_t n = strlen(base), cap = 16 + (n / 2 + 2) * 64;
    char *sql = malloc(cap);
    if (!sql)
        return PX_ERR_NOMEM;
    size_t k = (size_t)snprintf(sql, cap, "SELECT 1");
    /* Suffixes from the top: each start just after a '.', scanned from the end. */
    for (size_t i = n; i-- > 0;) {
        if (i > 0 && base[i - 1] != '.')
            continue;
        unsigned hi, lo;
        domain_key(base + i, n - i, &hi, &lo);
        int w = snprintf(sql + k, cap - k, ", pg_advisory_xact_lock%s(%d, %d)",
                         i == 0 ? "" : "_shared", (int)hi, (int)lo);
        if (w < 0 || (size_t)w >= cap - k) {
            free(sql);
            return PX_ERR_TOO_LARGE;
        }
        k += (size_t)w;
    }
    int rc = es_sql_exec(s->db, sql);
    free(sql);
    return rc;
}

/* For es_store_route_claim on PostgreSQL: *above, a text[] literal of
 * hostname and the wildcards that would cover it ("{a.b.c,*.b.c,*.c}"; for
 * "*.b.c": "{*.b.c,*.c}"), and [lo, hi), the range of reversed names under
 * a wildcard hostname (empty for an exact one). hostname is a valid
 * pattern (letters, digits, '-', '.', a leading "*."): nothing in it needs
 * quoting in the literal. Returns 0 or PX_ERR_NOMEM / PX_ERR_INVAL. */
static int overlap_keys(const char *hostname, char **above, char lo[260], char hi[260])
{
    size_t n = strlen(hostname);
    if (n > 253)
        return PX_ERR_INVAL;
    /* At most n/2 + 1 labels, each "*." + a suffix, plus braces. */
    size_t cap = 2 + (n + 3) * (n / 2 + 2);
    char *o = malloc(cap);
    if (!o)
        return PX_ERR_NOMEM;
    size_t k = 0;
    int wild = hostname[0] == '*';
    const char *base = wild ? hostname + 2 : hostname;
    k += (size_t)snprintf(o + k, cap - k, "{%s", hostname);
    for (const char *p = strchr(base, '.'); p; p = strchr(p + 1, '.'))
        k += (size_t)snprintf(o + k, cap - k, ",*%s", p);
    snprintf(o + k, cap - k, "}");
    *above = o;
    lo[0] = hi[0] = '\0';
    if (wild) {
        /* Names under base end with "." + base: reversed, they start with
         * reverse(base) + "."; "/" is the byte after ".". */
        size_t bl = strlen(base);
        for (size_t i = 0; i < bl; i++)
            lo[i] = hi[i] = base[bl - 1 - i];
        lo[bl] = '.';
        hi[bl] = '/';
        lo[bl + 1] = hi[bl + 1] = '\0';
    }
    return 0;
}

int es_store_route_claim(struct es_store *s, const char *hostname, const char *tunnel_id,
                         struct es_route_conflict *conflict)
{
    /* The check and the insert under a lock (SQLite: IMMEDIATE, the one
     * writer; PostgreSQL: the name's domain locks, claim_locks): a deferred
     * transaction would check against a snapshot another process may
     * change before our insert. Waiting is bounded (busy / lock timeout). */
    int pg = es_sql_kind(s->db) == ES_SQL_PG;
    int rc = es_sql_begin(s->db, !pg);
    if (rc == 0 && pg && (rc = claim_locks(s, hostname)) < 0)
        es_sql_rollback(s->db);
    if (rc < 0)
        return rc;
    struct es_sql_res r;
    if (es_sql_kind(s->db) == ES_SQL_PG) {
        /* Only the claims that can overlap, found by index (a shared store
         * may hold millions): the name itself, the wildcards above it,
         * and for a wildcard the names under it (rev, the name reversed,
         * in a prefix range). px_host_overlap still decides, below. */
        char *above = NULL, lo[260], hi[260];
        rc = overlap_keys(hostname, &above, lo, hi);
        if (rc == 0)
            rc = es_sql_query(
                s->db, &r,
                "SELECT r.hostname, r.tunnel_id, t.name FROM routes r"
                " JOIN tunnels t ON t.id = r.tunnel_id WHERE r.tunnel_id <> ?1"
                " AND (r.hostname = ANY(CAST(?2 AS text[]))"
                " OR (r.rev >= ?3 AND r.rev < ?4))",
                ES_SQL_ARGS(ES_SQL_T(tunnel_id), ES_SQL_T(above), ES_SQL_T(lo), ES_SQL_T(hi)));
        else
            memset(&r, 0, sizeof(r));
        free(above);
    } else {
        rc = es_sql_query(s->db, &r,
                          "SELECT r.hostname, r.tunnel_id, t.name FROM routes r"
                          " JOIN tunnels t ON t.id = r.tunnel_id WHERE r.tunnel_id <> ?",
                          ES_SQL_ARGS(ES_SQL_T(tunnel_id)));
    }
    while (rc == 0 && (rc = es_sql_next(&r)) == 1) {
        rc = 0;
        const char *held = es_sql_text(&r, 0);
        /* px_host_overlap needs valid patterns; a row that is not one can
         * only come from outside edge-sim and matches no request anyway. */
        if (!held || !px_host_pattern_valid(held) || !px_host_overlap(held, hostname))
            continue;
        if (conflict) {
            const char *id = es_sql_text(&r, 1), *name = es_sql_text(&r, 2);
            snprintf(conflict->hostname, sizeof(conflict->hostname), "%s", held);
            snprintf(conflict->tunnel_id, sizeof(conflict->tunnel_id), "%s", id ? id : "");
            snprintf(conflict->tunnel_name, sizeof(conflict->tunnel_name), "%s", name ? name : "");
        }
        rc = PX_ERR_EXISTS;
    }
    es_sql_done(&r);
    /* Already ours: nothing to insert. A missing tunnel still fails (the
     * foreign key is not subject to DO NOTHING). */
    if (rc == 0 &&
        (rc = es_sql_query(s->db, NULL,
                           "INSERT INTO routes(hostname,tunnel_id) VALUES(?,?)"
                           " ON CONFLICT(hostname) DO NOTHING",
                           ES_SQL_ARGS(ES_SQL_T(hostname), ES_SQL_T(tunnel_id)))) < 0 &&
        es_sql_failure(s->db) == ES_SQL_FAIL_FOREIGN)
        rc = PX_ERR_NOT_FOUND; /* deleted by another process since this one looked */
    if (rc < 0) {
        es_sql_rollback(s->db);
        return rc;
    }
    return es_sql_commit(s->db);
}

int es_store_route_release(struct es_store *s, const char *hostname, const char *tunnel_id)
{
    return es_sql_query(s->db, NULL, "DELETE FROM routes WHERE hostname=? AND tunnel_id=?",
                        ES_SQL_ARGS(ES_SQL_T(hostname), ES_SQL_T(tunnel_id)));
}

int es_store_route_each(struct es_store *s,
                        void (*cb)(const char *hostname, const char *tunnel_id, void *arg),
                        void *arg)
{
    struct es_sql_res r;
    int rc = es_sql_query(s->db, &r, "SELECT hostname,tunnel_id FROM routes", NULL, 0);
    while (rc == 0 && (rc = es_sql_next(&r)) == 1) {
        rc = 0;
        cb(es_sql_text(&r, 0), es_sql_text(&r, 1), arg);
    }
    es_sql_done(&r);
    return rc;
}

void es_ca_rec_cleanup(struct es_ca_rec *r)
{
    free(r->cert_pem);
    free(r->key_sealed);
    free(r->key_id);
    memset(r, 0, sizeof(*r));
}

int es_store_ca_get(struct es_store *s, const char *name, struct es_ca_rec *out)
{
    memset(out, 0, sizeof(*out));
    struct es_sql_res r;
    int rc = es_sql_query(s->db, &r, "SELECT cert_pem, key_sealed, key_id FROM cas WHERE name=?",
                          ES_SQL_ARGS(ES_SQL_T(name)));
    if (rc == 0 && (rc = es_sql_next(&r)) == 1) {
        const char *c = es_sql_text(&r, 0), *k = es_sql_text(&r, 1), *id = es_sql_text(&r, 2);
        rc = 0;
        if ((c && !(out->cert_pem = strdup(c))) || !k || !(out->key_sealed = strdup(k)) || !id ||
            !(out->key_id = strdup(id))) {
            es_ca_rec_cleanup(out);
            rc = PX_ERR_NOMEM;
        }
    } else if (rc == 0) {
        rc = PX_ERR_NOT_FOUND;
    }
    es_sql_done(&r);
    return rc;
}

int es_store_ca_put_if_absent(struct es_store *s, const char *name, const char *cert_pem,
                              const char *key_sealed, const char *key_id)
{
    return es_sql_query(s->db, NULL,
                        "INSERT INTO cas(name,cert_pem,key_sealed,key_id,created)"
                        " VALUES(?,?,?,?,?) ON CONFLICT(name) DO NOTHING",
                        ES_SQL_ARGS(ES_SQL_T(name), ES_SQL_T(cert_pem), ES_SQL_T(key_sealed),
                                    ES_SQL_T(key_id), ES_SQL_I((long long)time(NULL))));
}

int es_store_ca_names(struct es_store *s, char ***names, size_t *n)
{
    *names = NULL;
    *n = 0;
    struct es_sql_res r;
    int rc = es_sql_query(s->db, &r, "SELECT name FROM cas ORDER BY name", NULL, 0);
    size_t cap = 0;
    while (rc == 0 && (rc = es_sql_next(&r)) == 1) {
        rc = 0;
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            char **a = realloc(*names, cap * sizeof(*a));
            if (!a) {
                rc = PX_ERR_NOMEM;
                break;
            }
            *names = a;
        }
        const char *v = es_sql_text(&r, 0);
        if (!v || !((*names)[*n] = strdup(v))) {
            rc = PX_ERR_NOMEM;
            break;
        }
        (*n)++;
    }
    es_sql_done(&r);
    if (rc < 0) {
        for (size_t i = 0; i < *n; i++)
            free((*names)[i]);
        free(*names);
        *names = NULL;
        *n = 0;
    }
    return rc;
}

int es_store_ca_set(struct es_store *s, const char *name, const char *cert_pem,
                    const char *key_sealed, const char *key_id)
{
    return es_sql_query(s->db, NULL,
                        "INSERT INTO cas(name,cert_pem,key_sealed,key_id,created)"
                        " VALUES(?,?,?,?,?) ON CONFLICT(name) DO UPDATE SET"
                        " cert_pem=excluded.cert_pem, key_sealed=excluded.key_sealed,"
                        " key_id=excluded.key_id, created=excluded.created",
                        ES_SQL_ARGS(ES_SQL_T(name), ES_SQL_T(cert_pem), ES_SQL_T(key_sealed),
                                    ES_SQL_T(key_id), ES_SQL_I((long long)time(NULL))));
}
