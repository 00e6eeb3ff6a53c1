#include "es_server.h"
#include "es_access.h"
#include "es_admin.h"
#include "es_assert.h"
#include "es_drain.h"
#include "es_front.h"
#include "es_link.h"
#include "es_metrics.h"
#include "es_state.h"
#include "es_worker.h"
#include "px_err.h"
#include "px_log.h"
#include "px_token.h"
#include "rt_conn.h"

#include "rt_file.h"

#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define DB_POLL_MS 250
/* With a shared store: notices are read this often (a change elsewhere
 * takes effect within it), and every ES_RECONCILE_TICKS the change counter
 * is compared, in case a notice was lost. */
#define DB_POLL_SHARED_MS 100
#define ES_RECONCILE_TICKS 50

static void on_tunnel_conn(uv_stream_t *s, int status)
{
    if (status == 0)
        es_link_accept(s->data, s);
}

static void on_https_conn(uv_stream_t *s, int status)
{
    if (status == 0)
        es_front_accept(s->data, s);
}

static void on_admin_conn(uv_stream_t *s, int status)
{
    if (status == 0)
        es_admin_accept(s->data, s);
}

static int listen_on(struct es_server *srv, uv_tcp_t *h, const char *addr, uv_connection_cb cb)
{
    char host[256];
    int port;
    if (px_split_hostport(addr, host, sizeof(host), &port) < 0) {
        PX_ERROR("bad listen address %s (want HOST:PORT)", addr);
        return -1;
    }
    struct sockaddr_storage ss;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0) {
        PX_ERROR("listen address %s must be a numeric IP", addr);
        return -1;
    }
    uv_tcp_init(srv->loop, h);
    h->data = srv;
    int r = uv_tcp_bind(h, (struct sockaddr *)&ss, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)h, 511, cb);
    if (r < 0) {
        PX_ERROR("cannot listen on %s: %s", addr, uv_strerror(r));
        return -1;
    }
    return 0;
}

/* Rebuilds the access policies and the signing keys from the store; keeps
 * the old ones if that fails. Sends the connectors the new keys when they
 * changed. Returns 0 or < 0 (logged). */
static int access_reload(struct es_server *srv)
{
    char why[512];
    struct es_access *a = NULL;
    struct es_assert *as = NULL;
    long long now = (long long)time(NULL);
    int rc = es_access_build(&srv->store, srv->certs.access_ca_pem, srv->access_gen + 1, &a, why,
                             sizeof(why));
    if (rc == 0)
        rc = es_assert_build(rt_loop_rng(rt_loop_of(srv->loop)), &srv->store, srv->issuer, now, &as,
                             why, sizeof(why));
    if (rc < 0) {
        PX_ERROR("%s; keeping the previous access policies, trying again", why);
        es_access_free(a);
        srv->access_stale = 1; /* the change notice is consumed: retry from the poll */
        return rc;
    }
    srv->access_stale = 0;
    int keys_changed = !srv->assert || strcmp(es_assert_jwks(srv->assert), es_assert_jwks(as));
    if (!srv->access || es_access_count(srv->access) != es_access_count(a))
        PX_INFO("access policies: %zu", es_access_count(a));
    es_access_free(srv->access);
    es_assert_free(srv->assert);
    srv->access = a;
    srv->assert = as;
    srv->access_gen++;
    if (keys_changed)
        es_link_send_access_keys_all(srv);
    es_front_recheck_access(srv); /* revoked: open WebSockets and downloads end too */
    return 0;
}

/* Logs the shared database going away and coming back, once each. */
static void watch_store(struct es_server *srv)
{
    if (!es_store_shared(&srv->store))
        return;
    int up = es_sql_up(srv->store.db);
    if (!up && !srv->store_down) {
        srv->store_down = 1;
        unsigned n = 0;
        for (struct es_route *r = srv->reg.routes; r; r = r->next)
            n++;
        PX_ERROR("shared database %s unreachable (%s): serving the %u route(s) known; new "
                 "hostnames and enrolments are refused until it is back",
                 es_sql_target(srv->store.db), es_sql_errmsg(srv->store.db), n);
    } else if (up && srv->store_down) {
        srv->store_down = 0;
        PX_INFO("shared database %s is back: catching up", es_sql_target(srv->store.db));
    }
}

const char *es_server_store_spec(const struct es_server *srv)
{
    return srv->store_spec ? srv->store_spec : srv->data_dir;
}

