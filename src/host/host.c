/* Host lifecycle, listeners, protocol handlers, events and deferred work. */
#include <stdio.h>
#include <string.h>

#include "core/hash.h"
#include "core/mem.h"
#include "host/host_int.h"
#include "transport/transport.h"

void flare_host_settings_default(flare_host_settings *c)
{
    memset(c, 0, sizeof(*c));
    c->struct_size = sizeof(*c);
    c->agent_version = "flare/" FLARE_VERSION_STR;
    c->max_connections = 1024;
    c->max_connections_per_peer = 8;
    c->max_streams_per_conn = 512;
    c->max_stream_buffer = 1 << 20;
    c->handshake_timeout = 15 * FLARE_NS_PER_S;
    c->dial_timeout = 10 * FLARE_NS_PER_S;
    c->negotiate_timeout = 10 * FLARE_NS_PER_S;
    c->keepalive_interval = 30 * FLARE_NS_PER_S;
    c->reuse_port = 1;
    c->enable_identify = 1;
    c->enable_ping = 1;
    c->enable_holepunch = 1;
    c->enable_webrtc = 1;
    c->enable_migration = 1;
    c->migrate_buffer = 256 << 10;
    c->enable_autonat_server = 1;
    c->enable_autonat_client = 1;
    c->autonat_servers_max = 3;
    c->autonat_boot_delay = 15 * FLARE_NS_PER_S;
    c->autonat_retry_interval = 90 * FLARE_NS_PER_S;
    c->autonat_refresh_interval = 15 * 60 * FLARE_NS_PER_S;
    c->autorelay_num = 2;
    c->autorelay_backoff = 3600 * FLARE_NS_PER_S;
    /* go-libp2p's defaults: well below max_connections, so idle peers are
     * shed long before new ones are refused. */
    c->conn_low_water = 160;
    c->conn_high_water = 192;
    c->conn_grace_period = 20 * FLARE_NS_PER_S;
    /* Resource manager (the reasoning: docs/resource-manager.md). Inbound
     * and outbound budgets add up to max_connections, so an inbound flood
     * leaves every outbound slot free. */
    flare_rcmgr_limits *l = &c->limits;
    l->conns_inbound = 768;
    l->conns_outbound = 256;
    l->conns_per_ip = 16;
    l->conns_per_subnet = 64;
    l->handshakes = 128;
    l->handshakes_per_ip = 8;
    l->handshakes_per_subnet = 32;
    l->streams_inbound = 16384;
    l->streams_outbound = 16384;
    l->streams_per_peer_inbound = 1024;
    l->streams_per_peer_outbound = 1024;
    l->streams_per_protocol_peer = 256;
    l->streams_per_protocol = 8192;
    l->mem = (size_t)1 << 30;
    l->mem_per_peer = (size_t)64 << 20;
    l->mem_per_conn = (size_t)32 << 20;
    c->conn_write_high = FLARE__CONN_WRITE_HIGH;
    c->conn_write_low = FLARE__CONN_WRITE_LOW;
    c->conn_write_max = FLARE__CONN_WRITE_MAX;
    c->security = FLARE__SECURITY_DEFAULT;
}

static void host_random(uint8_t *dst, size_t len, void *user)
{
    flare_host *h = user;
    h->io->ops->random(h->io, dst, len);
}

static void run_defers(flare_io_timer *t, void *user);

/* cfg.security: protocol IDs separated by commas, each one we implement,
 * none twice. */
static int parse_security(flare_host *h)
{
    const char *p = h->cfg.security;
    if (strlen(p) >= sizeof(h->security))
        return FLARE_ERR_INVALID_ARG;
    memcpy(h->security, p, strlen(p) + 1);
    h->cfg.security = h->security;
    for (p = h->security; *p;) {
        size_t len = strcspn(p, ",");
        const flare__security *s = flare__security_find(p, len);
        if (!s || h->nsecs == FLARE__SECURITY_MAX)
            return FLARE_ERR_UNSUPPORTED;
        for (size_t i = 0; i < h->nsecs; i++)
            if (h->secs[i] == s)
                return FLARE_ERR_INVALID_ARG;
        h->secs[h->nsecs] = s;
        h->sec_ids[h->nsecs++] = s->id;
        p += len + (p[len] == ',');
    }
    return h->nsecs ? 0 : FLARE_ERR_UNSUPPORTED;
}

