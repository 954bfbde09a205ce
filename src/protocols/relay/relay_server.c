/* Circuit Relay v2 relay (hop server) core: see include/flare/relay_server.h.
 *
 * Reservations live in one dense array (about 100 bytes each, nothing else
 * allocated per reservation) indexed by two open-addressing tables of
 * uint32 slots: by peer ID (unique) and by IP (a multiset, counted by
 * probing). Both hash with a random SipHash key so peers cannot aim
 * collisions. Circuits are few (max_circuits) and sit in a list. */
#include <sodium.h>
#include <string.h>

#include "core/mem.h"
#include "flare/relay_server.h"

#define EMPTY    UINT32_MAX
#define NOT_HERE SIZE_MAX

typedef struct rsvp {
    flare_peerid peer;
    flare_ipaddr ip;
    uint64_t expire_unix;
    flare_tstamp expiry;
} rsvp;

struct flare_relay_circuit {
    flare_relay_circuit *prev, *next;
    flare_peerid src, dst;
    flare_relay_limit limit;
    flare_tstamp deadline; /* pending: connect deadline; active: duration end */
    uint64_t bytes[2];
    uint32_t inflight[2];
    uint32_t buffer_size;
    uint8_t active, counted; /* counted: toward circuits per peer */
};

struct flare_relay_server {
    const flare_mem *mem;
    flare_relay_server_settings cfg;
    flare_privkey key;
    flare_peerid self;
    size_t naddrs;
    flare_multiaddr addrs[FLARE_RELAY_MAX_ADDRS];
    flare_peerid *allow;
    uint8_t hkey[crypto_shorthash_KEYBYTES];
    rsvp *rs;
    size_t nrs, caprs;
    uint32_t *by_peer, *by_ip; /* icap slots each */
    size_t icap;
    flare_tstamp next_expiry; /* a lower bound: may be stale-early */
    flare_relay_circuit *circuits;
    size_t ncircuits;
};

/* --- configuration --- */

void flare_relay_server_settings_default(flare_relay_server_settings *c)
{
    memset(c, 0, sizeof(*c));
    c->struct_size = sizeof(*c);
    c->reservation_ttl = FLARE_RELAY_DEFAULT_TTL;
    c->max_reservations = FLARE_RELAY_DEFAULT_MAX_RESERVATIONS;
    c->max_reservations_per_ip = FLARE_RELAY_DEFAULT_MAX_PER_IP;
    c->max_circuits = FLARE_RELAY_DEFAULT_MAX_CIRCUITS;
    c->max_circuits_per_peer = FLARE_RELAY_DEFAULT_CIRCUITS_PER_PEER;
    c->limit_duration = FLARE_RELAY_DEFAULT_DURATION;
    c->limit_data = FLARE_RELAY_DEFAULT_DATA;
    c->buffer_size = FLARE_RELAY_DEFAULT_BUFFER;
    c->stream_timeout = FLARE_RELAY_DEFAULT_STREAM_TIMEOUT;
    c->connect_timeout = FLARE_RELAY_DEFAULT_CONNECT_TIMEOUT;
}

static int settings_valid(const flare_relay_server_settings *c)
{
    return c->struct_size == sizeof(*c) && c->key && (!c->nallow || c->allow) &&
           c->reservation_ttl && c->buffer_size && c->stream_timeout && c->connect_timeout;
}

/* The advertised addresses: public, never relayed, ending in /p2p/SELF. */
static void copy_addrs(flare_relay_server *s, const flare_multiaddr *addrs, size_t n)
{
    for (size_t i = 0; i < n && s->naddrs < FLARE_RELAY_MAX_ADDRS; i++) {
        flare_multiaddr ma = addrs[i];
        if (ma.len == 0 || flare_multiaddr_is_relayed(&ma))
            continue;
        if (flare_multiaddr_with_peerid(&ma, &s->self) == 0)
            s->addrs[s->naddrs++] = ma;
    }
}

