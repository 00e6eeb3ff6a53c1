#include "cn_supervisor.h"
#include "cn_enroll.h"
#include "cn_metrics.h"
#include "cn_ops.h"
#include "cn_h1.h"
#include "cn_origin.h"
#include "cn_stream.h"
#include "px_cert.h"
#include "px_err.h"
#include "px_hostname.h"
#include "px_log.h"
#include "px_pki.h"
#include "px_tls.h"
#include "px_version.h"

#include <wolfssl/error-ssl.h>

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void start_slot(struct cn_slot *slot);
static void start_probe(struct cn_slot *slot);
static void start_enroll(struct cn_supervisor *s);
static void on_enroll_retry(uv_timer_t *t);

static uint32_t rnd32(struct cn_supervisor *s)
{
    uint32_t r = 0;
    if (px_pki_random(rt_loop_rng(rt_loop_of(s->loop)), &r, sizeof(r)) < 0)
        r = (uint32_t)uv_hrtime();
    return r;
}

/* Edge address i of the configured list (a harness with none: "memory"). */
static const char *edge_addr(struct cn_supervisor *s, unsigned i)
{
    if (!s->cfg->n_edges)
        return "memory";
    return s->cfg->edges[i % s->cfg->n_edges];
}

/* "A x2, B x1": the slots' registered links per edge, for the log. */
static void tally(struct cn_supervisor *s, struct px_buf *b)
{
    unsigned n = s->edges.n ? s->edges.n : 1, any = 0;
    for (unsigned e = 0; e < n; e++) {
        unsigned up = 0;
        for (unsigned i = 0; i < s->n_slots; i++)
            up += s->slots[i].link && cn_link_registered(s->slots[i].link) &&
                  s->slots[i].place.edge == e;
        if (up && px_buf_appendf(b, "%s%s x%u", any++ ? ", " : "", edge_addr(s, e), up) < 0)
            return;
    }
    if (!any)
        px_buf_append_str(b, "none");
}

/* Logs one line about connection i and edge: what happened, then the tally. */
__attribute__((format(printf, 5, 6))) static void log_slot(struct cn_supervisor *s,
                                                           enum px_log_level lv, unsigned i,
                                                           const char *edge, const char *fmt, ...)
{
    if (!px_log_enabled(lv))
        return;
    struct px_buf up;
    px_buf_init(&up);
    char *what = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&what, fmt, ap) < 0)
        what = NULL;
    va_end(ap);
    tally(s, &up);
    const char *u = px_buf_cstr(&up);
    px_log(lv, "connection %u to edge %s %s; up: %s", i, edge, what ? what : "?", u ? u : "?");
    free(what);
    px_buf_cleanup(&up);
}

const struct cn_rule *cn_supervisor_route(struct cn_supervisor *s, const char *host,
                                          const char *path, struct cn_ingress **ing)
{
    const struct cn_rule *r = cn_ingress_match(s->cfg->ingress, host, path);
    if (r) {
        cn_ingress_ref(s->cfg->ingress);
        *ing = s->cfg->ingress;
    }
    return r;
}

struct cn_creds *cn_supervisor_creds(struct cn_supervisor *s)
{
    return s->creds;
}

/* Whether any rule of ing presents the origin-pull certificate. */
static int wants_origin_pull(const struct cn_ingress *ing)
{
    for (size_t i = 0; ing && i < ing->n; i++)
        if (ing->rules[i].o.origin_pull)
            return 1;
    return 0;
}

static int listed(char **names, size_t n, const char *h)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], h) == 0)
            return 1;
    return 0;
}

/* SIGHUP: re-read the config file. A bad file changes nothing; a good one
 * replaces the rules (requests in flight keep theirs) and the edge is told
 * which hostnames were added and removed. */
static void reload(struct cn_supervisor *s)
{
    struct cn_config *cfg = s->cfg;
    if (!cfg->config_path[0]) {
        PX_WARN("SIGHUP: nothing to reload (routes come from --hostname/--url)");
        return;
    }
    struct cn_ingress *next = NULL;
    struct cn_ingress_errors errs = {0};
    if (cn_ingress_load(cfg->config_path, &next, &errs) < 0) {
        PX_ERROR("SIGHUP: %s is not valid; keeping the current rules:", cfg->config_path);
        for (size_t i = 0; i < errs.n; i++)
            PX_ERROR("  %s", errs.lines[i]);
        cn_ingress_errors_cleanup(&errs);
        return;
    }
    struct cn_ingress *prev = cfg->ingress;
    char *added[CN_MAX_ROUTES * 4], *removed[CN_MAX_ROUTES * 4];
    size_t na = 0, nr = 0;
    for (size_t i = 0; i < next->n_hostnames && na < CN_MAX_ROUTES * 4; i++)
        if (!listed(prev->hostnames, prev->n_hostnames, next->hostnames[i]))
            added[na++] = next->hostnames[i];
    for (size_t i = 0; i < prev->n_hostnames && nr < CN_MAX_ROUTES * 4; i++)
        if (!listed(next->hostnames, next->n_hostnames, prev->hostnames[i]))
            removed[nr++] = prev->hostnames[i];
    PX_INFO("SIGHUP: loaded %zu rule(s) from %s: %zu hostname(s) added, %zu removed", next->n,
            cfg->config_path, na, nr);
    for (unsigned i = 0; i < s->n_slots; i++) {
        struct cn_link *l = s->slots[i].link;
        if (!l || !cn_link_registered(l))
            continue; /* links that register later send the new list */
        if (na)
            cn_link_send_hostnames(l, PX_CTL_REGISTER, added, na);
        if (nr)
            cn_link_send_hostnames(l, PX_CTL_UNREGISTER, removed, nr);
    }
    cfg->ingress = next;
    cn_metrics_rules(s->metrics, next);
    cn_ingress_unref(prev);
    if (s->creds)
        cn_creds_want_origin_pull(s->creds, wants_origin_pull(next));
}

