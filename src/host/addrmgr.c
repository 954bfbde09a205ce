/*
 * The address manager: observed addresses -> external addresses and the NAT
 * mapping type. The rules are documented in include/flare/addrmgr.h.
 *
 * State is a flat array of observations, one per (observer, local socket).
 * Everything else (addresses, counts, NAT type) is derived on demand: the
 * array is small (bounded by max_observations) and the O(n^2) passes are
 * cheaper than keeping indexes consistent under expiry and eviction.
 */
#include <string.h>

#include "core/mem.h"
#include "flare/addrmgr.h"

#define DEFAULT_THRESHOLD 2
#define DEFAULT_TTL       (10 * 60 * FLARE_NS_PER_S)
#define DEFAULT_MAX_OBS   256
#define DEFAULT_V4_BITS   16
#define DEFAULT_V6_BITS   56

typedef struct obs {
    flare_peerid observer;
    uint8_t group[16]; /* observer IP masked to its group prefix */
    uint8_t group_family;
    uint8_t eligible; /* inbound or port reuse: vouches for a listen address */
    uint8_t active;   /* its connection is open */
    uint16_t proto;   /* FLARE_MA_TCP or FLARE_MA_UDP */
    flare_ipaddr local;
    flare_ipaddr seen;
    flare_tstamp last; /* last report, or the close */
    /* Hashes of the fields above, fixed when the observation is made:
     * interning combines them instead of rehashing the fields. */
    uint32_t h_group, h_sock, h_seen, h_key;
} obs;

typedef struct listen_ent {
    flare_multiaddr ma;
    flare_ipaddr ip;
    int proto;
    size_t suffix_off; /* first byte after /ipX/../tcp|udp/.. */
} listen_ent;

/* One distinct external address candidate: (observed IP:port, transport,
 * local port), with the number of distinct observer groups behind it. */
typedef struct agg {
    uint32_t rep; /* an observation holding the key */
    uint32_t groups;
    flare_tstamp last;
    int confirmed;
} agg;

/* NAT votes, indexed [family 4->0, 6->1][proto any->0, tcp->1, udp->2]. */
typedef struct nat_votes {
    unsigned none[2][3], eim[2][3], edm[2][3];
} nat_votes;

struct flare_addrmgr {
    const flare_mem *mem;
    flare_addrmgr_settings s;
    listen_ent listen[FLARE_ADDRMGR_MAX_LISTEN];
    size_t nlisten;
    obs *obs;
    size_t nobs;
    size_t cap; /* of obs and the scratch arrays: grows to max_observations */
    agg *agg;   /* scratch, max_observations */
    size_t nagg;
    uint32_t *tmp;    /* scratch: agg index of each observation */
    uint32_t *ids[8]; /* scratch: per-observation ids and counters */
    uint32_t *table;  /* scratch hash table for intern() */
    size_t table_size;
    uint64_t version;
    uint64_t fingerprint;
    /* build()'s result (m->agg sorted, votes) stays valid until an
     * observation changes or the first inactive one expires. */
    int built;
    flare_tstamp built_until;
    nat_votes votes;
    flare_tstamp now; /* latest time passed in (for listen-address changes) */
};

/* --- small helpers --- */

static int fam_idx(int family)
{
    return family == 6 ? 1 : 0;
}

static int proto_idx(int proto)
{
    return proto == FLARE_MA_TCP ? 1 : proto == FLARE_MA_UDP ? 2 : 0;
}

static int ip_unspecified(const flare_ipaddr *ip)
{
    static const uint8_t zero[16];
    return memcmp(ip->ip, zero, ip->family == 4 ? 4 : 16) == 0;
}

static int is_live(const obs *o, flare_tstamp ttl, flare_tstamp now)
{
    /* A clock that went backwards keeps the observation alive. */
    return o->active || now < o->last || now - o->last < ttl;
}

static int same_group(const obs *a, const obs *b)
{
    return a->group_family == b->group_family && memcmp(a->group, b->group, 16) == 0;
}

static int same_socket(const obs *a, const obs *b)
{
    return a->proto == b->proto && flare_ipaddr_equal(&a->local, &b->local);
}

/* The key of an external address: what was seen, over which transport, for
 * which local port. Ephemeral observations also key on the local IP (they
 * only ever group within their own socket). */
static int same_key(const obs *a, const obs *b)
{
    if (a->eligible != b->eligible || a->proto != b->proto || a->local.port != b->local.port ||
        a->local.family != b->local.family || !flare_ipaddr_equal(&a->seen, &b->seen))
        return 0;
    return a->eligible || flare_ipaddr_same_ip(&a->local, &b->local);
}

