/* libFuzzer target for header mapping on both ends of the tunnel:
 * the px_headers predicates, es_req_add_header (browser request -> tunnel
 * request), es_req_resp_header (tunnel response -> browser response) and
 * cn_stream_on_header (tunnel request -> origin request).
 * The input is lines "Kname:value" where K picks where the field goes:
 *   q  a browser request header at the edge (es_req_add_header); after the
 *      last one the request is dispatched through an in-memory tunnel to a
 *      hello_world rule, which echoes the headers the connector received;
 *   r  a response header from the tunnel (es_req_resp_header);
 *   c  a request header at the connector (cn_stream_on_header);
 *   any other K: only the predicates.
 * Fields are first filtered as the layer in front would (HTTP/2: nghttp2's
 * name and value checks; :status three digits), so only bytes that can reach
 * the mapping are tried.
 * Properties: no crash or leak; px_hdr_valid accepts exactly token names and
 * values without CR, LF, NUL; the hop-by-hop and edge-metadata predicates
 * ignore case; what the connector receives has no hop-by-hop or Tunnel-*
 * field, exactly one X-Forwarded-For ending with the client's address and
 * exactly one X-Real-IP, X-Request-Id and X-Forwarded-Proto; mapped response
 * headers hold no hop-by-hop or pseudo field; what the connector forwards is
 * valid and has no hop-by-hop, Host, Content-Length or Expect. */
#include "fuzz_world.h"
#include "cn_link.h"
#include "cn_stream_int.h" /* reads the head the stream keeps for the origin */
#include "es_req.h"
#include "px_headers.h"
#include "px_hostname.h"

#include <ctype.h>
#include <nghttp2/nghttp2.h>
#include <string.h>
#include <strings.h>

#define MAX_FIELDS 256

static const char ingress[] = "{\"ingress\":["
                              "{\"hostname\":\"*.fuzz.test\",\"service\":\"hello_world\"},"
                              "{\"service\":\"http_status:404\"}]}";

struct field {
    char kind;
    const char *n, *v;
    size_t nl, vl;
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_world_init(ingress, 0);
    return 0;
}

static void on_resp(struct es_req *r)
{
    (void)r;
}

static void on_consumed(struct es_req *r, size_t n)
{
    (void)r;
    (void)n;
}

static const struct es_front_ops ops = {
    .resp_headers = on_resp, .resp_data = on_resp, .req_consumed = on_consumed};

static size_t parse(const uint8_t *data, size_t size, struct field *f)
{
    size_t n = 0;
    const char *p = (const char *)data, *end = p + size;
    while (p < end && n < MAX_FIELDS) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        if (eol - p >= 2) {
            const char *name = p + 1;
            const char *colon = memchr(name + 1, ':', (size_t)(eol - name - 1));
            if (colon) {
                f[n] = (struct field){p[0], name, colon + 1, (size_t)(colon - name),
                                      (size_t)(eol - colon - 1)};
                n++;
            }
        }
        p = eol + 1;
    }
    return n;
}

