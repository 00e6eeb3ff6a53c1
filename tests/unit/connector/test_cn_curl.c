/* cn_curl: libcurl loaded on first use, its functions forwarded with every
 * kind of option argument intact. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cn_curl.h"
#include "cn_origin.h"

#include <curl/curl.h>
#include <string.h>
#include <uv.h>

/* Runs first, in a process that has not touched libcurl: an origin context
 * with no transfer (a connector that served nothing yet, or serves only
 * what needs no curl) leaves libcurl unloaded, 8.5 MB it does not pay. */
static void an_origin_context_alone_loads_no_libcurl(void **state)
{
    (void)state;
    assert_false(cn_curl_loaded());
    uv_loop_t loop;
    struct cn_origin *o = NULL;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(cn_origin_new(&loop, &o), 0);
    cn_origin_free(o);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    /* Cleanups of what was never made need no library either. */
    curl_easy_cleanup(NULL);
    curl_slist_free_all(NULL);
    /* Nor a request's header list (cn_stream builds one for every request,
     * whichever client then serves it). */
    struct curl_slist *l = curl_slist_append(NULL, "Accept: */*");
    assert_non_null(l);
    assert_ptr_equal(curl_slist_append(l, "X-B: 2"), l);
    assert_string_equal(l->data, "Accept: */*");
    assert_string_equal(l->next->data, "X-B: 2");
    assert_null(l->next->next);
    curl_slist_free_all(l);
    assert_false(cn_curl_loaded());
}

static void the_first_call_loads_it(void **state)
{
    (void)state;
    assert_int_equal(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
    assert_true(cn_curl_loaded());
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    assert_non_null(v);
    assert_non_null(v->version);
    assert_string_equal(curl_easy_strerror(CURLE_OK), "No error");
    curl_global_cleanup();
}

static size_t on_write(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

/* Each kind of argument (curl.h's CURLOPTTYPE_* ranges) reaches libcurl as
 * passed: values libcurl refuses are refused, and accepted ones read back. */
static void options_of_every_type_reach_libcurl(void **state)
{
    (void)state;
    CURL *e = curl_easy_init();
    assert_non_null(e);
    /* long: < -1 redirects is invalid, 5 is fine */
    assert_int_equal(curl_easy_setopt(e, CURLOPT_MAXREDIRS, -2L), CURLE_BAD_FUNCTION_ARGUMENT);
    assert_int_equal(curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L), CURLE_OK);
    /* object pointer, read back through getinfo */
    int marker;
    char *got = NULL;
    assert_int_equal(curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)&marker), CURLE_OK);
    assert_int_equal(curl_easy_getinfo(e, CURLINFO_PRIVATE, &got), CURLE_OK);
    assert_ptr_equal(got, (char *)&marker);
    /* string */
    assert_int_equal(curl_easy_setopt(e, CURLOPT_URL, "http://127.0.0.1:9/"), CURLE_OK);
    char *url = NULL;
    assert_int_equal(curl_easy_getinfo(e, CURLINFO_EFFECTIVE_URL, &url), CURLE_OK);
    assert_string_equal(url, "http://127.0.0.1:9/");
    /* function pointer */
    assert_int_equal(curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write), CURLE_OK);
    /* curl_off_t: negative sizes are invalid */
    assert_int_equal(curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)-1),
                     CURLE_BAD_FUNCTION_ARGUMENT);
    assert_int_equal(curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)1 << 40), CURLE_OK);
    /* blob */
    struct curl_blob blob = {.data = (void *)"x", .len = 1, .flags = CURL_BLOB_COPY};
    assert_int_equal(curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &blob), CURLE_OK);
    curl_easy_reset(e);
    assert_int_equal(curl_easy_getinfo(e, CURLINFO_PRIVATE, &got), CURLE_OK);
    assert_null(got);

    CURLM *m = curl_multi_init();
    assert_non_null(m);
    assert_int_equal(curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, 10L), CURLM_OK);
    assert_int_equal(curl_multi_setopt(m, CURLMOPT_SOCKETDATA, (void *)&marker), CURLM_OK);
    assert_int_equal(curl_multi_add_handle(m, e), CURLM_OK);
    assert_int_equal(curl_multi_remove_handle(m, e), CURLM_OK);
    int left = -1;
    assert_null(curl_multi_info_read(m, &left));
    assert_int_equal(left, 0);
    assert_int_equal(curl_multi_cleanup(m), CURLM_OK);
    /* a list built here, read by libcurl */
    struct curl_slist *l = curl_slist_append(NULL, "X-A: 1");
    assert_non_null(l);
    assert_int_equal(curl_easy_setopt(e, CURLOPT_HTTPHEADER, l), CURLE_OK);
    curl_easy_cleanup(e);
    curl_slist_free_all(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* in this order: the first needs a process without libcurl */
        cmocka_unit_test(an_origin_context_alone_loads_no_libcurl),
        cmocka_unit_test(the_first_call_loads_it),
        cmocka_unit_test(options_of_every_type_reach_libcurl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
