/* AutoNAT v2 server core: one flare_autonat2_server_req per dial-request
 * stream, a flare_autonat2_server for the shared rate limits.
 *
 * Policy (spec + go-libp2p autonatv2): dial only the first acceptable
 * address; if its IP is not the requester's observed IP, make the requester
 * pay 30k-100k bytes of dial data first (amplification protection). */
#include <limits.h>
#include <string.h>

#include "flare/lpframe.h"
#include "protocols/autonat/autonat_int.h"

void flare_autonat2_server_settings_default(flare_autonat2_server_settings *s)
{
    memset(s, 0, sizeof(*s));
    s->struct_size = sizeof(*s);
    s->global_limit = 60;
    s->per_peer_limit = 12;
    s->dial_data_limit = 12;
    s->period = 60 * FLARE_NS_PER_S;
    s->min_dial_data = 30000;
    s->max_dial_data = 100000;
}

int flare_autonat2_server_init(flare_autonat2_server *srv, const flare_autonat2_server_settings *s,
                               const flare_mem *mem, flare_rng rng)
{
    memset(srv, 0, sizeof(*srv));
    if (!rng.fn || (s && (s->struct_size != sizeof(*s) || !s->period || !s->max_dial_data ||
                          s->max_dial_data < s->min_dial_data)))
        return FLARE_ERR_INVALID_ARG;
    if (s)
        srv->settings = *s;
    else
        flare_autonat2_server_settings_default(&srv->settings);
    flare_autonat2_server_settings *st = &srv->settings;
    srv->rng = rng;
    int rv = flare__autonat_limiter_init(&srv->limiter, st->global_limit, st->per_peer_limit,
                                         st->period, mem);
    if (rv == 0)
        rv = flare__autonat_limiter_init(&srv->data_limiter, st->dial_data_limit, UINT_MAX,
                                         st->period, mem);
    if (rv < 0)
        flare_autonat2_server_free(srv);
    return rv;
}

void flare_autonat2_server_free(flare_autonat2_server *srv)
{
    flare__autonat_limiter_free(&srv->limiter);
    flare__autonat_limiter_free(&srv->data_limiter);
}

void flare_autonat2_server_req_init(flare_autonat2_server_req *r, flare_autonat2_server *srv,
                                    const flare_peerid *requester, const flare_multiaddr *observed,
                                    int relayed)
{
    memset(r, 0, sizeof(*r));
    r->srv = srv;
    r->requester = *requester;
    r->observed = *observed;
    r->relayed = relayed;
    r->state = FLARE_AUTONAT2_SREQ_WAIT_REQUEST;
}

/* The WebSocket tails after /tcp/P: /ws, /tls/ws, /wss. */
static int ws_tail(const flare_ma_component *c, size_t n)
{
    if (n == 1)
        return c[0].code == FLARE_MA_WS || c[0].code == FLARE_MA_WSS;
    return n == 2 && c[0].code == FLARE_MA_TLS && c[1].code == FLARE_MA_WS;
}

/* /ip4|ip6/A/tcp/P, /ip4|ip6/A/udp/P/quic-v1 when QUIC is allowed,
 * /ip4|ip6/A/tcp/P/ws, /tls/ws or /wss when WebSocket is allowed, nothing
 * else (a trailing /p2p/ was stripped by the caller). */
static int dialable_transport(const flare_multiaddr *a, const flare_autonat2_server_settings *st)
{
    flare_ma_component c[5];
    size_t off = 0, n = 0;
    int rv;
    while (n < 5 && (rv = flare_multiaddr_next(a, &off, &c[n])) == 1)
        n++;
    if (n == 5 || n < 2)
        return 0;
    if (c[0].code == FLARE_MA_IP4 && st->no_ipv4)
        return 0;
    if (c[0].code == FLARE_MA_IP6 && st->no_ipv6)
        return 0;
    if (c[0].code != FLARE_MA_IP4 && c[0].code != FLARE_MA_IP6)
        return 0;
    if (c[1].code == FLARE_MA_TCP)
        return n == 2 || (st->allow_ws && ws_tail(c + 2, n - 2));
    return n == 3 && st->allow_quic && c[1].code == FLARE_MA_UDP && c[2].code == FLARE_MA_QUIC_V1;
}

static int pick_addr(const flare_autonat2_server_settings *st, const flare_autonat2_msg *m,
                     flare_multiaddr *target)
{
    for (size_t i = 0; i < m->naddrs; i++) {
        flare__autonat_strip_p2p(target, &m->addrs[i]);
        if (!target->len || !dialable_transport(target, st))
            continue;
        flare_ipaddr ip;
        if (flare_multiaddr_to_ipaddr(target, &ip, NULL) < 0 || ip.port == 0)
            continue;
        if (flare_ma_class_is_public(flare_multiaddr_classify(target), st->doc_is_public))
            return (int)i;
    }
    return -1;
}

static uint64_t draw_amount(flare_autonat2_server *srv)
{
    uint8_t b[8];
    uint64_t v = 0;
    srv->rng.fn(b, sizeof(b), srv->rng.user);
    for (int i = 0; i < 8; i++)
        v = v << 8 | b[i];
    uint64_t span = srv->settings.max_dial_data - srv->settings.min_dial_data + 1;
    return srv->settings.min_dial_data + v % span;
}

