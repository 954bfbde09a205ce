/*
 * Peerstore: what the host knows about other peers (addresses with expiry,
 * protocols, public key, agent).
 *
 * Entries live in an open-addressing hash table keyed by the peer ID bytes
 * that doubles as it fills, so a relay with tens of thousands of clients
 * keeps all of them. Each slot holds the ID's full hash next to the entry
 * pointer: a probe that misses, and growing the table, never touch an
 * entry (every peer of every DHT answer is looked up; an entry is a cache
 * miss at 10,000 nodes).
 * Peers with an open connection are pinned; the others sit on an LRU list
 * and, once the store holds max_peers entries, the least recently used of
 * them makes room for a new one. A pinned peer is never evicted, so the
 * store may exceed max_peers by its connected peers.
 *
 * Everything is stored at its exact length (addresses, key, strings): an
 * entry costs ~200 bytes plus its data, not the ~8 KB of fixed-size records.
 * Protocol IDs, whole protocol lists, agent and protocol versions are
 * shared by all entries (counted references in tables): nearly every peer
 * lists the same dozen or so and runs one of a few versions.
 * Every list is capped so that a peer cannot make us grow without bound.
 */
#include <stddef.h>
#include <string.h>

#include "core/hash.h"
#include "core/mem.h"
#include "host/host_int.h"

/* A peer's addresses live in one block of records, each padded to 8 bytes,
 * so that answering with them (every DHT answer lists 20 peers) reads one
 * allocation per peer instead of one per address. */
typedef struct ps_addr {
    flare_tstamp expires;
    uint16_t len;
    uint8_t worked : 1; /* an outbound connection came up at it */
    uint8_t cut : 1;    /* relayed, stored without its final /p2p/<peer> */
    uint8_t certified;  /* from the peer's own signed peer record */
    uint8_t bytes[];    /* binary multiaddr */
} ps_addr;

#define ADDR_HEAD offsetof(ps_addr, bytes)

typedef struct ps_key {
    flare_key_type type;
    uint16_t len;
    uint8_t data[];
} ps_key;

/* The fields a lookup and an address list read come first (one or two
 * cache lines per peer); the peer ID ends the entry at its length (38
 * bytes for most, not a flare_peerid's 65). */
typedef struct ps_entry {
    uint8_t *abuf; /* naddrs records, abytes bytes in all */
    uint16_t abytes;
    uint8_t naddrs, nprotocols;
    uint32_t nconns;                /* open connections: pinned while > 0 */
    struct ps_entry *newer, *older; /* LRU list, unpinned entries only */
    uint64_t record_seq;
    char **protocols;
    ps_key *key;
    char *agent, *proto_version;
    uint8_t has_record : 1; /* record_seq is the newest signed record seen */
    uint8_t key_in_id : 1;  /* the key is the one the ID inlines (key is NULL) */
    uint8_t id_len;
    uint8_t id[];
} ps_entry;

/* A protocol ID shared by the entries that list it; entries point at s. */
typedef struct ps_proto {
    struct ps_proto *next;
    uint64_t hash;
    size_t refs;
    char s[];
} ps_proto;

/* A slot of the table: empty while e is NULL. */
typedef struct ps_slot {
    uint64_t hash; /* of e's ID */
    ps_entry *e;
} ps_slot;

struct flare__peerstore {
    const flare_mem *mem;
    size_t nslots; /* a power of two */
    size_t count, max_peers;
    ps_slot *slots;                    /* linear probing, at most 3/4 full */
    ps_entry *newest, *oldest;         /* LRU list of unpinned entries */
    ps_proto **protos;                 /* interned protocol IDs, grown at load factor 1 */
    uint32_t nprotos_buckets, nprotos; /* a power of two (or 0), and how many */
    struct ps_plist **plists;          /* interned protocol lists, likewise */
    size_t nplists_buckets, nplists;
    struct ps_plist *last_plist; /* the list set last (no reference of its own), or NULL */
};

#define MIN_SLOTS 64

/* A word at a time: every peer of every DHT answer is looked up, and a
 * byte-wise hash of its ~38 bytes showed in profiles. All of the ID is
 * hashed: IDs learnt from other peers' answers can be any bytes. */
static uint64_t hash_id(const flare_peerid *id)
{
    return flare__hash_words(0, id->bytes, id->len);
}

/* e's peer ID as a value. */
static const flare_peerid *entry_id(const ps_entry *e, flare_peerid *out)
{
    out->len = e->id_len;
    memcpy(out->bytes, e->id, e->id_len);
    return out;
}

static size_t home_of(const struct flare__peerstore *ps, uint64_t h)
{
    return (size_t)(h & (ps->nslots - 1));
}

static size_t next_slot(const struct flare__peerstore *ps, size_t s)
{
    return (s + 1) & (ps->nslots - 1);
}

