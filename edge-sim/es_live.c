#include "es_live.h"
#include "es_text.h"
#include "px_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* links and names go with their instance (ON DELETE CASCADE): purging an
 * instance purges what it said. holds outlive instances: they are what the
 * hostname grace is measured from after every edge restarted. */
static const char *const schema =
    "PRAGMA foreign_keys=ON;"
    "CREATE TABLE IF NOT EXISTS instances(id TEXT PRIMARY KEY, tunnel_addr TEXT NOT NULL,"
    " https_addr TEXT NOT NULL, admin_addr TEXT NOT NULL, pid INTEGER NOT NULL,"
    " started INTEGER NOT NULL, heartbeat INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS links(instance TEXT NOT NULL REFERENCES instances(id)"
    " ON DELETE CASCADE, conn_id TEXT NOT NULL, tunnel_id TEXT NOT NULL,"
    " connector TEXT NOT NULL, agent TEXT NOT NULL, address TEXT NOT NULL,"
    " conn_index INTEGER NOT NULL, edge TEXT NOT NULL, since INTEGER NOT NULL,"
    " PRIMARY KEY(instance, conn_id));"
    "CREATE TABLE IF NOT EXISTS names(instance TEXT NOT NULL REFERENCES instances(id)"
    " ON DELETE CASCADE, conn_id TEXT NOT NULL, tunnel_id TEXT NOT NULL,"
    " hostname TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS names_route ON names(tunnel_id, hostname);"
    "CREATE INDEX IF NOT EXISTS names_instance ON names(instance);"
    "CREATE TABLE IF NOT EXISTS holds(tunnel_id TEXT NOT NULL, hostname TEXT NOT NULL,"
    " last_held INTEGER NOT NULL, PRIMARY KEY(tunnel_id, hostname));";

long long es_live_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int es_live_open(struct es_live *lv, const char *dir, const char *id, long long now_ms, char *why,
                 size_t whylen)
{
    char path[600];
    memset(lv, 0, sizeof(*lv));
    if (id && (strlen(id) == 0 || strlen(id) >= sizeof(lv->id))) {
        snprintf(why, whylen, "bad instance id");
        return PX_ERR_INVAL;
    }
    /* dir may be a raw --data-dir: a path cut short would be another file. */
    int len = snprintf(path, sizeof(path), "%s/live.db", dir);
    if (len < 0 || (size_t)len >= sizeof(path)) {
        snprintf(why, whylen, "data directory path too long for live.db (%zu bytes; at most %zu)",
                 strlen(dir), sizeof(path) - sizeof("/live.db"));
        return PX_ERR_INVAL;
    }
    if (sqlite3_open_v2(path, &lv->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        snprintf(why, whylen, "cannot open %s: %s", path,
                 lv->db ? sqlite3_errmsg(lv->db) : "out of memory");
        goto out_close;
    }
    /* A beat that waits longer than this is skipped: the next one comes
     * a second later, and the loop must not stall on the other instance. */
    sqlite3_busy_timeout(lv->db, 1000);
    char *err = NULL;
    /* synchronous=NORMAL: a heartbeat lost in a power cut is worthless
     * anyway; what matters survives in edge.db. */
    if (sqlite3_exec(lv->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL,
                     &err) != SQLITE_OK ||
        sqlite3_exec(lv->db, schema, NULL, NULL, &err) != SQLITE_OK) {
        snprintf(why, whylen, "cannot initialise %s: %s", path, err ? err : "?");
        sqlite3_free(err);
        goto out_close;
    }
    if (id)
        snprintf(lv->id, sizeof(lv->id), "%s", id);
    lv->started_ms = now_ms;
    return 0;
out_close:
    sqlite3_close(lv->db);
    lv->db = NULL;
    return PX_ERR_DB;
}

/* Runs sql with up to two text parameters (NULL: not bound). */
static int exec2(sqlite3 *db, const char *sql, const char *arg, const char *arg2)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return PX_ERR_DB;
    if (arg)
        sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
    if (arg2)
        sqlite3_bind_text(st, 2, arg2, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : PX_ERR_DB;
    sqlite3_finalize(st);
    return rc;
}

void es_live_close(struct es_live *lv)
{
    if (!lv->db)
        return;
    if (lv->id[0])
        exec2(lv->db, "DELETE FROM instances WHERE id=?", lv->id, NULL); /* cascades */
    sqlite3_close(lv->db);
    lv->db = NULL;
}

static int put_instance(struct es_live *lv, const struct es_live_self *self, long long now_ms)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(lv->db,
                           "INSERT INTO instances(id,tunnel_addr,https_addr,admin_addr,pid,"
                           "started,heartbeat) VALUES(?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE"
                           " SET heartbeat=excluded.heartbeat",
                           -1, &st, NULL) != SQLITE_OK)
        return PX_ERR_DB;
    sqlite3_bind_text(st, 1, lv->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, self->tunnel_addr, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, self->https_addr, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, self->admin_addr, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, self->pid);
    sqlite3_bind_int64(st, 6, lv->started_ms);
    sqlite3_bind_int64(st, 7, now_ms);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : PX_ERR_DB;
    sqlite3_finalize(st);
    return rc;
}

