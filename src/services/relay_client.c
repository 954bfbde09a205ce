/*
 * Circuit Relay v2, client side:
 *  - reservations on relays (flare_host_relay_reserve): reserve, refresh
 *    before expiry, and re-reserve with backoff when the relay connection
 *    drops or the relay refuses (the failures of js-libp2p #3601 and #3571);
 *    our relayed addresses are advertised through identify;
 *  - the stop handler: a relay on which we hold a reservation forwards a
 *    connection; it becomes an inbound limited connection;
 *  (dialing .../p2p/RELAY/p2p-circuit/p2p/PEER is the circuit transport's:
 *  src/transport/circuit.c).
 */
#include <string.h>

#include "core/mem.h"
#include "core/multiaddr_held.h"
#include "flare/lpframe.h"
#include "flare/relay.h"
#include "services/services.h"
#include "transport/circuit.h"

#define BACKOFF_MIN (2 * FLARE_NS_PER_S)
#define BACKOFF_MAX (3600 * FLARE_NS_PER_S)

typedef enum { RS_IDLE, RS_DIALING, RS_RESERVING, RS_ACTIVE } rs_state;

typedef struct rsvp {
    struct rsvp *next;
    flare_host *host;
    flare_multiaddr relay_ma; /* with /p2p/RELAY */
    flare_peerid relay;
    rs_state state;
    int ever_active;
    int autorelay;   /* owned by autorelay.c */
    int gone;        /* AutoRelay let go while a dial was in flight: freed by rs_dialed */
    int refused;     /* the failure being reported is the relay's answer */
    uint32_t status; /* with refused: the relay's status (0: none) */
    /* Our circuit addresses through the granted reservation, held at their
     * length (the reservation itself is 6.5 KB of fixed-size addresses). */
    flare__ma_held *circ;
    size_t ncirc;
    flare_io_timer *timer;
    flare_tstamp backoff;
    flare_conn *conn;
    flare_stream *stream;
    flare_buf in;
} rsvp;

typedef struct relay_client {
    rsvp *list;
    flare__rsvp_observer observer; /* hears the outcome of AutoRelay's reservations */
} relay_client;

static relay_client *rc_of(flare_host *h)
{
    return flare__svc_state(h, &flare__svc_relay_client);
}

static void circ_free(flare_host *h, rsvp *r)
{
    for (size_t i = 0; i < r->ncirc; i++)
        flare__ma_held_free(&r->circ[i], h->mem);
    flare__free(h->mem, r->circ);
    r->circ = NULL;
    r->ncirc = 0;
}

/* Holds the circuit addresses of res (as many as memory allows). */
static void circ_set(flare_host *h, rsvp *r, const flare_relay_reservation *res)
{
    circ_free(h, r);
    flare_multiaddr *addrs = flare__malloc(h->mem, FLARE_RELAY_MAX_ADDRS * sizeof(*addrs));
    int k = addrs ? flare_relay_reservation_addrs(res, &h->id, addrs, FLARE_RELAY_MAX_ADDRS) : 0;
    if (k > 0 && (r->circ = flare__calloc(h->mem, (size_t)k, sizeof(*r->circ))))
        while (r->ncirc < (size_t)k &&
               flare__ma_hold(&r->circ[r->ncirc], &addrs[r->ncirc], h->mem) == 0)
            r->ncirc++;
    flare__free(h->mem, addrs);
}

int flare__relay_set_rsvp_observer(flare_host *h, flare__rsvp_observer fn)
{
    relay_client *rc = rc_of(h);
    if (!rc)
        return FLARE_ERR_STATE;
    rc->observer = fn;
    return 0;
}

static void rsvp_report(flare_host *h, const flare_peerid *relay, flare__rsvp_outcome what, int err)
{
    relay_client *rc = rc_of(h);
    if (rc && rc->observer)
        rc->observer(h, relay, what, err);
}

uint64_t flare__unix_now(flare_host *h)
{
    return h->io->ops->unix_time ? h->io->ops->unix_time(h->io) : 0;
}

static void emit_why(flare_host *h, flare_host_event_type type, const flare_peerid *relay,
                     const flare_multiaddr *addr, int err, const char *reason)
{
    flare_host_event ev = {
        .type = type,
        .u.reservation = {.relay = relay, .addr = addr, .error = err, .status = reason}};
    flare__host_emit(h, &ev);
}

static void emit(flare_host *h, flare_host_event_type type, const flare_peerid *relay,
                 const flare_multiaddr *addr, int err)
{
    emit_why(h, type, relay, addr, err, NULL);
}

static void rsvp_start(rsvp *r);

