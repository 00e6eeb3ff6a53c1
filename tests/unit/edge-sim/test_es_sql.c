/* es_sql: the same queries on SQLite and on PostgreSQL. The PostgreSQL
 * cases need a server: tests/run.sh starts one (tests/support/pg.sh) and
 * names it in ES_TEST_PG; run by hand without it, they are skipped. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "es_sql.h"
#include "px_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct fx {
    char dir[64];
    struct es_sql *db;
    enum es_sql_kind kind;
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *pg_url(void)
{
    const char *u = getenv("ES_TEST_PG");
    return u && *u ? u : NULL;
}

static int setup_lite(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/es-sql-XXXXXX");
    if (!f || !mkdtemp(f->dir))
        return -1;
    char path[128], why[256];
    snprintf(path, sizeof(path), "%s/t.db", f->dir);
    if (es_sql_open_sqlite(&f->db, path, why, sizeof(why)) != 0)
        return -1;
    f->kind = ES_SQL_SQLITE;
    *state = f;
    return es_sql_exec(f->db, "CREATE TABLE p(id TEXT PRIMARY KEY, n BIGINT);"
                              "CREATE TABLE c(k TEXT PRIMARY KEY, pid TEXT REFERENCES p(id)"
                              " ON DELETE CASCADE, b BLOB, t TEXT)") == 0
               ? 0
               : -1;
}

static int setup_pg(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    *state = f;
    f->kind = ES_SQL_PG;
    if (!pg_url())
        return 0; /* each case skips */
    char why[256];
    if (es_sql_open_pg(&f->db, pg_url(), why, sizeof(why)) != 0) {
        fprintf(stderr, "%s\n", why);
        return -1;
    }
    return es_sql_exec(f->db, "DROP TABLE IF EXISTS c; DROP TABLE IF EXISTS p;"
                              "CREATE TABLE p(id TEXT PRIMARY KEY, n BIGINT);"
                              "CREATE TABLE c(k TEXT PRIMARY KEY, pid TEXT REFERENCES p(id)"
                              " ON DELETE CASCADE, b BYTEA, t TEXT)") == 0
               ? 0
               : -1;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    es_sql_close(f->db);
    if (f->dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
        if (system(cmd) != 0)
            return -1;
    }
    free(f);
    return 0;
}

static struct fx *fx_of(void **state)
{
    struct fx *f = *state;
    if (!f->db)
        skip();
    return f;
}

/* Every type in and out, changes counted, NULLs both ways. */
static void test_round_trip(void **state)
{
    struct fx *f = fx_of(state);
    const unsigned char blob[5] = {0, 1, 0xff, '\\', 'x'};
    assert_int_equal(es_sql_query(f->db, NULL, "INSERT INTO p(id,n) VALUES(?,?)",
                                  ES_SQL_ARGS(ES_SQL_T("a"), ES_SQL_I(-9007199254740993LL))),
                     0);
    assert_int_equal(es_sql_changes(f->db), 1);
    assert_int_equal(es_sql_query(f->db, NULL, "INSERT INTO c(k,pid,b,t) VALUES(?,?,?,?)",
                                  ES_SQL_ARGS(ES_SQL_T("k1"), ES_SQL_T("a"),
                                              ES_SQL_B(blob, sizeof(blob)), ES_SQL_N)),
                     0);
    struct es_sql_res r;
    assert_int_equal(es_sql_query(f->db, &r,
                                  "SELECT p.n, c.b, c.t, c.k FROM c JOIN p ON p.id=c.pid"
                                  " WHERE c.k=?1 OR c.k=?1",
                                  ES_SQL_ARGS(ES_SQL_T("k1"))),
                     0);
    assert_int_equal(es_sql_next(&r), 1);
    assert_true(es_sql_int(&r, 0) == -9007199254740993LL);
    size_t len;
    const void *b = es_sql_blob(&r, 1, &len);
    assert_int_equal(len, sizeof(blob));
    assert_memory_equal(b, blob, sizeof(blob));
    assert_null(es_sql_text(&r, 2));
    assert_string_equal(es_sql_text(&r, 3), "k1");
    assert_int_equal(es_sql_next(&r), 0);
    es_sql_done(&r);
    /* A literal '?' is not a placeholder. */
    assert_int_equal(es_sql_query(f->db, &r, "SELECT '?', ? ", ES_SQL_ARGS(ES_SQL_I(7))), 0);
    assert_int_equal(es_sql_next(&r), 1);
    assert_string_equal(es_sql_text(&r, 0), "?");
    assert_int_equal(es_sql_int(&r, 1), 7);
    es_sql_done(&r);
    assert_int_equal(
        es_sql_query(f->db, NULL, "UPDATE p SET n=n+1 WHERE id<>?", ES_SQL_ARGS(ES_SQL_T("a"))), 0);
    assert_int_equal(es_sql_changes(f->db), 0);
}

