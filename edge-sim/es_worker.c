#include "es_worker.h"
#include "es_access.h"
#include "es_drain.h"
#include "es_front.h"
#include "es_metrics.h"
#include "es_peer.h"
#include "es_relay.h"
#include "es_server.h"
#include "px_err.h"
#include "px_log.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One direction's queue. The sending loop stages what an iteration posts
 * and moves it in at once from its flush hook (rt_loop_set_after_flush):
 * one lock and one wake-up per iteration, not per message; the receiving
 * loop wakes on its async handle and takes the whole list at once. */
struct wq {
    uv_mutex_t mu;
    struct es_wmsg *head, *tail;
    uv_async_t *wake;                    /* the receiving loop's */
    struct es_wmsg *staged, *staged_end; /* the sending loop's only */
};

struct es_worker {
    unsigned index; /* 1.. (the home loop is 0) */
    struct es_server *home;
    struct es_server srv; /* the worker's: its loop and browser connections */
    uv_loop_t loop;
    uv_thread_t thread;
    int thread_started;
    uv_sem_t ready;
    int start_rc;
    struct wq to_worker, to_home;
    uv_async_t wake_worker; /* on the worker's loop */
    uv_async_t wake_home;   /* on the home loop */
    int stopping;           /* worker's loop: ES_WM_STOP arrived */
    unsigned open;          /* home loop: its browser connections, as last heard */
    struct es_relays relays;
};

struct es_workers {
    unsigned n;    /* workers (loops besides home) */
    unsigned next; /* whose turn the next connection is: 0 home, i worker i */
    struct es_worker *w[ES_WORKERS_MAX];
};

struct es_wmsg *es_wmsg_new(int type, void *obj, uint64_t a, uint64_t b, const void *data,
                            size_t len)
{
    struct es_wmsg *m = malloc(sizeof(*m) + len);
    if (!m)
        return NULL;
    m->next = NULL;
    m->type = type;
    m->obj = obj;
    m->a = a;
    m->b = b;
    m->len = len;
    if (data && len)
        memcpy(m->data, data, len);
    return m;
}

static void wq_push(struct wq *q, struct es_wmsg *m)
{
    m->next = NULL;
    if (q->staged_end)
        q->staged_end->next = m;
    else
        q->staged = m;
    q->staged_end = m;
}

/* Moves what the sending loop staged into the queue, and wakes the
 * receiver. */
static void wq_flush(struct wq *q)
{
    if (!q->staged)
        return;
    uv_mutex_lock(&q->mu);
    if (q->tail)
        q->tail->next = q->staged;
    else
        q->head = q->staged;
    q->tail = q->staged_end;
    uv_mutex_unlock(&q->mu);
    q->staged = q->staged_end = NULL;
    uv_async_send(q->wake); /* coalesced by libuv too */
}

/* After the sending and receiving threads are both this one: the queue
 * and the staged messages, in order, without waking anyone. */
static struct es_wmsg *wq_take_all(struct wq *q)
{
    struct es_wmsg *m = q->head;
    if (q->tail)
        q->tail->next = q->staged;
    else
        m = q->staged;
    q->head = q->tail = q->staged = q->staged_end = NULL;
    return m;
}

static struct es_wmsg *wq_take(struct wq *q)
{
    uv_mutex_lock(&q->mu);
    struct es_wmsg *m = q->head;
    q->head = q->tail = NULL;
    uv_mutex_unlock(&q->mu);
    return m;
}

void es_worker_post_worker(struct es_worker *w, struct es_wmsg *m)
{
    wq_push(&w->to_worker, m);
}

void es_worker_post_home(struct es_worker *w, struct es_wmsg *m)
{
    wq_push(&w->to_home, m);
}

struct es_relays *es_worker_relays(struct es_worker *w)
{
    return &w->relays;
}

/* ---- on the worker's loop ---- */

static void worker_stop(struct es_worker *w)
{
    if (w->stopping)
        return;
    w->stopping = 1;
    es_front_close_all(&w->srv);
    es_relays_stop_worker_side(&w->relays);
    uv_close((uv_handle_t *)&w->wake_worker, NULL);
}

