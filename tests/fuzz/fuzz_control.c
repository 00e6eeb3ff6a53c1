/* libFuzzer target for the control-stream framer and codec.
 * The input is a byte stream; it is fed to one framer in a single call and to
 * another in pseudo-random pieces (seeded from the input, so runs reproduce).
 * Properties: no crash/leak; both framers deliver the same messages and end
 * with the same result; every delivered message re-encodes to one line that
 * decodes to the same message. */
#include "px_control.h"
#include "px_err.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A broken property: say where, then crash so libFuzzer keeps the input. */
#define FAIL() (fprintf(stderr, "property violated at %s:%d\n", __FILE__, __LINE__), abort())

struct trace {
    uint64_t hash; /* over the delivered messages */
    unsigned count;
};

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static uint64_t mix_str(uint64_t h, const char *s)
{
    return s ? mix(h, s, strlen(s) + 1) : mix(h, "\xff", 1);
}

static uint64_t msg_hash(const struct px_ctl_msg *m)
{
    uint64_t h = 14695981039346656037ull;
    h = mix(h, &m->type, sizeof(m->type));
    h = mix(h, &m->n_hostnames, sizeof(m->n_hostnames));
    for (size_t i = 0; i < m->n_hostnames; i++)
        h = mix_str(h, m->hostnames[i]);
    h = mix(h, &m->n_results, sizeof(m->n_results));
    for (size_t i = 0; i < m->n_results; i++) {
        h = mix_str(h, m->results[i].hostname);
        h = mix(h, &m->results[i].accepted, sizeof(int));
        h = mix_str(h, m->results[i].reason);
    }
    h = mix_str(h, m->code);
    h = mix_str(h, m->message);
    h = mix_str(h, m->reason);
    h = mix(h, &m->permanent, sizeof(int));
    h = mix_str(h, m->agent);
    h = mix_str(h, m->conn_id);
    h = mix_str(h, m->issuer);
    h = mix_str(h, m->jwks);
    h = mix_str(h, m->kind);
    h = mix_str(h, m->pem);
    return h;
}

static int on_msg(const struct px_ctl_msg *m, void *arg)
{
    struct trace *t = arg;
    uint64_t h = msg_hash(m);
    t->hash = mix(t->hash, &h, sizeof(h));
    t->count++;

    char *line = px_ctl_encode(m);
    if (!line)
        FAIL();
    size_t n = strlen(line);
    if (n == 0 || line[n - 1] != '\n' || memchr(line, '\n', n - 1))
        FAIL();
    if (n - 1 <= PX_CTL_MAX_LINE) {
        struct px_ctl_msg back;
        if (px_ctl_decode(line, n - 1, &back) != 0)
            FAIL();
        /* The encoder always writes "permanent" and a code for errors; for
         * other types the decoded message must be identical. */
        if (msg_hash(&back) != h)
            FAIL();
        px_ctl_msg_cleanup(&back);
    }
    free(line);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct px_ctl_framer f;
    struct trace one = {0}, split = {0};

    px_ctl_framer_init(&f);
    int rc_one = px_ctl_framer_feed(&f, data, size, on_msg, &one);
    px_ctl_framer_cleanup(&f);

    uint64_t rnd = mix(14695981039346656037ull, data, size) | 1;
    px_ctl_framer_init(&f);
    int rc_split = 0;
    size_t off = 0;
    while (off < size && rc_split == 0) {
        rnd ^= rnd << 13;
        rnd ^= rnd >> 7;
        rnd ^= rnd << 17;
        /* Mostly small pieces, sometimes empty, sometimes large. */
        size_t n = (rnd >> 8) % 8 == 0 ? (rnd >> 16) % 4096 : (rnd >> 16) % 17;
        if (n > size - off)
            n = size - off;
        rc_split = px_ctl_framer_feed(&f, data + off, n, on_msg, &split);
        off += n;
    }
    px_ctl_framer_cleanup(&f);

    if (rc_one != rc_split || one.count != split.count || one.hash != split.hash)
        FAIL();
    return 0;
}
