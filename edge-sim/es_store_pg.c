/* es_store_pg: the PostgreSQL schema of a shared store, as versioned
 * migrations (es_store_migrate), and the check es_store_open makes. */
#include "es_store.h"
#include "es_store_pg.h"
#include "px_err.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* The triggers that make changes to table t known (es_changed). */
#define WATCH(t)                                                                                   \
    "CREATE TRIGGER " t "_changed AFTER INSERT OR UPDATE OR DELETE ON " t                          \
    " FOR EACH ROW EXECUTE FUNCTION es_changed();"                                                 \
    "CREATE TRIGGER " t "_truncated AFTER TRUNCATE ON " t                                          \
    " FOR EACH STATEMENT EXECUTE FUNCTION es_changed();"

/* The tables whose changes serve reloads. */
#define WATCH_SHARED                                                                               \
    WATCH("tunnels")                                                                               \
    WATCH("routes")                                                                                \
    WATCH("client_certs") WATCH("client_cas") WATCH("access_policies") WATCH("signing_keys")

/* Each entry brings the schema from version i to i + 1. Never edit one
 * that shipped: add the next. */
static const char *const migrations[] = {
    /* 1: what the SQLite store holds (edge.db and live.db), plus the CAs
     * with their keys sealed (es_seal), and change notices. */
    "CREATE TABLE kv(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE tunnels(id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " secret_hash BYTEA NOT NULL, patterns TEXT NOT NULL, created BIGINT NOT NULL,"
    " prev_secret_hash BYTEA, prev_until BIGINT NOT NULL DEFAULT 0,"
    " rotated_at BIGINT NOT NULL DEFAULT 0, rotations BIGINT NOT NULL DEFAULT 0);"
    /* rev, the name reversed, finds the names under a wildcard with an
     * index range (es_store_route_claim), in byte order (COLLATE "C"). */
    "CREATE TABLE routes(hostname TEXT PRIMARY KEY,"
    " tunnel_id TEXT NOT NULL REFERENCES tunnels(id) ON DELETE CASCADE,"
    " rev TEXT COLLATE \"C\" GENERATED ALWAYS AS (reverse(hostname)) STORED);"
    "CREATE INDEX routes_tunnel ON routes(tunnel_id);"
    "CREATE INDEX routes_rev ON routes(rev);"
    "CREATE TABLE client_certs(serial TEXT PRIMARY KEY, name TEXT NOT NULL,"
    " fingerprint TEXT NOT NULL, subject TEXT NOT NULL, not_before BIGINT NOT NULL,"
    " not_after BIGINT NOT NULL, created BIGINT NOT NULL, revoked BIGINT NOT NULL DEFAULT 0);"
    "CREATE INDEX client_certs_name ON client_certs(name);"
    "CREATE TABLE client_cas(name TEXT PRIMARY KEY, cert_pem TEXT NOT NULL,"
    " crl_pem TEXT, created BIGINT NOT NULL, updated BIGINT NOT NULL);"
    "CREATE TABLE access_policies(pattern TEXT PRIMARY KEY, spec TEXT NOT NULL,"
    " created BIGINT NOT NULL);"
    "CREATE TABLE signing_keys(kid TEXT PRIMARY KEY, key_pem TEXT NOT NULL,"
    " created BIGINT NOT NULL, retired BIGINT NOT NULL DEFAULT 0);"
    /* The edge's own CAs: the certificate in clear, the key sealed with the
     * operators' key file (es_seal); key_id says which key sealed it. */
    "CREATE TABLE cas(name TEXT PRIMARY KEY, cert_pem TEXT, key_sealed TEXT NOT NULL,"
    " key_id TEXT NOT NULL, created BIGINT NOT NULL);"
    /* live.db's tables: which edge holds which connection, now. */
    "CREATE TABLE instances(id TEXT PRIMARY KEY, tunnel_addr TEXT NOT NULL,"
    " https_addr TEXT NOT NULL, admin_addr TEXT NOT NULL, pid BIGINT NOT NULL,"
    " started BIGINT NOT NULL, heartbeat BIGINT NOT NULL);"
    "CREATE TABLE links(instance TEXT NOT NULL REFERENCES instances(id)"
    " ON DELETE CASCADE, conn_id TEXT NOT NULL, tunnel_id TEXT NOT NULL,"
    " connector TEXT NOT NULL, agent TEXT NOT NULL, address TEXT NOT NULL,"
    " conn_index BIGINT NOT NULL, edge TEXT NOT NULL, since BIGINT NOT NULL,"
    " PRIMARY KEY(instance, conn_id));"
    "CREATE INDEX links_tunnel ON links(tunnel_id);"
    "CREATE TABLE names(instance TEXT NOT NULL REFERENCES instances(id)"
    " ON DELETE CASCADE, conn_id TEXT NOT NULL, tunnel_id TEXT NOT NULL,"
    " hostname TEXT NOT NULL);"
    "CREATE INDEX names_route ON names(tunnel_id, hostname);"
    "CREATE INDEX names_instance ON names(instance);"
    "CREATE TABLE holds(tunnel_id TEXT NOT NULL, hostname TEXT NOT NULL,"
    " last_held BIGINT NOT NULL, PRIMARY KEY(tunnel_id, hostname));"
    /* Change notices: every row of shared state written moves the counter
     * (reconciliation reads it) and notifies every edge once its
     * transaction commits (PostgreSQL folds duplicates within one). Per
     * row, not per statement: a statement that changes nothing (a claim
     * already ours, a release done twice) must not make every edge reload,
     * as it does not move SQLite's data_version. TRUNCATE has no rows: per
     * statement. The live tables above change every second and notify
     * nobody. */
    "CREATE SEQUENCE change_seq;"
    "CREATE FUNCTION es_changed() RETURNS trigger LANGUAGE plpgsql AS $$"
    " BEGIN PERFORM nextval('change_seq');"
    " PERFORM pg_notify('" ES_STORE_CHANNEL "', TG_TABLE_NAME); RETURN NULL; END $$;" WATCH_SHARED,
};

