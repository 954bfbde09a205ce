/* The hard-NAT punch (flare/hardpunch.h): codec, TCP port prediction plan
 * and the INFO/SYNC exchange. */
#include "flare/hardpunch.h"

#include <string.h>

#include "core/pb.h"
#include "flare/lpframe.h"

enum { F_TYPE = 1, F_NAT = 2, F_TCP_ADDR = 3, F_TCP_STEP = 4, F_UDP_ADDR = 5, F_UDP_NAT = 6 };

void flare_hardpunch_settings_default(flare_hardpunch_settings *s)
{
    memset(s, 0, sizeof(*s));
    s->struct_size = sizeof(*s);
    s->tcp_sockets = 4;
    s->tcp_window = 6;
    s->udp_sockets = 256;
    s->udp_probes = 2048;
    s->udp_interval = 10 * FLARE_NS_PER_MS;
    s->timeout = 30 * FLARE_NS_PER_S;
    s->exchange = 5 * FLARE_NS_PER_S;
}

int flare_hardpunch_settings_check(const flare_hardpunch_settings *s)
{
    if (!s || s->struct_size != sizeof(*s) || !s->tcp_sockets || !s->tcp_window ||
        s->tcp_sockets > FLARE_HARDPUNCH_MAX_SOCKETS ||
        s->tcp_window > FLARE_HARDPUNCH_MAX_SOCKETS || !s->udp_sockets ||
        s->udp_sockets > FLARE_HARDPUNCH_MAX_UDP || !s->udp_probes ||
        s->udp_probes > FLARE_HARDPUNCH_MAX_PROBES || !s->udp_interval || !s->timeout ||
        !s->exchange)
        return FLARE_ERR_INVALID_ARG;
    return 0;
}

/* ---- codec ---------------------------------------------------------------------------- */

int flare_hardpunch_msg_encode(const flare_hardpunch_msg *m, flare_buf *out)
{
    flare_buf b;
    flare_buf_init(&b, out->mem);
    int rv = flare__pb_put_varint_field(&b, F_TYPE, (uint64_t)m->type);
    if (rv == 0 && m->info.nat)
        rv = flare__pb_put_varint_field(&b, F_NAT, (uint64_t)m->info.nat);
    if (rv == 0 && m->info.has_tcp) {
        flare_multiaddr ma;
        rv = flare_multiaddr_from_ipaddr(&ma, &m->info.tcp, FLARE_MA_TCP);
        if (rv == 0)
            rv = flare__pb_put_bytes_field(&b, F_TCP_ADDR, ma.bytes, ma.len);
    }
    if (rv == 0 && m->info.tcp_step)
        rv = flare__pb_put_varint_field(&b, F_TCP_STEP, m->info.tcp_step);
    if (rv == 0 && m->info.has_udp) {
        flare_multiaddr ma;
        rv = flare_multiaddr_from_ipaddr(&ma, &m->info.udp, FLARE_MA_UDP);
        if (rv == 0)
            rv = flare__pb_put_bytes_field(&b, F_UDP_ADDR, ma.bytes, ma.len);
    }
    if (rv == 0 && m->info.udp_nat)
        rv = flare__pb_put_varint_field(&b, F_UDP_NAT, (uint64_t)m->info.udp_nat);
    if (rv == 0)
        rv = flare_lpframe_append(out, b.base, b.len);
    flare_buf_free(&b);
    return rv;
}

static int take_addr(flare_ipaddr *ip, int *has, int want, const uint8_t *p, size_t len)
{
    flare_multiaddr ma;
    int proto = 0;
    if (flare_multiaddr_from_bytes(&ma, p, len) != 0 ||
        flare_multiaddr_to_ipaddr(&ma, ip, &proto) != 0 || proto != want || ip->port == 0 ||
        (want == FLARE_MA_UDP && !flare_multiaddr_has(&ma, FLARE_MA_QUIC_V1)))
        return FLARE_ERR_MALFORMED;
    *has = 1;
    return 0;
}

