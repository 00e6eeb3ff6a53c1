/* es_seal: secrets (the CAs' PEM private keys) sealed with AES-256-GCM under
 * a key the operator keeps in a file (--ca-key-file), so that what the
 * shared database holds is never a clear key.
 *
 * The key file holds exactly 64 hex digits (32 random bytes, either case),
 * optionally followed by one line ending ("\n", or "\r\n" from an editor on
 * Windows); nothing else, no spaces. `openssl rand -hex 32 > F; chmod 600 F`
 * writes one, and so does es_seal_key_create. It must be a regular file owned
 * by this user with no access for group or others (rt_file_read_private).
 *
 * A sealed blob is one printable line:
 *
 *   es-seal-v1:<key id>:<nonce>:<ciphertext and tag>
 *
 * <key id> is the key's 16 lowercase hex digits (struct es_seal_key); the
 * nonce (12 random bytes) and the ciphertext followed by its 16-byte GCM tag
 * are base64url without padding (RFC 4648 section 5), in their one canonical
 * spelling. The authenticated data is "es-seal-v1:<key id>:" followed by the
 * caller's aad (the row the secret belongs to, e.g. the CA's name), so a blob
 * copied into another row, or with its header edited, does not open.
 *
 * Blobs come from a database that anyone with access to it could edit:
 * es_unseal treats them as hostile, bounds every length and hands out either
 * the whole plaintext or nothing. */
#ifndef ES_SEAL_H
#define ES_SEAL_H

#include <stddef.h>
#include <stdint.h>
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/random.h>

#define ES_SEAL_KEY_LEN 32
/* Hex digits in a key id (the first 8 bytes of its hash). */
#define ES_SEAL_ID_LEN 16
/* The longest plaintext es_seal takes (a PEM key is under 4 KiB). */
#define ES_SEAL_PLAIN_MAX (1024 * 1024)
/* The longest aad es_seal and es_unseal take. */
#define ES_SEAL_AAD_MAX 4096

struct es_seal_key {
    uint8_t k[ES_SEAL_KEY_LEN];
    /* Lowercase hex of the first 8 bytes of SHA-256("es-seal key id v1\0" ||
     * k): names the key in blobs and messages without revealing it. */
    char id[ES_SEAL_ID_LEN + 1];
};

/* Reads the key file at path (format above) into *out. Returns 0;
 * PX_ERR_NOT_FOUND when path does not exist; PX_ERR_DENIED when it is open to
 * group or others, not ours, or a symbolic link (why names the fix, e.g. the
 * chmod); PX_ERR_INVAL when its content is not one key ("... must hold 64 hex
 * digits (32 bytes), as `openssl rand -hex 32` or `edge-sim store keygen`
 * writes", or an all-zero key); PX_ERR_IO / PX_ERR_NOMEM with why. why (may
 * be NULL when whylen is 0) is filled on every error and never holds any of
 * the key. On error *out is zeroed. The caller wipes *out with
 * es_seal_key_wipe when done. */
int es_seal_key_load(const char *path, struct es_seal_key *out, char *why, size_t whylen);

/* Draws a new key from rng and writes it to path in the format above (mode
 * 0600, lowercase, one "\n"), never replacing anything there: the file is
 * written in full beside path and then linked to it, and the directory is
 * fsync'd before returning, so a blob sealed with the key never outlives
 * the file. Returns 0 with the key in *out (NULL: not wanted);
 * PX_ERR_EXISTS when path exists (even as a dangling symbolic link);
 * PX_ERR_CRYPTO (rng), PX_ERR_IO, PX_ERR_NOMEM with why. */
int es_seal_key_create(const char *path, WC_RNG *rng, struct es_seal_key *out, char *why,
                       size_t whylen);

/* Sets *out to the key k (ES_SEAL_KEY_LEN bytes, copied) and its id.
 * Returns 0, PX_ERR_INVAL for an all-zero k, or PX_ERR_CRYPTO (hash
 * failure); on error *out is zeroed. For keys that do not come from a file
 * (tests, fuzzing). */
int es_seal_key_set(struct es_seal_key *out, const uint8_t *k);

/* Zeroes *key in a way the compiler keeps. */
void es_seal_key_wipe(struct es_seal_key *key);

/* Seals the NUL-terminated plain under key with a fresh random nonce from
 * rng, binding aad (NUL-terminated; NULL is the same as "") to it. Returns 0
 * with *out a malloc'd blob (the caller frees); PX_ERR_TOO_LARGE when plain
 * is longer than ES_SEAL_PLAIN_MAX or aad than ES_SEAL_AAD_MAX; PX_ERR_NOMEM;
 * PX_ERR_CRYPTO (rng or AES failure). On error *out is NULL. Two seals of
 * the same plain differ. */
int es_seal(const struct es_seal_key *key, WC_RNG *rng, const char *aad, const char *plain,
            char **out);

/* Opens sealed (NUL-terminated, hostile) with key and aad (NULL is ""). Returns
 * 0 with *plain malloc'd and NUL-terminated (the caller wipes and frees it);
 * PX_ERR_INVAL when sealed is not a v1 blob (a field missing, bad base64url,
 * a nonce not 12 bytes, no room for the tag, longer than any es_seal writes,
 * or a plaintext holding a NUL byte); PX_ERR_VERSION for
 * "es-seal-v<N>:" with N other than 1; PX_ERR_DENIED when the blob is well
 * formed but names another key id (es_seal_key_id_of reads it); PX_ERR_CRYPTO
 * when authentication fails (ciphertext, nonce, tag or header edited, or
 * another aad) or AES fails; PX_ERR_TOO_LARGE for an aad over
 * ES_SEAL_AAD_MAX; PX_ERR_NOMEM. On error *plain is NULL and no clear byte
 * is left in freed memory. */
int es_unseal(const struct es_seal_key *key, const char *aad, const char *sealed, char **plain);

/* Copies the key id named by sealed ("es-seal-v1:<16 lowercase hex>:...";
 * the rest is not checked) into id. Returns 0, or PX_ERR_INVAL with id set
 * to "". */
int es_seal_key_id_of(const char *sealed, char id[ES_SEAL_ID_LEN + 1]);

/* Writes into why a message for rc, the result of es_unseal(key, aad,
 * sealed, ...), for an operator: for PX_ERR_DENIED "sealed with key <id>,
 * but the key file holds key <id>"; for PX_ERR_CRYPTO that the blob was
 * edited or belongs to another row; and so on. Never includes key material
 * or blob contents beyond the key id. */
void es_seal_why(int rc, const struct es_seal_key *key, const char *sealed, char *why,
                 size_t whylen);

#endif
