#include "px_json.h"

#include <stdlib.h>
#include <string.h>

char *px_json_line(const json_t *root)
{
    char *js = root ? json_dumps(root, JSON_COMPACT) : NULL;
    if (!js)
        return NULL;
    size_t n = strlen(js);
    char *out = malloc(n + 2);
    if (out) {
        memcpy(out, js, n);
        out[n] = '\n';
        out[n + 1] = '\0';
    }
    free(js);
    return out;
}
