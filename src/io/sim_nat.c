/* Simulated NAT boxes and stateful firewalls (RFC 4787 for UDP, RFC 5382 for
 * TCP): mapping and filtering behaviour, port preservation, timeouts,
 * hairpinning and RST answers to unsolicited SYNs.
 *
 * Mappings live in one list per NAT and expire lazily when a lookup walks
 * past them: a NAT holds few mappings in the scenarios this serves. Every
 * mapping has its own outside port, so inbound packets are demultiplexed by
 * port alone. */
#include <string.h>

#include "core/mem.h"
#include "flare/portmap.h"
#include "io/sim_internal.h"

void flare_sim_nat_config_default(flare_sim_nat_config *c)
{
    memset(c, 0, sizeof(*c));
    c->mapping = FLARE_SIM_EI;
    c->filtering = FLARE_SIM_APD;
    c->port_preservation = 1;
    c->udp_timeout = 120 * FLARE_NS_PER_S;
    c->tcp_est_timeout = 7440 * FLARE_NS_PER_S;
    c->tcp_trans_timeout = 240 * FLARE_NS_PER_S;
}

static void register_inside(flare_sim *sim, flare_sim_nat *n)
{
    /* Firewall mode: addresses already on the inside LAN become reachable
     * from the outside through the firewall. */
    for (size_t i = 0; i < sim->n_nodes; i++) {
        sim_node *node = sim->nodes[i];
        for (size_t j = 0; j < node->n_ifaces; j++) {
            sim_iface *ifc = node->ifaces[j];
            if (ifc->lan == n->in->lan && ifc != n->in)
                flare__sim_route_add(sim, n->out->lan, &ifc->ip, n->out);
        }
    }
}

flare_sim_nat *flare_sim_nat_new(flare_sim *sim, const char *name, flare_sim_lan *outside,
                                 const char *outside_ip, flare_sim_lan *inside,
                                 const char *inside_ip, const flare_sim_nat_config *cfg)
{
    flare_ipaddr oa, ia;
    if (!outside || !inside || outside == inside || inside->gateway ||
        flare_ipaddr_parse(&oa, outside_ip) < 0 || flare_ipaddr_parse(&ia, inside_ip) < 0 ||
        flare__sim_ip_is_any(&oa) || flare__sim_ip_is_any(&ia))
        return NULL;
    flare_sim_nat *n = flare__calloc(sim->mem, 1, sizeof(*n));
    if (!n)
        return NULL;
    n->node.is_nat = 1;
    n->sim = sim;
    n->booted = sim->now;
    n->node.name = flare__sim_strdup(sim->mem, name);
    if (cfg)
        n->cfg = *cfg;
    else
        flare_sim_nat_config_default(&n->cfg);
    flare_prng_seed(&n->prng, sim->seed * 0xd1b54a32d192ed03ULL + sim->n_nodes + 1);
    void **nodes = flare__realloc(sim->mem, sim->nodes, (sim->n_nodes + 1) * sizeof(void *));
    if (nodes)
        sim->nodes = (sim_node **)nodes;
    if (!n->node.name || !nodes) {
        flare__free(sim->mem, n->node.name);
        flare__free(sim->mem, n);
        return NULL;
    }
    sim->nodes[sim->n_nodes++] = &n->node;
    /* From here on n is owned by sim (freed by flare_sim_del even on error). */
    n->out = flare__sim_iface_new(sim, &n->node, outside, &oa);
    n->in = n->out ? flare__sim_iface_new(sim, &n->node, inside, &ia) : NULL;
    if (!n->in)
        return NULL;
    inside->gateway = n->in;
    if (n->cfg.firewall_only)
        register_inside(sim, n);
    return n;
}

void flare_sim_nat_set_config(flare_sim_nat *n, const flare_sim_nat_config *cfg)
{
    n->cfg = *cfg;
}

void flare_sim_nat_link_set(flare_sim_nat *n, const flare_sim_link *l)
{
    n->out->link = *l;
}

void flare__sim_mapping_free(flare_sim *sim, sim_mapping *m)
{
    while (m->remotes) {
        sim_remote *r = m->remotes;
        m->remotes = r->next;
        flare__free(sim->mem, r);
    }
    flare__free(sim->mem, m);
}

void flare__sim_nat_free(flare_sim *sim, flare_sim_nat *n)
{
    while (n->maps) {
        sim_mapping *m = n->maps;
        n->maps = m->next;
        flare__sim_mapping_free(sim, m);
    }
    for (size_t i = 0; i < n->node.n_ifaces; i++)
        flare__free(sim->mem, n->node.ifaces[i]);
    flare__free(sim->mem, n->node.ifaces);
    flare__free(sim->mem, n->node.name);
    flare__free(sim->mem, n);
}

