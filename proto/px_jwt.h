/* px_jwt: the edge's identity assertions: JSON Web Tokens signed with ES256
 * (RFC 7519, RFC 7515 compact form, RFC 7518 section 3.4), and the keys
 * that verify them as a JWK Set (RFC 7517). I/O-free.
 *
 * Keys are P-256 (px_pki_keygen). A key's id ("kid") is its RFC 7638 JWK
 * thumbprint, base64url, so both ends derive it and nothing is configured. */
#ifndef PX_JWT_H
#define PX_JWT_H

#include <jansson.h>
#include <stddef.h>

/* Longest compact JWT px_jwt_verify reads; longer is PX_JWT_MALFORMED. */
#define PX_JWT_MAX_LEN 8192

/* The RFC 7638 thumbprint of key_pem's public key (a P-256 private key PEM,
 * or a "PUBLIC KEY" PEM), base64url without padding (43 characters), into
 * kid. Returns 0, PX_ERR_INVAL for a key that is not P-256, PX_ERR_NOMEM or
 * PX_ERR_CRYPTO (wolfCrypt failed). */
int px_jwt_kid(const char *key_pem, char kid[44]);
/* The public JWK of key_pem: {"kty":"EC","crv":"P-256","x":..,"y":..,
 * "kid":<px_jwt_kid>,"use":"sig","alg":"ES256"}. Returns 0 with *jwk (a new
 * reference, caller decrefs), PX_ERR_INVAL, PX_ERR_CRYPTO or PX_ERR_NOMEM. */
int px_jwt_jwk(const char *key_pem, json_t **jwk);
/* Signs claims (a JSON object; not taken) with key_pem: header
 * {"alg":"ES256","typ":"JWT","kid":<px_jwt_kid>}. Returns 0 with *jwt a
 * malloc'd compact serialisation (caller frees), PX_ERR_INVAL, PX_ERR_CRYPTO
 * or PX_ERR_NOMEM. */
int px_jwt_sign(const char *key_pem, const json_t *claims, char **jwt);

/* A set of verification keys (opaque). */
struct px_jwks;
/* Reads a JWK Set ({"keys":[...]}; a JSON object, not taken). Keys that are
 * not EC P-256 signing keys with a kid are skipped ("use" other than "sig",
 * "alg" other than "ES256", kid not a string); a P-256 key whose point is not
 * on the curve, or whose x or y is missing or not 32 bytes of unpadded
 * base64url, is an error. The kid is not required to be the thumbprint.
 * Returns 0 with *out (free with px_jwks_free; it may hold no key),
 * PX_ERR_INVAL, PX_ERR_NOMEM or PX_ERR_CRYPTO (wolfCrypt failed while
 * checking a point: not a verdict on it). */
int px_jwks_from_json(const json_t *jwks, struct px_jwks **out);
void px_jwks_free(struct px_jwks *k);
/* Number of usable keys in k. */
size_t px_jwks_count(const struct px_jwks *k);

/* Why an assertion was refused (or PX_JWT_OK). */
enum px_jwt_verdict {
    PX_JWT_OK = 0,
    PX_JWT_MISSING,        /* no token (for callers; px_jwt_verify never returns it) */
    PX_JWT_MALFORMED,      /* not three base64url parts of JSON, or too long; also a
                            * member named twice (jansson's JSON_REJECT_DUPLICATES), a
                            * "crit" header, a registered claim of the wrong type */
    PX_JWT_BAD_ALGORITHM,  /* header alg is not ES256 (never "none") */
    PX_JWT_UNKNOWN_KEY,    /* no key in the set has the header's kid */
    PX_JWT_BAD_SIGNATURE,  /* the signature was checked and is wrong (or not 64 bytes) */
    PX_JWT_EXPIRED,        /* exp <= now - leeway, or exp missing */
    PX_JWT_NOT_YET_VALID,  /* nbf or iat later than now + leeway */
    PX_JWT_WRONG_AUDIENCE, /* aud (a string, or an array) does not hold audience */
    PX_JWT_WRONG_ISSUER,   /* iss is not the expected issuer */
};

/* Verifies a compact JWT (jwt/len, not NUL-terminated) signed by a key in
 * keys, for audience (NULL: not checked) and issuer (NULL: not checked), at
 * time now (seconds since the epoch) allowing leeway seconds of clock skew
 * (negative counts as 0). Checks, in order: length and parts, header, alg,
 * payload and signature encoding, kid, signature, then claim types, exp,
 * nbf/iat, aud, iss (px_jwt.c says more).
 * On PX_JWT_OK and claims non-NULL, *claims is the payload (new reference).
 * Never reads past len. Returns a px_jwt_verdict, or an error (< 0) when a
 * check could not be carried out: PX_ERR_NOMEM (memory ran out, here or in
 * wolfCrypt) or PX_ERR_CRYPTO (wolfCrypt failed otherwise). A failure is
 * never reported as a verdict such as PX_JWT_BAD_SIGNATURE. */
int px_jwt_verify(const struct px_jwks *keys, const char *jwt, size_t len, const char *audience,
                  const char *issuer, long long now, long long leeway, json_t **claims);
/* A short, static description: "expired", "wrong audience", ... */
const char *px_jwt_verdict_str(int verdict);

#endif
