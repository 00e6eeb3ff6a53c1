/* cn_creds: the tunnel's certificates, and keeping them current.
 *
 * In <state-dir>/<tunnel_id>/ (files 0600, written atomically):
 *   key.pem, cert.pem      the tunnel connection's key and client certificate
 *                          (cn_identity.h loads and stores them)
 *   origin-pull.key/.pem   the key (generated here, never sent) and the client
 *                          certificate presented to https origins of rules
 *                          with originPull; the edge issues it under its
 *                          origin-pull CA, CN = tunnel id, URI SAN tunnel:<id>
 *   origin-ca.pem          the edge's origin CA (cn_trust.h trusts it)
 *
 * Both certificates are short-lived and renewed over the control stream of
 * any registered link (RENEW, answered by RENEWED or an error "renew_failed",
 * docs/protocol.md 6.5), always for the same key:
 *  - due when 2/3 of the lifetime has passed, the lifetime counted from when
 *    the certificate was obtained (for one read from disk: its file's mtime,
 *    else not_before): the edge backdates not_before by 60 s for clock skew,
 *    which would make a short-lived certificate due the moment it arrives;
 *  - after a failure (renew_failed, no answer in CN_CREDS_ANSWER_MS, the link
 *    gone) retried with backoff from 1 s up to min(60 s, lifetime/10);
 *    except when the edge's reason is token_replaced: then the host enrols
 *    again (cn_creds_renew_failed returns 1) and renewal waits for that;
 *  - the origin-pull certificate is asked for as soon as a rule wants it and
 *    a link is registered, then renewed the same way.
 * A renewed tunnel certificate is stored in cert.pem and the host is told
 * (tunnel_cert_changed) so that new connections use it; links already up
 * keep theirs.
 *
 * Log lines (info unless said):
 *   "renewed the tunnel certificate, valid until <RFC 3339 UTC>"
 *   "obtained the origin-pull certificate, valid until <RFC 3339 UTC>"
 *   "renewed the origin-pull certificate, valid until <RFC 3339 UTC>"
 *   "certificate renewal failed: <reason> (<kind> certificate; retrying in <N> ms)" (warn)
 *   "certificate renewal refused: <reason> (<kind> certificate; enrolling again with
 *    this connector's token)" (warn; the edge's reason token_replaced)
 *   "stored the edge's origin CA in <dir>/origin-ca.pem"
 *   "generated the origin-pull key in <dir>/origin-pull.key"
 *
 * The host (cn_supervisor) supplies how a RENEW is sent and calls in when a
 * link registers or goes, and with what the edge sends. Single-threaded. */
#ifndef CN_CREDS_H
#define CN_CREDS_H

#include "cn_backoff.h"
#include "cn_trust.h"

#include <uv.h>

#include <stddef.h>
#include <stdint.h>

struct cn_identity;

/* How long the edge has to answer a RENEW before it counts as failed. */
#define CN_CREDS_ANSWER_MS 10000
/* Timers never wait longer than this before looking at the wall clock
 * again: a monotonic timer does not run while the machine sleeps. */
#define CN_CREDS_MAX_WAIT_MS (10 * 60 * 1000)

enum cn_cert_kind { CN_CERT_TUNNEL, CN_CERT_ORIGIN_PULL, CN_CERT_KINDS };

struct cn_creds;

/* One certificate and its renewal state. */
struct cn_cert_slot {
    struct cn_creds *creds;
    enum cn_cert_kind kind;
    char *cert_pem;       /* owned; NULL when there is none (yet) */
    long long not_before; /* of cert_pem */
    long long not_after;
    long long obtained; /* when it was obtained (file mtime when read from disk), or 0 */
    int wanted;         /* tunnel: always; origin-pull: a rule has originPull */
    int in_flight;      /* a RENEW went out and is unanswered */
    int waiting_link;   /* due, but no registered link to send on */
    int retrying;       /* the last attempt failed: the timer is a backoff */
    int token_replaced; /* refused for good (its line's token was replaced): no
                           renewal until cn_creds_enrolled */
    void *sent_on;      /* the link the RENEW went out on (compared, never used) */
    unsigned seq;       /* order of sending, to attribute a renew_failed */
    struct cn_backoff backoff;
    uv_timer_t timer;
};

struct cn_creds_ops {
    /* Sends RENEW {kind, pub_pem} on a registered link and returns that
     * link, or NULL when none can take it now (cn_creds_link_up retries). */
    void *(*send_renew)(void *arg, const char *kind, const char *pub_pem);
    /* The tunnel certificate was replaced (already in cert.pem and in the
     * identity): new connections should present it. May be NULL. */
    void (*tunnel_cert_changed)(void *arg);
    void *arg;
};

