/*
 * Circuit Relay v2, relay side (hop): host glue around flare_relay_server.
 *
 * A hop stream carries one request. RESERVE is answered at once. CONNECT
 * makes us open a stop stream to the target (over the connection its
 * reservation came on), forward the target's answer, and then splice the two
 * streams, accounting every chunk against the circuit's limits (duration and
 * bytes per direction): the duration limit resets both streams, the data
 * limit delivers what fitted and half-closes towards the receiver, resetting
 * the sender. Backpressure: when one
 * side's queue is full the other side's reading pauses.
 */
#include <string.h>

#include "core/mem.h"
#include "flare/lpframe.h"
#include "flare/relay_server.h"
#include "services/services.h"

typedef struct relay_srv {
    flare_relay_server *core;
    flare_io_timer *timer; /* reservation expiry */
} relay_srv;

typedef enum { HS_REQUEST, HS_WAIT_STOP, HS_SPLICE, HS_DONE } hs_state;

/* One hop request, and once CONNECT succeeds, one circuit. */
typedef struct hop_ctx {
    flare_host *host;
    hs_state state;
    flare_stream *hop, *stop;
    flare_relay_circuit *circuit;
    flare_io_timer *timer;
    flare_buf in;      /* hop request bytes, then early data from the source */
    flare_buf stop_in; /* the target's answer */
    flare_peerid src, dst;
} hop_ctx;

static relay_srv *srv_of(flare_host *h)
{
    return flare__svc_state(h, &flare__svc_relay_server);
}

static void arm_expiry(flare_host *h)
{
    relay_srv *rs = srv_of(h);
    flare_tstamp d = flare_relay_server_expiry(rs->core);
    if (d == FLARE_TSTAMP_NEVER)
        h->io->ops->timer_stop(rs->timer);
    else
        h->io->ops->timer_start(rs->timer, d);
}

static void on_expiry(flare_io_timer *t, void *user)
{
    flare_host *h = user;
    (void)t;
    flare_relay_server_handle_expiry(srv_of(h)->core, flare_io_now(h->io));
    arm_expiry(h);
}

static void emit(flare_host *h, flare_host_event_type type, const flare_peerid *a,
                 const flare_peerid *b, int err)
{
    flare_host_event ev = {.type = type};
    if (type == FLARE_HOST_EV_RELAY_RESERVED)
        ev.u.relay_reserved.peer = a;
    else {
        ev.u.circuit.src = a;
        ev.u.circuit.dst = b;
        ev.u.circuit.error = err;
    }
    flare__host_emit(h, &ev);
}

/* ---- teardown of one hop context --------------------------------------------------- */

static const flare_stream_cbs quiet_cbs = {0};

static void ctx_finish(hop_ctx *x, int err)
{
    flare_host *h = x->host;
    if (x->state == HS_DONE)
        return;
    int was_splicing = x->state == HS_SPLICE;
    x->state = HS_DONE;
    if (x->circuit) {
        if (was_splicing) {
            flare_relay_server_circuit_close(srv_of(h)->core, x->circuit);
        } else {
            flare_buf scratch; /* the hop stream is reset below: no reply */
            flare_buf_init(&scratch, h->mem);
            flare_relay_server_stop_failed(srv_of(h)->core, x->circuit, &scratch);
            flare_buf_free(&scratch);
        }
        x->circuit = NULL;
        if (was_splicing)
            emit(h, FLARE_HOST_EV_RELAY_CIRCUIT_CLOSED, &x->src, &x->dst, err);
    }
    /* Reset whatever is still open; those streams then stay silent. */
    flare_stream *hop = x->hop, *stop = x->stop;
    x->hop = x->stop = NULL;
    if (hop) {
        flare_stream_set_user(hop, &quiet_cbs, NULL);
        flare__stream_abort(hop);
    }
    if (stop) {
        flare_stream_set_user(stop, &quiet_cbs, NULL);
        flare__stream_abort(stop);
    }
    h->io->ops->timer_del(x->timer);
    flare_buf_free(&x->in);
    flare_buf_free(&x->stop_in);
    flare__free(h->mem, x);
}

