/* The port mapping server of a simulated NAT box: NAT-PMP (RFC 6886) or PCP
 * (RFC 6887) on the inside address, UDP port 5351, as the box's config says,
 * or a test's own server (flare_sim_nat_set_portmap_hook). Mappings it makes
 * are the box's mappings, pinned until their lifetime ends (sim_nat.c lets
 * anyone in through them and sends the internal port's new flows out of
 * them). */
#include <string.h>

#include "core/mem.h"
#include "flare/portmap.h"
#include "io/sim_internal.h"

#define PM_MAX_LIFETIME 86400u /* seconds a box grants at most */
#define PM_RESP_MAX     2048

/* RFC 6887 result codes the box uses. */
#define PCP_UNSUPP_VERSION   1
#define PCP_NOT_AUTHORIZED   2
#define PCP_UNSUPP_OPCODE    4
#define PCP_UNSUPP_PROTOCOL  9
#define PCP_ADDRESS_MISMATCH 12

void flare_sim_nat_set_portmap_hook(flare_sim_nat *n, flare_sim_portmap_hook hook, void *user)
{
    n->pm_hook = hook;
    n->pm_user = user;
}

void flare_sim_nat_reboot(flare_sim_nat *n)
{
    flare__sim_nat_clear(n, 0);
    n->st.mappings_active = 0;
    n->st.portmap_active = 0;
    n->booted = n->sim->now;
}

static uint32_t epoch(const flare_sim_nat *n)
{
    return (uint32_t)((n->sim->now - n->booted) / FLARE_NS_PER_S);
}

static sim_mapping *pinned(flare_sim_nat *n, uint8_t proto, const flare_ipaddr *in)
{
    for (sim_mapping *m = n->maps; m; m = m->next)
        if (m->pinned_until && m->proto == proto && flare_ipaddr_equal(&m->in, in))
            return m;
    return NULL;
}

static void unpin(flare_sim_nat *n, sim_mapping *m)
{
    n->st.mappings_active--;
    n->st.portmap_active--;
    n->st.portmap_deleted++;
    flare__sim_mapping_del(n, m);
}

/* Maps (lifetime > 0) or deletes in for proto. Returns 0 with the external
 * endpoint in *ext (port 0 after a delete), or FLARE_ERR_LIMIT. */
static int pm_map(flare_sim_nat *n, uint8_t proto, const flare_ipaddr *in, uint16_t want,
                  uint32_t *lifetime, flare_ipaddr *ext)
{
    flare_sim_nat_stats tmp;
    flare_sim_nat_stats_get(n, &tmp); /* expire what is due first */
    sim_mapping *m = pinned(n, proto, in);
    *ext = n->out->ip;
    ext->port = 0;
    if (*lifetime == 0) {
        if (m)
            unpin(n, m);
        return 0;
    }
    int fresh = 0;
    if (!m && n->cfg.mapping == FLARE_SIM_EI) {
        /* An endpoint-independent box already has the mapping: keep it. */
        for (m = n->maps; m && !(m->proto == proto && flare_ipaddr_equal(&m->in, in));)
            m = m->next;
    }
    if (!m) {
        uint16_t port;
        if (flare__sim_nat_pick_port(n, proto, want, &port) < 0)
            return FLARE_ERR_LIMIT;
        m = flare__calloc(n->sim->mem, 1, sizeof(*m));
        if (!m)
            return FLARE_ERR_LIMIT;
        m->proto = proto;
        m->in = *in;
        m->ext = n->out->ip;
        m->ext.port = port;
        m->last = n->sim->now;
        /* after the flows that already run */
        if (flare__sim_mapping_add(n, m, 1) < 0)
            return FLARE_ERR_LIMIT;
        fresh = 1;
    }
    if (*lifetime > PM_MAX_LIFETIME)
        *lifetime = PM_MAX_LIFETIME;
    int was_pinned = m->pinned_until != 0;
    if (flare__sim_mapping_pin(n, m, n->sim->now + (flare_tstamp)*lifetime * FLARE_NS_PER_S) < 0) {
        if (fresh)
            flare__sim_mapping_del(n, m);
        return FLARE_ERR_LIMIT;
    }
    m->last = n->sim->now;
    if (fresh) {
        n->st.mappings_created++;
        n->st.mappings_active++;
    }
    n->st.portmap_active += !was_pinned;
    *ext = m->ext;
    return 0;
}