int flare_relay_server_new(flare_relay_server **out, const flare_relay_server_settings *cfg,
                           const flare_mem *mem, flare_rng rng)
{
    *out = NULL;
    if (!cfg || !settings_valid(cfg) || !rng.fn)
        return FLARE_ERR_INVALID_ARG;
    flare_relay_server *s = flare__calloc(mem, 1, sizeof(*s));
    if (!s)
        return FLARE_ERR_NOMEM;
    s->mem = mem;
    s->cfg = *cfg;
    /* The index stores uint32 positions; keep well clear of EMPTY. */
    if (s->cfg.max_reservations > (1u << 30))
        s->cfg.max_reservations = 1u << 30;
    s->key = *cfg->key;
    s->cfg.key = NULL;
    s->cfg.addrs = NULL;
    s->cfg.allow = NULL;
    s->next_expiry = FLARE_TSTAMP_NEVER;
    rng.fn(s->hkey, sizeof(s->hkey), rng.user);
    int rv = flare_peerid_from_pubkey(&s->self, &s->key.pub);
    if (rv == 0 && cfg->nallow) {
        s->allow = flare__malloc(mem, cfg->nallow * sizeof(*s->allow));
        if (s->allow)
            memcpy(s->allow, cfg->allow, cfg->nallow * sizeof(*s->allow));
        else
            rv = FLARE_ERR_NOMEM;
    }
    if (rv) {
        flare_relay_server_del(s);
        return rv;
    }
    copy_addrs(s, cfg->addrs, cfg->addrs ? cfg->naddrs : 0);
    *out = s;
    return 0;
}

void flare_relay_server_del(flare_relay_server *s)
{
    if (!s)
        return;
    while (s->circuits)
        flare_relay_server_circuit_close(s, s->circuits);
    flare__free(s->mem, s->allow);
    flare__free(s->mem, s->rs);
    flare__free(s->mem, s->by_peer);
    flare__free(s->mem, s->by_ip);
    sodium_memzero(&s->key, sizeof(s->key));
    flare__free(s->mem, s);
}

const flare_relay_server_settings *flare_relay_server_get_settings(const flare_relay_server *s)
{
    return &s->cfg;
}

static int is_allowed(const flare_relay_server *s, const flare_peerid *p)
{
    for (size_t i = 0; i < s->cfg.nallow; i++)
        if (flare_peerid_equal(&s->allow[i], p))
            return 1;
    return 0;
}

/* --- reservation index --- */

static size_t hash_bytes(const flare_relay_server *s, const uint8_t *p, size_t len)
{
    uint8_t h[crypto_shorthash_BYTES];
    uint64_t v;
    crypto_shorthash(h, p, len, s->hkey);
    memcpy(&v, h, sizeof(v));
    return (size_t)v;
}

static size_t peer_home(const flare_relay_server *s, const flare_peerid *p)
{
    return hash_bytes(s, p->bytes, p->len) & (s->icap - 1);
}

static size_t ip_home(const flare_relay_server *s, const flare_ipaddr *ip)
{
    uint8_t k[17];
    k[0] = ip->family;
    memcpy(k + 1, ip->ip, 16);
    return hash_bytes(s, k, ip->family == 4 ? 5 : 17) & (s->icap - 1);
}

static size_t home(const flare_relay_server *s, const uint32_t *t, uint32_t idx)
{
    return t == s->by_peer ? peer_home(s, &s->rs[idx].peer) : ip_home(s, &s->rs[idx].ip);
}

static void slot_insert(const flare_relay_server *s, uint32_t *t, size_t h, uint32_t v)
{
    size_t mask = s->icap - 1;
    while (t[h] != EMPTY)
        h = (h + 1) & mask;
    t[h] = v;
}

/* The slot holding v (which must be present), probing from h. */
static size_t slot_find(const flare_relay_server *s, const uint32_t *t, size_t h, uint32_t v)
{
    while (t[h] != v)
        h = (h + 1) & (s->icap - 1);
    return h;
}

