/* px_hostname: hostnames and hostname patterns ("host.example" or "*.example"). */
#ifndef PX_HOSTNAME_H
#define PX_HOSTNAME_H

#include <stddef.h>

/* Copies authority into out lower-cased, without port or trailing dot.
 * Returns 0, or PX_ERR_INVAL if it is not a plausible hostname. */
int px_host_normalize(const char *authority, size_t len, char *out, size_t outlen);
/* Returns 1 if pattern is a valid hostname or "*.suffix" pattern. */
int px_host_pattern_valid(const char *pattern);
/* Returns 1 if host (normalized) matches pattern: exact (case-insensitive), or
 * "*.suffix" matching any name with one or more labels before ".suffix". */
int px_host_match(const char *pattern, const char *host);
/* Both arguments are valid patterns (px_host_pattern_valid). Returns 1 if
 * every name inner matches is also matched by outer: an exact name covers
 * only itself; "*.s" covers the names under s and the wildcards "*.s" and
 * "*.t" for any t under s (never s itself). */
int px_host_covers(const char *outer, const char *inner);
/* Both arguments are valid patterns. Returns 1 if some hostname is matched by
 * both a and b. For these patterns two sets that meet always nest, so this is
 * px_host_covers either way round: "x.s" and "*.s", "*.s" and "*.y.s", or
 * the same pattern twice. Two tunnels must never hold overlapping patterns,
 * or the more specific one would take over names the other was given. */
int px_host_overlap(const char *a, const char *b);

#endif
