#include "cn_creds.h"
#include "cn_identity.h"
#include "px_b64.h"
#include "px_buf.h"
#include "px_cert.h"
#include "px_control.h"
#include "px_err.h"
#include "px_log.h"
#include "px_pki.h"
#include "rt_file.h"
#include "rt_loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* ---- the schedule (pure) ---- */

static long long lifetime_start(long long not_before, long long obtained)
{
    return obtained > not_before ? obtained : not_before;
}

long long cn_creds_renew_at(long long not_before, long long not_after, long long obtained)
{
    long long start = lifetime_start(not_before, obtained);
    if (not_after <= start)
        return start;
    return start + (not_after - start) * 2 / 3;
}

unsigned cn_creds_retry_cap_ms(long long not_before, long long not_after, long long obtained)
{
    long long life = not_after - lifetime_start(not_before, obtained);
    long long cap = life > 0 ? life * 100 : 0; /* a tenth, in ms */
    if (cap > 60000)
        cap = 60000;
    if (cap < 1000)
        cap = 1000;
    return (unsigned)cap;
}

unsigned cn_creds_retry_delay_ms(struct cn_backoff *b, uint32_t rnd)
{
    unsigned ceiling = cn_backoff_ceiling(b);
    if (b->attempt < 64)
        b->attempt++;
    /* Half fixed, half jitter: never a burst of immediate retries at an
     * edge that limits renewals per link, yet not in lockstep either. */
    unsigned half = ceiling / 2;
    unsigned d = half + (unsigned)((uint64_t)rnd * ((uint64_t)(ceiling - half) + 1) >> 32);
    if (d > ceiling)
        d = ceiling;
    return d < 1000 ? 1000 : d;
}

/* ---- helpers ---- */

static const char *kind_wire(enum cn_cert_kind k)
{
    return k == CN_CERT_TUNNEL ? PX_CTL_KIND_TUNNEL : PX_CTL_KIND_ORIGIN_PULL;
}

static const char *kind_text(enum cn_cert_kind k)
{
    return k == CN_CERT_TUNNEL ? "tunnel" : "origin-pull";
}

static long long now_s(void)
{
    return (long long)time(NULL);
}

/* The loop's RNG: the renewal timers and key generation run on c->loop. */
static WC_RNG *rng_of(const struct cn_creds *c)
{
    return rt_loop_rng(rt_loop_of(c->loop));
}

static uint32_t rnd32(const struct cn_creds *c)
{
    uint32_t r = 0;
    if (px_pki_random(rng_of(c), &r, sizeof(r)) < 0)
        r = (uint32_t)now_s();
    return r;
}

/* The state file name (in the tunnel's directory) as a C string in b. Returns it, or NULL on no
 * memory. */
static const char *path_in(struct px_buf *b, const struct cn_creds *c, const char *name)
{
    px_buf_init(b);
    if (px_buf_appendf(b, "%s/%s", c->id->dir, name) < 0)
        return NULL;
    return px_buf_cstr(b);
}

/* The DER of a "PUBLIC KEY" PEM. Returns 0 and *der (malloc'd) with *len, or < 0. */
static int pub_der(const char *pem, uint8_t **der, size_t *len)
{
    static const char begin[] = "-----BEGIN PUBLIC KEY-----", end[] = "-----END PUBLIC KEY-----";
    const char *b = strstr(pem, begin);
    const char *e = b ? strstr(b, end) : NULL;
    if (!e)
        return PX_ERR_INVAL;
    b += sizeof(begin) - 1;
    struct px_buf text;
    px_buf_init(&text);
    int rc = 0;
    for (const char *p = b; p < e && rc == 0; p++)
        if (*p != '\n' && *p != '\r' && *p != ' ' && *p != '\t')
            rc = px_buf_append(&text, p, 1);
    if (rc == 0)
        rc = px_b64_decode((const char *)px_buf_head(&text), px_buf_len(&text), der, len);
    px_buf_cleanup(&text);
    return rc;
}

/* Reads pem's first certificate: its validity, and whether it certifies
 * the public key pub (PEM; NULL: not checked). Returns 0, PX_ERR_INVAL
 * (not a certificate), PX_ERR_DENIED (another key) or PX_ERR_NOMEM. */
