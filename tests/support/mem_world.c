#include "mem_world.h"
#include "es_access.h"
#include "es_assert.h"
#include "cn_ingress.h"
#include "es_registry.h"
#include "px_err.h"
#include "px_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <unistd.h>

static void on_awake(uv_idle_t *h)
{
    (void)h;
}

static int fail(const char *what)
{
    fprintf(stderr, "mem_world: %s\n", what);
    return -1;
}

int mw_set_ingress(struct mw *w, const char *ingress_json)
{
    struct cn_ingress_errors errs = {0};
    struct cn_ingress *ing = NULL;
    int rc = cn_ingress_parse(ingress_json, strlen(ingress_json), &ing, &errs);
    for (size_t i = 0; i < errs.n; i++)
        fprintf(stderr, "mem_world: ingress: %s\n", errs.lines[i]);
    cn_ingress_errors_cleanup(&errs);
    if (rc < 0)
        return -1;
    if (w->cfg.ingress)
        cn_ingress_unref(w->cfg.ingress);
    w->cfg.ingress = ing;
    return 0;
}

int mw_init(struct mw *w, const char *ingress_json)
{
    memset(w, 0, sizeof(*w));
    const char *lvl = getenv("MW_LOG");
    enum px_log_level level;
    if (lvl && px_log_parse_level(lvl, &level) == 0)
        px_log_set_level(level);
    else
        px_log_set_level((enum px_log_level)(PX_LOG_ERROR + 1)); /* silent */
    if (uv_loop_init(&w->loop) != 0 || rt_loop_init(&w->rl, &w->loop) < 0)
        return fail("cannot set up the loop");
    uv_idle_init(&w->loop, &w->awake);
    uv_idle_start(&w->awake, on_awake);
    px_buf_init(&w->front_out);
    px_buf_init(&w->link_out);

    /* The edge: a store with one tunnel, in a private directory. */
    snprintf(w->dir, sizeof(w->dir), "/tmp/mem_world.XXXXXX");
    if (!mkdtemp(w->dir))
        return fail("mkdtemp failed");
    struct es_server *srv = &w->srv;
    srv->loop = &w->loop;
    srv->link_ops = &es_link_req_ops;
    char why[512];
    if (es_store_open(&srv->store, w->dir, why, sizeof(why)) < 0)
        return fail(why);
    /* Durability is not what is tested: keep each run cheap. */
    sqlite3_exec(((sqlite3 *)es_sql_sqlite_handle(srv->store.db)), "PRAGMA synchronous=OFF", NULL,
                 NULL, NULL);
    struct es_tunnel_rec rec = {.id = MW_TUNNEL_ID, .name = "fuzz"};
    if (es_store_tunnel_add(&srv->store, &rec) < 0)
        return fail("cannot add the tunnel");
    mw_reset_routes(w);
    if (!es_registry_tunnel(&srv->reg, MW_TUNNEL_ID))
        return fail("the tunnel is not in the registry");

    /* The connector. */
    if (mw_set_ingress(w, ingress_json) < 0)
        return -1;
    w->cfg.response_timeout_ms = 30000;
    w->cfg.ha_connections = 1;
    struct cn_supervisor *sup = &w->sup;
    sup->loop = &w->loop;
    sup->cfg = &w->cfg;
    sup->n_slots = 1;
    sup->slots[0].sup = sup;
    cn_backoff_init(&sup->slots[0].backoff, 1000, 30000);
    uv_timer_init(&w->loop, &sup->slots[0].retry);
    sup->slots[0].retry.data = &sup->slots[0];
    uv_timer_init(&w->loop, &sup->grace);
    uv_timer_init(&w->loop, &sup->enroll_retry);
    return 0;
}

void mw_cleanup(struct mw *w)
{
    mw_close_all(w);
    uv_close((uv_handle_t *)&w->sup.slots[0].retry, NULL);
    uv_close((uv_handle_t *)&w->sup.grace, NULL);
    uv_close((uv_handle_t *)&w->sup.enroll_retry, NULL);
    uv_idle_stop(&w->awake);
    uv_close((uv_handle_t *)&w->awake, NULL);
    rt_loop_cleanup(&w->rl);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_loop_close(&w->loop);
    cn_ingress_unref(w->cfg.ingress);
    es_registry_cleanup(&w->srv.reg);
    es_fair_cleanup(&w->srv.fair);
    es_access_free(w->srv.access);
    es_assert_free(w->srv.assert);
    es_certs_cleanup(&w->srv.certs);
    es_store_close(&w->srv.store);
    px_buf_cleanup(&w->front_out);
    px_buf_cleanup(&w->link_out);
    const char *files[] = {"edge.db", "edge.db-wal", "edge.db-shm"};
    for (size_t i = 0; i < 3; i++) {
        char p[128];
        snprintf(p, sizeof(p), "%s/%s", w->dir, files[i]);
        unlink(p);
    }
    rmdir(w->dir);
}

