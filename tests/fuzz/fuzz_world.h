/* What the targets that fuzz through tests/support/mem_world share: one
 * world per process, set up in LLVMFuzzerInitialize and freed at exit; the
 * ingress rules that answer without an origin; feeding an input in
 * network-sized pieces; and the first bytes a well-behaved peer writes. */
#ifndef FUZZ_WORLD_H
#define FUZZ_WORLD_H

#include "fuzz_util.h"
#include "mem_world.h"

#include <string.h>

/* Ingress rules: FZ_INGRESS(FZ_RULE_APP FZ_RULE_STATUS ...) ends with the
 * catch-all 404. */
#define FZ_RULE_APP "{\"hostname\":\"app.fuzz.test\",\"service\":\"hello_world\"},"
#define FZ_RULE_STATUS "{\"hostname\":\"status.fuzz.test\",\"service\":\"http_status:418\"},"
#define FZ_RULE_HELLO                                                                              \
    "{\"hostname\":\"*.fuzz.test\",\"path\":\"^/hello\",\"service\":\"hello_world\"},"
#define FZ_INGRESS(rules) "{\"ingress\":[" rules "{\"service\":\"http_status:404\"}]}"

/* The target's world (one per process: libFuzzer runs inputs one by one). */
static struct mw fz_world;

static inline void fz_world_cleanup(void)
{
    mw_cleanup(&fz_world);
}

/* Sets up fz_world with ingress (aborts if it cannot); detached: the input
 * plays one end of the tunnel, so no real peer is attached to the other. */
static inline void fz_world_init(const char *ingress, int detached)
{
    if (mw_init(&fz_world, ingress) < 0)
        abort();
    fz_world.detached = detached;
    atexit(fz_world_cleanup);
}

/* Feeds data[0..size) through feed (mw_front_feed, mw_el_feed, ...) in
 * network-sized pieces seeded from the data, pumping the world after each
 * and once more at the end; stops at the first piece feed refuses. */
static inline void fz_world_feed(struct mw *w, const uint8_t *data, size_t size,
                                 int (*feed)(struct mw *, const void *, size_t))
{
    uint64_t rnd = fz_hash(data, size);
    for (size_t off = 0; off < size;) {
        size_t n = fz_piece(&rnd, size - off);
        if (feed(w, data + off, n) < 0)
            break;
        off += n;
        mw_pump(w);
    }
    mw_pump(w);
}

/* 1 if b is empty or starts as an HTTP/1.1 response. */
static inline int fz_h1_response_or_nothing(const struct px_buf *b)
{
    static const char head[] = "HTTP/1.1 ";
    size_t len = px_buf_len(b);
    return len == 0 ||
           (len >= sizeof(head) - 1 && memcmp(px_buf_head(b), head, sizeof(head) - 1) == 0);
}

/* 1 if b starts with an HTTP/2 server preface: SETTINGS (type 4, no ACK)
 * on stream 0. */
static inline int fz_h2_settings_first(const struct px_buf *b)
{
    const uint8_t *out = px_buf_head(b);
    size_t len = px_buf_len(b);
    return len >= 9 && out[3] == 4 && !(out[4] & 1) && memcmp(out + 5, "\0\0\0\0", 4) == 0;
}

/* 1 if b is empty or fz_h2_settings_first. */
static inline int fz_h2_settings_first_or_nothing(const struct px_buf *b)
{
    return px_buf_len(b) == 0 || fz_h2_settings_first(b);
}

/* One input as what a browser sends on a connection with ALPN alpn
 * ("http/1.1" or "h2"), through both tunnel links to the connector. Fails
 * (abort) unless the front's output passes well_formed, a fresh browser
 * still gets a 200 through the tunnel (mw_canary), and everything closes. */
static inline void fz_browser_input(const uint8_t *data, size_t size, const char *alpn,
                                    int (*well_formed)(const struct px_buf *front_out))
{
    struct mw *w = &fz_world;
    if (mw_links_open(w) < 0 || mw_front_open(w, alpn) < 0)
        FAIL();
    fz_world_feed(w, data, size, mw_front_feed);
    if (!well_formed(&w->front_out))
        FAIL();
    if (mw_canary(w) < 0)
        FAIL();
    if (mw_close_all(w) < 0)
        FAIL();
}

#endif
