#include "es_access.h"
#include "es_store_access.h"
#include "px_err.h"
#include "px_hostname.h"
#include "px_log.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include <regex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct es_access_ca {
    char *name;
    WOLFSSL_CERT_MANAGER *cm; /* NULL: the CA did not load; trusts nothing */
    struct px_der *certs;     /* the CA bundle, for building paths through intermediates */
    size_t n_certs;
    char *crl_pem; /* NULL when none */
    int is_edge;   /* revocations come from the store, not a CRL */
};

struct es_access_policy {
    char *pattern;
    char *audience;
    size_t *cas; /* indexes into es_access.cas */
    size_t n_cas;
    regex_t *subjects;
    size_t n_subjects;
    char **fingerprints;
    size_t n_fingerprints;
    int broken; /* a regex or CA name did not compile or resolve: refuse everyone */
};

struct es_access {
    /* The holders (es_access_ref): loops in different threads may each
     * hold one. Everything below is written by es_access_build only. */
    atomic_uint refs;
    unsigned long long generation;
    struct es_access_ca *cas;
    size_t n_cas;
    struct es_access_policy *policies;
    size_t n_policies;
    char **revoked; /* serials access-ca issued and the store revoked, sorted */
    size_t n_revoked;
};

const char *es_access_verdict_reason(enum es_access_verdict v)
{
    switch (v) {
    case ES_ACCESS_OPEN:
    case ES_ACCESS_ALLOWED:
        return "allowed";
    case ES_ACCESS_NO_CERT:
        return "no client certificate";
    case ES_ACCESS_EXPIRED:
        return "client certificate expired";
    case ES_ACCESS_NOT_YET_VALID:
        return "client certificate not valid yet";
    case ES_ACCESS_REVOKED:
        return "client certificate revoked";
    case ES_ACCESS_UNTRUSTED:
        return "client certificate issued by a CA this hostname does not trust";
    case ES_ACCESS_SUBJECT:
        return "client certificate subject not allowed";
    case ES_ACCESS_CRL_STALE:
        return "client certificate revocation status unknown: the CA's CRL is out of date";
    case ES_ACCESS_CRL_MISSING:
        return "client certificate revocation status unknown: no CRL for its issuer";
    }
    return "refused";
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Enables CRL checks on cm and loads every PEM CRL in crl (an operator may
 * concatenate the CRLs of a root and its intermediates). Returns 0, or -1
 * if there is none or one does not load. */
static int load_crls(WOLFSSL_CERT_MANAGER *cm, const char *crl)
{
    static const char begin[] = "-----BEGIN X509 CRL-----", end[] = "-----END X509 CRL-----";
    if (wolfSSL_CertManagerEnableCRL(cm, 0) != WOLFSSL_SUCCESS)
        return -1;
    int n = 0;
    for (const char *p = crl; (p = strstr(p, begin)) != NULL; n++) {
        const char *e = strstr(p, end);
        if (!e)
            return -1;
        e += sizeof(end) - 1;
        if (wolfSSL_CertManagerLoadCRLBuffer(cm, (const unsigned char *)p, (long)(e - p),
                                             WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS)
            return -1;
        p = e;
    }
    return n > 0 ? 0 : -1;
}

/* A CertManager trusting the CA certificates certs, with crl_pem's CRLs
 * (may be NULL) checked for every certificate it verifies: with CRLs, a
 * certificate whose issuer has none is refused (CRL_MISSING). Returns NULL
 * and logs on failure. */
static WOLFSSL_CERT_MANAGER *make_cm(const char *name, const struct px_der *certs, size_t n,
                                     const char *crl_pem)
{
    WOLFSSL_CERT_MANAGER *cm = wolfSSL_CertManagerNew();
    if (!cm)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (wolfSSL_CertManagerLoadCABuffer(cm, certs[i].der, (long)certs[i].len,
                                            WOLFSSL_FILETYPE_ASN1) != WOLFSSL_SUCCESS) {
            PX_WARN("client CA %s: certificate %zu of its bundle does not load as a CA; "
                    "hostnames trusting it refuse every certificate",
                    name, i + 1);
            goto fail;
        }
    }
    if (crl_pem && load_crls(cm, crl_pem) < 0) {
        PX_WARN("client CA %s: its CRL does not load; hostnames trusting it refuse every "
                "certificate",
                name);
        goto fail;
    }
    return cm;
fail:
    wolfSSL_CertManagerFree(cm);
    return NULL;
}

int es_access_validate_ca(const char *pem, const char *crl, char *why, size_t whylen)
{
    struct px_der *d = NULL;
    size_t n = 0;
    if (px_cert_pem_split(pem, strlen(pem), &d, &n) < 0) {
        snprintf(why, whylen, "the CA file holds no PEM certificate");
        return PX_ERR_INVAL;
    }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct px_cert_info ci;
        if (px_cert_info(d[i].der, d[i].len, &ci) < 0) {
            snprintf(why, whylen, "certificate %zu of the CA file does not parse", i + 1);
            rc = PX_ERR_INVAL;
            break;
        }
        if (!ci.is_ca) {
            snprintf(why, whylen, "%s in the CA file is not a CA certificate", ci.subject);
            rc = PX_ERR_INVAL;
        }
        px_cert_info_cleanup(&ci);
    }
    WOLFSSL_CERT_MANAGER *cm = rc == 0 ? make_cm("(new)", d, n, NULL) : NULL;
    if (rc == 0 && !cm) {
        snprintf(why, whylen, "a certificate of the CA file cannot be loaded as a CA");
        rc = PX_ERR_INVAL;
    }
    if (rc == 0 && crl && load_crls(cm, crl) < 0) {
        snprintf(why, whylen,
                 "the CRL file must hold PEM CRLs (convert DER with openssl crl -inform DER "
                 "-outform PEM), each signed by a certificate of the CA file (put an "
                 "intermediate CA there to check its CRL)");
        rc = PX_ERR_INVAL;
    }
    if (cm)
        wolfSSL_CertManagerFree(cm);
    px_der_free(d, n);
    return rc;
}

