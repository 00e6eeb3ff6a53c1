#include "px_pki.h"
#include "px_err.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/random.h>

#include <arpa/inet.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#define DER_MAX 4096

static char *to_pem(const unsigned char *der, int der_len, int type)
{
    int n = wc_DerToPem(der, (word32)der_len, NULL, 0, type);
    if (n <= 0)
        return NULL;
    char *pem = malloc((size_t)n + 1);
    if (!pem)
        return NULL;
    n = wc_DerToPem(der, (word32)der_len, (byte *)pem, (word32)n, type);
    if (n <= 0) {
        free(pem);
        return NULL;
    }
    pem[n] = '\0';
    return pem;
}

static int pem_to_der(const char *pem, int type, unsigned char *der, int *der_len)
{
    DerBuffer *d = NULL;
    /* wc_PemToDer can fail after allocating d (a block that does not decode). */
    if (wc_PemToDer((const unsigned char *)pem, (long)strlen(pem), type, &d, NULL, NULL, NULL) !=
            0 ||
        !d) {
        wc_FreeDer(&d);
        return PX_ERR_INVAL;
    }
    int rc = 0;
    if ((int)d->length > *der_len)
        rc = PX_ERR_TOO_LARGE;
    else {
        memcpy(der, d->buffer, d->length);
        *der_len = (int)d->length;
    }
    wc_FreeDer(&d);
    return rc;
}

static int load_key(const char *key_pem, ecc_key *key)
{
    unsigned char der[DER_MAX];
    int len = sizeof(der);
    if (pem_to_der(key_pem, ECC_PRIVATEKEY_TYPE, der, &len) < 0) {
        len = sizeof(der);
        if (pem_to_der(key_pem, PRIVATEKEY_TYPE, der, &len) < 0)
            return PX_ERR_INVAL;
    }
    word32 idx = 0;
    if (wc_ecc_init(key) != 0)
        return PX_ERR_CRYPTO;
    if (wc_EccPrivateKeyDecode(der, &idx, key, (word32)len) != 0) {
        wc_ecc_free(key);
        return PX_ERR_INVAL;
    }
    return 0;
}

int px_pki_random(WC_RNG *rng, void *buf, size_t n)
{
    return wc_RNG_GenerateBlock(rng, buf, (word32)n) == 0 ? 0 : PX_ERR_CRYPTO;
}

int px_pki_keygen(WC_RNG *rng, char **key_pem)
{
    int rc = PX_ERR_CRYPTO;
    ecc_key key;
    unsigned char der[DER_MAX];
    if (wc_ecc_init(&key) != 0)
        return PX_ERR_CRYPTO;
    if (wc_ecc_make_key_ex(rng, 32, &key, ECC_SECP256R1) != 0)
        goto out_key;
    int n = wc_EccKeyToDer(&key, der, sizeof(der));
    if (n <= 0)
        goto out_key;
    *key_pem = to_pem(der, n, ECC_PRIVATEKEY_TYPE);
    rc = *key_pem ? 0 : PX_ERR_NOMEM;
out_key:
    wc_ecc_free(&key);
    return rc;
}

int px_pki_pubkey(const char *key_pem, char **pub_pem)
{
    ecc_key key;
    unsigned char der[DER_MAX];
    int rc = load_key(key_pem, &key);
    if (rc < 0)
        return rc;
    int n = wc_EccPublicKeyToDer(&key, der, sizeof(der), 1);
    wc_ecc_free(&key);
    if (n <= 0)
        return PX_ERR_CRYPTO;
    *pub_pem = to_pem(der, n, PUBLICKEY_TYPE);
    return *pub_pem ? 0 : PX_ERR_NOMEM;
}

static void set_name(CertName *n, const char *cn)
{
    strncpy(n->commonName, cn, CTC_NAME_SIZE - 1);
    strncpy(n->org, "tunnel edge-sim", CTC_NAME_SIZE - 1);
}

