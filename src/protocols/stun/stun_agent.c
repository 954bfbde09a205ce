/*
 * STUN roles on top of the message codec: the client transaction
 * (retransmission with a doubling RTO, bounded), the Binding server's answer
 * and its per-source rate limiter.
 */
#include <string.h>

#include "flare/stun.h"

/* ---- client transaction --------------------------------------------------------------- */

void flare_stun_txn_settings_default(flare_stun_txn_settings *s)
{
    s->rto = 500 * FLARE_NS_PER_MS;
    s->max_sends = 7;
    s->rm = 16;
}

int flare_stun_txn_start(flare_stun_txn *t, const flare_stun_txn_settings *cfg, const uint8_t *req,
                         size_t len, flare_tstamp now)
{
    flare_stun_txn_settings def;
    if (!cfg) {
        flare_stun_txn_settings_default(&def);
        cfg = &def;
    }
    if (!t || !req || cfg->rto == 0 || cfg->rto > 60 * FLARE_NS_PER_S || cfg->max_sends == 0 ||
        cfg->max_sends > 16 || cfg->rm == 0 || cfg->rm > 64)
        return FLARE_ERR_INVALID_ARG;
    if (len > FLARE_STUN_TXN_MAX_REQ)
        return FLARE_ERR_TOO_LARGE;
    if (len < FLARE_STUN_HEADER_LEN || (req[0] & 0x01) || (req[1] & 0x10))
        return FLARE_ERR_INVALID_ARG; /* not a request */
    memset(t, 0, sizeof(*t));
    t->cfg = *cfg;
    memcpy(t->req, req, len);
    t->req_len = len;
    memcpy(t->txid, req + 8, FLARE_STUN_TXID_LEN);
    t->state = FLARE_STUN_TXN_PENDING;
    t->rto = cfg->rto;
    t->next = now;
    return 0;
}

int flare_stun_txn_poll_send(flare_stun_txn *t, flare_tstamp now, uint8_t *out, size_t cap)
{
    if (t->state == FLARE_STUN_TXN_TIMEOUT)
        return FLARE_ERR_TIMEOUT;
    if (t->state != FLARE_STUN_TXN_PENDING || now < t->next)
        return 0;
    if (t->sends >= t->cfg.max_sends) {
        t->state = FLARE_STUN_TXN_TIMEOUT;
        return FLARE_ERR_TIMEOUT;
    }
    if (cap < t->req_len)
        return FLARE_ERR_BUFFER_TOO_SMALL;
    memcpy(out, t->req, t->req_len);
    if (t->sends == 0)
        t->first_sent = now;
    t->last_sent = now;
    t->sends++;
    /* After the last transmission wait Rm * RTO (the first RTO, RFC 8489
     * section 6.2.1); before it, the doubling RTO. */
    t->next = now + (t->sends == t->cfg.max_sends ? t->cfg.rm * t->cfg.rto : t->rto);
    if (t->rto < 60 * FLARE_NS_PER_S)
        t->rto *= 2;
    return (int)t->req_len;
}

flare_tstamp flare_stun_txn_expiry(const flare_stun_txn *t)
{
    return t->state == FLARE_STUN_TXN_PENDING ? t->next : FLARE_TSTAMP_NEVER;
}

int flare_stun_txn_match(flare_stun_txn *t, const flare_stun_msg *m)
{
    if (t->state != FLARE_STUN_TXN_PENDING || t->sends == 0)
        return 0;
    if (m->cls != FLARE_STUN_SUCCESS && m->cls != FLARE_STUN_ERROR)
        return 0;
    if (memcmp(m->txid, t->txid, FLARE_STUN_TXID_LEN) != 0)
        return 0;
    uint16_t method =
        (uint16_t)(((t->req[0] & 0x3E) << 6 | (t->req[1] & 0xE0) >> 1) | (t->req[1] & 0x0F));
    if (m->method != method)
        return 0;
    t->state = FLARE_STUN_TXN_DONE;
    return 1;
}

/* ---- server --------------------------------------------------------------------------- */

