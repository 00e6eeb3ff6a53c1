/* om_names: the OpenMetrics family-name clash check (see om_names.h). */
#include "om_names.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct claim {
    char *name;   /* a claimed name */
    char *family; /* the family's name as declared, for the message */
};

struct claims {
    struct claim *v;
    size_t n, cap;
};

static void claims_free(struct claims *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->v[i].name);
        free(c->v[i].family);
    }
    free(c->v);
}

/* Claims base+suffix for family: 0, 1 (a clash: why filled) or -1. */
static int claim(struct claims *c, const char *base, size_t base_len, const char *suffix,
                 const char *family, size_t family_len, char *why, size_t why_len)
{
    size_t sl = strlen(suffix);
    char *name = malloc(base_len + sl + 1);
    if (!name)
        return -1;
    memcpy(name, base, base_len);
    memcpy(name + base_len, suffix, sl + 1);
    for (size_t i = 0; i < c->n; i++) {
        if (strcmp(c->v[i].name, name) != 0)
            continue;
        /* No type's suffixes repeat, so any repeat is a second family. A
         * truncated message is still a message. */
        if (snprintf(why, why_len, "family %.*s claims the name %s of family %s", (int)family_len,
                     family, name, c->v[i].family) < 0 &&
            why_len > 0)
            why[0] = '\0';
        free(name);
        return 1;
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 32;
        struct claim *v = realloc(c->v, cap * sizeof(*v));
        if (!v) {
            free(name);
            return -1;
        }
        c->v = v;
        c->cap = cap;
    }
    char *fam = strndup(family, family_len);
    if (!fam) {
        free(name);
        return -1;
    }
    c->v[c->n].name = name;
    c->v[c->n].family = fam;
    c->n++;
    return 0;
}

static int ends_with(const char *s, size_t len, const char *suffix)
{
    size_t sl = strlen(suffix);
    return len >= sl && memcmp(s + len - sl, suffix, sl) == 0;
}

/* The names a type claims beyond its OpenMetrics name. */
static const char *const *type_suffixes(const char *type, size_t len)
{
    static const char *const counter[] = {"_total", "_created", NULL};
    static const char *const summary[] = {"_count", "_sum", "_created", NULL};
    static const char *const histogram[] = {"_count", "_sum", "_bucket", "_created", NULL};
    static const char *const gaugehistogram[] = {"_gcount", "_gsum", "_bucket", NULL};
    static const char *const info[] = {"_info", NULL};
    static const char *const none[] = {NULL};
    static const struct {
        const char *type;
        const char *const *suffixes;
    } map[] = {{"counter", counter},
               {"summary", summary},
               {"histogram", histogram},
               {"gaugehistogram", gaugehistogram},
               {"info", info}};
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strlen(map[i].type) == len && memcmp(map[i].type, type, len) == 0)
            return map[i].suffixes;
    return none;
}

/* Whether the sample name s (len) is one of the 0.0.4 family fam's samples
 * (type): the name itself, or for a histogram or summary its parts. */
static int sample_of(const char *s, size_t len, const char *fam, size_t fam_len, const char *type,
                     size_t type_len)
{
    if (!fam || len < fam_len || memcmp(s, fam, fam_len) != 0)
        return 0;
    const char *rest = s + fam_len;
    size_t rl = len - fam_len;
    if (rl == 0)
        return !(type_len == 9 && memcmp(type, "histogram", 9) == 0);
    int hist = type_len == 9 && memcmp(type, "histogram", 9) == 0;
    int summ = type_len == 7 && memcmp(type, "summary", 7) == 0;
    if (!hist && !summ)
        return 0;
    return (rl == 4 && memcmp(rest, "_sum", 4) == 0) ||
           (rl == 6 && memcmp(rest, "_count", 6) == 0) ||
           (hist && rl == 7 && memcmp(rest, "_bucket", 7) == 0);
}

int om_names_clash(const char *text, char *why, size_t why_len)
{
    struct claims c = {0};
    const char *fam = NULL, *type = NULL; /* the current family (pointers into text) */
    size_t fam_len = 0, type_len = 0;
    int rc = 0;
    for (const char *line = text; *line && rc == 0;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > 7 && memcmp(line, "# TYPE ", 7) == 0) {
            const char *name = line + 7;
            const char *sp = memchr(name, ' ', len - 7);
            if (sp) {
                fam = name;
                fam_len = (size_t)(sp - name);
                type = sp + 1;
                type_len = len - 7 - fam_len - 1;
                size_t base_len = fam_len;
                int counter = type_len == 7 && memcmp(type, "counter", 7) == 0;
                if (counter && ends_with(fam, fam_len, "_total"))
                    base_len -= 6;
                rc = claim(&c, fam, base_len, "", fam, fam_len, why, why_len);
                for (const char *const *s = type_suffixes(type, type_len); rc == 0 && *s; s++)
                    rc = claim(&c, fam, base_len, *s, fam, fam_len, why, why_len);
            }
        } else if (len > 0 && line[0] != '#') {
            size_t n = 0;
            while (n < len && line[n] != '{' && line[n] != ' ')
                n++;
            if (!sample_of(line, n, fam, fam_len, type, type_len)) {
                /* An untyped family of its own. */
                fam = line;
                fam_len = n;
                type = "untyped";
                type_len = 7;
                rc = claim(&c, line, n, "", line, n, why, why_len);
            }
        }
        line = end ? end + 1 : line + len;
    }
    claims_free(&c);
    return rc;
}
