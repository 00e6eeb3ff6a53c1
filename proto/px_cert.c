#include "px_cert.h"
#include "px_asn1.h"
#include "px_b64.h"
#include "px_buf.h"
#include "px_err.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/sha256.h>
#include <wolfssl/wolfcrypt/sha512.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PEM_CERT_BEGIN "-----BEGIN CERTIFICATE-----"
#define PEM_CERT_END "-----END CERTIFICATE-----"

static const char hexdig_lc[] = "0123456789abcdef";
static const char hexdig_uc[] = "0123456789ABCDEF";

/* The unread bytes of b as a malloc'd string of their own; b is cleaned up. */
static char *buf_take(struct px_buf *b)
{
    size_t n = px_buf_len(b);
    char *s = malloc(n + 1);
    if (s) {
        if (n)
            memcpy(s, px_buf_head(b), n);
        s[n] = '\0';
    }
    px_buf_cleanup(b);
    return s;
}

/* ---- DER walking ---- */

/* The parts of a certificate this module reads (pointing into the DER). */
struct cert_parts {
    struct px_asn1_tlv serial, issuer, not_before, not_after, subject, spki;
};

static int split_cert(const uint8_t *der, size_t len, struct cert_parts *c)
{
    struct px_asn1 r = px_asn1_reader(der, len), tbs, sig;
    struct px_asn1_tlv cert, t, alg;
    if (px_asn1_expect(&r, PX_ASN1_SEQUENCE, &cert) < 0 || !px_asn1_done(&r))
        return PX_ERR_INVAL; /* one certificate, nothing after it */
    r = px_asn1_inside(&cert);
    if (px_asn1_expect(&r, PX_ASN1_SEQUENCE, &t) < 0)
        return PX_ERR_INVAL;
    tbs = px_asn1_inside(&t);
    if (px_asn1_expect(&r, PX_ASN1_SEQUENCE, &alg) < 0 ||
        px_asn1_expect(&r, PX_ASN1_BIT_STRING, &t) < 0 || !px_asn1_done(&r))
        return PX_ERR_INVAL;
    if (px_asn1_peek(&tbs, PX_ASN1_CTX_CONS(0)) && px_asn1_next(&tbs, &t) < 0)
        return PX_ERR_INVAL;
    if (px_asn1_expect(&tbs, PX_ASN1_INTEGER, &c->serial) < 0 || c->serial.len == 0 ||
        px_asn1_expect(&tbs, PX_ASN1_SEQUENCE, &alg) < 0 ||
        px_asn1_expect(&tbs, PX_ASN1_SEQUENCE, &c->issuer) < 0 ||
        px_asn1_expect(&tbs, PX_ASN1_SEQUENCE, &t) < 0 ||
        px_asn1_expect(&tbs, PX_ASN1_SEQUENCE, &c->subject) < 0 ||
        px_asn1_expect(&tbs, PX_ASN1_SEQUENCE, &c->spki) < 0)
        return PX_ERR_INVAL;
    sig = px_asn1_inside(&t); /* validity */
    if (px_asn1_next(&sig, &c->not_before) < 0 || px_asn1_next(&sig, &c->not_after) < 0 ||
        !px_asn1_done(&sig))
        return PX_ERR_INVAL;
    return 0;
}

int px_cert_spki(const uint8_t *der, size_t len, const uint8_t **spki, size_t *spki_len)
{
    struct cert_parts c;
    if (!der || split_cert(der, len, &c) < 0)
        return PX_ERR_INVAL;
    *spki = c.spki.tlv;
    *spki_len = c.spki.tlv_len;
    return 0;
}

/* ---- times ---- */

