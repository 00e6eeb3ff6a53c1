/* edge-sim: argv dispatch and the offline subcommands (tunnel, ca). */
#include "es_certs.h"
#include "es_cli.h"
#include "es_live.h"
#include "es_worker.h"
#include "es_server.h"
#include "es_service.h"
#include "es_usage.h"
#include "es_store.h"
#include "px_cert.h"
#include "px_err.h"
#include "px_hostname.h"
#include "px_log.h"
#include "px_pki.h"
#include "px_token.h"
#include "px_version.h"
#include "rt_cli.h"
#include "rt_proc.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hash.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(FILE *f)
{
    fprintf(
        f, "usage: edge-sim serve [--data-dir DIR] [--store SPEC] [--ca-key-file FILE]\n"
           "                      [--tunnel-addr HOST:PORT]\n"
           "                      [--https-addr HOST:PORT] [--admin-addr HOST:PORT]\n"
           "                      [--idle-timeout S] [--header-timeout S] [--body-timeout S]\n"
           "                      [--handshake-timeout S] [--max-connections N]\n"
           "                      [--max-connections-per-ip N] [--cert-lifetime DURATION]\n"
           "                      [--grace-period DURATION]\n"
           "                      [--hostname-grace DURATION] [--workers N]\n"
           "                      [--loglevel debug|info|warn|error]\n"
           "                      [--log-format text|json] [--access-log | --no-access-log]\n"
           "       edge-sim tunnel create NAME [--hostname PATTERN]... [--edge HOST:PORT]...\n"
           "                                   [--data-dir DIR]\n"
           "       edge-sim tunnel list [--data-dir DIR]\n"
           "       edge-sim tunnel delete NAME [--data-dir DIR]\n"
           "       edge-sim tunnel rotate-token NAME [--grace DURATION] [--edge HOST:PORT]...\n"
           "       edge-sim ca [--data-dir DIR]\n"
           "       edge-sim client-cert create NAME --out DIR [--days N] [--csr FILE]\n"
           "                                        [--p12-password-file F]\n"
           "       edge-sim client-cert list | revoke NAME|SERIAL\n"
           "       edge-sim client-ca add NAME --cert FILE [--crl FILE]\n"
           "       edge-sim client-ca update NAME --crl FILE | list | delete NAME\n"
           "       edge-sim access set PATTERN --require-cert [--ca NAME]...\n"
           "                           [--allow-subject REGEX]... [--allow-fingerprint SHA256]...\n"
           "                           [--audience AUD]\n"
           "       edge-sim access list | delete PATTERN | rotate-key\n"
           "       edge-sim service install|uninstall|unit [serve options] [--unit-dir DIR]\n"
           "       edge-sim origin-cert create --hostname NAME [--hostname NAME]... --out DIR\n"
           "                                   [--days N] [--csr FILE]\n"
           "       edge-sim origin-ca | origin-pull-ca\n"
           "       edge-sim admin token [--data-dir DIR]\n"
           "       edge-sim store migrate | keygen FILE | export --out FILE | import FILE\n"
           "       edge-sim --version | --help\n"
           "       (every subcommand takes --data-dir DIR, --store SPEC, --ca-key-file FILE)\n"
           "\n"
           "Defaults: --data-dir ./edge-data, --tunnel-addr 127.0.0.1:7844,\n"
           "--https-addr 127.0.0.1:8443, --admin-addr 127.0.0.1:7845.\n"
           "Deadlines (seconds) on every connection: --handshake-timeout 10 (TLS);\n"
           "--idle-timeout 60 (no request in progress); --header-timeout 10 (a request\n"
           "head, and a new connection's first request); --body-timeout 30 (a request\n"
           "body that stops arriving; WebSockets excepted). Header and body timeouts\n"
           "default to the idle timeout when that is shorter.\n"
           "Caps: --max-connections 16384 (all listeners, also bounded by the file\n"
           "descriptor limit) and --max-connections-per-ip 2048 (an IPv6 client is its /64).\n"
           "SIGTERM or SIGINT drains serve: it stops accepting, sends browsers and connectors\n"
           "GOAWAY (a notice, then the final one), lets requests in flight finish within\n"
           "--grace-period (default 30s, at most 1h), then exits 0; a second signal stops\n"
           "it at once (exit 1).\n"
           "Logs go to stderr, one line per event (--log-format json: one JSON object per\n"
           "line); an access line per browser request unless --no-access-log.\n"
           "`tunnel create` prints the connector's token on stdout. `client-cert create`\n"
           "issues for --days 365 by default and prints the PKCS#12 password on stderr.\n"
           "Durations are N followed by s, m, h or d. --cert-lifetime (default 7d, 10s to\n"
           "825d) is how long the connector's certificates last; it renews them over its\n"
           "connection. `tunnel rotate-token` prints a new token; the old one keeps\n"
           "enrolling for --grace (default 0). `origin-cert create` issues an origin server\n"
           "certificate from the edge's origin CA (--days 5479, 15 years, by default) into\n"
           "DIR/<first hostname>.pem and .key (none with --csr). `origin-ca` prints the CA\n"
           "connectors trust for origins; `origin-pull-ca` the CA an origin trusts for the\n"
           "certificates connectors present (SAN URI tunnel:<tunnel id>).\n"
           "The admin address serves /healthz, /ready, /metrics and a status page at /;\n"
           "its JSON API under /api/ wants `Authorization: Bearer TOKEN`, the token\n"
           "`admin token` prints (DIR/admin.token, made at the first start; /ready and\n"
           "/metrics need it too when asked from other than loopback).\n"
           "Several serves may share one --data-dir (listening on other addresses). A token\n"
           "names the edges given with --edge, else the tunnel addresses of the serves running\n"
           "on the data dir, else the last one that ran. A hostname no connection of its\n"
           "tunnel registers any more is released after --hostname-grace (default 5m, at\n"
           "least 1s).\n"
           "Edges on several machines share one state through PostgreSQL: --store\n"
           "postgres://USER@HOST/DB (or EDGE_STORE) with --ca-key-file FILE (or\n"
           "EDGE_CA_KEY_FILE), the key that seals the CAs kept there; `store migrate` makes\n"
           "the schema first. A change at any edge takes effect at all within a second.\n"
           "Without the database, an edge keeps serving the routes it knows and refuses\n"
           "new hostnames and enrolments (retryable) until it is back. A request for a\n"
           "tunnel connected only through another edge gets 530 naming that edge\n"
           "(edge-sim-tunnel-at).\n"
           "--workers N (default: the number of cores, at most 64) is how many loops, each\n"
           "a thread, serve browser connections (TLS and HTTP); one of them also holds the\n"
           "tunnel connections and decides every request.\n");
}