/* Settings from another build of the headers, or not from _default(), are
 * refused rather than guessed at. */
static int settings_valid(const flare_host_settings *c)
{
    if (c->struct_size != sizeof(*c) || !c->agent_version || !c->security || c->autorelay_num == 0)
        return 0;
    return c->conn_write_low > 0 && c->conn_write_high > 0 && c->conn_write_max > 0;
}

/* flare_host_new (src/services/builtin.c) passes the built-in services and
 * transports. */
int flare__host_new(flare_host **out, flare_io *io, const flare_privkey *key,
                    const flare_host_settings *cfg, const flare_mem *mem,
                    const flare__service *const *svcs, size_t nsvcs,
                    const flare__transport *const *trs, size_t ntrs)
{
    if (cfg && !settings_valid(cfg))
        return FLARE_ERR_INVALID_ARG;
    flare_host *h = flare__calloc(mem, 1, sizeof(*h));
    if (!h)
        return FLARE_ERR_NOMEM;
    h->mem = flare__mem(mem);
    h->io = io;
    if (cfg)
        h->cfg = *cfg;
    else
        flare_host_settings_default(&h->cfg);
    snprintf(h->agent, sizeof(h->agent), "%s", h->cfg.agent_version);
    h->cfg.agent_version = h->agent;
    if (h->cfg.conn_high_water && h->cfg.conn_low_water > h->cfg.conn_high_water)
        h->cfg.conn_low_water = h->cfg.conn_high_water;
    h->key = *key;
    h->rng.fn = host_random;
    h->rng.user = h;
    h->defers_tail = &h->defers;
    int rv = flare_peerid_from_pubkey(&h->id, &key->pub);
    if (rv == 0)
        rv = parse_security(h);
    h->nmuxers = flare__muxers_builtin(&h->muxers);
    if (h->nmuxers > sizeof(h->mux_ids) / sizeof(h->mux_ids[0]))
        h->nmuxers = sizeof(h->mux_ids) / sizeof(h->mux_ids[0]);
    for (size_t i = 0; i < h->nmuxers; i++)
        h->mux_ids[i] = h->muxers[i]->id;
    if (rv == 0)
        rv = flare__rc_new(h);
    if (rv == 0)
        rv = io->ops->timer_new(io, run_defers, h, &h->defer_timer);
    if (rv == 0) {
        h->peerstore = flare__peerstore_new(h->mem);
        if (!h->peerstore)
            rv = FLARE_ERR_NOMEM;
    }
    /* cfg.sig_cache is the cache in use: the caller's, or one of our own. */
    if (rv == 0 && !h->cfg.sig_cache) {
        rv = flare_sig_cache_new(&h->cfg.sig_cache, FLARE_SIG_CACHE_DEFAULT_ENTRIES, h->mem);
        h->sig_cache_owned = rv == 0;
    }
    if (rv == 0)
        rv = flare__addrs_init(h);
    if (rv == 0)
        rv = flare__tr_init_all(h, trs, ntrs);
    if (rv == 0)
        rv = flare__svc_init_all(h, svcs, nsvcs);
    if (rv) {
        flare_host_del(h);
        return rv;
    }
    *out = h;
    return 0;
}

void flare_host_del(flare_host *h)
{
    if (!h)
        return;
    h->destroying = 1;
    while (h->conns)
        flare__conn_destroy(h->conns);
    flare__connect_free_all(h);
    flare__svc_free_all(h);
    while (h->listeners) {
        flare__listener *l = h->listeners;
        h->listeners = l->next;
        l->transport->close_listener(h, flare__tr_state(h, l->transport), l);
        flare__free(h->mem, l);
    }
    if (h->trs)
        flare__tr_free_all(h);
    while (h->handlers) {
        flare__handler *x = h->handlers;
        h->handlers = x->next;
        flare__free(h->mem, x);
    }
    flare__free(h->mem, h->handler_vec);
    flare__free(h->mem, h->handler_keys);
    while (h->defers) {
        flare__defer *d = h->defers;
        h->defers = d->next;
        flare__free(h->mem, d);
    }
    if (h->defer_timer)
        h->io->ops->timer_del(h->defer_timer);
    if (h->peerstore)
        flare__peerstore_del(h->peerstore);
    flare__addrs_free(h);
    flare__gater_free(h);
    flare__connmgr_free(h);
    flare__rc_del(h);
    if (h->sig_cache_owned)
        flare_sig_cache_del(h->cfg.sig_cache);
    flare__free(h->mem, h->by_peer);
    flare_privkey_clear(&h->key);
    flare__free(h->mem, h);
}

