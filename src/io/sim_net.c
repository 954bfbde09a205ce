/* Simulator topology: LANs, interfaces, the route table, links and the
 * hop-by-hop forwarding of packets. */
#include <string.h>

#include "core/mem.h"
#include "io/sim_internal.h"

/* The array's room is the smallest power of two >= *n: it doubles when a
 * push finds it full, so adding N nodes copies O(N) pointers, not O(N^2). */
int flare__sim_push_ptr(flare_sim *sim, void ***arr, size_t *n, void *p)
{
    if ((*n & (*n - 1)) == 0) {
        void **a = flare__realloc(sim->mem, *arr, (*n ? *n * 2 : 1) * sizeof(void *));
        if (!a)
            return FLARE_ERR_NOMEM;
        *arr = a;
    }
    (*arr)[(*n)++] = p;
    return 0;
}

flare_sim_lan *flare_sim_internet(flare_sim *sim)
{
    return sim->internet;
}

flare_sim_lan *flare_sim_lan_new(flare_sim *sim, const char *name)
{
    sim = sim->root;
    flare_sim_lan *lan = flare__calloc(sim->mem, 1, sizeof(*lan));
    if (!lan)
        return NULL;
    if (flare__sim_name_set(sim->mem, &lan->name, name) < 0 ||
        flare__sim_push_ptr(sim, (void ***)&sim->lans, &sim->n_lans, lan) < 0) {
        flare__free(sim->mem, lan->name.s);
        flare__free(sim->mem, lan);
        return NULL;
    }
    lan->id = (uint32_t)sim->n_lans; /* ids start at 1: 0 marks empty routes */
    return lan;
}

/* --- route table: (LAN, address) -> interface, open addressing --------------- */

static size_t route_hash(uint32_t lan_id, const flare_ipaddr *ip)
{
    return (size_t)flare__sim_mix_ip(lan_id, ip);
}

static sim_route *route_slot(const flare_sim *sim, uint32_t lan_id, const flare_ipaddr *ip)
{
    size_t mask = sim->routes_cap - 1;
    for (size_t i = route_hash(lan_id, ip) & mask;; i = (i + 1) & mask) {
        sim_route *r = &sim->routes[i];
        if (r->lan_id == 0 || (r->lan_id == lan_id && flare_ipaddr_same_ip(&r->ip, ip)))
            return r;
    }
}

static sim_iface *route_find(const flare_sim *sim, const flare_sim_lan *lan, const flare_ipaddr *ip)
{
    sim = sim->root; /* read-only while shards run */
    if (sim->routes_cap == 0)
        return NULL;
    sim_route *r = route_slot(sim, lan->id, ip);
    return r->lan_id ? r->iface : NULL;
}

static int routes_grow(flare_sim *sim)
{
    size_t cap = sim->routes_cap ? sim->routes_cap * 2 : 64;
    sim_route *old = sim->routes;
    size_t old_cap = sim->routes_cap;
    sim->routes = flare__calloc(sim->mem, cap, sizeof(*old));
    if (!sim->routes) {
        sim->routes = old;
        return FLARE_ERR_NOMEM;
    }
    sim->routes_cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].lan_id)
            *route_slot(sim, old[i].lan_id, &old[i].ip) = old[i];
    flare__free(sim->mem, old);
    return 0;
}

int flare__sim_route_add(flare_sim *sim, flare_sim_lan *lan, const flare_ipaddr *ip, sim_iface *ifc)
{
    sim = sim->root;
    if (route_find(sim, lan, ip))
        return FLARE_ERR_EXISTS;
    if ((sim->routes_len + 1) * 2 > sim->routes_cap && routes_grow(sim) < 0)
        return FLARE_ERR_NOMEM;
    sim_route *r = route_slot(sim, lan->id, ip);
    r->lan_id = lan->id;
    r->ip = *ip;
    r->ip.port = 0;
    r->iface = ifc;
    sim->routes_len++;
    return 0;
}

