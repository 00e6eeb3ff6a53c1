/* px_control: messages on the control stream, one JSON object per line (NDJSON).
 * See docs/protocol.md for the message catalogue. */
#ifndef PX_CONTROL_H
#define PX_CONTROL_H

#include "px_buf.h"

#include <stddef.h>

#define PX_CTL_MAX_LINE 65536
#define PX_CTL_MAX_HOSTNAMES 256
/* ACCESS_KEYS: the longest issuer (bytes). */
#define PX_CTL_MAX_ISSUER 512
/* ORIGIN_CA, RENEW, RENEWED: the longest PEM text (bytes). */
#define PX_CTL_MAX_PEM 16384
/* RENEW, RENEWED: which certificate. */
#define PX_CTL_KIND_TUNNEL "tunnel"
#define PX_CTL_KIND_ORIGIN_PULL "origin_pull"
/* ERROR "renew_failed": why, in its optional "reason" (the message says it
 * to people). A receiver acts on the ones it knows and treats any other, or
 * none (older edges), as a failure to retry. */
#define PX_CTL_RENEW_TOO_FREQUENT "too_frequent"
#define PX_CTL_RENEW_TUNNEL_GONE "tunnel_gone"
#define PX_CTL_RENEW_CERT_EXPIRED "cert_expired"
#define PX_CTL_RENEW_TOKEN_REPLACED "token_replaced" /* enrol with the current token */
#define PX_CTL_RENEW_BAD_KEY "bad_key"
#define PX_CTL_RENEW_INTERNAL "internal"

enum px_ctl_type {
    PX_CTL_REGISTER = 1, /* connector -> edge: hostnames to route to this tunnel */
    PX_CTL_REGISTERED,   /* edge -> connector: per-hostname results */
    PX_CTL_UNREGISTER,   /* connector -> edge: hostnames to release */
    PX_CTL_ERROR,        /* either way: a fatal or informational error */
    PX_CTL_DRAIN,        /* either way: stop sending new streams on this connection */
    PX_CTL_ACCESS_KEYS,  /* edge -> connector: the keys that verify its identity assertions */
    PX_CTL_ORIGIN_CA,    /* edge -> connector: the CA that signs edge-issued origin certificates */
    PX_CTL_RENEW,        /* connector -> edge: certify this public key again (kind, pem) */
    PX_CTL_RENEWED,      /* edge -> connector: the new certificate (kind, pem) */
};

#define PX_CTL_MAX_CONNECTOR_ID 64
#define PX_CTL_MAX_EDGE_ADDR 300
#define PX_CTL_MAX_AGENT 64

struct px_ctl_result {
    char *hostname;
    int accepted;
    char *reason; /* NULL when accepted */
};

struct px_ctl_msg {
    enum px_ctl_type type;
    char **hostnames; /* REGISTER, UNREGISTER */
    size_t n_hostnames;
    struct px_ctl_result *results; /* REGISTERED */
    size_t n_results;
    char *code;    /* ERROR: machine-readable code, e.g. "tunnel_deleted" */
    char *message; /* ERROR: human-readable */
    int permanent; /* ERROR: the receiver must not retry */
    char *reason;  /* ERROR: optional, machine-readable detail of code (PX_CTL_RENEW_*) */
    char *agent;   /* REGISTER: software version, 1..PX_CTL_MAX_AGENT printable
                      ASCII (edges store and show it); REGISTERED: tunnel name */
    char *conn_id; /* REGISTERED: the edge's id for this connection */
    /* REGISTER, all optional (an older connector sends none):
     *  connector: this connector process's id, the same on all its links (a
     *    replica is another connector), 1..PX_CTL_MAX_CONNECTOR_ID of
     *    [0-9a-z-];
     *  conn_index: the connection's slot at the connector, 0..63, or -1 if not sent;
     *  edge: the edge address the connector dialed ("host:port",
     *    1..PX_CTL_MAX_EDGE_ADDR bytes, printable ASCII). */
    char *connector;
    int conn_index;
    char *edge;
    char *issuer; /* ACCESS_KEYS: the "iss" of the edge's assertions (1..PX_CTL_MAX_ISSUER bytes) */
    char *jwks;   /* ACCESS_KEYS: the JWK Set (px_jwt.h) as compact JSON text; a JSON
                     object with a "keys" array on the wire. The codec checks only that
                     shape; the keys themselves are px_jwks_from_json's to judge. */
    char *kind;   /* RENEW, RENEWED: PX_CTL_KIND_TUNNEL or PX_CTL_KIND_ORIGIN_PULL */
    char *pem;    /* ORIGIN_CA, RENEWED: a "-----BEGIN CERTIFICATE-----" PEM;
                     RENEW: a "-----BEGIN PUBLIC KEY-----" PEM. 1..PX_CTL_MAX_PEM bytes.
                     The codec checks only the marker; parsing is the receiver's. */
};

/* Parses one line (without the newline). Returns 0 and fills *m (release with
 * px_ctl_msg_cleanup), or PX_ERR_INVAL / PX_ERR_TOO_LARGE / PX_ERR_NOMEM. */
int px_ctl_decode(const char *line, size_t len, struct px_ctl_msg *m);
/* Encodes m as one line terminated by '\n'. Returns malloc'd text, or NULL
 * on no memory or for an ACCESS_KEYS, ORIGIN_CA, RENEW or RENEWED message the
 * decoder would refuse (no issuer, jwks not an object with a "keys" array; an
 * unknown kind, a missing, empty, oversized or unmarked pem). The line may exceed
 * PX_CTL_MAX_LINE, which the receiver refuses: a sender checks. */
char *px_ctl_encode(const struct px_ctl_msg *m);
void px_ctl_msg_cleanup(struct px_ctl_msg *m);
/* Returns 1 for PX_CTL_KIND_TUNNEL or PX_CTL_KIND_ORIGIN_PULL, else 0 (NULL too). */
int px_ctl_kind_valid(const char *kind);

/* Splits a byte stream into lines and decodes each. */
struct px_ctl_framer {
    struct px_buf buf;
};
typedef int (*px_ctl_msg_cb)(const struct px_ctl_msg *m, void *arg);
void px_ctl_framer_init(struct px_ctl_framer *f);
void px_ctl_framer_cleanup(struct px_ctl_framer *f);
/* Feeds bytes; calls cb once per complete message. Returns 0, the first
 * negative value cb returned, or a decode error (the stream is then unusable). */
int px_ctl_framer_feed(struct px_ctl_framer *f, const void *data, size_t len, px_ctl_msg_cb cb,
                       void *arg);

#endif
