#include "es_link.h"
#include "es_assert.h"
#include "es_live.h"
#include "es_metrics.h"
#include "es_registry.h"
#include "es_req.h"
#include "es_server.h"
#include "es_text.h"
#include "px_cert.h"
#include "px_enroll.h"
#include "px_err.h"
#include "px_hostname.h"
#include "px_log.h"
#include "px_pki.h"
#include "rt_h2.h"

#include <wolfssl/wolfcrypt/hash.h>

#include <ctype.h>
#include <stdio.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { MODE_NONE, MODE_H2, MODE_ENROLL };

unsigned es_link_count(const struct es_server *srv)
{
    return srv->n_links;
}

/* srv's links. A server is set up zeroed (no es_server_init): its list
 * starts out empty here. */
static struct px_list *server_links(struct es_server *srv)
{
    if (!srv->links.head.next)
        px_list_init(&srv->links);
    return &srv->links;
}

static struct es_link *link_of(struct px_list_node *n)
{
    return px_container_of(n, struct es_link, all_node);
}

static void kick(struct es_link *l)
{
    rt_conn_want_write(&l->conn);
}

/* Tells the connector the keys that verify the edge's assertions. */
static int send_access_keys(struct es_link *l)
{
    const struct es_assert *as = l->srv->assert;
    if (!as || !rt_tunnel_control_open(&l->tun) || l->dying)
        return 0;
    struct px_ctl_msg m = {.type = PX_CTL_ACCESS_KEYS,
                           .issuer = (char *)es_assert_issuer(as),
                           .jwks = (char *)es_assert_jwks(as)};
    l->keys_sent = 1;
    return rt_tunnel_send(&l->tun, &m);
}

/* Tells the connector the CA of the edge's origin certificates. */
static int send_origin_ca(struct es_link *l)
{
    /* No CA loaded (an in-memory edge in tests): nothing to tell. */
    if (!rt_tunnel_control_open(&l->tun) || l->dying || !l->srv->certs.origin_ca_pem)
        return 0;
    struct px_ctl_msg m = {.type = PX_CTL_ORIGIN_CA, .pem = l->srv->certs.origin_ca_pem};
    l->origin_ca_sent = 1;
    return rt_tunnel_send(&l->tun, &m);
}

static long long cert_lifetime(const struct es_server *srv)
{
    return srv->cert_lifetime > 0 ? srv->cert_lifetime : ES_CERT_LIFETIME_DEFAULT;
}

/* Logs a certificate the edge issued to a connector: for whom, which kind,
 * until when. */
static void log_issued(const char *tunnel, const char *kind, const char *cert_pem, const char *how)
{
    struct px_der *der = NULL;
    size_t n = 0;
    struct px_cert_info ci;
    char until[21] = "?";
    if (px_cert_pem_split(cert_pem, strlen(cert_pem), &der, &n) == 0 &&
        px_cert_info(der[0].der, der[0].len, &ci) == 0) {
        px_cert_time(ci.not_after, until);
        px_cert_info_cleanup(&ci);
    }
    px_der_free(der, n);
    PX_INFO("tunnel %s: issued a certificate (kind %s, %s), valid until %s", tunnel, kind, how,
            until);
}

void es_link_send_access_keys_all(struct es_server *srv)
{
    struct px_list_node *pos, *tmp;
    px_list_for_each_safe (pos, tmp, server_links(srv)) {
        struct es_link *l = link_of(pos);
        if (l->keys_sent && send_access_keys(l) < 0)
            PX_WARN("connector connection %s: cannot send the new access keys", l->conn_id);
    }
}

void es_link_kill(struct es_link *l, const char *code, const char *message, int permanent)
{
    if (l->dying)
        return;
    l->dying = 1;
    if (l->tunnel)
        es_registry_detach(l->tunnel, l);
    PX_INFO("closing connector connection %s: %s", l->conn_id, message);
    if (rt_tunnel_control_open(&l->tun)) {
        struct px_ctl_msg m = {.type = PX_CTL_ERROR,
                               .code = (char *)code,
                               .message = (char *)message,
                               .permanent = permanent};
        rt_tunnel_send(&l->tun, &m);
    }
    rt_tunnel_shutdown(&l->tun);
    rt_conn_close(&l->conn, PX_ERR_CLOSED);
}

/* ---- enrolment (ALPN tunnel-enroll/1) ---- */

/* Defect 13: an unknown tunnel id and a wrong secret get this one answer,
 * byte for byte, so a prober cannot tell which tunnel ids exist. The edge's
 * own log says which it was. */
#define REFUSED_CODE "bad_token"
#define REFUSED_MSG                                                                                \
    "this edge does not accept the token (the tunnel was deleted, the token is from "              \
    "another edge, or its secret is wrong)"

static void enroll_answer(struct es_link *l, const struct px_enroll_resp *resp)
{
    char *line = px_enroll_resp_encode(resp);
    if (line) {
        rt_conn_write(&l->conn, line, strlen(line));
        free(line);
    }
    rt_conn_close(&l->conn, 0);
}

static void enroll_refuse(struct es_link *l, enum es_enrolment why, const char *code,
                          const char *msg)
{
    es_metrics_enrolment(l->srv->metrics, why, es_metrics_now_ms());
    struct px_enroll_resp resp = {.ok = 0, .code = (char *)code, .message = (char *)msg};
    enroll_answer(l, &resp);
}

/* Refuses an enrolment that failed and counts it against the source
 * address; why is for the edge's log only. */
static void enroll_fail(struct es_link *l, enum es_enrolment result, const char *code,
                        const char *msg, const char *why)
{
    char key[ES_RATELIMIT_KEY_MAX];
    es_ratelimit_key(l->conn.peer_ip, key);
    PX_WARN("enrolment from %s refused: %s", l->conn.peer_ip, why);
    if (es_ratelimit_fail(&l->srv->enroll_failures, key, uv_now(l->srv->loop)))
        PX_WARN("too many failed enrolments from %s: refusing its enrolments for a while", key);
    enroll_refuse(l, result, code, msg);
}

/* 1 if the source address has failed too often: then it is answered
 * rate_limited at once, without looking at the request. */
