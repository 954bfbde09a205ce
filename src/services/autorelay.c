/*
 * AutoRelay: while AutoNAT says we are private, pick relays by ourselves and
 * keep cfg.autorelay_num reservations on them (go-libp2p's relay finder,
 * js-libp2p's reservation store + relay discovery).
 *
 * Candidates are static relays (in the order added), then connected peers
 * that announced the hop protocol, taken in random order among those the
 * DHT's random walks returned when there are any (a uniform sample of the
 * network's relays), else among all of them: the peers every node meets
 * first, such as bootstrap nodes, must not collect the reservations of the
 * whole network. While a walk runs, and briefly after it returned relays,
 * AutoRelay waits for them rather than take a merely met one. Reservations go
 * through relay_client.c, which reports each outcome back; every
 * decision is taken from our own timer, never inside the callback that
 * reported it, so the relay client's state is never freed under its feet.
 *
 * Policy (timings in the constants below):
 *  - refusal (non-OK status, hop not supported, bad reply or voucher):
 *    the relay is dropped and left alone for cfg.autorelay_backoff;
 *  - a relay that never granted us a reservation and fails twice in a row
 *    (dial, reset, timeout): the same backoff;
 *  - a granted reservation lost (connection dropped) and not renewed at the
 *    relay client's first retry: replaced; the relay may be picked again
 *    after REPLACE_COOLDOWN when it is still (or again) a candidate.
 */
#include <string.h>

#include "core/mem.h"
#include "core/multiaddr_held.h"
#include "flare/relay.h"
#include "services/services.h"

#define MAX_KNOWN        64 /* discovered relays remembered (in use, backoff, waiting) */
#define MAX_FAILS        2  /* consecutive failures before giving up on a relay */
#define REPLACE_COOLDOWN (60 * FLARE_NS_PER_S)
#define MAX_WALKED       16                    /* relays of the DHT's last walks remembered */
#define WALK_HOLD        (30 * FLARE_NS_PER_S) /* longest wait for a running walk */
#define WALK_DIAL        (10 * FLARE_NS_PER_S) /* to connect to a walk's relays */

typedef struct ar_relay {
    struct ar_relay *next;
    flare_peerid id;
    /* Static: as given; discovered: chosen when picked. Held at its length:
     * a private node remembers up to MAX_KNOWN relays. */
    flare__ma_held ma;
    int is_static;
    int in_use;  /* a reservation of ours exists in the relay client */
    int active;  /* ... and is granted */
    int granted; /* granted at least once during this use */
    int fails;   /* consecutive failures during this use */
    int refused; /* the error of a refusal, to act on */
    int last_err;
    int eligible; /* scratch of pick_discovered */
    flare_tstamp backoff_until;
} ar_relay;

typedef struct flare__autorelay {
    flare_host *h;
    flare_io_timer *timer;
    flare_tstamp deadline; /* of the armed timer; FLARE_TSTAMP_NEVER when idle */
    int running;           /* we are private: keeping reservations */
    ar_relay *list;        /* statics first (in order), then discovered ones */
    size_t nknown;
    flare_peerid walked[MAX_WALKED]; /* ring: relays the DHT's walks returned */
    size_t nwalked, walked_next;
    flare_tstamp walk_until; /* until then, wait for walk relays */
} ar_t;

static void relay_free(flare_host *h, ar_relay *e)
{
    flare__ma_held_free(&e->ma, h->mem);
    flare__free(h->mem, e);
}

static void emit(flare_host *h, const char *reason, const ar_relay *e, int err)
{
    flare_multiaddr ma;
    flare_host_event ev = {
        .type = FLARE_HOST_EV_AUTORELAY,
        .u.autorelay = {.reason = reason,
                        .relay = e ? &e->id : NULL,
                        .addr = e && e->ma.len ? flare__ma_held_get(&e->ma, &ma) : NULL,
                        .error = err}};
    flare__host_emit(h, &ev);
}

static void schedule(ar_t *ar, flare_tstamp at)
{
    if (at >= ar->deadline)
        return;
    ar->deadline = at;
    ar->h->io->ops->timer_start(ar->timer, at);
}

