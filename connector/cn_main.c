/* connector: argv dispatch only. */
#include "cn_access.h"
#include "cn_config.h"
#include "cn_ingress.h"
#include "cn_service.h"
#include "cn_usage.h"
#include "px_hostname.h"
#include "cn_supervisor.h"
#include "px_log.h"
#include "px_path.h"
#include "px_version.h"
#include "rt_cli.h"
#include "rt_proc.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: connector run --token TOKEN [options]\n"
        "       connector ingress validate|rule --config FILE [URL]\n"
        "       connector access tcp --hostname HOST [options]\n"
        "       connector service install|uninstall|unit [options]\n"
        "       connector --version | --help | COMMAND --help\n"
        "\n"
        "Dials out to the edge over mutually authenticated TLS (HTTP/2) and serves the\n"
        "requests the edge sends for this tunnel's hostnames from local services.\n"
        "\n"
        "run options:\n"
        "  --token TOKEN            the tunnel token (or --token-file FILE, or env TUNNEL_TOKEN)\n"
        "  --token-file FILE        read the token from FILE\n"
        "  --config FILE            ingress rules from a JSON file (SIGHUP re-reads it),\n"
        "                           instead of --hostname/--url\n"
        "  --hostname HOST          a public hostname to route (exact or *.suffix); repeatable\n"
        "  --url URL                its service: http://host:port, https://host:port,\n"
        "                           hello_world or http_status:NNN; one per --hostname\n"
        "  --no-tls-verify, --origin-server-name NAME, --origin-ca FILE,\n"
        "  --origin-cert FILE --origin-key FILE, --http-host-header HOST\n"
        "                           originRequest settings for every --url\n"
        "  --origin-pull            present the tunnel's origin-pull certificate (issued\n"
        "                           by the edge) to https origins (originPull)\n"
        "  --edge HOST:PORT         an edge to connect to; repeatable (up to 8), replacing\n"
        "                           the token's edges\n"
        "  --state-dir DIR          where the key and certificate live\n"
        "                           (default /var/lib/connector as root, else\n"
        "                           ~/.local/state/connector)\n"
        "  --ha-connections N       parallel connections, spread over the edges\n"
        "                           round-robin (default 4, 1-16)\n"
        "  --connect-timeout S      origin connect timeout in seconds (default 30)\n"
        "  --origin-response-timeout S\n"
        "                           answer 504 if the origin sends no response headers\n"
        "                           for S seconds (default 100)\n"
        "  --grace-period S         on SIGTERM, time for requests in flight to finish\n"
        "                           (default 30; a second signal stops at once)\n"
        "  --loglevel LEVEL         debug, info, warn or error (default info)\n"
        "  --log-format FORMAT      text or json (one JSON object per line; default text)\n"
        "  --access-log             one log line per request (host, method, path, status,\n"
        "                           bytes, duration, request id, client, rule);\n"
        "                           --no-access-log turns it off (the default)\n"
        "  --metrics ADDR           where /metrics (Prometheus), /ready and /healthcheck\n"
        "                           listen: IP:PORT, [IPv6]:PORT or localhost:PORT\n"
        "                           (default 127.0.0.1:0, a free port, logged at\n"
        "                           start), or off\n"
        "SIGHUP re-reads --config; SIGTERM drains.\n");
}

/* Overwrites the token in argv so it does not show in `ps` or /proc/PID/cmdline. */
static void hide_token(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        char *v = NULL;
        if (strcmp(argv[i], "--token") == 0 && i + 1 < argc)
            v = argv[i + 1];
        else if (strncmp(argv[i], "--token=", 8) == 0)
            v = argv[i] + 8;
        if (v)
            memset(v, 'x', strlen(v));
    }
}