/* A (tunnel, hostname) held at ?3: its last_held never goes back. */
static const char *const hold_sql =
    "INSERT INTO holds VALUES(?,?,?) ON CONFLICT(tunnel_id,hostname)"
    " DO UPDATE SET last_held=max(last_held, excluded.last_held)";

/* The statements one heartbeat runs per connection and per name. */
struct beat {
    sqlite3_stmt *link, *name, *hold;
};

/* For each of names[0..n) of connection conn_id of tunnel_id: steps name
 * (?1 instance, ?2 conn_id, ?3 tunnel_id, ?4 hostname) and hold (?1
 * tunnel_id, ?2 hostname, ?3 now_ms). Returns 0 or PX_ERR_DB. */
static int put_names(struct es_live *lv, sqlite3_stmt *name, sqlite3_stmt *hold,
                     const char *conn_id, const char *tunnel_id, const char *const *names, size_t n,
                     long long now_ms)
{
    for (size_t k = 0; k < n; k++) {
        sqlite3_reset(name);
        sqlite3_bind_text(name, 1, lv->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(name, 2, conn_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(name, 3, tunnel_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(name, 4, names[k], -1, SQLITE_STATIC);
        sqlite3_reset(hold);
        sqlite3_bind_text(hold, 1, tunnel_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(hold, 2, names[k], -1, SQLITE_STATIC);
        sqlite3_bind_int64(hold, 3, now_ms);
        if (sqlite3_step(name) != SQLITE_DONE || sqlite3_step(hold) != SQLITE_DONE)
            return PX_ERR_DB;
    }
    return 0;
}

static int put_link(struct es_live *lv, struct beat *b, const struct es_link_info *i,
                    long long now_ms)
{
    sqlite3_stmt *st = b->link;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, lv->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, i->conn_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, i->tunnel_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, i->connector ? i->connector : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, i->agent ? i->agent : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, i->peer_ip ? i->peer_ip : "", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 7, i->conn_index);
    sqlite3_bind_text(st, 8, i->edge ? i->edge : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 9, i->since);
    if (sqlite3_step(st) != SQLITE_DONE)
        return PX_ERR_DB;
    return put_names(lv, b->name, b->hold, i->conn_id, i->tunnel_id, (const char *const *)i->names,
                     i->n_names, now_ms);
}

int es_live_heartbeat(struct es_live *lv, const struct es_live_self *self,
                      const struct es_link_info *links, size_t n, long long now_ms)
{
    if (!lv->db || !lv->id[0])
        return PX_ERR_INVAL;
    struct beat b = {0};
    int rc = PX_ERR_DB;
    if (sqlite3_exec(lv->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return PX_ERR_DB;
    if (put_instance(lv, self, now_ms) < 0 ||
        exec2(lv->db, "DELETE FROM links WHERE instance=?", lv->id, NULL) < 0 ||
        exec2(lv->db, "DELETE FROM names WHERE instance=?", lv->id, NULL) < 0)
        goto out_rollback;
    if (sqlite3_prepare_v2(lv->db, "INSERT OR REPLACE INTO links VALUES(?,?,?,?,?,?,?,?,?)", -1,
                           &b.link, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(lv->db, "INSERT INTO names VALUES(?,?,?,?)", -1, &b.name, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v2(lv->db, hold_sql, -1, &b.hold, NULL) != SQLITE_OK)
        goto out_rollback;
    for (size_t i = 0; i < n; i++)
        if (put_link(lv, &b, &links[i], now_ms) < 0)
            goto out_rollback;
    /* Stale instances: their connections are gone with them (cascade). */
    sqlite3_stmt *purge;
    if (sqlite3_prepare_v2(lv->db, "DELETE FROM instances WHERE heartbeat < ?", -1, &purge, NULL) !=
        SQLITE_OK)
        goto out_rollback;
    sqlite3_bind_int64(purge, 1, now_ms - ES_LIVE_STALE_MS);
    int pr = sqlite3_step(purge);
    sqlite3_finalize(purge);
    if (pr != SQLITE_DONE)
        goto out_rollback;
    if (sqlite3_exec(lv->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        goto out_rollback;
    rc = 0;
    goto out_finalize;
out_rollback:
    sqlite3_exec(lv->db, "ROLLBACK", NULL, NULL, NULL);
out_finalize:
    sqlite3_finalize(b.link);
    sqlite3_finalize(b.name);
    sqlite3_finalize(b.hold);
    return rc;
}

/* A text column, cut to fit at a character boundary: rows are read back
 * from a file any program may have written, and must stay valid UTF-8. */
static void copy_col(sqlite3_stmt *st, int col, char *out, size_t outlen)
{
    es_text_copy(out, outlen, (const char *)sqlite3_column_text(st, col));
}

int es_live_conns(struct es_live *lv, long long now_ms, struct es_live_conn **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(lv->db,
                           "SELECT i.id, i.tunnel_addr, l.conn_id, l.tunnel_id, l.connector,"
                           " l.agent, l.address, l.conn_index, l.edge, l.since"
                           " FROM links l JOIN instances i ON i.id = l.instance"
                           " WHERE i.heartbeat >= ?"
                           " ORDER BY i.started, i.id, l.tunnel_id, l.connector, l.conn_index,"
                           " l.conn_id",
                           -1, &st, NULL) != SQLITE_OK)
        return PX_ERR_DB;
    sqlite3_bind_int64(st, 1, now_ms - ES_LIVE_STALE_MS);
    size_t cap = 0;
    int rc = 0, r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            struct es_live_conn *a = realloc(*out, cap * sizeof(*a));
            if (!a) {
                rc = PX_ERR_NOMEM;
                break;
            }
            *out = a;
        }
        struct es_live_conn *c = &(*out)[(*n)++];
        copy_col(st, 0, c->instance, sizeof(c->instance));
        copy_col(st, 1, c->edge, sizeof(c->edge));
        copy_col(st, 2, c->conn_id, sizeof(c->conn_id));
        copy_col(st, 3, c->tunnel_id, sizeof(c->tunnel_id));
        copy_col(st, 4, c->connector, sizeof(c->connector));
        copy_col(st, 5, c->agent, sizeof(c->agent));
        copy_col(st, 6, c->address, sizeof(c->address));
        c->conn_index = sqlite3_column_int(st, 7);
        copy_col(st, 8, c->dialed, sizeof(c->dialed));
        c->since = sqlite3_column_int64(st, 9);
    }
    if (rc == 0 && r != SQLITE_DONE)
        rc = PX_ERR_DB;
    sqlite3_finalize(st);
    if (rc < 0) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

int es_live_edges(struct es_live *lv, long long now_ms, char (*addrs)[301], size_t max, size_t *n)
{
    *n = 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(lv->db,
                           "SELECT tunnel_addr FROM instances WHERE heartbeat >= ?"
                           " ORDER BY started, id",
                           -1, &st, NULL) != SQLITE_OK)
        return PX_ERR_DB;
    sqlite3_bind_int64(st, 1, now_ms - ES_LIVE_STALE_MS);
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW && *n < max) {
        char a[301];
        copy_col(st, 0, a, sizeof(a));
        int dup = 0; /* two instances on one address: one edge to dial */
        for (size_t i = 0; i < *n; i++)
            dup |= strcmp(addrs[i], a) == 0;
        if (!dup && a[0])
            memcpy(addrs[(*n)++], a, sizeof(a));
    }
    sqlite3_finalize(st);
    return r == SQLITE_ROW || r == SQLITE_DONE ? 0 : PX_ERR_DB;
}

/* The routes of the store, collected first: the caller releases them
 * afterwards, never while the store is being read. */
struct route_list {
    struct es_live_expired *a;
    size_t n, cap;
    int err;
};

static void collect_route(const char *hostname, const char *tunnel_id, void *arg)
{
    struct route_list *rl = arg;
    if (rl->err || strlen(hostname) >= sizeof(rl->a->hostname) ||
        strlen(tunnel_id) >= sizeof(rl->a->tunnel_id))
        return;
    if (rl->n == rl->cap) {
        size_t cap = rl->cap ? rl->cap * 2 : 16;
        struct es_live_expired *a = realloc(rl->a, cap * sizeof(*a));
        if (!a) {
            rl->err = PX_ERR_NOMEM;
            return;
        }
        rl->a = a;
        rl->cap = cap;
    }
    struct es_live_expired *e = &rl->a[rl->n++];
    memset(e, 0, sizeof(*e));
    memcpy(e->hostname, hostname, strlen(hostname) + 1);
    memcpy(e->tunnel_id, tunnel_id, strlen(tunnel_id) + 1);
}

int es_live_expired(struct es_live *lv, struct es_store *st, long long now_ms, long long grace_ms,
                    struct es_live_expired **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    struct route_list rl = {0};
    int rc = es_store_route_each(st, collect_route, &rl);
    if (rc == 0)
        rc = rl.err;
    sqlite3_stmt *q = NULL;
    if (rc == 0 &&
        sqlite3_prepare_v2(lv->db,
                           "SELECT (SELECT count(*) FROM names n JOIN instances i"
                           "  ON i.id = n.instance WHERE i.heartbeat >= ?1"
                           "  AND n.tunnel_id = ?2 AND n.hostname = ?3),"
                           " (SELECT last_held FROM holds WHERE tunnel_id = ?2 AND hostname = ?3)",
                           -1, &q, NULL) != SQLITE_OK)
        rc = PX_ERR_DB;
    size_t kept = 0;
    for (size_t i = 0; rc == 0 && i < rl.n; i++) {
        struct es_live_expired *e = &rl.a[i];
        sqlite3_reset(q);
        sqlite3_bind_int64(q, 1, now_ms - ES_LIVE_STALE_MS);
        sqlite3_bind_text(q, 2, e->tunnel_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 3, e->hostname, -1, SQLITE_STATIC);
        if (sqlite3_step(q) != SQLITE_ROW) {
            rc = PX_ERR_DB;
            break;
        }
        if (sqlite3_column_int64(q, 0) > 0)
            continue;                                 /* held now */
        e->last_held_ms = sqlite3_column_int64(q, 1); /* NULL reads as 0 */
        long long from = e->last_held_ms > lv->started_ms ? e->last_held_ms : lv->started_ms;
        if (now_ms - from < grace_ms)
            continue;
        rl.a[kept++] = *e;
    }
    sqlite3_finalize(q);
    if (rc < 0 || kept == 0) {
        free(rl.a);
        return rc;
    }
    *out = rl.a;
    *n = kept;
    return 0;
}

int es_live_forget(struct es_live *lv, const char *tunnel_id, const char *hostname)
{
    return exec2(lv->db, "DELETE FROM holds WHERE tunnel_id=? AND hostname=?", tunnel_id, hostname);
}

int es_live_hold(struct es_live *lv, const char *conn_id, const char *tunnel_id,
                 const char *const *names, size_t n, long long now_ms)
{
    if (!lv->db || !lv->id[0])
        return PX_ERR_INVAL;
    if (n == 0)
        return 0;
    sqlite3_stmt *hold = NULL, *name = NULL;
    int rc = PX_ERR_DB;
    if (sqlite3_exec(lv->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return PX_ERR_DB;
    /* The name row goes with the instance row (none before its first beat:
     * then the hold alone covers it) and is not repeated. */
    if (sqlite3_prepare_v2(lv->db, hold_sql, -1, &hold, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(lv->db,
                           "INSERT INTO names SELECT ?1,?2,?3,?4"
                           " WHERE EXISTS(SELECT 1 FROM instances WHERE id=?1)"
                           " AND NOT EXISTS(SELECT 1 FROM names WHERE instance=?1 AND"
                           " conn_id=?2 AND tunnel_id=?3 AND hostname=?4)",
                           -1, &name, NULL) != SQLITE_OK)
        goto out_rollback;
    if (put_names(lv, name, hold, conn_id, tunnel_id, names, n, now_ms) < 0)
        goto out_rollback;
    if (sqlite3_exec(lv->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        goto out_rollback;
    rc = 0;
    goto out_finalize;
out_rollback:
    sqlite3_exec(lv->db, "ROLLBACK", NULL, NULL, NULL);
out_finalize:
    sqlite3_finalize(hold);
    sqlite3_finalize(name);
    return rc;
}

int es_live_held_elsewhere(struct es_live *lv, const char *tunnel_id, const char *hostname,
                           long long now_ms)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(lv->db,
                           "SELECT EXISTS(SELECT 1 FROM names n JOIN instances i"
                           " ON i.id = n.instance WHERE i.heartbeat >= ?1 AND i.id <> ?2"
                           " AND n.tunnel_id = ?3 AND n.hostname = lower(?4))",
                           -1, &q, NULL) != SQLITE_OK)
        return PX_ERR_DB;
    sqlite3_bind_int64(q, 1, now_ms - ES_LIVE_STALE_MS);
    sqlite3_bind_text(q, 2, lv->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, tunnel_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 4, hostname, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int(q, 0) != 0 : PX_ERR_DB;
    sqlite3_finalize(q);
    return rc;
}
