/* rt_conn over a real socket: two connections on the ends of a
 * socketpair(2), adopted with rt_conn_open_fd, plain and TLS (certificates
 * made here with px_pki). What the owners above rely on: data both ways,
 * on_writable only while the write queue is below RT_CONN_WRITE_HIGH (a peer
 * that stops reading stops production), read pause and resume, a graceful
 * close that still delivers what was queued, on_close exactly once with a
 * px_err, and how a TLS or socket failure is reported. Last, two rt_loops on
 * two uv loops, on one thread and then on two: nothing is shared. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "px_err.h"
#include "px_pki.h"
#include "rt_conn.h"
#include "test_rng.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHUNK 16384

/* One end: produces `budget` bytes of a pattern when asked, keeps what
 * arrives. */
struct end {
    struct rt_conn conn;
    uint8_t seed;
    int opened, closed, close_err, sys_errno;
    struct px_tls_failure tls; /* rt_conn_tls_failure, read in on_close */
    struct px_buf in;
    size_t budget, produced;
    int writable_calls;
    int writable_without_room; /* on_writable with a full queue: never */
    int close_when_done;       /* rt_conn_close from on_writable once the budget is spent */
    int close_asked;
};

static uint8_t pattern(uint8_t seed, size_t i)
{
    return (uint8_t)(seed + i * 31 + (i >> 9));
}

static int pattern_ok(const struct end *from, const struct px_buf *in)
{
    const uint8_t *p = px_buf_head(in);
    for (size_t i = 0; i < px_buf_len(in); i++)
        if (p[i] != pattern(from->seed, i))
            return 0;
    return 1;
}

static int on_open(struct rt_conn *c)
{
    struct end *e = c->owner;
    e->opened++;
    return 0;
}

static int on_data(struct rt_conn *c, const uint8_t *data, size_t len)
{
    struct end *e = c->owner;
    return px_buf_append(&e->in, data, len) < 0 ? -1 : 0;
}

static int on_writable(struct rt_conn *c)
{
    struct end *e = c->owner;
    e->writable_calls++;
    /* rt_conn_close asks once more for last words, whatever the queue. */
    if (rt_conn_write_room(c) == 0 && !e->close_asked)
        e->writable_without_room++;
    uint8_t chunk[CHUNK];
    while (e->budget > 0) {
        size_t room = rt_conn_write_room(c);
        if (room == 0)
            break;
        size_t n = e->budget < CHUNK ? e->budget : CHUNK;
        if (n > room)
            n = room;
        for (size_t i = 0; i < n; i++)
            chunk[i] = pattern(e->seed, e->produced + i);
        if (rt_conn_write(c, chunk, n) < 0)
            return -1;
        e->produced += n;
        e->budget -= n;
    }
    if (e->budget == 0 && e->close_when_done && !e->close_asked) {
        e->close_asked = 1;
        rt_conn_close(c, 0); /* deferred until this callback returns */
    }
    return 0;
}

static void on_close(struct rt_conn *c, int err)
{
    struct end *e = c->owner;
    e->closed++;
    e->close_err = err;
    e->sys_errno = rt_conn_sys_errno(c);
    e->tls = *rt_conn_tls_failure(c);
}

static const struct rt_conn_ops ops = {
    .on_open = on_open, .on_data = on_data, .on_writable = on_writable, .on_close = on_close};

/* Certificates: a CA, the server's for "pair.test", a client's, and a
 * client's from another CA. */
struct pki {
    char *ca_key, *ca, *srv_key, *srv, *cli_key, *cli;
    char *other_ca_key, *other_ca, *other_key, *other;
};

static int issue(WC_RNG *rng, const char *ca, const char *ca_key, const char *key, const char *cn,
                 enum px_pki_usage u, char **cert)
{
    char *pub = NULL;
    const char *names[] = {"pair.test"};
    int rc = px_pki_pubkey(key, &pub);
    if (rc == 0)
        rc = px_pki_issue(rng, ca, ca_key, pub, cn, u == PX_PKI_SERVER ? names : NULL,
                          u == PX_PKI_SERVER ? 1 : 0, u, 2, cert);
    free(pub);
    return rc;
}

