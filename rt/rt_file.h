/* rt_file: small whole-file helpers for keys, certificates and configs. */
#ifndef RT_FILE_H
#define RT_FILE_H

#include <stddef.h>

/* Reads all of path into a malloc'd NUL-terminated string (caller frees).
 * Returns NULL with *err set (errno value; EFBIG when over max bytes). len
 * and err may be NULL. */
char *rt_file_read(const char *path, size_t max, size_t *len, int *err);
/* Writes data to path with mode 0600, atomically (temp file, fsync, rename):
 * a crash leaves the old file or the new one. Returns 0 or PX_ERR_IO. */
int rt_file_write_private(const char *path, const char *data);

#endif
