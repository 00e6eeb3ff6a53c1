/* es_op access: policies, client CAs and client certificates (es_op.h). */
#include "es_access.h"
#include "es_assert.h"
#include "es_certs.h"
#include "es_op.h"
#include "es_store_access.h"
#include "px_cert.h"
#include "px_err.h"
#include "px_jwt.h"
#include "px_pki.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int es_op_fingerprint(const char *in, char out[65])
{
    size_t k = 0;
    for (const char *p = in; *p; p++) {
        if (*p == ':')
            continue;
        char ch = *p >= 'A' && *p <= 'F' ? (char)(*p - 'A' + 'a') : *p;
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')) || k == 64)
            return PX_ERR_INVAL;
        out[k++] = ch;
    }
    out[k] = '\0';
    return k == 64 ? 0 : PX_ERR_INVAL;
}

static int invalid(char *why, size_t whylen, const char *what, const char *arg)
{
    snprintf(why, whylen, "%s%.300s", what, arg ? arg : "");
    return PX_ERR_INVAL;
}

int es_op_access_set(const struct es_op_ctx *ctx, const struct es_op_policy *p, char *why,
                     size_t whylen)
{
    char pattern[256];
    char *cas[ES_OP_MAX_LIST], *subjects[ES_OP_MAX_LIST], *fps[ES_OP_MAX_LIST];
    char fpbuf[ES_OP_MAX_LIST][65];
    if (es_op_pattern(p->pattern, pattern) < 0)
        return invalid(why, whylen, "a policy needs a hostname or *.suffix pattern: ", p->pattern);
    if (p->n_cas > ES_OP_MAX_LIST || p->n_subjects > ES_OP_MAX_LIST ||
        p->n_fingerprints > ES_OP_MAX_LIST)
        return invalid(why, whylen, "at most 64 CAs, subjects and fingerprints each", NULL);
    for (size_t i = 0; i < p->n_cas; i++) {
        if (!es_op_valid_name(p->cas[i]))
            return invalid(why, whylen,
                           "a CA is named by 1-64 letters, digits, '-', '_', '.': ", p->cas[i]);
        cas[i] = (char *)p->cas[i];
    }
    for (size_t i = 0; i < p->n_subjects; i++) {
        regex_t re;
        if (!p->subjects[i] || strlen(p->subjects[i]) > 1024)
            return invalid(why, whylen, "an allowed subject is at most 1024 bytes", NULL);
        if (regcomp(&re, p->subjects[i], REG_EXTENDED | REG_NOSUB) != 0)
            return invalid(
                why, whylen,
                "an allowed subject is not an extended regular expression: ", p->subjects[i]);
        regfree(&re);
        subjects[i] = (char *)p->subjects[i];
    }
    for (size_t i = 0; i < p->n_fingerprints; i++) {
        if (!p->fingerprints[i] || es_op_fingerprint(p->fingerprints[i], fpbuf[i]) < 0)
            return invalid(
                why, whylen,
                "a fingerprint is SHA-256, 64 hex digits (colons allowed): ", p->fingerprints[i]);
        fps[i] = fpbuf[i];
    }
    if (p->audience && (!p->audience[0] || strlen(p->audience) > 512))
        return invalid(why, whylen, "the audience must be 1-512 characters", NULL);
    char *edge = ES_ACCESS_EDGE_CA;
    struct es_policy_rec rec = {.pattern = pattern,
                                .cas = p->n_cas ? cas : &edge,
                                .n_cas = p->n_cas ? p->n_cas : 1,
                                .subjects = subjects,
                                .n_subjects = p->n_subjects,
                                .fingerprints = fps,
                                .n_fingerprints = p->n_fingerprints,
                                .audience = (char *)p->audience,
                                .created = (long long)time(NULL)};
    char *missing = NULL;
    int rc = es_store_policy_set(ctx->store, &rec, &missing);
    if (rc == PX_ERR_NOT_FOUND)
        snprintf(why, whylen, "no client CA named %s (see edge-sim client-ca list)",
                 missing ? missing : "?");
    else if (rc < 0)
        snprintf(why, whylen, "cannot store the policy: %s", px_strerror(rc));
    free(missing);
    return rc;
}

