#include "es_seal.h"
#include "px_b64.h"
#include "px_err.h"
#include "px_pki.h"
#include "rt_file.h"

#include <wolfssl/wolfcrypt/aes.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PREFIX "es-seal-v1:"
#define PREFIX_LEN (sizeof(PREFIX) - 1)
/* "es-seal-v1:<id>:": also the start of the authenticated data. */
#define HEADER_LEN (PREFIX_LEN + ES_SEAL_ID_LEN + 1)
#define NONCE_LEN 12
#define TAG_LEN 16
/* base64url without padding of n bytes. */
#define B64_LEN(n) (((size_t)(n)*4 + 2) / 3)
#define NONCE_B64_LEN B64_LEN(NONCE_LEN)
/* The longest blob es_seal writes: anything longer is not one. */
#define SEALED_MAX (HEADER_LEN + NONCE_B64_LEN + 1 + B64_LEN(ES_SEAL_PLAIN_MAX + TAG_LEN))
/* Hashed before the key for its id, so the id is no plain hash of it. */
static const char id_label[] = "es-seal key id v1";
/* A key file's content is 64 hex digits and a line end; more is not one. */
#define KEYFILE_MAX 4096
#define KEYFILE_FORMAT                                                                             \
    "must hold 64 hex digits (32 bytes), as `openssl rand -hex 32` or `edge-sim store keygen` "    \
    "writes, and nothing else but one final newline"

static const char hexd[] = "0123456789abcdef";

void es_seal_key_wipe(struct es_seal_key *key)
{
    explicit_bzero(key, sizeof(*key));
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Sets key->id from key->k. Returns 0 or PX_ERR_CRYPTO. */
static int key_set_id(struct es_seal_key *key)
{
    uint8_t in[sizeof(id_label) + ES_SEAL_KEY_LEN], h[WC_SHA256_DIGEST_SIZE];
    memcpy(in, id_label, sizeof(id_label)); /* with its NUL: label and key stay apart */
    memcpy(in + sizeof(id_label), key->k, ES_SEAL_KEY_LEN);
    int rc = wc_Sha256Hash(in, sizeof(in), h) == 0 ? 0 : PX_ERR_CRYPTO;
    explicit_bzero(in, sizeof(in));
    for (size_t i = 0; i < ES_SEAL_ID_LEN / 2; i++) {
        key->id[2 * i] = hexd[h[i] >> 4];
        key->id[2 * i + 1] = hexd[h[i] & 15];
    }
    key->id[ES_SEAL_ID_LEN] = '\0';
    return rc;
}

int es_seal_key_set(struct es_seal_key *out, const uint8_t *k)
{
    uint8_t any = 0;
    for (size_t i = 0; i < ES_SEAL_KEY_LEN; i++)
        any |= k[i];
    memcpy(out->k, k, ES_SEAL_KEY_LEN);
    int rc = !any ? PX_ERR_INVAL : key_set_id(out);
    if (rc < 0)
        es_seal_key_wipe(out);
    return rc;
}

/* The key in a key file's content s (len bytes). Returns 0, or
 * PX_ERR_INVAL with why saying what is wrong without quoting any of it. */
static int parse_key(const char *path, const char *s, size_t len, struct es_seal_key *out,
                     char *why, size_t whylen)
{
    if (len > 0 && s[len - 1] == '\n') {
        len--;
        if (len > 0 && s[len - 1] == '\r')
            len--;
    }
    if (len != 2 * ES_SEAL_KEY_LEN) {
        snprintf(why, whylen, "key file %s " KEYFILE_FORMAT "; it holds %zu characters", path, len);
        return PX_ERR_INVAL;
    }
    uint8_t any = 0;
    for (size_t i = 0; i < ES_SEAL_KEY_LEN; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            snprintf(why, whylen,
                     "key file %s " KEYFILE_FORMAT "; character %zu is not a hex digit", path,
                     2 * i + (hi < 0 ? 1 : 2));
            return PX_ERR_INVAL;
        }
        out->k[i] = (uint8_t)(hi << 4 | lo);
        any |= out->k[i];
    }
    if (!any) {
        snprintf(why, whylen,
                 "key file %s holds an all-zero key; write a random one (openssl rand -hex 32)",
                 path);
        return PX_ERR_INVAL;
    }
    return 0;
}

