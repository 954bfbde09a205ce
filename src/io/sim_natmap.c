/* A simulated NAT's mapping table: the mappings in one ordered list, which
 * decides which mapping an outgoing packet takes when several match, and
 * hash indexes so that no packet walks the list:
 *   by_in   (proto, outside port): inbound demultiplexing, port allocation;
 *   by_out  (proto, inside endpoint, destination as far as the mapping
 *           behaviour distinguishes it): outbound packets;
 *   pins    (proto, inside endpoint): NAT-PMP/PCP mappings, which serve
 *           every destination;
 *   remotes (mapping, remote address): the filter.
 * Expiry stays lazy: a lower bound on the earliest expiry skips the walk
 * until a mapping can really have expired. */
#include <string.h>

#include "core/mem.h"
#include "io/sim_internal.h"

static int out_mode(const flare_sim_nat *n)
{
    return n->cfg.firewall_only ? FLARE_SIM_EI : (int)n->cfg.mapping;
}

static uint64_t in_key(uint8_t proto, uint16_t port)
{
    return flare__sim_mix(proto, port);
}

static uint64_t pin_key(uint8_t proto, const flare_ipaddr *in)
{
    return flare__sim_mix_ep(proto, in);
}

static uint64_t out_key(int mode, uint8_t proto, const flare_ipaddr *in, const flare_ipaddr *dst)
{
    uint64_t h = flare__sim_mix_ep(proto, in);
    if (mode == FLARE_SIM_AD)
        return flare__sim_mix_ip(h, dst);
    return mode == FLARE_SIM_EI ? h : flare__sim_mix_ep(h, dst);
}

static uint64_t remote_key(const sim_mapping *m, const flare_ipaddr *ep)
{
    return flare__sim_mix_ip(flare__sim_mix(0, (uint64_t)m->order), ep);
}

void flare__sim_nat_map_init(flare_sim_nat *n)
{
    const flare_mem *mem = n->sim->mem;
    flare__sim_htab_init(&n->by_in, mem);
    flare__sim_htab_init(&n->by_out, mem);
    flare__sim_htab_init(&n->pins, mem);
    flare__sim_htab_init(&n->remotes, mem);
    n->out_mode = out_mode(n);
    n->purge_at = FLARE_TSTAMP_NEVER;
}

/* --- expiry -------------------------------------------------------------------- */

static flare_tstamp mapping_timeout(const flare_sim_nat *n, const sim_mapping *m)
{
    if (m->proto == SIM_UDP)
        return n->cfg.udp_timeout;
    return m->tcp_est ? n->cfg.tcp_est_timeout : n->cfg.tcp_trans_timeout;
}

/* m is gone once the clock is past this. */
static flare_tstamp expiry(const flare_sim_nat *n, const sim_mapping *m)
{
    if (m->pinned_until)
        return m->pinned_until;
    flare_tstamp t = mapping_timeout(n, m);
    return t > FLARE_TSTAMP_NEVER - m->last ? FLARE_TSTAMP_NEVER : m->last + t;
}

void flare__sim_mapping_touch(flare_sim_nat *n, sim_mapping *m)
{
    flare_tstamp e = expiry(n, m);
    if (e < n->purge_at)
        n->purge_at = e;
}

void flare__sim_nat_purge(flare_sim_nat *n)
{
    flare_tstamp now = n->sim->now, next = FLARE_TSTAMP_NEVER;
    if (now <= n->purge_at)
        return;
    for (sim_mapping *m = n->maps, *after; m; m = after) {
        after = m->next;
        flare_tstamp e = expiry(n, m);
        if (now > e) {
            n->st.mappings_expired++;
            n->st.mappings_active--;
            n->st.portmap_active -= m->pinned_until != 0;
            flare__sim_mapping_del(n, m);
        } else if (e < next) {
            next = e;
        }
    }
    n->purge_at = next;
}

/* --- list and indexes ------------------------------------------------------------ */