static void rsvp_retry(rsvp *r, int err)
{
    flare_host *h = r->host;
    int was_active = r->state == RS_ACTIVE;
    r->state = RS_IDLE;
    r->conn = NULL;
    r->stream = NULL;
    flare_buf_reset(&r->in);
    if (was_active) {
        emit(h, FLARE_HOST_EV_RESERVATION_LOST, &r->relay, &r->relay_ma, err);
        flare_host_identify_push(h);
        r->backoff = BACKOFF_MIN / 2; /* a drop: come back quickly */
    } else {
        emit_why(h, FLARE_HOST_EV_RESERVATION_FAILED, &r->relay, &r->relay_ma, err,
                 r->refused && r->status ? flare_relay_status_name(r->status) : NULL);
        r->backoff = r->backoff ? r->backoff * 2 : BACKOFF_MIN;
        if (r->backoff > BACKOFF_MAX)
            r->backoff = BACKOFF_MAX;
    }
    h->io->ops->timer_start(r->timer, flare_io_now(h->io) + r->backoff);
    if (r->autorelay)
        rsvp_report(h, &r->relay,
                    was_active   ? FLARE__RSVP_LOST
                    : r->refused ? FLARE__RSVP_REFUSED
                                 : FLARE__RSVP_FAILED,
                    err ? err : FLARE_ERR_CLOSED);
    r->refused = 0;
    r->status = 0;
}

/* The relay answered, and the answer is no (or unusable): AutoRelay tells
 * this apart from a failure to get an answer. */
static void rsvp_refused(rsvp *r, int err)
{
    r->refused = 1;
    rsvp_retry(r, err);
}

/* ---- the RESERVE exchange --------------------------------------------------------- */

static void rs_data(flare_stream *s, const uint8_t *d, size_t len, void *user)
{
    rsvp *r = user;
    flare_host *h = r->host;
    const uint8_t *msg;
    size_t mlen;
    int n = flare_lpframe_accumulate(&r->in, d, len, FLARE_RELAY_MSG_MAX, 16, &msg, &mlen);
    if (n == FLARE_ERR_LIMIT || n == FLARE_ERR_NOMEM) {
        r->stream = NULL;
        flare__stream_abort(s);
        rsvp_refused(r, FLARE_ERR_TOO_LARGE);
        return;
    }
    if (n == FLARE_ERR_AGAIN)
        return;
    uint32_t status = 0;
    flare_relay_reservation res;
    int rv = n < 0 ? n
                   : flare_relay_client_reserve_reply(msg, mlen, &r->relay, &h->id,
                                                      flare__unix_now(h), &res, &status);
    /* Done with this stream: its end (the relay's FIN may come much later)
     * must not reach r, which AutoRelay may free meanwhile. */
    static const flare_stream_cbs detached = {0};
    r->stream = NULL;
    flare_stream_set_user(s, &detached, NULL);
    flare_stream_close_write(s);
    if (rv) {
        r->status = status != FLARE_RELAY_STATUS_OK ? status : 0;
        rsvp_refused(r, rv);
        return;
    }
    if (res.naddrs == 0) {
        /* A relay that does not know its public address yet (e.g. it listens
         * on 0.0.0.0): the address we reached it at is one. */
        res.addrs[0] = r->relay_ma;
        flare_multiaddr_decapsulate(&res.addrs[0], FLARE_MA_P2P);
        res.naddrs = 1;
    }
    circ_set(h, r, &res);
    r->state = RS_ACTIVE;
    r->ever_active = 1;
    r->backoff = 0;
    flare_tstamp now = flare_io_now(h->io);
    h->io->ops->timer_start(r->timer,
                            flare_relay_reservation_refresh_at(&res, flare__unix_now(h), now));
    flare_multiaddr addrs[1];
    int k = flare_relay_reservation_addrs(&res, &h->id, addrs, 1);
    emit(h, FLARE_HOST_EV_RESERVATION_OK, &r->relay, k > 0 ? &addrs[0] : NULL, 0);
    flare_host_identify_push(h);
    if (r->autorelay)
        rsvp_report(h, &r->relay, FLARE__RSVP_GRANTED, 0);
}

static void rs_close(flare_stream *s, int err, void *user)
{
    rsvp *r = user;
    (void)s;
    if (r->stream) { /* closed before the reply */
        r->stream = NULL;
        if (err == FLARE_ERR_NEGOTIATION) /* no hop there */
            rsvp_refused(r, err);
        else
            rsvp_retry(r, err ? err : FLARE_ERR_CLOSED);
    }
}

static const flare_stream_cbs rs_cbs = {.on_data = rs_data, .on_close = rs_close};