/* A message that arrived on the worker's loop, or (home) one left over after
 * it ended: then w's loop is gone and only what the message owns is let go. */
static void worker_msg(struct es_worker *w, struct es_wmsg *m, int loop_gone)
{
    switch (m->type) {
    case ES_WM_CONN:
        if (loop_gone || w->stopping) {
            close((int)m->a);
            es_worker_conn_closed(w, m->obj, NULL);
        } else {
            es_front_adopt(&w->srv, (int)m->a, m->obj);
        }
        break;
    case ES_WM_DRAIN:
        if (!loop_gone && !w->stopping) {
            w->srv.drain_phase = m->a ? ES_DRAIN_FINAL : ES_DRAIN_NOTICE;
            es_front_drain(&w->srv, (int)m->a);
        }
        break;
    case ES_WM_CLOSE_ALL:
        if (!loop_gone)
            es_front_close_all(&w->srv);
        break;
    case ES_WM_ACCESS:
        if (loop_gone) {
            es_access_free(m->obj);
        } else {
            es_access_free(w->srv.access);
            w->srv.access = m->obj;
            w->srv.access_gen++;
            es_front_recheck_access(&w->srv);
        }
        break;
    case ES_WM_STOP:
        if (!loop_gone)
            worker_stop(w);
        break;
    default:
        es_relay_on_msg(&w->relays, NULL, m);
        return; /* freed there */
    }
    free(m);
}

static void on_worker_wake(uv_async_t *a)
{
    struct es_worker *w = a->data;
    struct es_wmsg *m = wq_take(&w->to_worker);
    while (m) {
        struct es_wmsg *next = m->next;
        worker_msg(w, m, 0);
        m = next;
    }
}

void es_worker_conn_closed(struct es_worker *w, char *cap_key, struct es_peer *home_peer)
{
    struct es_wmsg *m =
        es_wmsg_new(ES_WM_CONN_CLOSED, cap_key, 0, (uint64_t)(uintptr_t)home_peer, NULL, 0);
    if (!m) {
        /* The home loop cannot hear it: its count of this worker's
         * connections stays one high, and the address keeps one slot. */
        PX_WARN("out of memory returning a browser connection's slot to the home loop");
        if (home_peer) {
            es_peer_cleanup(home_peer);
            free(home_peer);
        }
        free(cap_key);
        return;
    }
    es_worker_post_home(w, m);
}

static void worker_flush(void *arg)
{
    struct es_worker *w = arg;
    wq_flush(&w->to_home);
}

/* The worker's server: what its browser connections read of one. */
static int worker_setup(struct es_worker *w)
{
    struct es_server *home = w->home, *s = &w->srv;
    int rc = uv_loop_init(&w->loop);
    if (rc < 0)
        return px_err_from_errno(rc);
    s->loop = &w->loop;
    rc = rt_loop_init(&s->rt, s->loop);
    if (rc < 0)
        goto out_loop;
    s->worker = w;
    s->idle_timeout_ms = home->idle_timeout_ms;
    s->header_timeout_ms = home->header_timeout_ms;
    s->body_timeout_ms = home->body_timeout_ms;
    s->handshake_timeout_ms = home->handshake_timeout_ms;
    s->metrics = home->metrics; /* locked inside */
    s->access_log = home->access_log;
    s->access = es_access_ref(home->access);
    s->access_gen = 1;
    rc = es_certs_view_init(&s->certs, &home->certs, rt_loop_rng(&s->rt));
    if (rc < 0)
        goto out_rt;
    rc = es_front_ctx_init(s);
    if (rc < 0)
        goto out_certs;
    rc = uv_async_init(s->loop, &w->wake_worker, on_worker_wake);
    if (rc < 0) {
        rc = px_err_from_errno(rc);
        goto out_ctx;
    }
    w->wake_worker.data = w;
    rt_loop_set_after_flush(&s->rt, worker_flush, w);
    return 0;
out_ctx:
    wolfSSL_CTX_free(s->front_ctx);
    s->front_ctx = NULL;
out_certs:
    es_certs_view_cleanup(&s->certs);
out_rt:
    es_access_free(s->access);
    s->access = NULL;
    rt_loop_cleanup(&s->rt);
    uv_run(s->loop, UV_RUN_NOWAIT);
out_loop:
    uv_loop_close(&w->loop);
    return rc;
}

