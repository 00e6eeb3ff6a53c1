#include "rt_cli.h"

#include <errno.h>
#include <stdlib.h>

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
