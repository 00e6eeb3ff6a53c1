/* es_op tunnels: create, rotate-token, delete (es_op.h). */
#include "es_certs.h"
#include "es_live.h"
#include "es_op.h"
#include "es_store.h"
#include "px_err.h"
#include "px_hostname.h"
#include "px_pki.h"
#include "px_token.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hash.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SERVER_NAME "tunnel.edge-sim.internal"
#define DEFAULT_EDGE "127.0.0.1:7844"

int es_op_valid_name(const char *n)
{
    size_t l = n ? strlen(n) : 0;
    if (l == 0 || l > 64)
        return 0;
    for (size_t i = 0; i < l; i++)
        if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= 'A' && n[i] <= 'Z') ||
              (n[i] >= '0' && n[i] <= '9') || n[i] == '-' || n[i] == '_' || n[i] == '.'))
            return 0;
    return 1;
}

int es_op_pattern(const char *in, char out[256])
{
    if (!in || strlen(in) >= 256 || !px_host_pattern_valid(in))
        return PX_ERR_INVAL;
    size_t i = 0;
    for (; in[i]; i++)
        out[i] = in[i] >= 'A' && in[i] <= 'Z' ? (char)(in[i] - 'A' + 'a') : in[i];
    out[i] = '\0';
    return 0;
}

void es_op_token_cleanup(struct es_op_token *t)
{
    if (t->token) {
        memset(t->token, 0, strlen(t->token));
        free(t->token);
    }
    t->token = NULL;
}

/* Checks the --edge addresses a caller gave. */
static int check_edges(const char *const *edges, size_t n, char *why, size_t whylen)
{
    if (n > PX_TOKEN_MAX_EDGES) {
        snprintf(why, whylen, "too many edges (at most %d)", PX_TOKEN_MAX_EDGES);
        return PX_ERR_INVAL;
    }
    for (size_t i = 0; i < n; i++) {
        char h[256];
        int port;
        if (!edges[i] || strlen(edges[i]) > 300 ||
            px_split_hostport(edges[i], h, sizeof(h), &port) < 0) {
            snprintf(why, whylen, "an edge must be HOST:PORT: %.300s", edges[i] ? edges[i] : "");
            return PX_ERR_INVAL;
        }
    }
    return 0;
}

/* The edges a token names, into t->edges: the ones given, else the tunnel
 * addresses of the serves running on the data dir (in start order), else
 * the one serve last listened on, else the default. */
static void token_edges(const struct es_op_ctx *ctx, const char *const *edges, size_t n_edges,
                        struct es_op_token *t)
{
    size_t n = 0;
    for (; n < n_edges; n++)
        snprintf(t->edges[n], sizeof(t->edges[n]), "%s", edges[n]);
    if (n == 0 && ctx->live && ctx->live->db &&
        es_live_edges(ctx->live, es_live_now_ms(), t->edges, PX_TOKEN_MAX_EDGES, &n) < 0)
        n = 0;
    if (n == 0 && !(ctx->live && ctx->live->db) && ctx->dir && ctx->dir[0]) {
        struct es_live lv;
        char why[700];
        if (es_live_open(&lv, ctx->dir, NULL, 0, why, sizeof(why)) == 0) {
            if (es_live_edges(&lv, es_live_now_ms(), t->edges, PX_TOKEN_MAX_EDGES, &n) < 0)
                n = 0;
            es_live_close(&lv);
        }
    }
    if (n == 0) {
        if (es_store_kv_get(ctx->store, "tunnel_addr", t->edges[0], sizeof(t->edges[0])) < 0 ||
            !t->edges[0][0])
            snprintf(t->edges[0], sizeof(t->edges[0]), "%s", DEFAULT_EDGE);
        n = 1;
    }
    t->n_edges = n;
}

/* Encodes t's token for secret into t->token. */
static int encode(const struct es_op_ctx *ctx, const uint8_t secret[32], struct es_op_token *t,
                  char *why, size_t whylen)
{
    struct px_token tok = {0};
    tok.n_edges = t->n_edges;
    for (size_t i = 0; i < t->n_edges; i++)
        tok.edges[i] = t->edges[i];
    memcpy(tok.secret, secret, sizeof(tok.secret));
    snprintf(tok.tunnel_id, sizeof(tok.tunnel_id), "%s", t->id);
    snprintf(tok.name, sizeof(tok.name), "%s", t->name);
    snprintf(tok.server_name, sizeof(tok.server_name), "%s", SERVER_NAME);
    tok.ca_pem = ctx->certs->server_ca_pem;
    t->token = px_token_encode(&tok);
    memset(tok.secret, 0, sizeof(tok.secret));
    if (!t->token) {
        snprintf(why, whylen, "cannot encode the token");
        return PX_ERR_NOMEM;
    }
    return 0;
}

