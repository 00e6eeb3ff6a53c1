/* es_access, es_peer and es_assert against a real store in a temp dir:
 * which policy covers a hostname, the verdict for edge-issued, own-CA,
 * revoked and foreign certificates, verdict caching per generation, and
 * assertions that verify with the published keys across a rotation. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "es_access.h"
#include "es_assert.h"
#include "es_certs.h"
#include "es_peer.h"
#include "es_store_access.h"
#include "px_cert.h"
#include "px_err.h"
#include "px_jwt.h"
#include "px_pki.h"
#include "px_tls.h"
#include "test_rng.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct world {
    char dir[64];
    struct es_certs certs;
    struct es_store store;
    unsigned long long gen;
};

/* A certificate: its DER and details. */
struct cred {
    struct px_der *der;
    size_t n;
    struct px_cert_info info;
};

static void cred_from_pem(struct cred *c, const char *pem)
{
    assert_int_equal(px_cert_pem_split(pem, strlen(pem), &c->der, &c->n), 0);
    assert_int_equal(px_cert_info(c->der[0].der, c->der[0].len, &c->info), 0);
}

static void cred_free(struct cred *c)
{
    px_cert_info_cleanup(&c->info);
    px_der_free(c->der, c->n);
}

/* A client certificate for cn from CA ca_pem/ca_key. */
static void issue(struct cred *c, const char *ca_pem, const char *ca_key, const char *cn)
{
    char *key = NULL, *pub = NULL, *cert = NULL;
    assert_int_equal(px_pki_keygen(test_rng(), &key), 0);
    assert_int_equal(px_pki_pubkey(key, &pub), 0);
    assert_int_equal(
        px_pki_issue(test_rng(), ca_pem, ca_key, pub, cn, NULL, 0, PX_PKI_CLIENT, 2, &cert), 0);
    cred_from_pem(c, cert);
    free(key);
    free(pub);
    free(cert);
}

static int setup(void **state)
{
    struct world *w = calloc(1, sizeof(*w));
    snprintf(w->dir, sizeof(w->dir), "/tmp/test_es_access.XXXXXX");
    assert_non_null(mkdtemp(w->dir));
    char why[512];
    assert_int_equal(es_certs_init(&w->certs, test_rng(), w->dir, "tunnel.test", why, sizeof(why)),
                     0);
    assert_int_equal(es_store_open(&w->store, w->dir, why, sizeof(why)), 0);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    struct world *w = *state;
    es_store_close(&w->store);
    es_certs_cleanup(&w->certs);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", w->dir);
    assert_int_equal(system(cmd), 0);
    free(w);
    return 0;
}

static struct es_access *build(struct world *w)
{
    struct es_access *a = NULL;
    char why[512];
    assert_int_equal(
        es_access_build(&w->store, w->certs.access_ca_pem, ++w->gen, &a, why, sizeof(why)), 0);
    return a;
}

static void set_policy(struct world *w, const char *pattern, const char *ca, const char *subject,
                       const char *fp, const char *aud)
{
    char *cas[] = {(char *)ca}, *subj[] = {(char *)subject}, *fps[] = {(char *)fp};
    struct es_policy_rec p = {.pattern = (char *)pattern,
                              .cas = cas,
                              .n_cas = 1,
                              .subjects = subj,
                              .n_subjects = subject ? 1 : 0,
                              .fingerprints = fps,
                              .n_fingerprints = fp ? 1 : 0,
                              .audience = (char *)aud,
                              .created = 1};
    assert_int_equal(es_store_policy_set(&w->store, &p, NULL), 0);
}

static enum es_access_verdict verdict(struct es_access *a, const char *host, struct cred *c)
{
    const struct es_access_policy *p = es_access_policy_for(a, host);
    return es_access_check(a, p, c ? c->der : NULL, c ? c->n : 0, c ? &c->info : NULL);
}

