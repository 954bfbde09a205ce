/*
 * Resource manager: counts and limits per system, IP, subnet, peer,
 * protocol, protocol x peer and connection (see rcmgr.h for the hooks and
 * docs/resource-manager.md for the limits and their defaults).
 *
 * Entries for IPs, subnets and peers exist only while something is counted
 * in them, so their number is bounded by the connection limits. Their hash
 * tables use a per-host random seed: a remote that picks its addresses
 * (an IPv6 /56 holds 2^72) cannot aim them all at one bucket.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/hash.h"
#include "core/mem.h"
#include "host/host_int.h"
#include "transport/transport.h"

/* ---- a small chained hash table ------------------------------------------------ */

typedef struct rc_node {
    struct rc_node *next;
    uint64_t hash;
} rc_node;

typedef struct rc_table {
    rc_node **b;
    size_t nb, n;
} rc_table;

static void table_grow(rc_table *t, const flare_mem *mem)
{
    size_t nb = t->nb ? t->nb * 2 : 64;
    rc_node **b = flare__calloc(mem, nb, sizeof(*b));
    if (!b)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < t->nb; i++) {
        while (t->b[i]) {
            rc_node *x = t->b[i];
            t->b[i] = x->next;
            x->next = b[x->hash & (nb - 1)];
            b[x->hash & (nb - 1)] = x;
        }
    }
    flare__free(mem, t->b);
    t->b = b;
    t->nb = nb;
}

static int table_insert(rc_table *t, rc_node *x, const flare_mem *mem)
{
    if (t->n >= 2 * t->nb)
        table_grow(t, mem);
    if (!t->nb)
        return FLARE_ERR_NOMEM;
    rc_node **slot = &t->b[x->hash & (t->nb - 1)];
    x->next = *slot;
    *slot = x;
    t->n++;
    return 0;
}

static void table_remove(rc_table *t, rc_node *x)
{
    for (rc_node **p = &t->b[x->hash & (t->nb - 1)]; *p; p = &(*p)->next) {
        if (*p == x) {
            *p = x->next;
            t->n--;
            return;
        }
    }
}

static rc_node *table_first(const rc_table *t, uint64_t hash)
{
    return t->nb ? t->b[hash & (t->nb - 1)] : NULL;
}

/* ---- scopes ------------------------------------------------------------------------- */

/* An IP address or a subnet: inbound direct connections and handshakes. */
typedef struct rc_ip {
    rc_node node;
    uint8_t family, subnet;
    uint8_t key[16];
    size_t conns, handshakes;
} rc_ip;

typedef struct rc_proto {
    uint64_t hash; /* of name */
    size_t len;    /* of name */
    size_t in, out;
    int own_limits; /* set by flare_host_set_protocol_limits: kept while idle */
    size_t lim_peer, lim_total;
    char name[];
} rc_proto;

/* One protocol's streams with one peer. */
typedef struct flare__rc_pp {
    struct flare__rc_pp *next;
    rc_proto *proto;
    size_t in, out;
} rc_pp;

/* One per connected peer: the ID ends it at its length. */
typedef struct flare__rc_peer {
    rc_node node;
    size_t conns_in, conns_out, streams_in, streams_out, mem;
    rc_pp *pps;
    uint8_t id_len;
    uint8_t id[];
} rc_peer;

struct flare__rcmgr {
    flare_host *host;
    uint64_t seed;
    rc_table ips, peers;
    /* The protocols with streams or own limits, and their hashes side by
     * side: every new stream looks its protocol up, and a list of
     * separately allocated entries was a cache miss per entry. */
    rc_proto **protos;
    uint64_t *proto_hashes;
    size_t nprotos, protos_cap;
    size_t conns_in, conns_out, handshakes, streams_in, streams_out, mem;
    uint64_t refused_conns, refused_streams, refused_mem;
};

static const flare_rcmgr_limits *lim(const flare_host *h)
{
    return &h->cfg.limits;
}

