/* cn_ops: the connector's operator listener (rt_httpd), for Prometheus and
 * uptime monitors:
 *   GET /metrics      the metrics (cn_metrics_render), Prometheus text
 *   GET /ready        200 {"status":"ready","connections":N,"tunnel_id":"..."}
 *                     while at least one link is registered with the edge,
 *                     else 503 {"status":"not_ready","connections":0,...}
 *   GET /healthcheck  200 "ok" while the process runs
 * anything else 404 (a known path with another method than GET/HEAD: 405).
 * /metrics and /ready from a loopback peer need a Host that is an IP
 * address or localhost (else 421: a guard against DNS rebinding). Every
 * request is answered from its head; no body is ever read.
 * It reads the daemon's state only through struct cn_ops_source and the
 * metrics object, both handed to it at creation. */
#ifndef CN_OPS_H
#define CN_OPS_H

#include <stddef.h>
#include <uv.h>

struct cn_metrics;
struct cn_ops;
struct rt_httpd;

/* What the listener asks of the daemon (the supervisor; a test). */
struct cn_ops_source {
    /* Links registered with the edge now. */
    unsigned (*connections)(void *arg);
    void *arg;
    const char *tunnel_id; /* borrowed: must outlive the listener */
};

/* A listener without a socket yet on loop, answering from m (borrowed,
 * must outlive it) and src (copied). NULL on no memory. */
struct cn_ops *cn_ops_new(uv_loop_t *loop, struct cn_metrics *m, const struct cn_ops_source *src);
/* Listens on addr ("HOST:PORT", "[IPv6]:PORT"; PORT 0 for a free one) and
 * writes the bound "HOST:PORT" into bound (at least 64 bytes). Returns 0 or
 * the px_err of rt_httpd_listen (PX_ERR_INVAL a bad address, PX_ERR_IO the
 * OS refused). */
int cn_ops_listen(struct cn_ops *o, const char *addr, char *bound, size_t bound_len);
/* The server, for tests that feed it requests in memory
 * (rt_httpd_new_memory). */
struct rt_httpd *cn_ops_httpd(struct cn_ops *o);
/* Closes the listener and its connections; the memory goes once the loop
 * has run (rt_httpd_free). NULL is accepted. */
void cn_ops_free(struct cn_ops *o);

#endif