static int digits(const uint8_t *p, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 0;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
static long long days_from_civil(long long y, int m, int d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400;
    long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* RFC 5280 4.1.2.5: UTCTime YYMMDDHHMMSSZ (YY < 50 is 20YY) and
 * GeneralizedTime YYYYMMDDHHMMSSZ; no other form is allowed in a certificate. */
static int parse_time(const struct px_asn1_tlv *t, long long *out)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const uint8_t *p = t->val;
    int y, mo, d, h, mi, s;
    if (t->tag == PX_ASN1_UTC_TIME && t->len == 13) {
        if (digits(p, 2, &y) < 0)
            return PX_ERR_INVAL;
        y += y < 50 ? 2000 : 1900;
        p += 2;
    } else if (t->tag == PX_ASN1_GENERALIZED_TIME && t->len == 15) {
        if (digits(p, 4, &y) < 0)
            return PX_ERR_INVAL;
        p += 4;
    } else {
        return PX_ERR_INVAL;
    }
    if (digits(p, 2, &mo) < 0 || digits(p + 2, 2, &d) < 0 || digits(p + 4, 2, &h) < 0 ||
        digits(p + 6, 2, &mi) < 0 || digits(p + 8, 2, &s) < 0 || p[10] != 'Z')
        return PX_ERR_INVAL;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && is_leap(y)) || h > 23 ||
        mi > 59 || s > 59)
        return PX_ERR_INVAL;
    *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
    return 0;
}

void px_cert_time(long long t, char out[21])
{
    /* Clamped to what four year digits can say. */
    const long long lo = -62167219200LL, hi = 253402300799LL; /* 0000-01-01, 9999-12-31 */
    struct tm tm;
    if (t < lo)
        t = lo;
    if (t > hi)
        t = hi;
    time_t tt = (time_t)t;
    if (!gmtime_r(&tt, &tm))
        memset(&tm, 0, sizeof(tm)); /* not reached for a 64-bit time_t */
    const int v[6] = {tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                      tm.tm_hour,        tm.tm_min,     tm.tm_sec};
    static const char sep[] = "--T::Z";
    size_t o = 0;
    for (int i = 0; i < 6; i++) {
        for (int div = i == 0 ? 1000 : 10; div > 0; div /= 10)
            out[o++] = (char)('0' + v[i] / div % 10);
        out[o++] = sep[i];
    }
    out[o] = '\0';
}

/* ---- names ---- */

/* The short names `openssl x509 -nameopt RFC2253` prints (RFC 4514's table
 * and the common extras); any other type is written as its dotted OID.
 * X.520's (id-at, 2.5.4.n) by their last arc n: */
static const char *const id_at_names[] = {[0x03] = "CN",
                                          [0x04] = "SN",
                                          [0x05] = "serialNumber",
                                          [0x06] = "C",
                                          [0x07] = "L",
                                          [0x08] = "ST",
                                          [0x09] = "street",
                                          [0x0a] = "O",
                                          [0x0b] = "OU",
                                          [0x0c] = "title",
                                          [0x0d] = "description",
                                          [0x0f] = "businessCategory",
                                          [0x11] = "postalCode",
                                          [0x2a] = "GN",
                                          [0x2b] = "initials",
                                          [0x2c] = "generationQualifier",
                                          [0x2e] = "dnQualifier",
                                          [0x41] = "pseudonym",
                                          [0x61] = "organizationIdentifier"};

/* ... and the others, whole. */
static const struct {
    uint8_t len;
    uint8_t oid[11];
    const char *name;
} other_names[] = {
    {10, {0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19}, "DC"},
    {10, {0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01}, "UID"},
    {9, {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01}, "emailAddress"},
    {11, {0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x3c, 0x02, 0x01, 0x01}, "jurisdictionL"},
    {11, {0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x3c, 0x02, 0x01, 0x02}, "jurisdictionST"},
    {11, {0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x3c, 0x02, 0x01, 0x03}, "jurisdictionC"},
};

static const uint8_t oid_cn[] = {0x55, 0x04, 0x03};

/* Appends OID contents t in dotted-decimal form. Arcs past 64 bits and
 * non-minimal arcs are malformed. */
static int put_dotted_oid(struct px_buf *b, const struct px_asn1_tlv *t)
{
    unsigned long long arc = 0;
    int first = 1, fresh = 1;
    for (size_t i = 0; i < t->len; i++) {
        uint8_t c = t->val[i];
        if (fresh && c == 0x80)
            return PX_ERR_INVAL;
        if (arc > (~0ULL >> 7))
            return PX_ERR_INVAL;
        arc = arc << 7 | (c & 0x7f);
        fresh = 0;
        if (c & 0x80)
            continue;
        int rc;
        if (first) {
            unsigned long long a = arc < 40 ? 0 : arc < 80 ? 1 : 2;
            rc = px_buf_appendf(b, "%llu.%llu", a, arc - 40 * a);
            first = 0;
        } else {
            rc = px_buf_appendf(b, ".%llu", arc);
        }
        if (rc < 0)
            return rc;
        arc = 0;
        fresh = 1;
    }
    return fresh && !first ? 0 : PX_ERR_INVAL; /* empty, or the last arc unfinished */
}

