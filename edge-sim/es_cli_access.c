/* edge-sim client-cert, client-ca and access: who may come in. Each
 * subcommand changes the database in one transaction; a running serve picks
 * the change up within a second (es_store_changed). */
#include "es_access.h"
#include "es_assert.h"
#include "es_cli.h"
#include "es_op.h"
#include "es_store_access.h"
#include "px_cert.h"
#include "px_err.h"
#include "px_hostname.h"
#include "px_jwt.h"
#include "px_pki.h"
#include "rt_file.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define MAX_LIST 64 /* --ca / --allow-subject / --allow-fingerprint each */

static void fmt_time(long long t, char out[21])
{
    px_cert_time(t, out);
}

/* dir/name.ext into out (size outlen). Returns 0 or -1 (too long). */
static int out_path(char *out, size_t outlen, const char *dir, const char *name, const char *ext)
{
    int n = snprintf(out, outlen, "%s/%s%s", dir, name, ext);
    return n > 0 && (size_t)n < outlen ? 0 : -1;
}

static int read_password(const char *file, char **out)
{
    char *s = es_cli_read_input(file, "password file");
    if (!s)
        return -1;
    size_t n = strcspn(s, "\r\n");
    s[n] = '\0';
    if (n == 0) {
        fprintf(stderr, "edge-sim: the password file %s is empty\n", file);
        free(s);
        return -1;
    }
    *out = s;
    return 0;
}

struct cc_opts {
    struct es_where w;
    const char *out, *csr, *pwfile;
    unsigned long days;
};

static int cert_create(struct es_offline *o, const char *name, const struct cc_opts *op)
{
    char *pw = NULL, *csr = NULL;
    struct es_op_client_cert cc = {0};
    int rc = 1, r;
    char kp[4096], cp[4096], pp[4096], why[1024];
    if (out_path(kp, sizeof(kp), op->out, name, ".key") < 0 ||
        out_path(cp, sizeof(cp), op->out, name, ".pem") < 0 ||
        out_path(pp, sizeof(pp), op->out, name, ".p12") < 0) {
        fprintf(stderr, "edge-sim: --out path too long\n");
        return 2;
    }
    if (mkdir(op->out, 0700) < 0 && errno != EEXIST) {
        fprintf(stderr, "edge-sim: cannot create %s: %s\n", op->out, strerror(errno));
        return 1;
    }
    if (op->pwfile && read_password(op->pwfile, &pw) < 0)
        goto out;
    if (op->csr && !(csr = es_cli_read_input(op->csr, "certificate request")))
        goto out;
    struct es_op_ctx ctx = es_cli_op_ctx(o);
    r = es_op_client_cert_create(&ctx, name, op->days, csr, pw, &cc, why, sizeof(why));
    if (r < 0) {
        /* The name and days were checked above: with a CSR, INVAL is the CSR's. */
        int csr_bad = op->csr && r == PX_ERR_INVAL;
        fprintf(stderr, "edge-sim: %s%s%s\n", csr_bad ? op->csr : "", csr_bad ? ": " : "", why);
        goto out;
    }
    if (es_cli_write_private(cp, cc.cert, strlen(cc.cert)) < 0 ||
        (cc.key && es_cli_write_private(kp, cc.key, strlen(cc.key)) < 0) ||
        (cc.p12 && es_cli_write_private(pp, cc.p12, cc.p12_len) < 0))
        goto out;
    char na[21];
    fmt_time(cc.info.not_after, na);
    fprintf(stderr, "edge-sim: issued %s (serial %s, SHA-256 %s), valid until %s\n",
            cc.info.subject, cc.info.serial, cc.info.sha256_hex, na);
    if (op->csr) {
        fprintf(stderr, "edge-sim: wrote %s (the key stayed with the request's owner)\n", cp);
    } else {
        fprintf(stderr, "edge-sim: wrote %s, %s and %s (import the .p12 into a browser or phone)\n",
                cp, kp, pp);
        if (cc.password_made)
            fprintf(stderr, "edge-sim: PKCS#12 password: %s\n", cc.password);
    }
    rc = 0;
out:
    es_op_client_cert_cleanup(&cc);
    if (pw)
        memset(pw, 0, strlen(pw));
    free(pw);
    free(csr);
    return rc;
}

