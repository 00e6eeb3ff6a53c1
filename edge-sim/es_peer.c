#include "es_peer.h"
#include "px_buf.h"
#include "px_err.h"

#include <stdlib.h>
#include <string.h>

void es_peer_init(struct es_peer *p)
{
    memset(p, 0, sizeof(*p));
}

static void clear_cache(struct es_peer *p)
{
    free(p->verdict_host);
    free(p->jwt);
    free(p->jwt_aud);
    p->verdict_host = p->jwt = p->jwt_aud = NULL;
    p->jwt_kid[0] = '\0';
}

void es_peer_cleanup(struct es_peer *p)
{
    clear_cache(p);
    if (p->n)
        px_cert_info_cleanup(&p->leaf);
    px_der_free(p->chain, p->n);
    memset(p, 0, sizeof(*p));
}

int es_peer_set_chain(struct es_peer *p, const struct px_der *chain, size_t n)
{
    es_peer_cleanup(p);
    if (n == 0)
        return 0;
    struct px_der *c = calloc(n, sizeof(*c));
    if (!c)
        return PX_ERR_NOMEM;
    size_t k = 0;
    int rc = PX_ERR_NOMEM;
    for (; k < n; k++) {
        if (!(c[k].der = malloc(chain[k].len ? chain[k].len : 1)))
            goto fail;
        memcpy(c[k].der, chain[k].der, chain[k].len);
        c[k].len = chain[k].len;
    }
    rc = px_cert_info(c[0].der, c[0].len, &p->leaf);
    if (rc < 0)
        goto fail;
    p->chain = c;
    p->n = n;
    return 0;
fail:
    px_der_free(c, k);
    return rc;
}

int es_peer_from_tls(struct es_peer *p, WOLFSSL *ssl)
{
    es_peer_cleanup(p);
    WOLFSSL_X509_CHAIN *ch = ssl ? wolfSSL_get_peer_chain(ssl) : NULL;
    int count = ch ? wolfSSL_get_chain_count(ch) : 0;
    if (count <= 0)
        return 0;
    struct px_der *tmp = calloc((size_t)count, sizeof(*tmp));
    if (!tmp)
        return PX_ERR_NOMEM;
    for (int i = 0; i < count; i++) {
        int len = wolfSSL_get_chain_length(ch, i);
        tmp[i].der = wolfSSL_get_chain_cert(ch, i);
        tmp[i].len = len > 0 ? (size_t)len : 0;
    }
    int rc = es_peer_set_chain(p, tmp, (size_t)count);
    free(tmp); /* the DER pointers belong to the session */
    return rc == PX_ERR_INVAL ? 0 : rc;
}

enum es_access_verdict es_peer_verdict(struct es_peer *p, const struct es_access *a,
                                       const char *host, const struct es_access_policy **policy)
{
    const struct es_access_policy *pol = es_access_policy_for(a, host);
    if (policy)
        *policy = pol;
    if (!pol)
        return ES_ACCESS_OPEN;
    if (!p || p->n == 0)
        return ES_ACCESS_NO_CERT;
    unsigned long long gen = es_access_generation(a);
    if (p->verdict_host && p->verdict_gen == gen && strcmp(p->verdict_host, host) == 0)
        return p->verdict;
    enum es_access_verdict v = es_access_check(a, pol, p->chain, p->n, &p->leaf);
    char *h = strdup(host);
    if (h) { /* without memory, just do not cache */
        free(p->verdict_host);
        p->verdict_host = h;
        p->verdict_gen = gen;
        p->verdict = v;
    }
    return v;
}

int es_peer_assertion(struct es_peer *p, const struct es_assert *as, const char *audience,
                      long long now, const char **jwt)
{
    if (p->jwt && strcmp(p->jwt_kid, es_assert_kid(as)) == 0 && now < p->jwt_refresh &&
        strcmp(p->jwt_aud, audience) == 0) {
        *jwt = p->jwt;
        return 0;
    }
    char *t = NULL, *aud = strdup(audience);
    int rc = aud ? es_assert_sign(as, audience, &p->leaf, now, &t) : PX_ERR_NOMEM;
    if (rc < 0) {
        free(aud);
        return rc;
    }
    free(p->jwt);
    free(p->jwt_aud);
    p->jwt = t;
    p->jwt_aud = aud;
    const char *kid = es_assert_kid(as);
    size_t kl = strlen(kid) < sizeof(p->jwt_kid) ? strlen(kid) : 0; /* 43 by construction */
    memcpy(p->jwt_kid, kid, kl);
    p->jwt_kid[kl] = '\0';
    p->jwt_refresh = now + ES_ASSERT_TTL / 2;
    *jwt = t;
    return 0;
}

int es_peer_headers(const struct es_peer *p,
                    int (*add)(void *arg, const char *name, const char *value), void *arg)
{
    if (!p || p->n == 0)
        return add(arg, "x-client-cert-verified", "NONE");
    char nb[21], na[21];
    px_cert_time(p->leaf.not_before, nb);
    px_cert_time(p->leaf.not_after, na);
    int rc;
    if ((rc = add(arg, "x-client-cert-verified", "SUCCESS")) < 0 ||
        (rc = add(arg, "x-client-cert-subject-dn", p->leaf.subject)) < 0 ||
        (rc = add(arg, "x-client-cert-issuer-dn", p->leaf.issuer)) < 0 ||
        (rc = add(arg, "x-client-cert-serial", p->leaf.serial)) < 0 ||
        (rc = add(arg, "x-client-cert-fingerprint-sha256", p->leaf.sha256_hex)) < 0 ||
        (rc = add(arg, "x-client-cert-not-before", nb)) < 0 ||
        (rc = add(arg, "x-client-cert-not-after", na)) < 0)
        return rc;
    char *leaf = px_cert_sf_binary(p->chain[0].der, p->chain[0].len);
    if (!leaf)
        return PX_ERR_NOMEM;
    rc = add(arg, "client-cert", leaf);
    free(leaf);
    if (rc < 0 || p->n < 2)
        return rc;
    /* RFC 9440: the chain without the leaf, as an sf-list. */
    struct px_buf chain;
    px_buf_init(&chain);
    for (size_t i = 1; i < p->n && rc == 0; i++) {
        char *c = px_cert_sf_binary(p->chain[i].der, p->chain[i].len);
        if (!c || (i > 1 && px_buf_append_str(&chain, ", ") < 0) ||
            px_buf_append_str(&chain, c) < 0)
            rc = PX_ERR_NOMEM;
        free(c);
    }
    if (rc == 0)
        rc =
            px_buf_cstr(&chain) ? add(arg, "client-cert-chain", px_buf_cstr(&chain)) : PX_ERR_NOMEM;
    px_buf_cleanup(&chain);
    return rc;
}
