#include "cn_ingress.h"
#include "cn_trust.h"
#include "px_err.h"
#include "px_hostname.h"
#include "rt_file.h"

#include <jansson.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_RULES 1024

__attribute__((format(printf, 2, 3))) static void add_err(struct cn_ingress_errors *e,
                                                          const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    char **n = realloc(e->lines, (e->n + 1) * sizeof(char *));
    if (!n) {
        e->nomem = 1;
        return;
    }
    e->lines = n;
    e->lines[e->n] = strdup(line);
    if (e->lines[e->n])
        e->n++;
    else
        e->nomem = 1;
}

/* strdup that remembers a failure in e: a rule must not lose a setting. */
static char *dup_str(const char *s, struct cn_ingress_errors *e)
{
    char *d = strdup(s);
    if (!d)
        e->nomem = 1;
    return d;
}

void cn_ingress_errors_cleanup(struct cn_ingress_errors *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->lines[i]);
    free(e->lines);
    e->lines = NULL;
    e->n = 0;
    e->nomem = 0;
}

void cn_origin_opts_cleanup(struct cn_origin_opts *o)
{
    free(o->origin_server_name);
    free(o->ca_pool);
    free(o->origin_cert);
    free(o->origin_key);
    free(o->http_host_header);
    free(o->access_audience);
    free(o->ca_blob);
    memset(o, 0, sizeof(*o));
}

static void free_rules(struct cn_ingress *ing)
{
    for (size_t i = 0; i < ing->n; i++) {
        struct cn_rule *r = &ing->rules[i];
        if (r->path)
            regfree(&r->re);
        free(r->path);
        free(r->service);
        free(r->unix_path);
        cn_origin_opts_cleanup(&r->o);
    }
    free(ing->rules);
    for (size_t i = 0; i < ing->n_hostnames; i++)
        free(ing->hostnames[i]);
    free(ing->hostnames);
    free(ing);
}

void cn_ingress_ref(struct cn_ingress *ing)
{
    ing->refs++;
}

void cn_ingress_unref(struct cn_ingress *ing)
{
    if (ing && --ing->refs == 0)
        free_rules(ing);
}

/* ---- values that end up in headers, URLs and curl options ---- */

/* v for an error message: bytes outside printable ASCII as \xNN (a CR or LF
 * would split the log line), at most 200 input bytes. Caller frees; NULL
 * when out of memory. */
static char *printable(const char *v)
{
    size_t n = strnlen(v, 200), o = 0;
    char *out = malloc(n * 4 + 4);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x20 || c >= 0x7f) {
            static const char hex[] = "0123456789abcdef";
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        } else {
            out[o++] = (char)c;
        }
    }
    if (v[n])
        out[o++] = '.', out[o++] = '.', out[o++] = '.';
    out[o] = '\0';
    return out;
}

static int has_control(const char *v)
{
    for (; *v; v++)
        if ((unsigned char)*v < 0x20 || (unsigned char)*v == 0x7f)
            return 1;
    return 0;
}

/* A DNS name or IPv4 address: letters, digits, '-', '_' and '.', no empty
 * label, at most 253 bytes. Nothing that could end a header, split a URL
 * (':', '/', '@') or a curl CONNECT_TO entry. */
static int valid_name(const char *h, size_t n)
{
    if (n == 0 || n > 253)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return 0;
        if (c == '.' && (i == 0 || h[i - 1] == '.'))
            return 0;
    }
    return 1;
}

/* "[v6 address]" */
static int valid_ip_literal(const char *h, size_t n)
{
    char a[INET6_ADDRSTRLEN + 1];
    struct in6_addr addr;
    if (n < 4 || h[0] != '[' || h[n - 1] != ']' || n - 2 >= sizeof(a))
        return 0;
    memcpy(a, h + 1, n - 2);
    a[n - 2] = '\0';
    return inet_pton(AF_INET6, a, &addr) == 1;
}

/* A Host header value: name or [v6], optionally ":port" (1-65535). */
static int valid_host_port(const char *v)
{
    size_t n = strlen(v), hl;
    if (v[0] == '[') {
        const char *e = strchr(v, ']');
        hl = e ? (size_t)(e - v) + 1 : 0;
        if (!e || !valid_ip_literal(v, hl))
            return 0;
    } else {
        hl = strcspn(v, ":");
        if (!valid_name(v, hl))
            return 0;
    }
    if (hl == n)
        return 1;
    const char *p = v + hl + 1;
    size_t pl = n - hl - 1;
    if (v[hl] != ':' || pl == 0 || pl > 5 || strspn(p, "0123456789") != pl)
        return 0;
    long port = strtol(p, NULL, 10);
    return port >= 1 && port <= 65535;
}