static int cert_list(struct es_offline *o)
{
    struct es_client_cert_rec *c;
    size_t n;
    if (es_store_client_cert_list(&o->store, &c, &n) < 0) {
        fprintf(stderr, "edge-sim: cannot read the certificates\n");
        return 1;
    }
    long long now = (long long)time(NULL);
    printf("%-20s %-34s %-20s %-8s %s\n", "NAME", "SERIAL", "NOT AFTER", "STATUS",
           "SHA-256 FINGERPRINT");
    for (size_t i = 0; i < n; i++) {
        char na[21];
        fmt_time(c[i].not_after, na);
        const char *st = c[i].revoked ? "revoked" : c[i].not_after < now ? "expired" : "valid";
        printf("%-20s %-34s %-20s %-8s %s\n", c[i].name, c[i].serial, na, st, c[i].fingerprint);
    }
    es_store_client_certs_free(c, n);
    return 0;
}

int es_cli_client_cert(int argc, char **argv)
{
    static const struct option opts[] = {ES_CLI_WHERE_OPTS,
                                         RT_CLI_ARG("out", 'o'),
                                         RT_CLI_ARG("days", 'n'),
                                         RT_CLI_ARG("csr", 'c'),
                                         RT_CLI_ARG("p12-password-file", 'p'),
                                         RT_CLI_END};
    struct cc_opts op = {.w = es_where_default(), .days = 365};
    const struct rt_cli_keep keep[] = {
        ES_CLI_WHERE_KEEP(op.w), {'o', &op.out}, {'c', &op.csr}, {'p', &op.pwfile}, {0, NULL}};
    struct rt_cli cli;
    rt_cli_start(&cli, argc, argv, opts, keep);
    int c;
    while ((c = rt_cli_next(&cli)) > 0) {
        if (c == 'n' && es_cli_days(optarg, 36500, &op.days) != 0)
            return 2;
    }
    if (c < 0)
        return es_cli_bad_option(&cli);
    const char *sub, *name;
    if (es_cli_words(&cli, "client-cert needs a subcommand: create, list or revoke", &sub, &name) !=
        0)
        return 2;
    int create = strcmp(sub, "create") == 0;
    if (create && (!name || !es_cli_valid_name(name)))
        return es_cli_fail("client-cert create needs a NAME of letters, digits, '-', '_' or '.'",
                           NULL);
    if (create && !op.out)
        return es_cli_fail("client-cert create needs --out DIR", NULL);
    if (create && op.csr && op.pwfile)
        return es_cli_fail("--p12-password-file has no use with --csr (no key, no .p12)", NULL);
    if (!create && (op.out || op.csr || op.pwfile))
        return es_cli_fail("--out, --csr and --p12-password-file go with create", NULL);
    if (strcmp(sub, "revoke") == 0 && !name)
        return es_cli_fail("client-cert revoke needs a NAME or SERIAL", NULL);
    if (!create && strcmp(sub, "list") && strcmp(sub, "revoke"))
        return es_cli_fail("unknown client-cert subcommand ", sub);
    struct es_offline o;
    if (es_offline_open(&o, &op.w) < 0)
        return 1;
    int rc = 1;
    if (create) {
        rc = cert_create(&o, name, &op);
    } else if (strcmp(sub, "list") == 0) {
        rc = cert_list(&o);
    } else {
        size_t n = 0;
        char why[512];
        struct es_op_ctx ctx = es_cli_op_ctx(&o);
        int r = es_op_client_cert_revoke(&ctx, name, &n, why, sizeof(why));
        if (r < 0)
            fprintf(stderr, "edge-sim: %s\n", why);
        else if (n == 0)
            fprintf(stderr, "edge-sim: %s was already revoked\n", name), rc = 0;
        else
            fprintf(stderr, "edge-sim: revoked %zu certificate(s) matching %s\n", n, name), rc = 0;
    }
    es_offline_close(&o);
    return rc;
}

/* ---- client-ca ---- */

