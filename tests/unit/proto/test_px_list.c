/* px_list: the intrusive list every component links its objects with. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "px_list.h"

#include <stdlib.h>
#include <string.h>

struct item {
    int value;
    struct px_list_node link;
    int tail_marker;
};

static struct item *item_of(struct px_list_node *n)
{
    return px_container_of(n, struct item, link);
}

/* The values in list order, checking the back links on the way. */
static size_t values(const struct px_list *l, int *out, size_t max)
{
    size_t n = 0;
    const struct px_list_node *prev = &l->head;
    for (struct px_list_node *p = l->head.next; p != &l->head; p = p->next) {
        assert_ptr_equal(p->prev, prev);
        assert_true(n < max);
        out[n++] = item_of(p)->value;
        prev = p;
    }
    assert_ptr_equal(l->head.prev, prev);
    return n;
}

static void test_empty(void **state)
{
    (void)state;
    struct px_list l;
    px_list_init(&l);
    assert_true(px_list_empty(&l));
    assert_null(px_list_first(&l));
    assert_null(px_list_last(&l));
    assert_int_equal(px_list_count(&l), 0);
    struct px_list_node *pos, *tmp;
    int visited = 0;
    px_list_for_each_safe (pos, tmp, &l)
        visited++;
    assert_int_equal(visited, 0);
}

static void test_container_of(void **state)
{
    (void)state;
    struct item it = {.value = 7, .tail_marker = 9};
    assert_ptr_equal(item_of(&it.link), &it);
    assert_int_equal(item_of(&it.link)->tail_marker, 9);
}

static void test_insert_order(void **state)
{
    (void)state;
    struct px_list l;
    px_list_init(&l);
    struct item a = {.value = 1}, b = {.value = 2}, c = {.value = 3};
    px_list_insert_tail(&l, &b.link);
    px_list_insert_head(&l, &a.link);
    px_list_insert_tail(&l, &c.link);
    int v[8];
    assert_int_equal(values(&l, v, 8), 3);
    assert_int_equal(v[0], 1);
    assert_int_equal(v[1], 2);
    assert_int_equal(v[2], 3);
    assert_ptr_equal(px_list_first(&l), &a.link);
    assert_ptr_equal(px_list_last(&l), &c.link);
    assert_int_equal(px_list_count(&l), 3);
    assert_false(px_list_empty(&l));
}

static void test_remove(void **state)
{
    (void)state;
    struct px_list l;
    px_list_init(&l);
    struct item a = {.value = 1}, b = {.value = 2}, c = {.value = 3};
    px_list_insert_tail(&l, &a.link);
    px_list_insert_tail(&l, &b.link);
    px_list_insert_tail(&l, &c.link);
    px_list_remove(&b.link); /* middle */
    assert_false(px_list_linked(&b.link));
    int v[8];
    assert_int_equal(values(&l, v, 8), 2);
    assert_int_equal(v[0], 1);
    assert_int_equal(v[1], 3);
    px_list_remove(&a.link); /* first */
    px_list_remove(&c.link); /* last */
    assert_true(px_list_empty(&l));
    /* Removing again, or a node never linked, changes nothing. */
    px_list_remove(&a.link);
    struct item never;
    px_list_node_init(&never.link);
    px_list_remove(&never.link);
    struct item *zeroed = calloc(1, sizeof(*zeroed));
    assert_non_null(zeroed);
    assert_false(px_list_linked(&zeroed->link));
    px_list_remove(&zeroed->link);
    free(zeroed);
    assert_true(px_list_empty(&l));
    /* A removed node can be linked again. */
    px_list_insert_head(&l, &b.link);
    assert_true(px_list_linked(&b.link));
    assert_int_equal(values(&l, v, 8), 1);
    assert_int_equal(v[0], 2);
}

/* Removing (and freeing) the current node while iterating is allowed. */
static void test_iterate_removing(void **state)
{
    (void)state;
    struct px_list l;
    px_list_init(&l);
    for (int i = 0; i < 10; i++) {
        struct item *it = calloc(1, sizeof(*it));
        assert_non_null(it);
        it->value = i;
        px_list_insert_tail(&l, &it->link);
    }
    struct px_list_node *pos, *tmp;
    px_list_for_each_safe (pos, tmp, &l) {
        struct item *it = item_of(pos);
        if (it->value % 2 == 0) {
            px_list_remove(pos);
            free(it);
        }
    }
    int v[16];
    assert_int_equal(values(&l, v, 16), 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(v[i], 2 * i + 1);
    px_list_for_each_safe (pos, tmp, &l) {
        px_list_remove(pos);
        free(item_of(pos));
    }
    assert_true(px_list_empty(&l));
}

/* Move-to-front, the way an LRU cache uses it. */
static void test_move_to_front(void **state)
{
    (void)state;
    struct px_list l;
    px_list_init(&l);
    struct item it[4];
    for (int i = 0; i < 4; i++) {
        it[i].value = i;
        px_list_insert_tail(&l, &it[i].link);
    }
    px_list_remove(&it[2].link);
    px_list_insert_head(&l, &it[2].link);
    int v[8];
    assert_int_equal(values(&l, v, 8), 4);
    assert_int_equal(v[0], 2);
    assert_int_equal(v[1], 0);
    assert_int_equal(v[2], 1);
    assert_int_equal(v[3], 3);
    assert_int_equal(item_of(px_list_last(&l))->value, 3);
}

/* A batch taken with px_list_move keeps its order and its links, nodes
 * can leave it, and the emptied list takes new nodes apart from it. */
static void test_move(void **state)
{
    (void)state;
    struct px_list from, to;
    px_list_init(&from);
    px_list_move(&to, &from);
    assert_true(px_list_empty(&to));
    assert_true(px_list_empty(&from));
    struct item it[4];
    for (int i = 0; i < 3; i++) {
        it[i].value = i;
        px_list_insert_tail(&from, &it[i].link);
    }
    px_list_move(&to, &from);
    assert_true(px_list_empty(&from));
    int v[8];
    assert_int_equal(values(&to, v, 8), 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(v[i], i);
    it[3].value = 3;
    px_list_insert_tail(&from, &it[3].link);
    px_list_remove(&it[1].link);
    assert_int_equal(values(&to, v, 8), 2);
    assert_int_equal(v[0], 0);
    assert_int_equal(v[1], 2);
    assert_int_equal(values(&from, v, 8), 1);
    assert_int_equal(v[0], 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_container_of),
        cmocka_unit_test(test_insert_order),
        cmocka_unit_test(test_remove),
        cmocka_unit_test(test_iterate_removing),
        cmocka_unit_test(test_move_to_front),
        cmocka_unit_test(test_move),
    };
    return cmocka_run_group_tests_name("px_list", tests, NULL, NULL);
}
