/* edge-sim client-cert, client-ca and access: who may come in. Each
 * subcommand changes the database in one transaction; a running serve picks
 * the change up within a second (es_store_changed). */
#include "es_access.h"
#include "es_assert.h"
#include "es_cli.h"
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

/* A PKCS#12 password: 20 characters from an alphabet without look-alikes
 * (about 100 bits). */
static int make_password(WC_RNG *rng, char out[21])
{
    static const char abc[] = "abcdefghijkmnpqrstuvwxyzACDEFGHJKLMNPQRTUVWXY345679";
    unsigned char b[20];
    if (px_pki_random(rng, b, sizeof(b)) < 0)
        return -1;
    for (int i = 0; i < 20; i++)
        out[i] = abc[b[i] % (sizeof(abc) - 1)];
    out[20] = '\0';
    return 0;
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
    const char *dir, *out, *csr, *pwfile;
    unsigned long days;
};

static int cert_create(struct es_offline *o, const char *name, const struct cc_opts *op)
{
    char *key = NULL, *pub = NULL, *cert = NULL, *pw = NULL;
    unsigned char *p12 = NULL;
    size_t p12_len = 0;
    char gen_pw[21];
    struct px_cert_info ci = {0};
    int have_ci = 0, rc = 1, r;
    char kp[4096], cp[4096], pp[4096];
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
    if (!op->csr &&
        (op->pwfile ? read_password(op->pwfile, &pw) : make_password(&o->rng, gen_pw)) < 0)
        goto out;
    if (es_cli_cert_key(&o->rng, op->csr, &key, &pub) < 0)
        goto out;
    if (es_certs_issue_access(&o->certs, name, pub, (int)op->days, &cert) < 0) {
        fprintf(stderr, "edge-sim: cannot issue the certificate\n");
        goto out;
    }
    if (es_cli_cert_info(cert, &ci) < 0)
        goto out;
    have_ci = 1;
    if (!op->csr && px_pki_pkcs12(&o->rng, key, cert, o->certs.access_ca_pem, pw ? pw : gen_pw,
                                  name, &p12, &p12_len) < 0) {
        fprintf(stderr, "edge-sim: cannot make the PKCS#12 bundle\n");
        goto out;
    }
    struct es_client_cert_rec rec = {.name = (char *)name,
                                     .serial = ci.serial,
                                     .fingerprint = ci.sha256_hex,
                                     .subject = ci.subject,
                                     .not_before = ci.not_before,
                                     .not_after = ci.not_after,
                                     .created = (long long)time(NULL)};
    r = es_store_client_cert_add(&o->store, &rec);
    if (r == PX_ERR_EXISTS) {
        fprintf(stderr,
                "edge-sim: a valid certificate named %s exists; revoke it first "
                "(edge-sim client-cert revoke %s) or choose another name\n",
                name, name);
        goto out;
    }
    if (r < 0) {
        fprintf(stderr, "edge-sim: cannot record the certificate: %s\n", px_strerror(r));
        goto out;
    }
    if (es_cli_write_private(cp, cert, strlen(cert)) < 0 ||
        (key && es_cli_write_private(kp, key, strlen(key)) < 0) ||
        (p12 && es_cli_write_private(pp, p12, p12_len) < 0))
        goto out;
    char na[21];
    fmt_time(ci.not_after, na);
    fprintf(stderr, "edge-sim: issued %s (serial %s, SHA-256 %s), valid until %s\n", ci.subject,
            ci.serial, ci.sha256_hex, na);
    if (op->csr) {
        fprintf(stderr, "edge-sim: wrote %s (the key stayed with the request's owner)\n", cp);
    } else {
        fprintf(stderr, "edge-sim: wrote %s, %s and %s (import the .p12 into a browser or phone)\n",
                cp, kp, pp);
        if (!pw)
            fprintf(stderr, "edge-sim: PKCS#12 password: %s\n", gen_pw);
    }
    rc = 0;
out:
    if (have_ci)
        px_cert_info_cleanup(&ci);
    free(key);
    free(pub);
    free(cert);
    if (pw)
        memset(pw, 0, strlen(pw));
    free(pw);
    free(p12);
    memset(gen_pw, 0, sizeof(gen_pw));
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
    static const struct option opts[] = {RT_CLI_ARG("data-dir", 'd'),
                                         RT_CLI_ARG("out", 'o'),
                                         RT_CLI_ARG("days", 'n'),
                                         RT_CLI_ARG("csr", 'c'),
                                         RT_CLI_ARG("p12-password-file", 'p'),
                                         RT_CLI_END};
    struct cc_opts op = {.dir = "edge-data", .days = 365};
    const struct rt_cli_keep keep[] = {
        {'d', &op.dir}, {'o', &op.out}, {'c', &op.csr}, {'p', &op.pwfile}, {0, NULL}};
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
    if (es_offline_open(&o, op.dir) < 0)
        return 1;
    int rc = 1;
    if (create) {
        rc = cert_create(&o, name, &op);
    } else if (strcmp(sub, "list") == 0) {
        rc = cert_list(&o);
    } else {
        size_t n = 0;
        int r = es_store_client_cert_revoke(&o.store, name, (long long)time(NULL), &n);
        if (r == PX_ERR_NOT_FOUND)
            fprintf(stderr, "edge-sim: no certificate named or numbered %s\n", name);
        else if (r < 0)
            fprintf(stderr, "edge-sim: cannot revoke: %s\n", px_strerror(r));
        else if (n == 0)
            fprintf(stderr, "edge-sim: %s was already revoked\n", name), rc = 0;
        else
            fprintf(stderr, "edge-sim: revoked %zu certificate(s) matching %s\n", n, name), rc = 0;
    }
    es_offline_close(&o);
    return rc;
}

