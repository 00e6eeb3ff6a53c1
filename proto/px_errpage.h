/* px_errpage: the short error pages both binaries send. The first line is
 * plain text for curl users; the rest is a minimal HTML page for browsers. */
#ifndef PX_ERRPAGE_H
#define PX_ERRPAGE_H

#include <stddef.h>

/* Returns the reason phrase for an HTTP status ("Bad Gateway"), or "Error". */
const char *px_status_reason(int status);
/* Renders the page for status with detail (plain text; HTML-escaped here) into
 * a malloc'd string; *len receives its length. Returns NULL on no memory. */
char *px_errpage_render(int status, const char *detail, size_t *len);

#endif
