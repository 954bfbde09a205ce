/* Multiaddr helpers for later layers: relay addresses, address
 * classification and the IP+port thin waist. */
#include <string.h>

#include "core/mem.h"
#include "core/multiaddr_held.h"
#include "multiaddr_internal.h"

/* --- relays --- */

int flare_multiaddr_is_relayed(const flare_multiaddr *ma)
{
    return flare_multiaddr_has(ma, FLARE_MA_P2P_CIRCUIT);
}

static void set_peerid(flare_peerid *id, const flare_ma_component *c)
{
    if (!id)
        return;
    id->len = 0;
    if (c && c->value_len <= FLARE_PEERID_MAX) {
        memcpy(id->bytes, c->value, c->value_len);
        id->len = (uint8_t)c->value_len;
    }
}

int flare_multiaddr_relay_split(const flare_multiaddr *ma, flare_multiaddr *relay_addr,
                                flare_peerid *relay, flare_peerid *target)
{
    size_t off = 0, start = 0, circuit = 0;
    int rv, seen = 0, prev_p2p = 0;
    flare_ma_component c, prev = {0}, relay_c = {0}, target_c = {0};
    /* Remember, for the last circuit, the component right before it and the
     * last /p2p/ after it. */
    while (start = off, (rv = flare_multiaddr_next(ma, &off, &c)) == 1) {
        if (c.code == FLARE_MA_P2P_CIRCUIT) {
            seen = 1;
            circuit = start;
            prev_p2p = prev.code == FLARE_MA_P2P;
            relay_c = prev;
            target_c.value_len = 0;
            target_c.code = 0;
        } else if (seen && c.code == FLARE_MA_P2P) {
            target_c = c;
        }
        prev = c;
    }
    if (rv < 0)
        return rv;
    if (!seen)
        return FLARE_ERR_NOT_FOUND;
    if (!prev_p2p)
        return FLARE_ERR_MALFORMED;
    if (relay_addr) {
        memmove(relay_addr->bytes, ma->bytes, circuit);
        relay_addr->len = (uint16_t)circuit;
    }
    set_peerid(relay, &relay_c);
    set_peerid(target, target_c.code ? &target_c : NULL);
    return 0;
}

int flare_multiaddr_make_relayed(flare_multiaddr *out, const flare_multiaddr *relay_addr,
                                 const flare_peerid *relay, const flare_peerid *target)
{
    flare_multiaddr tmp = *relay_addr;
    int rv;
    if (relay && relay->len) {
        rv = flare_multiaddr_with_peerid(&tmp, relay);
        if (rv < 0)
            return rv;
    } else {
        /* The relay id must already end relay_addr. */
        flare_peerid last;
        flare_multiaddr chk = tmp;
        if (flare_multiaddr_get_peerid(&tmp, &last) < 0 ||
            flare_multiaddr_with_peerid(&chk, &last) < 0 || chk.len != tmp.len)
            return FLARE_ERR_INVALID_ARG;
    }
    if ((rv = flare_multiaddr_push(&tmp, FLARE_MA_P2P_CIRCUIT, NULL, 0)) < 0)
        return rv;
    if (target && target->len) {
        rv = flare_multiaddr_push(&tmp, FLARE_MA_P2P, target->bytes, target->len);
        if (rv < 0)
            return rv == FLARE_ERR_TOO_LARGE ? rv : FLARE_ERR_INVALID_ARG;
    }
    *out = tmp;
    return 0;
}

/* --- classification --- */

static int v4_in(const uint8_t *a, uint8_t b0, uint8_t b1, uint8_t b2, unsigned bits)
{
    uint32_t x = (uint32_t)a[0] << 24 | (uint32_t)a[1] << 16 | (uint32_t)a[2] << 8 | a[3];
    uint32_t net = (uint32_t)b0 << 24 | (uint32_t)b1 << 16 | (uint32_t)b2 << 8;
    uint32_t mask = bits ? ~(uint32_t)0 << (32 - bits) : 0;
    return (x & mask) == net;
}

