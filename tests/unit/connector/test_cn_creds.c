/* cn_creds and cn_trust: the tunnel's certificates and their renewal.
 *
 * Part 1: the schedule's arithmetic (pure).
 * Part 2: cn_trust (the origin CA and the CA blobs curl gets).
 * Part 3: the state files (origin-ca.pem, origin-pull.key/.pem, cert.pem).
 * Part 4: in memory, the real link: the test plays the edge (an nghttp2
 * client on the connector's tunnel connection, reading its control lines)
 * and answers RENEW with RENEWED or renew_failed, sends ORIGIN_CA, and runs
 * an https origin on 127.0.0.1 (wolfSSL, in this loop) that requires a
 * client certificate from the test's origin-pull CA and serves a
 * certificate from the test's origin CA. The certificates are real
 * (px_pki), so every check the connector makes is exercised. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cn_creds.h"
#include "cn_identity.h"
#include "cn_ingress.h"
#include "cn_origin.h"
#include "cn_trust.h"
#include "mem_world.h"
#include "played_edge.h"
#include "px_cert.h"
#include "px_control.h"
#include "px_err.h"
#include "px_log.h"
#include "px_pki.h"
#include "rt_file.h"
#include "test_rng.h"

#include <nghttp2/nghttp2.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TID MW_TUNNEL_ID

/* ---- certificates made by the test ---- */

struct ca {
    char *key, *cert;
};

static struct ca client_ca, origin_ca, pull_ca, other_ca;
static char *origin_key, *origin_cert; /* the https origin's, for ha.local */

static void ca_make(struct ca *c, const char *cn)
{
    assert_int_equal(px_pki_keygen(test_rng(), &c->key), 0);
    assert_int_equal(px_pki_make_ca(test_rng(), c->key, cn, 30, &c->cert), 0);
}

static void ca_free(struct ca *c)
{
    free(c->key);
    free(c->cert);
    memset(c, 0, sizeof(*c));
}

/* A client certificate under ca for the key key_pem, valid from nb to na. */
static char *issue(const struct ca *ca, const char *key_pem, const char *uri, long long nb,
                   long long na)
{
    char *pub = NULL, *cert = NULL;
    assert_int_equal(px_pki_pubkey(key_pem, &pub), 0);
    struct px_pki_req r = {
        .cn = TID, .uri = uri, .usage = PX_PKI_CLIENT, .not_before = nb, .not_after = na};
    assert_int_equal(px_pki_issue_req(test_rng(), ca->cert, ca->key, pub, &r, &cert), 0);
    free(pub);
    return cert;
}

static long long now_s(void)
{
    return (long long)time(NULL);
}

/* ---- part 1: the schedule ---- */

static void test_renew_at(void **state)
{
    (void)state;
    /* Read from disk: 2/3 of not_before..not_after. */
    assert_int_equal(cn_creds_renew_at(1000, 1300, 0), 1200);
    assert_int_equal(cn_creds_renew_at(0, 7 * 86400, 0), 7 * 86400 * 2 / 3);
    /* Obtained now: the 60 s the edge backdates not_before by do not count,
     * or a 20 s certificate (not_before = t - 60) would be due at once. */
    long long t = 1700000000;
    assert_int_equal(cn_creds_renew_at(t - 60, t + 20, t), t + 13);
    assert_true(cn_creds_renew_at(t - 60, t + 20, 0) < t); /* counted from not_before: due */
    assert_int_equal(cn_creds_renew_at(t - 60, t + 7 * 86400, t), t + 7 * 86400 * 2 / 3);
    /* Obtained before not_before (a clock behind): from not_before. */
    assert_int_equal(cn_creds_renew_at(t, t + 300, t - 1000), t + 200);
    /* Already past not_after: due now. */
    assert_int_equal(cn_creds_renew_at(t - 100, t - 10, t), t);
    /* 825 days do not overflow. */
    long long far = t + 825LL * 86400;
    assert_int_equal(cn_creds_renew_at(t, far, 0), t + (far - t) * 2 / 3);
}

static void test_retry_cap(void **state)
{
    (void)state;
    long long t = 1700000000;
    /* min(60 s, lifetime/10), at least 1 s. */
    assert_int_equal(cn_creds_retry_cap_ms(t - 60, t + 20, t), 2000);
    assert_int_equal(cn_creds_retry_cap_ms(t, t + 300, 0), 30000);
    assert_int_equal(cn_creds_retry_cap_ms(t, t + 7 * 86400, t), 60000);
    assert_int_equal(cn_creds_retry_cap_ms(t, t + 5, t), 1000);
    assert_int_equal(cn_creds_retry_cap_ms(t, t - 5, t), 1000);
}

static void test_retry_delay(void **state)
{
    (void)state;
    struct cn_backoff b;
    cn_backoff_init(&b, 1000, 8000);
    /* Between half the ceiling and the ceiling, never under 1 s. */
    unsigned lo[] = {1000, 1000, 2000, 4000, 4000, 4000};
    unsigned hi[] = {1000, 2000, 4000, 8000, 8000, 8000};
    for (int i = 0; i < 6; i++) {
        struct cn_backoff b2 = b;
        unsigned a = cn_creds_retry_delay_ms(&b, 0);
        unsigned z = cn_creds_retry_delay_ms(&b2, 0xffffffffu);
        assert_int_equal(a, lo[i]);
        assert_int_equal(z, hi[i]);
    }
    cn_backoff_reset(&b);
    assert_int_equal(cn_creds_retry_delay_ms(&b, 0x80000000u), 1000);
    /* A cap under 1 s (lifetime/10 of a tiny lifetime) still waits 1 s. */
    cn_backoff_init(&b, 1000, 1000);
    for (int i = 0; i < 5; i++)
        assert_int_equal(cn_creds_retry_delay_ms(&b, 12345), 1000);
}