/* Makes every certificate with rng. Returns 0 or < 0. */
static int pki_make(struct pki *p, WC_RNG *rng)
{
    memset(p, 0, sizeof(*p));
    if (px_pki_keygen(rng, &p->ca_key) < 0 ||
        px_pki_make_ca(rng, p->ca_key, "pair CA", 2, &p->ca) ||
        px_pki_keygen(rng, &p->srv_key) < 0 ||
        issue(rng, p->ca, p->ca_key, p->srv_key, "pair.test", PX_PKI_SERVER, &p->srv) < 0 ||
        px_pki_keygen(rng, &p->cli_key) < 0 ||
        issue(rng, p->ca, p->ca_key, p->cli_key, "client", PX_PKI_CLIENT, &p->cli) < 0 ||
        px_pki_keygen(rng, &p->other_ca_key) < 0 ||
        px_pki_make_ca(rng, p->other_ca_key, "other CA", 2, &p->other_ca) < 0 ||
        px_pki_keygen(rng, &p->other_key) < 0 ||
        issue(rng, p->other_ca, p->other_ca_key, p->other_key, "client", PX_PKI_CLIENT, &p->other) <
            0)
        return -1;
    return 0;
}

static void pki_free(struct pki *p)
{
    char **f = (char **)p;
    for (size_t i = 0; i < sizeof(*p) / sizeof(char *); i++)
        free(f[i]);
}

/* A uv loop with its rt_loop, and the two ends of one socketpair on it:
 * a is the server side of TLS, b the client. */
struct world {
    uv_loop_t loop;
    struct rt_loop rl;
    uv_timer_t tick; /* bounds each blocking uv_run */
    WOLFSSL_CTX *sctx, *cctx;
    struct end a, b;
};

static int world_init(struct world *w)
{
    memset(w, 0, sizeof(*w));
    if (uv_loop_init(&w->loop) != 0)
        return -1;
    if (rt_loop_init(&w->rl, &w->loop) < 0)
        return -1;
    uv_timer_init(&w->loop, &w->tick);
    px_buf_init(&w->a.in);
    px_buf_init(&w->b.in);
    w->a.seed = 7;
    w->b.seed = 101;
    return 0;
}

/* TLS contexts: the server wants a client certificate from p's CA; the
 * client presents cert/key (p->cli unless told otherwise). */
static int world_tls(struct world *w, const struct pki *p, const char *cert, const char *key)
{
    if (px_tls_ctx_server(p->srv, p->srv_key, p->ca, 1, &w->sctx) < 0 ||
        px_tls_ctx_client(p->ca, cert, key, &w->cctx) < 0)
        return -1;
    return 0;
}

static int world_open(struct world *w)
{
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) < 0)
        return -1;
    if (rt_conn_init(&w->a.conn, &w->loop, &ops, &w->a) < 0 ||
        rt_conn_init(&w->b.conn, &w->loop, &ops, &w->b) < 0)
        return -1;
    if (rt_conn_open_fd(&w->a.conn, fds[0], w->sctx, 1, NULL, "h2", 5000) < 0 ||
        rt_conn_open_fd(&w->b.conn, fds[1], w->cctx, 0, "pair.test", "h2", 5000) < 0)
        return -1;
    return 0;
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

/* Runs w's loop until done(w) or ms pass. Returns done(w). */
static int run_until(struct world *w, int (*done)(struct world *), unsigned ms)
{
    uv_update_time(&w->loop);
    uint64_t end = uv_now(&w->loop) + ms;
    uv_timer_start(&w->tick, on_tick, 2, 2);
    while (!done(w) && uv_now(&w->loop) < end)
        uv_run(&w->loop, UV_RUN_ONCE);
    uv_timer_stop(&w->tick);
    return done(w);
}

static int never(struct world *w)
{
    (void)w;
    return 0;
}

static int both_open(struct world *w)
{
    return w->a.opened && w->b.opened;
}

static int both_closed(struct world *w)
{
    return w->a.closed && w->b.closed;
}

static int all_arrived(struct world *w)
{
    return px_buf_len(&w->b.in) == w->a.produced && px_buf_len(&w->a.in) == w->b.produced &&
           w->a.budget == 0 && w->b.budget == 0;
}

/* Ends whatever is still open and frees the world; the loop closes clean. */
static int world_cleanup(struct world *w)
{
    if (!w->a.closed)
        rt_conn_abort(&w->a.conn, PX_ERR_CLOSED);
    if (!w->b.closed)
        rt_conn_abort(&w->b.conn, PX_ERR_CLOSED);
    run_until(w, both_closed, 2000);
    int once = w->a.closed == 1 && w->b.closed == 1;
    rt_loop_cleanup(&w->rl);
    uv_close((uv_handle_t *)&w->tick, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&w->loop);
    if (w->sctx)
        wolfSSL_CTX_free(w->sctx);
    if (w->cctx)
        wolfSSL_CTX_free(w->cctx);
    px_buf_cleanup(&w->a.in);
    px_buf_cleanup(&w->b.in);
    return once && rc == 0 ? 0 : -1;
}