static void mask_group(uint8_t out[16], const flare_ipaddr *ip, unsigned bits)
{
    unsigned nbytes = ip->family == 4 ? 4 : 16;
    memset(out, 0, 16);
    for (unsigned i = 0; i < nbytes && bits > 0; i++) {
        unsigned take = bits >= 8 ? 8 : bits;
        out[i] = (uint8_t)(ip->ip[i] & (uint8_t)(0xff00u >> take));
        bits -= take;
    }
}

/* Reads the leading thin waist and where the rest starts. */
static int thin_waist(const flare_multiaddr *ma, flare_ipaddr *ip, int *proto, size_t *suffix)
{
    int rv = flare_multiaddr_to_ipaddr(ma, ip, proto);
    if (rv < 0)
        return rv;
    size_t off = 0;
    flare_ma_component c;
    do {
        if (flare_multiaddr_next(ma, &off, &c) != 1)
            return FLARE_ERR_UNSUPPORTED;
    } while (c.code != FLARE_MA_TCP && c.code != FLARE_MA_UDP);
    if (suffix)
        *suffix = off;
    return 0;
}

static int listen_matches(const listen_ent *l, const flare_ipaddr *local, int proto)
{
    return l->proto == proto && l->ip.family == local->family && l->ip.port == local->port &&
           (ip_unspecified(&l->ip) || flare_ipaddr_same_ip(&l->ip, local));
}

/* 1 if local is a listen socket, 0 if we listen on its IP version and
 * transport only elsewhere, -1 if not at all. */
static int classify_local(const flare_addrmgr *m, const flare_ipaddr *local, int proto)
{
    int any = -1;
    for (size_t i = 0; i < m->nlisten; i++) {
        const listen_ent *l = &m->listen[i];
        if (listen_matches(l, local, proto))
            return 1;
        if (l->proto == proto && l->ip.family == local->family)
            any = 0;
    }
    return any;
}

/* --- derived state --- */

static void expire(flare_addrmgr *m, flare_tstamp now)
{
    size_t w = 0;
    for (size_t i = 0; i < m->nobs; i++) {
        if (!is_live(&m->obs[i], m->s.ttl, now))
            continue;
        if (w != i) /* most calls remove nothing: no copies then */
            m->obs[w] = m->obs[i];
        w++;
    }
    if (w != m->nobs)
        m->built = 0;
    m->nobs = w;
}

/* Interning: ids[i] = the first observation equal to i in the fields of
 * `what`, found through a hash table, so distinct counts are O(n). */
enum { K_GROUP = 1, K_SOCKET = 2, K_SEEN = 4, K_KEY = 8, K_FP = 16 };

/* A word at a time: interning runs over every observation several times
 * per change, so a byte-wise hash showed in profiles of busy nodes. */
static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (; n >= 8; b += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, b, 8);
        h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
        h ^= h >> 29;
    }
    if (n) {
        uint64_t w = (uint64_t)n << 56;
        memcpy(&w, b, n);
        h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
        h ^= h >> 29;
    }
    return h;
}

static uint32_t fold(uint64_t h)
{
    return (uint32_t)(h ^ (h >> 32));
}

/* The component hashes of o (equal fields give equal hashes; see eq_by). */
static void obs_hash(obs *o)
{
    const uint64_t seed = 0xcbf29ce484222325ULL;
    o->h_group = fold(mix(mix(seed, &o->group_family, 1), o->group, 16));
    uint64_t pf = mix(mix(seed, &o->proto, 2), &o->local.family, 1);
    o->h_sock = fold(mix(mix(pf, o->local.ip, 16), &o->local.port, 2));
    o->h_seen = fold(mix(mix(seed, o->seen.ip, 16), &o->seen.port, 2));
    o->h_key = fold(mix(mix(pf, &o->eligible, 1), &o->local.port, 2));
}

static uint64_t comb(uint64_t h, uint64_t x)
{
    h = (h ^ x) * 0x9e3779b97f4a7c15ULL;
    return h ^ (h >> 29);
}

static uint64_t hash_by(const obs *o, unsigned what)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    if (what & K_GROUP)
        h = comb(h, o->h_group);
    if (what & K_SOCKET)
        h = comb(h, o->h_sock);
    if (what & (K_SEEN | K_KEY))
        h = comb(h, o->h_seen);
    if (what & K_KEY)
        h = comb(h, o->h_key);
    if (what & K_FP)
        h = comb(h, (uint64_t)o->proto | (uint64_t)o->local.family << 16 |
                        (uint64_t)o->eligible << 24);
    return h ^ (h >> 32);
}

