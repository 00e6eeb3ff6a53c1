/* px_nv: the owned header arrays both ends build responses and requests in. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "px_err.h"
#include "px_h2.h"
#include "px_nv.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void assert_field(const struct px_nv *h, size_t i, const char *name, const char *value)
{
    assert_true(i < h->n);
    assert_int_equal(h->nv[i].namelen, strlen(name));
    assert_int_equal(h->nv[i].valuelen, strlen(value));
    /* NUL-terminated copies: readable as C strings. */
    assert_string_equal((const char *)h->nv[i].name, name);
    assert_string_equal((const char *)h->nv[i].value, value);
    assert_int_equal(h->nv[i].flags, NGHTTP2_NV_FLAG_NONE);
}

static void test_add_owns_copies(void **state)
{
    (void)state;
    struct px_nv h;
    px_nv_init(&h, 0, 0);
    assert_int_equal(h.n, 0);
    assert_null(h.nv);
    char name[] = "X-Name", value[] = "Some Value";
    assert_int_equal(px_nv_add(&h, name, 6, value, 10, 0), 0);
    assert_int_equal(px_nv_add(&h, name, 6, value, 10, PX_NV_LOWER), 0);
    memset(name, '?', sizeof(name) - 1);
    memset(value, '?', sizeof(value) - 1);
    assert_field(&h, 0, "X-Name", "Some Value");
    assert_field(&h, 1, "x-name", "Some Value"); /* only the name is lowered */
    assert_int_equal(h.bytes, 2 * (6 + 10 + 32));
    /* Binary-safe: a length, not a NUL, ends a value; empty values are fine. */
    assert_int_equal(px_nv_add(&h, "a", 1, "b\0c", 3, 0), 0);
    assert_int_equal(h.nv[2].valuelen, 3);
    assert_memory_equal(h.nv[2].value, "b\0c", 4);
    assert_int_equal(px_nv_add_str(&h, "empty", "", 0), 0);
    assert_field(&h, 3, "empty", "");
    px_nv_cleanup(&h);
    assert_null(h.nv);
    assert_int_equal(h.n, 0);
    px_nv_cleanup(&h); /* idempotent */
}

static void test_field_size(void **state)
{
    (void)state;
    assert_int_equal(px_nv_field_size(0, 0), 32);
    assert_int_equal(px_nv_field_size(10, 5), 47);
}

static void test_growth(void **state)
{
    (void)state;
    struct px_nv h;
    px_nv_init(&h, 0, 0);
    char n[16], v[16];
    for (int i = 0; i < 1000; i++) {
        snprintf(n, sizeof(n), "h%d", i);
        snprintf(v, sizeof(v), "v%d", i);
        assert_int_equal(px_nv_add_str(&h, n, v, 0), 0);
    }
    assert_int_equal(h.n, 1000);
    assert_true(h.cap >= 1000);
    assert_field(&h, 0, "h0", "v0");
    assert_field(&h, 999, "h999", "v999");
    px_nv_cleanup(&h);
}

