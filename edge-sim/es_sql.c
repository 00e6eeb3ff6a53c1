#include "es_sql.h"
#include "px_err.h"

#include <libpq-fe.h>
#include <sqlite3.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* PostgreSQL type OIDs of the arguments (pg_type.h is server-side). */
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_TEXT 25
/* The advisory lock every edge's exclusive transactions take. */
#define WRITE_LOCK_KEY 7844001
#define MAX_ARGS 32
#define MAX_CHANNELS 4

struct es_sql {
    enum es_sql_kind kind;
    sqlite3 *lite;
    PGconn *pg;
    char *conninfo; /* PostgreSQL: as given, to reconnect (may hold a password) */
    char target[300];
    enum es_sql_fail fail;
    char err[512];
    long long changes;
    int in_tx;
    /* PostgreSQL reconnection: the attempt in progress, when the last began */
    PGconn *pending;
    PostgresPollingStatusType pending_wait; /* what its socket must be ready for */
    long long last_try_ms;
    int reconnected; /* a reconnection not yet reported by es_sql_notices */
    char channels[MAX_CHANNELS][64];
    int n_channels;
};

int es_sql_spec_is_pg(const char *spec)
{
    return spec &&
           (strncmp(spec, "postgres://", 11) == 0 || strncmp(spec, "postgresql://", 13) == 0);
}

static void set_err(struct es_sql *db, enum es_sql_fail f, const char *msg)
{
    db->fail = f;
    snprintf(db->err, sizeof(db->err), "%s", msg ? msg : "");
    /* libpq's messages end in a newline (or two): one line in logs. */
    size_t n = strlen(db->err);
    while (n > 0 && (db->err[n - 1] == '\n' || db->err[n - 1] == ' '))
        db->err[--n] = '\0';
    /* One line: newlines and libpq's tabs become spaces, runs of them one. */
    size_t k = 0;
    for (size_t i = 0; db->err[i]; i++) {
        char ch = db->err[i] == '\n' || db->err[i] == '\t' ? ' ' : db->err[i];
        if (ch != ' ' || (k > 0 && db->err[k - 1] != ' '))
            db->err[k++] = ch;
    }
    db->err[k] = '\0';
}

static int fail_code(enum es_sql_fail f)
{
    switch (f) {
    case ES_SQL_FAIL_NONE:
        return 0;
    case ES_SQL_FAIL_UNIQUE:
        return PX_ERR_EXISTS;
    case ES_SQL_FAIL_DOWN:
        return PX_ERR_UNAVAILABLE;
    default:
        return PX_ERR_DB;
    }
}

/* ---- SQLite ---- */

static int lite_fail(struct es_sql *db, int rc)
{
    int ext = sqlite3_extended_errcode(db->lite);
    enum es_sql_fail f = ES_SQL_FAIL_OTHER;
    if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY)
        f = ES_SQL_FAIL_UNIQUE;
    else if (ext == SQLITE_CONSTRAINT_FOREIGNKEY)
        f = ES_SQL_FAIL_FOREIGN;
    set_err(db, f, sqlite3_errmsg(db->lite));
    return rc == SQLITE_NOMEM ? PX_ERR_NOMEM : fail_code(f);
}

