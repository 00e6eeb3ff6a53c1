/* px_jwt: ES256 sign/verify round trip, the RFC 7638 kid of a fixed key,
 * every verdict of px_jwt_verify, JWK Set parsing (foreign keys skipped,
 * off-curve and malformed P-256 keys refused), the length limit, a token
 * made by PyJWT verifying here, and wolfCrypt failing (its allocations made
 * to fail one by one): an error, never a wrong verdict or a bad token. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "px_b64.h"
#include "px_err.h"
#include "px_jwt.h"
#include "px_pki.h"
#include "test_rng.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/memory.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Fixture key A, SEC1 "EC PRIVATE KEY" as px_pki_keygen writes it. Made with
 * python3-cryptography 38 (ec.generate_private_key(ec.SECP256R1())); its x,
 * y and RFC 7638 thumbprint were computed in Python, independently of this
 * code:
 *   n = key.public_key().public_numbers()
 *   x, y = b64u(n.x.to_bytes(32, "big")), b64u(n.y.to_bytes(32, "big"))
 *   b64u(sha256(json.dumps({"crv": "P-256", "kty": "EC", "x": x, "y": y},
 *                          separators=(",", ":"), sort_keys=True)).digest())
 * with b64u = urlsafe_b64encode without "=". */
static const char KEY_A[] = "-----BEGIN EC PRIVATE KEY-----\n"
                            "MHcCAQEEIKOyr3bzDl0Jx6ch6NmpRYnJF3N4XOwRgOEr0KSym5fnoAoGCCqGSM49\n"
                            "AwEHoUQDQgAEvtgec4rfGEXk0HSXo4B1yCBcr96xKX6qRhZcpWRjaRmCBmOwtOTW\n"
                            "mJoe+fsY36L/BH0jaA638N7JuCeKzkKiwg==\n"
                            "-----END EC PRIVATE KEY-----\n";
static const char PUB_A[] = "-----BEGIN PUBLIC KEY-----\n"
                            "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEvtgec4rfGEXk0HSXo4B1yCBcr96x\n"
                            "KX6qRhZcpWRjaRmCBmOwtOTWmJoe+fsY36L/BH0jaA638N7JuCeKzkKiwg==\n"
                            "-----END PUBLIC KEY-----\n";
#define X_A "vtgec4rfGEXk0HSXo4B1yCBcr96xKX6qRhZcpWRjaRk"
#define Y_A "ggZjsLTk1piaHvn7GN-i_wR9I2gOt_Deybgnis5CosI"
#define KID_A "HDq7E79zR4h0UmHyPW1vudgSMDRMLrK1O7qOTczeSG0"
/* Y_A + 1: not on the curve. */
#define Y_A_OFF "ggZjsLTk1piaHvn7GN-i_wR9I2gOt_Deybgnis5CosM"

/* Fixture key B, PKCS#8 "PRIVATE KEY" (python3-cryptography 38). JWKS_B is
 * PyJWT 2.6's jwt.algorithms.ECAlgorithm.to_jwk(public key) with "kid" set
 * to its RFC 7638 thumbprint (computed in Python as above), and TOKEN_B is
 *   jwt.encode({"iss": "edge.example", "aud": ["other", "app.example"],
 *               "sub": "CN=phone", "iat": 1700000000, "exp": 1700000300,
 *               "cnf": {"x5t#S256": "abc"}}, KEY_B, algorithm="ES256",
 *              headers={"kid": KID_B})                                      */
static const char KEY_B[] = "-----BEGIN PRIVATE KEY-----\n"
                            "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgvb+t7LZoYUe3y39S\n"
                            "svFwvY7Vl3x/ZNvVDP0LlTccHXahRANCAATxrgDeWV3Cer7tPaSWI2FVyOlrVRov\n"
                            "Gjr9RZsxEhTe0MVP3Rzd9W7NKYVOa8AQBupNblpQ8yler5SKwv0lHKFb\n"
                            "-----END PRIVATE KEY-----\n";
#define KID_B "CrPxwJmYWMCVcYzY_PTGjje2zyL0Qf4LiEWWhvz03Qc"
static const char JWKS_B[] =
    "{\"keys\":[{\"kty\": \"EC\", \"crv\": \"P-256\", "
    "\"x\": \"8a4A3lldwnq-7T2kliNhVcjpa1UaLxo6_UWbMRIU3tA\", "
    "\"y\": \"xU_dHN31bs0phU5rwBAG6k1uWlDzKV6vlIrC_SUcoVs\", \"kid\": \"" KID_B "\"}]}";
static const char TOKEN_B[] =
    "eyJhbGciOiJFUzI1NiIsImtpZCI6IkNyUHh3Sm1ZV01DVmNZellfUFRHamplMnp5TDBRZjRMaUVXV2h2ejAzUWMiLCJ0"
    "eXAiOiJKV1QifQ."
    "eyJpc3MiOiJlZGdlLmV4YW1wbGUiLCJhdWQiOlsib3RoZXIiLCJhcHAuZXhhbXBsZSJdLCJzdWIiOiJDTj1waG9uZSIs"
    "ImlhdCI6MTcwMDAwMDAwMCwiZXhwIjoxNzAwMDAwMzAwLCJjbmYiOnsieDV0I1MyNTYiOiJhYmMifX0."
    "qCFXloEYagso8_2iFz_Szmi99DtK44Lgh15jd5KVjrUcJ0ip_PNBj509lZrMPm8cgdSMOBq5i74glq3jli7fmw";

/* Not P-256 / not EC (python3-cryptography). */
static const char KEY_P384[] = "-----BEGIN EC PRIVATE KEY-----\n"
                               "MIGkAgEBBDAeDMSuMAm2unwfAGBHHEh3Wz2fUMLkL9SRpJtg8Wtq6eOoDk4OyaO9\n"
                               "aNU55PgCxOCgBwYFK4EEACKhZANiAATuhhqwZ6msrpfkGfB9ucmRWLuYGjO5njBh\n"
                               "/s6fwi4ZZKB35hqlvoh4+475xzZVRnf3pHXqfmt0Ex+b44P7NPnLLhxOmAdeeuWW\n"
                               "4r+4JrrSMut5RpLQpEx3k+6joHmSpB4=\n"
                               "-----END EC PRIVATE KEY-----\n";
static const char KEY_RSA[] = "-----BEGIN PRIVATE KEY-----\n"
                              "MIICdQIBADANBgkqhkiG9w0BAQEFAASCAl8wggJbAgEAAoGBAKH2ySfLmw3YK4aI\n"
                              "YsCog/aBN6bcygwHyDKeB+rXQJEBL4Ia/cyiFcBEG24TrOleMUZIR+YN8XZjAFqk\n"
                              "O4hjTetyPtNPmESEFdO7XZVQcuZ2uhofd6HsA0X/V+SvCgyk0+4k1P0V3jX3Qq3E\n"
                              "lLD94CjQSpNgGcEs0wT15S+lt3NVAgMBAAECgYAt/TY3D5BSiQwq4jUwQWlfKGfW\n"
                              "AKF6cwc8oDTdUQurYOvNhL6GSYvlkTE8u2eAyFczfrizsUfb9taV5kZlPtVTzuY1\n"
                              "3PEv4T5tlz8D8LL/Cu8YUX54T5N7ZbVSRUA+uoweLLASeFouJ0S5q/rSB8SBVofv\n"
                              "ju9jOAg7p1NN3Pm/LQJBANIHG6R/ZwOabr85YPfzvkURHLBIgIYg84vzs99FpFho\n"
                              "xBM4QorMUI8l4yyXnO/Y28ummI6Ky2FU2jFzeXIkGw8CQQDFam2gko9pliPS0ktE\n"
                              "tx+HNi+m+ITKRSo5Katq/d6qLFdGuUkc2vjaRJcwTAO+sxSS06/jHOMC2AthZVsE\n"
                              "hNtbAkAyEg+8/8KHUWHlpMBBXJKX1KSKQj6hu2lUjBzttaSgjxlvm5IBlQP/nIC0\n"
                              "ONDpPUHpIyZrlRs3cQszjtv9Ii5xAkAHFbq5eIkNEQZYGpP481l+UMOFCoY5fCH3\n"
                              "yzcLr/C9yrmXIC8viexEaRHD+fZocaTbYB1/2RmMkJRX+ns5vkrhAkAR8hRo1lYh\n"
                              "0RCwiePIhmLylxxnS78XICN1qfsZN/43HnDrO8B514l7DBHAmy6tXxaolj40Y+zr\n"
                              "SwSNgihH9SJ1\n"
                              "-----END PRIVATE KEY-----\n";

