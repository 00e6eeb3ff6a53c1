/* es_drain: a serve asked to stop (the first SIGTERM or SIGINT) finishes what
 * it carries before it exits, in phases, each logged with its counts:
 *  1. notice (es_drain_begin): the tunnel and https listeners close (admin
 *     stays until exit); HTTP/2 browsers get a GOAWAY notice
 *     (nghttp2_submit_shutdown_notice); idle HTTP/1.1 connections and
 *     unfinished handshakes close; busy HTTP/1.1 ones answer with
 *     `Connection: close` and close after their response; connectors get a
 *     GOAWAY notice (rt_tunnel_goaway_notice), and their links stay usable
 *     for the requests still arriving (they dial their replacements at
 *     another edge meanwhile).
 *  2. final (ES_DRAIN_NOTICE_MS later): HTTP/2 browsers get the final GOAWAY
 *     (the last stream they opened); each closes once its streams are done.
 *  3. links (once no browser connection is left, whichever phase): every
 *     connector connection gets the final GOAWAY (rt_tunnel_shutdown) and
 *     closes; once they are closed the loop stops, exit code 0.
 * At srv->grace_ms after the signal whatever is still open is closed (exit
 * code 0). A second signal is es_server.c's: it stops at once (exit 1).
 *
 * The drain owns one timer on srv's loop (a tick every ES_DRAIN_TICK_MS),
 * set up by es_drain_begin and closed by es_drain_cleanup. Works on a server
 * without listeners too (in-memory tests). */
#ifndef ES_DRAIN_H
#define ES_DRAIN_H

struct es_server;

/* Between the browsers' GOAWAY notice and their final GOAWAY: about a round
 * trip, so streams they opened meanwhile are not refused. */
#define ES_DRAIN_NOTICE_MS 1000
#define ES_DRAIN_TICK_MS 100

enum es_drain_phase {
    ES_DRAIN_NONE = 0, /* serving */
    ES_DRAIN_NOTICE,   /* notices sent, listeners closed */
    ES_DRAIN_FINAL,    /* browsers got the final GOAWAY */
    ES_DRAIN_LINKS,    /* no browser left: the links are closing */
    ES_DRAIN_DONE,     /* the loop was stopped (srv->exit_code set) */
};

/* Begins draining srv (phase 1); nothing once it has begun. */
void es_drain_begin(struct es_server *srv);
/* Closes the drain's timer, if it has one (server shutdown; tests). The
 * close completes on srv's loop. */
void es_drain_cleanup(struct es_server *srv);

#endif
