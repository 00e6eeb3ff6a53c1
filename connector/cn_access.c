#include "cn_access.h"
#include "cn_usage.h"
#include "px_err.h"
#include "px_h2.h"
#include "px_hostname.h"
#include "px_keypair.h"
#include "px_log.h"
#include "px_token.h"
#include "rt_cli.h"
#include "rt_conn.h"
#include "rt_file.h"
#include "rt_h2.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STREAM_WINDOW (1 << 20)
#define CONN_WINDOW (4 << 20)
#define LOCAL_HIGH (256 * 1024)
#define LOCAL_LOW (64 * 1024)

struct access_cfg {
    char hostname[256];
    char edge[300];
    char listen[300];
    WOLFSSL_CTX *ctx;
    uv_loop_t *loop;
    int stdio;
    int exit_code;  /* the command's, once its connections end */
    char *read_buf; /* local reads land here, then are copied into a->up */
};

/* One local connection carried as one extended CONNECT stream over its own
 * TLS + HTTP/2 connection to the edge. */
struct access_conn {
    struct access_cfg *cfg;
    struct rt_conn edge;
    nghttp2_session *h2;
    int32_t sid;
    int established;
    /* local side: a TCP client, or stdin/stdout */
    uv_tcp_t tcp;
    uv_pipe_t in, out;
    uv_stream_t *rd, *wr;
    int local_handles;
    int local_eof, local_closed, local_paused;
    struct px_buf up; /* local -> edge */
    int up_deferred;
    size_t down_pending; /* edge -> local bytes written but not yet acknowledged */
    int edge_eof;
    int edge_gone;
};

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    free(req);
}

static void shutdown_local(struct access_conn *a)
{
    uv_shutdown_t *req = malloc(sizeof(*req));
    if (req && uv_shutdown(req, a->wr, on_shutdown) < 0)
        free(req);
}

static void conn_maybe_free(struct access_conn *a);

static void local_close_cb(uv_handle_t *h)
{
    struct access_conn *a = h->data;
    a->local_handles--;
    conn_maybe_free(a);
}

static void close_local(struct access_conn *a)
{
    if (a->local_closed)
        return;
    a->local_closed = 1;
    if (a->cfg->stdio) {
        uv_close((uv_handle_t *)&a->in, local_close_cb);
        uv_close((uv_handle_t *)&a->out, local_close_cb);
    } else {
        uv_close((uv_handle_t *)&a->tcp, local_close_cb);
    }
}

static void conn_maybe_free(struct access_conn *a)
{
    if (a->local_handles > 0 || !a->edge_gone)
        return;
    px_buf_cleanup(&a->up);
    int stdio = a->cfg->stdio;
    uv_loop_t *loop = a->cfg->loop;
    free(a);
    if (stdio)
        uv_stop(loop); /* ProxyCommand mode: one connection, then exit */
}

static void finish(struct access_conn *a, const char *why)
{
    if (why)
        PX_WARN("%s", why);
    close_local(a);
    rt_conn_close(&a->edge, 0);
}

/* ---- local side ---- */

#define READ_BUF_SIZE (64 * 1024)

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    struct access_conn *a = h->data;
    *b = uv_buf_init(a->cfg->read_buf, READ_BUF_SIZE);
}

static void on_local_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct access_conn *a = s->data;
    if (n < 0) {
        a->local_eof = 1;
        uv_read_stop(s);
    } else if (n > 0 && px_buf_append(&a->up, b->base, (size_t)n) < 0) {
        finish(a, "out of memory");
        return;
    }
    if (px_buf_len(&a->up) >= LOCAL_HIGH && !a->local_paused) {
        a->local_paused = 1;
        uv_read_stop(s);
    }
    if (a->h2 && a->sid > 0 && a->up_deferred) {
        a->up_deferred = 0;
        nghttp2_session_resume_data(a->h2, a->sid);
    }
    rt_conn_want_write(&a->edge);
}

static void start_local_reading(struct access_conn *a)
{
    if (!a->local_closed && !a->local_eof)
        uv_read_start(a->rd, on_alloc, on_local_read);
}

struct wreq {
    uv_write_t req;
    struct access_conn *a;
    size_t len;
    char data[];
};

