#include "px_err.h"

#include <errno.h>

const char *px_strerror(int err)
{
    switch (err) {
    case PX_OK:
        return "success";
    case PX_ERR_NOMEM:
        return "out of memory";
    case PX_ERR_INVAL:
        return "malformed input";
    case PX_ERR_TRUNCATED:
        return "input truncated";
    case PX_ERR_VERSION:
        return "unsupported version";
    case PX_ERR_TOO_LARGE:
        return "input too large";
    case PX_ERR_TLS:
        return "TLS failure";
    case PX_ERR_TLS_VERIFY:
        return "certificate verification failed";
    case PX_ERR_WANT_IO:
        return "would block";
    case PX_ERR_CLOSED:
        return "connection closed";
    case PX_ERR_IO:
        return "I/O error";
    case PX_ERR_NOT_FOUND:
        return "not found";
    case PX_ERR_EXISTS:
        return "already exists";
    case PX_ERR_DENIED:
        return "denied";
    case PX_ERR_CRYPTO:
        return "key or certificate operation failed";
    case PX_ERR_H2:
        return "HTTP/2 protocol error";
    case PX_ERR_DB:
        return "database error";
    case PX_ERR_TIMEOUT:
        return "timed out";
    case PX_ERR_UNAVAILABLE:
        return "database unavailable";
    default:
        return "unknown error";
    }
}

/* libuv's UV_EOF (uv-errno.h): not an errno. proto does not include uv.h. */
#define UV_EOF_CODE (-4095)

int px_err_from_errno(int e)
{
    if (e == 0)
        return 0;
    if (e == UV_EOF_CODE)
        return PX_ERR_CLOSED;
    switch (e < 0 ? -e : e) {
    case ENOMEM:
    case ENOBUFS:
        return PX_ERR_NOMEM;
    case ETIMEDOUT:
        return PX_ERR_TIMEOUT;
    case EACCES:
    case EPERM:
        return PX_ERR_DENIED;
    case ENOENT:
        return PX_ERR_NOT_FOUND;
    case EEXIST:
    case EADDRINUSE:
        return PX_ERR_EXISTS;
    case EINVAL:
        return PX_ERR_INVAL;
    default:
        return PX_ERR_IO;
    }
}