int es_seal_key_load(const char *path, struct es_seal_key *out, char *why, size_t whylen)
{
    char *s = NULL;
    size_t len = 0;
    es_seal_key_wipe(out);
    int rc = rt_file_read_private(path, KEYFILE_MAX, &s, &len, why, whylen);
    if (rc == PX_ERR_NOT_FOUND) {
        snprintf(why, whylen, "key file %s does not exist", path);
        return rc;
    }
    if (rc == PX_ERR_TOO_LARGE) {
        snprintf(why, whylen, "key file %s " KEYFILE_FORMAT "; it holds more than %d bytes", path,
                 KEYFILE_MAX);
        return PX_ERR_INVAL;
    }
    if (rc < 0)
        return rc;
    rc = parse_key(path, s, len, out, why, whylen);
    if (rc == 0 && key_set_id(out) < 0) {
        snprintf(why, whylen, "cannot hash the key of %s", path);
        rc = PX_ERR_CRYPTO;
    }
    explicit_bzero(s, len);
    free(s);
    if (rc < 0)
        es_seal_key_wipe(out);
    return rc;
}

int es_seal_key_create(const char *path, WC_RNG *rng, struct es_seal_key *out, char *why,
                       size_t whylen)
{
    struct es_seal_key key;
    uint8_t name[8];
    char line[2 * ES_SEAL_KEY_LEN + 2];
    size_t pl = strlen(path);
    char *tmp = NULL;
    int rc = PX_ERR_CRYPTO;
    if (out)
        es_seal_key_wipe(out);
    memset(&key, 0, sizeof(key));
    if (px_pki_random(rng, key.k, sizeof(key.k)) < 0 ||
        px_pki_random(rng, name, sizeof(name)) < 0) {
        snprintf(why, whylen, "cannot draw random bytes for key file %s", path);
        goto out;
    }
    if (key_set_id(&key) < 0) {
        snprintf(why, whylen, "cannot hash the new key");
        goto out;
    }
    for (size_t i = 0; i < ES_SEAL_KEY_LEN; i++) {
        line[2 * i] = hexd[key.k[i] >> 4];
        line[2 * i + 1] = hexd[key.k[i] & 15];
    }
    line[2 * ES_SEAL_KEY_LEN] = '\n';
    line[2 * ES_SEAL_KEY_LEN + 1] = '\0';
    /* Written whole under "<path>.new.<16 hex>" and then linked to path:
     * link never replaces a file, and no reader sees half a key. */
    rc = PX_ERR_NOMEM;
    tmp = malloc(pl + 5 + 2 * sizeof(name) + 1);
    if (!tmp) {
        snprintf(why, whylen, "out of memory");
        goto out;
    }
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".new.", 5);
    for (size_t i = 0; i < sizeof(name); i++) {
        tmp[pl + 5 + 2 * i] = hexd[name[i] >> 4];
        tmp[pl + 5 + 2 * i + 1] = hexd[name[i] & 15];
    }
    tmp[pl + 5 + 2 * sizeof(name)] = '\0';
    rc = rt_file_write_private(tmp, line);
    if (rc < 0) {
        snprintf(why, whylen, "cannot write key file %s: %s", tmp,
                 rc == PX_ERR_NOMEM ? "out of memory" : strerror(errno));
        goto out;
    }
    if (link(tmp, path) < 0) {
        int e = errno;
        rc = e == EEXIST ? PX_ERR_EXISTS : PX_ERR_IO;
        if (e == EEXIST)
            snprintf(why, whylen,
                     "key file %s exists; not replacing it (what it sealed would no longer "
                     "open)",
                     path);
        else
            snprintf(why, whylen, "cannot create key file %s: %s", path, strerror(e));
        unlink(tmp);
        goto out;
    }
    unlink(tmp);
    if (rt_file_fsync_parent(path) < 0) {
        rc = PX_ERR_IO;
        snprintf(why, whylen, "cannot sync the directory of key file %s: %s", path,
                 strerror(errno));
        goto out;
    }
    rc = 0;
    if (out)
        *out = key;
out:
    explicit_bzero(&key, sizeof(key));
    explicit_bzero(line, sizeof(line));
    free(tmp);
    return rc;
}

static int b64url_val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* Decodes s (len characters) when it is the one base64url-without-padding
 * spelling of some bytes: no other alphabet, no padding, no stray low bits
 * in the last character (so an edit that decodes the same is refused too).
 * Returns 0 with *out malloc'd (at least one byte) and *outlen;
 * PX_ERR_INVAL or PX_ERR_NOMEM. */
static int b64url_decode(const char *s, size_t len, uint8_t **out, size_t *outlen)
{
    *out = NULL;
    if (len % 4 == 1)
        return PX_ERR_INVAL;
    for (size_t i = 0; i < len; i++)
        if (b64url_val(s[i]) < 0)
            return PX_ERR_INVAL;
    if (len % 4 == 2 && (b64url_val(s[len - 1]) & 15))
        return PX_ERR_INVAL;
    if (len % 4 == 3 && (b64url_val(s[len - 1]) & 3))
        return PX_ERR_INVAL;
    return px_b64_decode(s, len, out, outlen);
}

