/* es_registry: hostname routing over the store (no live links involved). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "es_registry.h"
#include "es_store.h"
#include "px_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sqlite3.h>
#include <unistd.h>

#define ID_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define ID_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define ID_C "cccccccccccccccccccccccccccccccc"

struct fx {
    char dir[64];
    struct es_store st;
    struct es_registry reg;
};

static void add(struct es_store *st, const char *id, const char *name, const char *p0,
                const char *p1)
{
    struct es_tunnel_rec t;
    memset(&t, 0, sizeof(t));
    snprintf(t.id, sizeof(t.id), "%s", id);
    snprintf(t.name, sizeof(t.name), "%s", name);
    if (p0)
        t.patterns[t.n_patterns++] = (char *)p0;
    if (p1)
        t.patterns[t.n_patterns++] = (char *)p1;
    assert_int_equal(es_store_tunnel_add(st, &t), 0);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/es-registry-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    char why[256];
    if (es_store_open(&f->st, f->dir, why, sizeof(why)) != 0)
        return -1;
    /* A: limited to *.example.com and one exact name; B: anything; C: a
     * narrower wildcard. */
    add(&f->st, ID_A, "alpha", "*.example.com", "exact.example.org");
    add(&f->st, ID_B, "bravo", NULL, NULL);
    add(&f->st, ID_C, "charlie", "*.deep.example.com", NULL);
    if (es_registry_reload(&f->reg, &f->st) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    es_registry_cleanup(&f->reg);
    es_store_close(&f->st);
    const char *files[] = {"edge.db", "edge.db-wal", "edge.db-shm"};
    char p[128];
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s/%s", f->dir, files[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static struct es_tunnel *tun(struct fx *f, const char *id)
{
    struct es_tunnel *t = es_registry_tunnel(&f->reg, id);
    assert_non_null(t);
    return t;
}

static int claim(struct fx *f, const char *id, const char *host, char *reason, size_t rlen)
{
    reason[0] = '\0';
    return es_registry_claim(&f->reg, &f->st, tun(f, id), host, reason, rlen);
}

static const char *lookup_id(struct fx *f, const char *host)
{
    struct es_tunnel *t = es_registry_lookup(&f->reg, host);
    return t ? t->id : NULL;
}

static void test_reload_from_store(void **state)
{
    struct fx *f = *state;
    struct es_tunnel *a = tun(f, ID_A);
    assert_string_equal(a->name, "alpha");
    assert_int_equal(a->n_patterns, 2);
    assert_string_equal(a->patterns[0], "*.example.com");
    assert_int_equal(tun(f, ID_B)->n_patterns, 0);
    assert_null(es_registry_tunnel(&f->reg, "dddddddddddddddddddddddddddddddd"));
    assert_null(f->reg.routes);
    /* Reloading again is idempotent (same objects kept). */
    assert_int_equal(es_registry_reload(&f->reg, &f->st), 0);
    assert_ptr_equal(tun(f, ID_A), a);
}

/* Routes as an older edge stored them, before overlapping claims of
 * different tunnels were refused: lookup must still prefer the most specific. */
static void legacy_route(struct fx *f, const char *host, const char *id)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "INSERT INTO routes(hostname,tunnel_id) VALUES('%s','%s')", host,
             id);
    assert_int_equal(
        sqlite3_exec(((sqlite3 *)es_sql_sqlite_handle(f->st.db)), sql, NULL, NULL, NULL),
        SQLITE_OK);
}