/* Checks the settings that go into the origin request's Host header and
 * into curl's URL / SNI: a CR or LF there would add headers of the
 * config's choosing, a ':' would move the port. flags: name the command
 * line flags instead of the JSON keys. */
static void check_header_values(const struct cn_origin_opts *o, const char *where, int flags,
                                struct cn_ingress_errors *errs)
{
    const char *pre = where ? where : "", *sep = where ? ": " : "";
    if (o->http_host_header && !valid_host_port(o->http_host_header)) {
        char *v = printable(o->http_host_header);
        add_err(errs,
                "%s%s%s \"%s\" is not a valid Host value: give host or host:port (an IPv6 "
                "address in brackets), without spaces, control characters or line breaks",
                pre, sep, flags ? "--http-host-header" : "originRequest.httpHostHeader",
                v ? v : "?");
        free(v);
    }
    if (o->origin_server_name &&
        !valid_name(o->origin_server_name, strlen(o->origin_server_name))) {
        char *v = printable(o->origin_server_name);
        add_err(errs,
                "%s%s%s \"%s\" is not a valid hostname: give the name on the origin's "
                "certificate, without a port, spaces or control characters",
                pre, sep, flags ? "--origin-server-name" : "originRequest.originServerName",
                v ? v : "?");
        free(v);
    }
}

/* ---- originRequest ---- */

/* Parses seconds given as a number or as "30s" / "2m" / "1h". */
static int parse_seconds(json_t *v, unsigned *out)
{
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < 0 || i > 86400 * 7)
            return -1;
        *out = (unsigned)i;
        return 0;
    }
    const char *s = json_string_value(v);
    if (!s || !*s)
        return -1;
    char *end;
    unsigned long n = strtoul(s, &end, 10);
    unsigned long mul = 1;
    if (strcmp(end, "s") == 0 || *end == '\0')
        mul = 1;
    else if (strcmp(end, "m") == 0)
        mul = 60;
    else if (strcmp(end, "h") == 0)
        mul = 3600;
    else
        return -1;
    if (end == s || n > 86400UL * 7 / mul)
        return -1;
    *out = (unsigned)(n * mul);
    return 0;
}

/* originRequest.access: {"required": bool, "audience": string}, both
 * optional; anything else in it is an error, as everywhere in the file. */
static void parse_access(json_t *obj, struct cn_origin_opts *o, const char *where,
                         struct cn_ingress_errors *errs)
{
    if (!json_is_object(obj)) {
        add_err(errs, "%s: originRequest.access must be an object (e.g. {\"required\": true})",
                where);
        return;
    }
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        if (strcmp(k, "required") == 0) {
            if (!json_is_boolean(v))
                add_err(errs, "%s: originRequest.access.required must be true or false", where);
            else {
                o->access_required = json_is_true(v);
                o->set |= CN_OPT_ACCESS_REQUIRED;
            }
        } else if (strcmp(k, "audience") == 0) {
            const char *sv = json_string_value(v);
            if (!sv || !*sv || strlen(sv) > CN_ACCESS_MAX_AUDIENCE || has_control(sv)) {
                add_err(errs,
                        "%s: originRequest.access.audience must be a non-empty string (at most "
                        "%d bytes, no control characters)",
                        where, CN_ACCESS_MAX_AUDIENCE);
            } else {
                free(o->access_audience);
                o->access_audience = dup_str(sv, errs);
                o->set |= CN_OPT_ACCESS_AUDIENCE;
            }
        } else {
            add_err(errs,
                    "%s: unknown originRequest.access setting \"%s\" (a typo? known: required, "
                    "audience)",
                    where, k);
        }
    }
}