static void on_sighup(uv_signal_t *h, int signum)
{
    (void)signum;
    reload(h->data);
}

static struct px_list *retired(struct cn_supervisor *s)
{
    if (!s->retired.head.next)
        px_list_init(&s->retired);
    return &s->retired;
}

static struct cn_link *link_of(struct px_list_node *n)
{
    return px_container_of(n, struct cn_link, host_node);
}

static void maybe_finish(struct cn_supervisor *s)
{
    if (!s->stopping || s->enrolling || !px_list_empty(retired(s)))
        return;
    for (unsigned i = 0; i < s->n_slots; i++)
        if (s->slots[i].link || s->slots[i].probe)
            return;
    uv_stop(s->loop);
}

static void stop_timers(struct cn_slot *slot)
{
    uv_timer_stop(&slot->retry);
    if (slot->rebalance_init)
        uv_timer_stop(&slot->rebalance);
}

static void stop_all(struct cn_supervisor *s, const char *why)
{
    if (s->stopping && !s->draining)
        return;
    s->stopping = 1;
    s->draining = 0;
    uv_timer_stop(&s->grace);
    uv_timer_stop(&s->enroll_retry);
    for (unsigned i = 0; i < s->n_slots; i++) {
        stop_timers(&s->slots[i]);
        if (s->slots[i].link)
            cn_link_close(s->slots[i].link, why);
        if (s->slots[i].probe)
            cn_link_close(s->slots[i].probe, why);
    }
    struct px_list_node *pos, *tmp;
    px_list_for_each_safe (pos, tmp, retired(s))
        cn_link_close(link_of(pos), why);
    maybe_finish(s);
}

void cn_supervisor_fatal(struct cn_supervisor *s, const char *msg)
{
    if (s->stopping)
        return;
    PX_ERROR("%s; exiting", msg);
    s->exit_code = 1;
    stop_all(s, msg);
}

static void free_link(struct cn_link *l)
{
    free(l);
}

static void on_retry(uv_timer_t *t)
{
    struct cn_slot *slot = t->data;
    start_slot(slot);
}

static void on_rebalance(uv_timer_t *t)
{
    start_probe(t->data);
}

/* Dials slot's edge (or its home, for a probe) after delay_ms. */
static void retry_in(struct cn_slot *slot, unsigned delay_ms)
{
    uv_timer_start(&slot->retry, on_retry, delay_ms, 0);
}

static void rebalance_in(struct cn_slot *slot, unsigned delay_ms)
{
    if (slot->rebalance_init)
        uv_timer_start(&slot->rebalance, on_rebalance, delay_ms, 0);
}

/* l of slot leaves the slot for the retired list: it finishes (or, after
 * the edge's GOAWAY, serves until the edge closes it) without the slot. */
static void retire(struct cn_supervisor *s, struct cn_link *l)
{
    if (!px_list_linked(&l->host_node))
        px_list_insert_head(retired(s), &l->host_node);
    /* It may not answer a renewal any more: ask on another link. */
    if (s->creds)
        cn_creds_link_gone(s->creds, l);
}

/* The slot's probe (its link to the home edge) becomes its link: the slot
 * is home again. */
static void probe_takes_slot(struct cn_slot *slot)
{
    slot->link = slot->probe;
    slot->probe = NULL;
    cn_edges_home_again(&slot->place);
}

