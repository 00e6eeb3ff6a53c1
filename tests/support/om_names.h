/* om_names: the OpenMetrics rule that a Prometheus text (format 0.0.4) must
 * also keep for strict parsers to read it: no two metric families may claim
 * one name (review 12.4: a gauge X next to a counter X_total is one family
 * twice to OpenMetrics and to the python client).
 *
 * Each "# TYPE NAME TYPE" line declares a family. Its OpenMetrics name is
 * NAME, less "_total" for a counter; it claims that name and the names of
 * the samples its type implies (prometheus_client.openmetrics.parser's
 * rule): counter _total _created; summary _count _sum _created; histogram
 * _count _sum _bucket _created; gaugehistogram _gcount _gsum _bucket;
 * info _info. A sample line that is none of the current family's samples
 * is a family of its own (untyped) and claims its name. */
#ifndef OM_NAMES_H
#define OM_NAMES_H

#include <stddef.h>

/* Returns 0 when no two families of text claim one name, 1 when two do (why
 * then holds which, truncated to why_len), -1 when out of memory. text is
 * NUL-terminated. */
int om_names_clash(const char *text, char *why, size_t why_len);

#endif
