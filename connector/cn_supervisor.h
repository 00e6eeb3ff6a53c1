/* cn_supervisor: keeps N tunnel links up: enrolment, reconnects with
 * full-jitter backoff, permanent-failure exit, graceful stop. */
#ifndef CN_SUPERVISOR_H
#define CN_SUPERVISOR_H

#include "cn_backoff.h"
#include "cn_config.h"
#include "cn_creds.h"
#include "cn_edges.h"
#include "cn_identity.h"
#include "cn_link.h"
#include "px_list.h"

#include <uv.h>

#define CN_MAX_LINKS 16
/* Reconnecting after a loss (or a failed attempt) waits a full-jitter
 * backoff whose ceilings are CN_RECONNECT_FIRST_MS, then doubling up to
 * CN_RECONNECT_CAP_MS: 10, 20, 30 s. The first ceiling is wide on purpose:
 * when an edge restarts, every connector on it loses its links at once, and
 * a 1 s first ceiling would bring them all back within the same second or
 * two (a simulation of 200 links puts 30-80 % of the attempts into one
 * second for outages under 5 s; with 10 s it stays under about 20 % whatever
 * the outage). A connector's first link is back after CN_RECONNECT_FIRST_MS
 * / (links + 1) on average (2 s with 4), and every link within
 * CN_RECONNECT_CAP_MS of the edge's return. */
#define CN_RECONNECT_FIRST_MS 10000
#define CN_RECONNECT_CAP_MS 30000
/* A slot that moves to another edge (its own failed, or sent GOAWAY while
 * draining) dials there within this: that edge is up, no need to wait. */
#define CN_MOVE_JITTER_MS 1000
/* Hex digits of a connector process's id. */
#define CN_CONNECTOR_ID_LEN 16

/* One connection slot (REGISTER's conn_index): a link kept up to its home
 * edge, or to another while its home fails or goes away (cn_edges). */
struct cn_slot {
    struct cn_supervisor *sup;
    unsigned index;
    struct cn_link *link; /* NULL while waiting to reconnect */
    /* Rebalance, make before break: a second link to the home edge while
     * link is up elsewhere; it replaces link once registered. NULL mostly. */
    struct cn_link *probe;
    struct cn_edge_slot place; /* which edge it dials (cn_edges) */
    struct cn_backoff backoff;
    /* Failed tries to go home: their own backoff, so that a home edge that
     * stays down does not slow the slot's reconnects elsewhere. */
    struct cn_backoff home_backoff;
    uv_timer_t retry;
    /* When to try the home edge again (initialised with retry, see
     * cn_supervisor_slot_init; a harness that never leaves home needs none). */
    uv_timer_t rebalance;
    int rebalance_init;
    /* Moves to the next edge since the slot last registered: the first
     * round over the edges goes on at once, later ones wait the backoff. */
    unsigned round;
    unsigned attempts;
    /* The probe replaces link, which presents a certificate the edge no
     * longer renews (its token was replaced), rather than bringing the slot
     * home; it dials the home edge all the same. */
    int replacing;
};

struct cn_metrics;
struct cn_ops;

struct cn_supervisor {
    uv_loop_t *loop;
    struct cn_config *cfg;
    struct cn_identity id;
    struct cn_creds *creds; /* the certificates' renewal; NULL in harnesses without one */
    WOLFSSL_CTX *tls_ctx;
    struct cn_origin *origin; /* the loop's libcurl context (NULL in harnesses without origins) */
    struct cn_h1 *h1;         /* the loop's lean HTTP/1.1 origin client (NULL: curl only) */
    struct cn_slot slots[CN_MAX_LINKS];
    unsigned n_slots;
    struct cn_edges edges; /* over cfg->edges; zeroed: one edge */
    /* How a link is started: NULL is cn_link_start; a test dials memory
     * links (same contract: 0 and host->ops->closed later, or < 0). */
    int (*dial)(struct cn_supervisor *s, struct cn_link *l, const struct cn_link_host *host,
                unsigned index, const char *addr);
    /* REGISTER's connector: random, per process, the same on every link. */
    char connector_id[CN_CONNECTOR_ID_LEN + 1];
    int stopping;
    int exit_code;
    int enrolling;
    /* The enrolment under way (or its retry) replaces a certificate the edge
     * refuses to renew because its token was replaced: the links stay up
     * meanwhile, and a refusal is not fatal while that certificate lasts. */
    int reenrolling;
    unsigned enroll_rr; /* which of the token's edges the next enrolment tries */
    WOLFSSL_CTX *enroll_ctx;
    struct cn_backoff enroll_backoff;
    uv_timer_t enroll_retry;
    uv_signal_t sigint, sigterm, sighup;
    uv_timer_t grace;
    int draining;
    /* Links replaced after GOAWAY, finishing their streams (through each
     * link's host_node). Set up on first use: a zeroed supervisor works. */
    struct px_list retired;
    /* The metrics every link and stream reports to (NULL: none kept), and
     * the operator listener serving them (NULL: --metrics off, or a
     * harness). */
    struct cn_metrics *metrics;
    struct cn_ops *ops;
};

/* Runs the connector until a signal or a permanent failure. Returns the
 * process exit code (0 on signal, 1 on permanent failure). */
int cn_supervisor_run(struct cn_config *cfg);

/* The host interface the supervisor's links get (also for tests that run a
 * link on a supervisor of their own). */
void cn_supervisor_link_host(struct cn_supervisor *s, struct cn_link_host *out);
/* The rule for host/path in the current rule set; *ing receives a reference
 * to that set (the caller unrefs it when the request ends). */
const struct cn_rule *cn_supervisor_route(struct cn_supervisor *s, const char *host,
                                          const char *path, struct cn_ingress **ing);
/* Sets s->creds up for s->id (loaded) with the supervisor's ops: RENEW goes
 * out on a usable link, a renewed tunnel certificate rebuilds the TLS
 * context for new links. Returns 0 or < 0 with why filled. (cn_supervisor_run
 * calls it; in-memory tests call it on their own supervisor.) */
int cn_supervisor_creds_init(struct cn_supervisor *s, char *why, size_t whylen);
/* Frees s->creds (cn_creds_cleanup: run the loop afterwards for its timers). */
void cn_supervisor_creds_cleanup(struct cn_supervisor *s);
/* The certificates (origin CA, origin-pull), or NULL. */
struct cn_creds *cn_supervisor_creds(struct cn_supervisor *s);
/* Sets up slot index of s (its backoff, timers, home edge); s->loop, s->cfg
 * and s->edges are set. Close its timers with cn_supervisor_slot_cleanup. */
void cn_supervisor_slot_init(struct cn_supervisor *s, unsigned index);
void cn_supervisor_slot_cleanup(struct cn_supervisor *s, unsigned index);
/* Starts slot index's link now (for tests; the supervisor does it itself). */
void cn_supervisor_slot_start(struct cn_supervisor *s, unsigned index);
/* Slots whose link is registered with the edge now (readiness). */
unsigned cn_supervisor_links_up(const struct cn_supervisor *s);
/* A permanent failure: log msg and exit with status 1 after closing links. */
void cn_supervisor_fatal(struct cn_supervisor *s, const char *msg);

#endif