static void ctx_timer(flare_io_timer *t, void *user)
{
    hop_ctx *x = user;
    (void)t;
    if (x->state == HS_WAIT_STOP) {
        /* The target did not answer in time: CONNECTION_FAILED to the source. */
        flare_buf out;
        flare_buf_init(&out, x->host->mem);
        flare_relay_server_stop_failed(srv_of(x->host)->core, x->circuit, &out);
        x->circuit = NULL;
        if (x->hop && out.len)
            flare_stream_write(x->hop, out.base, out.len);
        flare_buf_free(&out);
        if (x->hop) {
            flare_stream_set_user(x->hop, &quiet_cbs, NULL);
            flare_stream_close_write(x->hop);
            x->hop = NULL;
        }
    }
    ctx_finish(x, FLARE_ERR_TIMEOUT);
}

/* ---- splicing ------------------------------------------------------------------------ */

static int forward(hop_ctx *x, flare_relay_dir dir, const uint8_t *d, size_t len)
{
    flare_stream *dst = dir == FLARE_RELAY_SRC_TO_DST ? x->stop : x->hop;
    flare_stream *src = dir == FLARE_RELAY_SRC_TO_DST ? x->hop : x->stop;
    size_t allowed = 0;
    int rv = flare_relay_circuit_account(x->circuit, dir, len, flare_io_now(x->host->io), &allowed);
    if (rv == FLARE_ERR_TIMEOUT || rv == FLARE_ERR_FLOW_CONTROL || rv == FLARE_ERR_STATE)
        return rv;
    if (allowed) {
        int w = flare_stream_write(dst, d, allowed);
        flare_relay_circuit_sent(x->circuit, dir, allowed);
        if (w < 0)
            return w;
        if (w == 1)
            flare_stream_pause(src, 1);
    }
    return rv == 0 ? 0 : FLARE_ERR_LIMIT; /* 1 or LIMIT: this direction is spent */
}

static void splice_data(hop_ctx *x, flare_relay_dir dir, const uint8_t *d, size_t len)
{
    int rv = forward(x, dir, d, len);
    if (rv == FLARE_ERR_LIMIT) {
        /* Data limit (go's behaviour): the receiver gets what fitted, then
         * EOF; a reset would drop whatever is still queued and leave it no
         * way to tell the limit from a failure. The sender gets a reset. */
        flare_stream **dst = dir == FLARE_RELAY_SRC_TO_DST ? &x->stop : &x->hop;
        flare_stream *s = *dst;
        *dst = NULL;
        if (s) {
            flare_stream_set_user(s, &quiet_cbs, NULL);
            flare_stream_close_write(s);
        }
    }
    if (rv)
        ctx_finish(x, rv);
}

static void sp_hop_data(flare_stream *s, const uint8_t *d, size_t len, void *user)
{
    (void)s;
    splice_data(user, FLARE_RELAY_SRC_TO_DST, d, len);
}

static void sp_stop_data(flare_stream *s, const uint8_t *d, size_t len, void *user)
{
    (void)s;
    splice_data(user, FLARE_RELAY_DST_TO_SRC, d, len);
}

static void sp_hop_eof(flare_stream *s, void *user)
{
    hop_ctx *x = user;
    (void)s;
    if (x->stop)
        flare_stream_close_write(x->stop);
}

static void sp_stop_eof(flare_stream *s, void *user)
{
    hop_ctx *x = user;
    (void)s;
    if (x->hop)
        flare_stream_close_write(x->hop);
}

static void sp_hop_writable(flare_stream *s, void *user)
{
    hop_ctx *x = user;
    (void)s;
    if (x->stop)
        flare_stream_pause(x->stop, 0);
}

static void sp_stop_writable(flare_stream *s, void *user)
{
    hop_ctx *x = user;
    (void)s;
    if (x->hop)
        flare_stream_pause(x->hop, 0);
}

static void sp_hop_close(flare_stream *s, int err, void *user)
{
    hop_ctx *x = user;
    (void)s;
    x->hop = NULL;
    ctx_finish(x, err);
}

static void sp_stop_close(flare_stream *s, int err, void *user)
{
    hop_ctx *x = user;
    (void)s;
    x->stop = NULL;
    ctx_finish(x, err);
}

static const flare_stream_cbs splice_hop_cbs = {.on_data = sp_hop_data,
                                                .on_eof = sp_hop_eof,
                                                .on_writable = sp_hop_writable,
                                                .on_close = sp_hop_close};
