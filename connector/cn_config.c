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

int cn_parse_service(const char *url, struct cn_route *r, char *why, size_t whylen)
{
    if (strcmp(url, "hello_world") == 0) {
        r->kind = CN_SVC_HELLO;
        return 0;
    }
    if (strncmp(url, "http_status:", 12) == 0) {
        char *end;
        long st = strtol(url + 12, &end, 10);
        if (*end || st < 100 || st > 599) {
            snprintf(why, whylen, "http_status must be 100-599");
            return PX_ERR_INVAL;
        }
        r->kind = CN_SVC_STATUS;
        r->status = (int)st;
        return 0;
    }
    const char *rest;
    if (strncasecmp(url, "http://", 7) == 0) {
        rest = url + 7;
        r->https = 0;
    } else if (strncasecmp(url, "https://", 8) == 0) {
        rest = url + 8;
        r->https = 1;
    } else {
        snprintf(why, whylen, "service must start with http:// or https://, or be hello_world");
        return PX_ERR_INVAL;
    }
    size_t n = strlen(rest);
    while (n > 0 && rest[n - 1] == '/')
        n--;
    if (n == 0 || memchr(rest, '/', n) || memchr(rest, '?', n) || memchr(rest, '#', n) ||
        memchr(rest, '@', n)) {
        snprintf(why, whylen, "service must be scheme://host[:port] with no path");
        return PX_ERR_INVAL;
    }
    if (snprintf(r->base_url, sizeof(r->base_url), "%s%.*s", r->https ? "https://" : "http://",
                 (int)n, rest) >= (int)sizeof(r->base_url)) {
        snprintf(why, whylen, "service URL too long");
        return PX_ERR_INVAL;
    }
    r->kind = CN_SVC_HTTP;
    return 0;
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
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *token_arg = NULL, *token_file = NULL;
    const char *hostnames[CN_MAX_ROUTES], *urls[CN_MAX_ROUTES];
    size_t nh = 0, nu = 0;
    memset(cfg, 0, sizeof(*cfg));
    cfg->loglevel = PX_LOG_INFO;
    cfg->ha_connections = 2;
    cfg->connect_timeout_ms = 30000;
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
            if (nh == CN_MAX_ROUTES)
                return usage_error("too many --hostname flags");
            hostnames[nh++] = optarg;
            break;
        case 'u':
            if (nu == CN_MAX_ROUTES)
                return usage_error("too many --url flags");
            urls[nu++] = optarg;
            break;
        case 'e':
            snprintf(cfg->edge_override, sizeof(cfg->edge_override), "%s", optarg);
            break;
        case 'l':
            if (px_log_parse_level(optarg, &cfg->loglevel) < 0)
                return usage_error("--loglevel must be debug, info, warn or error (got %s)",
                                   optarg);
            break;
        case 's':
            snprintf(cfg->state_dir, sizeof(cfg->state_dir), "%s", optarg);
            break;
        case 'n':
            if (parse_uint(optarg, 16, &v) < 0 || v == 0)
                return usage_error("--ha-connections must be 1-16 (got %s)", optarg);
            cfg->ha_connections = v;
            break;
        case 'c':
            if (parse_uint(optarg, 3600, &v) < 0 || v == 0)
                return usage_error("--connect-timeout must be 1-3600 seconds (got %s)", optarg);
            cfg->connect_timeout_ms = v * 1000;
            break;
        case 'r':
            if (parse_uint(optarg, 86400, &v) < 0 || v == 0)
                return usage_error("--origin-response-timeout must be 1-86400 seconds (got %s)",
                                   optarg);
            cfg->response_timeout_ms = v * 1000;
            break;
        case 'h':
            return 1;
        default:
            return usage_error("unknown or incomplete option %s (see connector --help)",
                               argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument %s", argv[optind]);

    char *token_text = NULL;
    if (token_arg) {
        token_text = strdup(token_arg);
    } else if (token_file) {
        token_text = read_file(token_file);
        if (!token_text)
            return usage_error("cannot read token file %s", token_file);
    } else if (getenv("TUNNEL_TOKEN")) {
        token_text = strdup(getenv("TUNNEL_TOKEN"));
    } else {
        return usage_error("no token: pass --token, --token-file or set TUNNEL_TOKEN");
    }
    if (!token_text)
        return usage_error("out of memory");
    char why[256];
    int rc = px_token_decode(token_text, &cfg->token, why, sizeof(why));
    memset(token_text, 0, strlen(token_text));
    free(token_text);
    if (rc < 0)
        return usage_error("invalid token: %s", why);

    if (nh == 0) {
        cn_config_cleanup(cfg);
        return usage_error("no route: pass --hostname HOST --url URL");
    }
    if (nu != nh && !(nu == 1 && nh >= 1)) {
        cn_config_cleanup(cfg);
        return usage_error("give one --url per --hostname (or one --url for all)");
    }
    for (size_t i = 0; i < nh; i++) {
        struct cn_route *r = &cfg->routes[i];
        if (!px_host_pattern_valid(hostnames[i])) {
            cn_config_cleanup(cfg);
            return usage_error("--hostname %s is not a valid hostname or *.suffix pattern",
                               hostnames[i]);
        }
        snprintf(r->hostname, sizeof(r->hostname), "%s", hostnames[i]);
        for (char *p = r->hostname; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        if (cn_parse_service(urls[nu == 1 ? 0 : i], r, why, sizeof(why)) < 0) {
            cn_config_cleanup(cfg);
            fprintf(stderr, "connector: --url %s: %s\n", urls[nu == 1 ? 0 : i], why);
            return 2;
        }
    }
    cfg->n_routes = nh;
    if (cfg->edge_override[0]) {
        char host[256];
        int port;
        if (px_split_hostport(cfg->edge_override, host, sizeof(host), &port) < 0) {
            cn_config_cleanup(cfg);
            return usage_error("--edge must be HOST:PORT (got %s)", cfg->edge_override);
        }
    }
    return 0;
}

void cn_config_cleanup(struct cn_config *cfg)
{
    px_token_cleanup(&cfg->token);
}
