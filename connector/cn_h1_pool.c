/* cn_h1_pool: the client's connections and its keep-alive pools, one per
 * origin (see cn_h1.h). */
#include "cn_h1_int.h"
#include "px_err.h"
#include "px_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cn_h1_new(uv_loop_t *loop, struct cn_h1 **out)
{
    struct cn_h1 *h = calloc(1, sizeof(*h));
    if (!h)
        return PX_ERR_NOMEM;
    h->loop = loop;
    px_list_init(&h->pools);
    px_list_init(&h->conns);
    *out = h;
    return 0;
}

static void conn_free(struct cn_h1_conn *c)
{
    struct cn_h1 *h = c->h1;
    px_list_remove(&c->all_node);
    px_h1resp_cleanup(&c->resp);
    px_buf_cleanup(&c->wbuf);
    if (c->ai)
        uv_freeaddrinfo(c->ai);
    free(c);
    /* The client went first (cn_h1_free): the last connection frees it. */
    if (h->loop == NULL && px_list_empty(&h->conns))
        free(h);
}

void cn_h1_free(struct cn_h1 *h)
{
    if (!h)
        return;
    struct px_list_node *pos, *tmp;
    px_list_for_each_safe (pos, tmp, &h->conns)
        cn_h1_conn_close(px_container_of(pos, struct cn_h1_conn, all_node));
    px_list_for_each_safe (pos, tmp, &h->pools) {
        px_list_remove(pos);
        free(px_container_of(pos, struct cn_h1_pool, node));
    }
    h->loop = NULL;
    if (px_list_empty(&h->conns))
        free(h);
}

unsigned cn_h1_open_conns(const struct cn_h1 *h)
{
    return h->n_open;
}

unsigned cn_h1_idle_conns(const struct cn_h1 *h)
{
    return h->n_idle;
}

size_t cn_h1_idle_bytes(const struct cn_h1 *h)
{
    size_t n = 0;
    struct px_list_node *pos, *tmp;
    px_list_for_each_safe (pos, tmp, &h->conns) {
        struct cn_h1_conn *c = px_container_of(pos, struct cn_h1_conn, all_node);
        if (px_list_linked(&c->idle_node))
            n += px_h1resp_held(&c->resp) + c->wbuf.cap;
    }
    return n;
}

