#include "px_log.h"
#include "px_utf8.h"
#include "px_buf.h"
#include "px_err.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

/* A message longer than this is cut (on a character boundary) and marked:
 * a log line is for people and log shippers, not for bulk data. */
#define MSG_MAX 16384
/* The access log's path, without its query. */
#define PATH_MAX_LOGGED 512
/* Room for the time text even for values gmtime_r cannot produce. */
#define TIME_MAX 96

/* Process-wide on purpose, and the only mutable statics in proto besides
 * the batch below (thread-local, so a loop's own): the level
 * and the format are set once at start-up (from the command line, by the
 * main thread) before any loop runs, and only read after that, so loops on
 * other threads share them without a race. Per-loop settings would buy
 * nothing an operator asks for. */
static enum px_log_level min_level = PX_LOG_INFO;
static enum px_log_format log_format = PX_LOG_TEXT;

void px_log_set_level(enum px_log_level level)
{
    min_level = level;
}

int px_log_parse_level(const char *s, enum px_log_level *out)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum px_log_level)i;
            return 0;
        }
    }
    return PX_ERR_INVAL;
}

int px_log_enabled(enum px_log_level level)
{
    return level >= min_level;
}

void px_log_set_format(enum px_log_format format)
{
    log_format = format == PX_LOG_JSON ? PX_LOG_JSON : PX_LOG_TEXT;
}

int px_log_parse_format(const char *s, enum px_log_format *out)
{
    if (!s)
        return PX_ERR_INVAL;
    if (strcmp(s, "text") == 0)
        *out = PX_LOG_TEXT;
    else if (strcmp(s, "json") == 0)
        *out = PX_LOG_JSON;
    else
        return PX_ERR_INVAL;
    return 0;
}

/* The time text of the last second this thread formatted: a loop logs
 * many lines a second, and gmtime_r plus snprintf cost more than the line
 * itself. Thread-local, like the batch below, so loops never share it. */
static _Thread_local struct {
    time_t sec;
    int valid;
    char text[TIME_MAX]; /* "2026-12-02T10:00:00." */
    size_t len;
} time_cache;

/* "2026-12-02T10:00:00.123Z" (24 characters) into t. */
static void now_text(char t[TIME_MAX])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (!time_cache.valid || time_cache.sec != ts.tv_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        /* Every field is bounded (year < 10000 for 8000 years): the text fits. */
        int n = snprintf(time_cache.text, TIME_MAX, "%04d-%02d-%02dT%02d:%02d:%02d.",
                         (tm.tm_year + 1900) % 10000, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                         tm.tm_min, tm.tm_sec);
        /* Room for the milliseconds, "Z" and the NUL is left by TIME_MAX. */
        time_cache.len = n > 0 && n < TIME_MAX - 5 ? (size_t)n : 0;
        time_cache.sec = ts.tv_sec;
        time_cache.valid = 1;
    }
    size_t n = time_cache.len;
    memcpy(t, time_cache.text, n);
    long ms = ts.tv_nsec / 1000000;
    t[n++] = (char)('0' + ms / 100 % 10);
    t[n++] = (char)('0' + ms / 10 % 10);
    t[n++] = (char)('0' + ms % 10);
    t[n++] = 'Z';
    t[n] = '\0';
}