static void rsvp_send(rsvp *r, flare_conn *c)
{
    flare_host *h = r->host;
    r->conn = c;
    if (r->state != RS_ACTIVE)
        r->state = RS_RESERVING;
    flare_buf_reset(&r->in);
    flare_buf out;
    flare_buf_init(&out, h->mem);
    int rv = flare_relay_client_reserve(&out);
    flare__conn_hold(c); /* the proposal and the request in one write */
    if (rv == 0)
        rv = flare_conn_new_stream(c, FLARE_RELAY_HOP_PROTOCOL, &rs_cbs, r, 0, &r->stream);
    if (rv == 0 && flare_stream_write(r->stream, out.base, out.len) < 0)
        rv = FLARE_ERR_CLOSED;
    flare__conn_release(c);
    flare_buf_free(&out);
    if (rv) {
        if (r->stream)
            flare__stream_abort(r->stream);
        r->stream = NULL;
        rsvp_retry(r, rv);
    }
}

static rsvp *find(flare_host *h, const flare_peerid *relay);

/* The connection manager keeps connections to a relay we reserve on. */
static void protect_relay(flare_host *h, const flare_peerid *relay)
{
    flare__connmgr_protect(h, relay, FLARE__TAG_RELAY_RSVP, find(h, relay) != NULL);
}

static void rsvp_free(flare_host *h, rsvp *r)
{
    relay_client *rc = rc_of(h);
    for (rsvp **p = &rc->list; *p; p = &(*p)->next) {
        if (*p == r) {
            *p = r->next;
            break;
        }
    }
    h->io->ops->timer_del(r->timer);
    flare_buf_free(&r->in);
    circ_free(h, r);
    flare_peerid relay = r->relay;
    flare__free(h->mem, r);
    protect_relay(h, &relay);
}

static void rs_dialed(flare_host *h, flare_conn *c, int status, void *user)
{
    rsvp *r = user;
    if (r->gone) {
        rsvp_free(h, r);
        return;
    }
    if (status) {
        rsvp_retry(r, status);
        return;
    }
    rsvp_send(r, c);
}

static void rsvp_start(rsvp *r)
{
    flare_host *h = r->host;
    flare_conn *c = flare_host_conn_to(h, &r->relay);
    if (c && !c->limited) {
        rsvp_send(r, c);
        return;
    }
    r->state = RS_DIALING;
    int rv = flare_host_dial(h, &r->relay_ma, NULL, rs_dialed, r);
    if (rv)
        rsvp_retry(r, rv);
}

static void rsvp_timer(flare_io_timer *t, void *user)
{
    rsvp *r = user;
    (void)t;
    if (r->state == RS_ACTIVE && r->conn && !r->conn->close_pending)
        rsvp_send(r, r->conn); /* refresh on the live connection */
    else if (r->state == RS_IDLE || r->state == RS_ACTIVE)
        rsvp_start(r);
}

static rsvp *find(flare_host *h, const flare_peerid *relay)
{
    for (rsvp *r = rc_of(h)->list; r; r = r->next)
        if (!r->gone && flare_peerid_equal(&r->relay, relay))
            return r;
    return NULL;
}

static int reserve(flare_host *h, const flare_multiaddr *relay_ma, int autorelay)
{
    relay_client *rc = rc_of(h);
    flare_peerid relay;
    if (flare_multiaddr_is_relayed(relay_ma) || flare_multiaddr_get_peerid(relay_ma, &relay))
        return FLARE_ERR_INVALID_ARG;
    rsvp *old = find(h, &relay);
    if (old && old->autorelay && !autorelay) {
        /* The application wants this relay for good: AutoRelay lets go. */
        old->autorelay = 0;
        rsvp_report(h, &relay, FLARE__RSVP_TAKEN, 0);
        return 0;
    }
    if (old)
        return FLARE_ERR_EXISTS;
    rsvp *r = flare__calloc(h->mem, 1, sizeof(*r));
    if (!r)
        return FLARE_ERR_NOMEM;
    r->host = h;
    r->relay_ma = *relay_ma;
    r->relay = relay;
    r->autorelay = autorelay;
    flare_buf_init(&r->in, h->mem);
    int rv = h->io->ops->timer_new(h->io, rsvp_timer, r, &r->timer);
    if (rv) {
        flare__free(h->mem, r);
        return rv;
    }
    r->next = rc->list;
    rc->list = r;
    protect_relay(h, &relay);
    /* Start from the loop, like every other callback-producing call. */
    h->io->ops->timer_start(r->timer, flare_io_now(h->io));
    return 0;
}