static int set_serial(WC_RNG *rng, Cert *c)
{
    if (px_pki_random(rng, c->serial, 16) < 0)
        return PX_ERR_CRYPTO;
    c->serial[0] &= 0x7f;
    c->serial[0] |= 0x01; /* positive and 16 bytes long */
    c->serialSz = 16;
    return 0;
}

/* Encodes GeneralNames: dNSName [2] or iPAddress [7] for names, then
 * uniformResourceIdentifier [6] for uri (may be NULL). */
static int encode_alt_names(Cert *c, const char *const *names, size_t n, const char *uri)
{
    byte body[CTC_MAX_ALT_SIZE];
    size_t len = 0;
    if (uri) {
        size_t ul = strlen(uri);
        if (ul > 127 || ul + 2 > sizeof(body) - 4)
            return PX_ERR_TOO_LARGE;
        body[len++] = 0x86;
        body[len++] = (byte)ul;
        memcpy(body + len, uri, ul);
        len += ul;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ip[16];
        const void *val = names[i];
        size_t vlen = strlen(names[i]);
        byte tag = 0x82;
        if (inet_pton(AF_INET, names[i], ip) == 1) {
            val = ip;
            vlen = 4;
            tag = 0x87;
        } else if (inet_pton(AF_INET6, names[i], ip) == 1) {
            val = ip;
            vlen = 16;
            tag = 0x87;
        }
        if (vlen > 127 || len + 2 + vlen > sizeof(body) - 4)
            return PX_ERR_TOO_LARGE;
        body[len++] = tag;
        body[len++] = (byte)vlen;
        memcpy(body + len, val, vlen);
        len += vlen;
    }
    size_t o = 0;
    c->altNames[o++] = 0x30;
    if (len < 128) {
        c->altNames[o++] = (byte)len;
    } else if (len < 256) {
        c->altNames[o++] = 0x81;
        c->altNames[o++] = (byte)len;
    } else {
        c->altNames[o++] = 0x82;
        c->altNames[o++] = (byte)(len >> 8);
        c->altNames[o++] = (byte)len;
    }
    if (o + len > sizeof(c->altNames))
        return PX_ERR_TOO_LARGE;
    memcpy(c->altNames + o, body, len);
    c->altNamesSz = (int)(o + len);
    return 0;
}

/* t as a DER Time (UTCTime before 2050, else GeneralizedTime) into out
 * (CTC_DATE_SIZE bytes). Returns its length, or -1. */
static int der_time(long long t, byte *out)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (t < 0 || !gmtime_r(&tt, &tm))
        return -1;
    char buf[24];
    int utc = tm.tm_year + 1900 < 2050;
    size_t n = strftime(buf, sizeof(buf), "%Y%m%d%H%M%SZ", &tm);
    const char *v = utc ? buf + 2 : buf; /* UTCTime has a two-digit year */
    if (n != 15)
        return -1;
    n = utc ? 13 : 15;
    out[0] = utc ? 0x17 : 0x18;
    out[1] = (byte)n;
    memcpy(out + 2, v, n);
    return (int)n + 2;
}

static int sign(Cert *c, ecc_key *subject_key, ecc_key *signer, WC_RNG *rng, char **cert_pem)
{
    unsigned char *der = malloc(DER_MAX * 2);
    if (!der)
        return PX_ERR_NOMEM;
    int rc = PX_ERR_CRYPTO;
    c->sigType = CTC_SHA256wECDSA;
    if (wc_MakeCert_ex(c, der, DER_MAX * 2, ECC_TYPE, subject_key, rng) < 0)
        goto out;
    int n = wc_SignCert_ex(c->bodySz, c->sigType, der, DER_MAX * 2, ECC_TYPE, signer, rng);
    if (n <= 0)
        goto out;
    *cert_pem = to_pem(der, n, CERT_TYPE);
    rc = *cert_pem ? 0 : PX_ERR_NOMEM;
out:
    free(der);
    return rc;
}

