/* The client side of one port mapping over PCP, then NAT-PMP (sans-I/O).
 *
 * Retransmissions start at retry_initial and double, `attempts` datagrams
 * per protocol: shorter than RFC 6887's 3 s first timeout, because a node
 * that waits for a router that never answers keeps a relay meanwhile. A
 * gateway that answers PCP with NAT-PMP's "unsupported version" (RFC 6887
 * section 9) moves us to NAT-PMP at once. */
#include <string.h>

#include "flare/portmap.h"

#define PROTO_TCP 6
#define PROTO_UDP 17

static void push_event(flare_portmap_client *c, flare_portmap_ev_kind kind, int error)
{
    if (c->nevs == FLARE_PORTMAP_MAX_EVENTS) /* the oldest is least useful */
        memmove(c->evs, c->evs + 1, sizeof(c->evs[0]) * --c->nevs);
    flare_portmap_ev *e = &c->evs[c->nevs++];
    memset(e, 0, sizeof(*e));
    e->kind = kind;
    e->proto = c->proto;
    e->external = c->external;
    e->lifetime = c->lifetime;
    e->error = error;
}

int flare_portmap_client_init(flare_portmap_client *c, const flare_portmap_settings *cfg, int tcp,
                              const flare_ipaddr *internal, const flare_ipaddr *gateway,
                              flare_rng rng)
{
    if (!c || !internal || !gateway || !rng.fn)
        return FLARE_ERR_INVALID_ARG;
    memset(c, 0, sizeof(*c));
    if (cfg)
        c->cfg = *cfg;
    else
        flare_portmap_settings_default(&c->cfg);
    if (c->cfg.struct_size != sizeof(c->cfg) || (!c->cfg.enable_pcp && !c->cfg.enable_natpmp) ||
        c->cfg.lifetime < 120 || !c->cfg.attempts || !c->cfg.retry_initial ||
        !c->cfg.retry_interval || !internal->port ||
        (internal->family != 4 && internal->family != 6) || internal->family != gateway->family ||
        (!c->cfg.enable_pcp && internal->family != 4)) /* NAT-PMP is IPv4 only */
        return FLARE_ERR_INVALID_ARG;
    c->rng = rng;
    c->tcp = tcp ? 1 : 0;
    c->internal = *internal;
    c->gateway = *gateway;
    c->gateway.port = FLARE_PORTMAP_SERVER_PORT;
    c->state = FLARE__PM_IDLE;
    c->deadline = FLARE_TSTAMP_NEVER;
    return 0;
}

static uint16_t suggested_port(const flare_portmap_client *c)
{
    return c->external.family ? c->external.port : c->internal.port;
}

static void encode(flare_portmap_client *c)
{
    switch (c->state) {
    case FLARE__PM_PCP: {
        flare_pcp_map m = {.protocol = c->tcp ? PROTO_TCP : PROTO_UDP,
                           .internal_port = c->internal.port,
                           .external_port = suggested_port(c)};
        memcpy(m.nonce, c->nonce, sizeof(m.nonce));
        if (c->external.family)
            m.external = c->external;
        c->out_len =
            flare_pcp_encode_map(c->out, sizeof(c->out), c->cfg.lifetime, &c->internal, &m);
        break;
    }
    case FLARE__PM_NATPMP_ADDR:
        c->out_len = flare_natpmp_encode_addr_req(c->out, sizeof(c->out));
        break;
    case FLARE__PM_NATPMP_MAP:
        c->out_len = flare_natpmp_encode_map(c->out, sizeof(c->out), c->tcp, c->internal.port,
                                             suggested_port(c), c->cfg.lifetime);
        break;
    default:
        c->out_len = 0;
    }
}

/* Sends the current request again, with the next (doubled) timeout. */
static void transmit(flare_portmap_client *c, flare_tstamp now)
{
    encode(c);
    unsigned shift = c->tries < 8 ? c->tries : 8; /* at most 64 s apart by default */
    c->tries++;
    c->deadline = now + (c->cfg.retry_initial << shift);
    if (c->renewing && c->deadline > c->expires)
        c->deadline = c->expires;
}

static void begin(flare_portmap_client *c, flare__pm_state st, flare_tstamp now)
{
    c->state = st;
    c->proto = st == FLARE__PM_PCP ? FLARE_PORTMAP_PCP : FLARE_PORTMAP_NATPMP;
    c->tries = 0;
    if (st == FLARE__PM_PCP && !c->renewing) /* a renewal keeps its nonce */
        c->rng.fn(c->nonce, sizeof(c->nonce), c->rng.user);
    transmit(c, now);
}

static void begin_first(flare_portmap_client *c, flare_tstamp now)
{
    begin(c, c->cfg.enable_pcp ? FLARE__PM_PCP : FLARE__PM_NATPMP_ADDR, now);
}

void flare_portmap_client_start(flare_portmap_client *c, flare_tstamp now)
{
    if (!c || c->state == FLARE__PM_STOPPED)
        return;
    c->renewing = 0;
    memset(&c->external, 0, sizeof(c->external));
    begin_first(c, now);
}

