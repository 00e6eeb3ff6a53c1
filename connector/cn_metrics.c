/* cn_metrics: the connector's families and the events that move them. */
#include "cn_metrics.h"
#include "cn_ingress.h"
#include "px_err.h"
#include "px_metrics.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Label sets are bounded by the configuration (edges, rules), not by what
 * arrives from outside; the caps only guard against a mistake. */
#define EDGE_SERIES 64
#define RULE_SERIES 4096

struct cn_metrics {
    struct px_metrics *reg;
    struct px_metric *build_info, *start_time;
    struct px_metric *links_up, *reconnects, *reg_failures;
    struct px_metric *requests, *rule_info;
    struct px_metric *active_streams, *active_ws;
    struct px_metric *bytes, *origin_seconds, *origin_errors;
    struct px_metric *rss, *open_fds;
    struct cn_ingress *rules; /* the set rule_info shows (a reference) */
};

static const char *const L_VERSION[] = {"version", NULL};
static const char *const L_EDGE[] = {"edge", NULL};
static const char *const L_EDGE_REASON[] = {"edge", "reason", NULL};
static const char *const L_RULE_CLASS[] = {"rule", "status_class", NULL};
static const char *const L_RULE_INFO[] = {"rule", "hostname", "path", NULL};
static const char *const L_DIRECTION[] = {"direction", NULL};
static const char *const L_RULE[] = {"rule", NULL};
static const char *const L_CAUSE[] = {"cause", NULL};

static const double RESPONSE_BUCKETS[] = {.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60};

static const char *const ORIGIN_CAUSES[CN_ORIGIN_N_CAUSES] = {
    [CN_ORIGIN_REFUSED] = "refused",           [CN_ORIGIN_RESOLVE] = "resolve",
    [CN_ORIGIN_TLS_VERIFY] = "tls_verify",     [CN_ORIGIN_TLS] = "tls",
    [CN_ORIGIN_TIMEOUT] = "timeout",           [CN_ORIGIN_RESET] = "reset",
    [CN_ORIGIN_BAD_RESPONSE] = "bad_response", [CN_ORIGIN_OTHER] = "other",
};

const char *cn_metrics_origin_cause(enum cn_origin_cause cause)
{
    if ((unsigned)cause >= CN_ORIGIN_N_CAUSES)
        return ORIGIN_CAUSES[CN_ORIGIN_OTHER];
    return ORIGIN_CAUSES[cause];
}

/* Every value cn_metrics_link_reason returns: the registration failures of
 * each configured edge exist at 0 for each of them (review 12.8). */
static const char *const LINK_REASONS[] = {"resolve", "connect",  "timeout", "cert_refused", "tls",
                                           "refused", "protocol", "closed",  "other"};

const char *cn_metrics_link_reason(enum cn_link_cause cause)
{
    switch (cause) {
    case CN_LINK_OPEN:
    case CN_LINK_CAUSE_LOCAL:
        return NULL;
    case CN_LINK_CAUSE_RESOLVE:
        return "resolve";
    case CN_LINK_CAUSE_CONNECT:
        return "connect";
    case CN_LINK_CAUSE_TIMEOUT:
    case CN_LINK_CAUSE_DEAD_PEER:
        return "timeout";
    case CN_LINK_CAUSE_CERT_REFUSED:
        return "cert_refused";
    case CN_LINK_CAUSE_TLS:
        return "tls";
    case CN_LINK_CAUSE_REFUSED:
        return "refused";
    case CN_LINK_CAUSE_PROTOCOL:
        return "protocol";
    case CN_LINK_CAUSE_PEER_CLOSED:
        return "closed";
    case CN_LINK_CAUSE_GOAWAY_TIMEOUT:
    case CN_LINK_CAUSE_NOMEM:
        return "other";
    }
    return "other";
}

const char *cn_metrics_status_class(int status)
{
    static const char *const classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
    if (status < 100 || status > 599)
        return NULL;
    return classes[status / 100 - 1];
}