/* v in decimal at the end of b (what "%llu" prints). */
static int append_u64(struct px_buf *b, unsigned long long v)
{
    char d[24];
    size_t i = sizeof(d);
    do {
        d[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return px_buf_append(b, d + i, sizeof(d) - i);
}

/* v in decimal (what "%d" prints). */
static int append_int(struct px_buf *b, int v)
{
    if (v >= 0)
        return append_u64(b, (unsigned long long)v);
    int rc = px_buf_append(b, "-", 1);
    return rc ? rc : append_u64(b, (unsigned long long)(-(long long)v));
}

/* ms (finite, 0 <= ms <= 1e12, as px_log_access bounds it) with one
 * decimal, exactly as "%.1f" prints it: the exact binary value rounded,
 * ties to even. x87's long double holds ms * 10 exactly (53 + 4 bits), so
 * the tenths and what is left are exact; elsewhere snprintf does it. */
static int append_ms1(struct px_buf *b, double ms)
{
#if LDBL_MANT_DIG >= 64
    long double v = (long double)ms * 10.0L;
    unsigned long long n = (unsigned long long)v;
    long double rest = v - (long double)n;
    if (rest > 0.5L || (rest == 0.5L && (n & 1)))
        n++;
    int rc = append_u64(b, n / 10);
    char frac[2] = {'.', (char)('0' + n % 10)};
    return rc ? rc : px_buf_append(b, frac, 2);
#else
    return px_buf_appendf(b, "%.1f", ms);
#endif
}

/* n cut back so it does not end inside a UTF-8 sequence of s. */
static size_t char_boundary(const char *s, size_t n)
{
    size_t k = n;
    for (int i = 0; i < 3 && k > 0 && ((unsigned char)s[k] & 0xc0) == 0x80; i++)
        k--;
    return ((unsigned char)s[k] & 0xc0) == 0x80 ? n : k;
}

/* s[0..n) as the inside of a JSON string: valid UTF-8 kept, invalid bytes
 * as U+FFFD, quotes, backslashes and control characters escaped. */
static int json_escape(struct px_buf *b, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    int rc = 0;
    size_t run = 0; /* start of bytes copied as they are */
    for (size_t i = 0; i < n && rc == 0;) {
        unsigned char c = p[i];
        size_t k = px_utf8_seq(p + i, n - i);
        if (k > 0 && c >= 0x20 && c != '"' && c != '\\' && c != 0x7f) {
            i += k;
            continue;
        }
        rc = px_buf_append(b, p + run, i - run);
        if (rc)
            break;
        switch (k == 0 ? 0x100 : c) {
        case 0x100:
            rc = px_buf_append(b, "\xef\xbf\xbd", 3);
            break;
        case '"':
            rc = px_buf_append(b, "\\\"", 2);
            break;
        case '\\':
            rc = px_buf_append(b, "\\\\", 2);
            break;
        case '\n':
            rc = px_buf_append(b, "\\n", 2);
            break;
        case '\r':
            rc = px_buf_append(b, "\\r", 2);
            break;
        case '\t':
            rc = px_buf_append(b, "\\t", 2);
            break;
        default:
            rc = px_buf_appendf(b, "\\u%04x", c);
        }
        i++;
        run = i;
    }
    if (rc == 0)
        rc = px_buf_append(b, p + run, n - run);
    return rc;
}

/* "s" as a JSON string, or null for NULL. */
static int json_string(struct px_buf *b, const char *s, size_t n)
{
    if (!s)
        return px_buf_append_str(b, "null");
    int rc = px_buf_append(b, "\"", 1);
    if (rc == 0)
        rc = json_escape(b, s, n);
    if (rc == 0)
        rc = px_buf_append(b, "\"", 1);
    return rc;
}

/* s[0..n) for a text line: printable bytes and valid UTF-8 as they are,
 * control characters and invalid bytes escaped (\n, \t, \xNN), so one
 * event is always one line and hostile text cannot forge another. When
 * quoted, double quotes and backslashes are escaped too. */
static int text_escape(struct px_buf *b, const char *s, size_t n, int quoted)
{
    const unsigned char *p = (const unsigned char *)s;
    int rc = 0;
    size_t run = 0;
    for (size_t i = 0; i < n && rc == 0;) {
        unsigned char c = p[i];
        size_t k = px_utf8_seq(p + i, n - i);
        if (k > 0 && c >= 0x20 && c != 0x7f && !(quoted && (c == '"' || c == '\\'))) {
            i += k;
            continue;
        }
        rc = px_buf_append(b, p + run, i - run);
        if (rc)
            break;
        if (k > 0 && (c == '"' || c == '\\'))
            rc = px_buf_appendf(b, "\\%c", c);
        else if (k > 0 && c == '\n')
            rc = px_buf_append(b, "\\n", 2);
        else if (k > 0 && c == '\r')
            rc = px_buf_append(b, "\\r", 2);
        else if (k > 0 && c == '\t')
            rc = px_buf_append(b, "\\t", 2);
        else
            rc = px_buf_appendf(b, "\\x%02x", c);
        i++;
        run = i;
    }
    if (rc == 0)
        rc = px_buf_append(b, p + run, n - run);
    return rc;
}

/* 1 for the printable ASCII bytes a text value holds unquoted (not a
 * space, '"', '\\' or '='): the bytes of a line's values are looked up one
 * by one, so a table beats the tests. */
static const unsigned char plain_ascii[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

/* A text value: as it is when it is a plain token, else quoted and escaped;
 * NULL as "-". */
static int text_value(struct px_buf *b, const char *s, size_t n)
{
    if (!s)
        return px_buf_append(b, "-", 1);
    int quote = n == 0;
    for (size_t i = 0; i < n && !quote;) {
        unsigned char c = (unsigned char)s[i];
        if (plain_ascii[c]) { /* the common case */
            i++;
            continue;
        }
        size_t k = px_utf8_seq((const unsigned char *)s + i, n - i);
        quote = k == 0 || c <= 0x20 || c == 0x7f || c == '"' || c == '\\' || c == '=';
        i += k ? k : 1;
    }
    if (!quote)
        return px_buf_append(b, s, n);
    int rc = px_buf_append(b, "\"", 1);
    if (rc == 0)
        rc = text_escape(b, s, n, 1);
    if (rc == 0)
        rc = px_buf_append(b, "\"", 1);
    return rc;
}

/* This thread's batch (px_log_batch): thread-local, so loops on other
 * threads never share it. */
static _Thread_local struct {
    int depth;
    struct px_buf pending;
} batch;
static pthread_once_t batch_exit_once = PTHREAD_ONCE_INIT;

void px_log_flush(void)
{
    size_t n = px_buf_len(&batch.pending);
    if (n == 0)
        return;
    fwrite(px_buf_head(&batch.pending), 1, n, stderr);
    px_buf_consume(&batch.pending, n);
    px_buf_shrink(&batch.pending, PX_LOG_BATCH_MAX);
}

static void flush_at_exit(void)
{
    px_log_flush();
}

static void register_exit_flush(void)
{
    atexit(flush_at_exit);
}

void px_log_batch(int on)
{
    if (on) {
        if (batch.depth++ == 0)
            pthread_once(&batch_exit_once, register_exit_flush);
        return;
    }
    if (batch.depth > 0 && --batch.depth == 0) {
        px_log_flush();
        px_buf_cleanup(&batch.pending);
    }
}

static void write_line(struct px_buf *b)
{
    if (batch.depth > 0 && px_buf_append(&batch.pending, px_buf_head(b), px_buf_len(b)) == 0) {
        if (px_buf_len(&batch.pending) >= PX_LOG_BATCH_MAX)
            px_log_flush();
        return;
    }
    px_log_flush(); /* keeps the order: what was pending goes first */
    fwrite(px_buf_head(b), 1, px_buf_len(b), stderr);
}

/* The message of fmt, on the heap (vasprintf-style: measure, then print).
 * NULL when out of memory or on a format error. */
static char *format_msg(const char *fmt, va_list ap, size_t *len)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s)
        return NULL;
    if (vsnprintf(s, (size_t)n + 1, fmt, ap) != n) {
        free(s);
        return NULL;
    }
    *len = (size_t)n;
    return s;
}

/* What is left to say when a line could not be built for lack of memory. */
static void lost_line(const char *t, const char *name, const char *tag, const char *what)
{
    px_log_flush(); /* what was pending goes first */
    if (log_format == PX_LOG_JSON)
        fprintf(stderr,
                "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"%s was lost: out of memory\"}\n", t,
                name, what);
    else
        fprintf(stderr, "%s %s (%s was lost: out of memory)\n", t, tag, what);
}

static const char *const level_tags[] = {"DBG", "INF", "WRN", "ERR"};
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void px_log(enum px_log_level level, const char *fmt, ...)
{
    if (level < min_level)
        return;
    if ((unsigned)level > PX_LOG_ERROR)
        level = PX_LOG_ERROR;
    char t[TIME_MAX];
    now_text(t);
    size_t len = 0;
    va_list ap;
    va_start(ap, fmt);
    char *msg = format_msg(fmt, ap, &len);
    va_end(ap);
    const char *m = msg ? msg : "(a log message was lost: out of memory)";
    if (!msg)
        len = strlen(m);
    int cut = len > MSG_MAX;
    if (cut)
        len = char_boundary(m, MSG_MAX);
    struct px_buf b;
    px_buf_init(&b);
    int rc;
    if (log_format == PX_LOG_JSON) {
        rc =
            px_buf_appendf(&b, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":", t, level_names[level]);
        if (rc == 0)
            rc = px_buf_append(&b, "\"", 1);
        if (rc == 0)
            rc = json_escape(&b, m, len);
        if (rc == 0)
            rc = px_buf_append_str(&b, cut ? "...\"}\n" : "\"}\n");
    } else {
        rc = px_buf_appendf(&b, "%s %s ", t, level_tags[level]);
        if (rc == 0)
            rc = text_escape(&b, m, len, 0);
        if (rc == 0)
            rc = px_buf_append_str(&b, cut ? "...\n" : "\n");
    }
    if (rc == 0)
        write_line(&b);
    else /* no memory for the line: still say something */
        lost_line(t, level_names[level], level_tags[level], "a log line");
    px_buf_cleanup(&b);
    free(msg);
}

/* The path without query or fragment, at most PATH_MAX_LOGGED bytes. */
static size_t path_len(const char *path)
{
    size_t n = strcspn(path, "?#");
    return n > PATH_MAX_LOGGED ? char_boundary(path, PATH_MAX_LOGGED) : n;
}

static size_t slen(const char *s)
{
    return s ? strlen(s) : 0;
}

/* A byte count as a JSON integer that common parsers (jansson, which holds
 * integers in a long long) read back: past LLONG_MAX it saturates. */
static unsigned long long json_count(unsigned long long v)
{
    return v > (unsigned long long)LLONG_MAX ? (unsigned long long)LLONG_MAX : v;
}

static int access_json(struct px_buf *b, const char *t, const struct px_access_entry *e, double ms)
{
    int rc = px_buf_appendf(
        b, "{\"time\":\"%s\",\"level\":\"info\",\"type\":\"access\",\"hostname\":", t);
    if (rc == 0)
        rc = json_string(b, e->hostname, slen(e->hostname));
    if (rc == 0)
        rc = px_buf_append_str(b, ",\"method\":");
    if (rc == 0)
        rc = json_string(b, e->method, slen(e->method));
    if (rc == 0)
        rc = px_buf_append_str(b, ",\"path\":");
    if (rc == 0)
        rc = json_string(b, e->path, e->path ? path_len(e->path) : 0);
    if (rc == 0)
        rc = px_buf_appendf(b,
                            ",\"status\":%d,\"bytes_in\":%llu,\"bytes_out\":%llu,"
                            "\"duration_ms\":%.3f,\"request_id\":",
                            e->status, json_count(e->bytes_in), json_count(e->bytes_out), ms);
    if (rc == 0)
        rc = json_string(b, e->request_id, slen(e->request_id));
    if (rc == 0)
        rc = px_buf_append_str(b, ",\"client\":");
    if (rc == 0)
        rc = json_string(b, e->client, slen(e->client));
    if (rc == 0)
        rc = px_buf_append_str(b, ",\"rule\":");
    if (rc == 0)
        rc = json_string(b, e->rule, slen(e->rule));
    if (rc == 0)
        rc = px_buf_append_str(b, "}\n");
    return rc;
}

/* A string literal, its length known at compile time. */
#define append_lit(b, lit) px_buf_append((b), (lit), sizeof(lit) - 1)

static int access_text(struct px_buf *b, const char *t, const struct px_access_entry *e, double ms)
{
    int rc = px_buf_append_str(b, t);
    if (rc == 0)
        rc = append_lit(b, " ACC host=");
    if (rc == 0)
        rc = text_value(b, e->hostname, slen(e->hostname));
    if (rc == 0)
        rc = append_lit(b, " method=");
    if (rc == 0)
        rc = text_value(b, e->method, slen(e->method));
    if (rc == 0)
        rc = append_lit(b, " path=");
    if (rc == 0)
        rc = text_value(b, e->path, e->path ? path_len(e->path) : 0);
    /* " status=%d in=%llu out=%llu dur_ms=%.1f id=", without printf's cost */
    if (rc == 0)
        rc = append_lit(b, " status=");
    if (rc == 0)
        rc = append_int(b, e->status);
    if (rc == 0)
        rc = append_lit(b, " in=");
    if (rc == 0)
        rc = append_u64(b, e->bytes_in);
    if (rc == 0)
        rc = append_lit(b, " out=");
    if (rc == 0)
        rc = append_u64(b, e->bytes_out);
    if (rc == 0)
        rc = append_lit(b, " dur_ms=");
    if (rc == 0)
        rc = append_ms1(b, ms);
    if (rc == 0)
        rc = append_lit(b, " id=");
    if (rc == 0)
        rc = text_value(b, e->request_id, slen(e->request_id));
    if (rc == 0)
        rc = append_lit(b, " client=");
    if (rc == 0)
        rc = text_value(b, e->client, slen(e->client));
    if (rc == 0)
        rc = append_lit(b, " rule=");
    if (rc == 0)
        rc = text_value(b, e->rule, slen(e->rule));
    if (rc == 0)
        rc = px_buf_append(b, "\n", 1);
    return rc;
}

void px_log_access(const struct px_access_entry *e)
{
    if (!e)
        return;
    char t[TIME_MAX];
    now_text(t);
    /* JSON has no NaN or infinity, and a clock step can make a negative. */
    double ms = isfinite(e->duration_s) && e->duration_s > 0 ? e->duration_s * 1000.0 : 0.0;
    if (ms > 1e12)
        ms = 1e12;
    if (batch.depth > 0) {
        /* Built where it will wait for px_log_flush: no buffer of its own to
         * allocate and copy from, one line per request under load. A line
         * that cannot be finished is taken back whole. */
        size_t mark = px_buf_len(&batch.pending);
        int rc = log_format == PX_LOG_JSON ? access_json(&batch.pending, t, e, ms)
                                           : access_text(&batch.pending, t, e, ms);
        if (rc == 0) {
            if (px_buf_len(&batch.pending) >= PX_LOG_BATCH_MAX)
                px_log_flush();
            return;
        }
        batch.pending.len = mark;
        lost_line(t, "info", "ACC", "an access line");
        return;
    }
    struct px_buf b;
    px_buf_init(&b);
    int rc = log_format == PX_LOG_JSON ? access_json(&b, t, e, ms) : access_text(&b, t, e, ms);
    if (rc == 0)
        write_line(&b);
    else
        lost_line(t, "info", "ACC", "an access line");
    px_buf_cleanup(&b);
}
