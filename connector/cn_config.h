/* cn_config: the connector's settings from argv and environment. */
#ifndef CN_CONFIG_H
#define CN_CONFIG_H

#include "px_log.h"
#include "cn_ingress.h"
#include "px_token.h"

#include <stddef.h>

#define CN_MAX_ROUTES 64
/* An edge address, "host:port", with its terminating NUL. */
#define CN_EDGE_ADDR_MAX 300
/* --ha-connections when not given. */
#define CN_DEFAULT_HA_CONNECTIONS 4
/* --metrics when not given: loopback, a free port (printed at start). */
#define CN_DEFAULT_METRICS_ADDR "127.0.0.1:0"
/* A --metrics address, "HOST:PORT" or "[IPv6]:PORT", with its NUL. */
#define CN_METRICS_ADDR_MAX 64

struct cn_ingress;

struct cn_config {
    struct px_token token;
    /* The edges to keep connections to: every --edge given (in order), else
     * the token's edges. Slot i's home is edges[i % n_edges]. */
    char edges[PX_TOKEN_MAX_EDGES][CN_EDGE_ADDR_MAX];
    size_t n_edges;
    char state_dir[512];
    char config_path[512];      /* --config; "" when routes come from flags */
    struct cn_ingress *ingress; /* current rules (owned reference) */
    enum px_log_level loglevel;
    unsigned ha_connections;
    unsigned response_timeout_ms;
    unsigned grace_period_ms; /* SIGTERM: time for requests in flight to finish */
    /* The operator listener (/metrics, /ready, /healthcheck): --metrics
     * ADDR, "" for --metrics off. */
    char metrics_addr[CN_METRICS_ADDR_MAX];
    enum px_log_format log_format; /* --log-format */
    int access_log;                /* --access-log: one line per request */
};

/* Parses `connector run` arguments (argv[0] is "run"). Returns 0; 1 when
 * --help was asked for; or 2 after printing one clear error line to stderr
 * (usage error or bad token). */
int cn_config_parse_run(int argc, char **argv, struct cn_config *cfg);
void cn_config_cleanup(struct cn_config *cfg);
/* Prints every error of ingress loading to stderr, one per line. */
void cn_config_print_errors(const struct cn_ingress_errors *errs);

#endif