static size_t natpmp(flare_sim_nat *n, const sim_pkt *p, uint8_t *out)
{
    flare_natpmp_req q;
    if (flare_natpmp_parse_req(&q, p->data, p->len) < 0)
        return 0;
    flare_natpmp_resp r = {.op = (uint8_t)(128 + (q.op <= 2 ? q.op : 0)), .epoch = epoch(n)};
    if (q.version != 0) {
        r.result = 1; /* unsupported version */
    } else if (q.op > 2) {
        r.result = 5; /* unsupported opcode */
    } else if (q.op == 0) {
        memcpy(r.external_ip, n->out->ip.ip, 4);
    } else if (!q.internal_port) {
        r.result = 2; /* "delete all" is not offered */
    } else {
        flare_ipaddr in = p->src, ext;
        in.port = q.internal_port;
        uint32_t lt = q.lifetime;
        if (pm_map(n, q.op == 2 ? SIM_TCP : SIM_UDP, &in, q.external_port, &lt, &ext) < 0)
            r.result = 4; /* out of resources */
        r.internal_port = q.internal_port;
        r.external_port = ext.port;
        r.lifetime = lt;
    }
    return flare_natpmp_encode_resp(out, PM_RESP_MAX, &r);
}

/* A 24-byte PCP answer carrying only a result. */
static size_t pcp_error(const flare_sim_nat *n, uint8_t opcode, uint8_t result, uint8_t *out)
{
    memset(out, 0, 24);
    out[0] = 2;
    out[1] = (uint8_t)(0x80 | (opcode & 0x7f));
    out[3] = result;
    uint32_t e = epoch(n);
    out[8] = (uint8_t)(e >> 24);
    out[9] = (uint8_t)(e >> 16);
    out[10] = (uint8_t)(e >> 8);
    out[11] = (uint8_t)e;
    return 24;
}

static size_t pcp(flare_sim_nat *n, const sim_pkt *p, uint8_t *out)
{
    uint32_t lifetime;
    flare_ipaddr client;
    flare_pcp_map m;
    int rv = flare_pcp_parse_map_req(p->data, p->len, &lifetime, &client, &m);
    if (rv == FLARE_ERR_UNSUPPORTED)
        return pcp_error(n, p->data[1], p->data[0] != 2 ? PCP_UNSUPP_VERSION : PCP_UNSUPP_OPCODE,
                         out);
    if (rv < 0)
        return 0;
    uint8_t result = 0;
    flare_ipaddr in = p->src, ext = {0};
    in.port = m.internal_port;
    if (!flare_ipaddr_same_ip(&client, &p->src))
        result = PCP_ADDRESS_MISMATCH;
    else if (m.protocol != SIM_TCP && m.protocol != SIM_UDP)
        result = PCP_UNSUPP_PROTOCOL;
    else if (!m.internal_port)
        result = PCP_NOT_AUTHORIZED;
    else if (pm_map(n, m.protocol, &in, m.external_port, &lifetime, &ext) < 0)
        result = FLARE_PCP_NO_RESOURCES;
    if (result)
        lifetime = 0;
    m.external = ext;
    m.external_port = ext.port;
    return flare_pcp_encode_map_resp(out, PM_RESP_MAX, result, lifetime, epoch(n), &m);
}

void flare__sim_portmap_input(flare_sim_nat *n, sim_pkt *p)
{
    flare_sim *sim = n->sim;
    n->st.portmap_requests++;
    flare__sim_trace(sim, &n->node.name, FLARE_SIM_DELIVERED, p);
    uint8_t resp[PM_RESP_MAX];
    size_t len = 0;
    int v = p->len ? p->data[0] : -1;
    if (n->pm_hook)
        len = n->pm_hook(n, p->data, p->len, resp, sizeof(resp), n->pm_user);
    else if (n->cfg.portmap == FLARE_SIM_PORTMAP_NATPMP && v == 0)
        len = natpmp(n, p, resp);
    else if (n->cfg.portmap == FLARE_SIM_PORTMAP_NATPMP && v > 0) /* RFC 6887 section 9 */
        len = flare_natpmp_encode_resp(
            resp, sizeof(resp),
            &(flare_natpmp_resp){
                .op = 128 + (p->len > 1 && p->data[1] == 1), .result = 1, .epoch = epoch(n)});
    else if (n->cfg.portmap == FLARE_SIM_PORTMAP_PCP && v >= 0)
        len = v == 0 ? pcp_error(n, 0, PCP_UNSUPP_VERSION, resp) : pcp(n, p, resp);
    if (len > sizeof(resp))
        len = 0;
    if (len) {
        flare_ipaddr from = n->in->ip;
        from.port = FLARE_PORTMAP_SERVER_PORT;
        sim_pkt *r = flare__sim_pkt_new(sim, SIM_UDP, 0, &from, &p->src, resp, len);
        if (r) {
            flare__sim_trace(sim, &n->node.name, FLARE_SIM_SENT, r);
            flare__sim_link_send(sim, n->in, 0, r);
        }
    }
    flare__free(sim->mem, p);
}
