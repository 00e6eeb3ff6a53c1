#include "es_metrics.h"
#include "es_link.h"
#include "es_registry.h"
#include "es_server.h"
#include "es_text.h"
#include "px_err.h"
#include "px_metrics.h"
#include "px_version.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#define W ES_METRICS_RATE_WINDOW

/* One hostname (route pattern) of the status page: totals, and a ring of
 * per-second counts for the rates, slot = second % W, valid while its
 * stamp is that second. */
struct host_stat {
    char *name;
    unsigned long long requests, errors;
    /* Requests counted here and not yet in edge_requests_total, by status
     * class (status_class_index): a px_metrics lookup per request costs
     * more than the rest of the accounting. A class's first request goes
     * in at once (its series is made then, in the order it always was);
     * the rest wait for flush_pending. */
    unsigned seen_class;
    unsigned long long pending[6];
    uint32_t sec[W];
    uint32_t req[W];
    uint32_t err[W];
};

struct recent_error {
    uint64_t time_ms;
    char host[256];
    int status;
    char reason[48];
    char request_id[33]; /* "" outside a request */
};

/* A family and its name, for es_metrics_value. */
struct family {
    const char *name;
    struct px_metric *f;
};

enum {
    F_BUILD_INFO,
    F_START_TIME,
    F_BROWSER_CONNS,
    F_BROWSER_CONNS_TOTAL,
    F_REQUESTS,
    F_DURATION,
    F_BYTES,
    F_TUNNELS,
    F_TUNNELS_CONNECTED,
    F_LINKS,
    F_ENROLMENTS,
    F_REFUSALS,
    F_COUNT
};

struct es_metrics {
    /* Taken by every entry point for the whole of its work on the fields
     * below: browser connections on worker loops count from their threads
     * (es_metrics.h). Held only around px_metrics, jansson and es_text
     * calls, which neither lock nor call back: no lock order to keep. */
    uv_mutex_t lock;
    struct px_metrics *reg;
    struct family fam[F_COUNT];
    /* Sorted by name; at most ES_METRICS_MAX_HOSTNAMES plus the overflow. */
    struct host_stat **hosts;
    size_t n_hosts, cap_hosts;
    struct recent_error recent[ES_METRICS_RECENT_ERRORS];
    size_t n_recent, next_recent; /* next_recent: the slot the next one takes */
    /* Body bytes not yet in edge_bytes_total (its two series exist from
     * the start): added by flush_pending, before anything reads it. */
    unsigned long long pending_in, pending_out;
};

static const char *const refusal_names[ES_REFUSAL_COUNT] = {
    [ES_REFUSAL_NONE] = "none",
    [ES_REFUSAL_NO_CLIENT_CERT] = "no_client_cert",
    [ES_REFUSAL_CERT_EXPIRED] = "cert_expired",
    [ES_REFUSAL_CERT_NOT_YET_VALID] = "cert_not_yet_valid",
    [ES_REFUSAL_CERT_REVOKED] = "cert_revoked",
    [ES_REFUSAL_UNTRUSTED_CA] = "untrusted_ca",
    [ES_REFUSAL_SUBJECT_NOT_ALLOWED] = "subject_not_allowed",
    [ES_REFUSAL_CRL_STALE] = "crl_stale",
    [ES_REFUSAL_CRL_MISSING] = "crl_missing",
    [ES_REFUSAL_MISDIRECTED] = "misdirected",
    [ES_REFUSAL_NO_TUNNEL] = "no_tunnel",
    [ES_REFUSAL_RATE_LIMITED] = "rate_limited",
    [ES_REFUSAL_TUNNEL_BUSY] = "tunnel_busy",
    [ES_REFUSAL_CONNECTION_CAP] = "connection_cap",
    [ES_REFUSAL_BAD_REQUEST] = "bad_request",
    [ES_REFUSAL_URI_TOO_LONG] = "uri_too_long",
    [ES_REFUSAL_HEADERS_TOO_LARGE] = "headers_too_large",
    [ES_REFUSAL_METHOD_NOT_ALLOWED] = "method_not_allowed",
    [ES_REFUSAL_TIMEOUT] = "timeout",
    [ES_REFUSAL_ENROL_RATE_LIMITED] = "enrolment_rate_limited",
};

