/* px_buf: the byte queue every stream buffers through. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "px_buf.h"
#include "px_err.h"

#include <stdlib.h>
#include <string.h>

static void test_init_empty(void **state)
{
    (void)state;
    struct px_buf b;
    memset(&b, 0x5a, sizeof(b));
    px_buf_init(&b);
    assert_int_equal(px_buf_len(&b), 0);
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
    px_buf_cleanup(&b);
    px_buf_cleanup(&b); /* idempotent */
}

static void test_append_consume(void **state)
{
    (void)state;
    struct px_buf b;
    px_buf_init(&b);
    assert_int_equal(px_buf_append(&b, "hello ", 6), 0);
    assert_int_equal(px_buf_append(&b, "world", 5), 0);
    assert_int_equal(px_buf_len(&b), 11);
    assert_memory_equal(px_buf_head(&b), "hello world", 11);
    px_buf_consume(&b, 6);
    assert_int_equal(px_buf_len(&b), 5);
    assert_memory_equal(px_buf_head(&b), "world", 5);
    /* Appending nothing changes nothing. */
    assert_int_equal(px_buf_append(&b, NULL, 0), 0);
    assert_int_equal(px_buf_len(&b), 5);
    px_buf_consume(&b, 5);
    assert_int_equal(px_buf_len(&b), 0);
    assert_int_equal(b.off, 0);
    /* Consuming more than is there empties the buffer. */
    assert_int_equal(px_buf_append(&b, "abc", 3), 0);
    px_buf_consume(&b, 100);
    assert_int_equal(px_buf_len(&b), 0);
    px_buf_cleanup(&b);
}

static void test_append_empty_on_fresh(void **state)
{
    (void)state;
    struct px_buf b;
    px_buf_init(&b);
    assert_int_equal(px_buf_append(&b, "", 0), 0);
    assert_null(b.data);
    px_buf_cleanup(&b);
}

static void test_reserve_commit(void **state)
{
    (void)state;
    struct px_buf b;
    px_buf_init(&b);
    uint8_t *p = px_buf_reserve(&b, 10);
    assert_non_null(p);
    assert_int_equal(px_buf_len(&b), 0);
    assert_true(b.cap >= 10);
    memcpy(p, "0123456789", 10);
    px_buf_commit(&b, 4);
    assert_int_equal(px_buf_len(&b), 4);
    assert_memory_equal(px_buf_head(&b), "0123", 4);
    /* The next reserve starts right after the committed bytes. */
    p = px_buf_reserve(&b, 3);
    memcpy(p, "abc", 3);
    px_buf_commit(&b, 3);
    assert_memory_equal(px_buf_head(&b), "0123abc", 7);
    px_buf_cleanup(&b);
}

static void test_growth_keeps_contents(void **state)
{
    (void)state;
    struct px_buf b;
    px_buf_init(&b);
    uint8_t chunk[1000];
    size_t total = 0;
    for (int i = 0; i < 300; i++) {
        memset(chunk, i & 0xff, sizeof(chunk));
        assert_int_equal(px_buf_append(&b, chunk, sizeof(chunk)), 0);
        total += sizeof(chunk);
        assert_true(b.cap >= b.off + b.len);
    }
    assert_int_equal(px_buf_len(&b), total);
    const uint8_t *h = px_buf_head(&b);
    for (size_t i = 0; i < total; i++)
        if (h[i] != ((i / 1000) & 0xff))
            fail_msg("byte %zu is %d", i, h[i]);
    /* Power-of-two growth from 4 KiB. */
    assert_int_equal(b.cap & (b.cap - 1), 0);
    assert_true(b.cap >= 4096);
    px_buf_cleanup(&b);
}

