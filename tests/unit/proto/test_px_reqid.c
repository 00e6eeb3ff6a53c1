/* px_reqid: request ids are 32 lower-case hex digits, the seed is the
 * prefix, ids never repeat (many in a row, and across the counter's wrap,
 * which carries into the prefix). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "px_reqid.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MANY 200000

static const uint8_t seed[8] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};

static void assert_format(const char *id)
{
    assert_int_equal(strlen(id), PX_REQID_LEN);
    for (size_t i = 0; i < PX_REQID_LEN; i++)
        assert_non_null(strchr("0123456789abcdef", id[i]));
}

static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, PX_REQID_LEN + 1);
}

/* n ids from g into a fresh array (caller frees): each well-formed, and in
 * strictly increasing order (hex of fixed width sorts like the number), which
 * also makes them unique. */
static char (*run(struct px_reqid *g, size_t n))[PX_REQID_LEN + 1]
{
    char(*ids)[PX_REQID_LEN + 1] = calloc(n, sizeof(*ids));
    assert_non_null(ids);
    for (size_t i = 0; i < n; i++) {
        memset(ids[i], 'X', sizeof(ids[i]));
        px_reqid_next(g, ids[i]);
        assert_format(ids[i]);
        if (i > 0)
            assert_true(cmp_id(ids[i - 1], ids[i]) < 0);
    }
    return ids;
}

static void test_format_and_prefix(void **state)
{
    (void)state;
    struct px_reqid g = {0};
    assert_int_equal(g.ready, 0);
    px_reqid_init(&g, seed);
    assert_int_equal(g.ready, 1);
    char id[PX_REQID_LEN + 1];
    px_reqid_next(&g, id);
    assert_string_equal(id, "0123456789abcdef0000000000000000");
    px_reqid_next(&g, id);
    assert_string_equal(id, "0123456789abcdef0000000000000001");
    for (int i = 0; i < 14; i++)
        px_reqid_next(&g, id);
    assert_string_equal(id, "0123456789abcdef000000000000000f");
    px_reqid_next(&g, id);
    assert_string_equal(id, "0123456789abcdef0000000000000010");
}

static void test_many_unique(void **state)
{
    (void)state;
    struct px_reqid g = {0};
    px_reqid_init(&g, seed);
    char(*ids)[PX_REQID_LEN + 1] = run(&g, MANY);
    /* Unique by sorting too, not only by the order they came in. */
    qsort(ids, MANY, sizeof(*ids), cmp_id);
    for (size_t i = 1; i < MANY; i++)
        assert_true(cmp_id(ids[i - 1], ids[i]) != 0);
    for (size_t i = 0; i < MANY; i++)
        assert_memory_equal(ids[i], "0123456789abcdef", 16);
    free(ids);
}

/* 2^64 ids are out of reach, so start just before the wrap: the ids on both
 * sides of it differ, and the carry moves the prefix on by one. */
static void test_counter_wrap_carries_into_prefix(void **state)
{
    (void)state;
    struct px_reqid g = {0};
    px_reqid_init(&g, seed);
    char first[PX_REQID_LEN + 1];
    px_reqid_next(&g, first);
    g.counter = UINT64_MAX - MANY / 2;
    char(*ids)[PX_REQID_LEN + 1] = run(&g, MANY);
    assert_string_equal(ids[MANY / 2], "0123456789abcdefffffffffffffffff");
    assert_string_equal(ids[MANY / 2 + 1], "0123456789abcdf00000000000000000");
    for (size_t i = 0; i < MANY; i++)
        assert_true(cmp_id(first, ids[i]) != 0);
    free(ids);
}

/* Even the last 128-bit value moves on (to 0): the one repeat is 2^128 away. */
static void test_full_wrap(void **state)
{
    (void)state;
    const uint8_t ff[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    struct px_reqid g = {0};
    px_reqid_init(&g, ff);
    g.counter = UINT64_MAX;
    char id[PX_REQID_LEN + 1];
    px_reqid_next(&g, id);
    assert_string_equal(id, "ffffffffffffffffffffffffffffffff");
    px_reqid_next(&g, id);
    assert_string_equal(id, "00000000000000000000000000000000");
}

/* Two generators (two processes) with different seeds never share an id
 * within their first 2^64: the prefixes differ. */
static void test_seeds_apart(void **state)
{
    (void)state;
    uint8_t other[8];
    memcpy(other, seed, sizeof(other));
    other[0] ^= 0x80;
    struct px_reqid a = {0}, b = {0};
    px_reqid_init(&a, seed);
    px_reqid_init(&b, other);
    char ia[PX_REQID_LEN + 1], ib[PX_REQID_LEN + 1];
    for (int i = 0; i < 1000; i++) {
        px_reqid_next(&a, ia);
        px_reqid_next(&b, ib);
        assert_memory_not_equal(ia, ib, 16);
        assert_memory_equal(ia + 16, ib + 16, 16);
    }
    assert_string_equal(ib, "8123456789abcdef00000000000003e7");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_and_prefix),
        cmocka_unit_test(test_many_unique),
        cmocka_unit_test(test_counter_wrap_carries_into_prefix),
        cmocka_unit_test(test_full_wrap),
        cmocka_unit_test(test_seeds_apart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
