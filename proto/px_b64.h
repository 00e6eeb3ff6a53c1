/* px_b64: base64 (RFC 4648 section 4) and base64url (section 5) codecs. */
#ifndef PX_B64_H
#define PX_B64_H

#include <stddef.h>
#include <stdint.h>

/* Encodes n bytes into out (NUL-terminated). url selects base64url without
 * padding. Returns a malloc'd string owned by the caller, or NULL. */
char *px_b64_encode(const uint8_t *in, size_t n, int url);
/* Decodes s (either alphabet, padding optional; whitespace rejected).
 * On success returns 0 with *out malloc'd (caller frees) and *outlen set.
 * Returns PX_ERR_INVAL on a bad character or impossible length, PX_ERR_NOMEM. */
int px_b64_decode(const char *s, size_t slen, uint8_t **out, size_t *outlen);

#endif
