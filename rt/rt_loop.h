/* rt_loop: the runtime's state for one libuv loop. Everything rt_conn used
 * to keep process-wide (the flush hook, the list of connections with output
 * pending, the read scratch buffer) and the loop's own random generator live
 * here, so two loops (two threads, or two worlds in one test) share nothing.
 *
 * Ownership: the caller owns the struct rt_loop (embedded or on its stack)
 * and the uv loop. rt_loop_init ties them together through uv->data, which
 * from then on belongs to rt: nobody else sets it. Every rt_conn on that uv
 * loop finds its rt_loop there (rt_conn_init). */
#ifndef RT_LOOP_H
#define RT_LOOP_H

#include "px_list.h"

#include <uv.h>
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/random.h>

#include <stdint.h>

struct rt_conn;

/* How often a loop hands freed memory back to the system: this thread's
 * wolfSSL ECC cache (px_tls_free_caches) and the free pages malloc keeps
 * (malloc_trim; rt_proc_init tells malloc to keep up to 32 MiB, so that
 * buffers freed and reallocated at line rate cost no page faults). Often
 * enough that an idle daemon is small again soon after a burst, rarely
 * enough to cost nothing under load. */
#define RT_LOOP_TRIM_MS 5000
/* ...and only when the loop woke at most this often during the period (a
 * loaded loop wakes thousands of times; an idle one for its timers). */
#define RT_LOOP_QUIET_ITERATIONS 100

struct rt_loop {
    uv_loop_t *uv;           /* NULL until rt_loop_init succeeded, and after cleanup */
    uv_prepare_t flush_hook; /* runs before the loop sleeps: flushes dirty connections */
    uv_idle_t spin;          /* active while work remains: the next poll does not block */
    uv_timer_t trim;         /* gives memory freed since the last tick back (RT_LOOP_TRIM_MS) */
    unsigned long long iterations; /* loop iterations since the last trim tick */
    struct px_list dirty;          /* connections that asked for on_writable (rt_conn_want_write) */
    uint8_t *read_scratch;         /* RT_CONN_READ_SIZE bytes: socket reads and TLS plaintext */
    WC_RNG rng;                    /* seeded once: seeding costs more than a proxied request */
    int rng_ready;
    uint64_t idle_trim_ms; /* uv_now of rt_loop_trim_idle's last trim; 0: none yet */
    /* rt_loop_set_after_flush's */
    void (*after_flush)(void *arg);
    void *after_flush_arg;
};

/* Initialises rl for uv (one rt_loop per uv loop, before any rt_conn on it):
 * installs the flush hook and the trim timer (neither keeps the loop
 * alive), allocates the read scratch, seeds the RNG, sets uv->data = rl.
 * The flush hook also writes the log lines of the iteration in one go: the
 * thread's logging is batched (px_log_batch) from rt_loop_init to
 * rt_loop_cleanup. Returns 0, or PX_ERR_NOMEM
 * / PX_ERR_CRYPTO / a px_err mapped from libuv, with nothing left to clean up (rl->uv stays NULL;
 * should libuv fail after a handle was set up, its close completes at the next uv_run: keep rl's
 * memory until then). */
int rt_loop_init(struct rt_loop *rl, uv_loop_t *uv);
/* Call after every rt_conn on the loop has been closed (or at least aborted):
 * stops and closes the loop's handles, frees the scratch and the RNG, clears
 * uv->data, and this thread's wolfSSL ECC cache (a loop thread ends with
 * its loop). The handles live in rl, so keep rl's memory until the loop has
 * run once more (uv_run) to complete their close. Safe on an rl that was
 * zeroed and never (or unsuccessfully) initialised, and twice. */
void rt_loop_cleanup(struct rt_loop *rl);
/* Calls cb(arg) in every run of the flush hook, after the connections'
 * output went out and before the loop sleeps: what the iteration produced
 * for others (another loop's messages, es_worker) leaves in one go. One per
 * loop; cb NULL removes it. */
void rt_loop_set_after_flush(struct rt_loop *rl, void (*cb)(void *arg), void *arg);
/* The loop has nothing left to serve (its last connection of a kind just
 * went): gives the memory freed since back to the system now, as the trim
 * timer would after a quiet period, so that one burst's buffers do not stay
 * resident under the next burst's. At most once per RT_LOOP_IDLE_TRIM_MS:
 * a client that connects and leaves over and over costs one trim a second
 * at most, never one per connection. */
void rt_loop_trim_idle(struct rt_loop *rl);
#define RT_LOOP_IDLE_TRIM_MS 1000
/* The rt_loop of uv (uv->data). Asserts that rt_loop_init was called. */
struct rt_loop *rt_loop_of(uv_loop_t *uv);
/* The loop's own RNG, for anything on this loop that needs randomness
 * (px_pki_random, key generation, certificate serials). Never NULL after
 * rt_loop_init; not to be used from another thread. */
WC_RNG *rt_loop_rng(struct rt_loop *rl);

/* ---- for rt_conn only ---- */
/* Keeps the next poll from blocking until the flush hook ran: a connection
 * with no socket (memory mode) has nothing else to wake the loop. */
void rt_loop_wake(struct rt_loop *rl);
/* Defined in rt_conn.c: flushes every connection on rl->dirty (the flush
 * hook calls it once per loop iteration). */
void rt_conn_flush_dirty(struct rt_loop *rl);

#endif