static void parse_opts(json_t *obj, struct cn_origin_opts *o, const char *where,
                       struct cn_ingress_errors *errs)
{
    if (!json_is_object(obj)) {
        add_err(errs, "%s: originRequest must be an object", where);
        return;
    }
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        const char *sv = json_string_value(v);
#define STR_OPT(name, field, bit)                                                                  \
    if (strcmp(k, name) == 0) {                                                                    \
        if (!sv || !*sv) {                                                                         \
            add_err(errs, "%s: originRequest.%s must be a non-empty string", where, name);         \
        } else {                                                                                   \
            free(o->field);                                                                        \
            o->field = dup_str(sv, errs);                                                          \
            o->set |= bit;                                                                         \
        }                                                                                          \
        continue;                                                                                  \
    }
#define BOOL_OPT(name, field, bit)                                                                 \
    if (strcmp(k, name) == 0) {                                                                    \
        if (!json_is_boolean(v))                                                                   \
            add_err(errs, "%s: originRequest.%s must be true or false", where, name);              \
        else {                                                                                     \
            o->field = json_is_true(v);                                                            \
            o->set |= bit;                                                                         \
        }                                                                                          \
        continue;                                                                                  \
    }
#define SECS_OPT(name, field, bit)                                                                 \
    if (strcmp(k, name) == 0) {                                                                    \
        if (parse_seconds(v, &o->field) < 0)                                                       \
            add_err(errs, "%s: originRequest.%s must be seconds (e.g. 30 or \"30s\")", where,      \
                    name);                                                                         \
        else                                                                                       \
            o->set |= bit;                                                                         \
        continue;                                                                                  \
    }
        BOOL_OPT("noTLSVerify", no_tls_verify, CN_OPT_NO_TLS_VERIFY)
        STR_OPT("originServerName", origin_server_name, CN_OPT_SERVER_NAME)
        STR_OPT("caPool", ca_pool, CN_OPT_CA_POOL)
        STR_OPT("originCert", origin_cert, CN_OPT_CERT)
        STR_OPT("originKey", origin_key, CN_OPT_KEY)
        STR_OPT("httpHostHeader", http_host_header, CN_OPT_HOST_HEADER)
        SECS_OPT("connectTimeout", connect_timeout_s, CN_OPT_CONNECT_TIMEOUT)
        SECS_OPT("tlsTimeout", tls_timeout_s, CN_OPT_TLS_TIMEOUT)
        SECS_OPT("keepAliveTimeout", keepalive_timeout_s, CN_OPT_KEEPALIVE_TIMEOUT)
        BOOL_OPT("disableChunkedEncoding", disable_chunked, CN_OPT_NO_CHUNKED)
        BOOL_OPT("http2Origin", http2_origin, CN_OPT_HTTP2)
        BOOL_OPT("originPull", origin_pull, CN_OPT_ORIGIN_PULL)
        if (strcmp(k, "access") == 0) {
            parse_access(v, o, where, errs);
            continue;
        }
        if (strcmp(k, "keepAliveConnections") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 100000)
                add_err(errs, "%s: originRequest.keepAliveConnections must be 0-100000", where);
            else {
                o->keepalive_conns = (unsigned)json_integer_value(v);
                o->set |= CN_OPT_KEEPALIVE_CONNS;
            }
            continue;
        }
#undef STR_OPT
#undef BOOL_OPT
#undef SECS_OPT
        add_err(errs,
                "%s: unknown originRequest setting \"%s\" (a typo? known: noTLSVerify, "
                "originServerName, caPool, originCert, originKey, httpHostHeader, "
                "connectTimeout, tlsTimeout, keepAliveConnections, keepAliveTimeout, "
                "disableChunkedEncoding, http2Origin, originPull, access)",
                where, k);
    }
    check_header_values(o, where, 0, errs);
}

static char *dup_or_null(const char *s, struct cn_ingress_errors *e)
{
    return s ? dup_str(s, e) : NULL;
}

/* r->o = defaults overridden by the rule's own settings. */
static void merge_opts(struct cn_origin_opts *dst, const struct cn_origin_opts *def,
                       const struct cn_origin_opts *own, struct cn_ingress_errors *errs)
{
    const struct cn_origin_opts *src;
#define PICK(bit) (src = (own->set & (bit)) ? own : def)
    PICK(CN_OPT_NO_TLS_VERIFY);
    dst->no_tls_verify = src->no_tls_verify;
    PICK(CN_OPT_SERVER_NAME);
    dst->origin_server_name = dup_or_null(src->origin_server_name, errs);
    PICK(CN_OPT_CA_POOL);
    dst->ca_pool = dup_or_null(src->ca_pool, errs);
    PICK(CN_OPT_CERT);
    dst->origin_cert = dup_or_null(src->origin_cert, errs);
    PICK(CN_OPT_KEY);
    dst->origin_key = dup_or_null(src->origin_key, errs);
    PICK(CN_OPT_HOST_HEADER);
    dst->http_host_header = dup_or_null(src->http_host_header, errs);
    dst->connect_timeout_s = (own->set & CN_OPT_CONNECT_TIMEOUT)   ? own->connect_timeout_s
                             : (def->set & CN_OPT_CONNECT_TIMEOUT) ? def->connect_timeout_s
                                                                   : 30;
    dst->tls_timeout_s = (own->set & CN_OPT_TLS_TIMEOUT)   ? own->tls_timeout_s
                         : (def->set & CN_OPT_TLS_TIMEOUT) ? def->tls_timeout_s
                                                           : 10;
    dst->keepalive_conns = (own->set & CN_OPT_KEEPALIVE_CONNS)   ? own->keepalive_conns
                           : (def->set & CN_OPT_KEEPALIVE_CONNS) ? def->keepalive_conns
                                                                 : 100;
    dst->keepalive_timeout_s = (own->set & CN_OPT_KEEPALIVE_TIMEOUT)   ? own->keepalive_timeout_s
                               : (def->set & CN_OPT_KEEPALIVE_TIMEOUT) ? def->keepalive_timeout_s
                                                                       : 90;
    PICK(CN_OPT_NO_CHUNKED);
    dst->disable_chunked = src->disable_chunked;
    PICK(CN_OPT_HTTP2);
    dst->http2_origin = src->http2_origin;
    /* Member by member like the rest: a rule that only names its audience
     * stays protected by a top-level "required": true. */
    PICK(CN_OPT_ACCESS_REQUIRED);
    dst->access_required = src->access_required;
    PICK(CN_OPT_ACCESS_AUDIENCE);
    dst->access_audience = dup_or_null(src->access_audience, errs);
    PICK(CN_OPT_ORIGIN_PULL);
    dst->origin_pull = src->origin_pull;
#undef PICK
    dst->set = def->set | own->set;
}

