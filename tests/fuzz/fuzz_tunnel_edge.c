/* libFuzzer target for the edge's end of the tunnel: the HTTP/2 client
 * session of es_link (frames, the control stream, responses to requests).
 * The input plays the connector: its first byte picks the scenario, the
 * rest is what the connector sends (server preface, frames), fed in
 * network-sized pieces to an in-memory es_link.
 *   bit 0 of the first byte: before the input, the link is attached to the
 *   tunnel and a browser (HTTP/1.1, in memory) sends a GET and a POST with a
 *   body, so streams 3 and 5 are open and waiting for answers.
 * Properties: no crash or leak; the link opens with the client preface; the
 * browser's output, if any, starts as an HTTP/1.1 response; everything is
 * freed when the link closes. */
#include "fuzz_world.h"
#include "es_registry.h"

#include <string.h>

static const char ingress[] = "{\"ingress\":[{\"service\":\"http_status:404\"}]}";

static const char browser[] = "GET /a HTTP/1.1\r\nHost: app.fuzz.test\r\n\r\n"
                              "POST /b HTTP/1.1\r\nHost: app.fuzz.test\r\nContent-Length: 5\r\n"
                              "\r\nhello";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_world_init(ingress, 1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mw *w = &fz_world;
    if (size == 0)
        return 0;
    unsigned mode = data[0];
    data++;
    size--;
    mw_reset_routes(w); /* a fuzzed REGISTER/UNREGISTER changes them */
    if (mw_edge_link_open(w) < 0)
        FAIL();
    mw_pump(w);
    if (mode & 1) {
        struct es_tunnel *t = es_registry_tunnel(&w->srv.reg, MW_TUNNEL_ID);
        if (!t || !w->el)
            FAIL();
        es_registry_attach(t, w->el);
        w->el->registered = 1;
        if (mw_front_open(w, "http/1.1") < 0 || mw_front_feed(w, browser, sizeof(browser) - 1) < 0)
            FAIL();
        mw_pump(w);
    }
    fz_world_feed(w, data, size, mw_el_feed);
    if (!fz_h1_response_or_nothing(&w->front_out))
        FAIL();
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    if (px_buf_len(&w->link_out) < sizeof(preface) - 1 ||
        memcmp(px_buf_head(&w->link_out), preface, sizeof(preface) - 1) != 0)
        FAIL();
    if (mw_close_all(w) < 0)
        FAIL();
    return 0;
}
