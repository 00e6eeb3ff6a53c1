/* px_jwt: ES256 JSON Web Tokens and JWK Sets (see px_jwt.h).
 *
 * Decisions a reader of a token needs to know (px_jwt_verify):
 * - Only the compact form, three parts of the base64url alphabet without
 *   padding ('+', '/', '=' and whitespace are MALFORMED).
 * - Header and payload are parsed with jansson's JSON_REJECT_DUPLICATES: a
 *   member named twice is MALFORMED (RFC 7515 section 5.2 allows rejecting;
 *   taking the last one, jansson's default, would let two readers of one
 *   token disagree). Trailing text after the JSON value is MALFORMED.
 * - The header must say "alg":"ES256" exactly (anything else, missing or
 *   not a string: BAD_ALGORITHM, checked before any key or signature) and
 *   name a key by a string "kid" (missing: UNKNOWN_KEY). A "crit" member is
 *   MALFORMED: we implement no extension. "jwk", "jku", "x5u", "x5c" are
 *   ignored: a token never brings its own key.
 * - The signature is R || S, 32 bytes each (RFC 7518 section 3.4); any other
 *   length, or an R or S outside [1, n-1], is BAD_SIGNATURE. It is checked
 *   before any claim is looked at.
 * - A check that could not be carried out (wolfCrypt failed: out of memory,
 *   or any other error) is an error (< 0), never a verdict: BAD_SIGNATURE
 *   only when wolfCrypt ran the check and the signature does not verify.
 * - Registered claims of the wrong type are MALFORMED, whether or not the
 *   caller asked for that check: exp/nbf/iat must be numbers (integer or
 *   real), iss and sub strings, aud a string or an array of strings.
 * - exp is required: missing is EXPIRED; exp <= now - leeway is EXPIRED;
 *   nbf or iat > now + leeway is NOT_YET_VALID. A negative leeway counts as 0.
 * Keys and tokens live in per-call objects; there is no shared state. */
#include "px_jwt.h"
#include "px_b64.h"
#include "px_buf.h"
#include "px_err.h"
#include "px_json.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/random.h>

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define COORD 32            /* P-256 coordinate and scalar size */
#define SIG_RAW (2 * COORD) /* R || S */
#define POINT (1 + SIG_RAW) /* X9.63 uncompressed: 04 || X || Y */

/* ---- wolfCrypt errors ----
 *
 * Every wolfCrypt return code is checked. Where the input was validated
 * before the call (our own key, a point checked on the curve, R and S in
 * range), any failure is wolfCrypt's own: PX_ERR_NOMEM when memory ran out,
 * PX_ERR_CRYPTO otherwise. Where wolfCrypt itself judges outside input, its
 * codes are sorted: for a PEM, what is not its own failure (wc_internal) is
 * the input's; for a JWK's point, only the codes that refuse a point
 * (wc_bad_point) are. wolfCrypt reports some allocation failures under
 * other names (MP_READ_E), so "not out of memory" does not mean "bad
 * input". */

/* Whether ret is wolfCrypt's out of memory: MEMORY_E, or MP_MEM from its
 * big-integer code (GEN_MEM_ERR in ecc.c). */
static int wc_nomem(int ret)
{
    return ret == MEMORY_E || ret == MP_MEM;
}

/* A failed wolfCrypt call (ret != 0) as a px_err. */
static int wc_err(int ret)
{
    return wc_nomem(ret) ? PX_ERR_NOMEM : PX_ERR_CRYPTO;
}

/* Whether ret is wolfCrypt's own failure rather than a verdict on the input,
 * besides running out of memory: MP_READ_E is its curve constants failing
 * to load (an allocation, in builds with HAVE_WOLF_BIGINT such as Debian's),
 * MP_INIT_E a big integer failing to initialise, BAD_STATE_E (ours, in
 * try_pem) a success without a result. */
static int wc_internal(int ret)
{
    return wc_nomem(ret) || ret == MP_READ_E || ret == MP_INIT_E || ret == BAD_STATE_E ||
           ret == BAD_MUTEX_E;
}