/* Constraints come back as typed failures; the connection stays usable. */
static void test_constraints_are_typed(void **state)
{
    struct fx *f = fx_of(state);
    assert_int_equal(
        es_sql_query(f->db, NULL, "INSERT INTO p(id,n) VALUES(?,1)", ES_SQL_ARGS(ES_SQL_T("x"))),
        0);
    assert_int_equal(
        es_sql_query(f->db, NULL, "INSERT INTO p(id,n) VALUES(?,2)", ES_SQL_ARGS(ES_SQL_T("x"))),
        PX_ERR_EXISTS);
    assert_int_equal(es_sql_failure(f->db), ES_SQL_FAIL_UNIQUE);
    assert_int_equal(es_sql_query(f->db, NULL, "INSERT INTO c(k,pid) VALUES(?,?)",
                                  ES_SQL_ARGS(ES_SQL_T("k"), ES_SQL_T("nobody"))),
                     PX_ERR_DB);
    assert_int_equal(es_sql_failure(f->db), ES_SQL_FAIL_FOREIGN);
    assert_int_equal(es_sql_query(f->db, NULL, "SELECT nonsense FROM nowhere", NULL, 0), PX_ERR_DB);
    assert_int_equal(es_sql_failure(f->db), ES_SQL_FAIL_OTHER);
    assert_true(strlen(es_sql_errmsg(f->db)) > 0);
    assert_null(strchr(es_sql_errmsg(f->db), '\n'));
    /* RETURNING reports a constraint from es_sql_query itself. */
    struct es_sql_res r;
    assert_int_equal(es_sql_query(f->db, &r, "INSERT INTO p(id,n) VALUES(?,3) RETURNING id",
                                  ES_SQL_ARGS(ES_SQL_T("x"))),
                     PX_ERR_EXISTS);
    es_sql_done(&r);
    assert_int_equal(es_sql_query(f->db, NULL, "SELECT 1", NULL, 0), 0);
}

static void test_rollback_undoes(void **state)
{
    struct fx *f = fx_of(state);
    assert_int_equal(es_sql_begin(f->db, 1), 0);
    assert_int_equal(
        es_sql_query(f->db, NULL, "INSERT INTO p(id,n) VALUES(?,1)", ES_SQL_ARGS(ES_SQL_T("r"))),
        0);
    es_sql_rollback(f->db);
    struct es_sql_res r;
    assert_int_equal(
        es_sql_query(f->db, &r, "SELECT count(*) FROM p WHERE id=?", ES_SQL_ARGS(ES_SQL_T("r"))),
        0);
    assert_int_equal(es_sql_next(&r), 1);
    assert_int_equal(es_sql_int(&r, 0), 0);
    es_sql_done(&r);
    assert_int_equal(es_sql_begin(f->db, 0), 0);
    assert_int_equal(
        es_sql_query(f->db, NULL, "INSERT INTO p(id,n) VALUES(?,1)", ES_SQL_ARGS(ES_SQL_T("r"))),
        0);
    assert_int_equal(es_sql_commit(f->db), 0);
    assert_int_equal(
        es_sql_query(f->db, &r, "SELECT count(*) FROM p WHERE id=?", ES_SQL_ARGS(ES_SQL_T("r"))),
        0);
    assert_int_equal(es_sql_next(&r), 1);
    assert_int_equal(es_sql_int(&r, 0), 1);
    es_sql_done(&r);
}

/* A second connection's commit shows: data_version on SQLite, a notice on
 * PostgreSQL (and our own notices are not counted). */