static void worker_main(void *arg)
{
    struct es_worker *w = arg;
    /* Named, so that top -H and /proc/PID/task tell the loops apart. */
    char name[16];
    snprintf(name, sizeof(name), "edge-worker-%u", w->index % 100);
    pthread_setname_np(pthread_self(), name);
    w->start_rc = worker_setup(w);
    uv_sem_post(&w->ready);
    if (w->start_rc < 0)
        return;
    uv_run(&w->loop, UV_RUN_DEFAULT); /* until ES_WM_STOP closed everything */
    struct es_server *s = &w->srv;
    es_relays_stop_worker_side(&w->relays);
    wq_flush(&w->to_home); /* the last word: the home loop reads it after the join */
    rt_loop_cleanup(&s->rt);
    uv_run(s->loop, UV_RUN_NOWAIT);
    es_access_free(s->access);
    s->access = NULL;
    wolfSSL_CTX_free(s->front_ctx);
    s->front_ctx = NULL;
    es_certs_view_cleanup(&s->certs);
    if (uv_loop_close(&w->loop) != 0)
        PX_WARN("worker %u: its loop closed with handles open", w->index);
}

/* ---- on the home loop ---- */

static void home_msg(struct es_worker *w, struct es_wmsg *m)
{
    struct es_server *home = w->home;
    if (m->type == ES_WM_CONN_CLOSED) {
        char *key = m->obj;
        es_conncap_release(&home->conns, &key);
        struct es_peer *p = (struct es_peer *)(uintptr_t)m->b;
        if (p) {
            es_peer_cleanup(p);
            free(p);
        }
        if (w->open)
            w->open--;
        free(m);
        return;
    }
    es_relay_on_msg(&w->relays, home, m);
}

static void on_home_wake(uv_async_t *a)
{
    struct es_worker *w = a->data;
    struct es_wmsg *m = wq_take(&w->to_home);
    while (m) {
        struct es_wmsg *next = m->next;
        home_msg(w, m);
        m = next;
    }
}

/* Once w's thread is gone (or it has none: es_worker_test_new), both
 * directions are the calling thread's: delivers what each holds, queued or
 * staged, until nothing is left (what that sends is delivered too).
 * loop_gone: the worker's loop has ended, so its messages only let go of
 * what they own. Returns how many were delivered. */
static unsigned settle(struct es_worker *w, int loop_gone)
{
    unsigned n = 0;
    for (;;) {
        struct es_wmsg *up = wq_take_all(&w->to_home), *down = wq_take_all(&w->to_worker);
        if (!up && !down)
            return n;
        while (up) {
            struct es_wmsg *next = up->next;
            home_msg(w, up);
            up = next;
            n++;
        }
        while (down) {
            struct es_wmsg *next = down->next;
            worker_msg(w, down, loop_gone);
            down = next;
            n++;
        }
    }
}

static void worker_free(struct es_worker *w)
{
    settle(w, 1); /* nothing posts to it any more: let go of what is left */
    uv_mutex_destroy(&w->to_worker.mu);
    uv_mutex_destroy(&w->to_home.mu);
    uv_sem_destroy(&w->ready);
    free(w);
}

