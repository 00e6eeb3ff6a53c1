/* cn_upgrade: how the connector judges an origin's answer to a WebSocket
 * upgrade. A browser (HTTP/1.1, in memory) asks for a WebSocket through an
 * in-memory tunnel (tests/support/mem_world); the origin side is a detached
 * upgrade (this binary is linked with -Wl,--wrap=cn_upgrade_start) fed the
 * origin's bytes by the test. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cn_stream.h"
#include "cn_upgrade.h"
#include "mem_world.h"

#include <stdio.h>
#include <string.h>

#define KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

static struct mw world;
static struct cn_stream *upgrading;

int __wrap_cn_upgrade_start(struct cn_stream *s);
int __wrap_cn_upgrade_start(struct cn_stream *s)
{
    upgrading = s;
    return cn_upgrade_start_detached(s, KEY);
}

static int setup(void **state)
{
    (void)state;
    return mw_init(&world, "{\"ingress\":["
                           "{\"hostname\":\"ws.fuzz.test\",\"service\":\"http://127.0.0.1:9\"},"
                           "{\"hostname\":\"app.fuzz.test\",\"service\":\"hello_world\"},"
                           "{\"service\":\"http_status:404\"}]}");
}

static int teardown(void **state)
{
    (void)state;
    mw_cleanup(&world);
    return 0;
}

/* Runs one upgrade whose origin answers `answer`; returns what the browser
 * got (static storage, NUL-terminated). */
static const char *upgrade_with(const char *answer)
{
    static char got[4096];
    static const char req[] = "GET /chat HTTP/1.1\r\nHost: ws.fuzz.test\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\nSec-WebSocket-Key: " KEY "\r\n"
                              "Sec-WebSocket-Version: 13\r\n\r\n";
    upgrading = NULL;
    assert_int_equal(mw_links_open(&world), 0);
    assert_int_equal(mw_front_open(&world, "http/1.1"), 0);
    snprintf(world.front->sni, sizeof(world.front->sni), "ws.fuzz.test"); /* the TLS name */
    assert_int_equal(mw_front_feed(&world, req, sizeof(req) - 1), 0);
    mw_pump(&world);
    assert_non_null(upgrading);
    cn_upgrade_feed(upgrading, (const uint8_t *)answer, strlen(answer));
    mw_pump(&world);
    size_t n = px_buf_len(&world.front_out);
    if (n >= sizeof(got))
        n = sizeof(got) - 1;
    memcpy(got, px_buf_head(&world.front_out), n);
    got[n] = '\0';
    assert_int_equal(mw_close_all(&world), 0);
    return got;
}

static void valid_101_becomes_a_websocket(void **state)
{
    (void)state;
    const char *got =
        upgrade_with("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: " ACCEPT "\r\n\r\n");
    assert_memory_equal(got, "HTTP/1.1 101 ", 13);
}

static void wrong_accept_is_502(void **state)
{
    (void)state;
    const char *got = upgrade_with("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                   "Connection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n");
    assert_memory_equal(got, "HTTP/1.1 502 ", 13);
}

/* Found by fuzz_ws_response: a 101 with no Sec-WebSocket-Accept at all was
 * taken as a WebSocket the origin agreed to; the browser was told 101 (with
 * an Accept the edge computed itself). RFC 6455 4.1: fail the connection. */
static void fuzz_defect_101_without_accept_is_not_a_websocket(void **state)
{
    (void)state;
    const char *got = upgrade_with("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                   "Connection: Upgrade\r\n\r\n");
    assert_memory_equal(got, "HTTP/1.1 502 ", 13);
    assert_non_null(strstr(got, "origin_bad_upgrade"));
}

/* Memory (issue 13): an idle WebSocket at the connector cost 23.8 KB, a
 * third of it buffers kept after their bytes were gone: the handshake
 * request, the header accumulator, the drained request body. Once the
 * relay is open and both ways are drained, it holds no buffer at all. */
static void an_idle_relay_holds_no_buffers(void **state)
{
    (void)state;
    static const char req[] = "GET /chat HTTP/1.1\r\nHost: ws.fuzz.test\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\nSec-WebSocket-Key: " KEY "\r\n"
                              "Sec-WebSocket-Version: 13\r\n\r\n";
    static const char answer[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                 "Connection: Upgrade\r\nSec-WebSocket-Accept: " ACCEPT "\r\n"
                                 "X-Origin: a header the accumulator held\r\n\r\n";
    /* A masked text frame "hello" from the browser, and the origin's echo. */
    static const uint8_t frame[] = {0x81,    0x85,    1,       2,       3,      4,
                                    'h' ^ 1, 'e' ^ 2, 'l' ^ 3, 'l' ^ 4, 'o' ^ 1};
    static const uint8_t echo[] = {0x81, 0x05, 'h', 'e', 'l', 'l', 'o'};
    upgrading = NULL;
    assert_int_equal(mw_links_open(&world), 0);
    assert_int_equal(mw_front_open(&world, "http/1.1"), 0);
    snprintf(world.front->sni, sizeof(world.front->sni), "ws.fuzz.test");
    assert_int_equal(mw_front_feed(&world, req, sizeof(req) - 1), 0);
    mw_pump(&world);
    assert_non_null(upgrading);
    assert_true(cn_upgrade_held(upgrading) > 0); /* the handshake request waits */
    cn_upgrade_feed(upgrading, (const uint8_t *)answer, sizeof(answer) - 1);
    mw_pump(&world);
    assert_memory_equal(px_buf_head(&world.front_out), "HTTP/1.1 101 ", 13);
    assert_int_equal(cn_upgrade_held(upgrading), 0);
    /* A message each way, relayed and drained. */
    size_t before = px_buf_len(&world.front_out);
    assert_int_equal(mw_front_feed(&world, frame, sizeof(frame)), 0);
    mw_pump(&world);
    cn_upgrade_feed(upgrading, echo, sizeof(echo));
    mw_pump(&world);
    assert_int_equal(px_buf_len(&world.front_out), before + sizeof(echo));
    mw_pump(&world); /* the next read of the response finds it empty */
    assert_int_equal(cn_upgrade_held(upgrading), 0);
    assert_int_equal(mw_close_all(&world), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_101_becomes_a_websocket),
        cmocka_unit_test(wrong_accept_is_502),
        cmocka_unit_test(fuzz_defect_101_without_accept_is_not_a_websocket),
        cmocka_unit_test(an_idle_relay_holds_no_buffers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
