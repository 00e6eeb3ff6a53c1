/* cn_config: the connector's settings from argv and environment. */
#ifndef CN_CONFIG_H
#define CN_CONFIG_H

#include "px_log.h"
#include "px_token.h"

#include <stddef.h>

#define CN_MAX_ROUTES 64

enum cn_service_kind { CN_SVC_HTTP = 1, CN_SVC_HELLO, CN_SVC_STATUS };

struct cn_route {
    char hostname[256]; /* pattern; "" = any */
    enum cn_service_kind kind;
    char base_url[512]; /* http(s)://host:port without trailing slash */
    int https;
    int status; /* CN_SVC_STATUS */
};

struct cn_config {
    struct px_token token;
    char edge_override[300];
    char state_dir[512];
    struct cn_route routes[CN_MAX_ROUTES];
    size_t n_routes;
    enum px_log_level loglevel;
    unsigned ha_connections;
    unsigned connect_timeout_ms;
    unsigned response_timeout_ms;
};

/* Parses `connector run` arguments (argv[0] is "run"). Returns 0; 1 when
 * --help was asked for; or 2 after printing one clear error line to stderr
 * (usage error or bad token). */
int cn_config_parse_run(int argc, char **argv, struct cn_config *cfg);
void cn_config_cleanup(struct cn_config *cfg);
/* Parses a service URL into r. Returns 0 or PX_ERR_INVAL with why filled. */
int cn_parse_service(const char *url, struct cn_route *r, char *why, size_t whylen);

#endif
