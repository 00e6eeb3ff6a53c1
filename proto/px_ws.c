#include "px_ws.h"
#include "px_b64.h"
#include "px_err.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/sha.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int px_ws_accept(const char *key, size_t keylen, char out[PX_WS_ACCEPT_LEN])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    out[0] = '\0';
    /* RFC 6455: the key is 16 random bytes in base64, always 24 characters. */
    if (keylen != 24 || key[22] != '=' || key[23] != '=')
        return PX_ERR_INVAL;
    for (size_t i = 0; i < 22; i++) {
        char c = key[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/'))
            return PX_ERR_INVAL;
    }
    uint8_t sha[WC_SHA_DIGEST_SIZE];
    wc_Sha ctx;
    if (wc_InitSha(&ctx) != 0)
        return PX_ERR_CRYPTO;
    int bad = wc_ShaUpdate(&ctx, (const uint8_t *)key, (word32)keylen) != 0 ||
              wc_ShaUpdate(&ctx, (const uint8_t *)guid, (word32)(sizeof(guid) - 1)) != 0 ||
              wc_ShaFinal(&ctx, sha) != 0;
    wc_ShaFree(&ctx);
    if (bad)
        return PX_ERR_CRYPTO;
    char *b = px_b64_encode(sha, sizeof(sha), 0);
    if (!b)
        return PX_ERR_NOMEM;
    size_t n = strlen(b);
    int rc = n == PX_WS_ACCEPT_LEN - 1 ? 0 : PX_ERR_CRYPTO;
    if (rc == 0)
        memcpy(out, b, n + 1);
    free(b);
    return rc;
}