#define NOW 1750000000LL
#define AUD "app.example"
#define ISS "edge.example"

/* A set holding key A (the JWK px_jwt_jwk makes of it). */
static struct px_jwks *set_a(void)
{
    json_t *jwk = NULL;
    assert_int_equal(px_jwt_jwk(KEY_A, &jwk), 0);
    json_t *doc = json_pack("{s:[o]}", "keys", jwk);
    assert_non_null(doc);
    struct px_jwks *k = NULL;
    assert_int_equal(px_jwks_from_json(doc, &k), 0);
    json_decref(doc);
    assert_int_equal(px_jwks_count(k), 1);
    return k;
}

static struct px_jwks *set_from(const char *text, int want_rc)
{
    json_error_t err;
    json_t *doc = json_loads(text, 0, &err);
    if (!doc)
        fail_msg("bad fixture JSON: %s", err.text);
    struct px_jwks *k = (struct px_jwks *)1;
    assert_int_equal(px_jwks_from_json(doc, &k), want_rc);
    json_decref(doc);
    if (want_rc != 0)
        assert_null(k);
    return k;
}

/* Valid claims for AUD/ISS at NOW, with over (may be NULL) merged in. */
static char *sign_a(const char *over)
{
    json_t *c = json_pack("{s:s,s:s,s:s,s:I,s:I}", "iss", ISS, "aud", AUD, "sub", "CN=laptop",
                          "iat", (json_int_t)(NOW - 10), "exp", (json_int_t)(NOW + 300));
    assert_non_null(c);
    if (over) {
        json_t *o = json_loads(over, 0, NULL);
        assert_non_null(o);
        /* a JSON null removes the claim */
        const char *name;
        json_t *v;
        json_object_foreach(o, name, v)
        {
            if (json_is_null(v))
                json_object_del(c, name);
            else
                json_object_set(c, name, v);
        }
        json_decref(o);
    }
    char *jwt = NULL;
    assert_int_equal(px_jwt_sign(KEY_A, c, &jwt), 0);
    json_decref(c);
    assert_non_null(jwt);
    return jwt;
}

static int verify(const struct px_jwks *k, const char *jwt, const char *aud, const char *iss,
                  long long now, long long leeway)
{
    /* An exact-size copy without a NUL: ASan catches any read past len. */
    size_t n = strlen(jwt);
    char *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    memcpy(copy, jwt, n);
    json_t *claims = NULL;
    int rc = px_jwt_verify(k, copy, n, aud, iss, now, leeway, &claims);
    free(copy);
    if (rc == PX_JWT_OK)
        assert_non_null(claims);
    else
        assert_null(claims);
    json_decref(claims);
    return rc;
}

static char *b64(const void *p, size_t n)
{
    char *s = px_b64_encode(p, n, 1);
    assert_non_null(s);
    return s;
}

/* header.payload.sig from JSON texts and raw signature bytes. */
static char *assemble(const char *hdr, const char *payload, const void *sig, size_t sig_len)
{
    char *h = b64(hdr, strlen(hdr)), *p = b64(payload, strlen(payload)), *s = b64(sig, sig_len);
    size_t n = strlen(h) + strlen(p) + strlen(s) + 3;
    char *out = malloc(n);
    assert_non_null(out);
    snprintf(out, n, "%s.%s.%s", h, p, s);
    free(h);
    free(p);
    free(s);
    return out;
}

