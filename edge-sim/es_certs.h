/* es_certs: the edge's keys and certificate authorities in the data dir, and
 * browser-facing certificates minted per SNI name on demand (cached).
 *   server-ca   signs the tunnel port's certificate; its PEM goes in tokens
 *   client-ca   signs connector client certificates (CN = tunnel id)
 *   browser-ca  signs the certificates browsers see (`edge-sim ca`)
 *   access-ca   signs people's client certificates (`edge-sim client-cert`);
 *               the CA access policies trust by default, named "edge" */
#ifndef ES_CERTS_H
#define ES_CERTS_H

#include <stddef.h>

struct es_sni_cert {
    char host[256];
    char *cert_pem;
    struct es_sni_cert *next;
};

struct es_certs {
    char dir[512];
    char server_name[256];
    char *server_ca_pem, *server_ca_key;
    char *client_ca_pem, *client_ca_key;
    char *tunnel_cert_pem, *tunnel_key_pem;
    char *browser_ca_pem, *browser_ca_key;
    char *browser_key_pem, *browser_pub_pem;
    char *access_ca_pem, *access_ca_key;
    struct es_sni_cert *sni_cache;
    size_t sni_count;
};

/* Creates dir (0700) and any missing keys/CAs (files 0600), then loads them.
 * An existing dir or key file that others can read, or that another user
 * owns, is refused (PX_ERR_DENIED, why naming the chmod that fixes it).
 * server_name is the tunnel port's TLS name. Returns 0 or < 0 with why. */
int es_certs_init(struct es_certs *c, const char *dir, const char *server_name, char *why,
                  size_t whylen);
void es_certs_cleanup(struct es_certs *c);
/* Returns a certificate PEM for host signed by browser-ca (owned by the cache),
 * or NULL. host must be a normalized hostname or IP literal. */
const char *es_certs_for_host(struct es_certs *c, const char *host);
/* Issues a connector client certificate for pub_pem. Returns 0 and *cert_pem. */
int es_certs_issue_client(struct es_certs *c, const char *tunnel_id, const char *pub_pem,
                          char **cert_pem);

/* Issues a person's client certificate (CN = cn) for pub_pem from access-ca,
 * valid for days. Returns 0 and *cert_pem (caller frees), or < 0. */
int es_certs_issue_access(struct es_certs *c, const char *cn, const char *pub_pem, int days,
                          char **cert_pem);

#endif
