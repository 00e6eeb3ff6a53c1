/* The access check on the real request path, in memory (mem_world: es_front
 * -> es_req -> es_link <=> cn_link): a policy another process sets is picked
 * up, a request without a certificate gets the 403 page, one with an allowed
 * certificate reaches the connector, and the JWK Set is served by the edge. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "es_access.h"
#include "es_store_access.h"
#include "mem_world.h"
#include "px_cert.h"
#include "px_pki.h"
#include "px_tls.h"
#include "test_rng.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RULES                                                                                      \
    "{\"ingress\":[{\"hostname\":\"*.fuzz.test\",\"service\":\"hello_world\"},{\"service\":"       \
    "\"http_status:404\"}]}"

struct fixture {
    struct mw w;
    char keydir[64];
    struct es_store other; /* "the CLI": another connection to the same database */
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_int_equal(mw_init(&f->w, RULES), 0);
    snprintf(f->keydir, sizeof(f->keydir), "/tmp/test_es_access_path.XXXXXX");
    assert_non_null(mkdtemp(f->keydir));
    char why[512];
    char sub[128];
    snprintf(sub, sizeof(sub), "%s/edge", f->keydir);
    assert_int_equal(
        es_certs_init(&f->w.srv.certs, rt_loop_rng(&f->w.rl), sub, "tunnel.test", why, sizeof(why)),
        0);
    snprintf(f->w.srv.issuer, sizeof(f->w.srv.issuer), "edge-sim:test");
    assert_int_equal(es_store_open(&f->other, f->w.dir, why, sizeof(why)), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    es_store_close(&f->other);
    mw_cleanup(&f->w);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->keydir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void require_cert(struct es_store *s, const char *pattern)
{
    char *cas[] = {ES_ACCESS_EDGE_CA};
    struct es_policy_rec p = {.pattern = (char *)pattern, .cas = cas, .n_cas = 1, .created = 1};
    assert_int_equal(es_store_policy_set(s, &p, NULL), 0);
}

/* Sends one HTTP/1.1 GET for MW_SNI and returns what the browser got. */
static char *get(struct mw *w, const char *path)
{
    px_buf_consume(&w->front_out, px_buf_len(&w->front_out));
    char req[256];
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, MW_SNI);
    assert_int_equal(mw_front_feed(w, req, strlen(req)), 0);
    mw_pump(w);
    const char *out = px_buf_cstr(&w->front_out);
    return strdup(out ? out : "");
}

static void test_policy_enforced_in_memory(void **state)
{
    struct fixture *f = *state;
    struct mw *w = &f->w;
    require_cert(&f->other, MW_SNI);
    /* What the poll timer does: another process changed the store. */
    assert_int_equal(es_server_sync(&w->srv), 1);
    assert_int_equal(es_access_count(w->srv.access), 1);
    assert_int_equal(mw_links_open(w), 0);
    assert_int_equal(mw_front_open(w, "http/1.1"), 0);
    char *out = get(w, "/");
    assert_non_null(strstr(out, "HTTP/1.1 403"));
    assert_non_null(strstr(out, "403 Forbidden: no client certificate\n"));
    assert_non_null(strstr(out, "tunnel-error: access_denied"));
    free(out);
    /* The keys are the edge's to serve, on a protected host too. */
    out = get(w, "/.well-known/edge-sim/jwks.json");
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    assert_non_null(strstr(out, "\"kty\":\"EC\""));
    free(out);
    /* The same connection with an allowed certificate: the connector answers. */
    char *key = NULL, *pub = NULL, *cert = NULL;
    assert_int_equal(px_pki_keygen(test_rng(), &key), 0);
    assert_int_equal(px_pki_pubkey(key, &pub), 0);
    assert_int_equal(es_certs_issue_access(&w->srv.certs, "phone", pub, 2, &cert), 0);
    struct px_der *der;
    size_t n;
    assert_int_equal(px_cert_pem_split(cert, strlen(cert), &der, &n), 0);
    assert_int_equal(es_peer_set_chain(&w->front->peer, der, n), 0);
    out = get(w, "/");
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    assert_non_null(strstr(out, "Hello"));
    free(out);
    px_der_free(der, n);
    free(key);
    free(pub);
    free(cert);
}

/* Bug: a connector link for a tunnel the CLI had just created caught up
 * with the store by itself and reloaded only the tunnels, swallowing the
 * change notice: a policy set at the same moment was never loaded. */
static void test_link_catch_up_loads_policies_too(void **state)
{
    struct fixture *f = *state;
    struct mw *w = &f->w;
    assert_int_equal(es_server_sync(&w->srv), 0);
    struct es_tunnel_rec rec = {.id = "0123456789abcdef0123456789abcdef", .name = "fresh"};
    assert_int_equal(es_store_tunnel_add(&f->other, &rec), 0);
    require_cert(&f->other, "ha.fresh.test");
    struct es_link *l = es_link_new_memory(&w->srv, rec.id, "198.51.100.30");
    assert_non_null(l);
    mw_pump(w); /* the link opens; its tunnel is unknown until it catches up */
    assert_non_null(w->srv.access);
    assert_non_null(es_access_policy_for(w->srv.access, "ha.fresh.test"));
    assert_non_null(es_registry_tunnel(&w->srv.reg, rec.id));
    rt_conn_close(&l->conn, 0);
    mw_pump(w);
}

int main(void)
{
    px_tls_global_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_policy_enforced_in_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_link_catch_up_loads_policies_too, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