static int finish(flare_autonat2_server_req *r, flare_autonat2_status st, flare_buf *out)
{
    r->state = FLARE_AUTONAT2_SREQ_DONE;
    int rv = flare_autonat2_encode_dial_response(out, st, 0, FLARE_AUTONAT2_DIAL_UNUSED);
    return rv < 0 ? rv : 2;
}

static int on_request(flare_autonat2_server_req *r, const uint8_t *msg, size_t mlen,
                      flare_tstamp now, flare_buf *out)
{
    flare_autonat2_server *srv = r->srv;
    flare_autonat2_msg m;
    int rv = flare_autonat2_decode(&m, msg, mlen);
    if (rv == 0 && m.type != FLARE_AUTONAT2_DIAL_REQUEST)
        rv = FLARE_ERR_PROTO;
    if (rv < 0) {
        r->state = FLARE_AUTONAT2_SREQ_DONE;
        flare_autonat2_encode_dial_response(out, FLARE_AUTONAT2_E_REQUEST_REJECTED, 0,
                                            FLARE_AUTONAT2_DIAL_UNUSED);
        return rv;
    }
    if (r->relayed || flare_multiaddr_is_relayed(&r->observed))
        return finish(r, FLARE_AUTONAT2_E_REQUEST_REJECTED, out);
    if (!flare__autonat_limiter_take(&srv->limiter, &r->requester, now))
        return finish(r, FLARE_AUTONAT2_E_REQUEST_REJECTED, out);
    int idx = pick_addr(&srv->settings, &m, &r->target);
    if (idx < 0)
        return finish(r, FLARE_AUTONAT2_E_DIAL_REFUSED, out);
    r->addr_idx = (uint32_t)idx;
    r->nonce = m.nonce;
    if (flare__autonat_same_ip(&r->target, &r->observed)) {
        r->state = FLARE_AUTONAT2_SREQ_DIAL;
        return 1;
    }
    if (!flare__autonat_limiter_take(&srv->data_limiter, &r->requester, now))
        return finish(r, FLARE_AUTONAT2_E_REQUEST_REJECTED, out);
    r->want_bytes = draw_amount(srv);
    r->state = FLARE_AUTONAT2_SREQ_WAIT_DATA;
    rv = flare_autonat2_encode_dial_data_request(out, r->addr_idx, r->want_bytes);
    return rv < 0 ? rv : 0;
}

static int on_data(flare_autonat2_server_req *r, const uint8_t *msg, size_t mlen)
{
    flare_autonat2_msg m;
    int rv = flare_autonat2_decode(&m, msg, mlen);
    if (rv < 0)
        return rv;
    /* Empty chunks would let a peer hold the stream without paying. */
    if (m.type != FLARE_AUTONAT2_DIAL_DATA_RESPONSE || m.data_len == 0)
        return FLARE_ERR_PROTO;
    r->got_bytes += m.data_len;
    if (r->got_bytes < r->want_bytes)
        return 0;
    r->state = FLARE_AUTONAT2_SREQ_DIAL;
    return 1;
}

int flare_autonat2_server_req_recv(flare_autonat2_server_req *r, const uint8_t *in, size_t len,
                                   size_t *used, flare_tstamp now, flare_buf *out)
{
    *used = 0;
    while (*used < len || r->state == FLARE_AUTONAT2_SREQ_DONE) {
        if (r->state == FLARE_AUTONAT2_SREQ_DONE)
            return FLARE_ERR_STATE;
        /* The request is complete once the data is paid: more is abuse. */
        if (r->state == FLARE_AUTONAT2_SREQ_DIAL)
            return FLARE_ERR_PROTO;
        const uint8_t *msg;
        size_t mlen;
        int n = flare_lpframe_parse(in + *used, len - *used, FLARE_AUTONAT_V2_MSG_MAX, &msg, &mlen);
        if (n == FLARE_ERR_AGAIN)
            return 0;
        if (n < 0) {
            if (r->state == FLARE_AUTONAT2_SREQ_WAIT_REQUEST)
                flare_autonat2_encode_dial_response(out, FLARE_AUTONAT2_E_REQUEST_REJECTED, 0,
                                                    FLARE_AUTONAT2_DIAL_UNUSED);
            r->state = FLARE_AUTONAT2_SREQ_DONE;
            return n;
        }
        *used += (size_t)n;
        int rv = r->state == FLARE_AUTONAT2_SREQ_WAIT_REQUEST ? on_request(r, msg, mlen, now, out)
                                                              : on_data(r, msg, mlen);
        if (rv < 0)
            r->state = FLARE_AUTONAT2_SREQ_DONE;
        if (rv != 0)
            return rv;
    }
    return 0;
}

int flare_autonat2_server_req_dial_result(flare_autonat2_server_req *r,
                                          flare_autonat2_dial_status ds, flare_buf *out)
{
    if (r->state != FLARE_AUTONAT2_SREQ_DIAL)
        return FLARE_ERR_STATE;
    if (ds != FLARE_AUTONAT2_DIAL_OK && ds != FLARE_AUTONAT2_DIAL_E_DIAL_ERROR &&
        ds != FLARE_AUTONAT2_DIAL_E_DIAL_BACK_ERROR)
        return FLARE_ERR_INVALID_ARG;
    r->state = FLARE_AUTONAT2_SREQ_DONE;
    return flare_autonat2_encode_dial_response(out, FLARE_AUTONAT2_OK, r->addr_idx, ds);
}