/* Whether ret is wolfCrypt refusing a public point (wc_ecc_check_key):
 * coordinates not below p, not on the curve (IS_POINT_E in the generic
 * code, MP_VAL in the SP code of a WOLFSSL=source build), the point at
 * infinity or one whose order is not n. Anything else is its own failure. */
static int wc_bad_point(int ret)
{
    return ret == ECC_OUT_OF_RANGE_E || ret == IS_POINT_E || ret == MP_VAL || ret == ECC_INF_E;
}

/* ---- keys from PEM ---- */

/* Decodes pem as type into key. Returns 0; PX_ERR_INVAL when pem is not
 * that type or not an EC key; PX_ERR_NOMEM or PX_ERR_CRYPTO when wolfCrypt
 * failed (then another type must not be tried: it would answer INVAL). */
static int try_pem(const char *pem, int type, ecc_key *key)
{
    DerBuffer *der = NULL;
    int ret =
        wc_PemToDer((const unsigned char *)pem, (long)strlen(pem), type, &der, NULL, NULL, NULL);
    if (ret == 0 && !der)
        ret = BAD_STATE_E; /* success without a result: not input's fault */
    if (ret == 0) {
        word32 idx = 0;
        ret = type == PUBLICKEY_TYPE ? wc_EccPublicKeyDecode(der->buffer, &idx, key, der->length)
                                     : wc_EccPrivateKeyDecode(der->buffer, &idx, key, der->length);
    }
    wc_FreeDer(&der);
    if (ret == 0)
        return 0;
    /* The parsers' codes for a bad input are many (ASN_*, BUFFER_E, ...):
     * what is not wolfCrypt's own failure is the PEM's. */
    return wc_internal(ret) ? wc_err(ret) : PX_ERR_INVAL;
}

/* Loads a P-256 key from a private ("EC PRIVATE KEY" or PKCS#8 "PRIVATE
 * KEY") or public ("PUBLIC KEY") PEM. want_private refuses a public one.
 * Returns 0 (the caller must wc_ecc_free(key)), PX_ERR_INVAL, PX_ERR_NOMEM
 * or PX_ERR_CRYPTO (then key needs nothing). */
static int load_key(const char *pem, ecc_key *key, int want_private)
{
    static const int types[] = {ECC_PRIVATEKEY_TYPE, PRIVATEKEY_TYPE, PUBLICKEY_TYPE};
    if (!pem)
        return PX_ERR_INVAL;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        int ret = wc_ecc_init(key);
        if (ret != 0)
            return wc_err(ret);
        int rc = try_pem(pem, types[i], key);
        if (rc == 0) {
            if (wc_ecc_get_curve_id(key->idx) != ECC_SECP256R1 ||
                (want_private && key->type != ECC_PRIVATEKEY)) {
                wc_ecc_free(key);
                return PX_ERR_INVAL;
            }
            return 0;
        }
        wc_ecc_free(key);
        if (rc != PX_ERR_INVAL)
            return rc;
    }
    return PX_ERR_INVAL;
}

/* The base64url x and y of key (each 43 characters, malloc'd). */
static int key_xy(ecc_key *key, char **x, char **y)
{
    byte pt[POINT];
    word32 n = sizeof(pt);
    *x = *y = NULL;
    int ret = wc_ecc_export_x963(key, pt, &n);
    if (ret != 0)
        return wc_err(ret);
    if (n != POINT || pt[0] != 0x04)
        return PX_ERR_CRYPTO;
    *x = px_b64_encode(pt + 1, COORD, 1);
    *y = px_b64_encode(pt + 1 + COORD, COORD, 1);
    if (!*x || !*y) {
        free(*x);
        free(*y);
        *x = *y = NULL;
        return PX_ERR_NOMEM;
    }
    return 0;
}

/* RFC 7638: SHA-256 over the required members in lexicographic order, no
 * whitespace. x and y are base64url, which needs no JSON escaping. */