const char *cn_metrics_rule_label(const struct cn_rule *r, char buf[CN_METRICS_RULE_LEN])
{
    if (!r)
        return CN_METRICS_NO_RULE;
    /* By hand, not snprintf: two labels per request (about 600
     * instructions each through vfprintf). */
    _Static_assert(CN_METRICS_RULE_LEN > 20, "a size_t in decimal fits");
    char tmp[20];
    size_t n = 0, i = r->index;
    do {
        tmp[n++] = (char)('0' + i % 10);
        i /= 10;
    } while (i);
    for (size_t k = 0; k < n; k++)
        buf[k] = tmp[n - 1 - k];
    buf[n] = '\0';
    return buf;
}

struct cn_metrics *cn_metrics_new(const char *version, double start_unix_s)
{
    struct cn_metrics *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    struct px_metrics *r = px_metrics_new();
    if (!r)
        goto out_free;
    m->reg = r;
    /* Declared in the order they render: what a person reads first. */
    m->build_info = px_metrics_family(r, "connector_build_info",
                                      "The connector's version (the value is always 1).",
                                      PX_METRIC_GAUGE, L_VERSION, NULL, 0, 0);
    m->start_time = px_metrics_family(r, "connector_start_time_seconds",
                                      "When the connector started, in seconds since the epoch.",
                                      PX_METRIC_GAUGE, NULL, NULL, 0, 0);
    m->links_up = px_metrics_family(r, "connector_links_up",
                                    "Tunnel links registered with the edge, by edge address.",
                                    PX_METRIC_GAUGE, L_EDGE, NULL, 0, EDGE_SERIES);
    m->reconnects =
        px_metrics_family(r, "connector_reconnects_total",
                          "Times a connection slot dialed again after losing or failing a link.",
                          PX_METRIC_COUNTER, L_EDGE, NULL, 0, EDGE_SERIES);
    m->reg_failures =
        px_metrics_family(r, "connector_registration_failures_total",
                          "Links that closed before the edge accepted their registration.",
                          PX_METRIC_COUNTER, L_EDGE_REASON, NULL, 0, EDGE_SERIES * 16);
    m->requests = px_metrics_family(r, "connector_requests_total",
                                    "Requests answered, by ingress rule and status class.",
                                    PX_METRIC_COUNTER, L_RULE_CLASS, NULL, 0, RULE_SERIES);
    m->rule_info = px_metrics_family(r, "connector_ingress_rule_info",
                                     "The ingress rules, by index (the value is always 1).",
                                     PX_METRIC_GAUGE, L_RULE_INFO, NULL, 0, RULE_SERIES);
    m->active_streams =
        px_metrics_family(r, "connector_active_streams", "Requests in flight (tunnel streams).",
                          PX_METRIC_GAUGE, NULL, NULL, 0, 0);
    m->active_ws = px_metrics_family(r, "connector_active_websockets", "WebSockets open now.",
                                     PX_METRIC_GAUGE, NULL, NULL, 0, 0);
    m->bytes = px_metrics_family(r, "connector_bytes_total",
                                 "Body bytes sent to and received from origins.", PX_METRIC_COUNTER,
                                 L_DIRECTION, NULL, 0, 0);
    m->origin_seconds = px_metrics_family(
        r, "connector_origin_response_seconds",
        "Time from sending a request to the origin to its response head, by ingress rule.",
        PX_METRIC_HISTOGRAM, L_RULE, RESPONSE_BUCKETS,
        sizeof(RESPONSE_BUCKETS) / sizeof(RESPONSE_BUCKETS[0]), RULE_SERIES);
    m->origin_errors = px_metrics_family(r, "connector_origin_errors_total",
                                         "Origin requests that failed, by cause.",
                                         PX_METRIC_COUNTER, L_CAUSE, NULL, 0, 0);
    m->rss = px_metrics_family(r, "process_resident_memory_bytes", "Resident memory size in bytes.",
                               PX_METRIC_GAUGE, NULL, NULL, 0, 0);
    m->open_fds = px_metrics_family(r, "process_open_fds", "Open file descriptors.",
                                    PX_METRIC_GAUGE, NULL, NULL, 0, 0);
    if (!m->build_info || !m->start_time || !m->links_up || !m->reconnects || !m->reg_failures ||
        !m->requests || !m->rule_info || !m->active_streams || !m->active_ws || !m->bytes ||
        !m->origin_seconds || !m->origin_errors || !m->rss || !m->open_fds)
        goto out_reg;
    const char *v[] = {version};
    px_metric_set(m->build_info, v, 1);
    px_metric_set(m->start_time, NULL, start_unix_s);
    px_metric_set(m->active_streams, NULL, 0);
    px_metric_set(m->active_ws, NULL, 0);
    const char *to[] = {"to_origin"}, *from[] = {"from_origin"};
    px_metric_add(m->bytes, to, 0);
    px_metric_add(m->bytes, from, 0);
    for (int c = 0; c < CN_ORIGIN_N_CAUSES; c++) {
        const char *cv[] = {ORIGIN_CAUSES[c]};
        px_metric_add(m->origin_errors, cv, 0);
    }
    return m;
out_reg:
    px_metrics_free(r);
out_free:
    free(m);
    return NULL;
}

