#include "rt_file.h"
#include "px_err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/* Reads fd to its end. Returns a malloc'd NUL-terminated string, or NULL
 * with *err set (EFBIG past max). */
static char *read_fd(int fd, size_t max, size_t *len, int *err)
{
    enum { CHUNK = 65536 };
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (cap - n < CHUNK + 1) {
            size_t ncap = cap ? cap * 2 : CHUNK + 1;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                *err = ENOMEM;
                return NULL;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t k = read(fd, buf + n, cap - n - 1);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            *err = errno;
            free(buf);
            return NULL;
        }
        if (k == 0)
            break;
        n += (size_t)k;
        if (n > max) {
            free(buf);
            *err = EFBIG;
            return NULL;
        }
    }
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

char *rt_file_read(const char *path, size_t max, size_t *len, int *err)
{
    int dummy;
    if (!err)
        err = &dummy;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *err = errno;
        return NULL;
    }
    char *buf = read_fd(fd, max, len, err);
    close(fd);
    return buf;
}

/* How group/other access shows in a message, worst first. */
static const char *exposure(mode_t mode)
{
    if (mode & 022)
        return "writable by others";
    if (mode & 044)
        return "readable by others";
    return "accessible by others";
}

int rt_file_read_private(const char *path, size_t max, char **out, size_t *len, char *why,
                         size_t whylen)
{
    *out = NULL;
    /* O_NONBLOCK: a FIFO planted in place of the key must not hang us. */
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT)
            return PX_ERR_NOT_FOUND;
        if (e == ELOOP) {
            snprintf(why, whylen,
                     "key file %s is a symbolic link; put the key itself there (mode 0600)", path);
            return PX_ERR_DENIED;
        }
        snprintf(why, whylen, "cannot open key file %s: %s", path, strerror(e));
        return PX_ERR_IO;
    }
    int rc = PX_ERR_DENIED;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        snprintf(why, whylen, "cannot stat key file %s: %s", path, strerror(errno));
        rc = PX_ERR_IO;
        goto out_close;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, whylen, "key file %s is not a regular file", path);
        goto out_close;
    }
    if (st.st_uid != geteuid()) {
        snprintf(why, whylen,
                 "key file %s is owned by uid %u, not by this user (uid %u); run: chown %u %s",
                 path, (unsigned)st.st_uid, (unsigned)geteuid(), (unsigned)geteuid(), path);
        goto out_close;
    }
    if (st.st_mode & 077) {
        snprintf(why, whylen, "key file %s is %s (mode %04o); run: chmod 600 %s", path,
                 exposure(st.st_mode), (unsigned)(st.st_mode & 07777), path);
        goto out_close;
    }
    int err = 0;
    *out = read_fd(fd, max, len, &err);
    if (!*out) {
        snprintf(why, whylen, "cannot read key file %s: %s", path, strerror(err));
        rc = err == EFBIG ? PX_ERR_TOO_LARGE : err == ENOMEM ? PX_ERR_NOMEM : PX_ERR_IO;
        goto out_close;
    }
    rc = 0;
out_close:
    close(fd);
    return rc;
}

/* Writes all of data, across short writes and signals. */
static int write_all(int fd, const char *data, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, data, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -1;
        data += k;
        n -= (size_t)k;
    }
    return 0;
}

int rt_file_fsync_parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir) {
        errno = ENOMEM;
        return -1;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0)
        return -1;
    int rc = fsync(fd) < 0 && errno != EINVAL ? -1 : 0;
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

int rt_file_write_private_len(const char *path, const void *data, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t pl = strlen(path);
    /* "<path>.tmp." + 16 hex digits: unguessable, so nothing can be planted
     * there in advance; O_EXCL|O_NOFOLLOW refuse whatever is there anyway. */
    char *tmp = malloc(pl + 5 + 16 + 1);
    if (!tmp)
        return PX_ERR_NOMEM;
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".tmp.", 5);
    int fd = -1, e = 0;
    for (int attempt = 0; attempt < 8 && fd < 0; attempt++) {
        uint8_t rnd[8];
        if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
            e = errno;
            goto out_free;
        }
        for (size_t i = 0; i < sizeof(rnd); i++) {
            tmp[pl + 5 + 2 * i] = hex[rnd[i] >> 4];
            tmp[pl + 5 + 2 * i + 1] = hex[rnd[i] & 15];
        }
        tmp[pl + 5 + 16] = '\0';
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 && errno != EEXIST) {
            e = errno;
            goto out_free;
        }
    }
    if (fd < 0) {
        e = EEXIST;
        goto out_free;
    }
    if (write_all(fd, data, len) < 0 || fsync(fd) < 0) {
        e = errno;
        close(fd);
        goto out_unlink;
    }
    if (close(fd) < 0) {
        e = errno;
        goto out_unlink;
    }
    if (rename(tmp, path) < 0) {
        e = errno;
        goto out_unlink;
    }
    free(tmp);
    return rt_file_fsync_parent(path) < 0 ? PX_ERR_IO : 0;
out_unlink:
    unlink(tmp);
out_free:
    free(tmp);
    errno = e;
    return PX_ERR_IO;
}

int rt_file_check_private_dir(const char *dir, const char *what, char *why, size_t whylen)
{
    struct stat st;
    if (stat(dir, &st) < 0) {
        snprintf(why, whylen, "cannot use %s %s: %s", what, dir, strerror(errno));
        return PX_ERR_IO;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(why, whylen, "%s %s is not a directory", what, dir);
        return PX_ERR_IO;
    }
    if (st.st_uid != geteuid()) {
        snprintf(why, whylen,
                 "%s %s is owned by uid %u, not by this user (uid %u); run: chown %u %s", what, dir,
                 (unsigned)st.st_uid, (unsigned)geteuid(), (unsigned)geteuid(), dir);
        return PX_ERR_DENIED;
    }
    if (st.st_mode & 077) {
        snprintf(why, whylen, "%s %s is %s (mode %04o); run: chmod 700 %s", what, dir,
                 exposure(st.st_mode), (unsigned)(st.st_mode & 07777), dir);
        return PX_ERR_DENIED;
    }
    return 0;
}

int rt_file_write_private(const char *path, const char *data)
{
    return rt_file_write_private_len(path, data, strlen(data));
}