static ar_relay *find(ar_t *ar, const flare_peerid *id)
{
    for (ar_relay *e = ar->list; e; e = e->next)
        if (flare_peerid_equal(&e->id, id))
            return e;
    return NULL;
}

static void append(ar_t *ar, ar_relay *e)
{
    ar_relay **p = &ar->list;
    if (e->is_static) /* statics stay ahead of every discovered relay */
        while (*p && (*p)->is_static)
            p = &(*p)->next;
    else
        while (*p)
            p = &(*p)->next;
    e->next = *p;
    *p = e;
}

/* ---- candidates ------------------------------------------------------------------- */

static int public_addr(flare_host *h, const flare_multiaddr *ma)
{
    return !flare_multiaddr_is_relayed(ma) &&
           flare_ma_class_is_public(flare_multiaddr_classify(ma), h->cfg.doc_addrs_public);
}

/* A discovered relay qualifies while we have a direct connection to it, it
 * serves hop and has a public address (which becomes e->ma). */
static int discovered_ok(ar_t *ar, ar_relay *e)
{
    flare_host *h = ar->h;
    flare_conn *c = flare_host_conn_to(h, &e->id);
    if (!c || c->limited ||
        !flare__peerstore_supports(h->peerstore, &e->id, FLARE_RELAY_HOP_PROTOCOL))
        return 0;
    flare_multiaddr ma;
    int found = 0;
    /* The addresses only (a whole flare_peer_info is 24 KB to clear and
     * fill), held only for the look-up, not by every private node. */
    flare_multiaddr *addrs = flare__malloc(h->mem, FLARE_PEER_MAX_ADDRS * sizeof(*addrs));
    size_t naddrs = 0;
    if (addrs && flare__peerstore_get_addrs(h->peerstore, &e->id, flare_io_now(h->io), addrs,
                                            FLARE_PEER_MAX_ADDRS, &naddrs) == 0) {
        for (size_t i = 0; i < naddrs && !found; i++) {
            if (public_addr(h, &addrs[i])) {
                ma = addrs[i];
                found = 1;
            }
        }
    }
    flare__free(h->mem, addrs);
    if (!found && c->outbound && public_addr(h, flare__conn_remote_ma(c, &ma)))
        found = 1;
    if (!found)
        return 0;
    flare_multiaddr_decapsulate(&ma, FLARE_MA_P2P);
    if (flare_multiaddr_with_peerid(&ma, &e->id))
        return 0;
    return flare__ma_hold(&e->ma, &ma, h->mem) == 0;
}

static size_t num_in_use(ar_t *ar)
{
    size_t n = 0;
    for (ar_relay *e = ar->list; e; e = e->next)
        n += e->in_use != 0;
    return n;
}

static void start_use(ar_t *ar, ar_relay *e)
{
    flare_multiaddr ma;
    int rv = flare__relay_reserve_auto(ar->h, flare__ma_held_get(&e->ma, &ma));
    if (rv)
        return; /* a reservation of the application's own, or no memory */
    e->in_use = 1;
    e->active = e->granted = 0;
    e->fails = e->refused = 0;
    emit(ar->h, "candidate", e, 0);
}

static void stop_use(ar_t *ar, ar_relay *e, const char *reason, int err, flare_tstamp hold)
{
    flare__relay_unreserve_auto(ar->h, &e->id);
    e->in_use = e->active = 0;
    if (hold)
        e->backoff_until = flare_io_now(ar->h->io) + hold;
    emit(ar->h, reason, e, err);
}

static int may_use(ar_t *ar, ar_relay *e, flare_tstamp now)
{
    flare_host *h = ar->h;
    return !e->in_use && now >= e->backoff_until && !flare_peerid_equal(&e->id, &h->id) &&
           !flare__relay_has_manual(h, &e->id);
}

static int walked(const ar_t *ar, const flare_peerid *id)
{
    for (size_t i = 0; i < ar->nwalked; i++)
        if (flare_peerid_equal(&ar->walked[i], id))
            return 1;
    return 0;
}