static int ca_list(struct es_offline *o)
{
    struct es_client_ca_rec *c;
    size_t n;
    if (es_store_client_ca_list(&o->store, &c, &n) < 0) {
        fprintf(stderr, "edge-sim: cannot read the client CAs\n");
        return 1;
    }
    printf("%-20s %-5s %-20s %s\n", "NAME", "CRL", "UPDATED", "SUBJECT");
    printf("%-20s %-5s %-20s %s\n", ES_ACCESS_EDGE_CA, "-", "-",
           "(built in: certificates from edge-sim client-cert create)");
    for (size_t i = 0; i < n; i++) {
        char up[21];
        fmt_time(c[i].updated, up);
        struct px_der *d = NULL;
        size_t nd = 0;
        struct px_cert_info ci;
        int ok = px_cert_pem_split(c[i].cert_pem, strlen(c[i].cert_pem), &d, &nd) == 0 &&
                 px_cert_info(d[0].der, d[0].len, &ci) == 0;
        printf("%-20s %-5s %-20s %s%s\n", c[i].name, c[i].crl_pem ? "yes" : "no", up,
               ok ? ci.subject : "(unreadable)", nd > 1 ? " (+ more)" : "");
        if (ok)
            px_cert_info_cleanup(&ci);
        px_der_free(d, nd);
    }
    es_store_client_cas_free(c, n);
    return 0;
}

int es_cli_client_ca(int argc, char **argv)
{
    static const struct option opts[] = {ES_CLI_WHERE_OPTS, RT_CLI_ARG("cert", 'c'),
                                         RT_CLI_ARG("crl", 'r'), RT_CLI_END};
    const char *certf = NULL, *crlf = NULL;
    struct es_where w = es_where_default();
    const struct rt_cli_keep keep[] = {
        ES_CLI_WHERE_KEEP(w), {'c', &certf}, {'r', &crlf}, {0, NULL}};
    struct rt_cli cli;
    rt_cli_start(&cli, argc, argv, opts, keep);
    if (rt_cli_next(&cli) < 0)
        return es_cli_bad_option(&cli);
    const char *sub, *name;
    if (es_cli_words(&cli, "client-ca needs a subcommand: add, update, list or delete", &sub,
                     &name) != 0)
        return 2;
    int is_add = !strcmp(sub, "add"), is_update = !strcmp(sub, "update");
    if (strcmp(sub, "list") && (!name || !es_cli_valid_name(name)))
        return es_cli_fail("client-ca needs a NAME of letters, digits, '-', '_' or '.'", NULL);
    if (is_add && !certf)
        return es_cli_fail("client-ca add needs --cert FILE", NULL);
    if (is_update && (!crlf || certf))
        return es_cli_fail("client-ca update takes --crl FILE (to change the CA itself, delete "
                           "and add it)",
                           NULL);
    if (!is_add && !is_update && (certf || crlf))
        return es_cli_fail("--cert and --crl go with add or update", NULL);
    if (!is_add && !is_update && strcmp(sub, "list") && strcmp(sub, "delete"))
        return es_cli_fail("unknown client-ca subcommand ", sub);
    struct es_offline o;
    if (es_offline_open(&o, &w) < 0)
        return 1;
    struct es_op_ctx ctx = es_cli_op_ctx(&o);
    int rc = 1, r;
    char *pem = NULL, *crl = NULL, why[1024];
    if (!strcmp(sub, "list")) {
        rc = ca_list(&o);
        goto out;
    }
    if (!strcmp(sub, "delete")) {
        r = es_op_client_ca_delete(&ctx, name, why, sizeof(why));
        if (r < 0)
            fprintf(stderr, "edge-sim: %s\n", why);
        else
            fprintf(stderr, "edge-sim: deleted client CA %s\n", name), rc = 0;
        goto out;
    }
    if (certf && !(pem = es_cli_read_input(certf, "CA file")))
        goto out;
    if (crlf && !(crl = es_cli_read_input(crlf, "CRL")))
        goto out;
    r = is_add ? es_op_client_ca_add(&ctx, name, pem, crl, why, sizeof(why))
               : es_op_client_ca_update(&ctx, name, crl, why, sizeof(why));
    if (r < 0)
        fprintf(stderr, "edge-sim: %s\n", why);
    else
        fprintf(stderr, "edge-sim: %s client CA %s%s\n", is_add ? "added" : "updated the CRL of",
                name, is_add && crl ? " with its CRL" : ""),
            rc = 0;
out:
    free(pem);
    free(crl);
    es_offline_close(&o);
    return rc;
}