static void test_field_cap(void **state)
{
    (void)state;
    struct px_nv h;
    px_nv_init(&h, 3, 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(px_nv_add_str(&h, "a", "b", 0), 0);
    assert_int_equal(px_nv_add_str(&h, "a", "b", 0), PX_ERR_TOO_LARGE);
    assert_int_equal(h.n, 3);
    assert_true(h.cap <= 3); /* never allocates past the cap */
    px_nv_cleanup(&h);
}

/* The byte cap counts name + value + 32 per field, as RFC 7541 does. */
static void test_byte_cap(void **state)
{
    (void)state;
    struct px_nv h;
    px_nv_init(&h, 0, 100);
    assert_int_equal(px_nv_add(&h, "aaaa", 4, "bbbb", 4, 0), 0);
    assert_int_equal(px_nv_add(&h, "aaaa", 4, "bbbb", 4, 0), 0);
    assert_int_equal(h.bytes, 80);
    assert_int_equal(px_nv_add(&h, "a", 1, "", 0, 0), PX_ERR_TOO_LARGE); /* 113 */
    assert_int_equal(h.n, 2);
    assert_int_equal(h.bytes, 80);
    /* Exactly at the cap is allowed. */
    px_nv_clear(&h);
    assert_int_equal(h.n, 0);
    assert_int_equal(h.bytes, 0);
    assert_int_equal(h.max_bytes, 100); /* clear keeps the caps */
    assert_int_equal(
        px_nv_add(&h, "n", 1, "0123456789012345678901234567890123456789012345678901234567890123456",
                  67, 0),
        0);
    assert_int_equal(h.bytes, 100);
    assert_int_equal(px_nv_add(&h, "", 0, "", 0, 0), PX_ERR_TOO_LARGE);
    /* A single huge field cannot wrap the arithmetic. */
    assert_int_equal(px_nv_add(&h, "n", SIZE_MAX - 8, "v", 1, 0), PX_ERR_TOO_LARGE);
    px_nv_cleanup(&h);
}

static void test_find_set_remove(void **state)
{
    (void)state;
    struct px_nv h;
    px_nv_init(&h, 0, 200);
    assert_int_equal(px_nv_add_str(&h, ":method", "GET", 0), 0);
    assert_int_equal(px_nv_add_str(&h, "Host", "a.example", PX_NV_LOWER), 0);
    assert_int_equal(px_nv_add_str(&h, "accept", "*/*", 0), 0);
    assert_int_equal(px_nv_find(&h, "host"), 1);
    assert_int_equal(px_nv_find(&h, "Host"), -1); /* exact match */
    assert_int_equal(px_nv_find(&h, "hos"), -1);
    assert_int_equal(px_nv_find(&h, "missing"), -1);
    size_t before = h.bytes;
    assert_int_equal(px_nv_set_value(&h, 1, "bb.example", 10), 0);
    assert_field(&h, 1, "host", "bb.example");
    assert_int_equal(h.bytes, before + 1);
    /* A value that would pass the byte cap is refused; the old one stays. */
    char big[128];
    memset(big, 'x', sizeof(big));
    assert_int_equal(px_nv_set_value(&h, 1, big, sizeof(big)), PX_ERR_TOO_LARGE);
    assert_field(&h, 1, "host", "bb.example");
    /* Shrinking is always allowed. */
    assert_int_equal(px_nv_set_value(&h, 1, "c", 1), 0);
    assert_int_equal(h.bytes, before - 8);
    px_nv_remove(&h, 0);
    assert_int_equal(h.n, 2);
    assert_field(&h, 0, "host", "c");
    assert_field(&h, 1, "accept", "*/*");
    assert_int_equal(h.bytes, px_nv_field_size(4, 1) + px_nv_field_size(6, 3));
    px_nv_remove(&h, 1);
    px_nv_remove(&h, 0);
    assert_int_equal(h.n, 0);
    assert_int_equal(h.bytes, 0);
    px_nv_cleanup(&h);
}

/* Issue 13: fields are packed into blocks the array owns. Strings never
 * move while fields are added (nghttp2_nv pointers handed out stay valid),
 * the array's own entries move out of the first block when it grows, a
 * field larger than any block gets its own, and clear keeps one block. */
static void test_block_storage(void **state)
{
    (void)state;
    struct px_nv h;
    px_nv_init(&h, 0, 0);
    assert_int_equal(px_nv_add_str(&h, ":method", "GET", 0), 0);
    const uint8_t *first_name = h.nv[0].name, *first_value = h.nv[0].value;
    char n[16], v[64];
    for (int i = 0; i < 200; i++) { /* past the first block and the first 16 entries */
        snprintf(n, sizeof(n), "N%d", i);
        snprintf(v, sizeof(v), "value number %d of many, long enough to fill blocks", i);
        assert_int_equal(px_nv_add_str(&h, n, v, PX_NV_LOWER), 0);
    }
    assert_ptr_equal(h.nv[0].name, first_name); /* not moved */
    assert_ptr_equal(h.nv[0].value, first_value);
    assert_field(&h, 0, ":method", "GET");
    assert_field(&h, 1, "n0", "value number 0 of many, long enough to fill blocks");
    assert_field(&h, 200, "n199", "value number 199 of many, long enough to fill blocks");
    /* Bigger than any block. */
    size_t big = 100 * 1024;
    char *b = malloc(big);
    assert_non_null(b);
    memset(b, 'b', big);
    assert_int_equal(px_nv_add(&h, "big", 3, b, big, 0), 0);
    assert_int_equal(h.nv[201].valuelen, big);
    assert_memory_equal(h.nv[201].value, b, big);
    assert_int_equal(h.nv[201].value[big], '\0');
    assert_field(&h, 200, "n199", "value number 199 of many, long enough to fill blocks");
    /* Replacing values again and again keeps every other field intact. */
    for (int i = 0; i < 100; i++) {
        snprintf(v, sizeof(v), "replacement %d", i);
        assert_int_equal(px_nv_set_value(&h, 0, v, strlen(v)), 0);
    }
    assert_field(&h, 0, ":method", "replacement 99");
    assert_field(&h, 1, "n0", "value number 0 of many, long enough to fill blocks");
    free(b);
    /* A cleared array takes new fields (its next head). */
    px_nv_clear(&h);
    assert_int_equal(h.n, 0);
    for (int i = 0; i < 40; i++) {
        snprintf(n, sizeof(n), "x-%d", i);
        assert_int_equal(px_nv_add_str(&h, n, "again", 0), 0);
    }
    assert_field(&h, 0, "x-0", "again");
    assert_field(&h, 39, "x-39", "again");
    px_nv_cleanup(&h);
    /* A small head cleared and refilled stays in its first block. */
    px_nv_init(&h, 0, 0);
    assert_int_equal(px_nv_add_str(&h, "a", "1", 0), 0);
    const nghttp2_nv *arr = h.nv;
    px_nv_clear(&h);
    assert_int_equal(px_nv_add_str(&h, "b", "2", 0), 0);
    assert_ptr_equal(h.nv, arr);
    assert_field(&h, 0, "b", "2");
    /* A copy by value carries the storage (es_req moves heads so). */
    struct px_nv moved = h;
    assert_field(&moved, 0, "b", "2");
    px_nv_cleanup(&moved);
}

static void test_response_array(void **state)
{
    (void)state;
    struct px_nv h;
    px_nv_init(&h, 0, 0);
    assert_int_equal(px_nv_add_str(&h, "content-type", "text/plain", 0), 0);
    char st[PX_NV_STATUS_SIZE];
    nghttp2_nv *nv;
    assert_int_equal(px_nv_response(404, h.nv, h.n, st, &nv), 0);
    assert_memory_equal(nv[0].name, ":status", 7);
    assert_int_equal(nv[0].namelen, 7);
    assert_int_equal(nv[0].valuelen, 3);
    assert_memory_equal(nv[0].value, "404", 3);
    assert_ptr_equal(nv[1].name, h.nv[0].name); /* shared, not copied */
    free(nv);
    assert_int_equal(px_nv_response(200, NULL, 0, st, &nv), 0);
    assert_string_equal(st, "200");
    free(nv);
    assert_int_equal(px_nv_response(99, NULL, 0, st, &nv), PX_ERR_INVAL);
    assert_null(nv);
    assert_int_equal(px_nv_response(1000, NULL, 0, st, &nv), PX_ERR_INVAL);
    px_nv_cleanup(&h);
}

/* ---- px_nv_submit_response over a real nghttp2 pair ---- */

struct client {
    char status[8];
    char names[8][32];
    char values[8][32];
    int n;
    int end_stream;
};

static int on_header(nghttp2_session *s, const nghttp2_frame *fr, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
    (void)s;
    (void)fr;
    (void)flags;
    struct client *c = user;
    if (nlen == 7 && memcmp(name, ":status", 7) == 0) {
        snprintf(c->status, sizeof(c->status), "%.*s", (int)vlen, (const char *)value);
    } else if (c->n < 8) {
        snprintf(c->names[c->n], 32, "%.*s", (int)nlen, (const char *)name);
        snprintf(c->values[c->n], 32, "%.*s", (int)vlen, (const char *)value);
        c->n++;
    }
    return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *fr, void *user)
{
    (void)s;
    struct client *c = user;
    if (fr->hd.stream_id && (fr->hd.flags & NGHTTP2_FLAG_END_STREAM))
        c->end_stream = 1;
    return 0;
}

static int noop_data(nghttp2_session *s, uint8_t f, int32_t id, const uint8_t *d, size_t l, void *u)
{
    (void)s;
    (void)f;
    (void)id;
    (void)d;
    (void)l;
    (void)u;
    return 0;
}

static int noop_close(nghttp2_session *s, int32_t id, uint32_t e, void *u)
{
    (void)s;
    (void)id;
    (void)e;
    (void)u;
    return 0;
}

static int noop_header(nghttp2_session *s, const nghttp2_frame *fr, const uint8_t *n, size_t nl,
                       const uint8_t *v, size_t vl, uint8_t f, void *u)
{
    (void)s;
    (void)fr;
    (void)n;
    (void)nl;
    (void)v;
    (void)vl;
    (void)f;
    (void)u;
    return 0;
}

static int noop_frame(nghttp2_session *s, const nghttp2_frame *fr, void *u)
{
    (void)s;
    (void)fr;
    (void)u;
    return 0;
}

static void pump(nghttp2_session *from, nghttp2_session *to)
{
    for (;;) {
        const uint8_t *p;
        ssize_t n = nghttp2_session_mem_send(from, &p);
        assert_true(n >= 0);
        if (n == 0)
            return;
        assert_int_equal(nghttp2_session_mem_recv(to, p, (size_t)n), n);
    }
}

static void test_submit_response(void **state)
{
    (void)state;
    struct client c = {0};
    static const struct px_h2_callbacks ccb = {.header = on_header,
                                               .frame_recv = on_frame_recv,
                                               .data_chunk = noop_data,
                                               .stream_close = noop_close};
    static const struct px_h2_callbacks scb = {.header = noop_header,
                                               .frame_recv = noop_frame,
                                               .data_chunk = noop_data,
                                               .stream_close = noop_close};
    nghttp2_session *cli, *srv;
    assert_int_equal(px_h2_session_new(&cli, 0, &ccb, &c, NULL, 0, 65535), 0);
    assert_int_equal(px_h2_session_new(&srv, 1, &scb, NULL, NULL, 0, 65535), 0);
    const nghttp2_nv req[] = {
        {(uint8_t *)":method", (uint8_t *)"GET", 7, 3, 0},
        {(uint8_t *)":scheme", (uint8_t *)"https", 7, 5, 0},
        {(uint8_t *)":path", (uint8_t *)"/", 5, 1, 0},
        {(uint8_t *)":authority", (uint8_t *)"a.example", 10, 9, 0},
    };
    int32_t id = nghttp2_submit_request(cli, NULL, req, 4, NULL, NULL);
    assert_true(id > 0);
    pump(cli, srv);
    struct px_nv h;
    px_nv_init(&h, 0, 0);
    assert_int_equal(px_nv_add_str(&h, "Content-Type", "text/plain", PX_NV_LOWER), 0);
    assert_int_equal(px_nv_add_str(&h, "x-a", "1", 0), 0);
    assert_int_equal(px_nv_submit_response(srv, id, 503, h.nv, h.n, NULL), 0);
    /* A status nghttp2 could not send is refused before it is asked. */
    assert_int_equal(px_nv_submit_response(srv, id, 42, h.nv, h.n, NULL), PX_ERR_INVAL);
    /* nghttp2 refusing (no such stream) is PX_ERR_H2. */
    assert_int_equal(px_nv_submit_response(srv, 0, 200, NULL, 0, NULL), PX_ERR_H2);
    px_nv_cleanup(&h); /* nghttp2 copied what it needs */
    pump(srv, cli);
    assert_string_equal(c.status, "503");
    assert_int_equal(c.n, 2);
    assert_string_equal(c.names[0], "content-type");
    assert_string_equal(c.values[0], "text/plain");
    assert_string_equal(c.names[1], "x-a");
    assert_int_equal(c.end_stream, 1); /* no data provider: the head ends the stream */
    nghttp2_session_del(cli);
    nghttp2_session_del(srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_owns_copies), cmocka_unit_test(test_field_size),
        cmocka_unit_test(test_growth),          cmocka_unit_test(test_field_cap),
        cmocka_unit_test(test_byte_cap),        cmocka_unit_test(test_find_set_remove),
        cmocka_unit_test(test_response_array),  cmocka_unit_test(test_submit_response),
        cmocka_unit_test(test_block_storage),
    };
    return cmocka_run_group_tests_name("px_nv", tests, NULL, NULL);
}
