/* cn_stream_diag: why an origin request failed, in words that name the
 * setting that fixes it. Classified from typed values only: the CURLcode,
 * CURLINFO_SSL_VERIFYRESULT, and, when those do not tell, a second
 * connection without verification that reads the certificate's names
 * (CURLINFO_CERTINFO) or the handshake records themselves
 * (CURLINFO_SSL_DATA_IN: a CertificateRequest, the alert the origin sent).
 * curl's message text is only ever logged. The page text must not carry
 * paths or key material. */
#include "cn_ingress.h"
#include "cn_stream_int.h"
#include "cn_upgrade.h"
#include "px_buf.h"
#include "px_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* TLS record content types and the alerts (RFC 8446 6.2) that say the
 * peer refused our certificate, or asked for one we did not send. */
enum { REC_ALERT = 21, REC_HANDSHAKE = 22, HS_CERTIFICATE_REQUEST = 13 };

enum verify_kind { V_OTHER, V_SELF_SIGNED, V_UNKNOWN_CA, V_EXPIRED, V_NAME };

enum probe_kind {
    PROBE_NAMES,    /* the certificate's names, after a name mismatch */
    PROBE_HANDSHAKE /* a CertificateRequest or an alert, after a TLS failure */
};

struct cn_probe {
    enum probe_kind kind;
    struct cn_tls_trace trace; /* the second connection's handshake */
    char why[600];             /* the answer if the probe tells nothing more */
    const char *code;
    enum cn_origin_cause cause; /* ...and its cause */
};

static int backend_is_openssl(void)
{
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    return v && v->ssl_version && strncmp(v->ssl_version, "OpenSSL/", 8) == 0;
}

/* result is CURLINFO_SSL_VERIFYRESULT: with libcurl's OpenSSL back end, an
 * X509_V_ERR_* value of openssl/x509_vfy.h (named below). With another back
 * end the numbers mean something else, and no cause is named. */
static enum verify_kind verify_kind(long result)
{
    if (!backend_is_openssl())
        return V_OTHER;
    switch (result) {
    case 18: /* X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT */
    case 19: /* X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN */
        return V_SELF_SIGNED;
    case 2:  /* X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT */
    case 20: /* X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY */
    case 21: /* X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE */
        return V_UNKNOWN_CA;
    case 9:  /* X509_V_ERR_CERT_NOT_YET_VALID */
    case 10: /* X509_V_ERR_CERT_HAS_EXPIRED */
        return V_EXPIRED;
    case 0:  /* X509_V_OK: the chain verified, curl's own host-name check failed, */
    case 1:  /* X509_V_ERR_UNSPECIFIED: which curl 7.88 reports so */
    case 62: /* X509_V_ERR_HOSTNAME_MISMATCH */
        return V_NAME;
    default:
        return V_OTHER;
    }
}

static int alert_rejects_cert(int alert)
{
    switch (alert) {
    case 42:  /* bad_certificate */
    case 43:  /* unsupported_certificate */
    case 44:  /* certificate_revoked */
    case 45:  /* certificate_expired */
    case 46:  /* certificate_unknown */
    case 48:  /* unknown_ca */
    case 49:  /* access_denied */
    case 116: /* certificate_required */
        return 1;
    default:
        return 0;
    }
}

static const char *origin_name(const struct cn_stream *s)
{
    const struct cn_rule *r = s->rule;
    return r->o.origin_server_name ? r->o.origin_server_name : r->host;
}

/* Raw handshake records as the origin sent them (curl's SSL_DATA_IN: a
 * 5-byte record header, for TLS 1.3 the 1-byte inner content type, then
 * the message). Only the shape of these bytes is read. */
static int trace_records(CURL *e, curl_infotype type, char *data, size_t size, void *arg)
{
    (void)e;
    struct cn_tls_trace *p = arg;
    const unsigned char *b = (const unsigned char *)data;
    if (type != CURLINFO_SSL_DATA_IN || size == 0)
        return 0;
    if (size == 5 && b[1] == 3 && b[0] >= 20 && b[0] <= 23) {
        p->rec_type = b[0]; /* record header */
        return 0;
    }
    if (size == 1) {
        p->rec_type = b[0]; /* TLS 1.3 inner content type */
        return 0;
    }
    if (p->rec_type == REC_HANDSHAKE && size >= 4 && b[0] == HS_CERTIFICATE_REQUEST)
        p->saw_cert_req = 1;
    else if (p->rec_type == REC_ALERT && size == 2 && b[0] == 2)
        p->alert = b[1];
    return 0;
}

