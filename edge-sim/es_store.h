/* es_store: the edge's state: tunnels, their hostname patterns and the
 * routes connectors registered, plus what es_store_access keeps. Either in
 * SQLite (WAL) in the data dir, for one machine, or in a PostgreSQL
 * database several edges share (a postgres:// store spec, es_sql). Every
 * change is one transaction, so a crash mid-write leaves the previous
 * state. Other processes (the CLI, other edges) may change it while `serve`
 * runs; es_store_changed() tells serve to reload.
 *
 * PostgreSQL's schema is versioned (es_store_migrate, `edge-sim store
 * migrate`): es_store_open refuses a database whose schema is not the one
 * this build knows, saying which command fixes it. SQLite's is created and
 * brought up to date by es_store_open itself, as it always was. */
#ifndef ES_STORE_H
#define ES_STORE_H

#include "es_sql.h"

#include <stddef.h>
#include <stdint.h>

#define ES_MAX_PATTERNS 32

struct es_tunnel_rec {
    char id[33];
    char name[65];
    uint8_t secret_hash[32];         /* SHA-256 of the enrolment secret */
    char *patterns[ES_MAX_PATTERNS]; /* owned */
    size_t n_patterns;
    long long created;
};

struct es_seal_key;
struct WC_RNG;

struct es_store {
    struct es_sql *db; /* es_sql's: through its functions only */
    /* With a PostgreSQL store: the key that seals the private keys written
     * to it (es_store_set_seal), and the RNG its nonces come from. */
    struct es_seal_key *seal;
    struct WC_RNG *seal_rng;
    long long data_version; /* SQLite: the last data_version seen */
    long long change_seq;   /* PostgreSQL: the change counter last seen */
};

/* The channel PostgreSQL triggers notify on every change to shared state. */
#define ES_STORE_CHANNEL "edge_sim_change"
/* The schema version of PostgreSQL stores this build reads and writes. */
#define ES_STORE_PG_SCHEMA 1

/* Serialises setting up a data dir between processes (two serves started
 * at once on a new dir must not both create its CA keys): takes an
 * exclusive lock on dir/init.lock (creating dir, 0700, if missing) and
 * returns its descriptor for es_store_dir_unlock, or -1 (no lock; the
 * caller goes on: the lock only narrows a race). A dir others may use gets
 * no lock file (-1): the set-up after it refuses that dir. */
int es_store_dir_lock(const char *dir);
void es_store_dir_unlock(int fd);
/* Opens the store spec names: a postgres:// URI (es_sql_spec_is_pg), or a
 * data dir whose edge.db it opens (creating it if needed). Returns 0,
 * PX_ERR_INVAL (dir too long for the path, a malformed URI),
 * PX_ERR_UNAVAILABLE (PostgreSQL unreachable), PX_ERR_VERSION (PostgreSQL
 * schema missing, older or newer than ES_STORE_PG_SCHEMA: why names
 * `edge-sim store migrate`) or PX_ERR_DB, with why. */
int es_store_open(struct es_store *s, const char *spec, char *why, size_t whylen);
void es_store_close(struct es_store *s);
/* Seals every private key s writes from now on (the assertion signing
 * keys; the CAs are sealed by es_certs) with a copy of key, nonces from rng
 * (borrowed: used on s's thread, must outlive s), and opens them when read.
 * Returns 0 or PX_ERR_NOMEM. es_store_close wipes the copy. */
int es_store_set_seal(struct es_store *s, const struct es_seal_key *key, struct WC_RNG *rng);
/* 1 if s is a PostgreSQL store. */
int es_store_shared(const struct es_store *s);
/* Returns 1 if another connection committed a change since the last call:
 * SQLite's data_version moved, or PostgreSQL notified ES_STORE_CHANNEL (or
 * the connection came back: what was missed is unknown). On a lost
 * PostgreSQL connection it tries to reconnect (es_sql_reconnect, at most
 * once a second) and returns 0 meanwhile. */
