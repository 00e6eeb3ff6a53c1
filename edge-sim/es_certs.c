#include "es_certs.h"
#include "es_seal.h"
#include "es_store.h"
#include "px_cert.h"
#include "px_err.h"
#include "px_pki.h"
#include "rt_file.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SNI_CACHE_MAX 4096

typedef int (*make_fn)(struct es_certs *, const char *key, char **cert, void *);

/* Frees a clear key after wiping it. */
static void free_key(char *k)
{
    if (k)
        explicit_bzero(k, strlen(k));
    free(k);
}

/* A new key (and certificate, with make) in memory. */
static int make_pair(struct es_certs *c, char **key, char **cert, make_fn make, void *arg)
{
    int rc = px_pki_keygen(c->rng, key);
    if (rc == 0 && cert)
        rc = make(c, *key, cert, arg);
    if (rc < 0) {
        free_key(*key);
        *key = NULL;
    }
    return rc;
}

/* From a shared store: CA name's certificate and key (unsealed with
 * c->seal), created, sealed and stored first when missing. Two edges
 * creating it at once both end with the one stored first. */
static int load_shared(struct es_certs *c, const char *name, char **key, char **cert, make_fn make,
                       void *arg, char *why, size_t whylen)
{
    struct es_ca_rec rec;
    int rc = es_store_ca_get(c->store, name, &rec);
    if (rc == PX_ERR_NOT_FOUND) {
        char *k = NULL, *ce = NULL, *sealed = NULL;
        rc = make_pair(c, &k, cert ? &ce : NULL, make, arg);
        if (rc == 0)
            rc = es_seal(c->seal, c->rng, name, k, &sealed);
        if (rc == 0)
            rc = es_store_ca_put_if_absent(c->store, name, ce, sealed, c->seal->id);
        free_key(k);
        free(ce);
        free(sealed);
        if (rc == 0)
            rc = es_store_ca_get(c->store, name, &rec);
    }
    if (rc < 0) {
        snprintf(why, whylen, "cannot read or create %s in %s: %s", name, c->dir, px_strerror(rc));
        return rc;
    }
    if ((cert && !rec.cert_pem) || (rc = es_unseal(c->seal, name, rec.key_sealed, key)) < 0) {
        char msg[300];
        es_seal_why(rc ? rc : PX_ERR_INVAL, c->seal, rec.key_sealed, msg, sizeof(msg));
        snprintf(why, whylen, "the %s key in %s cannot be opened with the CA key file: %s", name,
                 c->dir, msg);
        es_ca_rec_cleanup(&rec);
        return rc ? rc : PX_ERR_INVAL;
    }
    if (cert) {
        *cert = rec.cert_pem;
        rec.cert_pem = NULL;
    }
    es_ca_rec_cleanup(&rec);
    return 0;
}

/* Loads name.key/name.pem, creating them with make() when missing. With a
 * shared store the CAs are in it (load_shared), and what belongs to this
 * instance alone (per_instance: the tunnel port's certificate, the key of
 * the browser certificates) is made anew in memory. */
static int load_pair(struct es_certs *c, const char *name, char **key, char **cert, make_fn make,
                     void *arg, int per_instance, char *why, size_t whylen)
{
    if (c->store && per_instance) {
        int rc = make_pair(c, key, cert, make, arg);
        if (rc < 0)
            snprintf(why, whylen, "cannot make %s: %s", name, px_strerror(rc));
        return rc;
    }
    if (c->store)
        return load_shared(c, name, key, cert, make, arg, why, whylen);
    char kp[600], cp[600];
    snprintf(kp, sizeof(kp), "%s/%s.key", c->dir, name);
    snprintf(cp, sizeof(cp), "%s/%s.pem", c->dir, name);
    int rc = rt_file_read_private(kp, 1 << 20, key, NULL, why, whylen);
    if (rc < 0 && rc != PX_ERR_NOT_FOUND)
        return rc; /* why names the chmod that fixes it */
    if (cert)
        *cert = rt_file_read(cp, 1 << 20, NULL, NULL);
    if (*key && (!cert || *cert))
        return 0;
    free(*key);
    *key = NULL;
    if (cert) {
        free(*cert);
        *cert = NULL;
    }
    rc = px_pki_keygen(c->rng, key);
    if (rc == 0 && cert)
        rc = make(c, *key, cert, arg);
    if (rc == 0)
        rc = rt_file_write_private(kp, *key);
    if (rc == 0 && cert)
        rc = rt_file_write_private(cp, *cert);
    if (rc < 0)
        snprintf(why, whylen, "cannot create %s in %s: %s", name, c->dir, px_strerror(rc));
    return rc;
}

