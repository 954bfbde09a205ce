/*
 * Dialing: one in-flight dial per peer (later dials join it), reuse of an
 * existing connection, and dialing from the listen port so that the NAT
 * mapping of an outbound connection equals the one of our listen address
 * (what hole punching and observed-address translation rely on).
 */
#include <string.h>

#include "core/mem.h"
#include "host/host_int.h"
#include "transport/transport.h"

/* Runs the waiters of c with status (0: c is ready). */
void flare__dial_complete(flare_conn *c, int status)
{
    flare_host *h = c->host;
    flare__dial_waiter *w = c->waiters;
    c->waiters = NULL;
    if (status && c->outbound) {
        flare_multiaddr ra;
        flare_host_event ev = {.type = FLARE_HOST_EV_DIAL_FAILED,
                               .u.failed = {.peer = c->expect_peer ? &c->peer : NULL,
                                            .addr = flare__conn_remote_ma(c, &ra),
                                            .error = status}};
        flare__host_emit(h, &ev);
    }
    while (w) {
        flare__dial_waiter *next = w->next;
        if (w->cb)
            w->cb(h, status ? NULL : c, status, w->user);
        flare__free(h->mem, w);
        w = next;
    }
}

static int add_waiter(flare_conn *c, flare_dial_cb cb, void *user)
{
    flare__dial_waiter *w = flare__calloc(c->host->mem, 1, sizeof(*w));
    if (!w)
        return FLARE_ERR_NOMEM;
    w->cb = cb;
    w->user = user;
    /* Append: callbacks run in the order the dials were asked for. */
    flare__dial_waiter **p = &c->waiters;
    while (*p)
        p = &(*p)->next;
    *p = w;
    return 0;
}

/* A dial to peer over transport t still under way. */
static flare_conn *dial_in_flight(flare_host *h, const flare__transport *t,
                                  const flare_peerid *peer)
{
    for (flare_conn *c = flare__conn_peer_first(h, peer); c; c = flare__conn_peer_next(h, c))
        if (c->outbound && c->expect_peer && c->state != FLARE__CONN_READY && !c->close_pending &&
            c->transport == t && flare_peerid_equal(&c->peer, peer))
            return c;
    return NULL;
}

static size_t conns_to(flare_host *h, const flare_peerid *peer)
{
    size_t n = 0;
    for (flare_conn *c = flare__conn_peer_first(h, peer); c; c = flare__conn_peer_next(h, c))
        if (!c->close_pending && flare_peerid_equal(&c->peer, peer))
            n++;
    return n;
}

static int defer_dial_result(flare_host *h, flare_conn *c, int status, flare_dial_cb cb, void *user)
{
    flare__defer *d = flare__defer_new(h, status ? FLARE__DEFER_DIAL_FAIL : FLARE__DEFER_DIAL_CB);
    if (!d)
        return FLARE_ERR_NOMEM;
    d->conn = c;
    d->status = status;
    d->dial_cb = cb;
    d->user = user;
    flare__host_defer(h, d);
    return 0;
}

int flare_host_dial(flare_host *h, const flare_multiaddr *ma, const flare_dial_opts *opts,
                    flare_dial_cb cb, void *user)
{
    if (!flare__gater_allow_dial(h, ma))
        return FLARE_ERR_REFUSED;
    flare_dial_opts o = {0};
    if (opts)
        o = *opts;
    flare_peerid peer = {0};
    int has_peer = flare_multiaddr_get_peerid(ma, &peer) == 0;
    if (has_peer && flare_peerid_equal(&peer, &h->id))
        return FLARE_ERR_INVALID_ARG;
    const flare__tr_slot *t = flare__tr_for_dial(h, ma);
    if (!t)
        return FLARE_ERR_UNSUPPORTED;
    if (has_peer && !o.force_new) {
        flare_conn *c = flare_host_conn_to(h, &peer);
        if (c && !(c->limited && t->tr->replaces_limited))
            return defer_dial_result(h, c, 0, cb, user);
        c = dial_in_flight(h, t->tr, &peer);
        if (c)
            return add_waiter(c, cb, user);
    }
    if (flare__rc_can_open(h))
        return FLARE_ERR_LIMIT;
    if (has_peer && conns_to(h, &peer) >= h->cfg.max_connections_per_peer)
        return FLARE_ERR_LIMIT;

    flare_conn *c = flare__conn_new(h, 1);
    if (!c)
        return FLARE_ERR_NOMEM;
    c->transport = t->tr;
    flare__rc_conn_add(c);
    if (o.role == FLARE_ROLE_RESPONDER)
        c->initiator = 0;
    if (has_peer) {
        c->peer = peer;
        c->expect_peer = 1;
        flare__conn_index_add(c);
    }
    int rv = flare__conn_set_remote_ma(c, ma);
    if (rv == 0)
        rv = add_waiter(c, cb, user);
    if (rv) {
        flare__conn_fail(c, rv);
        return rv;
    }
    c->handshake_deadline = flare_io_now(h->io) + h->cfg.dial_timeout + h->cfg.handshake_timeout;
    c->busy++; /* the transport reports from the loop, never inside this call */
    rv = t->tr->dial(h, t->state, c, ma, &o);
    if (rv) {
        /* The caller learns it from the return value, not the callback. */
        c->waiters->cb = NULL;
        flare__conn_fail(c, rv);
    } else
        flare__conn_arm_timer(c);
    flare__conn_unbusy(c);
    return rv;
}