static int thumbprint(const char *x, const char *y, char kid[44])
{
    struct px_buf b;
    byte h[WC_SHA256_DIGEST_SIZE];
    int rc = PX_ERR_NOMEM;
    px_buf_init(&b);
    if (px_buf_appendf(&b, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", x, y) <
        0)
        goto out;
    int ret = wc_Sha256Hash(px_buf_head(&b), (word32)px_buf_len(&b), h);
    if (ret != 0) {
        rc = wc_err(ret);
        goto out;
    }
    char *t = px_b64_encode(h, sizeof(h), 1);
    rc = PX_ERR_NOMEM;
    if (!t)
        goto out;
    rc = strlen(t) == 43 ? 0 : PX_ERR_CRYPTO;
    if (rc == 0)
        memcpy(kid, t, 44);
    free(t);
out:
    px_buf_cleanup(&b);
    return rc;
}

static int key_kid(ecc_key *key, char kid[44])
{
    char *x, *y;
    int rc = key_xy(key, &x, &y);
    if (rc < 0)
        return rc;
    rc = thumbprint(x, y, kid);
    free(x);
    free(y);
    return rc;
}

int px_jwt_kid(const char *key_pem, char kid[44])
{
    ecc_key key;
    int rc = load_key(key_pem, &key, 0);
    if (rc < 0)
        return rc;
    rc = key_kid(&key, kid);
    wc_ecc_free(&key);
    return rc;
}

int px_jwt_jwk(const char *key_pem, json_t **jwk)
{
    ecc_key key;
    char *x = NULL, *y = NULL;
    char kid[44];
    *jwk = NULL;
    int rc = load_key(key_pem, &key, 0);
    if (rc < 0)
        return rc;
    rc = key_xy(&key, &x, &y);
    if (rc < 0)
        goto out;
    rc = thumbprint(x, y, kid);
    if (rc < 0)
        goto out;
    *jwk = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "kty", "EC", "crv", "P-256", "x", x, "y", y,
                     "kid", kid, "use", "sig", "alg", "ES256");
    rc = *jwk ? 0 : PX_ERR_NOMEM;
out:
    free(x);
    free(y);
    wc_ecc_free(&key);
    return rc;
}

/* ---- signing ---- */

/* base64url(JSON of v) appended to b. */
static int append_json_b64(struct px_buf *b, const json_t *v)
{
    char *js = px_json_dumps(v, JSON_COMPACT);
    if (!js)
        return PX_ERR_NOMEM;
    char *enc = px_b64_encode((const uint8_t *)js, strlen(js), 1);
    free(js);
    if (!enc)
        return PX_ERR_NOMEM;
    int rc = px_buf_append_str(b, enc);
    free(enc);
    return rc;
}

/* Signs hash with key into R || S (each left-padded to 32 bytes). Returns
 * 0, PX_ERR_NOMEM or PX_ERR_CRYPTO. */
static int sign_raw(ecc_key *key, const byte *hash, byte sig[SIG_RAW])
{
    WC_RNG rng;
    byte der[ECC_MAX_SIG_SIZE];
    word32 der_len = sizeof(der);
    byte r[COORD], s[COORD];
    word32 rl = sizeof(r), sl = sizeof(s);
    int ret = wc_InitRng(&rng);
    if (ret != 0)
        return wc_err(ret);
    ret = wc_ecc_sign_hash(hash, WC_SHA256_DIGEST_SIZE, der, &der_len, &rng, key);
    /* Freeing wipes the generator's state; its failure is a failure. */
    int free_ret = wc_FreeRng(&rng);
    if (ret == 0)
        ret = free_ret;
    if (ret != 0)
        return wc_err(ret);
    /* wc_ecc_sig_to_rs gives the integers without leading zero bytes. */
    if ((ret = wc_ecc_sig_to_rs(der, der_len, r, &rl, s, &sl)) != 0)
        return wc_err(ret);
    if (rl > COORD || sl > COORD)
        return PX_ERR_CRYPTO;
    memset(sig, 0, SIG_RAW);
    memcpy(sig + COORD - rl, r, rl);
    memcpy(sig + SIG_RAW - sl, s, sl);
    return 0;
}

