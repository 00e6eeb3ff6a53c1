/* px_json: the one-JSON-object-per-line framing used by the control stream
 * and the enrolment exchange. */
#ifndef PX_JSON_H
#define PX_JSON_H

#include <jansson.h>

/* Serialises root compactly followed by '\n'. Returns a malloc'd string
 * (caller frees) or NULL. Does not take ownership of root. */
char *px_json_line(const json_t *root);
/* json_dumps(root, flags) that returns NULL when it runs out of memory.
 * jansson's own (2.14) ignores a failure to write an object key and returns
 * the text without it, e.g. a token missing "tunnel_id":. Returns a malloc'd
 * string (caller frees) or NULL. */
char *px_json_dumps(const json_t *root, size_t flags);

#endif
