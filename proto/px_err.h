/* px_err: the error codes every component returns (negative ints). */
#ifndef PX_ERR_H
#define PX_ERR_H

enum px_err {
    PX_OK = 0,
    PX_ERR_NOMEM = -1,        /* allocation failed */
    PX_ERR_INVAL = -2,        /* malformed input or bad argument */
    PX_ERR_TRUNCATED = -3,    /* input ended early */
    PX_ERR_VERSION = -4,      /* unsupported format version */
    PX_ERR_TOO_LARGE = -5,    /* input exceeds a fixed limit */
    PX_ERR_TLS = -6,          /* TLS library failure */
    PX_ERR_TLS_VERIFY = -7,   /* peer certificate rejected */
    PX_ERR_WANT_IO = -8,      /* operation needs more input / output first */
    PX_ERR_CLOSED = -9,       /* peer closed */
    PX_ERR_IO = -10,          /* OS-level I/O failure */
    PX_ERR_NOT_FOUND = -11,   /* no such object */
    PX_ERR_EXISTS = -12,      /* object already exists */
    PX_ERR_DENIED = -13,      /* not allowed */
    PX_ERR_CRYPTO = -14,      /* key or certificate operation failed */
    PX_ERR_H2 = -15,          /* HTTP/2 library failure */
    PX_ERR_DB = -16,          /* embedded database failure */
    PX_ERR_TIMEOUT = -17,     /* a deadline passed (connect, handshake, exchange) */
    PX_ERR_UNAVAILABLE = -18, /* a shared service (the edges' database) cannot be reached now */
};

/* Returns a static, human-readable description of err (never NULL). */
const char *px_strerror(int err);

/* Maps an OS error to a px_err code at the boundary where it enters our code
 * (libuv, a syscall). e is a libuv code (UV_E*, negative errno on Unix, or
 * UV_EOF) or a positive errno; 0 maps to 0. UV_EOF is PX_ERR_CLOSED, ENOMEM
 * PX_ERR_NOMEM, ETIMEDOUT PX_ERR_TIMEOUT, EACCES/EPERM PX_ERR_DENIED, ENOENT
 * PX_ERR_NOT_FOUND, EEXIST/EADDRINUSE PX_ERR_EXISTS, EINVAL PX_ERR_INVAL and
 * every other error PX_ERR_IO. Keep e itself for the log: the mapping loses
 * which I/O error it was. */
int px_err_from_errno(int e);

#endif