const char *es_refusal_name(enum es_refusal r)
{
    return (unsigned)r < ES_REFUSAL_COUNT ? refusal_names[r] : "none";
}

enum es_refusal es_refusal_of_verdict(enum es_access_verdict v)
{
    switch (v) {
    case ES_ACCESS_OPEN:
    case ES_ACCESS_ALLOWED:
        return ES_REFUSAL_NONE;
    case ES_ACCESS_NO_CERT:
        return ES_REFUSAL_NO_CLIENT_CERT;
    case ES_ACCESS_EXPIRED:
        return ES_REFUSAL_CERT_EXPIRED;
    case ES_ACCESS_NOT_YET_VALID:
        return ES_REFUSAL_CERT_NOT_YET_VALID;
    case ES_ACCESS_REVOKED:
        return ES_REFUSAL_CERT_REVOKED;
    case ES_ACCESS_UNTRUSTED:
        return ES_REFUSAL_UNTRUSTED_CA;
    case ES_ACCESS_SUBJECT:
        return ES_REFUSAL_SUBJECT_NOT_ALLOWED;
    case ES_ACCESS_CRL_STALE:
        return ES_REFUSAL_CRL_STALE;
    case ES_ACCESS_CRL_MISSING:
        return ES_REFUSAL_CRL_MISSING;
    }
    return ES_REFUSAL_UNTRUSTED_CA; /* a verdict added later refuses: say so */
}

static const char *enrolment_reason(enum es_enrolment e)
{
    switch (e) {
    case ES_ENROL_OK:
        return "enrolment_ok";
    case ES_ENROL_BAD_TOKEN:
        return "enrolment_bad_token";
    case ES_ENROL_BAD_REQUEST:
        return "enrolment_bad_request";
    case ES_ENROL_BAD_KEY:
        return "enrolment_bad_key";
    case ES_ENROL_RATE_LIMITED:
        return "enrolment_rate_limited";
    case ES_ENROL_INTERNAL:
        return "enrolment_internal";
    }
    return "enrolment_refused";
}

uint64_t es_metrics_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Request durations: from a fast local answer to a slow origin. */
static const double duration_buckets[] = {.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60};

