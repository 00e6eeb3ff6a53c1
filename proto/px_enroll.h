/* px_enroll: the enrolment exchange (ALPN "tunnel-enroll/1"): the connector
 * proves the token's secret and sends a public key it generated; the edge
 * answers with a client certificate for that key. One JSON line each way. */
#ifndef PX_ENROLL_H
#define PX_ENROLL_H

#include <stddef.h>
#include <stdint.h>

#define PX_ENROLL_ALPN "tunnel-enroll/1"
#define PX_ENROLL_MAX_LINE 16384

struct px_enroll_req {
    char tunnel_id[33];
    uint8_t secret[32];
    char *public_key_pem; /* owned */
};

struct px_enroll_resp {
    int ok;
    char *cert_pem;  /* owned; when ok */
    char *origin_ca; /* owned; when ok: the CA (PEM) that signs the edge's origin
                      * certificates. Optional on the wire (older edges send none:
                      * NULL); when present, a "-----BEGIN CERTIFICATE-----" PEM. */
    char *code;      /* owned; when !ok: "bad_token", "rate_limited", "bad_key", "bad_request";
                      * older edges: "unknown_tunnel", "bad_secret" */
    char *message;   /* owned; when !ok */
};

/* Encoders return a malloc'd line ending in '\n', or NULL. */
char *px_enroll_req_encode(const struct px_enroll_req *r);
char *px_enroll_resp_encode(const struct px_enroll_resp *r);
/* Decoders take one line without '\n'. Return 0 or PX_ERR_INVAL/NOMEM/TOO_LARGE. */
int px_enroll_req_decode(const char *line, size_t len, struct px_enroll_req *r);
int px_enroll_resp_decode(const char *line, size_t len, struct px_enroll_resp *r);
void px_enroll_req_cleanup(struct px_enroll_req *r);
void px_enroll_resp_cleanup(struct px_enroll_resp *r);
/* Returns 1 for codes the connector must not retry: "bad_token" (no such
 * tunnel, or a wrong secret: the edge does not say which) and the two codes
 * older edges sent for those. Everything else, "rate_limited" included, is
 * worth retrying with backoff. */
int px_enroll_code_permanent(const char *code);

#endif