int es_op_tunnel_create(const struct es_op_ctx *ctx, const char *name, const char *const *patterns,
                        size_t n, const char *const *edges, size_t n_edges, struct es_op_token *out,
                        char *why, size_t whylen)
{
    memset(out, 0, sizeof(*out));
    if (!es_op_valid_name(name)) {
        snprintf(why, whylen, "a tunnel name is 1-64 letters, digits, '-', '_' or '.'");
        return PX_ERR_INVAL;
    }
    if (n > ES_MAX_PATTERNS) {
        snprintf(why, whylen, "too many hostname patterns (at most %d)", ES_MAX_PATTERNS);
        return PX_ERR_INVAL;
    }
    int rc = check_edges(edges, n_edges, why, whylen);
    if (rc < 0)
        return rc;
    struct es_tunnel_rec rec = {0};
    uint8_t idb[16], secret[32];
    for (size_t i = 0; i < n; i++) {
        char p[256];
        if (es_op_pattern(patterns[i], p) < 0) {
            snprintf(why, whylen, "a hostname must be a hostname or *.suffix pattern: %.256s",
                     patterns[i] ? patterns[i] : "");
            rc = PX_ERR_INVAL;
            goto out;
        }
        if (!(rec.patterns[rec.n_patterns++] = strdup(p))) {
            snprintf(why, whylen, "out of memory");
            rc = PX_ERR_NOMEM;
            goto out;
        }
    }
    if (px_pki_random(ctx->rng, idb, sizeof(idb)) < 0 ||
        px_pki_random(ctx->rng, secret, sizeof(secret)) < 0) {
        snprintf(why, whylen, "cannot draw random bytes");
        rc = PX_ERR_CRYPTO;
        goto out;
    }
    for (int i = 0; i < 16; i++)
        snprintf(rec.id + 2 * i, 3, "%02x", idb[i]);
    snprintf(rec.name, sizeof(rec.name), "%s", name);
    wc_Sha256Hash(secret, sizeof(secret), rec.secret_hash);
    rec.created = (long long)time(NULL);
    snprintf(out->id, sizeof(out->id), "%s", rec.id);
    snprintf(out->name, sizeof(out->name), "%s", name);
    token_edges(ctx, edges, n_edges, out);
    /* The token before the row: a tunnel stored without a token handed out
     * would be one nobody can use. */
    rc = encode(ctx, secret, out, why, whylen);
    if (rc < 0)
        goto out;
    rc = es_store_tunnel_add(ctx->store, &rec);
    if (rc == PX_ERR_EXISTS)
        snprintf(why, whylen, "a tunnel named %s already exists", name);
    else if (rc < 0)
        snprintf(why, whylen, "cannot store the tunnel: %s", px_strerror(rc));
out:
    memset(secret, 0, sizeof(secret));
    es_tunnel_rec_cleanup(&rec);
    if (rc < 0)
        es_op_token_cleanup(out);
    return rc;
}

int es_op_tunnel_rotate(const struct es_op_ctx *ctx, const char *name, long long grace,
                        const char *const *edges, size_t n_edges, struct es_op_token *out,
                        char *why, size_t whylen)
{
    memset(out, 0, sizeof(*out));
    if (!name || !name[0] || strlen(name) > 64) {
        snprintf(why, whylen, "rotate-token needs a tunnel name or id");
        return PX_ERR_INVAL;
    }
    if (grace < 0 || grace > 3650LL * 86400) {
        snprintf(why, whylen, "the grace must be 0 to 3650 days");
        return PX_ERR_INVAL;
    }
    int rc = check_edges(edges, n_edges, why, whylen);
    if (rc < 0)
        return rc;
    uint8_t secret[32], hash[32];
    if (px_pki_random(ctx->rng, secret, sizeof(secret)) < 0) {
        snprintf(why, whylen, "cannot draw a new secret");
        return PX_ERR_CRYPTO;
    }
    wc_Sha256Hash(secret, sizeof(secret), hash);
    long long now = (long long)time(NULL);
    rc = es_store_tunnel_rotate(ctx->store, name, hash, now + grace, out->id, out->name);
    if (rc == PX_ERR_NOT_FOUND)
        snprintf(why, whylen, "no tunnel named %.64s", name);
    else if (rc < 0)
        snprintf(why, whylen, "cannot store the new secret: %s", px_strerror(rc));
    if (rc == 0) {
        out->previous_until = grace > 0 ? now + grace : 0;
        token_edges(ctx, edges, n_edges, out);
        rc = encode(ctx, secret, out, why, whylen);
    }
    memset(secret, 0, sizeof(secret));
    return rc;
}

int es_op_tunnel_delete(const struct es_op_ctx *ctx, const char *name, char *why, size_t whylen)
{
    if (!name || !name[0] || strlen(name) > 64) {
        snprintf(why, whylen, "delete needs a tunnel name");
        return PX_ERR_INVAL;
    }
    int rc = es_store_tunnel_delete(ctx->store, name);
    if (rc == PX_ERR_NOT_FOUND)
        snprintf(why, whylen, "no tunnel named %s", name);
    else if (rc < 0)
        snprintf(why, whylen, "cannot delete: %s", px_strerror(rc));
    return rc;
}
