/* libFuzzer target for px_cert. The input is read three ways: as a DER
 * certificate (px_cert_info), as PEM text (px_cert_pem_split, each
 * certificate found then read too; px_cert_csr_read), and as the DER of a
 * certificate request wrapped in PEM (px_cert_csr_read), so mutations reach
 * the DER readers directly. Properties: no crash/leak/UB; every string
 * returned is printable ASCII; a certificate that reads re-encodes to PEM
 * that splits back to the same bytes, and its RFC 9440 form has the length
 * base64 gives; the serial and fingerprint are lower-case hex; a request
 * that reads yields a "PUBLIC KEY" PEM. */
#include "fuzz_util.h"
#include "px_b64.h"
#include "px_cert.h"
#include "px_err.h"

#include <string.h>

static void printable(const char *s)
{
    if (!s)
        FAIL();
    for (; *s; s++)
        if (*s < 0x20 || *s > 0x7e)
            FAIL();
}

static void lower_hex(const char *s, size_t min_len)
{
    if (strlen(s) < min_len || strlen(s) % 2)
        FAIL();
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            FAIL();
}

static void check_cert(const uint8_t *der, size_t len)
{
    struct px_cert_info ci;
    int rc = px_cert_info(der, len, &ci);
    if (rc != 0) {
        if (rc != PX_ERR_INVAL && rc != PX_ERR_NOMEM)
            FAIL();
        if (ci.subject || ci.issuer || ci.common_name || ci.serial)
            FAIL(); /* cleared on failure */
        return;
    }
    printable(ci.subject);
    printable(ci.issuer);
    printable(ci.common_name);
    lower_hex(ci.serial, 2);
    lower_hex(ci.sha256_hex, 64);
    if (strlen(ci.sha256_hex) != 64)
        FAIL();
    char t[21];
    px_cert_time(ci.not_before, t);
    if (strlen(t) != 20)
        FAIL();
    px_cert_time(ci.not_after, t);
    if (strlen(t) != 20)
        FAIL();
    px_cert_info_cleanup(&ci);

    char *pem = px_cert_der_to_pem(der, len);
    if (!pem)
        FAIL();
    for (const char *p = pem; *p; p++)
        if (*p != '\n' && (*p < 0x20 || *p > 0x7e))
            FAIL();
    struct px_der *d;
    size_t n;
    if (px_cert_pem_split(pem, strlen(pem), &d, &n) != 0 || n != 1 || d[0].len != len ||
        memcmp(d[0].der, der, len) != 0)
        FAIL();
    px_der_free(d, n);
    free(pem);

    char *sf = px_cert_sf_binary(der, len);
    if (!sf)
        FAIL();
    printable(sf);
    if (strlen(sf) != (len + 2) / 3 * 4 + 2 || sf[0] != ':' || sf[strlen(sf) - 1] != ':')
        FAIL();
    free(sf);
}

static void check_csr(const char *text, size_t len)
{
    char *pub = NULL, *cn = NULL;
    int rc = px_cert_csr_read(text, len, &pub, &cn);
    if (rc != 0) {
        if ((rc != PX_ERR_INVAL && rc != PX_ERR_CRYPTO && rc != PX_ERR_NOMEM) || pub || cn)
            FAIL();
        return;
    }
    if (strncmp(pub, "-----BEGIN PUBLIC KEY-----\n", 27) != 0)
        FAIL();
    printable(cn);
    free(pub);
    free(cn);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* 1. DER certificate. */
    check_cert(data, size);

    /* 2. PEM text: certificates, then a request. */
    struct px_der *d;
    size_t n;
    int rc = px_cert_pem_split((const char *)data, size, &d, &n);
    if (rc == 0) {
        if (n == 0)
            FAIL();
        for (size_t i = 0; i < n; i++) {
            if (d[i].len == 0 || d[i].len > size)
                FAIL();
            check_cert(d[i].der, d[i].len);
        }
        px_der_free(d, n);
    } else if (rc != PX_ERR_INVAL && rc != PX_ERR_NOMEM) {
        FAIL();
    }
    check_csr((const char *)data, size);

    /* 3. The DER of a request. */
    char *b64 = px_b64_encode(data, size, 0);
    if (!b64)
        FAIL();
    static const char begin[] = "-----BEGIN CERTIFICATE REQUEST-----\n";
    static const char end[] = "\n-----END CERTIFICATE REQUEST-----\n";
    size_t bl = strlen(b64);
    char *pem = malloc(sizeof(begin) + bl + sizeof(end));
    if (!pem)
        FAIL();
    memcpy(pem, begin, sizeof(begin) - 1);
    memcpy(pem + sizeof(begin) - 1, b64, bl);
    memcpy(pem + sizeof(begin) - 1 + bl, end, sizeof(end));
    check_csr(pem, strlen(pem));
    free(pem);
    free(b64);
    return 0;
}
