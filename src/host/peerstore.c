/*
 * Peerstore: what the host knows about other peers (addresses with expiry,
 * protocols, public key, agent). Entries live in a hash table keyed by the
 * peer ID bytes; every list is capped so a peer cannot make us grow without
 * bound.
 */
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "host/host_int.h"

#define MAX_PEERS 4096

typedef struct ps_addr {
    flare_tstamp expires;
    flare_multiaddr ma;
} ps_addr;

typedef struct ps_entry {
    struct ps_entry *next; /* hash chain */
    flare_peerid id;
    size_t naddrs;
    ps_addr *addrs;
    size_t nprotocols;
    char **protocols;
    int has_key;
    flare_pubkey key;
    char agent[128];
    char proto_version[64];
} ps_entry;

struct flare__peerstore {
    const flare_mem *mem;
    size_t nbuckets;
    size_t count;
    ps_entry **buckets;
};

static uint64_t hash_id(const flare_peerid *id)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < id->len; i++) {
        h ^= id->bytes[i];
        h *= 1099511628211ULL;
    }
    return h;
}

struct flare__peerstore *flare__peerstore_new(const flare_mem *mem)
{
    struct flare__peerstore *ps = flare__calloc(mem, 1, sizeof(*ps));
    if (!ps)
        return NULL;
    ps->mem = flare__mem(mem);
    ps->nbuckets = 256;
    ps->buckets = flare__calloc(mem, ps->nbuckets, sizeof(ps_entry *));
    if (!ps->buckets) {
        flare__free(mem, ps);
        return NULL;
    }
    return ps;
}

static void free_protocols(struct flare__peerstore *ps, ps_entry *e)
{
    for (size_t i = 0; i < e->nprotocols; i++)
        flare__free(ps->mem, e->protocols[i]);
    flare__free(ps->mem, e->protocols);
    e->protocols = NULL;
    e->nprotocols = 0;
}

void flare__peerstore_del(struct flare__peerstore *ps)
{
    for (size_t b = 0; b < ps->nbuckets; b++) {
        ps_entry *e = ps->buckets[b];
        while (e) {
            ps_entry *next = e->next;
            free_protocols(ps, e);
            flare__free(ps->mem, e->addrs);
            flare__free(ps->mem, e);
            e = next;
        }
    }
    flare__free(ps->mem, ps->buckets);
    flare__free(ps->mem, ps);
}

static ps_entry *find(struct flare__peerstore *ps, const flare_peerid *id, int create)
{
    size_t b = hash_id(id) % ps->nbuckets;
    for (ps_entry *e = ps->buckets[b]; e; e = e->next)
        if (flare_peerid_equal(&e->id, id))
            return e;
    if (!create || ps->count >= MAX_PEERS || id->len == 0)
        return NULL;
    ps_entry *e = flare__calloc(ps->mem, 1, sizeof(*e));
    if (!e)
        return NULL;
    e->id = *id;
    e->next = ps->buckets[b];
    ps->buckets[b] = e;
    ps->count++;
    return e;
}

int flare__peerstore_add_addr(struct flare__peerstore *ps, const flare_peerid *peer,
                              const flare_multiaddr *ma, flare_tstamp expires)
{
    ps_entry *e = find(ps, peer, 1);
    if (!e)
        return FLARE_ERR_LIMIT;
    flare_multiaddr bare = *ma;
    /* Stored without the trailing /p2p/ of the peer itself. */
    flare_peerid tail;
    if (!flare_multiaddr_is_relayed(&bare) && flare_multiaddr_get_peerid(&bare, &tail) == 0 &&
        flare_peerid_equal(&tail, peer))
        flare_multiaddr_decapsulate(&bare, FLARE_MA_P2P);
    for (size_t i = 0; i < e->naddrs; i++) {
        if (flare_multiaddr_equal(&e->addrs[i].ma, &bare)) {
            if (expires > e->addrs[i].expires)
                e->addrs[i].expires = expires;
            return 0;
        }
    }
    if (e->naddrs >= FLARE_PEER_MAX_ADDRS) {
        /* Replace the one that expires first. */
        size_t victim = 0;
        for (size_t i = 1; i < e->naddrs; i++)
            if (e->addrs[i].expires < e->addrs[victim].expires)
                victim = i;
        e->addrs[victim].ma = bare;
        e->addrs[victim].expires = expires;
        return 0;
    }
    ps_addr *na = flare__realloc(ps->mem, e->addrs, (e->naddrs + 1) * sizeof(*na));
    if (!na)
        return FLARE_ERR_NOMEM;
    e->addrs = na;
    e->addrs[e->naddrs].ma = bare;
    e->addrs[e->naddrs].expires = expires;
    e->naddrs++;
    return 0;
}

