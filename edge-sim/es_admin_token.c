#include "es_admin_token.h"
#include "px_b64.h"
#include "px_err.h"
#include "px_pki.h"
#include "rt_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static int b64url_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

/* The token in s (a file's content: one line, a final newline allowed) into
 * out. Returns 0 or PX_ERR_INVAL. */
static int parse(const char *s, size_t len, char *out)
{
    while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
        len--;
    if (len < ES_ADMIN_TOKEN_MIN || len > ES_ADMIN_TOKEN_MAX)
        return PX_ERR_INVAL;
    for (size_t i = 0; i < len; i++)
        if (!b64url_char(s[i]))
            return PX_ERR_INVAL;
    memcpy(out, s, len);
    out[len] = '\0';
    return 0;
}

/* Writes a new token to path without ever replacing a file there: the
 * whole file is written beside it under a random name, then hard-linked to
 * path (which fails when path exists), so no reader sees half a token.
 * Returns 0, PX_ERR_EXISTS (another process was first) or an error with
 * why. */
static int create(const char *dir, const char *path, WC_RNG *rng, char *why, size_t whylen)
{
    uint8_t raw[32], name[8];
    char tmp[4200], *tok = NULL, *line = NULL;
    int rc = PX_ERR_CRYPTO;
    if (px_pki_random(rng, raw, sizeof(raw)) < 0 || px_pki_random(rng, name, sizeof(name)) < 0) {
        snprintf(why, whylen, "cannot draw random bytes for the admin token");
        goto out;
    }
    rc = PX_ERR_NOMEM;
    tok = px_b64_encode(raw, sizeof(raw), 1);
    if (!tok || !(line = malloc(strlen(tok) + 2))) {
        snprintf(why, whylen, "out of memory");
        goto out;
    }
    snprintf(line, strlen(tok) + 2, "%s\n", tok);
    int n = snprintf(tmp, sizeof(tmp), "%s/.%s.%02x%02x%02x%02x%02x%02x%02x%02x", dir,
                     ES_ADMIN_TOKEN_FILE, name[0], name[1], name[2], name[3], name[4], name[5],
                     name[6], name[7]);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        rc = PX_ERR_INVAL;
        snprintf(why, whylen, "data dir path too long");
        goto out;
    }
    if (rt_file_write_private(tmp, line) < 0) {
        rc = PX_ERR_IO;
        snprintf(why, whylen, "cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    rc = 0;
    if (link(tmp, path) < 0) {
        int e = errno;
        rc = e == EEXIST ? PX_ERR_EXISTS : PX_ERR_IO;
        if (rc != PX_ERR_EXISTS)
            snprintf(why, whylen, "cannot create %s: %s", path, strerror(e));
    }
    unlink(tmp);
out:
    memset(raw, 0, sizeof(raw));
    if (tok)
        memset(tok, 0, strlen(tok));
    if (line)
        memset(line, 0, strlen(line));
    free(tok);
    free(line);
    return rc;
}

int es_admin_token_load(const char *dir, WC_RNG *rng, int create_it, char *out, int *created,
                        char *why, size_t whylen)
{
    char path[4200];
    int n = snprintf(path, sizeof(path), "%s/%s", dir, ES_ADMIN_TOKEN_FILE);
    if (created)
        *created = 0;
    if (n < 0 || (size_t)n >= sizeof(path)) {
        snprintf(why, whylen, "data dir path too long");
        return PX_ERR_INVAL;
    }
    char *s = NULL;
    size_t len = 0;
    int rc = rt_file_read_private(path, 4096, &s, &len, why, whylen);
    if (rc == PX_ERR_NOT_FOUND && create_it) {
        rc = create(dir, path, rng, why, whylen);
        if (rc == 0 && created)
            *created = 1;
        if (rc == 0 || rc == PX_ERR_EXISTS)
            rc = rt_file_read_private(path, 4096, &s, &len, why, whylen);
    }
    if (rc == PX_ERR_NOT_FOUND)
        snprintf(why, whylen, "no admin token in %s", path);
    if (rc < 0)
        return rc;
    rc = parse(s, len, out);
    if (rc < 0)
        snprintf(why, whylen,
                 "%s does not hold a token (one line of %d to %d characters A-Z a-z 0-9 - _); "
                 "delete it to have a new one made",
                 path, ES_ADMIN_TOKEN_MIN, ES_ADMIN_TOKEN_MAX);
    memset(s, 0, len);
    free(s);
    return rc;
}

int es_admin_token_check(const char *token, const char *authorization)
{
    if (!token || !token[0] || !authorization || strncasecmp(authorization, "Bearer ", 7) != 0)
        return 0;
    const char *p = authorization + 7;
    while (*p == ' ')
        p++;
    size_t lp = strlen(p), lt = strlen(token);
    while (lp > 0 && (p[lp - 1] == ' ' || p[lp - 1] == '\t'))
        lp--;
    /* Every byte of the token is compared whatever matched before; only the
     * lengths (not secret: every token has the same) decide the indexing. */
    volatile unsigned char diff = (unsigned char)(lp != lt);
    for (size_t i = 0; i < lt; i++)
        diff |= (unsigned char)(token[i] ^ (i < lp ? p[i] : 0));
    return diff == 0;
}
