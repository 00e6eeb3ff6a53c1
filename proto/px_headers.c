#include "px_headers.h"
#include "px_buf.h"
#include "px_err.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

static int eq(const char *a, size_t alen, const char *b)
{
    return strlen(b) == alen && strncasecmp(a, b, alen) == 0;
}

int px_hdr_is_hop_by_hop(const char *n, size_t len)
{
    static const char *const hop[] = {
        "connection", "keep-alive",         "proxy-connection",    "transfer-encoding", "upgrade",
        "te",         "proxy-authenticate", "proxy-authorization", "http2-settings"};
    if (len > 0 && n[0] == ':')
        return 1;
    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
        if (eq(n, len, hop[i]))
            return 1;
    return 0;
}

/* Compares a field name with a lower-case name, case-insensitively and
 * with '_' in the field name standing for '-': several frameworks (CGI,
 * WSGI, PHP, Rails' Rack) turn both into '_', so X_Client_Cert_Verified
 * reaches the application as X-Client-Cert-Verified would. */
static int eq_dashed(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return 0;
    for (size_t i = 0; i < alen; i++) {
        char c = a[i] == '_' ? '-' : (char)tolower((unsigned char)a[i]);
        if (c != b[i])
            return 0;
    }
    return 1;
}

int px_hdr_is_edge_metadata(const char *n, size_t len)
{
    static const char *const meta[] = {
        "x-forwarded-proto",  "x-forwarded-host", "x-forwarded-port",
        "x-forwarded-server", "forwarded",        "x-request-id",
        "x-real-ip",          "client-cert",      "client-cert-chain"};
    for (size_t i = 0; i < sizeof(meta) / sizeof(meta[0]); i++)
        if (eq_dashed(n, len, meta[i], strlen(meta[i])))
            return 1;
    static const char *const prefixes[] = {"tunnel-", "x-client-cert-", "edge-access-"};
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        size_t pl = strlen(prefixes[i]);
        if (len >= pl && eq_dashed(n, pl, prefixes[i], pl))
            return 1;
    }
    /* The edge appends to X-Forwarded-For; a look-alike spelled with '_'
     * would reach such an application as a second, forged copy. */
    return memchr(n, '_', len) && eq_dashed(n, len, "x-forwarded-for", 15);
}

int px_hdr_listed_in_connection(const char *v, size_t vlen, const char *name, size_t nlen)
{
    size_t i = 0;
    while (i < vlen) {
        while (i < vlen && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t start = i;
        while (i < vlen && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
            i++;
        if (i - start == nlen && strncasecmp(v + start, name, nlen) == 0)
            return 1;
    }
    return 0;
}

int px_hdr_valid(const char *name, size_t nlen, const char *value, size_t vlen)
{
    if (nlen == 0)
        return 0;
    for (size_t i = 0; i < nlen; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!(isalnum(c) || strchr("!#$%&'*+-.^_`|~", c)) || c == 0)
            return 0;
    }
    for (size_t i = 0; i < vlen; i++)
        if (value[i] == '\r' || value[i] == '\n' || value[i] == '\0')
            return 0;
    return 1;
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* 1 if an entry starts at i (i > 0): a comma, then optional spaces, before it. */
static int entry_starts(const char *v, size_t i)
{
    if (is_ows(v[i]) || v[i] == ',')
        return 0;
    while (i > 0 && is_ows(v[i - 1]))
        i--;
    return i > 0 && v[i - 1] == ',';
}

int px_hdr_forwarded_for(const char *client, size_t clen, const char *peer, size_t max_client,
                         struct px_buf *out, int *trimmed)
{
    size_t start = 0, end = clen;
    int cut = 0;
    while (start < end && (is_ows(client[start]) || client[start] == ','))
        start++;
    while (end > start && (is_ows(client[end - 1]) || client[end - 1] == ','))
        end--;
    if (end - start > max_client) {
        /* Keep the newest entries (the right end): start after the first comma
         * at or past the point where the rest fits. */
        size_t i = end - max_client;
        while (i < end && !entry_starts(client, i))
            i++;
        start = i;
        cut = 1;
    }
    if (trimmed)
        *trimmed = cut;
    if (end > start) {
        if (px_buf_append(out, client + start, end - start) < 0 || px_buf_append(out, ", ", 2) < 0)
            return PX_ERR_NOMEM;
    }
    return px_buf_append(out, peer, strlen(peer)) < 0 ? PX_ERR_NOMEM : 0;
}