static int is_px_err(int e)
{
    return e == 0 || (e <= PX_ERR_NOMEM && e >= PX_ERR_TIMEOUT);
}

/* ---- the tests; each runs plain and over TLS (state: 0 or 1) ---- */

static struct pki pki; /* made once (group setup) */
static const int PLAIN = 0, TLS = 1;

/* A world whose client presents cert/key to a server that trusts pki's CA. */
static void tls_world(struct world *w, const char *cert, const char *key)
{
    assert_int_equal(world_init(w), 0);
    assert_int_equal(world_tls(w, &pki, cert, key), 0);
}

static void open_world(struct world *w, void **state)
{
    if (*(const int *)*state == TLS)
        tls_world(w, pki.cli, pki.cli_key);
    else
        assert_int_equal(world_init(w), 0);
    assert_int_equal(world_open(w), 0);
    assert_true(run_until(w, both_open, 5000));
    assert_int_equal(w->a.opened, 1);
    assert_int_equal(w->b.opened, 1);
    const char *alpn = *(const int *)*state == TLS ? "h2" : "";
    assert_string_equal(rt_conn_alpn(&w->a.conn), alpn);
    assert_string_equal(rt_conn_alpn(&w->b.conn), alpn);
    assert_ptr_equal(w->a.conn.rl, &w->rl);
}

static void close_world(struct world *w)
{
    assert_int_equal(world_cleanup(w), 0);
}

static void data_both_ways(void **state)
{
    struct world w;
    open_world(&w, state);
    w.a.budget = 3 << 20;
    w.b.budget = (1 << 20) + 12345;
    rt_conn_want_write(&w.a.conn);
    rt_conn_want_write(&w.b.conn);
    assert_true(run_until(&w, all_arrived, 20000));
    assert_int_equal(px_buf_len(&w.b.in), 3 << 20);
    assert_int_equal(px_buf_len(&w.a.in), (1 << 20) + 12345);
    assert_true(pattern_ok(&w.a, &w.b.in));
    assert_true(pattern_ok(&w.b, &w.a.in));
    assert_int_equal(w.a.writable_without_room, 0);
    assert_int_equal(w.b.writable_without_room, 0);
    assert_int_equal(w.a.closed + w.b.closed, 0);
    assert_int_equal(rt_conn_tls_failure(&w.a.conn)->kind, PX_TLS_FAIL_NONE);
    close_world(&w);
}

/* The reader stops reading: the writer's queue fills to RT_CONN_WRITE_HIGH,
 * on_writable stops being called and production stops; reading again lets
 * it run to the end. */
static void backpressure(void **state)
{
    struct world w;
    open_world(&w, state);
    rt_conn_pause_read(&w.b.conn);
    w.a.budget = 64 << 20; /* more than anything can buffer */
    rt_conn_want_write(&w.a.conn);
    size_t last = (size_t)-1;
    for (int stable = 0, i = 0; stable < 20 && i < 2000; i++) {
        run_until(&w, never, 5);
        stable = w.a.produced == last ? stable + 1 : 0;
        last = w.a.produced;
    }
    /* Stopped: a full queue, nothing delivered, nothing asked of the owner
     * while full. What it produced is the queue plus what the kernel took. */
    int sndbuf = 0;
    socklen_t sl = sizeof(sndbuf);
    uv_os_fd_t fd;
    assert_int_equal(uv_fileno((uv_handle_t *)&w.a.conn.tcp, &fd), 0);
    assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &sl), 0);
    assert_int_equal(px_buf_len(&w.b.in), 0);
    assert_int_equal(rt_conn_write_room(&w.a.conn), 0);
    assert_true(w.a.produced <= RT_CONN_WRITE_HIGH + CHUNK + 2 * (size_t)sndbuf);
    assert_int_equal(w.a.writable_without_room, 0);
    int calls = w.a.writable_calls;
    run_until(&w, never, 50);
    assert_int_equal(w.a.writable_calls, calls); /* not polled while full */
    /* Reading again resumes production. */
    size_t stalled = w.a.produced;
    rt_conn_resume_read(&w.b.conn);
    w.a.budget = 4 << 20;
    assert_true(run_until(&w, all_arrived, 20000));
    assert_int_equal(px_buf_len(&w.b.in), stalled + (4 << 20));
    assert_true(pattern_ok(&w.a, &w.b.in));
    assert_int_equal(w.a.writable_without_room, 0);
    close_world(&w);
}

