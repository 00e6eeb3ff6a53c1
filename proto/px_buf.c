#include "px_buf.h"
#include "px_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void px_buf_init(struct px_buf *b)
{
    memset(b, 0, sizeof(*b));
}

void px_buf_cleanup(struct px_buf *b)
{
    size_t keep = b->min_cap;
    free(b->data);
    memset(b, 0, sizeof(*b));
    b->min_cap = keep;
}

uint8_t *px_buf_reserve(struct px_buf *b, size_t n)
{
    if (b->len == 0)
        b->off = 0;
    if (n > SIZE_MAX - b->len - b->off)
        return NULL;
    if (b->off + b->len + n <= b->cap)
        return b->data + b->off + b->len;
    /* Compact only when that moves fewer bytes than it frees (off >= len), so
     * each byte is moved at most once on average; otherwise grow. */
    if (b->off >= b->len && b->len + n <= b->cap) {
        memmove(b->data, b->data + b->off, b->len);
        b->off = 0;
        return b->data + b->len;
    }
    size_t need = b->len + n;
    if (need < n)
        return NULL;
    size_t cap = b->cap ? b->cap : (b->min_cap ? b->min_cap : 4096);
    while (cap < need) {
        if (cap > SIZE_MAX / 2)
            return NULL;
        cap *= 2;
    }
    uint8_t *d = malloc(cap);
    if (!d)
        return NULL;
    if (b->len)
        memcpy(d, b->data + b->off, b->len);
    free(b->data);
    b->data = d;
    b->off = 0;
    b->cap = cap;
    return b->data + b->len;
}

void px_buf_commit(struct px_buf *b, size_t n)
{
    b->len += n;
}

int px_buf_append(struct px_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    uint8_t *dst = px_buf_reserve(b, n);
    if (!dst)
        return PX_ERR_NOMEM;
    memcpy(dst, p, n);
    b->len += n;
    return 0;
}

int px_buf_append_str(struct px_buf *b, const char *s)
{
    return px_buf_append(b, s, strlen(s));
}

int px_buf_appendf(struct px_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return PX_ERR_INVAL;
    /* +1: vsnprintf always writes a NUL, which is not committed. */
    uint8_t *dst = px_buf_reserve(b, (size_t)n + 1);
    if (!dst)
        return PX_ERR_NOMEM;
    va_start(ap, fmt);
    int m = vsnprintf((char *)dst, (size_t)n + 1, fmt, ap);
    va_end(ap);
    if (m != n)
        return PX_ERR_INVAL;
    b->len += (size_t)n;
    return 0;
}

const char *px_buf_cstr(struct px_buf *b)
{
    uint8_t *end = px_buf_reserve(b, 1);
    if (!end)
        return NULL;
    *end = '\0';
    return (const char *)b->data + b->off;
}

void px_buf_consume(struct px_buf *b, size_t n)
{
    if (n >= b->len) {
        b->off = 0;
        b->len = 0;
        return;
    }
    b->off += n;
    b->len -= n;
}

size_t px_buf_read(struct px_buf *b, void *out, size_t n)
{
    if (n > b->len)
        n = b->len;
    if (n == 0)
        return 0;
    memcpy(out, b->data + b->off, n);
    px_buf_consume(b, n);
    return n;
}

void px_buf_shrink(struct px_buf *b, size_t keep)
{
    if (b->len == 0 && b->cap > keep) {
        free(b->data);
        b->data = NULL;
        b->cap = 0;
        b->off = 0;
    }
}
