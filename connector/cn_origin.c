#include "cn_origin.h"
#include "px_err.h"
#include "px_log.h"

#include <stdlib.h>

struct sock_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
};

static uv_loop_t *loop;
static CURLM *multi;
static uv_timer_t timeout_timer;
static uv_timer_t kick_timer;
static struct cn_origin_xfer *kick_list;

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
        curl_multi_remove_handle(multi, e);
        if (x) {
            x->active = 0;
            x->on_done(x, res);
        }
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct sock_ctx *s = h->data;
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

static int socket_cb(CURL *e, curl_socket_t fd, int what, void *arg, void *sockp)
{
    (void)e;
    (void)arg;
    struct sock_ctx *s = sockp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            uv_poll_stop(&s->poll);
            uv_close((uv_handle_t *)&s->poll, free_sock);
            curl_multi_assign(multi, fd, NULL);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s)
            return -1;
        s->fd = fd;
        if (uv_poll_init_socket(loop, &s->poll, fd) < 0) {
            free(s);
            return -1;
        }
        s->poll.data = s;
        curl_multi_assign(multi, fd, s);
    }
    int ev = 0;
    if (what & CURL_POLL_IN)
        ev |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        ev |= UV_WRITABLE;
    uv_poll_start(&s->poll, ev, on_poll);
    return 0;
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
    curl_multi_cleanup(multi);
    multi = NULL;
}

int cn_origin_start(struct cn_origin_xfer *x)
{
    curl_easy_setopt(x->easy, CURLOPT_PRIVATE, (char *)x);
    if (curl_multi_add_handle(multi, x->easy) != CURLM_OK)
        return PX_ERR_NOMEM;
    x->active = 1;
    x->paused = 0;
    return 0;
}

void cn_origin_cancel(struct cn_origin_xfer *x)
{
    if (x->active) {
        curl_multi_remove_handle(multi, x->easy);
        x->active = 0;
    }
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