static int load_ca(struct es_access_ca *ca, const char *name, const char *pem, const char *crl,
                   int is_edge)
{
    if (!(ca->name = strdup(name)) || (crl && !(ca->crl_pem = strdup(crl))))
        return PX_ERR_NOMEM;
    ca->is_edge = is_edge;
    if (!pem)
        return 0; /* no such CA here (an embedder without keys): trusts nothing */
    int rc = px_cert_pem_split(pem, strlen(pem), &ca->certs, &ca->n_certs);
    if (rc == PX_ERR_NOMEM)
        return rc;
    if (rc < 0) {
        PX_WARN("client CA %s holds no readable certificate; hostnames trusting it refuse "
                "every certificate",
                name);
        return 0;
    }
    ca->cm = make_cm(name, ca->certs, ca->n_certs, crl);
    return 0;
}

static int find_ca(const struct es_access *a, const char *name, size_t *idx)
{
    for (size_t i = 0; i < a->n_cas; i++)
        if (strcmp(a->cas[i].name, name) == 0) {
            *idx = i;
            return 0;
        }
    return -1;
}

static int compile_policy(struct es_access *a, struct es_access_policy *p,
                          const struct es_policy_rec *r)
{
    if (!(p->pattern = strdup(r->pattern)) || (r->audience && !(p->audience = strdup(r->audience))))
        return PX_ERR_NOMEM;
    if (r->n_cas && !(p->cas = calloc(r->n_cas, sizeof(*p->cas))))
        return PX_ERR_NOMEM;
    for (size_t i = 0; i < r->n_cas; i++) {
        if (find_ca(a, r->cas[i], &p->cas[p->n_cas]) < 0) {
            PX_WARN("access policy %s names client CA %s, which does not exist: refusing every "
                    "certificate for it",
                    r->pattern, r->cas[i]);
            p->broken = 1;
            continue;
        }
        p->n_cas++;
    }
    if (r->n_subjects && !(p->subjects = calloc(r->n_subjects, sizeof(*p->subjects))))
        return PX_ERR_NOMEM;
    for (size_t i = 0; i < r->n_subjects; i++) {
        if (regcomp(&p->subjects[p->n_subjects], r->subjects[i], REG_EXTENDED | REG_NOSUB) != 0) {
            PX_WARN("access policy %s: subject pattern %s does not compile: refusing every "
                    "certificate for it",
                    r->pattern, r->subjects[i]);
            p->broken = 1;
            continue;
        }
        p->n_subjects++;
    }
    if (r->n_fingerprints &&
        !(p->fingerprints = calloc(r->n_fingerprints, sizeof(*p->fingerprints))))
        return PX_ERR_NOMEM;
    for (size_t i = 0; i < r->n_fingerprints; i++) {
        if (!(p->fingerprints[i] = strdup(r->fingerprints[i])))
            return PX_ERR_NOMEM;
        p->n_fingerprints++;
    }
    if (p->n_cas == 0)
        p->broken = 1;
    return 0;
}