void mw_reset_routes(struct mw *w)
{
    struct es_server *srv = &w->srv;
    sqlite3_exec(((sqlite3 *)es_sql_sqlite_handle(srv->store.db)), "DELETE FROM routes", NULL, NULL,
                 NULL);
    es_store_route_claim(&srv->store, "*.fuzz.test", MW_TUNNEL_ID, NULL);
    es_store_route_claim(&srv->store, "fuzz.test", MW_TUNNEL_ID, NULL);
    es_registry_reload(&srv->reg, &srv->store);
}

/* Forgets objects freed by the last loop run. Frees happen only in close
 * callbacks, so pointers stay valid between two runs of the loop. */
static void refresh(struct mw *w)
{
    if (w->front && es_front_count(&w->srv) == 0)
        w->front = NULL;
    if (w->el && es_link_count(&w->srv) == 0)
        w->el = NULL;
    if (w->cl && !w->sup.slots[0].link)
        w->cl = NULL;
}

static void run_loop(struct mw *w)
{
    uv_run(&w->loop, UV_RUN_NOWAIT);
    refresh(w);
}

/* Delivers what from wrote to to (to NULL: nobody listens, drop it). A
 * receiver that paused reading keeps the bytes waiting, as a socket would. */
static size_t move(struct mw *w, struct rt_conn *from, struct rt_conn *to)
{
    size_t n = px_buf_len(&from->mem_out);
    if (w->detached && n && px_buf_len(&w->link_out) < 65536)
        px_buf_append(&w->link_out, px_buf_head(&from->mem_out), n);
    if (n == 0 || (to && to->read_paused && !to->closing && !to->closed))
        return 0;
    if (to && !to->closing && !to->closed) {
        /* A copy: the receiver may write to its own side while it reads. */
        uint8_t *copy = malloc(n);
        if (!copy)
            return 0;
        memcpy(copy, px_buf_head(&from->mem_out), n);
        rt_conn_memory_consume(from, n);
        rt_conn_memory_feed(to, copy, n);
        free(copy);
        return n;
    }
    rt_conn_memory_consume(from, n);
    return n;
}

static size_t out_len(const struct mw *w)
{
    return (w->front ? px_buf_len(&w->front->conn.mem_out) : 0) +
           (w->el ? px_buf_len(&w->el->conn.mem_out) : 0) +
           (w->cl ? px_buf_len(&w->cl->conn.mem_out) : 0);
}

static size_t collect_front(struct mw *w)
{
    if (!w->front)
        return 0;
    struct rt_conn *c = &w->front->conn;
    size_t n = px_buf_len(&c->mem_out);
    if (n == 0)
        return 0;
    if (px_buf_append(&w->front_out, px_buf_head(&c->mem_out), n) < 0)
        return 0;
    rt_conn_memory_consume(c, n);
    return n;
}

void mw_pump(struct mw *w)
{
    int quiet = 0;
    for (int i = 0; i < 4000 && quiet < 2; i++) {
        size_t moved = 0;
        if (w->el)
            moved += move(w, &w->el->conn, w->cl && !w->detached ? &w->cl->conn : NULL);
        if (w->cl)
            moved += move(w, &w->cl->conn, w->el && !w->detached ? &w->el->conn : NULL);
        moved += collect_front(w);
        size_t before = out_len(w);
        run_loop(w);
        if (moved == 0 && out_len(w) == before)
            quiet++;
        else
            quiet = 0;
    }
}

int mw_conn_link_open(struct mw *w)
{
    struct cn_supervisor *sup = &w->sup;
    sup->stopping = sup->draining = sup->exit_code = 0;
    struct cn_link *l = calloc(1, sizeof(*l));
    if (!l)
        return -1;
    sup->slots[0].link = l;
    struct cn_link_host host;
    cn_supervisor_link_host(sup, &host);
    if (cn_link_start_memory(l, &host, 0) < 0) {
        sup->slots[0].link = NULL;
        free(l);
        return -1;
    }
    w->cl = l;
    return 0;
}

int mw_edge_link_open(struct mw *w)
{
    w->el = es_link_new_memory(&w->srv, MW_TUNNEL_ID, "198.51.100.20");
    return w->el ? 0 : -1;
}

int mw_links_open(struct mw *w)
{
    if (mw_conn_link_open(w) < 0 || mw_edge_link_open(w) < 0)
        return -1;
    mw_pump(w);
    return w->el && w->el->registered && w->cl && w->cl->registered ? 0 : -1;
}

int mw_front_open(struct mw *w, const char *alpn)
{
    w->front = es_front_new_memory(&w->srv, alpn, MW_CLIENT_IP);
    if (!w->front)
        return -1;
    /* No TLS in memory: the connection stands for one opened for MW_SNI. */
    snprintf(w->front->sni, sizeof(w->front->sni), "%s", MW_SNI);
    return 0;
}