/* With checked (edge-sim service): parses, sets *checked, does not serve. */
static int cmd_serve(int argc, char **argv, const struct es_server **checked)
{
    static const struct option opts[] = {ES_CLI_WHERE_OPTS,
                                         RT_CLI_ARG("tunnel-addr", 't'),
                                         RT_CLI_ARG("https-addr", 'h'),
                                         RT_CLI_ARG("admin-addr", 'a'),
                                         RT_CLI_ARG("loglevel", 'l'),
                                         RT_CLI_ARG("idle-timeout", 'i'),
                                         RT_CLI_ARG("header-timeout", 'H'),
                                         RT_CLI_ARG("body-timeout", 'B'),
                                         RT_CLI_ARG("handshake-timeout", 'T'),
                                         RT_CLI_ARG("max-connections", 'm'),
                                         RT_CLI_ARG("max-connections-per-ip", 'p'),
                                         RT_CLI_ARG("cert-lifetime", 'L'),
                                         RT_CLI_ARG("grace-period", 'G'),
                                         RT_CLI_ARG("hostname-grace", 'R'),
                                         RT_CLI_ARG("workers", 'W'),
                                         RT_CLI_ARG("log-format", 'F'),
                                         RT_CLI_FLAG("access-log", 'A'),
                                         RT_CLI_FLAG("no-access-log", 'N'),
                                         RT_CLI_END};
    /* Static, not on the stack: large, and what it owns stays reachable
     * (for LeakSanitizer) on the paths that exit without cleaning up. Only
     * this function and es_server_run touch it: no other code sees it. */
    static struct es_server srv;
    const char *tunnel = "127.0.0.1:7844", *https = "127.0.0.1:8443", *admin = "127.0.0.1:7845";
    struct es_where w = es_where_default();
    const struct rt_cli_keep keep[] = {
        ES_CLI_WHERE_KEEP(w), {'t', &tunnel}, {'h', &https}, {'a', &admin}, {0, NULL}};
    srv.cert_lifetime = ES_CERT_LIFETIME_DEFAULT;
    srv.idle_timeout_ms = 60000;
    srv.handshake_timeout_ms = 10000;
    srv.max_conns = 16384;
    srv.max_conns_per_ip = 2048;
    srv.grace_ms = ES_SERVER_GRACE_MS;
    srv.access_log = 1;
    unsigned header_ms = 0, body_ms = 0;
    struct rt_cli cli;
    rt_cli_start(&cli, argc, argv, opts, keep);
    int c;
    unsigned long v;
    enum px_log_level lvl;
    enum px_log_format fmt;
    while ((c = rt_cli_next(&cli)) > 0) {
        switch (c) {
        case 'F':
            if (px_log_parse_format(optarg, &fmt) < 0)
                return es_cli_fail("--log-format must be text or json", NULL);
            px_log_set_format(fmt);
            break;
        case 'A':
        case 'N':
            srv.access_log = c == 'A';
            break;
        case 'l':
            if (px_log_parse_level(optarg, &lvl) < 0)
                return es_cli_fail("--loglevel must be debug, info, warn or error", NULL);
            px_log_set_level(lvl);
            break;
        case 'i':
        case 'H':
        case 'B':
        case 'T': {
            if (rt_cli_uint(optarg, 1, 86400, &v) < 0)
                return es_cli_fail("timeouts must be 1-86400 seconds: ", optarg);
            unsigned ms = (unsigned)v * 1000;
            if (c == 'i')
                srv.idle_timeout_ms = ms;
            else if (c == 'H')
                header_ms = ms;
            else if (c == 'B')
                body_ms = ms;
            else
                srv.handshake_timeout_ms = ms;
            break;
        }
        case 'm':
        case 'p':
            if (rt_cli_uint(optarg, 1, 1000000, &v) < 0)
                return es_cli_fail("connection caps must be 1-1000000: ", optarg);
            if (c == 'm')
                srv.max_conns = (unsigned)v;
            else
                srv.max_conns_per_ip = (unsigned)v;
            break;
        case 'L':
            if (es_cli_parse_duration(optarg, ES_CERT_LIFETIME_MIN, ES_CERT_LIFETIME_MAX,
                                      &srv.cert_lifetime) < 0)
                return es_cli_fail("--cert-lifetime must be 10s to 825d (N followed by s, m, h "
                                   "or d): ",
                                   optarg);
            break;
        case 'G': {
            long long grace;
            if (es_cli_parse_duration(optarg, 0, 3600, &grace) < 0)
                return es_cli_fail("--grace-period must be 0s to 1h (N followed by s, m or h): ",
                                   optarg);
            srv.grace_ms = (unsigned)grace * 1000;
            break;
        }
        case 'W':
            if (rt_cli_uint(optarg, 1, ES_WORKERS_MAX, &v) < 0)
                return es_cli_fail("--workers must be 1-64: ", optarg);
            srv.n_workers = (unsigned)v;
            break;
        case 'R': {
            long long g;
            if (es_cli_parse_duration(optarg, ES_LIVE_GRACE_MIN_MS / 1000, 3650LL * 86400, &g) < 0)
                return es_cli_fail("--hostname-grace must be 1s to 3650d (N followed by s, m, h "
                                   "or d): ",
                                   optarg);
            srv.hostname_grace_ms = g * 1000;
            break;
        }
        }
    }
    if (c < 0)
        return es_cli_bad_option(&cli);
    snprintf(srv.data_dir, sizeof(srv.data_dir), "%s", w.dir);
    srv.store_spec = w.store;
    srv.ca_key_file = w.ca_key_file;
    snprintf(srv.tunnel_addr, sizeof(srv.tunnel_addr), "%s", tunnel);
    snprintf(srv.https_addr, sizeof(srv.https_addr), "%s", https);
    snprintf(srv.admin_addr, sizeof(srv.admin_addr), "%s", admin);
    /* A shorter idle timeout shortens the others too, unless they are set. */
    srv.header_timeout_ms = header_ms                     ? header_ms
                            : srv.idle_timeout_ms < 10000 ? srv.idle_timeout_ms
                                                          : 10000;
    srv.body_timeout_ms = body_ms                       ? body_ms
                          : srv.idle_timeout_ms < 30000 ? srv.idle_timeout_ms
                                                        : 30000;
    if (checked) {
        *checked = &srv;
        return 0;
    }
    return es_server_run(&srv);
}

