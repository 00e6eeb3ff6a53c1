/* px_pki_pkcs12 (declared in px_pki.h): PKCS#12 (RFC 7292) written by hand
 * over wolfCrypt's primitives. wolfSSL 5.5.4's wc_PKCS12_create leaves out
 * the friendlyName and localKeyId bag attributes, and NSS (Chromium,
 * Firefox) then refuses the key ("Unable to import"); it also fixes the MAC
 * to SHA-256, which older Apple and Android importers refuse.
 *
 * The layout is what `openssl pkcs12 -export -legacy` writes, the form every
 * importer takes:
 *   PFX { 3, data(AuthenticatedSafe), MacData(HMAC-SHA1, 8-byte salt, 2048) }
 *   AuthenticatedSafe {
 *     encryptedData(pbeWithSHAAnd3-KeyTripleDES-CBC, SafeContents {
 *         certBag(leaf) {friendlyName, localKeyId}, certBag(CA)... }),
 *     data(SafeContents { pkcs8ShroudedKeyBag(3DES) {friendlyName, localKeyId} }) }
 * localKeyId is the SHA-1 of the leaf certificate, as OpenSSL sets it. */
#include "px_asn1.h"
#include "px_buf.h"
#include "px_cert.h"
#include "px_err.h"
#include "px_pki.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/des3.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/hmac.h>
#include <wolfssl/wolfcrypt/pwdbased.h>
#include <wolfssl/wolfcrypt/sha.h>

#include <stdlib.h>
#include <string.h>

#define ITERATIONS 2048
#define SALT_LEN 8

static const uint8_t oid_data[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01};
static const uint8_t oid_encrypted_data[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x06};
static const uint8_t oid_pbe_3des[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x01, 0x03};
static const uint8_t oid_shrouded_key_bag[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d,
                                               0x01, 0x0c, 0x0a, 0x01, 0x02};
static const uint8_t oid_cert_bag[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d,
                                       0x01, 0x0c, 0x0a, 0x01, 0x03};
static const uint8_t oid_x509_cert[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x16, 0x01};
static const uint8_t oid_friendly_name[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x14};
static const uint8_t oid_local_key_id[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x15};
static const uint8_t oid_sha1[] = {0x2b, 0x0e, 0x03, 0x02, 0x1a};

/* PKCS#12 key derivation purposes (RFC 7292 appendix B.3). */
enum { KDF_KEY = 1, KDF_IV = 2, KDF_MAC = 3 };

/* UTF-8 text as a BMPString's bytes (UTF-16BE; RFC 7292 B.1 passwords end
 * with two zero bytes, zero_end). Code points past U+FFFF become surrogate
 * pairs, as OpenSSL and NSS encode them. Returns 0, PX_ERR_INVAL for text that
 * is not UTF-8, or PX_ERR_NOMEM. */