static void lose(flare_portmap_client *c, int error)
{
    push_event(c, FLARE_PORTMAP_EV_LOST, error);
    memset(&c->external, 0, sizeof(c->external));
    c->renewing = 0;
    c->lifetime = 0;
}

/* The current protocol cannot give us a mapping: try the next one, or wait
 * retry_interval. */
static void protocol_failed(flare_portmap_client *c, int error, flare_tstamp now)
{
    if (c->renewing)
        lose(c, error);
    if (c->proto == FLARE_PORTMAP_PCP && c->cfg.enable_natpmp && c->internal.family == 4) {
        begin(c, FLARE__PM_NATPMP_ADDR, now);
        return;
    }
    push_event(c, FLARE_PORTMAP_EV_FAILED, error);
    c->state = FLARE__PM_BACKOFF;
    c->out_len = 0;
    c->deadline = now + c->cfg.retry_interval;
}

flare_tstamp flare_portmap_client_deadline(const flare_portmap_client *c)
{
    return c ? c->deadline : FLARE_TSTAMP_NEVER;
}

void flare_portmap_client_timeout(flare_portmap_client *c, flare_tstamp now)
{
    if (!c || now < c->deadline)
        return;
    switch (c->state) {
    case FLARE__PM_PCP:
    case FLARE__PM_NATPMP_ADDR:
    case FLARE__PM_NATPMP_MAP:
        if (c->renewing && now >= c->expires) {
            lose(c, FLARE_ERR_TIMEOUT);
            begin_first(c, now);
        } else if (c->renewing) {
            transmit(c, now); /* keep asking until the mapping expires */
        } else if (c->tries < c->cfg.attempts) {
            transmit(c, now);
        } else {
            protocol_failed(c, FLARE_ERR_TIMEOUT, now);
        }
        break;
    case FLARE__PM_MAPPED:
        c->renewing = 1;
        begin(c, c->proto == FLARE_PORTMAP_PCP ? FLARE__PM_PCP : FLARE__PM_NATPMP_ADDR, now);
        break;
    case FLARE__PM_BACKOFF:
        flare_portmap_client_start(c, now);
        break;
    default:
        c->deadline = FLARE_TSTAMP_NEVER;
    }
}

/* RFC 6886 section 3.6 / RFC 6887 section 8.5: a gateway whose epoch did
 * not advance (nearly) as fast as our clock restarted and lost its state. */
static int epoch_ok(const flare_portmap_client *c, uint32_t epoch, flare_tstamp now)
{
    if (!c->have_epoch)
        return 1;
    if (epoch < c->epoch)
        return 0;
    uint64_t elapsed = (now - c->epoch_at) / FLARE_NS_PER_S;
    return (uint64_t)(epoch - c->epoch) + 2 >= elapsed - elapsed / 8;
}

static void mapped(flare_portmap_client *c, const flare_ipaddr *ext, uint32_t lifetime,
                   uint32_t epoch, flare_tstamp now)
{
    int renewal = c->renewing && epoch_ok(c, epoch, now);
    c->have_epoch = 1;
    c->epoch = epoch;
    c->epoch_at = now;
    if (lifetime > c->cfg.lifetime)
        lifetime = c->cfg.lifetime; /* never trust more than we asked for */
    c->external = *ext;
    c->lifetime = lifetime;
    c->expires = now + (flare_tstamp)lifetime * FLARE_NS_PER_S;
    flare_tstamp renew = (flare_tstamp)lifetime * FLARE_NS_PER_S / 2;
    if (renew < c->cfg.min_renew)
        renew = c->cfg.min_renew;
    c->state = FLARE__PM_MAPPED;
    c->renewing = 0;
    c->tries = 0;
    c->out_len = 0;
    c->deadline = now + renew;
    push_event(c, renewal ? FLARE_PORTMAP_EV_RENEWED : FLARE_PORTMAP_EV_MAPPED, 0);
}

static int external_usable(const flare_ipaddr *ext, int family)
{
    if (ext->family != family || !ext->port)
        return 0;
    static const uint8_t zero[16];
    return memcmp(ext->ip, zero, family == 4 ? 4 : 16) != 0;
}

static int pcp_input(flare_portmap_client *c, const uint8_t *data, size_t len, flare_tstamp now)
{
    flare_pcp_resp r;
    int rv = flare_pcp_parse(&r, data, len);
    if (rv)
        return rv;
    if (r.opcode != FLARE_PCP_OP_MAP || memcmp(r.map.nonce, c->nonce, sizeof(c->nonce)) ||
        r.map.protocol != (c->tcp ? PROTO_TCP : PROTO_UDP) ||
        r.map.internal_port != c->internal.port)
        return FLARE_ERR_REFUSED; /* not an answer to our request */
    if (r.result != FLARE_PCP_SUCCESS) {
        protocol_failed(
            c, r.result == FLARE_PCP_UNSUPP_VERSION ? FLARE_ERR_UNSUPPORTED : FLARE_ERR_REFUSED,
            now);
        return 0;
    }
    flare_ipaddr ext = r.map.external;
    ext.port = r.map.external_port;
    if (!r.lifetime || !external_usable(&ext, c->internal.family))
        return FLARE_ERR_MALFORMED;
    mapped(c, &ext, r.lifetime, r.epoch, now);
    return 0;
}