static void on_local_written(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    struct access_conn *a = w->a;
    a->down_pending -= w->len;
    if (a->h2 && !a->edge_gone) {
        nghttp2_session_consume(a->h2, a->sid, w->len);
        rt_conn_want_write(&a->edge);
    }
    free(w);
    if (status < 0) {
        finish(a, NULL);
        return;
    }
    if (a->edge_eof && a->down_pending == 0 && !a->local_closed) {
        if (a->local_eof)
            finish(a, NULL);
        else if (!a->cfg->stdio)
            shutdown_local(a);
    }
}

/* ---- edge side ---- */

static ssize_t up_read(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                       nghttp2_data_source *src, void *user)
{
    (void)h2;
    (void)id;
    (void)user;
    struct access_conn *a = src->ptr;
    size_t n = px_buf_read(&a->up, buf, len);
    if (a->local_paused && px_buf_len(&a->up) <= LOCAL_LOW) {
        a->local_paused = 0;
        start_local_reading(a);
    }
    if (px_buf_len(&a->up) == 0 && a->local_eof) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        return (ssize_t)n;
    }
    if (n == 0) {
        a->up_deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    return (ssize_t)n;
}

static int on_header(nghttp2_session *h2, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
    (void)h2;
    (void)flags;
    struct access_conn *a = user;
    if (f->hd.type != NGHTTP2_HEADERS || f->hd.stream_id != a->sid)
        return 0;
    if (nlen == 7 && memcmp(name, ":status", 7) == 0) {
        if (vlen == 3 && memcmp(value, "200", 3) == 0) {
            a->established = 1;
        } else {
            fprintf(stderr,
                    "connector: the edge answered %.*s for %s (is the hostname a "
                    "tcp:// or ssh:// service of a running connector?)\n",
                    (int)vlen, value, a->cfg->hostname);
            a->cfg->exit_code = 1;
        }
    }
    return 0;
}

static int on_frame_recv(nghttp2_session *h2, const nghttp2_frame *f, void *user)
{
    (void)h2;
    struct access_conn *a = user;
    if (f->hd.stream_id != a->sid)
        return 0;
    if (f->hd.type == NGHTTP2_HEADERS && !a->established) {
        finish(a, NULL);
        return 0;
    }
    if (f->hd.type == NGHTTP2_HEADERS && a->established)
        start_local_reading(a);
    if ((f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS) &&
        (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        a->edge_eof = 1;
        if (a->down_pending == 0) {
            if (a->local_eof || a->cfg->stdio)
                finish(a, NULL);
            else if (!a->local_closed)
                shutdown_local(a);
        }
    }
    return 0;
}

static int on_data(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                   void *user)
{
    (void)flags;
    struct access_conn *a = user;
    if (id != a->sid || a->local_closed) {
        nghttp2_session_consume(h2, id, len);
        return 0;
    }
    struct wreq *w = malloc(sizeof(*w) + len);
    if (!w)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    w->a = a;
    w->len = len;
    memcpy(w->data, data, len);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
    if (uv_write(&w->req, a->wr, &b, 1, on_local_written) < 0) {
        free(w);
        nghttp2_session_consume(h2, id, len);
        return 0;
    }
    /* Credit goes back only when the local side has taken the bytes. */
    a->down_pending += len;
    return 0;
}

static int on_stream_close(nghttp2_session *h2, int32_t id, uint32_t err, void *user)
{
    (void)h2;
    struct access_conn *a = user;
    if (id == a->sid) {
        if (err != NGHTTP2_NO_ERROR && a->established)
            PX_WARN("the edge reset the stream (error %u)", err);
        a->edge_eof = 1;
        if (a->down_pending == 0)
            finish(a, NULL);
    }
    return 0;
}

static int edge_open(struct rt_conn *c)
{
    struct access_conn *a = c->owner;
    if (strcmp(px_tls_alpn(&c->tls), "h2") != 0) {
        fprintf(stderr, "connector: %s does not speak HTTP/2\n", a->cfg->edge);
        a->cfg->exit_code = 1;
        return -1;
    }
    static const struct px_h2_callbacks cb = {
        .header = on_header,
        .frame_recv = on_frame_recv,
        .data_chunk = on_data,
        .stream_close = on_stream_close,
    };
    const nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
    };
    if (px_h2_session_new(&a->h2, 0, &cb, a, iv, 2, CONN_WINDOW) < 0)
        return -1;
    nghttp2_nv nv[] = {
        {(uint8_t *)":method", (uint8_t *)"CONNECT", 7, 7, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":protocol", (uint8_t *)"websocket", 9, 9, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":scheme", (uint8_t *)"https", 7, 5, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":authority", (uint8_t *)a->cfg->hostname, 10, strlen(a->cfg->hostname),
         NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":path", (uint8_t *)"/", 5, 1, NGHTTP2_NV_FLAG_NONE},
    };
    nghttp2_data_provider dp = {.source.ptr = a, .read_callback = up_read};
    a->sid = nghttp2_submit_request(a->h2, NULL, nv, 5, &dp, NULL);
    return a->sid < 0 ? -1 : 0;
}

