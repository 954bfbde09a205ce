/*
 * Connection gater: allow and deny lists of peers and of IP subnets,
 * consulted before a byte of an inbound connection is read (its IP), before
 * a dial (the address's IP and peer), and once the handshake has told us
 * who the peer is.
 *
 * Rules: a deny entry always wins; a non-empty allow list of a kind (peers,
 * subnets) lets only its entries pass. Both kinds must pass. IP rules judge
 * the socket's remote address, so they do not apply to relayed connections
 * (whose bytes come from the relay, itself gated by IP); peer rules apply to
 * every connection. The lists are the application's, never a peer's: they
 * are searched linearly.
 */
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "host/host_int.h"

typedef struct subnet {
    flare_ipaddr net;
    unsigned prefix;
} subnet;

/* A growable array of fixed-size entries: peer IDs or subnets. */
typedef struct entry_list {
    void *v;
    size_t n, cap;
} entry_list;

/* Whether entry e matches x: equality, or a subnet holding an address. */
typedef int (*entry_pred)(const void *e, const void *x);

struct flare__gater {
    entry_list peers[2];   /* flare_peerid; [0] deny, [1] allow */
    entry_list subnets[2]; /* subnet; [0] deny, [1] allow */
    uint64_t refused;
};

static struct flare__gater *gater_get(flare_host *h)
{
    if (!h->gater)
        h->gater = flare__calloc(h->mem, 1, sizeof(*h->gater));
    return h->gater;
}

void flare__gater_free(flare_host *h)
{
    struct flare__gater *g = h->gater;
    if (!g)
        return;
    for (int i = 0; i < 2; i++) {
        flare__free(h->mem, g->peers[i].v);
        flare__free(h->mem, g->subnets[i].v);
    }
    flare__free(h->mem, g);
    h->gater = NULL;
}

/* ---- matching -------------------------------------------------------------------- */

/* IPv4-mapped IPv6 (::ffff:a.b.c.d) is judged as its IPv4 address. */
static flare_ipaddr unmap(const flare_ipaddr *ip)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    flare_ipaddr r = *ip;
    if (ip->family == 6 && memcmp(ip->ip, mapped, 12) == 0) {
        memset(&r, 0, sizeof(r));
        r.family = 4;
        memcpy(r.ip, ip->ip + 12, 4);
        r.port = ip->port;
    }
    return r;
}