static int worker_start(struct es_server *home, unsigned index, struct es_worker **out)
{
    struct es_worker *w = calloc(1, sizeof(*w));
    if (!w)
        return PX_ERR_NOMEM;
    w->index = index;
    w->home = home;
    es_relays_init(&w->relays);
    int rc = PX_ERR_NOMEM;
    if (uv_mutex_init(&w->to_worker.mu) < 0)
        goto out_free;
    if (uv_mutex_init(&w->to_home.mu) < 0)
        goto out_mu1;
    if (uv_sem_init(&w->ready, 0) < 0)
        goto out_mu2;
    w->to_worker.wake = &w->wake_worker;
    w->to_home.wake = &w->wake_home;
    int r = uv_async_init(home->loop, &w->wake_home, on_home_wake);
    if (r < 0) {
        rc = px_err_from_errno(r);
        goto out_sem;
    }
    w->wake_home.data = w;
    r = uv_thread_create(&w->thread, worker_main, w);
    if (r < 0) {
        rc = px_err_from_errno(r);
        goto out_async;
    }
    w->thread_started = 1;
    uv_sem_wait(&w->ready);
    if (w->start_rc < 0) {
        rc = w->start_rc;
        uv_thread_join(&w->thread);
        goto out_async;
    }
    *out = w;
    return 0;
out_async:
    /* Its close runs with the home loop: the worker is freed with it. */
    uv_close((uv_handle_t *)&w->wake_home, NULL);
    uv_run(home->loop, UV_RUN_NOWAIT);
out_sem:
    uv_sem_destroy(&w->ready);
out_mu2:
    uv_mutex_destroy(&w->to_home.mu);
out_mu1:
    uv_mutex_destroy(&w->to_worker.mu);
out_free:
    free(w);
    return rc;
}

static void home_flush(void *arg)
{
    struct es_workers *ws = arg;
    for (unsigned i = 0; i < ws->n; i++)
        wq_flush(&ws->w[i]->to_worker);
}

int es_workers_start(struct es_server *srv, unsigned n)
{
    if (n <= 1)
        return 0;
    if (n > ES_WORKERS_MAX)
        n = ES_WORKERS_MAX;
    struct es_workers *ws = calloc(1, sizeof(*ws));
    if (!ws) {
        PX_ERROR("out of memory");
        return PX_ERR_NOMEM;
    }
    srv->workers = ws;
    for (unsigned i = 1; i < n; i++) {
        int rc = worker_start(srv, i, &ws->w[ws->n]);
        if (rc < 0) {
            PX_ERROR("cannot start worker loop %u: %s", i, px_strerror(rc));
            es_workers_stop(srv);
            return rc;
        }
        ws->n++;
    }
    rt_loop_set_after_flush(rt_loop_of(srv->loop), home_flush, ws);
    PX_INFO("serving browser connections on %u loops", n);
    return 0;
}

static void post_all(struct es_server *srv, int type, uint64_t a)
{
    struct es_workers *ws = srv->workers;
    for (unsigned i = 0; ws && i < ws->n; i++) {
        struct es_wmsg *m = es_wmsg_new(type, NULL, a, 0, NULL, 0);
        if (!m) {
            PX_WARN("out of memory telling worker loop %u", ws->w[i]->index);
            continue;
        }
        es_worker_post_worker(ws->w[i], m);
    }
}

void es_workers_stop(struct es_server *srv)
{
    struct es_workers *ws = srv->workers;
    if (!ws)
        return;
    post_all(srv, ES_WM_STOP, 0);
    rt_loop_set_after_flush(rt_loop_of(srv->loop), NULL, NULL);
    for (unsigned i = 0; i < ws->n; i++) {
        struct es_worker *w = ws->w[i];
        wq_flush(&w->to_worker); /* ES_WM_STOP */
        uv_thread_join(&w->thread);
        /* Its thread is gone: both directions are this thread's now. What
         * the worker sent last is handled, what it never read is let go,
         * and the home halves still open end, until nothing is left. */
        settle(w, 1);
        es_relays_stop_home_side(&w->relays);
        settle(w, 1);
        uv_close((uv_handle_t *)&w->wake_home, NULL);
    }
    /* Gone before the loop runs again: that run may fire the drain's timer,
     * whose es_front_drain would otherwise stage a message for a worker
     * about to be freed (a leak LeakSanitizer caught in test_drain). */
    srv->workers = NULL;
    uv_run(srv->loop, UV_RUN_NOWAIT); /* the async handles' closes */
    for (unsigned i = 0; i < ws->n; i++)
        worker_free(ws->w[i]);
    free(ws);
}

