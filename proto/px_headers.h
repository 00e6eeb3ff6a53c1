/* px_headers: which HTTP header fields may cross a proxy hop. */
#ifndef PX_HEADERS_H
#define PX_HEADERS_H

#include <stddef.h>

/* Returns 1 for connection-specific (hop-by-hop) fields that must not be
 * forwarded: Connection, Keep-Alive, Proxy-Connection, Transfer-Encoding,
 * Upgrade, TE, Proxy-Authenticate, Proxy-Authorization, HTTP2-Settings and
 * HTTP/2 pseudo headers. Name comparison is case-insensitive. */
int px_hdr_is_hop_by_hop(const char *name, size_t len);
/* Returns 1 for fields only the edge may set (X-Forwarded-Proto, X-Request-Id,
 * X-Real-IP, Tunnel-*): a client's copies are dropped, never trusted. */
int px_hdr_is_edge_metadata(const char *name, size_t len);
/* Returns 1 if name appears as a token in a Connection header value (those
 * fields are hop-by-hop too). */
int px_hdr_listed_in_connection(const char *conn_value, size_t vlen, const char *name, size_t nlen);
/* Returns 1 if name/value are acceptable to forward: a token name and a value
 * without CR, LF or NUL. */
int px_hdr_valid(const char *name, size_t nlen, const char *value, size_t vlen);

#endif