/* Linear-probing delete by backward shift: no tombstones, so probes stay
 * short however long the relay runs. */
static void slot_delete(const flare_relay_server *s, uint32_t *t, size_t i)
{
    size_t mask = s->icap - 1, j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (t[j] == EMPTY)
            break;
        size_t k = home(s, t, t[j]);
        int stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (stays)
            continue;
        t[i] = t[j];
        i = j;
    }
    t[i] = EMPTY;
}

static size_t rsvp_find(const flare_relay_server *s, const flare_peerid *p)
{
    if (!s->icap)
        return NOT_HERE;
    size_t mask = s->icap - 1;
    for (size_t h = peer_home(s, p); s->by_peer[h] != EMPTY; h = (h + 1) & mask)
        if (flare_peerid_equal(&s->rs[s->by_peer[h]].peer, p))
            return s->by_peer[h];
    return NOT_HERE;
}

static size_t count_ip(const flare_relay_server *s, const flare_ipaddr *ip)
{
    size_t n = 0;
    if (!s->icap)
        return 0;
    for (size_t h = ip_home(s, ip); s->by_ip[h] != EMPTY; h = (h + 1) & (s->icap - 1))
        n += flare_ipaddr_same_ip(&s->rs[s->by_ip[h]].ip, ip) != 0;
    return n;
}

static int index_rebuild(flare_relay_server *s, size_t icap)
{
    uint32_t *bp = flare__malloc(s->mem, icap * sizeof(uint32_t));
    uint32_t *bi = flare__malloc(s->mem, icap * sizeof(uint32_t));
    if (!bp || !bi) {
        flare__free(s->mem, bp);
        flare__free(s->mem, bi);
        return FLARE_ERR_NOMEM;
    }
    memset(bp, 0xff, icap * sizeof(uint32_t));
    memset(bi, 0xff, icap * sizeof(uint32_t));
    flare__free(s->mem, s->by_peer);
    flare__free(s->mem, s->by_ip);
    s->by_peer = bp;
    s->by_ip = bi;
    s->icap = icap;
    for (uint32_t i = 0; i < s->nrs; i++) {
        slot_insert(s, bp, peer_home(s, &s->rs[i].peer), i);
        slot_insert(s, bi, ip_home(s, &s->rs[i].ip), i);
    }
    return 0;
}

/* Room for one more reservation: array grows by half, index stays <= 1/2
 * full. */
static int rsvp_reserve_one(flare_relay_server *s)
{
    if (s->nrs == s->caprs) {
        size_t cap = s->caprs ? s->caprs + s->caprs / 2 : 8;
        rsvp *rs = flare__realloc(s->mem, s->rs, cap * sizeof(*rs));
        if (!rs)
            return FLARE_ERR_NOMEM;
        s->rs = rs;
        s->caprs = cap;
    }
    if ((s->nrs + 1) * 2 > s->icap)
        return index_rebuild(s, s->icap ? s->icap * 2 : 16);
    return 0;
}

static void rsvp_remove(flare_relay_server *s, size_t x)
{
    uint32_t last = (uint32_t)(s->nrs - 1);
    slot_delete(s, s->by_peer, slot_find(s, s->by_peer, peer_home(s, &s->rs[x].peer), (uint32_t)x));
    slot_delete(s, s->by_ip, slot_find(s, s->by_ip, ip_home(s, &s->rs[x].ip), (uint32_t)x));
    if (x != last) {
        s->rs[x] = s->rs[last];
        s->by_peer[slot_find(s, s->by_peer, peer_home(s, &s->rs[x].peer), last)] = (uint32_t)x;
        s->by_ip[slot_find(s, s->by_ip, ip_home(s, &s->rs[x].ip), last)] = (uint32_t)x;
    }
    s->nrs--;
}

