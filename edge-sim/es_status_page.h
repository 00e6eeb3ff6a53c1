/* es_status_page: the live status page at the admin listener's "/": plain
 * HTML and CSS with an inline script, no external assets, readable on a
 * phone (one column under 600 px). The page itself holds no data: it takes
 * the admin token once from the address's fragment (#token=..., then
 * removed from the address and kept in the browser's localStorage) or from
 * a form, and polls GET /api/status every 2 s with it. Everything it shows
 * is set as text (textContent), never parsed as HTML. */
#ifndef ES_STATUS_PAGE_H
#define ES_STATUS_PAGE_H

#include <stddef.h>

/* The document (static, NUL-terminated); its length into *len (may be NULL). */
const char *es_status_page_html(size_t *len);
/* The extra header lines to serve it with ("Name: value\r\n" each): a
 * Content-Security-Policy allowing only its own inline script and style (by
 * their SHA-256) and requests to its own origin, no framing, no referrer.
 * Returns a malloc'd string (caller frees) or NULL when out of memory. */
char *es_status_page_headers(void);

#endif
