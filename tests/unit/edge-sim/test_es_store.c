/* es_store: tunnels and routes in SQLite, in a throwaway directory. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "es_store.h"
#include "px_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define ID_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define ID_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

struct fx {
    char dir[64];
    struct es_store st;
};

static void rm_dir(const char *dir)
{
    const char *files[] = {"edge.db", "edge.db-wal", "edge.db-shm", "edge.db-journal"};
    char p[128];
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/es-store-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    char why[256] = "";
    if (es_store_open(&f->st, f->dir, why, sizeof(why)) != 0) {
        fprintf(stderr, "open: %s\n", why);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    es_store_close(&f->st);
    rm_dir(f->dir);
    free(f);
    return 0;
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

static void test_open_failure(void **state)
{
    (void)state;
    struct es_store st;
    char why[256] = "";
    assert_int_equal(es_store_open(&st, "/nonexistent/dir/for/es/store", why, sizeof(why)),
                     PX_ERR_DB);
    assert_non_null(strstr(why, "edge.db"));
    assert_null(st.db);
}

static void test_add_and_get(void **state)
{
    struct fx *f = *state;
    char *pats[] = {"*.example.com", "app.example.org"};
    add(&f->st, ID_A, "home", pats, 2);

    struct es_tunnel_rec t;
    assert_int_equal(es_store_tunnel_get(&f->st, ID_A, NULL, &t), 0);
    assert_string_equal(t.id, ID_A);
    assert_string_equal(t.name, "home");
    assert_int_equal(t.n_patterns, 2);
    assert_string_equal(t.patterns[0], "*.example.com");
    assert_string_equal(t.patterns[1], "app.example.org");
    assert_int_equal(t.secret_hash[0], 'a');
    assert_int_equal(t.secret_hash[31], 'a' + 31);
    assert_true(t.created > 0);
    es_tunnel_rec_cleanup(&t);

    assert_int_equal(es_store_tunnel_get(&f->st, NULL, "home", &t), 0);
    assert_string_equal(t.id, ID_A);
    es_tunnel_rec_cleanup(&t);

    assert_int_equal(es_store_tunnel_get(&f->st, ID_B, NULL, &t), PX_ERR_NOT_FOUND);
    assert_int_equal(es_store_tunnel_get(&f->st, NULL, "away", &t), PX_ERR_NOT_FOUND);
    assert_int_equal(es_store_tunnel_get(&f->st, NULL, NULL, &t), PX_ERR_NOT_FOUND);
    /* The id is not a name and vice versa. */
    assert_int_equal(es_store_tunnel_get(&f->st, "home", NULL, &t), PX_ERR_NOT_FOUND);
    assert_int_equal(es_store_tunnel_get(&f->st, NULL, ID_A, &t), PX_ERR_NOT_FOUND);
}

static void test_secret_hash(void **state)
{
    struct fx *f = *state;
    add(&f->st, ID_A, "home", NULL, 0);
    uint8_t h[32];
    memset(h, 0x55, sizeof(h));
    assert_int_equal(es_store_tunnel_secret_hash(&f->st, ID_A, h), 0);
    assert_int_equal(h[0], 'a');
    assert_int_equal(h[31], 'a' + 31);
    memset(h, 0x55, sizeof(h));
    assert_int_equal(es_store_tunnel_secret_hash(&f->st, ID_B, h), PX_ERR_NOT_FOUND);
    assert_int_equal(h[0], 0x55); /* untouched: the caller's dummy stays */
    assert_int_equal(es_store_tunnel_secret_hash(&f->st, "home", h), PX_ERR_NOT_FOUND);
}

static void test_no_patterns(void **state)
{
    struct fx *f = *state;
    add(&f->st, ID_A, "any", NULL, 0);
    struct es_tunnel_rec t;
    assert_int_equal(es_store_tunnel_get(&f->st, ID_A, NULL, &t), 0);
    assert_int_equal(t.n_patterns, 0);
    es_tunnel_rec_cleanup(&t);
}

static void test_duplicate_name(void **state)
{
    struct fx *f = *state;
    add(&f->st, ID_A, "home", NULL, 0);
    struct es_tunnel_rec t;
    make_rec(&t, ID_B, "home");
    assert_int_equal(es_store_tunnel_add(&f->st, &t), PX_ERR_EXISTS);
    /* Same id under another name is refused too. */
    make_rec(&t, ID_A, "other");
    assert_int_equal(es_store_tunnel_add(&f->st, &t), PX_ERR_EXISTS);
    struct es_tunnel_rec *list;
    size_t n;
    assert_int_equal(es_store_tunnel_list(&f->st, &list, &n), 0);
    assert_int_equal(n, 1);
    es_store_tunnels_free(list, n);
}