static void rsvp_set_ip(flare_relay_server *s, size_t x, const flare_ipaddr *ip)
{
    slot_delete(s, s->by_ip, slot_find(s, s->by_ip, ip_home(s, &s->rs[x].ip), (uint32_t)x));
    s->rs[x].ip = *ip;
    slot_insert(s, s->by_ip, ip_home(s, ip), (uint32_t)x);
}

flare_tstamp flare_relay_server_expiry(const flare_relay_server *s)
{
    return s->next_expiry;
}

int flare_relay_server_handle_expiry(flare_relay_server *s, flare_tstamp now)
{
    int n = 0;
    flare_tstamp next = FLARE_TSTAMP_NEVER;
    if (now < s->next_expiry)
        return 0;
    for (size_t i = 0; i < s->nrs;) {
        if (s->rs[i].expiry <= now) {
            rsvp_remove(s, i); /* moves the last one into i */
            n++;
            continue;
        }
        if (s->rs[i].expiry < next)
            next = s->rs[i].expiry;
        i++;
    }
    s->next_expiry = next;
    return n;
}

int flare_relay_server_peer_disconnected(flare_relay_server *s, const flare_peerid *peer)
{
    size_t x = rsvp_find(s, peer);
    if (x == NOT_HERE)
        return 0;
    rsvp_remove(s, x);
    return 1;
}

size_t flare_relay_server_num_reservations(const flare_relay_server *s)
{
    return s->nrs;
}

size_t flare_relay_server_num_circuits(const flare_relay_server *s)
{
    return s->ncircuits;
}

int flare_relay_server_has_reservation(const flare_relay_server *s, const flare_peerid *peer,
                                       flare_tstamp now)
{
    size_t x = rsvp_find(s, peer);
    return x != NOT_HERE && s->rs[x].expiry > now;
}

/* --- hop requests --- */

static int reply_status(uint32_t status, const flare_relay_limit *limit, flare_buf *out,
                        flare_relay_hop_result *res)
{
    flare_relay_msg m;
    flare_relay_msg_init(&m, FLARE_RELAY_HOP_STATUS);
    m.has_status = 1;
    m.status = status;
    if (limit) {
        m.has_limit = 1;
        m.limit = *limit;
    }
    res->action = FLARE_RELAY_HOP_REPLIED;
    res->status = status;
    return flare_relay_hop_encode(&m, out);
}

static flare_relay_limit default_limit(const flare_relay_server *s)
{
    flare_relay_limit l = {s->cfg.limit_duration, s->cfg.limit_data};
    return l;
}

static flare_tstamp add_seconds(flare_tstamp now, uint64_t sec)
{
    if (sec > (FLARE_TSTAMP_NEVER - 1 - now) / FLARE_NS_PER_S)
        return FLARE_TSTAMP_NEVER - 1;
    return now + sec * FLARE_NS_PER_S;
}

/* The STATUS OK reply to RESERVE, voucher included. */
static int reserve_reply(flare_relay_server *s, const flare_peerid *peer, uint64_t expire,
                         flare_buf *out, flare_relay_hop_result *res)
{
    flare_relay_msg m;
    flare_buf voucher;
    flare_buf_init(&voucher, s->mem);
    int rv = flare_relay_voucher_seal(&s->key, peer, expire, &voucher);
    flare_relay_msg_init(&m, FLARE_RELAY_HOP_STATUS);
    m.has_status = 1;
    m.status = FLARE_RELAY_STATUS_OK;
    m.has_reservation = m.has_expire = m.has_limit = 1;
    m.expire = expire;
    m.voucher.p = voucher.base;
    m.voucher.len = voucher.len;
    m.nrsvp_addrs = s->naddrs;
    for (size_t i = 0; i < s->naddrs; i++) {
        m.rsvp_addrs[i].p = s->addrs[i].bytes;
        m.rsvp_addrs[i].len = s->addrs[i].len;
    }
    m.limit = default_limit(s);
    if (rv == 0)
        rv = flare_relay_hop_encode(&m, out);
    flare_buf_free(&voucher);
    res->status = FLARE_RELAY_STATUS_OK;
    return rv;
}

