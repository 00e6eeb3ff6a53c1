/* libFuzzer target for the connector's end of the tunnel: the HTTP/2 server
 * session of cn_link with its control stream and request streams
 * (cn_stream). The input plays the edge (client preface, frames) and is fed
 * in network-sized pieces to an in-memory cn_link; requests are answered
 * from hello_world / http_status rules, so no origin is contacted
 * (locked.fuzz.test requires the edge's identity assertion, checked with
 * the keys an access_keys control message brings).
 * Properties: no crash or leak; the connector's first frame is its
 * SETTINGS; everything is freed when the link closes. */
#include "fuzz_world.h"

#include <string.h>

static const char ingress[] =
    FZ_INGRESS(FZ_RULE_APP FZ_RULE_STATUS "{\"hostname\":\"locked.fuzz.test\",\"service\":"
                                          "\"hello_world\",\"originRequest\":{\"access\":{"
                                          "\"required\":true}}}," FZ_RULE_HELLO);

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
    if (mw_conn_link_open(w) < 0 || !w->cl)
        FAIL();
    /* Before any input the connector has sent its preface (SETTINGS). */
    mw_pump(w);
    fz_world_feed(w, data, size, mw_cl_feed);
    if (!fz_h2_settings_first(&w->link_out))
        FAIL();
    if (mw_close_all(w) < 0)
        FAIL();
    return 0;
}
