/* libcurl's functions, forwarded to libcurl.so.4 loaded on first use (see
 * cn_curl.h for why). */
#define CURL_DISABLE_TYPECHECK /* the definitions below, not typecheck-gcc.h's macros */
#include "cn_curl.h"
#include "px_log.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* The soname of Debian's libcurl4 (OpenSSL flavour), whose headers
 * (libcurl4-openssl-dev) we compile against. */
#define CN_CURL_SONAME "libcurl.so.4"

/* Every function forwarded: name, return type, parameters. */
#define CN_CURL_FUNCS(X)                                                                           \
    X(curl_global_init, CURLcode, (long))                                                          \
    X(curl_global_init_mem, CURLcode,                                                              \
      (long, curl_malloc_callback, curl_free_callback, curl_realloc_callback,                      \
       curl_strdup_callback, curl_calloc_callback))                                                \
    X(curl_global_cleanup, void, (void))                                                           \
    X(curl_version_info, curl_version_info_data *, (CURLversion))                                  \
    X(curl_easy_init, CURL *, (void))                                                              \
    X(curl_easy_setopt, CURLcode, (CURL *, CURLoption, ...))                                       \
    X(curl_easy_getinfo, CURLcode, (CURL *, CURLINFO, ...))                                        \
    X(curl_easy_cleanup, void, (CURL *))                                                           \
    X(curl_easy_reset, void, (CURL *))                                                             \
    X(curl_easy_pause, CURLcode, (CURL *, int))                                                    \
    X(curl_easy_recv, CURLcode, (CURL *, void *, size_t, size_t *))                                \
    X(curl_easy_send, CURLcode, (CURL *, const void *, size_t, size_t *))                          \
    X(curl_easy_strerror, const char *, (CURLcode))                                                \
    X(curl_multi_init, CURLM *, (void))                                                            \
    X(curl_multi_setopt, CURLMcode, (CURLM *, CURLMoption, ...))                                   \
    X(curl_multi_add_handle, CURLMcode, (CURLM *, CURL *))                                         \
    X(curl_multi_remove_handle, CURLMcode, (CURLM *, CURL *))                                      \
    X(curl_multi_cleanup, CURLMcode, (CURLM *))                                                    \
    X(curl_multi_info_read, CURLMsg *, (CURLM *, int *))                                           \
    X(curl_multi_socket_action, CURLMcode, (CURLM *, curl_socket_t, int, int *))                   \
    X(curl_multi_assign, CURLMcode, (CURLM *, curl_socket_t, void *))                              \
    X(curl_multi_strerror, const char *, (CURLMcode))

#define CN_CURL_FIELD(name, ret, params) ret(*name) params;
static struct {
    CN_CURL_FUNCS(CN_CURL_FIELD)
} lib;
static int lib_ok;
static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

