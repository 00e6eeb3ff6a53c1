/* rt_cli: the long-option parsing every subcommand of both binaries uses. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "rt_cli.h"

#include <stdio.h>
#include <string.h>

static const struct option opts[] = {
    {"data-dir", required_argument, 0, 'd'}, {"out", required_argument, 0, 'o'},
    {"days", required_argument, 0, 'n'},     {"verbose", no_argument, 0, 'v'},
    {"hostname", required_argument, 0, 'H'}, {0, 0, 0, 0}};

struct parsed {
    const char *dir, *out;
    int verbose;
    const char *hosts[4];
    int n_hosts;
    int result; /* rt_cli_next's last value */
};

static void parse(int argc, char **argv, struct parsed *p, struct rt_cli *cli)
{
    memset(p, 0, sizeof(*p));
    p->dir = "default";
    const struct rt_cli_keep keep[] = {{'d', &p->dir}, {'o', &p->out}, {0, NULL}};
    rt_cli_start(cli, argc, argv, opts, keep);
    int c;
    while ((c = rt_cli_next(cli)) > 0) {
        assert_int_not_equal(c, 'd'); /* kept options never come back */
        assert_int_not_equal(c, 'o');
        if (c == 'v')
            p->verbose = 1;
        else if (c == 'H' && p->n_hosts < 4)
            p->hosts[p->n_hosts++] = optarg;
        else if (c == 'n')
            fail_msg("--days was not expected here");
    }
    p->result = c;
}

static void test_options_and_words(void **state)
{
    (void)state;
    char *argv[] = {"cmd",  "create",    "--data-dir", "/d", "--hostname=a.example",
                    "NAME", "--verbose", "--out",      "o1", "-H",
                    "x",    NULL};
    /* "-H" is not a long option: only --names are. */
    struct parsed p;
    struct rt_cli cli;
    parse(11, argv, &p, &cli);
    assert_int_equal(p.result, -1);
    assert_string_equal(rt_cli_bad(&cli), "-H");

    char *ok[] = {"cmd",   "create", "--data-dir", "/d", "--hostname=a.example", "NAME", "--verb",
                  "--out", "o1",     "--out",      "o2", "--hostname",           "b",    NULL};
    parse(13, ok, &p, &cli);
    assert_int_equal(p.result, 0);
    assert_string_equal(p.dir, "/d");
    assert_string_equal(p.out, "o2"); /* the last one wins */
    assert_int_equal(p.verbose, 1);   /* an unambiguous prefix */
    assert_int_equal(p.n_hosts, 2);
    assert_string_equal(p.hosts[0], "a.example");
    assert_string_equal(p.hosts[1], "b");
    /* Words may come before, between and after options. */
    assert_string_equal(rt_cli_word(&cli, 0), "create");
    assert_string_equal(rt_cli_word(&cli, 1), "NAME");
    assert_null(rt_cli_word(&cli, 2));
    assert_null(rt_cli_word(&cli, -1));
}

static void test_errors(void **state)
{
    (void)state;
    struct parsed p;
    struct rt_cli cli;
    char *unknown[] = {"cmd", "--nope", "x", NULL};
    parse(3, unknown, &p, &cli);
    assert_int_equal(p.result, -1);
    assert_string_equal(rt_cli_bad(&cli), "--nope");
    char *missing[] = {"cmd", "x", "--out", NULL};
    parse(3, missing, &p, &cli);
    assert_int_equal(p.result, -1);
    assert_string_equal(rt_cli_bad(&cli), "--out");
    char *extra[] = {"cmd", "--verbose=yes", NULL};
    parse(2, extra, &p, &cli);
    assert_int_equal(p.result, -1);
    /* A second parse in the same process starts afresh. */
    char *none[] = {"cmd", NULL};
    parse(1, none, &p, &cli);
    assert_int_equal(p.result, 0);
    assert_string_equal(p.dir, "default");
    assert_null(p.out);
    assert_null(rt_cli_word(&cli, 0));
}