#define N_MIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

_Static_assert(N_MIGRATIONS == ES_STORE_PG_SCHEMA, "one migration per schema version");

/* Runs sql (one integer, one row) into *v. Returns 0 or < 0. */
static int one_int(struct es_sql *db, const char *sql, long long *v)
{
    struct es_sql_res r;
    int rc = es_sql_query(db, &r, sql, NULL, 0);
    if (rc == 0)
        rc = es_sql_next(&r) == 1 ? 0 : PX_ERR_DB;
    if (rc == 0)
        *v = es_sql_int(&r, 0);
    es_sql_done(&r);
    return rc;
}

/* The version recorded in db (0 if nothing was ever migrated), or < 0. */
static int schema_version(struct es_sql *db)
{
    long long exists = 0, v = 0;
    int rc = one_int(db, "SELECT to_regclass('schema_migrations') IS NOT NULL", &exists);
    if (rc == 0 && exists)
        rc = one_int(db, "SELECT coalesce(max(version),0) FROM schema_migrations", &v);
    return rc < 0 ? rc : (int)v;
}

int es_store_pg_check(struct es_sql *db, char *why, size_t whylen)
{
    int v = schema_version(db);
    if (v < 0) {
        snprintf(why, whylen, "cannot read the schema version of %s: %s", es_sql_target(db),
                 es_sql_errmsg(db));
        return v;
    }
    if (v == ES_STORE_PG_SCHEMA)
        return 0;
    if (v < ES_STORE_PG_SCHEMA)
        snprintf(why, whylen,
                 "the database %s has schema version %d and this edge-sim needs %d: run "
                 "`edge-sim store migrate --store <the same address>` first",
                 es_sql_target(db), v, ES_STORE_PG_SCHEMA);
    else
        snprintf(why, whylen,
                 "the database %s has schema version %d, newer than this edge-sim's %d: "
                 "upgrade edge-sim",
                 es_sql_target(db), v, ES_STORE_PG_SCHEMA);
    return PX_ERR_VERSION;
}

int es_store_pg_migrate(struct es_sql *db, int *from, int *to, char *why, size_t whylen)
{
    *from = *to = 0;
    /* The table that records versions is made before the steps, so that
     * the first step's transaction can record itself; under the write lock
     * too: two CREATE TABLE IF NOT EXISTS at once both find no table, and
     * the second fails on the first's catalog rows (a unique violation). */
    int rc = es_sql_begin(db, 1);
    if (rc == 0 &&
        (rc = es_sql_exec(db, "CREATE TABLE IF NOT EXISTS schema_migrations("
                              "version INTEGER PRIMARY KEY, applied BIGINT NOT NULL)")) == 0)
        rc = es_sql_commit(db);
    if (rc < 0) {
        snprintf(why, whylen, "cannot create schema_migrations in %s: %s", es_sql_target(db),
                 es_sql_errmsg(db));
        es_sql_rollback(db);
        return rc;
    }
    int first = 1;
    for (;;) {
        /* Each step under the write lock: a second migrator waits, then
         * sees the version the first one reached. */
        if ((rc = es_sql_begin(db, 1)) < 0)
            break;
        int v = schema_version(db);
        if (v < 0) {
            rc = v;
            break;
        }
        if (first)
            *from = v;
        first = 0;
        *to = v;
        if (v > N_MIGRATIONS) {
            es_sql_rollback(db);
            snprintf(why, whylen,
                     "the database %s has schema version %d, newer than this edge-sim's %d: "
                     "upgrade edge-sim",
                     es_sql_target(db), v, ES_STORE_PG_SCHEMA);
            return PX_ERR_VERSION;
        }
        if (v == N_MIGRATIONS) {
            es_sql_rollback(db);
            return 0;
        }
        if ((rc = es_sql_exec(db, migrations[v])) < 0 ||
            (rc = es_sql_query(
                 db, NULL, "INSERT INTO schema_migrations(version,applied) VALUES(?,?)",
                 ES_SQL_ARGS(ES_SQL_I(v + 1), ES_SQL_I((long long)time(NULL))))) < 0 ||
            (rc = es_sql_commit(db)) < 0)
            break;
        *to = v + 1;
    }
    snprintf(why, whylen, "migrating %s to schema version %d failed: %s", es_sql_target(db),
             *to + 1, es_sql_errmsg(db));
    es_sql_rollback(db);
    return rc;
}
