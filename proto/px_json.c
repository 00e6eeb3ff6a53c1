#include "px_json.h"
#include "px_buf.h"

#include <stdlib.h>
#include <string.h>

struct dump_state {
    struct px_buf buf;
    int failed; /* sticky: jansson may carry on after a failed write */
};

static int dump_cb(const char *p, size_t n, void *arg)
{
    struct dump_state *d = arg;
    if (d->failed || px_buf_append(&d->buf, p, n) < 0) {
        d->failed = 1;
        return -1;
    }
    return 0;
}

char *px_json_dumps(const json_t *root, size_t flags)
{
    struct dump_state d = {.failed = 0};
    px_buf_init(&d.buf);
    char *out = NULL;
    if (!root || json_dump_callback(root, dump_cb, &d, flags) != 0 || d.failed)
        goto out;
    size_t n = px_buf_len(&d.buf);
    out = malloc(n + 1);
    if (out) {
        if (n)
            memcpy(out, px_buf_head(&d.buf), n);
        out[n] = '\0';
    }
out:
    px_buf_cleanup(&d.buf);
    return out;
}

char *px_json_line(const json_t *root)
{
    char *js = px_json_dumps(root, JSON_COMPACT);
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