static void test_policy_lookup(void **state)
{
    struct world *w = *state;
    set_policy(w, "*.example.test", ES_ACCESS_EDGE_CA, NULL, NULL, NULL);
    set_policy(w, "*.lab.example.test", ES_ACCESS_EDGE_CA, NULL, NULL, "lab");
    set_policy(w, "ha.lab.example.test", ES_ACCESS_EDGE_CA, NULL, NULL, "ha");
    struct es_access *a = build(w);
    assert_int_equal(es_access_count(a), 3);
    /* exact first, then the longest wildcard */
    assert_string_equal(es_access_policy_audience(es_access_policy_for(a, "ha.lab.example.test")),
                        "ha");
    assert_string_equal(es_access_policy_audience(es_access_policy_for(a, "nas.lab.example.test")),
                        "lab");
    assert_string_equal(es_access_policy_pattern(es_access_policy_for(a, "x.example.test")),
                        "*.example.test");
    assert_null(es_access_policy_audience(es_access_policy_for(a, "x.example.test")));
    assert_null(es_access_policy_for(a, "example.test")); /* a wildcard never covers its base */
    /* Defect 8.2 (review): names the router accepts but that are not valid
     * patterns (a 64-byte label, brackets) found no policy, so they reached
     * a wildcard-protected tunnel without a certificate. */
    char longlabel[128];
    memset(longlabel, 'a', 64);
    snprintf(longlabel + 64, sizeof(longlabel) - 64, ".example.test");
    const char *odd[] = {"x].example.test", "x[.example.test", longlabel, "a..b.example.test"};
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
        const struct es_access_policy *p = es_access_policy_for(a, odd[i]);
        assert_non_null(p);
        assert_string_equal(es_access_policy_pattern(p), "*.example.test");
    }
    assert_null(es_access_policy_for(a, "other.test"));
    assert_null(es_access_policy_for(a, ""));
    assert_null(es_access_policy_for(NULL, "x.example.test"));
    assert_int_equal(verdict(a, "other.test", NULL), ES_ACCESS_OPEN);
    es_access_free(a);
}

