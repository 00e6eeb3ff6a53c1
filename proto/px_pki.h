/* px_pki: keys and certificates in memory (EC P-256, SHA-256 signatures).
 * All outputs are malloc'd NUL-terminated PEM strings owned by the caller.
 *
 * Randomness: proto keeps no RNG. Every function that needs random bytes
 * takes the caller's seeded WC_RNG first and uses it only during the call:
 * code on a loop passes that loop's (rt_loop_rng), a command-line path owns
 * one for the command (wc_InitRng ... wc_FreeRng). A WC_RNG is not
 * thread-safe: one per thread. */
#ifndef PX_PKI_H
#define PX_PKI_H

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/random.h>

#include <stddef.h>

enum px_pki_usage { PX_PKI_SERVER = 1, PX_PKI_CLIENT = 2 };

/* Generates a new P-256 private key. Returns 0 and *key_pem, or PX_ERR_CRYPTO. */
int px_pki_keygen(WC_RNG *rng, char **key_pem);
/* Returns the SubjectPublicKeyInfo of key_pem as PEM ("PUBLIC KEY"). */
int px_pki_pubkey(const char *key_pem, char **pub_pem);
/* Makes a self-signed CA certificate for key_pem with common name cn. */
int px_pki_make_ca(WC_RNG *rng, const char *key_pem, const char *cn, int days, char **cert_pem);
/* Issues a certificate for the public key pub_pem ("PUBLIC KEY" PEM), signed
 * by ca_cert_pem/ca_key_pem. cn is the subject common name; names (may be
 * NULL/0) become DNS or IP subjectAltNames. usage selects the extended key
 * usage. Returns 0 and *cert_pem, PX_ERR_INVAL for a bad key, or PX_ERR_CRYPTO. */
int px_pki_issue(WC_RNG *rng, const char *ca_cert_pem, const char *ca_key_pem, const char *pub_pem,
                 const char *cn, const char *const *names, size_t n_names, enum px_pki_usage usage,
                 int days, char **cert_pem);
/* What px_pki_issue_req puts in a certificate. */
struct px_pki_req {
    const char *cn;           /* subject common name */
    const char *ou;           /* subject organizational unit, or NULL */
    const char *const *names; /* DNS or IP subjectAltNames (may be NULL/0) */
    size_t n_names;
    const char *uri;         /* a URI subjectAltName (e.g. "tunnel:<id>"), or NULL */
    enum px_pki_usage usage; /* extended key usage */
    int days;                /* validity from now, when not_after is 0 */
    long long not_before;    /* explicit validity, seconds since the epoch (UTC), */
    long long not_after;     /* used when not_after > 0 */
};
/* px_pki_issue with every option: explicit validity to the second (short
 * lived credentials) and a URI SAN. Returns 0 and *cert_pem, PX_ERR_INVAL
 * (bad key, or not_after <= not_before), or PX_ERR_CRYPTO / PX_ERR_TOO_LARGE. */
int px_pki_issue_req(WC_RNG *rng, const char *ca_cert_pem, const char *ca_key_pem,
                     const char *pub_pem, const struct px_pki_req *r, char **cert_pem);
/* Bundles key_pem and cert_pem (and ca_pem, may be NULL) as PKCS#12 for
 * browsers, phones and NSS: the key and certificates encrypted with
 * pbeWithSHAAnd3-KeyTripleDES-CBC under password, a SHA-1 MAC, 2048
 * iterations, friendly_name as the bag's name (may be NULL). Returns 0 with
 * *der (malloc'd, caller frees) and *len, PX_ERR_INVAL for a bad key or
 * certificate, PX_ERR_CRYPTO, or PX_ERR_NOMEM.
 * Also PX_ERR_INVAL: an empty or NULL password (importers disagree on how to
 * spell one), a password or name that is not UTF-8 (both are written as
 * BMPStrings), a key that is not cert_pem's. key_pem is an EC key (SEC 1 or
 * PKCS#8 PEM); cert_pem's first certificate is the leaf, every certificate
 * in ca_pem follows it. Written in proto/px_p12.c. */
int px_pki_pkcs12(WC_RNG *rng, const char *key_pem, const char *cert_pem, const char *ca_pem,
                  const char *password, const char *friendly_name, unsigned char **der,
                  size_t *len);
/* Fills buf with n cryptographically random bytes from rng. Returns 0 or
 * PX_ERR_CRYPTO. */
int px_pki_random(WC_RNG *rng, void *buf, size_t n);

#endif