static void link_ready(void *arg, struct cn_link *l)
{
    struct cn_supervisor *s = arg;
    struct cn_slot *slot = &s->slots[cn_link_index(l)];
    cn_backoff_reset(&slot->backoff);
    cn_backoff_reset(&s->enroll_backoff); /* the certificate works */
    slot->attempts = 0;
    slot->round = 0;
    if (s->creds)
        cn_creds_link_up(s->creds);
    if (l == slot->probe) {
        /* A home edge that is already going away takes nothing: the
         * retiring call that follows counts it as a failed try. */
        if (!cn_link_usable(l))
            return;
        /* Home again: the home link takes the slot, the other one drains
         * (the edge routes nothing new to it, its streams finish). */
        struct cn_link *old = slot->link;
        int replacing = slot->replacing;
        slot->replacing = 0;
        probe_takes_slot(slot);
        cn_backoff_reset(&slot->home_backoff);
        if (old) {
            retire(s, old);
            cn_link_drain(old);
        }
        log_slot(s, PX_LOG_INFO, slot->index, cn_link_edge(l),
                 "registered (%s; the connection to %s drains)",
                 replacing ? "with the new certificate" : "back home",
                 old ? cn_link_edge(old) : "nowhere");
        return;
    }
    cn_edges_up(&slot->place);
    log_slot(s, PX_LOG_INFO, slot->index, cn_link_edge(l), "registered");
    unsigned delay;
    if (cn_edges_rebalance_due(&slot->place, rnd32(s), &delay))
        rebalance_in(slot, delay);
}

/* The probe to the home edge failed or went away: the slot stays where it
 * is and tries again after its backoff. */
static void probe_failed(struct cn_supervisor *s, struct cn_slot *slot, struct cn_link *l)
{
    slot->probe = NULL;
    int replacing = slot->replacing;
    slot->replacing = 0;
    if (s->stopping)
        return;
    unsigned delay = cn_backoff_next(&slot->home_backoff, rnd32(s));
    log_slot(s, PX_LOG_WARN, slot->index, cn_link_edge(l),
             "(%s) failed: %s; staying on %s, trying again in %u ms",
             replacing ? "replacing a connection with the previous certificate" : "back home",
             cn_link_close_reason(l), slot->link ? cn_link_edge(slot->link) : "none", delay);
    rebalance_in(slot, delay);
}

static void link_retiring(void *arg, struct cn_link *l, int clean)
{
    struct cn_supervisor *s = arg;
    struct cn_slot *slot = &s->slots[cn_link_index(l)];
    if (px_list_linked(&l->host_node))
        return;
    if (slot->probe == l) {
        retire(s, l);
        if (clean)
            cn_edges_note_goaway(&s->edges, slot->place.home, uv_now(s->loop));
        probe_failed(s, slot, l);
        return;
    }
    if (slot->link != l)
        return;
    retire(s, l);
    slot->link = NULL;
    if (s->stopping)
        return;
    if (slot->rebalance_init)
        uv_timer_stop(&slot->rebalance);
    /* The edge's GOAWAY says it is draining: another edge takes the slot at
     * once (make before break). Alone, or after anything else, the slot
     * redials through its backoff: fifty connectors must not hit a
     * restarting edge in one burst. */
    int moved = clean && cn_edges_goaway(&s->edges, &slot->place, uv_now(s->loop));
    if (slot->probe) {
        probe_takes_slot(slot); /* the home link being dialed */
        log_slot(s, PX_LOG_INFO, slot->index, cn_link_edge(l),
                 "going away; its replacement to %s is being dialed", cn_link_edge(slot->link));
        return;
    }
    unsigned delay = moved ? 0 : cn_backoff_next(&slot->backoff, rnd32(s));
    cn_metrics_reconnect(s->metrics, cn_link_edge(l));
    log_slot(s, PX_LOG_INFO, slot->index, cn_link_edge(l),
             "going away; dialing its replacement to %s in %u ms", edge_addr(s, slot->place.edge),
             delay);
    retry_in(slot, delay);
}

