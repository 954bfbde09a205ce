/*
 * flare_host_connect: dials a peer at the addresses the peerstore knows,
 * best first and Happy-Eyeballs style. Order: addresses at which a direct
 * connection of ours came up before, public addresses (IPv6 ones first
 * when we listen on IPv6), then the others
 * (private, loopback, ...), relayed ones last (a limited connection is the
 * last resort); the peerstore's order within each group. One
 * attempt starts every FLARE__DIAL_STAGGER while earlier ones are still in
 * flight, the next one at once when an attempt fails. The first connection
 * wins; one that comes up afterwards is closed unless it is better (direct
 * where the winner was relayed).
 */
#include <string.h>

#include "core/mem.h"
#include "host/host_int.h"

typedef struct flare__connect {
    struct flare__connect *next;
    flare_host *h;
    flare_peerid peer;
    flare_dial_opts opts;
    flare_dial_cb cb;
    void *user;
    flare_io_timer *timer; /* the stagger's: made when a second address waits */
    int inflight;          /* attempts whose callback is still to come */
    int started;           /* an attempt is under way (we run from the loop) */
    int done;              /* the caller heard the outcome */
    int won_limited;       /* the winner was a limited connection */
    int err;               /* the last attempt's error */
    size_t n, next_addr;
    /* As many as the peerstore gave (most peers have one or two; a full
     * array of FLARE_PEER_MAX_ADDRS is 6.4 KB per race). */
    flare_multiaddr addrs[];
} cx;

#define RANKS 5

/* 1 if we listen on IPv6: then our IPv6 works and its public addresses go
 * first (no NAT on the path, the better route in dual-stack networks). */
static int v6_works(const flare_host *h)
{
    flare_multiaddr l[16];
    size_t n = flare_host_listen_addrs(h, l, 16);
    for (size_t i = 0; i < n; i++)
        if (flare_multiaddr_has(&l[i], FLARE_MA_IP6))
            return 1;
    return 0;
}

static int rank(flare_host *h, const flare_peerid *peer, const flare_multiaddr *ma, int v6_first)
{
    if (flare_multiaddr_is_relayed(ma))
        return 4;
    if (flare__peerstore_addr_has_worked(h->peerstore, peer, ma))
        return 0;
    if (!flare_ma_class_is_public(flare_multiaddr_classify(ma), h->cfg.doc_addrs_public))
        return 3;
    return v6_first && flare_multiaddr_has(ma, FLARE_MA_IP6) ? 1 : 2;
}

static void order(cx *x, const flare_multiaddr *addrs, size_t n)
{
    int v6_first = v6_works(x->h);
    for (int r = 0; r < RANKS; r++)
        for (size_t i = 0; i < n; i++) {
            flare_multiaddr ma = addrs[i];
            if (rank(x->h, &x->peer, &ma, v6_first) == r &&
                flare_multiaddr_with_peerid(&ma, &x->peer) == 0)
                x->addrs[x->n++] = ma;
        }
}

static void cx_free(cx *x)
{
    flare_host *h = x->h;
    for (cx **p = &h->connects; *p; p = &(*p)->next)
        if (*p == x) {
            *p = x->next;
            break;
        }
    if (x->timer)
        h->io->ops->timer_del(x->timer);
    flare__free(h->mem, x);
}

static void finish(cx *x, flare_conn *c, int status)
{
    x->done = 1;
    if (x->timer)
        x->h->io->ops->timer_stop(x->timer);
    if (c)
        x->won_limited = c->limited;
    if (x->cb)
        x->cb(x->h, c, status, x->user);
}

static void attempt_done(flare_host *h, flare_conn *c, int status, void *user);
static void on_timer(flare_io_timer *t, void *user);

/* Starts the next address that can be dialed. The first attempt may join a
 * dial in flight or reuse a connection (flare_host_dial reports those from
 * the loop); later ones are new connections of their own. */
static void start_next(cx *x)
{
    flare_host *h = x->h;
    while (!x->done && x->next_addr < x->n) {
        flare_dial_opts o = x->opts;
        if (x->started) {
            flare_conn *c = o.force_new ? NULL : flare_host_conn_to(h, &x->peer);
            if (c) {
                finish(x, c, 0); /* it came up by other means */
                return;
            }
            o.force_new = 1;
        }
        const flare_multiaddr *ma = &x->addrs[x->next_addr++];
        x->inflight++;
        int rv = flare_host_dial(h, ma, &o, attempt_done, x);
        if (rv == 0) {
            x->started = 1;
            /* Without memory for the timer the next address waits for
             * this attempt's failure instead. */
            if (x->next_addr < x->n &&
                (x->timer || h->io->ops->timer_new(h->io, on_timer, x, &x->timer) == 0))
                h->io->ops->timer_start(x->timer, flare_io_now(h->io) + FLARE__DIAL_STAGGER);
            return;
        }
        x->inflight--;
        x->err = rv;
    }
}

/* Nothing in flight and nothing left to try: the last error is the answer. */
static void settle(cx *x)
{
    if (!x->done && x->inflight == 0 && (x->next_addr >= x->n || x->h->destroying))
        finish(x, NULL, x->err);
    if (x->done && x->inflight == 0)
        cx_free(x);
}

static void attempt_done(flare_host *h, flare_conn *c, int status, void *user)
{
    cx *x = user;
    x->inflight--;
    if (status == 0 && !x->done)
        finish(x, c, 0);
    else if (status == 0 && c->limited >= x->won_limited)
        flare_conn_close(c); /* a loser of the race, no better than the winner */
    else if (status) {
        x->err = status;
        if (!x->done && !h->destroying)
            start_next(x);
    }
    settle(x);
}

static void on_timer(flare_io_timer *t, void *user)
{
    cx *x = user;
    (void)t;
    start_next(x);
    settle(x);
}

int flare_host_connect(flare_host *h, const flare_peerid *peer, const flare_dial_opts *opts,
                       flare_dial_cb cb, void *user)
{
    /* Only the addresses: a whole flare_peer_info is ~23 KB to clear. */
    flare_multiaddr *addrs = flare__malloc(h->mem, FLARE_PEER_MAX_ADDRS * sizeof(*addrs));
    if (!addrs)
        return FLARE_ERR_NOMEM;
    size_t naddrs = 0;
    int rv = flare__peerstore_get_addrs(h->peerstore, peer, flare_io_now(h->io), addrs,
                                        FLARE_PEER_MAX_ADDRS, &naddrs);
    cx *x = rv == 0 ? flare__calloc(h->mem, 1, sizeof(*x) + naddrs * sizeof(x->addrs[0])) : NULL;
    if (rv == 0 && !x)
        rv = FLARE_ERR_NOMEM;
    if (rv == 0) {
        x->h = h;
        x->peer = *peer;
        if (opts)
            x->opts = *opts;
        x->cb = cb;
        x->user = user;
        x->err = FLARE_ERR_NOT_FOUND;
        order(x, addrs, naddrs);
    }
    flare__free(h->mem, addrs);
    if (rv)
        return rv;
    x->next = h->connects;
    h->connects = x;
    start_next(x);
    if (x->started)
        return 0;
    /* Every address failed at once: the caller hears it from the return. */
    rv = x->err;
    cx_free(x);
    return rv;
}

/* At host destruction, after the connections: races whose outcome was still
 * deferred are dropped without a callback, as flare_host_dial's are. */
void flare__connect_free_all(flare_host *h)
{
    while (h->connects)
        cx_free(h->connects);
}