int flare_stun_server_answer(const uint8_t *req, size_t len, const flare_ipaddr *from, uint8_t *out,
                             size_t cap)
{
    flare_stun_msg m;
    if (!from || (from->family != 4 && from->family != 6))
        return 0;
    if (flare_stun_parse(&m, req, len) != 0)
        return 0;
    if (m.method != FLARE_STUN_BINDING || m.cls != FLARE_STUN_REQUEST)
        return 0;
    /* Integrity we hold no credential for: not for us (an ICE check). */
    if (m.integrity_off || m.integrity256_off)
        return 0;
    flare_stun_builder b;
    if (m.unknown_required) {
        /* 420 naming (up to 4 of) them, with no reason phrase: at most 48
         * bytes for a request of at least 24 (RFC 8489 section 6.3.1.1). */
        uint8_t types[8];
        size_t n = m.unknown_required < 4 ? m.unknown_required : 4;
        for (size_t i = 0; i < n; i++) {
            types[2 * i] = (uint8_t)(m.unknown_types[i] >> 8);
            types[2 * i + 1] = (uint8_t)m.unknown_types[i];
        }
        flare_stun_build_init(&b, out, cap, FLARE_STUN_BINDING, FLARE_STUN_ERROR, m.txid);
        flare_stun_add_error(&b, FLARE_STUN_ERR_UNKNOWN_ATTR, NULL);
        flare_stun_add_attr(&b, FLARE_STUN_ATTR_UNKNOWN_ATTRIBUTES, types, 2 * n);
    } else {
        flare_stun_build_init(&b, out, cap, FLARE_STUN_BINDING, FLARE_STUN_SUCCESS, m.txid);
        flare_stun_add_addr(&b, FLARE_STUN_ATTR_XOR_MAPPED_ADDRESS, from);
    }
    if (m.fingerprint_off)
        flare_stun_add_fingerprint(&b);
    return flare_stun_build_finish(&b);
}

/* ---- rate limiter --------------------------------------------------------------------- */

void flare_stun_limiter_init(flare_stun_limiter *l, uint32_t rate, uint32_t burst)
{
    memset(l, 0, sizeof(*l));
    l->rate = rate > 1000000 ? 1000000 : rate;
    l->burst = burst ? burst : 1;
}

static size_t slot_hash(const flare_ipaddr *a)
{
    uint32_t h = 2166136261u ^ a->family;
    size_t n = a->family == 6 ? 16 : 4;
    for (size_t i = 0; i < n; i++)
        h = (h ^ a->ip[i]) * 16777619u;
    return h % FLARE_STUN_LIMITER_SLOTS;
}

int flare_stun_limiter_allow(flare_stun_limiter *l, const flare_ipaddr *from, flare_tstamp now)
{
    size_t n = from->family == 6 ? 16 : 4;
    /* Probe 8 slots; a miss takes the least recently used of them. */
    size_t base = slot_hash(from), victim = base;
    for (size_t k = 0; k < 8; k++) {
        size_t i = (base + k) % FLARE_STUN_LIMITER_SLOTS;
        if (l->slot[i].family == from->family && memcmp(l->slot[i].ip, from->ip, n) == 0) {
            victim = i;
            goto found;
        }
        if (l->slot[i].family == 0 || l->slot[i].last < l->slot[victim].last)
            victim = i;
        if (l->slot[i].family == 0)
            break;
    }
    memset(&l->slot[victim], 0, sizeof(l->slot[victim]));
    l->slot[victim].family = from->family;
    memcpy(l->slot[victim].ip, from->ip, n);
    l->slot[victim].tokens_milli = l->burst * 1000u;
    l->slot[victim].last = now;
found:;
    flare_stun_limiter_slot *s = &l->slot[victim];
    if (now > s->last) {
        flare_tstamp dt = now - s->last;
        if (dt > 3600 * FLARE_NS_PER_S)
            dt = 3600 * FLARE_NS_PER_S;
        uint64_t add = dt * l->rate / FLARE_NS_PER_MS; /* milli-tokens */
        uint64_t cap = (uint64_t)l->burst * 1000u;
        uint64_t tok = s->tokens_milli + add;
        s->tokens_milli = (uint32_t)(tok > cap ? cap : tok);
        if (add)
            s->last = now;
    }
    if (s->tokens_milli < 1000)
        return 0;
    s->tokens_milli -= 1000;
    return 1;
}