static int edge_data(struct rt_conn *c, const uint8_t *data, size_t len)
{
    struct access_conn *a = c->owner;
    return nghttp2_session_mem_recv(a->h2, data, len) < 0 ? -1 : 0;
}

static int edge_writable(struct rt_conn *c)
{
    struct access_conn *a = c->owner;
    return rt_h2_flush(c, a->h2);
}

static void edge_close(struct rt_conn *c, int err)
{
    (void)err;
    struct access_conn *a = c->owner;
    if (!a->established && c->err_text[0]) {
        fprintf(stderr, "connector: cannot reach the edge %s: %s\n", a->cfg->edge, c->err_text);
        a->cfg->exit_code = 1;
    }
    if (a->h2)
        nghttp2_session_del(a->h2);
    a->h2 = NULL;
    a->edge_gone = 1;
    close_local(a);
    conn_maybe_free(a);
}

static const struct rt_conn_ops edge_ops = {.on_open = edge_open,
                                            .on_data = edge_data,
                                            .on_writable = edge_writable,
                                            .on_close = edge_close};

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct access_conn *a = req->data;
    free(req);
    if (status < 0 || !res) {
        snprintf(a->edge.err_text, sizeof(a->edge.err_text), "cannot resolve: %s",
                 uv_strerror(status));
        if (res)
            uv_freeaddrinfo(res);
        rt_conn_abort(&a->edge, PX_ERR_IO);
        return;
    }
    char host[256];
    int port;
    px_split_hostport(a->cfg->edge, host, sizeof(host), &port);
    rt_conn_connect(&a->edge, res->ai_addr, a->cfg->ctx, a->cfg->hostname, "h2", 15000);
    uv_freeaddrinfo(res);
}

static struct access_conn *conn_new(struct access_cfg *cfg)
{
    struct access_conn *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->cfg = cfg;
    px_buf_init(&a->up);
    if (rt_conn_init(&a->edge, cfg->loop, &edge_ops, a) < 0) {
        free(a);
        return NULL;
    }
    return a;
}

static void conn_dial(struct access_conn *a)
{
    char host[256], port[16];
    int p;
    px_split_hostport(a->cfg->edge, host, sizeof(host), &p);
    snprintf(port, sizeof(port), "%d", p);
    uv_getaddrinfo_t *req = malloc(sizeof(*req));
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
    if (!req || uv_getaddrinfo(a->cfg->loop, req, on_resolved, host, port, &hints) < 0) {
        free(req);
        rt_conn_abort(&a->edge, PX_ERR_IO);
        return;
    }
    req->data = a;
}

static void on_local_conn(uv_stream_t *server, int status)
{
    struct access_cfg *cfg = server->data;
    if (status < 0)
        return;
    struct access_conn *a = conn_new(cfg);
    if (!a)
        return;
    uv_tcp_init(cfg->loop, &a->tcp);
    a->tcp.data = a;
    a->local_handles = 1;
    a->rd = a->wr = (uv_stream_t *)&a->tcp;
    if (uv_accept(server, a->rd) < 0) {
        finish(a, NULL);
        return;
    }
    uv_tcp_nodelay(&a->tcp, 1);
    conn_dial(a);
}

static void on_signal(uv_signal_t *h, int signum)
{
    (void)signum;
    uv_stop(h->loop);
}

static void usage(void)
{
    fputs(cn_usage_access_tcp, stderr);
}

/* Makes ctx present the client certificate in cert_file with the key in
 * key_file. Returns 0, or -1 after saying on stderr which file is wrong. */