/* A random discovered relay that qualifies now, or NULL: one the DHT's
 * walks returned if any qualifies, else (once no walk is awaited) any.
 * Random, not the first identified: every node meets the same few peers
 * first (its bootstrap nodes), and taking those would pile every
 * reservation of the network onto them. */
static ar_relay *pick_discovered(ar_t *ar, flare_tstamp now)
{
    size_t n = 0, nwalk = 0;
    for (ar_relay *e = ar->list; e; e = e->next) {
        e->eligible = !e->is_static && may_use(ar, e, now) && discovered_ok(ar, e);
        if (e->eligible && walked(ar, &e->id))
            e->eligible = 2;
        n += e->eligible != 0;
        nwalk += e->eligible == 2;
    }
    if (!nwalk && now < ar->walk_until) {
        schedule(ar, ar->walk_until);
        return NULL;
    }
    int level = nwalk ? 2 : 1;
    n = nwalk ? nwalk : n;
    if (!n)
        return NULL;
    uint64_t r;
    ar->h->rng.fn((uint8_t *)&r, sizeof(r), ar->h->rng.user);
    r %= n;
    for (ar_relay *e = ar->list; e; e = e->next)
        if (e->eligible >= level && r-- == 0)
            return e;
    return NULL;
}

static void fill(ar_t *ar, flare_tstamp now)
{
    size_t want = ar->h->cfg.autorelay_num;
    size_t have = num_in_use(ar);
    for (ar_relay *e = ar->list; e && have < want; e = e->next) {
        if (!e->is_static || !may_use(ar, e, now))
            continue;
        start_use(ar, e);
        have += e->in_use != 0;
    }
    while (have < want) {
        ar_relay *e = pick_discovered(ar, now);
        if (!e)
            break;
        start_use(ar, e);
        if (!e->in_use)
            break; /* no memory, or the relay client holds a reservation of ours there */
        have++;
    }
}

/* Acts on the outcomes the relay client reported since the last tick. */
static void judge(ar_t *ar)
{
    flare_tstamp backoff = ar->h->cfg.autorelay_backoff;
    for (ar_relay *e = ar->list; e; e = e->next) {
        if (!e->in_use)
            continue;
        if (e->refused)
            stop_use(ar, e, "backoff", e->refused, backoff);
        else if (e->fails >= MAX_FAILS && e->granted)
            stop_use(ar, e, "replaced", e->last_err, REPLACE_COOLDOWN);
        else if (e->fails >= MAX_FAILS)
            stop_use(ar, e, "backoff", e->last_err, backoff);
    }
}

/* Forgets discovered relays that are neither used nor held off nor connected. */
static void prune(ar_t *ar, flare_tstamp now)
{
    for (ar_relay **p = &ar->list; *p;) {
        ar_relay *e = *p;
        if (!e->is_static && !e->in_use && now >= e->backoff_until &&
            !flare_host_conn_to(ar->h, &e->id)) {
            *p = e->next;
            ar->nknown--;
            relay_free(ar->h, e);
        } else {
            p = &e->next;
        }
    }
}

static void update_running(ar_t *ar)
{
    flare_host *h = ar->h;
    flare_reach_state r4 = flare_host_reachability(h, 4), r6 = flare_host_reachability(h, 6);
    int priv = r4 == FLARE_REACH_PRIVATE || r6 == FLARE_REACH_PRIVATE;
    int pub = !priv && (r4 == FLARE_REACH_PUBLIC || r6 == FLARE_REACH_PUBLIC);
    if (priv && !ar->running) {
        ar->running = 1;
        emit(h, "start", NULL, 0);
    } else if (pub && ar->running) {
        ar->running = 0;
        for (ar_relay *e = ar->list; e; e = e->next)
            if (e->in_use)
                stop_use(ar, e, "dropped-public", 0, 0);
        emit(h, "stop", NULL, 0);
    }
}