int px_pki_make_ca(WC_RNG *rng, const char *key_pem, const char *cn, int days, char **cert_pem)
{
    ecc_key key;
    Cert c;
    int rc = load_key(key_pem, &key);
    if (rc < 0)
        return rc;
    rc = PX_ERR_CRYPTO;
    if (wc_InitCert(&c) != 0 || set_serial(rng, &c) < 0)
        goto out_key;
    set_name(&c.subject, cn);
    c.isCA = 1;
    c.daysValid = days;
    if (wc_SetSubjectKeyIdFromPublicKey_ex(&c, ECC_TYPE, &key) != 0 ||
        wc_SetKeyUsage(&c, "keyCertSign,cRLSign,digitalSignature") != 0)
        goto out_key;
    rc = sign(&c, &key, &key, rng, cert_pem);
out_key:
    wc_ecc_free(&key);
    return rc;
}

int px_pki_issue(WC_RNG *rng, const char *ca_cert_pem, const char *ca_key_pem, const char *pub_pem,
                 const char *cn, const char *const *names, size_t n_names, enum px_pki_usage usage,
                 int days, char **cert_pem)
{
    struct px_pki_req r = {
        .cn = cn, .names = names, .n_names = n_names, .usage = usage, .days = days};
    return px_pki_issue_req(rng, ca_cert_pem, ca_key_pem, pub_pem, &r, cert_pem);
}

int px_pki_issue_req(WC_RNG *rng, const char *ca_cert_pem, const char *ca_key_pem,
                     const char *pub_pem, const struct px_pki_req *r, char **cert_pem)
{
    ecc_key ca_key, sub_key;
    Cert c;
    unsigned char ca_der[DER_MAX], pub_der[DER_MAX];
    int ca_len = sizeof(ca_der), pub_len = sizeof(pub_der);
    int rc = pem_to_der(ca_cert_pem, CERT_TYPE, ca_der, &ca_len);
    if (rc < 0)
        return rc;
    if (pem_to_der(pub_pem, PUBLICKEY_TYPE, pub_der, &pub_len) < 0)
        return PX_ERR_INVAL;
    rc = load_key(ca_key_pem, &ca_key);
    if (rc < 0)
        return rc;
    rc = PX_ERR_INVAL;
    if (wc_ecc_init(&sub_key) != 0)
        goto out_ca;
    word32 idx = 0;
    if (wc_EccPublicKeyDecode(pub_der, &idx, &sub_key, (word32)pub_len) != 0 ||
        wc_ecc_check_key(&sub_key) != 0)
        goto out_sub;
    rc = PX_ERR_CRYPTO;
    if (wc_InitCert(&c) != 0 || set_serial(rng, &c) < 0)
        goto out_sub;
    set_name(&c.subject, r->cn);
    if (r->ou)
        strncpy(c.subject.unit, r->ou, CTC_NAME_SIZE - 1);
    c.daysValid = r->days > 0 ? r->days : 1;
    if (r->not_after > 0) {
        int nb = der_time(r->not_before, c.beforeDate), na = der_time(r->not_after, c.afterDate);
        if (nb < 0 || na < 0 || r->not_after <= r->not_before) {
            rc = PX_ERR_INVAL;
            goto out_sub;
        }
        c.beforeDateSz = nb;
        c.afterDateSz = na;
    }
    if (wc_SetIssuerBuffer(&c, ca_der, ca_len) != 0 ||
        wc_SetAuthKeyIdFromCert(&c, ca_der, ca_len) != 0 ||
        wc_SetSubjectKeyIdFromPublicKey_ex(&c, ECC_TYPE, &sub_key) != 0 ||
        wc_SetKeyUsage(&c, "digitalSignature,keyAgreement") != 0 ||
        wc_SetExtKeyUsage(&c, r->usage == PX_PKI_SERVER ? "serverAuth" : "clientAuth") != 0)
        goto out_sub;
    if ((r->n_names > 0 || r->uri) && encode_alt_names(&c, r->names, r->n_names, r->uri) < 0)
        goto out_sub;
    rc = sign(&c, &sub_key, &ca_key, rng, cert_pem);
out_sub:
    wc_ecc_free(&sub_key);
out_ca:
    wc_ecc_free(&ca_key);
    return rc;
}