void flare_host_set_event_cb(flare_host *h, flare_host_event_cb cb, void *user)
{
    h->event_cb = cb;
    h->event_user = user;
}

flare_sig_cache *flare_host_sig_cache(flare_host *h)
{
    return h->cfg.sig_cache;
}

const flare_peerid *flare_host_peerid(const flare_host *h)
{
    return &h->id;
}

flare_io *flare_host_io(flare_host *h)
{
    return h->io;
}

void flare__host_emit(flare_host *h, const flare_host_event *ev)
{
    if (h->destroying)
        return;
    flare__svc_event(h, ev);
    if (h->event_cb)
        h->event_cb(h, ev, h->event_user);
}

/* ---- deferred work ---------------------------------------------------------- */

flare__defer *flare__defer_new(flare_host *h, flare__defer_kind kind)
{
    flare__defer *d = flare__calloc(h->mem, 1, sizeof(*d));
    if (d)
        d->kind = kind;
    return d;
}

void flare__host_defer(flare_host *h, flare__defer *d)
{
    d->next = NULL;
    *h->defers_tail = d;
    h->defers_tail = &d->next;
    h->io->ops->timer_start(h->defer_timer, flare_io_now(h->io));
}

static void run_one_defer(flare_host *h, flare__defer *d)
{
    switch (d->kind) {
    case FLARE__DEFER_DIAL_CB:
    case FLARE__DEFER_DIAL_FAIL:
        if (d->dial_cb)
            d->dial_cb(h, d->status ? NULL : d->conn, d->status, d->user);
        break;
    case FLARE__DEFER_STREAM_FAIL:
        break;
    }
}

static void run_defers(flare_io_timer *t, void *user)
{
    flare_host *h = user;
    (void)t;
    /* Take the current list: work deferred while running goes to the next round. */
    flare__defer *list = h->defers;
    h->defers = NULL;
    h->defers_tail = &h->defers;
    while (list) {
        flare__defer *d = list;
        list = d->next;
        run_one_defer(h, d);
        flare__free(h->mem, d);
    }
}

/* ---- handlers --------------------------------------------------------------- */

static uint64_t handler_key(const char *p, size_t n)
{
    return flare__hash_words(0, p, n);
}

static int handler_index_add(flare_host *h, flare__handler *x)
{
    if (h->nhandlers == h->handlers_cap) {
        size_t n = h->handlers_cap + 8; /* a few dozen at most: no slack */
        flare__handler **v = flare__realloc(h->mem, h->handler_vec, n * sizeof(*v));
        if (!v)
            return FLARE_ERR_NOMEM;
        h->handler_vec = v;
        uint64_t *k = flare__realloc(h->mem, h->handler_keys, n * sizeof(*k));
        if (!k)
            return FLARE_ERR_NOMEM; /* handler_vec grew: harmless */
        h->handler_keys = k;
        h->handlers_cap = n;
    }
    h->handler_vec[h->nhandlers] = x;
    h->handler_keys[h->nhandlers++] = handler_key(x->protocol, x->len);
    return 0;
}

/* Keeps the others in registration order, so that the vector is always
 * the list reversed (flare_host_protocols reads it instead of the list). */
static void handler_index_remove(flare_host *h, const flare__handler *x)
{
    for (size_t i = 0; i < h->nhandlers; i++) {
        if (h->handler_vec[i] == x) {
            size_t rest = --h->nhandlers - i;
            memmove(&h->handler_vec[i], &h->handler_vec[i + 1], rest * sizeof(*h->handler_vec));
            memmove(&h->handler_keys[i], &h->handler_keys[i + 1], rest * sizeof(*h->handler_keys));
            return;
        }
    }
}