static int put_cp(struct px_buf *b, uint32_t cp)
{
    uint8_t u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (uint8_t)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (uint8_t)(0xc0 | cp >> 6);
        u[1] = (uint8_t)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (uint8_t)(0xe0 | cp >> 12);
        u[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
        u[2] = (uint8_t)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (uint8_t)(0xf0 | cp >> 18);
        u[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3f));
        u[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
        u[3] = (uint8_t)(0x80 | (cp & 0x3f));
        n = 4;
    }
    return px_buf_append(b, u, n);
}

/* The value of a string-typed attribute as UTF-8 into u8. Returns 0, 1 when
 * the value is not a character string we can convert (the caller writes it
 * as #hex instead), or PX_ERR_NOMEM. UTF8String bytes are taken as they are:
 * whatever they hold, every byte past 0x7e is escaped later. */
static int value_utf8(const struct px_asn1_tlv *v, struct px_buf *u8)
{
    switch (v->tag) {
    case PX_ASN1_UTF8_STRING:
    case PX_ASN1_PRINTABLE_STRING:
    case PX_ASN1_IA5_STRING:
    case PX_ASN1_NUMERIC_STRING:
    case PX_ASN1_VISIBLE_STRING:
        return px_buf_append(u8, v->val, v->len);
    case PX_ASN1_T61_STRING: /* read as Latin-1, as OpenSSL does */
        for (size_t i = 0; i < v->len; i++)
            if (put_cp(u8, v->val[i]) < 0)
                return PX_ERR_NOMEM;
        return 0;
    case PX_ASN1_BMP_STRING:
        if (v->len % 2)
            return 1;
        for (size_t i = 0; i < v->len; i += 2) {
            uint32_t cp = (uint32_t)v->val[i] << 8 | v->val[i + 1];
            if (cp >= 0xd800 && cp <= 0xdbff && i + 3 < v->len) {
                uint32_t lo = (uint32_t)v->val[i + 2] << 8 | v->val[i + 3];
                if (lo >= 0xdc00 && lo <= 0xdfff) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    i += 2;
                }
            }
            if (cp >= 0xd800 && cp <= 0xdfff)
                return 1; /* an unpaired surrogate */
            if (put_cp(u8, cp) < 0)
                return PX_ERR_NOMEM;
        }
        return 0;
    case PX_ASN1_UNIVERSAL_STRING:
        if (v->len % 4)
            return 1;
        for (size_t i = 0; i < v->len; i += 4) {
            uint32_t cp = (uint32_t)v->val[i] << 24 | (uint32_t)v->val[i + 1] << 16 |
                          (uint32_t)v->val[i + 2] << 8 | v->val[i + 3];
            if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return 1;
            if (put_cp(u8, cp) < 0)
                return PX_ERR_NOMEM;
        }
        return 0;
    default:
        return 1;
    }
}

static int put_hex_escape(struct px_buf *b, uint8_t c)
{
    char e[3] = {'\\', hexdig_uc[c >> 4], hexdig_uc[c & 15]};
    return px_buf_append(b, e, 3);
}

/* Appends text p/n escaped. Every byte outside 0x20-0x7e becomes \XX, so the
 * result is printable ASCII. dn adds RFC 4514 2.4's escapes for a value in
 * a DN (the specials, a leading space or '#', a trailing space); otherwise
 * only '\' itself is escaped (\5C), so the text still reads back exactly. */
static int put_escaped(struct px_buf *b, const uint8_t *p, size_t n, int dn)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        int rc;
        if (c < 0x20 || c > 0x7e || (!dn && c == '\\'))
            rc = put_hex_escape(b, c);
        else if (dn && (strchr(",+\"\\<>;", c) || (i == 0 && (c == ' ' || c == '#')) ||
                        (i == n - 1 && c == ' ')))
            rc = px_buf_append(b, (char[]){'\\', (char)c}, 2);
        else
            rc = px_buf_append(b, &c, 1);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* An attribute value: the converted string, escaped; or, for a value that is
 * not a known character string or whose type has no name (hex set), '#' and
 * the hex of its whole DER (RFC 4514 2.4). */
