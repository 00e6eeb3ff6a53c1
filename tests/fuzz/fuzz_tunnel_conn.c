/* libFuzzer target for the connector's end of the tunnel: the HTTP/2 server
 * session of cn_link with its control stream and request streams
 * (cn_stream). The input plays the edge (client preface, frames) and is fed
 * in network-sized pieces to an in-memory cn_link; requests are answered
 * from hello_world / http_status rules, so no origin is contacted
 * (locked.fuzz.test requires the edge's identity assertion, checked with
 * the keys an access_keys control message brings).
 * Properties: no crash or leak; the connector's first frame is its
 * SETTINGS; everything is freed when the link closes. */
#include "fuzz_util.h"
#include "mem_world.h"

#include <string.h>

static const char ingress[] =
    "{\"ingress\":["
    "{\"hostname\":\"app.fuzz.test\",\"service\":\"hello_world\"},"
    "{\"hostname\":\"status.fuzz.test\",\"service\":\"http_status:418\"},"
    "{\"hostname\":\"locked.fuzz.test\",\"service\":\"hello_world\","
    "\"originRequest\":{\"access\":{\"required\":true}}},"
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
    world.detached = 1; /* the input is the edge */
    atexit(cleanup);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mw *w = &world;
    if (mw_conn_link_open(w) < 0 || !w->cl)
        FAIL();
    /* Before any input the connector has sent its preface (SETTINGS). */
    mw_pump(w);
    uint64_t rnd = fz_hash(data, size);
    for (size_t off = 0; off < size;) {
        size_t n = fz_piece(&rnd, size - off);
        if (mw_cl_feed(w, data + off, n) < 0)
            break;
        off += n;
        mw_pump(w);
    }
    mw_pump(w);
    /* A server connection preface: a SETTINGS frame (type 4) on stream 0. */
    const uint8_t *out = px_buf_head(&w->link_out);
    size_t len = px_buf_len(&w->link_out);
    if (len < 9 || out[3] != 4 || (out[4] & 1) || memcmp(out + 5, "\0\0\0\0", 4) != 0)
        FAIL();
    if (mw_close_all(w) < 0)
        FAIL();
    return 0;
}