int flare_hardpunch_msg_decode(flare_hardpunch_msg *m, const uint8_t *in, size_t len)
{
    flare__pb_reader r;
    flare__pb_field f;
    int rv, have_type = 0;
    uint64_t type = 0, nat = 0, step = 0, unat = 0;

    memset(m, 0, sizeof(*m));
    if (len > FLARE_HARDPUNCH_MAX_MSG)
        return FLARE_ERR_TOO_LARGE;
    flare__pb_reader_init(&r, in, len);
    while ((rv = flare__pb_next(&r, &f)) > 0) {
        int want = f.num == F_TCP_ADDR || f.num == F_UDP_ADDR ? FLARE__PB_LEN : FLARE__PB_VARINT;
        if (f.num > F_UDP_NAT)
            continue; /* unknown fields: later versions */
        if (f.wire != want)
            return FLARE_ERR_MALFORMED;
        if (f.num == F_TYPE) {
            type = f.v;
            have_type = 1;
        } else if (f.num == F_NAT) {
            nat = f.v;
        } else if (f.num == F_TCP_STEP) {
            step = f.v;
        } else if (f.num == F_UDP_NAT) {
            unat = f.v;
        } else if (f.num == F_TCP_ADDR) {
            if ((rv = take_addr(&m->info.tcp, &m->info.has_tcp, FLARE_MA_TCP, f.data, f.len)) < 0)
                return rv;
        } else if ((rv = take_addr(&m->info.udp, &m->info.has_udp, FLARE_MA_UDP, f.data, f.len)) <
                   0) {
            return rv;
        }
    }
    if (rv < 0)
        return rv;
    if (!have_type)
        return FLARE_ERR_MALFORMED;
    if ((type != FLARE_HARDPUNCH_INFO && type != FLARE_HARDPUNCH_SYNC) ||
        nat > FLARE_HARDPUNCH_NAT_HARD || unat > FLARE_HARDPUNCH_NAT_HARD)
        return FLARE_ERR_UNKNOWN_CODE;
    m->info.udp_nat = (flare_hardpunch_nat)unat;
    m->type = (flare_hardpunch_type)type;
    m->info.nat = (flare_hardpunch_nat)nat;
    m->info.tcp_step = step <= FLARE_HARDPUNCH_MAX_STEP ? (uint32_t)step : 0;
    return 0;
}

/* ---- the plan ------------------------------------------------------------------------- */

static uint16_t predict(uint16_t base, uint32_t step, unsigned k)
{
    /* Ports below 1024 are never allocated by a NAT: wrap within 1024..65535. */
    uint32_t span = 65536 - 1024;
    uint32_t off = (uint32_t)(base < 1024 ? 0 : base - 1024);
    return (uint16_t)(1024 + (off + step * k) % span);
}

void flare_hardpunch_plan_tcp(const flare_hardpunch_info *mine, const flare_hardpunch_info *peer,
                              const flare_hardpunch_settings *s, flare_hardpunch_plan *out)
{
    memset(out, 0, sizeof(*out));
    if (!peer->has_tcp || (mine->has_tcp && mine->tcp.family != peer->tcp.family))
        return;
    /* The hard side dials only when the easy side can predict its ports:
     * against random allocation its sockets would knock for nothing. */
    if (mine->nat == FLARE_HARDPUNCH_NAT_HARD && mine->tcp_step &&
        peer->nat != FLARE_HARDPUNCH_NAT_HARD) {
        out->role = FLARE_HARDPUNCH_ROLE_HARD;
        out->to = peer->tcp;
        out->n = s->tcp_sockets;
        for (unsigned i = 0; i < out->n; i++)
            out->ports[i] = peer->tcp.port;
    } else if (mine->nat != FLARE_HARDPUNCH_NAT_HARD && peer->nat == FLARE_HARDPUNCH_NAT_HARD &&
               peer->tcp_step) {
        out->role = FLARE_HARDPUNCH_ROLE_EASY;
        out->to = peer->tcp;
        out->n = s->tcp_window;
        for (unsigned k = 0; k < out->n; k++)
            out->ports[k] = predict(peer->tcp.port, peer->tcp_step, k + 1);
    }
}

void flare_hardpunch_plan_udp(const flare_hardpunch_info *mine, const flare_hardpunch_info *peer,
                              const flare_hardpunch_settings *s, flare_hardpunch_plan *out)
{
    memset(out, 0, sizeof(*out));
    if (!peer->has_udp || (mine->has_udp && mine->udp.family != peer->udp.family))
        return;
    if (mine->udp_nat == FLARE_HARDPUNCH_NAT_HARD && peer->udp_nat != FLARE_HARDPUNCH_NAT_HARD) {
        out->role = FLARE_HARDPUNCH_ROLE_HARD;
        out->n = s->udp_sockets;
    } else if (mine->udp_nat != FLARE_HARDPUNCH_NAT_HARD &&
               peer->udp_nat == FLARE_HARDPUNCH_NAT_HARD) {
        out->role = FLARE_HARDPUNCH_ROLE_EASY;
        out->n = s->udp_probes;
    }
    if (out->role)
        out->to = peer->udp;
}

uint16_t flare_hardpunch_probe_port(const uint8_t rnd[2])
{
    return (uint16_t)(1024 + ((unsigned)rnd[0] << 8 | rnd[1]) % (65536 - 1024));
}

/* ---- the exchange --------------------------------------------------------------------- */

static int send_msg(flare_hardpunch *hp, flare_hardpunch_type t, flare_buf *out)
{
    flare_hardpunch_msg m = {.type = t, .info = hp->mine};
    if (t == FLARE_HARDPUNCH_SYNC)
        memset(&m.info, 0, sizeof(m.info));
    return flare_hardpunch_msg_encode(&m, out);
}

