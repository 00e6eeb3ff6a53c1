#include "es_conncap.h"
#include "px_err.h"
#include "px_log.h"

#include <stdlib.h>

#define LOG_EVERY_MS 10000

void es_conncap_init(struct es_conncap *cc, unsigned max_total, unsigned max_per_ip)
{
    cc->per_ip = (struct es_fair){0};
    cc->open = 0;
    cc->max_total = max_total;
    cc->max_per_ip = max_per_ip;
    cc->last_log_ms = 0;
    cc->refused_unlogged = 0;
}

void es_conncap_cleanup(struct es_conncap *cc)
{
    es_fair_cleanup(&cc->per_ip);
}

static void refused(struct es_conncap *cc, const char *ip, const char *listener, uint64_t now_ms,
                    const char *which, unsigned cap)
{
    cc->refused_unlogged++;
    if (cc->last_log_ms && now_ms - cc->last_log_ms < LOG_EVERY_MS)
        return;
    PX_WARN("%s connection from %s refused: %s (%u) reached; %u refused since the last such "
            "line",
            listener, ip, which, cap, cc->refused_unlogged);
    cc->last_log_ms = now_ms ? now_ms : 1;
    cc->refused_unlogged = 0;
}

int es_conncap_admit(struct es_conncap *cc, const char *ip, const char *listener, uint64_t now_ms,
                     char **key)
{
    *key = NULL;
    if (cc->open >= cc->max_total) {
        refused(cc, ip, listener, now_ms, "--max-connections", cc->max_total);
        return PX_ERR_DENIED;
    }
    char *k = es_fair_key("conn", ip);
    if (!k)
        return PX_ERR_NOMEM;
    int rc = es_fair_acquire(&cc->per_ip, k, cc->max_per_ip);
    if (rc < 0) {
        free(k);
        if (rc == PX_ERR_DENIED)
            refused(cc, ip, listener, now_ms, "--max-connections-per-ip", cc->max_per_ip);
        return rc;
    }
    cc->open++;
    *key = k;
    return 0;
}

void es_conncap_release(struct es_conncap *cc, char **key)
{
    if (!*key)
        return;
    es_fair_release(&cc->per_ip, *key);
    free(*key);
    *key = NULL;
    cc->open--;
}
