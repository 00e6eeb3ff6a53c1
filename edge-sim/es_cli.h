/* es_cli: what the offline subcommands share (es_main.c): opening the data
 * dir's keys and database, and reporting usage errors. */
#ifndef ES_CLI_H
#define ES_CLI_H

#include "es_certs.h"
#include "es_store.h"

#define ES_DEFAULT_SERVER_NAME "tunnel.edge-sim.internal"

struct es_offline {
    struct es_store store;
    struct es_certs certs;
};

/* Opens dir's keys and database; prints why and returns -1 on failure. */
int es_offline_open(struct es_offline *o, const char *dir);
void es_offline_close(struct es_offline *o);
/* Prints "edge-sim: msg arg" on stderr and returns 2 (a usage error). */
int es_cli_fail(const char *msg, const char *arg);
/* 1 if n is 1-64 letters, digits, '-', '_' or '.'. */
int es_cli_valid_name(const char *n);

/* The access subcommands (es_cli_access.c); argv[0] is the command name.
 * Return the process exit code. */
int es_cli_client_cert(int argc, char **argv);
int es_cli_client_ca(int argc, char **argv);
int es_cli_access(int argc, char **argv);

#endif
