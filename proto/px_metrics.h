/* px_metrics: counters, gauges and histograms with labels, rendered in the
 * Prometheus text exposition format (version 0.0.4). I/O-free.
 *
 * A registry belongs to one loop (no locking): the daemon creates it at
 * start, declares its families once, updates series as events happen and
 * renders the whole registry when /metrics is scraped.
 *
 * Names follow Prometheus conventions: snake_case, a unit suffix
 * (_seconds, _bytes), counters end in _total. Label values come from
 * outside (hostnames, edge addresses): they are escaped when rendered
 * (backslash, double quote, newline) and their number is capped per family
 * (max_series): past the cap, new label sets are folded into one series whose
 * every label value is PX_METRICS_OVERFLOW, so hostile input can never grow
 * memory without bound.
 *
 * Updating never fails visibly: when memory runs out the sample is dropped
 * (a request is never failed because of its metrics). */
#ifndef PX_METRICS_H
#define PX_METRICS_H

#include "px_buf.h"

#include <stddef.h>

#define PX_METRICS_MAX_LABELS 4
#define PX_METRICS_OVERFLOW "_other"
#define PX_METRICS_DEFAULT_MAX_SERIES 1000
#define PX_METRICS_MAX_BUCKETS 24

enum px_metric_type { PX_METRIC_COUNTER, PX_METRIC_GAUGE, PX_METRIC_HISTOGRAM };

struct px_metrics; /* a registry */
struct px_metric;  /* a family: one name, help text, type and label names */

/* A new empty registry, or NULL when out of memory. */
struct px_metrics *px_metrics_new(void);
/* Frees the registry, its families and series. NULL is accepted. */
void px_metrics_free(struct px_metrics *m);

/* Declares a family. name must match [a-zA-Z_:][a-zA-Z0-9_:]* and be new in
 * m; help is one line of text (escaped when rendered); labels is NULL or a
 * NULL-terminated array of at most PX_METRICS_MAX_LABELS label names
 * ([a-zA-Z_][a-zA-Z0-9_]*, not starting with "__", not "le"). For
 * PX_METRIC_HISTOGRAM, buckets holds n_buckets finite upper bounds in
 * strictly ascending order (at most PX_METRICS_MAX_BUCKETS; +Inf is
 * implied); otherwise buckets is NULL and n_buckets 0. max_series caps the
 * label sets (0 means PX_METRICS_DEFAULT_MAX_SERIES). Strings are copied.
 * Returns the family, owned by m, or NULL on invalid arguments or no memory. */
struct px_metric *px_metrics_family(struct px_metrics *m, const char *name, const char *help,
                                    enum px_metric_type type, const char *const *labels,
                                    const double *buckets, size_t n_buckets, size_t max_series);

/* The updates. values holds exactly one string per label name of the family
 * (NULL when it has none); the strings are copied when a series is created.
 * A NULL value counts as "". Values are truncated to 128 bytes.
 *  - px_metric_add: a counter (v >= 0; negative v is ignored) or a gauge
 *    (any v) grows by v.
 *  - px_metric_set: a gauge takes v (ignored on other types).
 *  - px_metric_observe: a histogram counts v into its buckets and sum
 *    (ignored on other types).
 * A series is created at its first update and rendered from then on, even
 * when it returns to 0. A NULL family is accepted and ignored (a family whose
 * declaration failed for lack of memory). */
void px_metric_add(struct px_metric *f, const char *const *values, double v);
void px_metric_set(struct px_metric *f, const char *const *values, double v);
void px_metric_observe(struct px_metric *f, const char *const *values, double v);

/* The current value of one series of a counter or gauge (0 when it does not
 * exist): for tests and for views (the status page) built on the same
 * numbers. For histograms, the number of observations. */
double px_metric_get(const struct px_metric *f, const char *const *values);

/* Removes the series of f with these values (a gauge whose subject is gone,
 * e.g. the links of an edge that is no longer configured). */
void px_metric_remove(struct px_metric *f, const char *const *values);

/* Appends the whole registry, families in declaration order and series in
 * creation order, as Prometheus text format 0.0.4 (# HELP, # TYPE, samples;
 * histograms as _bucket{le=...} cumulative, _sum and _count). Returns 0 or
 * PX_ERR_NOMEM (out then holds a partial text: do not serve it). */
int px_metrics_render(const struct px_metrics *m, struct px_buf *out);

/* The content type to serve the rendering with. */
#define PX_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