struct flare__peerstore *flare__peerstore_new(const flare_mem *mem)
{
    struct flare__peerstore *ps = flare__calloc(mem, 1, sizeof(*ps));
    if (!ps)
        return NULL;
    ps->mem = flare__mem(mem);
    ps->max_peers = FLARE__PEERSTORE_MAX_PEERS;
    ps->nslots = MIN_SLOTS;
    ps->slots = flare__calloc(mem, ps->nslots, sizeof(ps_slot));
    if (!ps->slots) {
        flare__free(mem, ps);
        return NULL;
    }
    return ps;
}

/* ---- LRU list ------------------------------------------------------------------ */

static void lru_unlink(struct flare__peerstore *ps, ps_entry *e)
{
    if (e->newer)
        e->newer->older = e->older;
    else if (ps->newest == e)
        ps->newest = e->older;
    if (e->older)
        e->older->newer = e->newer;
    else if (ps->oldest == e)
        ps->oldest = e->newer;
    e->newer = e->older = NULL;
}

static void lru_push_newest(struct flare__peerstore *ps, ps_entry *e)
{
    e->newer = NULL;
    e->older = ps->newest;
    if (ps->newest)
        ps->newest->newer = e;
    ps->newest = e;
    if (!ps->oldest)
        ps->oldest = e;
}

static void touch(struct flare__peerstore *ps, ps_entry *e)
{
    if (e->nconns || ps->newest == e)
        return;
    lru_unlink(ps, e);
    lru_push_newest(ps, e);
}

/* ---- entries ------------------------------------------------------------------- */

/* ---- interned protocol IDs ------------------------------------------------------ */

static void protos_grow(struct flare__peerstore *ps)
{
    if (ps->nprotos_buckets >= UINT32_MAX / 2)
        return; /* longer chains, still correct */
    uint32_t n = ps->nprotos_buckets ? ps->nprotos_buckets * 2 : 32;
    ps_proto **t = flare__calloc(ps->mem, n, sizeof(*t));
    if (!t)
        return; /* longer chains, still correct */
    for (size_t b = 0; b < ps->nprotos_buckets; b++)
        while (ps->protos[b]) {
            ps_proto *p = ps->protos[b];
            ps->protos[b] = p->next;
            p->next = t[p->hash & (n - 1)];
            t[p->hash & (n - 1)] = p;
        }
    flare__free(ps->mem, ps->protos);
    ps->protos = t;
    ps->nprotos_buckets = n;
}

/* The shared copy of s (at most max bytes of it), one reference more; NULL
 * without memory. */
static char *proto_ref(struct flare__peerstore *ps, const char *s, size_t max)
{
    size_t len = strnlen(s, max);
    uint64_t h = flare__hash_words(0, s, len);
    if (ps->nprotos >= ps->nprotos_buckets)
        protos_grow(ps);
    if (!ps->nprotos_buckets)
        return NULL;
    ps_proto **head = &ps->protos[h & (ps->nprotos_buckets - 1)];
    for (ps_proto *p = *head; p; p = p->next)
        if (p->hash == h && strncmp(p->s, s, len) == 0 && p->s[len] == 0) {
            p->refs++;
            return p->s;
        }
    ps_proto *p = flare__malloc(ps->mem, sizeof(*p) + len + 1);
    if (!p)
        return NULL;
    p->hash = h;
    p->refs = 1;
    memcpy(p->s, s, len);
    p->s[len] = 0;
    p->next = *head;
    *head = p;
    ps->nprotos++;
    return p->s;
}

