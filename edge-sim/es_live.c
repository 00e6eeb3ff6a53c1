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

int es_live_open(struct es_live *lv, const char *spec, const char *id, long long now_ms, char *why,
                 size_t whylen)
{
    char path[600];
    memset(lv, 0, sizeof(*lv));
    if (id && (strlen(id) == 0 || strlen(id) >= sizeof(lv->id))) {
        snprintf(why, whylen, "bad instance id");
        return PX_ERR_INVAL;
    }
    int rc;
    if (es_sql_spec_is_pg(spec)) {
        /* The shared store's own tables (es_store_pg.c made them). */
        if ((rc = es_sql_open_pg(&lv->db, spec, why, whylen)) < 0)
            return rc;
    } else {
        /* spec may be a raw --data-dir: a path cut short would be another file. */
        int len = snprintf(path, sizeof(path), "%s/live.db", spec);
        if (len < 0 || (size_t)len >= sizeof(path)) {
            snprintf(why, whylen,
                     "data directory path too long for live.db (%zu bytes; at most %zu)",
                     strlen(spec), sizeof(path) - sizeof("/live.db"));
            return PX_ERR_INVAL;
        }
        if ((rc = es_sql_open_sqlite(&lv->db, path, why, whylen)) < 0)
            return rc;
        /* A beat that waits longer than 1 s is skipped: the next one comes
         * a second later, and the loop must not stall on the other
         * instance. synchronous=NORMAL: a heartbeat lost in a power cut is
         * worthless anyway; what matters survives in edge.db. */
        if ((rc = es_sql_exec(lv->db, "PRAGMA busy_timeout=1000; PRAGMA synchronous=NORMAL;")) <
                0 ||
            (rc = es_sql_exec(lv->db, schema)) < 0) {
            snprintf(why, whylen, "cannot initialise %s: %s", path, es_sql_errmsg(lv->db));
            es_sql_close(lv->db);
            lv->db = NULL;
            return rc;
        }
    }
    if (id)
        snprintf(lv->id, sizeof(lv->id), "%s", id);
    lv->started_ms = now_ms;
    return 0;
}

/* Runs sql with up to two text parameters. */
static int exec2(struct es_sql *db, const char *sql, const char *arg, const char *arg2)
{
    return arg2 ? es_sql_query(db, NULL, sql, ES_SQL_ARGS(ES_SQL_T(arg), ES_SQL_T(arg2)))
                : es_sql_query(db, NULL, sql, ES_SQL_ARGS(ES_SQL_T(arg)));
}

void es_live_close(struct es_live *lv)
{
    if (!lv->db)
        return;
    if (lv->id[0])
        exec2(lv->db, "DELETE FROM instances WHERE id=?", lv->id, NULL); /* cascades */
    es_sql_close(lv->db);
    lv->db = NULL;
}

static int put_instance(struct es_live *lv, const struct es_live_self *self, long long now_ms)
{
    return es_sql_query(lv->db, NULL,
                        "INSERT INTO instances(id,tunnel_addr,https_addr,admin_addr,pid,"
                        "started,heartbeat) VALUES(?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE"
                        " SET heartbeat=excluded.heartbeat",
                        ES_SQL_ARGS(ES_SQL_T(lv->id), ES_SQL_T(self->tunnel_addr),
                                    ES_SQL_T(self->https_addr), ES_SQL_T(self->admin_addr),
                                    ES_SQL_I(self->pid), ES_SQL_I(lv->started_ms),
                                    ES_SQL_I(now_ms)));
}

/* A (tunnel, hostname) held at ?3: its last_held never goes back (max is
 * SQLite's two-argument max, PostgreSQL's greatest). */
static const char *hold_sql(struct es_live *lv)
{
    return es_sql_kind(lv->db) == ES_SQL_PG
               ? "INSERT INTO holds VALUES(?,?,?) ON CONFLICT(tunnel_id,hostname)"
                 " DO UPDATE SET last_held=greatest(holds.last_held, excluded.last_held)"
               : "INSERT INTO holds VALUES(?,?,?) ON CONFLICT(tunnel_id,hostname)"
                 " DO UPDATE SET last_held=max(last_held, excluded.last_held)";
}

/* For each of names[0..n) of connection conn_id of tunnel_id: runs name_sql
 * (?1 instance, ?2 conn_id, ?3 tunnel_id, ?4 hostname) and the hold (?1
 * tunnel_id, ?2 hostname, ?3 now_ms). Returns 0 or < 0. */