static int in_subnet(const subnet *s, const flare_ipaddr *ip)
{
    if (s->net.family != ip->family)
        return 0;
    unsigned full = s->prefix / 8, rest = s->prefix % 8;
    if (memcmp(s->net.ip, ip->ip, full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (s->net.ip[full] & mask) == (ip->ip[full] & mask);
}

static int subnet_has(const void *e, const void *ip)
{
    return in_subnet(e, ip);
}

static int subnet_eq(const void *e, const void *x)
{
    const subnet *a = e, *b = x;
    return a->prefix == b->prefix && flare_ipaddr_same_ip(&a->net, &b->net);
}

static int peer_eq(const void *e, const void *x)
{
    return flare_peerid_equal(e, x);
}

/* The index of the first entry matching x, or l->n. */
static size_t list_find(const entry_list *l, size_t size, const void *x, entry_pred match)
{
    size_t i = 0;
    while (i < l->n && !match((const unsigned char *)l->v + i * size, x))
        i++;
    return i;
}

static int subnet_match(const entry_list *l, const flare_ipaddr *ip)
{
    return list_find(l, sizeof(subnet), ip, subnet_has) < l->n;
}

static int peer_match(const entry_list *l, const flare_peerid *p)
{
    return list_find(l, sizeof(flare_peerid), p, peer_eq) < l->n;
}

static int ip_ok(const struct flare__gater *g, const flare_ipaddr *raw)
{
    flare_ipaddr ip = unmap(raw);
    if (subnet_match(&g->subnets[0], &ip))
        return 0;
    return g->subnets[1].n == 0 || subnet_match(&g->subnets[1], &ip);
}

static int peer_ok(const struct flare__gater *g, const flare_peerid *p)
{
    if (peer_match(&g->peers[0], p))
        return 0;
    return g->peers[1].n == 0 || peer_match(&g->peers[1], p);
}

static int refuse(flare_host *h)
{
    h->gater->refused++;
    return 0;
}

/* ---- hooks ------------------------------------------------------------------------ */

int flare__gater_allow_accept(flare_host *h, const flare_ipaddr *remote,
                              const flare_multiaddr *remote_ma)
{
    if (!h->gater || ip_ok(h->gater, remote))
        return 1;
    flare_host_event ev = {.type = FLARE_HOST_EV_INCOMING_FAILED,
                           .u.failed = {.addr = remote_ma, .error = FLARE_ERR_REFUSED}};
    flare__host_emit(h, &ev);
    return refuse(h);
}

int flare__gater_allow_dial(flare_host *h, const flare_multiaddr *ma)
{
    if (!h->gater)
        return 1;
    flare_peerid peer;
    if (flare_multiaddr_get_peerid(ma, &peer) == 0 && !peer_ok(h->gater, &peer))
        return refuse(h);
    flare_multiaddr relay_ma;
    flare_peerid relay, target;
    if (flare_multiaddr_is_relayed(ma)) {
        /* The relay is dialed (and judged) on its own by the relay client. */
        if (flare_multiaddr_relay_split(ma, &relay_ma, &relay, &target) == 0 &&
            !peer_ok(h->gater, &target))
            return refuse(h);
        return 1;
    }
    flare_ipaddr ip;
    if (flare_multiaddr_to_ipaddr(ma, &ip, NULL) == 0 && !ip_ok(h->gater, &ip))
        return refuse(h);
    return 1;
}

int flare__gater_allow_peer(flare_host *h, const flare_conn *c, const flare_peerid *peer)
{
    if (!h->gater)
        return 1;
    if (!peer_ok(h->gater, peer))
        return refuse(h);
    /* A dial judged the IP already; an accept too; recheck for lists changed since. */
    if (!c->limited && c->remote_ip.family && !ip_ok(h->gater, &c->remote_ip))
        return refuse(h);
    return 1;
}

/* ---- the application's lists --------------------------------------------------------- */

/* Adds x to the list (on) or removes it (!on); adding what is there is a no-op. */
static int list_set(flare_host *h, entry_list *l, size_t size, const void *x, int on, entry_pred eq)
{
    unsigned char *v = l->v;
    size_t i = list_find(l, size, x, eq);
    if (i < l->n) {
        if (!on)
            memmove(v + i * size, v + --l->n * size, size);
        return 0;
    }
    if (!on)
        return FLARE_ERR_NOT_FOUND;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 8;
        v = flare__realloc(h->mem, l->v, cap * size);
        if (!v)
            return FLARE_ERR_NOMEM;
        l->v = v;
        l->cap = cap;
    }
    memcpy(v + l->n++ * size, x, size);
    return 0;
}

/* Open connections the lists now refuse are closed. */
static void close_refused(flare_host *h)
{
    for (flare_conn *c = h->conns; c;) {
        if (c->state == FLARE__CONN_READY && !c->close_pending &&
            !flare__gater_allow_peer(h, c, &c->peer)) {
            flare__conn_fail(c, FLARE_ERR_REFUSED); /* may free c and run callbacks */
            c = h->conns;
            continue;
        }
        c = c->next;
    }
}

int flare_host_gater_peer(flare_host *h, flare_gater_list list, const flare_peerid *peer, int on)
{
    if (!h || !peer || peer->len == 0 || (list != FLARE_GATER_DENY && list != FLARE_GATER_ALLOW))
        return FLARE_ERR_INVALID_ARG;
    struct flare__gater *g = on ? gater_get(h) : h->gater;
    if (!g)
        return on ? FLARE_ERR_NOMEM : FLARE_ERR_NOT_FOUND;
    int rv = list_set(h, &g->peers[list], sizeof(*peer), peer, on, peer_eq);
    if (rv == 0)
        close_refused(h);
    return rv;
}

int flare_host_gater_subnet(flare_host *h, flare_gater_list list, const flare_ipaddr *net,
                            unsigned prefix, int on)
{
    if (!h || !net || (net->family != 4 && net->family != 6) ||
        prefix > (net->family == 4 ? 32u : 128u) ||
        (list != FLARE_GATER_DENY && list != FLARE_GATER_ALLOW))
        return FLARE_ERR_INVALID_ARG;
    subnet s = {.net = unmap(net), .prefix = prefix};
    if (s.net.family == 4 && net->family == 6)
        s.prefix = prefix >= 96 ? prefix - 96 : 0;
    s.net.port = 0;
    /* Host bits cleared, so equal subnets compare equal. */
    for (unsigned i = s.prefix; i < 128; i++)
        s.net.ip[i / 8] &= (uint8_t) ~(0x80u >> (i % 8));
    struct flare__gater *g = on ? gater_get(h) : h->gater;
    if (!g)
        return on ? FLARE_ERR_NOMEM : FLARE_ERR_NOT_FOUND;
    int rv = list_set(h, &g->subnets[list], sizeof(s), &s, on, subnet_eq);
    if (rv == 0)
        close_refused(h);
    return rv;
}

uint64_t flare_host_gater_refused(const flare_host *h)
{
    return h->gater ? h->gater->refused : 0;
}

int flare_cidr_parse(const char *s, flare_ipaddr *net, unsigned *prefix)
{
    char ip[FLARE_IPADDR_STR_MAX];
    const char *slash = s ? strchr(s, '/') : NULL;
    size_t len = s ? (slash ? (size_t)(slash - s) : strlen(s)) : 0;
    if (!s || !net || !prefix || len == 0 || len >= sizeof(ip))
        return FLARE_ERR_INVALID_ARG;
    memcpy(ip, s, len);
    ip[len] = 0;
    /* A bare address only: no port, no brackets. */
    flare_ipaddr a;
    if (strchr(ip, '[') || flare_ipaddr_parse(&a, ip) != 0 || (a.family == 4 && strchr(ip, ':')))
        return FLARE_ERR_INVALID_ARG;
    unsigned max = a.family == 4 ? 32 : 128, p = max;
    if (slash) {
        const char *d = slash + 1;
        if (*d < '0' || *d > '9' || strlen(d) > 3)
            return FLARE_ERR_INVALID_ARG;
        char *end;
        unsigned long v = strtoul(d, &end, 10);
        if (*end || v > max)
            return FLARE_ERR_INVALID_ARG;
        p = (unsigned)v;
    }
    *net = a;
    *prefix = p;
    return 0;
}