static void test_list_sorted(void **state)
{
    struct fx *f = *state;
    add(&f->st, ID_B, "zeta", NULL, 0);
    add(&f->st, ID_A, "alpha", NULL, 0);
    struct es_tunnel_rec *list;
    size_t n;
    assert_int_equal(es_store_tunnel_list(&f->st, &list, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].name, "alpha");
    assert_string_equal(list[1].name, "zeta");
    es_store_tunnels_free(list, n);
}

static void test_list_many(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < 20; i++) {
        char id[33], name[16];
        snprintf(id, sizeof(id), "%032x", (unsigned)i);
        snprintf(name, sizeof(name), "t%02d", i);
        add(&f->st, id, name, NULL, 0);
    }
    struct es_tunnel_rec *list;
    size_t n;
    assert_int_equal(es_store_tunnel_list(&f->st, &list, &n), 0);
    assert_int_equal(n, 20);
    assert_string_equal(list[19].name, "t19");
    es_store_tunnels_free(list, n);
}

struct route_seen {
    int n;
    char host[8][64];
    char owner[8][33];
};

static void collect(const char *hostname, const char *tunnel_id, void *arg)
{
    struct route_seen *r = arg;
    if (r->n < 8) {
        snprintf(r->host[r->n], sizeof(r->host[0]), "%s", hostname);
        snprintf(r->owner[r->n], sizeof(r->owner[0]), "%s", tunnel_id);
    }
    r->n++;
}

static void test_route_claim(void **state)
{
    struct fx *f = *state;
    add(&f->st, ID_A, "a", NULL, 0);
    add(&f->st, ID_B, "b", NULL, 0);
    struct es_route_conflict c;
    assert_int_equal(es_store_route_claim(&f->st, "app.example.com", ID_A, &c), 0);
    /* Claiming again by the owner is fine. */
    assert_int_equal(es_store_route_claim(&f->st, "app.example.com", ID_A, &c), 0);
    /* Another tunnel is refused and told who holds it. */
    memset(&c, 0, sizeof(c));
    assert_int_equal(es_store_route_claim(&f->st, "app.example.com", ID_B, &c), PX_ERR_EXISTS);
    assert_string_equal(c.hostname, "app.example.com");
    assert_string_equal(c.tunnel_id, ID_A);
    assert_string_equal(c.tunnel_name, "a");
    assert_int_equal(es_store_route_claim(&f->st, "other.example.org", ID_B, &c), 0);

    struct route_seen seen = {0};
    assert_int_equal(es_store_route_each(&f->st, collect, &seen), 0);
    assert_int_equal(seen.n, 2);

    /* Release only by the owner. */
    assert_int_equal(es_store_route_release(&f->st, "app.example.com", ID_B), 0);
    assert_int_equal(es_store_route_claim(&f->st, "app.example.com", ID_B, &c), PX_ERR_EXISTS);
    assert_int_equal(es_store_route_release(&f->st, "app.example.com", ID_A), 0);
    assert_int_equal(es_store_route_claim(&f->st, "app.example.com", ID_B, &c), 0);
}

static void test_route_claim_unknown_tunnel(void **state)
{
    struct fx *f = *state;
    struct es_route_conflict c;
    /* Routes reference tunnels: a claim for a tunnel that does not exist fails. */
    assert_true(es_store_route_claim(&f->st, "x.example", ID_A, &c) < 0);
    struct route_seen seen = {0};
    es_store_route_each(&f->st, collect, &seen);
    assert_int_equal(seen.n, 0);
}

/* Defect 5 (subdomain takeover): an exact name under another tunnel's
 * wildcard used to win every request for it. Overlaps are refused both ways,
 * naming what is held and by whom; a tunnel's own claims may overlap. */
