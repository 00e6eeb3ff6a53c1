/* es_relay: one browser request carried between a worker loop, where its
 * browser connection is (es_worker.h), and the home loop, where requests
 * are dispatched and the tunnel links are.
 *
 * Two es_req objects stand for the request, one per loop, and each is used
 * only on its own loop's thread:
 *  - W, on the worker, is its front's request as always; at dispatch
 *    (es_req_dispatch on a worker's server) its head moves into H and W's
 *    link becomes the relay (es_relay_link_ops);
 *  - H, on the home loop, is dispatched there as any request (access
 *    policy, assertion, routing, fairness, a tunnel stream); its front is
 *    the relay (es_relay_front_ops).
 * What one side does reaches the other as a message (es_worker_post_*):
 *  worker -> home: the head (H itself), body pieces, the body's end, how
 *    much response body the browser took, and W's front letting go (with
 *    the status and refusal the browser saw, for H's access line);
 *  home -> worker: the response head (local answers included), body pieces,
 *    its end (clean, or the error that cut it), and how much request body
 *    the tunnel took.
 * Flow control: at most ES_RELAY_WINDOW bytes of each direction's body are
 * between the loops; the rest stays in W's or H's buffers, which credit
 * their peers only as bytes leave (es_req.h), so memory stays bounded.
 *
 * Lifetime: a relay has a worker half (ends once W's link is done and W's
 * front let go) and a home half (ends once H's front let go: when W's did),
 * and each message in flight holds a reference; it is freed when all are
 * gone. Messages reaching a half that ended are dropped. */
#ifndef ES_RELAY_H
#define ES_RELAY_H

#include "px_list.h"

#include <stdint.h>

struct es_req;
struct es_server;
struct es_worker;
struct es_wmsg;
struct es_peer;

#define ES_RELAY_WINDOW (256 * 1024)
#define ES_RELAY_CHUNK (16 * 1024)

/* The relays of one worker, per half; each list touched only by its loop. */
struct es_relays {
    struct px_list worker_side; /* on the worker's loop */
    struct px_list home_side;   /* on the home loop */
};

void es_relays_init(struct es_relays *set);

/* On the worker's loop, from es_req_dispatch: carries w's head to the home
 * loop as a new request H, which is dispatched there with home_peer (the
 * home copy of the connection's client certificate, or NULL; owned by the
 * connection, freed only after its last request got there). w's link is
 * the relay from here on. Returns 0, or PX_ERR_NOMEM (w is untouched: the
 * caller answers it). */
int es_relay_open(struct es_worker *wk, struct es_relays *set, struct es_req *w, int has_body,
                  struct es_peer *home_peer);
/* On the worker's loop, from es_req_front_done(w) of a relayed request. */
void es_relay_front_done(struct es_req *w);
/* Handles a relay message on the loop it was posted to; home is that
 * loop's server when it is the home loop, else NULL. Frees m. */
void es_relay_on_msg(struct es_relays *set, struct es_server *home, struct es_wmsg *m);
/* Shutdown, on each loop once its connections are closed: ends the halves
 * still open (worker: W's link is done with NGHTTP2_CANCEL; home: H's front
 * lets go). */
void es_relays_stop_worker_side(struct es_relays *set);
void es_relays_stop_home_side(struct es_relays *set);

#endif
