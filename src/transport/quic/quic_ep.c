/*
 * transport/quic/quic_ep.c - the QUIC endpoint: one per UDP socket; maps
 * connection IDs to connections, starts server connections, answers with
 * Version Negotiation and Stateless Reset, and drives timers and flushes.
 */
#include <sodium.h>
#include <string.h>

#include "transport/quic/quic_int.h"

void flare__quic_settings_default(flare__quic_settings *s)
{
    memset(s, 0, sizeof(*s));
    s->idle_timeout = 30 * FLARE_NS_PER_S;
    s->keepalive = 10 * FLARE_NS_PER_S;
    s->handshake_timeout = 10 * FLARE_NS_PER_S;
    s->stream_window = 1u << 20;
    s->max_stream_window = 6u << 20;
    s->conn_window = 4u << 20;
    s->max_conn_window = 16u << 20;
    s->max_streams_in = 256;
    s->stream_send_high = 1u << 20;
    s->max_conns = 256;
    s->max_handshakes = 64;
    s->resets_per_s = 100;
}

void flare__quic_rand(flare__quic_ep *ep, uint8_t *dst, size_t len)
{
    ep->cfg.rng.fn(dst, len, ep->cfg.rng.user);
}

void flare__quic_sa_from(struct sockaddr_storage *sa, socklen_t *len, const flare_ipaddr *a)
{
    memset(sa, 0, sizeof(*sa));
    if (a->family == 6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)sa;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(a->port);
        memcpy(&s6->sin6_addr, a->ip, 16);
        *len = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)sa;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(a->port);
        memcpy(&s4->sin_addr, a->ip, 4);
        *len = sizeof(*s4);
    }
}

void flare__quic_sa_to(flare_ipaddr *a, const struct sockaddr *sa)
{
    memset(a, 0, sizeof(*a));
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        a->family = 6;
        a->port = ntohs(s6->sin6_port);
        memcpy(a->ip, &s6->sin6_addr, 16);
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        a->family = 4;
        a->port = ntohs(s4->sin_port);
        memcpy(a->ip, &s4->sin_addr, 4);
    }
}

/* ---- connection ID table (keyed SipHash: a peer cannot aim at one bucket) ---------- */

static size_t cid_bucket(const flare__quic_ep *ep, const ngtcp2_cid *cid)
{
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, cid->data, cid->datalen, ep->hash_key);
    uint64_t v;
    memcpy(&v, h, sizeof(v));
    return (size_t)(v & (ep->nbuckets - 1));
}

static flare__quic_conn *cid_find(const flare__quic_ep *ep, const ngtcp2_cid *cid)
{
    for (flare__quic_cid_ent *e = ep->buckets[cid_bucket(ep, cid)]; e; e = e->next)
        if (ngtcp2_cid_eq(&e->cid, cid))
            return e->qc;
    return NULL;
}

int flare__quic_cid_add(flare__quic_ep *ep, flare__quic_conn *qc, const ngtcp2_cid *cid)
{
    if (qc->ncids >= FLARE__QUIC_MAX_CIDS)
        return FLARE_ERR_LIMIT;
    if (cid_find(ep, cid))
        return FLARE_ERR_EXISTS;
    flare__quic_cid_ent *e = flare__calloc(ep->mem, 1, sizeof(*e));
    if (!e)
        return FLARE_ERR_NOMEM;
    e->cid = *cid;
    e->qc = qc;
    size_t b = cid_bucket(ep, cid);
    e->next = ep->buckets[b];
    ep->buckets[b] = e;
    qc->cids[qc->ncids++] = e;
    return 0;
}

void flare__quic_cid_remove(flare__quic_ep *ep, const ngtcp2_cid *cid)
{
    flare__quic_cid_ent **pp = &ep->buckets[cid_bucket(ep, cid)];
    while (*pp && !ngtcp2_cid_eq(&(*pp)->cid, cid))
        pp = &(*pp)->next;
    flare__quic_cid_ent *e = *pp;
    if (!e)
        return;
    *pp = e->next;
    flare__quic_conn *qc = e->qc;
    for (size_t i = 0; i < qc->ncids; i++) {
        if (qc->cids[i] == e) {
            qc->cids[i] = qc->cids[--qc->ncids];
            break;
        }
    }
    flare__free(ep->mem, e);
}

/* ---- endpoint ------------------------------------------------------------------------ */