static void test_route_claim_overlap_refused(void **state)
{
    struct fx *f = *state;
    add(&f->st, ID_A, "home", NULL, 0);
    add(&f->st, ID_B, "intruder", NULL, 0);
    struct es_route_conflict c;
    assert_int_equal(es_store_route_claim(&f->st, "*.apps.example.test", ID_A, &c), 0);
    /* An exact name, or a deeper one, under A's wildcard. */
    const char *under[] = {"victim.apps.example.test", "a.b.apps.example.test",
                           "*.y.apps.example.test", "*.apps.example.test"};
    for (size_t i = 0; i < sizeof(under) / sizeof(under[0]); i++) {
        memset(&c, 0, sizeof(c));
        int rc = es_store_route_claim(&f->st, under[i], ID_B, &c);
        if (rc != PX_ERR_EXISTS)
            print_error("%s claimed by B under A's wildcard (rc %d)\n", under[i], rc);
        assert_int_equal(rc, PX_ERR_EXISTS);
        assert_string_equal(c.hostname, "*.apps.example.test");
        assert_string_equal(c.tunnel_id, ID_A);
        assert_string_equal(c.tunnel_name, "home");
    }
    /* Not overlapping: the bare suffix and a sibling domain. */
    assert_int_equal(es_store_route_claim(&f->st, "apps.example.test", ID_B, &c), 0);
    assert_int_equal(es_store_route_claim(&f->st, "x.other.example.test", ID_B, &c), 0);
    assert_int_equal(es_store_route_claim(&f->st, "*.y.other.example.test", ID_B, &c), 0);
    /* The other direction: a wildcard over B's exact name or narrower wildcard. */
    memset(&c, 0, sizeof(c));
    assert_int_equal(es_store_route_claim(&f->st, "*.other.example.test", ID_A, &c), PX_ERR_EXISTS);
    assert_string_equal(c.tunnel_name, "intruder");
    assert_true(strcmp(c.hostname, "x.other.example.test") == 0 ||
                strcmp(c.hostname, "*.y.other.example.test") == 0);
    assert_int_equal(es_store_route_claim(&f->st, "*.example.test", ID_A, &c), PX_ERR_EXISTS);
    assert_string_equal(c.tunnel_name, "intruder");
    /* Nothing refused was stored. */
    struct route_seen seen = {0};
    assert_int_equal(es_store_route_each(&f->st, collect, &seen), 0);
    assert_int_equal(seen.n, 4);
    /* A's own names under its own wildcard are fine, both orders. */
    assert_int_equal(es_store_route_claim(&f->st, "mine.apps.example.test", ID_A, &c), 0);
    assert_int_equal(es_store_route_claim(&f->st, "z.y.other.example.test", ID_B, &c), 0);
    assert_int_equal(es_store_route_claim(&f->st, "*.z.y.other.example.test", ID_B, &c), 0);
    /* Once B lets its names go, A may widen. */
    assert_int_equal(es_store_route_release(&f->st, "x.other.example.test", ID_B), 0);
    assert_int_equal(es_store_route_release(&f->st, "*.y.other.example.test", ID_B), 0);
    assert_int_equal(es_store_route_release(&f->st, "z.y.other.example.test", ID_B), 0);
    assert_int_equal(es_store_route_release(&f->st, "*.z.y.other.example.test", ID_B), 0);
    assert_int_equal(es_store_route_claim(&f->st, "*.other.example.test", ID_A, &c), 0);
}

/* Two processes, each with its own handle on one database file, claim
 * overlapping names for different tunnels at the same moment, round after
 * round. With the check outside the insert's transaction both can pass the
 * check before either inserts; then both names end up stored. */
#define RACE_ROUNDS 300

static void race_claims(const char *dir, const char *id, int wildcard, int start_fd)
{
    struct es_store st;
    char why[256], host[64], go;
    if (es_store_open(&st, dir, why, sizeof(why)) != 0)
        _exit(2);
    if (read(start_fd, &go, 1) != 1)
        _exit(3);
    for (int i = 0; i < RACE_ROUNDS; i++) {
        snprintf(host, sizeof(host), wildcard ? "*.r%d.example.test" : "x.r%d.example.test", i);
        int rc = es_store_route_claim(&st, host, id, NULL);
        if (rc != 0 && rc != PX_ERR_EXISTS)
            _exit(4);
    }
    es_store_close(&st);
    _exit(0);
}