int flare__sim_mapping_add(flare_sim_nat *n, sim_mapping *m, int at_tail)
{
    m->order = at_tail ? ++n->tail_order : --n->head_order;
    if (flare__sim_htab_insert(&n->by_in, &m->h_in, in_key(m->proto, m->ext.port)) < 0 ||
        flare__sim_htab_insert(&n->by_out, &m->h_out,
                               out_key(n->out_mode, m->proto, &m->in, &m->dest)) < 0 ||
        (m->pinned_until &&
         flare__sim_htab_insert(&n->pins, &m->h_pin, pin_key(m->proto, &m->in)) < 0)) {
        flare__sim_htab_remove(&n->by_in, &m->h_in);
        flare__sim_htab_remove(&n->by_out, &m->h_out);
        flare__free(n->sim->mem, m);
        return FLARE_ERR_NOMEM;
    }
    if (!at_tail || !n->maps) {
        m->prev = NULL;
        m->next = n->maps;
        if (n->maps)
            n->maps->prev = m;
        n->maps = m;
    } else {
        sim_mapping *t = n->maps;
        while (t->next)
            t = t->next;
        t->next = m;
        m->prev = t;
        m->next = NULL;
    }
    flare__sim_mapping_touch(n, m);
    return 0;
}

void flare__sim_mapping_del(flare_sim_nat *n, sim_mapping *m)
{
    if (m->prev)
        m->prev->next = m->next;
    else
        n->maps = m->next;
    if (m->next)
        m->next->prev = m->prev;
    flare__sim_htab_remove(&n->by_in, &m->h_in);
    flare__sim_htab_remove(&n->by_out, &m->h_out);
    flare__sim_htab_remove(&n->pins, &m->h_pin);
    while (m->remotes) {
        sim_remote *r = m->remotes;
        m->remotes = r->next;
        flare__sim_htab_remove(&n->remotes, &r->hn);
        flare__free(n->sim->mem, r);
    }
    flare__free(n->sim->mem, m);
}

void flare__sim_nat_clear(flare_sim_nat *n, int free_indexes)
{
    while (n->maps)
        flare__sim_mapping_del(n, n->maps);
    n->purge_at = FLARE_TSTAMP_NEVER;
    if (free_indexes) {
        flare__sim_htab_free(&n->by_in);
        flare__sim_htab_free(&n->by_out);
        flare__sim_htab_free(&n->pins);
        flare__sim_htab_free(&n->remotes);
    }
}

/* Re-inserting what was just removed never grows a table, so it cannot fail. */
void flare__sim_nat_map_reconfig(flare_sim_nat *n)
{
    n->purge_at = 0; /* the timeouts may have changed */
    if (n->out_mode == out_mode(n))
        return;
    n->out_mode = out_mode(n);
    for (sim_mapping *m = n->maps; m; m = m->next)
        flare__sim_htab_remove(&n->by_out, &m->h_out);
    for (sim_mapping *m = n->maps; m; m = m->next)
        (void)flare__sim_htab_insert(&n->by_out, &m->h_out,
                                     out_key(n->out_mode, m->proto, &m->in, &m->dest));
}

int flare__sim_mapping_pin(flare_sim_nat *n, sim_mapping *m, flare_tstamp until)
{
    if (!flare__sim_hnode_linked(&m->h_pin) &&
        flare__sim_htab_insert(&n->pins, &m->h_pin, pin_key(m->proto, &m->in)) < 0)
        return FLARE_ERR_NOMEM;
    m->pinned_until = until;
    flare__sim_mapping_touch(n, m);
    return 0;
}

/* --- lookups ------------------------------------------------------------------------ */

static int matches_out(const flare_sim_nat *n, const sim_mapping *m, uint8_t proto,
                       const flare_ipaddr *src, const flare_ipaddr *dst)
{
    if (m->proto != proto || !flare_ipaddr_equal(&m->in, src))
        return 0;
    if (m->pinned_until)
        return 1;
    switch (n->out_mode) {
    case FLARE_SIM_EI:
        return 1;
    case FLARE_SIM_AD:
        return flare_ipaddr_same_ip(&m->dest, dst);
    default:
        return flare_ipaddr_equal(&m->dest, dst);
    }
}

/* A match is either pinned (in pins) or dynamic and keyed like the packet
 * (in by_out); of all of them the list's first wins. */
