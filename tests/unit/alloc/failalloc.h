/* failalloc: makes the n-th allocation fail, for the allocation-failure
 * tests in this directory. Include it in exactly one file of a test binary
 * linked with
 *     -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,--wrap=strndup
 * (the Makefile does this for tests/unit/alloc/).
 *
 * What is covered: every call to those functions from our own objects
 * (proto, rt, connector, edge-sim, tests/support), since --wrap redirects
 * them at link time; nghttp2, through the nghttp2_mem that px_h2 hands it
 * (its functions are our calls to malloc...); libcurl, through
 * curl_global_init_mem; jansson, through json_set_alloc_funcs (fa_init sets
 * both up), except while fa_json_fails is 0.
 * jansson's parser must not be made to fail: in 2.14 its lexer ignores a
 * failed append to the text it saves, then scans that text past its end for
 * the closing quote (a heap overflow inside jansson, outside our control).
 * Tests that decode JSON clear fa_json_fails; those that encode keep it (its
 * serialiser's own flaw, a dropped object key, is handled by px_json_dumps).
 * What is not: allocations inside libuv, wolfSSL, SQLite, http_parser (none)
 * and glibc itself (regcomp, fopen, getaddrinfo), and nghttp2's callbacks and
 * options objects (nghttp2_session_callbacks_new / nghttp2_option_new have
 * no allocator argument). wolfSSL linked statically (WOLFSSL=source) would
 * be wrapped with our objects: fa_init hands it the real allocators, so the
 * sweeps cover the same calls with either wolfSSL.
 *
 * fa_arm(n): the n-th allocation from now fails, once; the others succeed.
 * fa_disarm(): stop failing. fa_failed(): whether the armed failure
 * happened. fa_count(): allocations seen since arming. */
#ifndef FAILALLOC_H
#define FAILALLOC_H

#include <curl/curl.h>
#include <jansson.h>
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/memory.h>

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

static long fa_target;        /* 0: not armed */
static int fa_json_fails = 1; /* jansson's allocations may fail too */
static long fa_seen;
static int fa_hit;

static inline void fa_arm(long n)
{
    fa_target = n;
    fa_seen = 0;
    fa_hit = 0;
}

static inline void fa_disarm(void)
{
    fa_target = 0;
}

static inline int fa_failed(void)
{
    return fa_hit;
}

static inline long fa_count(void)
{
    return fa_seen;
}

static int fa_fail_now(void)
{
    if (!fa_target)
        return 0;
    if (++fa_seen != fa_target)
        return 0;
    fa_hit = 1;
    return 1;
}

void *__wrap_malloc(size_t n)
{
    return fa_fail_now() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return fa_fail_now() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    return fa_fail_now() ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
    return fa_fail_now() ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
    return fa_fail_now() ? NULL : __real_strndup(s, n);
}

/* Library allocators routed through the wrapped ones. */
static void *fa_lib_malloc(size_t n)
{
    return __wrap_malloc(n);
}

static void *fa_json_malloc(size_t n)
{
    return fa_json_fails ? __wrap_malloc(n) : __real_malloc(n);
}

static void fa_lib_free(void *p)
{
    free(p);
}

static void *fa_lib_realloc(void *p, size_t n)
{
    return __wrap_realloc(p, n);
}

static char *fa_lib_strdup(const char *s)
{
    return __wrap_strdup(s);
}

static void *fa_lib_calloc(size_t n, size_t size)
{
    return __wrap_calloc(n, size);
}

/* Call first, before any jansson, curl or wolfSSL use. Returns 0 or -1. */
static inline int fa_init(void)
{
    json_set_alloc_funcs(fa_json_malloc, fa_lib_free);
    if (wolfSSL_SetAllocators(__real_malloc, free, __real_realloc) != 0)
        return -1;
    return curl_global_init_mem(CURL_GLOBAL_DEFAULT, fa_lib_malloc, fa_lib_free, fa_lib_realloc,
                                fa_lib_strdup, fa_lib_calloc) == CURLE_OK
               ? 0
               : -1;
}

#endif