static void test_route_claim_race_two_handles(void **state)
{
    struct fx *f = *state;
    add(&f->st, ID_A, "a", NULL, 0);
    add(&f->st, ID_B, "b", NULL, 0);
    int start[2];
    assert_int_equal(pipe(start), 0);
    pid_t pa = fork();
    assert_true(pa >= 0);
    if (pa == 0) {
        close(start[1]);
        race_claims(f->dir, ID_A, 1, start[0]);
    }
    pid_t pb = fork();
    assert_true(pb >= 0);
    if (pb == 0) {
        close(start[1]);
        race_claims(f->dir, ID_B, 0, start[0]);
    }
    close(start[0]);
    assert_int_equal(write(start[1], "gg", 2), 2);
    close(start[1]);
    int sa, sb;
    assert_int_equal(waitpid(pa, &sa, 0), pa);
    assert_int_equal(waitpid(pb, &sb, 0), pb);
    assert_true(WIFEXITED(sa) && WEXITSTATUS(sa) == 0);
    assert_true(WIFEXITED(sb) && WEXITSTATUS(sb) == 0);
    /* Exactly one claim per round survived. */
    struct route_seen seen = {0};
    assert_int_equal(es_store_route_each(&f->st, collect, &seen), 0);
    if (seen.n != RACE_ROUNDS)
        print_error("%d routes stored for %d rounds of two overlapping claims\n", seen.n,
                    RACE_ROUNDS);
    assert_int_equal(seen.n, RACE_ROUNDS);
}

static void test_delete_cascades(void **state)
{
    struct fx *f = *state;
    add(&f->st, ID_A, "a", NULL, 0);
    add(&f->st, ID_B, "b", NULL, 0);
    struct es_route_conflict c;
    assert_int_equal(es_store_route_claim(&f->st, "a1.example", ID_A, &c), 0);
    assert_int_equal(es_store_route_claim(&f->st, "a2.example", ID_A, &c), 0);
    assert_int_equal(es_store_route_claim(&f->st, "b1.example", ID_B, &c), 0);
    assert_int_equal(es_store_tunnel_delete(&f->st, "a"), 0);
    struct route_seen seen = {0};
    assert_int_equal(es_store_route_each(&f->st, collect, &seen), 0);
    assert_int_equal(seen.n, 1);
    assert_string_equal(seen.host[0], "b1.example");
    assert_string_equal(seen.owner[0], ID_B);
    /* The freed hostname can be claimed by someone else now. */
    assert_int_equal(es_store_route_claim(&f->st, "a1.example", ID_B, &c), 0);
    /* Delete by id works too; deleting twice is NOT_FOUND. */
    assert_int_equal(es_store_tunnel_delete(&f->st, ID_B), 0);
    assert_int_equal(es_store_tunnel_delete(&f->st, ID_B), PX_ERR_NOT_FOUND);
    assert_int_equal(es_store_tunnel_delete(&f->st, "a"), PX_ERR_NOT_FOUND);
    seen.n = 0;
    es_store_route_each(&f->st, collect, &seen);
    assert_int_equal(seen.n, 0);
}

static void test_kv(void **state)
{
    struct fx *f = *state;
    char v[64];
    assert_int_equal(es_store_kv_get(&f->st, "k", v, sizeof(v)), PX_ERR_NOT_FOUND);
    assert_int_equal(es_store_kv_set(&f->st, "k", "one"), 0);
    assert_int_equal(es_store_kv_get(&f->st, "k", v, sizeof(v)), 0);
    assert_string_equal(v, "one");
    assert_int_equal(es_store_kv_set(&f->st, "k", "two"), 0);
    assert_int_equal(es_store_kv_get(&f->st, "k", v, sizeof(v)), 0);
    assert_string_equal(v, "two");
    /* Truncated into a small buffer, always terminated. */
    char small[3];
    assert_int_equal(es_store_kv_get(&f->st, "k", small, sizeof(small)), 0);
    assert_string_equal(small, "tw");
}

static void test_changed_by_other_connection(void **state)
{
    struct fx *f = *state;
    /* Our own writes do not count as "changed". */
    assert_int_equal(es_store_changed(&f->st), 0);
    add(&f->st, ID_A, "a", NULL, 0);
    assert_int_equal(es_store_changed(&f->st), 0);

    struct es_store other;
    char why[256];
    assert_int_equal(es_store_open(&other, f->dir, why, sizeof(why)), 0);
    assert_int_equal(es_store_changed(&f->st), 0);
    add(&other, ID_B, "b", NULL, 0);
    assert_int_equal(es_store_changed(&f->st), 1);
    /* Reported once. */
    assert_int_equal(es_store_changed(&f->st), 0);
    /* The other connection's write is visible. */
    struct es_tunnel_rec t;
    assert_int_equal(es_store_tunnel_get(&f->st, NULL, "b", &t), 0);
    es_tunnel_rec_cleanup(&t);
    /* A delete through the other connection is seen too, with its cascade. */
    struct es_route_conflict c;
    assert_int_equal(es_store_route_claim(&f->st, "b.example", ID_B, &c), 0);
    assert_int_equal(es_store_changed(&f->st), 0);
    assert_int_equal(es_store_tunnel_delete(&other, "b"), 0);
    assert_int_equal(es_store_changed(&f->st), 1);
    struct route_seen seen = {0};
    es_store_route_each(&f->st, collect, &seen);
    assert_int_equal(seen.n, 0);
    es_store_close(&other);
}