static void proto_unref(struct flare__peerstore *ps, char *s)
{
    ps_proto *p = (ps_proto *)(void *)(s - offsetof(ps_proto, s));
    if (--p->refs)
        return;
    for (ps_proto **pp = &ps->protos[p->hash & (ps->nprotos_buckets - 1)]; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    ps->nprotos--;
    flare__free(ps->mem, p);
}

/* ---- interned protocol lists ---------------------------------------------------- */

/* A protocol list shared by the entries that list the same IDs in the same
 * order (nearly all peers of one implementation); it holds one reference to
 * each of its IDs, entries point at p. */
typedef struct ps_plist {
    struct ps_plist *next;
    uint64_t hash;
    size_t refs, n;
    char *p[];
} ps_plist;

static ps_plist *plist_of(char **p)
{
    return (ps_plist *)(void *)((char *)p - offsetof(ps_plist, p));
}

static uint64_t proto_hash(const char *s)
{
    return ((const ps_proto *)(const void *)(s - offsetof(ps_proto, s)))->hash;
}

/* A list's hash: of its length and its IDs' hashes, in order. */
#define PLIST_SEED 1469598103934665603ULL

static uint64_t plist_step(uint64_t h, uint64_t id_hash)
{
    return (h ^ id_hash) * 1099511628211ULL;
}

static void plists_grow(struct flare__peerstore *ps)
{
    size_t n = ps->nplists_buckets ? ps->nplists_buckets * 2 : 16;
    ps_plist **t = flare__calloc(ps->mem, n, sizeof(*t));
    if (!t)
        return; /* longer chains, still correct */
    for (size_t b = 0; b < ps->nplists_buckets; b++)
        while (ps->plists[b]) {
            ps_plist *l = ps->plists[b];
            ps->plists[b] = l->next;
            l->next = t[l->hash & (n - 1)];
            t[l->hash & (n - 1)] = l;
        }
    flare__free(ps->mem, ps->plists);
    ps->plists = t;
    ps->nplists_buckets = n;
}

/* The shared list of ids[0..n) (interned IDs whose references it takes
 * over), or NULL without memory (the references are then dropped). */
static ps_plist *plist_ref(struct flare__peerstore *ps, char **ids, size_t n)
{
    uint64_t h = PLIST_SEED ^ n;
    for (size_t i = 0; i < n; i++)
        h = plist_step(h, proto_hash(ids[i]));
    if (ps->nplists >= ps->nplists_buckets)
        plists_grow(ps);
    ps_plist *l = NULL;
    if (ps->nplists_buckets) {
        for (l = ps->plists[h & (ps->nplists_buckets - 1)]; l; l = l->next)
            if (l->hash == h && l->n == n && memcmp(l->p, ids, n * sizeof(*ids)) == 0)
                break;
        if (!l && (l = flare__malloc(ps->mem, sizeof(*l) + n * sizeof(*ids)))) {
            l->hash = h;
            l->refs = 0;
            l->n = n;
            memcpy(l->p, ids, n * sizeof(*ids));
            l->next = ps->plists[h & (ps->nplists_buckets - 1)];
            ps->plists[h & (ps->nplists_buckets - 1)] = l;
            ps->nplists++;
            l->refs++;
            return l;
        }
    }
    for (size_t i = 0; i < n; i++) /* the list has its own, or none */
        proto_unref(ps, ids[i]);
    if (l)
        l->refs++;
    return l;
}

static void plist_unref(struct flare__peerstore *ps, ps_plist *l)
{
    if (--l->refs)
        return;
    if (ps->last_plist == l)
        ps->last_plist = NULL;
    for (ps_plist **pp = &ps->plists[l->hash & (ps->nplists_buckets - 1)]; *pp; pp = &(*pp)->next)
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    ps->nplists--;
    for (size_t i = 0; i < l->n; i++)
        proto_unref(ps, l->p[i]);
    flare__free(ps->mem, l);
}

static void free_protocols(struct flare__peerstore *ps, ps_entry *e)
{
    if (e->protocols)
        plist_unref(ps, plist_of(e->protocols));
    e->protocols = NULL;
    e->nprotocols = 0;
}

static void entry_free(struct flare__peerstore *ps, ps_entry *e)
{
    free_protocols(ps, e);
    flare__free(ps->mem, e->abuf);
    flare__free(ps->mem, e->key);
    if (e->agent)
        proto_unref(ps, e->agent);
    if (e->proto_version)
        proto_unref(ps, e->proto_version);
    flare__free(ps->mem, e);
}

void flare__peerstore_del(struct flare__peerstore *ps)
{
    if (!ps)
        return;
    for (size_t s = 0; s < ps->nslots; s++)
        if (ps->slots[s].e)
            entry_free(ps, ps->slots[s].e);
    flare__free(ps->mem, ps->slots);
    flare__free(ps->mem, ps->plists); /* empty: every entry let go of its own */
    flare__free(ps->mem, ps->protos);
    flare__free(ps->mem, ps);
}

/* The slot of id: the one holding its entry, else the empty one that
 * ends its probe sequence (the table is never full). */
static size_t find_slot(const struct flare__peerstore *ps, const flare_peerid *id, uint64_t h)
{
    size_t s = home_of(ps, h);
    for (;; s = next_slot(ps, s)) {
        const ps_slot *sl = &ps->slots[s];
        if (!sl->e || (sl->hash == h && sl->e->id_len == id->len &&
                       memcmp(sl->e->id, id->bytes, id->len) == 0))
            return s;
    }
}

/* Empties slot s (linear probing: the entries after the hole that may move
 * back into it do, so no probe sequence is cut). */
static void slot_delete(struct flare__peerstore *ps, size_t s)
{
    ps->slots[s].e = NULL;
    for (size_t j = next_slot(ps, s); ps->slots[j].e; j = next_slot(ps, j)) {
        size_t home = home_of(ps, ps->slots[j].hash);
        /* j's entry may move to s when s lies between its home and j. */
        if (((j - home) & (ps->nslots - 1)) >= ((j - s) & (ps->nslots - 1))) {
            ps->slots[s] = ps->slots[j];
            ps->slots[j].e = NULL;
            s = j;
        }
    }
}

static void evict(struct flare__peerstore *ps, ps_entry *e)
{
    flare_peerid id;
    entry_id(e, &id);
    lru_unlink(ps, e);
    slot_delete(ps, find_slot(ps, &id, hash_id(&id)));
    entry_free(ps, e);
    ps->count--;
}

/* Doubles the table once it is 3/4 full; moving a slot needs no entry.
 * Without memory the old table stays (-1 only when it is full). */
static int maybe_grow(struct flare__peerstore *ps)
{
    if (ps->count + 1 <= ps->nslots / 4 * 3)
        return 0;
    size_t n = ps->nslots * 2;
    ps_slot *ns = n <= SIZE_MAX / sizeof(*ns) ? flare__calloc(ps->mem, n, sizeof(*ns)) : NULL;
    if (!ns)
        return ps->count + 1 < ps->nslots ? 0 : -1;
    for (size_t s = 0; s < ps->nslots; s++) {
        if (!ps->slots[s].e)
            continue;
        size_t j = (size_t)(ps->slots[s].hash & (n - 1));
        while (ns[j].e)
            j = (j + 1) & (n - 1);
        ns[j] = ps->slots[s];
    }
    flare__free(ps->mem, ps->slots);
    ps->slots = ns;
    ps->nslots = n;
    return 0;
}

static ps_entry *lookup(struct flare__peerstore *ps, const flare_peerid *id)
{
    return ps->slots[find_slot(ps, id, hash_id(id))].e;
}

/* The entry of id, created if missing (evicting the least recently used
 * unpinned peers above max_peers). */
static int get_entry(struct flare__peerstore *ps, const flare_peerid *id, ps_entry **out)
{
    uint64_t h = hash_id(id);
    *out = ps->slots[find_slot(ps, id, h)].e;
    if (*out) {
        touch(ps, *out);
        return 0;
    }
    if (id->len == 0)
        return FLARE_ERR_INVALID_ARG;
    while (ps->count >= ps->max_peers && ps->oldest)
        evict(ps, ps->oldest);
    if (id->len > FLARE_PEERID_MAX)
        return FLARE_ERR_INVALID_ARG;
    if (maybe_grow(ps) != 0)
        return FLARE_ERR_NOMEM;
    /* At the ID's end, not the struct's padded size: 112 bytes for most. */
    ps_entry *e = flare__calloc(ps->mem, 1, offsetof(ps_entry, id) + id->len);
    if (!e)
        return FLARE_ERR_NOMEM;
    e->id_len = id->len;
    memcpy(e->id, id->bytes, id->len);
    ps_slot *sl = &ps->slots[find_slot(ps, id, h)];
    sl->hash = h;
    sl->e = e;
    lru_push_newest(ps, e);
    ps->count++;
    *out = e;
    return 0;
}

/* ---- connections ---------------------------------------------------------------- */

int flare__peerstore_conn_opened(struct flare__peerstore *ps, const flare_peerid *peer)
{
    ps_entry *e;
    int rv = get_entry(ps, peer, &e);
    if (rv)
        return rv;
    if (e->nconns++ == 0)
        lru_unlink(ps, e);
    return 0;
}

void flare__peerstore_conn_closed(struct flare__peerstore *ps, const flare_peerid *peer)
{
    ps_entry *e = lookup(ps, peer);
    if (!e || e->nconns == 0 || --e->nconns > 0)
        return;
    /* Just disconnected: the most recently used of the evictable peers. */
    lru_push_newest(ps, e);
    while (ps->count > ps->max_peers && ps->oldest && ps->oldest != e)
        evict(ps, ps->oldest);
}

void flare__peerstore_set_max_peers(struct flare__peerstore *ps, size_t max_peers)
{
    ps->max_peers = max_peers ? max_peers : 1;
    while (ps->count > ps->max_peers && ps->oldest)
        evict(ps, ps->oldest);
}

size_t flare__peerstore_count(const struct flare__peerstore *ps)
{
    return ps->count;
}

int flare__peerstore_has(const struct flare__peerstore *ps, const flare_peerid *peer)
{
    return lookup((struct flare__peerstore *)ps, peer) != NULL;
}

/* ---- records --------------------------------------------------------------------- */

static size_t addr_size(size_t len)
{
    return (ADDR_HEAD + len + 7) & ~(size_t)7;
}

static ps_addr *addr_at(const ps_entry *e, size_t off)
{
    return (ps_addr *)(void *)(e->abuf + off);
}

/* e's addresses in their stored order: first_addr, then next_addr until NULL. */
static ps_addr *first_addr(const ps_entry *e)
{
    return e->abytes ? addr_at(e, 0) : NULL;
}

static ps_addr *next_addr(const ps_entry *e, const ps_addr *a)
{
    size_t off = (size_t)((const uint8_t *)a - e->abuf) + addr_size(a->len);
    return off < e->abytes ? addr_at(e, off) : NULL;
}

/* A record built on the stack before it joins the block. */
typedef union addr_tmp {
    ps_addr a;
    uint8_t raw[ADDR_HEAD + FLARE_MULTIADDR_MAX + 8];
} addr_tmp;

/* Replaces e's addresses with list (records anywhere, e.g. in the old
 * block), in that order. On failure e is unchanged. */
static int set_addrs(struct flare__peerstore *ps, ps_entry *e, const ps_addr *const *list, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += addr_size(list[i]->len);
    uint8_t *nb = NULL;
    if (total) {
        nb = flare__malloc(ps->mem, total);
        if (!nb)
            return FLARE_ERR_NOMEM;
    }
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        size_t sz = addr_size(list[i]->len);
        memcpy(nb + off, list[i], ADDR_HEAD + list[i]->len);
        off += sz;
    }
    flare__free(ps->mem, e->abuf);
    e->abuf = nb;
    e->abytes = (uint16_t)total;
    e->naddrs = (uint8_t)n;
    return 0;
}