void cn_metrics_free(struct cn_metrics *m)
{
    if (!m)
        return;
    if (m->rules)
        cn_ingress_unref(m->rules);
    px_metrics_free(m->reg);
    free(m);
}

struct px_metrics *cn_metrics_registry(struct cn_metrics *m)
{
    return m ? m->reg : NULL;
}

struct px_metric *cn_metrics_family(struct cn_metrics *m, const char *name)
{
    if (!m)
        return NULL;
    struct px_metric *all[] = {m->build_info,   m->start_time, m->links_up,       m->reconnects,
                               m->reg_failures, m->requests,   m->rule_info,      m->active_streams,
                               m->active_ws,    m->bytes,      m->origin_seconds, m->origin_errors,
                               m->rss,          m->open_fds};
    static const char *const names[] = {"connector_build_info",
                                        "connector_start_time_seconds",
                                        "connector_links_up",
                                        "connector_reconnects_total",
                                        "connector_registration_failures_total",
                                        "connector_requests_total",
                                        "connector_ingress_rule_info",
                                        "connector_active_streams",
                                        "connector_active_websockets",
                                        "connector_bytes_total",
                                        "connector_origin_response_seconds",
                                        "connector_origin_errors_total",
                                        "process_resident_memory_bytes",
                                        "process_open_fds"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(names[i], name) == 0)
            return all[i];
    return NULL;
}

/* ---- process gauges, read at scrape ---- */

/* Resident pages from /proc/self/statm; -1 when it cannot be read. */
static double resident_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    unsigned long size = 0, resident = 0;
    int n = fscanf(f, "%lu %lu", &size, &resident);
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    if (n != 2 || page <= 0)
        return -1;
    return (double)resident * (double)page;
}

/* Entries of /proc/self/fd, less the one opendir holds; -1 on failure. */
static double open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    double n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n > 0 ? n - 1 : 0;
}

int cn_metrics_render(struct cn_metrics *m, struct px_buf *out)
{
    if (!m)
        return PX_ERR_INVAL;
    double rss = resident_bytes(), fds = open_fds();
    if (rss >= 0)
        px_metric_set(m->rss, NULL, rss);
    if (fds >= 0)
        px_metric_set(m->open_fds, NULL, fds);
    return px_metrics_render(m->reg, out);
}

/* ---- configuration ---- */

void cn_metrics_edges(struct cn_metrics *m, const char *const *edges, size_t n)
{
    if (!m)
        return;
    for (size_t i = 0; i < n; i++) {
        const char *v[] = {edges[i]};
        px_metric_add(m->links_up, v, 0);
        /* Counters too, so the first reconnect or failure is a rise from 0
         * that rate() and increase() see (review 12.8). */
        px_metric_add(m->reconnects, v, 0);
        for (size_t k = 0; k < sizeof(LINK_REASONS) / sizeof(LINK_REASONS[0]); k++) {
            const char *vr[] = {edges[i], LINK_REASONS[k]};
            px_metric_add(m->reg_failures, vr, 0);
        }
    }
}