int es_access_build(struct es_store *store, const char *edge_ca_pem, unsigned long long generation,
                    struct es_access **out, char *why, size_t whylen)
{
    struct es_client_ca_rec *cas = NULL;
    struct es_policy_rec *pol = NULL;
    struct es_client_cert_rec *certs = NULL;
    size_t n_cas = 0, n_pol = 0, n_certs = 0;
    struct es_access *a = calloc(1, sizeof(*a));
    int rc = PX_ERR_NOMEM;
    if (!a)
        goto fail;
    atomic_init(&a->refs, 1); /* before any failure: es_access_free drops it */
    a->generation = generation;
    if ((rc = es_store_client_ca_list(store, &cas, &n_cas)) < 0 ||
        (rc = es_store_policy_list(store, &pol, &n_pol)) < 0 ||
        (rc = es_store_client_cert_list(store, &certs, &n_certs)) < 0) {
        snprintf(why, whylen, "cannot read the access policies: %s", px_strerror(rc));
        goto fail;
    }
    rc = PX_ERR_NOMEM;
    if (!(a->cas = calloc(n_cas + 1, sizeof(*a->cas))))
        goto fail;
    a->n_cas = n_cas + 1;
    if ((rc = load_ca(&a->cas[0], ES_ACCESS_EDGE_CA, edge_ca_pem, NULL, 1)) < 0)
        goto fail;
    for (size_t i = 0; i < n_cas; i++)
        if ((rc = load_ca(&a->cas[i + 1], cas[i].name, cas[i].cert_pem, cas[i].crl_pem, 0)) < 0)
            goto fail;
    rc = PX_ERR_NOMEM;
    if (n_pol && !(a->policies = calloc(n_pol, sizeof(*a->policies))))
        goto fail;
    for (size_t i = 0; i < n_pol; i++) {
        a->n_policies++;
        if ((rc = compile_policy(a, &a->policies[i], &pol[i])) < 0)
            goto fail;
    }
    rc = PX_ERR_NOMEM;
    if (n_certs && !(a->revoked = calloc(n_certs, sizeof(*a->revoked))))
        goto fail;
    for (size_t i = 0; i < n_certs; i++)
        if (certs[i].revoked) {
            if (!(a->revoked[a->n_revoked] = strdup(certs[i].serial)))
                goto fail;
            a->n_revoked++;
        }
    if (a->n_revoked)
        qsort(a->revoked, a->n_revoked, sizeof(*a->revoked), cmp_str);
    rc = 0;
    *out = a;
    a = NULL;
fail:
    if (rc == PX_ERR_NOMEM)
        snprintf(why, whylen, "out of memory building the access policies");
    es_access_free(a);
    es_store_client_cas_free(cas, n_cas);
    es_store_policies_free(pol, n_pol);
    es_store_client_certs_free(certs, n_certs);
    return rc;
}

struct es_access *es_access_ref(struct es_access *a)
{
    /* Relaxed: the caller already holds a reference, so the object is
     * alive and its contents visible to it; nothing is published here. */
    if (a)
        atomic_fetch_add_explicit(&a->refs, 1, memory_order_relaxed);
    return a;
}