static void test_compaction(void **state)
{
    (void)state;
    struct px_buf b;
    px_buf_init(&b);
    uint8_t data[4096];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)i;
    assert_int_equal(px_buf_append(&b, data, 4096), 0);
    assert_int_equal(b.cap, 4096);
    uint8_t *storage = b.data;
    px_buf_consume(&b, 3000);
    assert_int_equal(b.off, 3000);
    /* 1096 unread + 2000 more fits in 4096 once the head is moved down:
     * the buffer compacts instead of growing. */
    uint8_t *p = px_buf_reserve(&b, 2000);
    assert_non_null(p);
    assert_int_equal(b.cap, 4096);
    assert_ptr_equal(b.data, storage);
    assert_int_equal(b.off, 0);
    assert_ptr_equal(p, b.data + 1096);
    assert_memory_equal(px_buf_head(&b), data + 3000, 1096);
    memset(p, 0xee, 2000);
    px_buf_commit(&b, 2000);
    assert_int_equal(px_buf_len(&b), 3096);
    /* Too much for compaction alone: grows, contents preserved. */
    px_buf_consume(&b, 96);
    assert_int_equal(px_buf_append(&b, data, 2000), 0);
    assert_int_equal(b.cap, 8192);
    assert_int_equal(b.off, 0);
    assert_memory_equal(px_buf_head(&b), data + 3096, 1000);
    assert_int_equal(px_buf_head(&b)[1000], 0xee);
    assert_memory_equal(px_buf_head(&b) + 3000, data, 2000);
    px_buf_cleanup(&b);
}

static void test_empty_resets_offset(void **state)
{
    (void)state;
    struct px_buf b;
    px_buf_init(&b);
    assert_int_equal(px_buf_append(&b, "abcdef", 6), 0);
    px_buf_consume(&b, 3);
    px_buf_consume(&b, 3);
    uint8_t *storage = b.data;
    /* An emptied buffer reuses its storage from the start. */
    assert_int_equal(px_buf_append(&b, "xyz", 3), 0);
    assert_ptr_equal(b.data, storage);
    assert_int_equal(b.off, 0);
    assert_memory_equal(px_buf_head(&b), "xyz", 3);
    px_buf_cleanup(&b);
}

static void test_read(void **state)
{
    (void)state;
    struct px_buf b;
    px_buf_init(&b);
    char out[16];
    /* n = 0, and any n, on an empty (never allocated) buffer. */
    assert_int_equal(px_buf_read(&b, out, 0), 0);
    assert_int_equal(px_buf_read(&b, out, sizeof(out)), 0);
    assert_int_equal(px_buf_read(&b, NULL, 0), 0);
    assert_int_equal(px_buf_append(&b, "0123456789", 10), 0);
    assert_int_equal(px_buf_read(&b, out, 0), 0);
    assert_int_equal(px_buf_len(&b), 10);
    assert_int_equal(px_buf_read(&b, out, 4), 4);
    assert_memory_equal(out, "0123", 4);
    assert_int_equal(px_buf_read(&b, out, sizeof(out)), 6);
    assert_memory_equal(out, "456789", 6);
    assert_int_equal(px_buf_len(&b), 0);
    assert_int_equal(px_buf_read(&b, out, sizeof(out)), 0);
    px_buf_cleanup(&b);
}

static void test_shrink(void **state)
{
    (void)state;
    struct px_buf b;
    px_buf_init(&b);
    px_buf_shrink(&b, 0); /* nothing allocated: no-op */
    assert_null(b.data);
    uint8_t big[20000];
    memset(big, 1, sizeof(big));
    assert_int_equal(px_buf_append(&b, big, sizeof(big)), 0);
    size_t cap = b.cap;
    /* Not empty: kept whatever the threshold. */
    px_buf_shrink(&b, 0);
    assert_int_equal(b.cap, cap);
    assert_int_equal(px_buf_len(&b), sizeof(big));
    px_buf_consume(&b, sizeof(big));
    /* Empty but within keep: kept. */
    px_buf_shrink(&b, cap);
    assert_int_equal(b.cap, cap);
    assert_non_null(b.data);
    /* Empty and larger than keep: released. */
    px_buf_shrink(&b, 4096);
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
    assert_int_equal(b.off, 0);
    /* Still usable afterwards. */
    assert_int_equal(px_buf_append(&b, "again", 5), 0);
    assert_memory_equal(px_buf_head(&b), "again", 5);
    px_buf_cleanup(&b);
}

