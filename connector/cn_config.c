#include "cn_config.h"
#include "px_err.h"
#include "px_hostname.h"
#include "rt_cli.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "connector: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return 2;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(PX_TOKEN_MAX_LEN + 2);
    size_t n = buf ? fread(buf, 1, PX_TOKEN_MAX_LEN + 1, f) : 0;
    fclose(f);
    if (!buf)
        return NULL;
    buf[n] = '\0';
    return buf;
}

static void default_state_dir(char *out, size_t len)
{
    const char *sd = getenv("STATE_DIRECTORY");
    const char *home = getenv("HOME");
    if (sd && *sd)
        snprintf(out, len, "%s", sd);
    else if (geteuid() == 0)
        snprintf(out, len, "/var/lib/connector");
    else if (home && *home)
        snprintf(out, len, "%s/.local/state/connector", home);
    else
        snprintf(out, len, "./connector-state");
}

/* 0 when addr is "host:port" (a port 1-65535) and fits CN_EDGE_ADDR_MAX. */
static int valid_edge(const char *addr)
{
    char host[256];
    int port;
    if (strlen(addr) >= CN_EDGE_ADDR_MAX || px_split_hostport(addr, host, sizeof(host), &port) < 0)
        return -1;
    return port >= 1 && port <= 65535 ? 0 : -1;
}

/* The --metrics address as the listener binds it: "IPv4:PORT" or
 * "[IPv6]:PORT" (PORT 0-65535, 0: a free one), or "localhost:PORT", which
 * becomes "127.0.0.1:PORT" (the listener binds addresses, it resolves no
 * names). Writes it to out (CN_METRICS_ADDR_MAX bytes) and returns 0, or
 * returns 2 after printing why. */
static int metrics_addr(const char *arg, char *out)
{
    unsigned long port;
    const char *colon = strrchr(arg, ':');
    if (strlen(arg) >= CN_METRICS_ADDR_MAX || !colon || rt_cli_uint(colon + 1, 0, 65535, &port) < 0)
        return usage_error("--metrics must be ADDRESS:PORT (PORT 0-65535, 0 for a free one) or "
                           "off (got %s)",
                           arg);
    if (colon == arg)
        return usage_error("--metrics %s has no address: give one, e.g. 127.0.0.1%s (this "
                           "machine only) or 0.0.0.0%s (every interface)",
                           arg, colon, colon);
    /* The host part, without brackets. */
    char host[CN_METRICS_ADDR_MAX];
    const char *hs = arg, *he = colon;
    int bracketed = arg[0] == '[';
    if (bracketed) {
        hs = arg + 1;
        he = colon - 1;
        if (he < hs || *he != ']')
            return usage_error("--metrics must be [IPv6]:PORT with the address in brackets (got "
                               "%s)",
                               arg);
    }
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = '\0';
    unsigned char a[sizeof(struct in6_addr)];
    if (bracketed ? inet_pton(AF_INET6, host, a) == 1 : inet_pton(AF_INET, host, a) == 1) {
        memcpy(out, arg, strlen(arg) + 1);
        return 0;
    }
    if (!bracketed && strcasecmp(host, "localhost") == 0) {
        snprintf(out, CN_METRICS_ADDR_MAX, "127.0.0.1:%lu", port);
        return 0;
    }
    if (!bracketed && strchr(host, ':'))
        return usage_error("--metrics %s: put an IPv6 address in brackets, e.g. [::1]:9100", arg);
    return usage_error("--metrics needs an IP address (or localhost), not a name: the listener "
                       "binds an address and resolves nothing (got %s; e.g. 127.0.0.1:9100, "
                       "[::1]:9100 or 0.0.0.0:9100)",
                       arg);
}

/* Appends addr to cfg's edges (callers keep to PX_TOKEN_MAX_EDGES). */
static int copy_edge(struct cn_config *cfg, const char *addr)
{
    if (strlen(addr) >= CN_EDGE_ADDR_MAX)
        return -1;
    memcpy(cfg->edges[cfg->n_edges++], addr, strlen(addr) + 1);
    return 0;
}

/* The originRequest settings given as flags, for every --url: each kept
 * argument becomes an owned copy in o, marked set. Returns 0 or -1 (no
 * memory). */
static int origin_flags(struct cn_origin_opts *o, const char *server_name, const char *ca_pool,
                        const char *cert, const char *key, const char *host_header)
{
    const struct {
        const char *arg;
        char **dst;
        unsigned bit;
    } strs[] = {{server_name, &o->origin_server_name, CN_OPT_SERVER_NAME},
                {ca_pool, &o->ca_pool, CN_OPT_CA_POOL},
                {cert, &o->origin_cert, CN_OPT_CERT},
                {key, &o->origin_key, CN_OPT_KEY},
                {host_header, &o->http_host_header, CN_OPT_HOST_HEADER}};
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        if (!strs[i].arg)
            continue;
        if (!(*strs[i].dst = strdup(strs[i].arg)))
            return -1;
        o->set |= strs[i].bit;
    }
    return 0;
}

