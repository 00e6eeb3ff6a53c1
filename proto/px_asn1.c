#include "px_asn1.h"
#include "px_buf.h"
#include "px_err.h"

#include <string.h>

int px_asn1_next(struct px_asn1 *r, struct px_asn1_tlv *t)
{
    const uint8_t *p = r->p;
    size_t n = r->len;
    if (n < 2)
        return PX_ERR_INVAL;
    uint8_t tag = p[0];
    if ((tag & 0x1f) == 0x1f) /* multi-byte tag numbers: never in what we read */
        return PX_ERR_INVAL;
    size_t hdr = 2, len = p[1];
    if (len & 0x80) {
        size_t nb = len & 0x7f;
        /* 0x80 is BER's indefinite length; DER also wants the shortest form. */
        if (nb == 0 || nb > 4 || n - 2 < nb || p[2] == 0)
            return PX_ERR_INVAL;
        len = 0;
        for (size_t i = 0; i < nb; i++)
            len = len << 8 | p[2 + i];
        if (len < 0x80)
            return PX_ERR_INVAL;
        hdr += nb;
    }
    if (len > n - hdr)
        return PX_ERR_INVAL;
    t->tag = tag;
    t->tlv = p;
    t->tlv_len = hdr + len;
    t->val = p + hdr;
    t->len = len;
    r->p += hdr + len;
    r->len -= hdr + len;
    return 0;
}

int px_asn1_expect(struct px_asn1 *r, uint8_t tag, struct px_asn1_tlv *t)
{
    struct px_asn1 save = *r;
    int rc = px_asn1_next(r, t);
    if (rc < 0)
        return rc;
    if (t->tag != tag) {
        *r = save;
        return PX_ERR_INVAL;
    }
    return 0;
}

int px_asn1_peek(const struct px_asn1 *r, uint8_t tag)
{
    return r->len > 0 && r->p[0] == tag;
}

int px_asn1_oid_is(const struct px_asn1_tlv *t, const uint8_t *oid, size_t oid_len)
{
    return t->tag == PX_ASN1_OID && t->len == oid_len && memcmp(t->val, oid, oid_len) == 0;
}

static int put_header(struct px_buf *b, uint8_t tag, size_t len)
{
    uint8_t h[6];
    size_t n = 0;
    h[n++] = tag;
    if (len < 0x80) {
        h[n++] = (uint8_t)len;
    } else {
        size_t nb = len > 0xffffff ? 4 : len > 0xffff ? 3 : len > 0xff ? 2 : 1;
        if (len > 0xffffffffu)
            return PX_ERR_TOO_LARGE;
        h[n++] = (uint8_t)(0x80 | nb);
        for (size_t i = nb; i > 0; i--)
            h[n++] = (uint8_t)(len >> (8 * (i - 1)));
    }
    return px_buf_append(b, h, n);
}

int px_asn1_put(struct px_buf *b, uint8_t tag, const void *val, size_t len)
{
    size_t before = px_buf_len(b);
    int rc = put_header(b, tag, len);
    if (rc == 0)
        rc = px_buf_append(b, val, len);
    if (rc < 0)
        b->len = before; /* nothing half-written */
    return rc;
}

int px_asn1_put_buf(struct px_buf *b, uint8_t tag, const struct px_buf *inner)
{
    return px_asn1_put(b, tag, px_buf_head(inner), px_buf_len(inner));
}

int px_asn1_put_uint(struct px_buf *b, uint32_t v)
{
    uint8_t c[5];
    size_t n = 0;
    int started = 0;
    for (int shift = 24; shift >= 0; shift -= 8) {
        uint8_t byte = (uint8_t)(v >> shift);
        if (!started && byte == 0 && shift > 0)
            continue;
        if (!started && (byte & 0x80))
            c[n++] = 0; /* keep it positive */
        started = 1;
        c[n++] = byte;
    }
    return px_asn1_put(b, PX_ASN1_INTEGER, c, n);
}