static void link_closed(void *arg, struct cn_link *l)
{
    struct cn_supervisor *s = arg;
    if (s->creds)
        cn_creds_link_gone(s->creds, l);
    struct cn_slot *slot = &s->slots[cn_link_index(l)];
    if (px_list_linked(&l->host_node)) {
        px_list_remove(&l->host_node);
        PX_INFO("connection %u to edge %s (replaced) closed: %s", cn_link_index(l), cn_link_edge(l),
                cn_link_close_reason(l));
        free_link(l);
        maybe_finish(s);
        return;
    }
    if (slot->probe == l) {
        probe_failed(s, slot, l);
        free_link(l);
        maybe_finish(s);
        return;
    }
    int was_ready = cn_link_registered(l);
    /* An alert refusing our certificate before registration means the edge
     * no longer accepts it (expired while we were offline, its data was
     * reset): enrol again rather than loop. With TLS 1.3 the client finishes
     * its handshake before the server checks the certificate, so the alert
     * can arrive after "TLS up": it is the alert that counts. */
    int cert_rejected = !was_ready && cn_link_close_cause(l) == CN_LINK_CAUSE_CERT_REFUSED;
    char alert_buf[32];
    const char *alert_name = cert_rejected ? px_tls_alert_name(cn_link_tls_failure(l)->alert,
                                                               alert_buf, sizeof(alert_buf))
                                           : "";
    slot->link = NULL;
    if (s->stopping) {
        free_link(l);
        maybe_finish(s);
        return;
    }
    if (slot->rebalance_init)
        uv_timer_stop(&slot->rebalance);
    if (slot->probe) {
        probe_takes_slot(slot); /* the home link being dialed */
        log_slot(s, PX_LOG_WARN, slot->index, cn_link_edge(l), "lost: %s; %s is being dialed",
                 cn_link_close_reason(l), cn_link_edge(slot->link));
        free_link(l);
        return;
    }
    unsigned delay = cn_backoff_next(&slot->backoff, rnd32(s));
    /* The slot dials again: now (another edge), after its backoff, or
     * after enrolling again. */
    cn_metrics_reconnect(s->metrics, cn_link_edge(l));
    if (was_ready) {
        cn_edges_lost(&slot->place);
        log_slot(s, PX_LOG_WARN, slot->index, cn_link_edge(l), "lost: %s; reconnecting in %u ms",
                 cn_link_close_reason(l), delay);
    } else {
        int moved = cn_edges_failed(&s->edges, &slot->place);
        /* The first round over the edges since the slot last worked moves
         * on at once (the next edge is another one, likely up); once every
         * edge has failed in a row, the backoff holds: all edges down must
         * not become a dial every second. */
        if (moved && ++slot->round < s->edges.n)
            delay = (unsigned)((uint64_t)rnd32(s) * (CN_MOVE_JITTER_MS + 1) >> 32);
        log_slot(s, PX_LOG_WARN, slot->index, cn_link_edge(l), "failed: %s; retry %u in %u ms%s%s",
                 cn_link_close_reason(l), ++slot->attempts, delay,
                 moved ? " to the next edge, " : "", moved ? edge_addr(s, slot->place.edge) : "");
    }
    free_link(l);
    if (cert_rejected && s->id.cert_pem) {
        PX_WARN("the edge refused this connector's certificate (TLS alert %s); enrolling again "
                "with the token",
                alert_name);
        cn_identity_drop_cert(&s->id);
        for (unsigned i = 0; i < s->n_slots; i++) {
            stop_timers(&s->slots[i]);
            if (s->slots[i].link)
                cn_link_close(s->slots[i].link, "re-enrolling");
            if (s->slots[i].probe)
                cn_link_close(s->slots[i].probe, "re-enrolling");
        }
        /* With backoff: a certificate refused again right after a fresh
         * enrolment (an edge in front that checks another CA, say) must not
         * become an enrolment loop. The backoff resets once a link works. */
        uv_timer_start(&s->enroll_retry, on_enroll_retry,
                       cn_backoff_next(&s->enroll_backoff, rnd32(s)), 0);
        return;
    }
    if (!s->id.cert_pem)
        return; /* enrolment restarts the slots */
    retry_in(slot, delay);
}

static void link_fatal(void *arg, const char *msg)
{
    cn_supervisor_fatal(arg, msg);
}

/* Defect 9.8: the edge refuses to renew the certificate because the token
 * it was enrolled with has been replaced. Waiting helps nothing (the
 * renewal used to be retried every minute until the certificate expired):
 * enrol now with the token this process holds, which is the new one if the
 * connector was given it. The links stay up meanwhile. */
static void reenrol_for_token(struct cn_supervisor *s)
{
    if (s->stopping || s->enrolling || s->reenrolling)
        return;
    s->reenrolling = 1;
    uv_timer_stop(&s->enroll_retry);
    start_enroll(s);
}

/* Credential messages that arrive on a link go to the renewal. */
static void link_control(void *arg, struct cn_link *l, const struct px_ctl_msg *m)
{
    struct cn_supervisor *s = arg;
    if (!s->creds)
        return;
    switch (m->type) {
    case PX_CTL_ERROR:
        if (cn_creds_renew_failed(s->creds, l, m->reason, m->message))
            reenrol_for_token(s);
        break;
    case PX_CTL_ORIGIN_CA:
        cn_creds_set_origin_ca(s->creds, m->pem);
        break;
    case PX_CTL_RENEWED:
        cn_creds_renewed(s->creds, l, m->kind, m->pem);
        break;
    default:
        break;
    }
}

static void link_hostnames(void *arg, char ***names, size_t *n)
{
    struct cn_supervisor *s = arg;
    *names = s->cfg->ingress->hostnames;
    *n = s->cfg->ingress->n_hostnames;
}

static WOLFSSL_CTX *link_tls_ctx(void *arg)
{
    struct cn_supervisor *s = arg;
    return s->tls_ctx;
}

static const struct cn_rule *env_route(void *arg, const char *host, const char *path,
                                       struct cn_ingress **ing)
{
    return cn_supervisor_route(arg, host, path, ing);
}

static struct cn_creds *env_creds(void *arg)
{
    return cn_supervisor_creds(arg);
}

/* What every stream of every link shares. */
static const struct cn_stream_env_ops stream_env_ops = {.route = env_route, .creds = env_creds};

