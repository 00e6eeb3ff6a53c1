#include "es_store.h"
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
    "PRAGMA foreign_keys=ON;"
    "CREATE TABLE IF NOT EXISTS kv(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS tunnels(id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " secret_hash BLOB NOT NULL, patterns TEXT NOT NULL, created INTEGER NOT NULL,"
    " prev_secret_hash BLOB, prev_until INTEGER NOT NULL DEFAULT 0,"
    " rotated_at INTEGER NOT NULL DEFAULT 0, rotations INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS routes(hostname TEXT PRIMARY KEY,"
    " tunnel_id TEXT NOT NULL REFERENCES tunnels(id) ON DELETE CASCADE);";

extern const char es_store_access_schema[]; /* es_store_access.c */

/* 1 if table has column, 0 if not, < 0 on error. */
static int has_column(sqlite3 *db, const char *table, const char *column)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM pragma_table_info(?) WHERE name=?", -1, &st, NULL) !=
        SQLITE_OK)
        return PX_ERR_DB;
    sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, column, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    sqlite3_finalize(st);
    return r == SQLITE_ROW ? 1 : r == SQLITE_DONE ? 0 : PX_ERR_DB;
}

/* Databases made before token rotation lack its columns, and those made
 * before its generations lack `rotations`. The check and the ALTERs are one
 * IMMEDIATE transaction: a CLI and a serve opening the same old database at
 * once must not both add them. A column's `then` runs only when the column
 * was added: a tunnel rotated before `rotations` existed counts one
 * rotation, so certificates from its previous token (es_store_legacy_rotation)
 * are one generation behind. */
static int migrate(sqlite3 *db, char **err)
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
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, err) != SQLITE_OK)
        return PX_ERR_DB;
    for (size_t i = 0; i < sizeof(add) / sizeof(add[0]); i++) {
        int h = has_column(db, "tunnels", add[i].column);
        if (h < 0 || (!h && (sqlite3_exec(db, add[i].alter, NULL, NULL, err) != SQLITE_OK ||
                             (add[i].then &&
                              sqlite3_exec(db, add[i].then, NULL, NULL, err) != SQLITE_OK)))) {
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return PX_ERR_DB;
        }
    }
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, err) != SQLITE_OK) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return PX_ERR_DB;
    }
    return 0;
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

int es_store_open(struct es_store *s, const char *dir, char *why, size_t whylen)
{
    char path[600];
    memset(s, 0, sizeof(*s));
    /* dir may be a raw --data-dir: a path cut short would be another file. */
    int len = snprintf(path, sizeof(path), "%s/edge.db", dir);
    if (len < 0 || (size_t)len >= sizeof(path)) {
        snprintf(why, whylen, "data directory path too long for edge.db (%zu bytes; at most %zu)",
                 strlen(dir), sizeof(path) - sizeof("/edge.db"));
        return PX_ERR_INVAL;
    }
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        snprintf(why, whylen, "cannot open %s: %s", path,
                 s->db ? sqlite3_errmsg(s->db) : "out of memory");
        sqlite3_close(s->db);
        s->db = NULL;
        return PX_ERR_DB;
    }
    sqlite3_busy_timeout(s->db, 5000);
    char *err = NULL;
    if (sqlite3_exec(s->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL, NULL,
                     &err) != SQLITE_OK ||
        sqlite3_exec(s->db, schema, NULL, NULL, &err) != SQLITE_OK || migrate(s->db, &err) < 0 ||
        sqlite3_exec(s->db, es_store_access_schema, NULL, NULL, &err) != SQLITE_OK) {
        snprintf(why, whylen, "cannot initialise %s: %s", path, err ? err : "?");
        sqlite3_free(err);
        es_store_close(s);
        return PX_ERR_DB;
    }
    es_store_changed(s);
    return 0;
}

void es_store_close(struct es_store *s)
{
    if (s->db)
        sqlite3_close(s->db);
    s->db = NULL;
}