/* The three parts of jwt as newly allocated strings. */
static void split(const char *jwt, char **h, char **p, char **s)
{
    const char *d1 = strchr(jwt, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    assert_non_null(d2);
    *h = strndup(jwt, (size_t)(d1 - jwt));
    *p = strndup(d1 + 1, (size_t)(d2 - d1 - 1));
    *s = strdup(d2 + 1);
}

static char *join(const char *h, const char *p, const char *s)
{
    size_t n = strlen(h) + strlen(p) + strlen(s) + 3;
    char *out = malloc(n);
    assert_non_null(out);
    snprintf(out, n, "%s.%s.%s", h, p, s);
    return out;
}

static json_t *decode_part(const char *s)
{
    uint8_t *raw;
    size_t n;
    assert_int_equal(px_b64_decode(s, strlen(s), &raw, &n), 0);
    json_t *v = json_loadb((const char *)raw, n, 0, NULL);
    free(raw);
    assert_non_null(v);
    return v;
}

/* ---- keys ---- */

static void test_kid_fixture(void **state)
{
    (void)state;
    char kid[44];
    memset(kid, 'z', sizeof(kid));
    assert_int_equal(px_jwt_kid(KEY_A, kid), 0);
    assert_string_equal(kid, KID_A);
    memset(kid, 'z', sizeof(kid));
    assert_int_equal(px_jwt_kid(PUB_A, kid), 0);
    assert_string_equal(kid, KID_A);
    /* PKCS#8 key, against PyJWT's own JWK export. */
    assert_int_equal(px_jwt_kid(KEY_B, kid), 0);
    assert_string_equal(kid, KID_B);

    json_t *jwk = NULL;
    assert_int_equal(px_jwt_jwk(KEY_A, &jwk), 0);
    assert_string_equal(json_string_value(json_object_get(jwk, "kty")), "EC");
    assert_string_equal(json_string_value(json_object_get(jwk, "crv")), "P-256");
    assert_string_equal(json_string_value(json_object_get(jwk, "x")), X_A);
    assert_string_equal(json_string_value(json_object_get(jwk, "y")), Y_A);
    assert_string_equal(json_string_value(json_object_get(jwk, "kid")), KID_A);
    assert_string_equal(json_string_value(json_object_get(jwk, "use")), "sig");
    assert_string_equal(json_string_value(json_object_get(jwk, "alg")), "ES256");
    assert_null(json_object_get(jwk, "d")); /* never the private part */
    assert_int_equal(json_object_size(jwk), 7);
    json_decref(jwk);
}

/* The public point of a PEM key, read independently of px_jwt: the last 64
 * bytes of its SubjectPublicKeyInfo are X || Y. */
static void spki_xy(const char *pem, uint8_t xy[64])
{
    char *pub = NULL;
    assert_int_equal(px_pki_pubkey(pem, &pub), 0);
    char *body = strstr(pub, "-----\n") + 6, *end = strstr(body, "-----END");
    char *b = malloc((size_t)(end - body) + 1);
    size_t n = 0;
    for (const char *c = body; c < end; c++)
        if (*c != '\n')
            b[n++] = *c;
    uint8_t *der;
    size_t der_len;
    assert_int_equal(px_b64_decode(b, n, &der, &der_len), 0);
    assert_int_equal(der_len, 91);
    assert_int_equal(der[26], 0x04);
    memcpy(xy, der + 27, 64);
    free(der);
    free(b);
    free(pub);
}

static void test_kid_generated_keys(void **state)
{
    (void)state;
    /* A coordinate with a leading zero byte must still be 32 bytes (43
     * characters) and keep its zero: generate keys until one has one (1 in
     * 128 does). */
    int leading_zero = 0;
    for (int i = 0; i < 3000 && !leading_zero; i++) {
        char *pem = NULL, kid[44];
        uint8_t xy[64];
        assert_int_equal(px_pki_keygen(test_rng(), &pem), 0);
        spki_xy(pem, xy);
        leading_zero = xy[0] == 0 || xy[32] == 0;
        json_t *jwk = NULL;
        assert_int_equal(px_jwt_jwk(pem, &jwk), 0);
        char *x = b64(xy, 32), *y = b64(xy + 32, 32);
        assert_string_equal(json_string_value(json_object_get(jwk, "x")), x);
        assert_string_equal(json_string_value(json_object_get(jwk, "y")), y);
        assert_int_equal(px_jwt_kid(pem, kid), 0);
        assert_string_equal(kid, json_string_value(json_object_get(jwk, "kid")));
        free(x);
        free(y);
        json_decref(jwk);
        free(pem);
    }
    assert_true(leading_zero);
}

/* R or S with a leading zero byte (1 signature in 256 each) is still sent as
 * 32 bytes: sign until both have happened; every signature verifies. */
static void test_short_r_s(void **state)
{
    (void)state;
    struct px_jwks *k = set_a();
    int short_r = 0, short_s = 0;
    for (int i = 0; i < 5000 && !(short_r && short_s); i++) {
        char *t = sign_a(NULL);
        const char *s = strrchr(t, '.') + 1;
        uint8_t *sig;
        size_t n;
        assert_int_equal(px_b64_decode(s, strlen(s), &sig, &n), 0);
        assert_int_equal(n, 64);
        short_r |= sig[0] == 0;
        short_s |= sig[32] == 0;
        free(sig);
        assert_int_equal(verify(k, t, AUD, ISS, NOW, 0), PX_JWT_OK);
        free(t);
    }
    assert_true(short_r && short_s);
    px_jwks_free(k);
}

static void test_bad_keys(void **state)
{
    (void)state;
    char kid[44];
    json_t *jwk = (json_t *)1;
    char *jwt = (char *)1;
    json_t *claims = json_pack("{s:I}", "exp", (json_int_t)(NOW + 60));
    const char *bad[] = {KEY_P384, KEY_RSA, "", "not a key",
                         "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(px_jwt_kid(bad[i], kid), PX_ERR_INVAL);
        assert_int_equal(px_jwt_jwk(bad[i], &jwk), PX_ERR_INVAL);
        assert_null(jwk);
        assert_int_equal(px_jwt_sign(bad[i], claims, &jwt), PX_ERR_INVAL);
        assert_null(jwt);
        jwk = (json_t *)1;
        jwt = (char *)1;
    }
    /* A public key cannot sign; claims must be an object. */
    assert_int_equal(px_jwt_sign(PUB_A, claims, &jwt), PX_ERR_INVAL);
    json_t *arr = json_array();
    assert_int_equal(px_jwt_sign(KEY_A, arr, &jwt), PX_ERR_INVAL);
    assert_int_equal(px_jwt_sign(KEY_A, NULL, &jwt), PX_ERR_INVAL);
    json_decref(arr);
    json_decref(claims);
}

/* ---- round trip ---- */

static void test_round_trip(void **state)
{
    (void)state;
    struct px_jwks *k = set_a();
    char *jwt = sign_a("{\"cnf\":{\"x5t#S256\":\"q83vEjRWeJA\"}}");

    /* The header we promise, and a 64-byte raw R || S signature. */
    char *h, *p, *s;
    split(jwt, &h, &p, &s);
    json_t *hdr = decode_part(h);
    assert_string_equal(json_string_value(json_object_get(hdr, "alg")), "ES256");
    assert_string_equal(json_string_value(json_object_get(hdr, "typ")), "JWT");
    assert_string_equal(json_string_value(json_object_get(hdr, "kid")), KID_A);
    assert_int_equal(json_object_size(hdr), 3);
    json_decref(hdr);
    assert_null(strpbrk(jwt, "=+/ \n"));
    uint8_t *sig;
    size_t sig_len;
    assert_int_equal(px_b64_decode(s, strlen(s), &sig, &sig_len), 0);
    assert_int_equal(sig_len, 64);
    free(sig);

    json_t *claims = NULL;
    assert_int_equal(px_jwt_verify(k, jwt, strlen(jwt), AUD, ISS, NOW, 0, &claims), PX_JWT_OK);
    assert_string_equal(json_string_value(json_object_get(claims, "sub")), "CN=laptop");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(claims, "cnf"), "x5t#S256")),
        "q83vEjRWeJA");
    json_decref(claims);
    /* claims may be NULL; audience/issuer NULL are not checked. */
    assert_int_equal(px_jwt_verify(k, jwt, strlen(jwt), NULL, NULL, NOW, 0, NULL), PX_JWT_OK);

    /* Only len bytes are read: trailing bytes after len are not part of it. */
    size_t n = strlen(jwt);
    char *longer = malloc(n + 5);
    memcpy(longer, jwt, n);
    memcpy(longer + n, "AAAA", 5);
    assert_int_equal(px_jwt_verify(k, longer, n, AUD, ISS, NOW, 0, NULL), PX_JWT_OK);
    assert_int_equal(px_jwt_verify(k, longer, n + 4, AUD, ISS, NOW, 0, NULL), PX_JWT_BAD_SIGNATURE);
    assert_int_not_equal(px_jwt_verify(k, jwt, n - 1, AUD, ISS, NOW, 0, NULL), PX_JWT_OK);
    free(longer);

    /* A fresh key verifies with its own set only. */
    char *pem = NULL, *jwt2 = NULL;
    assert_int_equal(px_pki_keygen(test_rng(), &pem), 0);
    json_t *c = json_pack("{s:I,s:s}", "exp", (json_int_t)(NOW + 60), "aud", AUD);
    assert_int_equal(px_jwt_sign(pem, c, &jwt2), 0);
    assert_int_equal(verify(k, jwt2, AUD, NULL, NOW, 0), PX_JWT_UNKNOWN_KEY);
    json_t *jwk = NULL;
    assert_int_equal(px_jwt_jwk(pem, &jwk), 0);
    json_t *doc = json_pack("{s:[o]}", "keys", jwk);
    struct px_jwks *k2 = NULL;
    assert_int_equal(px_jwks_from_json(doc, &k2), 0);
    assert_int_equal(verify(k2, jwt2, AUD, NULL, NOW, 0), PX_JWT_OK);
    /* Two signatures of the same claims differ (random k) and both verify. */
    char *jwt3 = NULL;
    assert_int_equal(px_jwt_sign(pem, c, &jwt3), 0);
    assert_string_not_equal(jwt2, jwt3);
    assert_int_equal(verify(k2, jwt3, AUD, NULL, NOW, 0), PX_JWT_OK);
    px_jwks_free(k2);
    json_decref(doc);
    json_decref(c);
    free(jwt3);
    free(jwt2);
    free(pem);

    free(h);
    free(p);
    free(s);
    free(jwt);
    px_jwks_free(k);
}

/* ---- verdicts ---- */