/* The --edge flags of a tunnel subcommand. */
struct edge_flags {
    const char *v[PX_TOKEN_MAX_EDGES];
    size_t n;
};

/* tunnel rotate-token: a new secret (on stdout); the old one enrols until
 * now + grace. */
static int tunnel_rotate(struct es_offline *o, const char *name, long long grace,
                         const struct edge_flags *edge)
{
    struct es_op_ctx ctx = es_cli_op_ctx(o);
    struct es_op_token t;
    char why[512];
    if (es_op_tunnel_rotate(&ctx, name, grace, edge->v, edge->n, &t, why, sizeof(why)) < 0) {
        fprintf(stderr, "edge-sim: %s\n", why);
        return 1;
    }
    printf("%s\n", t.token);
    if (t.previous_until) {
        char until[21];
        px_cert_time(t.previous_until, until);
        fprintf(stderr,
                "edge-sim: rotated the token of tunnel %s (%s); the previous token keeps "
                "enrolling until %s\n",
                t.name, t.id, until);
    } else {
        fprintf(stderr,
                "edge-sim: rotated the token of tunnel %s (%s); the previous token no longer "
                "enrols (connectors already enrolled keep working)\n",
                t.name, t.id);
    }
    es_op_token_cleanup(&t);
    return 0;
}