int es_store_changed(struct es_store *s)
{
    sqlite3_stmt *st;
    long long v = s->data_version;
    if (sqlite3_prepare_v2(s->db, "PRAGMA data_version", -1, &st, NULL) != SQLITE_OK)
        return 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    int changed = v != s->data_version;
    s->data_version = v;
    return changed;
}

int es_store_kv_get(struct es_store *s, const char *key, char *out, size_t outlen)
{
    sqlite3_stmt *st;
    int rc = PX_ERR_NOT_FOUND;
    if (sqlite3_prepare_v2(s->db, "SELECT value FROM kv WHERE key=?", -1, &st, NULL) != SQLITE_OK)
        return PX_ERR_DB;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        snprintf(out, outlen, "%s", (const char *)sqlite3_column_text(st, 0));
        rc = 0;
    }
    sqlite3_finalize(st);
    return rc;
}

static int kv_write(struct es_store *s, const char *sql, const char *key, const char *value)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return PX_ERR_DB;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : PX_ERR_DB;
    sqlite3_finalize(st);
    return rc;
}

int es_store_kv_set(struct es_store *s, const char *key, const char *value)
{
    return kv_write(s, "INSERT OR REPLACE INTO kv(key,value) VALUES(?,?)", key, value);
}

int es_store_kv_set_if_absent(struct es_store *s, const char *key, const char *value)
{
    return kv_write(s, "INSERT OR IGNORE INTO kv(key,value) VALUES(?,?)", key, value);
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
    sqlite3_stmt *st;
    int rc = PX_ERR_DB;
    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO tunnels(id,name,secret_hash,patterns,created) "
                           "VALUES(?,?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(st, 1, t->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, t->name, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, t->secret_hash, sizeof(t->secret_hash), SQLITE_STATIC);
    sqlite3_bind_text(st, 4, pj, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)time(NULL));
    int r = sqlite3_step(st);
    rc = r == SQLITE_DONE ? 0 : (r == SQLITE_CONSTRAINT ? PX_ERR_EXISTS : PX_ERR_DB);
    sqlite3_finalize(st);
out:
    free(pj);
    return rc;
}

static void load_row(sqlite3_stmt *st, struct es_tunnel_rec *t)
{
    memset(t, 0, sizeof(*t));
    snprintf(t->id, sizeof(t->id), "%s", (const char *)sqlite3_column_text(st, 0));
    snprintf(t->name, sizeof(t->name), "%s", (const char *)sqlite3_column_text(st, 1));
    if (sqlite3_column_bytes(st, 2) == sizeof(t->secret_hash))
        memcpy(t->secret_hash, sqlite3_column_blob(st, 2), sizeof(t->secret_hash));
    json_error_t e;
    json_t *a = json_loads((const char *)sqlite3_column_text(st, 3), 0, &e);
    for (size_t i = 0; a && i < json_array_size(a) && i < ES_MAX_PATTERNS; i++) {
        const char *p = json_string_value(json_array_get(a, i));
        if (p && (t->patterns[t->n_patterns] = strdup(p)))
            t->n_patterns++;
    }
    json_decref(a);
    t->created = sqlite3_column_int64(st, 4);
}

#define SELECT_TUNNEL "SELECT id,name,secret_hash,patterns,created FROM tunnels"

int es_store_tunnel_get(struct es_store *s, const char *id, const char *name,
                        struct es_tunnel_rec *out)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, SELECT_TUNNEL " WHERE id=? OR name=?", -1, &st, NULL) !=
        SQLITE_OK)
        return PX_ERR_DB;
    sqlite3_bind_text(st, 1, id ? id : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name ? name : "\x01", -1, SQLITE_STATIC);
    int rc = PX_ERR_NOT_FOUND;
    if (sqlite3_step(st) == SQLITE_ROW) {
        load_row(st, out);
        rc = 0;
    }
    sqlite3_finalize(st);
    return rc;
}

