/* libFuzzer target for px_token_decode.
 * The first byte picks how the rest is used, so the fuzzer can reach the JSON
 * validation directly instead of having to mutate base64 text:
 *   even: the rest is the token text as a user would paste it;
 *   odd:  the rest is the JSON payload, base64url-encoded here first.
 * Properties: no crash/leak; a decoded token re-encodes to a token that
 * decodes to the same fields; reasons never contain a newline or the secret. */
#include "px_b64.h"
#include "px_err.h"
#include "px_token.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A broken property: say where, then crash so libFuzzer keeps the input. */
#define FAIL() (fprintf(stderr, "property violated at %s:%d\n", __FILE__, __LINE__), abort())

static void check_reason(int rc, const char *why)
{
    if (rc < 0 && (why[0] == '\0' || strchr(why, '\n')))
        FAIL();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    char *text;
    if (data[0] & 1) {
        text = px_b64_encode(data + 1, size - 1, 1);
        if (!text)
            return 0;
    } else {
        text = malloc(size);
        if (!text)
            return 0;
        memcpy(text, data + 1, size - 1);
        text[size - 1] = '\0';
    }
    struct px_token tok;
    char why[256] = "";
    int rc = px_token_decode(text, &tok, why, sizeof(why));
    check_reason(rc, why);
    if (rc == 0) {
        char *sec = px_b64_encode(tok.secret, sizeof(tok.secret), 1);
        if (sec && strstr(why, sec))
            FAIL();
        free(sec);
        char *again = px_token_encode(&tok);
        if (!again)
            FAIL();
        /* Re-encoding can add an empty "name" and so grow slightly; only
         * tokens within the limit must round-trip. */
        if (strlen(again) <= PX_TOKEN_MAX_LEN) {
            struct px_token t2;
            char why2[256] = "";
            if (px_token_decode(again, &t2, why2, sizeof(why2)) != 0)
                FAIL();
            if (strcmp(t2.tunnel_id, tok.tunnel_id) || strcmp(t2.name, tok.name) ||
                memcmp(t2.secret, tok.secret, sizeof(tok.secret)) || t2.n_edges != tok.n_edges ||
                strcmp(t2.server_name, tok.server_name) || strcmp(t2.ca_pem, tok.ca_pem))
                FAIL();
            for (size_t i = 0; i < tok.n_edges; i++)
                if (strcmp(t2.edges[i], tok.edges[i]))
                    FAIL();
            px_token_cleanup(&t2);
        }
        free(again);
        /* Every accepted edge splits. */
        for (size_t i = 0; i < tok.n_edges; i++) {
            char host[256];
            int port;
            if (px_split_hostport(tok.edges[i], host, sizeof(host), &port) != 0 || port < 1 ||
                port > 65535)
                FAIL();
        }
        px_token_cleanup(&tok);
    } else if (tok.n_edges || tok.ca_pem) {
        FAIL(); /* failure must leave the token empty */
    }
    /* The same text as a host:port. */
    char host[64];
    int port;
    if (px_split_hostport(text, host, sizeof(host), &port) == 0 &&
        (port < 1 || port > 65535 || strlen(host) >= sizeof(host) || host[0] == '\0'))
        FAIL();
    free(text);
    return 0;
}