static int utf8_to_bmp(const char *s, int zero_end, struct px_buf *out)
{
    const uint8_t *p = (const uint8_t *)s;
    while (*p) {
        uint32_t cp;
        int extra;
        if (p[0] < 0x80) {
            cp = p[0];
            extra = 0;
        } else if ((p[0] & 0xe0) == 0xc0) {
            cp = p[0] & 0x1f;
            extra = 1;
        } else if ((p[0] & 0xf0) == 0xe0) {
            cp = p[0] & 0x0f;
            extra = 2;
        } else if ((p[0] & 0xf8) == 0xf0) {
            cp = p[0] & 0x07;
            extra = 3;
        } else {
            return PX_ERR_INVAL;
        }
        for (int i = 1; i <= extra; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return PX_ERR_INVAL; /* also stops at the NUL */
            cp = cp << 6 | (p[i] & 0x3f);
        }
        static const uint32_t min[] = {0, 0x80, 0x800, 0x10000};
        if (cp < min[extra] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return PX_ERR_INVAL; /* overlong, out of range, or a surrogate */
        p += 1 + extra;
        uint8_t u[4];
        size_t n = 2;
        if (cp >= 0x10000) {
            uint32_t v = cp - 0x10000, hi = 0xd800 | v >> 10, lo = 0xdc00 | (v & 0x3ff);
            u[0] = (uint8_t)(hi >> 8);
            u[1] = (uint8_t)hi;
            u[2] = (uint8_t)(lo >> 8);
            u[3] = (uint8_t)lo;
            n = 4;
        } else {
            u[0] = (uint8_t)(cp >> 8);
            u[1] = (uint8_t)cp;
        }
        if (px_buf_append(out, u, n) < 0)
            return PX_ERR_NOMEM;
    }
    return zero_end ? px_buf_append(out, "\0\0", 2) : 0;
}

struct p12_ctx {
    const uint8_t *pass; /* BMPString password with its two zero bytes */
    size_t pass_len;
    const struct px_buf *attrs; /* SET OF Attribute for the leaf and the key */
    WC_RNG *rng;                /* the caller's: salts */
};

static int kdf(const struct p12_ctx *c, const uint8_t *salt, int purpose, uint8_t *out, int n)
{
    return wc_PKCS12_PBKDF_ex(out, c->pass, (int)c->pass_len, salt, SALT_LEN, ITERATIONS, n,
                              WC_HASH_TYPE_SHA, purpose, NULL) == 0
               ? 0
               : PX_ERR_CRYPTO;
}

/* AlgorithmIdentifier { pbeWithSHAAnd3-KeyTripleDES-CBC, { salt, 2048 } } */
static int put_pbe_alg(struct px_buf *out, const uint8_t *salt)
{
    struct px_buf params, alg;
    px_buf_init(&params);
    px_buf_init(&alg);
    px_buf_set_min_cap(&params, 64);
    px_buf_set_min_cap(&alg, 64);
    int rc = px_asn1_put(&params, PX_ASN1_OCTET_STRING, salt, SALT_LEN);
    if (rc == 0)
        rc = px_asn1_put_uint(&params, ITERATIONS);
    if (rc == 0)
        rc = px_asn1_put(&alg, PX_ASN1_OID, oid_pbe_3des, sizeof(oid_pbe_3des));
    if (rc == 0)
        rc = px_asn1_put_buf(&alg, PX_ASN1_SEQUENCE, &params);
    if (rc == 0)
        rc = px_asn1_put_buf(out, PX_ASN1_SEQUENCE, &alg);
    px_buf_cleanup(&params);
    px_buf_cleanup(&alg);
    return rc;
}

/* Encrypts in/n with 3DES-CBC (PKCS#7 padding) under a key and IV derived
 * from the password and a fresh salt; appends the AlgorithmIdentifier to alg
 * (the structure being built around it) and the ciphertext to ct. */
static int encrypt(const struct p12_ctx *c, const uint8_t *in, size_t n, struct px_buf *alg,
                   struct px_buf *ct)
{
    uint8_t salt[SALT_LEN], key[24], iv[8];
    size_t pad = 8 - n % 8, total = n + pad;
    int rc = px_pki_random(c->rng, salt, sizeof(salt));
    if (rc < 0)
        return rc;
    if ((rc = kdf(c, salt, KDF_KEY, key, sizeof(key))) < 0 ||
        (rc = kdf(c, salt, KDF_IV, iv, sizeof(iv))) < 0)
        goto out_wipe;
    rc = PX_ERR_NOMEM;
    uint8_t *buf = malloc(total);
    if (!buf)
        goto out_wipe;
    memcpy(buf, in, n);
    memset(buf + n, (int)pad, pad);
    Des3 des;
    rc = PX_ERR_CRYPTO;
    if (wc_Des3Init(&des, NULL, INVALID_DEVID) != 0)
        goto out_buf;
    if (wc_Des3_SetKey(&des, key, iv, DES_ENCRYPTION) == 0 &&
        wc_Des3_CbcEncrypt(&des, buf, buf, (word32)total) == 0)
        rc = 0;
    wc_Des3Free(&des);
    if (rc == 0)
        rc = put_pbe_alg(alg, salt);
    if (rc == 0)
        rc = px_buf_append(ct, buf, total);
out_buf:
    explicit_bzero(buf, total); /* it held the plaintext key */
    free(buf);
out_wipe:
    explicit_bzero(key, sizeof(key));
    explicit_bzero(iv, sizeof(iv));
    return rc;
}

/* SEQUENCE { type, [0] EXPLICIT value, SET attrs (if attrs) }: a SafeBag,
 * a CertBag or a ContentInfo. */
static int put_typed(struct px_buf *out, const uint8_t *oid, size_t oid_len,
                     const struct px_buf *value, const struct px_buf *attrs)
{
    struct px_buf seq;
    px_buf_init(&seq);
    int rc = px_asn1_put(&seq, PX_ASN1_OID, oid, oid_len);
    if (rc == 0)
        rc = px_asn1_put_buf(&seq, PX_ASN1_CTX_CONS(0), value);
    if (rc == 0 && attrs)
        rc = px_asn1_put_buf(&seq, PX_ASN1_SET, attrs);
    if (rc == 0)
        rc = px_asn1_put_buf(out, PX_ASN1_SEQUENCE, &seq);
    px_buf_cleanup(&seq);
    return rc;
}

/* ContentInfo { data, [0] OCTET STRING content } */
static int put_data(struct px_buf *out, const struct px_buf *content)
{
    struct px_buf octets;
    px_buf_init(&octets);
    int rc = px_asn1_put_buf(&octets, PX_ASN1_OCTET_STRING, content);
    if (rc == 0)
        rc = put_typed(out, oid_data, sizeof(oid_data), &octets, NULL);
    px_buf_cleanup(&octets);
    return rc;
}

/* SafeBag { certBag, [0] CertBag { x509Certificate, [0] OCTET STRING der },
 * attrs } */
static int put_cert_bag(struct px_buf *out, const struct px_der *cert, const struct px_buf *attrs)
{
    struct px_buf octets, value;
    px_buf_init(&octets);
    px_buf_init(&value);
    int rc = px_asn1_put(&octets, PX_ASN1_OCTET_STRING, cert->der, cert->len);
    if (rc == 0)
        rc = put_typed(&value, oid_x509_cert, sizeof(oid_x509_cert), &octets, NULL);
    if (rc == 0)
        rc = put_typed(out, oid_cert_bag, sizeof(oid_cert_bag), &value, attrs);
    px_buf_cleanup(&octets);
    px_buf_cleanup(&value);
    return rc;
}

/* ContentInfo { encryptedData, [0] EncryptedData { 0, EncryptedContentInfo {
 *   data, pbe AlgorithmIdentifier, [0] IMPLICIT ciphertext } } } for the
 * certificate bags. */
static int put_cert_safe(struct px_buf *out, const struct p12_ctx *c, const struct px_der *certs,
                         size_t n_certs)
{
    struct px_buf bags, safe, ct, eci, ed, ed_seq;
    struct px_buf *all[] = {&bags, &safe, &ct, &eci, &ed, &ed_seq};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        px_buf_init(all[i]);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n_certs; i++)
        rc = put_cert_bag(&bags, &certs[i], i == 0 ? c->attrs : NULL);
    if (rc == 0)
        rc = px_asn1_put_buf(&safe, PX_ASN1_SEQUENCE, &bags);
    if (rc == 0)
        rc = px_asn1_put(&eci, PX_ASN1_OID, oid_data, sizeof(oid_data));
    if (rc == 0) /* the AlgorithmIdentifier goes straight into eci */
        rc = encrypt(c, px_buf_head(&safe), px_buf_len(&safe), &eci, &ct);
    if (rc == 0)
        rc = px_asn1_put_buf(&eci, PX_ASN1_CTX_PRIM(0), &ct);
    if (rc == 0)
        rc = px_asn1_put_uint(&ed, 0);
    if (rc == 0)
        rc = px_asn1_put_buf(&ed, PX_ASN1_SEQUENCE, &eci);
    if (rc == 0)
        rc = px_asn1_put_buf(&ed_seq, PX_ASN1_SEQUENCE, &ed);
    if (rc == 0)
        rc = put_typed(out, oid_encrypted_data, sizeof(oid_encrypted_data), &ed_seq, NULL);
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        px_buf_cleanup(all[i]);
    return rc;
}

