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

/* A field added here that es_certs_init sets must be copied by
 * es_certs_view_init too. */
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
    /* 1 for a view (es_certs_view_init): every string above is its home's,
     * borrowed; only sni_cache is the view's own. */
    int is_view;
    /* During es_certs_init_shared only: where the CAs are, and their seal. */
    struct es_store *store;
    const struct es_seal_key *seal;
};

/* Creates dir (0700) and any missing keys/CAs (files 0600), then loads them.
 * An existing dir or key file that others can read, or that another user
 * owns, is refused (PX_ERR_DENIED, why naming the chmod that fixes it).
 * server_name is the tunnel port's TLS name. rng is borrowed for every key
 * and certificate c makes, now and later, and must outlive c: the serving
 * loop's (rt_loop_rng), or a command's own; c is then used on that thread
 * only (other threads use views of it, below). Returns 0 or < 0 with why. */
int es_certs_init(struct es_certs *c, WC_RNG *rng, const char *dir, const char *server_name,
                  char *why, size_t whylen);
struct es_store;
struct es_seal_key;
/* As es_certs_init, for edges sharing a PostgreSQL store: the CAs (server,
 * client, access, origin, origin-pull, browser) are read from st's `cas`
 * table, their keys opened with seal (the operator's --ca-key-file,
 * es_seal), and any missing one is made, sealed and stored (of two edges
 * doing so at once, both keep the first stored). No clear key is written
 * anywhere. The tunnel port's certificate and the browser leaf key belong
 * to this instance and are made in memory. st and seal are used only
 * during the call. Returns 0, or < 0 with why: PX_ERR_DENIED or
 * PX_ERR_CRYPTO when a stored key does not open with seal (why names both
 * key ids), or the store's error. */
int es_certs_init_shared(struct es_certs *c, WC_RNG *rng, struct es_store *st,
                         const struct es_seal_key *seal, const char *server_name, char *why,
                         size_t whylen);
/* Frees what c owns. On a view it frees only the view's SNI cache (as
 * es_certs_view_cleanup), never the borrowed strings. */
void es_certs_cleanup(struct es_certs *c);
/* Returns a certificate PEM for host signed by browser-ca (owned by the cache),
 * or NULL. host must be a normalized hostname or IP literal. Of c it reads
 * browser_ca_pem, browser_ca_key and browser_pub_pem, and changes its SNI
 * cache and draws from c->rng: on c's thread only (a worker loop uses its
 * own view, es_certs_view_init). The PEM stays valid until c's cache drops
 * it: the next call that mints may (past 4096 names), and cleanup does. */
const char *es_certs_for_host(struct es_certs *c, const char *host);

/* Per-loop views, for loops in other threads than the one that owns home.
 *
 * No es_certs function changes home's key and certificate strings once
 * es_certs_init has returned (nothing renews or reloads them: a new CA means
 * a restart); what they change is the SNI cache, and what they use up is
 * c->rng. A view is a struct es_certs that borrows every string of home
 * (the same pointers, so no copy of the CA keys) and has its own empty SNI
 * cache and its own rng: es_certs_for_host(view, ...) on the view's thread
 * then runs alongside home's use on its own thread, neither touching the
 * other's cache or rng. The other functions taking a struct es_certs work
 * on a view as well (they only read the strings and draw from rng).
 *
 * Makes view such a view of home, which must have been set up by
 * es_certs_init and must outlive the view (es_certs_cleanup(home) after
 * every view's cleanup); rng is borrowed, must outlive the view, and is
 * used on the view's thread only (that loop's rt_loop_rng). home is only
 * read, and may be in use on its own thread meanwhile. Returns 0, or
 * PX_ERR_INVAL (home not initialised, or itself a view; rng NULL). */
int es_certs_view_init(struct es_certs *view, const struct es_certs *home, WC_RNG *rng);
/* Frees the view's SNI cache (and the PEMs es_certs_for_host returned from
 * it); on the view's thread. es_certs_cleanup(view) does the same. */
void es_certs_view_cleanup(struct es_certs *view);
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
