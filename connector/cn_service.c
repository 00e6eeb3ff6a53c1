#include "cn_service.h"
#include "cn_config.h"
#include "cn_usage.h"
#include "px_err.h"
#include "rt_cli.h"
#include "rt_service.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The unit's name, state directory and dynamic user. */
#define NAME "connector"
/* What `run` reads the token from inside the unit: the credential. */
#define EXEC_FIXED "run --token-file %d/" RT_SERVICE_CREDENTIAL

static int fail(int code, const char *msg)
{
    fprintf(stderr, "connector: %s\n", msg);
    return code;
}

/* The value of --name in the daemon's options (the last one), or NULL. */
static const char *find_opt(const char *const *words, size_t n, const char *name)
{
    const char *v = NULL;
    size_t len = strlen(name);
    for (size_t i = 0; i < n; i++) {
        const char *w = words[i];
        if (strncmp(w, "--", 2) != 0 || strncmp(w + 2, name, len) != 0)
            continue;
        if (w[2 + len] == '=')
            v = w + 3 + len;
        else if (w[2 + len] == '\0' && i + 1 < n)
            v = words[i + 1];
    }
    return v;
}

/* Checks the run options as `connector run` will (argv: run --token-file
 * TOKEN ARGS...). Returns 0 with *grace_s (the drain's --grace-period), or
 * the exit status. */
static int check_run(const char *token, const char *const *args, size_t n_args, unsigned *grace_s)
{
    char **argv = calloc(n_args + 4, sizeof(*argv));
    if (!argv)
        return fail(1, "out of memory");
    int argc = 0;
    argv[argc++] = "run";
    argv[argc++] = "--token-file";
    argv[argc++] = (char *)token;
    for (size_t i = 0; i < n_args; i++)
        argv[argc++] = (char *)args[i];
    struct cn_config cfg;
    int rc = cn_config_parse_run(argc, argv, &cfg);
    if (rc == 0) {
        *grace_s = cfg.grace_period_ms / 1000;
        cn_config_cleanup(&cfg);
    }
    free(argv);
    return rc == 1 ? 0 : rc;
}

/* *out = path made absolute (realpath: it must exist), or exit status. */
static int absolute(const char *path, const char *what, char *out)
{
    if (!realpath(path, out)) {
        fprintf(stderr, "connector: cannot use %s %s: %m\n", what, path);
        return 1;
    }
    return 0;
}

