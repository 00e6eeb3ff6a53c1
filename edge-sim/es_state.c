#include "es_state.h"
#include "es_seal.h"
#include "px_err.h"
#include "rt_file.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int es_state_seal_key(const char *path, struct es_seal_key *key, char *why, size_t whylen)
{
    if (!path) {
        snprintf(why, whylen,
                 "a PostgreSQL store needs --ca-key-file FILE (or EDGE_CA_KEY_FILE): the key "
                 "that seals the CAs kept in it; `edge-sim store keygen FILE` makes one, and "
                 "every edge sharing the store needs a copy");
        return PX_ERR_INVAL;
    }
    return es_seal_key_load(path, key, why, whylen);
}

int es_state_open(struct es_store *st, struct es_certs *certs, WC_RNG *rng, const char *spec,
                  const char *ca_key_file, const char *server_name, char *why, size_t whylen)
{
    int rc;
    if (!es_sql_spec_is_pg(spec)) {
        int dir_lock = es_store_dir_lock(spec); /* another serve may be setting it up */
        rc = es_certs_init(certs, rng, spec, server_name, why, whylen);
        if (rc == 0 && (rc = es_store_open(st, spec, why, whylen)) < 0)
            es_certs_cleanup(certs);
        es_store_dir_unlock(dir_lock);
        return rc;
    }
    struct es_seal_key key;
    if ((rc = es_state_seal_key(ca_key_file, &key, why, whylen)) < 0)
        return rc;
    if ((rc = es_store_open(st, spec, why, whylen)) == 0) {
        if ((rc = es_store_set_seal(st, &key, rng)) < 0)
            snprintf(why, whylen, "out of memory");
        else
            rc = es_certs_init_shared(certs, rng, st, &key, server_name, why, whylen);
        if (rc < 0)
            es_store_close(st);
    }
    es_seal_key_wipe(&key);
    return rc;
}

int es_state_private_dir(const char *dir, char *why, size_t whylen)
{
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        snprintf(why, whylen, "cannot create %s: %s", dir, strerror(errno));
        return PX_ERR_IO;
    }
    return rt_file_check_private_dir(dir, "data directory", why, whylen);
}
