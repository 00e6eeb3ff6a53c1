/* px_ws: the WebSocket handshake's key proof (RFC 6455 4.2.2), shared by the
 * edge (answering a browser) and the connector (checking an origin). */
#ifndef PX_WS_H
#define PX_WS_H

#include <stddef.h>

/* A Sec-WebSocket-Accept value is 28 characters; this holds it and a NUL. */
#define PX_WS_ACCEPT_LEN 29

/* Writes base64(SHA-1(key + GUID)) for the client's Sec-WebSocket-Key into
 * out (PX_WS_ACCEPT_LEN bytes). Returns 0, PX_ERR_INVAL if key is not the
 * base64 of 16 bytes (24 characters), or PX_ERR_CRYPTO / PX_ERR_NOMEM. */
int px_ws_accept(const char *key, size_t keylen, char out[PX_WS_ACCEPT_LEN]);

#endif
