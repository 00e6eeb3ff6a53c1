/* cn_edges: which edge each connection slot dials (pure: no I/O, the
 * caller passes the time and randomness). The supervisor asks it on every
 * event of a slot; the rules live here, once, so they can be tested alone:
 *  - slot i's home edge is edges[i % n];
 *  - a lost link reconnects to the edge it was on; after
 *    CN_EDGES_FAILS_TO_MOVE consecutive failed attempts at one edge, when
 *    other edges exist, the slot tries the next edge in turn;
 *  - an edge's GOAWAY (it is draining) moves the slot at once to another
 *    edge, preferably one that sent no GOAWAY in the last
 *    CN_EDGES_GOAWAY_MEMORY_MS; with a single edge it stays (after backoff);
 *  - a slot up on an edge other than its home for CN_EDGES_REBALANCE_MS
 *    (plus up to CN_EDGES_REBALANCE_JITTER_MS) tries its home again. */
#ifndef CN_EDGES_H
#define CN_EDGES_H

#include "px_token.h"

#include <stdint.h>

#define CN_EDGES_FAILS_TO_MOVE 1
#define CN_EDGES_GOAWAY_MEMORY_MS 60000
#define CN_EDGES_REBALANCE_MS 10000
#define CN_EDGES_REBALANCE_JITTER_MS 10000

struct cn_edges {
    unsigned n;
    /* When each edge last sent GOAWAY (ms on the caller's clock), 0: never. */
    uint64_t goaway_at[PX_TOKEN_MAX_EDGES];
};

/* Where one slot stands. */
struct cn_edge_slot {
    unsigned home;  /* its home edge */
    unsigned edge;  /* the edge it dials (or is up on) now */
    unsigned fails; /* consecutive failed attempts at edge */
};

/* n edges (1..PX_TOKEN_MAX_EDGES), none having sent GOAWAY. */
void cn_edges_init(struct cn_edges *e, unsigned n);
/* Slot index starts at its home edge. */
void cn_edges_slot_init(const struct cn_edges *e, struct cn_edge_slot *s, unsigned index);
/* The slot's link registered: its failures are forgotten. */
void cn_edges_up(struct cn_edge_slot *s);
/* An attempt failed before registering: counts it, and after
 * CN_EDGES_FAILS_TO_MOVE of them moves the slot to the next edge. Returns 1
 * when it moved. */
int cn_edges_failed(const struct cn_edges *e, struct cn_edge_slot *s);
/* A registered link was lost (not a GOAWAY): the slot stays on its edge. */
void cn_edges_lost(struct cn_edge_slot *s);
/* The slot's edge sent GOAWAY at now: noted, and the slot moves to another
 * edge (the first in turn without a GOAWAY in the last
 * CN_EDGES_GOAWAY_MEMORY_MS, else the one whose GOAWAY is oldest). Returns
 * 1 when it moved (dial at once), 0 with a single edge (dial after the
 * backoff). */
int cn_edges_goaway(struct cn_edges *e, struct cn_edge_slot *s, uint64_t now);
/* Edge i sent GOAWAY at now (a link not in a slot's place, say). */
void cn_edges_note_goaway(struct cn_edges *e, unsigned i, uint64_t now);
/* Whether the slot, up on its current edge, should try its home later;
 * then *delay_ms is how long to wait (rnd: any 32-bit random value). */
int cn_edges_rebalance_due(const struct cn_edge_slot *s, uint32_t rnd, unsigned *delay_ms);
/* The home link registered (make before break): the slot is home again. */
void cn_edges_home_again(struct cn_edge_slot *s);

#endif