static int eq_by(const obs *a, const obs *b, unsigned what)
{
    if ((what & K_GROUP) && !same_group(a, b))
        return 0;
    if ((what & K_SOCKET) && !same_socket(a, b))
        return 0;
    if ((what & K_SEEN) && !flare_ipaddr_equal(&a->seen, &b->seen))
        return 0;
    if ((what & K_KEY) && !same_key(a, b))
        return 0;
    if ((what & K_FP) &&
        (a->proto != b->proto || a->local.family != b->local.family || a->eligible != b->eligible))
        return 0;
    return 1;
}

static void intern(flare_addrmgr *m, unsigned what, uint32_t *ids)
{
    size_t size = 16; /* at most half full, as small as that allows */
    while (size < 2 * m->nobs && size < m->table_size)
        size *= 2;
    size_t mask = size - 1;
    for (size_t i = 0; i < size; i++)
        m->table[i] = UINT32_MAX;
    for (size_t i = 0; i < m->nobs; i++) {
        size_t slot = (size_t)hash_by(&m->obs[i], what) & mask;
        for (;; slot = (slot + 1) & mask) {
            uint32_t j = m->table[slot];
            if (j == UINT32_MAX) {
                m->table[slot] = (uint32_t)i;
                ids[i] = (uint32_t)i;
                break;
            }
            if (eq_by(&m->obs[j], &m->obs[i], what)) {
                ids[i] = j;
                break;
            }
        }
    }
}

/* Groups observations by key into m->agg (eligible ones only unless all),
 * counting distinct observer groups; m->tmp[i] gets i's agg index. */
static void aggregate(flare_addrmgr *m, int all)
{
    uint32_t *kid = m->ids[0], *kg = m->ids[1];
    intern(m, K_KEY, kid);
    intern(m, K_KEY | K_GROUP, kg);
    m->nagg = 0;
    for (size_t i = 0; i < m->nobs; i++) {
        const obs *o = &m->obs[i];
        m->tmp[i] = UINT32_MAX;
        if (!all && !o->eligible)
            continue;
        if (kid[i] == i)
            m->agg[m->nagg++] = (agg){.rep = (uint32_t)i};
        uint32_t k = kid[i] == i ? (uint32_t)m->nagg - 1 : m->tmp[kid[i]];
        m->tmp[i] = k;
        m->agg[k].groups += kg[i] == i;
        if (o->last > m->agg[k].last)
            m->agg[k].last = o->last;
    }
}

/* Per local socket: groups in all (total), groups behind its most common
 * external address (top), whether all see the local address. Then each
 * socket votes: none, EIM, EDM or nothing (see the header). */
static void count_votes(flare_addrmgr *m, nat_votes *v)
{
    uint32_t *sid = m->ids[0], *sg = m->ids[1], *ss = m->ids[2], *ssg = m->ids[3];
    uint32_t *total = m->ids[4], *top = m->ids[5], *cnt = m->ids[6], *local = m->ids[7];
    intern(m, K_SOCKET, sid);
    intern(m, K_SOCKET | K_GROUP, sg);
    intern(m, K_SOCKET | K_SEEN, ss);
    intern(m, K_SOCKET | K_SEEN | K_GROUP, ssg);
    for (size_t i = 0; i < m->nobs; i++)
        total[i] = top[i] = cnt[i] = 0, local[i] = 1;
    for (size_t i = 0; i < m->nobs; i++) {
        const obs *o = &m->obs[i];
        total[sid[i]] += sg[i] == i;
        cnt[ss[i]] += ssg[i] == i;
        if (!flare_ipaddr_equal(&o->seen, &o->local))
            local[sid[i]] = 0;
    }
    for (size_t i = 0; i < m->nobs; i++)
        if (cnt[ss[i]] > top[sid[i]])
            top[sid[i]] = cnt[ss[i]];
    memset(v, 0, sizeof(*v));
    for (size_t i = 0; i < m->nobs; i++) {
        if (sid[i] != i || (!local[i] && total[i] < 2))
            continue;
        int eim = top[i] == total[i] || (total[i] >= 3 && 2 * top[i] > total[i]);
        unsigned(*tab)[3] = local[i] ? v->none : eim ? v->eim : v->edm;
        int f = fam_idx(m->obs[i].local.family), p = proto_idx(m->obs[i].proto);
        tab[f][0]++;
        tab[f][p]++;
    }
}

static flare_nat_type decide(const nat_votes *v, int f, int p)
{
    unsigned none = v->none[f][p], eim = v->eim[f][p], edm = v->edm[f][p];
    unsigned total = none + eim + edm;
    if (total == 0)
        return FLARE_NAT_UNKNOWN;
    if (2 * edm > total)
        return FLARE_NAT_ENDPOINT_DEPENDENT;
    if (2 * none > total)
        return FLARE_NAT_NONE;
    if (2 * (eim + none) > total)
        return FLARE_NAT_ENDPOINT_INDEPENDENT;
    return FLARE_NAT_UNKNOWN;
}

