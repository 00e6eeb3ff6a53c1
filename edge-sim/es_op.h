/* es_op: what an operator does to an edge, one function per command, shared
 * by the CLI (es_main.c, es_cli_access.c: it prints) and the admin API
 * (es_admin_api.c: it answers JSON). Each operation validates its input
 * itself (the API's comes from the network), changes the database in one
 * transaction and returns 0 or a px_err code with a sentence for a person in
 * why (without a program prefix):
 *   PX_ERR_INVAL      bad input (a name, pattern, PEM, duration ...)
 *   PX_ERR_NOT_FOUND  no such tunnel, policy, CA or certificate
 *   PX_ERR_EXISTS     the name is taken
 *   PX_ERR_DENIED     refused as things stand (a CA a policy still uses)
 *   PX_ERR_DB, PX_ERR_NOMEM, PX_ERR_CRYPTO  the edge failed
 * A running serve picks a change made through another database connection
 * up within its poll interval (es_store_changed); one made through its own
 * connection (the admin API) is applied by the caller (es_server_reload).
 * Secrets (tokens, keys, passwords) are returned to the caller, never
 * logged, and wiped by the cleanup functions. */
#ifndef ES_OP_H
#define ES_OP_H

#include "px_cert.h"

#include <stddef.h>
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/random.h>

struct es_certs;
struct es_live;
struct es_store;

struct es_op_ctx {
    struct es_store *store;
    struct es_certs *certs; /* the CAs: server_ca_pem in tokens, the access CA issues */
    WC_RNG *rng;
    const char *dir;      /* the data dir ("" when unknown: no live.db is read) */
    struct es_live *live; /* an open live view to read the edges from, or NULL */
};

/* ---- tunnels (es_op_tunnel.c) ---- */

/* A token handed out by create or rotate-token. */
struct es_op_token {
    char id[33];
    char name[65];
    char *token;              /* malloc'd; es_op_token_cleanup wipes it */
    long long previous_until; /* rotate: the old token enrols until then; 0: no longer */
    char edges[8][301];       /* the edges the token names */
    size_t n_edges;
};
void es_op_token_cleanup(struct es_op_token *t);

/* A new tunnel name (1-64 of letters, digits, '-', '_', '.') allowed the
 * hostname patterns[0..n) (lower-cased; none: any free name), with a token
 * naming edges[0..n_edges) (HOST:PORT; none: the tunnel addresses of the
 * serves running on ctx->dir, else the last one that ran). */
int es_op_tunnel_create(const struct es_op_ctx *ctx, const char *name, const char *const *patterns,
                        size_t n, const char *const *edges, size_t n_edges, struct es_op_token *out,
                        char *why, size_t whylen);
/* A new secret for the tunnel named (or with id) name; the previous token
 * enrols for grace more seconds (0: not at all). */
int es_op_tunnel_rotate(const struct es_op_ctx *ctx, const char *name, long long grace,
                        const char *const *edges, size_t n_edges, struct es_op_token *out,
                        char *why, size_t whylen);
/* Deletes the tunnel named name and its routes (its connectors are cut off
 * when serve reloads). */
int es_op_tunnel_delete(const struct es_op_ctx *ctx, const char *name, char *why, size_t whylen);

/* ---- access policies, client CAs, client certificates (es_op_access.c) ---- */

#define ES_OP_MAX_LIST 64 /* CAs, subjects, fingerprints of a policy, each */

struct es_op_policy {
    const char *pattern; /* a hostname or *.suffix (lower-cased) */
    const char *const *cas;
    size_t n_cas;                /* 0: the edge's own access CA */
    const char *const *subjects; /* extended regexes (at most 1024 bytes each) */
    size_t n_subjects;
    const char *const *fingerprints; /* SHA-256, hex, colons allowed */
    size_t n_fingerprints;
    const char *audience; /* NULL: the hostname; else 1-512 bytes */
};
/* Sets (or replaces) the policy for p->pattern: a client certificate is
 * required. NOT_FOUND names the missing CA. */
int es_op_access_set(const struct es_op_ctx *ctx, const struct es_op_policy *p, char *why,
                     size_t whylen);
int es_op_access_delete(const struct es_op_ctx *ctx, const char *pattern, char *why, size_t whylen);
/* A new assertion signing key; its kid into kid. */
int es_op_access_rotate_key(const struct es_op_ctx *ctx, char kid[44], char *why, size_t whylen);

/* A client CA name (1-64 of letters, digits, '-', '_', '.'), its PEM bundle
 * and an optional CRL, both checked (es_access_validate_ca). */
int es_op_client_ca_add(const struct es_op_ctx *ctx, const char *name, const char *pem,
                        const char *crl, char *why, size_t whylen);
/* Replaces the CRL of CA name (checked against its certificates). */
int es_op_client_ca_update(const struct es_op_ctx *ctx, const char *name, const char *crl,
                           char *why, size_t whylen);
/* DENIED when a policy trusts it (why names the policy). */
int es_op_client_ca_delete(const struct es_op_ctx *ctx, const char *name, char *why, size_t whylen);

/* An issued client certificate. */
struct es_op_client_cert {
    char *cert;         /* PEM */
    char *key;          /* PEM, NULL when issued for a CSR */
    unsigned char *p12; /* PKCS#12 of key, cert and CA; NULL with a CSR */
    size_t p12_len;
    char password[257]; /* of the PKCS#12 ("" with a CSR) */
    int password_made;  /* the password was generated here */
    struct px_cert_info info;
    int have_info;
};
void es_op_client_cert_cleanup(struct es_op_client_cert *c);
/* Issues a client certificate from the access CA for name (1-64 of
 * letters, digits, '-', '_', '.'), for days (1-36500): for the key of
 * csr_pem (its signature checked; P-256 only), or for a new P-256 key
 * bundled as PKCS#12 with password (NULL or "": one is made, about 100
 * bits). Records it; EXISTS when a valid certificate has that name. */
int es_op_client_cert_create(const struct es_op_ctx *ctx, const char *name, unsigned long days,
                             const char *csr_pem, const char *password,
                             struct es_op_client_cert *out, char *why, size_t whylen);
/* Revokes the unrevoked certificates whose name or serial is
 * name_or_serial; *n (may be NULL) gets how many (0: already revoked). */
int es_op_client_cert_revoke(const struct es_op_ctx *ctx, const char *name_or_serial, size_t *n,
                             char *why, size_t whylen);

/* Shared checks. */
/* 1 if n is 1-64 letters, digits, '-', '_' or '.'. */
int es_op_valid_name(const char *n);
/* A SHA-256 fingerprint (hex, any case, colons allowed) as 64 lower-case
 * hex digits into out. Returns 0 or PX_ERR_INVAL. */
int es_op_fingerprint(const char *in, char out[65]);
/* A hostname pattern lower-cased into out (256 bytes). Returns 0 or
 * PX_ERR_INVAL. */
int es_op_pattern(const char *in, char out[256]);

#endif