static int read_cert(const char *pem, const char *pub, long long *not_before, long long *not_after)
{
    struct px_der *certs = NULL;
    size_t n = 0;
    int rc = px_cert_pem_split(pem, strlen(pem), &certs, &n);
    if (rc < 0)
        return rc;
    struct px_cert_info ci;
    rc = px_cert_info(certs[0].der, certs[0].len, &ci);
    if (rc < 0)
        goto out_certs;
    *not_before = ci.not_before;
    *not_after = ci.not_after;
    px_cert_info_cleanup(&ci);
    if (pub) {
        const uint8_t *spki;
        size_t spki_len;
        uint8_t *want = NULL;
        size_t want_len = 0;
        rc = px_cert_spki(certs[0].der, certs[0].len, &spki, &spki_len);
        if (rc == 0)
            rc = pub_der(pub, &want, &want_len);
        if (rc == 0 && (want_len != spki_len || memcmp(want, spki, spki_len) != 0))
            rc = PX_ERR_DENIED;
        free(want);
    }
out_certs:
    px_der_free(certs, n);
    return rc;
}

/* Makes pem (copied) the slot's certificate. Returns 0 or PX_ERR_NOMEM. */
static int slot_take(struct cn_cert_slot *sl, const char *pem, long long nb, long long na,
                     long long obtained)
{
    char *copy = strdup(pem);
    if (!copy)
        return PX_ERR_NOMEM;
    free(sl->cert_pem);
    sl->cert_pem = copy;
    sl->not_before = nb;
    sl->not_after = na;
    sl->obtained = obtained;
    return 0;
}

static void slot_drop(struct cn_cert_slot *sl)
{
    free(sl->cert_pem);
    sl->cert_pem = NULL;
    sl->not_before = sl->not_after = sl->obtained = 0;
}

/* ---- scheduling ---- */

static void try_send(struct cn_cert_slot *sl);

static void on_due(uv_timer_t *t)
{
    struct cn_cert_slot *sl = t->data;
    if (!sl->retrying && sl->cert_pem &&
        now_s() < cn_creds_renew_at(sl->not_before, sl->not_after, sl->obtained)) {
        /* Woken early (the wait is capped): look again later. */
        uint64_t left =
            (uint64_t)(cn_creds_renew_at(sl->not_before, sl->not_after, sl->obtained) - now_s()) *
            1000;
        uv_timer_start(&sl->timer, on_due,
                       left > CN_CREDS_MAX_WAIT_MS ? CN_CREDS_MAX_WAIT_MS : left, 0);
        return;
    }
    try_send(sl);
}

/* Arms the timer for the slot's next renewal (not for a retry). */
static void schedule(struct cn_cert_slot *sl)
{
    uv_timer_stop(&sl->timer);
    sl->waiting_link = 0;
    if (!sl->wanted || sl->in_flight || sl->token_replaced || !sl->creds->timers_open ||
        !sl->creds->started)
        return;
    if (sl->kind == CN_CERT_TUNNEL && !sl->cert_pem)
        return; /* nothing to renew: enrolment gets the first one */
    uint64_t delay = 0;
    if (sl->cert_pem) {
        long long due = cn_creds_renew_at(sl->not_before, sl->not_after, sl->obtained);
        long long now = now_s();
        if (due > now)
            delay = (uint64_t)(due - now) * 1000;
    }
    if (delay > CN_CREDS_MAX_WAIT_MS)
        delay = CN_CREDS_MAX_WAIT_MS;
    uv_timer_start(&sl->timer, on_due, delay, 0);
}

static void failed(struct cn_cert_slot *sl, const char *reason)
{
    sl->in_flight = 0;
    sl->sent_on = NULL;
    sl->retrying = 1;
    sl->backoff.cap_ms =
        sl->cert_pem ? cn_creds_retry_cap_ms(sl->not_before, sl->not_after, sl->obtained) : 60000;
    unsigned delay = cn_creds_retry_delay_ms(&sl->backoff, rnd32(sl->creds));
    PX_WARN("certificate renewal failed: %s (%s certificate; retrying in %u ms)",
            reason && *reason ? reason : "no reason given", kind_text(sl->kind), delay);
    uv_timer_stop(&sl->timer);
    if (sl->wanted && sl->creds->timers_open)
        uv_timer_start(&sl->timer, on_due, delay, 0);
}

/* Defect 9.8: the edge will not renew this certificate again, whatever
 * the wait: the token its line began with was replaced. No retry; the
 * host enrols with its token, and cn_creds_enrolled starts it again. */
