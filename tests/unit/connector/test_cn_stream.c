/* cn_stream: the request caps the connector applies itself (defect 1 of
 * issue 7: a 60,000-byte :path crashed the connector; the edge caps heads
 * too, but the connector must not rely on that). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cn_stream.h"
#include "mem_world.h"

#include <stdlib.h>
#include <string.h>

static int hdr(struct cn_stream *s, const char *n, const char *v, size_t vlen)
{
    return cn_stream_on_header(s, (const uint8_t *)n, strlen(n), (const uint8_t *)v, vlen);
}

static void free_fields(struct cn_stream *s)
{
    free(s->path);
    free(s->authority);
    free(s->scheme);
    curl_slist_free_all(s->req_headers);
}

static void test_defect1_long_path_refused_414(void **state)
{
    (void)state;
    struct cn_stream s;
    memset(&s, 0, sizeof(s));
    char *path = malloc(60001);
    assert_non_null(path);
    path[0] = '/';
    memset(path + 1, 'p', 59999);
    assert_int_equal(hdr(&s, ":method", "GET", 3), 0);
    assert_int_equal(hdr(&s, ":path", path, 60000), 0);
    assert_int_equal(s.refuse_status, 414);
    assert_null(s.path); /* never stored */
    /* A path at the cap is fine. */
    struct cn_stream ok;
    memset(&ok, 0, sizeof(ok));
    assert_int_equal(hdr(&ok, ":path", path, CN_STREAM_MAX_PATH), 0);
    assert_int_equal(ok.refuse_status, 0);
    assert_non_null(ok.path);
    free_fields(&ok);
    free_fields(&s);
    free(path);
}

static void test_defect1_header_block_refused_431(void **state)
{
    (void)state;
    struct cn_stream s;
    memset(&s, 0, sizeof(s));
    char v[1000];
    memset(v, 'v', sizeof(v));
    for (int i = 0; i < 100; i++)
        assert_int_equal(hdr(&s, "x-filler", v, sizeof(v)), 0);
    assert_int_equal(s.refuse_status, 431);
    /* Past the cap nothing more is kept: memory stays bounded. */
    size_t n = 0;
    for (struct curl_slist *l = s.req_headers; l; l = l->next)
        n++;
    assert_true(n * (sizeof(v) + 40) <= CN_STREAM_MAX_HEADER_BYTES + sizeof(v) + 40);
    free_fields(&s);
}

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

/* Found by fuzz_headers: a second :path (or :scheme) overwrote the first
 * without freeing it. nghttp2 refuses repeated pseudo headers today, but the
 * stream must not depend on that: a second :path is refused (it must not
 * choose the rule), a second :scheme replaces the first. LeakSanitizer fails
 * this test on a leak. */
static void fuzz_defect_repeated_path_or_scheme_leaks(void **state)
{
    (void)state;
    assert_int_equal(mw_conn_link_open(&world), 0);
    mw_pump(&world);
    assert_non_null(world.cl);
    struct cn_stream *s = cn_stream_new(world.cl, 101);
    assert_non_null(s);
    assert_int_equal(hdr(s, ":path", "/first", 6), 0);
    assert_int_not_equal(hdr(s, ":path", "/second", 7), 0);
    assert_int_equal(hdr(s, ":scheme", "http", 4), 0);
    assert_int_equal(hdr(s, ":scheme", "https", 5), 0);
    assert_string_equal(s->path, "/first");
    assert_string_equal(s->scheme, "https");
    cn_stream_destroy(s);
    assert_int_equal(mw_close_all(&world), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defect1_long_path_refused_414),
        cmocka_unit_test(test_defect1_header_block_refused_431),
        cmocka_unit_test_setup_teardown(fuzz_defect_repeated_path_or_scheme_leaks, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
