/* rt_cli: how every subcommand of both binaries reads its arguments: GNU
 * long options only, through getopt_long ("--name value", "--name=value",
 * unambiguous prefixes, options and words in any order). getopt keeps its
 * state in process-wide variables: one parse at a time, on the main thread. */
#ifndef RT_CLI_H
#define RT_CLI_H

#include <getopt.h>
#include <stdio.h>

/* Rows of a getopt_long table (struct option[]), which ends with RT_CLI_END:
 * an option with an argument, one without, returning c. */
#define RT_CLI_ARG(name, c)                                                                        \
    {                                                                                              \
        name, required_argument, NULL, c                                                           \
    }
#define RT_CLI_FLAG(name, c)                                                                       \
    {                                                                                              \
        name, no_argument, NULL, c                                                                 \
    }
#define RT_CLI_END                                                                                 \
    {                                                                                              \
        NULL, 0, NULL, 0                                                                           \
    }

/* An option whose argument is only kept: when option val is seen,
 * *dst = its argument (the last one given wins), and rt_cli_next goes on. */
struct rt_cli_keep {
    int val;
    const char **dst;
};

struct rt_cli {
    int argc;
    char **argv;
    const struct option *opts;      /* ends with a zero entry */
    const struct rt_cli_keep *keep; /* ends with a zero val; may be NULL */
};

/* Starts reading argv[1..argc) (argv[0] names the command) against opts,
 * with keep (may be NULL). Resets getopt fully. The tables must outlive the
 * parse. */
void rt_cli_start(struct rt_cli *c, int argc, char **argv, const struct option *opts,
                  const struct rt_cli_keep *keep);
/* The next option for the caller to handle: its val, with its argument in
 * optarg. 0 when the options are over (the words after them: rt_cli_word);
 * -1 for an unknown option or one missing its argument (rt_cli_bad names
 * it). Kept options (keep) and getopt flag options (a non-NULL flag in
 * opts) are handled inside and never returned. */
int rt_cli_next(struct rt_cli *c);
/* After rt_cli_next returned -1: the argument it did not understand. */
const char *rt_cli_bad(const struct rt_cli *c);
/* After the options: word i (from 0) that is not an option, or NULL. */
const char *rt_cli_word(const struct rt_cli *c, int i);

/* Parses s as a decimal number in min..max: digits only (no sign, space or
 * suffix). Returns 0 and *out, or -1. */
int rt_cli_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out);

/* Help for every subcommand, in one place per binary: a table of each
 * subcommand's usage, ending with {NULL, NULL}. */
struct rt_cli_usage {
    const char *cmd;  /* the words naming it: "tunnel create", "access tcp" */
    const char *text; /* its usage; NULL: the program's whole usage says it */
};

/* When argv asks for help ("--help" or "-h" among its words before a "--",
 * or "help" as argv[1], whose following words then name the subcommand),
 * prints on out the text of the table entry whose cmd matches the most
 * leading words of the command (argv[1], argv[2], ...), or calls whole(out)
 * when none matches or the entry has no text; and returns 1. Returns 0 when
 * help was not asked for. */
int rt_cli_help(int argc, char **argv, const struct rt_cli_usage *table, void (*whole)(FILE *),
                FILE *out);

#endif
