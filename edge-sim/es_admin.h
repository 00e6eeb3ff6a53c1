/* es_admin: a small read-only JSON API on the admin address (loopback by
 * default): GET /healthz, GET /api/tunnels. One request per connection. */
#ifndef ES_ADMIN_H
#define ES_ADMIN_H

#include <uv.h>

struct es_server;
struct rt_conn;
void es_admin_accept(struct es_server *srv, uv_stream_t *listener);
/* For tests: an admin connection in rt_conn memory mode from peer_ip. The
 * test feeds the request (rt_conn_memory_feed), runs the loop, reads the
 * answer from the connection's mem_out and drains it
 * (rt_conn_memory_consume); the connection then closes and frees itself.
 * NULL on no memory. */
struct rt_conn *es_admin_new_memory(struct es_server *srv, const char *peer_ip);

#endif