int es_store_tunnel_secret_hash(struct es_store *s, const char *id, uint8_t hash[32])
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT secret_hash FROM tunnels WHERE id=?", -1, &st, NULL) !=
        SQLITE_OK)
        return PX_ERR_DB;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = PX_ERR_NOT_FOUND, r = sqlite3_step(st);
    if (r == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 32) {
        memcpy(hash, sqlite3_column_blob(st, 0), 32);
        rc = 0;
    } else if (r != SQLITE_ROW && r != SQLITE_DONE) {
        rc = PX_ERR_DB;
    }
    sqlite3_finalize(st);
    return rc;
}

int es_store_tunnel_secrets(struct es_store *s, const char *id, struct es_tunnel_secrets *out)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(
            s->db,
            "SELECT secret_hash, prev_secret_hash, prev_until, rotated_at, rotations FROM tunnels"
            " WHERE id=?",
            -1, &st, NULL) != SQLITE_OK)
        return PX_ERR_DB;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = PX_ERR_NOT_FOUND, r = sqlite3_step(st);
    if (r == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 32) {
        memset(out, 0, sizeof(*out));
        memcpy(out->current, sqlite3_column_blob(st, 0), 32);
        out->rotated_at = sqlite3_column_int64(st, 3);
        out->rotations = sqlite3_column_int64(st, 4);
        /* A previous hash of any other size (none: NULL) stays all zeros. */
        if (sqlite3_column_bytes(st, 1) == 32) {
            memcpy(out->previous, sqlite3_column_blob(st, 1), 32);
            out->previous_until = sqlite3_column_int64(st, 2);
        }
        rc = 0;
    } else if (r != SQLITE_ROW && r != SQLITE_DONE) {
        rc = PX_ERR_DB;
    }
    sqlite3_finalize(st);
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
    sqlite3_stmt *st;
    /* The right-hand sides read the row as it was: the old hash moves to
     * prev_secret_hash in the same statement that replaces it. A name wins
     * over an id (a name may look like another tunnel's id): one row only. */
    if (sqlite3_prepare_v2(s->db,
                           "UPDATE tunnels SET prev_secret_hash=secret_hash, prev_until=?,"
                           " rotated_at=CAST(strftime('%s','now') AS INTEGER),"
                           " rotations=rotations+1,"
                           " secret_hash=? WHERE id=COALESCE((SELECT id FROM tunnels WHERE name=?),"
                           " (SELECT id FROM tunnels WHERE id=?)) RETURNING id, name",
                           -1, &st, NULL) != SQLITE_OK)
        return PX_ERR_DB;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)prev_until);
    sqlite3_bind_blob(st, 2, new_hash, 32, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, name_or_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, name_or_id, -1, SQLITE_STATIC);
    int rc = PX_ERR_DB, r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        if (id_out)
            snprintf(id_out, 33, "%s", (const char *)sqlite3_column_text(st, 0));
        if (name_out)
            snprintf(name_out, 65, "%s", (const char *)sqlite3_column_text(st, 1));
        rc = sqlite3_step(st) == SQLITE_DONE ? 0 : PX_ERR_DB;
    } else if (r == SQLITE_DONE) {
        rc = PX_ERR_NOT_FOUND;
    }
    sqlite3_finalize(st);
    return rc;
}

int es_store_tunnel_delete(struct es_store *s, const char *name)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "DELETE FROM tunnels WHERE name=? OR id=?", -1, &st, NULL) !=
        SQLITE_OK)
        return PX_ERR_DB;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : PX_ERR_DB;
    sqlite3_finalize(st);
    if (rc == 0 && sqlite3_changes(s->db) == 0)
        rc = PX_ERR_NOT_FOUND;
    return rc;
}

