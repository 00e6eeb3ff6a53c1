#include "px_path.h"
#include "px_err.h"

#include <stdlib.h>
#include <string.h>

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* RFC 3986 unreserved: escaping these changes nothing, so they are decoded. */
static int unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

/* Bytes that would split or end a request line at the origin. */
static int bad_raw(unsigned char c)
{
    return c < 0x20 || c == 0x7f || c == ' ';
}

/* Pass 1: decodes unreserved escapes of path[0..plen) into dec (room for
 * plen bytes) and upper-cases the hex of the others. */
static enum px_path_error decode(const char *path, size_t plen, char *dec, size_t *dlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t d = 0;
    for (size_t i = 0; i < plen;) {
        unsigned char c = (unsigned char)path[i];
        /* A raw '#' would end the path for curl but not for the matcher;
         * some origins read '\' as '/'. Clients encode both. */
        if (c == '#' || c == '\\')
            return PX_PATH_BAD_CHAR;
        if (c != '%') {
            dec[d++] = (char)c;
            i++;
            continue;
        }
        int hi = plen - i >= 3 ? hexval((unsigned char)path[i + 1]) : -1;
        int lo = plen - i >= 3 ? hexval((unsigned char)path[i + 2]) : -1;
        if (hi < 0 || lo < 0)
            return PX_PATH_BAD_ESCAPE;
        unsigned char v = (unsigned char)(hi << 4 | lo);
        if (v == 0)
            return PX_PATH_NUL;
        if (v == '/' || v == '\\')
            return PX_PATH_ENCODED_SEPARATOR;
        if (unreserved(v)) {
            dec[d++] = (char)v;
        } else {
            dec[d++] = '%';
            dec[d++] = hex[v >> 4];
            dec[d++] = hex[v & 15];
        }
        i += 3;
    }
    *dlen = d;
    return PX_PATH_OK;
}

/* Pass 2: segments of dec (starts with '/', no encoded '/') into res (room
 * for dlen + 1 bytes): empty and "." segments dropped, ".." pops one. */
static size_t remove_dot_segments(const char *dec, size_t dlen, char *res)
{
    size_t rl = 0;
    int trailing = 0;
    for (size_t i = 1; i <= dlen;) {
        size_t j = i;
        while (j < dlen && dec[j] != '/')
            j++;
        const char *sg = dec + i;
        size_t sl = j - i;
        int last = j == dlen;
        if (sl == 0 || (sl == 1 && sg[0] == '.')) {
            trailing = last;
        } else if (sl == 2 && sg[0] == '.' && sg[1] == '.') {
            while (rl > 0 && res[rl - 1] != '/')
                rl--;
            if (rl > 0)
                rl--;
            trailing = last;
        } else {
            res[rl++] = '/';
            memcpy(res + rl, sg, sl);
            rl += sl;
            trailing = 0;
        }
        i = j + 1;
    }
    /* Each kept "/seg" is no longer than its span in dec, so only this
     * final '/' can make res one byte longer than dec. */
    if (rl == 0 || trailing)
        res[rl++] = '/';
    return rl;
}

int px_path_normalize(const char *target, size_t len, char **out, size_t *out_len,
                      enum px_path_error *why)
{
    enum px_path_error e = PX_PATH_OK;
    char *dec = NULL, *res = NULL;
    int rc = PX_ERR_INVAL;
    *out = NULL;
    const char *q = memchr(target, '?', len);
    size_t plen = q ? (size_t)(q - target) : len;
    for (size_t i = 0; i < len && e == PX_PATH_OK; i++) {
        if (target[i] == '\0')
            e = PX_PATH_NUL;
        else if (bad_raw((unsigned char)target[i]))
            e = PX_PATH_BAD_CHAR;
    }
    if (e == PX_PATH_OK && (plen == 0 || target[0] != '/'))
        e = PX_PATH_NOT_ABSOLUTE;
    if (e != PX_PATH_OK)
        goto out;
    dec = malloc(plen + 1);
    if (!dec) {
        rc = PX_ERR_NOMEM;
        goto out;
    }
    size_t dlen = 0;
    if ((e = decode(target, plen, dec, &dlen)) != PX_PATH_OK)
        goto out_free_dec;
    size_t qlen = len - plen;
    res = malloc(dlen + 1 + qlen + 1);
    if (!res) {
        rc = PX_ERR_NOMEM;
        goto out_free_dec;
    }
    size_t rl = remove_dot_segments(dec, dlen, res);
    memcpy(res + rl, target + plen, qlen);
    rl += qlen;
    res[rl] = '\0';
    *out = res;
    if (out_len)
        *out_len = rl;
    rc = 0;
out_free_dec:
    free(dec);
out:
    if (why)
        *why = e;
    return rc;
}

const char *px_path_strerror(enum px_path_error why)
{
    switch (why) {
    case PX_PATH_OK:
        return "valid";
    case PX_PATH_NOT_ABSOLUTE:
        return "the path does not start with /";
    case PX_PATH_BAD_ESCAPE:
        return "the path has a malformed percent-escape";
    case PX_PATH_ENCODED_SEPARATOR:
        return "the path has an encoded / or \\ (%2F or %5C)";
    case PX_PATH_NUL:
        return "the path has a NUL byte";
    case PX_PATH_BAD_CHAR:
        return "the path has a control character, space, # or \\";
    }
    return "the path is not valid";
}