/* 1 when adding one to count would pass limit (0: no limit). */
static int full(size_t count, size_t limit)
{
    return limit && count >= limit;
}

/* The key of a's address (subnet: /24 for IPv4, /56 for IPv6); returns
 * the family it counts under: an IPv4-mapped IPv6 address (::ffff:a.b.c.d,
 * from a dual-stack socket) is the IPv4 address, or every IPv4 client
 * would share one /56. */
static int ip_key(const flare_ipaddr *a, int subnet, uint8_t key[16])
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    const uint8_t *ip = a->ip;
    int family = a->family;
    if (family == 6 && memcmp(ip, mapped, 12) == 0) {
        ip += 12;
        family = 4;
    }
    memset(key, 0, 16);
    memcpy(key, ip, family == 4 ? (subnet ? 3 : 4) : (subnet ? 7 : 16));
    return family;
}

static rc_ip *ip_find(struct flare__rcmgr *rc, int family, int subnet, const uint8_t key[16])
{
    uint8_t hk[18] = {(uint8_t)family, (uint8_t)subnet};
    memcpy(hk + 2, key, 16);
    uint64_t hash = flare__hash_words(rc->seed, hk, sizeof(hk));
    for (rc_node *x = table_first(&rc->ips, hash); x; x = x->next) {
        rc_ip *e = (rc_ip *)x;
        if (x->hash == hash && e->family == family && e->subnet == subnet &&
            memcmp(e->key, key, 16) == 0)
            return e;
    }
    return NULL;
}

static rc_ip *ip_get(struct flare__rcmgr *rc, int family, int subnet, const uint8_t key[16])
{
    rc_ip *e = ip_find(rc, family, subnet, key);
    if (e)
        return e;
    const flare_mem *mem = rc->host->mem;
    e = flare__calloc(mem, 1, sizeof(*e));
    if (!e)
        return NULL;
    e->family = (uint8_t)family;
    e->subnet = (uint8_t)subnet;
    memcpy(e->key, key, 16);
    uint8_t hk[18] = {(uint8_t)family, (uint8_t)subnet};
    memcpy(hk + 2, key, 16);
    e->node.hash = flare__hash_words(rc->seed, hk, sizeof(hk));
    if (table_insert(&rc->ips, &e->node, mem)) {
        flare__free(mem, e);
        return NULL;
    }
    return e;
}

static void ip_put(struct flare__rcmgr *rc, rc_ip *e)
{
    if (e && e->conns == 0 && e->handshakes == 0) {
        table_remove(&rc->ips, &e->node);
        flare__free(rc->host->mem, e);
    }
}

static rc_peer *peer_find(struct flare__rcmgr *rc, const flare_peerid *id)
{
    uint64_t hash = flare__hash_words(rc->seed, id->bytes, id->len);
    for (rc_node *x = table_first(&rc->peers, hash); x; x = x->next)
        if (x->hash == hash && ((rc_peer *)x)->id_len == id->len &&
            memcmp(((rc_peer *)x)->id, id->bytes, id->len) == 0)
            return (rc_peer *)x;
    return NULL;
}

static rc_peer *peer_get(struct flare__rcmgr *rc, const flare_peerid *id)
{
    rc_peer *p = peer_find(rc, id);
    if (p)
        return p;
    const flare_mem *mem = rc->host->mem;
    if (id->len > FLARE_PEERID_MAX || !(p = flare__calloc(mem, 1, sizeof(*p) + id->len)))
        return NULL;
    p->id_len = id->len;
    memcpy(p->id, id->bytes, id->len);
    p->node.hash = flare__hash_words(rc->seed, id->bytes, id->len);
    if (table_insert(&rc->peers, &p->node, mem)) {
        flare__free(mem, p);
        return NULL;
    }
    return p;
}

