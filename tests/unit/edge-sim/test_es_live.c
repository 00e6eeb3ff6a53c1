/* es_live: two instances on one data dir in one process (each its own
 * SQLite connection, as two serves have), on a fake clock: who sees whose
 * connections, stale instances, a clean exit, and which routes are released
 * after the hostname grace. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "es_live.h"
#include "es_store.h"
#include "px_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TID "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define T0 1800000000000LL /* the fake clock's start, ms */
#define GRACE 3000LL

struct fx {
    char dir[64];
    struct es_store st;
    struct es_live a, b;
};

static const struct es_live_self self_a = {"127.0.0.1:7844", "127.0.0.1:8443", "127.0.0.1:7845", 1};
static const struct es_live_self self_b = {"127.0.0.2:7844", "127.0.0.2:8443", "127.0.0.2:7845", 2};

static void rm_dir(const char *dir)
{
    const char *files[] = {"edge.db", "edge.db-wal", "edge.db-shm",
                           "live.db", "live.db-wal", "live.db-shm"};
    char p[128];
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/es-live-XXXXXX");
    if (!f || !mkdtemp(f->dir))
        return -1;
    char why[700] = "";
    struct es_tunnel_rec t = {.id = TID, .name = "home"};
    if (es_store_open(&f->st, f->dir, why, sizeof(why)) != 0 ||
        es_store_tunnel_add(&f->st, &t) != 0 ||
        es_live_open(&f->a, f->dir, "aaaa", T0, why, sizeof(why)) != 0 ||
        es_live_open(&f->b, f->dir, "bbbb", T0 + 100, why, sizeof(why)) != 0) {
        fprintf(stderr, "setup: %s\n", why);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    es_live_close(&f->a);
    es_live_close(&f->b);
    es_store_close(&f->st);
    rm_dir(f->dir);
    free(f);
    return 0;
}

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

static size_t count_conns(struct es_live *lv, long long now, const char *instance)
{
    struct es_live_conn *c;
    size_t n, k = 0;
    assert_int_equal(es_live_conns(lv, now, &c, &n), 0);
    for (size_t i = 0; i < n; i++)
        k += !instance || strcmp(c[i].instance, instance) == 0;
    free(c);
    return k;
}

static void test_two_instances_see_each_other(void **state)
{
    struct fx *f = *state;
    const char *names[] = {"app.example.test"};
    struct es_link_info la[] = {link_info("c0", "proc1", 0, names, 1),
                                link_info("c2", "proc1", 2, names, 1)};
    struct es_link_info lb[] = {link_info("c1", "proc1", 1, names, 1),
                                link_info("c9", "", -1, NULL, 0)};
    assert_int_equal(es_live_heartbeat(&f->a, &self_a, la, 2, T0 + 1000), 0);
    assert_int_equal(es_live_heartbeat(&f->b, &self_b, lb, 2, T0 + 1100), 0);

    /* Either instance reads all four, instance a's first (started first). */
    struct es_live_conn *c;
    size_t n;
    assert_int_equal(es_live_conns(&f->b, T0 + 1200, &c, &n), 0);
    assert_int_equal(n, 4);
    assert_string_equal(c[0].instance, "aaaa");
    assert_string_equal(c[0].edge, "127.0.0.1:7844");
    assert_string_equal(c[0].conn_id, "c0");
    assert_string_equal(c[0].connector, "proc1");
    assert_int_equal(c[0].conn_index, 0);
    assert_string_equal(c[0].dialed, "edge.example:7844");
    assert_string_equal(c[0].address, "192.0.2.1");
    assert_string_equal(c[0].agent, "connector/1");
    assert_int_equal(c[0].since, T0 / 1000);
    assert_string_equal(c[1].conn_id, "c2");
    assert_string_equal(c[2].edge, "127.0.0.2:7844");
    assert_string_equal(c[2].connector, ""); /* an older connector says nothing */
    assert_int_equal(c[2].conn_index, -1);
    assert_string_equal(c[3].conn_id, "c1");
    free(c);

    /* A heartbeat replaces the instance's rows: c2 is gone. */
    assert_int_equal(es_live_heartbeat(&f->a, &self_a, la, 1, T0 + 2000), 0);
    assert_int_equal(count_conns(&f->b, T0 + 2000, "aaaa"), 1);

    char addrs[8][301];
    assert_int_equal(es_live_edges(&f->b, T0 + 2000, addrs, 8, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(addrs[0], "127.0.0.1:7844");
    assert_string_equal(addrs[1], "127.0.0.2:7844");
    assert_int_equal(es_live_edges(&f->b, T0 + 2000, addrs, 1, &n), 0);
    assert_int_equal(n, 1);

    /* A clean exit removes a's rows at once. */
    es_live_close(&f->a);
    assert_int_equal(count_conns(&f->b, T0 + 2100, NULL), 2);
    assert_int_equal(es_live_edges(&f->b, T0 + 2100, addrs, 8, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(addrs[0], "127.0.0.2:7844");
}

static void test_stale_instance_ignored_then_purged(void **state)
{
    struct fx *f = *state;
    const char *names[] = {"app.example.test"};
    struct es_link_info l = link_info("c0", "proc1", 0, names, 1);
    assert_int_equal(es_live_heartbeat(&f->a, &self_a, &l, 1, T0 + 1000), 0);
    assert_int_equal(es_live_heartbeat(&f->b, &self_b, NULL, 0, T0 + 1000), 0);
    /* a stops beating (killed -9, frozen): 5 s later nobody counts it. */
    assert_int_equal(count_conns(&f->b, T0 + 1000 + ES_LIVE_STALE_MS, NULL), 1);
    assert_int_equal(count_conns(&f->b, T0 + 1001 + ES_LIVE_STALE_MS, NULL), 0);
    /* b's next beat purges it from the file. */
    assert_int_equal(es_live_heartbeat(&f->b, &self_b, NULL, 0, T0 + 7000), 0);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(f->b.db, "SELECT count(*) FROM instances", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 1);
    sqlite3_finalize(st);
    /* a comes back (it was only frozen): its beat puts it back. */
    assert_int_equal(es_live_heartbeat(&f->a, &self_a, &l, 1, T0 + 8000), 0);
    assert_int_equal(count_conns(&f->b, T0 + 8000, "aaaa"), 1);
}

/* The routes es_live_expired names for instance lv at now. */
static size_t expired(struct fx *f, struct es_live *lv, long long now, const char *want)
{
    struct es_live_expired *e;
    size_t n;
    assert_int_equal(es_live_expired(lv, &f->st, now, GRACE, &e, &n), 0);
    if (want) {
        assert_int_equal(n, 1);
        assert_string_equal(e[0].hostname, want);
        assert_string_equal(e[0].tunnel_id, TID);
    }
    free(e);
    return n;
}

static void test_release_after_grace(void **state)
{
    struct fx *f = *state;
    assert_int_equal(es_store_route_claim(&f->st, "kept.example.test", TID, NULL), 0);
    assert_int_equal(es_store_route_claim(&f->st, "dropped.example.test", TID, NULL), 0);
    assert_int_equal(es_store_route_claim(&f->st, "*.wild.example.test", TID, NULL), 0);
    /* b's connection holds kept and the wildcard; dropped was registered
     * by a connection that closed at T0 + 1000. */
    const char *both[] = {"kept.example.test", "dropped.example.test"};
    const char *kept[] = {"kept.example.test", "*.wild.example.test"};
    struct es_link_info l = link_info("c0", "proc1", 0, both, 2);
    assert_int_equal(es_live_heartbeat(&f->b, &self_b, &l, 1, T0 + 1000), 0);
    l.names = kept;
    for (long long t = T0 + 2000; t <= T0 + 4000; t += 1000)
        assert_int_equal(es_live_heartbeat(&f->b, &self_b, &l, 1, t), 0);
    assert_int_equal(es_live_heartbeat(&f->a, &self_a, NULL, 0, T0 + 4000), 0);
    /* dropped: last held at T0 + 1000, so free from T0 + 4000 on. */
    assert_int_equal(expired(f, &f->a, T0 + 3999, NULL), 0);
    assert_int_equal(expired(f, &f->a, T0 + 4000, "dropped.example.test"), 1);
    assert_int_equal(expired(f, &f->b, T0 + 4000, "dropped.example.test"), 1);
    /* Released (by a; b may try too: a route deleted twice is deleted once). */
    assert_int_equal(es_store_route_release(&f->st, "dropped.example.test", TID), 0);
    assert_int_equal(es_live_forget(&f->a, TID, "dropped.example.test"), 0);
    assert_int_equal(es_store_route_release(&f->st, "dropped.example.test", TID), 0);
    assert_int_equal(expired(f, &f->b, T0 + 4000, NULL), 0);

    /* While b's connection is live, kept stays, however long it lasts. */
    assert_int_equal(es_live_heartbeat(&f->b, &self_b, &l, 1, T0 + 60000), 0);
    assert_int_equal(es_live_heartbeat(&f->a, &self_a, NULL, 0, T0 + 60000), 0);
    assert_int_equal(expired(f, &f->a, T0 + 60000, NULL), 0);

    /* b dies without a word: its rows go stale at +5 s, the names' grace
     * runs from their last hold (T0 + 60000). */
    assert_int_equal(es_live_heartbeat(&f->a, &self_a, NULL, 0, T0 + 62000), 0);
    assert_int_equal(expired(f, &f->a, T0 + 62000, NULL), 0); /* b still live */
    assert_int_equal(es_live_heartbeat(&f->a, &self_a, NULL, 0, T0 + 66000), 0);
    assert_int_equal(expired(f, &f->a, T0 + 62999, NULL), 0);
    assert_int_equal(expired(f, &f->a, T0 + 66000, NULL), 2);
}

/* After every edge restarted, a name never held since (or whose hold
 * records were lost) gets the grace from the instance's own start. */
static void test_grace_counts_from_start(void **state)
{
    struct fx *f = *state;
    assert_int_equal(es_store_route_claim(&f->st, "old.example.test", TID, NULL), 0);
    assert_int_equal(es_live_heartbeat(&f->a, &self_a, NULL, 0, T0 + 10), 0);
    assert_int_equal(expired(f, &f->a, T0 + GRACE - 1, NULL), 0);
    assert_int_equal(expired(f, &f->a, T0 + GRACE, "old.example.test"), 1);
    /* b started 100 ms later: 100 ms more for it. */
    assert_int_equal(expired(f, &f->b, T0 + GRACE, NULL), 0);
    assert_int_equal(expired(f, &f->b, T0 + GRACE + 100, "old.example.test"), 1);
    struct es_live_expired *e;
    size_t n;
    assert_int_equal(es_live_expired(&f->a, &f->st, T0 + GRACE, GRACE, &e, &n), 0);
    assert_int_equal(e[0].last_held_ms, 0);
    free(e);
}

/* Rows another program wrote (oversized or missing text, a bogus
 * instance) are read without overflowing or crashing. */
static void test_foreign_rows(void **state)
{
    struct fx *f = *state;
    char big[2000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(es_live_heartbeat(&f->a, &self_a, NULL, 0, T0 + 1000), 0);
    sqlite3_stmt *st;
    assert_int_equal(
        sqlite3_prepare_v2(f->a.db, "INSERT INTO links VALUES('aaaa',?1,?1,?1,?1,?1,99999,?1,-5)",
                           -1, &st, NULL),
        SQLITE_OK);
    sqlite3_bind_text(st, 1, big, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    assert_int_equal(
        sqlite3_exec(f->a.db, "INSERT INTO instances VALUES('zz','', '', '', 0, 0, 99999999999999)",
                     NULL, NULL, NULL),
        SQLITE_OK);
    struct es_live_conn *c;
    size_t n;
    assert_int_equal(es_live_conns(&f->b, T0 + 1000, &c, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(strlen(c[0].connector), PX_CTL_MAX_CONNECTOR_ID);
    assert_int_equal(strlen(c[0].conn_id), 16);
    free(c);
    char addrs[8][301];
    assert_int_equal(es_live_edges(&f->b, T0 + 1000, addrs, 8, &n), 0);
    assert_int_equal(n, 1); /* the instance with no address is skipped */
}

static void test_open_errors(void **state)
{
    (void)state;
    struct es_live lv;
    char why[700] = "";
    assert_int_equal(es_live_open(&lv, "/nonexistent/dir", "aaaa", T0, why, sizeof(why)),
                     PX_ERR_DB);
    assert_non_null(strstr(why, "live.db"));
    assert_null(lv.db);
    assert_int_equal(es_live_open(&lv, "/tmp", "", T0, why, sizeof(why)), PX_ERR_INVAL);
    assert_int_equal(es_live_open(&lv, "/tmp", "0123456789abcdef0", T0, why, sizeof(why)),
                     PX_ERR_INVAL);
    es_live_close(&lv); /* a failed open leaves nothing to close */
    /* A reader writes no heartbeat. */
    struct fx *f = *state;
    struct es_live r;
    assert_int_equal(es_live_open(&r, f->dir, NULL, T0, why, sizeof(why)), 0);
    assert_int_equal(es_live_heartbeat(&r, &self_a, NULL, 0, T0), PX_ERR_INVAL);
    es_live_close(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_two_instances_see_each_other, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_instance_ignored_then_purged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release_after_grace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grace_counts_from_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