/* Options with getopt's own flag pointer are set without coming back. */
static void test_flag_options(void **state)
{
    (void)state;
    int quiet = 0;
    const struct option fo[] = {{"quiet", no_argument, &quiet, 7}, {0, 0, 0, 0}};
    char *argv[] = {"cmd", "--quiet", "w", NULL};
    struct rt_cli cli;
    rt_cli_start(&cli, 3, argv, fo, NULL);
    assert_int_equal(rt_cli_next(&cli), 0);
    assert_int_equal(quiet, 7);
    assert_string_equal(rt_cli_word(&cli, 0), "w");
}

static void test_uint(void **state)
{
    (void)state;
    unsigned long v = 99;
    assert_int_equal(rt_cli_uint("0", 0, 10, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(rt_cli_uint("10", 1, 10, &v), 0);
    assert_int_equal(v, 10);
    v = 99;
    const char *bad[] = {
        "", "11", "0", "-1", "+1", " 1", "1 ", "1x", "0x1", "99999999999999999999999", NULL};
    for (int i = 0; bad[i]; i++) {
        assert_int_equal(rt_cli_uint(bad[i], 1, 10, &v), -1);
        assert_int_equal(v, 99); /* untouched */
    }
    assert_int_equal(rt_cli_uint(NULL, 0, 10, &v), -1);
    assert_int_equal(rt_cli_uint("007", 1, 10, &v), 0);
    assert_int_equal(v, 7);
}

/* --help on any subcommand: the most specific usage, on out, and 1. */
static const struct rt_cli_usage usage_table[] = {
    {"tunnel", "T\n"}, {"tunnel create", "TC\n"},   {"tunnel list", "TL\n"},
    {"serve", NULL},   {"service install", "SI\n"}, {NULL, NULL}};

static void whole(FILE *f)
{
    fputs("WHOLE\n", f);
}

/* rt_cli_help's answer for argv and what it printed. */
static int help(char **argv, char *out, size_t outlen)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    FILE *f = fmemopen(out, outlen, "w");
    assert_non_null(f);
    int r = rt_cli_help(argc, argv, usage_table, whole, f);
    fclose(f);
    return r;
}

static void test_help(void **state)
{
    (void)state;
    char out[64];
    const struct {
        char *argv[8];
        int asked;
        const char *printed;
    } cases[] = {
        {{"es", "tunnel", "create", "NAME", "--help", NULL}, 1, "TC\n"},
        {{"es", "tunnel", "--data-dir", "d", "-h", NULL}, 1, "T\n"},
        {{"es", "tunnel", "frobnicate", "--help", NULL}, 1, "T\n"},
        {{"es", "serve", "--help", NULL}, 1, "WHOLE\n"},    /* no text: the whole usage */
        {{"es", "nonsense", "--help", NULL}, 1, "WHOLE\n"}, /* unknown: the whole usage */
        {{"es", "--help", NULL}, 1, "WHOLE\n"},
        {{"es", "help", NULL}, 1, "WHOLE\n"},
        {{"es", "help", "tunnel", "list", NULL}, 1, "TL\n"},
        {{"es", "service", "install", "--help", NULL}, 1, "SI\n"},
        {{"es", "service", "--help", NULL}, 1, "WHOLE\n"}, /* "service" alone has no entry */
        {{"es", "tunnel", "create", "x", NULL}, 0, ""},
        {{"es", "tunnel", "create", "--", "--help", NULL}, 0, ""}, /* after --: a word */
        {{"es", "tunnel", "create", "--helpful", NULL}, 0, ""},
        {{"es", NULL}, 0, ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(out, 0, sizeof(out));
        assert_int_equal(help((char **)cases[i].argv, out, sizeof(out)), cases[i].asked);
        assert_string_equal(out, cases[i].printed);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_options_and_words),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_flag_options),
        cmocka_unit_test(test_uint),
        cmocka_unit_test(test_help),
    };
    return cmocka_run_group_tests_name("rt_cli", tests, NULL, NULL);
}
