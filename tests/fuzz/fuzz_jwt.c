/* libFuzzer target for px_jwt: JWK Sets and compact tokens from outside.
 * The first byte picks what the rest is (mod 4):
 *   0: a JWK Set: json_loadb, px_jwks_from_json; a good token is then
 *      verified against whatever set came out;
 *   1: a compact token, verified against a fixed set (key A) with
 *      px_jwt_verify, from an exact-size copy (ASan sees any read past len);
 *   2: a claims object, signed here with key A and verified: the fuzzer
 *      reaches the claim checks, which a forged signature never would;
 *   3: a header object, joined to a fixed payload and a zero signature.
 * Properties: no crash/leak/undefined behaviour; a verdict is in range and
 * claims come back only with PX_JWT_OK; a set from px_jwks_from_json never
 * holds more keys than the input listed; a token signed here never fails on
 * algorithm, key or signature, round-trips its claims, and gets the verdict
 * an independent reading of its claims predicts. */
#include "fuzz_util.h"
#include "px_b64.h"
#include "px_err.h"
#include "px_jwt.h"

#include <jansson.h>

#include <limits.h>
#include <string.h>

/* tests/unit/proto/test_px_jwt.c's key A. */
static const char KEY_A[] = "-----BEGIN EC PRIVATE KEY-----\n"
                            "MHcCAQEEIKOyr3bzDl0Jx6ch6NmpRYnJF3N4XOwRgOEr0KSym5fnoAoGCCqGSM49\n"
                            "AwEHoUQDQgAEvtgec4rfGEXk0HSXo4B1yCBcr96xKX6qRhZcpWRjaRmCBmOwtOTW\n"
                            "mJoe+fsY36L/BH0jaA638N7JuCeKzkKiwg==\n"
                            "-----END EC PRIVATE KEY-----\n";
/* PyJWT 2.6, key A, {"iss":"edge.example","aud":"app.example",
 * "sub":"CN=laptop","iat":1750000000,"exp":4102444800,
 * "cnf":{"x5t#S256":"q83vEjRWeJA"}}, headers={"kid": key A's thumbprint}. */
static const char GOOD[] =
    "eyJhbGciOiJFUzI1NiIsImtpZCI6IkhEcTdFNzl6UjRoMFVtSHlQVzF2dWRnU01EUk1McksxTzdxT1RjemVTRzAiLCJ0"
    "eXAiOiJKV1QifQ."
    "eyJpc3MiOiJlZGdlLmV4YW1wbGUiLCJhdWQiOiJhcHAuZXhhbXBsZSIsInN1YiI6IkNOPWxhcHRvcCIsImlhdCI6MTc1"
    "MDAwMDAwMCwiZXhwIjo0MTAyNDQ0ODAwLCJjbmYiOnsieDV0I1MyNTYiOiJxODN2RWpSV2VKQSJ9fQ."
    "rCrpR804IDNm-zrEGyrjZ0_xT0_sD17t7lt1-E4MeYBbpy-W2xa3f7yoJ3g5Lud8d8h0xHNtq3fMvCrSJv-aag";
#define AUD "app.example"
#define ISS "edge.example"
#define NOW 1750000000LL
#define LEEWAY 30LL

/* Built once; read-only afterwards. */
static struct px_jwks *keys_a(void)
{
    static struct px_jwks *set;
    if (set)
        return set;
    json_t *jwk = NULL;
    if (px_jwt_jwk(KEY_A, &jwk) != 0)
        FAIL();
    json_t *doc = json_pack("{s:[o]}", "keys", jwk);
    if (!doc || px_jwks_from_json(doc, &set) != 0 || px_jwks_count(set) != 1)
        FAIL();
    json_decref(doc);
    if (px_jwt_verify(set, GOOD, strlen(GOOD), AUD, ISS, NOW, 0, NULL) != PX_JWT_OK)
        FAIL();
    return set;
}

/* px_jwt_verify on an exact-size copy of t/n; checks the common properties. */
static int verify(const struct px_jwks *k, const char *t, size_t n, json_t **claims)
{
    char *copy = malloc(n ? n : 1);
    if (!copy)
        return PX_ERR_NOMEM;
    if (n)
        memcpy(copy, t, n);
    json_t *c = NULL;
    int rc = px_jwt_verify(k, copy, n, AUD, ISS, NOW, LEEWAY, &c);
    free(copy);
    if (rc < PX_JWT_OK || rc > PX_JWT_WRONG_ISSUER || rc == PX_JWT_MISSING)
        FAIL();
    if ((rc == PX_JWT_OK) != (c != NULL) || (c && !json_is_object(c)))
        FAIL();
    if (!px_jwt_verdict_str(rc)[0])
        FAIL();
    if (claims)
        *claims = c;
    else
        json_decref(c);
    return rc;
}

/* ---- an independent reading of the claims (mode 2) ---- */