static int is_lower_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* Whether s starts "es-seal-v<digits>:" with a version other than 1 (a
 * short or broken v1 blob is malformed, not of another version). */
static int other_version(const char *s)
{
    if (strncmp(s, "es-seal-v", 9) != 0)
        return 0;
    size_t i = 9;
    while (s[i] >= '0' && s[i] <= '9')
        i++;
    return i > 9 && s[i] == ':' && !(i == 10 && s[9] == '1');
}

/* Checks the v1 header of s (n bytes): the prefix, 16 lowercase hex
 * digits, a colon. Returns 0, PX_ERR_VERSION or PX_ERR_INVAL. */
static int check_header(const char *s, size_t n)
{
    if (n < HEADER_LEN || memcmp(s, PREFIX, PREFIX_LEN) != 0)
        return other_version(s) ? PX_ERR_VERSION : PX_ERR_INVAL;
    for (size_t i = 0; i < ES_SEAL_ID_LEN; i++)
        if (!is_lower_hex(s[PREFIX_LEN + i]))
            return PX_ERR_INVAL;
    return s[HEADER_LEN - 1] == ':' ? 0 : PX_ERR_INVAL;
}

int es_seal_key_id_of(const char *sealed, char id[ES_SEAL_ID_LEN + 1])
{
    id[0] = '\0';
    if (!sealed || check_header(sealed, strnlen(sealed, HEADER_LEN)) != 0)
        return PX_ERR_INVAL;
    memcpy(id, sealed + PREFIX_LEN, ES_SEAL_ID_LEN);
    id[ES_SEAL_ID_LEN] = '\0';
    return 0;
}

/* The authenticated data: header (HEADER_LEN bytes) then aad. Returns a
 * malloc'd buffer of HEADER_LEN + aadlen bytes, or NULL. */
static uint8_t *full_aad(const char *header, const char *aad, size_t aadlen)
{
    uint8_t *a = malloc(HEADER_LEN + aadlen);
    if (!a)
        return NULL;
    memcpy(a, header, HEADER_LEN);
    memcpy(a + HEADER_LEN, aad, aadlen);
    return a;
}

/* Runs AES-256-GCM one way or the other over n bytes (tag after them when
 * sealing, read from there when opening). Returns 0 or PX_ERR_CRYPTO. */
static int gcm(const struct es_seal_key *key, int encrypt, uint8_t *out, const uint8_t *in,
               size_t n, const uint8_t *nonce, uint8_t *tag, const uint8_t *a, size_t alen)
{
    Aes aes;
    int rc = PX_ERR_CRYPTO;
    if (wc_AesInit(&aes, NULL, INVALID_DEVID) != 0)
        return PX_ERR_CRYPTO;
    if (wc_AesGcmSetKey(&aes, key->k, ES_SEAL_KEY_LEN) != 0)
        goto out_free;
    int r = encrypt ? wc_AesGcmEncrypt(&aes, out, in, (word32)n, nonce, NONCE_LEN, tag, TAG_LEN, a,
                                       (word32)alen)
                    : wc_AesGcmDecrypt(&aes, out, in, (word32)n, nonce, NONCE_LEN, tag, TAG_LEN, a,
                                       (word32)alen);
    rc = r == 0 ? 0 : PX_ERR_CRYPTO;
out_free:
    wc_AesFree(&aes);
    explicit_bzero(&aes, sizeof(aes)); /* the key schedule */
    return rc;
}

int es_seal(const struct es_seal_key *key, WC_RNG *rng, const char *aad, const char *plain,
            char **out)
{
    *out = NULL;
    if (!aad)
        aad = "";
    size_t aadlen = strnlen(aad, ES_SEAL_AAD_MAX + 1);
    size_t plen = strnlen(plain, ES_SEAL_PLAIN_MAX + 1);
    if (aadlen > ES_SEAL_AAD_MAX || plen > ES_SEAL_PLAIN_MAX)
        return PX_ERR_TOO_LARGE;
    char header[HEADER_LEN];
    memcpy(header, PREFIX, PREFIX_LEN);
    memcpy(header + PREFIX_LEN, key->id, ES_SEAL_ID_LEN);
    header[HEADER_LEN - 1] = ':';
    uint8_t nonce[NONCE_LEN];
    uint8_t *a = NULL, *ct = NULL;
    char *nb = NULL, *cb = NULL;
    int rc = PX_ERR_CRYPTO;
    if (px_pki_random(rng, nonce, sizeof(nonce)) < 0)
        goto out;
    rc = PX_ERR_NOMEM;
    if (!(a = full_aad(header, aad, aadlen)) || !(ct = malloc(plen + TAG_LEN)))
        goto out;
    rc = gcm(key, 1, ct, (const uint8_t *)plain, plen, nonce, ct + plen, a, HEADER_LEN + aadlen);
    if (rc < 0)
        goto out;
    rc = PX_ERR_NOMEM;
    if (!(nb = px_b64_encode(nonce, sizeof(nonce), 1)) ||
        !(cb = px_b64_encode(ct, plen + TAG_LEN, 1)))
        goto out;
    size_t nl = strlen(nb), cl = strlen(cb);
    char *s = malloc(HEADER_LEN + nl + 1 + cl + 1);
    if (!s)
        goto out;
    memcpy(s, header, HEADER_LEN);
    memcpy(s + HEADER_LEN, nb, nl);
    s[HEADER_LEN + nl] = ':';
    memcpy(s + HEADER_LEN + nl + 1, cb, cl + 1);
    *out = s;
    rc = 0;
out:
    free(cb);
    free(nb);
    free(ct);
    free(a);
    return rc;
}

