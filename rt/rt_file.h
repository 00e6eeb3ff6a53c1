/* rt_file: small whole-file helpers for keys, certificates and configs, and
 * the ssh-style checks on the private directories and key files that hold
 * them. */
#ifndef RT_FILE_H
#define RT_FILE_H

#include <stddef.h>

/* Reads all of path into a malloc'd NUL-terminated string (caller frees).
 * Returns NULL with *err set (errno value; EFBIG when over max bytes). len
 * and err may be NULL. */
char *rt_file_read(const char *path, size_t max, size_t *len, int *err);

/* Reads a private file (a key) like rt_file_read, but opened without
 * following a symlink, and refused when it is not a regular file owned by
 * this user with no access for group or others. Returns 0 and *out
 * (malloc'd, NUL-terminated; caller frees) with *len (may be NULL);
 * PX_ERR_NOT_FOUND when path does not exist (why untouched); PX_ERR_DENIED
 * with why naming the fix ("key file F is readable by others (mode 0644);
 * run: chmod 600 F"); or PX_ERR_IO / PX_ERR_TOO_LARGE with why filled. */
int rt_file_read_private(const char *path, size_t max, char **out, size_t *len, char *why,
                         size_t whylen);

/* Writes data to path with mode 0600, atomically: a temp file with a random
 * name beside it, created O_EXCL|O_NOFOLLOW (so nothing planted there is
 * written through), fsync'd, renamed over path, then the directory fsync'd.
 * A crash leaves the old file or the new one. Returns 0, or PX_ERR_IO with
 * errno saying why, or PX_ERR_NOMEM. */
int rt_file_write_private(const char *path, const char *data);
/* The same for len bytes of data (binary, e.g. PKCS#12). */
int rt_file_write_private_len(const char *path, const void *data, size_t len);

/* Checks that dir, which holds keys or state, is a directory owned by this
 * user that group and others cannot use. what names it in the message
 * ("state directory"). Returns 0; PX_ERR_DENIED with why naming the fix
 * ("state directory D is readable by others (mode 0755); run: chmod 700
 * D"); or PX_ERR_IO with why filled (cannot stat, not a directory). */
int rt_file_check_private_dir(const char *dir, const char *what, char *why, size_t whylen);

/* Makes a new name (a rename, a link) in path's directory durable: fsyncs
 * the directory. EINVAL (a file system that cannot sync directories) counts
 * as done. Returns 0, or -1 with errno. */
int rt_file_fsync_parent(const char *path);

#endif