static int install_or_unit(int install, int argc, char **argv)
{
    const char *token = NULL, *config = NULL, *unit_dir = RT_SERVICE_UNIT_DIR, *bin = NULL;
    int no_start = 0;
    unsigned grace = 30; /* run's default --grace-period */
    const struct rt_service_opt opts[] = {
        {"token-file", &token, NULL, NULL},
        {"config", &config, NULL, NULL},
        {"unit-dir", install ? &unit_dir : NULL, NULL,
         install ? NULL : "service unit writes no file: --unit-dir goes with install"},
        {"bin", &bin, NULL, NULL},
        {"no-start", NULL, install ? &no_start : NULL,
         install ? NULL : "service unit starts nothing: --no-start goes with install"},
        {"token", NULL, NULL,
         "the token never goes on a command line: put it in a file only root can read "
         "(chmod 600) and give --token-file FILE"},
        {"state-dir", NULL, NULL,
         "the service keeps its state in /var/lib/" NAME " (StateDirectory=" NAME
         "): leave out --state-dir"},
        {NULL, NULL, NULL, NULL}};
    const char **rest = calloc((size_t)argc + 1, sizeof(*rest));
    char tok_abs[PATH_MAX], cfg_abs[PATH_MAX], bin_abs[PATH_MAX], why[1024];
    const char **args = NULL;
    size_t n_rest = 0;
    int rc = 1;
    if (!rest) {
        rc = fail(1, "out of memory");
        goto out;
    }
    if (rt_service_args(argc, argv, opts, rest, &n_rest, why, sizeof(why)) < 0) {
        rc = fail(2, why);
        goto out;
    }
    if (!token) {
        rc = fail(2, "service needs --token-file FILE (the tunnel token, a file of mode 0600)");
        goto out;
    }
    if (install) {
        /* Inside the unit, relative paths would be relative to /. */
        if ((rc = absolute(token, "token file", tok_abs)) != 0 ||
            (config && (rc = absolute(config, "config file", cfg_abs)) != 0) ||
            (rc = absolute(bin ? bin : "/proc/self/exe", "binary", bin_abs)) != 0)
            goto out;
        if (rt_service_check_secret(tok_abs, "token file", why, sizeof(why)) < 0) {
            rc = fail(1, why);
            goto out;
        }
        const char *hidden = NULL;
        if (config &&
            rt_service_check_readable(cfg_abs, "config file", &hidden, why, sizeof(why)) < 0) {
            rc = fail(1, why);
            goto out;
        }
        if (hidden)
            fprintf(stderr,
                    "connector: warning: the service will not see config file %s (%s hides "
                    "it); move it, e.g. to /etc/" NAME "/config.json\n",
                    cfg_abs, hidden);
        if (access(bin_abs, X_OK) < 0) {
            fprintf(stderr, "connector: --bin %s is not an executable: %m\n", bin_abs);
            rc = 1;
            goto out;
        }
    } else {
        if (token[0] != '/' || (config && config[0] != '/') || (bin && bin[0] != '/')) {
            rc = fail(2, "service unit needs absolute paths (--token-file, --config, --bin)");
            goto out;
        }
        snprintf(tok_abs, sizeof(tok_abs), "%s", token);
        snprintf(cfg_abs, sizeof(cfg_abs), "%s", config ? config : "");
        if (!bin && (rc = absolute("/proc/self/exe", "binary", bin_abs)) != 0)
            goto out;
        if (bin)
            snprintf(bin_abs, sizeof(bin_abs), "%s", bin);
    }
    args = calloc(n_rest + 4, sizeof(*args));
    if (!args) {
        rc = fail(1, "out of memory");
        goto out;
    }
    size_t n_args = 0;
    if (config) {
        args[n_args++] = "--config";
        args[n_args++] = cfg_abs;
    }
    /* A fixed address for Prometheus to scrape: run's default is a free
     * port, a new one at every restart. Before the operator's words, so that
     * a --metrics of theirs (even abbreviated) wins. */
    if (!find_opt(rest, n_rest, "metrics")) {
        args[n_args++] = "--metrics";
        args[n_args++] = CN_SERVICE_METRICS_ADDR;
    }
    for (size_t i = 0; i < n_rest; i++)
        args[n_args++] = rest[i];
    if (install && (rc = check_run(tok_abs, args, n_args, &grace)) != 0)
        goto out;
    unsigned long g_arg;
    const char *g = find_opt(rest, n_rest, "grace-period");
    if (!install && g && rt_cli_uint(g, 0, 3600, &g_arg) == 0)
        grace = (unsigned)g_arg; /* unchecked (service unit): as written */
    struct rt_service s = {
        .name = NAME,
        .description = "Tunnel connector: serves local services through the edge",
        .writer = install ? "connector service install" : NULL,
        .bin = bin_abs,
        .exec_fixed = EXEC_FIXED,
        .args = args,
        .n_args = n_args,
        .token_file = tok_abs,
        /* Only where man finds connector(1), or systemd-analyze verify
         * fails; `service unit` (for packages) asks no man: its text is the
         * same everywhere. */
        .man_page = install && rt_service_man_page("man", NAME),
        .reload_hup = config != NULL,
        /* The drain (--grace-period) and the edge's goodbye. */
        .stop_timeout_s = grace + 15,
    };
    const struct rt_service_host host = {unit_dir, RT_SERVICE_SYSTEMD_DIR, "systemctl", !no_start};
    int r = rt_service_emit(&s, install ? &host : NULL, NAME, stdout, why, sizeof(why));
    if (r < 0) {
        rc = fail(r == PX_ERR_INVAL ? 2 : 1, why);
        goto out;
    }
    if (!install) {
        rc = 0;
        goto out;
    }
    rc = 0;
out:
    free(args);
    free(rest);
    return rc;
}

int cn_service_main(int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "";
    if (strcmp(sub, "install") == 0)
        return install_or_unit(1, argc - 2, argv + 2);
    if (strcmp(sub, "unit") == 0)
        return install_or_unit(0, argc - 2, argv + 2);
    if (strcmp(sub, "uninstall") == 0)
        return rt_service_uninstall_cmd("connector", argc - 2, argv + 2);
    fputs(cn_usage_service, stderr);
    return 2;
}
