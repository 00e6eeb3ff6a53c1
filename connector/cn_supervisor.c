#include "cn_supervisor.h"
#include "cn_enroll.h"
#include "cn_origin.h"
#include "cn_stream.h"
#include "px_cert.h"
#include "px_err.h"
#include "px_hostname.h"
#include "px_log.h"
#include "px_pki.h"
#include "px_tls.h"

#include <wolfssl/error-ssl.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>

static void start_slot(struct cn_slot *slot);
static void start_enroll(struct cn_supervisor *s);
static void on_enroll_retry(uv_timer_t *t);

static uint32_t rnd32(struct cn_supervisor *s)
{
    uint32_t r = 0;
    if (px_pki_random(rt_loop_rng(rt_loop_of(s->loop)), &r, sizeof(r)) < 0)
        r = (uint32_t)uv_hrtime();
    return r;
}

static const char *edge_for(struct cn_supervisor *s, unsigned i)
{
    if (s->cfg->edge_override[0])
        return s->cfg->edge_override;
    return s->cfg->token.edges[i % s->cfg->token.n_edges];
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
        if (s->slots[i].link)
            return;
    uv_stop(s->loop);
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
        uv_timer_stop(&s->slots[i].retry);
        if (s->slots[i].link)
            cn_link_close(s->slots[i].link, why);
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

static void link_ready(void *arg, struct cn_link *l)
{
    struct cn_supervisor *s = arg;
    struct cn_slot *slot = &s->slots[cn_link_index(l)];
    cn_backoff_reset(&slot->backoff);
    cn_backoff_reset(&s->enroll_backoff); /* the certificate works */
    slot->attempts = 0;
    if (s->creds)
        cn_creds_link_up(s->creds);
}

static void on_retry(uv_timer_t *t)
{
    struct cn_slot *slot = t->data;
    start_slot(slot);
}

static void free_link(struct cn_link *l)
{
    free(l);
}

static void link_retiring(void *arg, struct cn_link *l, int clean)
{
    struct cn_supervisor *s = arg;
    struct cn_slot *slot = &s->slots[cn_link_index(l)];
    if (px_list_linked(&l->host_node) || slot->link != l)
        return;
    px_list_insert_head(retired(s), &l->host_node);
    slot->link = NULL;
    /* It may not answer a renewal any more: ask on another link. */
    if (s->creds)
        cn_creds_link_gone(s->creds, l);
    if (s->stopping)
        return;
    /* A link that served and was told to go away cleanly is replaced at
     * once (make before break): the edge is restarting or rebalancing, not
     * failing. Anything else goes through the usual backoff. */
    cn_backoff_reset(&slot->backoff);
    slot->attempts = 0;
    if (clean) {
        PX_INFO("connection %u: dialing its replacement now", cn_link_index(l));
        uv_timer_start(&slot->retry, on_retry, 0, 0);
    } else {
        unsigned delay = cn_backoff_next(&slot->backoff, rnd32(s));
        PX_INFO("connection %u: dialing its replacement in %u ms", cn_link_index(l), delay);
        uv_timer_start(&slot->retry, on_retry, delay, 0);
    }
}

static void link_closed(void *arg, struct cn_link *l)
{
    struct cn_supervisor *s = arg;
    if (s->creds)
        cn_creds_link_gone(s->creds, l);
    if (px_list_linked(&l->host_node)) {
        px_list_remove(&l->host_node);
        PX_INFO("connection %u (replaced) closed: %s", cn_link_index(l), cn_link_close_reason(l));
        free_link(l);
        maybe_finish(s);
        return;
    }
    struct cn_slot *slot = &s->slots[cn_link_index(l)];
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
    unsigned delay = cn_backoff_next(&slot->backoff, rnd32(s));
    if (was_ready)
        PX_WARN("connection %u to edge %s lost: %s; reconnecting in %u ms", cn_link_index(l),
                cn_link_edge(l), cn_link_close_reason(l), delay);
    else
        PX_WARN("connection %u to edge %s failed: %s; retry %u in %u ms", cn_link_index(l),
                cn_link_edge(l), cn_link_close_reason(l), ++slot->attempts, delay);
    free_link(l);
    if (cert_rejected && s->id.cert_pem) {
        PX_WARN("the edge refused this connector's certificate (TLS alert %s); enrolling again "
                "with the token",
                alert_name);
        cn_identity_drop_cert(&s->id);
        for (unsigned i = 0; i < s->n_slots; i++) {
            uv_timer_stop(&s->slots[i].retry);
            if (s->slots[i].link)
                cn_link_close(s->slots[i].link, "re-enrolling");
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
    uv_timer_start(&slot->retry, on_retry, delay, 0);
}

static void link_fatal(void *arg, const char *msg)
{
    cn_supervisor_fatal(arg, msg);
}

/* Credential messages that arrive on a link go to the renewal. */
static void link_control(void *arg, struct cn_link *l, const struct px_ctl_msg *m)
{
    struct cn_supervisor *s = arg;
    if (!s->creds)
        return;
    switch (m->type) {
    case PX_CTL_ERROR:
        cn_creds_renew_failed(s->creds, l, m->message);
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
        .env = {.ops = &stream_env_ops,
                .arg = s,
                .loop = s->loop,
                .origin = s->origin,
                .response_timeout_ms = s->cfg->response_timeout_ms},
    };
}

static void start_slot(struct cn_slot *slot)
{
    struct cn_supervisor *s = slot->sup;
    if (s->stopping || slot->link || !s->tls_ctx)
        return;
    struct cn_link *l = calloc(1, sizeof(*l));
    if (!l) {
        uv_timer_start(&slot->retry, on_retry, 1000, 0);
        return;
    }
    slot->link = l;
    const char *edge = edge_for(s, slot->index);
    PX_DEBUG("connection %u: connecting to %s", slot->index, edge);
    struct cn_link_host host;
    cn_supervisor_link_host(s, &host);
    if (cn_link_start(l, &host, slot->index, edge) < 0) {
        slot->link = NULL;
        free(l);
        uv_timer_start(&slot->retry, on_retry, cn_backoff_next(&slot->backoff, rnd32(s)), 0);
    }
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
        uv_timer_start(&s->slots[i].retry, on_retry, i * 50, 0);
    }
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
    if (s->stopping) {
        maybe_finish(s);
        return;
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
    long long until = 0;
    char until_s[21] = "?";
    if (s->creds && !cn_creds_tunnel_expired(s->creds, &until))
        px_cert_time(until, until_s);
    PX_INFO("enrolled with the edge; certificate stored in %s, valid until %s", s->id.dir, until_s);
    start_links(s); /* the enrolment backoff resets once one of them registers */
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
    const char *edge = edge_for(s, s->enroll_rr++);
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
        uv_timer_stop(&s->slots[i].retry);
        struct cn_link *l = s->slots[i].link;
        if (!l)
            continue;
        busy += cn_link_stream_count(l);
    }
    PX_INFO("received %s: draining (%u request(s) in flight, up to %u s; send it again to stop "
            "now)",
            name, busy, s->cfg->grace_period_ms / 1000);
    uv_timer_start(&s->grace, on_grace_over, s->cfg->grace_period_ms, 0);
    s->stopping = 1; /* no reconnects from here on */
    uv_timer_stop(&s->enroll_retry);
    for (unsigned i = 0; i < s->n_slots; i++)
        if (s->slots[i].link)
            cn_link_drain(s->slots[i].link);
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
    if (rt_loop_init(&rl, s->loop) < 0 || cn_origin_new(s->loop, &s->origin) < 0) {
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
    s->n_slots = cfg->ha_connections;
    for (unsigned i = 0; i < s->n_slots; i++) {
        struct cn_slot *slot = &s->slots[i];
        slot->sup = s;
        slot->index = i;
        cn_backoff_init(&slot->backoff, 1000, 30000);
        uv_timer_init(s->loop, &slot->retry);
        slot->retry.data = slot;
    }
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

    PX_INFO("connector starting: tunnel %s (%s), %zu ingress rule(s), %u connection(s)",
            cfg->token.name[0] ? cfg->token.name : "?", cfg->token.tunnel_id, cfg->ingress->n,
            s->n_slots);
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
    if (s->tls_ctx)
        wolfSSL_CTX_free(s->tls_ctx);
    cn_supervisor_creds_cleanup(s);
    cn_origin_free(s->origin);
    rt_loop_cleanup(&rl);
    uv_run(s->loop, UV_RUN_NOWAIT); /* completes the closes just started */
    cn_identity_cleanup(&s->id);
    free(s);
    return code;
}