void es_access_free(struct es_access *a)
{
    /* acq_rel: each holder's last reads of the set happen before the
     * release of its reference, and the thread that drops the last one
     * sees all of them (acquire) before it frees. */
    if (!a || atomic_fetch_sub_explicit(&a->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < a->n_cas; i++) {
        free(a->cas[i].name);
        if (a->cas[i].cm)
            wolfSSL_CertManagerFree(a->cas[i].cm);
        px_der_free(a->cas[i].certs, a->cas[i].n_certs);
        free(a->cas[i].crl_pem);
    }
    free(a->cas);
    for (size_t i = 0; i < a->n_policies; i++) {
        struct es_access_policy *p = &a->policies[i];
        free(p->pattern);
        free(p->audience);
        free(p->cas);
        for (size_t k = 0; k < p->n_subjects; k++)
            regfree(&p->subjects[k]);
        free(p->subjects);
        for (size_t k = 0; k < p->n_fingerprints; k++)
            free(p->fingerprints[k]);
        free(p->fingerprints);
    }
    free(a->policies);
    for (size_t i = 0; i < a->n_revoked; i++)
        free(a->revoked[i]);
    free(a->revoked);
    free(a);
}

unsigned long long es_access_generation(const struct es_access *a)
{
    return a ? a->generation : 0;
}

size_t es_access_count(const struct es_access *a)
{
    return a ? a->n_policies : 0;
}

const struct es_access_policy *es_access_policy_for(const struct es_access *a, const char *host)
{
    /* Matched exactly as es_registry_lookup routes (px_host_match), with no
     * validity test of its own: any name that can reach a tunnel must find
     * the policy that covers it. */
    if (!a || !host || !host[0])
        return NULL;
    const struct es_access_policy *best = NULL;
    for (size_t i = 0; i < a->n_policies; i++) {
        const struct es_access_policy *p = &a->policies[i];
        if (strcmp(p->pattern, host) == 0)
            return p;
        if (p->pattern[0] == '*' && px_host_match(p->pattern, host) &&
            (!best || strlen(p->pattern) > strlen(best->pattern)))
            best = p;
    }
    return best;
}

const char *es_access_policy_pattern(const struct es_access_policy *p)
{
    return p->pattern;
}

const char *es_access_policy_audience(const struct es_access_policy *p)
{
    return p->audience;
}

/* How specific a refusal is: when no CA accepts, the most telling wins. */
static int rank(enum es_access_verdict v)
{
    switch (v) {
    case ES_ACCESS_REVOKED:
        return 5;
    case ES_ACCESS_EXPIRED:
        return 4;
    case ES_ACCESS_NOT_YET_VALID:
        return 3;
    case ES_ACCESS_CRL_STALE:
    case ES_ACCESS_CRL_MISSING:
        return 2;
    default:
        return 1;
    }
}

static enum es_access_verdict from_wolf(int r)
{
    switch (r) {
    case ASN_AFTER_DATE_E:
        return ES_ACCESS_EXPIRED;
    case ASN_BEFORE_DATE_E:
        return ES_ACCESS_NOT_YET_VALID;
    case CRL_CERT_REVOKED:
        return ES_ACCESS_REVOKED;
    case CRL_CERT_DATE_ERR:
        return ES_ACCESS_CRL_STALE;
    case CRL_MISSING:
        return ES_ACCESS_CRL_MISSING;
    default:
        return ES_ACCESS_UNTRUSTED;
    }
}

/* 1 if the client-sent certificate c may sign others on a path with
 * `below` CA certificates under it: CA:TRUE, keyCertSign when keyUsage is
 * present, and a pathLenConstraint that allows them. wolfSSL's CertManager
 * loads any certificate it is given as a CA, so this is checked here. */
static int usable_as_ca(const struct px_der *c, size_t below)
{
    DecodedCert dc;
    wc_InitDecodedCert(&dc, c->der, (word32)c->len, NULL);
    int ok = wc_ParseCert(&dc, CERT_TYPE, NO_VERIFY, NULL) == 0 && dc.isCA &&
             (!dc.extKeyUsageSet || (dc.extKeyUsage & KEYUSE_KEY_CERT_SIGN)) &&
             (!dc.pathLengthSet || dc.pathLength >= below);
    wc_FreeDecodedCert(&dc);
    return ok;
}

/* Verifies chain[0] under ca, through the client's intermediates
 * (chain[1..n-1]) when the CA did not sign it directly. Every certificate on
 * the path is checked against the CA's CRLs. Returns WOLFSSL_SUCCESS or a
 * wolfSSL error code. */
static int verify_with(const struct es_access_ca *ca, const struct px_der *chain, size_t n)
{
    int r = wolfSSL_CertManagerVerifyBuffer(ca->cm, chain[0].der, (long)chain[0].len,
                                            WOLFSSL_FILETYPE_ASN1);
    if (r != ASN_NO_SIGNER_E || n < 2)
        return r;
    /* Build the path in a scratch manager: the CA bundle and its CRLs,
     * then each intermediate the client sent, from the top down, only if it
     * may sign and verifies itself (revocation included). */
    WOLFSSL_CERT_MANAGER *cm = make_cm(ca->name, ca->certs, ca->n_certs, ca->crl_pem);
    if (!cm)
        return r;
    int path_err = 0;
    for (size_t i = n - 1; i >= 1; i--) {
        if (!usable_as_ca(&chain[i], i - 1))
            continue;
        int ri = wolfSSL_CertManagerVerifyBuffer(cm, chain[i].der, (long)chain[i].len,
                                                 WOLFSSL_FILETYPE_ASN1);
        if (ri == WOLFSSL_SUCCESS)
            wolfSSL_CertManagerLoadCABuffer(cm, chain[i].der, (long)chain[i].len,
                                            WOLFSSL_FILETYPE_ASN1);
        else if (ri == CRL_CERT_REVOKED || ri == CRL_MISSING || ri == CRL_CERT_DATE_ERR ||
                 ri == ASN_AFTER_DATE_E || ri == ASN_BEFORE_DATE_E)
            path_err = ri; /* an intermediate that signs, but may not now */
    }
    r = wolfSSL_CertManagerVerifyBuffer(cm, chain[0].der, (long)chain[0].len,
                                        WOLFSSL_FILETYPE_ASN1);
    if (r == ASN_NO_SIGNER_E && path_err)
        r = path_err;
    wolfSSL_CertManagerFree(cm);
    return r;
}

static int subject_allowed(const struct es_access_policy *p, const struct px_cert_info *leaf)
{
    if (p->n_subjects == 0 && p->n_fingerprints == 0)
        return 1;
    for (size_t i = 0; i < p->n_fingerprints; i++)
        if (strcmp(p->fingerprints[i], leaf->sha256_hex) == 0)
            return 1;
    for (size_t i = 0; i < p->n_subjects; i++)
        if (regexec(&p->subjects[i], leaf->subject, 0, NULL, 0) == 0)
            return 1;
    return 0;
}

enum es_access_verdict es_access_check(const struct es_access *a, const struct es_access_policy *p,
                                       const struct px_der *chain, size_t n,
                                       const struct px_cert_info *leaf)
{
    if (!p)
        return ES_ACCESS_OPEN;
    if (n == 0 || !leaf)
        return ES_ACCESS_NO_CERT;
    if (p->broken)
        return ES_ACCESS_UNTRUSTED;
    enum es_access_verdict best = ES_ACCESS_UNTRUSTED;
    for (size_t i = 0; i < p->n_cas; i++) {
        const struct es_access_ca *ca = &a->cas[p->cas[i]];
        if (!ca->cm)
            continue;
        int r = verify_with(ca, chain, n);
        if (r != WOLFSSL_SUCCESS) {
            enum es_access_verdict v = from_wolf(r);
            if (rank(v) > rank(best))
                best = v;
            continue;
        }
        const char *serial = leaf->serial;
        if (ca->is_edge && a->n_revoked &&
            bsearch(&serial, a->revoked, a->n_revoked, sizeof(*a->revoked), cmp_str))
            return ES_ACCESS_REVOKED;
        return subject_allowed(p, leaf) ? ES_ACCESS_ALLOWED : ES_ACCESS_SUBJECT;
    }
    return best;
}