/* ---- part 2: cn_trust ---- */

static void test_trust_origin_ca(void **state)
{
    (void)state;
    struct cn_trust t;
    cn_trust_init(&t);
    struct cn_trust_blob *b = (struct cn_trust_blob *)1;
    /* No origin CA yet: the rule's own blob (or curl's bundle) is used. */
    assert_int_equal(cn_trust_blob_for(&t, NULL, &b), 0);
    assert_null(b);
    int changed = -1;
    /* Text around the PEM block is dropped; the stored form is re-encoded. */
    char *wrapped = NULL;
    assert_true(asprintf(&wrapped, "issuer: test\n%sgarbage\n", origin_ca.cert) > 0);
    assert_int_equal(cn_trust_set_origin_ca(&t, wrapped, &changed), 0);
    free(wrapped);
    assert_int_equal(changed, 1);
    assert_string_equal(cn_trust_origin_ca(&t), origin_ca.cert);
    assert_int_equal(cn_trust_set_origin_ca(&t, origin_ca.cert, &changed), 0);
    assert_int_equal(changed, 0);
    /* Rules without caPool share one blob: the system bundle, then the CA. */
    struct cn_trust_blob *b1 = NULL, *b2 = NULL;
    assert_int_equal(cn_trust_blob_for(&t, NULL, &b1), 0);
    assert_int_equal(cn_trust_blob_for(&t, NULL, &b2), 0);
    assert_non_null(b1);
    assert_ptr_equal(b1, b2);
    assert_int_equal(b1->len, strlen(b1->data));
    assert_non_null(strstr(b1->data, origin_ca.cert));
    size_t sys_len = b1->len - strlen(origin_ca.cert) - 1;
    char ca_path[CN_TRUST_PATH_MAX];
    if (access(cn_trust_system_ca_path(ca_path, sizeof(ca_path)), R_OK) == 0)
        assert_true(sys_len > 1000); /* the system CAs come first */
    cn_trust_blob_unref(b2);
    /* A rule with caPool: its blob (system + pool) then the CA, its own. */
    struct cn_origin_opts o = {0};
    o.ca_blob = strdup("POOL-BLOB");
    o.ca_blob_len = strlen(o.ca_blob);
    struct cn_trust_blob *bp = NULL;
    assert_int_equal(cn_trust_blob_for(&t, &o, &bp), 0);
    assert_ptr_not_equal(bp, b1);
    assert_true(strncmp(bp->data, "POOL-BLOB\n", 10) == 0);
    assert_string_equal(bp->data + 10, origin_ca.cert);
    cn_trust_blob_unref(bp);
    free(o.ca_blob);
    /* A new CA: later requests get a new blob; a request in flight keeps
     * the one it holds, intact. */
    assert_int_equal(cn_trust_set_origin_ca(&t, other_ca.cert, &changed), 0);
    assert_int_equal(changed, 1);
    struct cn_trust_blob *b3 = NULL;
    assert_int_equal(cn_trust_blob_for(&t, NULL, &b3), 0);
    assert_ptr_not_equal(b3, b1);
    assert_non_null(strstr(b3->data, other_ca.cert));
    assert_null(strstr(b3->data, origin_ca.cert));
    assert_non_null(strstr(b1->data, origin_ca.cert));
    cn_trust_blob_unref(b1);
    cn_trust_blob_unref(b3);
    cn_trust_cleanup(&t);
    cn_trust_blob_unref(NULL);
}

static void test_trust_hostile_origin_ca(void **state)
{
    (void)state;
    struct cn_trust t;
    cn_trust_init(&t);
    assert_int_equal(cn_trust_set_origin_ca(&t, origin_ca.cert, NULL), 0);
    /* A leaf (not a CA), no certificate, a block that does not decode, a
     * truncated one: refused, the previous CA stays. */
    char *key = NULL;
    assert_int_equal(px_pki_keygen(test_rng(), &key), 0);
    char *leaf = issue(&client_ca, key, NULL, now_s() - 10, now_s() + 100);
    char *cut = strdup(origin_ca.cert);
    cut[strlen(cut) / 2] = '\0';
    const char *bad[] = {
        leaf,
        "",
        "hello",
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        cut,
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int changed = -1;
        assert_int_equal(cn_trust_set_origin_ca(&t, bad[i], &changed), PX_ERR_INVAL);
        assert_int_equal(changed, 0);
        assert_string_equal(cn_trust_origin_ca(&t), origin_ca.cert);
    }
    assert_int_equal(cn_trust_set_origin_ca(&t, NULL, NULL), PX_ERR_INVAL);
    free(cut);
    free(leaf);
    free(key);
    cn_trust_cleanup(&t);
}

/* ---- part 3: state files ---- */

static char state_dir[] = "/tmp/cn-creds-test-XXXXXX";

static char *state_path(const char *name)
{
    char *p = NULL;
    assert_true(asprintf(&p, "%s/%s/%s", state_dir, TID, name) > 0);
    return p;
}

static void state_rm(const char *name)
{
    char *p = state_path(name);
    unlink(p);
    free(p);
}

static void state_write(const char *name, const char *text)
{
    char *p = state_path(name);
    assert_int_equal(rt_file_write_private(p, text), 0);
    free(p);
}

/* The file's text, or NULL when absent; checks the mode is 0600. */
static char *state_read(const char *name)
{
    char *p = state_path(name);
    struct stat st;
    char *text = NULL;
    if (stat(p, &st) == 0) {
        assert_int_equal(st.st_mode & 0777, 0600);
        text = rt_file_read(p, 1 << 20, NULL, NULL);
    }
    free(p);
    return text;
}