/* Connects again to look: no verification, connect only. Returns 0 (the
 * probe's on_done comes later), or -1. */
static int start_probe(struct cn_stream *s, enum probe_kind kind, const char *code,
                       enum cn_origin_cause cause, const char *why)
{
    struct cn_probe *p = calloc(1, sizeof(*p));
    if (!p)
        return -1;
    p->kind = kind;
    p->trace.alert = -1;
    p->code = code;
    p->cause = cause;
    snprintf(p->why, sizeof(p->why), "%s", why);
    s->probe = p;
    CURL *e = cn_origin_easy_get(s->host.env.origin);
    if (!e)
        return -1;
    s->xfer.easy = e;
    if (kind == PROBE_HANDSHAKE) {
        curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);
        curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, trace_records);
        curl_easy_setopt(e, CURLOPT_DEBUGDATA, &p->trace);
    }
    if (cn_stream_origin_setup(s, e) < 0)
        return -1;
    curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(e, CURLOPT_CERTINFO, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    if (cn_origin_start(s->host.env.origin, &s->xfer) < 0)
        return -1;
    s->origin_started = 1;
    return 0;
}

void cn_stream_trace_tls(struct cn_stream *s, CURL *e)
{
    s->trace = (struct cn_tls_trace){.alert = -1};
    curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);
    curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, trace_records);
    curl_easy_setopt(e, CURLOPT_DEBUGDATA, &s->trace);
}

void cn_stream_probe_free(struct cn_stream *s)
{
    free(s->probe);
    s->probe = NULL;
}

/* The client certificate was asked for and the connection failed, or an
 * alert refused it: the page names what to configure. */
static int presents_cert(const struct cn_stream *s)
{
    return s->rule->o.origin_cert || s->rule->o.origin_pull;
}

static const char *client_cert_why(const struct cn_stream *s)
{
    if (s->rule->o.origin_pull)
        return "origin rejected the tunnel's origin-pull client certificate — check that it "
               "trusts the edge's origin-pull CA (edge-sim origin-pull-ca)";
    if (s->rule->o.origin_cert)
        return "origin rejected the client certificate — check that originCert is one it trusts";
    return "origin requires a client certificate — set originPull (or originCert/originKey)";
}

/* The failures of a plain connection, whichever client met them. */
enum plain_fail { PF_REFUSED, PF_DNS, PF_CONNECT_TIMEOUT, PF_EMPTY, PF_BAD_RESPONSE, PF_OTHER };

/* Words a plain failure into why (detail: what the client says of a
 * refused connection) and returns its code. */
static const char *plain_words(const struct cn_stream *s, enum plain_fail f, const char *detail,
                               char *why, size_t len)
{
    switch (f) {
    case PF_REFUSED:
        snprintf(why, len, "the origin refused the connection (is the service running?): %s",
                 detail);
        return "origin_refused";
    case PF_DNS:
        snprintf(why, len, "the origin's host name could not be resolved");
        return "origin_dns";
    case PF_CONNECT_TIMEOUT:
        snprintf(why, len, "timed out connecting to the origin (connectTimeout %u s)",
                 s->rule->o.connect_timeout_s);
        return "origin_connect_timeout";
    case PF_EMPTY:
        snprintf(why, len, "the origin closed the connection without responding");
        return "origin_empty";
    case PF_BAD_RESPONSE:
        snprintf(why, len, "the origin sent an invalid HTTP response%s",
                 s->rule->tls ? "" : " (is it HTTPS? then use https://)");
        return "origin_bad_response";
    case PF_OTHER:
        break;
    }
    snprintf(why, len, "the connection to the origin failed");
    return "origin_error";
}

void cn_stream_head_too_large(struct cn_stream *s)
{
    cn_stream_origin_error(s, CN_ORIGIN_BAD_RESPONSE);
    cn_stream_error(s, 502, "origin_headers_too_large",
                    "the origin's response head is too large (over 64 KiB or 512 fields)", NULL);
}

