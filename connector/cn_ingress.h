/* cn_ingress: the connector's routing rules (cloudflared's vocabulary):
 * which local service answers a request, chosen by hostname and path, and the
 * settings used to reach it. A rule set is immutable once built and shared by
 * reference: requests in flight keep the set they started with across a
 * SIGHUP reload. */
#ifndef CN_INGRESS_H
#define CN_INGRESS_H

#include <regex.h>
#include <stddef.h>

enum cn_service_kind { CN_SVC_HTTP = 1, CN_SVC_UNIX, CN_SVC_HELLO, CN_SVC_STATUS, CN_SVC_TCP };

/* originRequest settings. `set` marks fields given explicitly, so a rule's
 * own settings override the top-level defaults field by field. */
enum {
    CN_OPT_NO_TLS_VERIFY = 1 << 0,
    CN_OPT_SERVER_NAME = 1 << 1,
    CN_OPT_CA_POOL = 1 << 2,
    CN_OPT_CERT = 1 << 3,
    CN_OPT_KEY = 1 << 4,
    CN_OPT_HOST_HEADER = 1 << 5,
    CN_OPT_CONNECT_TIMEOUT = 1 << 6,
    CN_OPT_TLS_TIMEOUT = 1 << 7,
    CN_OPT_KEEPALIVE_CONNS = 1 << 8,
    CN_OPT_KEEPALIVE_TIMEOUT = 1 << 9,
    CN_OPT_NO_CHUNKED = 1 << 10,
    CN_OPT_HTTP2 = 1 << 11,
    CN_OPT_ACCESS_REQUIRED = 1 << 12, /* access.required */
    CN_OPT_ACCESS_AUDIENCE = 1 << 13, /* access.audience */
    CN_OPT_ORIGIN_PULL = 1 << 14,
};

/* The longest originRequest.access.audience accepted. */
#define CN_ACCESS_MAX_AUDIENCE 512

struct cn_origin_opts {
    unsigned set;
    int no_tls_verify;
    char *origin_server_name;
    char *ca_pool;                  /* file path */
    char *origin_cert, *origin_key; /* file paths */
    char *http_host_header;
    unsigned connect_timeout_s;   /* default 30 */
    unsigned tls_timeout_s;       /* default 10 */
    unsigned keepalive_conns;     /* default 100 */
    unsigned keepalive_timeout_s; /* default 90 */
    int disable_chunked;
    int http2_origin;
    /* originRequest.access: when access_required, a request is proxied only
     * with a valid identity assertion from the edge (cn_assert.h), for
     * access_audience, or for the request's host when that is NULL. */
    int access_required;
    char *access_audience;
    /* originPull: present the tunnel's origin-pull client certificate
     * (issued by the edge, see cn_creds.h) to the origin. Only meaningful
     * for TLS origins (https://, unix+tls:); set on a rule of another kind
     * it is an error, inherited it is ignored there. */
    int origin_pull;
    /* Derived at load: the system CA bundle plus caPool, for CURLOPT_CAINFO_BLOB.
     * The edge's origin CA is added per request (cn_trust.h): it arrives
     * later and changes at run time, while a rule set never changes. */
    char *ca_blob;
    size_t ca_blob_len;
};

struct cn_rule {
    size_t index;       /* position in the file, 0-based */
    int broken;         /* failed validation: never a catch-all */
    char hostname[256]; /* lower-case pattern; "" matches any host */
    char *path;         /* POSIX extended regex on the URL path, or NULL */
    regex_t re;
    enum cn_service_kind kind;
    char *service;   /* as written, for messages */
    int tls;         /* https:// or unix+tls: */
    char host[256];  /* http(s): origin host; unix: "localhost" */
    int port;        /* http(s): origin port */
    char *unix_path; /* unix: socket path */
    int status;      /* http_status:NNN */
    struct cn_origin_opts o;
};

struct cn_ingress {
    int refs;
    struct cn_rule *rules;
    size_t n;
    char **hostnames; /* distinct hostnames to register with the edge */
    size_t n_hostnames;
};

/* Every problem found while loading, one line each ("rule #2: ..."). */
struct cn_ingress_errors {
    char **lines;
    size_t n;
    int nomem; /* an allocation failed: the rules are refused, with or without a line */
};
void cn_ingress_errors_cleanup(struct cn_ingress_errors *e);

/* Loads and validates a JSON config file. Returns 0 and *out (refs = 1), or
 * PX_ERR_INVAL with every problem in errs (the caller cleans errs up either
 * way), or PX_ERR_NOMEM: rules are never returned with a setting, path or
 * hostname silently missing. */
int cn_ingress_load(const char *path, struct cn_ingress **out, struct cn_ingress_errors *errs);
/* The same from JSON text (for tests and the loader). */
int cn_ingress_parse(const char *json, size_t len, struct cn_ingress **out,
                     struct cn_ingress_errors *errs);
/* Builds rules from --hostname/--url pairs (n_urls is n or 1) with defaults
 * from flags, plus a final catch-all answering 404. */
int cn_ingress_from_flags(const char *const *hostnames, const char *const *urls, size_t n,
                          size_t n_urls, const struct cn_origin_opts *defaults,
                          struct cn_ingress **out, struct cn_ingress_errors *errs);

/* The first rule matching host (normalized, no port) and path (the request
 * target; the query is ignored), matched whole. Never NULL for a validated
 * set, unless out of memory. */
const struct cn_rule *cn_ingress_match(const struct cn_ingress *ing, const char *host,
                                       const char *path);

void cn_ingress_ref(struct cn_ingress *ing);
void cn_ingress_unref(struct cn_ingress *ing);
/* Frees option strings owned by o (for flag-built defaults). */
void cn_origin_opts_cleanup(struct cn_origin_opts *o);

#endif