sim_mapping *flare__sim_nat_find_out(flare_sim_nat *n, uint8_t proto, const flare_ipaddr *src,
                                     const flare_ipaddr *dst)
{
    sim_mapping *best = NULL;
    for (sim_hnode *h = flare__sim_htab_first(&n->by_out, out_key(n->out_mode, proto, src, dst)); h;
         h = flare__sim_htab_next(h)) {
        sim_mapping *m = SIM_CONTAINER(h, sim_mapping, h_out);
        if (matches_out(n, m, proto, src, dst) && (!best || m->order < best->order))
            best = m;
    }
    for (sim_hnode *h = flare__sim_htab_first(&n->pins, pin_key(proto, src)); h;
         h = flare__sim_htab_next(h)) {
        sim_mapping *m = SIM_CONTAINER(h, sim_mapping, h_pin);
        if (matches_out(n, m, proto, src, dst) && (!best || m->order < best->order))
            best = m;
    }
    return best;
}

sim_mapping *flare__sim_nat_find_in(flare_sim_nat *n, uint8_t proto, const flare_ipaddr *ext)
{
    sim_mapping *best = NULL;
    for (sim_hnode *h = flare__sim_htab_first(&n->by_in, in_key(proto, ext->port)); h;
         h = flare__sim_htab_next(h)) {
        sim_mapping *m = SIM_CONTAINER(h, sim_mapping, h_in);
        if (m->proto == proto && flare_ipaddr_equal(&m->ext, ext) &&
            (!best || m->order < best->order))
            best = m;
    }
    return best;
}

int flare__sim_nat_port_taken(const flare_sim_nat *n, uint8_t proto, uint16_t port)
{
    for (sim_hnode *h = flare__sim_htab_first(&n->by_in, in_key(proto, port)); h;
         h = flare__sim_htab_next(h)) {
        const sim_mapping *m = SIM_CONTAINER(h, sim_mapping, h_in);
        if (m->proto == proto && m->ext.port == port)
            return 1;
    }
    return 0;
}

/* --- filtering ------------------------------------------------------------------------ */

int flare__sim_mapping_remember(flare_sim_nat *n, sim_mapping *m, const flare_ipaddr *dst)
{
    /* Most mappings carry one TCP connection: its remote is the list's
     * head, found without the table's bucket array. */
    if (m->remotes && flare_ipaddr_equal(&m->remotes->ep, dst))
        return 0;
    uint64_t k = remote_key(m, dst);
    for (sim_hnode *h = flare__sim_htab_first(&n->remotes, k); h; h = flare__sim_htab_next(h)) {
        const sim_remote *r = SIM_CONTAINER(h, sim_remote, hn);
        if (r->m == m && flare_ipaddr_equal(&r->ep, dst))
            return 0;
    }
    sim_remote *r = flare__calloc(n->sim->mem, 1, sizeof(*r));
    if (!r)
        return FLARE_ERR_NOMEM;
    r->m = m;
    r->ep = *dst;
    if (flare__sim_htab_insert(&n->remotes, &r->hn, k) < 0) {
        flare__free(n->sim->mem, r);
        return FLARE_ERR_NOMEM;
    }
    r->next = m->remotes;
    m->remotes = r;
    return 0;
}

int flare__sim_mapping_admits(const flare_sim_nat *n, const sim_mapping *m, const flare_ipaddr *src)
{
    if (n->cfg.filtering == FLARE_SIM_EI || m->pinned_until)
        return 1;
    const sim_remote *head = m->remotes; /* the usual match, as in remember */
    if (head && (n->cfg.filtering == FLARE_SIM_AD ? flare_ipaddr_same_ip(&head->ep, src)
                                                  : flare_ipaddr_equal(&head->ep, src)))
        return 1;
    for (sim_hnode *h = flare__sim_htab_first(&n->remotes, remote_key(m, src)); h;
         h = flare__sim_htab_next(h)) {
        const sim_remote *r = SIM_CONTAINER(h, sim_remote, hn);
        if (r->m == m && (n->cfg.filtering == FLARE_SIM_AD ? flare_ipaddr_same_ip(&r->ep, src)
                                                           : flare_ipaddr_equal(&r->ep, src)))
            return 1;
    }
    return 0;
}