/* e's addresses as a list of pointers into its block. */
static size_t addr_list(const ps_entry *e, const ps_addr **list)
{
    size_t n = 0;
    for (const ps_addr *a = first_addr(e); a; a = next_addr(e, a))
        list[n++] = a;
    return n;
}

/* a is the first len bytes of an address, cut as bare_len says. */
static int addr_is(const ps_addr *a, const uint8_t *bytes, size_t len, int cut)
{
    return a->len == len && a->cut == (unsigned)cut && memcmp(a->bytes, bytes, len) == 0;
}

/* The length of ma as stored: without its last /p2p/ when that is the peer
 * itself. A direct address is handed out without it; a relayed one keeps
 * it (its target), so it is cut (*cut 1) only when it is the final
 * component and appending it back gives ma again: the peer's ID in each of
 * its circuit addresses was ~40 of their ~90 bytes. One walk over the
 * components, and no copy for a direct address: every address of every
 * DHT answer comes through here. */
static size_t bare_len(const flare_peerid *peer, const flare_multiaddr *ma, int *cut)
{
    size_t off = 0, start = 0, last = 0;
    int rv, found = 0, relayed = 0;
    flare_ma_component c, p2p = {0};
    *cut = 0;
    /* Without the peer's ID bytes anywhere no component can name it: most
     * direct addresses are shorter than an ID. */
    if (peer->len == 0 || ma->len < peer->len ||
        !memmem(ma->bytes, ma->len, peer->bytes, peer->len))
        return ma->len;
    while (start = off, (rv = flare_multiaddr_next(ma, &off, &c)) == 1) {
        if (c.code == FLARE_MA_P2P_CIRCUIT)
            relayed = 1;
        if (c.code == FLARE_MA_P2P) {
            found = 1;
            last = start;
            p2p = c;
        }
    }
    if (rv != 0 || !found || p2p.value_len > FLARE_PEERID_MAX || p2p.value_len != peer->len ||
        memcmp(p2p.value, peer->bytes, peer->len) != 0)
        return ma->len;
    if (relayed) {
        flare_multiaddr back = *ma;
        back.len = (uint16_t)last;
        if (flare_multiaddr_with_peerid(&back, peer) != 0 || !flare_multiaddr_equal(&back, ma))
            return ma->len;
        *cut = 1;
    }
    return last;
}

