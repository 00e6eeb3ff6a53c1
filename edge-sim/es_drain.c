#include "es_drain.h"
#include "es_front.h"
#include "es_link.h"
#include "es_server.h"
#include "px_log.h"

static unsigned long long since_ms(const struct es_server *srv)
{
    return (unsigned long long)(uv_now(srv->loop) - srv->drain_started);
}

static void finish(struct es_server *srv, int code)
{
    srv->drain_phase = ES_DRAIN_DONE;
    srv->exit_code = code;
    srv->stopping = 1;
    uv_timer_stop(&srv->drain_timer);
    uv_stop(srv->loop);
}

/* Phase 3: no browser is left, so nothing more will come for the links. */
static void close_links(struct es_server *srv)
{
    PX_INFO("draining: no browser connection left after %llu ms; closing %u connector "
            "connection(s)",
            since_ms(srv), es_link_count(srv));
    srv->drain_phase = ES_DRAIN_LINKS;
    es_link_close_all(srv);
}

static void on_tick(uv_timer_t *t)
{
    struct es_server *srv = t->data;
    /* Stopping (a second signal): its exit code stands, whatever the loop
     * runs while it shuts down. */
    if (srv->drain_phase == ES_DRAIN_DONE || srv->stopping)
        return;
    if (since_ms(srv) >= srv->grace_ms) {
        PX_WARN("draining: grace period (%u s) over with %u browser connection(s), %u tunnel "
                "stream(s) in flight and %u connector connection(s) open: closing them",
                srv->grace_ms / 1000, es_front_count(srv), es_link_streams(srv),
                es_link_count(srv));
        es_front_close_all(srv);
        es_link_close_all(srv);
        finish(srv, 0);
        return;
    }
    if (srv->drain_phase == ES_DRAIN_NOTICE && since_ms(srv) >= ES_DRAIN_NOTICE_MS) {
        unsigned h2 = es_front_drain(srv, 1);
        srv->drain_phase = ES_DRAIN_FINAL;
        PX_INFO("draining: final GOAWAY to %u HTTP/2 browser connection(s); %u browser "
                "connection(s) open, %u tunnel stream(s) in flight",
                h2, es_front_count(srv), es_link_streams(srv));
    }
    if ((srv->drain_phase == ES_DRAIN_NOTICE || srv->drain_phase == ES_DRAIN_FINAL) &&
        es_front_count(srv) == 0)
        close_links(srv);
    if (srv->drain_phase == ES_DRAIN_LINKS && es_link_count(srv) == 0) {
        PX_INFO("drained in %llu ms: exiting", since_ms(srv));
        finish(srv, 0);
    }
}

void es_drain_begin(struct es_server *srv)
{
    if (srv->drain_phase != ES_DRAIN_NONE)
        return;
    srv->drain_phase = ES_DRAIN_NOTICE;
    srv->drain_started = uv_now(srv->loop);
    if (srv->listening) {
        /* New connections go to the other edges (or are refused). */
        uv_close((uv_handle_t *)&srv->tunnel_listener, NULL);
        uv_close((uv_handle_t *)&srv->https_listener, NULL);
    }
    unsigned browsers = es_front_count(srv);
    unsigned h2 = es_front_drain(srv, 0);
    unsigned links = es_link_goaway_notice_all(srv);
    PX_INFO("draining: stopped accepting; GOAWAY notice to %u HTTP/2 browser connection(s) (of "
            "%u open, idle HTTP/1.1 ones closed) and to %u connector connection(s); %u tunnel "
            "stream(s) in flight; grace period %u s",
            h2, browsers, links, es_link_streams(srv), srv->grace_ms / 1000);
    uv_timer_init(srv->loop, &srv->drain_timer);
    srv->drain_timer.data = srv;
    srv->drain_timer_set = 1;
    uv_timer_start(&srv->drain_timer, on_tick, 0, ES_DRAIN_TICK_MS);
}

void es_drain_cleanup(struct es_server *srv)
{
    if (!srv->drain_timer_set)
        return;
    srv->drain_timer_set = 0;
    uv_close((uv_handle_t *)&srv->drain_timer, NULL);
}