/* originPull on a rule: a client certificate exists only on a TLS
 * connection, so a rule that asks for it itself (own_set; for the flags,
 * every rule) must be a TLS origin; one that inherits it from the top-level
 * settings just does without. It replaces originCert/originKey: one client
 * certificate per connection, so both is an error. flags: name the command
 * line flags. */
static void check_origin_pull(struct cn_rule *r, unsigned own_set, int flags, const char *where,
                              struct cn_ingress_errors *errs)
{
    struct cn_origin_opts *o = &r->o;
    if (!o->origin_pull || !r->kind)
        return; /* (a service that did not parse has its own error) */
    int tls_origin = r->tls && (r->kind == CN_SVC_HTTP || r->kind == CN_SVC_UNIX);
    if (!tls_origin) {
        if (own_set & CN_OPT_ORIGIN_PULL)
            add_err(errs,
                    "%s: %s needs an https:// or unix+tls: service (the certificate is presented "
                    "in the TLS handshake with the origin)",
                    where, flags ? "--origin-pull" : "originRequest.originPull");
        o->origin_pull = 0;
        return;
    }
    if (o->origin_cert)
        add_err(errs, "%s: %s and %s both give the origin a client certificate: choose one", where,
                flags ? "--origin-pull" : "originPull",
                flags ? "--origin-cert/--origin-key" : "originCert/originKey");
}

/* Checks files named by the settings and builds the CA blob. */
static void finish_opts(struct cn_rule *r, const char *where, struct cn_ingress_errors *errs)
{
    struct cn_origin_opts *o = &r->o;
    if ((o->origin_cert != NULL) != (o->origin_key != NULL))
        add_err(errs, "%s: originCert and originKey must be given together", where);
    const char *files[] = {o->origin_cert, o->origin_key};
    const char *names[] = {"originCert", "originKey"};
    for (int i = 0; i < 2; i++) {
        if (!files[i])
            continue;
        size_t n;
        int err = 0;
        char *d = rt_file_read(files[i], 1 << 20, &n, &err);
        if (!d)
            add_err(errs, "%s: %s file %s cannot be read: %s", where, names[i], files[i],
                    strerror(err));
        free(d);
    }
    if (o->ca_pool) {
        size_t pool_len = 0, sys_len = 0;
        int err = 0;
        char *pool = rt_file_read(o->ca_pool, 16 << 20, &pool_len, &err);
        if (!pool) {
            add_err(errs, "%s: caPool file %s cannot be read: %s", where, o->ca_pool,
                    strerror(err));
            return;
        }
        if (!strstr(pool, "-----BEGIN CERTIFICATE-----")) {
            add_err(errs, "%s: caPool file %s holds no PEM certificate", where, o->ca_pool);
            free(pool);
            return;
        }
        char ca[CN_TRUST_PATH_MAX];
        char *sys = rt_file_read(cn_trust_system_ca_path(ca, sizeof(ca)), 16 << 20, &sys_len,
                                 &err); /* may be absent */
        o->ca_blob = malloc(pool_len + sys_len + 2);
        if (!o->ca_blob)
            errs->nomem = 1;
        if (o->ca_blob) {
            memcpy(o->ca_blob, sys ? sys : "", sys_len);
            o->ca_blob[sys_len] = '\n';
            memcpy(o->ca_blob + sys_len + 1, pool, pool_len);
            o->ca_blob_len = sys_len + 1 + pool_len;
        }
        free(sys);
        free(pool);
    }
}

/* ---- services ---- */

