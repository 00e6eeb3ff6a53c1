/* es_link: which requests a tunnel connection may carry. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "es_link.h"

#include <string.h>

/* Found by the CI run after defect 2's least-loaded routing: replicas of one
 * tunnel registered different names, and a request went to a connection
 * whose connector had no rule for it (404 no_route). A connection now carries
 * only hosts its own registration covers. */
static void test_serves_only_its_registered_names(void **state)
{
    (void)state;
    struct es_link l;
    memset(&l, 0, sizeof(l));
    char *names[] = {"*.apps.example.test", "home.example.test"};
    l.names = names;
    l.n_names = 2;
    assert_true(es_link_serves(&l, "home.example.test"));
    assert_true(es_link_serves(&l, "x.apps.example.test"));
    assert_true(es_link_serves(&l, "a.b.apps.example.test"));
    assert_false(es_link_serves(&l, "apps.example.test"));
    assert_false(es_link_serves(&l, "other.example.test"));
    assert_false(es_link_serves(&l, "home.example.test.evil"));
    l.n_names = 0;
    assert_false(es_link_serves(&l, "home.example.test"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serves_only_its_registered_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