/* ContentInfo { data, [0] OCTET STRING SafeContents { pkcs8ShroudedKeyBag } } */
static int put_key_safe(struct px_buf *out, const struct p12_ctx *c, const uint8_t *pkcs8,
                        size_t pkcs8_len)
{
    struct px_buf ct, epki, value, bag, safe;
    struct px_buf *all[] = {&ct, &epki, &value, &bag, &safe};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        px_buf_init(all[i]);
    /* EncryptedPrivateKeyInfo { AlgorithmIdentifier, OCTET STRING } */
    int rc = encrypt(c, pkcs8, pkcs8_len, &epki, &ct);
    if (rc == 0)
        rc = px_asn1_put_buf(&epki, PX_ASN1_OCTET_STRING, &ct);
    if (rc == 0)
        rc = px_asn1_put_buf(&value, PX_ASN1_SEQUENCE, &epki);
    if (rc == 0)
        rc = put_typed(&bag, oid_shrouded_key_bag, sizeof(oid_shrouded_key_bag), &value, c->attrs);
    if (rc == 0)
        rc = px_asn1_put_buf(&safe, PX_ASN1_SEQUENCE, &bag);
    if (rc == 0)
        rc = put_data(out, &safe);
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        px_buf_cleanup(all[i]);
    return rc;
}