static void test_other_writer_is_seen(void **state)
{
    struct fx *f = fx_of(state);
    struct es_sql *other = NULL;
    char why[256];
    if (f->kind == ES_SQL_SQLITE) {
        char path[128];
        snprintf(path, sizeof(path), "%s/t.db", f->dir);
        assert_int_equal(es_sql_open_sqlite(&other, path, why, sizeof(why)), 0);
        long long v = es_sql_data_version(f->db);
        assert_int_equal(es_sql_exec(other, "INSERT INTO p(id,n) VALUES('o',1)"), 0);
        assert_true(es_sql_data_version(f->db) != v);
        es_sql_close(other);
        return;
    }
    assert_int_equal(es_sql_open_pg(&other, pg_url(), why, sizeof(why)), 0);
    assert_int_equal(es_sql_listen(f->db, "es_test"), 0);
    assert_int_equal(es_sql_exec(f->db, "NOTIFY es_test"), 0);
    assert_int_equal(es_sql_notices(f->db), 0); /* our own */
    assert_int_equal(es_sql_exec(other, "NOTIFY es_test, 'x'; NOTIFY es_test, 'y'"), 0);
    int n = 0;
    for (int i = 0; i < 200 && n < 2; i++) {
        n += es_sql_notices(f->db);
        usleep(5000);
    }
    assert_int_equal(n, 2);
    assert_true(es_sql_socket(f->db) >= 0);
    es_sql_close(other);
}

/* A lost connection fails at once, typed; reconnecting brings it back,
 * listening again, and says so once through es_sql_notices. */
static void test_lost_connection_fails_fast_and_comes_back(void **state)
{
    struct fx *f = fx_of(state);
    if (f->kind != ES_SQL_PG)
        skip();
    assert_int_equal(es_sql_listen(f->db, "es_back"), 0);
    es_sql_drop(f->db);
    assert_false(es_sql_up(f->db));
    assert_int_equal(es_sql_query(f->db, NULL, "SELECT 1", NULL, 0), PX_ERR_UNAVAILABLE);
    assert_int_equal(es_sql_failure(f->db), ES_SQL_FAIL_DOWN);
    assert_int_equal(es_sql_begin(f->db, 1), PX_ERR_UNAVAILABLE);
    assert_int_equal(es_sql_notices(f->db), PX_ERR_UNAVAILABLE);
    assert_int_equal(es_sql_socket(f->db), -1);
    int back = 0;
    long long t0 = now_ms();
    while (!back && now_ms() - t0 < 5000) {
        back = es_sql_reconnect(f->db, now_ms(), 100);
        if (!back)
            usleep(2000);
    }
    assert_int_equal(back, 1);
    assert_true(es_sql_up(f->db));
    assert_int_equal(es_sql_notices(f->db), 1); /* the reconnection itself */
    struct es_sql *other = NULL;
    char why[256];
    assert_int_equal(es_sql_open_pg(&other, pg_url(), why, sizeof(why)), 0);
    assert_int_equal(es_sql_exec(other, "NOTIFY es_back"), 0);
    int n = 0;
    for (int i = 0; i < 200 && n < 1; i++) {
        n += es_sql_notices(f->db);
        usleep(5000);
    }
    assert_int_equal(n, 1);
    es_sql_close(other);
    assert_int_equal(es_sql_query(f->db, NULL, "SELECT 1", NULL, 0), 0);
}

/* No server: a clear, typed refusal that never shows the password. */
static void test_unreachable_server_is_unavailable(void **state)
{
    (void)state;
    struct es_sql *db = NULL;
    char why[512];
    /* Port 1 on loopback: nothing listens, the refusal is immediate. */
    assert_int_equal(es_sql_open_pg(&db, "postgres://u:s3cret@127.0.0.1:1/d", why, sizeof(why)),
                     PX_ERR_UNAVAILABLE);
    assert_null(db);
    assert_non_null(strstr(why, "127.0.0.1"));
    assert_null(strstr(why, "s3cret"));
    assert_int_equal(es_sql_open_pg(&db, "postgres://u@127.0.0.1:1/d?bogus=1", why, sizeof(why)),
                     PX_ERR_INVAL);
    assert_true(es_sql_spec_is_pg("postgres://h/d"));
    assert_true(es_sql_spec_is_pg("postgresql://h/d"));
    assert_false(es_sql_spec_is_pg("edge-data"));
    assert_false(es_sql_spec_is_pg(NULL));
}

#define BOTH(t)                                                                                    \
    cmocka_unit_test_setup_teardown(t, setup_lite, teardown),                                      \
        cmocka_unit_test_setup_teardown(t, setup_pg, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(test_round_trip),
        BOTH(test_constraints_are_typed),
        BOTH(test_rollback_undoes),
        BOTH(test_other_writer_is_seen),
        cmocka_unit_test_setup_teardown(test_lost_connection_fails_fast_and_comes_back, setup_pg,
                                        teardown),
        cmocka_unit_test(test_unreachable_server_is_unavailable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