/* Which refusal, if any, a RESERVE gets (0: accept). x is the peer's
 * current reservation or NOT_HERE. */
static uint32_t reserve_check(const flare_relay_server *s, size_t x, const flare_peerid *from,
                              const flare_ipaddr *ip, int relayed)
{
    if (relayed)
        return FLARE_RELAY_STATUS_PERMISSION_DENIED;
    if (s->cfg.allow_reserve && !s->cfg.allow_reserve(s->cfg.acl_user, from, ip))
        return FLARE_RELAY_STATUS_PERMISSION_DENIED;
    if (x == NOT_HERE && s->nrs >= s->cfg.max_reservations)
        return FLARE_RELAY_STATUS_RESOURCE_LIMIT_EXCEEDED;
    int moves = x == NOT_HERE || !flare_ipaddr_same_ip(&s->rs[x].ip, ip);
    if (moves && !is_allowed(s, from) && count_ip(s, ip) >= s->cfg.max_reservations_per_ip)
        return FLARE_RELAY_STATUS_RESERVATION_REFUSED;
    return 0;
}

static int do_reserve(flare_relay_server *s, const flare_peerid *from, const flare_ipaddr *ip,
                      int relayed, flare_tstamp now, uint64_t now_unix, flare_buf *out,
                      flare_relay_hop_result *res)
{
    flare_relay_server_handle_expiry(s, now); /* stale entries must not count */
    size_t x = rsvp_find(s, from);
    uint32_t refuse = reserve_check(s, x, from, ip, relayed);
    if (refuse)
        return reply_status(refuse, NULL, out, res);
    if (x == NOT_HERE) {
        int rv = rsvp_reserve_one(s);
        if (rv)
            return rv;
    }
    uint64_t expire = now_unix + s->cfg.reservation_ttl;
    size_t mark = out->len;
    int rv = reserve_reply(s, from, expire, out, res);
    if (rv) {
        out->len = mark;
        return rv;
    }
    if (x == NOT_HERE) {
        x = s->nrs++;
        s->rs[x].peer = *from;
        s->rs[x].ip = *ip;
        slot_insert(s, s->by_peer, peer_home(s, from), (uint32_t)x);
        slot_insert(s, s->by_ip, ip_home(s, ip), (uint32_t)x);
    } else if (!flare_ipaddr_equal(&s->rs[x].ip, ip)) {
        rsvp_set_ip(s, x, ip);
    }
    s->rs[x].expire_unix = expire;
    s->rs[x].expiry = add_seconds(now, s->cfg.reservation_ttl);
    if (s->rs[x].expiry < s->next_expiry)
        s->next_expiry = s->rs[x].expiry;
    return 0;
}

static size_t circuits_of(const flare_relay_server *s, const flare_peerid *p)
{
    size_t n = 0;
    for (const flare_relay_circuit *c = s->circuits; c; c = c->next)
        n += c->counted && (flare_peerid_equal(&c->src, p) || flare_peerid_equal(&c->dst, p));
    return n;
}

static uint32_t connect_check(flare_relay_server *s, const flare_relay_msg *m,
                              const flare_peerid *from, const flare_ipaddr *ip, int relayed,
                              flare_tstamp now, int unlimited)
{
    if (relayed)
        return FLARE_RELAY_STATUS_PERMISSION_DENIED;
    if (!m->has_peer)
        return FLARE_RELAY_STATUS_MALFORMED_MESSAGE;
    if (s->cfg.allow_connect && !s->cfg.allow_connect(s->cfg.acl_user, from, ip, &m->peer))
        return FLARE_RELAY_STATUS_PERMISSION_DENIED;
    if (!flare_relay_server_has_reservation(s, &m->peer, now))
        return FLARE_RELAY_STATUS_NO_RESERVATION;
    if (s->ncircuits >= s->cfg.max_circuits)
        return FLARE_RELAY_STATUS_RESOURCE_LIMIT_EXCEEDED;
    if (!unlimited && (circuits_of(s, from) >= s->cfg.max_circuits_per_peer ||
                       circuits_of(s, &m->peer) >= s->cfg.max_circuits_per_peer))
        return FLARE_RELAY_STATUS_RESOURCE_LIMIT_EXCEEDED;
    return 0;
}