static int entry_add_addr(struct flare__peerstore *ps, ps_entry *e, const flare_multiaddr *ma,
                          flare_tstamp expires, int certified)
{
    flare_peerid id;
    int cut;
    size_t blen = bare_len(entry_id(e, &id), ma, &cut);
    for (ps_addr *a = first_addr(e); a; a = next_addr(e, a)) {
        if (addr_is(a, ma->bytes, blen, cut)) {
            if (expires > a->expires)
                a->expires = expires;
            a->certified |= (uint8_t)certified;
            return 0;
        }
    }
    addr_tmp t;
    t.a.expires = expires;
    t.a.len = (uint16_t)blen;
    t.a.worked = 0;
    t.a.cut = cut ? 1 : 0;
    t.a.certified = (uint8_t)certified;
    memcpy(t.a.bytes, ma->bytes, blen);
    if (e->naddrs < FLARE_PEER_MAX_ADDRS) {
        /* Appended at the block's end, where set_addrs would put it; the
         * allocator often grows the block in place. */
        size_t sz = addr_size(blen);
        uint8_t *nb = flare__realloc(ps->mem, e->abuf, e->abytes + sz);
        if (!nb)
            return FLARE_ERR_NOMEM;
        memset(nb + e->abytes, 0, sz);
        memcpy(nb + e->abytes, &t.a, ADDR_HEAD + blen);
        e->abuf = nb;
        e->abytes = (uint16_t)(e->abytes + sz);
        e->naddrs++;
        return 0;
    }
    const ps_addr *list[FLARE_PEER_MAX_ADDRS + 1];
    size_t n = addr_list(e, list);
    {
        /* Replace the one that expires first, an unsigned one before any
         * certified one: gossip about a peer cannot push out its own record. */
        size_t victim = n;
        for (size_t i = 0; i < n; i++) {
            const ps_addr *c = list[i];
            if (victim == n ||
                (c->certified < list[victim]->certified ||
                 (c->certified == list[victim]->certified && c->expires < list[victim]->expires)))
                victim = i;
        }
        if (list[victim]->certified && !certified)
            return 0;
        list[victim] = &t.a;
    }
    return set_addrs(ps, e, list, n);
}