static void peer_put(struct flare__rcmgr *rc, rc_peer *p)
{
    if (p->conns_in || p->conns_out || p->streams_in || p->streams_out || p->mem || p->pps)
        return;
    table_remove(&rc->peers, &p->node);
    flare__free(rc->host->mem, p);
}

static uint64_t proto_hash(const char *name, size_t len)
{
    return flare__hash_words(0, (const uint8_t *)name, len);
}

static int proto_is(const rc_proto *x, const char *name, size_t len)
{
    return x->len == len && memcmp(x->name, name, len) == 0;
}

static rc_proto *proto_find(struct flare__rcmgr *rc, const char *name, size_t len, uint64_t hash)
{
    for (size_t i = 0; i < rc->nprotos; i++)
        if (rc->proto_hashes[i] == hash && proto_is(rc->protos[i], name, len))
            return rc->protos[i];
    return NULL;
}

static int proto_add(struct flare__rcmgr *rc, rc_proto *x)
{
    const flare_mem *mem = rc->host->mem;
    if (rc->nprotos == rc->protos_cap) {
        size_t n = rc->protos_cap + 8; /* the protocols in use: a handful */
        rc_proto **v = flare__realloc(mem, rc->protos, n * sizeof(*v));
        if (!v)
            return FLARE_ERR_NOMEM;
        rc->protos = v;
        uint64_t *hv = flare__realloc(mem, rc->proto_hashes, n * sizeof(*hv));
        if (!hv)
            return FLARE_ERR_NOMEM; /* protos grew: harmless */
        rc->proto_hashes = hv;
        rc->protos_cap = n;
    }
    rc->protos[rc->nprotos] = x;
    rc->proto_hashes[rc->nprotos++] = x->hash;
    return 0;
}

static void proto_remove(struct flare__rcmgr *rc, rc_proto *x)
{
    for (size_t i = 0; i < rc->nprotos; i++) {
        if (rc->protos[i] == x) {
            rc->nprotos--;
            rc->protos[i] = rc->protos[rc->nprotos];
            rc->proto_hashes[i] = rc->proto_hashes[rc->nprotos];
            return;
        }
    }
}

static rc_proto *proto_new(struct flare__rcmgr *rc, const char *name, size_t len, uint64_t hash)
{
    rc_proto *x = flare__calloc(rc->host->mem, 1, sizeof(*x) + len + 1);
    if (x) {
        x->hash = hash;
        x->len = len;
        memcpy(x->name, name, len);
    }
    return x;
}

/* ---- lifecycle ------------------------------------------------------------------ */

int flare_host_set_protocol_limits(flare_host *h, const char *protocol, size_t per_peer,
                                   size_t total)
{
    size_t n = protocol ? strlen(protocol) : 0;
    if (n == 0 || n >= FLARE_PROTOCOL_MAX)
        return FLARE_ERR_INVALID_ARG;
    struct flare__rcmgr *rc = h->rcmgr;
    uint64_t hash = proto_hash(protocol, n);
    rc_proto *x = proto_find(rc, protocol, n, hash);
    if (!x) {
        if (!(x = proto_new(rc, protocol, n, hash)))
            return FLARE_ERR_NOMEM;
        if (proto_add(rc, x)) {
            flare__free(h->mem, x);
            return FLARE_ERR_NOMEM;
        }
    }
    x->own_limits = 1;
    x->lim_peer = per_peer;
    x->lim_total = total;
    return 0;
}

int flare__rc_new(flare_host *h)
{
    struct flare__rcmgr *rc = flare__calloc(h->mem, 1, sizeof(*rc));
    if (!rc)
        return FLARE_ERR_NOMEM;
    rc->host = h;
    h->rng.fn((uint8_t *)&rc->seed, sizeof(rc->seed), h->rng.user);
    h->rcmgr = rc;
    return 0;
}

