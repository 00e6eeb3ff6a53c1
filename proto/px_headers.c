#include "px_headers.h"

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

int px_hdr_is_edge_metadata(const char *n, size_t len)
{
    if (eq(n, len, "x-forwarded-proto") || eq(n, len, "x-request-id") || eq(n, len, "x-real-ip"))
        return 1;
    return len >= 7 && strncasecmp(n, "tunnel-", 7) == 0;
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
