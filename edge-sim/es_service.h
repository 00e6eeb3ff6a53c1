/* es_service: `edge-sim service install|uninstall|unit`, edge-sim serve as
 * a systemd service (the unit itself: rt_service). */
#ifndef ES_SERVICE_H
#define ES_SERVICE_H

struct es_server;

/* Parses serve's arguments (argv[0] is "serve") as serve does, without
 * serving. Returns 0 with *srv (the settings they give), or the exit status
 * of a usage error after saying why on stderr. */
typedef int (*es_serve_check)(int argc, char **argv, const struct es_server **srv);

/* Runs `edge-sim service ...` (argv[0] is "service"). install and unit
 * check the serve options with check before writing anything; the unit's
 * data dir is its state directory. Returns the exit status: 0; 1 (refused
 * or failed); 2 (a usage error). */
int es_service_main(int argc, char **argv, es_serve_check check);

#endif
