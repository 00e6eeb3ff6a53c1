#include "cn_identity.h"
#include "px_err.h"
#include "px_pki.h"
#include "rt_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Creates path and its missing parents with mode 0700. Returns 0 or -1
 * with errno set. */
static int mkdir_p(const char *path)
{
    char *tmp = strdup(path);
    if (!tmp)
        return -1;
    int rc = 0;
    for (char *p = tmp + 1; *p && rc == 0; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
                rc = -1;
            *p = '/';
        }
    }
    if (rc == 0 && mkdir(tmp, 0700) < 0 && errno != EEXIST)
        rc = -1;
    int e = errno;
    free(tmp);
    errno = e;
    return rc;
}

int cn_identity_load(WC_RNG *rng, struct cn_identity *id, const char *state_dir,
                     const char *tunnel_id, char *why, size_t whylen)
{
    memset(id, 0, sizeof(*id));
    snprintf(id->dir, sizeof(id->dir), "%s/%s", state_dir, tunnel_id);
    if (mkdir_p(id->dir) < 0) {
        snprintf(why, whylen, "cannot create state directory %s: %s", id->dir, strerror(errno));
        return PX_ERR_IO;
    }
    /* mkdir leaves an existing directory as it was: refuse one that others
     * can read (our key is in it) or that someone else owns, as ssh does. */
    int rc;
    if ((rc = rt_file_check_private_dir(state_dir, "state directory", why, whylen)) < 0 ||
        (rc = rt_file_check_private_dir(id->dir, "state directory", why, whylen)) < 0)
        return rc;
    char path[700];
    snprintf(path, sizeof(path), "%s/key.pem", id->dir);
    rc = rt_file_read_private(path, 1 << 20, &id->key_pem, NULL, why, whylen);
    if (rc == PX_ERR_NOT_FOUND) {
        rc = px_pki_keygen(rng, &id->key_pem);
        if (rc < 0) {
            snprintf(why, whylen, "cannot generate a key: %s", px_strerror(rc));
            return rc;
        }
        if (rt_file_write_private(path, id->key_pem) < 0) {
            snprintf(why, whylen, "cannot write %s: %s", path, strerror(errno));
            cn_identity_cleanup(id);
            return PX_ERR_IO;
        }
    } else if (rc < 0) {
        return rc;
    }
    snprintf(path, sizeof(path), "%s/cert.pem", id->dir);
    id->cert_pem = rt_file_read(path, 1 << 20, NULL, NULL);
    return 0;
}

int cn_identity_save_cert(struct cn_identity *id, const char *cert_pem)
{
    char path[700];
    snprintf(path, sizeof(path), "%s/cert.pem", id->dir);
    int rc = rt_file_write_private(path, cert_pem);
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
