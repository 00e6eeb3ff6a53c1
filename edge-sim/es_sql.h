/* es_sql: one small interface over the two databases the edge keeps its
 * state in, so that the store's queries are written once:
 *   SQLite      a file in the data dir: one machine (the default);
 *   PostgreSQL  through libpq: several edges sharing one state.
 *
 * Queries are SQL both understand, with `?` (numbered in order) or `?N`
 * placeholders; for PostgreSQL they are rewritten to `$N`. Arguments are
 * typed values (ES_SQL_T/I/B/N below), results are read column by column as
 * text, integers or blobs. Which dialect is in use is es_sql_kind(); the few
 * statements that differ (schemas, upserts' functions) are chosen by it.
 *
 * Failures are typed: every function returns 0 or a px_err code, and
 * es_sql_failure() says what kind the last one was. A PostgreSQL connection
 * that is lost makes every call fail at once with PX_ERR_UNAVAILABLE (no
 * waiting on a dead server) until es_sql_reconnect() brings it back, which
 * it does without blocking, one step per call.
 *
 * Change notices: on PostgreSQL, es_sql_listen() subscribes the connection
 * to a channel, and es_sql_notices() counts what other sessions sent to it
 * (pg_notify from triggers). SQLite has no such thing: es_sql_data_version()
 * tells a commit by another connection there.
 *
 * One struct es_sql belongs to one thread at a time. Nothing here touches an
 * event loop; the serve polls es_sql_socket() itself. */
#ifndef ES_SQL_H
#define ES_SQL_H

#include <stddef.h>

enum es_sql_kind {
    ES_SQL_SQLITE = 1,
    ES_SQL_PG = 2,
};

enum es_sql_type {
    ES_SQL_NULL = 0,
    ES_SQL_TEXT,
    ES_SQL_INT,
    ES_SQL_BLOB,
};

/* One argument: a NUL-terminated string, a 64-bit integer, len bytes, or
 * NULL. The pointers are borrowed for the call. */
struct es_sql_arg {
    enum es_sql_type type;
    const void *p;
    size_t len;
    long long i;
};

static inline struct es_sql_arg es_sql_text_arg(const char *s)
{
    struct es_sql_arg a = {.type = s ? ES_SQL_TEXT : ES_SQL_NULL, .p = s, .len = 0, .i = 0};
    return a;
}
#define ES_SQL_T(s) es_sql_text_arg(s)
#define ES_SQL_I(v) ((struct es_sql_arg){.type = ES_SQL_INT, .p = NULL, .len = 0, .i = (v)})
#define ES_SQL_B(ptr, n) ((struct es_sql_arg){.type = ES_SQL_BLOB, .p = (ptr), .len = (n), .i = 0})
#define ES_SQL_N ((struct es_sql_arg){.type = ES_SQL_NULL, .p = NULL, .len = 0, .i = 0})
/* The argument list of es_sql_query: ES_SQL_ARGS(ES_SQL_T(id), ES_SQL_I(now)). */
#define ES_SQL_ARGS(...)                                                                           \
    (const struct es_sql_arg[]){__VA_ARGS__},                                                      \
        sizeof((const struct es_sql_arg[]){__VA_ARGS__}) / sizeof(struct es_sql_arg)

/* What the last failure of a connection was. */
enum es_sql_fail {
    ES_SQL_FAIL_NONE = 0,
    ES_SQL_FAIL_UNIQUE,  /* a unique or primary key constraint (PX_ERR_EXISTS) */
    ES_SQL_FAIL_FOREIGN, /* a foreign key constraint */
    ES_SQL_FAIL_DOWN,    /* the server is unreachable (PX_ERR_UNAVAILABLE) */
    ES_SQL_FAIL_OTHER,   /* anything else (PX_ERR_DB) */
};

struct es_sql;

/* A result being read. Fields are es_sql.c's own. */
struct es_sql_res {
    struct es_sql *db;
    void *stmt; /* sqlite3_stmt */
    void *pg;   /* PGresult */
    int row, rows;
    int pending; /* SQLite: the first step made by es_sql_query found a row */
    unsigned char *blob;
};

/* 1 if spec names a PostgreSQL database: a postgres:// or postgresql://
 * URI. Anything else is a data directory (SQLite). */
int es_sql_spec_is_pg(const char *spec);

/* Opens (creating) the SQLite file path in WAL mode with a 5 s busy
 * timeout and foreign keys on. Returns 0 with *out, or PX_ERR_DB /
 * PX_ERR_NOMEM with why. */
