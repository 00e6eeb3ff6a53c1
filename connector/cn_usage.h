/* cn_usage: each connector subcommand's usage text, for `--help` on it
 * (rt_cli_help in main) and for its usage errors. `run`'s options are in
 * cn_main.c's usage, the program's whole usage. docs/man/connector.1 says
 * the same at length: change both together. */
#ifndef CN_USAGE_H
#define CN_USAGE_H

#include "rt_cli.h"

/* Every subcommand's usage, for rt_cli_help; ends with {NULL, NULL}. */
extern const struct rt_cli_usage cn_usage[];

extern const char cn_usage_ingress[];
extern const char cn_usage_access_tcp[];
extern const char cn_usage_service[];

#endif