static const flare_stream_cbs splice_stop_cbs = {.on_data = sp_stop_data,
                                                 .on_eof = sp_stop_eof,
                                                 .on_writable = sp_stop_writable,
                                                 .on_close = sp_stop_close};

static void start_splice(hop_ctx *x, size_t stop_used)
{
    flare_host *h = x->host;
    x->state = HS_SPLICE;
    flare_stream_set_user(x->hop, &splice_hop_cbs, x);
    flare_stream_set_user(x->stop, &splice_stop_cbs, x);
    emit(h, FLARE_HOST_EV_RELAY_CIRCUIT_OPENED, &x->src, &x->dst, 0);
    flare_tstamp exp = flare_relay_circuit_expiry(x->circuit);
    if (exp != FLARE_TSTAMP_NEVER)
        h->io->ops->timer_start(x->timer, exp);
    else
        h->io->ops->timer_stop(x->timer);
    /* Bytes that arrived early on either side. */
    if (x->in.len && x->state == HS_SPLICE)
        splice_data(x, FLARE_RELAY_SRC_TO_DST, x->in.base, x->in.len);
    if (x->state == HS_SPLICE && x->stop_in.len > stop_used)
        splice_data(x, FLARE_RELAY_DST_TO_SRC, x->stop_in.base + stop_used,
                    x->stop_in.len - stop_used);
    /* Spliced from now on: the early-data buffers are never used again. */
    if (x->state == HS_SPLICE) {
        flare_buf_free(&x->in);
        flare_buf_free(&x->stop_in);
    }
}

/* ---- the stop exchange with the target ------------------------------------------------- */

static void wait_stop_data(flare_stream *s, const uint8_t *d, size_t len, void *user)
{
    hop_ctx *x = user;
    flare_host *h = x->host;
    (void)s;
    const uint8_t *msg;
    size_t mlen;
    /* The target may send early (its first handshake bytes) after its answer. */
    int n = flare_lpframe_accumulate(&x->stop_in, d, len, FLARE_RELAY_MSG_MAX, 65536, &msg, &mlen);
    if (n == FLARE_ERR_LIMIT || n == FLARE_ERR_NOMEM) {
        ctx_timer(x->timer, x);
        return;
    }
    if (n == FLARE_ERR_AGAIN)
        return;
    flare_buf out;
    flare_buf_init(&out, h->mem);
    int rv = n < 0 ? flare_relay_server_stop_failed(srv_of(h)->core, x->circuit, &out)
                   : flare_relay_server_stop_reply(srv_of(h)->core, x->circuit, msg, mlen,
                                                   flare_io_now(h->io), &out);
    if (rv || n < 0)
        x->circuit = NULL; /* freed by the core */
    if (x->hop && out.len)
        flare_stream_write(x->hop, out.base, out.len);
    flare_buf_free(&out);
    if (rv || n < 0) {
        if (x->hop) {
            flare_stream_set_user(x->hop, &quiet_cbs, NULL);
            flare_stream_close_write(x->hop);
            x->hop = NULL;
        }
        ctx_finish(x, rv ? rv : n);
        return;
    }
    start_splice(x, (size_t)n);
}

static void wait_hop_data(flare_stream *s, const uint8_t *d, size_t len, void *user)
{
    hop_ctx *x = user;
    (void)s;
    /* The source may send early (its Noise message 1): keep it, bounded. */
    if (x->in.len + len > 65536 || flare_buf_append(&x->in, d, len))
        ctx_finish(x, FLARE_ERR_LIMIT);
}

static void wait_close(flare_stream *s, int err, void *user)
{
    hop_ctx *x = user;
    if (s == x->hop)
        x->hop = NULL;
    else
        x->stop = NULL;
    ctx_timer(x->timer, x); /* reports CONNECTION_FAILED if the hop side is still there */
    (void)err;
}

static const flare_stream_cbs wait_hop_cbs = {.on_data = wait_hop_data, .on_close = wait_close};
static const flare_stream_cbs wait_stop_cbs = {.on_data = wait_stop_data, .on_close = wait_close};