static void test_reopen_persists(void **state)
{
    struct fx *f = *state;
    char *pats[] = {"*.persist.example"};
    add(&f->st, ID_A, "p", pats, 1);
    struct es_route_conflict c;
    assert_int_equal(es_store_route_claim(&f->st, "x.persist.example", ID_A, &c), 0);
    es_store_close(&f->st);
    char why[256];
    assert_int_equal(es_store_open(&f->st, f->dir, why, sizeof(why)), 0);
    struct es_tunnel_rec t;
    assert_int_equal(es_store_tunnel_get(&f->st, ID_A, NULL, &t), 0);
    assert_string_equal(t.patterns[0], "*.persist.example");
    es_tunnel_rec_cleanup(&t);
    struct route_seen seen = {0};
    es_store_route_each(&f->st, collect, &seen);
    assert_int_equal(seen.n, 1);
}

/* ---- token rotation ---- */

static void fill(uint8_t h[32], uint8_t v)
{
    memset(h, v, 32);
}

static void test_secrets_before_rotation(void **state)
{
    struct fx *f = *state;
    add(&f->st, ID_A, "home", NULL, 0);
    struct es_tunnel_secrets s;
    memset(&s, 0x55, sizeof(s));
    assert_int_equal(es_store_tunnel_secrets(&f->st, ID_A, &s), 0);
    assert_int_equal(s.current[0], 'a');
    assert_int_equal(s.current[31], 'a' + 31);
    uint8_t zero[32] = {0};
    assert_memory_equal(s.previous, zero, 32); /* none yet */
    assert_int_equal(s.previous_until, 0);
    /* Unknown id, or a name in place of an id: untouched (the dummy stays). */
    memset(&s, 0x55, sizeof(s));
    assert_int_equal(es_store_tunnel_secrets(&f->st, ID_B, &s), PX_ERR_NOT_FOUND);
    assert_int_equal(s.current[0], 0x55);
    assert_int_equal(s.previous[0], 0x55);
    assert_int_equal(es_store_tunnel_secrets(&f->st, "home", &s), PX_ERR_NOT_FOUND);
}

static void test_rotate_keeps_previous_until(void **state)
{
    struct fx *f = *state;
    add(&f->st, ID_A, "home", NULL, 0);
    add(&f->st, ID_B, "other", NULL, 0);
    struct es_tunnel_secrets before, s;
    assert_int_equal(es_store_tunnel_secrets(&f->st, ID_A, &before), 0);
    uint8_t h2[32];
    fill(h2, 0x22);
    char id[33] = "", name[65] = "";
    assert_int_equal(es_store_tunnel_rotate(&f->st, "home", h2, 5000, id, name), 0);
    assert_string_equal(id, ID_A);
    assert_string_equal(name, "home");
    assert_int_equal(es_store_tunnel_secrets(&f->st, ID_A, &s), 0);
    assert_memory_equal(s.current, h2, 32);
    assert_memory_equal(s.previous, before.current, 32);
    assert_int_equal(s.previous_until, 5000);
    /* The other tunnel is untouched. */
    struct es_tunnel_secrets o;
    assert_int_equal(es_store_tunnel_secrets(&f->st, ID_B, &o), 0);
    assert_int_equal(o.current[0], 'b');
    assert_int_equal(o.previous_until, 0);
    /* The record the rest of the edge reads carries the new hash. */
    struct es_tunnel_rec t;
    assert_int_equal(es_store_tunnel_get(&f->st, ID_A, NULL, &t), 0);
    assert_memory_equal(t.secret_hash, h2, 32);
    es_tunnel_rec_cleanup(&t);

    /* A second rotation (by id) replaces the previous hash: only one stays. */
    uint8_t h3[32];
    fill(h3, 0x33);
    assert_int_equal(es_store_tunnel_rotate(&f->st, ID_A, h3, 0, NULL, NULL), 0);
    assert_int_equal(es_store_tunnel_secrets(&f->st, ID_A, &s), 0);
    assert_memory_equal(s.current, h3, 32);
    assert_memory_equal(s.previous, h2, 32);
    assert_int_equal(s.previous_until, 0);

    assert_int_equal(es_store_tunnel_rotate(&f->st, "away", h3, 1, NULL, NULL), PX_ERR_NOT_FOUND);
    assert_int_equal(es_store_tunnel_rotate(&f->st, "", h3, 1, NULL, NULL), PX_ERR_NOT_FOUND);
}