int flare__peerstore_add_addr(struct flare__peerstore *ps, const flare_peerid *peer,
                              const flare_multiaddr *ma, flare_tstamp expires)
{
    ps_entry *e;
    int rv = get_entry(ps, peer, &e);
    return rv ? rv : entry_add_addr(ps, e, ma, expires, 0);
}

int flare__peerstore_add_record(struct flare__peerstore *ps, const flare_peerid *peer, uint64_t seq,
                                const flare_multiaddr *addrs, size_t n, flare_tstamp expires)
{
    ps_entry *e;
    int rv = get_entry(ps, peer, &e);
    if (rv)
        return rv;
    if (e->has_record && seq < e->record_seq)
        return FLARE_ERR_EXISTS;
    /* The newer record replaces the older one: the addresses it no longer
     * lists were withdrawn by the peer itself (e.g. a lost reservation).
     * The last address takes a removed one's place. */
    const ps_addr *list[FLARE_PEER_MAX_ADDRS];
    size_t na = addr_list(e, list), before = na;
    size_t blen[FLARE_PEER_MAX_ADDRS]; /* each record address's, once needed */
    uint8_t bcut[FLARE_PEER_MAX_ADDRS];
    for (size_t j = 0; j < n && j < FLARE_PEER_MAX_ADDRS; j++)
        blen[j] = SIZE_MAX;
    for (size_t i = 0; i < na;) {
        int keep = !list[i]->certified;
        for (size_t j = 0; j < n && !keep; j++) {
            size_t len = j < FLARE_PEER_MAX_ADDRS ? blen[j] : SIZE_MAX;
            int cut = j < FLARE_PEER_MAX_ADDRS ? bcut[j] : 0;
            if (len == SIZE_MAX)
                len = bare_len(peer, &addrs[j], &cut);
            if (j < FLARE_PEER_MAX_ADDRS) {
                blen[j] = len;
                bcut[j] = (uint8_t)cut;
            }
            keep = addr_is(list[i], addrs[j].bytes, len, cut);
        }
        if (keep)
            i++;
        else
            list[i] = list[--na];
    }
    if (na != before && (rv = set_addrs(ps, e, list, na)) != 0)
        return rv;
    e->has_record = 1;
    e->record_seq = seq;
    for (size_t j = 0; j < n; j++)
        if ((rv = entry_add_addr(ps, e, &addrs[j], expires, 1)) != 0)
            return rv;
    return 0;
}

/* 1 if l holds exactly what interning protos[0..n) would give. */
static int plist_matches(const ps_plist *l, const char *const *protos, size_t n)
{
    if (l->n != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        const char *s = protos[i] ? protos[i] : "";
        if (strncmp(l->p[i], s, FLARE_PROTOCOL_MAX - 1) != 0)
            return 0;
    }
    return 1;
}