static int put_names(struct es_live *lv, const char *name_sql, const char *conn_id,
                     const char *tunnel_id, const char *const *names, size_t n, long long now_ms)
{
    for (size_t k = 0; k < n; k++) {
        int rc = es_sql_query(lv->db, NULL, name_sql,
                              ES_SQL_ARGS(ES_SQL_T(lv->id), ES_SQL_T(conn_id), ES_SQL_T(tunnel_id),
                                          ES_SQL_T(names[k])));
        if (rc == 0)
            rc = es_sql_query(
                lv->db, NULL, hold_sql(lv),
                ES_SQL_ARGS(ES_SQL_T(tunnel_id), ES_SQL_T(names[k]), ES_SQL_I(now_ms)));
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int put_link(struct es_live *lv, const struct es_link_info *i, long long now_ms)
{
    int rc = es_sql_query(
        lv->db, NULL,
        "INSERT INTO links VALUES(?,?,?,?,?,?,?,?,?) ON CONFLICT(instance,conn_id) DO NOTHING",
        ES_SQL_ARGS(ES_SQL_T(lv->id), ES_SQL_T(i->conn_id), ES_SQL_T(i->tunnel_id),
                    ES_SQL_T(i->connector ? i->connector : ""), ES_SQL_T(i->agent ? i->agent : ""),
                    ES_SQL_T(i->peer_ip ? i->peer_ip : ""), ES_SQL_I(i->conn_index),
                    ES_SQL_T(i->edge ? i->edge : ""), ES_SQL_I(i->since)));
    if (rc < 0)
        return rc;
    return put_names(lv, "INSERT INTO names VALUES(?,?,?,?)", i->conn_id, i->tunnel_id,
                     (const char *const *)i->names, i->n_names, now_ms);
}

int es_live_heartbeat(struct es_live *lv, const struct es_live_self *self,
                      const struct es_link_info *links, size_t n, long long now_ms)
{
    if (!lv->db || !lv->id[0])
        return PX_ERR_INVAL;
    int rc = es_sql_begin(lv->db, 0);
    if (rc < 0)
        return rc;
    if ((rc = put_instance(lv, self, now_ms)) < 0 ||
        (rc = exec2(lv->db, "DELETE FROM links WHERE instance=?", lv->id, NULL)) < 0 ||
        (rc = exec2(lv->db, "DELETE FROM names WHERE instance=?", lv->id, NULL)) < 0)
        goto out_rollback;
    for (size_t i = 0; i < n; i++)
        if ((rc = put_link(lv, &links[i], now_ms)) < 0)
            goto out_rollback;
    /* Stale instances: their connections are gone with them (cascade). */
    if ((rc = es_sql_query(lv->db, NULL, "DELETE FROM instances WHERE heartbeat < ?",
                           ES_SQL_ARGS(ES_SQL_I(now_ms - ES_LIVE_STALE_MS)))) < 0)
        goto out_rollback;
    return es_sql_commit(lv->db);
out_rollback:
    es_sql_rollback(lv->db);
    return rc;
}

/* A text column, cut to fit at a character boundary: rows are read back
 * from a database any program may have written, and must stay valid UTF-8. */
static void copy_col(struct es_sql_res *r, int col, char *out, size_t outlen)
{
    es_text_copy(out, outlen, es_sql_text(r, col));
}

int es_live_conns(struct es_live *lv, long long now_ms, struct es_live_conn **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    struct es_sql_res r;
    int rc = es_sql_query(lv->db, &r,
                          "SELECT i.id, i.tunnel_addr, l.conn_id, l.tunnel_id, l.connector,"
                          " l.agent, l.address, l.conn_index, l.edge, l.since"
                          " FROM links l JOIN instances i ON i.id = l.instance"
                          " WHERE i.heartbeat >= ?"
                          " ORDER BY i.started, i.id, l.tunnel_id, l.connector, l.conn_index,"
                          " l.conn_id",
                          ES_SQL_ARGS(ES_SQL_I(now_ms - ES_LIVE_STALE_MS)));
    size_t cap = 0;
    while (rc == 0 && (rc = es_sql_next(&r)) == 1) {
        rc = 0;
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
        copy_col(&r, 0, c->instance, sizeof(c->instance));
        copy_col(&r, 1, c->edge, sizeof(c->edge));
        copy_col(&r, 2, c->conn_id, sizeof(c->conn_id));
        copy_col(&r, 3, c->tunnel_id, sizeof(c->tunnel_id));
        copy_col(&r, 4, c->connector, sizeof(c->connector));
        copy_col(&r, 5, c->agent, sizeof(c->agent));
        copy_col(&r, 6, c->address, sizeof(c->address));
        c->conn_index = (int)es_sql_int(&r, 7);
        copy_col(&r, 8, c->dialed, sizeof(c->dialed));
        c->since = es_sql_int(&r, 9);
    }
    es_sql_done(&r);
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
    struct es_sql_res r;
    int rc = es_sql_query(lv->db, &r,
                          "SELECT tunnel_addr FROM instances WHERE heartbeat >= ?"
                          " ORDER BY started, id",
                          ES_SQL_ARGS(ES_SQL_I(now_ms - ES_LIVE_STALE_MS)));
    while (rc == 0 && *n < max && (rc = es_sql_next(&r)) == 1) {
        rc = 0;
        char a[301];
        copy_col(&r, 0, a, sizeof(a));
        int dup = 0; /* two instances on one address: one edge to dial */
        for (size_t i = 0; i < *n; i++)
            dup |= strcmp(addrs[i], a) == 0;
        if (!dup && a[0])
            memcpy(addrs[(*n)++], a, sizeof(a));
    }
    es_sql_done(&r);
    return rc < 0 ? rc : 0;
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
    size_t kept = 0;
    for (size_t i = 0; rc == 0 && i < rl.n; i++) {
        struct es_live_expired *e = &rl.a[i];
        struct es_sql_res q;
        rc = es_sql_query(lv->db, &q,
                          "SELECT (SELECT count(*) FROM names n JOIN instances i"
                          "  ON i.id = n.instance WHERE i.heartbeat >= ?1"
                          "  AND n.tunnel_id = ?2 AND n.hostname = ?3),"
                          " (SELECT last_held FROM holds WHERE tunnel_id = ?2 AND hostname = ?3)",
                          ES_SQL_ARGS(ES_SQL_I(now_ms - ES_LIVE_STALE_MS), ES_SQL_T(e->tunnel_id),
                                      ES_SQL_T(e->hostname)));
        if (rc == 0 && es_sql_next(&q) != 1)
            rc = PX_ERR_DB;
        long long held_now = rc == 0 ? es_sql_int(&q, 0) : 0;
        e->last_held_ms = rc == 0 ? es_sql_int(&q, 1) : 0; /* NULL reads as 0 */
        es_sql_done(&q);
        if (rc < 0 || held_now > 0)
            continue;
        long long from = e->last_held_ms > lv->started_ms ? e->last_held_ms : lv->started_ms;
        if (now_ms - from < grace_ms)
            continue;
        rl.a[kept++] = *e;
    }
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
    int rc = es_sql_begin(lv->db, 0);
    if (rc < 0)
        return rc;
    /* The name row goes with the instance row (none before its first beat:
     * then the hold alone covers it) and is not repeated. */
    rc = put_names(lv,
                   "INSERT INTO names SELECT ?1,?2,?3,?4"
                   " WHERE EXISTS(SELECT 1 FROM instances WHERE id=?1)"
                   " AND NOT EXISTS(SELECT 1 FROM names WHERE instance=?1 AND"
                   " conn_id=?2 AND tunnel_id=?3 AND hostname=?4)",
                   conn_id, tunnel_id, names, n, now_ms);
    if (rc < 0) {
        es_sql_rollback(lv->db);
        return rc;
    }
    return es_sql_commit(lv->db);
}

int es_live_held_elsewhere(struct es_live *lv, const char *tunnel_id, const char *hostname,
                           long long now_ms)
{
    struct es_sql_res q;
    int rc = es_sql_query(lv->db, &q,
                          "SELECT EXISTS(SELECT 1 FROM names n JOIN instances i"
                          " ON i.id = n.instance WHERE i.heartbeat >= ?1 AND i.id <> ?2"
                          " AND n.tunnel_id = ?3 AND n.hostname = lower(?4))",
                          ES_SQL_ARGS(ES_SQL_I(now_ms - ES_LIVE_STALE_MS), ES_SQL_T(lv->id),
                                      ES_SQL_T(tunnel_id), ES_SQL_T(hostname)));
    if (rc == 0)
        rc = es_sql_next(&q) == 1 ? es_sql_int(&q, 0) != 0 : PX_ERR_DB;
    es_sql_done(&q);
    return rc;
}

int es_live_remotes(struct es_live *lv, long long now_ms, struct es_live_remote **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    struct es_sql_res r;
    int rc = es_sql_query(lv->db, &r,
                          "SELECT DISTINCT l.tunnel_id, i.https_addr FROM links l"
                          " JOIN instances i ON i.id = l.instance"
                          " WHERE i.heartbeat >= ? AND i.id <> ?"
                          " ORDER BY l.tunnel_id, i.https_addr",
                          ES_SQL_ARGS(ES_SQL_I(now_ms - ES_LIVE_STALE_MS), ES_SQL_T(lv->id)));
    size_t cap = 0;
    while (rc == 0 && (rc = es_sql_next(&r)) == 1) {
        rc = 0;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            struct es_live_remote *a = realloc(*out, cap * sizeof(*a));
            if (!a) {
                rc = PX_ERR_NOMEM;
                break;
            }
            *out = a;
        }
        struct es_live_remote *e = &(*out)[(*n)++];
        copy_col(&r, 0, e->tunnel_id, sizeof(e->tunnel_id));
        copy_col(&r, 1, e->https_addr, sizeof(e->https_addr));
    }
    es_sql_done(&r);
    if (rc < 0) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

const struct es_live_remote *es_live_remote_find(const struct es_live_remote *remotes, size_t n,
                                                 const char *tunnel_id)
{
    /* The first row of tunnel_id: a lower bound by binary search. */
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(remotes[mid].tunnel_id, tunnel_id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && strcmp(remotes[lo].tunnel_id, tunnel_id) == 0 ? &remotes[lo] : NULL;
}
