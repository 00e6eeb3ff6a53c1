/* es_admin: the edge's admin listener (loopback by default), an rt_httpd
 * server routing:
 *   GET /healthz, /healthcheck   200 "ok" (open)
 *   GET /ready                   200 {"status":"ready","tunnels":N,"links":N} while
 *                                serving, 503 {"status":"draining"|"starting"} otherwise
 *   GET /metrics                 Prometheus text (es_metrics_render)
 *                                (/ready and /metrics: open from loopback, the
 *                                bearer token needed from other peers; without
 *                                the token, loopback requests need a Host that is
 *                                an IP address or localhost, else 421: a guard
 *                                against DNS rebinding)
 *   GET /                        the status page (es_status_page.h; open: it holds
 *                                no data)
 *   GET /.well-known/jwks.json   the assertion keys (public; open)
 *   /api/...                     the JSON API (es_admin_api.h), bearer token needed:
 *                                401 {"error"} with WWW-Authenticate: Bearer otherwise
 * The token is the data dir's admin.token (es_admin_token.h), compared in
 * constant time, never logged. Everything but an API call carrying the token
 * is answered from the request head, before any body is read (no 100
 * Continue, nothing buffered). Requests are capped at 16 KiB of head and
 * 1 MiB of body (413), 10 s to arrive; connections count against the
 * server's caps (es_conncap) like the other listeners'.
 *
 * One per server (srv->admin): es_admin_start makes it, es_admin_stop frees
 * it (after the loop runs). */
#ifndef ES_ADMIN_H
#define ES_ADMIN_H

#include <uv.h>

struct es_server;
struct rt_conn;

#define ES_ADMIN_MAX_BODY (1024 * 1024)

/* Sets up srv->admin on srv->loop: reads srv->data_dir's admin.token,
 * creating it when missing (logged, without the token). Returns 0, or < 0
 * after logging why (a token file others can read, say). */
int es_admin_start(struct es_server *srv);
/* Closes every admin connection and frees srv->admin once the loop has run
 * their closes. Nothing when it was not started. */
void es_admin_stop(struct es_server *srv);
/* Accepts one connection from srv's admin listener (es_server.c's, which
 * the drain leaves open until exit). Dropped when the admin is not started. */
void es_admin_accept(struct es_server *srv, uv_stream_t *listener);
/* For tests: an admin connection in rt_conn memory mode from peer_ip (on a
 * started admin). The test feeds the request (rt_conn_memory_feed), runs
 * the loop, reads the answer from the connection's mem_out and drains it
 * (rt_conn_memory_consume); the connection then closes and frees itself.
 * NULL on no memory, over the connection cap, or when not started. */
struct rt_conn *es_admin_new_memory(struct es_server *srv, const char *peer_ip);

#endif