/* Issue 13: output goes to the socket with uv_try_write while libuv holds
 * nothing earlier, and is queued behind what it holds otherwise. With a
 * reader that stops, the writer's first flushes go straight to the socket,
 * then one is taken in part and its rest queued, then later ones queue
 * behind it: every byte arrives, in order, both ways counted. Once idle,
 * neither end holds an output or input buffer (all released when drained). */
static void try_write_then_queue_keeps_order(void **state)
{
    struct world w;
    open_world(&w, state);
    rt_conn_pause_read(&w.b.conn);
    w.a.budget = 8 << 20;
    rt_conn_want_write(&w.a.conn);
    size_t last = (size_t)-1;
    for (int stable = 0, i = 0; stable < 20 && i < 2000; i++) {
        run_until(&w, never, 5);
        stable = w.a.produced == last ? stable + 1 : 0;
        last = w.a.produced;
    }
    assert_true(w.a.conn.bytes_direct > 0); /* the socket took the first at once */
    assert_true(w.a.conn.bytes_queued > 0); /* then the rest waited in libuv */
    assert_true(w.a.conn.write_queued > 0);
    rt_conn_resume_read(&w.b.conn);
    assert_true(run_until(&w, all_arrived, 20000));
    assert_int_equal(px_buf_len(&w.b.in), 8 << 20);
    assert_true(pattern_ok(&w.a, &w.b.in));
    if (*(const int *)*state == PLAIN) /* no TLS records: every byte is counted once */
        assert_int_equal(w.a.conn.bytes_direct + w.a.conn.bytes_queued, 8 << 20);
    run_until(&w, never, 50);
    for (struct end *e = &w.a; e; e = e == &w.a ? &w.b : NULL) {
        assert_int_equal(e->conn.write_queued, 0);
        assert_null(e->conn.pt_out.data);
        assert_null(e->conn.tls.out.data);
        assert_null(e->conn.tls.in.data);
        assert_null(e->conn.stage);
    }
    close_world(&w);
}

/* TLS records cut across socket reads (a 48 KiB read ends mid-record) are
 * put together: the part of a record left in the read buffer (lent to
 * px_tls) is kept before the next read reuses it. Writes of odd sizes, many
 * per flush, through the staging scratch. */
static int odd_writer(struct rt_conn *c)
{
    struct end *e = c->owner;
    e->writable_calls++;
    uint8_t chunk[7001];
    for (int k = 0; k < 40 && e->budget > 0 && rt_conn_write_room(c) > 0; k++) {
        size_t n = e->budget < sizeof(chunk) ? e->budget : sizeof(chunk) - (size_t)k * 97;
        for (size_t i = 0; i < n; i++)
            chunk[i] = pattern(e->seed, e->produced + i);
        if (rt_conn_write(c, chunk, n) < 0)
            return -1;
        e->produced += n;
        e->budget -= n;
    }
    return 0;
}

static const struct rt_conn_ops odd_ops = {
    .on_open = on_open, .on_data = on_data, .on_writable = odd_writer, .on_close = on_close};

static void records_across_reads(void **state)
{
    struct world w;
    open_world(&w, state);
    w.a.conn.ops = &odd_ops;
    w.a.budget = 5 << 20;
    rt_conn_want_write(&w.a.conn);
    assert_true(run_until(&w, all_arrived, 20000));
    assert_int_equal(px_buf_len(&w.b.in), 5 << 20);
    assert_true(pattern_ok(&w.a, &w.b.in));
    close_world(&w);
}

static int b_has_10k(struct world *w)
{
    return px_buf_len(&w->b.in) == 10000;
}

static void read_pause_resume(void **state)
{
    struct world w;
    open_world(&w, state);
    rt_conn_pause_read(&w.b.conn);
    w.a.budget = 10000;
    rt_conn_want_write(&w.a.conn);
    run_until(&w, never, 100);
    assert_int_equal(w.a.produced, 10000);    /* sent... */
    assert_int_equal(px_buf_len(&w.b.in), 0); /* ...but not read */
    rt_conn_pause_read(&w.b.conn);            /* twice is once */
    rt_conn_resume_read(&w.b.conn);
    assert_true(run_until(&w, b_has_10k, 5000));
    assert_true(pattern_ok(&w.a, &w.b.in));
    rt_conn_resume_read(&w.b.conn); /* not paused: nothing happens */
    close_world(&w);
}