/* A name may look like another tunnel's id: the name wins, one row only. */
static void test_rotate_name_before_id(void **state)
{
    struct fx *f = *state;
    add(&f->st, ID_A, "home", NULL, 0);
    add(&f->st, ID_B, ID_A, NULL, 0); /* named like the first one's id */
    uint8_t h[32];
    fill(h, 0x44);
    char id[33];
    assert_int_equal(es_store_tunnel_rotate(&f->st, ID_A, h, 0, id, NULL), 0);
    assert_string_equal(id, ID_B);
    struct es_tunnel_secrets s;
    assert_int_equal(es_store_tunnel_secrets(&f->st, ID_A, &s), 0);
    assert_int_equal(s.current[0], 'a'); /* not rotated */
    assert_int_equal(es_store_tunnel_secrets(&f->st, ID_B, &s), 0);
    assert_memory_equal(s.current, h, 32);
}

static void test_secret_match(void **state)
{
    (void)state;
    struct es_tunnel_secrets s;
    memset(&s, 0, sizeof(s));
    fill(s.current, 0x11);
    uint8_t h[32];
    fill(h, 0x11);
    assert_int_equal(es_store_secret_match(&s, h, 100), 1);
    /* No previous: an all-zero hash must not match it. */
    uint8_t zero[32] = {0};
    assert_int_equal(es_store_secret_match(&s, zero, 0), 0);
    assert_int_equal(es_store_secret_match(&s, zero, -5), 0);

    fill(s.previous, 0x22);
    s.previous_until = 1000;
    fill(h, 0x22);
    assert_int_equal(es_store_secret_match(&s, h, 999), 2);
    assert_int_equal(es_store_secret_match(&s, h, 1000), 0); /* the grace ends at prev_until */
    assert_int_equal(es_store_secret_match(&s, h, 5000), 0);
    fill(h, 0x11);
    assert_int_equal(es_store_secret_match(&s, h, 5000), 1); /* the current one never expires */
    /* One byte off, anywhere, is no match. */
    for (size_t i = 0; i < 32; i++) {
        fill(h, 0x22);
        h[i] ^= 0x01;
        assert_int_equal(es_store_secret_match(&s, h, 10), 0);
        fill(h, 0x11);
        h[i] ^= 0x80;
        assert_int_equal(es_store_secret_match(&s, h, 10), 0);
    }
}

/* Defect 9.6: each rotation is a generation, counted in the row, so the
 * edge tells a line begun with the new token from one begun with the old
 * exactly, not by comparing whole seconds. */
static void test_rotation_generations(void **state)
{
    struct fx *f = *state;
    add(&f->st, ID_A, "home", NULL, 0);
    struct es_tunnel_secrets s;
    assert_int_equal(es_store_tunnel_secrets(&f->st, ID_A, &s), 0);
    assert_int_equal(s.rotations, 0);
    assert_int_equal(s.rotated_at, 0);
    uint8_t h[32];
    fill(h, 0x22);
    assert_int_equal(es_store_tunnel_rotate(&f->st, "home", h, 5000, NULL, NULL), 0);
    assert_int_equal(es_store_tunnel_secrets(&f->st, ID_A, &s), 0);
    assert_int_equal(s.rotations, 1);
    assert_true(s.rotated_at > 0);
    fill(h, 0x33);
    assert_int_equal(es_store_tunnel_rotate(&f->st, ID_A, h, 0, NULL, NULL), 0);
    assert_int_equal(es_store_tunnel_secrets(&f->st, ID_A, &s), 0);
    assert_int_equal(s.rotations, 2);
}

/* Defect 9.4: an enrolment with the previous secret (match 2) begins a
 * line of the previous generation, however late in the grace it comes;
 * with the current one, of the current generation. */
