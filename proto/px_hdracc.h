/* px_hdracc: assembles whole header fields from http_parser's
 * on_header_field / on_header_value callbacks, which may deliver a name or a
 * value in several pieces (one per http_parser_execute call that sees part of
 * it). Each complete field goes to the owner's emit function once its value
 * is over: when the next name starts, or at px_hdracc_end (call it from
 * on_headers_complete).
 *
 * Values are passed without leading or trailing spaces and tabs (RFC 9110
 * 5.5: optional whitespace is not part of a field value). Names and values
 * are not checked otherwise: validate them in emit (px_hdr_valid). The
 * parser bounds a whole head (HTTP_MAX_HEADER_SIZE); the caps here bound one
 * field and the number of fields for callers that need a tighter limit. */
#ifndef PX_HDRACC_H
#define PX_HDRACC_H

#include "px_buf.h"

#include <stddef.h>

/* Receives one complete field (nlen > 0; value may be empty). The strings
 * are valid only during the call (NUL-terminated at nlen / vlen). Returns 0
 * to go on, or a negative code that px_hdracc_field/_end then return. */
typedef int (*px_hdracc_emit_fn)(void *arg, const char *name, size_t nlen, const char *value,
                                 size_t vlen);

struct px_hdracc {
    struct px_buf name, value;
    int state;         /* 0 between fields, 1 in a name, 2 in a value */
    size_t max_field;  /* cap on one field's name + value bytes; 0: none */
    size_t max_fields; /* cap on fields per head; 0: none */
    size_t fields;     /* emitted since init / px_hdracc_reset */
    px_hdracc_emit_fn emit;
    void *arg;
};

/* Ready to accumulate; emit(arg, ...) receives the fields. Allocates nothing. */
void px_hdracc_init(struct px_hdracc *a, size_t max_field, size_t max_fields,
                    px_hdracc_emit_fn emit, void *arg);
/* Frees what is buffered; a may be px_hdracc_init()ed again. */
void px_hdracc_cleanup(struct px_hdracc *a);
/* Forgets a partial field and the field count (a new message starts). Keeps
 * the caps, the emit function and the storage. */
void px_hdracc_reset(struct px_hdracc *a);

/* From on_header_field / on_header_value: len bytes more of the current name
 * / value. A name that follows a value first emits the finished field.
 * Returns 0, emit's negative code, PX_ERR_TOO_LARGE (a cap) or PX_ERR_NOMEM. */
int px_hdracc_field(struct px_hdracc *a, const char *at, size_t len);
int px_hdracc_value(struct px_hdracc *a, const char *at, size_t len);
/* From on_headers_complete: emits the last field, if any. Returns as above;
 * afterwards the accumulator is between fields (ready for trailers). */
int px_hdracc_end(struct px_hdracc *a);

#endif