/* Called after every connection is gone: only empty tables remain. */
void flare__rc_del(flare_host *h)
{
    struct flare__rcmgr *rc = h->rcmgr;
    if (!rc)
        return;
    rc_table *ts[2] = {&rc->ips, &rc->peers};
    for (int t = 0; t < 2; t++) {
        for (size_t i = 0; i < ts[t]->nb; i++) {
            while (ts[t]->b[i]) {
                rc_node *x = ts[t]->b[i];
                ts[t]->b[i] = x->next;
                if (t == 1) {
                    while (((rc_peer *)x)->pps) {
                        rc_pp *pp = ((rc_peer *)x)->pps;
                        ((rc_peer *)x)->pps = pp->next;
                        flare__free(h->mem, pp);
                    }
                }
                flare__free(h->mem, x);
            }
        }
        flare__free(h->mem, ts[t]->b);
    }
    for (size_t i = 0; i < rc->nprotos; i++)
        flare__free(h->mem, rc->protos[i]);
    flare__free(h->mem, rc->protos);
    flare__free(h->mem, rc->proto_hashes);
    flare__free(h->mem, rc);
    h->rcmgr = NULL;
}

/* ---- connections -------------------------------------------------------------------- */

static int refuse_conn(struct flare__rcmgr *rc)
{
    rc->refused_conns++;
    return FLARE_ERR_LIMIT;
}

/* Every handshake slot is taken, by remotes each within their IP and subnet
 * limits (so from many subnets): the oldest handshake makes room. An honest
 * upgrade takes a few round trips; a slow-loris one holds its slot until
 * the handshake timeout, so it is the oldest one that is most likely
 * stalled. Returns 1 if a slot was freed. */
static int evict_handshake(flare_host *h)
{
    flare_conn *oldest = NULL;
    for (flare_conn *c = h->conns; c; c = c->next) /* newest first */
        if (c->rc.handshake && !c->close_pending)
            oldest = c;
    if (!oldest)
        return 0;
    int freed = oldest->busy == 0; /* then it is destroyed at once */
    flare__conn_fail(oldest, FLARE_ERR_LIMIT);
    return freed;
}

int flare__rc_can_accept(flare_host *h, const flare_ipaddr *remote)
{
    struct flare__rcmgr *rc = h->rcmgr;
    const flare_rcmgr_limits *l = lim(h);
    if (full(h->nconns, h->cfg.max_connections) || full(rc->conns_in, l->conns_inbound))
        return refuse_conn(rc);
    if (!remote || (remote->family != 4 && remote->family != 6))
        return 0;
    for (int subnet = 0; subnet < 2; subnet++) {
        uint8_t key[16];
        int family = ip_key(remote, subnet, key);
        rc_ip *e = ip_find(rc, family, subnet, key);
        if (!e)
            continue;
        if (full(e->conns, subnet ? l->conns_per_subnet : l->conns_per_ip) ||
            full(e->handshakes, subnet ? l->handshakes_per_subnet : l->handshakes_per_ip))
            return refuse_conn(rc);
    }
    if (full(rc->handshakes, l->handshakes) && !evict_handshake(h))
        return refuse_conn(rc);
    return 0;
}

int flare__rc_can_open(flare_host *h)
{
    struct flare__rcmgr *rc = h->rcmgr;
    if (full(h->nconns, h->cfg.max_connections) || full(rc->conns_out, lim(h)->conns_outbound))
        return refuse_conn(rc);
    return 0;
}

void flare__rc_conn_add(flare_conn *c)
{
    struct flare__rcmgr *rc = c->host->rcmgr;
    if (c->rc.counted)
        return;
    c->rc.counted = 1;
    if (c->outbound) {
        rc->conns_out++;
        return;
    }
    rc->conns_in++;
    const flare_ipaddr *a = &c->remote_ip;
    if ((c->tr_ops && (c->tr_ops->flags & FLARE__TR_SHARED_IP)) ||
        (a->family != 4 && a->family != 6))
        return;
    uint8_t key[16];
    int family = ip_key(a, 0, key);
    rc_ip *ip = ip_get(rc, family, 0, key);
    ip_key(a, 1, c->rc.subnet);
    rc_ip *sn = ip_get(rc, family, 1, c->rc.subnet);
    if (!ip || !sn) { /* no memory for the entry: not counted per IP */
        if (ip)
            ip_put(rc, ip);
        if (sn)
            ip_put(rc, sn);
        return;
    }
    ip->conns++;
    ip->handshakes++;
    sn->conns++;
    sn->handshakes++;
    rc->handshakes++;
    c->rc.in_ip = 1;
    c->rc.handshake = 1;
}

