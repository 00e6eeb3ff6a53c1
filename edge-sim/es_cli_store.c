/* edge-sim store: the store itself.
 *   migrate            brings a PostgreSQL store's schema up to date
 *   keygen FILE        writes a new key to seal the CAs with (--ca-key-file)
 *   export --out FILE  writes the store (tunnels, routes, access, CAs) as JSON
 *   import FILE        reads such a file into a new PostgreSQL store */
#include "es_cli.h"
#include "es_seal.h"
#include "es_store_copy.h"
#include "px_err.h"
#include "px_json.h"
#include "rt_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int store_migrate(const struct es_where *w)
{
    char why[1024];
    int from, to;
    const char *spec = es_where_spec(w);
    if (es_store_migrate(spec, &from, &to, why, sizeof(why)) < 0) {
        fprintf(stderr, "edge-sim: %s\n", why);
        return 1;
    }
    if (!es_sql_spec_is_pg(spec))
        fprintf(stderr, "edge-sim: the SQLite store in %s is up to date (it updates itself)\n",
                spec);
    else if (from == to)
        fprintf(stderr, "edge-sim: schema already at version %d\n", to);
    else
        fprintf(stderr, "edge-sim: schema migrated from version %d to %d\n", from, to);
    return 0;
}

static int store_keygen(const char *path)
{
    WC_RNG rng;
    char why[1024];
    if (wc_InitRng(&rng) != 0) {
        fprintf(stderr, "edge-sim: cannot seed a random generator\n");
        return 1;
    }
    struct es_seal_key key;
    int rc = es_seal_key_create(path, &rng, &key, why, sizeof(why));
    wc_FreeRng(&rng);
    if (rc < 0) {
        fprintf(stderr, "edge-sim: %s\n", why);
        return 1;
    }
    fprintf(stderr,
            "edge-sim: wrote key %s to %s; give every edge sharing the store a copy "
            "(--ca-key-file), and keep one safe: the CAs in the store cannot be opened "
            "without it\n",
            key.id, path);
    es_seal_key_wipe(&key);
    return 0;
}

static int store_export(const struct es_where *w, const char *out)
{
    struct es_offline o;
    if (es_offline_open(&o, w) < 0)
        return 1;
    json_t *doc = NULL;
    char *text = NULL;
    int rc = es_store_export(&o.store, &o.certs, &doc);
    if (rc == 0 && !(text = px_json_dumps(doc, JSON_INDENT(1) | JSON_SORT_KEYS)))
        rc = PX_ERR_NOMEM;
    json_decref(doc);
    es_offline_close(&o);
    if (rc < 0) {
        fprintf(stderr, "edge-sim: cannot read the store: %s\n", px_strerror(rc));
        free(text);
        return 1;
    }
    /* It holds the CA keys in clear: as private as the data dir. */
    rc = es_cli_write_private(out, text, strlen(text));
    explicit_bzero(text, strlen(text));
    free(text);
    if (rc < 0)
        return 1;
    fprintf(stderr,
            "edge-sim: wrote %s (it holds the CA keys in clear: keep it as safe as the data "
            "dir, and delete it once imported)\n",
            out);
    return 0;
}

static int store_import(const struct es_where *w, const char *path)
{
    const char *spec = es_where_spec(w);
    if (!es_sql_spec_is_pg(spec))
        return es_cli_fail("import goes into a PostgreSQL store: give --store postgres://...",
                           NULL);
    char why[1024];
    int err = 0;
    char *text = rt_file_read(path, 64 << 20, NULL, &err);
    if (!text) {
        fprintf(stderr, "edge-sim: cannot read %s: %s\n", path,
                err == EFBIG ? "larger than 64 MiB" : strerror(err));
        return 1;
    }
    json_error_t je;
    json_t *doc = json_loads(text, 0, &je);
    explicit_bzero(text, strlen(text));
    free(text);
    if (!doc) {
        fprintf(stderr, "edge-sim: %s is not JSON: line %d: %s\n", path, je.line, je.text);
        return 1;
    }
    struct es_seal_key key;
    struct es_store st = {0};
    WC_RNG rng;
    int rc = 1, rng_ok = 0;
    size_t n = 0;
    if (es_cli_seal_key(w, &key) < 0)
        goto out;
    if (wc_InitRng(&rng) != 0) {
        fprintf(stderr, "edge-sim: cannot seed a random generator\n");
        goto out_key;
    }
    rng_ok = 1;
    if (es_store_open(&st, spec, why, sizeof(why)) < 0 || es_store_set_seal(&st, &key, &rng) < 0 ||
        es_store_import(&st, doc, &key, &rng, &n, why, sizeof(why)) < 0) {
        fprintf(stderr, "edge-sim: %s\n", why);
        goto out_key;
    }
    fprintf(stderr,
            "edge-sim: imported %zu tunnel(s) and the CAs into %s; restart any edge already "
            "serving from it\n",
            n, es_sql_target(st.db));
    rc = 0;
out_key:
    es_seal_key_wipe(&key);
out:
    es_store_close(&st);
    if (rng_ok)
        wc_FreeRng(&rng);
    json_decref(doc);
    return rc;
}

int es_cli_store(int argc, char **argv)
{
    static const struct option opts[] = {ES_CLI_WHERE_OPTS, RT_CLI_ARG("out", 'o'), RT_CLI_END};
    struct es_where w = es_where_default();
    const char *out = NULL;
    const struct rt_cli_keep keep[] = {ES_CLI_WHERE_KEEP(w), {'o', &out}, {0, NULL}};
    struct rt_cli cli;
    rt_cli_start(&cli, argc, argv, opts, keep);
    if (rt_cli_next(&cli) < 0)
        return es_cli_bad_option(&cli);
    const char *sub, *arg;
    if (es_cli_words(&cli, "store needs a subcommand: migrate, keygen, export or import", &sub,
                     &arg) != 0)
        return 2;
    if (out && strcmp(sub, "export") != 0)
        return es_cli_fail("--out goes with export", NULL);
    if (strcmp(sub, "migrate") == 0) {
        if (arg)
            return es_cli_fail("unexpected argument ", arg);
        return store_migrate(&w);
    }
    if (strcmp(sub, "keygen") == 0) {
        if (!arg)
            return es_cli_fail("store keygen needs a FILE to write the key to", NULL);
        return store_keygen(arg);
    }
    if (strcmp(sub, "export") == 0) {
        if (arg)
            return es_cli_fail("unexpected argument ", arg);
        if (!out)
            return es_cli_fail("store export needs --out FILE", NULL);
        return store_export(&w, out);
    }
    if (strcmp(sub, "import") == 0) {
        if (!arg)
            return es_cli_fail("store import needs the FILE store export wrote", NULL);
        return store_import(&w, arg);
    }
    return es_cli_fail("unknown store subcommand ", sub);
}