int es_op_access_delete(const struct es_op_ctx *ctx, const char *pattern_in, char *why,
                        size_t whylen)
{
    char pattern[256];
    if (es_op_pattern(pattern_in, pattern) < 0)
        return invalid(why, whylen, "a policy needs a hostname or *.suffix pattern: ", pattern_in);
    int rc = es_store_policy_delete(ctx->store, pattern);
    if (rc == PX_ERR_NOT_FOUND)
        snprintf(why, whylen, "no access policy for %s", pattern);
    else if (rc < 0)
        snprintf(why, whylen, "cannot delete: %s", px_strerror(rc));
    return rc;
}

int es_op_access_rotate_key(const struct es_op_ctx *ctx, char kid[44], char *why, size_t whylen)
{
    char *key = NULL;
    long long now = (long long)time(NULL);
    int rc = px_pki_keygen(ctx->rng, &key);
    if (rc == 0)
        rc = px_jwt_kid(key, kid);
    if (rc == 0) {
        struct es_signing_key_rec k = {.kid = kid, .key_pem = key, .created = now};
        rc = es_store_signing_key_add(ctx->store, &k, 0);
    }
    if (rc == 0)
        rc = es_store_signing_key_prune(ctx->store, now - ES_ASSERT_PUBLISH_AFTER_RETIRE);
    if (key)
        memset(key, 0, strlen(key));
    free(key);
    if (rc < 0)
        snprintf(why, whylen, "cannot add a signing key: %s", px_strerror(rc));
    return rc;
}

/* ---- client CAs ---- */

static int check_ca(const char *name, const char *pem, const char *crl, char *why, size_t whylen)
{
    char w[512];
    if (es_access_validate_ca(pem, crl, w, sizeof(w)) < 0) {
        snprintf(why, whylen, "client CA %s: %s", name, w);
        return PX_ERR_INVAL;
    }
    return 0;
}

int es_op_client_ca_add(const struct es_op_ctx *ctx, const char *name, const char *pem,
                        const char *crl, char *why, size_t whylen)
{
    if (!es_op_valid_name(name))
        return invalid(why, whylen, "a client CA needs a name of letters, digits, '-', '_', '.'",
                       NULL);
    if (!pem)
        return invalid(why, whylen, "a client CA needs its certificate (PEM)", NULL);
    int rc = check_ca(name, pem, crl, why, whylen);
    if (rc < 0)
        return rc;
    long long now = (long long)time(NULL);
    struct es_client_ca_rec rec = {.name = (char *)name,
                                   .cert_pem = (char *)pem,
                                   .crl_pem = (char *)crl,
                                   .created = now,
                                   .updated = now};
    rc = es_store_client_ca_add(ctx->store, &rec);
    if (rc == PX_ERR_EXISTS)
        snprintf(why, whylen, "a client CA named %s exists", name);
    else if (rc < 0)
        snprintf(why, whylen, "cannot store the CA: %s", px_strerror(rc));
    return rc;
}

