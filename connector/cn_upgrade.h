/* cn_upgrade: streams that stop being HTTP: a WebSocket (extended CONNECT on
 * the tunnel, an HTTP/1.1 Upgrade to the origin) or a TCP service. The origin
 * connection is opened by curl (CURLOPT_CONNECT_ONLY, so every origin TLS
 * setting applies); after that bytes are relayed unchanged both ways with the
 * same bounded buffers and flow control as any request. */
#ifndef CN_UPGRADE_H
#define CN_UPGRADE_H

#include <curl/curl.h>

#include <stddef.h>
#include <stdint.h>

struct cn_stream;

/* Opens the origin side for s (rule kind HTTP/UNIX: WebSocket; TCP: raw).
 * Returns 0, or < 0 (the caller answers 502). */
int cn_upgrade_start(struct cn_stream *s);
/* curl finished connecting (res == CURLE_OK). */
void cn_upgrade_connected(struct cn_stream *s);
/* More tunnel bytes to send to the origin, or the tunnel side ended. */
void cn_upgrade_on_data(struct cn_stream *s);
/* The tunnel side drained resp_body below the low mark: read the origin again. */
void cn_upgrade_resume_read(struct cn_stream *s);
/* Frees the relay state (the stream is going away). */
void cn_upgrade_release(struct cn_stream *s);

/* Test seam (fuzzing, unit tests): the upgrade of s with no origin socket,
 * as if curl had just connected. The request head is built as usual and
 * dropped, like every byte meant for the origin; the origin's answer is
 * checked against the Sec-WebSocket-Accept for key. Returns 0, or < 0 (the
 * caller answers 502). Used in place of cn_upgrade_start (e.g. by linking
 * with -Wl,--wrap=cn_upgrade_start). */
int cn_upgrade_start_detached(struct cn_stream *s, const char *key);
/* Delivers origin bytes to a detached upgrade as a socket read would
 * (len 0: the origin closed). Ignores read pausing. */
void cn_upgrade_feed(struct cn_stream *s, const uint8_t *data, size_t len);
/* Test seam: the bytes of buffer capacity s's relay holds (its own and the
 * stream's request and response buffers). An idle relay holds none. */
size_t cn_upgrade_held(const struct cn_stream *s);

#endif
