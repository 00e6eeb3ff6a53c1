/* px_asn1: just enough DER to read certificates and certificate requests and
 * to write PKCS#12: a bounds-checked reader over a byte range and a writer
 * into struct px_buf. I/O-free.
 * The reader accepts DER only: one-byte tags (tag numbers below 31),
 * definite lengths in their shortest form, at most 4 length bytes. */
#ifndef PX_ASN1_H
#define PX_ASN1_H

#include <stddef.h>
#include <stdint.h>

struct px_buf;

enum {
    PX_ASN1_INTEGER = 0x02,
    PX_ASN1_BIT_STRING = 0x03,
    PX_ASN1_OCTET_STRING = 0x04,
    PX_ASN1_NULL = 0x05,
    PX_ASN1_OID = 0x06,
    PX_ASN1_UTF8_STRING = 0x0c,
    PX_ASN1_NUMERIC_STRING = 0x12,
    PX_ASN1_PRINTABLE_STRING = 0x13,
    PX_ASN1_T61_STRING = 0x14,
    PX_ASN1_IA5_STRING = 0x16,
    PX_ASN1_UTC_TIME = 0x17,
    PX_ASN1_GENERALIZED_TIME = 0x18,
    PX_ASN1_VISIBLE_STRING = 0x1a,
    PX_ASN1_UNIVERSAL_STRING = 0x1c,
    PX_ASN1_BMP_STRING = 0x1e,
    PX_ASN1_SEQUENCE = 0x30,
    PX_ASN1_SET = 0x31,
};
/* Context-specific tags: [n] constructed (EXPLICIT) and primitive. */
#define PX_ASN1_CTX_CONS(n) ((uint8_t)(0xa0 | (n)))
#define PX_ASN1_CTX_PRIM(n) ((uint8_t)(0x80 | (n)))

/* Input not yet read (borrowed; the reader never owns bytes). */
struct px_asn1 {
    const uint8_t *p;
    size_t len;
};

/* One element: its whole encoding (tlv/tlv_len) and its contents (val/len),
 * both pointing into the reader's input. */
struct px_asn1_tlv {
    uint8_t tag;
    const uint8_t *tlv;
    size_t tlv_len;
    const uint8_t *val;
    size_t len;
};

static inline struct px_asn1 px_asn1_reader(const uint8_t *p, size_t len)
{
    struct px_asn1 r = {p, len};
    return r;
}
/* A reader over an element's contents. */
static inline struct px_asn1 px_asn1_inside(const struct px_asn1_tlv *t)
{
    return px_asn1_reader(t->val, t->len);
}
static inline int px_asn1_done(const struct px_asn1 *r)
{
    return r->len == 0;
}

/* Reads the next element. Returns 0, or PX_ERR_INVAL (no element left, a
 * malformed header, or contents running past the input); *r is unchanged on
 * error. */
int px_asn1_next(struct px_asn1 *r, struct px_asn1_tlv *t);
/* px_asn1_next, and the element must have tag. */
int px_asn1_expect(struct px_asn1 *r, uint8_t tag, struct px_asn1_tlv *t);
/* Whether the next element has tag (0 at the end of input). */
int px_asn1_peek(const struct px_asn1 *r, uint8_t tag);
/* Whether OID contents t equal the encoded arcs oid/oid_len. */
int px_asn1_oid_is(const struct px_asn1_tlv *t, const uint8_t *oid, size_t oid_len);

/* Appends tag, length and contents val/len to b. Returns 0, PX_ERR_NOMEM, or
 * PX_ERR_TOO_LARGE past 4 GiB; b is unchanged on error. */
int px_asn1_put(struct px_buf *b, uint8_t tag, const void *val, size_t len);
/* Appends tag and length of an element whose contents are the unread bytes
 * of inner, then those bytes. inner is unchanged. Returns as px_asn1_put. */
int px_asn1_put_buf(struct px_buf *b, uint8_t tag, const struct px_buf *inner);
/* Appends a non-negative INTEGER. Returns 0 or PX_ERR_NOMEM. */
int px_asn1_put_uint(struct px_buf *b, uint32_t v);

#endif