static int is_tchar(unsigned char c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static void check_predicates(const struct field *f)
{
    int valid = px_hdr_valid(f->n, f->nl, f->v, f->vl);
    int want = f->nl > 0;
    for (size_t i = 0; i < f->nl; i++)
        want &= is_tchar((unsigned char)f->n[i]);
    for (size_t i = 0; i < f->vl; i++)
        want &= f->v[i] != '\r' && f->v[i] != '\n' && f->v[i] != '\0';
    if (valid != want)
        FAIL();
    char up[512];
    if (f->nl <= sizeof(up)) {
        for (size_t i = 0; i < f->nl; i++)
            up[i] = (char)toupper((unsigned char)f->n[i]);
        if (px_hdr_is_hop_by_hop(f->n, f->nl) != px_hdr_is_hop_by_hop(up, f->nl) ||
            px_hdr_is_edge_metadata(f->n, f->nl) != px_hdr_is_edge_metadata(up, f->nl))
            FAIL();
        if (px_hdr_listed_in_connection(f->v, f->vl, f->n, f->nl) !=
            px_hdr_listed_in_connection(f->v, f->vl, up, f->nl))
            FAIL();
    }
}

/* What nghttp2 lets through to the on_header callback of an HTTP/2 peer. */
static int h2_passes(const struct field *f)
{
    if (f->nl > 0 && f->n[0] == ':') {
        if (!nghttp2_check_header_value((const uint8_t *)f->v, f->vl))
            return 0;
        return f->nl == 7 && memcmp(f->n, ":status", 7) == 0
                   ? f->vl == 3 && isdigit((unsigned char)f->v[0]) &&
                         isdigit((unsigned char)f->v[1]) && isdigit((unsigned char)f->v[2])
                   : 1;
    }
    return nghttp2_check_header_name((const uint8_t *)f->n, f->nl) &&
           nghttp2_check_header_value((const uint8_t *)f->v, f->vl);
}

/* The fields the connector received, from the hello_world page's <pre>:
 * "METHOD path", "host: ...", then one "name: value" per field. */
static void check_echo(const char *body, size_t len)
{
    const char *pre = memmem(body, len, "<pre>", 5);
    const char *end = memmem(body, len, "</pre>", 6);
    if (!pre || !end || end < pre)
        FAIL();
    const char *p = pre + 5;
    int line = 0, xff = 0, real_ip = 0, req_id = 0, proto = 0;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        size_t ll = (size_t)(eol - p);
        if (line++ >= 2) {
            const char *colon = memchr(p, ':', ll);
            if (!colon)
                FAIL();
            size_t nl = (size_t)(colon - p);
            const char *v = colon + 2;
            size_t vl = ll - nl - 2;
#define IS(lit) (nl == sizeof(lit) - 1 && strncasecmp(p, lit, nl) == 0)
            if (px_hdr_is_hop_by_hop(p, nl) || (nl >= 7 && strncasecmp(p, "tunnel-", 7) == 0) ||
                IS("expect") || IS("host"))
                FAIL();
            if (IS("x-forwarded-for")) {
                static const char ip[] = MW_CLIENT_IP;
                xff++;
                if (vl < sizeof(ip) - 1 || memcmp(v + vl - (sizeof(ip) - 1), ip, sizeof(ip) - 1) ||
                    (vl > sizeof(ip) - 1 && memcmp(v + vl - (sizeof(ip) - 1) - 2, ", ", 2)))
                    FAIL();
            }
            if (IS("x-real-ip")) {
                real_ip++;
                if (vl != strlen(MW_CLIENT_IP) || memcmp(v, MW_CLIENT_IP, vl) != 0)
                    FAIL();
            }
            if (IS("x-request-id"))
                req_id++;
            if (IS("x-forwarded-proto")) {
                proto++;
                if (vl != 5 || memcmp(v, "https", 5) != 0)
                    FAIL();
            }
#undef IS
        }
        p = eol + 1;
    }
    if (xff != 1 || real_ip != 1 || req_id != 1 || proto != 1)
        FAIL();
}

/* The TLS name the client would have sent: its first :authority or Host
 * (normalised), so requests reach the tunnel rather than all ending in 421. */
static void sni_of(const struct field *f, size_t n, char *out, size_t len)
{
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (f[i].kind != 'q')
            continue;
        if ((f[i].nl == 10 && strncasecmp(f[i].n, ":authority", 10) == 0) ||
            (f[i].nl == 4 && strncasecmp(f[i].n, "host", 4) == 0)) {
            if (px_host_normalize(f[i].v, f[i].vl, out, len) < 0)
                out[0] = '\0';
            return;
        }
    }
}

static void edge_request(struct mw *w, const struct field *f, size_t n)
{
    char sni[256];
    sni_of(f, n, sni, sizeof(sni));
    struct es_req *r = es_req_new(&w->srv, &ops, NULL, MW_CLIENT_IP, sni);
    if (!r)
        FAIL();
    r->front_proto = "HTTP/2";
    int ok = 1, upgrade = 0;
    for (size_t i = 0; i < n && ok; i++) {
        if (f[i].kind != 'q' || !h2_passes(&f[i]))
            continue;
        ok = es_req_add_header(r, f[i].n, f[i].nl, f[i].v, f[i].vl) == 0;
        upgrade |= f[i].nl == 7 && strncasecmp(f[i].n, "upgrade", 7) == 0;
    }
    if (ok && upgrade)
        ok = es_req_make_websocket(r) >= 0;
    if (!ok) {
        es_req_front_done(r); /* the front answers 400 and lets go */
        return;
    }
    es_req_dispatch(r, 0);
    mw_pump(w);
    /* The hello_world page (a HEAD gets its headers only). */
    if (r->resp_headers_done && r->resp_status == 200 && !r->local && r->resp_eof &&
        !r->resp_error && !r->is_head) {
        size_t len = px_buf_len(&r->resp_body);
        char *body = malloc(len + 1);
        if (!body)
            FAIL();
        len = es_req_take_body(r, (uint8_t *)body, len);
        check_echo(body, len);
        free(body);
    }
    es_req_front_done(r);
    mw_pump(w);
}