/* Distinct groups that could vouch for a listen address, per (family,
 * proto): inbound and port-reuse observations. */
static void eligible_groups(flare_addrmgr *m, unsigned g[2][3])
{
    uint32_t *id = m->ids[0];
    intern(m, K_FP | K_GROUP, id);
    memset(g, 0, sizeof(unsigned[2][3]));
    for (size_t i = 0; i < m->nobs; i++) {
        const obs *o = &m->obs[i];
        if (o->eligible && id[i] == i)
            g[fam_idx(o->local.family)][proto_idx(o->proto)]++;
    }
}

static unsigned threshold(const flare_addrmgr *m, const nat_votes *v, unsigned groups[2][3],
                          int family, int proto)
{
    unsigned cfg = m->s.activation_threshold;
    int f = fam_idx(family), p = proto_idx(proto);
    if (decide(v, f, p) == FLARE_NAT_ENDPOINT_DEPENDENT)
        return cfg;
    unsigned g = groups[f][p] < 1 ? 1 : groups[f][p];
    return g < cfg ? g : cfg;
}

/* Orders a before b: confirmed, more groups, more recent, then bytes. */
static int agg_before(const flare_addrmgr *m, const agg *a, const agg *b)
{
    if (a->confirmed != b->confirmed)
        return a->confirmed > b->confirmed;
    if (a->groups != b->groups)
        return a->groups > b->groups;
    if (a->last != b->last)
        return a->last > b->last;
    const obs *x = &m->obs[a->rep], *y = &m->obs[b->rep];
    int c = memcmp(x->seen.ip, y->seen.ip, 16);
    if (c != 0)
        return c < 0;
    return x->seen.port != y->seen.port ? x->seen.port < y->seen.port : x->proto < y->proto;
}

/* agg_before, ties in creation order (first observation): the order a
 * stable sort of the aggregates as aggregate() makes them gives. */
static int agg_order(const flare_addrmgr *m, const agg *a, const agg *b)
{
    if (agg_before(m, a, b))
        return 1;
    return !agg_before(m, b, a) && a->rep < b->rep;
}

/* Expires, aggregates eligible observations, marks the confirmed ones and
 * sorts m->agg into output order. */
static void build(flare_addrmgr *m, flare_tstamp now, nat_votes *v)
{
    expire(m, now);
    if (m->built && now < m->built_until) {
        *v = m->votes;
        return;
    }
    count_votes(m, v);
    unsigned groups[2][3];
    eligible_groups(m, groups);
    aggregate(m, 0);
    for (size_t k = 0; k < m->nagg; k++) {
        const obs *o = &m->obs[m->agg[k].rep];
        m->agg[k].confirmed =
            m->agg[k].groups >= threshold(m, v, groups, o->local.family, o->proto);
    }
    for (size_t i = 1; i < m->nagg; i++) {
        agg a = m->agg[i];
        size_t j = i;
        for (; j > 0 && agg_order(m, &a, &m->agg[j - 1]); j--)
            m->agg[j] = m->agg[j - 1];
        m->agg[j] = a;
    }
    m->votes = *v;
    m->built = 1;
    m->built_until = flare_addrmgr_expiry(m);
}

/* Builds the external address of agg k for listen address l: the observed
 * thin waist followed by l's suffix. */
static int expand(const flare_addrmgr *m, const agg *a, const listen_ent *l, flare_multiaddr *out)
{
    const obs *o = &m->obs[a->rep];
    if (!listen_matches(l, &o->local, o->proto))
        return 0;
    flare_multiaddr ma;
    flare_ipaddr seen = o->seen;
    uint8_t port[2] = {(uint8_t)(seen.port >> 8), (uint8_t)seen.port};
    ma.len = 0;
    if (flare_multiaddr_push(&ma, seen.family == 4 ? FLARE_MA_IP4 : FLARE_MA_IP6, seen.ip,
                             seen.family == 4 ? 4 : 16) < 0 ||
        flare_multiaddr_push(&ma, (uint64_t)o->proto, port, 2) < 0)
        return 0;
    size_t rest = l->ma.len - l->suffix_off;
    if (ma.len + rest > FLARE_MULTIADDR_MAX)
        return 0;
    memcpy(ma.bytes + ma.len, l->ma.bytes + l->suffix_off, rest);
    ma.len = (uint16_t)(ma.len + rest);
    *out = ma;
    return 1;
}

/* Walks the output in order, calling fn for each distinct address. */
typedef int (*emit_fn)(void *ctx, const flare_addrmgr_entry *e);

