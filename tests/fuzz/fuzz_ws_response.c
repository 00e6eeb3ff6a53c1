/* libFuzzer target for the connector's parsing of an origin's answer to a
 * WebSocket upgrade (cn_upgrade: http_parser callbacks, the 101 checks,
 * passing a refusal through, relaying after a 101).
 * A browser (HTTP/1.1, in memory) asks for a WebSocket on ws.fuzz.test; the
 * request crosses an in-memory tunnel to the connector, whose HTTP rule
 * starts an upgrade. Linking with -Wl,--wrap=cn_upgrade_start replaces the
 * origin connection with a detached one (cn_upgrade_start_detached) whose
 * expected Sec-WebSocket-Accept belongs to the RFC 6455 sample key.
 * The input: first byte = scenario, the rest = the origin's bytes, fed in
 * network-sized pieces with cn_upgrade_feed.
 *   bit 0: the origin closes after its bytes;
 *   bit 1: the browser then sends a WebSocket frame and closes.
 * Properties: no crash or leak; the browser sees an HTTP/1.1 response; it
 * sees 101 only if the origin's bytes hold the right Sec-WebSocket-Accept;
 * the tunnel links survive and a fresh browser still gets a 200. */
#include "fuzz_world.h"
#include "cn_stream_int.h"
#include "cn_upgrade.h"

#include <stdio.h>
#include <string.h>

#define KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

static const char ingress[] = "{\"ingress\":["
                              "{\"hostname\":\"ws.fuzz.test\",\"service\":\"http://127.0.0.1:9\"},"
                              "{\"hostname\":\"app.fuzz.test\",\"service\":\"hello_world\"},"
                              "{\"service\":\"http_status:404\"}]}";

static const char upgrade[] = "GET /chat HTTP/1.1\r\nHost: ws.fuzz.test\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\nSec-WebSocket-Key: " KEY "\r\n"
                              "Sec-WebSocket-Version: 13\r\n\r\n";
/* A masked text frame "hello" (RFC 6455 5.7). */
static const char frame[] = "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";

static struct cn_stream *upgrading; /* the stream cn_upgrade_start was asked for */

int __wrap_cn_upgrade_start(struct cn_stream *s);
int __wrap_cn_upgrade_start(struct cn_stream *s)
{
    upgrading = s;
    return cn_upgrade_start_detached(s, KEY);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_world_init(ingress, 0);
    return 0;
}

/* The stream is freed when it ends: it is valid while still listed. */
static struct cn_stream *live(struct mw *w)
{
    struct px_list_node *pos, *tmp;
    if (!w->cl)
        return NULL;
    px_list_for_each_safe (pos, tmp, &w->cl->streams) {
        struct cn_stream *s = px_container_of(pos, struct cn_stream_hnode, node)->stream;
        if (s == upgrading && s->up)
            return s;
    }
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mw *w = &fz_world;
    if (size == 0)
        return 0;
    unsigned mode = data[0];
    data++;
    size--;
    upgrading = NULL;
    if (mw_links_open(w) < 0 || mw_front_open(w, "http/1.1") < 0)
        FAIL();
    snprintf(w->front->sni, sizeof(w->front->sni), "ws.fuzz.test"); /* the TLS name */
    if (mw_front_feed(w, upgrade, sizeof(upgrade) - 1) < 0)
        FAIL();
    mw_pump(w);
    if (!live(w))
        FAIL();
    uint64_t rnd = fz_hash(data, size);
    for (size_t off = 0; off < size;) {
        size_t n = fz_piece(&rnd, size - off);
        struct cn_stream *s = live(w);
        if (!s)
            break;
        cn_upgrade_feed(s, data + off, n);
        off += n;
        mw_pump(w);
    }
    if ((mode & 1) && live(w))
        cn_upgrade_feed(live(w), NULL, 0);
    mw_pump(w);
    if (mode & 2) {
        mw_front_feed(w, frame, sizeof(frame) - 1);
        mw_pump(w);
    }
    static const char switching[] = "HTTP/1.1 101 ";
    const char *out = (const char *)px_buf_head(&w->front_out);
    size_t len = px_buf_len(&w->front_out);
    if (!fz_h1_response_or_nothing(&w->front_out))
        FAIL();
    if (len >= sizeof(switching) - 1 && memcmp(out, switching, sizeof(switching) - 1) == 0 &&
        !memmem(data, size, ACCEPT, sizeof(ACCEPT) - 1))
        FAIL();
    if (mw_canary(w) < 0)
        FAIL();
    if (mw_close_all(w) < 0)
        FAIL();
    return 0;
}