int flare__quic_ep_new(const flare__quic_config *cfg, flare__quic_ep **out)
{
    *out = NULL;
    if (!cfg || !cfg->cbs.send || !cfg->cbs.verify || !cfg->cbs.closed || !cfg->rng.fn ||
        !cfg->cred || cfg->settings.max_conns == 0)
        return FLARE_ERR_INVALID_ARG;
    const flare_mem *mem = flare__mem(cfg->mem);
    flare__quic_ep *ep = flare__calloc(mem, 1, sizeof(*ep));
    if (!ep)
        return FLARE_ERR_NOMEM;
    ep->cfg = *cfg;
    ep->mem = mem;
    size_t want = cfg->settings.max_conns * 4;
    ep->nbuckets = 64;
    while (ep->nbuckets < want && ep->nbuckets < (1u << 20))
        ep->nbuckets <<= 1;
    ep->buckets = flare__calloc(mem, ep->nbuckets, sizeof(*ep->buckets));
    if (!ep->buckets) {
        flare__free(mem, ep);
        return FLARE_ERR_NOMEM;
    }
    flare__quic_rand(ep, ep->hash_key, sizeof(ep->hash_key));
    if (cfg->reset_secret)
        memcpy(ep->reset_secret, cfg->reset_secret, sizeof(ep->reset_secret));
    else
        flare__quic_rand(ep, ep->reset_secret, sizeof(ep->reset_secret));
    ep->cfg.reset_secret = NULL;
    flare__quic_ep_set_local(ep, &cfg->local);
    *out = ep;
    return 0;
}

void flare__quic_ep_set_local(flare__quic_ep *ep, const flare_ipaddr *local)
{
    ep->cfg.local = *local;
    flare__quic_sa_from(&ep->local_sa, &ep->local_len, local);
}

void flare__quic_ep_del(flare__quic_ep *ep)
{
    if (!ep)
        return;
    while (ep->conns)
        flare__quic_conn_free(ep->conns);
    flare__free(ep->mem, ep->buckets);
    flare__free(ep->mem, ep);
}

size_t flare__quic_ep_conns(const flare__quic_ep *ep)
{
    return ep->nconns;
}

size_t flare__quic_ep_handshakes(const flare__quic_ep *ep)
{
    return ep->nhandshakes;
}

static void send_raw(flare__quic_ep *ep, const flare_ipaddr *to, const uint8_t *d, size_t n)
{
    ep->cfg.cbs.send(ep->cfg.user, to, d, n);
}

/* A client offered a version we do not speak: list ours (QUIC v1). */
static void send_version_negotiation(flare__quic_ep *ep, const flare_ipaddr *from,
                                     const ngtcp2_version_cid *vc, size_t len)
{
    if (len < NGTCP2_MAX_UDP_PAYLOAD_SIZE)
        return; /* only for Initial-sized datagrams: no amplification */
    const uint32_t sv[] = {NGTCP2_PROTO_VER_V1};
    uint8_t r;
    flare__quic_rand(ep, &r, 1);
    ngtcp2_ssize n = ngtcp2_pkt_write_version_negotiation(
        ep->pkt, sizeof(ep->pkt), r, vc->scid, vc->scidlen, vc->dcid, vc->dcidlen, sv, 1);
    if (n > 0)
        send_raw(ep, from, ep->pkt, (size_t)n);
}

/* A short-header packet for a connection we do not know (we lost its state):
 * a Stateless Reset tells the peer at once instead of after its idle timeout.
 * Smaller than the trigger (no loops, no amplification) and rate limited. */
static void send_stateless_reset(flare__quic_ep *ep, const flare_ipaddr *from,
                                 const ngtcp2_version_cid *vc, size_t len, flare_tstamp now)
{
    /* The smallest reset: 1 byte, the minimum random part, the token; it must
     * be shorter than the trigger. */
    if (vc->dcidlen != FLARE__QUIC_CID_LEN ||
        len < 2 + NGTCP2_MIN_STATELESS_RESET_RANDLEN + NGTCP2_STATELESS_RESET_TOKENLEN)
        return;
    if (now - ep->reset_window >= FLARE_NS_PER_S || now < ep->reset_window) {
        ep->reset_window = now;
        ep->resets_in_window = 0;
    }
    if (ep->resets_in_window >= ep->cfg.settings.resets_per_s)
        return;
    ep->resets_in_window++;
    uint8_t token[NGTCP2_STATELESS_RESET_TOKENLEN];
    ngtcp2_cid cid;
    ngtcp2_cid_init(&cid, vc->dcid, vc->dcidlen);
    if (ngtcp2_crypto_generate_stateless_reset_token(token, ep->reset_secret,
                                                     sizeof(ep->reset_secret), &cid) != 0)
        return;
    size_t out = len - 1 < 64 ? len - 1 : 64;
    uint8_t rnd[64];
    size_t rlen = out - 1 - NGTCP2_STATELESS_RESET_TOKENLEN;
    flare__quic_rand(ep, rnd, rlen);
    ngtcp2_ssize n = ngtcp2_pkt_write_stateless_reset(ep->pkt, sizeof(ep->pkt), token, rnd, rlen);
    if (n > 0)
        send_raw(ep, from, ep->pkt, (size_t)n);
}

/* A Stateless Reset carries no CID of ours: find the connection whose peer
 * issued the token in its last 16 bytes (bounded by max_conns times the
 * active CID limit, and only for packets no connection claims). */