static int put_value(struct px_buf *b, const struct px_asn1_tlv *v, int dn, int hex)
{
    struct px_buf u8;
    px_buf_init(&u8);
    px_buf_set_min_cap(&u8, 256);
    int rc = hex ? 1 : value_utf8(v, &u8);
    if (rc == 0) {
        rc = put_escaped(b, px_buf_head(&u8), px_buf_len(&u8), dn);
    } else if (rc == 1) {
        rc = px_buf_append(b, "#", 1);
        for (size_t i = 0; rc == 0 && i < v->tlv_len; i++)
            rc =
                px_buf_append(b, (char[]){hexdig_uc[v->tlv[i] >> 4], hexdig_uc[v->tlv[i] & 15]}, 2);
    }
    px_buf_cleanup(&u8);
    return rc;
}

struct ava {
    struct px_asn1_tlv type, value;
    size_t rdn; /* index of the RDN it belongs to */
};

/* Reads Name name (its contents) into a malloc'd array of its attributes in
 * DER order. Returns 0 (*out NULL when there are none), PX_ERR_INVAL or
 * PX_ERR_NOMEM. */
static int name_avas(const struct px_asn1_tlv *name, struct ava **out, size_t *n_out)
{
    struct ava *avas = NULL;
    size_t n = 0;
    *out = NULL;
    *n_out = 0;
    for (int pass = 0; pass < 2; pass++) {
        struct px_asn1 r = px_asn1_inside(name);
        size_t k = 0, rdn = 0;
        while (!px_asn1_done(&r)) {
            struct px_asn1_tlv set, seq;
            if (px_asn1_expect(&r, PX_ASN1_SET, &set) < 0 || set.len == 0)
                goto out_inval;
            struct px_asn1 s = px_asn1_inside(&set);
            while (!px_asn1_done(&s)) {
                struct px_asn1_tlv type, value;
                if (px_asn1_expect(&s, PX_ASN1_SEQUENCE, &seq) < 0)
                    goto out_inval;
                struct px_asn1 a = px_asn1_inside(&seq);
                if (px_asn1_expect(&a, PX_ASN1_OID, &type) < 0 || type.len == 0 ||
                    px_asn1_next(&a, &value) < 0 || !px_asn1_done(&a))
                    goto out_inval;
                if (pass == 1) {
                    avas[k].type = type;
                    avas[k].value = value;
                    avas[k].rdn = rdn;
                }
                k++;
            }
            rdn++;
        }
        if (pass == 0) {
            if (k == 0)
                return 0;
            avas = calloc(k, sizeof(*avas));
            if (!avas)
                return PX_ERR_NOMEM;
            n = k;
        }
    }
    *out = avas;
    *n_out = n;
    return 0;
out_inval:
    free(avas);
    return PX_ERR_INVAL;
}

static const char *attr_short_name(const struct px_asn1_tlv *type)
{
    const uint8_t *v = type->val;
    if (type->tag == PX_ASN1_OID && type->len == 3 && v[0] == 0x55 && v[1] == 0x04)
        return v[2] < sizeof(id_at_names) / sizeof(id_at_names[0]) ? id_at_names[v[2]] : NULL;
    for (size_t i = 0; i < sizeof(other_names) / sizeof(other_names[0]); i++)
        if (px_asn1_oid_is(type, other_names[i].oid, other_names[i].len))
            return other_names[i].name;
    return NULL;
}

/* Writes Name name as an RFC 4514 string (most specific RDN first, and the
 * attributes of a multi-valued RDN in reverse too, as OpenSSL prints them)
 * into *dn, and its most specific CN into *cn if cn is not NULL. */