int es_store_changed(struct es_store *s);
/* Reconciliation, the fallback when a notice was missed: 1 if PostgreSQL's
 * change counter moved since the last call (one cheap query), else 0 (and
 * always 0 on SQLite, whose data_version misses nothing). */
int es_store_reconcile(struct es_store *s);
/* Brings the PostgreSQL schema at spec to ES_STORE_PG_SCHEMA, one versioned
 * migration per transaction, under the edges' write lock (two migrating at
 * once apply each step once). *from and *to get the versions before and
 * after. On SQLite it opens (and so updates) the data dir's database and
 * says 0 -> 0. Returns 0, PX_ERR_VERSION (the database is newer than this
 * build), or as es_store_open, with why. */
int es_store_migrate(const char *spec, int *from, int *to, char *why, size_t whylen);

int es_store_kv_get(struct es_store *s, const char *key, char *out, size_t outlen);
int es_store_kv_set(struct es_store *s, const char *key, const char *value);
/* Sets key only if it has no value yet. Returns 0 or PX_ERR_DB. */
int es_store_kv_set_if_absent(struct es_store *s, const char *key, const char *value);

/* Inserts t. Returns 0, PX_ERR_EXISTS (name taken) or PX_ERR_DB. */
int es_store_tunnel_add(struct es_store *s, const struct es_tunnel_rec *t);
/* Looks up by id or by name (either may be NULL). Returns 0 or PX_ERR_NOT_FOUND. */
int es_store_tunnel_get(struct es_store *s, const char *id, const char *name,
                        struct es_tunnel_rec *out);
/* Copies the secret hash of tunnel id into hash. Returns 0, PX_ERR_NOT_FOUND
 * (hash untouched) or PX_ERR_DB. One indexed lookup either way, reading no
 * more than the hash, so a hit costs about what a miss does. */
int es_store_tunnel_secret_hash(struct es_store *s, const char *id, uint8_t hash[32]);

/* What enrolment checks a secret against: the current hash, and after a
 * `tunnel rotate-token` the previous one with the time it stops counting. */
struct es_tunnel_secrets {
    uint8_t current[32];
    uint8_t previous[32];     /* all zeros when there is none (no secret hashes to that) */
    long long previous_until; /* seconds since the epoch; 0 when there is none */
    long long rotated_at;     /* when the token was last rotated; 0 if never */
    /* How many times the token was rotated: the generation of the current
     * secret (0 for the one from `tunnel create`). The previous secret is
     * generation rotations - 1. */
    long long rotations;
};
/* Fills *out for tunnel id. Returns 0, PX_ERR_NOT_FOUND (*out untouched) or
 * PX_ERR_DB. Like es_store_tunnel_secret_hash: one indexed lookup reading
 * only these columns, so a hit costs about what a miss does. */
int es_store_tunnel_secrets(struct es_store *s, const char *id, struct es_tunnel_secrets *out);
/* Whether hash (SHA-256 of a presented secret) is the current secret's (1),
 * the previous one's while now < previous_until (2), or neither (0). Both
 * comparisons are made, in constant time, whatever the outcome. */
int es_store_secret_match(const struct es_tunnel_secrets *s, const uint8_t hash[32], long long now);
/* The token generation an enrolment that es_store_secret_match answered
 * match (1 or 2) proved: the current one, or for the previous secret the one
 * before. It rides in the certificate (es_certs_issue_client) and in every
 * renewal of it, so the line stays marked as begun before the rotation. */
long long es_store_enrol_rotation(const struct es_tunnel_secrets *s, int match);
/* The generation of a certificate issued before generations existed (its
 * subject has only "enrolled <time>"): the current one if it was enrolled
 * after the last rotation's second, else the previous one. Whole seconds,
 * as those certificates were judged before; a renewal then carries the
 * generation, so this guess is made once per line. */
long long es_store_legacy_rotation(const struct es_tunnel_secrets *s, long long enrolled_at);
/* 1 if a certificate line begun with token generation rotation may be
 * renewed at now: it is the current generation, or the previous one while
 * that token still enrols (now < previous_until). Else 0: its token was
 * replaced, and the line ends with the certificate it has. */