static void test_malformed(void **state)
{
    (void)state;
    struct px_jwks *k = set_a();
    char *good = sign_a(NULL);
    char *h, *p, *s;
    split(good, &h, &p, &s);
    const char *hdr = "{\"alg\":\"ES256\",\"kid\":\"" KID_A "\"}";
    const char *pl = "{\"exp\":1900000000}";
    uint8_t sig[64] = {1};

    assert_int_equal(px_jwt_verify(k, "", 0, NULL, NULL, NOW, 0, NULL), PX_JWT_MALFORMED);
    assert_int_equal(px_jwt_verify(k, NULL, 0, NULL, NULL, NOW, 0, NULL), PX_JWT_MALFORMED);
    char *t;
    /* two parts, four parts */
    size_t n = strlen(h) + strlen(p) + 2;
    t = malloc(n);
    snprintf(t, n, "%s.%s", h, p);
    assert_int_equal(verify(k, t, NULL, NULL, NOW, 0), PX_JWT_MALFORMED);
    free(t);
    t = malloc(strlen(good) + 8);
    snprintf(t, strlen(good) + 8, "%s.%s", good, s);
    assert_int_equal(verify(k, t, NULL, NULL, NOW, 0), PX_JWT_MALFORMED);
    free(t);
    assert_int_equal(verify(k, "..", NULL, NULL, NOW, 0), PX_JWT_MALFORMED);
    assert_int_equal(verify(k, "...", NULL, NULL, NOW, 0), PX_JWT_MALFORMED);
    assert_int_equal(verify(k, "abc", NULL, NULL, NOW, 0), PX_JWT_MALFORMED);

    /* bad base64 in each part, standard alphabet, padding, whitespace */
    const char *bad_b64[] = {"!!!!", "ab$d", "eyJ=", "a", "ey J", "+/+/"};
    for (size_t i = 0; i < sizeof(bad_b64) / sizeof(bad_b64[0]); i++) {
        t = join(bad_b64[i], p, s);
        assert_int_equal(verify(k, t, NULL, NULL, NOW, 0), PX_JWT_MALFORMED);
        free(t);
        t = join(h, bad_b64[i], s);
        assert_int_equal(verify(k, t, NULL, NULL, NOW, 0), PX_JWT_MALFORMED);
        free(t);
        t = join(h, p, bad_b64[i]);
        assert_int_equal(verify(k, t, NULL, NULL, NOW, 0), PX_JWT_MALFORMED);
        free(t);
    }
    /* the good signature with "=" padding appended */
    n = strlen(good) + 3;
    t = malloc(n);
    snprintf(t, n, "%s==", good);
    assert_int_equal(verify(k, t, NULL, NULL, NOW, 0), PX_JWT_MALFORMED);
    free(t);

    /* header: not JSON, not an object, trailing text, duplicate member, crit */
    const char *bad_hdr[] = {
        "not json",
        "[\"ES256\"]",
        "\"ES256\"",
        "",
        "{\"alg\":\"ES256\",\"kid\":\"" KID_A "\"} x",
        "{\"alg\":\"ES256\",\"kid\":\"" KID_A "\"",
        "{\"alg\":\"ES256\",\"alg\":\"ES256\",\"kid\":\"" KID_A "\"}",
        "{\"alg\":\"ES256\",\"kid\":\"" KID_A "\",\"crit\":[\"exp\"],\"exp\":1}",
        "{\"alg\":\"ES256\",\"kid\":\"x\\u0000y\"}",
    };
    for (size_t i = 0; i < sizeof(bad_hdr) / sizeof(bad_hdr[0]); i++) {
        t = assemble(bad_hdr[i], pl, sig, sizeof(sig));
        if (verify(k, t, NULL, NULL, NOW, 0) != PX_JWT_MALFORMED)
            fail_msg("header %s: not MALFORMED", bad_hdr[i]);
        free(t);
    }
    /* payload: not JSON, not an object, duplicate claim */
    const char *bad_pl[] = {"", "nope", "[1]", "1900000000", "{\"exp\":1,\"exp\":1900000000}"};
    for (size_t i = 0; i < sizeof(bad_pl) / sizeof(bad_pl[0]); i++) {
        t = assemble(hdr, bad_pl[i], sig, sizeof(sig));
        if (verify(k, t, NULL, NULL, NOW, 0) != PX_JWT_MALFORMED)
            fail_msg("payload %s: not MALFORMED", bad_pl[i]);
        free(t);
    }
    free(h);
    free(p);
    free(s);
    free(good);
    px_jwks_free(k);
}

/* Fills the stack below us with 0x01 (jansson's json_error_out_of_memory):
 * a header that is valid JSON but not an object once read an unset
 * json_error_t and said "no memory" (found by fuzz_jwt). */
static __attribute__((noinline)) void dirty_stack(void)
{
    volatile unsigned char junk[32768];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = 1;
}

static void test_not_object_after_dirty_stack(void **state)
{
    (void)state;
    struct px_jwks *k = set_a();
    uint8_t sig[64] = {1};
    const char *parts[] = {"[1]", "\"ES256\"", "1", "null"};
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        char *t = assemble(parts[i], "{\"exp\":1900000000}", sig, sizeof(sig));
        dirty_stack();
        assert_int_equal(verify(k, t, NULL, NULL, NOW, 0), PX_JWT_MALFORMED);
        free(t);
        t = assemble("{\"alg\":\"ES256\",\"kid\":\"" KID_A "\"}", parts[i], sig, sizeof(sig));
        dirty_stack();
        assert_int_equal(verify(k, t, NULL, NULL, NOW, 0), PX_JWT_MALFORMED);
        free(t);
    }
    px_jwks_free(k);
}

static void test_bad_algorithm(void **state)
{
    (void)state;
    struct px_jwks *k = set_a();
    const char *pl = "{\"exp\":1900000000,\"aud\":\"" AUD "\"}";
    /* alg none with an empty signature (the classic), HS256 with an HMAC-sized
     * signature (the key-confusion attack), and near misses. */
    const char *hdrs[] = {
        "{\"alg\":\"none\",\"kid\":\"" KID_A "\"}",
        "{\"alg\":\"None\",\"kid\":\"" KID_A "\"}",
        "{\"alg\":\"HS256\",\"kid\":\"" KID_A "\"}",
        "{\"alg\":\"ES384\",\"kid\":\"" KID_A "\"}",
        "{\"alg\":\"RS256\",\"kid\":\"" KID_A "\"}",
        "{\"alg\":\"es256\",\"kid\":\"" KID_A "\"}",
        "{\"alg\":\"ES256 \",\"kid\":\"" KID_A "\"}",
        "{\"alg\":null,\"kid\":\"" KID_A "\"}",
        "{\"alg\":256,\"kid\":\"" KID_A "\"}",
        "{\"alg\":[\"ES256\"],\"kid\":\"" KID_A "\"}",
        "{\"kid\":\"" KID_A "\"}",
    };
    uint8_t sig[64];
    memset(sig, 0x5a, sizeof(sig));
    for (size_t i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++) {
        for (size_t len = 0; len <= 64; len += 32) {
            char *t = assemble(hdrs[i], pl, sig, len);
            if (verify(k, t, AUD, NULL, NOW, 0) != PX_JWT_BAD_ALGORITHM)
                fail_msg("header %s, %zu-byte signature: not BAD_ALGORITHM", hdrs[i], len);
            free(t);
        }
    }
    /* "alg":"none" with no signature part at all ("h.p."): same. */
    char *t = assemble(hdrs[0], pl, "", 0);
    assert_int_equal(verify(k, t, AUD, NULL, NOW, 0), PX_JWT_BAD_ALGORITHM);
    free(t);
    px_jwks_free(k);
}