static void walk(flare_addrmgr *m, flare_tstamp now, int include_candidates, emit_fn fn, void *ctx,
                 nat_votes *v)
{
    build(m, now, v);
    for (size_t k = 0; k < m->nagg; k++) {
        const agg *a = &m->agg[k];
        if (!a->confirmed && !include_candidates)
            break; /* sorted: the rest are candidates */
        for (size_t l = 0; l < m->nlisten; l++) {
            flare_addrmgr_entry e;
            if (!expand(m, a, &m->listen[l], &e.addr))
                continue;
            e.observers = a->groups;
            e.confirmed = a->confirmed;
            e.last_seen = a->last;
            if (!fn(ctx, &e))
                return;
        }
    }
}

static int emit_hash(void *ctx, const flare_addrmgr_entry *e)
{
    uint64_t *h = ctx;
    for (size_t i = 0; i < e->addr.len; i++)
        *h = (*h ^ e->addr.bytes[i]) * 0x100000001b3ULL;
    *h = (*h ^ 0xff) * 0x100000001b3ULL; /* separator */
    return 1;
}

/* Recomputes the fingerprint of what the host advertises; bumps the
 * version when it changed. */
static void refresh(flare_addrmgr *m, flare_tstamp now)
{
    nat_votes v;
    if (now > m->now)
        m->now = now;
    uint64_t h = 0xcbf29ce484222325ULL;
    walk(m, now, 0, emit_hash, &h, &v);
    for (int f = 0; f < 2; f++)
        h = (h ^ (uint64_t)decide(&v, f, 0)) * 0x100000001b3ULL;
    if (h != m->fingerprint) {
        m->fingerprint = h;
        m->version++;
    }
}

/* --- lifecycle --- */

void flare_addrmgr_settings_default(flare_addrmgr_settings *s)
{
    memset(s, 0, sizeof(*s));
    s->struct_size = sizeof(*s);
    s->activation_threshold = DEFAULT_THRESHOLD;
    s->ttl = DEFAULT_TTL;
    s->max_observations = DEFAULT_MAX_OBS;
    s->v4_group_bits = DEFAULT_V4_BITS;
    s->v6_group_bits = DEFAULT_V6_BITS;
}

static int apply_settings(flare_addrmgr_settings *d, const flare_addrmgr_settings *s)
{
    flare_addrmgr_settings_default(d);
    if (!s)
        return 0;
    if (s->struct_size != sizeof(*s) || s->v4_group_bits > 32 || s->v6_group_bits > 128 ||
        !s->activation_threshold || !s->ttl || !s->max_observations ||
        s->max_observations > UINT32_MAX / 2)
        return FLARE_ERR_INVALID_ARG;
    *d = *s;
    return 0;
}

/* Doubles the arrays (from 8) up to max_observations: a host that hears
 * from few observers, as most in a large network, stays small. The scratch
 * arrays are reallocated empty; the observations are kept. */
static int grow(flare_addrmgr *m)
{
    size_t max = m->s.max_observations, n = m->cap ? m->cap * 2 : 8;
    n = n < max ? n : max;
    size_t tsize = 16;
    while (tsize < 2 * n)
        tsize *= 2;
    obs *o = flare__calloc(m->mem, n, sizeof(*o));
    agg *a = flare__calloc(m->mem, n, sizeof(*a));
    uint32_t *tmp = flare__calloc(m->mem, n, sizeof(*tmp));
    uint32_t *table = flare__calloc(m->mem, tsize, sizeof(*table));
    uint32_t *ids = flare__calloc(m->mem, 8 * n, sizeof(*ids));
    if (!o || !a || !tmp || !table || !ids) {
        flare__free(m->mem, o);
        flare__free(m->mem, a);
        flare__free(m->mem, tmp);
        flare__free(m->mem, table);
        flare__free(m->mem, ids);
        return FLARE_ERR_NOMEM;
    }
    if (m->nobs)
        memcpy(o, m->obs, m->nobs * sizeof(*o));
    flare__free(m->mem, m->obs);
    flare__free(m->mem, m->agg);
    flare__free(m->mem, m->tmp);
    flare__free(m->mem, m->table);
    flare__free(m->mem, m->ids[0]);
    m->obs = o;
    m->agg = a;
    m->tmp = tmp;
    m->table = table;
    m->table_size = tsize;
    for (size_t i = 0; i < 8; i++)
        m->ids[i] = ids + i * n;
    m->cap = n;
    m->built = 0; /* agg was dropped */
    return 0;
}

