/* es_admin_token: the bearer token of the edge's admin API. It lives in the
 * data dir as admin.token (mode 0600, owned by the edge's user): 32 random
 * bytes in base64url without padding, 43 characters, one line. `serve`
 * creates it at start when it is missing, and so does `edge-sim admin
 * token`, which prints it for the operator. Nothing here logs it.
 *
 * An operator may put a token of their own in the file: 32 to 256
 * characters of the base64url alphabet (A-Z a-z 0-9 - _). */
#ifndef ES_ADMIN_TOKEN_H
#define ES_ADMIN_TOKEN_H

#include <stddef.h>
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/random.h>

#define ES_ADMIN_TOKEN_FILE "admin.token"
#define ES_ADMIN_TOKEN_MIN 32
#define ES_ADMIN_TOKEN_MAX 256

/* Reads dir/admin.token into out (at least ES_ADMIN_TOKEN_MAX + 1 bytes),
 * creating it first from rng when it does not exist (with create set).
 * Creation is atomic and never replaces a file: of two processes creating
 * it at once both end up with the one that was written first. *created (may
 * be NULL) says whether this call wrote it. Returns 0; PX_ERR_NOT_FOUND (no
 * file and create unset); PX_ERR_DENIED (the file is open to others or not
 * ours: why names the fix); PX_ERR_INVAL (its content is not a token);
 * PX_ERR_IO / PX_ERR_TOO_LARGE / PX_ERR_NOMEM / PX_ERR_CRYPTO, with why. */
int es_admin_token_load(const char *dir, WC_RNG *rng, int create, char *out, int *created,
                        char *why, size_t whylen);

/* Whether authorization (an Authorization header value, or NULL) is
 * "Bearer <token>" (the scheme in any case) for this token. The comparison
 * takes the same time whatever the presented value shares with the token.
 * An empty token matches nothing. Returns 1 or 0. */
int es_admin_token_check(const char *token, const char *authorization);

#endif
