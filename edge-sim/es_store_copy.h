/* es_store_copy: a store's shared state as one JSON document, to move an
 * edge from its SQLite data dir into a PostgreSQL store (`edge-sim store
 * export` / `import`). The document:
 *   {"format": "edge-sim-store", "version": 1,
 *    "tables": {"tunnels": [[col, ...], ...], "routes": ..., "kv": ...,
 *               "client_certs": ..., "client_cas": ..., "access_policies": ...,
 *               "signing_keys": ...},
 *    "cas": {"server-ca": {"cert": PEM, "key": PEM}, ...}}
 * Rows list their columns in the order es_store_copy_columns gives; blobs
 * (secret hashes) are lower-case hex, absent values null. The "cas" hold
 * clear keys: the file is as secret as the data dir it came from. The live
 * view (which edge holds which connection now) is not copied: it is rebuilt
 * by the edges within a heartbeat. */
#ifndef ES_STORE_COPY_H
#define ES_STORE_COPY_H

#include "es_store.h"

#include <jansson.h>
#include <stddef.h>

struct es_certs;
struct es_seal_key;
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/random.h>

/* The document of s's tables and c's CAs. Returns 0 with *out (json_decref
 * it; it holds clear keys), or < 0 (the store's error, PX_ERR_NOMEM). */
int es_store_export(struct es_store *s, const struct es_certs *c, json_t **out);
/* Writes doc into s, a PostgreSQL store that holds no tunnel yet, in one
 * transaction: every table's rows, then the CAs sealed with seal (rng for
 * the nonces), replacing any CA there (a new store's edges may have made
 * their own already: they must restart to use the imported ones). Returns
 * 0 with *n_tunnels, or < 0 with why: PX_ERR_INVAL (not such a document,
 * or s is not PostgreSQL), PX_ERR_EXISTS (s already holds tunnels), the
 * store's error. */
int es_store_import(struct es_store *s, const json_t *doc, const struct es_seal_key *seal,
                    WC_RNG *rng, size_t *n_tunnels, char *why, size_t whylen);

#endif