/* The IP and subnet entries of an inbound direct connection (counted). */
static void conn_ips(flare_conn *c, rc_ip **ip, rc_ip **sn)
{
    struct flare__rcmgr *rc = c->host->rcmgr;
    uint8_t key[16];
    int family = ip_key(&c->remote_ip, 0, key);
    *ip = ip_find(rc, family, 0, key);
    *sn = ip_find(rc, family, 1, c->rc.subnet);
}

static void release_handshake(flare_conn *c)
{
    if (!c->rc.handshake)
        return;
    c->rc.handshake = 0;
    c->host->rcmgr->handshakes--;
    rc_ip *ip, *sn;
    conn_ips(c, &ip, &sn);
    if (ip)
        ip->handshakes--;
    if (sn)
        sn->handshakes--;
}

int flare__rc_conn_identified(flare_conn *c)
{
    struct flare__rcmgr *rc = c->host->rcmgr;
    if (c->rc.peer)
        return 0;
    rc_peer *p = peer_get(rc, &c->peer);
    if (!p)
        return FLARE_ERR_NOMEM;
    if (full(p->conns_in + p->conns_out, c->host->cfg.max_connections_per_peer)) {
        peer_put(rc, p);
        return refuse_conn(rc);
    }
    if (c->outbound)
        p->conns_out++;
    else
        p->conns_in++;
    p->mem += c->rc.used;
    c->rc.peer = p;
    return 0;
}

void flare__rc_conn_ready(flare_conn *c)
{
    release_handshake(c);
}

void flare__rc_conn_remove(flare_conn *c)
{
    struct flare__rcmgr *rc = c->host->rcmgr;
    if (!c->rc.counted)
        return;
    release_handshake(c);
    if (c->rc.in_ip) {
        rc_ip *ip, *sn;
        conn_ips(c, &ip, &sn);
        if (ip)
            ip->conns--;
        if (sn)
            sn->conns--;
        ip_put(rc, ip);
        ip_put(rc, sn);
        c->rc.in_ip = 0;
    }
    if (c->outbound)
        rc->conns_out--;
    else
        rc->conns_in--;
    rc_peer *p = c->rc.peer;
    if (p) {
        if (c->outbound)
            p->conns_out--;
        else
            p->conns_in--;
        p->mem -= c->rc.used;
        c->rc.peer = NULL;
        peer_put(rc, p);
    }
    rc->mem -= c->rc.used;
    c->rc.used = 0;
    c->rc.counted = 0;
}

int flare__rc_conn_error(const flare_conn *c, int err)
{
    return err == FLARE_ERR_NOMEM && c->rc.refused ? FLARE_ERR_LIMIT : err;
}

/* ---- streams ---------------------------------------------------------------------- */

int flare__rc_stream_check(flare_conn *c, int inbound)
{
    flare_host *h = c->host;
    struct flare__rcmgr *rc = h->rcmgr;
    const flare_rcmgr_limits *l = lim(h);
    rc_peer *p = c->rc.peer;
    int over = full(c->nstreams, h->cfg.max_streams_per_conn);
    if (inbound)
        over = over || full(rc->streams_in, l->streams_inbound) ||
               (p && full(p->streams_in, l->streams_per_peer_inbound));
    else
        over = over || full(rc->streams_out, l->streams_outbound) ||
               (p && full(p->streams_out, l->streams_per_peer_outbound));
    if (!over)
        return 0;
    rc->refused_streams++;
    return FLARE_ERR_LIMIT;
}

