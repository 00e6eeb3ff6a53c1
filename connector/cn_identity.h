/* cn_identity: the connector's key and certificate in its state directory.
 * The private key is generated here and never leaves the machine. */
#ifndef CN_IDENTITY_H
#define CN_IDENTITY_H

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/random.h>

#include <stddef.h>

struct cn_identity {
    char dir[600];  /* <state_dir>/<tunnel_id> */
    char *key_pem;  /* owned */
    char *cert_pem; /* owned; NULL until enrolled */
};

/* Loads or creates the key under state_dir/tunnel_id (dirs 0700, files 0600)
 * and loads the certificate if present. A new key is drawn from rng (the
 * loop's). Refuses (PX_ERR_DENIED, why naming the chmod that fixes it) a
 * state directory or key file that is not this user's alone. Returns 0, or
 * < 0 with why filled. */
int cn_identity_load(WC_RNG *rng, struct cn_identity *id, const char *state_dir,
                     const char *tunnel_id, char *why, size_t whylen);
/* Stores cert_pem (copied) as the current certificate. Returns 0 or < 0. */
int cn_identity_save_cert(struct cn_identity *id, const char *cert_pem);
/* Forgets the certificate (it was rejected); the next connect re-enrols. */
void cn_identity_drop_cert(struct cn_identity *id);
void cn_identity_cleanup(struct cn_identity *id);

#endif
