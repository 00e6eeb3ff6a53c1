/* px_cert: reading X.509 certificates and certificate requests: the details
 * the edge checks a client certificate by and forwards to origins. I/O-free.
 * Every string this module returns is printable ASCII (0x20-0x7e), so it is
 * safe to put in an HTTP header or a log line whatever the certificate holds. */
#ifndef PX_CERT_H
#define PX_CERT_H

#include <stddef.h>
#include <stdint.h>

/* subject and issuer are what `openssl x509 -nameopt RFC2253` prints: RDNs
 * most specific first, a multi-valued RDN's attributes joined by '+', RFC 4514
 * 2.4 escapes (\, \+ \" \\ \< \> \; a leading "\ " or "\#", a trailing "\ "),
 * every byte outside 0x20-0x7e as \XX (so U+00E9 in UTF-8 is \C3\A9, CR LF is
 * \0D\0A, NUL is \00), and an attribute type without a short name as its
 * dotted OID with the value's DER in hex ("1.2.3.4=#0C03616263").
 * common_name is the first CN of subject (the most specific), unescaped but
 * for bytes outside 0x20-0x7e and '\' itself, which are \XX ("\5C"). */
struct px_cert_info {
    char *subject;        /* RFC 4514 string, most specific first ("CN=phone,O=Home") */
    char *issuer;         /* the same for the issuer */
    char *common_name;    /* the subject's first CN, or "" */
    char *serial;         /* lower-case hex, no separators, no leading zero bytes */
    uint8_t sha256[32];   /* SHA-256 of the DER certificate */
    char sha256_hex[65];  /* the same, lower-case hex */
    long long not_before; /* seconds since the epoch, UTC */
    long long not_after;
    int is_ca; /* basicConstraints CA:TRUE */
};

/* One DER certificate (owned). */
struct px_der {
    uint8_t *der;
    size_t len;
};

/* Parses DER certificate der/len. Returns 0 and fills *out (release with
 * px_cert_info_cleanup), PX_ERR_INVAL for a malformed certificate, or
 * PX_ERR_NOMEM. Nothing is verified: this only reads. */
int px_cert_info(const uint8_t *der, size_t len, struct px_cert_info *out);
void px_cert_info_cleanup(struct px_cert_info *ci);
/* Finds the SubjectPublicKeyInfo (the whole DER element) of DER certificate
 * der/len: *spki points into der. Returns 0 or PX_ERR_INVAL. (An addition to
 * the issue 8 interface: px_pki_pkcs12 checks the key matches the
 * certificate with it.) */
int px_cert_spki(const uint8_t *der, size_t len, const uint8_t **spki, size_t *spki_len);

/* Splits PEM text (one or more "CERTIFICATE" blocks; other blocks and text
 * between them are skipped) into DER certificates. Returns 0 with *out a
 * malloc'd array of *n >= 1 entries (free with px_der_free), PX_ERR_INVAL if
 * it holds no certificate or a block does not decode, PX_ERR_NOMEM. */
int px_cert_pem_split(const char *pem, size_t len, struct px_der **out, size_t *n);
void px_der_free(struct px_der *d, size_t n);
/* PEM "CERTIFICATE" block for der. Returns a malloc'd string or NULL. */
char *px_cert_der_to_pem(const uint8_t *der, size_t len);

/* An RFC 8941 byte sequence (":base64:"), the form RFC 9440's Client-Cert
 * and each member of Client-Cert-Chain take. Returns malloc'd text or NULL. */
char *px_cert_sf_binary(const uint8_t *der, size_t len);
/* Formats t (seconds since the epoch) as RFC 3339 UTC ("2026-12-01T09:30:00Z")
 * into out[21]. */
void px_cert_time(long long t, char out[21]);

/* Reads a PKCS#10 request (PEM "CERTIFICATE REQUEST"): checks its
 * self-signature and returns its public key as PEM ("PUBLIC KEY", for
 * px_pki_issue) and the subject CN ("" if none). Returns 0, PX_ERR_INVAL
 * (malformed, or the signature does not verify), PX_ERR_CRYPTO for a key
 * type px_pki cannot issue for, or PX_ERR_NOMEM. Caller frees both.
 * Only the first request block is read. Keys: EC P-256 (the others are
 * PX_ERR_CRYPTO); signatures: ECDSA with SHA-256, -384 or -512. The PEM
 * returned is the key re-encoded (uncompressed point, named curve); the CN
 * is escaped like px_cert_info's common_name. Outputs are untouched on error. */
int px_cert_csr_read(const char *csr_pem, size_t len, char **pub_pem, char **common_name);

#endif