void flare__rc_stream_add(flare_stream *s)
{
    struct flare__rcmgr *rc = s->conn->host->rcmgr;
    rc_peer *p = s->conn->rc.peer;
    if (s->inbound) {
        rc->streams_in++;
        if (p)
            p->streams_in++;
    } else {
        rc->streams_out++;
        if (p)
            p->streams_out++;
    }
}

static void pp_release(struct flare__rcmgr *rc, rc_peer *p, rc_pp *pp, int inbound)
{
    rc_proto *x = pp->proto;
    if (inbound) {
        pp->in--;
        x->in--;
    } else {
        pp->out--;
        x->out--;
    }
    if (pp->in == 0 && pp->out == 0) {
        for (rc_pp **q = &p->pps; *q; q = &(*q)->next) {
            if (*q == pp) {
                *q = pp->next;
                break;
            }
        }
        flare__free(rc->host->mem, pp);
    }
    if (x->in == 0 && x->out == 0 && !x->own_limits) {
        proto_remove(rc, x);
        flare__free(rc->host->mem, x);
    }
}

void flare__rc_stream_remove(flare_stream *s)
{
    struct flare__rcmgr *rc = s->conn->host->rcmgr;
    rc_peer *p = s->conn->rc.peer;
    if (s->inbound) {
        rc->streams_in--;
        if (p)
            p->streams_in--;
    } else {
        rc->streams_out--;
        if (p)
            p->streams_out--;
    }
    if (s->rc_pp && p)
        pp_release(rc, p, s->rc_pp, s->inbound);
    s->rc_pp = NULL;
}

static rc_pp *pp_get(struct flare__rcmgr *rc, rc_peer *p, const char *proto, size_t len)
{
    const flare_mem *mem = rc->host->mem;
    uint64_t hash = proto_hash(proto, len);
    for (rc_pp *pp = p->pps; pp; pp = pp->next)
        if (pp->proto->hash == hash && proto_is(pp->proto, proto, len))
            return pp;
    rc_proto *x = proto_find(rc, proto, len, hash);
    int new_proto = !x;
    if (!x && !(x = proto_new(rc, proto, len, hash)))
        return NULL;
    rc_pp *pp = flare__calloc(mem, 1, sizeof(*pp));
    if (!pp || (new_proto && proto_add(rc, x))) {
        flare__free(mem, pp);
        if (new_proto)
            flare__free(mem, x);
        return NULL;
    }
    pp->proto = x;
    pp->next = p->pps;
    p->pps = pp;
    return pp;
}

int flare__rc_stream_protocol(flare_stream *s)
{
    flare_host *h = s->conn->host;
    struct flare__rcmgr *rc = h->rcmgr;
    rc_peer *p = s->conn->rc.peer;
    if (!p || s->rc_pp || !s->protocol)
        return 0;
    rc_pp *pp = pp_get(rc, p, s->protocol, s->protocol_len);
    if (!pp)
        return FLARE_ERR_NOMEM;
    const rc_proto *x = pp->proto;
    size_t lpeer = x->own_limits ? x->lim_peer : lim(h)->streams_per_protocol_peer;
    size_t ltotal = x->own_limits ? x->lim_total : lim(h)->streams_per_protocol;
    if (s->inbound && (full(pp->in, lpeer) || full(x->in, ltotal))) {
        rc->refused_streams++;
        if (pp->in == 0 && pp->out == 0) { /* just made: release it */
            pp->in++;
            pp->proto->in++;
            pp_release(rc, p, pp, 1);
        }
        return FLARE_ERR_LIMIT;
    }
    if (s->inbound) {
        pp->in++;
        pp->proto->in++;
    } else {
        pp->out++;
        pp->proto->out++;
    }
    s->rc_pp = pp;
    return 0;
}

/* ---- memory ------------------------------------------------------------------------- */

