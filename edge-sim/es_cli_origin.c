/* edge-sim origin-cert, origin-ca and origin-pull-ca: the certificates of the
 * last hop, between the connector and the origin. An origin installs a server
 * certificate from the edge's origin CA (connectors trust that CA with no
 * file to copy), and trusts the origin-pull CA to know that a request came
 * through a tunnel (and which one: SAN URI tunnel:<id>). Nothing here touches
 * the database: the CAs are files in the data dir. */
#include "es_cli.h"
#include "px_cert.h"
#include "px_err.h"
#include "px_hostname.h"
#include "px_pki.h"
#include "rt_file.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_HOSTNAMES 100 /* SANs per certificate */

/* A DNS name (or *.wildcard), lower-cased into out, or an IP literal as
 * given. Returns 0 or -1. */
static int origin_name(const char *in, char *out, size_t outlen)
{
    unsigned char ip[16];
    if (inet_pton(AF_INET, in, ip) == 1 || inet_pton(AF_INET6, in, ip) == 1) {
        if (strlen(in) >= outlen)
            return -1;
        snprintf(out, outlen, "%s", in);
        return 0;
    }
    if (!px_host_pattern_valid(in) || strlen(in) >= outlen)
        return -1;
    size_t i = 0;
    for (; in[i]; i++)
        out[i] = (char)(in[i] >= 'A' && in[i] <= 'Z' ? in[i] - 'A' + 'a' : in[i]);
    out[i] = '\0';
    return 0;
}

struct oc_opts {
    struct es_where w;
    const char *out, *csr;
    char *names[MAX_HOSTNAMES]; /* owned, normalised */
    size_t n_names;
    int days;
};

static int origin_cert_create(struct es_offline *o, const struct oc_opts *op)
{
    char *key = NULL, *pub = NULL, *cert = NULL;
    struct px_cert_info ci;
    int have_ci = 0, rc = 1, r;
    char kp[4096], cp[4096];
    int nk = snprintf(kp, sizeof(kp), "%s/%s.key", op->out, op->names[0]);
    int nc = snprintf(cp, sizeof(cp), "%s/%s.pem", op->out, op->names[0]);
    if (nk < 0 || (size_t)nk >= sizeof(kp) || nc < 0 || (size_t)nc >= sizeof(cp)) {
        fprintf(stderr, "edge-sim: --out path too long\n");
        return 2;
    }
    if (es_cli_cert_key(&o->rng, op->csr, &key, &pub) < 0)
        goto out;
    r = es_certs_issue_origin(&o->certs, (const char *const *)op->names, op->n_names, pub, op->days,
                              &cert);
    if (r < 0) {
        fprintf(stderr, "edge-sim: cannot issue the certificate: %s\n", px_strerror(r));
        goto out;
    }
    if (es_cli_cert_info(cert, &ci) < 0)
        goto out;
    have_ci = 1;
    if (mkdir(op->out, 0700) < 0 && errno != EEXIST) {
        fprintf(stderr, "edge-sim: cannot create %s: %s\n", op->out, strerror(errno));
        goto out;
    }
    /* The key first: a certificate without its key is of no use. */
    if ((key && es_cli_write_private(kp, key, strlen(key)) < 0) ||
        es_cli_write_private(cp, cert, strlen(cert)) < 0)
        goto out;
    char na[21];
    px_cert_time(ci.not_after, na);
    fprintf(stderr, "edge-sim: issued origin certificate %s for", ci.subject);
    for (size_t i = 0; i < op->n_names; i++)
        fprintf(stderr, " %s", op->names[i]);
    fprintf(stderr, " (serial %s), valid until %s\n", ci.serial, na);
    if (op->csr)
        fprintf(stderr, "edge-sim: wrote %s (the key stayed with the request's owner)\n", cp);
    else
        fprintf(stderr, "edge-sim: wrote %s and %s\n", cp, kp);
    rc = 0;
out:
    if (have_ci)
        px_cert_info_cleanup(&ci);
    free(key);
    free(pub);
    free(cert);
    return rc;
}

/* --hostname: one more name for the certificate. Returns 0, or -1 with the
 * exit code in *rc (2 after saying why the name cannot be, 1: no memory). */
static int add_name(struct oc_opts *op, const char *arg, int *rc)
{
    char name[256];
    if (op->n_names == MAX_HOSTNAMES)
        *rc = es_cli_fail("too many --hostname (at most 100)", NULL);
    else if (origin_name(arg, name, sizeof(name)) < 0)
        *rc = es_cli_fail("--hostname must be a hostname, *.suffix or IP address: ", arg);
    else if (!(op->names[op->n_names] = strdup(name)))
        *rc = 1;
    else {
        op->n_names++;
        return 0;
    }
    return -1;
}

int es_cli_origin_cert(int argc, char **argv)
{
    static const struct option opts[] = {ES_CLI_WHERE_OPTS,           RT_CLI_ARG("out", 'o'),
                                         RT_CLI_ARG("days", 'n'),     RT_CLI_ARG("csr", 'c'),
                                         RT_CLI_ARG("hostname", 'H'), RT_CLI_END};
    struct oc_opts op = {.w = es_where_default(), .days = ES_ORIGIN_CERT_DAYS};
    const struct rt_cli_keep keep[] = {
        ES_CLI_WHERE_KEEP(op.w), {'o', &op.out}, {'c', &op.csr}, {0, NULL}};
    int rc = 2;
    struct rt_cli cli;
    rt_cli_start(&cli, argc, argv, opts, keep);
    int c;
    unsigned long days;
    while ((c = rt_cli_next(&cli)) > 0) {
        switch (c) {
        case 'n':
            if (es_cli_days(optarg, ES_ORIGIN_CERT_MAX_DAYS, &days) != 0)
                goto out;
            op.days = (int)days;
            break;
        case 'H':
            if (add_name(&op, optarg, &rc) < 0)
                goto out;
            break;
        }
    }
    if (c < 0) {
        es_cli_bad_option(&cli);
        goto out;
    }
    if (!rt_cli_word(&cli, 0) || strcmp(rt_cli_word(&cli, 0), "create") != 0) {
        es_cli_fail("origin-cert needs the subcommand create", NULL);
        goto out;
    }
    if (rt_cli_word(&cli, 1)) {
        es_cli_fail("unexpected argument ", rt_cli_word(&cli, 1));
        goto out;
    }
    if (op.n_names == 0 || !op.out) {
        es_cli_fail("origin-cert create needs --hostname NAME and --out DIR", NULL);
        goto out;
    }
    struct es_offline o;
    if (es_offline_open(&o, &op.w) < 0) {
        rc = 1;
        goto out;
    }
    rc = origin_cert_create(&o, &op);
    es_offline_close(&o);
out:
    for (size_t i = 0; i < op.n_names; i++)
        free(op.names[i]);
    return rc;
}

int es_cli_origin_ca(int argc, char **argv)
{
    return es_cli_print_ca(argc, argv, ES_CLI_ORIGIN_CA);
}

int es_cli_origin_pull_ca(int argc, char **argv)
{
    return es_cli_print_ca(argc, argv, ES_CLI_ORIGIN_PULL_CA);
}