/* MacData { DigestInfo { { sha1, NULL }, HMAC-SHA1 }, salt, 2048 } over the
 * AuthenticatedSafe's encoding. */
static int put_mac(struct px_buf *out, const struct p12_ctx *c, const struct px_buf *auth_safe)
{
    uint8_t salt[SALT_LEN], key[WC_SHA_DIGEST_SIZE], mac[WC_SHA_DIGEST_SIZE];
    struct px_buf alg, alg_seq, di, md;
    px_buf_init(&alg);
    px_buf_init(&alg_seq);
    px_buf_init(&di);
    px_buf_init(&md);
    int rc = px_pki_random(c->rng, salt, sizeof(salt));
    if (rc == 0)
        rc = kdf(c, salt, KDF_MAC, key, sizeof(key));
    if (rc == 0) {
        Hmac h;
        rc = PX_ERR_CRYPTO;
        if (wc_HmacInit(&h, NULL, INVALID_DEVID) == 0) {
            if (wc_HmacSetKey(&h, WC_SHA, key, sizeof(key)) == 0 &&
                wc_HmacUpdate(&h, px_buf_head(auth_safe), (word32)px_buf_len(auth_safe)) == 0 &&
                wc_HmacFinal(&h, mac) == 0)
                rc = 0;
            wc_HmacFree(&h);
        }
    }
    if (rc == 0)
        rc = px_asn1_put(&alg, PX_ASN1_OID, oid_sha1, sizeof(oid_sha1));
    if (rc == 0)
        rc = px_asn1_put(&alg, PX_ASN1_NULL, NULL, 0);
    if (rc == 0)
        rc = px_asn1_put_buf(&alg_seq, PX_ASN1_SEQUENCE, &alg);
    if (rc == 0)
        rc = px_buf_append(&di, px_buf_head(&alg_seq), px_buf_len(&alg_seq));
    if (rc == 0)
        rc = px_asn1_put(&di, PX_ASN1_OCTET_STRING, mac, sizeof(mac));
    if (rc == 0)
        rc = px_asn1_put_buf(&md, PX_ASN1_SEQUENCE, &di);
    if (rc == 0)
        rc = px_asn1_put(&md, PX_ASN1_OCTET_STRING, salt, sizeof(salt));
    if (rc == 0)
        rc = px_asn1_put_uint(&md, ITERATIONS);
    if (rc == 0)
        rc = px_asn1_put_buf(out, PX_ASN1_SEQUENCE, &md);
    explicit_bzero(key, sizeof(key));
    px_buf_cleanup(&alg);
    px_buf_cleanup(&alg_seq);
    px_buf_cleanup(&di);
    px_buf_cleanup(&md);
    return rc;
}

/* One Attribute { type, SET { value } } with value's encoding given. */
static int put_attr(struct px_buf *out, const uint8_t *oid, size_t oid_len, uint8_t tag,
                    const void *val, size_t len)
{
    struct px_buf v, set, a;
    px_buf_init(&v);
    px_buf_init(&set);
    px_buf_init(&a);
    int rc = px_asn1_put(&v, tag, val, len);
    if (rc == 0)
        rc = px_asn1_put_buf(&set, PX_ASN1_SET, &v);
    if (rc == 0)
        rc = px_asn1_put(&a, PX_ASN1_OID, oid, oid_len);
    if (rc == 0)
        rc = px_buf_append(&a, px_buf_head(&set), px_buf_len(&set));
    if (rc == 0)
        rc = px_asn1_put_buf(out, PX_ASN1_SEQUENCE, &a);
    px_buf_cleanup(&v);
    px_buf_cleanup(&set);
    px_buf_cleanup(&a);
    return rc;
}