int es_sql_open_sqlite(struct es_sql **out, const char *path, char *why, size_t whylen)
{
    *out = NULL;
    struct es_sql *db = calloc(1, sizeof(*db));
    if (!db)
        return PX_ERR_NOMEM;
    db->kind = ES_SQL_SQLITE;
    snprintf(db->target, sizeof(db->target), "%s", path);
    if (sqlite3_open_v2(path, &db->lite, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        snprintf(why, whylen, "cannot open %s: %s", path,
                 db->lite ? sqlite3_errmsg(db->lite) : "out of memory");
        es_sql_close(db);
        return PX_ERR_DB;
    }
    sqlite3_busy_timeout(db->lite, 5000);
    char *err = NULL;
    if (sqlite3_exec(db->lite, "PRAGMA foreign_keys=ON; PRAGMA journal_mode=WAL;", NULL, NULL,
                     &err) != SQLITE_OK) {
        snprintf(why, whylen, "cannot initialise %s: %s", path, err ? err : "?");
        sqlite3_free(err);
        es_sql_close(db);
        return PX_ERR_DB;
    }
    *out = db;
    return 0;
}

static int lite_bind(struct es_sql *db, sqlite3_stmt *st, const struct es_sql_arg *a, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int r, k = (int)i + 1;
        switch (a[i].type) {
        case ES_SQL_TEXT:
            r = sqlite3_bind_text(st, k, a[i].p, -1, SQLITE_STATIC);
            break;
        case ES_SQL_INT:
            r = sqlite3_bind_int64(st, k, (sqlite3_int64)a[i].i);
            break;
        case ES_SQL_BLOB:
            r = sqlite3_bind_blob(st, k, a[i].p, (int)a[i].len, SQLITE_STATIC);
            break;
        default:
            r = sqlite3_bind_null(st, k);
            break;
        }
        if (r != SQLITE_OK)
            return lite_fail(db, r);
    }
    return 0;
}

static int lite_query(struct es_sql *db, struct es_sql_res *res, const char *sql,
                      const struct es_sql_arg *args, size_t n)
{
    sqlite3_stmt *st = NULL;
    int r = sqlite3_prepare_v2(db->lite, sql, -1, &st, NULL);
    if (r != SQLITE_OK)
        return lite_fail(db, r);
    int rc = lite_bind(db, st, args, n);
    if (rc < 0) {
        sqlite3_finalize(st);
        return rc;
    }
    /* The first step runs now, so that a constraint shows in the result of
     * this call even for a statement read with es_sql_next (RETURNING). */
    r = sqlite3_step(st);
    if (r != SQLITE_ROW && r != SQLITE_DONE) {
        rc = lite_fail(db, r);
        sqlite3_finalize(st);
        return rc;
    }
    if (res) {
        res->stmt = st;
        res->pending = r == SQLITE_ROW;
        if (r == SQLITE_DONE)
            db->changes = sqlite3_changes(db->lite);
        return 0;
    }
    while (r == SQLITE_ROW)
        r = sqlite3_step(st);
    rc = r == SQLITE_DONE ? 0 : lite_fail(db, r);
    db->changes = sqlite3_changes(db->lite);
    sqlite3_finalize(st);
    return rc;
}

/* ---- PostgreSQL ---- */

static void no_notices(void *arg, const char *msg)
{
    (void)arg;
    (void)msg; /* "relation already exists, skipping" and the like */
}

/* user@host:port/dbname of conn, for messages. */
static void pg_describe(struct es_sql *db, PGconn *c)
{
    const char *h = PQhost(c), *p = PQport(c), *u = PQuser(c), *d = PQdb(c);
    snprintf(db->target, sizeof(db->target), "postgres://%s@%s:%s/%s", u ? u : "",
             h && *h ? h : "localhost", p && *p ? p : "5432", d ? d : "");
}

/* Starts a connection to db->conninfo. Bounds that conninfo does not set
 * come first: the ones it sets (given later, expand_dbname) win. */
static PGconn *pg_start(struct es_sql *db, int blocking)
{
    static const char *const keys[] = {"connect_timeout",
                                       "tcp_user_timeout",
                                       "keepalives_idle",
                                       "keepalives_interval",
                                       "keepalives_count",
                                       "fallback_application_name",
                                       "options",
                                       "dbname",
                                       NULL};
    const char *vals[] = {"3",
                          "5000",
                          "5",
                          "2",
                          "2",
                          "edge-sim",
                          "-c statement_timeout=10000 -c lock_timeout=5000 "
                          "-c idle_in_transaction_session_timeout=30000",
                          db->conninfo,
                          NULL};
    return blocking ? PQconnectdbParams(keys, vals, 1) : PQconnectStartParams(keys, vals, 1);
}

