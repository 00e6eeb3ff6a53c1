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

#endif