int flare_hardpunch_init(flare_hardpunch *hp, int initiator, const flare_hardpunch_info *mine,
                         const flare_hardpunch_settings *s, flare_tstamp now, flare_buf *out)
{
    int rv = flare_hardpunch_settings_check(s);
    if (rv)
        return rv;
    memset(hp, 0, sizeof(*hp));
    hp->initiator = initiator;
    hp->mine = *mine;
    hp->state = FLARE_HARDPUNCH_S_WAIT_INFO;
    hp->sent_at = now;
    hp->deadline = now + s->exchange;
    hp->go_at = FLARE_TSTAMP_NEVER;
    if (initiator && (rv = send_msg(hp, FLARE_HARDPUNCH_INFO, out)) < 0)
        hp->state = FLARE_HARDPUNCH_S_FAILED;
    return rv;
}

static int on_msg(flare_hardpunch *hp, const flare_hardpunch_msg *m, flare_tstamp now,
                  flare_buf *out)
{
    if (hp->state == FLARE_HARDPUNCH_S_WAIT_INFO && m->type == FLARE_HARDPUNCH_INFO) {
        hp->peer = m->info;
        if (!hp->initiator) {
            hp->state = FLARE_HARDPUNCH_S_WAIT_SYNC;
            return send_msg(hp, FLARE_HARDPUNCH_INFO, out);
        }
        hp->rtt = now - hp->sent_at;
        hp->state = FLARE_HARDPUNCH_S_WAIT_GO;
        hp->go_at = now + hp->rtt / 2;
        return send_msg(hp, FLARE_HARDPUNCH_SYNC, out);
    }
    if (hp->state == FLARE_HARDPUNCH_S_WAIT_SYNC && m->type == FLARE_HARDPUNCH_SYNC) {
        hp->state = FLARE_HARDPUNCH_S_GO;
        hp->go_at = now;
        return 0;
    }
    return FLARE_ERR_PROTO;
}

/* Takes every complete frame buffered in rx; 0 or an error. */
static int drain(flare_hardpunch *hp, flare_tstamp now, flare_buf *out)
{
    for (;;) {
        const uint8_t *msg;
        size_t mlen;
        int rv = flare_lpframe_parse(hp->rx, hp->rxlen, FLARE_HARDPUNCH_MAX_MSG, &msg, &mlen);
        if (rv == FLARE_ERR_AGAIN)
            return 0;
        if (rv < 0)
            return rv;
        size_t flen = (size_t)rv;
        flare_hardpunch_msg m;
        rv = flare_hardpunch_msg_decode(&m, msg, mlen);
        if (rv == 0)
            rv = on_msg(hp, &m, now, out);
        if (rv < 0)
            return rv;
        memmove(hp->rx, hp->rx + flen, hp->rxlen - flen);
        hp->rxlen -= flen;
    }
}

int flare_hardpunch_recv(flare_hardpunch *hp, const uint8_t *in, size_t len, flare_tstamp now,
                         flare_buf *out)
{
    if (hp->state == FLARE_HARDPUNCH_S_FAILED)
        return FLARE_ERR_STATE;
    while (len > 0) {
        /* rx holds a whole maximal frame, so each round makes progress. */
        size_t take = sizeof(hp->rx) - hp->rxlen;
        take = take < len ? take : len;
        memcpy(hp->rx + hp->rxlen, in, take);
        hp->rxlen += take;
        in += take;
        len -= take;
        int rv = drain(hp, now, out);
        if (rv < 0) {
            hp->state = FLARE_HARDPUNCH_S_FAILED;
            return rv;
        }
    }
    return 0;
}

flare_tstamp flare_hardpunch_expiry(const flare_hardpunch *hp)
{
    switch (hp->state) {
    case FLARE_HARDPUNCH_S_WAIT_INFO:
    case FLARE_HARDPUNCH_S_WAIT_SYNC:
        return hp->deadline;
    case FLARE_HARDPUNCH_S_WAIT_GO:
        return hp->go_at;
    default:
        return FLARE_TSTAMP_NEVER;
    }
}

void flare_hardpunch_handle_expiry(flare_hardpunch *hp, flare_tstamp now)
{
    if (hp->state == FLARE_HARDPUNCH_S_WAIT_GO && now >= hp->go_at)
        hp->state = FLARE_HARDPUNCH_S_GO;
    else if ((hp->state == FLARE_HARDPUNCH_S_WAIT_INFO ||
              hp->state == FLARE_HARDPUNCH_S_WAIT_SYNC) &&
             now >= hp->deadline)
        hp->state = FLARE_HARDPUNCH_S_FAILED;
}
