/* cn_stream: request header handling on a real stream of an in-memory
 * connector link (tests/support/mem_world). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cn_stream.h"
#include "mem_world.h"

#include <string.h>

static struct mw world;

static int setup(void **state)
{
    (void)state;
    return mw_init(&world, "{\"ingress\":[{\"service\":\"hello_world\"}]}");
}

static int teardown(void **state)
{
    (void)state;
    mw_cleanup(&world);
    return 0;
}

static int header(struct cn_stream *s, const char *n, const char *v)
{
    return cn_stream_on_header(s, (const uint8_t *)n, strlen(n), (const uint8_t *)v, strlen(v));
}

/* Found by fuzz_headers: a second :path (or :scheme) overwrote the first
 * without freeing it. nghttp2 refuses repeated pseudo headers today, but the
 * stream must not depend on that. LeakSanitizer fails this test on a leak. */
static void fuzz_defect_repeated_path_or_scheme_leaks(void **state)
{
    (void)state;
    assert_int_equal(mw_conn_link_open(&world), 0);
    mw_pump(&world);
    assert_non_null(world.cl);
    struct cn_stream *s = cn_stream_new(world.cl, 101);
    assert_non_null(s);
    assert_int_equal(header(s, ":path", "/first"), 0);
    assert_int_equal(header(s, ":path", "/second"), 0);
    assert_int_equal(header(s, ":scheme", "http"), 0);
    assert_int_equal(header(s, ":scheme", "https"), 0);
    assert_string_equal(s->path, "/second");
    assert_string_equal(s->scheme, "https");
    cn_stream_destroy(s);
    assert_int_equal(mw_close_all(&world), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fuzz_defect_repeated_path_or_scheme_leaks),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