int flare__peerstore_set_protocols(struct flare__peerstore *ps, const flare_peerid *peer,
                                   const char *const *protos, size_t n)
{
    ps_entry *e;
    int rv = get_entry(ps, peer, &e);
    if (rv)
        return rv;
    if (n > FLARE_PEER_MAX_PROTOCOLS)
        n = FLARE_PEER_MAX_PROTOCOLS;
    /* Every identify and push lists all of a peer's protocols, nearly
     * always the ones it listed before or those the previous peer listed
     * (one implementation): comparing strings spares the interning's
     * hashing and table walks. */
    if (n && e->protocols && plist_matches(plist_of(e->protocols), protos, n))
        return 0;
    free_protocols(ps, e);
    if (n == 0)
        return 0;
    ps_plist *last = ps->last_plist;
    if (last && plist_matches(last, protos, n)) {
        last->refs++;
        e->protocols = last->p;
        e->nprotocols = (uint8_t)n;
        return 0;
    }
    /* A list some other peer holds: found by its strings' hashes, without
     * interning (and letting go of) each of its IDs. */
    uint64_t h = PLIST_SEED ^ n;
    for (size_t i = 0; i < n; i++) {
        const char *p = protos[i] ? protos[i] : "";
        h = plist_step(h, flare__hash_words(0, p, strnlen(p, FLARE_PROTOCOL_MAX - 1)));
    }
    for (ps_plist *l = ps->nplists_buckets ? ps->plists[h & (ps->nplists_buckets - 1)] : NULL; l;
         l = l->next) {
        if (l->hash == h && plist_matches(l, protos, n)) {
            l->refs++;
            ps->last_plist = l;
            e->protocols = l->p;
            e->nprotocols = (uint8_t)n;
            return 0;
        }
    }
    char *ids[FLARE_PEER_MAX_PROTOCOLS];
    for (size_t i = 0; i < n; i++) {
        ids[i] = proto_ref(ps, protos[i] ? protos[i] : "", FLARE_PROTOCOL_MAX - 1);
        if (!ids[i]) {
            while (i)
                proto_unref(ps, ids[--i]);
            return FLARE_ERR_NOMEM;
        }
    }
    ps_plist *l = plist_ref(ps, ids, n);
    if (!l)
        return FLARE_ERR_NOMEM;
    ps->last_plist = l;
    e->protocols = l->p;
    e->nprotocols = (uint8_t)n;
    return 0;
}

int flare__peerstore_set_key(struct flare__peerstore *ps, const flare_peerid *peer,
                             const flare_pubkey *k)
{
    ps_entry *e;
    int rv = get_entry(ps, peer, &e);
    if (rv || !k)
        return rv;
    if (k->len > FLARE_PUBKEY_DATA_MAX)
        return FLARE_ERR_INVALID_ARG;
    /* An Ed25519 or secp256k1 peer ID holds its key: nothing to store
     * (most peers; every connected one would cost another allocation). */
    flare_pubkey in;
    if (flare_peerid_extract_pubkey(peer, &in) == 0 && in.type == k->type && in.len == k->len &&
        memcmp(in.data, k->data, k->len) == 0) {
        flare__free(ps->mem, e->key);
        e->key = NULL;
        e->key_in_id = 1;
        return 0;
    }
    ps_key *nk = flare__malloc(ps->mem, sizeof(*nk) + k->len);
    if (!nk)
        return FLARE_ERR_NOMEM;
    nk->type = k->type;
    nk->len = (uint16_t)k->len;
    memcpy(nk->data, k->data, k->len);
    flare__free(ps->mem, e->key);
    e->key = nk;
    e->key_in_id = 0;
    return 0;
}

int flare__peerstore_set_agent(struct flare__peerstore *ps, const flare_peerid *peer,
                               const char *agent, const char *proto_version)
{
    ps_entry *e;
    int rv = get_entry(ps, peer, &e);
    if (rv)
        return rv;
    /* Shared like protocol IDs: most peers run one of a few versions. */
    flare_peer_info *none = NULL; /* only for the field sizes */
    char *a = proto_ref(ps, agent ? agent : "", sizeof(none->agent_version) - 1);
    char *v = proto_ref(ps, proto_version ? proto_version : "", sizeof(none->protocol_version) - 1);
    if (!a || !v) {
        if (a)
            proto_unref(ps, a);
        if (v)
            proto_unref(ps, v);
        return FLARE_ERR_NOMEM;
    }
    if (e->agent)
        proto_unref(ps, e->agent);
    if (e->proto_version)
        proto_unref(ps, e->proto_version);
    e->agent = a;
    e->proto_version = v;
    return 0;
}

static ps_addr *find_addr(struct flare__peerstore *ps, const flare_peerid *peer,
                          const flare_multiaddr *ma)
{
    ps_entry *e = lookup(ps, peer);
    if (!e)
        return NULL;
    int cut;
    size_t blen = bare_len(peer, ma, &cut);
    for (ps_addr *a = first_addr(e); a; a = next_addr(e, a))
        if (addr_is(a, ma->bytes, blen, cut))
            return a;
    return NULL;
}

void flare__peerstore_addr_worked(struct flare__peerstore *ps, const flare_peerid *peer,
                                  const flare_multiaddr *ma)
{
    ps_addr *a = find_addr(ps, peer, ma);
    if (a)
        a->worked = 1;
}

int flare__peerstore_addr_has_worked(struct flare__peerstore *ps, const flare_peerid *peer,
                                     const flare_multiaddr *ma)
{
    const ps_addr *a = find_addr(ps, peer, ma);
    return a && a->worked;
}

/* Live addresses, the certified ones first; with only_certified and at
 * least one live certified address, only those. */