/* connector ingress validate|rule --config FILE [URL] */
static int cmd_ingress(int argc, char **argv)
{
    const char *sub = argc > 2 ? argv[2] : "";
    const char *file = NULL, *url = NULL;
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            file = argv[++i];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            file = argv[i] + 9;
        else if (!url && argv[i][0] != '-')
            url = argv[i];
        else {
            fprintf(stderr, "connector: unexpected argument %s\n", argv[i]);
            return 2;
        }
    }
    int validate = strcmp(sub, "validate") == 0, rule = strcmp(sub, "rule") == 0;
    if ((!validate && !rule) || !file || (rule && !url) || (validate && url)) {
        fputs(cn_usage_ingress, stderr);
        return 2;
    }
    struct cn_ingress *ing = NULL;
    struct cn_ingress_errors errs = {0};
    if (cn_ingress_load(file, &ing, &errs) < 0) {
        fprintf(stderr, "connector: %s is not valid (%zu problem%s):\n", file, errs.n,
                errs.n == 1 ? "" : "s");
        cn_config_print_errors(&errs);
        cn_ingress_errors_cleanup(&errs);
        return 1;
    }
    int rc = 0;
    if (validate) {
        printf("%s is valid: %zu rule(s), hostnames:", file, ing->n);
        for (size_t i = 0; i < ing->n_hostnames; i++)
            printf(" %s", ing->hostnames[i]);
        printf("\n");
    } else {
        const char *p = strstr(url, "://");
        const char *hostpart = p ? p + 3 : url;
        size_t hl = strcspn(hostpart, "/?#");
        const char *path = hostpart[hl] == '/' ? hostpart + hl : "/";
        char host[256], *norm = NULL;
        enum px_path_error why = PX_PATH_OK;
        if (px_host_normalize(hostpart, hl, host, sizeof(host)) < 0) {
            fprintf(stderr, "connector: %s has no valid host\n", url);
            rc = 2;
        } else if (px_path_normalize(path, strlen(path), &norm, NULL, &why) < 0) {
            /* What a request for this URL gets: 400 before any rule. */
            fprintf(stderr, "connector: %s is refused with 400: %s\n", url, px_path_strerror(why));
            rc = 2;
        } else {
            /* Rules match the normalised path, as for a request. */
            const struct cn_rule *r = cn_ingress_match(ing, host, norm);
            if (!r) {
                fprintf(stderr, "connector: out of memory\n");
                rc = 1;
            } else
                printf("rule #%zu: hostname %s, path %s, service %s%s%s%s\n", r->index + 1,
                       r->hostname[0] ? r->hostname : "(any)", r->path ? r->path : "(any)",
                       r->service,
                       r->o.access_required ? ", identity assertion required for audience " : "",
                       !r->o.access_required  ? ""
                       : r->o.access_audience ? r->o.access_audience
                                              : host,
                       r->o.origin_pull ? ", presents the tunnel's origin-pull certificate "
                                          "(originPull)"
                                        : "");
        }
        free(norm);
    }
    cn_ingress_unref(ing);
    return rc;
}

/* Threads cost memory here, and the connector needs few: before any exists,
 * size what makes them. */
static void limit_threads(void)
{
    /* libuv's thread pool only resolves the edges' names (uv_getaddrinfo).
     * Its default of 4 threads each dirty a stack and wolfSSL's thread-local
     * ECC caches (366 KB a thread with WOLFSSL=source, 50 KB with Debian's).
     * Two keep one slow DNS answer from holding up every link's. A value the
     * user set wins. */
    setenv("UV_THREADPOOL_SIZE", "2", 0);
    /* One loop thread does the work; the pool's threads and curl's resolver
     * threads each got a malloc arena of their own (a heap that stays
     * partly resident) for a few small allocations. */
    mallopt(M_ARENA_MAX, 1);
}

int main(int argc, char **argv)
{
    limit_threads();
    if (rt_cli_help(argc, argv, cn_usage, usage, stdout))
        return 0;
    if (rt_proc_init("connector") < 0)
        return 1;
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("connector %s\n", PX_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "ingress") == 0)
        return cmd_ingress(argc, argv);
    if (strcmp(argv[1], "access") == 0)
        return cn_access_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "service") == 0)
        return cn_service_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "run") == 0 || strcmp(argv[1], "tunnel") == 0) {
        int shift = 1;
        if (strcmp(argv[1], "tunnel") == 0) {
            /* cloudflared muscle memory: `connector tunnel run --token ...` */
            if (argc < 3 || strcmp(argv[2], "run") != 0) {
                fprintf(stderr, "connector: unknown command (try connector --help)\n");
                return 2;
            }
            shift = 2;
        }
        struct cn_config cfg;
        int rc = cn_config_parse_run(argc - shift, argv + shift, &cfg);
        if (rc == 1) {
            usage(stdout);
            return 0;
        }
        if (rc != 0)
            return rc;
        hide_token(argc, argv);
        px_log_set_level(cfg.loglevel);
        px_log_set_format(cfg.log_format);
        rc = cn_supervisor_run(&cfg);
        cn_config_cleanup(&cfg);
        return rc;
    }
    fprintf(stderr, "connector: unknown command '%s' (try connector --help)\n", argv[1]);
    return 2;
}