struct cn_creds {
    uv_loop_t *loop;
    struct cn_identity *id; /* the tunnel key and certificate (not owned) */
    char *tunnel_pub;       /* id's public key, PEM (owned) */
    char *pull_key;         /* origin-pull.key, PEM (owned), NULL until wanted */
    char *pull_pub;         /* its public key */
    struct cn_trust trust;  /* the origin CA and the blobs for curl */
    struct cn_creds_ops ops;
    struct cn_cert_slot slots[CN_CERT_KINDS];
    unsigned next_seq;
    int timers_open; /* the slots' timers are initialised and not closing */
    int closing;     /* timers whose close has not completed */
    int started;     /* cn_creds_start was called */
};

/* ---- pure: the schedule ---- */

/* When a certificate valid from not_before to not_after, obtained at
 * obtained (seconds since the epoch; 0 or earlier than not_before: count
 * from not_before), is due: 2/3 into its lifetime. */
long long cn_creds_renew_at(long long not_before, long long not_after, long long obtained);
/* The largest retry delay for such a certificate: min(60 s, lifetime/10),
 * at least 1 s (milliseconds). */
unsigned cn_creds_retry_cap_ms(long long not_before, long long not_after, long long obtained);
/* The next retry delay from b (initialised with base 1000 and the cap
 * above): between half the current ceiling and the ceiling, at least 1 s,
 * using rnd; counts the attempt. */
unsigned cn_creds_retry_delay_ms(struct cn_backoff *b, uint32_t rnd);

/* ---- the module ---- */

/* Creates the credentials of id (loaded by cn_identity_load: id->dir exists
 * and is private; id must outlive c). Reads origin-ca.pem, origin-pull.key
 * and origin-pull.pem when present: an origin CA or origin-pull certificate
 * that cannot be used is logged and ignored (the edge sends new ones), an
 * origin-pull key that cannot be read is an error. Returns 0 and *out, or
 * < 0 with why filled. Nothing is scheduled before cn_creds_start. */
int cn_creds_new(uv_loop_t *loop, struct cn_identity *id, const struct cn_creds_ops *ops,
                 struct cn_creds **out, char *why, size_t whylen);
/* Stops everything and frees what c owns; c itself is freed once its
 * timers have closed, from the loop. NULL is fine. */
void cn_creds_free(struct cn_creds *c);

/* Starts the renewal timers (after the tunnel certificate is known). */
void cn_creds_start(struct cn_creds *c);
/* Whether the identity's tunnel certificate is unusable now: absent, not
 * parseable, or past not_after (*not_after, may be NULL, gets it, 0 when
 * unknown). */
int cn_creds_tunnel_expired(const struct cn_creds *c, long long *not_after);
/* A tunnel certificate from enrolment (already stored by cn_identity):
 * schedules its renewal. origin_ca (may be NULL) is the enrolment answer's. */
void cn_creds_enrolled(struct cn_creds *c, const char *origin_ca);

/* Whether a rule wants the origin-pull certificate. Wanting it the first
 * time generates origin-pull.key (an error is logged; requests then get
 * 502). Returns 0 or < 0. */
int cn_creds_want_origin_pull(struct cn_creds *c, int want);
/* The origin-pull certificate and its key for a request. CN_PULL_READY
 * with *cert and *key (owned by c, valid until the next call into c: copy
 * them, e.g. CURL_BLOB_COPY); CN_PULL_NONE before the edge issued one;
 * CN_PULL_EXPIRED when the last one expired before it could be renewed. */
enum cn_pull_state { CN_PULL_READY, CN_PULL_NONE, CN_PULL_EXPIRED };
enum cn_pull_state cn_creds_origin_pull(const struct cn_creds *c, const char **cert,
                                        const char **key);

/* ---- what the links report ---- */

/* A link registered: renewals waiting for one are sent now. */
void cn_creds_link_up(struct cn_creds *c);
/* A link is gone: a RENEW sent on it and unanswered counts as failed. */
void cn_creds_link_gone(struct cn_creds *c, void *link);
/* ORIGIN_CA: stores and trusts pem. Returns 0 or < 0 (logged; the previous
 * origin CA stays). */
int cn_creds_set_origin_ca(struct cn_creds *c, const char *pem);
/* RENEWED on link: the certificate for kind. A certificate that does not
 * parse, has expired, or is not for our key is refused like a failed
 * renewal (logged, retried). Returns 0 or < 0. */
int cn_creds_renewed(struct cn_creds *c, void *link, const char *kind, const char *pem);
/* An error "renew_failed" on link: the oldest RENEW unanswered on that link
 * failed. reason is the error's machine-readable reason, message its text
 * (either may be NULL). Returns 1 when reason is PX_CTL_RENEW_TOKEN_REPLACED
 * (the certificate's line began with a token since replaced): that renewal
 * is not retried, and the host should enrol with its token (its new one, if
 * it was given it); cn_creds_enrolled resumes the renewals. Else 0: retried
 * with backoff. */
int cn_creds_renew_failed(struct cn_creds *c, void *link, const char *reason, const char *message);

#endif
