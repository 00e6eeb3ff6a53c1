/* cn_assert: the edge's identity assertions, as the connector checks them:
 * the keys a link received and the check of one request.
 *
 * For every request it lets through, the edge signs a short-lived JWT
 * (ES256, proto/px_jwt.h) and sends it in the request header
 * CN_ASSERT_HEADER; it removes any copy a client sent. Over each tunnel
 * connection's control stream it sends ACCESS_KEYS (issuer + JWK Set) right
 * after "registered" and again whenever its keys change. A link keeps the
 * latest as a struct cn_assert_keys (cn_link_assert_keys). A rule with
 * originRequest.access.required makes cn_stream call cn_assert_check before
 * it contacts the origin, and answer 403 unless the verdict is PX_JWT_OK.
 *
 * I/O-free; the caller passes the time. */
#ifndef CN_ASSERT_H
#define CN_ASSERT_H

#include "px_jwt.h"

#include <stddef.h>

/* The request header carrying the assertion (HTTP/2 lower case; on
 * HTTP/1.1 "Edge-Access-Jwt-Assertion"). */
#define CN_ASSERT_HEADER "edge-access-jwt-assertion"
/* Clock skew allowed between the edge and the connector, seconds. */
#define CN_ASSERT_LEEWAY_S 30
/* A cn_assert_check verdict besides enum px_jwt_verdict: the link has
 * received no usable keys (no ACCESS_KEYS yet, or one that could not be
 * read). */
#define CN_ASSERT_NO_KEYS 100

/* One ACCESS_KEYS message, parsed: the issuer and the verification keys.
 * Immutable; a new message replaces the whole object. */
struct cn_assert_keys;

/* Builds keys from an ACCESS_KEYS message: issuer (non-empty) and jwks (the
 * JWK Set as JSON text, an object with a "keys" array; px_jwks_from_json
 * decides which keys are usable, and a set may hold none). Returns 0 with
 * *out (free with cn_assert_keys_free), PX_ERR_INVAL, PX_ERR_NOMEM or
 * PX_ERR_CRYPTO; *out is NULL on failure. */
int cn_assert_keys_new(const char *issuer, const char *jwks, struct cn_assert_keys **out);
void cn_assert_keys_free(struct cn_assert_keys *k);
/* Usable keys in k (0 for NULL). */
size_t cn_assert_keys_count(const struct cn_assert_keys *k);
/* The issuer k expects (NULL for NULL). */
const char *cn_assert_keys_issuer(const struct cn_assert_keys *k);

/* Checks one request's assertion: token/len is the header's value (token
 * NULL: the request carried none), keys what its link received (NULL: none
 * yet), audience the audience the rule requires (its access.audience, else
 * the request's normalised host; not NULL), now the time in seconds since
 * the epoch. The token must be signed by one of keys, for audience, with
 * the issuer of keys, and unexpired, allowing CN_ASSERT_LEEWAY_S of skew.
 * Returns PX_JWT_OK; another enum px_jwt_verdict (PX_JWT_MISSING when token
 * is NULL, whatever keys is); CN_ASSERT_NO_KEYS; or, when the check could
 * not be made, PX_ERR_NOMEM or PX_ERR_CRYPTO (< 0; never a verdict). */
int cn_assert_check(const struct cn_assert_keys *keys, const char *token, size_t len,
                    const char *audience, long long now);
/* A short static description of a cn_assert_check result ("expired",
 * "wrong audience", "no keys from the edge to check the assertion", ...). */
const char *cn_assert_verdict_str(int verdict);

#endif
