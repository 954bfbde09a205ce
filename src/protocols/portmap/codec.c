/* NAT-PMP (RFC 6886) and PCP (RFC 6887) messages. Responses come from the
 * network: every length is checked before a byte is read. */
#include <string.h>

#include "flare/portmap.h"

#define NATPMP_VERSION 0
#define PCP_VERSION    2
#define PCP_HDR_LEN    24
#define PCP_RESPONSE   0x80

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)(v >> 16));
    put16(p + 2, (uint16_t)v);
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)get16(p) << 16 | get16(p + 2);
}

const char *flare_portmap_proto_name(flare_portmap_proto p)
{
    switch (p) {
    case FLARE_PORTMAP_PCP:
        return "pcp";
    case FLARE_PORTMAP_NATPMP:
        return "nat-pmp";
    case FLARE_PORTMAP_UPNP:
        return "upnp";
    default:
        return "none";
    }
}

void flare_portmap_settings_default(flare_portmap_settings *s)
{
    memset(s, 0, sizeof(*s));
    s->struct_size = sizeof(*s);
    s->enable_pcp = 1;
    s->enable_natpmp = 1;
    s->enable_upnp = 1;
    s->lifetime = 7200;
    s->retry_initial = 250 * FLARE_NS_PER_MS;
    s->attempts = 4;
    s->retry_interval = 300 * FLARE_NS_PER_S;
    s->min_renew = 30 * FLARE_NS_PER_S;
    s->advertise_unconfirmed = 0;
}

/* ---- NAT-PMP ---------------------------------------------------------------- */

size_t flare_natpmp_encode_addr_req(uint8_t *out, size_t cap)
{
    if (!out || cap < FLARE_NATPMP_ADDR_REQ_LEN)
        return 0;
    out[0] = NATPMP_VERSION;
    out[1] = 0;
    return FLARE_NATPMP_ADDR_REQ_LEN;
}

size_t flare_natpmp_encode_map(uint8_t *out, size_t cap, int tcp, uint16_t internal_port,
                               uint16_t external_port, uint32_t lifetime)
{
    if (!out || cap < FLARE_NATPMP_MAP_LEN)
        return 0;
    out[0] = NATPMP_VERSION;
    out[1] = tcp ? 2 : 1;
    put16(out + 2, 0);
    put16(out + 4, internal_port);
    put16(out + 6, external_port);
    put32(out + 8, lifetime);
    return FLARE_NATPMP_MAP_LEN;
}

int flare_natpmp_parse(flare_natpmp_resp *r, const uint8_t *data, size_t len)
{
    if (!r || (!data && len))
        return FLARE_ERR_INVALID_ARG;
    memset(r, 0, sizeof(*r));
    if (len < 8)
        return FLARE_ERR_TRUNCATED;
    if (data[0] != NATPMP_VERSION || data[1] < 128 || data[1] > 130)
        return FLARE_ERR_MALFORMED;
    r->op = data[1];
    r->result = get16(data + 2);
    r->epoch = get32(data + 4);
    if (r->result != 0)
        return 0; /* error answers need only the header */
    if (r->op == 128) {
        if (len < 12)
            return FLARE_ERR_TRUNCATED;
        memcpy(r->external_ip, data + 8, 4);
        return 0;
    }
    if (len < 16)
        return FLARE_ERR_TRUNCATED;
    r->internal_port = get16(data + 8);
    r->external_port = get16(data + 10);
    r->lifetime = get32(data + 12);
    return 0;
}

/* ---- PCP ------------------------------------------------------------------------ */

static void put_ip(uint8_t *p, const flare_ipaddr *a)
{
    memset(p, 0, 16);
    if (a->family == 4) {
        p[10] = p[11] = 0xff;
        memcpy(p + 12, a->ip, 4);
    } else if (a->family == 6) {
        memcpy(p, a->ip, 16);
    }
}

static void get_ip(flare_ipaddr *a, const uint8_t *p)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    memset(a, 0, sizeof(*a));
    if (memcmp(p, mapped, 12) == 0) {
        a->family = 4;
        memcpy(a->ip, p + 12, 4);
    } else {
        a->family = 6;
        memcpy(a->ip, p, 16);
    }
}

size_t flare_pcp_encode_map(uint8_t *out, size_t cap, uint32_t lifetime, const flare_ipaddr *client,
                            const flare_pcp_map *m)
{
    if (!out || !client || !m || cap < FLARE_PCP_MAP_LEN ||
        (client->family != 4 && client->family != 6))
        return 0;
    memset(out, 0, FLARE_PCP_MAP_LEN);
    out[0] = PCP_VERSION;
    out[1] = FLARE_PCP_OP_MAP;
    put32(out + 4, lifetime);
    put_ip(out + 8, client);
    uint8_t *p = out + PCP_HDR_LEN;
    memcpy(p, m->nonce, 12);
    p[12] = m->protocol;
    put16(p + 16, m->internal_port);
    put16(p + 18, m->external_port);
    if (m->external.family)
        put_ip(p + 20, &m->external);
    else if (client->family == 4)
        put_ip(p + 20, &(flare_ipaddr){.family = 4}); /* ::ffff:0.0.0.0: any IPv4 */
    return FLARE_PCP_MAP_LEN;
}

/* Options (RFC 6887 section 7.3): code, reserved, 16-bit length, data
 * padded to 4 bytes. Only their framing is checked; none is needed here. */
static int skip_options(const uint8_t *p, size_t len)
{
    while (len) {
        if (len < 4)
            return FLARE_ERR_MALFORMED;
        size_t olen = get16(p + 2);
        size_t padded = (olen + 3) & ~(size_t)3;
        if (padded > len - 4)
            return FLARE_ERR_MALFORMED;
        p += 4 + padded;
        len -= 4 + padded;
    }
    return 0;
}

