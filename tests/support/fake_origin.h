/* fake_origin: an HTTP/1.1 origin on 127.0.0.1 for tests, served from the
 * test's own libuv loop (so a test that runs its loop runs the origin too).
 * It parses requests with http_parser, keeps every request head it got and
 * counts connections and bytes, so a test can assert what reached the
 * origin (or that nothing did). What it answers depends on the request's
 * path:
 *
 *   "/big"   200 with fo->big_size body bytes (Content-Length); byte i is
 *            fo_big_byte(i), so a receiver can check every byte
 *   "/echo"  reads the whole request body (Content-Length or chunked), then
 *            200 whose body is the body's length in decimal
 *   "/hang"  reads the request and never answers
 *   "/bad"   an invalid response (a Content-Length that is not a number:
 *            curl fails with CURLE_WEIRD_SERVER_REPLY)
 *   "/bad-status"  a well-formed head with status 999
 *   any path, with "Upgrade: websocket" and a Sec-WebSocket-Key: 101 with
 *            the right Sec-WebSocket-Accept, then echoes every byte back
 *            (the conventional path is "/ws")
 *   any other path ("/ok")  200, FO_OK_BODY, plus an "X-Origin: fake"
 *            field and a "Keep-Alive" one (hop-by-hop: a proxy drops it)
 *
 * Connections stay open after an answer (curl keeps them alive); they close
 * when the peer does, or by fo_reset / fo_stop.
 *
 * Ownership: struct fake_origin is the caller's (usually static); fo_stop
 * closes every handle, after which the caller runs the loop until they are
 * gone (fo_stop does that for up to a few iterations itself). */
#ifndef FAKE_ORIGIN_H
#define FAKE_ORIGIN_H

#include "px_buf.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define FO_OK_BODY "origin-ok"
/* The default size of the "/big" body. */
#define FO_BIG_SIZE (4 * 1024 * 1024)

struct fo_conn;

struct fake_origin {
    uv_loop_t *loop;
    uv_tcp_t server;
    int port;
    size_t big_size;   /* "/big" body length (FO_BIG_SIZE after fo_start) */
    int accepted;      /* connections accepted */
    int open;          /* connections not yet closed */
    size_t bytes;      /* every byte received, all connections */
    size_t body_bytes; /* request body bytes received (decoded), all requests */
    size_t ws_bytes;   /* bytes echoed on upgraded connections */
    int answered;      /* responses started */
    /* Every request head received, reconstructed as
     * "METHOD target\r\nName: value\r\n...\r\n\r\n" (names and values as sent). */
    struct px_buf heads;
    struct fo_conn *conns;
};

/* The byte at offset i of a "/big" body. */
static inline uint8_t fo_big_byte(size_t i)
{
    return (uint8_t)((i * 7 + i / 251) & 0xff);
}

/* Listens on 127.0.0.1 (a free port, in fo->port) on loop. Returns 0 or a
 * negative uv error. */
int fo_start(struct fake_origin *fo, uv_loop_t *loop);
/* Closes every connection, runs the loop until they are gone, and clears
 * the counters and heads (the listener stays). */
void fo_reset(struct fake_origin *fo);
/* fo_reset, then closes the listener and frees the heads. */
void fo_stop(struct fake_origin *fo);

/* A port on 127.0.0.1 where nothing listens (bound, then closed): a
 * connection to it is refused. Returns the port, or -1. */
int fo_refusing_port(void);

#endif