static void test_edge_issued_and_revoked(void **state)
{
    struct world *w = *state;
    set_policy(w, "ha.example.test", ES_ACCESS_EDGE_CA, NULL, NULL, NULL);
    struct cred phone, stranger;
    issue(&phone, w->certs.access_ca_pem, w->certs.access_ca_key, "phone");
    /* The connector CA is not the people CA: its certificates never pass. */
    issue(&stranger, w->certs.client_ca_pem, w->certs.client_ca_key, "phone");
    struct es_client_cert_rec rec = {.name = "phone",
                                     .serial = phone.info.serial,
                                     .fingerprint = phone.info.sha256_hex,
                                     .subject = phone.info.subject,
                                     .created = 1};
    assert_int_equal(es_store_client_cert_add(&w->store, &rec), 0);
    assert_int_equal(es_store_client_cert_add(&w->store, &rec), PX_ERR_EXISTS);
    struct es_access *a = build(w);
    assert_int_equal(verdict(a, "ha.example.test", &phone), ES_ACCESS_ALLOWED);
    assert_int_equal(verdict(a, "ha.example.test", NULL), ES_ACCESS_NO_CERT);
    assert_int_equal(verdict(a, "ha.example.test", &stranger), ES_ACCESS_UNTRUSTED);
    assert_string_equal(es_access_verdict_reason(ES_ACCESS_NO_CERT), "no client certificate");

    /* es_peer caches per host and generation: a revocation shows at the next
     * check after the rebuild, not before. */
    struct es_peer peer;
    es_peer_init(&peer);
    assert_int_equal(es_peer_set_chain(&peer, phone.der, phone.n), 0);
    assert_int_equal(es_peer_verdict(&peer, a, "ha.example.test", NULL), ES_ACCESS_ALLOWED);
    size_t n = 0;
    char upper[80];
    snprintf(upper, sizeof(upper), "00%s", phone.info.serial); /* leading zeros too */
    for (char *p = upper; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    assert_int_equal(es_store_client_cert_revoke(&w->store, upper, 5, &n), 0); /* by serial */
    assert_int_equal(n, 1);
    assert_int_equal(es_store_client_cert_revoke(&w->store, "phone", 6, &n), 0);
    assert_int_equal(n, 0); /* already revoked */
    assert_int_equal(es_store_client_cert_revoke(&w->store, "nobody", 6, &n), PX_ERR_NOT_FOUND);
    assert_int_equal(es_peer_verdict(&peer, a, "ha.example.test", NULL), ES_ACCESS_ALLOWED);
    struct es_access *b = build(w);
    assert_int_equal(es_peer_verdict(&peer, b, "ha.example.test", NULL), ES_ACCESS_REVOKED);
    assert_int_equal(es_peer_verdict(&peer, b, "open.example.test", NULL), ES_ACCESS_OPEN);
    /* Revoked, the name is free for a new certificate. */
    struct cred phone2;
    issue(&phone2, w->certs.access_ca_pem, w->certs.access_ca_key, "phone");
    rec.serial = phone2.info.serial;
    assert_int_equal(es_store_client_cert_add(&w->store, &rec), 0);
    es_peer_cleanup(&peer);
    es_access_free(a);
    es_access_free(b);
    cred_free(&phone);
    cred_free(&phone2);
    cred_free(&stranger);
}

static void test_own_ca_subjects_fingerprints(void **state)
{
    struct world *w = *state;
    char *ca_key = NULL, *ca_pem = NULL;
    assert_int_equal(px_pki_keygen(test_rng(), &ca_key), 0);
    assert_int_equal(px_pki_make_ca(test_rng(), ca_key, "Team Root CA", 30, &ca_pem), 0);
    struct es_client_ca_rec ca = {.name = "team", .cert_pem = ca_pem, .created = 1};
    assert_int_equal(es_store_client_ca_add(&w->store, &ca), 0);
    assert_int_equal(es_store_client_ca_add(&w->store, &ca), PX_ERR_EXISTS);
    ca.name = ES_ACCESS_EDGE_CA;
    assert_int_equal(es_store_client_ca_add(&w->store, &ca), PX_ERR_EXISTS);
    struct cred alice, bob, phone;
    issue(&alice, ca_pem, ca_key, "alice");
    issue(&bob, ca_pem, ca_key, "bob");
    issue(&phone, w->certs.access_ca_pem, w->certs.access_ca_key, "phone");
    set_policy(w, "team.example.test", "team", NULL, NULL, NULL);
    set_policy(w, "alice.example.test", "team", "^CN=alice,", NULL, NULL);
    set_policy(w, "bob.example.test", "team", NULL, bob.info.sha256_hex, NULL);
    char *missing = NULL;
    char *cas[] = {"nosuch"};
    struct es_policy_rec bad = {.pattern = "x.example.test", .cas = cas, .n_cas = 1};
    assert_int_equal(es_store_policy_set(&w->store, &bad, &missing), PX_ERR_NOT_FOUND);
    assert_string_equal(missing, "nosuch");
    free(missing);
    struct es_access *a = build(w);
    assert_int_equal(verdict(a, "team.example.test", &alice), ES_ACCESS_ALLOWED);
    assert_int_equal(verdict(a, "team.example.test", &phone), ES_ACCESS_UNTRUSTED);
    assert_int_equal(verdict(a, "alice.example.test", &alice), ES_ACCESS_ALLOWED);
    assert_int_equal(verdict(a, "alice.example.test", &bob), ES_ACCESS_SUBJECT);
    assert_int_equal(verdict(a, "bob.example.test", &bob), ES_ACCESS_ALLOWED);
    assert_int_equal(verdict(a, "bob.example.test", &alice), ES_ACCESS_SUBJECT);
    /* A CA a policy trusts cannot be deleted from under it. */
    char *used = NULL;
    assert_int_equal(es_store_client_ca_delete(&w->store, "team", &used), PX_ERR_DENIED);
    assert_non_null(used);
    free(used);
    es_access_free(a);
    cred_free(&alice);
    cred_free(&bob);
    cred_free(&phone);
    free(ca_key);
    free(ca_pem);
}

static void test_unloadable_ca_refuses_everyone(void **state)
{
    struct world *w = *state;
    struct es_client_ca_rec ca = {.name = "junk", .cert_pem = "not a certificate", .created = 1};
    assert_int_equal(es_store_client_ca_add(&w->store, &ca), 0);
    set_policy(w, "junk.example.test", "junk", NULL, NULL, NULL);
    struct cred phone;
    issue(&phone, w->certs.access_ca_pem, w->certs.access_ca_key, "phone");
    struct es_access *a = build(w);
    assert_int_equal(verdict(a, "junk.example.test", &phone), ES_ACCESS_UNTRUSTED);
    es_access_free(a);
    cred_free(&phone);
}

static void test_assertions_across_rotation(void **state)
{
    struct world *w = *state;
    char why[512];
    struct es_assert *as = NULL, *as2 = NULL;
    long long now = (long long)time(NULL);
    assert_int_equal(
        es_assert_build(test_rng(), &w->store, "edge-sim:test", now, &as, why, sizeof(why)), 0);
    struct cred phone;
    issue(&phone, w->certs.access_ca_pem, w->certs.access_ca_key, "phone");
    struct es_peer peer;
    es_peer_init(&peer);
    assert_int_equal(es_peer_set_chain(&peer, phone.der, phone.n), 0);
    const char *t1;
    assert_int_equal(es_peer_assertion(&peer, as, "ha.example.test", now, &t1), 0);
    char *tok1 = strdup(t1);
    const char *again;
    assert_int_equal(es_peer_assertion(&peer, as, "ha.example.test", now + 10, &again), 0);
    assert_string_equal(again, tok1); /* cached */
    /* rotate: a new key signs; the old one stays published */
    char *key = NULL;
    char kid[44];
    assert_int_equal(px_pki_keygen(test_rng(), &key), 0);
    assert_int_equal(px_jwt_kid(key, kid), 0);
    struct es_signing_key_rec k = {.kid = kid, .key_pem = key, .created = now + 20};
    assert_int_equal(es_store_signing_key_add(&w->store, &k, 0), 0);
    assert_int_equal(
        es_assert_build(test_rng(), &w->store, "edge-sim:test", now + 20, &as2, why, sizeof(why)),
        0);
    const char *t2;
    assert_int_equal(es_peer_assertion(&peer, as2, "ha.example.test", now + 20, &t2), 0);
    assert_string_not_equal(t2, tok1);
    json_t *set = json_loads(es_assert_jwks(as2), 0, NULL);
    assert_non_null(set);
    assert_int_equal(json_array_size(json_object_get(set, "keys")), 2);
    struct px_jwks *keys;
    assert_int_equal(px_jwks_from_json(set, &keys), 0);
    json_t *claims = NULL;
    assert_int_equal(px_jwt_verify(keys, tok1, strlen(tok1), "ha.example.test", "edge-sim:test",
                                   now + 20, 0, NULL),
                     PX_JWT_OK);
    assert_int_equal(px_jwt_verify(keys, t2, strlen(t2), "ha.example.test", "edge-sim:test",
                                   now + 20, 0, &claims),
                     PX_JWT_OK);
    assert_string_equal(json_string_value(json_object_get(claims, "sub")),
                        "CN=phone,O=tunnel edge-sim");
    assert_non_null(json_object_get(json_object_get(claims, "cnf"), "x5t#S256"));
    assert_int_equal(px_jwt_verify(keys, t2, strlen(t2), "other", NULL, now + 20, 0, NULL),
                     PX_JWT_WRONG_AUDIENCE);
    /* Past its lifetime a token is refused, and the old key is dropped
     * from the set once no token it signed can be alive. */
    assert_int_equal(
        px_jwt_verify(keys, t2, strlen(t2), NULL, NULL, now + 20 + ES_ASSERT_TTL + 1, 0, NULL),
        PX_JWT_EXPIRED);
    struct es_assert *as3 = NULL;
    long long later = now + 20 + ES_ASSERT_PUBLISH_AFTER_RETIRE + 1;
    assert_int_equal(
        es_assert_build(test_rng(), &w->store, "edge-sim:test", later, &as3, why, sizeof(why)), 0);
    json_t *set3 = json_loads(es_assert_jwks(as3), 0, NULL);
    assert_int_equal(json_array_size(json_object_get(set3, "keys")), 1);
    assert_int_equal(es_assert_next_change(as3), 0);
    assert_int_equal(es_assert_next_change(as2), now + 20 + ES_ASSERT_PUBLISH_AFTER_RETIRE);
    json_decref(set3);
    json_decref(claims);
    px_jwks_free(keys);
    json_decref(set);
    free(key);
    free(tok1);
    es_peer_cleanup(&peer);
    cred_free(&phone);
    es_assert_free(as);
    es_assert_free(as2);
    es_assert_free(as3);
}

/* What the origin is told: the details of an allowed certificate, NONE
 * without one. */
struct hdrs {
    char names[16][40];
    char *values[16];
    int n;
};

static int add_hdr(void *arg, const char *name, const char *value)
{
    struct hdrs *h = arg;
    snprintf(h->names[h->n], sizeof(h->names[0]), "%s", name);
    h->values[h->n++] = strdup(value);
    return 0;
}

static const char *hval(const struct hdrs *h, const char *name)
{
    for (int i = 0; i < h->n; i++)
        if (strcmp(h->names[i], name) == 0)
            return h->values[i];
    return NULL;
}

static void test_forwarded_details(void **state)
{
    struct world *w = *state;
    struct cred phone;
    issue(&phone, w->certs.access_ca_pem, w->certs.access_ca_key, "phone");
    struct es_peer peer;
    es_peer_init(&peer);
    struct hdrs none = {0};
    assert_int_equal(es_peer_headers(&peer, add_hdr, &none), 0);
    assert_int_equal(none.n, 1);
    assert_string_equal(hval(&none, "x-client-cert-verified"), "NONE");
    assert_int_equal(es_peer_set_chain(&peer, phone.der, phone.n), 0);
    struct hdrs h = {0};
    assert_int_equal(es_peer_headers(&peer, add_hdr, &h), 0);
    assert_string_equal(hval(&h, "x-client-cert-verified"), "SUCCESS");
    assert_string_equal(hval(&h, "x-client-cert-subject-dn"), "CN=phone,O=tunnel edge-sim");
    assert_string_equal(hval(&h, "x-client-cert-issuer-dn"),
                        "CN=edge-sim client access CA,O=tunnel edge-sim");
    assert_string_equal(hval(&h, "x-client-cert-fingerprint-sha256"), phone.info.sha256_hex);
    assert_string_equal(hval(&h, "x-client-cert-serial"), phone.info.serial);
    assert_non_null(hval(&h, "x-client-cert-not-before"));
    assert_non_null(hval(&h, "x-client-cert-not-after"));
    const char *cc = hval(&h, "client-cert");
    assert_non_null(cc);
    assert_true(cc[0] == ':' && cc[strlen(cc) - 1] == ':');
    assert_null(hval(&h, "client-cert-chain")); /* the leaf alone was sent */
    for (int i = 0; i < h.n; i++)
        free(h.values[i]);
    free(none.values[0]);
    es_peer_cleanup(&peer);
    cred_free(&phone);
}

/* Two references: the set lives until both are dropped (ASan: no use
 * after the first free; LSan: freed after the second). */
static void test_two_references(void **state)
{
    struct world *w = *state;
    set_policy(w, "ha.example.test", ES_ACCESS_EDGE_CA, NULL, NULL, NULL);
    struct cred phone;
    issue(&phone, w->certs.access_ca_pem, w->certs.access_ca_key, "phone");
    struct es_access *a = build(w);
    assert_null(es_access_ref(NULL));
    es_access_free(NULL);
    struct es_access *b = es_access_ref(a);
    assert_ptr_equal(b, a);
    es_access_free(a);
    assert_int_equal(es_access_count(b), 1);
    assert_int_equal(es_access_generation(b), w->gen);
    assert_int_equal(verdict(b, "ha.example.test", &phone), ES_ACCESS_ALLOWED);
    es_access_free(b);
    cred_free(&phone);
}

#define REF_THREADS 4
#define REF_ROUNDS 25

struct holder {
    struct es_access *a; /* the reference handed to this thread, dropped by it */
    const struct cred *ok, *bad;
    int right; /* verdicts as expected */
};

/* A worker loop's life with a set: checks with its reference, takes and
 * drops more of its own, then drops the one it was handed. */
static void *hold(void *arg)
{
    struct holder *h = arg;
    for (int i = 0; i < REF_ROUNDS; i++) {
        struct es_access *r = es_access_ref(h->a);
        const struct es_access_policy *p = es_access_policy_for(r, "alice.example.test");
        h->right += es_access_check(r, p, h->ok->der, h->ok->n, &h->ok->info) == ES_ACCESS_ALLOWED;
        h->right +=
            es_access_check(r, p, h->bad->der, h->bad->n, &h->bad->info) == ES_ACCESS_SUBJECT;
        es_access_free(r);
    }
    es_access_free(h->a);
    return NULL;
}

/* Loops in several threads share one set, each with its own reference, and
 * check against it at the same time (the CertManager and the subject regex
 * shared); the builder drops its reference while they run, and whichever
 * thread drops the last frees it (ASan/LSan: no use after free, no leak). */
static void test_references_across_threads(void **state)
{
    struct world *w = *state;
    char *ca_key = NULL, *ca_pem = NULL;
    assert_int_equal(px_pki_keygen(test_rng(), &ca_key), 0);
    assert_int_equal(px_pki_make_ca(test_rng(), ca_key, "Team Root CA", 30, &ca_pem), 0);
    struct es_client_ca_rec ca = {.name = "team", .cert_pem = ca_pem, .created = 1};
    assert_int_equal(es_store_client_ca_add(&w->store, &ca), 0);
    set_policy(w, "alice.example.test", "team", "^CN=alice,", NULL, NULL);
    struct cred alice, bob;
    issue(&alice, ca_pem, ca_key, "alice");
    issue(&bob, ca_pem, ca_key, "bob");
    struct es_access *a = build(w);
    struct holder h[REF_THREADS];
    pthread_t t[REF_THREADS];
    for (int i = 0; i < REF_THREADS; i++) {
        /* Taken here, handed over by pthread_create: the order the header
         * asks for. */
        h[i] = (struct holder){.a = es_access_ref(a), .ok = &alice, .bad = &bob};
        assert_int_equal(pthread_create(&t[i], NULL, hold, &h[i]), 0);
    }
    es_access_free(a);
    for (int i = 0; i < REF_THREADS; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(h[i].right, 2 * REF_ROUNDS);
    }
    cred_free(&alice);
    cred_free(&bob);
    free(ca_key);
    free(ca_pem);
}

int main(void)
{
    px_tls_global_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_policy_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_edge_issued_and_revoked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_own_ca_subjects_fingerprints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unloadable_ca_refuses_everyone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_assertions_across_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forwarded_details, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_references, setup, teardown),
        cmocka_unit_test_setup_teardown(test_references_across_threads, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