void cn_stream_h1_failed(struct cn_stream *s, enum cn_h1_err err, int uv_status)
{
    const struct cn_rule *r = s->rule;
    enum plain_fail f = PF_OTHER;
    enum cn_origin_cause cause = CN_ORIGIN_OTHER;
    switch (err) {
    case CN_H1_REFUSED:
        f = PF_REFUSED;
        cause = CN_ORIGIN_REFUSED;
        break;
    case CN_H1_RESOLVE:
        f = PF_DNS;
        cause = CN_ORIGIN_RESOLVE;
        break;
    case CN_H1_CONNECT_TIMEOUT:
        f = PF_CONNECT_TIMEOUT;
        cause = CN_ORIGIN_TIMEOUT;
        break;
    case CN_H1_EMPTY:
        f = PF_EMPTY;
        cause = CN_ORIGIN_RESET;
        break;
    case CN_H1_RESET:
        cause = CN_ORIGIN_RESET;
        break;
    case CN_H1_BAD_RESPONSE:
        f = PF_BAD_RESPONSE;
        cause = CN_ORIGIN_BAD_RESPONSE;
        break;
    case CN_H1_HEADERS_TOO_LARGE:
        cn_stream_head_too_large(s);
        return;
    case CN_H1_OK:
    case CN_H1_NOMEM:
        break;
    }
    struct px_buf detail;
    px_buf_init(&detail);
    const char *uv_words = uv_status ? uv_strerror(uv_status) : "closed";
    int rc =
        r->kind == CN_SVC_UNIX
            ? px_buf_appendf(&detail, "connecting to %s: %s", r->unix_path, uv_words)
            : px_buf_appendf(&detail, "connecting to %s port %d: %s", r->host, r->port, uv_words);
    char why[600];
    const char *code =
        plain_words(s, f, rc == 0 ? px_buf_cstr(&detail) : uv_words, why, sizeof(why));
    cn_stream_origin_error(s, cause);
    cn_stream_error(s, 502, code, why, uv_status ? uv_words : NULL);
    px_buf_cleanup(&detail);
}

void cn_stream_origin_failed(struct cn_stream *s, CURLcode res)
{
    const struct cn_rule *r = s->rule;
    const char *name = origin_name(s);
    const char *code = "origin_error";
    enum cn_origin_cause cause = cn_origin_cause_of(res);
    char why[600];
    int look = -1; /* a probe_kind, when a second look tells more */
    long verify = 0;
    code = plain_words(s, PF_OTHER, NULL, why, sizeof(why));
    switch (res) {
    case CURLE_COULDNT_CONNECT:
        code = plain_words(s, PF_REFUSED, s->origin_err, why, sizeof(why));
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
        code = plain_words(s, PF_DNS, NULL, why, sizeof(why));
        break;
    case CURLE_OPERATION_TIMEDOUT:
        code = plain_words(s, PF_CONNECT_TIMEOUT, NULL, why, sizeof(why));
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
        code = "origin_tls_verify";
        if (curl_easy_getinfo(s->xfer.easy, CURLINFO_SSL_VERIFYRESULT, &verify) != CURLE_OK)
            verify = -1;
        switch (verify_kind(verify)) {
        case V_SELF_SIGNED:
            snprintf(why, sizeof(why),
                     "origin certificate for %s is self-signed — set noTLSVerify, or caPool "
                     "with originServerName",
                     name);
            break;
        case V_UNKNOWN_CA:
            snprintf(why, sizeof(why),
                     "origin certificate for %s is signed by a CA this connector does not trust "
                     "— set caPool (and originServerName if the names differ), or noTLSVerify",
                     name);
            break;
        case V_EXPIRED:
            snprintf(why, sizeof(why),
                     "origin certificate for %s has expired — renew it, or set noTLSVerify", name);
            break;
        case V_NAME:
            look = PROBE_NAMES;
            snprintf(why, sizeof(why),
                     "origin certificate does not match %s — set originServerName", name);
            break;
        case V_OTHER:
            snprintf(why, sizeof(why),
                     "origin certificate for %s failed verification — set caPool or noTLSVerify",
                     name);
            break;
        }
        break;
    case CURLE_SSL_CERTPROBLEM:
        code = "origin_client_cert";
        snprintf(why, sizeof(why),
                 "the connector's client certificate for the origin cannot be used — check %s",
                 r->o.origin_pull ? "the origin-pull certificate in the state directory"
                                  : "originCert/originKey");
        break;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
        if (res == CURLE_GOT_NOTHING)
            code = plain_words(s, PF_EMPTY, NULL, why, sizeof(why));
        if (r->tls && presents_cert(s)) {
            /* The failing connection's own records say whether the origin
             * refused the certificate (cn_stream_trace_tls). */
            if (alert_rejects_cert(s->trace.alert)) {
                code = "origin_client_cert";
                cause = CN_ORIGIN_TLS;
                snprintf(why, sizeof(why), "%s", client_cert_why(s));
            } else if (res == CURLE_SSL_CONNECT_ERROR) {
                code = "origin_tls";
                snprintf(why, sizeof(why),
                         "the TLS handshake with the origin failed (is it HTTPS? for a plain HTTP "
                         "origin use http://)");
            }
        } else if (r->tls) {
            /* Without a certificate to present, the origin may want one:
             * TLS 1.3 servers say so after the client thinks the handshake
             * is done, so a second connection reads the handshake records
             * (a CertificateRequest). */
            look = PROBE_HANDSHAKE;
            if (res != CURLE_GOT_NOTHING) {
                code = "origin_tls";
                cause = CN_ORIGIN_TLS;
                snprintf(why, sizeof(why), "the TLS connection to the origin failed");
            }
        }
        break;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_WRITE_ERROR:
        code = plain_words(s, PF_BAD_RESPONSE, NULL, why, sizeof(why));
        break;
    default:
        break;
    }
    const char *curl_words = s->origin_err[0] ? s->origin_err : curl_easy_strerror(res);
    if (look >= 0) {
        PX_DEBUG("stream %d: %s (verify result %ld); looking again", s->id, curl_words, verify);
        cn_stream_xfer_drop(s);
        if (start_probe(s, (enum probe_kind)look, code, cause, why) == 0)
            return;
        cn_stream_xfer_drop(s);
        cn_stream_probe_free(s);
    }
    cn_stream_origin_error(s, cause);
    cn_stream_error(s, 502, code, why, curl_words);
}