static flare_tstamp mapping_timeout(const flare_sim_nat *n, const sim_mapping *m)
{
    if (m->proto == SIM_UDP)
        return n->cfg.udp_timeout;
    return m->tcp_est ? n->cfg.tcp_est_timeout : n->cfg.tcp_trans_timeout;
}

static void purge(flare_sim_nat *n)
{
    flare_tstamp now = n->sim->now;
    for (sim_mapping **pp = &n->maps; *pp;) {
        sim_mapping *m = *pp;
        if (m->pinned_until ? now > m->pinned_until : now - m->last > mapping_timeout(n, m)) {
            *pp = m->next;
            n->st.mappings_expired++;
            n->st.mappings_active--;
            n->st.portmap_active -= m->pinned_until != 0;
            flare__sim_mapping_free(n->sim, m);
        } else {
            pp = &m->next;
        }
    }
}

void flare_sim_nat_stats_get(flare_sim_nat *n, flare_sim_nat_stats *st)
{
    purge(n);
    *st = n->st;
}

static int mapping_matches_out(const flare_sim_nat *n, const sim_mapping *m, uint8_t proto,
                               const flare_ipaddr *src, const flare_ipaddr *dst)
{
    if (m->proto != proto || !flare_ipaddr_equal(&m->in, src))
        return 0;
    if (m->pinned_until)
        return 1;
    switch (n->cfg.firewall_only ? FLARE_SIM_EI : n->cfg.mapping) {
    case FLARE_SIM_EI:
        return 1;
    case FLARE_SIM_AD:
        return flare_ipaddr_same_ip(&m->dest, dst);
    default:
        return flare_ipaddr_equal(&m->dest, dst);
    }
}

static int port_taken(const flare_sim_nat *n, uint8_t proto, uint16_t port)
{
    for (const sim_mapping *m = n->maps; m; m = m->next)
        if (m->proto == proto && m->ext.port == port)
            return 1;
    return 0;
}

int flare__sim_nat_pick_port(flare_sim_nat *n, uint8_t proto, uint16_t want, uint16_t *out)
{
    if (n->cfg.port_preservation && want && !port_taken(n, proto, want)) {
        *out = want;
        return 0;
    }
    for (int tries = 0; tries < 200000; tries++) {
        uint16_t p = (uint16_t)(1024 + flare_prng_next(&n->prng) % 64512);
        if (!port_taken(n, proto, p)) {
            *out = p;
            return 0;
        }
    }
    return FLARE_ERR_LIMIT;
}

static sim_mapping *mapping_out(flare_sim_nat *n, sim_pkt *p)
{
    for (sim_mapping *m = n->maps; m; m = m->next)
        if (mapping_matches_out(n, m, p->proto, &p->src, &p->dst))
            return m;
    /* RFC 5382: only a SYN creates a TCP mapping. */
    if (p->proto == SIM_TCP && p->flags != FLARE_SIM_SYN)
        return NULL;
    sim_mapping *m = flare__calloc(n->sim->mem, 1, sizeof(*m));
    if (!m)
        return NULL;
    m->proto = p->proto;
    m->in = p->src;
    m->dest = p->dst;
    m->ext = n->cfg.firewall_only ? p->src : n->out->ip;
    if (!n->cfg.firewall_only &&
        flare__sim_nat_pick_port(n, p->proto, p->src.port, &m->ext.port) < 0) {
        flare__free(n->sim->mem, m);
        return NULL;
    }
    m->last = n->sim->now;
    m->next = n->maps;
    n->maps = m;
    n->st.mappings_created++;
    n->st.mappings_active++;
    return m;
}

static int remember_remote(flare_sim_nat *n, sim_mapping *m, const flare_ipaddr *dst)
{
    for (sim_remote *r = m->remotes; r; r = r->next)
        if (flare_ipaddr_equal(&r->ep, dst))
            return 0;
    sim_remote *r = flare__calloc(n->sim->mem, 1, sizeof(*r));
    if (!r)
        return FLARE_ERR_NOMEM;
    r->ep = *dst;
    r->next = m->remotes;
    m->remotes = r;
    return 0;
}

static void tcp_track(sim_mapping *m, const sim_pkt *p)
{
    if (m->proto != SIM_TCP)
        return;
    if (p->flags & (FLARE_SIM_FIN | FLARE_SIM_RST))
        m->tcp_est = 0;
    else if (p->flags & FLARE_SIM_ACK || p->len)
        m->tcp_est = 1;
}

static sim_mapping *mapping_in(flare_sim_nat *n, const sim_pkt *p)
{
    for (sim_mapping *m = n->maps; m; m = m->next)
        if (m->proto == p->proto && flare_ipaddr_equal(&m->ext, &p->dst))
            return m;
    return NULL;
}

