/* es_store, es_store_access and es_live on PostgreSQL: the versioned
 * schema (migrate, and the refusals of open), the same records as on
 * SQLite, route claims raced by several processes, change notices between
 * two stores, a lost connection, and the live view of two instances.
 *
 * Each case starts from an empty database (the public schema dropped and
 * made again). It needs a server: tests/run.sh starts one
 * (tests/support/pg.sh) and names it in ES_TEST_PG; without it, the
 * PostgreSQL cases are skipped. Processes that race are forked and start
 * together on a pipe; delays are measured and printed, never asserted. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "es_live.h"
#include "es_sql.h"
#include "es_store.h"
#include "es_store_access.h"
#include "px_err.h"
#include "px_hostname.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ID_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define ID_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define ID_C "cccccccccccccccccccccccccccccccc"

struct fx {
    struct es_sql *raw; /* a plain connection, to look at tables directly */
    struct es_store a;  /* the edge under test */
    struct es_store b;  /* another edge, or the CLI, on the same database */
};

static const char *pg_url(void)
{
    const char *u = getenv("ES_TEST_PG");
    return u && *u ? u : NULL;
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* Drops everything the previous case left. */
static int reset_db(struct es_sql *raw)
{
    return es_sql_exec(raw, "DROP SCHEMA public CASCADE; CREATE SCHEMA public;");
}

/* An empty database, not migrated. */
static int setup_empty(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    *state = f;
    if (!pg_url())
        return 0; /* each case skips */
    char why[512] = "";
    if (es_sql_open_pg(&f->raw, pg_url(), why, sizeof(why)) != 0) {
        fprintf(stderr, "setup: %s\n", why);
        return -1;
    }
    return reset_db(f->raw) == 0 ? 0 : -1;
}

/* An empty database, migrated, with store a open on it. */
static int setup(void **state)
{
    if (setup_empty(state) != 0)
        return -1;
    struct fx *f = *state;
    if (!f->raw)
        return 0;
    char why[512] = "";
    int from, to;
    if (es_store_migrate(pg_url(), &from, &to, why, sizeof(why)) != 0 ||
        es_store_open(&f->a, pg_url(), why, sizeof(why)) != 0) {
        fprintf(stderr, "setup: %s\n", why);
        return -1;
    }
    return 0;
}

/* As setup, with a second store b open too. */
static int setup_two(void **state)
{
    if (setup(state) != 0)
        return -1;
    struct fx *f = *state;
    if (!f->raw)
        return 0;
    char why[512] = "";
    if (es_store_open(&f->b, pg_url(), why, sizeof(why)) != 0) {
        fprintf(stderr, "setup: %s\n", why);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (f->a.db)
        es_store_close(&f->a);
    if (f->b.db)
        es_store_close(&f->b);
    es_sql_close(f->raw);
    free(f);
    return 0;
}

static struct fx *fx_of(void **state)
{
    struct fx *f = *state;
    if (!f->raw)
        skip();
    return f;
}

/* The one integer sql (one text argument, or none) yields. */
static long long q_int(struct es_sql *db, const char *sql, const char *arg)
{
    struct es_sql_res r;
    int rc = arg ? es_sql_query(db, &r, sql, ES_SQL_ARGS(ES_SQL_T(arg)))
                 : es_sql_query(db, &r, sql, NULL, 0);
    if (rc != 0)
        print_error("%s: %s\n", sql, es_sql_errmsg(db));
    assert_int_equal(rc, 0);
    assert_int_equal(es_sql_next(&r), 1);
    long long v = es_sql_int(&r, 0);
    es_sql_done(&r);
    return v;
}

static void make_rec(struct es_tunnel_rec *t, const char *id, const char *name)
{
    memset(t, 0, sizeof(*t));
    snprintf(t->id, sizeof(t->id), "%s", id);
    snprintf(t->name, sizeof(t->name), "%s", name);
    for (int i = 0; i < 32; i++)
        t->secret_hash[i] = (uint8_t)(id[0] + i);
}

static void add(struct es_store *st, const char *id, const char *name, char **patterns, size_t n)
{
    struct es_tunnel_rec t;
    make_rec(&t, id, name);
    for (size_t i = 0; i < n; i++)
        t.patterns[i] = patterns[i];
    t.n_patterns = n;
    assert_int_equal(es_store_tunnel_add(st, &t), 0);
}

struct route_seen {
    int n;
    char host[16][256];
    char owner[16][33];
};

static void collect(const char *hostname, const char *tunnel_id, void *arg)
{
    struct route_seen *r = arg;
    if (r->n < 16) {
        snprintf(r->host[r->n], sizeof(r->host[0]), "%s", hostname);
        snprintf(r->owner[r->n], sizeof(r->owner[0]), "%s", tunnel_id);
    }
    r->n++;
}

/* Reads a byte from each of n forked processes that are connected and
 * waiting on their start pipe (fewer if some died). Returns how many. */
static size_t wait_ready(int fd, size_t n)
{
    char buf[16];
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, buf, n - got < sizeof(buf) ? n - got : sizeof(buf));
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    return got;
}

/* ---- 1. the versioned schema ---- */

/* An empty database: open refuses it and names the command; migrate brings
 * it from 0 to ES_STORE_PG_SCHEMA, and a second run changes nothing. */
static void test_migrate_empty_then_noop(void **state)
{
    struct fx *f = fx_of(state);
    struct es_store st;
    char why[512] = "";
    assert_int_equal(es_store_open(&st, pg_url(), why, sizeof(why)), PX_ERR_VERSION);
    assert_non_null(strstr(why, "edge-sim store migrate"));
    assert_null(strstr(why, "newer"));
    assert_null(st.db);

    int from = -1, to = -1;
    why[0] = '\0';
    assert_int_equal(es_store_migrate(pg_url(), &from, &to, why, sizeof(why)), 0);
    assert_int_equal(from, 0);
    assert_int_equal(to, ES_STORE_PG_SCHEMA);
    assert_int_equal(q_int(f->raw, "SELECT count(*) FROM schema_migrations", NULL),
                     ES_STORE_PG_SCHEMA);
    assert_int_equal(q_int(f->raw, "SELECT max(version) FROM schema_migrations", NULL),
                     ES_STORE_PG_SCHEMA);

    from = to = -1;
    assert_int_equal(es_store_migrate(pg_url(), &from, &to, why, sizeof(why)), 0);
    assert_int_equal(from, ES_STORE_PG_SCHEMA);
    assert_int_equal(to, ES_STORE_PG_SCHEMA);
    assert_int_equal(q_int(f->raw, "SELECT count(*) FROM schema_migrations", NULL),
                     ES_STORE_PG_SCHEMA);

    assert_int_equal(es_store_open(&st, pg_url(), why, sizeof(why)), 0);
    assert_true(es_store_shared(&st));
    struct es_tunnel_rec *list;
    size_t n;
    assert_int_equal(es_store_tunnel_list(&st, &list, &n), 0);
    assert_int_equal(n, 0);
    es_store_tunnels_free(list, n);
    es_store_close(&st);
}

/* schema_migrations made (by a migration that stopped before its first
 * step) but empty is version 0: open still says to migrate. */
static void test_open_refuses_version_zero_table(void **state)
{
    struct fx *f = fx_of(state);
    assert_int_equal(es_sql_exec(f->raw, "CREATE TABLE schema_migrations(version INTEGER PRIMARY "
                                         "KEY, applied BIGINT NOT NULL)"),
                     0);
    struct es_store st;
    char why[512] = "";
    assert_int_equal(es_store_open(&st, pg_url(), why, sizeof(why)), PX_ERR_VERSION);
    assert_non_null(strstr(why, "edge-sim store migrate"));
    int from = -1, to = -1;
    assert_int_equal(es_store_migrate(pg_url(), &from, &to, why, sizeof(why)), 0);
    assert_int_equal(from, 0);
    assert_int_equal(to, ES_STORE_PG_SCHEMA);
    assert_int_equal(es_store_open(&st, pg_url(), why, sizeof(why)), 0);
    es_store_close(&st);
}

/* A database a newer edge-sim migrated: this build neither opens it nor
 * "migrates" it, and says to upgrade. */
static void test_newer_schema_refused(void **state)
{
    struct fx *f = fx_of(state);
    es_store_close(&f->a);
    assert_int_equal(es_sql_query(f->raw, NULL,
                                  "INSERT INTO schema_migrations(version,applied) VALUES(?,0)",
                                  ES_SQL_ARGS(ES_SQL_I(ES_STORE_PG_SCHEMA + 1))),
                     0);
    struct es_store st;
    char why[512] = "";
    assert_int_equal(es_store_open(&st, pg_url(), why, sizeof(why)), PX_ERR_VERSION);
    assert_non_null(strstr(why, "newer"));
    assert_null(st.db);
    int from = -1, to = -1;
    why[0] = '\0';
    assert_int_equal(es_store_migrate(pg_url(), &from, &to, why, sizeof(why)), PX_ERR_VERSION);
    assert_non_null(strstr(why, "newer"));
    assert_int_equal(from, ES_STORE_PG_SCHEMA + 1);
    /* Nothing was applied or recorded. */
    assert_int_equal(q_int(f->raw, "SELECT count(*) FROM schema_migrations", NULL),
                     ES_STORE_PG_SCHEMA + 1);
}

/* A child's verdict through its exit status: 0..9 the version it migrated
 * from, 100 + -rc a failure. */
static int migrate_status(int rc, int from)
{
    return rc == 0 ? from : 100 + (-rc % 100);
}

#define MIGRATORS 4 /* the parent and three children */
#define MIGRATE_ROUNDS 8

/* Several `edge-sim store migrate` at once on an empty database (operators
 * starting edges together, each migrating first): every one succeeds, the
 * schema is applied exactly once (one saw version 0), and it works.
 * Bug: schema_migrations was created outside the write lock, and two
 * CREATE TABLE IF NOT EXISTS at once both found no table: the later one
 * failed on the catalog's unique index ("duplicate key value violates
 * unique constraint pg_type_typname_nsp_index", or "type already exists"),
 * and its migrate with it. */
static void test_concurrent_migrations_schema_migrations_race(void **state)
{
    struct fx *f = fx_of(state);
    for (int round = 0; round < MIGRATE_ROUNDS; round++) {
        assert_int_equal(reset_db(f->raw), 0);
        int go[2];
        assert_int_equal(pipe(go), 0);
        pid_t kids[MIGRATORS - 1];
        for (int i = 0; i < MIGRATORS - 1; i++) {
            kids[i] = fork();
            assert_true(kids[i] >= 0);
            if (kids[i] == 0) {
                close(go[1]);
                char c, why[512] = "";
                if (read(go[0], &c, 1) != 0) /* the parent closing is the start */
                    _exit(99);
                int from = -1, to = -1;
                int rc = es_store_migrate(pg_url(), &from, &to, why, sizeof(why));
                if (rc != 0 || to != ES_STORE_PG_SCHEMA)
                    fprintf(stderr, "migrator %d: rc %d, %d -> %d: %s\n", i, rc, from, to, why);
                _exit(rc == 0 && to != ES_STORE_PG_SCHEMA ? 98 : migrate_status(rc, from));
            }
        }
        close(go[0]);
        close(go[1]);
        char why[512] = "";
        int from = -1, to = -1;
        int rc = es_store_migrate(pg_url(), &from, &to, why, sizeof(why));
        if (rc != 0)
            print_error("round %d, parent: rc %d: %s\n", round, rc, why);
        int zeros = rc == 0 && from == 0, failed = rc != 0 || to != ES_STORE_PG_SCHEMA;
        for (int i = 0; i < MIGRATORS - 1; i++) {
            int st;
            assert_int_equal(waitpid(kids[i], &st, 0), kids[i]);
            assert_true(WIFEXITED(st));
            int v = WEXITSTATUS(st);
            if (v == 0)
                zeros++;
            else if (v != ES_STORE_PG_SCHEMA)
                failed++;
        }
        if (failed || zeros != 1)
            print_error("round %d: %d migrators failed, %d applied the schema\n", round, failed,
                        zeros);
        assert_int_equal(failed, 0);
        assert_int_equal(zeros, 1);
        assert_int_equal(q_int(f->raw, "SELECT count(*) FROM schema_migrations", NULL),
                         ES_STORE_PG_SCHEMA);
        assert_int_equal(
            q_int(f->raw, "SELECT count(*) FROM pg_trigger WHERE tgname='tunnels_changed'", NULL),
            1);
        struct es_store st;
        assert_int_equal(es_store_open(&st, pg_url(), why, sizeof(why)), 0);
        add(&st, ID_A, "after", NULL, 0);
        es_store_close(&st);
    }
}

/* ---- 2. tunnels and kv ---- */

static void test_tunnels(void **state)
{
    struct fx *f = fx_of(state);
    char *pats[] = {"*.example.com", "app.example.org"};
    add(&f->a, ID_B, "zeta", pats, 2);
    add(&f->a, ID_A, "alpha", NULL, 0);

    struct es_tunnel_rec t;
    assert_int_equal(es_store_tunnel_get(&f->a, ID_B, NULL, &t), 0);
    assert_string_equal(t.id, ID_B);
    assert_string_equal(t.name, "zeta");
    assert_int_equal(t.n_patterns, 2);
    assert_string_equal(t.patterns[0], "*.example.com");
    assert_string_equal(t.patterns[1], "app.example.org");
    assert_int_equal(t.secret_hash[0], 'b');
    assert_int_equal(t.secret_hash[31], 'b' + 31);
    assert_true(t.created > 0);
    es_tunnel_rec_cleanup(&t);
    assert_int_equal(es_store_tunnel_get(&f->a, NULL, "alpha", &t), 0);
    assert_string_equal(t.id, ID_A);
    assert_int_equal(t.n_patterns, 0);
    es_tunnel_rec_cleanup(&t);
    assert_int_equal(es_store_tunnel_get(&f->a, ID_C, NULL, &t), PX_ERR_NOT_FOUND);
    assert_int_equal(es_store_tunnel_get(&f->a, NULL, "away", &t), PX_ERR_NOT_FOUND);
    assert_int_equal(es_store_tunnel_get(&f->a, NULL, NULL, &t), PX_ERR_NOT_FOUND);
    assert_int_equal(es_store_tunnel_get(&f->a, "alpha", NULL, &t), PX_ERR_NOT_FOUND);
    assert_int_equal(es_store_tunnel_get(&f->a, NULL, ID_A, &t), PX_ERR_NOT_FOUND);

    /* Another edge reads what this one wrote. */
    char why[512];
    assert_int_equal(es_store_open(&f->b, pg_url(), why, sizeof(why)), 0);
    struct es_tunnel_rec *list;
    size_t n;
    assert_int_equal(es_store_tunnel_list(&f->b, &list, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].name, "alpha");
    assert_string_equal(list[1].name, "zeta");
    assert_int_equal(list[1].n_patterns, 2);
    es_store_tunnels_free(list, n);

    /* A taken name, or a taken id, is refused as such; nothing is added. */
    make_rec(&t, ID_C, "zeta");
    assert_int_equal(es_store_tunnel_add(&f->b, &t), PX_ERR_EXISTS);
    make_rec(&t, ID_A, "other");
    assert_int_equal(es_store_tunnel_add(&f->a, &t), PX_ERR_EXISTS);
    assert_int_equal(q_int(f->raw, "SELECT count(*) FROM tunnels", NULL), 2);

    /* The secret hash, bytes exactly (BYTEA both ways). */
    uint8_t h[32];
    memset(h, 0x55, sizeof(h));
    assert_int_equal(es_store_tunnel_secret_hash(&f->a, ID_A, h), 0);
    for (int i = 0; i < 32; i++)
        assert_int_equal(h[i], 'a' + i);
    memset(h, 0x55, sizeof(h));
    assert_int_equal(es_store_tunnel_secret_hash(&f->a, ID_C, h), PX_ERR_NOT_FOUND);
    assert_int_equal(h[0], 0x55);
    assert_int_equal(es_store_tunnel_secret_hash(&f->a, "alpha", h), PX_ERR_NOT_FOUND);

    /* Secrets before and after rotations: the previous hash is kept, the
     * generation counts. */
    struct es_tunnel_secrets s, before;
    uint8_t zero[32] = {0};
    assert_int_equal(es_store_tunnel_secrets(&f->a, ID_A, &before), 0);
    assert_int_equal(before.current[0], 'a');
    assert_memory_equal(before.previous, zero, 32);
    assert_int_equal(before.previous_until, 0);
    assert_int_equal(before.rotated_at, 0);
    assert_int_equal(before.rotations, 0);
    memset(&s, 0x55, sizeof(s));
    assert_int_equal(es_store_tunnel_secrets(&f->a, ID_C, &s), PX_ERR_NOT_FOUND);
    assert_int_equal(s.current[0], 0x55);

    uint8_t h2[32], h3[32];
    memset(h2, 0x22, 32);
    memset(h3, 0x33, 32);
    h2[5] = 0; /* a NUL inside survives */
    char id[33] = "", name[65] = "";
    assert_int_equal(es_store_tunnel_rotate(&f->a, "alpha", h2, 5000, id, name), 0);
    assert_string_equal(id, ID_A);
    assert_string_equal(name, "alpha");
    assert_int_equal(es_store_tunnel_secrets(&f->b, ID_A, &s), 0);
    assert_memory_equal(s.current, h2, 32);
    assert_memory_equal(s.previous, before.current, 32);
    assert_int_equal(s.previous_until, 5000);
    assert_true(s.rotated_at > 0);
    assert_int_equal(s.rotations, 1);
    assert_int_equal(es_store_secret_match(&s, before.current, 4999), 2);
    assert_int_equal(es_store_secret_match(&s, h2, 4999), 1);
    assert_int_equal(es_store_tunnel_rotate(&f->a, ID_A, h3, 0, NULL, NULL), 0);
    assert_int_equal(es_store_tunnel_secrets(&f->a, ID_A, &s), 0);
    assert_memory_equal(s.current, h3, 32);
    assert_memory_equal(s.previous, h2, 32);
    assert_int_equal(s.previous_until, 0);
    assert_int_equal(s.rotations, 2);
    assert_int_equal(es_store_tunnel_get(&f->a, ID_A, NULL, &t), 0);
    assert_memory_equal(t.secret_hash, h3, 32);
    es_tunnel_rec_cleanup(&t);
    assert_int_equal(es_store_tunnel_secrets(&f->a, ID_B, &s), 0); /* untouched */
    assert_int_equal(s.rotations, 0);
    assert_int_equal(es_store_tunnel_rotate(&f->a, "away", h3, 1, NULL, NULL), PX_ERR_NOT_FOUND);
    assert_int_equal(es_store_tunnel_rotate(&f->a, "", h3, 1, NULL, NULL), PX_ERR_NOT_FOUND);

    /* Delete cascades to the routes, by name or by id; twice is NOT_FOUND. */
    assert_int_equal(es_store_route_claim(&f->a, "a1.example", ID_A, NULL), 0);
    assert_int_equal(es_store_route_claim(&f->a, "a2.example", ID_A, NULL), 0);
    assert_int_equal(es_store_route_claim(&f->a, "b1.example", ID_B, NULL), 0);
    assert_int_equal(es_store_tunnel_delete(&f->b, "alpha"), 0);
    struct route_seen seen = {0};
    assert_int_equal(es_store_route_each(&f->a, collect, &seen), 0);
    assert_int_equal(seen.n, 1);
    assert_string_equal(seen.host[0], "b1.example");
    assert_string_equal(seen.owner[0], ID_B);
    assert_int_equal(es_store_tunnel_delete(&f->a, ID_B), 0);
    assert_int_equal(es_store_tunnel_delete(&f->a, ID_B), PX_ERR_NOT_FOUND);
    assert_int_equal(es_store_tunnel_delete(&f->a, "alpha"), PX_ERR_NOT_FOUND);
    assert_int_equal(q_int(f->raw, "SELECT count(*) FROM routes", NULL), 0);
    assert_int_equal(q_int(f->raw, "SELECT count(*) FROM tunnels", NULL), 0);
}

/* Bug: `tunnel delete NAME` deleted by name OR id in one statement, so a
 * name that is another tunnel's id (names may be 32 hex digits) deleted
 * both tunnels and their routes. As rotate does, a name wins: one row. The
 * statement is the same on SQLite: both are checked. */
static void delete_name_like_other_id(struct es_store *st)
{
    add(st, ID_A, "home", NULL, 0);
    add(st, ID_C, ID_A, NULL, 0); /* named like the first one's id */
    assert_int_equal(es_store_route_claim(st, "home.example.test", ID_A, NULL), 0);
    assert_int_equal(es_store_route_claim(st, "named.example.test", ID_C, NULL), 0);
    uint8_t h[32];
    memset(h, 0x44, sizeof(h));
    char id[33];
    assert_int_equal(es_store_tunnel_rotate(st, ID_A, h, 0, id, NULL), 0);
    assert_string_equal(id, ID_C); /* rotate: the name wins */
    assert_int_equal(es_store_tunnel_delete(st, ID_A), 0);
    struct es_tunnel_rec t;
    assert_int_equal(es_store_tunnel_get(st, ID_C, NULL, &t), PX_ERR_NOT_FOUND);
    assert_int_equal(es_store_tunnel_get(st, NULL, "home", &t), 0);
    assert_string_equal(t.id, ID_A);
    es_tunnel_rec_cleanup(&t);
    struct route_seen seen = {0};
    assert_int_equal(es_store_route_each(st, collect, &seen), 0);
    assert_int_equal(seen.n, 1);
    assert_string_equal(seen.host[0], "home.example.test");
    /* With no tunnel of that name left, the id names the other one. */
    assert_int_equal(es_store_tunnel_delete(st, ID_A), 0);
    assert_int_equal(es_store_tunnel_delete(st, ID_A), PX_ERR_NOT_FOUND);
    struct es_tunnel_rec *list;
    size_t n;
    assert_int_equal(es_store_tunnel_list(st, &list, &n), 0);
    assert_int_equal(n, 0);
    es_store_tunnels_free(list, n);
}

static void test_delete_name_like_other_id_deletes_one(void **state)
{
    struct fx *f = fx_of(state);
    delete_name_like_other_id(&f->a);
}

static void test_delete_name_like_other_id_deletes_one_sqlite(void **state)
{
    (void)state;
    char dir[] = "/tmp/es-store-pg-XXXXXX", why[512] = "";
    assert_non_null(mkdtemp(dir));
    struct es_store st;
    assert_int_equal(es_store_open(&st, dir, why, sizeof(why)), 0);
    delete_name_like_other_id(&st);
    es_store_close(&st);
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_kv(void **state)
{
    struct fx *f = fx_of(state);
    char v[64];
    assert_int_equal(es_store_kv_get(&f->a, "k", v, sizeof(v)), PX_ERR_NOT_FOUND);
    assert_int_equal(es_store_kv_set(&f->a, "k", "one"), 0);
    assert_int_equal(es_store_kv_get(&f->a, "k", v, sizeof(v)), 0);
    assert_string_equal(v, "one");
    assert_int_equal(es_store_kv_set(&f->a, "k", "two"), 0);
    assert_int_equal(es_store_kv_get(&f->a, "k", v, sizeof(v)), 0);
    assert_string_equal(v, "two");
    char small[3];
    assert_int_equal(es_store_kv_get(&f->a, "k", small, sizeof(small)), 0);
    assert_string_equal(small, "tw");
    /* set_if_absent: the first value stays. */
    assert_int_equal(es_store_kv_set_if_absent(&f->a, "k", "three"), 0);
    assert_int_equal(es_store_kv_get(&f->a, "k", v, sizeof(v)), 0);
    assert_string_equal(v, "two");
    assert_int_equal(es_store_kv_set_if_absent(&f->a, "fresh", "first"), 0);
    assert_int_equal(es_store_kv_set_if_absent(&f->a, "fresh", "second"), 0);
    assert_int_equal(es_store_kv_get(&f->a, "fresh", v, sizeof(v)), 0);
    assert_string_equal(v, "first");
    assert_int_equal(q_int(f->raw, "SELECT count(*) FROM kv", NULL), 2);
}

/* ---- 3. route claims ---- */

static void test_route_claims(void **state)
{
    struct fx *f = fx_of(state);
    add(&f->a, ID_A, "home", NULL, 0);
    add(&f->a, ID_B, "intruder", NULL, 0);
    struct es_route_conflict c;
    assert_int_equal(es_store_route_claim(&f->a, "*.apps.example.test", ID_A, &c), 0);
    assert_int_equal(es_store_route_claim(&f->a, "*.apps.example.test", ID_A, &c), 0); /* ours */
    assert_int_equal(es_store_route_claim(&f->a, "mine.apps.example.test", ID_A, &c), 0);
    /* The same name, or one under A's wildcard, for B: refused, told by whom. */
    const char *under[] = {"*.apps.example.test", "victim.apps.example.test",
                           "a.b.apps.example.test", "*.y.apps.example.test"};
    for (size_t i = 0; i < sizeof(under) / sizeof(under[0]); i++) {
        memset(&c, 0, sizeof(c));
        assert_int_equal(es_store_route_claim(&f->a, under[i], ID_B, &c), PX_ERR_EXISTS);
        assert_string_equal(c.tunnel_id, ID_A);
        assert_string_equal(c.tunnel_name, "home");
        assert_true(strcmp(c.hostname, "*.apps.example.test") == 0 ||
                    strcmp(c.hostname, "mine.apps.example.test") == 0);
    }
    /* Without a conflict to fill, the same answer. */
    assert_int_equal(es_store_route_claim(&f->a, "victim.apps.example.test", ID_B, NULL),
                     PX_ERR_EXISTS);
    /* Not overlapping: the bare suffix, a sibling. */
    assert_int_equal(es_store_route_claim(&f->a, "apps.example.test", ID_B, &c), 0);
    assert_int_equal(es_store_route_claim(&f->a, "x.other.example.test", ID_B, &c), 0);
    /* A wildcard over B's name, for A. */
    memset(&c, 0, sizeof(c));
    assert_int_equal(es_store_route_claim(&f->a, "*.example.test", ID_A, &c), PX_ERR_EXISTS);
    assert_string_equal(c.tunnel_name, "intruder");
    assert_string_equal(c.tunnel_id, ID_B);
    assert_int_equal(q_int(f->raw, "SELECT count(*) FROM routes", NULL), 4);

    /* Release only by the owner. */
    assert_int_equal(es_store_route_release(&f->a, "x.other.example.test", ID_A), 0);
    assert_int_equal(
        q_int(f->raw, "SELECT count(*) FROM routes WHERE hostname=?", "x.other.example.test"), 1);
    assert_int_equal(es_store_route_release(&f->a, "x.other.example.test", ID_B), 0);
    assert_int_equal(
        q_int(f->raw, "SELECT count(*) FROM routes WHERE hostname=?", "x.other.example.test"), 0);

    /* A tunnel that never was, or that another process deleted: NOT_FOUND,
     * and the store goes on (the failed transaction was rolled back). */
    assert_int_equal(es_store_route_claim(&f->a, "ghost.example.net", ID_C, &c), PX_ERR_NOT_FOUND);
    char why[512];
    assert_int_equal(es_store_open(&f->b, pg_url(), why, sizeof(why)), 0);
    assert_int_equal(es_store_tunnel_delete(&f->b, "intruder"), 0);
    assert_int_equal(es_store_route_claim(&f->a, "late.example.net", ID_B, &c), PX_ERR_NOT_FOUND);
    assert_int_equal(q_int(f->raw, "SELECT count(*) FROM routes WHERE tunnel_id=?", ID_B), 0);
    assert_int_equal(es_store_route_claim(&f->a, "late.example.net", ID_A, &c), 0);
    struct route_seen seen = {0};
    assert_int_equal(es_store_route_each(&f->a, collect, &seen), 0);
    assert_int_equal(seen.n, 3);
    for (int i = 0; i < seen.n; i++)
        assert_string_equal(seen.owner[i], ID_A);
}

/* The claim's overlap check reads only the claims that can overlap, by
 * index (the name, the wildcards above it, the rev range under a wildcard).
 * Checked against px_host_overlap, the rule itself, for every pair of a
 * set of names and wildcards at several depths: a claim by B is refused
 * exactly when it overlaps A's one claim. */
static void test_indexed_overlap_agrees_with_px_host_overlap(void **state)
{
    struct fx *f = fx_of(state);
    static const char *const names[] = {
        "example.test",       "*.example.test",   "a.example.test",
        "*.a.example.test",   "b.a.example.test", "*.b.a.example.test",
        "c.b.a.example.test", "ab.example.test",  "*.ab.example.test",
        "a.example.testx",    "*.example.testx",  "xa.example.test",
        "a-b.example.test",   "*.test",           "test",
        "*.a-b.example.test"};
    size_t n = sizeof(names) / sizeof(names[0]);
    add(&f->a, ID_A, "held", NULL, 0);
    add(&f->a, ID_B, "claimer", NULL, 0);
    size_t checked = 0;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(es_store_route_claim(&f->a, names[i], ID_A, NULL), 0);
        for (size_t k = 0; k < n; k++) {
            struct es_route_conflict c;
            memset(&c, 0, sizeof(c));
            int want = px_host_overlap(names[i], names[k]) ? PX_ERR_EXISTS : 0;
            int got = es_store_route_claim(&f->a, names[k], ID_B, &c);
            if (got != want)
                fail_msg("A holds %s, B claims %s: got %d, px_host_overlap says %d", names[i],
                         names[k], got, want);
            if (got == PX_ERR_EXISTS)
                assert_string_equal(c.hostname, names[i]);
            else
                assert_int_equal(es_store_route_release(&f->a, names[k], ID_B), 0);
            checked++;
        }
        assert_int_equal(es_store_route_release(&f->a, names[i], ID_A), 0);
    }
    assert_int_equal(checked, n * n);
}

#define RACERS 8
#define RACE_ROUNDS 6

/* Racer i's tunnel id: 32 hex digits. */
static void racer_id(char id[33], int i)
{
    snprintf(id, 33, "%032x", (unsigned)(0xace00 + i));
}

/* What racer i claims in a round: every racer the same name (even rounds),
 * or one of three patterns that all overlap pairwise (odd rounds): a
 * wildcard, a narrower one under it, and a name under both. */
static void racer_host(char *out, size_t len, int round, int i)
{
    if (round % 2 == 0)
        snprintf(out, len, "same.r%d.race.test", round);
    else if (i % 3 == 0)
        snprintf(out, len, "*.r%d.race.test", round);
    else if (i % 3 == 1)
        snprintf(out, len, "*.y.r%d.race.test", round);
    else
        snprintf(out, len, "z.y.r%d.race.test", round);
}

/* A racer's exit status: 0 claimed, 1 refused with the conflict filled in
 * with another racer's claim, else a failure. */
static void racer(int round, int i, int ready_fd, int go_fd)
{
    struct es_store st;
    char why[512], id[33], host[256], c;
    if (es_store_open(&st, pg_url(), why, sizeof(why)) != 0) {
        fprintf(stderr, "racer %d: %s\n", i, why);
        _exit(10);
    }
    racer_id(id, i);
    racer_host(host, sizeof(host), round, i);
    if (write(ready_fd, "r", 1) != 1 || read(go_fd, &c, 1) != 0)
        _exit(11);
    struct es_route_conflict conflict;
    memset(&conflict, 0, sizeof(conflict));
    int rc = es_store_route_claim(&st, host, id, &conflict);
    int status = 12;
    if (rc == 0)
        status = 0;
    else if (rc == PX_ERR_EXISTS)
        status = conflict.tunnel_id[0] && strcmp(conflict.tunnel_id, id) != 0 &&
                         strstr(conflict.hostname, ".race.test") &&
                         strncmp(conflict.tunnel_name, "racer", 5) == 0
                     ? 1
                     : 13;
    else
        fprintf(stderr, "racer %d: claim %s: %d\n", i, host, rc);
    es_store_close(&st);
    _exit(status);
}

/* THE RACE: RACERS processes, each with its own store (its own connection,
 * as separate edges have) and its own tunnel, claim the same or
 * overlapping names at once. Exactly one wins; the others are told who
 * holds it; the routes table has that one owner. */
static void test_route_claim_race(void **state)
{
    struct fx *f = fx_of(state);
    for (int i = 0; i < RACERS; i++) {
        char id[33], name[24];
        racer_id(id, i);
        snprintf(name, sizeof(name), "racer%d", i);
        add(&f->a, id, name, NULL, 0);
    }
    for (int round = 0; round < RACE_ROUNDS; round++) {
        int ready[2], go[2];
        assert_int_equal(pipe(ready), 0);
        assert_int_equal(pipe(go), 0);
        pid_t kids[RACERS];
        for (int i = 0; i < RACERS; i++) {
            kids[i] = fork();
            assert_true(kids[i] >= 0);
            if (kids[i] == 0) {
                close(ready[0]);
                close(go[1]);
                racer(round, i, ready[1], go[0]);
            }
        }
        close(ready[1]);
        close(go[0]);
        /* Everyone connected and waiting: then all go at once. */
        size_t got = wait_ready(ready[0], RACERS);
        close(go[1]);
        close(ready[0]);
        assert_int_equal(got, RACERS);
        int winners = 0, losers = 0, winner = -1;
        for (int i = 0; i < RACERS; i++) {
            int st;
            assert_int_equal(waitpid(kids[i], &st, 0), kids[i]);
            assert_true(WIFEXITED(st));
            if (WEXITSTATUS(st) == 0)
                winners++, winner = i;
            else if (WEXITSTATUS(st) == 1)
                losers++;
            else
                print_error("round %d: racer %d exited %d\n", round, i, WEXITSTATUS(st));
        }
        if (winners != 1)
            print_error("round %d: %d racers claimed overlapping names\n", round, winners);
        assert_int_equal(winners, 1);
        assert_int_equal(losers, RACERS - 1);
        char suffix[64], win_id[33], win_host[256];
        snprintf(suffix, sizeof(suffix), "%%.r%d.race.test", round);
        racer_id(win_id, winner);
        racer_host(win_host, sizeof(win_host), round, winner);
        assert_int_equal(q_int(f->raw, "SELECT count(*) FROM routes WHERE hostname LIKE ?", suffix),
                         1);
        struct es_sql_res r;
        const char *like = suffix;
        assert_int_equal(
            es_sql_query(f->raw, &r, "SELECT hostname, tunnel_id FROM routes WHERE hostname LIKE ?",
                         ES_SQL_ARGS(ES_SQL_T(like))),
            0);
        assert_int_equal(es_sql_next(&r), 1);
        assert_string_equal(es_sql_text(&r, 0), win_host);
        assert_string_equal(es_sql_text(&r, 1), win_id);
        es_sql_done(&r);
    }
    assert_int_equal(q_int(f->raw, "SELECT count(*) FROM routes", NULL), RACE_ROUNDS);
}

/* ---- 4. change notices ---- */

/* Polls es_store_changed(s) until it says 1, for at most limit_ms (at least
 * every millisecond), and returns the milliseconds it took (fractional), or
 * -1 if it never did. */
static double wait_changed(struct es_store *s, long long limit_ms)
{
    double t0 = mono_us();
    long long end = mono_ms() + limit_ms;
    for (;;) {
        if (es_store_changed(s) == 1)
            return (mono_us() - t0) / 1000.0;
        if (mono_ms() > end)
            return -1;
        /* Woken by the notice itself when connected, so the delay measured
         * is the delivery's, not the poll step's. */
        struct pollfd pfd = {.fd = es_sql_socket(s->db), .events = POLLIN};
        if (pfd.fd < 0 || poll(&pfd, 1, 1) < 0)
            usleep(1000);
    }
}

/* es_store_changed(s) stays 0 over 20 polls 5 ms apart. */
static void assert_quiet(struct es_store *s)
{
    for (int i = 0; i < 20; i++) {
        assert_int_equal(es_store_changed(s), 0);
        usleep(5000);
    }
}

#define NOTICE_SAMPLES 50

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void test_change_notices(void **state)
{
    struct fx *f = fx_of(state);
    /* Nothing happened since the stores opened. */
    assert_int_equal(es_store_reconcile(&f->a), 0);
    assert_int_equal(es_store_changed(&f->a), 0);
    assert_int_equal(es_store_changed(&f->b), 0);

    /* A's own change is no news to A (B hears of it). */
    add(&f->a, ID_A, "mine", NULL, 0);
    assert_quiet(&f->a);
    double d_own = wait_changed(&f->b, 2000);
    assert_true(d_own >= 0);
    /* Its counter moved all the same: reconciliation says so once. */
    assert_int_equal(es_store_reconcile(&f->a), 1);
    assert_int_equal(es_store_reconcile(&f->a), 0);
    assert_int_equal(es_store_reconcile(&f->b), 1);

    /* B adds a tunnel: A hears within the bound, once; reconcile agrees. */
    add(&f->b, ID_B, "theirs", NULL, 0);
    double d_tunnel = wait_changed(&f->a, 2000);
    assert_true(d_tunnel >= 0);
    assert_int_equal(es_store_changed(&f->a), 0);
    assert_int_equal(es_store_reconcile(&f->a), 1);
    assert_int_equal(es_store_reconcile(&f->a), 0);
    struct es_tunnel_rec t;
    assert_int_equal(es_store_tunnel_get(&f->a, NULL, "theirs", &t), 0);
    es_tunnel_rec_cleanup(&t);

    /* B revokes a client certificate A recorded. */
    struct es_client_cert_rec cert = {.name = "phone",
                                      .serial = "0a1b2c",
                                      .fingerprint = "ff",
                                      .subject = "CN=phone",
                                      .created = 1};
    assert_int_equal(es_store_client_cert_add(&f->a, &cert), 0);
    assert_true(wait_changed(&f->b, 2000) >= 0);
    assert_int_equal(es_store_reconcile(&f->a), 1); /* A's own add */
    size_t n = 0;
    assert_int_equal(es_store_client_cert_revoke(&f->b, "phone", 7, &n), 0);
    assert_int_equal(n, 1);
    double d_revoke = wait_changed(&f->a, 2000);
    assert_true(d_revoke >= 0);
    assert_int_equal(es_store_changed(&f->a), 0);
    assert_int_equal(es_store_reconcile(&f->a), 1);
    assert_int_equal(es_store_reconcile(&f->a), 0);

    /* B sets a policy. */
    char *cas[] = {ES_ACCESS_EDGE_CA};
    struct es_policy_rec p = {.pattern = "ha.example.test", .cas = cas, .n_cas = 1, .created = 1};
    assert_int_equal(es_store_policy_set(&f->b, &p, NULL), 0);
    double d_policy = wait_changed(&f->a, 2000);
    assert_true(d_policy >= 0);
    assert_int_equal(es_store_changed(&f->a), 0);
    assert_int_equal(es_store_reconcile(&f->a), 1);
    assert_int_equal(es_store_reconcile(&f->a), 0);

    /* A notice A never polled for (a missed one) is still found by
     * reconciliation; a refused change (nothing written) moves nothing. */
    assert_int_equal(es_store_route_claim(&f->b, "x.example.test", ID_B, NULL), 0);
    assert_int_equal(es_store_reconcile(&f->a), 1);
    assert_int_equal(es_store_reconcile(&f->a), 0);
    assert_true(wait_changed(&f->a, 2000) >= 0); /* the notice, read late */
    make_rec(&t, ID_C, "theirs");
    assert_int_equal(es_store_tunnel_add(&f->b, &t), PX_ERR_EXISTS);
    assert_int_equal(es_store_reconcile(&f->a), 0);

    print_message("notice delays after the writer's call returned (ms): own change seen by the "
                  "other %.3f, tunnel add %.3f, revoke %.3f, policy %.3f\n",
                  d_own, d_tunnel, d_revoke, d_policy);

    /* The delay over many changes: from the moment B's call began, and
     * after it returned (A polls every millisecond). */
    double from_start[NOTICE_SAMPLES], after_return[NOTICE_SAMPLES];
    for (int i = 0; i < NOTICE_SAMPLES; i++) {
        char name[32];
        snprintf(name, sizeof(name), "sample%d", i);
        struct es_tunnel_rec rec;
        make_rec(&rec, ID_C, name);
        snprintf(rec.id, sizeof(rec.id), "%032x", (unsigned)(0x5a0000 + i));
        double t0 = mono_us();
        assert_int_equal(es_store_tunnel_add(&f->b, &rec), 0);
        double t1 = mono_us();
        double d = wait_changed(&f->a, 2000);
        assert_true(d >= 0);
        after_return[i] = d;
        from_start[i] = d + (t1 - t0) / 1000.0;
    }
    qsort(from_start, NOTICE_SAMPLES, sizeof(double), cmp_double);
    qsort(after_return, NOTICE_SAMPLES, sizeof(double), cmp_double);
    print_message("notice delay over %d tunnel adds (ms): from the write's start min %.3f median "
                  "%.3f max %.3f; after it returned min %.3f median %.3f max %.3f\n",
                  NOTICE_SAMPLES, from_start[0], from_start[NOTICE_SAMPLES / 2],
                  from_start[NOTICE_SAMPLES - 1], after_return[0], after_return[NOTICE_SAMPLES / 2],
                  after_return[NOTICE_SAMPLES - 1]);
}

/* Bug: the change triggers were per statement, so a statement that
 * changed no row notified every edge and moved the change counter all the
 * same: a connector re-registering a name it holds (claim: already ours),
 * a route released twice (both edges' sweeps), a prune with nothing to
 * prune. Each made every edge reload everything; on SQLite (data_version)
 * none of them counts as a change. */
static void test_noop_write_notifies_nobody(void **state)
{
    struct fx *f = fx_of(state);
    add(&f->a, ID_A, "home", NULL, 0);
    assert_int_equal(es_store_route_claim(&f->a, "x.example.test", ID_A, NULL), 0);
    struct es_client_cert_rec cert = {
        .name = "phone", .serial = "0a", .fingerprint = "f", .subject = "s", .created = 1};
    assert_int_equal(es_store_client_cert_add(&f->a, &cert), 0);
    assert_int_equal(es_store_client_cert_revoke(&f->a, "phone", 5, NULL), 0);
    /* Four transactions, four notices: all read before going on (counted
     * below es_store_changed, which says only whether there were any). */
    int got = 0;
    long long end = mono_ms() + 2000;
    while (got < 4 && mono_ms() < end) {
        int k = es_sql_notices(f->b.db);
        if (k > 0)
            got += k;
        else
            usleep(1000);
    }
    assert_int_equal(got, 4);
    assert_int_equal(es_store_reconcile(&f->b), 1);
    assert_int_equal(es_store_reconcile(&f->b), 0);

    /* Writes that change nothing. */
    assert_int_equal(es_store_route_claim(&f->a, "x.example.test", ID_A, NULL), 0);
    assert_int_equal(es_store_route_release(&f->a, "x.example.test", ID_B), 0);
    assert_int_equal(es_store_route_release(&f->a, "gone.example.test", ID_A), 0);
    size_t n = 9;
    assert_int_equal(es_store_client_cert_revoke(&f->a, "phone", 6, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(es_store_signing_key_prune(&f->a, 1000), 0);
    assert_int_equal(es_store_reconcile(&f->b), 0);
    assert_quiet(&f->b);

    /* A real change still counts, once. */
    assert_int_equal(es_store_route_release(&f->a, "x.example.test", ID_A), 0);
    assert_true(wait_changed(&f->b, 2000) >= 0);
    assert_int_equal(es_store_reconcile(&f->b), 1);
    assert_int_equal(es_store_reconcile(&f->b), 0);
    /* So does a TRUNCATE (no rows to fire for) by some other program. */
    assert_int_equal(es_sql_exec(f->raw, "TRUNCATE access_policies"), 0);
    assert_true(wait_changed(&f->b, 2000) >= 0);
    assert_int_equal(es_store_reconcile(&f->b), 1);
}

/* Heartbeats (the live tables) notify nobody: a store does not reload
 * every second. */
static void test_live_tables_do_not_notify(void **state)
{
    struct fx *f = fx_of(state);
    struct es_live lv;
    char why[512] = "";
    const struct es_live_self self = {"127.0.0.1:7844", "127.0.0.1:8443", "127.0.0.1:7845", 1};
    assert_int_equal(es_live_open(&lv, pg_url(), "aaaa", es_live_now_ms(), why, sizeof(why)), 0);
    const char *names[] = {"app.example.test"};
    struct es_link_info l = {.conn_id = "c0",
                             .tunnel_id = ID_A,
                             .connector = "p",
                             .conn_index = 0,
                             .edge = "e",
                             .agent = "a",
                             .peer_ip = "192.0.2.1",
                             .since = 1,
                             .names = names,
                             .n_names = 1};
    assert_int_equal(es_store_reconcile(&f->a), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(es_live_heartbeat(&lv, &self, &l, 1, es_live_now_ms()), 0);
    assert_int_equal(es_live_hold(&lv, "c0", ID_A, names, 1, es_live_now_ms()), 0);
    assert_quiet(&f->a);
    assert_int_equal(es_store_reconcile(&f->a), 0);
    es_live_close(&lv);
    assert_int_equal(es_store_reconcile(&f->a), 0);
    /* The channel itself works: a store change is heard. */
    assert_int_equal(es_store_open(&f->b, pg_url(), why, sizeof(why)), 0);
    add(&f->b, ID_A, "t", NULL, 0);
    assert_true(wait_changed(&f->a, 2000) >= 0);
}

/* ---- 5. outage ---- */

static void test_outage_fails_fast_and_comes_back(void **state)
{
    struct fx *f = fx_of(state);
    add(&f->a, ID_A, "before", NULL, 0);
    assert_int_equal(es_store_reconcile(&f->a), 1);

    es_sql_drop(f->a.db);
    /* Every call fails at once, typed: no waiting on a dead server. */
    double t0 = mono_us();
    struct es_tunnel_rec *list;
    size_t n;
    struct es_tunnel_rec t;
    uint8_t h[32];
    char v[16];
    assert_int_equal(es_store_tunnel_list(&f->a, &list, &n), PX_ERR_UNAVAILABLE);
    assert_null(list);
    assert_int_equal(n, 0);
    assert_int_equal(es_store_tunnel_get(&f->a, ID_A, NULL, &t), PX_ERR_UNAVAILABLE);
    assert_int_equal(es_store_tunnel_secret_hash(&f->a, ID_A, h), PX_ERR_UNAVAILABLE);
    assert_int_equal(es_store_route_claim(&f->a, "x.example.test", ID_A, NULL), PX_ERR_UNAVAILABLE);
    assert_int_equal(es_store_kv_get(&f->a, "k", v, sizeof(v)), PX_ERR_UNAVAILABLE);
    assert_int_equal(es_store_kv_set(&f->a, "k", "v"), PX_ERR_UNAVAILABLE);
    struct es_client_cert_rec cert = {
        .name = "p", .serial = "01", .fingerprint = "f", .subject = "s", .created = 1};
    assert_int_equal(es_store_client_cert_add(&f->a, &cert), PX_ERR_UNAVAILABLE);
    struct es_policy_rec *pols;
    assert_int_equal(es_store_policy_list(&f->a, &pols, &n), PX_ERR_UNAVAILABLE);
    double fail_ms = (mono_us() - t0) / 1000.0;
    assert_int_equal(es_store_reconcile(&f->a), 0);

    /* Meanwhile another edge changes the store. */
    char why[512];
    assert_int_equal(es_store_open(&f->b, pg_url(), why, sizeof(why)), 0);
    add(&f->b, ID_B, "meanwhile", NULL, 0);

    /* es_store_changed reconnects by itself; coming back is a change. */
    double back = wait_changed(&f->a, 5000);
    if (back < 0)
        print_error("not reconnected in 5 s: %s\n", es_sql_errmsg(f->a.db));
    assert_true(back >= 0);
    assert_true(es_sql_up(f->a.db));
    assert_int_equal(es_store_tunnel_list(&f->a, &list, &n), 0);
    assert_int_equal(n, 2); /* what was missed is there */
    es_store_tunnels_free(list, n);
    assert_int_equal(es_store_route_claim(&f->a, "x.example.test", ID_A, NULL), 0);
    assert_true(wait_changed(&f->b, 2000) >= 0);
    /* Listening again: B's next change is heard. */
    assert_int_equal(es_store_changed(&f->a), 0);
    assert_int_equal(es_store_tunnel_delete(&f->b, "meanwhile"), 0);
    double heard = wait_changed(&f->a, 2000);
    assert_true(heard >= 0);

    /* A second outage comes back too (the retry is paced, not spent). */
    es_sql_drop(f->a.db);
    assert_int_equal(es_store_kv_set(&f->a, "k", "v"), PX_ERR_UNAVAILABLE);
    double back2 = wait_changed(&f->a, 5000);
    assert_true(back2 >= 0);
    assert_int_equal(es_store_kv_set(&f->a, "k", "v"), 0);
    print_message("outage: 8 calls failed in %.3f ms; back after %.1f ms, then %.1f ms; "
                  "a notice after reconnecting %.2f ms\n",
                  fail_ms, back, back2, heard);
}

/* Not a drop on our side but the server cutting the session (an operator's
 * pg_terminate_backend, a failover): the next call fails typed, and the
 * store comes back by itself, listening again. */
static void test_backend_terminated_comes_back(void **state)
{
    struct fx *f = fx_of(state);
    add(&f->a, ID_A, "home", NULL, 0);
    long long pid = 0;
    struct es_sql_res r;
    assert_int_equal(es_sql_query(f->a.db, &r, "SELECT pg_backend_pid()", NULL, 0), 0);
    assert_int_equal(es_sql_next(&r), 1);
    pid = es_sql_int(&r, 0);
    es_sql_done(&r);
    assert_true(pid > 0);
    assert_int_equal(es_sql_query(f->raw, NULL, "SELECT pg_terminate_backend(?::int)",
                                  ES_SQL_ARGS(ES_SQL_I(pid))),
                     0);
    /* Wait until the server has let it go. */
    long long end = mono_ms() + 5000;
    char pids[24];
    snprintf(pids, sizeof(pids), "%lld", pid);
    while (q_int(f->raw, "SELECT count(*) FROM pg_stat_activity WHERE pid=?::int", pids) > 0 &&
           mono_ms() < end)
        usleep(2000);
    struct es_tunnel_rec *list;
    size_t n;
    assert_int_equal(es_store_tunnel_list(&f->a, &list, &n), PX_ERR_UNAVAILABLE);
    assert_false(es_sql_up(f->a.db));
    assert_int_equal(es_store_kv_set(&f->a, "k", "v"), PX_ERR_UNAVAILABLE);

    double back = wait_changed(&f->a, 5000);
    assert_true(back >= 0);
    assert_int_equal(es_store_tunnel_list(&f->a, &list, &n), 0);
    assert_int_equal(n, 1);
    es_store_tunnels_free(list, n);
    char why[512];
    assert_int_equal(es_store_open(&f->b, pg_url(), why, sizeof(why)), 0);
    add(&f->b, ID_B, "other", NULL, 0);
    assert_true(wait_changed(&f->a, 2000) >= 0);

    /* Cut while idle, seen only by polling for notices. */
    assert_int_equal(es_sql_query(f->a.db, &r, "SELECT pg_backend_pid()", NULL, 0), 0);
    assert_int_equal(es_sql_next(&r), 1);
    pid = es_sql_int(&r, 0);
    es_sql_done(&r);
    assert_int_equal(es_sql_query(f->raw, NULL, "SELECT pg_terminate_backend(?::int)",
                                  ES_SQL_ARGS(ES_SQL_I(pid))),
                     0);
    double idle_back = wait_changed(&f->a, 5000);
    assert_true(idle_back >= 0);
    assert_true(es_sql_up(f->a.db));
    assert_int_equal(es_store_kv_set(&f->a, "k", "v"), 0);
    print_message("terminated by the server: back after %.1f ms (cut mid-use), %.1f ms (cut "
                  "while idle)\n",
                  back, idle_back);
}

/* A TCP port where connections hang: a listener whose accept queue is full
 * (it never accepts), so the kernel drops every further SYN, as an
 * unreachable host's firewall would. */
struct blackhole {
    int listener, fill[4];
    int port;
};

static void blackhole_open(struct blackhole *bh)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    bh->listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(bh->listener >= 0);
    assert_int_equal(bind(bh->listener, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(bh->listener, 0), 0);
    assert_int_equal(getsockname(bh->listener, (struct sockaddr *)&a, &al), 0);
    bh->port = ntohs(a.sin_port);
    /* Backlog 0 queues one; the rest of these wait in SYN_SENT too. */
    for (size_t i = 0; i < sizeof(bh->fill) / sizeof(bh->fill[0]); i++) {
        bh->fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        assert_true(bh->fill[i] >= 0);
        int rc = connect(bh->fill[i], (struct sockaddr *)&a, sizeof(a));
        assert_true(rc == 0 || errno == EINPROGRESS);
    }
}

static void blackhole_close(struct blackhole *bh)
{
    for (size_t i = 0; i < sizeof(bh->fill) / sizeof(bh->fill[0]); i++)
        close(bh->fill[i]);
    close(bh->listener);
}

/* pg_url() with host:port put first in its host list and extra appended to
 * its parameters, into out. */
static void url_with_first_host(char *out, size_t len, int port, const char *extra)
{
    const char *u = pg_url(), *auth = strstr(u, "://") + 3, *at = strchr(auth, '@');
    const char *slash = strchr(auth, '/');
    const char *hosts = at && (!slash || at < slash) ? at + 1 : auth;
    snprintf(out, len, "%.*s127.0.0.1:%d,%s%s%s", (int)(hosts - u), u, port, hosts,
             strchr(u, '?') ? "&" : "?", extra);
}

/* Bug: es_sql_reconnect called PQconnectPoll whenever it was called, not
 * when the socket was ready. With a connect still in progress (a host that
 * does not answer), libpq took it for made and then blocked sending the
 * startup packet until the kernel gave up: every es_store_changed of a
 * serve whose database had gone off the network stalled its event loop
 * for tcp_user_timeout (5 s) at a time. The attempt must wait for its
 * socket instead, and be given up by es_sql_reconnect's own clock. */
static void test_reconnect_to_silent_host_does_not_block(void **state)
{
    struct fx *f = fx_of(state);
    (void)f;
    struct blackhole bh;
    blackhole_open(&bh);
    /* The first host never answers; the second is the server (a blocking
     * open gets there after connect_timeout). The kernel's own SYN retries
     * (minutes, tcp_user_timeout=0) outlast the test. */
    char url[600], why[512] = "";
    url_with_first_host(url, sizeof(url), bh.port, "connect_timeout=2&tcp_user_timeout=0");
    struct es_store st;
    double t0 = mono_us();
    assert_int_equal(es_store_open(&st, url, why, sizeof(why)), 0);
    double open_ms = (mono_us() - t0) / 1000.0;

    es_sql_drop(st.db);
    char before[600];
    snprintf(before, sizeof(before), "%s", es_sql_errmsg(st.db));
    /* On a fake clock: the attempt starts and waits for its socket; each
     * call returns at once, with nothing failed yet. */
    const long long T = 1000000;
    double worst = 0;
    for (int i = 0; i < 5; i++) {
        double c0 = mono_us();
        assert_int_equal(es_sql_reconnect(st.db, T, 1000), 0);
        double d = (mono_us() - c0) / 1000.0;
        worst = d > worst ? d : worst;
    }
    assert_false(es_sql_up(st.db));
    assert_string_equal(es_sql_errmsg(st.db), before);
    /* Its own bound gives it up (3 s), and the next one begins a retry
     * later. */
    assert_int_equal(es_sql_reconnect(st.db, T + 3000, 1000), 0);
    assert_non_null(strstr(es_sql_errmsg(st.db), "timed out"));
    assert_int_equal(es_sql_reconnect(st.db, T + 3500, 1000), 0);
    assert_int_equal(es_sql_reconnect(st.db, T + 4000, 1000), 0);
    assert_false(es_sql_up(st.db));
    /* es_store_changed, which serve calls from its loop, the same. */
    double c0 = mono_us();
    for (int i = 0; i < 5; i++)
        assert_int_equal(es_store_changed(&st), 0);
    double changed_ms = (mono_us() - c0) / 1000.0;
    print_message("silent first host: open %.0f ms; es_sql_reconnect at most %.3f ms a call; "
                  "5 es_store_changed %.3f ms\n",
                  open_ms, worst, changed_ms);
    es_store_close(&st);
    blackhole_close(&bh);
}

/* ---- 6. access tables ---- */

static void test_client_certs(void **state)
{
    struct fx *f = fx_of(state);
    struct es_client_cert_rec phone = {.name = "phone",
                                       .serial = "0a1b2c",
                                       .fingerprint = "aa11",
                                       .subject = "CN=phone,O=tunnel edge-sim",
                                       .not_before = 10,
                                       .not_after = 20,
                                       .created = 1};
    struct es_client_cert_rec laptop = {.name = "laptop",
                                        .serial = "ff00",
                                        .fingerprint = "bb22",
                                        .subject = "CN=laptop",
                                        .not_before = 11,
                                        .not_after = 21,
                                        .created = 2};
    assert_int_equal(es_store_client_cert_add(&f->a, &phone), 0);
    assert_int_equal(es_store_client_cert_add(&f->a, &phone), PX_ERR_EXISTS); /* name in use */
    assert_int_equal(es_store_client_cert_add(&f->a, &laptop), 0);
    struct es_client_cert_rec *c;
    size_t n;
    assert_int_equal(es_store_client_cert_list(&f->a, &c, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(c[0].name, "phone"); /* oldest first */
    assert_string_equal(c[0].serial, "0a1b2c");
    assert_string_equal(c[0].fingerprint, "aa11");
    assert_string_equal(c[0].subject, "CN=phone,O=tunnel edge-sim");
    assert_int_equal(c[0].not_before, 10);
    assert_int_equal(c[0].not_after, 20);
    assert_int_equal(c[0].created, 1);
    assert_int_equal(c[0].revoked, 0);
    assert_string_equal(c[1].name, "laptop");
    es_store_client_certs_free(c, n);

    /* By serial, the way a person types it: colons, upper case, zeros. */
    size_t k = 9;
    assert_int_equal(es_store_client_cert_revoke(&f->a, "00:0A:1B:2C", 5, &k), 0);
    assert_int_equal(k, 1);
    assert_int_equal(es_store_client_cert_revoke(&f->a, "phone", 6, &k), 0);
    assert_int_equal(k, 0); /* already revoked */
    assert_int_equal(es_store_client_cert_revoke(&f->a, "nobody", 6, &k), PX_ERR_NOT_FOUND);
    assert_int_equal(es_store_client_cert_revoke(&f->a, "FF00", 7, NULL), 0); /* no count wanted */
    assert_int_equal(es_store_client_cert_list(&f->a, &c, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(c[0].revoked, 5);
    assert_int_equal(c[1].revoked, 7);
    es_store_client_certs_free(c, n);
    /* Revoked, the name is free again; a serial stays unique. */
    phone.serial = "0b";
    phone.created = 3;
    assert_int_equal(es_store_client_cert_add(&f->a, &phone), 0);
    laptop.created = 4;
    assert_int_equal(es_store_client_cert_add(&f->a, &laptop), PX_ERR_EXISTS);
    assert_int_equal(es_store_client_cert_list(&f->a, &c, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(c[2].serial, "0b");
    assert_int_equal(c[2].revoked, 0);
    es_store_client_certs_free(c, n);
    /* By name: only the unrevoked one. */
    assert_int_equal(es_store_client_cert_revoke(&f->a, "phone", 8, &k), 0);
    assert_int_equal(k, 1);
}

static void test_client_cas_and_policies(void **state)
{
    struct fx *f = fx_of(state);
    struct es_client_ca_rec ca = {.name = "team", .cert_pem = "PEM-TEAM", .created = 10};
    assert_int_equal(es_store_client_ca_add(&f->a, &ca), 0);
    assert_int_equal(es_store_client_ca_add(&f->a, &ca), PX_ERR_EXISTS);
    struct es_client_ca_rec edge = {.name = ES_ACCESS_EDGE_CA, .cert_pem = "x", .created = 1};
    assert_int_equal(es_store_client_ca_add(&f->a, &edge), PX_ERR_EXISTS);
    struct es_client_ca_rec other = {
        .name = "another", .cert_pem = "PEM-2", .crl_pem = "CRL-0", .created = 11};
    assert_int_equal(es_store_client_ca_add(&f->a, &other), 0);

    struct es_client_ca_rec *cas;
    size_t n;
    assert_int_equal(es_store_client_ca_list(&f->a, &cas, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(cas[0].name, "another"); /* by name */
    assert_string_equal(cas[0].crl_pem, "CRL-0");
    assert_string_equal(cas[1].name, "team");
    assert_string_equal(cas[1].cert_pem, "PEM-TEAM");
    assert_null(cas[1].crl_pem);
    assert_int_equal(cas[1].created, 10);
    assert_int_equal(cas[1].updated, 10);
    es_store_client_cas_free(cas, n);

    assert_int_equal(es_store_client_ca_set_crl(&f->a, "team", "CRL-1", 20), 0);
    assert_int_equal(es_store_client_ca_set_crl(&f->a, "nosuch", "CRL-1", 20), PX_ERR_NOT_FOUND);
    assert_int_equal(es_store_client_ca_list(&f->a, &cas, &n), 0);
    assert_string_equal(cas[1].crl_pem, "CRL-1");
    assert_int_equal(cas[1].updated, 20);
    assert_int_equal(cas[1].created, 10);
    es_store_client_cas_free(cas, n);
    assert_int_equal(es_store_client_ca_set_crl(&f->a, "another", NULL, 21), 0); /* removed */
    assert_int_equal(es_store_client_ca_list(&f->a, &cas, &n), 0);
    assert_null(cas[0].crl_pem);
    assert_int_equal(cas[0].updated, 21);
    es_store_client_cas_free(cas, n);

    /* Policies: a CA that does not exist is named back; the edge's own CA
     * needs no row. */
    char *missing = NULL;
    char *bad_cas[] = {ES_ACCESS_EDGE_CA, "nosuch"};
    struct es_policy_rec bad = {.pattern = "x.example.test", .cas = bad_cas, .n_cas = 2};
    assert_int_equal(es_store_policy_set(&f->a, &bad, &missing), PX_ERR_NOT_FOUND);
    assert_string_equal(missing, "nosuch");
    free(missing);
    char *team_cas[] = {"team", ES_ACCESS_EDGE_CA};
    char *subjects[] = {"^CN=alice,", "O=Team$"};
    char *fps[] = {"ab12"};
    struct es_policy_rec p = {.pattern = "*.team.example.test",
                              .cas = team_cas,
                              .n_cas = 2,
                              .subjects = subjects,
                              .n_subjects = 2,
                              .fingerprints = fps,
                              .n_fingerprints = 1,
                              .audience = "aud-1",
                              .created = 30};
    assert_int_equal(es_store_policy_set(&f->a, &p, &missing), 0);
    assert_null(missing);
    char *edge_only[] = {ES_ACCESS_EDGE_CA};
    struct es_policy_rec q = {
        .pattern = "alpha.example.test", .cas = edge_only, .n_cas = 1, .created = 31};
    assert_int_equal(es_store_policy_set(&f->a, &q, NULL), 0);
    struct es_policy_rec *pl;
    assert_int_equal(es_store_policy_list(&f->a, &pl, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(pl[0].pattern, "*.team.example.test"); /* by pattern */
    assert_int_equal(pl[0].n_cas, 2);
    assert_string_equal(pl[0].cas[0], "team");
    assert_string_equal(pl[0].cas[1], ES_ACCESS_EDGE_CA);
    assert_int_equal(pl[0].n_subjects, 2);
    assert_string_equal(pl[0].subjects[1], "O=Team$");
    assert_int_equal(pl[0].n_fingerprints, 1);
    assert_string_equal(pl[0].fingerprints[0], "ab12");
    assert_string_equal(pl[0].audience, "aud-1");
    assert_int_equal(pl[0].created, 30);
    assert_string_equal(pl[1].pattern, "alpha.example.test");
    assert_null(pl[1].audience);
    assert_int_equal(pl[1].n_subjects, 0);
    es_store_policies_free(pl, n);
    /* Set again: replaced, not added. */
    struct es_policy_rec p2 = {
        .pattern = "*.team.example.test", .cas = team_cas, .n_cas = 1, .created = 40};
    assert_int_equal(es_store_policy_set(&f->a, &p2, NULL), 0);
    assert_int_equal(es_store_policy_list(&f->a, &pl, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(pl[0].n_cas, 1);
    assert_int_equal(pl[0].n_subjects, 0);
    assert_null(pl[0].audience);
    es_store_policies_free(pl, n);

    /* A CA a policy trusts cannot be deleted from under it. */
    char *used = NULL;
    assert_int_equal(es_store_client_ca_delete(&f->a, "team", &used), PX_ERR_DENIED);
    assert_string_equal(used, "*.team.example.test");
    free(used);
    assert_int_equal(es_store_client_ca_delete(&f->a, "team", NULL), PX_ERR_DENIED);
    assert_int_equal(q_int(f->raw, "SELECT count(*) FROM client_cas WHERE name=?", "team"), 1);
    assert_int_equal(es_store_policy_delete(&f->a, "*.team.example.test"), 0);
    assert_int_equal(es_store_policy_delete(&f->a, "*.team.example.test"), PX_ERR_NOT_FOUND);
    assert_int_equal(es_store_client_ca_delete(&f->a, "team", &used), 0);
    assert_null(used);
    assert_int_equal(es_store_client_ca_delete(&f->a, "team", &used), PX_ERR_NOT_FOUND);
    assert_int_equal(es_store_policy_list(&f->a, &pl, &n), 0);
    assert_int_equal(n, 1);
    es_store_policies_free(pl, n);
}

static void test_signing_keys(void **state)
{
    struct fx *f = fx_of(state);
    struct es_signing_key_rec k1 = {.kid = "k1", .key_pem = "PEM1", .created = 100};
    struct es_signing_key_rec k2 = {.kid = "k2", .key_pem = "PEM2", .created = 200};
    struct es_signing_key_rec k3 = {.kid = "k0", .key_pem = "PEM3", .created = 200};
    assert_int_equal(es_store_signing_key_add(&f->a, &k1, 1), 0);
    assert_int_equal(es_store_signing_key_add(&f->a, &k2, 1), 0); /* one exists: not added */
    struct es_signing_key_rec *k;
    size_t n;
    assert_int_equal(es_store_signing_key_list(&f->a, &k, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(k[0].kid, "k1");
    assert_int_equal(k[0].retired, 0);
    es_store_signing_keys_free(k, n);

    /* Rotations: k2, then k0 in the same second (its kid sorts first, yet
     * the one signing now is listed first). */
    assert_int_equal(es_store_signing_key_add(&f->a, &k2, 0), 0);
    assert_int_equal(es_store_signing_key_add(&f->a, &k3, 0), 0);
    assert_int_equal(es_store_signing_key_list(&f->a, &k, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(k[0].kid, "k0");
    assert_string_equal(k[0].key_pem, "PEM3");
    assert_int_equal(k[0].retired, 0);
    assert_string_equal(k[1].kid, "k2");
    assert_int_equal(k[1].retired, 200);
    assert_string_equal(k[2].kid, "k1");
    assert_int_equal(k[2].retired, 200);
    assert_int_equal(k[2].created, 100);
    es_store_signing_keys_free(k, n);
    assert_int_equal(q_int(f->raw, "SELECT count(*) FROM signing_keys WHERE retired=0", NULL), 1);

    /* Prune: retired before the cutoff only, never the signing key. */
    assert_int_equal(es_store_signing_key_prune(&f->a, 200), 0);
    assert_int_equal(q_int(f->raw, "SELECT count(*) FROM signing_keys", NULL), 3);
    assert_int_equal(es_store_signing_key_prune(&f->a, 1000000), 0);
    assert_int_equal(es_store_signing_key_list(&f->a, &k, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(k[0].kid, "k0");
    es_store_signing_keys_free(k, n);
}

#define KEY_STARTERS 6

/* Several edges starting at once on a store with no signing key, each
 * adding its own with only_if_none: they end with one. */
static void test_signing_key_first_start_race(void **state)
{
    struct fx *f = fx_of(state);
    int ready[2], go[2];
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(go), 0);
    pid_t kids[KEY_STARTERS];
    for (int i = 0; i < KEY_STARTERS; i++) {
        kids[i] = fork();
        assert_true(kids[i] >= 0);
        if (kids[i] == 0) {
            close(ready[0]);
            close(go[1]);
            struct es_store st;
            char why[512], kid[24], c;
            if (es_store_open(&st, pg_url(), why, sizeof(why)) != 0)
                _exit(10);
            if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) != 0)
                _exit(11);
            snprintf(kid, sizeof(kid), "kid%d", i);
            struct es_signing_key_rec k = {.kid = kid, .key_pem = "PEM", .created = 100 + i};
            int rc = es_store_signing_key_add(&st, &k, 1);
            es_store_close(&st);
            _exit(rc == 0 ? 0 : 12);
        }
    }
    close(ready[1]);
    close(go[0]);
    assert_int_equal(wait_ready(ready[0], KEY_STARTERS), KEY_STARTERS);
    close(go[1]);
    close(ready[0]);
    for (int i = 0; i < KEY_STARTERS; i++) {
        int st;
        assert_int_equal(waitpid(kids[i], &st, 0), kids[i]);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    assert_int_equal(q_int(f->raw, "SELECT count(*) FROM signing_keys", NULL), 1);
    assert_int_equal(q_int(f->raw, "SELECT count(*) FROM signing_keys WHERE retired=0", NULL), 1);
}

/* ---- 7. the live view ---- */

#define TID ID_A
#define T0 1800000000000LL /* a fake clock, ms */
#define GRACE 3000LL

static const struct es_live_self self_a = {"127.0.0.1:7844", "127.0.0.1:8443", "127.0.0.1:7845", 1};
static const struct es_live_self self_b = {"127.0.0.2:7844", "127.0.0.2:8443", "127.0.0.2:7845", 2};

static struct es_link_info link_info(const char *conn_id, const char *connector, int index,
                                     const char *const *names, size_t n)
{
    return (struct es_link_info){.conn_id = conn_id,
                                 .tunnel_id = TID,
                                 .connector = connector,
                                 .conn_index = index,
                                 .edge = "edge.example:7844",
                                 .agent = "connector/1",
                                 .peer_ip = "192.0.2.1",
                                 .since = T0 / 1000,
                                 .names = names,
                                 .n_names = n};
}

/* The routes es_live_expired names for lv at now (want: the one expected). */
static size_t expired(struct fx *f, struct es_live *lv, long long now, const char *want)
{
    struct es_live_expired *e;
    size_t n;
    assert_int_equal(es_live_expired(lv, &f->a, now, GRACE, &e, &n), 0);
    if (want) {
        assert_int_equal(n, 1);
        assert_string_equal(e[0].hostname, want);
        assert_string_equal(e[0].tunnel_id, TID);
    }
    free(e);
    return n;
}

static void test_live_two_instances(void **state)
{
    struct fx *f = fx_of(state);
    add(&f->a, TID, "home", NULL, 0);
    struct es_live a, b, r;
    char why[512] = "";
    assert_int_equal(es_live_open(&a, pg_url(), "aaaa", T0, why, sizeof(why)), 0);
    assert_int_equal(es_live_open(&b, pg_url(), "bbbb", T0 + 100, why, sizeof(why)), 0);
    assert_int_equal(es_live_open(&r, pg_url(), NULL, T0, why, sizeof(why)), 0);
    assert_int_equal(es_live_heartbeat(&r, &self_a, NULL, 0, T0), PX_ERR_INVAL);

    const char *app[] = {"app.example.test"};
    const char *both[] = {"app.example.test", "other.example.test"};
    struct es_link_info la[] = {link_info("c0", "proc1", 0, both, 2),
                                link_info("c2", "proc1", 2, app, 1)};
    struct es_link_info lb[] = {link_info("c1", "proc1", 1, app, 1),
                                link_info("c9", "", -1, NULL, 0)};
    assert_int_equal(es_live_heartbeat(&a, &self_a, la, 2, T0 + 1000), 0);
    assert_int_equal(es_live_heartbeat(&b, &self_b, lb, 2, T0 + 1100), 0);

    /* The reader sees all four, instance a's first (it started first). */
    struct es_live_conn *c;
    size_t n;
    assert_int_equal(es_live_conns(&r, T0 + 1200, &c, &n), 0);
    assert_int_equal(n, 4);
    assert_string_equal(c[0].instance, "aaaa");
    assert_string_equal(c[0].edge, "127.0.0.1:7844");
    assert_string_equal(c[0].conn_id, "c0");
    assert_string_equal(c[0].tunnel_id, TID);
    assert_string_equal(c[0].connector, "proc1");
    assert_int_equal(c[0].conn_index, 0);
    assert_string_equal(c[0].dialed, "edge.example:7844");
    assert_string_equal(c[0].address, "192.0.2.1");
    assert_string_equal(c[0].agent, "connector/1");
    assert_int_equal(c[0].since, T0 / 1000);
    assert_string_equal(c[1].conn_id, "c2");
    assert_string_equal(c[2].instance, "bbbb");
    assert_string_equal(c[2].edge, "127.0.0.2:7844");
    assert_string_equal(c[2].conn_id, "c9"); /* "" sorts before "proc1" */
    assert_string_equal(c[2].connector, "");
    assert_int_equal(c[2].conn_index, -1);
    assert_string_equal(c[3].conn_id, "c1");
    free(c);
    char addrs[8][301];
    assert_int_equal(es_live_edges(&r, T0 + 1200, addrs, 8, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(addrs[0], "127.0.0.1:7844");
    assert_string_equal(addrs[1], "127.0.0.2:7844");
    assert_int_equal(es_live_edges(&r, T0 + 1200, addrs, 1, &n), 0);
    assert_int_equal(n, 1);

    /* Held elsewhere: other.example.test only by a's c0. */
    assert_int_equal(es_live_held_elsewhere(&b, TID, "other.example.test", T0 + 1200), 1);
    assert_int_equal(es_live_held_elsewhere(&b, TID, "Other.Example.TEST", T0 + 1200), 1);
    assert_int_equal(es_live_held_elsewhere(&a, TID, "other.example.test", T0 + 1200), 0);
    assert_int_equal(es_live_held_elsewhere(&a, TID, "app.example.test", T0 + 1200), 1);
    assert_int_equal(es_live_held_elsewhere(&b, ID_B, "other.example.test", T0 + 1200), 0);
    assert_int_equal(es_live_held_elsewhere(&b, TID, "nope.example.test", T0 + 1200), 0);
    assert_int_equal(
        es_live_held_elsewhere(&b, TID, "other.example.test", T0 + 1001 + ES_LIVE_STALE_MS), 0);

    /* A beat replaces the instance's rows: c2 and a's hold of
     * other.example.test are gone. */
    assert_int_equal(es_live_heartbeat(&a, &self_a, &la[1], 1, T0 + 2000), 0);
    assert_int_equal(es_live_held_elsewhere(&b, TID, "other.example.test", T0 + 2000), 0);
    assert_int_equal(q_int(f->raw, "SELECT count(*) FROM links WHERE instance=?", "aaaa"), 1);

    /* A registration holds its name before the next beat, once. */
    const char *fresh[] = {"fresh.example.test"};
    assert_int_equal(es_live_hold(&a, "c7", TID, fresh, 1, T0 + 2100), 0);
    assert_int_equal(es_live_hold(&a, "c7", TID, fresh, 1, T0 + 2200), 0);
    assert_int_equal(es_live_held_elsewhere(&b, TID, "fresh.example.test", T0 + 2200), 1);
    assert_int_equal(
        q_int(f->raw, "SELECT count(*) FROM names WHERE hostname=?", "fresh.example.test"), 1);
    assert_int_equal(
        q_int(f->raw, "SELECT last_held FROM holds WHERE hostname=?", "fresh.example.test"),
        T0 + 2200);
    assert_int_equal(es_live_hold(&r, "c8", TID, fresh, 1, T0 + 2200), PX_ERR_INVAL);

    /* Expiry: routes no live connection holds, after the grace. */
    assert_int_equal(es_store_route_claim(&f->a, "app.example.test", TID, NULL), 0);
    assert_int_equal(es_store_route_claim(&f->a, "other.example.test", TID, NULL), 0);
    assert_int_equal(es_store_route_claim(&f->a, "fresh.example.test", TID, NULL), 0);
    assert_int_equal(es_store_route_claim(&f->a, "never.example.test", TID, NULL), 0);
    /* other: last held at T0 + 1000 (a's first beat). never: not held
     * since records began, so from the instance's start (a: T0). */
    assert_int_equal(es_live_heartbeat(&b, &self_b, lb, 2, T0 + 2500), 0);
    assert_int_equal(expired(f, &a, T0 + GRACE - 1, NULL), 0);
    assert_int_equal(expired(f, &a, T0 + GRACE, "never.example.test"), 1);
    assert_int_equal(expired(f, &b, T0 + GRACE, NULL), 0); /* b started 100 ms later */
    struct es_live_expired *e;
    assert_int_equal(es_live_expired(&a, &f->a, T0 + 1000 + GRACE, GRACE, &e, &n), 0);
    assert_int_equal(n, 2);
    int saw_other = 0, saw_never = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(e[i].hostname, "other.example.test") == 0) {
            saw_other = 1;
            assert_int_equal(e[i].last_held_ms, T0 + 1000);
        } else {
            assert_string_equal(e[i].hostname, "never.example.test");
            saw_never = 1;
            assert_int_equal(e[i].last_held_ms, 0);
        }
    }
    free(e);
    assert_true(saw_other && saw_never);
    /* Released and forgotten, each is gone from the next sweep. */
    assert_int_equal(es_store_route_release(&f->a, "never.example.test", TID), 0);
    assert_int_equal(es_live_forget(&a, TID, "never.example.test"), 0);
    assert_int_equal(expired(f, &a, T0 + 1000 + GRACE, "other.example.test"), 1);
    assert_int_equal(es_store_route_release(&f->a, "other.example.test", TID), 0);
    assert_int_equal(es_live_forget(&a, TID, "other.example.test"), 0);
    assert_int_equal(
        q_int(f->raw, "SELECT count(*) FROM holds WHERE hostname=?", "other.example.test"), 0);

    /* A clean exit removes the instance's rows at once; the holds stay (the
     * grace runs from them after every edge restarted). */
    es_live_close(&a);
    assert_int_equal(q_int(f->raw, "SELECT count(*) FROM instances WHERE id=?", "aaaa"), 0);
    assert_int_equal(q_int(f->raw, "SELECT count(*) FROM links WHERE instance=?", "aaaa"), 0);
    assert_int_equal(q_int(f->raw, "SELECT count(*) FROM names WHERE instance=?", "aaaa"), 0);
    assert_true(q_int(f->raw, "SELECT count(*) FROM holds", NULL) > 0);
    assert_int_equal(es_live_conns(&r, T0 + 2600, &c, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(c[0].instance, "bbbb");
    assert_string_equal(c[1].instance, "bbbb");
    free(c);
    assert_int_equal(es_live_edges(&r, T0 + 2600, addrs, 8, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(addrs[0], "127.0.0.2:7844");
    assert_int_equal(es_live_held_elsewhere(&b, TID, "fresh.example.test", T0 + 2600), 0);
    /* fresh: held last at T0 + 2200, by nobody now; app: held by b. */
    assert_int_equal(expired(f, &b, T0 + 2200 + GRACE - 1, NULL), 0);
    assert_int_equal(es_live_heartbeat(&b, &self_b, lb, 2, T0 + 2200 + GRACE), 0);
    assert_int_equal(expired(f, &b, T0 + 2200 + GRACE, "fresh.example.test"), 1);

    /* A stale instance is ignored, then purged by the next beat of anyone. */
    struct es_live cc;
    assert_int_equal(es_live_open(&cc, pg_url(), "cccc", T0 + 3000, why, sizeof(why)), 0);
    assert_int_equal(es_live_heartbeat(&cc, &self_a, la, 1, T0 + 6000), 0);
    assert_int_equal(es_live_conns(&r, T0 + 6000 + ES_LIVE_STALE_MS + 1, &c, &n), 0);
    assert_int_equal(n, 0); /* b went stale too */
    free(c);
    assert_int_equal(es_live_heartbeat(&b, &self_b, NULL, 0, T0 + 6000 + ES_LIVE_STALE_MS + 1), 0);
    assert_int_equal(q_int(f->raw, "SELECT count(*) FROM instances", NULL), 1);
    assert_int_equal(q_int(f->raw, "SELECT count(*) FROM links", NULL), 0);
    /* cc comes back (it was only frozen): its beat puts it back. */
    assert_int_equal(es_live_heartbeat(&cc, &self_a, la, 1, T0 + 12000), 0);
    assert_int_equal(q_int(f->raw, "SELECT count(*) FROM links WHERE instance=?", "cccc"), 1);
    es_live_close(&cc);
    es_live_close(&b);
    es_live_close(&r);
    assert_int_equal(q_int(f->raw, "SELECT count(*) FROM instances", NULL), 0);
}

/* An unreachable server: the live view refuses to open, typed. */
static void test_live_open_unreachable(void **state)
{
    (void)state;
    if (!pg_url())
        skip();
    struct es_live lv;
    char why[512] = "";
    assert_int_equal(
        es_live_open(&lv, "postgres://edge@127.0.0.1:1/edge", "aaaa", T0, why, sizeof(why)),
        PX_ERR_UNAVAILABLE);
    assert_null(lv.db);
    es_live_close(&lv);
    struct es_store st;
    assert_int_equal(es_store_open(&st, "postgres://edge@127.0.0.1:1/edge", why, sizeof(why)),
                     PX_ERR_UNAVAILABLE);
    assert_null(st.db);
}

#define E(fn) cmocka_unit_test_setup_teardown(fn, setup_empty, teardown)
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
#define T2(fn) cmocka_unit_test_setup_teardown(fn, setup_two, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        E(test_migrate_empty_then_noop),
        E(test_open_refuses_version_zero_table),
        T(test_newer_schema_refused),
        E(test_concurrent_migrations_schema_migrations_race),
        T(test_tunnels),
        T(test_delete_name_like_other_id_deletes_one),
        cmocka_unit_test(test_delete_name_like_other_id_deletes_one_sqlite),
        T(test_kv),
        T(test_indexed_overlap_agrees_with_px_host_overlap),
        T(test_route_claims),
        T(test_route_claim_race),
        T2(test_change_notices),
        T2(test_noop_write_notifies_nobody),
        T(test_live_tables_do_not_notify),
        T(test_outage_fails_fast_and_comes_back),
        T(test_backend_terminated_comes_back),
        T(test_reconnect_to_silent_host_does_not_block),
        T(test_client_certs),
        T(test_client_cas_and_policies),
        T(test_signing_keys),
        T(test_signing_key_first_start_race),
        T(test_live_two_instances),
        cmocka_unit_test(test_live_open_unreachable),
    };
    return cmocka_run_group_tests_name("es_store_pg", tests, NULL, NULL);
}