static void test_lookup_exact_and_wildcard(void **state)
{
    struct fx *f = *state;
    legacy_route(f, "*.example.com", ID_A);
    legacy_route(f, "app.example.com", ID_B);
    legacy_route(f, "*.deep.example.com", ID_C);
    assert_int_equal(es_registry_reload(&f->reg, &f->st), 0);

    /* Exact beats any wildcard. */
    assert_string_equal(lookup_id(f, "app.example.com"), ID_B);
    /* Wildcard covers other names and deeper ones. */
    assert_string_equal(lookup_id(f, "other.example.com"), ID_A);
    assert_string_equal(lookup_id(f, "x.y.example.com"), ID_A);
    /* The longest wildcard wins. */
    assert_string_equal(lookup_id(f, "x.deep.example.com"), ID_C);
    assert_string_equal(lookup_id(f, "a.b.deep.example.com"), ID_C);
    /* "*.deep.example.com" does not cover deep.example.com itself, but
     * "*.example.com" does. */
    assert_string_equal(lookup_id(f, "deep.example.com"), ID_A);
    /* Bare suffix and unrelated names have no route. */
    assert_null(lookup_id(f, "example.com"));
    assert_null(lookup_id(f, "example.org"));
    assert_null(lookup_id(f, "notexample.com"));
    assert_null(lookup_id(f, ""));
}

static void test_lookup_own_overlapping_claims(void **state)
{
    struct fx *f = *state;
    char why[160];
    /* One tunnel may hold a wildcard and names under it. */
    assert_int_equal(claim(f, ID_A, "*.example.com", why, sizeof(why)), 0);
    assert_int_equal(claim(f, ID_A, "app.example.com", why, sizeof(why)), 0);
    assert_int_equal(claim(f, ID_A, "*.sub.example.com", why, sizeof(why)), 0);
    assert_string_equal(lookup_id(f, "app.example.com"), ID_A);
    assert_string_equal(lookup_id(f, "x.sub.example.com"), ID_A);
    assert_string_equal(lookup_id(f, "x.example.com"), ID_A);
}

static void test_lookup_after_reload(void **state)
{
    struct fx *f = *state;
    char why[160];
    assert_int_equal(claim(f, ID_A, "*.sub.example.com", why, sizeof(why)), 0);
    assert_int_equal(claim(f, ID_C, "*.deep.example.com", why, sizeof(why)), 0);
    legacy_route(f, "*.example.com", ID_B);
    /* Routes are rebuilt from the store, same answers. */
    assert_int_equal(es_registry_reload(&f->reg, &f->st), 0);
    assert_string_equal(lookup_id(f, "x.deep.example.com"), ID_C);
    assert_string_equal(lookup_id(f, "x.sub.example.com"), ID_A);
    assert_string_equal(lookup_id(f, "x.example.com"), ID_B);
}

/* Defect 5 (subdomain takeover): a tunnel free to claim anything registered
 * victim.example.com under alpha's *.example.com and, an exact name beating
 * a wildcard, took its traffic. Overlaps are refused both ways, and the
 * reason names what is held and by which tunnel. */
static void test_claim_overlap_refused(void **state)
{
    struct fx *f = *state;
    char why[160];
    assert_int_equal(claim(f, ID_C, "x.deep.example.com", why, sizeof(why)), 0);
    /* A wildcard over another tunnel's exact name. */
    assert_int_equal(claim(f, ID_A, "*.example.com", why, sizeof(why)), PX_ERR_EXISTS);
    assert_string_equal(why, "overlaps x.deep.example.com held by tunnel charlie");
    /* A narrower one of A's own is fine. */
    assert_int_equal(claim(f, ID_A, "*.apps.example.com", why, sizeof(why)), 0);
    /* An exact name, or a narrower wildcard, under another tunnel's wildcard. */
    const char *under[] = {"victim.apps.example.com", "a.b.apps.example.com",
                           "*.y.apps.example.com", "VICTIM.Apps.Example.COM"};
    for (size_t i = 0; i < sizeof(under) / sizeof(under[0]); i++) {
        int rc = claim(f, ID_B, under[i], why, sizeof(why));
        if (rc != PX_ERR_EXISTS)
            print_error("%s: %d (%s)\n", under[i], rc, why);
        assert_int_equal(rc, PX_ERR_EXISTS);
        assert_string_equal(why, "overlaps *.apps.example.com held by tunnel alpha");
    }
    /* The same pattern keeps its old wording. */
    assert_int_equal(claim(f, ID_B, "*.apps.example.com", why, sizeof(why)), PX_ERR_EXISTS);
    assert_string_equal(why, "held by another tunnel (alpha)");
    /* Nothing moved. */
    assert_string_equal(lookup_id(f, "victim.apps.example.com"), ID_A);
    assert_string_equal(lookup_id(f, "x.deep.example.com"), ID_C);
    /* Names beside the wildcard are free. */
    assert_int_equal(claim(f, ID_B, "apps.example.com", why, sizeof(why)), 0);
    assert_int_equal(claim(f, ID_B, "other.example.com", why, sizeof(why)), 0);
}