static void edge_response(struct mw *w, const struct field *f, size_t n)
{
    struct es_req *r = es_req_new(&w->srv, &ops, NULL, MW_CLIENT_IP, MW_SNI);
    if (!r)
        FAIL();
    for (size_t i = 0; i < n; i++) {
        if (f[i].kind != 'r' || !h2_passes(&f[i]))
            continue;
        if (es_req_resp_header(r, (const uint8_t *)f[i].n, f[i].nl, (const uint8_t *)f[i].v,
                               f[i].vl) < 0)
            break; /* the link resets the stream */
    }
    es_req_resp_headers_done(r);
    size_t n_fields;
    const nghttp2_nv *fields = es_req_resp_fields(r, &n_fields);
    for (size_t i = 0; i < n_fields; i++) {
        const nghttp2_nv *h = &fields[i];
        if (h->namelen == 0 || h->name[0] == ':' ||
            px_hdr_is_hop_by_hop((const char *)h->name, h->namelen))
            FAIL();
    }
    es_req_front_done(r);
}

/* The stream's host: only header parsing runs here, so nothing of it is
 * asked but the loop (and the release at the end). */
static int nh_hold(void *arg, ssize_t delta)
{
    (void)arg;
    (void)delta;
    return 0;
}

static void nh_consume(void *arg, int32_t id, size_t n)
{
    (void)arg;
    (void)id;
    (void)n;
}

static void nh_gone(void *arg, struct cn_stream *s)
{
    (void)arg;
    (void)s;
}

static const struct cn_stream_host_ops null_host_ops = {
    .hold = nh_hold,
    .consume = nh_consume,
    .gone = nh_gone,
};

static void connector_request(struct mw *w, const struct field *f, size_t n)
{
    struct cn_stream_host host = {.ops = &null_host_ops, .env = {.loop = &w->loop}};
    struct cn_stream *s = cn_stream_new(&host, 0x7ffffff1);
    if (!s)
        FAIL();
    for (size_t i = 0; i < n; i++) {
        if (f[i].kind != 'c' || !h2_passes(&f[i]))
            continue;
        if (cn_stream_on_header(s, (const uint8_t *)f[i].n, f[i].nl, (const uint8_t *)f[i].v,
                                f[i].vl) != 0)
            break; /* nghttp2 resets the stream */
    }
    for (struct curl_slist *h = s->req_headers; h; h = h->next) {
        const char *colon = strchr(h->data, ':');
        if (!colon || colon[1] != ' ')
            FAIL();
        size_t nl = (size_t)(colon - h->data);
        if (!px_hdr_valid(h->data, nl, colon + 2, strlen(colon + 2)) ||
            px_hdr_is_hop_by_hop(h->data, nl) || (nl == 4 && !strncasecmp(h->data, "host", 4)) ||
            (nl == 14 && !strncasecmp(h->data, "content-length", 14)) ||
            (nl == 6 && !strncasecmp(h->data, "expect", 6)))
            FAIL();
    }
    cn_stream_destroy(s);
    mw_pump(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct field f[MAX_FIELDS];
    struct mw *w = &fz_world;
    size_t n = parse(data, size, f);
    int q = 0, r = 0, c = 0;
    for (size_t i = 0; i < n; i++) {
        check_predicates(&f[i]);
        q |= f[i].kind == 'q';
        r |= f[i].kind == 'r';
        c |= f[i].kind == 'c';
    }
    if (q || c) {
        if (mw_links_open(w) < 0)
            FAIL();
        if (q)
            edge_request(w, f, n);
        if (c)
            connector_request(w, f, n);
    }
    if (r)
        edge_response(w, f, n);
    if (mw_close_all(w) < 0)
        FAIL();
    return 0;
}
