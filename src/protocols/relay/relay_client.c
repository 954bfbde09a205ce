/* Circuit Relay v2: vouchers, the hop client and the stop side (see
 * include/flare/relay.h). */
#include <string.h>

#include "core/pb.h"
#include "flare/envelope.h"
#include "flare/relay.h"

/* --- vouchers --- */

int flare_relay_voucher_seal(const flare_privkey *key, const flare_peerid *peer,
                             uint64_t expiration, flare_buf *out)
{
    flare_peerid relay;
    int rv = flare_peerid_from_pubkey(&relay, &key->pub);
    if (rv)
        return rv;
    uint8_t payload[2 * (FLARE_PEERID_MAX + 2) + 12];
    flare_buf b = {.base = payload, .cap = sizeof(payload), .alloc = payload};
    /* The buffer is big enough for the largest voucher, so these never
     * grow it (and so never touch an allocator). */
    if ((rv = flare__pb_put_bytes_field(&b, 1, relay.bytes, relay.len)) != 0 ||
        (rv = flare__pb_put_bytes_field(&b, 2, peer->bytes, peer->len)) != 0 ||
        (rv = flare__pb_put_varint_field(&b, 3, expiration)) != 0)
        return rv;
    return flare_envelope_seal(key, FLARE_RELAY_VOUCHER_DOMAIN, FLARE_RELAY_VOUCHER_TYPE,
                               sizeof(FLARE_RELAY_VOUCHER_TYPE), b.base, b.len, out);
}

static int decode_voucher(const uint8_t *in, size_t len, flare_relay_voucher *v)
{
    flare__pb_reader r;
    flare__pb_field f;
    int rv, seen = 0;
    flare__pb_reader_init(&r, in, len);
    while ((rv = flare__pb_next(&r, &f)) == 1) {
        if (f.num < 1 || f.num > 3)
            continue;
        if (f.wire != (f.num == 3 ? FLARE__PB_VARINT : FLARE__PB_LEN))
            return FLARE_ERR_MALFORMED;
        if (f.num == 3)
            v->expiration = f.v;
        else if ((rv = flare_peerid_from_bytes(f.num == 1 ? &v->relay : &v->peer, f.data, f.len)) !=
                 0)
            return rv;
        seen |= 1 << f.num;
    }
    if (rv < 0)
        return rv;
    return seen == 0xe ? 0 : FLARE_ERR_MALFORMED;
}

int flare_relay_voucher_open(const uint8_t *in, size_t len, flare_relay_voucher *v)
{
    flare_envelope env;
    memset(v, 0, sizeof(*v));
    int rv = flare_envelope_open(in, len, FLARE_RELAY_VOUCHER_DOMAIN, FLARE_RELAY_VOUCHER_TYPE,
                                 sizeof(FLARE_RELAY_VOUCHER_TYPE), &env);
    if (rv)
        return rv;
    if ((rv = decode_voucher(env.payload, env.payload_len, v)) != 0)
        return rv;
    /* Only the relay may vouch for its own reservations. */
    return flare_peerid_equal(&env.signer, &v->relay) ? 0 : FLARE_ERR_PEER_ID_MISMATCH;
}

int flare_relay_voucher_verify(const uint8_t *in, size_t len, const flare_peerid *relay,
                               const flare_peerid *self, uint64_t expire, uint64_t now_unix)
{
    flare_relay_voucher v;
    int rv = flare_relay_voucher_open(in, len, &v);
    if (rv)
        return rv;
    if (!flare_peerid_equal(&v.relay, relay) || !flare_peerid_equal(&v.peer, self))
        return FLARE_ERR_PEER_ID_MISMATCH;
    if (v.expiration != expire)
        return FLARE_ERR_OUT_OF_RANGE;
    return v.expiration > now_unix ? 0 : FLARE_ERR_TIMEOUT;
}

/* --- hop client --- */

int flare_relay_client_reserve(flare_buf *out)
{
    flare_relay_msg m;
    flare_relay_msg_init(&m, FLARE_RELAY_HOP_RESERVE);
    return flare_relay_hop_encode(&m, out);
}

int flare_relay_client_connect(const flare_peerid *target, flare_buf *out)
{
    flare_relay_msg m;
    if (!target || target->len == 0)
        return FLARE_ERR_INVALID_ARG;
    flare_relay_msg_init(&m, FLARE_RELAY_HOP_CONNECT);
    m.has_peer = 1;
    m.peer = *target;
    return flare_relay_hop_encode(&m, out);
}

/* Common part of both replies: a STATUS with status OK. */
static int parse_status_reply(const uint8_t *in, size_t len, flare_relay_msg *m, uint32_t *status)
{
    int rv = flare_relay_hop_decode(in, len, m);
    if (status)
        *status = rv == 0 && m->has_status ? m->status : FLARE_RELAY_STATUS_UNUSED;
    if (rv)
        return rv;
    if (m->type != FLARE_RELAY_HOP_STATUS || !m->has_status)
        return FLARE_ERR_PROTO;
    return m->status == FLARE_RELAY_STATUS_OK ? 0 : FLARE_ERR_REFUSED;
}

