#include "px_nv.h"
#include "px_err.h"

#include <stdlib.h>
#include <string.h>

/* A block of string storage (the first one may start with the nv entries). */
struct px_nv_block {
    struct px_nv_block *next; /* older */
    size_t cap, used;
    _Alignas(nghttp2_nv) uint8_t data[];
};

/* The first block's string room, and the most a later block takes unless a
 * field needs more: a request or response head usually fits the first. */
#define FIRST_STRINGS 512
#define FIRST_FIELDS 16
#define BLOCK_MAX (16 * 1024)

void px_nv_init(struct px_nv *h, size_t max_fields, size_t max_bytes)
{
    memset(h, 0, sizeof(*h));
    h->max_fields = max_fields;
    h->max_bytes = max_bytes;
}

static struct px_nv_block *block_new(size_t cap)
{
    if (cap > SIZE_MAX - sizeof(struct px_nv_block))
        return NULL;
    struct px_nv_block *b = malloc(sizeof(*b) + cap);
    if (!b)
        return NULL;
    b->next = NULL;
    b->cap = cap;
    b->used = 0;
    return b;
}

void px_nv_clear(struct px_nv *h)
{
    struct px_nv_block *b = h->blocks;
    while (b && b->next) { /* keep only the oldest, which may hold nv */
        struct px_nv_block *older = b->next;
        free(b);
        b = older;
    }
    h->blocks = b;
    if (b)
        b->used = h->nv_in_block;
    h->n = 0;
    h->bytes = 0;
}

void px_nv_cleanup(struct px_nv *h)
{
    struct px_nv_block *b = h->blocks;
    while (b) {
        struct px_nv_block *older = b->next;
        free(b);
        b = older;
    }
    if (!h->nv_in_block)
        free(h->nv);
    memset(h, 0, sizeof(*h));
}

/* n bytes of string storage, or NULL. */
static uint8_t *take(struct px_nv *h, size_t n)
{
    struct px_nv_block *b = h->blocks;
    if (!b || b->cap - b->used < n) {
        size_t cap = b ? (b->cap < BLOCK_MAX / 2 ? b->cap * 2 : BLOCK_MAX) : FIRST_STRINGS;
        struct px_nv_block *nb = block_new(n > cap ? n : cap);
        if (!nb)
            return NULL;
        nb->next = b;
        h->blocks = b = nb;
    }
    uint8_t *p = b->data + b->used;
    b->used += n;
    return p;
}

/* A NUL-terminated copy of p[0..n) at dst, lower-cased if lower. */
static uint8_t *copy(uint8_t *dst, const char *p, size_t n, int lower)
{
    if (lower) {
        for (size_t i = 0; i < n; i++) {
            char c = p[i];
            dst[i] = (uint8_t)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        }
    } else if (n) {
        memcpy(dst, p, n);
    }
    dst[n] = '\0';
    return dst;
}

/* Whether bytes more than h holds now stay within the byte cap. */
static int fits(const struct px_nv *h, size_t bytes)
{
    return !h->max_bytes || (bytes <= h->max_bytes && h->bytes <= h->max_bytes - bytes);
}

/* Room for one more entry in nv. Returns 0 or PX_ERR_NOMEM. */
static int grow(struct px_nv *h)
{
    size_t cap = h->cap ? h->cap * 2 : FIRST_FIELDS;
    if (h->max_fields && cap > h->max_fields)
        cap = h->max_fields;
    if (cap > SIZE_MAX / sizeof(*h->nv) / 2)
        return PX_ERR_NOMEM;
    if (!h->blocks) {
        /* The first block: the entries, then the strings. */
        struct px_nv_block *b = block_new(cap * sizeof(*h->nv) + FIRST_STRINGS);
        if (!b)
            return PX_ERR_NOMEM;
        h->blocks = b;
        h->nv = (nghttp2_nv *)(void *)b->data;
        b->used = h->nv_in_block = cap * sizeof(*h->nv);
        h->cap = cap;
        return 0;
    }
    nghttp2_nv *nv;
    if (h->nv_in_block) {
        /* Out of the block (its bytes there stay unused until cleanup). */
        nv = malloc(cap * sizeof(*nv));
        if (nv && h->n)
            memcpy(nv, h->nv, h->n * sizeof(*nv));
    } else {
        nv = realloc(h->nv, cap * sizeof(*nv));
    }
    if (!nv)
        return PX_ERR_NOMEM;
    h->nv = nv;
    h->nv_in_block = 0;
    h->cap = cap;
    return 0;
}