static int make_ca(struct es_certs *c, const char *key, char **cert, void *arg)
{
    return px_pki_make_ca(c->rng, key, arg, 3650, cert);
}

/* The origin CAs outlive the longest origin certificate they issue (15
 * years by default, up to ES_ORIGIN_CERT_MAX_DAYS): an origin set up once
 * must not stop working when its CA does. */
static int make_origin_ca(struct es_certs *c, const char *key, char **cert, void *arg)
{
    return px_pki_make_ca(c->rng, key, arg, ES_ORIGIN_CERT_MAX_DAYS + 366, cert);
}

static int make_tunnel_cert(struct es_certs *c, const char *key, char **cert, void *arg)
{
    (void)arg;
    char *pub = NULL;
    int rc = px_pki_pubkey(key, &pub);
    if (rc < 0)
        return rc;
    const char *names[] = {c->server_name, "localhost", "127.0.0.1", "::1"};
    rc = px_pki_issue(c->rng, c->server_ca_pem, c->server_ca_key, pub, c->server_name, names, 4,
                      PX_PKI_SERVER, 3650, cert);
    free(pub);
    return rc;
}

/* Loads (or makes) every key and certificate into c, set up by the caller
 * for a data dir or a shared store. */
static int load_all(struct es_certs *c, char *why, size_t whylen)
{
    int rc;
    if ((rc = load_pair(c, "server-ca", &c->server_ca_key, &c->server_ca_pem, make_ca,
                        "edge-sim tunnel server CA", 0, why, whylen)) < 0 ||
        (rc = load_pair(c, "client-ca", &c->client_ca_key, &c->client_ca_pem, make_ca,
                        "edge-sim connector CA", 0, why, whylen)) < 0 ||
        (rc = load_pair(c, "access-ca", &c->access_ca_key, &c->access_ca_pem, make_ca,
                        "edge-sim client access CA", 0, why, whylen)) < 0 ||
        (rc = load_pair(c, "origin-ca", &c->origin_ca_key, &c->origin_ca_pem, make_origin_ca,
                        "edge-sim origin CA", 0, why, whylen)) < 0 ||
        (rc = load_pair(c, "origin-pull-ca", &c->origin_pull_ca_key, &c->origin_pull_ca_pem,
                        make_origin_ca, "edge-sim origin-pull CA", 0, why, whylen)) < 0 ||
        (rc = load_pair(c, "browser-ca", &c->browser_ca_key, &c->browser_ca_pem, make_ca,
                        "edge-sim browser CA", 0, why, whylen)) < 0 ||
        (rc = load_pair(c, "tunnel-server", &c->tunnel_key_pem, &c->tunnel_cert_pem,
                        make_tunnel_cert, NULL, 1, why, whylen)) < 0 ||
        (rc = load_pair(c, "browser-leaf", &c->browser_key_pem, NULL, NULL, NULL, 1, why, whylen)) <
            0)
        return rc;
    if ((rc = px_pki_pubkey(c->browser_key_pem, &c->browser_pub_pem)) < 0) {
        snprintf(why, whylen, "browser-leaf.key in %s is unusable", c->dir);
        return rc;
    }
    return 0;
}