int cn_config_parse_run(int argc, char **argv, struct cn_config *cfg)
{
    static const struct option opts[] = {RT_CLI_ARG("token", 't'),
                                         RT_CLI_ARG("token-file", 'T'),
                                         RT_CLI_ARG("hostname", 'H'),
                                         RT_CLI_ARG("url", 'u'),
                                         RT_CLI_ARG("edge", 'e'),
                                         RT_CLI_ARG("loglevel", 'l'),
                                         RT_CLI_ARG("state-dir", 's'),
                                         RT_CLI_ARG("ha-connections", 'n'),
                                         RT_CLI_ARG("connect-timeout", 'c'),
                                         RT_CLI_ARG("origin-response-timeout", 'r'),
                                         RT_CLI_ARG("config", 'C'),
                                         RT_CLI_ARG("grace-period", 'g'),
                                         RT_CLI_FLAG("no-tls-verify", 'V'),
                                         RT_CLI_ARG("origin-server-name", 'S'),
                                         RT_CLI_ARG("origin-ca", 'A'),
                                         RT_CLI_ARG("origin-cert", 'E'),
                                         RT_CLI_ARG("origin-key", 'K'),
                                         RT_CLI_ARG("http-host-header", 'O'),
                                         RT_CLI_FLAG("origin-pull", 'P'),
                                         RT_CLI_ARG("metrics", 'M'),
                                         RT_CLI_ARG("log-format", 'F'),
                                         RT_CLI_FLAG("access-log", 'a'),
                                         RT_CLI_FLAG("no-access-log", 'N'),
                                         RT_CLI_FLAG("help", 'h'),
                                         RT_CLI_END};
    const char *token_arg = NULL, *token_file = NULL, *state_dir = NULL;
    const char *config = NULL, *server_name = NULL, *ca_pool = NULL, *cert = NULL, *key = NULL;
    const char *host_header = NULL;
    const struct rt_cli_keep keep[] = {{'t', &token_arg}, {'T', &token_file},  {'s', &state_dir},
                                       {'C', &config},    {'S', &server_name}, {'A', &ca_pool},
                                       {'E', &cert},      {'K', &key},         {'O', &host_header},
                                       {0, NULL}};
    const char *edges[PX_TOKEN_MAX_EDGES] = {0};
    size_t ne = 0;
    const char *hostnames[CN_MAX_ROUTES] = {0}, *urls[CN_MAX_ROUTES] = {0};
    size_t nh = 0, nu = 0;
    struct cn_origin_opts defaults = {0};
    int rc;
    memset(cfg, 0, sizeof(*cfg));
    cfg->loglevel = PX_LOG_INFO;
    cfg->ha_connections = CN_DEFAULT_HA_CONNECTIONS;
    cfg->grace_period_ms = 30000;
    cfg->response_timeout_ms = 100000;
    snprintf(cfg->metrics_addr, sizeof(cfg->metrics_addr), "%s", CN_DEFAULT_METRICS_ADDR);
    struct rt_cli cli;
    rt_cli_start(&cli, argc, argv, opts, keep);
    int c;
    unsigned long v;
    while ((c = rt_cli_next(&cli)) > 0) {
        switch (c) {
        case 'H':
            if (nh == CN_MAX_ROUTES) {
                rc = usage_error("too many --hostname flags");
                goto out;
            }
            hostnames[nh++] = optarg;
            break;
        case 'e':
            if (ne == PX_TOKEN_MAX_EDGES) {
                rc = usage_error("too many --edge flags (at most %d)", PX_TOKEN_MAX_EDGES);
                goto out;
            }
            if (valid_edge(optarg) < 0) {
                rc = usage_error("--edge must be HOST:PORT (got %s)", optarg);
                goto out;
            }
            edges[ne++] = optarg;
            break;
        case 'u':
            if (nu == CN_MAX_ROUTES) {
                rc = usage_error("too many --url flags");
                goto out;
            }
            urls[nu++] = optarg;
            break;
        case 'l':
            if (px_log_parse_level(optarg, &cfg->loglevel) < 0) {
                rc = usage_error("--loglevel must be debug, info, warn or error (got %s)", optarg);
                goto out;
            }
            break;
        case 'n':
            if (rt_cli_uint(optarg, 1, 16, &v) < 0) {
                rc = usage_error("--ha-connections must be 1-16 (got %s)", optarg);
                goto out;
            }
            cfg->ha_connections = (unsigned)v;
            break;
        case 'c':
            if (rt_cli_uint(optarg, 1, 3600, &v) < 0) {
                rc = usage_error("--connect-timeout must be 1-3600 seconds (got %s)", optarg);
                goto out;
            }
            defaults.connect_timeout_s = (unsigned)v;
            defaults.set |= CN_OPT_CONNECT_TIMEOUT;
            break;
        case 'g':
            if (rt_cli_uint(optarg, 0, 3600, &v) < 0) {
                rc = usage_error("--grace-period must be 0-3600 seconds (got %s)", optarg);
                goto out;
            }
            cfg->grace_period_ms = (unsigned)v * 1000;
            break;
        case 'r':
            if (rt_cli_uint(optarg, 1, 86400, &v) < 0) {
                rc = usage_error("--origin-response-timeout must be 1-86400 seconds (got %s)",
                                 optarg);
                goto out;
            }
            cfg->response_timeout_ms = (unsigned)v * 1000;
            break;
        case 'V':
            defaults.no_tls_verify = 1;
            defaults.set |= CN_OPT_NO_TLS_VERIFY;
            break;
        case 'P':
            defaults.origin_pull = 1;
            defaults.set |= CN_OPT_ORIGIN_PULL;
            break;
        case 'M':
            if (strcmp(optarg, "off") == 0) {
                cfg->metrics_addr[0] = '\0';
            } else if ((rc = metrics_addr(optarg, cfg->metrics_addr)) != 0) {
                goto out;
            }
            break;
        case 'F':
            if (px_log_parse_format(optarg, &cfg->log_format) < 0) {
                rc = usage_error("--log-format must be text or json (got %s)", optarg);
                goto out;
            }
            break;
        case 'a':
            cfg->access_log = 1;
            break;
        case 'N':
            cfg->access_log = 0;
            break;
        case 'h':
            rc = 1;
            goto out;
        }
    }
    if (c < 0) {
        rc =
            usage_error("unknown or incomplete option %s (see connector --help)", rt_cli_bad(&cli));
        goto out;
    }
    if (rt_cli_word(&cli, 0)) {
        rc = usage_error("unexpected argument %s", rt_cli_word(&cli, 0));
        goto out;
    }
    if (config)
        snprintf(cfg->config_path, sizeof(cfg->config_path), "%s", config);
    if (state_dir)
        snprintf(cfg->state_dir, sizeof(cfg->state_dir), "%s", state_dir);
    else
        default_state_dir(cfg->state_dir, sizeof(cfg->state_dir));
    if (origin_flags(&defaults, server_name, ca_pool, cert, key, host_header) < 0) {
        rc = usage_error("out of memory");
        goto out;
    }

    char *token_text = NULL;
    if (token_arg) {
        token_text = strdup(token_arg);
    } else if (token_file) {
        token_text = read_file(token_file);
        if (!token_text) {
            rc = usage_error("cannot read token file %s", token_file);
            goto out;
        }
    } else if (getenv("TUNNEL_TOKEN")) {
        token_text = strdup(getenv("TUNNEL_TOKEN"));
    } else {
        rc = usage_error("no token: pass --token, --token-file or set TUNNEL_TOKEN");
        goto out;
    }
    if (!token_text) {
        rc = usage_error("out of memory");
        goto out;
    }
    char why[256];
    rc = px_token_decode(token_text, &cfg->token, why, sizeof(why));
    memset(token_text, 0, strlen(token_text));
    free(token_text);
    if (rc < 0) {
        rc = usage_error("invalid token: %s", why);
        goto out;
    }
    /* --edge replaces the token's list; the token's addresses were
     * validated by px_token_decode. */
    for (size_t i = 0; i < (ne ? ne : cfg->token.n_edges); i++)
        if (copy_edge(cfg, ne ? edges[i] : cfg->token.edges[i]) < 0) {
            rc = usage_error("edge address too long: %s", ne ? edges[i] : cfg->token.edges[i]);
            goto out;
        }
    if (cfg->n_edges == 0) {
        rc = usage_error("no edge: the token lists none and no --edge was given");
        goto out;
    }

    struct cn_ingress_errors errs = {0};
    if (cfg->config_path[0]) {
        if (nh || nu) {
            rc = usage_error("use either --config or --hostname/--url, not both");
            goto out;
        }
        if (defaults.set) {
            rc = usage_error("with --config, give origin settings in the file's originRequest");
            goto out;
        }
        if (cn_ingress_load(cfg->config_path, &cfg->ingress, &errs) < 0) {
            fprintf(stderr, "connector: %s is not a valid configuration:\n", cfg->config_path);
            cn_config_print_errors(&errs);
            cn_ingress_errors_cleanup(&errs);
            rc = 2;
            goto out;
        }
    } else {
        if (nh == 0) {
            rc = usage_error("no route: pass --hostname HOST --url URL, or --config FILE");
            goto out;
        }
        if (nu != nh && nu != 1) {
            rc = usage_error("give one --url per --hostname (or one --url for all)");
            goto out;
        }
        if (cn_ingress_from_flags(hostnames, urls, nh, nu, &defaults, &cfg->ingress, &errs) < 0) {
            cn_config_print_errors(&errs);
            cn_ingress_errors_cleanup(&errs);
            rc = 2;
            goto out;
        }
    }
    rc = 0;
out:
    cn_origin_opts_cleanup(&defaults);
    if (rc != 0)
        cn_config_cleanup(cfg);
    return rc;
}

void cn_config_print_errors(const struct cn_ingress_errors *errs)
{
    for (size_t i = 0; i < errs->n; i++)
        fprintf(stderr, "connector: %s\n", errs->lines[i]);
}

void cn_config_cleanup(struct cn_config *cfg)
{
    px_token_cleanup(&cfg->token);
    cn_ingress_unref(cfg->ingress);
    cfg->ingress = NULL;
}