static int name_strings(const struct px_asn1_tlv *name, char **dn, char **cn)
{
    struct ava *avas;
    size_t n;
    int rc = name_avas(name, &avas, &n);
    if (rc < 0)
        return rc;
    struct px_buf b, c;
    px_buf_init(&b);
    px_buf_init(&c);
    px_buf_set_min_cap(&b, 256);
    px_buf_set_min_cap(&c, 64);
    int have_cn = 0;
    for (size_t i = n; rc == 0 && i > 0; i--) {
        const struct ava *a = &avas[i - 1];
        if (i < n)
            rc = px_buf_append(&b, avas[i].rdn == a->rdn ? "+" : ",", 1);
        const char *sn = attr_short_name(&a->type);
        if (rc == 0)
            rc = sn ? px_buf_append_str(&b, sn) : put_dotted_oid(&b, &a->type);
        if (rc == 0)
            rc = px_buf_append(&b, "=", 1);
        if (rc == 0)
            rc = put_value(&b, &a->value, 1, sn == NULL);
        if (rc == 0 && cn && !have_cn && px_asn1_oid_is(&a->type, oid_cn, sizeof(oid_cn))) {
            have_cn = 1;
            rc = put_value(&c, &a->value, 0, 0);
        }
    }
    free(avas);
    if (rc == 0) {
        *dn = buf_take(&b);
        if (!*dn)
            rc = PX_ERR_NOMEM;
    }
    if (rc == 0 && cn) {
        *cn = buf_take(&c);
        if (!*cn) {
            free(*dn);
            *dn = NULL;
            rc = PX_ERR_NOMEM;
        }
    }
    px_buf_cleanup(&b);
    px_buf_cleanup(&c);
    return rc;
}

/* ---- certificates ---- */

static char *serial_hex(const struct px_asn1_tlv *s)
{
    size_t i = 0;
    while (i + 1 < s->len && s->val[i] == 0)
        i++;
    size_t n = s->len - i;
    char *h = malloc(2 * n + 1);
    if (!h)
        return NULL;
    for (size_t k = 0; k < n; k++) {
        h[2 * k] = hexdig_lc[s->val[i + k] >> 4];
        h[2 * k + 1] = hexdig_lc[s->val[i + k] & 15];
    }
    h[2 * n] = '\0';
    return h;
}

/* wolfSSL reads it too: what it cannot parse is no certificate to us either
 * (its TLS stack would refuse it), and it answers basicConstraints. */
static int wolf_parse(const uint8_t *der, size_t len, int *is_ca)
{
    struct DecodedCert *dc = malloc(sizeof(*dc));
    if (!dc)
        return PX_ERR_NOMEM;
    wc_InitDecodedCert(dc, der, (word32)len, NULL);
    int rc = wc_ParseCert(dc, CERT_TYPE, NO_VERIFY, NULL) == 0 ? 0 : PX_ERR_INVAL;
    if (rc == 0)
        *is_ca = dc->isCA ? 1 : 0;
    wc_FreeDecodedCert(dc);
    free(dc);
    return rc;
}

int px_cert_info(const uint8_t *der, size_t len, struct px_cert_info *out)
{
    struct cert_parts c;
    memset(out, 0, sizeof(*out));
    if (!der || len == 0 || len > 0xffffffffu || split_cert(der, len, &c) < 0)
        return PX_ERR_INVAL;
    int rc;
    if ((rc = parse_time(&c.not_before, &out->not_before)) < 0 ||
        (rc = parse_time(&c.not_after, &out->not_after)) < 0)
        goto out_err;
    if ((rc = wolf_parse(der, len, &out->is_ca)) < 0)
        goto out_err;
    if ((rc = name_strings(&c.subject, &out->subject, &out->common_name)) < 0 ||
        (rc = name_strings(&c.issuer, &out->issuer, NULL)) < 0)
        goto out_err;
    rc = PX_ERR_NOMEM;
    if (!(out->serial = serial_hex(&c.serial)))
        goto out_err;
    rc = PX_ERR_CRYPTO;
    if (wc_Sha256Hash(der, (word32)len, out->sha256) != 0)
        goto out_err;
    for (int i = 0; i < 32; i++) {
        out->sha256_hex[2 * i] = hexdig_lc[out->sha256[i] >> 4];
        out->sha256_hex[2 * i + 1] = hexdig_lc[out->sha256[i] & 15];
    }
    out->sha256_hex[64] = '\0';
    return 0;
out_err:
    px_cert_info_cleanup(out);
    return rc;
}

void px_cert_info_cleanup(struct px_cert_info *ci)
{
    free(ci->subject);
    free(ci->issuer);
    free(ci->common_name);
    free(ci->serial);
    memset(ci, 0, sizeof(*ci));
}

/* ---- PEM ---- */

static const char *find(const char *hay, size_t n, const char *needle)
{
    return memmem(hay, n, needle, strlen(needle));
}

/* Finds the next block between begin and end markers at or after *pos.
 * Returns 1 with its base64 body, 0 when there is none, PX_ERR_INVAL for a
 * block that never ends. */