struct es_metrics *es_metrics_new(void)
{
    struct es_metrics *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    if (uv_mutex_init(&m->lock) != 0)
        goto out_free;
    m->reg = px_metrics_new();
    if (!m->reg)
        goto out_lock;
    static const char *const l_version[] = {"version", NULL};
    static const char *const l_protocol[] = {"protocol", NULL};
    static const char *const l_requests[] = {"hostname", "status_class", NULL};
    static const char *const l_direction[] = {"direction", NULL};
    static const char *const l_result[] = {"result", NULL};
    static const char *const l_reason[] = {"reason", NULL};
    static const struct {
        const char *name, *help;
        enum px_metric_type type;
        const char *const *labels;
        size_t max_series;
    } defs[F_COUNT] = {
        [F_BUILD_INFO] = {"edge_build_info", "The edge's version (value 1).", PX_METRIC_GAUGE,
                          l_version, 1},
        [F_START_TIME] = {"edge_start_time_seconds", "When this edge started, in unix seconds.",
                          PX_METRIC_GAUGE, NULL, 0},
        /* Not edge_browser_connections: next to the counter's
         * edge_browser_connections_total, the two would clash as one
         * OpenMetrics family (review 12.4). */
        [F_BROWSER_CONNS] = {"edge_browser_connections_open",
                             "Browser connections open now, by protocol.", PX_METRIC_GAUGE,
                             l_protocol, 2},
        [F_BROWSER_CONNS_TOTAL] = {"edge_browser_connections_total",
                                   "Browser connections opened, by protocol.", PX_METRIC_COUNTER,
                                   l_protocol, 2},
        /* Hostnames are capped here (plus _unrouted and _other), status
         * classes are six: the label sets cannot outgrow this. */
        [F_REQUESTS] = {"edge_requests_total",
                        "Browser requests, by the route pattern that routed them (_unrouted: "
                        "none) and status class (none: no response).",
                        PX_METRIC_COUNTER, l_requests, (ES_METRICS_MAX_HOSTNAMES + 2) * 6},
        [F_DURATION] = {"edge_request_duration_seconds",
                        "Browser requests, from the request head to the end of the response.",
                        PX_METRIC_HISTOGRAM, NULL, 0},
        [F_BYTES] = {"edge_bytes_total", "Body bytes from and to browsers.", PX_METRIC_COUNTER,
                     l_direction, 2},
        [F_TUNNELS] = {"edge_tunnels", "Tunnels in the edge's store.", PX_METRIC_GAUGE, NULL, 0},
        [F_TUNNELS_CONNECTED] = {"edge_tunnels_connected",
                                 "Tunnels with at least one registered connection here.",
                                 PX_METRIC_GAUGE, NULL, 0},
        [F_LINKS] = {"edge_links", "Registered connector connections here.", PX_METRIC_GAUGE, NULL,
                     0},
        [F_ENROLMENTS] = {"edge_enrolments_total", "Connector enrolments, by result.",
                          PX_METRIC_COUNTER, l_result, 2},
        [F_REFUSALS] = {"edge_refusals_total",
                        "Browser requests and connections, and enrolments, the edge refused, by "
                        "reason.",
                        PX_METRIC_COUNTER, l_reason, ES_REFUSAL_COUNT},
    };
    for (int i = 0; i < F_COUNT; i++) {
        int hist = defs[i].type == PX_METRIC_HISTOGRAM;
        m->fam[i].name = defs[i].name;
        m->fam[i].f = px_metrics_family(m->reg, defs[i].name, defs[i].help, defs[i].type,
                                        defs[i].labels, hist ? duration_buckets : NULL,
                                        hist ? sizeof(duration_buckets) / sizeof(double) : 0,
                                        defs[i].max_series);
        if (!m->fam[i].f)
            goto out_reg;
    }
    const char *version[] = {PX_VERSION};
    px_metric_set(m->fam[F_BUILD_INFO].f, version, 1);
    px_metric_set(m->fam[F_START_TIME].f, NULL, (double)time(NULL));
    /* Rendered from the start, so a scrape sees every family with 0. */
    static const char *const protos[] = {"http/1.1", "h2"};
    for (int i = 0; i < 2; i++) {
        const char *p[] = {protos[i]};
        px_metric_add(m->fam[F_BROWSER_CONNS].f, p, 0);
        px_metric_add(m->fam[F_BROWSER_CONNS_TOTAL].f, p, 0);
    }
    const char *from[] = {"from_client"}, *to[] = {"to_client"};
    px_metric_add(m->fam[F_BYTES].f, from, 0);
    px_metric_add(m->fam[F_BYTES].f, to, 0);
    const char *ok[] = {"ok"}, *refused[] = {"refused"};
    px_metric_add(m->fam[F_ENROLMENTS].f, ok, 0);
    px_metric_add(m->fam[F_ENROLMENTS].f, refused, 0);
    /* Every reason from the start, so rate() sees a refusal's first
     * increment from 0 (review 12.8). */
    for (int r = ES_REFUSAL_NONE + 1; r < ES_REFUSAL_COUNT; r++) {
        const char *why[] = {es_refusal_name((enum es_refusal)r)};
        px_metric_add(m->fam[F_REFUSALS].f, why, 0);
    }
    px_metric_set(m->fam[F_TUNNELS].f, NULL, 0);
    px_metric_set(m->fam[F_TUNNELS_CONNECTED].f, NULL, 0);
    px_metric_set(m->fam[F_LINKS].f, NULL, 0);
    return m;
out_reg:
    px_metrics_free(m->reg);
out_lock:
    uv_mutex_destroy(&m->lock);
out_free:
    free(m);
    return NULL;
}

void es_metrics_free(struct es_metrics *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_hosts; i++) {
        free(m->hosts[i]->name);
        free(m->hosts[i]);
    }
    free(m->hosts);
    px_metrics_free(m->reg);
    uv_mutex_destroy(&m->lock);
    free(m);
}

/* The lock is no part of the object's value: the readers that take a
 * const object (es_metrics_value) lock it too. */
static void lock(const struct es_metrics *m)
{
    uv_mutex_lock((uv_mutex_t *)&m->lock);
}

static void unlock(const struct es_metrics *m)
{
    uv_mutex_unlock((uv_mutex_t *)&m->lock);
}

static const char *proto_label(int h2)
{
    return h2 ? "h2" : "http/1.1";
}

