/* Kademlia keys, XOR distance and the k-bucket routing table.
 *
 * Buckets are indexed by the common prefix length (cpl) with our own key and
 * allocated on first use, so a table costs what its peers cost. A peer enters
 * only after it answered us; a full bucket keeps newcomers in a small
 * replacement cache that refills it when a member fails. Diversity limits
 * bound the peers of one IP group (/24, /48) per bucket and per table, so a
 * single operator cannot fill a bucket (S/Kademlia, go-libp2p-kad-dht's
 * peer diversity filter). */
#include <nettle/sha2.h>
#include <string.h>

#include "core/mem.h"
#include "protocols/kad/kad.h"

/* Nettle's SHA-256 uses the CPU's SHA extensions where there are some:
 * ~4x libsodium's portable code on the short inputs hashed here (every
 * peer a node meets, and the random keys that a table refresh tries until
 * one falls into the bucket it refreshes). */
void flare__kad_key_of(flare__kad_key *k, const uint8_t *data, size_t len)
{
    struct sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, len, data);
    sha256_digest(&c, sizeof(k->b), k->b);
}

void flare__kad_key_of_peer(flare__kad_key *k, const flare_peerid *id)
{
    flare__kad_key_of(k, id->bytes, id->len);
}

int flare__kad_cpl(const flare__kad_key *a, const flare__kad_key *b)
{
    for (int i = 0; i < 32; i++) {
        uint8_t x = a->b[i] ^ b->b[i];
        if (x)
            return i * 8 + __builtin_clz((unsigned)x) - 24;
    }
    return 256;
}

/* Bytes 8i..8i+7 of a key as a big-endian integer: XOR distances compare
 * as four words instead of 32 bytes. */
static inline uint64_t word(const flare__kad_key *k, int i)
{
    const uint8_t *p = k->b + 8 * i;
    return (uint64_t)p[0] << 56 | (uint64_t)p[1] << 48 | (uint64_t)p[2] << 40 |
           (uint64_t)p[3] << 32 | (uint64_t)p[4] << 24 | (uint64_t)p[5] << 16 |
           (uint64_t)p[6] << 8 | (uint64_t)p[7];
}

int flare__kad_dist_cmp(const flare__kad_key *target, const flare__kad_key *a,
                        const flare__kad_key *b)
{
    for (int i = 0; i < 4; i++) {
        uint64_t t = word(target, i), da = word(a, i) ^ t, db = word(b, i) ^ t;
        if (da != db)
            return da < db ? -1 : 1;
    }
    return 0;
}

void flare__kad_random_key(flare__kad_key *out, const flare__kad_key *self, int cpl, flare_rng rng)
{
    if (cpl < 0)
        cpl = 0;
    if (cpl > 255)
        cpl = 255;
    rng.fn(out->b, sizeof(out->b), rng.user);
    int byte = cpl / 8, bit = cpl % 8;
    memcpy(out->b, self->b, (size_t)byte);
    uint8_t keep = (uint8_t)(0xff00u >> bit); /* the bits before cpl in this byte */
    uint8_t flip = (uint8_t)(0x80u >> bit);
    uint8_t v = (uint8_t)((self->b[byte] & keep) | (out->b[byte] & (uint8_t)~keep));
    out->b[byte] = (uint8_t)((v & (uint8_t)~flip) | ((self->b[byte] ^ flip) & flip));
}

uint64_t flare__kad_ip_group(const flare_ipaddr *ip, int doc_is_public)
{
    if (!ip || (ip->family != 4 && ip->family != 6))
        return 0;
    if (!flare_ma_class_is_public(flare_ipaddr_classify(ip), doc_is_public))
        return 0;
    size_t n = ip->family == 4 ? 3 : 6;
    uint64_t g = (uint64_t)ip->family << 56;
    for (size_t i = 0; i < n; i++)
        g |= (uint64_t)ip->ip[i] << (8 * (n - 1 - i));
    return g;
}

/* ---- routing table ---- */

static const flare__kad_rt_cfg default_cfg = {FLARE__KAD_K, 10, 2, 10};