static int enroll_limited(struct es_link *l)
{
    char key[ES_RATELIMIT_KEY_MAX];
    es_ratelimit_key(l->conn.peer_ip, key);
    if (es_ratelimit_allowed(&l->srv->enroll_failures, key, uv_now(l->srv->loop)))
        return 0;
    PX_DEBUG("enrolment from %s refused unchecked: too many failures", l->conn.peer_ip);
    enroll_refuse(l, ES_ENROL_RATE_LIMITED, "rate_limited",
                  "too many failed enrolments from this address; try again in a minute");
    return 1;
}

static int enroll_on_data(struct es_link *l, const uint8_t *data, size_t len)
{
    if (l->conn.closing || l->conn.close_pending)
        return 0; /* answered already */
    if (px_buf_append(&l->enroll_in, data, len) < 0)
        return -1;
    const char *head = (const char *)px_buf_head(&l->enroll_in);
    size_t n = px_buf_len(&l->enroll_in);
    const char *nl = memchr(head, '\n', n);
    if (!nl) {
        if (n > PX_ENROLL_MAX_LINE && !enroll_limited(l))
            enroll_fail(l, ES_ENROL_BAD_REQUEST, "bad_request", "enrolment request too large",
                        "request too large");
        return 0;
    }
    if (enroll_limited(l))
        return 0;
    struct px_enroll_req req;
    if (px_enroll_req_decode(head, (size_t)(nl - head), &req) < 0) {
        enroll_fail(l, ES_ENROL_BAD_REQUEST, "bad_request", "malformed enrolment request",
                    "malformed request");
        return 0;
    }
    /* The same work whether the tunnel exists or not: for an unknown id
     * `sec` stays all zeros, a dummy hash no secret has, and is compared all
     * the same (current and previous secret, every time), so the answer's
     * timing does not tell either. */
    struct es_tunnel_secrets sec;
    uint8_t hash[32];
    memset(&sec, 0, sizeof(sec));
    int found = es_store_tunnel_secrets(&l->srv->store, req.tunnel_id, &sec);
    wc_Sha256Hash(req.secret, sizeof(req.secret), hash);
    int match = es_store_secret_match(&sec, hash, (long long)time(NULL));
    if (found < 0 && found != PX_ERR_NOT_FOUND) {
        /* Not an answer about the token: the connector tries again. */
        PX_WARN("enrolment from %s: cannot read the edge database (%s)", l->conn.peer_ip,
                px_strerror(found));
        enroll_refuse(l, ES_ENROL_INTERNAL, "internal",
                      found == PX_ERR_UNAVAILABLE
                          ? "the edge cannot reach its database; try again later or through "
                            "another edge"
                          : "edge storage error; try again");
        goto out;
    }
    if (found < 0 || !match) {
        char why[120];
        snprintf(why, sizeof(why), "%s %s (answered as %s)",
                 found < 0 ? "no such tunnel:" : "wrong secret for tunnel", req.tunnel_id,
                 REFUSED_CODE);
        enroll_fail(l, ES_ENROL_BAD_TOKEN, REFUSED_CODE, REFUSED_MSG, why);
        goto out;
    }
    /* Defect 9.4: the line records which token it was begun with, the
     * previous one included, so that its renewals stop with that token. */
    struct es_cert_line line = {.enrolled_at = (long long)time(NULL),
                                .rotation = es_store_enrol_rotation(&sec, match)};
    if (line.rotation < 0) { /* a previous secret without a rotation: a hand-edited row */
        PX_WARN("enrolment from %s: tunnel %s has a previous secret but no rotation recorded",
                l->conn.peer_ip, req.tunnel_id);
        enroll_refuse(l, ES_ENROL_INTERNAL, "internal", "edge storage error; try again");
        goto out;
    }
    char *cert = NULL;
    if (es_certs_issue_client(&l->srv->certs, req.tunnel_id, req.public_key_pem,
                              cert_lifetime(l->srv), &line, &cert) < 0) {
        enroll_fail(l, ES_ENROL_BAD_KEY, "bad_key", "the public key could not be certified",
                    "unusable public key");
        goto out;
    }
    struct es_tunnel_rec rec;
    if (es_store_tunnel_get(&l->srv->store, req.tunnel_id, NULL, &rec) == 0) {
        PX_INFO("enrolled a connector for tunnel %s from %s%s", rec.name, l->conn.peer_ip,
                match == 2 ? " with the previous token (rotated, still in its grace period)" : "");
        log_issued(rec.name, PX_CTL_KIND_TUNNEL, cert, "enrolment");
        es_tunnel_rec_cleanup(&rec);
    }
    es_metrics_enrolment(l->srv->metrics, ES_ENROL_OK, es_metrics_now_ms());
    struct px_enroll_resp resp = {
        .ok = 1, .cert_pem = cert, .origin_ca = l->srv->certs.origin_ca_pem};
    enroll_answer(l, &resp);
    free(cert);
out:
    px_enroll_req_cleanup(&req);
    return 0;
}

/* ---- the hostnames this connection serves ----
 * A tunnel may have several connectors, and they need not all serve the same
 * names (a replica started with other flags, or mid-reload): a request goes
 * only to a connection whose own registration covers its host. */