int px_nv_add(struct px_nv *h, const char *name, size_t nlen, const char *value, size_t vlen,
              unsigned flags)
{
    if (nlen > SIZE_MAX / 4 || vlen > SIZE_MAX / 4)
        return PX_ERR_TOO_LARGE;
    size_t bytes = px_nv_field_size(nlen, vlen);
    if ((h->max_fields && h->n >= h->max_fields) || !fits(h, bytes))
        return PX_ERR_TOO_LARGE;
    if (h->n == h->cap && grow(h) < 0)
        return PX_ERR_NOMEM;
    uint8_t *s = take(h, nlen + 1 + vlen + 1);
    if (!s)
        return PX_ERR_NOMEM;
    uint8_t *n = copy(s, name, nlen, (flags & PX_NV_LOWER) != 0);
    uint8_t *v = copy(s + nlen + 1, value, vlen, 0);
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
    if (vlen > SIZE_MAX / 4)
        return PX_ERR_TOO_LARGE;
    size_t bytes = px_nv_field_size(f->namelen, vlen);
    if (h->max_bytes && bytes > old && !fits(h, bytes - old))
        return PX_ERR_TOO_LARGE;
    uint8_t *v = take(h, vlen + 1);
    if (!v)
        return PX_ERR_NOMEM;
    f->value = copy(v, value, vlen, 0);
    f->valuelen = vlen;
    h->bytes = h->bytes - old + bytes;
    return 0;
}

void px_nv_remove(struct px_nv *h, size_t i)
{
    h->bytes -= px_nv_field_size(h->nv[i].namelen, h->nv[i].valuelen);
    memmove(h->nv + i, h->nv + i + 1, (h->n - i - 1) * sizeof(*h->nv));
    h->n--;
}

/* ":status" with status (100..999) written into status_buf. */
static nghttp2_nv status_field(int status, char status_buf[PX_NV_STATUS_SIZE])
{
    status_buf[0] = (char)('0' + status / 100);
    status_buf[1] = (char)('0' + status / 10 % 10);
    status_buf[2] = (char)('0' + status % 10);
    status_buf[3] = '\0';
    return (nghttp2_nv){(uint8_t *)":status", (uint8_t *)status_buf, 7, 3, NGHTTP2_NV_FLAG_NONE};
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
    nv[0] = status_field(status, status_buf);
    if (n)
        memcpy(nv + 1, fields, n * sizeof(*nv));
    *out = nv;
    return 0;
}

int px_nv_submit_response(nghttp2_session *h2, int32_t stream_id, int status,
                          const nghttp2_nv *fields, size_t n, const nghttp2_data_provider *dp)
{
    char st[PX_NV_STATUS_SIZE];
    nghttp2_nv small[32], *nv = small;
    int rc;
    if (n < sizeof(small) / sizeof(small[0])) {
        /* The usual head: no allocation (nghttp2 copies what it submits). */
        if (status < 100 || status > 999)
            return PX_ERR_INVAL;
        small[0] = status_field(status, st);
        if (n)
            memcpy(small + 1, fields, n * sizeof(*small));
    } else if ((rc = px_nv_response(status, fields, n, st, &nv)) < 0) {
        return rc;
    }
    int rv = nghttp2_submit_response(h2, stream_id, nv, n + 1, dp);
    if (nv != small)
        free(nv);
    return rv == 0 ? 0 : PX_ERR_H2;
}
