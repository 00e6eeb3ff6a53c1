#include "cn_assert.h"
#include "px_err.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

struct cn_assert_keys {
    char *issuer;
    struct px_jwks *jwks;
};

int cn_assert_keys_new(const char *issuer, const char *jwks, struct cn_assert_keys **out)
{
    *out = NULL;
    if (!issuer || !*issuer || !jwks)
        return PX_ERR_INVAL;
    int rc = PX_ERR_NOMEM;
    json_error_t jerr;
    json_t *set = json_loads(jwks, JSON_REJECT_DUPLICATES, &jerr);
    struct cn_assert_keys *k = calloc(1, sizeof(*k));
    if (!k)
        goto out;
    if (!set) {
        rc = json_error_code(&jerr) == json_error_out_of_memory ? PX_ERR_NOMEM : PX_ERR_INVAL;
        goto out;
    }
    k->issuer = strdup(issuer);
    if (!k->issuer)
        goto out;
    rc = px_jwks_from_json(set, &k->jwks);
    if (rc < 0)
        goto out;
    *out = k;
    k = NULL;
out:
    cn_assert_keys_free(k);
    json_decref(set);
    return rc;
}

void cn_assert_keys_free(struct cn_assert_keys *k)
{
    if (!k)
        return;
    px_jwks_free(k->jwks);
    free(k->issuer);
    free(k);
}

size_t cn_assert_keys_count(const struct cn_assert_keys *k)
{
    return k ? px_jwks_count(k->jwks) : 0;
}

const char *cn_assert_keys_issuer(const struct cn_assert_keys *k)
{
    return k ? k->issuer : NULL;
}

int cn_assert_check(const struct cn_assert_keys *keys, const char *token, size_t len,
                    const char *audience, long long now)
{
    /* A request without an assertion is refused for that, whatever the keys:
     * it is what the person at the browser can act on. */
    if (!token)
        return PX_JWT_MISSING;
    if (!keys)
        return CN_ASSERT_NO_KEYS;
    return px_jwt_verify(keys->jwks, token, len, audience, keys->issuer, now, CN_ASSERT_LEEWAY_S,
                         NULL);
}

const char *cn_assert_verdict_str(int verdict)
{
    if (verdict == CN_ASSERT_NO_KEYS)
        return "no keys from the edge to check the assertion";
    return px_jwt_verdict_str(verdict);
}
