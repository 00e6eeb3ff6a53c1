/* es_usage: each edge-sim subcommand's usage text, for `--help` on it
 * (rt_cli_help in main). `serve`'s options are in es_main.c's usage, the
 * program's whole usage. docs/man/edge-sim.1 says the same at length:
 * change both together. */
#ifndef ES_USAGE_H
#define ES_USAGE_H

#include "rt_cli.h"

/* Every subcommand's usage, for rt_cli_help; ends with {NULL, NULL}. */
extern const struct rt_cli_usage es_usage[];

#endif
