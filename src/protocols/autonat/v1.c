/* AutoNAT v1 server and client cores.
 *
 * Server policy follows go-libp2p's autonat service: never serve over a
 * relayed connection, dial only the requester's observed IP (no third
 * parties: no amplification), only public addresses, and throttle globally
 * and per peer. */
#include <string.h>

#include "flare/lpframe.h"
#include "protocols/autonat/autonat_int.h"

void flare_autonat1_server_settings_default(flare_autonat1_server_settings *s)
{
    memset(s, 0, sizeof(*s));
    s->struct_size = sizeof(*s);
    s->global_limit = 30;
    s->per_peer_limit = 3;
    s->period = 60 * FLARE_NS_PER_S;
    s->max_dial_addrs = 16;
}

int flare_autonat1_server_init(flare_autonat1_server *srv, const flare_autonat1_server_settings *s,
                               const flare_mem *mem)
{
    memset(srv, 0, sizeof(*srv));
    if (s && (s->struct_size != sizeof(*s) || !s->period || !s->max_dial_addrs ||
              s->max_dial_addrs > FLARE_AUTONAT_MAX_ADDRS))
        return FLARE_ERR_INVALID_ARG;
    if (s)
        srv->settings = *s;
    else
        flare_autonat1_server_settings_default(&srv->settings);
    flare_autonat1_server_settings *st = &srv->settings;
    return flare__autonat_limiter_init(&srv->limiter, st->global_limit, st->per_peer_limit,
                                       st->period, mem);
}

void flare_autonat1_server_free(flare_autonat1_server *srv)
{
    flare__autonat_limiter_free(&srv->limiter);
}

static int is_ip(const flare_multiaddr *ma)
{
    flare_ma_component c;
    size_t off = 0;
    return flare_multiaddr_next(ma, &off, &c) == 1 &&
           (c.code == FLARE_MA_IP4 || c.code == FLARE_MA_IP6);
}

/* An address we may dial back: same IP as observed, public, IP+port. */
static int acceptable(const flare_multiaddr *a, const flare_multiaddr *observed, int doc)
{
    flare_ipaddr ip;
    if (!a->len || flare_multiaddr_is_relayed(a))
        return 0;
    if (!flare__autonat_same_ip(a, observed))
        return 0;
    if (!flare_ma_class_is_public(flare_multiaddr_classify(a), doc))
        return 0;
    return flare_multiaddr_to_ipaddr(a, &ip, NULL) == 0 && ip.port != 0;
}

static void filter_addrs(const flare_autonat1_server_settings *st, const flare_autonat1_msg *m,
                         const flare_multiaddr *observed, flare_autonat1_dial *dial)
{
    dial->naddrs = 0;
    for (size_t i = 0; i < m->naddrs && dial->naddrs < st->max_dial_addrs; i++) {
        flare_multiaddr a;
        flare__autonat_strip_p2p(&a, &m->addrs[i]);
        if (!acceptable(&a, observed, st->doc_is_public))
            continue;
        int dup = 0;
        for (size_t j = 0; j < dial->naddrs && !dup; j++)
            dup = flare_multiaddr_equal(&dial->addrs[j], &a);
        if (!dup)
            dial->addrs[dial->naddrs++] = a;
    }
}

static int refuse(flare_buf *out, flare_autonat1_status st, const char *text)
{
    int rv = flare_autonat1_encode_response(out, st, text, NULL);
    return rv < 0 ? rv : 0;
}

/* The policy checks after decoding; returns 1 (dial) or 0 (refused). */
static int server_decide(flare_autonat1_server *srv, const flare_autonat1_msg *m,
                         const flare_peerid *requester, const flare_multiaddr *observed,
                         int relayed, flare_tstamp now, flare_autonat1_dial *dial, flare_buf *out)
{
    const flare_autonat1_server_settings *st = &srv->settings;
    if (relayed || flare_multiaddr_is_relayed(observed))
        return refuse(out, FLARE_AUTONAT1_E_DIAL_REFUSED, "refusing to dial over a relay");
    if (!m->has_peer)
        return refuse(out, FLARE_AUTONAT1_E_BAD_REQUEST, "missing peer info");
    if (m->peer_id_len &&
        (m->peer_id_len != requester->len || memcmp(m->peer_id, requester->bytes, m->peer_id_len)))
        return refuse(out, FLARE_AUTONAT1_E_BAD_REQUEST, "peer id mismatch");
    if (!is_ip(observed))
        return refuse(out, FLARE_AUTONAT1_E_INTERNAL_ERROR, "expected an IP address");
    if (!flare_ma_class_is_public(flare_multiaddr_classify(observed), st->doc_is_public))
        return refuse(out, FLARE_AUTONAT1_E_DIAL_REFUSED, "observed address is not public");
    filter_addrs(st, m, observed, dial);
    if (dial->naddrs == 0)
        return refuse(out, FLARE_AUTONAT1_E_DIAL_ERROR, "no dialable addresses");
    if (!flare__autonat_limiter_take(&srv->limiter, requester, now)) {
        dial->naddrs = 0;
        return refuse(out, FLARE_AUTONAT1_E_DIAL_REFUSED, "too many dials");
    }
    return 1;
}