int flare_host_relay_reserve(flare_host *h, const flare_multiaddr *relay_ma)
{
    return reserve(h, relay_ma, 0);
}

int flare__relay_reserve_auto(flare_host *h, const flare_multiaddr *relay_ma)
{
    return reserve(h, relay_ma, 1);
}

int flare__relay_has_manual(flare_host *h, const flare_peerid *relay)
{
    rsvp *r = find(h, relay);
    return r && !r->autorelay;
}

int flare__relay_unreserve_auto(flare_host *h, const flare_peerid *relay)
{
    rsvp *r = find(h, relay);
    if (!r || !r->autorelay)
        return FLARE_ERR_NOT_FOUND;
    int was_active = r->state == RS_ACTIVE;
    if (r->stream) /* no callback runs for it after the reset */
        flare__stream_abort(r->stream);
    r->stream = NULL;
    if (r->state == RS_DIALING) {
        /* The dial's callback still holds r. */
        r->gone = 1;
        h->io->ops->timer_stop(r->timer);
        protect_relay(h, relay);
    } else {
        rsvp_free(h, r);
    }
    /* The relay forgets the slot when it expires (v2 has no unreserve). */
    if (was_active)
        flare_host_identify_push(h);
    return 0;
}

static size_t relay_addrs(flare_host *h, flare_multiaddr *out, size_t cap)
{
    relay_client *rc = rc_of(h);
    size_t n = 0;
    for (rsvp *r = rc ? rc->list : NULL; r && n < cap; r = r->next) {
        if (r->state != RS_ACTIVE || r->gone)
            continue;
        for (size_t i = 0; i < r->ncirc && n < cap; i++)
            flare__ma_held_get(&r->circ[i], &out[n++]);
    }
    return n;
}

size_t flare_host_relay_addrs(flare_host *h, flare_multiaddr *out, size_t cap)
{
    return relay_addrs(h, out, cap);
}

static rsvp *active_on(flare_host *h, const flare_peerid *relay)
{
    for (rsvp *r = rc_of(h)->list; r; r = r->next)
        if (r->state == RS_ACTIVE && !r->gone && flare_peerid_equal(&r->relay, relay))
            return r;
    return NULL;
}

static void on_conn_closed(flare_host *h, void *state, flare_conn *c)
{
    relay_client *rc = state;
    for (rsvp *r = rc ? rc->list : NULL; r; r = r->next)
        if (!r->gone && r->conn == c && (r->state == RS_ACTIVE || r->state == RS_RESERVING)) {
            r->stream = NULL;
            rsvp_retry(r, c->close_err ? c->close_err : FLARE_ERR_CLOSED);
        }
}

/* ---- stop: a relay forwards a connection to us -------------------------------------- */

typedef struct stop_ctx {
    flare_host *host;
    flare_buf in;
} stop_ctx;

static void stop_free(stop_ctx *x)
{
    flare_buf_free(&x->in);
    flare__free(x->host->mem, x);
}

static void stop_accept(flare_stream *s, stop_ctx *x, const flare_relay_stop_request *req,
                        size_t used)
{
    flare_host *h = x->host;
    flare_conn *rc = flare_stream_conn(s);
    flare_buf out;
    flare_buf_init(&out, h->mem);
    flare_relay_stop_reply(FLARE_RELAY_STATUS_OK, &out);
    int rv = flare_stream_write(s, out.base, out.len);
    flare_buf_free(&out);
    flare_multiaddr ma;
    flare_multiaddr relay_ma;
    flare__conn_remote_ma(rc, &relay_ma);
    flare_multiaddr_with_peerid(&relay_ma, &rc->peer);
    if (rv < 0 || flare_multiaddr_make_relayed(&ma, &relay_ma, &rc->peer, &req->remote)) {
        flare__stream_abort(s);
        stop_free(x);
        return;
    }
    flare_conn *c = flare__circuit_accept(h, s, &rc->peer, &req->remote, &ma, &req->limit);
    if (!c) {
        flare__stream_abort(s);
        stop_free(x);
        return;
    }
    /* The stream now belongs to c; bytes after the STOP message are its. */
    flare_buf rest = x->in;
    flare__free(h->mem, x);
    c->busy++; /* c stays valid while the upgrade starts, even if it fails */
    flare__conn_accepted(c);
    if (rest.len > used && !c->close_pending)
        flare__conn_input(c, rest.base + used, rest.len - used);
    flare__conn_unbusy(c);
    flare_buf_free(&rest);
}