static int parse_service(struct cn_rule *r, const char *svc, const char *where,
                         struct cn_ingress_errors *errs)
{
    r->service = dup_str(svc, errs);
    if (has_control(svc)) {
        char *v = printable(svc);
        add_err(errs, "%s: service \"%s\" has a control character or line break", where,
                v ? v : "?");
        free(v);
        return -1;
    }
    if (strcmp(svc, "hello_world") == 0) {
        r->kind = CN_SVC_HELLO;
        return 0;
    }
    if (strncmp(svc, "http_status:", 12) == 0) {
        char *end;
        long st = strtol(svc + 12, &end, 10);
        if (svc[12] == '\0' || *end || st < 100 || st > 599) {
            add_err(errs, "%s: service \"%s\": the status must be a number from 100 to 599", where,
                    svc);
            return -1;
        }
        r->kind = CN_SVC_STATUS;
        r->status = (int)st;
        return 0;
    }
    if (strncmp(svc, "unix:", 5) == 0 || strncmp(svc, "unix+tls:", 9) == 0) {
        r->tls = svc[4] == '+';
        const char *p = svc + (r->tls ? 9 : 5);
        if (p[0] != '/') {
            add_err(errs,
                    "%s: service \"%s\": give the socket's absolute path, e.g. unix:/run/app.sock",
                    where, svc);
            return -1;
        }
        r->kind = CN_SVC_UNIX;
        r->unix_path = dup_str(p, errs);
        snprintf(r->host, sizeof(r->host), "localhost");
        return 0;
    }
    const char *rest;
    if (strncasecmp(svc, "tcp://", 6) == 0 || strncasecmp(svc, "ssh://", 6) == 0) {
        rest = svc + 6;
        r->port = svc[0] == 's' || svc[0] == 'S' ? 22 : 0;
        r->kind = CN_SVC_TCP;
    } else if (strncasecmp(svc, "http://", 7) == 0) {
        rest = svc + 7;
        r->port = 80;
    } else if (strncasecmp(svc, "https://", 8) == 0) {
        rest = svc + 8;
        r->tls = 1;
        r->port = 443;
    } else {
        add_err(errs,
                "%s: service \"%s\" has no scheme: use http://host:port, https://host:port, "
                "unix:/path, unix+tls:/path, tcp://host:port, ssh://host:port, "
                "http_status:NNN or hello_world",
                where, svc);
        return -1;
    }
    size_t n = strlen(rest);
    while (n > 0 && rest[n - 1] == '/')
        n--;
    if (n == 0 || memchr(rest, '/', n) || memchr(rest, '?', n) || memchr(rest, '#', n) ||
        memchr(rest, '@', n)) {
        add_err(errs,
                "%s: service \"%s\" has a path: a service is scheme://host[:port] only "
                "(choose paths with the rule's \"path\")",
                where, svc);
        return -1;
    }
    char hp[300];
    snprintf(hp, sizeof(hp), "%.*s", (int)n, rest);
    char *colon = hp[0] == '[' ? strstr(hp, "]:") : strrchr(hp, ':');
    if (colon && hp[0] == '[')
        colon++;
    if (colon) {
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (*end || port < 1 || port > 65535) {
            add_err(errs, "%s: service \"%.200s\": bad port", where, svc);
            return -1;
        }
        r->port = (int)port;
        *colon = '\0';
    }
    if (!hp[0] || strlen(hp) >= sizeof(r->host)) {
        add_err(errs, "%s: service \"%.200s\": bad host", where, svc);
        return -1;
    }
    /* The host goes into curl's URL and CONNECT_TO entry, and for TCP
     * services into a resolver: a name or an address, nothing else. */
    if (!valid_name(hp, strlen(hp)) && !valid_ip_literal(hp, strlen(hp))) {
        add_err(errs,
                "%s: service \"%.200s\": host \"%.200s\" is not a valid hostname or address "
                "(letters, digits, '-', '.', or an IPv6 address in brackets)",
                where, svc, hp);
        return -1;
    }
    memcpy(r->host, hp, strlen(hp) + 1); /* fits: checked above */
    if (r->kind == CN_SVC_TCP) {
        if (r->port == 0) {
            add_err(errs, "%s: service \"%s\" needs a port (tcp://host:port)", where, svc);
            return -1;
        }
        return 0;
    }
    r->kind = CN_SVC_HTTP;
    return 0;
}

static int set_hostname(struct cn_rule *r, const char *h, const char *where,
                        struct cn_ingress_errors *errs)
{
    if (!h || strcmp(h, "*") == 0 || !*h) {
        r->hostname[0] = '\0';
        return 0;
    }
    if (!px_host_pattern_valid(h)) {
        /* Not a catch-all either: keep it out of the ordering checks. */
        snprintf(r->hostname, sizeof(r->hostname), "!invalid");
        char *v = printable(h);
        if (strchr(h, '*'))
            add_err(errs,
                    "%s: hostname \"%s\" is not valid: a wildcard must be a leading \"*.\" "
                    "followed by a domain (e.g. *.example.com)",
                    where, v ? v : "?");
        else
            add_err(errs, "%s: hostname \"%s\" is not a valid hostname", where, v ? v : "?");
        free(v);
        return -1;
    }
    size_t i = 0;
    for (; h[i] && i < sizeof(r->hostname) - 1; i++)
        r->hostname[i] = (char)((h[i] >= 'A' && h[i] <= 'Z') ? h[i] - 'A' + 'a' : h[i]);
    r->hostname[i] = '\0';
    return 0;
}

