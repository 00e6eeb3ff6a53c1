#include "px_log.h"
#include "px_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Process-wide on purpose, and the one mutable static in proto: the level is
 * set once at start-up (from the command line, by the main thread) before
 * any loop runs, and only read after that, so loops on other threads share
 * it without a race. Per-loop levels would buy nothing an operator asks for. */
static enum px_log_level min_level = PX_LOG_INFO;

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

void px_log(enum px_log_level level, const char *fmt, ...)
{
    static const char *const tags[] = {"DBG", "INF", "WRN", "ERR"};
    if (level < min_level)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char line[2048];
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, tags[level]);
    if (n < 0 || (size_t)n >= sizeof(line) / 2)
        return; /* cannot happen: the prefix has a fixed width */
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    fwrite(line, 1, len, stderr);
}
