/* rt_conn: one TCP connection on the libuv loop, optionally wrapped in TLS
 * (px_tls). It owns the socket and the TLS session; its owner supplies
 * callbacks and produces output only when asked (on_writable), which is how
 * socket backpressure reaches the protocol layers above.
 *
 * Output is flushed once per loop iteration, before the loop sleeps: owners
 * call rt_conn_want_write() and the flush hook calls on_writable() while the
 * write queue is below RT_CONN_WRITE_HIGH. Output goes to the socket with
 * uv_try_write while libuv holds nothing earlier for it; what the socket
 * does not take at once is queued (uv_write) behind it, in order. The flush hook, the list of
 * connections waiting for it and the read scratch belong to the uv loop's
 * struct rt_loop (rt_loop.h), which must be set up before any connection.
 * The read scratch serves three uses that never overlap: a socket read
 * (for TLS its head, RT_CONN_READ_SIZE less 16 KiB, lent to px_tls as its
 * input while on_read runs), TLS plaintext (its last 16 KiB), and, while
 * the flush asks a TLS connection for output, that output's plaintext
 * before it is encrypted (rt_conn.stage). So an idle connection holds no
 * input, staging or output buffer of its own.
 *
 * Errors: every value crossing this interface (returns, on_connect's status,
 * on_close's err) is 0 or a px_err code. libuv and OS codes are mapped with
 * px_err_from_errno; the errno itself is kept for the log
 * (rt_conn_sys_errno), a TLS failure as a value (rt_conn_tls_failure), and a
 * sentence for the log in err_text. */
#ifndef RT_CONN_H
#define RT_CONN_H

#include "px_tls.h"
#include "rt_loop.h"

#include <uv.h>

#include <stddef.h>
#include <stdint.h>

#define RT_CONN_WRITE_HIGH (256 * 1024)
#define RT_CONN_READ_SIZE (64 * 1024)

struct rt_conn;

struct rt_conn_ops {
    /* Outbound only: TCP connect finished (status 0) or failed (a px_err;
     * rt_conn_sys_errno says which OS error). On failure on_close follows. */
    void (*on_connect)(struct rt_conn *c, int status);
    /* TLS handshake complete (or TCP accepted/connected when plain). Return < 0
     * to close. */
    int (*on_open)(struct rt_conn *c);
    /* Plaintext from the peer. Return < 0 to close the connection. */
    int (*on_data)(struct rt_conn *c, const uint8_t *data, size_t len);
    /* Room to send: produce output with rt_conn_write. Return < 0 to close. */
    int (*on_writable)(struct rt_conn *c);
    /* The connection is gone (err: 0 clean, else a px_err: PX_ERR_CLOSED the
     * peer closed, PX_ERR_TIMEOUT a deadline, PX_ERR_TLS / PX_ERR_TLS_VERIFY
     * see rt_conn_tls_failure, PX_ERR_IO see rt_conn_sys_errno, or what the
     * owner passed to rt_conn_close/abort). The owner may free the memory
     * holding c from here on. Called exactly once. */
    void (*on_close)(struct rt_conn *c, int err);
};

struct rt_conn {
    struct rt_loop *rl; /* the uv loop's rt_loop (rt_loop_of at rt_conn_init) */
    uv_tcp_t tcp;
    uv_timer_t timer; /* handshake deadline */
    struct px_tls tls;
    struct px_buf pt_out; /* plaintext staged for encryption: full records, fewer of them */
    /* While flush_one asks the owner for output: the loop's read scratch,
     * where rt_conn_write stages plaintext instead of pt_out (stage_len
     * bytes); NULL otherwise. */
    uint8_t *stage;
    size_t stage_len;
    int use_tls;
    int tls_server; /* TLS as the server side (handshake arrays freed once open) */
    const struct rt_conn_ops *ops;
    void *owner;
    size_t write_queued; /* bytes in libuv write requests not yet completed */
    /* Bytes the socket took at once (uv_try_write), and bytes that went
     * through a queued write request (uv_write): how output went, for tests
     * and counters. */
    unsigned long long bytes_direct, bytes_queued;
    unsigned long long bytes_written; /* plaintext the owner gave rt_conn_write */
    int open;                         /* handshake done, on_open called */
    int read_paused;
    int closing; /* graceful close requested */
    int in_close;
    int in_callback; /* inside on_data/on_writable: closing is deferred */
    int close_pending;
    int closed;       /* uv_close called */
    int handles_open; /* handles pending close callbacks */
    int close_err;
    int peer_eof;
    struct px_list_node dirty_node; /* in rt_loop.dirty while it wants on_writable */
    char peer_ip[64];
    char err_text[160]; /* why the connection failed, for logs */
    int sys_errno;      /* the OS error that failed it (rt_conn_sys_errno), or 0 */
    /* Memory mode (see rt_conn_open_memory); all zero otherwise. */
    int memory;
    char mem_alpn[32];
    struct px_buf mem_out; /* output for the test to read and drain */
};

/* Initialises c on loop, whose rt_loop (rt_loop_init) c uses from then on.
 * Returns 0, or a px_err with nothing to clean up (no on_close). */
int rt_conn_init(struct rt_conn *c, uv_loop_t *loop, const struct rt_conn_ops *ops, void *owner);
/* Accepts a pending connection from server into c and starts TLS as server
 * (ctx NULL: plain). Returns 0; on failure a px_err, and c is closed via
 * on_close. */