/* The contents of the bag attributes' SET OF, in DER order (X.690 11.6:
 * encodings compared as octet strings, the shorter padded with zeros). */
static int make_attrs(struct px_buf *out, const char *friendly_name, const uint8_t *key_id,
                      size_t key_id_len)
{
    struct px_buf name, fn, lk;
    px_buf_init(&name);
    px_buf_init(&fn);
    px_buf_init(&lk);
    int rc = put_attr(&lk, oid_local_key_id, sizeof(oid_local_key_id), PX_ASN1_OCTET_STRING, key_id,
                      key_id_len);
    if (rc == 0 && friendly_name && *friendly_name) {
        rc = utf8_to_bmp(friendly_name, 0, &name);
        if (rc == 0)
            rc = put_attr(&fn, oid_friendly_name, sizeof(oid_friendly_name), PX_ASN1_BMP_STRING,
                          px_buf_head(&name), px_buf_len(&name));
    }
    if (rc == 0) {
        const struct px_buf *first = &fn, *second = &lk;
        size_t n = px_buf_len(&fn) < px_buf_len(&lk) ? px_buf_len(&fn) : px_buf_len(&lk);
        int cmp = n ? memcmp(px_buf_head(&fn), px_buf_head(&lk), n) : 0;
        if (cmp > 0 || (cmp == 0 && px_buf_len(&fn) > px_buf_len(&lk))) {
            first = &lk;
            second = &fn;
        }
        rc = px_buf_append(out, px_buf_head(first), px_buf_len(first));
        if (rc == 0)
            rc = px_buf_append(out, px_buf_head(second), px_buf_len(second));
    }
    px_buf_cleanup(&name);
    px_buf_cleanup(&fn);
    px_buf_cleanup(&lk);
    return rc;
}

/* The private key as PKCS#8 PrivateKeyInfo (malloc'd; the caller wipes and
 * frees it), after checking it is the key of the certificate cert. */
static int key_pkcs8(const char *key_pem, const struct px_der *cert, uint8_t **out, size_t *out_len)
{
    DerBuffer *d = NULL;
    ecc_key key, pub;
    size_t pem_len = strlen(key_pem);
    if (wc_PemToDer((const unsigned char *)key_pem, (long)pem_len, ECC_PRIVATEKEY_TYPE, &d, NULL,
                    NULL, NULL) != 0 &&
        wc_PemToDer((const unsigned char *)key_pem, (long)pem_len, PRIVATEKEY_TYPE, &d, NULL, NULL,
                    NULL) != 0)
        return PX_ERR_INVAL;
    int rc = PX_ERR_CRYPTO;
    if (wc_ecc_init(&key) != 0)
        goto out_der;
    if (wc_ecc_init(&pub) != 0)
        goto out_key;
    rc = PX_ERR_INVAL;
    word32 idx = 0;
    if (wc_EccPrivateKeyDecode(d->buffer, &idx, &key, d->length) != 0)
        goto out_pub;
    /* A bundle whose key does not open its certificate is useless to a
     * browser, and a sign of a mixed-up call: refuse it. */
    const uint8_t *spki;
    size_t spki_len;
    if (px_cert_spki(cert->der, cert->len, &spki, &spki_len) < 0)
        goto out_pub;
    idx = 0;
    if (wc_EccPublicKeyDecode(spki, &idx, &pub, (word32)spki_len) != 0)
        goto out_pub;
    uint8_t a[160], b[160];
    word32 al = sizeof(a), bl = sizeof(b);
    if (wc_ecc_export_x963(&key, a, &al) != 0 || wc_ecc_export_x963(&pub, b, &bl) != 0 ||
        al != bl || memcmp(a, b, al) != 0)
        goto out_pub;
    word32 n = 0;
    rc = PX_ERR_CRYPTO;
    if (wc_EccKeyToPKCS8(&key, NULL, &n) != LENGTH_ONLY_E || n == 0)
        goto out_pub;
    rc = PX_ERR_NOMEM;
    uint8_t *p = malloc(n);
    if (!p)
        goto out_pub;
    rc = PX_ERR_CRYPTO;
    int w = wc_EccKeyToPKCS8(&key, p, &n);
    if (w <= 0) {
        explicit_bzero(p, n);
        free(p);
        goto out_pub;
    }
    *out = p;
    *out_len = (size_t)w;
    rc = 0;
out_pub:
    wc_ecc_free(&pub);
out_key:
    wc_ecc_free(&key);
out_der:
    wc_FreeDer(&d);
    return rc;
}

