/* cn_trust: what the connector verifies https origins against: the system
 * CA bundle, a rule's caPool (already joined to the system bundle in the
 * rule's ca_blob, see cn_ingress.h) and the edge's origin CA, the CA that
 * signs the origin server certificates of `edge-sim origin-cert create`.
 * The origin CA arrives at enrolment and on every connection (cn_creds.h)
 * and may change while requests run, so it is not part of a rule set.
 *
 * The blobs handed to curl (CURLOPT_CAINFO_BLOB with CURL_BLOB_NOCOPY) are
 * reference counted: a request holds the blob it started with for as long
 * as curl may read it, and a new origin CA changes only what later requests
 * get. Rules without caPool share one blob (system bundle + origin CA);
 * a rule with caPool gets one of its own per request (its ca_blob + origin
 * CA). Single-threaded, like the loop that uses it. */
#ifndef CN_TRUST_H
#define CN_TRUST_H

#include <stddef.h>

struct cn_origin_opts;

struct cn_trust_blob {
    unsigned refs;
    size_t len;
    char data[]; /* PEM certificates, len bytes, NUL-terminated */
};

struct cn_trust {
    char *origin_ca;              /* normalised PEM, or NULL until the edge sent one */
    char *system;                 /* the system bundle, read on first use (may stay NULL) */
    size_t system_len;            /* 0 when absent or unreadable */
    int system_loaded;            /* tried once */
    struct cn_trust_blob *shared; /* system + origin CA, built on first use */
};

void cn_trust_init(struct cn_trust *t);
void cn_trust_cleanup(struct cn_trust *t);

/* The system CA bundle's path, as libcurl would use it, written into buf
 * (len bytes; CN_TRUST_PATH_MAX is plenty). Returns buf. */
#define CN_TRUST_PATH_MAX 512
const char *cn_trust_system_ca_path(char *buf, size_t len);

/* Replaces the origin CA with pem (one or more PEM certificates, each a CA:
 * basicConstraints CA:TRUE). The stored form is re-encoded from the DER, so
 * text around the blocks is dropped. Returns 0 (*changed, may be NULL, says
 * whether the certificates differ from the previous ones), PX_ERR_INVAL for
 * text without a certificate, one that does not parse or is not a CA (the
 * previous origin CA stays), or PX_ERR_NOMEM. */
int cn_trust_set_origin_ca(struct cn_trust *t, const char *pem, int *changed);
/* The current origin CA (normalised PEM), or NULL. Owned by t; replaced by
 * the next cn_trust_set_origin_ca. */
const char *cn_trust_origin_ca(const struct cn_trust *t);

/* The CA blob for a request under origin settings o. Returns 0 with *out a
 * reference the caller releases with cn_trust_blob_unref, or with *out NULL
 * when there is no origin CA yet (then o->ca_blob, or curl's own bundle
 * when that is NULL, is what to use); or PX_ERR_NOMEM. */
int cn_trust_blob_for(struct cn_trust *t, const struct cn_origin_opts *o,
                      struct cn_trust_blob **out);
void cn_trust_blob_unref(struct cn_trust_blob *b);

#endif