void flare__kad_rt_init(flare__kad_rt *rt, const flare_peerid *self, const flare__kad_rt_cfg *cfg,
                        const flare_mem *mem)
{
    memset(rt, 0, sizeof(*rt));
    rt->mem = mem;
    rt->cfg = cfg ? *cfg : default_cfg;
    if (!rt->cfg.k)
        rt->cfg.k = FLARE__KAD_K;
    rt->self = *self;
    flare__kad_key_of_peer(&rt->self_key, self);
}

void flare__kad_rt_free(flare__kad_rt *rt)
{
    for (size_t i = 0; i < FLARE__KAD_BUCKETS; i++) {
        if (!rt->b[i])
            continue;
        flare__free(rt->mem, rt->b[i]->e);
        flare__free(rt->mem, rt->b[i]->r);
        flare__free(rt->mem, rt->b[i]);
        rt->b[i] = NULL;
    }
    rt->size = 0;
    memset(rt->nonempty, 0, sizeof(rt->nonempty));
}

static flare__kad_bucket *bucket(flare__kad_rt *rt, int cpl)
{
    if (rt->b[cpl])
        return rt->b[cpl];
    flare__kad_bucket *b = flare__calloc(rt->mem, 1, sizeof(*b));
    if (!b)
        return NULL;
    rt->b[cpl] = b;
    return b;
}

/* Keeps rt->nonempty in step with bucket cpl's count. */
static void mark(flare__kad_rt *rt, int cpl)
{
    uint64_t bit = 1ull << (cpl % 64);
    if (rt->b[cpl]->n)
        rt->nonempty[cpl / 64] |= bit;
    else
        rt->nonempty[cpl / 64] &= ~bit;
}

/* Room for one more in *a (n of *cap, at most max); 0 or FLARE_ERR_NOMEM. */
static int room(flare__kad_rt *rt, flare__kad_rt_entry **a, size_t n, size_t *cap, size_t max)
{
    if (n < *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 4;
    c = c < max ? c : max;
    flare__kad_rt_entry *p = flare__realloc(rt->mem, *a, c * sizeof(*p));
    if (!p)
        return FLARE_ERR_NOMEM;
    *a = p;
    *cap = c;
    return 0;
}

static long find(const flare__kad_rt_entry *e, size_t n, const flare_peerid *id)
{
    for (size_t i = 0; i < n; i++)
        if (flare_peerid_equal(&e[i].id, id))
            return (long)i;
    return -1;
}

static void drop_at(flare__kad_rt_entry *e, size_t *n, size_t i)
{
    memmove(&e[i], &e[i + 1], (*n - i - 1) * sizeof(*e));
    (*n)--;
}

static size_t group_count(const flare__kad_rt_entry *e, size_t n, uint64_t g)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += e[i].group == g;
    return c;
}

/* 1 while the table holds fewer than max peers of group g: the walk
 * reads only the non-empty buckets and stops at the limit. */
static int table_group_below(const flare__kad_rt *rt, uint64_t g, size_t max)
{
    size_t c = 0;
    for (int w = 0; w < 4; w++)
        for (uint64_t m = rt->nonempty[w]; m; m &= m - 1) {
            const flare__kad_bucket *b = rt->b[64 * w + __builtin_ctzll(m)];
            if ((c += group_count(b->e, b->n, g)) >= max)
                return 0;
        }
    return 1;
}

static int diversity_ok(const flare__kad_rt *rt, const flare__kad_bucket *b, uint64_t g)
{
    if (!g)
        return 1;
    if (rt->cfg.max_group_bucket && group_count(b->e, b->n, g) >= rt->cfg.max_group_bucket)
        return 0;
    return !rt->cfg.max_group_table || table_group_below(rt, g, rt->cfg.max_group_table);
}

/* Keeps a peer that did not fit; the oldest replacement makes room. */
static int cache(flare__kad_rt *rt, flare__kad_bucket *b, const flare__kad_rt_entry *ne)
{
    if (!rt->cfg.replacements)
        return FLARE__KAD_RT_CACHED;
    long j = find(b->r, b->nr, &ne->id);
    if (j >= 0)
        drop_at(b->r, &b->nr, (size_t)j);
    else if (b->nr == rt->cfg.replacements)
        drop_at(b->r, &b->nr, 0);
    if (room(rt, &b->r, b->nr, &b->rcap, rt->cfg.replacements))
        return FLARE_ERR_NOMEM;
    b->r[b->nr++] = *ne;
    return FLARE__KAD_RT_CACHED;
}