static void stop_data(flare_stream *s, const uint8_t *d, size_t len, void *user)
{
    stop_ctx *x = user;
    flare_host *h = x->host;
    const uint8_t *msg;
    size_t mlen;
    int n = flare_lpframe_accumulate(&x->in, d, len, FLARE_RELAY_MSG_MAX, 16, &msg, &mlen);
    if (n == FLARE_ERR_LIMIT || n == FLARE_ERR_NOMEM) {
        flare__stream_abort(s);
        stop_free(x);
        return;
    }
    if (n == FLARE_ERR_AGAIN)
        return;
    flare_buf out;
    flare_buf_init(&out, h->mem);
    flare_relay_stop_request req;
    int rv = n < 0 ? n : flare_relay_stop_handle(msg, mlen, &req, &out);
    if (rv == 0 && !active_on(h, flare_conn_peer(flare_stream_conn(s)))) {
        flare_relay_stop_reply(FLARE_RELAY_STATUS_PERMISSION_DENIED, &out);
        rv = FLARE_ERR_REFUSED;
    }
    if (rv) {
        if (out.len)
            flare_stream_write(s, out.base, out.len);
        flare_buf_free(&out);
        flare_stream_close_write(s);
        flare_stream_set_user(s, NULL, NULL);
        stop_free(x);
        return;
    }
    flare_buf_free(&out);
    stop_accept(s, x, &req, (size_t)n);
}

static void stop_close(flare_stream *s, int err, void *user)
{
    (void)s;
    (void)err;
    if (user)
        stop_free(user);
}

static const flare_stream_cbs stop_ctx_cbs = {.on_data = stop_data, .on_close = stop_close};

static void stop_open(flare_stream *s, int status, void *user)
{
    flare_host *h = user;
    if (status)
        return;
    stop_ctx *x = flare__calloc(h->mem, 1, sizeof(*x));
    if (!x) {
        flare__stream_abort(s);
        return;
    }
    x->host = h;
    flare_buf_init(&x->in, h->mem);
    flare_stream_set_user(s, &stop_ctx_cbs, x);
}

static const flare_stream_cbs stop_cbs = {.on_open = stop_open};

/* ---- lifecycle ----------------------------------------------------------------------- */

static int rc_init(flare_host *h, void **state)
{
    relay_client *rc = flare__calloc(h->mem, 1, sizeof(*rc));
    if (!rc)
        return FLARE_ERR_NOMEM;
    *state = rc;
    return flare_host_set_handler(h, FLARE_RELAY_STOP_PROTOCOL, &stop_cbs, h, 0);
}

static void rc_free(flare_host *h, void *state)
{
    relay_client *rc = state;
    if (!rc)
        return;
    while (rc->list) {
        rsvp *r = rc->list;
        rc->list = r->next;
        h->io->ops->timer_del(r->timer);
        flare_buf_free(&r->in);
        circ_free(h, r);
        flare__free(h->mem, r);
    }
    flare__free(h->mem, rc);
}

/* RELAYADDR/p2p-circuit/webrtc/p2p/SELF beside each relayed address when
 * WebRTC is on (webrtc.md: dialers signal over the circuit, then go direct). */
static size_t add_webrtc(flare_host *h, flare_multiaddr *out, size_t n, size_t cap)
{
    size_t m = n;
    for (size_t i = 0; i < n && m < cap; i++) {
        flare_multiaddr w = out[i];
        if (flare_multiaddr_decapsulate(&w, FLARE_MA_P2P) == 0 &&
            flare_multiaddr_push(&w, FLARE_MA_WEBRTC, NULL, 0) == 0 &&
            flare_multiaddr_with_peerid(&w, &h->id) == 0)
            out[m++] = w;
    }
    return m;
}

static size_t rc_addrs(flare_host *h, void *state, flare_multiaddr *out, size_t cap)
{
    if (!state)
        return 0;
    size_t n = relay_addrs(h, out, cap);
    return h->cfg.enable_webrtc ? add_webrtc(h, out, n, cap) : n;
}

/* A hop or stop stream runs over c: a circuit is being set up (or served)
 * on it; cutting c would cut it. */
static int rc_protects(flare_host *h, void *state, const flare_conn *c)
{
    (void)h;
    (void)state;
    for (const flare_stream *s = c->streams; s; s = s->next)
        if (s->protocol && (strcmp(s->protocol, FLARE_RELAY_HOP_PROTOCOL) == 0 ||
                            strcmp(s->protocol, FLARE_RELAY_STOP_PROTOCOL) == 0))
            return 1;
    return 0;
}

const flare__service flare__svc_relay_client = {
    .name = "relay-client",
    .init = rc_init,
    .free = rc_free,
    .on_conn_closed = on_conn_closed,
    .addrs = rc_addrs,
    .protects = rc_protects,
};
