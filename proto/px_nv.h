/* px_nv: a growable nghttp2_nv header array that owns its strings, with the
 * caps a proxy needs on a head it did not write: a field count and a byte
 * total counted as HPACK does (RFC 7541 4.1: name + value + 32 per field).
 *
 * Every name and value in the array is a copy, NUL-terminated (the NUL is
 * not in namelen/valuelen), so the array can be handed to nghttp2 as is
 * (nghttp2 copies what it submits) and read as C strings.
 *
 * Storage (issue 13: one head cost two mallocs per field): the copies live
 * in blocks the array owns, packed one after the other, and the first block
 * also holds the first fields' nghttp2_nv entries, so a typical head costs
 * one allocation. Strings never move while the array lives (a block is never
 * reallocated), so pointers into them stay valid until px_nv_clear or
 * px_nv_cleanup. Nobody but px_nv frees them. A replaced value
 * (px_nv_set_value) or a removed field (px_nv_remove) keeps its bytes until
 * then: the waste is bounded by what was added, which the caller caps. */
#ifndef PX_NV_H
#define PX_NV_H

#include <nghttp2/nghttp2.h>
#include <stddef.h>
#include <stdint.h>

/* What one field counts against a byte cap (RFC 7541 4.1). */
#define PX_NV_FIELD_OVERHEAD 32
static inline size_t px_nv_field_size(size_t nlen, size_t vlen)
{
    return nlen + vlen + PX_NV_FIELD_OVERHEAD;
}

/* Flags for px_nv_add. */
#define PX_NV_LOWER 1u /* store the name in lower case (HTTP/2 wants that) */

struct px_nv_block; /* px_nv.c's */

struct px_nv {
    nghttp2_nv *nv; /* n fields; each name/value owned (see above) */
    size_t n, cap;
    size_t bytes;      /* sum of px_nv_field_size over the fields */
    size_t max_fields; /* 0: no cap */
    size_t max_bytes;  /* 0: no cap */
    /* px_nv's own: the string blocks, newest first (the oldest may start
     * with the nv entries: then nv_in_block is the bytes they take). A
     * struct px_nv may be copied by value (it points to no storage inside
     * itself); only one of the copies is then used and cleaned up. */
    struct px_nv_block *blocks;
    size_t nv_in_block;
};

/* An empty array with caps (0 for none). Allocates nothing. */
void px_nv_init(struct px_nv *h, size_t max_fields, size_t max_bytes);
/* Frees every field and the array; h may be px_nv_init()ed again (it keeps
 * nothing, caps included). */
void px_nv_cleanup(struct px_nv *h);
/* Drops every field but keeps the array's storage (its first block) and the
 * caps: for the next head of the same stream. */
void px_nv_clear(struct px_nv *h);

/* Appends a copy of name/value (flags: PX_NV_LOWER). Returns 0,
 * PX_ERR_TOO_LARGE if the field would pass max_fields or max_bytes, or
 * PX_ERR_NOMEM; on an error h is unchanged. */
int px_nv_add(struct px_nv *h, const char *name, size_t nlen, const char *value, size_t vlen,
              unsigned flags);
/* px_nv_add with C strings. */
int px_nv_add_str(struct px_nv *h, const char *name, const char *value, unsigned flags);
/* The index of the first field named exactly name (case-sensitive: the names
 * a caller adds with PX_NV_LOWER are lower case), or -1. */
long px_nv_find(const struct px_nv *h, const char *name);
/* Replaces the value of field i (< n) with a copy of value (the old copy's
 * bytes stay in the array's storage until px_nv_clear). Returns 0,
 * PX_ERR_TOO_LARGE (the byte cap) or PX_ERR_NOMEM; h is unchanged on error. */
int px_nv_set_value(struct px_nv *h, size_t i, const char *value, size_t vlen);
/* Removes field i (< n), keeping the order of the others. */
void px_nv_remove(struct px_nv *h, size_t i);

/* Room for ":status" and three digits. */
#define PX_NV_STATUS_SIZE 4

/* A response head for nghttp2: a new array of 1 + n fields, ":status" first
 * (its value written into status_buf, which must outlive the array), then
 * fields[0..n). The strings are shared, not copied: free only the array
 * (free(*out)). status must be 100..999. Returns 0, PX_ERR_INVAL or
 * PX_ERR_NOMEM. */
int px_nv_response(int status, const nghttp2_nv *fields, size_t n,
                   char status_buf[PX_NV_STATUS_SIZE], nghttp2_nv **out);
/* nghttp2_submit_response on stream_id with ":status" and fields[0..n) (may
 * be px_nv's nv/n); dp NULL for a head without body. Returns 0,
 * PX_ERR_INVAL, PX_ERR_NOMEM or PX_ERR_H2 (nghttp2 refused; the stream is
 * left as it was). */
int px_nv_submit_response(nghttp2_session *h2, int32_t stream_id, int status,
                          const nghttp2_nv *fields, size_t n, const nghttp2_data_provider *dp);

#endif
