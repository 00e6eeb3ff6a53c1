/* px_errpage: the plain first line and the escaped HTML body. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "px_errpage.h"

#include <stdlib.h>
#include <string.h>

/* Returns a malloc'd copy of the page's first line (without '\n'). */
static char *first_line(const char *page)
{
    const char *nl = strchr(page, '\n');
    assert_non_null(nl);
    return strndup(page, (size_t)(nl - page));
}

static void test_first_line(void **state)
{
    (void)state;
    size_t len = 0;
    char *page = px_errpage_render(502, "detail", &len);
    assert_non_null(page);
    assert_int_equal(len, strlen(page));
    char *l = first_line(page);
    assert_string_equal(l, "502 Bad Gateway: detail");
    free(l);
    assert_non_null(strstr(page, "<title>502 Bad Gateway</title>"));
    assert_non_null(strstr(page, "<h1>502 Bad Gateway</h1>"));
    assert_non_null(strstr(page, "<p>detail</p>"));
    assert_int_equal(page[len - 1], '\n');
    free(page);
}

static void test_reasons(void **state)
{
    (void)state;
    assert_string_equal(px_status_reason(404), "Not Found");
    assert_string_equal(px_status_reason(502), "Bad Gateway");
    assert_string_equal(px_status_reason(503), "Service Unavailable");
    assert_string_equal(px_status_reason(530), "Tunnel Not Connected");
    /* The operator endpoints' answers (rt_httpd, the admin API). */
    assert_string_equal(px_status_reason(201), "Created");
    assert_string_equal(px_status_reason(304), "Not Modified");
    assert_string_equal(px_status_reason(401), "Unauthorized");
    assert_string_equal(px_status_reason(409), "Conflict");
    assert_string_equal(px_status_reason(299), "Error");
    assert_string_equal(px_status_reason(-1), "Error");
    size_t len;
    char *page = px_errpage_render(599, "x", &len);
    char *l = first_line(page);
    assert_string_equal(l, "599 Error: x");
    free(l);
    free(page);
}

static void test_html_escaped(void **state)
{
    (void)state;
    size_t len;
    char *page = px_errpage_render(502, "<script>alert(\"x&y\")</script>", &len);
    assert_non_null(page);
    assert_int_equal(len, strlen(page));
    assert_null(strstr(page, "<script"));
    assert_null(strstr(page, "</script"));
    assert_non_null(strstr(page, "<p>&lt;script&gt;alert(&quot;x&amp;y&quot;)&lt;/script&gt;</p>"));
    /* The escaped detail appears on the first line too (safe if sniffed as HTML). */
    char *l = first_line(page);
    assert_string_equal(l,
                        "502 Bad Gateway: &lt;script&gt;alert(&quot;x&amp;y&quot;)&lt;/script&gt;");
    free(l);
    free(page);
}

static void test_empty_detail(void **state)
{
    (void)state;
    size_t len;
    char *page = px_errpage_render(503, "", &len);
    char *l = first_line(page);
    assert_string_equal(l, "503 Service Unavailable: ");
    free(l);
    free(page);
}

static void test_cr_in_detail(void **state)
{
    (void)state;
    size_t len;
    char *page = px_errpage_render(502, "bad\rthing\r", &len);
    assert_non_null(page);
    char *l = first_line(page);
    assert_null(strchr(l, '\r'));
    assert_string_equal(l, "502 Bad Gateway: bad thing ");
    free(l);
    assert_int_equal(len, strlen(page));
    /* The detail still reaches the HTML body. */
    assert_non_null(strstr(page, "<p>bad"));
    assert_non_null(strstr(page, "thing"));
    free(page);
}

/* The source promises "The plain first line must stay one line whatever detail
 * contains": a LF in detail must not add a plain-text line before the HTML. */
static void test_lf_in_detail(void **state)
{
    (void)state;
    size_t len;
    char *page = px_errpage_render(502, "bad\r\nInjected: line", &len);
    assert_non_null(page);
    char *l = first_line(page);
    const char *second = page + strlen(l) + 1;
    if (strncmp(second, "<!doctype html>", 15) != 0)
        print_error("page:\n%s\n", page);
    assert_int_equal(strncmp(second, "<!doctype html>", 15), 0);
    assert_non_null(strstr(l, "Injected: line"));
    free(l);
    free(page);
}

static void test_long_detail(void **state)
{
    (void)state;
    size_t n = 100000;
    char *d = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        d[i] = "<&>\"a"[i % 5];
    d[n] = '\0';
    size_t len;
    char *page = px_errpage_render(500, d, &len);
    assert_non_null(page);
    assert_int_equal(len, strlen(page));
    assert_true(len > 2 * (n / 5) * 18);
    free(page);
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_line),   cmocka_unit_test(test_reasons),
        cmocka_unit_test(test_html_escaped), cmocka_unit_test(test_empty_detail),
        cmocka_unit_test(test_cr_in_detail), cmocka_unit_test(test_lf_in_detail),
        cmocka_unit_test(test_long_detail),
    };
    return cmocka_run_group_tests_name("px_errpage", tests, NULL, NULL);
}
