#include "rt_loop.h"
#include "px_log.h"
#include "rt_conn.h"
#include "px_err.h"
#include "px_tls.h"

#include <assert.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

static void on_spin(uv_idle_t *h)
{
    (void)h;
}

static void on_prepare(uv_prepare_t *h)
{
    struct rt_loop *rl = h->data;
    rl->iterations++;
    rt_conn_flush_dirty(rl);
    if (rl->after_flush)
        rl->after_flush(rl->after_flush_arg);
    /* The lines this iteration logged, in one write, before the loop waits. */
    px_log_flush();
    /* Keep the loop from sleeping while work remains (an active idle handle
     * makes the next poll non-blocking). */
    if (!px_list_empty(&rl->dirty))
        uv_idle_start(&rl->spin, on_spin);
    else
        uv_idle_stop(&rl->spin);
}

/* Gives memory back only after a quiet period: under load the pages
 * malloc keeps are the ones the next requests fault in again, and a trim
 * walks the whole heap under its lock. */
static void on_trim(uv_timer_t *h)
{
    struct rt_loop *rl = h->data;
    unsigned long long busy = rl->iterations;
    rl->iterations = 0;
    if (busy > RT_LOOP_QUIET_ITERATIONS)
        return;
    px_tls_free_caches();
    malloc_trim(0);
}

int rt_loop_init(struct rt_loop *rl, uv_loop_t *uv)
{
    memset(rl, 0, sizeof(*rl));
    px_list_init(&rl->dirty);
    int rc = PX_ERR_NOMEM;
    rl->read_scratch = malloc(RT_CONN_READ_SIZE);
    if (!rl->read_scratch)
        return rc;
    rc = PX_ERR_CRYPTO;
    if (wc_InitRng(&rl->rng) != 0)
        goto out_scratch;
    rl->rng_ready = 1;
    int r = uv_prepare_init(uv, &rl->flush_hook);
    if (r < 0)
        goto out_uv;
    /* Closing a handle that was initialised needs the loop to run: from
     * here on failures leave the handles closing and rl valid until then. */
    r = uv_idle_init(uv, &rl->spin);
    if (r < 0) {
        uv_close((uv_handle_t *)&rl->flush_hook, NULL);
        goto out_uv;
    }
    r = uv_timer_init(uv, &rl->trim);
    if (r < 0) {
        uv_close((uv_handle_t *)&rl->flush_hook, NULL);
        uv_close((uv_handle_t *)&rl->spin, NULL);
        goto out_uv;
    }
    rl->flush_hook.data = rl->spin.data = rl->trim.data = rl;
    /* The hook and the timer alone must not keep the loop alive. */
    uv_unref((uv_handle_t *)&rl->flush_hook);
    uv_unref((uv_handle_t *)&rl->trim);
    r = uv_prepare_start(&rl->flush_hook, on_prepare);
    if (r == 0)
        r = uv_timer_start(&rl->trim, on_trim, RT_LOOP_TRIM_MS, RT_LOOP_TRIM_MS);
    if (r < 0) {
        uv_close((uv_handle_t *)&rl->flush_hook, NULL);
        uv_close((uv_handle_t *)&rl->spin, NULL);
        uv_close((uv_handle_t *)&rl->trim, NULL);
        goto out_uv;
    }
    rl->uv = uv;
    uv->data = rl;
    px_log_batch(1);
    return 0;
out_uv:
    rc = px_err_from_errno(r);
    wc_FreeRng(&rl->rng);
    rl->rng_ready = 0;
out_scratch:
    free(rl->read_scratch);
    rl->read_scratch = NULL;
    return rc;
}

void rt_loop_cleanup(struct rt_loop *rl)
{
    if (!rl->uv)
        return;
    uv_prepare_stop(&rl->flush_hook);
    uv_close((uv_handle_t *)&rl->flush_hook, NULL);
    uv_idle_stop(&rl->spin);
    uv_close((uv_handle_t *)&rl->spin, NULL);
    uv_timer_stop(&rl->trim);
    uv_close((uv_handle_t *)&rl->trim, NULL);
    if (rl->uv->data == rl)
        rl->uv->data = NULL;
    rl->uv = NULL;
    rl->after_flush = NULL;
    px_log_batch(0);
    if (rl->rng_ready)
        wc_FreeRng(&rl->rng);
    rl->rng_ready = 0;
    free(rl->read_scratch);
    rl->read_scratch = NULL;
    /* wolfSSL caches ECC points per thread (thread-local, built again on
     * demand): a loop's thread that ends must free its cache or leak it. */
    px_tls_free_caches();
}

void rt_loop_trim_idle(struct rt_loop *rl)
{
    if (!rl->uv)
        return;
    uint64_t now = uv_now(rl->uv);
    if (rl->idle_trim_ms && now - rl->idle_trim_ms < RT_LOOP_IDLE_TRIM_MS)
        return;
    rl->idle_trim_ms = now;
    px_tls_free_caches();
    malloc_trim(0);
}

void rt_loop_set_after_flush(struct rt_loop *rl, void (*cb)(void *arg), void *arg)
{
    rl->after_flush = cb;
    rl->after_flush_arg = arg;
}

struct rt_loop *rt_loop_of(uv_loop_t *uv)
{
    struct rt_loop *rl = uv->data;
    assert(rl && rl->uv == uv && "rt_loop_init was not called for this loop");
    return rl;
}

WC_RNG *rt_loop_rng(struct rt_loop *rl)
{
    assert(rl->rng_ready);
    return &rl->rng;
}

void rt_loop_wake(struct rt_loop *rl)
{
    if (rl->uv)
        uv_idle_start(&rl->spin, on_spin);
}