static const struct cn_link_host_ops link_host_ops = {
    .ready = link_ready,
    .retiring = link_retiring,
    .closed = link_closed,
    .fatal = link_fatal,
    .control = link_control,
    .hostnames = link_hostnames,
    .tls_ctx = link_tls_ctx,
};

void cn_supervisor_link_host(struct cn_supervisor *s, struct cn_link_host *out)
{
    *out = (struct cn_link_host){
        .ops = &link_host_ops,
        .arg = s,
        .server_name = s->cfg->token.server_name,
        .connector_id = s->connector_id[0] ? s->connector_id : NULL,
        .env = {.ops = &stream_env_ops,
                .arg = s,
                .loop = s->loop,
                .origin = s->origin,
                .h1 = s->h1,
                .response_timeout_ms = s->cfg->response_timeout_ms,
                .metrics = s->metrics,
                .access_log = s->cfg->access_log},
    };
}

/* A new link of slot to edge e, or NULL (no memory, or it could not
 * start: nothing to wait for). */
static struct cn_link *dial(struct cn_slot *slot, unsigned e)
{
    struct cn_supervisor *s = slot->sup;
    struct cn_link *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    const char *edge = edge_addr(s, e);
    PX_DEBUG("connection %u: connecting to %s", slot->index, edge);
    struct cn_link_host host;
    cn_supervisor_link_host(s, &host);
    int rc = s->dial ? s->dial(s, l, &host, slot->index, edge)
                     : cn_link_start(l, &host, slot->index, edge);
    if (rc < 0) {
        free(l);
        return NULL;
    }
    return l;
}

static void start_slot(struct cn_slot *slot)
{
    struct cn_supervisor *s = slot->sup;
    if (s->stopping || slot->link || !s->tls_ctx)
        return;
    slot->link = dial(slot, slot->place.edge);
    if (!slot->link)
        retry_in(slot, cn_backoff_next(&slot->backoff, rnd32(s)));
}

/* Rebalance: while the slot is up away from home, a second link to its
 * home edge; link_ready swaps them once it registers. */
static void start_probe(struct cn_slot *slot)
{
    struct cn_supervisor *s = slot->sup;
    if (s->stopping || slot->probe || !slot->link || !cn_link_usable(slot->link) ||
        slot->place.edge == slot->place.home || !s->tls_ctx)
        return;
    log_slot(s, PX_LOG_INFO, slot->index, cn_link_edge(slot->link),
             "is away from home; dialing its home edge %s", edge_addr(s, slot->place.home));
    slot->probe = dial(slot, slot->place.home);
    if (!slot->probe)
        rebalance_in(slot, cn_backoff_next(&slot->home_backoff, rnd32(s)));
}

unsigned cn_supervisor_links_up(const struct cn_supervisor *s)
{
    unsigned n = 0;
    for (unsigned i = 0; i < s->n_slots; i++)
        n += s->slots[i].link && cn_link_registered(s->slots[i].link);
    return n;
}

static unsigned ops_connections(void *arg)
{
    return cn_supervisor_links_up(arg);
}

/* The metrics and, unless --metrics off, the operator listener. Returns 0,
 * or -1 after logging why (the connector does not start: an address given
 * on purpose that cannot be used is a mistake to fix, not to hide). */
static int start_metrics(struct cn_supervisor *s)
{
    struct cn_config *cfg = s->cfg;
    s->metrics = cn_metrics_new(PX_VERSION, (double)time(NULL));
    if (!s->metrics) {
        PX_ERROR("initialisation failed: out of memory");
        return -1;
    }
    const char *edges[PX_TOKEN_MAX_EDGES];
    for (size_t i = 0; i < cfg->n_edges && i < PX_TOKEN_MAX_EDGES; i++)
        edges[i] = cfg->edges[i];
    cn_metrics_edges(s->metrics, edges, cfg->n_edges);
    cn_metrics_rules(s->metrics, cfg->ingress);
    if (!cfg->metrics_addr[0])
        return 0;
    const struct cn_ops_source src = {
        .connections = ops_connections, .arg = s, .tunnel_id = cfg->token.tunnel_id};
    char bound[80];
    s->ops = cn_ops_new(s->loop, s->metrics, &src);
    if (!s->ops) {
        PX_ERROR("initialisation failed: out of memory");
        return -1;
    }
    int rc = cn_ops_listen(s->ops, cfg->metrics_addr, bound, sizeof(bound));
    if (rc < 0) {
        PX_ERROR("cannot listen for metrics on %s: %s (--metrics HOST:PORT, or --metrics off)",
                 cfg->metrics_addr, px_strerror(rc));
        return -1;
    }
    PX_INFO("metrics on http://%s/metrics", bound);
    return 0;
}

void cn_supervisor_slot_start(struct cn_supervisor *s, unsigned index)
{
    start_slot(&s->slots[index]);
}

