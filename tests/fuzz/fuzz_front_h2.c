/* libFuzzer target for the browser HTTP/2 front (es_front_h2 + es_req).
 * The input is what a browser sends on one HTTP/2 connection (client
 * preface, frames). It is fed in network-sized pieces (seeded from the input)
 * to an in-memory front whose requests cross an in-memory tunnel to a real
 * connector answering from hello_world / http_status rules.
 * Properties: no crash or leak; the front's first frame is its SETTINGS;
 * both tunnel links survive, and a fresh browser still gets a 200 through
 * them (one browser cannot take the tunnel offline). */
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
    if (mw_links_open(w) < 0 || mw_front_open(w, "h2") < 0)
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
    /* A server connection preface: a SETTINGS frame (type 4) on stream 0. */
    const uint8_t *out = px_buf_head(&w->front_out);
    size_t len = px_buf_len(&w->front_out);
    if (len && (len < 9 || out[3] != 4 || (out[4] & 1) || memcmp(out + 5, "\0\0\0\0", 4) != 0))
        FAIL();
    if (mw_canary(w) < 0)
        FAIL();
    if (mw_close_all(w) < 0)
        FAIL();
    return 0;
}