struct cn_h1_pool *cn_h1_pool_of(struct cn_h1 *h, const struct cn_h1_target *t)
{
    char port[16];
    const char *a = t->unix_path ? "unix:" : t->host;
    const char *b = t->unix_path ? t->unix_path : ":";
    /* By hand, not snprintf: once per request. */
    size_t pn = sizeof(port);
    port[--pn] = '\0';
    unsigned u = t->port < 0 ? 0u - (unsigned)t->port : (unsigned)t->port;
    do {
        port[--pn] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (t->port < 0)
        port[--pn] = '-';
    const char *c = t->unix_path ? "" : port + pn;
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
    struct px_list_node *pos, *tmp;
    px_list_for_each_safe (pos, tmp, &h->pools) {
        struct cn_h1_pool *p = px_container_of(pos, struct cn_h1_pool, node);
        if (strlen(p->key) == la + lb + lc && memcmp(p->key, a, la) == 0 &&
            memcmp(p->key + la, b, lb) == 0 && memcmp(p->key + la + lb, c, lc) == 0)
            return p;
    }
    struct cn_h1_pool *p = calloc(1, sizeof(*p) + la + lb + lc + 1);
    if (!p)
        return NULL;
    memcpy(p->key, a, la);
    memcpy(p->key + la, b, lb);
    memcpy(p->key + la + lb, c, lc);
    px_list_init(&p->idle);
    px_list_insert_head(&h->pools, &p->node);
    return p;
}

static void unidle(struct cn_h1_conn *c)
{
    if (!px_list_linked(&c->idle_node))
        return;
    px_list_remove(&c->idle_node);
    c->pool->n_idle--;
    c->h1->n_idle--;
}

struct cn_h1_conn *cn_h1_pool_take(struct cn_h1_pool *pool)
{
    if (px_list_empty(&pool->idle))
        return NULL;
    /* The most recently used (the head): the least recently used ones stay
     * idle longest, and are the ones a pool over its cap closes. */
    struct cn_h1_conn *c = px_container_of(pool->idle.head.next, struct cn_h1_conn, idle_node);
    unidle(c);
    uv_timer_stop(&c->timer);
    c->surplus = 0;
    return c;
}

static void on_idle_timeout(uv_timer_t *t)
{
    struct cn_h1_conn *c = t->data;
    PX_DEBUG("origin connection to %s idle too long: closed", c->pool->key);
    cn_h1_conn_close(c);
}

/* c came back over its pool's cap a grace ago. If the pool is still over
 * it, its least recently used idle connection goes (c itself when that one
 * is also waiting for its grace: each such connection closes at most one);
 * a c that stays idle is closed keepAliveTimeout after it came back. */
static void on_surplus_grace(uv_timer_t *t)
{
    struct cn_h1_conn *c = t->data;
    struct cn_h1_pool *p = c->pool;
    c->surplus = 0;
    if (p->n_idle > c->idle_cap) {
        struct cn_h1_conn *lru = px_container_of(p->idle.head.prev, struct cn_h1_conn, idle_node);
        if (lru->surplus)
            lru = c;
        PX_DEBUG("origin connection to %s over keepAliveConnections (%u idle): closed", p->key,
                 p->n_idle);
        cn_h1_conn_close(lru);
        if (lru == c)
            return;
    }
    if (c->idle_rest_ms == 0 || uv_timer_start(&c->timer, on_idle_timeout, c->idle_rest_ms, 0) < 0)
        cn_h1_conn_close(c);
}

void cn_h1_pool_put(struct cn_h1_conn *c, const struct cn_h1_target *t)
{
    struct cn_h1_pool *p = c->pool;
    if (c->closing || c->def_pending || !c->h1->loop || t->keepalive_timeout_ms == 0 ||
        t->keepalive_conns == 0) {
        cn_h1_conn_close(c);
        return;
    }
    /* Over the cap: pooled all the same (a burst's answers finish together,
     * and the next burst wants as many connections), for a grace. */
    int over = p->n_idle >= t->keepalive_conns;
    c->q = NULL;
    px_buf_shrink(&c->wbuf, 0);
    px_h1resp_shrink(&c->resp); /* one large head must not stay with an idle connection */
    px_list_insert_head(&p->idle, &c->idle_node);
    p->n_idle++;
    c->h1->n_idle++;
    /* Reading stays on: the origin closing it shows as EOF (cn_h1_idle_read). */
    if (!c->reading && uv_read_start(&c->io.s, cn_h1_alloc, cn_h1_on_read) < 0) {
        cn_h1_conn_close(c);
        return;
    }
    c->reading = 1;
    int rc;
    if (over) {
        unsigned grace = t->keepalive_timeout_ms < CN_H1_SURPLUS_GRACE_MS ? t->keepalive_timeout_ms
                                                                          : CN_H1_SURPLUS_GRACE_MS;
        c->surplus = 1;
        c->idle_cap = t->keepalive_conns;
        c->idle_rest_ms = t->keepalive_timeout_ms - grace;
        rc = uv_timer_start(&c->timer, on_surplus_grace, grace, 0);
    } else {
        rc = uv_timer_start(&c->timer, on_idle_timeout, t->keepalive_timeout_ms, 0);
    }
    if (rc < 0)
        cn_h1_conn_close(c);
}

void cn_h1_idle_read(struct cn_h1_conn *c, ssize_t nread)
{
    PX_DEBUG("idle origin connection to %s: %s, closed", c->pool->key,
             nread < 0 ? uv_strerror((int)nread) : "unexpected bytes");
    cn_h1_conn_close(c);
}

void cn_h1_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct cn_h1_conn *c = hd->data;
    /* Every read is parsed and handed on before the next one: one buffer
     * serves all of the loop's connections. */
    buf->base = c->h1->rbuf;
    buf->len = sizeof(c->h1->rbuf);
}

struct cn_h1_conn *cn_h1_conn_new(struct cn_h1 *h, struct cn_h1_pool *pool)
{
    struct cn_h1_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->h1 = h;
    c->pool = pool;
    if (uv_timer_init(h->loop, &c->timer) < 0) {
        free(c);
        return NULL;
    }
    px_buf_init(&c->wbuf);
    px_h1resp_init(&c->resp, NULL, NULL);
    c->timer.data = c;
    px_list_insert_tail(&h->conns, &c->all_node);
    h->n_open++;
    return c;
}

static void on_closed(uv_handle_t *hd)
{
    struct cn_h1_conn *c = hd->data;
    if (--c->pending == 0)
        conn_free(c);
}

void cn_h1_conn_close(struct cn_h1_conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    c->h1->n_open--;
    unidle(c);
    if (c->q) {
        c->q->conn = NULL;
        c->q = NULL;
    }
    c->pending = 1 + (c->io_open ? 1 : 0) + (c->resolving ? 1 : 0) + (c->io_cycling ? 1 : 0);
    uv_close((uv_handle_t *)&c->timer, on_closed);
    if (c->io_open)
        uv_close(&c->io.h, on_closed);
    if (c->resolving)
        uv_cancel((uv_req_t *)&c->gai); /* its callback still comes (and counts) */
}

void cn_h1_conn_unpend(struct cn_h1_conn *c)
{
    if (--c->pending == 0)
        conn_free(c);
}