int es_server_sync(struct es_server *srv)
{
    int changed = es_store_changed(&srv->store);
    watch_store(srv);
    if (!changed && es_store_shared(&srv->store) && ++srv->poll_ticks >= ES_RECONCILE_TICKS) {
        srv->poll_ticks = 0;
        changed = es_store_reconcile(&srv->store);
        if (changed)
            PX_INFO("reconciliation found a change no notice announced: reloading");
    }
    if (changed) {
        es_registry_reload(&srv->reg, &srv->store);
        access_reload(srv);
        return 1;
    }
    return 0;
}

void es_server_reload(struct es_server *srv)
{
    es_registry_reload(&srv->reg, &srv->store);
    access_reload(srv);
}

static void on_db_poll(uv_timer_t *t)
{
    struct es_server *srv = t->data;
    /* Defect 9.5: a connection outlived its certificate (nothing renewed
     * it, say its token was replaced): it ends within DB_POLL_MS of it. */
    es_link_expire(srv, (long long)time(NULL));
    /* The live view's connection comes back step by step too, at this
     * pace rather than its heartbeat's (a reconnection takes a few steps). */
    if (srv->live.db)
        es_sql_reconnect(srv->live.db, es_live_now_ms(), ES_LIVE_HEARTBEAT_MS);
    if (es_server_sync(srv))
        return;
    if (srv->access_stale || (srv->assert &&es_assert_next_change(srv->assert) &&
                              (long long)time(NULL) >= es_assert_next_change(srv->assert)))
        access_reload(srv); /* a failed reload, or a retired key's publication ended */
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct es_server *srv = h->data;
    const char *name = signum == SIGINT ? "SIGINT" : "SIGTERM";
    if (srv->drain_phase == ES_DRAIN_NONE) {
        PX_INFO("received %s: draining (grace period %u s; a second signal stops at once)", name,
                srv->grace_ms / 1000);
        es_drain_begin(srv);
        return;
    }
    PX_WARN("received %s again: stopping now, with %u browser connection(s) and %u connector "
            "connection(s) open",
            name, es_front_count(srv), es_link_count(srv));
    srv->stopping = 1;
    srv->exit_code = 1;
    uv_stop(srv->loop);
}

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* The store and the keys (es_state_open). With a shared store, the data
 * dir keeps what is this machine's alone (the admin token). */
static int open_store(struct es_server *srv, const char *server_name, char *why, size_t whylen)
{
    const char *spec = es_server_store_spec(srv);
    int rc = es_state_open(&srv->store, &srv->certs, rt_loop_rng(&srv->rt), spec, srv->ca_key_file,
                           server_name, why, whylen);
    if (rc == 0 && es_sql_spec_is_pg(spec))
        rc = es_state_private_dir(srv->data_dir, why, whylen);
    return rc;
}