/* Queued bytes (well over RT_CONN_WRITE_HIGH, while the peer does not read)
 * still reach the peer after a graceful close; each side's on_close comes
 * once: 0 for the side that closed, PX_ERR_CLOSED for its peer. */
static void graceful_close_delivers_queued(void **state)
{
    struct world w;
    open_world(&w, state);
    rt_conn_pause_read(&w.b.conn);
    size_t n = 2 << 20;
    uint8_t *big = malloc(n);
    assert_non_null(big);
    for (size_t i = 0; i < n; i++)
        big[i] = pattern(w.a.seed, i);
    assert_int_equal(rt_conn_write(&w.a.conn, big, n), 0);
    w.a.produced = n;
    free(big);
    rt_conn_close(&w.a.conn, 0);
    rt_conn_close(&w.a.conn, PX_ERR_IO); /* a second close changes nothing */
    assert_int_equal(rt_conn_write_room(&w.a.conn), 0);
    run_until(&w, never, 50);
    assert_int_equal(w.a.closed, 0); /* waiting for the peer to take it */
    rt_conn_resume_read(&w.b.conn);
    assert_true(run_until(&w, both_closed, 10000));
    run_until(&w, never, 20);
    assert_int_equal(px_buf_len(&w.b.in), n);
    assert_true(pattern_ok(&w.a, &w.b.in));
    assert_int_equal(w.a.closed, 1);
    assert_int_equal(w.a.close_err, 0);
    assert_int_equal(w.b.closed, 1);
    assert_int_equal(w.b.close_err, PX_ERR_CLOSED);
    assert_int_equal(w.a.sys_errno, 0);
    /* b's own close_notify may meet a's closed socket: noted, not the cause. */
    assert_true(w.b.sys_errno == 0 || w.b.sys_errno == EPIPE || w.b.sys_errno == ECONNRESET);
    close_world(&w);
}

/* Closing from inside on_writable (deferred until the callback returns)
 * once everything is produced: nothing is cut off. */
static void close_when_done(void **state)
{
    struct world w;
    open_world(&w, state);
    w.a.budget = (1 << 20) + 3;
    w.a.close_when_done = 1;
    w.b.budget = 5000;
    rt_conn_want_write(&w.a.conn);
    rt_conn_want_write(&w.b.conn);
    assert_true(run_until(&w, both_closed, 10000));
    assert_int_equal(px_buf_len(&w.b.in), (1 << 20) + 3);
    assert_true(pattern_ok(&w.a, &w.b.in));
    assert_int_equal(w.a.close_err, 0);
    assert_true(is_px_err(w.b.close_err));
    assert_int_equal(w.a.writable_without_room, 0);
    /* No callbacks after on_close. */
    int ca = w.a.writable_calls, cb = w.b.writable_calls;
    run_until(&w, never, 20);
    assert_int_equal(w.a.writable_calls, ca);
    assert_int_equal(w.b.writable_calls, cb);
    close_world(&w);
}

static int a_closed(struct world *w)
{
    return w->a.closed > 0;
}

/* An abort ends at once with the owner's error; the peer sees the end as a
 * px_err too, and once. */
static void abort_is_immediate(void **state)
{
    struct world w;
    open_world(&w, state);
    rt_conn_abort(&w.a.conn, PX_ERR_DENIED);
    rt_conn_abort(&w.a.conn, PX_ERR_IO); /* once */
    rt_conn_close(&w.a.conn, PX_ERR_IO);
    assert_int_equal(rt_conn_write(&w.a.conn, "x", 1), PX_ERR_CLOSED);
    assert_true(run_until(&w, both_closed, 5000));
    run_until(&w, never, 20);
    assert_int_equal(w.a.closed, 1);
    assert_int_equal(w.a.close_err, PX_ERR_DENIED);
    assert_int_equal(w.b.closed, 1);
    assert_true(is_px_err(w.b.close_err));
    assert_int_not_equal(w.b.close_err, 0);
    close_world(&w);
}

/* A socket error reaches the owner as a px_err, with the errno kept: the
 * peer closed with our bytes unread (a reset). */
static void socket_error_keeps_errno(void **state)
{
    (void)state;
    struct world w;
    static const int plain = 0;
    void *st = (void *)&plain;
    open_world(&w, &st);
    rt_conn_pause_read(&w.a.conn);
    w.b.budget = 1000;
    rt_conn_want_write(&w.b.conn);
    run_until(&w, never, 50);
    assert_int_equal(w.b.produced, 1000);
    rt_conn_abort(&w.a.conn, PX_ERR_DENIED); /* 1000 bytes unread: a reset */
    assert_true(run_until(&w, both_closed, 5000));
    assert_int_equal(w.b.close_err, PX_ERR_IO);
    assert_int_equal(w.b.sys_errno, ECONNRESET);
    assert_non_null(strstr(w.b.conn.err_text, "read failed"));
    assert_int_equal(w.a.sys_errno, 0);
    close_world(&w);
}

