/* px_h2: the nghttp2 set-up both binaries share (no I/O): sessions with
 * manual flow control, and a buffer-backed data source for long-lived
 * streams such as the control stream. */
#ifndef PX_H2_H
#define PX_H2_H

#include "px_buf.h"

#include <nghttp2/nghttp2.h>

/* The tunnel's flow-control windows, the same on both ends. */
#define PX_H2_TUNNEL_STREAM_WINDOW (1 << 20)
#define PX_H2_TUNNEL_CONN_WINDOW (16 << 20)
/* Keepalive: a PING every interval; a peer that leaves this many unanswered is dead. */
#define PX_H2_PING_MAX_MISSED 3

/* The PING interval in ms: 5 s (a peer gone without a FIN is found within
 * (PX_H2_PING_MAX_MISSED + 1) intervals, 20 s: replaced well within 45 s), or
 * TUNNEL_PING_INTERVAL_MS (100-600000) from the environment (tests use it to see a dead peer found
 * in seconds). */
unsigned px_h2_ping_interval_ms(void);

/* The peer is our own authenticated edge. nghttp2 answers a burst of more
 * than 1,000 RST_STREAMs with GOAWAY (rapid-reset protection), but the
 * edge's resets are its browsers leaving: a mass close of 17 browser
 * connections is 2,000 resets, and must not tear the tunnel down. The edge
 * bounds each client's streams and rate-limits browser resets itself. */
#define PX_H2_PEER_RESETS_UNLIMITED 1u

/* Callbacks (begin_headers and frame_send may be NULL) and options. */
struct px_h2_callbacks {
    nghttp2_on_begin_headers_callback begin_headers;
    nghttp2_on_header_callback header;
    nghttp2_on_frame_recv_callback frame_recv;
    nghttp2_on_data_chunk_recv_callback data_chunk;
    nghttp2_on_stream_close_callback stream_close;
    nghttp2_on_frame_send_callback frame_send;
    unsigned flags; /* PX_H2_PEER_RESETS_UNLIMITED */
};

/* Creates a server or client session with automatic WINDOW_UPDATE off (the
 * application returns credit with nghttp2_session_consume as bytes move on),
 * submits the settings iv[niv] and sets the connection window. Returns 0 and
 * *out (free with nghttp2_session_del), or PX_ERR_H2 / PX_ERR_NOMEM. */
int px_h2_session_new(nghttp2_session **out, int server, const struct px_h2_callbacks *cb,
                      void *user, const nghttp2_settings_entry *iv, size_t niv,
                      int32_t conn_window);

/* Bytes queued for one stream's body; read by px_h2_outbox_read as its data
 * source (source.ptr = the outbox). The stream never ends on its own. */
struct px_h2_outbox {
    struct px_buf buf;
    int deferred;
};

void px_h2_outbox_init(struct px_h2_outbox *o);
void px_h2_outbox_cleanup(struct px_h2_outbox *o);
/* Appends n bytes and resumes stream id of session s if it was waiting.
 * Returns 0 or PX_ERR_NOMEM. */
int px_h2_outbox_push(struct px_h2_outbox *o, nghttp2_session *s, int32_t id, const void *p,
                      size_t n);
ssize_t px_h2_outbox_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                          nghttp2_data_source *src, void *user);

#endif