int px_pki_pkcs12(WC_RNG *rng, const char *key_pem, const char *cert_pem, const char *ca_pem,
                  const char *password, const char *friendly_name, unsigned char **der, size_t *len)
{
    struct px_der *leaf = NULL, *cas = NULL, *certs = NULL;
    size_t n_leaf = 0, n_cas = 0;
    uint8_t *pkcs8 = NULL, key_id[WC_SHA_DIGEST_SIZE];
    size_t pkcs8_len = 0;
    struct px_buf pass, attrs, safes, auth_safe, body, pfx;
    struct px_buf *all[] = {&pass, &attrs, &safes, &auth_safe, &body, &pfx};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        px_buf_init(all[i]);
    int rc = PX_ERR_INVAL;
    /* An empty password is spelt differently by different importers (no
     * bytes, or the two-byte terminator): refuse rather than guess. */
    if (!key_pem || !cert_pem || !password || !*password)
        goto out;
    if ((rc = px_cert_pem_split(cert_pem, strlen(cert_pem), &leaf, &n_leaf)) < 0)
        goto out;
    if (ca_pem && (rc = px_cert_pem_split(ca_pem, strlen(ca_pem), &cas, &n_cas)) < 0)
        goto out;
    rc = PX_ERR_NOMEM;
    certs = calloc(1 + n_cas, sizeof(*certs));
    if (!certs)
        goto out;
    certs[0] = leaf[0]; /* borrowed: freed through leaf and cas */
    for (size_t i = 0; i < n_cas; i++)
        certs[1 + i] = cas[i];
    if ((rc = key_pkcs8(key_pem, &certs[0], &pkcs8, &pkcs8_len)) < 0)
        goto out;
    rc = PX_ERR_CRYPTO;
    if (wc_ShaHash(certs[0].der, (word32)certs[0].len, key_id) != 0)
        goto out;
    if ((rc = utf8_to_bmp(password, 1, &pass)) < 0 ||
        (rc = make_attrs(&attrs, friendly_name, key_id, sizeof(key_id))) < 0)
        goto out;
    struct p12_ctx c = {px_buf_head(&pass), px_buf_len(&pass), &attrs, rng};
    if ((rc = put_cert_safe(&safes, &c, certs, 1 + n_cas)) < 0 ||
        (rc = put_key_safe(&safes, &c, pkcs8, pkcs8_len)) < 0 ||
        (rc = px_asn1_put_buf(&auth_safe, PX_ASN1_SEQUENCE, &safes)) < 0)
        goto out;
    /* PFX { version 3, ContentInfo { data, [0] OCTET STRING authSafe }, MacData } */
    if ((rc = px_asn1_put_uint(&body, 3)) < 0 || (rc = put_data(&body, &auth_safe)) < 0 ||
        (rc = put_mac(&body, &c, &auth_safe)) < 0 ||
        (rc = px_asn1_put_buf(&pfx, PX_ASN1_SEQUENCE, &body)) < 0)
        goto out;
    rc = PX_ERR_NOMEM;
    unsigned char *res = malloc(px_buf_len(&pfx));
    if (!res)
        goto out;
    memcpy(res, px_buf_head(&pfx), px_buf_len(&pfx));
    *der = res;
    *len = px_buf_len(&pfx);
    rc = 0;
out:
    if (pass.data) /* one allocation: 4 KiB holds any password we take */
        explicit_bzero(pass.data, pass.cap);
    if (pkcs8) {
        explicit_bzero(pkcs8, pkcs8_len);
        free(pkcs8);
    }
    free(certs);
    px_der_free(leaf, n_leaf);
    px_der_free(cas, n_cas);
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        px_buf_cleanup(all[i]);
    return rc;
}