static flare_ma_class classify_v4(const uint8_t *a)
{
    static const uint8_t zero[4] = {0};
    if (memcmp(a, zero, 4) == 0)
        return FLARE_MA_UNSPECIFIED;
    if (v4_in(a, 127, 0, 0, 8))
        return FLARE_MA_LOOPBACK;
    if (v4_in(a, 10, 0, 0, 8) || v4_in(a, 172, 16, 0, 12) || v4_in(a, 192, 168, 0, 16))
        return FLARE_MA_PRIVATE;
    if (v4_in(a, 169, 254, 0, 16))
        return FLARE_MA_LINK_LOCAL;
    if (v4_in(a, 100, 64, 0, 10))
        return FLARE_MA_CGNAT;
    if (v4_in(a, 192, 0, 2, 24) || v4_in(a, 198, 51, 100, 24) || v4_in(a, 203, 0, 113, 24))
        return FLARE_MA_DOC;
    /* 0/8 "this network", 192.0.0/24 IETF, 198.18/15 benchmarking,
     * 224/4 multicast, 240/4 reserved and broadcast: not routable. */
    if (v4_in(a, 0, 0, 0, 8) || v4_in(a, 192, 0, 0, 24) || v4_in(a, 198, 18, 0, 15) ||
        v4_in(a, 224, 0, 0, 4) || v4_in(a, 240, 0, 0, 4))
        return FLARE_MA_OTHER;
    return FLARE_MA_PUBLIC;
}

static flare_ma_class classify_v6(const uint8_t *a)
{
    static const uint8_t zero[16] = {0};
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b};
    if (memcmp(a, zero, 15) == 0)
        return a[15] == 0 ? FLARE_MA_UNSPECIFIED : a[15] == 1 ? FLARE_MA_LOOPBACK : FLARE_MA_OTHER;
    if (memcmp(a, mapped, 12) == 0 || memcmp(a, nat64, 12) == 0)
        return classify_v4(a + 12);
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
        return FLARE_MA_LINK_LOCAL;
    if ((a[0] & 0xfe) == 0xfc)
        return FLARE_MA_PRIVATE;
    if ((a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8) ||
        (a[0] == 0x3f && a[1] == 0xff && (a[2] & 0xf0) == 0))
        return FLARE_MA_DOC;
    if ((a[0] & 0xe0) == 0x20)
        return FLARE_MA_PUBLIC; /* 2000::/3 global unicast */
    return FLARE_MA_OTHER;      /* multicast, reserved, ... */
}

flare_ma_class flare_ipaddr_classify(const flare_ipaddr *ip)
{
    if (ip->family == 4)
        return classify_v4(ip->ip);
    if (ip->family == 6)
        return classify_v6(ip->ip);
    return FLARE_MA_OTHER;
}

flare_ma_class flare_multiaddr_classify(const flare_multiaddr *ma)
{
    size_t off = 0;
    flare_ma_component c;
    while (flare_multiaddr_next(ma, &off, &c) == 1) {
        switch (c.code) {
        case FLARE_MA_IP4:
            return classify_v4(c.value);
        case FLARE_MA_IP6:
            return classify_v6(c.value);
        case FLARE_MA_DNS_ANY:
        case FLARE_MA_DNS4:
        case FLARE_MA_DNS6:
        case FLARE_MA_DNSADDR:
            return FLARE_MA_DNS;
        }
    }
    return FLARE_MA_OTHER;
}

const char *flare_ma_class_name(flare_ma_class c)
{
    switch (c) {
    case FLARE_MA_PUBLIC:
        return "public";
    case FLARE_MA_PRIVATE:
        return "private";
    case FLARE_MA_LOOPBACK:
        return "loopback";
    case FLARE_MA_LINK_LOCAL:
        return "link-local";
    case FLARE_MA_CGNAT:
        return "cgnat";
    case FLARE_MA_UNSPECIFIED:
        return "unspecified";
    case FLARE_MA_DOC:
        return "documentation";
    case FLARE_MA_DNS:
        return "dns";
    case FLARE_MA_OTHER:
        return "other";
    }
    return "unknown";
}

