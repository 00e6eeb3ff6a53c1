/* cn_metrics: the connector's metrics (px_metrics families) and the small
 * typed events the rest of the connector reports them through. One object
 * per supervisor (one loop); streams reach it through struct cn_stream_env,
 * links through their host's env.
 *
 * Every event function accepts a NULL object and does nothing then (test
 * harnesses and tools without metrics), and never fails visibly: metrics
 * never fail a request or a link (px_metrics drops what it cannot store).
 *
 * Families (Prometheus conventions; see docs in ISSUE12_CONTRACT):
 *   connector_build_info{version} 1, connector_start_time_seconds,
 *   connector_links_up{edge}, connector_reconnects_total{edge},
 *   connector_registration_failures_total{edge,reason},
 *   connector_requests_total{rule,status_class},
 *   connector_ingress_rule_info{rule,hostname,path} 1,
 *   connector_active_streams, connector_active_websockets,
 *   connector_bytes_total{direction}, connector_origin_response_seconds{rule},
 *   connector_origin_errors_total{cause}, process_resident_memory_bytes,
 *   process_open_fds.
 * A rule is named by its index in the rule set ("0", "1", ...); requests
 * answered before any rule matched (a bad request, no route) count under
 * CN_METRICS_NO_RULE. */
#ifndef CN_METRICS_H
#define CN_METRICS_H

#include "cn_link.h"
#include "cn_origin.h"
#include "px_buf.h"

#include <stddef.h>
#include <stdint.h>

#define CN_METRICS_NO_RULE "_none"
/* Enough for a rule's label ("%zu"). */
#define CN_METRICS_RULE_LEN 24

struct cn_metrics;
struct cn_ingress;
struct cn_rule;
struct px_metrics;

/* A registry with every family declared: build info for version, the start
 * time start_unix_s (seconds since the epoch), the gauges at 0, every
 * origin-error cause and both byte directions at 0. NULL on no memory. */
struct cn_metrics *cn_metrics_new(const char *version, double start_unix_s);
/* Frees m and its registry (and its reference to the rule set). NULL is
 * accepted. */
void cn_metrics_free(struct cn_metrics *m);

/* Renders the registry as Prometheus text into out, after refreshing the
 * process gauges from /proc. Returns 0 or PX_ERR_NOMEM (out then holds a
 * partial text: do not serve it). */
int cn_metrics_render(struct cn_metrics *m, struct px_buf *out);
/* The registry, for tests reading one series (px_metric_get through
 * cn_metrics_family). */
struct px_metrics *cn_metrics_registry(struct cn_metrics *m);
/* The family called name, or NULL (for tests). */
struct px_metric *cn_metrics_family(struct cn_metrics *m, const char *name);

/* ---- configuration ---- */

/* The edges the connector keeps links to: their links_up and
 * reconnects_total series, and a registration_failures_total series for
 * every reason cn_metrics_link_reason names, exist (at 0) before any link
 * comes up or fails. */
void cn_metrics_edges(struct cn_metrics *m, const char *const *edges, size_t n);
/* The current rule set (at start and after each reload): replaces the
 * connector_ingress_rule_info series. Takes a reference to ing. */
void cn_metrics_rules(struct cn_metrics *m, struct cn_ingress *ing);
/* r's label ("0", "1", ...; CN_METRICS_NO_RULE for NULL) in buf. */
const char *cn_metrics_rule_label(const struct cn_rule *r, char buf[CN_METRICS_RULE_LEN]);

/* ---- links ---- */

/* A link to edge registered / a registered link closed. */
void cn_metrics_link_up(struct cn_metrics *m, const char *edge);
void cn_metrics_link_down(struct cn_metrics *m, const char *edge);
/* A slot dials again after losing (or failing to set up) its link to edge. */
void cn_metrics_reconnect(struct cn_metrics *m, const char *edge);
/* A link to edge closed before the edge accepted its registration, for
 * cause (CN_LINK_CAUSE_LOCAL, our own close, is not a failure and is not
 * counted). */
void cn_metrics_registration_failed(struct cn_metrics *m, const char *edge,
                                    enum cn_link_cause cause);
/* The reason label of cause ("resolve", "connect", "timeout", "tls",
 * "cert_refused", "refused", "protocol", "closed", "other"), or NULL for
 * the causes that are no failure (CN_LINK_OPEN, CN_LINK_CAUSE_LOCAL). */
const char *cn_metrics_link_reason(enum cn_link_cause cause);

/* ---- requests ---- */

/* A tunnel stream was created / went away. */
void cn_metrics_stream_open(struct cn_metrics *m);
void cn_metrics_stream_close(struct cn_metrics *m);
/* A WebSocket started relaying / stopped. */
void cn_metrics_websocket_open(struct cn_metrics *m);
void cn_metrics_websocket_close(struct cn_metrics *m);
/* A request ended with status (0: no response was sent; not counted in
 * requests_total) under rule (NULL: answered before a rule matched). */
void cn_metrics_request_done(struct cn_metrics *m, const struct cn_rule *rule, int status);
/* Body bytes sent to / received from origins (counted as they move, so a
 * long WebSocket shows its traffic while it lasts). */
void cn_metrics_bytes_to_origin(struct cn_metrics *m, uint64_t n);
void cn_metrics_bytes_from_origin(struct cn_metrics *m, uint64_t n);
/* The origin of rule answered with a response head seconds after the
 * request was sent to it. */
void cn_metrics_origin_response(struct cn_metrics *m, const struct cn_rule *rule, double seconds);
/* An origin request failed for cause. */
void cn_metrics_origin_error(struct cn_metrics *m, enum cn_origin_cause cause);
/* The cause label ("refused", "resolve", "tls_verify", "tls", "timeout",
 * "reset", "bad_response", "other"). */
const char *cn_metrics_origin_cause(enum cn_origin_cause cause);
/* "1xx" .. "5xx" for status, or NULL outside 100..599. */
const char *cn_metrics_status_class(int status);

#endif
