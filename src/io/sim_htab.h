/* An intrusive chained hash table for the simulator's indexes (sockets by
 * 4-tuple, bound ports, NAT mappings and the remotes they admit).
 *
 * The caller embeds a sim_hnode in its object, computes the hash of the
 * object's key and compares keys itself: the table only groups nodes by
 * hash. Nodes with the same hash come newest first, so a lookup that takes
 * the first match finds what a scan of a newest-first list would. Removal
 * is O(1) and safe while walking a chain (keep the next node first). The
 * table never shrinks: its bucket array is bounded by the peak node count. */
#ifndef FLARE_IO_SIM_HTAB_H
#define FLARE_IO_SIM_HTAB_H

#include <stddef.h>
#include <stdint.h>

#include "flare/common.h"
#include "flare/ipaddr.h"

typedef struct sim_hnode {
    struct sim_hnode *next;
    struct sim_hnode **pprev; /* the pointer that points at this node; NULL: not in a table */
    uint64_t hash;
} sim_hnode;

typedef struct sim_htab {
    const flare_mem *mem;
    sim_hnode **buckets;
    size_t cap; /* 0 or a power of two */
    size_t len;
} sim_htab;

void flare__sim_htab_init(sim_htab *t, const flare_mem *mem);
/* Frees the bucket array; the nodes belong to the caller. */
void flare__sim_htab_free(sim_htab *t);
/* Adds n under hash; 0 or FLARE_ERR_NOMEM (then n is not in the table). */
int flare__sim_htab_insert(sim_htab *t, sim_hnode *n, uint64_t hash);
/* Removes n if it is in a table (no-op otherwise). */
void flare__sim_htab_remove(sim_htab *t, sim_hnode *n);
/* The newest node with this hash, or NULL. Inline: every packet at a host
 * or NAT looks up one or two. */
static inline sim_hnode *flare__sim_htab_first(const sim_htab *t, uint64_t hash)
{
    if (!t->cap)
        return NULL;
    sim_hnode *n = t->buckets[hash & (t->cap - 1)];
    while (n && n->hash != hash)
        n = n->next;
    return n;
}

/* The next (older) node with the same hash as n, or NULL. */
static inline sim_hnode *flare__sim_htab_next(const sim_hnode *n)
{
    uint64_t hash = n->hash;
    for (n = n->next; n && n->hash != hash; n = n->next)
        ;
    return (sim_hnode *)n;
}

static inline int flare__sim_hnode_linked(const sim_hnode *n)
{
    return n->pprev != NULL;
}

/* Key hashing: a 64-bit mix (splitmix64 finaliser) fed word by word. */
static inline uint64_t flare__sim_mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    return h ^ (h >> 31);
}
/* Mixes in the family and address of a (not the port). */
uint64_t flare__sim_mix_ip(uint64_t h, const flare_ipaddr *a);
/* Mixes in the family, address and port of a. */
uint64_t flare__sim_mix_ep(uint64_t h, const flare_ipaddr *a);

#endif
