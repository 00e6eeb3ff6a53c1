#include "cn_config.h"
#include "px_err.h"
#include "px_hostname.h"

#include <getopt.h>
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

static int parse_uint(const char *s, unsigned max, unsigned *out)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || v > max)
        return -1;
    *out = (unsigned)v;
    return 0;
}

int cn_config_parse_run(int argc, char **argv, struct cn_config *cfg)
{
    static const struct option opts[] = {
        {"token", required_argument, 0, 't'},
        {"token-file", required_argument, 0, 'T'},
        {"hostname", required_argument, 0, 'H'},
        {"url", required_argument, 0, 'u'},
        {"edge", required_argument, 0, 'e'},
        {"loglevel", required_argument, 0, 'l'},
        {"state-dir", required_argument, 0, 's'},
        {"ha-connections", required_argument, 0, 'n'},
        {"connect-timeout", required_argument, 0, 'c'},
        {"origin-response-timeout", required_argument, 0, 'r'},
        {"config", required_argument, 0, 'C'},
        {"grace-period", required_argument, 0, 'g'},
        {"no-tls-verify", no_argument, 0, 'V'},
        {"origin-server-name", required_argument, 0, 'S'},
        {"origin-ca", required_argument, 0, 'A'},
        {"origin-cert", required_argument, 0, 'E'},
        {"origin-key", required_argument, 0, 'K'},
        {"http-host-header", required_argument, 0, 'O'},
        {"origin-pull", no_argument, 0, 'P'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *token_arg = NULL, *token_file = NULL;
    const char *hostnames[CN_MAX_ROUTES] = {0}, *urls[CN_MAX_ROUTES] = {0};
    size_t nh = 0, nu = 0;
    struct cn_origin_opts defaults = {0};
    int rc;
    memset(cfg, 0, sizeof(*cfg));
    cfg->loglevel = PX_LOG_INFO;
    cfg->ha_connections = 2;
    cfg->grace_period_ms = 30000;
    cfg->response_timeout_ms = 100000;
    default_state_dir(cfg->state_dir, sizeof(cfg->state_dir));
    optind = 0; /* 0 fully resets glibc's getopt state */
    opterr = 0;
    int c;
    unsigned v;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            token_arg = optarg;
            break;
        case 'T':
            token_file = optarg;
            break;
        case 'H':
            if (nh == CN_MAX_ROUTES) {
                rc = usage_error("too many --hostname flags");
                goto out;
            }
            hostnames[nh++] = optarg;
            break;
        case 'u':
            if (nu == CN_MAX_ROUTES) {
                rc = usage_error("too many --url flags");
                goto out;
            }
            urls[nu++] = optarg;
            break;
        case 'e':
            snprintf(cfg->edge_override, sizeof(cfg->edge_override), "%s", optarg);
            break;
        case 'l':
            if (px_log_parse_level(optarg, &cfg->loglevel) < 0) {
                rc = usage_error("--loglevel must be debug, info, warn or error (got %s)", optarg);
                goto out;
            }
            break;
        case 's':
            snprintf(cfg->state_dir, sizeof(cfg->state_dir), "%s", optarg);
            break;
        case 'n':
            if (parse_uint(optarg, 16, &v) < 0 || v == 0) {
                rc = usage_error("--ha-connections must be 1-16 (got %s)", optarg);
                goto out;
            }
            cfg->ha_connections = v;
            break;
        case 'c':
            if (parse_uint(optarg, 3600, &v) < 0 || v == 0) {
                cn_origin_opts_cleanup(&defaults);
                {
                    rc = usage_error("--connect-timeout must be 1-3600 seconds (got %s)", optarg);
                    goto out;
                }
            }
            defaults.connect_timeout_s = v;
            defaults.set |= CN_OPT_CONNECT_TIMEOUT;
            break;
        case 'C':
            snprintf(cfg->config_path, sizeof(cfg->config_path), "%s", optarg);
            break;
        case 'g':
            if (parse_uint(optarg, 3600, &v) < 0) {
                rc = usage_error("--grace-period must be 0-3600 seconds (got %s)", optarg);
                goto out;
            }
            cfg->grace_period_ms = v * 1000;
            break;
        case 'V':
            defaults.no_tls_verify = 1;
            defaults.set |= CN_OPT_NO_TLS_VERIFY;
            break;
        case 'S':
            free(defaults.origin_server_name);
            defaults.origin_server_name = strdup(optarg);
            defaults.set |= CN_OPT_SERVER_NAME;
            break;
        case 'A':
            free(defaults.ca_pool);
            defaults.ca_pool = strdup(optarg);
            defaults.set |= CN_OPT_CA_POOL;
            break;
        case 'E':
            free(defaults.origin_cert);
            defaults.origin_cert = strdup(optarg);
            defaults.set |= CN_OPT_CERT;
            break;
        case 'K':
            free(defaults.origin_key);
            defaults.origin_key = strdup(optarg);
            defaults.set |= CN_OPT_KEY;
            break;
        case 'P':
            defaults.origin_pull = 1;
            defaults.set |= CN_OPT_ORIGIN_PULL;
            break;
        case 'O':
            free(defaults.http_host_header);
            defaults.http_host_header = strdup(optarg);
            defaults.set |= CN_OPT_HOST_HEADER;
            break;
        case 'r':
            if (parse_uint(optarg, 86400, &v) < 0 || v == 0) {
                rc = usage_error("--origin-response-timeout must be 1-86400 seconds (got %s)",
                                 optarg);
                goto out;
            }
            cfg->response_timeout_ms = v * 1000;
            break;
        case 'h':
            rc = 1;
            goto out;
        default: {
            rc = usage_error("unknown or incomplete option %s (see connector --help)",
                             argv[optind - 1]);
            goto out;
        }
        }
    }
    if (optind < argc) {
        rc = usage_error("unexpected argument %s", argv[optind]);
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
    if (cfg->edge_override[0]) {
        char host[256];
        int port;
        if (px_split_hostport(cfg->edge_override, host, sizeof(host), &port) < 0) {
            rc = usage_error("--edge must be HOST:PORT (got %s)", cfg->edge_override);
            goto out;
        }
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