/* Room before each block for its size, keeping the caller's alignment. */
#define HDR                                                                                        \
    ((sizeof(size_t) + _Alignof(max_align_t) - 1) / _Alignof(max_align_t) * _Alignof(max_align_t))

static size_t conn_pending(const flare_conn *c)
{
    return c->tr_ops && c->tr_ops->pending ? c->tr_ops->pending(c) : 0;
}

/* Charges n more bytes to c, its peer and the system, or refuses (-1). */
static int charge(flare_conn *c, size_t n)
{
    flare_host *h = c->host;
    struct flare__rcmgr *rc = h->rcmgr;
    const flare_rcmgr_limits *l = lim(h);
    rc_peer *p = c->rc.peer;
    if ((l->mem_per_conn &&
         (n > l->mem_per_conn || c->rc.used + conn_pending(c) > l->mem_per_conn - n)) ||
        (l->mem_per_peer && p && (n > l->mem_per_peer || p->mem > l->mem_per_peer - n)) ||
        (l->mem && (n > l->mem || rc->mem > l->mem - n))) {
        c->rc.refused = 1;
        rc->refused_mem++;
        return -1;
    }
    c->rc.used += n;
    if (p)
        p->mem += n;
    rc->mem += n;
    return 0;
}

int flare__rc_conn_tight(const flare_conn *c)
{
    const flare_rcmgr_limits *l = lim(c->host);
    const rc_peer *p = c->rc.peer;
    return (l->mem_per_conn && c->rc.used + conn_pending(c) > l->mem_per_conn / 2) ||
           (l->mem_per_peer && p && p->mem > l->mem_per_peer / 2);
}

static void uncharge(flare_conn *c, size_t n)
{
    c->rc.used -= n;
    if (c->rc.peer)
        c->rc.peer->mem -= n;
    c->host->rcmgr->mem -= n;
}

static void *cm_malloc(size_t n, void *user)
{
    flare_conn *c = user;
    if (n > SIZE_MAX - HDR || charge(c, n))
        return NULL;
    uint8_t *b = flare__malloc(c->host->mem, n + HDR);
    if (!b) {
        uncharge(c, n);
        return NULL;
    }
    memcpy(b, &n, sizeof(n));
    return b + HDR;
}

static void *cm_calloc(size_t k, size_t n, void *user)
{
    flare_conn *c = user;
    if (n && k > (SIZE_MAX - HDR) / n)
        return NULL;
    size_t total = k * n;
    if (charge(c, total))
        return NULL;
    uint8_t *b = flare__calloc(c->host->mem, 1, total + HDR);
    if (!b) {
        uncharge(c, total);
        return NULL;
    }
    memcpy(b, &total, sizeof(total));
    return b + HDR;
}

static void cm_free(void *ptr, void *user)
{
    flare_conn *c = user;
    if (!ptr)
        return;
    uint8_t *b = (uint8_t *)ptr - HDR;
    size_t n;
    memcpy(&n, b, sizeof(n));
    uncharge(c, n);
    flare__free(c->host->mem, b);
}

static void *cm_realloc(void *ptr, size_t n, void *user)
{
    flare_conn *c = user;
    if (!ptr)
        return cm_malloc(n, user);
    if (n > SIZE_MAX - HDR)
        return NULL;
    uint8_t *b = (uint8_t *)ptr - HDR;
    size_t old;
    memcpy(&old, b, sizeof(old));
    if (n > old && charge(c, n - old))
        return NULL;
    uint8_t *nb = flare__realloc(c->host->mem, b, n + HDR);
    if (!nb) {
        if (n > old)
            uncharge(c, n - old);
        return NULL;
    }
    if (n < old)
        uncharge(c, old - n);
    memcpy(nb, &n, sizeof(n));
    return nb + HDR;
}