static void test_reserve_too_large(void **state)
{
    (void)state;
    struct px_buf b;
    px_buf_init(&b);
    assert_int_equal(px_buf_append(&b, "x", 1), 0);
    assert_null(px_buf_reserve(&b, SIZE_MAX / 2 + 2));
    assert_null(px_buf_reserve(&b, SIZE_MAX - 4096));
    /* Unchanged by the failures. */
    assert_int_equal(px_buf_len(&b), 1);
    assert_memory_equal(px_buf_head(&b), "x", 1);
    px_buf_cleanup(&b);
}

/* off + len + n must not wrap around: with len = 1, n = SIZE_MAX wraps the
 * fast-path sum to 0 <= cap, and reserve hands out "room" that does not exist. */
static void test_reserve_huge_does_not_wrap(void **state)
{
    (void)state;
    struct px_buf b;
    px_buf_init(&b);
    assert_int_equal(px_buf_append(&b, "x", 1), 0);
    uint8_t *p = px_buf_reserve(&b, SIZE_MAX);
    size_t len = px_buf_len(&b);
    px_buf_cleanup(&b);
    assert_null(p);
    assert_int_equal(len, 1);
}

/* defect 1 (issue 7): heads were built with snprintf into fixed arrays and
 * appended with the untruncated length. appendf never truncates. */
static void test_appendf_long_values_are_whole(void **state)
{
    (void)state;
    struct px_buf b;
    px_buf_init(&b);
    char *path = malloc(60001);
    assert_non_null(path);
    memset(path, 'p', 60000);
    path[60000] = '\0';
    assert_int_equal(px_buf_append_str(&b, "GET "), 0);
    assert_int_equal(px_buf_appendf(&b, "%s HTTP/1.1\r\nHost: %s\r\n", path, "h.example"), 0);
    size_t want = 4 + 60000 + strlen(" HTTP/1.1\r\nHost: h.example\r\n");
    assert_int_equal(px_buf_len(&b), want);
    const char *s = px_buf_cstr(&b);
    assert_non_null(s);
    assert_int_equal(strlen(s), want);
    assert_memory_equal(s + 4, path, 60000);
    assert_string_equal(s + 4 + 60000, " HTTP/1.1\r\nHost: h.example\r\n");
    assert_int_equal(px_buf_len(&b), want); /* cstr's NUL is not counted */
    assert_int_equal(px_buf_appendf(&b, "%d", 7), 0);
    assert_int_equal(px_buf_len(&b), want + 1);
    assert_int_equal(px_buf_head(&b)[want], '7');
    free(path);
    px_buf_cleanup(&b);
}

static void test_cstr_of_empty(void **state)
{
    (void)state;
    struct px_buf b;
    px_buf_init(&b);
    const char *s = px_buf_cstr(&b);
    assert_non_null(s);
    assert_string_equal(s, "");
    assert_int_equal(px_buf_len(&b), 0);
    px_buf_cleanup(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_empty),
        cmocka_unit_test(test_append_consume),
        cmocka_unit_test(test_append_empty_on_fresh),
        cmocka_unit_test(test_reserve_commit),
        cmocka_unit_test(test_growth_keeps_contents),
        cmocka_unit_test(test_compaction),
        cmocka_unit_test(test_empty_resets_offset),
        cmocka_unit_test(test_read),
        cmocka_unit_test(test_shrink),
        cmocka_unit_test(test_reserve_too_large),
        cmocka_unit_test(test_reserve_huge_does_not_wrap),
        cmocka_unit_test(test_appendf_long_values_are_whole),
        cmocka_unit_test(test_cstr_of_empty),
    };
    return cmocka_run_group_tests_name("px_buf", tests, NULL, NULL);
}
