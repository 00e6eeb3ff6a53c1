#include "px_hdracc.h"
#include "px_err.h"

#include <string.h>

void px_hdracc_init(struct px_hdracc *a, size_t max_field, size_t max_fields,
                    px_hdracc_emit_fn emit, void *arg)
{
    memset(a, 0, sizeof(*a));
    px_buf_init(&a->name);
    px_buf_init(&a->value);
    /* Most fields are short: start small (px_buf's default is 4 KiB). */
    px_buf_set_min_cap(&a->name, 64);
    px_buf_set_min_cap(&a->value, 256);
    a->max_field = max_field;
    a->max_fields = max_fields;
    a->emit = emit;
    a->arg = arg;
}

void px_hdracc_cleanup(struct px_hdracc *a)
{
    px_buf_cleanup(&a->name);
    px_buf_cleanup(&a->value);
    a->state = 0;
}

void px_hdracc_reset(struct px_hdracc *a)
{
    px_buf_consume(&a->name, px_buf_len(&a->name));
    px_buf_consume(&a->value, px_buf_len(&a->value));
    a->state = 0;
    a->fields = 0;
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Emits the pending field and empties the buffers. */
static int flush(struct px_hdracc *a)
{
    int was = a->state;
    a->state = 0;
    if (was == 0)
        return 0;
    int rc = 0;
    size_t nl = px_buf_len(&a->name), vl = px_buf_len(&a->value);
    if (nl > 0 && a->max_fields && a->fields >= a->max_fields)
        rc = PX_ERR_TOO_LARGE;
    if (nl > 0 && rc == 0) {
        /* Our own buffers: the value is cut in place (they are emptied below). */
        const char *n = px_buf_cstr(&a->name);
        char *v = vl ? (char *)px_buf_cstr(&a->value) : NULL;
        if (!n || (vl && !v))
            rc = PX_ERR_NOMEM;
        while (rc == 0 && vl > 0 && is_ows(v[vl - 1]))
            vl--;
        while (rc == 0 && vl > 0 && is_ows(v[0])) {
            v++;
            vl--;
        }
        if (rc == 0) {
            if (v)
                v[vl] = '\0';
            a->fields++;
            rc = a->emit(a->arg, n, nl, v ? v : "", vl);
        }
    }
    px_buf_consume(&a->name, px_buf_len(&a->name));
    px_buf_consume(&a->value, px_buf_len(&a->value));
    return rc;
}

static int add(struct px_hdracc *a, struct px_buf *b, const char *at, size_t len)
{
    size_t have = px_buf_len(&a->name) + px_buf_len(&a->value);
    if (a->max_field && (len > a->max_field || have > a->max_field - len))
        return PX_ERR_TOO_LARGE;
    return px_buf_append(b, at, len);
}

int px_hdracc_field(struct px_hdracc *a, const char *at, size_t len)
{
    if (a->state == 2) {
        int rc = flush(a);
        if (rc < 0)
            return rc;
    }
    a->state = 1;
    return add(a, &a->name, at, len);
}

int px_hdracc_value(struct px_hdracc *a, const char *at, size_t len)
{
    if (a->state == 0)
        return PX_ERR_INVAL; /* a value with no name: not from http_parser */
    a->state = 2;
    return add(a, &a->value, at, len);
}

int px_hdracc_end(struct px_hdracc *a)
{
    int rc = flush(a);
    /* The head is over: an idle connection keeps no header storage. */
    px_buf_shrink(&a->name, 0);
    px_buf_shrink(&a->value, 0);
    return rc;
}
