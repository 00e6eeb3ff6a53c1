/* es_metrics: what the edge counts, for /metrics (Prometheus text, through
 * px_metrics) and for the status page (per-hostname rates, recent errors).
 *
 * One per server (es_server.metrics), created when serve starts. Every
 * event function accepts a NULL metrics object and does nothing then
 * (in-memory harnesses run servers without one), and never fails visibly: a
 * sample that finds no memory is dropped, a request is never failed because
 * of its metrics.
 *
 * Threads: one object is shared by the server's home loop and its worker
 * loops (serve --workers), each in its own thread. Every function below
 * that takes a metrics object may be called from any of those threads at
 * the same time as the others: each takes the object's mutex for the whole
 * of its own work (so one event's series move together as one, seen by a
 * concurrent render or es_metrics_status), never calls another of them
 * while holding it, and returns with it released. Exceptions:
 *  - es_metrics_new and es_metrics_free: the owner's, with no other thread
 *    using the object any more (free destroys the mutex);
 *  - es_metrics_render reads srv's tunnels and links, which belong to the
 *    home loop: call it on the home loop only (it reads them before taking
 *    the mutex, then sets the gauges and renders under it).
 * es_metrics_enrolment, es_metrics_request and es_metrics_status are called
 * on the home loop today; es_metrics_browser_open / _close and
 * es_metrics_refusal on whichever loop holds the browser connection. The
 * strings an event passes (es_metrics_request's route, host, ...) are
 * copied before the call returns.
 *
 * Families (names per the issue 12 contract):
 *   edge_build_info{version} 1, edge_start_time_seconds
 *   edge_browser_connections_open{protocol} (open now),
 *   edge_browser_connections_total{protocol}
 *   edge_requests_total{hostname,status_class}
 *   edge_request_duration_seconds (histogram)
 *   edge_bytes_total{direction="from_client"|"to_client"} (body bytes)
 *   edge_tunnels, edge_tunnels_connected, edge_links (read from the server
 *   when rendered)
 *   edge_enrolments_total{result="ok"|"refused"}
 *   edge_refusals_total{reason} (es_refusal_name)
 * Every series whose labels are known at start (protocols, directions,
 * results, refusal reasons) is created at 0 by es_metrics_new. No two
 * families clash as OpenMetrics names (X next to X_total, _count, ...).
 *
 * Hostnames: a request is counted under the route pattern that routed its
 * host (exact name or *.suffix, so bounded by the routes), or
 * ES_METRICS_UNROUTED. At most ES_METRICS_MAX_HOSTNAMES of them are kept;
 * past that, new ones are counted under PX_METRICS_OVERFLOW ("_other").
 *
 * Errors (a hostname's errors_total, the recent errors): a response with
 * status >= 500, a refusal (enum es_refusal), a response cut short, and
 * (recent errors only) a refused enrolment. */
#ifndef ES_METRICS_H
#define ES_METRICS_H

#include "es_access.h"
#include "px_buf.h"

#include <jansson.h>
#include <stdint.h>

struct es_metrics;
struct es_server;

#define ES_METRICS_UNROUTED "_unrouted"
#define ES_METRICS_MAX_HOSTNAMES 1000
#define ES_METRICS_RECENT_ERRORS 50
/* The window of the status page's rates, in seconds. */
#define ES_METRICS_RATE_WINDOW 60

/* Why the edge refused a browser request or connection (edge_refusals_total's
 * reason label: es_refusal_name). */
enum es_refusal {
    ES_REFUSAL_NONE = 0,
    /* The hostname's access policy refused the connection's certificate
     * (es_refusal_of_verdict): 403. */
    ES_REFUSAL_NO_CLIENT_CERT,
    ES_REFUSAL_CERT_EXPIRED,
    ES_REFUSAL_CERT_NOT_YET_VALID,
    ES_REFUSAL_CERT_REVOKED,
    ES_REFUSAL_UNTRUSTED_CA,
    ES_REFUSAL_SUBJECT_NOT_ALLOWED,
    ES_REFUSAL_CRL_STALE,
    ES_REFUSAL_CRL_MISSING,
    ES_REFUSAL_MISDIRECTED,        /* 421: a host other than the connection's SNI name */
    ES_REFUSAL_NO_TUNNEL,          /* 530: the tunnel has no connector connected */
    ES_REFUSAL_RATE_LIMITED,       /* 429: the client holds its share of the tunnel's streams */
    ES_REFUSAL_TUNNEL_BUSY,        /* 503: every connection of the tunnel is full */
    ES_REFUSAL_CONNECTION_CAP,     /* a connection closed at accept (--max-connections*) */
    ES_REFUSAL_BAD_REQUEST,        /* 400, or an HTTP/2 stream reset for a malformed head */
    ES_REFUSAL_URI_TOO_LONG,       /* 414 */
    ES_REFUSAL_HEADERS_TOO_LARGE,  /* 431 */
    ES_REFUSAL_METHOD_NOT_ALLOWED, /* 405: a plain CONNECT */
    ES_REFUSAL_TIMEOUT,            /* 408, or a request given up on (head or body too slow) */
    ES_REFUSAL_ENROL_RATE_LIMITED, /* an enrolment refused unchecked: too many failures */
    ES_REFUSAL_COUNT
};