/* A firewall (no NAT) answers on its outside LAN for the addresses behind it. */
static int register_behind_firewalls(flare_sim *sim, flare_sim_lan *lan, const flare_ipaddr *ip)
{
    while (lan->gateway && lan->gateway->node->is_nat) {
        flare_sim_nat *n = (flare_sim_nat *)lan->gateway->node;
        if (!n->cfg.firewall_only)
            break;
        int rv = flare__sim_route_add(sim, n->out->lan, ip, n->out);
        if (rv < 0)
            return rv;
        lan = n->out->lan;
    }
    return 0;
}

sim_iface *flare__sim_iface_new(flare_sim *sim, sim_node *node, flare_sim_lan *lan,
                                const flare_ipaddr *ip)
{
    if (route_find(sim, lan, ip))
        return NULL;
    sim_iface *ifc = flare__calloc(sim->mem, 1, sizeof(*ifc));
    if (!ifc)
        return NULL;
    ifc->lan = lan;
    ifc->node = node;
    ifc->shard = node->shard; /* fixed when the node was made */
    ifc->ip = *ip;
    ifc->ip.port = 0;
    if (flare__sim_push_ptr(sim, (void ***)&node->ifaces, &node->n_ifaces, ifc) < 0) {
        flare__free(sim->mem, ifc);
        return NULL;
    }
    if (flare__sim_route_add(sim, lan, ip, ifc) < 0) {
        node->n_ifaces--;
        flare__free(sim->mem, ifc);
        return NULL;
    }
    flare__sim_par_iface_new(sim, ifc);
    return ifc;
}

/* --- hosts ---------------------------------------------------------------- */

flare_sim_host *flare_sim_host_new(flare_sim *sim, const char *name)
{
    flare_sim_host *h = flare__calloc(sim->mem, 1, sizeof(*h));
    if (!h)
        return NULL;
    int named = flare__sim_name_set(sim->mem, &h->node.name, name);
    h->io.ops = &flare__sim_io_ops;
    h->sim = sim;
    h->next_port = 49152;
    flare__sim_htab_init(&h->conns, sim->mem);
    flare__sim_htab_init(&h->ports, sim->mem);
    /* Per-host streams: a host's randomness does not depend on other hosts. */
    flare_prng_seed(&h->prng, sim->seed * 0x9e3779b97f4a7c15ULL + sim->n_nodes + 1);
    if (named < 0 || flare__sim_push_ptr(sim, (void ***)&sim->nodes, &sim->n_nodes, h) < 0) {
        flare__free(sim->mem, h->node.name.s);
        flare__free(sim->mem, h);
        return NULL;
    }
    h->sim = flare__sim_shard_for_host(sim, sim->n_nodes - 1);
    h->node.shard = h->sim->shard;
    return h;
}

void flare__sim_host_free(flare_sim *sim, flare_sim_host *h)
{
    flare__sim_tcp_free_all(h);
    flare__sim_udp_timers_free_all(h);
    flare__sim_htab_free(&h->conns);
    flare__sim_htab_free(&h->ports);
    for (size_t i = 0; i < h->node.n_ifaces; i++)
        flare__free(sim->mem, h->node.ifaces[i]);
    flare__free(sim->mem, h->node.ifaces);
    flare__free(sim->mem, h->node.name.s);
    flare__free(sim->mem, h);
}

int flare_sim_host_add_addr(flare_sim_host *h, flare_sim_lan *lan, const char *ip)
{
    flare_ipaddr a;
    if (!lan || flare_ipaddr_parse(&a, ip) < 0 || flare__sim_ip_is_any(&a))
        return FLARE_ERR_INVALID_ARG;
    a.port = 0;
    if (route_find(h->sim, lan, &a))
        return FLARE_ERR_EXISTS;
    sim_iface *ifc = flare__sim_iface_new(h->sim, &h->node, lan, &a);
    if (!ifc)
        return FLARE_ERR_NOMEM;
    return register_behind_firewalls(h->sim, lan, &a);
}

int flare_sim_host_addr(const flare_sim_host *h, size_t i, flare_ipaddr *out)
{
    if (i >= h->node.n_ifaces)
        return FLARE_ERR_NOT_FOUND;
    *out = h->node.ifaces[i]->ip;
    return 0;
}

flare_io *flare_sim_host_io(flare_sim_host *h)
{
    return &h->io;
}

const char *flare_sim_host_name(const flare_sim_host *h)
{
    return h->node.name.s;
}

