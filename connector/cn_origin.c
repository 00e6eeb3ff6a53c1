#include "cn_origin.h"
#include "px_err.h"
#include "px_log.h"

#include <stdlib.h>
#include <unistd.h>

struct sock_ctx {
    uv_poll_t poll;
    struct cn_origin *o;
    curl_socket_t fd;
    /* The UV_* events the poll handle watches now (0: stopped). libuv turns
     * every restart into two epoll_ctl calls, so it restarts only when they
     * change. */
    int events;
    /* curl stopped watching a connection it keeps in its cache: the read
     * watch stays on (it costs nothing while the origin is quiet) until the
     * origin sends or closes, then it stops (curl sees the dead connection
     * when it next picks it). */
    int idle;
    cn_origin_watch_cb user_cb; /* set while the application owns the socket */
    void *user_arg;
};

/* Reset easy handles kept for reuse: as many as the transfers that were
 * active at once lately (creating a handle costs more than resetting one),
 * at least EASY_POOL_MIN and at most EASY_POOL_MAX. Every EASY_TRIM_MS the
 * pool gives back what the last period did not need. */
#define EASY_POOL_MIN 16
#define EASY_POOL_MAX 4096
#define EASY_TRIM_MS 30000

struct cn_origin {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timeout_timer;
    uv_timer_t kick_timer;
    struct px_list kick; /* transfers with pause bits to clear (cn_origin_xfer.kick_node) */
    CURL **easy_pool;
    size_t easy_pool_n, easy_pool_cap;
    size_t xfers;      /* transfers holding an easy handle now */
    size_t xfers_peak; /* the most at once since the last trim */
    uv_timer_t trim_timer;
    /* Poll handles live as long as the socket, not as long as curl watches
     * it: curl stops watching a connection each time it goes idle in its
     * cache and starts again on reuse, and recreating the handle each time
     * cost three epoll_ctl calls per request. They are found by descriptor
     * and closed from curl's close-socket callback. */
    struct sock_ctx **by_fd;
    size_t by_fd_cap;
    int timers_open; /* handles whose close callback has not run yet */
};

static int multi_ready(struct cn_origin *o);

static size_t pool_target(const struct cn_origin *o)
{
    size_t t = o->xfers_peak > EASY_POOL_MIN ? o->xfers_peak : EASY_POOL_MIN;
    return t < EASY_POOL_MAX ? t : EASY_POOL_MAX;
}

CURL *cn_origin_easy_get(struct cn_origin *o)
{
    CURL *e = o->easy_pool_n > 0   ? o->easy_pool[--o->easy_pool_n]
              : multi_ready(o) < 0 ? NULL
                                   : curl_easy_init();
    if (e && ++o->xfers > o->xfers_peak)
        o->xfers_peak = o->xfers;
    return e;
}

void cn_origin_easy_put(struct cn_origin *o, CURL *e)
{
    if (!e)
        return;
    if (o->xfers > 0)
        o->xfers--;
    if (o->easy_pool_n >= pool_target(o)) {
        curl_easy_cleanup(e);
        return;
    }
    if (o->easy_pool_n == o->easy_pool_cap) {
        size_t cap = o->easy_pool_cap ? o->easy_pool_cap * 2 : EASY_POOL_MIN;
        CURL **n = realloc(o->easy_pool, cap * sizeof(*n));
        if (!n) {
            curl_easy_cleanup(e); /* not pooled: the next get creates one */
            return;
        }
        o->easy_pool = n;
        o->easy_pool_cap = cap;
    }
    curl_easy_reset(e);
    o->easy_pool[o->easy_pool_n++] = e;
}

/* Frees the pooled handles the last period's peak did not need, and
 * starts the next period at the current load. */
static void on_trim(uv_timer_t *t)
{
    struct cn_origin *o = t->data;
    size_t keep = pool_target(o);
    while (o->easy_pool_n > keep)
        curl_easy_cleanup(o->easy_pool[--o->easy_pool_n]);
    o->xfers_peak = o->xfers;
}

static void check_done(struct cn_origin *o)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(o->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURL *e = m->easy_handle;
        CURLcode res = m->data.result;
        struct cn_origin_xfer *x = NULL;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&x);
        if (!x || !x->raw) {
            curl_multi_remove_handle(o->multi, e);
            if (x)
                x->in_multi = 0;
        }
        if (x) {
            x->active = 0;
            x->on_done(x, res);
        }
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct sock_ctx *s = h->data;
    struct cn_origin *o = s->o;
    if (s->user_cb) {
        s->user_cb(s->user_arg, status, events);
        return;
    }
    if (s->idle) {
        /* The origin spoke (or hung up) on a connection no transfer uses:
         * stop watching it; curl finds it dead when it next picks it. */
        uv_poll_stop(&s->poll);
        s->events = 0;
        return;
    }
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    int running;
    curl_multi_socket_action(o->multi, s->fd, flags, &running);
    check_done(o);
}