static void test_claim_refused_by_patterns(void **state)
{
    struct fx *f = *state;
    char why[160];
    /* Allowed for A: names under the wildcard, narrower wildcards, its exact name. */
    assert_int_equal(claim(f, ID_A, "app.example.com", why, sizeof(why)), 0);
    assert_int_equal(claim(f, ID_A, "a.b.example.com", why, sizeof(why)), 0);
    assert_int_equal(claim(f, ID_A, "*.sub.example.com", why, sizeof(why)), 0);
    assert_int_equal(claim(f, ID_A, "exact.example.org", why, sizeof(why)), 0);

    const char *refused[] = {"example.com",   "other.org", "x.exact.example.org",
                             "*.example.org", "*.com",     "example.com.evil.net"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        int rc = claim(f, ID_A, refused[i], why, sizeof(why));
        if (rc != PX_ERR_DENIED)
            print_error("%s: %d (%s)\n", refused[i], rc, why);
        assert_int_equal(rc, PX_ERR_DENIED);
        assert_non_null(strstr(why, "not allowed"));
        assert_non_null(strstr(why, "pattern"));
    }
    /* C may not widen its own wildcard. */
    assert_int_equal(claim(f, ID_C, "*.example.com", why, sizeof(why)), PX_ERR_DENIED);
    assert_int_equal(claim(f, ID_C, "deep.example.com", why, sizeof(why)), PX_ERR_DENIED);
    assert_null(lookup_id(f, "other.org"));
}

static void test_claim_invalid(void **state)
{
    struct fx *f = *state;
    char why[160];
    const char *bad[] = {"a..b", "*", "*.", "", "bad host", "x.example.com:443"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(claim(f, ID_B, bad[i], why, sizeof(why)), PX_ERR_INVAL);
        assert_non_null(strstr(why, "not a valid hostname"));
    }
}

static void test_claim_held_by_other(void **state)
{
    struct fx *f = *state;
    char why[160];
    assert_int_equal(claim(f, ID_A, "app.example.com", why, sizeof(why)), 0);
    assert_int_equal(claim(f, ID_A, "app.example.com", why, sizeof(why)), 0);
    assert_int_equal(claim(f, ID_B, "app.example.com", why, sizeof(why)), PX_ERR_EXISTS);
    /* The reason names the holder (by name, not by id). */
    assert_non_null(strstr(why, "held by another tunnel"));
    assert_non_null(strstr(why, "alpha"));
    assert_null(strstr(why, ID_A));
    assert_string_equal(lookup_id(f, "app.example.com"), ID_A);
    /* Only one route entry for the repeated claim. */
    int n = 0;
    for (struct es_route *r = f->reg.routes; r; r = r->next)
        n++;
    assert_int_equal(n, 1);
}

static void test_deleted_tunnel_vanishes(void **state)
{
    struct fx *f = *state;
    char why[160];
    assert_int_equal(claim(f, ID_C, "*.deep.example.com", why, sizeof(why)), 0);
    assert_int_equal(claim(f, ID_A, "*.example.com", why, sizeof(why)), PX_ERR_EXISTS);
    assert_string_equal(lookup_id(f, "x.deep.example.com"), ID_C);
    /* The CLI deletes C through its own connection. */
    struct es_store other;
    assert_int_equal(es_store_open(&other, f->dir, why, sizeof(why)), 0);
    assert_int_equal(es_store_tunnel_delete(&other, "charlie"), 0);
    es_store_close(&other);
    assert_int_equal(es_store_changed(&f->st), 1);
    assert_int_equal(es_registry_reload(&f->reg, &f->st), 0);
    assert_null(es_registry_tunnel(&f->reg, ID_C));
    /* Its wildcard is gone with it. */
    assert_null(lookup_id(f, "x.deep.example.com"));
    /* And the freed names can be claimed by another tunnel. */
    assert_int_equal(claim(f, ID_A, "*.example.com", why, sizeof(why)), 0);
    assert_string_equal(lookup_id(f, "x.deep.example.com"), ID_A);
}