int px_jwt_sign(const char *key_pem, const json_t *claims, char **jwt)
{
    ecc_key key;
    char kid[44];
    struct px_buf b;
    json_t *hdr = NULL;
    byte hash[WC_SHA256_DIGEST_SIZE];
    byte sig[SIG_RAW];
    char *sig_b64 = NULL;
    *jwt = NULL;
    if (!json_is_object(claims))
        return PX_ERR_INVAL;
    int rc = load_key(key_pem, &key, 1);
    if (rc < 0)
        return rc;
    px_buf_init(&b);
    rc = key_kid(&key, kid);
    if (rc < 0)
        goto out;
    rc = PX_ERR_NOMEM;
    hdr = json_pack("{s:s,s:s,s:s}", "alg", "ES256", "typ", "JWT", "kid", kid);
    if (!hdr)
        goto out;
    if ((rc = append_json_b64(&b, hdr)) < 0 || (rc = px_buf_append(&b, ".", 1)) < 0 ||
        (rc = append_json_b64(&b, claims)) < 0)
        goto out;
    int ret = wc_Sha256Hash(px_buf_head(&b), (word32)px_buf_len(&b), hash);
    if (ret != 0) {
        rc = wc_err(ret);
        goto out;
    }
    if ((rc = sign_raw(&key, hash, sig)) < 0)
        goto out;
    rc = PX_ERR_NOMEM;
    if (!(sig_b64 = px_b64_encode(sig, sizeof(sig), 1)))
        goto out;
    if (px_buf_append(&b, ".", 1) < 0 || px_buf_append_str(&b, sig_b64) < 0)
        goto out;
    size_t n = px_buf_len(&b);
    if (!(*jwt = malloc(n + 1)))
        goto out;
    memcpy(*jwt, px_buf_head(&b), n);
    (*jwt)[n] = '\0';
    rc = 0;
out:
    free(sig_b64);
    json_decref(hdr);
    px_buf_cleanup(&b);
    wc_ecc_free(&key);
    return rc;
}

/* ---- key sets ---- */

struct jwks_key {
    char *kid;
    byte point[POINT]; /* validated on the curve */
};

struct px_jwks {
    struct jwks_key *keys;
    size_t n;
};

void px_jwks_free(struct px_jwks *k)
{
    if (!k)
        return;
    for (size_t i = 0; i < k->n; i++)
        free(k->keys[i].kid);
    free(k->keys);
    free(k);
}

size_t px_jwks_count(const struct px_jwks *k)
{
    return k ? k->n : 0;
}

/* The string member name of o, or NULL when missing or not a string. */
static const char *str_member(const json_t *o, const char *name)
{
    return json_string_value(json_object_get(o, name));
}

/* A JWK coordinate: base64url of exactly 32 bytes. */
static int coord(const json_t *jwk, const char *name, byte out[COORD])
{
    const json_t *v = json_object_get(jwk, name);
    const char *s = json_string_value(v);
    if (!s)
        return PX_ERR_INVAL;
    size_t len = json_string_length(v);
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return PX_ERR_INVAL;
    }
    uint8_t *raw;
    size_t n;
    int rc = px_b64_decode(s, len, &raw, &n);
    if (rc < 0)
        return rc;
    if (n == COORD)
        memcpy(out, raw, COORD);
    free(raw);
    return n == COORD ? 0 : PX_ERR_INVAL;
}

/* Whether jwk is meant for us: an EC P-256 key with a string kid, for
 * signatures ("use" absent or "sig") with ES256 ("alg" absent or "ES256"). */
static int wanted(const json_t *jwk)
{
    const char *s;
    if (!json_is_object(jwk) || !(s = str_member(jwk, "kty")) || strcmp(s, "EC") != 0 ||
        !(s = str_member(jwk, "crv")) || strcmp(s, "P-256") != 0 || !str_member(jwk, "kid"))
        return 0;
    const json_t *use = json_object_get(jwk, "use"), *alg = json_object_get(jwk, "alg");
    if (use && (!json_is_string(use) || strcmp(json_string_value(use), "sig") != 0))
        return 0;
    if (alg && (!json_is_string(alg) || strcmp(json_string_value(alg), "ES256") != 0))
        return 0;
    return 1;
}

