/*
 * Relayed connections: a connection whose byte stream is a hop stream (the
 * dialer's side) or a stop stream (the listener's side) of a connection to a
 * relay, instead of a socket. The whole upgrade (multistream, Noise, yamux)
 * runs end to end on top, so the relay sees only ciphertext. Such a
 * connection is limited: only protocols allowed on limited connections run
 * over it. The relay enforces the circuit's limit by ending the carrier (a
 * reset, or EOF after the last byte the data limit allows) without saying
 * why, so we count the bytes against the limit as the relay does and report
 * FLARE_ERR_LIMIT for an end at the limit.
 */
#include <string.h>

#include "core/mem.h"
#include "transport/circuit.h"

typedef struct circuit {
    flare_stream *carrier; /* the hop/stop stream on the relay connection */
    flare_peerid relay;
    flare_relay_limit limit;
    uint64_t in, out; /* our carrier traffic against the limit */
    flare_tstamp opened;
} circuit;

static void circuit_free(flare_host *h, circuit *t)
{
    flare__free(h->mem, t);
}

/* The carrier stream outlives a relayed connection that closed gracefully
 * (its FIN is still in flight): these callbacks keep it quiet until then. */
static void orphan_data(flare_stream *s, const uint8_t *d, size_t len, void *user)
{
    (void)s;
    (void)d;
    (void)len;
    (void)user;
}

static void orphan_eof(flare_stream *s, void *user)
{
    (void)user;
    flare_stream_close_write(s);
}

static const flare_stream_cbs orphan_cbs = {.on_data = orphan_data, .on_eof = orphan_eof};

static void carrier_data(flare_stream *s, const uint8_t *d, size_t len, void *user)
{
    flare_conn *c = user;
    circuit *t = c->tr;
    (void)s;
    t->in += len;
    flare__conn_input(c, d, len);
}

/* A reset once a direction used up the data limit, or within a second of
 * the duration limit (the relay's clock started about when ours did). */
static int at_limit(const flare_conn *c, const circuit *t)
{
    const flare_relay_limit *l = &t->limit;
    if (l->data && (t->in >= l->data || t->out >= l->data))
        return 1;
    flare_tstamp age = flare_io_now(c->host->io) - t->opened;
    return l->duration && age + FLARE_NS_PER_S >= (flare_tstamp)l->duration * FLARE_NS_PER_S;
}

static void carrier_eof(flare_stream *s, void *user)
{
    flare_conn *c = user;
    circuit *t = c->tr;
    (void)s;
    /* The relay ends a direction that used up the data limit with EOF. */
    if (t->limit.data && t->in >= t->limit.data && at_limit(c, t))
        flare__conn_fail(c, FLARE_ERR_LIMIT);
    else
        flare__conn_input(c, NULL, 0);
}

static void carrier_close(flare_stream *s, int err, void *user)
{
    flare_conn *c = user;
    circuit *t = c->tr;
    (void)s;
    if (err == FLARE_ERR_RESET && at_limit(c, t))
        err = FLARE_ERR_LIMIT;
    circuit_free(c->host, t);
    flare__conn_transport_lost(c, err ? err : FLARE_ERR_CLOSED);
}

/* The carrier drained below its low-water mark: the relayed connection's
 * streams may move their queued data on. */
static void carrier_writable(flare_stream *s, void *user)
{
    (void)s;
    if (user)
        flare__conn_drained(user);
}

static const flare_stream_cbs carrier_cbs = {.on_data = carrier_data,
                                             .on_eof = carrier_eof,
                                             .on_writable = carrier_writable,
                                             .on_close = carrier_close};

/* The carrier's queue is bounded by the relayed connection's own windows;
 * above the high-water mark the streams hold their data (congested) until
 * carrier_writable, like a socket's backpressure. */
static int circuit_write(flare_conn *c, const uint8_t *data, size_t len)
{
    circuit *t = c->tr;
    int rv = flare_stream_write(t->carrier, data, len);
    if (rv >= 0)
        t->out += len;
    return rv;
}

static void circuit_close(flare_conn *c, void *tr, int abort)
{
    circuit *t = tr;
    flare_stream *s = t->carrier;
    circuit_free(c->host, t);
    if (abort) {
        flare__stream_abort(s);
        return;
    }
    flare_stream_set_user(s, &orphan_cbs, NULL);
    flare_stream_close_write(s);
}

static const flare__transport_ops circuit_ops = {
    .name = "p2p-circuit",
    .flags = FLARE__TR_SHARED_IP,
    .write = circuit_write,
    .close = circuit_close,
};

flare_conn *flare__circuit_conn_new(flare_host *h, flare_stream *carrier, int outbound,
                                    const flare_peerid *relay, const flare_peerid *remote,
                                    const flare_multiaddr *remote_ma,
                                    const flare_relay_limit *limit)
{
    if (outbound ? flare__rc_can_open(h) : flare__rc_can_accept(h, NULL))
        return NULL;
    circuit *t = flare__calloc(h->mem, 1, sizeof(*t));
    if (!t)
        return NULL;
    flare_conn *c = flare__conn_new(h, outbound);
    if (!c) {
        circuit_free(h, t);
        return NULL;
    }
    t->carrier = carrier;
    t->relay = *relay;
    if (limit)
        t->limit = *limit;
    t->opened = flare_io_now(h->io);
    flare__conn_attach(c, &circuit_ops, t);
    c->limited = 1;
    flare__rc_conn_add(c); /* relayed: system and peer limits, no IP ones */
    carrier->carrier = 1;
    c->peer = *remote;
    c->expect_peer = 1;
    c->remote_ma = *remote_ma;
    flare_conn *rc = flare_stream_conn(carrier);
    c->local_ma = rc->local_ma;
    c->local_ip = rc->local_ip;
    c->remote_ip = rc->remote_ip;
    flare_stream_set_user(carrier, &carrier_cbs, c);
    return c;
}

const flare_peerid *flare__circuit_relay(const flare_conn *c)
{
    return c->tr_ops == &circuit_ops ? &((const circuit *)c->tr)->relay : NULL;
}