static void on_timeout(uv_timer_t *t)
{
    struct cn_origin *o = t->data;
    int running;
    curl_multi_socket_action(o->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(o);
}

static int timer_cb(CURLM *m, long timeout_ms, void *arg)
{
    (void)m;
    struct cn_origin *o = arg;
    if (timeout_ms < 0)
        uv_timer_stop(&o->timeout_timer);
    else
        uv_timer_start(&o->timeout_timer, on_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

static void free_sock(uv_handle_t *h)
{
    free(h->data);
}

static struct sock_ctx *sock_for(struct cn_origin *o, curl_socket_t fd, int create)
{
    if (fd < 0)
        return NULL;
    if ((size_t)fd >= o->by_fd_cap) {
        if (!create)
            return NULL;
        size_t cap = o->by_fd_cap ? o->by_fd_cap : 256;
        while (cap <= (size_t)fd)
            cap *= 2;
        struct sock_ctx **n = realloc(o->by_fd, cap * sizeof(*n));
        if (!n)
            return NULL;
        for (size_t i = o->by_fd_cap; i < cap; i++)
            n[i] = NULL;
        o->by_fd = n;
        o->by_fd_cap = cap;
    }
    if (!o->by_fd[fd] && create) {
        struct sock_ctx *c = calloc(1, sizeof(*c));
        if (!c)
            return NULL;
        c->fd = fd;
        c->o = o;
        if (uv_poll_init_socket(o->loop, &c->poll, fd) < 0) {
            free(c);
            return NULL;
        }
        c->poll.data = c;
        o->by_fd[fd] = c;
    }
    return o->by_fd[fd];
}

static int socket_cb(CURL *e, curl_socket_t fd, int what, void *arg, void *sockp)
{
    (void)e;
    (void)sockp;
    struct cn_origin *o = arg;
    if (what == CURL_POLL_REMOVE) {
        struct sock_ctx *c = sock_for(o, fd, 0);
        if (!c || c->user_cb)
            return 0;
        if (c->events == UV_READABLE) {
            /* An answered connection going back to curl's cache keeps its
             * read watch. Never one that was connecting or writing: a
             * writable socket would wake the loop on every iteration. */
            c->idle = 1;
            return 0;
        }
        uv_poll_stop(&c->poll);
        c->events = 0;
        return 0;
    }
    struct sock_ctx *c = sock_for(o, fd, 1);
    if (!c)
        return -1;
    c->user_cb = NULL;
    c->idle = 0;
    int ev = 0;
    if (what & CURL_POLL_IN)
        ev |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        ev |= UV_WRITABLE;
    if (ev == c->events)
        return 0;
    if (uv_poll_start(&c->poll, ev, on_poll) < 0)
        return -1;
    c->events = ev;
    return 0;
}

static int close_socket_cb(void *arg, curl_socket_t fd)
{
    struct cn_origin *o = arg;
    struct sock_ctx *c = sock_for(o, fd, 0);
    if (c) {
        o->by_fd[fd] = NULL;
        uv_poll_stop(&c->poll);
        uv_close((uv_handle_t *)&c->poll, free_sock);
    }
    return close(fd);
}

static void on_kick(uv_timer_t *t)
{
    struct cn_origin *o = t->data;
    /* curl_easy_pause can call back into a transfer's owner, which may queue
     * transfers again (they wait for the next kick) or cancel them (they
     * leave this batch). */
    struct px_list batch;
    px_list_move(&batch, &o->kick);
    struct px_list_node *n;
    while ((n = px_list_first(&batch))) {
        px_list_remove(n);
        struct cn_origin_xfer *x = px_container_of(n, struct cn_origin_xfer, kick_node);
        int bits = x->unpause_mask;
        x->unpause_mask = 0;
        if (!x->active || !(x->paused & bits))
            continue;
        x->paused &= ~bits;
        curl_easy_pause(x->easy, x->paused);
    }
    check_done(o);
}

/* libcurl and the multi handle on first use (cn_curl.h): a connector
 * whose requests never need curl never loads it. */
static int multi_ready(struct cn_origin *o)
{
    if (o->multi)
        return 0;
    /* Reference-counted by libcurl: one call per origin context is fine. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return PX_ERR_NOMEM;
    o->multi = curl_multi_init();
    if (!o->multi) {
        curl_global_cleanup();
        return PX_ERR_NOMEM;
    }
    curl_multi_setopt(o->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(o->multi, CURLMOPT_SOCKETDATA, o);
    curl_multi_setopt(o->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(o->multi, CURLMOPT_TIMERDATA, o);
    curl_multi_setopt(o->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
    /* The cache counts busy connections too: sized below the stream
     * concurrency it closes a connection after almost every request. */
    curl_multi_setopt(o->multi, CURLMOPT_MAXCONNECTS, 2048L);
    return 0;
}

int cn_origin_new(uv_loop_t *loop, struct cn_origin **out)
{
    struct cn_origin *o = calloc(1, sizeof(*o));
    if (!o)
        return PX_ERR_NOMEM;
    o->loop = loop;
    px_list_init(&o->kick);
    uv_timer_init(loop, &o->timeout_timer);
    uv_timer_init(loop, &o->kick_timer);
    uv_timer_init(loop, &o->trim_timer);
    o->timeout_timer.data = o;
    o->kick_timer.data = o;
    o->trim_timer.data = o;
    o->timers_open = 3;
    uv_timer_start(&o->trim_timer, on_trim, EASY_TRIM_MS, EASY_TRIM_MS);
    uv_unref((uv_handle_t *)&o->trim_timer); /* never what keeps a loop alive */
    *out = o;
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct cn_origin *o = h->data;
    if (--o->timers_open == 0)
        free(o);
}

void cn_origin_free(struct cn_origin *o)
{
    if (!o)
        return;
    while (o->easy_pool_n > 0)
        curl_easy_cleanup(o->easy_pool[--o->easy_pool_n]);
    free(o->easy_pool);
    o->easy_pool = NULL;
    if (o->multi)
        curl_multi_cleanup(o->multi); /* closes cached connections via close_socket_cb */
    for (size_t i = 0; i < o->by_fd_cap; i++)
        if (o->by_fd[i])
            uv_close((uv_handle_t *)&o->by_fd[i]->poll, free_sock);
    free(o->by_fd);
    o->by_fd = NULL;
    o->by_fd_cap = 0;
    if (o->multi)
        curl_global_cleanup();
    o->multi = NULL;
    uv_close((uv_handle_t *)&o->timeout_timer, on_timer_closed);
    uv_close((uv_handle_t *)&o->kick_timer, on_timer_closed);
    uv_close((uv_handle_t *)&o->trim_timer, on_timer_closed);
}

int cn_origin_watch(struct cn_origin *o, curl_socket_t fd, int events, cn_origin_watch_cb cb,
                    void *arg)
{
    struct sock_ctx *c = sock_for(o, fd, 1);
    if (!c)
        return -1;
    c->idle = 0;
    if (!events) {
        c->user_cb = NULL;
        uv_poll_stop(&c->poll);
        c->events = 0;
        return 0;
    }
    c->user_cb = cb;
    c->user_arg = arg;
    if (events == c->events)
        return 0;
    int rc = uv_poll_start(&c->poll, events, on_poll);
    c->events = rc < 0 ? 0 : events;
    return rc;
}

int cn_origin_start(struct cn_origin *o, struct cn_origin_xfer *x)
{
    if (multi_ready(o) < 0)
        return PX_ERR_NOMEM;
    x->o = o;
    curl_easy_setopt(x->easy, CURLOPT_PRIVATE, (char *)x);
    curl_easy_setopt(x->easy, CURLOPT_CLOSESOCKETFUNCTION, close_socket_cb);
    curl_easy_setopt(x->easy, CURLOPT_CLOSESOCKETDATA, o);
    if (curl_multi_add_handle(o->multi, x->easy) != CURLM_OK)
        return PX_ERR_NOMEM;
    x->active = 1;
    x->in_multi = 1;
    x->paused = 0;
    return 0;
}

void cn_origin_cancel(struct cn_origin_xfer *x)
{
    struct cn_origin *o = x->o;
    if (x->in_multi) {
        curl_multi_remove_handle(o->multi, x->easy);
        x->in_multi = 0;
    }
    x->active = 0;
    px_list_remove(&x->kick_node);
    x->unpause_mask = 0;
}

void cn_origin_unpause(struct cn_origin_xfer *x, int bits)
{
    if (!x->active || !(x->paused & bits))
        return;
    struct cn_origin *o = x->o;
    if (!px_list_linked(&x->kick_node))
        px_list_insert_tail(&o->kick, &x->kick_node);
    x->unpause_mask |= bits;
    if (!uv_is_active((uv_handle_t *)&o->kick_timer))
        uv_timer_start(&o->kick_timer, on_kick, 0, 0);
}

enum cn_origin_cause cn_origin_cause_of(CURLcode res)
{
    switch (res) {
    case CURLE_COULDNT_CONNECT:
        return CN_ORIGIN_REFUSED;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return CN_ORIGIN_RESOLVE;
    case CURLE_PEER_FAILED_VERIFICATION:
        return CN_ORIGIN_TLS_VERIFY;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED:
        return CN_ORIGIN_TLS;
    case CURLE_OPERATION_TIMEDOUT:
        return CN_ORIGIN_TIMEOUT;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2_STREAM:
        return CN_ORIGIN_RESET;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_WRITE_ERROR:
    case CURLE_HTTP2:
    case CURLE_BAD_CONTENT_ENCODING:
        return CN_ORIGIN_BAD_RESPONSE;
    default:
        return CN_ORIGIN_OTHER;
    }
}
