/* The simulator's intrusive hash table (see sim_htab.h). */
#include <string.h>

#include "core/mem.h"
#include "io/sim_htab.h"

void flare__sim_htab_init(sim_htab *t, const flare_mem *mem)
{
    memset(t, 0, sizeof(*t));
    t->mem = mem;
}

void flare__sim_htab_free(sim_htab *t)
{
    flare__free(t->mem, t->buckets);
    t->buckets = NULL;
    t->cap = t->len = 0;
}

static void link_at(sim_hnode **slot, sim_hnode *n)
{
    n->next = *slot;
    if (n->next)
        n->next->pprev = &n->next;
    n->pprev = slot;
    *slot = n;
}

/* Doubles the bucket array. Each old chain splits in two, walked in order
 * and appended, so nodes keep their relative (newest first) order. */
static int grow(sim_htab *t)
{
    size_t cap = t->cap ? t->cap * 2 : 16;
    sim_hnode **b = flare__calloc(t->mem, cap, sizeof(*b));
    if (!b)
        return FLARE_ERR_NOMEM;
    for (size_t i = 0; i < t->cap; i++) {
        sim_hnode **tail[2] = {&b[i], &b[i + t->cap]};
        for (sim_hnode *n = t->buckets[i], *next; n; n = next) {
            next = n->next;
            sim_hnode ***tp = &tail[(n->hash & (cap - 1)) != i];
            n->next = NULL;
            n->pprev = *tp;
            **tp = n;
            *tp = &n->next;
        }
    }
    flare__free(t->mem, t->buckets);
    t->buckets = b;
    t->cap = cap;
    return 0;
}

int flare__sim_htab_insert(sim_htab *t, sim_hnode *n, uint64_t hash)
{
    if (t->len >= t->cap && grow(t) < 0) {
        n->pprev = NULL;
        return FLARE_ERR_NOMEM;
    }
    n->hash = hash;
    link_at(&t->buckets[hash & (t->cap - 1)], n);
    t->len++;
    return 0;
}

void flare__sim_htab_remove(sim_htab *t, sim_hnode *n)
{
    if (!n->pprev)
        return;
    *n->pprev = n->next;
    if (n->next)
        n->next->pprev = n->pprev;
    n->next = NULL;
    n->pprev = NULL;
    t->len--;
}

uint64_t flare__sim_mix_ip(uint64_t h, const flare_ipaddr *a)
{
    /* Fixed-size copies: single loads, not a memcpy call per packet. */
    if (a->family == 4) {
        uint32_t w4;
        memcpy(&w4, a->ip, 4);
        return flare__sim_mix(h, w4 ^ (uint64_t)4 << 56);
    }
    uint64_t w[2];
    memcpy(w, a->ip, 16);
    h = flare__sim_mix(h, w[0] ^ (uint64_t)a->family << 56);
    return flare__sim_mix(h, w[1]);
}

uint64_t flare__sim_mix_ep(uint64_t h, const flare_ipaddr *a)
{
    return flare__sim_mix(flare__sim_mix_ip(h, a), a->port);
}