static int natpmp_input(flare_portmap_client *c, const uint8_t *data, size_t len, flare_tstamp now)
{
    flare_natpmp_resp r;
    int rv = flare_natpmp_parse(&r, data, len);
    if (rv)
        return rv;
    if (c->state == FLARE__PM_PCP) {
        /* A NAT-PMP gateway's answer to our PCP request. */
        if (r.result != 1)
            return FLARE_ERR_REFUSED;
        protocol_failed(c, FLARE_ERR_UNSUPPORTED, now);
        return 0;
    }
    if (c->state == FLARE__PM_NATPMP_ADDR) {
        if (r.op != 128)
            return FLARE_ERR_REFUSED;
        if (r.result) {
            protocol_failed(c, FLARE_ERR_REFUSED, now);
            return 0;
        }
        memcpy(c->natpmp_ext_ip, r.external_ip, 4);
        if (!external_usable(&(flare_ipaddr){.family = 4,
                                             .ip = {r.external_ip[0], r.external_ip[1],
                                                    r.external_ip[2], r.external_ip[3]},
                                             .port = 1},
                             4))
            return FLARE_ERR_MALFORMED;
        c->state = FLARE__PM_NATPMP_MAP;
        c->tries = 0;
        transmit(c, now);
        return 0;
    }
    if (r.op != (c->tcp ? 130 : 129) || (r.result == 0 && r.internal_port != c->internal.port))
        return FLARE_ERR_REFUSED;
    if (r.result) {
        protocol_failed(c, FLARE_ERR_REFUSED, now);
        return 0;
    }
    if (!r.lifetime || !r.external_port)
        return FLARE_ERR_MALFORMED;
    flare_ipaddr ext = {.family = 4, .port = r.external_port};
    memcpy(ext.ip, c->natpmp_ext_ip, 4);
    mapped(c, &ext, r.lifetime, r.epoch, now);
    return 0;
}

int flare_portmap_client_input(flare_portmap_client *c, const flare_ipaddr *from,
                               const uint8_t *data, size_t len, flare_tstamp now)
{
    if (!c || !from || (!data && len))
        return FLARE_ERR_INVALID_ARG;
    if (!flare_ipaddr_equal(from, &c->gateway))
        return FLARE_ERR_REFUSED;
    if (c->state != FLARE__PM_PCP && c->state != FLARE__PM_NATPMP_ADDR &&
        c->state != FLARE__PM_NATPMP_MAP)
        return FLARE_ERR_REFUSED;
    if (len < 1)
        return FLARE_ERR_TRUNCATED;
    if (data[0] == 0)
        return natpmp_input(c, data, len, now);
    if (c->state != FLARE__PM_PCP)
        return FLARE_ERR_REFUSED;
    return pcp_input(c, data, len, now);
}

size_t flare_portmap_client_poll_send(flare_portmap_client *c, uint8_t *out, size_t cap)
{
    if (!c || !c->out_len || !out || cap < c->out_len)
        return 0;
    size_t n = c->out_len;
    memcpy(out, c->out, n);
    c->out_len = 0;
    return n;
}

int flare_portmap_client_poll_event(flare_portmap_client *c, flare_portmap_ev *ev)
{
    if (!c || !c->nevs || !ev)
        return 0;
    *ev = c->evs[0];
    memmove(c->evs, c->evs + 1, sizeof(c->evs[0]) * --c->nevs);
    return 1;
}

void flare_portmap_client_stop(flare_portmap_client *c, flare_tstamp now)
{
    (void)now;
    if (!c || c->state == FLARE__PM_STOPPED)
        return;
    c->out_len = 0;
    if (c->external.family && c->proto == FLARE_PORTMAP_PCP) {
        flare_pcp_map m = {.protocol = c->tcp ? PROTO_TCP : PROTO_UDP,
                           .internal_port = c->internal.port,
                           .external_port = c->external.port,
                           .external = c->external};
        memcpy(m.nonce, c->nonce, sizeof(m.nonce));
        c->out_len = flare_pcp_encode_map(c->out, sizeof(c->out), 0, &c->internal, &m);
    } else if (c->external.family && c->proto == FLARE_PORTMAP_NATPMP) {
        c->out_len =
            flare_natpmp_encode_map(c->out, sizeof(c->out), c->tcp, c->internal.port, 0, 0);
    }
    memset(&c->external, 0, sizeof(c->external));
    c->state = FLARE__PM_STOPPED;
    c->deadline = FLARE_TSTAMP_NEVER;
}

int flare_portmap_client_mapped(const flare_portmap_client *c)
{
    return c && c->external.family != 0;
}