/* ---- access ---- */

static void print_list(char *const *v, size_t n)
{
    if (n == 0)
        printf("-");
    for (size_t i = 0; i < n; i++)
        printf("%s%s", i ? "," : "", v[i]);
}

/* v joined with ',' ("-" when empty), malloc'd; NULL when out of memory. */
static char *join_list(char *const *v, size_t n)
{
    size_t len = 2;
    for (size_t i = 0; i < n; i++)
        len += strlen(v[i]) + 1;
    char *s = malloc(len), *w = s;
    if (!s)
        return NULL;
    strcpy(s, "-");
    for (size_t i = 0; i < n; i++) {
        size_t k = strlen(v[i]);
        if (i)
            *w++ = ',';
        memcpy(w, v[i], k);
        w += k;
        *w = '\0';
    }
    return s;
}

static size_t max_len(size_t a, const char *s)
{
    size_t n = strlen(s);
    return n > a ? n : a;
}

/* The policies as a table whose columns are as wide as their widest value
 * (bug: access list table), so every value starts under its heading. */
static int policy_list(struct es_offline *o)
{
    struct es_policy_rec *p;
    size_t n;
    if (es_store_policy_list(&o->store, &p, &n) < 0) {
        fprintf(stderr, "edge-sim: cannot read the access policies\n");
        return 1;
    }
    int rc = 1;
    char **cas = calloc(n ? n : 1, sizeof(*cas));
    if (!cas)
        goto out;
    size_t w_host = 30, w_cas = 20, w_aud = 10;
    for (size_t i = 0; i < n; i++) {
        if (!(cas[i] = join_list(p[i].cas, p[i].n_cas)))
            goto out;
        w_host = max_len(w_host, p[i].pattern);
        w_cas = max_len(w_cas, cas[i]);
        w_aud = max_len(w_aud, p[i].audience ? p[i].audience : "(hostname)");
    }
    char issuer[128];
    if (es_assert_issuer_load(&o->rng, &o->store, 1, issuer, sizeof(issuer)) == 0)
        printf("issuer: %s\n", issuer);
    printf("%-*s %-*s %-*s %s\n", (int)w_host, "HOSTNAMES", (int)w_cas, "CAS", (int)w_aud,
           "AUDIENCE", "ALLOWED SUBJECTS / SHA-256");
    for (size_t i = 0; i < n; i++) {
        printf("%-*s %-*s %-*s ", (int)w_host, p[i].pattern, (int)w_cas, cas[i], (int)w_aud,
               p[i].audience ? p[i].audience : "(hostname)");
        if (!p[i].n_subjects && !p[i].n_fingerprints) {
            printf("(any the CAs issued)\n");
            continue;
        }
        print_list(p[i].subjects, p[i].n_subjects);
        printf(" / ");
        print_list(p[i].fingerprints, p[i].n_fingerprints);
        printf("\n");
    }
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "edge-sim: cannot list the access policies: %s\n",
                px_strerror(PX_ERR_NOMEM));
    for (size_t i = 0; cas && i < n; i++)
        free(cas[i]);
    free(cas);
    es_store_policies_free(p, n);
    return rc;
}

static int rotate_key(struct es_offline *o)
{
    char kid[44], why[512];
    struct es_op_ctx ctx = es_cli_op_ctx(o);
    if (es_op_access_rotate_key(&ctx, kid, why, sizeof(why)) < 0) {
        fprintf(stderr, "edge-sim: %s\n", why);
        return 1;
    }
    fprintf(stderr,
            "edge-sim: new signing key %s; the previous one stays published for %d s, until "
            "every assertion it signed has expired\n",
            kid, ES_ASSERT_PUBLISH_AFTER_RETIRE);
    return 0;
}