static int pg_listen_all(struct es_sql *db)
{
    for (int i = 0; i < db->n_channels; i++) {
        char sql[100];
        int k = snprintf(sql, sizeof(sql), "LISTEN %s", db->channels[i]);
        if (k < 0 || (size_t)k >= sizeof(sql))
            return PX_ERR_INVAL;
        int rc = es_sql_exec(db, sql);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void pg_adopt(struct es_sql *db, PGconn *c)
{
    db->pg = c;
    PQsetNoticeProcessor(c, no_notices, NULL);
    pg_describe(db, c);
}

int es_sql_open_pg(struct es_sql **out, const char *conninfo, char *why, size_t whylen)
{
    *out = NULL;
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
    if (!opts) {
        snprintf(why, whylen, "malformed database address: %s", err ? err : "out of memory");
        PQfreemem(err);
        return err ? PX_ERR_INVAL : PX_ERR_NOMEM;
    }
    PQconninfoFree(opts);
    struct es_sql *db = calloc(1, sizeof(*db));
    if (!db || !(db->conninfo = strdup(conninfo))) {
        free(db);
        return PX_ERR_NOMEM;
    }
    db->kind = ES_SQL_PG;
    PGconn *c = pg_start(db, 1);
    if (!c) {
        es_sql_close(db);
        return PX_ERR_NOMEM;
    }
    if (PQstatus(c) != CONNECTION_OK) {
        pg_describe(db, c);
        set_err(db, ES_SQL_FAIL_DOWN, PQerrorMessage(c));
        snprintf(why, whylen, "cannot connect to %s: %s", db->target, db->err);
        PQfinish(c);
        es_sql_close(db);
        return PX_ERR_UNAVAILABLE;
    }
    pg_adopt(db, c);
    *out = db;
    return 0;
}

static void pg_lost(struct es_sql *db, const char *msg)
{
    set_err(db, ES_SQL_FAIL_DOWN, msg);
    db->in_tx = 0;
    if (db->pg) {
        PQfinish(db->pg);
        db->pg = NULL;
    }
}

/* The failure a PGresult (or its absence) says. */
static int pg_fail(struct es_sql *db, PGresult *r)
{
    if (!db->pg || PQstatus(db->pg) != CONNECTION_OK) {
        pg_lost(db, db->pg ? PQerrorMessage(db->pg) : "connection lost");
        return PX_ERR_UNAVAILABLE;
    }
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    enum es_sql_fail f = ES_SQL_FAIL_OTHER;
    if (state && strcmp(state, "23505") == 0)
        f = ES_SQL_FAIL_UNIQUE;
    else if (state && strcmp(state, "23503") == 0)
        f = ES_SQL_FAIL_FOREIGN;
    /* Class 08 (connection exception), 57P01-03 (admin shutdown, crash
     * shutdown, cannot connect now): the server is going away. */
    else if (state && (strncmp(state, "08", 2) == 0 || strncmp(state, "57P0", 4) == 0))
        f = ES_SQL_FAIL_DOWN;
    set_err(db, f, r ? PQresultErrorMessage(r) : PQerrorMessage(db->pg));
    if (f == ES_SQL_FAIL_DOWN)
        pg_lost(db, db->err);
    return fail_code(f);
}

/* Copies sql into out with `?` and `?N` turned into `$N`, outside quotes. */
static int pg_rewrite(const char *sql, char **out)
{
    size_t len = strlen(sql);
    char *o = malloc(len * 3 + 1); /* "?" -> "$NN" at most triples */
    if (!o)
        return PX_ERR_NOMEM;
    size_t j = 0;
    int next = 1;
    char quote = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = sql[i];
        if (quote) {
            if (ch == quote)
                quote = 0;
            o[j++] = ch;
        } else if (ch == '\'' || ch == '"') {
            quote = ch;
            o[j++] = ch;
        } else if (ch == '?') {
            o[j++] = '$';
            if (sql[i + 1] >= '0' && sql[i + 1] <= '9') {
                while (sql[i + 1] >= '0' && sql[i + 1] <= '9')
                    o[j++] = sql[++i];
            } else {
                if (next > 99) {
                    free(o);
                    return PX_ERR_INVAL;
                }
                j += (size_t)snprintf(o + j, 3, "%d", next++);
            }
        } else {
            o[j++] = ch;
        }
    }
    o[j] = '\0';
    *out = o;
    return 0;
}

static int pg_query(struct es_sql *db, struct es_sql_res *res, const char *sql,
                    const struct es_sql_arg *args, size_t n)
{
    if (!db->pg) {
        db->fail = ES_SQL_FAIL_DOWN;
        return PX_ERR_UNAVAILABLE;
    }
    if (n > MAX_ARGS)
        return PX_ERR_INVAL;
    char *q = NULL;
    int rc = pg_rewrite(sql, &q);
    if (rc < 0)
        return rc;
    Oid types[MAX_ARGS];
    const char *vals[MAX_ARGS];
    int lens[MAX_ARGS], fmts[MAX_ARGS];
    char nums[MAX_ARGS][24];
    for (size_t i = 0; i < n; i++) {
        lens[i] = 0;
        fmts[i] = 0;
        vals[i] = NULL;
        types[i] = 0;
        switch (args[i].type) {
        case ES_SQL_TEXT:
            types[i] = OID_TEXT;
            vals[i] = args[i].p;
            break;
        case ES_SQL_INT:
            types[i] = OID_INT8;
            snprintf(nums[i], sizeof(nums[i]), "%lld", args[i].i);
            vals[i] = nums[i];
            break;
        case ES_SQL_BLOB:
            types[i] = OID_BYTEA;
            vals[i] = args[i].p ? args[i].p : "";
            lens[i] = (int)args[i].len;
            fmts[i] = 1; /* binary: the bytes as they are */
            break;
        default:
            break;
        }
    }
    PGresult *r = PQexecParams(db->pg, q, (int)n, types, vals, lens, fmts, 0);
    free(q);
    ExecStatusType s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        rc = pg_fail(db, r);
        PQclear(r);
        return rc;
    }
    const char *ct = PQcmdTuples(r);
    db->changes = ct && *ct ? strtoll(ct, NULL, 10) : 0;
    if (res) {
        res->pg = r;
        res->rows = PQntuples(r);
        res->row = -1;
    } else {
        PQclear(r);
    }
    return 0;
}

