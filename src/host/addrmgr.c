/*
 * The address manager: observed addresses -> external addresses and the NAT
 * mapping type. The rules are documented in include/flare/addrmgr.h.
 *
 * State is a flat array of observations, one per (observer, local socket),
 * and an index over it (see "the index" below) that keeps the derived
 * counts (observer groups per address and per socket, NAT votes) current as
 * observations come and go. A busy node hears an observation on every new
 * connection: recounting all of them each time was quadratic per node and
 * showed in profiles of large simulations.
 */
#include <string.h>

#include <sodium.h>

#include "core/hash.h"
#include "core/mem.h"
#include "flare/addrmgr.h"

#define DEFAULT_THRESHOLD 2
#define DEFAULT_TTL       (10 * 60 * FLARE_NS_PER_S)
#define DEFAULT_MAX_OBS   256
#define DEFAULT_V4_BITS   16
#define DEFAULT_V6_BITS   56

/* Observation indexes are 16 bits (max_observations is at most MAX_OBS):
 * the index then costs what the scratch arrays of a full recount did. */
typedef uint16_t ix;
#define NONE    0xffffu
#define MAX_OBS 0xfffeu

/* An observer is known by a 128-bit BLAKE2b digest of its peer ID (up to
 * 64 bytes): finding two IDs with one digest, so that one observer's report
 * replaces another's, takes ~2^64 work. */
#define OBSERVER_LEN 16

typedef struct obs {
    uint8_t observer[OBSERVER_LEN];
    uint8_t group[16]; /* observer IP masked to its group prefix */
    uint8_t group_family;
    uint8_t eligible; /* inbound or port reuse: vouches for a listen address */
    uint8_t active;   /* its connection is open */
    uint16_t proto;   /* FLARE_MA_TCP or FLARE_MA_UDP */
    flare_ipaddr local;
    flare_ipaddr seen;
    flare_tstamp last; /* last report, or the close */
    /* Hashes of the fields above, fixed when the observation is made:
     * the index combines them instead of rehashing the fields. */
    uint32_t h_group, h_sock, h_seen, h_observer;
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
    ix rep; /* its lowest-index observation */
    ix groups;
    uint8_t confirmed;
    flare_tstamp last;
} agg;

/* NAT votes, indexed [family 4->0, 6->1][proto any->0, tcp->1, udp->2]. */
typedef struct nat_votes {
    unsigned none[2][3], eim[2][3], edm[2][3];
} nat_votes;

/* The relations the index keeps classes of (see eq_by for the fields). */
enum {
    T_KEY,
    T_KEY_GROUP,
    T_SOCK,
    T_SOCK_GROUP,
    T_SOCK_SEEN,
    T_SOCK_SEEN_GROUP,
    T_FP_GROUP,
    T_SOCK_OBSERVER, /* one observation each: finds a report's predecessor */
    NT
};

/* A hash table slot: a representative's index (NONE = free) in the low 16
 * bits, the top 16 bits of its class hash above: a probe passes a slot of
 * another class without reading that observation (a cache miss each in a
 * large simulation; a new socket starts a class in most tables). */
typedef uint32_t slot;
#define SLOT_IX(v)   ((ix)((v)&0xffffu))
#define SLOT(i, tag) ((slot)(i) | (slot)(tag) << 16)
#define SLOT_FREE    SLOT(NONE, 0xffffu)

/* Counters of a class, stored at its representative's index. */
typedef struct cls {
    ix total;      /* T_SOCK: distinct observer groups */
    ix top;        /* T_SOCK: groups behind its most common external address */
    ix cnt;        /* T_SOCK_SEEN: distinct observer groups */
    ix agg;        /* T_KEY: its aggregate in m->agg */
    uint8_t local; /* T_SOCK: every observer sees the local address */
} cls;

