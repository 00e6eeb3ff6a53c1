/* px_log: leveled logging to stderr, one line per event. Never pass secrets. */
#ifndef PX_LOG_H
#define PX_LOG_H

enum px_log_level { PX_LOG_DEBUG = 0, PX_LOG_INFO = 1, PX_LOG_WARN = 2, PX_LOG_ERROR = 3 };

/* Sets the minimum level printed (default INFO) for the whole process: call
 * it at start-up, before any loop or thread runs. */
void px_log_set_level(enum px_log_level level);
/* Parses "debug|info|warn|error"; returns 0 and sets *out, or PX_ERR_INVAL. */
int px_log_parse_level(const char *s, enum px_log_level *out);
int px_log_enabled(enum px_log_level level);
void px_log(enum px_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define PX_DEBUG(...)                                                                              \
    do {                                                                                           \
        if (px_log_enabled(PX_LOG_DEBUG))                                                          \
            px_log(PX_LOG_DEBUG, __VA_ARGS__);                                                     \
    } while (0)
#define PX_INFO(...) px_log(PX_LOG_INFO, __VA_ARGS__)
#define PX_WARN(...) px_log(PX_LOG_WARN, __VA_ARGS__)
#define PX_ERROR(...) px_log(PX_LOG_ERROR, __VA_ARGS__)

#endif
