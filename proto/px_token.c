#include "px_token.h"
#include "px_b64.h"
#include "px_err.h"
#include "px_json.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *why, size_t whylen, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (why && whylen)
        vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return err;
}

int px_split_hostport(const char *s, char *host, size_t hostlen, int *port)
{
    const char *colon;
    const char *h = s;
    size_t hl;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return PX_ERR_INVAL;
        h = s + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return PX_ERR_INVAL;
        hl = (size_t)(colon - s);
    }
    if (hl == 0 || hl >= hostlen)
        return PX_ERR_INVAL;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || p < 1 || p > 65535)
        return PX_ERR_INVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (int)p;
    return 0;
}

static int is_hex32(const char *s)
{
    if (strlen(s) != 32)
        return 0;
    for (int i = 0; i < 32; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

void px_token_cleanup(struct px_token *tok)
{
    for (size_t i = 0; i < tok->n_edges; i++)
        free(tok->edges[i]);
    free(tok->ca_pem);
    memset(tok, 0, sizeof(*tok));
}

int px_token_decode(const char *s, struct px_token *tok, char *why, size_t whylen)
{
    int rc;
    uint8_t *raw = NULL;
    size_t rawlen = 0;
    json_t *root = NULL;
    memset(tok, 0, sizeof(*tok));

    size_t slen = strlen(s);
    while (slen > 0 && (s[slen - 1] == '\n' || s[slen - 1] == '\r' || s[slen - 1] == ' '))
        slen--;
    if (slen == 0)
        return fail(why, whylen, PX_ERR_INVAL, "token is empty");
    if (slen > PX_TOKEN_MAX_LEN)
        return fail(why, whylen, PX_ERR_TOO_LARGE, "token is longer than %d characters",
                    PX_TOKEN_MAX_LEN);
    rc = px_b64_decode(s, slen, &raw, &rawlen);
    if (rc == PX_ERR_NOMEM)
        return fail(why, whylen, rc, "out of memory");
    if (rc < 0)
        return fail(why, whylen, PX_ERR_INVAL,
                    "token is not base64url text (was it copied whole?)");

    json_error_t jerr;
    root = json_loadb((const char *)raw, rawlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root || !json_is_object(root)) {
        rc = fail(why, whylen, PX_ERR_TRUNCATED,
                  "token does not decode to a complete JSON object (truncated or corrupted)");
        goto out;
    }
    json_t *v = json_object_get(root, "v");
    if (!json_is_integer(v)) {
        rc = fail(why, whylen, PX_ERR_INVAL, "token has no format version");
        goto out;
    }
    if (json_integer_value(v) != PX_TOKEN_VERSION) {
        rc = fail(why, whylen, PX_ERR_VERSION,
                  "token format version %lld is not supported (this connector reads version %d)",
                  (long long)json_integer_value(v), PX_TOKEN_VERSION);
        goto out;
    }
    const char *id = json_string_value(json_object_get(root, "tunnel_id"));
    if (!id || !is_hex32(id)) {
        rc = fail(why, whylen, PX_ERR_INVAL, "token has no valid tunnel_id");
        goto out;
    }
    memcpy(tok->tunnel_id, id, 33);
    const char *name = json_string_value(json_object_get(root, "name"));
    if (name) {
        if (strlen(name) >= sizeof(tok->name)) {
            rc = fail(why, whylen, PX_ERR_INVAL, "token tunnel name too long");
            goto out;
        }
        memcpy(tok->name, name, strlen(name) + 1);
    }
    const char *secret = json_string_value(json_object_get(root, "secret"));
    uint8_t *sec = NULL;
    size_t seclen = 0;
    if (!secret || px_b64_decode(secret, strlen(secret), &sec, &seclen) < 0 ||
        seclen != PX_TOKEN_SECRET_LEN) {
        free(sec);
        rc = fail(why, whylen, PX_ERR_INVAL, "token has no valid secret");
        goto out;
    }
    memcpy(tok->secret, sec, PX_TOKEN_SECRET_LEN);
    free(sec);
    json_t *edges = json_object_get(root, "edges");
    if (!json_is_array(edges) || json_array_size(edges) == 0 ||
        json_array_size(edges) > PX_TOKEN_MAX_EDGES) {
        rc = fail(why, whylen, PX_ERR_INVAL, "token must list 1 to %d edge addresses",
                  PX_TOKEN_MAX_EDGES);
        goto out;
    }
    for (size_t i = 0; i < json_array_size(edges); i++) {
        const char *e = json_string_value(json_array_get(edges, i));
        char host[256];
        int port;
        if (!e || px_split_hostport(e, host, sizeof(host), &port) < 0) {
            rc = fail(why, whylen, PX_ERR_INVAL, "token edge address %zu is not host:port", i);
            goto out;
        }
        tok->edges[i] = strdup(e);
        if (!tok->edges[i]) {
            rc = fail(why, whylen, PX_ERR_NOMEM, "out of memory");
            goto out;
        }
        tok->n_edges = i + 1;
    }
    const char *sn = json_string_value(json_object_get(root, "server_name"));
    if (!sn || !*sn || strlen(sn) >= sizeof(tok->server_name)) {
        rc = fail(why, whylen, PX_ERR_INVAL, "token has no valid server_name");
        goto out;
    }
    memcpy(tok->server_name, sn, strlen(sn) + 1);
    const char *ca = json_string_value(json_object_get(root, "ca"));
    if (!ca || !strstr(ca, "-----BEGIN CERTIFICATE-----")) {
        rc = fail(why, whylen, PX_ERR_INVAL, "token has no edge trust anchor (ca)");
        goto out;
    }
    tok->ca_pem = strdup(ca);
    if (!tok->ca_pem) {
        rc = fail(why, whylen, PX_ERR_NOMEM, "out of memory");
        goto out;
    }
    rc = 0;
out:
    if (rc < 0)
        px_token_cleanup(tok);
    json_decref(root);
    free(raw);
    return rc;
}

char *px_token_encode(const struct px_token *tok)
{
    char *out = NULL;
    char *sec = px_b64_encode(tok->secret, PX_TOKEN_SECRET_LEN, 1);
    json_t *edges = json_array();
    json_t *root = NULL;
    if (!sec || !edges)
        goto out;
    for (size_t i = 0; i < tok->n_edges; i++)
        if (json_array_append_new(edges, json_string(tok->edges[i])) < 0)
            goto out;
    root = json_pack("{s:i,s:s,s:s,s:s,s:O,s:s,s:s}", "v", PX_TOKEN_VERSION, "tunnel_id",
                     tok->tunnel_id, "name", tok->name, "secret", sec, "edges", edges,
                     "server_name", tok->server_name, "ca", tok->ca_pem ? tok->ca_pem : "");
    if (!root)
        goto out;
    char *js = px_json_dumps(root, JSON_COMPACT);
    if (!js)
        goto out;
    out = px_b64_encode((const uint8_t *)js, strlen(js), 1);
    free(js);
out:
    json_decref(root);
    json_decref(edges);
    free(sec);
    return out;
}
