/* cn_edges: which edge each slot dials, alone (no I/O, a fake clock). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cn_edges.h"

/* Slot i's home is edges[i % n]: four slots over two edges, two each. */
static void test_home_round_robin(void **state)
{
    (void)state;
    struct cn_edges e;
    cn_edges_init(&e, 2);
    unsigned per_edge[2] = {0, 0};
    for (unsigned i = 0; i < 4; i++) {
        struct cn_edge_slot s;
        cn_edges_slot_init(&e, &s, i);
        assert_int_equal(s.home, i % 2);
        assert_int_equal(s.edge, s.home);
        per_edge[s.edge]++;
    }
    assert_int_equal(per_edge[0], 2);
    assert_int_equal(per_edge[1], 2);
    cn_edges_init(&e, 3);
    struct cn_edge_slot s;
    cn_edges_slot_init(&e, &s, 5);
    assert_int_equal(s.home, 2);
}

/* A slot moves to the next edge after a failed attempt and goes round the
 * list; a lost link stays put. */
static void test_failover_after_a_failure(void **state)
{
    (void)state;
    struct cn_edges e;
    cn_edges_init(&e, 3);
    struct cn_edge_slot s;
    cn_edges_slot_init(&e, &s, 1);
    assert_int_equal(CN_EDGES_FAILS_TO_MOVE, 1);
    assert_int_equal(cn_edges_failed(&e, &s), 1);
    assert_int_equal(s.edge, 2);
    assert_int_equal(cn_edges_failed(&e, &s), 1);
    assert_int_equal(s.edge, 0); /* in turn, wrapping */
    cn_edges_up(&s);
    assert_int_equal(s.fails, 0);
    cn_edges_lost(&s);
    assert_int_equal(s.edge, 0);
    assert_int_equal(s.fails, 0);
}

/* With a single edge nothing moves, however often it fails. */
static void test_single_edge_never_moves(void **state)
{
    (void)state;
    struct cn_edges e;
    cn_edges_init(&e, 1);
    struct cn_edge_slot s;
    cn_edges_slot_init(&e, &s, 3);
    for (int i = 0; i < 10; i++)
        assert_int_equal(cn_edges_failed(&e, &s), 0);
    assert_int_equal(s.edge, 0);
    assert_int_equal(cn_edges_goaway(&e, &s, 1000), 0); /* after the backoff, same edge */
    assert_int_equal(s.edge, 0);
    unsigned delay = 0;
    assert_int_equal(cn_edges_rebalance_due(&s, 0, &delay), 0);
}

/* GOAWAY moves the slot at once to another edge, preferring one that has
 * not sent GOAWAY in the last minute. */
static void test_goaway_moves_to_an_edge_not_going_away(void **state)
{
    (void)state;
    struct cn_edges e;
    cn_edges_init(&e, 3);
    struct cn_edge_slot a, b;
    cn_edges_slot_init(&e, &a, 0);
    cn_edges_slot_init(&e, &b, 1);
    /* Edge 1 went away at t=10 s: a, leaving edge 0 at t=20 s, skips it. */
    assert_int_equal(cn_edges_goaway(&e, &b, 10000), 1);
    assert_int_equal(b.edge, 2);
    assert_int_equal(cn_edges_goaway(&e, &a, 20000), 1);
    assert_int_equal(a.edge, 2);
    /* A minute later edge 1 is fair game again. */
    struct cn_edge_slot c = {.home = 0, .edge = 0};
    assert_int_equal(cn_edges_goaway(&e, &c, 20000 + CN_EDGES_GOAWAY_MEMORY_MS + 1), 1);
    assert_int_equal(c.edge, 1);
    /* Every other edge went away lately: the one that did so longest ago. */
    cn_edges_init(&e, 3);
    cn_edges_note_goaway(&e, 1, 5000);
    cn_edges_note_goaway(&e, 2, 3000);
    struct cn_edge_slot d = {.home = 0, .edge = 0};
    assert_int_equal(cn_edges_goaway(&e, &d, 6000), 1);
    assert_int_equal(d.edge, 2);
}

/* Away from home, the slot tries its home after 30-40 s; at home never. */
static void test_rebalance_due_away_from_home(void **state)
{
    (void)state;
    struct cn_edges e;
    cn_edges_init(&e, 2);
    struct cn_edge_slot s;
    cn_edges_slot_init(&e, &s, 0);
    unsigned delay = 0;
    assert_int_equal(cn_edges_rebalance_due(&s, 0xffffffffu, &delay), 0);
    assert_int_equal(cn_edges_goaway(&e, &s, 1000), 1);
    assert_int_equal(s.edge, 1);
    assert_int_equal(cn_edges_rebalance_due(&s, 0, &delay), 1);
    assert_int_equal(delay, CN_EDGES_REBALANCE_MS);
    assert_int_equal(cn_edges_rebalance_due(&s, 0xffffffffu, &delay), 1);
    assert_int_equal(delay, CN_EDGES_REBALANCE_MS + CN_EDGES_REBALANCE_JITTER_MS);
    cn_edges_home_again(&s);
    assert_int_equal(s.edge, 0);
    assert_int_equal(cn_edges_rebalance_due(&s, 0, &delay), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_home_round_robin),
        cmocka_unit_test(test_failover_after_a_failure),
        cmocka_unit_test(test_single_edge_never_moves),
        cmocka_unit_test(test_goaway_moves_to_an_edge_not_going_away),
        cmocka_unit_test(test_rebalance_due_away_from_home),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