/* The label value of r ("no_client_cert", "misdirected", ...); "none" for
 * ES_REFUSAL_NONE. Static text. */
const char *es_refusal_name(enum es_refusal r);
/* The refusal an access verdict stands for; ES_REFUSAL_NONE for OPEN and
 * ALLOWED. */
enum es_refusal es_refusal_of_verdict(enum es_access_verdict v);

/* How an enrolment ended. */
enum es_enrolment {
    ES_ENROL_OK = 0,
    ES_ENROL_BAD_TOKEN,    /* unknown tunnel or wrong secret (the same answer) */
    ES_ENROL_BAD_REQUEST,  /* malformed or too large */
    ES_ENROL_BAD_KEY,      /* the public key could not be certified */
    ES_ENROL_RATE_LIMITED, /* too many failures from the address */
    ES_ENROL_INTERNAL,     /* the edge could not read its database */
};

/* A new metrics object: its families declared, build info and start time
 * set. NULL when out of memory. */
struct es_metrics *es_metrics_new(void);
/* NULL is accepted. Every thread that counted into m must be done with it
 * (worker loops joined): this destroys its mutex. */
void es_metrics_free(struct es_metrics *m);

/* The wall clock in unix ms: the clock the event functions and
 * es_metrics_status take (tests pass their own). */
uint64_t es_metrics_now_ms(void);

/* A browser connection chose its protocol (h2: 1 for HTTP/2, 0 for
 * HTTP/1.1), and later closed. */
void es_metrics_browser_open(struct es_metrics *m, int h2);
void es_metrics_browser_close(struct es_metrics *m, int h2);

/* One browser request at its end (the front let go of it). */
struct es_metrics_request {
    const char *route;       /* the route pattern that routed its host, NULL: unrouted */
    const char *host;        /* its hostname as asked (recent errors), NULL: none */
    int status;              /* the status sent, 0 when none */
    enum es_refusal refusal; /* ES_REFUSAL_NONE unless the edge refused it */
    const char *reason;      /* for the recent errors when it was not refused: the
                                edge's error code ("tunnel_reset"...), NULL: none
                                ("origin" for an origin's 5xx, "response_cut") */
    int cut;                 /* the response was cut short (tunnel lost mid-body) */
    unsigned long long bytes_in, bytes_out; /* body bytes from / to the client */
    double duration_s;
    const char *request_id;
};
void es_metrics_request(struct es_metrics *m, const struct es_metrics_request *q, uint64_t now_ms);
/* A refusal outside any request: a connection closed at accept, an
 * HTTP/1.1 head too malformed to start a request, a connection whose first
 * head never came. Counted in edge_refusals_total and the recent errors. */
void es_metrics_refusal(struct es_metrics *m, enum es_refusal why, uint64_t now_ms);
/* An enrolment ended (edge_enrolments_total; refusals also go to the
 * recent errors as "enrolment_<why>", and ES_ENROL_RATE_LIMITED to
 * edge_refusals_total as ES_REFUSAL_ENROL_RATE_LIMITED). */
void es_metrics_enrolment(struct es_metrics *m, enum es_enrolment result, uint64_t now_ms);

/* Refreshes the gauges read from srv (tunnels, connected tunnels,
 * registered links) and appends the whole registry to out in Prometheus
 * text format (m NULL: appends nothing). Returns 0 or PX_ERR_NOMEM (out then
 * holds a partial text: do not serve it). On the home loop only: srv's
 * tunnels and links are read without a lock. */
int es_metrics_render(struct es_metrics *m, struct es_server *srv, struct px_buf *out);

/* For the status page: a new JSON object (the caller owns it)
 *  {"hostnames":[{"hostname","requests_total","errors_total",
 *                 "requests_per_min","errors_per_min"}],   sorted by hostname;
 *                                                           rates over the last 60 s
 *   "recent_errors":[{"time" (unix ms),"hostname","status","reason",
 *                     "request_id"}]}                      newest first, at most 50
 * "hostname" in a recent error is the name the client asked for ("-" when
 * none), "request_id" is null outside a request. now_ms: es_metrics_now_ms()'s
 * clock. m NULL: both lists empty. NULL on no memory. */
json_t *es_metrics_status(struct es_metrics *m, uint64_t now_ms);

/* For tests and views: the value of a counter or gauge family's series
 * (px_metric_get), 0 when absent (and for m NULL); read under the mutex.
 * name is the family's name; values one per label, in the family's order
 * (NULL when it has none). */
double es_metrics_value(const struct es_metrics *m, const char *name, const char *const *values);

#endif
