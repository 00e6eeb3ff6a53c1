/* px_err: OS and libuv codes map onto px_err where they enter our code, and
 * every code has a description. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "px_err.h"

#include <uv.h>

#include <errno.h>
#include <string.h>

static void test_from_errno_maps_uv_and_errno(void **state)
{
    (void)state;
    assert_int_equal(px_err_from_errno(0), 0);
    /* libuv's codes (negated errnos) and plain errnos map alike. */
    assert_int_equal(px_err_from_errno(UV_ENOMEM), PX_ERR_NOMEM);
    assert_int_equal(px_err_from_errno(ENOMEM), PX_ERR_NOMEM);
    assert_int_equal(px_err_from_errno(UV_ETIMEDOUT), PX_ERR_TIMEOUT);
    assert_int_equal(px_err_from_errno(UV_EACCES), PX_ERR_DENIED);
    assert_int_equal(px_err_from_errno(EPERM), PX_ERR_DENIED);
    assert_int_equal(px_err_from_errno(UV_ENOENT), PX_ERR_NOT_FOUND);
    assert_int_equal(px_err_from_errno(UV_EADDRINUSE), PX_ERR_EXISTS);
    assert_int_equal(px_err_from_errno(UV_EINVAL), PX_ERR_INVAL);
    /* The end of a stream is the peer closing, not an I/O error. */
    assert_int_equal(px_err_from_errno(UV_EOF), PX_ERR_CLOSED);
    /* Everything else is an I/O error (the errno stays in the log). */
    assert_int_equal(px_err_from_errno(UV_ECONNREFUSED), PX_ERR_IO);
    assert_int_equal(px_err_from_errno(UV_ECONNRESET), PX_ERR_IO);
    assert_int_equal(px_err_from_errno(EPIPE), PX_ERR_IO);
    assert_int_equal(px_err_from_errno(UV_EAI_NONAME), PX_ERR_IO);
}

/* Whatever comes in, what goes out is a px_err with a description. */
static void test_from_errno_always_px_err(void **state)
{
    (void)state;
    for (int e = -5000; e <= 200; e++) {
        int p = px_err_from_errno(e);
        if (e == 0) {
            assert_int_equal(p, 0);
            continue;
        }
        assert_true(p <= PX_ERR_NOMEM && p >= PX_ERR_TIMEOUT);
        assert_string_not_equal(px_strerror(p), "unknown error");
    }
}

static void test_strerror_every_code(void **state)
{
    (void)state;
    for (int e = PX_OK; e >= PX_ERR_UNAVAILABLE; e--)
        assert_string_not_equal(px_strerror(e), "unknown error");
    assert_string_equal(px_strerror(PX_ERR_TIMEOUT), "timed out");
    assert_string_equal(px_strerror(PX_ERR_UNAVAILABLE), "database unavailable");
    assert_string_equal(px_strerror(PX_ERR_UNAVAILABLE - 1), "unknown error");
    assert_string_equal(px_strerror(1), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_from_errno_maps_uv_and_errno),
        cmocka_unit_test(test_from_errno_always_px_err),
        cmocka_unit_test(test_strerror_every_code),
    };
    return cmocka_run_group_tests_name("px_err", tests, NULL, NULL);
}
