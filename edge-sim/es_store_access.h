/* es_store_access: who may come in, in the edge's database (es_store):
 *   client_certs    the certificates access-ca issued (`client-cert`), and
 *                   their revocations
 *   client_cas      operators' own CAs, with an optional CRL (`client-ca`)
 *   access_policies which hostnames want a certificate, from which CAs, for
 *                   which subjects or fingerprints (`access set`)
 *   signing_keys    the keys that sign identity assertions (`access
 *                   rotate-key`); the newest unretired one signs
 * Every change is one transaction and bumps the database's data_version, so
 * a running `serve` (es_store_changed) reloads within its poll interval.
 * Strings in records are malloc'd and owned by the record. */
#ifndef ES_STORE_ACCESS_H
#define ES_STORE_ACCESS_H

#include "es_store.h"

#include <stddef.h>

/* The built-in CA's name in policies and listings. */
#define ES_ACCESS_EDGE_CA "edge"

struct es_client_cert_rec {
    char *name;
    char *serial;      /* lower-case hex (px_cert_info) */
    char *fingerprint; /* SHA-256, lower-case hex */
    char *subject;
    long long not_before, not_after, created;
    long long revoked; /* when; 0 while valid */
};

/* Records an issued certificate. Returns 0, PX_ERR_EXISTS (a certificate that
 * is not revoked already has this name), or PX_ERR_DB. */
int es_store_client_cert_add(struct es_store *s, const struct es_client_cert_rec *c);
/* Lists every issued certificate, oldest first. *out is malloc'd (free with
 * es_store_client_certs_free). Returns 0 or PX_ERR_DB / PX_ERR_NOMEM. */
int es_store_client_cert_list(struct es_store *s, struct es_client_cert_rec **out, size_t *n);
void es_store_client_certs_free(struct es_client_cert_rec *c, size_t n);
/* Revokes, at time now, the unrevoked certificates whose name or serial is
 * name_or_serial (a serial may be given with colons or in upper case).
 * *n_revoked (may be NULL) gets how many. Returns 0, PX_ERR_NOT_FOUND (none
 * matched; an already revoked match counts as found, with *n_revoked 0), or
 * PX_ERR_DB. */
int es_store_client_cert_revoke(struct es_store *s, const char *name_or_serial, long long now,
                                size_t *n_revoked);

struct es_client_ca_rec {
    char *name;
    char *cert_pem; /* one or more CA certificates */
    char *crl_pem;  /* NULL when none */
    long long created, updated;
};

/* Adds a CA. Returns 0, PX_ERR_EXISTS (the name is taken, or is
 * ES_ACCESS_EDGE_CA), or PX_ERR_DB. */
int es_store_client_ca_add(struct es_store *s, const struct es_client_ca_rec *ca);
/* Replaces the CRL of CA name (crl_pem NULL removes it). Returns 0,
 * PX_ERR_NOT_FOUND or PX_ERR_DB. */
int es_store_client_ca_set_crl(struct es_store *s, const char *name, const char *crl_pem,
                               long long now);
/* Deletes CA name. Returns 0, PX_ERR_NOT_FOUND, PX_ERR_DENIED (a policy names
 * it: *used_by, if non-NULL, gets that policy's pattern, malloc'd) or PX_ERR_DB. */
int es_store_client_ca_delete(struct es_store *s, const char *name, char **used_by);
int es_store_client_ca_list(struct es_store *s, struct es_client_ca_rec **out, size_t *n);
void es_store_client_cas_free(struct es_client_ca_rec *c, size_t n);

struct es_policy_rec {
    char *pattern;   /* an exact hostname or *.suffix */
    char **cas;      /* CA names; ES_ACCESS_EDGE_CA is the built-in one */
    size_t n_cas;    /* >= 1 */
    char **subjects; /* extended regexes searched in the subject DN */
    size_t n_subjects;
    char **fingerprints; /* SHA-256, lower-case hex */
    size_t n_fingerprints;
    char *audience; /* the assertion's "aud"; NULL: the hostname */
    long long created;
};

/* Sets the policy for p->pattern, replacing one that exists. Returns 0,
 * PX_ERR_NOT_FOUND (a CA it names does not exist: *missing, if non-NULL,
 * gets that name, malloc'd), or PX_ERR_DB. */
int es_store_policy_set(struct es_store *s, const struct es_policy_rec *p, char **missing);
/* Returns 0, PX_ERR_NOT_FOUND or PX_ERR_DB. */
int es_store_policy_delete(struct es_store *s, const char *pattern);
int es_store_policy_list(struct es_store *s, struct es_policy_rec **out, size_t *n);
void es_store_policies_free(struct es_policy_rec *p, size_t n);
void es_policy_rec_cleanup(struct es_policy_rec *p);

struct es_signing_key_rec {
    char *kid;
    char *key_pem;
    long long created;
    long long retired; /* when a newer key took over; 0 for the signing key */
};

/* Adds key k as the signing key, retiring the current one at k->created.
 * With only_if_none, adds it only when there is no signing key yet (two
 * processes starting at once end with one). Returns 0 (added, or with
 * only_if_none one already existed) or PX_ERR_DB. */
int es_store_signing_key_add(struct es_store *s, const struct es_signing_key_rec *k,
                             int only_if_none);
/* Lists the keys, newest first, opened (a shared store seals them:
 * es_store_set_seal; PX_ERR_DENIED without the key, PX_ERR_CRYPTO when one
 * does not open with it). */
int es_store_signing_key_list(struct es_store *s, struct es_signing_key_rec **out, size_t *n);
void es_store_signing_keys_free(struct es_signing_key_rec *k, size_t n);
/* Deletes keys retired before cutoff. Returns 0 or PX_ERR_DB. */
int es_store_signing_key_prune(struct es_store *s, long long cutoff);

#endif
