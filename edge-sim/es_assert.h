/* es_assert: the identity assertions the edge signs for allowed requests
 * (ES256 JWTs, px_jwt) and the JWK Set that verifies them.
 *
 * Keys live in the store (es_store_access signing_keys): the newest
 * unretired one signs; a retired one stays published for
 * ES_ASSERT_PUBLISH_AFTER_RETIRE seconds, longer than any assertion it
 * signed lives. Like es_access, the object is immutable and rebuilt when the
 * store changes (and when a retired key's publication ends). */
#ifndef ES_ASSERT_H
#define ES_ASSERT_H

#include "es_store.h"
#include "px_cert.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/random.h>

/* Lifetime of an assertion, seconds. */
#define ES_ASSERT_TTL 300
/* How long a retired key stays in the JWK Set: the longest an assertion it
 * signed can live, plus clock skew. */
#define ES_ASSERT_PUBLISH_AFTER_RETIRE (ES_ASSERT_TTL + 300)
/* At most this many keys are published, newest first: the set must fit in
 * one control-stream line (64 KiB) to reach connectors. Rotating more often
 * than that within ES_ASSERT_PUBLISH_AFTER_RETIRE unpublishes the oldest
 * early (their assertions then fail verification before they expire). */
#define ES_ASSERT_MAX_PUBLISHED 16
/* The request header that carries the assertion to the origin. */
#define ES_ASSERT_HEADER "edge-access-jwt-assertion"
/* Where browsers and origins fetch the JWK Set through the edge, on any
 * hostname (answered by the edge, never forwarded). */
#define ES_ASSERT_JWKS_PATH "/.well-known/edge-sim/jwks.json"

struct es_assert;

/* The assertions' issuer, "edge-sim:<id>": one per data dir (kv edge_id),
 * so edges sharing it agree. With create, makes the id (drawn from rng) if
 * there is none (of two processes racing, the first stored wins). Returns 0
 * with out filled, PX_ERR_NOT_FOUND (no id and !create), PX_ERR_DB or
 * PX_ERR_CRYPTO. */
int es_assert_issuer_load(WC_RNG *rng, struct es_store *store, int create, char *out,
                          size_t outlen);

/* Makes a signing key (from rng) if the store has none (two processes racing
 * end with one), then builds. issuer is the "iss" of every assertion.
 * Returns 0 and *out, or < 0 with why. */
int es_assert_build(WC_RNG *rng, struct es_store *store, const char *issuer, long long now,
                    struct es_assert **out, char *why, size_t whylen);
void es_assert_free(struct es_assert *a);
/* When a retired key leaves the JWK Set (rebuild then), or 0 if never. */
long long es_assert_next_change(const struct es_assert *a);
/* The JWK Set, compact JSON text (owned by a). */
const char *es_assert_jwks(const struct es_assert *a);
const char *es_assert_issuer(const struct es_assert *a);
/* The id (px_jwt_kid) of the key that signs now. */
const char *es_assert_kid(const struct es_assert *a);
/* Signs an assertion: iss, aud = audience, sub = the certificate's subject,
 * cnf {"x5t#S256": base64url SHA-256 of the certificate} (RFC 8705), iat =
 * now, nbf = now - 5, exp = now + ES_ASSERT_TTL, plus "cert_serial" and
 * "cert_issuer". Returns 0 and *jwt (malloc'd), or < 0. */
int es_assert_sign(const struct es_assert *a, const char *audience, const struct px_cert_info *leaf,
                   long long now, char **jwt);

#endif