/* Reads the point of a wanted jwk into k->point, checking it is on P-256.
 * Returns 0, PX_ERR_INVAL (not a point of P-256), PX_ERR_NOMEM or
 * PX_ERR_CRYPTO. */
static int read_point(const json_t *jwk, struct jwks_key *k)
{
    byte x[COORD], y[COORD];
    ecc_key key;
    int rc;
    if ((rc = coord(jwk, "x", x)) < 0 || (rc = coord(jwk, "y", y)) < 0)
        return rc; /* PX_ERR_INVAL, or PX_ERR_NOMEM decoding them */
    int ret = wc_ecc_init(&key);
    if (ret != 0)
        return wc_err(ret);
    if ((ret = wc_ecc_import_unsigned(&key, x, y, NULL, ECC_SECP256R1)) == 0)
        ret = wc_ecc_check_key(&key);
    rc = ret == 0 ? 0 : wc_bad_point(ret) ? PX_ERR_INVAL : wc_err(ret);
    wc_ecc_free(&key);
    if (rc == 0) {
        k->point[0] = 0x04;
        memcpy(k->point + 1, x, COORD);
        memcpy(k->point + 1 + COORD, y, COORD);
    }
    return rc;
}

int px_jwks_from_json(const json_t *jwks, struct px_jwks **out)
{
    *out = NULL;
    const json_t *arr = json_object_get(jwks, "keys");
    if (!json_is_object(jwks) || !json_is_array(arr))
        return PX_ERR_INVAL;
    struct px_jwks *set = calloc(1, sizeof(*set));
    if (!set)
        return PX_ERR_NOMEM;
    int rc = 0;
    size_t total = json_array_size(arr);
    if (total) {
        set->keys = calloc(total, sizeof(*set->keys));
        if (!set->keys) {
            rc = PX_ERR_NOMEM;
            goto out;
        }
    }
    for (size_t i = 0; i < total; i++) {
        const json_t *jwk = json_array_get(arr, i);
        if (!wanted(jwk))
            continue;
        struct jwks_key *k = &set->keys[set->n];
        if ((rc = read_point(jwk, k)) < 0)
            goto out;
        if (!(k->kid = strdup(str_member(jwk, "kid")))) {
            rc = PX_ERR_NOMEM;
            goto out;
        }
        set->n++;
    }
out:
    if (rc < 0) {
        px_jwks_free(set);
        return rc;
    }
    *out = set;
    return 0;
}

/* ---- verification ---- */

static int b64url_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

/* Decodes one part (strict base64url, no padding). Returns 0 with *out
 * malloc'd, PX_JWT_MALFORMED, or PX_ERR_NOMEM. */
static int part(const char *s, size_t len, uint8_t **out, size_t *n)
{
    for (size_t i = 0; i < len; i++)
        if (!b64url_char(s[i]))
            return PX_JWT_MALFORMED;
    int rc = px_b64_decode(s, len, out, n);
    if (rc == PX_ERR_NOMEM)
        return rc;
    return rc < 0 ? PX_JWT_MALFORMED : 0;
}

/* One part decoded and parsed as a JSON object into *obj. */
static int json_part(const char *s, size_t len, json_t **obj)
{
    uint8_t *raw;
    size_t n;
    *obj = NULL;
    int rc = part(s, len, &raw, &n);
    if (rc != 0)
        return rc;
    json_error_t err;
    json_t *v = json_loadb((const char *)raw, n, JSON_REJECT_DUPLICATES, &err);
    free(raw);
    if (!v) /* jansson reports running out of memory as a parse error */
        return json_error_code(&err) == json_error_out_of_memory ? PX_ERR_NOMEM : PX_JWT_MALFORMED;
    if (!json_is_object(v)) {
        /* err is only filled in on failure: it says nothing here */
        json_decref(v);
        return PX_JWT_MALFORMED;
    }
    *obj = v;
    return 0;
}

/* The order n of P-256's base point, big-endian (SEC 2, section 2.4.2). */
static const byte p256_order[COORD] = {
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51};

