#include "es_assert.h"
#include "es_store_access.h"
#include "px_b64.h"
#include "px_err.h"
#include "px_json.h"
#include "px_jwt.h"
#include "px_pki.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct es_assert {
    char *issuer;
    char *key_pem; /* the signing key */
    char kid[44];  /* its id */
    char *jwks;
    long long next_change;
};

int es_assert_issuer_load(WC_RNG *rng, struct es_store *store, int create, char *out, size_t outlen)
{
    char id[64];
    if (es_store_kv_get(store, "edge_id", id, sizeof(id)) < 0) {
        if (!create)
            return PX_ERR_NOT_FOUND;
        uint8_t b[8];
        if (px_pki_random(rng, b, sizeof(b)) < 0)
            return PX_ERR_CRYPTO;
        for (int i = 0; i < 8; i++)
            snprintf(id + 2 * i, 3, "%02x", b[i]);
        if (es_store_kv_set_if_absent(store, "edge_id", id) < 0 ||
            es_store_kv_get(store, "edge_id", id, sizeof(id)) < 0)
            return PX_ERR_DB;
    }
    int n = snprintf(out, outlen, "edge-sim:%s", id);
    return n > 0 && (size_t)n < outlen ? 0 : PX_ERR_INVAL;
}

void es_assert_free(struct es_assert *a)
{
    if (!a)
        return;
    free(a->issuer);
    free(a->key_pem);
    free(a->jwks);
    free(a);
}

/* Adds a first signing key unless one exists. */
static int ensure_key(WC_RNG *rng, struct es_store *store, long long now)
{
    char *key = NULL;
    char kid[44];
    int rc = px_pki_keygen(rng, &key);
    if (rc == 0)
        rc = px_jwt_kid(key, kid);
    if (rc == 0) {
        struct es_signing_key_rec k = {.kid = kid, .key_pem = key, .created = now};
        rc = es_store_signing_key_add(store, &k, 1);
    }
    free(key);
    return rc;
}

int es_assert_build(WC_RNG *rng, struct es_store *store, const char *issuer, long long now,
                    struct es_assert **out, char *why, size_t whylen)
{
    struct es_signing_key_rec *keys = NULL;
    size_t n = 0;
    json_t *set = NULL, *arr = NULL;
    struct es_assert *a = calloc(1, sizeof(*a));
    int rc = PX_ERR_NOMEM;
    if (!a || !(a->issuer = strdup(issuer)))
        goto fail;
    if ((rc = es_store_signing_key_list(store, &keys, &n)) < 0)
        goto fail;
    if (n == 0 || keys[0].retired) {
        es_store_signing_keys_free(keys, n);
        keys = NULL;
        n = 0;
        if ((rc = ensure_key(rng, store, now)) < 0 ||
            (rc = es_store_signing_key_list(store, &keys, &n)) < 0)
            goto fail;
        rc = PX_ERR_DB;
        if (n == 0)
            goto fail;
    }
    rc = PX_ERR_NOMEM;
    if ((rc = px_jwt_kid(keys[0].key_pem, a->kid)) < 0)
        goto fail;
    rc = PX_ERR_NOMEM;
    if (!(a->key_pem = strdup(keys[0].key_pem)) || !(set = json_object()) ||
        !(arr = json_array()) || json_object_set(set, "keys", arr) < 0)
        goto fail;
    for (size_t i = 0; i < n && i < ES_ASSERT_MAX_PUBLISHED; i++) {
        long long until = keys[i].retired ? keys[i].retired + ES_ASSERT_PUBLISH_AFTER_RETIRE : 0;
        if (until && until <= now)
            continue;
        if (until && (!a->next_change || until < a->next_change))
            a->next_change = until;
        json_t *jwk;
        if ((rc = px_jwt_jwk(keys[i].key_pem, &jwk)) < 0)
            goto fail;
        if (json_array_append_new(arr, jwk) < 0) {
            rc = PX_ERR_NOMEM;
            goto fail;
        }
    }
    rc = PX_ERR_NOMEM;
    if (!(a->jwks = px_json_dumps(set, JSON_COMPACT)))
        goto fail;
    rc = 0;
    *out = a;
    a = NULL;
fail:
    if (rc < 0)
        snprintf(why, whylen, "cannot load the assertion signing keys: %s", px_strerror(rc));
    json_decref(arr);
    json_decref(set);
    es_store_signing_keys_free(keys, n);
    es_assert_free(a);
    return rc;
}

long long es_assert_next_change(const struct es_assert *a)
{
    return a->next_change;
}

const char *es_assert_jwks(const struct es_assert *a)
{
    return a->jwks;
}

const char *es_assert_kid(const struct es_assert *a)
{
    return a->kid;
}

const char *es_assert_issuer(const struct es_assert *a)
{
    return a->issuer;
}

int es_assert_sign(const struct es_assert *a, const char *audience, const struct px_cert_info *leaf,
                   long long now, char **jwt)
{
    char *x5t = px_b64_encode(leaf->sha256, sizeof(leaf->sha256), 1);
    if (!x5t)
        return PX_ERR_NOMEM;
    json_t *claims =
        json_pack("{s:s,s:s,s:s,s:{s:s},s:I,s:I,s:I,s:s,s:s}", "iss", a->issuer, "aud", audience,
                  "sub", leaf->subject, "cnf", "x5t#S256", x5t, "iat", (json_int_t)now, "nbf",
                  (json_int_t)(now - 5), "exp", (json_int_t)(now + ES_ASSERT_TTL), "cert_serial",
                  leaf->serial, "cert_issuer", leaf->issuer);
    free(x5t);
    if (!claims)
        return PX_ERR_NOMEM;
    int rc = px_jwt_sign(a->key_pem, claims, jwt);
    json_decref(claims);
    return rc;
}
