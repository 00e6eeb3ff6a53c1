/* es_admin: a small read-only JSON API on the admin address (loopback by
 * default): GET /healthz, GET /api/tunnels. One request per connection. */
#ifndef ES_ADMIN_H
#define ES_ADMIN_H

#include <uv.h>

struct es_server;
void es_admin_accept(struct es_server *srv, uv_stream_t *listener);

#endif
