#include "cn_origin.h"
#include "px_err.h"
#include "px_log.h"

#include <stdlib.h>
#include <unistd.h>

struct sock_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
    cn_origin_watch_cb user_cb; /* set while the application owns the socket */
    void *user_arg;
};

static uv_loop_t *loop;
static CURLM *multi;
static uv_timer_t timeout_timer;
static uv_timer_t kick_timer;
static struct cn_origin_xfer *kick_list;

#define EASY_POOL_MAX 64
static CURL *easy_pool[EASY_POOL_MAX];
static size_t easy_pool_n;

CURL *cn_origin_easy_get(void)
{
    if (easy_pool_n > 0)
        return easy_pool[--easy_pool_n];
    return curl_easy_init();
}

void cn_origin_easy_put(CURL *e)
{
    if (!e)
        return;
    if (easy_pool_n < EASY_POOL_MAX) {
        curl_easy_reset(e);
        easy_pool[easy_pool_n++] = e;
        return;
    }
    curl_easy_cleanup(e);
}

static void check_done(void)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURL *e = m->easy_handle;
        CURLcode res = m->data.result;
        struct cn_origin_xfer *x = NULL;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&x);
        if (!x || !x->raw) {
            curl_multi_remove_handle(multi, e);
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
    if (s->user_cb) {
        s->user_cb(s->user_arg, status, events);
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
    curl_multi_socket_action(multi, s->fd, flags, &running);
    check_done();
}

static void on_timeout(uv_timer_t *t)
{
    (void)t;
    int running;
    curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done();
}

static int timer_cb(CURLM *m, long timeout_ms, void *arg)
{
    (void)m;
    (void)arg;
    if (timeout_ms < 0)
        uv_timer_stop(&timeout_timer);
    else
        uv_timer_start(&timeout_timer, on_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

static void free_sock(uv_handle_t *h)
{
    free(h->data);
}

/* Poll handles live as long as the socket, not as long as curl watches it:
 * curl stops watching a connection each time it goes idle in its cache and
 * starts again on reuse, and recreating the handle each time cost three
 * epoll_ctl calls per request. They are found by descriptor and closed from
 * curl's close-socket callback. */
static struct sock_ctx **by_fd;
static size_t by_fd_cap;

static struct sock_ctx *sock_for(curl_socket_t fd, int create)
{
    if (fd < 0)
        return NULL;
    if ((size_t)fd >= by_fd_cap) {
        if (!create)
            return NULL;
        size_t cap = by_fd_cap ? by_fd_cap : 256;
        while (cap <= (size_t)fd)
            cap *= 2;
        struct sock_ctx **n = realloc(by_fd, cap * sizeof(*n));
        if (!n)
            return NULL;
        for (size_t i = by_fd_cap; i < cap; i++)
            n[i] = NULL;
        by_fd = n;
        by_fd_cap = cap;
    }
    if (!by_fd[fd] && create) {
        struct sock_ctx *c = calloc(1, sizeof(*c));
        if (!c)
            return NULL;
        c->fd = fd;
        if (uv_poll_init_socket(loop, &c->poll, fd) < 0) {
            free(c);
            return NULL;
        }
        c->poll.data = c;
        by_fd[fd] = c;
    }
    return by_fd[fd];
}

static int socket_cb(CURL *e, curl_socket_t fd, int what, void *arg, void *sockp)
{
    (void)e;
    (void)arg;
    (void)sockp;
    if (what == CURL_POLL_REMOVE) {
        struct sock_ctx *c = sock_for(fd, 0);
        if (c && !c->user_cb)
            uv_poll_stop(&c->poll);
        return 0;
    }
    struct sock_ctx *c = sock_for(fd, 1);
    if (!c)
        return -1;
    c->user_cb = NULL;
    int ev = 0;
    if (what & CURL_POLL_IN)
        ev |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        ev |= UV_WRITABLE;
    uv_poll_start(&c->poll, ev, on_poll);
    return 0;
}

static int close_socket_cb(void *arg, curl_socket_t fd)
{
    (void)arg;
    struct sock_ctx *c = sock_for(fd, 0);
    if (c) {
        by_fd[fd] = NULL;
        uv_poll_stop(&c->poll);
        uv_close((uv_handle_t *)&c->poll, free_sock);
    }
    return close(fd);
}

static void on_kick(uv_timer_t *t)
{
    (void)t;
    struct cn_origin_xfer *list = kick_list;
    kick_list = NULL;
    while (list) {
        struct cn_origin_xfer *x = list;
        list = x->kick_next;
        x->kick_next = NULL;
        int bits = x->unpause_mask;
        x->unpause_mask = 0;
        if (!x->active || !(x->paused & bits))
            continue;
        x->paused &= ~bits;
        curl_easy_pause(x->easy, x->paused);
    }
    check_done();
}

int cn_origin_init(uv_loop_t *l)
{
    loop = l;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return PX_ERR_NOMEM;
    multi = curl_multi_init();
    if (!multi)
        return PX_ERR_NOMEM;
    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
    /* The cache counts busy connections too: sized below the stream
     * concurrency it closes a connection after almost every request. */
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, 2048L);
    uv_timer_init(loop, &timeout_timer);
    uv_timer_init(loop, &kick_timer);
    return 0;
}

void cn_origin_cleanup(void)
{
    if (!multi)
        return;
    uv_close((uv_handle_t *)&timeout_timer, NULL);
    uv_close((uv_handle_t *)&kick_timer, NULL);
    while (easy_pool_n > 0)
        curl_easy_cleanup(easy_pool[--easy_pool_n]);
    curl_multi_cleanup(multi); /* closes cached connections via close_socket_cb */
    for (size_t i = 0; i < by_fd_cap; i++)
        if (by_fd[i])
            uv_close((uv_handle_t *)&by_fd[i]->poll, free_sock);
    free(by_fd);
    by_fd = NULL;
    by_fd_cap = 0;
    multi = NULL;
}

int cn_origin_watch(curl_socket_t fd, int events, cn_origin_watch_cb cb, void *arg)
{
    struct sock_ctx *c = sock_for(fd, 1);
    if (!c)
        return -1;
    if (!events) {
        c->user_cb = NULL;
        uv_poll_stop(&c->poll);
        return 0;
    }
    c->user_cb = cb;
    c->user_arg = arg;
    return uv_poll_start(&c->poll, events, on_poll);
}

int cn_origin_start(struct cn_origin_xfer *x)
{
    curl_easy_setopt(x->easy, CURLOPT_PRIVATE, (char *)x);
    curl_easy_setopt(x->easy, CURLOPT_CLOSESOCKETFUNCTION, close_socket_cb);
    if (curl_multi_add_handle(multi, x->easy) != CURLM_OK)
        return PX_ERR_NOMEM;
    x->active = 1;
    x->in_multi = 1;
    x->paused = 0;
    return 0;
}

void cn_origin_cancel(struct cn_origin_xfer *x)
{
    if (x->in_multi) {
        curl_multi_remove_handle(multi, x->easy);
        x->in_multi = 0;
    }
    x->active = 0;
    if (x->unpause_mask || x->kick_next) {
        for (struct cn_origin_xfer **p = &kick_list; *p; p = &(*p)->kick_next) {
            if (*p == x) {
                *p = x->kick_next;
                break;
            }
        }
        x->kick_next = NULL;
        x->unpause_mask = 0;
    }
}

void cn_origin_unpause(struct cn_origin_xfer *x, int bits)
{
    if (!x->active || !(x->paused & bits))
        return;
    if (!x->unpause_mask) {
        x->kick_next = kick_list;
        kick_list = x;
    }
    x->unpause_mask |= bits;
    if (!uv_is_active((uv_handle_t *)&kick_timer))
        uv_timer_start(&kick_timer, on_kick, 0, 0);
}