int rt_conn_accept(struct rt_conn *c, uv_stream_t *server, WOLFSSL_CTX *ctx, const char *alpn,
                   unsigned handshake_timeout_ms);
/* Connects to addr and starts TLS as client with SNI/verify name server_name
 * (ctx NULL: plain). timeout_ms bounds connect and handshake together.
 * Returns 0; on failure a px_err, and c is closed via on_close. */
int rt_conn_connect(struct rt_conn *c, const struct sockaddr *addr, WOLFSSL_CTX *ctx,
                    const char *server_name, const char *alpn, unsigned timeout_ms);
/* Adopts fd, a connected stream socket (TCP, or one end of a socketpair),
 * into c (after rt_conn_init) and starts TLS on it: as server when
 * is_server, else as client with server_name, as rt_conn_accept and
 * rt_conn_connect do (ctx NULL: plain, open at once). handshake_timeout_ms
 * (0: none) bounds the handshake. Returns 0 and c owns fd (its close closes
 * fd); or a px_err: fd was not taken (the caller still closes it) and c is
 * closed via on_close. For tests over socketpair(2) and for sockets handed
 * over by another process. */
int rt_conn_open_fd(struct rt_conn *c, int fd, WOLFSSL_CTX *ctx, int is_server,
                    const char *server_name, const char *alpn, unsigned handshake_timeout_ms);
/* Queues plaintext for the peer (encrypted immediately). Returns 0 or < 0. */
int rt_conn_write(struct rt_conn *c, const void *data, size_t len);
/* Returns how many more bytes the owner should produce now (0: wait). */
size_t rt_conn_write_room(const struct rt_conn *c);
/* Asks for on_writable at the next flush. */
void rt_conn_want_write(struct rt_conn *c);
void rt_conn_pause_read(struct rt_conn *c);
void rt_conn_resume_read(struct rt_conn *c);
/* After the handshake: closes the connection as timed out unless it ends
 * (or this is called again) within ms; 0 cancels. For owners whose whole
 * exchange has one deadline (an admin request, an enrolment). */
void rt_conn_set_deadline(struct rt_conn *c, unsigned ms);
/* Graceful close: sends what is queued (and close_notify), then closes. */
void rt_conn_close(struct rt_conn *c, int err);
/* Immediate close, discarding queued output. */
void rt_conn_abort(struct rt_conn *c, int err);
/* The ALPN protocol agreed for c ("" when none, or for plain TCP). */
const char *rt_conn_alpn(struct rt_conn *c);
/* The errno (positive, for strerror) of the OS failure that closed or is
 * closing c (connect, read or write), or 0 when none did. */
int rt_conn_sys_errno(const struct rt_conn *c);
/* How c's TLS failed: kind PX_TLS_FAIL_NONE for a plain connection, or while
 * nothing failed. Valid until the memory of c is freed (also in on_close). */
const struct px_tls_failure *rt_conn_tls_failure(const struct rt_conn *c);

/* ---- Memory mode: for unit tests, fuzzing and allocation-failure tests ----
 * A connection with no socket and no TLS, whose peer is the test. The rest of
 * the contract is unchanged (on_data, on_writable from the per-loop flush,
 * deferred closes, on_close exactly once), so owners run their real code.
 *  - rt_conn_open_memory() takes the place of accept/connect on a connection
 *    set up with rt_conn_init(): c counts as open at once (on_open is called;
 *    if it fails, c closes), rt_conn_alpn() answers alpn, peer_ip is peer.
 *  - rt_conn_memory_feed() delivers peer bytes as one socket read would. It
 *    delivers even while read_paused is set: a faithful test stops feeding
 *    then, as the kernel would stop delivering.
 *  - rt_conn_memory_eof() is the peer closing (a socket read of EOF).
 *  - Output is appended to c->mem_out. The test reads it with px_buf_head/len
 *    and drains it with rt_conn_memory_consume(); undrained bytes count
 *    against RT_CONN_WRITE_HIGH, like a peer that stops reading, and a
 *    graceful close (rt_conn_close) waits for them as for a socket's write
 *    queue (at most its 5 s deadline). rt_conn_abort discards them.
 *  - Output is produced by the per-loop flush and closing completes from the
 *    loop, as usual: run it (uv_run with UV_RUN_NOWAIT) until on_close;
 *    mem_out is freed just before on_close. A connection that wants to write
 *    keeps the loop alive until the flush ran. */
/* Opens c (after rt_conn_init) in memory mode. Returns 0; on an on_open
 * failure c is closing (on_close follows from the loop). */
int rt_conn_open_memory(struct rt_conn *c, const char *alpn, const char *peer);
/* Delivers len peer bytes. Returns 0, or < 0 if c is closed or closing (the
 * bytes were not taken, or made c close). */
int rt_conn_memory_feed(struct rt_conn *c, const void *data, size_t len);
/* The peer closed its side. */
void rt_conn_memory_eof(struct rt_conn *c);
/* Drops n (<= px_buf_len(&c->mem_out)) output bytes, as a finished socket
 * write would, and asks the owner for more. */
void rt_conn_memory_consume(struct rt_conn *c, size_t n);

#endif
