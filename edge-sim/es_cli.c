#include "es_cli.h"
#include "es_seal.h"
#include "es_state.h"
#include "px_cert.h"
#include "px_err.h"
#include "px_pki.h"
#include "rt_file.h"

#include <errno.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int es_cli_fail(const char *msg, const char *arg)
{
    fprintf(stderr, "edge-sim: %s%s\n", msg, arg ? arg : "");
    return 2;
}

int es_cli_bad_option(const struct rt_cli *c)
{
    return es_cli_fail("unknown or incomplete option ", rt_cli_bad(c));
}

int es_cli_words(const struct rt_cli *c, const char *need, const char **sub, const char **arg)
{
    *sub = rt_cli_word(c, 0);
    *arg = rt_cli_word(c, 1);
    if (!*sub)
        return es_cli_fail(need, NULL);
    if (rt_cli_word(c, 2))
        return es_cli_fail("unexpected argument ", rt_cli_word(c, 2));
    return 0;
}

int es_cli_days(const char *s, unsigned long max, unsigned long *out)
{
    if (rt_cli_uint(s, 1, max, out) < 0)
        return es_cli_fail("--days must be 1-36500: ", s);
    return 0;
}

int es_cli_print_ca(int argc, char **argv, enum es_cli_ca which)
{
    static const struct option opts[] = {ES_CLI_WHERE_OPTS, RT_CLI_END};
    struct es_where w = es_where_default();
    const struct rt_cli_keep keep[] = {ES_CLI_WHERE_KEEP(w), {0, NULL}};
    struct rt_cli cli;
    rt_cli_start(&cli, argc, argv, opts, keep);
    if (rt_cli_next(&cli) < 0)
        return es_cli_bad_option(&cli);
    if (rt_cli_word(&cli, 0))
        return es_cli_fail("unexpected argument ", rt_cli_word(&cli, 0));
    struct es_offline o;
    if (es_offline_open(&o, &w) < 0)
        return 1;
    fputs(which == ES_CLI_ORIGIN_PULL_CA ? o.certs.origin_pull_ca_pem
          : which == ES_CLI_ORIGIN_CA    ? o.certs.origin_ca_pem
                                         : o.certs.browser_ca_pem,
          stdout);
    es_offline_close(&o);
    return 0;
}

struct es_where es_where_default(void)
{
    struct es_where w = {.dir = "edge-data"};
    const char *s = getenv("EDGE_STORE"), *k = getenv("EDGE_CA_KEY_FILE");
    w.store = s && *s ? s : NULL;
    w.ca_key_file = k && *k ? k : NULL;
    return w;
}

const char *es_where_spec(const struct es_where *w)
{
    return w->store ? w->store : w->dir;
}

int es_cli_seal_key(const struct es_where *w, struct es_seal_key *key)
{
    char why[1024];
    if (es_state_seal_key(w->ca_key_file, key, why, sizeof(why)) < 0) {
        fprintf(stderr, "edge-sim: %s\n", why);
        return -1;
    }
    return 0;
}

int es_cli_private_dir(const char *dir)
{
    char why[1024];
    if (es_state_private_dir(dir, why, sizeof(why)) < 0) {
        fprintf(stderr, "edge-sim: %s\n", why);
        return -1;
    }
    return 0;
}

int es_offline_open(struct es_offline *o, const struct es_where *w)
{
    char why[2048];
    memset(o, 0, sizeof(*o));
    o->spec = es_where_spec(w);
    if (wc_InitRng(&o->rng) != 0) {
        fprintf(stderr, "edge-sim: cannot seed a random generator\n");
        return -1;
    }
    if (es_state_open(&o->store, &o->certs, &o->rng, o->spec, w->ca_key_file,
                      ES_DEFAULT_SERVER_NAME, why, sizeof(why)) < 0) {
        fprintf(stderr, "edge-sim: %s\n", why);
        wc_FreeRng(&o->rng);
        return -1;
    }
    return 0;
}

void es_offline_close(struct es_offline *o)
{
    es_store_close(&o->store);
    es_certs_cleanup(&o->certs);
    wc_FreeRng(&o->rng);
}

int es_cli_valid_name(const char *n)
{
    return es_op_valid_name(n);
}

struct es_op_ctx es_cli_op_ctx(struct es_offline *o)
{
    struct es_op_ctx c = {
        .store = &o->store, .certs = &o->certs, .rng = &o->rng, .dir = o->spec, .live = NULL};
    return c;
}

int es_cli_parse_duration(const char *s, long long min, long long max, long long *out)
{
    if (!s || *s < '0' || *s > '9')
        return -1; /* no sign, no space, no empty string */
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno)
        return -1;
    long long unit = 1;
    if (*end) {
        switch (*end) {
        case 's':
            break;
        case 'm':
            unit = 60;
            break;
        case 'h':
            unit = 3600;
            break;
        case 'd':
            unit = 86400;
            break;
        default:
            return -1;
        }
        if (end[1])
            return -1;
    }
    if (v > max / unit)
        return -1;
    v *= unit;
    if (v < min)
        return -1;
    *out = v;
    return 0;
}

char *es_cli_read_input(const char *path, const char *what)
{
    int err = 0;
    char *s = rt_file_read(path, 1 << 20, NULL, &err);
    if (!s)
        fprintf(stderr, "edge-sim: cannot read %s %s: %s\n", what, path,
                err == EFBIG ? "larger than 1 MiB" : strerror(err));
    return s;
}

int es_cli_write_private(const char *path, const void *data, size_t len)
{
    int rc = rt_file_write_private_len(path, data, len);
    if (rc < 0)
        fprintf(stderr, "edge-sim: cannot write %s: %s\n", path, strerror(errno));
    return rc;
}

int es_cli_cert_key(WC_RNG *rng, const char *csr_path, char **key, char **pub)
{
    *key = *pub = NULL;
    if (!csr_path) {
        if (px_pki_keygen(rng, key) == 0 && px_pki_pubkey(*key, pub) == 0)
            return 0;
        fprintf(stderr, "edge-sim: cannot generate a key\n");
        free(*key);
        *key = NULL;
        return -1;
    }
    char *csr = es_cli_read_input(csr_path, "certificate request"), *cn = NULL;
    if (!csr)
        return -1;
    int r = px_cert_csr_read(csr, strlen(csr), pub, &cn);
    free(csr);
    free(cn);
    if (r < 0) {
        fprintf(stderr, "edge-sim: %s is not a usable certificate request: %s\n", csr_path,
                r == PX_ERR_CRYPTO ? "only P-256 (EC prime256v1) keys are supported"
                                   : "malformed, or its signature does not verify");
        *pub = NULL;
        return -1;
    }
    return 0;
}

int es_cli_cert_info(const char *cert_pem, struct px_cert_info *ci)
{
    struct px_der *der = NULL;
    size_t nd = 0;
    int rc = -1;
    if (px_cert_pem_split(cert_pem, strlen(cert_pem), &der, &nd) == 0 &&
        px_cert_info(der[0].der, der[0].len, ci) == 0)
        rc = 0;
    else
        fprintf(stderr, "edge-sim: cannot read back the issued certificate\n");
    px_der_free(der, nd);
    return rc;
}
