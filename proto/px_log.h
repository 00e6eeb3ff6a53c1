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

/* The line format, process-wide like the level (set once at start-up):
 *  - PX_LOG_TEXT (default): "2026-12-02T10:00:00.123Z INF message"
 *  - PX_LOG_JSON: one JSON object per line,
 *    {"time":"2026-12-02T10:00:00.123Z","level":"info","msg":"message"};
 *    every string is escaped and made valid UTF-8 (invalid bytes become
 *    U+FFFD), so each line parses whatever a message holds. */
enum px_log_format { PX_LOG_TEXT = 0, PX_LOG_JSON = 1 };
void px_log_set_format(enum px_log_format format);
/* Parses "text|json"; returns 0 and sets *out, or PX_ERR_INVAL. */
int px_log_parse_format(const char *s, enum px_log_format *out);

/* One request, for the access log. Strings may be NULL (shown as "-" in
 * text, null in JSON). The path is logged without its query or fragment,
 * and cut to 512 bytes; nothing else of the request (headers, cookies,
 * Authorization, bodies) is ever logged. */
struct px_access_entry {
    const char *hostname;
    const char *method;
    const char *path;             /* as received; px_log_access drops "?..." and "#..." */
    int status;                   /* 0 when no response was sent */
    unsigned long long bytes_in;  /* request body bytes received from the client */
    unsigned long long bytes_out; /* response body bytes sent to the client */
    double duration_s;            /* from the request head to the end of the response */
    const char *request_id;
    const char *client; /* the client's address (at the connector: as the edge forwards it) */
    const char *rule;   /* the ingress rule (connector) or route/tunnel (edge) that served it */
};

/* Writes one access line at INFO (whatever the minimum level; access lines
 * are switched on and off by their owner), in the current format:
 *  - text: "<time> ACC host=... method=GET path=/x status=200 in=0 out=12
 *    dur_ms=3.1 id=... client=... rule=..." (values with spaces, quotes or
 *    control bytes are quoted and escaped);
 *  - JSON: {"time":...,"level":"info","type":"access","hostname":...,
 *    "method":...,"path":...,"status":200,"bytes_in":0,"bytes_out":12,
 *    "duration_ms":3.1,"request_id":...,"client":...,"rule":...}. */
void px_log_access(const struct px_access_entry *e);

/* Batching, per thread (a loop thread turns it on for as long as its loop
 * lives: rt_loop). While it is on, the lines this thread logs are kept in
 * a buffer of the thread's own and written by px_log_flush, which the loop
 * calls before it waits for events, so a line leaves within the loop
 * iteration that logged it; a request costs no write(2) of its own under
 * load. The buffer is written at once when it passes PX_LOG_BATCH_MAX,
 * and at exit() (atexit, for the thread calling exit). Lines are never
 * split between writes. px_log_batch(1) / px_log_batch(0) nest (a count);
 * at zero the pending lines are written and every line goes out at once,
 * as by default. Lines no memory could be found for go out at once. */
#define PX_LOG_BATCH_MAX (64 * 1024)
void px_log_batch(int on);
/* Writes this thread's pending lines (nothing when there are none). */
void px_log_flush(void);
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