static int cmd_tunnel(int argc, char **argv)
{
    static const struct option opts[] = {ES_CLI_WHERE_OPTS, RT_CLI_ARG("hostname", 'H'),
                                         RT_CLI_ARG("edge", 'e'), RT_CLI_ARG("grace", 'g'),
                                         RT_CLI_END};
    struct es_where w = es_where_default();
    const struct rt_cli_keep keep[] = {ES_CLI_WHERE_KEEP(w), {0, NULL}};
    struct edge_flags edges = {0};
    long long grace = 0;
    int have_grace = 0;
    const char *patterns[ES_MAX_PATTERNS];
    size_t np = 0;
    struct rt_cli cli;
    rt_cli_start(&cli, argc, argv, opts, keep);
    int c;
    while ((c = rt_cli_next(&cli)) > 0) {
        switch (c) {
        case 'H':
            if (np == ES_MAX_PATTERNS)
                return es_cli_fail("too many --hostname patterns", NULL);
            if (!px_host_pattern_valid(optarg))
                return es_cli_fail("--hostname must be a hostname or *.suffix pattern: ", optarg);
            patterns[np++] = optarg;
            break;
        case 'e': {
            char h[256];
            int port;
            if (px_split_hostport(optarg, h, sizeof(h), &port) < 0)
                return es_cli_fail("--edge must be HOST:PORT: ", optarg);
            if (strlen(optarg) > 300)
                return es_cli_fail("--edge too long: ", optarg);
            if (edges.n == PX_TOKEN_MAX_EDGES)
                return es_cli_fail("too many --edge addresses (at most 8)", NULL);
            edges.v[edges.n++] = optarg;
            break;
        }
        case 'g':
            if (es_cli_parse_duration(optarg, 0, 3650LL * 86400, &grace) < 0)
                return es_cli_fail("--grace must be 0 to 3650d (N followed by s, m, h or d): ",
                                   optarg);
            have_grace = 1;
            break;
        }
    }
    if (c < 0)
        return es_cli_bad_option(&cli);
    const char *sub, *name;
    if (es_cli_words(&cli, "tunnel needs a subcommand: create, list, delete or rotate-token", &sub,
                     &name) != 0)
        return 2;
    if (have_grace && strcmp(sub, "rotate-token") != 0)
        return es_cli_fail("--grace goes with rotate-token", NULL);
    struct es_offline o;
    int rc = 1;
    if (strcmp(sub, "create") == 0) {
        if (!name || !es_cli_valid_name(name))
            return es_cli_fail("tunnel create needs a NAME of letters, digits, '-', '_' or '.'",
                               NULL);
        if (es_offline_open(&o, &w) < 0)
            return 1;
        struct es_op_ctx ctx = es_cli_op_ctx(&o);
        struct es_op_token t;
        char why[512];
        if (es_op_tunnel_create(&ctx, name, patterns, np, edges.v, edges.n, &t, why, sizeof(why)) <
            0) {
            fprintf(stderr, "edge-sim: %s\n", why);
            goto out;
        }
        printf("%s\n", t.token);
        es_op_token_cleanup(&t);
        fprintf(stderr,
                "edge-sim: created tunnel %s (%s); run the connector with the token "
                "above\n",
                name, t.id);
        /* Without patterns the token's holder decides which names it serves:
         * say so, since handing it to someone else hands out any free name. */
        if (np == 0)
            fprintf(stderr,
                    "edge-sim: warning: tunnel %s has no --hostname: its connector may claim "
                    "any hostname no other tunnel holds; limit it with --hostname NAME or "
                    "--hostname '*.SUFFIX'\n",
                    name);
        rc = 0;
    } else if (strcmp(sub, "list") == 0) {
        if (es_offline_open(&o, &w) < 0)
            return 1;
        struct es_tunnel_rec *t;
        size_t n;
        if (es_store_tunnel_list(&o.store, &t, &n) < 0)
            goto out;
        printf("%-20s %-32s %-20s %s\n", "NAME", "ID", "CREATED", "ALLOWED HOSTNAMES");
        for (size_t i = 0; i < n; i++) {
            char when[32];
            time_t ts = (time_t)t[i].created;
            struct tm tm;
            gmtime_r(&ts, &tm);
            strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
            printf("%-20s %-32s %-20s ", t[i].name, t[i].id, when);
            if (t[i].n_patterns == 0)
                printf("(any)");
            for (size_t k = 0; k < t[i].n_patterns; k++)
                printf("%s%s", k ? "," : "", t[i].patterns[k]);
            printf("\n");
        }
        es_store_tunnels_free(t, n);
        rc = 0;
    } else if (strcmp(sub, "delete") == 0) {
        if (!name)
            return es_cli_fail("tunnel delete needs a NAME", NULL);
        if (es_offline_open(&o, &w) < 0)
            return 1;
        struct es_op_ctx ctx = es_cli_op_ctx(&o);
        char why[512];
        if (es_op_tunnel_delete(&ctx, name, why, sizeof(why)) < 0) {
            fprintf(stderr, "edge-sim: %s\n", why);
            goto out;
        }
        fprintf(stderr, "edge-sim: deleted tunnel %s\n", name);
        rc = 0;
    } else if (strcmp(sub, "rotate-token") == 0) {
        if (!name)
            return es_cli_fail("tunnel rotate-token needs a NAME", NULL);
        if (es_offline_open(&o, &w) < 0)
            return 1;
        rc = tunnel_rotate(&o, name, grace, &edges);
    } else {
        return es_cli_fail("unknown tunnel subcommand ", sub);
    }
out:
    es_offline_close(&o);
    return rc;
}