int es_op_client_ca_update(const struct es_op_ctx *ctx, const char *name, const char *crl,
                           char *why, size_t whylen)
{
    if (!es_op_valid_name(name))
        return invalid(why, whylen, "a client CA needs a name of letters, digits, '-', '_', '.'",
                       NULL);
    struct es_client_ca_rec *cas;
    size_t n;
    char *pem = NULL;
    int rc = es_store_client_ca_list(ctx->store, &cas, &n);
    if (rc < 0) {
        snprintf(why, whylen, "cannot read the client CAs: %s", px_strerror(rc));
        return rc;
    }
    rc = PX_ERR_NOT_FOUND;
    for (size_t i = 0; i < n && rc == PX_ERR_NOT_FOUND; i++)
        if (!strcmp(cas[i].name, name))
            rc = (pem = strdup(cas[i].cert_pem)) ? 0 : PX_ERR_NOMEM;
    es_store_client_cas_free(cas, n);
    if (rc == PX_ERR_NOT_FOUND)
        snprintf(why, whylen, "no client CA named %s", name);
    else if (rc < 0)
        snprintf(why, whylen, "out of memory");
    if (rc == 0)
        rc = check_ca(name, pem, crl, why, whylen);
    if (rc == 0) {
        rc = es_store_client_ca_set_crl(ctx->store, name, crl, (long long)time(NULL));
        if (rc == PX_ERR_NOT_FOUND)
            snprintf(why, whylen, "no client CA named %s", name);
        else if (rc < 0)
            snprintf(why, whylen, "cannot store the CA: %s", px_strerror(rc));
    }
    free(pem);
    return rc;
}

int es_op_client_ca_delete(const struct es_op_ctx *ctx, const char *name, char *why, size_t whylen)
{
    if (!es_op_valid_name(name))
        return invalid(why, whylen, "a client CA needs a name of letters, digits, '-', '_', '.'",
                       NULL);
    char *used = NULL;
    int rc = es_store_client_ca_delete(ctx->store, name, &used);
    if (rc == PX_ERR_DENIED)
        snprintf(why, whylen, "the access policy for %s trusts %s; change or delete it first",
                 used ? used : "?", name);
    else if (rc == PX_ERR_NOT_FOUND)
        snprintf(why, whylen, "no client CA named %s", name);
    else if (rc < 0)
        snprintf(why, whylen, "cannot delete: %s", px_strerror(rc));
    free(used);
    return rc;
}

/* ---- client certificates ---- */

/* A PKCS#12 password: 20 characters from an alphabet without look-alikes
 * (about 100 bits). */
static int make_password(WC_RNG *rng, char out[21])
{
    static const char abc[] = "abcdefghijkmnpqrstuvwxyzACDEFGHJKLMNPQRTUVWXY345679";
    unsigned char b[20];
    if (px_pki_random(rng, b, sizeof(b)) < 0)
        return -1;
    for (int i = 0; i < 20; i++)
        out[i] = abc[b[i] % (sizeof(abc) - 1)];
    out[20] = '\0';
    memset(b, 0, sizeof(b));
    return 0;
}

void es_op_client_cert_cleanup(struct es_op_client_cert *c)
{
    if (c->key)
        memset(c->key, 0, strlen(c->key));
    if (c->p12)
        memset(c->p12, 0, c->p12_len);
    free(c->key);
    free(c->cert);
    free(c->p12);
    memset(c->password, 0, sizeof(c->password));
    if (c->have_info)
        px_cert_info_cleanup(&c->info);
    memset(c, 0, sizeof(*c));
}

/* The public key to certify: csr_pem's (checked), or a new key's. */
static int cert_key(const struct es_op_ctx *ctx, const char *csr_pem, char **key, char **pub,
                    char *why, size_t whylen)
{
    if (!csr_pem) {
        if (px_pki_keygen(ctx->rng, key) == 0 && px_pki_pubkey(*key, pub) == 0)
            return 0;
        snprintf(why, whylen, "cannot generate a key");
        return PX_ERR_CRYPTO;
    }
    char *cn = NULL;
    int r = px_cert_csr_read(csr_pem, strlen(csr_pem), pub, &cn);
    free(cn);
    if (r == PX_ERR_NOMEM) {
        snprintf(why, whylen, "out of memory");
        return r;
    }
    if (r < 0) {
        *pub = NULL;
        snprintf(why, whylen, "not a usable certificate request: %s",
                 r == PX_ERR_CRYPTO ? "only P-256 (EC prime256v1) keys are supported"
                                    : "malformed, or its signature does not verify");
        return PX_ERR_INVAL;
    }
    return 0;
}