static void test_unknown_key(void **state)
{
    (void)state;
    struct px_jwks *k = set_a();
    /* signed by key B, which is not in the set */
    json_t *c = json_pack("{s:I}", "exp", (json_int_t)(NOW + 60));
    char *jwt = NULL;
    assert_int_equal(px_jwt_sign(KEY_B, c, &jwt), 0);
    assert_int_equal(verify(k, jwt, NULL, NULL, NOW, 0), PX_JWT_UNKNOWN_KEY);
    free(jwt);
    json_decref(c);
    /* kid missing, not a string, empty, a prefix of the real one */
    const char *hdrs[] = {
        "{\"alg\":\"ES256\"}",
        "{\"alg\":\"ES256\",\"kid\":42}",
        "{\"alg\":\"ES256\",\"kid\":\"\"}",
        "{\"alg\":\"ES256\",\"kid\":\"HDq7E79zR4h0UmHyPW1vudgSMDRMLrK1O7qOTczeSG\"}",
    };
    uint8_t sig[64] = {1};
    for (size_t i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++) {
        char *t = assemble(hdrs[i], "{\"exp\":1900000000}", sig, sizeof(sig));
        if (verify(k, t, NULL, NULL, NOW, 0) != PX_JWT_UNKNOWN_KEY)
            fail_msg("header %s: not UNKNOWN_KEY", hdrs[i]);
        free(t);
    }
    /* an empty set, and no set */
    struct px_jwks *empty = set_from("{\"keys\":[]}", 0);
    assert_int_equal(px_jwks_count(empty), 0);
    jwt = sign_a(NULL);
    assert_int_equal(verify(empty, jwt, AUD, ISS, NOW, 0), PX_JWT_UNKNOWN_KEY);
    assert_int_equal(verify(NULL, jwt, AUD, ISS, NOW, 0), PX_JWT_UNKNOWN_KEY);
    free(jwt);
    px_jwks_free(empty);
    px_jwks_free(k);
}

static void test_bad_signature(void **state)
{
    (void)state;
    struct px_jwks *k = set_a();
    char *good = sign_a(NULL);
    char *h, *p, *s;
    split(good, &h, &p, &s);
    uint8_t *sig;
    size_t sig_len;
    assert_int_equal(px_b64_decode(s, strlen(s), &sig, &sig_len), 0);
    assert_int_equal(sig_len, 64);

    /* every bit of the signature, one at a time (a sample: every 7th) */
    for (size_t bit = 0; bit < 512; bit += 7) {
        sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        char *sb = b64(sig, 64), *t = join(h, p, sb);
        if (verify(k, t, AUD, ISS, NOW, 0) != PX_JWT_BAD_SIGNATURE)
            fail_msg("signature bit %zu flipped: not BAD_SIGNATURE", bit);
        free(t);
        free(sb);
        sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    /* wrong lengths: 63, 65, 0 bytes, and 32 */
    size_t lens[] = {63, 65, 0, 32, 128};
    uint8_t big[128];
    memset(big, 0, sizeof(big));
    memcpy(big, sig, 64);
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        char *sb = b64(big, lens[i]), *t = join(h, p, sb);
        if (verify(k, t, AUD, ISS, NOW, 0) != PX_JWT_BAD_SIGNATURE)
            fail_msg("%zu-byte signature: not BAD_SIGNATURE", lens[i]);
        free(t);
        free(sb);
    }
    /* The same (valid) signature in DER, as a careless signer sends it. */
    uint8_t der[80];
    word32 der_len = sizeof(der);
    assert_int_equal(wc_ecc_rs_raw_to_sig(sig, 32, sig + 32, 32, der, &der_len), 0);
    char *sb = b64(der, der_len), *t = join(h, p, sb);
    assert_int_equal(verify(k, t, AUD, ISS, NOW, 0), PX_JWT_BAD_SIGNATURE);
    free(t);
    free(sb);
    /* r = 0, s = 0; all ones (>= the group order) */
    uint8_t zero[64], ones[64];
    memset(zero, 0, sizeof(zero));
    memset(ones, 0xff, sizeof(ones));
    sb = b64(zero, 64);
    t = join(h, p, sb);
    assert_int_equal(verify(k, t, AUD, ISS, NOW, 0), PX_JWT_BAD_SIGNATURE);
    free(t);
    free(sb);
    sb = b64(ones, 64);
    t = join(h, p, sb);
    assert_int_equal(verify(k, t, AUD, ISS, NOW, 0), PX_JWT_BAD_SIGNATURE);
    free(t);
    free(sb);
    /* The signature moved onto other claims (a changed payload). */
    char *other = sign_a("{\"sub\":\"CN=admin\"}");
    char *h2, *p2, *s2;
    split(other, &h2, &p2, &s2);
    t = join(h, p2, s);
    assert_int_equal(verify(k, t, AUD, ISS, NOW, 0), PX_JWT_BAD_SIGNATURE);
    free(t);
    /* The original still verifies (nothing above changed the set). */
    assert_int_equal(verify(k, good, AUD, ISS, NOW, 0), PX_JWT_OK);
    free(h2);
    free(p2);
    free(s2);
    free(other);
    free(sig);
    free(h);
    free(p);
    free(s);
    free(good);
    px_jwks_free(k);
}

static void test_times(void **state)
{
    (void)state;
    struct px_jwks *k = set_a();
    char *t;
#define EXPECT(over, leeway, want)                                                                 \
    do {                                                                                           \
        t = sign_a(over);                                                                          \
        int got_ = verify(k, t, AUD, ISS, NOW, leeway);                                            \
        if (got_ != (want))                                                                        \
            fail_msg("%s leeway %d: got %s, want %s", over, leeway, px_jwt_verdict_str(got_),      \
                     px_jwt_verdict_str(want));                                                    \
        free(t);                                                                                   \
    } while (0)
    /* exp: strictly after now (minus leeway); missing is expired */
    EXPECT("{\"exp\":1750000001}", 0, PX_JWT_OK);
    EXPECT("{\"exp\":1750000000}", 0, PX_JWT_EXPIRED);
    EXPECT("{\"exp\":1749999999}", 0, PX_JWT_EXPIRED);
    EXPECT("{\"exp\":null}", 0, PX_JWT_EXPIRED);
    EXPECT("{\"exp\":0}", 0, PX_JWT_EXPIRED);
    EXPECT("{\"exp\":-9223372036854775808}", 0, PX_JWT_EXPIRED);
    EXPECT("{\"exp\":9223372036854775807}", 0, PX_JWT_OK);
    EXPECT("{\"exp\":1750000000.5}", 0, PX_JWT_OK); /* NumericDate may be a real */
    EXPECT("{\"exp\":1749999999.5}", 0, PX_JWT_EXPIRED);
    EXPECT("{\"exp\":1e300}", 0, PX_JWT_OK);
    /* leeway honoured, and only so far */
    EXPECT("{\"exp\":1749999970}", 60, PX_JWT_OK);
    EXPECT("{\"exp\":1749999941}", 60, PX_JWT_OK);
    EXPECT("{\"exp\":1749999940}", 60, PX_JWT_EXPIRED);
    EXPECT("{\"exp\":1750000003}", -5, PX_JWT_OK); /* negative leeway is 0 */
    /* nbf and iat: not later than now (plus leeway) */
    EXPECT("{\"nbf\":1750000000}", 0, PX_JWT_OK);
    EXPECT("{\"nbf\":1750000001}", 0, PX_JWT_NOT_YET_VALID);
    EXPECT("{\"nbf\":1750000010}", 10, PX_JWT_OK);
    EXPECT("{\"nbf\":1750000011}", 10, PX_JWT_NOT_YET_VALID);
    EXPECT("{\"nbf\":9223372036854775807}", 9223372036854775807LL, PX_JWT_OK);
    EXPECT("{\"iat\":1750000001}", 0, PX_JWT_NOT_YET_VALID);
    EXPECT("{\"iat\":1750000005}", 5, PX_JWT_OK);
    EXPECT("{\"iat\":1750000000.25}", 0, PX_JWT_NOT_YET_VALID);
    EXPECT("{\"iat\":null}", 0, PX_JWT_OK);
    /* expiry is checked first */
    EXPECT("{\"exp\":1,\"nbf\":1900000000}", 0, PX_JWT_EXPIRED);
    /* wrong types */
    EXPECT("{\"exp\":\"1900000000\"}", 0, PX_JWT_MALFORMED);
    EXPECT("{\"exp\":true}", 0, PX_JWT_MALFORMED);
    EXPECT("{\"exp\":[1900000000]}", 0, PX_JWT_MALFORMED);
    EXPECT("{\"nbf\":\"0\"}", 0, PX_JWT_MALFORMED);
    EXPECT("{\"iat\":{}}", 0, PX_JWT_MALFORMED);
    px_jwks_free(k);
}

