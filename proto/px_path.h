/* px_path: normalises a request target's path before routing, so the rule
 * matcher and the origin see the same path (no "/public/../secret" that a
 * prefix rule accepts and the origin resolves elsewhere). I/O-free. */
#ifndef PX_PATH_H
#define PX_PATH_H

#include <stddef.h>

/* Why a target was refused (answer 400). */
enum px_path_error {
    PX_PATH_OK = 0,
    PX_PATH_NOT_ABSOLUTE,      /* the path does not start with '/' */
    PX_PATH_BAD_ESCAPE,        /* '%' not followed by two hex digits */
    PX_PATH_ENCODED_SEPARATOR, /* %2F or %5C: a '/' or '\' the matcher cannot see */
    PX_PATH_NUL,               /* a NUL byte, raw or %00 */
    PX_PATH_BAD_CHAR,          /* a raw control byte or space anywhere, or '#' or '\' in the path */
};

/* Normalises target (len bytes: path, then optionally '?' and a query):
 *  - percent-escapes of unreserved characters (ALPHA DIGIT - . _ ~) are
 *    decoded, the others are kept with upper-case hex digits;
 *  - runs of '/' become one '/' (origins such as nginx merge them too);
 *  - dot segments are removed (RFC 3986 5.2.4), encoded dots included;
 *    ".." never climbs above "/"; a path ending in "/", "/." or "/.." keeps
 *    its trailing '/'.
 * The query (from the first '?') is appended unchanged. The result is
 * idempotent: normalising it again gives the same string.
 * Returns 0 and *out (malloc'd, NUL-terminated; the caller frees) with
 * *out_len (may be NULL); PX_ERR_INVAL with *why (may be NULL) saying which
 * rule refused it; or PX_ERR_NOMEM. *out is NULL on error. */
int px_path_normalize(const char *target, size_t len, char **out, size_t *out_len,
                      enum px_path_error *why);

/* A short static description of why (for error pages and logs; never NULL). */
const char *px_path_strerror(enum px_path_error why);

#endif