void cn_supervisor_slot_init(struct cn_supervisor *s, unsigned index)
{
    struct cn_slot *slot = &s->slots[index];
    slot->sup = s;
    slot->index = index;
    cn_edges_slot_init(&s->edges, &slot->place, index);
    cn_backoff_init(&slot->backoff, CN_RECONNECT_FIRST_MS, CN_RECONNECT_CAP_MS);
    cn_backoff_init(&slot->home_backoff, CN_RECONNECT_FIRST_MS, CN_RECONNECT_CAP_MS);
    uv_timer_init(s->loop, &slot->retry);
    slot->retry.data = slot;
    uv_timer_init(s->loop, &slot->rebalance);
    slot->rebalance.data = slot;
    slot->rebalance_init = 1;
}

void cn_supervisor_slot_cleanup(struct cn_supervisor *s, unsigned index)
{
    struct cn_slot *slot = &s->slots[index];
    uv_close((uv_handle_t *)&slot->retry, NULL);
    if (slot->rebalance_init)
        uv_close((uv_handle_t *)&slot->rebalance, NULL);
    slot->rebalance_init = 0;
}

/* A context for new links from the current certificate. Links already up
 * keep the old one (wolfSSL counts its sessions' references). On failure
 * the previous context stays. */
static int build_mtls_ctx(struct cn_supervisor *s)
{
    WOLFSSL_CTX *ctx = NULL;
    int rc = px_tls_ctx_client(s->cfg->token.ca_pem, s->id.cert_pem, s->id.key_pem, &ctx);
    if (rc < 0)
        return rc;
    if (s->tls_ctx)
        wolfSSL_CTX_free(s->tls_ctx);
    s->tls_ctx = ctx;
    return 0;
}

/* cn_creds_ops: RENEW goes out on the first usable link. */
static void *creds_send_renew(void *arg, const char *kind, const char *pub_pem)
{
    struct cn_supervisor *s = arg;
    if (s->stopping)
        return NULL;
    for (unsigned i = 0; i < s->n_slots; i++) {
        struct cn_link *l = s->slots[i].link;
        if (l && cn_link_usable(l) && cn_link_send_renew(l, kind, pub_pem) == 0)
            return l;
    }
    return NULL;
}

static void creds_tunnel_cert_changed(void *arg)
{
    struct cn_supervisor *s = arg;
    if (build_mtls_ctx(s) < 0)
        PX_ERROR("the renewed certificate cannot be loaded; new connections use the previous one");
}

int cn_supervisor_creds_init(struct cn_supervisor *s, char *why, size_t whylen)
{
    const struct cn_creds_ops ops = {
        .send_renew = creds_send_renew, .tunnel_cert_changed = creds_tunnel_cert_changed, .arg = s};
    int rc = cn_creds_new(s->loop, &s->id, &ops, &s->creds, why, whylen);
    if (rc < 0)
        return rc;
    cn_creds_want_origin_pull(s->creds, wants_origin_pull(s->cfg->ingress));
    return 0;
}

void cn_supervisor_creds_cleanup(struct cn_supervisor *s)
{
    cn_creds_free(s->creds);
    s->creds = NULL;
}

static void start_links(struct cn_supervisor *s)
{
    if (build_mtls_ctx(s) < 0) {
        cn_supervisor_fatal(s, "the stored certificate or key cannot be loaded");
        return;
    }
    for (unsigned i = 0; i < s->n_slots; i++) {
        /* Stagger the links a little so they do not land on the edge at once. */
        retry_in(&s->slots[i], i * 50);
    }
}

/* After an enrolment that replaced a certificate the edge no longer
 * renews: each slot's link is replaced, make before break, by one that
 * presents the new certificate (dialed to the slot's home edge, like a
 * rebalance). A slot that cannot is left as it is: the edge closes its link
 * when the old certificate ends, and it redials. */
static void replace_links(struct cn_supervisor *s)
{
    unsigned n = 0;
    for (unsigned i = 0; i < s->n_slots; i++) {
        struct cn_slot *slot = &s->slots[i];
        if (!slot->link || slot->probe || !cn_link_usable(slot->link) || !s->tls_ctx)
            continue;
        if (slot->rebalance_init)
            uv_timer_stop(&slot->rebalance);
        slot->replacing = 1;
        slot->probe = dial(slot, slot->place.home);
        if (slot->probe)
            n++;
        else
            slot->replacing = 0;
    }
    if (n)
        PX_INFO("replacing %u connection(s) that present the previous certificate", n);
}

