/* cn_origin: libcurl's multi interface driven by the libuv loop (socket API).
 * One struct cn_origin per loop holds the multi handle, its timers, the poll
 * handles of curl's sockets and a pool of reset easy handles: nothing is
 * process-wide, so two loops (two threads, or a test beside a daemon) each
 * have their own. Transfers embed struct cn_origin_xfer and are told when
 * they finish. */
#ifndef CN_ORIGIN_H
#define CN_ORIGIN_H

#include "px_list.h"

#include <curl/curl.h>
#include <uv.h>

struct cn_origin;

struct cn_origin_xfer {
    struct cn_origin *o; /* set by cn_origin_start */
    CURL *easy;
    /* Called from the loop (never inside curl) when the transfer ends. The
     * easy handle is already removed from the multi handle. */
    void (*on_done)(struct cn_origin_xfer *x, CURLcode result);
    int paused;       /* CURLPAUSE_* bits currently applied */
    int unpause_mask; /* bits to clear at the next kick */
    int active;
    int raw; /* CURLOPT_CONNECT_ONLY: stays in the multi handle after it is
                done, so curl_easy_send/recv keep working until cancel */
    int in_multi;
    /* In o's list of transfers to unpause at the next kick while
     * unpause_mask is set; zeroed (as the transfer's owner allocates it) it
     * is in none. */
    struct px_list_node kick_node;
};

/* Watches fd (a raw transfer's socket) for UV_READABLE/UV_WRITABLE and calls
 * cb(arg, status, events) on readiness. events 0 stops watching. */
typedef void (*cn_origin_watch_cb)(void *arg, int status, int events);
int cn_origin_watch(struct cn_origin *o, curl_socket_t fd, int events, cn_origin_watch_cb cb,
                    void *arg);

/* Creates the origin context of loop. Returns 0 and *out, or PX_ERR_NOMEM. */
int cn_origin_new(uv_loop_t *loop, struct cn_origin **out);
/* Frees o (NULL is fine): every transfer must be cancelled first. Its uv
 * handles close from the loop: run it afterwards until they are gone. */
void cn_origin_free(struct cn_origin *o);
/* Starts x->easy on o (x->o = o). Returns 0 or PX_ERR_*. */
int cn_origin_start(struct cn_origin *o, struct cn_origin_xfer *x);
/* Cancels an active transfer without calling on_done (no-op when never
 * started). */
void cn_origin_cancel(struct cn_origin_xfer *x);
/* Returns an easy handle with default options (from o's pool of reset
 * handles, as large as the transfers lately active at once: creating one
 * costs more than reusing). NULL on no memory. Every handle got here goes
 * back through cn_origin_easy_put (the pool counts them). */
CURL *cn_origin_easy_get(struct cn_origin *o);
/* Returns e (NULL is fine) to o's pool, or frees it. e must not be in the
 * multi handle. */
void cn_origin_easy_put(struct cn_origin *o, CURL *e);
/* Why an origin request failed, as the operator groups it (metrics): the
 * type of the failure, never the words of curl's message. */
enum cn_origin_cause {
    CN_ORIGIN_REFUSED,      /* the connection was refused */
    CN_ORIGIN_RESOLVE,      /* the origin's name did not resolve */
    CN_ORIGIN_TLS_VERIFY,   /* the origin's certificate did not verify */
    CN_ORIGIN_TLS,          /* any other TLS failure (a client certificate refused, say) */
    CN_ORIGIN_TIMEOUT,      /* connect timeout, or no response head in time */
    CN_ORIGIN_RESET,        /* the connection broke, or closed without an answer */
    CN_ORIGIN_BAD_RESPONSE, /* not a valid HTTP (or WebSocket handshake) answer */
    CN_ORIGIN_OTHER,
    CN_ORIGIN_N_CAUSES
};

/* The cause a failed transfer's result stands for (cn_stream_diag refines
 * it where a second look tells more). */
enum cn_origin_cause cn_origin_cause_of(CURLcode res);

/* Schedules clearing pause bits (CURLPAUSE_RECV / CURLPAUSE_SEND) outside any
 * curl callback, at the start of the next loop iteration. */
void cn_origin_unpause(struct cn_origin_xfer *x, int bits);

#endif
