/* libFuzzer target for the enrolment codec: the input is offered to both
 * decoders as one line. Properties: no crash/leak; an accepted request or
 * response re-encodes to one line that decodes to the same values; a failed
 * decode leaves nothing owned. */
#include "px_enroll.h"
#include "px_err.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A broken property: say where, then crash so libFuzzer keeps the input. */
#define FAIL() (fprintf(stderr, "property violated at %s:%d\n", __FILE__, __LINE__), abort())

static int one_line(const char *s, size_t *len)
{
    if (!s)
        return 0;
    size_t n = strlen(s);
    if (n == 0 || s[n - 1] != '\n' || memchr(s, '\n', n - 1))
        return 0;
    *len = n - 1;
    return 1;
}

static int same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *line = (const char *)data;
    size_t n;

    struct px_enroll_req req;
    if (px_enroll_req_decode(line, size, &req) == 0) {
        if (strlen(req.tunnel_id) != 32 || !req.public_key_pem)
            FAIL();
        char *enc = px_enroll_req_encode(&req);
        if (!one_line(enc, &n))
            FAIL();
        if (n <= PX_ENROLL_MAX_LINE) {
            struct px_enroll_req back;
            if (px_enroll_req_decode(enc, n, &back) != 0 || strcmp(back.tunnel_id, req.tunnel_id) ||
                memcmp(back.secret, req.secret, sizeof(req.secret)) ||
                strcmp(back.public_key_pem, req.public_key_pem))
                FAIL();
            px_enroll_req_cleanup(&back);
        }
        free(enc);
        px_enroll_req_cleanup(&req);
    } else if (req.public_key_pem) {
        FAIL();
    }

    struct px_enroll_resp resp;
    if (px_enroll_resp_decode(line, size, &resp) == 0) {
        if (resp.ok ? !resp.cert_pem : !resp.code)
            FAIL();
        char *enc = px_enroll_resp_encode(&resp);
        if (!one_line(enc, &n))
            FAIL();
        if (n <= PX_ENROLL_MAX_LINE) {
            struct px_enroll_resp back;
            if (px_enroll_resp_decode(enc, n, &back) != 0 || back.ok != resp.ok ||
                !same(back.cert_pem, resp.cert_pem) || !same(back.code, resp.code) ||
                !same(back.origin_ca, resp.origin_ca))
                FAIL();
            /* A missing message is re-encoded as "". */
            if (!resp.ok && !same(back.message, resp.message ? resp.message : ""))
                FAIL();
            px_enroll_resp_cleanup(&back);
        }
        free(enc);
        px_enroll_resp_cleanup(&resp);
    } else if (resp.cert_pem || resp.origin_ca || resp.code || resp.message) {
        FAIL();
    }
    if (px_enroll_code_permanent(resp.code) != 0)
        FAIL(); /* cleaned up: NULL */
    return 0;
}