/* ---- both ---- */

void es_sql_close(struct es_sql *db)
{
    if (!db)
        return;
    if (db->in_tx)
        es_sql_rollback(db);
    if (db->lite)
        sqlite3_close(db->lite);
    if (db->pg)
        PQfinish(db->pg);
    if (db->pending)
        PQfinish(db->pending);
    free(db->conninfo);
    free(db);
}

enum es_sql_kind es_sql_kind(const struct es_sql *db)
{
    return db->kind;
}

const char *es_sql_target(const struct es_sql *db)
{
    return db->target;
}

enum es_sql_fail es_sql_failure(const struct es_sql *db)
{
    return db->fail;
}

const char *es_sql_errmsg(const struct es_sql *db)
{
    return db->err;
}

int es_sql_query(struct es_sql *db, struct es_sql_res *res, const char *sql,
                 const struct es_sql_arg *args, size_t n)
{
    if (res)
        memset(res, 0, sizeof(*res)), res->db = db;
    db->fail = ES_SQL_FAIL_NONE;
    return db->kind == ES_SQL_PG ? pg_query(db, res, sql, args, n)
                                 : lite_query(db, res, sql, args, n);
}

int es_sql_exec(struct es_sql *db, const char *sql)
{
    db->fail = ES_SQL_FAIL_NONE;
    if (db->kind == ES_SQL_SQLITE) {
        char *err = NULL;
        int r = sqlite3_exec(db->lite, sql, NULL, NULL, &err);
        sqlite3_free(err);
        return r == SQLITE_OK ? 0 : lite_fail(db, r);
    }
    if (!db->pg) {
        db->fail = ES_SQL_FAIL_DOWN;
        return PX_ERR_UNAVAILABLE;
    }
    PGresult *r = PQexec(db->pg, sql);
    ExecStatusType s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    int rc = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK ? 0 : pg_fail(db, r);
    PQclear(r);
    return rc;
}

int es_sql_next(struct es_sql_res *res)
{
    free(res->blob);
    res->blob = NULL;
    if (res->pg) {
        if (res->row + 1 >= res->rows)
            return 0;
        res->row++;
        return 1;
    }
    if (!res->stmt)
        return 0;
    if (res->pending) {
        res->pending = 0;
        return 1;
    }
    int r = sqlite3_step(res->stmt);
    if (r == SQLITE_ROW)
        return 1;
    if (r == SQLITE_DONE) {
        res->db->changes = sqlite3_changes(res->db->lite);
        return 0;
    }
    return lite_fail(res->db, r);
}