static void on_enrolled(void *arg, int result, const char *cert_pem, const char *origin_ca,
                        int permanent, const char *why)
{
    struct cn_supervisor *s = arg;
    WOLFSSL_CTX *ctx = s->enroll_ctx;
    s->enroll_ctx = NULL;
    if (ctx)
        wolfSSL_CTX_free(ctx);
    s->enrolling = 0;
    int reenrol = s->reenrolling;
    s->reenrolling = 0;
    if (s->stopping) {
        maybe_finish(s);
        return;
    }
    long long until = 0;
    if (result < 0 && reenrol && s->id.cert_pem && s->creds &&
        !cn_creds_tunnel_expired(s->creds, &until)) {
        /* The certificate in hand still works: a refusal ends nothing yet.
         * Once it expires the edge closes the links and the enrolment that
         * follows decides, as for any expired certificate. */
        char at[21];
        px_cert_time(until, at);
        if (permanent) {
            PX_ERROR("enrolling again refused: %s; the certificate from the replaced token "
                     "keeps working until %s, then this connector stops: give it the tunnel's "
                     "new token (edge-sim tunnel rotate-token printed it)",
                     why, at);
            return;
        }
        s->reenrolling = 1; /* the retry keeps this mode */
    }
    if (result < 0) {
        if (permanent) {
            char msg[400];
            snprintf(msg, sizeof(msg), "enrolment refused: %s", why);
            cn_supervisor_fatal(s, msg);
            return;
        }
        unsigned delay = cn_backoff_next(&s->enroll_backoff, rnd32(s));
        PX_WARN("%s; retrying in %u ms", why, delay);
        uv_timer_start(&s->enroll_retry, on_enroll_retry, delay, 0);
        return;
    }
    if (cn_identity_save_cert(&s->id, cert_pem) < 0) {
        cn_supervisor_fatal(s, "cannot store the certificate in the state directory");
        return;
    }
    if (s->creds)
        cn_creds_enrolled(s->creds, origin_ca);
    char until_s[21] = "?";
    if (s->creds && !cn_creds_tunnel_expired(s->creds, &until))
        px_cert_time(until, until_s);
    PX_INFO("enrolled with the edge; certificate stored in %s, valid until %s", s->id.dir, until_s);
    start_links(s); /* the enrolment backoff resets once one of them registers */
    if (reenrol)
        replace_links(s);
}

static void start_enroll(struct cn_supervisor *s)
{
    if (s->enrolling || s->stopping)
        return;
    WOLFSSL_CTX *ctx = NULL;
    if (px_tls_ctx_client(s->cfg->token.ca_pem, NULL, NULL, &ctx) < 0) {
        cn_supervisor_fatal(s, "the token's edge certificate authority cannot be loaded");
        return;
    }
    const char *edge = edge_addr(s, s->enroll_rr++);
    s->enrolling = 1;
    s->enroll_ctx = ctx;
    PX_INFO("enrolling with edge %s", edge);
    if (cn_enroll_start(s->loop, ctx, edge, s->cfg->token.server_name, s->cfg->token.tunnel_id,
                        s->cfg->token.secret, s->id.key_pem, on_enrolled, s) < 0) {
        s->enrolling = 0;
        s->enroll_ctx = NULL;
        wolfSSL_CTX_free(ctx);
        uv_timer_start(&s->enroll_retry, on_enroll_retry,
                       cn_backoff_next(&s->enroll_backoff, rnd32(s)), 0);
    }
}

static void on_enroll_retry(uv_timer_t *t)
{
    start_enroll(t->data);
}

static void on_grace_over(uv_timer_t *t)
{
    struct cn_supervisor *s = t->data;
    PX_WARN("grace period over; closing with requests still in flight");
    stop_all(s, "grace period over");
}

/* REGISTER's connector id: 16 random hex digits, new for every process
 * (a replica, or this one restarted, is another connector). */
static void new_connector_id(struct cn_supervisor *s)
{
    uint8_t r[CN_CONNECTOR_ID_LEN / 2];
    for (size_t i = 0; i < sizeof(r); i += 4) {
        uint32_t v = rnd32(s);
        memcpy(r + i, &v, sizeof(r) - i < 4 ? sizeof(r) - i : 4);
    }
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof(r); i++) {
        s->connector_id[2 * i] = hex[r[i] >> 4];
        s->connector_id[2 * i + 1] = hex[r[i] & 15];
    }
    s->connector_id[CN_CONNECTOR_ID_LEN] = '\0';
}

/* The first SIGTERM/SIGINT drains: the edge routes nothing new to this
 * connector, requests in flight finish (up to --grace-period), then it
 * exits. A second signal stops at once. */