int es_cli_access(int argc, char **argv)
{
    static const struct option opts[] = {ES_CLI_WHERE_OPTS,
                                         RT_CLI_FLAG("require-cert", 'r'),
                                         RT_CLI_ARG("ca", 'c'),
                                         RT_CLI_ARG("allow-subject", 's'),
                                         RT_CLI_ARG("allow-fingerprint", 'f'),
                                         RT_CLI_ARG("audience", 'a'),
                                         RT_CLI_END};
    struct es_where w = es_where_default();
    const char *cas[MAX_LIST], *subjects[MAX_LIST], *fps[MAX_LIST];
    char fpbuf[65];
    size_t n_cas = 0, n_subj = 0, n_fp = 0;
    const char *audience = NULL;
    int require = 0, setopts = 0;
    const struct rt_cli_keep keep[] = {ES_CLI_WHERE_KEEP(w), {0, NULL}};
    struct rt_cli cli;
    rt_cli_start(&cli, argc, argv, opts, keep);
    int c;
    while ((c = rt_cli_next(&cli)) > 0) {
        setopts = 1; /* any option but where the state is */
        switch (c) {
        case 'r':
            require = 1;
            break;
        case 'c':
            if (n_cas == MAX_LIST || !es_cli_valid_name(optarg))
                return es_cli_fail("--ca needs a client CA name (at most 64 of them): ", optarg);
            cas[n_cas++] = optarg;
            break;
        case 's': {
            regex_t re;
            if (n_subj == MAX_LIST || strlen(optarg) > 1024)
                return es_cli_fail("too many or too long --allow-subject patterns", NULL);
            if (regcomp(&re, optarg, REG_EXTENDED | REG_NOSUB) != 0)
                return es_cli_fail("--allow-subject is not an extended regular expression: ",
                                   optarg);
            regfree(&re);
            subjects[n_subj++] = optarg;
            break;
        }
        case 'f':
            if (n_fp == MAX_LIST || es_op_fingerprint(optarg, fpbuf) < 0)
                return es_cli_fail("--allow-fingerprint needs a SHA-256 fingerprint (64 hex "
                                   "digits, colons allowed): ",
                                   optarg);
            fps[n_fp++] = optarg;
            break;
        case 'a':
            if (!optarg[0] || strlen(optarg) > 512)
                return es_cli_fail("--audience must be 1-512 characters", NULL);
            audience = optarg;
            break;
        }
    }
    if (c < 0)
        return es_cli_bad_option(&cli);
    const char *sub, *arg;
    if (es_cli_words(&cli, "access needs a subcommand: set, list, delete or rotate-key", &sub,
                     &arg) != 0)
        return 2;
    int is_set = !strcmp(sub, "set");
    if (!is_set && setopts)
        return es_cli_fail("policy options go with access set", NULL);
    char pattern[256];
    if (is_set || !strcmp(sub, "delete")) {
        if (es_op_pattern(arg, pattern) < 0)
            return es_cli_fail("access needs a hostname or *.suffix pattern", NULL);
    } else if (arg) {
        return es_cli_fail("unexpected argument ", arg);
    }
    if (is_set && !require)
        return es_cli_fail("access set needs --require-cert (the one kind of policy there is)",
                           NULL);
    if (!is_set && strcmp(sub, "list") && strcmp(sub, "delete") && strcmp(sub, "rotate-key"))
        return es_cli_fail("unknown access subcommand ", sub);
    struct es_offline o;
    if (es_offline_open(&o, &w) < 0)
        return 1;
    struct es_op_ctx ctx = es_cli_op_ctx(&o);
    char why[1024];
    int rc = 1, r;
    if (!strcmp(sub, "list")) {
        rc = policy_list(&o);
    } else if (!strcmp(sub, "rotate-key")) {
        rc = rotate_key(&o);
    } else if (!strcmp(sub, "delete")) {
        r = es_op_access_delete(&ctx, pattern, why, sizeof(why));
        if (r < 0)
            fprintf(stderr, "edge-sim: %s\n", why);
        else
            fprintf(stderr, "edge-sim: %s is open again (no client certificate asked)\n", pattern),
                rc = 0;
    } else {
        struct es_op_policy p = {.pattern = pattern,
                                 .cas = cas,
                                 .n_cas = n_cas,
                                 .subjects = subjects,
                                 .n_subjects = n_subj,
                                 .fingerprints = fps,
                                 .n_fingerprints = n_fp,
                                 .audience = audience};
        r = es_op_access_set(&ctx, &p, why, sizeof(why));
        if (r < 0)
            fprintf(stderr, "edge-sim: %s\n", why);
        else
            fprintf(stderr, "edge-sim: %s now requires a client certificate\n", pattern), rc = 0;
    }
    es_offline_close(&o);
    return rc;
}