static void refused_for_token(struct cn_cert_slot *sl, const char *reason)
{
    sl->in_flight = 0;
    sl->sent_on = NULL;
    sl->retrying = 0;
    sl->token_replaced = 1;
    uv_timer_stop(&sl->timer);
    PX_WARN("certificate renewal refused: %s (%s certificate; enrolling again with this "
            "connector's token)",
            reason && *reason ? reason : "the token was replaced", kind_text(sl->kind));
}

static void on_no_answer(uv_timer_t *t)
{
    struct cn_cert_slot *sl = t->data;
    if (sl->in_flight)
        failed(sl, "the edge did not answer");
}

static void try_send(struct cn_cert_slot *sl)
{
    struct cn_creds *c = sl->creds;
    if (!sl->wanted || sl->in_flight || sl->token_replaced)
        return;
    const char *pub = sl->kind == CN_CERT_TUNNEL ? c->tunnel_pub : c->pull_pub;
    if (!pub)
        return;
    void *link = c->ops.send_renew ? c->ops.send_renew(c->ops.arg, kind_wire(sl->kind), pub) : NULL;
    if (!link) {
        sl->waiting_link = 1; /* cn_creds_link_up sends it */
        return;
    }
    sl->waiting_link = 0;
    sl->in_flight = 1;
    sl->sent_on = link;
    sl->seq = ++c->next_seq;
    PX_DEBUG("asked the edge to renew the %s certificate", kind_text(sl->kind));
    uv_timer_start(&sl->timer, on_no_answer, CN_CREDS_ANSWER_MS, 0);
}

/* ---- set-up ---- */

/* Reads an optional file of the state directory (private: the same checks
 * as the key). Returns 0 with *out (NULL when absent), or < 0 with why. */
static int read_state_file(const struct cn_creds *c, const char *name, char **out, char *why,
                           size_t whylen)
{
    *out = NULL;
    struct px_buf p;
    const char *path = path_in(&p, c, name);
    int rc = path ? rt_file_read_private(path, 1 << 20, out, NULL, why, whylen) : PX_ERR_NOMEM;
    px_buf_cleanup(&p);
    if (rc == PX_ERR_NOT_FOUND)
        rc = 0;
    if (rc == PX_ERR_NOMEM)
        snprintf(why, whylen, "out of memory");
    return rc;
}

/* When a stored certificate was obtained: its file's mtime (the file is
 * written when the certificate arrives), when that lies between not_before
 * and now; else 0 (count from not_before). Spares a restarted connector an
 * immediate renewal of a short-lived certificate. */
static long long stored_at(const struct cn_creds *c, const char *name, long long not_before)
{
    struct px_buf p;
    const char *path = path_in(&p, c, name);
    struct stat st;
    long long t = path && stat(path, &st) == 0 ? (long long)st.st_mtime : 0;
    px_buf_cleanup(&p);
    return t >= not_before && t <= now_s() ? t : 0;
}

static int write_state_file(const struct cn_creds *c, const char *name, const char *data)
{
    struct px_buf p;
    const char *path = path_in(&p, c, name);
    int rc = path ? rt_file_write_private(path, data) : PX_ERR_NOMEM;
    px_buf_cleanup(&p);
    return rc;
}

static void release(struct cn_creds *c)
{
    for (int k = 0; k < CN_CERT_KINDS; k++)
        slot_drop(&c->slots[k]);
    if (c->pull_key)
        memset(c->pull_key, 0, strlen(c->pull_key));
    free(c->pull_key);
    free(c->pull_pub);
    free(c->tunnel_pub);
    c->pull_key = c->pull_pub = c->tunnel_pub = NULL;
    cn_trust_cleanup(&c->trust);
}