/* Whether the big-endian v is in [1, n-1], as R and S must be. */
static int scalar_in_range(const byte v[COORD])
{
    byte any = 0;
    for (size_t i = 0; i < COORD; i++)
        any |= v[i];
    return any && memcmp(v, p256_order, COORD) < 0;
}

/* Verifies R || S over hash with the X9.63 point (on the curve: checked by
 * px_jwks_from_json). Returns PX_JWT_OK, PX_JWT_BAD_SIGNATURE, or
 * PX_ERR_NOMEM / PX_ERR_CRYPTO when the check could not be carried out.
 * wolfCrypt returns an error, not "invalid", for an R or S out of range,
 * the same kind of code as for a failure of its own: the range is checked
 * here first, so that every wolfCrypt error below is an error. */
static int check_sig(const byte point[POINT], const byte *hash, const byte sig[SIG_RAW])
{
    ecc_key key;
    byte der[ECC_MAX_SIG_SIZE];
    word32 der_len = sizeof(der);
    int res = 0;
    if (!scalar_in_range(sig) || !scalar_in_range(sig + COORD))
        return PX_JWT_BAD_SIGNATURE;
    int ret = wc_ecc_init(&key);
    if (ret != 0)
        return wc_err(ret);
    int rc;
    if ((ret = wc_ecc_import_x963_ex(point, POINT, &key, ECC_SECP256R1)) != 0 ||
        (ret = wc_ecc_rs_raw_to_sig(sig, COORD, sig + COORD, COORD, der, &der_len)) != 0 ||
        (ret = wc_ecc_verify_hash(der, der_len, hash, WC_SHA256_DIGEST_SIZE, &res, &key)) != 0) {
        rc = wc_err(ret);
        goto out;
    }
    rc = res == 1 ? PX_JWT_OK : PX_JWT_BAD_SIGNATURE;
out:
    wc_ecc_free(&key);
    return rc;
}

static long long sat_add(long long a, long long b)
{
    long long r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? LLONG_MAX : LLONG_MIN;
    return r;
}

/* Whether the numeric claim v (integer or real) is <= lim. */
static int num_le(const json_t *v, long long lim)
{
    if (json_is_integer(v))
        return json_integer_value(v) <= lim;
    return json_real_value(v) <= (double)lim;
}

/* MALFORMED unless each registered claim that is present has its type. */
static int claim_types(const json_t *c)
{
    static const char *const nums[] = {"exp", "nbf", "iat"};
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        const json_t *v = json_object_get(c, nums[i]);
        if (v && !json_is_number(v))
            return PX_JWT_MALFORMED;
    }
    const json_t *v;
    if ((v = json_object_get(c, "iss")) && !json_is_string(v))
        return PX_JWT_MALFORMED;
    if ((v = json_object_get(c, "sub")) && !json_is_string(v))
        return PX_JWT_MALFORMED;
    if ((v = json_object_get(c, "aud")) && !json_is_string(v)) {
        if (!json_is_array(v))
            return PX_JWT_MALFORMED;
        size_t i;
        const json_t *e;
        json_array_foreach(v, i, e)
        {
            if (!json_is_string(e))
                return PX_JWT_MALFORMED;
        }
    }
    return PX_JWT_OK;
}

static int has_audience(const json_t *aud, const char *audience)
{
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), audience) == 0;
    size_t i;
    const json_t *e;
    json_array_foreach(aud, i, e)
    {
        if (strcmp(json_string_value(e), audience) == 0)
            return 1;
    }
    return 0;
}

static int check_claims(const json_t *c, const char *audience, const char *issuer, long long now,
                        long long leeway)
{
    int rc = claim_types(c);
    if (rc != PX_JWT_OK)
        return rc;
    if (leeway < 0)
        leeway = 0;
    const json_t *exp = json_object_get(c, "exp");
    if (!exp || num_le(exp, sat_add(now, -leeway)))
        return PX_JWT_EXPIRED;
    long long late = sat_add(now, leeway);
    const json_t *nbf = json_object_get(c, "nbf"), *iat = json_object_get(c, "iat");
    if ((nbf && !num_le(nbf, late)) || (iat && !num_le(iat, late)))
        return PX_JWT_NOT_YET_VALID;
    if (audience) {
        const json_t *aud = json_object_get(c, "aud");
        if (!aud || !has_audience(aud, audience))
            return PX_JWT_WRONG_AUDIENCE;
    }
    if (issuer) {
        const char *iss = str_member(c, "iss");
        if (!iss || strcmp(iss, issuer) != 0)
            return PX_JWT_WRONG_ISSUER;
    }
    return PX_JWT_OK;
}

