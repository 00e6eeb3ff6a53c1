/* cn_origin: libcurl's multi interface driven by the libuv loop (socket API).
 * Transfers embed struct cn_origin_xfer and are told when they finish. */
#ifndef CN_ORIGIN_H
#define CN_ORIGIN_H

#include <curl/curl.h>
#include <uv.h>

struct cn_origin_xfer {
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
    struct cn_origin_xfer *kick_next;
};

/* Watches fd (a raw transfer's socket) for UV_READABLE/UV_WRITABLE and calls
 * cb(arg, status, events) on readiness. events 0 stops watching. */
typedef void (*cn_origin_watch_cb)(void *arg, int status, int events);
int cn_origin_watch(curl_socket_t fd, int events, cn_origin_watch_cb cb, void *arg);

int cn_origin_init(uv_loop_t *loop);
void cn_origin_cleanup(void);
/* Starts x->easy. Returns 0 or PX_ERR_*. */
int cn_origin_start(struct cn_origin_xfer *x);
/* Cancels an active transfer without calling on_done. */
void cn_origin_cancel(struct cn_origin_xfer *x);
/* Returns an easy handle with default options (from a small pool of reset
 * handles; creating one costs more than reusing). NULL on no memory. */
CURL *cn_origin_easy_get(void);
/* Returns e to the pool (or frees it). e must not be in the multi handle. */
void cn_origin_easy_put(CURL *e);
/* Schedules clearing pause bits (CURLPAUSE_RECV / CURLPAUSE_SEND) outside any
 * curl callback, at the start of the next loop iteration. */
void cn_origin_unpause(struct cn_origin_xfer *x, int bits);

#endif