/* ---- client-ca ---- */

/* Checks a CA bundle, and crl (may be NULL) against it. Prints why. */
static int check_ca(const char *name, const char *pem, const char *crl)
{
    char why[512];
    if (es_access_validate_ca(pem, crl, why, sizeof(why)) < 0) {
        fprintf(stderr, "edge-sim: client CA %s: %s\n", name, why);
        return -1;
    }
    return 0;
}

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
    static const struct option opts[] = {RT_CLI_ARG("data-dir", 'd'), RT_CLI_ARG("cert", 'c'),
                                         RT_CLI_ARG("crl", 'r'), RT_CLI_END};
    const char *dir = "edge-data", *certf = NULL, *crlf = NULL;
    const struct rt_cli_keep keep[] = {{'d', &dir}, {'c', &certf}, {'r', &crlf}, {0, NULL}};
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
    if (es_offline_open(&o, dir) < 0)
        return 1;
    int rc = 1, r;
    char *pem = NULL, *crl = NULL, *used = NULL;
    long long now = (long long)time(NULL);
    if (!strcmp(sub, "list")) {
        rc = ca_list(&o);
        goto out;
    }
    if (!strcmp(sub, "delete")) {
        r = es_store_client_ca_delete(&o.store, name, &used);
        if (r == PX_ERR_DENIED)
            fprintf(stderr,
                    "edge-sim: the access policy for %s trusts %s; change or delete it first\n",
                    used ? used : "?", name);
        else if (r == PX_ERR_NOT_FOUND)
            fprintf(stderr, "edge-sim: no client CA named %s\n", name);
        else if (r < 0)
            fprintf(stderr, "edge-sim: cannot delete: %s\n", px_strerror(r));
        else
            fprintf(stderr, "edge-sim: deleted client CA %s\n", name), rc = 0;
        goto out;
    }
    if (certf && !(pem = es_cli_read_input(certf, "CA file")))
        goto out;
    if (crlf && !(crl = es_cli_read_input(crlf, "CRL")))
        goto out;
    if (is_update) {
        struct es_client_ca_rec *cas;
        size_t n;
        if (es_store_client_ca_list(&o.store, &cas, &n) < 0)
            goto out;
        for (size_t i = 0; i < n && !pem; i++)
            if (!strcmp(cas[i].name, name))
                pem = strdup(cas[i].cert_pem);
        es_store_client_cas_free(cas, n);
        if (!pem) {
            fprintf(stderr, "edge-sim: no client CA named %s\n", name);
            goto out;
        }
    }
    if (check_ca(name, pem, crl) < 0)
        goto out;
    if (is_add) {
        struct es_client_ca_rec rec = {
            .name = (char *)name, .cert_pem = pem, .crl_pem = crl, .created = now};
        r = es_store_client_ca_add(&o.store, &rec);
    } else {
        r = es_store_client_ca_set_crl(&o.store, name, crl, now);
    }
    if (r == PX_ERR_EXISTS)
        fprintf(stderr, "edge-sim: a client CA named %s exists\n", name);
    else if (r < 0)
        fprintf(stderr, "edge-sim: cannot store the CA: %s\n", px_strerror(r));
    else
        fprintf(stderr, "edge-sim: %s client CA %s%s\n", is_add ? "added" : "updated the CRL of",
                name, is_add && crl ? " with its CRL" : ""),
            rc = 0;
out:
    free(pem);
    free(crl);
    free(used);
    es_offline_close(&o);
    return rc;
}

/* ---- access ---- */