int flare_autonat1_server_handle(flare_autonat1_server *srv, const uint8_t *in, size_t len,
                                 size_t *used, const flare_peerid *requester,
                                 const flare_multiaddr *observed, int relayed, flare_tstamp now,
                                 flare_autonat1_dial *dial, flare_buf *out)
{
    const uint8_t *msg;
    size_t mlen;
    *used = 0;
    dial->naddrs = 0;
    int n = flare_lpframe_parse(in, len, FLARE_AUTONAT_V1_MSG_MAX, &msg, &mlen);
    if (n < 0)
        return n;
    *used = (size_t)n;
    flare_autonat1_msg m;
    int rv = flare_autonat1_decode(&m, msg, mlen);
    if (rv == 0 && m.type != FLARE_AUTONAT1_DIAL)
        rv = FLARE_ERR_PROTO;
    if (rv == 0)
        rv = server_decide(srv, &m, requester, observed, relayed, now, dial, out);
    return rv;
}

int flare_autonat1_server_dial_result(const flare_multiaddr *connected, flare_buf *out)
{
    if (connected)
        return flare_autonat1_encode_response(out, FLARE_AUTONAT1_OK, NULL, connected);
    return flare_autonat1_encode_response(out, FLARE_AUTONAT1_E_DIAL_ERROR, "dial failed", NULL);
}

int flare_autonat1_client_request(flare_buf *out, const flare_peerid *self,
                                  const flare_multiaddr *addrs, size_t naddrs)
{
    return flare_autonat1_encode_dial(out, self, addrs, naddrs);
}

static int port_of(const flare_multiaddr *a, uint16_t *port)
{
    flare_ipaddr ip;
    if (flare_multiaddr_to_ipaddr(a, &ip, NULL) < 0)
        return 0;
    *port = ip.port;
    return 1;
}

/* The js-reuse guard: an OK proves a dial-back only for an address we asked
 * about whose port is one we listen on. */
static int ok_is_credible(const flare_multiaddr *addr, const flare_multiaddr *asked, size_t nasked,
                          const uint16_t *ports, size_t nports)
{
    flare_multiaddr got, want;
    uint16_t port;
    int found = 0;
    if (!addr->len || !port_of(addr, &port))
        return 0;
    flare__autonat_strip_p2p(&got, addr);
    for (size_t i = 0; i < nasked && !found; i++) {
        flare__autonat_strip_p2p(&want, &asked[i]);
        found = flare_multiaddr_equal(&got, &want);
    }
    if (!found)
        return 0;
    for (size_t i = 0; i < nports; i++)
        if (ports[i] == port)
            return 1;
    return 0;
}

int flare_autonat1_client_response(const uint8_t *in, size_t len, size_t *used,
                                   const flare_multiaddr *asked, size_t nasked,
                                   const uint16_t *listen_ports, size_t nports,
                                   flare_autonat_outcome *outcome, flare_multiaddr *addr)
{
    const uint8_t *msg;
    size_t mlen;
    *used = 0;
    *outcome = FLARE_AUTONAT_NO_INFO;
    int n = flare_lpframe_parse(in, len, FLARE_AUTONAT_V1_MSG_MAX, &msg, &mlen);
    if (n < 0)
        return n;
    *used = (size_t)n;
    flare_autonat1_msg m;
    int rv = flare_autonat1_decode(&m, msg, mlen);
    if (rv == 0 && m.type != FLARE_AUTONAT1_DIAL_RESPONSE)
        rv = FLARE_ERR_PROTO;
    if (rv < 0)
        return rv;
    if (m.status == FLARE_AUTONAT1_E_DIAL_ERROR)
        *outcome = FLARE_AUTONAT_UNREACHABLE;
    else if (m.status == FLARE_AUTONAT1_OK &&
             ok_is_credible(&m.addr, asked, nasked, listen_ports, nports))
        *outcome = FLARE_AUTONAT_REACHABLE;
    if (addr)
        *addr = m.addr;
    return 0;
}
