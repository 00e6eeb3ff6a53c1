#include "rt_cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void rt_cli_start(struct rt_cli *c, int argc, char **argv, const struct option *opts,
                  const struct rt_cli_keep *keep)
{
    c->argc = argc;
    c->argv = argv;
    c->opts = opts;
    c->keep = keep;
    optind = 0; /* 0 fully resets glibc's getopt state (a second parse in a process) */
    opterr = 0; /* the caller says what was wrong, in its own words */
}

int rt_cli_next(struct rt_cli *c)
{
    for (;;) {
        int v = getopt_long(c->argc, c->argv, "", c->opts, NULL);
        if (v == -1)
            return 0;
        if (v == '?' || v == ':')
            return -1;
        if (v == 0)
            continue; /* a flag option: getopt set it */
        const struct rt_cli_keep *k = c->keep;
        while (k && k->val && k->val != v)
            k++;
        if (!k || !k->val)
            return v;
        *k->dst = optarg;
    }
}

const char *rt_cli_bad(const struct rt_cli *c)
{
    return optind > 0 && optind <= c->argc ? c->argv[optind - 1] : "";
}

const char *rt_cli_word(const struct rt_cli *c, int i)
{
    return i >= 0 && optind + i < c->argc ? c->argv[optind + i] : NULL;
}

int rt_cli_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
    if (!s || *s < '0' || *s > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* How many of cmd's words (space-separated) are words[0..n), or 0 when
 * they are not all there. */
static int cmd_matches(const char *cmd, char **words, int n)
{
    int k = 0;
    while (*cmd) {
        size_t len = strcspn(cmd, " ");
        if (k >= n || strlen(words[k]) != len || strncmp(words[k], cmd, len) != 0)
            return 0;
        k++;
        cmd += len;
        cmd += strspn(cmd, " ");
    }
    return k;
}

int rt_cli_help(int argc, char **argv, const struct rt_cli_usage *table, void (*whole)(FILE *),
                FILE *out)
{
    int first = 1, asked = 0;
    if (argc > 1 && strcmp(argv[1], "help") == 0) {
        asked = 1;
        first = 2;
    }
    for (int i = 1; i < argc && !asked; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        asked = strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0;
    }
    if (!asked)
        return 0;
    const struct rt_cli_usage *best = NULL;
    int best_n = 0;
    for (const struct rt_cli_usage *u = table; u && u->cmd; u++) {
        int n = cmd_matches(u->cmd, argv + first, argc - first);
        if (n > best_n) {
            best = u;
            best_n = n;
        }
    }
    if (best && best->text)
        fputs(best->text, out);
    else
        whole(out);
    return 1;
}
