#include "px_headers.h"
#include "px_buf.h"
#include "px_err.h"

#include <ctype.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

/* a (alen bytes) equals the lower-case b (blen bytes), case-insensitively. */
static int eq_lower(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return 0;
    for (size_t i = 0; i < alen; i++)
        if ((char)tolower((unsigned char)a[i]) != b[i])
            return 0;
    return 1;
}

int px_hdr_is_hop_by_hop(const char *n, size_t len)
{
    /* By length first: called for every field of every request and
     * response, and most names match no entry's length. */
#define HOP(lit) eq_lower(n, len, lit, sizeof(lit) - 1)
    if (len > 0 && n[0] == ':')
        return 1;
    switch (len) {
    case 2:
        return HOP("te");
    case 7:
        return HOP("upgrade");
    case 10:
        return HOP("connection") || HOP("keep-alive");
    case 14:
        return HOP("http2-settings");
    case 16:
        return HOP("proxy-connection");
    case 17:
        return HOP("transfer-encoding");
    case 18:
        return HOP("proxy-authenticate");
    case 19:
        return HOP("proxy-authorization");
    }
    return 0;
#undef HOP
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

/* RFC 9110 5.6.2 tchar: ALPHA, DIGIT and !#$%&'*+-.^_`|~ */
static const unsigned char TCHAR[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1,  ['~'] = 1, ['0'] = 1,
    ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,  ['7'] = 1, ['8'] = 1,
    ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1,  ['F'] = 1, ['G'] = 1,
    ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1,  ['N'] = 1, ['O'] = 1,
    ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,  ['V'] = 1, ['W'] = 1,
    ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1,  ['d'] = 1, ['e'] = 1,
    ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1,  ['l'] = 1, ['m'] = 1,
    ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1,  ['t'] = 1, ['u'] = 1,
    ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

/* Whether any byte of w is b: the exact zero-byte test on w ^ (b in every
 * byte); a borrow only ever runs past a byte that was zero. */
static int has_byte(uint64_t w, unsigned char b)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t x = w ^ (ones * b);
    return ((x - ones) & ~x & highs) != 0;
}

int px_hdr_valid(const char *name, size_t nlen, const char *value, size_t vlen)
{
    /* A table, not isalnum()/strchr(): this runs over every byte of every
     * forwarded field (isalnum would also follow the locale). */
    if (nlen == 0)
        return 0;
    for (size_t i = 0; i < nlen; i++)
        if (!TCHAR[(unsigned char)name[i]])
            return 0;
    /* Values are the long part (user agents, cookies): eight bytes at a
     * time, then the tail. */
    size_t i = 0;
    for (; i + 8 <= vlen; i += 8) {
        uint64_t w;
        memcpy(&w, value + i, 8);
        if (has_byte(w, 0) || has_byte(w, '\r') || has_byte(w, '\n'))
            return 0;
    }
    for (; i < vlen; i++) {
        char c = value[i];
        if (c == '\r' || c == '\n' || c == '\0')
            return 0;
    }
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
