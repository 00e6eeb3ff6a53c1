/* cn_enroll: obtains a client certificate from the edge for the connector's
 * own key, proving the token's enrolment secret (ALPN tunnel-enroll/1). */
#ifndef CN_ENROLL_H
#define CN_ENROLL_H

#include "px_tls.h"

#include <uv.h>

struct cn_enroll;
/* result: 0 and cert_pem on success, with origin_ca the edge's origin CA
 * (PEM; NULL from an edge that sends none); on failure both are NULL,
 * permanent tells whether retrying can help, and why describes it. */
typedef void (*cn_enroll_cb)(void *arg, int result, const char *cert_pem, const char *origin_ca,
                             int permanent, const char *why);

/* Starts one enrolment attempt against edge addr. The callback is called
 * exactly once (possibly before this returns an error? no: only after 0). */
int cn_enroll_start(uv_loop_t *loop, WOLFSSL_CTX *ctx, const char *addr, const char *server_name,
                    const char *tunnel_id, const uint8_t secret[32], const char *key_pem,
                    cn_enroll_cb cb, void *arg);

#endif