static void test_audience_issuer(void **state)
{
    (void)state;
    struct px_jwks *k = set_a();
    char *t;
    EXPECT("{\"aud\":\"other.example\"}", 0, PX_JWT_WRONG_AUDIENCE);
    EXPECT("{\"aud\":\"app.example.\"}", 0, PX_JWT_WRONG_AUDIENCE);
    EXPECT("{\"aud\":\"APP.EXAMPLE\"}", 0, PX_JWT_WRONG_AUDIENCE);
    EXPECT("{\"aud\":[\"other.example\",\"x\"]}", 0, PX_JWT_WRONG_AUDIENCE);
    EXPECT("{\"aud\":[]}", 0, PX_JWT_WRONG_AUDIENCE);
    EXPECT("{\"aud\":null}", 0, PX_JWT_WRONG_AUDIENCE);
    EXPECT("{\"aud\":[\"other.example\",\"app.example\"]}", 0, PX_JWT_OK);
    EXPECT("{\"aud\":[\"app.example\"]}", 0, PX_JWT_OK);
    EXPECT("{\"aud\":5}", 0, PX_JWT_MALFORMED);
    EXPECT("{\"aud\":[\"app.example\",5]}", 0, PX_JWT_MALFORMED);
    EXPECT("{\"aud\":{\"app.example\":1}}", 0, PX_JWT_MALFORMED);
    EXPECT("{\"iss\":\"evil.example\"}", 0, PX_JWT_WRONG_ISSUER);
    EXPECT("{\"iss\":\"edge.example \"}", 0, PX_JWT_WRONG_ISSUER);
    EXPECT("{\"iss\":null}", 0, PX_JWT_WRONG_ISSUER);
    EXPECT("{\"iss\":[\"edge.example\"]}", 0, PX_JWT_MALFORMED);
    EXPECT("{\"sub\":7}", 0, PX_JWT_MALFORMED);
    /* audience and issuer NULL: not checked (types still are) */
    t = sign_a("{\"aud\":\"other.example\",\"iss\":\"evil.example\"}");
    assert_int_equal(verify(k, t, NULL, NULL, NOW, 0), PX_JWT_OK);
    assert_int_equal(verify(k, t, NULL, ISS, NOW, 0), PX_JWT_WRONG_ISSUER);
    assert_int_equal(verify(k, t, AUD, NULL, NOW, 0), PX_JWT_WRONG_AUDIENCE);
    free(t);
    t = sign_a("{\"aud\":5}");
    assert_int_equal(verify(k, t, NULL, NULL, NOW, 0), PX_JWT_MALFORMED);
    free(t);
    px_jwks_free(k);
}

static void test_max_len(void **state)
{
    (void)state;
    struct px_jwks *k = set_a();
    /* Grow a claim until the token passes the limit: the last one within it
     * verifies, the first one past it is MALFORMED. */
    char *pad = malloc(PX_JWT_MAX_LEN);
    char *under = NULL, *over = NULL;
    for (size_t n = PX_JWT_MAX_LEN / 2; n < PX_JWT_MAX_LEN && !over; n++) {
        memset(pad, 'p', n);
        pad[n] = '\0';
        json_t *c =
            json_pack("{s:s,s:I,s:s}", "aud", AUD, "exp", (json_int_t)(NOW + 60), "pad", pad);
        char *t = NULL;
        assert_int_equal(px_jwt_sign(KEY_A, c, &t), 0);
        json_decref(c);
        if (strlen(t) <= PX_JWT_MAX_LEN) {
            free(under);
            under = t;
        } else {
            over = t;
        }
    }
    assert_non_null(under);
    assert_non_null(over);
    assert_true(strlen(under) >= PX_JWT_MAX_LEN - 2);
    assert_true(strlen(over) <= PX_JWT_MAX_LEN + 2);
    assert_int_equal(verify(k, under, AUD, NULL, NOW, 0), PX_JWT_OK);
    assert_int_equal(verify(k, over, AUD, NULL, NOW, 0), PX_JWT_MALFORMED);
    /* Exactly PX_JWT_MAX_LEN + 1 bytes: the good token, then the longest
     * signature-part tail that keeps it that long. */
    char *exact = malloc(PX_JWT_MAX_LEN + 1);
    memset(exact, 'A', PX_JWT_MAX_LEN + 1);
    memcpy(exact, under, strlen(under));
    assert_int_equal(px_jwt_verify(k, exact, PX_JWT_MAX_LEN + 1, AUD, NULL, NOW, 0, NULL),
                     PX_JWT_MALFORMED);
    free(exact);
    free(under);
    free(over);
    free(pad);
    px_jwks_free(k);
}

/* PyJWT made TOKEN_B with KEY_B; its JWK (PyJWT's export) verifies it here. */
static void test_pyjwt_token(void **state)
{
    (void)state;
    struct px_jwks *k = set_from(JWKS_B, 0);
    assert_int_equal(px_jwks_count(k), 1);
    json_t *claims = NULL;
    assert_int_equal(px_jwt_verify(k, TOKEN_B, strlen(TOKEN_B), AUD, ISS, 1700000100, 0, &claims),
                     PX_JWT_OK);
    assert_string_equal(json_string_value(json_object_get(claims, "sub")), "CN=phone");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(claims, "cnf"), "x5t#S256")), "abc");
    json_decref(claims);
    assert_int_equal(verify(k, TOKEN_B, AUD, ISS, 1700000300, 0), PX_JWT_EXPIRED);
    assert_int_equal(verify(k, TOKEN_B, AUD, ISS, 1700000300, 1), PX_JWT_OK);
    assert_int_equal(verify(k, TOKEN_B, "other.example", ISS, 1700000100, 0),
                     PX_JWT_WRONG_AUDIENCE);
    /* and not with key A's set */
    struct px_jwks *a = set_a();
    assert_int_equal(verify(a, TOKEN_B, AUD, ISS, 1700000100, 0), PX_JWT_UNKNOWN_KEY);
    px_jwks_free(a);
    px_jwks_free(k);
}

/* ---- key sets ---- */

#define EC_A(extra)                                                                                \
    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" X_A "\",\"y\":\"" Y_A "\"" extra "}"

static void test_jwks_skips_foreign(void **state)
{
    (void)state;
    struct px_jwks *k = set_from(
        "{\"keys\":["
        "{\"kty\":\"RSA\",\"kid\":\"r\",\"n\":\"0vx7agoebGcQSuu\",\"e\":\"AQAB\",\"alg\":"
        "\"RS256\"},"
        "{\"kty\":\"EC\",\"crv\":\"P-384\",\"kid\":\"p384\",\"x\":\"AA\",\"y\":\"AA\"},"
        "{\"kty\":\"oct\",\"kid\":\"" KID_A "\",\"k\":\"c2VjcmV0\"}," /* HMAC key, our kid */
        "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"e\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg\"},"
        "5, \"string\", null, [], {}," /* not keys at all */
        EC_A(",\"kid\":\"enc\",\"use\":\"enc\"") "," EC_A(
            ",\"kid\":\"es384\",\"alg\":"
            "\"ES384\"") "," EC_A(",\"kid\":\"use5\",\"use\":5") "," EC_A(",\"kid\":7") "," EC_A("") "," /* no kid */
        EC_A(",\"kid\":\"" KID_A "\",\"use\":\"sig\",\"alg\":\"ES256\",\"ext\":true") "]}",
        0);
    assert_int_equal(px_jwks_count(k), 1);
    char *t = sign_a(NULL);
    assert_int_equal(verify(k, t, AUD, ISS, NOW, 0), PX_JWT_OK);
    free(t);
    px_jwks_free(k);
    /* use and alg are optional; kid need not be the thumbprint */
    k = set_from("{\"keys\":[" EC_A(",\"kid\":\"mine\"") "]}", 0);
    assert_int_equal(px_jwks_count(k), 1);
    px_jwks_free(k);
}

