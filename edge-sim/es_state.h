/* es_state: opening what an edge keeps, for `serve` and every command
 * alike: the store (es_store) and the keys (es_certs), from a data dir
 * (SQLite, key files) or from a PostgreSQL store several edges share (its
 * CAs sealed there with the operators' key file, es_seal). */
#ifndef ES_STATE_H
#define ES_STATE_H

#include "es_certs.h"
#include "es_store.h"

#include <stddef.h>

struct es_seal_key;

/* Reads the key that seals a PostgreSQL store's private keys from path
 * (NULL: none given, which is refused saying how to make one). Returns 0
 * with *key (wipe it with es_seal_key_wipe), or < 0 with why. */
int es_state_seal_key(const char *path, struct es_seal_key *key, char *why, size_t whylen);
/* Opens st and certs for spec (es_store_open's: a data dir or a postgres://
 * address). A data dir is set up under its lock (es_store_dir_lock) and its
 * key files made when missing. A PostgreSQL store needs ca_key_file: st
 * then seals with it (es_store_set_seal) and certs come from it
 * (es_certs_init_shared). rng is borrowed, as for es_certs_init.
 * server_name is the tunnel port's TLS name. Returns 0, or < 0 with why
 * and nothing left open. */
int es_state_open(struct es_store *st, struct es_certs *certs, WC_RNG *rng, const char *spec,
                  const char *ca_key_file, const char *server_name, char *why, size_t whylen);
/* Makes dir (0700) if missing and checks only this user may use it.
 * Returns 0, or < 0 with why. */
int es_state_private_dir(const char *dir, char *why, size_t whylen);

#endif