int es_certs_init(struct es_certs *c, WC_RNG *rng, const char *dir, const char *server_name,
                  char *why, size_t whylen)
{
    memset(c, 0, sizeof(*c));
    c->rng = rng;
    px_list_init(&c->sni_cache);
    snprintf(c->dir, sizeof(c->dir), "%s", dir);
    snprintf(c->server_name, sizeof(c->server_name), "%s", server_name);
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        snprintf(why, whylen, "cannot create data dir %s: %s", dir, strerror(errno));
        return PX_ERR_IO;
    }
    /* An existing directory keeps its mode: refuse one that others can
     * read (the CA keys are in it) rather than chmod whatever we were
     * pointed at, as ssh does. */
    int rc = rt_file_check_private_dir(dir, "data directory", why, whylen);
    if (rc == 0)
        rc = load_all(c, why, whylen);
    if (rc < 0)
        es_certs_cleanup(c);
    return rc;
}

int es_certs_init_shared(struct es_certs *c, WC_RNG *rng, struct es_store *st,
                         const struct es_seal_key *seal, const char *server_name, char *why,
                         size_t whylen)
{
    memset(c, 0, sizeof(*c));
    c->rng = rng;
    px_list_init(&c->sni_cache);
    snprintf(c->dir, sizeof(c->dir), "%s", es_sql_target(st->db));
    snprintf(c->server_name, sizeof(c->server_name), "%s", server_name);
    c->store = st;
    c->seal = seal;
    int rc = load_all(c, why, whylen);
    c->store = NULL; /* used only here */
    c->seal = NULL;
    if (rc < 0)
        es_certs_cleanup(c);
    return rc;
}

/* Frees the oldest SNI certificates until keep are left. */
static void drop_sni(struct es_certs *c, size_t keep)
{
    struct px_list_node *last;
    while (c->sni_count > keep && (last = px_list_last(&c->sni_cache))) {
        struct es_sni_cert *e = px_container_of(last, struct es_sni_cert, link);
        px_list_remove(last);
        free(e->cert_pem);
        free(e);
        c->sni_count--;
    }
}

void es_certs_cleanup(struct es_certs *c)
{
    if (c->is_view) {
        es_certs_view_cleanup(c);
        return;
    }
    char **f[] = {
        &c->server_ca_pem,   &c->server_ca_key,   &c->client_ca_pem,      &c->client_ca_key,
        &c->tunnel_cert_pem, &c->tunnel_key_pem,  &c->browser_ca_pem,     &c->browser_ca_key,
        &c->browser_key_pem, &c->browser_pub_pem, &c->access_ca_pem,      &c->access_ca_key,
        &c->origin_ca_pem,   &c->origin_ca_key,   &c->origin_pull_ca_pem, &c->origin_pull_ca_key};
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        free(*f[i]);
        *f[i] = NULL;
    }
    if (c->sni_cache.head.next) /* not for an es_certs never initialised */
        drop_sni(c, 0);
}

int es_certs_view_init(struct es_certs *view, const struct es_certs *home, WC_RNG *rng)
{
    /* browser_pub_pem is the last thing es_certs_init sets: a home without
     * it failed or was never initialised. */
    if (!rng || home->is_view || !home->browser_pub_pem)
        return PX_ERR_INVAL;
    /* Field by field, not *view = *home: home's cache may be changing on
     * its thread, and only what never changes after init is read here. */
    memset(view, 0, sizeof(*view));
    view->rng = rng;
    memcpy(view->dir, home->dir, sizeof(view->dir));
    memcpy(view->server_name, home->server_name, sizeof(view->server_name));
    view->server_ca_pem = home->server_ca_pem;
    view->server_ca_key = home->server_ca_key;
    view->client_ca_pem = home->client_ca_pem;
    view->client_ca_key = home->client_ca_key;
    view->tunnel_cert_pem = home->tunnel_cert_pem;
    view->tunnel_key_pem = home->tunnel_key_pem;
    view->browser_ca_pem = home->browser_ca_pem;
    view->browser_ca_key = home->browser_ca_key;
    view->browser_key_pem = home->browser_key_pem;
    view->browser_pub_pem = home->browser_pub_pem;
    view->access_ca_pem = home->access_ca_pem;
    view->access_ca_key = home->access_ca_key;
    view->origin_ca_pem = home->origin_ca_pem;
    view->origin_ca_key = home->origin_ca_key;
    view->origin_pull_ca_pem = home->origin_pull_ca_pem;
    view->origin_pull_ca_key = home->origin_pull_ca_key;
    px_list_init(&view->sni_cache);
    view->is_view = 1;
    return 0;
}