void es_metrics_browser_open(struct es_metrics *m, int h2)
{
    if (!m)
        return;
    const char *p[] = {proto_label(h2)};
    lock(m);
    px_metric_add(m->fam[F_BROWSER_CONNS].f, p, 1);
    px_metric_add(m->fam[F_BROWSER_CONNS_TOTAL].f, p, 1);
    unlock(m);
}

void es_metrics_browser_close(struct es_metrics *m, int h2)
{
    if (!m)
        return;
    const char *p[] = {proto_label(h2)};
    lock(m);
    px_metric_add(m->fam[F_BROWSER_CONNS].f, p, -1);
    unlock(m);
}

/* The helpers below (host_find to recent_add, add_hostnames, add_recent)
 * take no lock: their callers hold m->lock. */

/* Index of name in m->hosts, or -(insertion point) - 1. */
static long host_find(const struct es_metrics *m, const char *name)
{
    size_t lo = 0, hi = m->n_hosts;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m->hosts[mid]->name, name);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(long)lo - 1;
}

/* The entry of name, made if new: past the cap, the overflow entry's (made
 * if new, one more than the cap). NULL when out of memory. */
static struct host_stat *host_get(struct es_metrics *m, const char *name)
{
    long i = host_find(m, name);
    if (i >= 0)
        return m->hosts[i];
    if (m->n_hosts >= ES_METRICS_MAX_HOSTNAMES && strcmp(name, PX_METRICS_OVERFLOW) != 0) {
        name = PX_METRICS_OVERFLOW;
        i = host_find(m, name);
        if (i >= 0)
            return m->hosts[i];
    }
    if (m->n_hosts == m->cap_hosts) {
        size_t cap = m->cap_hosts ? m->cap_hosts * 2 : 16;
        struct host_stat **h = realloc(m->hosts, cap * sizeof(*h));
        if (!h)
            return NULL;
        m->hosts = h;
        m->cap_hosts = cap;
    }
    struct host_stat *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->name = strdup(name);
    if (!s->name) {
        free(s);
        return NULL;
    }
    size_t at = (size_t)(-i - 1);
    memmove(&m->hosts[at + 1], &m->hosts[at], (m->n_hosts - at) * sizeof(*m->hosts));
    m->hosts[at] = s;
    m->n_hosts++;
    return s;
}

static void host_count(struct host_stat *s, int error, uint64_t now_ms)
{
    uint32_t sec = (uint32_t)(now_ms / 1000);
    size_t slot = sec % W;
    if (s->sec[slot] != sec) {
        s->sec[slot] = sec;
        s->req[slot] = s->err[slot] = 0;
    }
    s->requests++;
    s->req[slot]++;
    if (error) {
        s->errors++;
        s->err[slot]++;
    }
}

static void recent_add(struct es_metrics *m, uint64_t now_ms, const char *host, int status,
                       const char *reason, const char *request_id)
{
    struct recent_error *e = &m->recent[m->next_recent];
    m->next_recent = (m->next_recent + 1) % ES_METRICS_RECENT_ERRORS;
    if (m->n_recent < ES_METRICS_RECENT_ERRORS)
        m->n_recent++;
    e->time_ms = now_ms;
    es_text_copy(e->host, sizeof(e->host), host && host[0] ? host : "-");
    e->status = status;
    es_text_copy(e->reason, sizeof(e->reason), reason ? reason : "");
    es_text_copy(e->request_id, sizeof(e->request_id), request_id);
}

static const char *const classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx", "none"};

/* status's index in classes. */
static unsigned status_class_index(int status)
{
    return status >= 100 && status <= 599 ? (unsigned)(status / 100 - 1) : 5;
}

/* Adds what es_metrics_request kept back into the families: called, under
 * the lock, by whatever reads them. A sum of whole numbers below 2^53 is
 * the same in one addition as in many. */
static void flush_pending(struct es_metrics *m)
{
    const char *from[] = {"from_client"}, *to[] = {"to_client"};
    if (m->pending_in)
        px_metric_add(m->fam[F_BYTES].f, from, (double)m->pending_in);
    if (m->pending_out)
        px_metric_add(m->fam[F_BYTES].f, to, (double)m->pending_out);
    m->pending_in = m->pending_out = 0;
    for (size_t i = 0; i < m->n_hosts; i++) {
        struct host_stat *s = m->hosts[i];
        for (unsigned c = 0; c < 6; c++) {
            if (!s->pending[c])
                continue;
            const char *labels[] = {s->name, classes[c]};
            px_metric_add(m->fam[F_REQUESTS].f, labels, (double)s->pending[c]);
            s->pending[c] = 0;
        }
    }
}