static void load(void)
{
    /* RTLD_LOCAL: libcurl's symbols stay out of the global scope, so they
     * never meet the definitions below. */
    void *h = dlopen(CN_CURL_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *why = dlerror();
        PX_ERROR("cannot load libcurl (%s): %s; origins that need it fail", CN_CURL_SONAME,
                 why ? why : "unknown error");
        return;
    }
    /* POSIX: dlsym's data pointer holds a function's address. */
#define CN_CURL_SYM(name, ret, params)                                                             \
    {                                                                                              \
        void *sym = dlsym(h, #name);                                                               \
        if (!sym) {                                                                                \
            PX_ERROR("libcurl (%s) has no %s", CN_CURL_SONAME, #name);                             \
            return;                                                                                \
        }                                                                                          \
        memcpy(&lib.name, &sym, sizeof(sym));                                                      \
    }
    CN_CURL_FUNCS(CN_CURL_SYM)
#undef CN_CURL_SYM
    /* h stays open: libcurl's state lives until exit. */
    __atomic_store_n(&lib_ok, 1, __ATOMIC_RELEASE);
}

/* Loads libcurl on the first call; 1 when it is usable. */
static int ready(void)
{
    pthread_once(&lib_once, load);
    return lib_ok;
}

int cn_curl_loaded(void)
{
    /* Written once inside pthread_once, before any caller can see 1. */
    return __atomic_load_n(&lib_ok, __ATOMIC_ACQUIRE);
}

CURLcode curl_global_init(long flags)
{
    return ready() ? lib.curl_global_init(flags) : CURLE_FAILED_INIT;
}

CURLcode curl_global_init_mem(long flags, curl_malloc_callback m, curl_free_callback f,
                              curl_realloc_callback r, curl_strdup_callback s,
                              curl_calloc_callback c)
{
    return ready() ? lib.curl_global_init_mem(flags, m, f, r, s, c) : CURLE_FAILED_INIT;
}

void curl_global_cleanup(void)
{
    /* Only after a curl_global_init, which loaded the library. */
    if (cn_curl_loaded())
        lib.curl_global_cleanup();
}

curl_version_info_data *curl_version_info(CURLversion v)
{
    return ready() ? lib.curl_version_info(v) : NULL;
}

CURL *curl_easy_init(void)
{
    return ready() ? lib.curl_easy_init() : NULL;
}

/* An option's argument type is in its number (curl.h, CURLOPTTYPE_*); the
 * same ranges hold for the multi options. */
enum arg_kind { ARG_LONG, ARG_PTR, ARG_FUNC, ARG_OFF_T };

static enum arg_kind arg_kind_of(int option)
{
    if (option < CURLOPTTYPE_OBJECTPOINT)
        return ARG_LONG;
    if (option < CURLOPTTYPE_FUNCTIONPOINT)
        return ARG_PTR;
    if (option < CURLOPTTYPE_OFF_T)
        return ARG_FUNC;
    if (option < CURLOPTTYPE_BLOB)
        return ARG_OFF_T;
    return ARG_PTR; /* struct curl_blob * */
}

typedef void (*any_func)(void);

CURLcode curl_easy_setopt(CURL *e, CURLoption option, ...)
{
    if (!ready())
        return CURLE_FAILED_INIT;
    va_list ap;
    va_start(ap, option);
    CURLcode rc = CURLE_BAD_FUNCTION_ARGUMENT;
    switch (arg_kind_of((int)option)) {
    case ARG_LONG:
        rc = lib.curl_easy_setopt(e, option, va_arg(ap, long));
        break;
    case ARG_PTR:
        rc = lib.curl_easy_setopt(e, option, va_arg(ap, void *));
        break;
    case ARG_FUNC:
        rc = lib.curl_easy_setopt(e, option, va_arg(ap, any_func));
        break;
    case ARG_OFF_T:
        rc = lib.curl_easy_setopt(e, option, va_arg(ap, curl_off_t));
        break;
    }
    va_end(ap);
    return rc;
}

CURLcode curl_easy_getinfo(CURL *e, CURLINFO info, ...)
{
    if (!ready())
        return CURLE_FAILED_INIT;
    va_list ap;
    va_start(ap, info);
    void *out = va_arg(ap, void *); /* every CURLINFO takes a pointer to its result */
    va_end(ap);
    return lib.curl_easy_getinfo(e, info, out);
}

void curl_easy_cleanup(CURL *e)
{
    if (e && cn_curl_loaded())
        lib.curl_easy_cleanup(e);
}

void curl_easy_reset(CURL *e)
{
    if (e && cn_curl_loaded())
        lib.curl_easy_reset(e);
}

CURLcode curl_easy_pause(CURL *e, int bitmask)
{
    return ready() ? lib.curl_easy_pause(e, bitmask) : CURLE_FAILED_INIT;
}

CURLcode curl_easy_recv(CURL *e, void *buf, size_t len, size_t *n)
{
    return ready() ? lib.curl_easy_recv(e, buf, len, n) : CURLE_FAILED_INIT;
}

CURLcode curl_easy_send(CURL *e, const void *buf, size_t len, size_t *n)
{
    return ready() ? lib.curl_easy_send(e, buf, len, n) : CURLE_FAILED_INIT;
}

const char *curl_easy_strerror(CURLcode code)
{
    return ready() ? lib.curl_easy_strerror(code) : "libcurl could not be loaded";
}

CURLM *curl_multi_init(void)
{
    return ready() ? lib.curl_multi_init() : NULL;
}

CURLMcode curl_multi_setopt(CURLM *m, CURLMoption option, ...)
{
    if (!ready())
        return CURLM_INTERNAL_ERROR;
    va_list ap;
    va_start(ap, option);
    CURLMcode rc = CURLM_UNKNOWN_OPTION;
    switch (arg_kind_of((int)option)) {
    case ARG_LONG:
        rc = lib.curl_multi_setopt(m, option, va_arg(ap, long));
        break;
    case ARG_PTR:
        rc = lib.curl_multi_setopt(m, option, va_arg(ap, void *));
        break;
    case ARG_FUNC:
        rc = lib.curl_multi_setopt(m, option, va_arg(ap, any_func));
        break;
    case ARG_OFF_T:
        rc = lib.curl_multi_setopt(m, option, va_arg(ap, curl_off_t));
        break;
    }
    va_end(ap);
    return rc;
}

CURLMcode curl_multi_add_handle(CURLM *m, CURL *e)
{
    return ready() ? lib.curl_multi_add_handle(m, e) : CURLM_INTERNAL_ERROR;
}

CURLMcode curl_multi_remove_handle(CURLM *m, CURL *e)
{
    return ready() ? lib.curl_multi_remove_handle(m, e) : CURLM_INTERNAL_ERROR;
}

CURLMcode curl_multi_cleanup(CURLM *m)
{
    /* A multi handle exists only if libcurl was loaded. */
    return m && cn_curl_loaded() ? lib.curl_multi_cleanup(m) : CURLM_BAD_HANDLE;
}

CURLMsg *curl_multi_info_read(CURLM *m, int *left)
{
    if (ready())
        return lib.curl_multi_info_read(m, left);
    *left = 0;
    return NULL;
}

CURLMcode curl_multi_socket_action(CURLM *m, curl_socket_t fd, int ev_bitmask, int *running)
{
    return ready() ? lib.curl_multi_socket_action(m, fd, ev_bitmask, running)
                   : CURLM_INTERNAL_ERROR;
}

CURLMcode curl_multi_assign(CURLM *m, curl_socket_t fd, void *p)
{
    return ready() ? lib.curl_multi_assign(m, fd, p) : CURLM_INTERNAL_ERROR;
}

const char *curl_multi_strerror(CURLMcode code)
{
    return ready() ? lib.curl_multi_strerror(code) : "libcurl could not be loaded";
}

/* Lists are built here, not in libcurl: struct curl_slist is public
 * (curl.h) and libcurl only reads the lists it is given (CURLOPT_HTTPHEADER
 * and the like), so a request's header list (cn_stream collects a request's
 * headers in one) loads no libcurl for an origin that does not need it.
 * As libcurl's: the string is copied, and on failure the list is unchanged
 * and NULL returned. Lists libcurl made and hands out (CURLINFO_COOKIELIST,
 * CURLINFO_SSL_ENGINES) are freed with this curl_slist_free_all too: both
 * use the C library's malloc, unless curl_global_init_mem gave libcurl other
 * allocation functions (the allocation-failure tests), whose lists are then
 * not to be freed here. */
struct curl_slist *curl_slist_append(struct curl_slist *list, const char *s)
{
    struct curl_slist *n = malloc(sizeof(*n));
    if (!n)
        return NULL;
    n->data = strdup(s);
    if (!n->data) {
        free(n);
        return NULL;
    }
    n->next = NULL;
    if (!list)
        return n;
    struct curl_slist *last = list;
    while (last->next)
        last = last->next;
    last->next = n;
    return list;
}

void curl_slist_free_all(struct curl_slist *list)
{
    while (list) {
        struct curl_slist *next = list->next;
        free(list->data);
        free(list);
        list = next;
    }
}
