#include "rt_file.h"
#include "px_err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *rt_file_read(const char *path, size_t max, size_t *len, int *err)
{
    int dummy;
    if (!err)
        err = &dummy;
    FILE *f = fopen(path, "rb");
    if (!f) {
        *err = errno;
        return NULL;
    }
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 65536 + 1 > cap) {
            cap = cap ? cap * 2 : 65536 + 1;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                *err = ENOMEM;
                return NULL;
            }
            buf = nb;
        }
        size_t k = fread(buf + n, 1, 65536, f);
        n += k;
        if (n > max) {
            free(buf);
            fclose(f);
            *err = EFBIG;
            return NULL;
        }
        if (k < 65536)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        *err = EIO;
        return NULL;
    }
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

int rt_file_write_private(const char *path, const char *data)
{
    char tmp[1024];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return PX_ERR_IO;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return PX_ERR_IO;
    size_t n = strlen(data);
    if (write(fd, data, n) != (ssize_t)n || fsync(fd) < 0) {
        close(fd);
        unlink(tmp);
        return PX_ERR_IO;
    }
    close(fd);
    if (rename(tmp, path) < 0) {
        unlink(tmp);
        return PX_ERR_IO;
    }
    return 0;
}