/* A write to a peer that is gone is an error for that connection, never a
 * SIGPIPE for the process: output goes straight to the socket now
 * (try_send, issue 13), where uv_write used to wait for the next poll and be
 * cancelled by the close. Run with SIGPIPE at its default (fatal) action. */
static int b_closed(struct world *w)
{
    return w->b.closed;
}

static void write_to_gone_peer_is_epipe(void **state)
{
    (void)state;
    struct world w;
    static const int plain = 0;
    void *st = (void *)&plain;
    open_world(&w, &st);
    rt_conn_pause_read(&w.a.conn); /* a does not see the EOF first */
    rt_conn_abort(&w.b.conn, PX_ERR_CLOSED);
    assert_true(run_until(&w, b_closed, 5000));
    signal(SIGPIPE, SIG_DFL);
    uint8_t bytes[1000] = {0};
    int rc = rt_conn_write(&w.a.conn, bytes, sizeof(bytes));
    signal(SIGPIPE, SIG_IGN);
    assert_true(rc < 0);
    assert_int_equal(rt_conn_sys_errno(&w.a.conn), EPIPE);
    assert_non_null(strstr(w.a.conn.err_text, "write failed"));
    close_world(&w);
}

/* The server refuses the client's certificate: each side's on_close says so
 * as values (PX_ERR_TLS_VERIFY and our verification on the server; the
 * alert it sent, received by the client), not as text. */
static void tls_refused_certificate(void **state)
{
    (void)state;
    struct world w;
    tls_world(&w, pki.other, pki.other_key);
    assert_int_equal(world_open(&w), 0);
    assert_true(run_until(&w, both_closed, 5000));
    assert_int_equal(w.a.opened, 0); /* the server never opened it */
    struct px_tls_failure server = {PX_TLS_FAIL_VERIFY, unknown_ca, w.a.tls.verify_result};
    struct px_tls_failure client = {PX_TLS_FAIL_ALERT_RECEIVED, unknown_ca, 0};
    assert_int_equal(w.a.close_err, PX_ERR_TLS_VERIFY);
    assert_memory_equal(&w.a.tls, &server, sizeof(server));
    assert_int_not_equal(server.verify_result, 0);
    assert_int_equal(w.b.close_err, PX_ERR_TLS);
    assert_memory_equal(&w.b.tls, &client, sizeof(client));
    assert_int_equal(w.b.conn.tls.peer_alert, unknown_ca);
    assert_int_equal(w.b.sys_errno, 0);
    close_world(&w);
}

/* A handshake that never completes (the peer says nothing) ends at the
 * deadline as PX_ERR_TIMEOUT. */
