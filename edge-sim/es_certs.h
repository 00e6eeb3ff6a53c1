/* es_certs: the edge's keys and certificate authorities in the data dir, and
 * browser-facing certificates minted per SNI name on demand (cached).
 *   server-ca   signs the tunnel port's certificate; its PEM goes in tokens
 *   client-ca   signs connector client certificates (CN = tunnel id)
 *   browser-ca  signs the certificates browsers see (`edge-sim ca`)
 *   access-ca   signs people's client certificates (`edge-sim client-cert`);
 *               the CA access policies trust by default, named "edge"
 *   origin-ca   signs origin server certificates (`edge-sim origin-cert
 *               create`); connectors get its PEM and trust it for https origins
 *   origin-pull-ca  signs the certificates connectors present to origins
 *               (kind "origin_pull"); `edge-sim origin-pull-ca` prints it */
#ifndef ES_CERTS_H
#define ES_CERTS_H

#include "px_list.h"
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/random.h>

#include <stddef.h>

struct es_sni_cert {
    char host[256];
    char *cert_pem;
    struct px_list_node link; /* in es_certs.sni_cache, newest first */
};

struct es_certs {
    WC_RNG *rng; /* borrowed (es_certs_init): keys and serials */
    char dir[512];
    char server_name[256];
    char *server_ca_pem, *server_ca_key;
    char *client_ca_pem, *client_ca_key;
    char *tunnel_cert_pem, *tunnel_key_pem;
    char *browser_ca_pem, *browser_ca_key;
    char *browser_key_pem, *browser_pub_pem;
    char *access_ca_pem, *access_ca_key;
    char *origin_ca_pem, *origin_ca_key;
    char *origin_pull_ca_pem, *origin_pull_ca_key;
    struct px_list sni_cache; /* of es_sni_cert, newest first */
    size_t sni_count;
};

/* Creates dir (0700) and any missing keys/CAs (files 0600), then loads them.
 * An existing dir or key file that others can read, or that another user
 * owns, is refused (PX_ERR_DENIED, why naming the chmod that fixes it).
 * server_name is the tunnel port's TLS name. rng is borrowed for every key
 * and certificate c makes, now and later, and must outlive c: the serving
 * loop's (rt_loop_rng), or a command's own; c is then used on that thread
 * only. Returns 0 or < 0 with why. */
int es_certs_init(struct es_certs *c, WC_RNG *rng, const char *dir, const char *server_name,
                  char *why, size_t whylen);
void es_certs_cleanup(struct es_certs *c);
/* Returns a certificate PEM for host signed by browser-ca (owned by the cache),
 * or NULL. host must be a normalized hostname or IP literal. */
const char *es_certs_for_host(struct es_certs *c, const char *host);
/* Lifetimes of the connector's certificates (tunnel client and origin pull),
 * seconds: `edge-sim serve --cert-lifetime`. */
#define ES_CERT_LIFETIME_DEFAULT (7LL * 86400)
#define ES_CERT_LIFETIME_MIN 10LL
#define ES_CERT_LIFETIME_MAX (825LL * 86400)
/* Short-lived certificates start this long before now (clocks disagree). */
#define ES_CERT_SKEW 60LL
/* Origin server certificates: days by default (15 years) and at most. */
#define ES_ORIGIN_CERT_DAYS 5479
#define ES_ORIGIN_CERT_MAX_DAYS 36500

/* A connector certificate's subject carries its line of renewals: when it
 * began and with which token generation (es_store_enrol_rotation),
 * "OU=enrolled <seconds since the epoch> rotation <generation>". A renewal
 * copies it, so the edge can refuse to renew what was enrolled with a token
 * since replaced (es_store_line_renewable), to the exact rotation rather
 * than to the second. */
#define ES_CERT_ENROLLED_OU "enrolled "
#define ES_CERT_ROTATION_OU " rotation "
struct es_cert_line {
    long long enrolled_at; /* seconds since the epoch; 0: unknown */
    long long rotation;    /* token generation; -1: not in the certificate */
};
/* Issues a connector client certificate (client-ca, CN = tunnel_id, OU as
 * above from *line, whose rotation must be >= 0; EKU clientAuth) for
 * pub_pem, valid from now - ES_CERT_SKEW to now + lifetime seconds. Returns
 * 0 and *cert_pem (caller frees), PX_ERR_INVAL for a key that is not EC
 * P-256, a lifetime out of range or a negative rotation, or
 * PX_ERR_CRYPTO/NOMEM. */
int es_certs_issue_client(struct es_certs *c, const char *tunnel_id, const char *pub_pem,
                          long long lifetime, const struct es_cert_line *line, char **cert_pem);
/* The line in a connector certificate's subject (RFC 4514, as px_cert_info
 * gives it): *out gets enrolled_at 0 when the subject has no such OU (issued
 * before it existed), and rotation -1 when it has no generation (issued
 * before generations; es_store_legacy_rotation tells it). */
void es_certs_line(const char *subject, struct es_cert_line *out);
/* Issues an origin-pull certificate (origin-pull-ca, CN = tunnel_id, SAN URI
 * "tunnel:<tunnel_id>", EKU clientAuth) for pub_pem; validity and returns as
 * es_certs_issue_client. */
int es_certs_issue_origin_pull(struct es_certs *c, const char *tunnel_id, const char *pub_pem,
                               long long lifetime, char **cert_pem);
/* Issues an origin server certificate (origin-ca, CN = names[0], every name a
 * DNS or IP SAN, EKU serverAuth) for pub_pem, valid for days
 * (1..ES_ORIGIN_CERT_MAX_DAYS) from now. n_names >= 1. Returns as
 * es_certs_issue_client. */
int es_certs_issue_origin(struct es_certs *c, const char *const *names, size_t n_names,
                          const char *pub_pem, int days, char **cert_pem);
/* 0 if pub_pem is a "PUBLIC KEY" PEM of a valid EC P-256 point, else PX_ERR_INVAL. */
int es_certs_check_p256(const char *pub_pem);

/* Issues a person's client certificate (CN = cn) for pub_pem from access-ca,
 * valid for days. Returns 0 and *cert_pem (caller frees), or < 0. */
int es_certs_issue_access(struct es_certs *c, const char *cn, const char *pub_pem, int days,
                          char **cert_pem);

#endif
