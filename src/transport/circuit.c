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
 *
 * Dialing .../p2p/RELAY/p2p-circuit/p2p/PEER: a connection to the relay
 * (flare_host_dial), a HOP stream with CONNECT, and once the relay answers
 * OK the stream carries the connection. The listener's side (the STOP
 * handler) belongs to the relay client service, which holds the
 * reservations: it hands the stop stream to flare__circuit_accept.
 */
#include <string.h>

#include "core/mem.h"
#include "flare/lpframe.h"
#include "transport/circuit.h"

typedef struct circuit {
    struct circuit *next;  /* in the orphans list */
    flare_conn *conn;      /* NULL: orphaned, its relay dial still pending */
    flare_stream *carrier; /* the hop/stop stream on the relay connection */
    flare_stream *hop;     /* dialing: the HOP stream until CONNECT's answer */
    int relay_dialing;     /* dialing: the relay connection is not up yet */
    flare_buf ans;         /* dialing: the answer so far */
    flare_peerid relay;
    flare_relay_limit limit;
    uint64_t in, out; /* our carrier traffic against the limit */
    flare_tstamp opened;
} circuit;

/* The transport's state: circuits whose connection ended while the dial to
 * their relay was pending (its callback frees them). */
typedef struct circuit_tr {
    circuit *orphans;
} circuit_tr;

static void circuit_free(flare_host *h, circuit *t)
{
    flare_buf_free(&t->ans);
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
    if (!t->carrier)
        return FLARE_ERR_STATE;
    int rv = flare_stream_write(t->carrier, data, len);
    if (rv >= 0)
        t->out += len;
    return rv;
}