int px_jwt_verify(const struct px_jwks *keys, const char *jwt, size_t len, const char *audience,
                  const char *issuer, long long now, long long leeway, json_t **claims)
{
    json_t *hdr = NULL, *payload = NULL;
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    byte hash[WC_SHA256_DIGEST_SIZE];
    if (claims)
        *claims = NULL;
    if (!jwt || len == 0 || len > PX_JWT_MAX_LEN)
        return PX_JWT_MALFORMED;
    /* Exactly two dots, found within len. */
    const char *d1 = memchr(jwt, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - jwt)) : NULL;
    if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - jwt)))
        return PX_JWT_MALFORMED;
    size_t hlen = (size_t)(d1 - jwt), plen = (size_t)(d2 - d1 - 1);
    size_t slen = len - (size_t)(d2 + 1 - jwt);

    int rc = json_part(jwt, hlen, &hdr);
    if (rc != 0)
        goto out;
    const char *alg = str_member(hdr, "alg");
    if (!alg || strcmp(alg, "ES256") != 0) {
        rc = PX_JWT_BAD_ALGORITHM;
        goto out;
    }
    if (json_object_get(hdr, "crit")) {
        rc = PX_JWT_MALFORMED;
        goto out;
    }
    if ((rc = json_part(d1 + 1, plen, &payload)) != 0)
        goto out;
    if ((rc = part(d2 + 1, slen, &sig, &sig_len)) != 0)
        goto out;

    const char *kid = str_member(hdr, "kid");
    int found = 0;
    rc = PX_JWT_BAD_SIGNATURE;
    if (sig_len == SIG_RAW) {
        int ret = wc_Sha256Hash((const byte *)jwt, (word32)(d2 - jwt), hash);
        if (ret != 0) {
            rc = wc_err(ret);
            goto out;
        }
    }
    /* Try every key with that kid (a hostile set may repeat one). */
    for (size_t i = 0; kid && keys && i < keys->n && rc != PX_JWT_OK; i++) {
        if (strcmp(keys->keys[i].kid, kid) != 0)
            continue;
        found = 1;
        if (sig_len != SIG_RAW)
            break;
        rc = check_sig(keys->keys[i].point, hash, sig);
        if (rc < 0)
            goto out;
    }
    if (!found) {
        rc = PX_JWT_UNKNOWN_KEY;
        goto out;
    }
    if (rc != PX_JWT_OK)
        goto out;

    rc = check_claims(payload, audience, issuer, now, leeway);
    if (rc == PX_JWT_OK && claims) {
        *claims = payload;
        payload = NULL;
    }
out:
    free(sig);
    json_decref(payload);
    json_decref(hdr);
    return rc;
}

const char *px_jwt_verdict_str(int verdict)
{
    switch (verdict) {
    case PX_JWT_OK:
        return "ok";
    case PX_JWT_MISSING:
        return "no assertion";
    case PX_JWT_MALFORMED:
        return "malformed assertion";
    case PX_JWT_BAD_ALGORITHM:
        return "algorithm not allowed";
    case PX_JWT_UNKNOWN_KEY:
        return "unknown signing key";
    case PX_JWT_BAD_SIGNATURE:
        return "bad signature";
    case PX_JWT_EXPIRED:
        return "expired";
    case PX_JWT_NOT_YET_VALID:
        return "not yet valid";
    case PX_JWT_WRONG_AUDIENCE:
        return "wrong audience";
    case PX_JWT_WRONG_ISSUER:
        return "wrong issuer";
    }
    return verdict < 0 ? px_strerror(verdict) : "unknown verdict";
}
