/* es_worker: more loops serving browser connections (`serve --workers N`).
 *
 * The home loop (es_server_run's) keeps everything that decides: the
 * listeners, the tunnel links, the registry, the store, access policies,
 * assertion keys, per-client fairness, connection caps and every request's
 * dispatch. Each of the N-1 workers is a loop in its own thread with its own
 * es_server (es_server.worker set) that holds only browser connections: TLS
 * with its own context and SNI certificate cache (es_certs_view_init), and
 * HTTP/1.1 or HTTP/2 to the browser. A request read there is carried to the
 * home loop and back by es_relay (es_relay.h).
 *
 * The home loop accepts every browser connection and hands them out in
 * turn, itself included (after admission by its connection caps): a
 * connection stays on the loop that got it. What the two sides share is
 * only this module's queues (a mutex and a uv_async per direction), the
 * metrics (locked inside, es_metrics.h) and access-policy sets (immutable,
 * counted references, es_access.h): nothing else is touched by two threads.
 *
 * Every function here runs on the home loop's thread unless it says
 * otherwise. */
#ifndef ES_WORKER_H
#define ES_WORKER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct es_server;
struct es_worker;
struct es_peer;

/* --workers: the most loops serving browser connections, home included. */
#define ES_WORKERS_MAX 64

/* What crosses between a worker and its home (es_worker_post_*). obj and the
 * numbers are the type's; data[len] bytes follow. Made with es_wmsg_new,
 * owned by the queue once posted, freed by the receiver. */
enum es_wmsg_type {
    /* home -> worker */
    ES_WM_CONN = 1,  /* a browser connection: a = its descriptor, obj = its
                        es_conncap key (handed back by ES_WM_CONN_CLOSED) */
    ES_WM_DRAIN,     /* a = final (es_front_drain) */
    ES_WM_CLOSE_ALL, /* close every browser connection (shutdown) */
    ES_WM_ACCESS,    /* obj = a reference to the new access policies */
    ES_WM_STOP,      /* close everything and end the thread */
    /* worker -> home */
    ES_WM_CONN_CLOSED, /* obj = the es_conncap key, b = the home copy of the
                          connection's certificate (es_peer, may be 0) */
    /* es_relay's, both ways (es_relay_on_msg) */
    ES_WM_RELAY_FIRST = 100,
};

struct es_wmsg {
    struct es_wmsg *next;
    int type;
    void *obj;
    uint64_t a, b;
    size_t len;
    uint8_t data[];
};

/* A message with len bytes of room (copied from data when it is not NULL).
 * NULL when out of memory. */
struct es_wmsg *es_wmsg_new(int type, void *obj, uint64_t a, uint64_t b, const void *data,
                            size_t len);

/* Starts n - 1 workers for srv (n: loops in all, 1..ES_WORKERS_MAX; 1 starts
 * none and srv->workers stays NULL). Call after srv's TLS, certificates and
 * access policies are set up and before its listeners open. Returns 0, or
 * < 0 (logged) with none started. */
int es_workers_start(struct es_server *srv, unsigned n);
/* Stops and joins srv's workers (their connections close at once), then
 * handles what they sent last. Safe when none were started. */
void es_workers_stop(struct es_server *srv);
/* From es_front_accept on the home loop: hands the connection waiting on
 * listener to the next worker in turn and returns 1, or returns 0 when it is
 * the home loop's turn (or there are no workers): then the caller accepts
 * it. A connection over srv's caps is refused here (returns 1). */
int es_workers_take(struct es_server *srv, uv_stream_t *listener);
/* Browser connections open on srv's workers (as the home loop last heard). */
unsigned es_workers_fronts(const struct es_server *srv);
/* es_front_drain / es_front_close_all / es_front_recheck_access for the
 * workers' connections (told, not waited for). */
void es_workers_drain(struct es_server *srv, int final);
void es_workers_close_all(struct es_server *srv);
void es_workers_access_changed(struct es_server *srv);

/* The worker's relays (es_relay.h). */
struct es_relays *es_worker_relays(struct es_worker *w);
/* On a worker's loop: its browser connection closed; hands cap_key and
 * home_peer (either may be NULL; both owned by the home loop from here on)
 * back to the home loop. */
void es_worker_conn_closed(struct es_worker *w, char *cap_key, struct es_peer *home_peer);
/* Posts m to the worker's loop (from the home loop) or to its home (from the
 * worker's loop). Never fails: m is queued. */
void es_worker_post_worker(struct es_worker *w, struct es_wmsg *m);
void es_worker_post_home(struct es_worker *w, struct es_wmsg *m);

/* For tests: a worker with no thread or loop of its own, standing between
 * home and a harness's worker server on the same loop (the harness sets
 * that server's .worker to it). Messages both ways stay queued until
 * es_worker_test_pump delivers them, in order, on the calling thread.
 * NULL when out of memory. */
struct es_worker *es_worker_test_new(struct es_server *home);
/* Delivers every queued message, the home loop's and the worker's, until
 * none is left. Returns how many. */
unsigned es_worker_test_pump(struct es_worker *w);
/* Ends the relays still open on both sides (es_relays_stop_*), delivers
 * what that sends, and frees w. */
void es_worker_test_free(struct es_worker *w);

#endif
