#include "es_service.h"
#include "es_server.h"
#include "px_err.h"
#include "rt_service.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The unit's name, state directory and dynamic user. */
#define NAME "edge-sim"
/* The data dir: the unit's state directory (%S is /var/lib). */
#define DATA_DIR "/var/lib/" NAME
#define EXEC_FIXED "serve --data-dir %S/" NAME
/* With --env-file: more serve options from the environment file. */
#define ENV_VAR "$EDGE_SIM_OPTS"

static int fail(int code, const char *msg)
{
    fprintf(stderr, "edge-sim: %s\n", msg);
    return code;
}

/* Checks rest as serve's options (with the unit's data dir). Returns 0
 * with *srv, or the exit status. */
static int check_serve(es_serve_check check, const char *const *rest, size_t n_rest,
                       const struct es_server **srv)
{
    char **argv = calloc(n_rest + 4, sizeof(*argv));
    if (!argv)
        return fail(1, "out of memory");
    int argc = 0;
    argv[argc++] = "serve";
    argv[argc++] = "--data-dir";
    argv[argc++] = DATA_DIR;
    for (size_t i = 0; i < n_rest; i++)
        argv[argc++] = (char *)rest[i];
    int rc = check(argc, argv, srv);
    free(argv);
    return rc;
}

static int install_or_unit(int install, int argc, char **argv, es_serve_check check)
{
    const char *unit_dir = RT_SERVICE_UNIT_DIR, *bin = NULL, *env_file = NULL;
    int no_start = 0;
    const struct rt_service_opt opts[] = {
        {"unit-dir", install ? &unit_dir : NULL, NULL,
         install ? NULL : "service unit writes no file: --unit-dir goes with install"},
        {"bin", &bin, NULL, NULL},
        {"env-file", &env_file, NULL, NULL},
        {"no-start", NULL, install ? &no_start : NULL,
         install ? NULL : "service unit starts nothing: --no-start goes with install"},
        {"data-dir", NULL, NULL,
         "the service keeps its data in " DATA_DIR " (StateDirectory=" NAME
         "): leave out --data-dir"},
        {NULL, NULL, NULL, NULL}};
    const char **rest = calloc((size_t)argc + 1, sizeof(*rest));
    char bin_abs[PATH_MAX], why[1024];
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
    if ((bin && bin[0] != '/' && !install) || (env_file && env_file[0] != '/')) {
        rc = fail(2, "give --bin and --env-file as absolute paths");
        goto out;
    }
    if (bin && !install) {
        snprintf(bin_abs, sizeof(bin_abs), "%s", bin);
    } else if (!realpath(bin ? bin : "/proc/self/exe", bin_abs)) {
        fprintf(stderr, "edge-sim: cannot use binary %s: %m\n", bin ? bin : "/proc/self/exe");
        goto out;
    }
    if (install && access(bin_abs, X_OK) < 0) {
        fprintf(stderr, "edge-sim: --bin %s is not an executable: %m\n", bin_abs);
        goto out;
    }
    const struct es_server *srv = NULL;
    if ((rc = check_serve(check, rest, n_rest, &srv)) != 0)
        goto out;
    rc = 1;
    struct rt_service s = {
        .name = NAME,
        .description = "Tunnel edge (edge-sim serve)",
        .writer = install ? "edge-sim service install" : NULL,
        .bin = bin_abs,
        .exec_fixed = env_file ? EXEC_FIXED " " ENV_VAR : EXEC_FIXED,
        .args = rest,
        .n_args = n_rest,
        .env_file = env_file,
        /* Only where man finds edge-sim(1), or systemd-analyze verify fails;
         * `service unit` (for packages) asks no man: its text is the same
         * everywhere. */
        .man_page = install && rt_service_man_page("man", NAME),
        .low_ports = rt_service_low_port(srv->tunnel_addr) ||
                     rt_service_low_port(srv->https_addr) || rt_service_low_port(srv->admin_addr),
        /* The drain: GOAWAY notice, --grace-period, the final GOAWAY. */
        .stop_timeout_s = srv->grace_ms / 1000 + 15,
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
    printf("the data dir is %s; while the service runs, its admin API's token is in "
           "/var/lib/private/" NAME "/admin.token\n",
           DATA_DIR);
    rc = 0;
out:
    free(rest);
    return rc;
}

int es_service_main(int argc, char **argv, es_serve_check check)
{
    const char *sub = argc > 1 ? argv[1] : "";
    if (strcmp(sub, "install") == 0)
        return install_or_unit(1, argc - 2, argv + 2, check);
    if (strcmp(sub, "unit") == 0)
        return install_or_unit(0, argc - 2, argv + 2, check);
    if (strcmp(sub, "uninstall") == 0)
        return rt_service_uninstall_cmd("edge-sim", argc - 2, argv + 2);
    return fail(2, "service needs a subcommand: install, uninstall or unit (see edge-sim service "
                   "--help)");
}
