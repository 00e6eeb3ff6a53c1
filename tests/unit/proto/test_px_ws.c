/* px_ws: the WebSocket accept proof. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "px_err.h"
#include "px_ws.h"

#include <string.h>

static void test_rfc6455_example(void **state)
{
    (void)state;
    char out[PX_WS_ACCEPT_LEN];
    const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
    assert_int_equal(px_ws_accept(key, strlen(key), out), 0);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

/* A key that is not 16 base64-encoded bytes is refused, never truncated. */
static void test_bad_keys_refused(void **state)
{
    (void)state;
    char out[PX_WS_ACCEPT_LEN];
    const char *bad[] = {"",
                         "short==",
                         "dGhlIHNhbXBsZSBub25jZQ",
                         "dGhlIHNhbXBsZSBub25jZQ===",
                         "dGhlIHNhbXBsZSBub25j\r\n==",
                         "dGhlIHNhbXBsZSBub25jZQ=="
                         "dGhlIHNhbXBsZSBub25jZQ=="};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(px_ws_accept(bad[i], strlen(bad[i]), out), PX_ERR_INVAL);
        assert_string_equal(out, "");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc6455_example),
        cmocka_unit_test(test_bad_keys_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