const char *es_sql_text(struct es_sql_res *res, int col)
{
    if (res->pg)
        return PQgetisnull(res->pg, res->row, col) ? NULL : PQgetvalue(res->pg, res->row, col);
    return (const char *)sqlite3_column_text(res->stmt, col);
}

long long es_sql_int(struct es_sql_res *res, int col)
{
    if (res->pg) {
        if (PQgetisnull(res->pg, res->row, col))
            return 0;
        const char *v = PQgetvalue(res->pg, res->row, col);
        if (v[0] == 't' && !v[1])
            return 1;
        return strtoll(v, NULL, 10);
    }
    return sqlite3_column_int64(res->stmt, col);
}

const void *es_sql_blob(struct es_sql_res *res, int col, size_t *len)
{
    free(res->blob);
    res->blob = NULL;
    *len = 0;
    if (res->pg) {
        if (PQgetisnull(res->pg, res->row, col))
            return NULL;
        size_t n = 0;
        res->blob = PQunescapeBytea((const unsigned char *)PQgetvalue(res->pg, res->row, col), &n);
        if (!res->blob)
            return NULL;
        *len = n;
        return res->blob;
    }
    const void *p = sqlite3_column_blob(res->stmt, col);
    *len = p ? (size_t)sqlite3_column_bytes(res->stmt, col) : 0;
    return p;
}

void es_sql_done(struct es_sql_res *res)
{
    if (res->pg)
        PQclear(res->pg);
    if (res->stmt)
        sqlite3_finalize(res->stmt);
    if (res->blob)
        PQfreemem(res->blob);
    res->pg = NULL;
    res->stmt = NULL;
    res->blob = NULL;
}

long long es_sql_changes(const struct es_sql *db)
{
    return db->changes;
}

int es_sql_begin(struct es_sql *db, int exclusive)
{
    int rc;
    if (db->kind == ES_SQL_SQLITE) {
        rc = es_sql_exec(db, exclusive ? "BEGIN IMMEDIATE" : "BEGIN");
    } else {
        rc = es_sql_exec(db, "BEGIN");
        if (rc == 0 && exclusive) {
            char sql[64];
            snprintf(sql, sizeof(sql), "SELECT pg_advisory_xact_lock(%d)", WRITE_LOCK_KEY);
            rc = es_sql_exec(db, sql);
            if (rc < 0)
                es_sql_exec(db, "ROLLBACK");
        }
    }
    db->in_tx = rc == 0;
    return rc;
}

int es_sql_commit(struct es_sql *db)
{
    int rc = es_sql_exec(db, "COMMIT");
    if (rc < 0)
        es_sql_rollback(db);
    db->in_tx = 0;
    return rc;
}

void es_sql_rollback(struct es_sql *db)
{
    enum es_sql_fail f = db->fail;
    char err[sizeof(db->err)];
    memcpy(err, db->err, sizeof(err));
    if (db->kind == ES_SQL_SQLITE ? !sqlite3_get_autocommit(db->lite) : db->pg != NULL)
        es_sql_exec(db, "ROLLBACK");
    /* The failure that led here is the one to report, not the rollback's. */
    db->fail = f;
    memcpy(db->err, err, sizeof(err));
    db->in_tx = 0;
}