int flare_addrmgr_new(flare_addrmgr **out, const flare_addrmgr_settings *s, const flare_mem *mem)
{
    if (!out)
        return FLARE_ERR_INVALID_ARG;
    *out = NULL;
    flare_addrmgr_settings set;
    int rv = apply_settings(&set, s);
    if (rv < 0)
        return rv;
    flare_addrmgr *m = flare__calloc(mem, 1, sizeof(*m));
    if (!m)
        return FLARE_ERR_NOMEM;
    m->mem = mem;
    m->s = set;
    if (grow(m) < 0) {
        flare_addrmgr_del(m);
        return FLARE_ERR_NOMEM;
    }
    refresh(m, 0);
    m->version = 0;
    *out = m;
    return 0;
}

void flare_addrmgr_del(flare_addrmgr *m)
{
    if (!m)
        return;
    flare__free(m->mem, m->obs);
    flare__free(m->mem, m->agg);
    flare__free(m->mem, m->tmp);
    flare__free(m->mem, m->table);
    flare__free(m->mem, m->ids[0]);
    flare__free(m->mem, m);
}

/* --- listen addresses --- */

int flare_addrmgr_add_listen_addr(flare_addrmgr *m, const flare_multiaddr *ma)
{
    if (!m || !ma)
        return FLARE_ERR_INVALID_ARG;
    if (flare_multiaddr_is_relayed(ma))
        return FLARE_ERR_UNSUPPORTED;
    listen_ent l = {.ma = *ma};
    int rv = thin_waist(ma, &l.ip, &l.proto, &l.suffix_off);
    if (rv < 0)
        return rv;
    for (size_t i = 0; i < m->nlisten; i++)
        if (flare_multiaddr_equal(&m->listen[i].ma, ma))
            return FLARE_ERR_EXISTS;
    if (m->nlisten == FLARE_ADDRMGR_MAX_LISTEN)
        return FLARE_ERR_LIMIT;
    m->listen[m->nlisten++] = l;
    refresh(m, m->now);
    return 0;
}

int flare_addrmgr_remove_listen_addr(flare_addrmgr *m, const flare_multiaddr *ma)
{
    if (!m || !ma)
        return FLARE_ERR_INVALID_ARG;
    for (size_t i = 0; i < m->nlisten; i++) {
        if (!flare_multiaddr_equal(&m->listen[i].ma, ma))
            continue;
        memmove(&m->listen[i], &m->listen[i + 1], (m->nlisten - i - 1) * sizeof(m->listen[0]));
        m->nlisten--;
        refresh(m, m->now);
        return 0;
    }
    return FLARE_ERR_NOT_FOUND;
}

/* --- observations --- */

/* Frees a slot when full: the observation supporting the fewest observer
 * groups goes first (so floods of one-off addresses cannot displace a
 * confirmed one), preferring closed connections, then the oldest. */
static void evict_one(flare_addrmgr *m)
{
    aggregate(m, 1);
    size_t victim = 0;
    for (size_t i = 1; i < m->nobs; i++) {
        const obs *a = &m->obs[i], *b = &m->obs[victim];
        uint32_t ga = m->agg[m->tmp[i]].groups, gb = m->agg[m->tmp[victim]].groups;
        if (ga != gb ? ga < gb : a->active != b->active ? a->active < b->active : a->last < b->last)
            victim = i;
    }
    m->obs[victim] = m->obs[--m->nobs];
    m->built = 0;
}

/* Validates a report and fills o (all but observer and times). */
static int check_report(const flare_addrmgr *m, const flare_ipaddr *observer_ip,
                        const flare_multiaddr *local, int outbound, const flare_multiaddr *observed,
                        obs *o)
{
    if (observer_ip->family != 4 && observer_ip->family != 6)
        return FLARE_ERR_INVALID_ARG;
    if (flare_multiaddr_is_relayed(local) || flare_multiaddr_is_relayed(observed))
        return FLARE_ERR_REFUSED;
    int lproto, oproto;
    if (flare_multiaddr_to_ipaddr(local, &o->local, &lproto) < 0 ||
        flare_multiaddr_to_ipaddr(observed, &o->seen, &oproto) < 0)
        return FLARE_ERR_UNSUPPORTED;
    if (lproto != oproto || o->local.family != o->seen.family)
        return FLARE_ERR_REFUSED;
    if (!flare_ma_class_is_public(flare_multiaddr_classify(observed), m->s.doc_is_public))
        return FLARE_ERR_REFUSED;
    int where = classify_local(m, &o->local, lproto);
    if (where < 0 || (!outbound && where == 0))
        return FLARE_ERR_REFUSED;
    o->proto = (uint16_t)lproto;
    o->eligible = (uint8_t)(where == 1);
    o->group_family = observer_ip->family;
    mask_group(o->group, observer_ip,
               observer_ip->family == 4 ? m->s.v4_group_bits : m->s.v6_group_bits);
    return 0;
}