static int do_connect(flare_relay_server *s, const flare_relay_msg *m, const flare_peerid *from,
                      const flare_ipaddr *ip, int relayed, flare_tstamp now, flare_buf *out,
                      flare_relay_hop_result *res)
{
    int unlimited = m->has_peer && is_allowed(s, from) && is_allowed(s, &m->peer);
    uint32_t refuse = connect_check(s, m, from, ip, relayed, now, unlimited);
    if (refuse)
        return reply_status(refuse, NULL, out, res);
    flare_relay_circuit *c = flare__calloc(s->mem, 1, sizeof(*c));
    if (!c)
        return FLARE_ERR_NOMEM;
    c->src = *from;
    c->dst = m->peer;
    if (!unlimited)
        c->limit = default_limit(s);
    c->counted = !unlimited;
    c->buffer_size = s->cfg.buffer_size;
    c->deadline = now > FLARE_TSTAMP_NEVER - 1 - s->cfg.connect_timeout
                      ? FLARE_TSTAMP_NEVER - 1
                      : now + s->cfg.connect_timeout;
    c->next = s->circuits;
    if (s->circuits)
        s->circuits->prev = c;
    s->circuits = c;
    s->ncircuits++;
    res->action = FLARE_RELAY_HOP_OPEN_STOP;
    res->target = m->peer;
    res->circuit = c;
    return 0;
}

int flare_relay_server_handle_hop(flare_relay_server *s, const uint8_t *in, size_t len,
                                  const flare_peerid *from, const flare_ipaddr *ip, int relayed,
                                  flare_tstamp now, uint64_t now_unix, flare_buf *out,
                                  flare_relay_hop_result *res)
{
    flare_relay_msg m;
    if (!s || !from || !from->len || !ip || !out || !res || (len && !in))
        return FLARE_ERR_INVALID_ARG;
    memset(res, 0, sizeof(*res));
    if (flare_relay_hop_decode(in, len, &m) != 0)
        return reply_status(FLARE_RELAY_STATUS_MALFORMED_MESSAGE, NULL, out, res);
    switch (m.type) {
    case FLARE_RELAY_HOP_RESERVE:
        return do_reserve(s, from, ip, relayed, now, now_unix, out, res);
    case FLARE_RELAY_HOP_CONNECT:
        return do_connect(s, &m, from, ip, relayed, now, out, res);
    default:
        return reply_status(FLARE_RELAY_STATUS_UNEXPECTED_MESSAGE, NULL, out, res);
    }
}

/* --- circuits --- */

int flare_relay_circuit_stop_request(const flare_relay_circuit *c, flare_buf *stop_out)
{
    flare_relay_msg m;
    flare_relay_msg_init(&m, FLARE_RELAY_STOP_CONNECT);
    m.has_peer = 1;
    m.peer = c->src;
    m.has_limit = 1;
    m.limit = c->limit;
    return flare_relay_stop_encode(&m, stop_out);
}

int flare_relay_server_stop_reply(flare_relay_server *s, flare_relay_circuit *c, const uint8_t *in,
                                  size_t len, flare_tstamp now, flare_buf *hop_out)
{
    flare_relay_msg m;
    flare_relay_hop_result res;
    if (c->active)
        return FLARE_ERR_STATE;
    int rv = flare_relay_stop_decode(in, len, &m);
    if (rv == 0 && (m.type != FLARE_RELAY_STOP_STATUS || !m.has_status))
        rv = FLARE_ERR_PROTO;
    else if (rv == 0 && m.status != FLARE_RELAY_STATUS_OK)
        rv = FLARE_ERR_REFUSED;
    if (rv) {
        int wrv = flare_relay_server_stop_failed(s, c, hop_out);
        return wrv ? wrv : rv;
    }
    if ((rv = reply_status(FLARE_RELAY_STATUS_OK, &c->limit, hop_out, &res)) != 0)
        return rv;
    c->active = 1;
    c->deadline = c->limit.duration ? add_seconds(now, c->limit.duration) : FLARE_TSTAMP_NEVER;
    return 0;
}