static int serves_add(struct es_link *l, const char *name)
{
    for (size_t i = 0; i < l->n_names; i++)
        if (strcasecmp(l->names[i], name) == 0)
            return 0;
    if (l->n_names == l->cap_names) {
        size_t cap = l->cap_names ? l->cap_names * 2 : 8;
        char **a = realloc(l->names, cap * sizeof(*a));
        if (!a)
            return PX_ERR_NOMEM;
        l->names = a;
        unsigned char *lost = realloc(l->lost, cap);
        if (!lost)
            return PX_ERR_NOMEM;
        l->lost = lost;
        l->cap_names = cap;
    }
    char *d = strdup(name);
    if (!d)
        return PX_ERR_NOMEM;
    for (char *p = d; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    l->lost[l->n_names] = 0;
    l->names[l->n_names++] = d;
    return 0;
}

static void serves_remove(struct es_link *l, const char *name)
{
    for (size_t i = 0; i < l->n_names; i++) {
        if (strcasecmp(l->names[i], name) == 0) {
            free(l->names[i]);
            l->n_names--;
            l->names[i] = l->names[l->n_names];
            l->lost[i] = l->lost[l->n_names];
            return;
        }
    }
}

static void serves_clear(struct es_link *l)
{
    for (size_t i = 0; i < l->n_names; i++)
        free(l->names[i]);
    free(l->names);
    free(l->lost);
    l->names = NULL;
    l->lost = NULL;
    l->n_names = l->cap_names = 0;
}

int es_link_route_lost(struct es_link *l, size_t k, int lost)
{
    if (k >= l->n_names)
        return 0;
    int was = l->lost[k];
    l->lost[k] = lost != 0;
    return lost && !was;
}

int es_link_deferred(const struct es_link *l, size_t k)
{
    return k < l->n_names && l->lost[k] == 2;
}

int es_link_deferred_done(struct es_link *l, size_t k, int granted, const char *why)
{
    if (!es_link_deferred(l, k))
        return 0;
    struct px_ctl_result res = {
        .hostname = l->names[k], .accepted = granted, .reason = granted ? NULL : (char *)why};
    struct es_tunnel *t = l->tunnel;
    struct px_ctl_msg m = {.type = PX_CTL_REGISTERED,
                           .results = &res,
                           .n_results = 1,
                           .agent = t ? t->name : NULL,
                           .conn_id = l->conn_id};
    int rc = rt_tunnel_control_open(&l->tun) ? rt_tunnel_send(&l->tun, &m) : 0;
    if (granted) {
        l->lost[k] = 0;
    } else {
        /* Dropped as serves_remove drops one: the last name moves to k. */
        free(l->names[k]);
        l->n_names--;
        l->names[k] = l->names[l->n_names];
        l->lost[k] = l->lost[l->n_names];
    }
    return rc;
}

/* Keeps name among l's names, deferred (es_link_deferred). Returns 0 or
 * PX_ERR_NOMEM. */
static int serves_defer(struct es_link *l, const char *name)
{
    int rc = serves_add(l, name);
    for (size_t i = 0; rc == 0 && i < l->n_names; i++)
        if (strcasecmp(l->names[i], name) == 0)
            l->lost[i] = 2;
    return rc;
}

int es_link_serves(const struct es_link *l, const char *host)
{
    for (size_t i = 0; i < l->n_names; i++) {
        const char *n = l->names[i];
        if (strcmp(n, host) == 0 || (n[0] == '*' && px_host_match(n, host)))
            return 1;
    }
    return 0;
}

/* ---- control stream ---- */

/* Refuses a RENEW, telling the connector why (reason: PX_CTL_RENEW_*, for
 * it to act on; why: for people); the link stays up. */
static int renew_fail(struct es_link *l, const char *reason, const char *why)
{
    PX_WARN("tunnel %s: certificate renewal for connection %s refused: %s", l->tunnel_id,
            l->conn_id, why);
    struct px_ctl_msg e = {.type = PX_CTL_ERROR,
                           .code = "renew_failed",
                           .message = (char *)why,
                           .reason = (char *)reason,
                           .permanent = 0};
    return l->dying ? 0 : rt_tunnel_send(&l->tun, &e);
}

/* The messages of the refusals a connector may act on (docs/protocol.md
 * 6.4 lists them all). */
#define RENEW_EXPIRED_MSG                                                                          \
    "this connection's tunnel certificate (and any renewal of it made here) has expired: "         \
    "reconnect to enrol again"
#define RENEW_REPLACED_MSG                                                                         \
    "this connector enrolled with a token that has been replaced (edge-sim tunnel "                \
    "rotate-token): enrol with the new token"

/* The token generation l's line was begun with, from its certificate or,
 * for one issued before generations, from the time it was enrolled. */
static long long line_rotation(const struct es_link *l, const struct es_tunnel_secrets *sec)
{
    return l->rotation >= 0 ? l->rotation : es_store_legacy_rotation(sec, l->enrolled_at);
}

void es_link_line_renewed(struct es_link *l, long long not_after)
{
    l->cert_not_after = not_after;
    if (!l->key_known)
        return;
    struct px_list_node *pos, *tmp;
    px_list_for_each_safe (pos, tmp, server_links(l->srv)) {
        struct es_link *o = link_of(pos);
        if (o == l || o->mode != MODE_H2 || !o->key_known || o->cert_not_after >= not_after ||
            strcmp(o->tunnel_id, l->tunnel_id) != 0 || o->enrolled_at != l->enrolled_at ||
            memcmp(o->key_hash, l->key_hash, sizeof(l->key_hash)) != 0)
            continue;
        o->cert_not_after = not_after;
        if (o->rotation < 0)
            o->rotation = l->rotation;
    }
}

unsigned es_link_expire(struct es_server *srv, long long now)
{
    unsigned n = 0;
    struct px_list_node *pos, *tmp;
    px_list_for_each_safe (pos, tmp, server_links(srv)) {
        struct es_link *l = link_of(pos);
        if (l->expiring && !l->retiring && !l->dying) {
            /* Told on the last pass, yet its output never ran dry (streams
             * busy sending): retire it now, or a long download would keep
             * it up past ES_LINK_RETIRE_MS. */
            es_link_retire(l, "certificate expired");
            continue;
        }
        if (l->mode != MODE_H2 || l->cert_not_after <= 0 || now < l->cert_not_after ||
            l->expiring || l->dying || l->retiring || l->conn.closing || l->conn.closed)
            continue;
        char until[21];
        px_cert_time(l->cert_not_after, until);
        PX_INFO("tunnel %s: connection %s: its certificate expired at %s and was not renewed; "
                "closing it",
                l->tunnel_id, l->conn_id, until);
        n++;
        /* Nothing new goes to it from now on. Not killed: streams in flight
         * finish (ES_LINK_RETIRE_MS at most). The connector hears why, then
         * GOAWAY once that is out (on_writable: nghttp2 sends a GOAWAY ahead
         * of DATA queued before it), and reconnects. */
        l->expiring = 1;
        if (l->tunnel)
            es_registry_detach(l->tunnel, l);
        struct px_ctl_msg m = {.type = PX_CTL_ERROR,
                               .code = "cert_expired",
                               .message = "this connection's tunnel certificate has expired and "
                                          "was not renewed: reconnect (or enrol again)",
                               .permanent = 0};
        if (!rt_tunnel_control_open(&l->tun) || rt_tunnel_send(&l->tun, &m) < 0)
            es_link_retire(l, "certificate expired");
    }
    return n;
}

/* RENEW: a new certificate of the kind asked for, for the tunnel this
 * connection's own client certificate names (never one the message names). */
static int on_renew(struct es_link *l, const struct px_ctl_msg *m)
{
    struct es_server *srv = l->srv;
    if (l->dying)
        return 0; /* closing: its error and GOAWAY are on their way */
    int k = strcmp(m->kind, PX_CTL_KIND_ORIGIN_PULL) == 0; /* the codec checked the kind */
    uint64_t now = uv_now(srv->loop);
    if ((l->renew_seen & (1u << k)) && now - l->renew_last_ms[k] < ES_LINK_RENEW_INTERVAL_MS)
        return renew_fail(l, PX_CTL_RENEW_TOO_FREQUENT, "too frequent");
    l->renew_seen |= 1u << k;
    l->renew_last_ms[k] = now;
    struct es_tunnel *t = es_registry_tunnel(&srv->reg, l->tunnel_id);
    if (!t)
        return renew_fail(l, PX_CTL_RENEW_TUNNEL_GONE, "the tunnel no longer exists");
    long long wall = (long long)time(NULL);
    /* A renewal continues the line of the certificate this connection
     * presented: not past its end, and not past a token rotation's grace
     * for a line begun with the token it replaced (else rotating a leaked
     * token would never evict whoever enrolled with it). Which token a line
     * began with is its generation, exact (defect 9.6: whole seconds took
     * an enrolment in the rotation's second for one before it). */
    struct es_cert_line line = {.enrolled_at = l->enrolled_at, .rotation = 0};
    if (!l->conn.memory) {
        if (wall >= l->cert_not_after)
            return renew_fail(l, PX_CTL_RENEW_CERT_EXPIRED, RENEW_EXPIRED_MSG);
        struct es_tunnel_secrets sec;
        int rc = es_store_tunnel_secrets(&srv->store, l->tunnel_id, &sec);
        if (rc == PX_ERR_NOT_FOUND)
            return renew_fail(l, PX_CTL_RENEW_TUNNEL_GONE, "the tunnel no longer exists");
        if (rc < 0)
            return renew_fail(l, PX_CTL_RENEW_INTERNAL,
                              rc == PX_ERR_UNAVAILABLE
                                  ? "the edge cannot reach its database; try again later"
                                  : "edge storage error; try again");
        line.rotation = line_rotation(l, &sec);
        if (!es_store_line_renewable(&sec, line.rotation, wall))
            return renew_fail(l, PX_CTL_RENEW_TOKEN_REPLACED, RENEW_REPLACED_MSG);
    }
    if (es_certs_check_p256(m->pem) < 0)
        return renew_fail(l, PX_CTL_RENEW_BAD_KEY, "not a P-256 public key");
    char *cert = NULL;
    int rc =
        k ? es_certs_issue_origin_pull(&srv->certs, l->tunnel_id, m->pem, cert_lifetime(srv), &cert)
          : es_certs_issue_client(&srv->certs, l->tunnel_id, m->pem, cert_lifetime(srv), &line,
                                  &cert);
    if (rc < 0)
        return renew_fail(l, PX_CTL_RENEW_INTERNAL, "the edge could not issue the certificate");
    char how[64];
    snprintf(how, sizeof(how), "renewal on connection %s", l->conn_id);
    log_issued(t->name, m->kind, cert, how);
    if (!k) {
        /* The line now ends with the new certificate, for this connection
         * and the connector's others here (which keep the certificate they
         * presented, as this one does). */
        l->rotation = line.rotation;
        struct px_der *d = NULL;
        size_t nd = 0;
        struct px_cert_info ci;
        if (px_cert_pem_split(cert, strlen(cert), &d, &nd) == 0 &&
            px_cert_info(d[0].der, d[0].len, &ci) == 0) {
            es_link_line_renewed(l, ci.not_after);
            px_cert_info_cleanup(&ci);
        }
        px_der_free(d, nd);
    }
    struct px_ctl_msg reply = {.type = PX_CTL_RENEWED, .kind = m->kind, .pem = cert};
    rc = rt_tunnel_send(&l->tun, &reply);
    free(cert);
    return rc;
}

/* 1 if a connection of t registered name itself (not just a wildcard over it). */
static int tunnel_serves_name(const struct es_tunnel *t, const char *name)
{
    for (const struct es_link *o = t->links; o; o = o->tunnel_next)
        for (size_t i = 0; i < o->n_names; i++)
            if (strcasecmp(o->names[i], name) == 0)
                return 1;
    return 0;
}

/* 1 if a connection of t at another edge sharing the data dir registered
 * name (es_live_held_elsewhere), or if that cannot be told: then the route
 * stays, and the hostname grace releases it if nobody holds it. */
static int held_elsewhere(struct es_link *l, const struct es_tunnel *t, const char *name)
{
    if (!l->srv->live.db)
        return 0;
    int rc = es_live_held_elsewhere(&l->srv->live, t->id, name, es_live_now_ms());
    if (rc < 0)
        PX_WARN("tunnel %s: hostname %s kept: cannot tell whether another edge's connection "
                "serves it (%s)",
                t->name, name, es_sql_errmsg(l->srv->live.db));
    else if (rc > 0)
        PX_INFO("tunnel %s: hostname %s kept: a connection at another edge still serves it",
                t->name, name);
    return rc != 0;
}

/* Keeps what REGISTER said about the connection (the codec validated the
 * fields, but the edge does not count on it: each is kept as valid UTF-8). */
static void remember_register(struct es_link *l, const struct px_ctl_msg *m)
{
    if (m->connector)
        es_text_copy(l->connector, sizeof(l->connector), m->connector);
    if (m->conn_index >= 0)
        l->conn_index = m->conn_index;
    if (m->edge)
        es_text_copy(l->edge, sizeof(l->edge), m->edge);
    /* Cut at a character boundary: never half a UTF-8 sequence (the admin
     * API's JSON could not show it). */
    if (m->agent)
        es_text_copy(l->agent, sizeof(l->agent), m->agent);
    if (!l->registered_at)
        l->registered_at = (long long)time(NULL);
}

int es_link_info(const struct es_link *l, struct es_link_info *info)
{
    *info = (struct es_link_info){.conn_id = l->conn_id,
                                  .tunnel_id = l->tunnel_id,
                                  .connector = l->connector,
                                  .conn_index = l->conn_index,
                                  .edge = l->edge,
                                  .agent = l->agent,
                                  .peer_ip = l->conn.peer_ip,
                                  .since = l->registered_at,
                                  .names = (const char *const *)l->names,
                                  .n_names = l->n_names};
    return l->registered && !l->dying && !l->conn.closing && !l->conn.closed;
}

void es_link_each(struct es_server *srv, void (*cb)(struct es_link *l, void *arg), void *arg)
{
    struct px_list_node *pos, *tmp;
    px_list_for_each_safe (pos, tmp, server_links(srv))
        cb(link_of(pos), arg);
}

static int on_control_msg(void *arg, const struct px_ctl_msg *m)
{
    struct es_link *l = arg;
    struct es_server *srv = l->srv;
    if (m->type == PX_CTL_REGISTER) {
        struct es_tunnel *t = es_registry_tunnel(&srv->reg, l->tunnel_id);
        if (!t) {
            es_link_kill(l, "tunnel_deleted", "this tunnel was deleted at the edge", 1);
            return 0;
        }
        struct px_ctl_result *res = calloc(m->n_hostnames ? m->n_hostnames : 1, sizeof(*res));
        if (!res)
            return PX_ERR_NOMEM;
        remember_register(l, m);
        char reasons[PX_CTL_MAX_HOSTNAMES][160];
        size_t accepted = 0, unavailable = 0;
        for (size_t i = 0; i < m->n_hostnames; i++) {
            res[i].hostname = m->hostnames[i];
            reasons[i][0] = '\0';
            int rc = es_registry_claim(&srv->reg, &srv->store, t, m->hostnames[i], reasons[i],
                                       sizeof(reasons[i]));
            if (rc == PX_ERR_NOT_FOUND) {
                /* Deleted by another process before this one's store poll
                 * saw it: the same answer as when the poll got there first. */
                free(res);
                es_link_kill(l, "tunnel_deleted", "this tunnel was deleted at the edge", 1);
                return 0;
            }
            if (rc == 0 && serves_add(l, m->hostnames[i]) < 0) {
                snprintf(reasons[i], sizeof(reasons[i]), "the edge ran out of memory");
                rc = PX_ERR_NOMEM;
            }
            /* Not granted now, but not forgotten: claimed once the database
             * is back (es_live_serve's beat), and the connector told. */
            if (rc == PX_ERR_UNAVAILABLE && serves_defer(l, m->hostnames[i]) == 0)
                snprintf(reasons[i], sizeof(reasons[i]),
                         "the edge cannot reach its database now; it claims this hostname as "
                         "soon as the database is back");
            res[i].accepted = rc == 0;
            res[i].reason = rc == 0 ? NULL : reasons[i];
            unavailable += rc == PX_ERR_UNAVAILABLE;
            if (rc == 0)
                accepted++;
            else
                PX_WARN("tunnel %s: hostname %s refused: %s", t->name, m->hostnames[i], reasons[i]);
        }
        if (accepted == 0 && unavailable > 0 && !l->registered) {
            /* Nothing to serve until the database is back: a refusal the
             * connector retries (it may reach another edge meanwhile),
             * never one that tells it its names are taken. */
            free(res);
            es_link_kill(l, "store_unavailable",
                         "the edge cannot reach its database to claim this connector's "
                         "hostnames; try again later or through another edge",
                         0);
            return 0;
        }
        /* Held from now on, in the live view too (unless the shared
         * database is away: its outage is logged once, and the next beat
         * after it writes the names): no sweep (here or at
         * another edge sharing the data dir) may see a route just claimed
         * as unheld before this edge's next heartbeat lists it. */
        if (srv->live.db && es_sql_up(srv->live.db) && l->n_names > 0 &&
            es_live_hold(&srv->live, l->conn_id, l->tunnel_id, (const char *const *)l->names,
                         l->n_names, es_live_now_ms()) < 0)
            PX_WARN("tunnel %s: cannot record connection %s's hostnames in the live view (%s); "
                    "its next heartbeat will",
                    t->name, l->conn_id, es_sql_errmsg(srv->live.db));
        struct px_ctl_msg reply = {.type = PX_CTL_REGISTERED,
                                   .results = res,
                                   .n_results = m->n_hostnames,
                                   .agent = t->name,
                                   .conn_id = l->conn_id};
        int rc = rt_tunnel_send(&l->tun, &reply);
        free(res);
        if (rc == 0 && !l->origin_ca_sent)
            rc = send_origin_ca(l);
        if (rc == 0 && !l->keys_sent)
            rc = send_access_keys(l);
        if (!l->registered && accepted > 0) {
            l->registered = 1;
            es_registry_attach(t, l);
            rt_tunnel_ready(&l->tun); /* the set-up deadline gives way to PINGs */
            PX_INFO("tunnel %s: connector connection %s from %s registered %zu hostname(s)",
                    t->name, l->conn_id, l->conn.peer_ip, accepted);
        }
        return rc;
    }
    if (m->type == PX_CTL_UNREGISTER) {
        struct es_tunnel *t = es_registry_tunnel(&srv->reg, l->tunnel_id);
        for (size_t i = 0; t && i < m->n_hostnames; i++) {
            serves_remove(l, m->hostnames[i]);
            /* Another connection (a replica, or this connector's next one)
             * still serving it keeps it, here or at another edge. */
            if (tunnel_serves_name(t, m->hostnames[i]) || held_elsewhere(l, t, m->hostnames[i]))
                continue;
            if (es_registry_release(&srv->reg, &srv->store, t, m->hostnames[i]) == 0)
                PX_INFO("tunnel %s: hostname %s released", t->name, m->hostnames[i]);
        }
        return 0;
    }
    if (m->type == PX_CTL_DRAIN) {
        if (l->tunnel)
            es_registry_detach(l->tunnel, l);
        return 0;
    }
    if (m->type == PX_CTL_RENEW)
        return on_renew(l, m);
    PX_DEBUG("control message %d from connector ignored", (int)m->type);
    return 0;
}

/* ---- request streams ---- */

static ssize_t req_body_read(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t len,
                             uint32_t *flags, nghttp2_data_source *src, void *user)
{
    (void)h2;
    (void)id;
    (void)user;
    int eof;
    size_t n = es_req_read_body(src->ptr, buf, len, &eof);
    if (eof) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        return (ssize_t)n;
    }
    /* Resumed by link_req_more when the front buffers more. */
    return n ? (ssize_t)n : NGHTTP2_ERR_DEFERRED;
}