/* The names a certificate is for, from curl's CERTINFO of the leaf. */
static void cert_names(CURL *e, char *out, size_t len)
{
    struct curl_certinfo *ci = NULL;
    out[0] = '\0';
    if (curl_easy_getinfo(e, CURLINFO_CERTINFO, &ci) != CURLE_OK || !ci || ci->num_of_certs < 1)
        return;
    const char *subject = NULL, *san = NULL;
    for (struct curl_slist *l = ci->certinfo[0]; l; l = l->next) {
        if (strncmp(l->data, "Subject:", 8) == 0)
            subject = l->data + 8;
        else if (strncmp(l->data, "X509v3 Subject Alternative Name:", 32) == 0)
            san = l->data + 32;
    }
    if (san) {
        /* "DNS:a, DNS:b, IP Address:1.2.3.4" -> "a, b, 1.2.3.4" */
        size_t o = 0;
        for (const char *p = san; *p && o + 1 < len;) {
            if (strncmp(p, "DNS:", 4) == 0)
                p += 4;
            else if (strncmp(p, "IP Address:", 11) == 0)
                p += 11;
            else
                out[o++] = *p++;
        }
        out[o] = '\0';
    } else if (subject) {
        const char *cn = strstr(subject, "CN");
        if (cn) {
            cn += 2;
            while (*cn == ' ' || *cn == '=')
                cn++;
            snprintf(out, len, "%.*s", (int)strcspn(cn, ",/"), cn);
        }
    }
}

int cn_stream_probe_done(struct cn_stream *s)
{
    struct cn_probe *p = s->probe;
    if (!p)
        return 0;
    struct px_buf why;
    px_buf_init(&why);
    const char *code = p->code;
    enum cn_origin_cause cause = p->cause;
    int wr;
    if (p->kind == PROBE_NAMES) {
        char names[400];
        cert_names(s->xfer.easy, names, sizeof(names));
        if (names[0])
            wr = px_buf_appendf(&why, "origin certificate is for %s, not %s — set originServerName",
                                names, origin_name(s));
        else
            wr = px_buf_append_str(&why, p->why);
    } else if (alert_rejects_cert(p->trace.alert) || p->trace.saw_cert_req) {
        /* No certificate was presented: asked for one, or refused without. */
        code = "origin_client_cert";
        cause = CN_ORIGIN_TLS;
        wr = px_buf_append_str(&why, client_cert_why(s));
    } else {
        wr = px_buf_append_str(&why, p->why);
    }
    PX_DEBUG("stream %d: second look: certificate request %d, alert %d", s->id,
             p->trace.saw_cert_req, p->trace.alert);
    cn_stream_probe_free(s);
    cn_stream_origin_error(s, cause);
    cn_stream_error(s, 502, code,
                    wr == 0 ? px_buf_cstr(&why) : "the TLS connection to the origin failed", NULL);
    px_buf_cleanup(&why);
    return 1;
}
