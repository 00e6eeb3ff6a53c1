/* libFuzzer target for the lean origin client's response reader
 * (proto/px_h1resp: http_parser callbacks, interim responses, the head's
 * fields put together across reads, bodies by length, chunked or until
 * close, trailers dropped). I/O-free: the input is the origin's bytes.
 * The first byte is the scenario:
 *   bit 0: the request was HEAD;
 *   bit 1: the origin closes after its bytes (px_h1resp_eof).
 * The rest is fed twice: in network-sized pieces, and in one piece.
 * Properties: no crash or leak; head() at most once, with a status in
 * 200-599; no field after the head, no body before it or without one; a
 * complete response had a head, and a kept-alive one was not read until
 * close; and both feeds give the same result, and when it is a success
 * the same status, fields and body. */
#include "fuzz_util.h"
#include "px_h1resp.h"

#include <string.h>

struct seen {
    int heads, status, has_body, fields_after_head;
    uint64_t fields, body;
    size_t body_len;
    int complete, keep_alive, err;
};

static int f_field(void *arg, const char *n, size_t nl, const char *v, size_t vl)
{
    struct seen *s = arg;
    if (s->heads)
        FAIL();
    s->fields = s->fields * 31 + fz_hash((const uint8_t *)n, nl);
    s->fields = s->fields * 31 + fz_hash((const uint8_t *)v, vl);
    return 0;
}

static int f_head(void *arg, int status, int has_body)
{
    struct seen *s = arg;
    if (s->heads++ || status < 200 || status > 599)
        FAIL();
    s->status = status;
    s->has_body = has_body;
    return 0;
}

static int f_body(void *arg, const char *d, size_t n)
{
    struct seen *s = arg;
    if (!s->heads || !s->has_body || n == 0)
        FAIL();
    /* FNV-1a over the bytes: the same however the body was split. */
    for (size_t i = 0; i < n; i++)
        s->body = (s->body ^ (uint8_t)d[i]) * 1099511628211ull;
    s->body_len += n;
    return 0;
}

static const struct px_h1resp_ops ops = {.field = f_field, .head = f_head, .body = f_body};

/* Feeds data (in pieces when rnd) and returns what the reader reported. */
static void run(const uint8_t *data, size_t len, int head, int eof, uint64_t *rnd, struct seen *s)
{
    struct px_h1resp r;
    memset(s, 0, sizeof(*s));
    px_h1resp_init(&r, &ops, s);
    px_h1resp_reset(&r, head);
    int rc = 0;
    size_t off = 0;
    while (off < len && rc == 0 && !r.complete) {
        size_t n = rnd ? fz_piece(rnd, len - off) : len - off, used = 0;
        rc = px_h1resp_feed(&r, (const char *)data + off, n, &used);
        if (rc == 0 && used > n)
            FAIL();
        if (rc == 0 && used < n && !r.complete)
            FAIL(); /* bytes left over only after a complete response */
        off += n;
    }
    if (rc == 0 && eof && !r.complete)
        rc = px_h1resp_eof(&r);
    if (r.complete && !s->heads)
        FAIL();
    if (r.complete && r.keep_alive && r.until_close)
        FAIL();
    s->complete = r.complete;
    s->keep_alive = r.keep_alive;
    s->err = rc;
    px_h1resp_cleanup(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int head = data[0] & 1, eof = (data[0] >> 1) & 1;
    uint64_t rnd = fz_hash(data, size);
    struct seen a, b;
    run(data + 1, size - 1, head, eof, &rnd, &a);
    run(data + 1, size - 1, head, eof, NULL, &b);
    if (a.err != b.err)
        FAIL();
    /* Before a failure, what was reported depends on where the pieces
     * ended (a field is handed over when the next one starts): only a
     * success must read the same. */
    if (a.err == 0 && (a.heads != b.heads || a.status != b.status || a.has_body != b.has_body ||
                       a.fields != b.fields || a.body != b.body || a.body_len != b.body_len ||
                       a.complete != b.complete || a.keep_alive != b.keep_alive))
        FAIL();
    return 0;
}