static int open_stop(hop_ctx *x, const flare_relay_hop_result *res)
{
    flare_host *h = x->host;
    x->circuit = res->circuit;
    x->dst = res->target;
    flare_conn *c = flare_host_conn_to(h, &res->target);
    if (!c || c->limited)
        return FLARE_ERR_NOT_FOUND;
    flare_buf out;
    flare_buf_init(&out, h->mem);
    int rv = flare_relay_circuit_stop_request(res->circuit, &out);
    flare__conn_hold(c); /* the proposal and the request in one write */
    if (rv == 0)
        rv = flare_conn_new_stream(c, FLARE_RELAY_STOP_PROTOCOL, &wait_stop_cbs, x, 0, &x->stop);
    if (rv == 0 && flare_stream_write(x->stop, out.base, out.len) < 0)
        rv = FLARE_ERR_CLOSED;
    flare__conn_release(c);
    flare_buf_free(&out);
    if (rv)
        return rv;
    x->state = HS_WAIT_STOP;
    flare_buf_reset(&x->in);
    flare_stream_set_user(x->hop, &wait_hop_cbs, x);
    h->io->ops->timer_start(x->timer, flare_relay_circuit_expiry(res->circuit));
    return 0;
}

/* ---- the hop request -------------------------------------------------------------------- */

static void req_data(flare_stream *s, const uint8_t *d, size_t len, void *user)
{
    hop_ctx *x = user;
    flare_host *h = x->host;
    const uint8_t *msg;
    size_t mlen;
    int n = flare_lpframe_accumulate(&x->in, d, len, FLARE_RELAY_MSG_MAX, 16, &msg, &mlen);
    if (n == FLARE_ERR_LIMIT || n == FLARE_ERR_NOMEM) {
        ctx_finish(x, FLARE_ERR_TOO_LARGE);
        return;
    }
    if (n == FLARE_ERR_AGAIN)
        return;
    flare_conn *c = flare_stream_conn(s);
    flare_buf out;
    flare_buf_init(&out, h->mem);
    flare_relay_hop_result res;
    int rv;
    if (n < 0) {
        /* An unframeable request: answer MALFORMED through the core. */
        static const uint8_t junk[] = {0xff};
        rv = flare_relay_server_handle_hop(srv_of(h)->core, junk, 1, &c->peer, &c->remote_ip,
                                           c->limited, flare_io_now(h->io), flare__unix_now(h),
                                           &out, &res);
    } else {
        rv = flare_relay_server_handle_hop(srv_of(h)->core, msg, mlen, &c->peer, &c->remote_ip,
                                           c->limited, flare_io_now(h->io), flare__unix_now(h),
                                           &out, &res);
    }
    if (rv) {
        flare_buf_free(&out);
        ctx_finish(x, rv);
        return;
    }
    if (res.action == FLARE_RELAY_HOP_REPLIED) {
        flare_stream_write(s, out.base, out.len);
        flare_buf_free(&out);
        flare_stream_set_user(s, &quiet_cbs, NULL);
        flare_stream_close_write(s);
        x->hop = NULL;
        if (res.status == 100 && n >= 0 && mlen > 0)
            emit(h, FLARE_HOST_EV_RELAY_RESERVED, &c->peer, NULL, 0);
        arm_expiry(h);
        ctx_finish(x, 0);
        return;
    }
    flare_buf_free(&out);
    /* Keep what followed the CONNECT: the source's first bytes. */
    flare_buf_consume(&x->in, (size_t)n);
    flare_buf early = x->in;
    flare_buf_init(&x->in, h->mem);
    rv = open_stop(x, &res);
    if (rv == 0)
        flare_buf_append(&x->in, early.base, early.len);
    flare_buf_free(&early);
    if (rv)
        ctx_timer(x->timer, x); /* CONNECTION_FAILED */
}

static void req_close(flare_stream *s, int err, void *user)
{
    hop_ctx *x = user;
    (void)s;
    x->hop = NULL;
    ctx_finish(x, err);
}

static const flare_stream_cbs req_cbs = {.on_data = req_data, .on_close = req_close};