static void link_set_all(sim_node *n, const flare_sim_link *l)
{
    for (size_t i = 0; i < n->n_ifaces; i++)
        n->ifaces[i]->link = *l;
}

void flare_sim_link_set(flare_sim_host *h, const flare_sim_link *l)
{
    link_set_all(&h->node, l);
    flare__sim_par_link_changed(h->sim, &h->node);
}

sim_iface *flare__sim_host_iface(flare_sim_host *h, const flare_ipaddr *ip)
{
    for (size_t i = 0; i < h->node.n_ifaces; i++)
        if (flare_ipaddr_same_ip(&h->node.ifaces[i]->ip, ip))
            return h->node.ifaces[i];
    return NULL;
}

sim_iface *flare__sim_host_route(flare_sim_host *h, const flare_ipaddr *dst)
{
    sim_iface *first = NULL;
    for (size_t i = 0; i < h->node.n_ifaces; i++) {
        sim_iface *ifc = h->node.ifaces[i];
        if (ifc->ip.family != dst->family)
            continue;
        if (route_find(h->sim, ifc->lan, dst))
            return ifc;
        if (!first)
            first = ifc;
    }
    return first;
}

/* --- packets and links ----------------------------------------------------- */

sim_pkt *flare__sim_pkt_new(flare_sim *sim, uint8_t proto, uint8_t flags, const flare_ipaddr *src,
                            const flare_ipaddr *dst, const uint8_t *data, size_t len)
{
    sim_pkt *p = flare__malloc(sim->mem, sizeof(*p) + len);
    if (!p)
        return NULL;
    memset(p, 0, sizeof(*p));
    flare__sim_ev_init(&p->ev, SIM_EV_PKT);
    p->proto = proto;
    p->flags = flags;
    p->src = *src;
    p->dst = *dst;
    p->len = len;
    if (len)
        memcpy(p->data, data, len);
    return p;
}

static void drop(flare_sim *sim, const sim_name *where, flare_sim_verdict v, sim_pkt *p)
{
    flare__sim_trace(sim, where, v, p);
    flare__free(sim->mem, p);
}

static flare_tstamp link_transmit(flare_sim *sim, sim_iface *ifc, sim_link_dir *d, sim_pkt *p,
                                  int *queue_full)
{
    const flare_sim_link *l = &ifc->link;
    flare_tstamp start = d->free_at > sim->now ? d->free_at : sim->now;
    *queue_full = 0;
    if (l->rate == 0)
        return start;
    double queued = (double)(start - sim->now) * (double)l->rate / 1e9;
    if (p->proto == SIM_UDP && queued > (double)l->queue) {
        *queue_full = 1;
        return 0;
    }
    uint64_t wire = p->len + (p->proto == SIM_TCP ? FLARE_SIM_TCP_HDR : FLARE_SIM_UDP_HDR);
    d->free_at = start + (flare_tstamp)((double)wire * 1e9 / (double)l->rate);
    return d->free_at;
}

/* The interface a packet on lan from iface from goes to next, or NULL. */
static sim_iface *lan_next_hop(const flare_sim *sim, const flare_sim_lan *lan,
                               const sim_iface *from, const flare_ipaddr *dst)
{
    sim_iface *to = route_find(sim, lan, dst);
    if (to == from)
        to = NULL; /* no loops back to the sender */
    if (!to && lan->gateway && from != lan->gateway)
        to = lan->gateway;
    return to;
}

/* A LAN forwards without queueing or state. When the link from the LAN to
 * the next node only adds a fixed delay (no rate, loss or jitter), the
 * packet's arrival there is known as it enters the LAN: it is scheduled at
 * once, saving the LAN's event. The arrival time is the same; only events
 * at the very same nanosecond may run in another order than with the LAN
 * event (the arrival is queued when the packet leaves, not when it crosses
 * the LAN). Returns 1 if it scheduled p. */
static int lan_shortcut(flare_sim *sim, sim_pkt *p, sim_iface *to, flare_tstamp t)
{
    const flare_sim_link *l = &to->link;
    flare_tstamp at = t + l->delay;
    /* An earlier jittered packet still ahead keeps the LAN event, whose
     * link_send then orders them. */
    if (l->rate || l->loss > 0 || l->jitter || at < to->dir[1].last_arrival)
        return 0;
    p->at_node = 1;
    p->iface = to;
    p->lan = to->lan;
    flare__sim_ev_schedule(sim, &p->ev, at);
    return 1;
}

