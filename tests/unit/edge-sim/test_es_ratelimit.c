/* es_ratelimit: failed enrolments per source address (defect 13), driven
 * by an injected clock. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "es_ratelimit.h"
#include "px_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The edge's setting: 5 failures back to back, then one per 12 s (5/min). */
#define BURST 5
#define INTERVAL 12000

static int setup(void **state)
{
    struct es_ratelimit *rl = calloc(1, sizeof(*rl));
    if (!rl || es_ratelimit_init(rl, 4, BURST, INTERVAL) != 0)
        return -1;
    *state = rl;
    return 0;
}

static int teardown(void **state)
{
    es_ratelimit_cleanup(*state);
    free(*state);
    return 0;
}

static void test_init_invalid(void **state)
{
    (void)state;
    struct es_ratelimit rl;
    assert_int_equal(es_ratelimit_init(&rl, 0, 5, 1000), PX_ERR_INVAL);
    assert_int_equal(es_ratelimit_init(&rl, 4, 0, 1000), PX_ERR_INVAL);
    assert_int_equal(es_ratelimit_init(&rl, 4, 5, 0), PX_ERR_INVAL);
    es_ratelimit_cleanup(&rl); /* safe after a failed init */
}

static void test_burst_then_limited(void **state)
{
    struct es_ratelimit *rl = *state;
    uint64_t t = 1000000;
    for (int i = 0; i < BURST; i++) {
        assert_int_equal(es_ratelimit_allowed(rl, "192.0.2.1", t), 1);
        assert_int_equal(es_ratelimit_fail(rl, "192.0.2.1", t), i == BURST - 1);
    }
    assert_int_equal(es_ratelimit_allowed(rl, "192.0.2.1", t), 0);
    /* Still limited just before one interval has passed... */
    assert_int_equal(es_ratelimit_allowed(rl, "192.0.2.1", t + INTERVAL - 1), 0);
    /* ...then exactly one more failure is allowed. */
    assert_int_equal(es_ratelimit_allowed(rl, "192.0.2.1", t + INTERVAL), 1);
    assert_int_equal(es_ratelimit_fail(rl, "192.0.2.1", t + INTERVAL), 1);
    assert_int_equal(es_ratelimit_allowed(rl, "192.0.2.1", t + INTERVAL), 0);
    /* Other addresses are not affected. */
    assert_int_equal(es_ratelimit_allowed(rl, "192.0.2.2", t), 1);
}

static void test_steady_rate(void **state)
{
    struct es_ratelimit *rl = *state;
    /* An address failing as fast as it may, for ten minutes, gets the burst
     * plus one failure per interval: 5 + 50. */
    int failures = 0;
    for (uint64_t t = 0; t <= 600000; t += 100) {
        if (es_ratelimit_allowed(rl, "198.51.100.7", t)) {
            es_ratelimit_fail(rl, "198.51.100.7", t);
            failures++;
        }
    }
    assert_int_equal(failures, BURST + 600000 / INTERVAL);
}

static void test_refills_to_burst_only(void **state)
{
    struct es_ratelimit *rl = *state;
    es_ratelimit_fail(rl, "a", 0);
    /* A day later the bucket holds `burst` failures, not more. */
    uint64_t t = 86400000;
    for (int i = 0; i < BURST; i++) {
        assert_int_equal(es_ratelimit_allowed(rl, "a", t), 1);
        es_ratelimit_fail(rl, "a", t);
    }
    assert_int_equal(es_ratelimit_allowed(rl, "a", t), 0);
}

static void test_clock_going_back_is_harmless(void **state)
{
    struct es_ratelimit *rl = *state;
    for (int i = 0; i < BURST; i++)
        es_ratelimit_fail(rl, "a", 50000);
    assert_int_equal(es_ratelimit_allowed(rl, "a", 1000), 0);
    assert_int_equal(es_ratelimit_allowed(rl, "a", 50000), 0);
}

static void test_bounded_eviction(void **state)
{
    struct es_ratelimit *rl = *state; /* room for 4 addresses */
    char key[32];
    /* Limit "victim", then fill the table with other limited addresses. */
    for (int i = 0; i < BURST; i++)
        es_ratelimit_fail(rl, "victim", 0);
    for (int k = 0; k < 3; k++) {
        snprintf(key, sizeof(key), "10.0.0.%d", k);
        for (int i = 0; i < BURST; i++)
            es_ratelimit_fail(rl, key, 10 + (uint64_t)k);
    }
    assert_int_equal(rl->n, 4);
    /* A fifth address takes the slot idle longest ("victim"): the table
     * never grows. */
    es_ratelimit_fail(rl, "10.0.1.1", 100);
    assert_int_equal(rl->n, 4);
    assert_int_equal(es_ratelimit_allowed(rl, "victim", 100), 1);
    assert_int_equal(es_ratelimit_allowed(rl, "10.0.0.2", 100), 0);
    /* Thousands of addresses later it is still the same size. */
    for (int k = 0; k < 5000; k++) {
        snprintf(key, sizeof(key), "172.16.%d.%d", k / 256, k % 256);
        es_ratelimit_fail(rl, key, 200 + (uint64_t)k);
    }
    assert_int_equal(rl->n, 4);
    assert_int_equal(rl->cap, 4);
}

static void test_refilled_entry_evicted_first(void **state)
{
    struct es_ratelimit *rl = *state;
    /* "old" failed once long ago and has refilled; the three others are
     * limited and recent. A new address replaces "old", not a limited one. */
    es_ratelimit_fail(rl, "old", 0);
    for (int k = 0; k < 3; k++) {
        char key[16];
        snprintf(key, sizeof(key), "lim%d", k);
        for (int i = 0; i < BURST; i++)
            es_ratelimit_fail(rl, key, 1000000);
    }
    es_ratelimit_fail(rl, "new", 1000001);
    assert_int_equal(es_ratelimit_allowed(rl, "lim0", 1000001), 0);
    assert_int_equal(es_ratelimit_allowed(rl, "lim1", 1000001), 0);
    assert_int_equal(es_ratelimit_allowed(rl, "lim2", 1000001), 0);
}

static void test_key(void **state)
{
    (void)state;
    char k[ES_RATELIMIT_KEY_MAX];
    es_ratelimit_key("127.0.0.1", k);
    assert_string_equal(k, "127.0.0.1");
    es_ratelimit_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd", k);
    assert_string_equal(k, "2001:db8:1:2::/64");
    es_ratelimit_key("2001:db8:1:2::1", k);
    assert_string_equal(k, "2001:db8:1:2::/64");
    es_ratelimit_key("::ffff:192.0.2.9", k);
    assert_string_equal(k, "192.0.2.9");
    es_ratelimit_key("not an address", k);
    assert_string_equal(k, "not an address");
    char longip[80];
    memset(longip, '9', sizeof(longip) - 1);
    longip[sizeof(longip) - 1] = '\0';
    es_ratelimit_key(longip, k);
    assert_int_equal(strlen(k), ES_RATELIMIT_KEY_MAX - 1);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_invalid),
        T(test_burst_then_limited),
        T(test_steady_rate),
        T(test_refills_to_burst_only),
        T(test_clock_going_back_is_harmless),
        T(test_bounded_eviction),
        T(test_refilled_entry_evicted_first),
        cmocka_unit_test(test_key),
    };
    return cmocka_run_group_tests_name("es_ratelimit", tests, NULL, NULL);
}