/* glibc's regcomp expands every repetition into copies of what it repeats
 * ("a+" becomes "aa*", "(x){50}" fifty x's) and then computes closures over
 * the copies, in memory quadratic in their number when they can match empty:
 * "^/a" with 60 '+' after it asks for 2^60 copies, "(a*){20000}" for 3 GB.
 * This counts the copies regcomp would make, so a short pattern cannot take
 * the connector down at start or on a SIGHUP reload. */
#define MAX_PATH_REGEX_COPIES 2000

static double regex_copies(const char *p)
{
    enum { MAX_DEPTH = 64 };
    double group[MAX_DEPTH], last[MAX_DEPTH]; /* cost so far, cost of the last element */
    int depth = 0;
    int prev_rep = 0; /* the previous token was a repetition */
    group[0] = last[0] = 0;
    for (size_t i = 0; p[i]; i++) {
        double times = 0; /* a repetition of the last element, or 0 for a new element */
        double elem = 1;
        switch (p[i]) {
        case '(':
            if (++depth >= MAX_DEPTH)
                return 1e300;
            group[depth] = last[depth] = 0;
            prev_rep = 0;
            continue;
        case ')':
            if (depth > 0)
                elem = group[depth--] + 1;
            break;
        case '|':
            last[depth] = 0;
            prev_rep = 0;
            continue;
        case '*':
        case '?':
            times = 1;
            break;
        case '+':
            times = 2;
            break;
        case '{': {
            char *end;
            unsigned long n = strtoul(p + i + 1, &end, 10), m = n;
            if (*end == ',')
                m = end[1] == '}' ? n + 1 : strtoul(end + 1, &end, 10);
            else if (*end != '}')
                break; /* not a bound: a literal '{' */
            times = (double)(m > n ? m : n);
            if (times < 1)
                times = 1;
            const char *close = strchr(p + i, '}');
            if (close)
                i = (size_t)(close - p);
            break;
        }
        case '[':
            /* One element: skip to the closing ']' (a first ']' is a member;
             * so is anything inside [: :], [. .], [= =]). */
            i++;
            if (p[i] == '^')
                i++;
            if (p[i] == ']')
                i++;
            while (p[i] && p[i] != ']') {
                if (p[i] == '[' && (p[i + 1] == ':' || p[i + 1] == '.' || p[i + 1] == '=')) {
                    const char *close = strstr(p + i + 2, (char[]){p[i + 1], ']', 0});
                    i = close ? (size_t)(close - p) + 1 : strlen(p) - 1;
                }
                i++;
            }
            if (!p[i])
                return group[depth] + 1; /* unterminated: regcomp refuses it */
            break;
        case '\\':
            if (p[i + 1])
                i++;
            break;
        }
        if (times > 0) {
            /* A repetition of a repetition ("a**", "a+*", "a*{2}") means
             * nothing more than one, but glibc nests a closure per operator:
             * 140 stacked '*' took regcomp/regexec past 12 s (found by
             * fuzz_ingress). Refuse them. */
            if (prev_rep)
                return 1e300;
            prev_rep = 1;
            group[depth] += last[depth] * (times - 1);
            last[depth] *= times;
        } else {
            prev_rep = 0;
            group[depth] += elem;
            last[depth] = elem;
        }
        if (group[depth] > MAX_PATH_REGEX_COPIES)
            return group[depth];
    }
    double total = 0;
    for (int d = 0; d <= depth; d++)
        total += group[d];
    return total;
}

static int set_path(struct cn_rule *r, const char *p, const char *where,
                    struct cn_ingress_errors *errs)
{
    if (!p)
        return 0;
    if (regex_copies(p) > MAX_PATH_REGEX_COPIES) {
        add_err(errs,
                "%s: path \"%.80s%s\" repeats too much: its repetitions (+, *, ?, {n,m}) would "
                "expand it beyond %d steps, or repeat a repetition (like ** or +*); simplify it",
                where, p, strlen(p) > 80 ? "..." : "", MAX_PATH_REGEX_COPIES);
        return -1;
    }
    int rc = regcomp(&r->re, p, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char msg[200];
        regerror(rc, &r->re, msg, sizeof(msg));
        add_err(errs, "%s: path \"%s\" is not a valid regular expression: %s", where, p, msg);
        return -1;
    }
    r->path = dup_str(p, errs);
    if (!r->path) {
        regfree(&r->re); /* a rule without its path would match every path */
        return -1;
    }
    return 0;
}

