/* es_conncap: caps on open connections, in all and per client address (an
 * IPv6 client is its /64), across the edge's listeners. A refused
 * connection is closed before its TLS handshake and logged with the cap
 * that refused it (at most one line per 10 s, with a count). */
#ifndef ES_CONNCAP_H
#define ES_CONNCAP_H

#include "es_fair.h"

#include <stdint.h>

struct es_conncap {
    struct es_fair per_ip;
    unsigned open;
    unsigned max_total, max_per_ip;
    uint64_t last_log_ms;
    unsigned refused_unlogged;
};

void es_conncap_init(struct es_conncap *cc, unsigned max_total, unsigned max_per_ip);
void es_conncap_cleanup(struct es_conncap *cc);
/* Admits a connection from ip on listener (a name for the log). Returns 0
 * with *key set (owned by the caller, who hands it back to
 * es_conncap_release when the connection closes), PX_ERR_DENIED when a cap
 * is reached, or PX_ERR_NOMEM. */
int es_conncap_admit(struct es_conncap *cc, const char *ip, const char *listener, uint64_t now_ms,
                     char **key);
/* The connection admitted with *key closed: counts it out and frees *key
 * (sets it to NULL; NULL is ignored). */
void es_conncap_release(struct es_conncap *cc, char **key);

#endif