/* es_metrics_request under the lock. */
static void count_request(struct es_metrics *m, const struct es_metrics_request *q, uint64_t now_ms)
{
    const char *route = q->route && q->route[0] ? q->route : ES_METRICS_UNROUTED;
    struct host_stat *s = host_get(m, route);
    unsigned c = status_class_index(q->status);
    if (s && (s->seen_class & (1u << c))) {
        s->pending[c]++;
    } else {
        /* The series' hostname is the entry's: _other past the cap. */
        const char *labels[] = {s ? s->name : PX_METRICS_OVERFLOW, classes[c]};
        px_metric_add(m->fam[F_REQUESTS].f, labels, 1);
        if (s)
            s->seen_class |= 1u << c;
    }
    px_metric_observe(m->fam[F_DURATION].f, NULL, q->duration_s >= 0 ? q->duration_s : 0);
    m->pending_in += q->bytes_in;
    m->pending_out += q->bytes_out;
    if (q->refusal != ES_REFUSAL_NONE) {
        const char *why[] = {es_refusal_name(q->refusal)};
        px_metric_add(m->fam[F_REFUSALS].f, why, 1);
    }
    int error = q->status >= 500 || q->refusal != ES_REFUSAL_NONE || q->cut;
    if (s)
        host_count(s, error, now_ms);
    if (!error)
        return;
    const char *reason = q->refusal != ES_REFUSAL_NONE ? es_refusal_name(q->refusal)
                         : q->reason                   ? q->reason
                         : q->status >= 500            ? "origin"
                                                       : "response_cut";
    recent_add(m, now_ms, q->host, q->status, reason, q->request_id);
}

void es_metrics_request(struct es_metrics *m, const struct es_metrics_request *q, uint64_t now_ms)
{
    if (!m)
        return;
    lock(m);
    count_request(m, q, now_ms);
    unlock(m);
}

void es_metrics_refusal(struct es_metrics *m, enum es_refusal why, uint64_t now_ms)
{
    if (!m || why == ES_REFUSAL_NONE)
        return;
    const char *r[] = {es_refusal_name(why)};
    lock(m);
    px_metric_add(m->fam[F_REFUSALS].f, r, 1);
    recent_add(m, now_ms, NULL, 0, es_refusal_name(why), NULL);
    unlock(m);
}

void es_metrics_enrolment(struct es_metrics *m, enum es_enrolment result, uint64_t now_ms)
{
    if (!m)
        return;
    const char *r[] = {result == ES_ENROL_OK ? "ok" : "refused"};
    lock(m);
    px_metric_add(m->fam[F_ENROLMENTS].f, r, 1);
    if (result == ES_ENROL_RATE_LIMITED) {
        const char *why[] = {es_refusal_name(ES_REFUSAL_ENROL_RATE_LIMITED)};
        px_metric_add(m->fam[F_REFUSALS].f, why, 1);
    }
    if (result != ES_ENROL_OK)
        recent_add(m, now_ms, NULL, 0, enrolment_reason(result), NULL);
    unlock(m);
}

struct link_count {
    unsigned links;
};

static void count_link(struct es_link *l, void *arg)
{
    struct link_count *c = arg;
    struct es_link_info info;
    c->links += es_link_info(l, &info) == 1;
}

int es_metrics_render(struct es_metrics *m, struct es_server *srv, struct px_buf *out)
{
    if (!m)
        return 0;
    /* The server's tunnels and links are the home loop's: counted here,
     * outside the lock, on that loop (the caller's). */
    unsigned tunnels = 0, connected = 0;
    for (const struct es_tunnel *t = srv->reg.tunnels; t; t = t->next) {
        if (t->deleted)
            continue;
        tunnels++;
        for (const struct es_link *l = t->links; l; l = l->tunnel_next) {
            struct es_link_info info;
            if (es_link_info(l, &info) == 1) {
                connected++;
                break;
            }
        }
    }
    struct link_count lc = {0};
    if (srv->links.head.next) /* es_link.c sets the list up: a zeroed server has none */
        es_link_each(srv, count_link, &lc);
    lock(m);
    px_metric_set(m->fam[F_TUNNELS].f, NULL, tunnels);
    px_metric_set(m->fam[F_TUNNELS_CONNECTED].f, NULL, connected);
    px_metric_set(m->fam[F_LINKS].f, NULL, lc.links);
    flush_pending(m);
    int rc = px_metrics_render(m->reg, out);
    unlock(m);
    return rc;
}

