#include "px_errpage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *px_status_reason(int s)
{
    switch (s) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 421:
        return "Misdirected Request";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 530:
        return "Tunnel Not Connected";
    default:
        return "Error";
    }
}

static size_t escape(char *out, const char *in)
{
    size_t n = 0;
    for (; *in; in++) {
        const char *rep = NULL;
        switch (*in) {
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '&':
            rep = "&amp;";
            break;
        case '"':
            rep = "&quot;";
            break;
        }
        if (rep) {
            size_t l = strlen(rep);
            if (out)
                memcpy(out + n, rep, l);
            n += l;
        } else {
            if (out)
                out[n] = *in;
            n++;
        }
    }
    return n;
}

char *px_errpage_render(int status, const char *detail, size_t *len)
{
    const char *reason = px_status_reason(status);
    size_t dl = escape(NULL, detail);
    char *esc = malloc(dl + 1);
    if (!esc)
        return NULL;
    escape(esc, detail);
    esc[dl] = '\0';
    /* The plain first line must stay one line whatever detail contains. */
    for (char *p = esc; *p; p++)
        if (*p == '\r' || *p == '\n')
            *p = ' ';
#define FMT                                                                                        \
    "%d %s: %s\n"                                                                                  \
    "<!doctype html><html><head><meta charset=\"utf-8\"><title>%d %s</title>"                      \
    "</head><body><h1>%d %s</h1><p>%s</p></body></html>\n"
    int n = snprintf(NULL, 0, FMT, status, reason, esc, status, reason, status, reason, esc);
    char *out = n > 0 ? malloc((size_t)n + 1) : NULL;
    if (out) {
        snprintf(out, (size_t)n + 1, FMT, status, reason, esc, status, reason, status, reason, esc);
        *len = (size_t)n;
    }
    free(esc);
    return out;
}