int mw_front_feed(struct mw *w, const void *data, size_t len)
{
    /* A paused reader gets its bytes only once it resumes. */
    for (int i = 0; i < 4 && w->front && w->front->conn.read_paused; i++)
        mw_pump(w);
    if (!w->front || w->front->conn.read_paused)
        return -1;
    return rt_conn_memory_feed(&w->front->conn, data, len) < 0 ? -1 : 0;
}

int mw_el_feed(struct mw *w, const void *data, size_t len)
{
    for (int i = 0; i < 4 && w->el && w->el->conn.read_paused; i++)
        mw_pump(w);
    if (!w->el || w->el->conn.read_paused)
        return -1;
    return rt_conn_memory_feed(&w->el->conn, data, len) < 0 ? -1 : 0;
}

int mw_cl_feed(struct mw *w, const void *data, size_t len)
{
    for (int i = 0; i < 4 && w->cl && w->cl->conn.read_paused; i++)
        mw_pump(w);
    if (!w->cl || w->cl->conn.read_paused)
        return -1;
    return rt_conn_memory_feed(&w->cl->conn, data, len) < 0 ? -1 : 0;
}

/* MW_DUMP=1: show what the browser got (debugging a harness or a seed). */
static void dump(struct mw *w, const char *what)
{
    size_t n = px_buf_len(&w->front_out);
    if (n && getenv("MW_DUMP"))
        fprintf(stderr, "---- browser received (%s, %zu bytes):\n%.*s\n----\n", what, n,
                (int)(n > 4000 ? 4000 : n), (const char *)px_buf_head(&w->front_out));
}

int mw_front_close(struct mw *w)
{
    if (w->front)
        rt_conn_memory_eof(&w->front->conn);
    mw_pump(w);
    return w->front ? -1 : 0;
}

int mw_canary(struct mw *w)
{
    static const char req[] = "GET /canary HTTP/1.1\r\nHost: app.fuzz.test\r\n\r\n";
    static const char want[] = "HTTP/1.1 200 ";
    if (mw_front_close(w) < 0)
        return fail("canary: the previous browser connection did not close");
    dump(w, "before the canary");
    px_buf_consume(&w->front_out, px_buf_len(&w->front_out));
    if (!w->el || !w->cl)
        return fail("canary: a tunnel link is gone");
    if (mw_front_open(w, "http/1.1") < 0 || mw_front_feed(w, req, sizeof(req) - 1) < 0)
        return fail("canary: cannot open a browser connection");
    mw_pump(w);
    int ok = px_buf_len(&w->front_out) >= sizeof(want) - 1 &&
             memcmp(px_buf_head(&w->front_out), want, sizeof(want) - 1) == 0;
    if (!ok) {
        size_t n = px_buf_len(&w->front_out);
        fprintf(stderr, "mem_world: canary: no 200 for a fresh request; got %zu bytes: %.*s\n", n,
                (int)(n > 200 ? 200 : n), (const char *)px_buf_head(&w->front_out));
    }
    mw_front_close(w);
    px_buf_consume(&w->front_out, px_buf_len(&w->front_out));
    return ok ? 0 : -1;
}

static int h2_send(struct mw *w, nghttp2_session *h2,
                   int (*feed)(struct mw *w, const void *data, size_t len))
{
    const uint8_t *out;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(h2, &out)) > 0)
        if (feed(w, out, (size_t)n) < 0)
            return -1;
    return n < 0 ? -1 : 0;
}

int mw_h2_round(struct mw *w, nghttp2_session *h2,
                int (*feed)(struct mw *w, const void *data, size_t len), struct px_buf *in)
{
    if (h2_send(w, h2, feed) < 0)
        return -1;
    mw_pump(w);
    size_t n = px_buf_len(in);
    if (n && nghttp2_session_mem_recv(h2, px_buf_head(in), n) != (ssize_t)n)
        return -1;
    px_buf_consume(in, n);
    return h2_send(w, h2, feed);
}

int mw_close_all(struct mw *w)
{
    /* The browser leaves, then the connector says goodbye (GOAWAY). */
    if (w->front)
        rt_conn_memory_eof(&w->front->conn);
    mw_pump(w);
    if (w->cl)
        cn_link_close(w->cl, "test over");
    mw_pump(w);
    if (w->el)
        rt_conn_abort(&w->el->conn, 0);
    if (w->cl)
        rt_conn_abort(&w->cl->conn, 0);
    for (int i = 0; i < 100 && (w->front || w->el || w->cl); i++)
        run_loop(w);
    /* Handles closed from close callbacks finish one iteration later. */
    for (int i = 0; i < 4; i++)
        run_loop(w);
    dump(w, "end of run");
    px_buf_consume(&w->front_out, px_buf_len(&w->front_out));
    px_buf_shrink(&w->front_out, 0);
    px_buf_consume(&w->link_out, px_buf_len(&w->link_out));
    px_buf_shrink(&w->link_out, 0);
    return w->front || w->el || w->cl ? -1 : 0;
}