int flare__kad_rt_seen(flare__kad_rt *rt, const flare_peerid *id, uint64_t group, flare_tstamp now)
{
    if (!id->len || flare_peerid_equal(id, &rt->self))
        return FLARE_ERR_INVALID_ARG;
    flare__kad_rt_entry ne = {.id = *id, .group = group, .last_ok = now};
    flare__kad_key_of_peer(&ne.key, id);
    int cpl = flare__kad_cpl(&rt->self_key, &ne.key);
    flare__kad_bucket *b = bucket(rt, cpl);
    if (!b)
        return FLARE_ERR_NOMEM;
    long i = find(b->e, b->n, id);
    if (i >= 0) {
        ne.group = b->e[i].group; /* the group it was admitted with */
        drop_at(b->e, &b->n, (size_t)i);
        b->e[b->n++] = ne;
        return FLARE__KAD_RT_UPDATED;
    }
    if (!diversity_ok(rt, b, group))
        return FLARE_ERR_LIMIT;
    if (b->n == rt->cfg.k)
        return cache(rt, b, &ne);
    if (room(rt, &b->e, b->n, &b->cap, rt->cfg.k))
        return FLARE_ERR_NOMEM;
    b->e[b->n++] = ne;
    rt->size++;
    mark(rt, cpl);
    return FLARE__KAD_RT_ADDED;
}

/* The newest replacement that still passes the diversity limits. */
static void refill(flare__kad_rt *rt, flare__kad_bucket *b)
{
    while (b->nr) {
        flare__kad_rt_entry e = b->r[--b->nr];
        if (diversity_ok(rt, b, e.group)) {
            memmove(&b->e[1], &b->e[0], b->n * sizeof(*b->e)); /* least recently seen */
            b->e[0] = e;
            b->n++;
            rt->size++;
            return;
        }
    }
}

int flare__kad_rt_remove(flare__kad_rt *rt, const flare_peerid *id)
{
    flare__kad_key k;
    flare__kad_key_of_peer(&k, id);
    int cpl = flare__kad_cpl(&rt->self_key, &k);
    flare__kad_bucket *b = rt->b[cpl];
    if (!b)
        return 0;
    long j = find(b->r, b->nr, id);
    if (j >= 0)
        drop_at(b->r, &b->nr, (size_t)j);
    long i = find(b->e, b->n, id);
    if (i < 0)
        return 0;
    drop_at(b->e, &b->n, (size_t)i);
    rt->size--;
    refill(rt, b);
    mark(rt, cpl);
    return 1;
}

int flare__kad_rt_has(const flare__kad_rt *rt, const flare_peerid *id)
{
    flare__kad_key k;
    flare__kad_key_of_peer(&k, id);
    const flare__kad_bucket *b = rt->b[flare__kad_cpl(&rt->self_key, &k)];
    return b && find(b->e, b->n, id) >= 0;
}

/* The buckets in order of distance to target. Every key in bucket c shares
 * the first c bits of its distance to target with D = self ^ target and
 * differs from D at bit c, so the buckets' distances do not overlap: bucket
 * c lies before every deeper one when D has bit c set, after them when it
 * is clear. The order is then the buckets whose bit of D is set, shallow
 * first, then the others, deep first. Returns the count written to order. */
static size_t bucket_order(const flare__kad_rt *rt, const flare__kad_key *target,
                           uint16_t order[FLARE__KAD_BUCKETS])
{
    size_t n = 0;
    uint64_t d[4];
    for (int w = 0; w < 4; w++)
        d[w] = word(&rt->self_key, w) ^ word(target, w); /* bit c of D is bit 63 - c % 64 */
    /* The non-empty buckets (no bucket is read), by bit c of D: set ones
     * shallow first, then clear ones deep first. */
    for (int w = 0; w < 4; w++) {
        for (uint64_t m = rt->nonempty[w]; m; m &= m - 1) {
            int c = 64 * w + __builtin_ctzll(m);
            if (d[w] >> (63 - c % 64) & 1)
                order[n++] = (uint16_t)c;
        }
    }
    for (int w = 3; w >= 0; w--) {
        for (uint64_t m = rt->nonempty[w]; m; m &= ~(1ull << (63 - __builtin_clzll(m)))) {
            int c = 64 * w + 63 - __builtin_clzll(m);
            if (!(d[w] >> (63 - c % 64) & 1))
                order[n++] = (uint16_t)c;
        }
    }
    /* Bucket 256 (our own key) is always empty: seen refuses us. */
    return n;
}

