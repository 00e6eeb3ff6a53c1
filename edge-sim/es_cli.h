/* es_cli: what the offline subcommands share (es_main.c): opening the data
 * dir's keys and database, and reporting usage errors. */
#ifndef ES_CLI_H
#define ES_CLI_H

#include "es_certs.h"
#include "es_op.h"
#include "es_store.h"
#include "rt_cli.h"

#include <stddef.h>

#define ES_DEFAULT_SERVER_NAME "tunnel.edge-sim.internal"

/* Where a command's state is. Every subcommand takes the three options:
 *   --data-dir DIR       this machine's files (default ./edge-data): the
 *                        SQLite store and CA files unless --store says
 *                        otherwise, the admin token
 *   --store SPEC         (or EDGE_STORE) a postgres:// address shared by
 *                        several edges, or a data dir; default: --data-dir
 *   --ca-key-file FILE   (or EDGE_CA_KEY_FILE) the key that seals the CAs
 *                        in a PostgreSQL store (es_seal); needed with one */
struct es_where {
    const char *dir;
    const char *store;
    const char *ca_key_file;
};
#define ES_CLI_WHERE_OPTS                                                                          \
    RT_CLI_ARG("data-dir", 'd'), RT_CLI_ARG("store", 'S'), RT_CLI_ARG("ca-key-file", 'K')
#define ES_CLI_WHERE_KEEP(w)                                                                       \
    {'d', &(w).dir}, {'S', &(w).store},                                                            \
    {                                                                                              \
        'K', &(w).ca_key_file                                                                      \
    }
/* The defaults: ./edge-data, and EDGE_STORE / EDGE_CA_KEY_FILE if set. */
struct es_where es_where_default(void);
/* The store spec (es_store_open): --store, else the data dir. */
const char *es_where_spec(const struct es_where *w);

struct es_offline {
    struct es_store store;
    struct es_certs certs;
    WC_RNG rng; /* the command's own: it runs no loop */
    const char *spec;
};

/* Seeds o->rng and opens w's keys and database (for a PostgreSQL store:
 * the CAs in it, opened with w->ca_key_file); prints why and returns -1 on
 * failure. es_offline_close undoes a successful open. */
int es_offline_open(struct es_offline *o, const struct es_where *w);
void es_offline_close(struct es_offline *o);
/* Loads the seal key of a PostgreSQL store from w->ca_key_file into *key.
 * Returns 0, or -1 after saying why on stderr (none given, unreadable,
 * malformed). */
struct es_seal_key;
int es_cli_seal_key(const struct es_where *w, struct es_seal_key *key);
/* Makes dir (0700) if missing and checks that only this user may use it.
 * Returns 0, or -1 after saying why. */
int es_cli_private_dir(const char *dir);
/* The context of the shared operations (es_op.h) on o's store. */
struct es_op_ctx es_cli_op_ctx(struct es_offline *o);
/* Prints "edge-sim: msg arg" on stderr and returns 2 (a usage error). */
int es_cli_fail(const char *msg, const char *arg);
/* Prints "edge-sim: unknown or incomplete option ARG" for what c did not
 * understand (rt_cli_next returned -1) and returns 2. */
int es_cli_bad_option(const struct rt_cli *c);
/* The words after c's options: a subcommand and at most one argument.
 * Returns 0 with *sub and *arg (NULL if none), or 2 after printing need (no
 * subcommand) or "unexpected argument" (a third word). */
int es_cli_words(const struct rt_cli *c, const char *need, const char **sub, const char **arg);
/* --days N of a certificate: 1..max. Returns 0 and *out, or 2 after saying
 * why. */
int es_cli_days(const char *s, unsigned long max, unsigned long *out);
/* 1 if n is 1-64 letters, digits, '-', '_' or '.' (es_op_valid_name). */
int es_cli_valid_name(const char *n);
/* Parses a duration "N" followed by s, m, h or d (a bare N is seconds) into
 * seconds. Returns 0 and *out, or -1 when malformed or outside min..max. */
int es_cli_parse_duration(const char *s, long long min, long long max, long long *out);

/* Reads a text file an operator named (a CA bundle, CRL or CSR), at most
 * 1 MiB. Returns a malloc'd string, or NULL after printing why ("cannot
 * read <what> <path>: ..."). */
char *es_cli_read_input(const char *path, const char *what);
/* Writes len bytes to path with mode 0600 (rt_file_write_private_len).
 * Returns 0, or < 0 after printing why. */
int es_cli_write_private(const char *path, const void *data, size_t len);

struct px_cert_info;
/* The key a certificate is issued for. With csr_path: the public key of
 * that certificate request, its signature checked (*key stays NULL: the
 * private key stays with the request's owner). Without: a new P-256 key
 * (*key, PEM, from rng) and its public half. Returns 0 with *pub (and *key)
 * to free, or -1 after saying why on stderr (*key and *pub then NULL). */
int es_cli_cert_key(WC_RNG *rng, const char *csr_path, char **key, char **pub);
/* Reads back the first certificate of cert_pem, just issued, into ci (clean
 * it with px_cert_info_cleanup). Returns 0, or -1 after saying why. */
int es_cli_cert_info(const char *cert_pem, struct px_cert_info *ci);

/* The access subcommands (es_cli_access.c); argv[0] is the command name.
 * Return the process exit code. */
int es_cli_client_cert(int argc, char **argv);
int es_cli_client_ca(int argc, char **argv);
int es_cli_access(int argc, char **argv);
/* The CAs a data dir holds, for es_cli_print_ca. */
enum es_cli_ca { ES_CLI_BROWSER_CA, ES_CLI_ORIGIN_CA, ES_CLI_ORIGIN_PULL_CA };
/* ca, origin-ca and origin-pull-ca [--data-dir DIR]: prints that CA's PEM
 * on stdout. Returns the process exit code. */
int es_cli_print_ca(int argc, char **argv, enum es_cli_ca which);
/* The origin subcommands (es_cli_origin.c): origin-cert, origin-ca, origin-pull-ca. */
int es_cli_origin_cert(int argc, char **argv);
int es_cli_origin_ca(int argc, char **argv);
int es_cli_origin_pull_ca(int argc, char **argv);
/* admin token [--data-dir DIR] (es_cli_admin.c): prints the admin API's
 * bearer token, creating it if missing. Returns the process exit code. */
int es_cli_admin(int argc, char **argv);
/* store migrate|keygen FILE|export --out FILE|import FILE (es_cli_store.c).
 * Returns the process exit code. */
int es_cli_store(int argc, char **argv);

#endif