int cn_creds_new(uv_loop_t *loop, struct cn_identity *id, const struct cn_creds_ops *ops,
                 struct cn_creds **out, char *why, size_t whylen)
{
    *out = NULL;
    struct cn_creds *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(why, whylen, "out of memory");
        return PX_ERR_NOMEM;
    }
    c->loop = loop;
    c->id = id;
    if (ops)
        c->ops = *ops;
    cn_trust_init(&c->trust);
    for (int k = 0; k < CN_CERT_KINDS; k++) {
        struct cn_cert_slot *sl = &c->slots[k];
        sl->creds = c;
        sl->kind = (enum cn_cert_kind)k;
        cn_backoff_init(&sl->backoff, 1000, 60000);
    }
    c->slots[CN_CERT_TUNNEL].wanted = 1;
    int rc = px_pki_pubkey(id->key_pem, &c->tunnel_pub);
    if (rc < 0) {
        snprintf(why, whylen, "the key in %s/key.pem cannot be used: %s", id->dir, px_strerror(rc));
        goto fail;
    }
    if (id->cert_pem) {
        long long nb, na;
        if (read_cert(id->cert_pem, c->tunnel_pub, &nb, &na) == 0)
            rc = slot_take(&c->slots[CN_CERT_TUNNEL], id->cert_pem, nb, na,
                           stored_at(c, "cert.pem", nb));
        else
            PX_WARN("%s/cert.pem is not a certificate for this connector's key; enrolling again",
                    id->dir);
        if (rc < 0) {
            snprintf(why, whylen, "out of memory");
            goto fail;
        }
    }
    char *text = NULL;
    char fwhy[300];
    if (read_state_file(c, "origin-ca.pem", &text, fwhy, sizeof(fwhy)) < 0)
        PX_WARN("%s; the edge sends its origin CA again on connecting", fwhy);
    else if (text && (rc = cn_trust_set_origin_ca(&c->trust, text, NULL)) < 0)
        PX_WARN("%s/origin-ca.pem cannot be used (%s); the edge sends it again on connecting",
                id->dir, px_strerror(rc));
    free(text);
    rc = read_state_file(c, "origin-pull.key", &c->pull_key, why, whylen);
    if (rc < 0)
        goto fail;
    if (c->pull_key && (rc = px_pki_pubkey(c->pull_key, &c->pull_pub)) < 0) {
        snprintf(why, whylen, "%s/origin-pull.key is not a usable key: %s", id->dir,
                 px_strerror(rc));
        goto fail;
    }
    if (c->pull_key) {
        if (read_state_file(c, "origin-pull.pem", &text, fwhy, sizeof(fwhy)) < 0) {
            PX_WARN("%s; the edge issues a new origin-pull certificate", fwhy);
        } else if (text) {
            long long nb, na;
            if (read_cert(text, c->pull_pub, &nb, &na) == 0)
                rc = slot_take(&c->slots[CN_CERT_ORIGIN_PULL], text, nb, na,
                               stored_at(c, "origin-pull.pem", nb));
            else
                PX_WARN("%s/origin-pull.pem is not a certificate for origin-pull.key; the edge "
                        "issues a new one",
                        id->dir);
        }
        free(text);
        if (rc < 0) {
            snprintf(why, whylen, "out of memory");
            goto fail;
        }
    }
    for (int k = 0; k < CN_CERT_KINDS; k++) {
        uv_timer_init(loop, &c->slots[k].timer);
        c->slots[k].timer.data = &c->slots[k];
    }
    c->timers_open = 1;
    *out = c;
    return 0;
fail:
    release(c);
    free(c);
    return rc < 0 ? rc : PX_ERR_INVAL;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct cn_cert_slot *sl = h->data;
    struct cn_creds *c = sl->creds;
    if (--c->closing == 0)
        free(c);
}

void cn_creds_free(struct cn_creds *c)
{
    if (!c)
        return;
    release(c);
    if (!c->timers_open) {
        free(c);
        return;
    }
    c->timers_open = 0;
    c->closing = CN_CERT_KINDS;
    for (int k = 0; k < CN_CERT_KINDS; k++)
        uv_close((uv_handle_t *)&c->slots[k].timer, on_timer_closed);
}

void cn_creds_start(struct cn_creds *c)
{
    c->started = 1;
    for (int k = 0; k < CN_CERT_KINDS; k++)
        schedule(&c->slots[k]);
}

int cn_creds_tunnel_expired(const struct cn_creds *c, long long *not_after)
{
    const struct cn_cert_slot *sl = &c->slots[CN_CERT_TUNNEL];
    if (not_after)
        *not_after = sl->cert_pem ? sl->not_after : 0;
    return !sl->cert_pem || !c->id->cert_pem || now_s() >= sl->not_after;
}