static void link_list_add(struct es_link *l, struct es_req *r)
{
    px_list_insert_head(&l->reqs, &r->link_node);
    l->n_reqs++;
}

static void link_list_del(struct es_link *l, struct es_req *r)
{
    px_list_remove(&r->link_node);
    l->n_reqs--;
    if (l->retiring && px_list_empty(&l->reqs))
        kick(l); /* on_writable closes once the last frames are out */
}

unsigned es_link_capacity(const struct es_link *l)
{
    if (!l->tun.h2)
        return 0;
    uint32_t n =
        nghttp2_session_get_remote_settings(l->tun.h2, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    return n < ES_LINK_MAX_STREAMS ? n : ES_LINK_MAX_STREAMS;
}

unsigned es_link_load(const struct es_link *l)
{
    return l->n_reqs;
}

int es_link_usable(const struct es_link *l)
{
    return l->registered && !l->dying && !l->retiring && !l->expiring && l->tun.h2 &&
           !l->conn.closing && !l->conn.closed &&
           nghttp2_session_check_request_allowed(l->tun.h2) && l->n_reqs < es_link_capacity(l);
}

void es_link_retire(struct es_link *l, const char *why)
{
    if (l->retiring || l->dying)
        return;
    l->retiring = 1;
    if (l->tunnel)
        es_registry_detach(l->tunnel, l);
    PX_INFO("connector connection %s retired (%s): %u stream(s) in flight finish, then it closes",
            l->conn_id, why, l->n_reqs);
    /* GOAWAY tells the connector too, so it dials a replacement at once; the
     * session's timer becomes the retirement deadline (on_tunnel_fail). */
    rt_tunnel_retire(&l->tun);
    kick(l);
}

/* ---- es_link_ops: what a request asks of its tunnel stream ---- */

static unsigned link_budget(const struct es_tunnel *t, const char *host, unsigned *n_links)
{
    return es_registry_budget(t, host, n_links);
}

static void *link_pick(struct es_tunnel *t, const char *host)
{
    return es_registry_pick(t, host);
}

static int32_t link_submit(void *link, struct es_req *r, const nghttp2_nv *nv, size_t n,
                           int has_body)
{
    struct es_link *l = link;
    nghttp2_data_provider dp = {.source.ptr = r, .read_callback = req_body_read};
    int32_t id = nghttp2_submit_request(l->tun.h2, NULL, nv, n, has_body ? &dp : NULL, r);
    if (id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE || id == NGHTTP2_ERR_START_STREAM_NOT_ALLOWED) {
        /* Stream ids ran out (2^30 requests) or the session is going away:
         * this link can carry nothing new, so the connector must replace it. */
        es_link_retire(l, nghttp2_strerror(id));
        return PX_ERR_CLOSED;
    }
    if (id < 0)
        return PX_ERR_NOMEM; /* nghttp2's only other failure */
    link_list_add(l, r);
    kick(l);
    return id;
}

static void link_req_more(void *link, int32_t sid)
{
    rt_tunnel_resume(&((struct es_link *)link)->tun, sid);
}

static void link_resp_consumed(void *link, int32_t sid, size_t n)
{
    rt_tunnel_consume(&((struct es_link *)link)->tun, sid, n);
}

static void link_cancel(void *link, int32_t sid)
{
    rt_tunnel_reset(&((struct es_link *)link)->tun, sid, NGHTTP2_CANCEL);
}

const struct es_link_ops es_link_req_ops = {
    .budget = link_budget,
    .pick = link_pick,
    .submit = link_submit,
    .req_more = link_req_more,
    .resp_consumed = link_resp_consumed,
    .cancel = link_cancel,
};

/* ---- the session's host (rt_tunnel_ops, client side) ---- */

static int stream_header(void *arg, void *r, const uint8_t *name, size_t nlen, const uint8_t *value,
                         size_t vlen)
{
    (void)arg;
    /* Trailers (after the final head) are dropped by es_req_resp_header. */
    return es_req_resp_header(r, name, nlen, value, vlen) < 0
               ? NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE
               : 0;
}

static int stream_frame(void *arg, void *r, const nghttp2_frame *f)
{
    (void)arg;
    if (f->hd.type == NGHTTP2_HEADERS)
        es_req_resp_headers_done(r);
    if (f->hd.flags & NGHTTP2_FLAG_END_STREAM)
        es_req_resp_end(r);
    return 0;
}

static int stream_data(void *arg, void *r, int32_t id, const uint8_t *data, size_t len)
{
    (void)arg;
    (void)id;
    es_req_resp_body(r, data, len);
    return 0;
}

static void stream_close(void *arg, void *r, int32_t id, uint32_t err)
{
    (void)id;
    struct es_link *l = arg;
    link_list_del(l, r);
    /* Bytes still waiting for the browser were counted against the
     * connection window; the stream is gone, so return that credit now or
     * every finished stream would shrink the connection window for good. */
    size_t pending = es_req_resp_pending(r);
    if (pending)
        nghttp2_session_consume_connection(l->tun.h2, pending);
    es_req_link_done(r, err);
}

static const struct rt_tunnel_stream_ops tunnel_stream_ops = {
    .header = stream_header,
    .frame = stream_frame,
    .data = stream_data,
    .close = stream_close,
};

/* Defect 2a: a GOAWAY either way ends the link. Streams above
 * last-stream-id are closed by nghttp2 (REFUSED_STREAM); the rest finish,
 * then the link closes and the connector dials a fresh one. Our own GOAWAY
 * (nghttp2 gave up on a connector's protocol error) retires it too: it must
 * not stay attached but unusable. */
static void on_going_away(void *arg, enum rt_tunnel_goaway how, uint32_t error_code)
{
    struct es_link *l = arg;
    char why[96];
    snprintf(why, sizeof(why), "the %s sent GOAWAY, %s",
             how == RT_TUNNEL_GOAWAY_RECEIVED ? "connector" : "edge",
             nghttp2_http2_strerror(error_code));
    es_link_retire(l, why);
}

static void on_tunnel_fail(void *arg, enum rt_tunnel_fail why)
{
    struct es_link *l = arg;
    switch (why) {
    case RT_TUNNEL_DEAD_PEER:
        if (l->dying)
            return;
        snprintf(l->conn.err_text, sizeof(l->conn.err_text), "connector stopped answering pings");
        rt_conn_abort(&l->conn, PX_ERR_IO);
        return;
    case RT_TUNNEL_SETUP_TIMEOUT:
        if (l->registered || l->dying || l->conn.closed)
            return;
        snprintf(l->conn.err_text, sizeof(l->conn.err_text),
                 "no registration within %u s of connecting", ES_LINK_SETUP_MS / 1000);
        PX_INFO("tunnel connection from %s: %s; closing", l->conn.peer_ip, l->conn.err_text);
        rt_conn_close(&l->conn, PX_ERR_IO);
        return;
    case RT_TUNNEL_GOAWAY_TIMEOUT:
        PX_WARN("connector connection %s: %u stream(s) still open %u s after retiring; closing",
                l->conn_id, l->n_reqs, ES_LINK_RETIRE_MS / 1000);
        rt_conn_close(&l->conn, PX_ERR_CLOSED);
        return;
    case RT_TUNNEL_CONTROL_CLOSED:
        if (!l->dying)
            es_link_kill(l, "control_closed", "control stream closed", 0);
        return;
    }
}

static void on_kick(void *arg)
{
    kick(arg);
}

/* The session's timer is its last handle: l goes now. */
static void on_tunnel_closed(void *arg)
{
    free(arg);
}

static const struct rt_tunnel_ops tunnel_ops = {
    .stream = &tunnel_stream_ops,
    .control = on_control_msg,
    .kick = on_kick,
    .going_away = on_going_away,
    .fail = on_tunnel_fail,
    .closed = on_tunnel_closed,
};

/* ---- connection ---- */

/* The tunnel this connection speaks for: its client certificate's CN (a
 * memory-mode link was given it at creation). */
static int read_identity(struct es_link *l)
{
    if (l->conn.memory)
        return 0;
    WOLFSSL_X509 *peer = wolfSSL_get_peer_certificate(l->conn.tls.ssl);
    if (!peer) {
        PX_WARN("tunnel connection from %s refused: no client certificate", l->conn.peer_ip);
        return -1;
    }
    const char *cn = wolfSSL_X509_get_subjectCN(peer);
    snprintf(l->tunnel_id, sizeof(l->tunnel_id), "%s", cn ? cn : "");
    /* What a renewal on this connection may continue (on_renew). */
    int len = 0;
    const unsigned char *der = wolfSSL_X509_get_der(peer, &len);
    struct px_cert_info ci;
    if (der && len > 0 && px_cert_info(der, (size_t)len, &ci) == 0) {
        struct es_cert_line line;
        es_certs_line(ci.subject, &line);
        l->cert_not_after = ci.not_after;
        l->enrolled_at = line.enrolled_at;
        l->rotation = line.rotation;
        px_cert_info_cleanup(&ci);
        const uint8_t *spki;
        size_t spki_len;
        if (px_cert_spki(der, (size_t)len, &spki, &spki_len) == 0 &&
            wc_Sha256Hash(spki, (word32)spki_len, l->key_hash) == 0)
            l->key_known = 1;
    }
    wolfSSL_X509_free(peer);
    return 0;
}

static int h2_start(struct es_link *l)
{
    if (read_identity(l) < 0 || rt_tunnel_start(&l->tun) < 0)
        return -1;
    struct es_tunnel *t = es_registry_tunnel(&l->srv->reg, l->tunnel_id);
    if (!t && es_server_sync(l->srv)) /* created moments ago by the CLI: catch up */
        t = es_registry_tunnel(&l->srv->reg, l->tunnel_id);
    if (!t) {
        PX_DEBUG("certificate names tunnel '%s', unknown here", l->tunnel_id);
        /* Valid certificate, but its tunnel is gone: say so, so it stops retrying. */
        es_link_kill(l, "tunnel_deleted", "this tunnel was deleted at the edge", 1);
        return 0;
    }
    PX_DEBUG("tunnel %s: connection %s from %s open", t->name, l->conn_id, l->conn.peer_ip);
    if (l->srv->drain_phase)
        rt_tunnel_goaway_notice(&l->tun); /* accepted just before the drain began */
    return 0;
}

static int on_open(struct rt_conn *c)
{
    struct es_link *l = c->owner;
    const char *alpn = rt_conn_alpn(c);
    if (strcmp(alpn, PX_ENROLL_ALPN) == 0) {
        l->mode = MODE_ENROLL;
        px_buf_init(&l->enroll_in);
        /* Defect 3: the enrolment request must come promptly. */
        rt_tunnel_disarm(&l->tun);
        rt_conn_set_deadline(c, ES_LINK_SETUP_MS);
        return 0;
    }
    if (strcmp(alpn, "h2") != 0) {
        PX_WARN("tunnel connection from %s refused: ALPN '%s' is not h2", c->peer_ip, alpn);
        return -1;
    }
    l->mode = MODE_H2;
    return h2_start(l) < 0 ? -1 : 0;
}

static int on_data(struct rt_conn *c, const uint8_t *data, size_t len)
{
    struct es_link *l = c->owner;
    if (l->mode == MODE_ENROLL)
        return enroll_on_data(l, data, len);
    int rc = rt_tunnel_recv(&l->tun, data, len);
    if (rc < 0) {
        PX_WARN("connection %s: HTTP/2 error: %s", l->conn_id, nghttp2_strerror(rc));
        return -1;
    }
    return 0;
}

static int on_writable(struct rt_conn *c)
{
    struct es_link *l = c->owner;
    if (l->mode != MODE_H2)
        return 0;
    int rc = rt_h2_flush(c, l->tun.h2);
    if (rc == 0 && l->expiring && !l->retiring && !nghttp2_session_want_write(l->tun.h2))
        es_link_retire(l, "certificate expired"); /* its cert_expired is out */
    if (rc == 0 && l->retiring && px_list_empty(&l->reqs) && !c->in_close &&
        !nghttp2_session_want_write(l->tun.h2))
        rt_conn_close(c, 0); /* retired and idle: the connector reconnects */
    return rc;
}

static void on_close(struct rt_conn *c, int err)
{
    struct es_link *l = c->owner;
    es_conncap_release(&l->srv->conns, &l->cap_key);
    if (l->tunnel)
        es_registry_detach(l->tunnel, l);
    if (l->mode == MODE_H2)
        PX_INFO("connector connection %s from %s closed (%s)", l->conn_id, c->peer_ip,
                c->err_text[0] ? c->err_text : px_strerror(err));
    else if (l->mode == MODE_NONE && c->err_text[0])
        PX_WARN("tunnel connection from %s refused: %s", c->peer_ip, c->err_text);
    struct px_list_node *first;
    while ((first = px_list_first(&l->reqs))) {
        struct es_req *r = px_container_of(first, struct es_req, link_node);
        link_list_del(l, r);
        es_req_link_done(r, NGHTTP2_CANCEL);
    }
    px_buf_cleanup(&l->enroll_in);
    serves_clear(l);
    px_list_remove(&l->all_node);
    l->srv->n_links--;
    rt_tunnel_close(&l->tun); /* frees l from the loop (on_tunnel_closed) */
}

static const struct rt_conn_ops link_ops = {
    .on_open = on_open, .on_data = on_data, .on_writable = on_writable, .on_close = on_close};

/* The next connection id: 16 hex digits of a bijective mix (splitmix64's
 * finaliser) of the server's random base plus its link count, so ids are
 * unique within the process (no repeat in 2^64 links), differ between
 * processes, and cost no DRBG draw and no printf per link (issue 13).
 * Returns 0, or < 0 when the one draw of the base failed (then the link is
 * refused, and the draw is tried again at the next one). */
static int conn_id_next(struct es_server *srv, char out[17])
{
    if (!srv->link_ids_ready) {
        uint8_t seed[8];
        if (px_pki_random(rt_loop_rng(rt_loop_of(srv->loop)), seed, sizeof(seed)) < 0)
            return -1;
        uint64_t base = 0;
        for (int i = 0; i < 8; i++)
            base = base << 8 | seed[i];
        srv->link_id_base = base;
        srv->link_ids_ready = 1;
    }
    uint64_t z = srv->link_id_base + srv->links_total;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    static const char hex[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--, z >>= 4)
        out[i] = hex[z & 15];
    out[16] = '\0';
    return 0;
}

static struct es_link *link_new(struct es_server *srv)
{
    static const struct rt_tunnel_cfg tunnel_cfg = {
        .server = 0,
        .setup_ms = ES_LINK_SETUP_MS, /* then PINGs, from rt_tunnel_ready (registered) */
        .goaway_ms = ES_LINK_RETIRE_MS,
        .peer_name = "the connector",
    };
    struct es_link *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->srv = srv;
    l->conn_index = -1;
    l->rotation = -1;
    px_list_init(&l->reqs);
    if (conn_id_next(srv, l->conn_id) < 0) {
        free(l);
        return NULL;
    }
    if (rt_conn_init(&l->conn, srv->loop, &link_ops, l) < 0) {
        free(l);
        return NULL;
    }
    /* Until it registers, the session's timer is the set-up deadline. */
    rt_tunnel_init(&l->tun, srv->loop, &tunnel_cfg, &tunnel_ops, l);
    px_list_insert_head(server_links(srv), &l->all_node);
    srv->n_links++;
    srv->links_total++;
    return l;
}

void es_link_accept(struct es_server *srv, uv_stream_t *listener)
{
    struct es_link *l = link_new(srv);
    if (!l)
        return;
    if (rt_conn_accept(&l->conn, listener, srv->tunnel_ctx, "h2," PX_ENROLL_ALPN,
                       srv->handshake_timeout_ms) < 0)
        return;
    int rc =
        es_conncap_admit(&srv->conns, l->conn.peer_ip, "tunnel", uv_now(srv->loop), &l->cap_key);
    if (rc == PX_ERR_DENIED)
        es_metrics_refusal(srv->metrics, ES_REFUSAL_CONNECTION_CAP, es_metrics_now_ms());
    if (rc < 0)
        rt_conn_abort(&l->conn, PX_ERR_DENIED);
}

struct es_link *es_link_new_memory(struct es_server *srv, const char *tunnel_id,
                                   const char *peer_ip)
{
    struct es_link *l = link_new(srv);
    if (!l)
        return NULL;
    snprintf(l->tunnel_id, sizeof(l->tunnel_id), "%s", tunnel_id);
    rt_conn_open_memory(&l->conn, "h2", peer_ip);
    return l;
}

void es_link_close_all(struct es_server *srv)
{
    struct px_list_node *pos, *tmp;
    px_list_for_each_safe (pos, tmp, server_links(srv)) {
        struct es_link *l = link_of(pos);
        rt_tunnel_shutdown(&l->tun);
        rt_conn_close(&l->conn, 0);
    }
}

unsigned es_link_goaway_notice_all(struct es_server *srv)
{
    unsigned n = 0;
    struct px_list_node *pos, *tmp;
    px_list_for_each_safe (pos, tmp, server_links(srv)) {
        struct es_link *l = link_of(pos);
        if (l->mode == MODE_H2 && !l->dying && rt_tunnel_goaway_notice(&l->tun) == 0 &&
            l->tun.notice_queued)
            n++;
    }
    return n;
}

unsigned es_link_streams(struct es_server *srv)
{
    unsigned n = 0;
    struct px_list_node *pos, *tmp;
    px_list_for_each_safe (pos, tmp, server_links(srv))
        n += link_of(pos)->n_reqs;
    return n;
}