int es_unseal(const struct es_seal_key *key, const char *aad, const char *sealed, char **plain)
{
    *plain = NULL;
    if (!aad)
        aad = "";
    size_t aadlen = strnlen(aad, ES_SEAL_AAD_MAX + 1);
    if (aadlen > ES_SEAL_AAD_MAX)
        return PX_ERR_TOO_LARGE;
    if (!sealed)
        return PX_ERR_INVAL;
    size_t n = strnlen(sealed, SEALED_MAX + 1);
    if (n > SEALED_MAX)
        return PX_ERR_INVAL;
    int rc = check_header(sealed, n);
    if (rc < 0)
        return rc;
    const char *ns = sealed + HEADER_LEN;
    const char *colon = memchr(ns, ':', n - HEADER_LEN);
    if (!colon || (size_t)(colon - ns) != NONCE_B64_LEN)
        return PX_ERR_INVAL;
    const char *cs = colon + 1;
    size_t cslen = n - (size_t)(cs - sealed);
    uint8_t *nonce = NULL, *ct = NULL, *a = NULL;
    size_t nlen = 0, ctlen = 0, plen = 0;
    char *p = NULL;
    if ((rc = b64url_decode(ns, NONCE_B64_LEN, &nonce, &nlen)) < 0 ||
        (rc = b64url_decode(cs, cslen, &ct, &ctlen)) < 0)
        goto out;
    rc = PX_ERR_INVAL;
    if (nlen != NONCE_LEN || ctlen < TAG_LEN)
        goto out;
    rc = PX_ERR_DENIED;
    if (memcmp(sealed + PREFIX_LEN, key->id, ES_SEAL_ID_LEN) != 0)
        goto out;
    plen = ctlen - TAG_LEN;
    rc = PX_ERR_NOMEM;
    if (!(a = full_aad(sealed, aad, aadlen)) || !(p = malloc(plen + 1)))
        goto out;
    rc = gcm(key, 0, (uint8_t *)p, ct, plen, nonce, ct + plen, a, HEADER_LEN + aadlen);
    /* Authentic, but not the C string es_seal took: refused whole. */
    if (rc == 0 && memchr(p, '\0', plen))
        rc = PX_ERR_INVAL;
    if (rc < 0)
        goto out;
    p[plen] = '\0';
    *plain = p;
    p = NULL;
out:
    if (p) /* whatever GCM wrote before the tag was found wrong */
        explicit_bzero(p, plen + 1);
    free(p);
    free(a);
    free(ct);
    free(nonce);
    return rc;
}

void es_seal_why(int rc, const struct es_seal_key *key, const char *sealed, char *why,
                 size_t whylen)
{
    char id[ES_SEAL_ID_LEN + 1];
    switch (rc) {
    case 0:
        snprintf(why, whylen, "ok");
        break;
    case PX_ERR_DENIED:
        if (es_seal_key_id_of(sealed, id) < 0)
            snprintf(id, sizeof(id), "?");
        snprintf(why, whylen,
                 "sealed with key %s, but the key file holds key %s; start with the key file "
                 "that sealed it",
                 id, key->id);
        break;
    case PX_ERR_CRYPTO:
        snprintf(why, whylen,
                 "sealed secret does not open with key %s: it was edited, or belongs to another "
                 "row (authentication failed)",
                 key->id);
        break;
    case PX_ERR_INVAL:
        snprintf(why, whylen, "sealed secret is malformed (not an " PREFIX "... blob)");
        break;
    case PX_ERR_VERSION:
        snprintf(why, whylen,
                 "sealed secret is in another format than es-seal-v1, which this edge cannot "
                 "read");
        break;
    case PX_ERR_TOO_LARGE:
        snprintf(why, whylen, "authenticated data longer than %d bytes", ES_SEAL_AAD_MAX);
        break;
    default:
        snprintf(why, whylen, "cannot open sealed secret: %s", px_strerror(rc));
        break;
    }
}