static int pem_block(const char *pem, size_t len, size_t *pos, const char *begin, const char *end,
                     const char **body, size_t *body_len)
{
    const char *b = find(pem + *pos, len - *pos, begin);
    if (!b)
        return 0;
    const char *s = b + strlen(begin);
    const char *e = find(s, (size_t)(pem + len - s), end);
    if (!e)
        return PX_ERR_INVAL;
    *body = s;
    *body_len = (size_t)(e - s);
    *pos = (size_t)(e - pem) + strlen(end);
    return 1;
}

/* Decodes a PEM body: standard base64 with line breaks; nothing else (no
 * RFC 1421 headers in a certificate). Returns 0, PX_ERR_INVAL or PX_ERR_NOMEM. */
static int pem_decode(const char *s, size_t n, uint8_t **der, size_t *der_len)
{
    char *compact = malloc(n + 1);
    if (!compact)
        return PX_ERR_NOMEM;
    size_t k = 0;
    int rc = PX_ERR_INVAL;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
            continue;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/' || c == '='))
            goto out;
        compact[k++] = c;
    }
    if (k == 0 || k % 4 != 0)
        goto out;
    rc = px_b64_decode(compact, k, der, der_len);
    if (rc == 0 && *der_len == 0) {
        free(*der);
        rc = PX_ERR_INVAL;
    }
out:
    free(compact);
    return rc;
}

void px_der_free(struct px_der *d, size_t n)
{
    if (!d)
        return;
    for (size_t i = 0; i < n; i++)
        free(d[i].der);
    free(d);
}

int px_cert_pem_split(const char *pem, size_t len, struct px_der **out, size_t *n_out)
{
    struct px_der *v = NULL;
    size_t n = 0, cap = 0, pos = 0;
    int rc;
    if (!pem)
        return PX_ERR_INVAL;
    for (;;) {
        const char *body;
        size_t body_len;
        rc = pem_block(pem, len, &pos, PEM_CERT_BEGIN, PEM_CERT_END, &body, &body_len);
        if (rc <= 0)
            break;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 4;
            struct px_der *nv = realloc(v, nc * sizeof(*v));
            if (!nv) {
                rc = PX_ERR_NOMEM;
                break;
            }
            v = nv;
            cap = nc;
        }
        rc = pem_decode(body, body_len, &v[n].der, &v[n].len);
        if (rc < 0)
            break;
        n++;
    }
    if (rc == 0 && n == 0)
        rc = PX_ERR_INVAL;
    if (rc < 0) {
        px_der_free(v, n);
        return rc;
    }
    *out = v;
    *n_out = n;
    return 0;
}

/* A PEM block "-----BEGIN label-----" for der, in 64-column lines. Returns a
 * malloc'd string or NULL. */
static char *pem_encode(const char *label, const uint8_t *der, size_t len)
{
    if (!der && len)
        return NULL;
    char *b64 = px_b64_encode(der, len, 0);
    if (!b64)
        return NULL;
    size_t n = strlen(b64);
    struct px_buf b;
    px_buf_init(&b);
    int rc = px_buf_appendf(&b, "-----BEGIN %s-----\n", label);
    for (size_t i = 0; rc == 0 && i < n; i += 64) {
        rc = px_buf_append(&b, b64 + i, n - i < 64 ? n - i : 64);
        if (rc == 0)
            rc = px_buf_append(&b, "\n", 1);
    }
    if (rc == 0)
        rc = px_buf_appendf(&b, "-----END %s-----\n", label);
    free(b64);
    if (rc < 0) {
        px_buf_cleanup(&b);
        return NULL;
    }
    return buf_take(&b);
}

char *px_cert_der_to_pem(const uint8_t *der, size_t len)
{
    return pem_encode("CERTIFICATE", der, len);
}

char *px_cert_sf_binary(const uint8_t *der, size_t len)
{
    if (!der && len)
        return NULL;
    char *b64 = px_b64_encode(der, len, 0);
    if (!b64)
        return NULL;
    size_t n = strlen(b64);
    char *s = malloc(n + 3);
    if (s) {
        s[0] = ':';
        memcpy(s + 1, b64, n);
        s[n + 1] = ':';
        s[n + 2] = '\0';
    }
    free(b64);
    return s;
}

/* ---- certificate requests ---- */