int es_store_line_renewable(const struct es_tunnel_secrets *s, long long rotation, long long now);
/* Rotates the secret of the tunnel named (or with id) name_or_id: new_hash
 * becomes current (generation rotations + 1), the current one previous,
 * accepted until prev_until (seconds since the epoch; <= now means not at
 * all). One statement, so a concurrent enrolment sees either the old pair
 * or the new. Fills *id_out (may be NULL) with the tunnel's id and *name_out
 * (may be NULL) with its name. Returns 0, PX_ERR_NOT_FOUND or PX_ERR_DB. */
int es_store_tunnel_rotate(struct es_store *s, const char *name_or_id, const uint8_t new_hash[32],
                           long long prev_until, char id_out[33], char name_out[65]);
/* Deletes a tunnel and its routes. Returns 0 or PX_ERR_NOT_FOUND. */
int es_store_tunnel_delete(struct es_store *s, const char *name);
/* Lists all tunnels; *out is a malloc'd array (free with es_store_tunnels_free). */
int es_store_tunnel_list(struct es_store *s, struct es_tunnel_rec **out, size_t *n);
void es_store_tunnels_free(struct es_tunnel_rec *t, size_t n);
void es_tunnel_rec_cleanup(struct es_tunnel_rec *t);

/* The claim that stands in the way of a new one. */
struct es_route_conflict {
    char hostname[256]; /* the pattern held: the same name, or one overlapping it */
    char tunnel_id[33];
    char tunnel_name[65];
};

/* Claims hostname (a valid pattern, see px_host_pattern_valid) for tunnel_id,
 * unless another tunnel holds the same name or an overlapping pattern
 * (px_host_overlap: an exact name under its wildcard, or a wildcard over its
 * name or narrower wildcard). A tunnel's own claims may overlap. The check
 * and the insert are one IMMEDIATE transaction, so of two processes sharing
 * the database (two `serve`s, serve and a CLI) only one can win a conflict.
 * Returns 0 (claimed, or already ours), PX_ERR_EXISTS with *conflict filled
 * (conflict may be NULL), PX_ERR_NOT_FOUND when tunnel_id is not (or no
 * longer) in the store, or PX_ERR_DB. */
int es_store_route_claim(struct es_store *s, const char *hostname, const char *tunnel_id,
                         struct es_route_conflict *conflict);
int es_store_route_release(struct es_store *s, const char *hostname, const char *tunnel_id);
/* Calls cb for every route. */
int es_store_route_each(struct es_store *s,
                        void (*cb)(const char *hostname, const char *tunnel_id, void *arg),
                        void *arg);

/* ---- the edge's own CAs, in a PostgreSQL store (es_certs) ---- */

/* A CA as stored: its certificate in clear, its key sealed (es_seal) by the
 * key whose id is key_id. Strings are malloc'd and owned by the record. */
struct es_ca_rec {
    char *cert_pem; /* NULL for a bare key (the browser leaf key) */
    char *key_sealed;
    char *key_id;
};
void es_ca_rec_cleanup(struct es_ca_rec *r);
/* Reads CA name. Returns 0, PX_ERR_NOT_FOUND, or < 0 (PX_ERR_UNAVAILABLE,
 * PX_ERR_DB, PX_ERR_NOMEM). */
int es_store_ca_get(struct es_store *s, const char *name, struct es_ca_rec *out);
/* Stores CA name (cert_pem may be NULL) unless one is there already (two edges making their CAs
 * at once keep the first): returns 0 either way; then es_store_ca_get says
 * which one counts. Returns < 0 on failure. */
int es_store_ca_put_if_absent(struct es_store *s, const char *name, const char *cert_pem,
                              const char *key_sealed, const char *key_id);
/* Stores CA name, replacing one that is there (`store import`). */
int es_store_ca_set(struct es_store *s, const char *name, const char *cert_pem,
                    const char *key_sealed, const char *key_id);
/* Lists the names of the stored CAs (malloc'd array of malloc'd strings;
 * free each and the array). */
int es_store_ca_names(struct es_store *s, char ***names, size_t *n);

#endif
