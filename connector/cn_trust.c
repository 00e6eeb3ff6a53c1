#include "cn_trust.h"
#include "cn_ingress.h"
#include "px_buf.h"
#include "px_cert.h"
#include "px_err.h"
#include "rt_file.h"

#include <curl/curl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *cn_trust_system_ca_path(char *buf, size_t len)
{
    /* Asked each time (rarely: once per trust or rule set), into the
     * caller's buffer: a cache here would be state shared by every loop. */
    static const char fallback[] = "/etc/ssl/certs/ca-certificates.crt";
    CURL *e = curl_easy_init();
    char *p = NULL;
    if (!e || curl_easy_getinfo(e, CURLINFO_CAINFO, &p) != CURLE_OK || !p || strlen(p) >= len)
        p = (char *)fallback;
    if (len > 0)
        snprintf(buf, len, "%s", p);
    if (e)
        curl_easy_cleanup(e);
    return buf;
}

void cn_trust_init(struct cn_trust *t)
{
    memset(t, 0, sizeof(*t));
}

void cn_trust_blob_unref(struct cn_trust_blob *b)
{
    if (b && --b->refs == 0)
        free(b);
}

void cn_trust_cleanup(struct cn_trust *t)
{
    free(t->origin_ca);
    free(t->system);
    cn_trust_blob_unref(t->shared);
    memset(t, 0, sizeof(*t));
}

const char *cn_trust_origin_ca(const struct cn_trust *t)
{
    return t->origin_ca;
}

/* pem's certificates re-encoded, each checked to be a CA. Returns 0 and
 * *out (malloc'd), PX_ERR_INVAL or PX_ERR_NOMEM. */
static int normalise(const char *pem, char **out)
{
    struct px_der *certs = NULL;
    size_t n = 0;
    int rc = px_cert_pem_split(pem, strlen(pem), &certs, &n);
    if (rc < 0)
        return rc;
    struct px_buf b;
    px_buf_init(&b);
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct px_cert_info ci;
        rc = px_cert_info(certs[i].der, certs[i].len, &ci);
        if (rc < 0)
            break;
        int is_ca = ci.is_ca;
        px_cert_info_cleanup(&ci);
        if (!is_ca) {
            rc = PX_ERR_INVAL;
            break;
        }
        char *one = px_cert_der_to_pem(certs[i].der, certs[i].len);
        rc = one ? px_buf_append_str(&b, one) : PX_ERR_NOMEM;
        free(one);
    }
    px_der_free(certs, n);
    if (rc == 0) {
        const char *s = px_buf_cstr(&b);
        *out = s ? strdup(s) : NULL;
        if (!*out)
            rc = PX_ERR_NOMEM;
    }
    px_buf_cleanup(&b);
    return rc;
}

int cn_trust_set_origin_ca(struct cn_trust *t, const char *pem, int *changed)
{
    if (changed)
        *changed = 0;
    if (!pem)
        return PX_ERR_INVAL;
    char *norm = NULL;
    int rc = normalise(pem, &norm);
    if (rc < 0)
        return rc;
    if (t->origin_ca && strcmp(t->origin_ca, norm) == 0) {
        free(norm);
        return 0;
    }
    free(t->origin_ca);
    t->origin_ca = norm;
    /* Requests in flight keep their reference to the old blob. */
    cn_trust_blob_unref(t->shared);
    t->shared = NULL;
    if (changed)
        *changed = 1;
    return 0;
}

/* A blob of base (may be NULL/0) followed by the origin CA. */
static struct cn_trust_blob *join(const char *base, size_t base_len, const char *ca)
{
    size_t ca_len = strlen(ca);
    struct cn_trust_blob *b = malloc(sizeof(*b) + base_len + 1 + ca_len + 1);
    if (!b)
        return NULL;
    b->refs = 1;
    if (base_len)
        memcpy(b->data, base, base_len);
    b->data[base_len] = '\n'; /* a bundle need not end with a newline */
    memcpy(b->data + base_len + 1, ca, ca_len + 1);
    b->len = base_len + 1 + ca_len;
    return b;
}

int cn_trust_blob_for(struct cn_trust *t, const struct cn_origin_opts *o,
                      struct cn_trust_blob **out)
{
    *out = NULL;
    if (!t || !t->origin_ca)
        return 0;
    if (o && o->ca_blob) {
        /* caPool: that rule's bundle already holds the system CAs. */
        *out = join(o->ca_blob, o->ca_blob_len, t->origin_ca);
        return *out ? 0 : PX_ERR_NOMEM;
    }
    if (!t->shared) {
        if (!t->system_loaded) {
            /* Read once: the bundle may be absent (then only the origin CA). */
            t->system_loaded = 1;
            char ca[CN_TRUST_PATH_MAX];
            t->system = rt_file_read(cn_trust_system_ca_path(ca, sizeof(ca)), 16 << 20,
                                     &t->system_len, NULL);
            if (!t->system)
                t->system_len = 0;
        }
        t->shared = join(t->system, t->system_len, t->origin_ca);
        if (!t->shared)
            return PX_ERR_NOMEM;
    }
    t->shared->refs++;
    *out = t->shared;
    return 0;
}