static const uint8_t oid_ec_public_key[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01};
static const uint8_t oid_p256[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const uint8_t oid_ecdsa_sha256[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
static const uint8_t oid_ecdsa_sha384[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03};
static const uint8_t oid_ecdsa_sha512[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04};

struct csr_parts {
    struct px_asn1_tlv info, subject, spki, sig_alg, sig;
};

/* PKCS#10 (RFC 2986): CertificationRequest ::= SEQUENCE {
 *   certificationRequestInfo SEQUENCE { version INTEGER (0), subject Name,
 *     subjectPKInfo SubjectPublicKeyInfo, attributes [0] IMPLICIT SET },
 *   signatureAlgorithm AlgorithmIdentifier, signature BIT STRING } */
static int split_csr(const uint8_t *der, size_t len, struct csr_parts *c)
{
    struct px_asn1 r = px_asn1_reader(der, len), info;
    struct px_asn1_tlv req, v, attrs;
    if (px_asn1_expect(&r, PX_ASN1_SEQUENCE, &req) < 0 || !px_asn1_done(&r))
        return PX_ERR_INVAL;
    r = px_asn1_inside(&req);
    if (px_asn1_expect(&r, PX_ASN1_SEQUENCE, &c->info) < 0 ||
        px_asn1_expect(&r, PX_ASN1_SEQUENCE, &c->sig_alg) < 0 ||
        px_asn1_expect(&r, PX_ASN1_BIT_STRING, &c->sig) < 0 || !px_asn1_done(&r))
        return PX_ERR_INVAL;
    info = px_asn1_inside(&c->info);
    if (px_asn1_expect(&info, PX_ASN1_INTEGER, &v) < 0 || v.len != 1 || v.val[0] != 0 ||
        px_asn1_expect(&info, PX_ASN1_SEQUENCE, &c->subject) < 0 ||
        px_asn1_expect(&info, PX_ASN1_SEQUENCE, &c->spki) < 0)
        return PX_ERR_INVAL;
    /* The attributes are required, but some encoders leave an empty set out. */
    if (px_asn1_peek(&info, PX_ASN1_CTX_CONS(0)) &&
        px_asn1_expect(&info, PX_ASN1_CTX_CONS(0), &attrs) < 0)
        return PX_ERR_INVAL;
    return px_asn1_done(&info) ? 0 : PX_ERR_INVAL;
}

/* Which digest the signature algorithm names (ECDSA with SHA-2 only), and
 * its hash of what was signed. Returns the digest length, or PX_ERR_INVAL. */
static int csr_digest(const struct csr_parts *c, uint8_t hash[WC_SHA512_DIGEST_SIZE])
{
    struct px_asn1 r = px_asn1_inside(&c->sig_alg);
    struct px_asn1_tlv oid, params;
    if (px_asn1_expect(&r, PX_ASN1_OID, &oid) < 0)
        return PX_ERR_INVAL;
    /* RFC 5758: no parameters; tolerate the NULL some encoders add. */
    if (!px_asn1_done(&r) &&
        (px_asn1_expect(&r, PX_ASN1_NULL, &params) < 0 || params.len != 0 || !px_asn1_done(&r)))
        return PX_ERR_INVAL;
    int rc;
    word32 n = (word32)c->info.tlv_len;
    if (px_asn1_oid_is(&oid, oid_ecdsa_sha256, sizeof(oid_ecdsa_sha256)))
        rc = wc_Sha256Hash(c->info.tlv, n, hash) == 0 ? WC_SHA256_DIGEST_SIZE : PX_ERR_CRYPTO;
    else if (px_asn1_oid_is(&oid, oid_ecdsa_sha384, sizeof(oid_ecdsa_sha384)))
        rc = wc_Sha384Hash(c->info.tlv, n, hash) == 0 ? WC_SHA384_DIGEST_SIZE : PX_ERR_CRYPTO;
    else if (px_asn1_oid_is(&oid, oid_ecdsa_sha512, sizeof(oid_ecdsa_sha512)))
        rc = wc_Sha512Hash(c->info.tlv, n, hash) == 0 ? WC_SHA512_DIGEST_SIZE : PX_ERR_CRYPTO;
    else
        rc = PX_ERR_INVAL;
    return rc;
}

/* Whether the key is EC P-256, the only kind px_pki issues for. */
static int spki_is_p256(const struct px_asn1_tlv *spki)
{
    struct px_asn1 r = px_asn1_inside(spki), a;
    struct px_asn1_tlv alg, oid, curve, bits;
    if (px_asn1_expect(&r, PX_ASN1_SEQUENCE, &alg) < 0 ||
        px_asn1_expect(&r, PX_ASN1_BIT_STRING, &bits) < 0 || !px_asn1_done(&r))
        return PX_ERR_INVAL;
    a = px_asn1_inside(&alg);
    if (px_asn1_expect(&a, PX_ASN1_OID, &oid) < 0)
        return PX_ERR_INVAL;
    if (!px_asn1_oid_is(&oid, oid_ec_public_key, sizeof(oid_ec_public_key)))
        return PX_ERR_CRYPTO; /* RSA, Ed25519, ...: a key px_pki cannot issue for */
    if (px_asn1_expect(&a, PX_ASN1_OID, &curve) < 0 || !px_asn1_done(&a))
        return PX_ERR_CRYPTO; /* explicit curve parameters */
    return px_asn1_oid_is(&curve, oid_p256, sizeof(oid_p256)) ? 0 : PX_ERR_CRYPTO;
}

static char *pub_pem(ecc_key *key)
{
    uint8_t der[256];
    int n = wc_EccPublicKeyToDer(key, der, sizeof(der), 1);
    return n > 0 ? pem_encode("PUBLIC KEY", der, (size_t)n) : NULL;
}

int px_cert_csr_read(const char *csr_pem, size_t len, char **pub_pem_out, char **common_name)
{
    static const struct {
        const char *begin, *end;
    } labels[] = {
        {"-----BEGIN CERTIFICATE REQUEST-----", "-----END CERTIFICATE REQUEST-----"},
        {"-----BEGIN NEW CERTIFICATE REQUEST-----", "-----END NEW CERTIFICATE REQUEST-----"},
    };
    const char *body = NULL;
    size_t body_len = 0;
    int rc = 0;
    if (!csr_pem)
        return PX_ERR_INVAL;
    for (size_t i = 0; rc == 0 && i < sizeof(labels) / sizeof(labels[0]); i++) {
        size_t pos = 0;
        rc = pem_block(csr_pem, len, &pos, labels[i].begin, labels[i].end, &body, &body_len);
    }
    if (rc <= 0)
        return PX_ERR_INVAL;
    uint8_t *der;
    size_t der_len;
    rc = pem_decode(body, body_len, &der, &der_len);
    if (rc < 0)
        return rc;
    struct csr_parts c;
    uint8_t hash[WC_SHA512_DIGEST_SIZE];
    char *dn = NULL, *cn = NULL, *pem = NULL;
    ecc_key key;
    int hash_len;
    if ((rc = split_csr(der, der_len, &c)) < 0 || (rc = spki_is_p256(&c.spki)) < 0 ||
        (rc = hash_len = csr_digest(&c, hash)) < 0)
        goto out_der;
    /* The signature: a BIT STRING with no unused bits around an ECDSA-Sig-Value. */
    rc = PX_ERR_INVAL;
    if (c.sig.len < 2 || c.sig.val[0] != 0)
        goto out_der;
    rc = PX_ERR_CRYPTO;
    if (wc_ecc_init(&key) != 0)
        goto out_der;
    word32 idx = 0;
    int ok = 0;
    rc = PX_ERR_INVAL;
    if (wc_EccPublicKeyDecode(c.spki.tlv, &idx, &key, (word32)c.spki.tlv_len) != 0 ||
        idx != c.spki.tlv_len || wc_ecc_check_key(&key) != 0)
        goto out_key;
    if (wc_ecc_verify_hash(c.sig.val + 1, (word32)c.sig.len - 1, hash, (word32)hash_len, &ok,
                           &key) != 0 ||
        ok != 1)
        goto out_key; /* a bad signature: whoever made it does not hold the key */
    if ((rc = name_strings(&c.subject, &dn, &cn)) < 0)
        goto out_key;
    rc = PX_ERR_NOMEM;
    if (!(pem = pub_pem(&key)))
        goto out_key;
    *pub_pem_out = pem;
    *common_name = cn;
    cn = NULL;
    rc = 0;
out_key:
    wc_ecc_free(&key);
out_der:
    free(dn);
    free(cn);
    free(der);
    return rc;
}