static void on_signal(uv_signal_t *h, int signum)
{
    struct cn_supervisor *s = h->data;
    const char *name = signum == SIGINT ? "SIGINT" : "SIGTERM";
    if (s->draining || s->stopping || s->cfg->grace_period_ms == 0) {
        PX_INFO("received %s, shutting down now", name);
        stop_all(s, "connector shutting down");
        return;
    }
    s->draining = 1;
    unsigned busy = 0;
    for (unsigned i = 0; i < s->n_slots; i++) {
        stop_timers(&s->slots[i]);
        if (s->slots[i].probe) /* carries nothing yet */
            cn_link_close(s->slots[i].probe, "connector draining");
        struct cn_link *l = s->slots[i].link;
        if (!l)
            continue;
        busy += cn_link_stream_count(l);
    }
    struct px_list_node *pos, *tmp;
    px_list_for_each_safe (pos, tmp, retired(s))
        busy += cn_link_stream_count(link_of(pos));
    PX_INFO("received %s: draining (%u request(s) in flight, up to %u s; send it again to stop "
            "now)",
            name, busy, s->cfg->grace_period_ms / 1000);
    uv_timer_start(&s->grace, on_grace_over, s->cfg->grace_period_ms, 0);
    s->stopping = 1; /* no reconnects from here on */
    uv_timer_stop(&s->enroll_retry);
    for (unsigned i = 0; i < s->n_slots; i++)
        if (s->slots[i].link)
            cn_link_drain(s->slots[i].link);
    /* Links an edge sent GOAWAY on still serve it: they drain too. */
    px_list_for_each_safe (pos, tmp, retired(s))
        cn_link_drain(link_of(pos));
    maybe_finish(s);
}

int cn_supervisor_run(struct cn_config *cfg)
{
    struct cn_supervisor *s = calloc(1, sizeof(*s));
    if (!s)
        return 1;
    int code = 1;
    char why[2048];
    s->cfg = cfg;
    s->loop = uv_default_loop();
    struct rt_loop rl = {0}; /* the loop's own state, until the end of this function */
    /* The process is set up (rt_proc_init in main: TLS and curl libraries,
     * SIGPIPE); this is the loop's own state. */
    if (rt_loop_init(&rl, s->loop) < 0 || cn_origin_new(s->loop, &s->origin) < 0 ||
        cn_h1_new(s->loop, &s->h1) < 0) {
        PX_ERROR("initialisation failed");
        goto out;
    }
    if (cn_identity_load(rt_loop_rng(&rl), &s->id, cfg->state_dir, cfg->token.tunnel_id, why,
                         sizeof(why)) < 0) {
        PX_ERROR("%s", why);
        goto out;
    }
    if (cn_supervisor_creds_init(s, why, sizeof(why)) < 0) {
        PX_ERROR("%s", why);
        goto out;
    }
    /* Before the slots, signals and timers: a failure here has nothing
     * of theirs to undo. */
    if (start_metrics(s) < 0)
        goto out;
    s->n_slots = cfg->ha_connections;
    cn_edges_init(&s->edges, (unsigned)cfg->n_edges);
    for (unsigned i = 0; i < s->n_slots; i++)
        cn_supervisor_slot_init(s, i);
    new_connector_id(s);
    cn_backoff_init(&s->enroll_backoff, 1000, 30000);
    uv_timer_init(s->loop, &s->enroll_retry);
    s->enroll_retry.data = s;
    uv_signal_init(s->loop, &s->sigint);
    uv_signal_init(s->loop, &s->sigterm);
    uv_signal_init(s->loop, &s->sighup);
    uv_timer_init(s->loop, &s->grace);
    s->grace.data = s;
    s->sigint.data = s->sigterm.data = s->sighup.data = s;
    uv_signal_start(&s->sighup, on_sighup, SIGHUP);
    uv_signal_start(&s->sigint, on_signal, SIGINT);
    uv_signal_start(&s->sigterm, on_signal, SIGTERM);

    PX_INFO("connector %s starting: tunnel %s (%s), %zu ingress rule(s), %u connection(s) over "
            "%zu edge(s)",
            s->connector_id, cfg->token.name[0] ? cfg->token.name : "?", cfg->token.tunnel_id,
            cfg->ingress->n, s->n_slots, cfg->n_edges);
    for (size_t i = 0; i < cfg->n_edges; i++)
        PX_INFO("edge %zu: %s", i, cfg->edges[i]);
    long long not_after = 0;
    if (s->id.cert_pem && cn_creds_tunnel_expired(s->creds, &not_after)) {
        /* Offline past its expiry (or unreadable): the edge would refuse it. */
        char at[21];
        px_cert_time(not_after, at);
        if (not_after)
            PX_WARN("the stored certificate expired at %s; enrolling again with the token", at);
        cn_identity_drop_cert(&s->id);
    }
    cn_creds_start(s->creds);
    if (s->id.cert_pem)
        start_links(s);
    else
        start_enroll(s);
    uv_run(s->loop, UV_RUN_DEFAULT);
    code = s->exit_code;
out:
    cn_ops_free(s->ops);
    if (s->tls_ctx)
        wolfSSL_CTX_free(s->tls_ctx);
    cn_supervisor_creds_cleanup(s);
    cn_origin_free(s->origin);
    cn_h1_free(s->h1);
    rt_loop_cleanup(&rl);
    uv_run(s->loop, UV_RUN_NOWAIT); /* completes the closes just started */
    cn_metrics_free(s->metrics);
    cn_identity_cleanup(&s->id);
    free(s);
    return code;
}
