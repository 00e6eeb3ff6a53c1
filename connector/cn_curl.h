/* cn_curl: libcurl, loaded on first use.
 *
 * The connector is not linked with libcurl: cn_curl.c defines the libcurl
 * functions the connector calls, under their own names, and the first call
 * loads libcurl.so.4 (dlopen) and forwards to it from then on. Linked, libcurl
 * and what it pulls in (OpenSSL, GnuTLS, Kerberos, LDAP, libssh2, ...) cost
 * about 6 MB of resident memory at start, 8.5 MB once curl_global_init ran:
 * more than the rest of an idle connector. Loaded on first use, a connector
 * whose origins never need libcurl never pays it.
 *
 * So the rest of the connector calls libcurl as usual (<curl/curl.h>); only
 * a function missing from cn_curl.c is a link error, on purpose (the build
 * links no libcurl to fall back on, see the Makefile's PKG_LIBS).
 *
 * curl_slist_append and curl_slist_free_all are implemented here, not
 * forwarded: building a header list loads nothing (see cn_curl.c).
 *
 * Until libcurl is loaded, and if it cannot be, the functions answer as
 * libcurl does when it has no memory: curl_global_init CURLE_FAILED_INIT,
 * curl_easy_init and curl_multi_init NULL, setopt and getinfo
 * CURLE_FAILED_INIT / CURLM_INTERNAL_ERROR, cleanups nothing. The failure
 * to load is logged once, with dlerror()'s words.
 *
 * Process-wide on purpose: the table of libcurl's functions is what the
 * dynamic linker would have filled at start; it is filled once (pthread_once)
 * and only read afterwards, so any loop's thread may call. */
#ifndef CN_CURL_H
#define CN_CURL_H

/* 1 when libcurl is loaded (a function of it was called and the load
 * succeeded), else 0. Loads nothing: for tests and diagnostics. */
int cn_curl_loaded(void);

#endif