int flare_host_set_handler(flare_host *h, const char *protocol, const flare_stream_cbs *cbs,
                           void *user, unsigned flags)
{
    size_t n = strlen(protocol);
    if (n == 0 || n >= FLARE_PROTOCOL_MAX || protocol[0] != '/')
        return FLARE_ERR_INVALID_ARG;
    flare__handler *x;
    for (x = h->handlers; x; x = x->next)
        if (strcmp(x->protocol, protocol) == 0)
            break;
    if (!x) {
        x = flare__calloc(h->mem, 1, sizeof(*x) + n + 1);
        if (!x)
            return FLARE_ERR_NOMEM;
        memcpy(x->protocol, protocol, n + 1);
        x->len = n;
        if (handler_index_add(h, x)) {
            flare__free(h->mem, x);
            return FLARE_ERR_NOMEM;
        }
        x->next = h->handlers;
        h->handlers = x;
    }
    x->cbs = *cbs;
    x->user = user;
    x->flags = flags;
    return 0;
}

int flare_host_remove_handler(flare_host *h, const char *protocol)
{
    for (flare__handler **p = &h->handlers; *p; p = &(*p)->next) {
        if (strcmp((*p)->protocol, protocol) == 0) {
            flare__handler *x = *p;
            *p = x->next;
            handler_index_remove(h, x);
            flare__free(h->mem, x);
            return 0;
        }
    }
    return FLARE_ERR_NOT_FOUND;
}

const flare__handler *flare__host_find_handler(const flare_host *h, const char *proto, size_t len)
{
    uint64_t key = handler_key(proto, len);
    for (size_t i = 0; i < h->nhandlers; i++) {
        const flare__handler *x = h->handler_vec[i];
        if (h->handler_keys[i] == key && x->len == len && memcmp(x->protocol, proto, len) == 0)
            return x;
    }
    return NULL;
}

/* Newest first, as the list holds them: from the vector's end, whose
 * entries give each protocol's address without a load of its handler
 * (every identify message lists them all). */
size_t flare_host_protocols(const flare_host *h, const char **list, size_t cap)
{
    size_t n = h->nhandlers < cap ? h->nhandlers : cap;
    for (size_t i = 0; i < n; i++)
        list[i] = h->handler_vec[h->nhandlers - 1 - i]->protocol;
    return n;
}

/* ---- listeners -------------------------------------------------------------- */

int flare_host_listen(flare_host *h, const flare_multiaddr *ma)
{
    const flare__tr_slot *t = flare__tr_for_listen(h, ma);
    if (!t)
        return FLARE_ERR_UNSUPPORTED;
    flare__listener *fl = flare__calloc(h->mem, 1, sizeof(*fl));
    if (!fl)
        return FLARE_ERR_NOMEM;
    fl->host = h;
    fl->transport = t->tr;
    int rv = t->tr->listen(h, t->state, ma, fl);
    if (rv) {
        flare__free(h->mem, fl);
        flare_host_event ev = {.type = FLARE_HOST_EV_LISTEN_FAILED,
                               .u.listen = {.addr = ma, .error = rv}};
        flare__host_emit(h, &ev);
        return rv;
    }
    if (flare_multiaddr_to_ipaddr(&fl->ma, &fl->addr, NULL))
        fl->addr.family = 0;
    fl->next = h->listeners;
    h->listeners = fl;
    flare__addrs_listen_added(h, &fl->ma);
    flare_host_event ev = {.type = FLARE_HOST_EV_LISTENING, .u.listen.addr = &fl->ma};
    flare__host_emit(h, &ev);
    return 0;
}

size_t flare_host_listen_addrs(const flare_host *h, flare_multiaddr *out, size_t cap)
{
    size_t n = 0;
    for (const flare__listener *l = h->listeners; l && n < cap; l = l->next)
        out[n++] = l->ma;
    return n;
}

int flare__host_listen_addr_for(const flare_host *h, const flare__transport *t, int family,
                                flare_ipaddr *out)
{
    for (const flare__listener *l = h->listeners; l; l = l->next) {
        if (l->addr.family == family && (!t || l->transport == t)) {
            *out = l->addr;
            return 0;
        }
    }
    return FLARE_ERR_NOT_FOUND;
}

/* ---- connections -------------------------------------------------------------- */

