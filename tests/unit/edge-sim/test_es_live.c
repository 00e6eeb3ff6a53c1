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
#include "es_text.h"
#include "px_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
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
    assert_int_equal(sqlite3_prepare_v2(((sqlite3 *)es_sql_sqlite_handle(f->b.db)),
                                        "SELECT count(*) FROM instances", -1, &st, NULL),
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
        sqlite3_prepare_v2(((sqlite3 *)es_sql_sqlite_handle(f->a.db)),
                           "INSERT INTO links VALUES('aaaa',?1,?1,?1,?1,?1,99999,?1,-5)", -1, &st,
                           NULL),
        SQLITE_OK);
    sqlite3_bind_text(st, 1, big, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    assert_int_equal(
        sqlite3_exec(((sqlite3 *)es_sql_sqlite_handle(f->a.db)),
                     "INSERT INTO instances VALUES('zz','', '', '', 0, 0, 99999999999999)", NULL,
                     NULL, NULL),
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

/* Defect: edge a writes a route at REGISTER, but the name reached live.db
 * only on a's next heartbeat; edge b, up longer than the grace, counted a
 * new name's grace from its own start and released a's fresh route. The
 * registration now records the hold (and a's name row) before it is
 * answered. */
static void test_register_hold_before_beat(void **state)
{
    struct fx *f = *state;
    long long now = T0 + 100 * GRACE; /* b has been up far longer than the grace */
    assert_int_equal(es_live_heartbeat(&f->a, &self_a, NULL, 0, now - 500), 0);
    assert_int_equal(es_live_heartbeat(&f->b, &self_b, NULL, 0, now - 200), 0);
    /* Without a hold, b would release a route it never saw held. */
    assert_int_equal(es_store_route_claim(&f->st, "orphan.example.test", TID, NULL), 0);
    assert_int_equal(expired(f, &f->b, now, "orphan.example.test"), 1);
    assert_int_equal(es_store_route_release(&f->st, "orphan.example.test", TID), 0);

    /* a's connection c7 registers new.example.test at now: route, then hold. */
    const char *names[] = {"new.example.test"};
    assert_int_equal(es_store_route_claim(&f->st, "new.example.test", TID, NULL), 0);
    assert_int_equal(es_live_hold(&f->a, "c7", TID, names, 1, now), 0);
    /* b's sweeps before a's next beat: held now (a's name row), not expired. */
    assert_int_equal(expired(f, &f->b, now, NULL), 0);
    assert_int_equal(expired(f, &f->b, now + 999, NULL), 0);
    assert_int_equal(es_live_held_elsewhere(&f->b, TID, "new.example.test", now), 1);
    /* a's beat lists it as usual; a second hold repeats no row. */
    assert_int_equal(es_live_hold(&f->a, "c7", TID, names, 1, now + 10), 0);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(((sqlite3 *)es_sql_sqlite_handle(f->b.db)),
                                        "SELECT count(*) FROM names", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 1);
    sqlite3_finalize(st);
    struct es_link_info l = link_info("c7", "proc1", 0, names, 1);
    assert_int_equal(es_live_heartbeat(&f->a, &self_a, &l, 1, now + 1000), 0);
    assert_int_equal(expired(f, &f->b, now + 1000, NULL), 0);

    /* A hold before the instance's first beat (no instance row yet) still
     * sets last_held: the grace runs from the registration. */
    struct es_live c;
    char why[700] = "";
    const char *fresh[] = {"fresh.example.test"};
    assert_int_equal(es_live_open(&c, f->dir, "cccc", now, why, sizeof(why)), 0);
    assert_int_equal(es_store_route_claim(&f->st, "fresh.example.test", TID, NULL), 0);
    assert_int_equal(es_live_hold(&c, "c8", TID, fresh, 1, now + 2000), 0);
    assert_int_equal(expired(f, &f->b, now + 2000 + GRACE - 1, NULL), 0);
    assert_int_equal(es_live_heartbeat(&f->a, &self_a, &l, 1, now + 2000 + GRACE), 0);
    assert_int_equal(expired(f, &f->b, now + 2000 + GRACE, "fresh.example.test"), 1);
    es_live_close(&c);
    /* A reader records nothing. */
    struct es_live r;
    assert_int_equal(es_live_open(&r, f->dir, NULL, now, why, sizeof(why)), 0);
    assert_int_equal(es_live_hold(&r, "c9", TID, fresh, 1, now), PX_ERR_INVAL);
    es_live_close(&r);
}

/* Defect: UNREGISTER released a name that a connection at another edge
 * still served (only this edge's links were looked at).
 * es_live_held_elsewhere tells the edge about the others. */
static void test_unregister_held_elsewhere(void **state)
{
    struct fx *f = *state;
    const char *names[] = {"app.example.test"};
    struct es_link_info l = link_info("c0", "proc1", 0, names, 1);
    assert_int_equal(es_live_heartbeat(&f->a, &self_a, &l, 1, T0 + 1000), 0);
    assert_int_equal(es_live_heartbeat(&f->b, &self_b, NULL, 0, T0 + 1000), 0);
    /* b asks: a's connection serves it (names compare in lower case). */
    assert_int_equal(es_live_held_elsewhere(&f->b, TID, "app.example.test", T0 + 1000), 1);
    assert_int_equal(es_live_held_elsewhere(&f->b, TID, "App.Example.TEST", T0 + 1000), 1);
    assert_int_equal(es_live_held_elsewhere(&f->b, TID, "other.example.test", T0 + 1000), 0);
    assert_int_equal(es_live_held_elsewhere(&f->b, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
                                            "app.example.test", T0 + 1000),
                     0);
    /* a itself: its own links are not "elsewhere" (es_link looks at them). */
    assert_int_equal(es_live_held_elsewhere(&f->a, TID, "app.example.test", T0 + 1000), 0);
    /* a goes stale: nobody holds it elsewhere any more. */
    assert_int_equal(
        es_live_held_elsewhere(&f->b, TID, "app.example.test", T0 + 1001 + ES_LIVE_STALE_MS), 0);
    /* a's connection stops registering it. */
    assert_int_equal(es_live_heartbeat(&f->a, &self_a, NULL, 0, T0 + 2000), 0);
    assert_int_equal(es_live_held_elsewhere(&f->b, TID, "app.example.test", T0 + 2000), 0);
}

/* Defect: es_live_open (and es_store_open) built the path of a raw
 * --data-dir into a fixed buffer unchecked: a long dir opened a file of a
 * cut path. Now a clear refusal. */
static void test_open_path_too_long(void **state)
{
    (void)state;
    char dir[1000], why[700] = "";
    memset(dir, 'd', sizeof(dir) - 1);
    dir[0] = '/';
    dir[sizeof(dir) - 1] = '\0';
    struct es_live lv;
    assert_int_equal(es_live_open(&lv, dir, "aaaa", T0, why, sizeof(why)), PX_ERR_INVAL);
    assert_non_null(strstr(why, "too long"));
    assert_null(lv.db);
    struct es_store st;
    why[0] = '\0';
    assert_int_equal(es_store_open(&st, dir, why, sizeof(why)), PX_ERR_INVAL);
    assert_non_null(strstr(why, "too long"));
    assert_null(st.db);
}

/* Defect: an agent cut mid-UTF-8 (REGISTER's agent into 64 bytes, or a row
 * of live.db as another program left it) made the admin API's json_pack
 * fail and the connector vanish. Text is kept only as a valid UTF-8 prefix,
 * when copied from REGISTER and when read back from disk. */
static void test_text_cut_at_character(void **state)
{
    struct fx *f = *state;
    char out[65], in[80];
    /* 63 ASCII + a 2-byte character: only the 63 fit. */
    memset(in, 'a', 63);
    memcpy(in + 63, "\xc3\xa9", 3);
    es_text_copy(out, sizeof(out), in);
    assert_int_equal(strlen(out), 63);
    char whole[66];
    es_text_copy(whole, sizeof(whole), in); /* room for it: kept whole */
    assert_int_equal(strlen(whole), 65);
    assert_int_equal(es_text_prefix("ok\xff tail", 100), 2);      /* invalid byte */
    assert_int_equal(es_text_prefix("\xe2\x82", 100), 0);         /* cut sequence */
    assert_int_equal(es_text_prefix("\xc0\xaf", 100), 0);         /* overlong */
    assert_int_equal(es_text_prefix("\xed\xa0\x80", 100), 0);     /* surrogate */
    assert_int_equal(es_text_prefix("\xf4\x90\x80\x80", 100), 0); /* > U+10FFFF */
    assert_int_equal(es_text_prefix("\xe2\x82\xac\xf0\x9f\x98\x80", 100), 7);
    es_text_copy(out, sizeof(out), NULL);
    assert_string_equal(out, "");

    /* A row with an agent cut mid-character, and one with bytes that are no
     * UTF-8 at all, read back as valid prefixes. */
    assert_int_equal(es_live_heartbeat(&f->a, &self_a, NULL, 0, T0 + 1000), 0);
    in[64] = '\0'; /* 63 'a' + half of the character */
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(((sqlite3 *)es_sql_sqlite_handle(f->a.db)),
                                        "INSERT INTO links VALUES('aaaa',?2,'" TID
                                        "','p',?1,'192.0.2.1',0,'e',1)",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, in, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, "c1", -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, "x\xff\xfey", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, "c2", -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    struct es_live_conn *c;
    size_t n;
    assert_int_equal(es_live_conns(&f->b, T0 + 1000, &c, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(c[0].conn_id, "c1");
    assert_int_equal(strlen(c[0].agent), 63);
    assert_string_equal(c[1].agent, "x");
    free(c);
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
        cmocka_unit_test_setup_teardown(test_register_hold_before_beat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unregister_held_elsewhere, setup, teardown),
        cmocka_unit_test(test_open_path_too_long),
        cmocka_unit_test_setup_teardown(test_text_cut_at_character, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