static void tick(flare_io_timer *t, void *user)
{
    ar_t *ar = user;
    (void)t;
    flare_tstamp now = flare_io_now(ar->h->io);
    ar->deadline = FLARE_TSTAMP_NEVER;
    update_running(ar);
    if (ar->running) {
        judge(ar);
        fill(ar, now);
    }
    prune(ar, now);
    /* Wake up when a held-off relay may be tried again. */
    for (ar_relay *e = ar->list; e && ar->running; e = e->next)
        if (!e->in_use && e->backoff_until > now)
            schedule(ar, e->backoff_until);
}

/* ---- hooks ------------------------------------------------------------------------ */

static void discovered(ar_t *ar, const flare_conn *c)
{
    flare_host *h = ar->h;
    if (c->limited || flare_peerid_equal(&c->peer, &h->id) ||
        !flare__peerstore_supports(h->peerstore, &c->peer, FLARE_RELAY_HOP_PROTOCOL) ||
        find(ar, &c->peer) || ar->nknown >= MAX_KNOWN + (walked(ar, &c->peer) ? MAX_WALKED : 0))
        return;
    ar_relay *e = flare__calloc(h->mem, 1, sizeof(*e));
    if (!e)
        return;
    e->id = c->peer;
    append(ar, e);
    ar->nknown++;
}

static void on_event(flare_host *h, void *state, const flare_host_event *ev)
{
    ar_t *ar = state;
    if (!ar)
        return;
    switch (ev->type) {
    case FLARE_HOST_EV_IDENTIFIED:
        if (ev->u.identified.conn)
            discovered(ar, ev->u.identified.conn);
        break;
    case FLARE_HOST_EV_REACHABILITY:
    case FLARE_HOST_EV_CONN_CLOSED:
        break;
    default:
        return;
    }
    schedule(ar, flare_io_now(h->io));
}

static void rsvp_result(flare_host *h, const flare_peerid *relay, flare__rsvp_outcome what, int err)
{
    ar_t *ar = flare__svc_state(h, &flare__svc_autorelay);
    ar_relay *e = ar ? find(ar, relay) : NULL;
    if (!e || !e->in_use)
        return;
    e->last_err = err;
    switch (what) {
    case FLARE__RSVP_GRANTED:
        e->active = e->granted = 1;
        e->fails = 0;
        return; /* nothing to decide */
    case FLARE__RSVP_REFUSED:
        e->refused = err;
        break;
    case FLARE__RSVP_LOST:
        e->fails = 1; /* the drop itself; the relay client retries once soon */
        break;
    case FLARE__RSVP_FAILED:
        e->fails++;
        break;
    case FLARE__RSVP_TAKEN: /* the slot is free for another relay */
        e->in_use = e->granted = e->fails = e->refused = 0;
        break;
    }
    e->active = 0;
    schedule(ar, flare_io_now(h->io));
}

void flare__autorelay_walk_started(flare_host *h)
{
    ar_t *ar = flare__svc_state(h, &flare__svc_autorelay);
    if (ar)
        ar->walk_until = flare_io_now(h->io) + WALK_HOLD;
}

static void sample_add(ar_t *ar, const flare_peerid *relays, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (walked(ar, &relays[i]))
            continue;
        ar->walked[ar->walked_next] = relays[i];
        ar->walked_next = (ar->walked_next + 1) % MAX_WALKED;
        ar->nwalked += ar->nwalked < MAX_WALKED;
    }
}

void flare__autorelay_walk_relays(flare_host *h, const flare_peerid *relays, size_t n)
{
    ar_t *ar = flare__svc_state(h, &flare__svc_autorelay);
    if (!ar)
        return;
    sample_add(ar, relays, n);
    /* Those not connected yet are being dialed: give them time. */
    ar->walk_until = flare_io_now(h->io) + (n ? WALK_DIAL : 0);
    schedule(ar, flare_io_now(h->io));
}

void flare__autorelay_met_relays(flare_host *h, const flare_peerid *relays, size_t n)
{
    ar_t *ar = flare__svc_state(h, &flare__svc_autorelay);
    if (!ar || !n)
        return;
    sample_add(ar, relays, n);
    /* Met while the list was full: listed now (in the sample's share). */
    for (size_t i = 0; i < n; i++) {
        flare_conn *c = flare_host_conn_to(h, &relays[i]);
        if (c)
            discovered(ar, c);
    }
    if (ar->running)
        schedule(ar, flare_io_now(h->io));
}