void es_certs_view_cleanup(struct es_certs *view)
{
    if (view->sni_cache.head.next) /* not for a view never initialised */
        drop_sni(view, 0);
}

const char *es_certs_for_host(struct es_certs *c, const char *host)
{
    struct px_list_node *pos, *tmp;
    px_list_for_each_safe (pos, tmp, &c->sni_cache) {
        struct es_sni_cert *e = px_container_of(pos, struct es_sni_cert, link);
        if (strcmp(e->host, host) == 0)
            return e->cert_pem;
    }
    if (strlen(host) >= sizeof(((struct es_sni_cert *)0)->host))
        return NULL;
    /* Bound memory against clients inventing names: drop the oldest half. */
    if (c->sni_count >= SNI_CACHE_MAX)
        drop_sni(c, SNI_CACHE_MAX / 2);
    struct es_sni_cert *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    snprintf(e->host, sizeof(e->host), "%s", host);
    const char *names[] = {host};
    if (px_pki_issue(c->rng, c->browser_ca_pem, c->browser_ca_key, c->browser_pub_pem, host, names,
                     1, PX_PKI_SERVER, 397, &e->cert_pem) < 0) {
        free(e);
        return NULL;
    }
    px_list_insert_head(&c->sni_cache, &e->link);
    c->sni_count++;
    return e->cert_pem;
}

int es_certs_check_p256(const char *pub_pem)
{
    DerBuffer *der = NULL;
    if (!pub_pem)
        return PX_ERR_INVAL;
    /* wc_PemToDer may leave a buffer behind when it fails: free it either way. */
    int r = wc_PemToDer((const unsigned char *)pub_pem, (long)strlen(pub_pem), PUBLICKEY_TYPE, &der,
                        NULL, NULL, NULL);
    if (r != 0 || !der) {
        wc_FreeDer(&der);
        return PX_ERR_INVAL;
    }
    ecc_key key;
    int rc = PX_ERR_INVAL;
    if (wc_ecc_init(&key) != 0) {
        wc_FreeDer(&der);
        return PX_ERR_CRYPTO;
    }
    word32 idx = 0;
    if (wc_EccPublicKeyDecode(der->buffer, &idx, &key, der->length) == 0 && idx == der->length &&
        wc_ecc_get_curve_id(key.idx) == ECC_SECP256R1 && wc_ecc_check_key(&key) == 0)
        rc = 0;
    wc_ecc_free(&key);
    wc_FreeDer(&der);
    return rc;
}

/* A short-lived certificate for the connector: from now - ES_CERT_SKEW to
 * now + lifetime. */
static int issue_short(WC_RNG *rng, const char *ca, const char *ca_key, const char *pub_pem,
                       const char *cn, const char *ou, const char *uri, long long lifetime,
                       char **cert_pem)
{
    if (lifetime < ES_CERT_LIFETIME_MIN || lifetime > ES_CERT_LIFETIME_MAX)
        return PX_ERR_INVAL;
    int rc = es_certs_check_p256(pub_pem);
    if (rc < 0)
        return rc;
    long long now = (long long)time(NULL);
    struct px_pki_req r = {.cn = cn,
                           .ou = ou,
                           .uri = uri,
                           .usage = PX_PKI_CLIENT,
                           .not_before = now - ES_CERT_SKEW,
                           .not_after = now + lifetime};
    return px_pki_issue_req(rng, ca, ca_key, pub_pem, &r, cert_pem);
}