/* bug: a connector registering between another process deleting its tunnel
 * and this edge's next store poll was refused with "edge storage error"
 * (the route's foreign key failed) and exited with the wrong words, instead
 * of hearing that its tunnel was deleted. */
static void test_claim_for_tunnel_deleted_elsewhere_says_deleted(void **state)
{
    struct fx *f = *state;
    char why[160];
    struct es_store other;
    assert_int_equal(es_store_open(&other, f->dir, why, sizeof(why)), 0);
    assert_int_equal(es_store_tunnel_delete(&other, "charlie"), 0);
    es_store_close(&other);
    /* No reload yet: the registry still knows charlie. */
    assert_int_equal(claim(f, ID_C, "late.deep.example.com", why, sizeof(why)), PX_ERR_NOT_FOUND);
    assert_string_equal(why, "this tunnel was deleted at the edge");
    assert_null(lookup_id(f, "late.deep.example.com"));
}

static void test_new_tunnel_appears(void **state)
{
    struct fx *f = *state;
    struct es_store other;
    char why[160];
    assert_int_equal(es_store_open(&other, f->dir, why, sizeof(why)), 0);
    add(&other, "dddddddddddddddddddddddddddddddd", "delta", NULL, NULL);
    es_store_close(&other);
    assert_int_equal(es_registry_reload(&f->reg, &f->st), 0);
    assert_string_equal(tun(f, "dddddddddddddddddddddddddddddddd")->name, "delta");
}

/* Hostnames are case-insensitive (RFC 4343): a claim in mixed case must
 * either be refused/normalised or route requests for the lowercase name (the
 * front normalises Host/SNI to lowercase), and in any case must not let a
 * second tunnel own the same name in another case. */
static void test_claim_case_insensitive(void **state)
{
    struct fx *f = *state;
    char why[160];
    int rc = claim(f, ID_A, "MiXed.Example.com", why, sizeof(why));
    if (rc == 0) {
        int rc_b = claim(f, ID_B, "mixed.example.com", why, sizeof(why));
        const char *owner = lookup_id(f, "mixed.example.com");
        if (rc_b != PX_ERR_EXISTS)
            print_error("a second tunnel claimed mixed.example.com (rc %d)\n", rc_b);
        if (!owner || strcmp(owner, ID_A) != 0)
            print_error("mixed.example.com routes to %s, not to the first claimant\n",
                        owner ? owner : "nothing");
        assert_int_equal(rc_b, PX_ERR_EXISTS);
        assert_non_null(owner);
        assert_string_equal(owner, ID_A);
    }
}

/* Defect: es_registry_reload freed the routes, then read them again; a
 * store failing between its two reads (a shared database going away) left
 * the edge with no route at all. Now a failed reload changes nothing. */
