/* px_token: the tunnel token, one opaque string given to the connector.
 *
 * Wire form: base64url (no padding) of a UTF-8 JSON object
 *   {"v":1,"tunnel_id":"<32 hex>","name":"...","secret":"<base64url of 32 bytes>",
 *    "edges":["host:port",...],"server_name":"...","ca":"<PEM>"}
 * The secret is an enrolment secret: the connector proves it once to obtain a
 * client certificate for a key it generated itself (docs/protocol.md). */
#ifndef PX_TOKEN_H
#define PX_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#define PX_TOKEN_VERSION 1
#define PX_TOKEN_MAX_LEN 16384
#define PX_TOKEN_MAX_EDGES 8
#define PX_TOKEN_SECRET_LEN 32

struct px_token {
    char tunnel_id[33];
    char name[65];
    uint8_t secret[PX_TOKEN_SECRET_LEN];
    char *edges[PX_TOKEN_MAX_EDGES]; /* "host:port", owned */
    size_t n_edges;
    char server_name[256];
    char *ca_pem; /* owned */
};

/* Decodes and validates s. On success returns 0 and fills *tok (release with
 * px_token_cleanup). On failure returns a negative px_err, leaves *tok empty and
 * writes a one-line reason (never containing the token) into why. */
int px_token_decode(const char *s, struct px_token *tok, char *why, size_t whylen);
/* Encodes tok; returns a malloc'd string (caller frees) or NULL on error. */
char *px_token_encode(const struct px_token *tok);
void px_token_cleanup(struct px_token *tok);
/* Splits "host:port" / "[v6]:port" into host (bounded) and port. Returns 0 or PX_ERR_INVAL. */
int px_split_hostport(const char *s, char *host, size_t hostlen, int *port);

#endif