void cn_creds_enrolled(struct cn_creds *c, const char *origin_ca)
{
    struct cn_cert_slot *sl = &c->slots[CN_CERT_TUNNEL];
    long long nb, na;
    uv_timer_stop(&sl->timer);
    sl->in_flight = 0;
    sl->sent_on = NULL;
    sl->retrying = 0;
    cn_backoff_reset(&sl->backoff);
    sl->token_replaced = 0;
    if (c->id->cert_pem && read_cert(c->id->cert_pem, c->tunnel_pub, &nb, &na) == 0 &&
        slot_take(sl, c->id->cert_pem, nb, na, now_s()) == 0)
        schedule(sl);
    else
        slot_drop(sl);
    /* An origin-pull renewal refused with the old line is asked for again,
     * now that new links carry the new one. */
    struct cn_cert_slot *pull = &c->slots[CN_CERT_ORIGIN_PULL];
    if (pull->token_replaced) {
        pull->token_replaced = 0;
        cn_backoff_reset(&pull->backoff);
        schedule(pull);
    }
    if (origin_ca)
        cn_creds_set_origin_ca(c, origin_ca);
}

int cn_creds_want_origin_pull(struct cn_creds *c, int want)
{
    struct cn_cert_slot *sl = &c->slots[CN_CERT_ORIGIN_PULL];
    if (!want) {
        sl->wanted = 0;
        sl->waiting_link = 0;
        if (!sl->in_flight && c->timers_open)
            uv_timer_stop(&sl->timer);
        return 0;
    }
    if (!c->pull_key) {
        char *key = NULL, *pub = NULL;
        int rc = px_pki_keygen(rng_of(c), &key);
        if (rc == 0)
            rc = px_pki_pubkey(key, &pub);
        if (rc == 0 && write_state_file(c, "origin-pull.key", key) < 0) {
            PX_ERROR("cannot write %s/origin-pull.key: %s; rules with originPull answer 502",
                     c->id->dir, strerror(errno));
            rc = PX_ERR_IO;
        } else if (rc < 0) {
            PX_ERROR("cannot generate the origin-pull key: %s; rules with originPull answer 502",
                     px_strerror(rc));
        }
        if (rc < 0) {
            if (key)
                memset(key, 0, strlen(key));
            free(key);
            free(pub);
            return rc;
        }
        c->pull_key = key;
        c->pull_pub = pub;
        PX_INFO("generated the origin-pull key in %s/origin-pull.key", c->id->dir);
    }
    if (!sl->wanted) {
        sl->wanted = 1;
        schedule(sl);
    }
    return 0;
}

enum cn_pull_state cn_creds_origin_pull(const struct cn_creds *c, const char **cert,
                                        const char **key)
{
    const struct cn_cert_slot *sl = &c->slots[CN_CERT_ORIGIN_PULL];
    if (!sl->cert_pem || !c->pull_key)
        return CN_PULL_NONE;
    if (now_s() >= sl->not_after)
        return CN_PULL_EXPIRED;
    *cert = sl->cert_pem;
    *key = c->pull_key;
    return CN_PULL_READY;
}

/* ---- what the links report ---- */

void cn_creds_link_up(struct cn_creds *c)
{
    for (int k = 0; k < CN_CERT_KINDS; k++)
        if (c->slots[k].waiting_link)
            try_send(&c->slots[k]);
}

void cn_creds_link_gone(struct cn_creds *c, void *link)
{
    for (int k = 0; k < CN_CERT_KINDS; k++) {
        struct cn_cert_slot *sl = &c->slots[k];
        if (sl->in_flight && sl->sent_on == link)
            failed(sl, "the connection closed before the edge answered");
    }
}

int cn_creds_set_origin_ca(struct cn_creds *c, const char *pem)
{
    int changed = 0;
    int rc = cn_trust_set_origin_ca(&c->trust, pem, &changed);
    if (rc < 0) {
        PX_WARN("the edge's origin CA cannot be used (%s); keeping %s", px_strerror(rc),
                cn_trust_origin_ca(&c->trust) ? "the previous one" : "none");
        return rc;
    }
    if (!changed)
        return 0;
    rc = write_state_file(c, "origin-ca.pem", cn_trust_origin_ca(&c->trust));
    if (rc < 0) {
        /* Trusted from memory all the same; the edge sends it again. */
        PX_WARN("cannot write %s/origin-ca.pem: %s", c->id->dir,
                rc == PX_ERR_IO ? strerror(errno) : px_strerror(rc));
        return rc;
    }
    PX_INFO("stored the edge's origin CA in %s/origin-ca.pem", c->id->dir);
    return 0;
}