/* An open connection's observer reports what it reported before: only
 * its time changes. */
static int is_repeat(const obs *old, const obs *o)
{
    return old->active && o->last >= old->last && old->eligible == o->eligible &&
           same_group(old, o) && flare_ipaddr_equal(&old->seen, &o->seen);
}

/* Applies a repeat to the built state: the counts and votes stay, the
 * aggregate it belongs to may move up for being seen more recently. */
static void apply_repeat(flare_addrmgr *m, size_t i, flare_tstamp now)
{
    obs *o = &m->obs[i];
    o->last = now;
    if (!o->eligible)
        return; /* only eligible observations are aggregated by build() */
    for (size_t k = 0; k < m->nagg; k++) {
        if (!same_key(&m->obs[m->agg[k].rep], o))
            continue;
        if (m->agg[k].last >= now)
            return;
        agg a = m->agg[k];
        a.last = now;
        size_t j = k;
        for (; j > 0 && agg_order(m, &a, &m->agg[j - 1]); j--)
            m->agg[j] = m->agg[j - 1];
        m->agg[j] = a;
        return;
    }
}

int flare_addrmgr_observe(flare_addrmgr *m, const flare_peerid *observer,
                          const flare_ipaddr *observer_ip, const flare_multiaddr *local,
                          int outbound, const flare_multiaddr *observed, flare_tstamp now)
{
    if (!m || !observer || !observer_ip || !local || !observed || observer->len == 0)
        return FLARE_ERR_INVALID_ARG;
    obs o;
    memset(&o, 0, sizeof(o));
    int rv = check_report(m, observer_ip, local, outbound, observed, &o);
    if (rv < 0)
        return rv;
    o.observer = *observer;
    o.active = 1;
    o.last = now;
    obs_hash(&o);
    expire(m, now);
    size_t i = 0;
    while (i < m->nobs && !(m->obs[i].h_sock == o.h_sock && same_socket(&m->obs[i], &o) &&
                            flare_peerid_equal(&m->obs[i].observer, observer)))
        i++;
    if (i < m->nobs && m->built && now < m->built_until && is_repeat(&m->obs[i], &o)) {
        apply_repeat(m, i, now);
        refresh(m, now);
        return 0;
    }
    if (i == m->nobs) {
        /* Full (or no memory to grow): make room as at the bound. */
        if (m->nobs == m->cap && (m->cap == m->s.max_observations || grow(m) < 0))
            evict_one(m);
        i = m->nobs++;
    }
    m->obs[i] = o;
    m->built = 0;
    refresh(m, now);
    return 0;
}

int flare_addrmgr_conn_closed(flare_addrmgr *m, const flare_peerid *observer,
                              const flare_multiaddr *local, flare_tstamp now)
{
    if (!m || !observer)
        return FLARE_ERR_INVALID_ARG;
    flare_ipaddr lip;
    int lproto = 0;
    if (local && flare_multiaddr_to_ipaddr(local, &lip, &lproto) < 0)
        return 0; /* never recorded */
    int n = 0;
    for (size_t i = 0; i < m->nobs; i++) {
        obs *o = &m->obs[i];
        if (!flare_peerid_equal(&o->observer, observer) ||
            (local && (o->proto != lproto || !flare_ipaddr_equal(&o->local, &lip))))
            continue;
        if (o->active || o->last < now) {
            o->active = 0;
            o->last = now;
            m->built = 0;
        }
        n++;
    }
    /* No refresh: a closed observation stays live for the ttl, so what we
     * advertise is unchanged now; its expiry is the timer's (expiry()). */
    return n;
}

/* --- outputs --- */

typedef struct out_ctx {
    flare_addrmgr_entry *ent; /* or */
    flare_multiaddr *ma;
    size_t n, cap;
} out_ctx;

static int out_has(const out_ctx *c, const flare_multiaddr *ma)
{
    for (size_t i = 0; i < c->n; i++)
        if (flare_multiaddr_equal(c->ent ? &c->ent[i].addr : &c->ma[i], ma))
            return 1;
    return 0;
}

static int emit_out(void *ctx, const flare_addrmgr_entry *e)
{
    out_ctx *c = ctx;
    if (c->n == c->cap)
        return 0;
    if (out_has(c, &e->addr))
        return 1;
    if (c->ent)
        c->ent[c->n++] = *e;
    else
        c->ma[c->n++] = e->addr;
    return 1;
}

int flare_addrmgr_external(flare_addrmgr *m, flare_tstamp now, flare_multiaddr *out, size_t cap,
                           int include_candidates)
{
    if (!m || (!out && cap))
        return FLARE_ERR_INVALID_ARG;
    nat_votes v;
    out_ctx c = {.ma = out, .cap = cap};
    walk(m, now, include_candidates, emit_out, &c, &v);
    return (int)c.n;
}