int flare_pcp_parse(flare_pcp_resp *r, const uint8_t *data, size_t len)
{
    if (!r || (!data && len))
        return FLARE_ERR_INVALID_ARG;
    memset(r, 0, sizeof(*r));
    if (len < 4)
        return FLARE_ERR_TRUNCATED;
    r->version = data[0];
    r->opcode = data[1] & 0x7f;
    r->result = data[3];
    if (r->version != PCP_VERSION)
        return FLARE_ERR_UNSUPPORTED;
    if (len > FLARE_PCP_MAX_MSG)
        return FLARE_ERR_TOO_LARGE;
    if (len < PCP_HDR_LEN)
        return FLARE_ERR_TRUNCATED;
    if (!(data[1] & PCP_RESPONSE) || len % 4)
        return FLARE_ERR_MALFORMED;
    r->lifetime = get32(data + 4);
    r->epoch = get32(data + 8);
    size_t off = PCP_HDR_LEN;
    if (r->opcode == FLARE_PCP_OP_MAP) {
        if (len < FLARE_PCP_MAP_LEN)
            return r->result ? 0 : FLARE_ERR_TRUNCATED;
        const uint8_t *p = data + PCP_HDR_LEN;
        memcpy(r->map.nonce, p, 12);
        r->map.protocol = p[12];
        r->map.internal_port = get16(p + 16);
        r->map.external_port = get16(p + 18);
        get_ip(&r->map.external, p + 20);
        off = FLARE_PCP_MAP_LEN;
    } else if (r->opcode != FLARE_PCP_OP_ANNOUNCE) {
        return 0; /* other opcodes: the header is all a client needs */
    }
    return skip_options(data + off, len - off);
}

/* ---- the gateway's side ---------------------------------------------------------- */

int flare_natpmp_parse_req(flare_natpmp_req *r, const uint8_t *data, size_t len)
{
    if (!r || (!data && len))
        return FLARE_ERR_INVALID_ARG;
    memset(r, 0, sizeof(*r));
    if (len < 2)
        return FLARE_ERR_TRUNCATED;
    r->version = data[0];
    r->op = data[1];
    if (r->op >= 128)
        return FLARE_ERR_MALFORMED;
    if (r->version != NATPMP_VERSION || r->op == 0 || r->op > 2)
        return 0;
    if (len < FLARE_NATPMP_MAP_LEN)
        return FLARE_ERR_TRUNCATED;
    r->internal_port = get16(data + 4);
    r->external_port = get16(data + 6);
    r->lifetime = get32(data + 8);
    return 0;
}

size_t flare_natpmp_encode_resp(uint8_t *out, size_t cap, const flare_natpmp_resp *r)
{
    if (!out || !r || r->op < 128 || r->op > 130)
        return 0;
    size_t len = r->result == 1 ? 8 : r->op == 128 ? 12 : 16;
    if (cap < len)
        return 0;
    memset(out, 0, len);
    out[0] = NATPMP_VERSION;
    out[1] = r->op;
    put16(out + 2, r->result);
    put32(out + 4, r->epoch);
    if (len == 12) {
        memcpy(out + 8, r->external_ip, 4);
    } else if (len == 16) {
        put16(out + 8, r->internal_port);
        put16(out + 10, r->external_port);
        put32(out + 12, r->lifetime);
    }
    return len;
}

int flare_pcp_parse_map_req(const uint8_t *data, size_t len, uint32_t *lifetime,
                            flare_ipaddr *client, flare_pcp_map *m)
{
    if (!lifetime || !client || !m || (!data && len))
        return FLARE_ERR_INVALID_ARG;
    memset(m, 0, sizeof(*m));
    memset(client, 0, sizeof(*client));
    *lifetime = 0;
    if (len < 2)
        return FLARE_ERR_TRUNCATED;
    if (data[0] != PCP_VERSION || (data[1] & 0x7f) != FLARE_PCP_OP_MAP)
        return data[1] & PCP_RESPONSE ? FLARE_ERR_MALFORMED : FLARE_ERR_UNSUPPORTED;
    if (data[1] & PCP_RESPONSE || len % 4)
        return FLARE_ERR_MALFORMED;
    if (len > FLARE_PCP_MAX_MSG)
        return FLARE_ERR_TOO_LARGE;
    if (len < FLARE_PCP_MAP_LEN)
        return FLARE_ERR_TRUNCATED;
    *lifetime = get32(data + 4);
    get_ip(client, data + 8);
    const uint8_t *p = data + PCP_HDR_LEN;
    memcpy(m->nonce, p, 12);
    m->protocol = p[12];
    m->internal_port = get16(p + 16);
    m->external_port = get16(p + 18);
    get_ip(&m->external, p + 20);
    return skip_options(data + FLARE_PCP_MAP_LEN, len - FLARE_PCP_MAP_LEN);
}

size_t flare_pcp_encode_map_resp(uint8_t *out, size_t cap, uint8_t result, uint32_t lifetime,
                                 uint32_t epoch, const flare_pcp_map *m)
{
    if (!out || !m || cap < FLARE_PCP_MAP_LEN)
        return 0;
    memset(out, 0, FLARE_PCP_MAP_LEN);
    out[0] = PCP_VERSION;
    out[1] = PCP_RESPONSE | FLARE_PCP_OP_MAP;
    out[3] = result;
    put32(out + 4, lifetime);
    put32(out + 8, epoch);
    uint8_t *p = out + PCP_HDR_LEN;
    memcpy(p, m->nonce, 12);
    p[12] = m->protocol;
    put16(p + 16, m->internal_port);
    put16(p + 18, m->external_port);
    put_ip(p + 20, &m->external);
    return FLARE_PCP_MAP_LEN;
}