/* Adds (v 1) or removes (v 0) the info series of every rule of ing. */
static void rule_info(struct cn_metrics *m, const struct cn_ingress *ing, int add)
{
    for (size_t i = 0; ing && i < ing->n; i++) {
        const struct cn_rule *r = &ing->rules[i];
        char b[CN_METRICS_RULE_LEN];
        const char *v[] = {cn_metrics_rule_label(r, b), r->hostname, r->path ? r->path : ""};
        if (add)
            px_metric_set(m->rule_info, v, 1);
        else
            px_metric_remove(m->rule_info, v);
    }
}

void cn_metrics_rules(struct cn_metrics *m, struct cn_ingress *ing)
{
    if (!m)
        return;
    if (m->rules) {
        rule_info(m, m->rules, 0);
        cn_ingress_unref(m->rules);
        m->rules = NULL;
    }
    if (ing) {
        cn_ingress_ref(ing);
        m->rules = ing;
        rule_info(m, ing, 1);
    }
}

/* ---- links ---- */

void cn_metrics_link_up(struct cn_metrics *m, const char *edge)
{
    if (!m)
        return;
    const char *v[] = {edge};
    px_metric_add(m->links_up, v, 1);
}

void cn_metrics_link_down(struct cn_metrics *m, const char *edge)
{
    if (!m)
        return;
    const char *v[] = {edge};
    px_metric_add(m->links_up, v, -1);
}

void cn_metrics_reconnect(struct cn_metrics *m, const char *edge)
{
    if (!m)
        return;
    const char *v[] = {edge};
    px_metric_add(m->reconnects, v, 1);
}

void cn_metrics_registration_failed(struct cn_metrics *m, const char *edge,
                                    enum cn_link_cause cause)
{
    const char *reason = cn_metrics_link_reason(cause);
    if (!m || !reason)
        return;
    const char *v[] = {edge, reason};
    px_metric_add(m->reg_failures, v, 1);
}

/* ---- requests ---- */

void cn_metrics_stream_open(struct cn_metrics *m)
{
    if (m)
        px_metric_add(m->active_streams, NULL, 1);
}

void cn_metrics_stream_close(struct cn_metrics *m)
{
    if (m)
        px_metric_add(m->active_streams, NULL, -1);
}

void cn_metrics_websocket_open(struct cn_metrics *m)
{
    if (m)
        px_metric_add(m->active_ws, NULL, 1);
}

void cn_metrics_websocket_close(struct cn_metrics *m)
{
    if (m)
        px_metric_add(m->active_ws, NULL, -1);
}

void cn_metrics_request_done(struct cn_metrics *m, const struct cn_rule *rule, int status)
{
    const char *cls = cn_metrics_status_class(status);
    if (!m || !cls)
        return;
    char b[CN_METRICS_RULE_LEN];
    const char *v[] = {cn_metrics_rule_label(rule, b), cls};
    px_metric_add(m->requests, v, 1);
}

void cn_metrics_bytes_to_origin(struct cn_metrics *m, uint64_t n)
{
    if (!m || !n)
        return;
    const char *v[] = {"to_origin"};
    px_metric_add(m->bytes, v, (double)n);
}

void cn_metrics_bytes_from_origin(struct cn_metrics *m, uint64_t n)
{
    if (!m || !n)
        return;
    const char *v[] = {"from_origin"};
    px_metric_add(m->bytes, v, (double)n);
}

void cn_metrics_origin_response(struct cn_metrics *m, const struct cn_rule *rule, double seconds)
{
    if (!m)
        return;
    char b[CN_METRICS_RULE_LEN];
    const char *v[] = {cn_metrics_rule_label(rule, b)};
    px_metric_observe(m->origin_seconds, v, seconds < 0 ? 0 : seconds);
}

void cn_metrics_origin_error(struct cn_metrics *m, enum cn_origin_cause cause)
{
    if (!m)
        return;
    const char *v[] = {cn_metrics_origin_cause(cause)};
    px_metric_add(m->origin_errors, v, 1);
}