static size_t entry_addrs(const ps_entry *e, flare_tstamp now, flare_multiaddr *out, size_t cap,
                          int only_certified)
{
    size_t n = 0;
    flare_peerid id = {0}; /* made at the first cut address */
    for (int pass = 1; e && pass >= 0 && !(pass == 0 && only_certified && n); pass--) {
        for (const ps_addr *a = first_addr(e); a && n < cap; a = next_addr(e, a)) {
            if (a->expires > now && a->certified == pass) {
                out[n].len = a->len;
                memcpy(out[n].bytes, a->bytes, a->len);
                if (a->cut && flare_multiaddr_with_peerid(&out[n], id.len ? &id : entry_id(e, &id)))
                    continue; /* checked when stored: cannot happen */
                n++;
            }
        }
    }
    return n;
}

int flare__peerstore_get(struct flare__peerstore *ps, const flare_peerid *peer, flare_tstamp now,
                         flare_peer_info *info)
{
    ps_entry *e = lookup(ps, peer);
    if (!e)
        return FLARE_ERR_NOT_FOUND;
    touch(ps, e);
    memset(info, 0, sizeof(*info));
    entry_id(e, &info->id);
    info->naddrs = entry_addrs(e, now, info->addrs, FLARE_PEER_MAX_ADDRS, 0);
    for (size_t i = 0; i < e->nprotocols; i++) {
        size_t len = strlen(e->protocols[i]);
        memcpy(info->protocols[info->nprotocols++], e->protocols[i], len + 1);
    }
    if (e->agent)
        memcpy(info->agent_version, e->agent, strlen(e->agent) + 1);
    if (e->proto_version)
        memcpy(info->protocol_version, e->proto_version, strlen(e->proto_version) + 1);
    if (e->key) {
        info->has_pubkey = 1;
        info->pubkey.type = e->key->type;
        info->pubkey.len = e->key->len;
        memcpy(info->pubkey.data, e->key->data, e->key->len);
    } else if (e->key_in_id) {
        flare_peerid id;
        info->has_pubkey = flare_peerid_extract_pubkey(entry_id(e, &id), &info->pubkey) == 0;
    }
    return 0;
}

int flare__peerstore_get_addrs(struct flare__peerstore *ps, const flare_peerid *peer,
                               flare_tstamp now, flare_multiaddr *out, size_t cap, size_t *n)
{
    ps_entry *e = lookup(ps, peer);
    if (!e)
        return FLARE_ERR_NOT_FOUND;
    touch(ps, e);
    *n = entry_addrs(e, now, out, cap, 0);
    return 0;
}

size_t flare__peerstore_addrs(struct flare__peerstore *ps, const flare_peerid *peer,
                              flare_tstamp now, flare_multiaddr *out, size_t cap)
{
    return entry_addrs(lookup(ps, peer), now, out, cap, 0);
}

size_t flare__peerstore_addrs_certified(struct flare__peerstore *ps, const flare_peerid *peer,
                                        flare_tstamp now, flare_multiaddr *out, size_t cap)
{
    return entry_addrs(lookup(ps, peer), now, out, cap, 1);
}

#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(p) __builtin_prefetch(p)
#else
#define PREFETCH(p) ((void)(p))
#endif

/* Three rounds over the IDs (slots, entries, address blocks), each
 * starting all its loads before any is waited for. */
void flare__peerstore_prefetch(struct flare__peerstore *ps, const flare_peerid *ids, size_t n)
{
    uint64_t h[32];
    size_t s[32];
    n = n < 32 ? n : 32;
    for (size_t i = 0; i < n; i++) {
        h[i] = hash_id(&ids[i]);
        PREFETCH(&ps->slots[home_of(ps, h[i])]);
    }
    for (size_t i = 0; i < n; i++) {
        /* The first slot of the right hash: nearly always the entry. */
        s[i] = home_of(ps, h[i]);
        while (ps->slots[s[i]].e && ps->slots[s[i]].hash != h[i])
            s[i] = next_slot(ps, s[i]);
        const ps_entry *e = ps->slots[s[i]].e;
        if (e) {
            PREFETCH(e);
            PREFETCH((const uint8_t *)e + 64);
        }
    }
    for (size_t i = 0; i < n; i++) {
        const ps_entry *e = ps->slots[s[i]].e;
        if (e && e->abuf)
            PREFETCH(e->abuf);
    }
}

int flare__peerstore_supports(struct flare__peerstore *ps, const flare_peerid *peer,
                              const char *proto)
{
    ps_entry *e = lookup(ps, peer);
    if (!e)
        return 0;
    touch(ps, e);
    for (size_t i = 0; i < e->nprotocols; i++)
        if (strcmp(e->protocols[i], proto) == 0)
            return 1;
    return 0;
}