int flare_relay_server_stop_failed(flare_relay_server *s, flare_relay_circuit *c,
                                   flare_buf *hop_out)
{
    flare_relay_hop_result res;
    int rv = reply_status(FLARE_RELAY_STATUS_CONNECTION_FAILED, NULL, hop_out, &res);
    flare_relay_server_circuit_close(s, c);
    return rv;
}

void flare_relay_server_circuit_close(flare_relay_server *s, flare_relay_circuit *c)
{
    if (!c)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->circuits = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->ncircuits--;
    flare__free(s->mem, c);
}

const flare_peerid *flare_relay_circuit_src(const flare_relay_circuit *c)
{
    return &c->src;
}

const flare_peerid *flare_relay_circuit_dst(const flare_relay_circuit *c)
{
    return &c->dst;
}

flare_relay_limit flare_relay_circuit_limit(const flare_relay_circuit *c)
{
    return c->limit;
}

int flare_relay_circuit_active(const flare_relay_circuit *c)
{
    return c->active;
}

flare_tstamp flare_relay_circuit_expiry(const flare_relay_circuit *c)
{
    return c->deadline;
}

int flare_relay_circuit_check(const flare_relay_circuit *c, flare_tstamp now)
{
    return now >= c->deadline ? FLARE_ERR_TIMEOUT : 0;
}

size_t flare_relay_circuit_window(const flare_relay_circuit *c, flare_relay_dir dir)
{
    if (!c->active || (dir != FLARE_RELAY_SRC_TO_DST && dir != FLARE_RELAY_DST_TO_SRC))
        return 0;
    return c->buffer_size - c->inflight[dir];
}

int flare_relay_circuit_account(flare_relay_circuit *c, flare_relay_dir dir, size_t len,
                                flare_tstamp now, size_t *allowed)
{
    size_t dummy;
    if (!allowed)
        allowed = &dummy;
    *allowed = 0;
    if (dir != FLARE_RELAY_SRC_TO_DST && dir != FLARE_RELAY_DST_TO_SRC)
        return FLARE_ERR_INVALID_ARG;
    if (!c->active)
        return FLARE_ERR_STATE;
    if (now >= c->deadline)
        return FLARE_ERR_TIMEOUT;
    if (len > flare_relay_circuit_window(c, dir))
        return FLARE_ERR_FLOW_CONTROL;
    size_t ok = len;
    int rv = 0;
    if (c->limit.data) {
        uint64_t left = c->limit.data - c->bytes[dir];
        if (left == 0 || len > left) {
            ok = (size_t)left;
            rv = FLARE_ERR_LIMIT;
        } else if (len == left) {
            rv = 1;
        }
    }
    c->bytes[dir] += ok;
    c->inflight[dir] += (uint32_t)ok;
    *allowed = ok;
    return rv;
}

void flare_relay_circuit_sent(flare_relay_circuit *c, flare_relay_dir dir, size_t len)
{
    if (dir != FLARE_RELAY_SRC_TO_DST && dir != FLARE_RELAY_DST_TO_SRC)
        return;
    c->inflight[dir] -= len < c->inflight[dir] ? (uint32_t)len : c->inflight[dir];
}

uint64_t flare_relay_circuit_bytes(const flare_relay_circuit *c, flare_relay_dir dir)
{
    return dir == FLARE_RELAY_DST_TO_SRC ? c->bytes[1] : c->bytes[0];
}