int flare__peerstore_set_protocols(struct flare__peerstore *ps, const flare_peerid *peer,
                                   const char *const *protos, size_t n)
{
    ps_entry *e = find(ps, peer, 1);
    if (!e)
        return FLARE_ERR_LIMIT;
    free_protocols(ps, e);
    if (n > FLARE_PEER_MAX_PROTOCOLS)
        n = FLARE_PEER_MAX_PROTOCOLS;
    if (n == 0)
        return 0;
    e->protocols = flare__calloc(ps->mem, n, sizeof(char *));
    if (!e->protocols)
        return FLARE_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        size_t len = strnlen(protos[i], FLARE_PROTOCOL_MAX - 1);
        char *p = flare__malloc(ps->mem, len + 1);
        if (!p)
            return FLARE_ERR_NOMEM;
        memcpy(p, protos[i], len);
        p[len] = 0;
        e->protocols[e->nprotocols++] = p;
    }
    return 0;
}

int flare__peerstore_set_key(struct flare__peerstore *ps, const flare_peerid *peer,
                             const flare_pubkey *k)
{
    ps_entry *e = find(ps, peer, 1);
    if (!e)
        return FLARE_ERR_LIMIT;
    if (k) {
        e->key = *k;
        e->has_key = 1;
    }
    return 0;
}

int flare__peerstore_set_agent(struct flare__peerstore *ps, const flare_peerid *peer,
                               const char *agent, const char *proto_version)
{
    ps_entry *e = find(ps, peer, 1);
    if (!e)
        return FLARE_ERR_LIMIT;
    snprintf(e->agent, sizeof(e->agent), "%s", agent ? agent : "");
    snprintf(e->proto_version, sizeof(e->proto_version), "%s", proto_version ? proto_version : "");
    return 0;
}

int flare__peerstore_get(struct flare__peerstore *ps, const flare_peerid *peer, flare_tstamp now,
                         flare_peer_info *info)
{
    ps_entry *e = find(ps, peer, 0);
    if (!e)
        return FLARE_ERR_NOT_FOUND;
    memset(info, 0, sizeof(*info));
    info->id = e->id;
    for (size_t i = 0; i < e->naddrs; i++)
        if (e->addrs[i].expires > now && info->naddrs < FLARE_PEER_MAX_ADDRS)
            info->addrs[info->naddrs++] = e->addrs[i].ma;
    for (size_t i = 0; i < e->nprotocols; i++)
        snprintf(info->protocols[info->nprotocols++], FLARE_PROTOCOL_MAX, "%s", e->protocols[i]);
    snprintf(info->agent_version, sizeof(info->agent_version), "%s", e->agent);
    snprintf(info->protocol_version, sizeof(info->protocol_version), "%s", e->proto_version);
    info->has_pubkey = e->has_key;
    if (e->has_key)
        info->pubkey = e->key;
    return 0;
}

int flare__peerstore_supports(struct flare__peerstore *ps, const flare_peerid *peer,
                              const char *proto)
{
    ps_entry *e = find(ps, peer, 0);
    if (!e)
        return 0;
    for (size_t i = 0; i < e->nprotocols; i++)
        if (strcmp(e->protocols[i], proto) == 0)
            return 1;
    return 0;
}
