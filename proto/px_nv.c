#include "px_nv.h"
#include "px_err.h"

#include <stdlib.h>
#include <string.h>

void px_nv_init(struct px_nv *h, size_t max_fields, size_t max_bytes)
{
    memset(h, 0, sizeof(*h));
    h->max_fields = max_fields;
    h->max_bytes = max_bytes;
}

static void free_field(nghttp2_nv *f)
{
    free(f->name);
    free(f->value);
}

void px_nv_clear(struct px_nv *h)
{
    for (size_t i = 0; i < h->n; i++)
        free_field(&h->nv[i]);
    h->n = 0;
    h->bytes = 0;
}

void px_nv_cleanup(struct px_nv *h)
{
    px_nv_clear(h);
    free(h->nv);
    memset(h, 0, sizeof(*h));
}

/* A NUL-terminated copy of p[0..n), lower-cased if lower. */
static uint8_t *copy(const char *p, size_t n, int lower)
{
    uint8_t *s = malloc(n + 1);
    if (!s)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        s[i] = (uint8_t)(lower && c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    s[n] = '\0';
    return s;
}

/* Whether bytes more than h holds now stay within the byte cap. */
static int fits(const struct px_nv *h, size_t bytes)
{
    return !h->max_bytes || (bytes <= h->max_bytes && h->bytes <= h->max_bytes - bytes);
}

int px_nv_add(struct px_nv *h, const char *name, size_t nlen, const char *value, size_t vlen,
              unsigned flags)
{
    if (nlen > SIZE_MAX / 2 || vlen > SIZE_MAX / 2)
        return PX_ERR_TOO_LARGE;
    size_t bytes = px_nv_field_size(nlen, vlen);
    if ((h->max_fields && h->n >= h->max_fields) || !fits(h, bytes))
        return PX_ERR_TOO_LARGE;
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        if (h->max_fields && cap > h->max_fields)
            cap = h->max_fields;
        if (cap > SIZE_MAX / sizeof(*h->nv))
            return PX_ERR_NOMEM;
        nghttp2_nv *nv = realloc(h->nv, cap * sizeof(*nv));
        if (!nv)
            return PX_ERR_NOMEM;
        h->nv = nv;
        h->cap = cap;
    }
    uint8_t *n = copy(name, nlen, (flags & PX_NV_LOWER) != 0);
    uint8_t *v = copy(value, vlen, 0);
    if (!n || !v) {
        free(n);
        free(v);
        return PX_ERR_NOMEM;
    }
    h->nv[h->n++] = (nghttp2_nv){n, v, nlen, vlen, NGHTTP2_NV_FLAG_NONE};
    h->bytes += bytes;
    return 0;
}

int px_nv_add_str(struct px_nv *h, const char *name, const char *value, unsigned flags)
{
    return px_nv_add(h, name, strlen(name), value, strlen(value), flags);
}

long px_nv_find(const struct px_nv *h, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < h->n; i++)
        if (h->nv[i].namelen == len && memcmp(h->nv[i].name, name, len) == 0)
            return (long)i;
    return -1;
}

int px_nv_set_value(struct px_nv *h, size_t i, const char *value, size_t vlen)
{
    nghttp2_nv *f = &h->nv[i];
    size_t old = px_nv_field_size(f->namelen, f->valuelen);
    if (vlen > SIZE_MAX / 2)
        return PX_ERR_TOO_LARGE;
    size_t bytes = px_nv_field_size(f->namelen, vlen);
    if (h->max_bytes && bytes > old && !fits(h, bytes - old))
        return PX_ERR_TOO_LARGE;
    uint8_t *v = copy(value, vlen, 0);
    if (!v)
        return PX_ERR_NOMEM;
    free(f->value);
    f->value = v;
    f->valuelen = vlen;
    h->bytes = h->bytes - old + bytes;
    return 0;
}

void px_nv_remove(struct px_nv *h, size_t i)
{
    h->bytes -= px_nv_field_size(h->nv[i].namelen, h->nv[i].valuelen);
    free_field(&h->nv[i]);
    memmove(h->nv + i, h->nv + i + 1, (h->n - i - 1) * sizeof(*h->nv));
    h->n--;
}

int px_nv_response(int status, const nghttp2_nv *fields, size_t n,
                   char status_buf[PX_NV_STATUS_SIZE], nghttp2_nv **out)
{
    *out = NULL;
    if (status < 100 || status > 999 || n > SIZE_MAX / sizeof(**out) - 1)
        return PX_ERR_INVAL;
    nghttp2_nv *nv = malloc((n + 1) * sizeof(*nv));
    if (!nv)
        return PX_ERR_NOMEM;
    status_buf[0] = (char)('0' + status / 100);
    status_buf[1] = (char)('0' + status / 10 % 10);
    status_buf[2] = (char)('0' + status % 10);
    status_buf[3] = '\0';
    nv[0] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)status_buf, 7, 3, NGHTTP2_NV_FLAG_NONE};
    if (n)
        memcpy(nv + 1, fields, n * sizeof(*nv));
    *out = nv;
    return 0;
}

int px_nv_submit_response(nghttp2_session *h2, int32_t stream_id, int status,
                          const nghttp2_nv *fields, size_t n, const nghttp2_data_provider *dp)
{
    char st[PX_NV_STATUS_SIZE];
    nghttp2_nv *nv;
    int rc = px_nv_response(status, fields, n, st, &nv);
    if (rc < 0)
        return rc;
    int rv = nghttp2_submit_response(h2, stream_id, nv, n + 1, dp);
    free(nv);
    return rv == 0 ? 0 : PX_ERR_H2;
}
