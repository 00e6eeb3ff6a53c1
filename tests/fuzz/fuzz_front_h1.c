/* libFuzzer target for the browser HTTP/1.1 front (es_front_h1 + es_req).
 * The input is what a browser sends on one connection. It is fed in
 * network-sized pieces (seeded from the input) to an in-memory front whose
 * requests cross an in-memory tunnel to a real connector that answers from
 * hello_world / http_status rules (tests/support/mem_world).
 * Properties: no crash or leak; whatever the front writes starts as an
 * HTTP/1.1 response; both tunnel links survive, and a fresh browser still
 * gets a 200 through them (one browser cannot take the tunnel offline). */
#include "fuzz_util.h"
#include "mem_world.h"

#include <string.h>

static const char ingress[] =
    "{\"ingress\":["
    "{\"hostname\":\"app.fuzz.test\",\"service\":\"hello_world\"},"
    "{\"hostname\":\"status.fuzz.test\",\"service\":\"http_status:418\"},"
    "{\"hostname\":\"*.fuzz.test\",\"path\":\"^/hello\",\"service\":\"hello_world\"},"
    "{\"service\":\"http_status:404\"}]}";

static struct mw world;

static void cleanup(void)
{
    mw_cleanup(&world);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (mw_init(&world, ingress) < 0)
        abort();
    atexit(cleanup);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mw *w = &world;
    if (mw_links_open(w) < 0 || mw_front_open(w, "http/1.1") < 0)
        FAIL();
    uint64_t rnd = fz_hash(data, size);
    for (size_t off = 0; off < size;) {
        size_t n = fz_piece(&rnd, size - off);
        if (mw_front_feed(w, data + off, n) < 0)
            break;
        off += n;
        mw_pump(w);
    }
    mw_pump(w);
    static const char head[] = "HTTP/1.1 ";
    size_t out = px_buf_len(&w->front_out);
    if (out &&
        (out < sizeof(head) - 1 || memcmp(px_buf_head(&w->front_out), head, sizeof(head) - 1) != 0))
        FAIL();
    if (mw_canary(w) < 0)
        FAIL();
    if (mw_close_all(w) < 0)
        FAIL();
    return 0;
}
