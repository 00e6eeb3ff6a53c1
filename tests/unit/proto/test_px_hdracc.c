/* px_hdracc: whole header fields out of http_parser's piecewise callbacks. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "px_err.h"
#include "px_hdracc.h"

#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXF 16

struct seen {
    struct px_hdracc acc;
    char text[4096]; /* "name=value;" per field, in order */
    size_t len;
    int n;
    int fail_at; /* emit returns PX_ERR_DENIED for this field (1-based); 0 never */
    int complete;
};

static int emit(void *arg, const char *name, size_t nlen, const char *value, size_t vlen)
{
    struct seen *s = arg;
    s->n++;
    /* The strings are NUL-terminated at their lengths. */
    assert_int_equal(strlen(name), nlen);
    assert_int_equal(strlen(value), vlen);
    if (s->fail_at == s->n)
        return PX_ERR_DENIED;
    int k = snprintf(s->text + s->len, sizeof(s->text) - s->len, "%s=%s;", name, value);
    assert_true(k > 0 && (size_t)k < sizeof(s->text) - s->len);
    s->len += (size_t)k;
    return 0;
}

static int on_field(http_parser *p, const char *at, size_t len)
{
    struct seen *s = p->data;
    return px_hdracc_field(&s->acc, at, len) < 0 ? -1 : 0;
}

static int on_value(http_parser *p, const char *at, size_t len)
{
    struct seen *s = p->data;
    return px_hdracc_value(&s->acc, at, len) < 0 ? -1 : 0;
}

static int on_complete(http_parser *p)
{
    struct seen *s = p->data;
    s->complete++;
    return px_hdracc_end(&s->acc) < 0 ? -1 : 0;
}

static const http_parser_settings settings = {
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_headers_complete = on_complete,
};

/* Parses msg in pieces of at most step bytes; returns the parser's errno. */
static enum http_errno parse(struct seen *s, const char *msg, size_t step, size_t max_field,
                             size_t max_fields)
{
    memset(s, 0, sizeof(*s));
    px_hdracc_init(&s->acc, max_field, max_fields, emit, s);
    http_parser p;
    http_parser_init(&p, HTTP_REQUEST);
    p.data = s;
    size_t len = strlen(msg), off = 0;
    while (off < len) {
        size_t n = len - off < step ? len - off : step;
        size_t got = http_parser_execute(&p, &settings, msg + off, n);
        if (HTTP_PARSER_ERRNO(&p) != HPE_OK)
            break;
        assert_int_equal(got, n);
        off += n;
    }
    px_hdracc_cleanup(&s->acc);
    return HTTP_PARSER_ERRNO(&p);
}

static const char head[] = "GET / HTTP/1.1\r\n"
                           "Host: a.example\r\n"
                           "X-Empty:\r\n"
                           "X-Spaces:   \t\r\n"
                           "X-Trail: value with  inner  spaces \t \r\n"
                           "Accept: */*\r\n"
                           "\r\n";
static const char want[] = "Host=a.example;X-Empty=;X-Spaces=;X-Trail=value with  inner  spaces;"
                           "Accept=*/*;";

static void test_fields(void **state)
{
    (void)state;
    struct seen s;
    assert_int_equal(parse(&s, head, sizeof(head), 0, 0), HPE_OK);
    assert_int_equal(s.complete, 1);
    assert_int_equal(s.n, 5);
    assert_string_equal(s.text, want);
}

/* A name or value split over several execute calls is delivered whole,
 * whatever the split. */
static void test_every_split(void **state)
{
    (void)state;
    for (size_t step = 1; step < sizeof(head); step++) {
        struct seen s;
        assert_int_equal(parse(&s, head, step, 0, 0), HPE_OK);
        assert_string_equal(s.text, want);
    }
}

static void test_field_cap(void **state)
{
    (void)state;
    struct seen s;
    /* The cap counts name + value as received (before trimming). */
    assert_int_equal(parse(&s, "GET / HTTP/1.1\r\nAb: cd\r\n\r\n", 4, 4, 0), HPE_OK);
    assert_string_equal(s.text, "Ab=cd;");
    assert_int_equal(parse(&s, "GET / HTTP/1.1\r\nAb: cde\r\n\r\n", 4, 4, 0), HPE_CB_header_value);
    assert_int_equal(s.n, 0);
    assert_int_equal(parse(&s, "GET / HTTP/1.1\r\nAbcde: x\r\n\r\n", 1, 4, 0), HPE_CB_header_field);
    /* The cap is per field: many small fields are fine. */
    assert_int_equal(parse(&s, head, 7, 40, 0), HPE_OK);
    assert_string_equal(s.text, want);
}

static void test_count_cap(void **state)
{
    (void)state;
    struct seen s;
    assert_int_equal(parse(&s, head, 3, 0, 5), HPE_OK);
    assert_int_equal(s.n, 5);
    /* The fourth field is refused when the fifth name starts... */
    assert_int_equal(parse(&s, head, 3, 0, 3), HPE_CB_header_field);
    assert_int_equal(s.n, 3);
    /* ...or at the end of the head. */
    assert_int_equal(parse(&s, "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n", 64, 0, 1),
                     HPE_CB_headers_complete);
    assert_string_equal(s.text, "A=1;");
}