static int serve_check(int argc, char **argv, const struct es_server **srv)
{
    return cmd_serve(argc, argv, srv);
}

int main(int argc, char **argv)
{
    if (rt_cli_help(argc, argv, es_usage, usage, stdout))
        return 0;
    if (rt_proc_init("edge-sim") < 0)
        return 1;
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("edge-sim %s\n", PX_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "serve"))
        return cmd_serve(argc - 1, argv + 1, NULL);
    if (!strcmp(cmd, "service"))
        return es_service_main(argc - 1, argv + 1, serve_check);
    if (!strcmp(cmd, "tunnel"))
        return cmd_tunnel(argc - 1, argv + 1);
    if (!strcmp(cmd, "ca"))
        return es_cli_print_ca(argc - 1, argv + 1, ES_CLI_BROWSER_CA);
    if (!strcmp(cmd, "client-cert"))
        return es_cli_client_cert(argc - 1, argv + 1);
    if (!strcmp(cmd, "client-ca"))
        return es_cli_client_ca(argc - 1, argv + 1);
    if (!strcmp(cmd, "access"))
        return es_cli_access(argc - 1, argv + 1);
    if (!strcmp(cmd, "origin-cert"))
        return es_cli_origin_cert(argc - 1, argv + 1);
    if (!strcmp(cmd, "origin-ca"))
        return es_cli_origin_ca(argc - 1, argv + 1);
    if (!strcmp(cmd, "origin-pull-ca"))
        return es_cli_origin_pull_ca(argc - 1, argv + 1);
    if (!strcmp(cmd, "admin"))
        return es_cli_admin(argc - 1, argv + 1);
    if (!strcmp(cmd, "store"))
        return es_cli_store(argc - 1, argv + 1);
    fprintf(stderr, "edge-sim: unknown command '%s' (try edge-sim --help)\n", cmd);
    return 2;
}