static int peer_name(uv_tcp_t *t, char *ip, size_t iplen)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getpeername(t, (struct sockaddr *)&ss, &len) < 0)
        return -1;
    if (ss.ss_family == AF_INET6)
        return uv_ip6_name((struct sockaddr_in6 *)&ss, ip, iplen);
    return uv_ip4_name((struct sockaddr_in *)&ss, ip, iplen);
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

int es_workers_take(struct es_server *srv, uv_stream_t *listener)
{
    struct es_workers *ws = srv->workers;
    if (!ws || ws->n == 0)
        return 0;
    unsigned turn = ws->next++ % (ws->n + 1);
    if (turn == 0)
        return 0;
    struct es_worker *w = ws->w[turn - 1];
    /* Accepted here, so that the caps are checked in one place; the
     * descriptor moves to the worker's loop. */
    uv_tcp_t *t = malloc(sizeof(*t));
    if (!t)
        return 0; /* the home loop takes it */
    if (uv_tcp_init(srv->loop, t) < 0) {
        free(t);
        return 0; /* the home loop takes it */
    }
    char ip[64] = "";
    char *key = NULL;
    uv_os_fd_t fd;
    int dup_fd = -1;
    if (uv_accept(listener, (uv_stream_t *)t) < 0 || uv_fileno((uv_handle_t *)t, &fd) < 0)
        goto out;
    if (peer_name(t, ip, sizeof(ip)) < 0)
        goto out;
    int rc = es_conncap_admit(&srv->conns, ip, "browser", uv_now(srv->loop), &key);
    if (rc < 0) {
        if (rc == PX_ERR_DENIED)
            es_metrics_refusal(srv->metrics, ES_REFUSAL_CONNECTION_CAP, es_metrics_now_ms());
        goto out;
    }
    dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    struct es_wmsg *m =
        dup_fd >= 0 ? es_wmsg_new(ES_WM_CONN, key, (uint64_t)dup_fd, 0, NULL, 0) : NULL;
    if (!m) {
        if (dup_fd >= 0)
            close(dup_fd);
        es_conncap_release(&srv->conns, &key);
        goto out;
    }
    w->open++;
    es_worker_post_worker(w, m);
out:
    uv_close((uv_handle_t *)t, free_handle);
    return 1;
}

unsigned es_workers_fronts(const struct es_server *srv)
{
    const struct es_workers *ws = srv->workers;
    unsigned n = 0;
    for (unsigned i = 0; ws && i < ws->n; i++)
        n += ws->w[i]->open;
    return n;
}

void es_workers_drain(struct es_server *srv, int final)
{
    post_all(srv, ES_WM_DRAIN, (uint64_t) final);
}

void es_workers_close_all(struct es_server *srv)
{
    post_all(srv, ES_WM_CLOSE_ALL, 0);
}

void es_workers_access_changed(struct es_server *srv)
{
    struct es_workers *ws = srv->workers;
    for (unsigned i = 0; ws && i < ws->n; i++) {
        struct es_wmsg *m = es_wmsg_new(ES_WM_ACCESS, es_access_ref(srv->access), 0, 0, NULL, 0);
        if (!m) {
            es_access_free(srv->access); /* the reference just taken */
            PX_WARN("out of memory telling worker loop %u of new access policies", ws->w[i]->index);
            continue;
        }
        es_worker_post_worker(ws->w[i], m);
    }
}

struct es_worker *es_worker_test_new(struct es_server *home)
{
    struct es_worker *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->home = home;
    es_relays_init(&w->relays);
    return w;
}

unsigned es_worker_test_pump(struct es_worker *w)
{
    return settle(w, 0);
}

void es_worker_test_free(struct es_worker *w)
{
    es_relays_stop_worker_side(&w->relays);
    settle(w, 0);
    es_relays_stop_home_side(&w->relays);
    settle(w, 0);
    free(w);
}
