/* es_cli: what the offline subcommands share (es_main.c): opening the data
 * dir's keys and database, and reporting usage errors. */
#ifndef ES_CLI_H
#define ES_CLI_H

#include "es_certs.h"
#include "es_store.h"

#include <stddef.h>

#define ES_DEFAULT_SERVER_NAME "tunnel.edge-sim.internal"

struct es_offline {
    struct es_store store;
    struct es_certs certs;
    WC_RNG rng; /* the command's own: it runs no loop */
};

/* Seeds o->rng and opens dir's keys and database; prints why and returns -1
 * on failure. es_offline_close undoes a successful open. */
int es_offline_open(struct es_offline *o, const char *dir);
void es_offline_close(struct es_offline *o);
/* Prints "edge-sim: msg arg" on stderr and returns 2 (a usage error). */
int es_cli_fail(const char *msg, const char *arg);
/* 1 if n is 1-64 letters, digits, '-', '_' or '.'. */
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

/* The access subcommands (es_cli_access.c); argv[0] is the command name.
 * Return the process exit code. */
int es_cli_client_cert(int argc, char **argv);
int es_cli_client_ca(int argc, char **argv);
int es_cli_access(int argc, char **argv);
/* The origin subcommands (es_cli_origin.c): origin-cert, origin-ca, origin-pull-ca. */
int es_cli_origin_cert(int argc, char **argv);
int es_cli_origin_ca(int argc, char **argv);
int es_cli_origin_pull_ca(int argc, char **argv);

#endif
