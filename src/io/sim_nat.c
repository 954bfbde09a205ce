/* Simulated NAT boxes and stateful firewalls (RFC 4787 for UDP, RFC 5382 for
 * TCP): mapping and filtering behaviour, port preservation, timeouts,
 * hairpinning, RST answers to unsolicited SYNs, and random or sequential
 * allocation of outside ports.
 *
 * Mappings live in a table per NAT (sim_natmap.c) and expire lazily, when
 * a packet crosses the box after their time. Every mapping has its own
 * outside port, so inbound packets are demultiplexed by port alone. */
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
    int named = flare__sim_name_set(sim->mem, &n->node.name, name);
    if (cfg)
        n->cfg = *cfg;
    else
        flare_sim_nat_config_default(&n->cfg);
    flare__sim_nat_map_init(n);
    flare_prng_seed(&n->prng, sim->seed * 0xd1b54a32d192ed03ULL + sim->n_nodes + 1);
    if (named < 0 || flare__sim_push_ptr(sim, (void ***)&sim->nodes, &sim->n_nodes, n) < 0) {
        flare__free(sim->mem, n->node.name.s);
        flare__free(sim->mem, n);
        return NULL;
    }
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
    flare__sim_nat_map_reconfig(n);
}

void flare_sim_nat_link_set(flare_sim_nat *n, const flare_sim_link *l)
{
    n->out->link = *l;
    flare__sim_par_link_changed(n->sim, &n->node);
}

void flare__sim_nat_free(flare_sim *sim, flare_sim_nat *n)
{
    flare__sim_nat_clear(n, 1);
    for (size_t i = 0; i < n->node.n_ifaces; i++)
        flare__free(sim->mem, n->node.ifaces[i]);
    flare__free(sim->mem, n->node.ifaces);
    flare__free(sim->mem, n->node.name.s);
    flare__free(sim->mem, n);
}

void flare_sim_nat_stats_get(flare_sim_nat *n, flare_sim_nat_stats *st)
{
    flare__sim_nat_purge(n);
    *st = n->st;
}

int flare__sim_nat_pick_port(flare_sim_nat *n, uint8_t proto, uint16_t want, uint16_t *out)
{
    if (n->cfg.port_preservation && want && !flare__sim_nat_port_taken(n, proto, want)) {
        *out = want;
        return 0;
    }
    if (n->cfg.port_alloc == FLARE_SIM_ALLOC_SEQUENTIAL) {
        if (!n->next_port) /* the first port is random, as on a router that just booted */
            n->next_port = (uint16_t)(1024 + flare_prng_next(&n->prng) % 60000);
        for (unsigned tries = 0; tries < 64512; tries++) {
            uint16_t p = n->next_port;
            n->next_port = p >= 65535 ? 1024 : (uint16_t)(p + 1);
            if (!flare__sim_nat_port_taken(n, proto, p)) {
                *out = p;
                return 0;
            }
        }
        return FLARE_ERR_LIMIT;
    }
    for (int tries = 0; tries < 200000; tries++) {
        uint16_t p = (uint16_t)(1024 + flare_prng_next(&n->prng) % 64512);
        if (!flare__sim_nat_port_taken(n, proto, p)) {
            *out = p;
            return 0;
        }
    }
    return FLARE_ERR_LIMIT;
}

static sim_mapping *mapping_out(flare_sim_nat *n, sim_pkt *p)
{
    sim_mapping *m = flare__sim_nat_find_out(n, p->proto, &p->src, &p->dst);
    if (m)
        return m;
    /* RFC 5382: only a SYN creates a TCP mapping. */
    if (p->proto == SIM_TCP && p->flags != FLARE_SIM_SYN)
        return NULL;
    m = flare__calloc(n->sim->mem, 1, sizeof(*m));
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
    if (flare__sim_mapping_add(n, m, 0) < 0)
        return NULL;
    n->st.mappings_created++;
    n->st.mappings_active++;
    return m;
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

static void drop(flare_sim_nat *n, flare_sim_verdict v, sim_pkt *p)
{
    if (v == FLARE_SIM_DROP_FILTER)
        n->st.dropped_filter++;
    else
        n->st.dropped_other++;
    flare__sim_trace(n->sim, &n->node.name, v, p);
    flare__free(n->sim->mem, p);
}

static void unsolicited(flare_sim_nat *n, sim_pkt *p, int can_rst)
{
    if (can_rst && n->cfg.syn_rst && p->proto == SIM_TCP && p->flags == FLARE_SIM_SYN) {
        sim_pkt *rst = flare__sim_pkt_new(n->sim, SIM_TCP, FLARE_SIM_RST | FLARE_SIM_ACK, &p->dst,
                                          &p->src, NULL, 0);
        if (rst) {
            n->st.rst_sent++;
            flare__sim_trace(n->sim, &n->node.name, FLARE_SIM_SENT, rst);
            flare__sim_link_send(n->sim, n->out, 0, rst);
        }
    }
    drop(n, FLARE_SIM_DROP_FILTER, p);
}

/* Translates the source of an inside packet; 0 or -1 (p dropped). */
static int translate_out(flare_sim_nat *n, sim_pkt *p)
{
    sim_mapping *m = mapping_out(n, p);
    if (!m || flare__sim_mapping_remember(n, m, &p->dst) < 0) {
        drop(n, FLARE_SIM_DROP_NOROUTE, p);
        return -1;
    }
    m->last = n->sim->now;
    tcp_track(m, p);
    flare__sim_mapping_touch(n, m);
    p->src = m->ext;
    return 0;
}

/* Finds and checks the mapping for an outside packet; NULL if refused. */
static sim_mapping *admit_in(flare_sim_nat *n, const sim_pkt *p)
{
    sim_mapping *m = flare__sim_nat_find_in(n, p->proto, &p->dst);
    if (!m || !flare__sim_mapping_admits(n, m, &p->src))
        return NULL;
    if (m->proto == SIM_TCP)
        m->last = n->sim->now;
    tcp_track(m, p);
    flare__sim_mapping_touch(n, m);
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
        flare__sim_trace(n->sim, &n->node.name, FLARE_SIM_FORWARDED, p);
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
    flare__sim_trace(n->sim, &n->node.name, FLARE_SIM_HAIRPINNED, p);
    flare__sim_link_send(n->sim, n->in, 0, p);
}

static void from_outside(flare_sim_nat *n, sim_pkt *p)
{
    flare__sim_nat_purge(n);
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
    flare__sim_trace(n->sim, &n->node.name, FLARE_SIM_FORWARDED, p);
    flare__sim_link_send(n->sim, n->in, 0, p);
}

void flare__sim_nat_input(flare_sim *sim, flare_sim_nat *n, sim_iface *from, sim_pkt *p)
{
    if (from == n->in) {
        flare__sim_nat_purge(n);
        from_inside(n, p);
    } else {
        from_outside(n, p);
    }
}