/* A SHA-256 fingerprint as lower-case hex without separators, into out[65]. */
static int norm_fingerprint(const char *in, char out[65])
{
    size_t k = 0;
    for (const char *p = in; *p; p++) {
        if (*p == ':')
            continue;
        char ch = *p >= 'A' && *p <= 'F' ? (char)(*p - 'A' + 'a') : *p;
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')) || k == 64)
            return -1;
        out[k++] = ch;
    }
    out[k] = '\0';
    return k == 64 ? 0 : -1;
}

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
    char *key = NULL;
    char kid[44];
    long long now = (long long)time(NULL);
    int rc = px_pki_keygen(&o->rng, &key);
    if (rc == 0)
        rc = px_jwt_kid(key, kid);
    if (rc == 0) {
        struct es_signing_key_rec k = {.kid = kid, .key_pem = key, .created = now};
        rc = es_store_signing_key_add(&o->store, &k, 0);
    }
    if (rc == 0)
        rc = es_store_signing_key_prune(&o->store, now - ES_ASSERT_PUBLISH_AFTER_RETIRE);
    free(key);
    if (rc < 0) {
        fprintf(stderr, "edge-sim: cannot add a signing key: %s\n", px_strerror(rc));
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
    static const struct option opts[] = {RT_CLI_ARG("data-dir", 'd'),
                                         RT_CLI_FLAG("require-cert", 'r'),
                                         RT_CLI_ARG("ca", 'c'),
                                         RT_CLI_ARG("allow-subject", 's'),
                                         RT_CLI_ARG("allow-fingerprint", 'f'),
                                         RT_CLI_ARG("audience", 'a'),
                                         RT_CLI_END};
    const char *dir = "edge-data";
    char *cas[MAX_LIST], *subjects[MAX_LIST], *fps[MAX_LIST];
    char fpbuf[MAX_LIST][65];
    size_t n_cas = 0, n_subj = 0, n_fp = 0;
    const char *audience = NULL;
    int require = 0, setopts = 0;
    const struct rt_cli_keep keep[] = {{'d', &dir}, {0, NULL}};
    struct rt_cli cli;
    rt_cli_start(&cli, argc, argv, opts, keep);
    int c;
    while ((c = rt_cli_next(&cli)) > 0) {
        setopts = 1; /* any option but --data-dir */
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
            if (n_fp == MAX_LIST || norm_fingerprint(optarg, fpbuf[n_fp]) < 0)
                return es_cli_fail("--allow-fingerprint needs a SHA-256 fingerprint (64 hex "
                                   "digits, colons allowed): ",
                                   optarg);
            fps[n_fp] = fpbuf[n_fp];
            n_fp++;
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
        if (!arg || strlen(arg) >= sizeof(pattern) || !px_host_pattern_valid(arg))
            return es_cli_fail("access needs a hostname or *.suffix pattern", NULL);
        size_t i = 0;
        for (; arg[i]; i++)
            pattern[i] = arg[i] >= 'A' && arg[i] <= 'Z' ? (char)(arg[i] - 'A' + 'a') : arg[i];
        pattern[i] = '\0';
    } else if (arg) {
        return es_cli_fail("unexpected argument ", arg);
    }
    if (is_set && !require)
        return es_cli_fail("access set needs --require-cert (the one kind of policy there is)",
                           NULL);
    if (!is_set && strcmp(sub, "list") && strcmp(sub, "delete") && strcmp(sub, "rotate-key"))
        return es_cli_fail("unknown access subcommand ", sub);
    struct es_offline o;
    if (es_offline_open(&o, dir) < 0)
        return 1;
    int rc = 1, r;
    if (!strcmp(sub, "list")) {
        rc = policy_list(&o);
    } else if (!strcmp(sub, "rotate-key")) {
        rc = rotate_key(&o);
    } else if (!strcmp(sub, "delete")) {
        r = es_store_policy_delete(&o.store, pattern);
        if (r == PX_ERR_NOT_FOUND)
            fprintf(stderr, "edge-sim: no access policy for %s\n", pattern);
        else if (r < 0)
            fprintf(stderr, "edge-sim: cannot delete: %s\n", px_strerror(r));
        else
            fprintf(stderr, "edge-sim: %s is open again (no client certificate asked)\n", pattern),
                rc = 0;
    } else {
        char *edge = ES_ACCESS_EDGE_CA;
        struct es_policy_rec p = {.pattern = pattern,
                                  .cas = n_cas ? cas : &edge,
                                  .n_cas = n_cas ? n_cas : 1,
                                  .subjects = subjects,
                                  .n_subjects = n_subj,
                                  .fingerprints = fps,
                                  .n_fingerprints = n_fp,
                                  .audience = (char *)audience,
                                  .created = (long long)time(NULL)};
        char *missing = NULL;
        r = es_store_policy_set(&o.store, &p, &missing);
        if (r == PX_ERR_NOT_FOUND)
            fprintf(stderr, "edge-sim: no client CA named %s (see edge-sim client-ca list)\n",
                    missing ? missing : "?");
        else if (r < 0)
            fprintf(stderr, "edge-sim: cannot store the policy: %s\n", px_strerror(r));
        else
            fprintf(stderr, "edge-sim: %s now requires a client certificate\n", pattern), rc = 0;
        free(missing);
    }
    es_offline_close(&o);
    return rc;
}