static int filter_allows(const flare_sim_nat *n, const sim_mapping *m, const flare_ipaddr *src)
{
    if (n->cfg.filtering == FLARE_SIM_EI || m->pinned_until)
        return 1;
    for (const sim_remote *r = m->remotes; r; r = r->next) {
        if (n->cfg.filtering == FLARE_SIM_AD ? flare_ipaddr_same_ip(&r->ep, src)
                                             : flare_ipaddr_equal(&r->ep, src))
            return 1;
    }
    return 0;
}

static void drop(flare_sim_nat *n, flare_sim_verdict v, sim_pkt *p)
{
    if (v == FLARE_SIM_DROP_FILTER)
        n->st.dropped_filter++;
    else
        n->st.dropped_other++;
    flare__sim_trace(n->sim, n->node.name, v, p);
    flare__free(n->sim->mem, p);
}

static void unsolicited(flare_sim_nat *n, sim_pkt *p, int can_rst)
{
    if (can_rst && n->cfg.syn_rst && p->proto == SIM_TCP && p->flags == FLARE_SIM_SYN) {
        sim_pkt *rst = flare__sim_pkt_new(n->sim, SIM_TCP, FLARE_SIM_RST | FLARE_SIM_ACK, &p->dst,
                                          &p->src, NULL, 0);
        if (rst) {
            n->st.rst_sent++;
            flare__sim_trace(n->sim, n->node.name, FLARE_SIM_SENT, rst);
            flare__sim_link_send(n->sim, n->out, 0, rst);
        }
    }
    drop(n, FLARE_SIM_DROP_FILTER, p);
}

/* Translates the source of an inside packet; 0 or -1 (p dropped). */
static int translate_out(flare_sim_nat *n, sim_pkt *p)
{
    sim_mapping *m = mapping_out(n, p);
    if (!m || remember_remote(n, m, &p->dst) < 0) {
        drop(n, FLARE_SIM_DROP_NOROUTE, p);
        return -1;
    }
    m->last = n->sim->now;
    tcp_track(m, p);
    p->src = m->ext;
    return 0;
}

/* Finds and checks the mapping for an outside packet; NULL if refused. */
static sim_mapping *admit_in(flare_sim_nat *n, const sim_pkt *p)
{
    sim_mapping *m = mapping_in(n, p);
    if (!m || !filter_allows(n, m, &p->src))
        return NULL;
    if (m->proto == SIM_TCP)
        m->last = n->sim->now;
    tcp_track(m, p);
    return m;
}

static void from_inside(flare_sim_nat *n, sim_pkt *p)
{
    if (p->proto == SIM_UDP && p->dst.port == FLARE_PORTMAP_SERVER_PORT &&
        flare_ipaddr_same_ip(&p->dst, &n->in->ip) && !n->cfg.firewall_only) {
        flare__sim_portmap_input(n, p);
        return;
    }
    int to_self = flare_ipaddr_same_ip(&p->dst, &n->out->ip);
    if (flare_ipaddr_same_ip(&p->dst, &n->in->ip) || (to_self && !n->cfg.hairpinning) ||
        (to_self && n->cfg.firewall_only)) {
        drop(n, FLARE_SIM_DROP_NOROUTE, p);
        return;
    }
    if (translate_out(n, p) < 0)
        return;
    if (!to_self) {
        flare__sim_trace(n->sim, n->node.name, FLARE_SIM_FORWARDED, p);
        flare__sim_link_send(n->sim, n->out, 0, p);
        return;
    }
    /* Hairpinning (RFC 4787 REQ-9): the inside peer sees our outside
     * address as the source, and the filter applies as for outside packets. */
    sim_mapping *m = admit_in(n, p);
    if (!m) {
        unsolicited(n, p, 0);
        return;
    }
    p->dst = m->in;
    n->st.hairpinned++;
    flare__sim_trace(n->sim, n->node.name, FLARE_SIM_HAIRPINNED, p);
    flare__sim_link_send(n->sim, n->in, 0, p);
}

static void from_outside(flare_sim_nat *n, sim_pkt *p)
{
    purge(n);
    if (!n->cfg.firewall_only && !flare_ipaddr_same_ip(&p->dst, &n->out->ip)) {
        drop(n, FLARE_SIM_DROP_NOROUTE, p);
        return;
    }
    sim_mapping *m = admit_in(n, p);
    if (!m) {
        unsolicited(n, p, 1);
        return;
    }
    p->dst = m->in;
    flare__sim_trace(n->sim, n->node.name, FLARE_SIM_FORWARDED, p);
    flare__sim_link_send(n->sim, n->in, 0, p);
}

void flare__sim_nat_input(flare_sim *sim, flare_sim_nat *n, sim_iface *from, sim_pkt *p)
{
    if (from == n->in) {
        purge(n);
        from_inside(n, p);
    } else {
        from_outside(n, p);
    }
}