struct flare_addrmgr {
    const flare_mem *mem;
    flare_addrmgr_settings s;
    listen_ent *listen; /* nlisten, at their number (a multiaddr is 400 bytes) */
    size_t nlisten;
    obs *obs;
    size_t nobs;
    size_t cap; /* of obs and the index arrays: grows to max_observations */
    /* The index (all observations are in it between calls). */
    agg *agg; /* one per T_KEY class, unordered */
    size_t nagg;
    ix *order; /* the eligible aggregates in output order */
    size_t norder;
    int sorted; /* order and confirmed match the counts */
    cls *cls;
    ix *id[NT];    /* each observation's class representative */
    slot *tab[NT]; /* hash tables of representatives, see slot */
    size_t tsize;  /* more than cap: never full (at most 80 %) */
    nat_votes votes;
    unsigned egroups[2][3]; /* eligible observer groups, see eligible_groups */
    flare_tstamp next_exp;  /* flare_addrmgr_expiry */
    uint64_t version;
    uint64_t fingerprint;
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

/* The fields observations are compared by (combined in what_of). */
enum { K_GROUP = 1, K_SOCKET = 2, K_SEEN = 4, K_KEY = 8, K_FP = 16, K_OBSERVER = 32 };

static uint32_t fold(uint64_t h)
{
    return (uint32_t)(h ^ (h >> 32));
}

static void observer_digest(uint8_t out[OBSERVER_LEN], const flare_peerid *p)
{
    crypto_generichash(out, OBSERVER_LEN, p->bytes, p->len, NULL, 0);
}

/* The component hashes of o (equal fields give equal hashes; see eq_by). */
static void obs_hash(obs *o)
{
    o->h_observer = fold(flare__hash_words(0, o->observer, OBSERVER_LEN));
    const uint64_t seed = 0xcbf29ce484222325ULL;
    o->h_group =
        fold(flare__hash_words(flare__hash_words(seed, &o->group_family, 1), o->group, 16));
    uint64_t pf = flare__hash_words(flare__hash_words(seed, &o->proto, 2), &o->local.family, 1);
    o->h_sock = fold(flare__hash_words(flare__hash_words(pf, o->local.ip, 16), &o->local.port, 2));
    o->h_seen = fold(flare__hash_words(flare__hash_words(seed, o->seen.ip, 16), &o->seen.port, 2));
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
        h = comb(h, (uint64_t)o->proto | (uint64_t)o->local.family << 16 |
                        (uint64_t)o->eligible << 24 | (uint64_t)o->local.port << 32);
    if (what & K_FP)
        h = comb(h, (uint64_t)o->proto | (uint64_t)o->local.family << 16 |
                        (uint64_t)o->eligible << 24);
    if (what & K_OBSERVER)
        h = comb(h, o->h_observer);
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
    if ((what & K_OBSERVER) &&
        (a->h_observer != b->h_observer || memcmp(a->observer, b->observer, OBSERVER_LEN) != 0))
        return 0;
    return 1;
}

/* --- the index ---
 *
 * For each relation in what_of, a hash table of its classes. A class is
 * named by its lowest-index member, its representative (rep), which is what
 * a pass over the array in index order would pick: ties in the output order
 * fall to the lowest index, as they always have. Adding an observation
 * costs a lookup per relation; removing one scans the array only when it
 * was a representative (for the next member) or when a maximum it held
 * must be found again. */

static const unsigned what_of[NT] = {
    [T_KEY] = K_KEY,
    [T_KEY_GROUP] = K_KEY | K_GROUP,
    [T_SOCK] = K_SOCKET,
    [T_SOCK_GROUP] = K_SOCKET | K_GROUP,
    [T_SOCK_SEEN] = K_SOCKET | K_SEEN,
    [T_SOCK_SEEN_GROUP] = K_SOCKET | K_SEEN | K_GROUP,
    [T_FP_GROUP] = K_FP | K_GROUP,
    [T_SOCK_OBSERVER] = K_SOCKET | K_OBSERVER,
};

static size_t home_of(const flare_addrmgr *m, uint64_t h)
{
    return (size_t)(((h & 0xffffffffu) * m->tsize) >> 32);
}

static uint16_t tag_of(uint64_t h)
{
    return (uint16_t)(h >> 48);
}

static size_t home_slot(const flare_addrmgr *m, int t, const obs *o)
{
    return home_of(m, hash_by(o, what_of[t]));
}

static size_t next_slot(const flare_addrmgr *m, size_t s)
{
    return s + 1 == m->tsize ? 0 : s + 1;
}

/* How far slot b is after slot a, going round. */
static size_t slot_dist(const flare_addrmgr *m, size_t a, size_t b)
{
    return b >= a ? b - a : b + m->tsize - a;
}

/* The representative of i's class in relation t; *fresh when i starts it. */
static ix idx_join(flare_addrmgr *m, int t, ix i, int *fresh)
{
    slot *tab = m->tab[t];
    const obs *o = &m->obs[i];
    uint64_t h = hash_by(o, what_of[t]);
    uint16_t tag = tag_of(h);
    for (size_t s = home_of(m, h);; s = next_slot(m, s)) {
        ix j = SLOT_IX(tab[s]);
        if (j == NONE) {
            tab[s] = SLOT(i, tag);
            *fresh = 1;
            return i;
        }
        if (tab[s] >> 16 == tag && eq_by(&m->obs[j], o, what_of[t])) {
            *fresh = 0;
            return j;
        }
    }
}

/* The representative of probe's class in relation t, or NONE. */
static ix idx_find(const flare_addrmgr *m, int t, const obs *probe)
{
    uint64_t h = hash_by(probe, what_of[t]);
    uint16_t tag = tag_of(h);
    for (size_t s = home_of(m, h);; s = next_slot(m, s)) {
        ix j = SLOT_IX(m->tab[t][s]);
        if (j == NONE || (m->tab[t][s] >> 16 == tag && eq_by(&m->obs[j], probe, what_of[t])))
            return j;
    }
}

static size_t slot_of(const flare_addrmgr *m, int t, ix rep)
{
    size_t s = home_slot(m, t, &m->obs[rep]);
    while (SLOT_IX(m->tab[t][s]) != rep)
        s = next_slot(m, s);
    return s;
}

/* Removes rep's class from table t (linear probing: the entries after the
 * hole that may move back into it do). */
static void tab_delete(flare_addrmgr *m, int t, ix rep)
{
    size_t s = slot_of(m, t, rep);
    slot *tab = m->tab[t];
    tab[s] = SLOT_FREE;
    for (size_t j = next_slot(m, s); SLOT_IX(tab[j]) != NONE; j = next_slot(m, j)) {
        size_t home = home_slot(m, t, &m->obs[SLOT_IX(tab[j])]);
        if (slot_dist(m, home, j) >= slot_dist(m, s, j)) {
            tab[s] = tab[j];
            tab[j] = SLOT_FREE;
            s = j;
        }
    }
}

/* Class `from` of relation t is named `to` from now on. */
static void relabel(flare_addrmgr *m, int t, ix from, ix to)
{
    slot *sl = &m->tab[t][slot_of(m, t, from)]; /* one class: the tag stays */
    *sl = SLOT(to, *sl >> 16);
    for (size_t j = 0; j < m->nobs; j++)
        if (m->id[t][j] == from)
            m->id[t][j] = to;
    cls *a = &m->cls[from], *b = &m->cls[to];
    if (t == T_SOCK) {
        b->total = a->total;
        b->top = a->top;
        b->local = a->local;
    } else if (t == T_SOCK_SEEN) {
        b->cnt = a->cnt;
    } else if (t == T_KEY) {
        b->agg = a->agg;
        m->agg[b->agg].rep = to;
        m->sorted = 0;
    }
}

/* Adds or (d = -1) takes back the vote of socket class s: none, EIM, EDM
 * or nothing (see the header). */
static void tally(flare_addrmgr *m, ix s, unsigned d)
{
    const cls *c = &m->cls[s];
    if (!c->local && c->total < 2)
        return;
    int eim = c->top == c->total || (c->total >= 3 && 2 * c->top > c->total);
    unsigned(*tab)[3] = c->local ? m->votes.none : eim ? m->votes.eim : m->votes.edm;
    int f = fam_idx(m->obs[s].local.family), p = proto_idx(m->obs[s].proto);
    tab[f][0] += d;
    tab[f][p] += d;
}

/* The groups behind socket s's most common external address. */
static ix sock_top(const flare_addrmgr *m, ix s)
{
    ix top = 0;
    for (size_t j = 0; j < m->nobs; j++)
        if (m->id[T_SOCK][j] == s && m->id[T_SOCK_SEEN][j] == j && m->cls[j].cnt > top)
            top = m->cls[j].cnt;
    return top;
}

static uint8_t sock_local(const flare_addrmgr *m, ix s)
{
    for (size_t j = 0; j < m->nobs; j++)
        if (m->id[T_SOCK][j] == s && !flare_ipaddr_equal(&m->obs[j].seen, &m->obs[j].local))
            return 0;
    return 1;
}

static flare_tstamp key_last(const flare_addrmgr *m, ix k)
{
    flare_tstamp last = 0;
    for (size_t j = 0; j < m->nobs; j++)
        if (m->id[T_KEY][j] == k && m->obs[j].last > last)
            last = m->obs[j].last;
    return last;
}

/* Indexes observation i (its slot is in the array and in no class). */
static void idx_add(flare_addrmgr *m, ix i)
{
    const obs *o = &m->obs[i];
    ix r[NT];
    int fresh[NT];
    for (int t = 0; t < NT; t++) {
        r[t] = idx_join(m, t, i, &fresh[t]);
        if (r[t] > i) { /* i comes first: it names the class now */
            relabel(m, t, r[t], i);
            r[t] = i;
        }
        m->id[t][i] = r[t];
    }
    ix s = r[T_SOCK], ss = r[T_SOCK_SEEN], k = r[T_KEY];
    cls *c = &m->cls[s];
    if (fresh[T_SOCK]) {
        c->total = c->top = 0;
        c->local = 1;
    } else {
        tally(m, s, (unsigned)-1);
    }
    c->total = (ix)(c->total + fresh[T_SOCK_GROUP]);
    if (fresh[T_SOCK_SEEN])
        m->cls[ss].cnt = 0;
    if (fresh[T_SOCK_SEEN_GROUP] && ++m->cls[ss].cnt > c->top)
        c->top = m->cls[ss].cnt;
    if (!flare_ipaddr_equal(&o->seen, &o->local))
        c->local = 0;
    tally(m, s, 1);
    if (fresh[T_FP_GROUP] && o->eligible)
        m->egroups[fam_idx(o->local.family)][proto_idx(o->proto)]++;
    if (fresh[T_KEY]) {
        m->cls[k].agg = (ix)m->nagg;
        m->agg[m->nagg] = (agg){.rep = k};
        if (o->eligible) /* only they are candidates for an address */
            m->order[m->norder++] = (ix)m->nagg;
        m->nagg++;
    }
    agg *a = &m->agg[m->cls[k].agg];
    a->groups = (ix)(a->groups + fresh[T_KEY_GROUP]);
    if (o->last > a->last)
        a->last = o->last;
    m->sorted = 0;
}

static void agg_drop(flare_addrmgr *m, ix a)
{
    for (size_t k = 0; k < m->norder; k++) {
        if (m->order[k] == a) {
            memmove(&m->order[k], &m->order[k + 1], (m->norder - k - 1) * sizeof(m->order[0]));
            m->norder--;
            break;
        }
    }
    ix last = (ix)--m->nagg;
    if (a == last)
        return;
    m->agg[a] = m->agg[last];
    m->cls[m->agg[a].rep].agg = a;
    for (size_t k = 0; k < m->norder; k++)
        if (m->order[k] == last)
            m->order[k] = a;
}

/* Takes observation i out of the index (its slot keeps its contents). */
static void idx_remove(flare_addrmgr *m, ix i)
{
    const obs *o = &m->obs[i];
    ix r[NT];
    int gone[NT];
    ix a = m->cls[m->id[T_KEY][i]].agg;
    tally(m, m->id[T_SOCK][i], (unsigned)-1);
    for (int t = 0; t < NT; t++) {
        r[t] = m->id[t][i];
        gone[t] = 0;
        if (r[t] != i)
            continue;
        size_t j = i + 1; /* the other members all come later */
        while (j < m->nobs && m->id[t][j] != i)
            j++;
        if (j < m->nobs) {
            relabel(m, t, i, (ix)j);
            r[t] = (ix)j;
        } else {
            tab_delete(m, t, i);
            gone[t] = 1;
        }
    }
    for (int t = 0; t < NT; t++)
        m->id[t][i] = NONE;
    ix s = r[T_SOCK];
    if (!gone[T_SOCK]) {
        cls *c = &m->cls[s];
        c->total = (ix)(c->total - gone[T_SOCK_GROUP]);
        if (gone[T_SOCK_SEEN_GROUP]) {
            if (!gone[T_SOCK_SEEN])
                m->cls[r[T_SOCK_SEEN]].cnt--;
            c->top = sock_top(m, s);
        }
        if (!c->local)
            c->local = sock_local(m, s);
        tally(m, s, 1);
    }
    if (gone[T_FP_GROUP] && o->eligible)
        m->egroups[fam_idx(o->local.family)][proto_idx(o->proto)]--;
    if (gone[T_KEY]) {
        agg_drop(m, a);
    } else {
        m->agg[a].groups = (ix)(m->agg[a].groups - gone[T_KEY_GROUP]);
        if (o->last >= m->agg[a].last)
            m->agg[a].last = key_last(m, r[T_KEY]);
    }
    m->sorted = 0;
}

/* Observation i's time changed from old (its classes stay). */
static void idx_last_changed(flare_addrmgr *m, ix i, flare_tstamp old)
{
    agg *a = &m->agg[m->cls[m->id[T_KEY][i]].agg];
    flare_tstamp t = m->obs[i].last;
    if (t > a->last)
        a->last = t;
    else if (t < old && old == a->last)
        a->last = key_last(m, m->id[T_KEY][i]);
    else
        return;
    m->sorted = 0;
}

/* Indexes the array from scratch (after it was compacted or moved). */
static void idx_rebuild(flare_addrmgr *m)
{
    for (int t = 0; t < NT; t++) {
        memset(m->tab[t], 0xff, m->tsize * sizeof(slot));
        memset(m->id[t], 0xff, m->cap * sizeof(ix));
    }
    m->nagg = m->norder = 0;
    memset(&m->votes, 0, sizeof(m->votes));
    memset(m->egroups, 0, sizeof(m->egroups));
    for (size_t i = 0; i < m->nobs; i++)
        idx_add(m, (ix)i);
    m->sorted = 0;
}

static flare_tstamp obs_expiry(const flare_addrmgr *m, const obs *o)
{
    if (o->active)
        return FLARE_TSTAMP_NEVER;
    return o->last > FLARE_TSTAMP_NEVER - m->s.ttl ? FLARE_TSTAMP_NEVER : o->last + m->s.ttl;
}

static void update_expiry(flare_addrmgr *m)
{
    flare_tstamp t = FLARE_TSTAMP_NEVER;
    for (size_t i = 0; i < m->nobs; i++) {
        flare_tstamp e = obs_expiry(m, &m->obs[i]);
        t = e < t ? e : t;
    }
    m->next_exp = t;
}

/* --- derived state --- */

static void expire(flare_addrmgr *m, flare_tstamp now)
{
    if (now < m->next_exp)
        return; /* nothing is due: most calls */
    size_t w = 0;
    for (size_t i = 0; i < m->nobs; i++) {
        if (!is_live(&m->obs[i], m->s.ttl, now))
            continue;
        if (w != i)
            m->obs[w] = m->obs[i];
        w++;
    }
    if (w != m->nobs) {
        m->nobs = w;
        idx_rebuild(m);
    }
    update_expiry(m);
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

/* Observer groups needed to confirm an address of (family, proto): the
 * configured threshold, or fewer while fewer groups could vouch (egroups). */
static unsigned threshold(const flare_addrmgr *m, const nat_votes *v, int family, int proto)
{
    unsigned cfg = m->s.activation_threshold;
    int f = fam_idx(family), p = proto_idx(proto);
    if (decide(v, f, p) == FLARE_NAT_ENDPOINT_DEPENDENT)
        return cfg;
    unsigned g = m->egroups[f][p] < 1 ? 1 : m->egroups[f][p];
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

/* Expires, then brings the confirmed marks and the output order up to date
 * with the counts. The order is a total one (ties go to the lowest index),
 * so sorting what is nearly sorted gives what sorting from scratch would. */
static void build(flare_addrmgr *m, flare_tstamp now, nat_votes *v)
{
    expire(m, now);
    *v = m->votes;
    if (m->sorted)
        return;
    for (size_t k = 0; k < m->norder; k++) {
        agg *a = &m->agg[m->order[k]];
        const obs *o = &m->obs[a->rep];
        a->confirmed = a->groups >= threshold(m, v, o->local.family, o->proto);
    }
    for (size_t i = 1; i < m->norder; i++) {
        ix x = m->order[i];
        size_t j = i;
        for (; j > 0 && agg_order(m, &m->agg[x], &m->agg[m->order[j - 1]]); j--)
            m->order[j] = m->order[j - 1];
        m->order[j] = x;
    }
    m->sorted = 1;
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
    for (size_t k = 0; k < m->norder; k++) {
        const agg *a = &m->agg[m->order[k]];
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
        s->max_observations > MAX_OBS)
        return FLARE_ERR_INVALID_ARG;
    *d = *s;
    return 0;
}

/* Doubles the arrays (from 8) up to max_observations: a host that hears
 * from few observers, as most in a large network, stays small. The index
 * is rebuilt in the new arrays; the observations are kept. */
static int grow(flare_addrmgr *m)
{
    size_t max = m->s.max_observations, n = m->cap ? m->cap * 2 : 8;
    n = n < max ? n : max;
    size_t tsize = n + n / 4 + 1;
    obs *o = flare__calloc(m->mem, n, sizeof(*o));
    agg *a = flare__calloc(m->mem, n, sizeof(*a));
    ix *order = flare__calloc(m->mem, n, sizeof(*order));
    cls *c = flare__calloc(m->mem, n, sizeof(*c));
    ix *ids = flare__calloc(m->mem, NT * n, sizeof(*ids));
    slot *tabs = flare__calloc(m->mem, NT * tsize, sizeof(*tabs));
    if (!o || !a || !order || !c || !ids || !tabs) {
        flare__free(m->mem, o);
        flare__free(m->mem, a);
        flare__free(m->mem, order);
        flare__free(m->mem, c);
        flare__free(m->mem, ids);
        flare__free(m->mem, tabs);
        return FLARE_ERR_NOMEM;
    }
    if (m->nobs)
        memcpy(o, m->obs, m->nobs * sizeof(*o));
    flare__free(m->mem, m->obs);
    flare__free(m->mem, m->agg);
    flare__free(m->mem, m->order);
    flare__free(m->mem, m->cls);
    flare__free(m->mem, m->id[0]);
    flare__free(m->mem, m->tab[0]);
    m->obs = o;
    m->agg = a;
    m->order = order;
    m->cls = c;
    for (size_t t = 0; t < NT; t++) {
        m->id[t] = ids + t * n;
        m->tab[t] = tabs + t * tsize;
    }
    m->cap = n;
    m->tsize = tsize;
    idx_rebuild(m);
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
    m->next_exp = FLARE_TSTAMP_NEVER;
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
    flare__free(m->mem, m->order);
    flare__free(m->mem, m->cls);
    flare__free(m->mem, m->id[0]);
    flare__free(m->mem, m->tab[0]);
    flare__free(m->mem, m->listen);
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
    listen_ent *nl = flare__realloc(m->mem, m->listen, (m->nlisten + 1) * sizeof(*nl));
    if (!nl)
        return FLARE_ERR_NOMEM;
    m->listen = nl;
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
        if (--m->nlisten == 0) {
            flare__free(m->mem, m->listen);
            m->listen = NULL;
        }
        refresh(m, m->now);
        return 0;
    }
    return FLARE_ERR_NOT_FOUND;
}

/* --- observations --- */

/* Frees a slot when full: the observation supporting the fewest observer
 * groups goes first (so floods of one-off addresses cannot displace a
 * confirmed one), preferring closed connections, then the oldest. The last
 * observation moves into its slot. */
static void evict_one(flare_addrmgr *m)
{
    size_t victim = 0;
    ix gv = m->agg[m->cls[m->id[T_KEY][0]].agg].groups;
    for (size_t i = 1; i < m->nobs; i++) {
        const obs *a = &m->obs[i], *b = &m->obs[victim];
        ix ga = m->agg[m->cls[m->id[T_KEY][i]].agg].groups;
        if (ga != gv ? ga < gv : a->active != b->active ? a->active < b->active : a->last < b->last)
            victim = i, gv = ga;
    }
    int inactive = !m->obs[victim].active;
    size_t last = m->nobs - 1;
    idx_remove(m, (ix)victim);
    if (victim != last) {
        idx_remove(m, (ix)last);
        m->obs[victim] = m->obs[last];
    }
    m->nobs--;
    if (victim != last)
        idx_add(m, (ix)victim);
    if (inactive)
        update_expiry(m);
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
    observer_digest(o.observer, observer);
    o.active = 1;
    o.last = now;
    obs_hash(&o);
    expire(m, now);
    ix found = idx_find(m, T_SOCK_OBSERVER, &o);
    size_t i = found == NONE ? m->nobs : found;
    if (i < m->nobs) {
        obs *old = &m->obs[i];
        int was_closed = !old->active;
        if (old->eligible == o.eligible && same_group(old, &o) &&
            flare_ipaddr_equal(&old->seen, &o.seen)) {
            /* The same report again: only its time changes. */
            flare_tstamp prev = old->last;
            *old = o;
            idx_last_changed(m, (ix)i, prev);
        } else {
            idx_remove(m, (ix)i);
            m->obs[i] = o;
            idx_add(m, (ix)i);
        }
        if (was_closed)
            update_expiry(m);
    } else {
        /* Full (or no memory to grow): make room as at the bound. */
        if (m->nobs == m->cap && (m->cap == m->s.max_observations || grow(m) < 0))
            evict_one(m);
        i = m->nobs++;
        m->obs[i] = o;
        for (int t = 0; t < NT; t++)
            m->id[t][i] = NONE;
        idx_add(m, (ix)i);
    }
    refresh(m, now);
    return 0;
}

/* Marks observation i closed at now; 1 if its expiry moved later. */
static int close_obs(flare_addrmgr *m, size_t i, flare_tstamp now)
{
    obs *o = &m->obs[i];
    if (!o->active && o->last >= now)
        return 0;
    flare_tstamp prev = o->last;
    int later = !o->active;
    o->active = 0;
    o->last = now;
    idx_last_changed(m, (ix)i, prev);
    flare_tstamp e = obs_expiry(m, o);
    m->next_exp = e < m->next_exp ? e : m->next_exp;
    return later;
}

int flare_addrmgr_conn_closed(flare_addrmgr *m, const flare_peerid *observer,
                              const flare_multiaddr *local, flare_tstamp now)
{
    if (!m || !observer)
        return FLARE_ERR_INVALID_ARG;
    obs probe;
    memset(&probe, 0, sizeof(probe));
    int lproto = 0;
    if (local && flare_multiaddr_to_ipaddr(local, &probe.local, &lproto) < 0)
        return 0; /* never recorded */
    probe.proto = (uint16_t)lproto;
    observer_digest(probe.observer, observer);
    obs_hash(&probe);
    int n = 0, recount = 0;
    if (local) { /* at most one: observations are per (observer, socket) */
        ix i = idx_find(m, T_SOCK_OBSERVER, &probe);
        if (i != NONE) {
            recount = close_obs(m, i, now);
            n = 1;
        }
    } else {
        for (size_t i = 0; i < m->nobs; i++) {
            const obs *o = &m->obs[i];
            if (o->h_observer != probe.h_observer ||
                memcmp(o->observer, probe.observer, OBSERVER_LEN) != 0)
                continue;
            recount |= close_obs(m, i, now);
            n++;
        }
    }
    if (recount)
        update_expiry(m);
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
    return m ? m->next_exp : FLARE_TSTAMP_NEVER;
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
        while (k < n && memcmp(who[k]->observer, o->observer, OBSERVER_LEN) != 0)
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