int es_certs_issue_client(struct es_certs *c, const char *tunnel_id, const char *pub_pem,
                          long long lifetime, const struct es_cert_line *line, char **cert_pem)
{
    char ou[64];
    if (line->rotation < 0)
        return PX_ERR_INVAL;
    int n = snprintf(ou, sizeof(ou), ES_CERT_ENROLLED_OU "%lld" ES_CERT_ROTATION_OU "%lld",
                     line->enrolled_at, line->rotation);
    if (n < 0 || (size_t)n >= sizeof(ou))
        return PX_ERR_INVAL;
    return issue_short(c->rng, c->client_ca_pem, c->client_ca_key, pub_pem, tunnel_id, ou, NULL,
                       lifetime, cert_pem);
}

/* A decimal number >= 0 at *p (at most 18 digits: no overflow), moving *p
 * past it. Returns it, or -1 if there is none. */
static long long read_count(const char **p)
{
    long long v = 0;
    int digits = 0;
    while (**p >= '0' && **p <= '9' && digits < 18) {
        v = v * 10 + (**p - '0');
        (*p)++;
        digits++;
    }
    return digits && !(**p >= '0' && **p <= '9') ? v : -1;
}

void es_certs_line(const char *subject, struct es_cert_line *out)
{
    out->enrolled_at = 0;
    out->rotation = -1;
    const char *p = subject ? strstr(subject, "OU=" ES_CERT_ENROLLED_OU) : NULL;
    if (!p)
        return;
    p += 3 + strlen(ES_CERT_ENROLLED_OU);
    long long at = read_count(&p);
    if (at <= 0)
        return;
    out->enrolled_at = at;
    if (strncmp(p, ES_CERT_ROTATION_OU, strlen(ES_CERT_ROTATION_OU)) != 0)
        return; /* issued before generations: es_store_legacy_rotation */
    p += strlen(ES_CERT_ROTATION_OU);
    long long rot = read_count(&p);
    /* The OU ends there (the next RDN, or the end): anything else is not
     * a field this edge wrote. */
    if (rot >= 0 && (*p == '\0' || *p == ',' || *p == '+'))
        out->rotation = rot;
}

int es_certs_issue_origin_pull(struct es_certs *c, const char *tunnel_id, const char *pub_pem,
                               long long lifetime, char **cert_pem)
{
    char uri[64];
    int n = snprintf(uri, sizeof(uri), "tunnel:%s", tunnel_id);
    if (n < 0 || (size_t)n >= sizeof(uri))
        return PX_ERR_INVAL;
    return issue_short(c->rng, c->origin_pull_ca_pem, c->origin_pull_ca_key, pub_pem, tunnel_id,
                       NULL, uri, lifetime, cert_pem);
}

int es_certs_issue_origin(struct es_certs *c, const char *const *names, size_t n_names,
                          const char *pub_pem, int days, char **cert_pem)
{
    if (n_names < 1 || !names[0] || days < 1 || days > ES_ORIGIN_CERT_MAX_DAYS)
        return PX_ERR_INVAL;
    int rc = es_certs_check_p256(pub_pem);
    if (rc < 0)
        return rc;
    struct px_pki_req r = {
        .cn = names[0], .names = names, .n_names = n_names, .usage = PX_PKI_SERVER, .days = days};
    /* Never past the CA (a data dir from before the CA lived this long). */
    struct px_der *d = NULL;
    size_t nd = 0;
    struct px_cert_info ci;
    long long now = (long long)time(NULL);
    if (px_cert_pem_split(c->origin_ca_pem, strlen(c->origin_ca_pem), &d, &nd) == 0 &&
        px_cert_info(d[0].der, d[0].len, &ci) == 0) {
        if (now + (long long)days * 86400 > ci.not_after) {
            r.not_before = now - ES_CERT_SKEW;
            r.not_after = ci.not_after;
        }
        px_cert_info_cleanup(&ci);
    }
    px_der_free(d, nd);
    return px_pki_issue_req(c->rng, c->origin_ca_pem, c->origin_ca_key, pub_pem, &r, cert_pem);
}

int es_certs_issue_access(struct es_certs *c, const char *cn, const char *pub_pem, int days,
                          char **cert_pem)
{
    return px_pki_issue(c->rng, c->access_ca_pem, c->access_ca_key, pub_pem, cn, NULL, 0,
                        PX_PKI_CLIENT, days, cert_pem);
}
