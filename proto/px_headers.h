/* px_headers: which HTTP header fields may cross a proxy hop. */
#ifndef PX_HEADERS_H
#define PX_HEADERS_H

#include <stddef.h>

struct px_buf;

/* The most of a client's own X-Forwarded-For the edge passes on. */
#define PX_XFF_CLIENT_MAX 4096

/* Returns 1 for connection-specific (hop-by-hop) fields that must not be
 * forwarded: Connection, Keep-Alive, Proxy-Connection, Transfer-Encoding,
 * Upgrade, TE, Proxy-Authenticate, Proxy-Authorization, HTTP2-Settings and
 * HTTP/2 pseudo headers. Name comparison is case-insensitive. */
int px_hdr_is_hop_by_hop(const char *name, size_t len);
/* Returns 1 for fields only the edge may set (X-Forwarded-Proto,
 * X-Forwarded-Host, X-Forwarded-Port, X-Forwarded-Server, Forwarded,
 * X-Request-Id, X-Real-IP, Tunnel-*; the client-certificate details
 * Client-Cert, Client-Cert-Chain and X-Client-Cert-*; the identity
 * assertion Edge-Access-*): a client's copies are dropped, never trusted.
 * '_' in a name counts as '-' (CGI-style applications see X_Real_IP as
 * X-Real-IP). X-Forwarded-For is not among them: the edge appends to it;
 * only a spelling of it with '_' is. */
int px_hdr_is_edge_metadata(const char *name, size_t len);
/* Returns 1 if name appears as a token in a Connection header value (those
 * fields are hop-by-hop too). */
int px_hdr_listed_in_connection(const char *conn_value, size_t vlen, const char *name, size_t nlen);
/* Returns 1 if name/value are acceptable to forward: a token name and a value
 * without CR, LF or NUL. */
int px_hdr_valid(const char *name, size_t nlen, const char *value, size_t vlen);
/* Appends to out the X-Forwarded-For value to send on: the client's own value
 * (client/clen, may be empty) followed by ", peer". The peer's entry is always
 * last and always whole. Of the client's part at most max_client bytes are
 * kept: its last entries that fit, cut at a comma; if not even one fits, none.
 * *trimmed (may be NULL) is set to 1 when anything was dropped.
 * Returns 0 or PX_ERR_NOMEM (out may then hold part of the value). */
int px_hdr_forwarded_for(const char *client, size_t clen, const char *peer, size_t max_client,
                         struct px_buf *out, int *trimmed);

#endif