size_t flare__autorelay_sampled(flare_host *h)
{
    ar_t *ar = flare__svc_state(h, &flare__svc_autorelay);
    flare_tstamp now = flare_io_now(h->io);
    size_t n = 0;
    for (size_t i = 0; ar && i < ar->nwalked; i++) {
        const flare_peerid *id = &ar->walked[i];
        flare_conn *c = flare_host_conn_to(h, id);
        ar_relay *e = find(ar, id);
        n += c && !c->limited && (!e || may_use(ar, e, now)) &&
             flare__peerstore_supports(h->peerstore, id, FLARE_RELAY_HOP_PROTOCOL);
    }
    return n;
}

/* ---- API -------------------------------------------------------------------------- */

int flare_host_autorelay_add_static(flare_host *h, const flare_multiaddr *relay_ma)
{
    ar_t *ar = flare__svc_state(h, &flare__svc_autorelay);
    flare_peerid id;
    if (!ar)
        return FLARE_ERR_STATE;
    if (flare_multiaddr_is_relayed(relay_ma) || flare_multiaddr_get_peerid(relay_ma, &id) ||
        flare_peerid_equal(&id, &h->id))
        return FLARE_ERR_INVALID_ARG;
    ar_relay *e = find(ar, &id);
    if (e && e->is_static)
        return FLARE_ERR_EXISTS;
    flare__ma_held held = {0};
    if (flare__ma_hold(&held, relay_ma, h->mem))
        return FLARE_ERR_NOMEM;
    if (!e) {
        e = flare__calloc(h->mem, 1, sizeof(*e));
        if (!e) {
            flare__ma_held_free(&held, h->mem);
            return FLARE_ERR_NOMEM;
        }
    } else { /* a discovered relay becomes static: move it ahead */
        for (ar_relay **p = &ar->list; *p; p = &(*p)->next)
            if (*p == e) {
                *p = e->next;
                break;
            }
        ar->nknown--;
    }
    e->id = id;
    flare__ma_held_free(&e->ma, h->mem);
    e->ma = held;
    e->is_static = 1;
    append(ar, e);
    if (h->cfg.enable_autorelay)
        schedule(ar, flare_io_now(h->io));
    return 0;
}

size_t flare_host_autorelay_relays(flare_host *h, flare_peerid *out, size_t cap)
{
    ar_t *ar = flare__svc_state(h, &flare__svc_autorelay);
    size_t n = 0;
    for (ar_relay *e = ar ? ar->list : NULL; e && n < cap; e = e->next)
        if (e->in_use && e->active)
            out[n++] = e->id;
    return n;
}

/* ---- lifecycle -------------------------------------------------------------------- */

static int autorelay_init(flare_host *h, void **state)
{
    if (!h->cfg.enable_autorelay)
        return 0; /* opt-in: nothing watches events, add_static says STATE */
    ar_t *ar = flare__calloc(h->mem, 1, sizeof(*ar));
    if (!ar)
        return FLARE_ERR_NOMEM;
    ar->h = h;
    ar->deadline = FLARE_TSTAMP_NEVER;
    int rv = h->io->ops->timer_new(h->io, tick, ar, &ar->timer);
    if (rv) {
        flare__free(h->mem, ar);
        return rv;
    }
    *state = ar;
    /* The relay client (registered before us) reports our reservations. */
    return flare__relay_set_rsvp_observer(h, rsvp_result);
}

static void autorelay_free(flare_host *h, void *state)
{
    ar_t *ar = state;
    if (!ar)
        return;
    (void)flare__relay_set_rsvp_observer(h, NULL);
    while (ar->list) {
        ar_relay *e = ar->list;
        ar->list = e->next;
        relay_free(h, e);
    }
    h->io->ops->timer_del(ar->timer);
    flare__free(h->mem, ar);
}

const flare__service flare__svc_autorelay = {
    .name = "autorelay",
    .init = autorelay_init,
    .free = autorelay_free,
    .on_event = on_event,
};