/* The ring's count over the last W seconds up to now_s. */
static unsigned long long window_sum(const uint32_t *sec, const uint32_t *n, uint32_t now_s)
{
    unsigned long long sum = 0;
    for (size_t i = 0; i < W; i++)
        if (sec[i] <= now_s && now_s - sec[i] < W)
            sum += n[i];
    return sum;
}

static json_t *text(const char *s)
{
    return json_stringn(s, es_text_prefix(s, (size_t)-1));
}

/* Every constructor's NULL is caught by json_object_set_new /
 * json_array_append_new, which fail on it. */
static int add_hostnames(const struct es_metrics *m, json_t *arr, uint32_t now_s)
{
    for (size_t i = 0; m && i < m->n_hosts; i++) {
        const struct host_stat *s = m->hosts[i];
        json_t *e = json_object();
        if (json_array_append_new(arr, e) < 0 ||
            json_object_set_new(e, "hostname", text(s->name)) < 0 ||
            json_object_set_new(e, "requests_total", json_integer((json_int_t)s->requests)) < 0 ||
            json_object_set_new(e, "errors_total", json_integer((json_int_t)s->errors)) < 0 ||
            json_object_set_new(e, "requests_per_min",
                                json_integer((json_int_t)window_sum(s->sec, s->req, now_s))) < 0 ||
            json_object_set_new(e, "errors_per_min",
                                json_integer((json_int_t)window_sum(s->sec, s->err, now_s))) < 0)
            return PX_ERR_NOMEM;
    }
    return 0;
}

static int add_recent(const struct es_metrics *m, json_t *arr)
{
    for (size_t k = 0; m && k < m->n_recent; k++) {
        size_t i = (m->next_recent + ES_METRICS_RECENT_ERRORS - 1 - k) % ES_METRICS_RECENT_ERRORS;
        const struct recent_error *r = &m->recent[i];
        json_t *e = json_object();
        if (json_array_append_new(arr, e) < 0 ||
            json_object_set_new(e, "time", json_integer((json_int_t)r->time_ms)) < 0 ||
            json_object_set_new(e, "hostname", text(r->host)) < 0 ||
            json_object_set_new(e, "status", json_integer(r->status)) < 0 ||
            json_object_set_new(e, "reason", text(r->reason)) < 0 ||
            json_object_set_new(e, "request_id",
                                r->request_id[0] ? text(r->request_id) : json_null()) < 0)
            return PX_ERR_NOMEM;
    }
    return 0;
}

json_t *es_metrics_status(struct es_metrics *m, uint64_t now_ms)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_t *hosts = json_array();
    if (json_object_set_new(o, "hostnames", hosts) < 0)
        goto out_free;
    json_t *recent = json_array();
    if (json_object_set_new(o, "recent_errors", recent) < 0)
        goto out_free;
    if (m)
        lock(m);
    int failed =
        add_hostnames(m, hosts, (uint32_t)(now_ms / 1000)) < 0 || add_recent(m, recent) < 0;
    if (m)
        unlock(m);
    if (failed)
        goto out_free;
    return o;
out_free:
    json_decref(o);
    return NULL;
}

double es_metrics_value(const struct es_metrics *m, const char *name, const char *const *values)
{
    if (!m)
        return 0;
    double v = 0;
    lock(m);
    /* What is kept back is no part of the value either (like the lock):
     * added now, the families read as if it had gone in at once. */
    flush_pending((struct es_metrics *)m);
    /* fam[] never changes after es_metrics_new; the series do. */
    for (int i = 0; i < F_COUNT; i++)
        if (strcmp(m->fam[i].name, name) == 0) {
            v = px_metric_get(m->fam[i].f, values);
            break;
        }
    unlock(m);
    return v;
}