size_t flare_host_num_conns(const flare_host *h)
{
    return h->nconns;
}

/* A word at a time: the DHT looks connections up for every peer it
 * considers, and a byte-wise hash of the ~38 bytes showed in profiles. The
 * order of one peer's connections in a chain does not depend on it. */
static size_t peer_slot(const flare_peerid *p, size_t size)
{
    return (size_t)flare__hash_words(0, p->bytes, p->len) & (size - 1);
}

/* Doubles the index; without memory the chains just get longer. */
static void index_grow(flare_host *h)
{
    size_t n = h->by_peer_size ? h->by_peer_size * 2 : 16;
    flare_conn **t = flare__calloc(h->mem, n, sizeof(*t));
    if (!t)
        return;
    for (size_t i = 0; i < h->by_peer_size; i++)
        for (flare_conn *c = h->by_peer[i], *next; c; c = next) {
            next = c->peer_next;
            size_t s = peer_slot(&c->peer, n);
            c->peer_next = t[s];
            t[s] = c;
        }
    flare__free(h->mem, h->by_peer);
    h->by_peer = t;
    h->by_peer_size = n;
}

void flare__conn_index_add(flare_conn *c)
{
    flare_host *h = c->host;
    if (c->indexed)
        return;
    if (h->by_peer_count >= h->by_peer_size)
        index_grow(h);
    if (!h->by_peer) {
        h->by_peer_lossy = 1; /* flare_host_conn_to falls back to the list */
        return;
    }
    size_t s = peer_slot(&c->peer, h->by_peer_size);
    c->peer_next = h->by_peer[s];
    h->by_peer[s] = c;
    c->indexed = 1;
    h->by_peer_count++;
}

void flare__conn_index_remove(flare_conn *c)
{
    flare_host *h = c->host;
    if (!c->indexed)
        return;
    flare_conn **pp = &h->by_peer[peer_slot(&c->peer, h->by_peer_size)];
    while (*pp && *pp != c)
        pp = &(*pp)->peer_next;
    if (*pp)
        *pp = c->peer_next;
    c->peer_next = NULL;
    c->indexed = 0;
    h->by_peer_count--;
}

/* Direct beats limited; among equals the newest (highest id) wins. */
static flare_conn *better(flare_conn *best, flare_conn *c, const flare_peerid *peer)
{
    if (c->state != FLARE__CONN_READY || c->close_pending || !flare_peerid_equal(&c->peer, peer))
        return best;
    if (!best || (best->limited && !c->limited) ||
        (best->limited == c->limited && c->id > best->id))
        return c;
    return best;
}

flare_conn *flare__conn_peer_first(flare_host *h, const flare_peerid *peer)
{
    if (h->by_peer_lossy)
        return h->conns;
    return h->by_peer ? h->by_peer[peer_slot(peer, h->by_peer_size)] : NULL;
}

flare_conn *flare__conn_peer_next(const flare_host *h, const flare_conn *c)
{
    return h->by_peer_lossy ? c->next : c->peer_next;
}

flare_conn *flare_host_conn_to(flare_host *h, const flare_peerid *peer)
{
    flare_conn *best = NULL;
    for (flare_conn *c = flare__conn_peer_first(h, peer); c; c = flare__conn_peer_next(h, c))
        best = better(best, c, peer);
    return best;
}

/* ---- peerstore front ------------------------------------------------------------ */

int flare_host_add_addr(flare_host *h, const flare_peerid *peer, const flare_multiaddr *ma,
                        flare_tstamp ttl)
{
    flare_tstamp now = flare_io_now(h->io);
    flare_tstamp exp = ttl == FLARE_TSTAMP_NEVER || ttl > FLARE_TSTAMP_NEVER - now
                           ? FLARE_TSTAMP_NEVER
                           : now + ttl;
    return flare__peerstore_add_addr(h->peerstore, peer, ma, exp);
}

int flare_host_peer_info(flare_host *h, const flare_peerid *peer, flare_peer_info *info)
{
    return flare__peerstore_get(h->peerstore, peer, flare_io_now(h->io), info);
}

int flare_host_peer_supports(flare_host *h, const flare_peerid *peer, const char *protocol)
{
    return flare__peerstore_supports(h->peerstore, peer, protocol);
}
