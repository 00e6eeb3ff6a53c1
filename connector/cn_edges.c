#include "cn_edges.h"

void cn_edges_init(struct cn_edges *e, unsigned n)
{
    *e = (struct cn_edges){.n = n ? n : 1};
}

void cn_edges_slot_init(const struct cn_edges *e, struct cn_edge_slot *s, unsigned index)
{
    s->home = s->edge = index % e->n;
    s->fails = 0;
}

void cn_edges_up(struct cn_edge_slot *s)
{
    s->fails = 0;
}

int cn_edges_failed(const struct cn_edges *e, struct cn_edge_slot *s)
{
    if (++s->fails < CN_EDGES_FAILS_TO_MOVE || e->n < 2)
        return 0;
    s->edge = (s->edge + 1) % e->n;
    s->fails = 0;
    return 1;
}

void cn_edges_lost(struct cn_edge_slot *s)
{
    s->fails = 0;
}

static int recent_goaway(const struct cn_edges *e, unsigned i, uint64_t now)
{
    return e->goaway_at[i] && now - e->goaway_at[i] < CN_EDGES_GOAWAY_MEMORY_MS;
}

void cn_edges_note_goaway(struct cn_edges *e, unsigned i, uint64_t now)
{
    if (i < PX_TOKEN_MAX_EDGES)
        e->goaway_at[i] = now ? now : 1;
}

int cn_edges_goaway(struct cn_edges *e, struct cn_edge_slot *s, uint64_t now)
{
    cn_edges_note_goaway(e, s->edge, now);
    s->fails = 0;
    if (e->n < 2)
        return 0;
    unsigned oldest = (s->edge + 1) % e->n;
    for (unsigned k = 1; k < e->n; k++) {
        unsigned c = (s->edge + k) % e->n;
        if (!recent_goaway(e, c, now)) {
            s->edge = c;
            return 1;
        }
        if (e->goaway_at[c] < e->goaway_at[oldest])
            oldest = c;
    }
    s->edge = oldest;
    return 1;
}

int cn_edges_rebalance_due(const struct cn_edge_slot *s, uint32_t rnd, unsigned *delay_ms)
{
    if (s->edge == s->home)
        return 0;
    *delay_ms = CN_EDGES_REBALANCE_MS +
                (unsigned)((uint64_t)rnd * (CN_EDGES_REBALANCE_JITTER_MS + 1) >> 32);
    return 1;
}

void cn_edges_home_again(struct cn_edge_slot *s)
{
    s->edge = s->home;
    s->fails = 0;
}