static int use_client_cert(WOLFSSL_CTX *ctx, const char *cert_file, const char *key_file)
{
    int rc = -1, err = 0;
    char why[600];
    char *key = NULL;
    size_t key_len = 0;
    char *cert = rt_file_read(cert_file, 1 << 20, NULL, &err);
    if (!cert) {
        fprintf(stderr, "connector: cannot read --cert %s: %s\n", cert_file, strerror(err));
        goto out;
    }
    /* A key others can read is refused, as ssh refuses one (and as the
     * connector treats its own tunnel key). */
    int r = rt_file_read_private(key_file, 1 << 20, &key, &key_len, why, sizeof(why));
    if (r == PX_ERR_NOT_FOUND) {
        fprintf(stderr, "connector: cannot read --key %s: %s\n", key_file, strerror(ENOENT));
        goto out;
    }
    if (r < 0) {
        fprintf(stderr, "connector: cannot use --key: %s\n", why);
        goto out;
    }
    if (wolfSSL_CTX_use_certificate_chain_buffer(ctx, (const unsigned char *)cert,
                                                 (long)strlen(cert)) != WOLFSSL_SUCCESS) {
        fprintf(stderr, "connector: --cert %s holds no PEM certificate wolfSSL can read\n",
                cert_file);
        goto out;
    }
    if (wolfSSL_CTX_use_PrivateKey_buffer(ctx, (const unsigned char *)key, (long)key_len,
                                          WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS) {
        fprintf(stderr, "connector: --key %s holds no PEM private key wolfSSL can read\n",
                key_file);
        goto out;
    }
    /* wolfSSL_CTX_check_private_key accepts any key in Debian's build. */
    r = px_keypair_check(cert, key);
    if (r == PX_ERR_DENIED) {
        fprintf(stderr, "connector: --key %s is not the key of the certificate in --cert %s\n",
                key_file, cert_file);
        goto out;
    }
    if (r < 0) {
        fprintf(stderr, "connector: cannot check --key %s against --cert %s: %s\n", key_file,
                cert_file, px_strerror(r));
        goto out;
    }
    rc = 0;
out:
    if (key)
        memset(key, 0, key_len);
    free(key);
    free(cert);
    return rc;
}

int cn_access_main(int argc, char **argv)
{
    static const struct option opts[] = {RT_CLI_ARG("hostname", 'H'), RT_CLI_ARG("url", 'u'),
                                         RT_CLI_ARG("edge", 'e'),     RT_CLI_ARG("edge-ca", 'c'),
                                         RT_CLI_ARG("loglevel", 'l'), RT_CLI_ARG("cert", 'C'),
                                         RT_CLI_ARG("key", 'K'),      RT_CLI_END};
    struct access_cfg cfg = {0};
    const char *hostname = "", *listen_addr = "", *edge = "";
    const char *ca_file = NULL, *cert_file = NULL, *key_file = NULL;
    const struct rt_cli_keep keep[] = {{'H', &hostname}, {'u', &listen_addr}, {'e', &edge},
                                       {'c', &ca_file},  {'C', &cert_file},   {'K', &key_file},
                                       {0, NULL}};
    enum px_log_level lvl = PX_LOG_WARN;
    if (argc < 2 || strcmp(argv[1], "tcp") != 0) {
        usage();
        return 2;
    }
    struct rt_cli cli;
    rt_cli_start(&cli, argc - 1, argv + 1, opts, keep);
    int c;
    while ((c = rt_cli_next(&cli)) > 0) { /* --loglevel */
        if (px_log_parse_level(optarg, &lvl) < 0)
            break;
    }
    if (c != 0) {
        usage();
        return 2;
    }
    snprintf(cfg.hostname, sizeof(cfg.hostname), "%s", hostname);
    snprintf(cfg.listen, sizeof(cfg.listen), "%s", listen_addr);
    snprintf(cfg.edge, sizeof(cfg.edge), "%s", edge);
    px_log_set_level(lvl);
    char h[256];
    int port;
    if (!cfg.hostname[0] ||
        px_host_normalize(cfg.hostname, strlen(cfg.hostname), h, sizeof(h)) < 0) {
        fprintf(stderr, "connector: access tcp needs --hostname HOST\n");
        return 2;
    }
    if (!cfg.edge[0])
        snprintf(cfg.edge, sizeof(cfg.edge), "%s:443", cfg.hostname);
    if (px_split_hostport(cfg.edge, h, sizeof(h), &port) < 0 ||
        (cfg.listen[0] && px_split_hostport(cfg.listen, h, sizeof(h), &port) < 0)) {
        fprintf(stderr, "connector: --edge and --url take HOST:PORT\n");
        return 2;
    }
    if ((cert_file == NULL) != (key_file == NULL)) {
        fprintf(stderr, "connector: --cert and --key go together\n");
        usage();
        return 2;
    }
    if (px_tls_ctx_client(NULL, NULL, NULL, &cfg.ctx) < 0)
        return 1;
    if (cert_file && use_client_cert(cfg.ctx, cert_file, key_file) < 0) {
        wolfSSL_CTX_free(cfg.ctx);
        return 2;
    }
    /* Trust the system store, plus --edge-ca (e.g. the output of `edge-sim ca`). */
    wolfSSL_CTX_set_verify(cfg.ctx, WOLFSSL_VERIFY_PEER, NULL);
    wolfSSL_CTX_load_system_CA_certs(cfg.ctx);
    if (ca_file && wolfSSL_CTX_load_verify_locations(cfg.ctx, ca_file, NULL) != WOLFSSL_SUCCESS) {
        fprintf(stderr, "connector: cannot load --edge-ca %s\n", ca_file);
        wolfSSL_CTX_free(cfg.ctx);
        return 2;
    }
    cfg.loop = uv_default_loop();
    struct rt_loop rl;
    cfg.read_buf = malloc(READ_BUF_SIZE);
    if (!cfg.read_buf || rt_loop_init(&rl, cfg.loop) < 0) {
        fprintf(stderr, "connector: cannot set up the event loop\n");
        free(cfg.read_buf);
        wolfSSL_CTX_free(cfg.ctx);
        return 1;
    }
    int rc = 1;
    uv_signal_t sigint, sigterm;
    uv_signal_init(cfg.loop, &sigint);
    uv_signal_init(cfg.loop, &sigterm);
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_unref((uv_handle_t *)&sigint);
    uv_unref((uv_handle_t *)&sigterm);
    uv_tcp_t server;
    if (cfg.listen[0]) {
        struct sockaddr_storage ss;
        px_split_hostport(cfg.listen, h, sizeof(h), &port);
        if (uv_ip4_addr(h, port, (struct sockaddr_in *)&ss) != 0 &&
            uv_ip6_addr(h, port, (struct sockaddr_in6 *)&ss) != 0) {
            fprintf(stderr, "connector: --url must be a numeric IP:PORT to listen on\n");
            rc = 2;
            goto out;
        }
        uv_tcp_init(cfg.loop, &server);
        server.data = &cfg;
        int r = uv_tcp_bind(&server, (struct sockaddr *)&ss, 0);
        if (r == 0)
            r = uv_listen((uv_stream_t *)&server, 128, on_local_conn);
        if (r < 0) {
            fprintf(stderr, "connector: cannot listen on %s: %s\n", cfg.listen, uv_strerror(r));
            goto out;
        }
        fprintf(stderr, "connector: forwarding %s to %s through %s\n", cfg.listen, cfg.hostname,
                cfg.edge);
    } else {
        cfg.stdio = 1;
        struct access_conn *a = conn_new(&cfg);
        if (!a)
            goto out;
        uv_pipe_init(cfg.loop, &a->in, 0);
        uv_pipe_init(cfg.loop, &a->out, 0);
        a->in.data = a->out.data = a;
        a->local_handles = 2;
        if (uv_pipe_open(&a->in, 0) < 0 || uv_pipe_open(&a->out, 1) < 0) {
            fprintf(stderr, "connector: stdin/stdout must be pipes or sockets (use --url to "
                            "listen instead)\n");
            rc = 2;
            goto out;
        }
        a->rd = (uv_stream_t *)&a->in;
        a->wr = (uv_stream_t *)&a->out;
        conn_dial(a);
    }
    uv_run(cfg.loop, UV_RUN_DEFAULT);
    rc = cfg.exit_code;
out:
    /* Connections still open (a signal stopped the loop) end with the
     * process, and so do the closes this starts: the loop does not run again. */
    rt_loop_cleanup(&rl);
    free(cfg.read_buf);
    wolfSSL_CTX_free(cfg.ctx);
    return rc;
}
