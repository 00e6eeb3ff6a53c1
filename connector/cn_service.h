/* cn_service: `connector service install|uninstall|unit`, the connector as
 * a systemd service (the unit itself: rt_service). */
#ifndef CN_SERVICE_H
#define CN_SERVICE_H

/* Where the service's operator listener (/metrics, /ready, /healthcheck)
 * listens unless the operator gives --metrics: a fixed port, so a scraper
 * finds it after every restart (run's own default is a free port). */
#define CN_SERVICE_METRICS_ADDR "127.0.0.1:20241"

/* Runs `connector service ...` (argv[0] is "service"). install checks its
 * run options as `connector run` does (cn_config_parse_run, reading the
 * token file) and that the token file is mode 0600 or stricter before it
 * writes anything. Returns the exit status: 0; 1 (refused or failed); 2 (a
 * usage error). */
int cn_service_main(int argc, char **argv);

#endif