static int is_catch_all(const struct cn_rule *r)
{
    return !r->broken && r->hostname[0] == '\0' && !r->path;
}

static void collect_hostnames(struct cn_ingress *ing, struct cn_ingress_errors *errs)
{
    ing->hostnames = calloc(ing->n ? ing->n : 1, sizeof(char *));
    if (!ing->hostnames) {
        errs->nomem = 1;
        return;
    }
    for (size_t i = 0; i < ing->n; i++) {
        const char *h = ing->rules[i].hostname;
        if (!h[0])
            continue;
        int dup = 0;
        for (size_t k = 0; k < ing->n_hostnames; k++)
            if (strcmp(ing->hostnames[k], h) == 0)
                dup = 1;
        if (!dup && (ing->hostnames[ing->n_hostnames] = dup_str(h, errs)))
            ing->n_hostnames++;
    }
}

static void check_order(struct cn_ingress *ing, struct cn_ingress_errors *errs)
{
    if (ing->n == 0) {
        add_err(errs, "no ingress rules: add at least a catch-all rule such as "
                      "{ \"service\": \"http_status:404\" }");
        return;
    }
    for (size_t i = 0; i + 1 < ing->n; i++)
        if (is_catch_all(&ing->rules[i]))
            add_err(errs,
                    "rule #%zu matches every request, so the rules after it can never match: "
                    "move it to the end",
                    i + 1);
    if (!is_catch_all(&ing->rules[ing->n - 1]))
        add_err(errs,
                "the last rule (#%zu) must match every request (no hostname, no path), "
                "e.g. { \"service\": \"http_status:404\" }",
                ing->n);
}

int cn_ingress_parse(const char *text, size_t len, struct cn_ingress **out,
                     struct cn_ingress_errors *errs)
{
    *out = NULL;
    size_t errs_before = errs->n;
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        add_err(errs, "line %d, column %d: %s", jerr.line, jerr.column, jerr.text);
        return PX_ERR_INVAL;
    }
    struct cn_ingress *ing = calloc(1, sizeof(*ing));
    struct cn_origin_opts defaults = {0};
    if (!ing || !json_is_object(root)) {
        if (ing)
            add_err(errs, "the configuration must be a JSON object with an \"ingress\" list");
        free(ing);
        json_decref(root);
        return ing ? PX_ERR_INVAL : PX_ERR_NOMEM;
    }
    ing->refs = 1;
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v)
    {
        if (strcmp(k, "ingress") != 0 && strcmp(k, "originRequest") != 0)
            add_err(errs, "unknown top-level key \"%s\" (a typo? known: ingress, originRequest)",
                    k);
    }
    json_t *top = json_object_get(root, "originRequest");
    if (top)
        parse_opts(top, &defaults, "originRequest", errs);
    json_t *rules = json_object_get(root, "ingress");
    if (!json_is_array(rules)) {
        add_err(errs, "\"ingress\" must be a list of rules");
    } else if (json_array_size(rules) > MAX_RULES) {
        add_err(errs, "too many ingress rules (at most %d)", MAX_RULES);
    } else {
        ing->rules = calloc(json_array_size(rules) + 1, sizeof(*ing->rules));
        if (!ing->rules)
            errs->nomem = 1;
        for (size_t i = 0; ing->rules && i < json_array_size(rules); i++) {
            json_t *jr = json_array_get(rules, i);
            char where[64];
            snprintf(where, sizeof(where), "rule #%zu", i + 1);
            struct cn_rule *r = &ing->rules[ing->n++];
            r->index = i;
            if (!json_is_object(jr)) {
                add_err(errs, "%s: a rule must be an object", where);
                r->broken = 1;
                continue;
            }

            json_object_foreach(jr, k, v)
            {
                if (strcmp(k, "hostname") && strcmp(k, "path") && strcmp(k, "service") &&
                    strcmp(k, "originRequest"))
                    add_err(errs,
                            "%s: unknown key \"%s\" (a typo? known: hostname, path, service, "
                            "originRequest)",
                            where, k);
            }
            json_t *h = json_object_get(jr, "hostname"), *p = json_object_get(jr, "path"),
                   *s = json_object_get(jr, "service");
            if (h && !json_is_string(h)) {
                add_err(errs, "%s: hostname must be a string", where);
                r->broken = 1;
            } else
                set_hostname(r, json_string_value(h), where, errs);
            if (p && !json_is_string(p)) {
                add_err(errs, "%s: path must be a string (a regular expression)", where);
                r->broken = 1;
            } else if (set_path(r, json_string_value(p), where, errs) < 0) {
                r->broken = 1;
            }
            if (!json_is_string(s))
                add_err(errs, "%s: a rule needs a \"service\" string", where);
            else
                parse_service(r, json_string_value(s), where, errs);
            struct cn_origin_opts own = {0};
            json_t *jo = json_object_get(jr, "originRequest");
            if (jo)
                parse_opts(jo, &own, where, errs);
            merge_opts(&r->o, &defaults, &own, errs);
            check_origin_pull(r, own.set, 0, where, errs);
            cn_origin_opts_cleanup(&own);
            finish_opts(r, where, errs);
        }
        check_order(ing, errs);
    }
    cn_origin_opts_cleanup(&defaults);
    json_decref(root);
    if (errs->n == errs_before && ing->rules && !errs->nomem)
        collect_hostnames(ing, errs);
    if (errs->n > errs_before || !ing->rules || errs->nomem) {
        if (errs->nomem)
            add_err(errs, "out of memory");
        free_rules(ing);
        return errs->nomem ? PX_ERR_NOMEM : PX_ERR_INVAL;
    }
    *out = ing;
    return 0;
}