/* Inserts e, whose distance to target starts with the word d, into the
 * sorted best[from..*nb) holding at most n, keeping equal distances in
 * arrival order (as the table order). top[i - from] is the first word of
 * best[i]'s distance: most comparisons end there, without the keys. */
static void insert_bounded(const flare__kad_key *target, const flare__kad_rt_entry *e, uint64_t d,
                           const flare__kad_rt_entry **best, uint64_t *top, size_t from, size_t *nb,
                           size_t n)
{
    size_t pos = *nb;
    while (pos > from) {
        uint64_t p = top[pos - 1 - from];
        if (d > p || (d == p && flare__kad_dist_cmp(target, &e->key, &best[pos - 1]->key) >= 0))
            break;
        pos--;
    }
    if (pos >= n)
        return;
    size_t last = *nb < n ? *nb : n - 1;
    memmove(&best[pos + 1], &best[pos], (last - pos) * sizeof(*best));
    memmove(&top[pos + 1 - from], &top[pos - from], (last - pos) * sizeof(*top));
    best[pos] = e;
    top[pos - from] = d;
    if (*nb < n)
        (*nb)++;
}

size_t flare__kad_rt_closest_entries(const flare__kad_rt *rt, const flare__kad_key *target,
                                     const flare__kad_rt_entry **best, size_t n)
{
    uint16_t order[FLARE__KAD_BUCKETS];
    size_t nbk = bucket_order(rt, target, order), nb = 0;
    uint64_t t0 = word(target, 0);
    /* Whole buckets in order; each is sorted on its own (they never mix),
     * and the last one only as far as it fits. */
    for (size_t i = 0; i < nbk && nb < n; i++) {
        const flare__kad_bucket *b = rt->b[order[i]];
        size_t from = nb;
        uint64_t stacktop[64], *top = stacktop;
        if (b->n > 64 && !(top = flare__calloc(rt->mem, b->n, sizeof(*top))))
            return nb; /* only with a k over 64, and out of memory */
        for (size_t j = 0; j < b->n; j++)
            insert_bounded(target, &b->e[j], word(&b->e[j].key, 0) ^ t0, best, top, from, &nb, n);
        if (top != stacktop)
            flare__free(rt->mem, top);
    }
    return nb;
}

size_t flare__kad_rt_closest(const flare__kad_rt *rt, const flare__kad_key *target,
                             flare_peerid *out, size_t n)
{
    if (!n)
        return 0;
    const flare__kad_rt_entry *stackbest[64];
    const flare__kad_rt_entry **best = stackbest;
    if (n > 64) {
        best = flare__calloc(rt->mem, n, sizeof(*best));
        if (!best)
            n = 64, best = stackbest;
    }
    size_t nb = flare__kad_rt_closest_entries(rt, target, best, n);
    for (size_t i = 0; i < nb; i++) { /* the ID's bytes, not the whole slot */
        out[i].len = best[i]->id.len;
        memcpy(out[i].bytes, best[i]->id.bytes, best[i]->id.len);
    }
    if (best != stackbest)
        flare__free(rt->mem, best);
    return nb;
}

int flare__kad_rt_max_cpl(const flare__kad_rt *rt)
{
    for (int i = FLARE__KAD_BUCKETS - 1; i >= 0; i--)
        if (rt->b[i] && rt->b[i]->n)
            return i;
    return -1;
}

const flare__kad_rt_entry *flare__kad_rt_at(const flare__kad_rt *rt, size_t i)
{
    for (size_t j = 0; j < FLARE__KAD_BUCKETS; j++) {
        if (!rt->b[j])
            continue;
        if (i < rt->b[j]->n)
            return &rt->b[j]->e[i];
        i -= rt->b[j]->n;
    }
    return NULL;
}
