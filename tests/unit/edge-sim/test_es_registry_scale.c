/* es_registry at scale: tens of thousands of tunnels and routes written
 * straight into the SQLite store, reloaded, and every route looked up.
 * Asserts answers only; the reload and lookup times are printed (not
 * asserted) so they can be quoted. ES_TEST_REG_ROUTES=n adds one more run
 * with n routes (e.g. 1000000 in a release build). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "es_registry.h"
#include "es_store.h"
#include "px_err.h"
#include "px_log.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct fx {
    char dir[64];
    struct es_store st;
    struct es_registry reg;
    unsigned n_routes; /* two per tunnel: an exact name and a wildcard */
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void exec(struct fx *f, const char *sql)
{
    sqlite3 *db = es_sql_sqlite_handle(f->st.db);
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK)
        print_error("%s: %s\n", sql, err ? err : "?");
    sqlite3_free(err);
    assert_int_equal(rc, SQLITE_OK);
}

/* Tunnel i has id printf("%032x", i), name t<i>, and routes
 * h<i>.s<i % 97>.example.com (exact) and *.w<i>.example.com; tunnel 0 also
 * holds *.example.com. */
static void fill(struct fx *f)
{
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "BEGIN;"
             "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM n WHERE i+1<%u)"
             " INSERT INTO tunnels(id,name,secret_hash,patterns,created)"
             " SELECT printf('%%032x',i),'t'||i,zeroblob(32),'[]',0 FROM n;"
             "INSERT INTO routes(hostname,tunnel_id)"
             " SELECT 'h'||substr(id,25)||'.s'||(rowid %% 97)||'.example.com',id FROM tunnels;"
             "INSERT INTO routes(hostname,tunnel_id)"
             " SELECT '*.w'||substr(id,25)||'.example.com',id FROM tunnels;"
             "INSERT INTO routes(hostname,tunnel_id)"
             " VALUES('*.example.com','00000000000000000000000000000000');"
             "COMMIT;",
             f->n_routes / 2);
    exec(f, sql);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    f->n_routes = (unsigned)(size_t)*state;
    const char *env = getenv("ES_TEST_REG_ROUTES");
    if (f->n_routes == 0 && env && *env)
        f->n_routes = (unsigned)strtoul(env, NULL, 10);
    snprintf(f->dir, sizeof(f->dir), "/tmp/es-regscale-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    char why[256];
    if (es_store_open(&f->st, f->dir, why, sizeof(why)) != 0)
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

/* The hex tail of tunnel i's id as fill() writes it into its names. */
static void tail(unsigned i, char out[9])
{
    snprintf(out, 9, "%08x", i);
}

static void tunnel_id(unsigned i, char out[33])
{
    snprintf(out, 33, "%032x", i);
}

/* The tunnel id host reaches, or NULL. */
static const char *lookup_id(struct fx *f, const char *host)
{
    struct es_tunnel *t = es_registry_lookup(&f->reg, host);
    return t ? t->id : NULL;
}

/* Looks up, for every tunnel, its exact name (with the rowid bucket fill()
 * used: rowid i+1), a name under its wildcard and the wildcard's own suffix
 * name (which falls to *.example.com, tunnel 0). Tunnels with deleted(i)
 * have no route of their own. Returns the time per lookup in microseconds. */
static double check_all(struct fx *f, int (*deleted)(unsigned))
{
    unsigned n = f->n_routes / 2, bad = 0;
    char host[128], t8[9], id[33], id0[33];
    tunnel_id(0, id0);
    double t0 = now_ms();
    for (unsigned i = 0; i < n; i++) {
        tail(i, t8);
        tunnel_id(i, id);
        int gone = deleted && deleted(i);
        snprintf(host, sizeof(host), "h%s.s%u.example.com", t8, (i + 1) % 97);
        const char *got = lookup_id(f, host);
        /* A deleted tunnel's exact name falls to *.example.com, as any
         * other name under it. */
        const char *want = gone ? id0 : id;
        bad += !got || strcmp(got, want) != 0;
        snprintf(host, sizeof(host), "a.b.w%s.example.com", t8);
        got = lookup_id(f, host);
        bad += !got || strcmp(got, want) != 0;
        snprintf(host, sizeof(host), "w%s.example.com", t8);
        got = lookup_id(f, host);
        bad += !got || strcmp(got, id0) != 0;
        if (bad) {
            print_error("tunnel %u (%s): wrong route\n", i, id);
            break;
        }
    }
    double us = (now_ms() - t0) * 1e3 / (3.0 * n);
    assert_int_equal(bad, 0);
    /* Names no route covers. */
    assert_null(lookup_id(f, "example.com"));
    assert_null(lookup_id(f, "h00000001.s1.example.org"));
    assert_null(lookup_id(f, "nothing"));
    return us;
}

static void count_route(const char *hostname, const char *tunnel_id, void *arg)
{
    (void)hostname;
    (void)tunnel_id;
    ++*(size_t *)arg;
}

/* What a reload's two store reads cost alone, for scale. */
static double store_reads_ms(struct fx *f)
{
    size_t n = 0, nt = 0;
    struct es_tunnel_rec *recs = NULL;
    double t0 = now_ms();
    assert_int_equal(es_store_route_each(&f->st, count_route, &n), 0);
    assert_int_equal(es_store_tunnel_list(&f->st, &recs, &nt), 0);
    es_store_tunnels_free(recs, nt);
    double ms = now_ms() - t0;
    assert_int_equal(n, f->n_routes + 1);
    return ms;
}

static int every_tenth(unsigned i)
{
    return i % 10 == 5;
}

static void test_many_routes(void **state)
{
    struct fx *f = *state;
    unsigned n = f->n_routes / 2;
    if (n == 0)
        skip(); /* the extra size, unless ES_TEST_REG_ROUTES asks for it */
    fill(f);

    double t0 = now_ms();
    assert_int_equal(es_registry_reload(&f->reg, &f->st), 0);
    double first = now_ms() - t0;
    /* A reload with every tunnel known already, as after any store change. */
    char id[33];
    tunnel_id(n - 1, id);
    struct es_tunnel *last = es_registry_tunnel(&f->reg, id);
    assert_non_null(last);
    t0 = now_ms();
    assert_int_equal(es_registry_reload(&f->reg, &f->st), 0);
    double again = now_ms() - t0;
    assert_ptr_equal(es_registry_tunnel(&f->reg, id), last);
    size_t nt = 0, nr = 0;
    for (struct es_tunnel *t = f->reg.tunnels; t; t = t->next)
        nt++;
    for (struct es_route *r = f->reg.routes; r; r = r->next)
        nr++;
    assert_int_equal(nt, n);
    assert_int_equal(nr, 2 * (size_t)n + 1);
    for (unsigned i = 0; i < n; i += n / 100 + 1) {
        tunnel_id(i, id);
        struct es_tunnel *t = es_registry_tunnel(&f->reg, id);
        assert_non_null(t);
        assert_string_equal(t->id, id);
    }
    double us = check_all(f, NULL);
    double reads = store_reads_ms(f);

    /* One tunnel in ten deleted by another process: gone after a reload,
     * its names falling to *.example.com. */
    /* Routes first, then the tunnels without the foreign key's cascade:
     * routes.tunnel_id has no index, and the cascade would scan every
     * route for each tunnel deleted. */
    exec(f, "PRAGMA foreign_keys=OFF;"
            "DELETE FROM routes WHERE tunnel_id IN (SELECT id FROM tunnels WHERE rowid % 10 = 6);"
            "DELETE FROM tunnels WHERE rowid % 10 = 6;"
            "PRAGMA foreign_keys=ON");
    t0 = now_ms();
    assert_int_equal(es_registry_reload(&f->reg, &f->st), 0);
    double del = now_ms() - t0;
    tunnel_id(5, id);
    assert_null(es_registry_tunnel(&f->reg, id));
    double us_del = check_all(f, every_tenth);

    print_message("  %u routes, %u tunnels: reload %.1f ms (first), %.1f ms (again; the store's "
                  "reads alone %.1f ms), %.1f ms (after deleting %u tunnels); lookup %.3f us "
                  "(%.3f us after)\n",
                  f->n_routes + 1, n, first, again, reads, del, n / 10, us, us_del);
}

#define SIZE(n)                                                                                    \
    {                                                                                              \
        "test_many_routes_" #n, test_many_routes, setup, teardown, (void *)(size_t)(n)             \
    }

int main(void)
{
    px_log_set_level(PX_LOG_WARN); /* not a line per deleted tunnel */
    const struct CMUnitTest tests[] = {
        SIZE(10000), SIZE(100000), SIZE(0), /* ES_TEST_REG_ROUTES, when set */
    };
    return cmocka_run_group_tests_name("es_registry_scale", tests, NULL, NULL);
}
