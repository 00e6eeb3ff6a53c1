/* edge-sim admin token: the admin API's bearer token for the operator. */
#include "es_admin_token.h"
#include "es_cli.h"

#include <stdio.h>
#include <string.h>

int es_cli_admin(int argc, char **argv)
{
    static const struct option opts[] = {ES_CLI_WHERE_OPTS, RT_CLI_END};
    struct es_where w = es_where_default();
    const struct rt_cli_keep keep[] = {ES_CLI_WHERE_KEEP(w), {0, NULL}};
    struct rt_cli cli;
    rt_cli_start(&cli, argc, argv, opts, keep);
    if (rt_cli_next(&cli) < 0)
        return es_cli_bad_option(&cli);
    const char *sub, *arg;
    if (es_cli_words(&cli, "admin needs a subcommand: token", &sub, &arg) != 0)
        return 2;
    if (strcmp(sub, "token") != 0)
        return es_cli_fail("unknown admin subcommand ", sub);
    if (arg)
        return es_cli_fail("unexpected argument ", arg);
    /* Opened as every subcommand opens it: a new data dir is set up the way
     * serve sets it up, and one others may use is refused. */
    struct es_offline o;
    const char *dir = w.dir;
    if (es_offline_open(&o, &w) < 0 || (es_sql_spec_is_pg(o.spec) && es_cli_private_dir(dir) < 0))
        return 1;
    char token[ES_ADMIN_TOKEN_MAX + 1], why[1024];
    int created = 0;
    int rc = es_admin_token_load(dir, &o.rng, 1, token, &created, why, sizeof(why));
    es_offline_close(&o);
    if (rc < 0) {
        fprintf(stderr, "edge-sim: %s\n", why);
        return 1;
    }
    printf("%s\n", token);
    memset(token, 0, sizeof(token));
    if (created)
        fprintf(stderr, "edge-sim: made a new admin token in %s/%s\n", dir, ES_ADMIN_TOKEN_FILE);
    return 0;
}
