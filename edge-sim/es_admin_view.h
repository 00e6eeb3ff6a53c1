/* es_admin_view: what the admin API shows, as JSON (jansson), read only:
 * the tunnels with their connectors (from the registry and the live view),
 * the edge's status for the status page, and the access objects of the
 * store. Every function returns a new reference, or NULL when out of memory
 * (never a partial document that looks whole). Text that came from outside
 * (a connector's agent, rows of live.db other programs wrote) is cut to its
 * longest valid UTF-8 prefix (es_text.h). */
#ifndef ES_ADMIN_VIEW_H
#define ES_ADMIN_VIEW_H

#include <jansson.h>

struct es_server;

/* {"tunnels":[TUNNEL...],"requests_total":N,"links":N}, TUNNEL being
 * {"id","name","connections" (links here),"hostnames" (routes held),
 *  "allowed_hostnames" (patterns; [] means any),
 *  "connectors":[{"id","agent","version","address","since",
 *                 "connections":[{"edge","index","conn_id","dialed","since"}]}],
 *  "edges":{EDGE: connections}}
 * across every live instance of the data dir (as of their last heartbeat:
 * an admin request never writes or waits on live.db's write lock). */
json_t *es_admin_view_tunnels(struct es_server *srv);
/* The TUNNEL object of the tunnel named name, in *out. Returns 0,
 * PX_ERR_NOT_FOUND or PX_ERR_NOMEM. */
int es_admin_view_tunnel(struct es_server *srv, const char *name, json_t **out);
/* For the status page: {"edge":{"version","since" (unix s),"instance"},
 * "now" (unix ms), the tunnels' fields, "hostnames":[...], "recent_errors":[...]}
 * (the last two from es_metrics_status). */
json_t *es_admin_view_status(struct es_server *srv, long long since);
/* {"issuer","policies":[{"pattern","require_cert","cas","allow_subjects",
 * "allow_fingerprints","audience","created"}]}. */
json_t *es_admin_view_access(struct es_server *srv);
/* {"client_cas":[{"name","subject","crl" (bool),"created","updated"}]}. */
json_t *es_admin_view_client_cas(struct es_server *srv);
/* {"client_certs":[{"name","serial","fingerprint","subject","not_before",
 * "not_after","created","revoked" (time or null),"status"}]}. */
json_t *es_admin_view_client_certs(struct es_server *srv);

#endif
