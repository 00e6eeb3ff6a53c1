/* es_seal: the CA keys' seal (AES-256-GCM under the operator's key file):
 * round trips, every kind of edited or malformed blob, and the key file's
 * format and permissions. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "es_seal.h"
#include "px_b64.h"
#include "px_err.h"
#include "test_rng.h"

#include <wolfssl/wolfcrypt/aes.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* bytes 01..20 hex; its id computed apart from the code under test:
 * python3: hashlib.sha256(b'es-seal key id v1\0' + bytes(range(1, 33))) */
#define KEY1_HEX "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20"
#define KEY1_ID "20a36ef0d5e9fcec"
#define AAD "server-ca"

struct fx {
    char dir[64];
    char path[128]; /* dir/ca.key, not created */
    struct es_seal_key k1, k2;
};

static void key_bytes(uint8_t k[ES_SEAL_KEY_LEN], uint8_t first)
{
    for (int i = 0; i < ES_SEAL_KEY_LEN; i++)
        k[i] = (uint8_t)(first + i);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/es-seal-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/ca.key", f->dir);
    uint8_t k[ES_SEAL_KEY_LEN];
    key_bytes(k, 1);
    if (es_seal_key_set(&f->k1, k) != 0)
        return -1;
    key_bytes(k, 101);
    if (es_seal_key_set(&f->k2, k) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    unlink(f->path);
    char p[160];
    snprintf(p, sizeof(p), "%s/other", f->dir);
    unlink(p);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void write_file(const char *path, const char *data, size_t n, mode_t mode)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static char *seal(const struct es_seal_key *k, const char *aad, const char *plain)
{
    char *s = NULL;
    assert_int_equal(es_seal(k, test_rng(), aad, plain, &s), 0);
    assert_non_null(s);
    return s;
}

/* es_unseal's result for s, checking the "nothing on error" contract. */
static int unseal_rc(const struct es_seal_key *k, const char *aad, const char *s)
{
    char *p = (char *)"untouched";
    int rc = es_unseal(k, aad, s, &p);
    if (rc == 0) {
        assert_non_null(p);
        free(p);
    } else {
        assert_null(p);
    }
    return rc;
}

/* A 4 KiB string shaped like a PEM key. */
static char *pem_like(void)
{
    const size_t n = 4096;
    char *s = malloc(n + 1);
    assert_non_null(s);
    const char *head = "-----BEGIN EC PRIVATE KEY-----\n";
    const char *tail = "-----END EC PRIVATE KEY-----\n";
    size_t hl = strlen(head), tl = strlen(tail);
    memcpy(s, head, hl);
    for (size_t i = hl; i < n - tl; i++)
        s[i] = (i - hl) % 65 == 64
                   ? '\n'
                   : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz+/"[i % 54];
    memcpy(s + n - tl, tail, tl);
    s[n] = '\0';
    return s;
}

static void test_round_trip(void **state)
{
    struct fx *f = *state;
    char *big = pem_like();
    const char *plains[] = {"", "x", big};
    for (size_t i = 0; i < sizeof(plains) / sizeof(plains[0]); i++) {
        char *s = seal(&f->k1, AAD, plains[i]);
        assert_true(strncmp(s, "es-seal-v1:" KEY1_ID ":", 28) == 0);
        for (const char *c = s; *c; c++)
            assert_true(*c > 0x20 && *c < 0x7f); /* one printable line */
        char *p = NULL;
        assert_int_equal(es_unseal(&f->k1, AAD, s, &p), 0);
        assert_string_equal(p, plains[i]);
        free(p);
        free(s);
    }
    free(big);
}

/* NULL aad is "", for sealing and opening alike. */
static void test_null_aad_is_empty(void **state)
{
    struct fx *f = *state;
    char *s = seal(&f->k1, NULL, "secret");
    char *p = NULL;
    assert_int_equal(es_unseal(&f->k1, "", s, &p), 0);
    assert_string_equal(p, "secret");
    free(p);
    assert_int_equal(unseal_rc(&f->k1, "x", s), PX_ERR_CRYPTO);
    free(s);
}

static void test_fresh_nonce(void **state)
{
    struct fx *f = *state;
    char *a = seal(&f->k1, AAD, "same secret");
    char *b = seal(&f->k1, AAD, "same secret");
    assert_string_not_equal(a, b);
    /* the nonces differ, not only the ciphertexts */
    assert_true(memcmp(a + 28, b + 28, 16) != 0);
    assert_int_equal(unseal_rc(&f->k1, AAD, a), 0);
    assert_int_equal(unseal_rc(&f->k1, AAD, b), 0);
    free(a);
    free(b);
}

static void test_wrong_aad(void **state)
{
    struct fx *f = *state;
    char *s = seal(&f->k1, AAD, "secret");
    assert_int_equal(unseal_rc(&f->k1, "client-ca", s), PX_ERR_CRYPTO);
    assert_int_equal(unseal_rc(&f->k1, "server-c", s), PX_ERR_CRYPTO);
    assert_int_equal(unseal_rc(&f->k1, "server-ca ", s), PX_ERR_CRYPTO);
    assert_int_equal(unseal_rc(&f->k1, "", s), PX_ERR_CRYPTO);
    char why[256];
    es_seal_why(PX_ERR_CRYPTO, &f->k1, s, why, sizeof(why));
    assert_non_null(strstr(why, "another row"));
    free(s);
}

/* s with its nonce (field 0) or ciphertext+tag (field 1) decoded, byte i
 * xored with 0x01, encoded again: still well formed. */
static char *flip(const char *s, int field, size_t i)
{
    const char *nonce = s + 28, *colon = strchr(nonce, ':');
    assert_non_null(colon);
    const char *start = field == 0 ? nonce : colon + 1;
    size_t len = field == 0 ? (size_t)(colon - nonce) : strlen(colon + 1);
    uint8_t *raw;
    size_t rn;
    assert_int_equal(px_b64_decode(start, len, &raw, &rn), 0);
    if (i >= rn) {
        free(raw);
        return NULL;
    }
    raw[i] ^= 1;
    char *enc = px_b64_encode(raw, rn, 1);
    assert_non_null(enc);
    size_t pre = (size_t)(start - s), el = strlen(enc), post = strlen(start + len);
    char *out = malloc(pre + el + post + 1);
    assert_non_null(out);
    memcpy(out, s, pre);
    memcpy(out + pre, enc, el);
    memcpy(out + pre + el, start + len, post + 1);
    free(enc);
    free(raw);
    return out;
}

/* Every byte of the nonce, the ciphertext and the tag is authenticated. */
static void test_flipped_byte(void **state)
{
    struct fx *f = *state;
    char *s = seal(&f->k1, AAD, "-----BEGIN EC PRIVATE KEY-----"); /* 30 + 16 tag bytes */
    int n = 0;
    for (int field = 0; field < 2; field++) {
        for (size_t i = 0;; i++) {
            char *t = flip(s, field, i);
            if (!t)
                break;
            assert_int_equal(unseal_rc(&f->k1, AAD, t), PX_ERR_CRYPTO);
            free(t);
            n++;
        }
    }
    assert_int_equal(n, 12 + 30 + 16);
    free(s);
}

/* Another key's blob: DENIED, and the message names both ids; a header
 * edited to name this key instead does not open either. */
static void test_other_key(void **state)
{
    struct fx *f = *state;
    char *s = seal(&f->k2, AAD, "secret");
    assert_int_equal(unseal_rc(&f->k1, AAD, s), PX_ERR_DENIED);
    char id[ES_SEAL_ID_LEN + 1];
    assert_int_equal(es_seal_key_id_of(s, id), 0);
    assert_string_equal(id, f->k2.id);
    assert_string_not_equal(f->k1.id, f->k2.id);
    char why[256];
    es_seal_why(PX_ERR_DENIED, &f->k1, s, why, sizeof(why));
    assert_non_null(strstr(why, f->k2.id));
    assert_non_null(strstr(why, f->k1.id));
    memcpy(s + 11, f->k1.id, ES_SEAL_ID_LEN);
    assert_int_equal(unseal_rc(&f->k1, AAD, s), PX_ERR_CRYPTO);
    free(s);
}

/* The id derivation is pinned: changed, every stored blob would be
 * refused as another key's. */
static void test_key_id_pinned(void **state)
{
    struct fx *f = *state;
    assert_string_equal(f->k1.id, KEY1_ID);
    uint8_t zero[ES_SEAL_KEY_LEN] = {0};
    struct es_seal_key k;
    assert_int_equal(es_seal_key_set(&k, zero), PX_ERR_INVAL);
}

/* The blob is what the header says: decrypting it by hand with wolfCrypt
 * (the nonce, the tag after the ciphertext, "es-seal-v1:<id>:" + aad as
 * the authenticated data) gives the plaintext. */
static void test_format_by_hand(void **state)
{
    struct fx *f = *state;
    char *s = seal(&f->k1, AAD, "hello");
    uint8_t *nonce, *ct;
    size_t nn, cn;
    assert_int_equal(px_b64_decode(s + 28, 16, &nonce, &nn), 0);
    assert_int_equal(s[44], ':');
    assert_int_equal(px_b64_decode(s + 45, strlen(s + 45), &ct, &cn), 0);
    assert_int_equal(nn, 12);
    assert_int_equal(cn, 5 + 16);
    char aad[64];
    snprintf(aad, sizeof(aad), "es-seal-v1:%s:%s", KEY1_ID, AAD);
    Aes aes;
    uint8_t out[5];
    assert_int_equal(wc_AesInit(&aes, NULL, INVALID_DEVID), 0);
    assert_int_equal(wc_AesGcmSetKey(&aes, f->k1.k, 32), 0);
    assert_int_equal(wc_AesGcmDecrypt(&aes, out, ct, 5, nonce, 12, ct + 5, 16, (uint8_t *)aad,
                                      (word32)strlen(aad)),
                     0);
    wc_AesFree(&aes);
    assert_memory_equal(out, "hello", 5);
    free(nonce);
    free(ct);
    free(s);
}

/* A blob written by another implementation (python3-cryptography's AESGCM,
 * key 01..20, nonce 00..0b, aad "server-ca", plaintext "hello") opens: the
 * format is what the header says, and stays readable. */
static void test_known_blob(void **state)
{
    struct fx *f = *state;
    const char *s = "es-seal-v1:20a36ef0d5e9fcec:AAECAwQFBgcICQoL:GVVt-6fjoHdFRbWXMy0odlybcP2c";
    char *p = NULL;
    assert_int_equal(es_unseal(&f->k1, AAD, s, &p), 0);
    assert_string_equal(p, "hello");
    free(p);
    assert_int_equal(unseal_rc(&f->k2, AAD, s), PX_ERR_DENIED);
}

/* Builds a v1 blob by hand around plain (pn bytes, may hold NUL). */
static char *seal_raw(const struct es_seal_key *k, const char *aad, const uint8_t *plain, size_t pn)
{
    uint8_t nonce[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    uint8_t *ct = malloc(pn + 16);
    assert_non_null(ct);
    char a[128];
    snprintf(a, sizeof(a), "es-seal-v1:%s:%s", k->id, aad);
    Aes aes;
    assert_int_equal(wc_AesInit(&aes, NULL, INVALID_DEVID), 0);
    assert_int_equal(wc_AesGcmSetKey(&aes, k->k, 32), 0);
    assert_int_equal(wc_AesGcmEncrypt(&aes, ct, plain, (word32)pn, nonce, 12, ct + pn, 16,
                                      (uint8_t *)a, (word32)strlen(a)),
                     0);
    wc_AesFree(&aes);
    char *nb = px_b64_encode(nonce, 12, 1), *cb = px_b64_encode(ct, pn + 16, 1);
    size_t n = 28 + strlen(nb) + 1 + strlen(cb) + 1;
    char *s = malloc(n);
    assert_non_null(s);
    snprintf(s, n, "es-seal-v1:%s:%s:%s", k->id, nb, cb);
    free(nb);
    free(cb);
    free(ct);
    return s;
}

/* An authentic plaintext holding a NUL is not the string es_seal took: it
 * is refused rather than handed out cut short. */
static void test_plain_with_nul_refused(void **state)
{
    struct fx *f = *state;
    char *ok = seal_raw(&f->k1, AAD, (const uint8_t *)"abc", 3);
    assert_int_equal(unseal_rc(&f->k1, AAD, ok), 0);
    char *bad = seal_raw(&f->k1, AAD, (const uint8_t *)"a\0c", 3);
    assert_int_equal(unseal_rc(&f->k1, AAD, bad), PX_ERR_INVAL);
    free(ok);
    free(bad);
}

/* Every prefix of a valid blob is refused without a crash or a leak. */
static void test_every_prefix(void **state)
{
    struct fx *f = *state;
    char *s = seal(&f->k1, AAD, "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n");
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++) {
        char *t = strndup(s, i);
        assert_non_null(t);
        int rc = unseal_rc(&f->k1, AAD, t);
        if (rc != PX_ERR_INVAL && rc != PX_ERR_CRYPTO)
            fail_msg("prefix of %zu bytes: rc %d", i, rc);
        /* A cut inside the header or the nonce is malformed, not a failed tag. */
        if (i < 45)
            assert_int_equal(rc, PX_ERR_INVAL);
        free(t);
    }
    assert_int_equal(unseal_rc(&f->k1, AAD, s), 0);
    free(s);
}

/* s with the bytes [at, at + cut) replaced by ins. */
static char *splice(const char *s, size_t at, size_t cut, const char *ins)
{
    size_t n = strlen(s), il = strlen(ins);
    char *t = malloc(n - cut + il + 1);
    assert_non_null(t);
    memcpy(t, s, at);
    memcpy(t + at, ins, il);
    memcpy(t + at + il, s + at + cut, n - at - cut + 1);
    return t;
}

static void test_malformed(void **state)
{
    struct fx *f = *state;
    char *s = seal(&f->k1, AAD, "secret"); /* ciphertext+tag: 22 bytes, 30 characters */
    size_t n = strlen(s);
    assert_int_equal(n, 45 + 30);
    const char *const whole[] = {
        "",
        "es-seal-v1",
        "es-seal-v1:",
        "es-seal-v1::::",
        "es-seal-v1:" KEY1_ID,
        "es-seal-v1:" KEY1_ID ":",
        "es-seal-v1:" KEY1_ID "::",
        "es-seal-v1:" KEY1_ID ":AAAAAAAAAAAAAAAA",
        "es-seal-v1:" KEY1_ID ":AAAAAAAAAAAAAAAA:",
        "es-seal-v1:" KEY1_ID ":AAAAAAAAAAAAAAAA:AAAA",                  /* under a tag */
        "es-seal-v1:" KEY1_ID ":AAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAA", /* 15-char nonce */
        "es-seal-v1:" KEY1_ID ":AAAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAA",
        "es-seal-v1:20A36EF0D5E9FCEC:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAA", /* uppercase id */
        "es-seal-v1:20a36ef0d5e9fce:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAA",  /* short id */
        "es-seal-v1:20a36ef0d5e9fcecc:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAA",
        "ES-SEAL-V1:" KEY1_ID ":AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAA",
        "es-seal-v:" KEY1_ID ":AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAA",
        " es-seal-v1:" KEY1_ID ":AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAA",
    };
    for (size_t i = 0; i < sizeof(whole) / sizeof(whole[0]); i++)
        if (unseal_rc(&f->k1, AAD, whole[i]) != PX_ERR_INVAL)
            fail_msg("accepted or misread: \"%s\"", whole[i]);
    /* Edits of the valid blob that keep it decodable by a lax decoder. */
    struct {
        size_t at, cut;
        const char *ins;
    } edits[] = {
        {n, 0, "="},     /* padding */
        {n, 0, "=="},    /* padding */
        {n, 0, ":"},     /* a fifth field */
        {n, 0, ":AAAA"}, /* a fifth field */
        {n, 0, "\n"},    /* a line end */
        {n, 0, " "},     /* a space */
        {n, 0, "A"},     /* one more character: decodes, fails the tag */
        {n - 1, 1, "+"}, /* other alphabet */
        {n - 1, 1, "/"}, /* other alphabet */
        {44, 1, ";"},    /* separator */
        {44, 1, ""},     /* separator gone */
        {28, 1, "+"},    /* nonce, other alphabet */
        {28, 0, ":"},    /* empty nonce */
        {27, 1, ""},     /* header separator gone */
        {45, 0, "\t"},
    };
    for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
        char *t = splice(s, edits[i].at, edits[i].cut, edits[i].ins);
        int rc = unseal_rc(&f->k1, AAD, t);
        if (rc != PX_ERR_INVAL && rc != PX_ERR_CRYPTO)
            fail_msg("edit %zu: rc %d for \"%s\"", i, rc, t);
        free(t);
    }
    /* Non-canonical last character (30 % 4 == 2: 4 low bits unused): a
     * lax decoder reads the same bytes, this one refuses the spelling. */
    {
        char *t = strdup(s);
        char last = t[n - 1];
        t[n - 1] = last == 'A' ? 'B' : last == 'Q' ? 'R' : (char)(last ^ 1);
        assert_int_equal(unseal_rc(&f->k1, AAD, t), PX_ERR_INVAL);
        free(t);
    }
    assert_int_equal(unseal_rc(&f->k1, AAD, NULL), PX_ERR_INVAL);
    assert_int_equal(unseal_rc(&f->k1, AAD, s), 0);
    free(s);
}

static void test_other_version(void **state)
{
    struct fx *f = *state;
    assert_int_equal(unseal_rc(&f->k1, AAD, "es-seal-v2:anything"), PX_ERR_VERSION);
    assert_int_equal(unseal_rc(&f->k1, AAD, "es-seal-v10:" KEY1_ID ":x:y"), PX_ERR_VERSION);
    assert_int_equal(unseal_rc(&f->k1, AAD, "es-seal-vx:"), PX_ERR_INVAL);
    /* A v1 blob cut short is malformed, not of another version (it was
     * PX_ERR_VERSION before the first run of test_every_prefix). */
    assert_int_equal(unseal_rc(&f->k1, AAD, "es-seal-v1:"), PX_ERR_INVAL);
    assert_int_equal(unseal_rc(&f->k1, AAD, "es-seal-v1:" KEY1_ID), PX_ERR_INVAL);
    char id[ES_SEAL_ID_LEN + 1] = "x";
    assert_int_equal(es_seal_key_id_of("es-seal-v2:" KEY1_ID ":", id), PX_ERR_INVAL);
    assert_string_equal(id, "");
    assert_int_equal(es_seal_key_id_of("es-seal-v1:" KEY1_ID ":", id), 0);
    assert_string_equal(id, KEY1_ID);
    assert_int_equal(es_seal_key_id_of("es-seal-v1:" KEY1_ID, id), PX_ERR_INVAL);
    assert_int_equal(es_seal_key_id_of(NULL, id), PX_ERR_INVAL);
}

/* Lengths past what es_seal writes or takes are refused before any work. */
static void test_huge(void **state)
{
    struct fx *f = *state;
    size_t big = 3 * ES_SEAL_PLAIN_MAX;
    char *s = malloc(big + 1);
    assert_non_null(s);
    memcpy(s, "es-seal-v1:" KEY1_ID ":AAAAAAAAAAAAAAAA:", 45);
    memset(s + 45, 'A', big - 45);
    s[big] = '\0';
    assert_int_equal(unseal_rc(&f->k1, AAD, s), PX_ERR_INVAL);
    /* a plaintext over the limit */
    memset(s, 'x', ES_SEAL_PLAIN_MAX + 1);
    s[ES_SEAL_PLAIN_MAX + 1] = '\0';
    char *out = (char *)"untouched";
    assert_int_equal(es_seal(&f->k1, test_rng(), AAD, s, &out), PX_ERR_TOO_LARGE);
    assert_null(out);
    /* exactly at the limit it seals and opens */
    s[ES_SEAL_PLAIN_MAX] = '\0';
    char *sealed = seal(&f->k1, AAD, s);
    char *p = NULL;
    assert_int_equal(es_unseal(&f->k1, AAD, sealed, &p), 0);
    assert_int_equal(strlen(p), ES_SEAL_PLAIN_MAX);
    free(p);
    /* an aad over the limit */
    s[ES_SEAL_AAD_MAX + 1] = '\0';
    assert_int_equal(es_seal(&f->k1, test_rng(), s, "x", &out), PX_ERR_TOO_LARGE);
    assert_int_equal(unseal_rc(&f->k1, s, sealed), PX_ERR_TOO_LARGE);
    free(sealed);
    free(s);
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    char *buf = calloc(1, 256);
    assert_non_null(buf);
    size_t n = fread(buf, 1, 255, fp);
    fclose(fp);
    buf[n] = '\0';
    return buf;
}

static void test_key_create_load(void **state)
{
    struct fx *f = *state;
    struct es_seal_key a, b;
    char why[512] = "";
    assert_int_equal(es_seal_key_create(f->path, test_rng(), &a, why, sizeof(why)), 0);
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    char *text = slurp(f->path);
    assert_int_equal(strlen(text), 65);
    assert_int_equal(text[64], '\n');
    for (int i = 0; i < 64; i++)
        assert_non_null(strchr("0123456789abcdef", text[i]));
    free(text);
    assert_int_equal(es_seal_key_load(f->path, &b, why, sizeof(why)), 0);
    assert_memory_equal(a.k, b.k, 32);
    assert_string_equal(a.id, b.id);
    assert_int_equal(strlen(a.id), 16);
    /* no temporary file is left beside it */
    DIR *d = opendir(f->dir);
    assert_non_null(d);
    int entries = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            entries++;
    closedir(d);
    assert_int_equal(entries, 1);
    /* what one seals the other opens */
    char *s = seal(&a, AAD, "k");
    assert_int_equal(unseal_rc(&b, AAD, s), 0);
    free(s);
    es_seal_key_wipe(&a);
    for (int i = 0; i < 32; i++)
        assert_int_equal(a.k[i], 0);
}

static void test_key_create_refuses_existing(void **state)
{
    struct fx *f = *state;
    char why[512] = "";
    write_file(f->path, KEY1_HEX "\n", 65, 0600);
    struct es_seal_key k;
    assert_int_equal(es_seal_key_create(f->path, test_rng(), &k, why, sizeof(why)), PX_ERR_EXISTS);
    assert_non_null(strstr(why, "exists"));
    char *text = slurp(f->path);
    assert_string_equal(text, KEY1_HEX "\n");
    free(text);
    /* nor through a dangling link */
    assert_int_equal(unlink(f->path), 0);
    char p[160];
    snprintf(p, sizeof(p), "%s/other", f->dir);
    assert_int_equal(symlink(p, f->path), 0);
    assert_int_equal(es_seal_key_create(f->path, test_rng(), NULL, why, sizeof(why)),
                     PX_ERR_EXISTS);
    assert_int_equal(access(p, F_OK), -1);
    /* and a missing directory is an I/O error with why */
    snprintf(p, sizeof(p), "%s/no/such/dir/ca.key", f->dir);
    assert_int_equal(es_seal_key_create(p, test_rng(), NULL, why, sizeof(why)), PX_ERR_IO);
    assert_non_null(strstr(why, "no/such/dir"));
}

static void test_key_load_refuses_open_file(void **state)
{
    struct fx *f = *state;
    char why[512] = "";
    struct es_seal_key k;
    assert_int_equal(es_seal_key_load(f->path, &k, why, sizeof(why)), PX_ERR_NOT_FOUND);
    assert_non_null(strstr(why, f->path));
    write_file(f->path, KEY1_HEX "\n", 65, 0644);
    assert_int_equal(es_seal_key_load(f->path, &k, why, sizeof(why)), PX_ERR_DENIED);
    assert_non_null(strstr(why, "chmod 600"));
    for (int i = 0; i < 32; i++)
        assert_int_equal(k.k[i], 0);
    assert_int_equal(chmod(f->path, 0600), 0);
    assert_int_equal(es_seal_key_load(f->path, &k, why, sizeof(why)), 0);
    assert_string_equal(k.id, KEY1_ID);
}

/* Accepted: 64 hex digits in either case, then nothing, "\n" or "\r\n". */
static void test_key_file_formats(void **state)
{
    struct fx *f = *state;
    const char *good[] = {
        KEY1_HEX,
        KEY1_HEX "\n",
        KEY1_HEX "\r\n",
        "0102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F20\n",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        char why[512] = "";
        struct es_seal_key k;
        write_file(f->path, good[i], strlen(good[i]), 0600);
        if (es_seal_key_load(f->path, &k, why, sizeof(why)) != 0)
            fail_msg("format %zu refused: %s", i, why);
        assert_string_equal(k.id, KEY1_ID);
        assert_memory_equal(k.k, f->k1.k, 32);
    }
}

static void test_key_file_refused(void **state)
{
    struct fx *f = *state;
    char five_k[5000];
    memset(five_k, 'a', sizeof(five_k) - 1);
    five_k[sizeof(five_k) - 1] = '\0';
    const char *bad[] = {
        "",
        "\n",
        KEY1_HEX "\n\n",
        KEY1_HEX "\r",
        KEY1_HEX "\n\r\n",
        KEY1_HEX " ",
        " " KEY1_HEX,
        KEY1_HEX "0",
        KEY1_HEX "00\n",
        "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2\n",
        "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2g\n",
        "x102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20\n",
        "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=\n", /* base64 of the key */
        KEY1_HEX KEY1_HEX "\n",
        five_k,
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char why[512] = "";
        struct es_seal_key k;
        write_file(f->path, bad[i], strlen(bad[i]), 0600);
        int rc = es_seal_key_load(f->path, &k, why, sizeof(why));
        if (rc != PX_ERR_INVAL)
            fail_msg("format %zu: rc %d (%s)", i, rc, why);
        assert_non_null(strstr(why, "must hold 64 hex digits (32 bytes), as `openssl rand -hex "
                                    "32` or `edge-sim store keygen` writes"));
        /* the message never quotes the file */
        assert_null(strstr(why, "0102030405"));
        assert_null(strstr(why, "aaaaaaaa"));
        for (int j = 0; j < 32; j++)
            assert_int_equal(k.k[j], 0);
    }
}

static void test_key_file_all_zero(void **state)
{
    struct fx *f = *state;
    char why[512] = "";
    struct es_seal_key k;
    const char *zero = "0000000000000000000000000000000000000000000000000000000000000000\n";
    write_file(f->path, zero, strlen(zero), 0600);
    assert_int_equal(es_seal_key_load(f->path, &k, why, sizeof(why)), PX_ERR_INVAL);
    assert_non_null(strstr(why, "all-zero"));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_round_trip),
        T(test_null_aad_is_empty),
        T(test_fresh_nonce),
        T(test_wrong_aad),
        T(test_flipped_byte),
        T(test_other_key),
        T(test_key_id_pinned),
        T(test_format_by_hand),
        T(test_known_blob),
        T(test_plain_with_nul_refused),
        T(test_every_prefix),
        T(test_malformed),
        T(test_other_version),
        T(test_huge),
        T(test_key_create_load),
        T(test_key_create_refuses_existing),
        T(test_key_load_refuses_open_file),
        T(test_key_file_formats),
        T(test_key_file_refused),
        T(test_key_file_all_zero),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