void flare__sim_link_send(flare_sim *sim, sim_iface *ifc, int dir, sim_pkt *p)
{
    const flare_sim_link *l = &ifc->link;
    sim_link_dir *d = &ifc->dir[dir];
    flare_tstamp extra = 0;
    const sim_name *who = &ifc->node->name;
    /* Reliable TCP: a lost segment other than SYN arrives one RTO later. */
    while (l->loss > 0 && flare__sim_uniform(&sim->prng) < l->loss) {
        if (p->proto != SIM_TCP || (p->flags & FLARE_SIM_SYN) || extra > 60 * FLARE_NS_PER_S) {
            drop(sim, who, FLARE_SIM_DROP_LOSS, p);
            return;
        }
        flare__sim_trace(sim, who, FLARE_SIM_RETRANSMITTED, p);
        extra += FLARE_SIM_RTO;
    }
    int full;
    flare_tstamp depart = link_transmit(sim, ifc, d, p, &full);
    if (full) {
        drop(sim, who, FLARE_SIM_DROP_QUEUE, p);
        return;
    }
    flare_tstamp t = depart + l->delay + extra;
    if (l->jitter)
        t += (flare_tstamp)(flare__sim_uniform(&sim->prng) * (double)(l->jitter + 1));
    else if (t < d->last_arrival)
        t = d->last_arrival;
    if (t > d->last_arrival)
        d->last_arrival = t;
    p->at_node = (uint8_t)dir;
    p->iface = ifc;
    p->lan = ifc->lan;
    if (dir == 0) {
        sim_iface *to = lan_next_hop(sim, p->lan, ifc, &p->dst);
        /* A packet dropped at the LAN is traced at its time; one for a node
         * of another partition goes to that partition's inbox in a parallel
         * window (sim_par.c), else through the LAN event. */
        if (to && to->shard != sim->shard && sim->win_end) {
            flare__sim_par_post(sim, to, p, t);
            return;
        }
        if (to && to->shard == sim->shard && lan_shortcut(sim, p, to, t))
            return;
    }
    flare__sim_ev_schedule(sim, &p->ev, t);
}

void flare__sim_host_send(flare_sim_host *h, sim_iface *ifc, sim_pkt *p)
{
    flare_sim *sim = h->sim;
    flare__sim_trace(sim, &h->node.name, FLARE_SIM_SENT, p);
    /* With one address (nearly every host) that is ifc's: no need to read
     * the interface array. */
    sim_iface *self = h->node.n_ifaces != 1                     ? flare__sim_host_iface(h, &p->dst)
                      : flare_ipaddr_same_ip(&ifc->ip, &p->dst) ? ifc
                                                                : NULL;
    if (self) { /* to one of our own addresses: loop back at once */
        p->at_node = 1;
        p->iface = self;
        flare__sim_ev_schedule(sim, &p->ev, sim->now);
        return;
    }
    flare__sim_link_send(sim, ifc, 0, p);
}

static void lan_arrival(flare_sim *sim, sim_pkt *p)
{
    sim_iface *to = lan_next_hop(sim, p->lan, p->iface, &p->dst);
    if (!to) {
        drop(sim, &p->lan->name, FLARE_SIM_DROP_NOROUTE, p);
        return;
    }
    if (to->shard != sim->shard) {
        flare__sim_par_lan_cross(sim, to, p);
        return;
    }
    flare__sim_link_send(sim, to, 1, p);
}

void flare__sim_pkt_event(flare_sim *sim, sim_pkt *p)
{
    if (!p->at_node) {
        lan_arrival(sim, p);
        return;
    }
    sim_node *n = p->iface->node;
    if (n->is_nat) {
        flare__sim_nat_input(sim, (flare_sim_nat *)n, p->iface, p);
        return;
    }
    flare_sim_host *h = (flare_sim_host *)n;
    if (p->proto == SIM_TCP)
        flare__sim_tcp_input(h, p);
    else
        flare__sim_udp_input(h, p);
}