/* A reservation address must be the relay's own: not relayed, and any /p2p/
 * must be the relay. */
static int keep_relay_addr(const flare_multiaddr *ma, const flare_peerid *relay)
{
    flare_peerid id;
    if (flare_multiaddr_is_relayed(ma))
        return 0;
    if (flare_multiaddr_get_peerid(ma, &id) == 0 && !flare_peerid_equal(&id, relay))
        return 0;
    return 1;
}

int flare_relay_client_reserve_reply(const uint8_t *in, size_t len, const flare_peerid *relay,
                                     const flare_peerid *self, uint64_t now_unix,
                                     flare_relay_reservation *r, uint32_t *status)
{
    flare_relay_msg m;
    memset(r, 0, sizeof(*r));
    int rv = parse_status_reply(in, len, &m, status);
    if (rv)
        return rv;
    if (!m.has_reservation || !m.has_expire)
        return FLARE_ERR_PROTO;
    if (m.expire <= now_unix)
        return FLARE_ERR_TIMEOUT;
    if (m.voucher.len) {
        rv =
            flare_relay_voucher_verify(m.voucher.p, m.voucher.len, relay, self, m.expire, now_unix);
        if (rv)
            return rv;
        r->has_voucher = 1;
    }
    r->relay = *relay;
    r->expire = m.expire;
    r->limit = m.limit;
    for (size_t i = 0; i < m.nrsvp_addrs; i++) {
        flare_multiaddr *ma = &r->addrs[r->naddrs];
        /* Already validated by the decoder. */
        if (flare_multiaddr_from_bytes(ma, m.rsvp_addrs[i].p, m.rsvp_addrs[i].len) == 0 &&
            keep_relay_addr(ma, relay))
            r->naddrs++;
    }
    return 0;
}

int flare_relay_client_connect_reply(const uint8_t *in, size_t len, flare_relay_limit *limit,
                                     uint32_t *status)
{
    flare_relay_msg m;
    memset(limit, 0, sizeof(*limit));
    int rv = parse_status_reply(in, len, &m, status);
    if (rv)
        return rv;
    *limit = m.limit;
    return 0;
}

flare_tstamp flare_relay_reservation_refresh_at(const flare_relay_reservation *r, uint64_t now_unix,
                                                flare_tstamp now)
{
    if (r->expire <= now_unix)
        return now;
    uint64_t left = r->expire - now_unix, in;
    if (left >= 2 * FLARE_RELAY_REFRESH_MARGIN)
        in = left - FLARE_RELAY_REFRESH_MARGIN;
    else
        in = left / 2;
    /* A relay granting tiny TTLs must not make us hammer it; but renewing
     * at (or within a second of) expiry would race the relay's own expiry
     * (whole seconds here, ns there) and let the reservation lapse: at most
     * 3/4 of the way. */
    if (in < FLARE_RELAY_REFRESH_FLOOR) {
        uint64_t q = left * FLARE_NS_PER_S * 3 / 4;
        return now + (q < FLARE_RELAY_REFRESH_FLOOR * FLARE_NS_PER_S
                          ? q
                          : FLARE_RELAY_REFRESH_FLOOR * FLARE_NS_PER_S);
    }
    if (in > (FLARE_TSTAMP_NEVER - 1 - now) / FLARE_NS_PER_S)
        return FLARE_TSTAMP_NEVER - 1;
    return now + in * FLARE_NS_PER_S;
}

int flare_relay_reservation_addrs(const flare_relay_reservation *r, const flare_peerid *self,
                                  flare_multiaddr *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < r->naddrs && n < cap; i++) {
        if (flare_multiaddr_make_relayed(&out[n], &r->addrs[i], &r->relay, self) == 0)
            n++;
    }
    return (int)n;
}

/* --- stop side --- */

int flare_relay_stop_reply(uint32_t status, flare_buf *out)
{
    flare_relay_msg m;
    if (!flare_relay_status_valid(status))
        return FLARE_ERR_INVALID_ARG;
    flare_relay_msg_init(&m, FLARE_RELAY_STOP_STATUS);
    m.has_status = 1;
    m.status = status;
    return flare_relay_stop_encode(&m, out);
}

int flare_relay_stop_handle(const uint8_t *in, size_t len, flare_relay_stop_request *req,
                            flare_buf *out)
{
    flare_relay_msg m;
    memset(req, 0, sizeof(*req));
    int rv = flare_relay_stop_decode(in, len, &m);
    if (rv == 0 && m.type != FLARE_RELAY_STOP_CONNECT)
        rv = FLARE_ERR_PROTO;
    else if (rv == 0 && !m.has_peer)
        rv = FLARE_ERR_MALFORMED;
    if (rv) {
        uint32_t st = rv == FLARE_ERR_PROTO ? FLARE_RELAY_STATUS_UNEXPECTED_MESSAGE
                                            : FLARE_RELAY_STATUS_MALFORMED_MESSAGE;
        int wrv = flare_relay_stop_reply(st, out);
        return wrv ? wrv : rv;
    }
    req->remote = m.peer;
    req->limit = m.limit;
    return 0;
}