int es_server_run(struct es_server *srv)
{
    char why[2048];
    srv->loop = uv_default_loop();
    srv->link_ops = &es_link_req_ops;
    /* The process is set up (rt_proc_init in main: TLS library, SIGPIPE). */
    if (rt_loop_init(&srv->rt, srv->loop) < 0)
        return 1;
    char server_name[256] = "tunnel.edge-sim.internal";
    if (open_store(srv, server_name, why, sizeof(why)) < 0) {
        PX_ERROR("%s", why);
        return 1;
    }
    srv->metrics = es_metrics_new();
    if (!srv->metrics) {
        PX_ERROR("out of memory");
        return 1;
    }
    /* 5 failed enrolments per minute per address: plenty for a mistyped
     * token, nothing for guessing. 1024 addresses (~80 KiB) at most. */
    if (es_ratelimit_init(&srv->enroll_failures, 1024, 5, 12000) < 0) {
        PX_ERROR("out of memory");
        return 1;
    }
    /* Each connection takes one descriptor: keep room for the rest. */
    unsigned max_total = srv->max_conns;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < (rlim_t)max_total + 256) {
        max_total = rl.rlim_cur > 512 ? (unsigned)rl.rlim_cur - 256 : 256;
        PX_INFO("open file limit %llu: at most %u connections", (unsigned long long)rl.rlim_cur,
                max_total);
    }
    es_conncap_init(&srv->conns, max_total, srv->max_conns_per_ip);
    es_store_kv_set(&srv->store, "tunnel_addr", srv->tunnel_addr);
    es_store_kv_set(&srv->store, "https_addr", srv->https_addr);
    if (px_tls_ctx_server(srv->certs.tunnel_cert_pem, srv->certs.tunnel_key_pem,
                          srv->certs.client_ca_pem, 0, &srv->tunnel_ctx) < 0 ||
        es_front_ctx_init(srv) < 0) {
        PX_ERROR("cannot set up TLS from the keys in %s", srv->data_dir);
        return 1;
    }
    if (es_registry_reload(&srv->reg, &srv->store) < 0) {
        PX_ERROR("cannot read the edge database");
        return 1;
    }
    if (es_assert_issuer_load(rt_loop_rng(&srv->rt), &srv->store, 1, srv->issuer,
                              sizeof(srv->issuer)) < 0 ||
        access_reload(srv) < 0) {
        PX_ERROR("cannot set up the access policies");
        return 1;
    }
    if (es_admin_start(srv) < 0)
        return 1;
    unsigned loops = srv->n_workers ? srv->n_workers : (unsigned)uv_available_parallelism();
    if (es_workers_start(srv, loops) < 0)
        return 1;
    if (listen_on(srv, &srv->tunnel_listener, srv->tunnel_addr, on_tunnel_conn) < 0 ||
        listen_on(srv, &srv->https_listener, srv->https_addr, on_https_conn) < 0 ||
        listen_on(srv, &srv->admin_listener, srv->admin_addr, on_admin_conn) < 0)
        return 1;
    srv->listening = 1;
    uv_timer_init(srv->loop, &srv->db_poll);
    srv->db_poll.data = srv;
    unsigned poll_ms = es_store_shared(&srv->store) ? DB_POLL_SHARED_MS : DB_POLL_MS;
    uv_timer_start(&srv->db_poll, on_db_poll, poll_ms, poll_ms);
    uv_signal_init(srv->loop, &srv->sigint);
    uv_signal_init(srv->loop, &srv->sigterm);
    srv->sigint.data = srv->sigterm.data = srv;
    uv_signal_start(&srv->sigint, on_signal, SIGINT);
    uv_signal_start(&srv->sigterm, on_signal, SIGTERM);
    es_live_start(srv); /* without live.db, serve runs on (logged) */
    PX_INFO("edge-sim serving: tunnels on %s, https on %s, admin on %s, data in %s",
            srv->tunnel_addr, srv->https_addr, srv->admin_addr,
            es_store_shared(&srv->store) ? es_sql_target(srv->store.db) : srv->data_dir);
    uv_run(srv->loop, UV_RUN_DEFAULT);
    es_live_stop(srv); /* other instances stop counting our connections */
    /* Say goodbye to peers, then let the closes finish. */
    es_link_close_all(srv);
    es_front_close_all(srv);
    close_handle((uv_handle_t *)&srv->tunnel_listener); /* the drain may have closed them */
    close_handle((uv_handle_t *)&srv->https_listener);
    close_handle((uv_handle_t *)&srv->admin_listener);
    es_drain_cleanup(srv); /* before any more loop runs: no drain tick from here on */
    es_workers_stop(srv);  /* their connections close; what they sent last is handled */
    es_admin_stop(srv);
    uv_close((uv_handle_t *)&srv->db_poll, NULL);
    uv_close((uv_handle_t *)&srv->sigint, NULL);
    uv_close((uv_handle_t *)&srv->sigterm, NULL);
    for (int i = 0; i < 100 && uv_run(srv->loop, UV_RUN_NOWAIT); i++)
        uv_sleep(10);
    rt_loop_cleanup(&srv->rt); /* after the connections' closes ran */
    uv_run(srv->loop, UV_RUN_NOWAIT);
    es_registry_cleanup(&srv->reg);
    es_access_free(srv->access);
    es_assert_free(srv->assert);
    srv->access = NULL;
    srv->assert = NULL;
    es_ratelimit_cleanup(&srv->enroll_failures);
    es_fair_cleanup(&srv->fair);
    es_conncap_cleanup(&srv->conns);
    wolfSSL_CTX_free(srv->tunnel_ctx);
    wolfSSL_CTX_free(srv->front_ctx);
    es_certs_cleanup(&srv->certs);
    es_store_close(&srv->store);
    es_metrics_free(srv->metrics);
    srv->metrics = NULL;
    return srv->exit_code;
}
