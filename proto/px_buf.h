/* px_buf: a contiguous byte queue (append at the tail, consume at the head).
 * Memory bounds are the caller's policy: compare px_buf_len() against its own
 * high/low watermarks before appending more. */
#ifndef PX_BUF_H
#define PX_BUF_H

#include <stddef.h>
#include <stdint.h>

struct px_buf {
    uint8_t *data;
    size_t off; /* start of unread bytes */
    size_t len; /* number of unread bytes */
    size_t cap;
    size_t min_cap; /* first allocation size (0: 4 KiB); avoids regrowing hot buffers */
};

void px_buf_init(struct px_buf *b);
/* Sets the first allocation size for a buffer that will carry bulk data. */
static inline void px_buf_set_min_cap(struct px_buf *b, size_t n)
{
    b->min_cap = n;
}
/* Frees the storage; the buffer may be reused after px_buf_init. */
void px_buf_cleanup(struct px_buf *b);
/* Appends n bytes. Returns 0 or PX_ERR_NOMEM (buffer unchanged). */
int px_buf_append(struct px_buf *b, const void *p, size_t n);
/* Appends the C string s (without its NUL). Returns 0 or PX_ERR_NOMEM. */
int px_buf_append_str(struct px_buf *b, const char *s);
/* Appends printf-formatted text, growing as needed: nothing is ever truncated.
 * Returns 0, PX_ERR_NOMEM (buffer unchanged) or PX_ERR_INVAL (format error).
 * The text is not NUL-terminated in the buffer; see px_buf_cstr. */
int px_buf_appendf(struct px_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* NUL-terminates the unread bytes (the NUL is not counted in the length) and
 * returns them as a string, or NULL on no memory. Valid until the next change. */
const char *px_buf_cstr(struct px_buf *b);
/* Ensures room for n more bytes at the tail; returns a pointer to it or NULL.
 * Commit what was written with px_buf_commit. */
uint8_t *px_buf_reserve(struct px_buf *b, size_t n);
void px_buf_commit(struct px_buf *b, size_t n);
/* Drops n (<= len) bytes from the head. */
void px_buf_consume(struct px_buf *b, size_t n);
static inline const uint8_t *px_buf_head(const struct px_buf *b)
{
    return b->data ? b->data + b->off : b->data;
}
static inline size_t px_buf_len(const struct px_buf *b)
{
    return b->len;
}
/* Copies up to n bytes out of the head and consumes them; returns the count. */
size_t px_buf_read(struct px_buf *b, void *out, size_t n);
/* Releases storage when empty and larger than keep bytes (idle streams hold nothing). */
void px_buf_shrink(struct px_buf *b, size_t keep);

#endif
