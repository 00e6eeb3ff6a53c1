/* libFuzzer target for es_seal: blobs from the shared database, which
 * anyone with access to it could edit. The first byte picks what the rest
 * is (mod 2):
 *   0: a blob, opened with a fixed key (tests/unit/edge-sim/test_es_seal.c's
 *      key 01..20, id 20a36ef0d5e9fcec) and aad "server-ca";
 *   1: "aad\0plain" (no NUL: all plain, aad ""): sealed here, opened again,
 *      then opened with another aad, and with one character of the blob
 *      changed (which one and to what, from the input).
 * Properties: no crash/leak/undefined behaviour; a result is one es_unseal
 * documents and comes with a plaintext exactly when it is 0; a blob that
 * opens names the fixed key and re-seals to a blob that opens to the same
 * plaintext; what is sealed here opens to itself, and not under another aad
 * or with any character changed. */
#include "es_seal.h"
#include "fuzz_util.h"
#include "px_err.h"

#include <string.h>

static struct es_seal_key *fixed_key(void)
{
    static struct es_seal_key key;
    static int ready;
    if (!ready) {
        uint8_t k[ES_SEAL_KEY_LEN];
        for (int i = 0; i < ES_SEAL_KEY_LEN; i++)
            k[i] = (uint8_t)(i + 1);
        if (es_seal_key_set(&key, k) != 0 || strcmp(key.id, "20a36ef0d5e9fcec") != 0)
            FAIL();
        ready = 1;
    }
    return &key;
}

static WC_RNG *rng(void)
{
    static WC_RNG r;
    static int ready;
    if (!ready) {
        if (wc_InitRng(&r) != 0)
            FAIL();
        ready = 1;
    }
    return &r;
}

/* es_unseal with its contract checked; returns its result. */
static int open_checked(const char *aad, const char *sealed, char **plain)
{
    *plain = (char *)"untouched";
    int rc = es_unseal(fixed_key(), aad, sealed, plain);
    switch (rc) {
    case 0:
        if (!*plain)
            FAIL();
        break;
    case PX_ERR_INVAL:
    case PX_ERR_VERSION:
    case PX_ERR_DENIED:
    case PX_ERR_CRYPTO:
    case PX_ERR_TOO_LARGE:
        if (*plain)
            FAIL();
        break;
    default:
        FAIL();
    }
    char why[256];
    es_seal_why(rc, fixed_key(), sealed, why, sizeof(why));
    char id[ES_SEAL_ID_LEN + 1];
    /* Any blob es_unseal read as v1 names a key. */
    if ((rc == 0 || rc == PX_ERR_DENIED || rc == PX_ERR_CRYPTO) &&
        es_seal_key_id_of(sealed, id) != 0)
        FAIL();
    if (rc == 0 && strcmp(id, fixed_key()->id) != 0)
        FAIL();
    return rc;
}

static void blob(const char *s)
{
    char *p;
    if (open_checked("server-ca", s, &p) != 0)
        return;
    char *again = NULL, *p2;
    if (es_seal(fixed_key(), rng(), "server-ca", p, &again) != 0)
        FAIL();
    if (open_checked("server-ca", again, &p2) != 0 || strcmp(p, p2) != 0)
        FAIL();
    free(p2);
    free(again);
    free(p);
}

static void seal_then_edit(const char *aad, const char *plain, uint64_t h)
{
    char *s = NULL, *p;
    int rc = es_seal(fixed_key(), rng(), aad, plain, &s);
    if (rc == PX_ERR_TOO_LARGE)
        return;
    if (rc != 0 || open_checked(aad, s, &p) != 0 || strcmp(p, plain) != 0)
        FAIL();
    free(p);
    size_t al = strlen(aad);
    char *other = malloc(al + 2);
    if (!other)
        FAIL();
    memcpy(other, aad, al);
    memcpy(other + al, "x", 2);
    if (open_checked(other, s, &p) != PX_ERR_CRYPTO)
        FAIL();
    free(other);
    size_t n = strlen(s), at = (size_t)(h % n);
    char c = (char)(s[at] ^ (uint8_t)(1 + (h >> 32) % 127));
    if (c != '\0') {
        s[at] = c;
        if (open_checked(aad, s, &p) == 0)
            FAIL();
    }
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* An exact-size NUL-terminated copy: ASan sees any read past it. */
    char *s = malloc(size);
    if (!s)
        return 0;
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0';
    if (data[0] % 2 == 0) {
        blob(s);
    } else {
        size_t al = strnlen(s, size - 1);
        const char *aad = al < size - 1 ? s : "";
        const char *plain = al < size - 1 ? s + al + 1 : s;
        seal_then_edit(aad, plain, fz_hash(data, size));
    }
    free(s);
    return 0;
}