int es_store_tunnel_list(struct es_store *s, struct es_tunnel_rec **out, size_t *n)
{
    sqlite3_stmt *st;
    *out = NULL;
    *n = 0;
    if (sqlite3_prepare_v2(s->db, SELECT_TUNNEL " ORDER BY name", -1, &st, NULL) != SQLITE_OK)
        return PX_ERR_DB;
    size_t cap = 0;
    int rc = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            struct es_tunnel_rec *nt = realloc(*out, cap * sizeof(**out));
            if (!nt) {
                rc = PX_ERR_NOMEM;
                break;
            }
            *out = nt;
        }
        load_row(st, &(*out)[(*n)++]);
    }
    sqlite3_finalize(st);
    return rc;
}

void es_store_tunnels_free(struct es_tunnel_rec *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        es_tunnel_rec_cleanup(&t[i]);
    free(t);
}

int es_store_route_claim(struct es_store *s, const char *hostname, const char *tunnel_id,
                         struct es_route_conflict *conflict)
{
    /* IMMEDIATE takes the write lock before the check: a deferred transaction
     * would check against a snapshot another process may change before our
     * insert. Waiting for the lock is bounded by the busy timeout. */
    if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return PX_ERR_DB;
    sqlite3_stmt *st = NULL;
    int rc = PX_ERR_DB, r;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT r.hostname, r.tunnel_id, t.name FROM routes r"
                           " JOIN tunnels t ON t.id = r.tunnel_id WHERE r.tunnel_id <> ?",
                           -1, &st, NULL) != SQLITE_OK)
        goto out_rollback;
    sqlite3_bind_text(st, 1, tunnel_id, -1, SQLITE_STATIC);
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        const char *held = (const char *)sqlite3_column_text(st, 0);
        /* px_host_overlap needs valid patterns; a row that is not one can
         * only come from outside edge-sim and matches no request anyway. */
        if (!held || !px_host_pattern_valid(held) || !px_host_overlap(held, hostname))
            continue;
        if (conflict) {
            snprintf(conflict->hostname, sizeof(conflict->hostname), "%s", held);
            snprintf(conflict->tunnel_id, sizeof(conflict->tunnel_id), "%s",
                     (const char *)sqlite3_column_text(st, 1));
            snprintf(conflict->tunnel_name, sizeof(conflict->tunnel_name), "%s",
                     (const char *)sqlite3_column_text(st, 2));
        }
        rc = PX_ERR_EXISTS;
        goto out_rollback;
    }
    if (r != SQLITE_DONE)
        goto out_rollback;
    sqlite3_finalize(st);
    st = NULL;
    /* Already ours: nothing to insert. A missing tunnel still fails (the
     * foreign key is not subject to OR IGNORE). */
    if (sqlite3_prepare_v2(s->db, "INSERT OR IGNORE INTO routes(hostname,tunnel_id) VALUES(?,?)",
                           -1, &st, NULL) != SQLITE_OK)
        goto out_rollback;
    sqlite3_bind_text(st, 1, hostname, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, tunnel_id, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) {
        /* The tunnel is gone (deleted by another process since this one
         * last looked): not a storage failure. */
        if (sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_FOREIGNKEY)
            rc = PX_ERR_NOT_FOUND;
        goto out_rollback;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        goto out_rollback;
    return 0;
out_rollback:
    sqlite3_finalize(st);
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int es_store_route_release(struct es_store *s, const char *hostname, const char *tunnel_id)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "DELETE FROM routes WHERE hostname=? AND tunnel_id=?", -1, &st,
                           NULL) != SQLITE_OK)
        return PX_ERR_DB;
    sqlite3_bind_text(st, 1, hostname, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, tunnel_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : PX_ERR_DB;
    sqlite3_finalize(st);
    return rc;
}

int es_store_route_each(struct es_store *s,
                        void (*cb)(const char *hostname, const char *tunnel_id, void *arg),
                        void *arg)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT hostname,tunnel_id FROM routes", -1, &st, NULL) !=
        SQLITE_OK)
        return PX_ERR_DB;
    while (sqlite3_step(st) == SQLITE_ROW)
        cb((const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1), arg);
    sqlite3_finalize(st);
    return 0;
}
