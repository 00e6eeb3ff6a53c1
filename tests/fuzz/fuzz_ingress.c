/* libFuzzer target for the connector's ingress/config JSON loader
 * (cn_ingress_parse, which cn_ingress_load runs on a file's text).
 * Properties: no crash or leak; a refused config names at least one problem,
 * each a non-empty line; an accepted one has a catch-all last rule, so every
 * request matches a rule; its hostnames to register are valid patterns,
 * distinct, and each names a rule.
 * Inputs whose strings name files under /dev, /proc or /sys are skipped: the
 * loader reads caPool/originCert/originKey files, and a FIFO or a terminal
 * would block the run rather than test the parser. */
#include "fuzz_util.h"
#include "cn_ingress.h"
#include "px_hostname.h"

#include <jansson.h>
#include <string.h>

static int names_device(json_t *v)
{
    const char *k;
    json_t *x;
    size_t i;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        return strstr(s, "dev") || strstr(s, "proc") || strstr(s, "sys") || strstr(s, "fd");
    }
    if (json_is_object(v)) {
        json_object_foreach(v, k, x)
        {
            if (names_device(x))
                return 1;
        }
    }
    if (json_is_array(v)) {
        json_array_foreach(v, i, x)
        {
            if (names_device(x))
                return 1;
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *probe = json_loadb((const char *)data, size, 0, NULL);
    int skip = probe && names_device(probe);
    json_decref(probe);
    if (skip)
        return 0;

    struct cn_ingress *ing = NULL;
    struct cn_ingress_errors errs = {0};
    int rc = cn_ingress_parse((const char *)data, size, &ing, &errs);
    if (rc < 0) {
        if (ing || errs.n == 0)
            FAIL();
        for (size_t i = 0; i < errs.n; i++)
            if (!errs.lines[i] || !errs.lines[i][0])
                FAIL();
        cn_ingress_errors_cleanup(&errs);
        return 0;
    }
    if (!ing || errs.n != 0 || ing->n == 0)
        FAIL();
    const struct cn_rule *last = &ing->rules[ing->n - 1];
    if (last->hostname[0] || last->path || last->broken)
        FAIL();
    if (cn_ingress_match(ing, "any.host.example", "/any/path?q=1") == NULL ||
        cn_ingress_match(ing, "", "") == NULL)
        FAIL();
    for (size_t i = 0; i < ing->n_hostnames; i++) {
        if (!px_host_pattern_valid(ing->hostnames[i]))
            FAIL();
        for (size_t k = 0; k < i; k++)
            if (strcmp(ing->hostnames[i], ing->hostnames[k]) == 0)
                FAIL();
        int named = 0;
        for (size_t r = 0; r < ing->n; r++)
            named |= strcmp(ing->rules[r].hostname, ing->hostnames[i]) == 0;
        if (!named)
            FAIL();
    }
    for (size_t r = 0; r < ing->n; r++) {
        const struct cn_rule *x = &ing->rules[r];
        if (!x->service || x->kind < CN_SVC_HTTP || x->kind > CN_SVC_TCP)
            FAIL();
        /* A request for a rule's exact hostname gets a rule for that host
         * (this one, an earlier one, or a catch-all), never another host's. */
        if (x->hostname[0] && x->hostname[0] != '*' && x->hostname[0] != '!') {
            const struct cn_rule *m = cn_ingress_match(ing, x->hostname, "/");
            if (!m || (m->hostname[0] && !px_host_match(m->hostname, x->hostname)))
                FAIL();
        }
    }
    cn_ingress_ref(ing);
    cn_ingress_unref(ing);
    cn_ingress_unref(ing);
    cn_ingress_errors_cleanup(&errs);
    return 0;
}