long long es_sql_data_version(struct es_sql *db)
{
    if (db->kind != ES_SQL_SQLITE)
        return 0;
    sqlite3_stmt *st;
    long long v = 0;
    if (sqlite3_prepare_v2(db->lite, "PRAGMA data_version", -1, &st, NULL) != SQLITE_OK)
        return 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

int es_sql_listen(struct es_sql *db, const char *channel)
{
    if (db->kind != ES_SQL_PG)
        return 0;
    size_t len = strlen(channel);
    if (len == 0 || len >= sizeof(db->channels[0]) || db->n_channels == MAX_CHANNELS)
        return PX_ERR_INVAL;
    for (size_t i = 0; i < len; i++)
        if (!((channel[i] >= 'a' && channel[i] <= 'z') || channel[i] == '_'))
            return PX_ERR_INVAL;
    memcpy(db->channels[db->n_channels++], channel, len + 1);
    char sql[100];
    snprintf(sql, sizeof(sql), "LISTEN %s", channel);
    return es_sql_exec(db, sql);
}

int es_sql_notices(struct es_sql *db)
{
    if (db->kind != ES_SQL_PG)
        return 0;
    int n = db->reconnected;
    db->reconnected = 0;
    if (!db->pg)
        return n ? n : PX_ERR_UNAVAILABLE;
    if (!PQconsumeInput(db->pg) || PQstatus(db->pg) != CONNECTION_OK) {
        pg_lost(db, PQerrorMessage(db->pg));
        return n ? n : PX_ERR_UNAVAILABLE;
    }
    int self = PQbackendPID(db->pg);
    PGnotify *e;
    while ((e = PQnotifies(db->pg))) {
        if (e->be_pid != self)
            n++;
        PQfreemem(e);
    }
    return n;
}

int es_sql_socket(const struct es_sql *db)
{
    return db->kind == ES_SQL_PG && db->pg ? PQsocket(db->pg) : -1;
}

int es_sql_up(const struct es_sql *db)
{
    return db->kind == ES_SQL_SQLITE || db->pg != NULL;
}

int es_sql_reconnect(struct es_sql *db, long long now_ms, long long retry_ms)
{
    if (db->kind != ES_SQL_PG || db->pg)
        return 0;
    if (!db->pending) {
        if (db->last_try_ms && now_ms - db->last_try_ms < retry_ms)
            return 0;
        db->last_try_ms = now_ms;
        db->pending = pg_start(db, 0);
        if (!db->pending)
            return 0;
        db->pending_wait = PGRES_POLLING_WRITING; /* as libpq says to start */
    }
    /* PQconnectPoll only once the socket is ready for what it asked last:
     * called early, it takes a connect still in progress for made, then
     * blocks sending the startup packet until the kernel gives up (an
     * unanswered host: seconds to minutes of the caller's loop). A socket
     * it cannot give (-1) is for PQconnectPoll to report. */
    PostgresPollingStatusType st = db->pending_wait;
    /* As many steps as the socket allows now (a few round trips on a near
     * server), none that would wait. */
    for (int step = 0; step < 8 && (st == PGRES_POLLING_READING || st == PGRES_POLLING_WRITING);
         step++) {
        struct pollfd pfd = {.fd = PQsocket(db->pending),
                             .events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT};
        if (pfd.fd >= 0 && poll(&pfd, 1, 0) <= 0)
            break;
        st = db->pending_wait = PQconnectPoll(db->pending);
    }
    switch (st) {
    case PGRES_POLLING_OK:
        break;
    case PGRES_POLLING_FAILED:
        set_err(db, ES_SQL_FAIL_DOWN, PQerrorMessage(db->pending));
        PQfinish(db->pending);
        db->pending = NULL;
        return 0;
    default:
        /* connect_timeout does not apply to a non-blocking attempt: a peer
         * that never answers is given up after retry_ms (at least 3 s). */
        if (now_ms - db->last_try_ms >= (retry_ms > 3000 ? retry_ms : 3000)) {
            set_err(db, ES_SQL_FAIL_DOWN, "timed out connecting");
            PQfinish(db->pending);
            db->pending = NULL;
        }
        return 0;
    }
    pg_adopt(db, db->pending);
    db->pending = NULL;
    if (PQsetnonblocking(db->pg, 0) != 0 || pg_listen_all(db) < 0) {
        if (db->pg)
            pg_lost(db, PQerrorMessage(db->pg));
        return 0;
    }
    db->fail = ES_SQL_FAIL_NONE;
    db->err[0] = '\0';
    db->reconnected = 1;
    return 1;
}

void es_sql_drop(struct es_sql *db)
{
    if (db->kind == ES_SQL_PG)
        pg_lost(db, "connection dropped");
}

void *es_sql_sqlite_handle(struct es_sql *db)
{
    return db->lite;
}