static void test_enrol_rotation(void **state)
{
    (void)state;
    struct es_tunnel_secrets s = {.rotations = 4, .rotated_at = 1000, .previous_until = 2000};
    assert_int_equal(es_store_enrol_rotation(&s, 1), 4);
    assert_int_equal(es_store_enrol_rotation(&s, 2), 3);
    s.rotations = 0;
    assert_int_equal(es_store_enrol_rotation(&s, 1), 0);
}

/* Which lines renew: the current generation always; the previous one while
 * its token still enrols; older ones (and generations from the future: a
 * data dir restored from a backup) never. Defects 9.4 and 9.6. */
static void test_line_renewable(void **state)
{
    (void)state;
    struct es_tunnel_secrets s = {.rotations = 0};
    assert_true(es_store_line_renewable(&s, 0, 100));
    assert_false(es_store_line_renewable(&s, 1, 100));
    assert_false(es_store_line_renewable(&s, -1, 100));
    /* Rotated at 1000 with a grace to 2000. */
    s = (struct es_tunnel_secrets){.rotations = 1, .rotated_at = 1000, .previous_until = 2000};
    fill(s.previous, 0x22);
    assert_true(es_store_line_renewable(&s, 1, 1000)); /* new token, the rotation's second */
    assert_true(es_store_line_renewable(&s, 1, 99999));
    assert_true(es_store_line_renewable(&s, 0, 1000)); /* old token, in the grace */
    assert_true(es_store_line_renewable(&s, 0, 1999));
    assert_false(es_store_line_renewable(&s, 0, 2000)); /* the grace is over */
    assert_false(es_store_line_renewable(&s, 0, 99999));
    /* Without a grace the old line stops at once. */
    s.previous_until = 0;
    assert_false(es_store_line_renewable(&s, 0, 1000));
    assert_true(es_store_line_renewable(&s, 1, 1000));
    /* Two rotations on: the first token's line never renews, even in the
     * second rotation's grace. */
    s = (struct es_tunnel_secrets){.rotations = 2, .rotated_at = 3000, .previous_until = 4000};
    assert_false(es_store_line_renewable(&s, 0, 3500));
    assert_true(es_store_line_renewable(&s, 1, 3500));
    assert_false(es_store_line_renewable(&s, 1, 4000));
    assert_true(es_store_line_renewable(&s, 2, 4000));
    assert_false(es_store_line_renewable(&s, 3, 3500));
}

/* Certificates issued before generations carry only when their line began:
 * judged by time, as before (an enrolment in the rotation's second counts as
 * before it). */
static void test_legacy_rotation(void **state)
{
    (void)state;
    struct es_tunnel_secrets s = {.rotations = 0, .rotated_at = 0};
    assert_int_equal(es_store_legacy_rotation(&s, 0), 0);
    assert_int_equal(es_store_legacy_rotation(&s, 1700000000), 0);
    s = (struct es_tunnel_secrets){.rotations = 1, .rotated_at = 1000};
    assert_int_equal(es_store_legacy_rotation(&s, 0), 0); /* no OU at all: before */
    assert_int_equal(es_store_legacy_rotation(&s, 999), 0);
    assert_int_equal(es_store_legacy_rotation(&s, 1000), 0);
    assert_int_equal(es_store_legacy_rotation(&s, 1001), 1);
}

/* A database made before rotation existed gains the columns on open; its
 * tunnels keep their secret and have no previous one. */