static void tls_handshake_deadline(void **state)
{
    (void)state;
    struct world w;
    tls_world(&w, pki.cli, pki.cli_key);
    int fds[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    assert_int_equal(rt_conn_init(&w.a.conn, &w.loop, &ops, &w.a), 0);
    assert_int_equal(rt_conn_open_fd(&w.a.conn, fds[0], w.sctx, 1, NULL, "h2", 50), 0);
    assert_true(run_until(&w, a_closed, 5000));
    assert_int_equal(w.a.opened, 0);
    assert_int_equal(w.a.close_err, PX_ERR_TIMEOUT);
    assert_string_equal(w.a.conn.err_text, "timed out");
    close(fds[1]);
    w.b.closed = 1; /* never opened */
    close_world(&w);
}

/* A TLS graceful close to a peer that is gone ends at once, as it did when
 * every write went through uv_write: the close_notify's send fails with
 * EPIPE at once (try_send) and must end the connection, not leave the
 * record staged until the 5 s close deadline (holding the descriptor and
 * the session). a reads nothing, so it does not see the peer's EOF first. */
static void test_tls_close_to_gone_peer_is_immediate(void **state)
{
    (void)state;
    struct world w;
    static const int tls = 1;
    void *st = (void *)&tls;
    open_world(&w, &st);
    rt_conn_pause_read(&w.a.conn);
    run_until(&w, never, 50); /* settled: a waits for no flush */
    rt_conn_abort(&w.b.conn, PX_ERR_CLOSED);
    assert_true(run_until(&w, b_closed, 2000));
    uv_update_time(&w.loop);
    uint64_t start = uv_now(&w.loop);
    rt_conn_close(&w.a.conn, 0);
    assert_int_equal(w.a.closed, 0);            /* on_close is deferred, never inside the call */
    assert_true(run_until(&w, a_closed, 1000)); /* the deadline is 5000 ms */
    assert_true(uv_now(&w.loop) - start < 1000);
    assert_int_equal(w.a.closed, 1);
    assert_int_equal(w.a.close_err, PX_ERR_IO); /* as on_write said it before */
    assert_int_equal(w.a.sys_errno, EPIPE);
    close_world(&w);
}

/* A handshake that fails on a peer that is already gone (a scanner that
 * sends garbage and leaves): the alert cannot be sent, and that ends the
 * connection at once, with the TLS failure as its reason (code and text),
 * not the failed send's "write failed". */
static void tls_failed_handshake_to_gone_peer_keeps_tls_reason(void **state)
{
    (void)state;
    struct world w;
    tls_world(&w, pki.cli, pki.cli_key);
    int fds[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    /* A record that says ClientHello, whose body is too short for one. */
    static const char garbage[] = "\x16\x03\x01\x00\x08\x01\x00\x00\x04\x03\x03\x00\x00";
    assert_int_equal(write(fds[1], garbage, sizeof(garbage) - 1), (ssize_t)(sizeof(garbage) - 1));
    close(fds[1]);
    assert_int_equal(rt_conn_init(&w.a.conn, &w.loop, &ops, &w.a), 0);
    assert_int_equal(rt_conn_open_fd(&w.a.conn, fds[0], w.sctx, 1, NULL, "h2", 5000), 0);
    uv_update_time(&w.loop);
    uint64_t start = uv_now(&w.loop);
    assert_true(run_until(&w, a_closed, 1000));
    assert_true(uv_now(&w.loop) - start < 1000);
    assert_int_equal(w.a.opened, 0);
    assert_int_equal(w.a.sys_errno, EPIPE); /* the alert was sent, and failed */
    assert_int_equal(w.a.close_err, PX_ERR_TLS);
    assert_null(strstr(w.a.conn.err_text, "write failed"));
    assert_non_null(strstr(w.a.conn.err_text, "TLS"));
    w.b.closed = 1; /* never opened */
    close_world(&w);
}

/* An fd that is no socket is refused without taking it; on_close follows. */
static void open_fd_refuses_bad_fd(void **state)
{
    (void)state;
    struct world w;
    assert_int_equal(world_init(&w), 0);
    assert_int_equal(rt_conn_init(&w.a.conn, &w.loop, &ops, &w.a), 0);
    int r = rt_conn_open_fd(&w.a.conn, 1000000, NULL, 1, NULL, NULL, 0);
    assert_true(r < 0 && is_px_err(r));
    assert_true(run_until(&w, a_closed, 2000));
    assert_int_equal(w.a.close_err, r);
    w.b.closed = 1;
    close_world(&w);
}

/* ---- two loops ---- */

static int a_got_all(struct world *w)
{
    return w->a.budget == 0 && px_buf_len(&w->b.in) == w->a.produced;
}

/* Two rt_loops on two uv loops of one thread: each has its own state (its
 * connections, flush list, scratch, RNG) and runs only when its loop does. */
static void two_loops_are_independent(void **state)
{
    (void)state;
    struct world w1, w2;
    assert_int_equal(world_init(&w1), 0);
    assert_int_equal(world_init(&w2), 0);
    assert_ptr_equal(rt_loop_of(&w1.loop), &w1.rl);
    assert_ptr_equal(rt_loop_of(&w2.loop), &w2.rl);
    assert_ptr_not_equal(rt_loop_rng(&w1.rl), rt_loop_rng(&w2.rl));
    assert_ptr_not_equal(w1.rl.read_scratch, w2.rl.read_scratch);
    assert_int_equal(world_tls(&w1, &pki, pki.cli, pki.cli_key), 0);
    assert_int_equal(world_open(&w1), 0);
    assert_int_equal(world_open(&w2), 0); /* plain: open at once */
    assert_ptr_equal(w2.a.conn.rl, &w2.rl);
    w1.a.budget = w2.a.budget = 1 << 20;
    rt_conn_want_write(&w1.a.conn);
    rt_conn_want_write(&w2.a.conn);
    /* Only loop 1 runs: loop 2's connections wait, untouched. */
    assert_true(run_until(&w1, a_got_all, 10000));
    assert_int_equal(w2.a.produced, 0);
    assert_int_equal(w2.a.writable_calls, 0);
    int listed = 0; /* still on its own loop's list, waiting for its flush */
    struct px_list_node *pos, *tmp;
    px_list_for_each_safe (pos, tmp, &w2.rl.dirty)
        listed += px_container_of(pos, struct rt_conn, dirty_node) == &w2.a.conn;
    assert_int_equal(listed, 1);
    px_list_for_each_safe (pos, tmp, &w1.rl.dirty) {
        struct rt_conn *c = px_container_of(pos, struct rt_conn, dirty_node);
        assert_true(c == &w1.a.conn || c == &w1.b.conn);
    }
    /* Loop 1 closes down while loop 2 still has work. */
    assert_int_equal(world_cleanup(&w1), 0);
    assert_true(run_until(&w2, a_got_all, 10000));
    assert_true(pattern_ok(&w2.a, &w2.b.in));
    /* Each loop's RNG serves its loop. */
    uint8_t r1[16];
    assert_int_equal(px_pki_random(rt_loop_rng(&w2.rl), r1, sizeof(r1)), 0);
    close_world(&w2);
}

/* The same on two threads at once, each with a loop, a TLS pair and
 * certificates drawn from its own loop's RNG. */
struct thread_run {
    pthread_t t;
    const char *failed; /* NULL when all went well */
    size_t got_a, got_b;
};

static void *thread_main(void *arg)
{
    struct thread_run *r = arg;
    struct world w;
    struct pki p;
    r->failed = "world_init";
    if (world_init(&w) < 0)
        return NULL;
    r->failed = "pki";
    if (pki_make(&p, rt_loop_rng(&w.rl)) == 0 && world_tls(&w, &p, p.cli, p.cli_key) == 0) {
        r->failed = "open";
        if (world_open(&w) == 0 && run_until(&w, both_open, 10000)) {
            w.a.budget = 2 << 20;
            w.b.budget = 1 << 20;
            rt_conn_want_write(&w.a.conn);
            rt_conn_want_write(&w.b.conn);
            r->failed = "transfer";
            if (run_until(&w, all_arrived, 30000) && pattern_ok(&w.a, &w.b.in) &&
                pattern_ok(&w.b, &w.a.in))
                r->failed = NULL;
            r->got_a = px_buf_len(&w.a.in);
            r->got_b = px_buf_len(&w.b.in);
        }
    }
    if (world_cleanup(&w) < 0 && !r->failed)
        r->failed = "cleanup";
    pki_free(&p);
    return NULL;
}

static void two_loops_on_two_threads(void **state)
{
    (void)state;
    struct thread_run runs[2];
    memset(runs, 0, sizeof(runs));
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&runs[i].t, NULL, thread_main, &runs[i]), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_join(runs[i].t, NULL), 0);
        if (runs[i].failed)
            fail_msg("thread %d: %s", i, runs[i].failed);
        assert_int_equal(runs[i].got_a, 1 << 20);
        assert_int_equal(runs[i].got_b, 2 << 20);
    }
}

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN); /* as both mains do: a closed peer is an error, not a signal */
    if (px_tls_global_init() < 0)
        return -1;
    return pki_make(&pki, test_rng());
}