static void circuit_close(flare_conn *c, void *tr, int abort)
{
    circuit *t = tr;
    flare_host *h = c->host;
    if (t->relay_dialing) { /* the dial's callback frees it */
        circuit_tr *st = flare__tr_state(h, &flare__tr_circuit);
        t->conn = NULL;
        t->next = st->orphans;
        st->orphans = t;
        return;
    }
    flare_stream *s = t->carrier ? t->carrier : t->hop;
    int carried = t->carrier != NULL;
    circuit_free(h, t);
    if (!s)
        return;
    if (abort || !carried) {
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

/* s carries c from now on. */
static void carry(flare_conn *c, circuit *t, flare_stream *s, const flare_relay_limit *limit)
{
    t->carrier = s;
    t->hop = NULL;
    if (limit)
        t->limit = *limit;
    t->opened = flare_io_now(c->host->io);
    s->carrier = 1;
    flare_conn *rc = flare_stream_conn(s);
    flare_multiaddr la;
    (void)flare__conn_set_local_ma(c, flare__conn_local_ma(rc, &la)); /* NOMEM: empty */
    c->local_ip = rc->local_ip;
    c->remote_ip = rc->remote_ip;
    flare_stream_set_user(s, &carrier_cbs, c);
}

flare_conn *flare__circuit_accept(flare_host *h, flare_stream *carrier, const flare_peerid *relay,
                                  const flare_peerid *remote, const flare_multiaddr *remote_ma,
                                  const flare_relay_limit *limit)
{
    circuit *t = flare__calloc(h->mem, 1, sizeof(*t));
    if (!t)
        return NULL;
    flare_conn *c = flare__conn_accept(h, &flare__tr_circuit, NULL, NULL);
    if (!c) {
        circuit_free(h, t);
        return NULL;
    }
    flare_buf_init(&t->ans, h->mem);
    t->conn = c;
    t->relay = *relay;
    flare__conn_attach(c, &circuit_ops, t);
    c->limited = 1;
    c->peer = *remote;
    c->expect_peer = 1;
    (void)flare__conn_set_remote_ma(c, remote_ma); /* NOMEM: empty */
    carry(c, t, carrier, limit);
    return c;
}

const flare_peerid *flare__circuit_relay(const flare_conn *c)
{
    return c->tr_ops == &circuit_ops ? &((const circuit *)c->tr)->relay : NULL;
}

/* ---- dialing through a relay ----------------------------------------------------------- */

/* The dial failed before the circuit carried anything. */
static void dial_failed(flare_conn *c, circuit *t, int err)
{
    circuit_free(c->host, t);
    flare__conn_transport_lost(c, err);
}

static void hop_data(flare_stream *s, const uint8_t *data, size_t len, void *user)
{
    circuit *t = user;
    flare_conn *c = t->conn;
    const uint8_t *msg;
    size_t mlen;
    int n = flare_lpframe_accumulate(&t->ans, data, len, FLARE_RELAY_MSG_MAX, 16, &msg, &mlen);
    if (n == FLARE_ERR_AGAIN)
        return;
    flare_relay_limit limit;
    uint32_t status = 0;
    int rv = n == FLARE_ERR_LIMIT || n == FLARE_ERR_NOMEM ? FLARE_ERR_TOO_LARGE
             : n < 0                                      ? n
                     : flare_relay_client_connect_reply(msg, mlen, &limit, &status);
    if (rv) {
        flare__stream_abort(s);
        dial_failed(c, t, rv);
        return;
    }
    /* Bytes after the answer are the connection's first. */
    flare_buf rest = t->ans;
    flare_buf_init(&t->ans, c->host->mem);
    carry(c, t, s, &limit);
    c->busy++; /* c stays valid while the upgrade starts, even if it fails */
    flare__conn_start_upgrade(c);
    if (rest.len > (size_t)n && !c->close_pending)
        flare__conn_input(c, rest.base + n, rest.len - (size_t)n);
    flare__conn_unbusy(c);
    flare_buf_free(&rest);
}

static void hop_close(flare_stream *s, int err, void *user)
{
    circuit *t = user;
    (void)s;
    t->hop = NULL;
    dial_failed(t->conn, t, err ? err : FLARE_ERR_CLOSED);
}

static const flare_stream_cbs hop_cbs = {.on_data = hop_data, .on_close = hop_close};

static void orphan_remove(flare_host *h, circuit *t)
{
    circuit_tr *st = flare__tr_state(h, &flare__tr_circuit);
    for (circuit **p = &st->orphans; *p; p = &(*p)->next)
        if (*p == t) {
            *p = t->next;
            return;
        }
}

static void relay_up(flare_host *h, flare_conn *rc, int status, void *user)
{
    circuit *t = user;
    flare_conn *c = t->conn;
    t->relay_dialing = 0;
    if (!c) {
        orphan_remove(h, t);
        circuit_free(h, t);
        return;
    }
    if (status) {
        dial_failed(c, t, status);
        return;
    }
    flare_buf out;
    flare_buf_init(&out, h->mem);
    int rv = flare_relay_client_connect(&c->peer, &out);
    flare__conn_hold(rc); /* the proposal and the request in one write */
    if (rv == 0)
        rv = flare_conn_new_stream(rc, FLARE_RELAY_HOP_PROTOCOL, &hop_cbs, t, 0, &t->hop);
    if (rv == 0 && flare_stream_write(t->hop, out.base, out.len) < 0)
        rv = FLARE_ERR_CLOSED;
    flare__conn_release(rc);
    flare_buf_free(&out);
    if (rv) {
        if (t->hop)
            flare__stream_abort(t->hop);
        dial_failed(c, t, rv);
    }
}

static int circuit_dial(flare_host *h, void *state, flare_conn *c, const flare_multiaddr *ma,
                        const flare_dial_opts *o)
{
    (void)state;
    (void)o;
    flare_multiaddr relay_ma;
    flare_peerid relay, target;
    int rv = flare_multiaddr_relay_split(ma, &relay_ma, &relay, &target);
    if (rv)
        return rv;
    if (flare_peerid_equal(&target, &h->id) || flare_peerid_equal(&relay, &h->id))
        return FLARE_ERR_INVALID_ARG;
    circuit *t = flare__calloc(h->mem, 1, sizeof(*t));
    if (!t)
        return FLARE_ERR_NOMEM;
    flare_buf_init(&t->ans, h->mem);
    t->conn = c;
    t->relay = relay;
    t->relay_dialing = 1;
    rv = flare_host_dial(h, &relay_ma, NULL, relay_up, t);
    if (rv) {
        circuit_free(h, t);
        return rv;
    }
    flare__conn_attach(c, &circuit_ops, t);
    c->limited = 1;
    c->peer = target;
    c->expect_peer = 1;
    return 0;
}

static int circuit_init(flare_host *h, void **state)
{
    *state = flare__calloc(h->mem, 1, sizeof(circuit_tr));
    return *state ? 0 : FLARE_ERR_NOMEM;
}

/* Orphans whose relay dial's callback was dropped with the host. */
static void circuit_tr_free(flare_host *h, void *state)
{
    circuit_tr *st = state;
    if (!st)
        return;
    while (st->orphans) {
        circuit *t = st->orphans;
        st->orphans = t->next;
        circuit_free(h, t);
    }
    flare__free(h->mem, st);
}

const flare__transport flare__tr_circuit = {
    .name = "circuit",
    .kind = FLARE__TR_BYTES,
    .init = circuit_init,
    .free = circuit_tr_free,
    .can_dial = flare_multiaddr_is_relayed,
    .dial = circuit_dial,
};