/* Sets a state file's modification time (when the connector stored it). */
static void state_touch(const char *name, long long when)
{
    char *p = state_path(name);
    struct timespec ts[2] = {{.tv_sec = (time_t)when}, {.tv_sec = (time_t)when}};
    assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
    free(p);
}

static void state_clear(void)
{
    const char *files[] = {"key.pem",         "cert.pem",        "origin-ca.pem",
                           "origin-pull.key", "origin-pull.pem", NULL};
    for (int i = 0; files[i]; i++)
        state_rm(files[i]);
}

static void test_state_files(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct rt_loop rl; /* cn_creds draws its keys from the loop's RNG */
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(rt_loop_init(&rl, &loop), 0);
    state_clear();
    struct cn_identity id;
    char why[512];
    assert_int_equal(cn_identity_load(test_rng(), &id, state_dir, TID, why, sizeof(why)), 0);
    struct cn_creds *c = NULL;
    /* Nothing stored: no certificate (enrolment comes first). */
    assert_int_equal(cn_creds_new(&loop, &id, NULL, &c, why, sizeof(why)), 0);
    long long na = -1;
    assert_true(cn_creds_tunnel_expired(c, &na));
    assert_int_equal(na, 0);
    const char *pc, *pk;
    assert_int_equal(cn_creds_origin_pull(c, &pc, &pk), CN_PULL_NONE);
    assert_null(cn_trust_origin_ca(&c->trust));
    /* Wanting origin pulls generates the key, private, once. */
    assert_int_equal(cn_creds_want_origin_pull(c, 1), 0);
    char *key1 = state_read("origin-pull.key");
    assert_non_null(key1);
    assert_non_null(strstr(key1, "PRIVATE KEY"));
    assert_string_equal(key1, c->pull_key);
    assert_int_equal(cn_creds_want_origin_pull(c, 1), 0);
    assert_int_equal(cn_creds_want_origin_pull(c, 0), 0);
    assert_int_equal(cn_creds_want_origin_pull(c, 1), 0);
    char *key2 = state_read("origin-pull.key");
    assert_string_equal(key1, key2);
    free(key2);
    /* ORIGIN_CA: stored 0600, re-encoded. */
    assert_int_equal(cn_creds_set_origin_ca(c, origin_ca.cert), 0);
    char *ca = state_read("origin-ca.pem");
    assert_string_equal(ca, origin_ca.cert);
    free(ca);
    assert_int_equal(cn_creds_set_origin_ca(c, "-----BEGIN CERTIFICATE-----\nAA==\n"),
                     PX_ERR_INVAL);
    ca = state_read("origin-ca.pem");
    assert_string_equal(ca, origin_ca.cert); /* untouched */
    free(ca);
    cn_creds_free(c);
    uv_run(&loop, UV_RUN_NOWAIT);

    /* What is on disk comes back: a valid tunnel certificate, the origin CA,
     * the origin-pull key and its certificate. */
    long long t = now_s();
    char *tcert = issue(&client_ca, id.key_pem, NULL, t - 60, t + 3600);
    assert_int_equal(cn_identity_save_cert(&id, tcert), 0);
    char *pcert = issue(&pull_ca, key1, "tunnel:" TID, t - 60, t + 3600);
    state_write("origin-pull.pem", pcert);
    assert_int_equal(cn_creds_new(&loop, &id, NULL, &c, why, sizeof(why)), 0);
    assert_false(cn_creds_tunnel_expired(c, &na));
    assert_int_equal(na, t + 3600);
    assert_string_equal(cn_trust_origin_ca(&c->trust), origin_ca.cert);
    assert_int_equal(cn_creds_origin_pull(c, &pc, &pk), CN_PULL_READY);
    assert_string_equal(pc, pcert);
    assert_string_equal(pk, key1);
    /* Their lifetimes count from when they were stored (the files' mtime),
     * not from the backdated not_before. */
    assert_true(c->slots[CN_CERT_TUNNEL].obtained >= t);
    assert_true(c->slots[CN_CERT_ORIGIN_PULL].obtained >= t);
    cn_creds_free(c);
    uv_run(&loop, UV_RUN_NOWAIT);
    /* An mtime outside not_before..now (a copied file, a clock that went
     * back) is not believed: not_before it is. */
    state_touch("cert.pem", t - 3600);
    state_touch("origin-pull.pem", t + 3600);
    assert_int_equal(cn_creds_new(&loop, &id, NULL, &c, why, sizeof(why)), 0);
    assert_int_equal(c->slots[CN_CERT_TUNNEL].obtained, 0);
    assert_int_equal(c->slots[CN_CERT_ORIGIN_PULL].obtained, 0);
    state_touch("cert.pem", t - 30);
    cn_creds_free(c);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(cn_creds_new(&loop, &id, NULL, &c, why, sizeof(why)), 0);
    assert_int_equal(c->slots[CN_CERT_TUNNEL].obtained, t - 30);
    cn_creds_free(c);
    uv_run(&loop, UV_RUN_NOWAIT);

    /* An expired tunnel certificate: expired (the supervisor re-enrols); an
     * origin-pull certificate past not_after is not presented. */
    char *old = issue(&client_ca, id.key_pem, NULL, t - 7200, t - 3600);
    assert_int_equal(cn_identity_save_cert(&id, old), 0);
    char *old_pull = issue(&pull_ca, key1, "tunnel:" TID, t - 7200, t - 3600);
    state_write("origin-pull.pem", old_pull);
    assert_int_equal(cn_creds_new(&loop, &id, NULL, &c, why, sizeof(why)), 0);
    assert_true(cn_creds_tunnel_expired(c, &na));
    assert_int_equal(na, t - 3600);
    assert_int_equal(cn_creds_origin_pull(c, &pc, &pk), CN_PULL_EXPIRED);
    cn_creds_free(c);
    uv_run(&loop, UV_RUN_NOWAIT);

    /* Certificates for another key, and junk: ignored, not fatal. The
     * origin CA file holding junk is ignored too. */
    char *stranger_key = NULL;
    assert_int_equal(px_pki_keygen(test_rng(), &stranger_key), 0);
    char *wrong = issue(&client_ca, stranger_key, NULL, t - 60, t + 3600);
    assert_int_equal(cn_identity_save_cert(&id, wrong), 0);
    char *wrong_pull = issue(&pull_ca, stranger_key, "tunnel:" TID, t - 60, t + 3600);
    state_write("origin-pull.pem", wrong_pull);
    state_write("origin-ca.pem", "not a certificate\n");
    assert_int_equal(cn_creds_new(&loop, &id, NULL, &c, why, sizeof(why)), 0);
    assert_true(cn_creds_tunnel_expired(c, NULL));
    assert_int_equal(cn_creds_origin_pull(c, &pc, &pk), CN_PULL_NONE);
    assert_null(cn_trust_origin_ca(&c->trust));
    cn_creds_free(c);
    uv_run(&loop, UV_RUN_NOWAIT);
    state_write("origin-pull.pem",
                "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n");
    assert_int_equal(cn_creds_new(&loop, &id, NULL, &c, why, sizeof(why)), 0);
    assert_int_equal(cn_creds_origin_pull(c, &pc, &pk), CN_PULL_NONE);
    cn_creds_free(c);
    uv_run(&loop, UV_RUN_NOWAIT);

    /* An origin-pull key others can read is refused, naming the fix; one
     * that is not a key is refused too. */
    char *kp = state_path("origin-pull.key");
    chmod(kp, 0644);
    assert_int_equal(cn_creds_new(&loop, &id, NULL, &c, why, sizeof(why)), PX_ERR_DENIED);
    assert_null(c);
    assert_non_null(strstr(why, "chmod 600"));
    chmod(kp, 0600);
    state_write("origin-pull.key",
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
    assert_true(cn_creds_new(&loop, &id, NULL, &c, why, sizeof(why)) < 0);
    assert_non_null(strstr(why, "origin-pull.key is not a usable key"));
    free(kp);

    free(wrong);
    free(wrong_pull);
    free(stranger_key);
    free(old);
    free(old_pull);
    free(tcert);
    free(pcert);
    free(key1);
    cn_identity_cleanup(&id);
    state_clear();
    rt_loop_cleanup(&rl);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- part 4: in memory ---- */

static struct mw world;

/* Captures what the connector logs (stderr) between cap_start and
 * cap_stop, which returns it (caller frees). Assertions run after. */
static int saved_stderr = -1;
static char cap_path[64];

static void cap_start(void)
{
    snprintf(cap_path, sizeof(cap_path), "%s/log.txt", state_dir);
    px_log_flush(); /* batched lines of a live loop (px_log_batch) */
    fflush(stderr);
    int fd = open(cap_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    saved_stderr = dup(2);
    dup2(fd, 2);
    close(fd);
}

static char *cap_stop(void)
{
    px_log_flush(); /* batched lines of a live loop (px_log_batch) */
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    saved_stderr = -1;
    char *text = rt_file_read(cap_path, 1 << 20, NULL, NULL);
    unlink(cap_path);
    return text ? text : strdup("");
}

/* The https origin: requires a client certificate under pull_ca, serves
 * origin_cert (ha.local, under origin_ca), answers "pulled-ok" and notes
 * the client certificate's CN. */
struct tls_origin {
    uv_tcp_t server;
    int port;
    WOLFSSL_CTX *ctx;
    int accepted, served, open;
    char peer_cn[128];
};
static struct tls_origin torg;

struct oconn {
    struct rt_conn conn;
    struct px_buf in;
};

static int oc_open(struct rt_conn *c)
{
    WOLFSSL_X509 *peer = wolfSSL_get_peer_certificate(c->tls.ssl);
    if (peer) {
        int len = 0;
        const unsigned char *der = wolfSSL_X509_get_der(peer, &len);
        struct px_cert_info ci;
        if (der && px_cert_info(der, (size_t)len, &ci) == 0) {
            snprintf(torg.peer_cn, sizeof(torg.peer_cn), "%s", ci.common_name);
            px_cert_info_cleanup(&ci);
        }
        wolfSSL_X509_free(peer);
    }
    return 0;
}

static int oc_data(struct rt_conn *c, const uint8_t *data, size_t len)
{
    struct oconn *oc = c->owner;
    px_buf_append(&oc->in, data, len);
    const char *head = px_buf_cstr(&oc->in);
    if (head && strstr(head, "\r\n\r\n")) {
        static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: "
                                   "close\r\n\r\npulled-ok";
        torg.served++;
        rt_conn_write(c, resp, sizeof(resp) - 1);
        rt_conn_close(c, 0);
    }
    return 0;
}

static int oc_writable(struct rt_conn *c)
{
    (void)c;
    return 0;
}

static void oc_close(struct rt_conn *c, int err)
{
    (void)err;
    struct oconn *oc = c->owner;
    px_buf_cleanup(&oc->in);
    torg.open--;
    free(oc);
}

static const struct rt_conn_ops oc_ops = {
    .on_open = oc_open, .on_data = oc_data, .on_writable = oc_writable, .on_close = oc_close};

static void torg_accept(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    struct oconn *oc = calloc(1, sizeof(*oc));
    assert_non_null(oc);
    px_buf_init(&oc->in);
    torg.accepted++;
    torg.open++;
    assert_int_equal(rt_conn_init(&oc->conn, server->loop, &oc_ops, oc), 0);
    rt_conn_accept(&oc->conn, server, torg.ctx, "http/1.1", 5000);
}

/* The edge, played by the test (tests/support/played_edge): it keeps the
 * connector's control lines. */
static struct played_edge edge;

/* Exchanges until a is answered, the connector sent want_got control lines
 * (0: ignored), or ms passed. */
static void run_until(struct pe_answer *a, size_t want_got, int ms)
{
    pe_run_until(&edge, a, want_got, ms);
}

static void control_send(const struct px_ctl_msg *m)
{
    pe_control_send(&edge, m);
}

static long elapsed_ms(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

static void send_renewed(const char *kind, const char *pem)
{
    struct px_ctl_msg m = {.type = PX_CTL_RENEWED, .kind = (char *)kind, .pem = (char *)pem};
    control_send(&m);
}

static void send_renew_failed(const char *why)
{
    struct px_ctl_msg m = {
        .type = PX_CTL_ERROR, .code = "renew_failed", .message = (char *)why, .permanent = 0};
    control_send(&m);
}

static void send_origin_ca(const char *pem)
{
    struct px_ctl_msg m = {.type = PX_CTL_ORIGIN_CA, .pem = (char *)pem};
    control_send(&m);
}

static void link_up(void)
{
    pe_link_up(&edge, &world, "pull.fuzz.test");
}

static int link_down(void **state)
{
    (void)state;
    pe_link_down(&edge);
    int rc = mw_close_all(&world);
    px_buf_consume(&world.link_out, px_buf_len(&world.link_out));
    for (int i = 0; i < 50 && torg.open > 0; i++)
        uv_run(&world.loop, UV_RUN_NOWAIT);
    /* The credentials of the next test start from what is on disk. */
    cn_supervisor_creds_cleanup(&world.sup);
    uv_run(&world.loop, UV_RUN_NOWAIT);
    if (world.sup.tls_ctx)
        wolfSSL_CTX_free(world.sup.tls_ctx);
    world.sup.tls_ctx = NULL;
    cn_identity_cleanup(&world.sup.id);
    return rc;
}

static struct pe_answer *request(const char *authority, int ms)
{
    return pe_request(&edge, "GET", authority, "/x", NULL, NULL, NULL, 0, ms);
}

/* The RENEW lines the connector sent for kind, counted from index from. */
static size_t renews(const char *kind, size_t from)
{
    size_t n = 0;
    for (size_t i = from; i < edge.n_got; i++)
        if (edge.got[i].type == PX_CTL_RENEW && strcmp(edge.got[i].kind, kind) == 0)
            n++;
    return n;
}

static const struct pe_line *last_renew(const char *kind)
{
    for (size_t i = edge.n_got; i-- > 0;)
        if (edge.got[i].type == PX_CTL_RENEW && strcmp(edge.got[i].kind, kind) == 0)
            return &edge.got[i];
    return NULL;
}

/* Loads the identity from the state dir (a tunnel certificate valid from
 * nb to na for its key, or none when na is 0) and sets the supervisor's
 * credentials up and started, as cn_supervisor_run does. */
static void creds_up(long long nb, long long na)
{
    char why[512];
    assert_int_equal(cn_identity_load(test_rng(), &world.sup.id, state_dir, TID, why, sizeof(why)),
                     0);
    if (na) {
        char *cert = issue(&client_ca, world.sup.id.key_pem, NULL, nb, na);
        assert_int_equal(cn_identity_save_cert(&world.sup.id, cert), 0);
        state_touch("cert.pem", nb); /* stored when issued */
        free(cert);
    }
    assert_int_equal(cn_supervisor_creds_init(&world.sup, why, sizeof(why)), 0);
    cn_creds_start(world.sup.creds);
}

static void assert_has(const char *log, const char *needle)
{
    if (!strstr(log, needle))
        print_error("log lacks \"%s\":\n%s\n", needle, log);
    assert_non_null(strstr(log, needle));
}

/* The tunnel certificate at 2/3 of its life: RENEW for the same key goes
 * out once a link is registered; renew_failed is logged with the reason
 * and retried after a backoff; RENEWED is stored in cert.pem and becomes
 * the TLS context of new links, while the link stays up. */
static void test_tunnel_renewal(void **state)
{
    (void)state;
    state_clear();
    long long t = now_s();
    creds_up(t - 100, t + 20); /* due: 2/3 of 120 s passed */
    WOLFSSL_CTX *ctx_before = world.sup.tls_ctx;
    cap_start();
    link_up();
    run_until(NULL, 2, 500);
    size_t at = edge.n_got;
    size_t first = renews(PX_CTL_KIND_TUNNEL, 0);
    const struct pe_line *g = last_renew(PX_CTL_KIND_TUNNEL);
    char *pub = NULL;
    px_pki_pubkey(world.sup.id.key_pem, &pub);
    int same_key = g && g->pem && pub && strcmp(g->pem, pub) == 0;
    /* The rules want an origin-pull certificate too: asked for after the
     * tunnel's, so the renew_failed below belongs to the tunnel's. */
    size_t pulls = renews(PX_CTL_KIND_ORIGIN_PULL, 0);
    send_renew_failed("too frequent");
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    run_until(NULL, at + 1, 3000);
    long waited = elapsed_ms(&t0);
    size_t retried = renews(PX_CTL_KIND_TUNNEL, at);
    char *cert = issue(&client_ca, world.sup.id.key_pem, NULL, t - 60, t + 3600);
    send_renewed(PX_CTL_KIND_TUNNEL, cert);
    char *log = cap_stop();
    assert_int_equal(first, 1);
    assert_true(same_key);
    assert_int_equal(pulls, 1);
    assert_int_equal(retried, 1);
    assert_true(waited >= 900); /* the backoff starts at 1 s */
    assert_has(log, "certificate renewal failed: too frequent (tunnel certificate; retrying in");
    char until[21], want[80];
    px_cert_time(t + 3600, until);
    snprintf(want, sizeof(want), "renewed the tunnel certificate, valid until %s", until);
    assert_has(log, want);
    free(log);
    char *stored = state_read("cert.pem");
    assert_string_equal(stored, cert);
    assert_string_equal(world.sup.id.cert_pem, cert);
    free(stored);
    assert_non_null(world.sup.tls_ctx);
    assert_ptr_not_equal(world.sup.tls_ctx, ctx_before);
    /* The link was not dropped, and nothing more is asked for now. */
    assert_non_null(world.cl);
    assert_true(world.cl->registered);
    size_t now_got = edge.n_got;
    run_until(NULL, now_got + 1, 300);
    assert_int_equal(renews(PX_CTL_KIND_TUNNEL, now_got), 0);
    assert_false(cn_creds_tunnel_expired(world.sup.creds, NULL));
    free(cert);
    free(pub);
}

/* Answers the connector cannot use: refused like a failed renewal (logged,
 * retried), nothing stored, the link stays up. */
static void test_renewed_hostile(void **state)
{
    (void)state;
    state_clear();
    long long t = now_s();
    creds_up(t - 100, t + 20);
    char *before = state_read("cert.pem");
    cap_start();
    link_up();
    run_until(NULL, 2, 500);
    size_t at = edge.n_got;
    /* For another key. */
    char *stranger = NULL;
    px_pki_keygen(test_rng(), &stranger);
    char *wrong = issue(&client_ca, stranger, NULL, t - 60, t + 3600);
    send_renewed(PX_CTL_KIND_TUNNEL, wrong);
    run_until(NULL, at + 1, 3000);
    size_t after_wrong = renews(PX_CTL_KIND_TUNNEL, at);
    at = edge.n_got;
    /* Already expired. */
    char *expired = issue(&client_ca, world.sup.id.key_pem, NULL, t - 7200, t - 10);
    send_renewed(PX_CTL_KIND_TUNNEL, expired);
    run_until(NULL, at + 1, 3000);
    size_t after_expired = renews(PX_CTL_KIND_TUNNEL, at);
    /* Not a certificate (the codec only checks the marker). */
    send_renewed(PX_CTL_KIND_TUNNEL,
                 "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    /* An origin-pull certificate for another key. */
    char *pull = issue(&pull_ca, stranger, "tunnel:" TID, t - 60, t + 3600);
    send_renewed(PX_CTL_KIND_ORIGIN_PULL, pull);
    /* A renew_failed nobody asked for on this link, and a bad ORIGIN_CA. */
    send_origin_ca(origin_ca.cert);
    send_origin_ca("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    char *log = cap_stop();
    assert_int_equal(after_wrong, 1);
    assert_int_equal(after_expired, 1);
    assert_has(log, "certificate renewal failed: the edge's certificate is for another key "
                    "(tunnel certificate;");
    assert_has(log, "certificate renewal failed: the edge's certificate has already expired");
    assert_has(log, "the edge's origin CA cannot be used");
    free(log);
    char *now_cert = state_read("cert.pem");
    assert_string_equal(now_cert, before);
    char *ca = state_read("origin-ca.pem");
    assert_string_equal(ca, origin_ca.cert); /* the good one stays */
    assert_null(state_read("origin-pull.pem"));
    assert_non_null(world.cl);
    assert_true(world.cl->registered);
    free(ca);
    free(now_cert);
    free(before);
    free(pull);
    free(expired);
    free(wrong);
    free(stranger);
}

/* originPull end to end: 502 until the edge issued the certificate; RENEW
 * origin_pull with the origin-pull key's public key; RENEWED stored in
 * origin-pull.pem and presented to the origin, which verifies it; the
 * origin's edge-issued certificate is trusted once ORIGIN_CA arrived. */
static void test_origin_pull_end_to_end(void **state)
{
    (void)state;
    state_clear();
    long long t = now_s();
    /* The rule set wants origin pulls before the credentials start. */
    creds_up(t - 60, t + 3600);
    char *key = state_read("origin-pull.key");
    assert_non_null(key);
    cap_start();
    link_up();
    run_until(NULL, 2, 500);
    const struct pe_line *g = last_renew(PX_CTL_KIND_ORIGIN_PULL);
    char *pub = NULL;
    px_pki_pubkey(key, &pub);
    int asked = g && g->pem && strcmp(g->pem, pub) == 0;
    int tunnel_asked = renews(PX_CTL_KIND_TUNNEL, 0) != 0; /* not due */
    /* Before the certificate: 502, and the origin is not contacted. */
    struct pe_answer *a1 = request("pull.fuzz.test", 3000);
    int accepted_before = torg.accepted;
    /* The certificate, but no origin CA yet: the origin's certificate is
     * not trusted. */
    char *pcert = issue(&pull_ca, key, "tunnel:" TID, t - 60, t + 3600);
    send_renewed(PX_CTL_KIND_ORIGIN_PULL, pcert);
    struct pe_answer *a2 = request("pull.fuzz.test", 5000);
    /* The origin CA arrives: served, with the client certificate. */
    send_origin_ca(origin_ca.cert);
    struct pe_answer *a3 = request("pull.fuzz.test", 5000);
    char peer_cn[128];
    snprintf(peer_cn, sizeof(peer_cn), "%s", torg.peer_cn);
    /* A rule without originPull reaches the same origin without one. */
    torg.peer_cn[0] = '\0';
    struct pe_answer *a4 = request("nopull.fuzz.test", 5000);
    char *log = cap_stop();

    assert_true(asked);
    assert_false(tunnel_asked);
    assert_int_equal(a1->status, 502);
    assert_string_equal(a1->error, "origin_pull_unavailable");
    assert_non_null(
        strstr(px_buf_cstr(&a1->body), "origin-pull certificate not yet issued by the edge"));
    assert_int_equal(accepted_before, 0);
    if (a2->status != 502 || strcmp(a2->error, "origin_tls_verify") != 0)
        print_error("a2: %d %s %s\n", a2->status, a2->error, px_buf_cstr(&a2->body));
    assert_int_equal(a2->status, 502);
    assert_string_equal(a2->error, "origin_tls_verify");
    if (a3->status != 200)
        print_error("a3: %d %s %s\n", a3->status, a3->error, px_buf_cstr(&a3->body));
    assert_int_equal(a3->status, 200);
    assert_string_equal(px_buf_cstr(&a3->body), "pulled-ok");
    assert_string_equal(peer_cn, TID);
    assert_int_equal(a4->status, 502);
    assert_string_equal(torg.peer_cn, "");
    char until[21], want[80];
    px_cert_time(t + 3600, until);
    snprintf(want, sizeof(want), "obtained the origin-pull certificate, valid until %s", until);
    assert_has(log, want);
    assert_has(log, "stored the edge's origin CA in ");
    free(log);
    char *stored = state_read("origin-pull.pem");
    assert_string_equal(stored, pcert);
    free(stored);
    stored = state_read("origin-ca.pem");
    assert_string_equal(stored, origin_ca.cert);
    free(stored);

    /* Renewed: the new certificate is used by the next request. */
    char *pcert2 = issue(&pull_ca, key, "tunnel:" TID, t - 30, t + 7200);
    cap_start();
    send_renewed(PX_CTL_KIND_ORIGIN_PULL, pcert2);
    struct pe_answer *a5 = request("pull.fuzz.test", 5000);
    log = cap_stop();
    assert_int_equal(a5->status, 200);
    px_cert_time(t + 7200, until);
    snprintf(want, sizeof(want), "renewed the origin-pull certificate, valid until %s", until);
    assert_has(log, want);
    free(log);
    stored = state_read("origin-pull.pem");
    assert_string_equal(stored, pcert2);
    free(stored);
    free(pcert2);
    free(pcert);
    free(pub);
    free(key);
}

/* A RENEW whose link goes away unanswered is sent again on the next link. */
static void test_renew_retried_on_next_link(void **state)
{
    (void)state;
    state_clear();
    long long t = now_s();
    creds_up(t - 100, t + 20);
    cap_start();
    link_up();
    run_until(NULL, 2, 500);
    size_t first = renews(PX_CTL_KIND_TUNNEL, 0);
    link_down(NULL); /* also drops the credentials: bring them back as they were */
    char why[512];
    assert_int_equal(cn_identity_load(test_rng(), &world.sup.id, state_dir, TID, why, sizeof(why)),
                     0);
    assert_int_equal(cn_supervisor_creds_init(&world.sup, why, sizeof(why)), 0);
    cn_creds_start(world.sup.creds);
    link_up();
    run_until(NULL, 2, 500);
    size_t second = renews(PX_CTL_KIND_TUNNEL, 0);
    /* Same process, link lost while in flight. */
    cn_creds_link_gone(world.sup.creds, world.cl);
    size_t at = edge.n_got;
    run_until(NULL, at + 1, 3000);
    size_t third = renews(PX_CTL_KIND_TUNNEL, at);
    char *log = cap_stop();
    assert_int_equal(first, 1);
    assert_int_equal(second, 1);
    assert_int_equal(third, 1);
    assert_has(log, "certificate renewal failed: the connection closed before the edge answered");
    free(log);
}

/* Defect 9.8: a renewal refused because the token the certificate was
 * enrolled with has been replaced was retried every minute until the
 * certificate expired, though the edge would never say yes. Now that
 * refusal (reason token_replaced) tells the host to enrol again, and
 * nothing is asked until it has: then the renewals start over, the
 * origin-pull one refused the same way included. Other reasons are
 * retried as before. */
static void test_token_replaced_enrols_again(void **state)
{
    (void)state;
    state_clear();
    long long t = now_s();
    creds_up(t - 100, t + 20);
    struct cn_creds *c = world.sup.creds;
    cap_start();
    link_up();
    run_until(NULL, 2, 500);
    size_t tunnel_renews = renews(PX_CTL_KIND_TUNNEL, 0);
    size_t pull_renews = renews(PX_CTL_KIND_ORIGIN_PULL, 0);
    /* Both refused: the oldest (tunnel) first. */
    int tunnel_said = cn_creds_renew_failed(
        c, world.cl, PX_CTL_RENEW_TOKEN_REPLACED,
        "this connector enrolled with a token that has been replaced (edge-sim tunnel "
        "rotate-token): enrol with the new token");
    int tunnel_held = c->slots[CN_CERT_TUNNEL].token_replaced;
    int pull_said = cn_creds_renew_failed(c, world.cl, PX_CTL_RENEW_TOKEN_REPLACED, NULL);
    size_t at = edge.n_got;
    run_until(NULL, at + 1, 2500); /* a retry would come within 1..2 s */
    size_t asked_meanwhile = renews(PX_CTL_KIND_TUNNEL, at) + renews(PX_CTL_KIND_ORIGIN_PULL, at);
    /* The host enrolled again: a fresh certificate, renewed in its time;
     * the origin-pull certificate (none yet) is asked for at once. */
    char *cert = issue(&client_ca, world.sup.id.key_pem, NULL, t - 60, t + 3600);
    assert_int_equal(cn_identity_save_cert(&world.sup.id, cert), 0);
    cn_creds_enrolled(c, NULL);
    at = edge.n_got;
    run_until(NULL, at + 1, 1000);
    size_t pull_after = renews(PX_CTL_KIND_ORIGIN_PULL, at);
    size_t tunnel_after = renews(PX_CTL_KIND_TUNNEL, at);
    /* Any other reason (or none) is retried, the host enrols nothing. */
    int other_said = cn_creds_renew_failed(c, world.cl, PX_CTL_RENEW_TOO_FREQUENT, "too frequent");
    int other_held = c->slots[CN_CERT_ORIGIN_PULL].token_replaced;
    char *log = cap_stop();
    assert_int_equal(tunnel_renews, 1);
    assert_int_equal(pull_renews, 1);
    assert_int_equal(tunnel_said, 1);
    assert_true(tunnel_held);
    assert_int_equal(pull_said, 1);
    assert_int_equal(asked_meanwhile, 0);
    assert_int_equal(pull_after, 1);
    assert_int_equal(tunnel_after, 0);
    assert_false(c->slots[CN_CERT_TUNNEL].token_replaced);
    assert_int_equal(other_said, 0);
    assert_false(other_held);
    assert_true(c->slots[CN_CERT_ORIGIN_PULL].retrying);
    assert_has(log, "certificate renewal refused: this connector enrolled with a token that has "
                    "been replaced (edge-sim tunnel rotate-token): enrol with the new token "
                    "(tunnel certificate; enrolling again with this connector's token)");
    assert_has(log, "certificate renewal refused: the token was replaced (origin-pull certificate");
    assert_has(log, "certificate renewal failed: too frequent (origin-pull certificate; retrying");
    assert_null(strstr(log, "certificate renewal failed: this connector enrolled"));
    free(log);
    free(cert);
}

static int group_setup(void **state)
{
    (void)state;
    ca_make(&client_ca, "test client CA");
    ca_make(&origin_ca, "test origin CA");
    ca_make(&pull_ca, "test origin-pull CA");
    ca_make(&other_ca, "another CA");
    if (!mkdtemp(state_dir))
        return -1;
    chmod(state_dir, 0700);
    /* The https origin's certificate, for ha.local, under the origin CA. */
    if (px_pki_keygen(test_rng(), &origin_key) < 0)
        return -1;
    char *pub = NULL;
    px_pki_pubkey(origin_key, &pub);
    const char *names[] = {"ha.local"};
    struct px_pki_req r = {
        .cn = "ha.local", .names = names, .n_names = 1, .usage = PX_PKI_SERVER, .days = 30};
    if (px_pki_issue_req(test_rng(), origin_ca.cert, origin_ca.key, pub, &r, &origin_cert) < 0)
        return -1;
    free(pub);
    if (mw_init(&world, "{\"ingress\":[{\"service\":\"http_status:404\"}]}") < 0)
        return -1;
    if (getenv("MW_LOG") == NULL)
        px_log_set_level(PX_LOG_INFO); /* the log lines are asserted */
    if (px_tls_ctx_server(origin_cert, origin_key, pull_ca.cert, 1, &torg.ctx) < 0)
        return -1;
    uv_tcp_init(&world.loop, &torg.server);
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    if (uv_tcp_bind(&torg.server, (const struct sockaddr *)&sa, 0) != 0 ||
        uv_listen((uv_stream_t *)&torg.server, 16, torg_accept) != 0)
        return -1;
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    uv_tcp_getsockname(&torg.server, (struct sockaddr *)&ss, &len);
    torg.port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    char json[1024];
    snprintf(json, sizeof(json),
             "{\"ingress\":["
             "{\"hostname\":\"pull.fuzz.test\",\"service\":\"https://127.0.0.1:%d\","
             " \"originRequest\":{\"originPull\":true,\"originServerName\":\"ha.local\"}},"
             "{\"hostname\":\"nopull.fuzz.test\",\"service\":\"https://127.0.0.1:%d\","
             " \"originRequest\":{\"originServerName\":\"ha.local\"}},"
             "{\"service\":\"http_status:404\"}]}",
             torg.port, torg.port);
    if (mw_set_ingress(&world, json) < 0)
        return -1;
    return cn_origin_new(&world.loop, &world.sup.origin) < 0 ? -1 : 0;
}

static int group_teardown(void **state)
{
    (void)state;
    cn_origin_free(world.sup.origin);
    world.sup.origin = NULL;
    uv_close((uv_handle_t *)&torg.server, NULL);
    mw_cleanup(&world);
    wolfSSL_CTX_free(torg.ctx);
    state_clear();
    char *p = NULL;
    if (asprintf(&p, "%s/%s", state_dir, TID) > 0)
        rmdir(p);
    free(p);
    rmdir(state_dir);
    ca_free(&client_ca);
    ca_free(&origin_ca);
    ca_free(&pull_ca);
    ca_free(&other_ca);
    free(origin_key);
    free(origin_cert);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_renew_at),
        cmocka_unit_test(test_retry_cap),
        cmocka_unit_test(test_retry_delay),
        cmocka_unit_test(test_trust_origin_ca),
        cmocka_unit_test(test_trust_hostile_origin_ca),
        cmocka_unit_test(test_state_files),
        cmocka_unit_test_teardown(test_tunnel_renewal, link_down),
        cmocka_unit_test_teardown(test_renewed_hostile, link_down),
        cmocka_unit_test_teardown(test_origin_pull_end_to_end, link_down),
        cmocka_unit_test_teardown(test_renew_retried_on_next_link, link_down),
        cmocka_unit_test_teardown(test_token_replaced_enrols_again, link_down),
    };
    return cmocka_run_group_tests_name("cn_creds", tests, group_setup, group_teardown);
}
