/* es_access: who may come in. The access policies, client CAs and
 * revocations of the store (es_store_access), compiled into one immutable
 * object, and the check of one client certificate chain for one hostname.
 *
 * A running edge builds a new object whenever the store changes and drops
 * the old one, so nothing may keep a pointer into it across loop turns:
 * callers keep es_access_generation() with any verdict they cache.
 *
 * Threads: nothing in a set changes after es_access_build returns it but
 * its reference count. No cache is filled lazily: verdicts are cached by
 * the callers (es_peer), per connection; es_access_check builds any scratch
 * CertManager it needs per call; the CertManagers' CRLs are verified when
 * loaded, and their lookups take wolfSSL's own locks (a multi-threaded
 * wolfSSL build); the subject regexes are compiled once, and regexec may
 * run on one of them in several threads (POSIX; glibc locks it).
 * So one set may be shared by loops in different threads: each holds its
 * own reference (the builder's from es_access_build, others from
 * es_access_ref), reads it through the functions below at the same time as
 * the others, and drops it with es_access_free; the last one dropped frees
 * the set. A thread that takes
 * a reference must get the pointer from a holder in a way that orders the
 * two (handing it over a uv_async queue with a mutex, a uv_thread_create
 * argument): the count does not publish the pointer itself. */
#ifndef ES_ACCESS_H
#define ES_ACCESS_H

#include "es_store.h"
#include "px_cert.h"

#include <stddef.h>

enum es_access_verdict {
    ES_ACCESS_OPEN = 0,      /* no policy covers the hostname: anyone */
    ES_ACCESS_ALLOWED,       /* a policy covers it and the certificate passes */
    ES_ACCESS_NO_CERT,       /* the connection presented no certificate */
    ES_ACCESS_EXPIRED,       /* past its notAfter */
    ES_ACCESS_NOT_YET_VALID, /* before its notBefore */
    ES_ACCESS_REVOKED,       /* revoked (edge-issued: `client-cert revoke`; own CA: its CRL) */
    ES_ACCESS_UNTRUSTED,     /* not issued by a CA this hostname trusts */
    ES_ACCESS_SUBJECT,     /* a trusted CA issued it, but its subject/fingerprint is not allowed */
    ES_ACCESS_CRL_STALE,   /* the CA's CRL is past its nextUpdate: status unknown */
    ES_ACCESS_CRL_MISSING, /* the CA has CRLs, none from the certificate's issuer */
};

/* The plain reason a refused request's 403 page starts with. */
const char *es_access_verdict_reason(enum es_access_verdict v);

struct es_access;
struct es_access_policy;

/* Checks what `client-ca add/update` stores, as es_access_build will load
 * it: pem holds one or more CA certificates (CA:TRUE), crl (may be NULL)
 * one or more PEM CRLs, each signed by a certificate of pem. Returns 0, or
 * PX_ERR_INVAL with why. */
int es_access_validate_ca(const char *pem, const char *crl, char *why, size_t whylen);

/* Builds the access state from the store; edge_ca_pem is the built-in CA
 * (es_certs access-ca; NULL: it trusts nothing). generation is recorded for callers' caches. A CA
 * or CRL that does not load, or a regex that does not compile, is logged
 * and makes every hostname whose policy names it refuse all certificates
 * (ES_ACCESS_UNTRUSTED) rather than open up. Returns 0 and *out, or
 * PX_ERR_DB / PX_ERR_NOMEM / PX_ERR_TLS with why. */
int es_access_build(struct es_store *store, const char *edge_ca_pem, unsigned long long generation,
                    struct es_access **out, char *why, size_t whylen);
/* Takes one more reference to a, for another holder. The caller must hold
 * a reference itself for the duration of the call (one taken from a set
 * whose last reference may be dropped meanwhile would race the free).
 * NULL-safe. Returns a. Safe from any thread. */
struct es_access *es_access_ref(struct es_access *a);
/* Drops one reference to a (from es_access_build or es_access_ref); the
 * last one frees it. NULL-safe. Safe from any thread, each reference being
 * dropped once. */
void es_access_free(struct es_access *a);
unsigned long long es_access_generation(const struct es_access *a);
/* Number of policies. */
size_t es_access_count(const struct es_access *a);

/* The policy for host (normalised): the exact pattern if there is one, else
 * the longest *.suffix covering it, else NULL. a may be NULL (no policies). */
const struct es_access_policy *es_access_policy_for(const struct es_access *a, const char *host);
const char *es_access_policy_pattern(const struct es_access_policy *p);
/* The assertion audience the policy sets, or NULL (the hostname). */
const char *es_access_policy_audience(const struct es_access_policy *p);

/* Checks a chain (leaf first, as the client sent it; n may be 0) against
 * policy p (NULL: ES_ACCESS_OPEN). leaf is px_cert_info of chain[0]. */
enum es_access_verdict es_access_check(const struct es_access *a, const struct es_access_policy *p,
                                       const struct px_der *chain, size_t n,
                                       const struct px_cert_info *leaf);

#endif