static int kind_of(const char *kind, enum cn_cert_kind *k)
{
    if (kind && strcmp(kind, PX_CTL_KIND_TUNNEL) == 0)
        *k = CN_CERT_TUNNEL;
    else if (kind && strcmp(kind, PX_CTL_KIND_ORIGIN_PULL) == 0)
        *k = CN_CERT_ORIGIN_PULL;
    else
        return PX_ERR_INVAL;
    return 0;
}

/* A renewal answer that cannot be used: a failure of the attempt in flight,
 * or only a warning when none is. */
static int refuse(struct cn_cert_slot *sl, const char *reason, int rc)
{
    if (sl->in_flight)
        failed(sl, reason);
    else
        PX_WARN("certificate from the edge ignored: %s (%s certificate)", reason,
                kind_text(sl->kind));
    return rc;
}

int cn_creds_renewed(struct cn_creds *c, void *link, const char *kind, const char *pem)
{
    (void)link; /* any link of the tunnel may carry the answer */
    enum cn_cert_kind k;
    if (kind_of(kind, &k) < 0 || !pem) {
        PX_WARN("renewed certificate of unknown kind ignored");
        return PX_ERR_INVAL;
    }
    struct cn_cert_slot *sl = &c->slots[k];
    const char *pub = k == CN_CERT_TUNNEL ? c->tunnel_pub : c->pull_pub;
    if (!pub)
        return refuse(sl, "no origin-pull key here to use it with", PX_ERR_INVAL);
    long long nb, na, now = now_s();
    int rc = read_cert(pem, pub, &nb, &na);
    if (rc == PX_ERR_DENIED)
        return refuse(sl, "the edge's certificate is for another key", rc);
    if (rc < 0)
        return refuse(sl, "the edge's certificate cannot be read", rc);
    if (na <= now)
        return refuse(sl, "the edge's certificate has already expired", PX_ERR_INVAL);
    if (k == CN_CERT_TUNNEL)
        rc = cn_identity_save_cert(c->id, pem);
    else
        rc = write_state_file(c, "origin-pull.pem", pem);
    if (rc < 0) {
        const char *err = rc == PX_ERR_IO ? strerror(errno) : px_strerror(rc);
        struct px_buf reason;
        px_buf_init(&reason);
        int wr = px_buf_appendf(&reason, "cannot store the certificate in %s: %s", c->id->dir, err);
        refuse(sl, wr == 0 ? px_buf_cstr(&reason) : err, rc);
        px_buf_cleanup(&reason);
        return rc;
    }
    int first = sl->cert_pem == NULL;
    if (slot_take(sl, pem, nb, na, now) < 0)
        return refuse(sl, "out of memory", PX_ERR_NOMEM);
    uv_timer_stop(&sl->timer);
    sl->in_flight = 0;
    sl->sent_on = NULL;
    sl->retrying = 0;
    sl->token_replaced = 0;
    cn_backoff_reset(&sl->backoff);
    char until[21];
    px_cert_time(na, until);
    PX_INFO("%s the %s certificate, valid until %s",
            first && k == CN_CERT_ORIGIN_PULL ? "obtained" : "renewed", kind_text(k), until);
    if (k == CN_CERT_TUNNEL && c->ops.tunnel_cert_changed)
        c->ops.tunnel_cert_changed(c->ops.arg);
    schedule(sl);
    return 0;
}

int cn_creds_renew_failed(struct cn_creds *c, void *link, const char *reason, const char *message)
{
    /* The edge answers a link's control messages in order, so the error
     * belongs to the oldest RENEW still open on that link. */
    struct cn_cert_slot *oldest = NULL;
    for (int k = 0; k < CN_CERT_KINDS; k++) {
        struct cn_cert_slot *sl = &c->slots[k];
        if (sl->in_flight && sl->sent_on == link && (!oldest || sl->seq < oldest->seq))
            oldest = sl;
    }
    if (!oldest) {
        PX_WARN("certificate renewal failed: %s",
                message && *message ? message : "no reason given");
        return 0;
    }
    if (reason && strcmp(reason, PX_CTL_RENEW_TOKEN_REPLACED) == 0) {
        refused_for_token(oldest, message);
        return 1;
    }
    failed(oldest, message);
    return 0;
}