static void test_emit_error_stops(void **state)
{
    (void)state;
    struct seen s;
    memset(&s, 0, sizeof(s));
    s.fail_at = 2;
    px_hdracc_init(&s.acc, 0, 0, emit, &s);
    assert_int_equal(px_hdracc_field(&s.acc, "a", 1), 0);
    assert_int_equal(px_hdracc_value(&s.acc, "1", 1), 0);
    assert_int_equal(px_hdracc_field(&s.acc, "b", 1), 0);
    assert_int_equal(px_hdracc_value(&s.acc, "2", 1), 0);
    assert_int_equal(px_hdracc_field(&s.acc, "c", 1), PX_ERR_DENIED);
    assert_string_equal(s.text, "a=1;");
    px_hdracc_cleanup(&s.acc);
}

static void test_direct_use(void **state)
{
    (void)state;
    struct seen s;
    memset(&s, 0, sizeof(s));
    px_hdracc_init(&s.acc, 0, 2, emit, &s);
    /* Nothing pending: end emits nothing. */
    assert_int_equal(px_hdracc_end(&s.acc), 0);
    assert_int_equal(s.n, 0);
    /* A value before any name is not what http_parser does. */
    assert_int_equal(px_hdracc_value(&s.acc, "v", 1), PX_ERR_INVAL);
    /* A name with no value callback yet is still a field at the end. */
    assert_int_equal(px_hdracc_field(&s.acc, "Na", 2), 0);
    assert_int_equal(px_hdracc_field(&s.acc, "me", 2), 0); /* same name, second piece */
    assert_int_equal(px_hdracc_end(&s.acc), 0);
    assert_string_equal(s.text, "Name=;");
    /* End leaves no storage behind. */
    assert_null(s.acc.name.data);
    assert_null(s.acc.value.data);
    /* A partial field dropped by reset never reaches emit; the count restarts. */
    assert_int_equal(px_hdracc_field(&s.acc, "x", 1), 0);
    assert_int_equal(px_hdracc_value(&s.acc, "dropped", 7), 0);
    px_hdracc_reset(&s.acc);
    assert_int_equal(s.acc.fields, 0);
    assert_int_equal(px_hdracc_end(&s.acc), 0);
    assert_int_equal(s.n, 1);
    /* After reset the count cap applies afresh: two more fields fit. */
    assert_int_equal(px_hdracc_field(&s.acc, "y", 1), 0);
    assert_int_equal(px_hdracc_value(&s.acc, "1", 1), 0);
    assert_int_equal(px_hdracc_field(&s.acc, "z", 1), 0);
    assert_int_equal(px_hdracc_value(&s.acc, "2", 1), 0);
    assert_int_equal(px_hdracc_end(&s.acc), 0);
    assert_string_equal(s.text, "Name=;y=1;z=2;");
    /* Binary bytes pass through untouched (validation is emit's business). */
    px_hdracc_reset(&s.acc);
    assert_int_equal(px_hdracc_field(&s.acc, "b", 1), 0);
    assert_int_equal(px_hdracc_value(&s.acc, " \x01\x7f ", 4), 0);
    assert_int_equal(px_hdracc_end(&s.acc), 0);
    assert_string_equal(s.text, "Name=;y=1;z=2;b=\x01\x7f;");
    px_hdracc_cleanup(&s.acc);
    px_hdracc_cleanup(&s.acc); /* idempotent */
}

/* Trailers of a chunked body come through the same callbacks after the head. */
static void test_trailers(void **state)
{
    (void)state;
    static const char msg[] = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "3\r\nabc\r\n0\r\nT-One: 1\r\nT-Two:  2 \r\n\r\n";
    for (size_t step = 1; step < sizeof(msg); step += 5) {
        struct seen s;
        memset(&s, 0, sizeof(s));
        px_hdracc_init(&s.acc, 0, 0, emit, &s);
        http_parser p;
        http_parser_init(&p, HTTP_REQUEST);
        p.data = &s;
        for (size_t off = 0; off < sizeof(msg) - 1;) {
            size_t n = sizeof(msg) - 1 - off < step ? sizeof(msg) - 1 - off : step;
            assert_int_equal(http_parser_execute(&p, &settings, msg + off, n), n);
            off += n;
        }
        assert_int_equal(HTTP_PARSER_ERRNO(&p), HPE_OK);
        /* The last trailer is pending until the owner ends it. */
        assert_int_equal(px_hdracc_end(&s.acc), 0);
        assert_string_equal(s.text, "Transfer-Encoding=chunked;T-One=1;T-Two=2;");
        px_hdracc_cleanup(&s.acc);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields),           cmocka_unit_test(test_every_split),
        cmocka_unit_test(test_field_cap),        cmocka_unit_test(test_count_cap),
        cmocka_unit_test(test_emit_error_stops), cmocka_unit_test(test_direct_use),
        cmocka_unit_test(test_trailers),
    };
    return cmocka_run_group_tests_name("px_hdracc", tests, NULL, NULL);
}