static int is_num(const json_t *v)
{
    return json_is_integer(v) || json_is_real(v);
}

/* v (a number) > lim */
static int after(const json_t *v, long long lim)
{
    if (json_is_integer(v))
        return json_integer_value(v) > lim;
    return json_real_value(v) > (double)lim;
}

static int expected(const json_t *c)
{
    const json_t *exp = json_object_get(c, "exp"), *nbf = json_object_get(c, "nbf"),
                 *iat = json_object_get(c, "iat"), *aud = json_object_get(c, "aud"),
                 *iss = json_object_get(c, "iss"), *sub = json_object_get(c, "sub");
    if ((exp && !is_num(exp)) || (nbf && !is_num(nbf)) || (iat && !is_num(iat)) ||
        (iss && !json_is_string(iss)) || (sub && !json_is_string(sub)))
        return PX_JWT_MALFORMED;
    int aud_ok = 0;
    if (json_is_string(aud)) {
        aud_ok = strcmp(json_string_value(aud), AUD) == 0;
    } else if (json_is_array(aud)) {
        for (size_t i = 0; i < json_array_size(aud); i++) {
            const json_t *e = json_array_get(aud, i);
            if (!json_is_string(e))
                return PX_JWT_MALFORMED;
            aud_ok |= strcmp(json_string_value(e), AUD) == 0;
        }
    } else if (aud) {
        return PX_JWT_MALFORMED;
    }
    if (!exp || !after(exp, NOW - LEEWAY))
        return PX_JWT_EXPIRED;
    if ((nbf && after(nbf, NOW + LEEWAY)) || (iat && after(iat, NOW + LEEWAY)))
        return PX_JWT_NOT_YET_VALID;
    if (!aud_ok)
        return PX_JWT_WRONG_AUDIENCE;
    if (!iss || strcmp(json_string_value(iss), ISS) != 0)
        return PX_JWT_WRONG_ISSUER;
    return PX_JWT_OK;
}

static void claims_mode(const uint8_t *d, size_t n)
{
    json_t *c = json_loadb((const char *)d, n, 0, NULL);
    if (!json_is_object(c)) {
        json_decref(c);
        return;
    }
    char *t = NULL;
    if (px_jwt_sign(KEY_A, c, &t) != 0 || !t)
        FAIL();
    json_t *got = NULL;
    int rc = verify(keys_a(), t, strlen(t), &got);
    int want = strlen(t) > PX_JWT_MAX_LEN ? PX_JWT_MALFORMED : expected(c);
    if (rc != want) {
        fprintf(stderr, "verdict %d (%s), expected %d (%s)\n", rc, px_jwt_verdict_str(rc), want,
                px_jwt_verdict_str(want));
        FAIL();
    }
    if (got && !json_equal(got, c))
        FAIL();
    json_decref(got);
    free(t);
    json_decref(c);
}

static void header_mode(const uint8_t *d, size_t n)
{
    static const uint8_t zero[64];
    char *h = px_b64_encode(d, n, 1);
    char *s = px_b64_encode(zero, sizeof(zero), 1);
    const char *p = strchr(GOOD, '.') + 1;
    size_t plen = (size_t)(strchr(p, '.') - p);
    if (h && s) {
        size_t len = strlen(h) + 1 + plen + 1 + strlen(s);
        char *t = malloc(len + 1);
        if (t) {
            snprintf(t, len + 1, "%s.%.*s.%s", h, (int)plen, p, s);
            if (verify(keys_a(), t, len, NULL) == PX_JWT_OK)
                FAIL(); /* a zero signature never verifies */
            free(t);
        }
    }
    free(h);
    free(s);
}

static void jwks_mode(const uint8_t *d, size_t n)
{
    json_t *doc = json_loadb((const char *)d, n, 0, NULL);
    if (!doc)
        return;
    struct px_jwks *k = (struct px_jwks *)1;
    int rc = px_jwks_from_json(doc, &k);
    if (rc == 0) {
        if (!k || px_jwks_count(k) > json_array_size(json_object_get(doc, "keys")))
            FAIL();
        rc = verify(k, GOOD, strlen(GOOD), NULL);
        if (rc != PX_JWT_OK && rc != PX_JWT_UNKNOWN_KEY && rc != PX_JWT_BAD_SIGNATURE)
            FAIL();
        px_jwks_free(k);
    } else if (rc != PX_ERR_INVAL || k) {
        FAIL();
    }
    json_decref(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    keys_a();
    const uint8_t *d = data + 1;
    size_t n = size - 1;
    switch (data[0] % 4) {
    case 0:
        jwks_mode(d, n);
        break;
    case 1:
        verify(keys_a(), (const char *)d, n, NULL);
        break;
    case 2:
        claims_mode(d, n);
        break;
    case 3:
        header_mode(d, n);
        break;
    }
    return 0;
}
