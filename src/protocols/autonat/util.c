/* AutoNAT shared helpers: rate limiter, framing, address comparisons. */
#include <string.h>

#include "core/mem.h"
#include "core/pb.h"
#include "flare/lpframe.h"
#include "protocols/autonat/autonat_int.h"

int flare__autonat_limiter_init(flare__autonat_limiter *l, unsigned global_limit,
                                unsigned per_peer_limit, flare_tstamp period, const flare_mem *mem)
{
    memset(l, 0, sizeof(*l));
    l->global_limit = global_limit;
    l->per_peer_limit = per_peer_limit;
    l->period = period;
    l->mem = mem;
    l->window_start = FLARE_TSTAMP_NEVER;
    return 0;
}

/* Only accepted requests create entries, so global_limit bounds them; the
 * table grows to the requests seen (a client-only host never sees one). */
static int limiter_grow(flare__autonat_limiter *l)
{
    size_t cap = l->cap ? l->cap * 2 : 4;
    cap = cap < l->global_limit ? cap : l->global_limit;
    flare__autonat_peer_count *p = flare__realloc(l->mem, l->peers, cap * sizeof(*p));
    if (!p)
        return 0;
    l->peers = p;
    l->cap = cap;
    return 1;
}

void flare__autonat_limiter_free(flare__autonat_limiter *l)
{
    flare__free(l->mem, l->peers);
    l->peers = NULL;
    l->npeers = l->cap = 0;
}

static void limiter_roll(flare__autonat_limiter *l, flare_tstamp now)
{
    if (l->window_start != FLARE_TSTAMP_NEVER && now >= l->window_start &&
        now - l->window_start < l->period)
        return;
    l->window_start = now;
    l->global_count = 0;
    l->npeers = 0;
}

int flare__autonat_limiter_take(flare__autonat_limiter *l, const flare_peerid *peer,
                                flare_tstamp now)
{
    limiter_roll(l, now);
    if (l->global_count >= l->global_limit)
        return 0;
    flare__autonat_peer_count *pc = NULL;
    for (size_t i = 0; i < l->npeers; i++)
        if (flare_peerid_equal(&l->peers[i].peer, peer))
            pc = &l->peers[i];
    if (l->per_peer_limit == 0 || (pc && pc->count >= l->per_peer_limit))
        return 0;
    if (!pc) {
        if (l->npeers == l->cap && !limiter_grow(l))
            return 0;
        pc = &l->peers[l->npeers++];
        pc->peer = *peer;
        pc->count = 0;
    }
    pc->count++;
    l->global_count++;
    return 1;
}

int flare__autonat_put_fixed64(flare_buf *b, uint32_t num, uint64_t v)
{
    int rv = flare_buf_append_uvarint(b, (uint64_t)num << 3 | FLARE__PB_I64);
    if (rv < 0)
        return rv;
    uint8_t le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (uint8_t)(v >> (8 * i));
    return flare_buf_append(b, le, sizeof(le));
}

int flare__autonat_frame(flare_buf *out, const flare_buf *body, size_t max)
{
    if (body->len > max)
        return FLARE_ERR_TOO_LARGE;
    return flare_lpframe_append(out, body->base, body->len);
}

int flare__autonat_same_ip(const flare_multiaddr *a, const flare_multiaddr *b)
{
    flare_ma_component ca, cb;
    size_t oa = 0, ob = 0;
    if (flare_multiaddr_next(a, &oa, &ca) != 1 || flare_multiaddr_next(b, &ob, &cb) != 1)
        return 0;
    if (ca.code != cb.code || (ca.code != FLARE_MA_IP4 && ca.code != FLARE_MA_IP6))
        return 0;
    return ca.value_len == cb.value_len && memcmp(ca.value, cb.value, ca.value_len) == 0;
}

void flare__autonat_strip_p2p(flare_multiaddr *out, const flare_multiaddr *a)
{
    *out = *a;
    size_t off = 0, last = 0;
    flare_ma_component c;
    uint64_t code = 0;
    while (flare_multiaddr_next(out, &off, &c) == 1) {
        code = c.code;
        if (code != FLARE_MA_P2P)
            last = off;
    }
    if (code == FLARE_MA_P2P)
        out->len = (uint16_t)last;
}