void flare__rc_mem_adopt(flare_conn *from, flare_conn *to, void *ptr)
{
    if (!ptr || from == to)
        return;
    size_t n;
    memcpy(&n, (uint8_t *)ptr - HDR, sizeof(n));
    uncharge(from, n);
    to->rc.used += n;
    if (to->rc.peer)
        to->rc.peer->mem += n;
    to->host->rcmgr->mem += n;
}

void flare__rc_conn_init(flare_conn *c)
{
    c->rc.mem.user = c;
    c->rc.mem.malloc = cm_malloc;
    c->rc.mem.free = cm_free;
    c->rc.mem.calloc = cm_calloc;
    c->rc.mem.realloc = cm_realloc;
}

/* ---- the public query ------------------------------------------------------------------ */

static int stat_ip(flare_host *h, const flare_ipaddr *a, int subnet, flare_rcmgr_usage *out)
{
    if (!a || (a->family != 4 && a->family != 6))
        return FLARE_ERR_INVALID_ARG;
    uint8_t key[16];
    int family = ip_key(a, subnet, key);
    rc_ip *e = ip_find(h->rcmgr, family, subnet, key);
    if (!e)
        return FLARE_ERR_NOT_FOUND;
    out->conns_inbound = e->conns;
    out->handshakes = e->handshakes;
    return 0;
}

static int stat_peer(flare_host *h, const flare_peerid *id, flare_rcmgr_usage *out)
{
    if (!id || !id->len)
        return FLARE_ERR_INVALID_ARG;
    rc_peer *p = peer_find(h->rcmgr, id);
    if (!p)
        return FLARE_ERR_NOT_FOUND;
    out->conns_inbound = p->conns_in;
    out->conns_outbound = p->conns_out;
    out->streams_inbound = p->streams_in;
    out->streams_outbound = p->streams_out;
    out->memory = p->mem;
    return 0;
}

static int stat_conn(const flare_conn *c, flare_rcmgr_usage *out)
{
    if (!c)
        return FLARE_ERR_INVALID_ARG;
    *(c->outbound ? &out->conns_outbound : &out->conns_inbound) = 1;
    out->handshakes = c->rc.handshake;
    for (const flare_stream *s = c->streams; s; s = s->next)
        ++*(s->inbound ? &out->streams_inbound : &out->streams_outbound);
    out->memory = c->rc.used + conn_pending(c);
    return 0;
}

int flare_host_rcmgr_stat(flare_host *h, const flare_rcmgr_scope *scope, flare_rcmgr_usage *out)
{
    struct flare__rcmgr *rc = h->rcmgr;
    memset(out, 0, sizeof(*out));
    if (!scope)
        return FLARE_ERR_INVALID_ARG;
    switch (scope->kind) {
    case FLARE_RCMGR_SYSTEM:
        out->conns_inbound = rc->conns_in;
        out->conns_outbound = rc->conns_out;
        out->handshakes = rc->handshakes;
        out->streams_inbound = rc->streams_in;
        out->streams_outbound = rc->streams_out;
        out->memory = rc->mem;
        out->refused_conns = rc->refused_conns;
        out->refused_streams = rc->refused_streams;
        out->refused_mem = rc->refused_mem;
        return 0;
    case FLARE_RCMGR_PEER:
        return stat_peer(h, scope->peer, out);
    case FLARE_RCMGR_IP:
    case FLARE_RCMGR_SUBNET:
        return stat_ip(h, scope->ip, scope->kind == FLARE_RCMGR_SUBNET, out);
    case FLARE_RCMGR_PROTOCOL: {
        if (!scope->protocol)
            return FLARE_ERR_INVALID_ARG;
        size_t n = strlen(scope->protocol);
        rc_proto *x = proto_find(rc, scope->protocol, n, proto_hash(scope->protocol, n));
        if (!x)
            return FLARE_ERR_NOT_FOUND;
        out->streams_inbound = x->in;
        out->streams_outbound = x->out;
        return 0;
    }
    case FLARE_RCMGR_CONN:
        return stat_conn(scope->conn, out);
    }
    return FLARE_ERR_INVALID_ARG;
}
