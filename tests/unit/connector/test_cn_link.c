/* cn_link against a fake host: the close contract (host->closed exactly
 * once, and only when nothing will call back into the link). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cn_link.h"
#include "rt_loop.h"

#include <stdlib.h>
#include <string.h>

struct fake {
    uv_loop_t loop;
    struct rt_loop rl;
    int closed;
    enum cn_link_cause cause;
};

static struct fake fk;

static void h_ready(void *arg, struct cn_link *l)
{
    (void)arg;
    (void)l;
    fail_msg("no registration expected");
}

static void h_retiring(void *arg, struct cn_link *l, int clean)
{
    (void)arg;
    (void)l;
    (void)clean;
}

/* The host frees the link here, as the supervisor does: anything that
 * touches it afterwards is a use after free ASan reports. */
static void h_closed(void *arg, struct cn_link *l)
{
    (void)arg;
    fk.closed++;
    fk.cause = cn_link_close_cause(l);
    free(l);
}

static void h_fatal(void *arg, const char *msg)
{
    (void)arg;
    fail_msg("unexpected fatal: %s", msg);
}

static void h_control(void *arg, struct cn_link *l, const struct px_ctl_msg *m)
{
    (void)arg;
    (void)l;
    (void)m;
}

static void h_hostnames(void *arg, char ***names, size_t *n)
{
    (void)arg;
    *names = NULL;
    *n = 0;
}

static WOLFSSL_CTX *h_tls_ctx(void *arg)
{
    (void)arg;
    return NULL;
}

static const struct cn_link_host_ops ops = {
    .ready = h_ready,
    .retiring = h_retiring,
    .closed = h_closed,
    .fatal = h_fatal,
    .control = h_control,
    .hostnames = h_hostnames,
    .tls_ctx = h_tls_ctx,
};

static int setup(void **state)
{
    (void)state;
    memset(&fk, 0, sizeof(fk));
    if (uv_loop_init(&fk.loop) != 0)
        return -1;
    return rt_loop_init(&fk.rl, &fk.loop) < 0 ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    rt_loop_cleanup(&fk.rl);
    uv_run(&fk.loop, UV_RUN_DEFAULT);
    return uv_loop_close(&fk.loop) == 0 ? 0 : -1;
}

/* Found by test_tunnel.sh under load: a link closed while the edge's name
 * was still being looked up was freed by its host, then the lookup's
 * callback used it. The close now waits for that callback. */
static void test_link_closed_while_resolving_is_freed_after_the_lookup(void **state)
{
    (void)state;
    struct cn_link_host host = {
        .ops = &ops, .arg = &fk, .server_name = "edge", .env = {.loop = &fk.loop}};
    for (int i = 0; i < 20; i++) {
        struct cn_link *l = calloc(1, sizeof(*l));
        assert_non_null(l);
        fk.closed = 0;
        assert_int_equal(cn_link_start(l, &host, 0, "localhost:9"), 0);
        cn_link_close(l, "stopping");
        uv_run(&fk.loop, UV_RUN_DEFAULT);
        assert_int_equal(fk.closed, 1);
        assert_int_equal(fk.cause, CN_LINK_CAUSE_LOCAL);
    }
}

/* A bad address closes the link with its cause, once. */
static void test_bad_address_closes_once_with_cause(void **state)
{
    (void)state;
    struct cn_link_host host = {
        .ops = &ops, .arg = &fk, .server_name = "edge", .env = {.loop = &fk.loop}};
    struct cn_link *l = calloc(1, sizeof(*l));
    assert_non_null(l);
    assert_int_equal(cn_link_start(l, &host, 0, "no-port-here"), 0);
    uv_run(&fk.loop, UV_RUN_DEFAULT);
    assert_int_equal(fk.closed, 1);
    assert_int_equal(fk.cause, CN_LINK_CAUSE_RESOLVE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_link_closed_while_resolving_is_freed_after_the_lookup,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_address_closes_once_with_cause, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