int flare_ma_class_is_public(flare_ma_class c, int doc_is_public)
{
    return c == FLARE_MA_PUBLIC || (c == FLARE_MA_DOC && doc_is_public);
}

/* --- thin waist --- */

int flare_multiaddr_to_ipaddr(const flare_multiaddr *ma, flare_ipaddr *ip, int *proto)
{
    size_t off = 0;
    flare_ma_component c;
    if (flare_multiaddr_next(ma, &off, &c) != 1)
        return FLARE_ERR_UNSUPPORTED;
    if (c.code == FLARE_MA_IP6ZONE && flare_multiaddr_next(ma, &off, &c) != 1)
        return FLARE_ERR_UNSUPPORTED;
    if ((c.code != FLARE_MA_IP4 && c.code != FLARE_MA_IP6))
        return FLARE_ERR_UNSUPPORTED;
    flare_ma_component t;
    if (flare_multiaddr_next(ma, &off, &t) != 1 ||
        (t.code != FLARE_MA_TCP && t.code != FLARE_MA_UDP) || t.value_len != 2)
        return FLARE_ERR_UNSUPPORTED;
    memset(ip, 0, sizeof(*ip));
    ip->family = c.code == FLARE_MA_IP4 ? 4 : 6;
    memcpy(ip->ip, c.value, c.value_len == 4 ? 4 : 16);
    ip->port = (uint16_t)(t.value[0] << 8 | t.value[1]);
    if (proto)
        *proto = (int)t.code;
    return 0;
}

int flare_multiaddr_from_ipaddr(flare_multiaddr *ma, const flare_ipaddr *ip, int proto)
{
    uint8_t port[2] = {(uint8_t)(ip->port >> 8), (uint8_t)ip->port};
    flare_multiaddr tmp = {0};
    if ((ip->family != 4 && ip->family != 6) || (proto != FLARE_MA_TCP && proto != FLARE_MA_UDP))
        return FLARE_ERR_INVALID_ARG;
    /* Cannot fail: a handful of bytes of valid fixed-size values. */
    flare_multiaddr_push(&tmp, ip->family == 4 ? FLARE_MA_IP4 : FLARE_MA_IP6, ip->ip,
                         ip->family == 4 ? 4 : 16);
    flare_multiaddr_push(&tmp, (uint64_t)proto, port, 2);
    if (proto == FLARE_MA_UDP)
        flare_multiaddr_push(&tmp, FLARE_MA_QUIC_V1, NULL, 0);
    *ma = tmp;
    return 0;
}

/* ---- addresses held at their length (multiaddr_held.h) ------------------------------ */

void flare__ma_held_free(flare__ma_held *h, const flare_mem *mem)
{
    flare__free(mem, h->big);
    h->big = NULL;
    h->len = 0;
}

int flare__ma_hold(flare__ma_held *h, const flare_multiaddr *ma, const flare_mem *mem)
{
    size_t n = ma->len <= FLARE_MULTIADDR_MAX ? ma->len : 0;
    if (h->big && n > FLARE__MA_HELD_INLINE && n <= h->len) {
        memmove(h->big, ma->bytes, n); /* fits the heap copy it replaces */
        h->len = (uint16_t)n;
        return 0;
    }
    flare__ma_held_free(h, mem);
    uint8_t *dst = h->small;
    if (n > sizeof(h->small)) {
        if (!(h->big = flare__malloc(mem, n)))
            return FLARE_ERR_NOMEM;
        dst = h->big;
    }
    memcpy(dst, ma->bytes, n);
    h->len = (uint16_t)n;
    return 0;
}

const flare_multiaddr *flare__ma_held_get(const flare__ma_held *h, flare_multiaddr *tmp)
{
    tmp->len = h->len;
    memcpy(tmp->bytes, h->big ? h->big : h->small, h->len);
    return tmp;
}

int flare__ma_held_equal(const flare__ma_held *h, const flare_multiaddr *ma)
{
    return h->len == ma->len && memcmp(h->big ? h->big : h->small, ma->bytes, h->len) == 0;
}