static void hop_open(flare_stream *s, int status, void *user)
{
    flare_host *h = user;
    if (status)
        return;
    hop_ctx *x = flare__calloc(h->mem, 1, sizeof(*x));
    if (!x || h->io->ops->timer_new(h->io, ctx_timer, x, &x->timer)) {
        flare__free(h->mem, x);
        flare__stream_abort(s);
        return;
    }
    x->host = h;
    x->hop = s;
    x->src = *flare_conn_peer(flare_stream_conn(s));
    flare_buf_init(&x->in, h->mem);
    flare_buf_init(&x->stop_in, h->mem);
    x->state = HS_REQUEST;
    h->io->ops->timer_start(x->timer, flare_io_now(h->io) + FLARE_RELAY_DEFAULT_STREAM_TIMEOUT);
    flare_stream_set_user(s, &req_cbs, x);
}

static const flare_stream_cbs hop_cbs = {.on_open = hop_open};

/* ---- lifecycle ------------------------------------------------------------------------ */

int flare_host_enable_relay_server(flare_host *h, const flare_relay_server_settings *overrides)
{
    void **slot = flare__svc_state_slot(h, &flare__svc_relay_server);
    if (!slot)
        return FLARE_ERR_UNSUPPORTED;
    if (*slot)
        return FLARE_ERR_EXISTS;
    relay_srv *rs = flare__calloc(h->mem, 1, sizeof(*rs));
    if (!rs)
        return FLARE_ERR_NOMEM;
    flare_relay_server_settings cfg;
    if (overrides)
        cfg = *overrides;
    else
        flare_relay_server_settings_default(&cfg);
    cfg.key = &h->key;
    /* Chunks come in up to 16 KiB reads; the stream queues give backpressure. */
    if (cfg.buffer_size && cfg.buffer_size < 65536) /* 0 stays: refused below */
        cfg.buffer_size = 65536;
    flare_multiaddr addrs[16];
    if (!cfg.addrs) {
        cfg.naddrs = flare__addrs_advertised(h, addrs, 16);
        cfg.addrs = addrs;
    }
    int rv = flare_relay_server_new(&rs->core, &cfg, h->mem, h->rng);
    if (rv == 0)
        rv = h->io->ops->timer_new(h->io, on_expiry, h, &rs->timer);
    if (rv == 0) {
        *slot = rs;
        rv = flare_host_set_handler(h, FLARE_RELAY_HOP_PROTOCOL, &hop_cbs, h,
                                    FLARE_HANDLER_ALLOW_LIMITED);
    }
    if (rv) {
        *slot = NULL;
        if (rs->core)
            flare_relay_server_del(rs->core);
        flare__free(h->mem, rs);
    }
    return rv;
}

static void rs_free(flare_host *h, void *state)
{
    relay_srv *rs = state;
    if (!rs)
        return;
    if (rs->timer)
        h->io->ops->timer_del(rs->timer);
    flare_relay_server_del(rs->core);
    flare__free(h->mem, rs);
}

static void rs_conn_closed(flare_host *h, void *state, flare_conn *c)
{
    relay_srv *rs = state;
    if (!rs || c->limited || !c->opened_reported)
        return;
    /* The by-peer index, not every connection: each close would cost a
     * walk of all of a busy relay's connections. */
    for (flare_conn *o = flare__conn_peer_first(h, &c->peer); o; o = flare__conn_peer_next(h, o))
        if (o != c && !o->close_pending && !o->limited && flare_peerid_equal(&o->peer, &c->peer))
            return; /* another connection still carries the reservation */
    flare_relay_server_peer_disconnected(rs->core, &c->peer);
}

/* A peer whose reservation we hold keeps its connection. */
static int rs_protects(flare_host *h, void *state, const flare_conn *c)
{
    relay_srv *rs = state;
    return rs && flare_relay_server_has_reservation(rs->core, &c->peer, flare_io_now(h->io));
}

/* Idle until flare_host_enable_relay_server. */
static const flare__svc_stream_limit limits[] = {{FLARE_RELAY_HOP_PROTOCOL, 32}, {NULL, 0}};

const flare__service flare__svc_relay_server = {
    .name = "relay-server",
    .stream_limits = limits,
    .free = rs_free,
    .on_conn_closed = rs_conn_closed,
    .protects = rs_protects,
};

size_t flare_host_relay_num_reservations(flare_host *h)
{
    return srv_of(h) ? flare_relay_server_num_reservations(srv_of(h)->core) : 0;
}

size_t flare_host_relay_num_circuits(flare_host *h)
{
    return srv_of(h) ? flare_relay_server_num_circuits(srv_of(h)->core) : 0;
}
