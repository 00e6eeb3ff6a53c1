/* px_json: the one-JSON-object-per-line framing used by the control stream
 * and the enrolment exchange. */
#ifndef PX_JSON_H
#define PX_JSON_H

#include <jansson.h>

/* Serialises root compactly followed by '\n'. Returns a malloc'd string
 * (caller frees) or NULL. Does not take ownership of root. */
char *px_json_line(const json_t *root);

#endif