int flare_addrmgr_entries(flare_addrmgr *m, flare_tstamp now, flare_addrmgr_entry *out, size_t cap)
{
    if (!m || (!out && cap))
        return FLARE_ERR_INVALID_ARG;
    nat_votes v;
    out_ctx c = {.ent = out, .cap = cap};
    walk(m, now, 1, emit_out, &c, &v);
    return (int)c.n;
}

flare_nat_type flare_addrmgr_nat_type(flare_addrmgr *m, flare_tstamp now, int family, int proto)
{
    if (!m || (family != 4 && family != 6))
        return FLARE_NAT_UNKNOWN;
    nat_votes v;
    build(m, now, &v);
    return decide(&v, fam_idx(family), proto_idx(proto));
}

const char *flare_nat_type_name(flare_nat_type t)
{
    switch (t) {
    case FLARE_NAT_NONE:
        return "none";
    case FLARE_NAT_ENDPOINT_INDEPENDENT:
        return "endpoint-independent";
    case FLARE_NAT_ENDPOINT_DEPENDENT:
        return "endpoint-dependent";
    default:
        return "unknown";
    }
}

uint64_t flare_addrmgr_version(const flare_addrmgr *m)
{
    return m ? m->version : 0;
}

flare_tstamp flare_addrmgr_expiry(const flare_addrmgr *m)
{
    flare_tstamp t = FLARE_TSTAMP_NEVER;
    if (!m)
        return t;
    for (size_t i = 0; i < m->nobs; i++) {
        const obs *o = &m->obs[i];
        if (o->active)
            continue;
        flare_tstamp e =
            o->last > FLARE_TSTAMP_NEVER - m->s.ttl ? FLARE_TSTAMP_NEVER : o->last + m->s.ttl;
        t = e < t ? e : t;
    }
    return t;
}

void flare_addrmgr_handle_expiry(flare_addrmgr *m, flare_tstamp now)
{
    if (m)
        refresh(m, now);
}

size_t flare_addrmgr_num_observations(const flare_addrmgr *m)
{
    return m ? m->nobs : 0;
}

/* The observations for port prediction: live, of proto and family, at ip,
 * one per observer (its highest port). Returns the count in ports[]. */
static size_t predict_ports(flare_addrmgr *m, flare_tstamp now, int family, int proto,
                            const flare_ipaddr *ip, uint16_t *ports, size_t cap)
{
    const obs *who[64];
    size_t n = 0;
    cap = cap < 64 ? cap : 64;
    for (size_t i = 0; i < m->nobs; i++) {
        const obs *o = &m->obs[i];
        if (!is_live(o, m->s.ttl, now) || o->proto != proto || o->seen.family != family ||
            !flare_ipaddr_same_ip(&o->seen, ip))
            continue;
        size_t k = 0;
        while (k < n && !flare_peerid_equal(&who[k]->observer, &o->observer))
            k++;
        if (k < n) {
            ports[k] = o->seen.port > ports[k] ? o->seen.port : ports[k];
        } else if (n < cap) {
            who[n] = o;
            ports[n++] = o->seen.port;
        }
    }
    return n;
}

int flare_addrmgr_port_prediction(flare_addrmgr *m, flare_tstamp now, int family, int proto,
                                  unsigned max_step, flare_ipaddr *last, unsigned *step,
                                  unsigned *observers)
{
    if (!m || !last || !step || !observers)
        return FLARE_ERR_INVALID_ARG;
    expire(m, now);
    /* The IP: the most recent live observation's (a NAT with a pool of
     * addresses predicts within one of them). */
    const obs *latest = NULL;
    for (size_t i = 0; i < m->nobs; i++) {
        const obs *o = &m->obs[i];
        if (is_live(o, m->s.ttl, now) && o->proto == proto && o->seen.family == family &&
            (!latest || o->last >= latest->last))
            latest = o;
    }
    if (!latest)
        return FLARE_ERR_NOT_FOUND;
    uint16_t ports[64];
    size_t n = predict_ports(m, now, family, proto, &latest->seen, ports, 64);
    uint16_t hi = 0;
    unsigned gap = 0;
    for (size_t i = 0; i < n; i++) {
        hi = ports[i] > hi ? ports[i] : hi;
        for (size_t j = 0; j < i; j++) {
            unsigned d = ports[i] > ports[j] ? ports[i] - ports[j] : ports[j] - ports[i];
            if (d && (!gap || d < gap))
                gap = d;
        }
    }
    *last = latest->seen;
    last->port = hi;
    *step = gap <= max_step ? gap : 0;
    *observers = (unsigned)n;
    return 0;
}
