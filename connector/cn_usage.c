#include "cn_usage.h"

const char cn_usage_ingress[] =
    "usage: connector ingress validate --config FILE\n"
    "       connector ingress rule --config FILE https://host/path\n"
    "\n"
    "validate checks an ingress configuration (JSON) as `run --config` loads it,\n"
    "printing every problem; exit status 0 only when it is valid.\n"
    "rule prints the rule a request for the URL would match (the path is\n"
    "normalised first, as for a request), or why the URL would be refused.\n";

static const char validate_text[] =
    "usage: connector ingress validate --config FILE\n"
    "\n"
    "Checks the ingress configuration FILE (JSON) as `connector run --config`\n"
    "loads it: prints the number of rules and the hostnames they register, or\n"
    "every problem found, one per line. Exit status 0 when valid, 1 when not.\n"
    "  --config FILE   the configuration to check\n";

static const char rule_text[] =
    "usage: connector ingress rule --config FILE https://host/path\n"
    "\n"
    "Prints the rule of FILE that a request for URL would match: its number,\n"
    "hostname, path and service (and whether it requires the edge's identity\n"
    "assertion or presents the origin-pull certificate). The path is normalised\n"
    "first, as for a request; a URL whose path a request could not have is\n"
    "reported with the reason it would get 400. Exit status 0, or 2.\n"
    "  --config FILE   the configuration to match against\n";

const char cn_usage_access_tcp[] =
    "usage: connector access tcp --hostname HOST [--url LISTEN_ADDR:PORT]\n"
    "                            [--edge HOST:PORT] [--edge-ca FILE]\n"
    "                            [--cert FILE --key FILE] [--loglevel LEVEL]\n"
    "\n"
    "Carries TCP connections to the tunnel's tcp:// or ssh:// service HOST.\n"
    "Without --url it carries stdin/stdout (for ssh -o ProxyCommand=...).\n"
    "  --hostname HOST     the public hostname routed to the TCP service\n"
    "  --url ADDR:PORT     listen there and carry each connection accepted\n"
    "  --edge HOST:PORT    the edge to dial (default HOST:443)\n"
    "  --edge-ca FILE      a CA (PEM) trusted for the edge besides the system\n"
    "                      store, e.g. the output of `edge-sim ca`\n"
    "  --cert/--key FILE   a client certificate (PEM, with its chain) and its private\n"
    "                      key (PEM, a file only you can read) to present to the edge,\n"
    "                      for hostnames whose access policy requires one\n"
    "  --loglevel LEVEL    debug, info, warn or error (default warn)\n";

#define SERVICE_INSTALL                                                                            \
    "usage: connector service install --token-file FILE [--config FILE] [run options]\n"           \
    "                                 [--unit-dir DIR] [--bin PATH] [--no-start]\n"
#define SERVICE_UNINSTALL "       connector service uninstall [--unit-dir DIR]\n"
#define SERVICE_UNIT                                                                               \
    "       connector service unit --token-file FILE [--config FILE] [run options]\n"              \
    "                              [--bin PATH]\n"
#define SERVICE_OPTIONS                                                                            \
    "  --token-file FILE   the tunnel token: a file of mode 0600 or stricter, which\n"             \
    "                      stays root's; the unit hands it over with LoadCredential=\n"            \
    "                      (the token never goes on a command line: no --token)\n"                 \
    "  --config FILE       the ingress configuration; the service, a dynamic user,\n"              \
    "                      must be able to read it (systemctl reload re-reads it)\n"               \
    "  --bin PATH          the binary the unit runs (default: this one)\n"                         \
    "The unit serves /metrics, /ready and /healthcheck on a fixed address,\n"                      \
    "127.0.0.1:20241, unless the run options give --metrics.\n"
#define INSTALL_OPTIONS                                                                            \
    "  --unit-dir DIR      where the unit goes (default /etc/systemd/system)\n"                    \
    "  --no-start          write the unit only, and print the commands that start it\n"

const char cn_usage_service[] = SERVICE_INSTALL SERVICE_UNINSTALL SERVICE_UNIT
    "\n"
    "install writes connector.service, a hardened systemd unit that runs `connector\n"
    "run` with the options given (see connector run --help; give files with absolute\n"
    "paths) as a dynamic user, its state in /var/lib/connector (StateDirectory=),\n"
    "and enables and starts it where systemd runs, else prints the commands that do.\n"
    "The options are checked as `connector run` checks them (the token is read)\n"
    "before anything is written.\n" SERVICE_OPTIONS INSTALL_OPTIONS
    "uninstall stops and disables connector.service and removes its unit (the state\n"
    "stays in /var/lib/private/connector). unit prints the unit install would write,\n"
    "on stdout, checking no file (for packages).\n";

static const char install_text[] = SERVICE_INSTALL
    "\n"
    "Writes DIR/connector.service, a hardened systemd unit (DynamicUser=yes,\n"
    "StateDirectory=connector, ProtectSystem=strict, NoNewPrivileges=yes,\n"
    "Restart=on-failure, no capabilities) that runs `connector run` with the run\n"
    "options given (see connector run --help; give files with absolute paths). The\n"
    "options are checked as `connector run` checks them (the token is read) before\n"
    "anything is written. Where systemd runs it then runs `systemctl daemon-reload`\n"
    "and `systemctl enable --now connector.service`; elsewhere, or with --no-start,\n"
    "it prints those commands.\n" SERVICE_OPTIONS INSTALL_OPTIONS;

static const char uninstall_text[] =
    "usage: connector service uninstall [--unit-dir DIR]\n"
    "\n"
    "Stops and disables connector.service (where systemd runs), removes the unit\n"
    "`connector service install` wrote (and no other file), and runs `systemctl\n"
    "daemon-reload`. The state (key, certificates) stays in\n"
    "/var/lib/private/connector.\n"
    "  --unit-dir DIR      where the unit is (default /etc/systemd/system)\n";

static const char unit_text[] =
    "usage: connector service unit --token-file FILE [--config FILE] [run options]\n"
    "                              [--bin PATH]\n"
    "\n"
    "Prints on stdout the unit `service install` would write for these options,\n"
    "reading no file: for a package, or to review it first.\n" SERVICE_OPTIONS;

const struct rt_cli_usage cn_usage[] = {
    {"run", NULL},
    {"tunnel run", NULL},
    {"ingress", cn_usage_ingress},
    {"ingress validate", validate_text},
    {"ingress rule", rule_text},
    {"access", cn_usage_access_tcp},
    {"access tcp", cn_usage_access_tcp},
    {"service", cn_usage_service},
    {"service install", install_text},
    {"service uninstall", uninstall_text},
    {"service unit", unit_text},
    {NULL, NULL},
};