static void test_migrates_old_database(void **state)
{
    struct fx *f = *state;
    es_store_close(&f->st);
    rm_dir(f->dir);
    assert_int_equal(mkdir(f->dir, 0700), 0);
    char path[128];
    snprintf(path, sizeof(path), "%s/edge.db", f->dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db,
                     "CREATE TABLE tunnels(id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
                     " secret_hash BLOB NOT NULL, patterns TEXT NOT NULL, created INTEGER NOT "
                     "NULL);"
                     "INSERT INTO tunnels VALUES('" ID_A "','old',"
                     "x'0101010101010101010101010101010101010101010101010101010101010101','[]',1);",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    char why[256] = "";
    assert_int_equal(es_store_open(&f->st, f->dir, why, sizeof(why)), 0);
    struct es_tunnel_secrets s;
    assert_int_equal(es_store_tunnel_secrets(&f->st, ID_A, &s), 0);
    assert_int_equal(s.current[0], 1);
    assert_int_equal(s.previous_until, 0);
    assert_int_equal(s.rotations, 0);
    uint8_t h[32];
    fill(h, 0x77);
    assert_int_equal(es_store_tunnel_rotate(&f->st, "old", h, 99, NULL, NULL), 0);
    assert_int_equal(es_store_tunnel_secrets(&f->st, ID_A, &s), 0);
    assert_int_equal(s.previous[0], 1);
    assert_int_equal(s.previous_until, 99);
    /* Opening it again (migrated already) changes nothing. */
    es_store_close(&f->st);
    assert_int_equal(es_store_open(&f->st, f->dir, why, sizeof(why)), 0);
    assert_int_equal(es_store_tunnel_secrets(&f->st, ID_A, &s), 0);
    assert_int_equal(s.current[0], 0x77);
    assert_int_equal(s.previous_until, 99);
}

/* Defect 9.6: a database from before generations (rotation columns, no
 * `rotations`) gains it; a tunnel already rotated counts one rotation (its
 * previous token is generation 0), one never rotated none. */
static void test_migrates_to_generations(void **state)
{
    struct fx *f = *state;
    es_store_close(&f->st);
    rm_dir(f->dir);
    assert_int_equal(mkdir(f->dir, 0700), 0);
    char path[128];
    snprintf(path, sizeof(path), "%s/edge.db", f->dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db,
                     "CREATE TABLE tunnels(id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
                     " secret_hash BLOB NOT NULL, patterns TEXT NOT NULL, created INTEGER NOT "
                     "NULL, prev_secret_hash BLOB, prev_until INTEGER NOT NULL DEFAULT 0,"
                     " rotated_at INTEGER NOT NULL DEFAULT 0);"
                     "INSERT INTO tunnels VALUES('" ID_A "','rotated',"
                     "x'0101010101010101010101010101010101010101010101010101010101010101','[]',1,"
                     "x'0202020202020202020202020202020202020202020202020202020202020202',"
                     "5000,4000);"
                     "INSERT INTO tunnels(id,name,secret_hash,patterns,created) VALUES('" ID_B
                     "','never',"
                     "x'0303030303030303030303030303030303030303030303030303030303030303','[]',1);",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    char why[256] = "";
    assert_int_equal(es_store_open(&f->st, f->dir, why, sizeof(why)), 0);
    struct es_tunnel_secrets s;
    assert_int_equal(es_store_tunnel_secrets(&f->st, ID_A, &s), 0);
    assert_int_equal(s.rotations, 1);
    assert_int_equal(s.rotated_at, 4000);
    assert_int_equal(s.previous_until, 5000);
    /* The old token in its grace still enrols, as the previous generation. */
    uint8_t h[32];
    fill(h, 0x02);
    assert_int_equal(es_store_secret_match(&s, h, 4500), 2);
    assert_int_equal(es_store_enrol_rotation(&s, 2), 0);
    assert_int_equal(es_store_tunnel_secrets(&f->st, ID_B, &s), 0);
    assert_int_equal(s.rotations, 0);
    /* Opening it again changes nothing; rotating counts on. */
    es_store_close(&f->st);
    assert_int_equal(es_store_open(&f->st, f->dir, why, sizeof(why)), 0);
    assert_int_equal(es_store_tunnel_secrets(&f->st, ID_A, &s), 0);
    assert_int_equal(s.rotations, 1);
    fill(h, 0x44);
    assert_int_equal(es_store_tunnel_rotate(&f->st, "rotated", h, 0, NULL, NULL), 0);
    assert_int_equal(es_store_tunnel_secrets(&f->st, ID_A, &s), 0);
    assert_int_equal(s.rotations, 2);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_failure),
        T(test_add_and_get),
        T(test_secret_hash),
        T(test_no_patterns),
        T(test_duplicate_name),
        T(test_list_sorted),
        T(test_list_many),
        T(test_route_claim),
        T(test_route_claim_unknown_tunnel),
        T(test_route_claim_overlap_refused),
        T(test_route_claim_race_two_handles),
        T(test_delete_cascades),
        T(test_kv),
        T(test_changed_by_other_connection),
        T(test_reopen_persists),
        T(test_secrets_before_rotation),
        T(test_rotate_keeps_previous_until),
        T(test_rotate_name_before_id),
        cmocka_unit_test(test_secret_match),
        T(test_migrates_old_database),
        T(test_rotation_generations),
        cmocka_unit_test(test_enrol_rotation),
        cmocka_unit_test(test_line_renewable),
        cmocka_unit_test(test_legacy_rotation),
        T(test_migrates_to_generations),
    };
    return cmocka_run_group_tests_name("es_store", tests, NULL, NULL);
}