static void test_jwks_refuses(void **state)
{
    (void)state;
    const char *bad[] = {
        /* off the curve */
        "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"k\",\"x\":\"" X_A
        "\",\"y\":\"" Y_A_OFF "\"}]}",
        /* (0, sqrt(b)) is on the curve; (p, sqrt(b)) is the same point mod p
         * but x is out of range */
        "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"k\","
        "\"x\":\"_____wAAAAEAAAAAAAAAAAAAAAD_______________8\","
        "\"y\":\"ZkhceA4vg9ckM71dhKBrtlQcKvMdrocXKL-FahdPk_Q\"}]}",
        /* the point at infinity, as zeros */
        "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"k\","
        "\"x\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
        "\"y\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}]}",
        /* missing and malformed members */
        "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"k\",\"y\":\"" Y_A "\"}]}",
        "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"k\",\"x\":\"" X_A "\"}]}",
        "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"k\",\"x\":1,\"y\":\"" Y_A "\"}]}",
        "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"k\",\"x\":\"" X_A "\",\"y\":\"" Y_A
        "AA\"}]}",
        "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"k\",\"x\":"
        "\"vtgec4rfGEXk0HSXo4B1yCBcr9"
        "6xKX6qRhZcpWRjaQ\",\"y\":\"" Y_A "\"}]}", /* 31 bytes */
        "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"k\",\"x\":"
        "\"vtgec4rfGEXk0HSXo4B1yCBcr9"
        "6xKX6qRhZcpWRjaRk=\",\"y\":\"" Y_A "\"}]}", /* padded */
        "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"k\",\"x\":"
        "\"vtgec4rfGEXk0HSXo4B1yCBcr9"
        "6xKX6qRhZcpWRjaR!\",\"y\":\"" Y_A "\"}]}",
        /* one good key does not excuse a bad one */
        "{\"keys\":[" EC_A(",\"kid\":\"" KID_A "\"") ",{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":"
                                                     "\"k\",\"x\":\"" X_A "\",\"y\":\"" Y_A_OFF
                                                     "\"}]}",
        /* not a key set */
        "{}",
        "{\"keys\":{}}",
        "{\"keys\":\"" X_A "\"}",
        "{\"keys\":null}",
        "[]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *doc = json_loads(bad[i], 0, NULL);
        if (!doc)
            fail_msg("fixture %zu is not JSON", i);
        struct px_jwks *k = (struct px_jwks *)1;
        int rc = px_jwks_from_json(doc, &k);
        if (rc != PX_ERR_INVAL || k)
            fail_msg("fixture %zu: %d, not PX_ERR_INVAL", i, rc);
        json_decref(doc);
    }
    struct px_jwks *k = (struct px_jwks *)1;
    assert_int_equal(px_jwks_from_json(NULL, &k), PX_ERR_INVAL);
    assert_null(k);
    /* The on-curve twin of the out-of-range key is accepted. */
    k = set_from("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"k\","
                 "\"x\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
                 "\"y\":\"ZkhceA4vg9ckM71dhKBrtlQcKvMdrocXKL-FahdPk_Q\"}]}",
                 0);
    assert_int_equal(px_jwks_count(k), 1);
    px_jwks_free(k);
    px_jwks_free(NULL);
    assert_int_equal(px_jwks_count(NULL), 0);
}

/* Two keys under one kid (a hostile or careless set): either may verify. */
static void test_jwks_duplicate_kid(void **state)
{
    (void)state;
    char *pem = NULL;
    assert_int_equal(px_pki_keygen(test_rng(), &pem), 0);
    json_t *other = NULL;
    assert_int_equal(px_jwt_jwk(pem, &other), 0);
    json_object_set_new(other, "kid", json_string(KID_A));
    json_t *mine = NULL;
    assert_int_equal(px_jwt_jwk(KEY_A, &mine), 0);
    json_t *doc = json_pack("{s:[o,o]}", "keys", other, mine);
    struct px_jwks *k = NULL;
    assert_int_equal(px_jwks_from_json(doc, &k), 0);
    assert_int_equal(px_jwks_count(k), 2);
    char *t = sign_a(NULL);
    assert_int_equal(verify(k, t, AUD, ISS, NOW, 0), PX_JWT_OK);
    free(t);
    px_jwks_free(k);
    json_decref(doc);
    free(pem);
}

/* ---- wolfCrypt failing ----
 *
 * Bug: when one allocation inside wolfSSL failed, verifying a good token
 * answered PX_JWT_BAD_SIGNATURE (check_sig took any wolfCrypt error but
 * MEMORY_E for a wrong signature) and loading a key answered PX_ERR_INVAL
 * (any wolfCrypt error was "not a P-256 key"). A verification that could
 * not be carried out is an error (< 0), never a verdict: the connector
 * answers 502 for it, 403 for a verdict.
 *
 * wolfSSL's allocators are replaced for the sweeps: in mode ONCE the n-th
 * allocation fails, in mode FROM the n-th and every later one; n runs from
 * 1 until an operation makes fewer than n allocations. This works with
 * Debian's shared wolfSSL and with WOLFSSL=source. */

enum { WC_ONCE, WC_FROM };
static long wc_target; /* 0: nothing fails */
static int wc_mode;
static long wc_seen;
static int wc_hit;

static int wc_fail_now(void)
{
    if (!wc_target)
        return 0;
    ++wc_seen;
    if (wc_seen == wc_target || (wc_mode == WC_FROM && wc_seen > wc_target)) {
        wc_hit = 1;
        return 1;
    }
    return 0;
}

static void *wc_malloc(size_t n)
{
    return wc_fail_now() ? NULL : malloc(n);
}

static void wc_free(void *p)
{
    free(p);
}

static void *wc_realloc(void *p, size_t n)
{
    return wc_fail_now() ? NULL : realloc(p, n);
}

static void wc_arm(long n, int mode)
{
    wc_seen = 0;
    wc_hit = 0;
    wc_mode = mode;
    wc_target = n;
}

static void wc_disarm(void)
{
    wc_target = 0;
}

static int wc_setup(void **state)
{
    (void)state;
    wc_disarm();
    return wolfSSL_SetAllocators(wc_malloc, wc_free, wc_realloc) == 0 ? 0 : -1;
}

static int wc_teardown(void **state)
{
    (void)state;
    wc_disarm();
    return 0;
}

/* An error for a failed wolfCrypt call. */
static int internal_error(int rc)
{
    return rc == PX_ERR_NOMEM || rc == PX_ERR_CRYPTO;
}

/* Runs op(arg) with the n-th wolfSSL allocation failing (mode), for n = 1,
 * 2, ... until op makes fewer than n allocations. op checks its own result
 * and fails the test. Returns how many allocations the last run made. */
static long wc_sweep(void (*op)(void *arg, long n, int mode), void *arg)
{
    long made = 0;
    for (int mode = WC_ONCE; mode <= WC_FROM; mode++) {
        for (long n = 1;; n++) {
            if (n > 100000)
                fail_msg("wolfSSL allocation sweep did not end");
            op(arg, n, mode);
            if (!wc_hit)
                break;
        }
        made = wc_seen;
    }
    return made;
}