int es_sql_open_sqlite(struct es_sql **out, const char *path, char *why, size_t whylen);
/* Connects to the PostgreSQL database conninfo (a URI or key=value string),
 * waiting at most connect_timeout (3 s unless conninfo says). Every query
 * is then bounded: statement_timeout 10 s, and a dead peer is noticed within
 * tcp_user_timeout (5 s) unless conninfo says otherwise. Returns 0 with
 * *out, PX_ERR_UNAVAILABLE (cannot connect: why says why, without the
 * password), PX_ERR_INVAL (conninfo malformed) or PX_ERR_NOMEM. */
int es_sql_open_pg(struct es_sql **out, const char *conninfo, char *why, size_t whylen);
/* Closes db (NULL is fine). A transaction left open is rolled back. */
void es_sql_close(struct es_sql *db);

enum es_sql_kind es_sql_kind(const struct es_sql *db);
/* What db is, for messages: the SQLite path, or user@host:port/dbname
 * (never a password). Valid while db is open. */
const char *es_sql_target(const struct es_sql *db);
/* The last failure's kind, and its message ("" if none). */
enum es_sql_fail es_sql_failure(const struct es_sql *db);
const char *es_sql_errmsg(const struct es_sql *db);

/* Runs sql with args[0..n). With res (which the call initialises), the rows
 * are read with es_sql_next and res is released with es_sql_done, always,
 * even after a failure; without res the rows are discarded. Returns 0,
 * PX_ERR_EXISTS (a unique constraint), PX_ERR_UNAVAILABLE (server gone),
 * PX_ERR_DB (anything else, es_sql_failure says more) or PX_ERR_NOMEM. */
int es_sql_query(struct es_sql *db, struct es_sql_res *res, const char *sql,
                 const struct es_sql_arg *args, size_t n);
/* Runs sql, which may hold several statements and takes no arguments
 * (schemas). Returns as es_sql_query. */
int es_sql_exec(struct es_sql *db, const char *sql);
/* Moves to the next row: 1 (a row), 0 (no more) or < 0 (as es_sql_query). */
int es_sql_next(struct es_sql_res *res);
/* Column col of the current row: text (NULL for SQL NULL; valid until the
 * next es_sql_next or es_sql_done), an integer (0 for NULL; a PostgreSQL
 * boolean is 1 or 0), or a blob with *len (NULL and 0 for NULL; valid until
 * the next es_sql_blob, es_sql_next or es_sql_done). */
const char *es_sql_text(struct es_sql_res *res, int col);
long long es_sql_int(struct es_sql_res *res, int col);
const void *es_sql_blob(struct es_sql_res *res, int col, size_t *len);
void es_sql_done(struct es_sql_res *res);
/* Rows the last statement run without res changed. */
long long es_sql_changes(const struct es_sql *db);

/* A write transaction. exclusive: no other writer that asked for it runs
 * meanwhile, so a check and the write it decides are one step (SQLite:
 * BEGIN IMMEDIATE; PostgreSQL: BEGIN and a transaction-scoped advisory
 * lock every edge takes). Otherwise PostgreSQL's READ COMMITTED BEGIN.
 * Returns as es_sql_query. */
int es_sql_begin(struct es_sql *db, int exclusive);
int es_sql_commit(struct es_sql *db);
/* Rolls back; harmless outside a transaction or on a lost connection. */
void es_sql_rollback(struct es_sql *db);

/* SQLite: the database's data_version (it moves when another connection
 * commits). PostgreSQL: 0. */
long long es_sql_data_version(struct es_sql *db);
/* PostgreSQL: subscribes to channel (an identifier) now and after every
 * reconnection. SQLite: nothing. Returns as es_sql_query. */
int es_sql_listen(struct es_sql *db, const char *channel);
/* PostgreSQL: reads what the server sent without blocking and returns how
 * many notices other sessions sent to the channels listened to since the
 * last call, plus one after a reconnection (what was missed meanwhile is
 * unknown); < 0 (PX_ERR_UNAVAILABLE) when the connection is found lost.
 * SQLite: 0. */
int es_sql_notices(struct es_sql *db);
/* The connection's socket to poll for notices, or -1 (SQLite, or down). */
int es_sql_socket(const struct es_sql *db);
/* 1 while the connection is usable (SQLite: always). */
int es_sql_up(const struct es_sql *db);
/* PostgreSQL, when down: one non-blocking step of reconnecting, at most one
 * new attempt per retry_ms (each attempt bounded by connect_timeout).
 * Returns 1 when this call brought the connection back (listening again),
 * 0 while still down or when it was up, < 0 never. SQLite: 0. */
int es_sql_reconnect(struct es_sql *db, long long now_ms, long long retry_ms);
/* Marks the connection lost, as a failed query would (tests). */
void es_sql_drop(struct es_sql *db);

/* Test access to the SQLite handle (sqlite3 *), NULL for PostgreSQL. */
void *es_sql_sqlite_handle(struct es_sql *db);

#endif
