#include "cn_identity.h"
#include "px_err.h"
#include "px_pki.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int mkdir_p(const char *path)
{
    char tmp[600];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
        return -1;
    return 0;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            if (cap > (1 << 20)) {
                free(buf);
                fclose(f);
                return NULL;
            }
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, 4096, f);
        len += n;
        if (n < 4096)
            break;
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
}

/* Writes atomically: a crash leaves either the old file or the new one. */
static int write_private(const char *path, const char *data)
{
    char tmp[700];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return PX_ERR_IO;
    size_t n = strlen(data);
    ssize_t w = write(fd, data, n);
    if (w != (ssize_t)n || fsync(fd) < 0) {
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

int cn_identity_load(struct cn_identity *id, const char *state_dir, const char *tunnel_id,
                     char *why, size_t whylen)
{
    memset(id, 0, sizeof(*id));
    snprintf(id->dir, sizeof(id->dir), "%s/%s", state_dir, tunnel_id);
    if (mkdir_p(id->dir) < 0) {
        snprintf(why, whylen, "cannot create state directory %s: %s", id->dir, strerror(errno));
        return PX_ERR_IO;
    }
    char path[700];
    snprintf(path, sizeof(path), "%s/key.pem", id->dir);
    id->key_pem = slurp(path);
    if (!id->key_pem) {
        int rc = px_pki_keygen(&id->key_pem);
        if (rc < 0) {
            snprintf(why, whylen, "cannot generate a key: %s", px_strerror(rc));
            return rc;
        }
        if (write_private(path, id->key_pem) < 0) {
            snprintf(why, whylen, "cannot write %s: %s", path, strerror(errno));
            cn_identity_cleanup(id);
            return PX_ERR_IO;
        }
    }
    snprintf(path, sizeof(path), "%s/cert.pem", id->dir);
    id->cert_pem = slurp(path);
    return 0;
}

int cn_identity_save_cert(struct cn_identity *id, const char *cert_pem)
{
    char path[700];
    snprintf(path, sizeof(path), "%s/cert.pem", id->dir);
    int rc = write_private(path, cert_pem);
    if (rc < 0)
        return rc;
    free(id->cert_pem);
    id->cert_pem = strdup(cert_pem);
    return id->cert_pem ? 0 : PX_ERR_NOMEM;
}

void cn_identity_drop_cert(struct cn_identity *id)
{
    char path[700];
    snprintf(path, sizeof(path), "%s/cert.pem", id->dir);
    unlink(path);
    free(id->cert_pem);
    id->cert_pem = NULL;
}

void cn_identity_cleanup(struct cn_identity *id)
{
    if (id->key_pem)
        memset(id->key_pem, 0, strlen(id->key_pem));
    free(id->key_pem);
    free(id->cert_pem);
    id->key_pem = id->cert_pem = NULL;
}
