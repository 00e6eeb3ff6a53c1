/* px_log: levels, the text and JSON line formats and access lines. stderr is
 * redirected to a temporary file; every JSON line must parse (jansson). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "px_err.h"
#include "px_log.h"

#include <jansson.h>
#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static FILE *cap;
static int saved_fd = -1;

static void begin_capture(void)
{
    fflush(stderr);
    cap = tmpfile();
    assert_non_null(cap);
    saved_fd = dup(2);
    assert_true(saved_fd >= 0);
    assert_true(dup2(fileno(cap), 2) >= 0);
}

/* Restores stderr; returns what was written meanwhile (malloc'd). */
static char *end_capture(void)
{
    fflush(stderr);
    assert_true(dup2(saved_fd, 2) >= 0);
    close(saved_fd);
    saved_fd = -1;
    long n = ftell(cap);
    assert_true(n >= 0);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    rewind(cap);
    assert_int_equal(fread(s, 1, (size_t)n, cap), (size_t)n);
    s[n] = '\0';
    fclose(cap);
    cap = NULL;
    return s;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* The only line of out, parsed as JSON (must be an object). */
static json_t *one_json_line(const char *out)
{
    assert_int_equal(count_lines(out), 1);
    json_error_t err;
    json_t *j = json_loads(out, 0, &err);
    if (!j)
        fprintf(stderr, "not JSON (%s): %s", err.text, out);
    assert_non_null(j);
    assert_true(json_is_object(j));
    return j;
}

static void assert_time_field(json_t *j)
{
    const char *t = json_string_value(json_object_get(j, "time"));
    assert_non_null(t);
    regex_t re;
    assert_int_equal(regcomp(&re,
                             "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$",
                             REG_EXTENDED | REG_NOSUB),
                     0);
    assert_int_equal(regexec(&re, t, 0, NULL, 0), 0);
    regfree(&re);
}

static int reset(void **state)
{
    (void)state;
    px_log_set_level(PX_LOG_INFO);
    px_log_set_format(PX_LOG_TEXT);
    return 0;
}

static void test_parse(void **state)
{
    (void)state;
    enum px_log_format f = PX_LOG_JSON;
    assert_int_equal(px_log_parse_format("text", &f), 0);
    assert_int_equal(f, PX_LOG_TEXT);
    assert_int_equal(px_log_parse_format("json", &f), 0);
    assert_int_equal(f, PX_LOG_JSON);
    assert_int_equal(px_log_parse_format("JSON ", &f), PX_ERR_INVAL);
    assert_int_equal(px_log_parse_format("", &f), PX_ERR_INVAL);
    assert_int_equal(px_log_parse_format(NULL, &f), PX_ERR_INVAL);
    assert_int_equal(f, PX_LOG_JSON);
    enum px_log_level l;
    assert_int_equal(px_log_parse_level("warn", &l), 0);
    assert_int_equal(l, PX_LOG_WARN);
    assert_int_equal(px_log_parse_level("verbose", &l), PX_ERR_INVAL);
}

static void test_levels(void **state)
{
    (void)state;
    assert_false(px_log_enabled(PX_LOG_DEBUG));
    assert_true(px_log_enabled(PX_LOG_INFO));
    begin_capture();
    PX_DEBUG("hidden %d", 1);
    PX_INFO("shown %d", 2);
    px_log_set_level(PX_LOG_ERROR);
    PX_WARN("hidden too");
    PX_ERROR("error %s", "shown");
    char *out = end_capture();
    assert_int_equal(count_lines(out), 2);
    assert_null(strstr(out, "hidden"));
    regex_t re;
    assert_int_equal(
        regcomp(&re,
                "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z INF "
                "shown 2\n"
                "[0-9T:.-]{23}Z ERR error shown\n$",
                REG_EXTENDED | REG_NOSUB),
        0);
    assert_int_equal(regexec(&re, out, 0, NULL, 0), 0);
    regfree(&re);
    free(out);
}

/* Outside text cannot forge a second line or a terminal escape in text. */
static void test_text_escapes_controls(void **state)
{
    (void)state;
    begin_capture();
    PX_WARN("host %s", "evil\n2026-01-01T00:00:00.000Z ERR forged\x1b[31m\xff");
    char *out = end_capture();
    assert_int_equal(count_lines(out), 1);
    assert_non_null(
        strstr(out, " WRN host evil\\n2026-01-01T00:00:00.000Z ERR forged\\x1b[31m\\xff\n"));
    free(out);
}

static void test_json_message(void **state)
{
    (void)state;
    px_log_set_format(PX_LOG_JSON);
    begin_capture();
    PX_WARN("quote\" back\\ nl\n tab\t ctl\x01 del\x7f euro\xe2\x82\xac");
    char *out = end_capture();
    json_t *j = one_json_line(out);
    assert_time_field(j);
    assert_string_equal(json_string_value(json_object_get(j, "level")), "warn");
    assert_string_equal(json_string_value(json_object_get(j, "msg")),
                        "quote\" back\\ nl\n tab\t ctl\x01 del\x7f euro\xe2\x82\xac");
    assert_int_equal(json_object_size(j), 3);
    json_decref(j);
    free(out);
}

static void test_json_invalid_utf8(void **state)
{
    (void)state;
    px_log_set_format(PX_LOG_JSON);
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"a\xff"
         "b",
         "a\xef\xbf\xbd"
         "b"},
        {"overlong \xc0\xaf", "overlong \xef\xbf\xbd\xef\xbf\xbd"},
        {"surrogate \xed\xa0\x80", "surrogate \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        {"cut \xe2\x82", "cut \xef\xbf\xbd\xef\xbf\xbd"},
        {"too big \xf4\x90\x80\x80", "too big \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        {"ok \xf0\x9f\x98\x80", "ok \xf0\x9f\x98\x80"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        begin_capture();
        PX_ERROR("%s", cases[i].in);
        char *out = end_capture();
        json_t *j = one_json_line(out);
        assert_string_equal(json_string_value(json_object_get(j, "level")), "error");
        assert_string_equal(json_string_value(json_object_get(j, "msg")), cases[i].want);
        json_decref(j);
        free(out);
    }
}

/* A long message: no fixed line buffer cuts it at 2 KiB; past the cap it
 * is cut on a character boundary, so the JSON still parses. */
static void test_long_messages(void **state)
{
    (void)state;
    px_log_set_format(PX_LOG_JSON);
    size_t n = 5000;
    char *mid = malloc(n + 1);
    assert_non_null(mid);
    memset(mid, 'm', n);
    mid[n] = '\0';
    begin_capture();
    PX_INFO("%s", mid);
    char *out = end_capture();
    json_t *j = one_json_line(out);
    assert_string_equal(json_string_value(json_object_get(j, "msg")), mid);
    json_decref(j);
    free(out);
    free(mid);

    /* 7000 euro signs (21000 bytes) after two bytes: the cap falls inside
     * a character. */
    size_t big = 2 + 7000 * 3;
    char *s = malloc(big + 1);
    assert_non_null(s);
    s[0] = 'x';
    s[1] = 'y';
    for (size_t i = 2; i < big; i += 3)
        memcpy(s + i, "\xe2\x82\xac", 3);
    s[big] = '\0';
    for (int fmt = 0; fmt < 2; fmt++) {
        px_log_set_format(fmt ? PX_LOG_JSON : PX_LOG_TEXT);
        begin_capture();
        PX_INFO("%s", s);
        out = end_capture();
        assert_int_equal(count_lines(out), 1);
        assert_null(strstr(out, "\xef\xbf\xbd")); /* no character was split */
        assert_null(strstr(out, "\\x"));
        if (fmt) {
            j = one_json_line(out);
            const char *msg = json_string_value(json_object_get(j, "msg"));
            size_t len = strlen(msg);
            assert_true(len > 16000 && len <= 16384 + 3);
            assert_int_equal(memcmp(msg + len - 3, "...", 3), 0);
            assert_int_equal((len - 3 - 2) % 3, 0);
            json_decref(j);
        }
        free(out);
    }
    free(s);
}

static const struct px_access_entry sample = {
    .hostname = "app.example.com",
    .method = "GET",
    .path = "/login/callback?token=SECRET-TOKEN&x=1#frag",
    .status = 200,
    .bytes_in = 5,
    .bytes_out = 1234,
    .duration_s = 0.0031,
    .request_id = "0123abcd",
    .client = "192.0.2.7",
    .rule = "0",
};

static void test_access_json(void **state)
{
    (void)state;
    px_log_set_format(PX_LOG_JSON);
    px_log_set_level(PX_LOG_ERROR); /* access lines do not depend on the level */
    begin_capture();
    px_log_access(&sample);
    char *out = end_capture();
    assert_null(strstr(out, "SECRET"));
    json_t *j = one_json_line(out);
    assert_time_field(j);
    assert_string_equal(json_string_value(json_object_get(j, "level")), "info");
    assert_string_equal(json_string_value(json_object_get(j, "type")), "access");
    assert_string_equal(json_string_value(json_object_get(j, "hostname")), "app.example.com");
    assert_string_equal(json_string_value(json_object_get(j, "method")), "GET");
    assert_string_equal(json_string_value(json_object_get(j, "path")), "/login/callback");
    assert_int_equal(json_integer_value(json_object_get(j, "status")), 200);
    assert_int_equal(json_integer_value(json_object_get(j, "bytes_in")), 5);
    assert_int_equal(json_integer_value(json_object_get(j, "bytes_out")), 1234);
    double ms = json_number_value(json_object_get(j, "duration_ms"));
    assert_true(ms > 3.09 && ms < 3.11);
    assert_string_equal(json_string_value(json_object_get(j, "request_id")), "0123abcd");
    assert_string_equal(json_string_value(json_object_get(j, "client")), "192.0.2.7");
    assert_string_equal(json_string_value(json_object_get(j, "rule")), "0");
    assert_int_equal(json_object_size(j), 13);
    json_decref(j);
    free(out);

    /* NULL strings are null; odd numbers stay valid JSON. */
    struct px_access_entry e = {.path = "/#only-fragment", .duration_s = -1};
    begin_capture();
    px_log_access(&e);
    e.path = NULL;
    e.duration_s = 0.0 / 0.0;
    e.bytes_out = 18446744073709551615ull;
    px_log_access(&e);
    px_log_access(NULL); /* nothing */
    out = end_capture();
    assert_int_equal(count_lines(out), 2);
    const char *second = strchr(out, '\n') + 1;
    char *first = strndup(out, (size_t)(second - out));
    assert_non_null(first);
    j = one_json_line(first);
    free(first);
    assert_string_equal(json_string_value(json_object_get(j, "path")), "/");
    assert_true(json_is_null(json_object_get(j, "hostname")));
    assert_true(json_is_null(json_object_get(j, "rule")));
    assert_int_equal(json_integer_value(json_object_get(j, "status")), 0);
    assert_true(json_number_value(json_object_get(j, "duration_ms")) == 0);
    json_decref(j);
    json_error_t err;
    j = json_loads(second, 0, &err);
    assert_non_null(j);
    assert_true(json_is_null(json_object_get(j, "path")));
    assert_int_equal(json_integer_value(json_object_get(j, "bytes_out")), LLONG_MAX);
    assert_true(json_number_value(json_object_get(j, "duration_ms")) == 0);
    json_decref(j);
    free(out);
}

static void test_access_path_cut(void **state)
{
    (void)state;
    px_log_set_format(PX_LOG_JSON);
    char path[1200];
    path[0] = '/';
    for (size_t i = 1; i < 1100; i += 3) /* the 512th byte falls inside a character */
        memcpy(path + i, "\xe2\x82\xac", 3);
    path[1100] = '\0';
    struct px_access_entry e = sample;
    e.path = path;
    begin_capture();
    px_log_access(&e);
    char *out = end_capture();
    json_t *j = one_json_line(out);
    const char *p = json_string_value(json_object_get(j, "path"));
    assert_int_equal(strlen(p), 1 + 170 * 3); /* 511 bytes: whole characters only */
    assert_int_equal(memcmp(p, path, strlen(p)), 0);
    json_decref(j);
    free(out);

    /* A hostile path: invalid UTF-8 and controls, never a broken line. */
    e.path = "/a\"b\\c\n\r\x01\xff?q";
    e.hostname = "h\xc3";
    begin_capture();
    px_log_access(&e);
    out = end_capture();
    j = one_json_line(out);
    assert_string_equal(json_string_value(json_object_get(j, "path")),
                        "/a\"b\\c\n\r\x01\xef\xbf\xbd");
    assert_string_equal(json_string_value(json_object_get(j, "hostname")), "h\xef\xbf\xbd");
    json_decref(j);
    free(out);
}

static void test_access_text(void **state)
{
    (void)state;
    begin_capture();
    px_log_access(&sample);
    struct px_access_entry e = {.hostname = "",
                                .method = "GET",
                                .path = "/with space?q",
                                .status = 404,
                                .duration_s = 1.25,
                                .request_id = "a=b",
                                .client = "say \"hi\"\n",
                                .rule = NULL};
    px_log_access(&e);
    char *out = end_capture();
    assert_null(strstr(out, "SECRET"));
    assert_int_equal(count_lines(out), 2);
    regex_t re;
    assert_int_equal(regcomp(&re,
                             "^[0-9T:.-]{23}Z ACC host=app.example.com method=GET "
                             "path=/login/callback status=200 in=5 out=1234 dur_ms=3.1 "
                             "id=0123abcd client=192.0.2.7 rule=0\n",
                             REG_EXTENDED | REG_NOSUB),
                     0);
    assert_int_equal(regexec(&re, out, 0, NULL, 0), 0);
    regfree(&re);
    const char *second = strchr(out, '\n') + 1;
    assert_non_null(strstr(second, " ACC host=\"\" method=GET path=\"/with space\" status=404 "
                                   "in=0 out=0 dur_ms=1250.0 id=\"a=b\" "
                                   "client=\"say \\\"hi\\\"\\n\" rule=-\n"));
    free(out);
}

static long written_so_far(void);

/* The text line prints its numbers without printf: they must read as
 * "%d", "%llu" and "%.1f" would print them, ties of the exact binary value
 * to even (0.25 -> 0.2, 0.75 -> 0.8) and values printf rounds up. */
static void test_access_text_numbers_as_printf(void **state)
{
    (void)state;
    static const double ms[] = {0,     0.04,   0.05,  0.05000000000000001,
                                0.15,  0.25,   0.35,  0.75,
                                0.95,  1.25,   2.5,   9.95,
                                99.95, 999.96, 1e3,   12345.65,
                                1e12,  3.1,    1e-300};
    enum { N = sizeof(ms) / sizeof(ms[0]), R = 2000 };
    begin_capture();
    for (int i = 0; i < N + R; i++) {
        double d;
        if (i < N)
            d = ms[i] / 1000.0;
        else /* spread over every magnitude the field shows */
            d = (double)rand() / RAND_MAX * (i % 2 ? 1e-2 : 1e6) + (double)(i % 7) * 0.00005;
        struct px_access_entry e = {.status = i % 3 == 0 ? -1 : 200 + i,
                                    .bytes_in = i == 0 ? ULLONG_MAX : (unsigned long long)i,
                                    .bytes_out = (unsigned long long)i * 1000003ULL,
                                    .duration_s = d};
        px_log_access(&e);
    }
    char *out = end_capture();
    const char *line = out;
    for (int i = 0; i < N + R; i++) {
        const char *end = strchr(line, '\n');
        assert_non_null(end);
        unsigned long long in, outb;
        int status;
        const char *f = strstr(line, " status=");
        assert_true(f && f < end);
        assert_int_equal(sscanf(f, " status=%d in=%llu out=%llu ", &status, &in, &outb), 3);
        assert_int_equal(status, i % 3 == 0 ? -1 : 200 + i);
        assert_true(in == (i == 0 ? ULLONG_MAX : (unsigned long long)i));
        assert_true(outb == (unsigned long long)i * 1000003ULL);
        line = end + 1;
    }
    free(out);

    /* The duration itself, value by value, against snprintf. */
    for (int i = 0; i < N + R; i++) {
        double d = i < N ? ms[i] / 1000.0 : (double)rand() / RAND_MAX * (i % 2 ? 1e-2 : 1e6);
        struct px_access_entry e = {.duration_s = d};
        begin_capture();
        px_log_access(&e);
        char *one = end_capture();
        double m = d * 1000.0;
        char want[64];
        snprintf(want, sizeof(want), " dur_ms=%.1f ", m > 1e12 ? 1e12 : m);
        if (!strstr(one, want))
            fprintf(stderr, "duration %.17g: want%sin %s", m, want, one);
        assert_non_null(strstr(one, want));
        free(one);
    }
}

/* Every ASCII byte in a text value: unquoted exactly when it is printable
 * and not a space, '"', '\\' or '=' (text_value's fast path agrees with
 * the rule it shortcuts). */
static void test_access_text_quotes_by_byte(void **state)
{
    (void)state;
    for (int c = 1; c < 128; c++) {
        char v[4] = {'a', (char)c, 'b', '\0'};
        struct px_access_entry e = {.hostname = v};
        begin_capture();
        px_log_access(&e);
        char *out = end_capture();
        int quoted = c <= 0x20 || c == 0x7f || c == '"' || c == '\\' || c == '=';
        char plain[32];
        snprintf(plain, sizeof(plain), " host=%s method=", v);
        if ((strstr(out, plain) != NULL) == quoted)
            fprintf(stderr, "byte 0x%02x: %s", c, out);
        assert_true((strstr(out, plain) != NULL) == !quoted);
        assert_true((strstr(out, " host=\"a") != NULL) == quoted);
        free(out);
    }
}

/* A batched access line (built in the batch itself) reads as an unbatched
 * one and keeps its place among the other lines. */
static void test_access_batched(void **state)
{
    (void)state;
    struct px_access_entry e = {.hostname = "h",
                                .method = "GET",
                                .path = "/p?q",
                                .status = 204,
                                .bytes_out = 7,
                                .duration_s = 0.002,
                                .request_id = "r"};
    begin_capture();
    px_log_access(&e);
    char *plain = end_capture();
    begin_capture();
    px_log_batch(1);
    PX_INFO("before");
    px_log_access(&e);
    PX_INFO("after");
    assert_int_equal(written_so_far(), 0);
    px_log_batch(0);
    char *out = end_capture();
    assert_int_equal(count_lines(out), 3);
    const char *acc = strstr(out, " ACC ");
    assert_non_null(acc);
    assert_true(strstr(out, "before") < acc && acc < strstr(out, "after"));
    /* the same text after the time */
    assert_non_null(strstr(out, strstr(plain, " ACC ")));
    free(plain);
    free(out);
}

static long written_so_far(void)
{
    struct stat st;
    assert_int_equal(fstat(2, &st), 0);
    return (long)st.st_size;
}

/* Batched lines stay with the thread until px_log_flush, which writes them
 * in order; the count nests, and leaving the last level writes what is
 * pending; past PX_LOG_BATCH_MAX the buffer goes out at once; off, every
 * line goes out at once. */
static void test_batch(void **state)
{
    (void)state;
    begin_capture();
    px_log_batch(1);
    px_log_batch(1);
    PX_INFO("one");
    PX_INFO("two");
    assert_int_equal(written_so_far(), 0);
    px_log_flush();
    long after_two = written_so_far();
    assert_true(after_two > 0);
    px_log_batch(0); /* still batching: one level left */
    PX_INFO("three");
    assert_int_equal(written_so_far(), after_two);
    px_log_batch(0);
    long after_three = written_so_far();
    assert_true(after_three > after_two);
    PX_INFO("four"); /* not batching: at once */
    assert_true(written_so_far() > after_three);

    char big[1024];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    long before = written_so_far();
    px_log_batch(1);
    int lines = 0;
    while (written_so_far() == before && lines < 200) {
        PX_INFO("%s", big);
        lines++;
    }
    assert_true(lines > 1 && lines < 200);
    assert_true(written_so_far() - before >= PX_LOG_BATCH_MAX); /* in one go, at the cap */
    px_log_batch(0);
    char *out = end_capture();
    const char *one = strstr(out, "one"), *two = strstr(out, "two");
    const char *three = strstr(out, "three"), *four = strstr(out, "four");
    assert_non_null(one);
    assert_true(one < two && two < three && three < four);
    assert_int_equal(count_lines(out), 4 + lines);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_parse, reset, reset),
        cmocka_unit_test_setup_teardown(test_levels, reset, reset),
        cmocka_unit_test_setup_teardown(test_text_escapes_controls, reset, reset),
        cmocka_unit_test_setup_teardown(test_json_message, reset, reset),
        cmocka_unit_test_setup_teardown(test_json_invalid_utf8, reset, reset),
        cmocka_unit_test_setup_teardown(test_long_messages, reset, reset),
        cmocka_unit_test_setup_teardown(test_access_json, reset, reset),
        cmocka_unit_test_setup_teardown(test_access_path_cut, reset, reset),
        cmocka_unit_test_setup_teardown(test_access_text, reset, reset),
        cmocka_unit_test_setup_teardown(test_batch, reset, reset),
        cmocka_unit_test_setup_teardown(test_access_text_numbers_as_printf, reset, reset),
        cmocka_unit_test_setup_teardown(test_access_batched, reset, reset),
        cmocka_unit_test_setup_teardown(test_access_text_quotes_by_byte, reset, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