static int group_teardown(void **state)
{
    (void)state;
    pki_free(&pki);
    return 0;
}

#define BOTH(t)                                                                                    \
    cmocka_unit_test_prestate(t, (void *)&PLAIN), cmocka_unit_test_prestate(t, (void *)&TLS)

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(data_both_ways),
        BOTH(backpressure),
        BOTH(read_pause_resume),
        BOTH(try_write_then_queue_keeps_order),
        BOTH(records_across_reads),
        BOTH(graceful_close_delivers_queued),
        BOTH(close_when_done),
        BOTH(abort_is_immediate),
        cmocka_unit_test(socket_error_keeps_errno),
        cmocka_unit_test(write_to_gone_peer_is_epipe),
        cmocka_unit_test(tls_refused_certificate),
        cmocka_unit_test(tls_handshake_deadline),
        cmocka_unit_test(test_tls_close_to_gone_peer_is_immediate),
        cmocka_unit_test(tls_failed_handshake_to_gone_peer_keeps_tls_reason),
        cmocka_unit_test(open_fd_refuses_bad_fd),
        cmocka_unit_test(two_loops_are_independent),
        cmocka_unit_test(two_loops_on_two_threads),
    };
    return cmocka_run_group_tests_name("rt_conn_socketpair", tests, group_setup, group_teardown);
}