static int cert_info(const char *cert_pem, struct px_cert_info *ci)
{
    struct px_der *der = NULL;
    size_t nd = 0;
    int rc = px_cert_pem_split(cert_pem, strlen(cert_pem), &der, &nd);
    if (rc == 0)
        rc = px_cert_info(der[0].der, der[0].len, ci);
    px_der_free(der, nd);
    return rc;
}

int es_op_client_cert_create(const struct es_op_ctx *ctx, const char *name, unsigned long days,
                             const char *csr_pem, const char *password,
                             struct es_op_client_cert *out, char *why, size_t whylen)
{
    memset(out, 0, sizeof(*out));
    char *pub = NULL;
    int rc;
    if (!es_op_valid_name(name))
        return invalid(why, whylen,
                       "a client certificate needs a name of letters, digits, '-', "
                       "'_' or '.'",
                       NULL);
    if (days < 1 || days > 36500)
        return invalid(why, whylen, "days must be 1-36500", NULL);
    if (!csr_pem) {
        if (password && password[0]) {
            if (strlen(password) >= sizeof(out->password))
                return invalid(why, whylen, "the PKCS#12 password is at most 256 bytes", NULL);
            snprintf(out->password, sizeof(out->password), "%s", password);
        } else if (make_password(ctx->rng, out->password) < 0) {
            snprintf(why, whylen, "cannot draw a password");
            return PX_ERR_CRYPTO;
        } else {
            out->password_made = 1;
        }
    }
    rc = cert_key(ctx, csr_pem, &out->key, &pub, why, whylen);
    if (rc < 0)
        goto out;
    rc = es_certs_issue_access(ctx->certs, name, pub, (int)days, &out->cert);
    if (rc < 0) {
        snprintf(why, whylen, "cannot issue the certificate: %s", px_strerror(rc));
        goto out;
    }
    rc = cert_info(out->cert, &out->info);
    if (rc < 0) {
        snprintf(why, whylen, "cannot read back the issued certificate");
        goto out;
    }
    out->have_info = 1;
    if (!csr_pem) {
        rc = px_pki_pkcs12(ctx->rng, out->key, out->cert, ctx->certs->access_ca_pem, out->password,
                           name, &out->p12, &out->p12_len);
        if (rc < 0) {
            snprintf(why, whylen, "cannot make the PKCS#12 bundle: %s",
                     rc == PX_ERR_INVAL ? "the password is not UTF-8" : px_strerror(rc));
            goto out;
        }
    }
    struct es_client_cert_rec rec = {.name = (char *)name,
                                     .serial = out->info.serial,
                                     .fingerprint = out->info.sha256_hex,
                                     .subject = out->info.subject,
                                     .not_before = out->info.not_before,
                                     .not_after = out->info.not_after,
                                     .created = (long long)time(NULL)};
    rc = es_store_client_cert_add(ctx->store, &rec);
    if (rc == PX_ERR_EXISTS)
        snprintf(why, whylen,
                 "a valid certificate named %s exists; revoke it first or choose another name",
                 name);
    else if (rc < 0)
        snprintf(why, whylen, "cannot record the certificate: %s", px_strerror(rc));
out:
    free(pub);
    if (rc < 0)
        es_op_client_cert_cleanup(out);
    return rc;
}

int es_op_client_cert_revoke(const struct es_op_ctx *ctx, const char *name_or_serial, size_t *n,
                             char *why, size_t whylen)
{
    size_t k = 0;
    if (!name_or_serial || !name_or_serial[0] || strlen(name_or_serial) > 200)
        return invalid(why, whylen, "revoke needs a certificate name or serial", NULL);
    int rc = es_store_client_cert_revoke(ctx->store, name_or_serial, (long long)time(NULL), &k);
    if (rc == PX_ERR_NOT_FOUND)
        snprintf(why, whylen, "no certificate named or numbered %s", name_or_serial);
    else if (rc < 0)
        snprintf(why, whylen, "cannot revoke: %s", px_strerror(rc));
    if (n)
        *n = k;
    return rc;
}