static void op_sign(void *arg, long n, int mode)
{
    const struct px_jwks *k = arg;
    json_t *c = json_pack("{s:s,s:s,s:I}", "iss", ISS, "aud", AUD, "exp", (json_int_t)(NOW + 60));
    assert_non_null(c);
    char *jwt = NULL;
    wc_arm(n, mode);
    int rc = px_jwt_sign(KEY_A, c, &jwt);
    wc_disarm();
    json_decref(c);
    if (rc == 0) {
        assert_non_null(jwt);
        if (verify(k, jwt, AUD, ISS, NOW, 0) != PX_JWT_OK)
            fail_msg("allocation %ld failing (mode %d): px_jwt_sign made a token that does not "
                     "verify",
                     n, mode);
    } else if (!internal_error(rc) || jwt) {
        fail_msg("allocation %ld failing (mode %d): px_jwt_sign returned %d (%s)", n, mode, rc,
                 px_strerror(rc));
    }
    free(jwt);
}

struct verify_case {
    const struct px_jwks *k;
    const char *jwt;
    int want; /* the verdict when nothing fails */
};

static void op_verify(void *arg, long n, int mode)
{
    const struct verify_case *vc = arg;
    wc_arm(n, mode);
    int rc = verify(vc->k, vc->jwt, AUD, ISS, NOW, 0);
    wc_disarm();
    if (rc != vc->want && !internal_error(rc))
        fail_msg("allocation %ld failing (mode %d): verdict %d (%s), want %d or an error", n, mode,
                 rc, px_jwt_verdict_str(rc), vc->want);
}

static void op_kid(void *arg, long n, int mode)
{
    const char *pem = arg;
    char kid[44];
    wc_arm(n, mode);
    int rc = px_jwt_kid(pem, kid);
    wc_disarm();
    if (rc == 0)
        assert_string_equal(kid, KID_A);
    else if (!internal_error(rc))
        fail_msg("allocation %ld failing (mode %d): px_jwt_kid returned %d (%s)", n, mode, rc,
                 px_strerror(rc));
}

static void op_jwks(void *arg, long n, int mode)
{
    const json_t *doc = arg;
    struct px_jwks *k = NULL;
    wc_arm(n, mode);
    int rc = px_jwks_from_json(doc, &k);
    wc_disarm();
    if (rc == 0)
        assert_int_equal(px_jwks_count(k), 1);
    else if (!internal_error(rc) || k)
        fail_msg("allocation %ld failing (mode %d): px_jwks_from_json returned %d (%s)", n, mode,
                 rc, px_strerror(rc));
    px_jwks_free(k);
}

static void test_wolfcrypt_failure_is_not_bad_signature(void **state)
{
    (void)state;
    struct px_jwks *k = set_a();
    char *good = sign_a(NULL);
    /* good with its last signature character changed: a wrong signature */
    char *bad = strdup(good);
    assert_non_null(bad);
    bad[strlen(bad) - 2] = bad[strlen(bad) - 2] == 'A' ? 'B' : 'A';
    assert_int_equal(verify(k, bad, AUD, ISS, NOW, 0), PX_JWT_BAD_SIGNATURE);
    /* R and S must be in [1, n-1]: px_jwt checks that itself, since wolfCrypt
     * answers an error for it, which would now be PX_ERR_CRYPTO. At the
     * edges: R = n, then R = n - 1 (in range: wolfCrypt runs, says wrong). */
    static const uint8_t n[32] = {0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
                                  0xff, 0xff, 0xff, 0xff, 0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17,
                                  0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51};
    uint8_t rs[64];
    memcpy(rs, n, 32);
    memset(rs + 32, 0, 32);
    rs[63] = 1;
    char *h, *p, *s;
    split(good, &h, &p, &s);
    for (int i = 0; i < 2; i++) {
        char *sb = b64(rs, 64), *t = join(h, p, sb);
        assert_int_equal(verify(k, t, AUD, ISS, NOW, 0), PX_JWT_BAD_SIGNATURE);
        free(t);
        free(sb);
        rs[31]--; /* n - 1 */
    }
    free(h);
    free(p);
    free(s);

    /* wolfSSL caches points it multiplied often (FP_ECC in Debian's build):
     * sweep with an empty cache, then warm. */
    for (int round = 0; round < 2; round++) {
#ifdef FP_ECC
        if (round == 0)
            wc_ecc_fp_free();
#endif
        struct verify_case ok = {k, good, PX_JWT_OK}, wrong = {k, bad, PX_JWT_BAD_SIGNATURE};
        long made = wc_sweep(op_verify, &ok);
        assert_true(made > 0); /* wolfCrypt did allocate: the sweep tested something */
        wc_sweep(op_verify, &wrong);
    }
    /* Nothing above left wolfSSL unable to verify. */
    assert_int_equal(verify(k, good, AUD, ISS, NOW, 0), PX_JWT_OK);
    assert_int_equal(verify(k, bad, AUD, ISS, NOW, 0), PX_JWT_BAD_SIGNATURE);
    free(bad);
    free(good);
    px_jwks_free(k);
}

static void test_wolfcrypt_failure_in_sign_is_an_error(void **state)
{
    (void)state;
    struct px_jwks *k = set_a();
    assert_true(wc_sweep(op_sign, k) > 0);
    /* The key loads (PEM, private and public) and the key set: an
     * allocation failing is not "not a P-256 key". */
    wc_sweep(op_kid, (void *)KEY_A);
    wc_sweep(op_kid, (void *)PUB_A);
    json_t *jwk = NULL;
    assert_int_equal(px_jwt_jwk(KEY_A, &jwk), 0);
    json_t *doc = json_pack("{s:[o]}", "keys", jwk);
    assert_non_null(doc);
    wc_sweep(op_jwks, doc);
    json_decref(doc);
    char *jwt = sign_a(NULL);
    assert_int_equal(verify(k, jwt, AUD, ISS, NOW, 0), PX_JWT_OK);
    free(jwt);
    px_jwks_free(k);
}

static void test_verdict_str(void **state)
{
    (void)state;
    for (int v = PX_JWT_OK; v <= PX_JWT_WRONG_ISSUER; v++) {
        const char *s = px_jwt_verdict_str(v);
        assert_non_null(s);
        assert_true(strlen(s) > 0);
        for (int w = PX_JWT_OK; w < v; w++)
            assert_string_not_equal(s, px_jwt_verdict_str(w));
    }
    assert_string_equal(px_jwt_verdict_str(PX_JWT_EXPIRED), "expired");
    assert_string_equal(px_jwt_verdict_str(PX_JWT_WRONG_AUDIENCE), "wrong audience");
    assert_non_null(px_jwt_verdict_str(PX_ERR_NOMEM));
    assert_non_null(px_jwt_verdict_str(999));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kid_fixture),
        cmocka_unit_test(test_kid_generated_keys),
        cmocka_unit_test(test_short_r_s),
        cmocka_unit_test(test_bad_keys),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_not_object_after_dirty_stack),
        cmocka_unit_test(test_bad_algorithm),
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_bad_signature),
        cmocka_unit_test(test_times),
        cmocka_unit_test(test_audience_issuer),
        cmocka_unit_test(test_max_len),
        cmocka_unit_test(test_pyjwt_token),
        cmocka_unit_test(test_jwks_skips_foreign),
        cmocka_unit_test(test_jwks_refuses),
        cmocka_unit_test(test_jwks_duplicate_kid),
        cmocka_unit_test(test_verdict_str),
        cmocka_unit_test_setup_teardown(test_wolfcrypt_failure_is_not_bad_signature, wc_setup,
                                        wc_teardown),
        cmocka_unit_test_setup_teardown(test_wolfcrypt_failure_in_sign_is_an_error, wc_setup,
                                        wc_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
