/* es_peer: the client certificate one browser connection presented, and
 * what the edge decided and signed for it. The verdict is cached per
 * hostname and access generation, so a connection's requests cost one
 * check, and a policy change or a revocation applies at its next request.
 * The assertion is cached per audience and signing key until half its
 * lifetime is left. */
#ifndef ES_PEER_H
#define ES_PEER_H

#include "es_access.h"
#include "es_assert.h"
#include "px_cert.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

struct es_peer {
    struct px_der *chain; /* leaf first; NULL/0 when none was presented */
    size_t n;
    struct px_cert_info leaf; /* valid when n > 0 */
    /* cache */
    unsigned long long verdict_gen;
    char *verdict_host;
    enum es_access_verdict verdict;
    char *jwt, *jwt_aud;
    long long jwt_refresh; /* sign again from this time on */
    char jwt_kid[44];      /* the key that signed jwt */
};

void es_peer_init(struct es_peer *p);
void es_peer_cleanup(struct es_peer *p);
/* Takes the certificate chain ssl's peer presented (after the handshake).
 * None presented is not an error. A leaf that does not parse counts as none.
 * Returns 0 or PX_ERR_NOMEM. */
int es_peer_from_tls(struct es_peer *p, WOLFSSL *ssl);
/* Sets the chain from DER certificates (copied; tests and fuzzing).
 * Returns 0, PX_ERR_INVAL (the leaf does not parse) or PX_ERR_NOMEM. */
int es_peer_set_chain(struct es_peer *p, const struct px_der *chain, size_t n);
/* The verdict for host under a (may be NULL); *policy (may be NULL) gets the
 * policy that applies, or NULL. p may be NULL (no certificate). */
enum es_access_verdict es_peer_verdict(struct es_peer *p, const struct es_access *a,
                                       const char *host, const struct es_access_policy **policy);
/* An assertion for audience signed by as, valid at now; *jwt is owned by p
 * and valid until the next call. Returns 0 or < 0. */
int es_peer_assertion(struct es_peer *p, const struct es_assert *as, const char *audience,
                      long long now, const char **jwt);
/* Calls add(arg, name, value) for each certificate detail an origin gets
 * (lower-case names; see docs/protocol.md): X-Client-Cert-Verified
 * (SUCCESS, or NONE when p is NULL or holds no certificate) and, with a
 * certificate, X-Client-Cert-Subject-DN, -Issuer-DN, -Serial,
 * -Fingerprint-SHA256, -Not-Before, -Not-After, Client-Cert and
 * Client-Cert-Chain (RFC 9440). Stops at and returns add's first
 * negative value, or PX_ERR_NOMEM; else 0. */
int es_peer_headers(const struct es_peer *p,
                    int (*add)(void *arg, const char *name, const char *value), void *arg);

#endif