static flare__quic_conn *reset_target(flare__quic_ep *ep, const uint8_t *data, size_t len)
{
    if (len < 1 + NGTCP2_MIN_STATELESS_RESET_RANDLEN + NGTCP2_STATELESS_RESET_TOKENLEN)
        return NULL;
    const uint8_t *tok = data + len - NGTCP2_STATELESS_RESET_TOKENLEN;
    for (flare__quic_conn *qc = ep->conns; qc; qc = qc->next) {
        if (qc->dead)
            continue;
        ngtcp2_cid_token ct[FLARE__QUIC_ACTIVE_CID_LIMIT + 2];
        size_t n = ngtcp2_conn_get_num_active_dcid(qc->conn);
        if (n > sizeof(ct) / sizeof(ct[0]))
            continue;
        n = ngtcp2_conn_get_active_dcid(qc->conn, ct);
        for (size_t i = 0; i < n; i++)
            if (ct[i].token_present &&
                sodium_memcmp(ct[i].token, tok, NGTCP2_STATELESS_RESET_TOKENLEN) == 0)
                return qc;
    }
    return NULL;
}

static void new_server_conn(flare__quic_ep *ep, const flare_ipaddr *from, const uint8_t *data,
                            size_t len, flare_tstamp now)
{
    ngtcp2_pkt_hd hd;
    if (ngtcp2_accept(&hd, data, len) != 0)
        return;
    const flare__quic_settings *s = &ep->cfg.settings;
    if (ep->nconns >= s->max_conns || ep->nhandshakes >= s->max_handshakes)
        return; /* the client retries its Initial; we hold nothing meanwhile */
    flare__quic_conn *qc;
    if (flare__quic_conn_new_server(ep, &hd, from, now, &qc) != 0)
        return;
    if (ep->cfg.cbs.accept && ep->cfg.cbs.accept(ep->cfg.user, qc, from) != 0) {
        flare__quic_conn_free(qc);
        return;
    }
    flare__quic_conn_read(qc, from, data, len, now);
}

static void ep_leave(flare__quic_ep *ep, flare_tstamp now)
{
    if (ep->depth == 1) {
        flare__quic_ep_flush(ep, now);
        flare__quic_reap(ep);
    }
    ep->depth--;
}

void flare__quic_ep_input(flare__quic_ep *ep, const flare_ipaddr *from, const uint8_t *data,
                          size_t len, flare_tstamp now)
{
    if (len == 0 || len > 65527)
        return;
    ep->depth++;
    ngtcp2_version_cid vc;
    int rv = ngtcp2_pkt_decode_version_cid(&vc, data, len, FLARE__QUIC_CID_LEN);
    if (rv == NGTCP2_ERR_VERSION_NEGOTIATION) {
        send_version_negotiation(ep, from, &vc, len);
    } else if (rv == 0 && vc.dcidlen <= NGTCP2_MAX_CIDLEN) {
        ngtcp2_cid dcid;
        ngtcp2_cid_init(&dcid, vc.dcid, vc.dcidlen);
        flare__quic_conn *qc = cid_find(ep, &dcid);
        if (qc) {
            if (!qc->dead)
                flare__quic_conn_read(qc, from, data, len, now);
        } else if (data[0] & 0x80) {
            new_server_conn(ep, from, data, len, now);
        } else if ((qc = reset_target(ep, data, len)) != NULL) {
            flare__quic_conn_read(qc, from, data, len, now);
        } else {
            send_stateless_reset(ep, from, &vc, len, now);
        }
    }
    ep_leave(ep, now);
}

void flare__quic_ep_timeout(flare__quic_ep *ep, flare_tstamp now)
{
    ep->depth++;
    for (flare__quic_conn *qc = ep->conns; qc; qc = qc->next) {
        if (!qc->dead && ngtcp2_conn_get_expiry(qc->conn) <= now)
            flare__quic_conn_expire(qc, now);
    }
    ep_leave(ep, now);
}

void flare__quic_ep_flush(flare__quic_ep *ep, flare_tstamp now)
{
    ep->depth++;
    for (flare__quic_conn *qc = ep->conns; qc; qc = qc->next) {
        if (qc->dirty && !qc->dead)
            flare__quic_conn_write(qc, now);
    }
    if (ep->depth == 1)
        flare__quic_reap(ep);
    ep->depth--;
}

int flare__quic_ep_dirty(const flare__quic_ep *ep)
{
    for (const flare__quic_conn *qc = ep->conns; qc; qc = qc->next)
        if (qc->dirty || qc->dead)
            return 1;
    return 0;
}

flare_tstamp flare__quic_ep_expiry(flare__quic_ep *ep)
{
    flare_tstamp t = FLARE_TSTAMP_NEVER;
    for (flare__quic_conn *qc = ep->conns; qc; qc = qc->next) {
        if (qc->dead)
            continue;
        flare_tstamp e = ngtcp2_conn_get_expiry(qc->conn);
        if (e < t)
            t = e;
    }
    return t;
}