static void test_registry_reload_keeps_routes_when_the_store_fails(void **state)
{
    struct fx *f = *state;
    char why[256];
    struct es_tunnel *a = tun(f, ID_A);
    assert_int_equal(es_registry_claim(&f->reg, &f->st, a, "keep.example.com", why, sizeof(why)),
                     0);
    assert_int_equal(es_registry_reload(&f->reg, &f->st), 0);
    assert_ptr_equal(es_registry_lookup(&f->reg, "keep.example.com"), a);
    /* Either read failing: the routes table, then the tunnels table. */
    sqlite3 *db = es_sql_sqlite_handle(f->st.db);
    assert_int_equal(sqlite3_exec(db, "ALTER TABLE routes RENAME TO routes_gone", NULL, NULL, NULL),
                     SQLITE_OK);
    assert_true(es_registry_reload(&f->reg, &f->st) < 0);
    assert_ptr_equal(es_registry_lookup(&f->reg, "keep.example.com"), a);
    assert_int_equal(sqlite3_exec(db,
                                  "ALTER TABLE routes_gone RENAME TO routes;"
                                  "ALTER TABLE tunnels RENAME TO tunnels_gone",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_true(es_registry_reload(&f->reg, &f->st) < 0);
    assert_ptr_equal(es_registry_lookup(&f->reg, "keep.example.com"), a);
    assert_ptr_equal(es_registry_tunnel(&f->reg, ID_A), a);
    assert_int_equal(
        sqlite3_exec(db, "ALTER TABLE tunnels_gone RENAME TO tunnels", NULL, NULL, NULL),
        SQLITE_OK);
    assert_int_equal(es_registry_reload(&f->reg, &f->st), 0);
    assert_ptr_equal(es_registry_lookup(&f->reg, "keep.example.com"), a);
}

static const char *pattern(struct fx *f, const char *host)
{
    return es_registry_route_pattern(&f->reg, host);
}

/* Lookups go through hash indexes: the longest wildcard is found by trying
 * "*." + each suffix of the host, longest first. */
static void test_lookup_longest_of_nested_wildcards(void **state)
{
    struct fx *f = *state;
    legacy_route(f, "*.com", ID_A);
    legacy_route(f, "*.c.com", ID_B);
    legacy_route(f, "*.b.c.com", ID_C);
    legacy_route(f, "x.b.c.com", ID_A);
    assert_int_equal(es_registry_reload(&f->reg, &f->st), 0);
    assert_string_equal(lookup_id(f, "a.b.c.com"), ID_C);
    assert_string_equal(pattern(f, "a.b.c.com"), "*.b.c.com");
    assert_string_equal(lookup_id(f, "z.y.a.b.c.com"), ID_C);
    assert_string_equal(lookup_id(f, "b.c.com"), ID_B);
    assert_string_equal(pattern(f, "b.c.com"), "*.c.com");
    assert_string_equal(lookup_id(f, "q.c.com"), ID_B);
    assert_string_equal(lookup_id(f, "c.com"), ID_A);
    assert_string_equal(pattern(f, "c.com"), "*.com");
    assert_string_equal(lookup_id(f, "other.com"), ID_A);
    /* An exact name beats every wildcard covering it. */
    assert_string_equal(lookup_id(f, "x.b.c.com"), ID_A);
    assert_string_equal(pattern(f, "x.b.c.com"), "x.b.c.com");
    /* A name equal to a wildcard's text is that route, exactly. */
    assert_string_equal(lookup_id(f, "*.c.com"), ID_B);
    assert_string_equal(pattern(f, "*.c.com"), "*.c.com");
    assert_null(lookup_id(f, "com"));
    assert_null(pattern(f, "com"));
    assert_null(lookup_id(f, "a.b.c.org"));
}

static void test_wildcard_does_not_match_its_own_suffix(void **state)
{
    struct fx *f = *state;
    legacy_route(f, "*.b.com", ID_A);
    assert_int_equal(es_registry_reload(&f->reg, &f->st), 0);
    assert_null(lookup_id(f, "b.com"));
    assert_null(lookup_id(f, ".b.com"));
    assert_null(lookup_id(f, "xb.com"));
    assert_string_equal(lookup_id(f, "a.b.com"), ID_A);
    /* Any one character before ".b.com" is a name under it, as
     * px_host_match has it. */
    assert_string_equal(lookup_id(f, "..b.com"), ID_A);
}

/* A route whose tunnel is gone answers NULL, and a shorter wildcard does
 * not take over its names. */
static void test_route_to_missing_tunnel_yields_null(void **state)
{
    struct fx *f = *state;
    sqlite3 *db = es_sql_sqlite_handle(f->st.db);
    legacy_route(f, "*.example.com", ID_A);
    assert_int_equal(sqlite3_exec(db, "PRAGMA foreign_keys=OFF", NULL, NULL, NULL), SQLITE_OK);
    legacy_route(f, "*.ghost.example.com", "dddddddddddddddddddddddddddddddd");
    legacy_route(f, "exact.ghost.example.com", "dddddddddddddddddddddddddddddddd");
    assert_int_equal(sqlite3_exec(db, "PRAGMA foreign_keys=ON", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(es_registry_reload(&f->reg, &f->st), 0);
    assert_non_null(es_registry_route(&f->reg, "*.ghost.example.com"));
    assert_null(lookup_id(f, "x.ghost.example.com"));
    assert_null(pattern(f, "x.ghost.example.com"));
    assert_null(lookup_id(f, "exact.ghost.example.com"));
    assert_string_equal(lookup_id(f, "ghost.example.com"), ID_A);
    /* A tunnel deleted by another process, the store's routes going with
     * it: after the reload none of its names routes. */
    char why[160];
    assert_int_equal(claim(f, ID_C, "*.deep.example.com", why, sizeof(why)), PX_ERR_EXISTS);
    assert_int_equal(claim(f, ID_B, "b.example.org", why, sizeof(why)), 0);
    assert_string_equal(lookup_id(f, "b.example.org"), ID_B);
    struct es_store other;
    assert_int_equal(es_store_open(&other, f->dir, why, sizeof(why)), 0);
    assert_int_equal(es_store_tunnel_delete(&other, "bravo"), 0);
    es_store_close(&other);
    assert_int_equal(es_registry_reload(&f->reg, &f->st), 0);
    assert_null(es_registry_tunnel(&f->reg, ID_B));
    assert_null(lookup_id(f, "b.example.org"));
    assert_null(es_registry_route(&f->reg, "b.example.org"));
}

static size_t count_routes(struct fx *f)
{
    size_t n = 0;
    for (struct es_route *r = f->reg.routes; r; r = r->next)
        n++;
    return n;
}

static void test_claim_then_release_updates_lookups(void **state)
{
    struct fx *f = *state;
    char why[160];
    struct es_tunnel *a = tun(f, ID_A);
    assert_null(lookup_id(f, "x.rel.example.com"));
    assert_int_equal(claim(f, ID_A, "*.rel.example.com", why, sizeof(why)), 0);
    assert_int_equal(claim(f, ID_A, "X.Rel.example.com", why, sizeof(why)), 0);
    assert_int_equal(claim(f, ID_A, "y.example.com", why, sizeof(why)), 0);
    assert_int_equal(count_routes(f), 3);
    assert_string_equal(pattern(f, "x.rel.example.com"), "x.rel.example.com");
    assert_string_equal(pattern(f, "z.rel.example.com"), "*.rel.example.com");
    assert_string_equal(lookup_id(f, "y.example.com"), ID_A);

    /* Released in another case than claimed: names are case-insensitive. */
    assert_int_equal(es_registry_release(&f->reg, &f->st, a, "x.REL.example.com"), 0);
    assert_null(es_registry_route(&f->reg, "x.rel.example.com"));
    assert_string_equal(pattern(f, "x.rel.example.com"), "*.rel.example.com");
    /* Releasing the middle of the list, then what is not held, keeps the rest. */
    assert_int_equal(es_registry_release(&f->reg, &f->st, a, "*.rel.example.com"), 0);
    assert_int_equal(es_registry_release(&f->reg, &f->st, a, "never.example.com"), 0);
    assert_int_equal(count_routes(f), 1);
    assert_null(lookup_id(f, "x.rel.example.com"));
    assert_string_equal(lookup_id(f, "y.example.com"), ID_A);
    /* Another tunnel's release leaves a's route alone. */
    assert_int_equal(es_registry_release(&f->reg, &f->st, tun(f, ID_B), "y.example.com"), 0);
    assert_string_equal(lookup_id(f, "y.example.com"), ID_A);
    assert_int_equal(es_registry_release(&f->reg, &f->st, a, "y.example.com"), 0);
    assert_null(f->reg.routes);
    assert_null(lookup_id(f, "y.example.com"));
    /* The names are free for another tunnel, in memory and after a reload. */
    assert_int_equal(claim(f, ID_B, "x.rel.example.com", why, sizeof(why)), 0);
    assert_string_equal(lookup_id(f, "x.rel.example.com"), ID_B);
    assert_int_equal(es_registry_reload(&f->reg, &f->st), 0);
    assert_string_equal(lookup_id(f, "x.rel.example.com"), ID_B);
    assert_int_equal(count_routes(f), 1);
}

/* Many claims and releases through one registry: the index grows past its
 * first size, and every name keeps answering. */
static void test_claims_grow_the_index(void **state)
{
    struct fx *f = *state;
    char why[160], name[64];
    for (int i = 0; i < 500; i++) {
        snprintf(name, sizeof(name), "n%d.x%d.example.com", i, i % 7);
        assert_int_equal(claim(f, ID_B, name, why, sizeof(why)), 0);
    }
    for (int i = 0; i < 500; i += 2) {
        snprintf(name, sizeof(name), "n%d.x%d.example.com", i, i % 7);
        assert_int_equal(es_registry_release(&f->reg, &f->st, tun(f, ID_B), name), 0);
    }
    assert_int_equal(count_routes(f), 250);
    for (int i = 0; i < 500; i++) {
        snprintf(name, sizeof(name), "n%d.x%d.example.com", i, i % 7);
        if (i % 2)
            assert_string_equal(lookup_id(f, name), ID_B);
        else
            assert_null(lookup_id(f, name));
    }
}

/* The indexes must answer as the scan of every route did (the scan still
 * serves registries whose lists are set by hand): compared here on names
 * that differ in case, odd patterns a store may hold, and odd hosts. */
static void test_index_answers_as_the_scan(void **state)
{
    struct fx *f = *state;
    const char *routes[][2] = {
        {"*.example.com", ID_A},
        {"*.Example.COM", ID_B},
        {"app.example.com", ID_B},
        {"App.example.com", ID_C},
        {"*.deep.example.com", ID_C},
        {"*.a.deep.example.com", ID_A},
        {"*.com", ID_B},
        {"*abc", ID_A},
        {"*", ID_C},
        {"*.", ID_A},
        {"*..example.com", ID_C},
        {"*.MiXeD.org", ID_C},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        legacy_route(f, routes[i][0], routes[i][1]);
    /* Enough others that the index grows (its chains must keep their
     * order: newest first). */
    char filler[64];
    for (int i = 0; i < 300; i++) {
        snprintf(filler, sizeof(filler), "%s%d.filler.net", i % 2 ? "*." : "", i);
        legacy_route(f, filler, ID_B);
    }
    assert_int_equal(es_registry_reload(&f->reg, &f->st), 0);
    /* The same lists without indexes: es_registry_* scan them. */
    struct es_registry scan = {.tunnels = f->reg.tunnels, .routes = f->reg.routes};
    const char *labels[] = {"",    "x",   "app", "App",  "deep", "a",     "example", "Example",
                            "com", "COM", "*",   "*abc", "*ABC", "mixed", "org"};
    const size_t nl = sizeof(labels) / sizeof(labels[0]);
    char host[256];
    unsigned compared = 0;
    for (size_t i = 0; i < nl; i++)
        for (size_t j = 0; j < nl; j++)
            for (size_t k = 0; k < nl; k++)
                for (size_t m = 0; m < 3; m++) {
                    const char *sep = m == 0 ? "." : m == 1 ? ".." : "";
                    snprintf(host, sizeof(host), "%s.%s%s%s.%s", labels[i], labels[j], sep,
                             labels[k], m == 2 ? "com" : "example.com");
                    const char *want[] = {es_registry_route_pattern(&scan, host),
                                          es_registry_route_pattern(&scan, host + 1),
                                          es_registry_route_pattern(&scan, labels[k])};
                    const char *got[] = {pattern(f, host), pattern(f, host + 1),
                                         pattern(f, labels[k])};
                    for (size_t q = 0; q < 3; q++) {
                        if (want[q] != got[q])
                            print_error("%s: scan %s, index %s\n", host, want[q] ? want[q] : "-",
                                        got[q] ? got[q] : "-");
                        assert_ptr_equal(want[q], got[q]);
                        compared++;
                    }
                    assert_ptr_equal(es_registry_lookup(&scan, host),
                                     es_registry_lookup(&f->reg, host));
                }
    assert_true(compared > 10000);
    /* Spot checks of what the scan says, so both cannot be wrong alike:
     * the newest of two wildcards equal but for case wins (a reload lists
     * the routes the store returns last first). */
    const char *w = pattern(f, "q.example.com");
    assert_non_null(w);
    assert_int_equal(strcasecmp(w, "*.example.com"), 0);
    assert_string_equal(pattern(f, "App.example.com"), "App.example.com");
    assert_string_equal(pattern(f, "app.example.com"), "app.example.com");
    assert_string_equal(pattern(f, "x.MIXED.org"), "*.MiXeD.org");
    assert_string_equal(pattern(f, "*ABC"), "*abc");
    assert_string_equal(pattern(f, "x."), "*.");
    assert_string_equal(pattern(f, "*"), "*");
    assert_string_equal(pattern(f, "x.a.deep.example.com"), "*.a.deep.example.com");
}

/* Tests (fake_link) set the lists of a zeroed registry by hand: without an
 * index, lookups scan them. */
static void test_lookup_without_index(void **state)
{
    (void)state;
    struct es_tunnel t;
    struct es_route exact, wild;
    memset(&t, 0, sizeof(t));
    memset(&exact, 0, sizeof(exact));
    memset(&wild, 0, sizeof(wild));
    snprintf(t.id, sizeof(t.id), "%s", ID_A);
    snprintf(exact.hostname, sizeof(exact.hostname), "fake.example.com");
    snprintf(exact.tunnel_id, sizeof(exact.tunnel_id), "%s", ID_A);
    snprintf(wild.hostname, sizeof(wild.hostname), "*.w.example.com");
    snprintf(wild.tunnel_id, sizeof(wild.tunnel_id), "%s", ID_A);
    exact.next = &wild;
    struct es_registry r;
    memset(&r, 0, sizeof(r));
    r.tunnels = &t;
    r.routes = &exact;
    assert_ptr_equal(es_registry_tunnel(&r, ID_A), &t);
    assert_null(es_registry_tunnel(&r, ID_B));
    assert_ptr_equal(es_registry_lookup(&r, "fake.example.com"), &t);
    assert_ptr_equal(es_registry_lookup(&r, "x.w.example.com"), &t);
    assert_null(es_registry_lookup(&r, "w.example.com"));
    assert_ptr_equal(es_registry_route(&r, "*.w.example.com"), &wild);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_reload_from_store),
        T(test_lookup_exact_and_wildcard),
        T(test_lookup_own_overlapping_claims),
        T(test_claim_overlap_refused),
        T(test_lookup_after_reload),
        T(test_claim_refused_by_patterns),
        T(test_claim_invalid),
        T(test_claim_held_by_other),
        T(test_deleted_tunnel_vanishes),
        T(test_claim_for_tunnel_deleted_elsewhere_says_deleted),
        T(test_new_tunnel_appears),
        T(test_registry_reload_keeps_routes_when_the_store_fails),
        T(test_claim_case_insensitive),
        T(test_lookup_longest_of_nested_wildcards),
        T(test_wildcard_does_not_match_its_own_suffix),
        T(test_route_to_missing_tunnel_yields_null),
        T(test_claim_then_release_updates_lookups),
        T(test_claims_grow_the_index),
        T(test_index_answers_as_the_scan),
        cmocka_unit_test(test_lookup_without_index),
    };
    return cmocka_run_group_tests_name("es_registry", tests, NULL, NULL);
}
