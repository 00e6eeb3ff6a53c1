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
#include <getopt.h>
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
    const char *dir, *out, *csr;
    char *names[MAX_HOSTNAMES]; /* owned, normalised */
    size_t n_names;
    int days;
};

static int origin_cert_create(struct es_offline *o, const struct oc_opts *op)
{
    char *key = NULL, *pub = NULL, *cert = NULL, *csr = NULL, *csr_cn = NULL;
    struct px_der *der = NULL;
    size_t nd = 0;
    struct px_cert_info ci;
    int have_ci = 0, rc = 1, r;
    char kp[4096], cp[4096];
    int nk = snprintf(kp, sizeof(kp), "%s/%s.key", op->out, op->names[0]);
    int nc = snprintf(cp, sizeof(cp), "%s/%s.pem", op->out, op->names[0]);
    if (nk < 0 || (size_t)nk >= sizeof(kp) || nc < 0 || (size_t)nc >= sizeof(cp)) {
        fprintf(stderr, "edge-sim: --out path too long\n");
        return 2;
    }
    if (op->csr) {
        if (!(csr = es_cli_read_input(op->csr, "certificate request")))
            goto out;
        r = px_cert_csr_read(csr, strlen(csr), &pub, &csr_cn);
        if (r < 0) {
            fprintf(stderr, "edge-sim: %s is not a usable certificate request: %s\n", op->csr,
                    r == PX_ERR_CRYPTO ? "only P-256 (EC prime256v1) keys are supported"
                                       : "malformed, or its signature does not verify");
            goto out;
        }
    } else if (px_pki_keygen(&o->rng, &key) < 0 || px_pki_pubkey(key, &pub) < 0) {
        fprintf(stderr, "edge-sim: cannot generate a key\n");
        goto out;
    }
    r = es_certs_issue_origin(&o->certs, (const char *const *)op->names, op->n_names, pub, op->days,
                              &cert);
    if (r < 0) {
        fprintf(stderr, "edge-sim: cannot issue the certificate: %s\n", px_strerror(r));
        goto out;
    }
    if (px_cert_pem_split(cert, strlen(cert), &der, &nd) < 0 ||
        px_cert_info(der[0].der, der[0].len, &ci) < 0) {
        fprintf(stderr, "edge-sim: cannot read back the issued certificate\n");
        goto out;
    }
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
    px_der_free(der, nd);
    free(key);
    free(pub);
    free(cert);
    free(csr);
    free(csr_cn);
    return rc;
}

int es_cli_origin_cert(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data-dir", required_argument, 0, 'd'}, {"out", required_argument, 0, 'o'},
        {"days", required_argument, 0, 'n'},     {"csr", required_argument, 0, 'c'},
        {"hostname", required_argument, 0, 'H'}, {0, 0, 0, 0}};
    struct oc_opts op = {.dir = "edge-data", .days = ES_ORIGIN_CERT_DAYS};
    int rc = 2;
    optind = 0; /* 0 fully resets glibc's getopt state */
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            op.dir = optarg;
            break;
        case 'o':
            op.out = optarg;
            break;
        case 'c':
            op.csr = optarg;
            break;
        case 'H': {
            char name[256];
            if (op.n_names == MAX_HOSTNAMES) {
                es_cli_fail("too many --hostname (at most 100)", NULL);
                goto out;
            }
            if (origin_name(optarg, name, sizeof(name)) < 0) {
                es_cli_fail("--hostname must be a hostname, *.suffix or IP address: ", optarg);
                goto out;
            }
            if (!(op.names[op.n_names] = strdup(name))) {
                rc = 1;
                goto out;
            }
            op.n_names++;
            break;
        }
        case 'n': {
            char *end;
            errno = 0;
            unsigned long days = strtoul(optarg, &end, 10);
            if (errno || end == optarg || *end || optarg[0] < '0' || optarg[0] > '9' || days < 1 ||
                days > ES_ORIGIN_CERT_MAX_DAYS) {
                es_cli_fail("--days must be 1-36500: ", optarg);
                goto out;
            }
            op.days = (int)days;
            break;
        }
        default:
            es_cli_fail("unknown or incomplete option ", argv[optind - 1]);
            goto out;
        }
    }
    if (optind >= argc || strcmp(argv[optind], "create") != 0) {
        es_cli_fail("origin-cert needs the subcommand create", NULL);
        goto out;
    }
    if (optind + 1 < argc) {
        es_cli_fail("unexpected argument ", argv[optind + 1]);
        goto out;
    }
    if (op.n_names == 0 || !op.out) {
        es_cli_fail("origin-cert create needs --hostname NAME and --out DIR", NULL);
        goto out;
    }
    struct es_offline o;
    if (es_offline_open(&o, op.dir) < 0) {
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

/* origin-ca (pull 0) and origin-pull-ca (pull 1): prints that CA's PEM. */
static int print_ca(int argc, char **argv, int pull)
{
    static const struct option opts[] = {{"data-dir", required_argument, 0, 'd'}, {0, 0, 0, 0}};
    const char *dir = "edge-data";
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c != 'd')
            return es_cli_fail("unknown or incomplete option ", argv[optind - 1]);
        dir = optarg;
    }
    if (optind < argc)
        return es_cli_fail("unexpected argument ", argv[optind]);
    struct es_offline o;
    if (es_offline_open(&o, dir) < 0)
        return 1;
    fputs(pull ? o.certs.origin_pull_ca_pem : o.certs.origin_ca_pem, stdout);
    es_offline_close(&o);
    return 0;
}

int es_cli_origin_ca(int argc, char **argv)
{
    return print_ca(argc, argv, 0);
}

int es_cli_origin_pull_ca(int argc, char **argv)
{
    return print_ca(argc, argv, 1);
}