int cn_ingress_load(const char *path, struct cn_ingress **out, struct cn_ingress_errors *errs)
{
    size_t len;
    int err = 0;
    *out = NULL;
    char *text = rt_file_read(path, 16 << 20, &len, &err);
    if (!text) {
        add_err(errs, "cannot read %s: %s", path, strerror(err));
        return PX_ERR_IO;
    }
    size_t before = errs->n;
    int rc = cn_ingress_parse(text, len, out, errs);
    free(text);
    /* Prefix JSON syntax errors with the file name. */
    for (size_t i = before; i < errs->n; i++) {
        if (strncmp(errs->lines[i], "line ", 5) == 0) {
            char buf[700];
            snprintf(buf, sizeof(buf), "%s: %s", path, errs->lines[i]);
            char *line = strdup(buf);
            if (line) { /* else the line keeps its text without the file name */
                free(errs->lines[i]);
                errs->lines[i] = line;
            }
        }
    }
    return rc;
}

int cn_ingress_from_flags(const char *const *hostnames, const char *const *urls, size_t n,
                          size_t n_urls, const struct cn_origin_opts *defaults,
                          struct cn_ingress **out, struct cn_ingress_errors *errs)
{
    *out = NULL;
    size_t before = errs->n;
    struct cn_ingress *ing = calloc(1, sizeof(*ing));
    if (!ing)
        return PX_ERR_NOMEM;
    ing->refs = 1;
    ing->rules = calloc(n + 1, sizeof(*ing->rules));
    if (!ing->rules) {
        free(ing);
        return PX_ERR_NOMEM;
    }
    struct cn_origin_opts none = {0};
    check_header_values(defaults, NULL, 1, errs);
    for (size_t i = 0; i <= n; i++) {
        struct cn_rule *r = &ing->rules[ing->n++];
        r->index = i;
        char where[300];
        if (i == n) {
            parse_service(r, "http_status:404", "catch-all", errs);
            merge_opts(&r->o, &none, &none, errs);
            continue;
        }
        char *shown = printable(hostnames[i]);
        snprintf(where, sizeof(where), "--hostname %s", shown ? shown : "?");
        free(shown);
        if (!hostnames[i][0]) {
            add_err(errs, "--hostname must not be empty");
            continue;
        }
        if (strcmp(hostnames[i], "*") == 0) {
            add_err(errs, "--hostname * would match every host: name a host or a *.suffix "
                          "pattern");
            continue;
        }
        set_hostname(r, hostnames[i], where, errs);
        parse_service(r, urls[n_urls == 1 ? 0 : i], where, errs);
        merge_opts(&r->o, defaults, &none, errs);
        check_origin_pull(r, defaults->set, 1, where, errs);
        finish_opts(r, where, errs);
    }
    if (errs->n == before && !errs->nomem)
        collect_hostnames(ing, errs);
    if (errs->n > before || errs->nomem) {
        if (errs->nomem)
            add_err(errs, "out of memory");
        free_rules(ing);
        return errs->nomem ? PX_ERR_NOMEM : PX_ERR_INVAL;
    }
    *out = ing;
    return 0;
}

const struct cn_rule *cn_ingress_match(const struct cn_ingress *ing, const char *host,
                                       const char *path)
{
    /* The whole path, however long: a truncated copy could match a rule
     * ("^/public/[a-z]*$") that the full path does not. */
    size_t pl = strcspn(path, "?#");
    char *p = strndup(path, pl);
    if (!p)
        return NULL;
    const struct cn_rule *found = NULL;
    for (size_t i = 0; i < ing->n && !found; i++) {
        const struct cn_rule *r = &ing->rules[i];
        if (r->hostname[0] && !px_host_match(r->hostname, host))
            continue;
        if (r->path && regexec(&r->re, p, 0, NULL, 0) != 0)
            continue;
        found = r;
    }
    free(p);
    return found;
}
