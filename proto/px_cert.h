/* px_cert: reading X.509 certificates and certificate requests: the details
 * the edge checks a client certificate by and forwards to origins. I/O-free.
 * Every string this module returns is printable ASCII (0x20-0x7e), so it is
 * safe to put in an HTTP header or a log line whatever the certificate holds. */
#ifndef PX_CERT_H
#define PX_CERT_H

#include <stddef.h>
#include <stdint.h>

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
 * type px_pki cannot issue for, or PX_ERR_NOMEM. Caller frees both. */
int px_cert_csr_read(const char *csr_pem, size_t len, char **pub_pem, char **common_name);

#endif
